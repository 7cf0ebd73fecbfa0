"""What every training stage shares: building or loading the generator, self-contained
checkpoints, and writing sample texts to TensorBoard."""
from __future__ import annotations

from typing import Any

import lightning as L
import torch

from lightning.pytorch.utilities import rank_zero_info

from gan_writer.checkpoint import KEY, load_artifacts, payload, resolve_checkpoint
from gan_writer.tokenization import tokenizer_from_dict
from gan_writer.models import CausalGenerator, GeneratorConfig, adapters, build_generator


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
        return meta

    def on_fit_start(self) -> None:
        # the checkpoints this run started from, resolved (run directories move on)
        resolved = {k: v for k, v in self._meta.items() if k.endswith("checkpoint")}
        if resolved and self.logger is not None:
            self.logger.log_hyperparams({f"resolved/{k}": v for k, v in resolved.items()})
        self._log_trainable_parameters()
        adapters.set_total_step(self.generator, self.trainer)  # AdaLoRA without peft.total_step

    def _log_trainable_parameters(self) -> None:
        """``generator/trainable_params`` and ``generator/trainable_share`` (hyperparameters)."""
        trainable, total = adapters.trainable_parameters(self.generator)
        rank_zero_info(f"gan_writer: generator trains {trainable:,} of {total:,} parameters ({trainable / total:.3%})")
        if self.logger is not None:
            self.logger.log_hyperparams({"generator/trainable_params": trainable,
                                         "generator/trainable_share": trainable / total})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = payload(self.generator, self.tokenizer, **self.stage_meta)
        # an adapter run keeps only what was trained; the base is named by its identity
        checkpoint["state_dict"] = adapters.drop_base_weights([self.generator], checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to resume (``--ckpt_path``) with a different vocabulary than the checkpoint's.

        Raises:
            ValueError: naming both vocabulary sizes and ``data.tokenizer``, when the run
                built its tokenizer anew (e.g. from a different ``max_train_samples``) and it
                does not match the one stored in the checkpoint.
        """
        adapters.fill_base_weights(self, self.generator, checkpoint)  # resuming an adapter run
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

    def log_samples(self, texts: list[str], tag: str = "samples") -> None:
        """Write ``texts`` to TensorBoard (as a Markdown list) at the current step."""
        exp = getattr(self.logger, "experiment", None) if self.logger is not None else None
        if exp is not None and hasattr(exp, "add_text"):
            body = "\n".join(f"{i + 1}. {t.replace(chr(10), ' / ')}" for i, t in enumerate(texts))
            exp.add_text(tag, body, self.global_step)
