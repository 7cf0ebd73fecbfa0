"""Stages cannot be mixed up: another stage's checkpoint as --ckpt_path, a file a stage cannot
start from, a missing earlier stage and odd --ckpt_path values each give one clear line; two
runs without a logger do not collide."""
import json

import lightning
import pytest
import torch

from gan_writer.cli import main
from gan_writer.resume import StageMismatchError
from gan_writer.safe_load import load_checkpoint
from tiny_runs import REPO, disc_args, fit, mle_args


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("guard")
    fit(mle_args(root))
    mle = root / "poetry_zh" / "mle"
    fit(disc_args(root, mle))
    return root, mle / "version_0" / "checkpoints" / "last.ckpt", root / "poetry_zh" / "disc" / "version_0" / "checkpoints" / "last.ckpt"


def error_line(capsys, tool="fit") -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"gan-writer {tool}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def seqgan_args(root, *extra):
    return ["fit", "--config", str(REPO / "experiments/poetry_zh/seqgan.yaml"),
            f"--trainer.logger.init_args.save_dir={root}", *extra]


def test_ckpt_path_of_another_stage_is_one_line(runs, tmp_path, capsys):
    _, mle, disc = runs
    assert main(seqgan_args(tmp_path, f"--ckpt_path={mle}")) == 2
    line = error_line(capsys)
    assert "written by the MLEModule stage, not SeqGANModule" in line and "init_checkpoint" in line
    assert main(mle_args(tmp_path, f"--ckpt_path={disc}")) == 2
    assert "written by the DiscriminatorPretraining stage, not MLEModule" in error_line(capsys)
    assert not (tmp_path / "poetry_zh").exists()  # nothing was trained or saved


def test_ckpt_path_of_a_run_on_another_corpus_is_one_line(runs, tmp_path, capsys):
    """poetry_en's MLE config resuming a poetry_zh MLE checkpoint: its model settings (from the
    checkpoint) would fail on data.max_length; the corpus is named instead."""
    _, mle, _ = runs
    assert main(["fit", "--config", str(REPO / "experiments/poetry_en/mle.yaml"),
                 f"--trainer.logger.init_args.save_dir={tmp_path}", f"--ckpt_path={mle}"]) == 2
    line = error_line(capsys)
    assert "trained with data.corpus='shi', and this run's is 'sonnets'" in line and "init_checkpoint" in line
    assert not any(tmp_path.iterdir())  # nothing written


def test_python_api_resume_of_another_stage_is_refused(runs):
    from gan_writer.systems.mle import MLEModule

    _, mle, disc = runs
    module = MLEModule(init_checkpoint=str(mle), max_length=26)
    with pytest.raises(StageMismatchError, match="DiscriminatorPretraining stage, not MLEModule"):
        module.on_load_checkpoint(load_checkpoint(disc))


def test_odd_ckpt_path_values_are_one_line(runs, tmp_path, capsys):
    _, mle, _ = runs
    assert main(mle_args(tmp_path, f"--ckpt_path={tmp_path / 'nowhere.ckpt'}")) == 2
    assert "nowhere.ckpt not found" in error_line(capsys)
    assert main(mle_args(tmp_path, f"--ckpt_path={mle.parent}")) == 2
    assert "is a folder: pass a .ckpt file" in error_line(capsys)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert main(mle_args(tmp_path, f"--ckpt_path={junk}")) == 2
    assert "junk.ckpt is not a readable PyTorch checkpoint" in error_line(capsys)


def test_a_file_a_stage_cannot_start_from_is_one_line(runs, tmp_path, capsys):
    _, mle, _ = runs
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, plain)
    assert main(mle_args(tmp_path, f"--model.init_args.init_checkpoint={plain}", f"--data.init_args.tokenizer={mle}")) == 2
    assert "plain.ckpt has no 'gan_writer' entry" in error_line(capsys)
    # the discriminator stage continuing from a checkpoint without a discriminator
    assert main(disc_args(tmp_path, mle.parents[2], f"--model.init_args.discriminator_checkpoint={mle}")) == 2
    assert "holds no discriminator" in error_line(capsys)


def test_a_missing_earlier_stage_says_which_command_to_run(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here: stage 3 before stages 1 and 2
    assert main(["fit", "--config", str(REPO / "experiments/poetry_zh/seqgan.yaml")]) == 2
    line = error_line(capsys)
    assert "checkpoints/poetry_zh/disc not found" in line
    assert "run `gan-writer fit --config" in line and "experiments/poetry_zh/disc.yaml` first" in line


def test_two_runs_without_a_logger_do_not_collide(tmp_path, shared_data):
    args = mle_args(tmp_path, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path / 'runs'}",
                    "--trainer.max_steps=2")
    fit(args)
    fit(args)
    runs = tmp_path / "runs"
    assert (runs / "config.yaml").is_file() and (runs / "config-v1.yaml").is_file()
    assert (runs / "run_info.json").is_file() and (runs / "run_info-v1.json").is_file()
    info = json.loads((runs / "run_info-v1.json").read_text())
    assert info["command"] == ["gan-writer", *args] and info["config_file"] == "config-v1.yaml"
    assert info["packages"]["torch"] == torch.__version__ and info["packages"]["lightning"] == lightning.__version__
    assert len(info["git"]["commit"]) == 40 and isinstance(info["git"]["dirty"], bool)
    first, second = runs / "checkpoints" / "last.ckpt", runs / "checkpoints" / "last-v1.ckpt"
    assert load_checkpoint(first)["global_step"] == 2 and load_checkpoint(second)["global_step"] == 2
