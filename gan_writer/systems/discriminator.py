"""Discriminator pretraining: real samples against samples of the frozen MLE generator.

SeqGAN (Yu et al. 2017) pretrains the discriminator for 50 rounds, each drawing fresh
negatives from the generator and training 3 epochs on them (``max_epochs: 150`` with
``negatives_every_n_epochs: 3`` here).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from gan_writer.checkpoint import KEY
from gan_writer.models.prefix_discriminator import PREFIX_KINDS, PrefixDiscriminator
from gan_writer.models.discriminator import (
    CNN_IMPLS, DEFAULT_FILTER_SIZES, DEFAULT_NUM_FILTERS, Discriminator, build_discriminator,
)
from gan_writer.denormals import flush_denormals
from gan_writer.systems.common import GeneratorStage
from gan_writer.systems.disc_training import (
    DEFAULT_MAX_SAMPLE_BATCH, PaddedRows, discriminator_loss, discriminator_optimizer, draw_negatives,
)
from gan_writer.systems.optim import trainer_precision
from gan_writer.systems.options import DISCRIMINATOR_RANGES, check_options
from gan_writer.systems.window import log_window

_RANGES = {"max_length": ">= 2", "lr": "> 0", "num_negatives": ">= 1", "negatives_every_n_epochs": ">= 1",
           "sample_temperature": "> 0", "discriminator": DISCRIMINATOR_RANGES}

__all__ = ["DiscriminatorConfig", "DiscriminatorStage", "DiscriminatorPretraining", "discriminator_loss",
           "load_discriminator", "saved_config", "NoDiscriminatorError"]


@dataclass
class DiscriminatorConfig:
    """How to build a discriminator; the ``model.discriminator`` block of the YAMLs.

    Attributes:
        kind: ``cnn`` (the SeqGAN text CNN), ``transformer`` (a HF sequence classifier), or
            ``prefix_lstm`` / ``prefix_transformer`` (a causal discriminator scoring every
            prefix, :class:`gan_writer.models.prefix_discriminator.PrefixDiscriminator`;
            sized by ``embed_dim`` (LSTM) or ``n_embd`` (transformer), ``n_layer``, ``n_head``,
            ``dropout``; needed by ``reward: prefix``).
        embed_dim, filter_sizes, num_filters, dropout, l2_reg_lambda: CNN settings
            (defaults: SeqGAN's 64-dim embedding, 12 widths, 1720 filters, keep 0.75, L2 0.2).
        pretrained, n_layer, n_embd, n_head: transformer settings.
        impl: CNN only: ``fast`` (default: strided windows + one matmul per width, real and
            generated minibatch in one call; ~1.3-1.4x faster D epochs on a CPU) or ``reference``
            (SeqGAN-style ``Conv1d`` per width: bit-identical to runs made before issue 18, so
            the configs behind the published oracle tables pin it). The same function up to
            float rounding (logits ~5e-6, gradients ~1e-6 of their scale;
            :class:`~gan_writer.models.discriminator.CNNDiscriminator`). Other kinds ignore it:
            configs and checkpoints saved before the default changed hold ``reference`` for
            every kind, and they must still load.
        highway: CNN only: ``seqgan`` (default, SeqGAN's two-matrix highway) or ``single``
            (TextGAN-PyTorch's one-matrix highway; a different architecture, 2.96 M fewer
            parameters).

    Raises:
        ValueError: (from :meth:`build`) ``highway`` set away from its default for a kind
            other than ``cnn``, or an unknown ``impl``/``highway``.
    """

    kind: str = "cnn"
    embed_dim: int = 64
    filter_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_FILTER_SIZES))
    num_filters: list[int] = field(default_factory=lambda: list(DEFAULT_NUM_FILTERS))
    dropout: float = 0.25
    l2_reg_lambda: float = 0.2
    pretrained: str | None = None
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    impl: str = "fast"
    highway: str = "seqgan"

    def build(self, vocab_size: int, max_length: int, pad_token_id: int) -> Discriminator:
        """The module for a generator vocabulary of ``vocab_size`` and ``max_length`` tokens."""
        if self.impl not in CNN_IMPLS:
            raise ValueError(f"model.discriminator.impl: unknown {self.impl!r}; choose from {list(CNN_IMPLS)}")
        if self.kind != "cnn" and self.highway != "seqgan":  # impl: ignored there (see the class docstring)
            raise ValueError(f"model.discriminator.highway applies to kind cnn only, got kind {self.kind!r} with "
                             f"highway={self.highway!r}: remove it")
        if self.kind in PREFIX_KINDS:
            return PrefixDiscriminator(vocab_size, max_length, pad_token_id, backbone=PREFIX_KINDS[self.kind],
                                       embed_dim=self.n_embd if self.kind == "prefix_transformer" else self.embed_dim,
                                       n_layer=self.n_layer, n_head=self.n_head,
                                       dropout=self.dropout)
        if self.kind == "cnn":
            kwargs: dict[str, Any] = dict(
                embed_dim=self.embed_dim, filter_sizes=tuple(self.filter_sizes), num_filters=tuple(self.num_filters),
                dropout=self.dropout, l2_reg_lambda=self.l2_reg_lambda, impl=self.impl, highway=self.highway,
            )
        else:
            kwargs = dict(pretrained=self.pretrained, n_layer=self.n_layer, n_embd=self.n_embd, n_head=self.n_head)
        return build_discriminator(self.kind, vocab_size, max_length, pad_token_id=pad_token_id, **kwargs)


POOL_KEY = "gan_writer_negatives"  # the discriminator pretraining's pool of negatives, in its checkpoints


class NoDiscriminatorError(ValueError):
    """The checkpoint holds no discriminator (e.g. an MLE checkpoint)."""


def saved_config(fields: dict) -> DiscriminatorConfig:
    """The :class:`DiscriminatorConfig` of a checkpoint's saved fields. A CNN saved before the
    ``impl`` option existed (issue 18) ran the Conv1d computation, so it gets
    ``impl="reference"`` back, not today's default: resuming or continuing such a run stays
    bit-identical. Unknown fields raise ``TypeError`` (from the dataclass)."""
    fields = dict(fields)
    if fields.get("kind", "cnn") == "cnn":
        fields.setdefault("impl", "reference")
    return DiscriminatorConfig(**fields)


def load_discriminator(
    path: str, *, vocab_size: int | None = None, tokenizer=None, name: str | None = None, scorer_of: str = "the generator"
) -> tuple[Discriminator, dict]:
    """The discriminator stored in a gan_writer checkpoint (discriminator pretraining or
    adversarial), and its spec (config, vocabulary size, max length, pad id).

    Args:
        path: a ``.ckpt`` file or a run directory.
        vocab_size, tokenizer: the vocabulary size and tokenizer of the generator whose
            token ids the discriminator will score; given, a discriminator trained with another
            vocabulary is refused (its embedding would index out of range, or score other tokens).
        name: how messages call ``path`` (e.g. ``--disc PATH``); default ``path``.
        scorer_of: how messages call that generator (e.g. ``the generator of --ckpt X``).

    Raises:
        NoDiscriminatorError: if the checkpoint holds no discriminator.
        ValueError: if its vocabulary is not the generator's (``vocab_size`` / ``tokenizer``).
    """
    from gan_writer.checkpoint import resolve_checkpoint

    from gan_writer.safe_load import load_checkpoint

    name = name or str(path)
    ckpt = load_checkpoint(resolve_checkpoint(path))  # no code runs; checksum and finiteness checked
    info = ckpt.get(KEY, {}) if isinstance(ckpt, dict) else {}
    spec = info.get("discriminator")
    if not spec:
        raise NoDiscriminatorError(
            f"{name} holds no discriminator: pass a checkpoint of the discriminator pretraining stage"
        )
    if vocab_size is not None or tokenizer is not None:
        _check_vocabulary(spec, info.get("tokenizer"), vocab_size, tokenizer, name, scorer_of)
    disc = saved_config(spec["config"]).build(spec["vocab_size"], spec["max_length"], spec["pad_token_id"])
    disc.load_state_dict({k[len("discriminator."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("discriminator.")})
    return disc, spec


def _check_vocabulary(spec: dict, tokenizer_files, vocab_size: int | None, tokenizer, name: str, scorer_of: str) -> None:
    """Refuse a discriminator (``spec``, its checkpoint's tokenizer files) trained with
    another vocabulary than the generator (``vocab_size``, ``tokenizer``) it is to score."""
    from gan_writer.tokenization import tokenizer_from_dict

    disc_tok = tokenizer_from_dict(tokenizer_files) if tokenizer_files and tokenizer is not None else None
    disc_size = int(spec.get("vocab_size") or 0)
    if disc_tok is not None:
        other = disc_tok.get_vocab() != tokenizer.get_vocab()
    else:
        other = vocab_size is not None and disc_size != vocab_size
    other = other or (vocab_size is not None and disc_size < vocab_size)  # its embedding cannot index every id
    if other:
        theirs = len(disc_tok) if disc_tok is not None else disc_size
        ours = len(tokenizer) if tokenizer is not None else vocab_size
        raise ValueError(
            f"{name} was trained with another vocabulary ({theirs} tokens) than {scorer_of} ({ours} tokens): "
            "pass a discriminator trained on the same corpus and tokenizer as the generator"
        )


class DiscriminatorStage(GeneratorStage):
    """Shared by the stages that own a discriminator: building it and saving its spec."""

    discriminator: Discriminator

    def setup_discriminator(
        self, config: DiscriminatorConfig | None, checkpoint: str | None, fallback: str | None = None
    ) -> None:
        """Load the discriminator of ``checkpoint``; else, with no ``config``, that of
        ``fallback`` if it holds one; else build a fresh one from ``config``."""
        from gan_writer.checkpoint import resolve_checkpoint

        for path, required in ((checkpoint, True), (None if config else fallback, False)):
            if not path:
                continue
            resolved = str(resolve_checkpoint(path))
            try:
                self.discriminator, self._disc_spec = load_discriminator(resolved)
            except NoDiscriminatorError:
                if required:
                    raise
                continue
            self._meta["discriminator_checkpoint"] = resolved
            rank_zero_info(f"gan_writer: discriminator from {resolved}")
            return
        if fallback and config is not None:
            rank_zero_info("gan_writer: a fresh discriminator from model.discriminator (the init checkpoint's is not used)")
        elif fallback:
            rank_zero_warn(
                f"gan_writer: {fallback} holds no discriminator, so training starts from a "
                "fresh, UNTRAINED default discriminator (SeqGAN CNN). Pretrain one first (experiments/*/disc.yaml) and "
                "pass that run as model.init_checkpoint or model.discriminator_checkpoint, or set model.discriminator "
                "to choose a fresh one deliberately"
            )
        config = config or DiscriminatorConfig()
        self.discriminator = config.build(self.generator.vocab_size, self.max_length, self.generator.pad_token_id)
        self._disc_spec = {"config": asdict(config), "vocab_size": self.generator.vocab_size,
                           "max_length": self.max_length, "pad_token_id": self.generator.pad_token_id}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[KEY]["discriminator"] = self._disc_spec

    def real_batch(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``n`` random training samples as a padded batch on the module's device: ids and
        attention mask ``(n, T)``, ``T`` the longest chosen row. The training split is padded
        once per stage (:class:`~gan_writer.systems.disc_training.PaddedRows`); the rows drawn
        for a ``generator`` seed are the same as before that cache existed."""
        data = self.trainer.datamodule.datasets["train"].ids
        rows = getattr(self, "_real_rows", None)
        if rows is None or rows.source is not data or rows.ids.device != self.device:
            rows = self._real_rows = PaddedRows(data, self.generator.pad_token_id, self.device)
        return rows.select(torch.randint(len(data), (n,), generator=generator))

    def validate_discriminator(
        self, batch: dict[str, torch.Tensor], batch_idx: int, temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        """Log the discriminator's validation accuracies for one validation batch ``(B, T)``.

        ``val/disc_acc_real`` (held-out real samples), ``val/disc_acc_fake`` (as many fresh
        generator samples), ``val/disc_acc`` (their mean: 0.5 = chance) and
        ``val/disc_acc_train_real`` (as many *training* samples, the same ones at every
        validation). ``generator``: the ``torch.Generator`` for the fake samples (``None``:
        the global stream). ``val/disc_acc_train_real`` far above ``val/disc_acc_real`` means the
        discriminator memorises the training set: its reward then says "is this a training
        sample" rather than "is this real".
        """
        n = batch["ids"].size(0)
        fake = self.fake_batch(n, temperature, generator=generator)
        train_real = self.real_batch(n, generator=torch.Generator().manual_seed(batch_idx))
        called_real = lambda b: (self.discriminator(b["ids"], b["attention_mask"]) > 0).float().mean()  # noqa: E731
        acc_r, acc_f, acc_t = called_real(batch), 1.0 - called_real(fake), called_real(train_real)
        # sync_dist: under DDP the epoch values are over every rank's batches (batch-size weighted)
        self.log("val/disc_acc_real", acc_r, batch_size=n, sync_dist=True)
        self.log("val/disc_acc_fake", acc_f, batch_size=n, sync_dist=True)
        self.log("val/disc_acc", (acc_r + acc_f) / 2, batch_size=n, sync_dist=True)
        self.log("val/disc_acc_train_real", acc_t, batch_size=n, sync_dist=True)

    max_sample_batch: int | None = DEFAULT_MAX_SAMPLE_BATCH

    def fake_batch(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``n`` samples of the current generator (eval mode) with their masks, drawn with
        ``generator`` (``None``: the global random stream), at most :attr:`max_sample_batch`
        rows at a time (:func:`~gan_writer.systems.disc_training.draw_negatives`)."""
        return draw_negatives(self.generator, n, self.max_length, temperature, self.max_sample_batch, rng=generator)


class DiscriminatorPretraining(DiscriminatorStage):
    """Train the discriminator on real data vs the frozen MLE generator's samples.

    Each training batch of real samples is paired with as many negatives from a pool of
    ``num_negatives`` samples, redrawn from the generator every ``negatives_every_n_epochs``
    epochs. Logs ``disc/loss``, ``disc/bce``, ``disc/acc_real``, ``disc/acc_fake`` (training: means
    over the steps since the last logged point, :mod:`gan_writer.systems.window`) and
    ``val/disc_acc_real``, ``val/disc_acc_fake``, ``val/disc_acc``, ``val/disc_acc_train_real``
    (see :meth:`DiscriminatorStage.validate_discriminator`).

    Args:
        init_checkpoint: the MLE checkpoint whose generator supplies negatives (frozen).
        discriminator: how to build the discriminator.
        discriminator_checkpoint: continue from this checkpoint's discriminator instead.
        tokenizer, max_length: linked from the data module (must be the checkpoint's
            tokenizer: set ``data.tokenizer`` to the checkpoint path).
        lr: Adam learning rate (SeqGAN: 1e-4).
        num_negatives: pool size (SeqGAN: 10,000; default: the training-set size).
        negatives_every_n_epochs: redraw the pool this often (SeqGAN: 3).
        sample_temperature: temperature of the negatives.
        max_sample_batch: most negatives sampled at once (peak memory; ``null``: all at once).
    """

    window_prog_bar = ("disc/loss",)

    def __init__(
        self,
        init_checkpoint: str,
        discriminator: DiscriminatorConfig | None = None,
        discriminator_checkpoint: str | None = None,
        tokenizer: Any = None,
        max_length: int = 64,
        lr: float = 1e-4,
        num_negatives: int | None = None,
        negatives_every_n_epochs: int = 3,
        sample_temperature: float = 1.0,
        max_sample_batch: int | None = DEFAULT_MAX_SAMPLE_BATCH,
    ) -> None:
        check_options("model.init_args", locals(), _RANGES)
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer"])
        self.max_sample_batch = max_sample_batch
        self.setup_generator(None, tokenizer, init_checkpoint, max_length)
        self.generator.eval().requires_grad_(False)
        self.setup_discriminator(discriminator, discriminator_checkpoint)
        self._pool: dict[str, torch.Tensor] | None = None

    def optimizer_step(self, *args, **kwargs) -> None:
        """Lightning's step (the closure runs the forward and backward passes) with denormals
        flushed, as in :func:`train_discriminator`: the highway's dead ReLU units' Adam moments
        decay into denormals, slow on a CPU (:mod:`gan_writer.denormals`). Only the training
        step: validation and the negatives are drawn in the mode the process has."""
        with flush_denormals():
            super().optimizer_step(*args, **kwargs)

    def on_train_epoch_start(self) -> None:
        every = max(1, self.hparams.negatives_every_n_epochs)
        if self._pool is None or self.current_epoch % every == 0:
            n = self.hparams.num_negatives or len(self.trainer.datamodule.datasets["train"])
            self._pool = self.fake_batch(n, self.hparams.sample_temperature, generator=self._pool_stream(every))

    def _pool_stream(self, every: int) -> torch.Generator | None:
        """The stream a pool of negatives is drawn from: the global one on rank 0 (one process
        draws what it always drew); under DDP, on every other rank a generator seeded from the
        run seed, the rank (:func:`gan_writer.distributed.rank_seed`) and the epoch the round of
        negatives began, so the ranks train on different negatives and a resumed rank redraws
        exactly its own pool (the checkpoint holds rank 0's)."""
        if self.global_rank == 0:
            return None
        import os

        from gan_writer import distributed

        seed = distributed.rank_seed(int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed())), self.global_rank)
        start = self.current_epoch - self.current_epoch % every
        return torch.Generator(device=self.device).manual_seed((seed + start) % (2**63))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._pool is not None:  # a resume mid-round trains on the same negatives
            checkpoint[POOL_KEY] = {k: v.cpu() for k, v in self._pool.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pool = checkpoint.get(POOL_KEY) if self.global_rank == 0 else None  # other ranks redraw their own
        self._pool = {k: v.to(self.device) for k, v in pool.items()} if pool else None

    def _negatives(self, n: int, batch_idx: int) -> dict[str, torch.Tensor]:
        size = self._pool["ids"].size(0)
        idx = (torch.arange(n, device=self._pool["ids"].device) + batch_idx * n) % size
        return {k: v[idx] for k, v in self._pool.items()}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.generator.eval()
        fake = self._negatives(batch["ids"].size(0), batch_idx)
        loss, bce, acc_r, acc_f = discriminator_loss(self.discriminator, batch, fake)
        n = batch["ids"].size(0)
        for key, value in (("disc/loss", loss), ("disc/bce", bce), ("disc/acc_real", acc_r), ("disc/acc_fake", acc_f)):
            self.train_window.add_mean(key, value, n)  # over the steps since the last logged point
        log_window(self, self.train_window, self.window_prog_bar)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.validate_discriminator(batch, batch_idx, self.hparams.sample_temperature)

    def configure_optimizers(self):
        return discriminator_optimizer(self.discriminator, self.hparams.lr, trainer_precision(self))
