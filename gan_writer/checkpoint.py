"""Self-contained checkpoints: every stage stores its generator's spec and tokenizer.

A Lightning ``.ckpt`` written by any gan_writer stage holds, besides the state dict, a
``"gan_writer"`` entry with the generator spec (enough to rebuild the module), the
tokenizer files, the corpus name, ``max_length`` and the metric tokenization. So
``gan-writer generate --ckpt X`` and the next training stage need nothing but the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gan_writer.models import CausalGenerator, build_generator_from_spec
from gan_writer.models.adapters import load_generator_state
from gan_writer.safe_load import load_checkpoint
from gan_writer.tokenization import tokenizer_from_dict, tokenizer_to_dict

KEY = "gan_writer"


@dataclass
class Artifacts:
    """What a checkpoint gives back: the generator (eval mode), its tokenizer and metadata."""

    generator: CausalGenerator
    tokenizer: Any
    meta: dict = field(default_factory=dict)
    discriminator_state: dict | None = None


def payload(generator: CausalGenerator, tokenizer, **meta: Any) -> dict:
    """The ``"gan_writer"`` checkpoint entry for ``generator`` and ``tokenizer``.

    Args:
        generator: the module whose ``spec()`` is saved (weights are in the state dict).
        tokenizer: the tokenizer whose files are saved, or None (e.g. the oracle).
        **meta: JSON-able extras (``corpus``, ``max_length``, ``metric_tokenization``, ``stage``).
    """
    return {
        "generator_spec": generator.spec(),
        "tokenizer": tokenizer_to_dict(tokenizer) if tokenizer is not None else None,
        **meta,
    }


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.ckpt`` file from a file path or a run directory.

    A directory may be an experiment (``checkpoints/poetry_zh/mle``: its newest
    ``version_N`` that holds a checkpoint is used, so a run that failed before saving one is
    skipped), a version directory, or its ``checkpoints/`` folder; in it the best checkpoint
    (``best*.ckpt``, newest first) is preferred, then ``last.ckpt``.

    Raises:
        FileNotFoundError: if nothing matches, naming the path searched.
        ValueError: a folder of several ``.ckpt`` files, none of them best or last (ambiguous).
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        versions = sorted(
            (p for p in path.glob("version_*") if p.is_dir() and p.name[8:].isdigit()), key=lambda p: int(p.name[8:])
        )
        for folder in [*reversed(versions), path]:
            found = _checkpoint_in(folder)
            if found is not None:
                return found
        raise FileNotFoundError(
            f"no .ckpt file in {path} (looked for best*.ckpt and last.ckpt"
            + (f", also in its {len(versions)} version_N folders)" if versions else ")")
        )
    raise FileNotFoundError(
        f"checkpoint {path} not found; training runs write them under checkpoints/<experiment>/version_N/checkpoints/"
        + _earlier_stage_hint(path)
    )


def _earlier_stage_hint(path: Path) -> str:
    """``"; run ... first"`` when ``path`` looks like the run folder of a shipped experiment
    (``checkpoints/poetry_zh/mle`` → ``experiments/poetry_zh/mle.yaml``), else ``""``."""
    parts = path.parts
    if len(parts) < 2:
        return ""
    name = f"{parts[-2]}/{parts[-1]}"
    for experiments in (Path("experiments"), Path(__file__).resolve().parents[1] / "experiments"):
        for config in (experiments / f"{name}.yaml", experiments / parts[-2] / "cpu" / f"{parts[-1]}.yaml"):
            if config.is_file():
                return f"; that stage has not been run yet: run `gan-writer fit --config {config}` first"
    return ""


def _checkpoint_in(folder: Path) -> Path | None:
    """The preferred ``.ckpt`` of a version folder's ``checkpoints/``, else of the folder, or None."""
    for where in (folder / "checkpoints", folder):
        best = sorted(where.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
        for candidate in [*reversed(best), where / "last.ckpt"]:
            if candidate.is_file():
                return candidate
        loose = sorted(p for p in where.glob("*.ckpt") if p.is_file())
        if len(loose) == 1:
            return loose[0]
        if loose:
            shown = ", ".join(p.name for p in loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
            raise ValueError(f"{where} holds {len(loose)} .ckpt files and none is best*.ckpt or last.ckpt: "
                             f"pass one of them ({shown})")
    return None


def _check_spec_size(spec: dict, state: dict[str, torch.Tensor], path) -> None:
    """Refuse a generator spec that would build more parameters than the checkpoint holds
    (an edited spec asking for a model too large to allocate): built on the meta device first.
    Adapter checkpoints (base weights from a model folder) and other backends are not checked."""
    if spec.get("backend") not in ("transformer", "lstm") or spec.get("peft"):
        return
    with torch.device("meta"):
        n = sum(p.numel() for p in build_generator_from_spec(spec).parameters())
    held = sum(t.numel() for t in state.values())
    if n > held:
        raise ValueError(f"{path}: its generator_spec describes {n:,} parameters but the checkpoint holds {held:,} "
                         "weights: the spec was edited or the file is damaged")


def load_artifacts(path: str | Path, prefix: str = "generator.", map_location: str = "cpu") -> Artifacts:
    """Rebuild the generator and tokenizer stored in a gan_writer checkpoint.

    Args:
        path: a ``.ckpt`` file written by a gan_writer stage, or a run directory
            (see :func:`resolve_checkpoint`).
        prefix: state-dict prefix of the generator inside the LightningModule.
        map_location: device for the loaded tensors.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a gan_writer checkpoint.
    """
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path, map_location=map_location)  # no code runs; checksum and finiteness checked
    if not isinstance(ckpt, dict) or KEY not in ckpt:
        raise ValueError(
            f"{path} has no {KEY!r} entry: it was not written by a gan_writer training stage "
            "(run `gan-writer fit --config experiments/...` to make one)"
        )
    info = ckpt[KEY]
    if not isinstance(info.get("generator_spec"), dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path} has no generator_spec or state_dict: it is not a generator checkpoint of gan_writer")
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise ValueError(f"{path} holds no weights under {prefix!r}")
    _check_spec_size(info["generator_spec"], state, path)
    generator = build_generator_from_spec(info["generator_spec"])
    load_generator_state(generator, state)  # an adapter checkpoint holds only the adapter
    generator.eval()
    tokenizer = tokenizer_from_dict(info["tokenizer"]) if info.get("tokenizer") else None
    disc = {k[len("discriminator."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("discriminator.")}
    meta = {k: v for k, v in info.items() if k not in ("generator_spec", "tokenizer")}
    meta["path"] = str(path)
    meta["global_step"] = ckpt.get("global_step")
    meta["epoch"] = ckpt.get("epoch")
    return Artifacts(generator, tokenizer, meta, disc or None)
