"""Metrics that cannot be fooled (issue 16): empty samples counted, degenerate sets
(all empty, all identical, shorter than n) scored as nltk scores them but warned about,
and compare excluding or flagging runs whose samples are mostly empty or identical."""
import math
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gan_writer.analysis import quality_diversity as qd
from gan_writer.analysis.degenerate_points import degenerate_points, verdict_excluding
from gan_writer.analysis.compare_runs import compare
from gan_writer.data.datamodule import TextDataModule
from gan_writer.metrics.degenerate import DegenerateSamplesWarning
from gan_writer.metrics.suite import metric_tokenizer, text_metrics
from gan_writer.safe_load import seal
from gan_writer.models import GeneratorConfig
from gan_writer.systems.mle import MLEModule

WORD = metric_tokenizer("word")
REFS = [s.split() for s in ("the cat sat on the mat", "a dog ran in the park", "the sun is warm today")]
REAL = ["the cat ran in the park", "a dog sat on the mat", "the sun sat on the cat", "a warm day in the sun"]


def scored(samples):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = text_metrics(samples, REFS, WORD)
    return out, [str(w.message) for w in caught if issubclass(w.category, DegenerateSamplesWarning)]


def test_all_empty_samples_are_counted_and_their_self_bleu_zero_is_warned_about():
    out, warned = scored([""] * 10)
    assert out["empty_samples"] == 10.0 and out["self_bleu_4"] == 0.0 and out["distinct_2"] == 0.0
    assert sentence_bleu([[]] * 9, [], (0.25,) * 4, SmoothingFunction().method1) == 0  # nltk agrees
    assert any("all 10 samples are empty" in w and "not diversity" in w for w in warned)


def test_mostly_empty_samples_are_counted_and_warned_about():
    out, warned = scored(["", "", "", REAL[0]])
    assert out["empty_samples"] == 3.0
    assert any("3 of 4 samples are empty" in w for w in warned)


def test_identical_short_samples_keep_nltks_scores_and_say_why_order_5_is_lower():
    out, warned = scored(["the cat sat"] * 10)  # 3 tokens: orders 4 and 5 have no n-gram
    method1 = SmoothingFunction().method1
    for n in (2, 3, 4, 5):
        ref = sentence_bleu([["the", "cat", "sat"]] * 9, ["the", "cat", "sat"], (1 / n,) * n, method1)
        assert out[f"self_bleu_{n}"] == pytest.approx(ref, abs=1e-12)
    assert out["self_bleu_2"] == 1.0 and out["self_bleu_5"] == pytest.approx(0.1 ** 0.4)  # 0.398: smoothing
    assert out["top_sample_share"] == 1.0 and out["unique_samples"] == 1.0
    assert any("all 10 samples are identical" in w for w in warned)
    assert any("fewer than 4 tokens" in w and "smoothing" in w for w in warned)


def test_ordinary_samples_raise_no_degeneracy_warning():
    out, warned = scored(REAL)
    assert warned == [] and out["empty_samples"] == 0.0 and out["top_sample_share"] == 0.25


def rows_of(run, temps, empty, self_bleu, bleu, n=100, top=0.01):
    rows = []
    for t in temps:
        for metric, value in (("bleu_4", bleu(t)), ("self_bleu_4", self_bleu(t)), ("empty_samples", empty(t)),
                              ("top_sample_share", top)):
            rows.append({"run": run, "temperature": t, "metric": metric, "value": value})
    return rows


