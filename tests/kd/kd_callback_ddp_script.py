"""Train a user's LightningModule with the KnowledgeDistillation callback and a hint pair on
fixed data with 1 or 2 CPU processes; rank 0 writes metrics.

Each process seeds torch by its rank before the callback builds its hint regressor, as
processes started without a common seed do: the callback must still train one regressor.
Run by test_kd_ddp.py as a script (Lightning's DDP launcher runs the same command again).
"""

import sys

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_distill import FeatureDistillation, KnowledgeDistillation
from tests.helpers import ddp_fit, ddp_metrics, ddp_problem, write_from_rank_zero


class Own(L.LightningModule):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val/ce", nn.functional.cross_entropy(self(batch[0]), batch[1]), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SeedByRank(L.Callback):
    """Placed before the KD callback: its set-up then draws from a rank-dependent state."""

    def setup(self, trainer, pl_module, stage):
        torch.manual_seed(1000 + trainer.global_rank)


def main(devices: int, out_path: str) -> None:
    x, y, teacher, student = ddp_problem()
    kd = KnowledgeDistillation(
        teacher, features=[FeatureDistillation("net.0", "0", loss="hint")], example_input=x[:2]
    )
    train, val = TensorDataset(x, y), TensorDataset(x[:96], y[:96])
    trainer = ddp_fit(Own(student), devices, 32, train, val, callbacks=[SeedByRank(), kd])
    metrics = ddp_metrics(trainer, student)
    regressor = [p.detach().double() for p in kd._features.methods.parameters()]
    metrics["regressor_sum"] = float(sum(p.sum() for p in regressor))
    # every process's regressor, gathered: they must be one
    sums = torch.tensor([metrics["regressor_sum"]], dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered = [torch.zeros_like(sums) for _ in range(trainer.world_size)]
        torch.distributed.all_gather(gathered, sums)
        metrics["regressor_sums"] = [float(s) for s in gathered]
    else:
        metrics["regressor_sums"] = [metrics["regressor_sum"]]
    write_from_rank_zero(trainer, metrics, out_path)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
