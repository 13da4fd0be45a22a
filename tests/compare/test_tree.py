"""DistilledTree: its rules, read back by a small parser written here, are true of exactly the
rows they cover, missing values and unseen categories included."""

import ast
import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_distill import DistilledTree
from sklearn_distill.tree import OPERATORS, format_condition

OPERATOR = re.compile(
    r"^ ?(?P<operator><=|>|not in|in|is not missing|is missing)(?: (?P<value>.+))?$"
)
PLAIN = re.compile(r"^(?P<feature>.+?)(?P<rest> (?:<=|>|not in|in|is not missing|is missing).*)$")
INTERVAL = re.compile(r"^(?P<open>[(\[])(?P<left>\S+), (?P<right>\S+)(?P<close>[)\]])$")


def split_outside(text, separator):
    """``text`` split at ``separator`` where it lies outside quoted text and brackets (a quote
    opens a literal only where a literal starts: at the start, or after a space or bracket)."""
    parts, depth, quote, start, k = [], 0, None, 0, 0
    while k < len(text):
        char = text[k]
        if quote:
            if char == "\\":
                k += 1
            elif char == quote:
                quote = None
        elif char in "'\"" and (k == 0 or text[k - 1] in " {([,"):
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, k):
            parts.append(text[start:k])
            k += len(separator)
            start = k
            continue
        k += 1
    parts.append(text[start:])
    return parts


def parse_label(text):
    """A category label as a rule writes it: a Python literal, an interval or a date."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    interval = INTERVAL.match(text)
    if interval:
        closed = {"((": "neither", "[)": "left", "(]": "right", "[]": "both"}
        left, right = (ast.literal_eval(interval[k]) for k in ("left", "right"))
        return pd.Interval(left, right, closed=closed[interval["open"] + interval["close"]])
    return pd.Timestamp(text)


def parse_condition(text):
    """One condition's text as a list of (feature, operator, value): a bare ``x not in S``
    holds only of values (``x not in S``, ``x is not missing``); ``(x not in S or x is
    missing)`` of missing values too, as the library's ``not in`` does."""
    if text.startswith("(") and text.endswith(")"):
        either = split_outside(text[1:-1], " or ")
        assert len(either) == 2, f"unreadable condition {text!r}"
        (condition, *_), (missing, *_) = map(parse_condition, either)
        assert condition[1] == "not in" and missing == (condition[0], "is missing", None), text
        return [condition]
    if text[:1] in "'\"":  # a quoted name: a Python string literal
        end = next(k for k in range(1, len(text)) if text[k] == text[0] and text[k - 1 : k] != "\\")
        feature, rest = ast.literal_eval(text[: end + 1]), text[end + 1 :]
    else:
        plain = PLAIN.match(text)
        assert plain, f"unreadable condition {text!r}"
        feature, rest = plain["feature"], plain["rest"]
    match = OPERATOR.match(rest)
    assert match, f"unreadable condition {text!r}"
    operator, value = match["operator"], match["value"]
    if operator in ("<=", ">"):
        value = float(value)
    elif operator in ("in", "not in"):
        assert value.startswith("{") and value.endswith("}"), text
        value = {parse_label(v) for v in split_outside(value[1:-1], ", ") if v}
    conditions = [(feature, operator, value)]
    if operator == "not in":
        conditions.append((feature, "is not missing", None))
    return conditions


def parse_rule(text):
    """A rule's text as a list of (feature, operator, value), independent of the library."""
    if text == "always":
        return []
    return [c for part in split_outside(text, " and ") for c in parse_condition(part)]


def holds(conditions, row):
    """Whether every condition is true of ``row`` (a mapping feature -> value)."""
    for feature, operator, value in conditions:
        cell = row[feature]
        missing = cell is None or (isinstance(cell, float) and np.isnan(cell))
        if operator == "is missing":
            ok = missing
        elif operator == "is not missing":
            ok = not missing
        elif operator == "<=":
            ok = not missing and cell <= value
        elif operator == ">":
            ok = not missing and cell > value
        elif operator == "in":
            ok = not missing and cell in value
        else:  # "not in": missing values and unseen labels are in no set
            ok = missing or cell not in value
        if not ok:
            return False
    return True


