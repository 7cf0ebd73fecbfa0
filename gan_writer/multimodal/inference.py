"""Poems from a photo: load an image-conditioned checkpoint and bind one image to it."""
from __future__ import annotations

from pathlib import Path

from gan_writer.checkpoint import load_artifacts
from gan_writer.multimodal.encoder import ImageEncoder, check_same_encoder, load_image
from gan_writer.multimodal.generator import ConditionedGenerator, ImagePrefixGenerator


class NoImageConditioningError(ValueError):
    """The checkpoint's generator reads no image."""


def load_for_image(ckpt: str | Path, image_path: str | Path, encoder_dir: str | Path | None,
                   text_only: str = "drop --image"):
    """The generator of ``ckpt`` conditioned on the photo ``image_path``, and its tokenizer.

    The returned :class:`~gan_writer.multimodal.generator.ConditionedGenerator` is a full
    :class:`~gan_writer.models.base.CausalGenerator` (``sample``, ``encode``/``step``,
    rollouts, constrained decoding), bound to one image (any number of rows). Eval mode.

    Args:
        ckpt: an image-conditioned gan_writer checkpoint (``systems.image_mle`` or
            ``systems.image_adversarial``) or its run directory.
        image_path: the photo (any format PIL reads).
        encoder_dir: the local vision model directory the checkpoint was trained with
            (``--image-encoder``).
        text_only: what to do with a text-only ``ckpt``, ending its error.

    Returns:
        ``(conditioned generator, tokenizer)``.

    Raises:
        NoImageConditioningError: ``ckpt`` was trained on text only.
        ValueError: no ``encoder_dir`` given, or it holds another architecture than the
            checkpoint's encoder; an unreadable image.
        FileNotFoundError: missing checkpoint, image or encoder directory.
    """
    photo = load_image(image_path, "--image")  # before the (slow) checkpoint load
    art = load_artifacts(ckpt)
    gen = art.generator
    if not isinstance(gen, ImagePrefixGenerator):
        raise NoImageConditioningError(
            f"{art.meta.get('path')} has no image conditioning (its {art.meta.get('stage', 'stage')} generator reads text only): "
            f"{text_only}, or train an image-conditioned generator first "
            "(gan-writer fit --config experiments/image_poem/mle.yaml)"
        )
    rec = gen.encoder_identity
    if encoder_dir is None:
        raise ValueError(
            f"{art.meta.get('path')} is image-conditioned and needs the vision model it was trained with: pass "
            f"--image-encoder DIR, a local directory of {rec.get('class')} ({rec.get('model_type')}, "
            f"feature_dim={rec.get('feature_dim')}); training used {rec.get('path')}"
        )
    if rec:
        check_same_encoder(rec, encoder_dir, what=str(art.meta.get("path")))
    encoder = ImageEncoder(encoder_dir)
    pooled, patches = encoder.encode_images([photo])
    features = pooled if gen.prefix_config.feature == "pooled" else patches
    conditioned: ConditionedGenerator = gen.condition(features).eval()
    return conditioned, art.tokenizer
