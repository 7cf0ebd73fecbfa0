"""``gan-writer export --ckpt X --out DIR [--merge]``: a Hugging Face model directory.

Without ``--merge`` an adapter checkpoint becomes a peft adapter folder
(``adapter_config.json`` + ``adapter_model.safetensors``) for ``PeftModel.from_pretrained``;
with ``--merge`` (or for a checkpoint without adapter) the weights are merged into the base
and saved as safetensors for ``AutoModelForCausalLM.from_pretrained``. The tokenizer is
saved beside them. ``DIR`` must not exist: nothing is ever written into an existing folder.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from pathlib import Path

from gan_writer.checkpoint import load_artifacts
from gan_writer.models.adapters import TRAINED, has_adapter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="a gan_writer .ckpt file or run directory")
    parser.add_argument("--out", required=True, help="new directory to create (refused if it exists)")
    parser.add_argument("--merge", action="store_true", help="merge the adapter into the base weights")


def export(ckpt: str, out: str, merge: bool = False) -> Path:
    """Write the checkpoint's generator (and tokenizer) as a Hugging Face directory.

    Raises:
        FileExistsError: ``out`` exists.
        ValueError: the checkpoint's generator is not a transformer (LSTM, oracle), or
            ``merge`` with a prefix-tuned one.
    """
    target = Path(out)
    if target.exists():
        raise FileExistsError(f"--out {target} exists; give a new directory (export never writes into one)")
    art = load_artifacts(ckpt)
    model = getattr(art.generator, "model", None)
    if model is None or not hasattr(model, "save_pretrained"):
        raise ValueError(f"{ckpt} holds a {type(art.generator).__name__}, not a transformer: nothing to export")
    if merge and not has_adapter(art.generator):
        print(f"note: {ckpt} has no adapter: --merge has nothing to merge; its weights are saved as they are",
              file=sys.stderr)
    if has_adapter(art.generator) and merge:
        if art.generator.adapter.options.method == "prefix":
            raise ValueError(
                f"{ckpt} is prefix-tuned: its virtual tokens live in the KV cache and cannot be merged into "
                "weights; export it without --merge (a peft adapter folder)"
            )
        model = model.merge_and_unload()
    target.mkdir(parents=True)
    try:
        with _no_progress_bars():
            if has_adapter(art.generator) and not merge:
                model.save_pretrained(target, selected_adapters=[TRAINED], safe_serialization=True)
            else:
                _without_gguf_quantizer(model).save_pretrained(target, safe_serialization=True)
        if art.tokenizer is not None:
            art.tokenizer.save_pretrained(target)
        _usual_permissions(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # the folder is ours (it did not exist): no half export left
        raise
    return target


@contextlib.contextmanager
def _no_progress_bars():
    """transformers' "Writing model shards" bar off while saving (one small file, no terminal noise)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _usual_permissions(folder: Path) -> None:
    """Every exported file readable as the umask allows: safetensors writes its weights file
    with mode 0600 (through a private temporary file), the other files get 0644 under umask 022."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~mask)


def _without_gguf_quantizer(model):
    """``model`` with transformers' GGUF marker removed, so ``save_pretrained`` writes it.

    A GGUF base (SmolLM2) is dequantized to float32 when loaded, but transformers keeps
    ``hf_quantizer`` / ``config.quantization_config`` and then refuses to save ("quantized with
    gguf and is not serializable"); the weights are plain floats, so the marker is dropped.
    Other quantization methods are left alone.
    """
    qc = getattr(model.config, "quantization_config", None)
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    if str(getattr(method, "value", method)).lower() == "gguf":
        model.hf_quantizer = None
        del model.config.quantization_config
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
    return model


def run(args: argparse.Namespace) -> int:
    try:
        target = export(args.ckpt, args.out, args.merge)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"gan-writer export: error: {err}", file=sys.stderr)
        return 2
    print(f"gan-writer: exported to {target}", file=sys.stderr)
    return 0
