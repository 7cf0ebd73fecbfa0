"""`gan-writer compare` (issue 6): temperature sweeps, quality–diversity curves and the
computed verdict, on tiny real runs, plus the verdict and area functions on hand-made curves.

The runs: two tiny MLE fits on `shi`. The second one (another seed, more data) stands in for
the SeqGAN run until the adversarial stage lands; compare only needs two checkpoints of
the same corpus. The oracle path uses two tiny LSTM fits on a random oracle (V=50).
"""
import csv
import json
import math
from pathlib import Path

import pytest

from gan_writer.analysis import events
from gan_writer.analysis import quality_diversity as qd
from gan_writer.cli import main

REPO = Path(__file__).resolve().parents[1]
TEMPS = (0.7, 1.0, 1.3)


def _fit(save_dir, *extra):
    assert main([
        "fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"),
        f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.max_epochs=1",
        "--trainer.val_check_interval=null", "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false",
        "--trainer.log_every_n_steps=2", "--model.init_args.num_text_samples=2", "--model.init_args.warmup_steps=0",
        "--model.init_args.lr=0.01", "--data.init_args.batch_size=32", *extra,
    ]) == 0


def _fit_shi(save_dir, seed, n):
    _fit(save_dir, "--model.init_args.generator.n_embd=32", "--model.init_args.generator.n_head=2",
         "--model.init_args.generator.n_layer=1", f"--data.init_args.max_train_samples={n}",
         f"--seed_everything={seed}")
    return save_dir / "poetry_zh" / "mle"


def _fit_oracle(save_dir, seed):
    _fit(save_dir, "--trainer.logger.init_args.name=oracle/mle", "--model.init_args.generator.backend=lstm",
         "--model.init_args.generator.emb_dim=16", "--model.init_args.generator.hidden_dim=16",
         "--data=gan_writer.data.oracle.OracleDataModule",
         "--data.init_args.oracle_params=null", "--data.init_args.oracle_seed=0", "--data.init_args.vocab_size=50",
         "--data.init_args.emb_dim=8", "--data.init_args.hidden_dim=8", "--data.init_args.num_train=320",
         "--data.init_args.num_valid=100", "--data.init_args.batch_size=32", f"--seed_everything={seed}")
    return save_dir / "oracle" / "mle"


def build_shared(tmp_path_factory) -> dict:
    """Two `shi` runs and their compare output, built once per test session (also used by
    tests/test_notebooks.py); returns their paths as strings."""
    base = tmp_path_factory.getbasetemp() / "compare_shared"
    done = base / "paths.json"
    if done.is_file():
        return json.loads(done.read_text())
    paths = {"mle": str(_fit_shi(base / "a", 0, 320)), "seqgan": str(_fit_shi(base / "b", 1, 640))}
    out = base / "compare"
    assert main(["compare", "--run", f"mle={paths['mle']}", "--run", f"seqgan={paths['seqgan']}",
                 "--temperatures", ",".join(map(str, TEMPS)), "--n", "100", "--out", str(out)]) == 0
    paths["out"] = str(out)
    done.write_text(json.dumps(paths))
    return paths


@pytest.fixture(scope="module")
def shared(tmp_path_factory, shared_data):
    return build_shared(tmp_path_factory)


@pytest.fixture(scope="module")
def out(shared):
    return Path(shared["out"])


