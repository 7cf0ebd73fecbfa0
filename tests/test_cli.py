"""The newcomer's command line: an error the user can cause is one line naming the option
(with the closest valid key for a typo), --verbose shows the traceback, --print-options
lists a block's options with their docs, and generate keeps samples apart."""
import dataclasses
import json
from pathlib import Path

import lightning  # noqa: F401 - imported here so its log handler binds the real stderr, not a test's capsys
import pytest

from gan_writer.cli import main
from gan_writer.commands.errors import describe_parse_error
from gan_writer.commands.generate import format_samples
from gan_writer.commands.options import block_options, closest_key, valid_keys
from gan_writer.models.generator import GeneratorConfig

REPO = Path(__file__).resolve().parents[1]
MLE = str(REPO / "experiments/poetry_zh/mle.yaml")
SEQGAN = str(REPO / "experiments/poetry_zh/seqgan.yaml")


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    """Should a command run by mistake, its checkpoints/ go to a temporary folder."""
    monkeypatch.chdir(tmp_path)


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if line.strip() and "Seed set to" not in line]


def only_line(capsys) -> str:
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("typo, expected", [
    ("--model.init_args.generatr.n_embd=3", "--model.init_args.generator.n_embd"),
    ("--model.init_args.generator.n_emb=3", "--model.init_args.generator.n_embd"),
    ("--data.init_args.corpos=shi", "--data.init_args.corpus"),
    ("--trainer.max_step=3", "--trainer.max_steps"),
])
def test_a_mistyped_key_is_one_line_with_the_closest_valid_key(tmp_path, capsys, typo, expected):
    assert main(["fit", "--config", MLE, f"--trainer.default_root_dir={tmp_path}", typo]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gan-writer fit: error: unknown option {typo.split('=')[0]}")
    assert f"did you mean {expected}?" in lines[0]
    assert not list(tmp_path.iterdir())  # nothing ran


def test_a_key_of_another_stage_is_unknown_and_the_stages_own_is_suggested(capsys):
    assert main(["fit", "--config", SEQGAN, "--model.init_args.generator_checkpoint=x.ckpt"]) == 2
    line = only_line(capsys)
    assert "unknown option --model.init_args.generator_checkpoint; did you mean --model.init_args.init_checkpoint?" in line


def test_a_bad_value_and_a_missing_config_are_one_line(capsys):
    assert main(["fit", "--config", MLE, "--trainer.max_epochs=abc"]) == 2
    line = only_line(capsys)
    assert line == "gan-writer fit: error: --trainer.max_epochs: expected an int, got 'abc'"
    assert main(["fit", "--config", "no/such.yaml"]) == 2
    line = only_line(capsys)
    assert "no/such.yaml" in line and "no such file" in line


def test_a_hub_name_offline_is_one_line_naming_the_option(shared_data, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["fit", "--config", MLE, "--data.init_args.max_train_samples=64",
            "--model.init_args.generator.pretrained=no-such-org/no-such-model-17"]
    assert main(args) == 2
    line = only_line(capsys)
    assert line.startswith("gan-writer fit: error: generator.pretrained='no-such-org/no-such-model-17' is not a local folder")
    assert "HF_HUB_OFFLINE" in line and "Union subtypes" not in line
    monkeypatch.setenv("GAN_WRITER_DEBUG", "")
    with pytest.raises(ValueError, match="Union subtypes"):  # --verbose: LightningCLI's own error, with its traceback
        main([*args, "--verbose"])


def test_a_missing_checkpoint_path_and_a_bad_corpus_are_one_line(shared_data, capsys, tmp_path):
    assert main(["fit", "--config", SEQGAN, f"--data.init_args.tokenizer={tmp_path}/run/disc"]) == 2
    line = only_line(capsys)
    assert f"data.tokenizer='{tmp_path}/run/disc': checkpoint {tmp_path}/run/disc not found" in line
    assert main(["fit", "--config", MLE, "--data.init_args.corpus=nonesuch"]) == 2
    line = only_line(capsys)
    assert "'nonesuch' is neither a registered corpus" in line


def test_a_corrupt_checkpoint_is_one_line_and_verbose_raises(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["generate", "--ckpt", str(bad)]) == 2
    line = only_line(capsys)
    assert line.startswith("gan-writer generate: error:") and "bad.ckpt" in line
    monkeypatch.delenv("GAN_WRITER_DEBUG", raising=False)
    with pytest.raises((ValueError, OSError)):
        main(["generate", "--ckpt", str(bad), "--verbose"])


def test_a_mistyped_tool_option_suggests_the_right_one(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--ckpt", "x", "--temprature", "0.7"])
    assert info.value.code == 2
    line = only_line(capsys)
    assert "--temprature" in line and "did you mean --temperature?" in line
    with pytest.raises(SystemExit):
        main(["generate"])
    line = only_line(capsys)
    assert "required: --ckpt" in line and "did you mean" not in line


def test_print_options_lists_every_generator_field_with_its_doc(capsys):
    assert main(["fit", "--print-options", "generator"]) == 0
    out = capsys.readouterr().out
    for field in dataclasses.fields(GeneratorConfig):
        assert f"  {field.name} (default {field.default!r})" in out
    assert "a local HF directory or a ``.gguf`` path" in out and "sizes of a fresh LSTM" in out
    assert main(["fit", "--print-options", "discriminator"]) == 0
    assert "l2_reg_lambda (default 0.2)" in capsys.readouterr().out
    assert main(["fit", "--print-options", "model", "--config", SEQGAN]) == 0
    out = capsys.readouterr().out
    assert "rollout_num (default 16)" in out and "completions per prefix" in out
    assert main(["fit", "--config", MLE, "--model.init_args.generator.help"]) == 0  # the nested help the issue tried
    assert "gguf_file (default None)" in capsys.readouterr().out
    assert main(["fit", "--model.discriminator.help"]) == 0
    assert "kind (default 'cnn')" in capsys.readouterr().out
    assert main(["fit", "--print-options", "nonesuch"]) == 2
    assert "choose one of generator, discriminator, model, data" in capsys.readouterr().err


def test_block_options_docs_come_from_the_docstring():
    docs = dict((name, doc) for name, _, doc in block_options("generator"))
    assert docs["gguf_file"].startswith("GGUF file name inside a ``pretrained`` directory")
    assert docs["n_layer"] == docs["dropout"]  # "n_layer, n_embd, ...: text" documents all five


def test_closest_key_keeps_the_spelling_the_user_chose():
    keys = valid_keys("gan_writer.systems.mle.MLEModule")
    assert closest_key("--model.generator.n_layr", keys) == "model.generator.n_layer"
    assert closest_key("--model.init_args.lrr", keys) == "model.init_args.lr"
    assert closest_key("--zzzz.qqqq", keys) is None
    msg = ('Parser key "model":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
           "    - Problem with given class_path 'gan_writer.systems.mle.MLEModule':\n"
           "        unrecognized arguments: --warmup_step=3\n  Given value: NestedArg(key='warmup_step', val='3')")
    line = describe_parse_error(msg, ["fit", "--config", MLE, "--model.init_args.warmup_step=3"])
    assert line.startswith("unknown option --model.init_args.warmup_step; did you mean --model.init_args.warmup_steps?")


def test_generate_formats_keep_multi_line_samples_apart():
    sonnets = ["Shall I compare thee\nto a summer's day?", "When forty winters\nshall besiege thy brow"]
    text = format_samples(sonnets)
    assert text == "# 1\nShall I compare thee\nto a summer's day?\n\n# 2\nWhen forty winters\nshall besiege thy brow\n"
    rows = [json.loads(line) for line in format_samples(sonnets, "jsonl").splitlines()]
    assert rows == [{"index": 1, "text": sonnets[0]}, {"index": 2, "text": sonnets[1]}]
    with pytest.raises(ValueError, match="unknown format"):
        format_samples(sonnets, "csv")


@pytest.mark.parametrize("option, listing", [
    ("--data.init_args.corpsu=x", "`gan-writer fit --print-options data`"),
    ("--trainer.max_epoch=1", "`gan-writer fit --help` lists the Trainer's options"),
    ("--model.init_args.generator.n_embdd=64", "`gan-writer fit --print-options generator`"),
    ("--model.init_args.lrr=1", "`gan-writer fit --print-options model`"),
])
def test_unknown_option_points_to_the_listing_of_its_own_block(capsys, option, listing):
    assert main(["fit", "--config", MLE, option]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "did you mean" in lines[0], lines
    assert lines[0].endswith(f"({listing} lists the options)" if "print-options" in listing else f"({listing})")


def test_an_integer_batch_limit_stays_a_count_after_nltk_is_imported(capsys):
    """``--trainer.limit_val_batches=1`` is one batch, not 1.0 (= all of them), also in this
    suite, where tests/test_bleu.py imports nltk (scipy, sklearn) before any Trainer: see the
    Lightning import in tests/conftest.py."""
    import nltk.translate.bleu_score  # noqa: F401 - what test_bleu.py imports

    with pytest.raises(SystemExit):
        main(["fit", "--config", MLE, "--trainer.limit_val_batches=1", "--trainer.limit_train_batches=0.5",
              "--print_config"])
    printed = capsys.readouterr().out
    assert "  limit_val_batches: 1\n" in printed and "  limit_train_batches: 0.5\n" in printed


def test_tool_options_are_never_abbreviated_and_a_misspelling_beside_a_required_option_is_named(capsys, tmp_path):
    from gan_writer.cli import main

    with pytest.raises(SystemExit, match="2"):
        main(["generate", "--ckpt", "x", "--temp", "0.5"])
    assert "unrecognized arguments: --temp 0.5; did you mean --temperature?" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["write", "poem", "--ckpt", "x", "--form", "wujue", "--cand", "2"])
    assert "gan-writer write poem: error: unrecognized arguments: --cand 2; did you mean --candidates?" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["export", "--ckpt", "x", "--outt", str(tmp_path / "o")])
    assert "required: --out; did you mean --out (not --outt)?" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_file_system_error_is_one_line_naming_the_path(tmp_path):
    import errno

    from gan_writer.commands.errors import describe_error, user_cause

    err = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))
    assert user_cause(err) is err  # a user error wherever it was raised (pathlib's mkdir, say)
    assert describe_error(err) == (f"{tmp_path / 'out'}: read-only file system: choose another path, or make it "
                                   "writable (permissions, free space)")
    assert user_cause(OSError(errno.EBADF, "Bad file descriptor")) is None  # a bug keeps its traceback


