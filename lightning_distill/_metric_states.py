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

import hashlib
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import MeanMetric, Metric

__all__ = ["DtypeKeepingMeanMetric", "DtypeKeepingMetric"]


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
    """A :class:`~torchmetrics.Metric` whose states (and buffers) keep their dtype
    under any cast (``.to(dtype)``, ``set_dtype``): only their device follows.

    ``load_state_dict`` refuses a saved state whose shape is not that of the metric's own
    (torchmetrics copies states in as they are): one saved by a metric of another configuration
    (another number of units, labels, threshold sets) would otherwise be read as this one's. It
    loads copies of the saved tensors, so that updates leave the state dict as it was.

    A metric that calls :meth:`_add_configuration_state` also holds a fingerprint of all its
    settings as a state, ``configuration``: torchmetrics' ``MetricCollection`` merges metrics
    into one compute group when their states are equal after the first update, so two metrics
    of other settings (two ``FiveBandScore`` threshold sets after a batch of blank images) were
    computed as one; with the fingerprint their states never agree. A saved state or a
    ``merge_state`` of other settings is refused.
    """

    #: states that the metric frees once they are of no further use (their last axis emptied):
    #: a saved state of that shape belongs to this configuration too
    _freeable_states: tuple[str, ...] = ()

    def _configuration(self) -> str:
        """The settings that fix the states' shapes, for the message of a refused load."""
        return ""

    def _identity(self) -> str:
        """Every setting that makes the states mean something else (the fingerprint's text)."""
        return self._configuration()

    def _add_configuration_state(self) -> None:
        """Add the ``configuration`` state: a fingerprint of the class and :meth:`_identity`
        (48 bits of SHA-256, exact in float64; the same in every process, unlike ``hash``),
        reduced by ``max`` (equal everywhere, so syncs and merges leave it as it is)."""
        text = f"{type(self).__module__}.{type(self).__qualname__}({self._identity()})"
        # the digest's 16 bytes, one value each: MetricCollection compares states with
        # torch.allclose (relative tolerance 1e-5), which two nearby scalars would pass
        digest = list(hashlib.sha256(text.encode()).digest()[:16])
        fingerprint = torch.tensor(digest, dtype=torch.float64)
        self.add_state("configuration", fingerprint, dist_reduce_fx="max")

    def _other_settings(self, fingerprint: Tensor) -> bool:
        mine = self._defaults.get("configuration")
        return mine is not None and not torch.equal(fingerprint.detach().cpu(), mine.cpu())

    def merge_state(self, incoming_state) -> None:
        """torchmetrics' ``merge_state``, refusing a metric (or a dict of states) of other
        settings; a dict of states without the fingerprint (kept from before it was a state)
        is taken as this metric's settings."""
        if isinstance(incoming_state, dict) and "configuration" in self._defaults:
            incoming_state = dict(incoming_state)
            incoming_state.setdefault("configuration", self._defaults["configuration"].clone())
        if isinstance(incoming_state, Metric | dict):
            theirs = (
                incoming_state.get("configuration")
                if isinstance(incoming_state, dict)
                else getattr(incoming_state, "configuration", None)
            )
            if isinstance(theirs, Tensor) and self._other_settings(theirs):
                setting = self._configuration()
                name = type(self).__name__
                article = "an" if name[0] in "AEIOU" else "a"
                raise ValueError(
                    f"incoming_state must be {article} {name} of the same settings; got "
                    "one of other settings"
                    + (f" than this one ({setting})" if setting else "")
                    + "."
                )
        super().merge_state(incoming_state)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # every state checked before any is copied: a refused load leaves the metric as it was
        loaded = {}
        for key, default in self._defaults.items():
            saved = state_dict.get(prefix + key)
            if not isinstance(default, Tensor) or not isinstance(saved, Tensor):
                continue
            expected, given = tuple(default.shape), tuple(saved.shape)
            freed = key in self._freeable_states and given == (*expected[:-1], 0)
            if given != expected and not freed:
                name = type(self).__name__
                setting = self._configuration()
                if key in self._freeable_states:
                    expected = f"{expected} (or {(*expected[:-1], 0)} once freed)"
                raise ValueError(
                    f"state_dict[{prefix + key!r}] must have the shape {expected} of this "
                    f"{name}'s state {key!r}; got shape {given}: it was saved by a {name} of "
                    "another configuration"
                    + (f" than this one ({setting})" if setting else "")
                    + ". Build the metric with the settings it was saved with."
                )
            loaded[prefix + key] = saved
        # shapes agree: the settings may still differ (other thresholds, labels, quantile)
        fingerprint = state_dict.get(prefix + "configuration")
        if isinstance(fingerprint, Tensor) and self._other_settings(fingerprint):
            name, setting = type(self).__name__, self._configuration()
            raise ValueError(
                f"state_dict must be saved by a {name} of the same settings; it was saved by "
                "one of other settings"
                + (f" than this one ({setting})" if setting else "")
                + ". Build the metric with the settings it was saved with."
            )
        if (
            fingerprint is None
            and "configuration" in self._defaults
            and self._persistent.get("configuration")
        ):
            # saved before the fingerprint was a state: this metric's own, for a strict load
            state_dict[prefix + "configuration"] = self._defaults["configuration"].clone()
        # torchmetrics takes the saved tensors themselves as states, which updates then change
        # in place: the caller's state dict (and every metric loaded from it) with them
        for name, saved in loaded.items():
            state_dict[name] = saved.clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> torch.nn.Module:
        states = [key for key in self._defaults if key not in exclude_state]
        kept = {key: getattr(self, key) for key in states}
        defaults = {key: self._defaults[key] for key in states}
        # every buffer: set_dtype casts integer buffers too (index tables read as floats)
        buffers = {name: buffer for name, buffer in self._buffers.items() if buffer is not None}
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


class DtypeKeepingMeanMetric(DtypeKeepingMetric, MeanMetric):
    """torchmetrics' :class:`~torchmetrics.MeanMetric` whose running sums keep their dtype
    (float32) when the module holding it is cast: under ``precision="16-true"`` a float16
    weight sum stopped at 65,504 rows (an accuracy read 0.0, a loss NaN) and under
    ``"bf16-true"`` counts above 256 were rounded.

    Under ``nan_strategy="disable"`` torchmetrics (1.9) replaces the weights given to
    ``update`` with ones, silently: a weight other than 1 is refused here (give each value
    once per unit of weight, ``value.expand(n)``)."""

    def update(self, value, weight=1.0) -> None:
        if self.nan_strategy == "disable" and not (
            isinstance(weight, int | float) and weight == 1.0
        ):
            raise TypeError(
                "weight must be left at 1 with nan_strategy='disable' (torchmetrics would "
                f"replace it with ones); got {weight!r}. Give the value once per unit of "
                "weight (value.expand(n)) instead."
            )
        super().update(value, weight)
