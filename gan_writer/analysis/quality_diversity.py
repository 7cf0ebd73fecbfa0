"""Quality–diversity curves from temperature sweeps, and a computed MLE-vs-GAN verdict.

Caccia et al. (ICLR 2020, "Language GANs Falling Short") show that one number per model
is misleading: dividing an MLE model's logits by a temperature ``T < 1`` trades diversity
for quality, so a model must be compared over the whole curve. Here each run is sampled
at several temperatures (same sample size, same seed) and each point is scored on two
axes, with their direction explicit (:class:`Axis`):

* real corpora: quality = BLEU-n of the samples against the test split (``bleu_n``, higher
  is better), diversity = 1 − Self-BLEU-n of the samples (higher is better);
* the oracle benchmark: quality = NLL-oracle of the samples (``nll_oracle``, lower is
  better), diversity = NLL-test of the temperature-scaled model on the oracle's held-out
  set (``nll_test_t``, lower is better). Caccia et al. (section 4) score the tempered
  model, which is what makes the oracle curve a curve: NLL-test at ``T = 1``
  (``nll_test``) does not depend on the sweep.

The verdict (:func:`verdict`) is computed, never written by hand: a point of a compared
run is *dominated* if some baseline (MLE) temperature is at least as good on both axes and
better on one (Pareto dominance: a point equal to a baseline point is not dominated);
the *signed area* between the curves integrates the quality gap over the diversity range
both curves cover (piecewise-linear interpolation of quality as a function of diversity),
signed so that positive means the compared run is better. The area is taken between the
runs' *Pareto fronts* (their non-dominated temperatures): a temperature sweep is not
monotone on every axis (NLL-test at T is smallest near T = 1 and grows on both sides, so
the points with T > 1 are worse on both oracle axes and fold the curve back on itself),
and the front is the trade-off a run can actually offer.

Everything here is plain Python and numpy except :func:`sweep_run` and
:func:`tempered_nll`, which sample and score with torch.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "CSV_COLUMNS", "Axis", "Point", "RunVerdict", "axes_for", "curves_from_rows", "dominating",
    "pareto_front", "area_between", "verdict", "verdict_line", "metrics_by_point", "markdown_table",
    "write_rows", "read_rows", "read_sample_texts", "tempered_nll", "sweep_run",
]

#: Columns of ``results.csv`` (one row per run × temperature × metric).
CSV_COLUMNS = ("run", "checkpoint", "temperature", "metric", "value", "num_samples", "num_references",
               "tokenization", "seed")


@dataclass(frozen=True)
class Axis:
    """One axis of the quality–diversity plane.

    Attributes:
        name: label, e.g. ``"BLEU-4 (quality)"``.
        key: the metric in ``results.csv`` it is read from, e.g. ``"bleu_4"``.
        higher_is_better: direction used by the dominance check, the area sign and the label.
        one_minus: the axis value is ``1 - metric`` (e.g. 1 − Self-BLEU as diversity).
    """

    name: str
    key: str
    higher_is_better: bool
    one_minus: bool = False

    @property
    def label(self) -> str:
        """Axis label with its direction, e.g. ``"BLEU-4 (quality) ↑ better"``."""
        return f"{self.name} {'↑' if self.higher_is_better else '↓'} better"

    def value(self, metrics: Mapping[str, float]) -> float:
        """The axis value from a point's metrics. Raises KeyError if ``key`` is missing."""
        v = float(metrics[self.key])
        return 1.0 - v if self.one_minus else v

    def at_least_as_good(self, a: float, b: float) -> bool:
        """Whether value ``a`` is at least as good as ``b`` on this axis."""
        return a >= b if self.higher_is_better else a <= b


