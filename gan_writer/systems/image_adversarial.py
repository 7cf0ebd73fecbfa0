"""Multi-adversarial training of an image-conditioned generator (Liu et al. 2018, "Beyond
Narrative Description: Generating Poetry from Images by Multi-Adversarial Training").

One training step, on a batch of real image–poem pairs:

1. for each of up to ``images_per_step`` distinct images of the batch, sample
   ``samples_per_image`` poems from the generator conditioned on it and reward every token
   with ``λ·D_multimodal + (1−λ)·D_style`` — by Monte Carlo rollouts
   (:func:`gan_writer.adversarial.rollout.mc_rollout_rewards`, ``rollout_num ≥ 1``) or as a
   sequence-level reward (``rollout_num: 0``);
2. one policy-gradient step over all those samples
   (:func:`gan_writer.adversarial.losses.policy_gradient_loss`, optional leave-one-out mean baseline,
   optional KL penalty to the frozen MLE generator, Ziegler et al. 2019), then optionally
   ``mle_steps`` teacher-forced steps on the real pairs;
3. ``d_steps`` discriminator steps: D_multimodal on paired / unpaired (a real poem of another
   image) / generated, D_style (the project's text discriminator) on real vs generated.

The first ``d_pretrain_steps`` steps train only the discriminators.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F

from gan_writer.adversarial.losses import batch_mean_baseline, kl_to_reference, policy_gradient_loss
from gan_writer.adversarial.rollout import make_rollout_policy, mc_rollout_rewards, sample_with_state
from gan_writer.checkpoint import KEY, resolve_checkpoint
from gan_writer.multimodal.discriminator import (
    PAIRED,
    MultimodalDiscriminator,
    MultimodalDiscriminatorConfig,
    mismatch_index,
    multimodal_discriminator_loss,
)
from gan_writer.multimodal.encoder import check_same_encoder
from gan_writer.multimodal.generator import ImagePrefixGenerator
from gan_writer.multimodal.reward import MixedReward, sequence_rewards
from gan_writer.sampling import mask_after_eos
from gan_writer.systems.discriminator import DiscriminatorConfig, DiscriminatorStage, discriminator_loss
from gan_writer.systems.image_mle import ImageStage
from gan_writer.systems.options import DISCRIMINATOR_RANGES, check_options

BASELINES = ("none", "mean")


def load_multimodal_discriminator(path: str) -> tuple[MultimodalDiscriminator, dict]:
    """The multimodal discriminator of an image-adversarial checkpoint, and its spec.

    Raises:
        ValueError: the checkpoint holds none.
        UnsafeFileError: the file needs objects other than tensors and plain values (it is
            read without running code, :func:`gan_writer.safe_load.load_checkpoint`).
    """
    from gan_writer.safe_load import load_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(path), map_location="cpu")
    spec = ckpt.get(KEY, {}).get("multimodal_discriminator")
    if not spec:
        raise ValueError(f"{path} holds no multimodal discriminator: pass a checkpoint of systems.image_adversarial")
    disc = MultimodalDiscriminatorConfig(**spec["config"]).build(spec["vocab_size"], spec["feature_dim"], spec["pad_token_id"])
    prefix = "mm_discriminator."
    disc.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    return disc, spec


class ImageAdversarialModule(ImageStage, DiscriminatorStage):
    """Policy-gradient training against a multimodal and a style discriminator.

    Logs ``adv/reward_mean`` (mixed reward over real tokens), ``adv/reward_multimodal`` and
    ``adv/reward_style`` (the two discriminators on the whole samples, in [0, 1]),
    ``adv/g_loss``, ``adv/kl_to_mle`` (nats per token), ``adv/mle_nll`` (with ``mle_steps``),
    ``adv/sample_length``; ``disc/mm_loss``, ``disc/mm_acc`` (3-way),
    ``disc/mm_acc_paired``, ``disc/mm_acc_unpaired``, ``disc/mm_acc_generated``,
    ``disc/style_loss``, ``disc/style_acc_real``, ``disc/style_acc_fake``; at validation
    ``val/nll``, ``val/ppl``, ``val/nll_mismatched``, ``val/image_gain``,
    ``val/mm_prob_paired`` (D_multimodal's P(paired) on held-out real pairs) and
    ``val/mm_prob_paired_mismatched`` (on held-out poems shown with another image).

    Args:
        init_checkpoint: an image-conditioned checkpoint (``systems.image_mle``).
        image_encoder: optional; checked against the checkpoint's encoder.
        style_discriminator_checkpoint: a text discriminator (``systems.discriminator``
            stage, same tokenizer) for D_style; else a fresh one from ``style_discriminator``.
        style_discriminator: how to build a fresh D_style.
        multimodal_discriminator_checkpoint: continue D_multimodal from an image-adversarial checkpoint.
        multimodal_discriminator: how to build a fresh D_multimodal.
        multimodal_weight: ``λ`` (Liu et al. weigh the two rewards; 0.5 here).
        freeze_lm: None keeps the checkpoint's setting.
        tokenizer, max_length: linked from the data module.
        images_per_step, samples_per_image: generator batch = their product.
        rollout_num: Monte Carlo completions per prefix; 0 = sequence-level reward.
        baseline: ``none`` or ``mean`` (leave-one-out: the mean reward of the other rows, per position).
        kl_coef: weight of the full-distribution KL(π‖π_mle) added to the loss (0 = none; it is logged anyway).
        mle_steps: teacher-forced steps on the real pairs after each policy-gradient step.
        d_steps: discriminator updates per step; d_pretrain_steps: discriminator-only steps first.
        g_lr, d_lr: Adam learning rates; grad_clip: generator gradient-norm clip (0 = off).
        temperature: sampling and rollout temperature.
        num_text_samples: validation images whose sampled poem goes to TensorBoard.
    """

    def __init__(
        self,
        init_checkpoint: str,
        image_encoder: str | None = None,
        style_discriminator_checkpoint: str | None = None,
        style_discriminator: DiscriminatorConfig | None = None,
        multimodal_discriminator_checkpoint: str | None = None,
        multimodal_discriminator: MultimodalDiscriminatorConfig | None = None,
        multimodal_weight: float = 0.5,
        freeze_lm: bool | None = None,
        tokenizer: Any = None,
        max_length: int = 64,
        images_per_step: int = 4,
        samples_per_image: int = 4,
        rollout_num: int = 4,
        baseline: str = "mean",
        kl_coef: float = 0.0,
        mle_steps: int = 0,
        d_steps: int = 1,
        d_pretrain_steps: int = 0,
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        grad_clip: float = 5.0,
        temperature: float = 1.0,
        num_text_samples: int = 4,
    ) -> None:
        check_options("model.init_args", locals(), {
            "style_discriminator": DISCRIMINATOR_RANGES, "multimodal_weight": "[0, 1]", "max_length": ">= 2",
            "images_per_step": ">= 1", "samples_per_image": ">= 1", "rollout_num": ">= 0", "kl_coef": ">= 0",
            "mle_steps": ">= 0", "d_steps": ">= 0", "d_pretrain_steps": ">= 0", "g_lr": "> 0", "d_lr": "> 0",
            "grad_clip": ">= 0", "temperature": "> 0", "num_text_samples": ">= 0"})
        super().__init__()
        if baseline not in BASELINES:
            raise ValueError(f"model.baseline must be one of {BASELINES}, got {baseline!r}")
        if not 0.0 <= multimodal_weight <= 1.0:
            raise ValueError(f"model.multimodal_weight (λ) must be in [0, 1], got {multimodal_weight}")
        if images_per_step < 1 or samples_per_image < 1 or rollout_num < 0:
            raise ValueError("model.images_per_step and model.samples_per_image must be >= 1, model.rollout_num >= 0")
        self.save_hyperparameters(ignore=["tokenizer", "image_encoder"])  # the data module logs image_encoder
        self.automatic_optimization = False
        self.setup_generator(None, tokenizer, init_checkpoint, max_length)
        if not isinstance(self.generator, ImagePrefixGenerator):
            raise ValueError(
                f"model.init_checkpoint {init_checkpoint} has no image conditioning: train one first "
                "(gan-writer fit --config experiments/image_poem/mle.yaml) and pass that run"
            )
        if image_encoder:
            check_same_encoder(self.generator.encoder_identity, image_encoder, what=str(init_checkpoint))
        if freeze_lm is not None:
            self.generator.set_freeze_lm(freeze_lm)
        self.check_generator(max_length)
        self.generator.train()
        self.mle_reference = make_rollout_policy(self.generator)  # frozen copy for the KL
        self.setup_discriminator(style_discriminator, style_discriminator_checkpoint)
        if multimodal_discriminator_checkpoint:
            self.mm_discriminator, self._mm_spec = load_multimodal_discriminator(multimodal_discriminator_checkpoint)
            self._meta["multimodal_discriminator_checkpoint"] = str(resolve_checkpoint(multimodal_discriminator_checkpoint))
        else:
            config = multimodal_discriminator or MultimodalDiscriminatorConfig()
            self.mm_discriminator = config.build(self.generator.vocab_size, self.generator.feature_dim, self.generator.pad_token_id)
            self._mm_spec = {"config": asdict(config), "vocab_size": self.generator.vocab_size,
                             "feature_dim": self.generator.feature_dim, "pad_token_id": self.generator.pad_token_id}
        self.register_buffer("adv_steps", torch.zeros((), dtype=torch.long))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[KEY]["multimodal_discriminator"] = self._mm_spec

    # ---- samples and rewards ------------------------------------------------------------
    def draw(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Samples for the batch's first distinct images with their per-token rewards.

        Returns ``ids`` ``(G, T)``, ``attention_mask``, ``rewards`` ``(G, T)``, ``gen_features``
        (what the generator read, per row), ``features`` ``(G, H)`` pooled, ``reward_mm`` and
        ``reward_style`` ``(G,)`` — ``G = images × samples_per_image``.
        """
        hp = self.hparams
        first = {}
        for row, img in enumerate(batch["image_index"].tolist()):
            first.setdefault(img, row)
        rows = list(first.values())[: hp.images_per_step]
        gen_feats, pooled = self.batch_features(batch)[rows], batch["features"][rows]
        out: dict[str, list[torch.Tensor]] = {k: [] for k in ("ids", "attention_mask", "rewards", "reward_mm", "reward_style")}
        for i in range(len(rows)):
            policy = self.generator.condition(gen_feats[i:i + 1])
            ids, state = sample_with_state(policy, hp.samples_per_image, self.max_length, temperature=hp.temperature)
            mask = mask_after_eos(ids, self.generator.eos_token_id)
            reward = MixedReward(self.mm_discriminator, self.discriminator, pooled[i:i + 1], hp.multimodal_weight)
            with torch.no_grad():
                reward.eval()
                mm, style = reward.components(ids, mask)
                if hp.rollout_num:
                    rewards = mc_rollout_rewards(policy, reward, ids, mask, hp.rollout_num, state=state, temperature=hp.temperature)
                else:
                    rewards = sequence_rewards(hp.multimodal_weight * mm + (1 - hp.multimodal_weight) * style, mask)
            for key, value in zip(out, (ids, mask, rewards, mm, style)):
                out[key].append(value)
        width = max(t.size(1) for t in out["ids"])
        pad = {"ids": self.generator.pad_token_id, "attention_mask": 0, "rewards": 0.0}
        result = {k: torch.cat([F.pad(t, (0, width - t.size(1)), value=pad[k]) for t in v]) if k in pad else torch.cat(v)
                  for k, v in out.items()}
        n = hp.samples_per_image
        result["gen_features"] = gen_feats.repeat_interleave(n, 0)
        result["features"] = pooled.repeat_interleave(n, 0)
        return result

    def generator_step(self, g_opt, fake: dict[str, torch.Tensor]) -> dict[str, float]:
        """One policy-gradient step on ``fake`` (from :meth:`draw`); returns the values to log."""
        ids, mask, rewards = fake["ids"], fake["attention_mask"], fake["rewards"]
        base = batch_mean_baseline(rewards, mask) if self.hparams.baseline == "mean" else None
        self.generator.eval()  # the sampling policy: dropout off, same temperature (on-policy)
        logits = self.generator.condition(fake["gen_features"]).logits(ids, mask) / self.hparams.temperature
        log_probs = logits.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        loss = policy_gradient_loss(log_probs, rewards, mask, base)
        self.mle_reference.eval()  # Lightning's model.train() reaches it too
        with torch.no_grad():
            ref = self.mle_reference.condition(fake["gen_features"]).logits(ids, mask) / self.hparams.temperature
        if self.hparams.kl_coef:
            kl = kl_to_reference(logits, ref, mask)
            loss = loss + self.hparams.kl_coef * kl
        else:
            kl = kl_to_reference(log_probs.detach(), ref.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1), mask)
        g_opt.zero_grad()
        self.manual_backward(loss)
        g_opt.step()  # clipped in on_before_optimizer_step
        self.generator.train()
        return {"adv/g_loss": float(loss.detach()), "adv/reward_mean": float(rewards[mask.bool()].mean()),
                "adv/kl_to_mle": float(kl.detach())}

    def mle_step(self, g_opt, batch: dict[str, torch.Tensor]) -> float:
        """One teacher-forced step on the real pairs; returns the NLL in nats per token."""
        total, n = self.batch_nll(batch)
        loss = total / n
        g_opt.zero_grad()
        self.manual_backward(loss)
        g_opt.step()  # clipped in on_before_optimizer_step
        return float(loss.detach())

    def discriminator_step(self, d_opt, batch: dict[str, torch.Tensor], fake: dict[str, torch.Tensor]) -> dict[str, float]:
        """One update of both discriminators; returns the values to log."""
        self.mm_discriminator.train()
        self.discriminator.train()
        real = {"ids": batch["ids"], "attention_mask": batch["attention_mask"]}
        gen = {"ids": fake["ids"], "attention_mask": fake["attention_mask"]}
        mm_loss, mm = multimodal_discriminator_loss(self.mm_discriminator, batch["features"], real, batch["image_index"],
                                                    gen, fake["features"])
        style_loss, _, acc_r, acc_f = discriminator_loss(self.discriminator, real, gen)
        d_opt.zero_grad()
        self.manual_backward(mm_loss + style_loss)
        d_opt.step()
        logs = {f"disc/mm_{k}": v for k, v in mm.items()}
        logs.update({"disc/mm_loss": float(mm_loss.detach()), "disc/style_loss": float(style_loss.detach()),
                     "disc/style_acc_real": float(acc_r), "disc/style_acc_fake": float(acc_f)})
        return logs

    # ---- Lightning hooks ----------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        g_opt, d_opt = self.optimizers()
        fake = self.draw(batch)
        logs = {"adv/reward_multimodal": float(fake["reward_mm"].mean()), "adv/reward_style": float(fake["reward_style"].mean()),
                "adv/sample_length": float(fake["attention_mask"].sum(1).float().mean())}
        if int(self.adv_steps) >= self.hparams.d_pretrain_steps:
            logs.update(self.generator_step(g_opt, fake))
            for _ in range(self.hparams.mle_steps):
                logs["adv/mle_nll"] = self.mle_step(g_opt, batch)
        for _ in range(self.hparams.d_steps):
            logs.update(self.discriminator_step(d_opt, batch, fake))
        self.adv_steps += 1
        for key, value in logs.items():
            self.log(key, value, prog_bar=key in ("adv/reward_mean", "disc/mm_acc"))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.validate_nll(batch)
        n = batch["ids"].size(0)
        p = self.mm_discriminator(batch["features"], batch["ids"], batch["attention_mask"]).softmax(-1)[:, PAIRED]
        self.log("val/mm_prob_paired", p.mean(), batch_size=n)
        j, valid = mismatch_index(batch["image_index"].cpu())
        if bool(valid.any()):
            j, valid = j.to(self.device), valid.to(self.device)
            q = self.mm_discriminator(batch["features"][j][valid], batch["ids"][valid], batch["attention_mask"][valid])
            self.log("val/mm_prob_paired_mismatched", q.softmax(-1)[:, PAIRED].mean(), batch_size=int(valid.sum()))

    def on_validation_epoch_end(self) -> None:
        self.log_validation()

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clip the generator's gradients here: under mixed precision Lightning unscales them
        just before this hook (clipping before ``optimizer.step()`` would clip scaled ones)."""
        if optimizer is getattr(self, "_g_optimizer", None) and self.hparams.grad_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")

    def configure_optimizers(self):
        g_opt = torch.optim.Adam([p for p in self.generator.parameters() if p.requires_grad], lr=self.hparams.g_lr)
        d_params = list(self.mm_discriminator.parameters()) + list(self.discriminator.parameters())
        self._g_optimizer = g_opt
        return [g_opt, torch.optim.Adam(d_params, lr=self.hparams.d_lr)]
