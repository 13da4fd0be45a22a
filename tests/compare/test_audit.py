"""Tests of CompareAudit on small synthetic audits with a known answer.

The black box's score uses a hidden feature ``h`` the audit data lack and adds a bias for one
group ``g`` that the outcome does not have; a control score uses neither ``h`` nor anything
else the outcome depends on beyond the audit data. EBMs are kept small (few bags, capped
rounds, few bins) and fitted once per module.
"""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from sklearn_distill import DistilledGAM
from sklearn_distill.audit import CompareAudit

HOSTILE = "<script>g</script>"
SMALL = {"outer_bags": 4, "max_rounds": 300, "interactions": 0, "max_bins": 32}


def _small_audit(**kwargs):
    # the synthetic scores are continuous: a logistic calibration suits them (isotonic steps
    # would saturate at the extremes, see test_isotonic_saturation_warns)
    # eight bags: the bands' t quantile has 7 degrees of freedom (with four, 3: too wide to
    # find the planted bias on 800 rows)
    bags = {**SMALL, "outer_bags": 8}
    params = {
        "calibration": "sigmoid",
        "cv": 3,
        "random_state": 0,
        "student": ExplainableBoostingRegressor(**bags, learning_rate=0.1, n_jobs=1),
        "outcome": ExplainableBoostingClassifier(**bags, learning_rate=0.05, n_jobs=1),
        **kwargs,
    }
    return CompareAudit(**params)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    n = 800
    a = rng.normal(size=n)
    group = rng.integers(0, 2, size=n)
    hidden = rng.normal(size=n)
    X = pd.DataFrame({"a": a, HOSTILE: pd.Categorical(np.where(group == 1, "yes", "no"))})
    # missing values are allowed, in numeric and in categorical columns
    X.loc[rng.choice(n, 20, replace=False), "a"] = np.nan
    X.loc[rng.choice(n, 10, replace=False), HOSTILE] = np.nan
    truth = np.nan_to_num(X["a"].to_numpy()) + 1.5 * hidden
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-truth))).astype(int)
    noise = 0.3 * rng.normal(size=n)
    with_hidden = truth + 1.5 * group + noise
    without_hidden = np.nan_to_num(X["a"].to_numpy()) + 1.5 * group + noise
    return X, y, with_hidden, without_hidden


@pytest.fixture(scope="module")
def audits(data):
    X, y, with_hidden, without_hidden = data
    planted = _small_audit().fit(X, y, teacher_scores=with_hidden)
    control = _small_audit().fit(X, y, teacher_scores=without_hidden)
    return planted, control


def test_fitted_attributes(audits, data):
    X, y, _, _ = data
    planted, _ = audits
    assert isinstance(planted.mimic_, DistilledGAM)
    assert isinstance(planted.outcome_, ExplainableBoostingClassifier)
    assert planted.mimic_residuals_.shape == planted.outcome_residuals_.shape == (len(X),)
    np.testing.assert_array_equal(planted.classes_, [0, 1])
    np.testing.assert_array_equal(planted.feature_names_in_, ["a", HOSTILE])
    assert planted.n_features_in_ == 2
    # outcome residuals are y - P(y = 1), so they lie in (-1, 1) with y's sign
    assert np.all(np.abs(planted.outcome_residuals_) < 1)
    assert np.all((planted.outcome_residuals_ > 0) == (y == 1))
    # the decile-like calibration table covers every row
    assert planted.calibration_table_["count"].sum() == len(X)


def test_missing_feature_test_known_answer(audits):
    planted, control = audits
    found = planted.missing_feature_test(n_bootstrap=300)
    assert list(found.index) == ["pearson", "spearman", "kendall"]
    assert list(found.columns[:4]) == ["estimate", "low", "high", "p_value"]
    assert (found["low"] > 0).all() and found.loc["pearson", "p_value"] < 0.01
    # rank correlations are not zero when nothing is missing: shown without a p-value
    assert found.loc[["spearman", "kendall"], "p_value"].isna().all()
    clean = control.missing_feature_test(n_bootstrap=300)
    # without the hidden feature the correlations are near zero (their standard error is about
    # 1 / sqrt(800) = 0.035), far below the planted case
    assert (clean["estimate"].abs() < 0.1).all()
    assert found.loc["pearson", "estimate"] > clean.loc["pearson", "estimate"] + 0.1


def test_missing_feature_test_is_reproducible(audits):
    planted, _ = audits
    first = planted.missing_feature_test(n_bootstrap=100)
    second = planted.missing_feature_test(n_bootstrap=100)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(planted.missing_feature_test_, second)


def test_compare_finds_the_planted_bias(audits):
    planted, _ = audits
    table = planted.compare(interactions=False)
    for column in ("term", "value", "mimic", "mimic_lower", "outcome_upper", "difference"):
        assert column in table
    assert set(table["term"]) == {"a", HOSTILE}
    # both models carry the one possible pair, so it is compared too
    assert planted.interaction_pairs_ == [("a", HOSTILE)]
    assert set(planted.compare()["term"]) == {"a", HOSTILE, f"a & {HOSTILE}"}
    group = table[table["term"] == HOSTILE].dropna(subset=["value"]).set_index("value")
    # the black box adds 1.5 log-odds to "yes" that the outcome does not: both group values
    # differ significantly, in opposite directions (shapes are centred); the missing-value bin
    # holds only 10 rows
    assert group["significant"].all()
    assert group.loc["yes", "difference"] > 0.3 > -0.3 > group.loc["no", "difference"]
    # the table is the two models' own shape functions, aligned bin by bin
    mimic_shapes = planted.mimic_.shape_functions(planted.confidence, interactions=False)
    np.testing.assert_allclose(table["mimic"], mimic_shapes["score"])
    np.testing.assert_allclose(table["weight"], mimic_shapes["weight"])
    # significance is the difference band excluding zero, for the values held by enough rows
    excludes = (table["difference_lower"] > 0) | (table["difference_upper"] < 0)
    assert (table["testable"] == (table["weight"] >= planted.min_weight)).all()
    assert (excludes & table["testable"] == table["significant"]).all()


def _two_stage_reference(p_values, terms, alpha):
    """Benjamini and Bogomolov's adjusted p-values (compare_shapes' docstring) from scipy's
    Benjamini-Hochberg: Simes p-value per term, BH over the terms, BH within each term
    scaled by m / R."""
    from scipy.stats import false_discovery_control

    names = sorted(set(terms))
    within = np.empty(p_values.shape)
    for name in names:
        rows = terms == name
        within[rows] = false_discovery_control(p_values[rows])
    simes = np.array([within[terms == name].min() for name in names])
    across = dict(zip(names, false_discovery_control(simes)))
    selected = {name for name in names if across[name] < alpha}
    scaled = np.minimum(1.0, within * len(names) / max(len(selected), 1))
    family = np.array([across[name] for name in terms])
    chosen = np.array([name in selected for name in terms])
    return np.where(chosen, scaled, np.maximum(scaled, family))


def test_a_term_of_one_value_is_left_out_of_the_main_effects_family(data):
    # a feature constant on the audit rows is centred to 0 by both models: difference 0 and
    # p = 1 by construction. The main effects' family is adjusted over the other terms'
    # testable values only (counted in, it raised every other term's adjusted p-value by
    # a factor of (terms + 1) / terms)
    X, y, with_hidden, _ = data
    audit = _small_audit(interactions=0).fit(X.assign(constant=1.0), y, teacher_scores=with_hidden)
    table = audit.compare()
    constant = table[table["term"] == "constant"]
    assert len(constant) == 1
    assert constant[["difference", "z"]].to_numpy().tolist() == [[0.0, 0.0]]
    assert constant["p_value"].item() == constant["p_value_bh"].item() == 1.0
    assert not constant["significant_bh"].item()
    family = (table["kind"] == "main") & table["testable"] & (table["term"] != "constant")
    expected = _two_stage_reference(
        table.loc[family, "p_value"].to_numpy(),
        table.loc[family, "term"].to_numpy(),
        1 - audit.confidence,
    )
    assert expected.min() < 0.5  # the planted bias: the adjustment is no cap at 1
    np.testing.assert_allclose(table.loc[family, "p_value_bh"], expected, rtol=1e-12)
    np.testing.assert_array_equal(
        table.loc[family, "significant_bh"], expected < 1 - audit.confidence
    )


def test_compare_needs_ebm_outcome(data):
    X, y, with_hidden, _ = data
    audit = CompareAudit(
        student=LinearRegression(), outcome=LogisticRegression(), cv=2, calibration=None
    ).fit(X[["a"]].fillna(0), y, teacher_scores=with_hidden)
    with pytest.raises(TypeError, match="Explainable Boosting classifier"):
        audit.compare()


@pytest.fixture(scope="module")
def stability_table(audits, data):
    X, y, with_hidden, _ = data
    planted, _ = audits
    return planted.stability(X, y, teacher_scores=with_hidden, n_refits=2)


def test_stability_table(audits, data, stability_table):
    X, y, with_hidden, _ = data
    planted, _ = audits
    table = stability_table
    assert set(table["model"]) == {"mimic", "outcome"}
    assert set(table["term"]) == {"a", HOSTILE, f"a & {HOSTILE}"}
    assert {"importance_mean", "importance_cv", "shape_noise", "unstable"} <= set(table.columns)
    importance = table.set_index(["model", "term"])["importance_mean"]
    # the black box leans on the group; the outcome hardly does
    assert importance["mimic", HOSTILE] > 3 * importance["outcome", HOSTILE]
    with pytest.raises(ValueError, match="n_refits must be an integer >= 2"):
        planted.stability(X, y, teacher_scores=with_hidden, n_refits=1)
    with pytest.raises(ValueError, match="pass the data given to fit"):
        planted.stability(X.iloc[:10], y[:10], n_refits=2)
    with pytest.raises(ValueError, match="teacher_scores .* are required"):
        planted.stability(X, y, n_refits=2)


def test_report_is_escaped_and_complete(audits, stability_table, tmp_path):
    planted, _ = audits
    path = planted.report(
        tmp_path / "audit.html", n_bootstrap=50, description={"data": "<file>.csv"}
    )
    page = open(path, encoding="utf-8").read()
    assert "<script>" not in page
    assert "&lt;script&gt;g&lt;/script&gt;" in page
    assert "&lt;file&gt;.csv" in page
    assert "Missing-feature test" in page and "Comparison table" in page
    assert "Stability across refits" in page  # the stability_table fixture computed it
    assert page.count("data:image/png;base64,") >= 3  # comparison, residuals, calibration
    assert "http://" not in page and "https://" not in page


def test_pictures(audits):
    planted, _ = audits
    figure = planted.plot_comparison(terms=["a", HOSTILE])
    assert len([ax for ax in figure.axes if ax.get_visible()]) == 2
    assert planted.plot_calibration("score").axes[0].get_xlabel() == "score"
    assert planted.plot_residuals().axes[0].get_xlabel().startswith("mimic residual")


def test_pickle_and_clone(audits):
    planted, _ = audits
    restored = pickle.loads(pickle.dumps(planted))
    pd.testing.assert_frame_equal(restored.compare(), planted.compare())
    np.testing.assert_array_equal(restored.mimic_residuals_, planted.mimic_residuals_)
    fresh = clone(planted)
    assert not hasattr(fresh, "mimic_")
    assert fresh.get_params()["cv"] == 3


def test_teacher_is_shared_by_clone_and_never_refitted(data):
    X, y, _, _ = data
    Xa = X[["a"]].fillna(0.0)
    teacher = LogisticRegression().fit(Xa, y)
    coef = teacher.coef_.copy()
    audit = CompareAudit(
        teacher, student=LinearRegression(), outcome=LogisticRegression(), cv=2, random_state=0
    )
    assert clone(audit).teacher is teacher
    audit.fit(Xa, y)
    np.testing.assert_array_equal(teacher.coef_, coef)
    # the teacher's probabilities are calibrated, so the mimic's target is a log-odds
    assert audit.mimic_.response_ == "predict_proba"
    # the positive class's probability is the score of the calibration picture
    table = audit.calibration_table_
    assert table is not None and table["count"].sum() == len(Xa)
    low, high = table["score"].min(), table["score"].max()
    probability = teacher.predict_proba(Xa)[:, 1]
    assert probability.min() <= low and high <= probability.max()
    assert audit.plot_calibration() is not None
    with pytest.raises(NotFittedError, match="not fitted"):
        CompareAudit(LogisticRegression()).fit(Xa, y)


