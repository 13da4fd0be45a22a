"""Train a DistillationModule with CRD on fixed data with 1 or 2 CPU processes; rank 0 writes.

Run by test_crd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import sys

import lightning as L
import torch

from lightning_distill import DistillationModule, FeatureDistillation
from tests.helpers import IndexedDataset, ddp_fit, ddp_metrics, make_cnn, write_from_rank_zero


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 6, 6, generator=gen)
    y = (x[:, 0, :3].sum((1, 2)) > 0).long() + (x[:, 0, 3, 3] > 1).long()
    teacher, student = make_cnn(6, batch_norm=False), make_cnn(4, batch_norm=False)
    options = {"num_samples": 64, "num_negatives": 32, "embed_dim": 8}
    spec = FeatureDistillation("6", "6", "crd", 0.8, options=options)
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2], lr=0.01)
    # the same global batch in every process, so the updates (and the banks) agree
    train, val = IndexedDataset(x, y), IndexedDataset(x[:48], y[:48])
    trainer = ddp_fit(module, devices, 16, train, val)
    crd = module.feature_methods["0"]
    metrics = ddp_metrics(trainer, student)
    metrics["crd_steps"] = int(crd.steps)
    metrics["head_sum"] = float(sum(p.double().sum() for p in crd.parameters()))
    metrics["bank"] = crd.memory_student.double().flatten().tolist()[::7]
    metrics["bank_teacher_sum"] = float(crd.memory_teacher.double().abs().sum())
    metrics["normalizers"] = crd.normalizers.tolist()
    write_from_rank_zero(trainer, metrics, out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