# ---------------------------------------------------------------- the compare outputs
def test_csv_has_one_row_per_run_temperature_metric(out):
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == qd.CSV_COLUMNS
        raw = list(reader)
    rows = qd.read_rows(out / "results.csv")
    data = qd.metrics_by_point(rows)
    assert list(data) == ["mle", "seqgan"] and all(sorted(t) == list(TEMPS) for t in data.values())
    metric_sets = {frozenset(m) for temps in data.values() for m in temps.values()}
    assert len(metric_sets) == 1
    metrics = next(iter(metric_sets))
    assert {"bleu_2", "bleu_4", "self_bleu_4", "distinct_1", "distinct_4", "unique_samples", "nll_test",
            "nll_test_t"} <= metrics
    assert len(raw) == len(rows) == 2 * len(TEMPS) * len(metrics)  # no duplicate rows
    setups = {(r["num_samples"], r["num_references"], r["tokenization"], r["seed"]) for r in rows}
    assert setups == {(100, 820, "char", 0)}
    assert all(r["checkpoint"].endswith(".ckpt") for r in rows)
    for temps in data.values():
        assert len({m["nll_test"] for m in temps.values()}) == 1  # T = 1, repeated
        assert temps[1.0]["nll_test_t"] == pytest.approx(temps[1.0]["nll_test"], rel=1e-5)
        assert all(0 <= m["bleu_4"] <= 1 and 0 <= m["self_bleu_4"] <= 1 for m in temps.values())


def test_markdown_has_setup_table_and_computed_verdict(out):
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "## Setup" in md and "## Results" in md and "## Verdict" in md
    assert "100 per run and temperature, seed 0" in md and "(820)" in md and "metric tokenization: char" in md
    assert "BLEU-4 (quality) ↑ better" in md and "1 − Self-BLEU-4 (diversity) ↑ better" in md
    assert "vocabularies: differ" in md  # char vocabularies built from 320 vs 640 training poems
    verdict_lines = [line for line in md.splitlines() if line.startswith("**Verdict")]
    assert len(verdict_lines) == 1 and verdict_lines[0].startswith("**Verdict (seqgan vs mle):** ")
    # the stated verdict is the one recomputed from the CSV
    q, d = qd.axes_for("text", 4)
    (v,) = qd.verdict(qd.curves_from_rows(qd.read_rows(out / "results.csv"), q, d), "mle", q, d)
    assert verdict_lines[0] == qd.verdict_line(v, d)
    assert f"{v.num_dominated} of 3 seqgan points" in verdict_lines[0]
    setup = json.loads((out / "setup.json").read_text(encoding="utf-8"))
    assert setup["num_samples"] == 100 and setup["seed"] == 0 and setup["temperatures"] == list(TEMPS)
    (record,) = json.loads((out / "verdicts.json").read_text(encoding="utf-8"))  # the same verdict, for reproduce
    assert record["run"] == "seqgan" and record["dominated"] == v.num_dominated and record["points"] == 3
    assert record["front"] == v.front and (record["area"] is None or record["area"] == pytest.approx(v.area))
    assert setup["command"].startswith("gan-writer compare --run mle=")


def test_png_is_a_real_plot(out):
    import matplotlib.image as mpimg

    png = out / "quality_diversity.png"
    assert png.stat().st_size > 20_000
    img = mpimg.imread(png)
    assert img.shape[0] >= 600 and img.shape[1] >= 800 and float(img[..., :3].std()) > 0.05


def test_tensorboard_event_file_holds_the_plot_and_report(out):
    images = events.load_images(out)
    ((step, width, height, data),) = images["compare/quality_diversity"]
    assert width >= 800 and height >= 600 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Verdict" in events.load_texts(out)["compare/results"][0][1]


def test_samples_csv_keeps_matched_samples(out):
    samples = qd.read_sample_texts(out / "samples.csv")
    assert sorted(samples) == list(TEMPS)
    assert all(len(texts) == 20 for by_run in samples.values() for texts in by_run.values())
    assert all(set(by_run) == {"mle", "seqgan"} for by_run in samples.values())


