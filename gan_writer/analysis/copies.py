"""Samples copied from the corpus: which generated texts occur verbatim in a corpus's splits
(memorised, not generated), compared as metric tokens (notebook 04's copy check).

A word tokenizer's decoded text spaces punctuation (``a man in a kitchen .`` for the caption
``a man in a kitchen.``), so texts are compared as the metric tokens BLEU scores them by
(:class:`~gan_writer.metrics.text_tokenize.MetricTokenizer`, the one a compare output recorded),
not as strings.
"""
from __future__ import annotations

from typing import Callable, Iterable

from gan_writer.metrics.text_tokenize import MetricTokenizer

__all__ = ["copy_checker", "copy_checker_for"]


def copy_checker(corpus_texts: Iterable[str], tokenizer: MetricTokenizer) -> Callable[[str], bool]:
    """A predicate: is a text one of ``corpus_texts``, as ``tokenizer``'s tokens? (An empty
    text never counts as a copy.)"""
    seen = {tuple(tokenizer(t)) for t in corpus_texts}
    seen.discard(())
    return lambda text: tuple(tokenizer(text)) in seen


def copy_checker_for(setup: dict, data_dir: str | None = None) -> Callable[[str], bool]:
    """:func:`copy_checker` over every split of the corpus a ``gan-writer compare`` output was
    scored on (its ``setup.json``: ``kind``, ``reference_key``); for an oracle (id) run, a
    predicate that is always False (no corpus text to copy).

    Raises:
        KeyError: ``setup`` lacks ``reference_key`` or its tokenization fields (not a compare output).
    """
    if setup.get("kind") != "text":
        return lambda text: False
    from gan_writer.data import load_corpus

    key = setup["reference_key"]
    splits = load_corpus(key["corpus"], data_dir=data_dir, **(key.get("data.corpus_options") or {}))
    tok = MetricTokenizer(key["metric_tokenization"], bool(key["metric_lowercase"]))
    return copy_checker(splits.train + splits.valid + splits.test, tok)
