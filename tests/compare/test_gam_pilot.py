"""Student-size pilot: fidelity against complexity."""

import itertools
import re
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill.pilot import (
    plot_student_size,
    student_complexity,
    student_kinds,
    student_size_pilot,
)


def teacher(X):
    return np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(500, 3))


def test_tree_ladder_matches_independent_fits(X):
    ladder = [
        ("tree", f"depth {d}", DecisionTreeRegressor(max_depth=d, random_state=0))
        for d in (1, 3, 6)
    ]
    table = student_size_pilot(teacher, X, students=ladder, test_size=0.3, random_state=0)
    fit_rows, test_rows = train_test_split(np.arange(len(X)), test_size=0.3, random_state=0)
    for (_, label, tree), row in zip(ladder, table.itertuples()):
        fitted = DecisionTreeRegressor(max_depth=tree.max_depth, random_state=0)
        fitted.fit(X[fit_rows], teacher(X[fit_rows]))
        assert row.label == label
        assert row.complexity == fitted.get_n_leaves()
        assert row.r2 == pytest.approx(
            r2_score(teacher(X[test_rows]), fitted.predict(X[test_rows]))
        )


def test_ebm_interactions_raise_fidelity(X):
    small = dict(
        outer_bags=2, max_rounds=300, learning_rate=0.3, max_bins=32, n_jobs=1, random_state=0
    )
    ladder = [
        ("EBM", f"EBM, {k} interactions", ExplainableBoostingRegressor(interactions=k, **small))
        for k in (0, 1)
    ]
    table = student_size_pilot(teacher, X, students=ladder, random_state=0)
    assert table["complexity"].tolist() == [3.0, 4.0]  # terms: 3 main effects, + 1 pair
    assert table["r2"].iloc[1] > table["r2"].iloc[0] + 0.1  # the x1 * x2 pair is needed


def test_classifier_teacher_and_plot(X):
    labels = (teacher(X) > 0).astype(int)
    classifier = LogisticRegression().fit(X, labels)
    ladder = [("tree", f"depth {d}", DecisionTreeRegressor(max_depth=d)) for d in (2, 4)]
    table = student_size_pilot(classifier, X, students=ladder, random_state=0)
    assert {"agreement", "auc"} <= set(table.columns)
    figure = plot_student_size(table)
    assert isinstance(figure, matplotlib.figure.Figure)
    assert len(figure.axes) == 3  # R^2, agreement and AUC side by side
    for axis, metric in zip(figure.axes, ("r2", "agreement", "auc")):
        (line,) = axis.get_lines()
        np.testing.assert_allclose(line.get_ydata(), table[metric])
    with pytest.raises(ValueError, match="metric must be a column"):
        plot_student_size(table, metric="accuracy")


def test_a_three_class_teachers_agreement_is_named_as_the_share_given_its_class(X):
    # the panel read "agreement at 0.5", which is no rule of more than two classes: agreement
    # is the share of rows the student gives the teacher's (most probable) class
    scores = teacher(X)
    labels = np.digitize(scores, np.quantile(scores, [1 / 3, 2 / 3]))
    classifier = LogisticRegression().fit(X, labels)
    ladder = [("tree", f"depth {d}", DecisionTreeRegressor(max_depth=d)) for d in (2, 4)]
    table = student_size_pilot(classifier, X, students=ladder, random_state=0)
    figure = plot_student_size(table)
    axis = figure.axes[1]
    assert axis.get_ylabel() == "held-out class agreement"
    np.testing.assert_allclose(axis.get_lines()[0].get_ydata(), table["agreement"])


def test_complexity_of_unknown_student_is_nan():
    assert np.isnan(student_complexity(object()))


def small_ebm():
    return ExplainableBoostingRegressor(
        outer_bags=1, max_rounds=200, learning_rate=0.3, max_bins=32, n_jobs=1, random_state=0
    )


