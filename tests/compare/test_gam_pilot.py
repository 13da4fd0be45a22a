"""Student-size pilot: fidelity against complexity."""

import matplotlib
import numpy as np
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill.pilot import plot_student_size, student_complexity, student_size_pilot


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
    (line,) = figure.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), table["r2"])
    with pytest.raises(ValueError, match="metric must be a column"):
        plot_student_size(table, metric="accuracy")


def test_complexity_of_unknown_student_is_nan():
    assert np.isnan(student_complexity(object()))
