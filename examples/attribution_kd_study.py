"""Does knowledge distillation make students explain themselves better? Beyond network dissection.

Han et al. (ICML 2023) supported "KD makes students more interpretable" with network dissection
and three attribution-based checks. This study extends the library's KD-vs-label-smoothing
dissection example (same teacher and student CNNs, same four training methods: scratch, label
smoothing 0.1, KD with T = 4 and alpha = 0.9, KD + attention transfer) to all of them, on three
synthetic tasks where the evidence is known, and adds the question distillation users ask: does
the student explain its decisions as the teacher does?

1. **Concepts** (``SyntheticConcepts``, 32 px, class = shape of the main object): accuracy,
   dissection detectors at the last conv block (``DissectionMonitor``), localisation of the
   loss-gradient map on the pixels of the class's shape.
2. **Cells** (``SyntheticCells``, Tjoa & Guan's ten classes): accuracy, soft five-band scores
   (56 threshold sets) of Saliency maps against the ground-truth heatmaps, localisation of the
   loss gradient on the class-specific part, and teacher-student agreement of Saliency maps
   (Spearman, top-10% IoU) logged during distillation by ``AttributionMonitor``.
3. **Digit blocks** (BlockMNIST-like, from scikit-learn's digits): accuracy, DiffROAR of the
   student's loss-gradient ranking (per pixel) at k = 0.1, 0.2, 0.5 (each fraction retrains
   fresh students on top-k and bottom-k masked data), localisation on the signal block.

Every number is a mean and standard deviation over seeds (the student's initialisation and
batch order; DiffROAR's retraining uses the same seed). Writes ``summary.png`` (and the
loss-gradient maps of the first seed) to ``--out``; ``--figure`` copies the summary elsewhere.

Run: PYTHONPATH=. python examples/attribution_kd_study.py            (full: 3 seeds)
     PYTHONPATH=. python examples/attribution_kd_study.py --quick    (under a minute, 1 seed)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import fill_defaults, int_at_most, output_dir, output_file, positive_int

# the students, teacher, training methods and loop of the dissection study
from dissection_kd_interpretability import (
    METHODS,
    CosineDistillation,
    accuracy,
    cnn,
    student_module,
    train,
)

from lightning_distill.attribution import attribute, diff_roar, loss_gradient
from lightning_distill.attribution.plotting import plot_attribution_maps
from lightning_distill.callbacks import AttributionMonitor, DissectionMonitor
from lightning_distill.datasets import DigitBlocks, SyntheticCells, SyntheticConcepts
from lightning_distill.functional import five_band_scores, localisation_score

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
warnings.filterwarnings("ignore", ".*sync_dist.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
# the "GPU available" banners and the litlogger tip between the table rows
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

TEACHER_WIDTHS, STUDENT_WIDTHS = (24, 48, 96), (16, 32, 64)
#: The summary figure draws the loss-gradient maps of at most this many test images.
PICTURE_ROWS = 2
QUICK = {
    "seeds": 1,
    "epochs": 2,
    "roar_epochs": 1,
    "roar_size": 400,
    "train_size": 300,
    "test_size": 200,
    "probe_size": 100,
}
NORMAL = {
    "seeds": 3,
    "epochs": 4,
    "roar_epochs": 2,
    "roar_size": 1258,
    "train_size": 1000,
    "test_size": 400,
    "probe_size": 300,
}
FRACTIONS = (0.1, 0.2, 0.5)
#: The summary figure's title in a --quick run.
QUICK_TITLE = (
    "--quick run: these numbers only show that the script runs, not what distillation does"
)


class Task:
    """Train / test / probe data of one task, as ``(images, targets)`` tensors and loaders."""

    def __init__(self, name, train_images, train_targets, test, classes, masks_of, batch_size=64):
        self.name, self.test, self.classes = name, test, classes
        self.train = TensorDataset(train_images, train_targets)
        self.indexed = TensorDataset(train_images, train_targets, torch.arange(len(train_targets)))
        self.batch_size = batch_size
        self.masks_of = masks_of  # test data -> [N, H, W] bool masks of the true evidence

    def loader(self, indexed: bool) -> DataLoader:
        return DataLoader(self.indexed if indexed else self.train, self.batch_size, shuffle=True)


def rgb(images: torch.Tensor) -> torch.Tensor:
    """Grey digit blocks as three equal channels, so that every task uses the same CNNs."""
    return images.expand(-1, 3, -1, -1).contiguous()


def build_tasks(args) -> dict[str, Task]:
    concepts_train = SyntheticConcepts(args.train_size, seed=0)
    concepts_test = SyntheticConcepts(args.test_size, seed=1)
    cells_train = SyntheticCells(args.train_size, image_size=args.cell_size, seed=0)
    cells_test = SyntheticCells(args.test_size, image_size=args.cell_size, seed=1)
    digits_train, digits_test = DigitBlocks("train"), DigitBlocks("test")
    digits_train.images, digits_test.images = rgb(digits_train.images), rgb(digits_test.images)
    return {
        "concepts": Task(
            "concepts",
            concepts_train.images,
            concepts_train.targets,
            concepts_test,
            len(concepts_train.class_names),
            # pixels of the class's shape (object label ids start at 1 for the first shape)
            lambda data: data.labels[:, 0] == 1 + data.targets[:, None, None],
        ),
        "cells": Task(
            "cells",
            cells_train.images,
            cells_train.targets,
            cells_test,
            10,
            lambda data: data.masks,
        ),
        "digits": Task(
            "digits",
            digits_train.images,
            digits_train.targets,
            digits_test,
            10,
            lambda data: data.masks,
        ),
    }


def in_batches(function, model, data, batch_size: int = 250) -> torch.Tensor:
    return torch.cat(
        [
            function(model, x, y)
            for x, y in zip(data.images.split(batch_size), data.targets.split(batch_size))
        ]
    )


def saliency(model, x, y):
    return attribute(model, x, y, "Saliency")


def evaluate(task: Task, model: nn.Module, args) -> dict[str, float]:
    """Accuracy and attribution scores of a trained model on the task's test data."""
    data = task.test
    row = {"accuracy": accuracy(model, data)}
    gradients = in_batches(loss_gradient, model, data)
    row["localisation"] = float(localisation_score(gradients, task.masks_of(data)).mean())
    if task.name == "cells":
        # blank cells have no evidence to find: the five-band scores are for the nine others
        keep = data.targets != data.class_names.index("blank")
        maps = in_batches(saliency, model, data)[keep]
        scores = five_band_scores(maps, data.heatmaps[keep], soft_steps=56)
        row.update({f"five_band_{k}": float(v.mean()) for k, v in scores.items()})
    return row


