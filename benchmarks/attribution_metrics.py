"""Cost of the attribution metrics beside the Captum attribution they score; DiffROAR's cost.

0. The target's figure, in one run of ``AttributionMonitor.evaluate`` (the library's own use of
   the three metrics): a probe of synthetic cells, a student and its teacher, Saliency, all three
   metrics (five-band with the reference's soft sweep of 56 threshold sets). Inside that run the
   process CPU time of every Captum attribution call (the student's maps, which all three metrics
   read, and the teacher's, which the agreement reads) and of every metric update is added up;
   target: updates <= 10% of the attributions, per batch. Run ``--rounds`` times; the medians of
   the runs' per-batch times are reported, with each run's ratio. The teacher is a CNN 24-48-96
   (``--teacher larger``), of the student's own widths (``--teacher same``), or absent
   (``--teacher none``: no agreement, one attribution call a batch).
1. Per batch of synthetic cells: the update of FiveBandScore (soft sweep, 56 threshold sets),
   AttributionLocalisation and AttributionAgreement together, against the Captum attribution
   of the batch (Saliency: one backward pass, the cheapest method, so the strictest baseline;
   IntegratedGradients with its default 50 steps, a batch at a time, for scale). The agreement
   reads the teacher's Saliency too (CNN 24-48-96), timed as well. Baseline and candidate alternate
   within every round; the medians of the rounds' process CPU times are compared (the machine
   may be shared): the parts of figure 0, and stricter readings of it (the metrics against the
   student's Saliency alone, and each metric against the maps it reads).
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
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
# the student CNN of the dissection and attribution studies
from dissection_kd_interpretability import cnn

import lightning_distill.attribution.monitor as monitor_module
from lightning_distill.attribution import AttributionMonitor, attribute, diff_roar
from lightning_distill.datasets import DigitBlocks, SyntheticCells
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore

warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def cpu_seconds(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


class Timed:
    """Process CPU time of every call of ``function``, added up (``total``) and counted."""

    def __init__(self, function):
        self.function, self.total, self.calls = function, 0.0, 0

    def __call__(self, *args, **kwargs):
        start = time.process_time()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.total += time.process_time() - start
            self.calls += 1


#: ``--teacher``: the CNN widths of the monitor's teacher (None: no teacher, so no agreement)
TEACHERS = {"larger": (24, 48, 96), "same": (16, 32, 64), "none": None}


def monitor_run(args) -> None:
    """The target's figure: attributions and metric updates inside the monitor's own run."""
    torch.manual_seed(0)
    pair = nn.Module()
    pair.student = cnn((16, 32, 64), 10)
    widths = TEACHERS[args.teacher]
    if widths is not None:  # no teacher: no agreement, one attribution a batch
        pair.teacher = cnn(widths, 10)
    per_batch = 1 if widths is None else 2
    probe = DataLoader(
        SyntheticCells(args.probe_batches * args.batch_size, image_size=args.image_size, seed=0),
        batch_size=args.batch_size,
    )
    monitor = AttributionMonitor(probe, module="student", five_band_kwargs={"soft_steps": 56})
    metrics = (monitor._five_band, monitor._localisation, monitor._agreement)
    original = monitor_module.attribute
    attributions = monitor_module.attribute = Timed(original)
    updates = []
    for metric in metrics:  # the update torchmetrics wraps, timed as a whole
        updates.append(Timed(metric.update))
        metric.update = updates[-1]
    try:
        monitor.evaluate(pair)  # warm-up
        rounds = []
        for _ in range(args.rounds):
            for timer in (attributions, *updates):
                timer.total, timer.calls = 0.0, 0
            start = time.process_time()
            scores = monitor.evaluate(pair)
            whole = time.process_time() - start
            batches = updates[0].calls
            assert attributions.calls == per_batch * batches, "a student (and teacher) call a batch"
            metric_time = sum(timer.total for timer in updates)
            rounds.append((attributions.total / batches, metric_time / batches, whole / batches))
    finally:
        monitor_module.attribute = original
    attribution_ms, metric_ms, whole_ms = (
        1000 * statistics.median(r[i] for r in rounds) for i in range(3)
    )
    ratio = metric_ms / attribution_ms
    teacher = "no teacher" if widths is None else "teacher " + "-".join(map(str, widths))
    metrics = "five-band (56 threshold sets) + localisation"
    metrics += "" if widths is None else " + agreement"
    print(
        f"AttributionMonitor.evaluate: probe of {args.probe_batches} batches of "
        f"{args.batch_size} cells {args.image_size}x{args.image_size}, Saliency, student CNN "
        f"16-32-64, {teacher}, {metrics}; {args.rounds} runs, process CPU time per batch "
        "(median of the runs):"
    )
    calls = "student Saliency" if widths is None else "student + teacher Saliency"
    print(f"  {f'attributions ({calls}):':43}{attribution_ms:8.2f} ms")
    print(f"  {'metric updates:':43}{metric_ms:8.2f} ms")
    print(f"  {'the whole evaluation:':43}{whole_ms:8.2f} ms")
    verdict = "meets" if ratio <= 0.10 else "MISSES"
    print(
        f"  metrics / attributions = {ratio:.3f}: {verdict} the <= 0.10 target; per run: "
        + " ".join(f"{m / a:.3f}" for a, m, _ in rounds)
    )
    print(f"  (scores of the last run: {', '.join(f'{k} {v:.3f}' for k, v in scores.items())})\n")


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
        f"The parts, alone: batch of {args.batch_size} cells {args.image_size}x"
        f"{args.image_size}, student CNN 16-32-64, {args.rounds} rounds, process CPU time, "
        "median per batch:"
    )
    for name, value in medians.items():
        print(f"  {name:>22}: {1000 * value:8.2f} ms")
    ratio = medians["metrics"] / medians["saliency"]
    print(
        f"  metrics / student Saliency = {ratio:.3f} (a stricter reading: the teacher's "
        "maps the agreement needs left out of the attribution time); per round: "
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
    parser.add_argument("--probe-batches", type=int, default=4)
    parser.add_argument(
        "--teacher", choices=list(TEACHERS), default="larger", help="the monitor's teacher"
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--roar-seeds", type=int, default=2)
    parser.add_argument("--roar-epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    monitor_run(args)
    metric_overhead(args)
    diff_roar_cost(args)


if __name__ == "__main__":
    main()