def test_ladder_across_student_kinds_on_the_same_held_out_rows(X):
    labels = (teacher(X) > 0).astype(int)
    classifier = LogisticRegression().fit(X, labels)
    ladder = [
        ("rule tree", f"tree, {k} leaves", DistilledTree(max_leaf_nodes=k, random_state=0))
        for k in (2, 8)
    ]
    ladder += [
        (
            "sparse GAM",
            f"GAM, {k} term{'' if k == 1 else 's'}",
            DistilledGAM(student=small_ebm(), max_terms=k),
        )
        for k in (1, 2, 50)  # 50: more than the full GAM has, skipped
    ]
    ladder.append(("GAM", "GAM, all terms", DistilledGAM(student=small_ebm())))
    table = student_size_pilot(classifier, X, students=ladder, test_size=0.3, random_state=0)
    assert table["label"].tolist() == [
        "tree, 2 leaves",
        "tree, 8 leaves",
        "GAM, 1 term",
        "GAM, 2 terms",
        "GAM, all terms",
    ]
    assert table["complexity"].tolist()[:4] == [2.0, 8.0, 1.0, 2.0]
    assert {"r2", "agreement", "auc"} <= set(table.columns)
    # each row is the student's own fidelity on the held-out rows
    fit_rows, test_rows = train_test_split(np.arange(len(X)), test_size=0.3, random_state=0)
    tree = DistilledTree(classifier, max_leaf_nodes=8, random_state=0).fit(X[fit_rows])
    assert table["r2"].iloc[1] == pytest.approx(tree.fidelity(X[test_rows])["r2"])
    assert table["r2"].iloc[1] > table["r2"].iloc[0]


def test_student_kinds_builds_trees_sparse_gams_and_the_full_gam():
    ladder = student_kinds(leaf_counts=(4, 16), max_terms=(3,), random_state=1)
    assert [(family, type(model).__name__) for family, _, model in ladder] == [
        ("rule tree", "DistilledTree"),
        ("rule tree", "DistilledTree"),
        ("sparse GAM", "DistilledGAM"),
        ("GAM", "DistilledGAM"),
    ]
    assert [model.get_params()["random_state"] for _, _, model in ladder] == [1] * 4
    assert ladder[1][2].max_leaf_nodes == 16 and ladder[2][2].max_terms == 3


def test_pilot_accepts_list_like_X_like_an_array():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    scores = X[:, 0] - 0.5 * X[:, 1]
    ladder = [("tree", "2 leaves", DecisionTreeRegressor(max_leaf_nodes=2, random_state=0))]
    from_array = student_size_pilot(None, X, teacher_scores=scores, students=ladder, random_state=0)
    from_list = student_size_pilot(
        None, X.tolist(), teacher_scores=scores.tolist(), students=ladder, random_state=0
    )
    np.testing.assert_allclose(from_list["r2"], from_array["r2"])


def test_pilot_refuses_one_dimensional_X():
    with pytest.raises(ValueError, match="X must be two-dimensional"):
        student_size_pilot(None, [1.0, 2.0, 3.0], teacher_scores=[1.0, 2.0, 3.0])


