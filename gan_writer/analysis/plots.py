"""Matplotlib figures for the analysis: quality–diversity curves (Caccia et al. 2020,
"Language GANs Falling Short"), metrics against temperature, training curves from
TensorBoard scalars, and corpus statistics.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no
global figure state, no GUI backend needed); save it with ``fig.savefig(path)`` or show it
in a notebook with ``IPython.display.display(fig)``. Labels are ASCII/Latin so they render
with matplotlib's default font (Chinese text belongs in tables, not in plot labels).
"""
from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gan_writer.analysis.quality_diversity import Axis, Point, RunVerdict

__all__ = ["plot_quality_diversity", "plot_metric_vs_temperature", "plot_scalars", "plot_histograms",
           "plot_rank_frequency", "samples_html"]



def _panels(n: int, ncols: int, width: float) -> tuple[Figure, list]:
    """A figure with ``n`` panels in rows of at most ``ncols`` (``width`` inches each)."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(width * ncols, 3.0 * nrows), dpi=100, layout="constrained")
    return fig, [fig.add_subplot(nrows, ncols, k + 1) for k in range(n)]

def plot_quality_diversity(
    curves: Mapping[str, Sequence[Point]], quality: Axis, diversity: Axis, baseline: str | None = None,
    verdicts: Sequence[RunVerdict] = (), title: str = "Quality–diversity under a temperature sweep",
    footnote: str | None = None,
) -> Figure:
    """Quality (y) against diversity (x), one line per run through its temperatures.

    Each point is labelled with its temperature; the baseline run is drawn solid and
    thicker, other runs dashed; points of other runs dominated by some baseline
    temperature (``verdicts``) are circled in red. Axis labels carry the direction
    (``↑ better`` / ``↓ better``), and ``footnote`` (sample size, references, seed,
    tokenization) is printed under the axes.
    """
    fig = Figure(figsize=(8.0, 6.0), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    dominated = {(v.run, t) for v in verdicts for t, by in v.dominated_by.items() if by}
    labels = []
    for run, pts in curves.items():
        pts = sorted(pts, key=lambda p: p.temperature)
        is_base = run == baseline
        line, = ax.plot([p.diversity for p in pts], [p.quality for p in pts], marker="o", markersize=6,
                        linestyle="-" if is_base else "--", linewidth=2.4 if is_base else 1.6,
                        label=f"{run} (baseline)" if is_base else run, zorder=3)
        labels += [(p.diversity, p.quality, f"T={p.temperature:g}", line.get_color(),
                    7.0 if (run, p.temperature) in dominated else 4.0) for p in pts]
        for p in pts:
            if (run, p.temperature) in dominated:
                ax.scatter([p.diversity], [p.quality], s=160, facecolors="none", edgecolors="red",
                           linewidths=1.2, zorder=4)
    if dominated:
        ax.scatter([], [], s=160, facecolors="none", edgecolors="red", label="dominated by a baseline T")
    ax.set_xlabel(diversity.label)
    ax.set_ylabel(quality.label)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    ax.margins(0.12)
    if footnote:
        fig.text(0.01, 0.005, footnote, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)
        fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    fig.canvas.draw()  # fix the layout and limits, then place the temperature labels
    _place_labels(ax, labels)
    return fig


def _place_labels(ax, labels: Sequence[tuple[float, float, str, str, float]], fontsize: float = 8) -> None:
    """Annotate points ``(x, y, text, color, marker radius in points)``, each label at the
    first of a few offsets where its box covers no marker, no line and no label placed
    before it (else where it covers least)."""
    import numpy as np

    px = ax.figure.dpi / 72.0  # pixels per point
    h = fontsize * 1.2 * px
    taken = []
    for x, y, _, _, radius in labels:
        (cx, cy), rr = ax.transData.transform((x, y)), radius * px
        taken.append((cx - rr, cy - rr, cx + rr, cy + rr))
    for line in ax.get_lines():  # sample the drawn lines every 4 px
        xy = ax.transData.transform(line.get_xydata())
        for a, b in zip(xy[:-1], xy[1:]):
            for t in np.linspace(0, 1, max(2, int(np.hypot(*(b - a)) / 4))):
                x, y = a + t * (b - a)
                taken.append((x - 1, y - 1, x + 1, y + 1))

    def covered(box):
        return sum(not (box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3]) for b in taken)

    for x, y, text, color, radius in labels:
        cx, cy = ax.transData.transform((x, y))
        w, r = len(text) * fontsize * 0.6 * px, radius * px + 1
        offsets = [(dx, dy) for dy in (r, -r - h, -h / 2, r + h, -r - 2 * h) for dx in (r, -r - w, -w / 2)]
        boxes = [(cx + dx, cy + dy, cx + dx + w, cy + dy + h) for dx, dy in offsets]
        best = min(range(len(boxes)), key=lambda i: (covered(boxes[i]), i))
        taken.append(boxes[best])
        ax.annotate(text, (x, y), textcoords="offset pixels", xytext=offsets[best], fontsize=fontsize,
                    color=color, zorder=2, va="bottom", ha="left",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})


def plot_metric_vs_temperature(data: Mapping[str, Mapping[float, Mapping[str, float]]],
                               metrics: Sequence[str], ncols: int = 3) -> Figure:
    """Each metric against temperature, one line per run.

    Args:
        data: ``{run: {temperature: {metric: value}}}``
            (:func:`gan_writer.analysis.quality_diversity.metrics_by_point`).
        metrics: metric keys, one panel each (missing ones are skipped).
    """
    metrics = [m for m in metrics if any(m in v for temps in data.values() for v in temps.values())]
    fig, axes = _panels(len(metrics), ncols, width=4.0)
    for ax, metric in zip(axes, metrics):
        for run, temps in data.items():
            ts = sorted(t for t in temps if metric in temps[t])
            ax.plot(ts, [temps[t][metric] for t in ts], marker="o", label=run)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("temperature T")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_scalars(runs: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], tags: Sequence[str],
                 ncols: int = 3, title: str | None = None) -> Figure:
    """Training curves: one panel per TensorBoard scalar tag, one line per run.

    Args:
        runs: ``{run label: {tag: [(step, value), ...]}}``
            (:func:`gan_writer.analysis.events.load_scalars` per run).
        tags: tags to draw; tags no run has are skipped.
    """
    tags = [t for t in tags if any(t in s for s in runs.values())]
    fig, axes = _panels(len(tags), ncols, width=4.2)
    for ax, tag in zip(axes, tags):
        for label, scalars in runs.items():
            if tag in scalars:
                pts = scalars[tag]
                ax.plot([s for s, _ in pts], [v for _, v in pts], marker="." if len(pts) < 30 else None, label=label)
        ax.set_title(tag, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_histograms(values: Mapping[str, Sequence[float]], xlabel: str, bins: int = 40,
                    title: str | None = None) -> Figure:
    """Overlaid, density-normalised histograms (e.g. sample lengths per split)."""
    fig = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, vals in values.items():
        if len(vals):
            ax.hist(vals, bins=bins, density=True, alpha=0.5, label=f"{label} (n={len(vals)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_rank_frequency(counts: Mapping[str, Sequence[int]], unit: str = "character") -> Figure:
    """Zipf plot: token frequency against frequency rank (log–log), one line per label.

    Args:
        counts: ``{label: counts sorted in decreasing order}``.
        unit: what a token is (for the axis labels).
    """
    fig = Figure(figsize=(6.0, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, c in counts.items():
        ax.loglog(range(1, len(c) + 1), c, label=f"{label} ({len(c)} types)")
    ax.set_xlabel(f"{unit} rank")
    ax.set_ylabel("count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def samples_html(texts: Mapping[str, Sequence[str]], n: int = 5,
                 marks: Mapping[str, Sequence[bool]] | None = None) -> str:
    """An HTML table with one column per run and one row per sample index (side by side).

    Args:
        texts: ``{run: [texts]}`` drawn with the same seed and temperature.
        n: rows to show.
        marks: ``{run: [flag per text]}``; flagged texts are shown in italics with a ``*``
            (e.g. verbatim copies of corpus text).
    """
    runs = list(texts)
    head = "".join(f"<th>{html.escape(r)}</th>" for r in runs)
    body = []
    for i in range(min(n, max((len(v) for v in texts.values()), default=0))):
        cells = []
        for r in runs:
            t = texts[r][i] if i < len(texts[r]) else ""
            cell = html.escape(t).replace("\n", "<br>")
            if marks and marks.get(r) and i < len(marks[r]) and marks[r][i]:
                cell = f"<i>{cell} *</i>"
            cells.append(f"<td style='text-align:left;vertical-align:top'>{cell}</td>")
        body.append(f"<tr><td>{i}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>#</th>{head}</tr>{''.join(body)}</table>"
