"""Tests of the HTML report writer and the audit pictures (no model fitting here)."""

import base64
import html
import html.parser
import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sklearn_distill import DistilledTree
from sklearn_distill.plotting import (
    CLIPPED_GID,
    OUTCOME_COLOR,
    plot_calibration,
    plot_comparison,
    plot_interaction,
    plot_residuals,
    plot_term,
)
from sklearn_distill.report import (
    Section,
    Table,
    figure_to_data_uri,
    format_number,
    format_p_value,
    render_html,
    table_to_html,
    write_audit_report,
    write_html,
)
from sklearn_distill.stats import binned_rate, bootstrap_correlations

HOSTILE = '<script>alert("x")</script>'


class _Collector(html.parser.HTMLParser):
    """Collects tags and text, to check what a browser would see."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self.srcs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.srcs += [value for name, value in attrs if name in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def _comparison():
    values = np.linspace(18, 70, 6)
    numeric = pd.DataFrame(
        {
            "term": "age",
            "value": values,
            "mimic": np.linspace(1, -1, 6),
            "outcome": np.linspace(0.5, -0.5, 6),
        }
    )
    categorical = pd.DataFrame(
        {"term": HOSTILE, "value": ["a", HOSTILE, "c"], "mimic": [0.2, 0.0, -0.2], "outcome": 0.0}
    )
    frame = pd.concat([numeric, categorical], ignore_index=True)
    for key in ("mimic", "outcome"):
        frame[f"{key}_lower"] = frame[key] - 0.1
        frame[f"{key}_upper"] = frame[key] + 0.1
    frame["difference"] = frame["mimic"] - frame["outcome"]
    frame["significant"] = frame["difference"].abs() > 0.25
    return frame


def test_table_escapes_labels_and_values():
    frame = pd.DataFrame({HOSTILE: [HOSTILE, "plain"], "x": [1.23456, np.nan]})
    frame.index = pd.Index([HOSTILE, "row"], name=HOSTILE)
    page = table_to_html(frame, digits=2)
    assert "<script>" not in page
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    assert parser.text.count(HOSTILE) == 4  # index name, column, index label, value
    assert "1.23" in parser.text


def test_table_keeps_integer_columns_integer():
    frame = pd.DataFrame({"estimate": [0.5], "n_bootstrap": [1000]})
    page = table_to_html(frame, index=False)
    assert "<td>1000</td>" in page and "<td>0.500</td>" in page


def test_text_columns_get_left_aligned_headers():
    frame = pd.DataFrame({"term": ["age", "sex"], "value": ["18", None], "difference": [0.5, -0.1]})
    page = table_to_html(frame, index=False)
    assert '<th class="text">term</th>' in page
    assert '<th class="text">value</th>' in page  # an empty cell does not make it numeric
    assert "<th>difference</th>" in page


def test_table_flags_and_truncates():
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0], "flag": [True, False, True]})
    page = table_to_html(frame, flag_column="flag", max_rows=2)
    assert page.count('<tr class="flag">') == 1
    assert "1 more rows not shown" in page
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame"):
        table_to_html([[1]])


def test_report_is_self_contained_and_escaped(tmp_path):
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    sections = [
        Section(
            HOSTILE,
            paragraphs=[HOSTILE, "a & b"],
            items={HOSTILE: HOSTILE},
            table=pd.DataFrame({"c": [HOSTILE]}),
            figures=[fig],
        )
    ]
    path = write_html(tmp_path / "r.html", HOSTILE, sections)
    page = open(path, encoding="utf-8").read()
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    # every resource is embedded: no external source or link
    assert parser.srcs and all(src.startswith("data:image/png;base64,") for src in parser.srcs)
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    png = base64.b64decode(parser.srcs[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the hostile string shows up as text: title, heading, paragraph, key, value, cell
    assert sum(t.count(HOSTILE) for t in parser.text) == 7
    assert "a & b" in "".join(parser.text)


def test_write_html_bad_path():
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        write_html(3, "t", [])


def test_figure_to_data_uri_is_png():
    uri = figure_to_data_uri(Figure(figsize=(1, 1)))
    assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"


def test_plot_term_numeric_and_categorical():
    comparison = _comparison()
    fig = plot_term(comparison, "age")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # two step lines plus the significance markers
    assert len(ax.get_lines()) >= 2
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), np.linspace(18, 70, 6))
    ax = plot_term(comparison, HOSTILE, max_label_length=40).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", HOSTILE, "c"]
    with pytest.raises(ValueError, match="term must be a term of the comparison table"):
        plot_term(comparison, "nope")


def test_plot_term_labels_categories_too_thin_to_test_with_their_rows():
    frame = (
        _comparison()
        .query("term == @HOSTILE")
        .assign(testable=[True, False, True], weight=[500.0, 8.0, 300.0])
    )
    ax = plot_term(frame, HOSTILE, max_label_length=40).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", f"{HOSTILE} (8 rows)", "c"]


def test_plot_term_shows_a_constant_column_as_its_one_value():
    # a step function through one point draws nothing: the value is shown as a point instead
    constant = _comparison().query("term == 'age'").head(1).assign(term="k", value=1.0)
    ax = plot_term(constant, "k").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1.0"]
    centres = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert any(np.allclose(y, constant["mimic"]) for y in centres)


def test_plot_term_draws_on_a_given_axes_and_returns_its_figure():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_term(_comparison(), "age", ax=ax) is fig


def test_plot_term_caps_categories():
    frame = _comparison()
    frame = frame[frame["term"] == HOSTILE]
    ax = plot_term(frame, HOSTILE, max_categories=2).axes[0]
    assert len(ax.get_xticks()) == 2
    assert "2 of 3 values" in ax.get_xlabel()


def _long_tailed(weights):
    values = np.arange(0.0, 41.0)
    return pd.DataFrame(
        {
            "term": "priors",
            "value": values,
            "mimic": 0.05 * values,
            "mimic_lower": 0.05 * values - 0.1,
            "mimic_upper": 0.05 * values + 0.1,
            "outcome": 0.06 * values,
            "outcome_lower": 0.06 * values - 0.1,
            "outcome_upper": 0.06 * values + 0.1,
            "difference": -0.01 * values,
            "significant": False,
            "weight": weights,
        }
    )


def test_long_tailed_axis_is_cut_at_the_quantile_and_says_so():
    # 99% of the rows hold values 0 to 9; the tail reaches 40
    weights = np.where(np.arange(41) < 10, 99.0, 10 * 99.0 / 31 / 99)
    frame = _long_tailed(weights)
    share = np.cumsum(weights) / weights.sum()
    expected = np.arange(41.0)[np.searchsorted(share, 0.99)]
    ax = plot_term(frame, "priors").axes[0]
    assert expected < ax.get_xlim()[1] < expected + 1
    assert "99th percentile" in ax.get_xlabel() and "max 40" in ax.get_xlabel()
    # evenly spread rows: nothing to cut
    ax = plot_term(_long_tailed(np.ones(41)), "priors").axes[0]
    assert ax.get_xlim()[1] >= 40 and ax.get_xlabel() == ""
    ax = plot_term(frame, "priors", tail_quantile=None).axes[0]
    assert ax.get_xlim()[1] >= 40


@pytest.mark.parametrize("flagged", [30.0, 40.0])
def test_a_flagged_value_beyond_the_tail_cut_stays_on_the_axis(flagged):
    # 99% of the rows hold values 0 to 9; a value of the tail is flagged
    weights = np.where(np.arange(41) < 10, 99.0, 10 * 99.0 / 31 / 99)
    frame = _long_tailed(weights).assign(significant=lambda f: f["value"].isin([5.0, flagged]))
    ax = plot_term(frame, "priors").axes[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    shown = np.concatenate([line.get_xdata() for line in stars])
    low, high = ax.get_xlim()
    assert set(shown) == {5.0, flagged} and low <= shown.min() and shown.max() <= high
    if flagged < 40:  # cut beyond the flagged value, and said so
        assert high < 40 and "moved out to the last flagged value" in ax.get_xlabel()
    # a flag inside the cut leaves it where it was
    inside = _long_tailed(weights).assign(significant=lambda f: f["value"] == 5.0)
    assert plot_term(inside, "priors").axes[0].get_xlim()[1] < 12


def test_a_flagged_sparse_value_far_from_the_dense_ones_stays_in_view():
    # the y axis follows the dense values' bands; a flagged value of the tail whose estimates
    # lie far above them (a bias on the top 1% of rows) is kept in view, star included
    weights = np.where(np.arange(41) < 10, 99.0, 10 * 99.0 / 31 / 99)
    frame = _long_tailed(weights)
    biased = frame["value"] == 30.0
    frame.loc[biased, ["mimic", "mimic_lower", "mimic_upper"]] = [5.0, 1.0, 9.0]
    frame["significant"] = biased
    ax = plot_term(frame, "priors").axes[0]
    low, high = ax.get_ylim()
    assert low <= 5.0 <= high and low <= float(frame.loc[biased, "outcome"].iloc[0]) <= high
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert low <= float(np.asarray(star.get_ydata())[0]) <= high
    assert high < 9.0  # the sparse value's wide band does not set the scale


def test_categorical_labels_are_shortened_and_flagged_values_use_the_adjusted_flag():
    names = [f"category number {i} with a long description" for i in range(12)]
    frame = pd.DataFrame(
        {
            "term": "charge",
            "value": names,
            "mimic": np.linspace(-1, 1, 12),
            "outcome": 0.0,
            "significant": True,
            "significant_bh": [True] + [False] * 11,
        }
    )
    for key in ("mimic", "outcome"):
        frame[f"{key}_lower"] = frame[key] - 0.1
        frame[f"{key}_upper"] = frame[key] + 0.1
    frame["difference"] = frame["mimic"]
    ax = plot_term(frame, "charge", max_label_length=12).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all(len(label) <= 12 for label in labels)
    assert labels[0] == names[0][:11] + "\u2026"
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1 and len(stars[0].get_xdata()) == 1


def test_a_pooled_group_label_cut_short_shows_a_single_ellipsis():
    # a coarse block pooling a nominal feature's smaller categories is labelled "Asian,
    # Hispanic, ... (4 values)"; cut for a tick label it read "Hispanic, ...\u2026", two
    # ellipses in a row
    pooled = "Asian, Hispanic, ... (4 values)"
    pairs = [(a, b) for a in ("African-American", "Caucasian", pooled) for b in ("F", "M")]
    blocks = pd.DataFrame(
        {
            "term": "race & sex",
            "block": [(i // 2, i % 2) for i in range(6)],
            "label": pairs,
            "mimic": np.linspace(-0.3, 0.3, 6),
            "outcome": 0.0,
            "significant": False,
        }
    )
    blocks["difference"] = blocks["mimic"]
    for ax in plot_interaction(blocks, "race & sex").axes[:3]:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[0] == "African-\nAmerican" and labels[1] == "Caucasian"
        cut = labels[2]
        assert cut.endswith("\u2026") and cut.count("\u2026") == 1 and "..." not in cut
        # what shows before the ellipsis is the label's own beginning, wrapped
        assert pooled.startswith(cut[:-1].replace("\n", " "))


def test_a_heatmaps_numeric_ticks_share_one_notation_and_stay_apart():
    # ".3g" wrote one axis's values as "500" beside "1.5e+03", and 999.5 and 1000.2 both as
    # "1e+03": two cells of the heatmap under one name
    values = [500.25, 999.5, 1000.2, 1500.75, 47630.2]
    cells = pd.DataFrame(
        {
            "term": "income & sex",
            "value": [(v, s) for v in values for s in ("F", "M")],
            "mimic": np.linspace(-0.5, 0.5, 10),
            "outcome": 0.0,
            "significant": False,
        }
    )
    cells["difference"] = cells["mimic"]
    ax = plot_interaction(cells, "income & sex").axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) == len(set(ticks)) == len(values)
    assert not any("e" in tick for tick in ticks)
    np.testing.assert_allclose([float(t) for t in ticks], values, rtol=5e-4)


def test_plot_comparison_has_one_legend_and_wide_rows_for_long_category_lists():
    many = pd.DataFrame(
        {"term": "charge", "value": [f"c{i}" for i in range(12)], "mimic": 0.0, "outcome": 0.0}
    )
    for key in ("mimic", "outcome"):
        many[f"{key}_lower"], many[f"{key}_upper"] = -0.1, 0.1
    many["difference"], many["significant"] = 0.0, False
    frame = pd.concat([_comparison(), many], ignore_index=True)
    fig = plot_comparison(frame, ncols=2)
    legends = list(fig.legends) + [lg for sub in fig.subfigs for lg in sub.legends]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == [
        "mimic (black box)",
        "outcome model",
        "flagged difference (Benjamini-Hochberg)",
    ]
    assert all(ax.get_legend() is None for ax in fig.axes)
    fig.savefig(io.BytesIO(), format="png")
    widths = {ax.get_title(): ax.get_position().width for ax in fig.axes}
    assert widths["charge"] > 1.8 * widths["age"]


def _interaction_rows():
    first = [0.0, 0.0, 1.0, 1.0, 2.0]
    second = ["x", "y", "x", "y", "y"]  # the cell (2, "x") holds no rows
    mimic = np.array([0.1, -0.2, 0.3, -0.4, 0.5])
    outcome = np.array([0.0, 0.1, 0.0, 0.1, 0.0])
    return pd.DataFrame(
        {
            "term": "a & b",
            "kind": "interaction",
            "value": list(zip(first, second)),
            "mimic": mimic,
            "outcome": outcome,
            "difference": mimic - outcome,
            "significant": [False, False, False, True, False],
            "significant_bh": [False, False, False, True, False],
        }
    )


def test_plot_interaction_places_each_cell():
    rows = _interaction_rows()
    fig = plot_interaction(rows, "a & b")
    images = [ax.get_images()[0].get_array() for ax in fig.axes[:3]]
    # rows of the picture: second feature (x, y); columns: first feature (0, 1, 2)
    expected = {
        "mimic": [[0.1, 0.3, np.nan], [-0.2, -0.4, 0.5]],
        "outcome": [[0.0, 0.0, np.nan], [0.1, 0.1, 0.0]],
        "difference": [[0.1, 0.3, np.nan], [-0.3, -0.5, 0.5]],
    }
    for image, key in zip(images, expected):
        np.testing.assert_allclose(np.ma.filled(image, np.nan), expected[key])
    # mimic and outcome share one colour scale, centred on zero
    assert fig.axes[0].get_images()[0].get_clim() == fig.axes[1].get_images()[0].get_clim()
    assert fig.axes[0].get_images()[0].get_clim() == (-0.5, 0.5)
    dots = fig.axes[2].get_lines()[0]
    assert list(dots.get_xdata()) == [1] and list(dots.get_ydata()) == [1]
    assert fig.axes[0].get_xlabel() == "a" and fig.axes[0].get_ylabel() == "b"
    with pytest.raises(ValueError, match="pairwise interaction"):
        plot_interaction(_comparison(), "age")
    # drawn into a given subfigure, as the plotting contract asks
    outer = Figure(figsize=(12, 7))
    top, _ = outer.subfigures(2, 1)
    assert plot_interaction(rows, "a & b", fig=top) is top
    assert len(top.axes) == 5  # three heatmaps and two colour bars


def test_plot_comparison_draws_interactions_as_heatmap_rows():
    frame = pd.concat([_comparison(), _interaction_rows()], ignore_index=True)
    fig = plot_comparison(frame)
    heatmaps = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in heatmaps] == [
        "mimic (black box)",
        "outcome model",
        "difference (mimic - outcome)",
    ]
    fig.savefig(io.BytesIO(), format="png")


def test_calibration_picture_with_a_single_outcome_score_value():
    # every row with score 3 had the outcome: the Wilson bound computed in floating point can
    # land a rounding error outside [0, 1], and matplotlib refuses a negative error bar
    score = np.repeat([1.0, 2.0, 3.0], 7)
    y = np.r_[[0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1, 1], [1] * 7]
    binned = binned_rate(score, y)
    binned.loc[2, "high"] = 1.0 - 3e-17  # below the rate of 1.0
    binned.loc[0, "low"] = 3e-17  # above the rate of 0.0
    fig = plot_calibration(binned)
    fig.savefig(io.BytesIO(), format="png")
    bars = fig.axes[0].containers[0]
    segments = bars.lines[2][0].get_segments()
    assert all(seg[0][1] <= seg[1][1] for seg in segments)
    assert all(0.0 <= seg[0][1] and seg[1][1] <= 1.0 for seg in segments)


def test_plot_comparison_and_others_return_figures(tmp_path):
    fig = plot_comparison(_comparison(), ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    # a column named 0 is the term "0" (interpret names terms as text); unknown names are
    # refused with the table's terms listed
    numbered = _comparison().replace({"term": {"age": "0"}})
    assert len([ax for ax in plot_comparison(numbered, terms=[0]).axes if ax.get_visible()]) == 1
    with pytest.raises(ValueError, match=r"terms must be terms of the comparison table \('0'"):
        plot_comparison(numbered, terms=["nope"])
    fig.savefig(tmp_path / "c.png")
    rng = np.random.default_rng(0)
    score = rng.integers(1, 11, size=300).astype(float)
    y = (rng.uniform(size=300) < score / 11).astype(float)
    curve = pd.DataFrame({"score": np.arange(1, 11), "probability": np.arange(1, 11) / 11})
    fig = plot_calibration(binned_rate(score, y), curve=curve, score_name="decile")
    assert fig.axes[0].get_xlabel() == "decile"
    a, b = rng.normal(size=300), rng.normal(size=300)
    table = bootstrap_correlations(a, b, n_bootstrap=20, random_state=0)
    fig = plot_residuals(a, b, correlations=table, max_points=100)
    assert "pearson" in fig.axes[0].get_title()
    given = Figure().subplots(1, 2)
    assert plot_residuals(a, b, ax=given[1]) is given[1].figure
    assert plot_calibration(binned_rate(score, y), ax=given[0]) is given[0].figure
    assert len(fig.axes[0].collections[0].get_offsets()) == 100
    with pytest.raises(ValueError, match="differ in shape"):
        plot_residuals(a, b[:-1])


def test_user_text_with_dollar_signs_is_drawn_as_written(tmp_path):
    # "$...$" in a column name or category would be read as mathtext by matplotlib: an unknown
    # command made saving the figure fail, and "$x_1$" was drawn as a formula
    math_like = r"cost $\alpha$ in $"
    frame = _comparison().replace({"term": {HOSTILE: math_like}, "value": {"a": r"$\notacommand$"}})
    fig = plot_comparison(frame)
    fig.savefig(tmp_path / "dollars.png")
    panel = [ax for ax in fig.axes if ax.get_title() == math_like]
    assert len(panel) == 1
    assert r"$\notacommand$" in [t.get_text() for t in panel[0].get_xticklabels()]
    binned = binned_rate([1, 1, 2, 2], [0, 1, 1, 1])
    plot_calibration(binned, score_name=r"$\notacommand$").savefig(tmp_path / "calibration.png")


@pytest.mark.parametrize("n_bootstrap", [19, 50, 999, 1000, 10_000])
def test_p_values_at_the_bootstrap_floor_read_as_a_bound(n_bootstrap):
    floor = 2 / (n_bootstrap + 1)  # the smallest p-value bootstrap_p_value can give
    # the p-value of a correlation far from zero is the floor itself
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    table = bootstrap_correlations(a, a + 0.1 * rng.normal(size=200), n_bootstrap=n_bootstrap)
    assert table.loc["pearson", "p_value"] == pytest.approx(floor)
    text = format_p_value(table.loc["pearson", "p_value"], n_bootstrap)
    assert text.startswith("<= ")
    bound = float(text[3:])
    assert floor <= bound <= 1.1 * floor  # a true bound, rounded up to two digits
    # above the floor the value itself is shown
    assert not format_p_value(3 * floor, n_bootstrap).startswith("<=")
    assert format_p_value(float("nan")) == ""
    assert format_p_value(1e-5) == "< 0.001" and format_p_value(0.25) == "0.250"


def test_a_p_value_below_a_round_level_never_reads_as_that_level():
    # three decimals would print 0.04995 as "0.050", beside "positively correlated" or a flag
    for p, level in ((0.04995, 0.05), (0.0499, 0.05), (0.00996, 0.01), (0.0996, 0.1)):
        text = format_p_value(p)
        assert text == f"< {level:.3f}", p
    # at the level, or rounded down onto it, the value itself
    assert format_p_value(0.05) == "0.050" and format_p_value(0.05004) == "0.050"
    assert format_p_value(0.0123) == "0.012"


def test_formatters_align_numbers_right_and_text_left():
    frame = pd.DataFrame({"value": ["18-19", 3.0], "p": [0.5, 0.01]})
    page = table_to_html(frame, index=False, formatters={"value": str, "p": format_p_value})
    assert '<td class="text">18-19</td>' in page and "<td>3.0</td>" in page
    assert "<td>0.500</td>" in page and "<td>0.010</td>" in page


def test_sections_render_hidden_tables_side_by_side_tables_bullets_and_verdict():
    table = pd.DataFrame({"a": [1.0]})
    section = Section(
        "s",
        verdict=HOSTILE,
        bullets=["one", HOSTILE],
        tables=[Table(table, heading="left"), Table(table, heading="right")],
        side_by_side=True,
    )
    hidden = Section("t", tables=[Table(table, heading=f"All {HOSTILE}", hidden=True)])
    page = render_html("r", [section, hidden])
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    assert '<div class="side">' in page and page.count("<h3>") == 2
    assert page.count("<li>") == 2 and '<p class="verdict">' in page
    assert "<details><summary>All &lt;script&gt;" in page
    assert '<meta name="viewport"' in page


@pytest.fixture(scope="module")
def fitted_audit():
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    from sklearn_distill import CompareAudit

    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "group": rng.choice(["x", "y", "z"], size=n),
        }
    )
    hidden = rng.normal(size=n)  # a feature the audit data lack
    logit = X["a"] + 0.8 * X["a"] * X["b"] + hidden
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    # the black box also weighs group "x" unlike the outcome does
    score = logit + 2.0 * (X["group"] == "x") + 0.3 * rng.normal(size=n)
    small = dict(outer_bags=8, max_rounds=300, max_bins=32, max_interaction_bins=8)
    audit = CompareAudit(
        calibration="sigmoid",
        cv=3,
        random_state=0,
        interactions=1,
        min_weight=10,
        student=ExplainableBoostingRegressor(**small, learning_rate=0.1),
        outcome=ExplainableBoostingClassifier(**small, learning_rate=0.05),
    )
    audit.fit(X, y, teacher_scores=score)
    audit.missing_feature_test(n_bootstrap=50)
    audit.stability(X, y, teacher_scores=score, n_refits=2)
    return audit, X, y, score


def test_audit_report_reads_in_order_with_its_findings(fitted_audit, tmp_path):
    audit, X, y, score = fitted_audit
    tree = DistilledTree(calibration="sigmoid", max_leaf_nodes=4, random_state=0)
    tree.fit(X, y, teacher_scores=score)
    path = write_audit_report(
        audit,
        tmp_path / "audit.html",
        description={"data": HOSTILE},
        rule_tree=tree,
        rule_fidelity=tree.fidelity(X, score),
    )
    page = open(path, encoding="utf-8").read()
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:2] == ["How faithful the mimic is", "What the audit found"]
    assert headings.index("Stability across refits") < headings.index("Comparison table")
    assert "Interactions: mimic against outcome model" in headings
    assert "<h3>Interactions, coarse blocks</h3>" in page
    assert "Interactions on coarse blocks" in headings
    # the rules come before the shapes, one row per rule, with the rules' own fidelity
    assert headings.index("The black box as rules") < headings.index(
        "Shape functions: mimic against outcome model"
    )
    # what a reader needs to run it again: seeds, settings, versions, date
    import interpret
    import sklearn

    settings = page[page.index("<h2>Audit settings</h2>") :]
    for key, value in [
        ("random_state", "0"),
        ("min_weight (rows to test a value)", "10"),
        ("interaction pairs", f"1: {' &amp; '.join(audit.interaction_pairs_[0])}"),
        ("missing-feature test resamples", "50"),
        (
            "stability refits",
            "2 (bootstrap samples of the rows, threshold 0.25, shape threshold 1)",
        ),
    ]:
        assert f"<dt>{html.escape(key)}</dt><dd>{value}</dd>" in settings, key
    assert f"interpret {interpret.__version__}" in settings
    assert f"scikit-learn {sklearn.__version__}" in settings
    assert "report written" in settings
    # the coarse blocks have their table beside the values, flagged ones listed apart
    blocks = audit.compare_interactions()
    assert f"All {len(blocks)} interaction blocks, every column" in page
    n_flagged = int(blocks["significant_bh"].sum())
    assert (f"Flagged interaction blocks ({n_flagged})" in page) == (n_flagged > 0)
    stability_part = page[page.index("<h2>Stability across refits</h2>") :]
    assert "across 2 refits of both models on bootstrap samples" in stability_part
    assert "coefficient of variation exceeds 0.25, or its shape noise" in stability_part
    assert "exceeds 1: then the refits disagree" in stability_part
    rules_part = page[page.index("The black box as rules") :]
    rules_table = rules_part[: rules_part.index("</table>")]
    assert rules_table.count("<tr>") - 1 == len(tree.rules())
    for rule in tree.rules()["rule"]:
        assert html.escape(rule) in rules_table
    text = " ".join(parser.text)
    # the fidelity it opens with is the audit's own
    assert f"R^2 {audit.fidelity_['r2']:.3f}" in text
    # the headline counts the adjusted flags, with the raw count beside
    comparison = audit.compare()
    flagged = int(comparison["significant_bh"].sum())
    raw = int(comparison["significant"].sum())
    assert f"{flagged} of {len(comparison)} term values differ" in text
    assert f"({raw} before it" in text
    assert "main effects and interaction cells adjusted apart" in text
    # ... and the coarse blocks, a finding too, in the same opening line
    assert (
        f"On coarse blocks, {n_flagged} of {len(blocks)} blocks of 1 interaction differ after "
        f"the adjustment ({int(blocks['significant'].sum())} before it)." in text
    )
    # the calibration section says on what scale the effects are, and that it can shrink them
    calibration_part = page[page.index("<h2>Calibration of the score</h2>") :]
    assert "reads smaller than the score gives it" in calibration_part.split("</p>")[0]
    # the planted missing feature: the Pearson p-value is at the floor 2/51 and says so
    test = audit.missing_feature_test_
    assert test.loc["pearson", "p_value"] == pytest.approx(2 / 51)
    assert "<= 0.04" in text
    # the compact table of flagged values has the auditor's columns, the full one is hidden
    compact = page[page.index("Flagged values") :]
    header = re.findall(r"<th(?: class=\"text\")?>(.*?)</th>", compact[: compact.index("</thead>")])
    assert header == [
        "term", "value", "mimic", "outcome", "difference", "low", "high", "adjusted p", "rows"
    ]  # fmt: skip
    assert flagged > 0
    assert compact[: compact.index("</table>")].count("<tr>") - 1 == flagged
    assert "<details><summary>All" in page
    # one picture per drawn interaction, and the residuals, shapes and calibration
    assert len(parser.srcs) >= 4


def test_audit_settings_say_what_was_fitted_after_set_params(fitted_audit):
    import copy

    from sklearn_distill.report import audit_report_sections

    audit = copy.deepcopy(fitted_audit[0])  # the fixture is shared: change a copy

    def settings(audit):
        sections = audit_report_sections(audit, n_bootstrap=50)
        return next(s for s in sections if s.heading == "Audit settings").items

    fitted = settings(audit)
    # what the fitted models hold
    assert fitted["calibration of the score"] == "sigmoid"
    assert type(audit.mimic_.calibrator_).__name__ == "CalibratedClassifierCV"
    repeats = audit.crossfit_residuals_["mimic"].shape[0]
    assert fitted["three-way cross-fits (missing-feature test)"] == repeats
    assert fitted["calibration folds"] == 3 and fitted["random_state"] == "0"
    audit.set_params(calibration="isotonic", cv=5, n_crossfits=7, random_state=123)
    assert settings(audit) == fitted  # no refit: the same audit, the same settings


def test_each_difference_a_reader_would_quote_comes_with_its_interval(fitted_audit):
    # the compact tables gave a difference and its adjusted p-value alone: "women 0.32
    # log-odds higher" could not be quoted with what the data can tell apart
    from sklearn_distill.report import audit_report_sections

    audit = fitted_audit[0]
    comparison = audit.compare(interactions=True)
    blocks = audit.compare_interactions()
    sections = {s.heading: s for s in audit_report_sections(audit, n_bootstrap=50)}
    largest = sections["Largest differences"]
    assert "'low' and 'high' bound the difference's 95% interval" in largest.paragraphs[0]
    flagged = next(t for t in sections["Comparison table"].tables if t.heading.startswith("Flag"))
    tables = [*largest.tables, flagged]
    assert [t.heading for t in tables] == [
        "Main effects", "Interactions, cell by cell", "Interactions, coarse blocks",
        f"Flagged values ({int(comparison['significant_bh'].sum())})",
    ]  # fmt: skip
    for table in tables:
        frame = table.frame
        columns = list(frame.columns)
        assert columns[columns.index("difference") + 1 : columns.index("adjusted p")] == [
            "low",
            "high",
        ]
        source = blocks if "blocks" in table.heading else comparison
        for row in frame.itertuples():
            # the row of compare() (or of the blocks) it shows, by term, shapes and difference
            match = source[
                (source["term"] == row.term)
                & np.isclose(source["mimic"], row.mimic)
                & np.isclose(source["difference"], row.difference)
            ]
            assert len(match) == 1, (table.heading, row)
            assert row.low == pytest.approx(match["difference_lower"].iloc[0])
            assert row.high == pytest.approx(match["difference_upper"].iloc[0])
            assert row.low <= row.difference <= row.high


def test_settings_say_which_models_records_and_data_the_audit_fitted(fitted_audit):
    # the fixture's models are its own (32 bins, the outcome's learning rate 0.05): a report
    # that named neither read as the audit's defaults; the data digests fit kept were not shown
    from sklearn_distill._data import fingerprint
    from sklearn_distill.report import audit_report_sections

    audit, X, y, score = fitted_audit
    items = next(
        s for s in audit_report_sections(audit, n_bootstrap=50) if s.heading == "Audit settings"
    ).items
    mimic, outcome = items["mimic model"], items["outcome model"]
    assert mimic.startswith("ExplainableBoostingRegressor (passed as student): ")
    assert outcome.startswith("ExplainableBoostingClassifier (passed as outcome): ")
    assert "learning_rate=0.1," in mimic and "learning_rate=0.05," in outcome
    for text in (mimic, outcome):
        assert "max_bins=32" in text and "outer_bags=8" in text and "max_rounds=300" in text
        assert "n_jobs" not in text and "random_state" not in text
    assert items["records (groups)"].startswith("not given")
    digests = items["data digests (of the values fit read)"]
    for name, values in (("features", X), ("outcome (0/1)", y), ("score", score)):
        assert f"{name} {fingerprint(values)}" in digests
    assert "records " not in digests.split(" (BLAKE2b")[0]


def test_settings_of_an_audit_of_default_models_and_records():
    from sklearn_distill import CompareAudit
    from sklearn_distill._data import fingerprint
    from sklearn_distill.report import audit_report_sections

    rng = np.random.default_rng(4)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] - X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    records = np.repeat(np.arange(n // 3), 3)  # each record entered three times
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = CompareAudit(
            calibration="sigmoid", cv=2, n_crossfits=1, interactions=0, random_state=0,
            monotone_constraints={"a": 1},
        ).fit(X, y, teacher_scores=logit, groups=records)  # fmt: skip
        items = next(
            s for s in audit_report_sections(audit, n_bootstrap=20) if s.heading == "Audit settings"
        ).items
    assert items["mimic model"] == "the audit's default ExplainableBoostingRegressor"
    assert items["outcome model"] == "the audit's default ExplainableBoostingClassifier"
    assert items["monotone constraints"] == repr({"a": 1})
    assert items["records (groups)"].startswith(f"{n // 3} records over {n} rows: ")
    digests = items["data digests (of the values fit read)"]
    assert f"records {fingerprint(records)}" in digests


@pytest.mark.parametrize("kind", ["integer labels", "array"])
def test_audit_settings_name_features_and_pairs_as_the_tables_do(kind):
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    from sklearn_distill import CompareAudit
    from sklearn_distill.report import audit_report_sections

    rng = np.random.default_rng(3)
    n = 600
    values = rng.normal(size=(n, 3))
    X = pd.DataFrame(values, columns=[10, 20, 30]) if kind == "integer labels" else values
    logit = values[:, 0] - values[:, 1]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pair = (10, 30) if kind == "integer labels" else (0, 2)
    small = dict(outer_bags=2, max_rounds=100, max_bins=16, max_interaction_bins=8)
    audit = CompareAudit(
        calibration="sigmoid", cv=2, n_crossfits=1, random_state=0, interactions=[pair],
        student=ExplainableBoostingRegressor(**small),
        outcome=ExplainableBoostingClassifier(**small),
    )  # fmt: skip
    audit.fit(X, y, teacher_scores=logit + 0.3 * values[:, 2])
    # what interactions= takes back: the frame's labels as given, an array's positions
    assert audit.interaction_pairs_ == [pair]
    terms = set(audit.compare()["term"])
    items = next(
        s for s in audit_report_sections(audit, n_bootstrap=20) if s.heading == "Audit settings"
    ).items
    names = items["features"].split(", ")
    assert set(names) <= terms  # every feature by the name its rows have in the tables
    shown = items["interaction pairs"].split(": ")[1]
    assert shown in terms  # "10 & 30", "feature_0000 & feature_0002"


def test_too_few_resamples_to_reach_the_level_are_said_so_not_read_as_nothing_found(
    fitted_audit,
):
    import copy

    from sklearn_distill.report import audit_findings_text

    audit = copy.deepcopy(fitted_audit[0])  # the fixture is shared: change a copy
    # 30 resamples: no p-value below 2 / 31 = 0.065, above 1 - 0.95
    with pytest.warns(UserWarning, match=r"n_bootstrap=30 resamples cannot give a p-value below"):
        test = audit.missing_feature_test(n_bootstrap=30)
    assert test.loc["pearson", "p_value"] >= 2 / 31
    text = audit_findings_text(audit, width=1000)
    assert "The test could not decide at this level" in text
    assert "Run it with at least 40 resamples" in text
    # with the setting that gives them, in both the API's and the command line's words
    assert "resamples (n_bootstrap; on the command line --n-bootstrap)." in text
    assert "No positive correlation" not in text
    # 39 give 2 / 40 = 0.05, not below the level either; 40 do, without a warning
    with pytest.warns(UserWarning, match="Use at least 40 resamples"):
        audit.missing_feature_test(n_bootstrap=39)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        audit.missing_feature_test(n_bootstrap=40)


def test_findings_text_says_what_the_report_says(fitted_audit):
    from sklearn_distill.report import audit_findings_text

    audit = fitted_audit[0]
    text = audit_findings_text(audit, width=1000)
    comparison = audit.compare()
    assert f"{int(comparison['significant_bh'].sum())} of {len(comparison)} term values" in text
    assert "Terms unstable across refits" in text
    assert "Caveats:" in text and "interaction" in text
    # the interactions are also compared on coarse blocks, and the findings say how that went
    blocks = audit.compare_interactions()
    flagged = blocks[blocks["significant_bh"]]
    for term, part in flagged.groupby("term"):
        total = int((blocks["term"] == term).sum())
        assert f"{term}, on coarse blocks: {len(part)} of {total} blocks differ" in text
    if flagged.empty:
        assert f"No interaction block differs after the adjustment ({len(blocks)} blocks" in text


def test_plot_interaction_draws_blocks_by_their_labels_in_block_order():
    blocks = pd.DataFrame(
        {
            "term": "a & b",
            "block": [(1, 0), (0, 0), (0, 1), (1, 1)],
            "label": [("[1, 2]", "x"), ("[0, 1)", "x"), ("[0, 1)", "y"), ("[1, 2]", "y")],
            "mimic": [0.2, 0.1, 0.0, -0.1],
            "outcome": 0.0,
            "difference": [0.2, 0.1, 0.0, -0.1],
            "significant_bh": [True, False, False, False],
        }
    )
    # the first block listed lacks (0, 0): the axes still follow the block indices
    gappy = pd.DataFrame(
        {
            "term": "a & b",
            "block": [(0, 1), (1, 0), (1, 1)],
            "label": [("[0, 1)", "y"), ("[1, 2]", "x"), ("[1, 2]", "y")],
            "mimic": [0.3, 0.2, -0.1],
            "outcome": 0.0,
            "difference": [0.3, 0.2, -0.1],
            "significant_bh": False,
        }
    )
    ax = plot_interaction(gappy, "a & b").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    np.testing.assert_allclose(ax.get_images()[0].get_array(), [[np.nan, 0.2], [0.3, -0.1]])
    axes = plot_interaction(blocks, "a & b").axes
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["[0, 1)", "[1, 2]"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["x", "y"]
    grid = axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(grid, [[0.1, 0.2], [0.0, -0.1]])  # rows: b; columns: a
    dots = axes[2].get_lines()[0]
    assert list(dots.get_xdata()) == [1] and list(dots.get_ydata()) == [0]


def test_block_findings_name_the_flagged_blocks_or_what_the_blocks_could_see():
    from sklearn_distill.report import _block_texts

    blocks = pd.DataFrame(
        {
            "term": ["a & b"] * 3 + ["a & c"],
            "features": [("a", "b")] * 3 + [("a", "c")],
            "label": [("[0, 1)", "x"), ("[1, 2]", "x"), ("[1, 2]", "y"), ("[0, 1)", "p")],
            "mimic": [0.1, 0.0, -0.2, 0.0],
            "outcome": [0.9, 0.1, -0.1, 0.05],
            "difference": [-0.8, -0.1, -0.1, -0.05],
            "difference_upper": [-0.5, 0.2, 0.3, 0.35],
            "z": [-5.0, -0.6, -0.5, -0.2],
            "p_value": [0.0002, 0.5, 0.5, 0.8],
            "p_value_bh": [0.001, 0.6, 0.6, 0.9],
            "significant": [True, False, False, False],
            "significant_bh": [True, False, False, False],
            "testable": True,
            "weight": [400.0, 380.0, 390.0, 800.0],
        }
    )
    (line,) = _block_texts(blocks)
    assert line.startswith(
        "a & b, on coarse blocks: 1 of 3 blocks differs after the adjustment (1 before it); "
        "the largest, "
    )
    assert "a [0, 1), b x: mimic 0.100, outcome 0.900 (adjusted p 0.001, 400 rows)" in line
    # two flagged blocks: the one of largest difference is named, as summary() names it,
    # though the other is the clearer (larger z)
    two = blocks.assign(
        difference=[-0.8, 0.9, -0.1, -0.05], z=[-5.0, 3.0, -0.5, -0.2],
        significant_bh=[True, True, False, False], significant=[True, True, False, False],
    )  # fmt: skip
    (line,) = _block_texts(two)
    assert "2 of 3 blocks differ" in line and "the largest, a [1, 2], b x" in line
    # significant alone but not after the adjustment: said, with what it means
    quiet = blocks.assign(significant_bh=False, p_value_bh=0.07)
    (line,) = _block_texts(quiet)
    assert line.startswith("No interaction block differs after the adjustment (4 blocks of 2")
    assert "median 395 rows per block; 1 differed before it, in a & b)" in line
    assert (
        "The clearest difference (largest standardised), a & b at a [0, 1), b x: mimic 0.100, "
        "outcome 0.900 " in line
    )
    assert "(p < 0.001, adjusted 0.070): significant alone" in line
    calm = quiet.assign(significant=False)
    (line,) = _block_texts(calm)
    assert "none differed even before it" in line and "significant alone" not in line
    assert _block_texts(None) == [] and _block_texts(blocks.iloc[:0]) == []
    (line,) = _block_texts(calm.assign(testable=False))
    assert line == (
        "No interaction block could be tested: each of the 4 blocks holds fewer rows than "
        "min_weight (median 395)."
    )


def test_a_stability_table_of_an_earlier_version_is_described_by_its_own_rule():
    from types import SimpleNamespace

    from sklearn_distill.report import _stability_paragraph

    old = SimpleNamespace(stability_settings_={"n_refits": 3, "bootstrap": True, "threshold": 0.25})
    text = _stability_paragraph(old)
    assert "computed by an earlier version" in text
    assert "exceeded 0.25, or when its importance rank changed" in text
    assert "shape noise (the spread" not in text
    assert "earlier version" in _stability_paragraph(SimpleNamespace())
    new = SimpleNamespace(stability_settings_={**old.stability_settings_, "shape_threshold": 1.0})
    assert "exceeds 0.25, or its shape noise" in _stability_paragraph(new)


def test_the_settings_say_what_the_stability_refits_resampled_as_the_paragraph_does():
    # whole records (groups), rows one by one although fit had records, rows, or no
    # resampling: the settings line tells them apart, in the stability paragraph's words
    from types import SimpleNamespace

    from sklearn_distill.report import _reproduction_settings, _stability_paragraph

    test = pd.DataFrame({"n_bootstrap": [50]})
    expected = {
        (True, "records"): "bootstrap samples of whole records (groups)",
        (True, "rows apart from their records"): "bootstrap samples of the rows one by one",
        (True, "rows"): "bootstrap samples of the rows",
        (False, "rows"): "the same rows",
    }
    lines = set()
    for (bootstrap, resampled), samples in expected.items():
        done = {"n_refits": 3, "bootstrap": bootstrap, "threshold": 0.25, "shape_threshold": 1.0}
        audit = SimpleNamespace(
            random_state=0,
            min_weight=10,
            interaction_pairs_=[],
            stability_settings_={**done, "resampled": resampled},
        )
        line = _reproduction_settings(audit, test)["stability refits"]
        assert line.startswith(f"3 ({samples}")
        assert f"refits of both models on {samples}, with new seeds" in _stability_paragraph(audit)
        lines.add(line)
    assert len(lines) == len(expected)


def test_calibration_scale_is_explained_only_for_a_calibrated_score():
    from types import SimpleNamespace

    from sklearn_distill.report import _calibration_scale_text

    assert _calibration_scale_text(SimpleNamespace(calibration=None)) == ""
    for calibration in ("isotonic", "spline", "sigmoid", "temperature"):
        text = _calibration_scale_text(SimpleNamespace(calibration=calibration))
        assert "log-odds of the outcome event as the score predicts it" in text


def test_printed_findings_list_flagged_blocks_beside_flagged_values(fitted_audit, monkeypatch):
    from sklearn_distill import report
    from sklearn_distill.__main__ import _findings_text

    audit = fitted_audit[0]
    blocks = audit.compare_interactions()
    # the command line's tables: flagged blocks listed by the same rule as flagged values
    flagged = blocks.assign(
        significant_bh=[i < 2 for i in range(len(blocks))],
        z=np.linspace(1.0, 3.0, len(blocks)),
        p_value_bh=0.01,
    )
    monkeypatch.setattr(report, "_block_comparison", lambda audit: flagged)
    text = _findings_text(audit, audit.missing_feature_test_, audit.compare())
    table = text[
        text.index("Flagged interaction blocks with the largest standardised differences") :
    ]
    lines = table.splitlines()[2:]
    assert len(lines) == 2  # the two flagged blocks, the clearer (larger |z|) first
    for line, row in zip(lines, flagged.iloc[[1, 0]].itertuples()):
        assert line.split()[0] == row.term.split()[0]
        assert " x ".join(map(str, row.label)) in line
        assert f"{row.difference:.3f}".rstrip("0") in line
    assert "On coarse blocks, 2 of" in " ".join(text.split())
    monkeypatch.setattr(
        report, "_block_comparison", lambda audit: flagged.assign(significant_bh=False)
    )
    assert "Flagged interaction blocks" not in _findings_text(
        audit, audit.missing_feature_test_, audit.compare()
    )


def test_findings_name_the_largest_differences_when_nothing_is_flagged():
    from types import SimpleNamespace

    from sklearn_distill.report import audit_findings_text

    comparison = _comparison().assign(
        kind="main", label=lambda f: f["value"].astype(str), z=lambda f: 10 * f["difference"],
        p_value=0.01, p_value_bh=0.2, significant=False, significant_bh=False, testable=True,
    )  # fmt: skip
    test = bootstrap_correlations(np.arange(50.0), np.arange(50.0) ** 2, n_bootstrap=20)
    audit = SimpleNamespace(
        compare=lambda: comparison,
        missing_feature_test_=test,
        fidelity_={"r2": 0.8, "rmse": 0.3},
        confidence=0.95,
        outcome_=SimpleNamespace(term_features_=[(0,), (1,)]),
    )
    text = " ".join(audit_findings_text(audit).split())
    assert f"0 of {len(comparison)} term values differ" in text
    largest = comparison.loc[comparison["z"].abs().nlargest(3).index]
    for row in largest.itertuples():
        assert f"{row.term} {row.label}: mimic {row.mimic:.3f}" in text
    assert text.count("not flagged, the largest") == 3
    assert "main effects only" in text  # the caveat fits models without interactions


def test_report_arguments_are_checked_before_any_work(fitted_audit, tmp_path):
    import copy

    audit = copy.deepcopy(fitted_audit[0])
    _, X, y, score = fitted_audit
    # rules printed as the audit's calibrated score on its rows must be that
    few_rows = DistilledTree(calibration="sigmoid", max_leaf_nodes=4, random_state=0)
    few_rows.fit(X[:100], y[:100], teacher_scores=score[:100])
    raw = DistilledTree(max_leaf_nodes=4, random_state=0).fit(X, teacher_scores=score)
    relabelled = copy.deepcopy(raw).set_params(calibration="sigmoid")  # fitted uncalibrated
    del audit.missing_feature_test_  # the report would run the test: it must not get there
    (tmp_path / "dir.html").mkdir()
    cases = [
        ({"path": tmp_path / "dir.html"}, ValueError, r"path must be a file path; got .*directory"),
        (
            {"path": tmp_path / "absent" / "r.html"},
            ValueError,
            r"path must be in an existing directory; got .*absent",
        ),
        ({"path": 3}, TypeError, r"path must be a str or os\.PathLike; got 3\."),
        (
            {"description": ["x"]},
            TypeError,
            r"description must be a dict of \{label: value\} lines, or None; got \['x'\]\.",
        ),
        (
            {"rule_tree": audit.mimic_},
            TypeError,
            r"rule_tree must be a fitted DistilledTree \(a model with rules\(\)\), or None; got "
            r"DistilledGAM\(",
        ),
        ({"rule_fidelity": {"rmse": 1.0}}, TypeError, r"rule_fidelity must be a dict with an 'r2'"),
        (
            {"rule_tree": few_rows},
            ValueError,
            rf"rule_tree must be a tree fitted on the audit's {len(y)} rows; got 'one of 100 rows'",
        ),
        (
            {"rule_tree": relabelled},
            ValueError,
            r"rule_tree must be a tree of the score calibrated as the audit's mimic",
        ),
        (
            {"rule_tree": raw},
            ValueError,
            r"rule_tree must be a tree of the score calibrated as the audit's mimic "
            r"\(calibration='sigmoid'\); got 'calibration=None'",
        ),
        ({"n_bootstrap": 5}, ValueError, r"n_bootstrap must be an integer >= 20; got 5\."),
        ({"title": None}, TypeError, r"title must be a str; got None\."),
    ]
    for kwargs, error, match in cases:
        kwargs = {"path": tmp_path / "r.html", **kwargs}
        with pytest.raises(error, match=match):
            audit.report(**kwargs)
        assert not hasattr(audit, "missing_feature_test_")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.html"]


def test_plot_arguments_are_checked():
    frame = _comparison()
    with pytest.raises(TypeError, match=r"comparison must be a pandas DataFrame .*; got a dict\."):
        plot_comparison({"a": 1})
    with pytest.raises(TypeError, match=r"comparison must be a pandas DataFrame"):
        plot_interaction({"a": 1}, "a & b")
    with pytest.raises(
        ValueError, match=r"comparison must have the columns .*without 'mimic_lower'"
    ):
        plot_term(frame.drop(columns="mimic_lower"), "age")
    with pytest.raises(ValueError, match=r"without 'significant_bh or significant'"):
        plot_comparison(frame.drop(columns="significant"))
    with pytest.raises(ValueError, match=r"ncols must be an integer >= 1; got 0\."):
        plot_comparison(frame, ncols=0)
    with pytest.raises(
        ValueError, match=r"tail_quantile must be a finite number > 0 and <= 1; got 2"
    ):
        plot_comparison(frame, tail_quantile=2)
    with pytest.raises(ValueError, match=r"max_categories must be an integer >= 1; got 0\."):
        plot_term(frame, "age", max_categories=0)
    # a single term may be named as a string
    assert [ax.get_title() for ax in plot_comparison(frame, "age").axes] == ["age"]


def test_long_feature_names_stay_inside_their_panels():
    # a long name ran past its panel's title into the next panel
    from sklearn_distill.plotting import _TITLE_WIDTH, _panel_title

    long = "a very long feature name about where the person lives, by region of the country"
    frame = _comparison().replace({"term": {"age": long}})
    titles = [ax.get_title() for ax in plot_comparison(frame).axes if ax.get_title()]
    (title,) = [t for t in titles if t.startswith("a very long")]
    lines = title.split("\n")
    assert len(lines) == 2 and all(len(line) <= _TITLE_WIDTH for line in lines)
    assert lines[1].endswith("\u2026")  # shortened beyond two lines
    assert _panel_title("age") == "age"
    assert _panel_title("x" * 50).split("\n") == ["x" * _TITLE_WIDTH, "x" * 12]


def test_report_names_the_event_and_shows_the_callers_notes_and_rows(fitted_audit, tmp_path):
    from sklearn_distill.report import _calibration_figure

    audit = fitted_audit[0]
    rows = f"{len(audit.mimic_residuals_)} (12 dropped: missing score or label)"
    note = "12 of 812 rows were left out: their score or label is missing."
    path = write_audit_report(
        audit,
        tmp_path / "event.html",
        description={"rows": rows, "data": "a.csv"},
        event="repaid",
        data_notes=[note],
    )
    page = open(path, encoding="utf-8").read()
    # a caller's line replaces the report's own, in its place
    settings = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page)
    keys = [key for key, _ in settings]
    assert keys.count("rows") == 1 and keys[0] == "rows" and dict(settings)["rows"] == rows
    assert dict(settings)["outcome event"] == "repaid"
    # the score rises with the outcome here: the calibration read it so, and the report says it
    assert dict(settings)["score read as"].startswith("rising as the outcome event")
    findings = page[page.index("What the audit found") : page.index("Largest differences")]
    bullets = re.findall(r"<li>(.*?)</li>", findings)
    assert bullets[0] == note
    ylabel = _calibration_figure(audit, "repaid").axes[0].get_ylabel()
    assert ylabel == "P(outcome = repaid)"
    # the shapes' caption says whose log-odds they are
    assert "to the log-odds of the outcome event (repaid)" in page
    with pytest.raises(TypeError, match=r"data_notes must be a list of str, or None; got 'x'"):
        write_audit_report(audit, tmp_path / "bad.html", data_notes="x")


#: Elements that reach past the right edge of the window (tables scroll inside their own boxes
#: and are left out).
_OVERFLOWING = """
      for (const el of document.querySelectorAll('body *')) {
        if (el.getBoundingClientRect().right > w + 1 && !el.closest('.scroll'))
          out.push(el.tagName + ':' + (el.textContent || '').slice(0, 40));
      }"""


def _overflowing_at(page, width, tmp_path, check=_OVERFLOWING):
    """Elements of ``page`` that reach past the right edge of a ``width``-pixel window (tables
    scroll inside their own boxes and are left out), as headless Chromium lays them out; None
    when no Chromium can be run. ``check`` is the script that finds them: it reads the window's
    width ``w`` and pushes a line per element found onto ``out``."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    tmp_path.mkdir(parents=True, exist_ok=True)
    probe = (
        """<script>
    window.addEventListener('load', () => setTimeout(() => {
      const w = document.documentElement.clientWidth, out = [];"""
        + check
        + """
      const pre = document.createElement('pre'); pre.id = 'probe';
      pre.textContent = 'width=' + w + ' scroll=' + document.documentElement.scrollWidth
        + '\\n' + out.join('\\n');
      document.body.appendChild(pre);
    }, 300));</script>"""
    )
    (tmp_path / "page.html").write_text(page.replace("</body>", probe + "</body>"), "utf-8")
    # headless windows are at least ~485 px wide: a frame of the width wanted lays the page out
    (tmp_path / "frame.html").write_text(
        f'<iframe id="f" src="page.html" style="width:{width}px;height:3000px;border:0">'
        "</iframe><pre id='out'></pre><script>const read = () => { const probe = document"
        ".getElementById('f').contentDocument.getElementById('probe'); if (probe) document"
        ".getElementById('out').textContent = probe.textContent; else setTimeout(read, 50); };"
        "document.getElementById('f').onload = read;</script>",
        "utf-8",
    )
    command = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=800,900", "--virtual-time-budget=5000", "--dump-dom",
        (tmp_path / "frame.html").as_uri(),
    ]  # fmt: skip
    try:
        dom = subprocess.run(command, capture_output=True, text=True, timeout=90).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"<pre id=\"out\">width=(\d+) scroll=(\d+)\n?(.*?)</pre>", dom, re.S)
    if found is None:
        return None
    assert int(found[1]) == width
    return [line for line in html.unescape(found[3]).splitlines() if line]


