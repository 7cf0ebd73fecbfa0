"""The MLE stage end to end through the real CLI: fit on a slice of `shi`, a self-contained
checkpoint, `gan-writer generate`, no run ever overwritten, the metrics callback."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_writer.checkpoint import load_artifacts, resolve_checkpoint
from gan_writer.cli import main
from gan_writer.commands.generate import generate_texts

REPO = Path(__file__).resolve().parents[1]


def fit_args(save_dir, *extra):
    return [
        "fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"),
        f"--trainer.logger.init_args.save_dir={save_dir}",
        "--trainer.max_epochs=1", "--trainer.val_check_interval=null",
        "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false",
        "--trainer.log_every_n_steps=5",
        "--model.init_args.generator.n_embd=32", "--model.init_args.generator.n_head=2",
        "--model.init_args.num_text_samples=2", "--model.init_args.warmup_steps=0", "--model.init_args.lr=0.01",
        "--data.init_args.batch_size=32",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    save_dir = tmp_path_factory.mktemp("runs")
    assert main(fit_args(save_dir, "--data.init_args.max_train_samples=960")) == 0
    return save_dir / "poetry_zh" / "mle"


def test_fit_writes_a_versioned_run_with_config_and_events(trained):
    run = trained / "version_0"
    assert (run / "config.yaml").is_file()
    assert list(run.glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_training_lowers_nll_below_the_unigram_baseline(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gan_writer.data.datamodule import TextDataModule
    from gan_writer.metrics.suite import unigram_nll

    ea = EventAccumulator(str(trained / "version_0"))
    ea.Reload()
    train = [e.value for e in ea.Scalars("train/nll")]
    val = ea.Scalars("val/nll")[-1].value
    assert train[-1] < train[0] - 0.5
    assert ea.Scalars("val/ppl")[-1].value == pytest.approx(math.exp(val), rel=1e-4)
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, max_train_samples=960)
    uni = unigram_nll(dm.datasets["train"].ids, dm.datasets["valid"].ids, len(dm.tokenizer))
    assert 4.0 < uni < 9.0
    assert val < uni  # 30 steps already beat the unigram model on the validation split


def test_metrics_callback_logs_every_key(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(trained / "version_0"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    expected = {f"metrics/bleu_{n}" for n in range(2, 6)} | {f"metrics/self_bleu_{n}" for n in range(2, 6)}
    expected |= {f"metrics/distinct_{n}" for n in range(1, 5)} | {"val/nll_test", "metrics/unique_samples"}
    assert expected <= tags
    bleu2 = ea.Scalars("metrics/bleu_2")[-1].value
    assert 0.0 < bleu2 < 1.0
    assert 4.0 < ea.Scalars("val/nll_test")[-1].value < 9.0
    assert any("metrics/samples" in t for t in ea.Tags()["tensors"])


def test_evaluate_prints_the_table_and_writes_json(trained, capsys, tmp_path):
    import json

    out = tmp_path / "m.json"
    assert main(["evaluate", "--ckpt", str(trained), "--n", "50", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bleu_4" in printed and "self_bleu_4" in printed and "nll_test" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["setup"]["num_samples"] == 50 and result["setup"]["num_references"] == 820
    assert result["setup"]["metric_tokenization"] == "char"
    assert 0 <= result["metrics"]["bleu_2"] <= 1 and result["metrics"]["nll_test"] > 0


def test_evaluate_scores_the_form_the_run_checked(trained, capsys, tmp_path):
    import json

    from gan_writer.metrics.forms import form_metrics

    assert load_artifacts(trained).meta["form"] == "wujue"  # experiments/poetry_zh/mle.yaml's metrics callback
    out = tmp_path / "m.json"
    assert main(["evaluate", "--ckpt", str(trained), "--n", "10", "--nll-texts", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["setup"]["form"] == "wujue" and len(result["samples"]) == 10  # every sample is kept
    expected = form_metrics(result["samples"], "wujue")
    assert set(expected) == {"form_line_ok", "form_tone_ok", "form_rhyme_ok", "form_syllable_err"}
    assert {k: result["metrics"][k] for k in expected} == pytest.approx(expected)
    assert "form_line_ok" in capsys.readouterr().out
    none = tmp_path / "none.json"
    assert main(["evaluate", "--ckpt", str(trained), "--n", "10", "--nll-texts", "4", "--form", "none",
                 "--json", str(none)]) == 0
    skipped = json.loads(none.read_text(encoding="utf-8"))
    assert skipped["setup"]["form"] is None and not any(k.startswith("form_") for k in skipped["metrics"])
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(trained), "--form", "haiku9", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown form 'haiku9'" in err and not (tmp_path / "x.json").exists()


def test_evaluate_nll_texts_averages_the_first_n_texts_token_weighted(trained, tmp_path, shared_data):
    """``--nll-texts 30 --nll-batch-size 7``: NLL-test is the token-weighted mean over the first
    30 test texts (NLL-gen over the first 30 training texts), equal to scoring each text alone
    through ``log_probs`` (the sum of -log p over its tokens and EOS, divided by the count)."""
    import json

    from gan_writer.data.corpora import load_corpus

    out = tmp_path / "m.json"
    assert main(["evaluate", "--ckpt", str(trained), "--n", "4", "--nll-texts", "30", "--nll-batch-size", "7",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["setup"]["nll_texts"] == 30
    art = load_artifacts(trained)
    splits = load_corpus("shi", data_dir=str(shared_data))

    def one_by_one(texts):
        total = count = 0.0
        art.generator.eval()
        with torch.no_grad():
            for text in texts:
                ids = art.tokenizer(text, add_special_tokens=False)["input_ids"] + [art.tokenizer.eos_token_id]
                ids = torch.tensor([ids[: int(art.meta["max_length"])]])
                lp = art.generator.log_probs(ids, torch.ones_like(ids))
                total -= float(lp.sum())
                count += lp.numel()
        return total / count

    assert result["metrics"]["nll_test"] == pytest.approx(one_by_one(splits.test[:30]), abs=1e-5)
    assert result["metrics"]["nll_gen"] == pytest.approx(one_by_one(splits.train[:30]), abs=1e-5)
    assert main(["evaluate", "--ckpt", str(trained), "--n", "4", "--nll-texts", "0", "--json", str(tmp_path / "m0.json")]) == 2


def test_checkpoint_is_self_contained_and_generate_prints_chinese(trained):
    ckpt = resolve_checkpoint(trained)
    art = load_artifacts(ckpt)
    assert art.meta["corpus"] == "shi" and art.meta["max_length"] == 26
    assert art.meta["metric_tokenization"] == "char"
    texts = generate_texts(str(trained), n=3, seed=1)
    assert len(texts) == 3 and all(len(t) > 0 for t in texts)
    assert all("\u4e00" <= ch <= "\u9fff" or ch in "，。" for t in texts for ch in t)
    assert texts == generate_texts(str(trained), n=3, seed=1)  # seeded
    prompted = generate_texts(str(ckpt), n=2, prompt="春江", seed=0)
    assert all(t.startswith("春江") for t in prompted)


def test_generate_command_line(trained):
    out = subprocess.run(
        [sys.executable, "-m", "gan_writer.cli", "generate", "--ckpt", str(trained), "--n", "2", "--prompt", "明月"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # each sample under "# i", samples apart by a blank line (multi-line samples stay apart)
    blocks = out.stdout.rstrip("\n").split("\n\n")
    assert len(blocks) == 2
    assert [b.splitlines()[0] for b in blocks] == ["# 1", "# 2"]
    assert all(len(b.splitlines()) == 2 and b.splitlines()[1].startswith("明月") for b in blocks)
    jsonl = subprocess.run(
        [sys.executable, "-m", "gan_writer.cli", "generate", "--ckpt", str(trained), "--n", "2", "--prompt", "明月",
         "--format", "jsonl"], capture_output=True, text=True, timeout=120,
    )
    import json

    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["index"] for r in rows] == [1, 2]
    assert [r["text"] for r in rows] == [b.splitlines()[1] for b in blocks]  # same seed, same samples


def test_generate_reports_a_missing_checkpoint(tmp_path, capsys):
    assert main(["generate", "--ckpt", str(tmp_path / "nope.ckpt")]) == 2
    assert "nope.ckpt not found" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be at least 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    (["--max-new-tokens", "40"], "does not fit the model's 32 positions"),
    (["--prompt", "春" * 32], "fills all 32 positions"),
    (["--prompt", "春" * 40, "--max-new-tokens", "5"], "shorten the prompt to at most 31 tokens"),  # not "at most -9"
])
def test_generate_rejects_bad_sizes_with_a_message(trained, capsys, args, message):
    assert main(["generate", "--ckpt", str(trained), *args]) == 2
    assert message in capsys.readouterr().err


def test_generate_default_length_fits_behind_a_long_prompt(trained):
    texts = generate_texts(str(trained), n=2, prompt="春" * 20, seed=0)  # 20 + 26 > 32 positions: clamped
    assert all(t.startswith("春" * 20) and len(t) <= 32 for t in texts)


def test_a_second_run_gets_a_new_version(trained, tmp_path):
    # same save_dir: version_1 appears and version_0 is untouched
    before = {p: p.stat().st_mtime for p in (trained / "version_0").rglob("*") if p.is_file()}
    assert main(fit_args(trained.parent.parent, "--data.init_args.max_train_samples=64", "--trainer.limit_val_batches=1")) == 0
    assert (trained / "version_1" / "config.yaml").is_file()
    assert {p: p.stat().st_mtime for p in (trained / "version_0").rglob("*") if p.is_file()} == before


def test_same_seed_same_numbers(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    for d in (a, b):
        assert main(fit_args(d, "--data.init_args.max_train_samples=96", "--trainer.limit_val_batches=1")) == 0
    wa = load_artifacts(resolve_checkpoint(a / "poetry_zh" / "mle")).generator.state_dict()
    wb = load_artifacts(resolve_checkpoint(b / "poetry_zh" / "mle")).generator.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_with_another_vocabulary_is_refused_with_advice_that_works(trained, tmp_path, capsys):
    last = trained / "version_0" / "checkpoints" / "last.ckpt"
    more = ["--trainer.max_epochs=2", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
            f"--ckpt_path={last}"]
    # a smaller training slice builds a smaller character vocabulary than the checkpoint's
    assert main(fit_args(tmp_path, "--data.init_args.max_train_samples=64", *more)) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if not x.startswith("gan_writer: corpus ")]  # the stats line
    assert "cannot resume" in err and "data.tokenizer" in err and len(lines) == 1
    assert not (tmp_path / "poetry_zh" / "mle" / "version_0").exists()  # the refused run's folder is taken back
    # the advice: the checkpoint's own tokenizer
    assert main(fit_args(tmp_path, "--data.init_args.max_train_samples=64", f"--data.init_args.tokenizer={last}",
                         *more)) == 0
    resumed = load_artifacts(resolve_checkpoint(tmp_path / "poetry_zh" / "mle"))
    assert resumed.tokenizer.get_vocab() == load_artifacts(last).tokenizer.get_vocab()


def test_a_refused_validate_takes_back_its_folder_and_a_good_one_keeps_it(trained, tmp_path, capsys):
    """validate with another vocabulary than its checkpoint's is refused at the checkpoint's load,
    after the logger's folder and config.yaml were made: the folder goes, as for a refused fit."""
    last = trained / "version_0" / "checkpoints" / "last.ckpt"
    args = ["validate", *fit_args(tmp_path, f"--ckpt_path={last}")[1:]]
    assert main([*args, "--data.init_args.max_train_samples=64"]) == 2
    assert "gan-writer validate: error: cannot resume: the checkpoint's vocabulary" in capsys.readouterr().err
    assert not any((tmp_path / "poetry_zh" / "mle").iterdir())  # version_0 taken back (its parents stay)
    assert main([*args, "--data.init_args.max_train_samples=64", f"--data.init_args.tokenizer={last}"]) == 0
    kept = tmp_path / "poetry_zh" / "mle" / "version_0"
    assert (kept / "config.yaml").is_file() and list(kept.glob("events.out.tfevents.*"))


