import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import StratifiedKFold

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill._calibration import cross_fit_calibration, fit_calibrator


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
        # one calibrator fitted on all rows: its steps are those of an isotonic fit of y on
        # the score (here: all negatives below the positives), each read as (k + 1/2) / (m + 1)
        expected = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, y)
        np.testing.assert_allclose(calibrator.raw_rate(scores), expected.predict(scores))
        top = scores >= np.sort(scores)[-n_positive]
        np.testing.assert_allclose(probability[top], (n_positive + 0.5) / (n_positive + 1))
        np.testing.assert_allclose(probability[~top], 0.5 / (60 - n_positive + 1))
    else:
        assert np.all(np.diff(probability[np.argsort(scores)]) >= -1e-12)  # monotone


@pytest.mark.parametrize(("offset", "tolerance"), [(1e4, 1e-9), (1e10, 1e-5), (-1e12, 1e-3)])
def test_a_sigmoid_calibration_takes_any_shift_of_the_score(offset, tolerance):
    # the logistic map a + b * score fits any shift of the score alike (the intercept takes
    # it), but the score was read over its largest magnitude only: 1e10 + s varied by 1e-10
    # there and the map came out flat (every probability near the base rate, 0.50 off)
    rng = np.random.default_rng(0)
    scores = 1.5 * rng.normal(size=2000)
    y = (rng.uniform(size=2000) < 1 / (1 + np.exp(-scores))).astype(int)
    unshifted = fit_calibrator(scores, y, "sigmoid")
    expected = unshifted.predict_proba(scores.reshape(-1, 1))[:, 1]
    assert np.corrcoef(expected, 1 / (1 + np.exp(-scores)))[0, 1] > 0.999  # not flat
    shifted = scores + offset  # the same scores as float64 holds them beside the offset
    calibrator = fit_calibrator(shifted, y, "sigmoid")
    probability = calibrator.predict_proba(shifted.reshape(-1, 1))[:, 1]
    np.testing.assert_allclose(probability, expected, atol=tolerance)


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


class DuckTypedFitted:
    """A teacher with fit() and predict() but none of scikit-learn's base classes or tags."""

    def fit(self, X, y=None):
        self.coef_ = np.array([2.0, -1.0])
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float)[:, :2] @ self.coef_


