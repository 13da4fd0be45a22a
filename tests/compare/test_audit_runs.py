"""Main effects of numeric features compared on runs of adjacent values: the runs' values,
the audit's comparison of them, its place in summary() and the report, bad input."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor

from sklearn_distill import CompareAudit
from sklearn_distill.shapes import _run_groups, block_groups, main_effect_runs


@pytest.fixture(scope="module")
def ebm_and_rows():
    """A continuous feature with missing values, an integer-valued one, a category and a
    boolean, finely binned."""
    rng = np.random.default_rng(3)
    n = 1200
    X = pd.DataFrame(
        {
            "x": np.where(rng.uniform(size=n) < 0.08, np.nan, rng.normal(size=n)),
            "age": rng.integers(18, 80, n).astype(float),
            "c": pd.Categorical(rng.choice(list("pqr"), n)),
            "flag": rng.uniform(size=n) < 0.3,
        }
    )
    y = np.sin(np.nan_to_num(X["x"])) + 0.03 * X["age"] + X["flag"] + rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # interpret on missing values
        ebm = ExplainableBoostingRegressor(outer_bags=4, interactions=0, max_rounds=300, n_jobs=1)
        return ebm.fit(X, y), X


def _row_bins(ebm, X, feature):
    """Each row's bin of a continuous feature, from the cuts (0: missing)."""
    cuts = np.asarray(ebm.bins_[feature][0], dtype=float)
    values = X.iloc[:, feature].to_numpy(float)
    return np.where(np.isnan(values), 0, 1 + np.searchsorted(cuts, values, side="right"))


def test_runs_are_row_weighted_means_of_the_shapes(ebm_and_rows):
    ebm, X = ebm_and_rows
    table, groups = main_effect_runs(ebm, runs=4, boolean_features=[3])
    # the ordered features only: the category and the boolean are tested value by value
    assert table["term"].unique().tolist() == ["x", "age"]
    contributions = ebm.eval_terms(X)
    factor = np.sqrt(0.85 / 0.15)  # the bags' fit share over their held-out share
    for term, part in table.groupby("term", sort=False):
        feature = list(X.columns).index(term)
        index = list(ebm.term_names_).index(term)
        bins = _row_bins(ebm, X, feature)
        # the bins read here are the model's: each row's contribution is its bin's score
        np.testing.assert_allclose(
            contributions[:, index], ebm.term_scores_[index][bins], atol=1e-12
        )
        row_runs = np.asarray(groups[term])[bins]
        assert part["weight"].sum() == len(X)
        for row in part.itertuples():
            rows = row_runs == row.bin
            assert row.weight == rows.sum()
            np.testing.assert_allclose(row.score, contributions[rows, index].mean(), atol=1e-12)
            bag_means = [bag[bins[rows]].mean() for bag in ebm.bagged_scores_[index]]
            np.testing.assert_allclose(row.std_error, np.std(bag_means, ddof=1) * factor)
            assert row.dof == 3
        observed = part[part["label"] != "missing"]
        # runs of adjacent values holding about equal rows, the missing values apart
        assert len(observed) == 4
        assert observed["weight"].max() < 1.3 * observed["weight"].min()
        values = X[term].to_numpy(float)
        ranges = [
            (values[row_runs == r].min(), values[row_runs == r].max()) for r in observed["bin"]
        ]
        assert all(high < low for (_, high), (low, _) in itertools.pairwise(ranges))
        if term == "x":
            missing = part[part["label"] == "missing"]
            assert missing["weight"].tolist() == [X["x"].isna().sum()]
        else:  # integer runs named by the first and last ages they hold
            assert observed["label"].tolist() == [f"{a:.0f}-{b:.0f}" for a, b in ranges]


