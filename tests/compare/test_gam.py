"""DistilledGAM: teachers, classifier log-odds, calibration, constraints, augmentation."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from scipy.special import logit, softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill._calibration import IsotonicCalibrator, cross_fit_calibration
from sklearn_distill.gam import generate_queries

pytestmark = pytest.mark.filterwarnings("ignore:Missing values detected")


def small_ebm(**overrides):
    params = dict(
        outer_bags=2,
        max_rounds=300,
        learning_rate=0.3,
        interactions=0,
        max_bins=32,
        early_stopping_rounds=10,
        smoothing_rounds=0,
        n_jobs=1,
        random_state=0,
    )
    params.update(overrides)
    return ExplainableBoostingRegressor(**params)


def additive_teacher(X):
    X = np.asarray(X, dtype=float)
    return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 - X[:, 2]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    return X, additive_teacher(X)


def test_callable_teacher_is_mimicked(data):
    X, _ = data
    gam = DistilledGAM(additive_teacher, student=small_ebm()).fit(X)
    X_new = np.random.default_rng(1).normal(size=(300, 3))
    result = gam.fidelity(X_new)
    assert result["r2"] > 0.95
    # rmse is the root mean squared gap to the teacher
    gap = gam.predict(X_new) - additive_teacher(X_new)
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(gap**2)))
    assert set(result) == {"r2", "rmse"}


def test_teacher_scores_and_y_paths_match_querying(data):
    X, scores = data
    queried = DistilledGAM(additive_teacher, student=small_ebm()).fit(X).predict(X)
    given = DistilledGAM(student=small_ebm()).fit(X, teacher_scores=scores).predict(X)
    from_y = DistilledGAM(student=small_ebm()).fit(X, scores).predict(X)
    np.testing.assert_allclose(queried, given)
    np.testing.assert_allclose(queried, from_y)


def test_binary_classifier_log_odds_and_temperature(data):
    X, scores = data
    labels = (scores + np.random.default_rng(2).normal(size=len(scores)) > 0.5).astype(int)
    teacher = LogisticRegression().fit(X, labels)
    gam = DistilledGAM(teacher, student=small_ebm()).fit(X)
    assert gam.response_ == "predict_proba"
    # log-odds of predict_proba are the logistic regression's decision function
    np.testing.assert_allclose(gam.teacher_target(X), teacher.decision_function(X), atol=1e-8)
    np.testing.assert_array_equal(gam.classes_, teacher.classes_)
    probabilities = gam.predict_proba(X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(np.abs(probabilities - teacher.predict_proba(X))) < 0.02
    result = gam.fidelity(X)
    assert {"agreement", "auc"} <= set(result) and result["agreement"] > 0.9
    hot = DistilledGAM(teacher, temperature=2.0, student=small_ebm()).fit(X)
    np.testing.assert_allclose(hot.teacher_target(X), teacher.decision_function(X) / 2, atol=1e-8)


def test_multiclass_teacher_softmax(data):
    X, scores = data
    labels = np.digitize(scores, np.quantile(scores, [1 / 3, 2 / 3]))
    teacher = LogisticRegression().fit(X, labels)
    # a clip below every probability, so that softmax gives the teacher's back exactly
    gam = DistilledGAM(teacher, student=small_ebm(), proba_clip=1e-12).fit(X)
    target = gam.teacher_target(X)
    assert target.shape == (len(X), 3) and len(gam.students_) == 3
    np.testing.assert_allclose(target.sum(axis=1), 0.0, atol=1e-9)  # centred log-probabilities
    np.testing.assert_allclose(softmax(target, axis=1), teacher.predict_proba(X), atol=1e-9)
    assert np.mean(np.abs(gam.predict_proba(X) - teacher.predict_proba(X))) < 0.02
    shapes = gam.shape_functions()
    assert set(shapes["class"]) == {0, 1, 2}
    # the picture of one class's shapes: required by name, drawn from that class's rows
    with pytest.raises(ValueError, match=r"class_ must be one of the table's classes \[0, 1, 2\]"):
        gam.plot_shapes()
    fig = gam.plot_shapes(["feature_0000"], class_=2)
    assert fig.get_suptitle() == "Shapes of class 2"  # the figure says which class it draws
    # what each class's student regresses on, not a log-odds of one class against another
    assert fig.axes[0].get_ylabel() == "contribution (centred log-probability)"
    rows = shapes[(shapes["class"] == 2) & (shapes["term"] == "feature_0000")].dropna(
        subset=["value"]
    )
    line = fig.axes[0].get_lines()[0]
    scores = rows.sort_values("value")["score"].to_numpy()
    # the step goes on to the last bin's upper edge at the last bin's score
    np.testing.assert_allclose(line.get_ydata(), np.append(scores, scores[-1]))


def test_decision_function_response(data):
    X, scores = data
    teacher = LinearSVC().fit(X, scores > 0.5)
    gam = DistilledGAM(
        teacher, response="decision_function", temperature=0.5, student=small_ebm()
    ).fit(X)
    np.testing.assert_allclose(gam.teacher_target(X), teacher.decision_function(X) / 0.5)


def _empirical_logit_isotonic(score, y):
    """Independent reference: isotonic steps found by hand-rolled pooling of adjacent
    violators on the sorted unique scores, each step's rate (k + 1/2) / (m + 1)."""
    values = np.unique(score)
    blocks = [[int(np.sum(y[score == v])), int(np.sum(score == v)), [v]] for v in values]
    merged = []
    for block in blocks:
        merged.append(block)
        # pool while the last two steps are out of order (by raw rate k / m)
        while len(merged) > 1 and merged[-2][0] * merged[-1][1] >= merged[-1][0] * merged[-2][1]:
            k, m, xs = merged.pop()
            merged[-1] = [merged[-1][0] + k, merged[-1][1] + m, merged[-1][2] + xs]
    rate = {}
    for k, m, xs in merged:
        for v in xs:
            rate[v] = (k + 0.5) / (m + 1)
    return rate