def _nearest_neighbour_audit(**kwargs):
    params = {
        "student": KNeighborsRegressor(n_neighbors=1),
        "outcome": KNeighborsClassifier(n_neighbors=1),
        "calibration": None,
        "cv": 4,
        "random_state": 1,
        **kwargs,
    }
    return CompareAudit(**params)


def test_residuals_are_out_of_fold():
    # A 1-nearest-neighbour model reproduces every training row exactly, so in-sample residuals
    # are all zero; out-of-fold ones are not.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] + rng.normal(size=120) > 0).astype(int)
    score = X[:, 0] + rng.normal(size=120)
    audit = _nearest_neighbour_audit().fit(X, y, teacher_scores=score)
    np.testing.assert_allclose(audit.mimic_.predict(X), score)  # in sample: exact
    mimic = audit.crossfit_residuals_["mimic"]
    outcome = audit.crossfit_residuals_["outcome"]
    assert mimic.shape == outcome.shape == (3, 2, 120)
    assert np.all(np.abs(mimic) > 1e-9)  # no model judged a row it saw
    # calibration=None mimics the score itself: residual = score - prediction of a neighbour
    assert np.all(np.isin(np.round(score - mimic, 10), np.round(score, 10)))
    assert set(np.unique(outcome)) <= {-1.0, 0.0, 1.0}
    assert np.any(outcome != 0)
    # the attributes are the means over a row's cross-fitted models
    np.testing.assert_allclose(audit.mimic_residuals_, mimic.mean(axis=(0, 1)))
    np.testing.assert_allclose(audit.outcome_residuals_, outcome.mean(axis=(0, 1)))
    # the same folds and residuals with two joblib workers
    parallel = _nearest_neighbour_audit(n_jobs=2).fit(X, y, teacher_scores=score)
    np.testing.assert_array_equal(parallel.mimic_residuals_, audit.mimic_residuals_)
    np.testing.assert_array_equal(parallel.outcome_residuals_, audit.outcome_residuals_)


# the rows each model of the next test was fitted on, in the order of the fits
_MIMIC_FITS: list = []
_OUTCOME_FITS: list = []


class _RowsMimic(RegressorMixin, BaseEstimator):
    """Predicts a key to the rows it was fitted on (column 0 of X is the row number)."""

    def fit(self, X, y):
        _MIMIC_FITS.append(frozenset(np.asarray(X)[:, 0].astype(int)))
        self.key_ = float(len(_MIMIC_FITS) - 1)
        return self

    def predict(self, X):
        return np.full(len(X), self.key_)


class _RowsOutcome(ClassifierMixin, BaseEstimator):
    """Predicts P(y = 1) = key / 1000, a key to the rows it was fitted on."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        _OUTCOME_FITS.append(frozenset(np.asarray(X)[:, 0].astype(int)))
        self.key_ = len(_OUTCOME_FITS) - 1
        return self

    def predict_proba(self, X):
        p = np.full(len(X), self.key_ / 1000)
        return np.column_stack([1 - p, p])


def _rows_audit(n, seed):
    """An audit, two splits, of models that report the rows they were fitted on (column 0 of
    X is the row number), and its data."""
    _MIMIC_FITS.clear()
    _OUTCOME_FITS.clear()
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.arange(n), rng.normal(size=n)])
    y = (rng.uniform(size=n) < 0.4).astype(int)
    score = rng.normal(size=n)
    audit = CompareAudit(
        student=_RowsMimic(),
        outcome=_RowsOutcome(),
        calibration=None,
        interactions=0,
        n_crossfits=2,
        random_state=0,
    ).fit(X, y, teacher_scores=score)
    return audit, X, y, score


def test_cross_pairs_never_share_rows():
    # Models that report the rows they were fitted on: each row's two pairs per repeat must
    # come from a mimic and an outcome model fitted on disjoint thirds, neither holding the row.
    n = 90
    audit, _, y, score = _rows_audit(n, 3)
    mimic = audit.crossfit_residuals_["mimic"]
    outcome = audit.crossfit_residuals_["outcome"]
    mimic_keys = np.round(score - mimic).astype(int)
    outcome_keys = np.round((y - outcome) * 1000).astype(int)
    for r in range(2):
        thirds = set()
        for pair in range(2):
            for i in range(n):
                rows_m = _MIMIC_FITS[mimic_keys[r, pair, i]]
                rows_o = _OUTCOME_FITS[outcome_keys[r, pair, i]]
                assert i not in rows_m and i not in rows_o
                assert not rows_m & rows_o
                thirds |= {rows_m, rows_o}
            # the two pairs of a row swap the roles of the same two thirds
        for i in range(n):
            assert _MIMIC_FITS[mimic_keys[r, 0, i]] == _OUTCOME_FITS[outcome_keys[r, 1, i]]
        assert len(thirds) == 3 and set().union(*thirds) == set(range(n))
        assert sorted(len(t) for t in thirds) == [30, 30, 30]
    # the first fit of each model is the full-data one
    assert _MIMIC_FITS[0] == frozenset(range(n))


def test_adjustment_is_fitted_within_the_rows_one_pair_of_models_judged():
    # The adjustment mixes rows: a row's adjusted residual takes in other rows' residuals.
    # Over all rows at once those included rows judged by models fitted on this row, whose
    # residuals carry this row's own outcome noise (on a null world whose score is the true
    # log-odds, 3,000 rows, the noise part of the correlation averaged -0.006 over 20 seeds).
    # Within a third of a split every row was judged by the same two models, fitted on the
    # other two thirds.
    from sklearn_distill.audit import _adjust, _adjustment_basis

    audit, X, _, score = _rows_audit(300, 5)
    mimic = audit.crossfit_residuals_["mimic"]
    outcome = audit.crossfit_residuals_["outcome"]
    adjusted_mimic, adjusted_outcome = audit._test_residuals
    keys = np.round(score - mimic).astype(int)  # the mimic that judged each row, per pair
    inflation = []

    def thirds_of(r):  # a row's third: the two mimics that judged it
        judges = keys[r, 0] * 1000 + keys[r, 1]
        return [np.flatnonzero(judges == key) for key in np.unique(judges)]

    for r in range(2):
        thirds = thirds_of(r)
        assert sorted(len(rows) for rows in thirds) == [100, 100, 100]
        fitted = sum(
            np.linalg.matrix_rank(_adjustment_basis(X[rows], len(rows))) for rows in thirds
        )
        inflation.append(300 / (300 - fitted))
        for rows in thirds:
            for pair in range(2):  # the models that judged these rows saw none of them
                assert not set(rows) & _MIMIC_FITS[keys[r, pair, rows[0]]]
            # the mimics' prediction is one constant per third (up to rounding): no column
            basis = _adjustment_basis(X[rows], len(rows))
            expected = _adjust(basis, np.stack([mimic[r][:, rows], outcome[r][:, rows]]))
            np.testing.assert_allclose(adjusted_mimic[r][:, rows], expected[0], atol=1e-12)
            np.testing.assert_allclose(adjusted_outcome[r][:, rows], expected[1], atol=1e-12)
            # so the third's adjusted residuals are orthogonal to its own rows' linear trend
            np.testing.assert_allclose(X[rows, 1] @ adjusted_outcome[r][:, rows].T, 0, atol=1e-9)
    # the residuals keep n - k degrees of freedom of the n rows of a split: the test's
    # bootstrap variance is inflated by n / (n - k), or by the rows' leverages (HC2) where
    # that is larger
    hc2 = [
        _hc2_reference(
            [_adjustment_basis(X[rows], len(rows)) for rows in thirds_of(r)],
            thirds_of(r),
            adjusted_mimic[r],
            adjusted_outcome[r],
        )
        for r in range(2)
    ]
    expected = max(np.mean(inflation), np.mean(hc2))
    assert audit._test_variance_inflation == pytest.approx(expected, rel=1e-9)
    assert audit._test_variance_inflation > 1


def test_each_pair_is_adjusted_for_its_own_mimic_alone():
    # Pair 0 holds the residual of mimic a and that of outcome model b, and mimic b was
    # fitted on the same rows as outcome model b: pair 0's adjustment must not take mimic b
    # in. With columns shared by both pairs (a cubic in the mimics' mean prediction), pair
    # 0's adjusted mimic residual held half the difference of the two mimics' predictions.
    from sklearn_distill.audit import _adjust, _adjusted_pairs, _adjustment_basis

    rng = np.random.default_rng(3)
    n = 300
    thirds = [np.arange(t, n, 3) for t in range(3)]
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "level": pd.Categorical(rng.choice(list("abcd"), size=n)),
        }
    )
    x, z = X["x"].to_numpy(), X["z"].to_numpy()
    target = np.broadcast_to(x + np.sin(2 * z), (1, 2, n)).copy()
    mimic = target - (x + 0.3 * rng.normal(size=(1, 2, n)))  # target less each prediction
    outcome = rng.normal(size=(1, 2, n))
    first = _adjusted_pairs(X, [thirds], mimic, outcome, target)
    changed = mimic.copy()
    changed[0, 1] = target[0, 1] - (z**3 + rng.normal(size=n))  # another mimic b
    second = _adjusted_pairs(X, [thirds], changed, outcome, target)
    np.testing.assert_array_equal(first[0][0, 0], second[0][0, 0])
    np.testing.assert_array_equal(first[1][0, 0], second[1][0, 0])
    assert not np.allclose(first[0][0, 1], second[0][0, 1])
    # each pair's residuals less their fit on the basis of its own mimic
    for rows in thirds:
        for pair in range(2):
            basis = _adjustment_basis(
                X.iloc[rows],
                len(rows),
                target[0, pair, rows] - mimic[0, pair, rows],
                mimic_residual=mimic[0, pair, rows],
            )
            expected = _adjust(basis, np.stack([mimic[0, pair, rows], outcome[0, pair, rows]]))
            np.testing.assert_allclose(first[0][0, pair, rows], expected[0], atol=1e-12)
            np.testing.assert_allclose(first[1][0, pair, rows], expected[1], atol=1e-12)


def _light_params(calibration) -> dict:
    """A light audit's settings: one split, small two-bag EBMs."""
    light = {**SMALL, "outer_bags": 2}
    return {
        "calibration": calibration,
        "n_crossfits": 1,
        "student": ExplainableBoostingRegressor(**light, learning_rate=0.1, n_jobs=1),
        "outcome": ExplainableBoostingClassifier(**light, learning_rate=0.05, n_jobs=1),
    }


@pytest.mark.parametrize("calibration", [None, "sigmoid"])
def test_a_score_the_adjustment_holds_whole_leaves_nothing_to_correlate(calibration, tmp_path):
    # A logistic regression's log-odds (linear in the numeric features, a level effect),
    # read as given or through a logistic map, lie in the adjustment's span: each pair's
    # adjusted mimic residual is rounding. With shared columns the two pairs' residuals were
    # exact opposites, the outcome noise cancelled from the statistic and the test rejected
    # (p at its floor) with nothing missing.
    rng = np.random.default_rng(11)
    n = 600
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "g": pd.Categorical(rng.choice(list("pqr"), size=n)),
        }
    )
    linear = (
        X["a"] - 0.7 * X["b"] + X["g"].astype(str).map({"p": 0.0, "q": 0.5, "r": -0.5})
    ).to_numpy(dtype=float)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-linear))).astype(int)
    params = _light_params(calibration)
    audit = _small_audit(**params).fit(X, y, teacher_scores=linear)
    adjusted_mimic, _ = audit._test_residuals
    assert np.sqrt(np.mean(adjusted_mimic**2)) < 1e-10 * np.std(linear)
    with pytest.warns(UserWarning, match="nothing to correlate"):
        test = audit.missing_feature_test(n_bootstrap=50)
    assert test[["estimate", "low", "high", "p_value"]].isna().all().all()
    # no correlations to show over the residuals' picture (its title read "pearson nan ...")
    assert audit.plot_residuals().axes[0].get_title() == ""
    path = tmp_path / "report.html"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.report(path)
    text = path.read_text(encoding="utf-8")
    assert "The test has nothing to correlate" in text
    assert "No positive correlation" not in text and "negatively correlated" not in text
    assert "not a test" not in text  # no table of blank correlations
    # a score beyond the adjustment's span is tested as before
    wiggled = linear + 0.3 * np.sin(2 * X["a"].to_numpy())
    audit = _small_audit(**params).fit(X, y, teacher_scores=wiggled)
    assert not audit._score_in_adjustment_
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        test = audit.missing_feature_test(n_bootstrap=50)
    assert np.isfinite(test.loc["pearson", ["estimate", "p_value"]].astype(float)).all()