@pytest.mark.parametrize("model", [DistilledGAM, DistilledTree])
def test_duck_typed_teacher_with_fit_is_read_and_an_unfitted_one_refused(model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    params = {"student": small_student()} if model is DistilledGAM else {}
    fitted = model(DuckTypedFitted().fit(X), random_state=0, **params).fit(X)
    assert fitted.response_ == "predict" and fitted.fidelity(X)["r2"] > 0.8
    with pytest.raises(NotFittedError, match="teacher DuckTypedFitted is not fitted"):
        model(DuckTypedFitted(), **params).fit(X)


def frame_with(**columns):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    for name, values in columns.items():
        frame[name] = values
    return frame


@pytest.mark.parametrize("model", [DistilledGAM, DistilledTree])
def test_unreadable_columns_are_refused_naming_them(model):
    scores = np.linspace(0, 1, 80)
    dates = frame_with(day=pd.date_range("2020-01-01", periods=80))
    with pytest.raises(
        ValueError, match=r"X column 'day' must be numeric or categorical.*datetime"
    ):
        model().fit(dates, teacher_scores=scores)
    # periods and intervals: interpret failed on them deep inside, naming no column
    periods = frame_with(month=pd.period_range("2020-01", periods=80, freq="M"))
    with pytest.raises(ValueError, match=r"X column 'month' must be .*'period\[M\]'.*periods"):
        model().fit(periods, teacher_scores=scores)
    spans = frame_with(span=pd.interval_range(0, 80))
    with pytest.raises(ValueError, match=r"X column 'span' must be .*interval.*midpoints"):
        model().fit(spans, teacher_scores=scores)
    twice = frame_with()
    twice.columns = ["a", "a"]
    with pytest.raises(ValueError, match=r"X must have distinct column names; got \['a'\]"):
        model().fit(twice, teacher_scores=scores)
    lists = frame_with(c=[[1, 2]] + ["x"] * 79)
    with pytest.raises(TypeError, match=r"X column 'c' must hold numbers or labels.*list cell"):
        model().fit(lists, teacher_scores=scores)
    # durations: advice for durations, and no warning of a categorical column first
    spent = frame_with(served=pd.to_timedelta(np.arange(80) * 7, "D"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"X column 'served' .*durations.*total_seconds"):
            model().fit(spent, teacher_scores=scores)
    # names of two types (int-named dummies beside text): scikit-learn's TypeError, deep inside
    mixed = frame_with()
    mixed.columns = ["a", 1]
    with pytest.raises(
        TypeError, match=r"X must have column names that are all strings.*1 \(int\)"
    ):
        model().fit(mixed, teacher_scores=scores)


def test_a_label_in_a_numeric_column_at_predict_names_the_column():
    frame = frame_with(c=np.where(np.arange(80) % 2, "x", "y"))
    gam = DistilledGAM(student=small_student()).fit(frame, teacher_scores=frame["a"] * 2)
    for bad in ("zz", True):
        new = frame.astype({"b": object})
        new.loc[5, "b"] = bad
        with pytest.raises(ValueError, match=rf"X column 'b' must hold numbers.*got {bad!r}"):
            gam.predict(new)
    with pytest.raises(ValueError, match=r"X column 'b' must hold numbers.*got True"):
        gam.predict(frame.assign(b=frame["b"] > 0))
    with pytest.raises(ValueError, match=r"monotone_constraints\['c'\] must be 0: 'c' is categ"):
        DistilledGAM(student=small_student(), monotone_constraints={"c": 1}).fit(
            frame, teacher_scores=frame["a"]
        )


@pytest.mark.parametrize("factor", [1e40, 1e-200])
@pytest.mark.parametrize("model", [DistilledGAM, DistilledTree])
def test_scores_far_from_unit_scale_are_learnt_as_at_unit_scale(model, factor):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 2))
    scores = 2 * X[:, 0] + np.sin(X[:, 1])
    params = {"student": small_student()} if model is DistilledGAM else {}
    unit = model(random_state=0, **params).fit(X, teacher_scores=scores)
    scaled = model(random_state=0, **params).fit(X, teacher_scores=factor * scores)
    assert scaled.target_scale_ != 1.0 and unit.target_scale_ == 1.0
    np.testing.assert_allclose(scaled.predict(X) / factor, unit.predict(X), rtol=1e-4, atol=1e-6)
    fidelity = scaled.fidelity(X, teacher_scores=factor * scores)
    assert fidelity["r2"] == pytest.approx(unit.fidelity(X, teacher_scores=scores)["r2"], abs=1e-4)
    assert 0.5 < fidelity["r2"] < 1.0
    if model is DistilledGAM:
        np.testing.assert_allclose(
            scaled.shape_functions()["score"] / factor,
            unit.shape_functions()["score"],
            rtol=1e-4,
            atol=1e-6,
        )


@pytest.mark.parametrize("factor", [1e200, 1e-200])
@pytest.mark.parametrize("model", [DistilledGAM, DistilledTree])
def test_score_is_scale_free_with_sample_weight_and_with_y_alone(model, factor):
    # R^2 is unchanged when target and prediction are scaled alike: weighted, and against y
    # itself, it had overflowed to NaN at 1e200 and underflowed to 1.0 at 1e-200
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 2))
    scores = 2 * X[:, 0] + np.sin(X[:, 1])
    weight = rng.uniform(0.5, 2.0, size=300)
    params = {"student": small_student()} if model is DistilledGAM else {}
    unit = model(lambda Z: 2 * Z[:, 0] + np.sin(Z[:, 1]), random_state=0, **params).fit(X)
    scaled = model(
        lambda Z: factor * (2 * Z[:, 0] + np.sin(Z[:, 1])), random_state=0, **params
    ).fit(X)
    expected = r2_score(scores, unit.predict(X), sample_weight=weight)
    assert 0.5 < expected < 1.0
    assert unit.score(X, sample_weight=weight) == pytest.approx(expected, rel=1e-9)
    assert scaled.score(X, sample_weight=weight) == pytest.approx(expected, abs=1e-4)
    alone = model(random_state=0, **params).fit(X, factor * scores)
    assert alone.score(X, factor * scores) == pytest.approx(
        r2_score(scores, unit.predict(X)), abs=1e-4
    )
    assert alone.score(X, factor * scores, sample_weight=weight) == pytest.approx(
        expected, abs=1e-4
    )