def make_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n).round(1),
            "debt": rng.uniform(0, 1, n).round(3),
            "purpose": pd.Categorical(
                rng.choice(["car", "home", "study", "travel"], n),
                categories=["car", "home", "study", "travel", "other"],
            ),
        }
    )
    frame.loc[rng.random(n) < 0.1, "debt"] = np.nan
    frame.loc[rng.random(n) < 0.05, "purpose"] = np.nan
    return frame


def teacher(frame):
    purpose = frame["purpose"].astype(object)
    bonus = purpose.map({"car": 0.5, "home": -1.0, "study": 1.2, "travel": 0.0}).fillna(0.8)
    debt = frame["debt"].fillna(0.9)
    income = frame["income"].fillna(50)
    return (-0.04 * (income - 50) + 2.5 * debt + bonus).to_numpy(dtype=float)


def rows_of(frame):
    return [
        {k: (None if pd.isna(v) else v) for k, v in record.items()}
        for record in frame.astype(object).to_dict("records")
    ]


@pytest.fixture(scope="module")
def fitted():
    frame = make_data()
    tree = DistilledTree(teacher, max_leaf_nodes=10, random_state=0).fit(frame)
    return tree, frame


def test_explained_rule_is_true_of_its_row_and_no_other_rule_is(fitted):
    tree, frame = fitted
    rules = tree.rules()
    parsed = [parse_rule(text) for text in rules["rule"]]
    explained = tree.explain(frame)
    assert explained.index.equals(frame.index)
    np.testing.assert_allclose(explained["prediction"], tree.predict(frame))
    for row, (_, explanation) in zip(rows_of(frame), explained.iterrows()):
        true_rules = [k for k, conditions in enumerate(parsed) if holds(conditions, row)]
        assert true_rules == [explanation["rule_id"]]
        assert explanation["rule"] == rules.loc[explanation["rule_id"], "rule"]
        assert explanation["prediction"] == pytest.approx(
            rules.loc[explanation["rule_id"], "prediction"]
        )


def test_rules_cover_every_row_once_with_their_counts_and_teacher_means(fitted):
    tree, frame = fitted
    rules = tree.rules()
    assert list(rules.columns[:7]) == [
        "rule_id",
        "rule",
        "conditions",
        "prediction",
        "n_rows",
        "share",
        "teacher_mean",
    ]
    target = teacher(frame)
    covered = np.zeros(len(frame), dtype=int)
    for _, rule in rules.iterrows():
        members = np.array([holds(rule["conditions"], row) for row in rows_of(frame)])
        covered += members
        assert rule["n_rows"] == members.sum()
        assert rule["teacher_mean"] == pytest.approx(target[members].mean())
        # the conditions as data are the text's conditions
        assert parse_rule(rule["rule"]) == [
            (f, o, v if o in ("in", "not in") or v is None else float(v))
            for f, o, v in rule["conditions"]
        ]
    assert np.all(covered == 1)
    assert rules["share"].sum() == pytest.approx(1.0)


def test_conditions_use_the_contract_operators_and_labels_from_x(fitted):
    tree, frame = fitted
    seen_operators = set()
    for conditions in tree.rules()["conditions"]:
        for feature, operator, value in conditions:
            assert operator in OPERATORS
            seen_operators.add(operator)
            if operator in ("in", "not in"):
                assert isinstance(value, set) and value <= set(frame[feature].dropna())
            elif operator in ("is missing", "is not missing"):
                assert value is None
            else:
                assert isinstance(value, float)
    # purpose is split on a category set; debt's missing values are routed and said so
    assert {"in", "not in"} & seen_operators
    assert {"is missing", "is not missing"} <= seen_operators


def test_unseen_category_is_routed_to_not_in_and_reported():
    frame = make_data()
    tree = DistilledTree(teacher, max_leaf_nodes=10, random_state=0).fit(frame)
    new = frame.head(30).copy()
    new["purpose"] = pd.Categorical(["other"] * 30, categories=frame["purpose"].cat.categories)
    with pytest.warns(UserWarning, match=r"column 'purpose' holds categories not seen.*'other'"):
        explained = tree.explain(new)
    parsed = [parse_rule(text) for text in tree.rules()["rule"]]
    for row, rule_id in zip(rows_of(new), explained["rule_id"]):
        assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id]


