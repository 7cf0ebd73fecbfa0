"""Control characters and terminal escape sequences: never part of a training sample.

Files made for terminals (the ``fortune`` databases, logs, ``ls --color`` output) carry
ANSI escape sequences (``ESC [ 1 m`` …) and other C0/C1 control characters that would
otherwise enter the vocabulary and come back out of ``generate`` as raw bytes.
:func:`strip_controls` removes them; line breaks and tabs are kept.
Source for the sequence grammar: ECMA-48 (CSI ``ESC [ params intermediates final``,
OSC ``ESC ] ... BEL|ST``, two-byte ``ESC x``).
"""
from __future__ import annotations

import re

__all__ = ["strip_controls", "clean_samples"]

# CSI, OSC (ended by BEL or ESC \), then any other two-character ESC sequence, then a lone ESC
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x1b")
_CONTROL = re.compile("[" + "".join(
    re.escape(chr(c)) for c in [*range(0x00, 0x20), *range(0x7f, 0xa0)] if chr(c) not in "\n\t") + "\ufeff]")


def strip_controls(text: str) -> tuple[str, int]:
    """``text`` without ANSI escape sequences and control characters (``\\n``, ``\\t`` kept).

    Returns:
        ``(clean text, number of removed sequences and characters)``; a sequence such as
        ``ESC [ 1 ; 31 m`` counts once.
    """
    text, n_seq = _ANSI.subn("", text)
    text, n_chr = _CONTROL.subn("", text)
    return text, n_seq + n_chr


def clean_samples(samples: list[str]) -> tuple[list[str], int]:
    """Strip every sample (see :func:`strip_controls`), dropping those left blank.

    Returns:
        ``(samples, removed)``: the cleaned, non-blank samples (order kept) and the total
        number of sequences and characters removed.
    """
    out, removed = [], 0
    for s in samples:
        if _ANSI.search(s) or _CONTROL.search(s):
            s, n = strip_controls(s)
            removed += n
            s = "\n".join(line.rstrip() for line in s.strip().split("\n"))
        if s.strip():
            out.append(s)
    return out, removed
