"""Does knowledge distillation make a student more interpretable? Network dissection of students.

Han et al. (ICML 2023) found that students trained with knowledge distillation (KD) have more
concept-detector units than students trained from scratch, and far more than students trained
with label smoothing. This example repeats the comparison in small, on the library's synthetic
concept images (shapes with colours and textures on four kinds of background; the class is the
shape of the main object):

- a teacher CNN (widths 24-48-96) trained on the labels;
- four student CNNs (widths 16-32-64), same budget: from scratch, with label smoothing (0.1),
  with KD (T = 4, alpha = 0.9) and with KD plus attention transfer on the last two conv blocks;
- every student is dissected at its last conv block (64 units, 8x8 maps) on a probe set by
  ``DissectionMonitor`` at the end of training: detector units (best-concept IoU >= 0.04) and
  unique concepts, with test accuracy, as mean and standard deviation over the seeds.

Writes ``summary.png`` (detectors and accuracy per method), and for the first seed the
per-category bar chart and the top-image grid of the best units of every student, to ``--out``.

Run: PYTHONPATH=. python examples/dissection_kd_interpretability.py      (about 4 minutes on 2 CPU cores)
     PYTHONPATH=. python examples/dissection_kd_interpretability.py --seeds 1 --epochs 2   (a quick look)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import output_dir, plural, positive_int  # the examples folder, as run from the root

from lightning_distill import DistillationModule, FeatureDistillation
from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.datasets import SyntheticConcepts

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
warnings.filterwarnings("ignore", ".*sync_dist.*")
# the Trainers run without logger or progress bar; silence the "GPU available" banners too
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

METHODS = ("scratch", "label smoothing", "KD", "KD + attention")


def cnn(widths: tuple[int, int, int], classes: int) -> nn.Module:
    """Three conv-BN-ReLU blocks (two followed by 2x2 pooling), global pooling, linear head."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for i, width in enumerate(widths, start=1):
        layers[f"conv{i}"] = nn.Conv2d(channels, width, 3, padding=1)
        layers[f"bn{i}"] = nn.BatchNorm2d(width)
        layers[f"relu{i}"] = nn.ReLU()
        if i < len(widths):
            layers[f"pool{i}"] = nn.MaxPool2d(2)
        channels = width
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(layers),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            head=nn.Linear(channels, classes),
        )
    )


class CosineDistillation(DistillationModule):
    """``DistillationModule`` with a cosine learning-rate decay to 0 over the fit.

    The decay makes the final weights, and so the final accuracy and dissection, much less
    dependent on the last few batches than a constant learning rate does.
    """

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.trainer.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def train(module: L.LightningModule, loader, epochs: int, callbacks=()) -> None:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(module, loader)


@torch.no_grad()
def accuracy(model: nn.Module, data: SyntheticConcepts) -> float:
    model.eval()
    predictions = torch.cat([model(x).argmax(1) for x in data.images.split(500)])
    return float((predictions == data.targets).float().mean())