def test_a_negative_value_that_is_no_plain_number_reaches_the_options_own_check(capsys, tmp_path):
    """argparse reads ``-1,1`` and ``-1e-3`` as unknown options ("expected one argument"); they are
    values, and the option's own range check names what is wrong."""
    from gan_writer.cli import main

    ckpt = str(tmp_path / "missing.ckpt")
    assert main(["compare", "--run", f"a={ckpt}", "--temperatures", "-1,1"]) == 2
    assert "--temperatures '-1,1': give at least one temperature, all > 0" in capsys.readouterr().err
    assert main(["generate", "--ckpt", ckpt, "--temperature", "-1e-3"]) == 2
    assert "--temperature must be > 0, got -0.001" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["write", "poem", "--ckpt", ckpt, "--form", "wujue", "--temperature", "-1,2"])
    assert "argument --temperature: invalid float value: '-1,2'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # an option after a value-taking one is still an option
        main(["generate", "--ckpt", "--n", "2"])
    assert "argument --ckpt: expected one argument" in capsys.readouterr().err


def test_a_fit_run_prints_no_library_noise(tmp_path, capfd, recwarn):
    """With its progress bar on, a stage run shows the losses but not Lightning's LitLogger tip,
    the bar's ``v_num`` or torch's LeafSpec FutureWarning (raised inside Lightning's pytree code)."""
    from tiny_runs import mle_args

    argv = [a for a in mle_args(tmp_path) if not a.startswith("--trainer.enable_progress_bar")]
    assert main(argv + ["--trainer.enable_progress_bar=true", "--trainer.max_steps=2"]) == 0
    out, err = capfd.readouterr()
    shown = out + err
    assert "train/nll" in shown and "run saved in" in shown
    assert "litlogger" not in shown and "v_num" not in shown and "LeafSpec" not in shown
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]