@pytest.mark.parametrize("offset", [1e10, -1e12])
def test_a_score_far_from_zero_in_the_adjustment_leaves_nothing_to_correlate(offset):
    # The same linear score plus a large constant, read as given: the mimic's residuals are
    # the rounding of numbers of the score's size (about 0.3 units of epsilon times it), far
    # above epsilon times the spread, and had been correlated as if they were a misfit.
    rng = np.random.default_rng(5)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    linear = (X["a"] - 0.7 * X["b"]).to_numpy()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-linear))).astype(int)
    params = _light_params(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scores far beyond log-odds: warned
        audit = _small_audit(**params).fit(X, y, teacher_scores=linear + offset)
    adjusted_mimic, _ = audit._test_residuals
    rms = np.sqrt(np.mean(adjusted_mimic**2))
    assert rms > 1e-10 * np.std(linear)  # beyond the spread's rounding ...
    assert rms < 4 * np.finfo(float).eps * abs(offset)  # ... within the size's
    with pytest.warns(UserWarning, match="nothing to correlate"):
        test = audit.missing_feature_test(n_bootstrap=50)
    assert test[["estimate", "low", "high", "p_value"]].isna().all().all()
    # a misfit of a hundredth of the spread beside the same constant is still tested
    wiggled = linear + offset + 0.03 * np.sin(2 * X["a"].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _small_audit(**params).fit(X, y, teacher_scores=wiggled)
    assert not audit._score_in_adjustment_


def _hc2_reference(bases, thirds, mimic, outcome):
    """The HC2 factor of one split from first principles: each row's leverage from the hat
    matrix of its third's basis (a pseudo-inverse), and each row's influence on the stacked
    correlation by differencing the correlation of the rows weighted, the row's weight moved
    by a little either way (the factor does not depend on the influence's scale)."""
    n = mimic.shape[-1]
    leverage = np.empty(n)
    for basis, rows in zip(bases, thirds):
        cutoff = np.finfo(float).eps * max(basis.shape)
        leverage[rows] = np.diag(basis @ np.linalg.pinv(basis, rcond=cutoff))

    def correlation(weights):
        w = np.broadcast_to(weights, mimic.shape)
        a = mimic - np.sum(w * mimic) / w.sum()
        b = outcome - np.sum(w * outcome) / w.sum()
        return np.sum(w * a * b) / np.sqrt(np.sum(w * a * a) * np.sum(w * b * b))

    step = 1e-6
    influence = np.empty(n)
    for i in range(n):
        up, down = np.ones(n), np.ones(n)
        up[i] += step
        down[i] -= step
        influence[i] = (correlation(up) - correlation(down)) / (2 * step)
    free = 1 - leverage
    kept = free > 1e-9  # a row alone in a held level: leverage 1, residuals 0
    return np.sum(influence[kept] ** 2 / free[kept]) / np.sum(influence**2)


def test_variance_inflation_follows_the_rows_leverage_where_noise_grows_with_it():
    # Levels of two rows (leverage 1/2 in their third) whose outcomes are three times as
    # noisy as the other rows': the bootstrap reads each row's noise from its adjusted
    # residual, shrunk by its own 1 - h, so n / (n - k), which corrects by the mean
    # leverage, falls short; the factor is the larger of it and HC2.
    from sklearn_distill.audit import _adjusted_pairs, _adjustment_basis

    rng = np.random.default_rng(5)
    n = 360
    thirds = [np.arange(t, n, 3) for t in range(3)]
    level = np.empty(n, dtype=object)
    thin = np.zeros(n, dtype=bool)
    for t, rows in enumerate(thirds):
        level[rows[:40]] = [f"t{t}-{j // 2}" for j in range(40)]  # 20 levels of two rows
        level[rows[40:]] = [f"wide{j % 4}" for j in range(80)]  # 4 levels of 20
        thin[rows[:40]] = True
    X = pd.DataFrame({"x": rng.normal(size=n), "level": pd.Categorical(level)})
    noise = np.where(thin, 3.0, 1.0) * rng.normal(size=n)
    outcome = (noise + 0.1 * rng.normal(size=(2, n)))[None]
    mimic = rng.normal(size=(1, 2, n))
    target = mimic + 0.5  # one prediction per row: no column of its powers
    adjusted_mimic, adjusted_outcome, inflation = _adjusted_pairs(
        X, [thirds], mimic, outcome, target
    )
    bases = [_adjustment_basis(X.iloc[rows], len(rows)) for rows in thirds]
    assert all(basis.shape[1] > 23 for basis in bases)  # every level held
    fitted = sum(np.linalg.matrix_rank(basis) for basis in bases)
    hc1 = n / (n - fitted)
    hc2 = _hc2_reference(bases, thirds, adjusted_mimic[0], adjusted_outcome[0])
    assert hc2 > 1.1 * hc1
    assert inflation == pytest.approx(hc2, rel=1e-6)


def test_rows_alone_in_a_held_level_have_residuals_of_exactly_zero():
    # a level held by one row of a third fits that row exactly (leverage 1): rounding leaves
    # residuals of ~1e-14 whose order would break the rank correlations' ties by chance
    from sklearn_distill.audit import _adjusted_pairs, _adjustment_basis, _leverage

    rng = np.random.default_rng(7)
    n = 300
    thirds = [np.arange(t, n, 3) for t in range(3)]
    level = np.array([f"wide{j % 5}" for j in range(n)], dtype=object)
    alone = np.zeros(n, dtype=bool)
    for t, rows in enumerate(thirds):
        level[rows[:12]] = [f"one{t}-{j}" for j in range(12)]  # 12 levels of one row a third
        alone[rows[:12]] = True
    X = pd.DataFrame({"x": rng.normal(size=n), "level": pd.Categorical(level)})
    mimic, outcome = rng.normal(size=(1, 2, n)), rng.normal(size=(1, 2, n))
    target = mimic + X["x"].to_numpy()
    adjusted_mimic, adjusted_outcome, _ = _adjusted_pairs(X, [thirds], mimic, outcome, target)
    leverage = np.empty(n)
    for rows in thirds:
        prediction = (target[0][:, rows] - mimic[0][:, rows]).mean(axis=0)
        leverage[rows] = _leverage(
            _adjustment_basis(
                X.iloc[rows], len(rows), prediction, mimic_residual=mimic[0][:, rows].mean(0)
            )
        )
    assert np.allclose(leverage[alone], 1.0) and leverage[~alone].max() < 0.99  # held alone
    assert np.all(adjusted_mimic[0][:, alone] == 0.0)
    assert np.all(adjusted_outcome[0][:, alone] == 0.0)
    assert np.all(adjusted_outcome[0][:, ~alone] != 0.0)


def test_leverage_inflation_matches_the_correlations_variance_over_noise_draws():
    # A simulation whose true variance is known: the mimic's residual fixed (a function of
    # the features), the outcome's noise drawn 3,000 times, three times as large on the rows
    # of two-row levels as on those of 20-row levels. The variance of the correlation over
    # the draws is matched by the delta-method variance the bootstrap estimates (the squared
    # influences over N^2) times the HC2 factor, not times n / (n - k).
    from sklearn_distill.audit import _adjust, _leverage, _leverage_inflation

    rng = np.random.default_rng(0)
    codes = np.r_[np.repeat(np.arange(50), 2), 50 + np.repeat(np.arange(10), 20)]
    n = codes.size
    basis = np.column_stack([np.ones(n)] + [(codes == k).astype(float) for k in range(1, 60)])
    mimic, leverage = _adjust(basis, rng.normal(size=(2, n))), _leverage(basis)
    np.testing.assert_allclose(leverage, np.where(codes < 50, 1 / 2, 1 / 20), atol=1e-12)
    scale = np.where(codes < 50, 3.0, 1.0)
    outcomes = _adjust(basis, scale * rng.normal(size=(3000, n)))
    correlations, variances, factors = [], [], []
    for outcome in outcomes:
        outcome = np.broadcast_to(outcome, mimic.shape)  # one outcome, two mimics' pairs
        a = (mimic - mimic.mean()) / mimic.std()
        b = (outcome - outcome.mean()) / outcome.std()
        r = np.mean(a * b)
        influence = (a * b - r / 2 * (a * a + b * b)).sum(axis=0)
        correlations.append(r)
        variances.append(np.sum(influence**2) / mimic.size**2)
        factors.append(_leverage_inflation(mimic, outcome, leverage))
    true = np.var(correlations)
    variances, factors = np.array(variances), np.array(factors)
    # 3,000 draws: the true variance is known to about 2.6%
    assert np.mean(variances * factors) / true == pytest.approx(1.0, abs=0.08)
    hc1 = n / (n - leverage.sum())
    assert hc1 * np.mean(variances) / true < 0.9


def test_a_rows_outcome_does_not_reach_the_adjusted_residuals_of_its_own_third(monkeypatch):
    # With the three-way splits held fixed, flip one row's outcome: the mimic residuals of
    # the rows judged by mimics fitted on that row's third change (their calibration saw the
    # outcome), but the adjusted mimic residuals of the row's own third, its own included, do
    # not; adjusted over all rows at once they did (the row's own outcome on both sides of
    # the correlation).
    import sklearn_distill.audit as audit_module

    rng = np.random.default_rng(0)
    n = 240
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    score = X["a"].to_numpy() - 0.5 * X["b"].to_numpy()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype(int)
    fixed = [np.array_split(np.random.default_rng(9 + r).permutation(n), 3) for r in range(2)]
    calls = []

    class FixedThirds:
        def __init__(self, *args, **kwargs):
            pass

        def split(self, X, y, groups=None):
            parts = fixed[len(calls) % 2]
            calls.append(1)
            for k in range(3):
                yield np.concatenate([parts[j] for j in range(3) if j != k]), np.sort(parts[k])

    monkeypatch.setattr(audit_module, "StratifiedKFold", FixedThirds)

    def fitted(outcomes):
        calls.clear()
        return CompareAudit(
            student=KNeighborsRegressor(n_neighbors=5),
            outcome=KNeighborsClassifier(n_neighbors=5),
            calibration="isotonic",
            cv=3,
            interactions=0,
            n_crossfits=2,
            random_state=0,
        ).fit(X, outcomes, teacher_scores=score)

    before = fitted(y)
    row = 7
    flipped = y.copy()
    flipped[row] = 1 - flipped[row]
    after = fitted(flipped)
    for r, parts in enumerate(fixed):
        own = np.sort(next(part for part in parts if row in part))
        others = np.setdiff1d(np.arange(n), own)
        raw = before.crossfit_residuals_["mimic"][r], after.crossfit_residuals_["mimic"][r]
        assert np.abs(raw[0][:, others] - raw[1][:, others]).max() > 1e-6  # the flip matters
        # (the outcome side holds the row's own outcome by design: y minus the prediction)
        np.testing.assert_array_equal(
            before._test_residuals[0][r][:, own], after._test_residuals[0][r][:, own]
        )


def test_string_labels_pick_the_second_class_as_event():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    y = np.where(X[:, 0] > 0, "yes", "no")
    audit = _nearest_neighbour_audit().fit(X, y, teacher_scores=X[:, 0])
    np.testing.assert_array_equal(audit.classes_, ["no", "yes"])
    assert np.all((audit.outcome_residuals_ >= 0)[y == "yes"])


# ---------------------------------------------------------------------- bad input (section 6)
@pytest.fixture
def small():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (X["a"] > 0).astype(int).to_numpy()
    return X, y, X["a"].to_numpy() + rng.normal(size=40)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (
            lambda X, y, s: (X, y[:-1], s),
            ValueError,
            r"X and y must have one row per audit case each; got 40 rows in X and 39 in y",
        ),
        (
            # the short one is X: the message names both, not y alone
            lambda X, y, s: (X.iloc[:-1], y, s[:-1]),
            ValueError,
            r"X and y must have one row per audit case each; got 39 rows in X and 40 in y",
        ),
        (
            lambda X, y, s: (None, y, s),
            TypeError,
            r"X must be an array-like or DataFrame of shape \(n_samples, n_features\); got None",
        ),
        (lambda X, y, s: (X, y, s[:-1]), ValueError, "teacher_scores has 39 rows but X has 40"),
        (
            # the way out named: the rows without a score left out of X, y and the scores
            lambda X, y, s: (X, y, np.r_[s[:-1], np.nan]),
            ValueError,
            r"teacher_scores contains 1 NaN .* Leave out the rows without a score \(first at "
            r"position 39\), in X, y and teacher_scores alike",
        ),
        (lambda X, y, s: (X, y, np.r_[s[:-1], np.inf]), ValueError, "teacher_scores contains 1"),
        (lambda X, y, s: (X, y, np.ones_like(s)), ValueError, "teacher_scores are constant"),
        (lambda X, y, s: (X, np.ones_like(y), s), ValueError, "single class"),
        (lambda X, y, s: (X, np.arange(40) % 3, s), ValueError, "binary outcome"),
        (lambda X, y, s: (X, s, s), ValueError, "binary outcome"),
        (
            lambda X, y, s: (X, np.r_[y[:-1], np.nan], s),
            ValueError,
            "y must hold an observed label on",
        ),
        (lambda X, y, s: (X, y, None), ValueError, "teacher_scores .* are required"),
        (lambda X, y, s: (X, y, s + 1j), TypeError, "teacher_scores must be real numbers"),
        (lambda X, y, s: (X, None, s), ValueError, "requires y to be passed"),
        # a column's name where the column goes: read as 14 letters ("14 in y") or as one
        # value that is not a number; the message says to pass the column itself
        (
            lambda X, y, s: (X, "two_year_recid", s),
            TypeError,
            r"y must hold one value per row of X .*; got the string 'two_year_recid'\. To use "
            r"a column of your data, pass the column itself \(data\['two_year_recid'\]\)",
        ),
        (
            lambda X, y, s: (X, y, "decile_score"),
            TypeError,
            r"teacher_scores must hold one value per row of X .*'decile_score'",
        ),
        (
            lambda X, y, s: (X, np.r_[np.ones(8), np.zeros(32)], s),
            ValueError,
            r"only 8 rows of one class; the audit needs at least 9 .* each third .* cv=3 folds",
        ),
    ],
)
def test_bad_data(small, change, error, match):
    X, y, s = change(*small)
    with pytest.raises(error, match=match):
        CompareAudit(cv=3).fit(X, y, teacher_scores=s)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"calibration": "platt"}, ValueError, "calibration must be one of"),
        ({"cv": 1}, ValueError, "cv must be an integer >= 2"),
        ({"cv": 2.5}, TypeError, "cv must be an integer >= 2"),
        ({"n_crossfits": 0}, ValueError, "n_crossfits must be an integer >= 1"),
        ({"n_crossfits": "3"}, TypeError, "n_crossfits must be an integer >= 1"),
        ({"confidence": 1.0}, ValueError, "confidence must be a finite number > 0 and < 1"),
        ({"outcome": LinearRegression()}, TypeError, "outcome must be a classifier"),
        ({"student": "ebm"}, TypeError, "student must be a scikit-learn regressor"),
        (
            {"student": LogisticRegression()},
            TypeError,
            r"student must be a regressor: .* got LogisticRegression\(\), a classifier",
        ),
        ({"teacher": "model"}, TypeError, "teacher must be"),
        (
            {"random_state": -1},
            ValueError,
            r"random_state must be None, an integer >= 0 .*; got -1",
        ),
        ({"random_state": "0"}, TypeError, r"random_state must be None, an integer .*; got '0'"),
        ({"n_jobs": "two"}, TypeError, r"n_jobs must be None or a non-zero integer .*; got 'two'"),
        ({"n_jobs": 0}, ValueError, r"n_jobs must be None or a non-zero integer .*; got 0"),
        ({"verbose": "yes"}, TypeError, r"verbose must be an integer >= 0; got 'yes'"),
        ({"verbose": -1}, ValueError, r"verbose must be an integer >= 0; got -1"),
    ],
)
def test_bad_parameters(small, params, error, match):
    X, y, s = small
    with pytest.raises(error, match=match):
        CompareAudit(**params).fit(X, y, teacher_scores=s)


