"""Tests of the pure statistics behind CompareAudit (sklearn_distill.stats)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp_stats

from sklearn_distill.stats import (
    binned_rate,
    bootstrap_correlations,
    bootstrap_p_value,
    compare_shapes,
    correlation,
    normal_quantile,
    term_stability,
    untested_terms,
)


def _bivariate_normal(rho, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return a, b


@pytest.mark.parametrize(
    "method, reference",
    [
        ("pearson", sp_stats.pearsonr),
        ("spearman", sp_stats.spearmanr),
        ("kendall", sp_stats.kendalltau),
    ],
)
def test_correlation_matches_scipy(method, reference):
    a, b = _bivariate_normal(0.4, 80, 0)
    b = np.round(b, 1)  # ties, so Spearman's average ranks and Kendall's tau-b matter
    assert correlation(a, b, method) == pytest.approx(reference(a, b).statistic, abs=1e-12)


def test_correlation_of_constant_is_nan():
    assert np.isnan(correlation([1, 1, 1, 1], [1, 2, 3, 4], "kendall"))
    assert np.isnan(correlation([1, 1, 1, 1], [1, 2, 3, 4], "pearson"))


def test_bootstrap_p_value_formula():
    # 1 of 4 replicates <= 0: ASL = 2 * (1 + 1) / 5
    assert bootstrap_p_value([0.2, 0.3, 0.25, -0.01]) == pytest.approx(0.8)
    # all above: the smallest value reachable with B replicates, 2 / (B + 1)
    assert bootstrap_p_value(np.full(99, 0.5)) == pytest.approx(0.02)
    # symmetric around the null: p = 1
    assert bootstrap_p_value([-1.0, 1.0, -2.0, 2.0]) == pytest.approx(1.0)
    assert bootstrap_p_value([0.1, np.nan, 0.2]) == pytest.approx(2 / 3)
    assert np.isnan(bootstrap_p_value([np.nan]))


def test_bootstrap_correlations_estimates_and_intervals():
    a, b = _bivariate_normal(0.5, 300, 1)
    table = bootstrap_correlations(a, b, n_bootstrap=300, random_state=0)
    assert list(table.index) == ["pearson", "spearman", "kendall"]
    assert table.loc["pearson", "estimate"] == pytest.approx(sp_stats.pearsonr(a, b).statistic)
    assert table.loc["kendall", "estimate"] == pytest.approx(sp_stats.kendalltau(a, b).statistic)
    assert (table["low"] < table["estimate"]).all() and (table["estimate"] < table["high"]).all()
    assert (table["low"] > 0).all()
    np.testing.assert_allclose(table["p_value"], 2 / 301)
    assert (table["n_bootstrap"] == 300).all()
    # the bootstrap standard error of Pearson's r is close to the normal theory (1 - r^2)/sqrt(n)
    r = table.loc["pearson", "estimate"]
    assert table.loc["pearson", "std_error"] == pytest.approx((1 - r**2) / np.sqrt(300), rel=0.3)


def test_bootstrap_replicates_are_resamples_of_pairs():
    a, b = _bivariate_normal(0.3, 50, 2)
    table, reps = bootstrap_correlations(
        a, b, n_bootstrap=60, random_state=3, methods=("pearson",), return_replicates=True
    )
    assert reps.shape == (60, 1)
    alpha = 0.05
    low, high = np.quantile(reps["pearson"], [alpha / 2, 1 - alpha / 2])
    assert table.loc["pearson", "low"] == pytest.approx(low)
    assert table.loc["pearson", "high"] == pytest.approx(high)
    assert table.loc["pearson", "p_value"] == pytest.approx(bootstrap_p_value(reps["pearson"]))


def test_bootstrap_is_reproducible_and_independent_of_n_jobs():
    a, b = _bivariate_normal(0.2, 120, 4)
    one = bootstrap_correlations(a, b, n_bootstrap=120, random_state=7, n_jobs=1)
    two = bootstrap_correlations(a, b, n_bootstrap=120, random_state=7, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    other = bootstrap_correlations(a, b, n_bootstrap=120, random_state=8)
    assert not np.allclose(one["low"], other["low"])


def test_bootstrap_null_and_coverage_behaviour():
    # Independent samples: p-values mostly large; intervals at 90% cover 0 most of the time.
    # Correlated samples (rho = 0.5): the 90% Pearson interval covers 0.5 about 90% of the time.
    rejections, covers_zero, covers_rho = 0, 0, 0
    runs = 40
    for seed in range(runs):
        a, b = _bivariate_normal(0.0, 60, 100 + seed)
        t = bootstrap_correlations(
            a, b, n_bootstrap=200, confidence=0.9, random_state=seed, methods=("pearson",)
        )
        rejections += t.loc["pearson", "p_value"] < 0.05
        covers_zero += t.loc["pearson", "low"] <= 0 <= t.loc["pearson", "high"]
        a, b = _bivariate_normal(0.5, 60, 500 + seed)
        t = bootstrap_correlations(
            a, b, n_bootstrap=200, confidence=0.9, random_state=seed, methods=("pearson",)
        )
        covers_rho += t.loc["pearson", "low"] <= 0.5 <= t.loc["pearson", "high"]
    assert rejections <= 6  # expected 2 of 40
    assert covers_zero >= 30  # expected 36 of 40
    assert covers_rho >= 30


def test_record_bootstrap_of_copies_is_the_plain_bootstrap_of_the_records():
    # each record entered three times: drawing records gives, draw for draw, the plain
    # bootstrap of the records entered once (every correlation, Kendall's tau-b included, is
    # unchanged when every sample is repeated equally); drawing rows would count the copies as
    # independent and shrink the interval
    rng = np.random.default_rng(5)
    a = rng.normal(size=80)
    b = 0.3 * a + rng.normal(size=80)
    b[:4] = b[4:8]  # ties, so Kendall's tau-b meets its tie terms
    once, reps_once = bootstrap_correlations(
        a, b, n_bootstrap=300, random_state=7, return_replicates=True
    )
    copies = np.repeat(np.arange(80), 3)
    thrice, reps_thrice = bootstrap_correlations(
        a[copies], b[copies], n_bootstrap=300, random_state=7, return_replicates=True,
        groups=copies.astype(str),
    )  # fmt: skip
    np.testing.assert_allclose(reps_thrice.to_numpy(), reps_once.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(thrice.to_numpy(float), once.to_numpy(float), atol=1e-12)
    rows = bootstrap_correlations(a[copies], b[copies], n_bootstrap=300, random_state=7)
    assert (rows["std_error"] < 0.7 * once["std_error"]).all()
    # one sample per record: the plain bootstrap exactly
    plain = bootstrap_correlations(a, b, n_bootstrap=50, random_state=3)
    recorded = bootstrap_correlations(a, b, n_bootstrap=50, random_state=3, groups=np.arange(80))
    np.testing.assert_allclose(plain.to_numpy(float), recorded.to_numpy(float), rtol=1e-12)
    with pytest.raises(ValueError, match=r"groups must hold one record identifier per sample"):
        bootstrap_correlations(a, b, groups=copies)
    with pytest.raises(ValueError, match="at least 2 distinct record identifiers"):
        bootstrap_correlations(a, b, groups=np.zeros(80))


def test_stacked_bootstrap_is_the_mean_of_stacked_correlations():
    # shape (n_repeats, n_pairs, n_samples): per repeat, the pairs of every sample stacked;
    # the estimate is the mean over repeats, computed here with scipy
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 2, 80)).round(1)  # ties, within and across the pairs
    y = (0.4 * x + rng.normal(size=(3, 2, 80))).round(1)
    table, reps = bootstrap_correlations(
        x, y, n_bootstrap=40, random_state=1, return_replicates=True
    )
    for method, function in (
        ("pearson", sp_stats.pearsonr),
        ("spearman", sp_stats.spearmanr),
        ("kendall", sp_stats.kendalltau),
    ):
        expected = np.mean([function(x[r].ravel(), y[r].ravel()).statistic for r in range(3)])
        assert table.loc[method, "estimate"] == pytest.approx(expected)
    # a replicate resamples samples, all their pairs in every repeat together
    draws = np.random.default_rng(
        np.random.RandomState(1).randint(0, 2**31 - 1, size=1)[0]
    ).integers(0, 80, size=(40, 80))
    for method, function in (
        ("pearson", sp_stats.pearsonr),
        ("spearman", sp_stats.spearmanr),
        ("kendall", sp_stats.kendalltau),
    ):
        raw = np.array(
            [
                np.mean(
                    [
                        function(x[r][:, rows].ravel(), y[r][:, rows].ravel()).statistic
                        for r in range(3)
                    ]
                )
                for rows in draws
            ]
        )
        # the spread of the three repeats' own correlations is added to the replicates' variance
        per_repeat = [function(x[r].ravel(), y[r].ravel()).statistic for r in range(3)]
        estimate = table.loc[method, "estimate"]
        factor = np.sqrt(1 + np.var(per_repeat, ddof=1) / 3 / np.var(raw, ddof=1))
        np.testing.assert_allclose(reps[method], estimate + factor * (raw - estimate), rtol=1e-10)
        assert table.loc[method, "std_error"] ** 2 == pytest.approx(
            np.var(raw, ddof=1) + np.var(per_repeat, ddof=1) / 3
        )
    # one repeat of one pair is the paired sample
    flat = bootstrap_correlations(x[0, 0], y[0, 0], n_bootstrap=40, random_state=1)
    cube = bootstrap_correlations(x[:1, :1], y[:1, :1], n_bootstrap=40, random_state=1)
    pd.testing.assert_frame_equal(flat, cube)


def test_bootstrap_keeps_precision_when_a_resample_leaves_out_an_outlier():
    # the replicates come from weighted moments; a resample without the one huge value must
    # still give the correlation of what it drew (scipy on the gathered resample)
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    x[0] = 1e9
    y = x + rng.normal(size=100)
    y[0] = 0.0
    table, reps = bootstrap_correlations(
        x, y, n_bootstrap=60, random_state=0, methods=("pearson",), return_replicates=True
    )
    assert table.loc["pearson", "n_bootstrap"] == 60
    draws = np.random.default_rng(
        np.random.RandomState(0).randint(0, 2**31 - 1, size=2)[0]
    ).integers(0, 100, size=(50, 100))
    expected = [sp_stats.pearsonr(x[rows], y[rows]).statistic for rows in draws]
    np.testing.assert_allclose(reps["pearson"][:50], expected, rtol=1e-9, atol=1e-12)
    # a draw of one value (all copies of one row) has no correlation
    one = bootstrap_correlations(
        np.r_[5.0, np.zeros(2)], np.r_[1.0, 2.0, 3.0], n_bootstrap=200, random_state=1
    )
    assert one.loc["pearson", "n_bootstrap"] < 200


def test_stretched_replicates_stay_correlations():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 1, 30))
    y = rng.normal(size=(3, 1, 30))
    y[0] = x[0] + 0.1 * y[0]  # one repeat almost perfectly correlated: a wide spread
    _, reps = bootstrap_correlations(
        x, y, n_bootstrap=200, random_state=0, methods=("pearson",), return_replicates=True
    )
    assert reps["pearson"].between(-1, 1).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.ones((2, 2, 5)), "y": np.ones((2, 1, 5))}, ValueError, "both of shape"),
        ({"x": np.ones((2, 5)), "y": np.ones((2, 5))}, ValueError, "both of shape"),
        ({"x": np.ones((1, 1, 2)), "y": np.ones((1, 1, 2))}, ValueError, "at least 3 samples"),
        ({"x": np.full((1, 2, 4), np.nan), "y": np.ones((1, 2, 4))}, ValueError, "x contains"),
        ({"x": [1, 2, 3], "y": [1, 2]}, ValueError, "same length"),
        ({"x": [1, 2, np.nan], "y": [1, 2, 3]}, ValueError, "x contains NaN"),
        ({"x": [1, 2, 3], "y": [1, np.inf, 3]}, ValueError, "y contains NaN"),
        ({"x": [1, 2], "y": [1, 2]}, ValueError, "at least 3"),
        ({"confidence": 1.5}, ValueError, "confidence must be in"),
        ({"confidence": "high"}, TypeError, "confidence must be a float"),
        ({"n_bootstrap": 0}, ValueError, "n_bootstrap must be >= 1"),
        ({"n_bootstrap": 2.5}, TypeError, "n_bootstrap must be an int"),
        ({"methods": ("pearson", "tau")}, ValueError, "methods must be"),
    ],
)
def test_bootstrap_correlations_bad_input(kwargs, error, match):
    args = {"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 1.0, 4.0, 3.0], **kwargs}
    with pytest.raises(error, match=match):
        bootstrap_correlations(args.pop("x"), args.pop("y"), **args)


def test_bootstrap_does_not_modify_input():
    a, b = _bivariate_normal(0.1, 30, 9)
    a0, b0 = a.copy(), b.copy()
    bootstrap_correlations(a, b, n_bootstrap=20, random_state=0)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def _shape(scores, se, term="x"):
    return pd.DataFrame(
        {"term": term, "value": np.arange(len(scores)), "score": scores, "std_error": se}
    )


def test_compare_shapes_difference_and_test():
    mimic = _shape([0.0, 1.0, 0.5, -0.3], [0.1, 0.1, 0.3, 0.0])
    outcome = _shape([0.0, 0.5, 0.0, -0.3], [0.1, 0.2, 0.4, 0.0])
    out = compare_shapes(mimic, outcome, confidence=0.95)
    z_crit = sp_stats.norm.ppf(0.975)
    se = np.sqrt(np.array([0.02, 0.05, 0.25, 0.0]))
    np.testing.assert_allclose(out["difference"], [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(out["z"], [0.0, 0.5 / se[1], 0.5 / se[2], 0.0])
    np.testing.assert_allclose(out["difference_upper"] - out["difference"], z_crit * se)
    np.testing.assert_allclose(out["mimic_lower"], mimic["score"] - z_crit * mimic["std_error"])
    np.testing.assert_allclose(out["p_value"], 2 * sp_stats.norm.sf(np.abs(out["z"])))
    # 0.5 / sqrt(0.05) = 2.24 > 1.96; 0.5 / 0.5 = 1 < 1.96
    assert out["significant"].tolist() == [False, True, False, False]
    # the significance agrees with the interval of the difference excluding zero
    excludes = (out["difference_lower"] > 0) | (out["difference_upper"] < 0)
    assert (excludes == out["significant"]).all()


def test_compare_shapes_confidence_and_alignment():
    mimic = _shape([0.0, 0.45], [0.1, 0.1])
    outcome = pd.concat([_shape([0.0, 0.0], [0.1, 0.1]), _shape([1.0], [0.1], term="other")])
    with pytest.warns(UserWarning, match=r"leaves out 0 row\(s\) of mimic and 1 of outcome"):
        loose = compare_shapes(mimic, outcome, confidence=0.9)
    with pytest.warns(UserWarning, match="'other'"):
        strict = compare_shapes(mimic, outcome, confidence=0.999)
    assert len(loose) == 2  # the term only in one table is dropped, and counted
    assert loose.attrs["unmatched"] == {"mimic": 0, "outcome": 1}
    # z = 0.45 / sqrt(0.02) = 3.18: significant at 90%, not at 99.9% (3.29)
    assert loose["significant"].tolist() == [False, True]
    assert strict["significant"].tolist() == [False, False]


def test_compare_shapes_counts_rows_whose_keys_are_spelled_apart():
    mimic = _shape([0.0, 0.5, 1.0], [0.1, 0.1, 0.1]).assign(value=["a", "b", "c"])
    outcome = mimic.assign(value=["a", "b ", "C"])
    with pytest.warns(UserWarning, match=r"2 row\(s\) of mimic and 2 of outcome.*\('x', 'b'\)"):
        out = compare_shapes(mimic, outcome)
    assert out["value"].tolist() == ["a"]
    assert out.attrs["unmatched"] == {"mimic": 2, "outcome": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tables that match: no warning
        assert compare_shapes(mimic, mimic).attrs["unmatched"] == {"mimic": 0, "outcome": 0}


def test_compare_shapes_bad_input():
    good = _shape([0.0], [0.1])
    with pytest.raises(ValueError, match="outcome lacks the columns"):
        compare_shapes(good, good.drop(columns="std_error"))
    with pytest.raises(TypeError, match="mimic must be a pandas DataFrame"):
        compare_shapes(good.to_numpy(), good)
    with pytest.raises(ValueError, match="confidence must be in"):
        compare_shapes(good, good, confidence=0)


@pytest.mark.parametrize(
    "column, table",
    [("score", "mimic"), ("std_error", "outcome"), ("dof", "mimic"), ("weight", "mimic")],
)
def test_compare_shapes_names_a_column_that_holds_no_numbers(column, table):
    good = _shape([0.0, 1.0], [0.1, 0.1]).assign(dof=4.0, weight=50.0)
    tables = {"mimic": good, "outcome": good}
    tables[table] = good.assign(**{column: ["n/a", "1"]})
    with pytest.raises(TypeError, match=f"^{table}'s {column} must be numbers"):
        compare_shapes(tables["mimic"], tables["outcome"], min_weight=10)


def test_compare_shapes_refuses_negative_degrees_of_freedom():
    good = _shape([0.0, 1.0], [0.1, 0.1]).assign(dof=4.0)
    with pytest.raises(ValueError, match="^outcome's dof must be non-negative.*-3"):
        compare_shapes(good, good.assign(dof=[4.0, -3.0]))


def test_compare_shapes_tests_each_value_as_its_band_reads_it():
    # degrees of freedom of 0 say nothing: the band is normal, and so is the test, so that a
    # value is significant exactly when its band excludes zero
    mimic = _shape([0.0, 0.3, 0.3, 1.0], [0.1, 0.1, 0.1, 0.1]).assign(dof=[4.0, 0.0, 4.0, 4.0])
    outcome = _shape([0.0, 0.0, 0.0, 0.0], [0.05, 0.05, 0.05, 0.05]).assign(dof=4.0)
    table = compare_shapes(mimic, outcome)
    z = 0.3 / np.sqrt(0.0125)  # 2.68
    assert table.loc[1, "p_value"] == pytest.approx(2 * sp_stats.norm.sf(z), rel=1e-12)
    welch = 0.0125**2 / (1e-4 / 4 + 0.05**4 / 4)
    assert table.loc[2, "p_value"] == pytest.approx(2 * sp_stats.t.sf(z, welch), rel=1e-12)
    excludes = (table["difference_lower"] > 0) | (table["difference_upper"] < 0)
    assert (excludes == table["significant"]).all()
    assert table["significant"].tolist() == [False, True, True, True]
    # a standard error or a score that is no finite number leaves its value untested, out of
    # the Benjamini-Hochberg family
    broken = mimic.assign(score=[0.0, 0.3, np.nan, 1.0], std_error=[np.inf, 0.1, 0.1, 0.1])
    table = compare_shapes(broken, outcome)
    assert table["testable"].tolist() == [False, True, False, True]
    assert not table.loc[[0, 2], ["significant", "significant_bh"]].to_numpy().any()
    tested = table.loc[[1, 3]]
    np.testing.assert_allclose(tested["p_value_bh"], _step_up(tested["p_value"].to_numpy()))


def test_normal_quantile():
    assert normal_quantile(0.95) == pytest.approx(sp_stats.norm.ppf(0.975))
    assert normal_quantile(0.5) == pytest.approx(sp_stats.norm.ppf(0.75))


def test_term_stability_flags_unstable_terms():
    rng = np.random.default_rng(0)
    n, refits = 200, 4
    steady = rng.normal(size=n)
    contributions = np.stack(
        [
            np.column_stack(
                [
                    2.0 * steady + 0.01 * rng.normal(size=n),  # big and stable
                    rng.normal(size=n) * 0.5,  # pure noise: shape changes every refit
                ]
            )
            for _ in range(refits)
        ]
    )
    table = term_stability(contributions, ["steady", "noisy"])
    assert list(table.index) == ["steady", "noisy"]
    assert not table.loc["steady", "unstable"]
    assert table.loc["noisy", "unstable"]
    assert table.loc["noisy", "shape_noise"] > 1.0
    np.testing.assert_allclose(
        table.loc["steady", "importance_mean"], np.abs(contributions[:, :, 0]).mean()
    )
    assert table.loc["steady", "rank_min"] == table.loc["steady", "rank_max"] == 1


def test_term_stability_rank_swap_alone_is_no_mark():
    # two terms of about equal importance swap ranks between refits; each keeps its shape
    # (importance cv 0.074, shape noise 0.074): shown in the ranks, not marked
    rng = np.random.default_rng(1)
    shapes = rng.normal(size=(50, 2))
    shapes -= shapes.mean(axis=0)  # centred, as a term's contributions are
    first = shapes * [1.0, 0.9]
    second = shapes * [0.9, 1.0]
    table = term_stability(np.stack([first, second]), ["a", "b"])
    assert (table["rank_min"] == 1).all() and (table["rank_max"] == 2).all()
    assert not table["unstable"].any()
    # the two bars, each by its own threshold
    cv = np.std([1.0, 0.9], ddof=1) / 0.95
    np.testing.assert_allclose(table["importance_cv"], cv, rtol=1e-12)
    noise = table["shape_noise"].to_numpy()
    np.testing.assert_allclose(noise, np.sqrt(0.1**2 / 2) / 0.95, rtol=1e-12)
    assert term_stability(np.stack([first, second]), threshold=cv * 0.99)["unstable"].all()
    marked = term_stability(np.stack([first, second]), shape_threshold=noise[0] * 0.99)
    assert marked["unstable"].all()


def test_term_stability_marks_a_term_with_non_finite_contributions():
    rng = np.random.default_rng(2)
    contributions = np.stack([rng.normal(size=(40, 2)) * [2.0, 1.0] for _ in range(3)])
    contributions[:, :, 0] = contributions[0, :, 0]  # the same shape in every refit
    contributions[:, :, 1] = contributions[0, :, 1]
    contributions[1, 5, 1] = np.nan
    table = term_stability(contributions, ["steady", "broken"])
    assert not table.loc["steady", "unstable"]
    assert table.loc["broken", "unstable"]
    assert np.isnan(table.loc["broken", ["importance_cv", "shape_noise"]].astype(float)).all()


def test_term_stability_bad_input():
    with pytest.raises(ValueError, match="at least 2 refits"):
        term_stability(np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match="n_refits, n_samples, n_terms"):
        term_stability(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="term_names has 1 names for 2 terms"):
        term_stability(np.zeros((2, 5, 2)), ["a"])
    for name in ("threshold", "shape_threshold"):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            term_stability(np.zeros((2, 5, 2)), **{name: 0})


def test_term_stability_names_contributions_it_cannot_read():
    with pytest.raises(TypeError, match="^contributions must be numbers"):
        term_stability([[["0.1", "n/a"]], [["0.2", "0.3"]]])
    with pytest.raises(ValueError, match="^contributions must have shape.*at least one sample"):
        term_stability(np.zeros((2, 0, 3)))


def test_binned_rate_wilson_interval():
    score = np.repeat([1.0, 2.0], 10)
    y = np.r_[np.ones(5), np.zeros(5), np.ones(10)]
    table = binned_rate(score, y)
    assert table["count"].tolist() == [10, 10]
    np.testing.assert_allclose(table["rate"], [0.5, 1.0])
    # Wilson 95% interval for 5/10: (0.2366, 0.7634); for 10/10: (0.7225, 1)
    np.testing.assert_allclose(table.loc[0, ["low", "high"]], [0.2366, 0.7634], atol=1e-4)
    np.testing.assert_allclose(table.loc[1, ["low", "high"]], [0.7225, 1.0], atol=1e-4)


def test_binned_rate_quantile_bins_for_many_scores():
    rng = np.random.default_rng(0)
    score = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < score).astype(float)
    table = binned_rate(score, y, n_bins=5)
    assert len(table) == 5 and table["count"].sum() == 1000
    assert np.all(np.diff(table["score"]) > 0)
    np.testing.assert_allclose(table["rate"], table["score"], atol=0.08)
    with pytest.raises(ValueError, match="y must be coded 0/1"):
        binned_rate(score, y + 1)


def test_binned_rate_keeps_a_tied_lowest_score_apart_from_the_scores_above_it():
    # 96% of rows at score 0 (a zero-inflated risk score): every quantile edge is 0
    rng = np.random.default_rng(0)
    score = np.concatenate([np.zeros(960), np.linspace(0.5, 0.9, 40)])
    y = np.concatenate([rng.uniform(size=960) < 0.04, rng.uniform(size=40) < 0.95]).astype(int)
    table = binned_rate(score, y, n_bins=20)
    assert table["count"].tolist() == [960, 40]
    assert table["score"].tolist() == pytest.approx([0.0, 0.7])
    assert table["rate"].tolist() == pytest.approx([y[:960].mean(), y[960:].mean()])
    assert binned_rate(score, y, n_bins=1)["count"].tolist() == [1000]  # no edge at all


def _step_up(p):
    """Benjamini-Hochberg by hand: p_(i) * m / i, made monotone from the top, capped at 1."""
    m = len(p)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    expected = np.empty(m)
    expected[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return expected


def test_compare_shapes_leaves_rows_without_a_standard_error_untested():
    # bags that cannot give a standard error (one bag, or bags fitted on all rows) give NaN:
    # such a row is no difference of infinite significance
    a = pd.DataFrame(
        {"term": "x", "value": [0, 1, 2], "score": [0.1, 0.0, 0.5], "std_error": [np.nan, 0.1, 0.1]}
    )
    b = a.assign(score=0.0)
    table = compare_shapes(a, b, within="term")
    assert np.isnan(table.loc[0, ["z", "p_value", "p_value_bh"]].to_numpy(float)).all()
    assert not table.loc[0, ["significant", "significant_bh"]].any()
    assert table.loc[2, "significant_bh"]  # the others are tested as before


def test_compare_shapes_benjamini_hochberg_adjustment():
    """p_value_bh is the BH step-up adjustment: p_(i) * m / i, made monotone from the top."""
    rng = np.random.default_rng(3)
    m = 12
    a = pd.DataFrame(
        {"term": "x", "value": np.arange(m), "score": rng.normal(size=m), "std_error": 0.3}
    )
    b = a.assign(score=rng.normal(size=m))
    table = compare_shapes(a, b, confidence=0.9)
    expected = _step_up(table["p_value"].to_numpy())
    np.testing.assert_allclose(table["p_value_bh"], expected, rtol=1e-12)
    assert (table["p_value_bh"] >= table["p_value"]).all()
    np.testing.assert_array_equal(table["significant_bh"], expected < 0.1)


def test_compare_shapes_benjamini_hochberg_families():
    """With family=, each group is its own BH family; untestable rows stay out of all."""
    rng = np.random.default_rng(4)
    m = 15
    kind = np.array(["main"] * 5 + ["interaction"] * 10)
    a = pd.DataFrame(
        {
            "term": "x",
            "value": np.arange(m),
            "score": rng.normal(size=m),
            "std_error": 0.3,
            "kind": kind,
            "weight": np.where(np.arange(m) == 7, 3, 50),
        }
    )
    b = a[["term", "value", "score", "std_error"]].assign(score=rng.normal(size=m))
    table = compare_shapes(a, b, confidence=0.9, min_weight=10, family="kind")
    p = table["p_value"].to_numpy()
    testable = table["testable"].to_numpy()
    assert testable.sum() == m - 1
    for group in ("main", "interaction"):
        rows = (kind == group) & testable
        np.testing.assert_allclose(table["p_value_bh"][rows], _step_up(p[rows]), rtol=1e-12)
    assert np.isnan(table["p_value_bh"][7])
    pooled = compare_shapes(a, b, confidence=0.9, min_weight=10)
    np.testing.assert_allclose(pooled["p_value_bh"][testable], _step_up(p[testable]))
    np.testing.assert_array_equal(
        table["significant_bh"], testable & (table["p_value_bh"].to_numpy() < 0.1)
    )
    with pytest.raises(ValueError, match="lacks the columns.*'group'"):
        compare_shapes(a, b, family="group")
    with pytest.raises(ValueError, match="family must name a column that groups"):
        compare_shapes(a, b, family="score")
    # a family named among the key columns: each term adjusted on its own
    two_terms = a.assign(term=np.where(np.arange(m) < 8, "x", "z"))
    other = b.assign(term=two_terms["term"])
    by_term = compare_shapes(two_terms, other, confidence=0.9, family="term")
    for term in ("x", "z"):
        rows = (by_term["term"] == term).to_numpy()
        np.testing.assert_allclose(
            by_term["p_value_bh"][rows], _step_up(by_term["p_value"].to_numpy()[rows])
        )


def _two_stage_by_hand(p, family, alpha):
    """Benjamini and Bogomolov (2014) from the paper's steps: the decisions, one per value."""
    names = sorted(set(family))
    simes = {f: _step_up(p[family == f]).min() for f in names}
    family_p = np.array([simes[f] for f in names])
    order = np.argsort(family_p)
    # BH over the families: the largest k with p_(k) <= k alpha / m; the first k are selected
    passing = [
        k + 1 for k in range(len(names)) if family_p[order[k]] <= (k + 1) * alpha / len(names)
    ]
    chosen = {names[i] for i in order[: max(passing, default=0)]}
    level = alpha * len(chosen) / len(names)
    flags = np.zeros(p.shape, dtype=bool)
    for f in chosen:
        rows = family == f
        flags[rows] = _step_up(p[rows]) <= level
    return flags


