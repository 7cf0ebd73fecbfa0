"""The least-squares trend against numpy.polyfit and on exact lines."""
import math

import numpy as np
import pytest

from gan_writer.analysis.trend import trend


def test_matches_numpy_polyfit_and_its_standard_error():
    rng = np.random.default_rng(0)
    steps = np.arange(0, 240, 4.0)
    values = 0.4 + 0.0003 * steps + rng.normal(0, 0.02, steps.size)
    got = trend(list(zip(steps, values)))
    coef, res, *_ = np.polyfit(steps, values, 1, full=True)
    sxx = ((steps - steps.mean()) ** 2).sum()
    se = math.sqrt(res[0] / (steps.size - 2) / sxx)
    assert got.slope == pytest.approx(100 * coef[0], rel=1e-9)
    assert got.stderr == pytest.approx(100 * se, rel=1e-9)
    q = steps.size // 4
    assert got.first_quarter == pytest.approx(values[:q].mean()) and got.last_quarter == pytest.approx(values[-q:].mean())
    assert got.t > 2  # the planted rise is found


def test_exact_line_unsorted_input_and_flat_noise():
    pts = [(10, 1.5), (0, 1.0), (20, 2.0), (30, 2.5)]
    got = trend(pts)
    assert got.slope == pytest.approx(5.0) and got.stderr == 0 and got.t == math.inf
    assert (got.first_quarter, got.last_quarter) == (1.0, 2.5)
    flat = trend([(s, 0.5 + (0.01 if s % 2 else -0.01)) for s in range(100)])
    assert abs(flat.t) < 2
    constant = trend([(s, 0.5) for s in range(4)])
    assert constant.slope == 0 and constant.t == 0  # not "rising"


def test_too_few_points_one_step_or_not_finite():
    with pytest.raises(ValueError, match="not finite"):
        trend([(0, 0.5), (1, float("nan")), (2, 0.4), (3, 0.3)])
    with pytest.raises(ValueError, match="at least 3"):
        trend([(0, 1.0), (1, 2.0)])
    with pytest.raises(ValueError, match="same step"):
        trend([(3, 1.0), (3, 2.0), (3, 0.0)])
