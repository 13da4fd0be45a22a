"""DiffROAR's retraining in one process and in two (``strategy="ddp_spawn"``, gloo, CPU).

Each fresh model of ``diff_roar`` trains on all the masked training images in batches of
``batch_size``, in the order its seed draws. This script trains the runs of one seed the same
way (the top-k and bottom-k arms, k = 0.5, of the two-pixel task of the tests: 64 images of
4 x 4 whose class is the sign of the first two pixels' sum, those two ranked first; a linear
model, Adam at lr 0.05, 2 epochs, batches of 16), once with the default Trainer and once with
``strategy="ddp_spawn", devices=2``, and prints the test accuracies (the training images, as
in the measurement) of each. Under two processes each trains on half of every epoch, drawn by
Lightning's ``DistributedSampler`` (seeded by ``PL_GLOBAL_SEED`` or 0, not the run's seed), in
batches of 16: the accuracies differ, which is why ``diff_roar`` refuses such a Trainer.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/diff_roar_processes.py
        [--seeds 0 1] [--sharing-strategy file_system]

``--sharing-strategy file_system`` where the spawned processes cannot map the tensors shared
through file descriptors ("unable to resize file").
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill.attribution.diff_roar import mask_by_rank

warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


class Classifier(L.LightningModule):
    """Cross-entropy and Adam, as ``diff_roar`` trains its fresh models."""

    def __init__(self, model: nn.Module, lr: float) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def two_pixel_data(n: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 4, 4, generator=generator)
    targets = (images[:, 0, 0, 0] + images[:, 0, 0, 1] > 0).long()
    attribution = 0.1 * torch.rand(n, 1, 4, 4, generator=generator)
    attribution[:, 0, 0, :2] += 1.0
    return images, targets, attribution


def run(seed: int, keep: str, trainer_kwargs: dict) -> float:
    images, targets, attribution = two_pixel_data(64, 0)
    masked = mask_by_rank(
        images,
        attribution,
        0.5,
        keep=keep,
        fill=images.mean(),
        generator=torch.Generator().manual_seed(seed),
    )
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    loader = DataLoader(
        TensorDataset(masked, targets),
        16,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **trainer_kwargs,
    }
    L.Trainer(**options).fit(Classifier(model, 0.05), loader)
    with torch.no_grad():
        model.eval()
        return float((model(masked).argmax(1) == targets).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sharing-strategy", default=None)
    args = parser.parse_args()
    if args.sharing_strategy:
        torch.multiprocessing.set_sharing_strategy(args.sharing_strategy)
    torch.set_num_threads(1)
    for name, kwargs in (
        ("one process", {}),
        ("ddp_spawn, 2 processes", {"strategy": "ddp_spawn", "devices": 2}),
    ):
        start = time.perf_counter()
        rows = []
        for seed in args.seeds:
            top, bottom = (run(seed, keep, kwargs) for keep in ("top", "bottom"))
            rows.append(f"seed {seed}: top {top:.3f} bottom {bottom:.3f}")
        print(f"{name:>22} ({time.perf_counter() - start:.0f} s): " + "; ".join(rows))


if __name__ == "__main__":
    main()
