"""Compare runs on quality–diversity curves under a temperature sweep, and write the outputs of
``gan-writer compare`` (Caccia et al. 2020, "Language GANs Falling Short"; the curves, Pareto
fronts and verdict are defined in :mod:`gan_writer.analysis.quality_diversity`).

:func:`compare` loads the checkpoints, refuses runs scored on different references or tokens
(:func:`check_comparable`), samples every run at every temperature with one seed, and writes
to its output folder (never an existing non-empty one): ``results.csv`` (one row per run ×
temperature × metric), ``samples.csv`` (the first ``keep_samples`` texts per run ×
temperature), ``results.md`` (setup, table, verdict), ``setup.json``, ``verdicts.json``,
``quality_diversity.png`` and a TensorBoard event file with the plot as an image and the
report as text. NLL values are nats per token.
"""
from __future__ import annotations

import csv
import inspect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from gan_writer.analysis import plots
from gan_writer.analysis import quality_diversity as qd
from gan_writer.analysis.degenerate_points import degenerate_points, exclusion_notes, verdict_excluding

__all__ = ["DEFINITIONS", "compare", "reference_key", "check_comparable", "check_out_dir", "new_out_dir",
           "verdict_record", "render_report"]

DEFINITIONS = (
    "Definitions: a point (run at temperature T) is *dominated* if some baseline temperature is at least as good "
    "on both axes and better on one (a point equal to a baseline point is not dominated). The *signed area* is ∫ (quality of the run − quality of the baseline) d(diversity) between the "
    "two runs' Pareto fronts (their temperatures that no other temperature of the same run beats on both axes), "
    "over the diversity range both fronts cover, each front read as quality against diversity by piecewise-linear "
    "interpolation after sorting by diversity; it is negated when lower quality values are better, so positive "
    "always means the run is better than the baseline. NLL-test (`nll_test`) is the model's NLL on the held-out "
    "text at T = 1, repeated at every T; `nll_test_t` scores the temperature-scaled model (the oracle's diversity "
    "axis, as in Caccia et al.). NLL values are nats per token. Source: Caccia et al., \"Language GANs Falling "
    "Short\", ICLR 2020. A point whose samples are more than half empty or more than half one and the same text is "
    "*degenerate* (its 1 − Self-BLEU measures no text): it is left out of the dominance count and the area, and "
    "listed above the verdict."
)
_TEXT_SPLIT_KEYS = ("corpus_options", "seed", "valid_fraction", "test_fraction", "format", "text_field", "encoding")
_ORACLE_KEYS = ("oracle_params", "oracle_seed", "vocab_size", "emb_dim", "hidden_dim", "num_valid", "seq_len",
                "sample_seed")


@dataclass
class _Run:
    """A run to compare: its name on the command line and its loaded checkpoint."""

    name: str
    art: object  # gan_writer.checkpoint.Artifacts

    @property
    def checkpoint(self) -> str:
        return str(self.art.meta.get("path"))


def _defaults(fn) -> dict:
    params = inspect.signature(fn).parameters.items()
    return {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}


def reference_key(meta: dict) -> dict:
    """What must be equal for two runs to be scored on the same references and tokens.

    A value a checkpoint does not record (written before ``meta["data"]`` existed) is
    taken as the default of :func:`~gan_writer.data.load_corpus` (or of
    :class:`~gan_writer.data.oracle.OracleDataModule`), which is what re-reading it uses.
    """
    from gan_writer.metrics.suite import metric_tokenizer

    data, corpus = meta.get("data") or {}, meta.get("corpus")
    tok = metric_tokenizer(meta.get("metric_tokenization"), bool(data.get("lowercase", False)))
    if corpus == "oracle":
        from gan_writer.data.oracle import OracleDataModule

        keys, defaults = _ORACLE_KEYS, _defaults(OracleDataModule.__init__)
    else:
        from gan_writer.data.corpora import load_corpus

        keys, defaults = _TEXT_SPLIT_KEYS, {"corpus_options": None, **_defaults(load_corpus)}
    return {"corpus": corpus, **tok.describe(), **{f"data.{k}": data.get(k, defaults.get(k)) for k in keys}}


