"""Calibration of the score: a falling score is mapped by a decreasing function (never
flattened), and the smooth monotone spline calibration."""

import warnings

import numpy as np
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from scipy.special import expit
from scipy.stats import spearmanr

from sklearn_distill import CompareAudit, DistilledGAM
from sklearn_distill._calibration import (
    SplineCalibrator,
    calibration_direction,
    cross_fit_calibration,
)
from tests.helpers import small_audit


def _world(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    logit = 1.5 * X[:, 0] - X[:, 1]
    y = (rng.uniform(size=n) < expit(logit)).astype(int)
    return X, y, logit


@pytest.mark.parametrize("method", ["isotonic", "sigmoid", "temperature", "spline"])
def test_a_falling_score_is_calibrated_reversed(method):
    _, y, logit = _world()
    safety = np.round(-logit, 1)  # high = safe: falls as the outcome becomes likelier
    with pytest.warns(UserWarning, match="score falls"):
        falling, calibrator = cross_fit_calibration(safety, y, method, 3, random_state=0)
    assert calibration_direction(calibrator) == -1
    # the same as calibrating the mirrored (rising) score, which needs no reversal
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        rising, mirrored = cross_fit_calibration(-safety, y, method, 3, random_state=0)
    assert calibration_direction(mirrored) == 1
    # (up to the tolerance of the iterative fits of the logistic maps)
    np.testing.assert_allclose(falling, rising, atol=1e-4)
    grid = np.linspace(safety.min(), safety.max(), 50).reshape(-1, 1)
    assert np.all(np.diff(calibrator.predict_proba(grid)[:, 1]) <= 1e-12)
    # far from flat: the calibrated probability follows the truth
    assert np.corrcoef(falling, expit(logit))[0, 1] > 0.95


@pytest.mark.parametrize("method", ["isotonic", "temperature", "spline"])
def test_a_score_unrelated_to_y_is_not_read_as_falling(method):
    # the sign of the rank correlation alone read an uninformative score as falling in about
    # half of the draws (and reversed every shape of the mimic); a weak fall is read as a risk
    # score, with a warning that says the fall is not clear
    reversed_count, weak_warnings = 0, 0
    for seed in range(24):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, size=300)
        score = rng.normal(size=300)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, calibrator = cross_fit_calibration(score, y, method, 3, random_state=0)
        reversed_count += calibration_direction(calibrator) == -1
        weak_warnings += any("only weakly" in str(w.message) for w in caught)
        rho = spearmanr(score, y).statistic
        assert any("only weakly" in str(w.message) for w in caught) == (
            rho < 0 and calibration_direction(calibrator) == 1
        )
    assert reversed_count <= 2  # p < 0.01 two-sided, negative: 0.12 expected in 24 draws
    assert 5 <= weak_warnings <= 19  # about half of the draws fall a little


def test_distilled_gam_mimics_a_falling_score():
    X, y, logit = _world()
    student = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=300, learning_rate=0.3, interactions=0, max_bins=64, n_jobs=1
    )
    with pytest.warns(UserWarning, match="score falls"):
        gam = DistilledGAM(calibration="isotonic", student=student, random_state=0, cv=3)
        gam.fit(X, y, teacher_scores=-logit)
    # the mimic is not flattened: it reproduces the calibrated log-odds (increasing in risk)
    assert gam.fidelity(X, -logit)["r2"] > 0.9
    assert np.corrcoef(gam.predict(X), logit)[0, 1] > 0.95


