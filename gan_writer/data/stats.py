"""What a fit is about to train on: one statistics line, and a refusal when most of the
text would be cut away by ``data.max_length``."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CorpusStats", "corpus_stats", "check_cut"]

MAX_CUT_SHARE = 0.5


@dataclass(frozen=True)
class CorpusStats:
    """Statistics of the training split as encoded.

    Attributes:
        samples: training samples; characters: their characters in total.
        tokens: their tokens in total, EOS included (before the cut).
        cut_share: share of those tokens beyond ``max_length`` (dropped), in [0, 1].
        cut_samples: samples longer than ``max_length``.
        longest: tokens (EOS included) of the longest sample; p95: the 95th percentile.
        vocab_size: tokenizer size; unk_share: share of ``<unk>`` among the validation
            tokens (characters or words the training split never showed), in [0, 1].
        removed_controls: escape sequences / control characters stripped when reading.
    """
    samples: int
    characters: int
    tokens: int
    cut_share: float
    cut_samples: int
    longest: int
    p95: int
    vocab_size: int
    unk_share: float
    removed_controls: int = 0

    def line(self, corpus: str, max_length: int) -> str:
        """The one line printed at the start of every fit."""
        return (f"gan_writer: corpus {corpus}: {self.samples} training samples, {self.characters} characters, "
                f"{self.tokens} tokens; {self.cut_share:.1%} of the tokens cut by data.max_length={max_length} "
                f"({self.cut_samples} samples longer, longest {self.longest}); vocabulary {self.vocab_size}; "
                f"unknown in validation {self.unk_share:.2%}; control characters removed {self.removed_controls}")


def corpus_stats(texts: list[str], lengths: list[int], valid_ids: list[list[int]], max_length: int,
                 vocab_size: int, unk_id: int | None, removed_controls: int = 0) -> CorpusStats:
    """Statistics of the training texts given their token counts (EOS included, *before*
    the cut to ``max_length``); ``valid_ids`` are the validation rows (token ids)."""
    lengths = sorted(lengths)
    tokens = sum(lengths)
    cut = sum(max(0, n - max_length) for n in lengths)
    valid_tokens = sum(len(r) for r in valid_ids)
    unk = sum(r.count(unk_id) for r in valid_ids) if unk_id is not None else 0
    return CorpusStats(
        samples=len(texts), characters=sum(map(len, texts)), tokens=tokens,
        cut_share=cut / tokens if tokens else 0.0, cut_samples=sum(n > max_length for n in lengths),
        longest=lengths[-1] if lengths else 0, p95=lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0,
        vocab_size=vocab_size, unk_share=unk / valid_tokens if valid_tokens else 0.0,
        removed_controls=removed_controls)


def check_cut(stats: CorpusStats, corpus: str, max_length: int) -> None:
    """Refuse a training split of which more than half the tokens would be cut.

    Raises:
        ValueError: naming ``data.max_length`` and ``model.generator.n_positions`` with
            values that would keep the samples whole (the longest, and the 95th percentile).
    """
    if stats.cut_share <= MAX_CUT_SHARE:
        return
    alt = stats.p95 < stats.longest
    fit = f"{stats.longest}" + (f" (or {stats.p95}, which keeps 95% of the samples whole)" if alt else "")
    pos = f"{stats.longest + 1}" + (f" (or {stats.p95 + 1})" if alt else "")
    raise ValueError(
        f"corpus {corpus}: data.max_length={max_length} tokens would cut {stats.cut_share:.0%} of the training "
        f"text ({stats.cut_samples} of {stats.samples} samples are longer; the longest has {stats.longest} tokens "
        f"with EOS). Set data.max_length to {fit} and model.generator.n_positions to at least {pos}; or split "
        "the text into shorter samples (format: lines, paragraphs or fortune, or the corpus's unit option)")
