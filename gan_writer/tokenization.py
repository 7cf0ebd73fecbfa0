"""Tokenizers: character-level (Chinese), word-level (English), byte-level BPE, or pretrained.

Every tokenizer is a ``transformers.PreTrainedTokenizerFast`` with BOS, EOS and PAD set,
built with the ``tokenizers`` library, and travels inside each checkpoint
(:func:`tokenizer_to_dict` / :func:`tokenizer_from_dict`). Encoding never adds special
tokens by itself: the data module appends EOS and the generator prepends BOS.

* ``char``: every non-whitespace character is a token; whitespace is dropped, so
  ``"秦 川 雄"`` and ``"秦川雄"`` give the same ids; decoding concatenates.
* ``word``: the Texygen convention — optional lower-casing, split on whitespace, each
  punctuation character its own token; a line break is the token ``␤``; decoding joins
  with spaces and turns ``␤`` back into a line break.
* ``bpe``: byte-level BPE (Sennrich et al. 2016; GPT-2's byte mapping) trained on the
  training split.
* anything else: a pretrained model's own tokenizer (``AutoTokenizer.from_pretrained``).
"""
from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
NEWLINE = "␤"
BUILTIN_KINDS = ("char", "word", "bpe")


def _wrap(tok: Tokenizer, kind: str) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
    )
    fast.init_kwargs["gan_writer_kind"] = kind
    return fast


def _word_level(texts: Iterable[str], normalizer, pre_tokenizer, decoder, min_frequency: int, kind: str):
    tok = Tokenizer(models.WordLevel(vocab={s: i for i, s in enumerate(SPECIALS)}, unk_token=UNK))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoder
    counts: Counter = Counter()
    for text in texts:
        normalized = normalizer.normalize_str(text) if normalizer else text
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(normalized))
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for piece, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if c >= min_frequency and piece not in vocab:
            vocab[piece] = len(vocab)
    tok.model = models.WordLevel(vocab=vocab, unk_token=UNK)
    return _wrap(tok, kind)


def char_tokenizer(texts: Iterable[str], min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Character-level tokenizer over the characters of ``texts`` (whitespace ignored).

    Args:
        texts: training samples.
        min_frequency: characters seen fewer times map to ``<unk>``.
    """
    return _word_level(
        texts,
        normalizers.Replace(Regex(r"\s+"), ""),
        pre_tokenizers.Split(Regex(r"."), behavior="isolated"),
        decoders.Fuse(),
        min_frequency,
        "char",
    )


def word_tokenizer(texts: Iterable[str], lowercase: bool = True, min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Word-level tokenizer (Texygen convention): whitespace split, punctuation isolated.

    Args:
        texts: training samples; line breaks become the token ``␤``.
        lowercase: lower-case before splitting.
        min_frequency: words seen fewer times map to ``<unk>``.
    """
    norms = [normalizers.Replace("\r\n", "\n"), normalizers.Replace("\n", f" {NEWLINE} ")]
    if lowercase:
        norms.append(normalizers.Lowercase())
    return _word_level(
        texts,
        normalizers.Sequence(norms),
        pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]),
        _word_decoder(),
        min_frequency,
        "word",
    )


def _word_decoder() -> decoders.Decoder:
    """Words joined by single spaces, each ``␤`` (with the spaces beside it) a bare line break:
    ``["sat", ",", "␤", "upon"]`` decodes to ``"sat ,\nupon"`` (no line starts with a space)."""
    return decoders.Sequence([
        decoders.WordPiece(prefix="\x00##", cleanup=False),
        decoders.Fuse(),
        decoders.Replace(Regex(f" ?{NEWLINE} ?"), "\n"),
    ])