def check_comparable(runs: list[_Run]) -> dict:
    """The shared reference key; the runs' ``max_length`` must agree too (where both record it).

    Raises:
        ValueError: naming both runs and the field that differs.
    """
    first = runs[0]
    key = reference_key(first.art.meta)
    if not key["corpus"]:
        raise ValueError(f"run {first.name!r} ({first.checkpoint}) records no corpus; compare needs it")
    for other in runs[1:]:
        k2 = reference_key(other.art.meta)
        for field, value in key.items():
            if k2.get(field) != value:
                raise ValueError(
                    f"runs {first.name!r} and {other.name!r} are not comparable: {field} is {value!r} in "
                    f"{first.name} ({first.checkpoint}) but {k2.get(field)!r} in {other.name} ({other.checkpoint})")
        lengths = first.art.meta.get("max_length"), other.art.meta.get("max_length")
        if None not in lengths and lengths[0] != lengths[1]:  # samples drawn to, and test texts cut at, it
            raise ValueError(
                f"runs {first.name!r} and {other.name!r} are not comparable: max_length is {lengths[0]} in "
                f"{first.name} ({first.checkpoint}) but {lengths[1]} in {other.name} ({other.checkpoint}); each run "
                "samples up to, and scores NLL-test on test texts cut at, its own max_length: compare runs trained "
                "with the same data.max_length")
    return key


def _references(run: _Run, data_dir: str | None):
    """``(kind, reference texts or None, oracle data module or None, description)``."""
    meta, data = run.art.meta, run.art.meta.get("data") or {}
    if meta["corpus"] == "oracle":
        from gan_writer.data.oracle import OracleDataModule

        params = set(inspect.signature(OracleDataModule.__init__).parameters) - {"self"}
        kwargs = {k: v for k, v in data.items() if k in params}
        p = kwargs.get("oracle_params")
        if p and data_dir and (Path(data_dir) / p).is_file():
            kwargs["oracle_params"] = str(Path(data_dir) / p)
        dm = OracleDataModule(**kwargs)
        desc = f"oracle {dm.oracle.source}, V={dm.oracle.vocab_size}; held-out sequences for NLL-test"
        return "oracle", None, dm, desc
    from gan_writer.data.corpora import load_corpus

    read = {k: data[k] for k in _TEXT_SPLIT_KEYS[1:] if k in data}
    splits = load_corpus(meta["corpus"], data_dir=data_dir or data.get("data_dir"), **read,
                         **(data.get("corpus_options") or {}))
    split = "test" if splits.test else "valid"
    return "text", getattr(splits, split), None, f"corpus {meta['corpus']!r}, {split} split as references"


def _test_batches(run: _Run, texts, dm, batch_size: int = 256) -> list[dict]:
    from gan_writer.data.datamodule import EncodedTexts, pad_batch

    if dm is not None:
        return list(dm.test_dataloader())
    tok = run.art.tokenizer
    ids = EncodedTexts(texts, tok, int(run.art.meta.get("max_length") or 64)).ids
    return [pad_batch(ids[i:i + batch_size], tok.pad_token_id) for i in range(0, len(ids), batch_size)]


def check_out_dir(out: str | None) -> None:
    """Raise FileExistsError if ``out`` exists and is not an empty folder (checked before any work)."""
    if out is not None and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise FileExistsError(f"--out {out} exists and is not empty; compare never overwrites results")


def new_out_dir(out: str | None) -> Path:
    """The output folder, created: ``out``, or a new ``checkpoints/compare/<timestamp>[-k]``.

    Raises:
        FileExistsError: if ``out`` exists and is not empty.
    """
    check_out_dir(out)
    if out is not None:
        path = Path(out)
    else:
        base = Path("checkpoints") / "compare" / time.strftime("%Y%m%d-%H%M%S")
        path, k = base, 0
        while path.exists():
            k += 1
            path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class _References:
    """What every run is scored against: ``kind`` ("text" or "oracle"), the reference texts (text)
    or the oracle data module (oracle), the metric tokenizer and BLEU orders, and descriptions."""

    kind: str
    texts: list | None
    dm: object | None  # gan_writer.data.oracle.OracleDataModule
    description: str
    mtok: object  # gan_writer.metrics.suite.MetricTokenizer
    orders: list[int]
    bleu: object | None  # gan_writer.metrics.bleu.BleuReference
    count: int
    tokenization: str


