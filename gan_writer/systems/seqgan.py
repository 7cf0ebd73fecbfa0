"""Adversarial training by policy gradient (SeqGAN, Yu et al. 2017, and the estimators after it).

One training step (one "adversarial batch" of the SeqGAN code):

1. ``g_steps`` times: sample ``g_batch_size`` sequences from the generator and reward every
   token (:func:`gan_writer.adversarial.experience.make_experience`: Monte Carlo rollouts,
   prefix-discriminator scores or the sequence score, a baseline or advantage, optionally a
   KL penalty to the frozen MLE generator), then ``ppo_epochs`` policy steps on that
   experience (:func:`gan_writer.adversarial.experience.policy_loss`);
2. optionally ``mle_steps`` teacher-forced steps on the real batch;
3. update the delayed rollout policy (if used) with rate ``rollout_update_rate``;
4. ``d_steps`` times: draw ``d_num_samples`` fresh negatives and train the discriminator
   ``d_epochs`` passes over them against as many real samples (SeqGAN: 5 × 3 epochs).
"""
from __future__ import annotations

from typing import Any

import os

import torch

from lightning.pytorch.utilities import rank_zero_warn

from gan_writer import distributed
from gan_writer.adversarial.advantages import identity
from gan_writer.adversarial.experience import EstimatorConfig, make_experience, policy_loss
from gan_writer.adversarial.losses import EMABaseline
from gan_writer.metrics.nll import token_nll
from gan_writer.resume import RNG_KEY
from gan_writer.models import adapters
from gan_writer.systems.disc_training import DEFAULT_MAX_SAMPLE_BATCH, discriminator_optimizer, train_discriminator
from gan_writer.systems.discriminator import DiscriminatorConfig, DiscriminatorStage
from gan_writer.systems.optim import trainer_precision
from gan_writer.systems.options import DISCRIMINATOR_RANGES, check_options

#: the old ``baseline`` option, mapped onto ``advantage`` (``mean`` is now leave-one-out)
BASELINES = {"none": "none", "mean": "leave_one_out", "ema": "ema"}
ROLLOUT_POLICIES = ("current", "delayed")
_RANGES = {"max_length": ">= 2", "g_batch_size": ">= 1", "g_steps": ">= 0", "d_steps": ">= 0", "d_epochs": ">= 1",
           "d_num_samples": ">= 1", "d_batch_size": ">= 1", "rollout_num": ">= 1", "rollout_update_rate": "[0, 1]",
           "ema_decay": "[0, 1)", "mle_steps": ">= 0", "kl_coef": ">= 0", "g_lr": "> 0", "d_lr": "> 0",
           "grad_clip": ">= 0", "temperature": "> 0", "max_rollout_batch": ">= 1", "num_text_samples": ">= 0",
           "group_size": ">= 0", "gamma": "[0, 1]", "clip_eps": "> 0", "ppo_epochs": ">= 1", "val_seed": ">= 0",
           "max_sample_batch": ">= 1", "form_reward_weight": "[0, 1]",
           "discriminator": DISCRIMINATOR_RANGES}