def test_cross_fitted_isotonic_matches_independent_fit():
    rng = np.random.default_rng(3)
    score = rng.integers(1, 11, size=400).astype(float)
    y = (rng.random(400) < score / 12).astype(int)
    probability, calibrator = cross_fit_calibration(score, y, "isotonic", 4, random_state=0)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
    for train, test in folds.split(score.reshape(-1, 1), y):
        rate = _empirical_logit_isotonic(score[train], y[train])
        np.testing.assert_allclose(probability[test], [rate[v] for v in score[test]])
    rate = _empirical_logit_isotonic(score, y)
    np.testing.assert_allclose(
        calibrator.predict_proba(score.reshape(-1, 1))[:, 1], [rate[v] for v in score]
    )
    # the raw isotonic rates are sklearn's
    raw = IsotonicRegression(out_of_bounds="clip").fit(score, y).predict(score)
    np.testing.assert_allclose(calibrator.raw_rate(score), raw)


def test_isotonic_pure_end_steps_read_their_size():
    # scores 1..6, the lowest two steps all negatives and the top step all positives: the
    # empirical logit gives a pure step of m rows log-odds of -+log(2 m + 1), not a clip
    score = np.repeat(np.arange(1.0, 7.0), 10)
    y = np.zeros(60, dtype=int)
    y[20:25] = y[30:36] = y[40:47] = 1
    y[50:] = 1
    calibrator = IsotonicCalibrator().fit(score, y)
    probability = calibrator.predict_proba(np.array([0.0, 1.0, 6.0, 9.0]))[:, 1]
    np.testing.assert_allclose(
        logit(probability), [-np.log(41), -np.log(41), np.log(21), np.log(21)]
    )
    # a reversed score gives the mirrored map
    falling = IsotonicCalibrator(sign=-1).fit(-score, y)
    np.testing.assert_allclose(falling.predict_proba(-score), calibrator.predict_proba(score))


def test_isotonic_correction_keeps_the_map_monotone():
    # score 0 alone with no positive (raw rate 0, corrected 0.5 / 2) below a step of 20 rows
    # holding one positive (raw 0.05, corrected 1.5 / 21): the correction would reverse their
    # order, so they are pooled, weighted by their sizes
    score = np.arange(21.0)
    y = np.zeros(21, dtype=int)
    y[1] = 1
    calibrator = IsotonicCalibrator().fit(score, y)
    np.testing.assert_allclose(calibrator.raw_rate([0.0, 10.0]), [0.0, 0.05])
    pooled = (0.5 / 2 + 20 * 1.5 / 21) / 21
    np.testing.assert_allclose(calibrator.predict_proba([0.0, 10.0])[:, 1], [pooled, pooled])
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.normal(size=40)
        labels = (rng.random(40) < 0.2).astype(int)
        fitted = IsotonicCalibrator().fit(s, labels)
        grid = np.linspace(-3, 3, 200)
        assert np.all(np.diff(fitted.predict_proba(grid)[:, 1]) >= -1e-12)
        assert np.all((fitted.y_thresholds_ > 0) & (fitted.y_thresholds_ < 1))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid", "temperature"])