def axes_for(kind: str, bleu_n: int = 4) -> tuple[Axis, Axis]:
    """``(quality, diversity)`` axes for ``kind`` ``"text"`` (a real corpus) or ``"oracle"``.

    Raises:
        ValueError: for another kind.
    """
    if kind == "text":
        return (Axis(f"BLEU-{bleu_n} (quality)", f"bleu_{bleu_n}", True),
                Axis(f"1 − Self-BLEU-{bleu_n} (diversity)", f"self_bleu_{bleu_n}", True, one_minus=True))
    if kind == "oracle":
        return (Axis("NLL-oracle, nats/token (quality)", "nll_oracle", False),
                Axis("NLL-test at T, nats/token (diversity)", "nll_test_t", False))
    raise ValueError(f"kind must be 'text' or 'oracle', got {kind!r}")


@dataclass(frozen=True)
class Point:
    """A run at one temperature: its axis values (units of the axes)."""

    run: str
    temperature: float
    quality: float
    diversity: float


# ---------------------------------------------------------------- results rows (CSV)
def metrics_by_point(rows: Iterable[Mapping]) -> dict[str, dict[float, dict[str, float]]]:
    """``{run: {temperature: {metric: value}}}`` from result rows (CSV dicts or dicts)."""
    out: dict[str, dict[float, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        out[str(r["run"])][float(r["temperature"])][str(r["metric"])] = float(r["value"])
    return {run: dict(temps) for run, temps in out.items()}


def curves_from_rows(rows: Iterable[Mapping], quality: Axis, diversity: Axis) -> dict[str, list[Point]]:
    """One curve per run (points sorted by temperature), in the order runs first appear.

    Raises:
        KeyError: naming the run, temperature and metric if an axis metric is missing.
    """
    curves: dict[str, list[Point]] = {}
    for run, temps in metrics_by_point(rows).items():
        pts = []
        for t in sorted(temps):
            try:
                pts.append(Point(run, t, quality.value(temps[t]), diversity.value(temps[t])))
            except KeyError as err:
                raise KeyError(f"run {run!r} at T={t:g} has no metric {err.args[0]!r} "
                               f"(has: {', '.join(sorted(temps[t]))})") from None
        curves[run] = pts
    return curves


def write_rows(path: str | Path, rows: Sequence[Mapping]) -> None:
    """Write result rows to ``path`` as CSV with :data:`CSV_COLUMNS` (UTF-8)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def read_rows(path: str | Path) -> list[dict]:
    """Read ``results.csv``: temperature and value as float, sample/reference sizes and seed as int.

    Raises:
        ValueError: if a column of :data:`CSV_COLUMNS` is missing.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} is not a compare results.csv: missing columns {sorted(missing)}")
        rows = list(reader)
    for r in rows:
        r["temperature"], r["value"] = float(r["temperature"]), float(r["value"])
        for k in ("num_samples", "num_references", "seed"):
            r[k] = int(r[k])
    return rows


def read_sample_texts(path: str | Path) -> dict[float, dict[str, list[str]]]:
    """``samples.csv`` of a compare run as ``{temperature: {run: [texts in index order]}}``."""
    out: dict[float, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="", encoding="utf-8") as fh:
        for r in sorted(csv.DictReader(fh), key=lambda r: int(r["index"])):
            out[float(r["temperature"])][r["run"]].append(r["text"])
    return {t: dict(runs) for t, runs in sorted(out.items())}


# ---------------------------------------------------------------- dominance and area
def dominating(point: Point, baseline: Sequence[Point], quality: Axis, diversity: Axis) -> list[float]:
    """Temperatures of the baseline points that Pareto-dominate ``point``: at least as good on
    both axes and strictly better on one (a baseline point equal to ``point`` does not)."""
    return [b.temperature for b in baseline
            if quality.at_least_as_good(b.quality, point.quality)
            and diversity.at_least_as_good(b.diversity, point.diversity)
            and (b.quality, b.diversity) != (point.quality, point.diversity)]


def pareto_front(points: Sequence[Point], quality: Axis, diversity: Axis) -> list[Point]:
    """The points no other point beats: none is at least as good on both axes and strictly
    better on one. Of identical points the first is kept. Sorted by diversity."""
    front: list[Point] = []
    for i, p in enumerate(points):
        beaten = False
        for j, q in enumerate(points):
            if j == i:
                continue
            as_good = (quality.at_least_as_good(q.quality, p.quality)
                       and diversity.at_least_as_good(q.diversity, p.diversity))
            same = q.quality == p.quality and q.diversity == p.diversity
            if as_good and (not same or j < i):
                beaten = True
                break
        if not beaten:
            front.append(p)
    return sorted(front, key=lambda p: p.diversity)


def _as_function(points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
    """Quality as a function of diversity: sorted diversities, mean quality at ties."""
    by_d: dict[float, list[float]] = defaultdict(list)
    for p in points:
        by_d[p.diversity].append(p.quality)
    xs = np.array(sorted(by_d), dtype=float)
    return xs, np.array([np.mean(by_d[x]) for x in xs], dtype=float)


def area_between(curve: Sequence[Point], baseline: Sequence[Point], quality: Axis) -> tuple[float, float, float]:
    """Signed area between two quality–diversity curves over their common diversity range.

    Each curve is quality as a piecewise-linear function of diversity (points sorted by
    diversity; ties averaged). Over the overlap ``[lo, hi]`` of the two diversity ranges
    the area is ``s * ∫ (q_curve(d) - q_baseline(d)) dd`` with ``s = +1`` if higher
    quality is better and ``-1`` otherwise, so a positive area always means ``curve`` is
    better than ``baseline`` (above it when higher is better). The integrand is piecewise
    linear between the union of both curves' breakpoints, so the trapezoid rule on those
    breakpoints is exact. Units: quality units × diversity units.

    Returns:
        ``(area, lo, hi)``; ``(nan, lo, hi)`` if the ranges do not overlap or the overlap
        has zero width (e.g. a curve of one point).
    """
    xa, ya = _as_function(curve)
    xb, yb = _as_function(baseline)
    if not len(xa) or not len(xb):
        return math.nan, math.nan, math.nan
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not hi > lo:
        return math.nan, float(lo), float(hi)
    xs = np.unique(np.concatenate([[lo, hi], xa[(xa > lo) & (xa < hi)], xb[(xb > lo) & (xb < hi)]]))
    gap = np.interp(xs, xa, ya) - np.interp(xs, xb, yb)
    area = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(xs)))
    return (area if quality.higher_is_better else -area), float(lo), float(hi)