def test_pilot_refuses_what_the_distillers_refuse_and_options_none_takes():
    from sklearn.ensemble import VotingClassifier
    from sklearn.svm import SVC

    from sklearn_distill.pilot import default_ladder

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 2))
    y = np.argmax(np.column_stack([X[:, 0], X[:, 1], -X.sum(axis=1)]), axis=1)
    tree = [("rule tree", "4 leaves", DistilledTree(max_leaf_nodes=4, random_state=0))]
    # one column per pair of classes: mimicked as class scores, labels would be wrong
    ovo = SVC(decision_function_shape="ovo").fit(X, y)
    with pytest.raises(ValueError, match="decision_function is one-vs-one"):
        student_size_pilot(ovo, X, students=tree, random_state=0)
    # a hard-voting ensemble's labels are mimicked: warned about, as by the distillers
    vote = VotingClassifier(
        [("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))], voting="hard"
    ).fit(X, y > 0)
    with pytest.warns(UserWarning, match="neither predict_proba nor decision_function"):
        student_size_pilot(vote, X, students=tree, random_state=0)
    # a misspelt option would be dropped by every student of a distiller ladder
    scores = X[:, 0]
    with pytest.raises(TypeError, match="'calibraton'. Did you mean 'calibration'"):
        student_size_pilot(None, X, teacher_scores=scores, students=tree, calibraton="isotonic")
    table = student_size_pilot(None, X, teacher_scores=scores, students=iter(tree))
    assert table["label"].tolist() == ["4 leaves"]  # a generator of students, read once
    with pytest.raises(ValueError, match="students must hold at least one"):
        student_size_pilot(None, X, teacher_scores=scores, students=[])
    too_many = student_kinds(leaf_counts=(), max_terms=(20,), full_gam=False, random_state=0)
    with pytest.raises(ValueError, match="gave no student to score"):
        student_size_pilot(None, X, teacher_scores=scores, students=too_many, n_jobs=1)
    # n_jobs reaches the default ladder's EBMs
    jobs = {s.get_params().get("n_jobs") for _, _, s in default_ladder(X, n_jobs=1)}
    assert jobs <= {1, None} and 1 in jobs


class _TalkativeTree(DecisionTreeRegressor):
    """A tree student that gives one warning shared by every student and one of its own."""

    def fit(self, X, y, sample_weight=None, check_input=True):
        warnings.warn("a warning every student gives", RuntimeWarning, stacklevel=2)
        warnings.warn(f"the warning of depth {self.max_depth}", UserWarning, stacklevel=2)
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


def test_pilot_gives_each_distinct_warning_once(X):
    # a third of the teacher's probabilities are exactly 0 or 1: every student's fit warns
    probability = 1 / (1 + np.exp(-teacher(X)))
    probability[::3] = (teacher(X)[::3] > 0).astype(float)
    scores = np.column_stack([1 - probability, probability])
    ladder = [
        ("tree", f"depth {d}", _TalkativeTree(max_depth=d, random_state=0)) for d in (1, 2, 3)
    ]
    kwargs = {"teacher_scores": scores, "response": "predict_proba", "random_state": 0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = student_size_pilot(None, X, students=ladder, **kwargs)
    assert len(table) == 3
    messages = [(w.category, str(w.message)) for w in caught]
    saturated = [m for _, m in messages if "of the teacher's probabilities are 0 or 1" in m]
    assert len(saturated) == 1
    assert messages.count((RuntimeWarning, "a warning every student gives")) == 1
    for depth in (1, 2, 3):  # distinct warnings are all kept
        assert messages.count((UserWarning, f"the warning of depth {depth}")) == 1
    assert len(messages) == len(set(messages)) == 5
    assert all(w.filename == __file__ for w in caught)  # at the caller's line
    # the user's filters still decide: an ignored warning stays away, an error is raised
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings(
            "ignore", message="a warning every student", category=RuntimeWarning
        )
        student_size_pilot(None, X, students=ladder, **kwargs)
    assert not any(w.category is RuntimeWarning for w in caught) and len(caught) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="a warning every student gives"):
            student_size_pilot(None, X, students=ladder, **kwargs)


def test_pilot_warns_when_the_teacher_puts_every_row_on_one_side(X):
    # a rare outcome: the teacher's probability stays below 0.5 everywhere, so the AUC against
    # its labels cannot be computed and agreement at 0.5 is vacuous: one warning says so
    labels = (teacher(X) > 2.0).astype(int)  # about 5% positives
    classifier = LogisticRegression(C=0.01).fit(X, labels)
    assert classifier.predict_proba(X)[:, 1].max() < 0.5
    ladder = [("tree", f"depth {d}", DecisionTreeRegressor(max_depth=d)) for d in (2, 3)]
    with pytest.warns(UserWarning, match="auc is NaN for every student") as caught:
        table = student_size_pilot(classifier, X, students=ladder, random_state=0)
    assert table["auc"].isna().all() and (table["agreement"] == 1.0).all()
    assert sum("auc is NaN" in str(w.message) for w in caught) == 1
    # with both classes among the teacher's labels, no such warning
    balanced = LogisticRegression().fit(X, (teacher(X) > 0).astype(int))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="auc is NaN")
        student_size_pilot(balanced, X, students=ladder, random_state=0)


def test_pilot_options_never_replace_a_rung_of_the_ladder_and_its_seed_reaches_them(X):
    scores = teacher(X)
    ladder = student_kinds(leaf_counts=(2, 8), max_terms=(), full_gam=False)
    # the ladder varies max_leaf_nodes: a pilot option would make every rung the same tree
    with pytest.raises(
        ValueError, match=r"students\[0\] \('tree, 2 leaves'\): it sets max_leaf_nodes=2"
    ):
        student_size_pilot(None, X, teacher_scores=scores, students=ladder, max_leaf_nodes=4)
    # nor the rung whose value is the default (8 leaves is DistilledTree's), where the option
    # agrees with the other rung: its row, "tree, 8 leaves", would describe a 2-leaf tree
    with pytest.raises(
        ValueError, match=r"students\[1\] \('tree, 8 leaves'\): it sets max_leaf_nodes=8"
    ):
        student_size_pilot(None, X, teacher_scores=scores, students=ladder, max_leaf_nodes=2)
    # nor a size at its default on a ladder of one such rung: its row would read "tree, 8
    # leaves" (or "GAM, all terms") beside a smaller student
    for alone, option in (
        (student_kinds(leaf_counts=(8,), max_terms=(), full_gam=False), {"max_leaf_nodes": 2}),
        (student_kinds(leaf_counts=(), max_terms=(), full_gam=True), {"max_terms": 1}),
    ):
        name = next(iter(option))
        with pytest.raises(ValueError, match=rf"students\[0\] \('.*'\): it sets {name}="):
            student_size_pilot(None, X, teacher_scores=scores, students=alone, **option)
    # an option the rungs leave at its default is taken by every one
    table = student_size_pilot(
        None, X, teacher_scores=scores, students=ladder, random_state=0, min_samples_leaf=40
    )
    assert table["complexity"].tolist() == [2.0, 8.0]
    # the pilot's seed reaches distillers without one of their own: the same table twice
    again = student_size_pilot(
        None, X, teacher_scores=scores, students=ladder, random_state=0, min_samples_leaf=40
    )
    assert table["r2"].tolist() == again["r2"].tolist()


def test_pilot_says_which_student_failed_and_refuses_malformed_ladders(X):
    class Failing(DecisionTreeRegressor):
        def fit(self, X, y, sample_weight=None, check_input=True):
            raise RuntimeError("boom")

    ladder = [("tree", "good", DecisionTreeRegressor(max_depth=2)), ("tree", "bad", Failing())]
    with pytest.raises(RuntimeError, match="boom") as raised:
        student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder)
    assert "raised fitting students[1] ('bad')" in raised.value.__notes__
    for entry in (("tree", DecisionTreeRegressor()), DecisionTreeRegressor()):
        with pytest.raises(
            ValueError, match=r"students\[0\] must be a \(family, label, estimator\)"
        ):
            student_size_pilot(None, X, teacher_scores=teacher(X), students=[entry])
    with pytest.raises(TypeError, match="student_size_pilot does not take augmentation"):
        student_size_pilot(None, X, teacher_scores=teacher(X), augmentation=1.0)


