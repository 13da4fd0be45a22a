"""Class columns read by label, settings changed after fit, bins of large magnitudes,
extreme scales in the statistics, and the messages of bad input to public helpers."""

import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill import CompareAudit, DistilledGAM, DistilledTree
from sklearn_distill.pilot import student_size_pilot
from sklearn_distill.report import format_number, format_p_value, table_to_html
from sklearn_distill.stats import (
    binned_rate,
    bootstrap_correlations,
    bootstrap_p_value,
    compare_shapes,
    correlation,
    term_stability,
)

_SMALL = {"outer_bags": 2, "max_rounds": 200, "interactions": 0, "max_bins": 32, "n_jobs": 1}

pytestmark = pytest.mark.filterwarnings("ignore:.*probabilities are 0 or 1")


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})


def _yes_no(X, seed=1):
    rng = np.random.default_rng(seed)
    return np.where(X["a"] + rng.normal(size=len(X)) > 0, "yes", "no")


def _zero_one(X, seed=1):
    rng = np.random.default_rng(seed)
    return (X["a"] + rng.normal(size=len(X)) > 0).astype(int).to_numpy()


# a small tree and a small GAM, built afresh for each test
_EACH_DISTILLER = pytest.mark.parametrize(
    "make",
    [
        lambda: DistilledTree(max_leaf_nodes=8),
        lambda: DistilledGAM(student=ExplainableBoostingRegressor(**_SMALL)),
    ],
    ids=["tree", "gam"],
)


@_EACH_DISTILLER
def test_class_columns_are_read_by_their_labels(make):
    X = _frame()
    y = _yes_no(X)
    proba = LogisticRegression().fit(X, y).predict_proba(X)
    in_order = pd.DataFrame(proba, columns=["no", "yes"])
    reversed_ = in_order[["yes", "no"]]
    fitted = [
        make().set_params(response="predict_proba", random_state=0).fit(X, y, teacher_scores=s)
        for s in (in_order, reversed_)
    ]
    yes = list(fitted[0].classes_).index("yes")
    assert np.allclose(fitted[0].predict_proba(X), fitted[1].predict_proba(X))
    assert np.corrcoef(fitted[1].predict_proba(X)[:, yes], in_order["yes"])[0, 1] > 0.9
    # labels that name one class but not the other are refused
    with pytest.raises(ValueError, match=r"teacher_scores must have one column per class"):
        make().set_params(response="predict_proba").fit(
            X, y, teacher_scores=in_order.set_axis(["yes", "maybe"], axis=1)
        )
    # labels that name no class are read by position, as before
    other = make().set_params(response="predict_proba", random_state=0)
    other.fit(X, y, teacher_scores=in_order.set_axis(["p0", "p1"], axis=1))
    assert np.allclose(other.predict_proba(X), fitted[0].predict_proba(X))


@_EACH_DISTILLER
def test_a_frame_of_numbered_class_columns_reordered_is_read_by_label(make):
    # pd.DataFrame(proba)[[1, 0]] has a RangeIndex (start 1, step -1) for its columns, which
    # had been taken for positions: the student's class 1 was the teacher's class 0
    X = _frame()
    y = _zero_one(X)
    proba = pd.DataFrame(LogisticRegression().fit(X, y).predict_proba(X))
    swapped = proba[[1, 0]]
    assert isinstance(swapped.columns, pd.RangeIndex)
    model = make().set_params(response="predict_proba", random_state=0)
    model.fit(X, y, teacher_scores=swapped)
    assert np.corrcoef(model.predict_proba(X)[:, 1], proba[1])[0, 1] > 0.9
    assert model.fidelity(X, proba)["r2"] > 0.5


