"""Train a DistillationModule on fixed data with 1 or 2 CPU processes; rank 0 writes metrics.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import sys

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_distill import DistillationModule
from tests.helpers import ddp_fit, ddp_metrics, write_from_rank_zero


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 10, generator=gen)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    teacher = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    student = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    module = DistillationModule(student, teacher, lr=0.01)
    train, val = TensorDataset(x, y), TensorDataset(x[:96], y[:96])
    trainer = ddp_fit(module, devices, 32, train, val)
    write_from_rank_zero(trainer, ddp_metrics(trainer, student), out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