def test_the_default_progress_bar_loses_only_its_version_number():
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

    from gan_writer.callbacks.progress import QuietRichProgressBar, QuietTQDMProgressBar, quiet_default_bar

    mine = RichProgressBar(leave=True, refresh_rate=3)
    custom = type("MyBar", (TQDMProgressBar,), {})()
    callbacks = [mine, "other", TQDMProgressBar(), custom]
    quiet_default_bar(callbacks)
    assert [type(c) for c in callbacks] == [QuietRichProgressBar, str, QuietTQDMProgressBar, type(custom)]
    assert callbacks[0] is mine and mine._leave and mine.refresh_rate == 3  # the same bar, its arguments kept

    class Trainer:
        loggers = [type("Logger", (), {"version": 7})()]
        progress_bar_metrics = {"train/nll": 2.5}

    assert TQDMProgressBar().get_metrics(Trainer(), None) == {"v_num": 7, "train/nll": 2.5}
    assert callbacks[2].get_metrics(Trainer(), None) == {"train/nll": 2.5}


def test_gan_writers_own_warnings_are_one_line_and_others_untouched(capsys):
    import warnings

    import gan_writer.data.datamodule as dm
    from gan_writer.cli import _one_line_warnings

    with _one_line_warnings():
        warnings.warn_explicit("13 of 50 training samples were cut", UserWarning, dm.__file__, 246)
        warnings.warn_explicit("from elsewhere", UserWarning, "/some/lib/x.py", 3)
        warnings.warn_explicit("gan_writer: X holds no discriminator", UserWarning, dm.__file__, 250)
    err = capsys.readouterr().err
    assert "gan_writer: warning: 13 of 50 training samples were cut\n" in err
    assert "gan_writer: warning: X holds no discriminator\n" in err  # one prefix, not two
    assert "datamodule.py" not in err and "gan_writer: warning: from elsewhere" not in err  # left to Python/pytest
    assert warnings.showwarning.__module__ != "gan_writer.cli"  # restored