def test_compare_shapes_two_stage_adjustment_within_terms():
    """within= selects terms by BH on their Simes p-values, then runs BH inside each selected
    term at alpha * R / m; the decisions equal the procedure written out from the paper."""
    rng = np.random.default_rng(5)
    sizes = {"boolean": 2, "age": 300, "priors": 20, "sex": 3}
    term = np.concatenate([[name] * size for name, size in sizes.items()])
    m = term.size
    diff = np.zeros(m)
    diff[0] = 1.0  # one value of the boolean term differs (z about 3.4: p about 8e-4)
    diff[2 + 10] = 1.6  # one of age's many values
    a = pd.DataFrame(
        {"term": term, "value": np.arange(m), "score": diff, "std_error": 0.21, "kind": "main"}
    )
    b = a.assign(score=0.0)
    b["score"] = rng.normal(scale=0.3, size=m) * (diff == 0)
    staged = compare_shapes(a, b, confidence=0.95, family="kind", within="term")
    pooled = compare_shapes(a, b, confidence=0.95, family="kind")
    p = staged["p_value"].to_numpy()
    expected = _two_stage_by_hand(p, term, 0.05)
    np.testing.assert_array_equal(staged["significant_bh"].to_numpy(), expected)
    # the boolean's value competes with 4 terms, not with 325 values
    assert staged["significant_bh"][0] and not pooled["significant_bh"][0]
    assert (staged["p_value_bh"] >= staged["p_value"]).all()
    with pytest.raises(ValueError, match="within must name a column that groups"):
        compare_shapes(a, b, within="std_error")


