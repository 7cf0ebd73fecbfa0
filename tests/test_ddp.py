"""The stages on Lightning DDP with 2 CPU processes on gloo (``--trainer.strategy=ddp``, and
``ddp_spawn`` for MLE; the adversarial stage needs ``ddp_find_unused_parameters_true``: the
generator's loss does not reach the discriminator): the same parameters on every rank after
training, changed from the start, the same validation and metrics values on every rank,
checkpoints written once.

For MLE the ranks train on different shards (Lightning's distributed sampler), so equal
parameters show the gradients were synchronised. In the adversarial stage each rank draws
its own samples (per-rank seeds; checked through the first ids each rank drew), so equal
parameters (and equal EMA baselines, a buffer) show the gradients and the baselines' batch
statistics were reduced across ranks. A SeqGAN run resumed on 2 ranks from its epoch-1
``last.ckpt`` ends with the weights of an uninterrupted 2-epoch run. Not tested here: several
nodes, GPUs (NCCL), FSDP, DeepSpeed."""
import json
import os
import subprocess
import sys

import pytest
import torch

from gan_writer.safe_load import load_checkpoint
from tiny_runs import REPO, callback, disc_args, mle_args, seqgan_args

DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2"]
SMALL_CNN = ["--model.init_args.discriminator.kind=cnn", "--model.init_args.discriminator.embed_dim=8",
             "--model.init_args.discriminator.filter_sizes=[1,2]", "--model.init_args.discriminator.num_filters=[4,4]"]