@_EACH_DISTILLER
def test_class_columns_numbered_out_of_order_are_read_alike_at_fit_and_after(make):
    # no y: the classes are numbered 0..k-1, and a column labelled by such a number is that
    # class's at fit as in fidelity() (fit had read the columns by position, fidelity() by
    # label: the very frame the model was fitted on scored R^2 -2)
    X = _frame()
    labels = np.digitize(X["a"] + X["b"], [-0.5, 0.5])
    proba = pd.DataFrame(LogisticRegression().fit(X, labels).predict_proba(X))
    shuffled = proba[[2, 0, 1]]
    model = make().set_params(response="predict_proba", random_state=0)
    model.fit(X, teacher_scores=shuffled)
    assert list(model.classes_) == [0, 1, 2]
    assert model.fidelity(X, shuffled)["r2"] == pytest.approx(model.fidelity(X, proba)["r2"])
    assert model.fidelity(X, shuffled)["r2"] > 0.5
    assert np.corrcoef(model.predict_proba(X)[:, 2], proba[2])[0, 1] > 0.9
    binary = pd.DataFrame(LogisticRegression().fit(X, labels > 0).predict_proba(X))
    model.fit(X, teacher_scores=binary[[1, 0]])
    assert model.fidelity(X, binary[[1, 0]])["r2"] > 0.5
    assert np.corrcoef(model.predict_proba(X)[:, 1], binary[1])[0, 1] > 0.8


@_EACH_DISTILLER
def test_class_columns_named_without_y_are_the_classes(make):
    # columns labelled by class names, fitted with no y (or a y that lacks a class): they had
    # been read by position, classes_ numbered 0..k-1, so the same frame with its columns in
    # sorted order scored the student against another class's column (R^2 -1.9)
    X = _frame()
    names = np.array(["alpha", "mid", "zeta"])
    labels = names[np.digitize(X["a"] + X["b"], [-0.5, 0.5])]
    teacher = LogisticRegression().fit(X, labels)
    proba = pd.DataFrame(teacher.predict_proba(X), columns=teacher.classes_)
    shuffled = proba[["zeta", "alpha", "mid"]]
    for y in (None, np.where(labels == "mid", "alpha", labels)):
        model = make().set_params(response="predict_proba", random_state=0)
        model.fit(X, y, teacher_scores=shuffled)
        assert list(model.classes_) == ["alpha", "mid", "zeta"]
        # each class's probability follows the teacher's column of that class, no other's
        both = np.corrcoef(model.predict_proba(X).T, proba.to_numpy().T)[:3, 3:]
        assert list(np.argmax(both, axis=1)) == [0, 1, 2]
        fitted = model.fidelity(X, shuffled)
        assert fitted["r2"] > 0.5
        assert model.fidelity(X, proba)["r2"] == pytest.approx(fitted["r2"])
        assert model.fidelity(X, proba.to_numpy())["r2"] == pytest.approx(fitted["r2"])
    # numbers other than 0..k-1 name classes too; a binary frame's reversed labels alike
    numbered = make().set_params(response="predict_proba", random_state=0)
    numbered.fit(X, teacher_scores=proba.set_axis([5, 7, 9], axis=1)[[9, 5, 7]])
    assert list(numbered.classes_) == [5, 7, 9]
    assert numbered.fidelity(X, proba.to_numpy())["r2"] > 0.5
    binary = pd.DataFrame(
        LogisticRegression().fit(X, labels == "zeta").predict_proba(X), columns=["no", "yes"]
    )
    model = make().set_params(response="predict_proba", random_state=0)
    model.fit(X, teacher_scores=binary[["yes", "no"]])
    assert list(model.classes_) == ["no", "yes"]
    assert np.corrcoef(model.predict_proba(X)[:, 1], binary["yes"])[0, 1] > 0.8
    assert model.fidelity(X, binary)["r2"] > 0.5


