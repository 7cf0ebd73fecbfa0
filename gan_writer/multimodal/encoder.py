"""Image encoder: a ``transformers`` vision tower loaded from a local directory.

Supported (``model_type`` in the directory's ``config.json``): CLIP (``clip`` or
``clip_vision_model`` → ``CLIPVisionModel``, Radford et al. 2021), SigLIP (``siglip`` /
``siglip_vision_model`` → ``SiglipVisionModel``, Zhai et al. 2023) and ViT (``vit`` →
``ViTModel``, Dosovitskiy et al. 2021). A full CLIP/SigLIP directory (text and vision
towers) works: only the vision tower is loaded. Images are preprocessed by the model's own
image processor (``preprocessor_config.json`` in the same directory). Nothing is downloaded
and no code from the directory is run (``trust_remote_code=False``, safetensors weights).

The encoder is frozen (eval mode, no gradients), as in ClipCap (Mokady et al. 2021); its
weights are never stored in gan_writer checkpoints, only its identity
(:func:`encoder_identity`: path, class, vision config, feature sizes, a weights fingerprint).
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

#: model_type → (vision model class name, key of the vision sub-config in a full config or None)
SUPPORTED: dict[str, tuple[str, str | None]] = {
    "clip": ("CLIPVisionModel", "vision_config"),
    "clip_vision_model": ("CLIPVisionModel", None),
    "siglip": ("SiglipVisionModel", "vision_config"),
    "siglip_vision_model": ("SiglipVisionModel", None),
    "vit": ("ViTModel", None),
}
_VOLATILE = ("transformers_version", "_name_or_path", "dtype", "torch_dtype", "architectures", "_attn_implementation_autoset")


def _vision_config(directory: str | Path):
    """``(model class name, vision config)`` of the model in ``directory``.

    Raises:
        FileNotFoundError: no directory or no ``config.json`` in it.
        ValueError: a model type that is not a supported vision tower.
    """
    from transformers import AutoConfig

    path = Path(directory)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"image encoder directory {path} has no config.json: point --image-encoder / image_encoder at a local "
            "directory saved with save_pretrained (e.g. a downloaded openai/clip-vit-base-patch32)"
        )
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise ValueError(
            f"{path}/config.json has model_type {model_type!r}; the image encoder supports "
            f"{sorted(SUPPORTED)} (CLIP, SigLIP, ViT vision models)"
        )
    cls_name, sub = SUPPORTED[model_type]
    return cls_name, (getattr(config, sub) if sub else config)


def _fingerprint(path: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of the first MiB of each weights file (cheap, tells most weights apart)."""
    out = {}
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        with open(f, "rb") as fh:
            head = hashlib.sha256(fh.read(1 << 20)).hexdigest()
        out[f.name] = {"bytes": f.stat().st_size, "sha256_first_mib": head}
    return out


def encoder_identity(directory: str | Path) -> dict[str, Any]:
    """What a checkpoint records about the encoder (no weights are loaded).

    Returns:
        JSON-able dict: ``path`` (absolute), ``class`` (e.g. ``CLIPVisionModel``),
        ``model_type``, ``config`` (the vision config without volatile keys),
        ``feature_dim`` (``H``, size of pooled and patch features) and ``weights``
        (file sizes and first-MiB hashes).

    Raises:
        FileNotFoundError, ValueError: see :func:`_vision_config`.
    """
    cls_name, vcfg = _vision_config(directory)
    cfg = {k: v for k, v in vcfg.to_dict().items() if k not in _VOLATILE}
    return {
        "path": str(Path(directory).resolve()),
        "class": cls_name,
        "model_type": vcfg.model_type,
        "config": cfg,
        "feature_dim": int(vcfg.hidden_size),
        "weights": _fingerprint(Path(directory)),
    }


