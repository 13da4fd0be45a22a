"""What the monitors (``DissectionMonitor``, ``AttributionMonitor``) share as Lightning callbacks.

- A monitor reads its probe data without touching the training's random state: iterating a
  ``DataLoader`` draws its base seed from torch's global generator, which would shift the next
  epoch's shuffle, so a run with a monitor would train otherwise than the same run without it.
- It says at the start of a fit when its schedule never reaches an epoch of that fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch

__all__ = ["random_state_kept", "warn_if_never_runs"]


@contextmanager
def random_state_kept(device: torch.device) -> Iterator[None]:
    """Inside the block, torch's CPU generator (and ``device``'s, on an accelerator) may be used;
    after it, they are as they were before."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        yield


def warn_if_never_runs(monitor: str, every_n_epochs: int, trainer: L.Trainer) -> None:
    """Warn when a fit of ``trainer.max_epochs`` epochs ends before the first scheduled run."""
    max_epochs = trainer.max_epochs
    if max_epochs is not None and 0 <= max_epochs < every_n_epochs:
        warnings.warn(
            f"{monitor} runs at the end of every {every_n_epochs}-th epoch, and this fit has "
            f"max_epochs={max_epochs}: it will not run (history stays empty). Pass "
            f"every_n_epochs <= {max(max_epochs, 1)}.",
            UserWarning,
            stacklevel=2,
        )