def test_two_stage_adjustment_holds_its_level_with_nothing_to_find():
    """Every value null: the share of draws with any flag stays near alpha (BH over the
    families' Simes p-values, which are valid p-values for independent values)."""
    from sklearn_distill.stats import _two_stage_bh

    rng = np.random.default_rng(6)
    family = np.repeat(np.arange(8), [2, 2, 5, 40, 40, 100, 3, 256])
    any_flag = [
        bool((_two_stage_bh(rng.uniform(size=family.size), family, 0.1) < 0.1).any())
        for _ in range(4000)
    ]
    # nominal 0.1; Monte-Carlo standard error about 0.005
    assert np.mean(any_flag) < 0.115


def _main_effect(term, values, weights, min_weight=10):
    """compare()'s columns for one main effect: ``values`` (NaN for the missing-value bin)
    and the rows each holds; a value is testable when it holds ``min_weight`` rows."""
    weights = np.asarray(weights, dtype=float)
    return pd.DataFrame(
        {
            "term": term,
            "kind": "main",
            "value": np.asarray(values, dtype=object),
            "label": ["missing" if pd.isna(v) else str(v) for v in values],
            "weight": weights,
            "testable": weights >= min_weight,
        }
    )


def _thin(rng, n_rows, start=1):
    """About ``n_rows`` rows spread over values of 1 to 6 rows each (none testable)."""
    counts = []
    while sum(counts) < n_rows:
        counts.append(int(rng.integers(1, 7)))
    return list(range(start, start + len(counts))), counts


