"""Two-level histogram, map cache, refine pass and the per-process share of the probe loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.datasets import SyntheticConcepts
from lightning_distill.dissection.monitor import _ShareOfBatches
from lightning_distill.functional import (
    HistogramLayout,
    LogBuckets,
    activation_histogram,
    coarse_histogram,
    histogram_quantile,
    quantile_windows,
    two_level_quantile,
    window_histogram,
)
from lightning_distill.metrics import NetworkDissection
from tests.dissection.reference import reference_thresholds
from tests.helpers import LABEL_CATEGORIES, LABEL_NAMES, TinyNet


def probe_t(probe):
    return tuple(map(torch.from_numpy, probe))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.995, 1.0])
def test_two_level_quantile_equals_the_one_level_histogram(seed, quantile):
    generator = torch.Generator().manual_seed(seed)
    scale = torch.exp(4 * torch.randn(1, 3, 1, 1, generator=generator))
    values = torch.randn(40, 3, 5, 5, generator=generator) * scale
    if seed % 2:
        values = torch.relu(values)  # a mass of exact zeros
    values[:, 2] *= 1e4  # partly beyond histogram_range
    buckets = LogBuckets(1e-3, 1e3, 1e-3)
    layout = HistogramLayout.build(buckets)
    counts, low, high = activation_histogram(values, buckets)
    one_level = histogram_quantile(counts, low, high, quantile, buckets)
    coarse, low2, high2 = coarse_histogram(values, layout)
    windows = quantile_windows(coarse, quantile)
    fine = window_histogram(values, windows, layout)
    # the coarse buckets partition the fine ones
    assert torch.equal(
        coarse, torch.zeros_like(coarse).index_add_(1, layout.fine_to_coarse, counts)
    )
    assert torch.equal(fine.sum(2), coarse.gather(1, windows))
    two_level = two_level_quantile(coarse, fine, windows, low2, high2, quantile, layout)
    assert torch.equal(two_level, one_level)


def test_histogram_is_at_most_32_kib_per_unit_and_freed_after_thresholds():
    metric = NetworkDissection(16, LABEL_NAMES, LABEL_CATEGORIES)  # default range, resolution
    names = ("histogram", "fine", "windows", "minimum", "maximum", "thresholds")

    def state_bytes():
        return sum(getattr(metric, n).numel() * getattr(metric, n).element_size() for n in names)

    assert state_bytes() / 16 <= 32 * 1024
    metric.update(torch.rand(4, 16, 3, 3))
    metric.compute_thresholds()
    assert metric.histogram.numel() == 0 and metric.fine.numel() == 0
    metric.reset()
    assert metric.histogram.shape == (16, metric.layout.num_coarse)


def run(metric, activations, labels, image_labels, batch=5, labels_first=False):
    """Threshold pass, refine pass when asked for, tally pass; return the metric."""
    batches = [slice(s, s + batch) for s in range(0, len(activations), batch)]
    for b in batches:
        given = (labels[b], image_labels[b]) if labels_first else ()
        metric.update(activations[b], *given)
    if metric.compute_thresholds() is None:
        assert metric.phase == "refine"
        for b in batches:
            metric.update(activations[b])
        assert metric.compute_thresholds() is not None
    assert metric.phase == "tally"
    if labels_first:
        metric.replay()
    else:
        for b in batches:
            metric.update(activations[b], labels[b], image_labels[b])
    return metric


@pytest.mark.parametrize("cache_bytes", [0, 20_000])
def test_without_a_complete_cache_a_refine_pass_gives_the_same_result(probe, cache_bytes):
    activations, labels, image_labels = probe_t(probe)
    cached = run(NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe))
    assert cached.cache_complete is False  # the tally pass from the data freed the cache
    uncached = NetworkDissection(
        6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, cache_bytes=cache_bytes
    )
    run(uncached, activations, labels, image_labels)
    assert torch.equal(uncached.thresholds, cached.thresholds)
    assert torch.equal(uncached.iou(), cached.iou())
    exact = reference_thresholds(probe[0], 0.8)
    np.testing.assert_allclose(cached.thresholds.numpy(), exact, rtol=1e-3)


def test_replay_equals_the_tally_pass_from_the_data(probe):
    activations, labels, image_labels = probe_t(probe)
    by_hand = run(
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe)
    )
    replayed = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    before = [t.clone() for t in (activations, labels, image_labels)]
    run(replayed, activations, labels, image_labels, labels_first=True)
    for name in ("thresholds", "intersection", "mask_area", "label_area", "tallied_images"):
        assert torch.equal(getattr(replayed, name), getattr(by_hand, name)), name
    # the cache holds copies: changing the inputs afterwards changes nothing, and nothing was
    # changed in them
    for original, copy in zip((activations, labels, image_labels), before, strict=True):
        assert torch.equal(original, copy)


@pytest.mark.parametrize("cast", ["holder.to", "set_dtype"])
def test_a_cast_of_the_holding_module_leaves_the_states_as_they_are(probe, cast):
    # Lightning's "bf16-true" casts the module holding the metric with .to(dtype): the float64
    # extremes and thresholds must not be rounded to bfloat16 between the passes. set_dtype
    # (torchmetrics' cast) also casts integer buffers: the histogram's index tables among them
    holder = torch.nn.Module()
    holder.metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    dtypes = {name: getattr(holder.metric, name).dtype for name in holder.metric._defaults}
    buffers = {name: buffer.dtype for name, buffer in holder.metric.named_buffers()}
    if cast == "holder.to":
        holder.to(torch.bfloat16)
    else:
        holder.metric.set_dtype(torch.float64)
    assert {name: getattr(holder.metric, name).dtype for name in dtypes} == dtypes
    assert {name: buffer.dtype for name, buffer in holder.metric.named_buffers()} == buffers
    reference = run(
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe)
    )
    run(holder.metric, *probe_t(probe))
    assert holder.metric.thresholds.dtype == torch.float64
    assert torch.equal(holder.metric.thresholds, reference.thresholds)
    assert torch.equal(holder.metric.iou(), reference.iou())


def test_cache_errors(probe):
    activations, labels, _ = probe_t(probe)
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, cache_bytes=0)
    metric.update(activations)
    with pytest.raises(RuntimeError, match="follows compute_thresholds"):
        metric.replay()
    assert metric.compute_thresholds() is None
    with pytest.raises(RuntimeError, match="does not hold the whole threshold pass"):
        metric.replay()
    metric.update(activations[:10])  # not the same data as the threshold pass
    with pytest.raises(RuntimeError, match="same activations as the threshold pass"):
        metric.compute_thresholds()
    unlabelled = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    unlabelled.update(activations)
    unlabelled.compute_thresholds()
    with pytest.raises(RuntimeError, match="was given no labels"):
        unlabelled.replay()
    bad = labels.clone()
    bad[0, 0, 0, 0] = 300  # would wrap around in the uint8 cache
    with pytest.raises(ValueError, match="contains label 300"):
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES).update(activations, bad)
    with pytest.raises(TypeError, match="cache_bytes must be an integer"):
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, cache_bytes=1.5)


def test_monitor_runs_the_network_once_when_the_maps_fit():
    data = SyntheticConcepts(30, image_size=16, seed=4)
    loader = DataLoader(data, batch_size=8)
    found = {}
    for cache_bytes in (2**24, 0):
        model = TinyNet(seed=2)
        calls = []
        model.features[4].register_forward_hook(lambda *_, calls=calls: calls.append(1))
        monitor = DissectionMonitor(
            loader, "features.4", quantile=0.9, metric_kwargs={"cache_bytes": cache_bytes}
        )
        found[cache_bytes] = monitor.dissect(model)
        # one pass (cached) or three (not cached); the first batch sizes the metric
        assert len(calls) == len(loader) * (1 if cache_bytes else 3)
        assert monitor.metric._kept is None  # freed at the end
    assert found[0].units.equals(found[2**24].units)


class Recording(Dataset):
    def __init__(self, data):
        self.data = data
        self.loaded = []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        self.loaded.append(index)
        return self.data[index]

    def __getattr__(self, name):
        return getattr(self.__dict__["data"], name)


@pytest.mark.parametrize("world_size", [2, 3])
def test_each_process_loads_only_its_own_batches(world_size):
    data = SyntheticConcepts(23, image_size=16, seed=1)
    seen = []
    for rank in range(world_size):
        recording = Recording(data)
        monitor = DissectionMonitor(DataLoader(recording, batch_size=4), "features.4")
        share = list(monitor._batches(rank, world_size))
        mine = [b for b in range(6) if b % world_size == rank]  # 6 batches, the last of 3
        expected = [i for b in mine for i in range(4 * b, min(4 * b + 4, 23))]
        assert recording.loaded == expected
        assert [position for position, *_ in share] == [4 * b for b in mine]
        for (_, images, _, _), b in zip(share, mine, strict=True):
            assert torch.equal(images, torch.stack([data[i]["image"] for i in expected_of(b)]))
        seen += recording.loaded
    assert sorted(seen) == list(range(23))
    assert len(_ShareOfBatches([[0]] * 6, 1, world_size)) == len(
        [b for b in range(6) if b % world_size == 1]
    )


def expected_of(batch):
    return range(4 * batch, min(4 * batch + 4, 23))


@pytest.mark.parametrize("tie", [0.8, 0.8002, 0.8004, 0.8006])
def test_a_tie_inside_a_units_range_is_read_exactly(tie):
    # low-precision or quantized maps: 0.55% of the values tie at `tie`, below the maximum; the
    # exact 0.995 quantile is the tie, and no tied pixel exceeds it
    n = 100 * 16 * 16
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(n, generator=generator) * 0.5
    values[: int(0.0055 * n)] = tie
    values[int(0.0055 * n) : int(0.006 * n)] = 1.0
    maps = values[torch.randperm(n, generator=generator)].view(100, 1, 16, 16)
    metric = NetworkDissection(1, ["-", "a"], ["", "obj"])
    metric.update(maps)
    threshold = metric.compute_thresholds()
    exact = np.quantile(maps.double().flatten().numpy(), 0.995)
    assert float(threshold) == pytest.approx(exact, rel=1e-12)
    above = int((maps.double() > threshold).sum())
    assert above == int((maps.double() > exact).sum()) == int((maps == 1.0).sum())


def test_merging_in_the_threshold_pass_asks_for_a_refine_pass(probe):
    activations, labels, _ = probe_t(probe)
    halves = [NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8) for _ in "ab"]
    halves[0].update(activations[:10], labels[:10])
    halves[1].update(activations[10:], labels[10:])
    halves[0].merge_state(halves[1])
    assert not halves[0].cache_complete  # it holds its own half only
    assert halves[0].compute_thresholds() is None and halves[0].phase == "refine"
    with pytest.raises(ValueError, match="merge_state must be called in the threshold or the"):
        halves[0].merge_state(halves[1])  # no merge in the refine pass is right
    halves[0].update(activations)
    whole = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    whole.update(activations, labels)
    assert torch.equal(halves[0].compute_thresholds(), whole.compute_thresholds())
    done = run(NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe))
    with pytest.raises(ValueError, match="incoming_state must be a NetworkDissection in the same"):
        done.merge_state(NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8))


def test_merging_a_dict_of_states_checks_its_pass_and_thresholds(probe):
    # torchmetrics' merge_state also takes a dict of states: one tallied with other thresholds
    # had been summed in (the thresholds became the larger of the two), and one of another
    # pass failed with torch's complaint about the histograms' sizes
    activations, labels, _ = probe_t(probe)
    whole = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    whole.update(activations, labels)
    thresholds = whole.compute_thresholds()
    whole.replay()

    def tallied(part, with_thresholds):
        metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
        metric.set_thresholds(with_thresholds)
        metric.update(activations[part], labels[part])
        return metric

    merged = tallied(slice(0, 10), thresholds)
    merged.merge_state(tallied(slice(10, None), thresholds).metric_state)
    assert torch.equal(merged.iou(), whole.iou())  # the same as one metric over all of it

    mine = tallied(slice(0, 10), thresholds)
    before = {name: state.clone() for name, state in mine.metric_state.items()}
    other = tallied(slice(10, None), thresholds + 0.1)
    with pytest.raises(ValueError, match="incoming_state must tally with the same thresholds"):
        mine.merge_state(other.metric_state)
    threshold_pass = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    threshold_pass.update(activations, labels)
    with pytest.raises(ValueError, match="incoming_state must be the states of a Net.*'thresh"):
        mine.merge_state(threshold_pass.metric_state)
    for name, state in mine.metric_state.items():
        assert torch.equal(state, before[name]), name
    with pytest.raises(ValueError, match="incoming_state must be the states of a Net.*'tally'"):
        threshold_pass.merge_state(other.metric_state)


def test_a_saved_metric_loads_in_the_pass_it_was_in(probe):
    activations, labels, _ = probe_t(probe)
    done = run(NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe))
    done.persistent(True)
    loaded = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    loaded.persistent(True)
    loaded.load_state_dict(done.state_dict())
    assert loaded.phase == "tally" and torch.equal(loaded.iou(), done.iou())
    with pytest.raises(TypeError, match="labels must be a torch.Tensor, got ndarray"):
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES).update(activations, labels.numpy())


@pytest.mark.parametrize("done", [True, False], ids=["tally", "threshold pass"])
def test_a_state_saved_under_another_configuration_is_refused(probe, done):
    # torchmetrics copies states in as they are: a 6-unit state read by a 4-unit metric
    # counted detectors among units it does not have
    activations, labels, image_labels = probe_t(probe)
    saved = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    if done:
        run(saved, activations, labels, image_labels)
    else:
        saved.update(activations, labels)
    saved.persistent(True)
    state = saved.state_dict()
    others = {
        "num_units=4": (NetworkDissection(4, LABEL_NAMES, LABEL_CATEGORIES), r"\(4, \d+\)"),
        "fewer labels": (
            NetworkDissection(6, LABEL_NAMES[:-1], LABEL_CATEGORIES[:-1]),
            rf"intersection.*\(6, {len(LABEL_NAMES) - 1}\).*\(6, {len(LABEL_NAMES)}\)",
        ),
    }
    if not done:  # the thresholds set, the histograms are freed: their layout no longer counts
        others["coarser histogram"] = (
            NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, histogram_resolution=1e-2),
            r"histogram",
        )
    for metric, shapes in others.values():
        metric.persistent(True)
        before = {name: getattr(metric, name).clone() for name in metric._defaults}
        with pytest.raises(ValueError, match=rf"state_dict\['.*{shapes}.* another configuration"):
            metric.load_state_dict(state)
        # refused before any state was copied
        for name, value in before.items():
            torch.testing.assert_close(getattr(metric, name), value, rtol=0, atol=0, equal_nan=True)
        assert metric.phase == "thresholds"
    # the same shapes, other settings the states depend on: another quantile's thresholds,
    # tallies of the other activation side, labels of the same number in another order
    for other in (
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.9),
        NetworkDissection(
            6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, activation_side="overlap"
        ),
        NetworkDissection(
            6,
            [LABEL_NAMES[0], *LABEL_NAMES[:0:-1]],
            [LABEL_CATEGORIES[0], *LABEL_CATEGORIES[:0:-1]],
            quantile=0.8,
        ),
    ):
        other.persistent(True)
        with pytest.raises(ValueError, match=r"saved by a NetworkDissection of the same settings"):
            other.load_state_dict(state)
        assert other.phase == "thresholds"
    # a setting only compute() reads (iou_threshold) does not block a load
    reader = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, iou_threshold=0.2)
    reader.persistent(True)
    reader.load_state_dict(state)
    # the same configuration loads, in either pass, into a fresh metric or a finished one
    for target in (
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8),
        run(
            NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8),
            activations,
            labels,
            image_labels,
        ),
    ):
        target.persistent(True)
        target.load_state_dict(state)
        assert target.phase == saved.phase
        # the saved batches are not in this metric's cache: counted as uncached
        assert int(target.uncached_batches) == int(saved.uncached_batches) + (not done)
        for name in set(saved._defaults) - {"uncached_batches"}:
            torch.testing.assert_close(
                getattr(target, name), getattr(saved, name), rtol=0, atol=0, equal_nan=True
            )


def test_masks_empty_for_every_unit_are_warned_about(probe):
    activations, labels, image_labels = probe_t(probe)
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES)
    metric.set_thresholds(activations.double().amax((0, 2, 3)) + 1.0)  # above every value
    metric.update(activations, labels, image_labels)
    with pytest.warns(UserWarning, match="no unit's mask held a single pixel"):
        assert int(metric.compute()) == 0


def bad_labels(labels, image_labels):
    """Pixel and whole-image labels the metric refuses, one fault each."""
    out_of_range = labels.clone()
    out_of_range[0, 0, 0, 0] = len(LABEL_NAMES)
    return {
        "label id too large": (out_of_range, image_labels),
        "float labels": (labels.float(), image_labels),
        "labels of another batch size": (labels[:-1], image_labels),
        "negative image label": (labels, image_labels - 1),
        "image labels [B]": (labels, image_labels[:, 0]),
    }


@pytest.mark.parametrize(
    "fault",
    [
        "label id too large",
        "float labels",
        "labels of another batch size",
        "negative image label",
        "image labels [B]",
    ],
)
@pytest.mark.parametrize("cache_bytes", [2**24, 0])
def test_a_refused_batch_of_the_threshold_pass_counts_nothing(probe, fault, cache_bytes):
    # the labels were checked after the batch's maps were counted: the refused batch stayed in
    # the histogram, and once given again the thresholds came from it twice (or the refine pass
    # found fewer values than the histogram and raised)
    activations, labels, image_labels = probe_t(probe)
    metric = NetworkDissection(
        6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8, cache_bytes=cache_bytes
    )
    fresh = {name: getattr(metric, name).clone() for name in metric._defaults}
    with pytest.raises((ValueError, TypeError)):
        metric.update(activations[:10], *bad_labels(labels[:10], image_labels[:10])[fault])
    for name, value in fresh.items():
        torch.testing.assert_close(getattr(metric, name), value, rtol=0, atol=0, equal_nan=True)
    assert metric.cache_complete and int(metric.uncached_batches) == 0  # nothing refused
    # the batch given again, right this time: the result of a metric that never saw the fault
    metric.update(activations[:10], labels[:10], image_labels[:10])
    metric.update(activations[10:], labels[10:], image_labels[10:])
    if metric.compute_thresholds() is None:
        metric.update(activations)
        metric.compute_thresholds()
    reference = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    reference.update(activations)
    exact = reference_thresholds(probe[0], 0.8)
    assert torch.equal(metric.thresholds, reference.compute_thresholds())
    np.testing.assert_allclose(metric.thresholds.numpy(), exact, rtol=1e-3)


@pytest.mark.parametrize("fault", ["label id too large", "float labels", "negative image label"])
def test_a_refused_batch_of_the_tally_pass_keeps_the_cache(probe, fault):
    # the cache was freed (a tally from the data needs it no more) before the batch was checked:
    # replay() then refused to run though no tally had been made
    activations, labels, image_labels = probe_t(probe)
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    metric.update(activations, labels, image_labels)
    metric.compute_thresholds()
    with pytest.raises((ValueError, TypeError)):
        metric.update(activations, *bad_labels(labels, image_labels)[fault])
    assert metric.cache_complete and int(metric.tallied_images) == 0
    metric.replay()
    by_data = run(
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe)
    )
    assert torch.equal(metric.iou(), by_data.iou())


def test_a_failed_dissection_frees_the_cache():
    # "the cache is freed at the end of every dissection": a dissection that raised (NaN maps
    # from the third batch on) kept the maps and labels of the first two on the device
    data = SyntheticConcepts(30, image_size=16, seed=4)
    model = TinyNet(seed=2)
    calls = []

    def forward(module, images):
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                module.features[3].bias[0] = float("nan")
        return module(images)

    monitor = DissectionMonitor(DataLoader(data, batch_size=8), "features.4", forward=forward)
    with pytest.raises(ValueError, match=r"layer 'features\.4' output NaN or inf"):
        monitor.dissect(model)
    assert monitor.metric._kept is None and monitor.metric._cached_bytes == 0


def test_replaying_twice_or_mixing_replay_and_data_is_refused(probe):
    # replay() a second time (or update() with the data after it) tallied every image again:
    # tallied_images, intersections and areas doubled and the IoUs changed without a word
    activations, labels, image_labels = probe_t(probe)
    expected = run(
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe)
    )

    def replayed():
        metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
        return run(metric, activations, labels, image_labels, labels_first=True)

    sums = ("intersection", "mask_area", "label_area", "tallied_images")
    for again in (
        lambda m: m.replay(),
        lambda m: m.update(activations, labels, image_labels),
        lambda m: m.update(activations[:5], labels[:5], image_labels[:5]),
    ):
        metric = replayed()
        with pytest.raises(RuntimeError, match=r"would .*count.* twice.*reset\(\)"):
            again(metric)
        for name in sums:  # the tally is that of one pass over the data, as before
            assert torch.equal(getattr(metric, name), getattr(expected, name)), name
        assert int(metric.tallied_images) == len(activations)
        assert torch.equal(metric.iou(), expected.iou())
        metric.reset()  # and reset() starts a dissection that can be replayed again
        run(metric, activations, labels, image_labels, labels_first=True)
        assert torch.equal(metric.iou(), expected.iou())
    # a tally pass from the data, then replay(): refused with what to do
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    metric.update(activations, labels, image_labels)
    metric.compute_thresholds()
    metric.update(activations[:5], labels[:5], image_labels[:5])
    with pytest.raises(RuntimeError, match=r"already holds 5 images.*reset\(\)"):
        metric.replay()
    assert int(metric.tallied_images) == 5


def test_a_metric_loaded_in_the_tally_pass_asks_for_the_data(probe):
    # a fresh metric loaded in the tally pass said its cache was complete: replay() ran over
    # nothing, without a word, and then refused the data as already replayed
    activations, labels, image_labels = probe_t(probe)
    saved = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    saved.update(activations, labels, image_labels)
    saved.compute_thresholds()
    saved.persistent(True)
    loaded = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8)
    loaded.persistent(True)
    loaded.load_state_dict(saved.state_dict())
    assert loaded.phase == "tally" and not loaded.cache_complete
    with pytest.raises(RuntimeError, match=r"does not hold the whole threshold pass.*update\(\)"):
        loaded.replay()
    loaded.update(activations, labels, image_labels)
    expected = run(
        NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.8), *probe_t(probe)
    )
    assert int(loaded.tallied_images) == len(activations)
    assert torch.equal(loaded.iou(), expected.iou())