def test_monotone_constraint_holds_on_a_grid_though_the_teacher_breaks_it():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"income": rng.uniform(0, 10, 800), "debt": rng.uniform(0, 1, 800)})

    def wiggly(frame):  # risk falls with income overall but rises on (4, 6)
        income = frame["income"].to_numpy()
        return -0.5 * income + 3.0 * ((income > 4) & (income < 6)) + frame["debt"].to_numpy()

    grid = np.linspace(0, 10, 201)
    free = DistilledTree(wiggly, max_leaf_nodes=16, random_state=0).fit(X)
    tied = DistilledTree(
        wiggly, max_leaf_nodes=16, monotone_constraints={"income": -1}, random_state=0
    ).fit(X)
    for debt in (0.1, 0.5, 0.9):
        rows = pd.DataFrame({"income": grid, "debt": debt})
        assert np.all(np.diff(tied.predict(rows)) <= 1e-12)
    rows = pd.DataFrame({"income": grid, "debt": 0.5})
    assert np.any(np.diff(free.predict(rows)) > 0)  # without it, the tree follows the bump


def test_classifier_teacher_gives_probabilities_and_fidelity():
    frame = make_data(400).drop(columns=["purpose"]).fillna(0.5)
    labels = (teacher(make_data(400)) > 1.5).astype(int)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(frame, labels)
    tree = DistilledTree(model, max_leaf_nodes=6, random_state=0).fit(frame)
    rules = tree.rules()
    np.testing.assert_allclose(rules["probability"], 1 / (1 + np.exp(-rules["prediction"])))
    np.testing.assert_allclose(tree.predict_proba(frame)[:, 1], tree.explain(frame)["probability"])
    fidelity = tree.fidelity(frame)
    assert {"r2", "rmse", "agreement", "auc"} <= set(fidelity)
    assert fidelity["agreement"] > 0.8


def test_multiclass_teacher_fits_one_tree_with_a_prediction_per_class():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])
    model = LogisticRegression().fit(X, y)
    tree = DistilledTree(model, max_leaf_nodes=6, random_state=0).fit(X)
    assert tree.predict(X).shape == (300, 3)
    np.testing.assert_allclose(tree.predict_proba(X).sum(axis=1), 1.0)
    assert np.asarray(tree.rules()["prediction"].iloc[0]).shape == (3,)
    assert tree.rules()["rule"].str.contains("feature_0000").any()


def test_multiclass_rules_name_the_most_probable_class():
    # string labels in an order other than the classes' sorted one: the class column reads
    # classes_ at the largest probability, as predict_proba orders its columns
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 2))
    names = np.array(["mid", "high", "low"])
    y = names[np.digitize(X[:, 0] + 0.3 * rng.normal(size=400), [-0.5, 0.5])]
    model = LogisticRegression(C=0.05).fit(X, y)
    tree = DistilledTree(model, max_leaf_nodes=5, random_state=0).fit(X)
    assert list(tree.classes_) == ["high", "low", "mid"]
    expected = tree.classes_[np.argmax(tree.predict_proba(X), axis=1)]
    explained = tree.explain(X)
    np.testing.assert_array_equal(explained["class"], expected)
    rules = tree.rules()
    for _, rule in rules.iterrows():
        assert rule["class"] == tree.classes_[np.argmax(rule["probability"])]
    np.testing.assert_array_equal(
        rules.set_index("rule_id").loc[explained["rule_id"], "class"], expected
    )
    text = tree.export_text()
    for _, rule in rules.iterrows():
        shares = ", ".join(
            f"{label} {p}" for label, p in zip(tree.classes_, np.round(rule["probability"], 3))
        )
        assert f"rule {rule['rule_id']}: " in text
        assert f"(probability {shares}: class {rule['class']})" in text
    # the classes the tree tells apart here: all three
    assert set(rules["class"]) == set(names)


def test_export_text_shows_every_rule_and_where_missing_values_go(fitted):
    tree, _ = fitted
    text = tree.export_text()
    for rule_id in tree.rules()["rule_id"]:
        assert re.search(rf"rules? ([0-9, ]*\b){rule_id}\b", text)
    assert "(or missing)" in text and "not in {" in text
    assert text.count("rows (") == tree.tree_.get_n_leaves()


def test_clone_pipeline_grid_search_and_pickle():
    frame = make_data(300)
    tree = DistilledTree(teacher, random_state=0)
    assert clone(tree).teacher is teacher
    pipe = make_pipeline(FunctionTransformer(), DistilledTree(teacher, random_state=0))
    assert pipe.fit(frame).score(frame) > 0.5
    search = GridSearchCV(tree, {"max_leaf_nodes": [2, 8]}, cv=3).fit(frame)
    assert search.best_params_ == {"max_leaf_nodes": 8}
    fitted = tree.fit(frame)
    restored = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(restored.explain(frame), fitted.explain(frame))


