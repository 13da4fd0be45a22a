"""Train a DistillationModule with CRD on 65 samples under Lightning's automatic distributed
sampler (2 CPU processes, ``DataLoader(shuffle=False)``), or in one process fed the same global
batches; rank 0 writes metrics.

Lightning's sampler shuffles training data whatever the loader's ``shuffle`` flag, gives each
process ``batch_size`` samples a step and pads 65 samples to 66 by repeating one. Run by
test_kd_auto_sampler_ddp.py as a script (Lightning's DDP launcher runs the same command again).
"""

import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler

from lightning_distill import DistillationModule, FeatureDistillation
from tests.helpers import IndexedDataset, ddp_metrics, make_cnn, write_from_rank_zero

BATCH, WORLD = 8, 2


class GlobalBatches:
    """One process's batch sampler: each step the union of the batches Lightning's sampler
    gives the ``WORLD`` processes (``shuffle=True``, seed 0, reshuffled by ``set_epoch``)."""

    def __init__(self, samples: int) -> None:
        self.samples, self.epoch = samples, 0
        self.sampler = self  # Lightning calls ``batch_sampler.sampler.set_epoch``

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shares(self) -> list[list[int]]:
        shares = []
        for rank in range(WORLD):
            sampler = DistributedSampler(
                range(self.samples), num_replicas=WORLD, rank=rank, shuffle=True, seed=0
            )
            sampler.set_epoch(self.epoch)
            shares.append(list(sampler))
        return shares

    def __iter__(self):
        shares = self._shares()
        for start in range(0, len(shares[0]), BATCH):
            yield [i for share in shares for i in share[start : start + BATCH]]

    def __len__(self) -> int:
        return -(-len(self._shares()[0]) // BATCH)


def main(devices: int, out_path: str) -> None:
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(65, 1, 6, 6, generator=gen)
    y = (x[:, 0, :3].sum((1, 2)) > 0).long() + (x[:, 0, 3, 3] > 1).long()
    teacher, student = make_cnn(6, batch_norm=False), make_cnn(4, batch_norm=False)
    options = {"num_samples": 65, "num_negatives": 32, "embed_dim": 8}
    spec = FeatureDistillation("6", "6", "crd", 0.8, options=options)
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2], lr=0.01)
    train, val = IndexedDataset(x, y), IndexedDataset(x[:48], y[:48])
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if devices > 1:  # Lightning replaces the samplers
        loaders = DataLoader(train, BATCH, shuffle=False), DataLoader(val, BATCH)
    else:
        loaders = DataLoader(train, batch_sampler=GlobalBatches(len(train))), DataLoader(val, 16)
    trainer.fit(module, *loaders)
    crd = module.feature_methods["0"]
    metrics = ddp_metrics(trainer, student)
    metrics["crd_steps"] = int(crd.steps)
    metrics["bank"] = crd.memory_student.double().flatten().tolist()[::7]
    metrics["bank_teacher_sum"] = float(crd.memory_teacher.double().abs().sum())
    write_from_rank_zero(trainer, metrics, out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