def test_runs_of_a_second_model_follow_the_first_ones_groups(ebm_and_rows):
    ebm, _ = ebm_and_rows
    first, groups = main_effect_runs(ebm, runs=3, terms=["age"])
    again, same = main_effect_runs(ebm, runs=7, terms=["age"], groups=groups)
    assert same.keys() == groups.keys()
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(ValueError, match="binned unlike"):
        main_effect_runs(ebm, terms=["age"], groups={"age": np.zeros(3, dtype=int)})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"runs": 1}, ValueError, "runs"),
        ({"runs": 2.5}, TypeError, "runs"),
        ({"terms": "x"}, TypeError, "terms"),
        ({"terms": ["c"]}, ValueError, r"terms must name main effects.*\['c'\]"),
        ({"terms": ["nope"]}, ValueError, "terms"),
        ({"boolean_features": [-1]}, ValueError, "boolean_features"),
    ],
)
def test_main_effect_runs_refuses_bad_arguments(ebm_and_rows, kwargs, error, match):
    ebm, _ = ebm_and_rows
    with pytest.raises(error, match=match):
        main_effect_runs(ebm, **kwargs)


def _thin_audit(**kwargs):
    """An audit of the default models (256 bins: about 5 rows per value on 1,200 rows)."""
    params = {
        "calibration": None,
        "cv": 2,
        "n_crossfits": 1,
        "interactions": 0,
        "random_state": 0,
        "n_jobs": 1,
        **kwargs,
    }
    return CompareAudit(**params)


@pytest.fixture(scope="module")
def planted():
    """The black box ignores a's effect above its median; b has no effect on either."""
    rng = np.random.default_rng(5)
    n = 1200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-2, 2, n)})
    logit = 3.0 * X["a"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = (logit - 3.0 * np.clip(X["a"], 0, None)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _thin_audit().fit(X, y, teacher_scores=score)
    return audit, X


def test_compare_runs_tests_the_thin_features_on_runs(planted):
    from sklearn_distill.stats import untested_terms

    audit, X = planted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        listed = untested_terms(audit.compare())["term"].tolist()
    assert sorted(listed) == ["a", "b"]  # about 4 rows per value: none testable
    table = audit.compare_runs()
    assert table["term"].unique().tolist() == ["a", "b"] and (table["kind"] == "main run").all()
    assert table.groupby("term").size().tolist() == [5, 5]
    # each side is the row-weighted mean of its model's shape over the run's rows
    scale = float(np.ravel(audit.mimic_.target_scale_)[0])
    mimic = audit.mimic_.student_.eval_terms(X) * scale
    outcome = audit.outcome_.eval_terms(X)
    for row in table.itertuples():
        k = list(X.columns).index(row.term)
        rows = _row_bins(audit.mimic_.student_, X, k)
        in_run = np.isin(rows, np.flatnonzero(_groups(audit, row.term) == row.run))
        assert in_run.sum() == row.weight
        np.testing.assert_allclose(row.mimic, mimic[in_run, k].mean(), atol=1e-9)
        np.testing.assert_allclose(row.outcome, outcome[in_run, k].mean(), atol=1e-9)
    np.testing.assert_allclose(table["difference"], table["mimic"] - table["outcome"])
    # the black box ignores a above 0: its highest run lies lowest in the mimic against the
    # outcome model, and a run of a is flagged (the one below 0 that the centring lifts: the
    # highest runs' bands are wide); b, without effect in either, is not
    a = table[table["term"] == "a"]
    assert a["difference"].idxmin() == a.index[-1] and a["difference"].iloc[-1] < -1
    assert a["significant_bh"].any()
    assert not table.loc[table["term"] == "b", "significant"].any()


def _groups(audit, term):
    _, groups = main_effect_runs(audit.mimic_.student_, terms=[term])
    return np.asarray(groups[term])


def test_summary_and_report_name_the_runs_that_differ(planted):
    from sklearn_distill.report import audit_findings_text

    audit, _ = planted
    with warnings.catch_warnings():
        # the runs cover every untested feature: compare()'s warning is not repeated
        warnings.simplefilter("error", UserWarning)
        summary = audit.summary()
        text = audit_findings_text(audit, width=10_000)
    line = summary[summary["kind"] == "main run"].set_index("term")["text"]
    assert line["a"].startswith("a: [") and "of 5 runs of adjacent values)" in line["a"]
    assert " differ" in line["a"]
    (runs,) = [part for part in text.split("\n  - ") if part.startswith("On runs of adjacent")]
    assert "a: [" in runs and "b: " in runs
    assert "changes sign inside a run averages out" in runs
    flagged = int(audit.compare_runs()["significant_bh"].sum())
    assert f"On runs of adjacent values, {flagged} of 10 runs of the 2 features too thin" in text
    # runs=None leaves them out, and compare() then warns of the untested features
    with pytest.warns(UserWarning, match="too thin to test"):
        plain = audit.summary(runs=None)
    assert not (plain["kind"] == "main run").any()


def test_calibration_noise_widens_the_mimics_runs():
    rng = np.random.default_rng(7)
    n = 900
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-2, 2, n)})
    logit = X["a"] + np.sin(X["b"])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit = _thin_audit(calibration="isotonic").fit(X, y, teacher_scores=logit.to_numpy())
    replicates = audit._calibration_replicates_
    assert set(replicates) == {"a", "b"}
    student = audit.mimic_.student_
    scale = float(np.ravel(audit.mimic_.target_scale_)[0])
    plain, groups = main_effect_runs(student, scale=scale)
    table = audit.compare_runs(terms=["a", "b"])
    for term in ("a", "b"):
        index = list(student.term_names_).index(term)
        group = np.asarray(groups[term])  # the missing-value bin and the observed ones
        weights = np.asarray(student.bin_weights_[index], dtype=float)[: group.size]
        change = replicates[term][:, : group.size]
        change = change - (change @ weights / weights.sum())[:, None]  # centred as the term
        for run in np.unique(group):
            cells = (group == run) & (weights > 0)
            spread = np.var(change[:, cells] @ (weights[cells] / weights[cells].sum()), ddof=1)
            se = plain.query("term == @term and bin == @run")["std_error"].item()
            low, high = table.query("term == @term and run == @run")[
                ["mimic_lower", "mimic_upper"]
            ].to_numpy()[0]
            t = (high - low) / 2 / np.sqrt(se**2 + spread)
            np.testing.assert_allclose(t, 2.364624, rtol=1e-5)  # Student's t on 7 dof


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"runs": 1}, ValueError, "runs"),
        ({"runs": "5"}, TypeError, "runs"),
        ({"terms": "a"}, TypeError, "terms"),
        ({"terms": 3}, TypeError, "terms"),
        ({"min_weight": -1}, ValueError, "min_weight"),
    ],
)
def test_compare_runs_refuses_bad_arguments(planted, kwargs, error, match):
    audit, _ = planted
    with pytest.raises(error, match=match):
        audit.compare_runs(**kwargs)


