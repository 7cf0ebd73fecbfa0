"""Baselines, advantages and returns of the adversarial stage. Pure functions over tensors.

Shapes: ``B`` sequences, ``T`` positions. ``attention_mask`` ``(B, T)`` is 1 for real
tokens (EOS included) and 0 for padding; padding never enters a baseline and its advantage
is 0. ``group_ids`` ``(B,)`` int64 says which rows were drawn together (GRPO / RLOO: ``k``
samples per prompt; for unconditional generation, consecutive blocks of ``k`` rows, see
:func:`group_ids_for`); a baseline only ever uses rows of the row's own group.

Data parallel (DDP): the batch statistics are per-group sums and counts; ``reduce`` (default:
the identity) sums them over the ranks, e.g. :func:`gan_writer.distributed.sum_across_ranks`.
With ``reduce`` every rank's baseline is the one of the global batch (all ranks' rows of a
group together), so pass it only where a group spans the ranks (``group_size`` 0, "the whole
batch"); rows of a group of ``k`` consecutive rows are all on one rank. The functions stay pure:
nothing here looks at ``torch.distributed``.

References:
    Williams 1992 (baselines keep REINFORCE unbiased when they do not depend on the row's
    own sample). Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for free!" and
    Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs" (RLOO, the leave-one-out mean). Shao et al. 2024,
    "DeepSeekMath" (GRPO, the group-normalised advantage ``(r − mean) / std``).
    de Masson d'Autume et al. 2019, "Training Language GANs from Scratch" (ScratchGAN,
    discounted returns of per-step rewards, gamma 0.23).
"""
from __future__ import annotations

from typing import Callable

import torch

#: sums a tensor over data-parallel ranks (same shape out); the identity on one process
Reduce = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["Reduce", "identity", "group_ids_for", "leave_one_out_baseline", "group_normalized_advantages", "discounted_returns"]


def identity(t: torch.Tensor) -> torch.Tensor:
    """The default ``reduce``: one process, nothing to sum over."""
    return t


def _check(rewards: torch.Tensor, attention_mask: torch.Tensor, group_ids: torch.Tensor | None) -> torch.Tensor:
    if rewards.dim() != 2 or attention_mask.shape != rewards.shape:
        raise ValueError(
            f"rewards and attention_mask must both be (B, T); got {tuple(rewards.shape)} and {tuple(attention_mask.shape)}"
        )
    if group_ids is None:
        return torch.zeros(rewards.size(0), dtype=torch.long, device=rewards.device)
    if group_ids.shape != (rewards.size(0),):
        raise ValueError(f"group_ids must have shape ({rewards.size(0)},) (B,), got {tuple(group_ids.shape)}")
    return group_ids.to(rewards.device).long()


def group_ids_for(batch_size: int, group_size: int, device: torch.device | None = None) -> torch.Tensor:
    """``(B,)`` group ids of consecutive blocks of ``group_size`` rows (0 = one group of all rows).

    Raises:
        ValueError: if ``group_size`` is negative or does not divide ``batch_size``.
    """
    if group_size < 0 or (group_size and batch_size % group_size):
        raise ValueError(f"group_size must be 0 (whole batch) or divide the batch size {batch_size}, got {group_size}")
    size = group_size or max(batch_size, 1)
    return torch.arange(batch_size, device=device) // size


def _group_sums(values: torch.Tensor, mask: torch.Tensor, group_ids: torch.Tensor, reduce: Reduce = identity):
    """Per (group, position) sums of ``values`` and counts over real tokens (summed over ranks
    by ``reduce``), gathered back to rows."""
    n_groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
    sums = torch.zeros(n_groups, values.size(1), dtype=values.dtype, device=values.device)
    counts = torch.zeros_like(sums)
    sums.index_add_(0, group_ids, values * mask)
    counts.index_add_(0, group_ids, mask)
    if reduce is not identity:  # one collective for both
        sums, counts = reduce(torch.stack([sums, counts])).unbind(0)
    return sums[group_ids], counts[group_ids]