def test_untested_terms_measures_the_rows_outside_the_missing_bin_and_the_mode():
    """A feature missing (or zero) on 70% of the rows, its other values in thin bins, is listed
    although its one large bin holds most rows and is testable; its tested share is the
    testable share of the rows outside that bin and outside the most common observed value."""
    rng = np.random.default_rng(0)
    values, counts = _thin(rng, 290)
    # 70% missing; one observed value of 12 rows (testable, the most common), the rest thin
    sparse = _main_effect("m", [np.nan, 0, *values], [700.0, 12.0, *counts])
    # 70% zero, no missing value; the other values thin but one (of 12 rows)
    zeros = _main_effect("z", [np.nan, 0, 500, *values], [0.0, 700.0, 12.0, *counts])
    table = pd.concat([sparse, zeros], ignore_index=True)
    for term in ("m", "z"):
        rows = table[table["term"] == term]
        # the rule this replaces, the testable share of all the rows, passed both
        assert rows.loc[rows["testable"], "weight"].sum() / rows["weight"].sum() > 0.5
    untested = untested_terms(table).set_index("term")
    assert set(untested.index) == {"m", "z"}
    for term, group in table.groupby("term"):
        weight = group["weight"].to_numpy()
        observed = group["value"].notna().to_numpy() & (weight > 0)
        informative = observed & (weight < weight[observed].max())
        expected = (
            weight[informative & group["testable"].to_numpy()].sum() / weight[informative].sum()
        )
        assert untested.loc[term, "tested_share"] == pytest.approx(expected)
        assert untested.loc[term, "informative_rows"] == weight[informative].sum()
        assert untested.loc[term, "n_testable"] == group["testable"].sum()
        assert untested.loc[term, "text"].startswith(
            f"{term}: {group['testable'].sum()} of {len(group)} values testable"
        )
    # the z feature's testable value of 12 rows counts: it is not the mode
    assert untested.loc["z", "tested_share"] > untested.loc["m", "tested_share"] == 0.0


