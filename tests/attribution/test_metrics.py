"""The attribution metrics: means of the functional scores, batch- and order-invariant, DDP-exact."""

from __future__ import annotations

import os
import pickle
import socket
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_distill.functional import (
    attribution_agreement,
    five_band_scores,
    localisation_score,
)
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore
from tests.attribution import reference


def make_batch(n: int = 20, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    truth = torch.zeros(n, 10, 10)
    for i in range(n):
        y, x = torch.randint(0, 5, (2,), generator=gen).tolist()
        truth[i, y : y + 5, x : x + 5] = 0.4
        truth[i, y : y + 2, x : x + 5] = 0.9
    maps = torch.randn(n, 3, 10, 10, generator=gen) + 2 * truth[:, None]
    other = maps + torch.randn(n, 3, 10, 10, generator=gen)
    return maps, other, truth


def run_metrics(maps, other, truth, batches):
    metrics = {
        "five_band": FiveBandScore(soft_steps=12),
        "localisation": AttributionLocalisation(),
        "agreement": AttributionAgreement(top_k=0.2),
    }
    for index in batches:
        metrics["five_band"].update(maps[index], truth[index])
        metrics["localisation"].update(maps[index], truth[index] > 0.5)
        metrics["agreement"].update(maps[index], other[index])
    out = {name: metric.compute() for name, metric in metrics.items()}
    out["curves"] = metrics["five_band"].curves()
    out["best"] = metrics["five_band"].per_image_best()
    for of in ("compute", "curves", "per_image_best"):
        out[f"std_{of}"] = metrics["five_band"].std(of)
    out["std_localisation"] = metrics["localisation"].std()
    out["std_agreement"] = metrics["agreement"].std()
    return out


def flat(result) -> dict[str, float | np.ndarray]:
    values = {}
    for name, value in result.items():
        if isinstance(value, dict):
            values.update({f"{name}/{k}": v.numpy() for k, v in value.items()})
        else:
            values[name] = value.numpy()
    return values


def test_metrics_are_means_of_functional_scores():
    maps, other, truth = make_batch()
    found = run_metrics(maps, other, truth, [slice(0, 7), slice(7, 20)])
    five = five_band_scores(maps, truth, soft_steps=12)
    for name, value in five.items():
        np.testing.assert_allclose(found["curves"][name].numpy(), value.mean(0).numpy(), rtol=1e-12)
        np.testing.assert_allclose(found["five_band"][name].item(), value.mean().item(), rtol=1e-12)
    expected = localisation_score(maps, truth > 0.5).mean()
    assert found["localisation"].item() == pytest.approx(expected.item(), rel=1e-12)
    agreement = attribution_agreement(maps, other, top_k=0.2)
    for name, value in agreement.items():
        assert found["agreement"][name].item() == pytest.approx(value.mean().item(), rel=1e-12)


def test_batch_size_and_order_invariance():
    maps, other, truth = make_batch()
    whole = flat(run_metrics(maps, other, truth, [slice(0, 20)]))
    order = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    shuffled = flat(
        run_metrics(
            maps[order], other[order], truth[order], [slice(i, i + 3) for i in range(0, 20, 3)]
        )
    )
    singles = flat(run_metrics(maps, other, truth, [slice(i, i + 1) for i in range(20)]))
    for name in whole:
        np.testing.assert_allclose(shuffled[name], whole[name], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(singles[name], whole[name], rtol=1e-12, err_msg=name)


def test_per_image_best_is_the_references_best_averaged_over_images():
    # the reference's Pu / Ru / Au: per image, the largest score over the threshold sets (each
    # score on its own); then the mean over images (its sAvePu, sAveRu, sAveAu). Computed here
    # with the plain numpy port of the per-image scores, image by image and set by set.
    maps, _, truth = make_batch()
    metric = FiveBandScore(soft_steps=12)
    for index in (slice(0, 7), slice(7, 20)):
        metric.update(maps[index], truth[index])
    per_image = reference.five_band(
        maps.numpy(), truth.numpy(), (-0.7, -0.3, 0.3, 0.7), (-0.7, -0.3, 0.3, 0.7), steps=12
    )
    found = metric.per_image_best()
    assert set(found) == {"pixel_accuracy", "precision", "recall"}  # no best of the fpr
    for name, value in found.items():
        expected = np.mean([max(row) for row in per_image[name]])
        assert value.dtype == torch.float64 and value.ndim == 0
        assert value.item() == pytest.approx(expected, rel=1e-12, abs=0), name
        # not the best of the curves: those average over images first, and are lower here
        assert metric.curves()[name].max().item() < value.item() - 1e-3, name
    # one threshold set: the best is the score itself
    single = FiveBandScore()
    single.update(maps, truth)
    for name, value in single.per_image_best().items():
        assert value.item() == pytest.approx(single.compute()[name].item(), rel=1e-12)


def test_per_image_best_by_hand():
    # two 1 x 4 images, bands read off by hand; sets (-0.7, -0.3, 0.3, 0.7) and, one step of
    # 0.2 toward zero, (-0.5, -0.1, 0.1, 0.5). Ground-truth bands 0 / 1 / 2 for 0 / 0.4 / 0.9.
    truth = torch.tensor([[[0.0, 0.4, 0.9, 0.9]], [[0.0, 0.4, 0.4, 0.9]]], dtype=torch.float64)
    maps = torch.tensor([[[0.0, 0.2, 0.6, 1.0]], [[0.25, 0.2, 0.0, 1.0]]], dtype=torch.float64)
    eps = 1e-6
    # image 1: set 0 bands 0 0 1 2 -> TP 1, FP 1 (band 1 on band 2), FN 1, TN 1;
    #          set 1 bands 0 1 2 2 -> all equal, TP 3
    # image 2: set 0 bands 0 0 0 2 -> TP 1, FP 0, FN 2, TN 1;
    #          set 1 bands 1 1 0 2 -> TP 2, FP 1, FN 1, TN 0
    scores = {  # [image][set]
        "pixel_accuracy": [[2 / 4, 4 / 4], [2 / 4, 2 / 4]],
        "precision": [[1 / (2 + eps), 3 / (3 + eps)], [1 / (1 + eps), 2 / (3 + eps)]],
        "recall": [[1 / (2 + eps), 3 / (3 + eps)], [1 / (3 + eps), 2 / (3 + eps)]],
    }
    metric = FiveBandScore(soft_steps=2, soft_delta=0.2)
    metric.update(maps, truth)
    curves, best = metric.curves(), metric.per_image_best()
    for name, rows in scores.items():
        np.testing.assert_allclose(curves[name].numpy(), np.mean(rows, 0), rtol=1e-12)
        # image 2's best precision is at set 0, its best recall at set 1: each on its own
        expected = (max(rows[0]) + max(rows[1])) / 2
        assert best[name].item() == pytest.approx(expected, rel=1e-12, abs=0), name
    assert best["pixel_accuracy"].item() == 0.75
    assert best["precision"].item() == pytest.approx(1.0, abs=1e-6)  # best of curves: 5 / 6
    assert curves["precision"].max().item() == pytest.approx(5 / 6, abs=1e-6)


def test_per_image_best_of_a_state_saved_without_it():
    # a persistent state saved before the best sums were a state: its images' bests are
    # unknown (NaN), its other scores load as saved; one with no image starts from zero
    maps, _, truth = make_batch()
    saved = FiveBandScore(soft_steps=3)
    saved.persistent(True)
    saved.update(maps, truth)
    old = {k: v for k, v in saved.state_dict().items() if k != "best_sum"}
    loaded = FiveBandScore(soft_steps=3)
    loaded.persistent(True)
    loaded.load_state_dict(old)
    with warnings.catch_warnings():  # a loaded metric has had no update: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        assert all(bool(v.isnan()) for v in loaded.per_image_best().values())
        for name, value in saved.compute().items():
            torch.testing.assert_close(loaded.compute()[name], value, rtol=0, atol=0)
    empty = FiveBandScore(soft_steps=3)
    empty.persistent(True)
    fresh = FiveBandScore(soft_steps=3)
    fresh.persistent(True)
    fresh.load_state_dict({k: v for k, v in empty.state_dict().items() if k != "best_sum"})
    fresh.update(maps, truth)
    for name, value in saved.per_image_best().items():
        torch.testing.assert_close(fresh.per_image_best()[name], value, rtol=0, atol=0)


def test_states_fixed_size_and_reset():
    maps, _, truth = make_batch()
    metric = FiveBandScore(soft_steps=5)
    shapes = {name: tuple(getattr(metric, name).shape) for name in metric._defaults}
    for i in range(4):
        metric.update(maps[i * 5 : (i + 1) * 5], truth[i * 5 : (i + 1) * 5])
        assert {name: tuple(getattr(metric, name).shape) for name in metric._defaults} == shapes
    assert all(metric._reductions[name] is not None for name in metric._defaults)
    assert int(metric.count) == 20
    metric.reset()
    assert int(metric.count) == 0 and float(metric.score_sum.abs().sum()) == 0.0
    assert float(metric.best_sum.abs().sum()) == 0.0
    assert metric.threshold_sets.shape == (5, 4)
    # before any update there is nothing to average: said, as torchmetrics says it for compute
    with pytest.warns(UserWarning, match="``curves`` method of metric FiveBandScore was called"):
        assert bool(metric.curves()["precision"].isnan().all())
    with pytest.warns(UserWarning, match="``per_image_best`` method of metric FiveBandScore"):
        assert bool(metric.per_image_best()["precision"].isnan())


def test_a_state_saved_under_another_configuration_is_refused():
    # a soft_steps=5 state read by a one-set metric: compute() averaged the five columns and
    # the next update broadcast its one set into all of them
    maps, _, truth = make_batch()
    soft = FiveBandScore(soft_steps=5)
    soft.update(maps, truth)
    soft.persistent(True)
    hard = FiveBandScore()
    hard.persistent(True)
    with pytest.raises(
        ValueError,
        match=r"state_dict\['score_sum'\] must have the shape \(4, 1\) .*got shape \(4, 5\): "
        r".*another configuration than this one \(thresholds=.*soft_steps=None, .*: 1 threshold "
        r"set\)",
    ):
        hard.load_state_dict(soft.state_dict())
    assert int(hard.count) == 0 and hard.score_sum.shape == (4, 1)
    # the same configuration loads and carries on as the saved metric does
    again = FiveBandScore(soft_steps=5)
    again.persistent(True)
    state = soft.state_dict()
    again.load_state_dict(state)
    again.update(maps, truth)
    # loaded as copies: the update leaves the state dict (and metrics loaded from it) alone
    assert int(state["count"]) == int(soft.count) == len(maps)
    assert torch.equal(state["score_sum"], soft.score_sum)
    soft.update(maps, truth)
    for name, value in soft.compute().items():
        torch.testing.assert_close(again.compute()[name], value)
    # metrics whose states' shapes no setting changes load as before
    for metric in (AttributionLocalisation(), AttributionAgreement(top_k=0.2)):
        metric.persistent(True)
        metric.load_state_dict(type(metric)().state_dict())


def test_metrics_of_other_settings_stay_apart_in_a_collection_and_on_load():
    # torchmetrics' MetricCollection puts metrics whose states are equal after the first update
    # in one compute group and updates only one of them: two threshold sets after a batch of
    # blank images (all scores 0) were computed as one, silently
    from torchmetrics import MetricCollection

    from lightning_distill.attribution.functional import EARLY_THRESHOLDS

    generator = torch.Generator().manual_seed(0)
    blank_maps, blank_truth = torch.randn(4, 1, 8, 8, generator=generator), torch.zeros(4, 8, 8)
    maps = torch.randn(16, 1, 8, 8, generator=generator)
    truth = torch.rand(16, 8, 8, generator=generator) * 1.8 - 0.9

    def make():
        return {
            "reference": FiveBandScore(),
            "early": FiveBandScore(thresholds=EARLY_THRESHOLDS),
            "agree_10": AttributionAgreement(top_k=0.1),
            "agree_20": AttributionAgreement(top_k=0.2),
        }

    separate = make()
    five = MetricCollection({k: v for k, v in make().items() if k in ("reference", "early")})
    five.update(blank_maps, blank_truth)
    five.update(maps, truth)
    for name in ("reference", "early"):
        separate[name].update(blank_maps, blank_truth)
        separate[name].update(maps, truth)
        for score, value in separate[name].compute().items():
            torch.testing.assert_close(five.compute()[f"{name}_{score}"], value)
    assert five["reference"].compute()["fpr"] != five["early"].compute()["fpr"]
    agree = MetricCollection({k: v for k, v in make().items() if k.startswith("agree")})
    same = torch.zeros(4, 1, 8, 8)
    agree.update(same, same)  # constant maps: every score the same for both top_k
    agree.update(maps, maps.flip(-1))
    assert len(agree.compute_groups) == 2
    # fingerprints that torch.allclose would take for equal if they were scalars (a reviewer
    # found top_k 0.193 and 0.454 grouped, one reported with the other's overlap)
    pair = MetricCollection(
        {"a": AttributionAgreement(top_k=0.193), "b": AttributionAgreement(top_k=0.454)}
    )
    pair.update(same, same)
    pair.update(maps, maps.flip(-1))
    alone = AttributionAgreement(top_k=0.454)
    alone.update(same, same)
    alone.update(maps, maps.flip(-1))
    torch.testing.assert_close(pair.compute()["b_top_k_iou"], alone.compute()["top_k_iou"])
    # a dict of states merges like a metric: refused with other settings, taken as this
    # metric's when it has no fingerprint
    tenth = AttributionAgreement(top_k=0.1)
    with pytest.raises(ValueError, match="incoming_state must be an AttributionAgreement of the"):
        tenth.merge_state({k: v for k, v in alone.metric_state.items()})
    tenth.merge_state({k: v for k, v in alone.metric_state.items() if k != "configuration"})
    assert int(tenth.count) == int(alone.count)
    # a saved state of other settings (same shapes) is refused; merging one too
    other = FiveBandScore(thresholds=EARLY_THRESHOLDS)
    other.update(maps, truth)
    other.persistent(True)
    mine = FiveBandScore()
    mine.persistent(True)
    with pytest.raises(
        ValueError, match=r"state_dict must be saved by a FiveBandScore of the same"
    ):
        mine.load_state_dict(other.state_dict())
    assert int(mine.count) == 0
    with pytest.raises(ValueError, match=r"incoming_state must be a FiveBandScore of the same"):
        mine.merge_state(other)
    twin = FiveBandScore(thresholds=EARLY_THRESHOLDS)
    twin.merge_state(other)
    assert int(twin.count) == int(other.count)
    # a state saved without the fingerprint (before it was a state) still loads
    old = {k: v for k, v in other.state_dict().items() if k != "configuration"}
    twin = FiveBandScore(thresholds=EARLY_THRESHOLDS)
    twin.persistent(True)
    twin.load_state_dict(old)
    assert int(twin.count) == int(other.count)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_a_cast_of_the_holding_module_leaves_states_and_thresholds_as_they_are(dtype):
    # Lightning's "bf16-true" casts the LightningModule that holds the metrics with .to(dtype):
    # float64 sums summed in bf16, or thresholds read in bf16, would change the scores
    maps, other, truth = make_batch()
    reference = flat(run_metrics(maps, other, truth, [slice(0, 20)]))
    holder = torch.nn.Module()
    holder.metrics = torch.nn.ModuleList(
        [FiveBandScore(soft_steps=12), AttributionLocalisation(), AttributionAgreement(top_k=0.2)]
    )
    before = {
        (i, name): getattr(metric, name).dtype
        for i, metric in enumerate(holder.metrics)
        for name in metric._defaults
    }
    holder.to(dtype)
    holder.metrics[0].set_dtype(dtype)  # asked of the metric itself: the same
    after = {
        (i, name): getattr(metric, name).dtype
        for i, metric in enumerate(holder.metrics)
        for name in metric._defaults
    }
    assert after == before and holder.metrics[0].threshold_sets.dtype == torch.float64
    five_band, localisation, agreement = holder.metrics
    five_band.update(maps, truth)
    localisation.update(maps, truth > 0.5)
    agreement.update(maps, other)
    cast = {"five_band": five_band.compute(), "localisation": localisation.compute()}
    cast["agreement"], cast["curves"] = agreement.compute(), five_band.curves()
    for name, value in flat(cast).items():
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
    five_band.reset()  # the defaults a reset restores kept their dtype too
    assert five_band.score_sum.dtype == torch.float64
    # a cached result is the states' value: not cast either; what keeps the dtype still runs
    computed = localisation.compute()
    holder.to(dtype)
    assert localisation.compute().dtype == torch.float64
    assert float(localisation.compute()) == float(computed)
    holder.share_memory()
    assert localisation.score_sum.is_shared() and five_band.threshold_sets.is_shared()


def test_metric_bad_arguments():
    with pytest.raises(ValueError, match="thresholds must be four strictly increasing"):
        FiveBandScore(thresholds=(0.7, 0.3, -0.3, -0.7))
    with pytest.raises(ValueError, match="soft_steps must be an integer >= 1"):
        FiveBandScore(soft_steps=0)
    with pytest.raises(ValueError, match="top_k must be"):
        AttributionAgreement(top_k=1.5)
    metric = AttributionLocalisation()
    with pytest.raises(ValueError, match="must be finite"):
        metric.update(torch.full((1, 4, 4), float("nan")), torch.ones(1, 4, 4))
    assert int(metric.count) == 0


@pytest.mark.parametrize(
    ("soft_delta", "error"), [("0.01", TypeError), (None, TypeError), (-0.01, ValueError)]
)
def test_a_bad_soft_delta_is_refused_by_name_without_soft_steps(soft_delta, error):
    # without soft_steps the delta moves no threshold, but the metric still keeps it
    with pytest.raises(error, match=r"^soft_delta must be .*; got "):
        FiveBandScore(soft_delta=soft_delta)
    with pytest.raises(error, match=r"^soft_delta must be .*; got "):
        five_band_scores(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), soft_delta=soft_delta)


def test_plot_returns_figure():
    maps, other, _ = make_batch(4)
    metric = AttributionAgreement()
    metric.update(maps, other)
    fig, ax = metric.plot()
    assert fig is ax.figure


# ---------------------------------------------------------------------------- DDP
def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        maps, other, truth = make_batch()
        # uneven shares: rank 0 three batches, rank 1 two batches
        shares = {0: [slice(0, 4), slice(4, 9), slice(9, 15)], 1: [slice(15, 18), slice(18, 20)]}
        found = flat(run_metrics(maps, other, truth, shares[rank]))
        with open(f"{out}.{rank}", "wb") as handle:
            pickle.dump(found, handle)
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_equal_one(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = str(tmp_path / "result")
    # forked workers skip re-importing torch and the library (seconds on a loaded machine)
    mp.start_processes(_worker, args=(2, port, out), nprocs=2, join=True, start_method="fork")
    maps, other, truth = make_batch()
    expected = flat(run_metrics(maps, other, truth, [slice(0, 20)]))
    for rank in (0, 1):
        with open(f"{out}.{rank}", "rb") as handle:
            found = pickle.load(handle)
        assert found.keys() == expected.keys()
        for name in expected:
            # float64 sums added in another order: equal to the last few bits
            np.testing.assert_allclose(found[name], expected[name], rtol=1e-13, err_msg=name)


@pytest.mark.parametrize("name", ["five_band", "localisation", "agreement"])
def test_compute_after_refused_updates_alone_says_there_is_nothing_to_average(name):
    """torchmetrics counts an update that raised and warns only before the first update: after
    refused updates alone, compute (and curves) gave NaN means without a word."""
    maps, other, truth = make_batch()
    masks = truth > 0.5
    metric, good, bad = {
        "five_band": (FiveBandScore(soft_steps=3), (maps, truth), (maps, truth[:, :3])),
        "localisation": (AttributionLocalisation(), (maps, masks), (maps, masks[:, :3])),
        "agreement": (AttributionAgreement(), (maps, other), (maps, other[:, :, :3])),
    }[name]
    with pytest.raises(ValueError):
        metric.update(*bad)
    assert int(metric.count) == 0  # the refused batch left the sums as they were
    with pytest.warns(UserWarning, match="every update since the last reset was refused"):
        values = metric.compute()
    values = values if isinstance(values, dict) else {"value": values}
    assert all(bool(v.isnan().all()) for v in values.values())
    if name == "five_band":
        with pytest.warns(UserWarning, match="every update since the last reset was refused"):
            metric.curves()
        with pytest.warns(UserWarning, match="every update since the last reset was refused"):
            assert all(bool(v.isnan()) for v in metric.per_image_best().values())
    # a good update after the refused one: the means of the good batch alone, and no warning
    metric.update(*good)
    reference = type(metric)(**({"soft_steps": 3} if name == "five_band" else {}))
    reference.update(*good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, expected = metric.compute(), reference.compute()
    got = got if isinstance(got, dict) else {"value": got}
    expected = expected if isinstance(expected, dict) else {"value": expected}
    assert all(torch.equal(got[k], expected[k]) for k in expected)


@pytest.mark.parametrize("name", ["five_band", "localisation", "agreement"])
def test_a_refused_forward_keeps_the_batches_accumulated_before_it(name):
    """torchmetrics' forward resets the states before it updates on the batch: a batch refused
    there (metric(bad) raising) wiped every batch accumulated before it."""
    maps, other, truth = make_batch()
    masks = truth > 0.5
    build, second, bad = {
        "five_band": (lambda: FiveBandScore(soft_steps=3), truth, truth[:, :3]),
        "localisation": (AttributionLocalisation, masks, masks[:, :3]),
        "agreement": (AttributionAgreement, other, other[:, :, :3]),
    }[name]
    metric, reference = build(), build()
    metric(maps[:8], second[:8])
    before = {key: value.clone() for key, value in metric.metric_state.items()}
    with pytest.raises(ValueError):
        metric(maps[8:], bad[8:])
    assert all(torch.equal(value, before[key]) for key, value in metric.metric_state.items())
    batch_value = metric(maps[8:], second[8:])
    alone = build()
    alone.update(maps[8:], second[8:])
    batch_value = batch_value if isinstance(batch_value, dict) else {"value": batch_value}
    alone_value = alone.compute()
    alone_value = alone_value if isinstance(alone_value, dict) else {"value": alone_value}
    for key in alone_value:  # forward's value: the batch's alone
        torch.testing.assert_close(batch_value[key], alone_value[key], rtol=1e-12, atol=1e-12)
    reference.update(maps, second)  # all the accepted images, in one update
    got, expected = metric.compute(), reference.compute()
    got = got if isinstance(got, dict) else {"value": got}
    expected = expected if isinstance(expected, dict) else {"value": expected}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("thresholds", (-0.5, -0.1, 0.1, 0.5)),
        ("ground_truth_thresholds", (-0.9, -0.5, 0.5, 0.9)),
        ("soft_steps", 5),
        ("soft_delta", 0.01),
        ("clamp", (-0.1, 0.1)),
    ],
)
def test_five_band_settings_set_after_construction_are_refused(name, value):
    # the threshold sets and the states are made at construction: a setting assigned later was
    # never read, while the metric's description (and the identity its states are loaded
    # against) reported it
    metric = FiveBandScore(soft_steps=3)
    before = getattr(metric, name)
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction"):
        setattr(metric, name, value)
    assert getattr(metric, name) == before
    # a clone and a pickled copy keep the settings, and score as the metric does
    truth = torch.zeros(2, 8, 8)
    truth[:, 2:6, 2:6] = 0.9
    maps = truth + 0.3 * torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for copied in (metric.clone(), pickle.loads(pickle.dumps(metric))):
        assert getattr(copied, name) == before
        copied.update(maps, truth)
    metric.update(maps, truth)
    assert metric.compute() == copied.compute()


# ------------------------------------------- spread over images, image selection, clamping
def _reference_stats(maps, truth, keep=None, steps=12, **kwargs):
    per_image = reference.five_band(
        maps.numpy(), truth.numpy(), (-0.7, -0.3, 0.3, 0.7), (-0.7, -0.3, 0.3, 0.7), steps, **kwargs
    )
    return per_image, reference.stats_across_images(per_image, keep)


def test_std_is_the_reference_analysis_spread_over_images():
    # get_stats_across_samples: per image the mean over the sets and the best, then over the
    # images np.mean and np.var(x) ** 0.5 (ddof=0); transcribed apart in tests/attribution
    maps, _, truth = make_batch()
    metric = FiveBandScore(soft_steps=12)
    for index in (slice(0, 7), slice(7, 20)):
        metric.update(maps[index], truth[index])
    per_image, stats = _reference_stats(maps, truth)
    compute, std = metric.compute(), metric.std()
    best, best_std = metric.per_image_best(), metric.std("per_image_best")
    assert set(best_std) == {"pixel_accuracy", "precision", "recall"}
    for name in ("pixel_accuracy", "precision", "recall"):
        assert compute[name].item() == pytest.approx(stats[f"ave_mu/{name}"], rel=1e-12)
        assert std[name].item() == pytest.approx(stats[f"std_mu/{name}"], rel=1e-10), name
        assert best[name].item() == pytest.approx(stats[f"ave_u/{name}"], rel=1e-12)
        assert best_std[name].item() == pytest.approx(stats[f"std_u/{name}"], rel=1e-10), name
        assert std[name].item() > 0.01 and best_std[name].item() > 0.01  # not a trivial case
    # the false-positive rate's soft score has one too; the curves one per set; ddof as numpy
    soft_fpr = per_image["fpr"].mean(1)
    assert std["fpr"].item() == pytest.approx(np.std(soft_fpr), rel=1e-10)
    for name, table in per_image.items():
        np.testing.assert_allclose(metric.std("curves")[name].numpy(), table.std(0), rtol=1e-10)
        np.testing.assert_allclose(
            metric.std("curves", ddof=1)[name].numpy(), table.std(0, ddof=1), rtol=1e-10
        )
        assert metric.std(ddof=1)[name].item() == pytest.approx(
            np.std(table.mean(1), ddof=1), rel=1e-10
        )
    for value in (*std.values(), *best_std.values()):
        assert value.dtype == torch.float64 and value.ndim == 0
    assert metric.std("curves")["precision"].shape == (12,)


def test_std_by_hand():
    # the two 1 x 4 images of test_per_image_best_by_hand: pixel accuracy per [image][set]
    # [[1/2, 1], [1/2, 1/2]]; two values a, b spread |a - b| / 2 (ddof=0), |a - b| / sqrt(2)
    truth = torch.tensor([[[0.0, 0.4, 0.9, 0.9]], [[0.0, 0.4, 0.4, 0.9]]], dtype=torch.float64)
    maps = torch.tensor([[[0.0, 0.2, 0.6, 1.0]], [[0.25, 0.2, 0.0, 1.0]]], dtype=torch.float64)
    metric = FiveBandScore(soft_steps=2, soft_delta=0.2)
    metric.update(maps, truth)
    # soft scores 3/4 and 1/2; bests 1 and 1/2; per set: (1/2, 1/2) and (1, 1/2)
    assert metric.std()["pixel_accuracy"].item() == pytest.approx(0.125, abs=1e-15)
    assert metric.std(ddof=1)["pixel_accuracy"].item() == pytest.approx(
        0.25 / np.sqrt(2), abs=1e-15
    )
    assert metric.std("per_image_best")["pixel_accuracy"].item() == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_allclose(
        metric.std("curves")["pixel_accuracy"].numpy(), [0.0, 0.25], rtol=0, atol=1e-15
    )
    # precision: image 1 [1/(2+e), 3/(3+e)], image 2 [1/(1+e), 2/(3+e)]; bests 3/(3+e), 1/(1+e)
    eps = 1e-6
    bests = [3 / (3 + eps), 1 / (1 + eps)]
    # a spread of 3.3e-7, read from float64 sums of squares near 2: resolved to about 1e-10
    # (the docstring's limit, 1e-8 per update, is on a spread near zero)
    assert metric.std("per_image_best")["precision"].item() == pytest.approx(
        abs(bests[0] - bests[1]) / 2, abs=1e-10
    )
    # one image: no spread (ddof=0), none to measure (ddof=1: NaN, said)
    single = FiveBandScore(soft_steps=2, soft_delta=0.2)
    single.update(maps[:1], truth[:1])
    assert all(v.item() == 0.0 for v in single.std("per_image_best").values())
    with pytest.warns(UserWarning, match=r"std\(ddof=1\) needs more than 1 image; .* has 1"):
        assert all(bool(v.isnan()) for v in single.std(ddof=1).values())


def _all_results(metric) -> dict:
    return flat(
        {
            "compute": metric.compute(),
            "curves": metric.curves(),
            "best": metric.per_image_best(),
            **{f"std_{of}": metric.std(of) for of in ("compute", "curves", "per_image_best")},
        }
    )


@pytest.mark.parametrize("clamp", [None, (-0.5, 0.5)])
def test_merged_states_equal_one_metric_over_all_images(clamp):
    # what DDP's sync does (every state is summed): two metrics' states merged give the
    # results, spreads included, of one metric that saw all the images
    maps, _, truth = make_batch(30, seed=4)
    keep = torch.rand(30, generator=torch.Generator().manual_seed(5)) < 0.7
    build = lambda: FiveBandScore(soft_steps=7, clamp=clamp)  # noqa: E731
    first, second, whole = build(), build(), build()
    first.update(maps[:11], truth[:11], keep=keep[:11])
    second.update(maps[11:], truth[11:], keep=keep[11:])
    whole.update(maps, truth, keep=keep)
    first.merge_state(second)
    assert int(first.count) == int(keep.sum())
    merged, expected = _all_results(first), _all_results(whole)
    assert merged.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(merged[name], expected[name], rtol=1e-12, err_msg=name)
    # and the states as a dict, as a process would send them; an empty metric adds nothing
    third = build()
    third.update(maps[:11], truth[:11], keep=keep[:11])
    third.merge_state(dict(second.metric_state))
    third.merge_state(build())
    for name, value in _all_results(third).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-12, err_msg=name)


