"""Metric states that keep their dtype when the module holding the metric is cast.

torchmetrics keeps a metric's states in their dtype under the metric's own ``.half()``,
``.float()``, ``.double()`` and ``.bfloat16()``, but a parent's ``.to(dtype)`` (what Lightning's
``precision="bf16-true"`` or ``"16-true"`` does to a LightningModule that holds the metric)
casts them: float64 sums of many per-image scores would then be summed in bfloat16 (after 600
one-image updates a mean of 0.77 came out as 0.43), and a float64 threshold read in float16.
The metrics of this package define their states' dtypes on purpose (float64 sums, int64
counts), so a cast moves them to the new device and leaves their dtype as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["DtypeKeepingMetric"]


def _device_after(fn: Callable, value: Tensor) -> torch.device:
    """Where ``fn`` (a module ``_apply`` function) would put ``value``."""
    return fn(value.new_empty(0)).device


def _moved(fn: Callable, value):
    if isinstance(value, Tensor):
        return value.to(_device_after(fn, value))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_moved(fn, item) for item in value]
    return value


class DtypeKeepingMetric(Metric):
    """A :class:`~torchmetrics.Metric` whose states (and floating buffers) keep their dtype
    under any cast (``.to(dtype)``, ``set_dtype``): only their device follows."""

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> torch.nn.Module:
        states = [key for key in self._defaults if key not in exclude_state]
        kept = {key: getattr(self, key) for key in states}
        defaults = {key: self._defaults[key] for key in states}
        buffers = {
            name: buffer
            for name, buffer in self._buffers.items()
            if buffer is not None and buffer.is_floating_point()
        }
        this = super()._apply(fn, exclude_state=tuple(exclude_state) + tuple(states))
        for key in states:
            setattr(this, key, _moved(fn, kept[key]))
            this._defaults[key] = _moved(fn, defaults[key])
        for name, buffer in buffers.items():
            this._buffers[name] = buffer.to(_device_after(fn, buffer))
        return this
