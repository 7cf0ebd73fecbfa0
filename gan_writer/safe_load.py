"""Reading files made by others as data, never as code, and checking they are intact.

* :func:`load_checkpoint` reads a ``.ckpt`` with ``torch.load(weights_only=True)``: tensors,
  plain containers, numbers and strings, plus the few project types of :func:`safe_types`
  (the ``GeneratorConfig`` / ``DiscriminatorConfig`` a module built from Python keeps in its
  hyperparameters). A file that needs any other object is refused in one line naming the
  file and the object; nothing in it runs.
* :func:`seal` / :func:`verify` : a SHA-256 of every tensor of the state dict and of the
  optimizer states (names, dtypes, shapes and bytes, in sorted name order), stored in the
  ``"gan_writer"`` entry when a stage saves, checked on every load; non-finite weights are
  refused even in a file without a checksum (written before checksums existed).
* :func:`load_numpy_pickle` reads a pickle admitting only numpy arrays (the SeqGAN oracle).
* :func:`refuse_remote_code` refuses a local model folder whose config asks transformers to
  run the code it ships (``auto_map``); every ``from_pretrained`` also passes
  ``trust_remote_code=False``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

KEY = "gan_writer"
CHECKSUM = "checksum"

# numpy's own reconstructors (numpy 1 and 2 names): an ndarray and its dtype, nothing else
NUMPY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles store an array's bytes (str -> bytes, nothing else)
})


class UnsafeFileError(ValueError):
    """A file needs an object that is not data (a function, a class outside the allow-list)."""


class CorruptCheckpointError(ValueError):
    """A checkpoint whose tensors differ from its checksum, or hold NaN / inf."""


def safe_types() -> list[type]:
    """The project's own types a checkpoint may hold (hyperparameters of modules built in Python)."""
    from gan_writer.models import GeneratorConfig
    from gan_writer.systems.discriminator import DiscriminatorConfig

    return [GeneratorConfig, DiscriminatorConfig]


def allow_project_types() -> None:
    """Register :func:`safe_types` with torch, so Lightning's own ``--ckpt_path`` load
    (``weights_only=True``) reads them too. Idempotent."""
    torch.serialization.add_safe_globals(safe_types())


def _refused_object(err: BaseException) -> str | None:
    """The global a weights-only load refused (``posix.system``), or None if the file is just unreadable."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return found.group(1) if found else None


def unreadable_reason(path: str | Path) -> str:
    """Why ``torch.load`` could not read ``path``, from its first bytes, in words a user can act on."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    again = "copy it again, or save it again from the run that wrote it"
    if size == 0:
        return f"the file is empty (0 bytes): it was not written completely; {again}"
    if head.startswith(b"PK"):
        return f"a zip archive as torch.save writes, but damaged or cut short ({size:,} bytes); {again}"
    if head[:1] == b"\x80":
        return f"a pickle, but damaged, cut short or not written by torch.save ({size:,} bytes); {again}"
    shown = head.decode("utf-8", "replace")
    text = "".join(shown.split()).isprintable() and "\ufffd" not in shown  # line breaks and tabs are text too
    start = f"it starts with {shown[:12].strip()!r}" if text else "it starts with binary data"
    return (f"neither a zip archive nor a pickle as torch.save writes ({start}); "
            "give a .ckpt written by a gan_writer stage (gan-writer fit writes them under checkpoints/)")


def load_checkpoint(path: str | Path, map_location: str = "cpu", mmap: bool = False, check: bool = True) -> dict:
    """A checkpoint as a dict, read without running code, verified by :func:`verify`.

    Args:
        path: the ``.ckpt`` file.
        map_location: device of the loaded tensors.
        mmap: memory-map the tensors (cheap when only metadata is needed; then pass ``check=False``).
        check: verify the checksum and that every weight is finite.

    Raises:
        UnsafeFileError: one line naming the file and the object it needs.
        CorruptCheckpointError: the tensors do not match the stored checksum, or are not finite.
        ValueError: the file is not a readable PyTorch checkpoint.
    """
    with torch.serialization.safe_globals(safe_types()):
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as err:
            needed = _refused_object(err)
            if needed is None:
                raise ValueError(f"{path} is not a readable PyTorch checkpoint: {unreadable_reason(path)}") from None
            raise UnsafeFileError(
                f"{path}: refused to load: it needs {needed}, which is not data "
                "(checkpoints hold tensors and plain values only; nothing in a file is run)"
            ) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception:  # noqa: BLE001 - torch's own text (miniz, EOFError, a bare byte) names neither file nor fix
            raise ValueError(f"{path} is not a readable PyTorch checkpoint: {unreadable_reason(path)}") from None
    if isinstance(ckpt, dict):
        check_structure(ckpt, path)
        if check:
            verify(ckpt, path)
    return ckpt


