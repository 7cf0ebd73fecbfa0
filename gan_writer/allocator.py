"""The C allocator's settings for training processes: keep freed memory instead of
returning it to the operating system after every step.

A training step on CPU allocates and frees the same large activations every time (the
SeqGAN LSTM's ``(64, 20, 5000)`` logits and their log-softmax and gradients: 25.6 MB
each). glibc's ``malloc`` serves blocks above its mmap threshold with fresh ``mmap``\\ s and
trims the heap top above its trim threshold, so each step touches new pages: measured on
one thread (torch 2.13, glibc 2.36), an MLE epoch of the SeqGAN LSTM took 100,000-290,000
minor page faults per 20 steps and 3.8 s, against ~0 faults on most steps and 2.8 s with
the thresholds raised (depending on the heap's layout, a step now and then still grows the
heap by one block); a plain PyTorch loop pays the same (3.4 s -> 2.6 s). (Since 2026-12-05 the
LSTM's log-probabilities are computed in cache-sized chunks, :mod:`gan_writer.models.linear_ce`,
so its MLE step no longer allocates whole logits; a transformer's and the discriminators'
activations still do.) The operating system gets the memory back when the process ends; the
peak RSS is unchanged (freed blocks are reused).

Same effect from the shell: ``MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Raise glibc's mmap threshold (bytes; blocks up to it come from the heap and are
    reused) and trim threshold (free bytes kept at the heap top) with ``mallopt``.

    Returns:
        True if both were set; False off Linux/glibc (nothing is changed there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
