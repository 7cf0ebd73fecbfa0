"""Every run is saved and resumes exactly: interrupted by SIGTERM or Ctrl-C (in this process
and from outside), or killed after a checkpoint, and resumed with ``--ckpt_path``, the MLE and
discriminator-pretraining stages end with bit-identical weights and the same logged metrics
as the uninterrupted run (CPU)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.cli import main
from gan_writer.safe_load import load_checkpoint
from tiny_runs import REPO, callback, config, disc_args, fit, mle_args, seqgan_args

MLE = ["--trainer.max_epochs=3", "--model.init_args.generator.dropout=0.1"]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    return {"mle": config("mle", folder, 3), "disc": config("disc", folder, 2)}


def scalars(version, tag):
    ea = EventAccumulator(str(version))
    ea.Reload()
    return {e.step: e.value for e in ea.Scalars(tag)}


def weights(ckpt):
    return load_checkpoint(ckpt)["state_dict"]


def assert_same(a, b):
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff


@pytest.fixture(scope="module")
def straight(tmp_path_factory, shared_data, cfg):
    """The uninterrupted MLE run (12 steps, 3 epochs, dropout on); keeps its step-3 last.ckpt."""
    root = tmp_path_factory.mktemp("straight")
    killed = root / "after_step_3.ckpt"
    fit(mle_args(root, *MLE, callback("CopyAt", step=3, dest=str(killed)), config=cfg["mle"]))
    return root / "poetry_zh" / "mle" / "version_0", killed, cfg


def resumed_equals_straight(straight, root, ckpt, start_step, *extra):
    straight_run, _, cfg = straight
    fit(mle_args(root, *MLE, *extra, f"--ckpt_path={ckpt}", config=cfg["mle"]))
    runs = sorted((root / "poetry_zh" / "mle").glob("version_*"))
    run = runs[-1]  # the resumed run gets its own version folder
    assert run.name == f"version_{len(runs) - 1}" and (run / "config.yaml").is_file()
    assert_same(weights(run / "checkpoints" / "last.ckpt"), weights(straight_run / "checkpoints" / "last.ckpt"))
    for tag in ("train/nll", "val/nll"):
        want = {s: v for s, v in scalars(straight_run, tag).items() if s >= start_step}  # step s logs batch s + 1
        got = scalars(run, tag)
        assert want and got == want, tag
    return run


def test_mle_sigterm_then_resume_is_exact(straight, tmp_path, capsys, recwarn):
    run, _, cfg = straight
    rc = main(mle_args(tmp_path, *MLE, callback("SignalAt", step=6, signum="SIGTERM"), config=cfg["mle"]))
    assert rc == 143
    last = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 6
    capsys.readouterr()
    resumed = resumed_equals_straight(straight, tmp_path, last, 6)
    # the resumed run says so, and records what it resumed; Lightning's "dirpath has changed" is not shown
    assert f"gan-writer: resuming {last}; this run writes to {resumed}" in capsys.readouterr().err
    assert json.loads((resumed / "run_info.json").read_text())["ckpt_path"] == str(last)
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    # the best checkpoint is tracked across the resume: the resumed run keeps the earlier best's score
    best = load_checkpoint(resumed / "checkpoints" / "last.ckpt")["callbacks"]
    score = [v["best_model_score"] for k, v in best.items() if k.startswith("BestCheckpoint")][0]
    assert float(score) == pytest.approx(min(scalars(run, "val/nll").values()))


def test_mle_ctrl_c_then_resume_is_exact(straight, tmp_path):
    _, _, cfg = straight
    rc = main(mle_args(tmp_path, *MLE, callback("SignalAt", step=5, signum="SIGINT"), config=cfg["mle"]))
    assert rc == 130
    last = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 5
    # Lightning validates on its way out of the Ctrl-C (after last.ckpt was written): that score
    # is logged but does not replace the best file, which last.ckpt names and resumes track
    folder = last.parent
    assert sorted(p.name for p in folder.glob("best*.ckpt")) == ["best-epoch=0-step=4.ckpt"]
    state = [v for k, v in load_checkpoint(last)["callbacks"].items() if k.startswith("BestCheckpoint")][0]
    assert state["best_model_path"] == str(folder / "best-epoch=0-step=4.ckpt")
    resumed_equals_straight(straight, tmp_path, last, 5)


@pytest.mark.parametrize("signum, rc", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_resume_inside_a_logging_window_logs_the_same_means(tmp_path, cfg, signum, rc):
    """Written every 3 steps and at each epoch's end (4 batches an epoch), the value at step 5 is
    the mean of batches 5 and 6; interrupted after batch 5, the resumed run gets batch 5's sums
    from last.ckpt."""
    every = "--trainer.log_every_n_steps=3"
    fit(mle_args(tmp_path / "a", *MLE, every, config=cfg["mle"]))
    args = mle_args(tmp_path / "b", *MLE, every, callback("SignalAt", step=5, signum=signum), config=cfg["mle"])
    assert main(args) == rc
    last = tmp_path / "b" / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["gan_writer_window"]["train/nll"][1] > 0  # batch 5's tokens
    fit(mle_args(tmp_path / "b", *MLE, every, f"--ckpt_path={last}", config=cfg["mle"]))
    want = scalars(tmp_path / "a" / "poetry_zh" / "mle" / "version_0", "train/nll")
    got = scalars(tmp_path / "b" / "poetry_zh" / "mle" / "version_1", "train/nll")
    assert sorted(want) == [2, 3, 5, 7, 8, 11] and got == {s: v for s, v in want.items() if s >= 5}


def test_an_epoch_cut_short_by_max_steps_is_not_saved_as_best(tmp_path, cfg):
    """max_steps=6 stops epoch 1 (4 batches each) without a validation: its weights would be
    saved among the top 3 with epoch 0's stale val/nll; only validated weights become best."""
    import yaml

    conf = yaml.safe_load(open(cfg["mle"], encoding="utf-8"))
    for cb in conf["trainer"]["callbacks"]:
        if cb["class_path"].endswith("BestCheckpoint"):
            cb["init_args"]["save_top_k"] = 3
    path = tmp_path / "top3.yaml"
    path.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    assert main(mle_args(tmp_path, *MLE, "--trainer.max_steps=6", config=str(path))) == 0
    folder = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints"
    assert sorted(p.name for p in folder.glob("best*.ckpt")) == ["best-epoch=0-step=4.ckpt"]
    assert load_checkpoint(folder / "last.ckpt")["global_step"] == 6


