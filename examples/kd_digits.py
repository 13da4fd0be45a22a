"""Knowledge distillation on scikit-learn's bundled digits (8x8 images, 10 classes).

A CNN teacher is trained on the labels; four small students are trained with the same budget:
from scratch, with label smoothing, with knowledge distillation (KD), and with KD plus attention
transfer. Last, a teaching-assistant chain: teacher -> assistant -> student. Prints each model's
test accuracy and its top-1 agreement with the teacher.

Run: python examples/kd_digits.py            (about 1-3 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def cnn(width: int) -> nn.Sequential:
    """conv(width) -> conv(2 width) -> pool -> linear; layer "4" is the last conv block."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * width, 10),
    )


def loaders(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed
    )
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=256)
    return train, test


def fit(module: DistillationModule, train, test, epochs: int) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train)
    (metrics,) = trainer.test(module, test, verbose=False)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs per student")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    train, test = loaders(args.seed)

    L.seed_everything(args.seed, verbose=False)
    teacher = cnn(16)
    teacher_metrics = fit(DistillationModule(teacher, alpha=0.0, lr=3e-3), train, test, 15)
    print(f"teacher (cnn width 16): test accuracy {teacher_metrics['test/acc']:.4f}")

    attention = FeatureDistillation("4", "4", loss="attention", weight=500.0, variant="code")
    students = {
        "scratch": {"teacher": None, "alpha": 0.0},
        "label smoothing 0.1": {"teacher": None, "alpha": 0.0, "label_smoothing": 0.1},
        "KD (T=4, alpha=0.9)": {"teacher": teacher},
        "KD + attention transfer": {"teacher": teacher, "features": [attention]},
    }
    print(f"\n{'student (cnn width 6)':<28}{'test acc':>10}{'agreement':>11}")
    for name, options in students.items():
        L.seed_everything(args.seed, verbose=False)
        module = DistillationModule(cnn(6), lr=3e-3, **options)
        metrics = fit(module, train, test, args.epochs)
        agreement = _agreement(module.student, teacher, test)
        print(f"{name:<28}{metrics['test/acc']:>10.4f}{agreement:>11.4f}")

    # Teaching-assistant chain: the trained assistant is the next student's teacher.
    L.seed_everything(args.seed, verbose=False)
    assistant = cnn(10)
    fit(DistillationModule(assistant, teacher, lr=3e-3), train, test, args.epochs)
    L.seed_everything(args.seed, verbose=False)
    chained = DistillationModule(cnn(6), assistant, lr=3e-3)
    metrics = fit(chained, train, test, args.epochs)
    agreement = _agreement(chained.student, teacher, test)
    print(f"{'KD via assistant (width 10)':<28}{metrics['test/acc']:>10.4f}{agreement:>11.4f}")
    print(
        f"\n(agreement: top-1 agreement with the width-16 teacher; {time.perf_counter() - start:.0f} s)"
    )


@torch.no_grad()
def _agreement(student: nn.Module, teacher: nn.Module, loader) -> float:
    student.eval(), teacher.eval()
    same = total = 0
    for x, _ in loader:
        same += int((student(x).argmax(1) == teacher(x).argmax(1)).sum())
        total += len(x)
    return same / total


if __name__ == "__main__":
    main()
