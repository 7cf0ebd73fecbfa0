"""Losses of the adversarial stage: the REINFORCE policy gradient with baselines, PPO-clip,
MaliGAN's normalised importance weights, how per-token terms are aggregated, and KL
penalties to the frozen MLE generator. Pure functions over tensors (plus one small stateful
baseline module).

Shapes: ``B`` sequences, ``T`` positions, ``V`` vocabulary. ``attention_mask`` ``(B, T)`` is
1 for real tokens (EOS included) and 0 for padding; padding never contributes to a loss or
to a baseline, and every average is over real tokens.

References:
    Williams 1992, "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning" (REINFORCE, baselines). Yu et al. 2017, "SeqGAN: Sequence
    Generative Adversarial Nets with Policy Gradient" (the per-token Monte Carlo reward
    ``Q``). Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences" (the
    KL penalty to the pretrained policy). Schulman et al. 2017, "Proximal Policy Optimization
    Algorithms" (PPO-clip). Che et al. 2017, "Maximum-Likelihood Augmented Discrete
    Generative Adversarial Networks" (MaliGAN). Schulman 2020, "Approximating KL divergence"
    (the k1 and k3 estimators; GRPO, Shao et al. 2024, uses k3 in the loss).
"""
from __future__ import annotations

import torch
from torch import nn

from gan_writer.adversarial.advantages import Reduce, identity, leave_one_out_baseline

__all__ = [
    "AGGREGATIONS", "aggregate", "policy_gradient_loss", "ppo_clip_loss", "maligan_advantages",
    "batch_mean_baseline", "EMABaseline", "kl_to_reference", "kl_k1", "kl_k3",
]

#: how per-token loss terms become one number: mean over real tokens, mean over sequences of
#: each sequence's mean, or SeqGAN's plain sum over batch x time
AGGREGATIONS = ("token_mean", "sequence_mean", "sum")


def _check_bt(name: str, x: torch.Tensor, ref: torch.Tensor) -> None:
    if x.shape != ref.shape:
        raise ValueError(f"{name} must have shape {tuple(ref.shape)} (B, T), got {tuple(x.shape)}")