def test_the_plot_names_students_it_cannot_place_on_its_size_axis(X, tmp_path):
    from sklearn.linear_model import Lasso
    from sklearn.neighbors import KNeighborsRegressor

    ladder = [
        ("linear", "lasso", Lasso(alpha=100.0)),  # every coefficient 0: size 0
        ("knn", "knn", KNeighborsRegressor()),  # size unknown (NaN)
        ("tree", "depth 3", DecisionTreeRegressor(max_depth=3, random_state=0)),
    ]
    table = student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder)
    assert table["complexity"].iloc[0] == 0 and np.isnan(table["complexity"].iloc[1])
    figure = plot_student_size(table)
    (axis,) = figure.axes
    texts = [text.get_text() for text in axis.texts]
    assert "not drawn (size 0 or unknown): lasso, knn" in texts
    assert [line.get_label() for line in axis.get_lines()] == ["tree"]
    figure.savefig(tmp_path / "pilot.png")


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("test_size", 1.5, ValueError),
        ("test_size", 0, ValueError),
        ("test_size", 500, ValueError),
        ("test_size", float("nan"), ValueError),
        ("test_size", "0.2", TypeError),
        ("test_size", True, TypeError),
        ("random_state", -1, ValueError),
        ("random_state", 1.5, TypeError),
        ("random_state", np.random.default_rng(0), TypeError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, np.random.Generator) else None,
)
def test_the_split_arguments_are_refused_in_the_pilots_own_words(X, argument, value, error):
    # refused before any student is fitted, naming the pilot's argument, not train_test_split's
    ladder = [("tree", "depth 1", DecisionTreeRegressor(max_depth=1))]
    with pytest.raises(error) as raised:
        student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder, **{argument: value})
    assert str(raised.value).startswith(f"{argument} must be ")
    assert "train_test_split" not in str(raised.value)
    if argument == "test_size":  # the bounds said are those of these 500 rows
        assert "[1, 499]" in str(raised.value)


def test_the_largest_count_of_held_out_rows_is_accepted(X):
    ladder = [("tree", "depth 1", DecisionTreeRegressor(max_depth=1))]
    with pytest.warns(UserWarning, match="into 1 to fit and 499 to score"):
        student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder, test_size=499)


