"""The same data held in other pandas dtypes (nullable, ``category``, objects) give the same
answers: the missing-feature test's reading of the features, the shape tables' labels and the
predictions; a ``category`` the Explainable Boosting student cannot read is refused, naming it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill.audit import _columns_by_kind
from tests.compare.test_audit_trust_round6 import _audit, _world

_SMALL = {"outer_bags": 2, "max_rounds": 50, "interactions": 0, "max_bins": 16, "n_jobs": 1}


def _flags(n, seed=3, missing=0.0):
    """A column of booleans, with ``missing`` of its cells None (as objects)."""
    rng = np.random.default_rng(seed)
    flags = (rng.uniform(size=n) < 0.5).astype(object)
    flags[rng.uniform(size=n) < missing] = None
    return flags


def _as(flags, dtype):
    """The booleans ``flags`` (objects, None where missing) held in ``dtype``."""
    if dtype == "object":
        return pd.Series(flags, dtype=object)
    if dtype == "category":
        return pd.Series(pd.Categorical(flags))
    return pd.Series(flags.tolist(), dtype=dtype)


def test_the_missing_feature_test_reads_booleans_alike_whatever_holds_them():
    # a file's column of True and False with an empty cell is read as objects; the same
    # booleans in a bool, boolean or category column were 0 and 1 in the test's adjustment
    # and levels there, so the test's figures moved with the dtype (a Pearson estimate of
    # 0.0447 with a bool column, 0.0468 with the same column as objects)
    flags = _flags(300, missing=0.1)
    readings = [
        _columns_by_kind(pd.DataFrame({"e": _as(flags, dtype)}), labelled=True)
        for dtype in ("object", "boolean", "category")
    ]
    expected = np.array([np.nan if f is None else float(f) for f in flags])
    for numeric, nominal in readings:
        assert nominal == {}
        np.testing.assert_array_equal(numeric["e"], expected)
    X, y, logit = _world(n=300)
    whole = _flags(300)
    tests = []
    for dtype in ("bool", "object", "category"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit = _audit(ebm=_SMALL).fit(X.assign(e=_as(whole, dtype)), y, teacher_scores=logit)
            tests.append(audit.missing_feature_test(n_bootstrap=20))
    # the comparison labels a category column of booleans as it does a bool one
    assert audit.compare(interactions=False).query("term == 'e'")["label"].tolist() == [
        "False",
        "True",
    ]
    pd.testing.assert_frame_equal(tests[0], tests[1])
    pd.testing.assert_frame_equal(tests[0], tests[2])


def test_a_category_column_of_booleans_is_labelled_false_and_true():
    # interpret names a boolean category's levels "0" and "1", whatever their order
    rng = np.random.default_rng(0)
    flags = rng.uniform(size=200) < 0.5
    b = rng.normal(size=200)
    student = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=30, interactions=0, n_jobs=1, random_state=0
    )
    tables = {}
    for name, column in [
        ("bool", flags),
        ("category", pd.Categorical(flags)),
        ("reversed", pd.Categorical(flags, categories=[True, False])),
    ]:
        gam = DistilledGAM(student=student, random_state=0)
        gam.fit(pd.DataFrame({"b": b, "flag": column}), teacher_scores=b + flags)
        table = gam.shape_functions()
        tables[name] = table[table["term"] == "flag"].set_index("label")["score"]
        assert [type(v) for v in table.loc[table["term"] == "flag", "value"]] == [bool, bool]
    for name in ("category", "reversed"):
        assert sorted(tables[name].index) == ["False", "True"]
        pd.testing.assert_series_equal(
            tables[name].sort_index(), tables["bool"].sort_index(), atol=1e-12
        )
    assert tables["bool"]["True"] > tables["bool"]["False"]  # the teacher adds 1 for True


def test_booleans_predicted_from_a_category_column_as_from_the_column_of_fit():
    # fitted on booleans held as objects (with missing cells) or as bool, the Explainable
    # Boosting student reads the feature as numbers; the same booleans given to predict in a
    # category column were read by interpret as missing on every row, without a word (here
    # up to 1.00 off with a bool column at fit, 0.77 with objects, on a feature worth 2)
    rng = np.random.default_rng(0)
    flags = _flags(200, missing=0.1)
    b = rng.normal(size=200)
    score = b + 2.0 * np.array([bool(f) for f in flags])
    student = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=50, interactions=0, n_jobs=1, random_state=0
    )
    # a category of numpy booleans, then one of booleans held as objects (whose categories
    # pandas' is_bool_dtype reads only with a deprecation warning)
    for dtype in ("bool", "object"):
        column = _as(flags, "object") if dtype == "object" else _as(flags, "object").fillna(False)
        X = pd.DataFrame({"b": b, "flag": column.astype(dtype)})
        gam = DistilledGAM(student=student, random_state=0).fit(X, teacher_scores=score)
        expected = gam.predict(X)
        given = X.assign(flag=pd.Categorical(X["flag"]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing new to warn of: the same values
            np.testing.assert_array_equal(gam.predict(given), expected)
        assert isinstance(given["flag"].dtype, pd.CategoricalDtype)  # the user's frame as it was


def test_a_category_of_tuples_is_refused_for_the_explainable_boosting_student_only():
    # keys of a groupby made a category: interpret failed deep inside, naming no column
    rng = np.random.default_rng(0)
    b = rng.normal(size=60)
    pairs = pd.Categorical([("a", 1), ("b", 2)] * 30)
    X = pd.DataFrame({"b": b, "pair": pairs})
    student = ExplainableBoostingRegressor(outer_bags=1, max_rounds=5, interactions=0, n_jobs=1)
    with pytest.raises(TypeError, match=r"X column 'pair' must hold numbers or labels .* tuple"):
        DistilledGAM(student=student).fit(X, teacher_scores=b)
    # the tree reads the categories as they are, and the advice's labels serve both
    assert DistilledTree(max_depth=2).fit(X, teacher_scores=b).predict(X).shape == (60,)
    labelled = X.assign(pair=X["pair"].astype(str))
    gam = DistilledGAM(student=student).fit(labelled, teacher_scores=b)
    assert gam.predict(labelled).shape == (60,)


def test_a_whole_float_and_its_integer_text_are_one_category_to_the_explainable_boosting_student():
    # interpret reads the float 1.0 as the text "1": a column of 1.0, "1" and "x" (files joined
    # together) had its first two merged by the student without the warning that 1 and "1" get,
    # and predict warned of 1.0 as a category not seen at fit where "1" had been
    rng = np.random.default_rng(0)
    b = rng.normal(size=90)
    mixed = pd.Series([[1.0, "1", "x"][i % 3] for i in range(90)], dtype=object)
    student = ExplainableBoostingRegressor(outer_bags=1, max_rounds=20, interactions=0, n_jobs=1)
    with pytest.warns(UserWarning, match=r"differ only in type \(1\.0 and '1'\)"):
        DistilledGAM(student=student).fit(pd.DataFrame({"b": b, "c": mixed}), teacher_scores=b)
    texts = pd.Series([["1", "2", "x"][i % 3] for i in range(90)], dtype="category")
    gam = DistilledGAM(student=student).fit(pd.DataFrame({"b": b, "c": texts}), teacher_scores=b)
    as_floats = texts.map({"1": 1.0, "2": 2.0, "x": "x"}).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the categories of fit, written as floats
        floats = gam.predict(pd.DataFrame({"b": b, "c": as_floats}))
    np.testing.assert_array_equal(floats, gam.predict(pd.DataFrame({"b": b, "c": texts})))
    with pytest.warns(UserWarning, match=r"holds categories not seen at fit: \[1\.5\]"):
        gam.predict(pd.DataFrame({"b": b, "c": as_floats.replace(2.0, 1.5)}))


def _levels_world(n=600, seed=0):
    """A numeric feature and a nominal one of three levels (as text), and a score of both."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    levels = rng.choice(["a", "b", "c"], size=n)
    score = 1.2 * x + np.select([levels == "a", levels == "b"], [1.0, -0.5], 0.3)
    return x, levels, score + 0.3 * rng.normal(size=n)


