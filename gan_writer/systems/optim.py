"""Optimizer construction shared by the stages: PyTorch's fused Adam/AdamW kernels where
the parameters' device has them.

The fused kernels apply the same update rule as the default per-tensor loop in one pass
over all parameters (rounding may differ in the last bits). Measured on one CPU thread
(torch 2.13): one step of the SeqGAN CNN discriminator's 7.6 M parameters 81 ms -> 12 ms;
one AdamW step of the SeqGAN LSTM generator (0.33 M parameters) 5.4 ms -> 0.44 ms, about
10% of its MLE training step.
"""
from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["fused_kwargs", "trainer_precision"]

FUSED_DEVICES = ("cpu", "cuda")


def fused_kwargs(params: Iterable[torch.Tensor], precision: str | None = None) -> dict:
    """``{"fused": True}`` when every parameter is a floating-point tensor on a device with
    fused Adam/AdamW kernels (:data:`FUSED_DEVICES`) and ``precision`` (the Trainer's, e.g.
    ``"32-true"``) is not mixed; else ``{}`` (the default implementation). Under mixed
    precision Lightning refuses gradient clipping with a fused optimizer (it unscales
    gradients inside its step), so the default one is kept there."""
    params = list(params)
    if precision is not None and "mixed" in str(precision):
        return {}
    ok = bool(params) and all(p.device.type in FUSED_DEVICES and p.dtype.is_floating_point for p in params)
    return {"fused": True} if ok else {}


def trainer_precision(module) -> str | None:
    """The precision of the Trainer ``module`` (a LightningModule) is attached to, else None."""
    trainer = getattr(module, "_trainer", None)
    return None if trainer is None else str(trainer.precision)
