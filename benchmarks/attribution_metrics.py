"""Cost of the attribution metrics beside the Captum attribution they score; DiffROAR's cost.

1. Per batch of synthetic cells: the update of FiveBandScore (soft sweep, 56 threshold sets),
   AttributionLocalisation and AttributionAgreement together, against the Captum attribution
   of the batch (Saliency: one backward pass, the cheapest method, so the strictest baseline;
   IntegratedGradients with its default 50 steps, a batch at a time, for scale). The agreement
   reads the teacher's Saliency too (CNN 24-48-96), timed as well. Baseline and candidate alternate
   within every round; the medians of the rounds' process CPU times are compared (the machine
   may be shared). Target: metrics <= 10% of the Saliency time.
2. DiffROAR on the digit blocks: wall time of every (fraction, seed), i.e. of training and
   testing its two fresh models (top-k and bottom-k), which is all of its cost.

Run: PYTHONPATH=. python benchmarks/attribution_metrics.py [--rounds 15] [--image-size 64]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
# the student CNN of the dissection and attribution studies
from dissection_kd_interpretability import cnn

from lightning_distill.attribution import attribute, diff_roar
from lightning_distill.datasets import DigitBlocks, SyntheticCells
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore

warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def cpu_seconds(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def metric_overhead(args) -> None:
    cells = SyntheticCells(args.batch_size, image_size=args.image_size, seed=0)
    torch.manual_seed(0)
    student, teacher = cnn((16, 32, 64), 10).eval(), cnn((24, 48, 96), 10).eval()
    x, y = cells.images, cells.targets
    teacher_maps = attribute(teacher, x, y, "Saliency")
    five, local, agree = (
        FiveBandScore(soft_steps=56),
        AttributionLocalisation(),
        AttributionAgreement(),
    )

    def saliency():
        return attribute(student, x, y, "Saliency")

    def teacher_saliency():
        return attribute(teacher, x, y, "Saliency")

    def integrated():
        return attribute(student, x, y, "IntegratedGradients", internal_batch_size=len(x))

    maps = saliency()

    def metrics():
        five.update(maps, cells.heatmaps)
        local.update(maps, cells.masks)
        agree.update(teacher_maps, maps)

    for warm in (saliency, teacher_saliency, metrics, integrated):
        warm()
    times = {"saliency": [], "teacher saliency": [], "integrated gradients": [], "metrics": []}
    for _ in range(args.rounds):
        times["saliency"].append(cpu_seconds(saliency))
        times["teacher saliency"].append(cpu_seconds(teacher_saliency))
        times["metrics"].append(cpu_seconds(metrics))
        if len(times["integrated gradients"]) < max(3, args.rounds // 5):
            times["integrated gradients"].append(cpu_seconds(integrated))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"batch of {args.batch_size} cells {args.image_size}x{args.image_size}, student CNN "
        f"16-32-64, {args.rounds} rounds, process CPU time, median per batch:"
    )
    for name, value in medians.items():
        print(f"  {name:>22}: {1000 * value:8.2f} ms")
    ratio = medians["metrics"] / medians["saliency"]
    print(
        f"  metrics / Saliency = {ratio:.3f} (target <= 0.10); per round: "
        + " ".join(f"{m / s:.3f}" for m, s in zip(times["metrics"], times["saliency"]))
    )
    both = medians["saliency"] + medians["teacher saliency"]
    print(
        f"  metrics / (student + teacher Saliency, the maps the three metrics read) = "
        f"{medians['metrics'] / both:.3f}"
    )
    print(
        f"  metrics / IntegratedGradients = {medians['metrics'] / medians['integrated gradients']:.4f}"
    )


def diff_roar_cost(args) -> None:
    train, test = DigitBlocks("train"), DigitBlocks("test")
    rgb = [d.images.expand(-1, 3, -1, -1).contiguous() for d in (train, test)]
    print(
        f"\nDiffROAR on the digit blocks ({len(train)} train / {len(test)} test images 32x16), "
        f"fresh student CNNs, {args.roar_epochs} epochs each (Adam, lr 3e-3), random control:"
    )
    for seed in range(args.roar_seeds):
        for fraction in (0.1, 0.2, 0.5):
            start = time.perf_counter()
            frame = diff_roar(
                lambda: cnn((16, 32, 64), 10),
                (rgb[0], train.targets),
                (rgb[1], test.targets),
                attribution="random",
                fractions=[fraction],
                seeds=[seed],
                epochs=args.roar_epochs,
                lr=3e-3,
            )
            seconds = time.perf_counter() - start
            print(
                f"  fraction {fraction:.1f} seed {seed}: {seconds:6.1f} s wall "
                f"(two trainings); accuracy top-k {frame.top_accuracy.iloc[0]:.3f}, bottom-k "
                f"{frame.bottom_accuracy.iloc[0]:.3f}, diff_roar {frame.diff_roar.iloc[0]:+.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--roar-seeds", type=int, default=2)
    parser.add_argument("--roar-epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    metric_overhead(args)
    diff_roar_cost(args)


if __name__ == "__main__":
    main()
