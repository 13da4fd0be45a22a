"""Validate a DistillationModule whose student gives NaN logits for some samples, with 1 or 2 CPU
processes; rank 0 writes every rank's warnings and the epoch's figures to ``OUT``.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again. The student's logits of validation samples 0, 3, 4 and 70 are
NaN: 3 land on rank 0 and 1 on rank 1 of two processes (rank r takes samples r, r + 2, ...).
"""

import json
import sys
import warnings

import torch
from torch.utils.data import TensorDataset

from lightning_distill import DistillationModule
from tests.helpers import ddp_fit, ddp_problem

NAN_ROWS = [0, 3, 4, 70]


class Diverging(torch.nn.Module):
    """The student, giving NaN logits for samples whose first feature is above 50 (no training
    sample's: they are standard normal)."""

    def __init__(self, student):
        super().__init__()
        self.student = student

    def forward(self, x):
        return torch.where(x[:, :1] > 50.0, torch.nan, self.student(x))


def main(devices: int, out_path: str) -> None:
    x, y, teacher, student = ddp_problem()
    module = DistillationModule(Diverging(student), teacher, lr=0.01)
    val = x[:96].clone()
    val[NAN_ROWS, 0] = 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = ddp_fit(module, devices, 32, TensorDataset(x, y), TensorDataset(val, y[:96]), 1)
    told = [str(w.message) for w in caught if "logits" in str(w.message)]
    figures = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    with open(f"{out_path}.rank{trainer.global_rank}", "w") as f:
        json.dump(told, f)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if distributed:
        torch.distributed.barrier()
    if trainer.global_rank == 0:
        ranks = [json.load(open(f"{out_path}.rank{r}")) for r in range(trainer.world_size)]
        with open(out_path, "w") as f:
            json.dump({"warnings": ranks, "figures": figures}, f)
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
