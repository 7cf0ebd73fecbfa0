"""What every training stage shares: building or loading the generator, self-contained
checkpoints, and writing sample texts to TensorBoard."""
from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch

from lightning.pytorch.utilities import rank_zero_info

from gan_writer.checkpoint import KEY, load_artifacts, payload, resolve_checkpoint
from gan_writer import resume
from gan_writer.tokenization import tokenizer_from_dict
from gan_writer.models import CausalGenerator, GeneratorConfig, adapters, build_generator
from gan_writer.models.adalora_state import ADALORA_KEY, adalora_state, load_adalora_state
from gan_writer.fit_loop import resume_finished_epochs_in_order
from gan_writer.systems.window import WINDOW_KEY, WindowMeans, log_window_at_stop


def init_generator(
    config: GeneratorConfig | None, tokenizer, init_checkpoint: str | None, max_length: int
) -> CausalGenerator:
    """The stage's generator: loaded from ``init_checkpoint`` if given, else built from ``config``.

    Raises:
        ValueError: if no tokenizer is given, the checkpoint's vocabulary differs from the
            tokenizer's, or a transformer's ``n_positions`` cannot hold ``max_length`` + BOS.
    """
    if init_checkpoint:
        art = load_artifacts(init_checkpoint)
        gen = art.generator
        gen.train()
        if tokenizer is not None and (
            len(tokenizer) > gen.vocab_size
            or (art.tokenizer is not None and art.tokenizer.get_vocab() != tokenizer.get_vocab())
        ):
            raise ValueError(
                f"model.init_checkpoint {init_checkpoint} was trained with another vocabulary "
                f"({len(art.tokenizer) if art.tokenizer is not None else gen.vocab_size} tokens) than the data "
                f"tokenizer's ({len(tokenizer)} tokens): set data.tokenizer to the same checkpoint path so both match"
            )
        return gen
    if tokenizer is None:
        raise ValueError("the model needs the data module's tokenizer (LightningCLI links it from `data`)")
    gen = build_generator(config or GeneratorConfig(), tokenizer)
    n_pos = getattr(getattr(gen, "model", None), "config", None)
    n_pos = getattr(n_pos, "n_positions", None) or getattr(n_pos, "max_position_embeddings", None)
    if n_pos is not None and n_pos < max_length + 1:
        raise ValueError(
            f"model.generator.n_positions={n_pos} is too small for data.max_length={max_length} plus BOS; "
            f"set it to at least {max_length + 1}"
        )
    return gen


def _json_able(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, (list, tuple, dict)) and all(_json_able(v) for v in (value.values() if isinstance(value, dict) else value))
    )