def test_calibrated_mimic(data, method):
    X, scores = data
    rng = np.random.default_rng(4)
    decile = np.digitize(scores, np.quantile(scores, np.linspace(0.1, 0.9, 9))) + 1.0
    y = (rng.random(len(X)) < decile / 11).astype(int)
    gam = DistilledGAM(calibration=method, cv=3, student=small_ebm(), random_state=0)
    gam.fit(X, y, teacher_scores=decile)
    grid = np.arange(1.0, 11.0)
    reference = IsotonicCalibrator if method == "isotonic" else CalibratedClassifierCV
    assert isinstance(gam.calibrator_, reference)
    # the mimicked target is the log-odds of a monotone map of the score
    target = gam.teacher_target(X[:10], teacher_scores=grid)
    assert np.all(np.diff(target) >= -1e-12)
    proba = gam.calibrator_.predict_proba(grid.reshape(-1, 1))[:, 1]
    floor = 0.5 / (len(X) + 1)
    np.testing.assert_allclose(target, logit(np.clip(proba, floor, 1 - floor)))
    assert gam.predict_proba(X).shape == (len(X), 2)


def test_monotone_constraint_is_honoured(data):
    X, _ = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    gam = DistilledGAM(additive_teacher, monotone_constraints={"b": 1}, student=small_ebm())
    shapes = gam.fit(frame).shape_functions()
    b = shapes[shapes.term == "b"].dropna(subset=["bin_low"])
    assert np.all(np.diff(b["score"].to_numpy()) >= -1e-12)
    free = DistilledGAM(additive_teacher, student=small_ebm()).fit(frame).shape_functions()
    assert np.any(np.diff(free[free.term == "b"]["score"].to_numpy()) < 0)  # b**2 is not monotone
    tree = DistilledGAM(
        additive_teacher, monotone_constraints={2: -1}, student=DecisionTreeRegressor(max_depth=4)
    ).fit(X)
    grid = np.zeros((50, 3))
    grid[:, 2] = np.linspace(-3, 3, 50)
    assert np.all(np.diff(tree.predict(grid)) <= 1e-12)


def test_generate_queries_mixes_observed_values():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=50),
            "kind": pd.Categorical(rng.choice(["a", "b", "c"], size=50)),
        }
    )
    generated = generate_queries(frame, 400, random_state=0)
    assert len(generated) == 400
    assert generated["kind"].dtype == frame["kind"].dtype
    assert set(generated["x"]) <= set(frame["x"])
    # rows whose x and kind did not come from the same original row show the mixing
    pairs = set(zip(frame["x"], frame["kind"]))
    mixed = np.mean([pair not in pairs for pair in zip(generated["x"], generated["kind"])])
    assert 0.3 < mixed < 0.7  # about half the rows take one feature from another row


def test_augmentation_enlarges_transfer_set(data):
    X, _ = data
    gam = DistilledGAM(additive_teacher, augmentation=1.5, student=small_ebm(), random_state=0)
    gam.fit(X)
    assert gam.student_.bin_weights_[0].sum() == len(X) + round(1.5 * len(X))
    with pytest.raises(ValueError, match="augmentation .* needs a teacher"):
        DistilledGAM(augmentation=1.0).fit(X, teacher_scores=additive_teacher(X))


@pytest.mark.parametrize("model", ["gam", "tree"])
def test_augmentation_of_less_than_one_row_adds_none(data, model):
    # augmentation * n_samples rounds to 0 rows: the teacher is not queried on an empty frame
    # (LogisticRegression refuses 0 rows), and the student is fitted on X's rows alone
    X, _ = data
    labels = (X[:, 0] > 0).astype(int)
    teacher = LogisticRegression().fit(X, labels)
    make = {
        "gam": lambda **kw: DistilledGAM(teacher, student=small_ebm(), random_state=0, **kw),
        "tree": lambda **kw: DistilledTree(teacher, random_state=0, **kw),
    }[model]
    augmentation = 0.4 / len(X)
    assert round(augmentation * len(X)) == 0
    tiny = make(augmentation=augmentation).fit(X)
    np.testing.assert_array_equal(tiny.predict(X), make().fit(X).predict(X))


def test_max_samples_subsamples_transfer_set(data):
    X, _ = data
    gam = DistilledGAM(additive_teacher, max_samples=250, student=small_ebm(), random_state=0)
    assert gam.fit(X).student_.bin_weights_[0].sum() == 250


def test_teacher_and_inputs_are_not_modified(data):
    X, _ = data
    labels = (X[:, 0] > 0).astype(int)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    teacher = LogisticRegression().fit(frame, labels)
    coef = teacher.coef_.copy()
    frame.loc[::7, "a"] = np.nan
    before = frame.copy()
    DistilledGAM(teacher, student=small_ebm(), augmentation=0.5).fit(frame.fillna(0))
    np.testing.assert_array_equal(teacher.coef_, coef)
    scores = additive_teacher(X)
    scores_before = scores.copy()
    DistilledGAM(calibration="isotonic", student=small_ebm()).fit(
        frame, labels, teacher_scores=scores
    )
    pd.testing.assert_frame_equal(frame, before)
    np.testing.assert_array_equal(scores, scores_before)


