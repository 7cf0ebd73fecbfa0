"""Points of a temperature sweep whose samples are degenerate (mostly empty or mostly one
text), and a verdict that excludes them and says so.

A generator that emits only EOS has Self-BLEU 0, so ``1 − Self-BLEU`` calls it maximally
diverse and no baseline temperature can dominate it; a collapsed generator repeating one
text scores BLEU as high as that text does. Neither point is a trade-off a run offers, so
:func:`verdict_excluding` drops them from the dominance count and the area (of every run,
the baseline included) and returns one sentence per run saying what was excluded. The
criterion (more than half the samples empty, or more than half one text) is
:func:`gan_writer.metrics.degenerate.point_degeneracy`.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from gan_writer.analysis.quality_diversity import Axis, Point, RunVerdict, metrics_by_point, verdict
from gan_writer.metrics.degenerate import point_degeneracy

__all__ = ["degenerate_points", "exclusion_notes", "verdict_excluding"]


def degenerate_points(rows: Iterable[Mapping], num_samples: int) -> dict[str, dict[float, str]]:
    """``{run: {temperature: reason}}`` of the points whose samples are degenerate."""
    out: dict[str, dict[float, str]] = {}
    for run, temps in metrics_by_point(rows).items():
        for t, metrics in temps.items():
            reason = point_degeneracy(metrics, num_samples)
            if reason:
                out.setdefault(run, {})[t] = reason
    return out


def _listing(flags: Mapping[float, str]) -> str:
    return "; ".join(f"T={t:g}: {why}" for t, why in sorted(flags.items()))


def exclusion_notes(curves: Mapping[str, Sequence[Point]], flags: Mapping[str, Mapping[float, str]]) -> list[str]:
    """One Markdown sentence per run with degenerate points: *Flagged* (some points left
    out of the verdict) or *Excluded* (no point left)."""
    notes = []
    for run, pts in curves.items():
        if not flags.get(run):
            continue
        left = [p for p in pts if p.temperature not in flags[run]]
        if left:
            notes.append(f"**Flagged ({run}):** {len(flags[run])} of {len(pts)} points excluded from the verdict, "
                         f"their samples are degenerate ({_listing(flags[run])}).")
        else:
            notes.append(f"**Excluded ({run}):** every point has degenerate samples ({_listing(flags[run])}); its "
                         "BLEU / 1 − Self-BLEU values measure no text, so it gets no verdict.")
    return notes


def verdict_excluding(curves: Mapping[str, Sequence[Point]], baseline: str, quality: Axis, diversity: Axis,
                      flags: Mapping[str, Mapping[float, str]]) -> tuple[list[RunVerdict], list[str]]:
    """:func:`~gan_writer.analysis.quality_diversity.verdict` on the non-degenerate points.

    Returns:
        ``(verdicts, notes)``: verdicts of the runs (other than ``baseline``) that keep at
        least one point, computed against the baseline's kept points; ``notes``: one
        Markdown sentence per run with excluded points (a run with none left is
        *excluded* from the verdict, as are all runs if the baseline has none left).
    Raises:
        KeyError: if ``baseline`` is not one of the runs.
    """
    if baseline not in curves:
        raise KeyError(f"baseline run {baseline!r} is not among the runs {sorted(curves)}")
    kept = {run: [p for p in pts if p.temperature not in flags.get(run, {})] for run, pts in curves.items()}
    notes = exclusion_notes(curves, flags)
    if not kept[baseline]:
        notes.append(f"**No verdict:** the baseline {baseline!r} has no point with usable samples.")
        return [], notes
    usable = {run: pts for run, pts in kept.items() if pts}
    return verdict(usable, baseline, quality, diversity), notes
