"""Is a logged curve rising? Least-squares trend of a scalar over training steps.

Used to state "the reward rises" from numbers rather than by eye: the slope of an ordinary
least-squares line through the logged points, its standard error, and the means of the first
and last quarter of the points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Trend", "trend"]


@dataclass(frozen=True)
class Trend:
    """Summary of a curve; ``slope`` and ``stderr`` are per 100 steps."""

    n: int
    slope: float
    stderr: float
    first_quarter: float
    last_quarter: float

    @property
    def t(self) -> float:
        """Slope over its standard error (|t| > 2: a trend unlikely to be noise)."""
        if self.stderr > 0:
            return self.slope / self.stderr
        return 0.0 if self.slope == 0 else math.copysign(math.inf, self.slope)  # an exact line


def trend(points: Sequence[tuple[float, float]]) -> Trend:
    """OLS trend of ``points`` = ``[(step, value), ...]`` (e.g. ``load_scalars(run)[tag]``).

    Returns:
        :class:`Trend`: slope and its standard error (value units per 100 steps), and the
        mean value of the first and last ``max(1, n // 4)`` points in step order.

    Raises:
        ValueError: with fewer than 3 points, all points at one step, or a value or step
            that is not finite (a NaN in the log would otherwise read as a trend).
    """
    pts = sorted(((float(s), float(v)) for s, v in points), key=lambda p: p[0])  # stable for equal steps
    bad = [p for p in pts if not (math.isfinite(p[0]) and math.isfinite(p[1]))]
    if bad:
        raise ValueError(f"{len(bad)} point(s) are not finite, e.g. (step, value) = {bad[0]}; drop or fix them first")
    n = len(pts)
    if n < 3:
        raise ValueError(f"a trend needs at least 3 points, got {n}")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all points are at the same step")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    resid = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    stderr = math.sqrt(resid / (n - 2) / sxx)
    q = max(1, n // 4)
    return Trend(n, 100 * slope, 100 * stderr, sum(ys[:q]) / q, sum(ys[-q:]) / q)