def test_settings_and_text_fit_a_phone_screen(tmp_path):
    # long values (a data path, a feature list) used to push the settings' values off-screen
    long_path = "/srv/exports/" + "credit_scoring_department_quarterly_" * 3 + "export.csv"
    features = ", ".join(f"feature_number_{i}" for i in range(12))
    sections = [
        Section("Findings", paragraphs=["see " + long_path], bullets=[long_path]),
        Section("Wide table", table=pd.DataFrame({f"column {i}": [1.5] for i in range(30)})),
        Section(
            "Audit settings",
            items={
                "rows": "784 (16 dropped: missing score or label)",
                "three-way cross-fits (missing-feature test)": 3,
                "features": features,
                "data": long_path,
            },
        ),
    ]
    page = render_html("Audit", sections)
    for width in (390, 1366):
        overflowing = _overflowing_at(page, width, tmp_path / str(width))
        if overflowing is None:
            pytest.skip("no headless Chromium to lay the page out")
        assert overflowing == [], f"at {width} px: {overflowing}"


def test_numbers_in_tables_are_never_broken_across_lines(tmp_path):
    # "-2.0e-04" beside a long term broke after its "e-": "-2.0e-" on one line, "04" on the
    # next, which reads as another number
    term = "number_of_prior_convictions_before_screening_date_in_county_records & sex"
    frame = pd.DataFrame(
        {
            "term": [term, "age"],
            "value": ["Male x 8", "29"],
            "mimic": [-2.0e-4, 0.048],
            "outcome": [0.103, -6.5e-5],
            "difference": [-0.103, 1.5e-5],
            "adjusted p": [1.0, 0.5],
            "rows": [13, 61],
            "flagged": [False, False],
            "weight": [1.25e7, -3.5e-6],
        }
    )
    page = render_html("Audit", [Section("Largest differences", table=frame)])
    # a number cell whose text lays out on more than one line
    broken = """
      for (const td of document.querySelectorAll('td:not(.text)')) {
        const range = document.createRange(); range.selectNodeContents(td);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) out.push(td.textContent);
      }"""
    for width in (390, 1280):
        wrapped = _overflowing_at(page, width, tmp_path / str(width), check=broken)
        if wrapped is None:
            pytest.skip("no headless Chromium to lay the page out")
        assert wrapped == [], f"at {width} px: {wrapped}"