def test_predict_warns_about_values_the_fitting_rows_did_not_hold():
    # as DistilledTree warns about unseen categories (and refuses new missing numbers, which
    # its rules say nothing of); the GAM predicts them with a term contribution of 0
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=200),
            "b": rng.normal(size=200),
            "group": rng.choice(["x", "y"], 200),
        }
    )
    frame.loc[::10, "b"] = np.nan  # b had missing values at fit, a had none
    scores = frame["a"] + (frame["group"] == "x") + frame["b"].fillna(0)
    gam = DistilledGAM(student=small_ebm(), random_state=0).fit(frame, teacher_scores=scores)
    new = frame.head(6).copy()
    new.loc[0, "group"] = "z"
    new.loc[1, "a"] = np.nan
    new.loc[2, "b"] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prediction = gam.predict(new)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    unseen = r"X column 'group' holds categories not seen at fit: \['z'\]"
    assert any(re.match(unseen, m) for m in messages)
    missing = "X column 'a' has 1 missing value(s), and had none at fit"
    assert any(m.startswith(missing) for m in messages)
    assert not any("'b'" in m for m in messages)  # b had missing values at fit
    assert all(w.filename == __file__ for w in caught if "at fit" in str(w.message))
    # the EBM gives the new values a contribution of 0 in their term
    for row in (0, 1):
        term = "group" if row == 0 else "a"
        contributions = gam.student_.eval_terms(new.iloc[[row]])[0]
        assert contributions[list(gam.student_.term_names_).index(term)] == 0.0
    assert np.all(np.isfinite(prediction))
    # the rows it was fitted on hold nothing new: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gam.predict(frame)


@pytest.mark.parametrize("missing", [None, pd.NA, np.nan])
def test_predict_warns_about_missing_labels_the_fitting_rows_did_not_hold(missing):
    # a categorical or boolean column without missing values at fit: a missing one at predict
    # gets the term's empty missing-value bin (0), as a new missing number does
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=200),
            "flag": pd.array(rng.random(200) > 0.5, dtype="boolean"),
            "colour": pd.Series(rng.choice(["red", "blue"], 200), dtype=object),
            "known": pd.Series(rng.choice(["p", "q", None], 200), dtype=object),
        }
    )
    scores = frame["a"] + 2 * frame["flag"].astype(float) + 2 * (frame["colour"] == "red")
    gam = DistilledGAM(student=small_ebm(), random_state=0).fit(frame, teacher_scores=scores)
    new = frame.head(4).copy()
    new["flag"] = pd.array([True, None, False, True], dtype="boolean")
    new["colour"] = pd.Series(["red", "blue", missing, missing], dtype=object)
    new["known"] = pd.Series([None, "p", "q", None], dtype=object)  # missing at fit too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gam.predict(new)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for column, count in (("flag", 1), ("colour", 2)):
        said = f"X column {column!r} has {count} missing value(s), and had none at fit"
        assert sum(m.startswith(said) for m in messages) == 1, messages
        # the EBM gives them 0 in their term: what the warning says
        term = list(gam.student_.term_names_).index(column)
        rows = [1] if column == "flag" else [2, 3]
        assert np.all(gam.student_.eval_terms(new.iloc[rows])[:, term] == 0.0)
    assert not any("'known'" in m for m in messages)
    assert all(w.filename == __file__ for w in caught if "at fit" in str(w.message))


