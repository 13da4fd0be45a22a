"""Speed and peak memory of NetworkDissection against a plain reference, at three data set sizes.

The *reference* is the direct way of computing network dissection: keep every activation of
the probe set, take exact per-unit quantiles (``torch.quantile``), then tally with one pass per
label. The *metric* is :class:`lightning_distill.metrics.NetworkDissection`: a fixed-size
histogram for the thresholds and fixed-size tallies, so its memory should not grow with the
number of images.

Each (method, size) runs in a fresh subprocess; peak memory is the growth of the process's peak
resident set size over its size right before the run (``ru_maxrss``). Throughput counts images
through both passes (thresholds and tallies) per second of metric work, excluding data
generation. Activations are ``[B, 64, 8, 8]`` floats, labels ``[B, 3, 32, 32]`` from the
synthetic concept images (a pool of 256, cycled).

Run: PYTHONPATH=. python benchmarks/dissection.py                   (about 3-5 minutes)
     PYTHONPATH=. python benchmarks/dissection.py --sizes 256 1024     (quick)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

UNITS, MAP, BATCH = 64, 8, 128


def batches(size: int, pool):
    """Deterministic ``(activations, labels, image_labels)`` batches of a probe set."""
    import torch

    for start in range(0, size, BATCH):
        count = min(BATCH, size - start)
        generator = torch.Generator().manual_seed(start)
        activations = torch.relu(torch.randn(count, UNITS, MAP, MAP, generator=generator))
        index = torch.arange(start, start + count) % len(pool)
        yield activations, pool.labels[index], pool.image_labels[index]


def run_metric(size: int, pool) -> float:
    from lightning_distill.metrics import NetworkDissection

    metric = NetworkDissection(UNITS, pool.label_names, pool.label_categories)
    elapsed = 0.0
    for activations, _, _ in batches(size, pool):
        start = time.perf_counter()
        metric.update(activations)
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    metric.compute_thresholds()
    elapsed += time.perf_counter() - start
    for activations, labels, image_labels in batches(size, pool):
        start = time.perf_counter()
        metric.update(activations, labels, image_labels)
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    metric.compute()
    return elapsed + time.perf_counter() - start


def run_reference(size: int, pool) -> float:
    import torch
    import torch.nn.functional as F

    num_labels = len(pool.label_names)
    categories = sorted(set(pool.label_categories[1:]))
    category = torch.tensor([-1] + [categories.index(c) for c in pool.label_categories[1:]])
    elapsed = 0.0
    kept = []
    for activations, _, _ in batches(size, pool):
        start = time.perf_counter()
        kept.append(activations.clone())
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    everything = torch.cat(kept).transpose(0, 1).reshape(UNITS, -1)
    # torch.quantile is limited to 2**24 values per call: one unit at a time
    thresholds = torch.stack([torch.quantile(everything[u].double(), 0.995) for u in range(UNITS)])
    del everything
    elapsed += time.perf_counter() - start
    intersection = torch.zeros(UNITS, num_labels)
    mask_area = torch.zeros(UNITS, len(categories))
    label_area = torch.zeros(num_labels)
    for b, (_, labels, image_labels) in enumerate(batches(size, pool)):
        start = time.perf_counter()
        height, width = labels.shape[-2:]
        maps = F.interpolate(kept[b], size=(height, width), mode="bilinear", align_corners=False)
        masks = (maps > thresholds.view(1, -1, 1, 1)).float()  # [B, U, H, W]
        present = torch.zeros(len(labels), num_labels, dtype=torch.bool)
        concept_masks = {}
        for c in range(1, num_labels):
            concept = (labels == c).any(1) | (image_labels == c).any(1).view(-1, 1, 1)
            concept_masks[c] = concept.float()
            present[:, c] = concept.flatten(1).any(1)
        for k in range(len(categories)):
            annotated = present[:, category == k].any(1).float()  # [B]
            mask_area[:, k] += (masks.sum((2, 3)) * annotated[:, None]).sum(0)
        for c, concept in concept_masks.items():
            intersection[:, c] += (masks * concept[:, None]).sum((0, 2, 3))
            label_area[c] += concept.sum()
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    union = mask_area[:, category.clamp(min=0)] + label_area - intersection
    iou = torch.where(union > 0, intersection / union.clamp(min=1), 0.0)
    int((iou[:, 1:].max(1).values >= 0.04).sum())
    return elapsed + time.perf_counter() - start


def worker(method: str, size: int) -> None:
    import torch

    from lightning_distill.datasets import SyntheticConcepts

    torch.set_num_threads(1)
    pool = SyntheticConcepts(256, seed=0)
    # warm up the code paths so that lazy initialisation does not count as data-set memory
    (run_metric if method == "metric" else run_reference)(BATCH, pool)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = (run_metric if method == "metric" else run_reference)(size, pool)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_growth_mib": (peak - before) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    print(
        f"activations [*, {UNITS}, {MAP}, {MAP}], labels [*, 3, 32, 32], batches of {BATCH}, "
        "one thread; peak = growth of peak RSS during the run"
    )
    header = (
        f"{'images':>7} | {'metric img/s':>12} {'peak MiB':>9} | {'reference img/s':>15} "
        f"{'peak MiB':>9} | {'speed ratio':>11}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        found = {}
        for method in ("metric", "reference"):
            output = subprocess.run(
                [sys.executable, __file__, "--worker", method, str(size)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            found[method] = json.loads(output.strip().splitlines()[-1])
        metric, reference = found["metric"], found["reference"]
        print(
            f"{size:>7} | {size / metric['seconds']:>12.0f} {metric['peak_growth_mib']:>9.1f} | "
            f"{size / reference['seconds']:>15.0f} {reference['peak_growth_mib']:>9.1f} | "
            f"{reference['seconds'] / metric['seconds']:>10.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