def test_command_line_options_are_never_broken_across_lines(tmp_path):
    # a wrapped line broke an option at its hyphens, "--n-" over "bootstrap" (420 px) and "--"
    # over "calibration spline" (1280 px): neither reads as the option, nor can be typed back
    import json

    options = ["--n-bootstrap", "--calibration spline", "--min-weight 10", "--na-values=-99"]
    options += ["--sep ';'", "--max-bins N"]
    texts = [
        f"{'word ' * k}{'abc' * (k % 3)} run it again ({options[k % len(options)]}) and see."
        for k in range(90)
    ]
    sections = [
        Section("Findings", paragraphs=texts[:30], bullets=texts[30:60], verdict=texts[0]),
        Section("Audit settings", items={text: text for text in texts[60:]}),
    ]
    page = render_html("Audit", sections)
    # the page is taller than the frame: no scroll bar, so that the lines are the width's
    framed = page.replace("</style>", "html { overflow-y: hidden; }</style>", 1)
    # the page's text holds each option as written, plain ASCII hyphens (copied, it runs)
    shown = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert all(option in shown for option in options)
    # an option whose characters lay out on more than one line (its text found in the text of
    # each paragraph, item and term, across whatever elements hold it)
    split = (
        """
      const options = """
        + json.dumps(options)
        + """;
      for (const el of document.querySelectorAll('p, li, dt, dd')) {
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT), nodes = [];
        let text = '';
        while (walker.nextNode()) {
          nodes.push([walker.currentNode, text.length]); text += walker.currentNode.data;
        }
        const at = (i) => {
          const [node, start] = nodes.filter(([, s]) => s <= i).pop();
          return [node, i - start];
        };
        for (const option of options) {
          for (let i = text.indexOf(option); i >= 0; i = text.indexOf(option, i + 1)) {
            const range = document.createRange();
            range.setStart(...at(i)); range.setEnd(...at(i + option.length - 1));
            range.setEnd(range.endContainer, range.endOffset + 1);
            const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
              .map(r => Math.round(r.top)));
            if (tops.size > 1) out.push(option + ' in ' + el.tagName);
          }
        }
      }"""
    )
    for width in (420, 1280):
        broken = _overflowing_at(framed, width, tmp_path / str(width), check=split)
        if broken is None:
            pytest.skip("no headless Chromium to lay the page out")
        assert broken == [], f"at {width} px: {broken}"


def test_a_table_or_figure_that_scrolls_sideways_says_so_and_only_then(tmp_path):
    # on a phone the eight-column "Largest differences" tables ran past their box with no
    # hint (a wide figure had one), so the adjusted p, rows and flag columns went unseen
    frame = pd.DataFrame(
        {
            "term": ["c_charge_desc", "priors_count"],
            "value": ["Possession of Cocaine", "0"],
            "mimic": [-0.072, -0.303],
            "outcome": [-0.462, -0.741],
            "difference": [0.390, 0.438],
            "adjusted p": [0.0005, 0.005],
            "rows": [2965, 1834],
            "flagged": [True, True],
        }
    )
    narrow_figure = Figure(figsize=(3, 2))
    narrow_figure.add_subplot().plot([0, 1])
    wide_figure = Figure(figsize=(12, 3))
    wide_figure.add_subplot().plot([0, 1])
    sections = [
        Section("Largest differences", table=frame),
        Section("Small", table=pd.DataFrame({"estimate": [0.095]}), figures=[narrow_figure]),
        Section("All", table=pd.DataFrame({f"column {i}": [-0.123] for i in range(40)})),
        Section("Shapes", figures=[wide_figure]),
    ]
    page = render_html("Audit", sections, digits=3)
    # per box that can scroll sideways: whether it does, and whether its hint is shown
    hints = """
      for (const el of document.querySelectorAll('.scroll, p.figure')) {
        const hint = getComputedStyle(el, '::before');
        const shown = hint.content.includes('scroll sideways') && hint.visibility === 'visible'
          && parseFloat(hint.height) > 0;
        out.push(el.scrollWidth > el.clientWidth + 1 ? 'overflows' : 'fits');
        out.push(shown ? 'overflows' : 'fits');
      }"""
    for width in (420, 1280):
        found = _overflowing_at(page, width, tmp_path / str(width), check=hints)
        if found is None:
            pytest.skip("no headless Chromium to lay the page out")
        overflows, hinted = found[0::2], found[1::2]
        assert hinted == overflows, f"at {width} px"
        # (table, table, figure, table, figure): the 40 columns never fit, the rest only wide
        expected = ["overflows", "fits", "fits", "overflows", "overflows"]
        assert overflows == (expected if width == 420 else ["fits"] * 3 + ["overflows", "fits"])


