"""The ``gan-writer`` command.

* ``gan-writer fit|validate|test --config experiments/.../X.yaml`` — a training stage through
  LightningCLI (model and data classes chosen in the YAML by ``class_path``).
* ``gan-writer generate --ckpt PATH`` — print samples from any gan_writer checkpoint.
* other tools (``evaluate``, ``compare``, ...) register in :data:`TOOLS`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from gan_writer.commands import generate

TOOLS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate": (generate.add_arguments, generate.run),
}


def _register_optional_tools() -> None:
    """Tools that live in their own modules (added as the project grows)."""
    import importlib

    for name, module in (("evaluate", "gan_writer.commands.evaluate"), ("compare", "gan_writer.commands.compare"),
                         ("oracle-report", "gan_writer.commands.oracle_report"),
                         ("export", "gan_writer.commands.export")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        TOOLS[name] = (mod.add_arguments, mod.run)


def lightning_cli(args: list[str] | None = None):
    """Run LightningCLI with gan_writer's defaults (TensorBoard under ``checkpoints/``)."""
    import torch
    from lightning.pytorch.cli import LightningCLI

    from gan_writer.data.datamodule import TextDataModule  # noqa: F401 - default data class
    from gan_writer.systems.common import GeneratorStage

    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)  # two threads on two shared cores stall badly

    class GanWriterCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("data", "model.init_args.tokenizer", compute_fn=lambda dm: dm.tokenizer, apply_on="instantiate")
            parser.link_arguments("data", "model.init_args.max_length", compute_fn=lambda dm: dm.max_length, apply_on="instantiate")

    return GanWriterCLI(
        GeneratorStage,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"default_root_dir": "checkpoints"},
        save_config_kwargs={"overwrite": False},
        args=args,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gan-writer`` console script."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    _register_optional_tools()
    if argv and argv[0] in TOOLS:
        add, run = TOOLS[argv[0]]
        parser = argparse.ArgumentParser(prog=f"gan-writer {argv[0]}")
        add(parser)
        return run(parser.parse_args(argv[1:])) or 0
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: gan-writer {fit,validate,test} --config CONFIG.yaml [overrides]\n"
            f"       gan-writer {{{','.join(TOOLS)}}} ... (see gan-writer TOOL --help)"
        )
        if not argv:
            return 2
        print("       gan-writer fit --help   (every stage option; see README.md and experiments/*/*.yaml)")
        return 0
    try:
        cli = lightning_cli(None if from_shell else argv)
    except (ValueError, FileNotFoundError, TypeError) as err:
        cause = _user_error(err)
        if cause is None or os.environ.get("GAN_WRITER_DEBUG"):
            raise
        print(f"gan-writer {argv[0]}: error: {cause}", file=sys.stderr)
        return 2
    log_dir = getattr(getattr(cli, "trainer", None), "log_dir", None)
    if log_dir and argv[0] == "fit":
        print(f"gan-writer: run saved in {log_dir}", file=sys.stderr)
    return 0


def _user_error(err: BaseException) -> BaseException | None:
    """The gan_writer error (bad corpus, checkpoint, option) at the root of ``err``, if any.

    LightningCLI wraps errors raised while building the model or data module in its own
    "Does not validate against any of the Union subtypes" message; the user needs only
    ours. Set ``GAN_WRITER_DEBUG=1`` for the full traceback.
    """
    seen = 0
    while err is not None and seen < 20:
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and "gan_writer" in tb.tb_frame.f_code.co_filename:
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


if __name__ == "__main__":
    sys.exit(main())
