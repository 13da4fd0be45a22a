import warnings

import numpy as np
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.isotonic import IsotonicRegression

from sklearn_distill import DistilledGAM
from sklearn_distill._calibration import fit_calibrator


class DuckTypedScorer:
    """A teacher with predict() that does not inherit scikit-learn's BaseEstimator."""

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        return 2.0 * X[:, 0] - X[:, 1]


def small_student():
    return ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=200, interactions=0, random_state=0
    )


def test_duck_typed_teacher_is_queried_with_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    teacher = DuckTypedScorer()
    gam = DistilledGAM(teacher, student=small_student(), random_state=0).fit(X)
    assert gam.response_ == "predict"
    assert gam.fidelity(X)["r2"] > 0.9


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("n_positive", [2, 3])
def test_calibrator_fits_with_few_positives_without_warnings(method, n_positive):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=60)
    y = np.zeros(60, dtype=int)
    y[np.argsort(scores)[-n_positive:]] = 1  # positives at the highest scores
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrator = fit_calibrator(scores, y, method)
    probability = calibrator.predict_proba(scores.reshape(-1, 1))[:, 1]
    if method == "isotonic":
        # one calibrator fitted on all rows: equal to an isotonic fit of y on the score
        expected = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, y)
        np.testing.assert_allclose(probability, expected.predict(scores), atol=1e-12)
    else:
        assert np.all(np.diff(probability[np.argsort(scores)]) >= -1e-12)  # monotone


def test_calibration_with_too_few_rows_of_a_class_names_y_and_cv():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    y = np.zeros(60, dtype=int)
    y[:2] = 1
    with pytest.raises(
        ValueError, match=r"cv=5 .*y needs at least 5 rows of each class; class 1 has 2"
    ):
        DistilledGAM(calibration="sigmoid", student=small_student()).fit(
            X, y, teacher_scores=X[:, 0]
        )