def test_categories_that_differ_only_in_type_are_not_called_unseen():
    # the EBM reads categories as text: 1 at fit and "1" at predict are one category to it,
    # with the same contribution, so the student did learn them
    rng = np.random.default_rng(0)
    code = rng.integers(1, 4, 300)
    frame = pd.DataFrame({"a": rng.normal(size=300), "code": pd.Categorical(code)})
    scores = frame["a"].to_numpy() + np.array([0.0, -2.0, 0.0, 2.0])[code]
    gam = DistilledGAM(student=small_ebm(), random_state=0).fit(frame, teacher_scores=scores)
    as_text = frame.head(6).assign(code=code[:6].astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        prediction = gam.predict(as_text)
    np.testing.assert_allclose(prediction, gam.predict(frame.head(6)))
    # a category whose text is new is still warned about
    with pytest.warns(
        UserWarning, match=r"X column 'code' holds categories not seen at fit: \['4'\]"
    ):
        gam.predict(as_text.assign(code=["4", "1", "2", "3", "1", "2"]))


def test_booleans_given_as_text_are_unseen_categories():
    # the EBM does not read "True" as the True of fit (its prediction for it is another one):
    # unlike integers, booleans are not compared as text
    rng = np.random.default_rng(1)
    flag = rng.integers(0, 2, 300).astype(bool)
    frame = pd.DataFrame({"a": rng.normal(size=300), "flag": flag})
    scores = frame["a"].to_numpy() + np.where(flag, 2.0, -2.0)
    gam = DistilledGAM(student=small_ebm(), random_state=0).fit(frame, teacher_scores=scores)
    as_text = frame.head(6).assign(flag=flag[:6].astype(str))
    with pytest.warns(UserWarning, match=r"X column 'flag' holds categories not seen at fit"):
        prediction = gam.predict(as_text)
    assert not np.allclose(prediction, gam.predict(frame.head(6)))


@pytest.mark.parametrize("model", ["gam", "tree"])
def test_unseen_values_warn_at_the_callers_line_through_any_method(model):
    from sklearn_distill import DistilledTree

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "group": rng.choice(["x", "y"], 200)})
    scores = (frame["a"] + (frame["group"] == "x")).to_numpy()
    make = {"gam": lambda: DistilledGAM(student=small_ebm(), random_state=0),
            "tree": lambda: DistilledTree(max_leaf_nodes=4, random_state=0)}[model]  # fmt: skip
    fitted = make().fit(frame, teacher_scores=scores)
    new = frame.head(4).assign(group=["z", "x", "y", "x"])
    calls = {
        "predict": lambda: fitted.predict(new),
        "fidelity": lambda: fitted.fidelity(new, teacher_scores=scores[:4]),
        "score": lambda: fitted.score(new, teacher_scores=scores[:4]),
    }
    if model == "tree":
        calls["explain"] = lambda: fitted.explain(new)
    # code run from a string (exec, python -c, doctests) is the user's too
    calls["exec"] = lambda: exec("fitted.predict(new)", {"fitted": fitted, "new": new})
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        found = [w for w in caught if "not seen at fit" in str(w.message)]
        where = "<string>" if name == "exec" else __file__
        assert found and all(w.filename == where for w in found), name


def test_max_samples_warns_about_categories_only_left_out_rows_held():
    # the student sees a subsample: a category only rows left out hold is new to it
    rng = np.random.default_rng(0)
    group = rng.choice(["a", "b"], 2000).astype(object)
    group[:5] = "rare"
    frame = pd.DataFrame({"group": pd.Categorical(group), "x": rng.normal(size=2000)})
    scores = frame["x"].to_numpy() + np.where(group == "rare", 5.0, 0.0)
    gam = DistilledGAM(student=small_ebm(), max_samples=200, random_state=0)
    gam.fit(frame, teacher_scores=scores)
    for student in gam.students_:  # the subsample held no 'rare' row (its bin weighs 0)
        bins = student.bins_[0][0]
        assert "rare" not in bins or student.bin_weights_[0][bins["rare"]] == 0
    with pytest.warns(UserWarning, match=r"X column 'group' holds categories not seen at fit"):
        gam.predict(frame.head(5))


