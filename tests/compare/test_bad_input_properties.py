"""Property-based bad input for the scikit-learn side: DistilledGAM, DistilledTree, CompareAudit.

Each case is one row of a table: the argument's name, a hypothesis strategy of bad values for it,
and how the value enters the call. Whatever the value, the call either succeeds with an answer
that passes the invariant (finite predictions, one per row), or raises ``ValueError`` /
``TypeError`` whose message names the argument; never another exception, never NaN, and the
inputs the caller passed are unchanged. To add a case, add a row to ``CASES``.
"""

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression

from sklearn_distill import CompareAudit, DistilledGAM, DistilledTree

N = 24
RNG = np.random.default_rng(0)
FRAME = pd.DataFrame(
    {
        "a": RNG.normal(size=N),
        "b": RNG.integers(0, 5, N).astype(float),
        "c": pd.Categorical(RNG.choice(["x", "y", "z"], N)),
    }
)
SCORES = FRAME["a"].to_numpy() + 0.3 * FRAME["b"].to_numpy()
LABELS = (np.arange(N) % 2).astype(int)

HARNESS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def small_ebm():
    return ExplainableBoostingRegressor(
        outer_bags=1, max_rounds=20, interactions=0, max_bins=8, n_jobs=1, random_state=0
    )


MODELS = {
    "DistilledGAM": lambda **params: DistilledGAM(student=small_ebm(), **params),
    "DistilledTree": lambda **params: DistilledTree(**params),
}

# ---------------------------------------------------------------- strategies of bad values
odd_numbers = st.sampled_from(
    [0, -1, 1, 2.5, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, True, False]
)
odd_objects = st.sampled_from(["3", None, [1], {"k": 1}, (2,), b"x", 1j, np.float64(np.nan)])
odd_values = st.one_of(odd_numbers, odd_objects)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
score_arrays = st.one_of(
    st.lists(finite, min_size=N, max_size=N).map(np.asarray),  # any finite scale, constant
    st.lists(finite, min_size=0, max_size=N - 1).map(np.asarray),  # wrong length
    st.sampled_from(
        [
            np.where(SCORES > 0, np.nan, SCORES),
            np.where(SCORES > 0, np.inf, SCORES),
            SCORES * 1e300,
            SCORES * 1e-300,
            np.full(N, 7.0),
            np.array(["s"] * N),
            SCORES.reshape(2, -1),
            np.stack([SCORES] * 3, axis=1)[:, :, None],
        ]
    ),
)


def frames():
    """Frames with one bad column, odd column names, or an odd shape."""

    def with_cell(value):
        column = FRAME["a"].astype(object).tolist()
        column[3] = value
        return FRAME.assign(a=pd.Series(column, dtype=object))

    def renamed(names):
        frame = FRAME.copy()
        frame.columns = names
        return frame

    return st.one_of(
        odd_values.map(with_cell),
        st.sampled_from([["a", "a", "c"], [0, "b", "c"], ["a", "b", None]]).map(renamed),
        st.sampled_from(
            [
                FRAME.iloc[:0],
                FRAME.iloc[:1],
                FRAME.assign(d=pd.date_range("2020-01-01", periods=N)),
                FRAME.assign(a=FRAME["a"].to_numpy() + 0j),
                FRAME.assign(a=FRAME["a"] > 0),
                FRAME[["c"]].astype(object).assign(c=[[1]] * N),
            ]
        ),
    )


# ---------------------------------------------------------------- the table of cases
def fit_with(model, name, value):
    params, fit_kwargs = {}, {"teacher_scores": SCORES}
    X = FRAME
    if name == "X":
        X = value
    elif name == "teacher_scores":
        fit_kwargs["teacher_scores"] = value
    elif name == "y":
        params["calibration"] = "sigmoid"
        params["cv"] = 2
        fit_kwargs["y"] = value
    else:
        params[name] = value
    fitted = MODELS[model](**params).fit(X, **fit_kwargs)
    return fitted, X


PARAMETERS = {
    "DistilledGAM": ["temperature", "cv", "augmentation", "max_samples", "proba_clip", "max_terms"],
    "DistilledTree": [
        "temperature",
        "cv",
        "augmentation",
        "max_samples",
        "proba_clip",
        "max_leaf_nodes",
        "max_depth",
        "min_samples_leaf",
    ],
}
CASES = [(model, name) for model in MODELS for name in PARAMETERS[model]]


