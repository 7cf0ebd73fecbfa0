"""Deterministic train/valid/test split by seed.

A sample's place is decided by ``sha256(seed, text)``: samples are ranked by that key
(ties, i.e. identical texts, broken by position), the first ``n_test`` go to test, the
next ``n_valid`` to valid, the rest to train. Hence:

* the same seed gives the same split on every machine and Python version;
* membership does not depend on the order the samples were read in (file order);
* identical texts land next to each other in the ranking, so duplicates rarely straddle
  splits (they can only at a split boundary);
* each split comes in ranking order, a seeded pseudo-random order, so ``train[:n]`` is a
  random subset (not the first poets or chapters of the file).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["split_counts", "split_samples", "carve"]


def _check_fraction(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def split_counts(n: int, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> tuple[int, int, int]:
    """Sizes ``(n_train, n_valid, n_test)`` for ``n`` samples.

    ``n_valid = round(n * valid_fraction)`` (likewise test), raised to 1 when the fraction
    is positive and ``n >= 3``, so a small corpus still gets a non-empty valid/test set.
    Raises ValueError for fractions outside [0, 1), a sum >= 1, or when train would be empty.
    """
    vf = _check_fraction("valid_fraction", valid_fraction)
    tf = _check_fraction("test_fraction", test_fraction)
    if vf + tf >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1, got {vf} + {tf}")
    n_valid, n_test = round(n * vf), round(n * tf)
    if n >= 3:
        n_valid = max(n_valid, 1 if vf > 0 else 0)
        n_test = max(n_test, 1 if tf > 0 else 0)
    n_train = n - n_valid - n_test
    if n > 0 and n_train < 1:
        raise ValueError(f"{n} samples are too few for valid_fraction={vf} and test_fraction={tf}: "
                         "train would be empty; lower the fractions or add data")
    return n_train, n_valid, n_test


def _ranking(samples: Sequence[str], seed: int, salt: str) -> list[int]:
    prefix = f"{salt}\x00{int(seed)}\x00".encode()
    keys = [(hashlib.sha256(prefix + s.encode("utf-8", "surrogatepass")).digest(), i)
            for i, s in enumerate(samples)]
    keys.sort()
    return [i for _, i in keys]


def split_samples(samples: Sequence[str], *, seed: int = 0, valid_fraction: float = 0.05,
                  test_fraction: float = 0.05) -> tuple[list[str], list[str], list[str]]:
    """Split ``samples`` into ``(train, valid, test)`` lists, deterministically by ``seed``.

    Sizes follow :func:`split_counts`; the three lists are disjoint by position, their
    union is ``samples``, and each is in seeded ranking order (see the module docstring),
    so the result does not depend on the order of ``samples``. Raises ValueError as
    :func:`split_counts` does.
    """
    _, n_valid, n_test = split_counts(len(samples), valid_fraction, test_fraction)
    order = _ranking(samples, seed, "split")
    test_idx, valid_idx, train_idx = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    return ([samples[i] for i in train_idx], [samples[i] for i in valid_idx],
            [samples[i] for i in test_idx])


def carve(samples: Sequence[str], fraction: float, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """Take ``round(len * fraction)`` samples (at least 1 when ``fraction > 0`` and there are
    3 or more) out of ``samples``, deterministically by ``seed``.

    Used to carve a validation set from an official train split. Returns ``(rest, carved)``,
    both in seeded ranking order. Raises ValueError for a fraction outside [0, 1).
    """
    _, n_carved, _ = split_counts(len(samples), fraction, 0.0)
    order = _ranking(samples, seed, "carve")
    return [samples[i] for i in order[n_carved:]], [samples[i] for i in order[:n_carved]]