@pytest.mark.parametrize(("runs", "error"), [(1, ValueError), ("5", TypeError), (2.0, TypeError)])
def test_summary_refuses_bad_runs(planted, runs, error):
    audit, _ = planted
    with pytest.raises(error, match="runs"):
        audit.summary(runs=runs)


@pytest.fixture(scope="module")
def ordered_ebm():
    """A numeric feature of 3 values on 70%, 20% and 10% of the rows, and an ordinal one of 8
    categories given in their order."""
    rng = np.random.default_rng(0)
    n = 800
    levels = ["none", "low", "mid", "high", "very high", "extreme", "max", "top"]
    X = pd.DataFrame(
        {
            "three": rng.choice([0.0, 1.0, 2.0], n, p=[0.7, 0.2, 0.1]),
            "grade": pd.Categorical(rng.choice(levels, n), categories=levels, ordered=True),
        }
    )
    y = X["three"] + X["grade"].cat.codes / 4 + rng.normal(size=n)
    ebm = ExplainableBoostingRegressor(outer_bags=3, interactions=0, max_rounds=100, n_jobs=1)
    return ebm.fit(X, y), X


def test_a_feature_of_fewer_values_than_runs_keeps_a_run_per_value(ordered_ebm):
    ebm, X = ordered_ebm
    table, _ = main_effect_runs(ebm, runs=5, terms=["three"])
    # cut into equal rows, the 20% value joined the 10% one (2 runs, "1-2")
    assert table["label"].tolist() == ["0", "1", "2"]
    assert table["weight"].tolist() == X["three"].value_counts().sort_index().tolist()
    assert (table["n_bins"] == 1).all()


