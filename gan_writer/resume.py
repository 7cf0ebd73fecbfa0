"""What a training stage saves and checks so a checkpoint is trustworthy and resumes exactly.

Called from the generic hooks of :class:`gan_writer.systems.common.GeneratorStage`:

* :func:`on_save` — stores the random-number states (global torch, numpy, Python, CUDA),
  refuses to write non-finite weights and seals the tensors with a checksum
  (:func:`gan_writer.safe_load.seal`);
* :func:`on_load` — on ``--ckpt_path``: the checkpoint must be of this stage, intact and
  finite; its RNG states are kept for :func:`restore_rng` (called at ``on_train_start``, after
  Lightning's sanity check, so the check does not shift the random streams);
* :func:`check_loss` — a NaN / inf training loss stops training before ``backward``, so
  the weights that are saved are the last finite ones.

Data order across resumes is the data module's (:class:`gan_writer.data.datamodule.EpochSampler`).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from gan_writer.safe_load import KEY, is_finite, seal, verify

RNG_KEY = "gan_writer_rng"


class StageMismatchError(ValueError):
    """A checkpoint of one stage given to another (e.g. an MLE ``.ckpt`` as seqgan's ``--ckpt_path``)."""


class NonFiniteError(ValueError):
    """A NaN / inf training loss, or non-finite weights about to be saved."""


def rng_state() -> dict[str, Any]:
    """The global random states as tensors and plain values (``weights_only``-loadable)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def on_save(checkpoint: dict[str, Any]) -> None:
    """Add the RNG states, refuse non-finite weights, seal with the tensor checksum.

    Raises:
        NonFiniteError: naming the first weight that holds NaN / inf (nothing is written).
    """
    for name, t in checkpoint.get("state_dict", {}).items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise NonFiniteError(
                f"refusing to save a checkpoint at step {checkpoint.get('global_step')}: weight {name} holds NaN or "
                "inf (training diverged); lower the learning rate (model.init_args.lr) and start again, or resume "
                "from an earlier last.ckpt of this run if one was written"
            )
    checkpoint[RNG_KEY] = rng_state()
    seal(checkpoint)


def on_load(module, checkpoint: dict[str, Any]) -> None:
    """Checks on a checkpoint a stage resumes from; keeps its RNG states for :func:`restore_rng`.

    Raises:
        StageMismatchError: the checkpoint is of another stage (says what to pass instead).
        gan_writer.safe_load.CorruptCheckpointError: checksum mismatch or non-finite tensors.
    """
    stage = (checkpoint.get(KEY) or {}).get("stage")
    mine = type(module).__name__
    if stage and stage != mine:
        raise StageMismatchError(stage_mismatch_message("the checkpoint", stage, mine))
    verify(checkpoint, "the checkpoint to resume from")
    module._resume_rng = checkpoint.get(RNG_KEY)


def stage_mismatch_message(what: str, stage: str, mine: str) -> str:
    """One line: ``--ckpt_path`` continues its own stage; another stage's run starts from
    ``model.init_args.init_checkpoint``."""
    return (
        f"{what} was written by the {stage} stage, not {mine}: --ckpt_path resumes a run of the same stage; "
        "to start this stage from it, pass it as --model.init_args.init_checkpoint instead"
    )


def restore_rng(module) -> None:
    """Set the RNG states kept by :func:`on_load` (once; a fresh run keeps its seeded states)."""
    state = getattr(module, "_resume_rng", None)
    if state:
        set_rng_state(state)
    module._resume_rng = None


def check_loss(module, loss: torch.Tensor) -> None:
    """Stop training on a non-finite loss, before ``backward`` reaches the weights.

    Raises:
        NonFiniteError: naming the epoch and step.
    """
    if not is_finite(loss):
        trainer = getattr(module, "_trainer", None)
        precision = str(getattr(trainer, "precision", "")) if trainer is not None else ""
        hint = (" Under trainer.precision=16-true the weights and Adam's state are float16, where its eps (1e-8) is 0: "
                "use bf16-mixed or 16-mixed." if precision in ("16-true", "16") else "")
        raise NonFiniteError(
            f"training stopped at epoch {module.current_epoch}, step {module.global_step}: the training loss is "
            f"{float(loss.detach())} (NaN or inf); no checkpoint is written from here. Lower the learning rate or "
            f"resume from this run's checkpoints/last.ckpt if one was written (at step 0: start again).{hint}"
        )


def check_ckpt_path(path: str | None, class_path: str, data: dict | None = None) -> None:
    """Refuse, in one line, a ``--ckpt_path`` that cannot resume a run of ``class_path``:
    missing, a folder, unsafe, corrupted, not a gan_writer checkpoint, of another stage, or
    trained on another corpus than ``data`` (the run's parsed ``data.init_args``) names: the
    model settings of a resume come from the checkpoint (LightningCLI), so another run's
    checkpoint would otherwise fail later on a setting the user never wrote.

    Raises:
        FileNotFoundError, ValueError: one line naming the file and what to pass instead.
    """
    from pathlib import Path

    from gan_writer.safe_load import load_checkpoint

    if not path or str(path) in ("last", "best", "hpc", "registry"):
        return
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--ckpt_path {path} is a folder: pass a .ckpt file, e.g. {p}/version_N/checkpoints/last.ckpt")
    if not p.is_file():
        raise FileNotFoundError(f"--ckpt_path {path} not found; runs write theirs under <save_dir>/<name>/version_N/checkpoints/")
    ckpt = load_checkpoint(p)
    if not isinstance(ckpt, dict) or KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"--ckpt_path {path} was not written by a gan_writer training stage: it cannot be resumed")
    stage, mine = ckpt[KEY].get("stage"), class_path.rsplit(".", 1)[-1]
    if stage and stage != mine:
        raise StageMismatchError(stage_mismatch_message(f"--ckpt_path {path}", stage, mine))
    theirs = ckpt.get("datamodule_hyper_parameters") or {}
    for key in ("corpus", "data_dir"):
        if data and key in theirs and key in data and theirs[key] != data[key]:
            raise ValueError(
                f"--ckpt_path {path} was trained with data.{key}={theirs[key]!r}, and this run's is {data[key]!r}: "
                "--ckpt_path continues that same run, so give its own config (the config.yaml beside its "
                "checkpoints/ folder); to train on other data from it, pass it as --model.init_args.init_checkpoint"
            )