class SeqGANModule(DiscriminatorStage):
    """The adversarial stage (manual optimization, generator and discriminator optimizers).

    Logs ``adv/reward_mean`` (mean reward over real tokens, before the KL penalty),
    ``adv/score_mean`` (mean ``D(y)`` of the samples), ``adv/g_loss`` (policy loss),
    ``adv/advantage_std``, ``adv/kl_to_mle`` (k1, nats per token, always logged),
    ``adv/grad_norm`` (generator gradient norm before clipping, after mixed-precision
    unscaling), ``adv/ppo_clip_fraction`` (``ppo_clip``), ``adv/kl_k3`` (``kl_penalty: loss``),
    ``adv/sample_length``, ``adv/mle_nll`` (with ``mle_steps``),
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
        reward, advantage, loss, loss_aggregation, group_size, gamma, kl_penalty, clip_eps,
            ppo_epochs, rollout_batching: the estimator, see
            :mod:`gan_writer.adversarial.experience` (SeqGAN: ``mc_rollout``, ``none``,
            ``reinforce``, ``sum``).
        rollout_num: completions per prefix (SeqGAN: 16).
        rollout_policy: ``current`` (the generator itself, reusing its sampling KV cache)
            or ``delayed`` (a copy updated as ``θ ← rate·θ + (1−rate)·θ_gen``).
        rollout_update_rate: the delayed copy's rate (SeqGAN: 0.8).
        baseline: deprecated spelling of ``advantage`` (``none``, ``mean`` = ``leave_one_out``,
            ``ema``); ``None``: use ``advantage``.
        ema_decay: decay of the ``ema`` baseline.
        mle_steps: teacher-forced steps on real data per adversarial step (0 = none).
        kl_coef: weight ``β`` of the KL penalty to the MLE generator (0 = none), applied as
            ``kl_penalty`` says.
        g_lr, d_lr: Adam learning rates (SeqGAN: 0.01 for its LSTM; 1e-4 for D).
        grad_clip: generator gradient-norm clip (SeqGAN: 5.0; 0 = off), applied in
            ``on_before_optimizer_step``, where Lightning has unscaled mixed-precision gradients.
        temperature: sampling and rollout temperature (SeqGAN: 1).
        max_rollout_batch: cap on rows decoded at once in rollouts (memory).
        num_text_samples: texts written to TensorBoard per validation.
        val_seed: seed of validation's own random generator (its fake samples never draw
            from the training stream, so the validation schedule does not change training).
        max_sample_batch: most negatives sampled at once (peak memory independent of
            ``d_num_samples``; ``null``: all at once).
        form, form_reward_weight: a poem form (``wujue``, ``sonnet``, ... see
            :data:`gan_writer.writing.forms.FORMS`) and its weight ``w`` in the reward: the
            sequence score becomes ``(1 − w)·D(y) + w·form(y)``
            (:func:`gan_writer.adversarial.form_reward.with_form_reward`); for
            ``reward: mc_rollout`` or ``sequence`` (0 = off).
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
        baseline: str | None = None,
        advantage: str = "none",
        reward: str = "mc_rollout",
        loss: str = "reinforce",
        loss_aggregation: str = "token_mean",
        group_size: int = 0,
        gamma: float = 0.0,
        kl_penalty: str = "reward",
        clip_eps: float = 0.2,
        ppo_epochs: int = 1,
        rollout_batching: str = "per_prefix",
        ema_decay: float = 0.9,
        mle_steps: int = 0,
        kl_coef: float = 0.0,
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        grad_clip: float = 5.0,
        temperature: float = 1.0,
        max_rollout_batch: int | None = None,
        num_text_samples: int = 8,
        val_seed: int = 0,
        max_sample_batch: int | None = DEFAULT_MAX_SAMPLE_BATCH,
        form: str | None = None,
        form_reward_weight: float = 0.0,
    ) -> None:
        check_options("model.init_args", locals(), _RANGES)
        super().__init__()
        if baseline is not None:
            if baseline not in BASELINES:
                raise ValueError(f"model.init_args.baseline must be one of {tuple(BASELINES)}, got {baseline!r} "
                                 "(prefer model.init_args.advantage)")
            if advantage not in ("none", BASELINES[baseline]):
                raise ValueError(f"model.init_args.baseline={baseline!r} (deprecated: advantage={BASELINES[baseline]!r}) "
                                 f"conflicts with model.init_args.advantage={advantage!r}: drop baseline")
            rank_zero_warn(f"model.init_args.baseline is deprecated: use advantage: {BASELINES[baseline]}")
            advantage = BASELINES[baseline]
        if rollout_policy not in ROLLOUT_POLICIES:
            raise ValueError(f"model.init_args.rollout_policy must be one of {ROLLOUT_POLICIES}, got {rollout_policy!r}")
        if rollout_num < 1 or g_batch_size < 1:
            raise ValueError("model.init_args.rollout_num and model.init_args.g_batch_size must be >= 1")
        self.save_hyperparameters(ignore=["tokenizer"])
        self.hparams.advantage = advantage
        self.estimator = EstimatorConfig.from_hparams(self.hparams)
        self.estimator.validate(g_batch_size, world_size=0)  # the ranks: checked again in on_fit_start
        self.max_sample_batch = max_sample_batch
        self.automatic_optimization = False
        self.setup_generator(None, tokenizer, init_checkpoint, max_length)
        self.mle_reference = adapters.reference_policy(self.generator)  # frozen (copy, or adapter disabled/copied) for the KL
        self.rollout = adapters.rollout_policy(self.generator) if rollout_policy == "delayed" else None
        self.setup_discriminator(discriminator, discriminator_checkpoint, fallback=self._meta.get("init_checkpoint"))
        self._form_mix = self._form_scorer(form, form_reward_weight, reward)  # a function, or None
        if reward == "prefix" and not hasattr(self.discriminator, "prefix_logits"):
            raise ValueError(
                f"model.init_args.reward=prefix needs a prefix discriminator, but the discriminator is a "
                f"{type(self.discriminator).__name__}: set model.init_args.discriminator.kind to prefix_lstm or "
                "prefix_transformer (or pass a discriminator_checkpoint that holds one)"
            )
        self.ema = EMABaseline(ema_decay) if advantage == "ema" else None
        self._val_sum = self._val_count = 0.0
        self._val_rng: torch.Generator | None = None
        self._grad_norm = float("nan")
        self._g_optimizer = None
        self._rank_rngs: dict[str, torch.Generator] = {}  # under DDP: this rank's "sample" and "real" streams

    # ---- generator ----------------------------------------------------------------------
    @property
    def scorer(self):
        """What scores samples for the reward: the discriminator, or it mixed with the form term."""
        return self.discriminator if self._form_mix is None else self._form_mix

    def _form_scorer(self, form: str | None, weight: float, reward: str):
        """``None`` (no form term), or the discriminator mixed with the form score, a plain
        function (not a submodule: the discriminator's weights are saved once).

        Raises:
            ValueError: a weight without a form, a prefix reward (per-prefix scores have no
                form), or a model without a tokenizer.
        """
        if not weight:
            return None
        if not form:
            raise ValueError("model.init_args.form_reward_weight > 0 needs model.init_args.form (e.g. wujue, sonnet)")
        if reward == "prefix":
            raise ValueError("model.init_args.form_reward_weight works with reward: mc_rollout or sequence, not prefix")
        if self.tokenizer is None:
            raise ValueError("model.init_args.form_reward_weight needs a tokenizer to decode the samples")
        from gan_writer.adversarial.form_reward import with_form_reward

        return with_form_reward(self.discriminator, self.tokenizer, form, weight, self.generator.eos_token_id)

    def generator_step(self, g_opt) -> dict[str, float]:
        """Make experience, then ``ppo_epochs`` policy steps on it; returns the values to log."""
        hp, est = self.hparams, self.estimator
        exp = make_experience(
            self.generator, self.scorer, est, batch_size=hp.g_batch_size, max_length=self.max_length,
            reference=self.mle_reference, rollout_policy=self.rollout, ema=self.ema,
            rng=self._rank_stream("sample"), reduce=self._reduce,
        )
        stats: dict[str, float] = {}
        for _ in range(est.ppo_epochs):
            # the policy that sampled is the one differentiated: dropout off (eval mode), and the
            # same temperature (REINFORCE is on-policy; the KL compares the tempered policies)
            self.generator.eval()
            log_probs = self.generator.log_probs(exp.ids, exp.mask, temperature=est.temperature)
            loss, stats = policy_loss(exp, log_probs, est)
            loss = loss + adapters.adapter_regulariser(self.generator)  # AdaLoRA's orthogonal term (0 otherwise)
            g_opt.zero_grad()
            self.manual_backward(loss)
            g_opt.step()  # clipped in on_before_optimizer_step
            adapters.after_backward(self.generator)  # AdaLoRA's rank allocation (no-op otherwise)
        real = exp.mask.bool()
        return {
            "adv/reward_mean": float(exp.rewards[real].mean()),
            "adv/score_mean": float(exp.scores.mean()),
            "adv/g_loss": float(loss.detach()),
            "adv/advantage_std": float(exp.advantages[real].std()) if real.sum() > 1 else 0.0,
            "adv/kl_to_mle": float(exp.kl[real].mean()),
            "adv/grad_norm": self._grad_norm,
            "adv/sample_length": float(exp.mask.sum(1).float().mean()),
            **stats,
        }

    def mle_step(self, g_opt, batch: dict[str, torch.Tensor]) -> float:
        """One teacher-forced step on real data; returns the NLL in nats per token."""
        self.generator.train()
        total, n = token_nll(self.generator.log_probs(batch["ids"], batch["attention_mask"]), batch["attention_mask"])
        loss = total / n
        g_opt.zero_grad()
        self.manual_backward(loss)
        g_opt.step()  # clipped in on_before_optimizer_step
        return float(loss.detach())

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clip the generator's gradients here: under mixed precision Lightning unscales them
        just before this hook (clipping before ``optimizer.step()`` would clip scaled ones)."""
        if optimizer is not self._g_optimizer:
            return
        grads = [p.grad for p in self.generator.parameters() if p.grad is not None]
        self._grad_norm = float(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads]))) if grads else 0.0
        if self.hparams.grad_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")

    # ---- discriminator ------------------------------------------------------------------
    def discriminator_steps(self, d_opt) -> dict[str, float]:
        """``d_steps`` × (fresh negatives, ``d_epochs`` passes); returns the last pass's means
        (:func:`~gan_writer.systems.disc_training.train_discriminator`: no per-minibatch host sync)."""
        hp = self.hparams
        logs: dict[str, float] = {}
        for _ in range(hp.d_steps):
            fake = self.fake_batch(hp.d_num_samples, hp.temperature, generator=self._rank_stream("sample"))
            real = self.real_batch(hp.d_num_samples, generator=self._rank_stream("real"))
            logs = train_discriminator(self.discriminator, d_opt, real, fake, hp.d_epochs, hp.d_batch_size,
                                       backward=self.manual_backward)
        return logs

    # ---- data parallel (DDP) ----------------------------------------------------------------
    @property
    def _reduce(self):
        """Sums the baselines' batch statistics over the DDP ranks (the identity on one process)."""
        return distributed.sum_across_ranks if distributed.is_distributed() else identity

    def _rank_stream(self, name: str) -> torch.Generator | None:
        """This rank's ``sample`` (generator samples and rollouts) or ``real`` (real rows for
        the discriminator) stream; ``None`` (the global stream, as on one process) on rank 0."""
        return self._rank_rngs.get(name) if self.global_rank > 0 else None

    def _setup_rank_streams(self) -> None:
        """Under DDP, seed this rank's streams from the run seed (``PL_GLOBAL_SEED``) and the
        rank (:func:`gan_writer.distributed.rank_seed`), so the ranks draw different samples.
        Rank 0 has them too (their states are gathered into checkpoints) but draws from the
        global stream, so its samples are those of a single-process run with its state."""
        self._rank_rngs = {}
        if not distributed.is_distributed():
            return
        seed = distributed.rank_seed(int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed())), self.global_rank)
        self._rank_rngs = {"sample": torch.Generator(device=self.device).manual_seed(seed),
                           "real": torch.Generator().manual_seed(seed + 1)}

    def _rank_states(self) -> dict[str, torch.Tensor]:
        """Every rank's global torch RNG state and stream states, ``(W, N)`` uint8 each (a collective)."""
        states = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in self._rank_rngs.items()}}
        return {k: distributed.gather_rows(v, self.device) for k, v in states.items()}

    def _restore_rank_states(self, saved: dict[str, torch.Tensor]) -> None:
        """Put back this rank's row of :meth:`_rank_states` (a resume with as many ranks);
        with another number of ranks, warn and keep the fresh per-rank streams."""
        ranks, world = int(saved["torch"].size(0)), distributed.world_size()
        if ranks != world or set(saved) != {"torch", *self._rank_rngs}:
            rank_zero_warn(f"gan_writer: the checkpoint holds the random streams of {ranks} DDP ranks and this run "
                           f"has {world}: the ranks > 0 draw fresh streams, so the resume is not exact")
            return
        torch.set_rng_state(saved["torch"][self.global_rank].clone())
        for name, g in self._rank_rngs.items():
            g.set_state(saved[name][self.global_rank].clone())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._rank_rngs:  # under DDP (every rank saves): each rank's streams, for an exact resume
            checkpoint[RNG_KEY]["ranks"] = self._rank_states()

    def on_train_start(self) -> None:
        saved = (getattr(self, "_resume_rng", None) or {}).get("ranks")
        super().on_train_start()  # the global states (of rank 0 or the one process) on every rank
        if saved is not None:
            self._restore_rank_states(saved)

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

    # validation never touches the training random stream: its fake samples use their own
    # seeded generator, and the global state (which Lightning's validation dataloader
    # iterator draws from) is put back after it, so the validation schedule cannot change training
    def _save_rng(self) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and self.device.type == "cuda" else None
        self._rng_before_val = (torch.get_rng_state(), cuda)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self._save_rng()

    def on_fit_start(self) -> None:  # before the sanity-check validation
        super().on_fit_start()
        # __init__ checked one process; a whole-batch group spans the ranks, known only now
        self.estimator.validate(self.hparams.g_batch_size, world_size=self.trainer.world_size)
        self._setup_rank_streams()
        self._save_rng()

    def on_validation_end(self) -> None:
        saved, self._rng_before_val = getattr(self, "_rng_before_val", None), None
        if saved is not None:
            torch.set_rng_state(saved[0])
            if saved[1] is not None:
                torch.cuda.set_rng_state_all(saved[1])

    def on_validation_epoch_start(self) -> None:
        self._val_sum = self._val_count = 0.0
        seed = distributed.rank_seed(int(self.hparams.val_seed), self.global_rank)  # val_seed on rank 0
        self._val_rng = torch.Generator(device=self.device).manual_seed(seed)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        total, n = token_nll(self.generator.log_probs(batch["ids"], batch["attention_mask"]), batch["attention_mask"])
        self._val_sum += float(total)
        self._val_count += float(n)
        self.validate_discriminator(batch, batch_idx, self.hparams.temperature, generator=self._val_rng)

    def on_validation_epoch_end(self) -> None:
        # token-weighted over the whole validation split: summed over DDP ranks (each holds a shard)
        total, count = self.trainer.strategy.reduce(
            torch.tensor([self._val_sum, self._val_count], dtype=torch.float64, device=self.device), reduce_op="sum"
        ).tolist()
        if count:
            self.log("val/nll", total / count, prog_bar=True)
        if self.hparams.num_text_samples and not self.trainer.sanity_checking:
            fake = self.fake_batch(self.hparams.num_text_samples, self.hparams.temperature, generator=self._val_rng)
            self.log_samples(self.decode(fake["ids"]))

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.g_lr)
        d_opt = discriminator_optimizer(self.discriminator, self.hparams.d_lr, trainer_precision(self))
        self._g_optimizer = g_opt
        return [g_opt, d_opt]

