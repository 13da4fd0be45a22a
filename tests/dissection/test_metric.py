"""NetworkDissection against an independent plain implementation, invariances and bad input."""

from __future__ import annotations

import io
import pickle
import re
import warnings
from copy import deepcopy

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics import MetricCollection

from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.functional import NETDISSECT_QUANTILE
from lightning_distill.metrics import NetworkDissection, ThresholdsNotSetError
from tests.dissection.reference import reference_dissection, reference_thresholds
from tests.helpers import CATEGORY_CODES, LABEL_CATEGORIES, LABEL_NAMES, make_probe

# the probe is small (1176 values per unit): a lower quantile than 0.995 gives masks large enough
# for meaningful IoUs
Q = 0.8


def new_metric(units: int = 6, **kwargs) -> NetworkDissection:
    kwargs.setdefault("quantile", Q)
    return NetworkDissection(units, LABEL_NAMES, LABEL_CATEGORIES, **kwargs)


def run_metric(metric, activations, labels, image_labels, batch_size=5, thresholds=None):
    acts, labs, imgs = map(torch.from_numpy, (activations, labels, image_labels))
    batches = [slice(s, s + batch_size) for s in range(0, len(acts), batch_size)]
    if thresholds is None:
        for b in batches:
            metric.update(acts[b])
        metric.compute_thresholds()
    else:
        metric.set_thresholds(torch.as_tensor(thresholds))
    for b in batches:
        metric.update(acts[b], labs[b], imgs[b])
    return metric


@pytest.mark.parametrize("side", ["annotated", "overlap"])
# at 0.995 most maps never exceed their threshold and are skipped before upsampling
@pytest.mark.parametrize("quantile", [Q, 0.995])
def test_iou_matches_reference_given_same_thresholds(probe, side, quantile):
    activations, labels, image_labels = probe
    thresholds = reference_thresholds(activations, quantile)
    expected = reference_dissection(
        activations, labels, image_labels, CATEGORY_CODES, thresholds, side
    )
    metric = run_metric(
        new_metric(activation_side=side), *probe, batch_size=7, thresholds=thresholds
    )
    iou = metric.iou().numpy()
    np.testing.assert_allclose(iou, expected, rtol=0, atol=1e-6)
    best = expected[:, 1:].max(1)
    assert int(metric.compute()) == int((best >= 0.04).sum())
    # the probe has real detectors, so this is not a trivial all-zero comparison
    assert expected.max() > (0.2 if quantile == Q else 0.0)


def test_the_two_activation_sides_differ(probe):
    thresholds = reference_thresholds(probe[0], Q)
    annotated = run_metric(new_metric(), *probe, thresholds=thresholds).iou()
    overlap = run_metric(new_metric(activation_side="overlap"), *probe, thresholds=thresholds).iou()
    # counting the mask only where it overlaps the category shrinks unions: IoU can only grow
    assert torch.all(overlap >= annotated - 1e-12)
    assert torch.any(overlap > annotated)


@pytest.mark.parametrize("quantile", [0.995, "netdissect", 0.9])
def test_thresholds_within_1e_3_of_exact_quantile(quantile):
    rng = np.random.default_rng(3)
    # post-ReLU maps: mostly zeros, a skewed positive tail, units on different scales
    scale = np.array([0.01, 1.0, 30.0, 100.0], dtype=np.float32)[None, :, None, None]
    activations = np.maximum(rng.standard_normal((300, 4, 7, 7)).astype(np.float32), 0) ** 2
    activations *= scale
    metric = NetworkDissection(4, LABEL_NAMES, LABEL_CATEGORIES, quantile=quantile)
    for start in range(0, 300, 64):
        metric.update(torch.from_numpy(activations[start : start + 64]))
    thresholds = metric.compute_thresholds().numpy()
    q = NETDISSECT_QUANTILE if quantile == "netdissect" else quantile
    exact = reference_thresholds(activations, q)
    np.testing.assert_allclose(thresholds, exact, rtol=1e-3)


@pytest.mark.parametrize("batch", [7, 64])
def test_ties_at_a_units_extremes_give_the_exact_quantile(batch):
    # units that take their maximum on more than 0.5% of the pixels: a ReLU6 that saturates,
    # a binary unit, an input clipped at 1; and one saturating at its minimum for q = 0.005.
    # Interpolating inside the maximum's bucket put the threshold just below the tie, every
    # saturated pixel above it (twice the detectors on a ReLU6 layer); the exact quantile is
    # the tied value, which no pixel exceeds
    rng = np.random.default_rng(4)
    relu6 = np.clip(rng.standard_normal((100, 7, 7)) * 4, 0, 6)
    binary = (rng.random((100, 7, 7)) < 0.06).astype(float)
    clipped = np.clip(rng.random((100, 7, 7)) * 1.05, 0, 1)
    activations = np.stack([relu6, binary, clipped], 1).astype(np.float32)
    for quantile in (0.995, 0.9):
        metric = NetworkDissection(3, LABEL_NAMES, LABEL_CATEGORIES, quantile=quantile)
        for start in range(0, 100, batch):
            metric.update(torch.from_numpy(activations[start : start + batch]))
        thresholds = metric.compute_thresholds().numpy()
        exact = reference_thresholds(activations, quantile)
        np.testing.assert_allclose(thresholds, exact, rtol=1e-3)
        if quantile == 0.995:  # 6.7%, 6% and 4.8% of the pixels tie at the maximum
            assert list(thresholds) == [6.0, 1.0, 1.0]  # the tie itself
        else:  # below the ties, and at the binary unit's tie at 0
            assert thresholds[0] < 6.0 and thresholds[1] == 0.0 and thresholds[2] < 1.0
    low = np.clip(rng.standard_normal((100, 1, 7, 7)), -1, None).astype(np.float32)
    metric = NetworkDissection(1, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.005)
    metric.update(torch.from_numpy(low))
    assert float(metric.compute_thresholds()[0]) == -1.0


def test_a_unit_that_overlaps_no_concept_has_none_and_is_no_detector():
    rng = np.random.default_rng(5)
    labels = torch.from_numpy(rng.integers(0, len(LABEL_NAMES), size=(20, 1, 8, 8)))
    live = (labels[:, 0] == 1).float()  # equal to a concept's mask
    dead = torch.zeros(20, 8, 8)
    activations = torch.stack([live, dead], 1)
    metric = NetworkDissection(2, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.5, iou_threshold=0.0)
    metric.update(activations)
    metric.compute_thresholds()
    metric.update(activations, labels)
    results = metric.results()
    dead_row = results.units.iloc[1]
    assert dead_row["iou"] == 0.0 and pd.isna(dead_row["concept"]) and not dead_row["detector"]
    assert results.units.iloc[0]["concept"] == LABEL_NAMES[1]
    assert results.num_detectors == int(metric.compute()) == 1
    assert results.unique_concepts == [LABEL_NAMES[1]]


