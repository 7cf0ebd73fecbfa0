"""Flushing float denormals (subnormals) to zero on the CPU while a discriminator trains.

Arithmetic on denormal floats (``0 < |x| < 1.18e-38`` in float32) takes a slow microcode
path on x86 CPUs, tens of times the cost of a normal operation. SeqGAN's highway layer meets
it: a ReLU unit of the transform matrix that never fires gets exactly zero gradients, and its
Adam first moment then decays by ``beta1 = 0.9`` a step into the denormal range. Measured on
one thread (torch 2.13, the SeqGAN CNN at the oracle's sizes, 10,000 + 10,000 rows): after
three epochs ~760,000 of the transform weight's moments were denormal and an epoch took
26.5 s, against 24.8 s with them flushed (``benchmarks/bench_adversarial.py``).

:func:`flush_denormals` sets the CPU's flush-to-zero / denormals-are-zero modes with
``torch.set_flush_denormal`` for a block and then restores the previous mode. What changes is
only values below ``1.18e-38``, which become ``0``: an Adam update of ``~1e-38 / (sqrt(v) + eps)``
against one of ``0``, far below the float32 resolution of the weight it is added to. Measured:
1,000 steps of the SeqGAN CNN (2,000 + 2,000 rows, 16 epochs; 572,619 denormal moments at the
end without the flush) give bit-identical weights with and without it.

The modes belong to the calling thread: with ``torch.get_num_threads() > 1`` the other
intra-op threads keep theirs (they are flushed or not as the process set them).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["denormals_flushed", "set_flush_denormals", "flush_denormals"]

_SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def denormals_flushed() -> bool:
    """Whether this thread's float arithmetic treats denormals as zero now (probed: a
    denormal times one)."""
    return (torch.tensor([_SUBNORMAL], dtype=torch.float32) * 1.0).item() == 0.0


def set_flush_denormals(on: bool) -> bool:
    """Set this thread's flush-to-zero mode; returns the mode before (False where the CPU
    cannot flush: nothing is changed there)."""
    before = denormals_flushed()
    torch.set_flush_denormal(bool(on))
    return before


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Denormals flushed to zero inside the block (this thread), the previous mode restored
    after it, also on an exception."""
    before = set_flush_denormals(True)
    try:
        yield
    finally:
        if not before:
            torch.set_flush_denormal(False)
