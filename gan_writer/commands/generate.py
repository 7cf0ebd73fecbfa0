"""``gan-writer generate --ckpt PATH``: print samples from a checkpoint, needing nothing else."""
from __future__ import annotations

import argparse
import json
import sys

import torch

from gan_writer.checkpoint import load_artifacts
from gan_writer.commands.errors import report
from gan_writer.commands.tool_parser import seed as seed_type
from gan_writer.systems.options import check_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True,
                        help="a .ckpt written by any gan_writer stage, or a run directory (its newest version's best checkpoint)")
    parser.add_argument("--n", type=int, default=5, help="number of samples (default 5)")
    parser.add_argument("--prompt", default=None, help="text every sample starts with, e.g. 春江潮水")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens (0 = all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0 = all)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="tokens to draw (default: the checkpoint's max_length)")
    parser.add_argument("--seed", type=seed_type, default=0, help="random seed (same seed, same samples)")
    parser.add_argument("--format", choices=["text", "jsonl"], default="text",
                        help="text: each sample under a '# i' line, samples apart by a blank line (multi-line "
                             "sonnets and scripts stay readable); jsonl: one JSON object per sample "
                             "({\"index\", \"text\"})")


def generate_texts(
    ckpt: str,
    n: int = 5,
    prompt: str | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Sample ``n`` texts from the generator stored in ``ckpt``.

    Raises:
        FileNotFoundError, ValueError: from :func:`gan_writer.checkpoint.load_artifacts`;
            ValueError if the prompt has characters the tokenizer does not know, or
            ``temperature`` is not a finite number > 0 (``top_k`` >= 0, ``top_p`` in (0, 1]).
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    check_option("--temperature", temperature, "> 0")
    check_option("--top-k", top_k, ">= 0")
    check_option("--top-p", top_p, "(0, 1]")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    art = load_artifacts(ckpt)
    print(f"checkpoint: {art.meta.get('path')}", file=sys.stderr)
    tok, gen = art.tokenizer, art.generator
    prompt_ids = None
    if prompt:
        try:
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
        except Exception as err:  # noqa: BLE001 - tokenizers' WordLevel without an [UNK] raises a bare Exception
            if "unk" not in str(err).lower():
                raise
            ids = None  # an id tokenizer (oracle runs) has no unknown token
        if ids is None or (tok.unk_token_id is not None and tok.unk_token_id in ids):
            what = tok.unk_token or f"its words are the ids 0 .. {len(tok) - 1}, space-separated"
            raise ValueError(f"the prompt {prompt!r} has tokens outside the checkpoint's vocabulary ({what})")
        prompt_ids = torch.tensor(ids, dtype=torch.long)
    steps = max_new_tokens
    if steps is None:  # the checkpoint's max_length, within the model's positions
        steps = int(art.meta.get("max_length") or 64)
        if gen.max_positions is not None:
            room = gen.max_positions - (0 if prompt_ids is None else prompt_ids.numel())
            if room < 1:
                raise ValueError(f"the prompt fills all {gen.max_positions} positions of the model; shorten it")
            steps = min(steps, room)
    out = gen.sample(
        n, steps, temperature=temperature, top_k=top_k, top_p=top_p, prompt_ids=prompt_ids,
        generator=torch.Generator().manual_seed(seed),
    )
    return tok.batch_decode(out.tolist(), skip_special_tokens=True)


def format_samples(texts: list[str], fmt: str = "text") -> str:
    """The printed form of ``texts``: ``text`` puts each under a ``# i`` line (1-based) with a
    blank line between samples; ``jsonl`` is one ``{"index": i, "text": ...}`` per line.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    if fmt == "jsonl":
        return "".join(json.dumps({"index": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts, 1))
    if fmt == "text":
        return "\n".join(f"# {i}\n{t}\n" for i, t in enumerate(texts, 1))
    raise ValueError(f"unknown format {fmt!r}; expected 'text' or 'jsonl'")


def run(args: argparse.Namespace) -> int:
    try:
        texts = generate_texts(
            args.ckpt, args.n, args.prompt, args.temperature, args.top_k, args.top_p, args.max_new_tokens, args.seed
        )
    except (FileNotFoundError, ValueError) as err:
        return report("gan-writer generate", err)
    sys.stdout.write(format_samples(texts, getattr(args, "format", "text")))
    return 0