def test_untested_terms_does_not_depend_on_the_order_of_bins_tied_for_the_most_rows():
    # two bins of 40 rows each, one testable and one not (a zero standard error); the rest
    # thin: which of the two counted as the mode had depended on the rows' order
    table = _main_effect("t", [np.nan, 1, 2, 3, 4, 5], [0.0, 40.0, 40.0, 4.0, 3.0, 5.0])
    table.loc[2, "testable"] = False  # the second 40-row bin: no standard error
    listed = [
        untested_terms(table.iloc[order].reset_index(drop=True))
        for order in (range(6), [0, 2, 1, 3, 4, 5], [5, 4, 3, 2, 1, 0])
    ]
    for other in listed[1:]:
        pd.testing.assert_frame_equal(other, listed[0])
    # the testable tied bin is the one left out: the rows of the informative values hold no
    # testable value, so the term is listed
    assert listed[0]["term"].tolist() == ["t"] and listed[0]["tested_share"].iloc[0] == 0.0


def test_untested_terms_keeps_features_that_are_tested():
    """Features whose informative values are testable are not listed: a binary feature (with
    or without missing values), a categorical with a few large levels, a continuous feature
    on a large audit (a few thin bins in its tails), an indicator stored as 1 or missing."""
    rng = np.random.default_rng(1)
    tails = rng.integers(1, 8, size=6).astype(float)
    table = pd.concat(
        [
            _main_effect("binary", [np.nan, False, True], [0.0, 600.0, 400.0]),
            _main_effect("binary_missing", [np.nan, False, True], [500.0, 300.0, 200.0]),
            _main_effect("levels", [np.nan, "a", "b", "c", "d"], [3.0, 500.0, 300.0, 150.0, 47.0]),
            _main_effect(
                "continuous",
                [np.nan, *range(40)],
                [0.0, *tails[:3], *rng.integers(20, 40, size=34), *tails[3:]],
            ),
            _main_effect("indicator", [np.nan, 1.0], [700.0, 300.0]),
            _main_effect("constant", [np.nan, 1.0], [0.0, 1000.0]),
        ],
        ignore_index=True,
    )
    assert untested_terms(table).empty
    # the same indicator with 5 rows at 1 is not tested: its rows at 1 are too few
    rare = _main_effect("indicator", [np.nan, 1.0], [995.0, 5.0])
    assert untested_terms(rare)["term"].tolist() == ["indicator"]
    # a binary feature whose other level holds 5 rows is not either
    rare = _main_effect("binary", [np.nan, False, True], [0.0, 995.0, 5.0])
    assert untested_terms(rare)["term"].tolist() == ["binary"]
    # without a value column, the missing-value bin is the one labelled "missing"
    sparse = _main_effect("m", [np.nan, 0, *range(1, 60)], [700.0, 12.0, *[3.0] * 59])
    assert untested_terms(sparse.drop(columns="value"))["term"].tolist() == ["m"]