@dataclass
class RunVerdict:
    """How one run compares with the baseline.

    Attributes:
        run, baseline: run names.
        dominated_by: ``{temperature of run: [baseline temperatures dominating it]}``.
        lo, hi: the diversity range the area is computed over.
    """

    run: str
    baseline: str
    dominated_by: dict[float, list[float]] = field(default_factory=dict)
    area: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    front: list[float] = field(default_factory=list)
    baseline_front: list[float] = field(default_factory=list)

    @property
    def num_dominated(self) -> int:
        return sum(bool(v) for v in self.dominated_by.values())

    @property
    def fraction_dominated(self) -> float:
        """Fraction of the run's points dominated by some baseline temperature (0..1)."""
        return self.num_dominated / len(self.dominated_by) if self.dominated_by else math.nan


def verdict(curves: Mapping[str, Sequence[Point]], baseline: str, quality: Axis, diversity: Axis) -> list[RunVerdict]:
    """Compare every run in ``curves`` other than ``baseline`` with the baseline curve:
    dominated points (against every baseline point) and the signed area between the two
    runs' Pareto fronts (:func:`pareto_front`, :func:`area_between`).

    Raises:
        KeyError: if ``baseline`` is not one of the runs (names the runs).
    """
    if baseline not in curves:
        raise KeyError(f"baseline run {baseline!r} is not among the runs {sorted(curves)}")
    base = curves[baseline]
    out = []
    for run, pts in curves.items():
        if run == baseline:
            continue
        v = RunVerdict(run, baseline, {p.temperature: dominating(p, base, quality, diversity) for p in pts})
        front, base_front = pareto_front(pts, quality, diversity), pareto_front(base, quality, diversity)
        v.front, v.baseline_front = [p.temperature for p in front], [p.temperature for p in base_front]
        v.area, v.lo, v.hi = area_between(front, base_front, quality)
        out.append(v)
    return out