def student_module(method: str, student: nn.Module, teacher: nn.Module, lr: float):
    if method == "scratch":
        return CosineDistillation(student, None, alpha=0.0, lr=lr)
    if method == "label smoothing":
        return CosineDistillation(student, None, alpha=0.0, label_smoothing=0.1, lr=lr)
    features = None
    if method == "KD + attention":
        # the authors' code weights the mean-squared attention difference by 1000; the README's
        # figures were measured with half that (the paper's eq. (2) writes beta / 2)
        features = [
            FeatureDistillation(f"features.relu{i}", f"features.relu{i}", "attention", 500.0)
            for i in (2, 3)
        ]
    # plain KD needs only the teacher's logits: compute them once per sample (no augmentation here)
    return CosineDistillation(
        student,
        teacher,
        temperature=4.0,
        alpha=0.9,
        features=features,
        lr=lr,
        cache_teacher=features is None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=3, help=">= 1 (default: 3)")
    parser.add_argument("--epochs", type=positive_int, default=8, help=">= 1 (default: 8)")
    parser.add_argument(
        "--train-size",
        type=positive_int,
        default=2500,
        help="training images, >= 1 (default: 2500)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/kd_interpretability"))
    # small convolutions run fastest on one thread, and much slower when threads oversubscribe
    # a busy machine
    parser.add_argument("--threads", type=positive_int, default=1, help=">= 1 (default: 1)")
    args = parser.parse_args()
    output_dir(parser, args.out, "--out")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    train_data = SyntheticConcepts(args.train_size, seed=0)
    test_data = SyntheticConcepts(1000, seed=1)
    probe = DataLoader(SyntheticConcepts(600, seed=2), batch_size=200)
    classes = len(train_data.class_names)
    print(
        f"synthetic concepts: {len(train_data)} train / {len(test_data)} test / "
        f"{len(probe.dataset)} probe images of 32x32, {classes} classes, "
        f"{len(train_data.label_names) - 1} concepts in {train_data.categories}"
    )

    L.seed_everything(0, verbose=False)
    teacher = cnn((24, 48, 96), classes)
    loader = DataLoader(train_data.classification(), batch_size=64, shuffle=True)
    indexed_loader = DataLoader(
        train_data.classification(with_index=True), batch_size=64, shuffle=True
    )
    teacher_module = CosineDistillation(teacher, None, alpha=0.0, lr=3e-3)
    train(teacher_module, loader, args.epochs + 4)
    # the teacher was trained as the "student" of a label-only DistillationModule
    teacher_monitor = DissectionMonitor(probe, "student.features.relu3")
    teacher_results = teacher_monitor.dissect(teacher_module)
    teacher_acc = accuracy(teacher, test_data)
    print(
        f"teacher: test accuracy {teacher_acc:.3f}, {teacher_results.num_detectors}/96 detector "
        f"units, {len(teacher_results.unique_concepts)} unique concepts "
        f"({time.perf_counter() - start:.0f} s)"
    )

    rows = {method: [] for method in METHODS}
    for seed in range(args.seeds):
        for method in METHODS:
            L.seed_everything(100 + seed, verbose=False)
            student = cnn((16, 32, 64), classes)
            module = student_module(method, student, teacher, lr=3e-3)
            save_dir = (
                args.out / method.replace(" ", "_").replace("+", "and") if seed == 0 else None
            )
            # dissect once, at the end of training
            monitor = DissectionMonitor(
                probe, "student.features.relu3", every_n_epochs=args.epochs, save_dir=save_dir
            )
            data = indexed_loader if module.hparams.cache_teacher else loader
            train(module, data, args.epochs, callbacks=[monitor])
            results = monitor.last_results
            row = {
                "accuracy": accuracy(student, test_data),
                "detectors": results.num_detectors,
                "unique": len(results.unique_concepts),
                **results.category_counts,
            }
            rows[method].append(row)
            print(
                f"seed {seed} {method:>16}: accuracy {row['accuracy']:.3f}, detectors "
                f"{row['detectors']:2d}/64, unique concepts {row['unique']:2d}, per category "
                f"{results.category_counts} ({time.perf_counter() - start:.0f} s)"
            )

    print(
        f"\nmean (std) over {plural(args.seeds, 'seed')}; student last conv block, 64 units, IoU >= 0.04"
    )
    print(f"{'method':>16}  {'accuracy':>14}  {'detectors':>12}  {'unique concepts':>15}")
    summary = {}
    for method, found in rows.items():
        stats = {
            key: (np.mean([r[key] for r in found]), np.std([r[key] for r in found]))
            for key in ("accuracy", "detectors", "unique")
        }
        summary[method] = stats
        acc, det, uni = stats["accuracy"], stats["detectors"], stats["unique"]
        print(
            f"{method:>16}  {acc[0]:.3f} ({acc[1]:.3f})  {det[0]:5.1f} ({det[1]:4.1f})  "
            f"{uni[0]:8.1f} ({uni[1]:3.1f})"
        )
    plot_summary(summary, args.out / "summary.png")
    print(f"\npictures in {args.out}/; total {time.perf_counter() - start:.0f} s")


def plot_summary(summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, label in zip(
        axes,
        ("detectors", "unique", "accuracy"),
        ("detector units (of 64)", "unique concepts", "test accuracy"),
    ):
        means = [summary[m][key][0] for m in METHODS]
        stds = [summary[m][key][1] for m in METHODS]
        ax.bar(range(len(METHODS)), means, yerr=stds, capsize=4, color="tab:blue")
        ax.set_xticks(range(len(METHODS)), METHODS, rotation=20, fontsize=8)
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
