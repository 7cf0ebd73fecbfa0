"""The ``gan-writer`` command.

* ``gan-writer fit|validate|test --config experiments/.../X.yaml`` — a training stage through
  LightningCLI (model and data classes chosen in the YAML by ``class_path``).
* ``gan-writer generate --ckpt PATH`` — print samples from any gan_writer checkpoint.
* other tools (``evaluate``, ``compare``, ...) register in :data:`TOOLS`.
* ``gan-writer fit --print-options generator`` lists a block's options with their docs.

An error the user can fix is one line (``gan_writer.commands.errors``); ``--verbose`` or
``GAN_WRITER_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

from gan_writer.commands import generate
from gan_writer.commands.stage_config import check_config_files, configs_first, refuse_existing_version, use_model_tokenizer
from gan_writer.commands.tool_parser import ToolParser
from gan_writer.commands.errors import (
    debug_enabled,
    describe_error,
    describe_parse_error,
    one_line,
    report,
    user_cause,
)

#: the LightningCLI subcommands (training stages); there is no ``predict``: ``gan-writer generate``
STAGE_COMMANDS = ("fit", "validate", "test")

TOOLS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate": (generate.add_arguments, generate.run),
}


def _register_optional_tools() -> None:
    """Tools that live in their own modules (added as the project grows)."""
    import importlib

    for name, module in (("evaluate", "gan_writer.commands.evaluate"), ("compare", "gan_writer.commands.compare"),
                         ("oracle-report", "gan_writer.commands.oracle_report"),
                         ("write", "gan_writer.commands.write"),
                         ("cowrite", "gan_writer.commands.cowrite"),
                         ("studio", "gan_writer.commands.studio"),
                         ("image-poem", "gan_writer.commands.image_poem"),
                         ("reproduce", "gan_writer.commands.reproduce"),
                         ("export", "gan_writer.commands.export")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        TOOLS[name] = (mod.add_arguments, mod.run)


def data_tokenizer(dm):
    """The data module's tokenizer, for ``model.init_args.tokenizer`` (an argument link)."""
    return dm.tokenizer


def data_max_length(dm) -> int:
    """The data module's ``max_length`` (tokens per sample), for ``model.init_args.max_length``."""
    return dm.max_length


def _build_cli_class() -> type:
    """``GanWriterCLI``, built on first use (importing LightningCLI is slow, and the tools
    other than ``fit`` / ``validate`` / ``test`` do not need it)."""
    if "GanWriterCLI" in globals():
        return globals()["GanWriterCLI"]
    from lightning.pytorch.cli import LightningCLI

    from gan_writer.resume import check_ckpt_path

    class GanWriterCLI(LightningCLI):
        """LightningCLI with the data → model links and the ``--ckpt_path`` checks; no
        ``predict`` subcommand (the stages have no predict step: ``gan-writer generate``)."""

        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            return {k: v for k, v in LightningCLI.subcommands().items() if k in STAGE_COMMANDS}

        def add_arguments_to_parser(self, parser) -> None:
            # module-level functions, not lambdas: ddp_spawn pickles the trainer, whose config
            # callback holds this parser
            parser.link_arguments("data", "model.init_args.tokenizer", compute_fn=data_tokenizer, apply_on="instantiate")
            parser.link_arguments("data", "model.init_args.max_length", compute_fn=data_max_length, apply_on="instantiate")

        def instantiate_trainer(self, **kwargs):
            from gan_writer.callbacks.progress import quiet_default_bar

            trainer = super().instantiate_trainer(**kwargs)
            quiet_default_bar(trainer.callbacks)
            return trainer

        def parse_arguments(self, parser, args) -> None:
            # before Lightning reads --ckpt_path's hyperparameters (which would swap the model class).
            # main() always passes the argv it read (it strips --verbose), so LightningCLI's
            # warning that sys.argv and args are both given says nothing
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
                super().parse_arguments(parser, args)
            sub = self.config.get("subcommand")
            if sub:
                refuse_existing_version(self.config[sub])  # validate / test too: its config.yaml would collide
                use_model_tokenizer(self.config[sub])
            if sub and self.config[sub].get("ckpt_path"):
                check_ckpt_path(self.config[sub]["ckpt_path"], self.config[sub]["model"]["class_path"],
                                (self.config[sub].get("data") or {}).get("init_args"))
                if "weights_only" in self.config[sub]:
                    self.config[sub]["weights_only"] = True  # files are data: never unpickle code

    GanWriterCLI.__module__, GanWriterCLI.__qualname__ = __name__, "GanWriterCLI"
    globals()["GanWriterCLI"] = GanWriterCLI
    return GanWriterCLI


