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
    device = tensor.device.type
    # meta tensors, MPS before torch 2.5 (no autocast), or autocast off: nothing to undo, and
    # a plain context costs less than entering torch.autocast (a small step enters several)
    if not _autocast_available(device) or not autocast_on(device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, enabled=False)


def autocast_on(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` (torch < 2.4 asks per device)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # pragma: no cover - torch < 2.4
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def _autocast_available(device: str) -> bool:
    """Whether torch has autocast on ``device`` (where it has none, ``torch.autocast`` raises
    even with ``enabled=False``, and nothing runs under one)."""
    available = getattr(torch.amp, "is_autocast_available", None)  # torch >= 2.4
    if available is not None:
        return bool(available(device))
    return device in ("cpu", "cuda")
