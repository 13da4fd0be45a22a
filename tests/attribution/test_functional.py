"""Five-band scores, localisation and agreement against hand-computed answers and references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from lightning_distill.functional import (
    attribution_agreement,
    five_band_scores,
    localisation_score,
)
from tests.attribution import reference

EPS = 1e-6


def cell_truth(n: int = 4, size: int = 12, seed: int = 0) -> np.ndarray:
    """Ground truths with the reference's values: 0 background, 0.4 body, 0.9 part."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size))
    for i in range(n):
        y, x = rng.integers(0, size // 2, size=2)
        truth[i, y : y + size // 2, x : x + size // 2] = 0.4
        truth[i, y : y + 2, x : x + size // 2] = 0.9
    return truth


def as_dict(scores):
    return {name: value.numpy() for name, value in scores.items()}


# ----------------------------------------------------------------- five bands, by hand
def test_all_right_bands():
    truth = torch.tensor([[[0.0, 0.4, 0.9], [0.0, 0.9, 0.4]]])
    # the map's own maximum is 1.0 after normalisation: 0.5 -> band 1, 1.0 -> band 2
    attribution = torch.tensor([[[0.0, 0.5, 1.0], [0.1, 1.0, 0.6]]])
    scores = five_band_scores(attribution, truth)
    assert scores["pixel_accuracy"].tolist() == [1.0]
    assert scores["precision"].item() == pytest.approx(4 / (4 + EPS), abs=0)
    assert scores["recall"].item() == pytest.approx(4 / (4 + EPS), abs=0)
    assert scores["fpr"].tolist() == [0.0]


def test_all_wrong_band_counts_as_false_positive():
    # right region, wrong band: body in band 2, class part in band 1
    truth = torch.tensor([[[0.9, 0.4], [0.0, 0.0]]])
    attribution = torch.tensor([[[0.5, 1.0], [0.0, 0.0]]])
    scores = five_band_scores(attribution, truth)
    # TP 0, FP 2, TN 2, FN 0
    assert scores["pixel_accuracy"].tolist() == [0.5]
    assert scores["precision"].tolist() == [0.0]
    assert scores["recall"].tolist() == [0.0]
    assert scores["fpr"].item() == pytest.approx(2 / (4 + EPS), abs=0)


def test_all_background_truth():
    truth = torch.zeros(1, 2, 3)
    attribution = torch.tensor([[[1.0, -0.8, 0.1], [0.2, 0.0, 0.5]]])
    scores = five_band_scores(attribution, truth)
    # map bands: 2, -2, 0, 0, 0, 1 -> FP 3, TN 3
    assert scores["pixel_accuracy"].tolist() == [0.5]
    assert scores["precision"].tolist() == [0.0]
    assert scores["recall"].tolist() == [0.0]
    assert scores["fpr"].item() == pytest.approx(3 / (6 + EPS), abs=0)


def test_empty_map():
    truth = torch.tensor([[[0.9, 0.4, 0.0, 0.0]]])
    scores = five_band_scores(torch.zeros(1, 3, 1, 4), truth)
    assert scores["pixel_accuracy"].tolist() == [0.5]
    assert scores["precision"].tolist() == [0.0]
    assert scores["recall"].tolist() == [0.0]
    assert scores["fpr"].tolist() == [0.0]


def test_negative_map_bands():
    # a map of -1 where the truth is 0.9: band -2 against 2, a false positive
    truth = torch.tensor([[[0.9, 0.9]]])
    scores = five_band_scores(torch.tensor([[[-1.0, 1.0]]]), truth)
    assert scores["precision"].item() == pytest.approx(1 / (2 + EPS), abs=0)
    assert scores["recall"].item() == pytest.approx(1 / (1 + EPS), abs=0)


# ------------------------------------------------------------- five bands, reference port
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("channels", [None, 1, 3])
@pytest.mark.parametrize("soft_steps", [None, 56])
def test_matches_reference_port(channels, soft_steps, dtype):
    rng = np.random.default_rng(1)
    truth = cell_truth(5, 12).astype(dtype)
    shape = (5, 12, 12) if channels is None else (5, channels, 12, 12)
    # signed maps with a correlation to the truth, and values landing on band edges (of the
    # given thresholds: image 0, peak 3; of the soft sweep's: image 2, on a grid of 0.005)
    attribution = rng.normal(size=shape) + 2 * (truth if channels is None else truth[:, None])
    attribution[0] = np.round(attribution[0], 1)
    attribution[0].flat[0] = 3.0
    attribution[1] = 0.0
    attribution[2] = np.round(rng.uniform(-1, 1, size=shape[1:]) / 0.005) * 0.005
    attribution[2].flat[0] = 1.0
    attribution = attribution.astype(dtype)
    expected = reference.five_band(
        attribution, truth, (-0.7, -0.3, 0.3, 0.7), (-0.7, -0.3, 0.3, 0.7), soft_steps
    )
    found = five_band_scores(
        torch.from_numpy(attribution),
        torch.from_numpy(truth),
        soft_steps=soft_steps,
    )
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name].numpy(), value, err_msg=name)
        assert found[name].shape == ((5,) if soft_steps is None else (5, soft_steps))


def test_float32_maps_round_as_the_reference_does():
    # worked by hand in float32, the dtype of Captum's maps: 0.63f / 0.9f rounds to 0.7f
    # (band 1, as the cell's 0.4), where the same float32 values divided in float64 give
    # 0.70000001 (band 2); a float32 value of 0.3 lies on the threshold 0.3 rounded to float32
    # (band 0, as the background), where in float64 it is 0.30000001 (band 1)
    cases = [([[0.63, 0.9]], [[0.4, 0.9]]), ([[0.3, 1.0]], [[0.0, 0.9]])]
    for values, truth in cases:
        single = torch.tensor([values], dtype=torch.float32)
        truth = torch.tensor([truth], dtype=torch.float32)
        assert float(five_band_scores(single, truth)["pixel_accuracy"][0]) == 1.0, values
        widened = five_band_scores(single.double(), truth.double())
        assert float(widened["pixel_accuracy"][0]) == 0.5, values
    # half types are scored in float32
    half = five_band_scores(
        torch.tensor([[[0.63, 0.9]]], dtype=torch.bfloat16), torch.tensor([[[0.4, 0.9]]])
    )
    single = five_band_scores(
        torch.tensor([[[0.63, 0.9]]], dtype=torch.bfloat16).float(), torch.tensor([[[0.4, 0.9]]])
    )
    assert all(torch.equal(half[name], single[name]) for name in half)


def test_matches_reference_port_other_thresholds():
    rng = np.random.default_rng(2)
    truth = cell_truth(3, 10, seed=3)
    attribution = rng.uniform(-1, 1, size=(3, 2, 10, 10))
    kwargs = {
        "thresholds": (-0.5, -0.3, 0.3, 0.5),
        "ground_truth_thresholds": (-0.6, -0.2, 0.2, 0.6),
    }
    expected = reference.five_band(
        attribution, truth, kwargs["thresholds"], kwargs["ground_truth_thresholds"], 11, 0.02
    )
    found = five_band_scores(
        torch.from_numpy(attribution),
        torch.from_numpy(truth),
        soft_steps=11,
        soft_delta=0.02,
        **kwargs,
    )
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name].numpy(), value, err_msg=name)


def test_soft_threshold_sets_follow_reference():
    from lightning_distill.attribution.functional import five_band_threshold_sets

    sets = five_band_threshold_sets(soft_steps=56).numpy()
    expected = np.stack(reference.soft_threshold_sets((-0.7, -0.3, 0.3, 0.7), 56, 0.005))
    np.testing.assert_array_equal(sets, expected)
    assert sets[-1, 3] == pytest.approx(0.7 - 55 * 0.005)


@pytest.mark.parametrize(
    "thresholds, soft_steps",
    [
        ((-0.7, -0.3, 0.3, 0.7), 56),
        ((-0.5, -0.3, 0.3, 0.5), 1),
        ((-0.3, -0.2999, 0.3, 0.30001), 5),  # two boundaries in one grid cell
        ((-1e-30, 0.0, 1e-300, 1e-200), None),  # all but one crowd into a cell: fallback
    ],
)
def test_interval_index_equals_binary_search(thresholds, soft_steps):
    from lightning_distill.attribution.functional import (
        _interval_index,
        five_band_threshold_sets,
    )

    boundaries = torch.unique(five_band_threshold_sets(thresholds, soft_steps))
    values = torch.cat(
        [
            torch.rand(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
            * 2.2
            - 1.1,
            boundaries,  # on a boundary: counted below it
            boundaries.nextafter(boundaries + 1),
            boundaries.nextafter(boundaries - 1),
            torch.tensor([-5.0, 5.0, -1.0, 1.0, 0.0, -0.0, 1e-310, -1e-310], dtype=torch.float64),
        ]
    )
    expected = torch.bucketize(values, boundaries)
    assert torch.equal(_interval_index(values, boundaries), expected)
    assert torch.equal(_interval_index(values.view(2, -1), boundaries), expected.view(2, -1))


def test_ground_truth_with_channel_axis_and_float32():
    truth = cell_truth(2, 8)
    attribution = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
    a = five_band_scores(torch.from_numpy(attribution), torch.from_numpy(truth)[:, None])
    b = five_band_scores(torch.from_numpy(attribution), torch.from_numpy(truth).float())
    expected = reference.five_band(
        attribution, truth, (-0.7, -0.3, 0.3, 0.7), (-0.7, -0.3, 0.3, 0.7)
    )
    for name in expected:
        np.testing.assert_array_equal(a[name].numpy(), expected[name])
        np.testing.assert_array_equal(b[name].numpy(), expected[name])


# ------------------------------------------------------------------------- localisation
def test_localisation_inside_and_uniform():
    mask = torch.zeros(3, 6, 8, dtype=torch.bool)
    mask[:, 1:4, 2:6] = True
    inside = torch.rand(3, 2, 6, 8) * mask[:, None]
    assert localisation_score(inside, mask).tolist() == [1.0, 1.0, 1.0]
    share = 12 / 48
    np.testing.assert_allclose(localisation_score(torch.ones(3, 6, 8), mask).numpy(), share)
    # an all-zero map scores chance, the mask's share
    np.testing.assert_allclose(localisation_score(torch.zeros(3, 6, 8), mask).numpy(), share)
    # signs do not matter, [N, 1, H, W] masks work
    maps = torch.randn(3, 6, 8)
    np.testing.assert_allclose(
        localisation_score(maps, mask[:, None].float()).numpy(),
        localisation_score(maps.abs(), mask).numpy(),
    )
    magnitude = maps.double().abs()
    expected = (magnitude * mask).sum((1, 2)) / magnitude.sum((1, 2))
    np.testing.assert_allclose(localisation_score(maps, mask).numpy(), expected.numpy())


def test_localisation_of_maps_near_the_largest_float64():
    # finite maps whose summed mass overflows float64: the shares are those of the scaled map
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)
    mask[:, 0, 0] = True
    maps = torch.full((2, 1, 2, 2), 1e308, dtype=torch.float64)
    maps[1] = 0.0
    maps[1, 0, 0, 0] = 1.5e308  # and one pixel whose two channels overflow together
    maps = torch.cat([maps, maps], 1)
    torch.testing.assert_close(localisation_score(maps, mask), torch.tensor([0.25, 1.0]).double())
    small = localisation_score(maps / 1e300, mask)
    torch.testing.assert_close(localisation_score(maps, mask), small)
    # the other images of the batch are scored as they would be alone, bit for bit
    other = torch.rand(1, 2, 2, 2, dtype=torch.float64)
    alone = localisation_score(other, mask[:1])
    assert torch.equal(localisation_score(torch.cat([other, maps]), mask[[0, 0, 1]])[:1], alone)


