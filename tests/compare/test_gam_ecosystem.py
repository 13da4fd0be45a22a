"""DistilledGAM among scikit-learn tools: clone, Pipeline, GridSearchCV, pickle, pandas."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill import CompareAudit, DistilledGAM

pytestmark = pytest.mark.filterwarnings("ignore:Missing values detected")


def small_ebm(**overrides):
    params = dict(
        outer_bags=2, max_rounds=200, learning_rate=0.3, interactions=0, max_bins=32, n_jobs=1
    )
    return ExplainableBoostingRegressor(**{**params, "random_state": 0, **overrides})


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 400
    data = pd.DataFrame(
        {
            "age": rng.integers(18, 70, size=n).astype(float),
            "priors": rng.poisson(2, size=n).astype(float),
            "group": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )
    outcome = (data["priors"] - 0.05 * data["age"] + (data["group"] == "a") > 0).astype(int)
    return data, outcome.to_numpy()


@pytest.fixture(scope="module")
def teacher(frame):
    data, outcome = frame
    numeric = data.assign(group=data["group"].cat.codes)
    return GradientBoostingClassifier(n_estimators=20, random_state=0).fit(numeric, outcome)


def as_numeric(data):
    return data.assign(group=data["group"].cat.codes)


def test_clone_keeps_the_fitted_teacher(teacher, frame):
    gam = DistilledGAM(teacher, student=small_ebm())
    copy = clone(gam)
    assert copy.teacher is teacher  # shared, as FrozenEstimator would be
    assert copy.student is not gam.student
    copy.fit(as_numeric(frame[0]))
    assert not hasattr(gam, "students_")
    frozen = clone(DistilledGAM(FrozenEstimator(teacher), student=small_ebm()))
    frozen.fit(as_numeric(frame[0]))
    np.testing.assert_allclose(
        frozen.predict(as_numeric(frame[0])), copy.predict(as_numeric(frame[0]))
    )


def test_grid_search_over_student_parameters(teacher, frame):
    X = as_numeric(frame[0])
    search = GridSearchCV(
        DistilledGAM(teacher, student=small_ebm()),
        {"student__max_bins": [4, 64]},
        cv=2,
    ).fit(X)
    # scored by fidelity to the teacher: finer bins reproduce it better
    assert search.best_params_ == {"student__max_bins": 64}
    assert search.best_estimator_.teacher is teacher
    assert search.best_score_ == pytest.approx(
        np.mean([search.cv_results_[f"split{k}_test_score"][1] for k in range(2)])
    )


@pytest.mark.parametrize("meta", [DistilledGAM, CompareAudit])
def test_teacher_parameters_are_frozen(teacher, meta):
    # set_params(teacher__...) would change the user's fitted teacher in place (a grid search
    # over them compared one unchanged model under different names); FrozenEstimator forbids it
    model = meta(teacher, student=small_ebm())
    params = model.get_params(deep=True)
    assert params["teacher"] is teacher and "student__max_bins" in params
    assert not any(key.startswith("teacher__") for key in params)
    with pytest.raises(ValueError, match=r"teacher is frozen.*\['teacher__learning_rate'\]"):
        model.set_params(teacher__learning_rate=0.5)
    assert teacher.learning_rate == 0.1
    assert model.set_params(student__max_bins=8).student.max_bins == 8


@pytest.mark.parametrize("meta", [DistilledGAM, CompareAudit])
def test_nested_settings_of_a_default_student_name_the_way_out(teacher, meta):
    # student=None builds its default at fit: student__max_bins gave scikit-learn's bare
    # "'NoneType' object has no attribute 'set_params'"
    model = meta(teacher)
    with pytest.raises(ValueError, match=r"student is None.*\['student__max_bins'\].*student="):
        model.set_params(student__max_bins=8)
    assert model.student is None
    # the estimator given in the same call (a grid over students and their settings) takes them
    model.set_params(student=small_ebm(), student__max_bins=8)
    assert model.student.max_bins == 8


def test_pipeline_with_imputer_and_tree_student(frame):
    data, outcome = frame
    X = as_numeric(data)
    X.loc[::5, "age"] = np.nan
    pipe = make_pipeline(SimpleImputer(), DistilledGAM(student=DecisionTreeRegressor(max_depth=3)))
    pipe.fit(X, outcome.astype(float))
    assert pipe.predict(X).shape == (len(X),)
    tree = pipe[-1].student_
    np.testing.assert_allclose(pipe.predict(X), tree.predict(pipe[0].transform(X)))


def test_pickle_round_trip(teacher, frame):
    X = as_numeric(frame[0])
    gam = DistilledGAM(FrozenEstimator(teacher), student=small_ebm()).fit(X)
    restored = pickle.loads(pickle.dumps(gam))
    np.testing.assert_array_equal(restored.predict(X), gam.predict(X))
    assert restored.fidelity(X) == gam.fidelity(X)


def test_pandas_categorical_and_missing_values(frame):
    data, outcome = frame
    data = data.copy()
    data.loc[::9, "age"] = np.nan
    scores = outcome + 0.1 * data["priors"].to_numpy()
    gam = DistilledGAM(student=small_ebm()).fit(data, teacher_scores=scores)
    np.testing.assert_array_equal(gam.feature_names_in_, ["age", "priors", "group"])
    assert gam.n_features_in_ == 3
    shapes = gam.shape_functions()
    group = shapes[shapes.term == "group"]
    assert set(group["value"]) == {"a", "b", "c"}
    age = shapes[shapes.term == "age"]
    assert age["value"].isna().sum() == 1  # the missing-value bin
    assert age.loc[age["value"].isna(), "weight"].item() == data["age"].isna().sum()
    assert np.isfinite(gam.predict(data)).all()
    with pytest.raises(ValueError, match="feature names"):
        gam.predict(data[["priors", "age", "group"]])


def test_import_does_not_import_torch():
    code = "import sys, sklearn_distill; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
