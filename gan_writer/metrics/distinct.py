"""Diversity metrics: distinct-n and the number of unique samples.

distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
Conversation Models") is the number of unique n-grams divided by the total number of
n-grams, pooled over all samples; n-grams never cross sample boundaries.
"""
from __future__ import annotations

import numbers

from typing import Dict, Hashable, List, Sequence, Union

__all__ = ["distinct_n", "unique_samples"]


def _check(samples) -> List[Sequence]:
    samples = list(samples)
    for s in samples:
        if isinstance(s, (str, bytes)):
            raise TypeError(
                "samples: each sample must be a sequence of tokens, got a string; "
                "tokenize it first (gan_writer.metrics.tokenize_for_metrics)"
            )
    return samples


def distinct_n(samples: Sequence[Sequence[Hashable]], n: Union[int, Sequence[int]] = 2):
    """Unique n-grams / total n-grams over all samples.

    Args:
        samples: generated sentences, each a sequence of tokens (words or characters).
        n: an order >= 1, or a sequence of orders.

    Returns:
        float in [0, 1] (0.0 when the samples contain no n-gram of that order), or
        ``{order: float}`` when ``n`` is a sequence.

    Raises:
        ValueError: an order < 1 (argument ``n``) or an empty sequence of orders.
        TypeError: a sample is a plain string.
    """
    if isinstance(n, bool):
        raise TypeError(f"n: an n-gram order (an integer >= 1), got {n!r}")
    scalar = isinstance(n, numbers.Integral)  # numpy integers too
    orders = [int(n)] if scalar else [int(k) for k in n]
    if not orders:
        raise ValueError("n: give at least one n-gram order")
    for k in orders:
        if k < 1:
            raise ValueError(f"n: n-gram orders must be >= 1, got {k}")
    samples = _check(samples)
    out: Dict[int, float] = {}
    for k in orders:
        seen = set()
        total = 0
        for s in samples:
            s = tuple(s)
            m = len(s) - k + 1
            if m > 0:
                total += m
                seen.update(s[i:i + k] for i in range(m))
        out[k] = len(seen) / total if total else 0.0
    return out[orders[0]] if scalar else out


def unique_samples(samples: Sequence[Union[str, Sequence[Hashable]]]) -> int:
    """Number of distinct samples; a sample is a string or a sequence of tokens."""
    return len({s if isinstance(s, str) else tuple(s) for s in samples})
