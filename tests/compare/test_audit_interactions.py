"""CompareAudit with pairwise interactions: shared pairs, interaction comparisons, flags an
auditor can act on (min_weight, Benjamini-Hochberg), the per-term summary, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from pandas.testing import assert_frame_equal
from scipy.stats import false_discovery_control
from sklearn.linear_model import LinearRegression

from sklearn_distill import CompareAudit
from sklearn_distill.stats import _two_stage_bh, summarize_terms

TINY = {"outer_bags": 4, "max_rounds": 200, "max_bins": 16, "max_interaction_bins": 8}


def _audit(**kwargs):
    params = {
        "calibration": "sigmoid",
        "cv": 2,
        "random_state": 0,
        "student": ExplainableBoostingRegressor(**TINY, learning_rate=0.2, n_jobs=1),
        "outcome": ExplainableBoostingClassifier(**TINY, learning_rate=0.05, n_jobs=1),
        **kwargs,
    }
    return CompareAudit(**params)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    n = 700
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            # a nominal feature with more categories than the interaction bins
            "wide": pd.Categorical(rng.choice([f"k{i}" for i in range(40)], size=n)),
        }
    )
    logit = X["a"] + 1.2 * X["a"] * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, (logit + 0.1 * rng.normal(size=n)).to_numpy()


@pytest.fixture(scope="module")
def fitted(world):
    X, y, score = world
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _audit(interactions=2).fit(X, y, teacher_scores=score)


def test_both_models_carry_the_same_detected_pairs(fitted):
    pairs = fitted.interaction_pairs_
    assert len(pairs) == 2
    assert ("a", "b") in pairs  # the black box's interaction is found
    assert all("wide" not in pair for pair in pairs)  # too many categories to pair
    mimic_terms = [t for t in fitted.mimic_.student_.term_features_ if len(t) == 2]
    outcome_terms = [t for t in fitted.outcome_.term_features_ if len(t) == 2]
    assert sorted(map(tuple, mimic_terms)) == sorted(map(tuple, outcome_terms))
    names = list(fitted.feature_names_in_)
    assert sorted((names[i], names[j]) for i, j in outcome_terms) == sorted(pairs)


def test_interaction_cells_are_compared(fitted):
    table = fitted.compare()
    cells = table[table["kind"] == "interaction"]
    assert set(cells["term"]) == {" & ".join(pair) for pair in fitted.interaction_pairs_}
    assert all(isinstance(v, tuple) and len(v) == 2 for v in cells["value"])
    assert all(isinstance(v, tuple) and len(v) == 2 for v in cells["label"])
    # each cell is the two models' own surfaces, aligned cell by cell
    mimic = fitted.mimic_.shape_functions(fitted.confidence)
    mimic = mimic[mimic["kind"] == "interaction"]
    np.testing.assert_allclose(cells["mimic"].to_numpy(), mimic["score"].to_numpy())
    np.testing.assert_allclose(cells["difference"], cells["mimic"] - cells["outcome"])
    # cells of one pair hold every training row once
    first = cells[cells["term"] == cells["term"].iloc[0]]
    assert first["weight"].sum() == fitted.mimic_residuals_.size
    assert (table["kind"].iloc[: (table["kind"] == "main").sum()] == "main").all()
    # bin edges are numbers (NaN for categories and cells), not objects
    assert (table[["bin_low", "bin_high"]].dtypes == "float64").all()
    assert cells["bin_low"].isna().all() and table["bin_low"].notna().any()


def test_min_weight_rows_are_shown_but_never_flagged(fitted):
    # every cell is then too thin: compare() says so, and where to test the surfaces instead
    thin = r"interactions lie in cells too thin to test: a & b: 0 of 36 cells testable"
    with pytest.warns(UserWarning, match=thin + r".*compare_interactions\(\)"):
        table = fitted.compare(min_weight=40)
    small = table["weight"] < 40
    assert small.any() and (~small).any()
    assert (table["testable"] == ~small).all()
    assert not table.loc[small, ["significant", "significant_bh"]].to_numpy().any()
    assert table.loc[small, "p_value_bh"].isna().all()
    # the two-stage adjustment (terms, then values; checked against the paper's steps in
    # test_stats) over the testable rows only; in one term it is scipy's Benjamini-Hochberg
    tested = table.loc[~small]
    np.testing.assert_allclose(
        tested["p_value_bh"].to_numpy(),
        _two_stage_bh(tested["p_value"].to_numpy(), tested["term"].to_numpy(), 0.05),
    )
    one = tested[tested["term"] == "a"]
    single = _two_stage_bh(one["p_value"].to_numpy(), one["term"].to_numpy(), 0.05)
    np.testing.assert_allclose(single, false_discovery_control(one["p_value"], method="bh"))
    flags = table["p_value_bh"] < 1 - fitted.confidence
    assert (table["significant_bh"] == flags).all()
    # min_weight=0 tests every row; the audit's own default is used when none is given
    assert fitted.compare(min_weight=0)["testable"].all()
    default = fitted.compare()
    assert (default["testable"] == (default["weight"] >= fitted.min_weight)).all()


def test_summary_counts_the_flags_of_each_term(fitted):
    table = fitted.compare(min_weight=0)
    summary = fitted.summary(min_weight=0, blocks=None)
    flagged = table[table["significant_bh"]]
    assert set(summary["term"]) == set(flagged["term"])
    for _, row in summary.iterrows():
        rows = table[table["term"] == row["term"]]
        assert row["n_flagged"] == rows["significant_bh"].sum()
        assert row["n_flagged_raw"] == rows["significant"].sum()
        assert row["n_values"] == len(rows)
        assert row["text"].startswith(f"{row['term']}: {row['n_flagged']} ")
    assert list(summary["n_flagged"]) == sorted(summary["n_flagged"], reverse=True)


def test_summary_text_names_the_range_of_flagged_values():
    table = pd.DataFrame(
        {
            "term": ["age"] * 4 + ["race"] * 2 + ["age & race"] * 3,
            "kind": ["main"] * 6 + ["interaction"] + ["interaction block"] * 2,
            "value": [18.0, 20.0, 22.0, 30.0, "A", "B", (18.0, "A"), (0, 0), (1, 0)],
            "label": [
                *["18-19", "20-21", "22", "30-40", "A", "B"],
                *[("18-19", "A"), ("18-25", "A"), ("26-40", "A")],
            ],
            "difference": [0.5, 0.4, 0.3, 0.0, -0.2, 0.1, 0.7, 0.2, -0.3],
            "significant": [True, True, True, True, True, False, True, True, True],
            "significant_bh": [True, True, True, False, True, False, True, True, True],
            "testable": True,
        }
    )
    summary = summarize_terms(table).set_index(["term", "kind"])
    assert summary.loc[("age", "main"), "text"] == "age: 3 values differ, from 18 to 22"
    assert summary.loc[("age", "main"), "n_flagged_raw"] == 4
    assert summary.loc[("race", "main"), "text"] == "race: 1 value differs: A"
    # a pair's cells and its blocks are summarised apart
    assert (
        summary.loc[("age & race", "interaction"), "text"]
        == "age & race: 1 cell differs, the largest at age 18-19 x race A"
    )
    assert (
        summary.loc[("age & race", "interaction block"), "text"]
        == "age & race: 2 blocks differ, the largest at age 26-40 x race A"
    )
    assert summary.loc[("age & race", "interaction block"), "n_values"] == 2
    summary = summary.reset_index().set_index("term")
    assert summary.loc["age", "largest_difference"] == 0.5


def test_summary_ranges_keep_the_signs_of_integer_bins():
    # integer bins below zero ("-5", merged "-5 to -3"): the range's ends are integers with
    # their signs (they read "from  to 4" when the labels were split at every minus)
    def summary_of(labels, values):
        table = pd.DataFrame(
            {
                "term": "balance",
                "kind": "main",
                "value": values,
                "label": labels,
                "difference": 0.5,
                "significant": True,
                "significant_bh": True,
                "testable": True,
            }
        )
        return summarize_terms(table)["text"].item()

    assert summary_of(["-5", "-4"], [-5.0, -4.0]) == "balance: 2 values differ, from -5 to -4"
    assert summary_of(["-2", "-9 to -7"], [-2.0, -9.0]) == (
        "balance: 2 values differ, from -9 to -2"
    )
    assert summary_of(["-3--1", "4-6"], [-3.0, 4.0]) == "balance: 2 values differ, from -3 to 6"
    # bins of a continuous feature: the first and last bins as written
    assert summary_of(["[-1e-05, 0.5)", "[0.5, 2]"], [0.2, 1.0]) == (
        "balance: 2 values differ, from [-1e-05, 0.5) to [0.5, 2]"
    )


def test_summary_of_categories_that_read_as_numbers_names_no_range():
    # a nominal feature's categories come as text (interpret's, even for integer categories):
    # "2", "10", "3" have no order, so the summary lists them, numbers by value and then the
    # others (they read "from 2 to 10", as if a range of a number)
    def summary_of(values, labels=None):
        table = pd.DataFrame(
            {
                "term": "grade",
                "kind": "main",
                "value": values,
                "label": values if labels is None else labels,
                "difference": 0.5,
                "significant": True,
                "significant_bh": True,
                "testable": True,
            }
        )
        return summarize_terms(table)["text"].item()

    assert summary_of(["10", "2", "3"]) == "grade: 3 values differ: 2, 3, 10"
    assert summary_of(["b", "20", "x", "1"]) == "grade: 4 values differ: 1, 20, b, x"
    # the first five in that order, the count of all
    many = [str(v) for v in range(12, 0, -1)]
    assert summary_of(many) == "grade: 12 values differ: 1, 2, 3, 4, 5, ..."
    # a numeric feature keeps its range
    assert summary_of([10.0, 2.0, 3.0], ["10", "2", "3"]) == "grade: 3 values differ, from 2 to 10"


def test_column_names_that_read_as_interaction_terms_stay_out_of_pairs(world):
    # "income & assets" is split like a pair's term name where the audit reads which features
    # a term joins, and a column named "b & c" collides with the term of the pair (b, c):
    # detection leaves such pairs out (with a warning), explicit ones are refused
    X, y, score = world
    named = X[["a", "b", "c"]].rename(columns={"a": "income & assets"})
    named["b & c"] = X["a"] * X["b"]
    named["d"] = np.random.default_rng(4).normal(size=len(X))
    with pytest.warns(UserWarning, match=r"X columns \['b & c', 'income & assets'\] hold ' & '"):
        audit = _audit(interactions=3).fit(named, y, teacher_scores=score)
    assert audit.interaction_pairs_  # the clear pairs are still detected
    for pair in audit.interaction_pairs_:
        assert not any(" & " in name for name in pair) and pair != ("b", "c")
    table = audit.compare()
    mains = set(table.loc[table["kind"] == "main", "term"])
    assert mains == set(named.columns)
    assert not mains & set(table.loc[table["kind"] == "interaction", "term"])  # no collision
    for pair in (("income & assets", "b"), ("b", "c")):
        with pytest.raises(ValueError, match=r"interactions must pair features whose term names"):
            _audit(interactions=[pair]).fit(named, y, teacher_scores=score)
    # main effects only: no term joins two names, nothing to confuse and nothing said
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*hold ' & '")
        audit = _audit(interactions=0).fit(named, y, teacher_scores=score)
    assert "income & assets" in set(audit.compare()["term"])


def test_a_pair_given_twice_is_one_term(world):
    X, y, score = world
    audit = _audit(interactions=[("a", "b"), ("b", "a"), (0, 1)])
    audit.fit(X[["a", "b", "c"]], y, teacher_scores=score)
    assert audit.interaction_pairs_ == [("a", "b")]
    assert (audit.compare()["kind"] == "interaction").any()


def test_integers_in_pairs_are_positions_unless_a_column_has_that_very_label(world):
    # columns named by digit strings in another order: 0 and 1 were read as the columns named
    # "0" and "1" (positions 1 and 2), not as positions, as interpret and scikit-learn read them
    X, y, score = world
    digits = X[["a", "b", "c"]].set_axis(["2", "0", "1"], axis=1)
    audit = _audit(interactions=[(0, 1)]).fit(digits, y, teacher_scores=score)
    assert audit.interaction_pairs_ == [("2", "0")]
    named = _audit(interactions=[("0", "1")]).fit(digits, y, teacher_scores=score)
    assert named.interaction_pairs_ == [("0", "1")]
    # integer labels are labels (pandas' own reading of them)
    labelled = X[["a", "b", "c"]].set_axis([10, 1, 0], axis=1)
    audit = _audit(interactions=[(1, 0)]).fit(labelled, y, teacher_scores=score)
    # the columns labelled 1 and 0 (positions 1 and 2), named by their labels as the tables
    # name them, and as interactions= takes them back
    assert audit.interaction_pairs_ == [(1, 0)]
    assert audit._pairs == [(1, 2)]
    assert "1 & 0" in set(audit.compare()["term"])
    from sklearn_distill.audit import _label_of

    assert _label_of(pd.Index([True, "b"]), 1) is None  # a boolean label is not the integer 1
    assert _label_of(pd.Index(["a", 1]), 1) == 1 and _label_of(pd.Index(["a", "1"]), 1) is None


def test_explicit_pairs_and_main_effects_only(world):
    X, y, score = world
    columns = X[["a", "b", "c"]]
    audit = _audit(interactions=[("b", "c")]).fit(columns, y, teacher_scores=score)
    assert audit.interaction_pairs_ == [("b", "c")]
    assert set(audit.compare()["term"]) == {"a", "b", "c", "b & c"}
    flat = _audit(interactions=0).fit(columns, y, teacher_scores=score)
    assert flat.interaction_pairs_ == []
    assert (flat.compare()["kind"] == "main").all()
    blocks = flat.compare_interactions()  # no pairs: no blocks, the columns all the same
    assert blocks.empty and list(blocks.columns[:5]) == [
        "term",
        "kind",
        "block",
        "features",
        "label",
    ]
    assert "significant_bh" in blocks
    # column indices work for arrays
    indexed = _audit(interactions=[(0, 1)]).fit(columns.to_numpy(), y, teacher_scores=score)
    assert indexed.interaction_pairs_ == [(0, 1)]
    # blocks name the features of an array by interpret's names
    assert set(indexed.compare_interactions()["features"]) == {("feature_0000", "feature_0001")}
    linear = _audit(interactions=[(0, 1)], student=LinearRegression())
    linear.fit(columns, y, teacher_scores=score)
    with pytest.raises(TypeError, match="needs Explainable Boosting models as student and outcome"):
        linear.compare_interactions()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("ab", TypeError),
        ([("a", "nope")], ValueError),
        ([("a", "a")], ValueError),
        ([("a", "b", "c")], ValueError),
        ([(0, 7)], ValueError),
    ],
)
def test_bad_interactions_are_refused_naming_the_argument(world, value, error):
    X, y, score = world
    with pytest.raises(error, match="interactions must be"):
        _audit(interactions=value).fit(X[["a", "b"]], y, teacher_scores=score)


def test_bad_min_weight_is_refused(fitted, world):
    X, y, score = world
    with pytest.raises(ValueError, match="min_weight must be"):
        fitted.compare(min_weight=-1)
    with pytest.raises(TypeError, match="min_weight must be"):
        _audit(min_weight="many").fit(X[["a"]], y, teacher_scores=score)
    with pytest.raises(TypeError, match="interactions must be True or False"):
        fitted.compare(interactions="yes")


def test_compare_explains_terms_it_cannot_line_up(fitted, world):
    X, y, _ = world
    import copy

    audit = copy.copy(fitted)
    other = ExplainableBoostingClassifier(**TINY, interactions=[(0, 2)], n_jobs=1)
    audit.outcome_ = other.fit(X, y)
    with pytest.raises(ValueError, match=r"same terms.*'a & c'.*outcome model only"):
        audit.compare()


def test_stability_checks_columns_like_predict(fitted, world):
    X, y, score = world
    renamed = X.rename(columns={"c": "d"})
    with pytest.raises(ValueError, match="feature names"):
        fitted.stability(renamed, y, teacher_scores=score, n_refits=2)
    with pytest.raises(ValueError, match="missing:\n- wide"):
        fitted.stability(X[["a", "b", "c"]], y, teacher_scores=score, n_refits=2)


def test_fidelity_is_stored(fitted):
    fidelity = fitted.fidelity_
    assert {"r2", "rmse", "r2_out_of_fold"} <= set(fidelity)
    assert 0.5 < fidelity["r2_out_of_fold"] <= 1 and 0.5 < fidelity["r2"] <= 1
    # the out-of-fold R^2 is that of the cross-fitted mimics' mean prediction: each row's
    # averaged residual squares to no more than the mean of its residuals' squares
    mimic = fitted.crossfit_residuals_["mimic"]
    assert np.sum(fitted.mimic_residuals_**2) <= np.sum(np.mean(mimic**2, axis=(0, 1)))
    spread = np.sum(fitted.mimic_residuals_**2) / (1 - fidelity["r2_out_of_fold"])
    each = 1 - np.sum(np.mean(mimic**2, axis=(0, 1))) / spread
    assert 0.5 < each < fidelity["r2_out_of_fold"]


def test_monotone_constraints_reach_the_mimic(world):
    X, y, score = world
    audit = _audit(interactions=0, monotone_constraints={"a": 1}).fit(
        X[["a", "b"]], y, teacher_scores=score
    )
    assert audit.mimic_.student_.get_params()["monotone_constraints"] == [1, 0]
    shape = audit.compare().query("term == 'a'")["mimic"].to_numpy()
    assert np.all(np.diff(shape) >= -1e-12)


def test_block_groups_cut_runs_of_equal_rows_and_keep_missing_apart():
    from sklearn_distill.shapes import block_groups

    # bin 0 is the missing-value bin: empty, it joins the first run
    assert block_groups(np.array([0, 10, 10, 10, 10, 10, 10]), 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    # with missing values it is a group of its own
    assert block_groups(np.array([5, 10, 10, 10, 10, 10, 10]), 3).tolist() == [0, 1, 1, 2, 2, 3, 3]
    # a boolean axis keeps its two values apart; a heavy bin is a run of its own
    assert block_groups(np.array([0, 60, 40]), 3).tolist() == [0, 0, 1]
    assert block_groups(np.array([0, 1, 100, 1]), 3).tolist() == [0, 0, 1, 2]
    # a run left empty by a heavy bin vanishes: the groups stay consecutive
    assert block_groups(np.array([0, 1, 1, 200]), 3).tolist() == [0, 0, 0, 1]
    # a nominal axis has no order: its largest categories apart, the others pooled last
    weights = np.array([7, 10, 40, 5, 30, 15])
    assert block_groups(weights, 3, nominal=True).tolist() == [0, 3, 1, 3, 2, 3]
    assert block_groups(weights[:4], 3, nominal=True).tolist() == [0, 1, 2, 3]


@pytest.fixture(scope="module")
def mixed_ebm():
    """A pair of a continuous feature with missing values and a nominal feature of five
    levels (more than the blocks), and a pair of two continuous features."""
    rng = np.random.default_rng(1)
    n = 1500
    X = pd.DataFrame(
        {
            "x": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
            "c": pd.Categorical(rng.choice(list("vwxyz"), size=n, p=[0.1, 0.3, 0.15, 0.25, 0.2])),
            "z": rng.uniform(-1, 1, size=n),
        }
    )
    y = np.nan_to_num(X["x"]) * (X["c"] == "y") + X["z"] * np.nan_to_num(X["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # interpret on missing values
        ebm = ExplainableBoostingRegressor(
            **{**TINY, "max_interaction_bins": 12}, interactions=[(0, 1), (0, 2)]
        )
        return ebm.fit(X, y + 0.3 * rng.normal(size=n)), X


def test_interaction_blocks_are_row_weighted_means_of_the_pure_surface(mixed_ebm):
    from interpret.utils import purify

    from sklearn_distill.shapes import interaction_blocks, shape_functions

    ebm, X = mixed_ebm
    table, groups = interaction_blocks(ebm, blocks=3)
    fine = shape_functions(ebm)
    fine = fine[fine["kind"] == "interaction"]
    factor = np.sqrt(0.85 / 0.15)  # the bags' fit share over their held-out share
    for term, part in table.groupby("term"):
        index = list(ebm.term_names_).index(term)
        cells = fine[fine["term"] == term]
        first, second = groups[term]
        weights = np.asarray(ebm.bin_weights_[index])

        def pure(surface, weights=weights):
            return purify(np.asarray(surface, dtype=float), weights, is_randomized=False)[0]

        model, bags = pure(ebm.term_scores_[index]), [pure(b) for b in ebm.bagged_scores_[index]]
        assert part["weight"].sum() == cells["weight"].sum() == len(X)
        for row in part.itertuples():
            a, b = row.bin
            chosen = [(i, j) for i, j in cells["bin"] if first[i] == a and second[j] == b]
            w = np.array([weights[i, j] for i, j in chosen])
            assert row.weight == w.sum()
            np.testing.assert_allclose(
                row.score, np.average([model[i, j] for i, j in chosen], weights=w), atol=1e-12
            )
            bag_means = [np.average([bag[i, j] for i, j in chosen], weights=w) for bag in bags]
            np.testing.assert_allclose(row.std_error, np.std(bag_means, ddof=1) * factor)
    # the missing values are a group of their own; of the five categories the two largest
    # stay apart and the other three are pooled
    x_and_c = table[table["term"] == "x & c"]
    assert x_and_c["features"].iloc[0] == ("x", "c")
    assert {label[0] for label in x_and_c["label"]} >= {"missing"}
    assert x_and_c.loc[x_and_c["label"].map(lambda pair: pair[0] == "missing"), "weight"].sum() == (
        X["x"].isna().sum()
    )
    assert sorted({label[1] for label in x_and_c["label"]}) == ["v, x, z", "w", "y"]
    # purified: every row and column of a block grid averages to zero over its rows
    z_grid = table[table["term"] == "x & z"]
    for axis in (0, 1):
        sums = z_grid.groupby(z_grid["bin"].map(lambda b, axis=axis: b[axis])).apply(
            lambda g: np.sum(g["score"] * g["weight"]), include_groups=False
        )
        np.testing.assert_allclose(sums.to_numpy(), 0.0, atol=1e-8)


def test_compare_interactions_lines_up_both_models(fitted):
    from sklearn_distill.shapes import interaction_blocks

    blocks = fitted.compare_interactions()
    assert set(blocks["kind"]) == {"interaction block"}
    assert set(blocks["term"]) == {" & ".join(pair) for pair in fitted.interaction_pairs_}
    mimic, groups = interaction_blocks(
        fitted.mimic_.student_, scale=float(np.ravel(fitted.mimic_.target_scale_)[0])
    )
    outcome, _ = interaction_blocks(fitted.outcome_, groups=groups)
    np.testing.assert_allclose(blocks["mimic"], mimic["score"])
    np.testing.assert_allclose(blocks["outcome"], outcome["score"])
    np.testing.assert_allclose(blocks["difference"], blocks["mimic"] - blocks["outcome"])
    assert all(isinstance(label, tuple) and len(label) == 2 for label in blocks["label"])
    # blocks of the continuous axes read as ranges
    assert blocks["label"].iloc[0][0].startswith("[")
    assert all(f == tuple(t.split(" & ")) for f, t in zip(blocks["features"], blocks["term"]))
    with pytest.raises(ValueError, match="blocks must be an integer >= 2; got 1"):
        fitted.compare_interactions(blocks=1)
    with pytest.raises(TypeError, match="blocks must be an integer >= 2"):
        fitted.compare_interactions(blocks=2.5)


def test_block_labels_read_as_ranges_integers_or_categories():
    from sklearn_distill.shapes import _group_labels

    nan = np.nan
    integers = pd.DataFrame(
        {
            "label": ["missing", "18", "19-20", "21"],
            "bin_low": [nan, 17.5, 18.5, 20.5],
            "bin_high": [nan, 18.5, 20.5, 21.0],
        }
    )
    # an empty missing-value bin that joined the first run is not named
    assert _group_labels(integers, np.array([0, 0, 0, 1])) == ["18-20", "21"]
    assert _group_labels(integers, np.array([0, 1, 1, 2])) == ["missing", "18-20", "21"]
    ranges = pd.DataFrame(
        {
            "label": ["missing", "[0, 1)", "[1, 2)", "[2, 3]"],
            "bin_low": [nan, 0.0, 1.0, 2.0],
            "bin_high": [nan, 1.0, 2.0, 3.0],
        }
    )
    assert _group_labels(ranges, np.array([0, 0, 1, 1])) == ["[0, 1)", "[1, 3]"]
    assert _group_labels(ranges, np.array([0, 0, 0, 1])) == ["[0, 2)", "[2, 3]"]
    categories = pd.DataFrame({"label": ["missing", *"abcde"], "bin_low": nan, "bin_high": nan})
    groups = np.array([0, 1, 1, 2, 2, 2])
    assert _group_labels(categories, groups) == ["missing", "a, b", "c, d, e"]
    # a run of ordered categories by its first and last; pooled nominal ones by the first two
    assert _group_labels(categories, np.array([0, 0, 0, 0, 0, 0])) == ["a to e (5 values)"]
    pooled = _group_labels(categories, np.array([0, 0, 0, 0, 0, 0]), nominal=True)
    assert pooled == ["a, b, ... (5 values)"]


def test_pooled_categories_that_read_as_integers_are_listed_not_a_range():
    # a nominal feature's pooled categories {"2", "10"} (the two largest, "3" and "7", kept
    # apart) are no run: labelled as a range of integers they read "10-2", or "2-10", which
    # would hold 3 and 7
    rng = np.random.default_rng(0)
    n = 1500
    grade = rng.choice(np.array(["2", "3", "7", "10"]), p=[0.15, 0.35, 0.35, 0.15], size=n)
    X = pd.DataFrame({"a": rng.normal(size=n), "grade": pd.Categorical(grade)})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    score = (X["a"] * np.where(grade == "10", 2.5, 1.0)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _audit(interactions=[("a", "grade")]).fit(X, y, teacher_scores=score)
    labels = set(audit.compare_interactions(blocks=3)["label"].map(lambda pair: pair[1]))
    # each label names categories of grade, the pool in order of their numbers
    assert labels == {"3", "7", "2, 10"}


def test_compare_interactions_refuses_models_binned_unlike():
    # same shapes of tables, other cuts: the blocks would cover other values in each model
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame({"a": rng.exponential(size=n), "b": rng.normal(size=n)})
    logit = 0.5 * X["a"] - 0.5 * X["b"] + 0.5 * X["a"] * X["b"] - 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    common = {**TINY, "interactions": [(0, 1)]}
    audit = _audit(
        calibration=None,
        interactions=1,
        n_crossfits=1,
        student=ExplainableBoostingRegressor(**common, feature_types=["uniform", "continuous"]),
        outcome=ExplainableBoostingClassifier(**common, feature_types=["continuous"] * 2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=logit.to_numpy())
    with pytest.raises(ValueError, match="bins differ, so their interaction blocks cannot"):
        audit.compare_interactions()


def test_summary_lists_the_interaction_blocks_that_differ():
    # the black box ignores a product that the outcome carries: its cells are thin, and the
    # coarse blocks (compare_interactions) are where the difference shows
    rng = np.random.default_rng(1)
    n = 1500
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    logit = X["a"] + 1.5 * X["a"] * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = (X["a"] + 0.1 * rng.normal(size=n)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _audit(interactions=[("a", "b")]).fit(X, y, teacher_scores=score)
        blocks = audit.compare_interactions()
        summary = audit.summary()
        without = audit.summary(blocks=None)
    assert blocks["significant_bh"].sum() > 0
    row = summary[summary["kind"] == "interaction block"].squeeze()
    assert row["term"] == "a & b"
    assert row["n_flagged"] == blocks["significant_bh"].sum()
    assert row["n_values"] == len(blocks)
    assert row["text"].startswith(f"a & b: {row['n_flagged']} blocks differ, the largest at a ")
    assert "interaction block" not in set(without["kind"])
    assert_frame_equal(
        without, summary[summary["kind"] != "interaction block"].reset_index(drop=True)
    )
    with pytest.raises(ValueError, match="blocks"):
        audit.summary(blocks=1)


def test_summary_says_compares_warnings_about_the_callers_line(fitted):
    with pytest.warns(UserWarning, match="interactions lie in cells too thin") as record:
        fitted.summary(min_weight=40, blocks=None)
    thin = [w for w in record if "too thin" in str(w.message)]
    assert thin and all(w.filename == __file__ for w in thin)
    # with the blocks in the summary, the advice to compare them is not repeated; the other
    # warnings are
    with pytest.warns(UserWarning, match="values too thin to test: wide") as record:
        fitted.summary(min_weight=40)
    assert not any("interactions lie in cells" in str(w.message) for w in record)
    assert all(w.filename == __file__ for w in record)


def test_a_block_alone_in_its_row_of_blocks_is_left_out():
    # x is missing only where z is high: the missing-value row of blocks holds one block,
    # which purification sets to zero in every model, so there is nothing to test there
    from sklearn_distill.shapes import interaction_blocks

    rng = np.random.default_rng(2)
    n = 1200
    z = rng.uniform(-1, 1, size=n)
    x = np.where((z > 0.6) & (rng.uniform(size=n) < 0.5), np.nan, rng.normal(size=n))
    X = pd.DataFrame({"x": x, "z": z})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ebm = ExplainableBoostingRegressor(**TINY, interactions=[(0, 1)])
        ebm.fit(X, np.nan_to_num(x) * z + 0.3 * rng.normal(size=n))
    table, groups = interaction_blocks(ebm, blocks=3)
    first = groups["x & z"][0]
    assert first[0] == 0  # the missing values are a group of their own
    assert all(block[0] != 0 for block in table["bin"])  # ... whose one block is left out
    assert table["weight"].sum() == n - np.isnan(x).sum()
    for axis in (0, 1):  # every block left has a neighbour in its row and in its column
        counts = table["bin"].map(lambda b, axis=axis: b[axis]).value_counts()
        assert (counts >= 2).all()
    with pytest.raises(ValueError, match="blocks must be an integer >= 2"):
        interaction_blocks(ebm, blocks=1)


def test_strongly_correlated_features_are_named_at_fit():
    # two models can split a shared effect between collinear features differently, and
    # compare() then flags a value of one while their sum agrees: fit says which features
    rng = np.random.default_rng(1)
    n = 600
    common = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "a": common + 0.1 * rng.normal(size=n),
            "b": common + 0.1 * rng.normal(size=n),
            "c": rng.normal(size=n),
            "group": rng.choice(["u", "v"], size=n),
        }
    )
    logit = X["a"] + X["b"] - 0.5 * X["c"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _audit(interactions=0).fit(X, y, teacher_scores=logit.to_numpy())
    said = [w for w in caught if "strongly correlated features" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__
    assert "'a' and 'b'" in str(said[0].message) and "'c'" not in str(said[0].message)
    independent = X.assign(b=rng.normal(size=n))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _audit(interactions=0).fit(independent, y, teacher_scores=logit.to_numpy())
    assert not [w for w in caught if "strongly correlated features" in str(w.message)]


def test_pairs_that_give_no_block_leave_an_empty_comparison(world, tmp_path):
    # the only pair holds a constant column: no block to compare, which crashed with a raw
    # KeyError in compare_interactions(), summary(), report() and the command line (detection
    # leaves such a column out now: the pair is given)
    X, y, score = world
    constant = pd.DataFrame({"a": X["a"], "same": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _audit(interactions=[("a", "same")]).fit(constant, y, teacher_scores=score)
        assert audit.interaction_pairs_ == [("a", "same")]
        blocks = audit.compare_interactions()
        assert blocks.empty and {"term", "mimic", "outcome", "p_value_bh"} <= set(blocks.columns)
        audit.summary()
        audit.report(tmp_path / "report.html")
    assert (tmp_path / "report.html").stat().st_size > 0


def test_a_category_written_missing_reads_apart_from_the_missing_bin(tmp_path):
    from sklearn_distill.report import _format_raw_value, _format_value

    rng = np.random.default_rng(1)
    n = 600
    doc = rng.choice(["passport", "id card", "missing"], size=n).astype(object)
    doc[rng.uniform(size=n) < 0.2] = np.nan  # not recorded
    X = pd.DataFrame({"a": rng.normal(size=n), "doc": doc})
    logit = X["a"].to_numpy()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = logit + 2.0 * (doc == "missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _audit(interactions=0).fit(X, y, teacher_scores=score)
    rows = audit.compare().query("term == 'doc'")
    labels = dict(zip(rows["value"].fillna("<NaN>"), rows["label"]))
    assert labels["<NaN>"] == "missing" and labels["missing"] == "'missing'"
    assert _format_raw_value(float("nan")) == "missing"
    assert _format_raw_value("missing") == "'missing'" and _format_value("'missing'") == "'missing'"
    # the report's tables show both, each once per row of its own
    audit.report(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'class="text">&#x27;missing&#x27;</td>' in page and 'class="text">missing</td>' in page


def test_columns_of_one_level_are_left_out_of_pairs_and_blocks_of_missing_rows_are_named(world):
    # a constant column and one missing on every row hold no interaction: detection leaves them
    # out; an explicit pair with the empty one compares its blocks (all in the missing bin)
    X, y, score = world
    odd = X[["a", "b", "c"]].assign(constant="x", empty=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the empty column is warned about
        audit = _audit(interactions=10).fit(odd, y, teacher_scores=score)
        assert audit.interaction_pairs_
        assert not {"constant", "empty"} & {f for pair in audit.interaction_pairs_ for f in pair}
        # the default models bin the empty column into its missing-value bin alone (the tiny
        # ones above do not), whose blocks once raised an IndexError when named
        explicit = CompareAudit(interactions=[("a", "empty")], random_state=0, n_jobs=1)
        blocks = explicit.fit(odd[["a", "empty"]], y, teacher_scores=score).compare_interactions()
    assert set(blocks["term"]) <= {"a & empty"}


def test_each_rows_cell_is_the_one_the_student_bins_it_in(fitted, world):
    from sklearn_distill.audit import _term_cells

    X, _, _ = world
    student = fitted.mimic_.student_
    pairs = [k for k, term in enumerate(student.term_features_) if len(term) == 2]
    before = [np.copy(scores) for scores in student.term_scores_]
    cells = _term_cells(student, X, pairs)
    for k in pairs:
        weights = np.asarray(student.bin_weights_[k])
        counts = np.bincount(cells[k], minlength=weights.size).reshape(weights.shape)
        np.testing.assert_array_equal(counts, weights)  # the rows of each cell, as fitted
        # the cell's score is what the student adds for the row
        np.testing.assert_allclose(
            np.ravel(student.term_scores_[k])[cells[k]], student.eval_terms(X)[:, k]
        )
    assert all(np.array_equal(a, b) for a, b in zip(before, student.term_scores_))


def test_an_additive_change_of_the_target_adds_nothing_to_a_blocks_band(mixed_ebm):
    from sklearn_distill.shapes import interaction_blocks

    ebm, _ = mixed_ebm
    plain, groups = interaction_blocks(ebm)
    rng = np.random.default_rng(1)
    additive, product = {}, {}
    for k, (features, name) in enumerate(zip(ebm.term_features_, ebm.term_names_)):
        if len(features) == 2:
            rows, columns = np.shape(ebm.term_scores_[k])
            a, b = rng.normal(size=(40, rows, 1)), rng.normal(size=(40, 1, columns))
            additive[name] = a + b  # main effects: purified away
            product[name] = a * b
    same, _ = interaction_blocks(ebm, groups=groups, target_replicates=additive)
    np.testing.assert_allclose(same["std_error"], plain["std_error"], rtol=1e-9)
    wider, _ = interaction_blocks(ebm, groups=groups, target_replicates=product)
    assert (wider["std_error"] > plain["std_error"]).all()
    np.testing.assert_array_equal(wider["score"], plain["score"])


def test_calibrated_blocks_carry_the_calibration_maps_noise(fitted, world):
    from interpret.utils import purify

    from sklearn_distill.shapes import interaction_blocks

    replicates = fitted._calibration_replicates_
    student = fitted.mimic_.student_
    # the pairs, and the main effects of the ordered features (their runs carry it too)
    pairs = {" & ".join(pair) for pair in fitted.interaction_pairs_}
    assert set(replicates) == pairs | {"a", "b", "c"}
    scale = float(np.ravel(fitted.mimic_.target_scale_)[0])
    plain, groups = interaction_blocks(student, scale=scale)
    carried, _ = interaction_blocks(student, scale=scale, target_replicates=replicates)
    table = fitted.compare_interactions()
    # the comparison's mimic bands are the ones that carry the calibration's noise: the
    # same Student quantile (one dof for all blocks) times those standard errors
    quantile = (table["mimic_upper"] - table["mimic_lower"]) / (2 * carried["std_error"])
    np.testing.assert_allclose(quantile, quantile.iloc[0])
    assert 1.9 < quantile.iloc[0] < 13
    for row, fixed in zip(carried.itertuples(), plain.itertuples()):
        k = list(student.term_names_).index(row.term)
        weights = np.asarray(student.bin_weights_[k], dtype=float)
        first, second = groups[row.term]
        pure = [
            purify(r, weights, is_randomized=False)[0][: first.size, : second.size]
            for r in replicates[row.term]
        ]
        cells = (first == row.bin[0])[:, None] & (second == row.bin[1])[None, :]
        share = weights[: first.size, : second.size][cells] / row.weight
        spread = np.var([p[cells] @ share for p in pure], ddof=1)
        assert spread > 0
        assert row.std_error == pytest.approx(np.hypot(fixed.std_error, np.sqrt(spread)))
    # without a calibration the target is the score itself: nothing is added
    X, y, score = world
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain_audit = _audit(calibration=None, interactions=2).fit(X, y, teacher_scores=score)
    assert plain_audit._calibration_replicates_ is None


def test_a_feature_that_copies_the_score_is_named_at_fit_and_in_the_findings():
    from sklearn_distill.report import audit_findings_text

    rng = np.random.default_rng(3)
    n = 500
    X = pd.DataFrame({"a": rng.normal(size=n), "group": rng.choice(["u", "v"], size=n)})
    logit = X["a"] + 0.8 * (X["group"] == "v")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = logit.to_numpy()
    # a percentage of the score's probability, rounded: a monotone copy (an export column)
    copied = X.assign(risk_pct=np.round(100 / (1 + np.exp(-score)), 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit = _audit(interactions=0).fit(copied, y, teacher_scores=score)
    said = [w for w in caught if "function of one feature of X alone" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__
    assert "'risk_pct'" in str(said[0].message) and "'a'" not in str(said[0].message)
    assert list(audit.score_copies_) == ["risk_pct"] and audit.score_copies_["risk_pct"] > 0.99
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "function of one feature alone, or nearly: risk_pct (Spearman" in " ".join(
            audit_findings_text(audit).split()
        )
        plain = _audit(interactions=0).fit(X, y, teacher_scores=score)
    assert plain.score_copies_ == {}  # 'a' carries the score, but is no copy of it


def test_a_category_no_row_holds_is_not_named_in_a_pooled_block():
    rng = np.random.default_rng(4)
    n = 700
    age = rng.integers(18, 70, n).astype(float)
    raw = rng.choice(["A", "B", "C"], n)
    logit = -1 - 0.03 * (age - 40) + 0.5 * (raw == "B")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"age": age, "c": pd.Categorical(raw, categories=["Z_unused", "A", "B", "C"])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _audit(interactions=[("age", "c")]).fit(X, y, teacher_scores=logit)
    # the three categories with rows, each a block of its own; the empty one pooled unnamed
    assert sorted({label[1] for label in audit.compare_interactions()["label"]}) == ["A", "B", "C"]
