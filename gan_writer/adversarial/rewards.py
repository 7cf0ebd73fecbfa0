"""Per-token rewards from a discriminator: Monte Carlo rollouts, prefix scores, or the
sequence score. Pure functions over tensors (the models are only called, under no_grad).

Shapes: ``B`` sequences, ``T`` positions; ``ids`` ``(B, T)`` sampled tokens (no BOS),
``attention_mask`` ``(B, T)`` 1 real (EOS included) / 0 padding. Every function returns
``(rewards (B, T) float32, scores (B,) float32)``: the per-token rewards (0 at padding) and
the discriminator's probability ``D(y)`` that each whole sequence is real (MaliGAN's weights
and the logs use it).

``reward`` kinds (:data:`REWARDS`):

* ``mc_rollout`` — SeqGAN (Yu et al. 2017): token ``t`` gets the mean ``D`` of ``R``
  completions of ``y_1..y_t`` (:func:`gan_writer.adversarial.rollout.mc_rollout_rewards`);
  about ``B·R·T²/2`` sampled tokens per step.
* ``prefix`` — ScratchGAN (de Masson d'Autume et al. 2019): a causal discriminator
  (:class:`gan_writer.models.prefix_discriminator.PrefixDiscriminator`) scores every prefix in
  one forward pass, ``r_t = D(y_1..y_t)``, turned into discounted returns
  ``G_t = Σ_{s≥t} γ^{s−t} r_s`` (``gamma``; 0 = the score itself; ScratchGAN: 0.23).
* ``sequence`` — ``D(y)`` for every token of ``y`` (REINFORCE on the sequence reward).
"""
from __future__ import annotations

from typing import Any

import torch

from gan_writer.adversarial.advantages import discounted_returns
from gan_writer.adversarial.rollout import _score, eval_mode, mc_rollout_rewards

__all__ = ["REWARDS", "sequence_rewards", "prefix_rewards", "compute_rewards"]

REWARDS = ("mc_rollout", "prefix", "sequence")


def _broadcast(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    m = attention_mask.to(scores.device) != 0
    return torch.where(m, scores.unsqueeze(1).expand_as(m), torch.zeros((), device=scores.device))


@torch.no_grad()
def sequence_rewards(discriminator: Any, ids: torch.Tensor, attention_mask: torch.Tensor):
    """``D(y)`` for every real token of ``y``: ``(rewards (B, T), scores (B,))``."""
    with eval_mode(discriminator):
        scores = _score(discriminator, ids, attention_mask.long())
    return _broadcast(scores, attention_mask), scores


@torch.no_grad()
def prefix_rewards(discriminator: Any, ids: torch.Tensor, attention_mask: torch.Tensor, gamma: float = 0.0):
    """Discounted returns of the prefix scores ``r_t = sigmoid(prefix_logits)[:, t]``.

    Args:
        discriminator: has ``prefix_logits(ids, mask) -> (B, T)`` (a
            :class:`~gan_writer.models.prefix_discriminator.PrefixDiscriminator`).
        ids, attention_mask: ``(B, T)``.
        gamma: discount in [0, 1].

    Returns:
        ``(returns (B, T), scores (B,))``; ``scores`` is the prefix score at the last real token.

    Raises:
        ValueError: if the discriminator has no ``prefix_logits``.
    """
    if not hasattr(discriminator, "prefix_logits"):
        raise ValueError(
            f"reward 'prefix' needs a prefix discriminator (kind prefix_lstm or prefix_transformer), got "
            f"{type(discriminator).__name__}"
        )
    with eval_mode(discriminator):
        probs = torch.sigmoid(discriminator.prefix_logits(ids, attention_mask.long())).float()
    if probs.size(1) < ids.size(1):  # trailing all-padding columns trimmed by the discriminator
        probs = torch.nn.functional.pad(probs, (0, ids.size(1) - probs.size(1)))
    m = attention_mask.to(probs.device) != 0
    probs = torch.where(m, probs, torch.zeros((), device=probs.device))
    last = (m.sum(1) - 1).clamp(min=0)
    scores = probs[torch.arange(ids.size(0), device=probs.device), last]
    return discounted_returns(probs, attention_mask, gamma), scores


def compute_rewards(
    kind: str,
    discriminator: Any,
    ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    policy: Any = None,
    state: Any = None,
    rollout_num: int = 16,
    rollout_batching: str = "per_prefix",
    temperature: float = 1.0,
    max_rollout_batch: int | None = None,
    gamma: float = 0.0,
    generator: torch.Generator | None = None,
):
    """Rewards of ``kind`` (see the module docstring): ``(rewards (B, T), scores (B,))``.

    ``policy``, ``state``, ``rollout_num``, ``rollout_batching``, ``temperature``,
    ``max_rollout_batch`` and ``generator`` are used by ``mc_rollout`` only (see
    :func:`~gan_writer.adversarial.rollout.mc_rollout_rewards`); ``gamma`` by ``prefix``.

    Raises:
        ValueError: unknown ``kind``, or ``prefix`` with a sequence discriminator.
    """
    if kind == "sequence":
        return sequence_rewards(discriminator, ids, attention_mask)
    if kind == "prefix":
        return prefix_rewards(discriminator, ids, attention_mask, gamma)
    if kind != "mc_rollout":
        raise ValueError(f"reward must be one of {REWARDS}, got {kind!r}")
    rewards = mc_rollout_rewards(
        policy, discriminator, ids, attention_mask, rollout_num, state=state, temperature=temperature,
        max_rollout_batch=max_rollout_batch, batching=rollout_batching, generator=generator,
    )
    m = attention_mask != 0
    last = (m.sum(1) - 1).clamp(min=0)
    return rewards, rewards[torch.arange(ids.size(0), device=rewards.device), last]  # D(y) sits at the last token