def test_agreement_is_read_as_saying_little_when_every_row_is_on_one_side():
    from sklearn_distill.report import _fidelity_paragraphs

    balanced = " ".join(
        _fidelity_paragraphs({"r2": 0.8, "rmse": 0.3, "agreement": 0.9, "auc": 0.95})
    )
    rare = " ".join(
        _fidelity_paragraphs({"r2": 0.7, "rmse": 0.4, "agreement": 1.0, "auc": float("nan")})
    )
    assert "says little" not in balanced and "AUC 0.950" in balanced
    assert "on 100.0% of rows (the calibrated score puts every row on one side of 0.5" in rare


def test_a_report_is_written_whole_or_not_at_all(tmp_path):
    import os
    import stat

    from sklearn_distill.report import Section, write_html

    path = tmp_path / "audit.html"
    write_html(path, "Audit", [Section("Notes", paragraphs=["first"])])
    path.chmod(0o640)
    before = path.read_bytes()
    # text UTF-8 cannot encode (a lone surrogate) fails the write part way: the report that
    # was there stays, and no partial file is left beside it
    with pytest.raises(UnicodeEncodeError):
        write_html(path, "Audit", [Section("Notes", paragraphs=["second \ud800"])])
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["audit.html"]
    # a new report replaces it, keeping its permissions; through a link, its target
    link = tmp_path / "latest.html"
    link.symlink_to(path)
    write_html(link, "Audit", [Section("Notes", paragraphs=["third"])])
    assert link.is_symlink() and "third" in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["audit.html", "latest.html"]
    # a report made read-only is not replaced (root may write anywhere: checked where it may not)
    path.chmod(0o440)
    if not os.access(path, os.W_OK):
        with pytest.raises(PermissionError):
            write_html(path, "Audit", [Section("Notes", paragraphs=["fourth"])])
        assert "third" in path.read_text(encoding="utf-8")