def _reference_set(run: _Run, data_dir: str | None, bleu_n: int) -> _References:
    from gan_writer.metrics.bleu import BleuReference
    from gan_writer.metrics.suite import BLEU_ORDERS, metric_tokenizer

    kind, texts, dm, desc = _references(run, data_dir)
    data = run.art.meta.get("data") or {}
    mtok = metric_tokenizer(run.art.meta.get("metric_tokenization"), bool(data.get("lowercase", False)))
    orders = sorted(set(BLEU_ORDERS) | {bleu_n}) if kind == "text" else [bleu_n]
    bleu = BleuReference(mtok.tokenize_all(texts), max_n=max(orders)) if kind == "text" else None
    count = len(texts) if kind == "text" else int(dm.ids["valid"].size(0))
    return _References(kind, texts, dm, desc, mtok, orders, bleu, count,
                       mtok.scheme + ("+lowercase" if mtok.lowercase else ""))


def compare(runs: list[tuple[str, str]], temperatures: list[float], n: int = 2000, seed: int = 0, bleu_n: int = 4,
            baseline: str = "mle", out: str | None = None, data_dir: str | None = None, keep_samples: int = 20,
            command: str = "") -> Path:
    """Sweep every run (``(name, checkpoint or run folder)``) over ``temperatures``, ``n``
    samples per point, and write the outputs; returns the output folder (``out``, or a new
    ``checkpoints/compare/<timestamp>``), created only once the sweep has succeeded.

    Raises:
        FileNotFoundError, ValueError: unreadable checkpoints, incomparable runs (naming
            both), a baseline that is not a run, ``n < 2``; FileExistsError: see :func:`new_out_dir`.
    """
    from gan_writer.checkpoint import load_artifacts

    if n < 2:
        raise ValueError(f"--n must be >= 2 (Self-BLEU needs two samples), got {n}")
    check_out_dir(out)
    if len(runs) > 1 and baseline not in {name for name, _ in runs}:
        raise ValueError(f"no run named {baseline!r} among {[name for name, _ in runs]}: name the MLE run "
                         f"{baseline!r} or pass --baseline NAME")
    loaded = [_Run(name, load_artifacts(path)) for name, path in runs]
    key = check_comparable(loaded)
    refs = _reference_set(loaded[0], data_dir, bleu_n)
    quality, diversity = qd.axes_for(refs.kind, bleu_n)
    rows, sample_rows = _sweep(loaded, refs, temperatures, n, seed, keep_samples, quality, diversity)
    curves = qd.curves_from_rows(rows, quality, diversity)
    excluded = degenerate_points(rows, n)
    verdicts, notes = (verdict_excluding(curves, baseline, quality, diversity, excluded) if len(loaded) > 1
                       else ([], exclusion_notes(curves, excluded)))
    setup = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "kind": refs.kind,
        "references": refs.description, "num_references": refs.count, "num_samples": n, "seed": seed,
        "temperatures": temperatures, "tokenization": refs.tokenization, "bleu_n": bleu_n, "baseline": baseline,
        "quality": quality.label,
        "excluded_points": {run: {f"{t:g}": why for t, why in pts.items()} for run, pts in excluded.items()},
        "diversity": diversity.label, "reference_key": key,
        "same_vocabulary": all(r.art.tokenizer.get_vocab() == loaded[0].art.tokenizer.get_vocab() for r in loaded),
        "runs": [{"name": r.name, "checkpoint": r.checkpoint, "stage": r.art.meta.get("stage"),
                  "global_step": r.art.meta.get("global_step"), "max_length": r.art.meta.get("max_length"),
                  "vocab_size": r.art.generator.vocab_size} for r in loaded],
    }
    report = render_report(setup, rows, verdicts, quality, diversity, notes, excluded)
    footnote = (f"{n} samples per point (seed {seed}, full softmax, logits / T); {refs.description}: {refs.count}; "
                f"metric tokens: {refs.tokenization}")
    fig = plots.plot_quality_diversity(curves, quality, diversity, baseline if len(loaded) > 1 else None, verdicts,
                                       footnote=footnote)
    out_dir = new_out_dir(out)  # created only now: a failed sweep leaves nothing behind
    _write_outputs(out_dir, rows, sample_rows, setup, verdicts, report, fig)
    return out_dir