def _held(levels, dtype):
    """The text labels ``levels`` held in ``dtype``: "object", "str", or a list of categories
    (an unordered ``category`` column)."""
    if isinstance(dtype, list):
        return pd.Categorical(levels, categories=dtype)
    return pd.Series(levels, dtype=dtype)


def _unchanged(frame, copy):
    """Assert the user's ``frame`` is as its ``copy`` (values, dtypes and categories' order)."""
    pd.testing.assert_frame_equal(frame, copy)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            assert frame[name].cat.categories.tolist() == copy[name].cat.categories.tolist()


def test_the_student_is_fitted_alike_whatever_the_order_of_unordered_categories():
    # the same values as categories ['a', 'b', 'c'] or ['c', 'a', 'b'] (or with a category no
    # row holds, as after filtering a frame) gave the Explainable Boosting student other bins
    # in another order, and another model: 0.090 apart on a score of sd 1.4 with the default
    # student, as another seed does. Text read from a file (objects, pandas' strings) is binned
    # in sorted order: every holder gives that model now
    x, levels, score = _levels_world()
    orders = ["object", "str", ["a", "b", "c"], ["c", "a", "b"], ["b", "d", "c", "a"]]
    predictions, tables = [], []
    for dtype in orders:
        X = pd.DataFrame({"x": x, "c": _held(levels, dtype)})
        copy = X.copy(deep=True)
        gam = DistilledGAM(random_state=0).fit(X, score)
        _unchanged(X, copy)  # the user's frame keeps its dtype and its categories' order
        predictions.append(gam.predict(X))
        _unchanged(X, copy)
        table = gam.shape_functions()
        tables.append(table[table["term"] == "c"].reset_index(drop=True))
    for dtype, predicted, table in zip(orders[1:], predictions[1:], tables[1:]):
        np.testing.assert_allclose(predicted, predictions[0], rtol=0, atol=1e-12, err_msg=dtype)
        # the labels the user reads are the user's values
        assert table["label"].tolist() == ["a", "b", "c"], dtype
        pd.testing.assert_frame_equal(table, tables[0], rtol=0, atol=1e-12)
    assert gam.student_.bins_[1] == [{"a": 1, "b": 2, "c": 3}]  # the levels of text, sorted
    # predictions read a category by its text: the categories' order given to predict is
    # not read either
    X = pd.DataFrame({"x": x, "c": _held(levels, ["c", "b", "a", "z"])})
    np.testing.assert_allclose(gam.predict(X), predictions[0], rtol=0, atol=1e-12)


