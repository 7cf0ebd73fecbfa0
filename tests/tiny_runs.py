"""Tiny CLI runs of the shipped configs (a few steps on a slice of `shi`) shared by the
tests of safe loading, integrity and resume."""
import json
import os
import shutil
import signal
import time
from pathlib import Path

import lightning as L

from gan_writer.cli import main

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.log_every_n_steps=1"]


def config(stage: str, folder, every_n_train_batches: int, metrics_samples: int = 8) -> str:
    """experiments/poetry_zh/<stage>.yaml with ``last.ckpt`` every ``every_n_train_batches``
    batches and ``metrics_samples`` texts for the metrics callback, written to ``folder``."""
    import yaml

    cfg = yaml.safe_load((REPO / f"experiments/poetry_zh/{stage}.yaml").read_text(encoding="utf-8"))
    for cb in cfg["trainer"]["callbacks"]:
        if cb["class_path"].endswith("ResumeCheckpoint"):
            cb["init_args"]["every_n_train_batches"] = every_n_train_batches
        if cb["class_path"].endswith("TextMetricsCallback"):
            cb["init_args"]["num_samples"] = metrics_samples
    path = Path(folder) / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return str(path)


def mle_args(save_dir, *extra, config: str | None = None) -> list[str]:
    """``gan-writer fit`` of experiments/poetry_zh/mle.yaml: a 16-wide GPT-2, 64 samples, batches of 16."""
    return ["fit", "--config", config or str(REPO / "experiments/poetry_zh/mle.yaml"), *QUIET,
            f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.max_epochs=1", "--trainer.val_check_interval=null",
            "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0",
            "--model.init_args.generator.n_embd=16", "--model.init_args.generator.n_head=2",
            "--model.init_args.generator.n_layer=1", "--model.init_args.num_text_samples=0",
            "--model.init_args.warmup_steps=0", "--model.init_args.lr=0.01",
            "--data.init_args.max_train_samples=64", "--data.init_args.batch_size=16",
            *extra]


def disc_args(save_dir, mle, *extra, config: str | None = None) -> list[str]:
    """``gan-writer fit`` of experiments/poetry_zh/disc.yaml from the run ``mle``: a 1-layer transformer."""
    return ["fit", "--config", config or str(REPO / "experiments/poetry_zh/disc.yaml"), *QUIET,
            f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0",
            f"--model.init_args.init_checkpoint={mle}", f"--data.init_args.tokenizer={mle}",
            "--model.init_args.num_negatives=32", "--model.init_args.negatives_every_n_epochs=2",
            "--model.init_args.discriminator.n_layer=1", "--model.init_args.discriminator.n_embd=16",
            "--data.init_args.max_train_samples=64", "--data.init_args.batch_size=16", *extra]


def fit(args) -> int:
    rc = main(args)
    assert rc == 0, args
    return rc


class SignalAt(L.Callback):
    """Sends this process ``signum`` (SIGINT / SIGTERM, as a user or a scheduler would) at the
    end of training batch ``step``; with ``wait`` it instead writes ``ready_file`` and sleeps,
    for a parent process to send the signal."""

    def __init__(self, step: int, signum: str = "SIGTERM", ready_file: str | None = None, wait: float = 0.0) -> None:
        self.step, self.signum, self.ready_file, self.wait = step, signum, ready_file, wait

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.total.processed != self.step:
            return
        if self.ready_file:
            open(self.ready_file, "w").close()
            time.sleep(self.wait)
        else:
            os.kill(os.getpid(), getattr(signal, self.signum))


class CopyAt(L.Callback):
    """Copies ``last.ckpt`` to ``dest`` once ``step`` batches are done (the file a run killed then leaves)."""

    def __init__(self, step: int, dest: str) -> None:
        self.step, self.dest = step, dest

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.total.processed == self.step:
            shutil.copy(os.path.join(trainer.log_dir, "checkpoints", "last.ckpt"), self.dest)


def callback(cls: str, **init_args) -> str:
    """A ``--trainer.callbacks+=`` argument adding ``tiny_runs.<cls>``."""
    return "--trainer.callbacks+=" + json.dumps({"class_path": f"tiny_runs.{cls}", "init_args": init_args})


def seqgan_args(save_dir, init, *extra, config: str | None = None) -> list[str]:
    """``gan-writer fit`` of experiments/poetry_zh/seqgan.yaml from the run ``init``: 8 sequences,
    2 rollouts, delayed rollout policy and EMA baseline (both saved in the checkpoint)."""
    return ["fit", "--config", config or str(REPO / "experiments/poetry_zh/seqgan.yaml"), *QUIET,
            f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.max_epochs=2", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0",
            f"--model.init_args.init_checkpoint={init}", f"--data.init_args.tokenizer={init}",
            "--model.init_args.g_batch_size=8", "--model.init_args.rollout_num=2", "--model.init_args.d_num_samples=32",
            "--model.init_args.d_batch_size=16", "--model.init_args.num_text_samples=2",
            "--model.init_args.rollout_policy=delayed", "--model.init_args.advantage=ema",
            "--data.init_args.max_train_samples=64", "--data.init_args.batch_size=16", *extra]


class RankChecksum(L.Callback):
    """Writes ``<folder>/rank<R>.json``: this rank's parameter checksums at train start and
    end (``start`` / ``end``: the whole state dict; ``modules``: per top-level module, e.g.
    ``generator`` and ``discriminator``), checksums of the first ids it drew in training from
    ``fake_batch`` / ``real_batch`` (the adversarial stage's discriminator samples), and its
    ``val/*`` and ``metrics/*`` values."""

    def __init__(self, folder: str) -> None:
        self.folder, self.start, self.modules_start, self.first = folder, None, None, {}

    @staticmethod
    def _sum(tensors: dict) -> str:
        from gan_writer.safe_load import tensor_checksum

        return tensor_checksum({"state_dict": {k: v.detach().cpu() for k, v in tensors.items()}})

    def _modules(self, pl_module) -> dict[str, str]:
        state = pl_module.state_dict()
        names = sorted({k.split(".")[0] for k in state})
        return {n: self._sum({k: v for k, v in state.items() if k.split(".")[0] == n}) for n in names}

    def _spy(self, trainer, pl_module, name: str) -> None:
        draw = getattr(pl_module, name)

        def recorded(*args, **kwargs):
            out = draw(*args, **kwargs)
            if trainer.training and name not in self.first:
                self.first[name] = self._sum({"ids": out["ids"]})
            return out

        setattr(pl_module, name, recorded)

    def on_train_start(self, trainer, pl_module) -> None:
        self.start, self.modules_start = self._sum(pl_module.state_dict()), self._modules(pl_module)
        for name in ("fake_batch", "real_batch"):
            if hasattr(pl_module, name):
                self._spy(trainer, pl_module, name)

    def on_train_end(self, trainer, pl_module) -> None:
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as fh:
            val = trainer.callback_metrics.get("val/nll")
            logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "metrics/"))}
            json.dump({"start": self.start, "end": self._sum(pl_module.state_dict()), "world_size": trainer.world_size,
                       "modules": {"start": self.modules_start, "end": self._modules(pl_module)},
                       "first_draws": self.first, "logged": logged,
                       "val_nll": None if val is None else float(val)}, fh)
