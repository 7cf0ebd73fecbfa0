"""LightningDataModule over a named corpus or a user file: splits, tokenizer, padded batches.

The corpus is read and the tokenizer built in ``__init__`` so that the training module can
be given the tokenizer (LightningCLI links ``data`` → ``model.tokenizer``). Each sample is
encoded once as its tokens followed by EOS (no BOS: generators prepend it), cut to
``max_length``; batches are padded to their longest row and carry an attention mask.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gan_writer.data.corpora import CORPORA, CorpusOptionError, CorpusSplits, load_corpus
from gan_writer.data.stats import check_cut, corpus_stats
from gan_writer.systems.options import check_options
from gan_writer.tokenization import build_tokenizer

_RANGES = {"bpe_vocab_size": ">= 1", "min_frequency": ">= 1", "max_length": ">= 2", "batch_size": ">= 1",
           "max_train_samples": ">= 1", "valid_fraction": "[0, 1)", "test_fraction": "[0, 1)", "num_workers": ">= 0"}


class EncodedTexts(Dataset):
    """Token-id lists (EOS appended, cut to ``max_length``) of a list of texts."""

    def __init__(self, texts: list[str], tokenizer, max_length: int) -> None:
        self.texts = texts
        eos = tokenizer.eos_token_id
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        self.ids = [(list(ids) + [eos])[:max_length] for ids in encoded]
        self.lengths = [len(ids) + 1 for ids in encoded]  # before the cut, EOS included
        self.truncated = sum(n > max_length for n in self.lengths)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> list[int]:
        return self.ids[i]


def pad_batch(rows: list[list[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Collate token-id lists into ``ids`` ``(B, T)`` and ``attention_mask`` ``(B, T)``.

    ``T`` is the longest row; shorter rows are padded with ``pad_token_id`` (mask 0).
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"ids": ids, "attention_mask": mask}


class EpochSampler(Sampler[int]):
    """A random order of ``n`` samples drawn from ``(seed, epoch)`` alone, so a resumed run
    sees the same order as an uninterrupted one (Lightning calls :meth:`set_epoch` at every
    epoch start, as for ``DistributedSampler``); ``skip`` drops the first indices of the next
    pass (the samples an interrupted epoch had already trained on)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen).tolist()
        start, self.skip = self.skip, 0
        return iter(order[start:])


