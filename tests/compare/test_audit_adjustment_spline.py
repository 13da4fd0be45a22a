"""The missing-feature test's adjustment holds a spline of each numeric feature: a shape both
models misfit alike along a feature (a wiggle neither holds, a kink) leaves the adjusted
residuals, while a missing feature independent of the audit features stays in them."""

import numpy as np
import pandas as pd
import pytest

import sklearn_distill.audit as audit_module
from sklearn_distill.audit import _adjusted_pairs, _adjustment_basis, _spline_columns


def _pearson(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def _shared_misfit_world(planted=0.0, seed=0):
    """Cross pairs' residuals of one split in thirds, without models: each pair's mimic
    residual and outcome residual share a wiggle ``sin(2 x3)`` and a kink ``|x1|`` along the
    audit features (the misfit of two models that underfit the same shape), each has noise of
    its own, and with ``planted`` both carry a feature ``h`` the audit data lack."""
    rng = np.random.default_rng(seed)
    n = 1200
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{j}" for j in range(4)])
    shape = np.sin(2 * X["x3"].to_numpy()) + 0.5 * np.abs(X["x1"].to_numpy())
    h = rng.normal(size=n)
    mimic = (0.3 * shape + planted * h + 0.3 * rng.normal(size=(2, n)))[None]
    outcome = (0.1 * shape + 0.4 * planted * h + 0.45 * rng.normal(size=(2, n)))[None]
    prediction = X["x0"].to_numpy() - 0.8 * np.abs(X["x1"].to_numpy()) + 0.5 * X["x2"].to_numpy()
    target = mimic + prediction
    thirds = [np.arange(t, n, 3) for t in range(3)]
    return X, [thirds], mimic, outcome, target, shape, h


def test_adjustment_holds_a_shape_both_residuals_share_along_a_feature(monkeypatch):
    X, splits, mimic, outcome, target, shape, _ = _shared_misfit_world()
    adjusted_mimic, adjusted_outcome, _ = _adjusted_pairs(X, splits, mimic, outcome, target)
    # the shared shape is held: what is left of the mimic's residual no longer follows it,
    # and the two residuals correlate by their independent noise alone (about 1 / sqrt(2n),
    # 0.02, for the stacked pairs)
    assert abs(_pearson(adjusted_mimic[0], np.broadcast_to(shape, (2, shape.size)))) < 0.02
    assert abs(_pearson(adjusted_mimic, adjusted_outcome)) < 0.04
    # the quadratic alone (no knots) leaves the wiggle in both: the test read it as missing
    monkeypatch.setattr(audit_module, "_MAX_SPLINE_KNOTS", 0)
    quadratic_mimic, quadratic_outcome, _ = _adjusted_pairs(X, splits, mimic, outcome, target)
    assert _pearson(quadratic_mimic[0], np.broadcast_to(shape, (2, shape.size))) > 0.3
    assert _pearson(quadratic_mimic, quadratic_outcome) > 0.06  # 0.08 here, 0.007 with it


def test_adjustment_keeps_a_missing_feature_independent_of_the_audit_features(monkeypatch):
    X, splits, mimic, outcome, target, _, h = _shared_misfit_world(planted=0.5, seed=1)
    adjusted_mimic, adjusted_outcome, spline_factor = _adjusted_pairs(
        X, splits, mimic, outcome, target
    )
    monkeypatch.setattr(audit_module, "_MAX_SPLINE_KNOTS", 0)
    quadratic_mimic, quadratic_outcome, quadratic_factor = _adjusted_pairs(
        X, splits, mimic, outcome, target
    )
    # h is found, its correlation no longer inflated by the shared shape
    with_spline = _pearson(adjusted_mimic, adjusted_outcome)
    assert with_spline > 0.25
    assert _pearson(quadratic_mimic, quadratic_outcome) > with_spline
    # the residuals' part along h survives the spline (h is independent of the columns): its
    # projection on h keeps its size in each residual but for the columns' chance share of
    # h, about k / n (40 more columns of 400 rows: 0.89-0.91 here)
    for adjusted, quadratic in (
        (adjusted_mimic, quadratic_mimic),
        (adjusted_outcome, quadratic_outcome),
    ):
        kept = np.sum(adjusted[0] * h) / np.sum(quadratic[0] * h)
        assert 0.8 < kept < 1.05
    # the spline's columns count in the degrees of freedom: 18 + 40 columns in each third of
    # 400 rows, against 18
    assert quadratic_factor >= 1200 / (1200 - 3 * 18) - 1e-9
    assert spline_factor >= 1200 / (1200 - 3 * 58) - 1e-9


def test_spline_knots_are_the_distinct_quantiles_inside_the_range():
    rng = np.random.default_rng(2)
    z = rng.normal(size=400)
    columns = _spline_columns(z, 10)
    knots = np.quantile(z, np.arange(1, 11) / 11)
    assert len(columns) == 10
    for column, knot in zip(columns, knots):
        np.testing.assert_allclose(column, np.where(z > knot, (z - knot) ** 3, 0.0))
    # a feature of two values has no knot inside its range; one of three values, one knot
    assert _spline_columns(np.repeat([0.0, 1.0], 200), 10) == []
    three = np.repeat([0.0, 1.0, 2.0], [100, 200, 100])
    assert len(_spline_columns(three, 10)) == 1
    assert _spline_columns(z, 0) == []


@pytest.mark.parametrize(("features", "knots"), [(4, 10), (20, 2)])
def test_spline_fills_another_column_per_ten_rows_the_features_alike(features, knots):
    # a third of 400 rows: the polynomial takes up to 40 columns, the spline another 40, the
    # same number of knots for each feature
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, features)), columns=[f"x{j}" for j in range(features)])
    basis = _adjustment_basis(X, n, rng.normal(size=n), mimic_residual=rng.normal(size=n))
    polynomial = min(n // 10, 1 + 3 + features + features + features * (features - 1) // 2)
    assert basis.shape[1] == polynomial + features * knots
    assert np.linalg.matrix_rank(basis) == basis.shape[1]
    # a third of 50 rows: one column per ten rows, 5; the polynomial fills them, and the
    # spline's 5 columns give one knot to each of four features
    small = _adjustment_basis(X.iloc[:50, :4], 50, rng.normal(size=50))
    assert small.shape[1] == 5 + 4