def test_a_split_too_small_to_rank_students_is_warned_about(X):
    ladder = [("tree", "depth 2", DecisionTreeRegressor(max_depth=2))]
    with pytest.warns(UserWarning, match=r"into 498 to fit and 2 to score \(test_size=2\)"):
        student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder, test_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        student_size_pilot(None, X, teacher_scores=teacher(X), students=ladder)
    assert not [w for w in caught if "too noisy to rank" in str(w.message)]


@pytest.mark.parametrize("columns", ["both", "event"], ids=["two columns", "event column"])
def test_scores_given_beside_a_teacher_are_read_as_the_teachers_output(X, columns):
    # a classifier's own probabilities, passed with it, are mimicked as its log-odds, as the
    # teacher queried by the pilot is (they had been read as plain numbers in [0, 1])
    labels = (teacher(X) > 0).astype(int)
    classifier = LogisticRegression().fit(X, labels)
    probabilities = classifier.predict_proba(X)
    given = probabilities if columns == "both" else probabilities[:, 1]
    ladder = [("tree", "depth 3", DecisionTreeRegressor(max_depth=3, random_state=0))]
    queried = student_size_pilot(classifier, X, students=ladder, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor warned about as probabilities of unknown source
        passed = student_size_pilot(
            classifier, X, teacher_scores=given, students=ladder, random_state=0
        )
    columns = ["complexity", "r2", "rmse", "agreement", "auc"]
    np.testing.assert_allclose(passed[columns].to_numpy(float), queried[columns].to_numpy(float))


def test_labels_given_as_a_teachers_scores_are_refused(X):
    # scores beside a teacher stand for it: its labels (or another black box's scores) in
    # their place had been mimicked and measured silently, a table about no teacher
    labels = (teacher(X) > 0).astype(int)
    classifier = LogisticRegression().fit(X, labels)
    ladder = [("tree", "depth 3", DecisionTreeRegressor(max_depth=3, random_state=0))]
    with pytest.raises(ValueError, match="teacher_scores differ from the teacher's own scores"):
        student_size_pilot(classifier, X, teacher_scores=labels, students=ladder, random_state=0)
    other = LogisticRegression().fit(X[:, :1], labels).predict_proba(X[:, :1])
    with pytest.raises(ValueError, match="teacher_scores differ from the teacher's own scores"):
        student_size_pilot(classifier, X, teacher_scores=other, students=ladder, random_state=0)
    # the teacher's own scores, rounded as exported, are read as its output
    rounded = np.round(classifier.predict_proba(X), 3)
    table = student_size_pilot(
        classifier, X, teacher_scores=rounded, students=ladder, random_state=0
    )
    assert table["r2"].iloc[0] > 0.5


def test_the_plot_names_the_scale_r2_is_measured_on(X):
    # a regressor's scores are mimicked as they are: its R^2 is on them, not on log-odds
    ladder = [("tree", "depth 2", DecisionTreeRegressor(max_depth=2, random_state=0))]
    plain = student_size_pilot(teacher, X, students=ladder, random_state=0)
    (axis,) = plot_student_size(plain).axes
    assert axis.get_ylabel() == "held-out R^2 on the teacher's scores"
    classifier = LogisticRegression().fit(X, (teacher(X) > 0).astype(int))
    table = student_size_pilot(classifier, X, students=ladder, random_state=0)
    assert plot_student_size(table).axes[0].get_ylabel() == "held-out R^2 on log-odds"


def test_the_plot_draws_every_student_whatever_its_family_and_label(X):
    # a family of None had been dropped from the figure by the grouping, silently, and a label
    # given as a number had failed to draw
    ladder = [
        (None, "depth 2", DecisionTreeRegressor(max_depth=2, random_state=0)),
        (None, "depth 3", DecisionTreeRegressor(max_depth=3, random_state=0)),
        ("tree", 1, DecisionTreeRegressor(max_depth=1, random_state=0)),
    ]
    table = student_size_pilot(teacher, X, students=ladder, random_state=0)
    (axis,) = plot_student_size(table).axes
    drawn = sorted(x for line in axis.get_lines() for x in line.get_xdata())
    assert drawn == sorted(table["complexity"])
    assert {text.get_text() for text in axis.texts} == {"depth 2", "depth 3", "1"}


@pytest.mark.parametrize("given_ax", [False, True], ids=["own figure", "given ax"])
def test_the_plot_keeps_its_point_labels_apart_and_inside_the_axes(given_ax):
    # the default ladder on four features: EBMs of 9 and 10 terms (5 and 10 pairs asked for)
    # sit side by side near the top, and the deepest tree is the rightmost point
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = pd.DataFrame(
        {
            "family": ["EBM"] * 4 + ["tree"] * 4,
            "label": [f"EBM, {k} pairs" for k in (0, 2, 5, 10)]
            + [f"tree, depth {d}" for d in (2, 4, 6, 8)],
            "complexity": [4.0, 6.0, 9.0, 10.0, 4.0, 16.0, 52.0, 125.0],
            "r2": [0.200, 0.956, 0.944, 0.948, 0.184, 0.224, 0.136, 0.236],
            "rmse": np.ones(8),
            "fit_seconds": np.ones(8),
        }
    )
    if given_ax:
        ax = Figure(figsize=(6, 4.5)).subplots()
        figure = plot_student_size(table, ax=ax)
    else:
        figure = plot_student_size(table)
    (axis,) = figure.axes
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = axis.get_window_extent(renderer)
    labels = {text.get_text(): text.get_window_extent(renderer) for text in axis.texts}
    assert set(labels) == {"0 pairs", "2 pairs", "5 pairs", "10 pairs"} | {
        f"depth {d}" for d in (2, 4, 6, 8)
    }
    for name, extent in labels.items():
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, name
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, name
    for (a, first), (b, second) in itertools.combinations(labels.items(), 2):
        assert not first.overlaps(second), (a, b)


@pytest.mark.parametrize("response", ["auto", "predict_proba"])
def test_pilot_advises_for_margins_given_as_teacher_scores_what_runs(response):
    # a classifier's margins given as teacher_scores beside it are refused where they stand for
    # its probabilities, with the distillers' advice; the response it names then runs (the
    # students, fitted without the teacher, had advised response='predict', which queries the
    # teacher's labels and refuses margins that are no labels)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 2))
    y = (X[:, 0] + rng.normal(size=240) > 0).astype(int)
    teacher = LogisticRegression().fit(X, y)
    margins = teacher.decision_function(X)
    tree = [("rule tree", "4 leaves", DistilledTree(max_leaf_nodes=4, random_state=0))]
    with pytest.raises(ValueError) as refused:
        student_size_pilot(
            teacher, X, teacher_scores=margins, students=tree, random_state=0, response=response
        )
    with pytest.raises(ValueError) as distiller:
        DistilledTree(teacher, response=response).fit(X, y, teacher_scores=margins)
    assert str(refused.value) == str(distiller.value)  # the distillers' own words
    advised = re.findall(r"response='(\w+)'", str(refused.value).split(". ", 1)[1])
    assert advised == ["decision_function"]
    table = student_size_pilot(
        teacher, X, teacher_scores=margins, students=tree, random_state=0, response=advised[0]
    )
    # the advised reading is the teacher's own: margins read as log-odds, mimicked closely
    assert table["r2"].iloc[0] > 0.5


def test_plot_student_size_writes_labels_and_families_as_given():
    # a "$...$" in a ladder's names is text (a price band), not a formula: drawn as mathtext,
    # "$5 to $10" lost its dollars and "\badcommand" stopped the figure from saving
    import io

    table = pd.DataFrame(
        {
            "family": ["cost in $ (k$)", "cost in $ (k$)", r"$\badfamily$"],
            "label": ["band, $5 to $10", "band, $10 to $20", r"rung, $\badcommand$"],
            "complexity": [2.0, 4.0, 2.0],
            "r2": [0.5, 0.7, 0.6],
            "rmse": [1.0, 1.0, 1.0],
            "fit_seconds": [0.0, 0.0, 0.0],
        }
    )
    figure = plot_student_size(table)
    figure.savefig(io.BytesIO(), format="png")
    ax = figure.axes[0]
    labels = {text.get_text(): text for text in ax.texts}
    assert {"$5 to $10", "$10 to $20", r"$\badcommand$"} <= set(labels)
    assert not any(text.get_parse_math() for text in labels.values())
    legend = [text for text in ax.get_legend().get_texts()]
    assert [t.get_text() for t in legend] == ["cost in $ (k$)", r"$\badfamily$"]
    assert not any(text.get_parse_math() for text in legend)