def aggregate(terms: torch.Tensor, attention_mask: torch.Tensor, how: str = "token_mean") -> torch.Tensor:
    """Reduce per-token loss terms ``(B, T)`` over real tokens to a 0-d tensor.

    ``token_mean``: ``Σ_bt terms / N`` (``N`` real tokens); ``sequence_mean``:
    ``(1/B') Σ_b (Σ_t terms_bt / L_b)`` over the ``B'`` non-empty rows; ``sum``: ``Σ_bt terms``
    (SeqGAN's ``-reduce_sum(log π · Q)``, whose gradient is ``N`` times the token mean's, so a
    fixed gradient clip bites differently). Padding is excluded with ``where`` (it may hold
    ``-inf``/NaN).

    Raises:
        ValueError: unknown ``how`` or mismatched shapes.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"loss_aggregation must be one of {AGGREGATIONS}, got {how!r}")
    _check_bt("attention_mask", attention_mask, terms)
    m = attention_mask.to(terms.device) != 0
    terms = torch.where(m, terms, torch.zeros((), dtype=terms.dtype, device=terms.device))
    if how == "sum":
        return terms.sum()
    if how == "token_mean":
        return terms.sum() / m.sum().clamp(min=1)
    lengths = m.sum(1)
    per_row = terms.sum(1) / lengths.clamp(min=1)
    return per_row.sum() / (lengths > 0).sum().clamp(min=1)


def policy_gradient_loss(
    log_probs: torch.Tensor,
    rewards: torch.Tensor,
    attention_mask: torch.Tensor,
    baseline: torch.Tensor | float | None = None,
    aggregation: str = "token_mean",
) -> torch.Tensor:
    """REINFORCE loss ``−Σ_t log π(y_t | y_<t) · (Q_t − b_t)``, aggregated over real tokens.

    Its gradient is the SeqGAN policy gradient (Yu et al. 2017, eq. 8) with a baseline
    (Williams 1992), reduced by ``aggregation`` (see :func:`aggregate`; the default averages
    over the ``N`` real tokens, SeqGAN's code sums). Rewards and baseline are treated as
    constants (detached); the gradient flows only through ``log_probs``.

    Args:
        log_probs: ``(B, T)`` ``log π(y_t | BOS, y_<t)`` of the sampled tokens, in nats, with
            gradient (e.g. ``generator.log_probs(ids, attention_mask)``).
        rewards: ``(B, T)`` ``Q_t``, e.g. from
            :func:`gan_writer.adversarial.rollout.mc_rollout_rewards`.
        attention_mask: ``(B, T)`` 1 real / 0 padding.
        baseline: ``None`` or a float (constant), a 0-d tensor, ``(T,)`` (per position, e.g.
            :class:`EMABaseline`) or ``(B, T)`` (e.g. :func:`batch_mean_baseline`).
        aggregation: ``token_mean`` | ``sequence_mean`` | ``sum``.

    Returns:
        0-d tensor (0 when the batch has no real token).

    Raises:
        ValueError: on mismatched shapes.
    """
    _check_bt("rewards", rewards, log_probs)
    _check_bt("attention_mask", attention_mask, log_probs)
    m = attention_mask.to(log_probs.device) != 0
    advantage = rewards.detach().to(log_probs.dtype)
    if baseline is not None:
        b = torch.as_tensor(baseline, dtype=log_probs.dtype, device=log_probs.device).detach()
        if b.dim() == 1 and b.size(0) != log_probs.size(1):
            raise ValueError(f"a per-position baseline must have shape ({log_probs.size(1)},), got {tuple(b.shape)}")
        if b.dim() == 2:
            _check_bt("baseline", b, log_probs)
        if b.dim() > 2:
            raise ValueError(f"baseline must be a scalar, (T,) or (B, T); got {tuple(b.shape)}")
        advantage = advantage - b
    # where(), not a product with the mask: padding may hold -inf/NaN log-probs or rewards
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    advantage = torch.where(m, advantage, zero)
    terms = torch.where(m, log_probs * advantage, zero)
    return aggregate(-terms, attention_mask, aggregation)


def ppo_clip_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    attention_mask: torch.Tensor,
    clip_eps: float = 0.2,
    aggregation: str = "token_mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate ``−min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)``, ``ρ = π / π_old`` per token.

    Where ``ρ`` left the trust region in the direction the advantage pushes it (``ρ > 1 + ε``
    with ``A > 0``, ``ρ < 1 − ε`` with ``A < 0``) the term is constant: no gradient. At
    ``ρ = 1`` (the first epoch over fresh experience) the gradient equals REINFORCE's.

    Args:
        log_probs: ``(B, T)`` current log-probs, with gradient.
        old_log_probs: ``(B, T)`` log-probs of the policy that sampled (detached).
        advantages: ``(B, T)`` (detached); attention_mask: ``(B, T)``.
        clip_eps: ``ε`` > 0 (Schulman et al.: 0.2).
        aggregation: see :func:`aggregate`.

    Returns:
        ``(loss, clip_fraction)``: 0-d loss, and the share of real tokens whose ratio is outside
        ``[1 − ε, 1 + ε]`` (0-d, detached).
    """
    _check_bt("old_log_probs", old_log_probs, log_probs)
    _check_bt("advantages", advantages, log_probs)
    m = attention_mask.to(log_probs.device) != 0
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    diff = torch.where(m, log_probs - old_log_probs.detach().to(log_probs.dtype), zero)
    ratio = diff.exp()
    adv = torch.where(m, advantages.detach().to(log_probs.dtype), zero)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv)
    clipped = ((ratio - 1.0).abs() > clip_eps) & m
    return aggregate(-surrogate, attention_mask, aggregation), clipped.sum().float().detach() / m.sum().clamp(min=1)


def maligan_advantages(
    scores: torch.Tensor, attention_mask: torch.Tensor, group_ids: torch.Tensor | None = None, eps: float = 1e-6,
    reduce: Reduce = identity,
) -> torch.Tensor:
    """MaliGAN's per-token advantages from the discriminator's sequence scores.

    ``r_D(y) = D(y) / (1 − D(y))`` estimates ``p_data / p_θ`` for an optimal ``D``; Che et al.
    (2017, eq. 9) weight ``∇ log p_θ(y_b)`` by the normalised ``w_b = r_D(y_b) / Σ_j r_D(y_j)``
    minus a baseline. Here the weights are normalised within each group, scaled by the group
    size ``n`` (so they average 1) and the mean 1 is the baseline: ``A_b = n·w_b − 1`` for
    every real token of row ``b`` (the paper's ``w_b − 1/n`` times ``n``).

    Args:
        scores: ``(B,)`` ``D(y)`` in (0, 1); clamped to ``[eps, 1 − eps]``.
        attention_mask: ``(B, T)``; group_ids: ``(B,)`` or ``None`` (one group).
        reduce: sums the per-group totals and sizes ``(2, G)`` over data-parallel ranks (a
            group spanning the ranks, see :mod:`gan_writer.adversarial.advantages`).

    Returns:
        ``(B, T)`` float advantages, 0 at padding; each group's ``A`` sum to 0 over rows.
    """
    if scores.dim() != 1 or scores.size(0) != attention_mask.size(0):
        raise ValueError(f"scores must be (B,) with B={attention_mask.size(0)}, got {tuple(scores.shape)}")
    d = scores.detach().float().clamp(eps, 1.0 - eps)
    odds = d / (1.0 - d)
    gid = torch.zeros_like(odds, dtype=torch.long) if group_ids is None else group_ids.to(odds.device).long()
    n_groups = int(gid.max()) + 1 if gid.numel() else 0
    totals = torch.zeros(n_groups, device=odds.device).index_add_(0, gid, odds)
    sizes = torch.zeros(n_groups, device=odds.device).index_add_(0, gid, torch.ones_like(odds))
    if reduce is not identity:
        totals, sizes = reduce(torch.stack([totals, sizes])).unbind(0)
    adv = sizes[gid] * odds / totals[gid] - 1.0
    m = attention_mask.to(odds.device) != 0
    return torch.where(m, adv.unsqueeze(1).expand_as(m), torch.zeros((), device=odds.device))


