"""Labelled batches on one process, unlabelled ones on the other (alpha=1 trains on both):
the processes log different loss terms. Rank 0 writes the epoch means.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again. With 1 device, the one process sees all the batches.
"""

import sys

import lightning as L

from lightning_distill import DistillationModule
from tests.helpers import ddp_problem, write_from_rank_zero


class Batches:
    """Ready batches as one loader (Lightning reads a plain list as several loaders)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def main(devices: int, out_path: str) -> None:
    x, y, teacher, student = ddp_problem()
    # lr 1e-12: the weights stay put, so the terms of a batch do not depend on which
    # process, or in which order, it is seen
    module = DistillationModule(student, teacher, alpha=1.0, lr=1e-12)
    labelled = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 48, 16)]
    unlabelled = [(x[i : i + 16],) for i in range(64, 96, 16)]  # 64 samples against 48
    unlabelled += [(x[96:128],)]
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    if devices == 1:
        batches = labelled + unlabelled
    else:
        batches = labelled if trainer.global_rank == 0 else unlabelled
    trainer.fit(module, Batches(batches))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("_epoch")}
    write_from_rank_zero(trainer, metrics, out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