def launch(args, folder):
    """Run ``gan-writer`` on 2 processes; the two ranks' :class:`tiny_runs.RankChecksum` records,
    checked to hold the same parameters, changed by training, and the same logged values."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}"}
    proc = subprocess.run([sys.executable, "-m", "gan_writer.cli", *args, callback("RankChecksum", folder=str(folder))],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["start"] == ranks[1]["start"] and ranks[0]["end"] == ranks[1]["end"]
    assert ranks[0]["end"] != ranks[0]["start"]
    # validation and text metrics: reduced over the ranks' shards, or computed on rank 0 and broadcast
    assert ranks[0]["logged"] == ranks[1]["logged"]
    return ranks


def only_checkpoints(run):
    return sorted(p.name for p in run.rglob("*.ckpt"))


@pytest.fixture(scope="module")
def mle(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("ddp")
    ranks = launch(mle_args(root, *DDP, "--trainer.strategy=ddp", "--trainer.limit_val_batches=2"), root)
    return root / "poetry_zh" / "mle", ranks


def test_mle_on_two_cpu_processes_keeps_ranks_identical(mle):
    mle, ranks = mle
    # each rank validates its own shard; val/nll is the token-weighted mean over both
    assert ranks[0]["val_nll"] is not None and ranks[0]["val_nll"] == ranks[1]["val_nll"]
    assert {"val/nll", "metrics/bleu_2", "val/nll_test"} <= set(ranks[0]["logged"])
    assert only_checkpoints(mle) == ["best-epoch=0-step=2.ckpt", "last.ckpt"]  # 64 samples / 16 per batch / 2 ranks
    assert load_checkpoint(next(mle.rglob("last.ckpt")))["global_step"] == 2


def test_mle_on_ddp_spawn(tmp_path, shared_data):
    """``ddp_spawn`` pickles the trainer (and the CLI's argument links) into new processes."""
    ranks = launch(mle_args(tmp_path, *DDP, "--trainer.strategy=ddp_spawn", "--trainer.limit_val_batches=2"), tmp_path)
    assert ranks[0]["val_nll"] is not None
    run = tmp_path / "poetry_zh" / "mle"
    assert only_checkpoints(run) == ["best-epoch=0-step=2.ckpt", "last.ckpt"]
    assert load_checkpoint(next(run.rglob("last.ckpt")))["global_step"] == 2


@pytest.fixture(scope="module")
def adversarial(mle, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp_adv")
    ranks = launch(seqgan_args(root, mle[0], *DDP, "--trainer.strategy=ddp_find_unused_parameters_true",
                               "--trainer.max_epochs=1", *SMALL_CNN), root)
    return root / "poetry_zh" / "seqgan", ranks


def test_adversarial_stage_ranks_draw_different_samples_and_stay_identical(adversarial):
    run, ranks = adversarial
    first = [r["first_draws"] for r in ranks]
    assert set(first[0]) == {"fake_batch", "real_batch"}
    assert first[0]["fake_batch"] != first[1]["fake_batch"]  # per-rank sampling seeds
    assert first[0]["real_batch"] != first[1]["real_batch"]  # and per-rank real rows for the discriminator
    start, end = ranks[0]["modules"]["start"], ranks[0]["modules"]["end"]
    assert end["generator"] != start["generator"] and end["discriminator"] != start["discriminator"]
    assert ranks[0]["modules"]["end"] == ranks[1]["modules"]["end"]  # incl. the EMA baseline ("ema")
    assert {"val/nll", "val/disc_acc", "val/disc_acc_fake", "metrics/bleu_2"} <= set(ranks[0]["logged"])
    assert only_checkpoints(run) == ["last.ckpt"]


def test_adversarial_checkpoint_holds_every_ranks_random_streams(adversarial, mle):
    run, _ = adversarial
    ckpt = load_checkpoint(next(run.rglob("last.ckpt")))
    streams = ckpt["gan_writer_rng"]["ranks"]
    assert set(streams) == {"torch", "sample", "real"}
    assert all(t.dtype == torch.uint8 and t.size(0) == 2 for t in streams.values())
    assert not torch.equal(streams["sample"][0], streams["sample"][1])
    assert torch.equal(streams["torch"][0], ckpt["gan_writer_rng"]["torch"])  # rank 0's is the single-process entry
    before = load_checkpoint(next(mle[0].rglob("last.ckpt")))["state_dict"]
    after = ckpt["state_dict"]
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("generator."))


def test_adversarial_resume_on_two_ranks_is_exact(adversarial, mle, tmp_path):
    """Epoch 1 (the fixture) + a resume for epoch 2 == 2 epochs straight, bit for bit; each rank
    continues its own random streams from the checkpoint."""
    run, _ = adversarial
    args = [*DDP, "--trainer.strategy=ddp_find_unused_parameters_true", *SMALL_CNN]
    (tmp_path / "resumed").mkdir()
    (tmp_path / "straight").mkdir()
    launch(seqgan_args(tmp_path / "resumed", mle[0], *args, f"--ckpt_path={next(run.rglob('last.ckpt'))}"),
           tmp_path / "resumed")
    launch(seqgan_args(tmp_path / "straight", mle[0], *args), tmp_path / "straight")
    resumed, straight = (load_checkpoint(next((tmp_path / k).rglob("last.ckpt"))) for k in ("resumed", "straight"))
    assert resumed["global_step"] == straight["global_step"] > 0
    differ = [k for k, v in straight["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert not differ, differ[:5]


def test_discriminator_pretraining_ranks_train_on_different_negatives(mle, tmp_path):
    """Discriminator pretraining on 2 gloo ranks: rank 0 draws its pool of negatives from the
    global stream (as one process does), rank 1 from its own seeded stream, so the pools
    differ; the discriminators stay identical (gradients synchronised) and change."""
    run, _ = mle
    ranks = launch(disc_args(tmp_path, run, *DDP, "--trainer.strategy=ddp"), tmp_path)
    pools = [r["first_draws"].get("fake_batch") for r in ranks]
    assert pools[0] is not None and pools[0] != pools[1]
    start, end = ranks[0]["modules"]["start"], ranks[0]["modules"]["end"]
    assert end["discriminator"] != start["discriminator"] and end["generator"] == start["generator"]
    assert only_checkpoints(tmp_path / "poetry_zh" / "disc") == ["last.ckpt"]
