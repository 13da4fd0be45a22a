"""Data and networks of the LightningCLI example: scikit-learn's bundled digits (no download).

``MLP(checkpoint=...)`` builds the network and loads its weights from a checkpoint, which is how
the YAML hands LightningCLI a *trained* teacher: the teacher is a network like any other, whose
``init_args`` name the checkpoint to read.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsData(L.LightningDataModule):
    """8x8 digit images (flattened to 64 features), 10 classes; a fixed train/validation split.

    Parameters
    ----------
    batch_size : int, default=64
    val_fraction : float, default=0.25
    seed : int, default=0
        Seed of the split.
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.25, seed: int = 0) -> None:
        super().__init__()
        # checked here, so that a bad flag fails before fit, naming the flag
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"--data.batch_size must be an integer >= 1; got {batch_size!r}")
        if isinstance(val_fraction, bool) or not 0 < val_fraction < 1:
            raise ValueError(f"--data.val_fraction must be in (0, 1); got {val_fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"--data.seed must be an integer >= 0; got {seed!r}")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed

    def setup(self, stage: str) -> None:
        x, y = load_digits(return_X_y=True)
        x_train, x_val, y_train, y_val = train_test_split(
            x / 16.0, y, test_size=self.val_fraction, random_state=self.seed, stratify=y
        )
        self.train = TensorDataset(
            torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
        )
        self.val = TensorDataset(torch.tensor(x_val, dtype=torch.float32), torch.tensor(y_val))

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=256)


class MLP(nn.Module):
    """A two-layer perceptron for the 64 digit features, optionally loaded from a checkpoint.

    Parameters
    ----------
    hidden : int, default=32
        Width of the hidden layer.
    checkpoint : str or None, default=None
        A checkpoint of a ``DistillationModule`` whose student was this network (a
        ``torch.save``'d ``state_dict`` works too). Read with ``weights_only=True``.
    prefix : str, default="student."
        Prefix of this network's weights in the checkpoint's ``state_dict``.
    """

    def __init__(self, hidden: int = 32, checkpoint: str | None = None, prefix: str = "student."):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        if checkpoint is not None:
            if not Path(checkpoint).is_file():
                raise ValueError(
                    f"checkpoint {checkpoint!r} is not a file: train the teacher first "
                    "(python kd_cli.py fit --config teacher.yaml writes checkpoints/teacher.ckpt) "
                    "or name an existing checkpoint."
                )
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not own:
                raise ValueError(
                    f"checkpoint must hold weights under the prefix {prefix!r}; got keys "
                    f"{sorted(state)[:5]} in {checkpoint!r}."
                )
            self.load_state_dict(own)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
