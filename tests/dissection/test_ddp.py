"""Two CPU processes (gloo) give the same dissection as one."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessExitedException
from torch.utils.data import DataLoader

from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.datasets import SyntheticConcepts
from lightning_distill.metrics import NetworkDissection
from tests.helpers import LABEL_CATEGORIES, LABEL_NAMES, TinyNet, make_probe, quiet_trainer

pytestmark = pytest.mark.ddp


def dissect(activations, labels, image_labels, batches):
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    for b in batches:
        metric.update(activations[b])
    thresholds = metric.compute_thresholds()
    for b in batches:
        metric.update(activations[b], labels[b], image_labels[b])
    return {
        "thresholds": thresholds,
        "iou": metric.iou(),
        "detectors": metric.compute(),
        "units": metric.results().units,
    }


def _metric_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        activations, labels, image_labels = map(torch.from_numpy, make_probe())
        # uneven shares: rank 0 gets 3 batches of 5, rank 1 the remaining 9 images in 2 batches
        shares = {0: [slice(0, 5), slice(5, 10), slice(10, 15)], 1: [slice(15, 20), slice(20, 24)]}
        found = dissect(activations, labels, image_labels, shares[rank])
        with open(f"{out}.{rank}", "wb") as handle:
            pickle.dump(found, handle)
    finally:
        dist.destroy_process_group()


def test_metric_two_processes_equal_one(tmp_path, free_port):
    out = str(tmp_path / "result")
    mp.spawn(_metric_worker, args=(2, free_port, out), nprocs=2, join=True)
    activations, labels, image_labels = map(torch.from_numpy, make_probe())
    expected = dissect(activations, labels, image_labels, [slice(0, 24)])
    for rank in (0, 1):
        with open(f"{out}.{rank}", "rb") as handle:
            found = pickle.load(handle)
        assert torch.equal(found["thresholds"], expected["thresholds"])
        assert torch.equal(found["iou"], expected["iou"])
        assert torch.equal(found["detectors"], expected["detectors"])
        assert found["units"].equals(expected["units"])
    assert int(expected["detectors"]) > 0


def test_callback_ddp_equals_one_process(tmp_path):
    data = SyntheticConcepts(40, image_size=16, seed=2)
    train = DataLoader(data.classification(), batch_size=8)

    def run(save_dir=None, **trainer_kwargs):
        # lr=0 keeps the weights as initialised, so that both runs dissect the same network
        monitor = DissectionMonitor(
            DataLoader(data, batch_size=6), "features.4", quantile=0.9, save_dir=save_dir
        )
        trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=2, **trainer_kwargs)
        trainer.fit(TinyNet(lr=0.0, seed=3), train)
        return {k: float(v) for k, v in trainer.callback_metrics.items() if "dissection" in k}

    single = run(tmp_path / "one", devices=1)
    try:
        double = run(tmp_path / "two", devices=2, strategy="ddp_spawn")
    except ProcessExitedException as error:
        # A spawned worker once aborted as it exited, after the fit had finished ("terminate
        # called without an active exception": a thread of torch's gloo backend still running
        # at interpreter exit; in CI, 1 run of many). That is no result of the library's: the
        # run is made once more, and the comparison below still decides.
        if error.signal_name != "SIGABRT":
            raise
        double = run(tmp_path / "two", devices=2, strategy="ddp_spawn")
    assert set(single) == {
        "dissection/detectors",
        "dissection/unique_concepts",
        *(f"dissection/{c}" for c in data.categories),
    }
    assert double == single
    # rank 0 draws the pictures from the top images gathered across processes: the same ones
    from matplotlib.image import imread

    for name in ("categories_epoch0.png", "units_epoch0.png"):
        assert (imread(tmp_path / "one" / name) == imread(tmp_path / "two" / name)).all()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "categories_epoch0.png",
        "units_epoch0.png",
    ]


def _refine_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        activations = torch.from_numpy(make_probe()[0])
        share = activations[:15] if rank == 0 else activations[15:]
        # rank 0 caches its share, rank 1 cannot: a refine pass, replayed on rank 0 alone
        metric = NetworkDissection(
            6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, cache_bytes=0 if rank else 2**20
        )
        metric.update(share)
        assert metric.compute_thresholds() is None and metric.phase == "refine"
        refused = []
        if rank == 0:
            metric.replay()
            for again in (metric.replay, lambda: metric.update(share)):
                try:
                    again()
                except RuntimeError as error:
                    refused.append(str(error))
        else:
            metric.update(share)
        with open(f"{out}.{rank}", "wb") as handle:
            pickle.dump({"thresholds": metric.compute_thresholds(), "refused": refused}, handle)
    finally:
        dist.destroy_process_group()


def test_refine_pass_replayed_twice_is_refused(tmp_path, free_port):
    # a second replay() of the refine pass (or the data after it) doubled the fine histogram
    # of the process that had its share cached
    out = str(tmp_path / "result")
    mp.spawn(_refine_worker, args=(2, free_port, out), nprocs=2, join=True)
    single = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    single.update(torch.from_numpy(make_probe()[0]))
    expected = single.compute_thresholds()
    with open(f"{out}.0", "rb") as handle:
        found = pickle.load(handle)
    assert len(found["refused"]) == 2
    assert all("refine pass" in m and "twice" in m for m in found["refused"])
    assert torch.equal(found["thresholds"], expected)