def test_keep_scores_the_kept_images_only():
    # the reference's only_correct_pred: the images whose predicted class is their label
    maps, _, truth = make_batch()
    logits = torch.randn(20, 4, generator=torch.Generator().manual_seed(6))
    labels = torch.randint(0, 4, (20,), generator=torch.Generator().manual_seed(7))
    correct = logits.argmax(1) == labels
    assert 3 <= int(correct.sum()) <= 17
    keep_copy = correct.clone()
    metric = FiveBandScore(soft_steps=12)
    for index in (slice(0, 7), slice(7, 20)):
        metric.update(maps[index], truth[index], keep=correct[index])
    assert torch.equal(correct, keep_copy)  # left as it was
    _, stats = _reference_stats(maps, truth, keep=correct.numpy())
    filtered = FiveBandScore(soft_steps=12)
    filtered.update(maps[correct], truth[correct])
    assert _all_results(metric).keys() == _all_results(filtered).keys()
    for name, value in _all_results(filtered).items():
        np.testing.assert_allclose(_all_results(metric)[name], value, rtol=1e-12, err_msg=name)
    for name in ("pixel_accuracy", "precision", "recall"):
        assert metric.compute()[name].item() == pytest.approx(stats[f"ave_mu/{name}"], rel=1e-12)
        assert metric.std()[name].item() == pytest.approx(stats[f"std_mu/{name}"], rel=1e-10)
        assert metric.std("per_image_best")[name].item() == pytest.approx(
            stats[f"std_u/{name}"], rel=1e-10
        )
    # a batch that keeps no image adds none; forward's value is that of its kept images
    before = {k: v.clone() for k, v in metric.metric_state.items()}
    metric.update(maps[:5], truth[:5], keep=torch.zeros(5, dtype=torch.bool))
    assert all(torch.equal(v, before[k]) for k, v in metric.metric_state.items())
    forward = FiveBandScore(soft_steps=12)
    value = forward(maps[:10], truth[:10], keep=correct[:10])
    alone = FiveBandScore(soft_steps=12)
    alone.update(maps[:10][correct[:10]], truth[:10][correct[:10]])
    assert all(torch.equal(value[k], v) for k, v in alone.compute().items())
    assert int(forward.count) == int(correct[:10].sum())
    # a metric whose updates kept nothing says why its means are NaN
    nothing = FiveBandScore()
    nothing.update(maps[:3], truth[:3], keep=torch.zeros(3, dtype=torch.bool))
    with pytest.warns(UserWarning, match=r"or kept none of its images \(keep\)"):
        assert bool(nothing.compute()["precision"].isnan())


