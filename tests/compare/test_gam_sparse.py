"""DistilledGAM(max_terms=k): a sparse GAM of the k most important terms, refitted."""

import numpy as np
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.linear_model import LinearRegression

from sklearn_distill import DistilledGAM

RNG = np.random.default_rng(0)
X = RNG.normal(size=(500, 5))
# five main effects of falling strength and one interaction
SCORE = 3 * X[:, 0] + 2 * np.sin(X[:, 1]) + X[:, 2] ** 2 + 0.5 * X[:, 3] + 1.5 * X[:, 0] * X[:, 1]
X_TEST = RNG.normal(size=(400, 5))
SCORE_TEST = (
    3 * X_TEST[:, 0]
    + 2 * np.sin(X_TEST[:, 1])
    + X_TEST[:, 2] ** 2
    + 0.5 * X_TEST[:, 3]
    + 1.5 * X_TEST[:, 0] * X_TEST[:, 1]
)


def student():
    return ExplainableBoostingRegressor(
        outer_bags=1,
        max_rounds=200,
        max_bins=64,
        interactions=3,
        learning_rate=0.3,
        n_jobs=1,
        random_state=0,
    )


@pytest.fixture(scope="module")
def full():
    return DistilledGAM(student=student(), random_state=0).fit(X, SCORE)


def test_max_terms_keeps_at_most_k_terms_and_fidelity_falls_as_k_shrinks(full):
    n_full = len(full.student_.term_features_)
    fidelities = [full.fidelity(X_TEST, SCORE_TEST)["r2"]]
    for k in (5, 3, 1):
        gam = DistilledGAM(student=student(), random_state=0, max_terms=k).fit(X, SCORE)
        kept = [tuple(t) for t in gam.student_.term_features_]
        assert len(kept) <= k and len(gam.terms_) == k <= n_full
        assert set(kept) <= set(gam.terms_)
        fidelities.append(gam.fidelity(X_TEST, SCORE_TEST)["r2"])
    assert np.all(np.diff(fidelities) <= 0.01), fidelities
    # the single most important term is the strongest main effect
    assert gam.terms_ == [(0,)]
    assert fidelities[-1] < fidelities[0] - 0.2


def test_max_terms_ranks_terms_by_the_full_students_importance(full):
    gam = DistilledGAM(student=student(), random_state=0, max_terms=3).fit(X, SCORE)
    importance = dict(
        zip(map(tuple, full.student_.term_features_), full.student_.term_importances())
    )
    expected = sorted(importance, key=lambda t: -importance[t])[:3]
    assert gam.terms_ == expected


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"max_terms": 0}, ValueError, r"max_terms must be an integer >= 1; got 0"),
        ({"max_terms": 2.0}, TypeError, r"max_terms must be an integer"),
        ({"max_terms": 99}, ValueError, r"max_terms must be at most the \d+ terms .*; got 99"),
        (
            {"max_terms": 2, "student": LinearRegression()},
            ValueError,
            r"max_terms needs an Explainable Boosting Machine student",
        ),
    ],
)
def test_bad_max_terms(params, error, match):
    params = {"student": student(), **params}
    with pytest.raises(error, match=match):
        DistilledGAM(**params).fit(X[:200], SCORE[:200])