def test_max_samples_that_leaves_out_the_missing_values_says_so_at_predict():
    # X at fit held missing values the subsample did not: the student learnt nothing for them
    # (their bin weighs 0, their contribution is 0), and the warning names the subsample, not
    # "had none at fit", which X contradicts
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=2000),
            "group": pd.Series(rng.choice(["a", "b"], 2000), dtype=object),
        }
    )
    frame.loc[:4, "x"] = np.nan
    frame.loc[:2, "group"] = None
    scores = frame["x"].fillna(0).to_numpy() + (frame["group"] == "a")
    gam = DistilledGAM(student=small_ebm(), max_samples=200, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gam.fit(frame, teacher_scores=scores)
    # said at fit already, where raising max_samples is the remedy
    (at_fit,) = [str(w.message) for w in caught if "hold no missing value" in str(w.message)]
    assert "the 200 rows max_samples drew to fit the student hold no missing value" in at_fit
    assert "'x' (5 rows), 'group' (3 rows)" in at_fit and "raise max_samples" in at_fit
    for index in (0, 1):  # the subsample held none: the missing-value bins weigh 0
        assert all(s.bin_weights_[index][0] == 0 for s in gam.students_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gam.predict(frame.head(5))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for column, count, at_fit in (("x", 5, 5), ("group", 3, 3)):
        (said,) = [m for m in messages if m.startswith(f"X column {column!r} has")]
        assert said.startswith(
            f"X column {column!r} has {count} missing value(s), and the 200 rows max_samples "
            f"drew to fit the student had none (X at fit had {at_fit})"
        )
        assert "had none at fit" not in said and "max_samples" in said
        term = list(gam.student_.term_names_).index(column)
        assert np.all(gam.student_.eval_terms(frame.head(count))[:, term] == 0.0)


def test_refit_forgets_the_classes_and_calibrator_of_an_earlier_fit(data):
    X, scores = data
    labels = (scores > 0).astype(int)
    gam = DistilledGAM(calibration="sigmoid", student=small_ebm()).fit(
        X, labels, teacher_scores=scores
    )
    assert gam.calibrator_ is not None and hasattr(gam, "classes_")
    gam.set_params(calibration=None).fit(X, scores)
    assert gam.calibrator_ is None and not hasattr(gam, "classes_")


def test_plain_scores_that_look_like_probabilities_are_warned_about(data):
    X, scores = data
    probability = 1 / (1 + np.exp(-scores))
    with pytest.warns(UserWarning, match=r"scores all lie in \[0, 1\].*\(teacher\(X\)\)"):
        DistilledGAM(lambda Z: 1 / (1 + np.exp(-additive_teacher(Z))), student=small_ebm()).fit(X)
    with pytest.warns(UserWarning, match=r"\(teacher_scores\).*response='predict_proba'"):
        DistilledGAM(student=small_ebm()).fit(X, teacher_scores=probability)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # read as probabilities: no doubt left
        DistilledGAM(student=small_ebm(), response="predict_proba").fit(
            X, teacher_scores=probability
        )
        # an estimator says what its predict returns; 0/1 labels are no probabilities
        regressor = DecisionTreeRegressor(max_depth=3).fit(X, probability)
        DistilledGAM(regressor, student=small_ebm()).fit(X)
        DistilledGAM(student=small_ebm()).fit(X, teacher_scores=(scores > 0).astype(float))


def test_classifier_student_is_refused(data):
    # the student regresses on the teacher's log-odds: a classifier would be fitted on a
    # continuous target (scikit-learn then fails deep inside, or treats each value as a class)
    X, scores = data
    with pytest.raises(TypeError, match=r"student must be a regressor: .*LogisticRegression"):
        DistilledGAM(student=LogisticRegression()).fit(X, scores)
    with pytest.raises(TypeError, match="student must be a scikit-learn regressor"):
        DistilledGAM(student=object()).fit(X, scores)


def test_non_ebm_student_has_no_shape_functions(data):
    X, scores = data
    gam = DistilledGAM(student=DecisionTreeRegressor(max_depth=3)).fit(X, scores)
    with pytest.raises(TypeError, match="Explainable Boosting Machine"):
        gam.shape_functions()
    with pytest.raises(AttributeError, match="no attribute 'predict_proba'") as error:
        gam.predict_proba(X)
    assert "classifier teachers" in str(error.value.__cause__)


def test_classifier_teacher_calibrated_against_labels(data):
    X, scores = data
    rng = np.random.default_rng(6)
    labels = (rng.random(len(X)) < 1 / (1 + np.exp(-2 * scores))).astype(int)
    teacher = LogisticRegression().fit(X[:, :2], labels)  # a deliberately miscalibrated teacher

    def reads_two_columns(data):
        return teacher.predict_proba(data[:, :2])

    gam = DistilledGAM(
        reads_two_columns,
        response="predict_proba",
        calibration="sigmoid",
        cv=3,
        student=small_ebm(),
    ).fit(X, labels)
    log_odds = teacher.decision_function(X[:, :2])
    calibrated = gam.calibrator_.predict_proba(log_odds.reshape(-1, 1))[:, 1]
    floor = 0.5 / (len(X) + 1)
    np.testing.assert_allclose(
        gam.teacher_target(X), logit(np.clip(calibrated, floor, 1 - floor)), rtol=1e-6
    )


def test_augmented_frame_with_categories_reaches_the_teacher():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {"x": rng.normal(size=200), "kind": pd.Categorical(rng.choice(["a", "b"], size=200))}
    )
    seen = []

    def teacher(data):
        seen.append(data)
        return data["x"].to_numpy() + (data["kind"] == "a").to_numpy()

    gam = DistilledGAM(teacher, augmentation=2.0, student=small_ebm(), random_state=0)
    gam.fit(frame)
    assert [len(d) for d in seen] == [200, 400]
    assert seen[1]["kind"].dtype == frame["kind"].dtype
    assert gam.fidelity(frame)["r2"] > 0.9


def test_isotonic_steps_are_not_split_by_rounding():
    # sklearn's pooled means can differ by a unit in the last place across the rows of one
    # step (here a step of 72 positives in 108 rows); the step is still read as one
    rng = np.random.default_rng(1659)
    score = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-1.5 * score))).astype(int)
    fitted = IsotonicRegression().fit(score, y.astype(float)).predict(score)
    step = np.isclose(fitted, 72 / 108, rtol=0, atol=1e-12)
    assert step.sum() == 108 and np.unique(fitted[step]).size == 2  # the rounding split
    probability = IsotonicCalibrator().fit(score, y).predict_proba(score[step])[:, 1]
    np.testing.assert_allclose(probability, 72.5 / 109)


