"""What a stage's command line and config must pass before anything is built (``gan-writer
fit|validate|test``, :mod:`gan_writer.cli`): config files that can be read as configs, an
explicit logger version that would write into an earlier run, ``data.tokenizer: pretrained``
resolved to the generator's own tokenizer, and ``--config`` files applied before overrides.
"""
from __future__ import annotations

import os

from gan_writer.commands.errors import one_line

__all__ = ["refuse_existing_version", "check_config_files", "use_model_tokenizer", "configs_first"]


#: loggers whose run folder is ``save_dir/name/version_N`` (or ``save_dir/name/VERSION`` for a str)
_VERSIONED_LOGGERS = ("TensorBoardLogger", "CSVLogger")


def _logger_entries(logger) -> list:
    if isinstance(logger, (list, tuple)):
        return [entry for item in logger for entry in _logger_entries(item)]
    return [logger] if hasattr(logger, "get") else []


def refuse_existing_version(config) -> None:
    """Refuse an explicit ``trainer.logger.init_args.version`` whose folder already exists: it
    holds an earlier run, which the new one would write into (events, config.yaml, checkpoints).
    Checked on rank zero only, before anything is built (the other ranks of a DDP run parse the
    command again once rank zero may have made the folder).

    Raises:
        FileExistsError: the version folder exists.
    """
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) != 0:
        return
    trainer = config.get("trainer") or {}
    for logger in _logger_entries(trainer.get("logger")):
        class_path = str(logger.get("class_path") or "")
        args = logger.get("init_args") or {}
        version = args.get("version")
        if class_path.rpartition(".")[2] not in _VERSIONED_LOGGERS or version is None or version == "":
            continue
        save_dir = args.get("save_dir") or trainer.get("default_root_dir") or "."
        name = args.get("name", "lightning_logs")  # both loggers' default
        name = name or ""  # as the loggers do: name null or "" logs straight under save_dir
        folder = os.path.join(str(save_dir), str(name), version if isinstance(version, str) else f"version_{version}")
        if os.path.exists(folder):
            raise FileExistsError(
                f"--trainer.logger.init_args.version={version}: the run folder {folder} already exists and "
                "belongs to an earlier run (nothing was written); choose another version, or leave version "
                "unset for a new version_N"
            )


def check_config_files(argv: list[str]) -> None:
    """Read each ``--config`` file of ``argv`` the way jsonargparse will, and refuse, naming the
    file, one that is missing (a name ending in ``.yaml``/``.yml``), not UTF-8, not valid YAML,
    empty, or not a mapping of sections. Other values (inline YAML) are left to jsonargparse.

    Raises:
        ValueError: the file cannot be a config.
    """
    import yaml

    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            continue
        if os.path.isdir(path):
            found = sorted(f for f in os.listdir(path) if f.endswith((".yaml", ".yml")))
            raise ValueError(f"--config {path} is a folder; give one of its config files"
                             + (f": {', '.join(os.path.join(path, f) for f in found[:6])}"
                                + (f" and {len(found) - 6} more" if len(found) > 6 else "") if found else
                                " (it holds none; the stages' configs are under experiments/)"))
        if not os.path.isfile(path):
            if path.endswith((".yaml", ".yml")):  # a file name, not inline YAML
                raise ValueError(f"--config {path}: no such file (from {os.getcwd()}); the stages' configs are "
                                 "under experiments/, e.g. experiments/poetry_zh/mle.yaml")
            continue
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw.count(b"\n", 0, err.start) + 1
            column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
            raise ValueError(f"--config {path}: byte 0x{raw[err.start]:02x} at position {err.start} (line {line}, "
                             f"column {column}) is not UTF-8; save the file as UTF-8") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or one_line(str(err))
            context = getattr(err, "context", None)
            context_mark = getattr(err, "context_mark", None)
            if context and context_mark is not None:
                problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
            raise ValueError(f"--config {path}: not valid YAML{where}: {problem}; fix the file's syntax") from None
        if data is None:
            raise ValueError(f"--config {path}: the file is empty (no keys); give a stage config such as "
                             "experiments/poetry_zh/mle.yaml")
        if not isinstance(data, dict):
            raise ValueError(f"--config {path}: expected a mapping of sections (trainer:, model:, data:, ...), "
                             f"got a {type(data).__name__}")


def use_model_tokenizer(config) -> None:
    """``data.tokenizer: pretrained`` → the generator's own tokenizer: the model of
    ``model.generator.pretrained`` (with its ``gguf_file``), else the checkpoint of
    ``model.init_checkpoint`` (whose stored tokenizer matches its generator). Changes ``config``
    (the parsed ``fit`` namespace) in place; any other ``data.tokenizer`` is left as it is.

    Raises:
        ValueError: ``pretrained`` with neither a pretrained generator nor an init checkpoint.
    """
    data = (config.get("data") or {}).get("init_args") or {}
    if data.get("tokenizer") != "pretrained":
        return
    model = (config.get("model") or {}).get("init_args") or {}
    generator = model.get("generator") or {}
    if generator.get("pretrained"):
        data["tokenizer"] = generator["pretrained"]
        if generator.get("gguf_file") and not data.get("gguf_file"):
            data["gguf_file"] = generator["gguf_file"]
    elif model.get("init_checkpoint"):
        data["tokenizer"] = model["init_checkpoint"]
    else:
        raise ValueError(
            "data.tokenizer: pretrained takes the generator's own tokenizer, but the model has neither "
            "model.init_args.generator.pretrained nor model.init_args.init_checkpoint: set one, or name the "
            "tokenizer (char, word, bpe, a model name or path)"
        )


def configs_first(argv: list[str]) -> list[str]:
    """``argv`` (command first) with every ``--config FILE`` moved, in order, right after the
    command: jsonargparse applies arguments left to right, so an override typed before
    ``--config`` was overwritten by the file or, for ``--model.init_args.*``, refused as unknown
    (the model's class not known yet). Every other argument keeps its place."""
    configs, rest, i = [], [], 1
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            configs += argv[i:i + 2]
            i += 2
            continue
        (configs if argv[i].startswith("--config=") else rest).append(argv[i])
        i += 1
    return argv[:1] + configs + rest
