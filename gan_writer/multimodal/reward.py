"""The multi-adversarial reward (Liu et al. 2018): ``λ·D_multimodal + (1−λ)·D_style``.

:class:`MixedReward` is an ``nn.Module`` callable ``(ids (N, T), mask (N, T)) -> (N,)`` for
one image, so it plugs into :func:`gan_writer.adversarial.rollout.mc_rollout_rewards` as the
discriminator (which puts it, and so both discriminators, in eval mode while scoring).
"""
from __future__ import annotations

import torch
from torch import nn

from gan_writer.multimodal.discriminator import MultimodalDiscriminator


class MixedReward(nn.Module):
    """Probability-valued reward of texts for one image.

    Args:
        multimodal: D(image, text); its probability of *paired* is used.
        style: a text discriminator with ``prob_real(ids, mask)`` (the project's CNN or
            transformer discriminator).
        features: ``(1, H)`` pooled features of the image.
        weight: ``λ`` in [0, 1], the multimodal discriminator's share.

    Raises:
        ValueError: ``weight`` outside [0, 1] or ``features`` not ``(1, H)``.
    """

    def __init__(self, multimodal: MultimodalDiscriminator, style: nn.Module, features: torch.Tensor, weight: float) -> None:
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"model.multimodal_weight (λ) must be in [0, 1], got {weight}")
        if features.dim() != 2 or features.size(0) != 1:
            raise ValueError(f"MixedReward scores texts for one image: features must be (1, H), got {tuple(features.shape)}")
        self.multimodal, self.style, self.weight = multimodal, style, float(weight)
        self.features = features

    def components(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_multimodal (N,), D_style (N,))``, both probabilities."""
        return self.multimodal.prob_paired(self.features, ids, mask).float(), self.style.prob_real(ids, mask).float()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(N,)`` ``λ·D_multimodal + (1−λ)·D_style`` in [0, 1]."""
        mm, style = self.components(ids, mask)
        return self.weight * mm + (1.0 - self.weight) * style


def sequence_rewards(reward: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sequence-level reward as per-token rewards: every real token of row ``b`` gets ``reward[b]``.

    The REINFORCE estimator without rollouts (``rollout_num: 0``): cheaper than Monte Carlo
    rollouts, with higher variance per token.

    Args:
        reward: ``(B,)`` reward of each whole sequence.
        attention_mask: ``(B, T)`` 1 real / 0 padding.

    Returns:
        ``(B, T)`` float32, 0 at padding.
    """
    if reward.dim() != 1 or reward.size(0) != attention_mask.size(0):
        raise ValueError(f"reward must be (B,) = ({attention_mask.size(0)},), got {tuple(reward.shape)}")
    return reward.float().unsqueeze(1) * (attention_mask != 0).float()