def test_teacher_without_the_method_asked_for(small):
    X, y, s = small
    regressor = LinearRegression().fit(X, s)
    with pytest.raises(ValueError, match="has no method 'predict_proba'"):
        CompareAudit(regressor, response="predict_proba").fit(X, y)


def test_probability_scores_are_read_as_log_odds(small):
    X, y, s = small
    probability = 1 / (1 + np.exp(-s))
    audit = _nearest_neighbour_audit(response="predict_proba")
    audit.fit(X, y, teacher_scores=np.column_stack([1 - probability, probability]))
    # calibration=None and a 1-NN student: the mimic reproduces the log-odds in sample
    np.testing.assert_allclose(audit.mimic_.predict(X), s, atol=1e-6)


def test_inputs_are_not_modified(small):
    X, y, s = small
    X_before, y_before, s_before = X.copy(), y.copy(), s.copy()
    _nearest_neighbour_audit().fit(X, y, teacher_scores=s)
    pd.testing.assert_frame_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(s, s_before)


def test_unfitted_audit_raises():
    with pytest.raises(NotFittedError):
        CompareAudit().compare()
    with pytest.raises(NotFittedError):
        CompareAudit().missing_feature_test()


def test_compare_with_interactions():
    rng = np.random.default_rng(5)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] * X["b"] + X["a"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pair = {**SMALL, "max_bins": 16, "interactions": [(0, 1)], "max_interaction_bins": 8}
    audit = CompareAudit(
        calibration="sigmoid",
        cv=2,
        random_state=0,
        student=ExplainableBoostingRegressor(**pair, learning_rate=0.1, n_jobs=1),
        outcome=ExplainableBoostingClassifier(**pair, learning_rate=0.05, n_jobs=1),
    ).fit(X, y, teacher_scores=logit + 0.1 * rng.normal(size=n))
    assert set(audit.compare(interactions=False)["term"]) == {"a", "b"}
    table = audit.compare()
    assert (
        table["kind"] == (table["term"] == "a & b").map({True: "interaction", False: "main"})
    ).all()
    pairs = table[table["term"] == "a & b"]
    assert len(pairs) > 0 and all(isinstance(v, tuple) and len(v) == 2 for v in pairs["value"])
    shapes = audit.mimic_.shape_functions(audit.confidence, interactions=True)
    np.testing.assert_allclose(
        pairs["mimic"], shapes.loc[shapes["term"] == "a & b", "score"].to_numpy()
    )


def test_isotonic_saturation_warns():
    # Isotonic calibration of a continuous score pools the extremes into steps with observed
    # rates of exactly 0 or 1; the audit says so. Deciles of the same score do not saturate.
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 2))
    logit = 2 * X[:, 0]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    deciles = np.digitize(logit, np.quantile(logit, np.linspace(0, 1, 11)[1:-1])) + 1.0
    fast = {"student": LinearRegression(), "outcome": LogisticRegression(), "cv": 2}
    with pytest.warns(UserWarning, match="observed rate is exactly 0 or 1"):
        CompareAudit(**fast).fit(X, y, teacher_scores=logit)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # this score is a function of X[:, 0] alone, which fit says (another warning)
        warnings.filterwarnings("ignore", "the score is a function of one feature", UserWarning)
        CompareAudit(**fast).fit(X, y, teacher_scores=deciles)
        CompareAudit(**fast, calibration="sigmoid").fit(X, y, teacher_scores=logit)


def test_large_audits_keep_the_bins_of_both_models_aligned():
    # DistilledGAM fits its student on at most 100,000 rows by default; the audit's mimic must
    # use every row as the outcome model does, or their bins (and compare()) no longer match
    rng = np.random.default_rng(6)
    n = 100_200
    X = rng.normal(size=(n, 1))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    tiny = {"outer_bags": 2, "max_rounds": 5, "interactions": 0, "max_bins": 16, "n_jobs": 1}
    audit = CompareAudit(
        calibration="sigmoid",
        cv=2,
        random_state=0,
        student=ExplainableBoostingRegressor(**tiny),
        outcome=ExplainableBoostingClassifier(**tiny),
    ).fit(X, y, teacher_scores=X[:, 0] + 0.1 * rng.normal(size=n))
    table = audit.compare()
    assert table["weight"].sum() == n
    np.testing.assert_array_equal(table["weight"], audit.outcome_.bin_weights_[0][1:-1])


