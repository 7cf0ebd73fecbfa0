"""The options a training stage accepts, read from the classes themselves.

Two uses, both without building a model: ``gan-writer fit --print-options BLOCK`` lists a
block's options with the docs of their docstrings (``generator``: :class:`GeneratorConfig`,
``discriminator``: :class:`DiscriminatorConfig`, ``model`` / ``data``: the YAML's classes),
and a mistyped ``--section.key`` gets the closest valid key (:func:`closest_key`, difflib).
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re
import typing
from pathlib import Path

__all__ = ["BLOCKS", "block_options", "format_options", "valid_keys", "closest_key", "config_classes"]

#: block name -> dataclass path (the nested blocks of the stages' ``model.init_args``)
BLOCKS = {
    "generator": "gan_writer.models.generator.GeneratorConfig",
    "discriminator": "gan_writer.systems.discriminator.DiscriminatorConfig",
}
STAGES = ("gan_writer.systems.mle.MLEModule", "gan_writer.systems.discriminator.DiscriminatorPretraining",
          "gan_writer.systems.seqgan.SeqGANModule")
DATA = "gan_writer.data.datamodule.TextDataModule"
TOP_LEVEL = ("config", "print_config", "seed_everything", "ckpt_path", "optimizer", "lr_scheduler")
_SKIP = {"self", "tokenizer", "args", "kwargs"}  # tokenizer is linked from data by the CLI


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _doc_entries(doc: str | None) -> dict[str, str]:
    """``{name: text}`` from the ``Args:`` / ``Attributes:`` sections of a Google docstring
    (``a, b: text`` documents both; continuation lines are joined)."""
    entries: dict[str, str] = {}
    names: list[str] = []
    in_section, indent = False, None
    for line in inspect.cleandoc(doc or "").splitlines():
        if re.match(r"^(Args|Arguments|Attributes|Parameters):\s*$", line):
            in_section, indent, names = True, None, []
            continue
        if not in_section:
            continue
        if line and not line[0].isspace():
            in_section = False
            continue
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        head = re.match(r"^([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?:\([^)]*\))?:\s*(.*)$", stripped)
        if head and (indent is None or depth <= indent):
            indent = depth
            names = [n.strip() for n in head.group(1).split(",")]
            for n in names:
                entries[n] = head.group(2)
        elif stripped and names:
            for n in names:
                entries[n] = f"{entries[n]} {stripped}".strip()
    return entries


def _dataclass_in(annotation) -> type | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _params(cls) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in _SKIP and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _field_default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "required"


def block_options(block: str, model_class: str | None = None, data_class: str | None = None) -> list[tuple[str, str, str]]:
    """``[(name, default, doc)]`` of a block: ``generator``, ``discriminator``, ``model`` or ``data``.

    Raises:
        ValueError: an unknown block (the message lists the known ones).
    """
    if block in BLOCKS:
        cls = _load(BLOCKS[block])
        docs = _doc_entries(cls.__doc__)
        return [(f.name, _field_default(f), docs.get(f.name, "")) for f in dataclasses.fields(cls)]
    if block in ("model", "data"):
        cls = _load(model_class or STAGES[0]) if block == "model" else _load(data_class or DATA)
        docs = _doc_entries(cls.__doc__) | _doc_entries(cls.__init__.__doc__)
        return [(p.name, "required" if p.default is p.empty else repr(p.default), docs.get(p.name, ""))
                for p in _params(cls)]
    raise ValueError(f"unknown block {block!r} for --print-options; choose one of "
                     f"{', '.join([*BLOCKS, 'model', 'data'])}")


def format_options(block: str, options: list[tuple[str, str, str]], prefix: str) -> str:
    """The listing ``--print-options`` prints: one option a line, its default and doc below."""
    lines = [f"{block} options ({prefix}<name>):"]
    for i, (name, default, doc) in enumerate(options):
        lines.append(f"  {name} (default {default})")
        if doc and (i + 1 == len(options) or options[i + 1][2] != doc):  # a shared doc once, after its group
            lines.append(f"      {doc}")
    return "\n".join(lines)


def config_classes(argv: list[str]) -> dict[str, str]:
    """``{"model": class_path, "data": class_path}`` from the ``--config`` YAMLs and
    ``--model.class_path=`` overrides in ``argv`` (later ones win); unreadable files are skipped."""
    import yaml

    found: dict[str, str] = {}
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--config", "-c") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        if value is not None:
            try:
                cfg = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue
            for section in ("model", "data"):
                entry = cfg.get(section) if isinstance(cfg, dict) else None
                if isinstance(entry, dict) and isinstance(entry.get("class_path"), str):
                    found[section] = entry["class_path"]
        for section in ("model", "data"):
            if arg.startswith(f"--{section}.class_path=") or arg.startswith(f"--{section}="):
                found[section] = arg.split("=", 1)[1]
    return found


def valid_keys(model_class: str | None = None, data_class: str | None = None) -> list[str]:
    """Every dotted key ``fit`` accepts on the command line (without ``--``): the top-level
    ones, ``trainer.*``, and ``model.*`` / ``data.*`` of the given classes (all stages when
    None), in both the ``model.init_args.x`` and the short ``model.x`` spelling."""
    import lightning as L

    keys = list(TOP_LEVEL) + [f"trainer.{p.name}" for p in _params(L.Trainer)]
    for section, classes in (("model", [model_class] if model_class else STAGES), ("data", [data_class or DATA])):
        for path in classes:
            try:
                cls = _load(path)
            except (ImportError, AttributeError, ValueError):
                continue
            hints = typing.get_type_hints(cls.__init__)
            for p in _params(cls):
                names = [p.name]
                nested = _dataclass_in(hints.get(p.name))
                if nested is not None:
                    names += [f"{p.name}.{f.name}" for f in dataclasses.fields(nested)]
                for name in names:
                    keys += [f"{section}.init_args.{name}", f"{section}.{name}"]
    return list(dict.fromkeys(keys))


def closest_key(key: str, keys: list[str]) -> str | None:
    """The valid key nearest to the mistyped ``key`` (difflib ratio ≥ 0.6), else None."""
    key = key.lstrip("-").split("=", 1)[0]
    same_form = [k for k in keys if (".init_args." in k) == (".init_args." in key)] or keys
    match = difflib.get_close_matches(key, same_form, n=1, cutoff=0.6)
    return match[0] if match else None
