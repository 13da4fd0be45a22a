"""One way to read a batch on the Lightning side: ``(inputs, targets[, index])`` or a dict.

Tuple and list batches are ``(inputs, targets)`` or ``(inputs, targets, index)``; dict batches
name them with one of the keys below (the first present key wins).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import numbers
from collections import UserDict
from collections.abc import Mapping, MutableMapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "INDEX_KEYS",
    "INPUT_KEYS",
    "STUDENT_FIX",
    "TARGET_KEYS",
    "TEACHER_FIX",
    "TEACHER_READS_AFTER",
    "InputWatch",
    "batch_inputs",
    "batch_size_of",
    "batch_targets",
    "copy_unwatched",
    "index_problem",
    "map_tensors",
    "mapping_like",
    "own_container",
    "shuffling_sampler",
    "unpack_batch",
    "watch_for_teacher",
]

# "images"/"image": the library's own data sets (SyntheticConcepts, SyntheticCells,
# DigitBlocks) and the monitors' probe batches, so that they train a module as they are
INPUT_KEYS = ("inputs", "input", "x", "images", "image")
TARGET_KEYS = ("targets", "target", "labels", "label", "y")
INDEX_KEYS = ("index", "idx")

_FORM = (
    "an (inputs, targets) or (inputs, targets, index) tuple, or a dict with one of the keys "
    f"{INPUT_KEYS} and one of {TARGET_KEYS} (and optionally one of {INDEX_KEYS})"
)


def _describe(batch) -> str:
    if isinstance(batch, Mapping):
        kind = "dict" if isinstance(batch, dict) else type(batch).__name__
        return f"a {kind} with keys {sorted(map(str, batch))}"
    if isinstance(batch, list | tuple):
        return f"a {type(batch).__name__} of length {len(batch)}"
    return f"a {type(batch).__name__}"


def _first_key(batch: Mapping, keys: tuple[str, ...]):
    for key in keys:
        if key in batch:
            return key
    return None


def _fail(batch, targets_optional: bool = False) -> None:
    form = _FORM
    if targets_optional:
        form += "; or, without labels, a tensor of inputs, an (inputs,) tuple or such a dict without a target key"
    raise ValueError(f"batch must be {form}; got {_describe(batch)}.")


def unpack_batch(batch, *, targets_optional: bool = False) -> tuple[Any, Tensor, Tensor | None]:
    """``(inputs, targets, index)`` of a batch; ``index`` is None when the batch has none.

    With ``targets_optional``, a batch may also hold inputs alone (``targets`` is then None): a
    tensor, a one-element tuple or list (a ``TensorDataset`` of inputs), or a dict without a
    target key (which may still carry an index key). A dict may be any mapping (a
    ``UserDict`` such as transformers' ``BatchEncoding``).
    """
    if isinstance(batch, Mapping):
        inputs_key = _first_key(batch, INPUT_KEYS)
        targets_key = _first_key(batch, TARGET_KEYS)
        if inputs_key is None or (targets_key is None and not targets_optional):
            _fail(batch, targets_optional)
        index_key = _first_key(batch, INDEX_KEYS)
        targets = batch[targets_key] if targets_key else None
        return batch[inputs_key], targets, batch[index_key] if index_key else None
    if isinstance(batch, list | tuple) and len(batch) in (2, 3):
        return batch[0], batch[1], batch[2] if len(batch) == 3 else None
    if targets_optional:
        if isinstance(batch, Tensor):
            return batch, None, None
        if isinstance(batch, list | tuple) and len(batch) == 1:
            return batch[0], None, None
    _fail(batch, targets_optional)


def batch_size_of(inputs) -> int | None:
    """The number of rows of a batch's inputs: a tensor's first dimension, or that of the
    first such tensor in a dict, a tuple or a list; None when it cannot be told."""
    if isinstance(inputs, Tensor):
        return inputs.shape[0] if inputs.dim() else None
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    if isinstance(inputs, Mapping | tuple | list):
        for value in values:
            if isinstance(value, Tensor) and value.dim():
                return value.shape[0]
    return None


# a list starting with one of these holds plain values (token ids, strings), not tensors
_PLAIN = (numbers.Number, str, bytes)


def index_problem(index) -> str | None:
    """What makes ``index`` no batch index, for an error's "got ...": None for a 1-D tensor of
    integers (sample positions or ids); a float, bool or complex tensor, another shape or
    another object is described."""
    if isinstance(index, Tensor):
        if (
            index.is_floating_point()
            or index.is_complex()
            or index.dtype == torch.bool
            or index.dim() != 1
        ):
            return f"a {index.dtype} tensor of shape {tuple(index.shape)}"
        return None
    return f"a {type(index).__name__}"


def _is_dataclass_instance(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _tensors_of(value, found: list, depth: int = 6) -> list:
    """The tensors in ``value``: itself, or inside mappings, tuples, lists and dataclass
    instances (``depth`` levels); a list whose first item is a number or a string (token ids)
    is not walked."""
    if isinstance(value, Tensor):
        found.append(value)
    elif depth and _is_dataclass_instance(value):
        for field in dataclasses.fields(value):
            _tensors_of(getattr(value, field.name, None), found, depth - 1)
    elif depth and isinstance(value, Mapping):
        for item in value.values():
            _tensors_of(item, found, depth - 1)
    elif depth and isinstance(value, tuple | list):
        if isinstance(value, list) and value and isinstance(value[0], _PLAIN):
            return found
        for item in value:
            _tensors_of(item, found, depth - 1)
    return found


def own_container(inputs):
    """A shallow copy of a mutable mapping, a list or a dataclass instance of inputs (the same
    tensors), so that what a model does to the container (adding, removing or rebinding
    entries or fields) leaves this copy as the batch was; other inputs as they are."""
    if isinstance(inputs, MutableMapping):
        return _own_mapping(inputs)
    if isinstance(inputs, list) or _is_dataclass_instance(inputs):
        return copy.copy(inputs)
    return inputs


def _own_mapping(mapping: MutableMapping) -> MutableMapping:
    """A copy of ``mapping`` of its type whose entries are its own: ``copy.copy``, and for a
    mapping that keeps its entries in a dict or list attribute (not a ``dict`` or ``UserDict``,
    whose copies hold their own), that attribute copied too, so that writing an entry of the
    copy leaves the original alone."""
    copied = copy.copy(mapping)
    if isinstance(mapping, dict | UserDict):
        return copied
    original = getattr(mapping, "__dict__", {})
    for name, value in getattr(copied, "__dict__", {}).items():
        if isinstance(value, MutableMapping | list) and value is original.get(name):
            copied.__dict__[name] = copy.copy(value)
    return copied


def copy_unwatched(inputs):
    """:func:`own_container` of ``inputs``, with every tensor made under ``torch.inference_mode``
    in it cloned (in mappings, tuples, lists and dataclass instances, as :class:`InputWatch`
    walks them). Such tensors keep no version counter, so a model's write to them cannot be
    seen: a later model reads the copy, as the batch was. Without inference tensors, no tensor is copied. The containers
    that hold one keep their types (a read-only mapping becomes a ``dict``, a tuple type that
    cannot be rebuilt from its items a ``tuple``)."""
    if not any(tensor.is_inference() for tensor in _tensors_of(inputs, [])):
        return own_container(inputs)
    return _clone_inference(inputs, 6)


def _clone_inference(value, depth: int):
    return map_tensors(
        value, lambda tensor: tensor.clone() if tensor.is_inference() else tensor, depth
    )


def mapping_like(mapping: Mapping, entries: dict) -> Mapping:
    """A mapping of ``mapping``'s type holding ``entries`` (its keys, new values), in its
    order: a copy of it whose entries are set, an entry it also keeps as an attribute of the
    same name (a ``ModelOutput``-like class: ``out.logits``) set there too; a ``dict`` of the
    entries where it cannot be copied so (a read-only mapping, a class that needs arguments
    to be built)."""
    if isinstance(mapping, MutableMapping):
        try:
            copied = _own_mapping(mapping)
            for key, item in entries.items():
                copied[key] = item
        except Exception:  # a class that cannot be built without arguments
            return dict(entries)
        attributes = getattr(copied, "__dict__", {})
        for name, attribute in attributes.items():
            if name in entries and name in mapping and attribute is mapping[name]:
                attributes[name] = entries[name]
        return copied
    return dict(entries)


def map_tensors(value, fn, depth: int = 6):
    """``value`` with every tensor in it replaced by ``fn(tensor)``: in mappings, tuples, lists
    and dataclass instances (``depth`` levels; a list whose first item is a number or a string
    is not walked), their containers rebuilt of their types (a dataclass instance copied, its
    fields set), in their order, with their other entries as they
    are. A mapping that cannot be copied so (a read-only one, or one whose class needs
    arguments to be built) becomes a ``dict``, a tuple type that cannot be rebuilt from its
    items a ``tuple``."""
    if isinstance(value, Tensor):
        return fn(value)
    if depth and _is_dataclass_instance(value):
        # a copy whose fields are set as a frozen one's __init__ sets them (the other
        # attributes, fields built in __post_init__ or without init included, as they are)
        copied = copy.copy(value)
        for field in dataclasses.fields(value):
            if hasattr(value, field.name):
                item = map_tensors(getattr(value, field.name), fn, depth - 1)
                object.__setattr__(copied, field.name, item)
        return copied
    if depth and isinstance(value, Mapping):
        return mapping_like(
            value, {key: map_tensors(item, fn, depth - 1) for key, item in value.items()}
        )
    if depth and isinstance(value, tuple | list):
        if isinstance(value, list) and value and isinstance(value[0], _PLAIN):
            return value
        items = [map_tensors(item, fn, depth - 1) for item in value]
        if isinstance(value, list):
            copied = copy.copy(value)  # of its type
            copied[:] = items
            return copied
        if type(value) is tuple:
            return tuple(items)
        if hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        try:  # torch.return_types and other tuple types built from their items
            return type(value)(items)
        except TypeError:
            return tuple(items)
    return value


#: what to do about a student, or a teacher, that writes its inputs (the messages of both sides)
STUDENT_FIX = (
    "Make the operation out of place (inplace=False, x = x * ...), or clone the inputs at the "
    "start of forward."
)
TEACHER_FIX = (
    "Wrap the teacher in a module that clones its inputs before calling it, or make its "
    "operation out of place."
)


class InputWatch:
    """The tensors of a batch's inputs and their version counters, read once.

    torch adds one to a tensor's version counter at each in-place write, so :meth:`check` tells
    whether any of them was written since (no copy of the values, no host sync). Tensors made
    under ``torch.inference_mode`` keep no counter and are not watched. Views of one tensor share
    its counter: a write to any of them counts for all.
    """

    __slots__ = ("_tensors", "_versions")

    def __init__(self, inputs) -> None:
        self._tensors, self._versions = [], []
        for tensor in _tensors_of(inputs, []):
            try:
                version = tensor._version
            except RuntimeError:  # an inference tensor
                continue
            self._tensors.append(tensor)
            self._versions.append(version)

    def check(self, who: str, then, *, fix: str = STUDENT_FIX) -> None:
        """Refuse inputs written in place since the watch began: by ``who``; ``then`` (a str, or
        a callable giving it, built only for the message) says what reads them next, ``fix``
        what to do."""
        for tensor, version in zip(self._tensors, self._versions):
            if tensor._version != version:
                then = then() if callable(then) else then
                raise ValueError(
                    f"{who} modified its inputs in place (an in-place operation on the batch, "
                    "such as nn.ReLU(inplace=True) as the first layer, or x.mul_(...) in "
                    f"forward); {then} would read the modified values, and the batch the data "
                    f"loader gave is changed. {fix}"
                )


#: what reads a batch after the student in evaluation (the in-place message's words)
TEACHER_READS_AFTER = "the teacher, which reads the same batch after it,"


def watch_for_teacher(inputs) -> tuple[InputWatch, Any]:
    """Before a student runs on ``inputs`` that a teacher reads after it, outside training:
    the watch of its tensors (:meth:`InputWatch.check` refuses a student that wrote them) and
    the inputs the teacher is given (:func:`copy_unwatched`: tensors made under inference mode,
    which no watch sees, copied before the student runs)."""
    return InputWatch(inputs), copy_unwatched(inputs)


def batch_targets(batch, *, optional: bool = False) -> Tensor | None:
    """The targets of a batch: ``batch[1]`` of a tuple, or a target key of a dict. With
    ``optional``, None for a batch of inputs alone (as :func:`unpack_batch` reads them)."""
    if isinstance(batch, Mapping):
        key = _first_key(batch, TARGET_KEYS)
        if key is None:
            if optional and _first_key(batch, INPUT_KEYS) is not None:
                return None
            _fail(batch, optional)
        return batch[key]
    if isinstance(batch, list | tuple) and len(batch) >= 2:
        return batch[1]
    inputs_alone = isinstance(batch, Tensor) or (
        isinstance(batch, list | tuple) and len(batch) == 1
    )
    if optional and inputs_alone:
        return None
    _fail(batch, optional)


def batch_inputs(batch):
    """The inputs of a batch: ``batch[0]`` of a tuple, an input key of a dict, or the batch."""
    key = _first_key(batch, INPUT_KEYS) if isinstance(batch, Mapping) else None
    if (isinstance(batch, Mapping) and key is None) or (
        isinstance(batch, list | tuple) and not batch
    ):
        # only the inputs are read here: no word of targets
        raise ValueError(
            "batch must hold inputs: a tensor, a tuple or list whose first entry is the "
            f"inputs, or a dict with one of the keys {INPUT_KEYS}; got {_describe(batch)}."
        )
    if isinstance(batch, Mapping):
        return batch[key]
    if isinstance(batch, list | tuple):
        return batch[0]
    return batch


# samplers that draw a new order (or new indices) on every pass: a probe (the passes of a
# dissection, every evaluation of a monitor, the processes under DDP, the pictures) must see the
# same batches in the same order each time
_RANDOM_SAMPLERS = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


def shuffling_sampler(loader: Any) -> str | None:
    """The class name of the (batch) sampler that makes ``loader`` draw a new order on each
    pass, or None when its order is fixed or cannot be told (or it is no ``DataLoader``).

    Known random samplers, and any sampler with a true ``shuffle`` flag, shuffle; a
    sequential (or distributed) sampler in torch's batch sampler follows its flag; any other
    (batch) sampler of known length is read twice and shuffles when the two reads differ. The
    global generators (torch's CPU one, numpy's and Python's) are left as they were; a state
    of the sampler's own (a generator it holds, a pass counter) moves on by two passes.
    """
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return None
    sampler = loader.sampler
    # DistributedSampler shuffles by default; any sampler with a true `shuffle` flag does
    if isinstance(sampler, _RANDOM_SAMPLERS) or getattr(sampler, "shuffle", False) is True:
        return type(sampler).__name__
    batches = loader.batch_sampler
    if batches is None:  # batch_size=None: the sampler gives the dataset's items one by one
        if isinstance(sampler, SequentialSampler) or not _order_changes(sampler):
            return None
        return type(sampler).__name__
    inner = batches.sampler if type(batches) is BatchSampler else None
    if isinstance(inner, SequentialSampler):
        return None
    if isinstance(inner, _RANDOM_SAMPLERS) or getattr(inner, "shuffle", False) is True:
        return type(inner).__name__
    if not _order_changes(batches):
        return None
    return type(batches if inner is None else inner).__name__


def _order_changes(sampler) -> bool:
    """Whether two reads of a (batch) sampler give different items (False when it has no
    length, as an endless sampler, or when its items cannot be compared)."""
    import random

    import numpy as np
    import torch

    try:
        length = len(sampler)
    except (TypeError, NotImplementedError):
        return False

    def read():
        return [_plain(item) for item in itertools.islice(sampler, length)]

    # a custom sampler may draw from any of the three global generators
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=[]):
            first, second = read(), read()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
    try:
        return bool(first != second)
    except Exception:  # items without a plain equality: not known to shuffle
        return False


def _plain(item):
    """A sampler's item (an index, a key, a batch of them, a tensor) in a form ``==`` compares
    as a whole."""
    if hasattr(item, "tolist"):
        return item.tolist()
    if isinstance(item, list | tuple):
        return [_plain(part) for part in item]
    return item