def leave_one_out_baseline(
    rewards: torch.Tensor, attention_mask: torch.Tensor, group_ids: torch.Tensor | None = None,
    reduce: Reduce = identity,
) -> torch.Tensor:
    """Leave-one-out mean reward per position: the mean over the *other* rows of the group.

    ``b_bt = Σ_{b' ≠ b, same group} Q_b't m_b't / Σ_{b' ≠ b, same group} m_b't``, and 0 where
    no other row of the group has a real token at ``t`` (the advantage is then the reward
    itself). Because ``b_bt`` does not depend on row ``b``'s own sample, ``E[∇log π · (Q − b)]``
    is the unbiased policy gradient (a batch mean that includes the row shrinks the gradient
    by ``(n − 1)/n``: 0.75 for 4 rows, and to exactly 0 where one row reaches a position).

    Args:
        rewards: ``(B, T)`` per-token rewards or returns.
        attention_mask: ``(B, T)`` 1 real / 0 padding.
        group_ids: ``(B,)`` groups (``None``: the whole batch is one group).
        reduce: sums the per-group sums and counts ``(2, G, T)`` over ranks (see the module
            docstring; every rank must pass the same ``T`` and ``G``).

    Returns:
        ``(B, T)`` float baseline (detached), 0 at padding.

    Raises:
        ValueError: on mismatched shapes.
    """
    gid = _check(rewards, attention_mask, group_ids)
    m = (attention_mask.to(rewards.device) != 0).to(torch.float32)
    r = torch.where(m.bool(), rewards.detach().float(), torch.zeros((), device=rewards.device))
    sums, counts = _group_sums(r, m, gid, reduce)
    others = (counts - m).clamp(min=0)
    base = (sums - r) / others.clamp(min=1)
    return torch.where((others > 0) & m.bool(), base, torch.zeros((), device=rewards.device))


def group_normalized_advantages(
    rewards: torch.Tensor, attention_mask: torch.Tensor, group_ids: torch.Tensor | None = None, eps: float = 1e-6,
    reduce: Reduce = identity,
) -> torch.Tensor:
    """GRPO's advantage ``(Q − mean_g) / (std_g + eps)`` per group and position.

    Mean and (population) standard deviation are over the real tokens of the row's group at
    the same position, so each group's advantages have mean 0 at every position (a constant
    reward gives 0 everywhere: no gradient).

    Args:
        rewards: ``(B, T)``; attention_mask: ``(B, T)``; group_ids: ``(B,)`` or ``None`` (one group).
        eps: added to the standard deviation.
        reduce: sums the per-group statistics over ranks (twice: for the mean, then for the
            squared deviations from it), see the module docstring.

    Returns:
        ``(B, T)`` float advantages (detached), 0 at padding.
    """
    gid = _check(rewards, attention_mask, group_ids)
    m = (attention_mask.to(rewards.device) != 0).to(torch.float32)
    r = torch.where(m.bool(), rewards.detach().float(), torch.zeros((), device=rewards.device))
    sums, counts = _group_sums(r, m, gid, reduce)
    mean = sums / counts.clamp(min=1)
    sq, _ = _group_sums((r - mean) ** 2, m, gid, reduce)
    std = (sq / counts.clamp(min=1)).sqrt()
    return torch.where(m.bool(), (r - mean) / (std + eps), torch.zeros((), device=rewards.device))


def discounted_returns(rewards: torch.Tensor, attention_mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns ``G_t = Σ_{s ≥ t} γ^{s−t} r_s`` over each row's real tokens (ScratchGAN).

    Args:
        rewards: ``(B, T)`` per-token rewards; attention_mask: ``(B, T)``.
        gamma: discount in [0, 1] (0: ``G_t = r_t``; ScratchGAN uses 0.23).

    Returns:
        ``(B, T)`` float returns, 0 at padding.

    Raises:
        ValueError: ``gamma`` outside [0, 1] or mismatched shapes.
    """
    _check(rewards, attention_mask, None)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    m = attention_mask.to(rewards.device) != 0
    r = torch.where(m, rewards.float(), torch.zeros((), device=rewards.device))
    out = torch.zeros_like(r)
    running = torch.zeros(r.size(0), device=r.device)
    for t in range(r.size(1) - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return torch.where(m, out, torch.zeros((), device=rewards.device))