def __getattr__(name: str):
    """``gan_writer.cli.GanWriterCLI``, a module attribute so ``ddp_spawn`` can pickle the
    trainer (which refers to it) and its processes can unpickle it (PEP 562)."""
    if name == "GanWriterCLI":
        return _build_cli_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lightning_cli(args: list[str] | None = None):
    """Run LightningCLI with gan_writer's defaults (TensorBoard under ``checkpoints/``)."""
    import torch

    from gan_writer.allocator import keep_freed_memory

    keep_freed_memory()  # no page faults on every step's fresh activations (gan_writer/allocator.py)

    from gan_writer.data.datamodule import TextDataModule  # noqa: F401 - default data class
    from gan_writer.systems.common import GeneratorStage

    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)  # two threads on two shared cores stall badly

    from gan_writer.callbacks.run_info import RunConfigCallback
    from gan_writer.safe_load import allow_project_types

    allow_project_types()  # Lightning's own --ckpt_path load (weights_only=True) reads the project's configs

    return _build_cli_class()(
        GeneratorStage,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"default_root_dir": "checkpoints"},
        save_config_callback=RunConfigCallback,
        save_config_kwargs={"overwrite": False, "command": ["gan-writer", *(sys.argv[1:] if args is None else args)]},
        # errors raise (main() makes them one line); no abbreviations: --trainer.max_step must not
        # silently mean --trainer.max_steps (jsonargparse 5 drops them anyway)
        parser_kwargs={c: {"exit_on_error": False, "allow_abbrev": False} for c in STAGE_COMMANDS}
        | {"exit_on_error": False, "allow_abbrev": False},
        args=args,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gan-writer`` console script.

    ``--verbose`` (anywhere) or ``GAN_WRITER_DEBUG=1`` shows the traceback of an error;
    otherwise an error the user can fix is one line on stderr and the exit status is 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    with _one_line_warnings():
        return _main(argv)


@contextlib.contextmanager
def _one_line_warnings():
    """gan_writer's own warnings (a corpus's cut samples, removed control characters) as one
    ``gan_writer: warning: ...`` line, without Python's source path and ``warnings.warn(`` echo;
    other libraries' warnings as Python shows them."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if os.path.abspath(filename).startswith(package):
            print(f"gan_writer: warning: {str(message).removeprefix('gan_writer: ')}", file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _main(argv: list[str]) -> int:
    if "--verbose" not in argv:
        return _run(argv)
    before = os.environ.get("GAN_WRITER_DEBUG")
    os.environ["GAN_WRITER_DEBUG"] = "1"  # read by the tools' error reports too
    try:
        return _run([a for a in argv if a != "--verbose"])
    finally:
        if before is None:
            del os.environ["GAN_WRITER_DEBUG"]
        else:
            os.environ["GAN_WRITER_DEBUG"] = before


def _run(argv: list[str]) -> int:
    _register_optional_tools()
    if argv and argv[0] in TOOLS:
        return _run_tool(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: gan-writer {fit,validate,test} --config CONFIG.yaml [overrides] [--verbose]\n"
            f"       gan-writer {{{','.join(TOOLS)}}} ... (see gan-writer TOOL --help)"
        )
        if not argv:
            return 2
        print("       gan-writer fit --help   (every stage option; see README.md and experiments/*/*.yaml)\n"
              "       gan-writer fit --print-options {generator,discriminator,model,data} [--config X.yaml]\n"
              "       --verbose (or GAN_WRITER_DEBUG=1): the full traceback of an error")
        return 0
    if argv[0].startswith("-"):
        return _command_not_first(argv)
    if argv[0] not in STAGE_COMMANDS:
        return _unknown_command(argv[0])
    return _run_stage(argv)


class _DropNotice(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (a tip on every run, nothing to act on)."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102 - logging's hook
        return "litlogger" not in str(record.msg)


def _quiet_library_notices() -> None:
    """What the libraries print on every run that a user cannot act on: Lightning's LitLogger
    tip, and torch's FutureWarning about ``LeafSpec``, which Lightning 2.6's own pytree code
    triggers (lightning/pytorch/utilities/_pytree.py), not gan_writer's. Idempotent."""
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropNotice) for f in log.filters):
        log.addFilter(_DropNotice())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)


def _run_tool(argv: list[str]) -> int:
    """``gan-writer TOOL ...``: its argparse parser and ``run``; gan_writer's own errors in one line."""
    add, run = TOOLS[argv[0]]
    parser = ToolParser(prog=f"gan-writer {argv[0]}")
    add(parser)
    parser.add_argument("--verbose", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv[1:])
    try:
        return run(args) or 0
    except Exception as err:  # noqa: BLE001 - only gan_writer's own errors are shortened
        if user_cause(err) is None:
            raise
        return report(parser.prog, user_cause(err))