def check_same_encoder(recorded: dict[str, Any], directory: str | Path, what: str = "the checkpoint") -> None:
    """Raise if ``directory`` holds another encoder architecture than ``recorded``; warn if
    only the weights' fingerprint differs.

    Raises:
        ValueError: naming both model types and feature sizes.
    """
    found = encoder_identity(directory)
    if found["config"] != recorded["config"]:
        raise ValueError(
            f"{what} was trained on features of {recorded['class']} ({recorded['model_type']}, "
            f"feature_dim={recorded['feature_dim']}) from {recorded['path']}, but {directory} holds "
            f"{found['class']} ({found['model_type']}, feature_dim={found['feature_dim']}) with a different config: "
            f"pass the encoder directory it was trained with"
        )
    if recorded.get("weights") and found["weights"] and found["weights"] != recorded["weights"]:
        warnings.warn(
            f"{directory} has the architecture {what} was trained with but different weight files than "
            f"{recorded['path']} had: features (and so the poems) may not match training", stacklevel=2,
        )


def load_image(path: str | Path, where: str = "", fix: str = "give a photo file (JPEG, PNG, ...)"):
    """Open an image as RGB ``PIL.Image``.

    Args:
        path: image file.
        where: context for errors (e.g. ``"line 3 of pairs.jsonl"``, ``"--image"``).
        fix: what the user should do when the file is a folder or not an image.

    Raises:
        FileNotFoundError: the file does not exist (names it and ``where``).
        ValueError: a folder, or PIL cannot read it (not an image, truncated).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    ctx = f" ({where})" if where else ""
    if path.is_dir():
        raise ValueError(f"image {path}{ctx} is a folder; {fix}")
    if not path.is_file():
        raise FileNotFoundError(f"image {path}{ctx} not found: fix the path or add the file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"cannot read image {path}{ctx}: {err}; {fix}") from err


class ImageEncoder(nn.Module):
    """A frozen vision tower with its image processor.

    Args:
        directory: local model directory (``config.json``, weights, ``preprocessor_config.json``).

    Raises:
        FileNotFoundError: no directory, ``config.json`` or ``preprocessor_config.json``.
        ValueError: unsupported model type.
    """

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        import transformers
        from transformers import AutoImageProcessor

        self.identity = encoder_identity(directory)
        path = Path(directory)
        if not any((path / name).is_file() for name in ("preprocessor_config.json", "processor_config.json")):
            raise FileNotFoundError(
                f"image encoder directory {path} has no preprocessor_config.json: save the model's image processor "
                "beside it (processor.save_pretrained(DIR))"
            )
        cls = getattr(transformers, self.identity["class"])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*requires torchvision.*")
            self.processor = AutoImageProcessor.from_pretrained(str(path), trust_remote_code=False)
        # ViT's pooler (tanh layer) is missing or untrained in many checkpoints: use its CLS token
        extra = {"add_pooling_layer": False} if self.identity["class"] == "ViTModel" else {}
        self.model = cls.from_pretrained(str(path), dtype=torch.float32, **extra)
        self.model.eval().requires_grad_(False)
        self.feature_dim = self.identity["feature_dim"]

    def train(self, mode: bool = True) -> "ImageEncoder":
        """Always eval mode: the encoder is frozen."""
        return super().train(False)

    def preprocess(self, images: Sequence) -> torch.Tensor:
        """PIL images / ``(H, W, 3)`` uint8 arrays → ``pixel_values`` ``(B, 3, S, S)`` float."""
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"]

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of preprocessed images.

        Args:
            pixel_values: ``(B, 3, S, S)`` from :meth:`preprocess`.

        Returns:
            ``(pooled (B, H), patches (B, N, H))``: the model's pooled output (CLIP: the
            post-layernorm CLS token; SigLIP: the attention-pooling head; ViT: the final CLS token)
            and its last hidden states (``N`` patch tokens, with CLS for CLIP/ViT).
        """
        device = next(self.model.parameters()).device
        out = self.model(pixel_values=pixel_values.to(device, torch.float32))
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # ViT without a pooling layer: the CLS token
            pooled = out.last_hidden_state[:, 0]
        return pooled.float(), out.last_hidden_state.float()

    def encode_images(self, images: Sequence, batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`preprocess` then :meth:`forward` in batches; returns CPU tensors ``(B, H)``, ``(B, N, H)``."""
        pooled, patches = [], []
        for i in range(0, len(images), batch_size):
            p, q = self(self.preprocess(images[i:i + batch_size]))
            pooled.append(p.cpu())
            patches.append(q.cpu())
        return torch.cat(pooled), torch.cat(patches)