#: ``keep`` arguments refused for a batch of 3 images: the error and the message it matches.
_BAD_KEEPS = [
    ([True, False, True], TypeError, r"keep must be a bool tensor of shape \[3\].*got 'list'"),
    (torch.tensor([1, 0, 1]), TypeError, r"keep must be a bool tensor .*got torch\.int64"),
    (torch.ones(4, dtype=torch.bool), ValueError, r"keep must be .*\[3\].*got \(4,\)"),
    (torch.ones(3, 1, dtype=torch.bool), ValueError, r"got \(3, 1\)"),
]


def _refuses_keep(metric, batch, keep, error, match) -> None:
    """``metric`` refuses ``keep`` with ``batch`` in ``update`` and in ``forward``, and its
    states are left as they were."""
    before = {k: v.clone() for k, v in metric.metric_state.items()}
    with pytest.raises(error, match=match):
        metric.update(*batch, keep=keep)
    with pytest.raises(error, match=match):
        metric(*batch, keep=keep)
    assert all(torch.equal(v, before[k]) for k, v in metric.metric_state.items())


@pytest.mark.parametrize(("keep", "error", "match"), _BAD_KEEPS)
def test_bad_keep_is_refused_by_name_and_adds_nothing(keep, error, match):
    maps, _, truth = make_batch(3)
    metric = FiveBandScore(soft_steps=3)
    metric.update(maps, truth)
    _refuses_keep(metric, (maps, truth), keep, error, match)


