"""Errors a user trial of ``gan-writer fit`` found: each is one line on stderr with exit
status 2, names the option, key or file at fault, and leaves what the user made unchanged —
an existing version folder, a bad value, a config file that is not UTF-8 / not YAML / empty,
a misspelled key inside a config file, ``predict`` and a misspelled command,
``--print-options`` without a block."""
from pathlib import Path

import lightning  # noqa: F401 - imported here so its log handler binds the real stderr, not a test's capsys
import pytest

from gan_writer.cli import STAGE_COMMANDS, TOOLS, _build_cli_class, main

REPO = Path(__file__).resolve().parents[1]
MLE = str(REPO / "experiments/poetry_zh/mle.yaml")
TINY = ["--trainer.max_steps=2", "--trainer.limit_val_batches=1", "--data.init_args.max_train_samples=64",
        "--model.init_args.generator.n_embd=16", "--model.init_args.generator.n_layer=1",
        "--model.init_args.generator.n_head=2", "--trainer.enable_progress_bar=false"]


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    """Should a command run by mistake, its checkpoints/ go to a temporary folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAN_WRITER_DEBUG", raising=False)


def only_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "Seed set to" not in line]
    assert len(lines) == 1, lines
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def mle_copy(tmp_path: Path, old: str, new: str, name: str = "mle.yaml") -> str:
    text = Path(MLE).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return str(path)


# 1. an explicit logger version whose folder exists

def test_fit_into_an_existing_version_folder_is_refused_and_the_folder_is_unchanged(shared_data, tmp_path, capsys):
    save = tmp_path / "runs"
    args = ["fit", "--config", MLE, *TINY, f"--trainer.logger.init_args.save_dir={save}",
            "--trainer.logger.init_args.name=tu/x", "--trainer.logger.init_args.version=0"]
    assert main(args) == 0
    old = save / "tu" / "x" / "version_0"
    before = snapshot(save)
    assert (old / "config.yaml").is_file() and any(k.startswith("tu/x/version_0/events.out.tfevents") for k in before)
    capsys.readouterr()

    assert main(args) == 2
    line = only_line(capsys)
    assert line.startswith("gan-writer fit: error: --trainer.logger.init_args.version=0: ")
    assert f"{old} already exists" in line and "earlier run" in line
    assert "choose another version, or leave version unset for a new version_N" in line
    assert "RunConfigCallback" not in line
    assert snapshot(save) == before  # no new events file, config or checkpoint in the old folder
    assert sorted(p.name for p in (save / "tu" / "x").iterdir()) == ["version_0"]


def test_a_string_version_folder_that_exists_is_refused_too(tmp_path, capsys):
    run = tmp_path / "runs" / "tu" / "x" / "mine"
    run.mkdir(parents=True)
    (run / "notes.txt").write_text("my notes\n")
    assert main(["fit", "--config", MLE, *TINY, f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
                 "--trainer.logger.init_args.name=tu/x", "--trainer.logger.init_args.version=mine"]) == 2
    assert f"{run} already exists" in only_line(capsys)
    assert snapshot(tmp_path / "runs") == {"tu/x/mine/notes.txt": b"my notes\n"}


# 2. a bad value of a model / data / generator option (not "unknown option")

@pytest.mark.parametrize("arg, expected", [
    ("--model.init_args.lr=abc", "--model.init_args.lr: expected a float, got 'abc'"),
    ("--model.lr=abc", "--model.lr: expected a float, got 'abc'"),
    ("--data.init_args.batch_size=abc", "--data.init_args.batch_size: expected an int, got 'abc'"),
    ("--model.init_args.generator.n_embd=abc", "--model.init_args.generator.n_embd: expected an int, got 'abc'"),
    ("--trainer.max_epochs=abc", "--trainer.max_epochs: expected an int, got 'abc'"),
    ("--trainer.limit_val_batches=abc", "--trainer.limit_val_batches: expected an int or a float, got 'abc'"),
])
def test_a_bad_value_names_the_option_the_value_and_the_type(tmp_path, capsys, arg, expected):
    assert main(["fit", "--config", MLE, arg]) == 2
    line = only_line(capsys)
    assert line == f"gan-writer fit: error: {expected}"
    assert not list(tmp_path.iterdir())


# 3. a config file that is not UTF-8, not YAML, or empty

def test_a_missing_config_file_says_where_the_configs_are(tmp_path, capsys):
    assert main(["fit", "--config", "experiments/poetry_zh/nope.yaml"]) == 2
    assert only_line(capsys) == (f"gan-writer fit: error: --config experiments/poetry_zh/nope.yaml: no such file "
                                 f"(from {tmp_path}); the stages' configs are under experiments/, e.g. "
                                 "experiments/poetry_zh/mle.yaml")


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte(tmp_path, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"# caf\xff\n" + Path(MLE).read_bytes())
    assert main(["fit", "--config", str(latin)]) == 2
    line = only_line(capsys)
    assert line == (f"gan-writer fit: error: --config {latin}: byte 0xff at position 5 (line 1, column 6) "
                    "is not UTF-8; save the file as UTF-8")


def test_broken_yaml_names_the_file_and_line_and_an_empty_config_says_so(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("trainer:\n  max_epochs: [1\n")
    assert main(["fit", "--config", str(broken)]) == 2
    line = only_line(capsys)
    assert line.startswith(f"gan-writer fit: error: --config {broken}: not valid YAML at line 3, column 1: ")
    assert "line 2, column 15" in line and "<unicode string>" not in line
    for text in ("", "# only a comment\n"):
        empty = tmp_path / "empty.yaml"
        empty.write_text(text)
        assert main(["fit", f"--config={empty}"]) == 2
        assert only_line(capsys).startswith(f"gan-writer fit: error: --config {empty}: the file is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "empty.yaml"]
    assert main(["fit", "--config", str(tmp_path)]) == 2
    assert only_line(capsys) == (f"gan-writer fit: error: --config {tmp_path} is a folder; give one of its config "
                                 f"files: {tmp_path / 'broken.yaml'}, {tmp_path / 'empty.yaml'}")
    folder = REPO / "experiments" / "poetry_zh"
    assert main(["fit", "--config", str(folder)]) == 2
    assert f"{folder / 'disc.yaml'}, " in only_line(capsys)


# 4. predict is not a command; a misspelled command lists the tools and suggests the closest

def test_predict_is_not_offered_and_is_refused_pointing_at_generate(capsys):
    assert set(_build_cli_class().subcommands()) == set(STAGE_COMMANDS) == {"fit", "validate", "test"}
    assert main(["predict", "--config", MLE]) == 2
    line = only_line(capsys)
    assert "no predict command" in line and "gan-writer generate --ckpt" in line


def test_a_misspelled_command_suggests_the_closest_and_lists_the_tools(capsys):
    assert main(["generat"]) == 2
    line = only_line(capsys)
    assert line.startswith("gan-writer: error: unknown command 'generat'; did you mean generate?")
    for name in (*STAGE_COMMANDS, *TOOLS):
        assert name in line
    assert "predict" not in line
    assert main(["zzzz"]) == 2
    assert "did you mean" not in only_line(capsys)



def test_options_before_the_command_get_the_command_as_it_should_be_typed(tmp_path, capsys):
    """``gan-writer --config X fit``: LightningCLI would read X as a top-level config (``fit:``
    sections) and report its first key as unknown; the command comes first."""
    assert main(["--config", MLE, "fit", "--trainer.max_epochs=1"]) == 2
    assert only_line(capsys) == ("gan-writer: error: the command comes first, then its options: "
                                 f"gan-writer fit --config {MLE} --trainer.max_epochs=1")
    assert main(["--ckpt", "x y.ckpt", "generate"]) == 2
    assert only_line(capsys) == ("gan-writer: error: the command comes first, then its options: "
                                 "gan-writer generate --ckpt 'x y.ckpt'")
    assert main(["--config", MLE]) == 2
    assert only_line(capsys).startswith("gan-writer: error: --config comes before any command; name one first (fit, ")
    assert list(tmp_path.iterdir()) == []


# 5. --print-options without a BLOCK

@pytest.mark.parametrize("args", [["--print-options"], ["--print-options", "--config", MLE]])
def test_print_options_without_a_block_lists_the_blocks(capsys, args):
    assert main(["fit", *args]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == ("gan-writer fit: error: --print-options needs a BLOCK, one of generator, discriminator, "
                               "model, data (e.g. gan-writer fit --print-options generator)")


# 6. a misspelled key inside a config file

@pytest.mark.parametrize("old, new, expected", [
    ("warmup_steps:", "warmup_step:",
     "unknown key model.init_args.warmup_step in {f}; did you mean model.init_args.warmup_steps? "
     "(`gan-writer fit --print-options model` lists the options)"),
    ("max_epochs:", "max_epoch:",
     "unknown key trainer.max_epoch in {f}; did you mean trainer.max_epochs? "
     "(`gan-writer fit --help` lists the Trainer's options)"),
    ("n_embd:", "n_emb:",
     "unknown key model.init_args.generator.n_emb in {f}; did you mean model.init_args.generator.n_embd? "
     "(`gan-writer fit --print-options generator` lists the options)"),
    ("corpus:", "corpos:",
     "unknown key data.init_args.corpos in {f}; did you mean data.init_args.corpus? "
     "(`gan-writer fit --print-options data` lists the options)"),
    ("lr: 0.002", "lr: abc", "model.init_args.lr in {f}: expected a float, got 'abc'"),
    ("save_dir:", "save_dirr:",
     "unknown key save_dirr of lightning.pytorch.loggers.TensorBoardLogger (trainer.logger) in {f}; did you mean save_dir?"),
    ("num_samples: 500", "num_sample: 500",
     "unknown key num_sample of gan_writer.callbacks.metrics.TextMetricsCallback (trainer.callbacks) in {f}; "
     "did you mean num_samples?"),
    ("num_samples: 500", "num_samples: abc",
     "num_samples of gan_writer.callbacks.metrics.TextMetricsCallback (trainer.callbacks) in {f}: "
     "expected an int, got 'abc'"),
    ("\ntrainer:", "\ntrainr:",
     "unknown section trainr in {f}; did you mean trainer? a config has the sections trainer, model, data, "
     "seed_everything, ckpt_path, optimizer, lr_scheduler"),
])
def test_a_misspelled_or_bad_key_in_a_config_file_names_the_file_and_the_key(tmp_path, capsys, old, new, expected):
    f = mle_copy(tmp_path, old, new)
    before = Path(f).read_bytes()
    assert main(["fit", "--config", f]) == 2
    line = only_line(capsys)
    assert line == "gan-writer fit: error: " + expected.format(f=f)
    assert "{'" not in line  # no dump of the whole init_args dict
    assert Path(f).read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["mle.yaml"]


def test_a_bad_value_in_the_file_is_not_blamed_on_a_command_line_option_that_set_another(tmp_path, capsys):
    f = mle_copy(tmp_path, "lr: 0.002", "lr: abc")
    assert main(["fit", "--config", f, "--model.init_args.lr=0.1"]) == 2
    assert only_line(capsys) == f"gan-writer fit: error: model.init_args.lr in {f}: expected a float, got 'abc'"
    assert main(["fit", "--config", MLE, "--model.init_args.lr", "abc"]) == 2  # the two-token form
    assert only_line(capsys) == "gan-writer fit: error: --model.init_args.lr: expected a float, got 'abc'"


def test_print_options_reads_the_config_files_as_fit_does(tmp_path, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"# caf\xff\n" + Path(MLE).read_bytes())
    assert main(["fit", "--print-options", "model", "--config", str(latin)]) == 2
    assert only_line(capsys).startswith(f"gan-writer fit: error: --config {latin}: byte 0xff")


@pytest.mark.parametrize("name", ["null", ""])
def test_a_logger_without_a_name_is_checked_where_it_logs(tmp_path, capsys, name):
    run = tmp_path / "runs" / "version_3"  # TensorBoardLogger(name=None or ""): save_dir/version_3
    run.mkdir(parents=True)
    assert main(["fit", "--config", MLE, *TINY, f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
                 f"--trainer.logger.init_args.name={name}", "--trainer.logger.init_args.version=3"]) == 2
    assert f"{run} already exists" in only_line(capsys)
    assert not any(run.iterdir())


def test_validate_into_an_existing_version_folder_is_one_line_too(shared_data, tmp_path, capsys):
    """Lightning would refuse it as well (its config.yaml exists), with a traceback."""
    save = tmp_path / "runs"
    args = [*TINY, f"--trainer.logger.init_args.save_dir={save}", "--trainer.logger.init_args.name=tu/v",
            "--trainer.logger.init_args.version=0"]
    assert main(["fit", "--config", MLE, *args]) == 0
    ckpt = save / "tu" / "v" / "version_0" / "checkpoints" / "last.ckpt"
    before = snapshot(save)
    capsys.readouterr()
    assert main(["validate", "--config", MLE, *args, f"--ckpt_path={ckpt}"]) == 2
    line = only_line(capsys)
    assert line.startswith("gan-writer validate: error: --trainer.logger.init_args.version=0: ") and "already exists" in line
    assert snapshot(save) == before


def test_overrides_typed_before_config_apply_after_it(tmp_path, capsys):
    """`fit --model.init_args.lr=0.05 --config X` said "unknown option --model.init_args.lr; did you mean
    --model.init_args.lr?", and a --trainer override before --config was overwritten by the file."""
    import yaml

    from gan_writer.commands.stage_config import configs_first

    assert configs_first(["fit", "--a=1", "--config", "x.yaml", "--b", "2", "--config=y.yaml"]) == \
        ["fit", "--config", "x.yaml", "--config=y.yaml", "--a=1", "--b", "2"]
    argv = ["fit", "--model.init_args.lr=0.05", *TINY, f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--config", MLE]
    assert main(argv) == 0
    saved = yaml.safe_load((tmp_path / "poetry_zh" / "mle" / "version_0" / "config.yaml").read_text())
    assert saved["model"]["init_args"]["lr"] == 0.05 and saved["trainer"]["max_steps"] == 2


def test_a_run_of_zero_steps_says_no_checkpoint_was_written(tmp_path, capsys):
    argv = ["fit", "--config", MLE, *TINY, f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.max_steps=0"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "gan-writer: no training step was taken (trainer.max_steps or max_epochs is 0, or no batches): no " \
           f"checkpoint was written; the run's config is in {tmp_path / 'poetry_zh' / 'mle' / 'version_0'}" in err
    assert "run saved in" not in err and not list(tmp_path.rglob("*.ckpt"))


def test_generate_and_evaluate_on_an_oracle_run_say_what_is_wrong(tmp_path, capsys):
    """An oracle run's tokenizer has no unknown token (tokenizers raises a bare Exception on a
    word outside it): one line naming the vocabulary, exit 2, not a traceback."""
    import torch

    from gan_writer.checkpoint import KEY, payload
    from gan_writer.data.oracle import id_tokenizer
    from gan_writer.models.lstm import LSTMGenerator

    tok = id_tokenizer(20)
    gen = LSTMGenerator(20, 8, 8, bos_token_id=0, eos_token_id=None, pad_token_id=0)  # as the oracle stages
    path = tmp_path / "oracle_mle.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                KEY: payload(gen, tok, stage="MLEModule", max_length=8, corpus="oracle")}, path)
    assert main(["evaluate", "--ckpt", str(path), "--n", "4"]) == 2  # not "'oracle' is neither a registered corpus"
    assert "synthetic-data (oracle) run: evaluate reads a text corpus; score oracle runs with gan-writer oracle-report" \
        in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(path), "--prompt", "99", "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert "the prompt '99' has tokens outside the checkpoint's vocabulary (its words are the ids 0 .. 19" in err
    assert "Traceback" not in err
    assert main(["generate", "--ckpt", str(path), "--prompt", "3 4", "--n", "1", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# 1" and out[1].startswith("3 4 ") and len(out[1].split()) == 4  # the prompt + 2 new ids


@pytest.mark.parametrize("tool", [["write", "poem", "--form", "wujue"], ["generate"], ["evaluate"], ["compare", "--run", "a=x"],
                                  ["cowrite"], ["image-poem", "--image", "x.png"]])
def test_a_seed_torch_cannot_take_is_one_line_naming_seed(tool, capsys):
    """A user trial: --seed 99999999999999999999 printed "Overflow when unpacking long long"."""
    with pytest.raises(SystemExit) as exit_:
        main([*tool, "--ckpt", "/nonexistent", "--seed", str(2**64)])
    assert exit_.value.code == 2
    line = only_line(capsys)
    assert "--seed: 18446744073709551616 is outside the seeds torch takes" in line
