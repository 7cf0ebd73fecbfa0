"""Per-step training values are logged as means over the steps since the last logged point
(``gan_writer/systems/window.py``): the value a run writes at a step is the token-weighted
NLL of exactly those batches, and the discriminator's values the batch-weighted means."""
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.systems import discriminator as D
from gan_writer.systems.mle import MLEModule
from gan_writer.systems.window import WINDOW_KEY, WindowMeans
from tiny_runs import disc_args, fit, mle_args


def scalars(version, tag):
    ea = EventAccumulator(str(version))
    ea.Reload()
    return {e.step: e.value for e in ea.Scalars(tag)}


def test_window_means_are_weighted_and_pop_empties():
    w = WindowMeans()
    w.add("nll", torch.tensor(6.0), torch.tensor(4))
    w.add("nll", torch.tensor(1.5), 1)
    w.add_mean("acc", torch.tensor(0.25), 8)
    w.add_mean("acc", torch.tensor(1.0), 2)
    means = w.pop()
    assert means["nll"].item() == pytest.approx((6.0 + 1.5) / 5) and means["acc"].item() == pytest.approx(0.4)
    assert means["nll"].dtype == torch.float32 and w.pop() == {}
    w.add("zero", torch.tensor(3.0), 0)  # no weight: no mean (never a division by zero)
    assert w.pop() == {}


def test_window_state_round_trips_exactly_and_bad_state_is_named():
    w = WindowMeans()
    w.add("nll", torch.tensor(0.1, dtype=torch.float32), 3)
    w.add("nll", torch.tensor(0.7, dtype=torch.float32), 5)
    restored = WindowMeans()
    restored.load_state_dict(w.state_dict())
    restored.add("nll", torch.tensor(0.3), 2)
    w.add("nll", torch.tensor(0.3), 2)
    assert torch.equal(restored.pop()["nll"], w.pop()["nll"])
    with pytest.raises(ValueError, match=f"{WINDOW_KEY}.*'nll' is not a \\(2,\\) tensor"):
        restored.load_state_dict({"nll": torch.zeros(3)})


def expected_windows(values, every, per_epoch, last=None):
    """A point after global batch g when (g + 1) % every == 0 (Lightning's schedule), after each
    epoch's last batch and after batch ``last`` (max_steps), each the mean of the batches since
    the previous point: every batch in exactly one. values: [(weighted sum, weight)] per batch."""
    want, acc = {}, [0.0, 0.0]
    for g, (s, n) in enumerate(values):
        acc = [acc[0] + s, acc[1] + n]
        if (g + 1) % every == 0 or (g + 1) % per_epoch == 0 or g == last:
            want[g] = acc[0] / acc[1]
            acc = [0.0, 0.0]
    return want


def record_nll(monkeypatch) -> list:
    """``[(summed NLL, tokens)]`` of every MLE training batch, filled as the run goes."""
    seen = []
    nll = MLEModule.nll

    def recording(self, batch):
        total, n = nll(self, batch)
        seen.append((float(total.detach()), float(n)))
        return total, n

    monkeypatch.setattr(MLEModule, "nll", recording)
    return seen


def test_mle_logs_the_token_weighted_nll_of_the_window(tmp_path, shared_data, monkeypatch):
    seen = record_nll(monkeypatch)
    # 60 samples in batches of 16, 16, 16, 12 (unequal token counts), 3 epochs; written every 3 steps
    fit(mle_args(tmp_path, "--trainer.max_epochs=3", "--trainer.log_every_n_steps=3", "--trainer.limit_val_batches=0",
                 "--data.init_args.max_train_samples=60"))
    assert len(seen) == 12 and len({n for _, n in seen}) == 2
    got = scalars(tmp_path / "poetry_zh" / "mle" / "version_0", "train/nll")
    want = expected_windows(seen, every=3, per_epoch=4)
    assert got.keys() == want.keys() == {2, 3, 5, 7, 8, 11}  # each epoch's last batch too (3, 7, 11)
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=1e-6), step
    # one batch's NLL (the value logged before) differs from the window's mean
    assert got[5] != pytest.approx(seen[5][0] / seen[5][1], rel=1e-4)
    ea = EventAccumulator(str(tmp_path / "poetry_zh" / "mle" / "version_0"))
    ea.Reload()
    assert {e.step: e.value for e in ea.Scalars("epoch")}[3] == 0  # the epoch-end point carries its epoch


def test_a_run_ended_by_max_steps_logs_its_last_window(tmp_path, shared_data, monkeypatch):
    seen = record_nll(monkeypatch)
    fit(mle_args(tmp_path, "--trainer.max_epochs=3", "--trainer.max_steps=5", "--trainer.log_every_n_steps=3",
                 "--trainer.limit_val_batches=0"))
    got = scalars(tmp_path / "poetry_zh" / "mle" / "version_0", "train/nll")
    want = expected_windows(seen, every=3, per_epoch=4, last=4)
    assert got.keys() == want.keys() == {2, 3, 4}
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=1e-6), step


def test_discriminator_pretraining_logs_batch_weighted_means(tmp_path, shared_data, monkeypatch):
    mle = tmp_path / "mle"
    fit(mle_args(mle))
    ckpt = mle / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"
    seen = []
    loss_fn = D.discriminator_loss

    def recording(disc, real, fake):
        out = loss_fn(disc, real, fake)
        seen.append((float(out[2]), real["ids"].size(0)))  # acc_real, batch size
        return out

    monkeypatch.setattr(D, "discriminator_loss", recording)
    fit(disc_args(tmp_path / "disc", ckpt, "--trainer.limit_train_batches=4", "--trainer.log_every_n_steps=2",
                  "--trainer.limit_val_batches=0"))
    got = scalars(tmp_path / "disc" / "poetry_zh" / "disc" / "version_0", "disc/acc_real")
    want = expected_windows([(a * n, n) for a, n in seen], every=2, per_epoch=4)
    assert len(seen) == 4 and got.keys() == want.keys() == {1, 3}  # 3: Lightning's schedule and the epoch's end
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=1e-6), step


def test_a_ctrl_c_logs_the_window_of_the_batch_it_stops_at(tmp_path, shared_data, monkeypatch):
    """Ctrl-C after batch 4 (global index 4): the run stops there and Lightning writes that step;
    its point is the mean of batch 4 alone (after the point at 3, epoch 0's last), not a
    repeat of the last logged value."""
    from tiny_runs import callback
    from gan_writer.cli import main

    seen = record_nll(monkeypatch)
    assert main(mle_args(tmp_path, "--trainer.max_epochs=3", "--trainer.log_every_n_steps=3",
                         "--trainer.limit_val_batches=0", callback("SignalAt", step=5, signum="SIGINT"))) == 130
    got = scalars(tmp_path / "poetry_zh" / "mle" / "version_0", "train/nll")
    want = expected_windows(seen, every=3, per_epoch=4, last=len(seen) - 1)
    assert len(seen) == 5 and got.keys() == want.keys() == {2, 3, 4}
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=1e-6), step