@_EACH_DISTILLER
def test_a_frame_of_scores_is_read_by_the_labels_of_fit_after_fit(make):
    # columns that name no class of y's (or plain outputs) are read by position at fit; the
    # same frame with its columns in another order had been read by position in fidelity()
    # too, each column standing for another output or class (R^2 -1856 and -2.5 for 0.95)
    X = _frame()
    outputs = pd.DataFrame({"price": 3 * X["a"], "volume": 100 - 2 * X["b"]})
    model = make().set_params(random_state=0).fit(X, teacher_scores=outputs)
    swapped = outputs[["volume", "price"]]
    assert model.fidelity(X, outputs)["r2"] > 0.5
    assert model.fidelity(X, swapped)["r2"] == pytest.approx(model.fidelity(X, outputs)["r2"])
    assert model.score(X, teacher_scores=swapped) == pytest.approx(
        model.score(X, teacher_scores=outputs)
    )
    y = _zero_one(X)
    proba = pd.DataFrame(LogisticRegression().fit(X, y).predict_proba(X), columns=["no", "yes"])
    model = make().set_params(response="predict_proba", random_state=0)
    model.fit(X, y, teacher_scores=proba)  # y's classes 0 and 1: the columns by position
    assert model.fidelity(X, proba)["r2"] > 0.5
    reversed_ = proba[["yes", "no"]]
    assert model.fidelity(X, reversed_)["r2"] == pytest.approx(model.fidelity(X, proba)["r2"])
    assert np.allclose(model.teacher_target(X, reversed_), model.teacher_target(X, proba))