def test_spline_calibration_is_smooth_monotone_and_close_to_the_truth():
    rng = np.random.default_rng(1)
    score = rng.uniform(-3, 3, size=6000)
    truth = expit(0.8 * score + 0.3 * np.sin(score))  # monotone: slope 0.8 - 0.3 > 0
    y = (rng.uniform(size=score.size) < truth).astype(int)
    calibrator = SplineCalibrator().fit(score, y)
    grid = np.linspace(-3, 3, 400)
    fitted = calibrator.predict_proba(grid)[:, 1]
    assert np.all(np.diff(fitted) >= -1e-12)
    assert np.max(np.abs(fitted - expit(0.8 * grid + 0.3 * np.sin(grid)))) < 0.05
    # two distinct values (a fold of a score with a rare third value): the logistic map,
    # which passes through both observed rates; one value refused
    two = SplineCalibrator().fit(np.array([0.0, 1.0] * 10 + [1.0] * 4), [0, 1] * 10 + [0] * 4)
    np.testing.assert_allclose(
        two.predict_proba(np.array([0.0, 1.0]))[:, 1], [0, 10 / 14], atol=1e-3
    )
    with pytest.raises(ValueError, match="at least 2 distinct values; got 1"):
        SplineCalibrator().fit(np.zeros(10), np.array([0, 1] * 5))
    three = SplineCalibrator().fit(np.tile([0.0, 1.0, 2.0], 30), np.tile([0, 0, 1], 30))
    assert np.all(np.diff(three.predict_proba(np.array([0.0, 1.0, 2.0]))[:, 1]) >= 0)


@pytest.mark.parametrize("sign", [1, -1], ids=["rising", "falling"])
def test_spline_calibration_keeps_its_direction_against_the_data(sign):
    # a score read in one direction (a weak fall read as a risk score) whose rows go the other
    # way: the map stays monotone in the direction read; the maximum-likelihood logistic map
    # a + b score with sign * b >= 0 (an independent fit) is then flat, at the overall rate
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    score = rng.normal(size=300)
    y = (rng.uniform(size=score.size) < expit(-sign * 0.4 * score)).astype(int)
    calibrator = SplineCalibrator(sign=sign).fit(score, y)
    grid = np.linspace(score.min(), score.max(), 200)
    fitted = calibrator.predict_proba(grid)[:, 1]
    assert np.all(sign * np.diff(fitted) >= -1e-12)

    def deviance(ab):
        logit = ab[0] + ab[1] * score
        return np.sum(np.logaddexp(0, logit) - y * logit)

    bounds = [(None, None), (0, None) if sign > 0 else (None, 0)]
    a, b = minimize(deviance, [0.0, 0.0], bounds=bounds, method="L-BFGS-B").x
    np.testing.assert_allclose(fitted, expit(a + b * grid), atol=1e-4)


def test_audit_accepts_spline_calibration():
    X, y, logit = _world(n=600)
    small = {"outer_bags": 2, "max_rounds": 100, "max_bins": 16, "n_jobs": 1}
    from interpret.glassbox import ExplainableBoostingClassifier

    def spline_audit():
        return CompareAudit(
            calibration="spline",
            interactions=0,
            cv=2,
            random_state=0,
            student=ExplainableBoostingRegressor(**small, learning_rate=0.3),
            outcome=ExplainableBoostingClassifier(**small, learning_rate=0.05),
        )

    audit = spline_audit().fit(X, y, teacher_scores=logit)
    assert isinstance(audit.mimic_.calibrator_, SplineCalibrator)
    curve = audit.calibration_curve_["probability"].to_numpy()
    assert np.all(np.diff(curve) >= -1e-12)
    with pytest.raises(ValueError, match="at least 3 distinct values; got 2"):
        CompareAudit(calibration="spline", cv=2).fit(X, y, teacher_scores=(logit > 0) * 1.0)
    # three values, one of them rare: some thirds of the cross-fitting hold two; the audit
    # runs (it refused, saying the score had 2 values)
    rare = (logit > 0) * 1.0
    rare[:3] = 2.0
    audit = spline_audit().fit(X, y, teacher_scores=rare)
    assert isinstance(audit.mimic_.calibrator_, SplineCalibrator)
    assert np.isfinite(audit.missing_feature_test(n_bootstrap=20)["estimate"]).all()