def bpe_tokenizer(texts: Sequence[str], vocab_size: int = 8000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` with the ``tokenizers`` library.

    Args:
        texts: training samples.
        vocab_size: target vocabulary size, special tokens and the 256 bytes included.
        min_frequency: minimum pair count for a merge.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return _wrap(tok, "bpe")


def pretrained_tokenizer(name_or_path: str, gguf_file: str | None = None) -> PreTrainedTokenizerBase:
    """A pretrained model's tokenizer; PAD (and BOS) default to EOS when the model has none.

    ``name_or_path`` may be a named model (``smollm2-135m-instruct``) or a ``.gguf`` path.

    Raises:
        ValueError: if the tokenizer has no EOS token.
        PretrainedNotFoundError: the tokenizer is neither a local folder nor in the cache.
    """
    from gan_writer.models.pretrained_base import resolve_pretrained  # named models, .gguf paths

    name_or_path, gguf_file = resolve_pretrained(name_or_path, gguf_file)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    from gan_writer.models.hub import from_pretrained

    tok = from_pretrained(AutoTokenizer.from_pretrained, name_or_path, "data.tokenizer", **kwargs)
    if tok.eos_token is None:
        raise ValueError(f"tokenizer of {name_or_path!r} has no eos_token; gan_writer needs one to end samples")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.bos_token is None:
        tok.bos_token = tok.eos_token
    tok.init_kwargs["gan_writer_kind"] = "pretrained"
    return tok


def build_tokenizer(
    kind: str,
    texts: Sequence[str] | None = None,
    *,
    lowercase: bool = True,
    vocab_size: int = 8000,
    min_frequency: int = 1,
    gguf_file: str | None = None,
) -> PreTrainedTokenizerBase:
    """Build the tokenizer named by ``kind`` (``char``, ``word``, ``bpe``, or a pretrained path).

    Raises:
        ValueError: if a built-in kind gets no ``texts``, or ``kind`` is a misspelled one (``wordz``).
    """
    if kind in BUILTIN_KINDS and not texts:
        raise ValueError(f"tokenizer {kind!r} is trained on the corpus: pass the training texts")
    if kind == "char":
        return char_tokenizer(texts, min_frequency)
    if kind == "word":
        return word_tokenizer(texts, lowercase, min_frequency)
    if kind == "bpe":
        return bpe_tokenizer(texts, vocab_size, max(2, min_frequency))
    _refuse_misspelled_kind(kind)
    return pretrained_tokenizer(kind, gguf_file)


def _refuse_misspelled_kind(kind: str) -> None:
    """``wordz`` or ``Char``: a built-in kind mistyped, refused at once (as a hub name it would
    spend a minute on network retries before failing).

    Raises:
        ValueError: ``kind`` is close to a built-in kind and is no existing file or folder.
    """
    import difflib

    if "/" in kind or os.path.exists(os.path.expanduser(kind)):
        return
    close = difflib.get_close_matches(kind.lower(), BUILTIN_KINDS, n=1, cutoff=0.6)
    if close:
        raise ValueError(f"data.tokenizer={kind!r} is not a tokenizer: did you mean {close[0]!r}? "
                         f"(the built-in kinds are {', '.join(BUILTIN_KINDS)}; anything else is a local "
                         "folder, a .gguf file, a gan_writer checkpoint or a Hugging Face model name)")


def tokenizer_to_dict(tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    """The files ``save_pretrained`` writes, as ``{file name: text}``, to store in a checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_text(encoding="utf-8") for p in Path(tmp).iterdir() if p.is_file()}


def tokenizer_from_dict(files: dict[str, str]) -> PreTrainedTokenizerBase:
    """Inverse of :func:`tokenizer_to_dict` (no network access).

    Raises:
        ValueError: ``files`` is not a mapping of plain file names to text (a tampered checkpoint).
    """
    if not isinstance(files, dict) or not files or not all(
            isinstance(k, str) and isinstance(v, str) and os.path.basename(k) not in ("", ".", "..")
            for k, v in files.items()):
        raise ValueError("the checkpoint's tokenizer entry is not a mapping of file names to text: "
                         "the checkpoint is damaged or was edited")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            Path(tmp, os.path.basename(name)).write_text(text, encoding="utf-8")
        from gan_writer.safe_load import refuse_remote_code

        refuse_remote_code(tmp)
        tok = AutoTokenizer.from_pretrained(tmp, trust_remote_code=False)
    if tok.init_kwargs.get("gan_writer_kind") == "word" and hasattr(tok, "backend_tokenizer"):
        tok.backend_tokenizer.decoder = _word_decoder()  # checkpoints before 2026-12 left a space after each break
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok
