"""The attribution entry points in the Lightning side's property-based bad-input harness.

Same rule as ``tests/test_bad_input_lightning.py`` (whose strategies and check are reused):
every generated value is either answered correctly (no NaN) or refused with a ``ValueError`` /
``TypeError`` naming the argument, and no input changes.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_distill.attribution import attribute, loss_gradient
from lightning_distill.functional import (
    attribution_agreement,
    five_band_scores,
    localisation_score,
)
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore
from tests.test_bad_input_lightning import _TEACHER, Row, _check, anything, tensor_or_other

_MAPS = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
_TRUTH = (torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5) * 0.9
_X = torch.rand(3, 8, generator=torch.Generator().manual_seed(2))
_Y = torch.tensor([0, 3, 1])
maps_like = tensor_or_other(
    shapes=[(3, 2, 4, 4), (3, 4, 4), (3, 1, 4, 4), (3, 4, 5), (2, 4, 4), (0, 4, 4)]
)


def no_nan(result) -> None:
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        assert not bool(torch.isnan(torch.as_tensor(value, dtype=torch.float64)).any())


#: each attribution metric with a batch of three images it scores
_METRICS = {
    "FiveBandScore": (lambda: FiveBandScore(soft_steps=2), (_MAPS, _TRUTH)),
    "AttributionLocalisation": (AttributionLocalisation, (_MAPS, _TRUTH > 0.5)),
    "AttributionAgreement": (AttributionAgreement, (_MAPS, _MAPS.flip(-1))),
}


def _kept_images(name: str, keep) -> int:
    """The number of images a metric adds from a batch of three under ``keep``."""
    build, batch = _METRICS[name]
    metric = build()
    metric.update(*batch, keep=keep)
    return int(metric.count)


def _spread(name: str = "FiveBandScore", **kwargs):
    build, batch = _METRICS[name]
    metric = build()
    metric.update(*batch)
    return metric.std(**kwargs)


ROWS = [
    Row(
        "five_band_scores",
        lambda v: five_band_scores(v, _TRUTH),
        ("attribution",),
        maps_like,
        no_nan,
    ),
    Row(
        "five_band_scores",
        lambda v: five_band_scores(_MAPS, v),
        ("ground_truth",),
        maps_like,
        no_nan,
    ),
    Row(
        "five_band_scores",
        lambda v: five_band_scores(_MAPS, _TRUTH, thresholds=v),
        ("thresholds",),
        st.one_of(anything, st.lists(st.floats(-2, 2), min_size=3, max_size=5)),
        no_nan,
    ),
    Row(
        "five_band_scores",
        lambda v: five_band_scores(_MAPS, _TRUTH, soft_steps=v),
        ("soft_steps",),
        anything,
        no_nan,
    ),
    Row(
        "five_band_scores",
        lambda v: five_band_scores(_MAPS, _TRUTH, soft_steps=3, soft_delta=v),
        ("soft_delta",),
        anything,
        no_nan,
    ),
    Row(
        "localisation_score",
        lambda v: localisation_score(v, _TRUTH > 0),
        ("maps",),
        maps_like,
        no_nan,
    ),
    Row(
        "localisation_score", lambda v: localisation_score(_MAPS, v), ("masks",), maps_like, no_nan
    ),
    Row(
        "attribution_agreement",
        lambda v: attribution_agreement(_MAPS, v),
        ("b", "a"),
        maps_like,
        no_nan,
    ),
    Row(
        "attribution_agreement",
        lambda v: attribution_agreement(_MAPS, _MAPS, top_k=v),
        ("top_k",),
        anything,
        no_nan,
    ),
    Row(
        "five_band_scores",
        lambda v: five_band_scores(_MAPS, _TRUTH, clamp=v),
        ("clamp",),
        st.one_of(anything, st.lists(st.floats(-1, 1), min_size=1, max_size=3)),
        no_nan,
    ),
    Row("FiveBandScore", lambda v: FiveBandScore(soft_steps=v), ("soft_steps",), anything),
    *(
        Row(
            f"{name}.update",
            lambda v, name=name: _kept_images(name, keep=v),
            ("keep",),
            st.one_of(tensor_or_other(shapes=[(3,), (2,), (3, 1), ()]), st.lists(st.booleans())),
            lambda count: 0 <= count <= 3,
        )
        for name in _METRICS
    ),
    Row("FiveBandScore.std", lambda v: _spread(of=v), ("of",), anything, no_nan),
    *(
        Row(f"{name}.std", lambda v, name=name: _spread(name, ddof=v), ("ddof",), anything)
        for name in _METRICS
    ),
    Row(
        "loss_gradient",
        lambda v: loss_gradient(_TEACHER, _X, v),
        ("targets",),
        tensor_or_other(shapes=[(3,), (4,), ()]),
        no_nan,
    ),
    Row(
        "loss_gradient",
        lambda v: loss_gradient(_TEACHER, v, _Y),
        ("inputs", "model"),
        tensor_or_other(shapes=[(3, 8), (3, 7)]),
        no_nan,
    ),
    Row("attribute", lambda v: attribute(_TEACHER, _X, _Y, v), ("method",), anything, no_nan),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.entry}-{r.names[0]}" for r in ROWS])
def test_attribution_bad_input(row):
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(value=row.values)
    def run(value):
        _check(row, value)

    run()


def test_five_band_ground_truth_off_the_thresholds_scale():
    # heatmaps kept as 8-bit images (0 / 102 / 230) all fell in the top band: a perfect map
    # scored precision 0.25, silently
    truth = torch.tensor([[[0.0, 0.4], [0.9, 0.0]]])
    with pytest.raises(ValueError, match=r"ground_truth must hold heatmaps.*values up to 229\.5"):
        five_band_scores(truth, truth * 255)
    with pytest.raises(ValueError, match="divide 8-bit heatmaps by 255"):
        FiveBandScore().update(truth, truth * 255)
    # on their own scale, with thresholds to match, they score as the unit heatmaps do
    scaled = five_band_scores(
        truth, truth * 255, ground_truth_thresholds=(-178.5, -76.5, 76.5, 178.5)
    )
    for name, value in five_band_scores(truth, truth).items():
        torch.testing.assert_close(scaled[name], value)