class GeneratorStage(L.LightningModule):
    """Base LightningModule of the stages: holds ``self.generator`` and ``self.tokenizer``.

    Subclasses call :meth:`setup_generator` in ``__init__``. Checkpoints get the
    ``"gan_writer"`` entry (generator spec, tokenizer, metadata) so they are self-contained.
    """

    generator: CausalGenerator
    #: :attr:`train_window` keys also shown in the progress bar (:func:`gan_writer.systems.window.log_window`)
    window_prog_bar: tuple[str, ...] = ()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """A run stopping at this batch logs :attr:`train_window`'s partial means
        (:func:`gan_writer.systems.window.log_window_at_stop`)."""
        log_window_at_stop(self, self.train_window, self.window_prog_bar)

    @property
    def train_window(self) -> WindowMeans:
        """This stage's per-step training values since the last logged point
        (:mod:`gan_writer.systems.window`); kept in checkpoints, so a resume logs the same."""
        if "_train_window" not in self.__dict__:
            self.__dict__["_train_window"] = WindowMeans()
        return self.__dict__["_train_window"]

    def setup_generator(
        self,
        generator: GeneratorConfig | None,
        tokenizer,
        init_checkpoint: str | None,
        max_length: int,
        meta: dict | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._meta = dict(meta or {})
        if init_checkpoint:
            # a run directory means "its newest version": record which file that was
            resolved = str(resolve_checkpoint(init_checkpoint))
            rank_zero_info(f"gan_writer: {type(self).__name__} starts from {resolved}")
            self._meta["init_checkpoint"] = resolved
            init_checkpoint = resolved
        self.generator = init_generator(generator, tokenizer, init_checkpoint, max_length)
        if self.tokenizer is None and init_checkpoint:
            self.tokenizer = load_artifacts(init_checkpoint).tokenizer

    @property
    def stage_meta(self) -> dict:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        meta = {"stage": type(self).__name__, "max_length": self.max_length, **self._meta}
        if dm is not None:
            meta.setdefault("corpus", dm.hparams.get("corpus"))
            meta.setdefault("metric_tokenization", getattr(dm, "metric_tokenization", None))
            meta.setdefault("data", {k: v for k, v in dm.hparams.items() if _json_able(v)})
        if self._trainer is not None:  # the poem form the metrics callback checked (read by `gan-writer evaluate`)
            forms = [cb.form for cb in self.trainer.callbacks if isinstance(getattr(cb, "form", None), str)]
            if forms:
                meta.setdefault("form", forms[0])
        return meta

    def on_fit_start(self) -> None:
        # the checkpoints this run started from, resolved (run directories move on)
        resolved = {k: v for k, v in self._meta.items() if k.endswith("checkpoint")}
        if resolved and self.logger is not None:
            self.logger.log_hyperparams({f"resolved/{k}": v for k, v in resolved.items()})
        self._expect_frozen_modules()
        self._log_trainable_parameters()
        adapters.set_total_step(self.generator, self.trainer)  # AdaLoRA without peft.total_step

    def _expect_frozen_modules(self) -> None:
        """Say once why frozen modules are in eval mode, and keep Lightning's warning about them
        ("Found N module(s) in eval mode at the start of training") for the modules that are not.

        A frozen module (eval mode, no trainable parameter: the discriminator stage's generator,
        SeqGAN's MLE reference or delayed rollout copy) only samples or scores, so dropout stays
        off on purpose. The warning is filtered only when every eval-mode module lies in one,
        and only until :meth:`on_train_start` (Lightning checks just before it).
        """
        frozen = [name for name, child in self.named_children()
                  if not child.training and not any(p.requires_grad for p in child.parameters())]
        in_eval = [name for name, m in self.named_modules() if not m.training]
        if not in_eval or any(name.split(".")[0] not in frozen for name in in_eval):
            return
        rank_zero_info(f"gan_writer: {', '.join(frozen)} frozen on purpose ({len(in_eval)} modules in eval mode: "
                       "they only sample or score, without dropout)")
        warnings.filterwarnings("ignore", message=rf"Found {len(in_eval)} module\(s\) in eval mode")
        self._eval_filter = warnings.filters[0]

    def _log_trainable_parameters(self) -> None:
        """``train/trainable_params`` and ``train/trainable_share`` (hyperparameters)."""
        trainable, total = adapters.trainable_parameters(self.generator)
        rank_zero_info(f"gan_writer: generator trains {trainable:,} of {total:,} parameters ({trainable / total:.3%})")
        if self.logger is not None:
            self.logger.log_hyperparams({"train/trainable_params": trainable,
                                         "train/trainable_share": trainable / total})

    def on_train_start(self) -> None:
        resume.restore_rng(self)  # a resumed run continues the interrupted run's random streams
        rule = getattr(self, "_eval_filter", None)
        if rule is not None and rule in warnings.filters:
            warnings.filters.remove(rule)
            getattr(warnings, "_filters_mutated", lambda: None)()  # CPython's filter-cache reset
        self._eval_filter = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = payload(self.generator, self.tokenizer, **self.stage_meta)
        # an adapter run keeps only what was trained; the base is named by its identity
        checkpoint["state_dict"] = adapters.drop_base_weights([self.generator], checkpoint["state_dict"])
        allocator = adalora_state(self.generator)  # AdaLoRA's importance averages and ranks (None otherwise)
        if allocator is not None:
            checkpoint[ADALORA_KEY] = allocator
        checkpoint[WINDOW_KEY] = self.train_window.state_dict()
        resume.on_save(checkpoint)  # RNG states, finite weights, tensor checksum (of what is saved)

    def on_before_backward(self, loss: torch.Tensor) -> None:
        resume.check_loss(self, loss)  # a NaN / inf loss stops training before it reaches the weights

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to resume (``--ckpt_path``) from another stage's checkpoint, a corrupted
        one, or one with a different vocabulary than this run's.

        Raises:
            ValueError: (see :func:`gan_writer.resume.on_load`) another stage, a checksum
                mismatch or non-finite tensors.
            ValueError: naming both vocabulary sizes and ``data.tokenizer``, when the run
                built its tokenizer anew (e.g. from a different ``max_train_samples``) and it
                does not match the one stored in the checkpoint.
        """
        resume.on_load(self, checkpoint)  # same stage, intact, finite; RNG states kept for on_train_start
        if self._trainer is not None:  # Lightning #19617: a finished epoch resumes in order also with max_steps
            resume_finished_epochs_in_order(self._trainer)
        adapters.fill_base_weights(self, self.generator, checkpoint)  # resuming an adapter run
        load_adalora_state(self.generator, checkpoint.get(ADALORA_KEY), "the checkpoint to resume from")
        self.train_window.load_state_dict(checkpoint.get(WINDOW_KEY) or {}, self.device)
        stored = (checkpoint.get(KEY) or {}).get("tokenizer")
        if not stored or self.tokenizer is None:
            return
        theirs = tokenizer_from_dict(stored)
        if theirs.get_vocab() != self.tokenizer.get_vocab():
            raise ValueError(
                f"cannot resume: the checkpoint's vocabulary ({len(theirs)} tokens) differs from this run's "
                f"({len(self.tokenizer)} tokens, built from data.tokenizer and the training split). Set "
                "data.tokenizer to the checkpoint's path so the run uses the checkpoint's own tokenizer, and keep "
                "the data options it was trained with"
            )

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Token ids ``(B, T)`` → texts, special tokens and padding dropped."""
        from gan_writer.metrics.suite import decode_samples

        return decode_samples(self.tokenizer, ids)

    def log_samples(self, texts: list[str], tag: str = "samples", step: int | None = None) -> None:
        """Write ``texts`` to TensorBoard (as a Markdown list) at ``step`` (``None``: the current
        :func:`logging_step`)."""
        exp = getattr(self.logger, "experiment", None) if self.logger is not None else None
        if exp is not None and hasattr(exp, "add_text"):
            body = "\n".join(f"{i + 1}. {t.replace(chr(10), ' / ')}" for i, t in enumerate(texts))
            exp.add_text(tag, body, logging_step(self.trainer) if step is None else step)


def logging_step(trainer) -> int:
    """The step every gan_writer value is logged at: training batches that stepped.

    ``self.log`` logs at this counter; in the adversarial stage it is the adversarial batch
    (``trainer.global_step`` counts generator and discriminator optimizer steps together,
    e.g. 5 per batch), in MLE the two are equal. Values logged outside ``self.log`` (text
    samples, the final metrics) use it too, so every curve of a run shares one axis.
    """
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step))
