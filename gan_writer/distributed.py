"""What the stages need from ``torch.distributed`` under Lightning DDP: sums, gathers and a
broadcast of tensors, and per-rank seeds. Every function is the identity (or rank 0's value)
on one process, so single-process runs do not change.

Collectives must be called by every rank in the same order (as Lightning's hooks are). They
move only tensors: nothing is pickled between processes.
"""
from __future__ import annotations

import json

import torch

__all__ = ["is_distributed", "world_size", "sum_across_ranks", "gather_rows", "broadcast_values", "rank_seed"]

#: a prime far above any run seed, so ``seed + k·rank`` never collides for small seeds
RANK_SEED_STRIDE = 1_000_003


def is_distributed() -> bool:
    """``torch.distributed`` is initialised (e.g. by a Lightning DDP strategy) with more than one rank."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def sum_across_ranks(t: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``t`` over all ranks (a new tensor, same shape, dtype and
    device); ``t`` itself on one process. Every rank must pass the same shape.

    The tensor must be on a device the process group's backend handles (CPU for gloo, the
    rank's GPU for NCCL): the module's device in the stages.
    """
    if not is_distributed():
        return t
    out = t.detach().clone()
    torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
    return out


def gather_rows(t: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every rank's ``t`` stacked in rank order: ``(W, *t.shape)`` on the CPU (``W`` = 1 on one
    process). ``device``: where the collective runs (the rank's GPU under NCCL).

    Raises:
        RuntimeError: (from ``torch.distributed``) when the ranks' shapes differ.
    """
    if not is_distributed():
        return t.detach().cpu().unsqueeze(0)
    local = t.detach().to(device).contiguous()
    rows = [torch.empty_like(local) for _ in range(world_size())]
    torch.distributed.all_gather(rows, local)
    return torch.stack(rows).cpu()


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    torch.distributed.broadcast(t, src=0)
    return t


def broadcast_values(values: dict[str, float] | None, device: torch.device | str = "cpu") -> dict[str, float]:
    """Rank 0's ``values`` on every rank (the other ranks may pass ``None``); a copy of
    ``values`` on one process. Names travel as UTF-8 JSON in a byte tensor, values as float64
    (a Python float's exact value).

    Raises:
        ValueError: when rank 0 (or the one process) passes ``None``.
    """
    rank0 = not is_distributed() or torch.distributed.get_rank() == 0
    if rank0 and values is None:
        raise ValueError("broadcast_values: rank 0 must pass the values")
    if not is_distributed():
        return dict(values)
    names = json.dumps(list(values)).encode() if rank0 else b""
    sizes = _broadcast(torch.tensor([len(names), len(values) if rank0 else 0], dtype=torch.int64, device=device))
    n_bytes, n_values = (int(n) for n in sizes.tolist())
    if rank0:
        raw = torch.tensor(list(names), dtype=torch.uint8, device=device)
        nums = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=device)
    else:
        raw = torch.empty(n_bytes, dtype=torch.uint8, device=device)
        nums = torch.empty(n_values, dtype=torch.float64, device=device)
    keys = json.loads(bytes(_broadcast(raw).cpu().tolist()).decode("utf-8"))
    return dict(zip(keys, _broadcast(nums).cpu().tolist()))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random streams: ``seed`` for rank 0 (so rank 0 draws
    what one process draws), ``seed + 1_000_003·rank`` (mod 2^63) for the others."""
    return (int(seed) + RANK_SEED_STRIDE * int(rank)) % (2**63)
