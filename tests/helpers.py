"""Helpers shared by several test modules (imported as ``helpers``; pytest puts tests/ on sys.path)."""
import torch

from gan_writer.models import Generator

PAD, BOS, EOS = 0, 1, 2


def tiny_gpt2(vocab: int = 20, seed: int = 0, n_positions: int = 16, dropout: float = 0.0) -> Generator:
    """A seeded 2-layer GPT-2 with hidden size 16 (pad 0, BOS 1, EOS 2), in train mode."""
    torch.manual_seed(seed)
    return Generator.from_config(vocab, BOS, EOS, PAD, n_layer=2, n_embd=16, n_head=2,
                                 n_positions=n_positions, dropout=dropout)


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