def test_fidelity_text_says_100_percent_and_its_wording_as_printed():
    from sklearn_distill.report import _fidelity_paragraphs, _percent

    assert [_percent(v) for v in (1.0, 0.9996, 0.5, 0.0004, 0.0)] == [
        "100.0%",
        ">99.9%",
        "50.0%",
        "<0.1%",
        "0.0%",
    ]
    # 5 rows of 12,000 on the other side of 0.5 are not "100.0%" of rows
    text = " ".join(_fidelity_paragraphs({"r2": 0.8996, "rmse": 0.3, "agreement": 1 - 5 / 12000}))
    assert "on >99.9% of rows" in text and "100.0%" not in text
    # the R^2 printed as 0.900 is described as the threshold 0.9 says, not below it
    assert "reproduces the black box closely (R^2 0.900)" in text
    below = " ".join(_fidelity_paragraphs({"r2": 0.8994, "rmse": 0.3}))
    assert "reproduces most of the black box (R^2 0.899)" in below


def test_rules_section_says_why_there_are_more_rules_than_leaves():
    from sklearn_distill.report import _rules_section

    rng = np.random.default_rng(0)
    n = 800
    a = np.where(rng.uniform(size=n) < 0.2, np.nan, rng.normal(size=n))
    X = pd.DataFrame({"a": a, "b": rng.normal(size=n)})
    tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(X, np.nan_to_num(a) + X["b"])
    rules = tree.rules()
    leaves = rules["leaf"].nunique()
    assert leaves == 4 and len(rules) > leaves  # a leaf that tests "a" holds rows missing it
    text = _rules_section(tree, None).paragraphs[0]
    assert f"read as {len(rules)} rules" in text
    assert f"the {leaves} leaves make {len(rules)} rules" in text


