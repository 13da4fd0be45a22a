"""Arithmetic that a mixed-precision Trainer must not lower."""

from __future__ import annotations

import contextlib

import torch


def autocast_off(tensor: torch.Tensor):
    """A context with autocast disabled on ``tensor``'s device.

    Lightning's ``"bf16-mixed"`` and ``"16-mixed"`` run the steps under ``torch.autocast``,
    which runs matrix products and convolutions in bfloat16 or float16. The losses' arithmetic
    (and the wavelet transforms of :class:`~lightning_distill.AWDModule`) runs inside this
    context on inputs widened to float32 (float64 kept), so its value is that of the float32
    formula whatever the Trainer's precision.
    """
    if tensor.device.type == "meta":  # shapes only (no autocast there, and torch refuses it)
        return contextlib.nullcontext()
    return torch.autocast(device_type=tensor.device.type, enabled=False)