def test_an_eos_only_run_is_excluded_from_the_verdict_not_called_undominated():
    q, d = qd.axes_for("text", 4)
    temps = (0.7, 1.0, 1.3)
    rows = (rows_of("mle", temps, lambda t: 0, lambda t: 0.9 - 0.2 * t, lambda t: 0.5 - 0.1 * t)
            + rows_of("eos", temps, lambda t: 100, lambda t: 0.0, lambda t: 0.0))
    curves = qd.curves_from_rows(rows, q, d)
    (fooled,) = qd.verdict(curves, "mle", q, d)
    assert fooled.num_dominated == 0  # 1 − Self-BLEU = 1.0: nothing dominates it on the raw axes
    flags = degenerate_points(rows, 100)
    assert set(flags) == {"eos"} and flags["eos"][1.0] == "mostly empty samples (100 of 100)"
    verdicts, notes = verdict_excluding(curves, "mle", q, d, flags)
    assert verdicts == [] and notes[0].startswith("**Excluded (eos):** every point has degenerate samples")


def test_a_partly_collapsed_run_is_flagged_and_judged_on_its_other_points():
    q, d = qd.axes_for("text", 4)
    temps = (0.7, 1.0, 1.3)
    rows = rows_of("mle", temps, lambda t: 0, lambda t: 0.9 - 0.2 * t, lambda t: 0.5 - 0.1 * t)
    rows += [r if r["metric"] != "top_sample_share" or r["temperature"] != 0.7 else {**r, "value": 0.8}
             for r in rows_of("gan", temps, lambda t: 0, lambda t: 0.95 - 0.2 * t, lambda t: 0.45 - 0.1 * t)]
    flags = degenerate_points(rows, 100)
    assert flags == {"gan": {0.7: "mostly identical samples (80% one text)"}}
    (v,), notes = verdict_excluding(qd.curves_from_rows(rows, q, d), "mle", q, d, flags)
    assert sorted(v.dominated_by) == [1.0, 1.3] and "**Flagged (gan):** 1 of 3 points" in notes[0]
    table = qd.markdown_table(rows, q, d, [v], excluded=flags)
    assert "excluded: mostly identical samples (80% one text)" in table


def _tiny_run(tmp_path, corpus, name):
    dm = TextDataModule(corpus=str(corpus), tokenizer="word", max_length=8, batch_size=8, valid_fraction=0.2,
                        test_fraction=0.2)
    torch.manual_seed(0)
    model = MLEModule(GeneratorConfig(backend="lstm", emb_dim=8, hidden_dim=8), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    ckpt = ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
    trainer = L.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[ckpt])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, dm)
    return tmp_path / name / "last.ckpt", dm.tokenizer.eos_token_id


def test_compare_excludes_a_generator_that_emits_only_eos(tmp_path):
    corpus = tmp_path / "lines.txt"
    words = "the cat sat on a mat and dog ran in park sun is warm today".split()
    corpus.write_text("\n".join(" ".join(words[(i + k) % len(words)] for k in range(5)) for i in range(60)),
                      encoding="utf-8")
    mle, _ = _tiny_run(tmp_path, corpus, "mle")
    eos_path, eos = _tiny_run(tmp_path, corpus, "eos")
    ckpt = torch.load(eos_path, map_location="cpu", weights_only=False)  # make it emit EOS first, always
    ckpt["state_dict"]["generator.out.weight"].zero_()
    ckpt["state_dict"]["generator.out.bias"].fill_(-50.0)[eos] = 50.0
    seal(ckpt)  # a deliberate edit: store the new checksum, as a save does
    torch.save(ckpt, eos_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = compare([("mle", str(mle)), ("eos", str(eos_path))], [0.7, 1.0], n=20, out=str(tmp_path / "cmp"))
    report = (out / "results.md").read_text(encoding="utf-8")
    assert "**Excluded (eos):** every point has degenerate samples (T=0.7: mostly empty samples (20 of 20)" in report
    assert "**Verdict (eos vs mle)" not in report
    rows = qd.read_rows(out / "results.csv")
    assert {r["value"] for r in rows if r["run"] == "eos" and r["metric"] == "empty_samples"} == {20.0}
    assert math.isclose(qd.metrics_by_point(rows)["eos"][1.0]["self_bleu_4"], 0.0)
