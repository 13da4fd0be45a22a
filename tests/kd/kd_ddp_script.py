"""Train a DistillationModule on fixed data with 1 or 2 CPU processes; rank 0 writes metrics.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import json
import sys

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lightning_distill import DistillationModule


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 10, generator=gen)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    teacher = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    student = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    module = DistillationModule(student, teacher, lr=0.01)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    # Rank r takes samples r, r + devices, ...: with the same global batch, every step sees the
    # same samples as one process does, so the updates agree.
    per_process_batch = 32 // devices

    def loader(dataset):
        sampler = DistributedSampler(
            dataset, num_replicas=devices, rank=trainer.global_rank, shuffle=False
        )
        return DataLoader(dataset, batch_size=per_process_batch, sampler=sampler)

    train = loader(TensorDataset(x, y))
    val = loader(TensorDataset(x[:96], y[:96]))
    trainer.fit(module, train, val)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["world_size"] = trainer.world_size
    metrics["weight_sum"] = float(sum(p.double().sum() for p in student.parameters()))
    metrics["steps"] = trainer.global_step
    if trainer.global_rank == 0:
        with open(out_path, "w") as f:
            json.dump(metrics, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
