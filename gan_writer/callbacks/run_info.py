"""What a run folder records about how it was made: the config (LightningCLI's
``config.yaml``) and ``run_info.json`` — git commit, package versions, the full command line.

Without a logger (``--trainer.logger=false``) every run writes into ``default_root_dir``;
there the config goes to the first free ``config.yaml`` / ``config-vN.yaml`` (and
``run_info.json`` / ``run_info-vN.json``), so a second run never crashes on, nor
overwrites, the first one's.
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


class RunConfigCallback(SaveConfigCallback):
    """LightningCLI's config saving, plus ``run_info.json``; free names when there is no logger.

    Args:
        command: the command line to record (default ``sys.argv``); other arguments as
            Lightning's ``SaveConfigCallback``.
    """

    def __init__(self, *args, command: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command = command

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
        super().setup(trainer, pl_module, stage)
        # Lightning sets trainer.ckpt_path only after the setup hooks: the CLI's value is the one
        resumed = getattr(trainer, "ckpt_path", None) or (self.config.get("ckpt_path") if self.config else None)
        if trainer.is_global_zero and log_dir and stage == "fit":
            os.makedirs(log_dir, exist_ok=True)
            path = os.path.join(log_dir, _free(log_dir, info_name))
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({**run_info(self.command), "config_file": self.config_filename,
                           "ckpt_path": str(resumed) if resumed else None}, fh, indent=2)
