"""BLEU / Self-BLEU against nltk 3.10 (the Texygen protocol) on real corpora and random inputs."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from nltk.translate import bleu_score as nb

from gan_writer.metrics import (
    BleuReference,
    MetricTokenizer,
    bleu,
    corpus_bleu,
    scheme_for_language,
    self_bleu,
    self_bleu_scores,
    sentence_bleu_scores,
    tokenize_for_metrics,
)

ORDERS = (1, 2, 3, 4, 5)
TOL = 1e-12
SMOOTH = {"method1": nb.SmoothingFunction().method1, "method0": nb.SmoothingFunction().method0}


def weights(n):
    return (1.0 / n,) * n


def nltk_scores(refs, hyps, orders=ORDERS, smoothing="method1"):
    """{n: [nltk sentence_bleu of each hypothesis against all refs]}."""
    out = {n: [] for n in orders}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # method0 warns on zero counts
        for h in hyps:
            vals = nb.sentence_bleu(refs, h, [weights(n) for n in orders],
                                    smoothing_function=SMOOTH[smoothing])
            vals = vals if len(orders) > 1 else [vals]
            for n, v in zip(orders, vals):
                out[n].append(v)
    return out


def nltk_self(samples, orders=ORDERS, smoothing="method1"):
    out = {n: [] for n in orders}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, h in enumerate(samples):
            others = samples[:i] + samples[i + 1:]
            vals = nb.sentence_bleu(others, h, [weights(n) for n in orders],
                                    smoothing_function=SMOOTH[smoothing])
            vals = vals if len(orders) > 1 else [vals]
            for n, v in zip(orders, vals):
                out[n].append(v)
    return out


def assert_close(ours, theirs):
    for n in theirs:
        diff = np.abs(np.asarray(ours[n], dtype=float) - np.asarray(theirs[n], dtype=float))
        assert diff.size == 0 or diff.max() <= TOL, (n, diff.max())


def read_lines(path, limit=None, scheme="word"):
    tok = MetricTokenizer(scheme)
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return tok.tokenize_all(lines[:limit])


@pytest.fixture(scope="module")
def coco(shared_data):
    root = shared_data / "benchmarks" / "coco"
    return read_lines(root / "test_coco.txt"), read_lines(root / "train_coco.txt", 2000)


@pytest.fixture(scope="module")
def poems(shared_data):
    return read_lines(shared_data / "poetry_zh" / "shi.txt", 900, scheme="char")


# --------------------------------------------------------------------------- real text
def test_coco_bleu_matches_nltk_per_hypothesis(coco):
    refs, hyps = coco
    refs, hyps = refs[:1000], hyps[:150]
    ours = sentence_bleu_scores(hyps, refs, ORDERS)
    assert_close(ours, nltk_scores(refs, hyps))
    assert 0.1 < ours[4].mean() < 0.9  # real overlap, not a degenerate 0 or 1


def test_coco_bleu_full_test_split(coco):
    """A few hypotheses against all 10,000 references (what Texygen reports)."""
    refs, hyps = coco
    ref = BleuReference(refs, max_n=5)
    assert ref.n_references == 10000
    hyps = hyps[:2] + [[], hyps[5][:2]]  # plus an empty and a 2-token hypothesis
    assert_close(sentence_bleu_scores(hyps, ref, ORDERS), nltk_scores(refs, hyps))


def test_coco_mean_and_corpus_bleu(coco):
    refs, hyps = coco
    refs, hyps = refs[:400], hyps[:60]
    expected = nltk_scores(refs, hyps, (2, 3, 4, 5))
    got = bleu(hyps, refs, (2, 3, 4, 5))
    for n in (2, 3, 4, 5):
        assert abs(got[n] - np.mean(expected[n])) <= TOL
    corpus = corpus_bleu(hyps, refs, (2, 3, 4, 5))
    for n in (2, 3, 4, 5):
        want = nb.corpus_bleu([refs] * len(hyps), hyps, weights(n),
                              smoothing_function=SMOOTH["method1"])
        assert abs(corpus[n] - want) <= TOL
    assert bleu(hyps, refs, 4) == got[4]


def test_reference_reuse_equals_fresh(coco):
    refs, hyps = coco
    ref = BleuReference(refs[:2000], max_n=5)
    a = sentence_bleu_scores(hyps[:300], ref, (2, 3, 4, 5))
    b = sentence_bleu_scores(hyps[300:600], ref, 3)
    np.testing.assert_array_equal(a[3], sentence_bleu_scores(hyps[:300], refs[:2000], 3))
    np.testing.assert_array_equal(b, sentence_bleu_scores(hyps[300:600], refs[:2000], 3))
    with pytest.raises(ValueError, match="max_n"):
        sentence_bleu_scores(hyps[:3], BleuReference(refs[:10], max_n=3), 4)


def test_chinese_poems_char_level(poems):
    assert all(len(p) == 24 for p in poems)  # 20 characters + 4 punctuation marks
    refs, hyps = poems[:700], poems[700:800]
    assert_close(sentence_bleu_scores(hyps, refs, ORDERS), nltk_scores(refs, hyps))


def test_self_bleu_matches_nltk_leave_one_out_coco(coco):
    _, samples = coco
    samples = samples[:120] + [samples[3], samples[7], samples[3]]  # duplicated samples
    ours = self_bleu_scores(samples, ORDERS)
    assert_close(ours, nltk_self(samples))
    for i in (3, 7, 120, 121, 122):  # each copy finds its twin among the others
        assert ours[4][i] == 1.0
    # including the sample among its own references (a known bug) would give 1.0 everywhere
    assert ours[4].mean() < 0.9


def test_self_bleu_poems(poems):
    samples = poems[:100]
    assert_close(self_bleu_scores(samples, ORDERS), nltk_self(samples))


def test_self_bleu_not_cached(coco):
    _, hyps = coco
    a, b = hyps[:200], hyps[200:400]
    first = self_bleu(a, 4)
    second = self_bleu(b, 4)
    assert first != second
    assert self_bleu(a, 4) == first
    assert abs(first - np.mean(nltk_self(a, (4,))[4])) <= TOL
    grown = self_bleu(a + a[:20], 4)  # adding duplicates changes it on the next call
    assert grown > first


# --------------------------------------------------------------------------- edge cases
def test_edge_cases_against_nltk():
    refs = [["a", "b", "c", "d"], ["a", "b"], [], ["b", "c", "d", "e", "f", "g"]]
    hyps = [[], ["a"], ["z"], ["a", "b"], ["b", "c", "d"], ["a", "b", "c", "d", "e", "f", "g", "h"],
            ["q", "a", "b", "c"], ["a", "a", "a", "a"]]
    for smoothing in ("method1", "method0"):
        ours = sentence_bleu_scores(hyps, refs, ORDERS, smoothing)
        assert_close(ours, nltk_scores(refs, hyps, smoothing=smoothing))
    assert sentence_bleu_scores([[]], refs, 4)[0] == 0.0
    assert sentence_bleu_scores([["a", "x"]], refs, 4)[0] > 0  # shorter than n, smoothed
    assert sentence_bleu_scores([], refs, 4).shape == (0,)


def test_errors():
    with pytest.raises(ValueError, match="references"):
        sentence_bleu_scores([["a"]], [], 4)
    with pytest.raises(ValueError, match="n"):
        sentence_bleu_scores([["a"]], [["a"]], 0)
    with pytest.raises(ValueError, match="hypotheses"):
        bleu([], [["a"]], 4)
    with pytest.raises(ValueError, match="samples"):
        self_bleu([["a", "b"]], 2)
    with pytest.raises(ValueError, match="smoothing"):
        self_bleu([["a"], ["b"]], 2, smoothing="method7")
    with pytest.raises(TypeError, match="tokens"):
        sentence_bleu_scores(["a raw string"], [["a"]], 2)


def test_scales_with_ngrams_not_pairs(coco):
    """2,000 x 10,000 (20M pairs; nltk needs minutes) in well under a few seconds."""
    import time

    refs, hyps = coco
    start = time.perf_counter()
    out = bleu(hyps, refs, (2, 3, 4, 5))
    assert time.perf_counter() - start < 10.0
    assert out[2] > out[3] > out[4] > out[5] > 0


# --------------------------------------------------------------------------- property tests
TOKENS = st.sampled_from(["a", "b", "c", "d"])
SENT = st.lists(TOKENS, min_size=0, max_size=9)


@settings(max_examples=150, deadline=None)
@given(refs=st.lists(SENT, min_size=1, max_size=6), hyps=st.lists(SENT, min_size=0, max_size=6),
       smoothing=st.sampled_from(["method1", "method0"]))
def test_property_bleu_equals_nltk(refs, hyps, smoothing):
    assert_close(sentence_bleu_scores(hyps, refs, ORDERS, smoothing),
                 nltk_scores(refs, hyps, smoothing=smoothing))
    if hyps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = nb.corpus_bleu([refs] * len(hyps), hyps, weights(4),
                                  smoothing_function=SMOOTH[smoothing])
            assert abs(corpus_bleu(hyps, refs, 4, smoothing) - want) <= TOL


@settings(max_examples=150, deadline=None)
@given(samples=st.lists(SENT, min_size=2, max_size=8), dup=st.lists(st.integers(0, 7), max_size=3))
def test_property_self_bleu_equals_nltk(samples, dup):
    samples = samples + [samples[i % len(samples)] for i in dup]  # duplicated samples
    assert_close(self_bleu_scores(samples, ORDERS), nltk_self(samples))


# --------------------------------------------------------------------------- tokenization
def test_tokenize_for_metrics():
    assert tokenize_for_metrics("several people skiing on a trail at night.") == [
        "several", "people", "skiing", "on", "a", "trail", "at", "night", "."]
    assert tokenize_for_metrics("A Dog, running!", lowercase=True) == ["a", "dog", ",", "running", "!"]
    assert tokenize_for_metrics("秦 川 雄 帝 宅 ，", "char") == ["秦", "川", "雄", "帝", "宅", "，"]
    assert tokenize_for_metrics("秦川雄帝宅，", "char") == ["秦", "川", "雄", "帝", "宅", "，"]
    assert tokenize_for_metrics("don't stop", "treebank") == ["do", "n't", "stop"]
    assert tokenize_for_metrics("  ", "word") == []
    assert scheme_for_language("zh") == "char" and scheme_for_language("en") == "word"
    tok = MetricTokenizer.for_language("zh")
    assert tok.describe() == {"metric_tokenization": "char", "metric_lowercase": False}
    with pytest.raises(TypeError, match="decode"):
        tokenize_for_metrics([101, 2023])
    # decoded text may hold letters that look like BPE markers (Maltese Ġ): scored, not rejected
    assert tokenize_for_metrics("\u0120gantija temple", "word") == ["\u0120gantija", "temple"]
    with pytest.raises(ValueError, match="scheme"):
        tokenize_for_metrics("x", "bpe")