def test_compare_never_overwrites_and_names_a_missing_baseline(shared, capsys, tmp_path):
    assert main(["compare", "--run", f"mle={shared['mle']}", "--n", "4", "--out", shared["out"]]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["compare", "--run", f"a={shared['mle']}", "--run", f"b={shared['seqgan']}", "--n", "4",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--baseline NAME" in capsys.readouterr().err
    assert main(["compare", "--run", f"mle={shared['mle']}", "--temperatures", "0,1",
                 "--out", str(tmp_path / "y")]) == 2
    assert "all > 0" in capsys.readouterr().err


def test_default_out_dirs_are_new_timestamped_folders(tmp_path, monkeypatch):
    from gan_writer.analysis.compare_runs import new_out_dir

    monkeypatch.chdir(tmp_path)
    a, b = new_out_dir(None), new_out_dir(None)  # same second: the second gets a suffix
    assert a != b and a.parent == b.parent == Path("checkpoints/compare") and a.is_dir() and b.is_dir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError):
        new_out_dir(str(tmp_path / "full"))
    assert new_out_dir(str(tmp_path / "empty")).is_dir()


def test_tempered_nll_at_one_is_corpus_nll(shared):
    from gan_writer.checkpoint import load_artifacts
    from gan_writer.data.datamodule import EncodedTexts, pad_batch
    from gan_writer.metrics.nll import corpus_nll

    art = load_artifacts(shared["mle"])
    ids = EncodedTexts(["白日依山尽，黄河入海流。", "春眠不觉晓，处处闻啼鸟。"], art.tokenizer, 26).ids
    batches = [pad_batch(ids, art.tokenizer.pad_token_id)]
    assert qd.tempered_nll(art.generator, batches, 1.0) == pytest.approx(corpus_nll(art.generator, batches), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        qd.tempered_nll(art.generator, batches, 0.0)


# ---------------------------------------------------------------- the oracle benchmark
@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("oracle_runs")
    return _fit_oracle(base / "a", 0), _fit_oracle(base / "b", 1)


def test_oracle_compare_gives_nll_oracle_against_nll_test(oracle_runs, tmp_path):
    mle, gan = oracle_runs
    out = tmp_path / "cmp"
    assert main(["compare", "--run", f"mle={mle}", "--run", f"gan={gan}", "--temperatures", "0.7,1.0,1.3",
                 "--n", "100", "--out", str(out)]) == 0
    rows = qd.read_rows(out / "results.csv")
    data = qd.metrics_by_point(rows)
    for temps in data.values():
        assert all({"nll_oracle", "nll_test", "nll_test_t", "distinct_2"} <= set(m) for m in temps.values())
        assert all("bleu_4" not in m for m in temps.values())
        assert temps[0.7]["nll_oracle"] < temps[1.3]["nll_oracle"]  # colder samples are likelier under the oracle
    assert {r["num_references"] for r in rows} == {100} and {r["tokenization"] for r in rows} == {"whitespace"}
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "NLL-oracle, nats/token (quality) ↓ better" in md
    assert "NLL-test at T, nats/token (diversity) ↓ better" in md
    assert any(line.startswith("**Verdict (gan vs mle):**") for line in md.splitlines())
    assert (out / "quality_diversity.png").stat().st_size > 20_000


def test_runs_of_different_corpora_are_refused(oracle_runs, shared, capsys, tmp_path):
    assert main(["compare", "--run", f"mle={shared['mle']}", "--run", f"gan={oracle_runs[0]}", "--n", "4",
                 "--out", str(tmp_path / "z")]) == 2
    msg = capsys.readouterr().err
    assert "'mle' and 'gan' are not comparable" in msg and "'shi'" in msg and "'oracle'" in msg
    assert not (tmp_path / "z").exists()


def test_runs_of_different_max_length_are_refused(shared, capsys, tmp_path):
    """Each run samples up to its own max_length and cuts the test texts at it: not like for like."""
    short = tmp_path / "short"
    _fit(short, "--model.init_args.generator.n_embd=32", "--model.init_args.generator.n_head=2",
         "--model.init_args.generator.n_layer=1", "--data.init_args.max_train_samples=320",
         "--data.init_args.max_length=16")
    assert main(["compare", "--run", f"mle={shared['mle']}", "--run", f"short={short / 'poetry_zh' / 'mle'}",
                 "--n", "4", "--out", str(tmp_path / "z")]) == 2
    msg = capsys.readouterr().err
    assert "'mle' and 'short' are not comparable: max_length is 26" in msg and "but 16 in short" in msg
    assert "the same data.max_length" in msg and not (tmp_path / "z").exists()


# ---------------------------------------------------------------- verdict and area, by hand
Q_UP, D_UP = qd.Axis("q", "q", True), qd.Axis("d", "d", True)
Q_DOWN, D_DOWN = qd.Axis("q", "q", False), qd.Axis("d", "d", False)


def pts(run, *qd_pairs):
    return [qd.Point(run, float(i), q, d) for i, (d, q) in enumerate(qd_pairs)]


def test_dominated_and_not_dominated_points():
    base = pts("mle", (0.0, 1.0), (0.5, 0.5), (1.0, 0.0))  # (diversity, quality), T = 0, 1, 2
    below = qd.Point("gan", 9.0, quality=0.4, diversity=0.5)  # mle T=1 is as diverse and better
    above = qd.Point("gan", 9.0, quality=0.6, diversity=0.5)
    tie = qd.Point("gan", 9.0, quality=0.5, diversity=0.5)  # equal to mle T=1: not dominated by it
    tie_q = qd.Point("gan", 9.0, quality=0.5, diversity=0.4)  # as good in quality, less diverse: dominated
    assert qd.dominating(below, base, Q_UP, D_UP) == [1.0]
    assert qd.dominating(above, base, Q_UP, D_UP) == []
    assert qd.dominating(tie, base, Q_UP, D_UP) == []
    assert qd.dominating(tie_q, base, Q_UP, D_UP) == [1.0]
    assert qd.verdict({"gan": base, "mle": base}, "mle", Q_UP, D_UP)[0].num_dominated == 0  # a run vs itself
    # lower is better on both: the same numbers read the other way round
    assert qd.dominating(above, base, Q_DOWN, D_DOWN) == [1.0]
    assert qd.dominating(qd.Point("gan", 9.0, quality=0.6, diversity=1.0), base, Q_DOWN, D_DOWN) == [1.0, 2.0]


def test_area_sign_and_value_match_a_hand_computation():
    base = pts("mle", (0.0, 1.0), (0.5, 0.5), (1.0, 0.0))  # q = 1 - d
    gan = pts("gan", (0.2, 0.9), (0.6, 0.5))  # q = 1.1 - d on [0.2, 0.6]: 0.1 above, width 0.4
    area, lo, hi = qd.area_between(gan, base, Q_UP)
    assert (lo, hi) == (0.2, 0.6) and area == pytest.approx(0.04)
    assert qd.area_between(base, gan, Q_UP)[0] == pytest.approx(-0.04)
    assert qd.area_between(gan, base, Q_DOWN)[0] == pytest.approx(-0.04)  # lower quality better: gan is worse
    # crossing curves: q = d against q = 0.5 cancel; the trapezoids are exact at the crossing
    assert qd.area_between(pts("a", (0, 0.5), (1, 0.5)), pts("b", (0, 0), (1, 1)), Q_UP)[0] == pytest.approx(0.0)
    assert qd.area_between(pts("a", (0, 0.5), (0.5, 0.5)), pts("b", (0, 0), (1, 1)), Q_UP)[0] == pytest.approx(0.125)
    assert math.isnan(qd.area_between(pts("a", (2, 1), (3, 1)), base, Q_UP)[0])  # no overlap
    assert math.isnan(qd.area_between(pts("a", (0.5, 1)), base, Q_UP)[0])  # one point: zero width


def test_pareto_front_drops_the_folded_back_temperatures():
    # oracle-like sweep, lower is better on both axes: T > 1 is worse than T = 1 on both
    sweep = [qd.Point("m", 0.5, 3.1, 3.5), qd.Point("m", 0.7, 3.5, 3.3), qd.Point("m", 1.0, 3.9, 3.28),
             qd.Point("m", 1.3, 4.1, 3.34)]
    assert [p.temperature for p in qd.pareto_front(sweep, Q_DOWN, D_DOWN)] == [1.0, 0.7, 0.5]
    twins = [qd.Point("m", 1.0, 1.0, 1.0), qd.Point("m", 2.0, 1.0, 1.0)]
    assert [p.temperature for p in qd.pareto_front(twins, Q_UP, D_UP)] == [1.0]


def test_verdict_and_its_sentence():
    curves = {"mle": pts("mle", (0.0, 1.0), (0.5, 0.5), (1.0, 0.0)), "gan": pts("gan", (0.2, 0.9), (0.5, 0.45))}
    (v,) = qd.verdict(curves, "mle", Q_UP, D_UP)
    assert v.dominated_by == {0.0: [], 1.0: [1.0]} and v.num_dominated == 1 and v.fraction_dominated == 0.5
    assert v.front == [0.0, 1.0] and v.baseline_front == [0.0, 1.0, 2.0]
    # gan: q = 1.2 - 1.5 d on [0.2, 0.5]; mle: q = 1 - d; gap 0.2 - 0.5 d integrates to
    # 0.2 * 0.3 - 0.25 * (0.5**2 - 0.2**2) = 0.06 - 0.0525 = 0.0075
    assert (v.area, v.lo, v.hi) == (pytest.approx(0.0075), 0.2, 0.5)
    line = qd.verdict_line(v, D_UP)
    assert line.startswith("**Verdict (gan vs mle):** 1 of 2 gan points (50%) are dominated by some mle temperature")
    assert "positive = gan better" in line
    with pytest.raises(KeyError, match="baseline run 'x'"):
        qd.verdict(curves, "x", Q_UP, D_UP)


def test_axes_and_csv_round_trip(tmp_path):
    q, d = qd.axes_for("text", 3)
    assert (q.key, d.key, d.one_minus) == ("bleu_3", "self_bleu_3", True)
    assert d.value({"self_bleu_3": 0.25}) == 0.75 and d.label.endswith("↑ better")
    q, d = qd.axes_for("oracle")
    assert (q.key, d.key, q.higher_is_better, d.higher_is_better) == ("nll_oracle", "nll_test_t", False, False)
    with pytest.raises(ValueError):
        qd.axes_for("images")
    rows = [{"run": "mle", "checkpoint": "x.ckpt", "temperature": t, "metric": m, "value": v, "num_samples": 10,
             "num_references": 5, "tokenization": "char", "seed": 0}
            for t in (0.5, 1.0) for m, v in (("bleu_3", t / 2), ("self_bleu_3", t / 4))]
    qd.write_rows(tmp_path / "r.csv", rows)
    assert qd.read_rows(tmp_path / "r.csv") == rows
    curves = qd.curves_from_rows(rows, *qd.axes_for("text", 3))
    assert [(p.temperature, p.quality, p.diversity) for p in curves["mle"]] == [(0.5, 0.25, 0.875), (1.0, 0.5, 0.75)]
    with pytest.raises(KeyError, match="no metric 'bleu_4'"):
        qd.curves_from_rows(rows, *qd.axes_for("text", 4))


def test_verdict_refuses_to_call_a_winner_on_a_sliver_of_overlap():
    from gan_writer.analysis.quality_diversity import RunVerdict, axes_for, verdict_line

    quality, diversity = axes_for("text", 4)
    v = RunVerdict(run="gan", baseline="mle", area=1.07e-10, lo=0.99120, hi=0.99121)
    line = verdict_line(v, diversity)
    assert "too little to say" in line and "here" not in line
    wide = verdict_line(RunVerdict(run="gan", baseline="mle", area=-0.002, lo=0.8, hi=0.9), diversity)
    assert "here mle is better" in wide
