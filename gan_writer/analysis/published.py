"""Published tables: written between markers in the README by ``gan-writer reproduce``, never by hand.

A table named ``poetry_zh/evaluate`` lives between the two lines::

    <!-- results:poetry_zh/evaluate begin (written by gan-writer reproduce; do not edit) -->
    ...
    <!-- results:poetry_zh/evaluate end -->

:func:`read_tables` finds every such block, :func:`splice` replaces one, :func:`table_diffs`
says which differ from a regeneration (a unified diff each), and :func:`evaluate_table`
renders the metric table of ``gan-writer evaluate`` results with its sample size and seed
count in the caption and the spread across seeds; :func:`compare_table` the verdicts of a
``gan-writer compare`` temperature sweep, one row per training seed, with a verdict stated
only where every seed agrees.
"""
from __future__ import annotations

import difflib
import re

__all__ = ["begin_marker", "end_marker", "read_tables", "splice", "table_diffs", "markdown_table",
           "evaluate_table", "compare_table", "MarkerError"]

_BEGIN = re.compile(r"^<!-- results:(?P<name>[\w./-]+) begin .*-->\s*$")
_END = re.compile(r"^<!-- results:(?P<name>[\w./-]+) end -->\s*$")

#: (row label, metric keys of ``evaluate_checkpoint``) of the evaluate table, README order
EVALUATE_ROWS = [
    ("BLEU-2 / 3 / 4 / 5", ["bleu_2", "bleu_3", "bleu_4", "bleu_5"]),
    ("Self-BLEU-2 / 3 / 4 / 5", ["self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5"]),
    ("distinct-1 / 2 / 3 / 4", ["distinct_1", "distinct_2", "distinct_3", "distinct_4"]),
    ("NLL-test / NLL-gen (nats per token)", ["nll_test", "nll_gen"]),
]


class MarkerError(ValueError):
    """Unbalanced, nested or repeated table markers; names the line."""


def begin_marker(name: str) -> str:
    return f"<!-- results:{name} begin (written by gan-writer reproduce; do not edit) -->"


def end_marker(name: str) -> str:
    return f"<!-- results:{name} end -->"


def read_tables(text: str, where: str = "README.md") -> dict[str, str]:
    """``{name: body}`` of every marked block of ``text`` (body without the marker lines).

    Raises:
        MarkerError: a begin without its end, an end without a begin, nesting, or a name
            used twice (the message names ``where`` and the line number).
    """
    tables: dict[str, str] = {}
    open_name, open_line, body = None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if open_name is not None:
                raise MarkerError(f"{where}:{number}: table {begin['name']!r} begins inside {open_name!r} (line {open_line})")
            if begin["name"] in tables:
                raise MarkerError(f"{where}:{number}: table {begin['name']!r} appears twice")
            open_name, open_line, body = begin["name"], number, []
        elif end:
            if end["name"] != open_name:
                raise MarkerError(f"{where}:{number}: end of {end['name']!r} without its begin")
            tables[open_name], open_name = "\n".join(body), None
        elif open_name is not None:
            body.append(line)
    if open_name is not None:
        raise MarkerError(f"{where}:{open_line}: table {open_name!r} has no end marker ({end_marker(open_name)})")
    return tables


def splice(text: str, name: str, body: str, where: str = "README.md") -> str:
    """``text`` with the block ``name`` replaced by ``body``; the rest is kept byte for byte.

    Raises:
        MarkerError: bad markers (see :func:`read_tables`) or no block ``name`` (add the two
            marker lines where the table belongs).
    """
    if name not in read_tables(text, where):
        raise MarkerError(f"{where} has no table {name!r}: add the lines {begin_marker(name)} and "
                          f"{end_marker(name)} where it belongs")
    lines, out, inside = text.split("\n"), [], False
    for line in lines:
        if _BEGIN.match(line) and _BEGIN.match(line)["name"] == name:
            out += [line, *body.rstrip("\n").split("\n")]
            inside = True
        elif inside and _END.match(line):
            out.append(line)
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def table_diffs(text: str, new: dict[str, str], where: str = "README.md") -> dict[str, str]:
    """``{name: unified diff}`` of every table in ``new`` whose published body differs
    (a table missing from ``text`` counts as differing)."""
    published = read_tables(text, where)
    diffs = {}
    for name, body in new.items():
        old = published.get(name)
        if old is None or old.rstrip("\n") != body.rstrip("\n"):
            diffs[name] = "\n".join(difflib.unified_diff(
                (old or "").rstrip("\n").split("\n"), body.rstrip("\n").split("\n"),
                f"{where} ({name})", f"regenerated ({name})", lineterm=""))
    return diffs


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 0.1 else f"{value:.3f}"


def evaluate_table(results: list[tuple[str, int, dict]]) -> str:
    """The metric table of ``gan-writer evaluate`` results, one column per (run, seed).

    Args:
        results: ``[(run label, seed, evaluate_checkpoint result)]`` in column order.
    Returns:
        A caption line (samples per checkpoint, sampling seed, references, seeds per run),
        the table, and for every run with 2 or more seeds a spread column (max − min).
    Raises:
        ValueError: results evaluated with different sample sizes or reference sets.
    """
    setups = {(r["setup"]["num_samples"], r["setup"]["num_references"], r["setup"]["reference_split"],
               r["setup"]["seed"]) for _, _, r in results}
    if len(setups) != 1:
        raise ValueError(f"the results were evaluated under different setups {sorted(setups)}; compare like with like")
    n, refs, split, sample_seed = setups.pop()
    seeds: dict[str, list[int]] = {}
    for label, seed, _ in results:
        seeds.setdefault(label, []).append(seed)
    header = ["metric", *[f"{label} seed {seed}" for label, seed, _ in results]]
    header += [f"{label} spread ({len(s)} seeds)" for label, s in seeds.items() if len(s) > 1]
    rows = []
    for row_label, keys in EVALUATE_ROWS:
        row = [row_label] + [" / ".join(_fmt(r["metrics"][k]) for k in keys) for _, _, r in results]
        for label, s in seeds.items():
            if len(s) > 1:
                values = [[r["metrics"][k] for k in keys] for lab, _, r in results if lab == label]
                row.append(" / ".join(_fmt(max(v) - min(v)) for v in zip(*values)))
        rows.append(row)
    caption = (f"`gan-writer evaluate`: {n:,} samples per checkpoint (sampling seed {sample_seed}) against the "
               f"{refs:,} {split} references; training seeds per run: "
               + ", ".join(f"{label} {len(s)} ({', '.join(map(str, s))})" for label, s in seeds.items()) + ".")
    return caption + "\n\n" + markdown_table(header, rows)