def test_std_arguments_are_checked_and_an_early_call_warns():
    metric = FiveBandScore(soft_steps=3)
    with pytest.warns(UserWarning, match="``std`` method of metric FiveBandScore was called"):
        assert all(bool(v.isnan()) for v in metric.std().values())
    maps, _, truth = make_batch(4)
    metric.update(maps, truth)
    with pytest.raises(ValueError, match=r"of must be one of 'compute', 'curves', 'per_image_b"):
        metric.std("mean")
    with pytest.raises(ValueError, match=r"ddof must be an integer >= 0"):
        metric.std(ddof=-1)
    with pytest.raises(TypeError, match=r"ddof must be an integer"):
        metric.std(ddof=0.5)


def test_the_early_call_warning_comes_from_global_rank_zero_only(monkeypatch):
    # as torchmetrics' own warning for compute: under DDP every process reads the same synced
    # states, and each had said the same
    from lightning.pytorch.utilities import rank_zero_only

    five_band = FiveBandScore(soft_steps=3)
    reads = (five_band.std, five_band.curves, five_band.per_image_best, AttributionAgreement().std)
    for read in reads:
        with pytest.warns(UserWarning, match=r"method of metric \w+ was called before") as caught:
            read()
        # it points at the line that called the method
        assert [w.filename for w in caught] == [__file__], read
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for read in reads:
            read()


