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
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from gan_writer.analysis.oracle_report import (
    EVAL_SEED_OFFSET,
    PUBLISHED,
    STAGES,
    RunInfo,
    cached,
    eval_key,
    evaluate_generator,
    fit_argv,
    find_run,
    mean_std,
    oracle_from_meta,
    parse_seqgan_log,
    plot_curves,
    read_scalars,
    render_markdown,
    run_wall_time,
)

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = "experiments/oracle"
CPU_CONFIGS = "experiments/oracle/cpu"
LOG_NAME = "oracle/seqgan_experiment_log.txt"
RANDOM_LSTM_SEED_OFFSET = 1000  # seed of the "random LSTM" reference row = run seed + this


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


# ---- collecting ---------------------------------------------------------------------------------
def _settings(run: RunInfo) -> dict:
    cfg = run.config
    trainer, model = cfg.get("trainer") or {}, (cfg.get("model") or {}).get("init_args") or {}
    data = (cfg.get("data") or {}).get("init_args") or {}
    out = {k: trainer[k] for k in ("max_epochs", "limit_train_batches", "gradient_clip_val") if trainer.get(k) is not None}
    keys = ("lr", "weight_decay", "num_negatives", "negatives_every_n_epochs", "g_batch_size", "g_steps", "rollout_num",
            "rollout_policy", "rollout_update_rate", "baseline", "d_steps", "d_epochs", "d_num_samples", "d_batch_size",
            "g_lr", "d_lr", "grad_clip", "mle_steps", "kl_coef", "reward", "advantage", "loss", "loss_aggregation",
            "kl_penalty")
    out.update({k: model[k] for k in keys if k in model and model[k] is not None})
    disc = model.get("discriminator")
    if isinstance(disc, dict) and disc.get("num_filters"):
        out["discriminator"] = (f"CNN widths {disc.get('filter_sizes')} with {sum(disc['num_filters'])} filters, "
                                f"emb {disc.get('embed_dim')}")
    out["data.batch_size"] = data.get("batch_size")
    for cb in trainer.get("callbacks") or []:
        if isinstance(cb, dict) and str(cb.get("class_path", "")).endswith("TextMetricsCallback"):
            out["metrics samples"] = (cb.get("init_args") or {}).get("num_samples")
    return out


def _curve_samples(run: RunInfo | None) -> int | str:
    return _settings(run).get("metrics samples", "?") if run else "?"


def _last_step(run: RunInfo) -> int:
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(run.path), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    steps = [e.step for tag in acc.Tags().get("scalars", []) if tag != "hp_metric" for e in acc.Scalars(tag)]
    return max(steps, default=-1)


