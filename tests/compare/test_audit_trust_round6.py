"""Sixth probe round on the scikit-learn side: what the audit and the distillers read, and what
they say about it (label given as the score, copies of the score of any kind, class headers as
text, numpy string names, margins read as log-odds, repeated index labels, weights sorted
apart, class columns that are not distributions, a rule tree of other rows or a temperature,
categories a subsample missed, values and names that read alike)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from sklearn_distill import CompareAudit, DistilledGAM, DistilledTree
from sklearn_distill._data import check_same_order

_SMALL = {"outer_bags": 2, "max_rounds": 200, "interactions": 0, "max_bins": 32, "n_jobs": 1}


def _audit(teacher=None, *, ebm=_SMALL, **settings):
    return CompareAudit(
        teacher,
        student=ExplainableBoostingRegressor(**ebm),
        outcome=ExplainableBoostingClassifier(**ebm),
        n_crossfits=1, cv=3, random_state=0, **settings,
    )  # fmt: skip


def _world(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] - 0.5 * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, logit.to_numpy()


def test_the_label_as_two_class_columns_or_from_a_memorising_teacher_is_refused():
    X, y, _ = _world()
    one_hot = np.column_stack([1 - y, y]).astype(float)
    with pytest.raises(ValueError, match="teacher_scores must be the black box's score"):
        _audit(response="predict_proba").fit(X, y, teacher_scores=one_hot)
    memoriser = DecisionTreeClassifier(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="teacher's scores on X are the outcome itself"):
        _audit(memoriser).fit(X, y)
    # the same teacher on rows it was not trained on is a black box like any other
    X2, y2, _ = _world(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _audit(memoriser).fit(X2, y2).fidelity_["r2"] > 0


def test_a_copy_of_the_score_held_as_a_category_or_as_text_is_named():
    X, y, score = _world()
    decile = pd.qcut(score, 10, labels=False) + 1
    # deciles of a skewed score held as text: a copy, as the same deciles held as numbers are
    skewed = np.exp(1.5 * score)
    text_deciles = [f"D{d}" for d in pd.qcut(skewed, 10, labels=False)]
    for name, column, scored in [
        ("decile_cat", pd.Categorical(decile), decile),
        ("decile_txt", [f"D{d}" for d in decile], decile),
        ("skewed_txt", text_deciles, skewed),
    ]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit = _audit().fit(X.assign(**{name: column}), y, teacher_scores=scored)
        assert list(audit.score_copies_) == [name] and audit.score_copies_[name] >= 0.99
        said = [w for w in caught if "function of one feature of X alone" in str(w.message)]
        assert len(said) == 1 and "correlation ratio" in str(said[0].message)
    # an identifier (one level per row) explains any score and is no copy of it; nor is a
    # category the score depends on in part
    ids = [f"r{k}" for k in range(len(X))]
    part = pd.qcut(X["a"] + X["b"], 3, labels=["lo", "mid", "hi"]).astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit().fit(X.assign(row=ids, half=part), y, teacher_scores=score)
    assert audit.score_copies_ == {}


def test_numpy_string_names_are_names():
    rng = np.random.default_rng(0)
    names = np.array(["income", "age"])
    X = pd.DataFrame({names[0]: rng.normal(size=300), names[1]: rng.normal(size=300)})
    assert type(X.columns[0]) is not str
    tree = DistilledTree(max_leaf_nodes=3, random_state=0).fit(X, teacher_scores=X["income"])
    assert all("income" in rule or "age" in rule for rule in tree.rules()["rule"])
    assert list(tree.feature_names_in_) == ["income", "age"]
    with pytest.raises(ValueError, match="feature names"):
        tree.predict(X[["age", "income"]])


def test_margins_of_a_teacher_without_probabilities_read_as_log_odds_are_warned_about():
    X, y, _ = _world()
    svm = LinearSVC(C=0.01).fit(X, y)
    with pytest.warns(UserWarning, match="decision_function margins as log-odds"):
        _audit(svm, calibration=None).fit(X, y)
    # a logistic model's margins are its log-odds: nothing to say
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    logistic = LogisticRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*decision_function margins as log-odds")
        _audit(logistic, calibration=None, response="decision_function").fit(X, y)
    platt = SVC(kernel="linear", probability=True, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="decision_function margins as log-odds"):
        _audit(platt, calibration=None, response="decision_function").fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _audit(svm).fit(X, y)  # calibrated: the margin's scale is mapped from the data
    assert not any("decision_function margins" in str(w.message) for w in caught)


def test_repeated_index_labels_in_another_order_are_refused():
    X = pd.DataFrame({"a": np.arange(6.0)}, index=[0, 1, 2, 0, 1, 2])
    same = pd.Series(np.arange(6.0), index=X.index)
    check_same_order(X, same, "y")  # the same sequence: fine
    with pytest.raises(ValueError, match=r"y has X's row labels in its index \(repeated"):
        check_same_order(X, same.sort_index(), "y")
    check_same_order(X, pd.Series(np.arange(6.0)), "y")  # a fresh index: by position


def test_weights_sorted_apart_from_X_are_refused_in_score():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)}, index=rng.permutation(200))
    score = pd.Series(2 * X["a"].to_numpy(), index=X.index)
    gam = DistilledGAM(student=ExplainableBoostingRegressor(**_SMALL), random_state=0)
    gam.fit(X, teacher_scores=score)
    weights = pd.Series(rng.uniform(size=200), index=X.index)
    gam.score(X, teacher_scores=score, sample_weight=weights)
    with pytest.raises(ValueError, match="sample_weight has X's row labels"):
        gam.score(X, teacher_scores=score, sample_weight=weights.sort_index())


def test_class_columns_that_are_not_distributions_are_warned_about():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    sigmoids = 1 / (1 + np.exp(-np.column_stack([X["a"], -X["a"], 0.5 * X["a"]]))) * 0.9 + 0.05
    softmax = np.exp(sigmoids) / np.exp(sigmoids).sum(axis=1, keepdims=True)
    gam = DistilledGAM(
        response="predict_proba", student=ExplainableBoostingRegressor(**_SMALL), random_state=0
    )
    with pytest.warns(UserWarning, match="rows do not sum to 1"):
        gam.fit(X, teacher_scores=sigmoids)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*rows do not sum to 1")
        gam.fit(X, teacher_scores=softmax)
        gam.fit(X, teacher_scores=softmax.round(2))  # rounded probabilities are probabilities
    # the audit says it once, in its own fit, not in each of its models' fits
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=200) < sigmoids[:, 0] / sigmoids.sum(axis=1) * 2).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _audit(response="predict_proba").fit(X, y, teacher_scores=sigmoids[:, [0, 2]])
    said = [w for w in caught if "rows do not sum to 1" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__


def test_a_rule_tree_of_other_rows_or_softened_by_a_temperature_is_refused(tmp_path):
    from sklearn_distill.report import write_audit_report

    X, y, score = _world()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit().fit(X, y, teacher_scores=score)
        tree = dict(calibration="isotonic", max_leaf_nodes=4, random_state=0)
        honest = DistilledTree(**tree).fit(X, y, teacher_scores=score)
        soft = DistilledTree(**tree, temperature=3).fit(X, y, teacher_scores=score)
        order = np.random.default_rng(1).permutation(len(X))
        other = DistilledTree(**tree).fit(
            X.iloc[order].reset_index(drop=True), y.to_numpy()[order], teacher_scores=score[order]
        )
        write_audit_report(audit, tmp_path / "ok.html", rule_tree=honest)
    with pytest.raises(ValueError, match="temperature=1.0"):
        write_audit_report(audit, tmp_path / "soft.html", rule_tree=soft)
    with pytest.raises(ValueError, match="one fitted on other rows"):
        write_audit_report(audit, tmp_path / "other.html", rule_tree=other)
    # the same rows given as an array of a frame of mixed columns are the same rows
    mixed = X.assign(group=np.where(X["a"] > 0, "u", "v"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit().fit(mixed.to_numpy(), y, teacher_scores=score)
        tree = DistilledTree(**tree).fit(mixed, y, teacher_scores=score)
        write_audit_report(audit, tmp_path / "mixed.html", rule_tree=tree)


def test_categories_the_subsample_missed_are_warned_about_at_fit():
    rng = np.random.default_rng(0)
    n = 600
    common = rng.choice(["a", "b", "c"], n)
    c = np.where(rng.uniform(size=n) < 0.05, [f"rare{k}" for k in range(n)], common)
    X = pd.DataFrame({"c": c, "x": rng.normal(size=n)})
    score = X["x"].to_numpy() + (X["c"] == "a")
    with pytest.warns(UserWarning, match="max_samples drew to fit the tree lack categories"):
        DistilledTree(max_samples=200, random_state=0).fit(X, teacher_scores=score)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*max_samples drew")
        DistilledTree(random_state=0).fit(X, teacher_scores=score)


def test_values_and_names_that_read_alike_are_warned_about():
    rng = np.random.default_rng(0)
    n = 300
    cities = ["S\u00e3o Paulo", "Sa\u0303o Paulo", "New\u00a0York", "New York", "Rio", "Rio\u200b"]
    X = pd.DataFrame({"city": rng.choice(cities, n), "x": rng.normal(size=n)})
    gam = DistilledGAM(student=ExplainableBoostingRegressor(**_SMALL), random_state=0)
    with pytest.warns(UserWarning, match="differ only in white space, invisible characters"):
        gam.fit(X, teacher_scores=X["x"])
    named = pd.DataFrame({"age": X["x"], "age ": -X["x"]})
    with pytest.warns(UserWarning, match="column names that differ only in white space"):
        gam.fit(named, teacher_scores=X["x"])


def test_report_and_plot_arguments_of_the_wrong_kind_name_the_argument():
    from sklearn_distill.plotting import plot_calibration
    from sklearn_distill.report import render_html

    with pytest.raises(TypeError, match="ax must be matplotlib Axes or None; got 'int'"):
        plot_calibration(pd.DataFrame(), ax=1)
    with pytest.raises(TypeError, match="sections must be a sequence of Section objects"):
        render_html("title", [("heading", "text")])


def test_the_distillers_warn_when_their_calibration_map_misses_the_outcome_rates():
    """Temperature scaling has no intercept: on deciles 1-10 with a 20% base rate it maps every
    row near P = 0.5. The audit warned; the distillers printed rules at 0.5 without a word."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(size=2000)})
    logit = -1.6 + 0.8 * X["age"]
    y = (rng.uniform(size=2000) < 1 / (1 + np.exp(-logit))).astype(int)
    decile = pd.qcut(logit, 10, labels=False).to_numpy() + 1
    tree = {"max_leaf_nodes": 3, "random_state": 0}
    with pytest.warns(UserWarning, match=r"calibration='temperature'\) misses the observed"):
        DistilledTree(calibration="temperature", **tree).fit(X, y, teacher_scores=decile)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*misses the observed outcome rates")
        DistilledTree(calibration="isotonic", **tree).fit(X, y, teacher_scores=decile)