class ResumableLoader(DataLoader):
    """The training DataLoader, resumable mid-epoch through Lightning's ``state_dict`` protocol.

    Its state is the sampler's epoch and ``progress()``, the batches already trained on in
    that epoch (Lightning's own counter, so batches it prefetched are not counted).
    """

    def __init__(self, *args, progress=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "batches_done": int(self._progress() if self._progress else 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, EpochSampler):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.skip = state["batches_done"] * (self.batch_size or 1)


def checkpoint_tokenizer(path: str):
    """The tokenizer stored in a gan_writer checkpoint (see :mod:`gan_writer.checkpoint`)."""
    from lightning.pytorch.utilities import rank_zero_info

    from gan_writer.checkpoint import load_artifacts

    art = load_artifacts(path)
    rank_zero_info(f"gan_writer: tokenizer from {art.meta.get('path')}")
    return art.tokenizer


def _is_checkpoint(path: str) -> bool:
    """A ``.ckpt`` file or a gan_writer run directory (``version_N``/``checkpoints`` inside)."""
    p = Path(path)
    if path.endswith(".ckpt"):
        return True
    return p.is_dir() and (any(p.glob("version_*")) or (p / "checkpoints").is_dir() or any(p.glob("*.ckpt")))


def _load(corpus: str, corpus_options: dict | None, **kwargs) -> CorpusSplits:
    """:func:`load_corpus` with ``data.corpus_options``; options a user file does not take
    are refused saying that they came from ``data.corpus_options`` and how to clear them."""
    try:
        return load_corpus(corpus, **kwargs, **(corpus_options or {}))
    except CorpusOptionError as err:
        if corpus in CORPORA or not corpus_options:
            raise
        raise CorpusOptionError(
            f"data.corpus_options={dict(corpus_options)!r} (set in the config or on the command line) does not "
            f"apply to the user corpus {corpus!r}: {err}. Clear it with --data.init_args.corpus_options=null "
            "(or delete corpus_options from the YAML's data.init_args)") from None


def _missing_run(path: str) -> bool:
    """A run folder or ``.ckpt`` path that does not exist (not a hub name like ``org/model``)."""
    if Path(path).exists():
        return False
    return path.endswith(".ckpt") or path.count("/") >= 2 or path.startswith(("checkpoints", ".", "/", "~"))


class TextDataModule(L.LightningDataModule):
    """Train/valid/test batches of one corpus for every training stage.

    Args:
        corpus: a registered corpus name (``shi``, ``tang``, ``sonnets``, ``coco`` ...; always
            the registered corpus) or a path to a user file or directory, written as a path
            (``./shi``, ``poems.txt``; see :func:`gan_writer.data.load_corpus`). Recorded as the
            name, or as the absolute path, with ``corpus_source`` ``registered`` / ``path``.
        data_dir: directory holding the corpora (default: ``$GAN_WRITER_DATA``, then the
            download cache).
        corpus_options: corpus-specific options (e.g. ``{chars_per_line: 5}`` for ``tang``).
        format, text_field, encoding: how to read a user file (``text_field`` may list
            several keys, joined with line breaks, e.g. ``[title, content]``).
        tokenizer: ``char``, ``word``, ``bpe``, a pretrained model name/path, or a
            gan_writer checkpoint (``.ckpt`` file or run directory) whose stored tokenizer
            is reused (later stages must use this so ids match the generator).
        gguf_file: GGUF file name when ``tokenizer`` is a directory holding one.
        lowercase: word tokenizer lower-cases.
        bpe_vocab_size: vocabulary size of a trained BPE.
        min_frequency: rarer characters/words map to ``<unk>``.
        max_length: tokens per sample including EOS; longer samples are cut (no EOS). More
            than half of the training tokens cut is refused.
        batch_size: samples per batch; the last batch may be smaller.
        max_train_samples: use only the first N (>= 1) training samples (quick runs); None = all.
        seed, valid_fraction, test_fraction: deterministic split of corpora without one.
        num_workers: DataLoader workers.

    At the start of every fit one statistics line is printed (to stderr): samples,
    characters, tokens, share cut by ``max_length``, vocabulary size, unknown share in the
    validation split, control characters removed (see :mod:`gan_writer.data.stats`).

    Raises:
        ValueError: if the training split is empty or the validation split is empty; a
            numeric option is out of range (naming ``data.init_args.<key>``); more than half
            of the training tokens would be cut (naming ``data.max_length`` and
            ``model.generator.n_positions`` with values that fit).
        CorpusOptionError: ``corpus_options`` the corpus does not accept (saying where they
            came from and how to clear them).
    """

    def __init__(
        self,
        corpus: str = "shi",
        data_dir: str | None = None,
        corpus_options: dict[str, Any] | None = None,
        format: str | None = None,
        text_field: str | list[str] = "text",
        encoding: str = "utf-8",
        tokenizer: str = "char",
        gguf_file: str | None = None,
        lowercase: bool = True,
        bpe_vocab_size: int = 8000,
        min_frequency: int = 1,
        max_length: int = 64,
        batch_size: int = 64,
        max_train_samples: int | None = None,
        seed: int = 0,
        valid_fraction: float = 0.05,
        test_fraction: float = 0.05,
        num_workers: int = 0,
    ) -> None:
        check_options("data.init_args", locals(), _RANGES)
        super().__init__()
        self.save_hyperparameters()
        registered = corpus in CORPORA
        if not registered and Path(corpus).expanduser().exists():  # record a user path absolutely
            self.hparams.corpus = str(Path(corpus).expanduser().resolve())
        self.hparams.corpus_source = "registered" if registered else "path"
        self.splits: CorpusSplits = _load(corpus, corpus_options, data_dir=data_dir, seed=seed,
                                          valid_fraction=valid_fraction, test_fraction=test_fraction,
                                          format=format, text_field=text_field, encoding=encoding)
        train = self.splits.train[:max_train_samples] if max_train_samples else self.splits.train
        if not train:
            raise ValueError(f"corpus {corpus!r} has an empty training split; pass a corpus with training text")
        if not self.splits.valid:
            total = len(self.splits.train) + len(self.splits.test)
            raise ValueError(
                f"corpus {corpus!r} has {total} sample(s) and an empty validation split: "
                + ("give a corpus of at least 2 samples (one to train on, one to validate)" if total < 2
                   else "raise data.valid_fraction or give a larger corpus")
            )
        if _is_checkpoint(tokenizer) or _missing_run(tokenizer):
            try:
                self.tokenizer = checkpoint_tokenizer(tokenizer)  # a missing run: says which stage to run first
            except FileNotFoundError as err:
                raise FileNotFoundError(f"data.tokenizer={tokenizer!r}: {err}") from None
        else:
            self.tokenizer = build_tokenizer(
                tokenizer, train, lowercase=lowercase, vocab_size=bpe_vocab_size,
                min_frequency=min_frequency, gguf_file=gguf_file,
            )
        self.max_length = max_length
        self.batch_size = batch_size
        self.metric_tokenization = self.splits.metric_tokenization
        self.datasets = {
            "train": EncodedTexts(train, self.tokenizer, max_length),
            "valid": EncodedTexts(self.splits.valid, self.tokenizer, max_length),
            "test": EncodedTexts(self.splits.test, self.tokenizer, max_length),
        }
        self.stats = corpus_stats(train, self.datasets["train"].lengths, self.datasets["valid"].ids, max_length,
                                  len(self.tokenizer), self.tokenizer.unk_token_id, self.splits.removed_controls)
        check_cut(self.stats, self.hparams.corpus, max_length)
        cut = self.datasets["train"].truncated
        if cut:
            warnings.warn(
                f"{cut} of {len(train)} training samples of {corpus!r} are longer than data.max_length="
                f"{max_length} tokens and were cut", stacklevel=1,
            )
        if len(train) < batch_size:
            warnings.warn(
                f"corpus {corpus!r} has {len(train)} training samples, fewer than data.batch_size="
                f"{batch_size}: each epoch is one batch of {len(train)}", stacklevel=1,
            )

    def setup(self, stage: str) -> None:
        """Print the corpus-statistics line at the start of every fit."""
        if stage == "fit" and self.trainer is not None and self.trainer.is_global_zero:
            print(self.stats.line(self.hparams.corpus, self.max_length), file=sys.stderr)

    def texts(self, split: str) -> list[str]:
        """The raw texts of ``split`` (``train``, ``valid`` or ``test``) as used for training."""
        return self.datasets[split].texts

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        # the loaders' own generator: iterating them never draws from the global RNG
        gen = torch.Generator().manual_seed(self.hparams.seed)
        common = dict(batch_size=self.batch_size, drop_last=False, num_workers=self.hparams.num_workers, generator=gen,
                      collate_fn=lambda rows: pad_batch(rows, self.tokenizer.pad_token_id))
        if not shuffle:
            return DataLoader(self.datasets[split], shuffle=False, **common)
        sampler = EpochSampler(len(self.datasets[split]), self.hparams.seed)
        return ResumableLoader(self.datasets[split], sampler=sampler, progress=self._batches_done, **common)

    def _batches_done(self) -> int:
        """Training batches done in the current epoch (0 once the epoch is complete)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return 0 if done >= trainer.num_training_batches else done

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test" if len(self.datasets["test"]) else "valid", shuffle=False)