def test_grid_search_with_precomputed_teacher_scores():
    # the ways DistilledTree.score documents: plain scores as y, or teacher_scores routed to
    # fit and score; both pick the larger tree, as querying the teacher does
    import sklearn

    frame = make_data(300)
    scores = teacher(frame)
    grid = {"max_leaf_nodes": [2, 8]}
    as_y = GridSearchCV(DistilledTree(random_state=0), grid, cv=3).fit(frame, scores)
    assert as_y.best_params_ == {"max_leaf_nodes": 8}
    assert np.all(np.isfinite(as_y.cv_results_["mean_test_score"]))
    with sklearn.config_context(enable_metadata_routing=True):
        routed = DistilledTree(random_state=0).set_fit_request(teacher_scores=True)
        routed = routed.set_score_request(teacher_scores=True)
        search = GridSearchCV(routed, grid, cv=3).fit(frame, teacher_scores=scores)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], as_y.cv_results_["mean_test_score"]
    )
    # unrouted, score has nothing to compare with: each candidate's score fails, saying why
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GridSearchCV(DistilledTree(random_state=0), grid, cv=3).fit(frame, teacher_scores=scores)
    assert any("y or teacher_scores must be given to score" in str(w.message) for w in caught)


def test_refit_starts_afresh():
    frame = make_data(300)
    scores = teacher(frame)
    labels = (scores > np.median(scores)).astype(int)
    tree = DistilledTree(calibration="sigmoid", random_state=0)
    tree.fit(frame, labels, teacher_scores=scores)
    assert tree.calibrator_ is not None and list(tree.classes_) == [0, 1]
    # refitted on plain scores given as y: no calibrator, no classes left from the first fit
    tree.set_params(calibration=None).fit(frame.to_numpy(), scores)
    assert tree.calibrator_ is None
    assert not hasattr(tree, "classes_") and not hasattr(tree, "predict_proba")
    assert not hasattr(tree, "feature_names_in_")


def test_teacher_and_inputs_are_not_modified():
    frame = make_data(200)
    copy = frame.copy()
    DistilledTree(teacher, augmentation=0.5, random_state=0).fit(frame).explain(frame)
    pd.testing.assert_frame_equal(frame, copy)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"max_leaf_nodes": 1}, ValueError, r"max_leaf_nodes must be an integer >= 2; got 1"),
        ({"max_leaf_nodes": 2.5}, TypeError, r"max_leaf_nodes must be an integer"),
        ({"max_depth": 0}, ValueError, r"max_depth must be an integer >= 1; got 0"),
        ({"min_samples_leaf": 0.9}, ValueError, r"min_samples_leaf must be a finite number"),
        (
            {"monotone_constraints": {"purpose": 1}},
            ValueError,
            r"monotone_constraints\['purpose'\] must be 0: 'purpose' is categorical",
        ),
    ],
)
def test_bad_parameters(params, error, match):
    with pytest.raises(error, match=match):
        DistilledTree(teacher, **params).fit(make_data(100))


def test_explain_refuses_other_columns_and_new_missing_values(fitted):
    tree, frame = fitted
    with pytest.raises(ValueError, match="feature names"):
        tree.explain(frame.rename(columns={"debt": "debts"}))
    no_missing = DistilledTree(teacher, random_state=0).fit(frame.fillna({"debt": 0.5}))
    with pytest.raises(ValueError, match=r"X column 'debt' must have no missing values"):
        no_missing.explain(frame)
    strings = frame.astype({"income": object})
    strings.loc[3, "income"] = "zz"
    with pytest.raises(ValueError, match=r"X column 'income' must hold numbers.*'zz'"):
        tree.explain(strings)


def test_readable_thresholds_route_the_fitting_rows_as_the_tree_did():
    rng = np.random.default_rng(6)
    X = np.round(rng.normal(size=(500, 3)), 3)
    tree = DistilledTree(lambda X: X[:, 0] - X[:, 1] ** 2, max_leaf_nodes=12).fit(X)
    # scikit-learn's own routing (float32 features, float32 midpoints) on the fitting rows
    np.testing.assert_allclose(tree.predict(X), tree.tree_.predict(X))
    for conditions in tree.rules()["conditions"]:
        for _, _, value in conditions:
            assert len(repr(value)) <= 7  # 3 decimals in the data: at most 4 in a threshold