def collect(root: Path, configs: str, seeds: Sequence[int], num_samples: int, log_path: Path | None,
            command: str, plot_name: str) -> dict:
    """Evaluate and gather everything :func:`render_markdown` and :func:`plot_curves` need."""
    from gan_writer.checkpoint import load_artifacts
    from gan_writer.models import build_generator_from_spec

    runs = {seed: {stage: find_run(root, seed, stage) for stage in STAGES} for seed in seeds}
    oracle_text = "?"
    oracles: dict[str, tuple] = {}

    def oracle_for(meta_data: dict):
        key = repr(sorted((k, v) for k, v in meta_data.items() if not k.startswith("_")))
        if key not in oracles:
            oracles[key] = oracle_from_meta(meta_data)
        return oracles[key]

    values: dict[str, dict[int, dict]] = {k: {} for k in ("oracle", "uniform", "unigram", "untrained", "random_lstm", "mle_epoch1", "mle", "mle_continue", "seqgan")}
    curves: dict[str, list] = {"mle": [], "seqgan": [], "mle_continue": []}
    first_epoch: list[float] = []
    run_rows = []
    for seed in seeds:
        mle = runs[seed]["mle"]
        if mle is None:
            continue
        art = load_artifacts(mle.ckpt)
        data = art.meta.get("data") or {}
        oracle, valid = oracle_for(data)
        oracle_text = (f"a random N(0, 1) oracle (seed {data.get('oracle_seed')}, vocabulary {oracle.vocab_size})"
                       if data.get("oracle_params") is None else f"SeqGAN's `{Path(data['oracle_params']).name}`")
        seq_len = int(data.get("seq_len", art.meta.get("max_length", 20)))
        eval_seed = EVAL_SEED_OFFSET + seed
        ref_cache = root / f"seed_{seed}" / "oracle_eval_reference.json"
        base_key = {"num_samples": num_samples, "eval_seed": eval_seed, "data": {k: v for k, v in data.items() if not k.startswith("_")}}

        def score_oracle():
            ids = oracle.sample_dataset(num_samples, seq_len, seed=eval_seed)
            from gan_writer.metrics.nll import corpus_nll, nll_oracle

            ones = lambda x: torch.ones_like(x)  # noqa: E731
            return {"nll_oracle": nll_oracle(oracle, ids, ones(ids)),
                    "nll_test": corpus_nll(oracle, [{"ids": valid, "attention_mask": ones(valid)}])}

        def score_uniform():
            from gan_writer.metrics.nll import nll_oracle

            ids = torch.randint(oracle.vocab_size, (num_samples, seq_len), generator=torch.Generator().manual_seed(eval_seed))
            return {"nll_oracle": nll_oracle(oracle, ids, torch.ones_like(ids)), "nll_test": math.log(oracle.vocab_size)}

        def score_unigram():
            from gan_writer.metrics.nll import nll_oracle

            train = oracle.sample_dataset(int(data.get("num_train", 10000)), seq_len, seed=int(data.get("sample_seed", 88)))
            freq = torch.bincount(train.flatten(), minlength=oracle.vocab_size).double()
            rng = torch.Generator().manual_seed(eval_seed)
            ids = torch.multinomial(freq / freq.sum(), num_samples * seq_len, replacement=True, generator=rng)
            ids = ids.view(num_samples, seq_len)
            return {"nll_oracle": nll_oracle(oracle, ids, torch.ones_like(ids))}

        def score_untrained():
            torch.manual_seed(seed)
            fresh = build_generator_from_spec(art.generator.spec())
            return evaluate_generator(fresh, oracle, valid, num_samples, seq_len, eval_seed)

        def score_random_lstm():
            # another oracle-like network: the oracle's own N(0, 1) initialisation, a different seed
            from gan_writer.models.oracle import OracleLSTM

            other = OracleLSTM.random(RANDOM_LSTM_SEED_OFFSET + seed, oracle.vocab_size, oracle.emb_dim, oracle.hidden_dim)
            return evaluate_generator(other, oracle, valid, num_samples, seq_len, eval_seed)

        values["random_lstm"][seed] = cached(ref_cache, {"what": "random_lstm", **base_key}, score_random_lstm)
        values["oracle"][seed] = cached(ref_cache, {"what": "oracle", **base_key}, score_oracle)
        values["uniform"][seed] = cached(ref_cache, {"what": "uniform", **base_key}, score_uniform)
        values["unigram"][seed] = cached(ref_cache, {"what": "unigram", **base_key}, score_unigram)
        values["untrained"][seed] = cached(ref_cache, {"what": "untrained", "spec": art.generator.spec(), **base_key},
                                           score_untrained)
        for stage in ("mle", "mle_continue", "seqgan"):
            run = runs[seed][stage]
            if run is None:
                continue
            key = eval_key(stage, run.ckpt, base_key["num_samples"], base_key["eval_seed"], base_key["data"])
            values[stage][seed] = cached(
                run.path / "oracle_eval.json", key,
                lambda run=run: evaluate_generator(load_artifacts(run.ckpt).generator, oracle, valid, num_samples, seq_len, eval_seed),
            )
        # curves (x: MLE epochs; generator updates after pretraining)
        epochs = {s: v for s, v, _ in read_scalars(mle.path, "epoch")}
        mle_curve = [(epochs.get(s, float("nan")) + 1, v) for s, v, _ in read_scalars(mle.path, "metrics/nll_oracle")]
        if mle_curve:
            curves["mle"].append(mle_curve)
            first_epoch.append(mle_curve[0][1])
            values["mle_epoch1"][seed] = {"nll_oracle": mle_curve[0][1]}
        for stage in ("seqgan", "mle_continue"):
            run = runs[seed][stage]
            if run is not None:
                pts = [(s + 1, v) for s, v, _ in read_scalars(run.path, "metrics/nll_oracle")]
                curves[stage].append(([(0, mle_curve[-1][1])] if mle_curve else []) + pts)
    for seed in seeds:
        for stage in STAGES:
            run = runs[seed][stage]
            if run is None:
                continue
            max_epochs = (run.config.get("trainer") or {}).get("max_epochs", "?")
            updates = "0 (generator frozen)" if stage == "disc" else str(_last_step(run) + 1)
            run_rows.append({"seed": seed, "stage": stage, "path": _rel(run.path), "epochs": max_epochs,
                             "updates": updates, "wall_s": run_wall_time(run.path),
                             "process_s": _process_seconds(root, seed, stage, run)})

    first_run = {stage: next((runs[s][stage] for s in seeds if runs[s][stage] is not None), None) for stage in STAGES}
    settings = {stage: _settings(run) for stage, run in first_run.items() if run is not None}
    mle_epochs = settings.get("mle", {}).get("max_epochs", "?")
    adv_updates = (_last_step(first_run["seqgan"]) + 1) if first_run["seqgan"] else "?"
    cont_updates = (_last_step(first_run["mle_continue"]) + 1) if first_run["mle_continue"] else "?"

    log = {}
    if log_path is not None and log_path.is_file():
        log = parse_seqgan_log(log_path)
        if log["pretrain"]:
            log["mle_final"] = log["pretrain"][-1]
        if log["adversarial"]:
            log["seqgan_final"] = log["adversarial"][-1]
            if isinstance(adv_updates, int):
                at = [p for p in log["adversarial"] if p[0] + 1 <= adv_updates]
                log["seqgan_at"] = at[-1] if at else None

    def col(name: str, key: str = "nll_oracle") -> list[float]:
        return [values[name][s][key] for s in seeds if s in values[name] and key in values[name][s]]

    def seeds_of(name: str) -> list[int]:
        return [s for s in seeds if s in values[name]]

    log_mle = f"{log['mle_final'][1]:.3f} (epoch {log['mle_final'][0]})" if log.get("mle_final") else "—"
    log_adv = "—"
    if log.get("seqgan_final"):
        log_adv = f"{log['seqgan_final'][1]:.3f} (batch {log['seqgan_final'][0]})"
        if log.get("seqgan_at") and log["seqgan_at"] != log["seqgan_final"]:
            log_adv += f"; {log['seqgan_at'][1]:.3f} at batch {log['seqgan_at'][0]}"
    rows = [
        {"label": "oracle's own samples (entropy floor)", "key": "oracle"},
        {"label": "uniformly random tokens", "key": "uniform"},
        {"label": "training-data unigram (tokens drawn independently)", "key": "unigram"},
        {"label": "untrained generator (N(0, 0.1) init)", "key": "untrained", "paper": PUBLISHED["untrained"]["paper"]},
        {"label": "random LSTM with N(0, 1) parameters (the oracle's own initialisation, another seed)",
         "key": "random_lstm"},
        {"label": "MLE after 1 epoch (2,000 samples, from the training curve)", "key": "mle_epoch1",
         "log_text": f"{log['pretrain'][0][1]:.3f} (epoch {log['pretrain'][0][0]}, its first entry)" if log.get("pretrain") else "—"},
        {"label": f"MLE, end of pretraining ({mle_epochs} epochs)", "key": "mle", "paper": PUBLISHED["mle"]["paper"],
         "log_text": log_mle},
        {"label": f"MLE continued (+{cont_updates} updates)", "key": "mle_continue"},
        {"label": f"SeqGAN (+{adv_updates} adversarial batches)", "key": "seqgan", "paper": PUBLISHED["seqgan"]["paper"],
         "log_text": log_adv},
    ]
    for row in rows:
        row["values"], row["nll_test"], row["seeds"] = col(row["key"]), col(row["key"], "nll_test"), seeds_of(row["key"])

    both = [s for s in seeds if s in values["seqgan"] and s in values["mle_continue"]]
    gap = {"seeds": both, "updates": adv_updates,
           "values": [values["seqgan"][s]["nll_oracle"] - values["mle_continue"][s]["nll_oracle"] for s in both]}

    notes = []
    if col("untrained"):
        u, w = mean_std(col("untrained"))[0], mean_std(col("uniform"))[0]
        note = (f"Untrained generator: {u:.3f} nats, against {w:.3f} for uniformly random tokens — SeqGAN's "
                "N(0, 0.1) initialisation (LantaoYu/SeqGAN generator.py `init_matrix`, also used here) makes the "
                "output logits nearly flat, so an untrained generator samples almost uniformly. The paper's "
                f"{PUBLISHED['untrained']['paper']:.3f} for a random generator is not what this initialisation gives.")
        if col("random_lstm"):
            note += (f" Nor is a larger random initialisation: an LSTM of the oracle's own kind with N(0, 1) "
                     f"parameters (another seed) scores {mean_std(col('random_lstm'))[0]:.3f}.")
        if col("unigram"):
            note += (f" Drawing tokens independently from the training data's unigram distribution scores "
                     f"{mean_std(col('unigram'))[0]:.3f}, which is close to the paper's value: a possible (unconfirmed) "
                     "reading is that the paper's random baseline is a generator that knows only token frequencies.")
        if first_epoch:
            note += f" After one MLE epoch this repo measures {_fmt_ms(first_epoch)}"
            if log.get("pretrain"):
                note += f"; the SeqGAN log's first entry, also after one epoch, is {log['pretrain'][0][1]:.3f}"
            note += "."
        notes.append(note)
    if col("mle"):
        m = mean_std(col("mle"))[0]
        notes.append(f"MLE after {mle_epochs} epochs: {_fmt_ms(col('mle'))} (issue's target with 120 epochs: 9.0–9.15; "
                     f"{'inside' if 9.0 <= m <= 9.15 else 'outside'} that range).")
    if col("seqgan") and col("mle_continue"):
        seed0 = next(s for s in seeds if s in values["seqgan"] and s in values["mle_continue"]) if gap["seeds"] else seeds[0]
        notes.append("NLL-oracle rewards mode-seeking: a generator that concentrates its samples scores lower even "
                     "while covering less of the data (compare the NLL-test column: higher = less of the held-out "
                     "oracle data is covered), and lowering an MLE generator's sampling temperature does the same. "
                     "The temperature-fair comparison (Caccia et al. 2020) of a seed's two final generators is "
                     f"`gan-writer compare --run mle={_rel(root)}/seed_{seed0}/mle_continue "
                     f"--run seqgan={_rel(root)}/seed_{seed0}/seqgan`.")
    def last_values(stage: str, tag: str) -> list[float]:
        out = []
        for seed in seeds:
            run = runs[seed][stage]
            pts = read_scalars(run.path, tag) if run is not None else []
            if pts:
                out.append(pts[-1][1])
        return out

    acc_r, acc_f = last_values("disc", "val/disc_acc_real"), last_values("disc", "val/disc_acc_fake")
    if acc_r and acc_f:
        note = (f"Discriminator at the end of pretraining, validation accuracy on real / generated sequences: "
                f"{mean_std(acc_r)[0]:.2f} / {mean_std(acc_f)[0]:.2f} (mean over {len(acc_r)} seeds; 0.5 = chance)")
        adv_r, adv_f = last_values("seqgan", "disc/acc_real"), last_values("seqgan", "disc/acc_fake")
        kl = last_values("seqgan", "adv/kl_to_mle")
        if adv_r and adv_f:
            note += (f"; at the last adversarial batch, training accuracy {mean_std(adv_r)[0]:.2f} / {mean_std(adv_f)[0]:.2f}"
                     + (f", and the generator's sampled KL to the MLE generator {mean_std(kl)[0]:.3f} nats/token" if kl else ""))
        notes.append(note + ".")
    notes.append("Reference code (LantaoYu/SeqGAN sequence_gan.py): PRE_EPOCH_NUM = 120 pretraining epochs, "
                 "TOTAL_BATCH = 800 adversarial batches (its shipped log stops at batch 150; the issue specifies 200), "
                 "discriminator pretraining 50 × 3 epochs, 5 × 3 epochs per adversarial batch, 16 rollouts, Adam "
                 "0.01 for the generator and 1e-4 for the discriminator. Its rollout network reads the generator's "
                 "variables through tf.identity, so the 0.8 rollout update rate has no effect there; the configs use "
                 "the current generator for rollouts accordingly.")
    return {
        "command": command, "runs_root": _rel(root), "oracle": oracle_text, "configs": configs, "seeds": list(seeds),
        "num_samples": num_samples, "rows": rows, "gap": gap, "curves": curves, "log": log, "runs": run_rows,
        "settings": settings, "notes": notes, "plot_name": plot_name,
        "curve_samples": {"mle": _curve_samples(first_run["mle"]), "seqgan": _curve_samples(first_run["seqgan"])},
    }


def _process_seconds(root: Path, seed: int, stage: str, run: RunInfo) -> float | None:
    """Wall time of the ``gan-writer fit`` process that made ``run``, when ``--run`` launched it:
    from the start time in its log's name to the log's last write; None without such a log."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(run.path), size_guidance={ea.SCALARS: 1})
    acc.Reload()
    first = acc.FirstEventTimestamp()
    best = None
    for log in (root / "logs").glob(f"seed_{seed}_{stage}_*.log"):
        try:
            start = time.mktime(time.strptime(log.stem.rsplit("_", 1)[1], "%Y%m%d-%H%M%S"))
        except ValueError:
            continue
        end = log.stat().st_mtime
        if start - 1 <= first <= end and (best is None or start > best[0]):
            best = (start, end)
    return None if best is None else best[1] - best[0]


def _rel(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it, else as given."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def _fmt_ms(values: Sequence[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f} (n={len(values)})" if len(values) > 1 else f"{m:.3f} (n=1)"


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
            print(f"  {row['label']:<45} {_fmt_ms(row['values'])}")
    return 0
