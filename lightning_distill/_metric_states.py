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

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["DtypeKeepingMetric"]


def _kept(fn: Callable, value: Tensor) -> Tensor:
    """``fn`` (a module ``_apply`` function: a move, a cast, ``share_memory_``...) applied to
    ``value`` when it keeps the dtype; else ``value`` moved where ``fn`` would put it, in its
    own dtype (never through the other dtype, which would round it)."""
    probe = fn(value.new_empty(0))
    return fn(value) if probe.dtype == value.dtype else value.to(probe.device)


def _moved(fn: Callable, value):
    if isinstance(value, Tensor):
        return _kept(fn, value)
    if isinstance(value, Mapping):
        return {key: _moved(fn, item) for key, item in value.items()}
    if isinstance(value, tuple | list):  # list states, tuples of results
        return type(value)(_moved(fn, item) for item in value)
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
        # the cached results of compute() and forward() are the states' values: kept alike
        cached = {name: getattr(self, name, None) for name in ("_computed", "_forward_cache")}
        this = super()._apply(fn, exclude_state=tuple(exclude_state) + tuple(states))
        for key in states:
            setattr(this, key, _moved(fn, kept[key]))
            this._defaults[key] = _moved(fn, defaults[key])
        for name, buffer in buffers.items():
            this._buffers[name] = _kept(fn, buffer)
        for name, value in cached.items():
            if value is not None:
                setattr(this, name, _moved(fn, value))
        return this
