"""Speed and peak memory of network dissection against plain references.

Part "end-to-end" (see ``end_to_end``): ``DissectionMonitor.dissect`` on a small CNN and a
Broden-format folder written here (200 images), against a plain one-forward reference written
here with NetDissect-Lite's strategy (run the network once, keep every map, exact quantiles,
then tally), with and without the metric's map cache; process CPU time, wall time, peak memory,
and how far the results are apart. Also the threshold states of a 2,048-unit layer and what
float16 maps would change.

Part "scaling", at three data set sizes: the *reference* is the direct way of computing
network dissection: keep every activation of the probe set, take exact per-unit quantiles
(``torch.quantile``), then tally with one pass per label. The *metric* is
:class:`lightning_distill.metrics.NetworkDissection` without its cache (``cache_bytes=0``): a
fixed-size histogram for the thresholds (two passes: coarse, then fine) and fixed-size tallies,
so its memory should not grow with the number of images.

Each (method, size) runs in a fresh subprocess; peak memory is the growth of the process's peak
resident set size over its size right before the run (``ru_maxrss``). Throughput counts images
through both passes (thresholds and tallies) per second of metric work, excluding data
generation. Activations are ``[B, 64, 8, 8]`` floats, labels ``[B, 3, 32, 32]`` from the
synthetic concept images (a pool of 256, cycled).

Part "ties": the masks of the tally (``_upsampled_above``: float32 interpolation, maps with a
pixel within float32 rounding of their threshold, on either side, interpolated again in
float64, ties not above) against the plain exact way (every map interpolated in float64, ties
not above), on ReLU maps at even and odd upsampling factors, dense (0.995 quantile) and sparse
(threshold 0), and on signed maps (a layer before its ReLU) at the 0.995 quantile and at the
median: CPU time of each, the ratio, and whether the masks are equal.

Run: PYTHONPATH=. python benchmarks/dissection.py                   (about 10 minutes)
     PYTHONPATH=. python benchmarks/dissection.py --parts ties                      (seconds)
     PYTHONPATH=. python benchmarks/dissection.py --parts end-to-end --rounds 5
     PYTHONPATH=. python benchmarks/dissection.py --parts scaling --sizes 256 1024     (quick)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import OrderedDict

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

    # no cache: memory stays flat, and the thresholds take a second (refine) pass
    metric = NetworkDissection(UNITS, pool.label_names, pool.label_categories, cache_bytes=0)
    elapsed = 0.0
    for _ in range(2):
        for activations, _, _ in batches(size, pool):
            start = time.perf_counter()
            metric.update(activations)
            elapsed += time.perf_counter() - start
        start = time.perf_counter()
        done = metric.compute_thresholds() is not None
        elapsed += time.perf_counter() - start
        if done:
            break
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


# ---------------------------------------------------------------- end to end on Broden-format data
# A plain one-forward reference (NetDissect-Lite's strategy: run the network once, keep every map,
# exact quantiles, then tally) against DissectionMonitor.dissect, on the same model, layer and
# Broden-format folder written here. Each (method, layer) runs in a fresh subprocess.

IMAGES, IMAGE_SIZE, LABEL_SIZE, E2E_BATCH = 200, 112, 56, 50
LAYERS = {"conv2": "32 units, 28x28", "conv4": "64 units, 7x7"}
COLORS, OBJECTS, PARTS, SCENES = range(1, 6), range(6, 14), range(14, 19), range(19, 23)


def write_broden(root) -> None:
    """A Broden-format folder: color, object and part label PNGs, a scene per image."""
    import csv
    from pathlib import Path

    import numpy as np
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)

    def write(name, header, rows):
        with open(root / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)

    groups = {"color": COLORS, "object": OBJECTS, "part": PARTS, "scene": SCENES}
    labels = [("0", "-", "", 0, 0, "")]
    for category, numbers in groups.items():
        labels += [(n, f"{category}{n}", f"{category}(1)", 1, 0.1, "") for n in numbers]
    write("label.csv", ["number", "name", "category", "frequency", "coverage", "syns"], labels)
    write(
        "category.csv",
        ["name", "first", "last", "count", "frequency"],
        [(c, min(n), max(n), len(n), IMAGES) for c, n in groups.items()],
    )
    rng = np.random.default_rng(0)
    rows = []
    for i in range(IMAGES):
        image = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        entry = [f"im{i}.png", "train", IMAGE_SIZE, IMAGE_SIZE, LABEL_SIZE, LABEL_SIZE]
        for category in ("color", "object", "part"):
            ids = np.zeros((LABEL_SIZE, LABEL_SIZE), dtype=np.int64)
            for _ in range(3):  # a few rectangles per category, painted into the image too
                y, x = rng.integers(0, LABEL_SIZE - 8, 2)
                h, w = rng.integers(8, LABEL_SIZE // 2, 2)
                label = int(rng.choice(groups[category]))
                ids[y : y + h, x : x + w] = label
                image[2 * y : 2 * (y + h), 2 * x : 2 * (x + w), label % 3] = 40 * (label % 6)
            rgb = np.zeros((LABEL_SIZE, LABEL_SIZE, 3), dtype=np.uint8)
            rgb[..., 0], rgb[..., 1] = ids % 256, ids // 256
            Image.fromarray(rgb).save(root / "images" / f"im{i}_{category}.png")
            entry.append(f"im{i}_{category}.png")
        entry.append(str(int(rng.choice(groups["scene"]))))
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        rows.append(entry)
    header = ["image", "split", "ih", "iw", "sh", "sw", "color", "object", "part", "scene"]
    write("index.csv", header, rows)


def make_model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU()),
            conv2=nn.Sequential(nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU()),  # 28x28
            conv3=nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU()),
            conv4=nn.Sequential(nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2)),  # 7x7
        )
    ).eval()


def reference_dissect(model, loader, layer, quantile=0.995, iou_threshold=0.04):
    """Plain one-forward dissection: keep every map and label, exact quantiles, then tally."""
    import torch
    import torch.nn.functional as F

    from lightning_distill import FeatureHooks

    dataset = loader.dataset
    num_labels = len(dataset.label_names)
    categories = dataset.categories
    category = torch.tensor(
        [categories.index(c) if c else -1 for c in dataset.label_categories], dtype=torch.long
    )
    maps, labels, image_labels = [], [], []
    with torch.no_grad(), FeatureHooks(model, [layer], detach=True) as hooks:
        for batch in loader:  # the only pass over the data and the only forward
            model(batch["image"])
            maps.append(hooks[layer].clone())
            labels.append(batch["labels"])
            image_labels.append(batch["image_labels"])
    maps, labels, image_labels = torch.cat(maps), torch.cat(labels), torch.cat(image_labels)
    units = maps.shape[1]
    values = maps.transpose(0, 1).reshape(units, -1)
    step = max(1, 2**24 // values.shape[1])  # torch.quantile takes 2**24 values per call
    thresholds = torch.cat(
        [torch.quantile(values[u : u + step], quantile, dim=1) for u in range(0, units, step)]
    )
    intersection = torch.zeros(units * num_labels, dtype=torch.long)
    mask_area = torch.zeros(units, len(categories), dtype=torch.long)
    label_area = torch.zeros(num_labels, dtype=torch.long)
    height, width = labels.shape[-2:]
    for start in range(0, len(maps), E2E_BATCH):
        up = F.interpolate(
            maps[start : start + E2E_BATCH], (height, width), mode="bilinear", align_corners=False
        )
        mask = up > thresholds.view(1, -1, 1, 1)  # [B, U, H, W]
        lab = labels[start : start + E2E_BATCH]
        img = image_labels[start : start + E2E_BATCH]
        b, u, y, x = mask.nonzero(as_tuple=True)
        for k in range(lab.shape[1]):  # the data's layers never repeat a label at a pixel
            hit = lab[b, k, y, x]
            intersection += torch.bincount(u * num_labels + hit, minlength=units * num_labels)
        counts = mask.sum((2, 3))  # [B, U]
        present = torch.zeros(len(lab), num_labels, dtype=torch.long)
        present.scatter_(1, lab.flatten(1), 1)
        image_present = torch.zeros_like(present).scatter_(1, img, 1)
        present, image_present = present | image_present, image_present
        present[:, 0] = image_present[:, 0] = 0
        intersection += (counts.T @ image_present).flatten()
        label_area += torch.bincount(lab.flatten(), minlength=num_labels)
        label_area += image_present.sum(0) * height * width
        for c in range(len(categories)):
            annotated = present[:, category == c].any(1).long()
            mask_area[:, c] += counts.T @ annotated
    label_area[0] = 0
    intersection = intersection.view(units, num_labels)
    union = mask_area[:, category.clamp(min=0)] + label_area - intersection
    iou = torch.where(union > 0, intersection / union.clamp(min=1), 0.0)
    iou[:, 0] = 0
    iou[:, category < 0] = 0
    best, concept = iou[:, 1:].max(1)
    return thresholds.double(), best.double(), concept + 1, int((best >= iou_threshold).sum())


def monitor_dissect(model, loader, layer, cache_bytes):
    from lightning_distill.callbacks import DissectionMonitor

    monitor = DissectionMonitor(loader, layer, metric_kwargs={"cache_bytes": cache_bytes})
    results = monitor.dissect(model)
    units = results.units
    import torch

    return (
        torch.tensor(units["threshold"].to_numpy()),
        torch.tensor(units["iou"].to_numpy()),
        # a unit that overlaps no concept has none: label 0 (unlabelled)
        torch.tensor(
            [
                [
                    loader.dataset.label_names.index(c) if isinstance(c, str) else 0
                    for c in units["concept"]
                ]
            ]
        ),
        results.num_detectors,
    )


def e2e_worker(method: str, layer: str, root: str, out: str) -> None:
    import torch
    from torch.utils.data import DataLoader, Subset

    from lightning_distill.datasets import BrodenDataset

    torch.set_num_threads(1)
    model = make_model()
    dataset = BrodenDataset(root)

    def run(data):
        loader = DataLoader(data, batch_size=E2E_BATCH)
        if method == "reference":
            return reference_dissect(model, loader, layer)
        cache_bytes = 0 if method == "monitor, no cache" else 2**29
        return monitor_dissect(model, loader, layer, cache_bytes)

    small = Subset(dataset, range(2))
    small.label_names, small.label_categories = dataset.label_names, dataset.label_categories
    small.categories = dataset.categories
    run(small)  # warm up on two images: lazy initialisation is not the method's memory
    sampler = RssPeak()
    cpu, wall = time.process_time(), time.perf_counter()
    thresholds, iou, concept, detectors = run(dataset)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    growth = sampler.stop()
    torch.save(
        {
            "thresholds": thresholds,
            "iou": iou,
            "concept": concept.flatten(),
            "detectors": detectors,
        },
        out,
    )
    print(json.dumps({"cpu": cpu, "wall": wall, "peak_growth_mib": growth / 2**20}))


class RssPeak:
    """Largest resident set size above the size at start.

    Linux's high-water mark (``VmHWM``) is reset at start (``/proc/self/clear_refs``) and read
    at the end: exact, and nothing runs beside the measured work. (``ru_maxrss`` keeps the
    peak of the whole process, which start-up may already hold.) Where the mark cannot be
    reset, a thread samples the RSS every 2 ms instead (it shares the interpreter with the
    measured work; in five alternating pairs of runs its effect on the CPU-time ratio was
    within the rounds' spread).
    """

    def __init__(self) -> None:
        import os
        import threading

        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self.rss()
        self.thread = None
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # reset VmHWM to the current RSS
        except OSError:
            self.running = True
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()

    def rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page

    @staticmethod
    def high_water_mark() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.002)

    def stop(self) -> int:
        if self.thread is None:
            return max(self.high_water_mark(), self.rss()) - self.start
        self.running = False
        self.thread.join()
        return max(self.peak, self.rss()) - self.start


def float16_effect(root: str, layer: str) -> str:
    """Dissect from float32 maps and from the same maps rounded to float16: how far apart."""
    import torch
    from torch.utils.data import DataLoader

    from lightning_distill import FeatureHooks
    from lightning_distill.datasets import BrodenDataset
    from lightning_distill.metrics import NetworkDissection

    torch.set_num_threads(1)
    model, dataset = make_model(), BrodenDataset(root)
    batches = []
    with torch.no_grad(), FeatureHooks(model, [layer], detach=True) as hooks:
        for batch in DataLoader(dataset, batch_size=E2E_BATCH):
            model(batch["image"])
            batches.append((hooks[layer].clone(), batch["labels"], batch["image_labels"]))
    found = []
    for dtype in (torch.float32, torch.float16):
        units = batches[0][0].shape[1]
        metric = NetworkDissection(units, dataset.label_names, dataset.label_categories)
        for maps, labels, image_labels in batches:
            metric.update(maps.to(dtype), labels, image_labels)
        metric.compute_thresholds()
        metric.replay()
        found.append((metric.thresholds, metric.results()))
    (t32, r32), (t16, r16) = found
    change = ((t16 - t32).abs() / t32.abs().clamp(min=1e-12)).max().item()
    iou = torch.tensor(r16.units["iou"].to_numpy()) - torch.tensor(r32.units["iou"].to_numpy())
    concepts = int((r16.units["concept"] != r32.units["concept"]).sum())
    return (
        f"{layer}: float16 maps move thresholds by up to {change:.1e} relative, IoUs by up to "
        f"{iou.abs().max().item():.1e}; {concepts} of {len(r32.units)} best concepts change; "
        f"detectors {r32.num_detectors} (float32) vs {r16.num_detectors} (float16)"
    )


def histogram_state_sizes(units: int = 2048) -> str:
    from lightning_distill.functional import LogBuckets
    from lightning_distill.metrics import NetworkDissection

    metric = NetworkDissection(units, ["-", "a"], ["", "c"])
    names = ("histogram", "fine", "fine_lowest", "fine_highest", "windows", "minimum", "maximum")
    names += ("extremes", "thresholds")
    size = sum(getattr(metric, n).numel() * getattr(metric, n).element_size() for n in names)
    one_level = units * (LogBuckets().num_buckets * 8 + 3 * 8)  # int64 counts, min, max, T
    return (
        f"threshold states of a {units}-unit layer: {size / 2**20:.1f} MiB "
        f"({size / units / 1024:.1f} KiB per unit; one-level int64 histogram: "
        f"{one_level / 2**20:.1f} MiB, {one_level / units / 1024:.1f} KiB per unit), freed once "
        "the thresholds are set"
    )


def end_to_end(rounds: int) -> None:
    import statistics
    import tempfile

    import torch

    print(f"\nEnd to end: {IMAGES} Broden-format images {IMAGE_SIZE}px, labels {LABEL_SIZE}px, ")
    print(f"batches of {E2E_BATCH}, one thread, {rounds} interleaved rounds, median; ")
    print(
        "peak = largest RSS above the start of the run (VmHWM reset at the start; warmed-up process);"
    )
    print("CPU = process time (data loading included: no loader workers).")
    print(histogram_state_sizes())
    methods = ("reference", "monitor", "monitor, no cache")
    with tempfile.TemporaryDirectory() as root:
        write_broden(root)
        for layer in LAYERS:
            print(float16_effect(root, layer))
        for layer, shape in LAYERS.items():
            found = {m: [] for m in methods}
            outputs = {}
            for r in range(rounds):
                order = methods[r % 3 :] + methods[: r % 3]  # rotate: no method always first
                for method in order:
                    out = f"{root}/{layer}-{method}.pt"
                    text = subprocess.run(
                        [sys.executable, __file__, "--e2e-worker", method, layer, root, out],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    found[method].append(json.loads(text.strip().splitlines()[-1]))
                    outputs[method] = torch.load(out)
            print(f"\n{layer} ({shape})")
            print(f"{'method':>18} | {'CPU s':>6} {'wall s':>7} {'peak MiB':>9} | CPU vs reference")
            median = {
                m: {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                for m, runs in found.items()
            }
            for method in methods:
                row = median[method]
                ratio = row["cpu"] / median["reference"]["cpu"]
                per_round = " ".join(
                    f"{a['cpu'] / b['cpu']:.2f}" for a, b in zip(found[method], found["reference"])
                )
                print(
                    f"{method:>18} | {row['cpu']:>6.2f} {row['wall']:>7.2f} "
                    f"{row['peak_growth_mib']:>9.1f} | {ratio:.2f}x (rounds: {per_round})"
                )
            ref, mon = outputs["reference"], outputs["monitor"]
            gap = (mon["thresholds"] - ref["thresholds"]).abs()
            relative = (gap / ref["thresholds"].abs().clamp(min=1e-12)).max()
            print(
                f"agreement: thresholds within {relative:.1e} relative of the exact quantiles, "
                f"IoU within {(mon['iou'] - ref['iou']).abs().max():.1e}, detectors "
                f"{mon['detectors']} vs {ref['detectors']}; no cache = cache: "
                f"{torch.equal(outputs['monitor, no cache']['iou'], mon['iou'])}"
            )


def _exact_masks(maps, thresholds, size):
    """Every map interpolated in float64; values within float64 rounding of the threshold are
    ties, not above it."""
    import torch

    from lightning_distill.dissection.functional import upsample_activations

    level = torch.maximum(maps.flatten(1).abs().amax(1).double(), thresholds.abs())
    ties_at = thresholds + 16 * torch.finfo(torch.float64).eps * level
    return upsample_activations(maps.double(), size).flatten(1) > ties_at.unsqueeze(1)


def ties(rounds: int) -> None:
    import numpy as np
    import torch

    from lightning_distill.dissection.functional import _upsampled_above

    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print("masks of 50 images x 32 units of 28 x 28 ReLU maps, one thread; median CPU ms")
    print(f"{'case':>10} | {'library':>8} {'float64':>8} | ratio | masks equal")
    for name, factor, shift, quantile in (
        ("dense x2", 2, 0.0, 0.995),
        ("dense x3", 3, 0.0, 0.995),
        ("sparse x2", 2, 2.5, 0.9),
        ("sparse x3", 3, 2.5, 0.9),
        ("signed x2", 2, None, 0.995),
        ("signed x3", 3, None, 0.995),
        ("median x3", 3, None, 0.5),
    ):
        maps = torch.randn(50 * 32, 1, 28, 28, generator=generator)
        if shift is not None:  # ReLU maps; signed ones (a layer before its ReLU) otherwise
            maps = torch.relu(maps - shift)
        per_unit = maps.view(50, 32, -1).transpose(0, 1).reshape(32, -1)
        thresholds = torch.quantile(per_unit, quantile, dim=1).double().repeat(50)
        size = (28 * factor, 28 * factor)
        times = {"library": [], "float64": []}
        masks = {}
        for _ in range(rounds):
            for method, run in (("library", _upsampled_above), ("float64", _exact_masks)):
                start = time.process_time()
                masks[method] = run(maps, thresholds, size)
                times[method].append(time.process_time() - start)
        ms = {method: 1000 * float(np.median(values)) for method, values in times.items()}
        print(
            f"{name:>10} | {ms['library']:8.0f} {ms['float64']:8.0f} | "
            f"{ms['library'] / ms['float64']:5.2f} | {torch.equal(masks['library'], masks['float64'])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["scaling", "end-to-end", "ties"],
        default=["scaling", "end-to-end"],
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--e2e-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    if args.e2e_worker:
        e2e_worker(*args.e2e_worker)
        return
    if "ties" in args.parts:
        ties(max(args.rounds, 1))
    if "end-to-end" in args.parts:
        end_to_end(args.rounds)
    if "scaling" not in args.parts:
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
