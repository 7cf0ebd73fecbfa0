"""MLE pretraining (teacher forcing): the baseline every adversarial run is compared with."""
from __future__ import annotations

from typing import Any

import torch

from gan_writer.metrics.nll import token_nll
from gan_writer.models import GeneratorConfig
from gan_writer.models.adapters import adapter_regulariser, after_backward
from gan_writer.systems.common import GeneratorStage
from gan_writer.systems.optim import fused_kwargs, trainer_precision
from gan_writer.systems.options import GENERATOR_RANGES, check_options
from gan_writer.systems.window import log_window

_RANGES = {"max_length": ">= 2", "lr": "> 0", "weight_decay": ">= 0", "betas": "[0, 1)",
           "warmup_steps": ">= 0", "num_text_samples": ">= 0", "sample_temperature": "> 0",
           "generator": GENERATOR_RANGES}


class MLEModule(GeneratorStage):
    """Maximum-likelihood training of a generator with teacher forcing.

    Loss: mean cross-entropy per real token (padding ignored, EOS counted), in nats.
    Logs ``train/nll`` (token-weighted over the steps since the last logged point:
    :mod:`gan_writer.systems.window`), ``val/nll`` (token-weighted over the whole validation
    split) and ``val/ppl`` = exp(``val/nll``); writes ``num_text_samples`` sampled texts to
    TensorBoard at each validation.

    Args:
        generator: how to build the generator (sizes, backend, or a pretrained path).
        tokenizer: the data module's tokenizer (linked by the CLI from ``data``).
        max_length: longest sequence (linked from ``data.max_length``).
        init_checkpoint: start from this gan_writer checkpoint's generator instead.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (AdamW is fused where the device allows:
            :func:`gan_writer.systems.optim.fused_kwargs`).
        betas: AdamW betas.
        warmup_steps: linear learning-rate warm-up steps (0 = none).
        grad_clip: set the Trainer's ``gradient_clip_val`` for clipping (kept there).
        num_text_samples: texts sampled (temperature ``sample_temperature``) per validation.
        sample_temperature: temperature of those samples.
        text_samples_seed: seed of those samples (the same texts' evolution is visible over epochs).
    """

    window_prog_bar = ("train/nll",)

    def __init__(
        self,
        generator: GeneratorConfig | None = None,
        tokenizer: Any = None,
        max_length: int = 64,
        init_checkpoint: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        num_text_samples: int = 8,
        sample_temperature: float = 1.0,
        text_samples_seed: int = 1234,
    ) -> None:
        check_options("model.init_args", locals(), _RANGES)
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer"])
        self.setup_generator(generator, tokenizer, init_checkpoint, max_length)
        self._val_sum = 0.0
        self._val_count = 0.0

    def nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sum of NLL over real tokens, number of real tokens)`` of a batch."""
        return token_nll(self.generator.log_probs(batch["ids"], batch["attention_mask"]), batch["attention_mask"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, n = self.nll(batch)
        self.train_window.add("train/nll", total, n)  # token-weighted over the steps since the last logged point
        log_window(self, self.train_window, self.window_prog_bar)
        return total / n + adapter_regulariser(self.generator)  # AdaLoRA's orthogonal term (0 otherwise)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)  # the logging window
        after_backward(self.generator, self.global_step)  # AdaLoRA's rank allocation (no-op otherwise)

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_count = 0.0, 0.0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        total, n = self.nll(batch)
        self._val_sum += float(total)
        self._val_count += float(n)

    def on_validation_epoch_end(self) -> None:
        # token-weighted over the whole validation split: summed over DDP ranks (each holds a shard)
        total, count = self.trainer.strategy.reduce(
            torch.tensor([self._val_sum, self._val_count], dtype=torch.float64, device=self.device), reduce_op="sum"
        ).tolist()
        if count == 0:
            return
        nll = total / count
        self.log("val/nll", nll, prog_bar=True)
        self.log("val/ppl", float(torch.tensor(nll).exp()))
        if self.hparams.num_text_samples and not self.trainer.sanity_checking:
            gen = torch.Generator(device=self.device).manual_seed(self.hparams.text_samples_seed)
            ids = self.generator.sample(
                self.hparams.num_text_samples, self.max_length,
                temperature=self.hparams.sample_temperature, generator=gen,
            )
            self.log_samples(self.decode(ids))

    def configure_optimizers(self):
        params = [(n, p) for n, p in self.generator.named_parameters() if p.requires_grad]  # adapters: only theirs
        decay = [p for n, p in params if p.dim() >= 2]
        no_decay = [p for n, p in params if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr, betas=tuple(self.hparams.betas), **fused_kwargs(self.generator.parameters(), trainer_precision(self)),
        )
        if not self.hparams.warmup_steps:
            return opt
        warm = self.hparams.warmup_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