def test_rules_stay_true_for_missing_values_left_out_by_subsampling():
    frame = make_data(400, seed=7)
    frame["income"] = frame["income"].where(np.arange(400) % 97 != 5)  # 4 missing incomes
    tree = DistilledTree(teacher, max_leaf_nodes=8, max_samples=60, random_state=0).fit(frame)
    parsed = [parse_rule(text) for text in tree.rules()["rule"]]
    for row, rule_id in zip(rows_of(frame), tree.explain(frame)["rule_id"]):
        assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id]
    assert tree.rules()["n_rows"].sum() == 400


def test_a_split_of_the_missing_values_from_the_rest_sends_every_value_one_way():
    # scikit-learn splits missing values from all others with threshold +inf; any value, however
    # large, and one inside the range where a node's fitting rows stopped, goes with the values
    rng = np.random.default_rng(0)
    group = rng.choice(["A", "B"], 600)
    x = np.where(group == "A", rng.uniform(0, 5, 600), rng.uniform(0, 10, 600))
    x[rng.random(600) < 0.3] = np.nan
    score = np.where(np.isnan(x), -10.0, 1.0) + np.where(group == "A", 30.0, 0.0)
    frame = pd.DataFrame({"g": pd.Categorical(group), "x": x})
    tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(frame, teacher_scores=score)
    assert np.isinf(tree.tree_.tree_.threshold[tree.tree_.tree_.feature == 1]).any()
    new = pd.DataFrame({"g": pd.Categorical(["A", "A", "B"], categories=["A", "B"]),
                        "x": [4.0, 7.0, 25.0]})  # fmt: skip
    np.testing.assert_allclose(tree.predict(new), [31.0, 31.0, 1.0])
    np.testing.assert_allclose(tree.predict(new), tree.tree_.predict(tree._encode(new)))
    parsed = [parse_rule(text) for text in tree.rules()["rule"]]
    for row, rule_id in zip(rows_of(new), tree.explain(new)["rule_id"]):
        assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id]
    assert (tree.rules()["n_rows"] > 0).all()  # no rule of a side no value can reach
    text = tree.export_text()
    assert "x is not missing" in text and "x is missing" in text
    assert "inf" not in text and "(or missing)" not in text


def test_frame_columns_without_string_names_are_read_by_name():
    from sklearn_distill import DistilledGAM

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=[0, 1])
    s = (X[0] + X[1] ** 2).to_numpy()
    for model in (DistilledTree(random_state=0), DistilledGAM(random_state=0, n_jobs=1)):
        model.fit(X, teacher_scores=s)
        np.testing.assert_allclose(model.predict(X[[1, 0]]), model.predict(X))
        np.testing.assert_allclose(model.predict(X.to_numpy()), model.predict(X))
        with pytest.raises(ValueError, match=r"X must have the columns the model was fitted"):
            model.predict(X.rename(columns={1: 2}))


def test_teacher_is_queried_on_the_columns_of_fit_when_they_come_in_another_order():
    # columns named by non-string labels are read by name; the teacher, queried by fidelity,
    # score and teacher_target, is given them in fit's order too (it read them by position)
    from sklearn.linear_model import LinearRegression

    from sklearn_distill import DistilledGAM

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=[0, 1, 2])
    teacher = LinearRegression().fit(X, 3 * X[0] - X[2])
    shuffled = X[[2, 0, 1]]
    for model in (DistilledTree(teacher, random_state=0), DistilledGAM(teacher, n_jobs=1)):
        model.fit(X)
        np.testing.assert_allclose(model.teacher_target(shuffled), teacher.predict(X))
        assert model.fidelity(shuffled) == pytest.approx(model.fidelity(X))
        assert model.score(shuffled) == pytest.approx(model.score(X))


def test_teacher_target_refuses_named_columns_in_another_order_as_predict_does():
    # a callable teacher reads columns by position: given X's named columns in another order,
    # teacher_target had returned the teacher's score of other columns, with no word
    from sklearn_distill import DistilledGAM

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])

    def teacher(Z):
        return np.asarray(Z, dtype=float)[:, 0]

    for model in (DistilledTree(teacher, random_state=0), DistilledGAM(teacher, n_jobs=1)):
        model.fit(X)
        np.testing.assert_allclose(model.teacher_target(X), X["a"])
        for other in (X[["b", "a", "c"]], X[["a", "b"]]):
            with pytest.raises(ValueError, match=r"feature names should match"):
                model.teacher_target(other)


