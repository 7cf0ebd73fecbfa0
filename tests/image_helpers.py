"""Helpers of the multimodal tests: a tiny random CLIP vision tower saved to a local
directory (with its image processor) and the real images that ship in scikit-image and
scikit-learn."""
import json
import warnings
from pathlib import Path

import numpy as np
import torch

#: names of the packaged images (skimage.data.* and sklearn's sample images)
IMAGE_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "china", "flower")


def packaged_images() -> dict[str, np.ndarray]:
    """``{name: (H, W, 3) uint8}`` — real photographs from scikit-image and scikit-learn."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {}
    for name in IMAGE_NAMES[:5]:
        img = getattr(skimage.data, name)()
        out[name] = np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., :3]
    china, flower = load_sample_images().images
    out["china"], out["flower"] = china, flower
    return out


def tiny_clip_dir(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a randomly initialised 2-layer CLIPVisionModel (32×32 images, 8×8 patches) and a
    CLIPImageProcessor to ``path``; returns ``path``."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import CLIPImageProcessor

        torch.manual_seed(seed)
        config = CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                                  num_attention_heads=2, image_size=32, patch_size=8, projection_dim=16)
        CLIPVisionModel(config).save_pretrained(str(path))
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(path))
    return path


#: words that go with each packaged image in the synthetic pair set
KEYWORDS = {
    "astronaut": ["star", "suit", "flag", "orbit"], "coffee": ["cup", "steam", "bean", "morning"],
    "chelsea": ["cat", "whisker", "purr", "fur"], "rocket": ["fire", "launch", "sky", "smoke"],
    "camera": ["lens", "coat", "grass", "shadow"], "china": ["temple", "roof", "stone", "bell"],
    "flower": ["petal", "bloom", "bee", "spring"],
}


def synthetic_poem(name: str, rng: np.random.Generator, n_words: int = 5) -> str:
    """A "poem" of ``n_words`` words drawn from the image's keywords."""
    return " ".join(rng.choice(KEYWORDS[name], size=n_words))


def write_pairs(folder: Path, per_image: int = 4, seed: int = 0) -> Path:
    """Write the packaged images as PNG files and ``pairs.jsonl`` with ``per_image``
    synthetic poems each; returns the JSONL path."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for name, img in packaged_images().items():
        Image.fromarray(img).save(folder / f"{name}.png")
        lines += [json.dumps({"image": f"{name}.png", "text": synthetic_poem(name, rng)}) for _ in range(per_image)]
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
