"""Tokenization for text metrics (BLEU, Self-BLEU, distinct-n): words or characters.

Metrics are computed on *decoded text*, re-tokenized with a fixed, model-independent
scheme, never on a model's BPE/WordPiece pieces (which would make scores depend on the
tokenizer and inflate n-gram matches). The scheme is chosen per corpus language and
must be stored with the results (:meth:`MetricTokenizer.describe`).

Schemes:
    ``"word"``: regex ``\\w+|[^\\w\\s]`` - runs of letters/digits/underscore are words,
        every other non-space character (punctuation) is its own token, so
        ``"night."`` -> ``["night", "."]`` as in the Texygen COCO convention. It needs no
        downloaded model data. Contractions split at the apostrophe
        (``"don't"`` -> ``["don", "'", "t"]``).
    ``"treebank"``: nltk's ``NLTKWordTokenizer`` (what ``nltk.word_tokenize`` applies to
        each sentence, used by Texygen; ``"don't"`` -> ``["do", "n't"]``); no download.
    ``"whitespace"``: ``text.split()``, for corpora that are already tokenized.
    ``"char"``: every non-whitespace character is a token (Chinese, Japanese); for the
        space-separated quatrains of ``poetry_zh/shi.txt`` this equals ``split()``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List

__all__ = ["SCHEMES", "tokenize_for_metrics", "scheme_for_language", "MetricTokenizer"]

SCHEMES = ("word", "treebank", "whitespace", "char")
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_LANGUAGE_SCHEME = {"zh": "char", "ja": "char", "en": "word"}
_treebank = None


def tokenize_for_metrics(text: str, scheme: str = "word", lowercase: bool = False) -> List[str]:
    """Split decoded text into metric tokens.

    Args:
        text: one decoded sample or reference (a ``str``).
        scheme: one of :data:`SCHEMES` (see the module docstring).
        lowercase: lower-case before splitting (default False: score what was written,
            as Texygen does; the COCO and poetry corpora here are already lower-case).

    Returns:
        list of str tokens (empty for empty or all-whitespace text).

    Raises:
        TypeError: ``text`` is not a ``str`` (e.g. token ids or a list of BPE pieces:
            decode them with the model's tokenizer first).
        ValueError: unknown ``scheme``.

    Text is scored as given: it must be the tokenizer's *decoded* output (the metric suite
    always decodes); letters such as ``Ġ`` or ``▁`` are ordinary characters here (Maltese
    words, or bytes a byte-level model emitted), never rejected.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"text: expected decoded text (str), got {type(text).__name__}; "
            "decode token ids/BPE pieces with the tokenizer before scoring"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    if lowercase:
        text = text.lower()
    if scheme == "word":
        return _WORD_RE.findall(text)
    if scheme == "char":
        return [c for c in text if not c.isspace()]
    if scheme == "whitespace":
        return text.split()
    global _treebank
    if _treebank is None:
        from nltk.tokenize import NLTKWordTokenizer

        _treebank = NLTKWordTokenizer()
    return _treebank.tokenize(text)


def scheme_for_language(language: str) -> str:
    """Default scheme for a corpus language code: ``"char"`` for zh/ja, else ``"word"``."""
    return _LANGUAGE_SCHEME.get(language.split("-")[0].lower(), "word")


@dataclass(frozen=True)
class MetricTokenizer:
    """A recorded tokenization choice: ``scheme`` and ``lowercase``.

    Use ``MetricTokenizer.for_language("zh")`` per corpus, ``tok(text)`` or
    ``tok.tokenize_all(texts)`` to tokenize and ``tok.describe()`` to store the choice
    next to the scores.
    """

    scheme: str = "word"
    lowercase: bool = False

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme: expected one of {SCHEMES}, got {self.scheme!r}")

    @classmethod
    def for_language(cls, language: str, lowercase: bool = False) -> "MetricTokenizer":
        return cls(scheme_for_language(language), lowercase)

    def __call__(self, text: str) -> List[str]:
        return tokenize_for_metrics(text, self.scheme, self.lowercase)

    def tokenize_all(self, texts: Iterable[str]) -> List[List[str]]:
        return [tokenize_for_metrics(t, self.scheme, self.lowercase) for t in texts]

    def describe(self) -> Dict[str, object]:
        """``{"metric_tokenization": scheme, "metric_lowercase": lowercase}``."""
        return {"metric_tokenization": self.scheme, "metric_lowercase": self.lowercase}