def test_adjustment_basis_is_a_quadratic_in_the_numeric_features_and_the_levels(monkeypatch):
    import sklearn_distill.audit as audit_module
    from sklearn_distill.audit import _MAX_ADJUSTMENT_COLUMNS, _adjust, _adjustment_basis

    # the numeric features' spline, which comes last, is checked in
    # test_audit_adjustment_spline.py: here the columns before it
    monkeypatch.setattr(audit_module, "_MAX_SPLINE_KNOTS", 0)

    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "a": rng.normal(2, 3, size=n),
            "b": rng.uniform(size=n),
            "c": pd.Categorical(rng.choice(["x", "y"], size=n)),
            "d": rng.choice(["p", "q"], size=n),
            "e": pd.Series(rng.normal(size=n), dtype=object),  # numbers held as objects
        }
    )
    frame.loc[::9, "b"] = np.nan
    frame.loc[::7, "e"] = pd.NA
    basis = _adjustment_basis(frame, n)
    # intercept, a, b, e, the missing indicators of b and e, 3 squares and 3 products, then an
    # indicator of a level of each nominal feature (c and d: the other level is the intercept's)
    assert basis.shape == (n, 14)
    # a function of the nominal features is adjusted away (shared misfit of their levels)
    levels = 2.0 * (frame["c"] == "y").to_numpy() - (frame["d"] == "q").to_numpy()
    np.testing.assert_allclose(_adjust(basis, levels[None])[0], 0, atol=1e-9)
    a = frame["a"].to_numpy()
    b = frame["b"].fillna(frame["b"].mean()).to_numpy()
    observed = frame["b"].notna().to_numpy()
    quadratic = 1 + 2 * a - a**2 + 3 * a * b + np.where(observed, 0.0, 5.0)
    noise = rng.normal(size=n)
    adjusted = _adjust(basis, np.stack([quadratic, quadratic + noise]))
    np.testing.assert_allclose(adjusted[0], 0, atol=1e-9)
    # what is left of the noise is orthogonal to every column
    np.testing.assert_allclose(basis.T @ adjusted[1], 0, atol=1e-8)
    assert frame["b"].isna().sum() == 45  # the input is left as it was
    # a prediction adds its standardised first three powers after the intercept
    prediction = 3 + 2 * a
    with_prediction = _adjustment_basis(frame, n, prediction)
    assert with_prediction.shape == (n, 17)
    z = (prediction - prediction.mean()) / prediction.std()
    np.testing.assert_allclose(with_prediction[:, 1:4], np.column_stack([z, z**2, z**3]))
    np.testing.assert_allclose(with_prediction[:, 4:], basis[:, 1:])
    assert _adjustment_basis(frame, n, np.ones(n)).shape == (n, 14)  # a constant adds nothing
    # as does a constant up to rounding (0.1 + 0.2 against 0.3), not a column of its noise
    rounding = np.array([0.1 + 0.2, 0.3] * (n // 2))
    np.testing.assert_array_equal(_adjustment_basis(frame, n, rounding), basis)
    # the polynomial within one column per ten rows (the prediction's powers, then linear
    # terms first), then the levels within one column per two rows: c's and d's
    assert _adjustment_basis(frame.iloc[:40], 40).shape == (40, 4 + 2)
    six = _adjustment_basis(frame.iloc[:60], 60, prediction[:60])
    assert six.shape == (60, 6 + 2)  # intercept, the prediction's three powers, a and b
    np.testing.assert_allclose(six[:, 4], _adjustment_basis(frame.iloc[:60], 60)[:, 1])
    assert _adjustment_basis(rng.normal(size=(25, 3)), 25).shape == (25, 2)
    assert _adjustment_basis(np.array([["x"], ["y"]] * 30, dtype=object), 60).shape == (60, 2)
    # the rarest levels first
    nominal = np.array([["a"]] * 40 + [["b"]] * 12 + [["c"]] * 3 + [["d"]] * 5, dtype=object)
    rare = _adjustment_basis(nominal, 60)
    assert rare.shape == (60, 4)  # the intercept, then c, d and b
    np.testing.assert_array_equal(rare[:, 1:].sum(axis=0), [3, 5, 12])
    # a feature of many levels never crowds out the polynomial, and a level of one row (an
    # identifier's) takes no column: an id column left the squares and products out, and a
    # shared misfit in a * b then made a null world read 0.40 instead of 0.07
    with_ids = frame.assign(id=[f"r{i}" for i in range(n)], zip=[f"z{i // 3}" for i in range(n)])
    crowded = _adjustment_basis(with_ids, n)
    np.testing.assert_array_equal(crowded[:, :12], basis[:, :12])
    # then the levels, the features in turn: c's and d's, and every zip code but the
    # intercept's (the 134th, of one row, too: its row's residuals are zeroed); the ids,
    # every row alone in its level, none (they would zero every row)
    assert crowded.shape == (n, 12 + 2 + 133)
    np.testing.assert_allclose(_adjust(crowded, levels[None])[0], 0, atol=1e-9)
    np.testing.assert_allclose(_adjust(crowded, (a * b)[None])[0], 0, atol=1e-9)
    # a numpy boolean array is numeric here, not also nominal
    flags = rng.uniform(size=(60, 2)) < 0.5
    # the intercept, 2 linear terms, 2 squares and a product: no level indicators
    assert _adjustment_basis(flags, 60).shape == (60, 6)
    # many numeric features: the basis stops at the limit, building no more columns than it keeps
    wide = rng.normal(size=(5000, 300))
    assert _adjustment_basis(wide, 5000).shape == (5000, _MAX_ADJUSTMENT_COLUMNS)
    # values near the float range are standardised without overflowing
    huge = rng.normal(size=(100, 2))
    huge[:5, 1] = 1.5e308
    assert np.all(np.isfinite(_adjustment_basis(huge, 100)))


# ---------------------------------------------------------------------- refits and stale analyses
def _tiny_ebm_audit(**kwargs):
    tiny = {"outer_bags": 2, "max_rounds": 50, "interactions": 0, "max_bins": 16, "n_jobs": 1}
    params = {
        "calibration": None,
        "cv": 2,
        "n_crossfits": 1,
        "interactions": 0,
        "random_state": 0,
        "student": ExplainableBoostingRegressor(**tiny),
        "outcome": ExplainableBoostingClassifier(**tiny),
        **kwargs,
    }
    return CompareAudit(**params)


def test_refit_drops_the_analyses_and_names_of_the_earlier_fit(small):
    X, y, s = small
    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s)
    audit.missing_feature_test(n_bootstrap=20)
    audit.stability(X, y, teacher_scores=s, n_refits=2)
    assert hasattr(audit, "feature_names_in_")
    # new data, as an array: nothing of the first fit may be read as this one's
    audit.fit(X.to_numpy()[::-1], y[::-1], teacher_scores=s[::-1])
    for name in ("missing_feature_test_", "stability_", "feature_names_in_"):
        assert not hasattr(audit, name), name
    assert audit.n_features_in_ == 2


def test_report_reruns_a_test_computed_at_another_confidence(small):
    import matplotlib.text

    from sklearn_distill.report import audit_findings_text

    X, y, s = small
    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s)
    at_95 = audit.missing_feature_test(n_bootstrap=40)
    audit.set_params(confidence=0.5)
    # the residual picture does not show the 95% intervals as if they were the current level
    stale = f"[{at_95.loc['pearson', 'low']:.3f}, {at_95.loc['pearson', 'high']:.3f}]"
    figure = audit.plot_residuals()
    assert not any(stale in t.get_text() for t in figure.findobj(matplotlib.text.Text))
    text = " ".join(audit_findings_text(audit).split())
    shown = audit.missing_feature_test_
    # the same resamples (seeded audit) at the new level: same estimate, a narrower interval
    pd.testing.assert_frame_equal(shown, audit.missing_feature_test(n_bootstrap=40))
    pd.testing.assert_series_equal(shown["estimate"], at_95["estimate"])
    assert (shown["high"] - shown["low"] < at_95["high"] - at_95["low"]).all()
    pearson = shown.loc["pearson"]
    interval = f"50% interval {pearson['low']:.3f} to {pearson['high']:.3f}"
    assert f"Pearson {pearson['estimate']:.3f}, {interval}" in text
    shown_texts = [t.get_text() for t in audit.plot_residuals().findobj(matplotlib.text.Text)]
    assert any(f"[{pearson['low']:.3f}, {pearson['high']:.3f}]" in t for t in shown_texts)
    # at an unchanged confidence the stored table is shown as it is
    stored = audit.missing_feature_test(n_bootstrap=60)
    audit_findings_text(audit)
    assert audit.missing_feature_test_ is stored


def test_stability_refuses_other_data_and_bad_arguments(small):
    X, y, s = small
    audit = _nearest_neighbour_audit().fit(X, y, teacher_scores=s)
    for name, (X_other, y_other, s_other) in {
        "X": (X.assign(a=X["a"] + 1), y, s),
        "y": (X, 1 - y, s),
        "teacher_scores": (X, y, s + 1),
    }.items():
        with pytest.raises(ValueError, match=rf"^{name} must be .* given to fit"):
            audit.stability(X_other, y_other, teacher_scores=s_other, n_refits=2)
    with pytest.raises(ValueError, match=r"threshold must be a finite number > 0; got -1"):
        audit.stability(X, y, teacher_scores=s, threshold=-1)
    # its refits are of the audit as fitted: settings changed since are refused
    cv = audit.cv
    audit.set_params(cv=cv + 1)
    with pytest.raises(ValueError, match=rf"settings changed since fit \(cv {cv} at fit, {cv + 1}"):
        audit.stability(X, y, teacher_scores=s, n_refits=2)
    audit.set_params(cv=cv)  # set back: the checks go on to the arguments
    with pytest.raises(ValueError, match=r"threshold must be a finite number > 0; got -1"):
        audit.stability(X, y, teacher_scores=s, threshold=-1)
    # any setting the refits read: the models, the constraints
    for name, value in (("monotone_constraints", {"a": -1}), ("outcome", LogisticRegression())):
        fitted = getattr(audit, name)
        audit.set_params(**{name: value})
        with pytest.raises(ValueError, match=rf"settings changed since fit \({name} "):
            audit.stability(X, y, teacher_scores=s, n_refits=2)
        audit.set_params(**{name: fitted})
    # a model's own parameters changed in place count; an equal clone does not
    from sklearn.base import clone

    outcome = audit.outcome
    if outcome is not None and hasattr(outcome, "get_params"):
        audit.set_params(outcome=clone(outcome))
        with pytest.raises(ValueError, match=r"threshold must be a finite number > 0; got -1"):
            audit.stability(X, y, teacher_scores=s, threshold=-1)
        first = sorted(audit.outcome.get_params())[0]
        audit.outcome.set_params(**{first: audit.outcome.get_params()[first]})  # the same value
        key = next(k for k, v in audit.outcome.get_params().items() if isinstance(v, float | int)
                   and not isinstance(v, bool))  # fmt: skip
        before = audit.outcome.get_params()[key]
        audit.outcome.set_params(**{key: before + 1})
        with pytest.raises(ValueError, match=rf"settings changed since fit \(outcome__{key} "):
            audit.stability(X, y, teacher_scores=s, n_refits=2)
        audit.outcome.set_params(**{key: before})
    # and not what leaves the refits alone
    audit.set_params(n_jobs=2, verbose=0)
    with pytest.raises(ValueError, match=r"threshold must be a finite number > 0; got -1"):
        audit.stability(X, y, teacher_scores=s, threshold=-1)
    with pytest.raises(ValueError, match=r"^shape_threshold must be a finite number > 0; got 0"):
        audit.stability(X, y, teacher_scores=s, shape_threshold=0)
    with pytest.raises(TypeError, match=r"bootstrap must be True or False; got 'no'"):
        audit.stability(X, y, teacher_scores=s, bootstrap="no")
    with pytest.raises(TypeError, match=r"X must be an array-like .*; got None"):
        audit.stability(None, y, teacher_scores=s)


def test_missing_feature_test_needs_twenty_resamples(small):
    X, y, s = small
    audit = _nearest_neighbour_audit().fit(X, y, teacher_scores=s)
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer >= 20; got 1\."):
        audit.missing_feature_test(n_bootstrap=1)
    with pytest.raises(TypeError, match=r"n_bootstrap must be an integer >= 20; got 50\.0\."):
        audit.missing_feature_test(n_bootstrap=50.0)
    assert (audit.missing_feature_test(n_bootstrap=20)["n_bootstrap"] <= 20).all()


def test_probability_score_without_calibration_warns(small):
    X, y, s = small
    probability = 1 / (1 + np.exp(-s))

    def scale_warnings(audit, scores):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit.fit(X, y, teacher_scores=scores)
        return [str(w.message) for w in caught if "all lie in [0, 1]" in str(w.message)]

    (message,) = scale_warnings(_nearest_neighbour_audit(), probability)
    assert message.startswith("teacher_scores all lie in [0, 1]")
    assert "response='predict_proba'" in message and "calibration" in message
    # log-odds, a probability read as one, or a calibrated probability: nothing to say
    assert scale_warnings(_nearest_neighbour_audit(), s) == []
    assert scale_warnings(_nearest_neighbour_audit(response="predict_proba"), probability) == []
    assert scale_warnings(_nearest_neighbour_audit(calibration="sigmoid"), probability) == []


