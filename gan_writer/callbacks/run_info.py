"""What a run folder records about how it was made: the config (LightningCLI's
``config.yaml``) and ``run_info.json`` — git commit, package versions, the full command line.

Without a logger (``--trainer.logger=false``) every run writes into ``default_root_dir``;
there the config goes to the first free ``config.yaml`` / ``config-vN.yaml`` (and
``run_info.json`` / ``run_info-vN.json``), so a second run never crashes on, nor
overwrites, the first one's.

A ``fit`` that fails before its first training step (e.g. a resume refused in
``on_load_checkpoint`` for another vocabulary), or a ``validate`` / ``test`` that fails before its
first batch, takes back the version folder it made, when that folder holds only what this run
wrote before then (:meth:`RunConfigCallback.on_exception`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from lightning.pytorch.cli import SaveConfigCallback

PACKAGES = ("gan_writer", "torch", "lightning", "transformers", "tokenizers", "peft", "numpy", "nltk", "tensorboard")


def git_commit(folder: str | Path) -> dict:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``folder`` (None values outside one)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if sha.returncode:
        return {"commit": None, "dirty": None}
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def run_info(command: list[str] | None = None) -> dict:
    """Git commit of the gan_writer source, package versions, the command line (``command``,
    default ``sys.argv``), working folder and start time."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    import gan_writer

    return {
        "git": git_commit(Path(gan_writer.__file__).resolve().parent),
        "source": str(Path(gan_writer.__file__).resolve().parent),
        "command": list(command) if command is not None else [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "packages": versions,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _free(folder: str, name: str) -> str:
    stem, ext = os.path.splitext(name)
    candidate, n = name, 0
    while os.path.exists(os.path.join(folder, candidate)):
        n += 1
        candidate = f"{stem}-v{n}{ext}"
    return candidate


def _is_my_event_file(name: str) -> bool:
    """A TensorBoard event file of this process: ``events.out.tfevents.<time>.<host>.<pid>.<n>``."""
    parts = name.split(".")
    return name.startswith("events.out.tfevents.") and len(parts) >= 7 and parts[-2] == str(os.getpid())


def _only_this_process_wrote(folder: str, names: set[str]) -> bool:
    """True if ``folder`` holds only files named in ``names`` and this process's event files."""
    return all(os.path.isfile(os.path.join(folder, e)) and (e in names or _is_my_event_file(e))
               for e in os.listdir(folder))


def _made_by_this_process(folder: str) -> bool:
    """True if ``folder`` does not exist yet, or this process's logger made it: it holds this
    process's event file and nothing else (an empty folder may be a user's: not ours)."""
    if not os.path.exists(folder):
        return True
    return bool(os.listdir(folder)) and _only_this_process_wrote(folder, set())


def _work_done(trainer, stage: str) -> bool:
    """True once ``stage`` did some work: a training step (``fit``: ``global_step``), or an
    evaluation batch begun (``validate`` / ``test``: their loop's batch progress)."""
    if stage == "fit":
        return trainer.global_step > 0
    loop = getattr(trainer, f"{stage}_loop", None)
    return loop is None or loop.batch_progress.total.ready > 0


class RunConfigCallback(SaveConfigCallback):
    """LightningCLI's config saving, plus ``run_info.json``; free names when there is no logger.

    Args:
        command: the command line to record (default ``sys.argv``); other arguments as
            Lightning's ``SaveConfigCallback``.
    """

    def __init__(self, *args, command: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command = command
        self._made: tuple[str, list[str]] | None = None  # (folder this process created, files written in it)
        self._stage = "fit"

    def on_fit_start(self, trainer, pl_module) -> None:
        """Once the checkpoint is restored (not before: a refused resume says only why)."""
        log_dir = trainer.log_dir  # on every rank: under DDP it is a broadcast (a collective)
        if trainer.is_global_zero and trainer.ckpt_path:
            print(f"gan-writer: resuming {trainer.ckpt_path}; this run writes to {log_dir} "
                  "(the best checkpoint so far stays tracked)", file=sys.stderr)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved:
            return
        log_dir = trainer.log_dir
        info_name = "run_info.json"
        if trainer.logger is None and log_dir and trainer.is_global_zero:
            self.config_filename = _free(log_dir, self.config_filename)
            info_name = _free(log_dir, info_name)
        new_folder = bool(log_dir) and trainer.is_global_zero and _made_by_this_process(log_dir)
        super().setup(trainer, pl_module, stage)
        # Lightning sets trainer.ckpt_path only after the setup hooks: the CLI's value is the one
        resumed = getattr(trainer, "ckpt_path", None) or (self.config.get("ckpt_path") if self.config else None)
        self._stage = str(getattr(stage, "value", stage))  # Lightning passes a TrainerFn (a str enum)
        if new_folder and stage != "fit":
            self._made = (log_dir, [os.path.join(log_dir, self.config_filename)])
        if trainer.is_global_zero and log_dir and stage == "fit":
            os.makedirs(log_dir, exist_ok=True)
            path = os.path.join(log_dir, _free(log_dir, info_name))
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({**run_info(self.command), "config_file": self.config_filename,
                           "ckpt_path": str(resumed) if resumed else None}, fh, indent=2)
            if new_folder:
                self._made = (log_dir, [os.path.join(log_dir, self.config_filename), path])

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """A fresh ``fit`` that failed before its first step (``global_step`` 0: a resumed run,
        whose step comes from its checkpoint, keeps its folder; an interruption too), or a
        ``validate`` / ``test`` that failed before its first batch: remove the folder this
        process created (at ``setup`` it was absent or held only this process's TensorBoard
        event file) when it holds nothing but the ``config.yaml`` (and, for ``fit``,
        ``run_info.json``) written here and the logger's ``hparams.yaml`` / event files of this
        process (nothing was logged); anything else in it (a ``checkpoints/`` folder, another
        file) keeps all of it."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        interrupted = isinstance(exception, (KeyboardInterrupt, SIGTERMException))
        if self._made is None or _work_done(trainer, getattr(self, "_stage", "fit")) or interrupted:
            return
        folder, files = self._made
        self._made = None
        try:
            if _only_this_process_wrote(folder, {os.path.basename(f) for f in files} | {"hparams.yaml"}):
                for e in os.listdir(folder):
                    os.remove(os.path.join(folder, e))
                os.rmdir(folder)
        except OSError:
            pass  # kept as it is