def roar(task: Task, model: nn.Module, seed: int, args) -> dict[str, float]:
    """DiffROAR of the student's loss-gradient ranking (per pixel) on the digit blocks."""
    train_images, train_targets = task.train.tensors
    train_images, train_targets = train_images[: args.roar_size], train_targets[: args.roar_size]
    data = task.test

    def per_pixel(images, targets):
        return torch.cat(
            [loss_gradient(model, x, y) for x, y in zip(images.split(250), targets.split(250))]
        )

    frame = diff_roar(
        lambda: cnn(STUDENT_WIDTHS, task.classes),
        (train_images, train_targets),
        (data.images, data.targets),
        attribution=(per_pixel(train_images, train_targets), per_pixel(data.images, data.targets)),
        fractions=FRACTIONS,
        seeds=[seed],
        epochs=args.roar_epochs,
        lr=3e-3,
        mask_control=args.mask_control,
    )
    row = {f"diff_roar_{k}": float(v) for k, v in zip(frame.fraction, frame.diff_roar)}
    if args.mask_control:
        # how far the kept pattern alone names the class (chance 0.1): the arms' mean
        patterns = (frame.top_mask_accuracy + frame.bottom_mask_accuracy) / 2
        row.update({f"roar_pattern_{k}": float(v) for k, v in zip(frame.fraction, patterns)})
    return row


