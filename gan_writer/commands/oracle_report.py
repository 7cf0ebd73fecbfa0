"""``gan-writer oracle-report``: the SeqGAN synthetic (NLL-oracle) benchmark over several seeds.

Runs (with ``--run``) or reads the chain of experiments/oracle (MLE pretraining,
discriminator pretraining, adversarial training, and MLE continued for as many generator
updates as the adversarial run: the equal-training baseline) for each seed under
``<runs-root>/seed_<N>/<stage>/version_<K>``, evaluates every final checkpoint by NLL-oracle on
fresh samples, reads the ``metrics/nll_oracle`` curves and wall times from the TensorBoard
event files, and writes the Markdown report and the PNG of the curves.

    gan-writer oracle-report --cpu --seeds 0,1,2 --run          # CPU-budget chain, then the report
    gan-writer oracle-report --runs-root checkpoints/oracle      # paper-sized runs (GPU), read only

A run that exists and is complete is never run again or overwritten; a missing or
incomplete one is started as a new ``version_K`` (``gan-writer fit`` in a subprocess, output
in ``<runs-root>/logs/``).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from gan_writer.analysis.oracle_collect import collect
from gan_writer.analysis.oracle_render import plot_curves, render_markdown
from gan_writer.analysis.oracle_report import STAGES, RunInfo, find_run, fit_argv, mean_std

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = "experiments/oracle"
CPU_CONFIGS = "experiments/oracle/cpu"
LOG_NAME = "oracle/seqgan_experiment_log.txt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-root", default=None,
                        help="folder of the runs (default checkpoints/oracle, with --cpu checkpoints/oracle_cpu)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--configs", default=None,
                        help=f"folder with mle/disc/seqgan/mle_continue.yaml (default {PAPER_CONFIGS}, with --cpu {CPU_CONFIGS})")
    parser.add_argument("--cpu", action="store_true", help="the CPU-budget variant (configs and runs root)")
    parser.add_argument("--run", action="store_true", help="launch the missing runs first (gan-writer fit subprocesses)")
    parser.add_argument("--fit-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every launched fit, e.g. --fit-arg=--trainer.accelerator=gpu (repeatable)")
    parser.add_argument("--out", default="docs/results/oracle.md", help="Markdown report (default docs/results/oracle.md)")
    parser.add_argument("--plot", default=None, help="PNG of the curves (default: <out folder>/oracle_nll.png)")
    parser.add_argument("--num-samples", type=int, default=10000, help="samples per NLL-oracle evaluation (default 10000)")
    parser.add_argument("--log", default=None,
                        help=f"SeqGAN's experiment log (default {LOG_NAME} under $GAN_WRITER_DATA; skipped if absent)")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise SystemExit(f"--seeds must be comma-separated integers, got {text!r}") from err
    if not seeds:
        raise SystemExit("--seeds names no seed")
    return seeds


def subprocess_runner(argv: list[str], log_path: Path) -> int:
    """Run ``gan-writer <argv>`` in a child process, its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[oracle-report] gan-writer {shlex.join(argv)}  (log: {log_path})", flush=True)
    with log_path.open("w", encoding="utf-8") as fh:
        return subprocess.run([sys.executable, "-m", "gan_writer.cli", *argv], stdout=fh, stderr=subprocess.STDOUT,
                              env=os.environ.copy()).returncode


def launch_missing(root: Path, configs: Path, seeds: Sequence[int], extra: Sequence[str] = (),
                   runner: Callable[[list[str], Path], int] = subprocess_runner,
                   stages: Sequence[str] | None = None) -> list[tuple[int, str]]:
    """Run every stage (of ``stages``, default all) that has no complete run, seed by seed, in
    :data:`STAGES` order. ``runner(argv, log_path)`` runs ``gan-writer argv`` and returns its
    exit status.

    Returns the ``(seed, stage)`` pairs launched.

    Raises:
        RuntimeError: when a run fails or ends incomplete (naming its log).
    """
    launched = []
    for seed in seeds:
        runs: dict[str, RunInfo] = {}
        for stage in STAGES:
            found = find_run(root, seed, stage)
            if found is None and (stages is None or stage in stages):
                argv = fit_argv(configs, root, seed, stage, runs, extra)
                log = root / "logs" / f"seed_{seed}_{stage}_{time.strftime('%Y%m%d-%H%M%S')}.log"
                rc = runner(argv, log)
                found = find_run(root, seed, stage)
                if rc != 0 or found is None:
                    raise RuntimeError(f"gan-writer {shlex.join(argv)} failed (exit {rc}); see {log}")
                launched.append((seed, stage))
            if found is not None:
                runs[stage] = found
    return launched


def _default_log() -> Path | None:
    from gan_writer.data.fetch import data_dirs

    for d in data_dirs():
        if (Path(d) / LOG_NAME).is_file():
            return Path(d) / LOG_NAME
    return None


def run(args: argparse.Namespace) -> int:
    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)
    seeds = _seeds(args.seeds)
    configs = args.configs or (CPU_CONFIGS if args.cpu else PAPER_CONFIGS)
    root = Path(args.runs_root or ("checkpoints/oracle_cpu" if args.cpu else "checkpoints/oracle"))
    config_dir = Path(configs)
    if not config_dir.is_absolute() and not config_dir.is_dir() and (REPO / config_dir).is_dir():
        config_dir = REPO / config_dir
    missing = [c for c, _ in STAGES.values() if not (config_dir / c).is_file()]
    if missing:
        print(f"gan-writer oracle-report: error: {config_dir} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.run:
        start = time.time()
        try:
            launched = launch_missing(root, config_dir, seeds, args.fit_arg)
        except RuntimeError as err:
            print(f"gan-writer oracle-report: error: {err}", file=sys.stderr)
            return 1
        print(f"[oracle-report] launched {len(launched)} runs in {(time.time() - start) / 60:.1f} min", flush=True)
    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.parent / "oracle_nll.png"
    log = Path(args.log) if args.log else _default_log()
    parts = ["gan-writer oracle-report"] + (["--cpu"] if args.cpu else []) + [f"--seeds {','.join(map(str, seeds))}"]
    if args.runs_root:
        parts.append(f"--runs-root {args.runs_root}")
    if args.configs:
        parts.append(f"--configs {args.configs}")
    if args.num_samples != 10000:
        parts.append(f"--num-samples {args.num_samples}")
    try:
        report = collect(root, configs, seeds, args.num_samples, log, " ".join(parts),
                         os.path.relpath(plot, out.parent))
    except ValueError as err:  # a refused (unsafe or corrupted) checkpoint or oracle file
        print(f"gan-writer oracle-report: error: {err}", file=sys.stderr)
        return 2
    if not any(row["values"] for row in report["rows"]):
        print(f"gan-writer oracle-report: error: no complete MLE run under {root} for seeds {args.seeds}: train them "
              "with --run (or point --runs-root at your runs)", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(report), encoding="utf-8")
    plot_curves(report, plot)
    print(f"[oracle-report] wrote {out} and {plot}")
    for row in report["rows"]:
        if row["values"]:
            m, s = mean_std(row["values"])
            spread = f" ± {s:.3f}" if len(row["values"]) > 1 else ""
            print(f"  {row['label']:<45} {m:.3f}{spread} (n={len(row['values'])})")
    return 0