def test_a_state_saved_before_the_spreads_loads_with_them_unknown():
    # a persistent state saved before the sums of squares (and the bests) were states: its
    # means load as saved, its spreads (and bests) are unknown: NaN, not a silent 0
    from lightning_distill.attribution.metrics import _LATER_STATES

    maps, _, truth = make_batch()
    saved = FiveBandScore(soft_steps=3)
    saved.persistent(True)
    saved.update(maps, truth)
    for dropped in (_LATER_STATES, _LATER_STATES[1:]):
        old = {k: v for k, v in saved.state_dict().items() if k not in dropped}
        loaded = FiveBandScore(soft_steps=3)
        loaded.persistent(True)
        loaded.load_state_dict(old)
        with warnings.catch_warnings():  # a loaded metric has had no update: torchmetrics warns
            warnings.simplefilter("ignore", UserWarning)
            for of in ("compute", "curves", "per_image_best"):
                assert all(bool(v.isnan().all()) for v in loaded.std(of).values())
            for name, value in saved.compute().items():
                torch.testing.assert_close(loaded.compute()[name], value, rtol=0, atol=0)
            bests_known = "best_sum" not in dropped
            assert all(bool(v.isnan()) != bests_known for v in loaded.per_image_best().values())
    # one with no image starts from zero
    empty = FiveBandScore(soft_steps=3)
    empty.persistent(True)
    fresh = FiveBandScore(soft_steps=3)
    fresh.persistent(True)
    fresh.load_state_dict({k: v for k, v in empty.state_dict().items() if k not in _LATER_STATES})
    fresh.update(maps, truth)
    assert _all_results(fresh).keys() == _all_results(saved).keys()
    for name, value in _all_results(saved).items():
        np.testing.assert_array_equal(_all_results(fresh)[name], value, err_msg=name)


