"""Degenerate sample sets: what makes BLEU, Self-BLEU and distinct-n misleading.

Three cases are detected on metric tokens (:func:`degeneracy`) and warned about
(:func:`degeneracy_warnings`); the scores themselves stay those of the reference
definitions (nltk for BLEU, Li et al. 2016 for distinct-n):

* **empty samples** (a generator that emits EOS first). An empty hypothesis has no
  n-gram, so its BLEU and Self-BLEU are 0 and it adds no n-gram to distinct-n: a set of
  empty samples gets Self-BLEU 0, which reads as "maximally diverse".
* **identical samples**. Self-BLEU is 1 for every order the samples are long enough for.
* **samples shorter than n tokens**. nltk's modified precision of an order with no
  n-gram is 0/1 (the denominator is clamped to 1); smoothing ``method1`` turns it into
  epsilon = 0.1, so BLEU-n = 0.1^(m/n) with m the number of orders > the length. Identical
  3-token samples thus get Self-BLEU-2 = 1.0, Self-BLEU-4 = 0.1^(1/4) = 0.562 and
  Self-BLEU-5 = 0.1^(2/5) = 0.398: the order-5 value measures the smoothing, not the
  overlap (no brevity penalty is involved: hypothesis and references have equal length).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

__all__ = ["Degeneracy", "degeneracy", "degeneracy_warnings", "DegenerateSamplesWarning", "MOSTLY",
           "point_degeneracy"]

#: share of samples above which a set is "mostly" empty / identical / short
MOSTLY = 0.5


class DegenerateSamplesWarning(UserWarning):
    """Samples that make BLEU / Self-BLEU / distinct-n misleading (empty, identical, short)."""


@dataclass(frozen=True)
class Degeneracy:
    """What is degenerate about ``num_samples`` tokenized samples.

    Attributes:
        num_samples: samples seen.
        empty_samples: samples with no metric token.
        top_sample_share: share of samples equal to the most frequent one (1/S when all
            differ, 1.0 when all are identical), in (0, 1].
        short_share: ``{n: share of samples with fewer than n tokens}`` per order asked.
    """
    num_samples: int
    empty_samples: int
    top_sample_share: float
    short_share: dict[int, float] = field(default_factory=dict)

    @property
    def empty_share(self) -> float:
        return self.empty_samples / self.num_samples if self.num_samples else 0.0


def degeneracy(samples: Sequence[Sequence[Hashable]], orders: Iterable[int] = ()) -> Degeneracy:
    """Count empty, identical and shorter-than-n samples (each a sequence of tokens)."""
    samples = [tuple(s) for s in samples]
    n = len(samples)
    top = Counter(samples).most_common(1)[0][1] / n if n else 0.0
    short = {k: sum(len(s) < k for s in samples) / n if n else 0.0 for k in orders}
    return Degeneracy(n, sum(not s for s in samples), top, short)


def degeneracy_warnings(d: Degeneracy) -> list[str]:
    """Sentences explaining why the metrics of these samples mislead (empty list if none)."""
    out = []
    if d.num_samples and d.empty_samples == d.num_samples:
        out.append(f"all {d.num_samples} samples are empty (metrics/empty_samples): Self-BLEU 0 and distinct-n 0 "
                   "here mean no text, not diversity")
    elif d.empty_share > MOSTLY:
        out.append(f"{d.empty_samples} of {d.num_samples} samples are empty (metrics/empty_samples): they score "
                   "BLEU 0 and lower Self-BLEU, which then overstates diversity")
    if d.num_samples > 1 and d.top_sample_share == 1.0 and d.empty_samples < d.num_samples:
        out.append(f"all {d.num_samples} samples are identical: Self-BLEU is 1 (or the smoothing floor for orders "
                   "longer than the sample) and distinct-n only counts one sample's n-grams")
    elif d.num_samples > 1 and d.top_sample_share > MOSTLY and d.empty_samples < d.num_samples:
        out.append(f"{d.top_sample_share:.0%} of the samples are one and the same text (metrics/top_sample_share)")
    for k, share in sorted(d.short_share.items()):
        if share > MOSTLY and d.empty_samples < d.num_samples:
            out.append(f"{share:.0%} of the samples have fewer than {k} tokens: their BLEU-{k} / Self-BLEU-{k} is set "
                       f"by nltk's smoothing (epsilon 0.1 for each missing order), not by overlap; read a lower order")
            break  # the lowest such order says it for the higher ones
    return out


def point_degeneracy(metrics: dict[str, float], num_samples: int) -> str | None:
    """Why a scored point (the metrics of :func:`gan_writer.metrics.suite.text_metrics`)
    is degenerate: ``"mostly empty"`` or ``"mostly identical"`` samples; None if neither
    (or if the metrics do not record it)."""
    if num_samples and metrics.get("empty_samples", 0.0) / num_samples > MOSTLY:
        return f"mostly empty samples ({metrics['empty_samples']:.0f} of {num_samples})"
    if metrics.get("top_sample_share", 0.0) > MOSTLY:
        return f"mostly identical samples ({metrics['top_sample_share']:.0%} one text)"
    return None
