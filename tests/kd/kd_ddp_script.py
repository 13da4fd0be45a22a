"""Train a DistillationModule on fixed data with 1 or 2 CPU processes; rank 0 writes metrics.

Run by test_kd_ddp.py as a script, because Lightning's DDP launcher starts the other ranks by
running the same command again. A third argument ``monotonic`` adds a ``Monotonic`` constraint
on the batch's own rows (no uniform points: a mean over each process's equal share of the
batch, whose averaged gradient is the one-process gradient).
"""

import sys

from torch.utils.data import TensorDataset

from lightning_distill import DistillationModule, Monotonic
from tests.helpers import ddp_fit, ddp_metrics, ddp_problem, write_from_rank_zero


def main(devices: int, out_path: str, monotonic: bool = False) -> None:
    x, y, teacher, student = ddp_problem()
    constraints = [Monotonic(0, output=1, margin=0.5, n_points=0)] if monotonic else None
    module = DistillationModule(student, teacher, lr=0.01, constraints=constraints)
    train, val = TensorDataset(x, y), TensorDataset(x[:96], y[:96])
    trainer = ddp_fit(module, devices, 32, train, val)
    write_from_rank_zero(trainer, ddp_metrics(trainer, student), out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3:] == ["monotonic"])
