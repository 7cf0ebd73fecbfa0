"""Helpers shared by several test modules (imported as ``helpers``; pytest puts tests/ on sys.path)."""
import torch


def unique_probability(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A "discriminator" value in (0, 1) unique to each sequence: a hash of its real tokens.

    Args:
        ids: ``(N, T)`` token ids; mask: ``(N, T)`` real-token mask.

    Returns:
        ``(N,)`` float32 values, equal for equal real-token sequences.
    """
    weights = 31 ** torch.arange(ids.size(1), dtype=torch.long)
    h = (((ids.long() + 1) * mask.long() * weights).sum(1) % 1_000_003).double()
    return ((h + 0.5) / 1_000_003).float()