def check_outcome(call, name, inputs):
    """Run ``call``; it must give a finite answer or a ValueError/TypeError naming ``name``."""
    snapshot = copy.deepcopy(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fitted, X = call()
            prediction = np.asarray(fitted.predict(X), dtype=float)
        except (ValueError, TypeError) as error:
            named = re.search(rf"\b{re.escape(name)}\b", str(error))
            assert named, f"{type(error).__name__} does not name {name}: {error}"
        else:
            assert prediction.shape[0] == len(X)
            assert np.all(np.isfinite(prediction)), f"non-finite prediction for {name}"
    for before, after in zip(snapshot, inputs):
        if isinstance(before, pd.DataFrame):
            pd.testing.assert_frame_equal(before, after)
        else:
            np.testing.assert_array_equal(np.asarray(before), np.asarray(after))


@pytest.mark.parametrize(("model", "name"), CASES)
@HARNESS
@given(value=odd_values)
def test_bad_parameter_values(model, name, value):
    check_outcome(lambda: fit_with(model, name, value), name, [FRAME, SCORES])


@pytest.mark.parametrize("model", list(MODELS))
@HARNESS
@given(scores=score_arrays)
def test_bad_teacher_scores(model, scores):
    check_outcome(
        lambda: fit_with(model, "teacher_scores", scores), "teacher_scores", [FRAME, scores]
    )


@pytest.mark.parametrize("model", list(MODELS))
@HARNESS
@given(X=frames())
def test_bad_frames(model, X):
    check_outcome(lambda: fit_with(model, "X", X), "X", [X, SCORES])


@pytest.mark.parametrize("model", list(MODELS))
@HARNESS
@given(
    y=st.one_of(
        st.sampled_from([LABELS[:-1], np.zeros(N), np.arange(N) % 3, LABELS.astype(float) / 2]),
        st.lists(odd_numbers, min_size=N, max_size=N).map(np.asarray),
    )
)
def test_bad_labels_for_calibration(model, y):
    check_outcome(lambda: fit_with(model, "y", y), "y", [FRAME, SCORES, y])


@pytest.mark.parametrize("model", list(MODELS))
@HARNESS
@given(X=frames())
def test_bad_frames_at_predict(model, X):
    fitted = MODELS[model]().fit(FRAME, teacher_scores=SCORES)
    check_outcome(lambda: (fitted, X), "X", [X])


class DuckTeacher:
    """A fitted teacher with no scikit-learn base class; ``scale`` sets its scores' scale."""

    def __init__(self, scale):
        self.scale = scale
        self.coef_ = np.array([1.0, 0.5])

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        X = pd.DataFrame(X)
        return self.scale * (X.iloc[:, :2].astype(float).to_numpy() @ self.coef_)


@pytest.mark.parametrize("model", list(MODELS))
@HARNESS
@given(scale=st.sampled_from([1e-200, 1e-8, 1.0, 1e8, 1e200]))
def test_duck_teacher_at_any_scale_gives_finite_faithful_students(model, scale):
    X = FRAME[["a", "b"]]
    fitted = MODELS[model](teacher=DuckTeacher(scale)).fit(X)
    prediction = fitted.predict(X)
    assert np.all(np.isfinite(prediction))
    assert fitted.fidelity(X)["r2"] > 0.3  # the same fit at every scale, not a constant


def audit():
    return CompareAudit(
        student=LinearRegression(), outcome=LogisticRegression(), calibration=None, cv=2
    )


@HARNESS
@given(
    case=st.one_of(
        score_arrays.map(lambda scores: ("teacher_scores", FRAME[["a", "b"]], LABELS, scores)),
        st.sampled_from(
            [
                ("y", FRAME[["a", "b"]], LABELS[:-1], SCORES),
                ("y", FRAME[["a", "b"]], np.zeros(N), SCORES),
                ("y", FRAME[["a", "b"]], np.arange(N) % 3, SCORES),
                ("X", FRAME[["a", "b"]].iloc[:1], LABELS[:1], SCORES[:1]),
            ]
        ),
    )
)
def test_compare_audit_fit_bad_input(case):
    name, X, y, scores = case

    def call():
        fitted = audit().fit(X, y, teacher_scores=scores)
        return fitted.mimic_, X

    try:
        check_outcome(call, name, [X, y, scores])
    except NotFittedError:  # pragma: no cover - an audit never leaves this
        raise


@pytest.mark.parametrize("model", [*MODELS, "CompareAudit"])
def test_frames_and_arrays_without_columns_are_refused_alike(model):
    message = r"^X must have at least one feature; got 0 feature\(s\) \(shape=\(24, 0\)\)"
    for X in (FRAME.iloc[:, :0], np.empty((N, 0))):
        with pytest.raises(ValueError, match=message):
            if model == "CompareAudit":
                audit().fit(X, LABELS, teacher_scores=SCORES)
            else:
                MODELS[model]().fit(X, teacher_scores=SCORES)


@pytest.mark.parametrize("model", list(MODELS))
def test_string_arrays_are_read_as_labels(model):
    # a numpy array of str is the same data as an object array of the same strings
    text = np.column_stack([np.where(SCORES > 0, "p", "q"), FRAME["c"].to_numpy(dtype=str)])
    assert text.dtype.kind == "U"
    from_text = MODELS[model](random_state=0).fit(text, teacher_scores=SCORES)
    from_objects = MODELS[model](random_state=0).fit(text.astype(object), teacher_scores=SCORES)
    np.testing.assert_allclose(from_text.predict(text), from_objects.predict(text.astype(object)))
    assert from_text.feature_kinds_ == ["categorical", "categorical"]
