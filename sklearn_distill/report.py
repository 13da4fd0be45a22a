"""Self-contained HTML reports: tables and figures in one file, every given string escaped.

The report has no external resources (no scripts, style sheets or images fetched from
elsewhere): figures are embedded as base64 PNG data URIs, so the file can be mailed or archived
as is. Every piece of text that comes from the user -- column names, category values, titles --
goes through :func:`html.escape`, so a feature called ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import numbers
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from sklearn_distill._shell import typed_back
from sklearn_distill._validation import check_integer, check_output_path, fail
from sklearn_distill.shapes import MISSING_LABEL, value_label

__all__ = [
    "Section",
    "Table",
    "audit_findings_text",
    "audit_report_sections",
    "figure_to_data_uri",
    "format_number",
    "format_p_value",
    "render_html",
    "table_to_html",
    "write_audit_report",
    "write_html",
]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
td { white-space: nowrap; } /* a number is never broken: "-2.0e-" over "04" reads as two */
tr.flag td { background: #fff3cd; }
img { max-width: 100%; height: auto; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 1em; }
dt { font-weight: 600; } .note { color: #555; font-size: 0.9em; }
dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
p, li { overflow-wrap: break-word; }
td.text { white-space: nowrap; }
@media (max-width: 600px) {
  dl { display: block; } dt { margin-top: 0.4em; } dd { margin-left: 1em; }
  /* a figure squeezed to a phone's width is a thumbnail: keep it legible, scroll sideways,
     and say so (panels beyond the screen's edge are otherwise easy to miss) */
  p.figure { overflow-x: auto; } p.figure img { max-width: 720px; }
  p.figure::before { content: "Wide figure: scroll sideways to see all of it."; }
  /* tables fit a phone's width: long terms and values wrap instead of pushing the
     difference, the adjusted p and the flag off-screen */
  table { font-size: 0.75em; } th, td { padding: 2px 3px; }
  td.text { white-space: normal; overflow-wrap: anywhere; min-width: 4em; }
}
.scroll { overflow-x: auto; max-width: 100%; }
/* a table or figure wider than its box scrolls sideways and says so: exactly then where the
   browser has scroll timelines (one is active only while there is something to scroll; an
   animation cannot start from display: none, hence the zero height), elsewhere on a narrow
   screen for figures and tables of many columns, and everywhere for the widest tables */
.scroll::before { content: "Wide table: scroll sideways to see all of it."; }
.scroll::before, p.figure::before { display: block; height: 0; overflow: hidden;
  visibility: hidden; position: sticky; left: 0; font-size: 0.8em; color: #555; }
@keyframes sideways { from, to { height: auto; visibility: visible; } }
@supports (animation-timeline: scroll()) {
  .scroll, p.figure { scroll-timeline: --sideways x; }
  .scroll::before, p.figure::before { animation: sideways linear both;
                                      animation-timeline: --sideways; }
}
@supports not (animation-timeline: scroll()) {
  .scroll.widest::before { height: auto; visibility: visible; }
  @media (max-width: 600px) {
    .scroll.wide::before, p.figure::before { height: auto; visibility: visible; }
  }
}
.side { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
.side > div { flex: 0 1 auto; min-width: 0; max-width: 100%; }
h3 { font-size: 1.05em; margin: 0.6em 0 0.2em 0; }
details { margin: 0.5em 0 1em 0; } summary { cursor: pointer; font-weight: 600; }
.verdict { border-left: 4px solid #888; padding: 0.2em 0.8em; background: #f7f7f7; }
.option { white-space: nowrap; } /* "--n-" over "bootstrap" is no option one can type */
/* a rule that tests a long set of categories: its first values, the whole rule a click away,
   wrapped (a set of hundreds of values on one line pushes the numbers off the screen) */
td.text.rule { white-space: normal; min-width: 16em; }
@media (max-width: 600px) { td.text.rule { min-width: 8em; } }
td details { margin: 0; } td summary { font-weight: normal; }
td details .full { margin-top: 0.3em; padding-left: 1em; border-left: 2px solid #ddd;
                   overflow-wrap: anywhere; }
"""


@dataclass
class Table:
    """A table inside a section, with an optional heading and per-column formatting.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rendered with :func:`table_to_html`.
    heading : str, optional
        A small heading above the table (escaped).
    flag_column : str, optional
        Boolean column of ``frame``; its true rows are highlighted.
    formatters : dict, optional
        Column name -> function from a cell's value to its text (escaped).
    index : bool, default=True
        Include the index as the first column.
    hidden : bool, default=False
        Collapsed behind a ``<details>`` element whose summary is ``heading``.
    note : str, optional
        A small note under the table (escaped).
    """

    frame: pd.DataFrame
    heading: str | None = None
    flag_column: str | None = None
    formatters: dict | None = None
    index: bool = True
    hidden: bool = False
    note: str | None = None


@dataclass
class Section:
    """One section of a report: a heading, paragraphs, tables and figures.

    Parameters
    ----------
    heading : str
        Section title (escaped).
    paragraphs : list of str
        Plain-text paragraphs (escaped).
    table : pandas.DataFrame, optional
        Rendered with :func:`table_to_html`.
    flag_column : str, optional
        Boolean column of ``table``; its true rows are highlighted.
    figures : list of matplotlib.figure.Figure
        Embedded as PNG.
    items : dict, optional
        Key/value pairs shown as a definition list (both escaped).
    bullets : list of str
        A bulleted list after the paragraphs (escaped).
    tables : list of Table
        More tables, after ``table``.
    side_by_side : bool, default=False
        Lay ``tables`` out side by side where the page is wide enough.
    verdict : str, optional
        A highlighted paragraph before the others (escaped).
    """

    heading: str
    paragraphs: list = field(default_factory=list)
    table: pd.DataFrame | None = None
    flag_column: str | None = None
    figures: list = field(default_factory=list)
    items: dict | None = None
    bullets: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    side_by_side: bool = False
    verdict: str | None = None


def figure_to_data_uri(fig, *, dpi=110):
    """Encode a matplotlib figure as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, default=110

    Returns
    -------
    str

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_to_data_uri(Figure(figsize=(1, 1))).startswith("data:image/png;base64,")
    True
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def format_number(value, digits=3):
    """A number as report text: integers as they are, other numbers with ``digits`` decimals,
    NaN as an empty string. A non-zero number that ``digits`` decimals would show as zero
    reads in scientific notation with two significant digits, one of a million or more with
    ``digits`` significant digits; so a column reads ``0.123``, ``-0.001``, ``3.9e-04``, never
    a mix of ``-0.000612`` and ``0.123``.

    Examples
    --------
    >>> [format_number(v) for v in (3, 0.12345, -0.000612, 0.00039, 2.5e-7, float("nan"))]
    ['3', '0.123', '-0.001', '3.9e-04', '2.5e-07', '']
    """
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 0:
        raise ValueError(f"digits must be an integer >= 0; got {digits!r}.")
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    try:
        value = float(value) + 0.0  # + 0.0: -0.0 reads as 0
    except (TypeError, ValueError):
        raise TypeError(f"value must be a number; got {value!r}.") from None
    if math.isnan(value):
        return ""
    if abs(value) >= 1e6:
        return f"{value:.{digits}g}"
    text = f"{value:.{digits}f}"
    if value != 0 and float(text) == 0:  # 0.00039 is not 0.000
        return f"{value:.1e}"
    return text


def _round_up(value, significant=2):
    """``value`` rounded up to ``significant`` significant digits."""
    exponent = math.floor(math.log10(value)) - significant + 1
    scale = 10.0**exponent
    return math.ceil(value / scale - 1e-9) * scale


def _percent(share, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage with ``digits`` decimals that reads 100% or 0% only
    when it is: one that would round onto them reads ``">99.9%"`` or ``"<0.1%"``."""
    share = float(share)
    text = f"{100 * share:.{digits}f}"
    if share < 1 and float(text) >= 100:
        return f">{100 - 10**-digits:.{digits}f}%"
    if share > 0 and float(text) <= 0:
        return f"<{10**-digits:.{digits}f}%"
    return text + "%"


def format_p_value(p_value, n_bootstrap=None):
    """A p-value as report text, honest at its floors.

    A bootstrap p-value from ``B`` resamples (:func:`sklearn_distill.stats.bootstrap_p_value`)
    cannot be smaller than ``2 / (B + 1)``; at that floor it reads ``"<= 0.002"`` (for
    ``B = 1000``), since the true p-value may be anything below. Other p-values read with
    three decimals, or ``"< 0.001"``; one that three decimals would round up onto a usual
    level (0.1, 0.05, 0.01) reads as below it (0.04995 as ``"< 0.050"``, not ``"0.050"``).

    Parameters
    ----------
    p_value : float
    n_bootstrap : int, optional
        The resamples behind a bootstrap p-value.

    Returns
    -------
    str

    Examples
    --------
    >>> format_p_value(2 / 1001, n_bootstrap=1000), format_p_value(0.0123), format_p_value(1e-9)
    ('<= 0.002', '0.012', '< 0.001')
    """
    try:
        p_value = float(p_value)
    except (TypeError, ValueError):
        raise TypeError(f"p_value must be a number; got {p_value!r}.") from None
    if not (math.isnan(p_value) or 0.0 <= p_value <= 1.0):
        raise ValueError(f"p_value must be in [0, 1] (or NaN); got {p_value!r}.")
    if math.isnan(p_value):
        return ""
    if n_bootstrap is not None and n_bootstrap > 0:
        floor = min(1.0, 2.0 / (float(n_bootstrap) + 1.0))
        if p_value <= floor * (1 + 1e-9):
            return f"<= {_round_up(floor):g}"
    if p_value < 0.001:
        return "< 0.001"
    text = f"{p_value:.3f}"
    if p_value < float(text) and text in ("0.100", "0.050", "0.010"):
        # 0.04995 as "0.050" would read as not below a 5% level it is below: a p-value that
        # three decimals round up onto a round level (0.050, 0.010, 0.100) reads as below it
        return f"< {text}"
    return text


def _format_cell(value, digits):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no", "text"
    if isinstance(value, numbers.Real):
        return format_number(value, digits), ""
    return html.escape(str(value)), "text"


class _HtmlCell(str):
    """A table cell's HTML, built and escaped already (a formatter's text is escaped
    otherwise), with the CSS classes of its ``<td>`` beside ``text``."""

    css = ""


