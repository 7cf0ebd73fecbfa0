"""Lightning callback that logs the text-generation metrics during training.

Works with any stage whose LightningModule has ``generator`` and ``tokenizer`` (MLE,
discriminator pretraining, adversarial) and with the text and oracle data modules. Under DDP
the metrics are computed on rank 0 only and broadcast, so every rank logs the same values.
"""
from __future__ import annotations

import time
from typing import Sequence

import lightning as L

from gan_writer.distributed import broadcast_values
from gan_writer.metrics.bleu import BleuReference
from gan_writer.metrics.nll import corpus_nll, nll_oracle
from gan_writer.metrics.suite import BLEU_ORDERS, metric_tokenizer, sample_texts, text_metrics
from gan_writer.systems.options import check_options
from gan_writer.systems.common import logging_step


class TextMetricsCallback(L.Callback):
    """Every ``every_n_val_epochs`` validations: sample, score, log, write samples.

    Logged keys (fixed; see the README): ``metrics/bleu_2``..``metrics/bleu_5`` (against
    every reference of ``reference_split``), ``metrics/self_bleu_2``..``metrics/self_bleu_5``
    (leave-one-out), ``metrics/distinct_1``..``metrics/distinct_4``,
    ``metrics/unique_samples``, ``metrics/empty_samples`` (samples with no token),
    ``metrics/top_sample_share`` (share of the most frequent sample; degenerate sets are
    warned about, see :mod:`gan_writer.metrics.degenerate`), ``val/nll_test`` (nats per token on the test split),
    ``metrics/nll_oracle`` when the data module has an ``oracle``, ``metrics/seconds``
    (time spent here); the same sample metrics at each extra temperature under
    ``metrics/temp_<T>/...``. The final model is always scored (at the end of training if
    the last validation was skipped). Samples are drawn at temperature 1 from the full
    distribution with a fixed seed, so epochs are comparable. Sample size, reference size,
    tokenization and seed are recorded as hyperparameters.

    Args:
        num_samples: texts sampled per evaluation.
        every_n_val_epochs: evaluate at every n-th validation (sanity check excluded).
        seed: sampling seed.
        temperatures: extra temperatures besides 1.0.
        reference_split: ``test`` (default) or ``valid``.
        max_references: use only the first N references (None = all; the Texygen
            protocol uses all).
        bleu: compute BLEU/Self-BLEU (off for corpora where they mean little).
        num_text_samples: how many of the samples to write to TensorBoard as text.
        form: a poem form (``wujue``, ``sonnet``, ...; see gan_writer.writing.forms): also
            log ``metrics/form_line_ok``, ``metrics/form_tone_ok``, ``metrics/form_rhyme_ok``,
            ``metrics/form_syllable_err`` of the samples (:func:`gan_writer.metrics.forms.form_metrics`).
    """

    def __init__(
        self,
        num_samples: int = 500,
        every_n_val_epochs: int = 1,
        seed: int = 0,
        temperatures: Sequence[float] = (),
        reference_split: str = "test",
        max_references: int | None = None,
        bleu: bool = True,
        num_text_samples: int = 10,
        form: str | None = None,
    ) -> None:
        check_options("TextMetricsCallback.init_args", locals(), {"num_samples": ">= 2", "every_n_val_epochs": ">= 1",
                                                                 "temperatures": "> 0", "max_references": ">= 1",
                                                                 "num_text_samples": ">= 0"})
        if reference_split not in ("test", "valid"):
            raise ValueError(f"reference_split must be 'test' or 'valid', got {reference_split!r}")
        self.num_samples, self.every = num_samples, max(1, every_n_val_epochs)
        self.seed, self.temperatures = seed, list(temperatures)
        self.reference_split, self.max_references = reference_split, max_references
        self.use_bleu, self.num_text_samples = bleu, num_text_samples
        self.form = form
        if form is not None:
            from gan_writer.writing.forms import get_form

            get_form(form)  # fail at construction on an unknown form
        self._references: BleuReference | None = None
        self._count = 0
        self._last_step: int | None = None
        self._final_step: int | None = None  # the step of the text samples logged by on_train_end

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        self._tok = metric_tokenizer(getattr(dm, "metric_tokenization", None), getattr(dm.hparams, "lowercase", False))
        refs = dm.texts(self.reference_split) or dm.texts("valid")
        refs = refs[: self.max_references] if self.max_references else refs
        self._n_refs = len(refs)
        if self.use_bleu and refs and self._references is None:
            self._references = BleuReference(self._tok.tokenize_all(refs), max_n=max(BLEU_ORDERS))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is not None:
            trainer.logger.log_hyperparams({
                "metrics/num_samples": self.num_samples, "metrics/num_references": self._n_refs,
                "metrics/reference_split": self.reference_split, "metrics/seed": self.seed,
                "metrics/tokenization": self._tok.scheme, "metrics/lowercase": self._tok.lowercase,
            })

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._count += 1
        if (self._count - 1) % self.every:
            return
        for key, value in self._scores(trainer, pl_module).items():
            pl_module.log(key, value)  # the same on every rank (broadcast), so no sync_dist
        self._last_step = trainer.global_step  # which model was scored (optimizer steps so far)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Score the final model too when the last validation was skipped by ``every_n_val_epochs``."""
        if self._last_step is None or self._last_step == trainer.global_step or trainer.logger is None:
            return
        # the axis self.log uses (adversarial batches in SeqGAN), not global_step (G + D steps); the
        # counter is one past the last batch here, whose 0-based index the epoch-end values carry
        self._final_step = max(0, logging_step(trainer) - 1)
        try:
            values = self._scores(trainer, pl_module)
        finally:
            step, self._final_step = self._final_step, None
        trainer.logger.log_metrics(values, step=step)
        self._last_step = trainer.global_step

    def _scores(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """:meth:`evaluate` and ``metrics/seconds``, computed on rank 0 and broadcast to every
        rank (a collective under DDP: every rank calls it)."""
        values = None
        if trainer.is_global_zero:
            start = time.perf_counter()
            values = self.evaluate(trainer, pl_module)
            values["metrics/seconds"] = time.perf_counter() - start
        return broadcast_values(values, pl_module.device)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Compute every logged value once (also usable outside the training loop)."""
        dm, gen, tok = trainer.datamodule, pl_module.generator, pl_module.tokenizer
        out: dict[str, float] = {}
        for temp in [1.0, *[t for t in dict.fromkeys(self.temperatures) if t != 1.0]]:  # each scored once
            texts, ids = sample_texts(gen, tok, self.num_samples, dm.max_length, temperature=temp, seed=self.seed)
            prefix = "metrics/" if temp == 1.0 else f"metrics/temp_{temp:g}/"
            scores = text_metrics(texts, self._references, self._tok)
            out.update({prefix + k: v for k, v in scores.items()})
            if self.form is not None:
                from gan_writer.metrics.forms import form_metrics

                out.update({prefix + k: v for k, v in form_metrics(texts, self.form).items()})
            oracle = getattr(dm, "oracle", None)
            if oracle is not None:
                from gan_writer.sampling import mask_after_eos

                out[prefix + "nll_oracle"] = nll_oracle(oracle, ids, mask_after_eos(ids, gen.eos_token_id))
            if temp == 1.0 and hasattr(pl_module, "log_samples"):
                pl_module.log_samples(texts[: self.num_text_samples], tag="metrics/samples", step=self._final_step)
        out["val/nll_test"] = corpus_nll(gen, dm.test_dataloader())
        return out
