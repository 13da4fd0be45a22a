"""One way to read a batch on the Lightning side: ``(inputs, targets[, index])`` or a dict.

Tuple and list batches are ``(inputs, targets)`` or ``(inputs, targets, index)``; dict batches
name them with one of the keys below (the first present key wins).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, WeightedRandomSampler

__all__ = [
    "INDEX_KEYS",
    "INPUT_KEYS",
    "TARGET_KEYS",
    "batch_inputs",
    "batch_targets",
    "shuffles",
    "unpack_batch",
]

INPUT_KEYS = ("inputs", "input", "x")
TARGET_KEYS = ("targets", "target", "labels", "label", "y")
INDEX_KEYS = ("index", "idx")

_FORM = (
    "an (inputs, targets) or (inputs, targets, index) tuple, or a dict with one of the keys "
    f"{INPUT_KEYS} and one of {TARGET_KEYS} (and optionally one of {INDEX_KEYS})"
)


def _describe(batch) -> str:
    if isinstance(batch, dict):
        return f"a dict with keys {sorted(map(str, batch))}"
    if isinstance(batch, list | tuple):
        return f"a {type(batch).__name__} of length {len(batch)}"
    return f"a {type(batch).__name__}"


def _first_key(batch: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in batch:
            return key
    return None


def _fail(batch) -> None:
    raise ValueError(f"batch must be {_FORM}; got {_describe(batch)}.")


def unpack_batch(batch) -> tuple[Any, Tensor, Tensor | None]:
    """``(inputs, targets, index)`` of a batch; ``index`` is None when the batch has none."""
    if isinstance(batch, dict):
        inputs_key = _first_key(batch, INPUT_KEYS)
        targets_key = _first_key(batch, TARGET_KEYS)
        if inputs_key is None or targets_key is None:
            _fail(batch)
        index_key = _first_key(batch, INDEX_KEYS)
        return batch[inputs_key], batch[targets_key], batch[index_key] if index_key else None
    if isinstance(batch, list | tuple) and len(batch) in (2, 3):
        return batch[0], batch[1], batch[2] if len(batch) == 3 else None
    _fail(batch)


def batch_targets(batch) -> Tensor:
    """The targets of a batch: ``batch[1]`` of a tuple, or a target key of a dict."""
    if isinstance(batch, dict):
        key = _first_key(batch, TARGET_KEYS)
        if key is None:
            _fail(batch)
        return batch[key]
    if isinstance(batch, list | tuple) and len(batch) >= 2:
        return batch[1]
    _fail(batch)


def batch_inputs(batch):
    """The inputs of a batch: ``batch[0]`` of a tuple, an input key of a dict, or the batch."""
    if isinstance(batch, dict):
        key = _first_key(batch, INPUT_KEYS)
        if key is None:
            _fail(batch)
        return batch[key]
    if isinstance(batch, list | tuple):
        if not batch:
            _fail(batch)
        return batch[0]
    return batch


# samplers that draw a new order (or new indices) on every pass: a probe (the passes of a
# dissection, every evaluation of a monitor, the processes under DDP, the pictures) must see the
# same batches in the same order each time
_RANDOM_SAMPLERS = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


def shuffles(loader: Any) -> bool:
    """Whether ``loader`` is a ``DataLoader`` whose sampler draws a new order on each pass."""
    if not isinstance(loader, DataLoader):
        return False
    sampler = loader.sampler
    # DistributedSampler shuffles by default; any sampler with a true `shuffle` flag does
    return isinstance(sampler, _RANDOM_SAMPLERS) or getattr(sampler, "shuffle", False) is True
