"""DistilledGAM: each bad input gets a clear error that names the argument."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from sklearn_distill import DistilledGAM, DistilledTree

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
SCORES = X[:, 0] - X[:, 1]
LABELS = (SCORES > 0).astype(int)
STUDENT = ExplainableBoostingRegressor(outer_bags=2, max_rounds=20, interactions=0, n_jobs=1)


def gam(**params):
    return DistilledGAM(student=STUDENT, **params)


@pytest.mark.parametrize(
    ("params", "fit_kwargs", "error", "match"),
    [
        ({}, {"y": SCORES[:-1]}, ValueError, "y has 59 rows but X has 60"),
        ({}, {"teacher_scores": SCORES[:-1]}, ValueError, "teacher_scores has 59 rows"),
        (
            {"calibration": "isotonic"},
            {"y": LABELS[:-2], "teacher_scores": SCORES},
            ValueError,
            "y has 58 rows but X has 60",
        ),
        ({}, {"teacher_scores": np.where(X[:, 0] > 1, np.nan, SCORES)}, ValueError, "NaN or inf"),
        ({}, {"teacher_scores": np.where(X[:, 0] > 1, np.inf, SCORES)}, ValueError, "NaN or inf"),
        ({}, {"teacher_scores": np.full(60, 3.0)}, ValueError, "teacher_scores are constant"),
        ({}, {"teacher_scores": np.array(["a"] * 60)}, TypeError, "teacher_scores must be numeric"),
        # a column's name instead of the column: says to pass the column itself
        (
            {},
            {"teacher_scores": "decile_score"},
            TypeError,
            r"got the string 'decile_score'\. To use a column of your data, pass the column "
            r"itself \(data\['decile_score'\]\)",
        ),
        (
            {"calibration": "isotonic"},
            {"y": "two_year_recid", "teacher_scores": SCORES},
            TypeError,
            r"y must hold one value per row of X .*'two_year_recid'",
        ),
        (
            {"calibration": "isotonic"},
            {"teacher_scores": SCORES},
            ValueError,
            "needs the observed labels",
        ),
        (
            {"calibration": "sigmoid"},
            {"y": np.arange(60) % 3, "teacher_scores": SCORES},
            ValueError,
            "binary labels y; got a 'multiclass'",
        ),
        (
            {"calibration": "isotonic"},
            {"y": SCORES, "teacher_scores": SCORES},
            ValueError,
            "binary labels y; got a 'continuous'",
        ),
        (
            {"calibration": "isotonic"},
            {"y": np.ones(60), "teacher_scores": SCORES},
            ValueError,
            "single class",
        ),
        (
            {"calibration": "isotonic"},
            {"y": LABELS},
            ValueError,
            "pass teacher_scores or a teacher",
        ),
        ({"calibration": "platt"}, {"y": LABELS}, ValueError, "calibration must be one of"),
        ({"response": "proba"}, {"y": SCORES}, ValueError, "response must be one of"),
        (
            {"temperature": 0},
            {"y": SCORES},
            ValueError,
            r"temperature must be a finite number > 0; got 0",
        ),
        ({"cv": 1}, {"y": SCORES}, ValueError, "cv must be an integer >= 2"),
        (
            {"augmentation": -1.0},
            {"y": SCORES},
            ValueError,
            r"augmentation must be a finite number >= 0; got -1.0",
        ),
        ({"max_samples": 1}, {"y": SCORES}, ValueError, "max_samples must be an integer >= 2"),
        ({"teacher": 5}, {}, TypeError, "teacher must be a fitted estimator, a callable"),
        (
            {"monotone_constraints": {"zzz": 1}},
            {"y": SCORES},
            ValueError,
            r"monotone_constraints must name features of X .*; got 'zzz'",
        ),
        (
            {"monotone_constraints": {7: 1}},
            {"y": SCORES},
            ValueError,
            r"monotone_constraints must name features of X .*; got 7",
        ),
        ({"monotone_constraints": {0: 2}}, {"y": SCORES}, ValueError, r"\[0\] must be \+1, -1"),
        ({"monotone_constraints": [1, 0, 0]}, {"y": SCORES}, TypeError, "must be a dict"),
        (
            {"response": "predict_proba"},
            {"teacher_scores": SCORES},
            ValueError,
            r"teacher_scores must be class probabilities in \[0, 1\] \(response='predict_proba'\)",
        ),
        (
            {"random_state": -1},
            {"y": SCORES},
            ValueError,
            r"random_state must be None, an integer >= 0 and <= 4294967295, or a numpy "
            r"RandomState instance; got -1\.",
        ),
        (
            {"random_state": 1.5},
            {"y": SCORES},
            TypeError,
            r"random_state must be None, .*; got 1\.5",
        ),
        (
            {"n_jobs": "two"},
            {"y": SCORES},
            TypeError,
            r"n_jobs must be None or a non-zero integer \(-1: every core\); got 'two'\.",
        ),
        ({"n_jobs": 0}, {"y": SCORES}, ValueError, r"n_jobs must be None or a non-zero integer"),
        (
            {},
            {"y": np.where(LABELS == 1, "yes", "no")},
            TypeError,
            r"y must be numbers \(with no teacher and no teacher_scores, y is the score the "
            r"student mimics\); got the label '(yes|no)'",
        ),
        (
            {"teacher": lambda data: np.array(["hi"] * len(data))},
            {},
            TypeError,
            r"teacher must return numeric scores from teacher\(X\); got 'hi'\.",
        ),
        (
            {
                "teacher": LogisticRegression().fit(X, np.where(LABELS == 1, "yes", "no")),
                "response": "predict",
            },
            {},
            TypeError,
            r"teacher must return numeric scores from LogisticRegression\.predict\(X\); got '",
        ),
        (
            {},
            {"teacher_scores": SCORES, "X": None},
            TypeError,
            r"X must be an array-like .*; got None",
        ),
    ],
)
def test_bad_fit_input(params, fit_kwargs, error, match):
    fit_kwargs = {"X": X, **fit_kwargs}
    with pytest.raises(error, match=match):
        gam(**params).fit(**fit_kwargs)


@pytest.mark.parametrize("label", [1, 1.0, "yes"], ids=["int", "float", "str"])
def test_a_single_class_is_named_as_written(label):
    # np.full holds numpy scalars: the message shows the label, not numpy's np.int64(1)
    with pytest.raises(ValueError, match=re.escape(f"y has a single class ({label!r}):")):
        gam(calibration="isotonic").fit(X, np.full(60, label), teacher_scores=SCORES)


def test_two_fractional_labels_are_told_apart_from_a_third_class():
    # 0.5 and 1.5 are two values, as a binary outcome has; what rules them out is that they
    # are not whole numbers (scikit-learn's continuous target), which the message says
    y = np.where(LABELS == 1, 1.5, 0.5)
    with pytest.raises(ValueError, match="binary labels y") as raised:
        gam(calibration="isotonic").fit(X, y, teacher_scores=SCORES)
    assert "2 distinct values, 0.5 and 1.5, are not whole numbers" in str(raised.value)
    assert "a binary outcome has two classes" not in str(raised.value)
    # the same labels as whole numbers are a binary outcome
    gam(calibration="isotonic").fit(X, y - 0.5, teacher_scores=SCORES)


def test_teacher_problems():
    regressor = LinearRegression().fit(X, SCORES)
    with pytest.raises(ValueError, match="has no method 'predict_proba'"):
        gam(teacher=regressor, response="predict_proba").fit(X)
    with pytest.raises(NotFittedError, match="teacher LogisticRegression is not fitted: the "):
        gam(teacher=LogisticRegression()).fit(X)
    with pytest.raises(NotFittedError, match=r"Fit it first \(teacher.fit"):
        DistilledTree(LogisticRegression()).fit(X)
    with pytest.raises(ValueError, match="the teacher's scores contains 60 NaN"):
        gam(teacher=lambda data: np.full(len(data), np.nan)).fit(X)
    with pytest.raises(ValueError, match="the teacher's scores are constant"):
        gam(teacher=lambda data: np.zeros(len(data))).fit(X)
    with pytest.raises(ValueError, match="the teacher's scores has 3 rows but X has 60"):
        gam(teacher=lambda data: np.arange(3.0)).fit(X)


@pytest.mark.parametrize("model", [gam, DistilledTree], ids=["DistilledGAM", "DistilledTree"])
def test_a_teacher_class_rather_than_a_fitted_instance_is_refused_naming_teacher(model):
    # scikit-learn's check_is_fitted said "<class ...> is a class, not an instance", naming
    # no argument; a class is callable too, and would have been called on X as the teacher
    with pytest.raises(
        TypeError, match=r"teacher must be a fitted estimator.* got the class Logistic"
    ):
        model(teacher=LogisticRegression).fit(X)

    class Scorer:  # a class with no fit: callable, its call builds an instance
        def __init__(self, X):
            self.X = X

    with pytest.raises(TypeError, match=r"teacher must be a fitted estimator.* class Scorer"):
        model(teacher=Scorer).fit(X)


def test_student_without_constraint_support():
    with pytest.raises(ValueError, match="KNeighborsRegressor cannot honour them"):
        DistilledGAM(student=KNeighborsRegressor(), monotone_constraints={0: 1}).fit(X, SCORES)


def test_bad_input_after_fit():
    fitted = gam().fit(X, teacher_scores=SCORES)
    with pytest.raises(ValueError, match="teacher_scores are needed"):
        fitted.fidelity(X)
    with pytest.raises(ValueError, match="teacher_scores has 10 rows but X has 60"):
        fitted.fidelity(X, teacher_scores=SCORES[:10])
    with pytest.raises(ValueError, match="confidence must be a finite number > 0 and < 1; got 1.5"):
        fitted.shape_functions(confidence=1.5)
    with pytest.raises(TypeError, match=r"confidence must be a real number > 0 and < 1; got '0.9'"):
        fitted.shape_functions(confidence="0.9")
    with pytest.raises(TypeError, match=r"interactions must be True or False; got 'no'\."):
        fitted.shape_functions(interactions="no")
    with pytest.raises(ValueError, match="X has 2 features"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="X contains infinity"):
        fitted.predict(np.where(X > 1, np.inf, X))
    # a frame's float column is named
    frame = pd.DataFrame({"a": [1.0, np.inf], "b": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"X contains infinity \(column 'a'\); use NaN"):
        DistilledGAM().fit(frame, teacher_scores=[0.0, 1.0])


@pytest.mark.parametrize("model", [gam, DistilledTree], ids=["DistilledGAM", "DistilledTree"])
def test_scores_of_another_number_of_outputs_than_fit_are_refused(model):
    # a student of k outputs measured against scores of another number of columns: score had
    # broadcast one against the other (a number with no meaning), fidelity failed in numpy
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=len(X))
    three = model(response="predict_proba", random_state=0).fit(X, teacher_scores=probabilities)
    plain = model(random_state=0).fit(X, teacher_scores=SCORES)
    two = model(random_state=0).fit(X, teacher_scores=np.column_stack([SCORES, X[:, 1]]))
    cases = [
        (three, probabilities[:, 1], r"\(60,\)"),
        (three, probabilities[:, :2] / probabilities[:, :2].sum(1, keepdims=True), r"\(60, 2\)"),
        (three, np.column_stack([probabilities, np.zeros(len(X))]) / 1.0, r"\(60, 4\)"),
        (plain, np.column_stack([SCORES, X[:, 1]]), r"\(60, 2\)"),
        (two, SCORES, r"\(60,\)"),
    ]
    for fitted, scores, shape in cases:
        for method in (fitted.score, fitted.fidelity, fitted.teacher_target):
            with pytest.raises(ValueError, match=rf"teacher_scores must have .* got shape {shape}"):
                method(X, teacher_scores=scores)


@pytest.mark.parametrize("model", [gam, DistilledTree], ids=["DistilledGAM", "DistilledTree"])
def test_score_without_a_teacher_names_what_is_missing(model):
    fitted = model(random_state=0).fit(X, teacher_scores=SCORES)
    with pytest.raises(ValueError, match=r"y or teacher_scores must be given to score a model "):
        fitted.score(X)
    assert fitted.score(X, teacher_scores=SCORES) == pytest.approx(fitted.score(X, SCORES))
    assert fitted.score(X, teacher_scores=SCORES) == pytest.approx(fitted.fidelity(X, SCORES)["r2"])
    # a calibrated model mimics log-odds, which the labels y cannot stand for
    calibrated = model(calibration="sigmoid", random_state=0).fit(X, LABELS, teacher_scores=SCORES)
    with pytest.raises(ValueError, match=r"teacher_scores must be given to score this model"):
        calibrated.score(X, LABELS)
    assert calibrated.score(X, teacher_scores=SCORES) == pytest.approx(
        calibrated.fidelity(X, SCORES)["r2"]
    )


def _text_category_warnings(frame, scores):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gam().fit(frame, teacher_scores=scores)
    found = [w for w in caught if "is read as a categorical feature" in str(w.message)]
    assert all(w.filename == __file__ for w in found)  # the caller's fit is named
    return {str(w.message).split("'")[1]: str(w.message) for w in found}


def test_categorical_of_one_level_per_row_or_of_numbers_as_text_warns_at_fit():
    """A numeric column written as text, or a category of nearly one level per row, is a
    warning at fit naming the column; plain categories, numbers and declared categories are
    not."""
    rng = np.random.default_rng(5)
    n = 300
    money = rng.lognormal(10, 0.5, n).round()
    frame = pd.DataFrame(
        {
            "money": [f"${int(v):,}" if k % 40 else "n/a" for k, v in enumerate(money)],
            "decimal_comma": [f"{v:.1f}".replace(".", ",") for v in rng.uniform(0, 50, n)],
            "share": [f"{v}%" for v in rng.integers(0, 100, n)],  # 100 levels, 3 rows each
            "record": [f"id-{k:05d}" for k in rng.permutation(n)],
            "grade": rng.choice(list("ABCDE"), n),
            "number": money,
            "declared": pd.Categorical(rng.integers(0, 30, n).astype(str)),
            "small_codes": rng.integers(1, 6, n).astype(str),
        }
    )
    before = frame.copy()
    found = _text_category_warnings(frame, np.log(money))
    assert sorted(found) == ["decimal_comma", "money", "record", "share"]
    pd.testing.assert_frame_equal(frame, before)  # nothing converted for the user
    one_per_row = "nearly one level per row, so as a category it carries almost no information"
    looks_numeric = "Its values read as numbers once currency symbols, thousands separators"
    for column in ("money", "decimal_comma", "record"):
        values = frame[column][frame[column] != "n/a"]
        counted = f"with {frame[column].nunique()} levels in {len(frame)} non-missing rows"
        assert counted in found[column]
        assert values.nunique() > max(50, len(frame) / 2)  # nearly one level per row
        assert one_per_row in found[column]
    for column in ("money", "decimal_comma", "share"):
        assert looks_numeric in found[column] and "Convert the column to numbers" in found[column]
    n_text = int((frame["money"] == "n/a").sum())
    assert "(e.g. '$" in found["money"] and f"{n_text} cells do not, e.g. 'n/a'" in found["money"]
    # an identifier: one level per row, but no numbers
    assert looks_numeric not in found["record"] and "drop it" in found["record"]
    # numbers of 100 levels, 3 rows each: not one per row, but their order is lost
    assert one_per_row not in found["share"] and "lose their order" in found["share"]
    # on 40 rows, 40 labels are not "nearly one per row" (a few dozen labels on a small frame
    # may be meant): the identifier is left alone, the numbers as text are not
    found = _text_category_warnings(frame.iloc[:40], np.log(money[:40]))
    assert sorted(found) == ["decimal_comma", "money", "share"]
    assert not any(one_per_row in message for message in found.values())


@pytest.mark.parametrize("model", ["gam", "tree"])
def test_pandas_na_in_an_object_column_of_numbers_is_a_missing_value(model):
    # df.to_numpy() of a nullable Int64 column gives pd.NA cells: missing, as None and NaN are
    from sklearn_distill import DistilledTree

    rng = np.random.default_rng(0)
    values = rng.integers(0, 20, 300).astype(object)
    missing = rng.random(300) < 0.1
    scores = np.where(missing, 5.0, values.astype(float))
    other = rng.normal(size=300)
    make = {"gam": lambda: DistilledGAM(random_state=0, n_jobs=1),
            "tree": lambda: DistilledTree(max_leaf_nodes=4, random_state=0)}[model]  # fmt: skip
    predictions = []
    for gap in (np.nan, None, pd.NA):
        column = values.copy()
        column[missing] = gap
        frame = pd.DataFrame({"x": pd.Series(column, dtype=object), "z": other})
        for X in (frame, frame.to_numpy(dtype=object)):
            fitted = make().fit(X, teacher_scores=scores)
            assert fitted.feature_kinds_ == ["numeric", "numeric"]
            predictions.append(fitted.predict(X))
    for prediction in predictions[1:]:
        np.testing.assert_allclose(prediction, predictions[0])


def test_a_temperature_that_has_nothing_to_divide_is_warned_about():
    # a regressor teacher's (or plain teacher_scores') predict scores are not log-odds
    with pytest.warns(UserWarning, match=r"temperature=3\.0 has no effect"):
        gam(temperature=3.0).fit(X, teacher_scores=SCORES)
    with pytest.warns(UserWarning, match=r"temperature=3\.0 has no effect"):
        DistilledTree(temperature=3.0).fit(X, teacher_scores=SCORES)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        probabilities = np.column_stack([1 - LABELS, LABELS]) * 0.8 + 0.1
        tree = DistilledTree(temperature=3.0, response="predict_proba")
        tree.fit(X, teacher_scores=probabilities)


@pytest.mark.parametrize("model", ["gam", "tree"])
def test_numbers_written_as_text_are_read_as_numbers(model):
    # interpret reads a text column of numbers as a continuous feature; the library reads it
    # so too (it was taken for a category: unseen-category warnings at predict, the audit's
    # interaction detection skipping it), says so once, and predicts as from the numbers
    from sklearn_distill import DistilledTree

    rng = np.random.default_rng(8)
    n = 300
    numbers = rng.normal(size=n).round(3)
    scores = 2 * numbers + rng.normal(size=n)
    as_text = pd.DataFrame({"b": [repr(float(v)) for v in numbers], "z": rng.normal(size=n)})
    as_text.loc[::25, "b"] = None  # missing cells stay missing
    as_numbers = as_text.assign(b=pd.to_numeric(as_text["b"]))
    before = as_text.copy()
    make = {"gam": lambda: DistilledGAM(random_state=0, n_jobs=1),
            "tree": lambda: DistilledTree(max_leaf_nodes=6, random_state=0)}[model]  # fmt: skip
    with pytest.warns(UserWarning, match=r"X column 'b' holds numbers written as text") as caught:
        from_text = make().fit(as_text, teacher_scores=scores)
    assert [w.filename for w in caught if "written as text" in str(w.message)] == [__file__]
    pd.testing.assert_frame_equal(as_text, before)  # read, not changed
    from_numbers = make().fit(as_numbers, teacher_scores=scores)
    assert from_text.feature_kinds_ == from_numbers.feature_kinds_ == ["numeric", "numeric"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unseen-category warning for new numbers
        np.testing.assert_array_equal(from_text.predict(as_text), from_numbers.predict(as_numbers))
        np.testing.assert_array_equal(from_text.predict(as_numbers), from_text.predict(as_text))
    bad = as_text.iloc[:4].copy()
    bad.loc[bad.index[1], "b"] = "n/a"
    with pytest.raises(
        ValueError, match=r"X column 'b' must hold numbers, as it did at fit; got 'n/a'"
    ):
        from_text.predict(bad)

    # the teacher is the user's model: it gets the column as the user gave it (text), at fit,
    # on augmented rows and in fidelity (a pipeline one-hot encoding the codes failed on floats)
    def text_teacher(X):
        cells = X["b"].dropna()
        assert all(isinstance(v, str) for v in cells), "the teacher was given converted numbers"
        return 2 * pd.to_numeric(X["b"]).fillna(0).to_numpy() + X["z"].to_numpy()

    options = {"augmentation": 1.0} if model == "tree" else {}
    queried = make().set_params(teacher=text_teacher, **options)
    with pytest.warns(UserWarning, match="holds numbers written as text"):
        queried.fit(as_text)
    assert queried.fidelity(as_text)["r2"] > 0.5
    # text that reads as infinity is refused, as an infinite number is
    infinite = as_text.copy()
    infinite.loc[infinite.index[2], "b"] = "inf"
    with pytest.raises(ValueError, match=r"X column 'b' contains infinity \(the text 'inf'\)"):
        make().fit(infinite, teacher_scores=scores)
    with pytest.raises(ValueError, match=r"X column 'b' contains infinity"):
        from_text.predict(infinite)
    # declared labels stay labels; text that is not all numbers stays a category
    declared = as_text.assign(b=as_text["b"].astype("category"))
    assert make().fit(declared, teacher_scores=scores).feature_kinds_[0] == "categorical"
    mixed = as_text.copy()
    mixed.loc[mixed.index[3], "b"] = "n/a"
    assert make().fit(mixed, teacher_scores=scores).feature_kinds_[0] == "categorical"


def _infinite_in_object_column(kind, sign):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120), rng.normal(size=120)
    clean = pd.DataFrame({"a": a, "b": b})
    bad = pd.DataFrame({"a": pd.Series(a, dtype=object), "b": b})
    bad.loc[5, "a"] = sign * np.inf
    if kind == "array":
        clean, bad = clean.to_numpy(), bad.to_numpy(dtype=object)
    return clean, bad, a + b


@pytest.mark.parametrize("kind", ["frame", "array"])
@pytest.mark.parametrize("model", ["gam", "tree", "audit"])
def test_infinity_in_an_object_column_is_refused_as_in_a_float_column(model, kind):
    from sklearn_distill import CompareAudit

    clean, bad, scores = _infinite_in_object_column(kind, -1 if model == "tree" else 1)
    column = "'a'" if kind == "frame" else "0"
    refused = rf"X column {column} contains infinity .*use NaN for missing values"
    # as the same numbers in a float column are
    with pytest.raises(ValueError, match=r"infinity \(column .*\); use NaN for missing values"):
        gam().fit(pd.DataFrame(bad).astype(float), scores)
    if model == "audit":
        y = (scores > 0).astype(int)
        audit = CompareAudit(student=LinearRegression(), outcome=LogisticRegression(), cv=2)
        with pytest.raises(ValueError, match=refused):
            audit.fit(bad, y, teacher_scores=scores)
        return
    make = gam if model == "gam" else (lambda: DistilledTree(max_leaf_nodes=4, random_state=0))
    with pytest.raises(ValueError, match=refused):
        make().fit(bad, scores)
    # fitted on the finite numbers (in an object array for an array), refused at predict; the
    # tree, which refuses NaN where a column had none at fit, advises finite numbers instead
    fitted = make().fit(clean.astype(object) if kind == "array" else clean, scores)
    if model == "tree":
        refused = rf"X column {column} contains infinity .*use finite numbers: NaN is refused too"
    with pytest.raises(ValueError, match=refused):
        fitted.predict(bad[:10] if kind == "array" else bad.iloc[:10])


def _calibrated_on_labels(model):
    """A maker of a small model of each kind that reads labels y (a calibrated one)."""
    from sklearn_distill import CompareAudit

    return {
        "audit": lambda: CompareAudit(
            student=LinearRegression(), outcome=LogisticRegression(), cv=2
        ),
        "gam": lambda: gam(calibration="isotonic", cv=2),
        "tree": lambda: DistilledTree(calibration="isotonic", cv=2, max_leaf_nodes=4),
    }[model]


@pytest.mark.parametrize("model", ["audit", "gam", "tree"])
def test_labels_of_mixed_types_are_refused_naming_y(model):
    # 0 and "1", as from two files read apart: numpy cannot sort them
    mixed = np.array([0 if label == 0 else "1" for label in LABELS], dtype=object)
    make = _calibrated_on_labels(model)
    with pytest.raises(TypeError, match=r"y must hold labels of one type.*'1' \(str\), 0 \(int\)"):
        make().fit(X, mixed, teacher_scores=SCORES)
    # the same labels of one type are read
    make().fit(X, mixed.astype(str), teacher_scores=SCORES)


@pytest.mark.parametrize("model", ["gam", "tree"])
@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.ones(3), r"one weight per row of X \(60\); got shape \(3,\)"),
        (np.zeros(60), "positive sum; got all 60 weights zero"),
        (np.r_[np.ones(30), -np.ones(30)], "non-negative; got 30 negative"),
        (np.r_[np.ones(59), -2.0], "non-negative; got 1 negative"),
        (np.r_[np.ones(59), np.nan], "finite numbers; got 1 NaN"),
    ],
)
def test_score_refuses_bad_sample_weight_naming_it(model, weights, match):
    make = gam if model == "gam" else (lambda: DistilledTree(max_leaf_nodes=4, random_state=0))
    fitted = make().fit(X, teacher_scores=SCORES)
    with pytest.raises(ValueError, match="sample_weight must .*" + match):
        fitted.score(X, teacher_scores=SCORES, sample_weight=weights)
    # good weights: the weighted R^2, which weights of one give unweighted
    ones = fitted.score(X, teacher_scores=SCORES, sample_weight=np.ones(60))
    assert ones == pytest.approx(fitted.score(X, teacher_scores=SCORES))


def test_tree_refuses_values_beyond_float32_naming_the_column():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120), rng.normal(size=120)
    huge = pd.DataFrame({"amount": a * 1e39, "b": b})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow from the package's checks
        with pytest.raises(ValueError, match=r"X column 'amount' must lie within float32's"):
            DistilledTree(max_leaf_nodes=4, random_state=0).fit(huge, teacher_scores=a + b)
    # within the range (1e37) the tree fits, and splits on the column; beyond it at predict
    # time it is refused likewise
    large = huge.assign(amount=a * 1e37)
    tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(large, teacher_scores=a)
    assert "amount" in tree.export_text()
    with pytest.raises(ValueError, match=r"X column 'amount' must lie within float32's"):
        tree.predict(huge)


def _fraction_frames():
    from fractions import Fraction

    rng = np.random.default_rng(3)
    quarters, other = rng.integers(0, 40, 200), rng.normal(size=200)
    scores = quarters / 10 + other
    frames = {}
    for denominator in (4, 1):
        cells = [Fraction(int(v), denominator) for v in quarters]
        frames[denominator] = (
            pd.DataFrame({"a": pd.Series(cells, dtype=object), "z": other}),
            pd.DataFrame({"a": quarters / denominator, "z": other}),
        )
    outcome = (scores + rng.normal(size=200) > np.median(scores)).astype(int)
    return frames, scores, outcome


@pytest.mark.parametrize("model", ["gam", "tree", "audit"])
def test_fraction_cells_are_read_as_their_floats_or_refused_where_read_as_text(model):
    # fractions.Fraction cells (an object column; Decimal ones worked) had failed after the
    # student was fitted, with pandas' "Invalid object type at position 0"
    from sklearn_distill import CompareAudit

    frames, scores, outcome = _fraction_frames()
    make = {
        "gam": lambda: DistilledGAM(random_state=0, n_jobs=1),
        "tree": lambda: DistilledTree(max_leaf_nodes=6, random_state=0),
        "audit": lambda: CompareAudit(random_state=0, cv=2, n_crossfits=1, calibration="spline"),
    }[model]

    def fit(X):
        if model == "audit":
            return make().fit(X, outcome, teacher_scores=scores)
        return make().fit(X, teacher_scores=scores)

    def predictions(fitted, X):
        return fitted.mimic_.predict(X) if model == "audit" else fitted.predict(X)

    # cells whose text is a number ("3"): the same fit as the same numbers as floats
    fractions, floats = frames[1]
    before = fractions.copy()
    fitted = fit(fractions)
    pd.testing.assert_frame_equal(fractions, before)
    np.testing.assert_array_equal(predictions(fitted, fractions), predictions(fit(floats), floats))
    fractions, floats = frames[4]
    if model == "tree":  # reads its numbers as floats itself
        fitted = fit(fractions)
        np.testing.assert_array_equal(fitted.predict(fractions), fit(floats).predict(floats))
        return
    # an Explainable Boosting student reads "17/4" as a label: refused, naming the column
    refused = r"X column 'a' must hold numbers that read as .*Fraction\(\d+, 4\).* label '\d+/4'"
    with pytest.raises(TypeError, match=refused):
        fit(fractions)
    pd.testing.assert_frame_equal(fractions, frames[4][0])


@pytest.mark.parametrize("model", ["gam", "tree", "audit"])
@pytest.mark.parametrize("container", ["frame", "array"])
def test_a_signaling_nan_cell_is_refused_naming_its_column(model, container):
    # a Decimal('sNaN') cell cannot be tested for missing (pandas' isna raises
    # decimal.InvalidOperation) nor hashed: it had surfaced as pandas' error, at fit and predict
    from decimal import Decimal

    from sklearn_distill import CompareAudit

    frames, scores, outcome = _fraction_frames()
    clean = frames[1][1]
    bad = clean.astype({"z": object})
    bad.iloc[5, 1] = Decimal("sNaN")
    before = bad.copy()
    given = bad if container == "frame" else bad.to_numpy(dtype=object)
    where = "X column 'z'" if container == "frame" else "X"
    refused = rf"^{where} must hold numbers, labels or missing values; got the signaling NaN"
    make = {
        "gam": lambda: DistilledGAM(random_state=0, n_jobs=1),
        "tree": lambda: DistilledTree(max_leaf_nodes=6, random_state=0),
        "audit": lambda: CompareAudit(random_state=0, cv=2, n_crossfits=1, calibration="spline"),
    }[model]
    with pytest.raises(ValueError, match=refused):
        if model == "audit":
            make().fit(given, outcome, teacher_scores=scores)
        else:
            make().fit(given, teacher_scores=scores)
    if model != "audit":  # at predict time too, by a model fitted on clean rows
        fitted = make().fit(clean if container == "frame" else clean.to_numpy(), scores)
        with pytest.raises(ValueError, match=refused):
            fitted.predict(given)
    # unchanged (pandas cannot compare the signaling NaN: compared by its text)
    assert [list(map(repr, bad[c])) for c in bad] == [list(map(repr, before[c])) for c in bad]
    assert (bad.dtypes == before.dtypes).all()


@pytest.mark.parametrize("model", ["gam", "tree", "audit", "calibrated"])
@pytest.mark.parametrize("container", ["list", "series", "array"])
def test_a_signaling_nan_in_y_is_refused_naming_y(model, container):
    # numpy cannot read Decimal('sNaN') as a float and pandas' isna raises on it: a mimicked
    # y had failed with numpy's words (naming nothing), labels with decimal.InvalidOperation
    from decimal import Decimal

    from sklearn_distill import CompareAudit

    frames, scores, outcome = _fraction_frames()
    X = frames[1][1]
    numbers = list(scores) if model in ("gam", "tree") else [int(v) for v in outcome]
    values = [Decimal(str(v)) for v in numbers]
    values[3] = Decimal("sNaN")
    y = {
        "list": values,
        "series": pd.Series(values, dtype=object),
        "array": np.array(values, dtype=object),
    }[container]
    expected = (
        r"^y must hold a number on every row \(the score the student mimics\); got "
        if model in ("gam", "tree")
        else r"^y must hold an observed label on every row; got the signaling NaN "
    ) + re.escape("Decimal('sNaN')")
    fit = {
        "gam": lambda: DistilledGAM(random_state=0, n_jobs=1).fit(X, y),
        "tree": lambda: DistilledTree(max_leaf_nodes=4, random_state=0).fit(X, y),
        "audit": lambda: CompareAudit(random_state=0, cv=2, n_crossfits=1).fit(
            X, y, teacher_scores=scores
        ),
        "calibrated": lambda: DistilledGAM(calibration="isotonic", random_state=0).fit(
            X, y, teacher_scores=scores
        ),
    }[model]
    with pytest.raises(ValueError, match=expected):
        fit()
    assert values[3].is_snan() and len(values) == len(X)  # the caller's y as it was


@pytest.mark.parametrize("model", ["gam", "tree"])
@pytest.mark.parametrize(
    "target",
    [
        np.r_[SCORES[:-1], np.nan],
        np.r_[SCORES[:-1], np.inf],
        pd.array([*SCORES[:-1], pd.NA], dtype="Float64"),
    ],
    ids=["nan", "inf", "Float64-NA"],
)
def test_a_mimicked_y_with_a_missing_or_infinite_value_is_refused_naming_y(model, target):
    make = gam if model == "gam" else (lambda: DistilledTree(max_leaf_nodes=4, random_state=0))
    # y is the score mimicked (no teacher, no teacher_scores): at fit and at score, the count of
    # bad values is named, in the words teacher_scores get (not scikit-learn's "Input y ...")
    with pytest.raises(ValueError, match=r"^y contains 1 NaN or infinite values; all must be"):
        make().fit(X, target)
    fitted = make().fit(X, SCORES)
    with pytest.raises(ValueError, match=r"^y contains 1 NaN or infinite values; all must be"):
        fitted.score(X, target)
    # the finite values are read as before
    assert fitted.score(X, SCORES) == pytest.approx(fitted.fidelity(X, SCORES)["r2"])


@pytest.mark.parametrize("model", ["audit", "gam", "tree"])
@pytest.mark.parametrize(
    "labels",
    [
        np.r_[LABELS[:-2], np.nan, np.inf],
        pd.array([*LABELS[:-2], pd.NA, pd.NA], dtype="Int64"),
        pd.array([*LABELS[:-2].astype(bool), pd.NA, pd.NA], dtype="boolean"),
        pd.array([*np.where(LABELS[:-2] == 1, "yes", "no"), pd.NA, None], dtype="string"),
        np.array([*np.where(LABELS[:-2] == 1, "yes", "no"), None, np.nan], dtype=object),
    ],
    ids=["float", "Int64", "boolean", "string", "object"],
)
def test_labels_with_missing_values_are_refused_naming_y_and_how_many(model, labels):
    make = _calibrated_on_labels(model)
    # whatever the dtype that holds them, the 2 rows without a label of 60 are counted
    with pytest.raises(ValueError, match=r"^y must hold an observed label on every row; got 2 "):
        make().fit(X, labels, teacher_scores=SCORES)
    with pytest.raises(ValueError, match=r"value\(s\) of 60\. Leave out the rows without"):
        make().fit(X, labels, teacher_scores=SCORES)
