"""Image → poem: image encoders, image-conditioned generators (ClipCap prefixes), the
multimodal discriminator and image–poem pair data (Liu et al. 2018 multi-adversarial training)."""
from __future__ import annotations

from gan_writer.multimodal.encoder import ImageEncoder, encoder_identity, load_image
from gan_writer.multimodal.generator import (
    ConditionedGenerator,
    ImageConditioningRequired,
    ImagePrefixGenerator,
    PrefixConfig,
)
from gan_writer.multimodal.inference import NoImageConditioningError, load_for_image

__all__ = [
    "ConditionedGenerator",
    "ImageConditioningRequired",
    "ImageEncoder",
    "ImagePrefixGenerator",
    "NoImageConditioningError",
    "PrefixConfig",
    "encoder_identity",
    "load_for_image",
    "load_image",
]