#: narrowest common diversity range (in diversity units) over which the area decides a winner
MIN_OVERLAP = 1e-3


def verdict_line(v: RunVerdict, diversity: Axis) -> str:
    """One Markdown sentence stating a :class:`RunVerdict` (starts with ``**Verdict``)."""
    n = len(v.dominated_by)
    head = (f"**Verdict ({v.run} vs {v.baseline}):** {v.num_dominated} of {n} {v.run} points "
            f"({100 * v.fraction_dominated:.0f}%) are dominated by some {v.baseline} temperature")
    fronts = (f"Pareto fronts: {v.run} T ∈ {{{', '.join(f'{t:g}' for t in v.front)}}}, "
              f"{v.baseline} T ∈ {{{', '.join(f'{t:g}' for t in v.baseline_front)}}}")
    if math.isnan(v.area):
        tail = (f"; the Pareto fronts cover no common {diversity.name} range, so no area between them is "
                f"defined ({fronts}).")
    elif v.hi - v.lo < MIN_OVERLAP:
        tail = (f"; the Pareto fronts overlap only on {diversity.name} ∈ [{v.lo:.6g}, {v.hi:.6g}] (narrower than "
                f"{MIN_OVERLAP:g}), too little to say which curve is better ({fronts}).")
    else:
        who = v.run if v.area > 0 else v.baseline if v.area < 0 else "neither"
        tail = (f"; signed area between the Pareto fronts = {v.area:+.4g} over {diversity.name} ∈ "
                f"[{v.lo:.4g}, {v.hi:.4g}] (mean quality gap {v.area / (v.hi - v.lo):+.4g}; positive = {v.run} "
                f"better; here {who} is better; {fronts}).")
    return head + tail


TABLE_EXTRAS = ("distinct_2", "distinct_4", "unique_samples", "empty_samples", "nll_test_t", "nll_test")


