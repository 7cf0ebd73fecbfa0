"""`gan-writer reproduce`: README tables between markers, regenerated from a recipe and diffed.
The stages and the evaluation are faked here (the real regeneration takes most of an hour)."""
from pathlib import Path

import pytest

from gan_writer.analysis.published import (MarkerError, begin_marker, end_marker, compare_table, evaluate_table,
                                           read_tables, splice, table_diffs)
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
    assert [t["name"] for t in recipe["tables"]] == ["poetry_zh/evaluate", "poetry_zh/compare"]
    recipe["tables"] = recipe["tables"][:1]  # the compare table: test_reproduce_renders_a_compare_table...
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
    assert len(printed) == 8 and all(line.startswith("gan-writer fit --config experiments/poetry_zh/") for line in printed[:4])
    assert printed[4] == f"gan-writer evaluate --ckpt {tmp_path / 'r'}/seed_0/poetry_zh/mle --n 2000 --references test --seed 0"
    assert printed[7].startswith(f"gan-writer compare --run 'MLE seed 0={tmp_path / 'r'}/seed_0/poetry_zh/mle' ")
    assert "--temperatures 0.7,0.8,0.9,1,1.1,1.2,1.5 --n 2000 --seed 0 --bleu-n 4 --baseline 'MLE seed 0'" in printed[7]
    assert main(["reproduce", "--task", "nonesuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("gan-writer reproduce: error: experiments/nonesuch/reproduce.yaml not found; tasks with a "
                   "reproduce.yaml recipe: poetry_zh")
    assert main(["reproduce", "--task", "poetry_zh", "--recipe", "nonesuch"]) == 2
    assert capsys.readouterr().err.strip() == ("gan-writer reproduce: error: experiments/poetry_zh/nonesuch.yaml not "
                                               "found; tasks with a nonesuch.yaml recipe: none")
    (tmp_path / "r").mkdir()
    assert main(["reproduce", "--task", "poetry_zh", "--runs", str(tmp_path / "r")]) == 2
    assert "exists; pass another --runs, or --reuse" in capsys.readouterr().err


SETUP = {"num_samples": 2000, "seed": 0, "temperatures": [0.8, 1.0, 1.2], "num_references": 820,
         "references": "corpus 'shi', test split as references", "quality": "BLEU-4", "diversity": "1 − Self-BLEU-4"}


def record(run, area, dominated=0, lo=0.8, hi=0.95):
    return {"run": run, "baseline": "MLE seed 0", "points": 3, "dominated": dominated, "area": area, "lo": lo,
            "hi": hi, "front": [0.8, 1.0, 1.2], "baseline_front": [0.8, 1.0, 1.2]}


SEEDS = {"MLE seed 0": 0, "SeqGAN seed 0": 0, "SeqGAN seed 1": 1}


def test_compare_table_states_a_verdict_only_when_every_seed_agrees():
    agree = compare_table(SETUP, [record("SeqGAN seed 0", -0.0006, 1), record("SeqGAN seed 1", -0.0012, 2)], SEEDS)
    caption, table, finding = agree.split("\n\n")
    assert "2,000 samples per point (sampling seed 0)" in caption and "(820)" in caption
    assert "T ∈ {0.8, 1, 1.2}" in caption and "training seeds: MLE 1 (0), SeqGAN 2 (0, 1)." in caption
    assert table.splitlines()[2] == ("| SeqGAN seed 0 | 1 of 3 | -0.0006 (mean quality gap -0.004) | [0.8, 0.95] |")
    assert finding.startswith("**Same sign at every seed: MLE seed 0 ahead** (2 seeds; mean quality gap -0.008 to -0.004)")
    assert finding.endswith("points dominated per seed: 1, 2 of 3.")
    both = compare_table(SETUP, [record("SeqGAN seed 0", 0.002), record("SeqGAN seed 1", 0.001)], SEEDS)
    assert "**Same sign at every seed: SeqGAN ahead**" in both
    split = compare_table(SETUP, [record("SeqGAN seed 0", 0.002), record("SeqGAN seed 1", -0.001)], SEEDS)
    assert "**No verdict:** the 2 seeds disagree or are undecided (mean quality gap -0.006667 to +0.01333)" in split
    sliver = compare_table(SETUP, [record("SeqGAN seed 0", 0.002), record("SeqGAN seed 1", 1e-5, lo=0.9, hi=0.9005)],
                           SEEDS)
    assert "**No verdict:**" in sliver  # a seed whose fronts barely overlap decides nothing
    with pytest.raises(ValueError, match="no training seed"):
        compare_table(SETUP, [record("PPO seed 0", 0.1)], SEEDS)


def test_compare_table_of_several_estimators_gives_each_its_own_verdict_over_its_own_seeds():
    seeds = {"MLE seed 0": 0, "PPO seed 0": 0, "PPO seed 1": 1, "RLOO seed 0": 0, "RLOO seed 1": 1, "One seed 3": 3}
    records = [record("PPO seed 0", 0.002), record("PPO seed 1", 0.001), record("RLOO seed 0", -0.002),
               record("RLOO seed 1", 0.001), record("One seed 3", -0.004)]
    caption, table, findings = compare_table(SETUP, records, seeds).split("\n\n")
    assert "training seeds: MLE 1 (0), PPO 2 (0, 1), RLOO 2 (0, 1), One 1 (3)." in caption
    assert len(table.splitlines()) == 2 + 5
    lines = findings.splitlines()
    assert lines[0] == ("* PPO: **Same sign at every seed: PPO ahead** (2 seeds; mean quality gap +0.006667 to +0.01333); "
                        "points dominated per seed: 0, 0 of 3.")
    assert lines[1].startswith("* RLOO: **No verdict:** the 2 seeds disagree or are undecided")
    assert lines[2].startswith("* One: **No verdict:** one seed (mean quality gap -0.02667 to -0.02667)")
    assert len(lines) == 3


def test_reproduce_renders_a_compare_table_from_one_sweep_and_reuses_it(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(REPO)
    recipe = {**load_recipe("poetry_zh"), "tables": [{
        "name": "poetry_zh/compare", "compare": {"temperatures": [0.8, 1.0, 1.2], "n": 2000, "seed": 0,
                                                 "report_dir": str(tmp_path / "published"),
                                                 "plot": str(tmp_path / "plot.png")},
        "columns": [["MLE", "mle", 0], ["SeqGAN", "seqgan", 0], ["SeqGAN", "seqgan", 1]]}]}
    runs, sweeps = tmp_path / "runs", []

    def compare(named, temperatures, n, seed, bleu_n, baseline, out, command):
        assert command.startswith("gan-writer reproduce (the poetry_zh/compare block")
        sweeps.append((named, temperatures, n, seed, bleu_n, baseline, out))
        Path(out).mkdir(parents=True)
        (Path(out) / "setup.json").write_text(json.dumps(SETUP))
        records = [record(name, -0.001) for name, _ in named[1:]]
        (Path(out) / "verdicts.json").write_text(json.dumps(records))
        (Path(out) / "results.md").write_text("the sweep's report")
        (Path(out) / "quality_diversity.png").write_bytes(b"png")
        return Path(out)

    readme = tmp_path / "README.md"
    readme.write_text(f"{begin_marker('poetry_zh/compare')}\nold\n{end_marker('poetry_zh/compare')}\n")
    status, diffs = reproduce(recipe, runs, readme, write=True, fit=lambda argv: 0, evaluate=None, compare=compare)
    assert status == 0 and list(diffs) == ["poetry_zh/compare"]
    (named, temps, n, seed, bleu_n, baseline, out), = sweeps
    assert [name for name, _ in named] == ["MLE seed 0", "SeqGAN seed 0", "SeqGAN seed 1"] and baseline == "MLE seed 0"
    assert named[2][1] == str(runs / "seed_1" / "poetry_zh" / "seqgan") and temps == [0.8, 1.0, 1.2] and n == 2000
    assert out == str(runs / "compare" / "poetry_zh_compare") and bleu_n == 4 and seed == 0
    assert "**Same sign at every seed: MLE seed 0 ahead**" in read_tables(readme.read_text())["poetry_zh/compare"]
    assert (tmp_path / "published" / "results.md").read_text() == "the sweep's report"  # published with write
    assert (tmp_path / "plot.png").read_bytes() == b"png" == (tmp_path / "published" / "quality_diversity.png").read_bytes()
    status, diffs = reproduce(recipe, runs, readme, reuse=True, fit=lambda argv: 0, compare=compare)
    assert status == 0 and not diffs and len(sweeps) == 1  # --reuse reads the finished sweep, equal table


def test_estimator_recipes_chain_each_seed_and_land_where_their_tables_read(tmp_path, monkeypatch):
    from gan_writer.commands.reproduce import planned_commands, run_dir

    monkeypatch.chdir(REPO)
    oracle = load_recipe("oracle", name="estimators")
    assert oracle["document"] == "docs/results/estimators.md"
    runs = tmp_path / "runs"
    commands = {(name, seed): argv for name, seed, argv in fit_commands(oracle, runs)}
    assert len(commands) == 10 * 3
    ppo = commands["ppo_clip", 2]
    assert f"--model.init_args.init_checkpoint={runs}/seed_2/disc" in ppo and "--model.init_args.loss=ppo_clip" in ppo
    prefix = commands["prefix_ema", 1]
    assert f"--model.init_args.init_checkpoint={runs}/seed_1/disc_prefix" in prefix
    assert "--trainer.max_epochs=20" in commands["mle_continue_200", 0]
    assert run_dir(oracle, runs, "ppo_clip", 1) == runs / "seed_1" / "ppo_clip"  # the logger-name override
    table, = oracle["tables"]
    rows = {r[1]: r[2] for r in table["rows"]}
    assert rows["ppo_clip"] == "mle_continue_200" and rows["seqgan"] == "mle_continue" and set(rows) <= {
        name for name, _ in commands}
    assert planned_commands(oracle, runs)[-1].startswith("# NLL-oracle and NLL-test of 10000 samples per final checkpoint")
    shi = load_recipe("poetry_zh", name="estimators")
    (block,) = shi["tables"]
    labels = {label for label, _, _ in block["columns"][1:]}
    assert len(labels) == 5 and all(seeds == [0, 1] for seeds in
                                    ([s for lb, _, s in block["columns"] if lb == label] for label in labels))
    assert run_dir(shi, runs, "ppo", 1) == runs / "seed_1" / "poetry_zh" / "seqgan_ppo"
    line = planned_commands(shi, runs)[-1]
    assert "plot" not in line and line.count("--run ") == 11