def test_thresholds_outside_the_histogram_range_warn_and_stay_bounded():
    activations = torch.linspace(2000.0, 3000.0, 1000).view(10, 1, 10, 10)
    metric = NetworkDissection(1, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(activations)
    with pytest.warns(UserWarning, match="outside histogram_range") as caught:
        threshold = float(metric.compute_thresholds()[0])
    assert 2000.0 <= threshold <= 3000.0
    assert caught[0].filename == __file__  # shown at the caller's line, not in torchmetrics


@pytest.mark.parametrize("scale", [1e5, 1e-6])
def test_the_range_the_warning_suggests_gives_exact_thresholds(scale):
    # the same activations scaled far outside the default range: the warning names a range
    # that covers the thresholds, and dissecting again with it gives them within the resolution
    rng = np.random.default_rng(7)
    activations = (scale * rng.lognormal(0.0, 1.0, (40, 3, 6, 6))).astype(np.float32)
    exact = reference_thresholds(activations, 0.995)
    metric = NetworkDissection(3, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(torch.from_numpy(activations))
    with pytest.warns(UserWarning, match="outside histogram_range") as caught:
        coarse = metric.compute_thresholds().numpy()
    assert np.abs(coarse / exact - 1).max() > 1e-3  # the default range cannot resolve them
    _rerun_with_the_suggested_range(caught, 3, activations, exact)


@pytest.mark.parametrize("value", [1e-5, 5e3, -5e3])
def test_a_constant_unit_outside_the_range_has_its_exact_threshold_without_a_warning(value):
    # its one value is its threshold whatever the range: nothing to widen the range for. A
    # unit beside it that does vary outside the range is still warned of
    rng = np.random.default_rng(3)
    activations = np.full((20, 2, 4, 4), value, dtype=np.float64)
    activations[:, 1] = rng.uniform(0.1, 1.0, (20, 4, 4))
    metric = NetworkDissection(2, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(torch.from_numpy(activations))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thresholds = metric.compute_thresholds().numpy()
    assert thresholds[0] == value
    activations[:, 1] *= 1e4  # now outside the range too
    metric = NetworkDissection(2, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(torch.from_numpy(activations))
    with pytest.warns(UserWarning, match="the thresholds of 1 units lie outside"):
        assert metric.compute_thresholds()[0].item() == value


def _rerun_with_the_suggested_range(caught, units, activations, exact) -> None:
    """The range the below-range warning suggests: with it, the thresholds come without a
    warning and within 1e-3 of ``exact``."""
    message = str(caught[0].message)
    low, high = (
        float(v) for v in re.search(r"histogram_range=\(([^,]+), ([^)]+)\) to", message).groups()
    )
    metric = NetworkDissection(units, LABEL_NAMES, LABEL_CATEGORIES, histogram_range=(low, high))
    metric.update(torch.from_numpy(activations))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thresholds = metric.compute_thresholds().numpy()
    np.testing.assert_allclose(thresholds, exact, rtol=1e-3)


def test_thresholds_of_signed_data_and_exact_zeros():
    rng = np.random.default_rng(4)
    activations = rng.standard_normal((200, 3, 5, 5)).astype(np.float32)
    activations[:, 2] = 0.0  # a dead unit: its threshold is exactly 0
    activations[:, 2, 0, 0] = 1.0
    metric = NetworkDissection(3, LABEL_NAMES, LABEL_CATEGORIES, quantile=0.3)
    metric.update(torch.from_numpy(activations))
    thresholds = metric.compute_thresholds().numpy()
    exact = reference_thresholds(activations, 0.3)
    assert exact[0] < 0 and exact[2] == 0
    np.testing.assert_allclose(thresholds, exact, rtol=1e-3)


def test_own_thresholds_give_reference_detectors(probe):
    activations, labels, image_labels = probe
    metric = run_metric(new_metric(), *probe)
    thresholds = metric.thresholds.numpy()
    np.testing.assert_allclose(thresholds, reference_thresholds(activations, Q), rtol=1e-3)
    expected = reference_dissection(activations, labels, image_labels, CATEGORY_CODES, thresholds)
    np.testing.assert_allclose(metric.iou().numpy(), expected, atol=1e-6)


def test_invariant_to_batch_size_and_order(probe):
    activations, labels, image_labels = probe
    reference = run_metric(new_metric(), *probe, batch_size=24)
    order = np.random.default_rng(0).permutation(len(activations))
    shuffled = run_metric(
        new_metric(), activations[order], labels[order], image_labels[order], batch_size=5
    )
    single = run_metric(new_metric(), *probe, batch_size=1)
    for other in (shuffled, single):
        assert torch.equal(other.thresholds, reference.thresholds)
        for state in ("histogram", "intersection", "mask_area", "label_area"):
            assert torch.equal(getattr(other, state), getattr(reference, state)), state
        assert torch.equal(other.compute(), reference.compute())


def test_memory_is_flat():
    metric = new_metric(units=4)
    sizes = []
    for n in (1, 10, 40):
        metric.reset()
        activations, labels, image_labels = make_probe(num_images=n, units=4, seed=n)
        run_metric(metric, activations, labels, image_labels, batch_size=4)
        sizes.append(sum(getattr(metric, s).numel() for s in metric._defaults))
    assert sizes[0] == sizes[1] == sizes[2]


def test_results_table_is_consistent(probe):
    metric = run_metric(new_metric(iou_threshold=0.05), *probe)
    iou = metric.iou()
    results = metric.results()
    table = results.units
    assert list(table.columns) == ["unit", "concept", "category", "iou", "threshold", "detector"]
    best_iou, best_label = iou[:, 1:].max(1)
    for row in table.itertuples():
        label = int(best_label[row.unit]) + 1
        assert row.concept == LABEL_NAMES[label]
        assert row.category == LABEL_CATEGORIES[label]
        assert row.iou == pytest.approx(float(best_iou[row.unit]))
        assert row.detector == (row.iou >= 0.05)
    assert results.num_detectors == int(table["detector"].sum()) == int(metric.compute())
    assert sum(results.category_counts.values()) == results.num_detectors
    assert list(results.category_counts) == ["object", "color", "scene"]
    assert results.unique_concepts == sorted(set(table.loc[table["detector"], "concept"]))
    # the probe plants ball, box and red detectors (units 0-2)
    assert {"ball", "box", "red"} <= set(results.unique_concepts)
    fig, ax = metric.plot()
    heights = [int(bar.get_height()) for bar in ax.patches]
    assert heights == list(results.category_counts.values())
    fig.savefig(pytest.importorskip("tempfile").mktemp(suffix=".png"))


def test_reset_clears_thresholds(probe):
    metric = run_metric(new_metric(), *probe)
    assert metric.phase == "tally"
    metric.reset()
    assert metric.phase == "thresholds"
    assert int(metric.histogram.sum()) == 0


def test_image_labels_only(probe):
    activations, _, image_labels = probe
    metric = new_metric()
    acts = torch.from_numpy(activations)
    metric.update(acts)
    metric.compute_thresholds()
    metric.update(acts, None, torch.from_numpy(image_labels))
    labels = np.zeros((len(acts), 0, 7, 7), dtype=np.int64)
    expected = reference_dissection(
        activations, labels, image_labels, CATEGORY_CODES, metric.thresholds.numpy()
    )
    np.testing.assert_allclose(metric.iou().numpy(), expected, atol=1e-6)
    assert metric.iou()[3, 6] > metric.iou()[3, 7]  # the planted "beach" unit


# ---------------------------------------------------------------- bad input


def tallying_metric(probe):
    metric = new_metric()
    metric.set_thresholds(torch.zeros(6))
    return metric


def test_tally_errors(probe):
    activations, labels, image_labels = map(torch.from_numpy, probe)
    metric = tallying_metric(probe)
    with pytest.raises(ValueError, match=r"labels has batch size 23 but activations .* 24"):
        metric.update(activations, labels[:23])
    with pytest.raises(ValueError, match="image_labels has batch size"):
        metric.update(activations, labels, image_labels[:3])
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        metric.update(activations, labels.float())
    with pytest.raises(ValueError, match="labels must be non-negative"):
        metric.update(activations, labels - 1)
    with pytest.raises(ValueError, match="contains label 8 but only 8 labels are declared"):
        metric.update(activations, labels.clamp(max=8) + (labels == 3).long() * 5)
    with pytest.raises(ValueError, match=r"an ignore value such as 255\) to 0"):
        metric.update(activations, labels.masked_fill(labels == 3, 255))
    with pytest.raises(ValueError, match="image_labels contains label 10 but only 8"):
        metric.update(activations, labels, image_labels + 3)
    bad = activations.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="activations contain NaN or inf"):
        metric.update(bad, labels)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="activations contain NaN or inf"):
        new_metric().update(bad)
    with pytest.raises(ValueError, match=r"activations have 5 units .* num_units=6"):
        metric.update(activations[:, :5], labels)
    # channels-last maps [B, h, w, U] (a ConvNeXt or ViT block): the message says how to fix it
    with pytest.raises(ValueError, match=r"channels-last .*permute\(0, 3, 1, 2\)"):
        metric.update(activations.permute(0, 2, 3, 1), labels)
    with pytest.raises(ValueError, match=r"activations must have shape \[batch, units"):
        metric.update(activations[0], labels)
    with pytest.raises(ValueError, match="needs labels and/or image_labels"):
        metric.update(activations)
    # nothing was counted by the failed calls
    assert int(metric.intersection.sum()) == 0 and int(metric.tallied_images) == 0


def test_results_before_thresholds_is_an_error(probe):
    metric = new_metric()
    metric.update(torch.from_numpy(probe[0]))
    with pytest.raises(ThresholdsNotSetError, match="no thresholds yet"):
        metric.compute()
    with pytest.raises(ValueError, match="no thresholds yet"):
        metric.results()
    metric.compute_thresholds()
    with pytest.raises(ValueError, match="tally pass saw no data"):
        metric.compute()
    with pytest.raises(RuntimeError, match="already set"):
        metric.compute_thresholds()
    with pytest.raises(RuntimeError, match="no activations seen"):
        new_metric().compute_thresholds()


def test_functional_tally_without_thresholds(probe):
    from lightning_distill.functional import dissection_tally

    activations, labels, _ = map(torch.from_numpy, probe)
    with pytest.raises(ValueError, match="thresholds are not set"):
        dissection_tally(
            activations,
            labels,
            torch.full((6,), float("nan")),
            torch.tensor(CATEGORY_CODES),
            3,
        )


def test_functional_tally_names_thresholds_of_the_wrong_type_or_shape(probe):
    # a list of thresholds was a ValueError (its type printed as a shape)
    from lightning_distill.functional import dissection_tally

    activations, labels, _ = map(torch.from_numpy, probe)
    codes = torch.tensor(CATEGORY_CODES)
    for wrong, shown in (([0.5] * 6, r"\[0\.5, 0\.5, 0\.5, 0\.5, 0\.5, 0\.5\]"), (0.5, "0.5")):
        with pytest.raises(
            TypeError,
            match=r"^thresholds must be a tensor of shape \(6,\) \(torch\.as_tensor of them\); "
            rf"got {shown}\.$",
        ):
            dissection_tally(activations, labels, wrong, codes, 3)
    with pytest.raises(
        ValueError, match=r"thresholds must be a tensor of shape \(6,\), got \(5,\)"
    ):
        dissection_tally(activations, labels, torch.full((5,), 0.5), codes, 3)
    # the same thresholds as a tensor: tallied
    inter, _, _ = dissection_tally(activations, labels, torch.tensor([0.5] * 6), codes, 3)
    assert inter.shape[0] == 6


@pytest.mark.parametrize(
    ("label_category", "num_categories", "error", "match"),
    [
        (CATEGORY_CODES, 3, TypeError, "label_category must be a 1-d integer tensor"),
        (torch.tensor(CATEGORY_CODES).float(), 3, TypeError, "label_category must be a 1-d int"),
        (torch.tensor(CATEGORY_CODES), 2, ValueError, "label_category must be category indices "),
        (torch.tensor(CATEGORY_CODES), 0, ValueError, "num_categories must be an integer >= 1"),
        (torch.tensor(CATEGORY_CODES), 3.0, TypeError, "num_categories must be an integer"),
    ],
    ids=["list", "float", "index too large", "no category", "float count"],
)
def test_functional_tally_and_iou_name_a_bad_label_category(
    probe, label_category, num_categories, error, match
):
    # a list failed with "'list' object has no attribute 'shape'", a category index past
    # num_categories with torch's "Class values must be smaller than num_classes"
    from lightning_distill.functional import dissection_iou, dissection_tally

    activations, labels, _ = map(torch.from_numpy, probe)
    thresholds = torch.full((6,), 0.5)
    with pytest.raises(error, match=match):
        dissection_tally(activations, labels, thresholds, label_category, num_categories)
    inter, mask_area, label_area = dissection_tally(
        activations, labels, thresholds, torch.tensor(CATEGORY_CODES), 3
    )
    if match.startswith("label_category"):  # the iou's categories: mask_area's columns
        with pytest.raises(error, match=match):
            dissection_iou(inter, mask_area[:, :num_categories], label_area, label_category)
    # the right arguments: the tally of the metric that holds them
    metric = new_metric()
    metric.set_thresholds(thresholds)
    metric.update(activations, labels)
    assert torch.equal(metric.intersection, inter) and torch.equal(metric.mask_area, mask_area)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_units": 0}, "num_units must be an integer >= 1; got 0"),
        ({"label_names": ["-"]}, "label_names must name label 0"),
        ({"label_categories": ["", "object"]}, "label_categories must have one entry per label"),
        ({"quantile": 1.5}, "quantile must be a finite number > 0 and < 1; got 1.5"),
        ({"quantile": "median"}, "quantile must be in"),
        ({"iou_threshold": -0.1}, "iou_threshold must be a finite number >= 0 and <= 1"),
        ({"activation_side": "both"}, "activation_side must be"),
        ({"histogram_range": (1.0, 0.5)}, "histogram_range must be"),
        # its ratio overflows float64 (an OverflowError deep in the bucket count had come out)
        ({"histogram_range": (1e-300, 1e300)}, r"histogram_range must be .*high / low .* 1e\+300"),
        ({"histogram_range": (5e-324, 1.0)}, r"histogram_range must be .*1 / low"),
        ({"histogram_resolution": 0.0}, "histogram_resolution must be"),
        ({"categories": ["object"]}, "missing from categories"),
    ],
)
def test_constructor_errors(kwargs, match):
    arguments = {"num_units": 3, "label_names": LABEL_NAMES, "label_categories": LABEL_CATEGORIES}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        NetworkDissection(**arguments)