def run_task(task: Task, args, rows: dict, start: float, pictures: dict) -> None:
    torch.manual_seed(0)
    teacher = cnn(TEACHER_WIDTHS, task.classes)
    train(
        CosineDistillation(teacher, None, alpha=0.0, lr=3e-3), task.loader(False), args.epochs + 4
    )
    teacher_row = evaluate(task, teacher, args)
    rows[("teacher", task.name)].append(teacher_row)
    print(f"[{task.name}] teacher: {fmt(teacher_row)} ({time.perf_counter() - start:.0f} s)")
    if task.name == "cells":
        pictures["images"] = task.test.images[: args.picture_images]
        pictures["maps"] = {}
    for seed in range(args.seeds):
        for method in METHODS:
            torch.manual_seed(100 + seed)
            student = cnn(STUDENT_WIDTHS, task.classes)
            module = student_module(method, student, teacher, lr=3e-3)
            callbacks = []
            if task.name == "concepts":
                dissection = DissectionMonitor(
                    DataLoader(SyntheticConcepts(args.probe_size, seed=2), batch_size=200),
                    "student.features.relu3",
                    every_n_epochs=args.epochs,
                )
                callbacks.append(dissection)
            agreement = AttributionMonitor(
                DataLoader(task.test, batch_size=200),
                metrics=["agreement"],
                module="student",
                teacher=teacher,
                every_n_epochs=args.epochs,
            )
            callbacks.append(agreement)
            train(module, task.loader(module.hparams.cache_teacher), args.epochs, callbacks)
            row = evaluate(task, student, args)
            row.update(
                {f"agreement_{k}": v for k, v in agreement.history[-1].items() if k != "epoch"}
            )
            if task.name == "concepts":
                row["detectors"] = dissection.last_results.num_detectors
            if task.name == "digits":
                row.update(roar(task, student, seed, args))
            rows[(method, task.name)].append(row)
            if task.name == "cells" and seed == 0:
                x = pictures["images"]
                y = task.test.targets[: len(x)]
                pictures["maps"][method] = loss_gradient(student, x, y)
            print(
                f"[{task.name}] seed {seed} {method:>16}: {fmt(row)} "
                f"({time.perf_counter() - start:.0f} s)"
            )


def fmt(row: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())


def summarise(rows: dict) -> dict:
    summary = {}
    for key, found in rows.items():
        if not found:
            continue
        names = found[0].keys()
        summary[key] = {
            name: (
                float(np.mean([r[name] for r in found])),
                float(np.std([r[name] for r in found])),
            )
            for name in names
        }
    return summary


COLUMNS = {
    "concepts": ["accuracy", "detectors", "localisation", "agreement_spearman"],
    "cells": [
        "accuracy",
        "five_band_precision",
        "five_band_recall",
        "five_band_pixel_accuracy",
        "localisation",
        "agreement_spearman",
        "agreement_top_k_iou",
    ],
    "digits": [
        "accuracy",
        *(f"diff_roar_{k}" for k in FRACTIONS),
        "localisation",
        "agreement_spearman",
    ],
}