def test_clamp_is_part_of_the_settings_and_the_default_fingerprint_is_unchanged():
    # the fingerprint of a metric without clamp is that of the states saved before it existed
    default = FiveBandScore()
    assert default.configuration.to(torch.int64).tolist() == [
        243, 253, 12, 27, 25, 140, 213, 31, 1, 79, 62, 107, 126, 187, 119, 59
    ]  # fmt: skip
    maps, _, truth = make_batch(6)
    clamped = FiveBandScore(soft_steps=4, clamp=(-0.5, 0.5))
    clamped.update(maps, truth)
    expected = five_band_scores(maps, truth, soft_steps=4, clamp=(-0.5, 0.5))
    for name, value in clamped.curves().items():
        np.testing.assert_allclose(value.numpy(), expected[name].mean(0).numpy(), rtol=1e-12)
    assert "clamp=(-0.5, 0.5)" in clamped._configuration()
    other = FiveBandScore(soft_steps=4)
    with pytest.raises(ValueError, match=r"incoming_state must be a FiveBandScore of the same"):
        other.merge_state(clamped)
    clamped.persistent(True)
    other.persistent(True)
    with pytest.raises(ValueError, match=r"state_dict must be saved by a FiveBandScore of the"):
        other.load_state_dict(clamped.state_dict())


# ------------------------- spread over images, image selection: localisation and agreement
def _score_metric(name: str, n: int = 20, seed: int = 0):
    """``(build, maps, second, per_image)``: a metric's constructor, its two inputs for ``n``
    images and the functional per-image scores (numpy ``[n]`` per score name)."""
    maps, other, truth = make_batch(n, seed=seed)
    if name == "localisation":
        masks = truth > 0.5
        per_image = {"localisation": localisation_score(maps, masks).numpy()}
        return AttributionLocalisation, maps, masks, per_image
    scores = attribution_agreement(maps, other, top_k=0.2)
    per_image = {key: value.numpy() for key, value in scores.items()}
    return (lambda: AttributionAgreement(top_k=0.2)), maps, other, per_image


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {"localisation": value}


def _score_results(metric) -> dict:
    return {
        **{f"mean/{k}": v for k, v in _as_dict(metric.compute()).items()},
        **{f"std/{k}": v for k, v in _as_dict(metric.std()).items()},
        **{f"std1/{k}": v for k, v in _as_dict(metric.std(ddof=1)).items()},
    }