def test_five_band_scores_a_float32_map_whose_channels_sum_past_its_range():
    truth = torch.tensor([[[0.9, 0.4], [0.0, 0.0]]])
    attribution = torch.zeros(1, 3, 2, 2)
    attribution[0, :, 0, 0] = 2e38  # finite, but 6e38 summed: past float32's 3.4e38
    attribution[0, :, 0, 1] = 0.9e38
    scores = five_band_scores(attribution, truth)
    expected = five_band_scores(attribution.double(), truth)
    assert all(torch.equal(scores[name], expected[name]) for name in scores)
    assert float(scores["pixel_accuracy"][0]) == 1.0


def test_localisation_of_float32_maps_whose_channels_sum_past_float32():
    # finite float32 channels whose masses overflow float32: scored as the same map in float64
    mask = torch.zeros(2, 3, 3, dtype=torch.bool)
    mask[:, 0] = True
    maps = torch.rand(2, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    maps[0, :, 0, 0] = 3e38
    maps[0, :, 2, 2] = 2e38
    expected = localisation_score(maps.double(), mask)
    torch.testing.assert_close(localisation_score(maps, mask), expected, rtol=1e-7, atol=0)
    assert 0.5 < float(expected[0]) < 0.7  # 9e38 of 1.5e39 inside


def test_localisation_of_half_maps_as_of_float32():
    # float16 channels summing past float16's 65504 are added in float32
    mask = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(1)) > 0.5
    maps = torch.rand(3, 4, 5, 5, generator=torch.Generator().manual_seed(2)) * 60000
    half = maps.half()
    found = localisation_score(half, mask)
    assert torch.equal(found, localisation_score(half.float(), mask))
    assert bool(torch.isfinite(found).all())


def test_localisation_batch_independent():
    maps, mask = torch.rand(6, 3, 5, 5), torch.rand(6, 5, 5) > 0.5
    whole = localisation_score(maps, mask)
    parts = torch.cat(
        [localisation_score(maps[:2], mask[:2]), localisation_score(maps[2:], mask[2:])]
    )
    assert torch.equal(whole, parts)


