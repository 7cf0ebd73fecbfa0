"""The ``oracle`` table of a ``gan-writer reproduce`` recipe: NLL-oracle and NLL-test of several
runs over several seeds, each adversarial run beside the MLE run trained for as many generator
updates, with a direction stated only where every seed agrees.

A recipe block (``experiments/oracle/estimators.yaml``)::

    - name: oracle/estimators
      oracle: {n: 10000, plot: docs/results/estimators_oracle.png}
      seeds: [0, 1, 2]
      rows:                       # [label, run name, its equal-update MLE run or null]
        - [MLE continued (50 updates), mle_continue, null]
        - ["SeqGAN (50 batches)", seqgan, mle_continue]

reads the runs in ``<runs>/seed_<S>/<run name>/version_<K>`` (the layout of
``gan-writer oracle-report``) and scores each final ``last.ckpt`` as the oracle report does
(:func:`gan_writer.analysis.oracle_report.evaluate_generator`, sampling seed 12345 + the run's
seed, results cached in the run's ``oracle_eval.json``), so both commands print the same numbers
for the same run. NLL-oracle follows Yu et al. 2017, section 4.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from gan_writer.analysis.oracle_report import (
    EVAL_SEED_OFFSET,
    cached,
    eval_key,
    evaluate_generator,
    find_run,
    mean_std,
    oracle_from_meta,
    read_scalars,
)
from gan_writer.analysis.published import markdown_table

__all__ = ["EVAL_SEED_OFFSET", "evaluate_oracle_run", "oracle_rows", "oracle_table", "plot_oracle_curves", "seed_direction"]



def evaluate_oracle_run(runs: Path, name: str, seed: int, n: int) -> dict:
    """``{"nll_oracle", "nll_test"}`` (nats per token) of the newest complete run ``name`` of
    ``seed`` under ``runs``: NLL-oracle of ``n`` samples at temperature 1 (full distribution),
    NLL-test of the held-out oracle sequences its data module records.

    Raises:
        FileNotFoundError: no complete run (``last.ckpt`` after its ``max_epochs``) there.
        ValueError: its checkpoint is refused (unsafe or corrupted) or has no oracle data.
    """
    from gan_writer.checkpoint import load_artifacts

    run = find_run(runs, seed, name)
    if run is None:
        raise FileNotFoundError(f"{runs}/seed_{seed}/{name}: no complete run (a last.ckpt saved after its max_epochs)")
    data = {k: v for k, v in (load_artifacts(run.ckpt).meta.get("data") or {}).items() if not k.startswith("_")}
    if "oracle_seed" not in data and "oracle_params" not in data:
        raise ValueError(f"{run.ckpt}: not an oracle run (its checkpoint records no oracle data module)")
    eval_seed = EVAL_SEED_OFFSET + seed
    key = eval_key(name, run.ckpt, n, eval_seed, data)

    def score() -> dict:
        oracle, valid = oracle_from_meta(data)
        gen = load_artifacts(run.ckpt).generator
        return evaluate_generator(gen, oracle, valid, n, int(data.get("seq_len", 20)), eval_seed)

    return cached(run.path / "oracle_eval.json", key, score)


def seed_direction(deltas: Sequence[float]) -> str:
    """``"lower at every seed"``, ``"higher at every seed"`` or ``"no verdict (signs differ)"``
    for per-seed differences ``deltas`` (one seed is no verdict either: there is nothing to agree)."""
    if len(deltas) < 2:
        return "no verdict (one seed)"
    if all(d < 0 for d in deltas):
        return "lower at every seed"
    if all(d > 0 for d in deltas):
        return "higher at every seed"
    return "no verdict (signs differ)"


def oracle_rows(block: dict, runs: Path, evaluate: Callable[[Path, str, int, int], dict] = evaluate_oracle_run) -> list[dict]:
    """The scored rows of a recipe ``oracle`` block: per row its label, run, baseline, and
    ``{seed: {"nll_oracle", "nll_test"}}`` (``evaluate(runs, name, seed, n)`` per run and seed).

    Raises:
        ValueError: a row that is not ``[label, run, baseline or null]``, or a baseline that is
            not one of the block's runs.
    """
    names = [r[1] for r in block["rows"] if isinstance(r, (list, tuple)) and len(r) == 3]
    if len(names) != len(block["rows"]):
        raise ValueError(f"oracle table {block['name']}: every row must be [label, run name, baseline run or null]")
    scored = []
    for label, name, baseline in block["rows"]:
        if baseline is not None and baseline not in names:
            raise ValueError(f"oracle table {block['name']}: row {label!r} compares with {baseline!r}, not a run of the table")
        values = {seed: evaluate(runs, name, seed, int(block["oracle"].get("n", 10000))) for seed in block["seeds"]}
        scored.append({"label": label, "run": name, "baseline": baseline, "values": values})
    return scored


def _ms(values: Sequence[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}" if len(values) > 1 else f"{m:.3f}"


def oracle_table(block: dict, rows: list[dict]) -> str:
    """The Markdown of an ``oracle`` block from :func:`oracle_rows`: NLL-oracle and NLL-test
    (mean ± sample std over the seeds, and per seed), then for each row with a baseline the
    per-seed difference row − baseline of both and its direction (:func:`seed_direction`).
    Lower NLL-oracle is better; a lower NLL-oracle with a higher NLL-test is the mode-seeking
    trade (the generator concentrates on what the oracle likes and covers less of its data)."""
    seeds = list(block["seeds"])
    by_run = {r["run"]: r for r in rows}
    table = []
    for r in rows:
        o = [r["values"][s]["nll_oracle"] for s in seeds]
        t = [r["values"][s]["nll_test"] for s in seeds]
        line = [r["label"], _ms(o), ", ".join(f"{v:.3f}" for v in o), _ms(t)]
        if r["baseline"] is None:
            line += ["—", "—"]
        else:
            base = by_run[r["baseline"]]["values"]
            d_o = [r["values"][s]["nll_oracle"] - base[s]["nll_oracle"] for s in seeds]
            d_t = [r["values"][s]["nll_test"] - base[s]["nll_test"] for s in seeds]
            line += [", ".join(f"{d:+.3f}" for d in d_o) + f": {seed_direction(d_o)}",
                     ", ".join(f"{d:+.3f}" for d in d_t) + f": {seed_direction(d_t)}"]
        table.append(line)
    n = int(block["oracle"].get("n", 10000))
    caption = (f"NLL-oracle of {n:,} samples of each final checkpoint (temperature 1, full distribution, sampling "
               f"seed {EVAL_SEED_OFFSET} + the training seed) and NLL-test (the generator's NLL of the held-out oracle "
               f"sequences), nats per token, lower is better; training seeds {', '.join(map(str, seeds))}. Δ is the row "
               "minus its equal-update MLE run, per seed; a direction is stated only where every seed agrees (that is "
               "agreement, not significance).")
    header = ["run", "NLL-oracle", "per seed", "NLL-test", "Δ NLL-oracle per seed vs equal-update MLE",
              "Δ NLL-test per seed"]
    return caption + "\n\n" + markdown_table(header, table)


def plot_oracle_curves(block: dict, rows: list[dict], runs: Path, path: str | Path) -> None:
    """PNG of each row's ``metrics/nll_oracle`` curve (mean over the seeds at the steps they
    share) against its logged step, one line per run except MLE pretraining (epoch axis): the
    adversarial runs' step is their adversarial batch, the MLE runs' their update."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        curves = []
        for seed in block["seeds"]:
            run = find_run(runs, seed, r["run"])
            curves.append({s + 1: v for s, v, _ in read_scalars(run.path, "metrics/nll_oracle")} if run else {})
        steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        if not steps or r["run"] == "mle":
            continue
        ys = [sum(c[s] for c in curves) / len(curves) for s in steps]
        ax.plot(steps, ys, marker="o", ms=3, ls="--" if r["baseline"] is None else "-", label=r["label"])
    ax.set_xlabel("step (adversarial batch; MLE runs: update)")
    ax.set_ylabel("NLL-oracle (nats/token, 2,000 samples)")
    ax.set_title(f"NLL-oracle during training, mean over seeds {', '.join(map(str, block['seeds']))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
