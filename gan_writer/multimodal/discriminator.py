"""Multimodal discriminator D(image, text): does this poem belong to this image?

Liu et al. 2018, "Beyond Narrative Description: Generating Poetry from Images by
Multi-Adversarial Training" (ACM MM): a discriminator over (image, poem) pairs with three
classes — *paired* (a real poem of this image), *unpaired* (a real poem of another image)
and *generated* — whose probability of *paired* rewards the generator; a second, text-only
style discriminator (here the project's :mod:`gan_writer.models.discriminator`) asks
whether the text is poetry at all.

Text: token embedding + bidirectional GRU over the real tokens (Liu et al. encode poems with
a GRU); image: layer-normed pooled features, projected; fusion ``[v; s; v⊙s]`` → MLP → 3
logits. ``ids`` are in the generator's vocabulary (no BOS; EOS then padding); the mask alone
says what is padding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

PAIRED, UNPAIRED, GENERATED = 0, 1, 2


@dataclass
class MultimodalDiscriminatorConfig:
    """The ``model.multimodal_discriminator`` block: embedding, GRU/fusion size, dropout."""

    embed_dim: int = 64
    hidden_dim: int = 128
    dropout: float = 0.1

    def build(self, vocab_size: int, feature_dim: int, pad_token_id: int) -> "MultimodalDiscriminator":
        return MultimodalDiscriminator(vocab_size, feature_dim, self.embed_dim, self.hidden_dim, pad_token_id, self.dropout)


class MultimodalDiscriminator(nn.Module):
    """D(image, text) → logits over (paired, unpaired, generated).

    Args:
        vocab_size: generator vocabulary size.
        feature_dim: ``H`` of the pooled image features.
        embed_dim, hidden_dim: token embedding and GRU/fusion sizes.
        pad_token_id: id placed at padding (its value does not affect the score).
        dropout: before the output layer.
    """

    def __init__(
        self, vocab_size: int, feature_dim: int, embed_dim: int = 64, hidden_dim: int = 128,
        pad_token_id: int = 0, dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.pad_token_id = int(pad_token_id)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.text_proj = nn.Linear(2 * hidden_dim, hidden_dim)
        self.image_proj = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, hidden_dim))
        self.fuse = nn.Sequential(nn.Linear(3 * hidden_dim, hidden_dim), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden_dim, 3))

    def encode_text(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T)`` → ``(B, hidden_dim)``: final GRU states of both directions over real tokens."""
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask
        lengths = mask.long().sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(ids.long()), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # (2, B, hidden)
        return torch.tanh(self.text_proj(torch.cat([h[0], h[1]], dim=-1)))

    def forward(self, features: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, 3)`` over (paired, unpaired, generated).

        Args:
            features: ``(B, H)`` pooled image features (or ``(1, H)``, shared by all rows).
            ids: ``(B, T)`` token ids; attention_mask: ``(B, T)`` 1 real / 0 padding.
        """
        s = self.encode_text(ids, attention_mask)
        v = torch.tanh(self.image_proj(features.to(s.dtype))).expand_as(s)
        return self.fuse(torch.cat([v, s, v * s], dim=-1))

    def prob_paired(self, features: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B,)`` probability that each text is a real poem of its image (class *paired*)."""
        return self(features, ids, attention_mask).softmax(-1)[:, PAIRED]

    def reward_fn(self, features: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A :data:`gan_writer.adversarial.rollout.DiscriminatorFn` for one image ``(1, H)``:
        ``(ids (N, T), mask (N, T)) -> (N,)`` probability of *paired*."""
        return lambda ids, mask: self.prob_paired(features, ids, mask)


def mismatch_index(image_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row, another row of the batch showing a *different* image.

    Args:
        image_index: ``(B,)`` int id of each row's image.

    Returns:
        ``(j (B,), valid (B,) bool)``: row ``j[b]`` shows another image than row ``b``
        (the nearest such row cyclically after ``b``); ``valid`` is False where the batch has
        no other image.
    """
    B = image_index.numel()
    j = torch.arange(B)
    valid = torch.zeros(B, dtype=torch.bool)
    for shift in range(1, B):
        cand = (torch.arange(B) + shift) % B
        new = ~valid & (image_index[cand] != image_index)
        j = torch.where(new, cand, j)
        valid |= new
        if bool(valid.all()):
            break
    return j, valid


def multimodal_discriminator_loss(
    disc: MultimodalDiscriminator,
    features: torch.Tensor,
    real: dict[str, torch.Tensor],
    image_index: torch.Tensor,
    fake: dict[str, torch.Tensor] | None = None,
    fake_features: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy over paired / unpaired (real poems of other images) / generated.

    Args:
        disc: the discriminator.
        features: ``(B, H)`` pooled features of the real pairs' images.
        real: ``{"ids": (B, T), "attention_mask": (B, T)}`` the real poems of those images.
        image_index: ``(B,)`` image id per row (mismatches pair a poem with another image).
        fake: optional generated ``{"ids" (G, T'), "attention_mask"}``, label *generated*.
        fake_features: ``(G, H)`` the images they were generated for.

    Returns:
        ``(loss, stats)``: the mean cross-entropy (nats) and accuracies ``acc_paired``,
        ``acc_unpaired``, ``acc_generated`` (when ``fake``) and ``acc`` (all rows).
    """
    j, valid = mismatch_index(image_index.cpu())
    j, valid = j.to(features.device), valid.to(features.device)
    groups = [(disc(features, real["ids"], real["attention_mask"]), PAIRED, "acc_paired")]
    if bool(valid.any()):
        groups.append((disc(features[j][valid], real["ids"][valid], real["attention_mask"][valid]), UNPAIRED, "acc_unpaired"))
    if fake is not None:
        groups.append((disc(fake_features, fake["ids"], fake["attention_mask"]), GENERATED, "acc_generated"))
    logits = torch.cat([g[0] for g in groups])
    labels = torch.cat([torch.full((g[0].size(0),), g[1], dtype=torch.long, device=logits.device) for g in groups])
    loss = F.cross_entropy(logits, labels)
    with torch.no_grad():
        stats = {name: float((lg.argmax(-1) == lab).float().mean()) for lg, lab, name in groups}
        stats["acc"] = float((logits.argmax(-1) == labels).float().mean())
    return loss, stats
