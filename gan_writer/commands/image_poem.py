"""``gan-writer image-poem --ckpt X --image PHOTO --image-encoder DIR``: poems for a photo."""
from __future__ import annotations

import argparse
import sys

import torch

from gan_writer.commands.tool_parser import seed as seed_type


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="an image-conditioned checkpoint (experiments/image_poem/*.yaml) or run directory")
    parser.add_argument("--image", required=True, help="the photo (JPEG, PNG, ...)")
    parser.add_argument("--image-encoder", default=None,
                        help="local directory of the vision model the checkpoint was trained with (CLIP, SigLIP, ViT)")
    parser.add_argument("--n", type=int, default=3, help="number of poems (default 3)")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens (0 = all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0 = all)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="tokens to draw (default 64, within the model's positions)")
    parser.add_argument("--seed", type=seed_type, default=0, help="random seed (same seed, same poems)")


def poems_for_image(
    ckpt: str, image: str, image_encoder: str | None, n: int = 3, temperature: float = 1.0, top_k: int = 0,
    top_p: float = 1.0, max_new_tokens: int | None = None, seed: int = 0,
) -> list[str]:
    """Sample ``n`` poems for the photo ``image``, as a writer reads them
    (:func:`gan_writer.writing.readable.readable_for`).

    Raises:
        FileNotFoundError, ValueError: from :func:`gan_writer.multimodal.load_for_image`
            (text-only checkpoint, no or wrong encoder directory, unreadable image).
    """
    from gan_writer.multimodal import load_for_image

    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    gen, tok = load_for_image(ckpt, image, image_encoder,
                              text_only=f"for text-only poems use gan-writer generate --ckpt {ckpt}")
    steps = max_new_tokens or 64
    if max_new_tokens is None and gen.max_positions is not None:
        steps = min(steps, gen.max_positions)
    ids = gen.sample(n, steps, temperature=temperature, top_k=top_k, top_p=top_p,
                     generator=torch.Generator().manual_seed(seed))
    from gan_writer.writing.readable import readable_for

    return [readable_for(tok, text) for text in tok.batch_decode(ids.tolist(), skip_special_tokens=True)]


def run(args: argparse.Namespace) -> int:
    try:
        poems = poems_for_image(args.ckpt, args.image, args.image_encoder, args.n, args.temperature, args.top_k,
                                args.top_p, args.max_new_tokens, args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"gan-writer image-poem: error: {err}", file=sys.stderr)
        return 2
    for poem in poems:
        print(poem)
        print()
    return 0
