"""Tiny CLI runs of the shipped configs (a few steps on a slice of `shi`) shared by the
tests of safe loading, integrity and resume."""
from pathlib import Path

from gan_writer.cli import main

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.log_every_n_steps=1"]


def mle_args(save_dir, *extra) -> list[str]:
    """``gan-writer fit`` of experiments/poetry_zh/mle.yaml: a 16-wide GPT-2, 64 samples, batches of 16."""
    return ["fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"), *QUIET,
            f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.max_epochs=1", "--trainer.val_check_interval=null",
            "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0",
            "--model.init_args.generator.n_embd=16", "--model.init_args.generator.n_head=2",
            "--model.init_args.generator.n_layer=1", "--model.init_args.num_text_samples=0",
            "--model.init_args.warmup_steps=0", "--model.init_args.lr=0.01",
            "--data.init_args.max_train_samples=64", "--data.init_args.batch_size=16",
            *extra]


def disc_args(save_dir, mle, *extra) -> list[str]:
    """``gan-writer fit`` of experiments/poetry_zh/disc.yaml from the run ``mle``: a 1-layer transformer."""
    return ["fit", "--config", str(REPO / "experiments/poetry_zh/disc.yaml"), *QUIET,
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
