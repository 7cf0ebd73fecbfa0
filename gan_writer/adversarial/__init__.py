"""The adversarial stage's pure tensor functions: experience (sample, reward, advantage),
rewards (Monte Carlo rollouts, prefix and sequence scores), advantages and baselines,
policy-gradient losses (REINFORCE, PPO-clip, MaliGAN) and KL penalties."""
from __future__ import annotations

from gan_writer.adversarial.advantages import (
    discounted_returns,
    group_ids_for,
    group_normalized_advantages,
    leave_one_out_baseline,
)
from gan_writer.adversarial.experience import EstimatorConfig, Experience, make_experience, policy_loss
from gan_writer.adversarial.losses import (
    EMABaseline,
    aggregate,
    batch_mean_baseline,
    kl_k1,
    kl_k3,
    kl_to_reference,
    maligan_advantages,
    policy_gradient_loss,
    ppo_clip_loss,
)
from gan_writer.adversarial.rewards import compute_rewards, prefix_rewards, sequence_rewards
from gan_writer.adversarial.rollout import (
    DiscriminatorFn,
    make_rollout_policy,
    mc_rollout_rewards,
    sample_with_state,
    update_rollout_policy,
)

__all__ = [
    "DiscriminatorFn", "EMABaseline", "EstimatorConfig", "Experience", "aggregate", "batch_mean_baseline",
    "compute_rewards", "discounted_returns", "group_ids_for", "group_normalized_advantages", "kl_k1", "kl_k3",
    "kl_to_reference", "leave_one_out_baseline", "make_experience", "make_rollout_policy", "maligan_advantages",
    "mc_rollout_rewards", "policy_gradient_loss", "policy_loss", "ppo_clip_loss", "prefix_rewards",
    "sample_with_state", "sequence_rewards", "update_rollout_policy",
]