@pytest.mark.parametrize("sign", [1, -1])
def test_isotonic_map_is_monotone_in_its_direction(sign):
    rng = np.random.default_rng(5)
    for _ in range(20):
        score = rng.normal(size=60)
        y = (rng.random(60) < 1 / (1 + np.exp(-2 * sign * score))).astype(int)
        calibrator = IsotonicCalibrator(sign=sign).fit(score, y)
        probability = calibrator.predict_proba(np.linspace(-3, 3, 200))[:, 1]
        assert np.all(sign * np.diff(probability) >= -1e-12)
        assert np.all((probability > 0) & (probability < 1))


def test_isotonic_refuses_one_class():
    with pytest.raises(ValueError, match="two classes"):
        IsotonicCalibrator().fit(np.arange(5.0), np.zeros(5, dtype=int))


def test_fit_silences_interprets_missing_value_warning_and_nothing_else():
    # interpret warns that its own plots hide missing values; shape_functions shows their bin,
    # so the warning would only mislead. The package's own warnings still come through.
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame.loc[::10, "a"] = np.nan
    p = 1 / (1 + np.exp(-(frame["a"].fillna(0) + frame["b"]).to_numpy()))
    p[::4] = (frame["b"].to_numpy()[::4] > 0).astype(float)  # saturated: the package warns
    filters = list(warnings.filters)
    for max_terms in (1, None):  # the sparse GAM refits its students
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gam = DistilledGAM(
                student=small_ebm(), response="predict_proba", max_terms=max_terms, random_state=0
            ).fit(frame, teacher_scores=np.column_stack([1 - p, p]))
        messages = [str(w.message) for w in caught]
        assert not any(m.startswith("Missing values detected") for m in messages), messages
        assert any("of the teacher's probabilities are 0 or 1" in m for m in messages)
    assert list(warnings.filters) == filters  # the user's filters are left as they were
    # interpret still warns on a fit of its own: the message filtered is the one it gives
    with pytest.warns(UserWarning, match="Missing values detected"):
        small_ebm().fit(frame, p)
    assert gam.shape_functions().query("term == 'a'")["label"].iloc[0] == "missing"
    new = frame.head(3).copy()
    new.loc[0, "b"] = np.nan  # b had no missing values at fit
    with pytest.warns(UserWarning, match="X column 'b' has 1 missing value"):
        gam.predict(new)


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param(lambda f: pd.Series(f, dtype=bool), id="bool"),
        pytest.param(lambda f: pd.Series(f, dtype=object), id="object"),
        pytest.param(
            lambda f: pd.Series(f, dtype="boolean").mask(np.arange(f.size) % 9 == 0),
            id="boolean-with-NA",
        ),
    ],
)
def test_boolean_features_read_false_and_true(flag):
    rng = np.random.default_rng(6)
    values = rng.uniform(size=300) < 0.4
    frame = pd.DataFrame({"a": rng.normal(size=300), "flag": flag(values)})
    numbers = frame.assign(flag=frame["flag"].astype("Float64").astype(float))
    scores = frame["a"].to_numpy() + 1.5 * values
    as_bool = DistilledGAM(student=small_ebm(interactions=1), random_state=0)
    as_bool.fit(frame, teacher_scores=scores)
    as_number = DistilledGAM(student=small_ebm(interactions=1), random_state=0)
    as_number.fit(numbers, teacher_scores=scores)
    # the labels change, nothing else: same predictions, same shapes
    np.testing.assert_array_equal(as_bool.predict(frame), as_number.predict(numbers))
    table, numeric = as_bool.shape_functions(), as_number.shape_functions()
    np.testing.assert_array_equal(table["score"], numeric["score"])
    rows = table[table["term"] == "flag"]
    known = rows[rows["label"] != "missing"]
    assert known["label"].tolist() == ["False", "True"]
    assert [type(v) for v in known["value"]] == [bool, bool]
    assert known["value"].tolist() == [False, True]
    assert numeric.loc[numeric["term"] == "flag", "label"].tolist()[-2:] == ["0", "1"]
    # the user's data, not the student's 0 and 1: True raises the score as the teacher does
    assert known["score"].iloc[1] > known["score"].iloc[0]
    cells = table[table["kind"] == "interaction"]
    assert len(cells)
    assert {labels[1] for labels in cells["label"]} - {"missing"} == {"False", "True"}
    # the input is left as it was
    assert frame["flag"].dtype == flag(values).dtype


def two_feature_teacher(X):
    X = np.asarray(X, dtype=float)
    return X[:, 0] - np.sin(X[:, 1])


