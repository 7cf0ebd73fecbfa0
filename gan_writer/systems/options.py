"""Range checks of numeric options, run when a stage (or the data module, or a CLI tool) is
built, so that a bad value is refused at start-up with the YAML key that holds it.

A range is a short string: ``"> 0"``, ``">= 0"``, ``">= 1"``, ``"[0, 1]"``, ``"[0, 1)"``,
``"(0, 1]"``. Every checked number must also be finite (no ``nan``/``inf``); ``None``
passes (an unset optional). Tuples and lists (e.g. ``betas``) are checked element-wise.
A nested mapping of ranges checks the fields of a config object (a dataclass such as
``model.init_args.generator``); :data:`GENERATOR_RANGES` and :data:`DISCRIMINATOR_RANGES`
are those of :class:`~gan_writer.models.GeneratorConfig` and
:class:`~gan_writer.systems.discriminator.DiscriminatorConfig`.

Usage, first line of a stage's ``__init__``::

    check_options("model.init_args", locals(), _RANGES)
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["OptionError", "check_heads", "check_option", "check_options", "GENERATOR_RANGES",
           "DISCRIMINATOR_RANGES", "PEFT_RANGES", "PREFIX_RANGES"]

#: ``model.init_args.generator.peft`` (:class:`~gan_writer.models.adapters.PeftOptions`)
PEFT_RANGES = {"r": ">= 1", "alpha": "> 0", "dropout": "[0, 1)", "num_virtual_tokens": ">= 1", "init_r": ">= 1",
               "tinit": ">= 0", "tfinal": ">= 0", "deltaT": ">= 1", "total_step": ">= 1", "orth_reg_weight": ">= 0"}
GENERATOR_RANGES = {"n_layer": ">= 1", "n_embd": ">= 1", "n_head": ">= 1", "n_positions": ">= 2",
                    "dropout": "[0, 1)", "emb_dim": ">= 1", "hidden_dim": ">= 1", "peft": PEFT_RANGES}
#: the image-conditioned generator's prefix mapping (:class:`~gan_writer.multimodal.generator.PrefixConfig`)
PREFIX_RANGES = {"prefix_length": ">= 1", "hidden_dim": ">= 1", "num_layers": ">= 1", "num_heads": ">= 1",
                 "dropout": "[0, 1)"}
DISCRIMINATOR_RANGES = {"embed_dim": ">= 1", "filter_sizes": ">= 1", "num_filters": ">= 1", "dropout": "[0, 1)",
                        "l2_reg_lambda": ">= 0", "n_layer": ">= 1", "n_embd": ">= 1", "n_head": ">= 1"}

_BOUND = re.compile(r"^\s*(>=|>|<=|<)\s*(-?[\d.e+-]+)\s*$")
_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?[\d.e+-]+)\s*,\s*(-?[\d.e+-]+)\s*([\])])\s*$")


class OptionError(ValueError):
    """A numeric option out of its range or not finite; the message names the key."""


def _within(x: float, spec: str) -> bool:
    m = _BOUND.match(spec)
    if m:
        op, b = m.group(1), float(m.group(2))
        return {">": x > b, ">=": x >= b, "<": x < b, "<=": x <= b}[op]
    m = _INTERVAL.match(spec)
    if not m:
        raise ValueError(f"bad range specification {spec!r}")
    lo, hi = float(m.group(2)), float(m.group(3))
    low_ok = x >= lo if m.group(1) == "[" else x > lo
    high_ok = x <= hi if m.group(4) == "]" else x < hi
    return low_ok and high_ok


def _describe(spec: str) -> str:
    m = _INTERVAL.match(spec)
    return f"in {spec.strip()}" if m else spec.strip()


def check_option(key: str, value: object, spec: str) -> None:
    """Refuse ``value`` of option ``key`` unless it is a finite number satisfying ``spec``.

    Raises:
        OptionError: ``"<key> must be <spec>, got <value>"`` (also for nan/inf, bools
            and non-numbers). ``None`` is accepted.
    """
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_option(f"{key}[{i}]", v, spec)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{key} must be a number {_describe(spec)}, got {value!r}")
    if isinstance(value, int) and abs(value) > 2**63:
        raise OptionError(f"{key} must be {_describe(spec)} and fit in 64 bits, got {value}")
    if not math.isfinite(value):
        raise OptionError(f"{key} must be a finite number {_describe(spec)}, got {value}")
    if not _within(float(value), spec):
        raise OptionError(f"{key} must be {_describe(spec)}, got {value}")


def check_options(prefix: str, values: Mapping[str, object], ranges: Mapping[str, str]) -> None:
    """Check every option named in ``ranges`` (name → range) found in ``values``.

    Args:
        prefix: where the options live in the YAML, e.g. ``"model.init_args"``;
            errors name ``f"{prefix}.{name}"``.
        values: the options, typically ``locals()`` at the top of ``__init__``.
        ranges: option name → range string (see the module docstring), or → a nested
            mapping of ranges for a config object or dict.
    Raises:
        OptionError: for the first option out of range.
    """
    for name, spec in ranges.items():
        if name not in values:
            continue
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(spec, Mapping):  # a config object: check its fields
            value = values[name]
            if value is not None:
                if not isinstance(value, Mapping) and not hasattr(value, "__dict__"):
                    raise OptionError(f"{key} must be a mapping of options, got {value!r}")
                check_options(key, value if isinstance(value, Mapping) else vars(value), spec)
        else:
            check_option(key, values[name], spec)
    if "n_embd" in ranges and "n_head" in ranges:
        check_heads(prefix, values.get("n_embd"), values.get("n_head"))


def check_heads(prefix: str, n_embd: object, n_head: object) -> None:
    """Refuse a transformer width that its heads do not divide (each attention head takes
    ``n_embd / n_head`` dimensions); ``None`` or non-integers pass (other checks name them).

    Raises:
        OptionError: naming ``prefix.n_embd`` and ``prefix.n_head`` and the head counts that fit.
    """
    if not (isinstance(n_embd, int) and isinstance(n_head, int)) or n_embd < 1 or n_head < 1 or n_embd % n_head == 0:
        return
    fits = [h for h in range(1, min(n_embd, 16) + 1) if n_embd % h == 0]
    raise OptionError(f"{prefix}.n_embd={n_embd} is not divisible by {prefix}.n_head={n_head} (each attention head "
                      f"takes n_embd / n_head dimensions); choose n_head from {fits} or change n_embd")