def test_features_whose_values_are_too_thin_to_test_are_named(audits):
    from sklearn_distill.report import audit_findings_text
    from sklearn_distill.stats import untested_terms

    planted, _ = audits
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 32 bins of 800 rows hold about 25: all testable
        # (the interaction's 135 cells hold 6 rows each: compare() says so on its own)
        warnings.filterwarnings("ignore", message="compare\\(\\): most rows of these interactions")
        planted.compare(min_weight=10)
    with pytest.warns(UserWarning, match=r"too thin to test: a: 0 of \d+ values testable"):
        table = planted.compare(min_weight=100)
    untested = untested_terms(table)
    assert list(untested["kind"]) == ["main", "interaction"]  # main effects listed first
    untested = untested[untested["kind"] == "main"]
    assert list(untested["term"]) == ["a"] and untested["n_testable"].iloc[0] == 0
    weights = table.loc[table["term"] == "a", "weight"]
    assert untested["median_rows"].iloc[0] == weights.median()
    # the findings say it in words, without repeating the warning
    audit = pickle.loads(pickle.dumps(planted)).set_params(min_weight=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        text = audit_findings_text(audit)
    assert "Not tested" in text and "a: 0 of" in text


def test_groups_keep_a_repeated_record_in_one_third(data):
    from sklearn_distill.report import _missing_feature_texts

    X, y, with_hidden, _ = data
    X, y, score = X.iloc[:300], y[:300], with_hidden[:300]
    twice = pd.concat([X, X], ignore_index=True)
    ids = np.tile(np.arange(300), 2)
    args = (twice, np.tile(y, 2))
    with pytest.warns(UserWarning, match=r"600 of 600 rows \(100%\) repeat another row"):
        alone = _small_audit(n_crossfits=1).fit(*args, teacher_scores=np.tile(score, 2))
    # the report's caveats of the missing-feature test say it too (fit's warning is gone
    # by the time a report is read)
    test = alone.missing_feature_test(n_bootstrap=40)
    caveats = " ".join(_missing_feature_texts(alone, test)[1])
    assert "600 of 600 rows (100%) repeat another row exactly" in caveats
    assert "--groups COL" in caveats
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        audit = _small_audit(n_crossfits=1).fit(*args, teacher_scores=np.tile(score, 2), groups=ids)
    test = audit.missing_feature_test(n_bootstrap=40)
    assert "repeat another row" not in " ".join(_missing_feature_texts(audit, test)[1])
    # both copies sit in the same third, so every model sees or misses them together
    pairs = audit.crossfit_residuals_
    for side in ("mimic", "outcome"):
        np.testing.assert_array_equal(pairs[side][..., :300], pairs[side][..., 300:])
    with pytest.raises(
        ValueError, match=r"groups must be one record identifier per row of X \(600\)"
    ):
        _small_audit().fit(*args, teacher_scores=np.tile(score, 2), groups=ids[:10])
    with pytest.raises(
        ValueError, match="groups must be record identifiers without missing values; got 600 "
    ):
        _small_audit().fit(*args, teacher_scores=np.tile(score, 2), groups=[None] * 600)
    with pytest.raises(ValueError, match="groups must be at least 3 distinct record"):
        _small_audit().fit(*args, teacher_scores=np.tile(score, 2), groups=np.arange(600) % 2)
    # one record holds every positive row: some third has none
    lumped = np.where(np.tile(y, 2) == 1, 0, 1 + np.arange(600) % 2)
    with pytest.raises(ValueError, match="groups must be records small enough to split"):
        _small_audit().fit(*args, teacher_scores=np.tile(score, 2), groups=lumped)
    # four records: a third holds one or two, too few for its calibration's cv=3 folds; the
    # refusal counts the records given, not only those of a third
    with pytest.raises(ValueError) as refused:
        _small_audit().fit(*args, teacher_scores=np.tile(score, 2), groups=np.arange(600) % 4)
    assert "each third of the cross-fitting splits into cv=3 calibration folds" in str(
        refused.value
    )
    assert re.search(r"got 'a third with [12] of the 4 records'", str(refused.value))


# ---------------------------------------------------------------------- boolean features
def test_boolean_feature_reads_false_and_true_in_compare_summary_and_pictures():
    rng = np.random.default_rng(7)
    n = 500
    flag = rng.uniform(size=n) < 0.5
    X = pd.DataFrame({"a": rng.normal(size=n), "flag": flag})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    score = X["a"].to_numpy() + 2.0 * flag + 0.3 * rng.normal(size=n)  # flag: the black box's
    audit = _small_audit(n_crossfits=1, interactions=[("a", "flag")])
    audit.fit(X, y, teacher_scores=score)
    assert X["flag"].dtype == bool  # the user's frame is left as it was
    table = audit.compare()
    rows = table[table["term"] == "flag"]
    assert rows["label"].tolist() == ["False", "True"]
    assert rows["value"].tolist() == [False, True]
    assert [type(v) for v in rows["value"]] == [bool, bool]
    cells = table[table["kind"] == "interaction"]
    assert {labels[1] for labels in cells["label"]} == {"False", "True"}
    # the black box weighs the flag, the outcome does not: summary() names both values
    text = audit.summary().set_index("term").loc["flag", "text"]
    assert text == "flag: 2 values differ: False, True"
    # a picture of two categories, labelled as the data are
    figure = audit.plot_comparison(["flag"])
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks == ["False", "True"]


# ---------------------------------------------------------------------- stability by records
def test_group_bootstrap_draws_whole_records():
    from sklearn_distill.audit import _bootstrap_rows, _check_groups

    rng = np.random.RandomState(0)
    ids = rng.permutation(np.repeat(np.arange(60), rng.randint(1, 5, size=60)))
    groups = _check_groups([f"case {i}" for i in ids], ids.size)
    for _ in range(30):
        rows = _bootstrap_rows(rng, ids.size, groups)
        drawn = np.bincount(rows, minlength=ids.size)  # how often each row is in the sample
        per_record = []
        for record in np.unique(groups):
            times = np.unique(drawn[groups == record])
            assert times.size == 1  # a record's rows: all in (as often) or all out
            per_record.append(times[0])
        assert sum(per_record) == 60  # as many records as there are, drawn with replacement
    # without groups: rows drawn one by one, as before
    np.testing.assert_array_equal(
        _bootstrap_rows(np.random.RandomState(3), 50), np.random.RandomState(3).randint(0, 50, 50)
    )


def test_missing_feature_test_resamples_whole_records(small):
    from sklearn_distill.stats import bootstrap_correlations

    X, y, s = small
    ids = np.arange(40) // 2  # every record entered twice
    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s, groups=ids)
    table = audit.missing_feature_test(n_bootstrap=200)
    mimic, outcome = audit._test_residuals
    kwargs = dict(
        n_bootstrap=200,
        random_state=audit._bootstrap_seed,
        confidence=0.95,
        variance_inflation=audit._test_variance_inflation,
    )
    by_record = bootstrap_correlations(mimic, outcome, groups=ids, **kwargs)
    by_row = bootstrap_correlations(mimic, outcome, **kwargs)
    by_record.loc[["spearman", "kendall"], "p_value"] = np.nan  # the audit's are not tests
    np.testing.assert_allclose(table.to_numpy(float), by_record.to_numpy(float), rtol=1e-12)
    assert not np.allclose(table["std_error"], by_row["std_error"])