def test_monotone_constraints_name_a_frames_columns_whatever_their_labels(data):
    # columns labelled 1 and 0: a key is a column's label, not a position
    X = data[0][:, :2]
    frame = pd.DataFrame(X, columns=[1, 0])
    gam = DistilledGAM(two_feature_teacher, monotone_constraints={0: 1}, student=small_ebm())
    assert gam.fit(frame).student_.get_params()["monotone_constraints"] == [0, 1]
    tree = DistilledTree(two_feature_teacher, monotone_constraints={0: 1}, random_state=0)
    assert list(tree.fit(frame).tree_.monotonic_cst) == [0, 1]
    labelled = pd.DataFrame(X, columns=[10, 20])
    gam = DistilledGAM(two_feature_teacher, monotone_constraints={20: -1}, student=small_ebm())
    assert gam.fit(labelled).student_.get_params()["monotone_constraints"] == [0, -1]
    with pytest.raises(ValueError, match=r"must name features of X \(\[10, 20\]\); got 0"):
        DistilledGAM(two_feature_teacher, monotone_constraints={0: 1}).fit(labelled)
    for key in (True, 1.0):  # neither names the column labelled 1
        with pytest.raises(ValueError, match=r"must name features of X \(\[1, 0\]\)"):
            DistilledGAM(two_feature_teacher, monotone_constraints={key: 1}).fit(frame)
    gam = DistilledGAM(two_feature_teacher, monotone_constraints={np.int64(0): 1})
    assert gam.set_params(student=small_ebm()).fit(frame).student_.get_params()[
        "monotone_constraints"
    ] == [0, 1]
    # an array's features are positions, also after a fit on a frame
    gam = DistilledGAM(two_feature_teacher, monotone_constraints={0: 1}, student=small_ebm())
    gam.fit(frame)
    assert gam.fit(X).student_.get_params()["monotone_constraints"] == [1, 0]


def test_a_column_named_like_a_pair_is_not_merged_with_that_pair(data):
    # "a & b" beside a and b: the pair (a, b) would give a second term "a & b"; it is left out
    # of the student's interaction detection, as the audit does, with a warning
    X = data[0]
    frame = pd.DataFrame(X, columns=["a", "b", "a & b"])
    gam = DistilledGAM(additive_teacher, student=small_ebm(interactions=3, max_interaction_bins=8))
    with pytest.warns(UserWarning, match=r"X columns \['a & b'\] hold ' & '"):
        gam.fit(frame)
    shapes = gam.shape_functions()
    kinds = shapes.groupby("term")["kind"].unique()
    assert kinds["a & b"].tolist() == ["main"]  # one term of that name, the column's
    free = DistilledGAM(additive_teacher, student=small_ebm(interactions=3))
    free.fit(pd.DataFrame(X, columns=["a", "b", "c"]))  # nothing said without such a name
    # pairs the user lists are kept, and an exclude written as text is left as it is
    listed = DistilledGAM(additive_teacher, student=small_ebm(interactions=[(0, 1)]))
    assert "a & b" in set(listed.fit(frame).shape_functions().query("kind != 'main'")["term"])
    mains = DistilledGAM(additive_teacher, student=small_ebm(interactions=2, exclude="mains"))
    mains.fit(frame)


def test_multiclass_fidelity_is_the_mean_r2_and_the_pooled_rmse(data):
    # for a 3-class teacher, fidelity's r2 is the mean of the classes' R^2 and its rmse the
    # root of the squared gap's mean over every row and class, as its docstring says
    X, scores = data
    labels = np.digitize(scores, np.quantile(scores, [1 / 3, 2 / 3]))
    teacher = LogisticRegression().fit(X, labels)
    gam = DistilledGAM(teacher, student=small_ebm(), proba_clip=1e-12).fit(X)
    X_new = np.random.default_rng(2).normal(size=(300, 3))
    result = gam.fidelity(X_new)
    # the target recomputed from the teacher: centred log-probabilities
    log_p = np.log(teacher.predict_proba(X_new))
    target = log_p - log_p.mean(axis=1, keepdims=True)
    gap = gam.predict(X_new) - target
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(gap**2)), rel=1e-9)
    per_class = np.sqrt(np.mean(gap**2, axis=0))
    assert np.mean(per_class) < result["rmse"]  # not the mean of the classes' RMSEs
    r2 = [1 - np.sum(gap[:, k] ** 2) / np.sum((target[:, k] - target[:, k].mean()) ** 2)
          for k in range(3)]  # fmt: skip
    assert result["r2"] == pytest.approx(np.mean(r2), rel=1e-9)
    doc = " ".join(DistilledGAM.fidelity.__doc__.split())
    assert "averaged over classes" not in doc
    assert "mean of the columns' R^2" in doc and "over every row and column, pooled" in doc