@pytest.mark.parametrize("name", ["localisation", "agreement"])
def test_score_metrics_std_is_numpys_over_the_per_image_scores(name):
    build, maps, second, per_image = _score_metric(name)
    metric = build()
    for index in (slice(0, 7), slice(7, 20)):
        metric.update(maps[index], second[index])
    std, std1 = _as_dict(metric.std()), _as_dict(metric.std(ddof=1))
    assert std.keys() == per_image.keys() == std1.keys()
    for key, values in per_image.items():
        assert np.std(values) > 0.01  # not a trivial case
        assert std[key].item() == pytest.approx(np.std(values), rel=1e-10), key
        assert std1[key].item() == pytest.approx(np.std(values, ddof=1), rel=1e-10), key
        assert std[key].dtype == torch.float64 and std[key].ndim == 0
    # one image: no spread (ddof=0), none to measure (ddof=1: NaN, said)
    single = build()
    single.update(maps[:1], second[:1])
    assert all(v.item() == 0.0 for v in _as_dict(single.std()).values())
    with pytest.warns(UserWarning, match=r"std\(ddof=1\) needs more than 1 image; .* has 1"):
        assert all(bool(v.isnan()) for v in _as_dict(single.std(ddof=1)).values())


def test_score_metrics_std_by_hand():
    # localisation of two 1 x 4 maps on the mask [1, 1, 0, 0]: 1 and 1/4; spread 3/8 (ddof 0)
    masks = torch.tensor([[[True, True, False, False]]] * 2)
    maps = torch.tensor([[[1.0, 2.0, 0.0, 0.0]], [[1.0, 0.0, 2.0, 1.0]]], dtype=torch.float64)
    metric = AttributionLocalisation()
    metric.update(maps, masks)
    assert metric.compute().item() == pytest.approx(0.625, abs=1e-15)
    assert metric.std().item() == pytest.approx(0.375, abs=1e-15)
    assert metric.std(ddof=1).item() == pytest.approx(0.75 / np.sqrt(2), abs=1e-15)
    # agreement of a map with itself (Spearman 1) and with its reverse (-1): spread 1
    a = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]] * 2)
    b = torch.stack([a[0], a[1].flip(-1)])
    agreement = AttributionAgreement(top_k=0.25, absolute=False)
    agreement.update(a, b)
    assert agreement.compute()["spearman"].item() == pytest.approx(0.0, abs=1e-15)
    assert agreement.std()["spearman"].item() == pytest.approx(1.0, abs=1e-15)
    # top 1 of 4: the same pixel (IoU 1), then the other end (IoU 0)
    assert agreement.std()["top_k_iou"].item() == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("name", ["localisation", "agreement"])
def test_score_metrics_keep_scores_the_kept_images_only(name):
    build, maps, second, per_image = _score_metric(name)
    logits = torch.randn(20, 4, generator=torch.Generator().manual_seed(6))
    labels = torch.randint(0, 4, (20,), generator=torch.Generator().manual_seed(7))
    correct = logits.argmax(1) == labels
    assert 3 <= int(correct.sum()) <= 17
    keep_copy = correct.clone()
    metric = build()
    for index in (slice(0, 7), slice(7, 20)):
        metric.update(maps[index], second[index], keep=correct[index])
    assert torch.equal(correct, keep_copy)  # left as it was
    assert int(metric.count) == int(correct.sum())
    kept = correct.numpy()
    for key, values in per_image.items():
        mean, std = _as_dict(metric.compute())[key], _as_dict(metric.std())[key]
        assert mean.item() == pytest.approx(np.mean(values[kept]), rel=1e-12), key
        assert std.item() == pytest.approx(np.std(values[kept]), rel=1e-10), key
    filtered = build()
    filtered.update(maps[correct], second[correct])
    for key, value in _score_results(filtered).items():
        torch.testing.assert_close(_score_results(metric)[key], value, rtol=1e-12, atol=0)
    # a batch that keeps no image adds none; forward's value is that of its kept images
    before = {k: v.clone() for k, v in metric.metric_state.items()}
    metric.update(maps[:5], second[:5], keep=torch.zeros(5, dtype=torch.bool))
    assert all(torch.equal(v, before[k]) for k, v in metric.metric_state.items())
    forward = build()
    value = _as_dict(forward(maps[:10], second[:10], keep=correct[:10]))
    alone = build()
    alone.update(maps[:10][correct[:10]], second[:10][correct[:10]])
    assert all(torch.equal(value[k], v) for k, v in _as_dict(alone.compute()).items())
    assert int(forward.count) == int(correct[:10].sum())
    # a metric whose updates kept nothing says why its means and spreads are NaN
    nothing = build()
    nothing.update(maps[:3], second[:3], keep=torch.zeros(3, dtype=torch.bool))
    with pytest.warns(UserWarning, match=r"or kept none of its images \(keep\)"):
        assert all(bool(v.isnan()) for v in _as_dict(nothing.compute()).values())
    with pytest.warns(UserWarning, match=r"or kept none of its images \(keep\)"):
        assert all(bool(v.isnan()) for v in _as_dict(nothing.std()).values())


@pytest.mark.parametrize("name", ["localisation", "agreement"])
def test_score_metrics_merged_states_equal_one_metric_over_all_images(name):
    # what DDP's sync does (every state is summed): spreads included
    build, maps, second, _ = _score_metric(name, 30, seed=4)
    keep = torch.rand(30, generator=torch.Generator().manual_seed(5)) < 0.7
    first, other, whole = build(), build(), build()
    first.update(maps[:11], second[:11], keep=keep[:11])
    other.update(maps[11:], second[11:], keep=keep[11:])
    whole.update(maps, second, keep=keep)
    first.merge_state(other)
    assert int(first.count) == int(keep.sum())
    expected = _score_results(whole)
    for key, value in _score_results(first).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-12, atol=0)
    # and the states as a dict, as a process would send them; an empty metric adds nothing
    third = build()
    third.update(maps[:11], second[:11], keep=keep[:11])
    third.merge_state(dict(other.metric_state))
    third.merge_state(build())
    for key, value in _score_results(third).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["localisation", "agreement"])
@pytest.mark.parametrize(("keep", "error", "match"), _BAD_KEEPS)
def test_score_metrics_bad_keep_is_refused_by_name_and_adds_nothing(name, keep, error, match):
    build, maps, second, _ = _score_metric(name, 3)
    metric = build()
    metric.update(maps, second)
    _refuses_keep(metric, (maps, second), keep, error, match)


@pytest.mark.parametrize("name", ["localisation", "agreement"])
def test_score_metrics_std_arguments_are_checked_and_an_early_call_warns(name):
    build, maps, second, _ = _score_metric(name, 4)
    metric = build()
    with pytest.warns(UserWarning, match=r"``std`` method of metric Attribution\w+ was called"):
        assert all(bool(v.isnan()) for v in _as_dict(metric.std()).values())
    metric.update(maps, second)
    with pytest.raises(ValueError, match=r"ddof must be an integer >= 0"):
        metric.std(ddof=-1)
    with pytest.raises(TypeError, match=r"ddof must be an integer"):
        metric.std(ddof=0.5)
    with pytest.raises(TypeError):  # keyword only, as FiveBandScore's "of" comes first there
        metric.std(1)


