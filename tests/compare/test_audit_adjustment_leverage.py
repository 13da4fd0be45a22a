"""The missing-feature test's adjustment checked against independent computations: each row's
leverage against a hat matrix built from a pivoted QR decomposition, the HC2 factor against
the HC2 and HC0 sandwich variances of the residual-on-residual slope, and the level-by-
prediction columns against pandas' group sums, on edge cases (rank-deficient bases, rows of
leverage 1, thirds of unequal size, missing values as a level, levels of one row)."""

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from sklearn_distill.audit import (
    _adjust,
    _adjust_with_rank,
    _adjusted_pairs,
    _adjustment_basis,
    _leverage,
    _leverage_inflation,
)


def _hat_diagonal(basis):
    """The diagonal of the hat matrix of ``basis``'s column space: an orthonormal basis of it
    from a QR decomposition with column pivoting, cut at the numerical rank."""
    q, r, _ = linalg.qr(basis, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int(np.sum(diagonal > diagonal[0] * max(basis.shape) * np.finfo(float).eps * 10))
    q = q[:, :rank]
    return np.sum(q * q, axis=1), rank


def _bases():
    rng = np.random.default_rng(0)
    full = np.column_stack([np.ones(40), rng.normal(size=(40, 5))])
    # a column repeated and one the sum of two others: rank 6 of 8
    deficient = np.column_stack([full, full[:, 2], full[:, 3] + full[:, 4]])
    # a level held by one row (its indicator): that row's leverage is 1
    alone = np.column_stack([full, (np.arange(40) == 7).astype(float)])
    # levels of 1, 2, 3 and 25 rows in a third of 31 rows
    codes = np.r_[0, 1, 1, 2, 2, 2, np.full(25, 3)]
    levels = np.column_stack(
        [np.ones(31), rng.normal(size=31)] + [(codes == k).astype(float) for k in range(3)]
    )
    return {"full": full, "deficient": deficient, "alone": alone, "levels": levels}


@pytest.mark.parametrize("name", ["full", "deficient", "alone", "levels"])
def test_leverage_is_the_hat_matrix_diagonal_of_the_fit_the_adjustment_makes(name):
    basis = _bases()[name]
    leverage = _leverage(basis)
    expected, rank = _hat_diagonal(basis)
    np.testing.assert_allclose(leverage, expected, atol=1e-12)
    # the leverages sum to the rank the adjustment fitted
    values = np.random.default_rng(1).normal(size=(2, basis.shape[0]))
    adjusted, fitted = _adjust_with_rank(basis, values)
    assert fitted == rank
    assert leverage.sum() == pytest.approx(rank, abs=1e-9)
    # the adjustment is I - H: a row of leverage 1 keeps nothing
    hat = basis @ np.linalg.pinv(basis)
    np.testing.assert_allclose(adjusted, values - values @ hat.T, atol=1e-10)
    np.testing.assert_allclose(adjusted[:, leverage > 1 - 1e-9], 0, atol=1e-12)


def _orthogonal_pair(rng, bases, sizes):
    """Adjusted residuals of two pairs per row, in thirds of the given sizes, the outcome's
    made orthogonal to the mimic's over the stacked pairs (a correlation of exactly 0, whose
    influence is then the product of the two), and the rows' leverages."""
    n = sum(sizes)
    starts = np.cumsum([0, *sizes])
    mimic, outcome, leverage = np.empty((2, n)), np.empty((2, n)), np.empty(n)
    for basis, start, stop in zip(bases, starts[:-1], starts[1:]):
        rows = slice(start, stop)
        noise = np.where(np.arange(stop - start) % 5 == 0, 3.0, 1.0)
        mimic[:, rows] = _adjust(basis, rng.normal(size=(2, stop - start)))
        outcome[:, rows] = _adjust(basis, noise * rng.normal(size=(2, stop - start)))
        leverage[rows] = _leverage(basis)
    outcome -= np.sum(outcome * mimic) / np.sum(mimic * mimic) * mimic
    return mimic, outcome, leverage


def test_leverage_inflation_is_the_ratio_of_hc2_to_hc0_sandwich_variances():
    # With a correlation of 0, a row's influence on it is its pairs' products a * b (standard
    # units): the HC2 factor is the ratio of the HC2 to the HC0 sandwich variance of the
    # slope of b on a, rows (all their pairs together) as the units, each row's squared
    # score divided by its own 1 - h in HC2. Thirds of unequal size, one basis rank-deficient
    # and one with a row alone in its level (leverage 1: it adds nothing to either).
    rng = np.random.default_rng(2)
    bases = _bases()
    thirds = [bases["deficient"], bases["alone"], bases["levels"]]
    mimic, outcome, leverage = _orthogonal_pair(rng, thirds, [40, 40, 31])
    assert np.sum(leverage > 1 - 1e-9) == 2  # a row alone, and the third's row alone
    score = (mimic * outcome).sum(axis=0)  # a row's term of the slope's estimating equation
    bread = np.sum(mimic * mimic)
    kept = leverage < 1 - 1e-9
    hc0 = np.sum(score**2) / bread**2
    hc2 = np.sum(score[kept] ** 2 / (1 - leverage[kept])) / bread**2
    assert _leverage_inflation(mimic, outcome, leverage) == pytest.approx(hc2 / hc0, rel=1e-9)
    assert hc2 / hc0 > 1


def test_adjusted_pairs_factor_is_the_larger_of_hc1_and_hc2_over_unequal_thirds():
    # The split's thirds hold 50, 40 and 31 rows: n / (n - k) counts the rank fitted in each
    # third, and HC2 takes each row's leverage in its own third's bases (the level-by-
    # prediction columns included), one per pair, from its own mimic: rank and leverage are
    # the two pairs' mean.
    rng = np.random.default_rng(3)
    n = 121
    order = rng.permutation(n)
    thirds = [np.sort(order[:50]), np.sort(order[50:90]), np.sort(order[90:])]
    level = rng.choice(np.array(["a", "b", "c", None], dtype=object), size=n)
    level[order[0]] = "alone"
    X = pd.DataFrame({"x": rng.normal(size=n), "level": level})
    mimic = rng.normal(size=(1, 2, n))
    outcome = rng.normal(size=(1, 2, n))
    target = mimic + rng.normal(size=n)  # a prediction that varies: its powers are columns
    adjusted_mimic, adjusted_outcome, factor = _adjusted_pairs(X, [thirds], mimic, outcome, target)
    fitted, leverage = 0.0, np.zeros(n)
    for rows in thirds:
        for pair in range(2):
            basis = _adjustment_basis(
                X.iloc[rows],
                len(rows),
                target[0][pair, rows] - mimic[0][pair, rows],
                mimic_residual=mimic[0][pair, rows],
            )
            h, rank = _hat_diagonal(basis)
            fitted += rank / 2
            leverage[rows] += h / 2
            np.testing.assert_allclose(
                adjusted_outcome[0][pair, rows], _adjust(basis, outcome[0][pair, rows]), atol=1e-12
            )
    assert leverage[order[0]] == pytest.approx(1.0)  # the row alone in its level
    hc1 = n / (n - fitted)
    hc2 = _leverage_inflation(adjusted_mimic[0], adjusted_outcome[0], leverage)
    assert factor == pytest.approx(max(hc1, hc2), rel=1e-9)


def _leave_one_out_means(codes, residual):
    """The mean of ``residual`` over the other rows of each row's level (0 for a row alone),
    by pandas' group sums and counts, missing values a level of their own."""
    frame = pd.DataFrame({"level": codes, "residual": residual})
    grouped = frame.groupby("level", dropna=False, observed=True)["residual"]
    others = grouped.transform("size").to_numpy() - 1
    sums = grouped.transform("sum").to_numpy() - residual
    return np.where(others > 0, sums / np.maximum(others, 1), 0.0)


def test_level_misfit_columns_are_leave_one_out_means_times_the_standardised_prediction():
    # A third of 30 rows: a category with unused categories, missing values (NaN and None
    # alike, one level) and a level of one row; a text column with its own missing values.
    rng = np.random.default_rng(4)
    n = 30
    category = pd.Categorical(
        ["a"] * 8 + ["b"] * 2 + ["c"] + [None] * 5 + ["d"] * 14,
        categories=["z", "a", "b", "c", "d"],
    )
    text = np.array(["u", "v", np.nan, None, "w"] * 6, dtype=object)
    X = pd.DataFrame({"x": rng.normal(size=n), "category": category, "text": text})
    prediction = 100 + 3 * rng.normal(size=n)
    residual = rng.normal(size=n)
    basis = _adjustment_basis(X, n, prediction, mimic_residual=residual)
    z = (prediction - prediction.mean()) / prediction.std()
    expected = []
    for values in (X["category"], X["text"].fillna("missing")):
        mean = _leave_one_out_means(values, residual)
        expected += [mean * z, mean * z * z]
    # the two features' pairs come after the indicators, in the features' order, and before
    # the numeric feature's spline, which comes last
    # (no knot in a third of 30 rows: at most one per 20 rows, less one)
    spline = 0
    assert basis.shape[1] == 3 + 7 + 4
    pairs = basis[:, basis.shape[1] - spline - 4 : basis.shape[1] - spline]
    np.testing.assert_allclose(pairs, np.column_stack(expected), atol=1e-12)
    assert pairs[10, 0] == 0  # "c", a level of one row
    # a row's own residual is in none of its own columns (other rows' columns take it)
    moved = residual.copy()
    moved[3] += 10.0
    again = _adjustment_basis(X, n, prediction, mimic_residual=moved)
    np.testing.assert_allclose(again[3], basis[3], rtol=0, atol=1e-12)
    column = basis.shape[1] - spline - 4
    assert not np.allclose(again[:8, column], basis[:8, column])


def test_adjustment_basis_keeps_half_a_thirds_rows_with_many_nominal_features():
    # A third of 100 rows and 30 nominal features of three levels: the polynomial and the
    # level indicators fill one column per two rows, and the two level-by-prediction columns
    # of each feature, added past that limit, fitted every row: the adjusted residuals were
    # rounding noise, whose correlation the test then reported as an estimate.
    rng = np.random.default_rng(5)
    n = 100
    X = pd.DataFrame({f"c{j}": pd.Categorical(rng.integers(3, size=n)) for j in range(30)})
    X["x"] = rng.normal(size=n)
    basis = _adjustment_basis(X, n, rng.normal(size=n), mimic_residual=rng.normal(size=n))
    values = rng.normal(size=(2, n))
    adjusted, rank = _adjust_with_rank(basis, values)
    assert basis.shape[1] <= n // 2
    assert rank <= n // 2
    # the residuals keep n - rank degrees of freedom: their squared norm, in expectation
    # (n - rank) / n of the values', is far from zero
    assert np.sum(adjusted**2) > 0.25 * np.sum(values**2)
    # with few features the columns fit within the limit as before: all of them are there
    few = _adjustment_basis(
        X[["c0", "c1", "x"]], n, rng.normal(size=n), mimic_residual=rng.normal(size=n)
    )
    # (and the numeric feature's spline: 4 knots, one per 20 rows less one)
    assert few.shape[1] == 1 + 3 + 1 + 1 + 2 * 2 + 2 * 2 + 4