def test_saturated_teacher_probabilities_warn_and_a_larger_clip_is_quiet():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    share = np.mean(np.isin(forest.predict_proba(X)[:, 1], (0.0, 1.0)))
    assert share > 0.05
    with pytest.warns(UserWarning, match=rf"{100 * share:.0f}% of the teacher's probabilities"):
        DistilledTree(forest).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledTree(LogisticRegression(C=0.01).fit(X, y)).fit(X)


def test_the_saturation_advice_names_only_clips_larger_than_the_one_set():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match=r"try proba_clip=0.01 \(") as record:
        DistilledTree(forest, proba_clip=2e-3).fit(X)
    assert "proba_clip=0.001" not in str(record[0].message).split("(beyond")[1]
    with pytest.warns(UserWarning, match=r"suffers, calibrate the teacher") as record:
        DistilledTree(forest, proba_clip=0.05).fit(X)
    assert "try proba_clip" not in str(record[0].message)


def test_a_one_vs_one_decision_function_is_refused_not_read_as_class_scores():
    from sklearn.svm import SVC

    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    y = np.array(["a", "b", "c"])[np.digitize(X[:, 0], [-0.5, 0.5])]
    # three classes give three pairs: the column count alone would not tell
    ovo = SVC(decision_function_shape="ovo").fit(X, y)
    assert ovo.decision_function(X).shape == (300, 3)
    with pytest.raises(ValueError, match="decision_function is one-vs-one: its 3 columns"):
        DistilledTree(ovo).fit(X)
    ovr = DistilledTree(SVC().fit(X, y), random_state=0).fit(X)
    assert list(ovr.classes_) == ["a", "b", "c"]
    # behind a Pipeline too (its own columns would pass the column count)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wrapped = make_pipeline(StandardScaler(), SVC(decision_function_shape="ovo")).fit(X, y)
    with pytest.raises(ValueError, match="decision_function is one-vs-one"):
        DistilledTree(wrapped).fit(X)


def test_class_probabilities_passed_as_plain_scores_are_warned_about():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=300) > 0, "yes", "no")
    probabilities = LogisticRegression().fit(X, y).predict_proba(X)
    with pytest.warns(UserWarning, match="as probabilities do .*each row summing to 1"):
        DistilledTree().fit(X, teacher_scores=probabilities)
    # read as probabilities, the classes are the labels y names
    tree = DistilledTree(response="predict_proba").fit(X, y, teacher_scores=probabilities)
    assert list(tree.classes_) == ["no", "yes"]
    # labels that do not name the columns: numbered, and said
    with pytest.warns(UserWarning, match="y holds 1 labels for the 2 classes"):
        tree = DistilledTree(response="predict_proba").fit(
            X, np.full(300, "no"), teacher_scores=probabilities
        )
    assert list(tree.classes_) == [0, 1]
    # two plain scores per row that are not probabilities: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledTree().fit(X, teacher_scores=np.column_stack([X[:, 0], X[:, 1]]))


def test_a_classifier_without_scores_is_warned_about_its_labels():
    from sklearn.ensemble import VotingClassifier
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)
    voting = VotingClassifier(
        [("a", LogisticRegression()), ("b", DecisionTreeClassifier(max_depth=2))], voting="hard"
    ).fit(X, y)
    assert not hasattr(voting, "predict_proba")
    with pytest.warns(UserWarning, match="neither predict_proba nor decision_function"):
        DistilledTree(voting).fit(X)
    labels = np.where(y == 1, "yes", "no")
    voting.fit(X, labels)
    with pytest.raises(TypeError, match="got 'no' .*its labels are not scores"):
        DistilledTree(voting).fit(X)


