"""A fitted teacher through scikit-learn's clone: GridSearchCV over the teacher and over the
student's settings, cross_validate, and the error an unfitted copy of a teacher gets."""

import pickle

import numpy as np
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from sklearn_distill import DistilledGAM, DistilledTree

#: Each model with small settings and a grid over one of its own hyper-parameters.
MODELS = {
    "gam": (
        DistilledGAM,
        lambda: {
            "student": ExplainableBoostingRegressor(
                outer_bags=2, max_rounds=100, interactions=0, max_bins=16, n_jobs=1, random_state=0
            )
        },
        {"student__max_bins": [4, 16]},
    ),
    "tree": (DistilledTree, lambda: {"random_state": 0}, {"max_leaf_nodes": [2, 8]}),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=300) > 0).astype(int)
    linear = LogisticRegression().fit(X, y)
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    return X, y, linear, forest


@pytest.mark.parametrize("kind", MODELS)
def test_grid_search_over_frozen_teachers_and_a_setting(kind, data):
    X, y, linear, forest = data
    model, params, grid = MODELS[kind]
    before = {t: t.predict_proba(X) for t in (linear, forest)}
    teachers = [FrozenEstimator(linear), FrozenEstimator(forest)]
    search = GridSearchCV(
        model(teachers[0], **params()), {"teacher": teachers, **grid}, cv=2, error_score="raise"
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    # the best model distils one of the fitted teachers given, unchanged and not refitted
    frozen = search.best_params_["teacher"]
    assert best.teacher is frozen and frozen.estimator in (linear, forest)
    np.testing.assert_array_equal(best.teacher.predict_proba(X), before[frozen.estimator])
    for teacher, proba in before.items():
        np.testing.assert_array_equal(teacher.predict_proba(X), proba)
    # scored by fidelity to the best teacher, as the model's own score reads it
    assert best.score(X) == pytest.approx(best.fidelity(X)["r2"])
    params = best.get_params(deep=True)
    assert params["teacher"] is frozen and not any(k.startswith("teacher__") for k in params)
    restored = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(restored.predict(X), best.predict(X))
    np.testing.assert_array_equal(restored.teacher.predict_proba(X), before[frozen.estimator])


@pytest.mark.parametrize("kind", MODELS)
def test_cross_validate_with_a_frozen_teacher(kind, data):
    X, y, linear, _ = data
    model, params, _ = MODELS[kind]
    frozen = cross_validate(
        model(FrozenEstimator(linear), **params()), X, y, cv=2, return_estimator=True
    )
    plain = cross_validate(model(linear, **params()), X, y, cv=2)
    # the same teacher read the same way: the same fidelity on each held-out fold
    np.testing.assert_allclose(frozen["test_score"], plain["test_score"])
    for fitted in frozen["estimator"]:
        assert fitted.teacher.estimator is linear
        np.testing.assert_array_equal(fitted.teacher.predict_proba(X), linear.predict_proba(X))


UNFITTED_COPY = (
    r"teacher LogisticRegression is not fitted: .*If it was fitted, a copy reached the fit: "
    r"scikit-learn's clone \(used by GridSearchCV, cross_validate and clone itself\) refits "
    r"nothing and hands over an unfitted copy .*\{'teacher': \[\.\.\.\]\}.* Wrap each fitted "
    r"teacher as FrozenEstimator\(teacher\) \(from sklearn\.frozen\).*teacher_scores\."
)


@pytest.mark.parametrize("kind", MODELS)
def test_a_grid_over_plain_teachers_names_the_clone_and_the_way_out(kind, data):
    X, y, linear, forest = data
    model, params, _ = MODELS[kind]
    coef = linear.coef_.copy()
    search = GridSearchCV(
        model(linear, **params()), {"teacher": [linear, forest]}, cv=2, error_score="raise"
    )
    with pytest.raises(NotFittedError, match=UNFITTED_COPY) as caught:
        search.fit(X, y)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError, match=UNFITTED_COPY):
        model(clone(linear), **params()).fit(X)
    np.testing.assert_array_equal(linear.coef_, coef)  # nothing was fitted in its place


@pytest.mark.parametrize("kind", MODELS)
def test_a_frozen_unfitted_teacher_says_to_fit_before_wrapping(kind, data):
    X, _, _, _ = data
    model, params, _ = MODELS[kind]
    with pytest.raises(
        NotFittedError,
        match=r"teacher FrozenEstimator\(LogisticRegression\) is not fitted: FrozenEstimator "
        r"keeps an estimator as it was given.*FrozenEstimator\(estimator\.fit\(X_train",
    ):
        model(FrozenEstimator(LogisticRegression()), **params()).fit(X)