def batch_mean_baseline(rewards: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The ``mean`` baseline: the leave-one-out mean reward per position (``(B, T)``).

    The mean over the *other* rows, so the baseline does not depend on the row's own sample
    and the gradient stays unbiased; see
    :func:`gan_writer.adversarial.advantages.leave_one_out_baseline` (this is that function
    with the whole batch as one group). Until issue 11 it included the row itself, which
    shrank the gradient by ``(B − 1)/B`` and zeroed it where one row reached a position.
    """
    return leave_one_out_baseline(rewards, attention_mask)


class EMABaseline(nn.Module):
    """Exponential moving average of rewards over real tokens, per position or overall.

    Usage (take the baseline *before* updating with the batch it is subtracted from, so the
    baseline does not depend on the current rewards)::

        b = ema(ids.size(1))            # (T,) or 0-d
        loss = policy_gradient_loss(log_probs, rewards, mask, b)
        ema.update(rewards, mask)

    The first update sets the average to the batch mean (no zero-initialisation bias);
    afterwards ``avg ← decay·avg + (1 − decay)·batch_mean``. Positions never seen give 0.
    The state is kept in buffers, so it is saved with checkpoints.

    Args:
        decay: weight of the old average, in [0, 1).
        max_length: ``None`` for one running mean over all real tokens (the returned
            baseline is 0-d); an int ``T_max`` for one running mean per position (the returned
            baseline is ``(T,)``, ``T <= T_max``).

    Raises:
        ValueError: ``decay`` outside [0, 1) or ``max_length < 1``.
    """

    def __init__(self, decay: float = 0.9, max_length: int | None = None) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1 or None, got {max_length}")
        self.decay = float(decay)
        self.per_position = max_length is not None
        size = int(max_length) if max_length is not None else 1
        self.register_buffer("value", torch.zeros(size))
        self.register_buffer("seen", torch.zeros(size, dtype=torch.bool))

    def _check_length(self, length: int) -> None:
        if self.per_position and length > self.value.numel():
            raise ValueError(f"sequence length {length} exceeds EMABaseline max_length={self.value.numel()}")

    def forward(self, length: int | None = None) -> torch.Tensor:
        """The current baseline: ``(length,)`` per position, or 0-d when not per position."""
        if not self.per_position:
            return self.value[0].clone()
        if length is None:
            raise ValueError("a per-position EMABaseline needs the sequence length T")
        self._check_length(length)
        return self.value[:length].clone()

    @torch.no_grad()
    def update(self, rewards: torch.Tensor, attention_mask: torch.Tensor, reduce: Reduce = identity) -> None:
        """Fold the batch's mean real-token reward (per position or overall) into the average.

        Args:
            rewards: ``(B, T)``.
            attention_mask: ``(B, T)`` 1 real / 0 padding.
            reduce: sums the reward sums and token counts ``(2, T)`` or ``(2, 1)`` over
                data-parallel ranks, so every rank folds in the global batch's mean and
                keeps the same average (every rank must pass the same ``T``).
        """
        _check_bt("attention_mask", attention_mask, rewards)
        m = (attention_mask.to(rewards.device) != 0).to(self.value.dtype)
        r = torch.where(m.bool(), rewards.detach().to(self.value.dtype), torch.zeros((), device=rewards.device))
        if self.per_position:
            self._check_length(rewards.size(1))
            sums, counts = r.sum(0), m.sum(0)
            value, seen = self.value[: rewards.size(1)], self.seen[: rewards.size(1)]
        else:
            sums, counts = r.sum().view(1), m.sum().view(1)
            value, seen = self.value, self.seen
        if reduce is not identity:
            sums, counts = reduce(torch.stack([sums, counts])).unbind(0)
        has = counts > 0
        mean = sums / counts.clamp(min=1)
        new = torch.where(seen, self.decay * value + (1.0 - self.decay) * mean, mean)
        value.copy_(torch.where(has, new, value))
        seen |= has

    def extra_repr(self) -> str:
        return f"decay={self.decay}, per_position={self.per_position}"


def kl_to_reference(
    policy: torch.Tensor,
    reference: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """KL(π ‖ π_mle) per token to the frozen MLE generator, in nats per token.

    Two estimators, chosen by the inputs' shape:

    * **Full distribution** (``policy`` and ``reference`` are ``(B, T, V)`` logits at the
      sampled prefixes, e.g. ``generator.logits(ids)`` and ``mle_generator.logits(ids)``):
      ``KL_t = Σ_v π(v | y_<t) (log π(v | y_<t) − log π_mle(v | y_<t))``, exact and ≥ 0 for
      each position. It is differentiable with respect to ``policy``, but as a loss term its
      gradient leaves out how the policy changes the *prefixes* it is evaluated at, so it does
      not minimise the sequence KL; the stage uses ``kl_penalty: reward`` (k1 in the returns)
      or ``kl_penalty: loss`` (k3, GRPO) instead (:func:`kl_k1`, :func:`kl_k3`).
    * **Sampled** (``(B, T)`` log-probabilities of the sampled tokens under each model, e.g.
      ``generator.log_probs(ids, mask)``): ``KL_t ≈ log π(y_t | y_<t) − log π_mle(y_t | y_<t)``,
      an unbiased single-sample estimate when ``y ~ π`` (cheap: no ``V``-sized tensors) but
      noisy and possibly negative per token. Its gradient is *not* the KL's gradient
      (differentiating it gives ``E[∇ log π] = 0`` in expectation), so use it as Ziegler et
      al. (2019) do, as a reward penalty on detached values (``reduction="none"``, then
      ``Q_t − β · KL_t``, or the sum over positions ``≥ t`` as a return), or for logging.

    ``reference`` is detached in both cases.

    Args:
        policy: ``(B, T, V)`` logits or ``(B, T)`` log-probabilities of the trained policy.
        reference: the same for the frozen MLE generator (same shape as ``policy``).
        attention_mask: ``(B, T)`` 1 real / 0 padding.
        reduction: ``"mean"`` (average over real tokens, a 0-d tensor) or ``"none"``
            (``(B, T)``, 0 at padding).

    Returns:
        The KL in nats per token.

    Raises:
        ValueError: mismatched shapes or unknown ``reduction``.
    """
    if policy.shape != reference.shape or policy.dim() not in (2, 3):
        raise ValueError(
            "policy and reference must both be (B, T, V) logits or both (B, T) log-probs; "
            f"got {tuple(policy.shape)} and {tuple(reference.shape)}"
        )
    if attention_mask.shape != policy.shape[:2]:
        raise ValueError(f"attention_mask must have shape {tuple(policy.shape[:2])}, got {tuple(attention_mask.shape)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    reference = reference.detach()
    if policy.dim() == 3:
        lp = policy.float().log_softmax(-1)
        lq = reference.float().log_softmax(-1)
        per_token = (lp.exp() * (lp - lq)).sum(-1)
    else:
        per_token = policy.float() - reference.float()
    m = attention_mask.to(per_token.device) != 0
    per_token = torch.where(m, per_token, torch.zeros((), dtype=per_token.dtype, device=per_token.device))
    if reduction == "none":
        return per_token
    return per_token.sum() / m.sum().clamp(min=1)


def kl_k1(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """The k1 estimate ``log π(y_t) − log π_ref(y_t)`` per sampled token ``(B, T)``.

    Unbiased for ``KL(π ‖ π_ref)`` per token when ``y ~ π``. Subtracted from the rewards as
    ``r_t − β·k1_t`` (``kl_penalty: reward``; Ziegler et al. 2019, TRL's RLOO) it makes the
    policy gradient that of ``E[R] − β·KL(π ‖ π_ref)`` over whole sequences (the prefix
    distribution included), which a per-token KL added to the loss does not.
    """
    return log_probs.float() - ref_log_probs.float()


def kl_k3(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """The k3 estimate ``exp(Δ) − Δ − 1`` with ``Δ = log π_ref(y_t) − log π(y_t)``, ``(B, T)``.

    Non-negative, unbiased for the per-token KL when ``y ~ π``, lower variance than k1; GRPO
    (Shao et al. 2024) adds it to the loss (``kl_penalty: loss``): differentiable with
    respect to ``log_probs``, ``ref_log_probs`` detached.
    """
    delta = ref_log_probs.detach().float() - log_probs.float()
    return delta.exp() - delta - 1.0