def test_stability_resamples_whole_records(small, monkeypatch):
    import sklearn_distill.audit as audit_module

    X, y, s = small
    ids = np.arange(40) // 2  # every record entered twice
    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s, groups=ids)
    samples = []
    refit = audit_module._refit_contributions

    def recording(audit, X, y01, scores, rows, seed):
        samples.append(rows)
        return refit(audit, X, y01, scores, rows, seed)

    monkeypatch.setattr(audit_module, "_refit_contributions", recording)
    table = audit.stability(X, y, teacher_scores=s, groups=ids, n_refits=3)
    assert set(table["model"]) == {"mimic", "outcome"}
    assert len(samples) == 3
    for rows in samples:
        drawn = np.bincount(rows, minlength=40)
        np.testing.assert_array_equal(drawn[0::2], drawn[1::2])
    # fitted with groups, given none: rows are resampled one by one, with a warning
    with pytest.warns(UserWarning, match=r"fitted with groups .* stability\(\) got none"):
        audit.stability(X, y, teacher_scores=s, n_refits=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        audit.stability(X, y, teacher_scores=s, n_refits=2, bootstrap=False)  # no resampling
    with pytest.raises(ValueError, match=r"^groups must be the record identifiers given to fit"):
        audit.stability(X, y, teacher_scores=s, groups=np.arange(40) % 20, n_refits=2)
    with pytest.raises(ValueError, match=r"groups must be one record identifier per row of X"):
        audit.stability(X, y, teacher_scores=s, groups=ids[:10], n_refits=2)
    with pytest.raises(TypeError, match=r"groups must be a 1-D array-like of 40 record"):
        audit.stability(X, y, teacher_scores=s, groups="case", n_refits=2)
    # an audit fitted without groups may resample records all the same
    plain = _tiny_ebm_audit().fit(X, y, teacher_scores=s)
    samples.clear()
    plain.stability(X, y, teacher_scores=s, groups=ids, n_refits=2)
    for rows in samples:
        drawn = np.bincount(rows, minlength=40)
        np.testing.assert_array_equal(drawn[0::2], drawn[1::2])
    with pytest.raises(ValueError, match=r"groups must be at least 3 distinct record"):
        plain.stability(X, y, teacher_scores=s, groups=np.arange(40) % 2, n_refits=2)


def _record_calibrations(monkeypatch) -> list:
    """The (scores, out-of-fold probability) of every cross-fitted calibration from now on."""
    import sklearn_distill.gam as gam_module

    calls = []
    cross_fit = gam_module.cross_fit_calibration

    def recording(scores, *args, **kwargs):
        probability, calibrator = cross_fit(scores, *args, **kwargs)
        calls.append((scores.copy(), probability))
        return probability, calibrator

    monkeypatch.setattr(gam_module, "cross_fit_calibration", recording)
    return calls


def test_groups_keep_a_record_in_one_calibration_fold(data, monkeypatch):
    """With groups, the mimic's cross-fitted calibration (at fit, in each third, in each
    stability refit) keeps a record's rows in one fold: no row's calibrated target is made from
    its record's other rows' labels (a record's copies share a score, so one fold gives them
    one probability; folds of rows had split them, and read the row's own label back)."""
    X, y, score, _ = data
    X, y, score = X.iloc[:150], y[:150], score[:150]
    assert np.unique(score).size == 150  # a record's rows are the rows of its score
    twice, ids = pd.concat([X, X], ignore_index=True), np.tile(np.arange(150), 2)
    y2, s2 = np.tile(y, 2), np.tile(score, 2)
    calls = _record_calibrations(monkeypatch)
    audit = _tiny_ebm_audit(calibration="isotonic", cv=3)
    with pytest.warns(UserWarning, match="isotonic calibration puts"):  # a few rows' steps
        audit.fit(twice, y2, teacher_scores=s2, groups=ids)
    audit.stability(twice, y2, teacher_scores=s2, groups=ids, n_refits=2)
    assert len(calls) == 1 + 3 + 2  # the full-data mimic, one per third, one per refit
    for scores, probability in calls:
        _, record = np.unique(scores, return_inverse=True)
        for k in np.unique(record):
            assert np.ptp(probability[record == k]) == 0, "a record's rows in two folds"


def test_stability_keeps_a_rows_bootstrap_copies_in_one_calibration_fold(data, monkeypatch):
    """Without groups too, a bootstrap refit's copies of a row sit in one calibration fold (as
    they sit in one early-stopping bag): in two folds, a copy's calibrated target would be
    made from its twin's label, its own, and the refitted mimic would learn label noise."""
    X, y, score, _ = data
    X, y, score = X.iloc[:200], y[:200], score[:200]
    assert np.unique(score).size == 200  # a row's copies are the rows of its score
    audit = _tiny_ebm_audit(calibration="isotonic", cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=score)
        calls = _record_calibrations(monkeypatch)
        audit.stability(X, y, teacher_scores=score, n_refits=2)
    assert len(calls) == 2
    for scores, probability in calls:
        values, copies = np.unique(scores, return_inverse=True)
        assert values.size < scores.size  # a bootstrap sample copies some rows
        for k in np.flatnonzero(np.bincount(copies) > 1):
            assert np.ptp(probability[copies == k]) == 0, "a row's copies in two folds"


def test_command_line_passes_groups_to_stability(tmp_path, monkeypatch):
    import sklearn_distill.audit as audit_module
    from sklearn_distill.__main__ import main

    rng = np.random.default_rng(9)
    n = 120
    frame = pd.DataFrame({"a": rng.normal(size=n), "case": np.arange(n)})
    frame["score"] = frame["a"] + 0.5 * rng.normal(size=n)
    frame["outcome"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-frame["a"]))).astype(int)
    path = tmp_path / "twice.csv"
    pd.concat([frame, frame], ignore_index=True).to_csv(path, index=False)
    tiny = {"outer_bags": 2, "max_rounds": 50, "max_bins": 16, "interactions": 0}
    monkeypatch.setattr(
        audit_module,
        "default_mimic_student",
        lambda seed, jobs: ExplainableBoostingRegressor(**tiny, n_jobs=jobs, random_state=seed),
    )
    monkeypatch.setattr(
        audit_module,
        "default_outcome_model",
        lambda seed, jobs: ExplainableBoostingClassifier(**tiny, n_jobs=jobs, random_state=seed),
    )
    given = []
    stability = CompareAudit.stability

    def recording(self, X, y, **kwargs):
        given.append(kwargs.get("groups"))
        return stability(self, X, y, **kwargs)

    monkeypatch.setattr(CompareAudit, "stability", recording)
    args = ["audit", str(path), "--score", "score", "--label", "outcome", "--features", "a"]
    args += ["--cv", "2", "--calibration", "sigmoid", "--n-bootstrap", "20", "--rules", "0"]
    args += ["--quiet", "--stability", "2"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*stability\\(\\) got none", category=UserWarning)
        assert main([*args, "--out", str(tmp_path / "r.html"), "--groups", "case"]) == 0
    (groups,) = given
    # the identifiers as written in the file (text)
    np.testing.assert_array_equal(groups, np.tile(np.arange(n), 2).astype(str))


# ---------------------------------------------------------------------- what a reading can miss
@pytest.mark.parametrize("filler", [np.nan, 0.0])
def test_feature_mostly_missing_or_zero_with_thin_values_is_named_untested(filler):
    """70% of the rows missing (or zero), the other values spread over thin bins: the large bin
    is testable, the values the black box weighs are not, and the feature is named."""
    from sklearn_distill.report import audit_findings_text
    from sklearn_distill.stats import untested_terms

    rng = np.random.default_rng(11)
    n = 800
    X = pd.DataFrame({"a": rng.normal(size=n), "m": rng.integers(1, 120, n).astype(float)})
    X.loc[rng.uniform(size=n) < 0.7, "m"] = filler
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    used = X["m"].notna() & (X["m"] != 0)
    # the black box weighs the observed values of m strongly, the outcome not at all
    score = X["a"].to_numpy() + np.where(used, 2.0 * (X["m"] > 60) - 1.0, 0.0)
    audit = _tiny_ebm_audit(min_weight=30).fit(X, y, teacher_scores=score)
    with pytest.warns(UserWarning, match=r"too thin to test: m: \d+ of \d+ values testable"):
        table = audit.compare()
    m = table[table["term"] == "m"]
    largest = m.loc[m["weight"].idxmax()]
    # what the former rule read: most rows lie in a testable value (the missing or zero bin)
    assert largest["testable"] and largest["weight"] > 0.5 * n
    others = m.drop(index=largest.name)
    assert others.loc[others["testable"], "weight"].sum() < 0.5 * others["weight"].sum()
    untested = untested_terms(table)
    assert untested["term"].tolist() == ["m"]  # a, in 16 bins of 50 rows, is tested
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        text = audit_findings_text(audit, width=10_000)
    (line,) = [part for part in text.split("\n  - ") if part.startswith("Not tested")]
    assert "m: " in line and "a: " not in line


def test_numbers_written_as_text_are_warned_about_once_at_fit():
    """An income column read from a file as "$43,165" (with a few "n/a") is a category of one
    level per row: fit says so once, naming the column and a value, and the frame is kept."""
    rng = np.random.default_rng(12)
    n = 400
    income = rng.lognormal(10.5, 0.5, n).round()
    text = pd.Series([f"${int(v):,}" for v in income], dtype=object)
    text[::37] = "n/a"
    X = pd.DataFrame({"a": rng.normal(size=n), "income": text})
    before = X.copy()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    score = X["a"].to_numpy() - (np.log(income) - 10.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tiny_ebm_audit().fit(X, y, teacher_scores=score)
    found = [w for w in caught if "is read as a categorical feature" in str(w.message)]
    # once for the audit, not again for each of the models fitted on thirds of the rows
    assert len(found) == 1
    message = str(found[0].message)
    assert found[0].filename == __file__  # points at the caller's fit
    levels = X["income"].nunique()
    assert message.startswith(f"X column 'income' is read as a categorical feature with {levels}")
    assert "almost no information" in message and "'$" in message
    assert f"{(X['income'] == 'n/a').sum()} cells do not, e.g. 'n/a'" in message
    pd.testing.assert_frame_equal(X, before)
    # the same column as numbers: nothing to say
    X["income"] = income
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tiny_ebm_audit().fit(X, y, teacher_scores=score)
    assert not [w for w in caught if "is read as a categorical feature" in str(w.message)]


def test_negative_residual_correlation_is_not_read_as_no_sign(audits):
    """An interval below zero is not "no sign": a missing feature correlates the residuals
    positively, and a clear negative correlation says the adjustment misfits."""
    from sklearn_distill.report import audit_findings_text

    planted, _ = audits
    audit = pickle.loads(pickle.dumps(planted))
    found = audit.missing_feature_test(n_bootstrap=100)
    assert found.loc["pearson", "low"] > 0
    verdicts = {}
    mirrored = found.copy()  # the same test, every correlation of the opposite sign
    mirrored[["estimate", "low", "high"]] = -found[["estimate", "high", "low"]].to_numpy()
    centred = found.copy()  # an interval around zero
    centred[["estimate", "low", "high"]] = found[["estimate", "low", "high"]].sub(
        found["estimate"], axis=0
    )
    centred["p_value"] = 0.9
    # the verdict follows the p-value alone: an interval whose lower end is just above zero
    # beside p = 0.06 (one resample's difference between the two conventions) is no finding
    edge = found.copy()
    edge.loc["pearson", ["estimate", "low", "high"]] = (0.027, 0.002, 0.052)
    edge.loc["pearson", "p_value"] = 0.06
    # a bootstrap p-value can be 0.05 exactly (999 resamples, 24 at or below zero): not below
    at_level = edge.copy()
    at_level.loc["pearson", "p_value"] = 0.05
    cases = (
        ("positive", found),
        ("negative", mirrored),
        ("null", centred),
        ("edge", edge),
        ("at level", at_level),
    )
    for name, table in cases:
        audit.missing_feature_test_ = table
        text = audit_findings_text(audit, width=10_000)
        verdicts[name] = text.split("Missing-feature test:\n  - ")[1].split("\n")[0]
    p = verdicts["positive"].split(", p ")[1].split(")")[0]
    assert verdicts["positive"].startswith("The two models' cross-fitted residuals are positively")
    assert verdicts["null"].startswith("No positive correlation of the residuals was found")
    assert "edge of this level" not in verdicts["null"] + verdicts["positive"]
    assert verdicts["edge"].startswith("No positive correlation of the residuals was found")
    assert "interval 0.002 to 0.052, p = 0.060" in verdicts["edge"]
    assert "either side of the 5% level" in verdicts["edge"]
    assert verdicts["at level"].startswith("No positive correlation of the residuals was found")
    # a continuous score read through isotonic steps: the negative verdict says what to try
    assert "calibration='spline'" not in verdicts["negative"]  # this audit's map is sigmoid
    audit.missing_feature_test_ = mirrored
    # the advice keys on the calibration the audit was fitted with: set_params after the fit
    # changes nothing (the fitted map is still sigmoid)
    unfitted = audit_findings_text(audit.set_params(calibration="isotonic"), width=10_000)
    assert "calibrated by isotonic regression" not in unfitted
    audit.fit_settings_ = {**audit.fit_settings_, "calibration": "isotonic"}  # as if fitted so
    stepped = audit_findings_text(audit, width=10_000)
    assert "calibrated by isotonic regression" in stepped and "--calibration spline" in stepped
    negative = verdicts["negative"]
    assert negative.startswith("The two models' cross-fitted residuals are negatively correlated")
    assert (
        f"Pearson {mirrored.loc['pearson', 'estimate']:.3f}" in negative and f"p {p})" in negative
    )
    assert "no sign, at this level" not in negative and "No positive" not in negative
    assert "no sign of a missing feature" in negative and "assumptions may not hold" in negative


def test_record_bags_keep_each_record_on_one_side_of_every_split():
    from interpret.glassbox import ExplainableBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from sklearn_distill.audit import _record_bags

    records = np.repeat(np.arange(200), 3)  # each record entered three times
    model = ExplainableBoostingClassifier(outer_bags=4, validation_size=0.15)
    bags = _record_bags(model, records, seed=0)
    assert bags.shape == (600, 4) and set(np.unique(bags)) == {-1, 1}
    for b in range(4):
        per_record = bags[:, b].reshape(200, 3)
        assert (per_record == per_record[:, :1]).all()  # a record's rows on one side
        assert (per_record[:, 0] == -1).sum() == 30  # 15% of the records held out to stop on
    assert not (bags[:, 0] == bags[:, 1]).all()  # each bag its own split
    np.testing.assert_array_equal(bags, _record_bags(model, records, seed=0))
    assert _record_bags(model, None, seed=0) is None
    assert _record_bags(LogisticRegression(), records, seed=0) is None
    assert _record_bags(model.set_params(validation_size=0), records, seed=0) is None


def test_the_outcome_model_stops_on_whole_records_in_every_fit(small, monkeypatch):
    # the full fit, each third of the cross-fitting and each stability refit hand the outcome
    # model records to keep together: the audit's groups, or a bootstrap sample's source rows
    import sklearn_distill.audit as audit_module

    X, y, s = small
    ids = np.arange(40) // 2  # every record entered twice
    seen = []
    original = audit_module._record_bags

    def recording(model, records, seed):
        if isinstance(model, ExplainableBoostingClassifier):  # the outcome model's calls
            seen.append(None if records is None else np.asarray(records).copy())
        return original(model, records, seed)

    monkeypatch.setattr(audit_module, "_record_bags", recording)
    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s, groups=ids)
    assert len(seen) == 1 + 3  # the full fit, then the three thirds of one cross-fit
    np.testing.assert_array_equal(seen[0], ids)
    assert all(r is not None and np.isin(r, ids).all() and len(r) < 40 for r in seen[1:])
    assert sorted(np.concatenate(seen[1:]).tolist()) == sorted(ids.tolist())
    seen.clear()
    audit.stability(X, y, teacher_scores=s, groups=ids, n_refits=2)
    assert len(seen) == 2 and all(np.isin(r, ids).all() for r in seen)
    seen.clear()
    plain = _tiny_ebm_audit().fit(X, y, teacher_scores=s)
    assert seen[0] is None  # no groups: interpret's own bags, results as before
    seen.clear()
    plain.stability(X, y, teacher_scores=s, n_refits=2)
    assert all(len(r) == 40 and r.max() < 40 for r in seen)  # the drawn rows themselves


def test_the_mimic_student_stops_on_whole_records_in_every_fit(monkeypatch):
    # the mimic's EBM student early-stops on held-out rows too: a record's copies (the audit's
    # groups, or a bootstrap sample's copies of a row) on both sides of that split let its
    # validation loss fall as it memorises them. Every student fit is spied on; a record is
    # told by its rows' values (each record's rows are copies of one row)
    rng = np.random.default_rng(8)
    base = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    ids = np.repeat(np.arange(30), 2)  # every record entered twice
    X = base.iloc[ids].reset_index(drop=True)
    s = (X["a"] + 0.5 * X["b"]).to_numpy()
    y = (rng.uniform(size=30) < 1 / (1 + np.exp(-s[::2]))).astype(int)[ids]
    calls = []
    original = ExplainableBoostingRegressor.fit

    def spy(self, X, y, sample_weight=None, bags=None, init_score=None):
        calls.append((np.asarray(X, dtype=float)[:, 0], bags))
        return original(self, X, y, sample_weight=sample_weight, bags=bags, init_score=init_score)

    monkeypatch.setattr(ExplainableBoostingRegressor, "fit", spy)

    def check_whole_records():
        assert calls
        for values, bags in calls:
            assert bags is not None and bags.shape == (len(values), 2)
            codes = pd.factorize(values)[0]
            assert codes.max() + 1 < len(values)  # the fit's rows hold copies
            for b in range(2):
                sides = pd.Series(bags[:, b]).groupby(codes).nunique()
                assert (sides == 1).all()  # each record's rows on one side of the split
                assert set(np.unique(bags[:, b])) == {-1, 1}
        calls.clear()

    audit = _tiny_ebm_audit().fit(X, y, teacher_scores=s, groups=ids)
    assert len(calls) == 1 + 3  # the full fit, then the three thirds of one cross-fit
    check_whole_records()
    audit.stability(X, y, teacher_scores=s, groups=ids, n_refits=2)
    check_whole_records()
    # no groups, on rows entered once each: interpret's own split by rows, the student
    # fitted as before; then a bootstrap sample's copies of a drawn row are kept together
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    s = (X["a"] + 0.5 * X["b"]).to_numpy()
    y = (rng.uniform(size=60) < 1 / (1 + np.exp(-s))).astype(int)
    plain = _tiny_ebm_audit().fit(X, y, teacher_scores=s)
    assert len(calls) == 4 and all(bags is None for _, bags in calls)
    calls.clear()
    plain.stability(X, y, teacher_scores=s, n_refits=2)
    check_whole_records()


def test_numbers_written_as_text_take_part_in_interaction_detection():
    # interpret reads the text column as continuous: the audit detects pairs with it as with
    # the numbers (it left every pair with it out, as a category of one level per row), and
    # says once that it reads the column as numbers
    rng = np.random.default_rng(13)
    n = 500
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n).round(3)})
    logit = X["a"] + 1.5 * X["a"] * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    text = X.assign(b=[repr(float(v)) for v in X["b"]])
    audits = []
    for frame in (X, text):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audits.append(
                _tiny_ebm_audit(interactions=1).fit(frame, y, teacher_scores=logit.to_numpy())
            )
        said = [w for w in caught if "holds numbers written as text" in str(w.message)]
        assert len(said) == (frame is text)
        assert all(w.filename == __file__ for w in said)
        assert not [w for w in caught if "is read as a categorical feature" in str(w.message)]
    assert audits[0].interaction_pairs_ == audits[1].interaction_pairs_ == [("a", "b")]


def test_missing_feature_adjustment_reads_text_numbers_as_the_models_do():
    # the adjustment's polynomial takes a column of numbers written as text, "nan" cells as
    # missing, as the mimic and the outcome model read it: the test equals the one on floats
    # (the column was left out of the adjustment when any cell read as missing)
    rng = np.random.default_rng(5)
    n = 300
    b = rng.normal(size=n).round(3)
    b[::7] = np.nan
    X = pd.DataFrame({"a": rng.normal(size=n), "b": b})
    logit = X["a"] + np.nan_to_num(X["b"]) ** 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    text = X.assign(b=[repr(float(v)) for v in X["b"]])
    assert (text["b"] == "nan").sum() == np.isnan(b).sum() > 0
    results = []
    for frame in (X, text):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit = _tiny_ebm_audit().fit(frame, y, teacher_scores=logit.to_numpy())
        results.append(audit.missing_feature_test(n_bootstrap=50))
    pd.testing.assert_frame_equal(results[0], results[1])