def test_runs_of_ordered_categories_are_named_by_their_first_and_last(ordered_ebm):
    ebm, X = ordered_ebm
    assert list(ebm.feature_types_in_) == ["continuous", "ordinal"]
    table, groups = main_effect_runs(ebm, runs=2, terms=["grade"])
    # each run holds 4 adjacent categories in their order: the last was hidden behind "..."
    assert table["label"].tolist() == ["none to high (4 values)", "very high to top (4 values)"]
    codes = X["grade"].cat.codes.to_numpy()
    assert table["weight"].tolist() == [(codes < 4).sum(), (codes >= 4).sum()]
    # the empty missing-value bin joins the first run
    assert np.asarray(groups["grade"]).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def _run_rows(weights, groups):
    return [float(weights[groups == run].sum()) for run in range(groups.max() + 1)]


def test_a_heavy_first_value_is_a_run_and_the_tail_gets_the_runs_it_leaves():
    # a count at 0 on 60% of the rows, a tail of 40 values of 1% each (no missing values)
    weights = np.r_[0.0, 60.0, np.ones(40)]
    groups = _run_groups(weights, 5)
    assert groups.tolist() == [0, 0] + [r for r in range(1, 5) for _ in range(10)]
    assert _run_rows(weights, groups) == [60, 10, 10, 10, 10]
    # cut into equal rows, the 0 spanned three runs' worth and left the tail two; the
    # interaction blocks still cut so
    assert _run_rows(weights, block_groups(weights, 5)) == [60, 20, 20]


def test_a_heavy_value_in_the_middle_splits_the_runs_it_leaves_by_rows():
    weights = np.r_[0.0, np.ones(20), 60.0, np.ones(20)]
    groups = _run_groups(weights, 5)
    assert _run_rows(weights, groups) == [10, 10, 60, 10, 10]
    assert groups[21] == 2 and (groups[21] != np.delete(groups, [0, 21])).all()
    # a missing-value bin with rows stays apart, as run 0
    missing = _run_groups(np.r_[5.0, weights[1:]], 5)
    assert missing[0] == 0 and (missing[1:] == groups[1:] + 1).all()


def test_two_heavy_values_each_a_run_and_the_light_stretches_between_and_after():
    weights = np.r_[0.0, np.ones(20), 40.0, np.ones(10), 40.0, np.ones(10)]
    groups = _run_groups(weights, 5)
    assert _run_rows(weights, groups) == [20, 40, 10, 40, 10]
    # 6 runs: the stretch of 20 rows gets the extra one, as two of 10
    assert _run_rows(weights, _run_groups(weights, 6)) == [10, 10, 40, 10, 40, 10]


def test_a_value_heavy_once_the_heaviest_is_set_apart_is_a_run_of_its_own():
    # 25 of 100 rows is under a fifth, but over a quarter of the 70 left to 4 runs
    weights = np.r_[0.0, 30.0, 25.0, np.ones(45)]
    assert _run_rows(weights, _run_groups(weights, 5)) == [30, 25, 15, 15, 15]


def test_bins_without_rows_join_the_run_before_them_beside_a_heavy_value():
    weights = np.r_[0.0, 0.0, 60.0, 0.0, 0.0, np.ones(40), 0.0]
    groups = _run_groups(weights, 5)
    assert groups[:5].tolist() == [0, 0, 0, 0, 0]  # leading, and after the heavy value
    assert groups[-1] == groups[-2] == 4
    assert _run_rows(weights, groups) == [60, 10, 10, 10, 10]


def test_light_stretches_beyond_the_runs_left_join_the_run_before_them():
    # 3 heavy values leave 2 runs to 4 stretches of one row: the first two get them
    weights = np.r_[0.0, 1.0, 30.0, 1.0, 30.0, 1.0, 30.0, 1.0]
    groups = _run_groups(weights, 5)
    assert groups.tolist() == [0, 0, 1, 2, 3, 3, 4, 4]
    assert groups.max() + 1 == 5


@pytest.mark.parametrize(
    ("weights", "runs", "expected"),
    [  # the cut before heavy values were set apart (no bin holds more than a run's share)
        ([0, 3, 5, 2, 4, 6, 1, 3, 2, 5, 4, 3, 2], 4, [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3]),
        ([0, 3, 5, 2, 4, 6, 1, 3, 2, 5, 4, 3, 2], 5, [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4]),
        ([7, 3, 5, 0, 4, 6, 1, 3, 0, 5, 4, 3, 2], 5, [0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 5]),
    ],
)
def test_without_a_heavy_value_the_runs_are_cut_as_before(weights, runs, expected):
    weights = np.asarray(weights, dtype=float)
    assert _run_groups(weights, runs).tolist() == expected
    assert (block_groups(weights, runs) == expected).all()


def test_without_a_heavy_value_the_runs_are_the_interaction_axis_cut():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        weights = rng.integers(0, 6, size=rng.integers(8, 40)).astype(float)
        runs = int(rng.integers(2, 7))
        observed = weights[1:]
        if np.count_nonzero(observed) <= runs or observed.max() > observed.sum() / runs:
            continue
        assert (_run_groups(weights, runs) == block_groups(weights, runs)).all()
        checked += 1
    assert checked > 100


def test_runs_of_a_count_at_zero_on_most_rows():
    rng = np.random.default_rng(5)
    n = 1000
    count = np.where(rng.uniform(size=n) < 0.6, 0, rng.geometric(0.05, size=n))
    X = pd.DataFrame({"count": count.astype(float), "x": rng.normal(size=n)})
    y = 0.5 * np.log1p(X["count"]) + X["x"] + rng.normal(size=n)
    ebm = ExplainableBoostingRegressor(outer_bags=3, interactions=0, max_rounds=50, n_jobs=1)
    table, _ = main_effect_runs(ebm.fit(X, y), runs=5, terms=["count"])
    assert table["label"].iloc[0] == "0" and table["weight"].iloc[0] == (count == 0).sum()
    assert len(table) == 5  # the 0 and four runs of the tail
    tail = table["weight"].iloc[1:].to_numpy()
    assert tail.sum() == (count > 0).sum() and tail.max() < 2 * tail.min()


@pytest.fixture
def counted_runs(monkeypatch):
    """The ``runs`` of every call of CompareAudit.compare_runs, in order."""
    calls = []
    compare_runs = CompareAudit.compare_runs

    def spy(self, **kwargs):
        calls.append(kwargs.get("runs", 5))
        return compare_runs(self, **kwargs)

    monkeypatch.setattr(CompareAudit, "compare_runs", spy)
    return calls


def test_a_report_compares_the_runs_once_with_the_runs_asked_for(planted, counted_runs, tmp_path):
    from sklearn_distill.report import audit_findings_text, audit_report_sections

    audit, _ = planted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sections = audit_report_sections(audit, n_bootstrap=20)
        assert counted_runs == [5]  # the headline and the findings share one table
        text = audit_findings_text(audit, width=10_000, runs=3)
        assert counted_runs == [5, 3]
        audit.report(tmp_path / "r.html", n_bootstrap=20, runs=4)
        assert counted_runs == [5, 3, 4]
        page = (tmp_path / "r.html").read_text("utf-8")
        plain = audit_findings_text(audit, width=10_000, runs=None)
        assert counted_runs == [5, 3, 4]  # runs=None compares none
    (found,) = [s for s in sections if s.heading == "What the audit found"]
    assert any(b.startswith("On runs of adjacent values (up to 5 runs") for b in found.bullets)
    assert any(" of 10 runs of the 2 features too thin" in b for b in found.bullets)
    assert "On runs of adjacent values (up to 3 runs per feature" in text
    assert " of 6 runs of the 2 features too thin" in text
    assert "up to 4 runs per feature" in page
    assert "On runs of adjacent values" not in plain and "except on the runs below" not in plain


@pytest.mark.parametrize(("runs", "error"), [(1, ValueError), ("5", TypeError), (0, ValueError)])
def test_the_report_refuses_bad_runs_before_any_work(planted, counted_runs, tmp_path, runs, error):
    from sklearn_distill.report import audit_findings_text, audit_report_sections

    audit, _ = planted
    for call in (
        lambda: audit_report_sections(audit, runs=runs),
        lambda: audit_findings_text(audit, runs=runs),
        lambda: audit.report(tmp_path / "bad.html", runs=runs),
    ):
        with pytest.raises(error, match="runs"):
            call()
    assert counted_runs == [] and not (tmp_path / "bad.html").exists()


def _run_marks(fig):
    """Per panel title: the runs' segments ``{(low, high, mean)}`` per colour, and the bars
    of the runs that differ ``[(x, lower end, upper end)]``."""
    from matplotlib.colors import to_hex

    from sklearn_distill.plotting import RUN_FLAG_GID, RUN_GID

    marks = {}
    for ax in fig.axes:
        segments, bars = {}, []
        for collection in ax.collections:
            if collection.get_gid() != RUN_GID:
                continue
            colour = to_hex(collection.get_colors()[0])
            segments[colour] = {
                (round(a[0], 9), round(b[0], 9), round(a[1], 9))
                for a, b in collection.get_segments()
            }
        for line in ax.get_lines():
            if line.get_gid() == RUN_FLAG_GID:
                (x, _), (y0, y1) = line.get_xdata(), line.get_ydata()
                bars.append((x, min(y0, y1), max(y0, y1)))
        marks[ax.get_title()] = (segments, bars)
    return marks


def test_the_shapes_figure_draws_each_runs_two_means_over_its_values():
    from sklearn_distill.plotting import (
        MIMIC_COLOR,
        OUTCOME_COLOR,
        RUN_FLAG_LABEL,
        RUN_LABEL,
        plot_comparison,
    )

    x = np.linspace(0.0, 9.0, 10)
    shape = pd.DataFrame(
        {
            "term": "t",
            "value": x,
            "mimic": 0.1 * x,
            "mimic_lower": 0.1 * x - 0.2,
            "mimic_upper": 0.1 * x + 0.2,
            "outcome": -0.1 * x,
            "outcome_lower": -0.1 * x - 0.2,
            "outcome_upper": -0.1 * x + 0.2,
            "difference": 0.2 * x,
            "significant_bh": False,
        }
    )
    shape = pd.concat([shape, shape.assign(term="u")], ignore_index=True)
    runs = pd.DataFrame(
        {
            "term": ["t", "t", "t"],
            "low": [np.nan, 0.0, 4.5],  # the missing-value run has no reach on the axis
            "high": [np.nan, 4.5, 9.0],
            "mimic": [0.3, 0.2, 0.7],
            "outcome": [0.0, -0.2, -0.7],
            "significant_bh": [True, False, True],
        }
    )
    marks = _run_marks(plot_comparison(shape, ncols=2, runs=runs))
    segments, bars = marks["t"]
    assert segments == {
        MIMIC_COLOR: {(0.0, 4.5, 0.2), (4.5, 9.0, 0.7)},
        OUTCOME_COLOR: {(0.0, 4.5, -0.2), (4.5, 9.0, -0.7)},
    }
    # the run that differs: a bar joining its two means at the middle of its values
    assert bars == [(6.75, -0.7, 0.7)]
    assert marks["u"] == ({}, [])  # a term without runs

    def legend(figure):  # the main effects' legend, on their subfigure
        return [t.get_text() for part in figure.subfigs for t in part.legends[0].get_texts()]

    assert {RUN_LABEL, RUN_FLAG_LABEL} <= set(legend(plot_comparison(shape, runs=runs)))
    plain = plot_comparison(shape, ncols=2)
    assert _run_marks(plain)["t"] == ({}, [])
    assert RUN_LABEL not in legend(plain) and "mimic (black box)" in legend(plain)
    with pytest.raises(TypeError, match="runs must be a pandas DataFrame"):
        plot_comparison(shape, runs=runs.to_dict())
    with pytest.raises(ValueError, match="runs must have the columns .* 'low'"):
        plot_comparison(shape, runs=runs.drop(columns="low"))