def markdown_table(rows: Iterable[Mapping], quality: Axis, diversity: Axis,
                   verdicts: Sequence[RunVerdict] = (), extras: Sequence[str] = TABLE_EXTRAS,
                   excluded: Mapping[str, Mapping[float, str]] | None = None) -> str:
    """A Markdown table: one line per run × temperature with both axes, the ``extras``
    metrics present in the rows, and which baseline temperatures dominate each point
    (``excluded``: ``{run: {temperature: reason}}`` of points left out of the verdict,
    shown as "excluded: reason")."""
    data = metrics_by_point(rows)
    present = [k for k in extras if k not in (quality.key, diversity.key)
               and any(k in m for temps in data.values() for m in temps.values())]
    dom = {(v.run, t): ts for v in verdicts for t, ts in v.dominated_by.items()}
    head = ["run", "T", quality.label, diversity.label, *present] + (
        ["dominated by baseline T"] if verdicts or excluded else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run, temps in data.items():
        for t in sorted(temps):
            m = temps[t]
            cells = [run, f"{t:g}", f"{quality.value(m):.4f}", f"{diversity.value(m):.4f}",
                     *(f"{m[k]:.4g}" if k in m else "" for k in present)]
            if verdicts or excluded:
                ts, why = dom.get((run, t)), (excluded or {}).get(run, {}).get(t)
                cells.append(f"excluded: {why}" if why else "(baseline)" if ts is None
                             else ", ".join(f"{x:g}" for x in ts) or "no")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- sampling sweep (torch)
def tempered_nll(generator, batches: Iterable[Mapping], temperature: float = 1.0) -> float:
    """Token-weighted NLL (nats per token) of ``softmax(logits / temperature)`` on batches.

    The model of a temperature sweep point, scored on held-out text (Caccia et al. 2020's
    NLL-test at temperature ``T``). At ``T = 1`` it equals
    :func:`gan_writer.metrics.nll.corpus_nll`.

    Args:
        generator: a :class:`~gan_writer.models.base.CausalGenerator` (``logits``).
        batches: dicts with ``ids`` and ``attention_mask`` ``(B, T)``.
        temperature: > 0.

    Raises:
        ValueError: if ``temperature <= 0`` or the batches hold no real token.
    """
    import torch

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    total, count = 0.0, 0.0
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            for b in batches:
                ids, mask = b["ids"].to(generator.device), b["attention_mask"].to(generator.device)
                lp = (generator.logits(ids, mask).float() / temperature).log_softmax(-1)
                lp = lp.gather(-1, ids.unsqueeze(-1)).squeeze(-1) * mask.to(lp.dtype)
                total -= float(lp.sum())
                count += float(mask.sum())
    finally:
        generator.train(was_training)
    if count == 0:
        raise ValueError("tempered_nll got no real tokens (empty split)")
    return total / count


def sweep_run(
    generator, tokenizer, temperatures: Sequence[float], n: int, max_new_tokens: int, seed: int,
    metric_tok, references=None, bleu_orders: Sequence[int] = (2, 3, 4, 5),
    test_batches: Sequence[Mapping] = (), oracle=None, keep_samples: int = 0,
) -> tuple[dict[float, dict[str, float]], dict[float, list[str]]]:
    """Sample and score one generator at each temperature (the metric suite, no top-k/top-p).

    Every temperature draws ``n`` samples with the same ``seed`` from
    ``softmax(logits / T)``. Metrics per temperature: ``bleu_k`` (if ``references``),
    ``self_bleu_k``, ``distinct_1..4``, ``unique_samples`` (from
    :func:`gan_writer.metrics.suite.text_metrics`), ``nll_oracle`` (if ``oracle``),
    ``nll_test`` (temperature 1, the same at every T) and ``nll_test_t`` (at T), both in
    nats per token on ``test_batches``.

    Args:
        generator, tokenizer: from :func:`gan_writer.checkpoint.load_artifacts`.
        temperatures: softmax temperatures (> 0).
        n: samples per temperature (>= 2).
        max_new_tokens: tokens per sample at most (the checkpoint's ``max_length``).
        seed: sampling seed, reused at every temperature.
        metric_tok: a :class:`~gan_writer.metrics.text_tokenize.MetricTokenizer`.
        references: a :class:`~gan_writer.metrics.bleu.BleuReference` or None (no BLEU).
        bleu_orders: n of BLEU-n and Self-BLEU-n.
        test_batches: held-out batches encoded with this run's tokenizer (for NLL-test).
        oracle: the oracle model for NLL-oracle, or None.
        keep_samples: how many decoded samples per temperature to return.

    Returns:
        ``({T: {metric: value}}, {T: first keep_samples texts}})``.
    """
    from gan_writer.metrics.nll import corpus_nll, nll_oracle
    from gan_writer.metrics.suite import sample_texts, text_metrics
    from gan_writer.sampling import mask_after_eos

    test_batches = list(test_batches)
    nll_test = corpus_nll(generator, test_batches) if test_batches else None
    scores, samples = {}, {}
    for t in temperatures:
        texts, ids = sample_texts(generator, tokenizer, n, max_new_tokens, temperature=t, seed=seed)
        m = text_metrics(texts, references, metric_tok, bleu_orders=bleu_orders)
        if oracle is not None:
            m["nll_oracle"] = nll_oracle(oracle, ids, mask_after_eos(ids, generator.eos_token_id))
        if nll_test is not None:
            m["nll_test"] = nll_test
            m["nll_test_t"] = tempered_nll(generator, test_batches, t)
        scores[float(t)], samples[float(t)] = m, texts[:keep_samples]
    return scores, samples