def test_a_callable_returning_class_columns_out_of_order_is_warned_about():
    # a callable's class columns are read by position (documented); a frame of its whose
    # labels say another order is read silently against them otherwise
    X = _frame()
    y = _zero_one(X)
    teacher = LogisticRegression().fit(X, y)
    model = DistilledTree(
        lambda Z: pd.DataFrame(teacher.predict_proba(Z))[[1, 0]],
        response="predict_proba",
        max_leaf_nodes=4,
        random_state=0,
    )
    with pytest.warns(UserWarning, match=r"labelled \[1, 0\].*read by position") as caught:
        model.fit(X)
    assert caught[0].filename == __file__  # the user's line
    ordered = DistilledTree(
        lambda Z: pd.DataFrame(teacher.predict_proba(Z)),
        response="predict_proba",
        max_leaf_nodes=4,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ordered.fit(X)  # columns in order: nothing to say
    assert not [w for w in caught if "read by position" in str(w.message)]


def _probability_audit_settings() -> dict:
    """A small audit of a probability score read as given."""
    return dict(
        response="predict_proba", calibration=None, n_crossfits=1, random_state=0, cv=3,
        student=ExplainableBoostingRegressor(**_SMALL), outcome=ExplainableBoostingClassifier(**_SMALL),
    )  # fmt: skip


def test_the_audit_reads_class_columns_by_label():
    X = _frame(600)
    y = _yes_no(X)
    proba = pd.DataFrame(LogisticRegression().fit(X, y).predict_proba(X), columns=["no", "yes"])
    settings = _probability_audit_settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # read by position, the reversed columns make a score that falls with the event
        warnings.filterwarnings("error", message=".*falls.*", category=UserWarning)
        audit = CompareAudit(**settings).fit(X, y, teacher_scores=proba[["yes", "no"]])
    assert audit.fidelity_["r2"] > 0.9


def test_numbered_class_columns_reordered_are_read_by_number_beside_labels_of_text():
    # pd.DataFrame(proba)[[1, 0]] beside y of "no"/"yes": the numbers name no class, so they
    # had been read by position, the audit's score falling with the event and the tree's
    # P(yes) the teacher's P(no)
    X = _frame(600)
    y = _yes_no(X)
    proba = pd.DataFrame(LogisticRegression().fit(X, y).predict_proba(X))
    swapped = proba[[1, 0]]
    tree = DistilledTree(max_leaf_nodes=8, response="predict_proba", random_state=0)
    tree.fit(X, y, teacher_scores=swapped)
    assert list(tree.classes_) == ["no", "yes"]
    assert np.corrcoef(tree.predict_proba(X)[:, 1], proba[1])[0, 1] > 0.9
    assert tree.fidelity(X, swapped)["r2"] == pytest.approx(tree.fidelity(X, proba)["r2"])
    settings = _probability_audit_settings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("error", message=".*falls.*", category=UserWarning)
        audit = CompareAudit(**settings).fit(X, y, teacher_scores=swapped)
    assert audit.fidelity_["r2"] > 0.9


def test_a_frames_column_numbers_in_order_are_positions_whatever_they_start_at():
    # frame.iloc[:, 1:] of a frame read without a header (an id, then the class columns) has
    # columns RangeIndex(1, 3): positions, as they had been, not labels naming class 1 alone
    X = _frame()
    y = _zero_one(X)
    proba = LogisticRegression().fit(X, y).predict_proba(X)
    read = pd.DataFrame(np.column_stack([np.arange(len(X)), proba])).iloc[:, 1:]
    assert isinstance(read.columns, pd.RangeIndex) and list(read.columns) == [1, 2]
    tree = DistilledTree(max_leaf_nodes=8, response="predict_proba", random_state=0)
    tree.fit(X, y, teacher_scores=read)
    assert np.corrcoef(tree.predict_proba(X)[:, 1], proba[:, 1])[0, 1] > 0.9
    assert tree.fidelity(X, read)["r2"] == pytest.approx(tree.fidelity(X, proba)["r2"])


def test_a_callable_returning_several_plain_outputs_is_not_warned_about_class_order():
    # response "predict": the columns are outputs mimicked one by one, not classes
    X = _frame()
    model = DistilledTree(
        lambda Z: pd.DataFrame({"revenue": 2 * Z["a"], "cost": Z["b"]}),
        max_leaf_nodes=4,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
        model.fidelity(X)
    assert not [w for w in caught if "read by position" in str(w.message)]


def test_settings_changed_after_fit_are_refused_where_they_would_change_the_reading():
    X = _frame()
    y = _yes_no(X)
    proba = LogisticRegression().fit(X, y).predict_proba(X)
    gam = DistilledGAM(
        response="predict_proba", random_state=0, student=ExplainableBoostingRegressor(**_SMALL)
    )
    gam.fit(X, y, teacher_scores=proba)
    before = gam.fidelity(X, proba)
    assert gam.fit_settings_["temperature"] == 1.0
    gam.set_params(temperature=3.0)
    for call in (gam.fidelity, gam.teacher_target, lambda X, s: gam.score(X, teacher_scores=s)):
        with pytest.raises(ValueError, match=r"temperature 1.0 at fit, 3.0 now"):
            call(X, proba)
    gam.set_params(temperature=1.0)
    assert gam.fidelity(X, proba) == before
    calibrated = DistilledGAM(
        calibration="isotonic", random_state=0, student=ExplainableBoostingRegressor(**_SMALL)
    )
    calibrated.fit(X, y, teacher_scores=X["a"].to_numpy())
    calibrated.set_params(calibration=None)
    assert calibrated.predict_proba(X).shape == (len(X), 2)  # still the fitted student's


@pytest.mark.parametrize("model", [DistilledTree, DistilledGAM])
def test_score_refuses_a_reordered_y(model):
    X = _frame().set_axis(np.random.default_rng(1).permutation(400) + 1000)
    y = pd.Series(2 * X["a"], index=X.index)
    fitted = model(random_state=0).fit(X, y)
    assert fitted.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"y has X's row labels in its index, in another order"):
        fitted.score(X, y.sort_index())


def test_large_continuous_features_are_not_labelled_as_integer_bins():
    rng = np.random.default_rng(0)
    x = 1e6 + rng.uniform(0, 50, 2000)
    x[0], x[1] = 1e6, 1e6 + 50  # whole-number ends, fractional values between
    gam = DistilledGAM(random_state=0, student=ExplainableBoostingRegressor(**_SMALL))
    gam.fit(pd.DataFrame({"x": x}), teacher_scores=np.sin(x - 1e6))
    table = gam.shape_functions().iloc[1:]  # the missing-value bin left out
    value = table["value"].astype(float)
    assert (
        (value >= table["bin_low"].astype(float)) & (value <= table["bin_high"].astype(float))
    ).all()
    assert table["label"].nunique() == len(table)
    # an integer feature of large values still reads as integers
    ints = np.repeat(np.arange(1_000_000, 1_000_010), 50).astype(float)
    gam.fit(pd.DataFrame({"x": ints}), teacher_scores=np.sin(ints))
    labels = gam.shape_functions()["label"].iloc[1:]
    assert labels.str.fullmatch(r"\d+(-\d+)?").all()


def test_correlations_and_stability_do_not_depend_on_the_scale():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = a + rng.normal(size=200)
    reference = correlation(a, b)
    for scale in (1e-200, 1e-160, 1e200):
        assert correlation(a * scale, b) == pytest.approx(reference, rel=1e-12)
        table = bootstrap_correlations(a * scale, b, n_bootstrap=40, random_state=0)
        assert table.loc["pearson", "n_bootstrap"] == 40
        assert table.loc["pearson", "estimate"] == pytest.approx(reference, rel=1e-12)
    contributions = rng.normal(size=(4, 100, 2)) * np.array([1.0, 3.0])
    contributions[:, :, 1] *= rng.uniform(0.2, 2.0, size=(4, 1))  # a term whose size moves
    plain = term_stability(contributions, ["a", "b"])
    for scale in (1e-200, 1e200):
        scaled = term_stability(contributions * scale, ["a", "b"])
        for column in ("importance_cv", "shape_noise"):
            assert np.allclose(scaled[column], plain[column], rtol=1e-9)
        assert (scaled["unstable"] == plain["unstable"]).all()


def test_compare_shapes_refuses_repeated_keys_and_negative_errors():
    mimic = pd.DataFrame(
        {"term": ["a"] * 3, "value": [1, 2, 3], "score": [0.1, 0.2, 0.3], "std_error": 0.1}
    )
    outcome = mimic.assign(score=[0.5, 0.2, 0.1])
    with pytest.raises(ValueError, match=r"mimic must hold one row per \('term', 'value'\)"):
        compare_shapes(pd.concat([mimic, mimic]), outcome)
    with pytest.raises(ValueError, match=r"outcome's std_error must be non-negative"):
        compare_shapes(mimic, outcome.assign(std_error=-0.1))


def test_several_plain_outputs_have_shapes_per_output():
    X = _frame()
    targets = np.column_stack([X["a"], X["b"] ** 2])
    gam = DistilledGAM(random_state=0, student=ExplainableBoostingRegressor(**_SMALL)).fit(
        X, targets
    )
    table = gam.shape_functions()
    assert sorted(table["output"].unique()) == [0, 1]
    assert "class" not in table
    assert gam.plot_shapes(["a"], class_=1) is not None
    with pytest.raises(ValueError, match=r"class_ must be one of the table's outputs"):
        gam.plot_shapes(["a"])


def test_a_numbers_only_student_names_the_categorical_columns():
    X = _frame().assign(c=lambda f: np.where(f["a"] > 0, "u", "v"))
    gam = DistilledGAM(student=DecisionTreeRegressor(max_depth=2))
    with pytest.raises(ValueError, match=r"categorical columns \['c'\]; DecisionTreeRegressor"):
        gam.fit(X, teacher_scores=X["a"].to_numpy())


def test_the_pilot_gives_wrapped_students_their_options_and_checks_y():
    X = _frame()
    ladder = [("tree", "depth 1", DecisionTreeRegressor(max_depth=1))]
    table = student_size_pilot(
        None, X, teacher_scores=2 * X["a"].to_numpy(), students=ladder, max_leaf_nodes=3,
        random_state=0,
    )  # fmt: skip
    assert len(table) == 1
    with pytest.raises(ValueError, match=r"y must hold class labels.*continuous"):
        student_size_pilot(
            None, X, teacher_scores=2 * X["a"].to_numpy(), students=ladder, y=X["b"].to_numpy()
        )


def test_public_helpers_name_their_bad_input():
    with pytest.raises(TypeError, match=r"^y must be numbers"):
        binned_rate([1.0, 2.0, 3.0], ["no", "yes", "no"])
    with pytest.raises(
        ValueError, match=r"coded 0/1 \(the outcome\); got 1 other value\(s\), e.g. 2"
    ):
        binned_rate([1.0, 2.0, 3.0], [0, 2, 1])
    with pytest.raises(TypeError, match=r"^y must be numbers"):
        correlation([1.0, 2.0, 3.0], ["a", "b", "c"])
    with pytest.raises(TypeError, match=r"^replicates must be numbers"):
        bootstrap_p_value(["a", "b"])
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    one = bootstrap_correlations(a, a**3, methods="pearson", n_bootstrap=20, random_state=0)
    assert list(one.index) == ["pearson"]
    with pytest.raises(ValueError, match=r"flag_column must be a column of frame"):
        table_to_html(pd.DataFrame({"x": [1]}), flag_column="zz")
    with pytest.raises(ValueError, match=r"digits must be an integer >= 0"):
        format_number(1.5, digits=-1)
    assert format_number(None) == format_number(pd.NA) == ""
    with pytest.raises(TypeError, match=r"value must be a number"):
        format_number("x")
    for impossible in (1.5, -0.1):
        with pytest.raises(ValueError, match=r"p_value must be in \[0, 1\]"):
            format_p_value(impossible)


def test_class_labels_of_other_types_are_matched_by_value_then_by_text():
    from sklearn_distill._teacher import align_score_columns

    proba = pd.DataFrame([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    flipped = proba.iloc[:, ::-1]

    def columns(frame, labels, classes):
        return align_score_columns(frame.set_axis(labels, axis=1), classes).to_numpy()

    # booleans (a list of them is no row mask here), floats against integers
    assert np.array_equal(columns(flipped, [True, False], [False, True]), proba.to_numpy())
    assert np.array_equal(columns(flipped, [1, 0], [0.0, 1.0]), proba.to_numpy())
    # 0..k-1 in order are positions; the classes written as text (a CSV file's header) are
    # matched by text when no column matches by value, as the audit matches a teacher's classes
    assert np.array_equal(columns(proba, [0, 1], [1, 2]), proba.to_numpy())
    assert np.array_equal(columns(proba, ["1", "0"], [0, 1]), flipped.to_numpy())
    assert np.array_equal(columns(proba, ["0", "1"], [0, 1]), proba.to_numpy())
    assert np.array_equal(columns(proba, ["x", "y"], [0, 1]), proba.to_numpy())
    with pytest.raises(ValueError, match="name some classes and not others"):
        columns(proba, ["1", "x"], [0, 1])
    # columns beyond y's classes (a fit on rows that lack a class): by position
    three = pd.DataFrame(np.full((2, 3), 1 / 3), columns=["a", "b", "c"])
    assert list(align_score_columns(three, ["a", "b"]).columns) == ["a", "b", "c"]


def _small_audit(n=500, seed=0, **settings):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] - 0.5 * X["b"] + 0.4 * X["a"] * X["b"]
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int), name="defaulted")
    score = logit + 0.3 * rng.normal(size=n)
    audit = CompareAudit(
        student=ExplainableBoostingRegressor(**{**_SMALL, "interactions": [(0, 1)]}),
        outcome=ExplainableBoostingClassifier(**{**_SMALL, "interactions": [(0, 1)]}),
        interactions=[("a", "b")], n_crossfits=1, cv=3, random_state=seed, **settings,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return audit.fit(X, y, teacher_scores=score), X, y, score


def test_interactions_share_one_colour_scale_and_the_audit_draws_them():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sklearn_distill.plotting import interaction_limits, plot_interaction

    audit, *_ = _small_audit()
    table = audit.compare()
    term = "a & b"
    rows = table[table["term"] == term]
    surface, difference = interaction_limits(table, [term])
    assert surface == pytest.approx(np.nanmax(np.abs(rows[["mimic", "outcome"]].to_numpy(float))))
    assert difference == pytest.approx(np.nanmax(np.abs(rows["difference"].to_numpy(float))))
    # a shared scale wider than the term's own: the difference panel takes it
    fig = plot_interaction(table, term, limits=(5.0, 4.0))
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert [tuple(image.get_clim()) for image in images] == [(-5.0, 5.0)] * 2 + [(-4.0, 4.0)]
    with pytest.raises(ValueError, match="limits"):
        plot_interaction(table, term, limits=(1.0,))
    cells, blocks = audit.plot_interaction(term), audit.plot_interaction(term, blocks=True)
    assert cells is not blocks and len(blocks.axes) >= 3
    with pytest.raises(ValueError, match=r"term must be one of the audit's interactions"):
        audit.plot_interaction("a")
    fig = Figure()
    ax = fig.subplots()
    assert audit.plot_calibration(ax=ax) is fig
    fig = Figure()
    ax = fig.subplots()
    assert audit.plot_residuals(ax=ax) is fig


def test_plot_interaction_draws_the_blocks_asked_for():
    import matplotlib

    matplotlib.use("Agg")

    audit, *_ = _small_audit()
    for blocks, table in (
        (True, audit.compare_interactions()),
        (2, audit.compare_interactions(blocks=2)),
        (4, audit.compare_interactions(blocks=4)),
    ):
        drawn = audit.plot_interaction("a & b", blocks=blocks)
        # the difference panel holds one cell per block of compare_interactions' grid (a count
        # had drawn the default 3 x 3 grid)
        grid = drawn.axes[2].get_images()[0].get_array()
        shape = (table["block"].str[1].nunique(), table["block"].str[0].nunique())
        assert grid.shape == shape
    with pytest.raises(TypeError, match=r"blocks must be True or False; got 'no'"):
        audit.plot_interaction("a & b", blocks="no")
    with pytest.raises(ValueError, match=r"blocks"):
        audit.plot_interaction("a & b", blocks=1)


def test_the_report_names_the_outcome_by_its_label(tmp_path):
    audit, *_ = _small_audit()
    page = open(audit.report(tmp_path / "r.html", n_bootstrap=40), encoding="utf-8").read()
    assert "<dt>outcome event</dt><dd>defaulted = 1</dd>" in page
    from sklearn_distill.report import write_audit_report

    other = write_audit_report(audit, tmp_path / "s.html", n_bootstrap=40, outcome="status")
    assert "<dt>outcome event</dt><dd>status = 1</dd>" in open(other, encoding="utf-8").read()
    with pytest.raises(TypeError, match="outcome"):
        write_audit_report(audit, tmp_path / "t.html", n_bootstrap=40, outcome=3)


def test_a_falling_score_read_from_class_columns_names_the_event_by_its_label():
    X = _frame(600)
    y = _yes_no(X)
    proba = LogisticRegression().fit(X, y).predict_proba(X)
    audit = CompareAudit(
        response="predict_proba", n_crossfits=1, cv=3, random_state=0,
        student=ExplainableBoostingRegressor(**_SMALL), outcome=ExplainableBoostingClassifier(**_SMALL),
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.fit(X, y, teacher_scores=proba[:, ::-1])  # the columns swapped, unlabelled
    falls = [str(w.message) for w in caught if "score falls as" in str(w.message)]
    assert falls and all("P(y = 'yes')" in text for text in falls)
