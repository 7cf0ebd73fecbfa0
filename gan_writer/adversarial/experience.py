"""One generator step of the adversarial stage as two functions: :func:`make_experience`
(sample, reward, shape, baseline; no gradient) and :func:`policy_loss` (the loss of the
current policy on that experience). Every estimator is a choice of :class:`EstimatorConfig`.

Shapes: ``B`` sequences, ``T`` positions; masks are 1 for real tokens (EOS included).

Options (each validated with an error naming ``model.init_args.<key>``):

* ``reward``: ``mc_rollout`` | ``prefix`` | ``sequence`` (:mod:`gan_writer.adversarial.rewards`);
* ``advantage``: ``none`` | ``ema`` (running mean reward) | ``leave_one_out`` (RLOO) |
  ``group_norm`` (GRPO), over groups of ``group_size`` rows (0 = the whole batch)
  (:mod:`gan_writer.adversarial.advantages`);
* ``loss``: ``reinforce`` | ``ppo_clip`` (``clip_eps``, several epochs over the stored
  sampling log-probs) | ``maligan`` (normalised ``D/(1−D)`` weights as advantages, so
  ``advantage`` must be ``none``) (:mod:`gan_writer.adversarial.losses`);
* ``loss_aggregation``: ``token_mean`` | ``sequence_mean`` | ``sum`` (SeqGAN);
* ``kl_penalty`` with ``kl_coef`` ``β`` > 0, to the frozen MLE generator: ``reward``
  subtracts ``β·Σ_{s≥t} k1_s`` from the return of token ``t`` (Ziegler et al. 2019; k1 =
  ``log π − log π_ref`` of the sampled tokens), so the gradient is that of
  ``E[R] − β·KL(π ‖ π_ref)`` over whole sequences; ``loss`` adds ``β·k3`` per token to the
  loss, aggregated like it (GRPO, Shao et al. 2024; k3 = ``e^Δ − Δ − 1``, ``Δ = log π_ref − log π``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from gan_writer.adversarial.advantages import (
    Reduce, group_ids_for, group_normalized_advantages, identity, leave_one_out_baseline,
)
from gan_writer.adversarial.losses import (
    AGGREGATIONS, EMABaseline, aggregate, kl_k1, kl_k3, maligan_advantages, policy_gradient_loss, ppo_clip_loss,
)
from gan_writer.adversarial.rewards import REWARDS, compute_rewards
from gan_writer.adversarial.rollout import ROLLOUT_BATCHING, eval_mode, sample_with_state
from gan_writer.sampling import mask_after_eos

__all__ = ["ADVANTAGES", "LOSSES", "KL_PENALTIES", "EstimatorConfig", "Experience", "make_experience", "policy_loss"]

ADVANTAGES = ("none", "ema", "leave_one_out", "group_norm")
LOSSES = ("reinforce", "ppo_clip", "maligan")
KL_PENALTIES = ("reward", "loss")
_CHOICES = {"reward": REWARDS, "advantage": ADVANTAGES, "loss": LOSSES, "loss_aggregation": AGGREGATIONS,
            "kl_penalty": KL_PENALTIES, "rollout_batching": ROLLOUT_BATCHING}


@dataclass
class EstimatorConfig:
    """The estimator of a generator step (see the module docstring for each option)."""

    reward: str = "mc_rollout"
    advantage: str = "none"
    loss: str = "reinforce"
    loss_aggregation: str = "token_mean"
    group_size: int = 0
    gamma: float = 0.0
    kl_coef: float = 0.0
    kl_penalty: str = "reward"
    clip_eps: float = 0.2
    ppo_epochs: int = 1
    rollout_num: int = 16
    rollout_batching: str = "per_prefix"
    temperature: float = 1.0
    max_rollout_batch: int | None = None

    def validate(self, batch_size: int, prefix: str = "model.init_args.", world_size: int = 1) -> None:
        """Raise ``ValueError`` naming ``<prefix><key>`` for a bad choice or combination.

        ``batch_size``: rows per rank; ``world_size``: ranks (a whole-batch group, ``group_size``
        0, spans them: the group statistics are summed over the ranks); 0 = not known yet (the
        size of a whole-batch group is not checked)."""
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ValueError(f"{prefix}{key} must be one of {choices}, got {getattr(self, key)!r}")
        if self.group_size < 0 or (self.group_size and batch_size % self.group_size):
            raise ValueError(f"{prefix}group_size must be 0 (whole batch) or divide g_batch_size={batch_size}, "
                             f"got {self.group_size}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"{prefix}gamma must be in [0, 1] (0 = each prefix score alone), got {self.gamma}")
        if self.gamma and self.reward != "prefix":
            raise ValueError(f"{prefix}gamma discounts the per-prefix scores of reward=prefix; it has no effect with "
                             f"reward={self.reward!r}: set {prefix}gamma=0, or {prefix}reward=prefix")
        if self.clip_eps <= 0:
            raise ValueError(f"{prefix}clip_eps must be > 0 (PPO: 0.2), got {self.clip_eps}")
        if self.kl_coef < 0:
            raise ValueError(f"{prefix}kl_coef must be >= 0 (0 = no KL penalty), got {self.kl_coef}")
        if self.loss == "maligan" and self.advantage != "none":
            raise ValueError(f"{prefix}loss=maligan normalises its own weights (its baseline is their mean): set "
                             f"{prefix}advantage=none, got {self.advantage!r}")
        if self.loss == "maligan" and self.kl_coef and self.kl_penalty == "reward":
            raise ValueError(f"{prefix}loss=maligan ignores rewards: use {prefix}kl_penalty=loss with kl_coef")
        group_rows = self.group_size or (batch_size * world_size if world_size else 2)  # 0 ranks: not known yet
        if group_rows < 2 and (self.advantage in ("group_norm", "leave_one_out") or self.loss == "maligan"):
            what = "loss=maligan" if self.loss == "maligan" else f"advantage={self.advantage}"
            raise ValueError(f"{prefix}{what} compares the samples of a group: it needs >= 2 rows per group, got "
                             f"{group_rows} ({prefix}group_size={self.group_size}, g_batch_size={batch_size}"
                             f"{f', {world_size} ranks' if world_size > 1 else ''}); one row has no baseline or a zero "
                             "gradient")
        if self.ppo_epochs < 1 or (self.ppo_epochs > 1 and self.loss != "ppo_clip"):
            raise ValueError(f"{prefix}ppo_epochs must be >= 1, and > 1 only with {prefix}loss=ppo_clip "
                             f"(REINFORCE is on-policy); got {self.ppo_epochs} with loss={self.loss!r}")

    @classmethod
    def from_hparams(cls, hparams: Any) -> "EstimatorConfig":
        """The fields of ``hparams`` (a dict or namespace) that name options of this class."""
        get = hparams.get if isinstance(hparams, dict) else lambda k, d: getattr(hparams, k, d)
        return cls(**{f.name: get(f.name, f.default) for f in fields(cls)})


@dataclass
class Experience:
    """One batch of sampled experience (all tensors detached).

    Attributes:
        ids: ``(B, T)`` int64 samples; mask: ``(B, T)`` int64 real-token mask.
        log_probs: ``(B, T)`` log-probs at sampling time, at the sampling temperature (PPO's
            ``π_old``), 0 at padding.
        ref_log_probs: ``(B, T)`` the same under the frozen MLE generator.
        rewards: ``(B, T)`` per-token rewards/returns of the chosen ``reward`` (before the KL
            penalty), 0 at padding.
        advantages: ``(B, T)`` what multiplies ``∇ log π`` (after KL shaping and baseline).
        group_ids: ``(B,)`` int64 group of each row.
        scores: ``(B,)`` ``D(y)`` of each whole sequence.
        kl: ``(B, T)`` k1 ``log π − log π_ref`` per token, 0 at padding.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    ref_log_probs: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    group_ids: torch.Tensor
    scores: torch.Tensor
    kl: torch.Tensor


