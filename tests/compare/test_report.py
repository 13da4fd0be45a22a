"""Tests of the HTML report writer and the audit pictures (no model fitting here)."""

import base64
import html.parser
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sklearn_distill.plotting import plot_calibration, plot_comparison, plot_residuals, plot_term
from sklearn_distill.report import (
    Section,
    figure_to_data_uri,
    table_to_html,
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
    ax = plot_term(comparison, "age")
    # two step lines plus the significance markers
    assert len(ax.get_lines()) >= 2
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), np.linspace(18, 70, 6))
    ax = plot_term(comparison, HOSTILE)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", HOSTILE, "c"]
    with pytest.raises(ValueError, match="not in the comparison table"):
        plot_term(comparison, "nope")


def test_plot_term_caps_categories():
    frame = _comparison()
    frame = frame[frame["term"] == HOSTILE]
    ax = plot_term(frame, HOSTILE, max_categories=2)
    assert len(ax.get_xticks()) == 2


def test_plot_comparison_and_others_return_figures(tmp_path):
    fig = plot_comparison(_comparison(), ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
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