@pytest.mark.parametrize("shift", ["tiny range", "large offset"])
def test_a_column_float32_cannot_split_is_named_in_a_warning(shift):
    # scikit-learn's trees read X as float32 and treat a column spanning <= 1e-7 as constant:
    # such a column would be left out of every rule silently
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    score = (2 * X["a"] + X["b"]).to_numpy()
    hidden = X.assign(a=X["a"] * 1e-12 if shift == "tiny range" else X["a"] + 1e12)
    with pytest.warns(UserWarning, match=r"X columns \['a'\] vary, but not in float32"):
        tree = DistilledTree(max_leaf_nodes=8, random_state=0).fit(hidden, teacher_scores=score)
    assert not any("a " in rule or "a <" in rule for rule in tree.rules()["rule"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        DistilledTree(max_leaf_nodes=8, random_state=0).fit(X, teacher_scores=score)


def test_a_column_float32_coarsens_is_named_in_a_warning():
    # epoch seconds: 2,000 distinct values, 17 in float32; the teacher steps at t0 + 1000, and
    # the tree's rules would mix rows across the merged values
    rng = np.random.default_rng(1)
    t = 1.7e9 + rng.integers(0, 2000, 2000).astype(float)
    X = pd.DataFrame({"t": t, "b": rng.normal(size=2000)})
    score = np.where(t > 1.7e9 + 1000, 1.0, 0.0) + 0.1 * X["b"].to_numpy()
    with pytest.warns(
        UserWarning, match=r"X columns t \(\d+ values, \d+ in float32\) have distinct"
    ):
        DistilledTree(max_leaf_nodes=4, random_state=0).fit(X, teacher_scores=score)
    # the offset removed, as the warning says: clean rules, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(
            X.assign(t=t - 1.7e9), teacher_scores=score
        )
    assert tree.fidelity(X.assign(t=t - 1.7e9), teacher_scores=score)["r2"] > 0.95
    # float noise float32 merges (k / 10 and k * 0.1) loses nothing: no warning
    k = rng.integers(0, 10, 2000)
    noisy = np.where(rng.random(2000) < 0.5, k / 10, k * 0.1)
    assert np.unique(noisy).size > np.unique(noisy.astype(np.float32)).size
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        DistilledTree(max_leaf_nodes=4, random_state=0).fit(X.assign(t=noisy), teacher_scores=score)


def test_sets_of_numeric_categories_are_written_in_their_order():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 12, 300)
    X = pd.DataFrame({"c": pd.Categorical(codes)})
    tree = DistilledTree(max_leaf_nodes=3).fit(X, teacher_scores=(codes % 3).astype(float))
    for conditions in tree.rules()["conditions"]:
        for _, operator, value in conditions:
            text = format_condition(("c", operator, value))
            assert text.split(" in ")[1] == "{" + ", ".join(map(str, sorted(value))) + "}"


def test_export_text_says_or_missing_only_where_missing_values_can_arrive():
    # under a side the missing values do not take, no deeper split of that feature gets them
    said = 0
    for seed in range(16):
        rng = np.random.default_rng(seed)
        x, z = rng.uniform(0, 10, 500), rng.uniform(0, 1, 500)
        x[rng.random(500) < rng.uniform(0.05, 0.5)] = np.nan
        filled = np.nan_to_num(x, nan=rng.uniform(0, 10))
        score = np.where(np.isnan(x), rng.normal(0, 5), 0) + np.sin(filled) + 2 * z
        frame = pd.DataFrame({"x": x, "z": z})
        tree = DistilledTree(max_leaf_nodes=int(rng.integers(3, 14)), random_state=0)
        lines = tree.fit(frame, teacher_scores=score).export_text().splitlines()
        excludes = []  # per depth: whether that side keeps the missing x out
        for line in lines:
            depth, condition = line.count("|   "), line.split("--- ")[1]
            excludes = excludes[:depth]
            if condition.startswith("x "):
                said += "(or missing)" in condition
                assert not ("(or missing)" in condition and any(excludes)), (seed, condition)
                excludes.append("(or missing)" not in condition and condition != "x is missing")
            else:
                excludes.append(False)
    assert said  # the check met sides that do take them


