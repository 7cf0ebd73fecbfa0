"""The metric suite shared by the training callback, ``gan-writer evaluate`` and ``compare``.

Given decoded samples and reference texts it computes BLEU-n against all references
(Texygen protocol), leave-one-out Self-BLEU-n, distinct-n and the number of unique
samples, on word or character tokens (never BPE pieces); :func:`sample_texts` draws the
samples reproducibly; :func:`unigram_nll` gives the trivial baseline NLL to beat.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Iterable, Sequence

import torch

from gan_writer.metrics.bleu import BleuReference, bleu, self_bleu
from gan_writer.metrics.degenerate import DegenerateSamplesWarning, degeneracy, degeneracy_warnings
from gan_writer.metrics.distinct import distinct_n, unique_samples
from gan_writer.metrics.text_tokenize import MetricTokenizer
from gan_writer.models.base import CausalGenerator

BLEU_ORDERS = (2, 3, 4, 5)
DISTINCT_ORDERS = (1, 2, 3, 4)


def metric_tokenizer(scheme: str | None, lowercase: bool = False) -> MetricTokenizer:
    """The metric tokenizer of a corpus: ``char`` (Chinese), ``word`` (English) or ``ids``.

    ``ids`` (the oracle's space-separated token numbers) is scored as whitespace tokens.
    """
    if scheme in (None, "ids"):
        return MetricTokenizer("whitespace", False)
    return MetricTokenizer(scheme, lowercase and scheme == "word")


def text_metrics(
    samples: Sequence[str],
    references: Sequence[Sequence[str]] | BleuReference | None,
    tokenizer: MetricTokenizer,
    bleu_orders: Iterable[int] = BLEU_ORDERS,
    distinct_orders: Iterable[int] = DISTINCT_ORDERS,
) -> dict[str, float]:
    """BLEU-n, Self-BLEU-n, distinct-n and unique samples of decoded ``samples``.

    Args:
        samples: decoded generated texts (``S`` of them, ``S >= 2`` for Self-BLEU).
        references: tokenized reference sentences (the test split), a prebuilt
            :class:`BleuReference`, or None to skip BLEU.
        tokenizer: how to split ``samples`` into metric tokens.
        bleu_orders: n of BLEU-n and Self-BLEU-n.
        distinct_orders: n of distinct-n.

    Returns:
        ``{"bleu_2": .., "self_bleu_2": .., "distinct_1": .., "unique_samples": ..,
        "empty_samples": .., "top_sample_share": ..}`` (BLEU keys only with references;
        Self-BLEU only with at least 2 samples). Empty samples count as hypotheses of
        length 0 (BLEU 0) and are counted in ``empty_samples``; ``top_sample_share`` is
        the share of samples equal to the most frequent one.

    Warns:
        DegenerateSamplesWarning: when the samples are mostly empty, all or mostly
            identical, or mostly shorter than a BLEU order (see
            :mod:`gan_writer.metrics.degenerate`); the scores stay nltk's.
    """
    toks = tokenizer.tokenize_all(samples)
    bleu_orders, distinct_orders = list(bleu_orders), list(distinct_orders)
    out: dict[str, float] = {}
    if references is not None and toks:
        for n, v in bleu(toks, references, bleu_orders).items():
            out[f"bleu_{n}"] = float(v)
    if len(toks) >= 2:
        for n, v in self_bleu(toks, bleu_orders).items():
            out[f"self_bleu_{n}"] = float(v)
    for n in distinct_orders:
        out[f"distinct_{n}"] = float(distinct_n(toks, n))
    out["unique_samples"] = float(unique_samples([tuple(t) for t in toks]))
    d = degeneracy(toks, bleu_orders)
    out["empty_samples"] = float(d.empty_samples)
    out["top_sample_share"] = float(d.top_sample_share)
    for message in degeneracy_warnings(d):
        warnings.warn(f"metrics: {message}", DegenerateSamplesWarning, stacklevel=2)
    return out


@torch.no_grad()
def sample_texts(
    generator: CausalGenerator,
    tokenizer,
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 500,
) -> tuple[list[str], torch.Tensor]:
    """Draw ``n`` samples from the full distribution (no top-k/top-p) and decode them.

    Args:
        generator: any backend; put in eval mode for the draw and restored after.
        tokenizer: decodes ids (special tokens dropped).
        n: number of samples; drawn ``batch_size`` at a time with one seeded generator,
            so the same seed gives the same texts.
        max_new_tokens: tokens per sample at most.
        temperature: softmax temperature.

    Returns:
        ``(texts, ids)``: ``n`` decoded strings and the ``(n, T)`` ids (padded after EOS).
    """
    was_training = generator.training
    generator.eval()
    rng = torch.Generator(device=generator.device).manual_seed(seed)
    chunks = []
    try:
        for start in range(0, n, batch_size):
            chunks.append(generator.sample(min(batch_size, n - start), max_new_tokens, temperature=temperature, generator=rng))
    finally:
        generator.train(was_training)
    width = max(c.size(1) for c in chunks)
    ids = torch.cat([torch.nn.functional.pad(c, (0, width - c.size(1)), value=generator.pad_token_id) for c in chunks])
    return decode_samples(tokenizer, ids), ids


def decode_samples(tokenizer, ids: torch.Tensor) -> list[str]:
    """Decode sampled ids ``(B, T)`` to texts, dropping EOS, padding and other specials.

    A vocabulary without EOS (the oracle's fixed-length numbers, where id 0 is both BOS and
    a real token) is decoded verbatim.
    """
    keep_all = tokenizer.eos_token_id is None
    return tokenizer.batch_decode(ids.tolist(), skip_special_tokens=not keep_all)


def unigram_nll(train_rows: Iterable[Sequence[int]], eval_rows: Iterable[Sequence[int]], vocab_size: int) -> float:
    """NLL (nats per token) of a unigram model fitted on ``train_rows``, on ``eval_rows``.

    Add-one (Laplace) smoothing over ``vocab_size`` ids, so unseen tokens have finite
    cost. The baseline a trained generator's ``val/nll`` must clearly beat. Rows are
    token-id lists including EOS, as the data module encodes them.

    Raises:
        ValueError: if ``eval_rows`` holds no token.
    """
    counts = Counter(t for row in train_rows for t in row)
    total = sum(counts.values()) + vocab_size
    nll, n = 0.0, 0
    for row in eval_rows:
        for t in row:
            nll -= math.log((counts.get(t, 0) + 1) / total)
            n += 1
    if n == 0:
        raise ValueError("unigram_nll: eval_rows holds no token")
    return nll / n
