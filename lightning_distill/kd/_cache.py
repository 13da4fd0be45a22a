"""The teacher-logit cache of ``DistillationModule(cache_teacher=True)``.

Each sample's teacher logits are computed the first time its index is seen and reused after.
That is only right when a sample's input is the same every time it is seen and ``index`` names
the sample (its position in the data set, or any integer id: each index seen gets the next
row of the cache's tables, so memory follows the samples cached, not the largest index).
Neither can be read from the data loader, so every
sample's input leaves a *fingerprint* beside its logits: a fixed pseudo-random weighting of
its values, summed in float64 (float32 where the device has no float64). A later batch whose
input differs from the cached one under the same index (random augmentation in the data set,
an index that counts positions within the batch, two samples sharing an index) is refused
instead of being given another sample's logits. The fingerprint costs one product of the
batch with a vector (small beside the teacher's forward it saves); values that differ only by
the float rounding of a reduction (another batch size on an accelerator) are not refused.
Several inputs (a dict, a tuple or a list) are given to the teacher as the batch holds them,
and the cache keeps the rows of the samples it had not seen, so that a tensor's shape never
decides what the teacher sees. For the fingerprints, a tensor with a row per sample (its
first dimension the batch's) is read row by row; a tensor shared by the batch (a scale, a
table) is part of every sample's fingerprint. An input (a key of a dict, a place in a tuple)
whose first dimension differs from the batch's in any batch of the fit is shared in every
batch, also in one whose size happens to equal its first dimension; one read row by row in
earlier batches that turns out shared makes the cache forget its samples (their
fingerprints were read another way) and label them again. A shared tensor with as many rows
as every batch cannot be told from one of a row per sample: give it a leading dimension of
1, or keep it in the teacher (a buffer).
Token sequences ``[B, T]`` padded per batch are compared over the length they were cached at
(padded at either end); other inputs padded to another size are not compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["TeacherLogitCache"]


# differences of a fingerprint below this share of its scale are rounding, not another input
_RELATIVE_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


def _print_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


# the first slot of the weights of tensors shared by the batch (after any number of others)
_SHARED_SLOT = 1_000


def _has_rows(tensor: Tensor, rows: int) -> bool:
    """Whether ``tensor`` holds a row per sample of a batch of ``rows`` samples."""
    return tensor.dim() > 0 and len(tensor) == rows


def _inputs(x) -> list[tuple[Any, Any]]:
    """The inputs of a batch with their places: a dict's keys (in a fixed order), a tuple's or
    a list's positions, or one input."""
    if isinstance(x, Mapping):
        return [(k, x[k]) for k in sorted(x, key=str)]
    if isinstance(x, tuple | list):
        return list(enumerate(x))
    return [(None, x)]


