"""Image–poem pairs: a folder of images plus a JSONL file of ``{"image": ..., "text": ...}``.

One line per pair; ``image`` is a path relative to the image folder (default: the JSONL
file's folder) or absolute; an image may have several poems (one line each). Bad input
fails early with the file and line: invalid JSON, a missing key, an empty text, a missing
or unreadable image.

The data module computes the frozen encoder's features of every image once (ClipCap
precomputes CLIP features the same way), so training never runs the vision tower.
Batches: ``ids`` ``(B, T)``, ``attention_mask`` ``(B, T)``, ``features`` ``(B, H)`` pooled,
``patch_features`` ``(B, N, H)`` (with ``patch_features: true``), ``image_index`` ``(B,)``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from gan_writer.data.datamodule import EncodedTexts, _is_checkpoint, checkpoint_tokenizer, pad_batch
from gan_writer.multimodal.encoder import ImageEncoder, load_image
from gan_writer.tokenization import build_tokenizer


@dataclass(frozen=True)
class Pair:
    """One line of the pairs file: the image's resolved path, the text, its 1-based line."""

    image: Path
    text: str
    line: int


def read_pairs(path: str | Path, image_dir: str | Path | None = None) -> list[Pair]:
    """Read and check a pairs JSONL file (images must exist; they are opened later).

    Raises:
        FileNotFoundError: no such JSONL file, or an image that does not exist (file and line named).
        ValueError: invalid JSON, a line without ``image``/``text`` strings, an empty text, or no pairs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found: give a JSONL file with one {{\"image\", \"text\"}} per line")
    folder = Path(image_dir) if image_dir else path.parent
    pairs = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"line {n} of {path}"
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where} is not valid JSON ({err.msg}); each line must be {{\"image\": ..., \"text\": ...}}") from err
        if not isinstance(row, dict) or not isinstance(row.get("image"), str) or not isinstance(row.get("text"), str):
            raise ValueError(f"{where} needs string keys \"image\" (a file in {folder}) and \"text\" (the poem)")
        if not row["text"].strip():
            raise ValueError(f"{where} has an empty \"text\"")
        image = Path(row["image"]) if Path(row["image"]).is_absolute() else folder / row["image"]
        if not image.is_file():
            raise FileNotFoundError(f"image {image} ({where}) not found: fix the path or set data.image_dir")
        pairs.append(Pair(image, row["text"], n))
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs


class ImagePoemDataModule(L.LightningDataModule):
    """Train/valid batches of image–poem pairs with precomputed image features.

    The split is by image (a validation image is never seen in training), deterministic
    for a ``seed``.

    Args:
        pairs: the JSONL file.
        image_encoder: local vision model directory (see :class:`~gan_writer.multimodal.encoder.ImageEncoder`);
            must be the same as ``model.image_encoder``.
        image_dir: folder of the images (default: the JSONL file's folder).
        tokenizer: ``char``, ``word``, ``bpe``, a pretrained tokenizer path, or a gan_writer
            checkpoint whose tokenizer is reused (needed when the generator comes from one).
        gguf_file, lowercase, bpe_vocab_size, min_frequency: see :class:`gan_writer.data.datamodule.TextDataModule`.
        max_length: tokens per poem including EOS; longer poems are cut.
        batch_size: pairs per batch.
        valid_fraction: share of the images held out for validation (at least one).
        seed: split seed.
        patch_features: also keep patch features ``(N, H)`` (for ``model.prefix.feature=patch``).
        encoder_batch_size: images per encoder forward pass while precomputing.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_pairs` and
            :func:`~gan_writer.multimodal.encoder.load_image` (file and line named); fewer
            than 2 distinct images.
    """

    def __init__(
        self,
        pairs: str,
        image_encoder: str,
        image_dir: str | None = None,
        tokenizer: str = "char",
        gguf_file: str | None = None,
        lowercase: bool = True,
        bpe_vocab_size: int = 8000,
        min_frequency: int = 1,
        max_length: int = 64,
        batch_size: int = 16,
        valid_fraction: float = 0.1,
        seed: int = 0,
        patch_features: bool = False,
        encoder_batch_size: int = 16,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        rows = read_pairs(pairs, image_dir)
        images = sorted({p.image for p in rows})
        if len(images) < 2:
            raise ValueError(f"{pairs} shows {len(images)} distinct image(s); a train/valid split needs at least 2")
        order = images[:]
        random.Random(seed).shuffle(order)
        n_valid = min(len(order) - 1, max(1, round(valid_fraction * len(order))))
        valid_images = set(order[:n_valid])
        self.image_paths = images
        index = {img: i for i, img in enumerate(images)}
        split = {"train": [p for p in rows if p.image not in valid_images], "valid": [p for p in rows if p.image in valid_images]}
        train_texts = [p.text for p in split["train"]]
        if _is_checkpoint(tokenizer):
            self.tokenizer = checkpoint_tokenizer(tokenizer)
        else:
            self.tokenizer = build_tokenizer(tokenizer, train_texts, lowercase=lowercase, vocab_size=bpe_vocab_size,
                                             min_frequency=min_frequency, gguf_file=gguf_file)
        self.max_length, self.batch_size = max_length, batch_size
        self.metric_tokenization = None
        self.datasets = {
            name: list(zip(EncodedTexts([p.text for p in ps], self.tokenizer, max_length).ids, [index[p.image] for p in ps]))
            for name, ps in split.items()
        }
        self._texts = {name: [p.text for p in ps] for name, ps in split.items()}
        first_line = {}
        for p in rows:
            first_line.setdefault(p.image, p.line)
        encoder = ImageEncoder(image_encoder)
        self.encoder_identity = encoder.identity
        self.features, patches = [], []
        for i in range(0, len(images), encoder_batch_size):
            fix = "replace it with a JPEG/PNG file or drop the line"
            chunk = [load_image(img, f"line {first_line[img]} of {pairs}", fix)
                     for img in images[i:i + encoder_batch_size]]
            pooled, patch = encoder.encode_images(chunk, encoder_batch_size)
            self.features.append(pooled)
            if patch_features:
                patches.append(patch)
        self.features = torch.cat(self.features)  # (n_images, H)
        self.patch_features = torch.cat(patches) if patch_features else None  # (n_images, N, H)
        del encoder

    def texts(self, split: str) -> list[str]:
        """The poems of ``split`` (``train`` or ``valid``)."""
        return self._texts[split]

    def collate(self, rows: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        """``[(ids, image index)]`` → the padded batch (see the module docstring)."""
        batch = pad_batch([r[0] for r in rows], self.tokenizer.pad_token_id)
        idx = torch.tensor([r[1] for r in rows], dtype=torch.long)
        batch["image_index"] = idx
        batch["features"] = self.features[idx]
        if self.patch_features is not None:
            batch["patch_features"] = self.patch_features[idx]
        return batch

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.datasets[split]:
            raise ValueError(f"the {split} split of {self.hparams.pairs} is empty")
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=self.collate,
                          generator=torch.Generator().manual_seed(self.hparams.seed) if shuffle else None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)
