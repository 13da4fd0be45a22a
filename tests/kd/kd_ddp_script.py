"""Train a DistillationModule on fixed data with 1 or 2 CPU processes; rank 0 writes metrics.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again.
"""

import sys

from torch.utils.data import TensorDataset

from lightning_distill import DistillationModule
from tests.helpers import ddp_fit, ddp_metrics, ddp_problem, write_from_rank_zero


def main(devices: int, out_path: str) -> None:
    x, y, teacher, student = ddp_problem()
    module = DistillationModule(student, teacher, lr=0.01)
    train, val = TensorDataset(x, y), TensorDataset(x[:96], y[:96])
    trainer = ddp_fit(module, devices, 32, train, val)
    write_from_rank_zero(trainer, ddp_metrics(trainer, student), out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
