"""BLEU-n and Self-BLEU-n for generated text, exact to nltk and vectorised with numpy.

Protocol (Texygen, Zhu et al. 2018, "Texygen: A Benchmarking Platform for Text
Generation Models"): every generated sample is a hypothesis scored against *all*
reference sentences with ``nltk.translate.bleu_score.sentence_bleu``, uniform weights
``(1/n,) * n`` and Chen & Cherry (2014) smoothing ``method1`` (epsilon 0.1 added to
zero-count numerators); the reported BLEU-n is the mean over hypotheses. BLEU itself is
Papineni et al. (2002): clipped ("modified") n-gram precisions, geometric mean and a
brevity penalty against the closest reference length (ties to the shorter one).

Self-BLEU-n scores each sample against all *other* samples (leave-one-out, by index:
a duplicate of sample i is still a reference for i); nothing is cached between calls.

The arithmetic replicates nltk 3.10's ``corpus_bleu`` step by step (integer counts,
``num / den`` precisions, ``math.log`` / ``math.fsum`` / ``math.exp``): scores equal nltk's
bit for bit in practice, within 1e-12 by test. Cost grows with the number of n-grams, not
hypotheses x references: n-grams get exact dense integer ids (no hashing), and per-order
max reference counts and the sorted reference lengths are computed once
(:class:`BleuReference`) and reused for every order and call.
"""
from __future__ import annotations

import math
import sys
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np

__all__ = ["BleuReference", "sentence_bleu_scores", "bleu", "corpus_bleu",
           "self_bleu_scores", "self_bleu"]

Orders = Union[int, Sequence[int]]
_EPSILON = 0.1  # nltk SmoothingFunction().method1 default (Chen & Cherry 2014)
_SMOOTHINGS = ("method1", "method0")


# --------------------------------------------------------------------------- helpers
def _orders(n: Orders) -> Tuple[List[int], bool]:
    """Normalise ``n`` to a list of orders; the flag says whether a scalar was given."""
    scalar = isinstance(n, (int, np.integer))
    orders = [int(n)] if scalar else [int(k) for k in n]
    if not orders:
        raise ValueError("n: give at least one n-gram order")
    for k in orders:
        if k < 1:
            raise ValueError(f"n: n-gram orders must be >= 1, got {k}")
    return orders, scalar


def _check_smoothing(smoothing: str) -> None:
    if smoothing not in _SMOOTHINGS:
        raise ValueError(f"smoothing: expected one of {_SMOOTHINGS}, got {smoothing!r}")


def _check_sentences(sentences: Iterable, name: str) -> List[Sequence]:
    sentences = list(sentences)
    for s in sentences:
        if isinstance(s, (str, bytes)):
            raise TypeError(f"{name}: each sentence must be a sequence of tokens, got a string; "
                            "tokenize it first (gan_writer.metrics.tokenize_for_metrics)")
    return sentences


def _layout(lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sentence index of each flat token position and tokens left in its sentence."""
    sid = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    return sid, np.repeat(np.cumsum(lengths), lengths) - np.arange(len(sid), dtype=np.int64)


def _encode_closed(sentences: List[Sequence]):
    """Token ids over the sentences' own vocabulary: (ids, lengths, vocab)."""
    vocab: Dict = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for s in sentences for t in s), np.int64)
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    return ids, lengths, vocab


def _dense_ngrams(ids: np.ndarray, rem: np.ndarray, vocab_size: int, max_n: int):
    """Exact dense ids of every k-gram, k = 1..max_n, of a closed corpus.

    Yields ``(k, pos, gram, codes)``: start positions, dense gram ids (0..N_k-1) and the
    sorted unique codes ``parent_id * V + last_token`` (None for k = 1, where the id is
    the token id) that :meth:`BleuReference` uses to look hypothesis n-grams up.
    """
    pos = np.arange(len(ids), dtype=np.int64)
    full = ids
    yield 1, pos, ids, None
    for k in range(2, max_n + 1):
        pos = pos[rem[pos] >= k]
        codes = full[pos] * vocab_size + ids[pos + k - 1]
        uniq, gram = np.unique(codes, return_inverse=True)
        gram = gram.reshape(-1).astype(np.int64, copy=False)
        full = np.full(len(ids), -1, dtype=np.int64)
        full[pos] = gram
        yield k, pos, gram, uniq