def test_compare_shapes_does_not_flag_a_zero_standard_error():
    # cells both models pin down exactly (purified interaction cells whose main effects take
    # all: 1e-308 on both sides) once gave z = inf and p = 0 for a difference of rounding
    a = pd.DataFrame(
        {
            "term": "x & z",
            "value": [0, 1, 2, 3],
            "score": [1.28e-305, -1.76e-306, 0.4, 0.5],
            "std_error": [0.0, 0.0, 0.0, 0.1],
        }
    )
    b = a.assign(score=[1.279e-305, -1.75e-306, 0.1, 0.0])
    table = compare_shapes(a, b, within="term")
    assert table.loc[:1, "z"].tolist() == [0.0, 0.0] and (table.loc[:1, "p_value"] == 1).all()
    # a real difference without any spread over the bags cannot be tested either
    assert np.isnan(table.loc[2, ["z", "p_value", "p_value_bh"]].to_numpy(float)).all()
    assert not table.loc[:2, ["significant", "significant_bh"]].to_numpy().any()
    assert table["testable"].tolist() == [True, True, False, True]  # counted as untested
    assert table.loc[3, "significant"]


def test_values_without_a_standard_error_are_not_testable():
    # models whose bags give no bands: no test was possible, so the values are not counted
    # as tested (nor flagged), whatever their rows
    mimic = pd.DataFrame({"term": ["x"] * 3, "value": [0, 1, 2], "score": [0.0, 1.0, 2.0],
                          "std_error": [np.nan] * 3, "weight": [100.0] * 3})  # fmt: skip
    table = compare_shapes(mimic, mimic.assign(score=0.0), min_weight=10)
    assert not table["testable"].any()
    assert not table["significant"].any() and not table["significant_bh"].any()
    assert table["p_value"].isna().all()
    # one value with a band is tested
    banded = mimic.assign(std_error=[np.nan, 0.1, np.nan])
    table = compare_shapes(banded, banded.assign(score=0.0), min_weight=10)
    assert table["testable"].tolist() == [False, True, False]


