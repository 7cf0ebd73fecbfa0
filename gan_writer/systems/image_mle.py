"""MLE training of an image-conditioned generator on image–poem pairs (ClipCap, Mokady et al. 2021).

The LM (a fresh GPT-2, a pretrained model, or the generator of a text checkpoint) reads
``k`` prefix embeddings mapped from the frozen image encoder's features, then BOS and the
poem; the loss is the poem's cross-entropy. With ``freeze_lm: true`` only the mapping
network learns (ClipCap's frozen-LM setting).
"""
from __future__ import annotations

from typing import Any

import torch

from gan_writer.metrics.nll import token_nll
from gan_writer.models import GeneratorConfig
from gan_writer.multimodal.discriminator import mismatch_index
from gan_writer.multimodal.encoder import check_same_encoder, encoder_identity
from gan_writer.multimodal.generator import ImagePrefixGenerator, PrefixConfig
from gan_writer.systems.common import GeneratorStage
from gan_writer.systems.options import GENERATOR_RANGES, PREFIX_RANGES, check_options
from gan_writer.systems.window import log_window


class ImageStage(GeneratorStage):
    """What the image stages share: the batch's features, the encoder check, validation
    NLL with matched and mismatched images, and sample texts per validation image."""

    generator: ImagePrefixGenerator

    def check_generator(self, max_length: int) -> None:
        """Raises ValueError if the LM's positions cannot hold prefix + BOS + ``max_length``."""
        lm_pos = self.generator.lm.max_positions
        k = self.generator.prefix_length
        if lm_pos is not None and lm_pos < k + 1 + max_length:
            raise ValueError(
                f"the LM has {lm_pos} positions but needs prefix_length {k} + BOS + data.max_length {max_length}: "
                f"raise model.generator.n_positions to {k + 1 + max_length} or lower model.prefix.prefix_length"
            )

    def batch_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The features the generator reads: ``(B, H)`` pooled or ``(B, N, H)`` patch.

        Raises:
            ValueError: patch features wanted but the data module does not keep them.
        """
        if self.generator.prefix_config.feature == "patch":
            if "patch_features" not in batch:
                raise ValueError("model.prefix.feature=patch needs data.patch_features: true")
            return batch["patch_features"]
        return batch["features"]

    def on_fit_start(self) -> None:
        super().on_fit_start()
        dm = getattr(self.trainer, "datamodule", None)
        theirs = getattr(dm, "encoder_identity", None)
        ours = self.generator.encoder_identity
        if theirs is not None and ours and theirs["config"] != ours["config"]:
            raise ValueError(
                f"data.image_encoder ({theirs['path']}, {theirs['model_type']}, feature_dim={theirs['feature_dim']}) "
                f"is not the encoder the generator reads ({ours['path']}, {ours['model_type']}, "
                f"feature_dim={ours['feature_dim']}): set data.image_encoder and model.image_encoder to the same directory"
            )

    def batch_nll(self, batch: dict[str, torch.Tensor], mismatched: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(summed NLL, real tokens)`` of the poems given their images, or (``mismatched``)
        given another image of the batch (rows without another image are dropped)."""
        feats, ids, mask = self.batch_features(batch), batch["ids"], batch["attention_mask"]
        if mismatched:
            j, valid = mismatch_index(batch["image_index"].cpu())
            j, valid = j.to(ids.device), valid.to(ids.device)
            feats, ids, mask = feats[j][valid], ids[valid], mask[valid]
            if ids.size(0) == 0:
                return torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        return token_nll(self.generator.condition(feats).log_probs(ids, mask), mask)

    def on_validation_epoch_start(self) -> None:
        self._val = {"nll": [0.0, 0.0], "nll_mismatched": [0.0, 0.0]}
        self._val_feats: list[torch.Tensor] = []

    def validate_nll(self, batch: dict[str, torch.Tensor]) -> None:
        """Accumulate ``val/nll`` and ``val/nll_mismatched`` for one batch."""
        for key, mismatched in (("nll", False), ("nll_mismatched", True)):
            total, n = self.batch_nll(batch, mismatched)
            self._val[key][0] += float(total)
            self._val[key][1] += float(n)
        if sum(f.size(0) for f in self._val_feats) < self.hparams.num_text_samples:
            self._val_feats.append(self.batch_features(batch)[: self.hparams.num_text_samples])

    def log_validation(self) -> None:
        """Log ``val/nll``, ``val/ppl``, ``val/nll_mismatched``, ``val/image_gain`` (nats per
        token: how much the right image lowers the NLL against another image) and samples."""
        (s, n), (sm, nm) = self._val["nll"], self._val["nll_mismatched"]
        if n:
            self.log("val/nll", s / n, prog_bar=True)
            self.log("val/ppl", float(torch.tensor(s / n).exp()))
        if n and nm:
            self.log("val/nll_mismatched", sm / nm)
            self.log("val/image_gain", sm / nm - s / n, prog_bar=True)
        if self.hparams.num_text_samples and self._val_feats and not self.trainer.sanity_checking:
            feats = torch.cat(self._val_feats)[: self.hparams.num_text_samples]
            gen = torch.Generator(device=self.device).manual_seed(1234)
            was = self.generator.training
            self.generator.eval()
            ids = self.generator.condition(feats).sample(feats.size(0), self.max_length, generator=gen)
            self.generator.train(was)
            self.log_samples(self.decode(ids), tag="samples/image")


