"""Where the Lightning side makes the host wait for a CUDA device, by call site.

Each part runs under ``torch.cuda.set_sync_debug_mode("warn")``: torch warns at every operation
that synchronises the host with the device (``.item()``, ``bool()`` of a tensor, a copy to or
from pageable host memory, ``nonzero``, ``bincount`` and ``unique`` on CUDA, ...). The warnings
are counted by the innermost frame of ``lightning_distill`` on the stack ("-" when the sync is
Lightning's or torch's own). A sync is not wrong in itself (a readable error for bad input needs
one), but each one idles the device while the host launches the next kernels.

Parts: ``fits`` (two-epoch fits of small models: KD plain, with the teacher cache and with each
feature method, the callback, AWD 1-D and 2-D, both monitors; per-step counts are the totals over
the steps and the validation batches) and ``updates`` (one ``update`` of each metric at a
realistic size, with its time).

Without CUDA the parts run on the CPU and count nothing (a check that the script runs).

Run: PYTHONPATH=. python benchmarks/host_syncs.py [--parts fits,updates]
"""

from __future__ import annotations

import argparse
import collections
import copy
import logging
import time
import traceback
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from kd_overhead import Indexed, Plain, cnn
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")
SITES: collections.Counter = collections.Counter()


def _record(message, category, filename, lineno, file=None, line=None) -> None:
    if "synchroniz" not in str(message):
        return
    ours = [f for f in traceback.extract_stack()[:-1] if "lightning_distill" in f.filename]
    where = ours[-1] if ours else None
    key = f"{where.filename.split('lightning_distill')[-1]}:{where.lineno} {where.line}"
    SITES["-" if where is None else "lightning_distill" + key] += 1


def watch(name: str, run) -> None:
    """Run ``run()`` (returns a count of steps or calls) and print its syncs by site."""
    SITES.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _record
        if CUDA:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            start = time.perf_counter()
            count = run()
            seconds = time.perf_counter() - start
        finally:
            if CUDA:
                torch.cuda.set_sync_debug_mode(0)
    print(f"== {name}: {count} steps or calls, {seconds:.2f} s, {sum(SITES.values())} syncs")
    for key, n in SITES.most_common(40):
        print(f"  {n:5d}  {key}")


