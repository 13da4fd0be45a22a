"""Train a DistillationModule with CRD on fixed data with 1 or 2 CPU processes; rank 0 writes.

Run by test_crd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import json
import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler

from lightning_distill import DistillationModule, FeatureDistillation
from tests.helpers import IndexedDataset, make_cnn


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 6, 6, generator=gen)
    y = (x[:, 0, :3].sum((1, 2)) > 0).long() + (x[:, 0, 3, 3] > 1).long()
    teacher, student = make_cnn(6, batch_norm=False), make_cnn(4, batch_norm=False)
    options = {"num_samples": 64, "num_negatives": 32, "embed_dim": 8}
    spec = FeatureDistillation("6", "6", "crd", 0.8, options=options)
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2], lr=0.01)
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
    # same samples as one process does, so the updates (and the banks) agree.
    per_process_batch = 16 // devices

    def loader(dataset):
        sampler = DistributedSampler(
            dataset, num_replicas=devices, rank=trainer.global_rank, shuffle=False
        )
        return DataLoader(dataset, batch_size=per_process_batch, sampler=sampler)

    trainer.fit(module, loader(IndexedDataset(x, y)), loader(IndexedDataset(x[:48], y[:48])))
    crd = module.feature_methods["0"]
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["world_size"] = trainer.world_size
    metrics["steps"] = trainer.global_step
    metrics["crd_steps"] = int(crd.steps)
    metrics["weight_sum"] = float(sum(p.double().sum() for p in student.parameters()))
    metrics["head_sum"] = float(sum(p.double().sum() for p in crd.parameters()))
    metrics["bank"] = crd.memory_student.double().flatten().tolist()[::7]
    metrics["bank_teacher_sum"] = float(crd.memory_teacher.double().abs().sum())
    metrics["normalizers"] = crd.normalizers.tolist()
    if trainer.global_rank == 0:
        with open(out_path, "w") as f:
            json.dump(metrics, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