def test_binned_rate_checks_its_arguments():
    score, y = np.arange(20.0), np.arange(20) % 2
    for n_bins, error in ((0, ValueError), (-3, ValueError), (2.5, TypeError), ("4", TypeError)):
        with pytest.raises(error, match="n_bins must be an integer >= 1"):
            binned_rate(score, y, n_bins=n_bins)
    with pytest.raises(ValueError, match=r"predicted must be one probability per row \(20\)"):
        binned_rate(score, y, predicted=np.full(5, 0.5))
    for bad in (np.r_[np.full(19, 0.5), np.nan], np.full(20, 7.0)):
        with pytest.raises(ValueError, match=r"predicted must be probabilities in \[0, 1\]"):
            binned_rate(score, y, predicted=bad)
    table = binned_rate(score, y, n_bins=2, predicted=np.full(20, 0.25))
    assert table["count"].sum() == 20 and np.allclose(table["predicted"], 0.25)


def test_resamples_needed_and_bootstrap_p_value_check_their_arguments():
    from sklearn_distill.stats import resamples_needed

    assert resamples_needed(0.95) == 40
    for confidence in (1.0, 1.5, 0.0, float("nan")):
        with pytest.raises(ValueError, match="confidence must be in \\(0, 1\\)"):
            resamples_needed(confidence)
    with pytest.raises(TypeError, match="confidence must be a float in \\(0, 1\\)"):
        resamples_needed(True)
    with pytest.raises(ValueError, match="null must be a finite number; got nan"):
        bootstrap_p_value([0.1, 0.2], null=float("nan"))
    with pytest.raises(ValueError, match=r"replicates must be one-dimensional .*\(2, 2\)"):
        bootstrap_p_value([[0.1, 0.2], [0.3, 0.4]])


