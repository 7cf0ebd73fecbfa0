"""Adversarial training by policy gradient with Monte Carlo rollouts (SeqGAN, Yu et al. 2017).

One training step (one "adversarial batch" of the SeqGAN code):

1. ``g_steps`` times: sample ``g_batch_size`` sequences from the generator, reward every
   token by Monte Carlo rollouts scored by the discriminator
   (:func:`gan_writer.adversarial.rollout.mc_rollout_rewards`), take a policy-gradient
   step (:func:`gan_writer.adversarial.losses.policy_gradient_loss`), optionally with a
   KL penalty to the frozen MLE generator (Ziegler et al. 2019);
2. optionally ``mle_steps`` teacher-forced steps on the real batch;
3. update the delayed rollout policy (if used) with rate ``rollout_update_rate``;
4. ``d_steps`` times: draw ``d_num_samples`` fresh negatives and train the discriminator
   ``d_epochs`` passes over them against as many real samples (SeqGAN: 5 × 3 epochs).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from gan_writer.adversarial.losses import EMABaseline, batch_mean_baseline, kl_to_reference, policy_gradient_loss
from gan_writer.adversarial.rollout import make_rollout_policy, mc_rollout_rewards, sample_with_state, update_rollout_policy
from gan_writer.metrics.nll import token_nll
from gan_writer.models import adapters
from gan_writer.sampling import mask_after_eos
from gan_writer.systems.discriminator import DiscriminatorConfig, DiscriminatorStage, discriminator_loss

BASELINES = ("none", "mean", "ema")
ROLLOUT_POLICIES = ("current", "delayed")


class SeqGANModule(DiscriminatorStage):
    """The adversarial stage (manual optimization, generator and discriminator optimizers).

    Logs ``adv/reward_mean`` (mean Monte Carlo reward over real tokens, in [0, 1]),
    ``adv/g_loss`` (policy-gradient loss), ``adv/advantage_std``, ``adv/kl_to_mle`` (nats
    per token, sampled estimate, always logged), ``adv/mle_nll`` (with ``mle_steps``),
    ``disc/loss``, ``disc/acc_real``, ``disc/acc_fake``, ``val/nll``, the ``val/disc_*``
    accuracies of :meth:`~gan_writer.systems.discriminator.DiscriminatorStage.validate_discriminator`,
    and samples as text.

    Args:
        init_checkpoint: generator to start from (an MLE or discriminator-pretraining
            checkpoint; its generator is also kept frozen as the KL reference).
        discriminator_checkpoint: pretrained discriminator (default: ``init_checkpoint``
            when that holds one, else a fresh one from ``discriminator``).
        discriminator: how to build a fresh discriminator.
        tokenizer, max_length: linked from the data module (``data.tokenizer`` must be the
            checkpoint path so the ids match).
        g_batch_size: sequences sampled per generator step (SeqGAN: 64).
        g_steps, d_steps, d_epochs, d_num_samples: see the module docstring
            (SeqGAN: 1, 5, 3, 10,000).
        rollout_num: completions per prefix (SeqGAN: 16).
        rollout_policy: ``current`` (the generator itself, reusing its sampling KV cache)
            or ``delayed`` (a copy updated as ``θ ← rate·θ + (1−rate)·θ_gen``).
        rollout_update_rate: the delayed copy's rate (SeqGAN: 0.8).
        baseline: ``none`` (SeqGAN), ``mean`` (batch mean reward per position) or ``ema``.
        ema_decay: decay of the ``ema`` baseline.
        mle_steps: teacher-forced steps on real data per adversarial step (0 = none).
        kl_coef: weight of the full-distribution KL(π‖π_mle) added to the loss (0 = none).
        g_lr, d_lr: Adam learning rates (SeqGAN: 0.01 for its LSTM; 1e-4 for D).
        grad_clip: generator gradient-norm clip (SeqGAN: 5.0; 0 = off).
        temperature: sampling and rollout temperature (SeqGAN: 1).
        max_rollout_batch: cap on rows decoded at once in rollouts (memory).
        num_text_samples: texts written to TensorBoard per validation.
    """

    def __init__(
        self,
        init_checkpoint: str,
        discriminator_checkpoint: str | None = None,
        discriminator: DiscriminatorConfig | None = None,
        tokenizer: Any = None,
        max_length: int = 64,
        g_batch_size: int = 64,
        g_steps: int = 1,
        d_steps: int = 5,
        d_epochs: int = 3,
        d_num_samples: int = 256,
        d_batch_size: int = 64,
        rollout_num: int = 16,
        rollout_policy: str = "current",
        rollout_update_rate: float = 0.8,
        baseline: str = "none",
        ema_decay: float = 0.9,
        mle_steps: int = 0,
        kl_coef: float = 0.0,
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        grad_clip: float = 5.0,
        temperature: float = 1.0,
        max_rollout_batch: int | None = None,
        num_text_samples: int = 8,
    ) -> None:
        super().__init__()
        if baseline not in BASELINES:
            raise ValueError(f"model.baseline must be one of {BASELINES}, got {baseline!r}")
        if rollout_policy not in ROLLOUT_POLICIES:
            raise ValueError(f"model.rollout_policy must be one of {ROLLOUT_POLICIES}, got {rollout_policy!r}")
        if rollout_num < 1 or g_batch_size < 1:
            raise ValueError("model.rollout_num and model.g_batch_size must be >= 1")
        self.save_hyperparameters(ignore=["tokenizer"])
        self.automatic_optimization = False
        self.setup_generator(None, tokenizer, init_checkpoint, max_length)
        self.mle_reference = adapters.reference_policy(self.generator)  # frozen (copy, or adapter disabled/copied) for the KL
        self.rollout = adapters.rollout_policy(self.generator) if rollout_policy == "delayed" else None
        self.setup_discriminator(discriminator, discriminator_checkpoint, fallback=self._meta.get("init_checkpoint"))
        self.ema = EMABaseline(ema_decay) if baseline == "ema" else None
        self._val_sum = self._val_count = 0.0

    # ---- generator ----------------------------------------------------------------------
    def generator_step(self, g_opt) -> dict[str, float]:
        """One policy-gradient step; returns the values to log."""
        hp = self.hparams
        ids, state = sample_with_state(self.generator, hp.g_batch_size, self.max_length, temperature=hp.temperature)
        mask = mask_after_eos(ids, self.generator.eos_token_id)
        policy = self.rollout if self.rollout is not None else self.generator
        rewards = mc_rollout_rewards(
            policy, self.discriminator, ids, mask, hp.rollout_num,
            state=state if self.rollout is None else None, temperature=hp.temperature,
            max_rollout_batch=hp.max_rollout_batch,
        )
        if hp.baseline == "mean":
            base = batch_mean_baseline(rewards, mask)
        elif hp.baseline == "ema":
            if not bool(self.ema.seen.any()):  # first step: start the average at this batch
                self.ema.update(rewards, mask)
            base = self.ema(ids.size(1)).to(rewards.device)
            self.ema.update(rewards, mask)
        else:
            base = None
        # the policy that sampled is the one differentiated: dropout off (eval mode), and the
        # same temperature (REINFORCE is on-policy; the KL compares the tempered policies)
        self.generator.eval()
        logits = self.generator.logits(ids, mask) / hp.temperature
        log_probs = logits.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        loss = policy_gradient_loss(log_probs, rewards, mask, base)
        with torch.no_grad():
            ref_logits = self.mle_reference.logits(ids, mask) / hp.temperature
        if hp.kl_coef:
            kl = kl_to_reference(logits, ref_logits, mask)
            loss = loss + hp.kl_coef * kl
        else:
            kl = kl_to_reference(log_probs.detach(), ref_logits.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1), mask)
        loss = loss + adapters.adapter_regulariser(self.generator)  # AdaLoRA's orthogonal term (0 otherwise)
        g_opt.zero_grad()
        self.manual_backward(loss)
        if hp.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), hp.grad_clip)
        g_opt.step()
        adapters.after_backward(self.generator)  # AdaLoRA's rank allocation (no-op otherwise)
        real = mask.bool()
        adv = rewards - (base if base is not None else 0.0)
        return {
            "adv/reward_mean": float(rewards[real].mean()),
            "adv/g_loss": float(loss.detach()),
            "adv/advantage_std": float(adv[real].std()) if real.sum() > 1 else 0.0,
            "adv/kl_to_mle": float(kl.detach()),
            "adv/sample_length": float(mask.sum(1).float().mean()),
        }

    def mle_step(self, g_opt, batch: dict[str, torch.Tensor]) -> float:
        """One teacher-forced step on real data; returns the NLL in nats per token."""
        self.generator.train()
        total, n = token_nll(self.generator.log_probs(batch["ids"], batch["attention_mask"]), batch["attention_mask"])
        loss = total / n
        g_opt.zero_grad()
        self.manual_backward(loss)
        if self.hparams.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.hparams.grad_clip)
        g_opt.step()
        return float(loss.detach())

    # ---- discriminator ------------------------------------------------------------------
    def discriminator_steps(self, d_opt) -> dict[str, float]:
        """``d_steps`` × (fresh negatives, ``d_epochs`` passes); returns the last pass's means."""
        hp = self.hparams
        self.discriminator.train()
        stats = []
        for _ in range(hp.d_steps):
            fake = self.fake_batch(hp.d_num_samples, hp.temperature)
            real = self.real_batch(hp.d_num_samples)
            for _ in range(hp.d_epochs):
                order = torch.randperm(hp.d_num_samples)
                for start in range(0, hp.d_num_samples, hp.d_batch_size):
                    idx = order[start:start + hp.d_batch_size]
                    loss, bce, acc_r, acc_f = discriminator_loss(
                        self.discriminator, {k: v[idx] for k, v in real.items()}, {k: v[idx] for k, v in fake.items()}
                    )
                    d_opt.zero_grad()
                    self.manual_backward(loss)
                    d_opt.step()
                    stats.append((float(loss.detach()), float(bce), float(acc_r), float(acc_f)))
        if not stats:
            return {}
        tail = stats[-math.ceil(hp.d_num_samples / hp.d_batch_size):]  # the last pass
        loss, bce, acc_r, acc_f = (sum(s[i] for s in tail) / len(tail) for i in range(4))
        return {"disc/loss": loss, "disc/bce": bce, "disc/acc_real": acc_r, "disc/acc_fake": acc_f}

    # ---- Lightning hooks ------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        g_opt, d_opt = self.optimizers()
        logs: dict[str, float] = {}
        for _ in range(self.hparams.g_steps):
            logs.update(self.generator_step(g_opt))
        for _ in range(self.hparams.mle_steps):
            logs["adv/mle_nll"] = self.mle_step(g_opt, batch)
        if self.rollout is not None:
            adapters.update_rollout(self.rollout, self.generator, self.hparams.rollout_update_rate)
        if self.hparams.d_steps:
            logs.update(self.discriminator_steps(d_opt))
        for key, value in logs.items():
            self.log(key, value, prog_bar=key in ("adv/reward_mean", "disc/acc_fake"))

    def on_validation_epoch_start(self) -> None:
        self._val_sum = self._val_count = 0.0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        total, n = token_nll(self.generator.log_probs(batch["ids"], batch["attention_mask"]), batch["attention_mask"])
        self._val_sum += float(total)
        self._val_count += float(n)
        self.validate_discriminator(batch, batch_idx, self.hparams.temperature)

    def on_validation_epoch_end(self) -> None:
        if self._val_count:
            self.log("val/nll", self._val_sum / self._val_count, prog_bar=True)
        if self.hparams.num_text_samples and not self.trainer.sanity_checking:
            self.log_samples(self.decode(self.fake_batch(self.hparams.num_text_samples)["ids"]))

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.g_lr)
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.d_lr)
        return [g_opt, d_opt]