def _kl_to_go(kl: torch.Tensor) -> torch.Tensor:
    """``Σ_{s ≥ t} kl_s`` per row, ``(B, T)``."""
    return kl.flip(1).cumsum(1).flip(1)


@torch.no_grad()
def make_experience(
    generator: Any,
    discriminator: Any,
    config: EstimatorConfig,
    *,
    batch_size: int,
    max_length: int,
    reference: Any,
    rollout_policy: Any = None,
    ema: EMABaseline | None = None,
    rng: torch.Generator | None = None,
    reduce: Reduce = identity,
) -> Experience:
    """Sample ``batch_size`` sequences from ``generator`` and turn them into :class:`Experience`.

    Args:
        generator: the policy (sampled in eval mode at ``config.temperature``).
        discriminator: scores samples (a prefix discriminator for ``reward: prefix``).
        config: the estimator.
        batch_size: ``B``; max_length: ``T``, tokens drawn per row.
        reference: the frozen MLE generator (``ref_log_probs``, KL).
        rollout_policy: ``mc_rollout`` completions from this (a delayed copy); ``None``: the
            generator itself, reusing its sampling decoder state.
        ema: the running baseline for ``advantage: ema`` (read, then updated with this batch;
            its first update starts it at this batch's mean).
        rng: ``torch.Generator`` for sampling and rollouts.
        reduce: sums a tensor over data-parallel ranks (identity on one process): the
            ``ema`` update, and the ``leave_one_out`` / ``group_norm`` / ``maligan`` statistics
            when the group is the whole batch (``group_size`` 0), then use the global batch;
            groups of ``group_size`` rows lie on one rank and are not reduced.

    Returns:
        The experience; nothing here has a gradient.
    """
    T = config.temperature
    ids, state = sample_with_state(generator, batch_size, max_length, temperature=T, generator=rng)
    mask = mask_after_eos(ids, generator.eos_token_id)
    with eval_mode(generator, reference):
        log_probs = generator.log_probs(ids, mask, temperature=T)
        ref_log_probs = reference.log_probs(ids, mask, temperature=T)
    rewards, scores = compute_rewards(
        config.reward, discriminator, ids, mask, policy=rollout_policy if rollout_policy is not None else generator,
        state=state if rollout_policy is None else None, rollout_num=config.rollout_num,
        rollout_batching=config.rollout_batching, temperature=T, max_rollout_batch=config.max_rollout_batch,
        gamma=config.gamma, generator=rng,
    )
    real = mask != 0
    kl = torch.where(real, kl_k1(log_probs, ref_log_probs), torch.zeros((), device=ids.device))
    shaped = rewards
    if config.kl_coef and config.kl_penalty == "reward":
        shaped = torch.where(real, rewards - config.kl_coef * _kl_to_go(kl), torch.zeros((), device=ids.device))
    group_ids = group_ids_for(batch_size, config.group_size, ids.device)
    across = reduce if config.group_size == 0 else identity  # a group of k rows lies on one rank
    if config.loss == "maligan":
        advantages = maligan_advantages(scores, mask, group_ids, reduce=across)
    elif config.advantage == "leave_one_out":
        advantages = shaped - leave_one_out_baseline(shaped, mask, group_ids, reduce=across)
    elif config.advantage == "group_norm":
        advantages = group_normalized_advantages(shaped, mask, group_ids, reduce=across)
    elif config.advantage == "ema":
        if ema is None:
            raise ValueError("advantage 'ema' needs an EMABaseline (ema=)")
        if not bool(ema.seen.any()):
            ema.update(shaped, mask, reduce)
        advantages = torch.where(real, shaped - ema(ids.size(1)).to(shaped.device), torch.zeros((), device=ids.device))
        ema.update(shaped, mask, reduce)
    else:
        advantages = shaped
    return Experience(ids, mask, log_probs, ref_log_probs, rewards, advantages, group_ids, scores, kl)