def _sweep(loaded: list[_Run], refs: _References, temperatures: list[float], n: int, seed: int, keep_samples: int,
           quality: qd.Axis, diversity: qd.Axis) -> tuple[list[dict], list[dict]]:
    """``results.csv`` rows (run × temperature × metric) and ``samples.csv`` rows of every run's
    sweep, printing each point's two axes and each run's time (seconds)."""
    rows, sample_rows = [], []
    oracle = refs.dm.oracle if refs.dm is not None else None
    for run in loaded:
        start = time.perf_counter()
        scores, samples = qd.sweep_run(
            run.art.generator, run.art.tokenizer, temperatures, n, int(run.art.meta.get("max_length") or 64), seed,
            refs.mtok, refs.bleu, refs.orders, _test_batches(run, refs.texts, refs.dm), oracle, keep_samples)
        for t, metrics in scores.items():
            rows += [{"run": run.name, "checkpoint": run.checkpoint, "temperature": t, "metric": m, "value": v,
                      "num_samples": n, "num_references": refs.count, "tokenization": refs.tokenization, "seed": seed}
                     for m, v in metrics.items()]
            sample_rows += [{"run": run.name, "temperature": t, "seed": seed, "index": i, "text": s}
                            for i, s in enumerate(samples[t])]
            print(f"{run.name} T={t:g}: {quality.name} {quality.value(metrics):.4f}, "
                  f"{diversity.name} {diversity.value(metrics):.4f}")
        print(f"{run.name}: {len(temperatures)} temperatures in {time.perf_counter() - start:.1f} s")
    return rows, sample_rows


def _write_outputs(out_dir: Path, rows: list[dict], sample_rows: list[dict], setup: dict, verdicts, report: str,
                   fig) -> None:
    qd.write_rows(out_dir / "results.csv", rows)
    with open(out_dir / "samples.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["run", "temperature", "seed", "index", "text"])
        w.writeheader()
        w.writerows(sample_rows)
    (out_dir / "setup.json").write_text(json.dumps(setup, ensure_ascii=False, indent=2), encoding="utf-8")
    (out_dir / "verdicts.json").write_text(json.dumps([verdict_record(v) for v in verdicts], indent=2), encoding="utf-8")
    (out_dir / "results.md").write_text(report, encoding="utf-8")
    fig.savefig(out_dir / "quality_diversity.png")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(out_dir)) as writer:
        writer.add_figure("compare/quality_diversity", fig, global_step=0, close=False)
        writer.add_text("compare/results", report, global_step=0)


def verdict_record(v: qd.RunVerdict) -> dict:
    """A :class:`~gan_writer.analysis.quality_diversity.RunVerdict` as JSON-able values
    (``verdicts.json``; NaN areas become None)."""
    finite = lambda x: None if math.isnan(x) else x  # noqa: E731
    return {"run": v.run, "baseline": v.baseline, "points": len(v.dominated_by), "dominated": v.num_dominated,
            "area": finite(v.area), "lo": finite(v.lo), "hi": finite(v.hi), "front": v.front,
            "baseline_front": v.baseline_front}


def render_report(setup: dict, rows: list[dict], verdicts, quality: qd.Axis, diversity: qd.Axis,
                  notes: list[str] = (), excluded: dict | None = None) -> str:
    """``results.md``: setup block, per-run table, results table, verdict lines (after
    ``notes`` on points excluded for degenerate samples, see
    :mod:`gan_writer.analysis.degenerate_points`), definitions."""
    lines = ["# Quality–diversity under a temperature sweep", "", "## Setup", ""]
    lines += [f"- command: `{setup['command']}`" if setup["command"] else "- command: (called from Python)",
              f"- date: {setup['date']}",
              f"- references: {setup['references']} ({setup['num_references']})",
              f"- samples: {setup['num_samples']} per run and temperature, seed {setup['seed']} at every point; "
              "full softmax of logits / T (top-k 0, top-p 1)",
              f"- temperatures: {', '.join(f'{t:g}' for t in setup['temperatures'])}",
              f"- metric tokenization: {setup['tokenization']}",
              f"- quality axis: {quality.label}; diversity axis: {diversity.label}",
              f"- baseline: {setup['baseline']}",
              "- vocabularies: identical" if setup["same_vocabulary"] else
              "- vocabularies: differ between runs, so NLL values (per each run's own tokens, unknown ones included) "
              "are not comparable across runs; BLEU and Self-BLEU are (scored on decoded text)", "",
              "| run | checkpoint | stage | step | max_length | vocabulary |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | `{r['checkpoint']}` | {r['stage']} | {r['global_step']} | {r['max_length']} | "
              f"{r['vocab_size']} |" for r in setup["runs"]]
    lines += ["", "## Results", "", qd.markdown_table(rows, quality, diversity, verdicts, excluded=excluded), "",
              "## Verdict", ""]
    lines += list(notes)
    lines += [qd.verdict_line(v, diversity) for v in verdicts] or (
        [] if notes else ["Only one run: nothing to compare."])
    lines += ["", DEFINITIONS, ""]
    return "\n".join(lines)