def test_a_calibration_map_that_misses_the_observed_rates_is_warned_about():
    # deciles of the log-odds: 'temperature' only rescales them (a logistic map of slope
    # fixed at the origin cannot pass through rates from 0.1 to 0.9); isotonic follows them
    X, y, logit = _world(n=2000)
    deciles = np.searchsorted(np.quantile(logit, np.linspace(0, 1, 11)[1:-1]), logit) + 1.0
    with pytest.warns(UserWarning, match=r"calibration map \(calibration='temperature'\) misses"):
        small_audit("temperature").fit(X, y, teacher_scores=deciles)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*isotonic calibration puts.*")
        small_audit("isotonic").fit(X, y, teacher_scores=deciles)
        small_audit("temperature").fit(X, y, teacher_scores=logit)  # a log-odds: no warning


def test_binned_rate_sets_a_predicted_probability_beside_each_observed_rate():
    from sklearn_distill.stats import binned_rate

    score = np.repeat([1.0, 2.0, 3.0], 4)
    y = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1])
    predicted = np.linspace(0.1, 0.9, 12)
    table = binned_rate(score, y, n_bins=5, predicted=predicted)
    np.testing.assert_allclose(table["rate"], [0.25, 0.5, 1.0])
    np.testing.assert_allclose(table["predicted"], predicted.reshape(3, 4).mean(axis=1))
    assert "predicted" not in binned_rate(score, y, n_bins=5).columns


def test_a_score_taken_as_given_that_scores_the_other_label_is_warned_about():
    # y's labels sort the event of interest first ("recid" < "safe"): calibration=None reads
    # the score as the log-odds of classes_[1] = "safe", so a score of "recid" is compared with
    # the wrong sign on every shape; it falls as P(y = "safe") rises, which the audit says
    X, y, logit = _world(n=600)
    labels = np.where(y == 1, "recid", "safe")
    for response, score in (("auto", logit), ("predict_proba", expit(logit))):
        with pytest.warns(
            UserWarning, match=r"falls as P\(y = 'safe'\) rises.*If it scores 'recid'"
        ):
            small_audit(None).set_params(response=response).fit(X, labels, teacher_scores=score)
    # the score of classes_[1] itself, or one unrelated to y (it falls by chance half the
    # time): no such warning
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        small_audit(None).fit(X, labels, teacher_scores=-logit)
        for seed in range(5):
            noise = np.random.default_rng(seed).normal(size=len(logit))
            small_audit(None).fit(X, labels, teacher_scores=noise)


def _weakly_falling_world(seed, n=900):
    # a score that falls as the outcome becomes likelier, weakly: p near 0.01 on 900 rows
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (rng.uniform(size=n) < expit(X[:, 0])).astype(int)
    return X, y, -(0.25 * X[:, 0] + rng.normal(size=n))


def test_an_audit_reads_the_score_in_one_direction_in_every_refit(monkeypatch):
    # the direction is decided once on all rows: the thirds of the missing-feature test and the
    # stability refits, with less power, read a clearly (but weakly) falling score as rising in
    # a quarter to three quarters of their calibrations, and isotonic flattened their target
    import sklearn_distill.gam as gam_module

    X, y, score = _weakly_falling_world(seed=3)
    rho, p_value = spearmanr(score, y)
    assert rho < 0 and p_value < 0.01  # falls clearly on all rows
    signs = []
    original = gam_module.cross_fit_calibration

    def recording(*args, **kwargs):
        probability, calibrator = original(*args, **kwargs)
        signs.append(calibration_direction(calibrator))
        return probability, calibrator

    monkeypatch.setattr(gam_module, "cross_fit_calibration", recording)
    student = ExplainableBoostingRegressor(outer_bags=2, max_rounds=50, interactions=0, n_jobs=1)
    audit = CompareAudit(
        student=student, random_state=0, n_jobs=1, interactions=0, n_crossfits=1, cv=3
    )
    with pytest.warns(UserWarning, match="score falls"):
        audit.fit(X, y, teacher_scores=score)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.stability(X, y, teacher_scores=score, n_refits=2)
    assert len(signs) == 1 + 3 + 2 and set(signs) == {-1}


