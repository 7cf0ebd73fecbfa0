"""Checkpoints are intact or refused: a tensor checksum verified on every load, non-finite
weights refused, and a NaN / inf training loss stops training before anything is saved."""
import math

import pytest
import torch

from gan_writer.checkpoint import load_artifacts
from gan_writer.cli import main
from gan_writer.resume import NonFiniteError, on_save
from gan_writer.safe_load import CorruptCheckpointError, load_checkpoint, seal, tensor_checksum
from tiny_runs import fit, mle_args


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("integrity")
    fit(mle_args(root))
    return root, root / "poetry_zh" / "mle" / "version_0" / "checkpoints" / "last.ckpt"


def test_checkpoint_carries_the_checksum_of_its_tensors(run):
    _, good = run
    ckpt = load_checkpoint(good)
    stored = ckpt["gan_writer"]["checksum"]["sha256"]
    assert len(stored) == 64 and stored == tensor_checksum(ckpt)
    # the checksum covers the weights and the optimizer state
    ckpt["optimizer_states"][0]["state"][0]["exp_avg"].view(-1)[0] += 1e-3
    assert tensor_checksum(ckpt) != stored


def corrupt_bytes(src, dst):
    """Overwrite 64 bytes in the middle of the token-embedding tensor's data in the file."""
    raw = bytearray(src.read_bytes())
    wte = torch.load(src, weights_only=True)["state_dict"]["generator.model.transformer.wte.weight"]
    data = wte.contiguous().numpy().tobytes()
    at = raw.find(data)
    assert at > 0
    raw[at + len(data) // 2: at + len(data) // 2 + 64] = bytes(range(64))
    dst.write_bytes(bytes(raw))


def test_random_bytes_over_a_weight_are_refused_by_every_command(run, tmp_path, capsys):
    root, good = run
    bad = tmp_path / "corrupt.ckpt"
    corrupt_bytes(good, bad)
    with pytest.raises(CorruptCheckpointError, match="corrupt.ckpt is corrupted"):
        load_artifacts(bad)
    for argv in (["generate", "--ckpt", str(bad), "--n", "1"], ["evaluate", "--ckpt", str(bad), "--n", "2"],
                 mle_args(tmp_path, f"--ckpt_path={bad}")):
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(err) == 1 and "corrupt.ckpt is corrupted" in err[0], err


def test_non_finite_weights_or_optimizer_state_are_refused(run, tmp_path, capsys):
    _, good = run
    ckpt = load_checkpoint(good)
    ckpt["state_dict"]["generator.model.lm_head.weight"][0, 0] = float("nan")
    seal(ckpt)  # even with a matching checksum
    path = tmp_path / "nan.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CorruptCheckpointError, match=r"non-finite values \(NaN or inf\) in state_dict/generator"):
        load_artifacts(path)
    ckpt = load_checkpoint(good)
    ckpt["optimizer_states"][0]["state"][0]["exp_avg_sq"].fill_(float("inf"))
    del ckpt["gan_writer"]["checksum"]  # an old file without a checksum is still checked for finiteness
    torch.save(ckpt, path)
    assert main(mle_args(tmp_path, f"--ckpt_path={path}")) == 2
    err = capsys.readouterr().err
    assert "non-finite values (NaN or inf) in optimizer_states/0/state/0/exp_avg_sq" in err and "Traceback" not in err


def test_a_stage_never_saves_non_finite_weights():
    state = {"w": torch.tensor([1.0, math.inf])}
    with pytest.raises(NonFiniteError, match="weight w holds NaN or inf"):
        on_save({"state_dict": state, "global_step": 3})


def test_a_diverging_run_stops_with_one_line_and_saves_no_nan(tmp_path, capsys, shared_data):
    # Adam with lr 1e30 moves every weight by ~1e30: the next forward pass overflows
    rc = main(mle_args(tmp_path, "--model.init_args.lr=1e30", "--trainer.gradient_clip_val=null"))
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    line = [x for x in err.splitlines() if "error:" in x]
    assert len(line) == 1 and "the training loss is nan" in line[0].lower(), err
    for ckpt in (tmp_path / "poetry_zh" / "mle").rglob("*.ckpt"):
        load_checkpoint(ckpt)  # whatever was written is finite and intact
    assert not list((tmp_path / "poetry_zh" / "mle").rglob("best*.ckpt"))
