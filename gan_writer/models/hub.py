"""Loading a pretrained model or tokenizer by name, with a one-line error when it is not here.

``from_pretrained("gpt2")`` offline (or with ``HF_HUB_OFFLINE=1``) raises a transformers
``OSError`` after several retries, and LightningCLI buries it in its own "Does not validate
against any of the Union subtypes" message. :func:`from_pretrained` turns it into a
:class:`PretrainedNotFoundError` that names the option, the model, and what to do.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

__all__ = ["PretrainedNotFoundError", "from_pretrained"]


class PretrainedNotFoundError(OSError):
    """A pretrained model or tokenizer named by the user could not be loaded."""


def from_pretrained(load: Callable[..., Any], name_or_path: str, option: str, **kwargs) -> Any:
    """``load(name_or_path, **kwargs)`` (any ``*.from_pretrained``), errors made one line.

    Args:
        load: the loader, e.g. ``AutoModelForCausalLM.from_pretrained``.
        name_or_path: hub name or local folder.
        option: the user's option that named it, for the message (``generator.pretrained``).
    Always passes ``trust_remote_code=False`` and first refuses a local folder that asks to
    run its own code (:func:`gan_writer.safe_load.refuse_remote_code`).

    Raises:
        UnsafeFileError: a local folder whose config has ``auto_map``.
        PretrainedNotFoundError: the loader raised ``OSError`` (not in the local cache and the
            hub unreachable, an unknown name, or a folder without the model's files).
    """
    from gan_writer.safe_load import refuse_remote_code

    refuse_remote_code(name_or_path)
    kwargs["trust_remote_code"] = False
    try:
        return load(name_or_path, **kwargs)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        path = str(name_or_path)
        if Path(path).expanduser().exists():
            raise PretrainedNotFoundError(f"{option}={name_or_path!r}: the folder could not be loaded ({first})") from err
        if path.count("/") > 1 or path.startswith((".", "/", "~")) or path.endswith(".ckpt"):  # a path, not org/name
            raise PretrainedNotFoundError(
                f"{option}={name_or_path!r}: no such file or folder (relative paths start at {os.getcwd()}); "
                "fix the path, or run the stage that writes it first") from err
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get("TRANSFORMERS_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached, or has no such model"
        raise PretrainedNotFoundError(
            f"{option}={name_or_path!r} is not a local folder and not in the Hugging Face cache ({why}): "
            f"download it where there is a network (`hf download {name_or_path}`) and run again, or give "
            "the path of a local model folder (a GGUF file: its folder plus gguf_file=)") from err