def test_text_labels_read_by_response_predict_name_the_scores_the_classifier_has():
    # response="predict" on a classifier with predict_proba had been said to be "a classifier
    # without predict_proba or decision_function"
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 2))
    labels = np.array(["low", "mid", "high"])[np.digitize(X[:, 0], [-0.5, 0.5])]
    teacher = LogisticRegression().fit(X, labels)
    with pytest.raises(TypeError, match="got '.*'.*pass response='auto' or 'predict_proba'") as e:
        DistilledTree(teacher, response="predict").fit(X)
    assert "without predict_proba" not in str(e.value)


def test_response_predict_on_a_multiclass_classifier_warns_of_a_regression_on_class_ids():
    # a 3-class teacher's labels 0/1/2 read as numbers are one regression target: the student
    # mimics ids (a prediction of 1 between classes 0 and 2), as the warning says
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 2))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    teacher = LogisticRegression().fit(X, y)
    match = r"response='predict' reads teacher LogisticRegression's predicted labels as numbers"
    with pytest.warns(UserWarning, match=match) as caught:
        gam = DistilledGAM(teacher, response="predict", student=small_student()).fit(X)
    message = str(caught[0].message)
    assert (
        "3 classes (0, 1, 2)" in message and "Pass response='auto' (its predict_proba)" in message
    )
    assert caught[0].filename == __file__  # the user's fit, not the package's frames
    np.testing.assert_array_equal(gam.teacher_target(X), teacher.predict(X))
    # labels written as digits are read as the same numbers
    texts = LogisticRegression().fit(X, y.astype(str))
    with pytest.warns(UserWarning, match=match):
        DistilledTree(texts, response="predict").fit(X)
    # a teacher without class scores is told to give one that has them
    voting = VotingClassifier(
        [("a", LogisticRegression()), ("b", DecisionTreeClassifier(max_depth=2))], voting="hard"
    ).fit(X, y)
    with pytest.warns(UserWarning, match="VotingClassifier's predicted labels") as caught:
        DistilledTree(voting, response="predict").fit(X)
    assert "voting='soft'" in str(caught[0].message)
    # what stays silent: two classes' labels (their order is the event's), a regressor's
    # numbers, and the labels asked for as numbers through a callable
    binary = LogisticRegression().fit(X, (y == 2).astype(int))
    regressor = LinearRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledTree(binary, response="predict").fit(X)
        DistilledTree(regressor, response="predict").fit(X)
        DistilledTree(regressor).fit(X)
        DistilledTree(lambda rows: teacher.predict(rows), response="predict").fit(X)


def test_categories_that_differ_only_in_type_are_warned_about():
    rng = np.random.default_rng(9)
    code = np.array([1, "1", 2.0, "b"], dtype=object)[rng.integers(0, 4, size=400)]
    X = pd.DataFrame({"code": code, "x": rng.normal(size=400)})
    scores = rng.normal(size=400)
    with pytest.warns(UserWarning, match=r"column 'code' holds values that differ only in type"):
        DistilledGAM(student=small_student(), random_state=0).fit(X, teacher_scores=scores)
    # a tree keeps them apart: nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledTree(random_state=0).fit(X, teacher_scores=scores)


def test_the_teachers_own_errors_say_where_they_came_from():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(10)
    X = pd.DataFrame({"age": rng.normal(size=200), "x": rng.normal(size=200)})
    y = (X["age"] > 0).astype(int)
    columns = ColumnTransformer([("age", StandardScaler(), ["age"])])
    teacher = make_pipeline(columns, LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError) as info:
        DistilledTree(teacher).fit(X[["x"]])  # the teacher's column is missing
    assert "Raised by the teacher, queried as Pipeline.predict_proba(X)" in info.value.__notes__[0]

    class Constant:
        def predict(self, X):
            return np.zeros(len(X))

        def fit(self, X, y):
            return self

        def __sklearn_is_fitted__(self):
            return True

    with pytest.raises(ValueError, match="A Pipeline step before the distiller"):
        DistilledTree(Constant()).fit(X)