def test_calling_the_metric_per_batch_is_an_error(probe):
    with pytest.raises(RuntimeError, match="call update\\(\\) per batch"):
        new_metric()(torch.from_numpy(probe[0]))


def test_set_thresholds_in_the_middle_of_a_tally_is_refused(probe):
    activations, labels, _ = map(torch.from_numpy, probe)
    metric = new_metric()
    metric.set_thresholds(torch.zeros(6))  # before any tally: allowed, and may be repeated
    metric.set_thresholds(torch.full((6,), 0.5))
    metric.update(activations, labels)
    tallied = metric.intersection.clone()
    with pytest.raises(RuntimeError, match="call reset\\(\\) to start again"):
        metric.set_thresholds(torch.ones(6))
    # the tally of the first thresholds is intact and uses them
    assert torch.equal(metric.intersection, tallied)
    assert torch.equal(metric.thresholds, torch.full((6,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize(
    "value",
    [None, "0.5", ["0.5"] * 6, {"unit": 0.5}, torch.full((6,), 0.5 + 1j), np.array([0.5] * 6, "O")],
    ids=["None", "str", "list of str", "dict", "complex", "object array"],
)
def test_set_thresholds_names_what_is_not_real_numbers(probe, value):
    # torch's own complaints ("new(): invalid data type 'str'", "too many dimensions 'str'")
    # named nothing, and complex thresholds lost their imaginary part with a warning
    metric = new_metric()
    with pytest.raises(TypeError, match=r"thresholds must be real numbers, one per unit \(6\)"):
        metric.set_thresholds(value)
    assert metric.phase == "thresholds" and bool(metric.thresholds.isnan().all())
    # what it takes: any sequence of real numbers, a results table's column included
    column = pd.Series(np.linspace(0, 1, 6))
    metric.set_thresholds(column)
    assert metric.thresholds.tolist() == column.tolist()


@pytest.mark.parametrize("argument", ["label_names", "label_categories"])
@pytest.mark.parametrize("value", [None, "abc", 3, {"-", "a", "b"}, {0: "-"}, np.array("abc")])
def test_label_names_that_are_not_sequences_are_named(argument, value):
    arguments = {"num_units": 3, "label_names": LABEL_NAMES, "label_categories": LABEL_CATEGORIES}
    arguments[argument] = value
    with pytest.raises(TypeError, match=f"{argument} must be a sequence of str, one per label"):
        NetworkDissection(**arguments)
    with pytest.raises(TypeError, match=r"categories must be a sequence of str \(in order\)"):
        NetworkDissection(3, LABEL_NAMES, LABEL_CATEGORIES, categories={"color", "shape"})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"iou_threshold": "abc"}, TypeError, "iou_threshold must be a real number"),
        ({"quantile": float("nan")}, ValueError, "quantile must be a finite number"),
        ({"histogram_range": (0.0, 1.0)}, ValueError, "histogram_range must be a finite"),
        ({"histogram_range": 5}, ValueError, "histogram_range must be \\(low, high\\)"),
        ({"histogram_resolution": float("inf")}, ValueError, "histogram_resolution must be"),
        ({"num_units": 2.5}, TypeError, "num_units must be an integer"),
    ],
)
def test_constructor_type_errors_name_the_argument(kwargs, error, match):
    arguments = {"num_units": 3, "label_names": LABEL_NAMES, "label_categories": LABEL_CATEGORIES}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        NetworkDissection(**arguments)


