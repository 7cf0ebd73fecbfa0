"""The SeqGAN synthetic (NLL-oracle) benchmark: find, read and evaluate the runs of the
experiments/oracle chain (``gan-writer oracle-report``; :mod:`~gan_writer.analysis.oracle_collect`
gathers the report's numbers from them, :mod:`~gan_writer.analysis.oracle_render` draws it).

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
    "parse_seqgan_log", "oracle_from_meta", "evaluate_generator", "cached", "mean_std", "fit_argv",
    "EVAL_SEED_OFFSET", "eval_key",
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