def check_structure(ckpt: dict, path: str | Path = "checkpoint") -> None:
    """Refuse, in one line, a checkpoint whose entries have the wrong types: a ``"gan_writer"``
    entry or its checksum that is not a dict, a ``state_dict`` that is not a dict of tensors.

    Raises:
        CorruptCheckpointError: naming the file and the entry.
    """
    def bad(what: str, value: Any) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} is malformed: {what} is a {type(value).__name__}; refusing to use it")

    info = ckpt.get(KEY)
    if KEY in ckpt and not isinstance(info, dict):
        raise bad(f"its {KEY!r} entry", info)
    if isinstance(info, dict) and CHECKSUM in info:
        stored = info[CHECKSUM]
        if not isinstance(stored, dict) or not isinstance(stored.get("sha256"), str):
            raise bad(f"its {KEY}.{CHECKSUM} entry (expected a dict with a sha256 string)", stored)
    if "state_dict" in ckpt:
        state = ckpt["state_dict"]
        if not isinstance(state, dict):
            raise bad("its state_dict", state)
        for name, value in state.items():
            if not isinstance(name, str) or not isinstance(value, torch.Tensor):
                raise bad(f"state_dict entry {name!r}", value)


def _tensors(ckpt: dict) -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the state dict and optimizer states, in sorted name order."""
    found: list[tuple[str, torch.Tensor]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            found.append((prefix, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}/{i}", v)

    walk("state_dict", ckpt.get("state_dict") or {})
    walk("optimizer_states", ckpt.get("optimizer_states") or [])
    return sorted(found, key=lambda kv: kv[0])


def tensor_checksum(ckpt: dict) -> str:
    """SHA-256 (hex) over the state-dict and optimizer-state tensors of ``ckpt``: each
    tensor's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name, t in _tensors(ckpt):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def seal(ckpt: dict) -> None:
    """Store :func:`tensor_checksum` of ``ckpt`` in its ``"gan_writer"`` entry (call last
    when saving: after any change to the state dict)."""
    ckpt.setdefault(KEY, {})[CHECKSUM] = {"sha256": tensor_checksum(ckpt), "covers": "state_dict+optimizer_states"}


def verify(ckpt: dict, path: str | Path = "checkpoint") -> None:
    """Check the stored checksum (when there is one) and that every float tensor is finite.

    Raises:
        CorruptCheckpointError: naming the file and, for non-finite values, the tensor.
    """
    check_structure(ckpt, path)
    stored = ((ckpt.get(KEY) or {}).get(CHECKSUM) or {}).get("sha256")
    if stored is not None and stored != tensor_checksum(ckpt):
        raise CorruptCheckpointError(
            f"{path} is corrupted: its tensors do not match the checksum stored when it was saved "
            "(use another checkpoint of the run, e.g. an earlier last.ckpt or best-*.ckpt)"
        )
    for name, t in _tensors(ckpt):
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise CorruptCheckpointError(f"{path} holds non-finite values (NaN or inf) in {name}: refusing to use it")


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in NUMPY_GLOBALS:
            raise UnsafeFileError(f"{module}.{name}")
        return super().find_class(module, name)


def load_numpy_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` admitting only numpy arrays (and lists, tuples, dicts, numbers of them).

    Reads Python 2 pickles (``encoding="latin1"``), as SeqGAN's ``target_params_py3.pkl``.

    Raises:
        UnsafeFileError: one line naming the file and the object it needs.
        ValueError: if the file is not a readable pickle.
    """
    with open(path, "rb") as fh:
        try:
            return _NumpyOnly(fh, encoding="latin1").load()
        except UnsafeFileError as err:
            raise UnsafeFileError(
                f"{path}: refused to load: it needs {err}, which is not a numpy array (nothing in a file is run)"
            ) from None


def refuse_remote_code(name_or_path: str | Path) -> None:
    """Refuse a local model or tokenizer folder that asks to run its own code (``auto_map``).

    Raises:
        UnsafeFileError: one line naming the file and its ``auto_map``.
    """
    folder = Path(name_or_path)
    if not folder.is_dir():
        return
    for name in ("config.json", "tokenizer_config.json"):
        file = folder / name
        if not file.is_file():
            continue
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("auto_map"):
            raise UnsafeFileError(
                f"{file}: refused: its auto_map {sorted(config['auto_map'])} asks to run code shipped with the model "
                "(gan_writer never sets trust_remote_code); use a model of a built-in transformers architecture"
            )


def is_finite(value: Any) -> bool:
    """Whether a loss (tensor or float) is finite."""
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    return math.isfinite(float(value))
