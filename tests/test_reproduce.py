"""`gan-writer reproduce`: README tables between markers, regenerated from a recipe and diffed.
The stages and the evaluation are faked here (the real regeneration takes most of an hour)."""
from pathlib import Path

import pytest

from gan_writer.analysis.published import (MarkerError, begin_marker, end_marker, evaluate_table, read_tables,
                                           splice, table_diffs)
from gan_writer.cli import main
from gan_writer.commands.reproduce import fit_commands, load_recipe, reproduce

REPO = Path(__file__).resolve().parents[1]
KEYS = ["bleu_2", "bleu_3", "bleu_4", "bleu_5", "self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5",
        "distinct_1", "distinct_2", "distinct_3", "distinct_4", "nll_test", "nll_gen"]


def fake_result(base: float, n=2000, refs=820):
    return {"metrics": {k: base + i / 100 for i, k in enumerate(KEYS)},
            "setup": {"num_samples": n, "num_references": refs, "reference_split": "test", "seed": 0}}


README = f"""# project

intro text kept byte for byte\u3002

{begin_marker("poetry_zh/evaluate")}
old table
{end_marker("poetry_zh/evaluate")}

after
"""


def test_tables_are_read_and_spliced_between_their_markers_only():
    assert read_tables(README) == {"poetry_zh/evaluate": "old table"}
    new = splice(README, "poetry_zh/evaluate", "| a |\n|---|\n| 1 |")
    assert read_tables(new) == {"poetry_zh/evaluate": "| a |\n|---|\n| 1 |"}
    assert new.replace("| a |\n|---|\n| 1 |", "old table") == README
    with pytest.raises(MarkerError, match="has no table 'other'"):
        splice(README, "other", "x")


@pytest.mark.parametrize("text, message", [
    (f"a\n{begin_marker('t')}\nx\n", r"README.md:2: table 't' has no end marker"),
    (f"{end_marker('t')}\n", r"README.md:1: end of 't' without its begin"),
    (f"{begin_marker('t')}\n{begin_marker('u')}\n", r"README.md:2: table 'u' begins inside 't'"),
    (f"{begin_marker('t')}\n{end_marker('t')}\n{begin_marker('t')}\n{end_marker('t')}\n", "appears twice"),
])
def test_bad_markers_name_the_line(text, message):
    with pytest.raises(MarkerError, match=message):
        read_tables(text)


def test_evaluate_table_carries_sample_size_seed_count_and_spread():
    table = evaluate_table([("MLE", 0, fake_result(0.5)), ("SeqGAN", 0, fake_result(0.4)),
                            ("SeqGAN", 1, fake_result(0.45))])
    caption, _, body = table.partition("\n\n")
    assert "2,000 samples per checkpoint" in caption and "820 test references" in caption
    assert "MLE 1 (0)" in caption and "SeqGAN 2 (0, 1)" in caption
    header, _, first = body.splitlines()[:3]
    assert header == "| metric | MLE seed 0 | SeqGAN seed 0 | SeqGAN seed 1 | SeqGAN spread (2 seeds) |"
    assert first == ("| BLEU-2 / 3 / 4 / 5 | 0.500 / 0.510 / 0.520 / 0.530 | 0.400 / 0.410 / 0.420 / 0.430 | "
                     "0.450 / 0.460 / 0.470 / 0.480 | 0.0500 / 0.0500 / 0.0500 / 0.0500 |")
    with pytest.raises(ValueError, match="different setups"):
        evaluate_table([("MLE", 0, fake_result(0.5)), ("SeqGAN", 0, fake_result(0.4, n=500))])


def test_reproduce_runs_the_recipe_then_fails_on_a_differing_table_and_writes_with_write(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the recipe's config paths are relative to the repository
    recipe = load_recipe("poetry_zh")
    runs = tmp_path / "runs"
    commands = fit_commands(recipe, runs)
    assert [(name, seed) for name, seed, _ in commands] == [("mle", 0), ("disc", 0), ("seqgan", 0), ("seqgan", 1)]
    seqgan1 = commands[-1][2]
    assert "--seed_everything=1" in seqgan1 and f"--trainer.logger.init_args.save_dir={runs}/seed_1" in seqgan1
    assert f"--model.init_args.init_checkpoint={runs}/seed_0/poetry_zh/disc" in seqgan1

    fitted, evaluated = [], []

    def fit(argv):
        fitted.append(argv)
        return 0

    def evaluate(ckpt, n, references, seed):
        evaluated.append(ckpt)
        assert (n, references, seed) == (2000, "test", 0)
        return fake_result({"mle": 0.5, "seqgan": 0.4}[Path(ckpt).name] + 0.01 * ("seed_1" in ckpt))

    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    status, diffs = reproduce(recipe, runs, readme, fit=fit, evaluate=evaluate)
    assert status == 1 and list(diffs) == ["poetry_zh/evaluate"] and "-old table" in diffs["poetry_zh/evaluate"]
    assert readme.read_text(encoding="utf-8") == README  # without --write nothing is touched
    assert fitted == [argv for _, _, argv in commands]
    assert evaluated == [str(runs / "seed_0/poetry_zh/mle"), str(runs / "seed_0/poetry_zh/seqgan"),
                         str(runs / "seed_1/poetry_zh/seqgan")]
    assert reproduce(recipe, runs, readme, fit=fit, evaluate=evaluate, write=True)[0] == 0
    written = readme.read_text(encoding="utf-8")
    assert written.startswith("# project\n\nintro text kept byte for byte\u3002\n") and written.endswith("\nafter\n")
    assert "| metric | MLE seed 0 | SeqGAN seed 0 | SeqGAN seed 1 | SeqGAN spread (2 seeds) |" in written
    assert reproduce(recipe, runs, readme, fit=fit, evaluate=evaluate) == (0, {})  # same numbers: passes
    assert table_diffs(written, {"poetry_zh/evaluate": read_tables(written)["poetry_zh/evaluate"]}) == {}


def test_a_failing_stage_stops_the_reproduction(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    with pytest.raises(RuntimeError, match="mle seed 0 failed: gan-writer fit --config experiments/poetry_zh/mle.yaml"):
        reproduce(load_recipe("poetry_zh"), tmp_path / "runs", readme, fit=lambda argv: 2, evaluate=None)


def test_reproduce_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["reproduce", "--task", "poetry_zh", "--dry-run", "--runs", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(line.startswith("gan-writer fit --config experiments/poetry_zh/") for line in printed)
    assert main(["reproduce", "--task", "nonesuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gan-writer reproduce: error: experiments/nonesuch/reproduce.yaml not found; tasks with a recipe:")
    assert "poetry_zh" in err and len(err.splitlines()) == 1
    (tmp_path / "r").mkdir()
    assert main(["reproduce", "--task", "poetry_zh", "--runs", str(tmp_path / "r")]) == 2
    assert "exists; pass another --runs, or --reuse" in capsys.readouterr().err