def test_figures_stay_legible_on_a_narrow_screen():
    # on a phone a wide figure keeps up to 720 px and scrolls sideways, not a thumbnail
    fig = Figure(figsize=(12, 3))
    fig.add_subplot().plot([0, 1])
    page = render_html("t", [Section("s", figures=[fig])])
    assert '<p class="figure"><img alt=' in page
    narrow = page[page.index("@media (max-width: 600px)") :]
    narrow = narrow[: narrow.index("\n}")]
    assert "p.figure { overflow-x: auto; }" in narrow and "max-width: 720px" in narrow


def _rare_extremes():
    """A long-tailed income: shapes within +-1, a few rows at both ends with very wide bands,
    and the outcome curve leaving the others' bands at the rare top values (as COMPAS's age
    at 71-77)."""
    values = np.arange(20.0)
    shape = np.linspace(0.8, -0.8, 20)
    frame = pd.DataFrame({"term": "income", "value": 1000 * values, "mimic": shape})
    frame["outcome"] = shape + 0.1
    frame.loc[17, "outcome"] = -1.6  # a rare value's estimate: drawn, so in view
    half = np.full(20, 0.15)
    half[[0, 17, 18]] = [9.0, 12.0, 11.0]  # rare values: intervals of +-10 log-odds
    for key in ("mimic", "outcome"):
        frame[f"{key}_lower"] = frame[key] - (half if key == "outcome" else 0.15)
        frame[f"{key}_upper"] = frame[key] + (half if key == "outcome" else 0.15)
    frame["difference"] = frame["mimic"] - frame["outcome"]
    frame["significant"] = False
    frame["weight"] = np.where(np.isin(np.arange(20), [0, 17, 18]), 3.0, 200.0)
    return frame


@pytest.mark.parametrize("categorical", [False, True])
def test_the_y_axis_holds_every_curve_point_and_marks_each_clipped_band(categorical):
    frame = _rare_extremes()
    if categorical:
        frame["value"] = [f"level {i}" for i in range(20)]
    ax = plot_term(frame, "income", tail_quantile=None, max_categories=20).axes[0]
    low, high = ax.get_ylim()
    curves = frame[["mimic", "outcome"]].to_numpy(float)
    assert low <= curves.min() and curves.max() <= high
    # the shapes are not flattened by the +-10 bands: the axis spans a few curve ranges
    assert high - low < 3 * (curves.max() - curves.min())
    # every band that reaches beyond the axis has its mark at that edge, in its colour
    marks = [line for line in ax.get_lines() if line.get_gid() == CLIPPED_GID]
    above = sorted(frame.index[frame["outcome_upper"] > high])
    below = sorted(frame.index[frame["outcome_lower"] < low])
    assert above and below
    top = [m for m in marks if m.get_marker() == "^"]
    bottom = [m for m in marks if m.get_marker() == "v"]
    assert sum(len(m.get_xdata()) for m in top) == len(above)
    assert sum(len(m.get_xdata()) for m in bottom) == len(below)
    assert all(np.allclose(m.get_ydata(), high) for m in top)
    assert all(np.allclose(m.get_ydata(), low) for m in bottom)
    assert {m.get_color() for m in marks} == {OUTCOME_COLOR}
    assert "band runs beyond the axis" in ax.get_xlabel()
    # the mimic's narrow bands are whole
    assert frame["mimic_lower"].min() >= low and frame["mimic_upper"].max() <= high


def test_the_comparison_legend_names_the_clipped_band_mark_only_when_one_is_drawn():
    def legend_texts(fig):
        legends = list(fig.legends) + [lg for sub in fig.subfigs for lg in sub.legends]
        return [t.get_text() for lg in legends for t in lg.get_texts()]

    clipped = legend_texts(plot_comparison(_rare_extremes(), tail_quantile=None))
    assert "band clipped at the axis (wider than shown)" in clipped
    whole = legend_texts(plot_comparison(_comparison()))
    assert not any("clipped" in text for text in whole)


def test_a_band_slightly_wider_than_the_rest_is_not_clipped():
    frame = _long_tailed(np.ones(41))
    frame.loc[20, "outcome_lower"] -= 0.3  # a little wider than the others: drawn whole
    ax = plot_term(frame, "priors", tail_quantile=None).axes[0]
    low, high = ax.get_ylim()
    assert low <= frame["outcome_lower"].min() and frame["outcome_upper"].max() <= high
    assert not [line for line in ax.get_lines() if line.get_gid() == CLIPPED_GID]


