"""The SeqGAN synthetic (NLL-oracle) benchmark: find, evaluate and summarise the runs of the
experiments/oracle chain, and render the report (``gan-writer oracle-report``).

Run layout (what ``gan-writer oracle-report --run`` writes)::

    <runs-root>/seed_<N>/<stage>/version_<K>/   TensorBoard events, config.yaml, checkpoints/last.ckpt

for the stages :data:`STAGES` (MLE pretraining, discriminator pretraining, adversarial
training, and MLE continued for as many generator updates as the adversarial run: the
equal-training baseline). A run is *complete* when its ``last.ckpt`` was written at the end of
the configured ``trainer.max_epochs``; the newest complete version of a stage is the one used.

Everything here reads files or evaluates checkpoints; nothing is typed in by hand except the
published reference values (:data:`PUBLISHED`, with their sources).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

__all__ = [
    "STAGES", "PUBLISHED", "RunInfo", "find_run", "run_is_complete", "read_scalars", "run_wall_time",
    "parse_seqgan_log", "oracle_from_meta", "evaluate_generator", "cached", "mean_std", "fit_argv", "render_markdown",
    "plot_curves", "EVAL_SEED_OFFSET", "eval_key",
]

EVAL_SEED_OFFSET = 12345  # the sampling seed of an NLL-oracle evaluation = the run's seed + this

#: The chain, in launch order: stage name -> (config file name, the stage it starts from).
STAGES: dict[str, tuple[str, str | None]] = {
    "mle": ("mle.yaml", None),
    "disc": ("disc.yaml", "mle"),
    "seqgan": ("seqgan.yaml", "disc"),
    "mle_continue": ("mle_continue.yaml", "mle"),
}

#: Published NLL-oracle values (nats per token): Yu et al. 2017 (AAAI), Table 1, and the
#: experiment log shipped with LantaoYu/SeqGAN (save/experiment-log.txt; a copy is read from
#: oracle/seqgan_experiment_log.txt, see :func:`parse_seqgan_log`).
PUBLISHED = {
    "untrained": {"paper": 10.310},
    "mle": {"paper": 9.038},
    "seqgan": {"paper": 8.736},
}


# ---- runs ------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """One complete run of one stage and seed."""

    stage: str
    seed: int
    path: Path  # version_K folder
    ckpt: Path  # checkpoints/last.ckpt
    config: dict = field(default_factory=dict)


def _versions(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("version_*") if p.is_dir() and p.name[8:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[8:]))


def _load_config(version: Path) -> dict:
    import yaml

    cfg = version / "config.yaml"
    if not cfg.is_file():
        return {}
    with cfg.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def run_is_complete(version: Path) -> bool:
    """Whether ``version`` holds ``checkpoints/last.ckpt`` saved after its configured
    ``trainer.max_epochs`` (LightningCLI's ``config.yaml``)."""
    ckpt = version / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return False
    max_epochs = (_load_config(version).get("trainer") or {}).get("max_epochs")
    if max_epochs is None:
        return True
    from gan_writer.safe_load import UnsafeFileError, load_checkpoint

    try:  # only the epoch is read here; load_artifacts verifies the weights when they are used
        state = load_checkpoint(ckpt, mmap=True, check=False)
    except UnsafeFileError:
        raise
    except Exception:  # noqa: BLE001 - a truncated file is an incomplete run
        return False
    return int(state.get("epoch", -1)) >= int(max_epochs)


def find_run(root: str | Path, seed: int, stage: str) -> RunInfo | None:
    """The newest complete run of ``stage`` for ``seed`` under ``root``, or None."""
    for version in reversed(_versions(Path(root) / f"seed_{seed}" / stage)):
        if run_is_complete(version):
            return RunInfo(stage, seed, version, version / "checkpoints" / "last.ckpt", _load_config(version))
    return None


def fit_argv(config_dir: str | Path, root: str | Path, seed: int, stage: str, runs: dict[str, RunInfo],
             extra: Sequence[str] = ()) -> list[str]:
    """``gan-writer`` arguments that run ``stage`` for ``seed`` into ``root/seed_<seed>/<stage>``,
    starting from the checkpoint of the stage it depends on (in ``runs``).

    Raises:
        ValueError: for an unknown stage, or when the stage it starts from has no run.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    config, parent = STAGES[stage]
    argv = ["fit", "--config", str(Path(config_dir) / config), f"--seed_everything={seed}",
            f"--trainer.logger.init_args.save_dir={root}", f"--trainer.logger.init_args.name=seed_{seed}/{stage}"]
    if parent is not None:
        if parent not in runs:
            raise ValueError(f"stage {stage} (seed {seed}) needs a complete {parent} run first")
        argv.append(f"--model.init_args.init_checkpoint={runs[parent].ckpt}")
    return argv + list(extra)


# ---- event files -------------------------------------------------------------------------------
def _accumulator(run_dir: Path):
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return acc


def read_scalars(run_dir: str | Path, tag: str) -> list[tuple[int, float, float]]:
    """``(step, value, wall_time)`` of a scalar tag (empty if the run never logged it)."""
    acc = _accumulator(Path(run_dir))
    if tag not in acc.Tags().get("scalars", []):
        return []
    return [(int(e.step), float(e.value), float(e.wall_time)) for e in acc.Scalars(tag)]


def run_wall_time(run_dir: str | Path) -> float:
    """Seconds from the event file's first event (logger creation) to its last scalar."""
    acc = _accumulator(Path(run_dir))
    last = max((e.wall_time for tag in acc.Tags().get("scalars", []) for e in acc.Scalars(tag)), default=None)
    if last is None:
        return 0.0
    return float(last - acc.FirstEventTimestamp())


def parse_seqgan_log(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The SeqGAN experiment log: ``{"pretrain": [(epoch, nll)], "adversarial": [(batch, nll)]}``.

    Each ``epoch:\\tN\\tnll:\\tX`` line belongs to the section opened by the last
    ``pre-training...`` / ``adversarial training...`` line. Epoch/batch ``N`` is 0-based and
    evaluated after that epoch/batch, so ``N + 1`` epochs/updates had been done.
    """
    out: dict[str, list[tuple[int, float]]] = {"pretrain": [], "adversarial": []}
    section = "pretrain"
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("adversarial"):
            section = "adversarial"
        elif line.startswith("pre-training"):
            section = "pretrain"
        else:
            m = re.match(r"\s*epoch:\s*(\d+)\s+nll:\s*([0-9.]+)", line)
            if m:
                out[section].append((int(m.group(1)), float(m.group(2))))
    return out


# ---- evaluation ------------------------------------------------------------------------------------
def oracle_from_meta(data: dict):
    """The oracle and held-out set of a run, from the data hyperparameters its checkpoint
    records (``meta["data"]``, an :class:`~gan_writer.data.oracle.OracleDataModule`'s).

    Returns ``(oracle, valid_ids (num_valid, seq_len))``.
    """
    from gan_writer.data.oracle import VALID_SEED_OFFSET, resolve_oracle_params
    from gan_writer.models.oracle import OracleLSTM

    if data.get("oracle_params") is None:
        oracle = OracleLSTM.random(int(data.get("oracle_seed", 0)), int(data.get("vocab_size", 5000)),
                                   int(data.get("emb_dim", 32)), int(data.get("hidden_dim", 32)))
    else:
        oracle = OracleLSTM.from_pickle(resolve_oracle_params(data["oracle_params"]))
    valid = oracle.sample_dataset(int(data.get("num_valid", 1000)), int(data.get("seq_len", 20)),
                                  seed=int(data.get("sample_seed", 88)) + VALID_SEED_OFFSET)
    return oracle, valid


@torch.no_grad()
def evaluate_generator(gen, oracle, valid_ids: torch.Tensor, num_samples: int, seq_len: int, seed: int) -> dict:
    """NLL-oracle of ``num_samples`` samples of ``gen`` (temperature 1, full distribution,
    ``torch.Generator`` seeded with ``seed``), and NLL-test: ``gen``'s NLL of the held-out
    oracle sequences. Both in nats per token."""
    from gan_writer.metrics.nll import corpus_nll, nll_oracle
    from gan_writer.sampling import mask_after_eos

    was = gen.training
    gen.eval()
    gen_rng = torch.Generator().manual_seed(int(seed))
    chunks = [gen.sample(min(2500, num_samples - i), seq_len, generator=gen_rng) for i in range(0, num_samples, 2500)]
    ids = torch.cat(chunks)
    eos = getattr(gen, "eos_token_id", None)
    result = {"nll_oracle": nll_oracle(oracle, ids, mask_after_eos(ids, eos)), "num_samples": int(num_samples)}
    result["nll_test"] = corpus_nll(gen, ({"ids": valid_ids[i:i + 500], "attention_mask": torch.ones_like(valid_ids[i:i + 500])}
                                          for i in range(0, valid_ids.size(0), 500)))
    gen.train(was)
    return result


def eval_key(what: str, ckpt: Path, num_samples: int, eval_seed: int, data: dict) -> dict:
    """The cache key of one NLL-oracle evaluation (shared by ``oracle-report`` and the recipe
    ``oracle`` tables, so both read one stored result): the run, its checkpoint file and mtime,
    the sample count, the sampling seed and the oracle data settings."""
    return {"what": what, "ckpt": str(ckpt), "mtime": ckpt.stat().st_mtime, "num_samples": num_samples,
            "eval_seed": eval_seed, "data": data}


def cached(path: Path, key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``, memoised in the JSON file ``path`` under ``key`` (a JSON-able dict)."""
    store: dict[str, Any] = {}
    if path.is_file():
        try:
            store = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            store = {}
    k = json.dumps(key, sort_keys=True)
    if k not in store:
        store[k] = compute()
        path.write_text(json.dumps(store, indent=1, sort_keys=True), encoding="utf-8")
    return store[k]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, s


# ---- rendering ---------------------------------------------------------------------------------------
def _fmt(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "—"
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def _pub(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict) -> str:
    """The Markdown of ``docs/results/oracle.md`` from the collected ``report`` dict (see
    :func:`gan_writer.commands.oracle_report.collect`)."""
    seeds = report["seeds"]
    rows = report["rows"]
    log = report.get("log") or {}
    lines = [
        "# SeqGAN synthetic benchmark: NLL-oracle",
        "",
        f"Generated by `{report['command']}` from the runs under `{report['runs_root']}` "
        f"(configs `{report['configs']}`); do not edit by hand.",
        "",
        f"An oracle LSTM with fixed random parameters ({report.get('oracle', '?')}) generates the "
        "training data; a generator is scored by **NLL-oracle**, the oracle's negative log-likelihood "
        "of the generator's own samples (nats per token, lower is better; Yu et al. 2017, section 4). "
        f"Every number below is the mean ± standard deviation over the seeds with a complete run "
        f"(of {', '.join(map(str, seeds))}), each evaluated on {report['num_samples']:,} fresh samples "
        "(temperature 1, full distribution) from the run's final checkpoint. NLL-test is the "
        "generator's own NLL of the held-out oracle sequences (it grows when a generator "
        "loses diversity).",
        "",
        "| model | NLL-oracle | seeds | per seed | published (paper, Table 1) | published (SeqGAN log) | NLL-test |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{v:.3f}" for v in row["values"]) or "—"
        lines.append(
            f"| {row['label']} | {_fmt(row['values'])} | {len(row['values'])} | {per_seed} | "
            f"{_pub(row.get('paper'))} | {row.get('log_text', '—')} | {_fmt(row.get('nll_test', []))} |"
        )
    gap = report.get("gap")
    lines += ["", "## Equal training: SeqGAN vs MLE continued", ""]
    if gap and gap["values"]:
        m, s = mean_std(gap["values"])
        k, n = sum(v < 0 for v in gap["values"]), len(gap["values"])
        se = s / math.sqrt(n) if n > 1 else float("nan")
        clear = n > 1 and k == n and -m > 2 * se
        lines += [
            f"SeqGAN minus MLE continued for the same {gap['updates']} generator updates, per seed: "
            + ", ".join(f"seed {sd}: {v:+.3f}" for sd, v in zip(gap["seeds"], gap["values"]))
            + f". Mean {m:+.3f} ± {s:.3f} nats (standard error {se:.3f}); SeqGAN is lower in {k} of {n} seeds."
            if n > 1 else
            f"SeqGAN minus MLE continued for the same {gap['updates']} generator updates: {gap['values'][0]:+.3f} nats "
            f"(seed {gap['seeds'][0]}; one seed only, no spread).",
            "",
            f"Paper: {PUBLISHED['seqgan']['paper']:.3f} − {PUBLISHED['mle']['paper']:.3f} = "
            f"{PUBLISHED['seqgan']['paper'] - PUBLISHED['mle']['paper']:+.3f} nats"
            + (f"; SeqGAN log: {log['seqgan_final'][1]:.3f} − {log['mle_final'][1]:.3f} = "
               f"{log['seqgan_final'][1] - log['mle_final'][1]:+.3f}" if log.get("seqgan_final") and log.get("mle_final") else "")
            + " (there against MLE without the extra updates).",
            "",
            "**Gap clearly present (SeqGAN lower in every seed, by more than two standard errors): "
            f"{'yes' if clear else 'no'}.**",
        ]
    else:
        lines.append("No seed has both a complete SeqGAN run and a complete continued-MLE run yet.")
    lines += ["", "## Training curves", "",
              f"![NLL-oracle over training]({report['plot_name']})", "",
              "Left: NLL-oracle during MLE pretraining (mean over seeds, band = ± std; "
              f"{report['curve_samples'].get('mle', '?')} samples per point, logged as `metrics/nll_oracle`), "
              "with the SeqGAN log's pretraining curve. Right: from the end of pretraining, SeqGAN's adversarial "
              "batches vs the same number of continued MLE updates "
              f"({report['curve_samples'].get('seqgan', '?')} samples per point), with the SeqGAN log's "
              "adversarial curve. Dashed: the paper's Table 1 values.", ""]
    lines += ["## Runs and wall time", "",
              "Training wall time per run from its TensorBoard event file (logger creation to last scalar), and "
              "the wall time of the whole `gan-writer fit` process (start-up and data sampling included) when "
              "`gan-writer oracle-report --run` launched it (from its log in `<runs-root>/logs/`).", "",
              "| seed | stage | run | epochs | generator updates | training (min) | process (min) |",
              "|---|---|---|---|---|---|---|"]
    total = 0.0
    process = [r["process_s"] for r in report["runs"] if r.get("process_s") is not None]
    for r in report["runs"]:
        total += r["wall_s"]
        proc = "—" if r.get("process_s") is None else f"{r['process_s'] / 60:.1f}"
        lines.append(f"| {r['seed']} | {r['stage']} | `{r['path']}` | {r['epochs']} | {r['updates']} | "
                     f"{r['wall_s'] / 60:.1f} | {proc} |")
    lines += ["", f"Total training: {total / 60:.1f} min ({total / 3600:.2f} h) over {len(report['runs'])} runs"
              + (f"; processes: {sum(process) / 60:.1f} min ({sum(process) / 3600:.2f} h) over {len(process)} runs"
                 if process else "") + ".", ""]
    lines += ["## Settings", "", "Read from each stage's saved `config.yaml` (seed 0's run, or the first seed with one):", ""]
    for stage, settings in report["settings"].items():
        lines.append(f"* **{stage}**: " + ", ".join(f"`{k}`={v}" for k, v in settings.items()))
    lines += ["", "## Notes", ""] + [f"* {note}" for note in report["notes"]] + [""]
    return "\n".join(lines)


def plot_curves(report: dict, path: str | Path) -> None:
    """Write the two-panel NLL-oracle PNG (see :func:`render_markdown`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    curves, log = report["curves"], report.get("log") or {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))

    def band(ax, series: list[list[tuple[float, float]]], label: str, color: str) -> None:
        if not series:
            return
        xs = sorted({x for s in series for x, _ in s})
        table = [dict(s) for s in series]
        x_ok = [x for x in xs if all(x in t for t in table)]
        if not x_ok:
            return
        vals = np.array([[t[x] for t in table] for x in x_ok])
        mean, std = vals.mean(1), vals.std(1, ddof=1) if vals.shape[1] > 1 else np.zeros(len(x_ok))
        ax.plot(x_ok, mean, color=color, marker=".", label=f"{label} (n={len(series)})")
        ax.fill_between(x_ok, mean - std, mean + std, color=color, alpha=0.2)

    band(ax1, curves.get("mle", []), "MLE (this repo)", "tab:blue")
    if log.get("pretrain"):
        ax1.plot([e + 1 for e, _ in log["pretrain"]], [v for _, v in log["pretrain"]], color="gray",
                 linestyle=":", label="MLE (SeqGAN log)")
    for key, color in (("mle", "tab:blue"), ("untrained", "tab:gray")):
        if key in PUBLISHED:
            ax1.axhline(PUBLISHED[key]["paper"], color=color, linestyle="--", linewidth=0.8,
                        label=f"paper: {'MLE' if key == 'mle' else 'random'} {PUBLISHED[key]['paper']:.2f}")
    ax1.set_xlabel("MLE epochs")
    ax1.set_ylabel("NLL-oracle (nats/token)")
    ax1.set_title("MLE pretraining")
    ax1.legend(fontsize=8)

    band(ax2, curves.get("seqgan", []), "SeqGAN (this repo)", "tab:red")
    band(ax2, curves.get("mle_continue", []), "MLE continued (this repo)", "tab:blue")
    if log.get("adversarial"):
        ax2.plot([b + 1 for b, _ in log["adversarial"]], [v for _, v in log["adversarial"]], color="gray",
                 linestyle=":", label="SeqGAN (SeqGAN log)")
    for key, color in (("mle", "tab:blue"), ("seqgan", "tab:red")):
        ax2.axhline(PUBLISHED[key]["paper"], color=color, linestyle="--", linewidth=0.8,
                    label=f"paper: {'MLE' if key == 'mle' else 'SeqGAN'} {PUBLISHED[key]['paper']:.2f}")
    ax2.set_xlabel("generator updates after pretraining")
    ax2.set_title("adversarial training vs equal MLE training")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