def table_to_html(frame, *, digits=3, flag_column=None, index=True, max_rows=None, formatters=None):
    """Render a data frame as an HTML table, escaping every label and value.

    Parameters
    ----------
    frame : pandas.DataFrame
    digits : int, default=3
        Decimals of floating-point cells.
    flag_column : str, optional
        Boolean column; rows where it is true get the ``flag`` class (highlighted).
    index : bool, default=True
        Include the index as the first column.
    max_rows : int, optional
        Show at most this many rows, and say how many were left out.
    formatters : dict, optional
        Column name -> function from a cell's value to its text; the text is escaped, and
        right-aligned when the value is a number.

    Returns
    -------
    str

    Examples
    --------
    >>> table_to_html(pd.DataFrame({"<b>": ["<i>"]}), index=False).count("&lt;")
    2
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    if flag_column is not None and flag_column not in frame.columns:
        raise ValueError(
            f"flag_column must be a column of frame ({list(map(str, frame.columns))}); got "
            f"{flag_column!r}."
        )
    shown = frame if max_rows is None else frame.head(max_rows)
    header = []
    if index:
        header.append(html.escape(str(frame.index.name or "")))
    header += [html.escape(str(c)) for c in frame.columns]
    body = []
    text_columns = [True] * len(header)  # a column of text only gets a left-aligned header
    flags = shown[flag_column].to_numpy(bool) if flag_column is not None else None
    formatters = formatters or {}
    cell_formats = ([None] if index else []) + [formatters.get(c) for c in frame.columns]
    # itertuples keeps each column's own type (iterrows would turn integers into floats)
    for position, (label, *row) in enumerate(shown.itertuples(index=True, name=None)):
        flagged = flags is not None and flags[position]
        cells = []
        values = ([label] if index else []) + row
        for value, formatter in zip(values, cell_formats):
            shown_value = None
            if formatter is not None:
                # aligned as the value itself: numbers to the right, text to the left
                shown_value = formatter(value)
                text = (
                    str(shown_value)
                    if isinstance(shown_value, _HtmlCell)
                    else html.escape(str(shown_value))
                )
                numeric = isinstance(value, numbers.Real) and not isinstance(
                    value, (bool, np.bool_)
                )
                css = "" if numeric else "text"
            else:
                text, css = _format_cell(value, digits)
            if not (pd.api.types.is_scalar(value) and pd.isna(value)):  # an empty cell says nothing
                text_columns[len(cells)] &= css == "text"
            if isinstance(shown_value, _HtmlCell):
                css = f"text {shown_value.css}".strip()
            elif css == "text":
                # a narrow screen wraps c_charge_desc after an underscore, not mid-word
                text = text.replace("_", "_<wbr>")
            cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
        body.append(('<tr class="flag">' if flagged else "<tr>") + "".join(cells) + "</tr>")
    heads = [
        f'<th class="text">{h}</th>' if text and len(shown) else f"<th>{h}</th>"
        for h, text in zip(header, text_columns)
    ]
    # where the browser cannot tell whether a table overflows, its number of columns guesses it
    wide = " wide widest" if len(header) >= 16 else " wide" if len(header) >= 7 else ""
    lines = [
        f'<div class="scroll{wide}"><table>',
        "<thead><tr>" + "".join(heads) + "</tr></thead>",
        "<tbody>",
        *body,
        "</tbody></table></div>",
    ]
    if max_rows is not None and len(frame) > max_rows:
        lines.append(f'<p class="note">{len(frame) - max_rows} more rows not shown.</p>')
    return "\n".join(lines)


#: A command-line option in a text (``--min-weight``, ``--na-values=-99``), with the value that
#: follows it after one space (``--calibration spline``, ``--sep ';'``, ``--max-bins N``), the
#: punctuation after either left out. A value over ``_OPTION_VALUE_CHARS`` characters (a long
#: column name) may wrap: kept whole, it would run past a phone's screen.
_OPTION = re.compile(
    r"(?<![\w-])(--[A-Za-z][\w-]*(?:=\S*[^\s.,;:)])?)"
    r"(?: (?!--)('[^']*'|\"[^\"]*\"|[^\s,;:()'\"]*[^\s.,;:()'\"]))?"
)
_OPTION_VALUE_CHARS = 30


def _text_html(text) -> str:
    """``text`` escaped, each command-line option in it kept on one line (a break at its
    hyphens, ``--n-`` over ``bootstrap``, reads as two words and cannot be typed back); the
    characters are left as they are, so that a copied option is the option."""
    text = str(text)
    parts, at = [], 0
    for match in _OPTION.finditer(text):
        value = match.group(2)
        end = match.end() if value and len(value) <= _OPTION_VALUE_CHARS else match.end(1)
        parts.append(html.escape(text[at : match.start()]))
        parts.append(f'<span class="option">{html.escape(text[match.start() : end])}</span>')
        at = end
    parts.append(html.escape(text[at:]))
    return "".join(parts)


def _table_block(table, digits):
    body = table_to_html(
        table.frame,
        digits=digits,
        flag_column=table.flag_column,
        index=table.index,
        formatters=table.formatters,
    )
    if table.note:
        body += f'\n<p class="note">{_text_html(table.note)}</p>'
    heading = _text_html(table.heading) if table.heading else ""
    if table.hidden:
        return f"<details><summary>{heading or 'Table'}</summary>\n{body}\n</details>"
    return "<div>" + (f"<h3>{heading}</h3>\n" if heading else "") + body + "</div>"


#: Unicode's bidirectional embedding, override and isolate controls, each shown as its code.
_BIDI_SHOWN = {code: f"[U+{code:04X}]" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def render_html(title, sections, *, digits=3):
    """Render a whole report as one HTML string.

    Parameters
    ----------
    title : str
        Page title and top heading (escaped).
    sections : sequence of Section
    digits : int, default=3

    Returns
    -------
    str
        A complete HTML5 document with no external resources.

    Examples
    --------
    >>> page = render_html("a <title>", [Section("s", paragraphs=["x & y"])])
    >>> "a &lt;title&gt;" in page and "x &amp; y" in page
    True
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(str(title))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(str(title))}</h1>",
    ]
    sections = list(sections)
    for section in sections:
        if not isinstance(section, Section):
            fail("sections", "a sequence of Section objects", type(section).__name__, TypeError)
    for section in sections:
        parts.append(f"<section><h2>{html.escape(str(section.heading))}</h2>")
        if section.verdict:
            parts.append(f'<p class="verdict">{_text_html(section.verdict)}</p>')
        for paragraph in section.paragraphs:
            parts.append(f"<p>{_text_html(paragraph)}</p>")
        if section.bullets:
            parts.append("<ul>")
            parts += [f"<li>{_text_html(item)}</li>" for item in section.bullets]
            parts.append("</ul>")
        if section.items:
            parts.append("<dl>")
            for key, value in section.items.items():
                parts.append(f"<dt>{_text_html(key)}</dt><dd>{_text_html(value)}</dd>")
            parts.append("</dl>")
        if section.table is not None:
            parts.append(
                table_to_html(section.table, digits=digits, flag_column=section.flag_column)
            )
        if section.tables:
            parts.append('<div class="side">' if section.side_by_side else "<div>")
            parts += [_table_block(table, digits) for table in section.tables]
            parts.append("</div>")
        for fig in section.figures:
            alt = html.escape(str(section.heading))
            parts.append(f'<p class="figure"><img alt="{alt}" src="{figure_to_data_uri(fig)}"></p>')
        parts.append("</section>")
    parts.append("</body></html>")
    # bidirectional controls in a label (U+202E reverses the text after it) shown as their
    # code, so that no label can reorder what the page says around it
    return "\n".join(parts).translate(_BIDI_SHOWN)