@pytest.mark.parametrize(
    "value, text",
    [(-0.000612, "-0.001"), (0.00039, "3.9e-04"), (0.000473, "4.7e-04"), (0.1234, "0.123"),
     (-2.0, "-2.000"), (0.0, "0.000"), (-4e-5, "-4.0e-05")],
)  # fmt: skip
def test_table_numbers_have_three_decimals_or_read_as_scientific_when_they_would_be_zero(
    value, text
):
    assert format_number(value) == text
    cell = re.search(r"<td>([^<]*)</td>", table_to_html(pd.DataFrame({"x": [value]}), index=False))
    assert cell.group(1) == text


def test_values_the_cut_axis_still_shows_count_for_its_y_limits():
    # the x axis runs a little past the tail cut: a value drawn in that margin (here a jump
    # of the curves right after the cut) must be inside the y axis too
    values = np.arange(0.0, 101.0)
    curve = np.where(values > 60, -3.0, 0.01 * values)
    frame = pd.DataFrame({"term": "age", "value": values, "significant": False})
    frame["weight"] = np.where(values <= 60, 99.0, 0.01)
    for key in ("mimic", "outcome"):
        frame[key], frame[f"{key}_lower"], frame[f"{key}_upper"] = curve, curve - 0.1, curve + 0.1
    frame["difference"] = 0.0
    ax = plot_term(frame, "age").axes[0]
    right = ax.get_xlim()[1]
    shown = frame[frame["value"] <= right]
    assert right < 100 and shown["value"].max() > 60  # the margin holds a value past the cut
    low, high = ax.get_ylim()
    assert low <= shown[["mimic", "outcome"]].to_numpy().min()
    assert shown[["mimic", "outcome"]].to_numpy().max() <= high
    # an infinite band end reaches beyond any axis: marked as clipped
    frame = _long_tailed(np.ones(41))
    frame.loc[5, "outcome_upper"] = np.inf
    ax = plot_term(frame, "priors", tail_quantile=None).axes[0]
    marks = [line for line in ax.get_lines() if line.get_gid() == CLIPPED_GID]
    assert [m.get_marker() for m in marks] == ["^"]


def test_a_score_mimicked_as_given_keeps_one_rmse_unit():
    # a score mimicked as given that may be log-odds: its RMSE reads in log-odds in both
    # places the fidelity section gives it (it had read "on the score's own scale" in one and
    # "log-odds" in the attenuation paragraph); one plainly on another scale: its own scale
    import re

    from sklearn_distill.report import _fidelity_paragraphs

    fidelity = {"r2": 0.73, "rmse": 0.985, "agreement": 0.8, "auc": 0.8, "r2_out_of_fold": 0.7}
    given = " ".join(_fidelity_paragraphs(fidelity, "given"))
    assert set(re.findall(r"RMSE 0\.985 (log-odds|on the score's own scale)", given)) == {
        "log-odds"
    }
    other = " ".join(_fidelity_paragraphs(fidelity, "not log-odds"))
    assert re.findall(r"RMSE 0\.985 (log-odds|on the score's own scale)", other) == [
        "on the score's own scale"
    ]


def _overlapping_tick_labels(fig):
    """Pairs of x tick labels, shown on the same axes, whose drawn boxes overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out as it is saved
    renderer = canvas.get_renderer()
    found = []
    for ax in fig.axes:
        low, high = sorted(ax.get_xlim())
        ticks = [
            tick
            for tick in ax.xaxis.get_major_ticks()
            if tick.label1.get_visible()
            and tick.label1.get_text()
            and low <= tick.get_loc() <= high
        ]
        boxes = [tick.label1.get_window_extent(renderer) for tick in ticks]
        for first, second, a, b in zip(ticks, ticks[1:], boxes, boxes[1:]):
            if a.x1 > b.x0:
                found.append((first.label1.get_text(), second.label1.get_text()))
    return found


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e4, 3e4, 1e5, -1e4, 1e-4])
def test_numeric_axes_labels_never_overlap(scale):
    # an income axis read "75000100000125000150000175000": its ticks' labels ran together
    frame = _rare_extremes()
    frame["value"] = 10_000 + 9_500 * np.arange(20.0)
    frame["value"] = frame["value"] / 10_000 * scale
    frame["weight"] = 100.0
    frame = pd.concat([frame, frame.assign(term="other")], ignore_index=True)
    for ncols in (2, 3):
        assert _overlapping_tick_labels(plot_comparison(frame, ncols=ncols)) == []
    assert _overlapping_tick_labels(plot_term(frame, "income")) == []


def test_block_heatmaps_show_each_range_whole():
    # a block's range lost its upper end: "[4.763e+04, 7..." (ticks were cut at 14 characters)
    ranges = ["[8521, 4.763e+04)", "[4.763e+04, 7.293e+04)", "[7.293e+04, 2.773e+05]"]
    groups = ["Native American", "Asian, Hispanic, ... (4 values)"]
    blocks = pd.DataFrame(
        {
            "term": "income & race",
            "block": [(i, j) for i in range(3) for j in range(2)],
            "label": [(r, g) for r in ranges for g in groups],
            "mimic": np.linspace(-0.1, 0.1, 6),
            "outcome": 0.0,
            "difference": np.linspace(-0.1, 0.1, 6),
            "significant_bh": False,
        }
    )
    ax = plot_interaction(blocks, "income & race").axes[0]
    xs = [" ".join(t.get_text().split()) for t in ax.get_xticklabels()]
    ys = [" ".join(t.get_text().split()) for t in ax.get_yticklabels()]
    assert xs == ranges
    assert ys[0] == "Native American"
    # a long label is wrapped onto two lines at most, each no longer than before
    for text in ax.get_xticklabels() + ax.get_yticklabels():
        lines = text.get_text().split("\n")
        assert len(lines) <= 2 and max(map(len, lines)) <= 14


def test_printed_flagged_values_heading_names_the_ranking_they_follow(fitted_audit):
    # the table lists the largest |z|, not the largest |difference|: a wide-banded value of
    # the largest difference may be left out, so the heading must not promise the largest
    from sklearn_distill.__main__ import _findings_text

    audit = fitted_audit[0]
    comparison = audit.compare()
    main = comparison[comparison["kind"] == "main"].head(12)
    flagged = main.assign(
        significant_bh=True,
        p_value_bh=0.01,
        difference=np.linspace(3.0, 0.1, len(main)),  # largest first ...
        z=np.linspace(2.0, 9.0, len(main)),  # ... but the least clear
    )
    text = _findings_text(audit, audit.missing_feature_test_, flagged)
    heading = next(line for line in text.splitlines() if line.startswith("Flagged values"))
    lines = text[text.index(heading) :].splitlines()[2:12]
    shown = [float(line.split()[-3]) for line in lines]
    expected = flagged.sort_values("z", ascending=False)["difference"].head(10).round(3)
    assert shown == pytest.approx(expected.tolist(), abs=1e-3)
    assert 3.0 not in shown  # the largest difference is not listed ...
    assert "largest standardised differences" in heading  # ... and the heading says why


def test_a_rule_on_a_long_set_of_categories_shows_its_first_values_and_holds_all():
    from sklearn_distill.report import _rules_section

    # 30 charges, 20 of them raising the score: the tree splits them into a set of 20 and one
    # of 10, each too long to read in a table cell
    rng = np.random.default_rng(0)
    charges = [f"charge <{k:02d}>" for k in range(30)]
    n = 3000
    charge = rng.choice(charges, size=n)
    age = rng.integers(18, 70, size=n).astype(float)
    high = np.isin(charge, charges[:20])
    X = pd.DataFrame({"c_charge_desc": pd.Categorical(charge), "age": age})
    tree = DistilledTree(max_leaf_nodes=3, random_state=0).fit(X, 2.0 * high + 0.01 * age)
    rules = tree.rules()
    assert {len(c[2]) for r in rules["conditions"] for c in r if c[1] in ("in", "not in")} <= {
        10,
        20,
    }
    section = _rules_section(tree, None)
    assert "click it for the whole rule" in " ".join(section.paragraphs)
    page = render_html("t", [section])
    cells = re.findall(r'<td class="text rule">(.*?)</td>', page, flags=re.S)
    assert len(cells) == len(rules)  # every rule here tests the long set
    for cell, conditions in zip(cells, _rules_in_table_order(rules)):
        summary = re.search(r"<summary>(.*?)</summary>", cell, flags=re.S).group(1)
        full = re.search(r'<div class="full">(.*?)</div>', cell, flags=re.S).group(1)
        values = sorted(next(c[2] for c in conditions if c[1] in ("in", "not in")))
        text = lambda s: html.unescape(s.replace("<wbr>", ""))  # noqa: E731
        # the first three values, in the rule's order, and how many more: nothing else
        shown = ", ".join(repr(v) for v in values[:3])
        assert f"{{{shown}, … (+{len(values) - 3} more)}}" in text(summary)
        assert repr(values[3]) not in text(summary)
        # the whole rule, every value escaped, a click away
        assert all(repr(v) in text(full) for v in values) and "<0" not in full
    assert [
        text(re.search(r'<div class="full">(.*?)</div>', c, flags=re.S).group(1)) for c in cells
    ] == list(rules.sort_values("prediction", ascending=False)["rule"])


def _rules_in_table_order(rules):
    return list(rules.sort_values("prediction", ascending=False)["conditions"])


def test_a_rule_on_a_short_set_of_categories_is_shown_whole():
    from sklearn_distill.report import _rules_section

    rng = np.random.default_rng(1)
    n = 1000
    kind = rng.choice(["a", "b", "c", "d"], size=n)
    X = pd.DataFrame({"kind": pd.Categorical(kind)})
    tree = DistilledTree(max_leaf_nodes=2, random_state=0).fit(X, np.isin(kind, ["a", "b"]) * 1.0)
    page = render_html("t", [_rules_section(tree, None)])
    assert "<summary>" not in page[page.index("<table>") :]
    assert 'class="text rule"' not in page and "kind not in {'c', 'd'}" in html.unescape(page)