def test_pandas_values_sharing_most_labels_with_x_at_other_positions_are_warned_about():
    # sliced apart: X = frame.iloc[:-1], score = frame["score"].iloc[1:] shares all labels but
    # one, each at the next row's position; by position the score is misaligned. Correct data
    # have that structure too (X rebuilt with a fresh index beside a filtered frame's y), so
    # it is a warning, not an error
    from sklearn_distill._data import check_same_order

    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"a": rng.normal(size=81), "score": rng.normal(size=81)})
    X, shifted = frame[["a"]].iloc[:-1], frame["score"].iloc[1:]
    with pytest.warns(
        UserWarning,
        match=r"teacher_scores's index holds 79 of its 80 labels as labels of other rows of X.*"
        r"teacher_scores.to_numpy\(\) to say so",
    ) as caught:
        DistilledTree().fit(X, teacher_scores=shifted)
    assert [w.filename for w in caught if "labels of other rows" in str(w.message)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledTree().fit(X, teacher_scores=shifted.to_numpy())
        # left to position without a word: shared labels at the same positions, no shared
        # label, a fresh index on values computed from a split's X (its labels a subset of
        # 0..n-1 by chance), and X rebuilt with a fresh index beside a split's y (a share of
        # the labels shared, at other positions)
        check_same_order(X, pd.Series(np.zeros(80), index=[*range(40), *range(1000, 1040)]), "y")
        check_same_order(X, pd.Series(np.zeros(80), index=range(500, 580)), "y")
        split = X.iloc[rng.permutation(80)[:40]]
        check_same_order(split, pd.Series(np.zeros(40)), "teacher_scores")
        y_split = pd.Series(np.zeros(40), index=split.index)
        check_same_order(split.reset_index(drop=True), y_split, "y")
    # ... but a fresh index holding exactly X's labels is X's rows reordered
    with pytest.raises(ValueError, match=r"y has X's row labels in its index, in another order"):
        check_same_order(X.iloc[::-1], pd.Series(np.zeros(80)), "y")


def test_pandas_values_with_x_labels_in_another_order_are_refused():
    from sklearn_distill import CompareAudit

    rng = np.random.default_rng(11)
    X = pd.DataFrame({"a": rng.normal(size=60)}, index=np.arange(5000, 5060))
    scores = pd.Series(X["a"].to_numpy() * 2, index=X.index)
    y = pd.Series((X["a"] > 0).astype(int), index=X.index)
    shuffled = scores.iloc[rng.permutation(60)]
    # matched by position, as scikit-learn does: a sorted-apart Series would be misaligned
    for estimator in (DistilledTree(), CompareAudit()):
        with pytest.raises(ValueError, match=r"teacher_scores has X's row labels in its index"):
            estimator.fit(X, y, teacher_scores=shuffled)
    with pytest.raises(ValueError, match=r"y has X's row labels in its index, in another order"):
        CompareAudit().fit(X, y.iloc[::-1], teacher_scores=scores)
    with pytest.raises(ValueError, match=r"groups has X's row labels"):
        CompareAudit().fit(X, y, teacher_scores=scores, groups=y.iloc[::-1])
    # the same labels in the same order, or a fresh index beside X's own: by position
    tree = DistilledTree().fit(X, teacher_scores=scores)
    DistilledTree().fit(X, teacher_scores=scores.reset_index(drop=True))
    # after fit too: fidelity, score and teacher_target match scores to rows as fit does
    for method in (tree.fidelity, tree.teacher_target):
        with pytest.raises(ValueError, match=r"teacher_scores has X's row labels in its index"):
            method(X, teacher_scores=shuffled)
    with pytest.raises(ValueError, match=r"teacher_scores has X's row labels in its index"):
        tree.score(X, teacher_scores=shuffled)
    assert tree.fidelity(X, teacher_scores=scores) == tree.fidelity(X, scores.to_numpy())
    # and the pilot
    from sklearn.tree import DecisionTreeRegressor

    from sklearn_distill.pilot import student_size_pilot

    ladder = [("tree", "depth 1", DecisionTreeRegressor(max_depth=1))]
    with pytest.raises(ValueError, match=r"teacher_scores has X's row labels in its index"):
        student_size_pilot(None, X, teacher_scores=shuffled, students=ladder)
    with pytest.raises(ValueError, match=r"y has X's row labels in its index"):
        student_size_pilot(
            None, X, teacher_scores=scores, y=y.iloc[::-1], students=ladder, calibration="sigmoid"
        )


def test_a_column_without_any_value_is_named_in_a_warning():
    rng = np.random.default_rng(12)
    X = pd.DataFrame({"a": rng.normal(size=80), "empty": np.nan})
    with pytest.warns(UserWarning, match=r"X columns \['empty'\] have no value on any row"):
        DistilledTree().fit(X, teacher_scores=X["a"].to_numpy())
    # the audit's collinearity check leaked numpy's "Mean of empty slice" beside it
    from sklearn_distill.audit import _warn_if_collinear

    X["b"] = X["a"] + 0.1 * rng.normal(size=80)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_collinear(X)
    assert [type(w.message) for w in caught] == [UserWarning]  # only the collinearity of a, b


def test_an_audit_whose_mimic_reproduces_nothing_warns():
    from interpret.glassbox import ExplainableBoostingClassifier

    from sklearn_distill import CompareAudit

    rng = np.random.default_rng(13)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    score = X["a"].to_numpy()
    small = {"outer_bags": 2, "max_rounds": 100, "interactions": 0}
    make = lambda: CompareAudit(  # noqa: E731
        student=ExplainableBoostingRegressor(**small),
        outcome=ExplainableBoostingClassifier(**small),
        interactions=0,
        cv=2,
        n_crossfits=1,
        calibration=None,
        random_state=0,
    )
    # a numpy score in another row order cannot be caught by its index: by its fidelity
    with pytest.warns(UserWarning, match="the mimic reproduces almost none of the score"):
        make().fit(X, y, teacher_scores=rng.permutation(score))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # this score is column a itself, which fit says (another warning)
        warnings.filterwarnings("ignore", "the score is a function of one feature", UserWarning)
        audit = make().fit(X, y, teacher_scores=score)
    assert audit.fidelity_["r2"] > 0.5 and list(audit.score_copies_) == ["a"]


def test_scores_read_as_a_classifiers_probabilities_must_be_probabilities():
    # a classifier teacher beside precomputed deciles: the deciles are read as its
    # predict_proba; the error names teacher_scores and why (it was interpret-deep and bare)
    from sklearn.linear_model import LogisticRegression

    from sklearn_distill import CompareAudit

    frame = frame_with()
    y = (frame["a"] > 0).astype(int)
    teacher = LogisticRegression().fit(frame, y)
    deciles = np.ceil(10 * (frame["a"].rank(pct=True))).to_numpy()
    for model in (DistilledGAM(teacher), CompareAudit(teacher, interactions=0)):
        with pytest.raises(
            ValueError,
            match=r"teacher_scores must be class probabilities in \[0, 1\] \(they stand for the "
            r"classifier teacher's predict_proba\); got values from 1 to 10",
        ):
            model.fit(frame, y, teacher_scores=deciles)
    with pytest.raises(ValueError, match=r"\(response='predict_proba'\)"):
        DistilledGAM(response="predict_proba").fit(frame, teacher_scores=deciles)
    # read as they are, they fit (without the teacher: beside it, scores that are not its
    # own output are refused)
    DistilledGAM(response="predict", student=small_student()).fit(frame, teacher_scores=deciles)
    with pytest.raises(ValueError, match="teacher_scores differ from the teacher's own scores"):
        DistilledGAM(teacher, response="predict", student=small_student()).fit(
            frame, teacher_scores=deciles
        )


def test_categories_that_differ_only_in_white_space_are_warned_about():
    # "M" and "M " from a CSV file are two categories, shown alike in the report
    rng = np.random.default_rng(9)
    sex = np.array(["M", "M ", "F", " F"], dtype=object)[rng.integers(0, 4, size=300)]
    X = pd.DataFrame({"sex": sex, "x": rng.normal(size=300)})
    scores = rng.normal(size=300)
    with pytest.warns(UserWarning, match=r"column 'sex' holds values that differ only in white"):
        DistilledGAM(student=small_student(), random_state=0).fit(X, teacher_scores=scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilledGAM(student=small_student(), random_state=0).fit(
            X.assign(sex=X["sex"].str.strip()), teacher_scores=scores
        )


@pytest.mark.parametrize("model", ["gam", "tree"])
def test_fitted_model_refuses_scores_that_are_not_its_teachers(model):
    # fidelity(X, y), as score(X, y) is called, passes the labels as teacher_scores: beside a
    # teacher they were measured in its place (R^2 near 0 of a faithful student), silently
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (X["a"] + 0.5 * rng.normal(size=400) > 0).astype(int).to_numpy()
    teacher = LogisticRegression().fit(X, y)
    distiller = (
        DistilledGAM(teacher, student=small_student(), random_state=0)
        if model == "gam"
        else DistilledTree(teacher, max_leaf_nodes=8, random_state=0)
    ).fit(X)
    own = teacher.predict_proba(X)
    # the teacher's own scores stand for it: the same answer as querying it
    assert distiller.fidelity(X, own) == pytest.approx(distiller.fidelity(X))
    assert distiller.score(X, teacher_scores=own[:, 1]) == pytest.approx(distiller.score(X))
    for call in (
        lambda: distiller.fidelity(X, y),
        lambda: distiller.score(X, teacher_scores=y),
        lambda: distiller.teacher_target(X, y),
    ):
        with pytest.raises(ValueError, match=r"teacher_scores differ from the teacher's own.*not"):
            call()


@pytest.mark.parametrize("model", ["gam", "tree"])
@pytest.mark.parametrize("fall", ["clear", "weak"])
def test_the_warning_that_the_score_falls_points_at_the_callers_fit(model, fall):
    # a warning at a line of the package's is hidden by Python's default filter after the
    # first fit of a session, whatever the user's line; at the user's line it names the call
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    score = X["a"].to_numpy() + 0.5 * X["b"].to_numpy()
    if fall == "clear":
        y = (rng.random(300) < 1 / (1 + np.exp(-score))).astype(int)
    else:  # unrelated to the score: a weak fall once the score is turned to fall
        y = rng.integers(0, 2, 300)
    rho, p_value = spearmanr(score, y)
    score = -score if rho > 0 else score
    assert (p_value < 0.01) == (fall == "clear")
    distiller = (
        DistilledGAM(student=small_student(), calibration="isotonic", random_state=0)
        if model == "gam"
        else DistilledTree(calibration="isotonic", random_state=0)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distiller.fit(X, y, teacher_scores=score)
    said = [w for w in caught if "the score falls as P(y = 1) rises" in str(w.message)]
    assert len(said) == 1
    assert said[0].filename == __file__


def test_spline_calibration_refuses_a_fold_whose_other_rows_hold_one_score_value():
    # three values, two of them on one row each: where both fall in one held-out fold, the map
    # of the other rows would be fitted on a single value
    y = np.tile([0, 1], 30)
    score = np.zeros(60)
    score[[0, 1]] = [1.0, 2.0]
    refused = 0
    for seed in range(10):
        folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
        together = any({0, 1} <= set(test) for _, test in folds.split(score, y))
        try:
            probability, _ = cross_fit_calibration(score, y, "spline", 2, random_state=seed)
        except ValueError as error:
            assert together
            message = str(error)
            assert "single score value (0.0)" in message and "2 of 60" in message
            refused += 1
        else:
            assert not together and np.all((probability > 0) & (probability < 1))
    assert refused > 0


def test_saturated_share_of_several_classes_is_said_to_count_rows():
    # for more than two classes the share is one of rows with some class at 0 or 1: a column
    # of zeros (a third of the probabilities) had been reported as "100% of the teacher's
    # probabilities are 0 or 1"
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    proba = np.column_stack([rng.dirichlet([2, 2], size=200), np.zeros(200)])
    model = DistilledTree(response="predict_proba", max_leaf_nodes=4, random_state=0)
    with pytest.warns(UserWarning, match=r"100% of the teacher's probabilities are 0 or 1") as w:
        model.fit(X, teacher_scores=proba)
    saturated = [str(m.message) for m in w if "are 0 or 1" in str(m.message)]
    assert "counted by row: rows where some class's probability lies beyond" in saturated[0]
    binary = np.column_stack([1 - proba[:, 0], proba[:, 0]])
    binary[:20] = [0.0, 1.0]
    with pytest.warns(UserWarning, match=r"10% of the teacher's probabilities") as w:
        model.fit(X, teacher_scores=binary)
    assert not any("counted by row" in str(m.message) for m in w)