def test_rules_name_features_by_a_frames_labels_whatever_their_type():
    # columns labelled 1 and 0, the teacher reading the one labelled 0 alone
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=[1, 0])

    def teacher(X):
        return 3.0 * np.asarray(X, dtype=float)[:, 1]

    rules = DistilledTree(teacher, max_leaf_nodes=4, random_state=0).fit(frame).rules()["rule"]
    # a name that reads as a number is quoted: "0 <= 0.07" would read as a statement of numbers
    assert rules.str.match(r"^'0' [<>]").all() and not rules.str.contains("'1' [<>]").any()
    array_rules = DistilledTree(teacher, max_leaf_nodes=4, random_state=0).fit(frame.to_numpy())
    assert array_rules.rules()["rule"].str.contains("feature_0001").all()


def test_categories_held_as_numpy_scalars_are_written_as_their_values():
    # an object column built from numpy arrays holds np.str_ and np.bool_ cells
    rng = np.random.default_rng(0)
    purpose = rng.choice(np.array(["car", "home", "study"]), 400)
    owner = rng.random(400) < 0.5
    frame = pd.DataFrame(
        {
            "purpose": pd.Series(list(purpose), dtype=object),
            "owner": pd.Series(list(owner), dtype=object),
        }
    )
    assert isinstance(frame.loc[0, "purpose"], np.str_)
    assert isinstance(frame.loc[0, "owner"], np.bool_)
    score = (purpose == "home") * 2.0 - (purpose == "car") + owner * 1.5
    tree = DistilledTree(max_leaf_nodes=6, random_state=0).fit(frame, teacher_scores=score)
    rules = tree.rules()
    assert rules["rule"].str.contains("purpose").any() and rules["rule"].str.contains("owner").any()
    parsed = [parse_rule(text) for text in rules["rule"]]  # plain Python literals
    for conditions, text in zip(parsed, rules["rule"]):
        assert "np." not in text
        for _, operator, value in conditions:
            if operator in ("in", "not in"):
                assert all(type(v) in (str, bool) for v in value), text
    for row, rule_id in zip(rows_of(frame), tree.explain(frame)["rule_id"]):
        assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id]
    assert "np." not in tree.export_text()


def test_rule_text_read_back_is_true_of_exactly_the_rows_each_rule_covers_over_random_fits():
    # missing values in numeric and categorical columns (or none), dates and intervals among
    # the labels, names holding the rules' own words or quotes: the text alone, read back by the
    # parser above (a bare "not in" holds of values only), picks the rule the tree routed each
    # row to
    dates = pd.to_datetime(["2020-01-01", "2021-06-15", "2022-03-01 12:30"], format="ISO8601")
    said_missing, quoted = 0, set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = 300
        x, debt = rng.uniform(0, 10, n), rng.normal(size=n)
        colour = rng.choice(["red", "blue", "green and grey", "it's"], n).astype(object)
        when = rng.integers(0, 3, n)
        frame = pd.DataFrame(
            {
                "x": x,
                "debt and loans": debt,
                "colour": pd.Categorical(colour),
                "when": pd.Categorical(dates[when]),
                "(band)": pd.cut(x, [0, 2.5, 5, 7.5, 10]),
                "is": rng.normal(size=n),
                # a quote inside a name: after a space it would open a literal ("o 'clock")
                "o 'clock": rng.normal(size=n),
                'say "hi"': rng.normal(size=n),
            }
        )
        if seed % 3:
            frame.loc[rng.random(n) < 0.2, "colour"] = np.nan
        if seed % 2:
            frame.loc[rng.random(n) < 0.2, "debt and loans"] = np.nan
        bonus = frame["colour"].map({"red": 2.0, "blue": -1.0}).astype(float).fillna(3.0)
        score = np.sin(x) + frame["debt and loans"].fillna(2.5) + bonus + when + frame["is"]
        score += frame["o 'clock"] - frame['say "hi"']
        tree = DistilledTree(max_leaf_nodes=int(rng.integers(4, 14)), random_state=seed)
        tree.fit(frame, teacher_scores=score.to_numpy())
        rules = tree.rules()
        parsed = [parse_rule(text) for text in rules["rule"]]
        said_missing += rules["rule"].str.contains("or colour is missing").sum()
        quoted |= {f for c in parsed for f, _, _ in c if "'" in f or '"' in f}
        rows = rows_of(frame)
        for k, conditions in enumerate(parsed):
            assert {f for f, _, _ in conditions} <= set(frame.columns)
            assert sum(holds(conditions, row) for row in rows) == rules.loc[k, "n_rows"], seed
        for row, rule_id in zip(rows, tree.explain(frame)["rule_id"]):
            assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id], seed
        # the whole tree's text names the columns the same way
        for line in tree.export_text().splitlines():
            condition = line.split("--- ")[1].split(" (or missing")[0]
            if not condition.startswith(("rule ", "rules ")):
                assert parse_condition(condition)[0][0] in frame.columns, condition
    assert said_missing  # the check met rules that take the missing colours
    assert quoted == {"o 'clock", 'say "hi"'}  # the check met both names in rules