def test_an_ordered_category_is_an_ordinal_feature_in_the_users_order():
    # an ordered category's order is the user's (low < mid < high): the student reads it as an
    # ordinal feature along that order, unused levels included, as it was given
    x, levels, score = _levels_world(n=300)
    student = ExplainableBoostingRegressor(**_SMALL, random_state=0)
    ranked = pd.Categorical(levels, categories=["c", "z", "a", "b"], ordered=True)
    X = pd.DataFrame({"x": x, "c": ranked})
    gam = DistilledGAM(student=student, random_state=0).fit(X, score)
    assert gam.student_.feature_types_in_[1] == "ordinal"
    assert gam.student_.bins_[1] == [{"c": 1, "z": 2, "a": 3, "b": 4}]
    # so is an unordered one the student is told to read as ordinal
    declared = ExplainableBoostingRegressor(
        **_SMALL, random_state=0, feature_types=["continuous", "ordinal"]
    )
    X = X.assign(c=ranked.as_unordered())
    gam = DistilledGAM(student=declared, random_state=0).fit(X, score)
    assert gam.student_.bins_[1] == [{"c": 1, "z": 2, "a": 3, "b": 4}]
    # and one declared nominal is fitted as text is
    nominal = declared.set_params(feature_types=["continuous", "nominal"])
    gam = DistilledGAM(student=nominal, random_state=0).fit(X, score)
    assert gam.student_.bins_[1] == [{"a": 1, "b": 2, "c": 3}]


def test_the_audit_compares_alike_whatever_the_order_of_unordered_categories():
    # the audit's mimic and outcome model were fitted on the categories' order: the same data
    # as categories ['c', 'a', 'b'] gave another comparison (rows in another order, figures up
    # to 15 apart) than as text
    x, levels, score = _levels_world(n=400, seed=1)
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-(x + (levels == "a"))))).astype(int)
    tables = []
    for dtype in ("object", ["c", "a", "b"]):
        X = pd.DataFrame({"x": x, "c": _held(levels, dtype)})
        copy = X.copy(deep=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit = _audit(ebm=_SMALL).fit(X, y, teacher_scores=score)
            tables.append(audit.compare(interactions=False))
        _unchanged(X, copy)
    assert tables[1].query("term == 'c'")["label"].tolist() == ["a", "b", "c"]
    pd.testing.assert_frame_equal(tables[1], tables[0], rtol=0, atol=1e-12)


def test_categories_of_mixed_kinds_are_ordered_as_the_same_values_as_objects():
    # a boolean among text categories reads as "True" in a column of objects, which sorts after
    # "A": it had been ordered as "1", first, and the student fitted otherwise than on the
    # same values as objects
    x, levels, score = _levels_world(n=300, seed=4)
    values = levels.astype(object)
    values[levels == "a"] = True
    values[levels == "b"] = "A"
    student = ExplainableBoostingRegressor(**_SMALL, random_state=0)
    as_objects = pd.DataFrame({"x": x, "c": pd.Series(values, dtype=object)})
    as_categories = pd.DataFrame({"x": x, "c": pd.Categorical(values, categories=[True, "A", "c"])})
    copy = as_categories.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        objects = DistilledGAM(student=student, random_state=0).fit(as_objects, score)
        categories = DistilledGAM(student=student, random_state=0).fit(as_categories, score)
    _unchanged(as_categories, copy)
    assert objects.student_.bins_[1] == [{"A": 1, "True": 2, "c": 3}]
    assert categories.student_.bins_[1] == [{"A": 1, "True": 2, "c": 3}]
    np.testing.assert_allclose(
        categories.predict(as_categories), objects.predict(as_objects), rtol=0, atol=1e-12
    )
