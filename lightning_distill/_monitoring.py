"""What the monitors (``DissectionMonitor``, ``AttributionMonitor``) share as Lightning callbacks.

- A monitor reads its probe data without touching the training's random state: iterating a
  ``DataLoader`` draws its base seed from torch's global CPU generator, which would shift the
  next epoch's shuffle, so a run with a monitor would train otherwise than the same run without
  it. Torch's CPU generator and the model's CUDA or MPS device's are given back (numpy's and
  Python's are not touched by a loader and are not restored).
- ``AttributionMonitor``'s probe data can be read again (it reads the first batch apart).
- A probe is whole on every process: a monitor splits it between DDP processes itself, so a
  ``DistributedSampler`` that gives each process a shard of it is refused.
- Monitors of one kind in one Trainer log under distinct prefixes (Lightning would average
  the values of two monitors logging one name).
- It says at the start of a fit when its schedule never reaches an epoch of that fit.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

from lightning_distill._validation import CheckedSetting, check_integer, fail

__all__ = [
    "as_module_input",
    "check_reiterable",
    "check_unique_prefix",
    "check_unsharded",
    "every_n_epochs_setting",
    "loader_generators",
    "prefix_setting",
    "random_state_kept",
    "save_dir_setting",
    "warn_if_never_runs",
]


def as_module_input(images: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """Probe images on the module's device, and in its floating dtype when both are floating
    (a Trainer's ``precision="64-true"`` casts the module, not the probe data)."""
    if not isinstance(images, torch.Tensor):
        # a collate_fn that keeps a list of images (of several sizes, say): no batch to run
        fail(
            "dataloader",
            "batches whose images are one torch.Tensor [B, C, H, W] (as the default "
            "collate_fn stacks them)",
            type(images).__name__,
            TypeError,
        )
    param = next(module.parameters(), None)
    if param is None:
        return images
    if images.dtype == torch.uint8 and param.is_floating_point():
        # raw image bytes: torch's complaint would come from deep inside the first layer
        raise TypeError(
            "dataloader must yield images in a floating dtype, as the model reads them; got "
            "uint8 images: convert them in the dataset (e.g. images.float() / 255, or "
            "torchvision's ToTensor) as for training."
        )
    if images.is_floating_point() and param.is_floating_point():
        return images.to(device=param.device, dtype=param.dtype)
    return images.to(param.device)


def save_dir_path(save_dir):
    """``save_dir`` as a ``Path`` (``None`` stays ``None``); anything else is refused by name."""
    if save_dir is None:
        return None
    if not isinstance(save_dir, str | os.PathLike):
        raise TypeError(
            f"save_dir must be a str or os.PathLike (a folder for the pictures), or None; got "
            f"{save_dir!r}."
        )
    return Path(save_dir)


def _check_prefix(name: str, prefix) -> str:
    if not isinstance(prefix, str) or not prefix:
        fail(name, "a non-empty str", prefix)
    return prefix


def prefix_setting() -> CheckedSetting:
    """A monitor's ``prefix``, checked when set (an empty one would log names without it)."""
    return CheckedSetting(_check_prefix, "Prefix of the logged names (checked when set).")


def save_dir_setting() -> CheckedSetting:
    """A monitor's ``save_dir``, kept as a ``Path`` (see :func:`save_dir_path`)."""
    return CheckedSetting(
        lambda name, value: save_dir_path(value),
        "Folder of the pictures, a ``Path``, or None (checked when set).",
    )


def every_n_epochs_setting() -> CheckedSetting:
    """A monitor's ``every_n_epochs``, an integer >= 1, checked when set."""
    return CheckedSetting(
        functools.partial(check_integer, minimum=1),
        "The monitor runs at the end of every ``every_n_epochs``-th epoch (checked when set).",
    )


def check_reiterable(dataloader) -> None:
    """Refuse a one-shot iterator (a generator) as probe data."""
    if isinstance(dataloader, Iterator):
        raise TypeError(
            "dataloader must be probe data that can be read again (a DataLoader, a list of "
            f"batches); got a one-shot {type(dataloader).__name__}, which the monitor's passes "
            "would exhaust."
        )


def check_unsharded(name: str, dataloader) -> None:
    """Refuse a probe ``DataLoader`` whose ``DistributedSampler`` (as its sampler, or inside its
    batch sampler) gives this process a shard of the probe: the monitors split the whole probe
    between processes themselves, so a shard of it would be split again and part of the probe
    scored by no process. A ``DistributedSampler`` of one replica reads the whole probe."""
    if not isinstance(dataloader, DataLoader) or isinstance(dataloader.dataset, IterableDataset):
        return
    batch_sampler = dataloader.batch_sampler
    for sampler in (dataloader.sampler, getattr(batch_sampler, "sampler", None)):
        if not isinstance(sampler, DistributedSampler):
            continue
        replicas = sampler.num_replicas
        if replicas > 1:
            raise ValueError(
                f"{name} must give every process the whole probe (a DataLoader without a "
                "DistributedSampler, or with one of num_replicas=1): under DDP the monitor "
                "splits the probe between the processes itself, each scoring every "
                f"world_size-th batch; got a DataLoader with a {type(sampler).__name__} of "
                f"num_replicas={replicas}, which would leave only part of the probe scored. "
                "Pass every process the same DataLoader over the whole probe, with "
                "shuffle=False."
            )


def known_empty(dataloader) -> bool:
    """Whether a probe is known to yield no batch (a length of 0: ``drop_last=True`` with fewer
    items than ``batch_size``, an empty list); one without a length is found out when read."""
    try:
        return len(dataloader) == 0
    except TypeError:
        return False


def check_unique_prefix(trainer: L.Trainer, monitor, what: str) -> None:
    """Refuse another monitor of ``monitor``'s class in ``trainer`` logging under its prefix."""
    for other in trainer.callbacks:
        if other is not monitor and type(other) is type(monitor) and other.prefix == monitor.prefix:
            raise ValueError(
                f"prefix must differ between the {type(monitor).__name__}s of one Trainer: "
                f"{what(other)} and {what(monitor)} would both log under "
                f"'{monitor.prefix}/...', and Lightning would average their values; got "
                f"prefix={monitor.prefix!r} twice."
            )


def loader_generators(loader) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a loader draws from (its own, its sampler's, its batch
    sampler's sampler's): iterating it draws a seed from the loader's own generator (torch's
    global one when it has none), and a shuffling sampler its order."""
    found = {}
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    for holder in (loader, sampler, batch_sampler, getattr(batch_sampler, "sampler", None)):
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator):
            found[id(generator)] = generator
    return list(found.values())


@contextmanager
def random_state_kept(device: torch.device, loader=None) -> Iterator[None]:
    """Inside the block, torch's CPU generator (and ``device``'s, on CUDA or MPS) and the
    generators of ``loader`` (see :func:`loader_generators`) may be used; after it, they are as
    they were before (a generator shared with the training loader keeps its data order)."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    generators = loader_generators(loader)
    states = [generator.get_state() for generator in generators]
    # MPS's one generator, kept by its own functions (torch.random.fork_rng keeps it only in
    # newer torch, by device_type)
    mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        for generator, state in zip(generators, states):
            generator.set_state(state)
        if mps_state is not None:
            torch.mps.set_rng_state(mps_state)


def warn_if_never_runs(monitor: str, every_n_epochs: int, trainer: L.Trainer) -> None:
    """Warn when a fit of ``trainer.max_epochs`` epochs ends before the first scheduled run (a
    fit bounded by ``max_steps`` or ``max_time`` alone is not checked)."""
    max_epochs = trainer.max_epochs
    if max_epochs is not None and 0 <= max_epochs < every_n_epochs:
        warnings.warn(
            f"{monitor} runs at the end of every {every_n_epochs} epochs (every_n_epochs="
            f"{every_n_epochs}), and this fit has "
            f"max_epochs={max_epochs}: it will not run (history stays empty). Pass "
            f"every_n_epochs <= {max(max_epochs, 1)}.",
            UserWarning,
            stacklevel=2,
        )