def write_html(path, title, sections, *, digits=3):
    """Write :func:`render_html`'s document to ``path`` (UTF-8) and return the path.

    The document is written whole or not at all: a failure part way (a full disk, an
    interrupted run) leaves the file that was at ``path`` as it was.

    Parameters
    ----------
    path : str or os.PathLike
    title : str
    sections : sequence of Section
    digits : int, default=3

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "report.html")
    >>> written = write_html(path, "Audit", [Section("Notes", paragraphs=["a < b"])])
    >>> "a &lt; b" in open(written, encoding="utf-8").read()
    True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    document = render_html(title, sections, digits=digits)
    _write_whole(os.fspath(path), document)
    return os.fspath(path)


def _write_whole(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) whole or not at all: into a new file beside it, then
    renamed over it, so that a failure part way (a full disk, an interrupted run, text that
    cannot be encoded) leaves the file that was there, not a truncated report an auditor might
    open. Written through a symbolic link to its target; the new file gets the permissions a
    plain ``open`` would give it."""
    target = os.path.realpath(path)
    if os.path.exists(target) and not os.access(target, os.W_OK):
        # a file its owner made read-only stays so, as a plain open would refuse it
        raise PermissionError(f"[Errno 13] Permission denied: {path!r}")
    partial = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)}.{os.getpid()}.{id(text):x}.part"
    )
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        # a folder where a new file cannot be made (the file itself may still be writable)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        if os.path.exists(target):
            shutil.copymode(target, partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


# ---------------------------------------------------------------------------- the audit report
#: Rows of the "largest differences" tables.
_TOP_ROWS = 10


def _format_value(value):
    """A term's value as text: a category, an integer, a number, a pair, or "missing"."""
    if isinstance(value, tuple):
        return " x ".join(_format_value(v) for v in value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_LABEL
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def _format_raw_value(value):
    """A bin's value as :func:`_format_value` writes it, but a category written ``missing``
    quoted, as the bins' labels have it (a label is final text: it is not quoted again)."""
    if isinstance(value, tuple):
        return " x ".join(_format_raw_value(v) for v in value)
    return _format_value(value_label(value) if isinstance(value, str) else value)


def _format_weight(value):
    return "" if pd.isna(value) else str(round(float(value)))


def _flag_column(comparison):
    return "significant_bh" if "significant_bh" in comparison else "significant"


def _is_interaction(comparison):
    """Boolean Series: rows of pairwise interaction terms."""
    if "kind" in comparison:
        return comparison["kind"] == "interaction"
    return comparison["value"].map(lambda v: isinstance(v, tuple))


def _compact(rows):
    """The columns an auditor reads, in order: term, value, both shapes, the difference with
    its interval at the audit's confidence ("low", "high": the value's own, before the
    adjustment), the adjusted p-value, weight."""
    rows = (
        rows.assign(value=rows["label"])
        if "label" in rows
        else rows.assign(value=rows["value"].map(_format_raw_value))
    )
    columns = {
        "term": "term",
        "value": "value",
        "mimic": "mimic",
        "outcome": "outcome",
        "difference": "difference",
        "difference_lower": "low",
        "difference_upper": "high",
        "p_value_bh": "adjusted p",
        "weight": "rows",
    }
    present = {k: v for k, v in columns.items() if k in rows}
    table = rows[list(present)].rename(columns=present)
    if "significant_bh" in rows:
        table["flagged"] = rows["significant_bh"].to_numpy(bool)
    return table.reset_index(drop=True)


_COMPACT_FORMATS = {
    "value": _format_value,
    "adjusted p": format_p_value,
    "rows": _format_weight,
}


def _difference_units(audit) -> str:
    """The units of a difference of the mimic's and the outcome model's shapes: log-odds of
    the outcome event, unless the score was mimicked on its own scale."""
    if _score_on_own_scale(audit):
        return "the mimic on the score's own scale, the outcome model in log-odds"
    return "log-odds"


def _interval_columns_text(level) -> str:
    """What the compact tables' 'low' and 'high' columns are."""
    return (
        f"'low' and 'high' bound the difference's {level} interval for that value alone, "
        "before the adjustment: an interval that leaves out 0 can still go unflagged once the "
        "adjustment allows for the many values compared."
    )


def _largest(rows, n=_TOP_ROWS):
    """The ``n`` testable rows with the largest standardised difference (a term of one value
    is left out: centred on its mean, both its shapes are 0, and can never differ)."""
    if "term" in rows:  # counted over all its values: one testable value of many is listed
        rows = rows[rows.groupby("term", sort=False)["term"].transform("size").to_numpy() > 1]
    if "testable" in rows:
        rows = rows[rows["testable"].to_numpy(bool)]
    if rows.empty:
        return rows
    order = rows["z"].abs() if "z" in rows else rows["difference"].abs()
    return rows.loc[order.sort_values(ascending=False).index].head(n)


def _single_value_text(main) -> str:
    """The features of one value, left out of the largest differences (see :func:`_largest`)."""
    if "term" not in main or main.empty:
        return ""
    sizes = main.groupby("term", sort=False)["term"].size()
    single = [str(term) for term, size in sizes.items() if size == 1]
    if not single:
        return ""
    return (
        f" Not listed: {', '.join(single)}, of one value on every row, whose shapes are 0 "
        "(each is centred on its mean) and can never differ."
    )


#: Below this, the report says how much a missing part of the score shrinks the outcome's shapes.
ATTENUATION_NOTED = 0.9


def attenuation_from_rmse(rmse: float) -> float:
    """How much smaller the outcome model's shapes come out than those of a black box equal to
    the true risk, when the score's log-odds spread the mimic leaves (``rmse``) is information
    on the outcome that the audit data lack: ``1 / sqrt(1 + pi * rmse**2 / 8)``, the probit
    approximation of averaging a logistic over a normal missing part independent of the
    features (log-odds are not collapsible). 1 when nothing is left.

    >>> round(attenuation_from_rmse(1.6), 3)
    0.706
    """
    return 1.0 / float(np.sqrt(1.0 + np.pi * float(rmse) ** 2 / 8.0))


def _attenuation_text(fidelity) -> list[str]:
    # the spread left on rows the mimic did not see where the audit measured it: the
    # in-sample RMSE leaves out what the mimic fits of the rows' noise (measured beside it
    # by benchmarks/audit_noncollapsible.py; see benchmarks/README.md)
    # a missing entry may be None (a dict read back from JSON), as "r2_out_of_fold" is read
    rmse = fidelity.get("rmse_out_of_fold")
    rmse = float("nan") if pd.isna(rmse) else float(rmse)
    unseen = np.isfinite(rmse)
    if not unseen:
        rmse = float(fidelity.get("rmse", float("nan")))
    if not np.isfinite(rmse):
        return []
    factor = attenuation_from_rmse(rmse)
    if factor >= ATTENUATION_NOTED:
        return []
    return [
        "Log-odds do not average: if the spread the mimic leaves (RMSE "
        f"{rmse:.3f} log-odds{' on rows it did not see' if unseen else ''}) is information "
        "on the outcome that the audit data lack, the "
        "outcome model's shapes come out smaller than those of a black box equal to the true "
        f"risk, about {factor:.2f} times their size (1 / sqrt(1 + pi RMSE^2 / 8), for a "
        "normal missing part independent of the features). A flagged value whose mimic "
        f"effect is larger than the outcome's in the same direction, by up to {1 / factor:.2f} "
        "times, may come from that alone: it is then no evidence that the black box weighs "
        "the value unlike the outcome (benchmarks/audit_noncollapsible.py: a black box equal "
        "to the true risk, with a missing part of spread 1.6, had 6 of 8 values flagged at "
        "12,000 rows)."
    ]


def _score_on_own_scale(audit) -> bool:
    """Whether the audit mimicked, with no calibration and as a plain score, a score that
    looks unlike log-odds (``fit`` warned): every value in [0, 1], as a probability's, or
    few whole-number values, or values far beyond log-odds (``score_unlike_log_odds``). Its
    mimic, R^2 and RMSE are then on the score's own scale, not on the log-odds the outcome
    model is in."""
    return bool(getattr(audit, "_score_in_unit_interval_", False)) or bool(
        getattr(audit, "_score_unlike_log_odds_", None)
    )


def _score_as_given(audit) -> bool:
    """Whether the audit mimicked the score as given (no calibration, not read as a
    probability): its R^2 and RMSE are then of the score on its own scale, whatever it is."""
    return bool(getattr(audit, "_score_as_given_", False)) or _score_on_own_scale(audit)


def _scale_of(audit):
    """The scale the mimic's R^2 and RMSE are of, for :func:`_fidelity_paragraphs`: ``None``
    (log-odds, from a calibration or a probability), ``"given"`` (the score as given, which may
    be log-odds), ``"not log-odds"`` (the score as given, plainly on another scale)."""
    if _score_on_own_scale(audit):
        return "not log-odds"
    return "given" if _score_as_given(audit) else None


def _scale_texts(audit) -> list[str]:
    """What a reader must know when the score was mimicked on its own scale although it plainly
    is not log-odds (nothing otherwise)."""
    if not _score_on_own_scale(audit):
        return []
    reason = getattr(audit, "_score_unlike_log_odds_", None)
    if reason and not getattr(audit, "_score_in_unit_interval_", False):
        return [
            f"The score's values {reason}; but with no calibration it was mimicked as given, on "
            "its own scale, not as log-odds. The mimic's R^2 and RMSE are of the score on that "
            "scale, and its shapes are compared with the outcome model's log-odds, so a "
            "difference between them may be one of scale alone. Calibrate the score "
            "(calibration='isotonic', the command line's default) to compare it in log-odds."
        ]
    return [
        "The score lies in [0, 1], as a probability does, but was read on its own scale: with "
        "no calibration, and not read as a probability, it was mimicked as given, not as "
        "log-odds. The mimic's R^2 and RMSE are of the score on that scale, and its shapes are "
        "compared with the outcome model's log-odds, so a difference between them may be one "
        "of scale alone. If the score is a probability of the outcome event, read it as one "
        "(response='predict_proba'; on the command line --response predict_proba) or "
        "calibrate it."
    ]


def _fidelity_paragraphs(fidelity, own_scale=None):
    """What the mimic's fidelity means for reading its shapes; ``own_scale``: the scale of the
    score as mimicked (:func:`_scale_of`): ``None`` log-odds, ``"given"`` the score as given
    (uncalibrated), ``"not log-odds"`` the score as given, plainly not log-odds (``True`` is
    taken for that)."""
    if own_scale is True:
        own_scale = "not log-odds"
    if not fidelity:
        return ["This audit did not record how faithful the mimic is; read its shapes with care."]
    r2 = float(fidelity["r2"])
    share = f"{100 * max(r2, 0):.0f}%"
    # the wording goes by the R^2 as printed (0.8996 reads 0.900, which "closely" describes)
    shown = float(f"{r2:.3f}")
    # the scale the R^2 is of, where it is not the score's log-odds
    of = {
        None: "",
        False: "",
        "given": " of the score on its own scale",
        "not log-odds": " of the score on its own scale, not of log-odds",
    }[own_scale]
    if shown >= 0.9:
        reading = (
            f"The mimic reproduces the black box closely (R^2 {r2:.3f}{of}): its shapes are a "
            "faithful reading of how the black box uses these features."
        )
    elif shown >= 0.7:
        reading = (
            f"The mimic reproduces most of the black box (R^2 {r2:.3f}{of}): its shapes show how the "
            "black box uses these features, with some of its behaviour left out."
        )
    elif shown >= 0.4:
        reading = (
            f"The mimic reproduces only part of the black box (R^2 {r2:.3f}: {share} of the "
            + {
                None: "variance of the score's log-odds",
                False: "variance of the score's log-odds",
                "given": "variance of the score on its own scale",
                "not log-odds": "variance of the score on its own scale, not of log-odds",
            }[own_scale]
            + "). Its shapes show how the black box uses these "
            "features on average; the rest is information the features lack (see the "
            "missing-feature test), structure an additive model cannot hold, or noise in the "
            "score. Read a difference of shapes as a difference in that part only."
        )
    else:
        reading = (
            f"The mimic reproduces little of the black box (R^2 {r2:.3f}{of}). Its shapes describe "
            "a small part of what the black box does: do not read them as the black box's "
            "logic."
        )
    # a score mimicked as given that may be log-odds keeps its unit (the attenuation's too)
    unit = "on the score's own scale" if own_scale == "not log-odds" else "log-odds"
    details = [f"RMSE {float(fidelity['rmse']):.3f} {unit}"]
    if "r2_out_of_fold" in fidelity and not pd.isna(fidelity["r2_out_of_fold"]):
        details.append(
            f"R^2 {float(fidelity['r2_out_of_fold']):.3f} on rows the cross-fitted mimics did "
            "not see"
        )
    if "agreement" in fidelity and not pd.isna(fidelity["agreement"]):
        one_side = "auc" in fidelity and pd.isna(fidelity["auc"])
        details.append(
            f"the same side of probability 0.5 as the calibrated score on "
            f"{_percent(fidelity['agreement'])} of rows"
            + (
                " (the calibrated score puts every row on one side of 0.5, as with a rare "
                "outcome, so this says little: read R^2)"
                if one_side
                else ""
            )
        )
    if "auc" in fidelity and not pd.isna(fidelity["auc"]):
        details.append(
            f"AUC {float(fidelity['auc']):.3f} for the side of 0.5 the calibrated score is on"
        )
    # the attenuation is that of log-odds (a spread on another scale says nothing of it; a
    # score as given may be log-odds)
    attenuation = [] if own_scale == "not log-odds" else _attenuation_text(fidelity)
    return [reading, "Also: " + "; ".join(details) + ".", *attenuation]


def _lacks_bands(comparison, min_weight) -> bool:
    from sklearn_distill.stats import lacks_bands  # scipy and joblib: when a report is made

    return lacks_bands(comparison, min_weight)


def _resamples_needed(confidence) -> int:
    from sklearn_distill.stats import resamples_needed

    return resamples_needed(confidence)


def _bootstrap_floor(row) -> float:
    """The smallest p-value the test's resamples can give, ``2 / (B + 1)`` (0 when unknown)."""
    resamples = row.get("n_bootstrap") if hasattr(row, "get") else None
    if resamples is None or pd.isna(resamples):
        return 0.0
    return 2.0 / (int(resamples) + 1)


def _nothing_to_correlate(audit, test) -> bool:
    """Whether the missing-feature test found nothing to correlate (fit found the score, as
    calibrated, held whole by the test's adjustment) and drew no resample."""
    return bool(getattr(audit, "_score_in_adjustment_", False)) and bool(
        pd.isna(test.loc["pearson", "estimate"])
    )


def _missing_feature_texts(audit, test):
    level = f"{100 * audit.confidence:g}%"
    pearson = test.loc["pearson"]
    if _nothing_to_correlate(audit, test):
        # fit found the score (as calibrated) held whole by the test's adjustment
        verdict = (
            "The test has nothing to correlate: the score, as the mimic reads it, is a "
            "function of the audit features that the test's adjustment holds whole (a "
            "polynomial of degree two in the numeric features plus effects of the nominal "
            "features' levels, as a logistic regression's log-odds are), so its residuals "
            "beyond the adjustment are zero. The score, as calibrated, uses nothing the audit "
            "data lack."
        )
        return verdict, []
    interval = f"{pearson['low']:.3f} to {pearson['high']:.3f}"
    p_text = format_p_value(pearson["p_value"], pearson.get("n_bootstrap"))
    p_text = f"p {p_text}" if p_text.startswith("<") else f"p = {p_text}"
    measured = f"Pearson {pearson['estimate']:.3f}, {level} interval {interval}, {p_text}"
    # one rule decides the verdict: the p-value against 1 - confidence; the interval is stated
    # rounded: 1 - 0.95 is 0.05000000000000004, and a bootstrap p-value can be 0.05 exactly
    alpha = round(1.0 - float(audit.confidence), 12)
    significant = bool(pearson["p_value"] < alpha)
    if significant and pearson["estimate"] > 0:
        verdict = (
            f"The two models' cross-fitted residuals are positively correlated ({measured}): "
            "both miss something in common. The usual reading is that the black box uses "
            "information the audit data lack."
        )
        if _unadjusted_levels_caveat(audit):
            # levels the adjustment could not hold give the same signal with nothing missing
            verdict += (
                " Here it is inconclusive: the test's adjustment could not hold every level "
                "of some nominal features, whose thin levels give this signal with nothing "
                "missing (see the caveats below)."
            )
    elif significant and pearson["estimate"] < 0:
        # a missing feature correlates the residuals positively; under the test's null the
        # correlation is zero, so a clearly negative one says the adjustment misfits here
        verdict = (
            f"The two models' cross-fitted residuals are negatively correlated ({measured}). "
            "That is no sign of a missing feature, which would correlate them positively; it "
            "says the test's adjustment misfits these data (its assumptions may not hold "
            "here), so read this verdict with care."
        )
        curve = getattr(audit, "calibration_curve_", None)
        if (
            _fitted_setting(audit, "calibration") == "isotonic"
            and curve is not None
            and len(curve) > 50
        ):
            # a continuous score read through isotonic steps: the mimic follows the steps
            verdict += (
                " The score takes many values and was calibrated by isotonic regression, "
                "whose steps the mimic follows: refit with calibration='spline' (or "
                "'sigmoid'; on the command line --calibration spline) and compare."
            )
    elif _bootstrap_floor(pearson) >= alpha:
        # no p-value from this many resamples can fall below the level: the test could not
        # have found anything, so "nothing found" would say more than it tested
        resamples = int(pearson["n_bootstrap"])
        verdict = (
            f"The test could not decide at this level ({measured}): with {resamples} resamples "
            f"no p-value can fall below 2 / {resamples + 1}, at or above {100 * alpha:g}%. "
            "Run it "
            f"with at least {_resamples_needed(audit.confidence)} resamples (n_bootstrap; on "
            "the command line --n-bootstrap)."
        )
        if pearson["low"] > 0:
            verdict += (
                " Its interval lies above zero: read that as a reason to rerun, not as a finding."
            )
    else:
        verdict = (
            f"No positive correlation of the residuals was found ({measured}): no sign, at this "
            "level, that the black box uses information the audit data lack."
        )
    decidable = _bootstrap_floor(pearson) < alpha
    if decidable and significant != bool(pearson["low"] > 0 or pearson["high"] < 0):
        verdict += (
            f" The interval and the p-value fall on either side of the {100 * alpha:g}% level (the "
            "p-value counts the observed sample as one more resample, the interval does not): "
            "the evidence sits at the edge of this level, and the verdict follows the p-value."
        )
    pairs = _interaction_count(audit)
    interaction_caveat = (
        "Interactions the models lack give the same signal: both models have main effects "
        "only, so an interaction among these features counts as missing information."
        if pairs == 0
        else f"Interactions the models lack give the same signal: both models hold {pairs} "
        f"pairwise interaction{'s' if pairs > 1 else ''}, so only interactions beyond "
        f"{'those' if pairs > 1 else 'it'} count as missing information."
    )
    caveats = [
        interaction_caveat,
        *_repeated_rows_caveat(audit),
        *_unadjusted_levels_caveat(audit),
        "Structure that neither model can hold (a three-way interaction, a region both fit "
        "poorly) also correlates their residuals.",
        "The residuals come from models fitted on other rows than the row and than each other, "
        "and are adjusted for smooth functions of the audit features; on generated worlds "
        "with nothing missing and 3,000 rows the test held its level, and the correlation "
        "still varied by 0.010-0.017 from seed to seed (benchmarks/README.md). Weigh a small "
        "correlation by its size, not only by its interval.",
        "A missing feature that the outcome does not depend on leaves no trace here, nor does "
        "one too weak for these rows: no correlation is not proof that nothing is missing.",
    ]
    return verdict, caveats


def _unadjusted_levels_caveat(audit) -> list[str]:
    """The caveat of nominal features whose levels the test's adjustment could not all hold
    (``missing_feature_test`` warns of them)."""
    from sklearn_distill.audit import levels_unadjusted_text

    text = levels_unadjusted_text(getattr(audit, "_unadjusted_levels_", None))
    return [] if text is None else [text[0].upper() + text[1:]]


def _repeated_rows_caveat(audit) -> list[str]:
    """The caveat of rows that repeat another exactly, fitted without record identifiers
    (``fit`` warned): as many copies of one record as fall in different thirds make the test
    find a missing feature too readily."""
    repeated = getattr(audit, "_repeated_rows_", None)
    if not repeated:
        return []
    count, rows = repeated
    return [
        f"{count} of {rows} rows ({100 * count / rows:.0f}%) repeat another row exactly "
        "(features, score and label) and no record identifiers were given: if some are one "
        "record entered more than once, its copies fall in different thirds of the "
        "cross-fitting and the test reports a missing feature too readily. Pass the record "
        "identifiers as groups (fit(..., groups=...); --groups COL on the command line); "
        "distinct cases that happen to be identical need nothing."
    ]


def _min_weight_text(audit):
    min_weight = getattr(audit, "min_weight", None)
    if not min_weight:
        return ""
    return (
        f" Values held by fewer than {float(min_weight):g} rows are shown but never "
        "flagged: their bands are too wide to say anything."
    )


def _interaction_count(audit):
    model = getattr(audit, "outcome_", None)
    features = getattr(model, "term_features_", None)
    if features is None:
        return 0
    return sum(1 for term in features if len(term) == 2)


def _test_table(test):
    table = test[["estimate", "low", "high"]].copy()
    # the rank correlations carry no p-value (CompareAudit.missing_feature_test says why)
    table["p-value"] = [
        "not a test" if method != "pearson" and p != p else format_p_value(p, b)
        for method, p, b in zip(test.index, test["p_value"], test["n_bootstrap"])
    ]
    table.index.name = "correlation"
    return table


def _headline(comparison, flags, confidence, blocks=None, min_weight=None, runs=None):
    """The findings' first line: values (and cells) flagged, and the coarse interaction
    blocks and the thin numeric features' runs flagged when the audit compared them (a
    flagged block or run is a finding too)."""
    raw = int(comparison["significant"].sum()) if "significant" in comparison else int(flags.sum())
    families = (
        "; main effects and interaction cells adjusted apart"
        if "kind" in comparison and comparison["kind"].nunique() > 1
        else ""
    )
    unbanded = min_weight is not None and _lacks_bands(comparison, min_weight)
    tested = (
        f", {int(comparison['testable'].sum())} of them "
        + ("testable: held by enough rows, with a standard error" if unbanded else
           "held by enough rows to be tested")
        if "testable" in comparison
        else ""
    )  # fmt: skip
    text = (
        f"{int(flags.sum())} of {len(comparison)} term values differ between the mimic and the "
        f"outcome model after the Benjamini-Hochberg adjustment ({raw} before it, at "
        f"{100 * confidence:g}% confidence{families}{tested})."
    )
    if blocks is not None and len(blocks):
        n_terms = blocks["term"].nunique()
        text += (
            f" On coarse blocks, {int(blocks['significant_bh'].sum())} of {len(blocks)} blocks "
            f"of {_plural(n_terms, 'interaction')} differ after the adjustment "
            f"({int(blocks['significant'].sum())} before it)."
        )
    if runs is not None and len(runs):
        n_terms = runs["term"].nunique()
        text += (
            f" On runs of adjacent values, {int(runs['significant_bh'].sum())} of {len(runs)} "
            f"runs of the {_plural(n_terms, 'feature')} too thin to test value by value differ "
            "after the adjustment "
            f"({int(runs['significant'].sum())} before it)."
        )
    return text


def _plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _unstable_text(stability):
    unstable = stability[stability["unstable"]]
    names = [f"{t} ({m})" for m, t in zip(unstable["model"], unstable["term"])]
    listed = ", ".join(names) or "none"
    return f"Terms unstable across refits (not to be read alone): {listed}."


def _missing_feature_test(audit, n_bootstrap=1000):
    """The audit's missing-feature test at its current ``confidence``.

    The stored table (``missing_feature_test_``) when it was computed at that confidence; else
    the test is run (again): with as many resamples as the stored table had, so that with a
    seeded audit the same replicates give the same estimate and p-value and only the interval
    moves to the new level; with ``n_bootstrap`` resamples when it was never run.
    """
    test = getattr(audit, "missing_feature_test_", None)
    settings = getattr(audit, "_missing_feature_test_settings_", None)
    if test is not None:
        if settings is None or settings["confidence"] == audit.confidence:
            return test
        n_bootstrap = settings["n_bootstrap"]
    return audit.missing_feature_test(n_bootstrap=n_bootstrap)


def _check_report_arguments(n_bootstrap, description, fidelity, rule_tree, rule_fidelity):
    """Refuse bad report arguments before the report's work (the test, the pictures)."""
    from sklearn_distill.audit import MIN_BOOTSTRAP

    check_integer("n_bootstrap", n_bootstrap, minimum=MIN_BOOTSTRAP)
    for name, value in (("description", description), ("fidelity", fidelity)):
        if value is not None and not isinstance(value, Mapping):
            fail(name, "a dict of {label: value} lines, or None", value, TypeError)
    if rule_tree is not None:
        if not callable(getattr(rule_tree, "rules", None)):
            fail(
                "rule_tree",
                "a fitted DistilledTree (a model with rules()), or None",
                rule_tree,
                TypeError,
            )
        check_is_fitted(rule_tree)
    if rule_fidelity is not None and not (
        isinstance(rule_fidelity, Mapping) and "r2" in rule_fidelity
    ):
        fail(
            "rule_fidelity",
            "a dict with an 'r2' entry (DistilledTree.fidelity's), or None",
            rule_fidelity,
            TypeError,
        )


def _check_rule_tree(audit, rule_tree) -> None:
    """The rules are shown as the audit's score on the audit's rows, calibrated as for the
    mimic: a tree fitted on other rows, features or scale would be printed as if it were."""
    rows = len(getattr(audit, "mimic_residuals_", ()))
    fitted_rows = getattr(rule_tree, "n_fit_rows_", None)
    if fitted_rows is not None and rows and fitted_rows != rows:
        fail("rule_tree", f"a tree fitted on the audit's {rows} rows", f"one of {fitted_rows} rows")
    names = getattr(audit, "feature_names_in_", None)
    tree_names = getattr(rule_tree, "feature_names_in_", None)
    if getattr(rule_tree, "n_features_in_", audit.n_features_in_) != audit.n_features_in_ or (
        names is not None
        and tree_names is not None
        and [str(n) for n in names] != [str(n) for n in tree_names]
    ):
        shown = list(tree_names) if tree_names is not None else rule_tree.n_features_in_
        fail(
            "rule_tree",
            f"a tree fitted on the audit's features ({audit.n_features_in_})",
            f"one fitted on {shown}",
        )
    audited = (getattr(audit, "_fit_fingerprints_", None) or {}).get("X")
    tree_rows = getattr(rule_tree, "_fit_fingerprint_", None)
    if audited is not None and tree_rows is not None and audited != tree_rows:
        fail(
            "rule_tree", f"a tree fitted on the audit's X ({rows} rows)", "one fitted on other rows"
        )
    settings = getattr(audit, "fit_settings_", None) or {}
    calibration = settings.get("calibration", getattr(audit, "calibration", None))
    # what it was fitted with (fit_settings_, not parameters set since): a calibrator exactly
    # when a calibration was set at fit, and no temperature (it softens the probabilities)
    tree_settings = getattr(rule_tree, "fit_settings_", None) or {}
    tree_calibration = tree_settings.get("calibration", getattr(rule_tree, "calibration", None))
    fitted_calibrated = getattr(rule_tree, "calibrator_", None) is not None
    if fitted_calibrated != (calibration is not None) or tree_calibration != calibration:
        fail(
            "rule_tree",
            f"a tree of the score calibrated as the audit's mimic (calibration={calibration!r})",
            f"calibration={tree_calibration!r}",
        )
    # the calibration folds keep the audit's records together, as the mimic's do: folds that
    # split a record give its rows targets made from their copies' labels (optimistic rules)
    records = (getattr(audit, "_fit_fingerprints_", None) or {}).get("groups")
    if calibration is not None and fitted_calibrated and records is not None:
        tree_records = getattr(rule_tree, "_fit_records_", None)
        if tree_records != records:
            fail(
                "rule_tree",
                "a tree whose calibration folds keep the audit's records together (fit it with "
                "groups=, the record identifiers given to the audit)",
                "one fitted without groups"
                if tree_records is None
                else "one fitted with other record identifiers",
            )
    temperature = tree_settings.get("temperature", getattr(rule_tree, "temperature", 1.0))
    if float(temperature) != 1.0:
        fail(
            "rule_tree",
            "a tree fitted with temperature=1.0 (its rules are shown as the score's P(event))",
            f"temperature={temperature!r}",
        )
    # how the score was read (a probability as its log-odds, or as given): a tree of the raw
    # probabilities beside a mimic of their log-odds would be printed as if on the mimic's scale
    mimic_response = getattr(getattr(audit, "mimic_", None), "response_", None)
    tree_response = getattr(rule_tree, "response_", None)
    if mimic_response is not None and tree_response is not None and tree_response != mimic_response:
        fail(
            "rule_tree",
            f"a tree of the score read as the audit's mimic reads it (response={mimic_response!r})",
            f"response={tree_response!r}",
        )


def quiet_compare(audit, **kwargs):
    """``audit.compare(**kwargs)`` without its warning about untested features, which the
    findings state in words."""
    import warnings

    from sklearn_distill.audit import UNTESTED_INTERACTIONS_WARNING, UNTESTED_WARNING

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape(UNTESTED_WARNING))
        warnings.filterwarnings("ignore", message=re.escape(UNTESTED_INTERACTIONS_WARNING))
        return audit.compare(**kwargs)


def _explainable_boosting(audit) -> bool:
    """Whether the audit's mimic and outcome model are Explainable Boosting models (term
    scores to pool into blocks and runs; the comparisons of pooled values refuse others)."""
    models = (
        getattr(getattr(audit, "mimic_", None), "student_", None),
        getattr(audit, "outcome_", None),
    )
    return all(hasattr(model, "term_scores_") for model in models)


def _block_comparison(audit):
    """:meth:`CompareAudit.compare_interactions` when the audit's models hold interactions
    (None otherwise, or when they are not Explainable Boosting models)."""
    if _interaction_count(audit) == 0 or not _explainable_boosting(audit):
        return None
    # any error of the comparison itself is the caller's to see, not a finding dropped
    return audit.compare_interactions()


def _block_label(row):
    first, second = row.features
    return f"{first} {row.label[0]}, {second} {row.label[1]}"


def _block_texts(blocks) -> list[str]:
    """Findings from the coarse comparison of the interactions: one line per term with
    flagged blocks, or one line saying none differs after the adjustment (with the count
    before it and the largest difference)."""
    if blocks is None or blocks.empty:
        return []
    flagged = blocks[blocks["significant_bh"].to_numpy(bool)]
    raw = blocks[blocks["significant"].to_numpy(bool)]
    lines = []
    for term, part in flagged.groupby("term", sort=False):
        total = int((blocks["term"] == term).sum())
        before = int((raw["term"] == term).sum())
        # the flagged block of largest difference, as summary() names it
        row = part.loc[part["difference"].abs().idxmax()]
        count = f"{len(part)} of {_plural(total, 'block')}"
        lines.append(
            f"{term}, on coarse blocks: {count} differ{'s' if len(part) == 1 else ''} after the "
            f"adjustment ({before} before it); the largest, {_block_label(row)}: mimic "
            f"{row.mimic:.3f}, outcome {row.outcome:.3f} (adjusted p "
            f"{format_p_value(row.p_value_bh)}, {row.weight:.0f} rows)"
        )
    if lines:
        return lines
    rows = float(np.median(blocks["weight"]))
    if not blocks["testable"].to_numpy(bool).any():
        if "difference_lower" in blocks and blocks["difference_lower"].isna().all():
            return [
                f"No interaction block could be tested: none of the {len(blocks)} blocks has "
                "a standard error (the models' bags give no confidence bands: fit them with at "
                "least 2 outer bags and a validation share)."
            ]
        return [
            f"No interaction block could be tested: each of the {len(blocks)} blocks holds "
            f"fewer rows than min_weight (median {rows:.0f})."
        ]
    where = sorted(raw["term"].unique())
    before = (
        f"{len(raw)} differed before it, in {', '.join(where)}"
        if len(raw)
        else "none differed even before it"
    )
    text = (
        f"No interaction block differs after the adjustment ({len(blocks)} blocks of "
        f"{_plural(blocks['term'].nunique(), 'interaction')}, median {rows:.0f} rows per "
        f"block; {before})"
    )
    largest = _largest(blocks, 1)
    if len(largest):
        row = largest.iloc[0]
        text += (
            f". The clearest difference (largest standardised), {row.term} at "
            f"{_block_label(row)}: mimic "
            f"{row.mimic:.3f}, outcome {row.outcome:.3f} (p {format_p_value(row.p_value)}, "
            f"adjusted {format_p_value(row.p_value_bh)})"
        )
        if bool(row.significant):
            text += (
                ": significant alone, not among all the blocks tested. The bands rest on a "
                "few bags each, so such a difference can be flagged, or not, with another "
                "random_state; read it as a place to look"
            )
    return [text + "."]


def _labelled_blocks(blocks):
    """The block table with one readable label per block (for the compact tables)."""
    if blocks is None or blocks.empty:
        return None
    labels = [" x ".join(str(part) for part in label) for label in blocks["label"]]
    return blocks.assign(label=labels)


def _score_copy_text(audit) -> list[str]:
    """One finding naming the features that copy the score (``score_copies_``), if any."""
    copies = getattr(audit, "score_copies_", None) or {}
    if not copies:
        return []
    nominal = set(getattr(audit, "_nominal_score_copies_", ()))
    two_valued = getattr(audit, "_score_copy_measure_", None) == "share"

    def measure(name):
        if two_valued:  # the share of each score value's rows that the feature's value gives
            return "fixes the score on a share"
        return "correlation ratio" if name in nominal else "Spearman"

    listed = ", ".join(f"{name} ({measure(name)} {rho:.3f})" for name, rho in copies.items())
    return [
        f"The score is a function of one feature alone, or nearly: {listed}. If the column was "
        "derived from the score (an export of it), the audit compares the score with itself "
        "and differences in the other features shrink or vanish: audit without it."
    ]


def _taken_score_falls_text(audit, event) -> list[str]:
    """The caveat of a score mimicked uncalibrated that clearly falls as the event becomes
    likelier (``fit`` warned): it most likely scores the other label."""
    falls = getattr(audit, "_taken_score_falls_", None)
    if not falls:
        return []
    rho, p_value = falls
    return [
        f"The score falls as the outcome event ({event}) becomes likelier (rank correlation "
        f"with the outcome {rho:.2f}, p = {p_value:.2g}), but with no calibration it was "
        "mimicked as given, as "
        f"rising with {event}. If it scores the other outcome, the mimic's shapes run opposite "
        "to the outcome model's and every difference has the wrong sign: fit the audit with "
        "a calibration (calibration='isotonic'; on the command line --calibration isotonic), "
        "which maps a falling score by a decreasing function, or with the score's own event "
        "as the outcome event."
    ]


def _data_caution_texts(audit, data_notes=None) -> list[str]:
    """What ``fit`` warned of the data (numbers written as text, categories of nearly one row
    each, empty columns, values or names that read alike, ' & ' in names, values matched to
    rows of other labels): each qualifies the findings about the features it names. An empty
    column, or one of nearly a level per row, that the command line's own note already names
    as unsafe (``data_notes``) is not said again."""
    unsafe = " ".join(
        note for note in data_notes or [] if note.startswith("Features that look unsafe")
    )
    texts = []
    for message in getattr(audit, "_data_cautions_", None) or []:
        if unsafe and ("no value on any row" in message or "nearly one level per row" in message):
            named = re.findall(r"'((?:[^'\\]|\\.)*)'", message.split(":", 1)[0])
            if named and all(f"{name} (" in unsafe for name in named):
                continue
        texts.append("Data: " + in_feature_terms(message))
    return texts


def in_feature_terms(message: str, names: str = "The data have feature names") -> str:
    """A data check's message about the features: "Feature 'age' ..." for the Python API's
    "X column 'age' ...", and ``names`` for "X has column names" (the command line says "The
    file has column names")."""
    for python, reader in (
        ("X columns ", "Features "),
        ("X column ", "Feature "),
        ("X has column names", names),
    ):
        if message.startswith(python):
            return reader + message[len(python) :]
    return message


def _low_fidelity_text(audit) -> list[str]:
    """``fit``'s advice when the mimic reproduces almost none of the score: the score and the
    rows may not belong together."""
    if not getattr(audit, "_low_fidelity_", False):
        return []
    return [
        "A mimic this far from the score often means the scores and the rows do not belong "
        "together: check that each row's score is the black box's score of that row (given in "
        "the rows' order) and that the features are what the black box was given."
    ]


def _teacher_caution_texts(audit) -> list[str]:
    """What ``fit`` warned of the teacher's scores: a classifier read by its predicted labels,
    class probabilities whose rows do not sum to 1, or probabilities at 0 or 1 whose log-odds
    are clipped (each qualifies every shape)."""
    from sklearn_distill.audit import labels_mimicked_text, saturated_text

    texts = []
    mimic = getattr(audit, "mimic_", None)
    if getattr(audit, "_labels_mimicked_", False):
        texts.append(labels_mimicked_text(audit.teacher))
    rows = getattr(audit, "_not_distributions_", None)
    if rows:
        texts.append(
            "The score's columns were read as class probabilities (response='predict_proba'), "
            f"but {rows}: one-vs-rest or multi-label scores? Each row is read as a "
            "distribution (renormalised: the log-ratio of its two columns), which is not what "
            "these scores say. Give the black box's softmax probabilities, or the event's "
            "column alone."
        )
    share = getattr(audit, "_saturated_share_", None)
    if share is not None and mimic is not None:
        texts.append(saturated_text(share, mimic.proba_clip))
    return _in_option_terms(audit, texts)


def _calibration_caution_texts(audit) -> list[str]:
    """What ``fit`` warned of the calibration map (steps of rate 0 or 1, a map that misses the
    outcome rates, one curve for a relation that is not one): each qualifies every shape."""
    texts = []
    for message in getattr(audit, "_calibration_cautions_", None) or []:
        texts.append(
            "Calibration: "
            + message[0].upper()
            + message[1:].replace("plot_calibration()", "'Calibration of the score' below")
        )
    return texts


def _collinear_text(audit) -> list[str]:
    """The caveat of features that nearly determine each other (``fit`` warned), beside the
    flags it qualifies."""
    listed = getattr(audit, "_collinear_features_", None)
    if not listed:
        return []
    # a figure without a measure named beside it, "(0.97)", is Spearman's correlation
    spearman = re.search(r"\(-?\d+\.\d+\)", listed) is not None
    measure = " (Spearman's correlation where no other measure is named)" if spearman else ""
    return [
        f"Features that nearly determine each other: {listed}{measure}. The mimic and the "
        "outcome model can split a shared "
        "effect between such features differently, so a value of one can be flagged while "
        "their sum agrees, or a difference be missed (on generated worlds with nothing to "
        "find and three numeric features correlated at 0.95, 6 of 60 audits flagged some "
        "value, against 5%): read their shapes together."
    ]


def _untested_text(audit, comparison, runs=None) -> list[str]:
    """One finding naming the main effects whose values are mostly too thin to test, and the
    finding on ``runs``, their :meth:`CompareAudit.compare_runs` table (see
    :func:`_run_comparison`), when given."""
    from sklearn_distill.stats import untested_terms

    if not {"term", "kind", "weight", "testable"} <= set(comparison.columns):
        return []  # a table from elsewhere, without the rows per value
    untested = untested_terms(comparison)
    untested = untested[untested["kind"] == "main"]
    if untested.empty:
        return []
    rows = comparison[comparison["term"].isin(untested["term"]) & ~comparison["testable"]]
    thin = bool((rows["weight"].to_numpy(float) < audit.min_weight).any())
    no_bands = _lacks_bands(comparison, audit.min_weight)
    why = f"held by fewer than min_weight={audit.min_weight:g} rows"
    if no_bands:
        bands = "without a standard error (the models' bags give no confidence bands)"
        why = f"{why}, or {bands}" if thin else bands
    advice = []
    if thin or not no_bands:
        advice.append(
            "Fit the audit with student=/outcome= Explainable Boosting models of fewer "
            "max_bins, or lower min_weight (on the command line: --max-bins N, --min-weight W)."
        )
    if no_bands:
        advice.append(
            "Fit student= and outcome= with at least 2 outer bags and a validation share "
            "(outer_bags >= 2, validation_size > 0), so that their values get confidence bands."
        )
    runs = _run_texts(runs)
    return (
        _in_option_terms(
            audit,
            [
                "Not tested (value by value; most rows outside each feature's missing-value bin and "
                f"its most common value lie in values {why}, which "
                "are never flagged; a difference there would go unseen"
                + (", except on the runs below" if runs else "")
                + "): "
                + "; ".join(untested["text"])
                + ". "
                + " ".join(advice)
            ],
        )
        + runs
    )


def _run_comparison(audit, comparison, runs=5):
    """:meth:`CompareAudit.compare_runs` of the numeric and ordinal features whose values are
    mostly too thin to test, ``runs`` runs per feature (None when there are none, when
    ``runs`` is None, or when the models are not Explainable Boosting models). A report
    computes it once and passes the table to the headline and the findings."""
    thin_terms = getattr(audit, "_thin_ordered_terms", None)
    if runs is None or thin_terms is None:
        return None
    # the one case without runs: models that are not Explainable Boosting models (those
    # compare_runs() refuses); any other error is the caller's to see, not a finding dropped
    if not _explainable_boosting(audit):
        return None
    terms = thin_terms(comparison)
    return audit.compare_runs(runs=runs, terms=terms) if terms else None


def _check_runs(runs):
    """``runs`` as the report takes it: an integer of at least 2, or None."""
    return None if runs is None else check_integer("runs", runs, minimum=2)


def _run_texts(runs) -> list[str]:
    """One finding on the thin numeric features compared on runs of adjacent values (``runs``,
    :func:`_run_comparison`'s table, or None): the runs that differ after the adjustment, or
    that none does (with the largest difference)."""
    if runs is None or runs.empty:
        return []
    parts = []
    for term, part in runs.groupby("term", sort=False):
        flagged = part[part["significant_bh"].to_numpy(bool)]
        tested = part[part["testable"].to_numpy(bool)]
        if len(flagged):
            row = flagged.loc[flagged["difference"].abs().idxmax()]
            labels = ", ".join(map(str, flagged.sort_values("run")["label"]))
            parts.append(
                f"{term}: {labels} differ{'s' if len(flagged) == 1 else ''} (the largest, "
                f"{row.label}: mimic {row.mimic:.3f}, outcome {row.outcome:.3f}, adjusted p "
                f"{format_p_value(row.p_value_bh)})"
            )
        elif len(tested):
            row = tested.loc[tested["difference"].abs().idxmax()]
            parts.append(
                f"{term}: no run differs (the largest difference, {row.label}: "
                f"{row.difference:+.3f}, adjusted p {format_p_value(row.p_value_bh)})"
            )
        else:
            parts.append(f"{term}: no run could be tested")
    per_term = runs.groupby("term", sort=False)["run"].size().max()
    rows = float(np.median(runs["weight"]))
    return [
        f"On runs of adjacent values (up to {per_term} runs per feature, of "
        f"about {rows:.0f} rows, the missing-value bin apart; adjusted as one family): "
        + "; ".join(parts)
        + ". A run's mean shows a difference that keeps its sign along the run; one that "
        "changes sign inside a run averages out, and a run not flagged is no proof that the "
        "shapes agree."
    ]


def _in_option_terms(audit, texts) -> list[str]:
    """``texts`` with their remedies in the terms of the caller's options: the command line
    gives its audit ``_option_terms_`` (how its printed warnings rephrase the Python API's
    ``min_weight=10`` and ``calibration='isotonic'`` as ``--min-weight 10`` and
    ``--calibration isotonic``); the Python API's texts are left as they are."""
    rephrase = getattr(audit, "_option_terms_", None)
    return texts if rephrase is None else [rephrase(text) for text in texts]


def _calibration_scale_text(audit) -> str:
    """What the calibration does to the size of the score's effects (empty when the score was
    mimicked as it is)."""
    if _fitted_setting(audit, "calibration") is None:
        return ""
    return (
        " The mimic reads the score through this map, so its shapes are in log-odds of the "
        "outcome event as the score predicts it, not in the score's own units. When the score "
        "is itself a log-odds and holds something the outcome does not (a bias, noise), the "
        "outcome rises more slowly along the score than the score does: the map is flatter "
        "than the score's own log-odds, and every effect of the score, a bias included, reads "
        "smaller than the score gives it (on generated worlds a bias of 0.74 log-odds on one "
        "region read as 0.64 through the spline map and 0.59 when the score was given as "
        "deciles through the isotonic one, 0.74 uncalibrated: "
        "benchmarks/audit_calibration_scale.py); an under-confident score reads larger. The "
        "differences compare both models on this common scale; they can understate how far "
        "the score itself departs from the outcome."
    )


def _calibration_sign(audit):
    """+1 when the audit's calibration read its score as rising with the outcome event, -1
    when falling, None when the score was not calibrated."""
    from sklearn_distill._calibration import calibration_direction

    calibrator = getattr(getattr(audit, "mimic_", None), "calibrator_", None)
    return None if calibrator is None else calibration_direction(calibrator)


def _score_reading(audit):
    """How the audit's calibration read the score; with no calibration, how the score was read
    when that was not as given in log-odds (a probability, a score on its own scale), else
    None."""
    sign = _calibration_sign(audit)
    if sign is None:
        if getattr(audit, "_score_in_unit_interval_", False):
            return (
                "a plain score, mimicked as given on its own scale although it lies in [0, 1] "
                "as a probability does: not as log-odds (no calibration)"
            )
        if _score_on_own_scale(audit):
            return (
                "a plain score, mimicked as given on its own scale: not as log-odds, which its "
                f"values do not look like (they {audit._score_unlike_log_odds_}; no calibration)"
            )
        if getattr(getattr(audit, "mimic_", None), "response_", None) == "predict_proba":
            return "a probability of the outcome event, mimicked as its log-odds (no calibration)"
        return None
    if sign > 0:
        weak = getattr(audit, "_weak_fall_", None)
        if weak:
            return (
                "rising as the outcome event becomes likelier: an increasing calibration, "
                "although in these data it falls weakly as the event becomes likelier (rank "
                f"correlation with the outcome {weak[0]:.2f}, p = {weak[1]:.2g}: not a clear "
                "fall, so it is read as a risk score; if the score falls by design, negate it "
                "before the audit)"
            )
        return "rising as the outcome event becomes likelier: an increasing calibration"
    return "falling as the outcome event becomes likelier: a decreasing calibration"


def _calibration_figure(audit, event, outcome=None):
    """The audit's calibration picture, its probability axis named by the event (and the
    outcome's name: ``P(two_year_recid = 1)``; ``P(outcome = 1)`` without one)."""
    figure = audit.plot_calibration()
    figure.axes[0].set_ylabel(f"P({outcome or 'outcome'} = {event})", parse_math=False)
    return figure


def audit_findings_text(audit, *, fidelity=None, max_terms=8, width=100, runs=5):
    """What a fitted audit found, as plain text for a terminal.

    The same findings, in the same words, as the top of :func:`audit_report_sections`: the
    mimic's fidelity and what it means for reading its shapes, the values where the black box
    and the outcome differ after the Benjamini-Hochberg adjustment (per term), the
    missing-feature verdict with its caveats, and the unstable terms when
    :meth:`CompareAudit.stability` was run.

    Parameters
    ----------
    audit : CompareAudit
        A fitted audit; its missing-feature test is run (1,000 resamples) if it has not been,
        and run again if the audit's ``confidence`` has changed since (with the resamples it
        had: see :func:`audit_report_sections`).
    fidelity : dict, optional
        See :func:`audit_report_sections`.
    max_terms : int, default=8
        Terms listed at most; the others are counted.
    width : int, default=100
        Line width.
    runs : int or None, default=5
        Runs of adjacent values per feature on which the numeric and ordinal features whose
        values are mostly too thin to test are compared
        (:meth:`CompareAudit.compare_runs`); ``None`` leaves the runs out.

    Returns
    -------
    str
    """
    import textwrap

    from sklearn_distill.stats import summarize_terms

    runs = _check_runs(runs)
    test = _missing_feature_test(audit)
    if fidelity is None:
        fidelity = getattr(audit, "fidelity_", None)
    comparison = quiet_compare(audit)
    run_table = _run_comparison(audit, comparison, runs)
    flag = _flag_column(comparison)
    flags = comparison[flag].to_numpy(bool)

    def block(title, lines):
        out = [title]
        for line in lines:
            # an option stays whole (--min-weight, not "--min-" and "weight" on two lines)
            out.append(
                textwrap.fill(
                    line,
                    width,
                    initial_indent="  - ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
        return "\n".join(out)

    terms = list(summarize_terms(comparison, flag=flag)["text"])
    untested = _untested_text(audit, comparison, run_table)
    if not terms:
        # nothing flagged: say where the two models differ most, and that it is not a finding
        largest = _largest(comparison[~_is_interaction(comparison).to_numpy(bool)], 3)
        for row in largest.itertuples():
            value = _format_value(getattr(row, "label", row.value))
            p_text = format_p_value(getattr(row, "p_value_bh", row.p_value))
            terms.append(
                f"not flagged, the largest: {row.term} {value}: mimic {row.mimic:.3f}, outcome "
                f"{row.outcome:.3f} (adjusted p {p_text})"
            )
    if len(terms) > max_terms:
        more = len(terms) - max_terms
        terms = [*terms[:max_terms], f"... and {more} more terms (see the report)"]
    blocks = _block_comparison(audit)
    terms = [*_score_copy_text(audit), *terms, *untested]
    terms += _block_texts(blocks)
    verdict, caveats = _missing_feature_texts(audit, test)
    headline = _headline(
        comparison,
        flags,
        audit.confidence,
        blocks,
        getattr(audit, "min_weight", None),
        run_table,
    )
    own_scale = _score_on_own_scale(audit)
    parts = [
        block(
            "How faithful the mimic is:",
            _fidelity_paragraphs(fidelity, _scale_of(audit))[:1]
            + _scale_texts(audit)
            + (_attenuation_text(fidelity) if fidelity and not own_scale else []),
        ),
        block("Where the black box and the outcome differ:", [headline, *terms]),
        block(
            "Missing-feature test:",
            [verdict, *(["Caveats: " + " ".join(caveats)] if caveats else [])],
        ),
    ]
    stability = getattr(audit, "stability_", None)
    if stability is not None:
        parts.append(block("Stability:", [_unstable_text(stability)]))
    return "\n\n".join(parts)


def audit_report_sections(
    audit, *, n_bootstrap=1000, description=None, fidelity=None, rule_tree=None,
    rule_fidelity=None, event=None, data_notes=None, outcome=None, runs=5,
):  # fmt: skip
    """The sections of a :class:`~sklearn_distill.CompareAudit`'s HTML report, in reading order.

    The report opens with how faithful the mimic is (which says how far its shapes can be
    read as the black box's), then what the audit found, the largest differences of main
    effects and of interactions side by side, the missing-feature test with its caveats, the
    pictures, the stability of the terms, and last the comparison table: flagged values
    first, the whole table behind a ``<details>`` element.

    Parameters
    ----------
    audit : CompareAudit
        A fitted audit. Its stored missing-feature test (``missing_feature_test_``) is shown
        when it was computed at the audit's current ``confidence``; when the confidence has
        changed since (``set_params(confidence=...)``), the test is run again at the new level,
        with as many resamples as it had (a seeded audit then draws the same resamples: the
        estimate and p-value stay, the interval moves), and the stored table is replaced.
    n_bootstrap : int, default=1000
        Resamples of :meth:`CompareAudit.missing_feature_test` if it has not been run (at
        least 20).
    description : dict, optional
        Extra key/value lines (the data file, score and label columns), shown escaped under
        "Audit settings"; a key that is one of the report's own settings (``"rows"``,
        ``"outcome event"``, ...) replaces its value there.
    fidelity : dict, optional
        The mimic's fidelity (``"r2"``, ``"rmse"``, optionally ``"agreement"``, ``"auc"``,
        ``"r2_out_of_fold"``, ``"rmse_out_of_fold"``, which the note on attenuation reads
        before ``"rmse"``); by default the audit's ``fidelity_`` when it has one.
    rule_tree : DistilledTree, optional
        A :class:`~sklearn_distill.DistilledTree` fitted to the same score on the same rows
        (a few leaves, the audit's calibration and ``response``, no temperature, and, for an
        audit fitted with ``groups``, calibrated with the same records:
        ``fit(..., groups=...)``; another is refused): its rules are shown before the shapes.
    rule_fidelity : dict, optional
        ``rule_tree.fidelity(X, teacher_scores)``, to say how much of the score the rules hold.
    event : str, optional
        The outcome event's name, where the audit was fitted on 0/1 codes of a label (the
        command line's ``--event``); by default the audit's ``classes_[1]``.
    outcome : str, optional
        The outcome's (label's) name, so that the event reads ``"two_year_recid = 1"``; by
        default the name of the pandas Series ``y`` given to fit, if any.
    data_notes : list of str, optional
        What a reader must know about the data the audit was given (rows left out, columns
        that look unsafe), listed first among the findings.
    runs : int or None, default=5
        Runs of adjacent values per feature on which the numeric and ordinal features whose
        values are mostly too thin to test are compared (:meth:`CompareAudit.compare_runs`,
        once for the headline, the findings and the shapes); ``None`` leaves the runs out.

    Returns
    -------
    list of Section
    """
    from sklearn_distill.plotting import interaction_limits, plot_comparison, plot_interaction
    from sklearn_distill.stats import summarize_terms

    _check_report_arguments(n_bootstrap, description, fidelity, rule_tree, rule_fidelity)
    runs = _check_runs(runs)
    if rule_tree is not None:
        _check_rule_tree(audit, rule_tree)
    if data_notes is not None and (
        isinstance(data_notes, str) or not all(isinstance(n, str) for n in data_notes)
    ):
        fail("data_notes", "a list of str, or None", data_notes, TypeError)
    event = str(audit.classes_[1] if event is None else event)
    if outcome is None:  # the name of the Series y given to fit, if any
        outcome = getattr(audit, "_outcome_name", None)
    if outcome is not None and not isinstance(outcome, str):
        fail("outcome", "the outcome's name, a str", outcome, TypeError)
    # the event as the report names it, and its value alone (the calibration's axis)
    value, event = event, event if outcome is None else f"{outcome} = {event}"
    reading = _score_reading(audit)
    test = _missing_feature_test(audit, n_bootstrap)
    if fidelity is None:
        fidelity = getattr(audit, "fidelity_", None)
    comparison = quiet_compare(audit, interactions=True)
    flag = _flag_column(comparison)
    flags = comparison[flag].to_numpy(bool)
    pairs = _is_interaction(comparison).to_numpy(bool)
    main, interactions = comparison[~pairs], comparison[pairs]
    level = f"{100 * audit.confidence:g}%"
    # the features as the tables name them (a frame's labels that are not strings, an array's
    # feature_0000, ...); an audit fitted before these were kept names string columns only
    features = getattr(audit, "_feature_labels", None)
    if features is None:
        features = list(map(str, getattr(audit, "feature_names_in_", [])))
    rows = len(audit.mimic_residuals_)

    data_line = (
        f"{rows} rows; {len(features) or audit.n_features_in_} features"
        + (f" ({', '.join(features)})" if features else "")
        + f"; outcome event: {event}"
        + (f" (the score was read as {reading})." if reading else ".")
    )
    sections = [
        Section(
            "How faithful the mimic is",
            paragraphs=[
                "A transparent model of the black-box score (the mimic) is compared with a "
                "transparent model of the observed outcome, "
                + (
                    "the outcome model in log-odds of the outcome, the mimic on the score's own "
                    "scale (see below). "
                    if _score_on_own_scale(audit)
                    else "both in log-odds of the outcome. "
                )
                + data_line,
                *_fidelity_paragraphs(fidelity, _scale_of(audit)),
                *_low_fidelity_text(audit),
                *_scale_texts(audit),
            ],
        )
    ]

    verdict, caveats = _missing_feature_texts(audit, test)
    n_resamples = int(test["n_bootstrap"].iloc[0])
    blocks = _block_comparison(audit)
    run_table = _run_comparison(audit, comparison, runs)
    headline = _headline(
        comparison,
        flags,
        audit.confidence,
        blocks,
        getattr(audit, "min_weight", None),
        run_table,
    )
    findings = [
        *(data_notes or []),
        *_data_caution_texts(audit, data_notes),
        *_taken_score_falls_text(audit, event),
        *_score_copy_text(audit),
        *_teacher_caution_texts(audit),
        *_calibration_caution_texts(audit),
        headline,
        *summarize_terms(comparison, flag=flag)["text"],
        *_collinear_text(audit),
        *_untested_text(audit, comparison, run_table),
        *_block_texts(blocks),
    ]
    stability = getattr(audit, "stability_", None)
    if stability is not None:
        findings.append(_unstable_text(stability))
    findings.append(verdict)
    sections.append(
        Section(
            "What the audit found",
            bullets=findings,
            paragraphs=[
                "A flagged value is one where the black box weighs a feature value, relative "
                "to the feature's average over the rows, unlike the outcome does: each term is "
                "centred on its weighted mean, so a bias on one value of a many-valued feature "
                "shifts every other value the opposite way (by the bias times the biased "
                "value's share of the rows) and can flag values the score treats as the outcome "
                "does. Read a term's largest difference first. The adjustment (terms first, "
                "then the values of each term that differs) keeps the expected share of false "
                f"flags among the flagged values at most {100 * (1 - audit.confidence):g}% "
                "however many values are compared; the bands are wide (about twice the "
                "shapes' spread over new data), so a difference must be clear to be flagged, "
                "and a value not flagged is not shown to agree." + _min_weight_text(audit)
            ],
        )
    )

    top_tables, none_testable = [], []
    for heading, values, noun in (
        ("Main effects", main, "main-effect value"),
        ("Interactions, cell by cell", interactions, "interaction cell"),
        ("Interactions, coarse blocks", _labelled_blocks(blocks), "interaction block"),
    ):
        if values is None or not len(values):
            continue
        largest = _largest(values)
        if largest.empty:  # a table of headers only: said in a sentence instead
            none_testable.append(f" No {noun} could be tested, so none is listed.")
            continue
        top_tables.append(
            Table(
                _compact(largest),
                heading=heading,
                formatters=_COMPACT_FORMATS,
                index=False,
                flag_column="flagged" if "significant_bh" in values else None,
            )
        )
    sections.append(
        Section(
            "Largest differences",
            paragraphs=[
                f"The {_TOP_ROWS} values with the largest standardised difference (mimic - "
                f"outcome, {_difference_units(audit)}) among those that could be tested, "
                "flagged ones highlighted. "
                + _interval_columns_text(level)
                + " 'rows' is the number of audit rows holding the value."
                + (
                    " Interactions are compared cell by cell and on coarse blocks (each axis "
                    "cut in up to 3 groups of bins holding about equal rows, a nominal feature "
                    "in its categories, or its two largest and the rest; missing values a group "
                    "of their own; a block's value is the "
                    "mean "
                    "over its rows of the surface purified of main effects): thin cells are "
                    "rarely testable, blocks hold hundreds of rows but show no detail finer "
                    "than a block."
                    if blocks is not None and len(blocks)
                    else ""
                )
                + "".join(none_testable)
                + _single_value_text(main)
            ],
            tables=top_tables,
            side_by_side=True,
        )
    )

    nothing = _nothing_to_correlate(audit, test)
    sections.append(
        Section(
            "Missing-feature test",
            verdict=verdict,
            paragraphs=[
                "Correlation of the residuals of the mimic (score - mimic) and of the outcome "
                "model (y - prediction), each pair from a mimic and an outcome model fitted on "
                "two other thirds of the rows (neither saw the row, nor each other's rows), "
                "adjusted, within each third of the rows (those the same two models "
                "judged), for a quadratic in the numeric features, indicators of the nominal "
                "features' levels, a cubic in the pair's mimic's prediction, each level's "
                "mean of that mimic's residual times that prediction and its square, and a "
                "cubic spline of each numeric feature; with "
                f"{level} bootstrap intervals and bootstrap p-values. "
                + (
                    f"With {n_resamples} resamples no p-value can be below "
                    f"{_round_up(2 / (n_resamples + 1)):g}, so one at that floor reads "
                    "'<= ...'. "
                    if n_resamples
                    else ""
                )
                + "Only Pearson's correlation tests 'nothing missing': rank correlations are not "
                "zero under that null, so Spearman's and Kendall's are shown for comparison "
                "with Tan et al., without a p-value.",
                *(["Caveats:"] if caveats else []),
            ],
            bullets=caveats,
            # with nothing to correlate there is no correlation to tabulate (NaN) and the
            # residuals are rounding: no table or picture of them
            tables=[] if nothing else [Table(_test_table(test))],
            figures=[] if nothing else [audit.plot_residuals()],
        )
    )

    if rule_tree is not None:
        sections.append(_rules_section(rule_tree, rule_fidelity, audit))
    if len(main):
        sections.append(
            Section(
                "Shape functions: mimic against outcome model",
                paragraphs=[
                    (
                        "Contribution of each feature value to the log-odds of the outcome "
                        f"event ({event}), with {level} bands. "
                        if not _score_on_own_scale(audit)
                        else "Contribution of each feature value: the mimic's to the score on "
                        "its own scale, not log-odds; the outcome model's to the log-odds of "
                        f"the outcome event ({event}); with {level} bands. "
                    )
                    + "A star marks a difference flagged after the Benjamini-Hochberg adjustment. "
                    "Axes of long-tailed features are cut at the 99th percentile of the rows "
                    "(the label says so); categorical terms show the values with the largest "
                    "differences."
                    + (
                        " The features too thin to test value by value are also drawn on runs "
                        "of adjacent values: each model's mean over a run as a thick segment "
                        "over the run's values, a black bar joining the two means of a run "
                        "that differs after the adjustment."
                        if run_table is not None and len(run_table)
                        else ""
                    )
                ],
                figures=[plot_comparison(main, ncols=2, runs=run_table)],
            )
        )
    if len(interactions):
        shown = _interactions_to_draw(interactions, flag)
        cell_limits = interaction_limits(comparison, shown)  # one colour scale for them all
        sections.append(
            Section(
                "Interactions: mimic against outcome model",
                paragraphs=[
                    "Each shared pairwise interaction as two heatmaps (mimic, outcome model, "
                    "same colour scale) and their difference; dots mark flagged cells. Every "
                    "interaction here is drawn on one colour scale, so a pale difference is "
                    "small beside the others. "
                    + (
                        f"Shown: the {len(shown)} interactions with the largest differences."
                        if len(shown) < interactions["term"].nunique()
                        else ""
                    )
                ],
                figures=[
                    plot_interaction(comparison, term, flag=flag, limits=cell_limits)
                    for term in shown
                ],
            )
        )
    if blocks is not None and len(blocks):
        shown = _interactions_to_draw(blocks, "significant_bh")
        block_limits = interaction_limits(blocks, shown)
        sections.append(
            Section(
                "Interactions on coarse blocks",
                paragraphs=[
                    "The same surfaces purified of main effects and averaged over coarse "
                    "blocks (each axis in up to 3 groups of bins holding about equal rows; a "
                    "nominal feature: its largest categories apart, the others pooled; missing "
                    "values a group of their own): a "
                    f"median of {float(np.median(blocks['weight'])):.0f} rows per block, all "
                    "on one colour scale. Dots mark blocks that differ after the adjustment."
                    + (
                        f" Shown: the {len(shown)} interactions with the largest differences."
                        if len(shown) < blocks["term"].nunique()
                        else ""
                    )
                ],
                figures=[plot_interaction(blocks, term, limits=block_limits) for term in shown],
            )
        )
    if getattr(audit, "calibration_table_", None) is not None:
        sections.append(
            Section(
                "Calibration of the score",
                paragraphs=[
                    "Observed outcome rate per score value, and the calibration map."
                    + _calibration_scale_text(audit)
                ],
                figures=[_calibration_figure(audit, value, outcome)],
            )
        )

    if stability is not None:
        sections.append(
            Section(
                "Stability across refits",
                paragraphs=[_stability_paragraph(audit)],
                tables=[Table(stability, flag_column="unstable", index=False)],
            )
        )
    else:
        sections.append(
            Section(
                "Stability across refits",
                paragraphs=[
                    "Not checked. Several additive models can fit the same data equally well "
                    "and tell different stories; run audit.stability(X, y, teacher_scores=...) "
                    "before report() (command line: --stability 5) to see which terms to trust."
                ],
            )
        )

    flagged_rows = comparison[flags]
    full = comparison.drop(columns=[c for c in ("bin_low", "bin_high") if c in comparison])
    full_formats = {"value": _format_raw_value, "label": _format_value, "weight": _format_weight}
    full_formats.update({c: format_p_value for c in ("p_value", "p_value_bh") if c in full})
    tables = []
    if len(flagged_rows):
        compact = _compact(flagged_rows.sort_values(["term", "p_value"]))
        tables.append(
            Table(
                compact.drop(columns="flagged", errors="ignore"),
                heading=f"Flagged values ({len(flagged_rows)})",
                formatters=_COMPACT_FORMATS,
                index=False,
            )
        )
    if blocks is not None and len(blocks):
        # the coarse blocks beside the values: a flagged block is a finding too
        named = blocks.assign(label=[_block_label(row) for row in blocks.itertuples()])
        flagged_blocks = named[named["significant_bh"].to_numpy(bool)]
        if len(flagged_blocks):
            tables.append(
                Table(
                    _compact(flagged_blocks.sort_values(["term", "p_value"])).drop(
                        columns="flagged", errors="ignore"
                    ),
                    heading=f"Flagged interaction blocks ({len(flagged_blocks)})",
                    formatters=_COMPACT_FORMATS,
                    index=False,
                )
            )
        block_formats = {"weight": _format_weight}
        block_formats.update({c: format_p_value for c in ("p_value", "p_value_bh")})
        tables.append(
            Table(
                named.drop(columns=[c for c in ("features", "block") if c in named]),
                heading=f"All {len(named)} interaction blocks, every column",
                formatters=block_formats,
                index=False,
                flag_column="significant_bh",
                hidden=True,
            )
        )
    tables.append(
        Table(
            full[~pairs],
            heading=f"All {int((~pairs).sum())} main-effect values, every column",
            formatters=full_formats,
            index=False,
            flag_column=flag,
            hidden=True,
        )
    )
    if pairs.any():
        tables.append(
            Table(
                full[pairs],
                heading=f"All {int(pairs.sum())} interaction cells, every column",
                formatters=full_formats,
                index=False,
                flag_column=flag,
                hidden=True,
            )
        )
    sections.append(
        Section(
            "Comparison table",
            paragraphs=[
                (
                    "Values flagged after the Benjamini-Hochberg adjustment; "
                    if len(flagged_rows)
                    else "No value is flagged after the Benjamini-Hochberg adjustment; "
                )
                + "the whole table, with the per-value p-values and bands, is behind the "
                "links below."
                + (
                    f" Differences are mimic - outcome, {_difference_units(audit)}. "
                    + _interval_columns_text(level)
                    if len(flagged_rows)
                    else ""
                )
            ],
            tables=tables,
        )
    )

    calibration = _fitted_setting(audit, "calibration")
    if calibration is None and _option_names(audit):
        calibration = "none"  # the command line's --calibration none
    settings = {
        "rows": rows,
        # the command line's as typed back after --features ('loan amount', --features=-x)
        _setting_name(audit, "features", "features"): (
            typed_back("--features", features)
            if "features" in _option_names(audit)
            else ", ".join(features) or audit.n_features_in_
        ),
        # the command line's --event as a shell takes it ('Charged Off'), then the label's name
        _setting_name(audit, "outcome event", "event"): (
            event
            if "event" not in _option_names(audit)
            else typed_back("--event", [value])
            if outcome is None
            else f"{typed_back('--event', [value])} (a value of {outcome})"
        ),
        **({"score read as": reading} if reading else {}),
        _setting_name(audit, "calibration of the score", "calibration"): calibration,
        _setting_name(audit, "calibration folds", "cv"): _fitted_setting(audit, "cv"),
        "three-way cross-fits (missing-feature test)": _fitted_setting(audit, "n_crossfits"),
        _setting_name(audit, "confidence level", "confidence"): level,
        # the runs the thin numeric features were compared on (the command line's --runs none)
        _setting_name(
            audit,
            "runs (runs of adjacent values per thin feature)",
            "runs",
            "runs of adjacent values per thin feature",
        ): (
            runs
            if runs is not None
            else "none"
            if "runs" in _option_names(audit)
            else "None (no runs compared)"
        ),
    }
    settings.update(_reproduction_settings(audit, test))
    settings.update(description or {})
    sections.append(Section("Audit settings", items=settings))
    return sections


def _option_names(audit) -> dict:
    """The caller's option of each parameter the report's settings show: the command line
    gives its audit ``_option_names_`` (``{"min_weight": "--min-weight", ...}``); empty for
    the Python API, whose report names the parameters."""
    return getattr(audit, "_option_names_", None) or {}


def _setting_name(audit, name, parameter, described=None):
    """A setting's name in the "Audit settings": ``name`` for the Python API; for the command
    line, ``described`` (by default ``name``) with the option that sets it,
    ``"rows to test a value (--min-weight)"``."""
    option = _option_names(audit).get(parameter)
    if option is None:
        return name
    return f"{described or name} ({option})"


def _whole(value):
    """A number as a user would type it: ``10`` for ``10.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fitted_setting(audit, name):
    """The parameter ``name`` the audit was fitted with (``fit_settings_``), not its current
    value, which ``set_params`` may have changed since; the current value for an audit fitted
    before the settings were recorded."""
    fitted = getattr(audit, "fit_settings_", None)
    if fitted is not None and name in fitted:
        return fitted[name]
    return getattr(audit, name, None)


def _stability_samples(done) -> str:
    """What :meth:`CompareAudit.stability` refitted on (``done``: its
    ``stability_settings_``): the same rows, or bootstrap samples of whole records (with
    ``groups``) or of the rows."""
    if not done["bootstrap"]:
        return "the same rows"
    resampled = done.get("resampled")
    if resampled == "records":
        return "bootstrap samples of whole records (groups)"
    if resampled == "rows apart from their records":
        return "bootstrap samples of the rows one by one"
    return "bootstrap samples of the rows"


def _stability_paragraph(audit) -> str:
    """What the stability table measured, and how to read its flags."""
    done = getattr(audit, "stability_settings_", None)
    if done is None or "shape_threshold" not in done:
        # a table stored by an earlier version, marked by its rule
        how = "across refits"
        if done is not None:
            rows = "bootstrap samples of the rows" if done["bootstrap"] else "the same rows"
            how = f"across {done['n_refits']} refits of both models on {rows}, with new seeds"
        threshold = "the threshold" if done is None else f"{done['threshold']:g}"
        return (
            f"Importance and shape of each term {how}. This table was computed by an earlier "
            "version, whose rule marked a term when its importance's coefficient of variation "
            f"or its shape noise exceeded {threshold}, or when its importance rank changed "
            "between refits; that rule marked most terms of an outcome model whose shapes were "
            "right (benchmarks/audit_stability.py). Run stability() again for the current "
            "rule."
        )
    rows = _stability_samples(done)
    split = ""
    if done["bootstrap"] and done.get("resampled") == "rows apart from their records":
        split = (
            " The audit was fitted with record identifiers (groups), but stability() was run "
            "without them: the rows of a record entered more than once were split between a "
            "sample and the rows it left out, so the refits agree more than samples of whole "
            "records would, and a term may look more stable than it is. Run stability() with "
            "the groups given to fit."
        )
    how = f"across {done['n_refits']} refits of both models on {rows}, with new seeds"
    threshold = f"{done['threshold']:g}"
    shape_threshold = f"{done['shape_threshold']:g}"
    return (
        f"Importance and shape of each term {how}.{split} A term is marked unstable when its "
        f"importance's coefficient of variation exceeds {threshold}, or its shape noise (the "
        f"spread between refits next to the shape's own spread) exceeds {shape_threshold}: "
        "then the refits disagree about the term about as much as the term varies. A term "
        "without effect is marked so (its shape is noise), and so is a weak effect whose size "
        "the rows do not pin down. Ranks that change between refits are shown but mark nothing "
        "(terms of about equal importance swap ranks). On generated worlds of 3,000 rows "
        "(benchmarks/audit_stability.py) the outcome model's terms with an effect of 0.4 "
        "log-odds per standard deviation or more, and a four-valued feature of effects -0.3 "
        "to 0.5, were never marked, the weakest (0.2) in 1-4 "
        "of 5 worlds, terms without effect in 4-5 of 5. Two near-copies of a feature that "
        "share one effect were never marked: refits of one algorithm split it the same way, "
        "so a term not marked is no proof that another model would not tell it otherwise. A "
        "marked term should not carry a conclusion on its own; the comparison's flags already "
        "allow for the spread between the models' bags."
    )


def _reproduction_settings(audit, test) -> dict:
    """What a reader needs to run the audit again: seeds, settings, versions, date."""
    import datetime
    import platform

    import interpret
    import numpy
    import scipy
    import sklearn

    import sklearn_distill

    pairs = getattr(audit, "interaction_pairs_", [])
    labels = getattr(audit, "_feature_labels", None)
    if labels is not None and getattr(audit, "_pairs", None) is not None:
        # by position, as the tables name them (an array's columns: feature_0000, ...)
        pairs = [tuple(labels[f] for f in pair) for pair in audit._pairs]
    shown = ", ".join(" & ".join(map(str, pair)) for pair in pairs)
    settings = {
        _setting_name(audit, "random_state", "random_state", "seed"): repr(
            _fitted_setting(audit, "random_state")
        ),
        _setting_name(
            audit, "min_weight (rows to test a value)", "min_weight", "rows to test a value"
        ): _whole(audit.min_weight),
        "interaction pairs": f"{len(pairs)}" + (f": {shown}" if pairs else ""),
        _setting_name(audit, "missing-feature test resamples", "n_bootstrap"): (
            # the resamples asked for: none was drawn, the test having nothing to correlate
            f"{getattr(audit, '_missing_feature_test_settings_', {}).get('n_bootstrap', 0)} "
            "(none drawn: the test had nothing to correlate)"
            if _nothing_to_correlate(audit, test)
            else int(test["n_bootstrap"].iloc[0])
        ),
    }
    settings.update(_model_settings(audit))
    residuals = getattr(audit, "mimic_residuals_", None)
    if residuals is not None:  # a fitted audit: its rows and records
        codes = getattr(audit, "_record_codes_", None)
        # the command line names its --groups column apart ("record identifiers (--groups)")
        settings["records" if _option_names(audit) else "records (groups)"] = (
            "not given: each row is read as a record of its own"
            if codes is None
            else f"{len(np.unique(codes))} records over {len(residuals)} rows: the rows of a "
            "record stay in one third of the missing-feature test's cross-fitting and its "
            "bootstrap draws whole records"
        )
    digests = getattr(audit, "_fit_fingerprints_", None)
    if digests is not None:
        named = {
            "X": "features",
            "y": "outcome (0/1)",
            "teacher_scores": "score",
            "groups": "records",
        }
        settings["data digests (of the values fit read)"] = (
            "; ".join(f"{named[k]} {v}" for k, v in digests.items() if v is not None)
            + " (BLAKE2b of the values in row order, column names and index left out: the "
            "same rows in the same order give the same digests)"
        )
    done = getattr(audit, "stability_settings_", None)
    if done is not None:
        rule = (
            f"threshold {done['threshold']:g}, shape threshold {done['shape_threshold']:g}"
            if "shape_threshold" in done
            else f"threshold {done['threshold']:g} for importance and shape, rank changes marked"
        )
        # what the refits resampled, as the stability paragraph says it
        samples = _stability_samples(done)
        if done["bootstrap"] and done.get("resampled") == "rows apart from their records":
            samples += ", not the records fit was given"
        refits = _setting_name(audit, "stability refits", "n_refits")
        settings[refits] = f"{done['n_refits']} ({samples}, {rule})"
    versions = {
        "interpretable-distill": sklearn_distill.__version__,
        "interpret": getattr(interpret, "__version__", "?"),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "Python": platform.python_version(),
    }
    settings["versions"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    settings["report written"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    return settings


def _model_settings(audit) -> dict:
    """The mimic's and the outcome model's class and the parameters given them, as fitted
    (the audit's defaults unless ``student=`` or ``outcome=`` was passed), and the
    monotone constraints when there are any."""
    from sklearn_distill._defaults import default_mimic_student, default_outcome_model

    fitted = getattr(audit, "_fit_params", None)
    if fitted is None and hasattr(audit, "get_params"):  # fitted before they were recorded
        fitted = audit.get_params(deep=True)
    settings = {}
    if fitted is None:
        return settings
    for name, parameter, default in (
        ("mimic model", "student", default_mimic_student),
        ("outcome model", "outcome", default_outcome_model),
    ):
        model = fitted.get(parameter)
        if model is None:
            text = f"the audit's default {type(default()).__name__}"
        else:
            cls = model if isinstance(model, type) else type(model)
            given = {
                key.split("__", 1)[1]: value
                for key, value in fitted.items()
                if key.startswith(f"{parameter}__") and "__" not in key.split("__", 1)[1]
            }
            if not isinstance(model, type) and not given:
                given = model.get_params(deep=False)
            try:
                baseline = cls().get_params(deep=False)
            except Exception:  # a class that needs arguments: every parameter is shown
                baseline = {}
            shown = [
                f"{key}={value!r}"
                for key, value in sorted(given.items())
                # the audit sets the pairs and the seeds itself; n_jobs changes no result
                if key not in ("n_jobs", "random_state", "interactions")
                and (key not in baseline or repr(baseline[key]) != repr(value))
            ]
            # "name: a=1, b=2", not "name(a=1, b=2)": a narrow screen wraps at the spaces,
            # not inside a number of a run too long for one line
            text = cls.__name__
            if not _option_names(audit):  # the command line passes no model of the user's
                text += f" (passed as {parameter})"
            text += f": {', '.join(shown)}" if shown else ", with its class's defaults"
        settings[_setting_name(audit, name, parameter)] = text
    constraints = fitted.get("monotone_constraints")
    if constraints is not None:
        settings[_setting_name(audit, "monotone constraints", "monotone_constraints")] = repr(
            constraints
        )
    return settings


def _telling_apart(values):
    """A formatter of ``values`` as report numbers; where those merge values that differ (a
    score riding an offset of 1e10 reads ``1e+10`` on every row), with one significant digit
    more than the fewest that tell them apart, so that their differences read too."""
    values = [float(v) for v in values]
    texts = {v: format_number(v) for v in values}
    distinct = len(set(values))
    if len(set(texts.values())) < distinct:
        digits = next(
            (d for d in range(3, 17) if len({f"{v:.{d}g}" for v in values}) == distinct), 16
        )
        texts = {v: f"{v:.{digits + 1}g}" for v in values}
    return lambda value: texts.get(float(value), format_number(value))


#: A rule's set of category values longer than this is shown by its first few in the table.
_SET_VALUES_SHOWN = 8
_SET_VALUES_SHOWN_SHORT = 3


def _rule_cell(text, conditions):
    """The HTML of a rule (``text``, as :meth:`DistilledTree.rules` writes it from
    ``conditions``), escaped; where a condition tests a long set of category values, the rule
    with each such set cut to its first values and a count of the others, and the whole rule
    under it, a click away."""
    from sklearn_distill.tree import _format_feature, _set_labels, format_condition

    short = text
    for feature, operator, value in conditions:
        if operator not in ("in", "not in") or len(value) <= _SET_VALUES_SHOWN:
            continue
        labels = _set_labels(value)
        first = ", ".join(labels[:_SET_VALUES_SHOWN_SHORT])
        more = len(labels) - _SET_VALUES_SHOWN_SHORT
        cut = f"{_format_feature(feature)} {operator} {{{first}, … (+{more} more)}}"
        short = short.replace(format_condition((feature, operator, value)), cut, 1)

    def escaped(rule):
        # a narrow screen wraps c_charge_desc after an underscore, not mid-word
        return html.escape(rule).replace("_", "_<wbr>")

    if short == text:
        return _HtmlCell(escaped(text))
    cell = _HtmlCell(
        f"<details><summary>{escaped(short)}</summary>"
        f'<div class="full">{escaped(text)}</div></details>'
    )
    cell.css = "rule"
    return cell


def _rules_section(rule_tree, rule_fidelity, audit=None):
    """The black box's score as a few rules (a fitted DistilledTree): calibrated or read as
    log-odds, as the mimic reads it, with each rule's probability; mimicked as given (no
    calibration, a plain score), on the score's own scale, without one."""
    rules = rule_tree.rules().sort_values("prediction", ascending=False)
    in_log_odds = "probability" in rules
    calibrated = getattr(rule_tree, "calibrator_", None) is not None
    if in_log_odds:
        # the black box's probability, as calibrated, not the outcome's observed rate
        columns = {"rule": "rule", "probability": "score's P(event)", "prediction": "log-odds"}
    else:
        columns = {"rule": "rule", "prediction": "score (as given)"}
    columns.update({"n_rows": "rows", "share": "share of rows"})
    present = {k: v for k, v in columns.items() if k in rules}
    table = rules[list(present)].rename(columns=present)
    leaves = int(rules["leaf"].nunique()) if "leaf" in rules else len(rules)
    split = (
        f"; the {leaves} leaves make {len(rules)} rules, as a leaf whose rows may miss a "
        "feature it tests is written as one rule with the value and one without it (for each "
        "such feature), all of one prediction"
        if leaves < len(rules)
        else ""
    )
    tree_text = f"(a regression tree with few leaves, sklearn_distill.DistilledTree{split})"
    if in_log_odds:
        read = "calibrated as for the mimic" if calibrated else "read as log-odds as by the mimic"
        opening = (
            f"The black box's score, {read}, read as {len(rules)} rules {tree_text}: every "
            "audit row falls under one rule, whose prediction is the score's mean log-odds "
            "there (the column score's P(event) is that as a probability: what the black box "
            "predicts, not the outcome's observed rate under the rule)."
        )
        held = "the calibrated score" if calibrated else "the score's log-odds"
    else:
        scale = None if audit is None else _scale_of(audit)
        reading = (
            "on the score's own scale, not log-odds"
            if scale == "not log-odds"
            else "on the score's own scale (log-odds only if the score is log-odds, as the "
            "mimic takes it to be)"
        )
        opening = (
            f"The black box's score as given (uncalibrated, as the mimic took it), read as "
            f"{len(rules)} rules {tree_text}: every audit row falls under one rule, whose "
            f"prediction is the score's mean there, {reading}."
        )
        held = "the score as given"
    paragraphs = [
        opening + " A coarser view than the shapes: it shows the black box's main logic at a "
        "glance, not where it differs from the outcome."
    ]
    if rule_fidelity:
        paragraphs.append(
            f"The rules reproduce {held} with R^2 {float(rule_fidelity['r2']):.3f} "
            "(the mimic above: see its fidelity)."
        )
    cells = {
        text: _rule_cell(text, conditions)
        for text, conditions in zip(rules["rule"], rules["conditions"])
    }
    if any(cell.css for cell in cells.values()):
        paragraphs.append(
            f"A rule that tests more than {_SET_VALUES_SHOWN} values of a category shows its "
            f"first {_SET_VALUES_SHOWN_SHORT} and how many more; click it for the whole rule."
        )
    formats = {
        "rule": cells.__getitem__,
        "score's P(event)": lambda v: f"{float(v):.3f}",
        "log-odds": lambda v: f"{float(v):.3f}",
        "score (as given)": _telling_apart(rules["prediction"]),
        "share of rows": _percent,
    }
    return Section(
        "The black box as rules",
        paragraphs=paragraphs,
        tables=[Table(table, formatters=formats, index=False)],
    )


def _interactions_to_draw(interactions, flag, limit=4):
    """Interaction terms to draw: those with flagged cells first, then by largest |z|."""
    score = interactions.assign(
        _flags=interactions[flag].astype(int),
        _z=(interactions["z"] if "z" in interactions else interactions["difference"]).abs(),
    )
    ranked = score.groupby("term", sort=False).agg(flags=("_flags", "sum"), z=("_z", "max"))
    ranked = ranked.sort_values(["flags", "z"], ascending=False)
    return list(ranked.index[:limit])


def write_audit_report(
    audit, path, *, title="Distill-and-Compare audit", n_bootstrap=1000, description=None,
    fidelity=None, rule_tree=None, rule_fidelity=None, event=None, data_notes=None, outcome=None,
    runs=5,
):  # fmt: skip
    """Write a fitted :class:`~sklearn_distill.CompareAudit`'s self-contained HTML report.

    Parameters
    ----------
    audit : CompareAudit
    path : str or os.PathLike
    title : str, default="Distill-and-Compare audit"
    n_bootstrap : int, default=1000
        Used to run the missing-feature test if it has not been run.
    description : dict, optional
        Extra key/value lines (data file, score and label columns), shown escaped.
    fidelity, rule_tree, rule_fidelity, event, data_notes, outcome : optional
        See :func:`audit_report_sections`.
    runs : int or None, default=5
        See :func:`audit_report_sections`.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        Before any work, when ``path`` cannot be written: a directory, in a directory that
        does not exist, or not writable.
    """
    check_output_path(path, "path")
    if not isinstance(title, str):
        fail("title", "a str", title, TypeError)
    runs = _check_runs(runs)
    sections = audit_report_sections(
        audit,
        n_bootstrap=n_bootstrap,
        description=description,
        fidelity=fidelity,
        rule_tree=rule_tree,
        rule_fidelity=rule_fidelity,
        event=event,
        data_notes=data_notes,
        outcome=outcome,
        runs=runs,
    )
    return write_html(path, title, sections)
