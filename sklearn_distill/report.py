"""Self-contained HTML reports: tables and figures in one file, every given string escaped.

The report has no external resources (no scripts, style sheets or images fetched from
elsewhere): figures are embedded as base64 PNG data URIs, so the file can be mailed or archived
as is. Every piece of text that comes from the user -- column names, category values, titles --
goes through :func:`html.escape`, so a feature called ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Section", "figure_to_data_uri", "render_html", "table_to_html", "write_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
tr.flag td { background: #fff3cd; }
img { max-width: 100%; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { font-weight: 600; } .note { color: #555; font-size: 0.9em; }
"""


@dataclass
class Section:
    """One section of a report: a heading, paragraphs, a table and figures.

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
    """

    heading: str
    paragraphs: list = field(default_factory=list)
    table: pd.DataFrame | None = None
    flag_column: str | None = None
    figures: list = field(default_factory=list)
    items: dict | None = None


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


def _format_cell(value, digits):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no", "text"
    if isinstance(value, numbers.Integral):
        return str(int(value)), ""
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "", ""
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{digits}g}", ""
        return f"{value:.{digits}f}", ""
    return html.escape(str(value)), "text"


def table_to_html(frame, *, digits=3, flag_column=None, index=True, max_rows=None):
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
    shown = frame if max_rows is None else frame.head(max_rows)
    header = []
    if index:
        header.append(html.escape(str(frame.index.name or "")))
    header += [html.escape(str(c)) for c in frame.columns]
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>"]
    lines.append("<tbody>")
    flags = shown[flag_column].to_numpy(bool) if flag_column is not None else None
    # itertuples keeps each column's own type (iterrows would turn integers into floats)
    for position, (label, *row) in enumerate(shown.itertuples(index=True, name=None)):
        flagged = flags is not None and flags[position]
        cells = []
        values = ([label] if index else []) + row
        for value in values:
            text, css = _format_cell(value, digits)
            cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
        lines.append(('<tr class="flag">' if flagged else "<tr>") + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    if max_rows is not None and len(frame) > max_rows:
        lines.append(f'<p class="note">{len(frame) - max_rows} more rows not shown.</p>')
    return "\n".join(lines)


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
        f"<title>{html.escape(str(title))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(str(title))}</h1>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(str(section.heading))}</h2>")
        for paragraph in section.paragraphs:
            parts.append(f"<p>{html.escape(str(paragraph))}</p>")
        if section.items:
            parts.append("<dl>")
            for key, value in section.items.items():
                parts.append(f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(str(value))}</dd>")
            parts.append("</dl>")
        if section.table is not None:
            parts.append(
                table_to_html(section.table, digits=digits, flag_column=section.flag_column)
            )
        for fig in section.figures:
            alt = html.escape(str(section.heading))
            parts.append(f'<p><img alt="{alt}" src="{figure_to_data_uri(fig)}"></p>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path, title, sections, *, digits=3):
    """Write :func:`render_html`'s document to ``path`` (UTF-8) and return the path.

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
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(document)
    return os.fspath(path)