# ---------------------------------------------------------------------------- agreement
def test_agreement_identical_and_rescaled():
    a = torch.randn(4, 3, 7, 7)
    found = attribution_agreement(a, a.clone())
    assert found["spearman"].tolist() == [1.0] * 4
    assert found["top_k_iou"].tolist() == [1.0] * 4
    b = torch.randn(4, 3, 7, 7)
    base = attribution_agreement(a, b, top_k=0.2)
    for scale_a, scale_b in [(2.5, 1.0), (1.0, 0.3), (7.0, 1e-3)]:
        scaled = attribution_agreement(scale_a * a, scale_b * b, top_k=0.2)
        for name in base:
            np.testing.assert_allclose(scaled[name].numpy(), base[name].numpy(), rtol=1e-12)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(5, 6, 6)).astype(np.float64)  # many ties
    b = a + rng.integers(-2, 3, size=(5, 6, 6))
    found = attribution_agreement(torch.from_numpy(a), torch.from_numpy(b), absolute=False)
    for n in range(5):
        expected = spearmanr(a[n].ravel(), b[n].ravel()).statistic
        assert found["spearman"][n].item() == pytest.approx(expected, abs=1e-12)
    # absolute=True compares magnitudes
    found_abs = attribution_agreement(torch.from_numpy(a - 1.5), torch.from_numpy(b - 1.5))
    expected = spearmanr(np.abs(a[0] - 1.5).ravel(), np.abs(b[0] - 1.5).ravel()).statistic
    assert found_abs["spearman"][0].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("absolute", [True, False])
