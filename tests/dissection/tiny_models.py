"""A tiny Lightning classifier for the dissection callback tests."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class TinyNet(L.LightningModule):
    def __init__(self, classes: int = 6, lr: float = 0.05, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lr = lr
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 10, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, classes)
        )

    def forward(self, x):
        return self.head(self.features(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def quiet_trainer(**kwargs) -> L.Trainer:
    options = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "max_epochs": 1,
    }
    options.update(kwargs)
    return L.Trainer(**options)