class ImageMLEModule(ImageStage):
    """MLE (teacher forcing) of an :class:`~gan_writer.multimodal.generator.ImagePrefixGenerator`.

    Logs ``train/nll`` (nats per token), ``val/nll``, ``val/ppl``, ``val/nll_mismatched``
    (the validation poems under another image), ``val/image_gain`` (= ``val/nll_mismatched``
    − ``val/nll``; > 0 means the generator uses the image) and sample poems for validation
    images (``samples/image``).

    Args:
        image_encoder: local vision model directory; the same as ``data.image_encoder``
            (optional when ``init_checkpoint`` is already image-conditioned).
        generator: how to build the LM (fresh GPT-2 sizes or ``pretrained`` path).
        init_checkpoint: start from this gan_writer checkpoint: a text checkpoint (its
            generator becomes the LM) or an image-conditioned one (continued as is).
        prefix: the mapping network (:class:`~gan_writer.multimodal.generator.PrefixConfig`);
            ignored when continuing an image-conditioned checkpoint.
        freeze_lm: train only the mapping network.
        tokenizer, max_length: linked from the data module.
        lr, weight_decay: AdamW.
        num_text_samples: validation images whose sampled poem goes to TensorBoard.

    Raises:
        ValueError: no ``image_encoder`` for a new generator, a non-transformer LM, too few
            LM positions, or (at fit start) a data module with another encoder.
    """

    window_prog_bar = ("train/nll",)

    def __init__(
        self,
        image_encoder: str | None = None,
        generator: GeneratorConfig | None = None,
        init_checkpoint: str | None = None,
        prefix: PrefixConfig | None = None,
        freeze_lm: bool = True,
        tokenizer: Any = None,
        max_length: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        num_text_samples: int = 4,
    ) -> None:
        check_options("model.init_args", locals(), {
            "generator": GENERATOR_RANGES, "prefix": PREFIX_RANGES, "max_length": ">= 2", "lr": "> 0",
            "weight_decay": ">= 0", "num_text_samples": ">= 0"})
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer", "image_encoder"])  # the data module logs image_encoder
        self.setup_generator(generator, tokenizer, init_checkpoint, max_length)
        if isinstance(self.generator, ImagePrefixGenerator):
            if image_encoder:
                check_same_encoder(self.generator.encoder_identity, image_encoder, what=str(init_checkpoint))
            self.generator.set_freeze_lm(freeze_lm)
        else:
            if not image_encoder:
                raise ValueError(
                    "model.image_encoder is required: the local directory of the vision model (CLIP, SigLIP, ViT) "
                    "whose features the generator reads, the same as data.image_encoder"
                )
            identity = encoder_identity(image_encoder)
            self.generator = ImagePrefixGenerator(self.generator, identity["feature_dim"], prefix or PrefixConfig(),
                                                  identity, freeze_lm)
        self._meta["image_encoder"] = self.generator.encoder_identity.get("path")
        self.check_generator(max_length)
        self.generator.train()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, n = self.batch_nll(batch)
        self.train_window.add("train/nll", total, n)  # token-weighted over the steps since the last logged point
        log_window(self, self.train_window, self.window_prog_bar)
        return total / n

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.validate_nll(batch)

    def on_validation_epoch_end(self) -> None:
        self.log_validation()

    def configure_optimizers(self):
        params = [p for p in self.generator.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
