"""Train an AWDModule on fixed signals with 1 or 2 CPU processes; rank 0 writes the learned
filter and the logged values.

Run by test_module.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import sys

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_distill.awd import AWDModule
from tests.helpers import ddp_fit, write_from_rank_zero


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    teacher = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    module = AWDModule(
        teacher, wavelet="db2", levels=2, attribution_weight=0.05, sparsity_weight=0.01, lr=1e-2
    )
    # 40 validation signals: 20 per process under DDP, in batches of 8, 8 and 4
    trainer = ddp_fit(module, devices, 16, TensorDataset(x), TensorDataset(x[:40]), max_epochs=2)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["h0"] = module.h0.detach().double().tolist()
    write_from_rank_zero(trainer, metrics, out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