def test_the_report_and_plot_comparison_draw_the_runs(planted):
    from sklearn_distill.plotting import MIMIC_COLOR
    from sklearn_distill.report import audit_report_sections

    audit, X = planted
    table = audit.compare_runs()
    # a run's reach: the lowest and highest edges of its bins, which hold its rows
    for row in table.itertuples():
        values = X[row.term].to_numpy(float)
        inside = (values >= row.low) & (values <= row.high)
        assert inside.sum() >= row.weight
    assert table["low"].iloc[1:5].tolist() == table["high"].iloc[:4].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sections = audit_report_sections(audit, n_bootstrap=20)
        drawn = _run_marks(audit.plot_comparison())
        plain = _run_marks(audit.plot_comparison(runs=None))
    (shapes,) = [s for s in sections if s.heading.startswith("Shape functions")]
    assert "a black bar joining the two means of a run that differs" in shapes.paragraphs[0]
    in_report = _run_marks(shapes.figures[0])
    assert in_report == drawn
    for term in ("a", "b"):
        part = table[table["term"] == term]
        expected = set(zip(part["low"].round(9), part["high"].round(9), part["mimic"].round(9)))
        assert drawn[term][0][MIMIC_COLOR] == expected
        assert len(drawn[term][1]) == int(part["significant_bh"].sum())
        assert plain[term] == ({}, [])
    assert len(drawn["a"][1]) >= 1
    with pytest.raises(ValueError, match="runs"):
        audit.plot_comparison(runs=1)


@pytest.mark.parametrize("error", [TypeError("a bug"), AttributeError("a bug")])
def test_an_error_of_the_runs_is_not_dropped_from_the_report(planted, monkeypatch, error):
    # any TypeError or AttributeError of compare_runs had dropped the runs' finding silently
    from sklearn_distill.report import audit_findings_text

    audit, _ = planted

    def broken(self, **kwargs):
        raise error

    monkeypatch.setattr(CompareAudit, "compare_runs", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(type(error), match="a bug"):
            audit_findings_text(audit)


def test_models_that_are_not_explainable_boosting_models_have_no_runs():
    # the one case without runs, as compare_runs() refuses it
    from types import SimpleNamespace

    from sklearn_distill.report import _run_comparison

    def unreachable(*args, **kwargs):
        raise AssertionError("compare_runs() called")

    audit = SimpleNamespace(
        _thin_ordered_terms=unreachable,
        compare_runs=unreachable,
        mimic_=SimpleNamespace(student_=object()),
        outcome_=object(),
    )
    assert _run_comparison(audit, pd.DataFrame(), 5) is None


def test_the_reports_settings_name_the_runs(planted):
    from sklearn_distill.report import audit_report_sections

    audit, _ = planted
    key = "runs (runs of adjacent values per thin feature)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for runs, shown in ((4, 4), (None, "None (no runs compared)")):
            sections = audit_report_sections(audit, n_bootstrap=20, runs=runs)
            (settings,) = [s for s in sections if s.heading == "Audit settings"]
            assert settings.items[key] == shown


def test_an_error_of_the_interaction_blocks_is_not_dropped_from_the_report(planted, monkeypatch):
    # a TypeError of compare_interactions had dropped the blocks' finding silently; models that
    # are not Explainable Boosting models are checked up front instead
    import sklearn_distill.report as report

    audit, _ = planted

    def broken(self, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(report, "_interaction_count", lambda audit: 1)
    monkeypatch.setattr(CompareAudit, "compare_interactions", broken)
    with pytest.raises(TypeError, match="a bug"):
        report._block_comparison(audit)