def _seed_verdict(area: float | None, lo: float | None, hi: float | None, min_overlap: float) -> str | None:
    """Which curve is better by the signed area: ``"run"``, ``"baseline"``, or None (undecided)."""
    if area is None or lo is None or hi is None or hi - lo < min_overlap or area == 0:
        return None
    return "run" if area > 0 else "baseline"


def compare_table(setup: dict, records: list[dict], seeds: dict[str, int], min_overlap: float = 1e-3) -> str:
    """The README table of a ``gan-writer compare`` sweep: one row per compared run (a
    training seed), the baseline's dominating points and the signed area between the Pareto
    fronts (:func:`gan_writer.analysis.quality_diversity.verdict`), then one line saying
    which curve is better *only if every seed says so* (else that the seeds disagree), with
    the spread across seeds of the mean quality gap (area ÷ the common diversity range). The
    sign agreeing is not significance: read the gap against the curves' own spread.

    Args:
        setup: the sweep's ``setup.json`` (``num_samples``, ``seed``, ``temperatures``,
            ``num_references``, ``references``, ``quality``, ``diversity``, ``baseline``).
        records: its ``verdicts.json`` (one dict per run other than the baseline).
        seeds: ``{compared run name: its training seed}``; runs sharing a label prefix
            before `` seed `` are one run over seeds.
        min_overlap: narrowest common diversity range that decides a winner (as
            :data:`gan_writer.analysis.quality_diversity.MIN_OVERLAP`).
    Raises:
        ValueError: no records (a sweep of one run), or a record of a run not in ``seeds``.
    """
    if not records:
        raise ValueError("the compare sweep has no verdict: it needs a baseline and at least one other run")
    missing = [r["run"] for r in records if r["run"] not in seeds]
    if missing:
        raise ValueError(f"compare table: runs {missing} have no training seed in the recipe's columns")
    temps = ", ".join(f"{t:g}" for t in setup["temperatures"])
    rows, calls = [], []
    for r in records:
        area = "n/a (no common range)" if r["area"] is None else (
            f"{r['area']:+.4g} (mean quality gap {r['area'] / (r['hi'] - r['lo']):+.4g})" if r["hi"] > r["lo"]
            else f"{r['area']:+.4g}")
        span = "–" if r["lo"] is None else f"[{r['lo']:.4g}, {r['hi']:.4g}]"
        rows.append([r["run"], f"{r['dominated']} of {r['points']}", area, span])
        calls.append(_seed_verdict(r["area"], r["lo"], r["hi"], min_overlap))
    baseline = records[0]["baseline"]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r["run"].split(" seed ")[0], []).append(i)
    findings = [_finding([records[i] for i in idx], [calls[i] for i in idx], label, baseline)
                for label, idx in groups.items()]
    labels: dict[str, list[int]] = {}
    for run, seed in seeds.items():
        labels.setdefault(run.split(" seed ")[0], []).append(seed)
    caption = (f"`gan-writer compare` over T ∈ {{{temps}}}: {setup['num_samples']:,} samples per point (sampling seed "
               f"{setup['seed']}) against {setup['references']} ({setup['num_references']:,}); quality "
               f"{setup['quality']}, diversity {setup['diversity']}; baseline {baseline}; training seeds: "
               + ", ".join(f"{label} {len(s)} ({', '.join(map(str, s))})" for label, s in labels.items()) + ".")
    table = markdown_table(["run", f"points dominated by {baseline}", "signed area between Pareto fronts (+ = run better)",
                            "over diversity"], rows)
    if len(findings) == 1:
        return f"{caption}\n\n{table}\n\n{findings[0]}"
    return f"{caption}\n\n{table}\n\n" + "\n".join(f"* {label}: {f}" for label, f in zip(groups, findings))


def _finding(records: list[dict], calls: list[str | None], label: str, baseline: str) -> str:
    """The verdict line of one compared run over its seeds (see :func:`compare_table`)."""
    gaps = [r["area"] / (r["hi"] - r["lo"]) for r in records if r["area"] is not None and r["hi"] > r["lo"]]
    spread = f"mean quality gap {min(gaps):+.4g} to {max(gaps):+.4g}" if gaps else "no area defined"
    dominated = sorted(r["dominated"] for r in records)
    if len(records) > 1 and all(c == calls[0] for c in calls) and calls[0] is not None:
        who = label if calls[0] == "run" else baseline
        finding = f"**Same sign at every seed: {who} ahead** ({len(records)} seeds; {spread})"
    elif len(records) > 1:
        finding = f"**No verdict:** the {len(records)} seeds disagree or are undecided ({spread})"
    else:
        finding = f"**No verdict:** one seed ({spread})"
    return f"{finding}; points dominated per seed: {', '.join(map(str, dominated))} of {records[0]['points']}."
