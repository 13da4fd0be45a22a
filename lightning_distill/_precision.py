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


def refuse_float16_adam(
    parameters,
    argument: str,
    expected: str,
    trained: str,
    precision=None,
    given=None,
    cast_to: torch.dtype | None = None,
) -> None:
    """Refuse to build an Adam (torch's ``eps=1e-8``) on float16 parameters.

    Adam adds ``eps`` to the root of its second moment in the parameters' dtype: 1e-8 is 0 in
    float16 (whose smallest value is 6e-8), and ``(1 - 0.999) * g**2`` is 0 there for gradients
    below about 8e-3, so its steps divide by zero and the weights turn NaN or infinite.
    bfloat16 holds 1e-8, and the mixed precisions keep float32 weights. ``argument`` is the
    setting to change, ``expected`` what it must be, ``trained`` what they turn NaN; ``given`` the
    value shown, by default the Trainer's ``precision`` (a module cast by hand, ``.half()``,
    is said as such); ``cast_to`` the floating dtype the parameters are about to be cast to.
    """
    if not any(
        p.requires_grad
        and (p.dtype if cast_to is None or not p.is_floating_point() else cast_to) == torch.float16
        for p in parameters
    ):
        return
    if given is None:
        given = (
            repr(precision)
            if precision == "16-true"
            else "float16 parameters"
            + ("" if precision is None else f" under precision {precision!r}")
            + " (a module cast with .half())"
        )
    raise ValueError(
        f"{argument} must be {expected}: Adam's eps, 1e-8, is 0 in float16, so its steps "
        f"divide by zero and turn {trained} NaN; got {given}."
    )