class TeacherLogitCache:
    """Teacher logits per sample index, with a fingerprint of each sample's input."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every sample (a new fit may index other data)."""
        self._logits: Tensor | None = None
        self._prints: Tensor | None = None
        self._sizes: Tensor | None = None
        self._weights: dict[tuple, Tensor] = {}
        self._rows: dict[int, int] = {}  # each index seen -> its row of the tables
        self._expected: int | None = None
        self._shared: dict[Any, bool] = {}  # each input's place -> whether shared by the batch

    def _forget_samples(self) -> None:
        """Forget every cached sample, keeping what is known of the inputs and the data set."""
        self._logits = self._prints = self._sizes = None
        self._rows = {}

    def _read_places(self, x, rows: int) -> None:
        """Note which inputs are shared by the batch: those without a row per sample now or in
        an earlier batch. One read row by row before that now turns out shared: the cached
        fingerprints were read another way, so the samples are forgotten."""
        forget = False
        for place, value in _inputs(x):
            if not isinstance(value, Tensor):
                continue
            shared = not _has_rows(value, rows)
            if shared and self._shared.get(place) is False:
                forget = True
            self._shared[place] = self._shared.get(place, False) or shared
        if forget:
            self._forget_samples()

    def _is_shared(self, place, tensor: Tensor, rows: int) -> bool:
        return self._shared.get(place, False) or not _has_rows(tensor, rows)

    def expect(self, samples: int | None) -> None:
        """The number of samples the fit will index (the training set's length), when known:
        the tables still grow as samples come, but never beyond it while it suffices (they
        would otherwise end at up to twice the samples)."""
        self._expected = samples if samples is None or samples > 0 else None

    # -- fingerprints -------------------------------------------------------------------------
    def _weight(self, slot: int, size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The first ``size`` weights of input ``slot`` (a weight depends on its position)."""
        key = (slot, device, dtype)
        weight = self._weights.get(key)
        if weight is None or len(weight) < size:
            length = max(size, 2 * (0 if weight is None else len(weight)))
            generator = torch.Generator().manual_seed(1_000_003 * slot)
            weight = torch.rand(length, generator=generator, dtype=torch.float64) + 0.5
            self._weights[key] = weight = weight.to(device=device, dtype=dtype)
        return weight[:size]

    def _tensors(self, x, rows: int, *, shared: bool = False) -> list[Tensor]:
        # several inputs in a dict (in a fixed order of keys), a tuple or a list: each tensor
        # with a row per sample (``shared=True``: each other tensor, one for the whole batch)
        return [
            v
            for place, v in _inputs(x)
            if isinstance(v, Tensor) and self._is_shared(place, v, rows) == shared
        ]

    @torch.no_grad()  # a fingerprint keeps no graph of the inputs alive
    def fingerprints(self, x, rows: int, *, magnitude: bool = False) -> Tensor | None:
        """One value per sample: ``sum_j w_j x_j`` over every input value (``|x_j|`` with
        ``magnitude=True``, the scale a difference is measured against); None without a
        tensor of ``rows`` rows."""
        per_sample = self._tensors(x, rows)
        if not per_sample:
            return None
        # a tensor shared by the batch (a scale, a table) is part of every sample's input
        shared = self._tensors(x, rows, shared=True)
        total = None
        for slot, tensor in [*enumerate(per_sample), *enumerate(shared, _SHARED_SLOT)]:
            if slot < _SHARED_SLOT:
                flat = tensor.detach().reshape(rows, tensor[0].numel())
                flat = flat.to(_print_dtype(tensor.device))
            else:  # one value for the whole batch, added to every sample's
                flat = tensor.detach().reshape(-1).to(total.dtype)
            if magnitude:
                flat = flat.abs()
            value = flat @ self._weight(slot, flat.shape[-1], flat.device, flat.dtype)
            total = value if total is None else total + value
        return total

    @torch.no_grad()
    def _end_prints(self, x, rows: int, lengths: Tensor) -> tuple[Tensor, Tensor] | None:
        """For token sequences ``[B, T]`` (one input tensor): each sample's fingerprint over
        its first ``lengths[i]`` values and over its last ones (as if padded at its end, or at
        its start), ``[2, B]``, and the fingerprints of their magnitudes (the scales). None for
        other inputs, whose padding may lie elsewhere (a ``[B, C, L]`` signal padded along
        ``L``, an image padded in its width)."""
        tensors = self._tensors(x, rows)
        if len(tensors) != 1 or tensors[0].dim() != 2:
            return None
        tensor = tensors[0].detach()
        dtype = _print_dtype(tensor.device)
        width = tensor.shape[1]
        prints = torch.zeros(2, rows, dtype=dtype, device=tensor.device)
        scales = torch.zeros_like(prints)
        lengths = lengths.clamp(0, width)
        for length in torch.unique(lengths).tolist():  # few: one per padded length seen
            picked = lengths == length
            weight = self._weight(0, length, tensor.device, dtype)
            for end, values in enumerate(
                (tensor[picked, :length], tensor[picked, width - length :])
            ):
                values = values.to(dtype)
                prints[end, picked] = values @ weight
                scales[end, picked] = values.abs() @ weight
        return prints, scales

    def _sizes_of(self, x, rows: int) -> int:
        """Values per sample over every input tensor (a padded sample has more)."""
        return sum(tensor[0].numel() for tensor in self._tensors(x, rows))

    # -- lookup -------------------------------------------------------------------------------
    def _grow(self, needed: int) -> None:
        """Tables of at least ``needed`` rows (geometrically: the number of samples is only
        known from the indices seen), capped at the expected number of samples."""
        held = 0 if self._logits is None else self._logits.shape[0]
        if needed <= held:
            return
        size = max(needed, 2 * held)
        if self._expected is not None and needed <= self._expected:
            size = min(size, self._expected)
        for name in ("_logits", "_prints", "_sizes"):
            old = getattr(self, name)
            if old is not None:
                new = old.new_zeros(size, *old.shape[1:])
                new[: old.shape[0]] = old
                setattr(self, name, new)

    def lookup(self, x: Any, index: Tensor, teacher_forward: Callable[[Any], Tensor]) -> Tensor:
        """The teacher's logits of the batch ``x`` whose samples have the indices ``index`` (a
        checked 1-D integer tensor): computed by ``teacher_forward`` for the samples not seen
        before, from the cache for the others. The indices are read once (one host sync)."""
        ids = index.tolist()
        if not ids:  # an empty batch: no sample to look up
            empty = index.long()
            return teacher_forward(x) if self._logits is None else self._logits[empty]
        self._read_places(x, len(ids))
        rows, known = self._rows, len(self._rows)
        # a new index takes the next row (one seen twice in this batch, the same row), kept
        # once its logits are: a batch whose teacher output is refused leaves the cache as it
        # was (one refused for a changed input keeps its new samples, as their logits are
        # right for the inputs they were computed from)
        added: dict[int, int] = {}
        slots, firsts, repeats = [], [], 0  # firsts: the position of each new index's first
        for position, i in enumerate(ids):
            row = rows.get(i)
            if row is None:
                if i in added:
                    repeats += 1
                else:
                    firsts.append(position)
                row = added.setdefault(i, known + len(added))
            slots.append(row)
        slots = torch.tensor(slots, dtype=torch.long, device=index.device)
        prints = self.fingerprints(x, len(ids))
        size = self._sizes_of(x, len(ids))
        if added:
            missing = slots >= known
            if repeats:  # a new index seen twice in this batch: the teacher runs on its first
                missing = torch.zeros_like(missing)
                missing[torch.tensor(firsts, device=missing.device)] = True

            if isinstance(x, Tensor):
                logits = teacher_forward(x[missing])
            else:  # several inputs: the batch as it is (which are per sample is not known)
                logits = teacher_forward(x)[missing]
            # kept in float32 (half-precision logits widened), float64 as it is
            logits = logits if logits.dtype == torch.float64 else logits.float()
            needed = known + len(added)
            if self._logits is None:
                self._logits = logits.new_zeros(needed, logits.shape[1])
            self._grow(needed)
            if prints is not None and self._prints is None:
                held = self._logits.shape[0]
                self._prints = prints.new_zeros(held)
                self._sizes = torch.zeros(held, dtype=torch.long, device=prints.device)
            new = slots[missing]
            self._logits[new] = logits
            if prints is not None and self._prints is not None:
                self._prints[new] = prints[missing]
                self._sizes[new] = size
            rows.update(added)
        if prints is not None and self._prints is not None:
            self._check_same_inputs(x, slots, prints, size, ids)
        return self._logits[slots]

    def _check_padded_again(self, x, index, size: int, same_size, relative, changed) -> None:
        """Token sequences ``[B, T]`` padded to another length than when they were cached
        (padded per batch): one padded longer now is compared over the length it had then, at
        its start and at its end (right or left padding), and is the same if either agrees;
        one padded shorter cannot be compared, and its shorter form is kept for later
        comparisons. ``relative`` and ``changed`` are updated in place. Other inputs of
        another size are taken as the same."""
        stored_sizes = self._sizes[index]
        ends = self._end_prints(x, len(index), stored_sizes)
        if ends is None:
            return
        prints, scales = ends
        tiny = torch.finfo(scales.dtype).tiny
        change = ((prints - self._prints[index]).abs() / scales.clamp_min(tiny)).amin(0)
        longer = ~same_size & (stored_sizes < size)
        relative.copy_(torch.where(longer, change, relative))
        changed |= longer & (change > _RELATIVE_TOLERANCE[prints.dtype])
        shorter = ~same_size & (stored_sizes > size)
        if bool(shorter.any()):
            rows = index[shorter]
            current = self.fingerprints(x, len(index))
            self._prints[rows] = current[shorter]
            self._sizes[rows] = size
            # two samples of one index in this batch: the one not kept differs from the other
            scale = self.fingerprints(x, len(index), magnitude=True).clamp_min(tiny)
            clash = (current - self._prints[index]).abs() / scale
            relative.copy_(torch.where(shorter, clash, relative))
            changed |= shorter & (clash > _RELATIVE_TOLERANCE[prints.dtype])

    def _check_same_inputs(self, x, index: Tensor, prints: Tensor, size: int, ids) -> None:
        """``index``: each sample's row of the tables; ``ids``: its index, for the message."""
        rows = len(index)
        tolerance = _RELATIVE_TOLERANCE[prints.dtype]
        same_size = self._sizes[index] == size
        relative = torch.zeros_like(prints)  # each sample's change against its scale
        changed = (prints != self._prints[index]) & same_size
        if bool(changed.any()):
            scale = self.fingerprints(x, rows, magnitude=True)
            relative = (prints - self._prints[index]).abs() / scale.clamp_min(
                torch.finfo(scale.dtype).tiny
            )
            changed &= relative > tolerance
        if not bool(same_size.all()):
            self._check_padded_again(x, index, size, same_size, relative, changed)
        if not bool(changed.any()):
            return
        row = int(changed.nonzero()[0, 0])
        relative = float(relative[row])
        shared = (
            ", or a tensor shared by the batch with as many rows as the batch, read as one row "
            "per sample (give it a leading dimension of 1, or keep it in the teacher)"
            if len(self._tensors(x, rows)) > 1
            else ""
        )
        raise ValueError(
            "cache_teacher=True needs each sample's input to be the same every time its index "
            f"is seen; the input of index {ids[row]} differs from the one whose teacher "
            f"logits were cached (relative change {relative:.2g}; {int(changed.sum())} of "
            f"{len(index)} samples in this batch). Causes: random augmentation in the data set "
            "(use cache_teacher=False; augment=... lets the teacher label each augmented batch), "
            "or an index that does not name the sample (a position within the batch, or one "
            f"index shared by two samples){shared}."
        )