def test_a_run_stopped_by_max_steps_mid_epoch_resumes_exactly(straight, tmp_path):
    """max_steps=6 ends epoch 1 (4 batches) after its second batch: Lightning marks the epoch
    done, so last.ckpt is written at that batch boundary, and the resume trains batches 7 and 8."""
    _, _, cfg = straight
    fit(mle_args(tmp_path, *MLE, "--trainer.max_steps=6", config=cfg["mle"]))
    last = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert (load_checkpoint(last)["global_step"], load_checkpoint(last)["epoch"]) == (6, 1)
    resumed_equals_straight(straight, tmp_path, last, 6)


@pytest.mark.parametrize("how", ["finished", "sigterm"])
def test_an_epoch_end_checkpoint_resumes_exactly_with_max_steps_set(straight, tmp_path, cfg, how):
    """Lightning #19617: with max_steps set, a finished epoch was 'restarted' and the next one
    skipped (or nothing trained); the state at the end of epoch 0 of a 1-epoch run, or of a
    SIGTERM after its last batch."""
    if how == "finished":
        fit(mle_args(tmp_path, "--trainer.max_epochs=1", *MLE[1:], config=cfg["mle"]))
    else:
        assert main(mle_args(tmp_path, *MLE, callback("SignalAt", step=4, signum="SIGTERM"), config=cfg["mle"])) == 143
    last = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 4
    resumed_equals_straight(straight, tmp_path, last, 4, "--trainer.max_steps=12")


def test_mle_killed_after_a_scheduled_checkpoint_resumes_exactly(straight, tmp_path):
    _, killed, _ = straight
    assert load_checkpoint(killed)["global_step"] == 3  # written by the every-3-batches schedule
    resumed_equals_straight(straight, tmp_path, killed, 3)


def test_discriminator_pretraining_resumes_exactly(straight, tmp_path):
    mle, cfg = straight[0].parent, straight[2]["disc"]
    extra = ["--trainer.max_epochs=2", "--trainer.log_every_n_steps=5"]  # the value at step 4: batches 4 and 5
    fit(disc_args(tmp_path / "a", mle, *extra, config=cfg))
    assert main(disc_args(tmp_path / "b", mle, *extra, callback("SignalAt", step=4, signum="SIGTERM"), config=cfg)) == 143
    last = tmp_path / "b" / "poetry_zh" / "disc" / "version_0" / "checkpoints" / "last.ckpt"
    fit(disc_args(tmp_path / "b", mle, *extra, f"--ckpt_path={last}", config=cfg))
    a = tmp_path / "a" / "poetry_zh" / "disc" / "version_0"
    b = tmp_path / "b" / "poetry_zh" / "disc" / "version_1"
    assert_same(weights(b / "checkpoints" / "last.ckpt"), weights(a / "checkpoints" / "last.ckpt"))
    for tag in ("disc/loss", "val/disc_acc"):
        want = {s: v for s, v in scalars(a, tag).items() if s >= 4}
        assert want and scalars(b, tag) == want, tag


@pytest.mark.parametrize("signum, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_from_outside_writes_a_resumable_checkpoint(tmp_path, shared_data, cfg, signum, rc):
    ready = tmp_path / "ready"
    args = mle_args(tmp_path, *MLE, callback("SignalAt", step=2, ready_file=str(ready), wait=30.0), config=cfg["mle"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}"}
    proc = subprocess.Popen([sys.executable, "-m", "gan_writer.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not ready.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert ready.exists(), proc.communicate(timeout=5)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == rc, err
    last = tmp_path / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 2
    assert "--ckpt_path" in err


def test_adversarial_stage_resumes_exactly(straight, tmp_path):
    mle, cfgs = straight[0].parent, straight[2]
    fit(disc_args(tmp_path / "d", mle, config=cfgs["disc"]))
    disc = tmp_path / "d" / "poetry_zh" / "disc"
    cfg = config("seqgan", tmp_path, 1)
    fit(seqgan_args(tmp_path / "a", disc, config=cfg))
    assert main(seqgan_args(tmp_path / "b", disc, callback("SignalAt", step=3, signum="SIGTERM"), config=cfg)) == 143
    last = tmp_path / "b" / "poetry_zh" / "seqgan" / "version_0" / "checkpoints" / "last.ckpt"
    fit(seqgan_args(tmp_path / "b", disc, f"--ckpt_path={last}", config=cfg))
    a = tmp_path / "a" / "poetry_zh" / "seqgan" / "version_0"
    b = tmp_path / "b" / "poetry_zh" / "seqgan" / "version_1"
    assert_same(weights(b / "checkpoints" / "last.ckpt"), weights(a / "checkpoints" / "last.ckpt"))
    assert load_checkpoint(last)["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 3
    for tag in ("adv/reward_mean", "disc/loss", "val/nll"):  # logged at the batch index
        want = {s: v for s, v in scalars(a, tag).items() if s >= 3}
        assert want and scalars(b, tag) == want, tag