def _run_stage(argv: list[str]) -> int:
    """``gan-writer fit|validate|test ...`` through LightningCLI: the config files checked first,
    parse and user errors in one line, and what to resume from after an interruption."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    _quiet_library_notices()
    argv = configs_first(argv)
    nested_help = [a for a in argv if a.removeprefix("--model.").removeprefix("init_args.") in ("generator.help", "discriminator.help")]
    if nested_help:  # LightningCLI cannot show the help of a nested block in subclass mode: ours does
        block = nested_help[0].split(".")[-2]
        argv = [a for a in argv if a != nested_help[0]] + ["--print-options", block]
    try:
        check_config_files(argv)  # --print-options reads the files too
    except ValueError as err:
        return report(f"gan-writer {argv[0]}", err)
    if "--print-options" in argv:
        return _print_options(argv)
    try:
        cli = lightning_cli(argv)
    except Exception as err:  # noqa: BLE001 - a bug (not a user error) is re-raised below
        from jsonargparse import ArgumentError

        if debug_enabled():
            raise
        if isinstance(err, ArgumentError):
            message = describe_parse_error(str(err), argv)
        elif user_cause(err) is not None:
            message = one_line(describe_error(user_cause(err)))
        else:
            raise
        print(f"gan-writer {argv[0]}: error: {message}", file=sys.stderr)
        return 2
    except SIGTERMException:
        print("gan-writer: stopped by SIGTERM; resume from the run's checkpoints/last.ckpt with --ckpt_path", file=sys.stderr)
        return 143
    return _finish(cli, argv[0])


def _finish(cli, command: str) -> int:
    """After a stage: tear down DDP's process group; for ``fit``, say where the run is and, when a
    callback stopped it early, what to resume from (exit 130)."""
    trainer = getattr(cli, "trainer", None)
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        # tear down DDP's process group (gloo's threads) before the interpreter exits: left to
        # process exit, a rank sometimes aborts ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()
    log_dir = getattr(trainer, "log_dir", None)
    if log_dir and command == "fit":
        if trainer.global_step == 0 and not list(Path(log_dir).glob("checkpoints/*.ckpt")):
            print(f"gan-writer: no training step was taken (trainer.max_steps or max_epochs is 0, or no batches): "
                  f"no checkpoint was written; the run's config is in {log_dir}", file=sys.stderr)
            return 0
        print(f"gan-writer: run saved in {log_dir}", file=sys.stderr)
        stopped = [cb for cb in trainer.callbacks if getattr(cb, "interrupted", None)]
        if stopped:
            print(f"gan-writer: interrupted ({stopped[0].interrupted}); resume with --ckpt_path {stopped[0].last_model_path}",
                  file=sys.stderr)
            return 130
    return 0


def _print_options(argv: list[str]) -> int:
    """``gan-writer fit --print-options BLOCK [--config X.yaml]``: a block's options and docs."""
    from gan_writer.commands.options import block_options, config_classes, format_options

    from gan_writer.commands.options import BLOCKS

    i = argv.index("--print-options")
    block = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
    if block is None:
        blocks = ", ".join([*BLOCKS, "model", "data"])
        print(f"gan-writer {argv[0]}: error: --print-options needs a BLOCK, one of {blocks} "
              f"(e.g. gan-writer {argv[0]} --print-options generator)", file=sys.stderr)
        return 2
    classes = config_classes(argv)
    try:
        options = block_options(block, classes.get("model"), classes.get("data"))
    except (ValueError, ImportError, AttributeError) as err:
        return report(f"gan-writer {argv[0]}", err)
    prefix = {"model": "--model.init_args.", "data": "--data.init_args."}.get(block, f"--model.init_args.{block}.")
    print(format_options(block, options, prefix))
    return 0


def _command_not_first(argv: list[str]) -> int:
    """``gan-writer --config X fit ...``: the options of a stage or tool go after its name (a
    ``--config`` before it would be LightningCLI's top-level one, which expects ``fit:`` sections);
    one line naming the command as it should be typed, exit 2."""
    import shlex

    commands = [*STAGE_COMMANDS, *TOOLS]
    named = next((a for a in argv if a in commands), None)
    if named is None:
        print(f"gan-writer: error: {argv[0]} comes before any command; name one first "
              f"({', '.join(commands)}), e.g. gan-writer fit --config CONFIG.yaml", file=sys.stderr)
        return 2
    rest = list(argv)
    rest.remove(named)
    print(f"gan-writer: error: the command comes first, then its options: "
          f"gan-writer {shlex.join([named, *rest])}", file=sys.stderr)
    return 2


def _unknown_command(name: str) -> int:
    """``gan-writer NAME`` for a NAME that is neither a stage nor a tool: one line, exit 2."""
    import difflib

    commands = [*STAGE_COMMANDS, *TOOLS]
    if name == "predict":
        print("gan-writer: error: there is no predict command (the stages have no predict step); "
              "print samples from a checkpoint with gan-writer generate --ckpt PATH", file=sys.stderr)
        return 2
    match = difflib.get_close_matches(name, commands, n=1, cutoff=0.6)
    hint = f"; did you mean {match[0]}?" if match else ""
    print(f"gan-writer: error: unknown command {name!r}{hint} (commands: {', '.join(commands)}; "
          "see gan-writer --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