def _pair_counts(sent: np.ndarray, gram: np.ndarray, n_sent: int):
    """Count each (gram, sentence) pair: returns gram, sentence, count sorted by gram."""
    key, count = np.unique(gram * n_sent + sent, return_counts=True)
    return key // n_sent, key % n_sent, count.astype(np.int64)


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values in a sorted array."""
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def _closest(sorted_lengths: np.ndarray, hyp_len: np.ndarray) -> np.ndarray:
    """nltk ``closest_ref_length``: nearest length, ties resolved to the shorter one."""
    j = np.searchsorted(sorted_lengths, hyp_len)
    m = len(sorted_lengths)
    lo = sorted_lengths[np.maximum(j - 1, 0)]
    hi = sorted_lengths[np.minimum(j, m - 1)]
    take_lo = (j > 0) & ((j == m) | (hyp_len - lo <= hi - hyp_len))
    return np.where(take_lo, lo, hi)


def _exact_map(values: np.ndarray, fn) -> np.ndarray:
    """Apply a ``math`` function elementwise via the unique values (bit-exact to libm)."""
    uniq, inv = np.unique(values, return_inverse=True)
    return np.array([fn(v) for v in uniq.tolist()], np.float64)[inv.reshape(-1)].reshape(values.shape)


def _scores(num: np.ndarray, hyp_len: np.ndarray, ref_len: np.ndarray,
            orders: List[int], smoothing: str) -> Dict[int, np.ndarray]:
    """nltk ``sentence_bleu`` arithmetic, vectorised over hypotheses.

    ``num[h, k-1]`` is the clipped k-gram match count of hypothesis h, ``hyp_len`` its
    length and ``ref_len`` the closest reference length.
    """
    n_hyp, top = len(hyp_len), max(orders)
    if n_hyp == 0:
        return {n: np.zeros(0) for n in orders}
    den = np.maximum(1, hyp_len[:, None] - np.arange(top)[None, :])  # max(1, L - k + 1)
    numk = num[:, :top]
    zero_fill = _EPSILON / den if smoothing == "method1" else np.full(den.shape, sys.float_info.min)
    logp = _exact_map(np.where(numk > 0, numk / den, zero_fill), math.log)
    # brevity penalty: 1 if L > r, else exp(1 - r / L); L == 0 scores 0 anyway (no unigrams)
    short = (hyp_len <= ref_len) & (hyp_len > 0)
    bp = np.ones(n_hyp)
    if short.any():
        ratio = ref_len[short] / hyp_len[short]
        bp[short] = _exact_map(1.0 - ratio, math.exp)
    no_match = numk[:, 0] == 0
    out = {}
    for n in orders:
        terms = (logp[:, :n] * (1.0 / n)).tolist()
        s = np.fromiter(map(math.fsum, terms), dtype=np.float64, count=n_hyp)
        score = bp * _exact_map(s, math.exp)
        score[no_match] = 0.0
        out[n] = score
    return out


def _corpus_score(num: np.ndarray, hyp_len: np.ndarray, ref_len: np.ndarray,
                  n: int, smoothing: str) -> float:
    """nltk ``corpus_bleu`` (micro-averaged counts) with Python integers."""
    p_num = [int(num[:, k - 1].sum()) for k in range(1, n + 1)]
    p_den = [int(np.maximum(1, hyp_len - k + 1).sum()) for k in range(1, n + 1)]
    hyp_total, ref_total = int(hyp_len.sum()), int(ref_len.sum())
    if p_num[0] == 0:
        return 0.0
    bp = 1.0 if hyp_total > ref_total else math.exp(1 - ref_total / hyp_total)
    zero = (lambda d: _EPSILON / d) if smoothing == "method1" else (lambda d: sys.float_info.min)
    p = [a / d if a else zero(d) for a, d in zip(p_num, p_den)]
    return bp * math.exp(math.fsum((1.0 / n) * math.log(x) for x in p))


def _pack(result: Dict[int, object], orders: List[int], scalar: bool):
    return result[orders[0]] if scalar else {n: result[n] for n in orders}


# --------------------------------------------------------------------------- references
class BleuReference:
    """Reference statistics computed once: per-order max n-gram counts and lengths.

    Args:
        references: R reference sentences (the test split), each a sequence of
            hashable tokens (words or characters, never BPE pieces).
        max_n: highest n-gram order that will be scored (default 5, BLEU-2..5).

    Raises:
        ValueError: ``references`` is empty or ``max_n < 1``.
        TypeError: a reference is a plain string rather than a token sequence.

    Building costs O(total reference tokens x max_n log); scoring reuses it for every
    order and every call (e.g. each validation epoch).
    """

    def __init__(self, references: Sequence[Sequence[str]], max_n: int = 5):
        refs = _check_sentences(references, "references")
        if not refs:
            raise ValueError("references: need at least one reference sentence")
        if int(max_n) < 1:
            raise ValueError(f"max_n: must be >= 1, got {max_n}")
        self.max_n = int(max_n)
        self.n_references = len(refs)
        ids, lengths, self._vocab = _encode_closed(refs)
        self._v = max(len(self._vocab), 1)
        self.lengths = np.unique(lengths)  # sorted set of reference lengths
        sid, rem = _layout(lengths)
        self._codes: List = []  # per order: sorted codes parent_id * V + token (k >= 2)
        self._max_count: List[np.ndarray] = []  # per order: max count in one reference
        for k, pos, gram, codes in _dense_ngrams(ids, rem, self._v, self.max_n):
            n_gram = self._v if k == 1 else len(codes)
            g, _, count = _pair_counts(sid[pos], gram, self.n_references)
            max_count = np.zeros(n_gram, dtype=np.int64)
            if len(g):
                starts = _group_starts(g)
                max_count[g[starts]] = np.maximum.reduceat(count, starts)
            self._codes.append(codes)
            self._max_count.append(max_count)

    def match_counts(self, hypotheses: Sequence[Sequence[str]], max_n: int | None = None):
        """Clipped match counts of each hypothesis.

        Returns:
            ``(num, hyp_len, ref_len)``: int64 arrays of shape (H, max_n), (H,), (H,):
            ``num[h, k-1]`` = sum over the k-grams g of hypothesis h of
            min(count_h(g), max over references of count_ref(g)); the hypothesis length
            in tokens and the closest reference length (ties to the shorter).
        """
        top = self.max_n if max_n is None else int(max_n)
        if top > self.max_n:
            raise ValueError(f"n: order {top} exceeds this reference's max_n={self.max_n}")
        hyps = _check_sentences(hypotheses, "hypotheses")
        get = self._vocab.get
        ids = np.fromiter((get(t, -1) for s in hyps for t in s), dtype=np.int64)
        hyp_len = np.fromiter((len(s) for s in hyps), dtype=np.int64, count=len(hyps))
        sid, rem = _layout(hyp_len)
        n_hyp = len(hyps)  # unknown tokens (-1) can never match a reference n-gram
        num = np.zeros((n_hyp, top), dtype=np.int64)
        pos = np.flatnonzero(ids >= 0)
        gram, full = ids[pos], ids
        for k in range(1, top + 1):
            if k > 1:  # extend (k-1)-grams known to the references by one known token
                pos = pos[rem[pos] >= k]
                pos = pos[ids[pos + k - 1] >= 0]
                nxt = ids[pos + k - 1]
                codes_k = self._codes[k - 1]
                code = full[pos] * self._v + nxt
                idx = np.minimum(np.searchsorted(codes_k, code), max(len(codes_k) - 1, 0))
                found = codes_k[idx] == code if len(codes_k) else np.zeros(len(pos), bool)
                pos, gram = pos[found], idx[found]
                full = np.full(len(ids), -1, dtype=np.int64)
                full[pos] = gram
            if len(pos):
                g, h, count = _pair_counts(sid[pos], gram, n_hyp)
                clipped = np.minimum(count, self._max_count[k - 1][g])
                num[:, k - 1] = np.bincount(h, weights=clipped, minlength=n_hyp).astype(np.int64)
        return num, hyp_len, _closest(self.lengths, hyp_len)


def _as_reference(references, top: int) -> BleuReference:
    return references if isinstance(references, BleuReference) else BleuReference(references, top)


# --------------------------------------------------------------------------- BLEU
def sentence_bleu_scores(hypotheses: Sequence[Sequence[str]],
                         references: Union[Sequence[Sequence[str]], BleuReference],
                         n: Orders = 4, smoothing: str = "method1"):
    """Per-hypothesis BLEU-n, each hypothesis against *all* references.

    Equals ``nltk.translate.bleu_score.sentence_bleu(references, hyp, weights=(1/n,)*n,
    smoothing_function=SmoothingFunction().method1)`` for every hypothesis (Texygen).

    Args:
        hypotheses: H generated sentences, each a sequence of tokens (may be empty).
        references: R reference token sequences, or a prebuilt :class:`BleuReference`.
        n: an order (>= 1) or a sequence of orders, e.g. ``(2, 3, 4, 5)``.
        smoothing: ``"method1"`` (epsilon 0.1, Chen & Cherry 2014) or ``"method0"``
            (nltk's unsmoothed default: zero precisions become ``sys.float_info.min``).

    Returns:
        float64 array (H,) of scores in [0, 1] for a scalar ``n``; otherwise a dict
        ``{order: array (H,)}``.

    Raises:
        ValueError: an order < 1 or above a prebuilt reference's ``max_n``; empty
            ``references``; unknown ``smoothing``.
        TypeError: a sentence is a plain string.
    """
    orders, scalar = _orders(n)
    _check_smoothing(smoothing)
    ref = _as_reference(references, max(orders))
    num, hyp_len, ref_len = ref.match_counts(hypotheses, max(orders))
    return _pack(_scores(num, hyp_len, ref_len, orders, smoothing), orders, scalar)


def bleu(hypotheses: Sequence[Sequence[str]],
         references: Union[Sequence[Sequence[str]], BleuReference],
         n: Orders = 4, smoothing: str = "method1"):
    """Texygen BLEU-n: mean over hypotheses of :func:`sentence_bleu_scores`.

    Returns a float for a scalar ``n`` or ``{order: float}``; the mean is
    ``math.fsum(scores) / H``. Raises ValueError for an empty ``hypotheses`` list, plus
    the errors of :func:`sentence_bleu_scores`.
    """
    hyps = _check_sentences(hypotheses, "hypotheses")
    if not hyps:
        raise ValueError("hypotheses: need at least one hypothesis to average over")
    orders, scalar = _orders(n)
    per = sentence_bleu_scores(hyps, references, orders, smoothing)
    return _pack({k: math.fsum(v.tolist()) / len(hyps) for k, v in per.items()}, orders, scalar)


def corpus_bleu(hypotheses: Sequence[Sequence[str]],
                references: Union[Sequence[Sequence[str]], BleuReference],
                n: Orders = 4, smoothing: str = "method1"):
    """Corpus-level BLEU-n (Papineni et al. 2002 micro-average), all references per hypothesis.

    Equals ``nltk.translate.bleu_score.corpus_bleu([references] * H, hypotheses,
    weights=(1/n,)*n, smoothing_function=...)``: clipped counts, n-gram totals and
    closest reference lengths are summed over hypotheses before the precisions and the
    brevity penalty are taken. Returns a float, or ``{order: float}`` for several orders.
    Raises ValueError for empty ``hypotheses``, plus those of :func:`sentence_bleu_scores`.
    """
    hyps = _check_sentences(hypotheses, "hypotheses")
    if not hyps:
        raise ValueError("hypotheses: need at least one hypothesis")
    orders, scalar = _orders(n)
    _check_smoothing(smoothing)
    ref = _as_reference(references, max(orders))
    num, hyp_len, ref_len = ref.match_counts(hyps, max(orders))
    res = {k: _corpus_score(num, hyp_len, ref_len, k, smoothing) for k in orders}
    return _pack(res, orders, scalar)


# --------------------------------------------------------------------------- Self-BLEU
def _self_match_counts(samples: List[Sequence], top: int):
    """Leave-one-out clipped counts: references of sample i are all samples j != i."""
    ids, lengths, vocab = _encode_closed(samples)
    n_s = len(samples)
    sid, rem = _layout(lengths)
    num = np.zeros((n_s, top), dtype=np.int64)
    for k, pos, gram, _ in _dense_ngrams(ids, rem, max(len(vocab), 1), top):
        if not len(pos):
            continue
        g, s, count = _pair_counts(sid[pos], gram, n_s)
        order = np.lexsort((-count, g))  # within each gram: largest count first
        gs, cs, ss = g[order], count[order], s[order]
        starts = _group_starts(gs)
        second = np.minimum(starts + 1, len(gs) - 1)
        has_second = (starts + 1 < len(gs)) & (gs[second] == gs[starts])
        n_gram = int(gs[-1]) + 1
        top1, top2, arg1 = (np.zeros(n_gram, np.int64) for _ in range(3))  # max, 2nd, argmax
        top1[gs[starts]] = cs[starts]
        arg1[gs[starts]] = ss[starts]
        top2[gs[starts]] = np.where(has_second, cs[second], 0)
        others_max = np.where(arg1[g] == s, top2[g], top1[g])
        clipped = np.minimum(count, others_max)
        num[:, k - 1] = np.bincount(s, weights=clipped, minlength=n_s).astype(np.int64)
    # closest length among the other samples
    uniq, per_len = np.unique(lengths, return_counts=True)
    j = np.searchsorted(uniq, lengths)
    alone = per_len[j] == 1
    lo, hi = uniq[np.maximum(j - 1, 0)], uniq[np.minimum(j + 1, len(uniq) - 1)]
    take_lo = (j > 0) & ((j + 1 >= len(uniq)) | (lengths - lo <= hi - lengths))  # ties: shorter
    ref_len = np.where(alone, np.where(take_lo, lo, hi), lengths)
    return num, lengths, ref_len


def self_bleu_scores(samples: Sequence[Sequence[str]], n: Orders = 4,
                     smoothing: str = "method1"):
    """Per-sample Self-BLEU-n (Zhu et al. 2018), leave-one-out, recomputed on every call.

    Sample i is the hypothesis and every sample j != i a reference; equals
    ``sentence_bleu(samples[:i] + samples[i+1:], samples[i], (1/n,)*n, method1)``.
    Duplicated samples count as separate references (a repeated sample scores 1).

    Args:
        samples: S >= 2 generated sentences, each a sequence of tokens.
        n, smoothing: as in :func:`sentence_bleu_scores`.

    Returns:
        float64 array (S,), or ``{order: array (S,)}`` for several orders.

    Raises:
        ValueError: fewer than 2 samples, an order < 1, unknown ``smoothing``.
        TypeError: a sample is a plain string.
    """
    orders, scalar = _orders(n)
    _check_smoothing(smoothing)
    samp = _check_sentences(samples, "samples")
    if len(samp) < 2:
        raise ValueError(f"samples: Self-BLEU needs at least 2 samples, got {len(samp)}")
    num, hyp_len, ref_len = _self_match_counts(samp, max(orders))
    return _pack(_scores(num, hyp_len, ref_len, orders, smoothing), orders, scalar)


def self_bleu(samples: Sequence[Sequence[str]], n: Orders = 4, smoothing: str = "method1"):
    """Self-BLEU-n: mean (``math.fsum / S``) of :func:`self_bleu_scores`; float or dict."""
    orders, scalar = _orders(n)
    per = self_bleu_scores(samples, orders, smoothing)
    res = {k: math.fsum(v.tolist()) / len(v) for k, v in per.items()}
    return _pack(res, orders, scalar)