def test_bidirectional_controls_in_labels_cannot_reorder_the_report():
    from sklearn_distill.report import Section, render_html

    page = render_html("audit", [Section("values", paragraphs=["south\u202e 0.05 < p"])])
    assert "\u202e" not in page and "south[U+202E] 0.05 &lt; p" in page


def test_compare_with_a_student_that_is_no_boosting_model_names_student():
    from sklearn.linear_model import LinearRegression

    X, y, score = _world()
    audit = CompareAudit(
        student=LinearRegression(), outcome=ExplainableBoostingClassifier(**_SMALL),
        n_crossfits=1, cv=3, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.fit(X, y, teacher_scores=score)
    assert np.isfinite(audit.missing_feature_test(n_bootstrap=50).loc["pearson", "estimate"])
    with pytest.raises(TypeError, match=r"CompareAudit\(student=\.\.\.\)"):
        audit.compare()


def test_student_probabilities_of_margins_are_said_to_be_on_the_margin_scale():
    X, y, _ = _world()
    svm = LinearSVC(C=0.01).fit(X, y)
    with pytest.warns(UserWarning, match="sigmoid\\(margin\\), on the margin's scale"):
        DistilledTree(svm, max_leaf_nodes=3, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*sigmoid\\(margin\\)")
        DistilledTree(svm, calibration="isotonic", max_leaf_nodes=3, random_state=0).fit(X, y)


def test_values_equal_but_for_their_text_are_warned_about():
    rng = np.random.default_rng(0)
    flag = np.empty(200, dtype=object)
    flag[:100] = rng.uniform(size=100) < 0.5  # one file writes booleans
    flag[100:] = (rng.uniform(size=100) < 0.5).astype(int)  # the other 0 and 1
    X = pd.DataFrame({"flag": flag, "x": rng.normal(size=200)})
    gam = DistilledGAM(student=ExplainableBoostingRegressor(**_SMALL), random_state=0)
    with pytest.warns(UserWarning, match="equal as values but not as text"):
        gam.fit(X, teacher_scores=X["x"])
    # the tree, whose categories are values, merges them: said too
    mixed = pd.Series([[True, 1, "x"][k] for k in rng.integers(0, 3, 200)], dtype=object)
    with pytest.warns(UserWarning, match="equal as values but not as text"):
        DistilledTree(max_leaf_nodes=3, random_state=0).fit(
            pd.DataFrame({"c": mixed, "x": X["x"]}), teacher_scores=X["x"]
        )


def test_a_csv_header_of_positions_stays_positions():
    from sklearn_distill._teacher import align_score_columns

    frame = pd.DataFrame([[0.2, 0.8], [0.7, 0.3]], columns=["0", "1"])
    assert list(align_score_columns(frame, [1, 2]).columns) == ["0", "1"]


def test_negative_zero_reads_as_zero_in_the_report():
    from sklearn_distill.report import format_number

    assert format_number(-0.0) == "0.000" and format_number(np.float64(-0.0), 1) == "0.0"
    assert format_number(-0.25) == "-0.250"


def test_shape_tables_whose_keys_cannot_be_matched_name_the_tables():
    from sklearn_distill.stats import compare_shapes

    mimic = pd.DataFrame(
        {"term": ["x"] * 3, "value": [0, 1, 2], "score": [0.0, 1.0, 2.0], "std_error": [0.1] * 3}
    )
    with pytest.raises(ValueError, match="outcome's key columns .* must be of the types of mimic"):
        compare_shapes(mimic, mimic.assign(value=["0", "1", "2"]))