def test_infinity_at_predict_is_refused_with_advice_the_tree_follows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame.loc[:20, "b"] = np.nan  # b had missing values at fit, a none
    tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(
        frame, teacher_scores=frame["a"].to_numpy()
    )
    for column in ("a", "b"):
        for infinite in (np.inf, "inf"):  # a float column, and text in an object column
            bad = frame.astype({column: object}) if isinstance(infinite, str) else frame.copy()
            bad.loc[30, column] = infinite
            with pytest.raises(ValueError, match="infinity") as error:
                tree.predict(bad)
            assert f"column '{column}'" in str(error.value)
            # what the message advises for the value is what the tree then accepts
            nan = frame.copy()
            nan.loc[30, column] = np.nan
            if "use NaN for missing values" in str(error.value):
                assert np.isfinite(tree.predict(nan)).all()
            else:
                assert "use finite numbers" in str(error.value)
                with pytest.raises(ValueError, match=rf"X column '{column}' must have no missing"):
                    tree.predict(nan)
                assert np.isfinite(tree.predict(frame)).all()


def test_names_with_comparison_signs_or_reading_as_numbers_are_quoted_in_rules():
    # unquoted, "x < 1 <= -0.08" reads as a chained comparison and "1.5 > -0.17" or, for a
    # column named 0, "0 <= -1.07" as a statement about numbers
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {name: rng.normal(size=n) for name in ("x < 1", "a>b", "1.5", "nan", "y = 2", "age")}
    )
    tree = DistilledTree(max_leaf_nodes=12, min_samples_leaf=5, random_state=0)
    tree.fit(frame, teacher_scores=frame.sum(axis=1).to_numpy())
    rules = tree.rules()
    used = {f for conditions in rules["conditions"] for f, _, _ in conditions}
    assert used == set(frame.columns)  # the check meets every name in a rule
    for text in rules["rule"]:
        for name in ("x < 1", "a>b", "1.5", "nan", "y = 2"):
            assert f" {name} " not in f" {text} " and not text.startswith(f"{name} ")
    assert any(text.startswith("age ") or " and age " in text for text in rules["rule"])
    # read back, each rule holds of exactly the rows the tree routed to it
    parsed = [parse_rule(text) for text in rules["rule"]]
    rows = rows_of(frame)
    for row, rule_id in zip(rows, tree.explain(frame)["rule_id"]):
        assert [k for k, c in enumerate(parsed) if holds(c, row)] == [rule_id]
    # a column named by a number (an array turned into a frame)
    numbered = pd.DataFrame(frame[["age"]].to_numpy())
    text = DistilledTree(max_leaf_nodes=2).fit(numbered, teacher_scores=frame["age"]).rules()
    assert all(rule.startswith("'0' ") for rule in text["rule"])
    assert (
        "|--- '0' <= "
        in DistilledTree(max_leaf_nodes=2).fit(numbered, teacher_scores=frame["age"]).export_text()
    )


def test_export_text_writes_a_prediction_rounded_to_zero_without_a_sign():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    tree = DistilledTree(max_leaf_nodes=4, random_state=0)
    tree.fit(frame, teacher_scores=(frame["a"] - frame["b"]).to_numpy())
    predictions = tree.rules()["prediction"]
    assert ((predictions < 0) & (predictions.round(0) == 0)).any()  # one rounds to -0
    text = tree.export_text(decimals=0)
    assert "-0.0" not in text
    assert text.count("prediction 0.0,") == (predictions.round(0) == 0).sum()
