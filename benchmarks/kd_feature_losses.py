"""Per-step cost of each feature-distillation method beside plain KD, in one run.

The same student CNN (3 conv layers, width 32) learns from the same teacher CNN (4 layers,
width 48) on random 3x16x16 images, batch 64, Adam, through ``DistillationModule``: plain KD,
then KD plus one feature method (AT and FT on the last conv block; CRD, SSKD, RKD and PKT on the
pooled features). The configurations run round-robin, several rounds, each fit for a few epochs
of which the first is dropped (it holds the first stages of FT and SSKD, and warm-up); the
median per-step time of each is printed with its ratio to plain KD measured in the same run.
Times are the process's CPU time with one torch thread, so that other work on a shared machine
enters the ratios as little as it can.

Then the memory of CRD's bank (two ``num_samples x embed_dim`` float32 tables, in checkpoints)
and of the negatives gathered per step (``2 x batch x (1 + num_negatives) x embed_dim`` floats,
transient).

Run: python benchmarks/kd_feature_losses.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections import OrderedDict

import lightning as L
import torch
from kd_overhead import Indexed  # random 3x16x16 images with their index
from torch import nn
from torch.utils.data import DataLoader

from lightning_distill import DistillationModule, FeatureDistillation
from lightning_distill.kd.feature_losses import CRD

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def cnn(width: int, depth: int) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for i in range(1, depth + 1):
        layers[f"conv{i}"] = nn.Conv2d(channels, width, 3, padding=1)
        layers[f"relu{i}"] = nn.ReLU()
        channels = width
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(layers),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            head=nn.Linear(width, 10),
        )
    )


class StepTimer(L.Callback):
    """Process CPU time per training step, epoch by epoch."""

    def __init__(self):
        self.per_step: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._start, self._steps = time.process_time(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._steps += 1

    def on_train_epoch_end(self, trainer, pl_module):
        self.per_step.append((time.process_time() - self._start) / max(self._steps, 1))


def configurations(num_samples: int, negatives: int) -> dict[str, list | None]:
    last = "features.relu3"
    return {
        "KD": None,
        "KD + AT": [FeatureDistillation(last, "features.relu4", "attention", 500.0)],
        "KD + FT": [
            FeatureDistillation(
                last, "features.relu4", "ft", 500.0, options={"paraphraser_epochs": 1}
            )
        ],
        "KD + CRD": [
            FeatureDistillation(
                "flatten",
                "flatten",
                "crd",
                0.8,
                options={"num_samples": num_samples, "num_negatives": negatives},
            )
        ],
        "KD + SSKD": [
            FeatureDistillation("flatten", "flatten", "sskd", options={"head_epochs": 1})
        ],
        "KD + RKD": [FeatureDistillation("flatten", "flatten", "rkd")],
        "KD + PKT": [FeatureDistillation("flatten", "flatten", "pkt", 30000.0)],
    }


def fit(features, data, epochs: int) -> list[float]:
    torch.manual_seed(0)
    student, teacher = cnn(32, 3), cnn(48, 4)
    module = DistillationModule(
        student, teacher, features=features, example_input=data.x[:2], lr=1e-3
    )
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, DataLoader(data, batch_size=64, shuffle=True))
    return timer.per_step[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="per fit; the first is dropped")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--negatives", type=int, default=16384, help="CRD negatives per sample")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Indexed(args.samples)
    configs = configurations(args.samples, args.negatives)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        for name, features in configs.items():
            times[name] += fit(features, data, args.epochs)
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)

    base = statistics.median(times["KD"])
    print(
        f"\nper-step CPU time, median over {args.rounds} rounds x {args.epochs - 1} epochs "
        f"({args.samples} images, batch 64; CRD with {args.negatives} negatives)"
    )
    print(f"{'method':>10}  {'ms/step':>8}  {'fastest':>8}  {'ratio to KD':>11}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>10}  {1e3 * median:8.1f}  {1e3 * min(values):8.1f}  {median / base:11.2f}")

    crd = CRD(32, 48, num_samples=50_000)
    gathered = 2 * 64 * (1 + crd.num_negatives) * 128 * 4
    print(
        f"\nCRD memory, embed_dim 128, float32: bank of 50,000 samples (CIFAR-size) "
        f"{crd.bank_bytes / 2**20:.1f} MiB (two tables, in checkpoints); per step, the "
        f"negatives gathered for a batch of 64 with {crd.num_negatives} negatives "
        f"{gathered / 2**20:.0f} MiB (transient)"
    )


if __name__ == "__main__":
    main()