def policy_loss(
    experience: Experience, log_probs: torch.Tensor, config: EstimatorConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of the current policy on ``experience``, and values to log.

    Args:
        experience: from :func:`make_experience`.
        log_probs: ``(B, T)`` log-probs of ``experience.ids`` under the current policy at
            the sampling temperature, with gradient
            (``generator.log_probs(ids, mask, temperature=...)``).
        config: ``loss``, ``loss_aggregation``, ``clip_eps``, ``kl_coef``, ``kl_penalty``.

    Returns:
        ``(loss, stats)``: a 0-d loss; ``stats`` has ``adv/ppo_clip_fraction`` (``ppo_clip``)
        and ``adv/kl_k3`` (``kl_penalty: loss``, nats per token).
    """
    exp, agg, stats = experience, config.loss_aggregation, {}
    if config.loss == "ppo_clip":
        loss, clip_fraction = ppo_clip_loss(log_probs, exp.log_probs, exp.advantages, exp.mask, config.clip_eps, agg)
        stats["adv/ppo_clip_fraction"] = float(clip_fraction)
    else:
        loss = policy_gradient_loss(log_probs, exp.advantages, exp.mask, None, agg)
    if config.kl_coef and config.kl_penalty == "loss":
        k3 = kl_k3(log_probs, exp.ref_log_probs)
        loss = loss + config.kl_coef * aggregate(k3, exp.mask, agg)
        stats["adv/kl_k3"] = float(aggregate(k3.detach(), exp.mask, "token_mean"))
    return loss, stats