def test_the_report_marks_only_the_rank_rows_as_no_test():
    from sklearn_distill.report import _test_table

    test = pd.DataFrame(
        {
            "estimate": [0.1, 0.1, 0.07],
            "low": [0.05, 0.05, 0.03],
            "high": [0.15, 0.15, 0.1],
            "p_value": [np.nan, np.nan, np.nan],  # a Pearson p-value that could not be had
            "n_bootstrap": [100, 100, 100],
        },
        index=["pearson", "spearman", "kendall"],
    )
    assert _test_table(test)["p-value"].tolist() == ["", "not a test", "not a test"]


def test_the_missing_score_advice_fits_two_class_columns_and_infinite_scores():
    # the mask the advice offers must select rows: one per row for two class columns (a 2-D
    # mask would silently pick cells); an infinite score is no missing one
    from sklearn_distill._teacher import check_scores

    two = np.array([[0.2, 0.8], [0.5, np.nan], [0.3, 0.7], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"keep = np\.isfinite\(teacher_scores\)\.all\(axis=1\)"):
        check_scores(two, 4)
    with pytest.raises(ValueError, match="An infinite score is no missing one") as caught:
        check_scores(np.array([0.1, np.inf, 0.3, 0.4]), 4)
    assert "Leave out the rows" not in str(caught.value)


def _thin_levels_world(n=600, n_levels=60):
    # nothing missing: the score is the true log-odds of a number and a category of many
    # levels (10 rows each at 600 rows, about 3 in a third), which models fitted on a third
    # cannot learn: both models miss them alike
    rng = np.random.default_rng(0)
    codes = np.arange(n) % n_levels
    X = pd.DataFrame({"a": rng.normal(size=n), "zip": pd.Categorical([f"z{c:02d}" for c in codes])})
    logit = 0.8 * X["a"].to_numpy() + rng.normal(size=n_levels)[codes]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, logit


def test_the_adjustment_holds_every_level_of_a_category_of_thin_levels(monkeypatch):
    # levels too thin for models fitted on a third to learn leave the same misfit in both
    # models' residuals, which the test would read as a missing feature (an 80-level category
    # at 1,200 rows, the score the true log-odds: correlation 0.26-0.31, p at its floor, in 3
    # of 3 seeds while the adjustment held one column per ten rows); every level of two rows
    # or more in the third now has its indicator, so each level's adjusted residuals sum to 0
    from sklearn_distill.audit import _adjustment_basis, unadjusted_levels

    X, y, logit = _thin_levels_world()
    third = X.iloc[:200]
    records = {}
    basis = _adjustment_basis(third, 200, left_out=records)
    # every level held, those of one row too (a few rows alone in their level: their
    # residuals are zeroed); the intercept holds the most frequent
    eligible = third["zip"].nunique() - 1
    assert records == {"zip": [(eligible, eligible, 0, 200)]}
    assert unadjusted_levels(records) == {}
    # beside 1, a and a's square, and a's spline: 9 knots (one per 20 rows of 200, less one)
    assert basis.shape[1] == 3 + eligible + 9
    import sklearn_distill.audit as audit_module

    seen = []  # the splits the fit adjusted within (its three-way splits of the rows)
    adjusted_pairs = audit_module._adjusted_pairs

    def recording(X, splits, *args, **kwargs):
        seen.extend(splits)
        return adjusted_pairs(X, splits, *args, **kwargs)

    monkeypatch.setattr(audit_module, "_adjusted_pairs", recording)
    audit = _small_audit(cv=2, n_crossfits=1).fit(X, y, teacher_scores=logit)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*could not hold an indicator")
        audit.missing_feature_test(n_bootstrap=40)
    adjusted_mimic, adjusted_outcome = audit._test_residuals
    codes = X["zip"].cat.codes.to_numpy()
    checked = 0
    for rows in seen[0]:
        rows = np.asarray(rows)
        # the third's most frequent level (the first of them, in row order) is the intercept's
        order = pd.factorize(codes[rows])[0]
        reference = codes[rows][np.argmax(order == np.argmax(np.bincount(order)))]
        for level in np.unique(codes[rows]):
            members = rows[codes[rows] == level]
            if level != reference:
                for adjusted in (adjusted_mimic, adjusted_outcome):
                    assert abs(adjusted[0][:, members].sum(axis=1)).max() < 1e-8
                checked += 1
    assert checked > 150


def test_missing_feature_test_warns_of_rows_alone_in_their_level_in_a_third(tmp_path):
    # a record identifier of two rows each: in a third, about two rows in three are alone in
    # their level; holding those levels would zero most rows, so they get no column, and both
    # models miss the levels alike (a category of three rows a level, 44% of the rows alone,
    # read 0.28-0.31 on a null world, p at its floor, without a word)
    from sklearn_distill.audit import _adjustment_basis, unadjusted_levels

    rng = np.random.default_rng(1)
    n = 600
    codes = rng.permutation(np.arange(n) // 2)
    X = pd.DataFrame({"a": rng.normal(size=n), "pair": pd.Categorical([f"p{c}" for c in codes])})
    logit = 0.8 * X["a"].to_numpy() + rng.normal(size=n // 2)[codes]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    records = {}
    for rows in (np.arange(0, 200), np.arange(200, 400)):
        _adjustment_basis(X.iloc[rows], 200, left_out=records)
    counts = [X["pair"].iloc[rows].value_counts() for rows in (range(200), range(200, 400))]
    shares = [float((c == 1).sum()) / 200 for c in counts]
    eligible = [int((c > 1).sum()) - 1 for c in counts]
    assert min(shares) > 0.5
    # the levels of two rows are held; the rows alone in theirs are what is said
    assert unadjusted_levels(records) == {
        "pair": (eligible[0], eligible[0], pytest.approx(np.mean(shares)))
    }
    audit = _small_audit(cv=2, n_crossfits=1).fit(X, y, teacher_scores=logit)
    with pytest.warns(
        UserWarning, match=r"'pair' \(\d+\.\d% of a third's rows alone in their level\)"
    ):
        audit.missing_feature_test(n_bootstrap=40)
    page = tmp_path / "report.html"
    audit.report(page)
    html = page.read_text(encoding="utf-8")
    assert "alone in their level" in html
    # the test finds a "missing feature" here (nothing is missing), and the finding itself
    # says it is inconclusive, not only the caveat below it
    assert audit.missing_feature_test_.loc["pearson", "p_value"] < 0.05
    assert "Here it is inconclusive: the test&#x27;s adjustment could not hold" in html


def test_missing_feature_test_warns_when_its_adjustment_cannot_hold_every_level(
    tmp_path, monkeypatch
):
    # the level indicators are capped (the fit's cost grows with their square): levels left
    # without one are named, by a warning and in the report, as what makes a positive verdict
    # inconclusive
    import sklearn_distill.audit as audit_module

    X, y, logit = _thin_levels_world()
    monkeypatch.setattr(audit_module, "_MAX_LEVEL_COLUMNS", 17)
    third = X.iloc[:200]
    records = {}
    basis = audit_module._adjustment_basis(third, 200, left_out=records)
    eligible = int((third["zip"].value_counts() > 1).sum()) - 1
    alone = int((third["zip"].value_counts() == 1).sum())
    assert basis.shape[1] == 3 + 17 + 9  # a's spline: 9 knots, as above
    assert audit_module.unadjusted_levels(records) == {"zip": (17, eligible, alone / 200)}
    audit = _small_audit(cv=2, n_crossfits=1).fit(X, y, teacher_scores=logit)
    with pytest.warns(UserWarning, match=r"could not hold every level of 'zip' \(17 of"):
        audit.missing_feature_test(n_bootstrap=40)
    page = tmp_path / "report.html"
    audit.report(page)
    assert "could not hold every level of" in page.read_text(encoding="utf-8")


def test_a_pure_identifier_is_not_warned_of_as_levels_left_out():
    # every row alone in its level in every third (a row id): neither model can learn it,
    # so nothing is shared; a record id of two rows each is warned of (above)
    from sklearn_distill.audit import _adjustment_basis, unadjusted_levels

    X = pd.DataFrame({"a": np.arange(300.0), "id": [f"r{i}" for i in range(300)]})
    records = {}
    for rows in (np.arange(0, 100), np.arange(100, 200)):
        basis = _adjustment_basis(X.iloc[rows], 100, left_out=records)
        # 1, a and a's square and a's spline of 4 knots (100 rows): no level of the ids held
        assert basis.shape[1] == 3 + 4
    assert records["id"][0][2] == 100  # every row alone in its level
    assert unadjusted_levels(records) == {}


def test_adjustment_holds_a_levels_effect_times_the_prediction():
    # Both models miss a level's effect on scales that vary with the predicted log-odds (the
    # outcome model by p (1 - p) times its log-odds miss, the mimic through its calibration's
    # slope): a shared misfit of the level's effect times a function of the prediction, which
    # the level's indicator, constant within the level, cannot hold. The adjustment also holds
    # the level's mean of the mimic's residual times the prediction and its square.
    from sklearn_distill.audit import _adjust, _adjusted_pairs, _adjustment_basis

    rng = np.random.default_rng(3)
    n = 900
    thirds = [np.arange(t, n, 3) for t in range(3)]
    codes = rng.integers(60, size=n)
    effect = rng.normal(size=60)[codes]
    X = pd.DataFrame({"x": rng.normal(size=n), "c": pd.Categorical(codes)})
    prediction = X["x"].to_numpy() + effect
    slope = 4 / (1 + np.exp(-prediction)) / (1 + np.exp(prediction))  # 4 p (1 - p)
    mimic = (0.3 * effect * slope + 0.05 * rng.normal(size=(2, n)))[None]
    outcome = (0.3 * effect * slope + 0.1 * rng.normal(size=(2, n)))[None]
    target = mimic + prediction
    adjusted_mimic, adjusted_outcome, _ = _adjusted_pairs(X, [thirds], mimic, outcome, target)

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))

    unheld = np.empty((2, 2, n))  # the level indicators, the polynomial and x's spline alone
    for rows in thirds:
        basis = _adjustment_basis(X.iloc[rows], len(rows), prediction[rows])
        unheld[:, :, rows] = _adjust(basis, np.stack([mimic[0][:, rows], outcome[0][:, rows]]))
        # each pair's adjusted residuals are orthogonal to the mean of its own mimic's
        # residual over the level's other rows (0 for a row alone) times the standardised
        # prediction and its square
        z = (prediction[rows] - prediction[rows].mean()) / prediction[rows].std()
        for pair in range(2):
            own = pd.Series(mimic[0][pair, rows])
            level = own.groupby(codes[rows])
            others = level.transform("count").to_numpy() - 1
            level_mean = np.where(
                others > 0, (level.transform("sum").to_numpy() - own.to_numpy()) / others, 0.0
            )
            for column in (level_mean * z, level_mean * z * z):
                for adjusted in (adjusted_mimic, adjusted_outcome):
                    np.testing.assert_allclose(adjusted[0][pair, rows] @ column, 0, atol=1e-8)
    # the shared misfit, left by the indicators (0.18; with x's spline, which holds a part
    # of p (1 - p) along x, as before it)
    assert pearson(*unheld) > 0.15
    assert abs(pearson(adjusted_mimic[0], adjusted_outcome[0])) < 0.1


@pytest.mark.parametrize(
    ("groups", "given"),
    [
        (np.arange(40)[:, None] % 10, r"an array of shape \(40, 1\)"),
        (pd.DataFrame({"case": np.arange(40) % 10}), r"an array of shape \(40, 1\)"),
        ([[k, k + 1] for k in range(20)] + [[k] for k in range(20)], "a ragged nested sequence"),
        (7, "7"),
    ],
    ids=["column", "frame", "ragged", "scalar"],
)
def test_groups_of_another_shape_are_refused_naming_the_shape_not_the_values(groups, given):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40)})
    y, s = np.arange(40) % 2, rng.normal(size=40)
    audit = _tiny_ebm_audit()
    # a one-line message whatever the number of rows (the values had been printed, or numpy's
    # "inhomogeneous shape" raised for a ragged sequence)
    with pytest.raises(
        TypeError,
        match=rf"^groups must be a 1-D array-like of 40 record identifiers; got {given}\.$",
    ):
        audit.fit(X, y, teacher_scores=s, groups=groups)
