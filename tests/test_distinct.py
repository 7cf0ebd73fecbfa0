"""distinct-n and unique-sample counts."""
import pytest
from hypothesis import given, settings, strategies as st

from gan_writer.metrics import distinct_n, tokenize_for_metrics, unique_samples


def test_distinct_hand_count():
    samples = [["the", "cat", "sat"], ["the", "cat", "ran"], ["a"]]
    # unigrams: the cat sat the cat ran a -> 7 total, {the, cat, sat, ran, a} = 5 unique
    assert distinct_n(samples, 1) == 5 / 7
    # bigrams: (the cat)(cat sat)(the cat)(cat ran) -> 4 total, 3 unique; "a" has none
    assert distinct_n(samples, 2) == 3 / 4
    # trigrams: 2 total, 2 unique
    assert distinct_n(samples, 3) == 1.0
    assert distinct_n(samples, 4) == 0.0  # no 4-grams at all
    assert distinct_n(samples, [1, 2]) == {1: 5 / 7, 2: 3 / 4}


def test_ngrams_do_not_cross_samples():
    assert distinct_n([["a"], ["b"]], 2) == 0.0
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == 0.5


def test_unique_samples_and_duplicates():
    samples = [["a", "b"], ["a", "b"], ["b", "a"], []]
    assert unique_samples(samples) == 3
    assert unique_samples(["x y", "x y", "z"]) == 2
    assert unique_samples([]) == 0
    assert distinct_n(samples, 1) == 2 / 6


def test_real_chinese_text(shared_data):
    with open(shared_data / "poetry_zh" / "shi.txt", encoding="utf-8") as f:
        poems = [tokenize_for_metrics(next(f), "char") for _ in range(200)]
    d1, d2 = distinct_n(poems, 1), distinct_n(poems, 2)
    assert 0 < d1 < d2 <= 1  # characters repeat more than character pairs
    assert distinct_n(poems + poems, 2) == pytest.approx(d2 / 2)
    assert unique_samples(poems + poems[:10]) == unique_samples(poems)


def test_errors():
    with pytest.raises(ValueError, match="n"):
        distinct_n([["a"]], 0)
    with pytest.raises(ValueError, match="n"):
        distinct_n([["a"]], [])
    with pytest.raises(TypeError, match="tokens"):
        distinct_n(["a raw string"], 1)
    assert distinct_n([], 2) == 0.0


@settings(max_examples=200, deadline=None)
@given(samples=st.lists(st.lists(st.sampled_from("abc"), max_size=7), max_size=8),
       n=st.integers(1, 4))
def test_property_matches_naive(samples, n):
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    expected = len(set(grams)) / len(grams) if grams else 0.0
    assert distinct_n(samples, n) == expected
    assert 0.0 <= expected <= 1.0


def test_numpy_orders_are_taken_and_a_bool_refused():
    import numpy as np

    assert distinct_n([list("abab")], np.int64(2)) == distinct_n([list("abab")], 2) == 2 / 3
    assert distinct_n([list("abab")], np.array([1, 2])) == {1: 0.5, 2: 2 / 3}
    with pytest.raises(TypeError, match="n-gram order"):
        distinct_n([list("abab")], True)