@pytest.mark.parametrize("name", ["localisation", "agreement"])
def test_score_metrics_state_saved_before_the_spreads_loads_with_them_unknown(name):
    build, maps, second, _ = _score_metric(name)
    saved = build()
    saved.persistent(True)
    saved.update(maps, second)
    old = {k: v for k, v in saved.state_dict().items() if k != "score_square_sum"}
    loaded = build()
    loaded.persistent(True)
    loaded.load_state_dict(old)
    with warnings.catch_warnings():  # a loaded metric has had no update: torchmetrics warns
        warnings.simplefilter("ignore", UserWarning)
        assert all(bool(v.isnan()) for v in _as_dict(loaded.std()).values())
        for key, value in _as_dict(saved.compute()).items():
            torch.testing.assert_close(_as_dict(loaded.compute())[key], value, rtol=0, atol=0)
    # one with no image starts from zero
    empty = build()
    empty.persistent(True)
    fresh = build()
    fresh.persistent(True)
    fresh.load_state_dict({k: v for k, v in empty.state_dict().items() if k != "score_square_sum"})
    fresh.update(maps, second)
    for key, value in _score_results(saved).items():
        torch.testing.assert_close(_score_results(fresh)[key], value, rtol=0, atol=0)


def _all_results(metric) -> dict:
    """Every value a metric reads from its (synced) states: means, spreads, and for the five
    bands the curves, the per-image bests and their spreads."""
    results = _score_results(metric)
    if isinstance(metric, FiveBandScore):
        for of in ("curves", "per_image_best"):
            results.update({f"std_{of}/{k}": v for k, v in metric.std(of, ddof=1).items()})
        results.update({f"curves/{k}": v for k, v in metric.curves().items()})
        results.update({f"best/{k}": v for k, v in metric.per_image_best().items()})
    return results


@pytest.mark.parametrize("name", ["five_band", "localisation", "agreement"])
def test_spreads_curves_and_bests_sync_as_compute_does(name):
    # the metric's own dist_sync_fn and sync_on_compute, as torchmetrics' compute() uses them:
    # std(), curves() and per_image_best() had synced with gather_all_tensors whatever they were
    if name == "five_band":
        maps, _, truth = make_batch(6)
        build, second = (lambda **kwargs: FiveBandScore(soft_steps=5, **kwargs)), truth
    else:
        _, maps, second, _ = _score_metric(name, 6)
        if name == "localisation":
            build = AttributionLocalisation
        else:
            build = lambda **kwargs: AttributionAgreement(top_k=0.2, **kwargs)  # noqa: E731
    calls = []

    def two_processes(tensor, group=None):  # a second process holding the same states
        calls.append(group)
        return [tensor, tensor.clone()]

    twice = build()  # what the sync gives: every image twice
    twice.update(maps, second)
    twice.update(maps, second)
    synced = build(dist_sync_fn=two_processes, distributed_available_fn=lambda: True)
    synced.update(maps, second)
    results = _all_results(synced)
    assert calls  # the metric's own function gathered the states
    assert int(synced.count) == 6  # and the local states came back after each call
    for key, value in _all_results(twice).items():
        torch.testing.assert_close(results[key], value, rtol=1e-12, atol=0, msg=key)

    once = build()
    once.update(maps, second)
    local = build(
        dist_sync_fn=two_processes, distributed_available_fn=lambda: True, sync_on_compute=False
    )
    local.update(maps, second)
    calls.clear()
    results = _all_results(local)
    assert not calls  # sync_on_compute=False: the local states, as compute() reads them
    for key, value in _all_results(once).items():
        torch.testing.assert_close(results[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", ["five_band", "localisation", "agreement"])
def test_a_dict_of_states_kept_from_before_the_spreads_merges_with_them_unknown(name):
    # as load_state_dict reads such a state: the means merge, the spreads (and the five bands'
    # per-image bests) are unknown; a dict holding no image adds nothing
    if name == "five_band":
        maps, _, truth = make_batch(8)
        build, second = (lambda: FiveBandScore(soft_steps=5)), truth
        later = ("best_sum", "score_square_sum", "soft_square_sum", "best_square_sum")
    else:
        build, maps, second, _ = _score_metric(name, 8)
        later = ("score_square_sum",)
    saved, whole = build(), build()
    saved.update(maps[4:], second[4:])
    whole.update(maps, second)
    old = {k: v for k, v in saved.metric_state.items() if k not in later}
    kept = dict(old)
    merged = build()
    merged.update(maps[:4], second[:4])
    merged.merge_state(old)
    assert old.keys() == kept.keys()  # the caller's dict is left as it is
    assert int(merged.count) == 8
    for key, value in _as_dict(whole.compute()).items():
        torch.testing.assert_close(_as_dict(merged.compute())[key], value, rtol=1e-12, atol=0)
    assert all(bool(v.isnan()) for v in _as_dict(merged.std()).values())
    empty = {k: v for k, v in build().metric_state.items() if k not in later}
    alone, reference = build(), build()
    alone.update(maps, second)
    reference.update(maps, second)
    alone.merge_state(empty)
    for key, value in _score_results(reference).items():
        torch.testing.assert_close(_score_results(alone)[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["five_band", "localisation", "agreement"])
@pytest.mark.parametrize("how", ["merge_state", "load_state_dict"])
def test_a_metric_given_its_states_without_update_reads_them_without_a_false_warning(name, how):
    # states merged or loaded into a fresh metric hold images: std(), curves() and
    # per_image_best() had warned that there were no scores and the values were NaN
    if name == "five_band":
        maps, _, truth = make_batch(6)
        build, second = (lambda: FiveBandScore(soft_steps=5)), truth
    else:
        build, maps, second, _ = _score_metric(name, 6)
    source = build()
    source.persistent(True)
    source.update(maps, second)
    given = build()
    given.persistent(True)
    if how == "merge_state":
        given.merge_state(source)
    else:
        given.load_state_dict(source.state_dict())
    assert given.update_count == 0 and int(given.count) == 6
    methods = {"std": lambda m: _as_dict(m.std())}
    if name == "five_band":
        methods["curves"] = lambda m: m.curves()
        methods["per_image_best"] = lambda m: m.per_image_best()
    for method, read in methods.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none at all
            values = read(given)
        for key, value in read(source).items():
            torch.testing.assert_close(values[key], value, rtol=0, atol=0, msg=method)
    # a fresh metric still says why its values are NaN
    with pytest.warns(UserWarning, match=r"``std`` method .* was called before the ``update``"):
        assert all(bool(v.isnan()) for v in _as_dict(build().std()).values())