# ----------------------------------------------------------------------------- models, data
class Classifier(L.LightningModule):
    """A CNN on 3-channel images with its own cross-entropy step, for the monitors."""

    def __init__(self, classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 10, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(10, classes),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def trainer(**options) -> L.Trainer:
    options.setdefault("max_epochs", 2)
    return L.Trainer(
        accelerator=DEVICE.type,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


# ----------------------------------------------------------------------------- parts
def fits() -> None:
    from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
    from lightning_distill.awd import AWDModule
    from lightning_distill.callbacks import AttributionMonitor, DissectionMonitor
    from lightning_distill.datasets import SyntheticCells, SyntheticConcepts

    data = Indexed(256, shape=(3, 8, 8))  # (input, target, index) samples, 10 classes
    x, y = data.x, data.y
    torch.manual_seed(0)
    student, teacher = cnn(8, 2), cnn(16, 2)  # 0 conv, 1 relu, 2 conv, 3 relu, 4 pool, 5 flatten

    def kd(**options):
        def run():
            module = DistillationModule(
                copy.deepcopy(student), copy.deepcopy(teacher), example_input=x[:2], **options
            )
            fit = trainer()
            fit.fit(
                module,
                DataLoader(data, batch_size=32),
                DataLoader(TensorDataset(x, y), batch_size=32),
            )
            return fit.global_step

        return run

    watch("KD", kd())
    watch("KD, cache_teacher=True", kd(cache_teacher=True))
    for loss in ("attention", "hint", "ft", "crd", "sskd", "rkd", "pkt"):
        layer = "3" if loss in ("attention", "hint", "ft") else "5"
        options = {
            "crd": {"num_samples": 256, "num_negatives": 64, "embed_dim": 8},
            "ft": {"paraphraser_epochs": 1},
            "sskd": {"head_epochs": 1},
        }.get(loss)
        spec = FeatureDistillation(layer, layer, loss, 1.0, options=options)
        watch(f"KD + {loss}", kd(features=[spec]))

    def callback():
        fit = trainer(callbacks=[KnowledgeDistillation(copy.deepcopy(teacher))])
        fit.fit(Plain(copy.deepcopy(student)), DataLoader(data, batch_size=32))
        return fit.global_step

    watch("KnowledgeDistillation callback", callback)

    def awd(dim: int):
        def run():
            shape = (64,) if dim == 1 else (1, 16, 16)
            inputs = torch.randn(256, *shape)
            net = nn.Sequential(
                nn.Flatten(), nn.Linear(inputs[0].numel(), 32), nn.ReLU(), nn.Linear(32, 2)
            )
            module = AWDModule(
                net,
                wavelet="db2" if dim == 1 else "haar",
                levels=2,
                dim=dim,
                mode="zero" if dim == 1 else "periodization",
                target=1,
                attribution_weight=0.1,
                sparsity_weight=0.01,
            )
            fit = trainer()
            fit.fit(module, DataLoader(TensorDataset(inputs), batch_size=32))
            return fit.global_step

        return run

    watch("AWD 1-D", awd(1))
    watch("AWD 2-D", awd(2))

    concepts = SyntheticConcepts(96, image_size=16, seed=5)

    def dissection():
        monitor = DissectionMonitor(DataLoader(concepts, batch_size=32), "net.4", quantile=0.9)
        fit = trainer(max_epochs=1, callbacks=[monitor])
        fit.fit(Classifier(6), DataLoader(concepts.classification(), batch_size=32))
        return fit.global_step

    watch("DissectionMonitor (one epoch, 96 probe images)", dissection)
    cells = SyntheticCells(96, image_size=32, seed=1)

    def attribution():
        monitor = AttributionMonitor(DataLoader(cells, batch_size=32), module="net")
        fit = trainer(max_epochs=1, callbacks=[monitor])
        fit.fit(Classifier(10), DataLoader(cells.classification(), batch_size=32))
        return fit.global_step

    watch("AttributionMonitor (one epoch, 96 probe images)", attribution)


def updates() -> None:
    from lightning_distill.metrics import (
        AttributionAgreement,
        AttributionLocalisation,
        FiveBandScore,
        NetworkDissection,
    )

    names = ["-", "ball", "box", "tree", "red", "blue", "beach", "forest"]
    categories = ["", "object", "object", "object", "color", "color", "scene", "scene"]
    batch = 64 if CUDA else 2
    acts = torch.rand(batch, 512, 28, 28, device=DEVICE)
    labels = torch.randint(0, 8, (batch, 2, 112, 112), device=DEVICE)
    image_labels = torch.randint(0, 8, (batch, 2), device=DEVICE)

    def timed(call, repeats: int = 5) -> float:
        call()
        if CUDA:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        if CUDA:
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / repeats * 1e3

    def once(call):
        return lambda: call() or 1

    first = NetworkDissection(512, names, categories, cache_bytes=0).to(DEVICE)
    ms = timed(lambda: first.update(acts))
    watch(
        f"NetworkDissection threshold update [{batch}, 512, 28, 28], {ms:.2f} ms",
        once(lambda: first.update(acts)),
    )
    metric = NetworkDissection(512, names, categories, cache_bytes=0).to(DEVICE)
    metric.update(acts)
    metric.compute_thresholds()  # None: two passes without a cache
    metric.update(acts)
    metric.compute_thresholds()
    ms = timed(lambda: metric.update(acts, labels, image_labels))
    watch(
        f"NetworkDissection tally update (labels 112 x 112), {ms:.2f} ms",
        once(lambda: metric.update(acts, labels, image_labels)),
    )
    maps = torch.randn(batch, 3, 224, 224, device=DEVICE)
    others = torch.randn(batch, 3, 224, 224, device=DEVICE)
    heat = torch.rand(batch, 224, 224, device=DEVICE)
    masks = heat > 0.5
    for name, metric, arguments in (
        ("FiveBandScore(soft_steps=56)", FiveBandScore(soft_steps=56), (maps, heat)),
        ("AttributionAgreement", AttributionAgreement(), (maps, others)),
        ("AttributionLocalisation", AttributionLocalisation(), (maps, masks)),
    ):
        metric = metric.to(DEVICE)
        ms = timed(lambda m=metric, a=arguments: m.update(*a))
        watch(
            f"{name} update [{batch}, 3, 224, 224], {ms:.2f} ms",
            once(lambda m=metric, a=arguments: m.update(*a)),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="fits,updates")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if CUDA else 'cpu'}")
    parts = {"fits": fits, "updates": updates}
    for part in args.parts.split(","):
        parts[part]()


if __name__ == "__main__":
    main()