def test_variance_inflation_stretches_the_replicates_about_the_estimate():
    # residuals of a least-squares fit of k columns on n rows vary less than the errors they
    # stand for: the replicates' variance is multiplied by n / (n - k), the estimate kept
    rng = np.random.default_rng(3)
    a = rng.normal(size=300)
    b = 0.1 * a + rng.normal(size=300)
    plain, plain_reps = bootstrap_correlations(
        a, b, n_bootstrap=200, random_state=0, methods=["pearson"], return_replicates=True
    )
    table, reps = bootstrap_correlations(
        a,
        b,
        n_bootstrap=200,
        random_state=0,
        methods=["pearson"],
        return_replicates=True,
        variance_inflation=1.5,
    )
    estimate = plain.loc["pearson", "estimate"]
    assert table.loc["pearson", "estimate"] == estimate
    np.testing.assert_allclose(
        reps["pearson"] - estimate, np.sqrt(1.5) * (plain_reps["pearson"] - estimate)
    )
    assert table.loc["pearson", "std_error"] == pytest.approx(
        np.sqrt(1.5) * plain.loc["pearson", "std_error"]
    )
    assert table.loc["pearson", "p_value"] >= plain.loc["pearson", "p_value"]
    for bad, error in [
        (0.5, ValueError),
        (np.nan, ValueError),
        (True, TypeError),
        ("2", TypeError),
    ]:
        with pytest.raises(error, match="variance_inflation must be"):
            bootstrap_correlations(a, b, n_bootstrap=20, variance_inflation=bad)


def test_binned_rate_interval_of_a_rate_of_0_or_1_holds_the_rate():
    # Wilson's interval of 0 of n is [0, z**2 / (n + z**2)], of n of n [n / (n + z**2), 1]
    for confidence in (0.9, 0.95, 0.99):
        z = normal_quantile(confidence)
        for n_zero, n_one in ((9, 16), (13, 10), (2, 23)):
            score = np.repeat([1.0, 2.0], [n_zero, n_one])
            y = np.r_[np.zeros(n_zero), np.ones(n_one)]
            table = binned_rate(score, y, confidence=confidence, predicted=y)
            assert table.loc[0, "low"] == 0.0 and table.loc[1, "high"] == 1.0
            assert table.loc[0, "high"] == pytest.approx(z**2 / (n_zero + z**2), rel=1e-12)
            assert table.loc[1, "low"] == pytest.approx(n_one / (n_one + z**2), rel=1e-12)
            # the rate, and a prediction equal to it (as a calibration map's misfit reads
            # them), lies inside its own interval
            inside = (table["low"] <= table["predicted"]) & (table["predicted"] <= table["high"])
            assert inside.all() and (table["rate"] == table["predicted"]).all()
            assert (table["low"] >= 0).all() and (table["high"] <= 1).all()


def test_bootstrap_p_value_counts_infinite_replicates_on_their_side():
    # the (1 + #)/(B + 1) form on every replicate that is a number: -inf lies below 0, +inf
    # above; leaving them out would move the p-value (here from 0.8 to 0.5: below 1/4)
    replicates = [-np.inf, 1.0, 2.0, 3.0]
    below, above = (1 + 1) / 5, (1 + 3) / 5
    assert bootstrap_p_value(replicates) == pytest.approx(2 * min(below, above))
    assert bootstrap_p_value([np.inf, np.inf, np.nan, 0.5, -0.1]) == pytest.approx(2 * 2 / 5)
    assert bootstrap_p_value(np.full(9, np.inf)) == pytest.approx(2 / 10)


def test_compare_shapes_reads_one_key_column_by_its_name():
    # on="term" is the column "term", as pandas' merge reads it, not the columns t, e, r, m
    a = pd.DataFrame({"term": ["x", "y", "z"], "score": [0.0, 1.0, 2.0], "std_error": 0.1})
    b = a.assign(score=[0.0, 0.2, 1.9])
    table = compare_shapes(a, b, on="term")
    pd.testing.assert_frame_equal(table, compare_shapes(a, b, on=["term"]))
    np.testing.assert_allclose(table["z"], (a["score"] - b["score"]) / np.sqrt(0.02))


@pytest.mark.parametrize(
    ("method", "error"), [("pearsonr", ValueError), ("Spearman", ValueError), (None, TypeError)]
)
def test_correlation_names_its_method_argument(method, error):
    with pytest.raises(error, match=r"^method must be one of \('pearson', 'spearman'"):
        correlation([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], method=method)


def test_term_stability_refuses_names_given_as_one_string():
    # a string of as many letters as terms named each term by a letter, silently
    contributions = np.random.default_rng(0).normal(size=(3, 50, 3))
    with pytest.raises(TypeError, match=r"^term_names must be a sequence of names; .*'abc'"):
        term_stability(contributions, "abc")


def test_too_few_pairs_are_refused_naming_the_arguments():
    with pytest.raises(ValueError, match=r"^x and y must hold at least 3 pairs; got 2\."):
        correlation([1.0, 2.0], [2.0, 1.0])
    with pytest.raises(ValueError, match=r"^score and y must hold at least 3 pairs; got 0\."):
        binned_rate([], [])


@pytest.mark.parametrize("null", ["0", None, True])
def test_bootstrap_p_value_refuses_a_null_that_is_no_number_as_a_type_error(null):
    with pytest.raises(TypeError, match=r"^null must be a real number; got "):
        bootstrap_p_value([0.1, 0.2], null=null)


def test_a_side_without_spread_leaves_the_difference_the_other_sides_degrees_of_freedom():
    # Welch-Satterthwaite: a side whose standard error is 0 adds nothing to either sum, so the
    # difference has the other side's degrees of freedom, whatever its own say (unknown: NaN,
    # or 0). The term 0 / NaN made them NaN, and the test fell back to the normal: narrower
    # bands, more flags
    mimic = _shape([0.3, 0.3], [0.0, 0.0]).assign(dof=[np.nan, 0.0])
    outcome = _shape([0.0, 0.0], [0.12, 0.12]).assign(dof=3.0)
    table = compare_shapes(mimic, outcome)
    z = 0.3 / 0.12
    expected = 2 * sp_stats.t.sf(z, 3.0)
    assert table["p_value"].tolist() == pytest.approx([expected, expected], rel=1e-12)
    assert expected > 0.05 > 2 * sp_stats.norm.sf(z)  # the normal would have flagged them
    assert not table["significant"].any()
