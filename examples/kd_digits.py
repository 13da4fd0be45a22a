"""Knowledge distillation on scikit-learn's bundled digits (8x8 images, 10 classes).

A CNN teacher is trained on the labels; four small students are trained with the same budget:
from scratch, with label smoothing, with knowledge distillation (KD), and with KD plus attention
transfer. Last, a teaching-assistant chain: teacher -> assistant -> student. Prints each model's
test accuracy and its top-1 agreement with the teacher.

Run: python examples/kd_digits.py  [--seeds 3] [--epochs 15]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import plural, positive_int  # the examples folder, as run from the repository root

from lightning_distill import DistillationModule, FeatureDistillation

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
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


def run_seed(seed: int, epochs: int) -> dict[str, tuple[float, float]]:
    """Teacher, four students and a teaching-assistant chain on one split and seed."""
    train, test = loaders(seed)
    L.seed_everything(seed, verbose=False)
    teacher = cnn(16)
    teacher_acc = fit(DistillationModule(teacher, alpha=0.0, lr=3e-3), train, test, 15)["test/acc"]
    results = {"teacher (width 16)": (teacher_acc, 1.0)}

    attention = FeatureDistillation("4", "4", loss="attention", weight=500.0, variant="code")
    assistant = cnn(10)
    students = {
        "scratch": {"teacher": None, "alpha": 0.0},
        "label smoothing 0.1": {"teacher": None, "alpha": 0.0, "label_smoothing": 0.1},
        "KD (T=4, alpha=0.9)": {"teacher": teacher},
        "KD + attention transfer": {"teacher": teacher, "features": [attention]},
        # teaching-assistant chain: the assistant learns from the teacher, the student from it
        "assistant (width 10, KD)": {"teacher": teacher, "model": assistant},
        "KD via the assistant": {"teacher": assistant},
    }
    for name, options in students.items():
        L.seed_everything(seed, verbose=False)
        model = options.pop("model", None) or cnn(6)
        module = DistillationModule(model, lr=3e-3, **options)
        accuracy = fit(module, train, test, epochs)["test/acc"]
        results[name] = (accuracy, _agreement(model, teacher, test))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=positive_int, default=15, help="epochs per student, >= 1 (default: 15)"
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=3,
        help="splits and initialisations, >= 1 (default: 3)",
    )
    args = parser.parse_args()
    # The models are tiny: one thread avoids intra-op overhead that costs more than it saves.
    torch.set_num_threads(1)
    start = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        runs.append(run_seed(seed, args.epochs))
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)

    print(f"\nmean (std) over {plural(args.seeds, 'seed')}; students are CNNs of width 6")
    print(f"{'model':<28}{'test accuracy':>18}{'agreement w/ teacher':>24}")
    for name in runs[0]:
        accuracy = torch.tensor([run[name][0] for run in runs])
        agreement = torch.tensor([run[name][1] for run in runs])
        print(
            f"{name:<28}{float(accuracy.mean()):>10.4f} ({_std(accuracy):.4f})"
            f"{float(agreement.mean()):>16.4f} ({_std(agreement):.4f})"
        )
    print(f"\n({time.perf_counter() - start:.0f} s)")


def _std(values: torch.Tensor) -> float:
    return float(values.std()) if len(values) > 1 else 0.0


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