def test_agreement_narrow_floats_match_float64(dtype, absolute):
    # float32 and narrower maps are ordered through integer keys (the float's bits above the
    # pixel index); float64 maps by a stable sort: the two must agree, ties included (-0.0
    # inputs too, though torch's channel sum already returns +0.0 for them)
    rng = np.random.default_rng(1)
    a = rng.integers(-3, 4, size=(6, 2, 9, 9)).astype(np.float64)
    b = a[:, ::-1] + rng.integers(-1, 2, size=a.shape)
    a[0] = -0.0  # a map of signed zeros: one run of ties
    b[1, :, :4] = -0.0
    wide = attribution_agreement(torch.from_numpy(a), torch.from_numpy(b), absolute=absolute)
    narrow = attribution_agreement(
        torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype), absolute=absolute
    )
    torch.testing.assert_close(narrow["top_k_iou"], wide["top_k_iou"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(narrow["spearman"].numpy(), wide["spearman"].numpy(), atol=1e-12)
    reduce = np.abs if absolute else (lambda x: x)
    for n in range(1, 6):
        expected = spearmanr(reduce(a[n]).sum(0).ravel(), reduce(b[n]).sum(0).ravel()).statistic
        assert narrow["spearman"][n].item() == pytest.approx(expected, abs=1e-12)
    assert narrow["spearman"][0].item() == 0.0  # a constant map has no ranking


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_agreement_of_finite_maps_whose_channel_sums_overflow_their_dtype(dtype):
    # every value is finite in float32, but the channel sums of the two largest pixels pass
    # float32's range: summed in float32 they would become tied infinities
    rng = np.random.default_rng(4)
    a = rng.uniform(1e37, 3e38, size=(3, 2, 5, 5))
    b = a + rng.uniform(0, 1e37, size=a.shape)
    narrow_a, narrow_b = torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype)
    assert torch.isfinite(narrow_a).all() and torch.isfinite(narrow_b).all()
    assert not torch.isfinite(narrow_a.sum(1)).all()  # the overflow this is about
    for absolute in (True, False):
        found = attribution_agreement(narrow_a, narrow_b, top_k=0.2, absolute=absolute)
        wide = attribution_agreement(narrow_a.double(), narrow_b.double(), top_k=0.2)
        torch.testing.assert_close(found["spearman"], wide["spearman"], rtol=0, atol=1e-12)
        torch.testing.assert_close(found["top_k_iou"], wide["top_k_iou"], rtol=0, atol=1e-12)
        for n in range(3):
            expected = spearmanr(
                narrow_a[n].double().sum(0).ravel(), narrow_b[n].double().sum(0).ravel()
            ).statistic
            assert found["spearman"][n].item() == pytest.approx(expected, abs=1e-12)
    # a NaN is still refused
    narrow_a[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="a must be finite"):
        attribution_agreement(narrow_a, narrow_b)


def test_sorted_runs_and_both_agreement_paths_by_definition():
    # the stable order, run starts and lengths, checked by definition, for torch's key sort
    # (float32) and stable float sort (float64); then the numpy path of the CPU (float32 and
    # narrower) against the torch path used elsewhere, ties and whole-row runs included
    from lightning_distill.attribution.functional import _agreement_parts, _sorted_runs

    rng = np.random.default_rng(3)
    values = rng.integers(-4, 5, size=(7, 50)).astype(np.float32)
    values[0] = 0.0  # one run over the whole row
    values[1] = np.arange(50)  # no ties
    values[2, ::2] = -0.0  # signed zeros tie with zeros
    for dtype in (torch.float32, torch.float64):
        order, first, length = _sorted_runs(torch.from_numpy(values).to(dtype))
        for row in range(values.shape[0]):
            expected_order = np.argsort(values[row] + 0.0, kind="stable")
            np.testing.assert_array_equal(order[row].numpy(), expected_order)
            ordered = values[row][expected_order]
            for position in range(values.shape[1]):
                same = np.flatnonzero(ordered == ordered[position])
                assert first[row, position] == same[0]
                assert length[row, position] == len(same)
    other = torch.from_numpy(values[::-1].copy() + rng.integers(-1, 2, size=values.shape))
    for count in (1, 5, 17, 50):
        by_numpy = _agreement_parts(torch.from_numpy(values), other, count, use_numpy=True)
        by_torch = _agreement_parts(torch.from_numpy(values), other, count, use_numpy=False)
        for found, expected in zip(by_numpy, by_torch, strict=True):
            assert found.dtype == expected.dtype == torch.float64
            torch.testing.assert_close(found, expected, rtol=0, atol=1e-12)
        # magnitudes (the default absolute=True): the keys skip the sign transform
        magnitudes, other_magnitudes = torch.from_numpy(np.abs(values) + 0.0), other.abs()
        by_numpy = _agreement_parts(
            magnitudes, other_magnitudes, count, use_numpy=True, nonnegative=True
        )
        by_torch = _agreement_parts(magnitudes, other_magnitudes, count, use_numpy=False)
        for found, expected in zip(by_numpy, by_torch, strict=True):
            torch.testing.assert_close(found, expected, rtol=0, atol=1e-12)


def _inclusion_probabilities(values: np.ndarray, count: int) -> np.ndarray:
    """Probability of each position being among the top ``count`` when ties are broken by a
    uniformly random order: the mean over every tie-breaking permutation."""
    inside = np.zeros(len(values))
    permutations = list(itertools.permutations(range(len(values))))
    for permutation in permutations:
        ranked = sorted(range(len(values)), key=lambda i: (values[i], permutation[i]))
        inside[ranked[-count:]] += 1
    return inside / len(permutations)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_top_k_ties_are_shared_as_random_tie_breaking_expects(dtype):
    maps = [
        [1.0, 1.0, 1.0, 1.0, 0.0, 2.0],  # four tied pixels, one place left among them
        [0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # no ranking at all
        [3.0, 0.5, 0.5, 2.0, 0.5, 0.5],
    ]
    for count in (1, 2, 3):
        for first, second in itertools.product(maps, repeat=2):
            p_a = _inclusion_probabilities(np.array(first), count)
            p_b = _inclusion_probabilities(np.array(second), count)
            expected = (p_a * p_b).sum()
            found = attribution_agreement(
                torch.tensor([[first]], dtype=dtype),
                torch.tensor([[second]], dtype=dtype),
                top_k=count / 6,
            )["top_k_iou"]
            assert float(found) == pytest.approx(expected / (2 * count - expected), abs=1e-12)


def test_top_k_iou_of_constant_maps_is_chance():
    zeros = torch.zeros(3, 1, 10, 10)
    found = attribution_agreement(zeros, torch.ones_like(zeros), top_k=0.1)
    torch.testing.assert_close(found["top_k_iou"], torch.full((3,), 10 / 190, dtype=torch.float64))
    # independent sparse maps (most pixels zero) agree only by chance, on average
    generator = torch.Generator().manual_seed(1)
    a, b = (
        torch.rand(400, 1, 32, 32, generator=generator)
        * (torch.rand(400, 1, 32, 32, generator=generator) < 0.03)
        for _ in range(2)
    )
    mean = float(attribution_agreement(a, b, top_k=0.1)["top_k_iou"].mean())
    assert mean == pytest.approx(102 / (2 * 1024 - 102), abs=0.005)


def test_top_k_iou_by_hand():
    a = torch.arange(10.0).reshape(1, 1, 2, 5)  # top 30%: pixels 9, 8, 7
    b = torch.tensor([[[[9.0, 8, 0, 0, 0], [0, 0, 0, 7, 6]]]])  # top: pixels 0, 1, 8
    found = attribution_agreement(a, b, top_k=0.3)
    assert found["top_k_iou"].tolist() == [1 / 5]  # {8} of {0, 1, 7, 8, 9}
    # reversed ranking
    assert attribution_agreement(a, -a, absolute=False)["spearman"].tolist() == [-1.0]
    # a constant map carries no ranking
    assert attribution_agreement(a, torch.ones_like(a))["spearman"].tolist() == [0.0]


# ---------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    maps = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"masks must be .*\(2, 3, 8, 8\).*got \(2, 7, 8\)"):
        localisation_score(maps, torch.ones(2, 7, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"ground_truth must be .*\(2, 3, 8, 8\).*\(2, 8, 9\)"):
        five_band_scores(maps, torch.zeros(2, 8, 9))
    with pytest.raises(ValueError, match="thresholds must be four strictly increasing"):
        five_band_scores(maps, torch.zeros(2, 8, 8), thresholds=(-0.3, -0.7, 0.3, 0.7))
    with pytest.raises(ValueError, match=r"thresholds must be four numbers in \[-1, 1\]"):
        five_band_scores(maps, torch.zeros(2, 8, 8), thresholds=(-0.7, -0.3, 0.3, 1.2))
    with pytest.raises(ValueError, match="ground_truth_thresholds must be"):
        five_band_scores(maps, torch.zeros(2, 8, 8), ground_truth_thresholds=(0, 0, 1, 2))
    with pytest.raises(ValueError, match="soft_steps must be small enough"):
        five_band_scores(maps, torch.zeros(2, 8, 8), soft_steps=100)
    bad = maps.clone()
    bad[0, 0, 0, 0] = float("nan")
    for call in (
        lambda: five_band_scores(bad, torch.zeros(2, 8, 8)),
        lambda: localisation_score(bad, torch.ones(2, 8, 8)),
        lambda: attribution_agreement(maps, bad),
    ):
        with pytest.raises(ValueError, match="must be finite"):
            call()
    with pytest.raises(ValueError, match="masks must be a binary mask"):
        localisation_score(maps, torch.full((2, 8, 8), 0.5))
    with pytest.raises(ValueError, match="top_k must be a finite number > 0.0 and <= 1.0"):
        attribution_agreement(maps, maps, top_k=0.0)
    with pytest.raises(ValueError, match=r"b must be of the shape of a"):
        attribution_agreement(maps, maps[:, :1])
    with pytest.raises(TypeError, match="attribution must be a torch.Tensor"):
        five_band_scores(np.zeros((2, 8, 8)), torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"maps must be a \[N, C, H, W\] or \[N, H, W\] tensor"):
        localisation_score(torch.rand(8, 8), torch.ones(8, 8))


def test_size_mismatch_messages_show_the_maps_shape_as_given():
    # [N, H, W] maps are read as [N, 1, H, W]: the messages had shown that shape, not the user's
    maps = torch.rand(2, 8, 8)
    with pytest.raises(ValueError) as raised:
        five_band_scores(maps, torch.zeros(2, 8, 9))
    assert str(raised.value) == (
        "ground_truth must be a tensor with the number of images, height and width of "
        "attribution (shape (2, 8, 8)); got (2, 8, 9)."
    )
    with pytest.raises(ValueError) as raised:
        localisation_score(maps, torch.ones(3, 8, 8, dtype=torch.bool))
    assert str(raised.value) == (
        "masks must be a tensor with the number of images, height and width of maps "
        "(shape (2, 8, 8)); got (3, 8, 8)."
    )


def test_inputs_not_mutated():
    maps = torch.randn(2, 3, 5, 5)
    truth = torch.from_numpy(cell_truth(2, 5))
    copies = maps.clone(), truth.clone()
    five_band_scores(maps, truth, soft_steps=5)
    localisation_score(maps, truth > 0)
    attribution_agreement(maps, maps.flip(-1))
    assert torch.equal(maps, copies[0]) and torch.equal(truth, copies[1])


def test_half_precision_maps_are_reduced_without_overflow_or_rounding():
    # channel sums of float16 maps overflow float16 (3 x 30000 > 65504) and those of bfloat16
    # maps round to 8 bits: the functions reduce channels in float32 at least, so half-precision
    # maps score as the same values in float64
    maps = torch.full((2, 3, 4, 4), 30000.0, dtype=torch.float16)
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2] = True
    found = localisation_score(maps, masks)
    torch.testing.assert_close(found, localisation_score(maps.double(), masks))
    assert found.tolist() == [0.5, 0.5]
    generator = torch.Generator().manual_seed(5)
    a = torch.rand(3, 3, 16, 16, generator=generator).bfloat16()
    b = (a.float() + 0.3 * torch.rand(3, 3, 16, 16, generator=generator)).bfloat16()
    narrow = attribution_agreement(a, b)
    wide = attribution_agreement(a.double(), b.double())
    for name in ("spearman", "top_k_iou"):
        torch.testing.assert_close(narrow[name], wide[name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused_where_only_a_reduction_sees_them(bad_value):
    # finiteness is read from reductions (the peak of the channel sum, the ground truth's
    # extremes, the masses' sums); a single bad value in any channel must still be refused
    maps = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    truth = torch.zeros(2, 8, 8)
    for channel in range(3):
        bad = maps.clone()
        bad[1, channel, 5, 2] = bad_value
        with pytest.raises(ValueError, match="attribution must be finite"):
            five_band_scores(bad, truth)
        with pytest.raises(ValueError, match="maps must be finite"):
            localisation_score(bad, truth == 0)
        with pytest.raises(ValueError, match="a must be finite"):
            attribution_agreement(bad, maps)
    bad_truth = truth.clone()
    bad_truth[0, 3, 3] = bad_value
    with pytest.raises(ValueError, match="ground_truth must be finite"):
        five_band_scores(maps, bad_truth)


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_agreement_and_localisation_sum_channels_as_numpy_does(channels):
    # pixels are reduced over channels one after the other (numpy's sum over an axis), so
    # ties and masses are those of the sums scipy's and numpy's references compute
    maps = torch.randn(4, channels, 6, 7, generator=torch.Generator().manual_seed(4)) * 10
    other = torch.randn(4, channels, 6, 7, generator=torch.Generator().manual_seed(5))
    kept = maps.clone()
    pixels = np.abs(maps.numpy()).sum(1).reshape(4, -1)
    other_pixels = np.abs(other.numpy()).sum(1).reshape(4, -1)
    expected = [spearmanr(p, q).statistic for p, q in zip(pixels, other_pixels)]
    np.testing.assert_allclose(
        attribution_agreement(maps, other)["spearman"].numpy(), expected, rtol=1e-12
    )
    mask = torch.zeros(4, 6, 7, dtype=torch.bool)
    mask[:, 2:5, 1:4] = True
    # the masses are numpy's float32 channel sums, added up in float64
    mass = np.abs(maps.numpy()).sum(1).reshape(4, -1).astype(np.float64)
    inside = (mass * mask.reshape(4, -1).numpy()).sum(1) / mass.sum(1)
    np.testing.assert_allclose(localisation_score(maps, mask).numpy(), inside, rtol=1e-12)
    np.testing.assert_allclose(localisation_score(maps, mask.double()).numpy(), inside, rtol=1e-12)
    assert torch.equal(maps, kept)


def test_five_band_scores_a_float64_map_whose_channels_sum_past_its_range():
    # float64 channels summing past 1.8e308 recursed without end; each image is scaled by a
    # power of two, which leaves the normalised map (and so every band) as it is
    attribution = torch.full((2, 2, 5, 6), 1e308, dtype=torch.float64)
    attribution[1] = -attribution[1]
    attribution[1, 0, 0, 0] = 0.5e308
    truth = torch.zeros(2, 5, 6)
    truth[:, 0, :3] = 0.9
    scores = five_band_scores(attribution, truth, soft_steps=3)
    expected = five_band_scores(attribution / 2.0**1000, truth, soft_steps=3)
    assert all(torch.equal(scores[name], expected[name]) for name in scores)


# ------------------------------------------------------------- five bands, clamped setting
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clamped_setting_matches_reference_port(dtype):
    # the version-1 code's XAI_SETTING_0002: every value clipped to [-0.1, 0.1], then summed
    # over channels and divided by the largest magnitude; its thresholds, 41 sets 0.01 apart
    from lightning_distill.attribution.functional import CLAMPED_THRESHOLDS, REFERENCE_CLAMP

    rng = np.random.default_rng(4)
    truth = cell_truth(5, 12, seed=5).astype(dtype)
    # values of the scale of the bounds (most clipped in image 0, none in image 3), on the
    # bounds themselves (image 1), the all-zero map (image 2) and a negative one (image 4)
    attribution = rng.normal(scale=0.1, size=(5, 3, 12, 12)) + 0.15 * truth[:, None]
    attribution[0] *= 10
    attribution[1] = np.round(attribution[1] / 0.05) * 0.05
    attribution[2] = 0.0
    attribution[3] *= 0.2
    attribution[4] = -np.abs(attribution[4])
    attribution = attribution.astype(dtype)
    kwargs = {"soft_steps": 41, "soft_delta": 0.01, "thresholds": CLAMPED_THRESHOLDS}
    expected = reference.five_band(
        attribution, truth, CLAMPED_THRESHOLDS, (-0.7, -0.3, 0.3, 0.7), 41, 0.01, REFERENCE_CLAMP
    )
    found = five_band_scores(
        torch.from_numpy(attribution), torch.from_numpy(truth), clamp=REFERENCE_CLAMP, **kwargs
    )
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name].numpy(), value, err_msg=name)
    unclamped = five_band_scores(torch.from_numpy(attribution), torch.from_numpy(truth), **kwargs)
    # a map within the bounds scores as without the clamp; a clipped one need not
    within = bool(np.abs(attribution[3]).max() <= 0.1)
    assert within and not bool(np.abs(attribution[0]).max() <= 0.1)
    for name in found:
        np.testing.assert_array_equal(found[name][3].numpy(), unclamped[name][3].numpy())
    assert not torch.equal(found["pixel_accuracy"][0], unclamped["pixel_accuracy"][0])


def test_clamped_setting_by_hand():
    # one 1 x 4 map, clamp (-0.1, 0.1), thresholds (-0.9, -0.5, 0.5, 0.9); truth 0 / 0.9 / -0.9
    # in bands 0, 2, -2 of the default ground-truth thresholds
    maps = torch.tensor([[[[0.05, 0.2, -0.3, 0.0]]]], dtype=torch.float64)
    truth = torch.tensor([[[0.0, 0.9, -0.9, 0.0]]], dtype=torch.float64)
    kwargs = {"thresholds": (-0.9, -0.5, 0.5, 0.9)}
    # clipped: 0.05 0.1 -0.1 0 -> / 0.1: 0.5 1 -1 0 -> bands 0 2 -2 0: all right, TP 2
    clamped = five_band_scores(maps, truth, clamp=(-0.1, 0.1), **kwargs)
    assert float(clamped["pixel_accuracy"][0]) == 1.0
    assert float(clamped["precision"][0]) == pytest.approx(2 / (2 + EPS), rel=1e-15)
    assert float(clamped["recall"][0]) == pytest.approx(2 / (2 + EPS), rel=1e-15)
    # unclipped: / 0.3: 0.17 0.67 -1 0 -> bands 0 1 -2 0: TP 1, FP 1 (band 1 on 2), FN 0
    plain = five_band_scores(maps, truth, **kwargs)
    assert float(plain["pixel_accuracy"][0]) == 0.75
    assert float(plain["precision"][0]) == pytest.approx(1 / (2 + EPS), rel=1e-15)
    assert float(plain["recall"][0]) == pytest.approx(1 / (1 + EPS), rel=1e-15)
    # the bounds are in the map's units: a tenth of the map is not clipped, and scores as the
    # unclamped map (whose scores do not depend on its scale)
    tenth = five_band_scores(maps / 10, truth, clamp=(-0.1, 0.1), **kwargs)
    assert all(torch.equal(tenth[name], plain[name]) for name in plain)
    # a one-sided clamp keeps the positive evidence only: -0.3 -> 0, band 0 on the truth's -2
    positive = five_band_scores(maps, truth, clamp=(0.0, 0.1), **kwargs)
    assert float(positive["pixel_accuracy"][0]) == 0.75
    assert float(positive["recall"][0]) == pytest.approx(1 / (2 + EPS), rel=1e-15)


@pytest.mark.parametrize(
    ("clamp", "error", "match"),
    [
        ((0.1, -0.1), ValueError, r"clamp must be None or a pair \(low, high\).*got \(0.1, -0.1\)"),
        ((0.05, 0.1), ValueError, r"low <= 0 <= high"),
        ((-0.1, -0.05), ValueError, r"low <= 0 <= high"),
        ((0.0, 0.0), ValueError, r"low < high"),
        ((-0.1, 0.0, 0.1), ValueError, r"clamp must be None or a pair"),
        ((-0.1, float("nan")), ValueError, r"clamp\[1\] must be a finite number"),
        ((-0.1, "0.1"), TypeError, r"clamp\[1\] must be a real number"),
        ("ab", TypeError, r"clamp must be None or a pair"),
        (0.1, TypeError, r"clamp must be None or a pair"),
    ],
)
def test_bad_clamp_is_refused_by_name(clamp, error, match):
    from lightning_distill.metrics import FiveBandScore

    maps = torch.rand(2, 3, 8, 8)
    with pytest.raises(error, match=match):
        five_band_scores(maps, torch.zeros(2, 8, 8), clamp=clamp)
    with pytest.raises(error, match=match):
        FiveBandScore(clamp=clamp)


def test_clamp_refuses_non_finite_maps_and_leaves_the_input_as_it_is():
    # clipping would turn an infinity into a bound: refused as without the clamp
    maps = torch.randn(2, 3, 5, 5)
    maps[1, 2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="attribution must be finite"):
        five_band_scores(maps, torch.zeros(2, 5, 5), clamp=(-0.1, 0.1))
    maps = torch.randn(2, 3, 5, 5, dtype=torch.float32)
    copy = maps.clone()
    five_band_scores(maps, torch.zeros(2, 5, 5), clamp=(-0.1, 0.1))
    assert torch.equal(maps, copy)