def test_a_sigmoid_calibration_names_the_direction_its_fitted_slope_takes():
    # Platt's slope follows the data whatever the sign; a weak fall (p >= 0.01) was named
    # "rising" while the fitted map decreased
    _, y, score = _weakly_falling_world(seed=0)
    rho, p_value = spearmanr(score, y)
    assert rho < 0 and p_value >= 0.01  # a weak fall
    with pytest.warns(UserWarning, match="score falls"):
        _, calibrator = cross_fit_calibration(score, y, "sigmoid", 3, random_state=0)
    grid = np.linspace(score.min(), score.max(), 5).reshape(-1, 1)
    probability = calibrator.predict_proba(grid)[:, 1]
    assert probability[-1] < probability[0]  # the fitted map decreases
    assert calibration_direction(calibrator) == -1


def test_a_one_curve_calibration_of_a_non_logistic_score_is_warned_about():
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from sklearn_distill._calibration import parametric_form_p_value

    rng = np.random.default_rng(0)
    n = 1200
    X = rng.normal(size=(n, 3))
    g = 0.8 * X[:, 0] - 0.6 * np.abs(X[:, 1]) + 0.4 * X[:, 2]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-g))).astype(int)
    cubic = g**3 + g  # ranks the rows exactly by risk, but is no line in log-odds
    # the test: a monotone map gains more deviance over the curve than it would by chance
    assert parametric_form_p_value(cubic, y, "sigmoid", 1, 199, seed=0) <= 0.01
    assert parametric_form_p_value(2 * g - 1, y, "sigmoid", 1, 199, seed=0) > 0.05
    assert parametric_form_p_value(g, y, "temperature", 1, 199, seed=0) > 0.05
    fast = {"student": LinearRegression(), "outcome": LogisticRegression(), "cv": 2}
    with pytest.warns(UserWarning, match=r"is one curve in log-odds, and the score's relation"):
        CompareAudit(**fast, calibration="sigmoid").fit(X, y, teacher_scores=cubic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CompareAudit(**fast, calibration="sigmoid").fit(X, y, teacher_scores=2 * g - 1)
    assert not [w for w in caught if "one curve in log-odds" in str(w.message)]


@pytest.mark.parametrize(
    ("method", "shift", "factor"),
    [
        ("sigmoid", 1e4, 1.0),
        ("sigmoid", 0.0, 1e-6),
        ("sigmoid", 0.0, 1e9),
        ("temperature", 0.0, 1e-6),
    ],
)
def test_the_one_curve_check_reads_a_score_in_any_units(method, shift, factor):
    # a line a + b score is the same line of any shift and multiple of the score (temperature
    # scaling's b score of any multiple): the form check's p-value is the same, and the line
    # of a score of 1e4 + s or 1e-6 s had stopped flat, its p-value the smallest reachable
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from sklearn_distill._calibration import parametric_form_p_value

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    score = X[:, 0] - 0.5 * X[:, 1]
    logit = 1.2 * score - (0.5 if method == "sigmoid" else 0.0)
    y = (rng.uniform(size=score.size) < expit(logit)).astype(int)
    unit = parametric_form_p_value(score, y, method, 1, 49, seed=0)
    moved = parametric_form_p_value(shift + factor * score, y, method, 1, 49, seed=0)
    assert unit > 0.1
    assert moved == pytest.approx(unit, abs=0.03)
    if shift:  # the audit that runs the check does not warn of the score's units
        fast = {"student": LinearRegression(), "outcome": LogisticRegression(), "cv": 2}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            CompareAudit(**fast, calibration=method).fit(X, y, teacher_scores=shift + score)
        assert not [w for w in caught if "one curve in log-odds" in str(w.message)]


@pytest.mark.parametrize("factor", [1e-9, 1e9])
def test_a_sigmoid_calibration_reads_a_score_at_any_scale(factor):
    # the logistic map a + b score is the same map of any multiple of the score: a score in
    # units of 1e-9 had been mapped to a constant (its slope beyond the solver's reach)
    rng = np.random.default_rng(5)
    score = rng.normal(size=600)
    y = (rng.uniform(size=score.size) < expit(2 * score - 0.5)).astype(int)
    unit, _ = cross_fit_calibration(score, y, "sigmoid", 3, random_state=0)
    scaled, _ = cross_fit_calibration(factor * score, y, "sigmoid", 3, random_state=0)
    assert np.ptp(unit) > 0.5
    np.testing.assert_allclose(scaled, unit, atol=1e-6)


@pytest.mark.parametrize("factor", [1e-200, 1e-9, 1e9, 1e200])
@pytest.mark.parametrize("method", ["isotonic", "temperature", "spline"])
def test_every_calibration_reads_a_score_at_any_scale(method, factor):
    # each map is the same map of any positive multiple of the score (isotonic reads its order
    # only): isotonic had pooled a score of 1e-200 into one step, temperature scaling had
    # saturated or flattened at 1e9 and 1e-9, the spline had come out flat at 1e+-200
    rng = np.random.default_rng(5)
    score = rng.normal(size=600)
    y = (rng.uniform(size=score.size) < expit(2 * score - 0.5)).astype(int)
    unit, fitted = cross_fit_calibration(score, y, method, 3, random_state=0)
    scaled, refitted = cross_fit_calibration(factor * score, y, method, 3, random_state=0)
    assert np.ptp(unit) > 0.5
    np.testing.assert_allclose(scaled, unit, atol=1e-3)
    np.testing.assert_allclose(
        refitted.predict_proba((factor * score).reshape(-1, 1)),
        fitted.predict_proba(score.reshape(-1, 1)),
        atol=1e-3,
    )


def test_a_probability_score_is_read_in_the_direction_its_calibration_reads_it():
    # 400 probabilities below the clip (1e-4) falling with the event, 200 in 0.2-0.8 rising
    # with it: read as given the score falls clearly, while the calibration reads clipped
    # log-odds, where the 400 tie and only the rise is left. The audit decided on the former
    # and fitted the calibration reversed on the latter: a map flat over the rows it could
    # tell apart, and a warning of a fall the calibration does not see
    from interpret.glassbox import ExplainableBoostingRegressor

    from sklearn_distill._calibration import calibrated_probability, score_trend

    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    low = np.arange(n) < 400
    p = np.empty(n)
    p[low] = np.where(y[low] == 1, rng.uniform(1e-7, 3e-5, 400), rng.uniform(5e-5, 9e-5, 400))
    p[~low] = np.clip(0.5 + 0.2 * (2 * y[~low] - 1) + rng.uniform(-0.1, 0.1, 200), 0.2, 0.8)
    X = rng.normal(size=(n, 2))
    rho, p_value = score_trend(p, y)
    assert rho < -0.3 and p_value < 1e-10  # read as given: a clear fall
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        audit = small_audit("isotonic").set_params(response="predict_proba")
        audit.fit(X, y, teacher_scores=p)
        # a mimic alone decides on its calibration's input: the audit now agrees with it
        student = ExplainableBoostingRegressor(
            outer_bags=2, max_rounds=100, max_bins=16, n_jobs=1, learning_rate=0.3
        )
        gam = DistilledGAM(
            response="predict_proba", calibration="isotonic", cv=2, student=student,
            random_state=0,
        ).fit(X, y, teacher_scores=p)  # fmt: skip
    assert audit._score_sign_ == 1 == calibration_direction(audit.mimic_.calibrator_)
    assert calibration_direction(gam.calibrator_) == 1
    # the calibrated probability rises over the rows the clip leaves apart (it was flat)
    mimic = audit.mimic_
    values = mimic._calibration_input(p[~low])
    calibrated = calibrated_probability(mimic.calibrator_, values, mimic.n_calibration_)
    assert spearmanr(calibrated, p[~low]).statistic > 0.5
    assert calibrated[y[~low] == 1].mean() > calibrated[y[~low] == 0].mean() + 0.2
