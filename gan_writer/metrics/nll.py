"""Negative log-likelihood metrics in nats per token: NLL-test, NLL-gen and NLL-oracle.

NLL-test is the generator's mean NLL on the held-out split; NLL-gen the same on the
training split (papers mix the two up, so they are named apart); NLL-oracle is an oracle
model's NLL of the generator's own samples (Yu et al. 2017, SeqGAN synthetic experiment).
All are token-weighted means over real tokens: padding is never counted, EOS is.
"""
from __future__ import annotations

from typing import Iterable

import torch

from gan_writer.models.base import CausalGenerator


def token_nll(log_probs: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of negative log-probabilities over real tokens, and their number.

    Args:
        log_probs: ``(B, T)`` per-token log-probabilities (nats).
        attention_mask: ``(B, T)`` 1 for real tokens, 0 for padding.

    Returns:
        ``(total_nll, n_tokens)``: 0-dim tensors; their ratio is NLL in nats per token.
    """
    mask = attention_mask.to(log_probs.dtype)
    return -(log_probs * mask).sum(), mask.sum()


@torch.no_grad()
def corpus_nll(
    model: CausalGenerator,
    batches: Iterable[dict[str, torch.Tensor]],
) -> float:
    """Token-weighted mean NLL (nats per token) of ``model`` over batches at temperature 1.

    Args:
        model: any generator backend (``log_probs``).
        batches: dicts with ``ids`` ``(B, T)`` and ``attention_mask`` ``(B, T)``.

    Returns:
        NLL in nats per token (a corpus-level mean, not a mean of batch means).

    Raises:
        ValueError: if the batches hold no real token.
    """
    total, count = 0.0, 0.0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            ids = batch["ids"].to(model.device)
            mask = batch["attention_mask"].to(model.device)
            nll, n = token_nll(model.log_probs(ids, mask), mask)
            total += float(nll)
            count += float(n)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("corpus_nll got no real tokens (empty split or all-padding batches)")
    return total / count


@torch.no_grad()
def nll_oracle(oracle: CausalGenerator, ids: torch.Tensor, attention_mask: torch.Tensor, batch_size: int = 1000) -> float:
    """The oracle's NLL in nats per token of sequences sampled from a generator.

    Args:
        oracle: a model with ``log_probs`` (e.g. :class:`gan_writer.models.oracle.OracleLSTM`).
        ids: ``(N, T)`` generated token ids.
        attention_mask: ``(N, T)`` real-token mask.
        batch_size: rows scored at once.
    """
    return corpus_nll(
        oracle,
        ({"ids": ids[i : i + batch_size], "attention_mask": attention_mask[i : i + batch_size]}
         for i in range(0, ids.size(0), batch_size)),
    )
