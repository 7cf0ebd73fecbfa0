"""The adversarial (SeqGAN) stage's pure tensor functions: Monte Carlo rollout rewards,
the rollout policy, policy-gradient losses, baselines and the KL penalty."""
from __future__ import annotations

from gan_writer.adversarial.losses import EMABaseline, batch_mean_baseline, kl_to_reference, policy_gradient_loss
from gan_writer.adversarial.rollout import (
    DiscriminatorFn,
    make_rollout_policy,
    mc_rollout_rewards,
    sample_with_state,
    update_rollout_policy,
)

__all__ = [
    "DiscriminatorFn",
    "EMABaseline",
    "batch_mean_baseline",
    "kl_to_reference",
    "make_rollout_policy",
    "mc_rollout_rewards",
    "policy_gradient_loss",
    "sample_with_state",
    "update_rollout_policy",
]