def test_labels_without_any_category_are_refused_at_construction():
    # no label with a category, so no concept: the tally failed deep in torch ("Class values
    # must be smaller than num_classes")
    with pytest.raises(ValueError, match=r"label_categories must give at least one label"):
        NetworkDissection(3, ["-", "sky", "red"], ["", "", ""])
    with pytest.raises(ValueError, match=r"label_categories must give at least one label"):
        batch = (torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.long))
        DissectionMonitor([batch], "layer", label_names=["-", "sky"], label_categories=["", ""])


def test_set_thresholds_errors():
    metric = new_metric()
    with pytest.raises(ValueError, match=r"thresholds must have shape \(6,\)"):
        metric.set_thresholds(torch.zeros(5))
    with pytest.raises(ValueError, match="thresholds must be finite"):
        metric.set_thresholds(torch.full((6,), float("nan")))


def test_inputs_not_mutated(probe):
    activations, labels, image_labels = (torch.from_numpy(a.copy()) for a in probe)
    copies = [t.clone() for t in (activations, labels, image_labels)]
    run_metric(new_metric(), *(t.numpy() for t in (activations, labels, image_labels)))
    for original, copy in zip((activations, labels, image_labels), copies):
        assert torch.equal(original, copy)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    log_scale=st.floats(-5.0, 5.0),
    shape=st.floats(0.3, 3.0),
    quantile=st.floats(0.5, 0.999),
    zeros=st.floats(0.0, 0.4),
)
def test_threshold_accuracy_property(seed, log_scale, shape, quantile, zeros):
    """Any continuous positive distribution in range, any quantile: within 1e-3 relative."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(shape, np.exp(log_scale), size=(40, 2, 6, 6)).astype(np.float32)
    values[rng.random(values.shape) < zeros] = 0.0  # ReLU-like mass at zero
    exact = reference_thresholds(values, quantile)
    # the guarantee holds where the two order statistics the quantile interpolates between are
    # zero or inside histogram_range
    ordered = np.sort(np.moveaxis(values, 1, 0).reshape(2, -1), axis=1)
    rank = int(np.floor(quantile * (ordered.shape[1] - 1)))
    neighbours = ordered[:, rank : rank + 2]
    in_range = ((neighbours == 0) | ((neighbours >= 1e-3) & (neighbours < 1e3))).all(1)
    metric = NetworkDissection(2, LABEL_NAMES, LABEL_CATEGORIES, quantile=quantile)
    metric.update(torch.from_numpy(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thresholds = metric.compute_thresholds().numpy()
    np.testing.assert_allclose(thresholds[in_range], exact[in_range], rtol=1e-3, atol=0)


@pytest.mark.parametrize("side", ["annotated", "overlap"])
def test_labels_without_a_category_are_ignored(probe, side):
    """A label id whose category is "" (a gap in Broden's label.csv) is neither a category nor
    a concept, and its pixels count as unlabelled for every other label."""
    activations, labels, image_labels = probe
    unnamed = labels.copy()
    unnamed[:, 1][(labels[:, 1] == 0) & (labels[:, 0] == 2)] = 8  # under the "box" pixels
    assert (unnamed == 8).any()
    thresholds = reference_thresholds(activations, Q)
    metric = NetworkDissection(
        6, [*LABEL_NAMES, "-"], [*LABEL_CATEGORIES, ""], quantile=Q, activation_side=side
    )
    run_metric(metric, activations, unnamed, image_labels, thresholds=thresholds)
    assert metric.categories == ["object", "color", "scene"]
    assert list(metric.results().category_counts) == ["object", "color", "scene"]
    iou = metric.iou().numpy()
    assert (iou[:, 8] == 0).all()
    expected = reference_dissection(
        activations, labels, image_labels, CATEGORY_CODES, thresholds, side
    )
    np.testing.assert_allclose(iou[:, :8], expected, rtol=0, atol=1e-6)


def test_label_given_per_pixel_and_per_image_counts_once(probe):
    """A label listed for the whole image covers it once, even where pixels carry it too."""
    activations, labels, image_labels = probe
    both = image_labels.copy()
    both[:, 1] = np.where(labels[:, 0].reshape(len(labels), -1).max(1) > 0, 1, 0)  # "ball"
    thresholds = reference_thresholds(activations, Q)
    expected = reference_dissection(activations, labels, both, CATEGORY_CODES, thresholds)
    metric = run_metric(new_metric(), activations, labels, both, thresholds=thresholds)
    np.testing.assert_allclose(metric.iou().numpy(), expected, rtol=0, atol=1e-6)
    assert int(metric.label_area[1]) == int((both[:, 1] == 1).sum()) * 28 * 28


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_activations_are_upsampled_in_float32(probe, dtype):
    """Maps captured under autocast give the masks of their exact float32 values."""
    activations, labels, image_labels = probe
    rng = np.random.default_rng(5)
    # values that bf16 and fp16 hold exactly, whose interpolations they would round
    activations = (activations + rng.integers(0, 2, activations.shape) / 32).astype(np.float32)
    low = torch.from_numpy(activations).to(dtype)
    assert torch.equal(low.float(), torch.from_numpy(activations))
    thresholds = reference_thresholds(activations, Q)
    expected = reference_dissection(activations, labels, image_labels, CATEGORY_CODES, thresholds)
    metric = new_metric()
    metric.set_thresholds(torch.as_tensor(thresholds))
    metric.update(low, torch.from_numpy(labels), torch.from_numpy(image_labels))
    np.testing.assert_allclose(metric.iou().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("factor", [3, 5, 7])
def test_a_sparse_unit_with_threshold_zero_gets_the_exact_mask_at_odd_upsampling(factor):
    """float32 bilinear weights that are 0 exactly come out a few ulps above it at an odd
    factor: pixels whose exact value ties a threshold of 0 must not join the mask."""
    rng = np.random.default_rng(3)
    activations = np.zeros((10, 2, 4, 4), dtype=np.float32)  # ReLU-like: mostly exact zeros
    activations[0, 0, 1, 1] = 1.0
    activations[rng.integers(0, 10, 6), 1, rng.integers(0, 4, 6), rng.integers(0, 4, 6)] = 0.7
    size = 4 * factor
    labels = rng.integers(0, len(LABEL_NAMES), (10, 1, size, size))
    labels[0, 0, factor : 2 * factor, factor : 2 * factor] = 1
    thresholds = reference_thresholds(activations, 0.9)
    assert (thresholds == 0).all()
    expected = reference_dissection(activations, labels, None, CATEGORY_CODES, thresholds)
    metric = new_metric(units=2, quantile=0.9)
    metric.set_thresholds(torch.as_tensor(thresholds))
    metric.update(torch.from_numpy(activations), torch.from_numpy(labels))
    np.testing.assert_allclose(metric.iou().numpy(), expected, rtol=0, atol=1e-12)
    # the float32 interpolation alone would have grown the mask
    grown = torch.nn.functional.interpolate(
        torch.from_numpy(activations[:1, :1]), size=(size, size), mode="bilinear"
    )
    assert int((grown > 0).sum()) > (2 * factor - 1) ** 2 == int(metric.mask_area[0, 0])


def test_label_names_from_any_sequence_of_str_and_no_stringified_entries():
    names = np.array(LABEL_NAMES)  # a numpy column of names, as read from a csv
    metric = NetworkDissection(3, names, pd.Series(LABEL_CATEGORIES))
    assert metric.label_names == LABEL_NAMES
    categories = list(LABEL_CATEGORIES)
    categories[2] = None
    with pytest.raises(TypeError, match="entry 2 is None .* use '' for an id without"):
        NetworkDissection(3, LABEL_NAMES, categories)
    repeated = list(LABEL_NAMES)
    repeated[2] = repeated[1]  # two concepts named alike would merge in unique_concepts
    with pytest.raises(ValueError, match=f"got \\['{LABEL_NAMES[1]}'\\] more than once"):
        NetworkDissection(3, repeated, LABEL_CATEGORIES)
    gaps = list(LABEL_NAMES)
    gaps[2], categories[2], categories[3] = "", "", ""
    gaps[3] = ""  # ids without a label may share the empty name
    NetworkDissection(3, gaps, categories)


def test_one_hot_masks_are_warned_about_and_converted_by_the_advice():
    rng = np.random.default_rng(0)
    label_map = torch.from_numpy(rng.integers(0, len(LABEL_NAMES), (4, 8, 8)))
    concepts = len(LABEL_NAMES) - 1
    # one 0/1 mask per concept, layer l holding concept l + 1 (no layer for unlabelled)
    masks = torch.stack([label_map == c for c in range(1, concepts + 1)], 1).long()
    activations = torch.rand(4, 2, 4, 4)

    def fresh():
        metric = new_metric(units=2)
        metric.set_thresholds(torch.full((2,), 0.5))
        return metric

    with pytest.warns(UserWarning, match="looks like one 0/1 mask per concept .*arange\\(1, L"):
        fresh().update(activations, masks)
    converted, expected = fresh(), fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converted.update(activations, masks * torch.arange(1, concepts + 1).view(1, -1, 1, 1))
        expected.update(activations, label_map.unsqueeze(1))
        # label ids in a few layers that happen to hold only 0 and 1: not warned about
        fresh().update(activations, (label_map[:, None] == 1).long().expand(-1, 2, -1, -1))
        fresh().update(activations, label_map.unsqueeze(1), torch.ones(4, 3, dtype=torch.long))
    assert torch.equal(converted.iou(), expected.iou())
    multi_hot = torch.from_numpy(rng.integers(0, 2, (4, concepts)))
    with pytest.warns(UserWarning, match=f"in all its {concepts} slots"):
        fresh().update(activations, label_map.unsqueeze(1), multi_hot)


def _exact_bilinear(feature_map, height, width):
    """Half-pixel-centre bilinear resize in exact rational arithmetic."""
    from fractions import Fraction

    in_h, in_w = len(feature_map), len(feature_map[0])

    def source(out_size, in_size):
        taps = []
        for i in range(out_size):
            position = max((Fraction(2 * i + 1, 2) * in_size) / out_size - Fraction(1, 2), 0)
            low = min(int(position), in_size - 1)
            taps.append((low, min(low + 1, in_size - 1), position - low))
        return taps

    values = [[Fraction(v) for v in row] for row in feature_map]
    out = []
    for y0, y1, wy in source(height, in_h):
        row = []
        for x0, x1, wx in source(width, in_w):
            top = (1 - wx) * values[y0][x0] + wx * values[y0][x1]
            bottom = (1 - wx) * values[y1][x0] + wx * values[y1][x1]
            row.append((1 - wy) * top + wy * bottom)
        out.append(row)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interpolated_values_that_tie_the_threshold_exactly_are_not_above_it(dtype):
    """Two neighbours of a coarse map can interpolate onto the threshold exactly (1 and 4 at a
    third of the way give 2): the mask is that of exact arithmetic, not of rounded weights."""
    from lightning_distill.dissection.functional import _upsampled_above

    maps = torch.tensor([[[[1.0, 4.0], [4.0, 1.0]]], [[[0.0, 0.0], [0.0, 3.0]]]], dtype=dtype)
    for threshold in (2.0, 3.0, 0.0, 1.0):
        for size in ((6, 6), (10, 10), (4, 6)):
            above = _upsampled_above(maps, torch.full((2,), threshold, dtype=torch.float64), size)
            for n in range(2):
                exact = _exact_bilinear(maps[n, 0].float().tolist(), *size)
                expected = torch.tensor([[v > threshold for v in row] for row in exact])
                assert torch.equal(above[n].view(size), expected), (threshold, size, n)


def test_signed_maps_interpolated_just_above_the_threshold_are_above_it():
    """Neighbours of opposite signs (a layer before its ReLU) interpolate, in exact arithmetic,
    to 5 / 1610612736 (3.1e-9) above a threshold of 0 at the pixel (4, 1) of a 9 x 9 upsampling;
    float32 gives -2.5e-10 there, and only pixels an ulp *above* the threshold were looked at
    again: the mask lost the pixel. Quantised signed maps at odd factors, with the threshold on
    one of their values, are compared with rational arithmetic too."""
    from lightning_distill.dissection.functional import _upsampled_above

    def exact_mask(single, threshold, size):
        exact = _exact_bilinear(single.double().tolist(), *size)
        return torch.tensor([[v > threshold for v in row] for row in exact]).flatten()

    maps = torch.tensor(
        [
            [0.3, -0.2, -0.2, 0.4],
            [-0.1, -0.9, -1.7, -0.9],
            [0.2, 0.4, 1.0, 1.8],
            [0.6, -1.1, 0.7, -0.4],
        ]
    ).view(1, 1, 4, 4)
    above = _upsampled_above(maps, torch.zeros(1, dtype=torch.float64), (9, 9))
    assert bool(above[0, 4 * 9 + 1])
    assert torch.equal(above[0], exact_mask(maps[0, 0], 0.0, (9, 9)))
    generator = torch.Generator().manual_seed(0)
    for side, factor in ((11, 3), (12, 5), (13, 2.5)):
        quantised = (torch.randn(4, 1, side, side, generator=generator) * 4).round() / 4
        size = (int(side * factor),) * 2
        for threshold in (0.0, 0.25, -0.5):
            above = _upsampled_above(quantised, torch.full((4,), threshold).double(), size)
            for n in range(4):
                expected = exact_mask(quantised[n, 0], threshold, size)
                assert torch.equal(above[n], expected), (side, factor, threshold, n)


@pytest.mark.parametrize("width", [1, 3])
def test_ties_of_long_maps_at_a_factor_that_is_no_power_of_two_are_not_above(width):
    """torch rounds a bilinear weight to the precision of its source position: at row 33 of
    47, upsampled 7 times, the weight 3/7 is off by about 33 float32 ulps, so 4/7 * 3.5 (the
    threshold 2 exactly) came out above it, beyond the rounding (16 ulps of the map's largest
    value) within which a pixel was interpolated again in float64."""
    from lightning_distill.dissection.functional import _upsampled_above

    maps = torch.zeros(1, 1, 47, width)
    maps[0, 0, 33] = 3.5
    size = (329, 7 * width)
    above = _upsampled_above(maps, torch.tensor([2.0], dtype=torch.float64), size)
    exact = _exact_bilinear(maps[0, 0].tolist(), *size)
    assert torch.equal(above[0], torch.tensor([[v > 2 for v in row] for row in exact]).flatten())
    assert not bool(above[0, 237 * 7 * width])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_suggested_range_covers_thresholds_among_values_of_many_decades(sign):
    # magnitudes spread over 25 decades below the default range: the threshold's estimate there
    # is a linear interpolation across them, far above the exact one, and a range 1000 times
    # below that estimate did not cover it (each run suggested another, five runs in a row)
    rng = np.random.default_rng(3)
    activations = (sign * 10 ** rng.uniform(-30, -5, (40, 2, 6, 6))).astype(np.float64)
    exact = reference_thresholds(activations, 0.995)
    metric = NetworkDissection(2, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(torch.from_numpy(activations))
    with pytest.warns(UserWarning, match="outside histogram_range") as caught:
        metric.compute_thresholds()
    _rerun_with_the_suggested_range(caught, 2, activations, exact)


def test_a_tally_batch_does_not_read_the_metrics_own_label_categories_back():
    # the metric builds each label's category in range; checking it again for every batch would
    # read a value back from the device each time (dissection_tally checks a caller's table)
    from torch.utils._python_dispatch import TorchDispatchMode

    class Reductions(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.shapes: list[tuple] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket is torch.ops.aten.max and isinstance(args[0], torch.Tensor):
                self.shapes.append((tuple(args[0].shape), args[0].dtype))
            return func(*args, **(kwargs or {}))

    activations, labels, image_labels = (torch.from_numpy(a) for a in make_probe(8))
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES)
    metric.update(activations)
    metric.set_thresholds(metric.compute_thresholds())
    categories = (metric.label_category.numel() - 1,)
    with Reductions() as seen:
        metric.update(activations, labels, image_labels)
    assert (categories, torch.long) not in seen.shapes
    # the public function checks a table it is given
    from lightning_distill.dissection.functional import dissection_tally

    with Reductions() as seen:
        dissection_tally(
            activations, labels, metric.thresholds, metric.label_category, len(metric.categories)
        )
    assert (categories, torch.long) in seen.shapes


def test_upsample_activations_takes_a_side_or_a_pair_and_names_anything_else():
    from lightning_distill.functional import upsample_activations

    maps = torch.rand(2, 3, 4, 5)
    pair = upsample_activations(maps, (8, 8))
    # one int is a square, as torch's interpolate reads it (it failed indexing an int)
    torch.testing.assert_close(upsample_activations(maps, 8), pair, rtol=0, atol=0)
    torch.testing.assert_close(upsample_activations(maps, [8, 8]), pair, rtol=0, atol=0)
    torch.testing.assert_close(
        pair, torch.nn.functional.interpolate(maps, size=(8, 8), mode="bilinear")
    )
    for size, error in (
        ((8,), TypeError),
        ((8, 8, 8), TypeError),
        ("8", TypeError),
        (0, ValueError),
    ):
        with pytest.raises(error, match=r"size must be"):
            upsample_activations(maps, size)


def test_upsample_activations_refuses_maps_the_tally_refuses_naming_them():
    # its maps went to torch unchecked: integer or bool maps failed with torch's
    # NotImplementedError, [U, h, w] maps with interpolate's "(N, C, d1, ...)" complaint, a list
    # with an AttributeError, and NaN maps were resized into NaN masks without a word
    from lightning_distill.functional import upsample_activations

    nan = torch.rand(1, 2, 3, 3)
    nan[0, 1, 2, 2] = float("nan")
    for maps, error, message in (
        (torch.ones(1, 2, 3, 3, dtype=torch.long), TypeError, "activations must be a floating"),
        (torch.ones(1, 2, 3, 3, dtype=torch.bool), TypeError, "activations must be a floating"),
        (torch.rand(2, 3, 3), ValueError, r"activations must have shape \[batch, units"),
        ([[[[1.0]]]], TypeError, "activations must be a torch.Tensor"),
        (nan, ValueError, "activations contain NaN or inf"),
        (torch.full((1, 1, 2, 2), float("inf")).half(), ValueError, "activations contain NaN"),
    ):
        with pytest.raises(error, match=message):
            upsample_activations(maps, (6, 6))
    # what it accepts is resized as before, in the maps' dtype and within their range
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        maps = torch.rand(2, 3, 4, 4).to(dtype)
        for size in ((9, 9), (2, 2)):
            resized = upsample_activations(maps, size)
            assert resized.dtype == dtype and resized.shape == (2, 3, *size)
            # within the range up to the rounding of the weighted sums (a unit in the last place)
            slack = torch.finfo(dtype).eps * float(maps.abs().max())
            assert float(resized.min()) >= float(maps.min()) - slack
            assert float(resized.max()) <= float(maps.max()) + slack


def test_compute_reads_the_iou_threshold_it_is_called_with(probe):
    # torchmetrics caches compute()'s value until the next update: a threshold set in between
    # had been ignored, while results() read it
    activations, labels, image_labels = (torch.from_numpy(a) for a in probe)
    metric = NetworkDissection(6, LABEL_NAMES, LABEL_CATEGORIES, iou_threshold=0.04)
    metric.update(activations)
    metric.set_thresholds(metric.compute_thresholds())
    metric.update(activations, labels, image_labels)
    counts = {}
    for threshold in (0.0, 0.002, 0.0):  # best IoUs of this probe: 0.0033, 0.0016, 0.0015
        metric.iou_threshold = threshold
        counts[threshold] = int(metric.compute())
        assert counts[threshold] == metric.results().num_detectors
    assert counts[0.002] < counts[0.0]


@pytest.mark.parametrize(
    ("maps", "error", "match"),
    [
        (lambda a: a[0], ValueError, r"activations must have shape \[batch, units"),
        (lambda a: a.tolist(), TypeError, "activations must be a torch.Tensor"),
        (lambda a: a.long(), TypeError, "activations must be a floating point tensor"),
    ],
    ids=["3-d", "list", "integer"],
)
def test_the_threshold_pass_names_bad_maps_given_with_labels(probe, maps, error, match):
    # the labels' checks ran first and read the maps' batch size: 3-d maps were taken for a
    # batch of 6 and the labels' batch of 24 called wrong, a list failed with "'list' object
    # has no attribute 'shape'"
    activations, labels, image_labels = map(torch.from_numpy, probe)
    metric = new_metric()
    with pytest.raises(error, match=match):
        metric.update(maps(activations), labels, image_labels)
    assert int(metric.histogram.sum()) == 0  # nothing counted
    # the same batch as it should be: counted, every value of every unit once
    metric.update(activations, labels, image_labels)
    assert metric.histogram.sum(1).tolist() == [activations[:, 0].numel()] * 6


def _quantile_functions():
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

    values = torch.linspace(-1, 2, 301).view(1, 1, 1, -1)
    buckets = LogBuckets()
    layout = HistogramLayout.build(buckets)
    counts, low, high = activation_histogram(values, buckets)
    coarse, _, _ = coarse_histogram(values, layout)

    def two_level(quantile):
        # the windows of the quantile's order statistics (of the nearest valid quantile)
        bounded = min(max(quantile, 0.0), 1.0) if isinstance(quantile, float) else 0.5
        windows = quantile_windows(coarse, bounded)
        fine, ties = window_histogram(values, windows, layout, (low, high))
        return two_level_quantile(coarse, fine, windows, low, high, quantile, layout, ties)

    return {
        "histogram_quantile": lambda q: histogram_quantile(counts, low, high, q, buckets),
        "quantile_windows": lambda q: quantile_windows(coarse, q),
        "two_level_quantile": two_level,
    }


@pytest.mark.parametrize(
    "function", ["histogram_quantile", "quantile_windows", "two_level_quantile"]
)
@pytest.mark.parametrize(
    ("quantile", "error"),
    [(None, TypeError), ("0.5", TypeError), (1.5, ValueError), (-0.5, ValueError)],
    ids=["None", "str", "above 1", "below 0"],
)
def test_the_quantile_functions_name_a_quantile_outside_0_1(function, quantile, error):
    # None and a str failed with Python's "'<=' not supported between instances", and
    # two_level_quantile read ranks outside the data at 1.5 or -0.5 and returned a number
    call = _quantile_functions()[function]
    with pytest.raises(error, match=r"quantile must be a (real|finite) number >= 0 and <= 1"):
        call(quantile)


def test_the_quantile_functions_give_the_extremes_at_0_and_1():
    functions = _quantile_functions()
    # one level: within the histogram's resolution; two levels with the ties at the extremes:
    # the extremes themselves
    torch.testing.assert_close(
        functions["histogram_quantile"](0.0),
        torch.tensor([-1.0], dtype=torch.float64),
        rtol=1e-3,
        atol=0,
    )
    torch.testing.assert_close(
        functions["histogram_quantile"](1.0),
        torch.tensor([2.0], dtype=torch.float64),
        rtol=1e-3,
        atol=0,
    )
    assert functions["two_level_quantile"](0.0).tolist() == [-1.0]
    assert functions["two_level_quantile"](1.0).tolist() == [2.0]


def test_dissection_iou_names_tallies_that_do_not_fit_together(probe):
    # a label_area or label_category of another length failed with torch's "The size of
    # tensor a (8) must match the size of tensor b (7)", lists with "'list' object has no
    # attribute 'to'"
    from lightning_distill.functional import dissection_iou, dissection_tally

    activations, labels, _ = map(torch.from_numpy, probe)
    category = torch.tensor(CATEGORY_CODES)
    inter, mask_area, label_area = dissection_tally(
        activations, labels, torch.full((6,), 0.5), category, 3
    )
    cases = [
        ((inter.tolist(), mask_area, label_area, category), TypeError, "intersection must be"),
        ((inter, mask_area, label_area.tolist(), category), TypeError, "label_area must be"),
        ((inter[0], mask_area, label_area, category), ValueError, "intersection must be"),
        ((inter, mask_area[:5], label_area, category), ValueError, r"mask_area must be .*6 units"),
        ((inter, mask_area, label_area[:-1], category), ValueError, r"label_area .*8 labels"),
        ((inter, mask_area, label_area, category[:-1]), ValueError, r"label_category .*8 labels"),
    ]
    for arguments, error, match in cases:
        with pytest.raises(error, match=match):
            dissection_iou(*arguments)
    # tallies that fit: IoU = I / (M + A - I) for every unit and labelled concept
    iou = dissection_iou(inter, mask_area, label_area, category)
    union = mask_area[:, category.clamp(min=0)] + label_area - inter
    expected = torch.where(union > 0, inter / union.clamp(min=1), 0).double()
    expected[:, 0] = 0
    expected[:, category < 0] = 0
    torch.testing.assert_close(iou, expected)


@pytest.mark.parametrize(
    ("value", "error"),
    [("0.05", TypeError), (None, TypeError), (1.5, ValueError), (-0.1, ValueError)],
    ids=["str", "None", "above 1", "below 0"],
)
def test_an_iou_threshold_set_between_calls_is_checked(probe, value, error):
    # iou_threshold may be set between two calls: a str or None failed with torch's "'>=' not
    # supported between instances of 'Tensor' and 'str'", 1.5 counted no detector and -0.1 the
    # same as 0, silently
    activations, labels, image_labels = (torch.from_numpy(a) for a in probe)
    metric = new_metric()
    metric.update(activations)
    metric.compute_thresholds()
    metric.update(activations, labels, image_labels)
    match = "iou_threshold must be a (real|finite) number >= 0 and <= 1"
    before = int(metric.compute())
    # refused when set (it had been refused at the next compute only, far from the line that
    # set it), the threshold in force kept
    with pytest.raises(error, match=match):
        metric.iou_threshold = value
    assert metric.iou_threshold == 0.04 and int(metric.compute()) == before
    # a valid one: the units whose best IoU reaches it (and is above 0)
    metric.iou_threshold = 0.001
    best = metric.iou()[:, 1:].max(1).values
    assert int(metric.compute()) == int(((best >= 0.001) & (best > 0)).sum())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("num_units", 3),
        ("label_names", LABEL_NAMES[:4]),
        ("label_categories", LABEL_CATEGORIES[:4]),
        ("categories", ["object", "color"]),
        ("label_names", ["-", *(f"concept {i}" for i in range(1, len(LABEL_NAMES)))]),
        ("quantile", 0.5),
        ("activation_side", "overlap"),
    ],
    ids=[
        "num_units",
        "fewer-label_names",
        "fewer-label_categories",
        "fewer-categories",
        "renamed",
        "quantile",
        "activation_side",
    ],
)
def test_settings_that_size_the_states_are_refused_after_construction(probe, name, value):
    # the states and the label-to-category codes are made from these: one set later failed
    # at the tally with an IndexError or torch's "Class values must be smaller than
    # num_classes", or gave the old labels' IoUs under the new names; quantile and
    # activation_side set later changed what the states mean while the metric's fingerprint
    # (compared by merges, MetricCollection's compute groups and loads) kept the old ones
    metric = new_metric()
    before = getattr(metric, name)
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction"):
        setattr(metric, name, value)
    assert getattr(metric, name) == before
    expected = run_metric(new_metric(), *probe)
    for copied in (metric.clone(), pickle.loads(pickle.dumps(metric))):
        assert getattr(copied, name) == before
        run_metric(copied, *probe)
        torch.testing.assert_close(copied.iou(), expected.iou(), rtol=0, atol=0)
    run_metric(metric, *probe)
    torch.testing.assert_close(metric.iou(), expected.iou(), rtol=0, atol=0)
    assert metric.results().unique_concepts == expected.results().unique_concepts


_EDITS_IN_PLACE = {
    "item": lambda names: names.__setitem__(1, "renamed"),
    "slice": lambda names: names.__setitem__(slice(1, 3), ["a", "b"]),
    "del": lambda names: names.__delitem__(1),
    "append": lambda names: names.append("more"),
    "extend": lambda names: names.extend(["more"]),
    "insert": lambda names: names.insert(1, "more"),
    "pop": lambda names: names.pop(),
    "remove": lambda names: names.remove(names[1]),
    "clear": lambda names: names.clear(),
    "sort": lambda names: names.sort(),
    "reverse": lambda names: names.reverse(),
    "iadd": lambda names: names.__iadd__(["more"]),
    "imul": lambda names: names.__imul__(2),
}


@pytest.mark.parametrize("name", ["label_names", "label_categories", "categories"])
def test_label_lists_are_refused_edits_in_place(probe, name):
    # metric.label_names[k] = "x" passed where setting metric.label_names is refused, and the
    # results named label k's IoUs "x"
    metric = new_metric()
    before = list(getattr(metric, name))
    for kind, edit in _EDITS_IN_PLACE.items():
        with pytest.raises(TypeError, match=rf"^{name} is set at construction .* in place"):
            edit(getattr(metric, name))
        assert getattr(metric, name) == before, kind  # compares as the list it is
    with pytest.raises(TypeError, match=rf"^{name} is set at construction"):
        names = getattr(metric, name)
        names += ["more"]  # in place before the attribute is set again
    assert isinstance(getattr(metric, name), list) and getattr(metric, name) == before
    copy_to_edit = list(getattr(metric, name))
    copy_to_edit[1] = "renamed"  # a copy is an ordinary list
    expected = run_metric(new_metric(), *probe)
    buffer = io.BytesIO()
    torch.save(metric, buffer)
    buffer.seek(0)
    copies = [
        metric.clone(),
        pickle.loads(pickle.dumps(metric)),
        deepcopy(metric),
        torch.load(buffer, weights_only=False),
        MetricCollection({"dissection": metric}).clone(prefix="copy_")["copy_dissection"],
    ]
    for copied in copies:
        assert getattr(copied, name) == before
        with pytest.raises(TypeError, match=rf"^{name} is set at construction"):
            getattr(copied, name)[1] = "renamed"
        run_metric(copied, *probe)
        assert copied.results().units.equals(expected.results().units)
    run_metric(metric, *probe)
    assert metric.results().units.equals(expected.results().units)


def test_cache_bytes_set_later_is_checked_as_the_constructor_does():
    # a negative budget set later had cached nothing, silently (a second pass over the data)
    with pytest.raises(ValueError) as built:
        new_metric(cache_bytes=-1)
    metric = new_metric()
    with pytest.raises(ValueError) as set_later:
        metric.cache_bytes = -1
    assert (
        str(set_later.value) == str(built.value) == "cache_bytes must be an integer >= 0; got -1."
    )
    metric.cache_bytes = 0  # no cache: taken
    assert metric.cache_bytes == 0