def test_run_directory_skips_versions_that_never_saved_a_checkpoint(tmp_path):
    exp = tmp_path / "poetry_zh" / "mle"
    good = exp / "version_0" / "checkpoints"
    good.mkdir(parents=True)
    (good / "last.ckpt").write_bytes(b"x")
    (exp / "version_1").mkdir()  # a run that failed before its first checkpoint
    (exp / "version_1" / "config.yaml").write_text("seed_everything: 0\n")
    assert resolve_checkpoint(exp) == good / "last.ckpt"
    (good / "last.ckpt").unlink()
    with pytest.raises(FileNotFoundError, match="2 version_N folders"):
        resolve_checkpoint(exp)
    (exp / "version_1" / "last.ckpt").write_bytes(b"x")  # saved beside, not in checkpoints/
    assert resolve_checkpoint(exp) == exp / "version_1" / "last.ckpt"


def test_a_stage_refuses_a_tokenizer_other_than_its_checkpoints(trained, tmp_path):
    from gan_writer.data.datamodule import TextDataModule
    from gan_writer.systems.mle import MLEModule

    ckpt = str(trained / "version_0" / "checkpoints" / "last.ckpt")  # 960 training samples
    other = TextDataModule(corpus="shi", tokenizer="char", max_length=26, max_train_samples=64)
    with pytest.raises(ValueError, match="another vocabulary.*set data.tokenizer to the same checkpoint"):
        MLEModule(init_checkpoint=ckpt, tokenizer=other.tokenizer, max_length=26)
    same = TextDataModule(corpus="shi", tokenizer=ckpt, max_length=26, max_train_samples=64).tokenizer
    assert MLEModule(init_checkpoint=ckpt, tokenizer=same, max_length=26).generator.vocab_size >= len(same)