def print_tables(summary: dict, seeds: int) -> None:
    for task, columns in COLUMNS.items():
        # the pattern controls of a --mask-control run, after the task's own columns
        extra = {k for (_, t), stats in summary.items() if t == task for k in stats}
        columns = columns + sorted(k for k in extra if k.startswith("roar_pattern_"))
        print(f"\n{task}: mean (std) over {seeds} seed(s)")
        # each column as wide as its name (at least 18), so that no header is cut
        widths = [max(18, len(c)) for c in columns]
        print(f"{'':>16}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
        for method in ("teacher", *METHODS):
            stats = summary.get((method, task))
            if stats is None:
                continue
            cells = [
                f"{stats[c][0]:8.3f} ({stats[c][1]:.3f})" if c in stats else f"{'-':>18}"
                for c in columns
            ]
            print(f"{method:>16}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))


def quick_note(args: argparse.Namespace) -> str:
    """What a --quick run's tables are (they look like results) and what a full run takes."""
    seeds = f"{args.seeds} seed{'s' if args.seeds > 1 else ''}"
    return (
        f"--quick ({seeds}, {args.epochs} epochs, {args.train_size} training images per task): "
        "the models are trained too little (most stay near chance), so these numbers only "
        "show that the script runs, not what distillation does. A full run "
        f"(without --quick: {NORMAL['seeds']} seeds, {NORMAL['epochs']} epochs, "
        f"{NORMAL['train_size']} training images per task) took 3 min 51 s with one torch "
        "thread on a 2-core machine (2026-12-05)."
    )


def plot_summary(summary: dict, pictures: dict, path: Path, heading: str | None = None) -> None:
    from matplotlib.figure import Figure

    panels = [
        ("concepts", "detectors", "dissection: detector units (of 64)"),
        ("cells", "five_band_precision", "cells: soft five-band precision"),
        ("cells", "localisation", "cells: loss-gradient mass on the part"),
        ("digits", "diff_roar_0.2", "digit blocks: DiffROAR at k = 0.2"),
        ("cells", "agreement_spearman", "cells: Spearman with the teacher"),
        ("concepts", "accuracy", "concepts: test accuracy"),
    ]
    figure = Figure(figsize=(13, 8.4), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.25, 1])
    axes = top.subplots(2, 3)
    colors = ["tab:gray", "tab:orange", "tab:blue", "tab:green"]
    for ax, (task, key, title) in zip(axes.flat, panels):
        means = [summary[(m, task)][key][0] for m in METHODS]
        stds = [summary[(m, task)][key][1] for m in METHODS]
        ax.bar(range(len(METHODS)), means, yerr=stds, capsize=4, color=colors)
        teacher = summary.get(("teacher", task), {}).get(key)
        if teacher is not None and key != "agreement_spearman":
            ax.axhline(teacher[0], color="black", ls="--", lw=1, label="teacher")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(range(len(METHODS)), METHODS, rotation=15, fontsize=8)
        ax.set_title(title, fontsize=9)
    if pictures.get("maps"):
        names = list(pictures["maps"])
        bottom_axes = bottom.subplots(min(len(pictures["images"]), PICTURE_ROWS), 1 + len(names))
        # results saved before --picture-images was capped may hold more images than are drawn
        images = pictures["images"][:PICTURE_ROWS]
        maps = {name: value[:PICTURE_ROWS] for name, value in pictures["maps"].items()}
        plot_attribution_maps(images, maps, axes=bottom_axes)
        bottom.suptitle(
            "loss-gradient maps |∇x CE| of the students (first seed), cells", fontsize=9
        )
    if heading is not None:
        figure.suptitle(heading, color="tab:red")
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 seed, small data (under a minute); changes only the defaults of the options "
        "below that are not given",
    )
    counts = (
        ("--seeds", "seeds"),
        ("--epochs", "epochs per student"),
        ("--roar-epochs", "epochs of each DiffROAR model"),
        ("--roar-size", "digit blocks for DiffROAR"),
        ("--train-size", "training images per task"),
        ("--test-size", "test images per task"),
        ("--probe-size", "dissection probe images"),
    )
    for flag, what in counts:
        name = flag[2:].replace("-", "_")
        parser.add_argument(
            flag,
            type=positive_int,
            default=None,
            metavar="N",
            help=f"{what}, >= 1 (default: {NORMAL[name]}; --quick: {QUICK[name]})",
        )
    parser.add_argument(
        "--cell-size", type=positive_int, default=32, help="cell image size (default: 32)"
    )
    parser.add_argument(
        "--picture-images",
        type=int_at_most(PICTURE_ROWS),
        default=PICTURE_ROWS,
        metavar="N",
        help=f"test images whose maps the figure draws, 1 to {PICTURE_ROWS} (default: "
        f"{PICTURE_ROWS})",
    )
    parser.add_argument("--out", type=Path, default=Path("out/attribution_kd_study"))
    parser.add_argument(
        "--figure", type=Path, default=None, help="also save the summary here (folder created)"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help=">= 1 (default: 1)")
    parser.add_argument(
        "--mask-control",
        action="store_true",
        help="also train DiffROAR's pattern controls (twice its cost): roar_pattern_k is the "
        "accuracy of models given the kept pattern alone (chance 0.1), the label it leaks",
    )
    parser.add_argument(
        "--from-results", type=Path, default=None, help="tables and figure of a saved run only"
    )
    args = parser.parse_args()
    # --quick changes the defaults only: a flag given explicitly wins
    fill_defaults(args, QUICK if args.quick else NORMAL)
    if args.from_results is not None and not args.from_results.is_file():
        parser.error(f"--from-results: {str(args.from_results)!r} is not a file (a results.pt)")
    if args.from_results is None and args.test_size < args.picture_images:
        parser.error(
            f"--picture-images ({args.picture_images}) must not exceed --test-size "
            f"({args.test_size})"
        )
    output_dir(parser, args.out, "--out")
    if args.figure is not None:
        output_file(parser, args.figure, "--figure")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.from_results is None:
        tasks = build_tasks(args)
        print(f"data ready ({time.perf_counter() - start:.0f} s)")
        rows = {(m, t): [] for m in ("teacher", *METHODS) for t in tasks}
        pictures: dict = {}
        for task in tasks.values():
            run_task(task, args, rows, start, pictures)
        note = quick_note(args) if args.quick else None
        torch.save(
            {"rows": rows, "pictures": pictures, "seeds": args.seeds, "note": note},
            args.out / "results.pt",
        )
    else:
        saved = torch.load(args.from_results, weights_only=False)
        rows, pictures, args.seeds = saved["rows"], saved["pictures"], saved["seeds"]
        note = saved.get("note")  # results saved before the note was kept have none
    summary = summarise(rows)
    if note is not None:
        print(f"\n{note}")
    print_tables(summary, args.seeds)
    heading = None if note is None else QUICK_TITLE
    plot_summary(summary, pictures, args.out / "summary.png", heading)
    if args.figure is not None:
        plot_summary(summary, pictures, args.figure, heading)
    print(f"\npictures in {args.out}/; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
