"""Pictures for Distill-and-Compare audits (matplotlib).

Every function takes plain tables or arrays (the output of :mod:`sklearn_distill.stats` or of
:class:`sklearn_distill.CompareAudit`) and returns a :class:`matplotlib.figure.Figure` built
without ``pyplot``, so no global figure state is kept and any backend works; save one with
``fig.savefig("shape.png")``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from sklearn_distill._validation import check_integer, check_real, fail
from sklearn_distill.shapes import MISSING_LABEL, _numbers, value_label


def _check_axes(ax) -> None:
    """``ax`` must be matplotlib Axes (or None for a new figure)."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        fail("ax", "matplotlib Axes or None", type(ax).__name__, TypeError)


__all__ = [
    "interaction_limits",
    "plot_calibration",
    "plot_comparison",
    "plot_interaction",
    "plot_residuals",
    "plot_shapes",
    "plot_term",
]

MIMIC_COLOR = "#1f77b4"
OUTCOME_COLOR = "#d62728"
#: The models a comparison's panels draw: (column, colour).
_COMPARED = (("mimic", MIMIC_COLOR), ("outcome", OUTCOME_COLOR))


FLAG_LABEL = "flagged difference (Benjamini-Hochberg)"


#: Columns of CompareAudit.compare()'s table that the pictures of a main effect read.
_MAIN_COLUMNS = ("term", "value", "mimic", "mimic_lower", "mimic_upper", "outcome")
_MAIN_COLUMNS += ("outcome_lower", "outcome_upper")
#: ... and those of an interaction's heatmaps.
_INTERACTION_COLUMNS = ("term", "value", "mimic", "outcome", "difference")


def _check_comparison(comparison, columns, flag=None):
    """``comparison`` must be a table like CompareAudit.compare()'s, with ``columns`` and a flag
    column."""
    if not isinstance(comparison, pd.DataFrame):
        raise TypeError(
            "comparison must be a pandas DataFrame (the table of CompareAudit.compare()); got a "
            f"{type(comparison).__name__}."
        )
    flags = (flag,) if flag is not None else ("significant_bh", "significant")
    missing = [c for c in columns if c not in comparison]
    if not any(f in comparison for f in flags):
        missing.append(" or ".join(flags))
    if missing:
        raise ValueError(
            "comparison must have the columns of CompareAudit.compare()'s table; got one "
            f"without {', '.join(map(repr, missing))}."
        )


def _check_drawing(max_categories, tail_quantile, max_label_length=22):
    check_integer("max_categories", max_categories, minimum=1)
    if tail_quantile is not None:
        check_real("tail_quantile", tail_quantile, minimum=0, maximum=1, exclusive_minimum=True)
    check_integer("max_label_length", max_label_length, minimum=2)


def _is_numeric(values):
    # booleans (False and True) are two categories, drawn and labelled as such
    series = pd.Series(list(values)).infer_objects()
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _flag_column(rows, flag=None):
    if flag is not None:
        return flag
    return "significant_bh" if "significant_bh" in rows else "significant"


def _short(text, max_length):
    text = str(text)
    if len(text) <= max_length:
        return text
    # one ellipsis: a cut ending in the text's own "..." (a pooled group's "a, b, ... (5
    # values)") read "b, ......"
    return text[: max_length - 1].rstrip(" .\u2026") + "\u2026"


#: Characters of a feature's name per line of a panel's title, and on an axis of a heatmap.
_TITLE_WIDTH, _AXIS_NAME_LENGTH = 38, 40


def _two_lines(text, width) -> str:
    """``text`` wrapped onto two lines of ``width`` characters at most, shortened beyond."""
    import textwrap

    text = str(text)
    if len(text) <= width:  # as written: wrapping would fold a category's double space
        return text
    lines = textwrap.wrap(text, width, break_long_words=True) or [""]
    if len(lines) > 2:
        lines = [lines[0], _short(" ".join(lines[1:]), width)]
    return "\n".join(lines)


def _panel_title(term) -> str:
    """A term's name as a panel's title: wrapped onto two lines at most (a long feature name
    ran past its panel into the next), shortened beyond."""
    return _two_lines(term, _TITLE_WIDTH)


#: The gids of a run's two means and of the bar that marks a run that differs.
RUN_GID, RUN_FLAG_GID = "run mean", "run differs"
RUN_LABEL = "mean over a run of adjacent values"
RUN_FLAG_LABEL = "run that differs (Benjamini-Hochberg)"


def _legend_handles(rows_flag_label=FLAG_LABEL, clipped=False, runs=False):
    """One legend for every panel: the two models (line and band) and the flag marker; with
    ``runs``, the runs' means and the bar of a run that differs."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        (Line2D([], [], color=color), Patch(facecolor=color, alpha=0.2, linewidth=0))
        for color in (MIMIC_COLOR, OUTCOME_COLOR)
    ]
    handles.append(Line2D([], [], color="black", marker="*", linestyle="none", markersize=6))
    labels = ["mimic (black box)", "outcome model", rows_flag_label]
    if runs:
        handles += [
            Line2D([], [], color="grey", linewidth=3.5, alpha=0.55, solid_capstyle="butt"),
            Line2D([], [], color="black", marker="|", linestyle="none", markersize=9, mew=1.6),
        ]
        labels += [RUN_LABEL, RUN_FLAG_LABEL]
    if clipped:
        handles.append(Line2D([], [], color="grey", marker="^", linestyle="none", markersize=5))
        labels.append("band clipped at the axis (wider than shown)")
    return handles, labels


def _has_runs(axes):
    return any(c.get_gid() == RUN_GID for ax in axes for c in ax.collections)


def _check_runs(runs):
    """``runs``: None, or a table of :meth:`CompareAudit.compare_runs`."""
    if runs is None:
        return None
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(
            "runs must be a pandas DataFrame (the table of CompareAudit.compare_runs()) or "
            f"None; got a {type(runs).__name__}."
        )
    needed = ["term", "low", "high", "mimic", "outcome"]
    missing = [c for c in needed if c not in runs]
    if missing:
        raise ValueError(
            "runs must have the columns of CompareAudit.compare_runs()'s table; got one "
            f"without {', '.join(map(repr, missing))}."
        )
    return runs


def _draw_runs(ax, runs, term):
    """A term's runs of adjacent values (:meth:`CompareAudit.compare_runs`) on its panel: each
    model's mean over a run as a thick segment over the run's reach, and a black bar joining
    the two means of a run that differs after the adjustment (``significant_bh``). Runs
    without a reach on the axis (the missing values) are left to the table."""
    if runs is None:
        return
    part = runs[runs["term"] == term]
    low, high = part["low"].to_numpy(float), part["high"].to_numpy(float)
    shown = np.isfinite(low) & np.isfinite(high)
    if not shown.any():
        return
    part, low, high = part[shown], low[shown], high[shown]
    for key, color in _COMPARED:
        ax.hlines(
            part[key].to_numpy(float), low, high, colors=color, linewidth=3.5, alpha=0.55,
            capstyle="butt", gid=RUN_GID, zorder=3,
        )  # fmt: skip
    flag = "significant_bh" if "significant_bh" in part else "significant"
    differs = part[flag].to_numpy(bool) if flag in part else np.zeros(len(part), bool)
    if differs.any():
        middle = 0.5 * (low + high)[differs]
        ends = part.loc[differs, ["mimic", "outcome"]].to_numpy(float)
        for x, (first, second) in zip(middle, ends):
            ax.plot(
                [x, x], [first, second], color="black", linewidth=1.6, marker="_",
                markersize=8, mew=1.6, gid=RUN_FLAG_GID, zorder=4,
            )  # fmt: skip


def _has_clipped(axes):
    return any(line.get_gid() == CLIPPED_GID for ax in axes for line in ax.get_lines())


#: Marks of a band clipped at the axis's edge, and the note a panel with one gets.
CLIPPED_GID, CLIPPED_NOTE = "clipped band", "\u25b2\u25bc band runs beyond the axis"


def _focus_ylim(ax, rows, where, series=_COMPARED):
    """Fit the y axis to the shapes: every drawn point of the curves is inside it, and so is
    every band end within 1.5 ``reach`` of the curves' range, ``reach`` being the larger of a
    fifth of that range and twice the median band's width (over the values drawn and both
    models). A band reaching farther (a rare value's very wide interval) is cut at the axis's
    edge, which then lies at least ``reach`` beyond the curves, and marked there with a
    triangle in its model's colour (gid ``CLIPPED_GID``); the panel's x label says so. The
    stars of flagged values sit on their highest band, or just inside the axis's top.

    ``rows`` are the values drawn (after a tail cut or a choice of categories), ``where`` the
    x position of each row's mark per model (``{key: array}``)."""
    curves = rows[[key for key, _ in series]].to_numpy(float)
    lower = rows[[f"{key}_lower" for key, _ in series]].to_numpy(float)
    upper = rows[[f"{key}_upper" for key, _ in series]].to_numpy(float)
    known = curves[np.isfinite(curves)]
    if known.size == 0:
        return
    low, high = float(known.min()), float(known.max())
    widths = (upper - lower)[np.isfinite(upper - lower)]
    reach = max(0.2 * (high - low), 2.0 * float(np.median(widths)) if widths.size else 0.0)
    bands = np.concatenate([lower[np.isfinite(lower)], upper[np.isfinite(upper)]])
    if bands.size:
        # a band end up to half as far again counts whole, so no band is clipped by a sliver
        inside = bands[(bands >= low - 1.5 * reach) & (bands <= high + 1.5 * reach)]
        far_low, far_high = bands.min() < low - 1.5 * reach, bands.max() > high + 1.5 * reach
        low, high = (
            min(low, float(inside.min(initial=low)), low - reach if far_low else low),
            max(high, float(inside.max(initial=high)), high + reach if far_high else high),
        )
    pad = 0.06 * (high - low) or 0.1
    ax.set_ylim(low - pad, high + pad)
    clipped = False
    for column, (key, color) in enumerate(series):
        x = np.asarray(where[key], float)
        # an infinite end is beyond the axis too; NaN (no band) never is
        for beyond, edge, marker in (
            (upper[:, column] > high + pad, high + pad, "^"),
            (lower[:, column] < low - pad, low - pad, "v"),
        ):
            if beyond.any():
                clipped = True
                ax.plot(
                    x[beyond], np.full(int(beyond.sum()), edge), linestyle="none",
                    marker=marker, color=color, markersize=5, clip_on=False, gid=CLIPPED_GID,
                )  # fmt: skip
    if clipped:
        label = ax.get_xlabel()
        ax.set_xlabel(f"{label}\n{CLIPPED_NOTE}" if label else CLIPPED_NOTE, fontsize=7)
    for line in ax.get_lines():
        if line.get_marker() == "*":  # a flag: on its highest band, or just inside the top
            line.set_ydata(np.minimum(np.asarray(line.get_ydata(), float), high + 0.5 * pad))


def _tail_cut(x, weight, quantile):
    """The value at which the ``quantile`` of the rows is reached, when cutting the axis there
    removes a long tail (more than a fifth of the range); else None."""
    if weight is None or quantile is None or x.size < 3:
        return None
    weight = np.asarray(weight, dtype=float)
    if not np.isfinite(weight).all() or weight.sum() <= 0:
        return None
    share = np.cumsum(weight) / weight.sum()
    cut = x[min(int(np.searchsorted(share, quantile)), x.size - 1)]
    if cut < x[-1] and x[-1] - cut > 0.2 * (x[-1] - x[0]):
        return cut
    return None


def _is_boolean(values):
    known = [v for v in values if not (pd.api.types.is_scalar(v) and pd.isna(v))]
    return bool(known) and all(isinstance(v, bool | np.bool_) for v in known)


def _numeric_x(rows):
    """Numeric positions of a numeric term's values (or of its bins' midpoints), or None (for
    categories, booleans among them, though an EBM bins them as 0 and 1)."""
    if _is_boolean(rows["value"]):
        return None
    if _is_numeric(rows["value"]):
        return pd.to_numeric(rows["value"]).to_numpy(float)
    if {"bin_low", "bin_high"} <= set(rows):
        low = pd.to_numeric(rows["bin_low"], errors="coerce").to_numpy(float)
        high = pd.to_numeric(rows["bin_high"], errors="coerce").to_numpy(float)
        middle = 0.5 * (low + high)
        known = rows["value"].notna().to_numpy()
        if known.any() and np.isfinite(middle[known]).all():
            return middle
    return None


def _top(rows, series):
    """The highest upper band of the drawn models per row (where a flag's star goes)."""
    return np.max([rows[f"{key}_upper"].to_numpy(float) for key, _ in series], axis=0)


class _SpacedLocator(MaxNLocator):
    """Matplotlib's default ticks (steps of 1, 2, 2.5 or 5), fewer where their labels would run
    together: matplotlib spaces ticks for labels about three characters wide, and an income's
    ``125000`` or a rate's ``0.00025`` are twice that (``75000100000125000`` on an axis)."""

    def __init__(self):
        super().__init__(nbins="auto", steps=[1, 2, 2.5, 5, 10])

    def _fits(self, ticks, vmin, vmax, em):
        shown = [t for t in ticks if min(vmin, vmax) <= t <= max(vmin, vmax)]
        if len(shown) < 2:
            return True
        labels = self.axis.get_major_formatter().format_ticks(shown)
        # a digit is about 0.62 em wide in the usual sans-serif fonts; an em kept between labels
        widest = max(len(label) for label in labels) * 0.62 * em + em
        spacing = self.axis.axes.bbox.width * abs(shown[1] - shown[0]) / abs(vmax - vmin)
        return widest <= spacing

    def tick_values(self, vmin, vmax):
        ticks = super().tick_values(vmin, vmax)
        axis = self.axis
        if axis is None or axis.axes is None or vmin == vmax:
            return ticks
        size = FontProperties(size=rcParams["xtick.labelsize"]).get_size_in_points()
        em = size * axis.axes.figure.dpi / 72.0  # in display pixels, as the axes' box
        count = len(ticks)
        while not self._fits(ticks, vmin, vmax, em) and count > 2:
            count -= 1
            ticks = MaxNLocator(nbins=count - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
        return ticks


def _draw_numeric(ax, rows, x, flag, tail_quantile, series=_COMPARED):
    missing = ~np.isfinite(x)
    rows, x = rows[~missing], x[~missing]
    order = np.argsort(x, kind="stable")
    rows, x = rows.iloc[order], x[order]
    # the last bin reaches to its upper edge (the feature's largest value), which a step drawn
    # "post" from the bin's own position would leave out
    edge = x[-1]
    if "bin_high" in rows:
        high = pd.to_numeric(rows["bin_high"], errors="coerce").to_numpy(float)
        if np.isfinite(high[-1]) and high[-1] > x[-1]:
            edge = float(high[-1])
    drawn = np.append(x, edge) if edge > x[-1] else x
    ax.xaxis.set_major_locator(_SpacedLocator())
    for key, color in series:
        lower, upper = rows[f"{key}_lower"].to_numpy(float), rows[f"{key}_upper"].to_numpy(float)
        values = rows[key].to_numpy(float)
        if drawn.size > x.size:
            values, lower, upper = (np.append(v, v[-1]) for v in (values, lower, upper))
        ax.step(drawn, values, where="post", color=color)
        ax.fill_between(
            drawn, lower, upper, step="post", color=color, alpha=0.2, linewidth=0,
        )  # fmt: skip
    sig = rows[flag].to_numpy(bool) if flag is not None else np.zeros(len(rows), bool)
    if sig.any():
        ax.plot(x[sig], _top(rows, series)[sig], "k*", markersize=6)
    notes = []
    cut = _tail_cut(x, rows["weight"] if "weight" in rows else None, tail_quantile)
    reach = ""
    if cut is not None and sig.any() and x[sig].max() > cut:
        # a flagged value in the tail stays on the axis: the cut moves out to it
        cut = float(x[sig].max())
        reach = ", moved out to the last flagged value"
        if cut >= x[-1]:
            cut = None
    if cut is not None:
        pad = 0.02 * (cut - x[0]) or 0.5
        ax.set_xlim(x[0] - pad, cut + pad)
        rows = rows[x <= cut + pad]  # every value the axis shows, the pad's included
        notes.append(
            f"cut at the {100 * tail_quantile:g}th percentile of rows{reach} (max {edge:g})"
        )
    if missing.any():
        notes.append("missing values: see the table")
    if notes:
        ax.set_xlabel("; ".join(notes), fontsize=7)
    # a clipped band's mark: the middle of its step, as far as the axis shows it
    right = ax.get_xlim()[1] if cut is not None else np.inf
    ends = np.minimum(np.append(drawn[1:], drawn[-1]), right)[: len(rows)]
    middle = 0.5 * (drawn[: len(rows)] + ends)
    return rows, {key: middle for key, _ in series}


def _draw_categorical(ax, rows, flag, max_categories, max_label_length, series=_COMPARED):
    total = len(rows)
    if total > max_categories:
        # the most significant differences first; the raw difference would favour rare
        # categories whose wide bands say little (one model: its largest contributions)
        # categories held by too few rows to be flagged come after the others
        size = next(rows[c] for c in ("z", "difference", series[0][0]) if c in rows)
        rank = pd.DataFrame(
            {"testable": rows["testable"] if "testable" in rows else True, "size": size.abs()}
        )
        order = rank.sort_values(["testable", "size"], ascending=False, kind="stable").index
        rows = rows.loc[order[:max_categories]]
    positions = np.arange(len(rows))
    labels = [_short(value_label(v), max_label_length) for v in rows["value"]]
    if {"testable", "weight"} <= set(rows):
        # values too thin to be tested look like the others: say how few rows hold them
        labels = [
            label if testable else f"{label} ({weight:.0f} rows)"
            for label, testable, weight in zip(labels, rows["testable"], rows["weight"])
        ]
    shifts = np.linspace(-0.15, 0.15, len(series)) if len(series) > 1 else [0.0]
    for (key, color), shift in zip(series, shifts):
        centre = rows[key].to_numpy(float)
        err = np.vstack(
            [centre - rows[f"{key}_lower"].to_numpy(float), rows[f"{key}_upper"] - centre]
        )
        ax.errorbar(
            positions + shift, centre, yerr=np.clip(err, 0, None), fmt="o", color=color, ms=4
        )
    sig = rows[flag].to_numpy(bool) if flag is not None else np.zeros(len(rows), bool)
    if sig.any():
        ax.plot(positions[sig], _top(rows, series)[sig], "k*", markersize=6)
    ax.set_xticks(positions)
    ax.set_xlim(-0.6, len(rows) - 0.4)  # room beside the outer points (one value: centred)
    rotate = len(labels) > 3 or max(map(len, labels), default=0) > 8
    ax.set_xticklabels(
        labels,
        rotation=40 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor" if rotate else "default",
        fontsize=8,
        parse_math=False,
    )
    if total > len(rows):
        largest = "differences" if len(series) > 1 else "contributions"
        ax.set_xlabel(f"{len(rows)} of {total} values: the largest {largest}", fontsize=7)
    return rows, {key: positions + shift for (key, _), shift in zip(series, shifts)}


def plot_term(
    comparison, term, *, ax=None, max_categories=15, tail_quantile=0.99, flag=None,
    max_label_length=22, legend=True, runs=None,
):  # fmt: skip
    """Mimic against outcome model for one term, with their confidence bands.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :meth:`CompareAudit.compare` (columns ``term``, ``value``, ``mimic``,
        ``mimic_lower``, ``mimic_upper``, ``outcome``, ``outcome_lower``, ``outcome_upper``,
        and a boolean flag column).
    term : str
        The term to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.
    max_categories : int, default=15
        For a categorical term, show at most this many values (those with the largest absolute
        ``z``, or difference; with a ``testable`` column, testable values first), so long
        category lists stay legible; the axis says so. With ``testable`` and ``weight``
        columns, a value too thin to be tested is labelled with its rows ("x (8 rows)").
    tail_quantile : float or None, default=0.99
        For a numeric term with a ``weight`` column, cut the x axis where this share of the
        rows is reached when the values beyond stretch over more than a fifth of the axis
        (a long tail); the axis label says so. A flagged value beyond the cut moves the cut
        out to it, so that no flag is hidden. In (0, 1]; ``None`` never cuts.
    flag : str, optional
        Boolean column marked with a star; ``significant_bh`` when present, else
        ``significant``.
    max_label_length : int, default=22
        Category labels longer than this are shortened with an ellipsis.
    legend : bool, default=True
        Draw a legend on the axes (:func:`plot_comparison` draws one for all panels instead).
    runs : pandas.DataFrame, optional
        A table of :meth:`CompareAudit.compare_runs` (columns ``term``, ``low``, ``high``,
        ``mimic``, ``outcome``, ``significant_bh``): when it holds the term, drawn as numeric,
        each run's two means are drawn as thick segments over the run's reach, and a black
        bar joins them where the run differs after the adjustment.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on. Numeric terms are drawn as step functions with shaded bands,
        categorical ones (and a numeric term with a single value, a constant column) as points
        with error bars; flagged values are marked with a star.
        The y axis holds every drawn point of both curves, and their bands unless one reaches
        far beyond the curves (1.5 times the larger of a fifth of the curves' range and twice
        the median band's width): such a band (a rare value's wide interval) is clipped at the
        axis's edge and marked there with a triangle in its model's colour, and the x
        label says so (the full interval is in the table).

    Examples
    --------
    >>> frame = pd.DataFrame({"term": "age", "value": [20.0, 30.0, 40.0],
    ...     "mimic": [0.5, 0.0, -0.5], "mimic_lower": [0.4, -0.1, -0.6],
    ...     "mimic_upper": [0.6, 0.1, -0.4], "outcome": [0.3, 0.0, -0.3],
    ...     "outcome_lower": [0.2, -0.1, -0.4], "outcome_upper": [0.4, 0.1, -0.2],
    ...     "significant": [True, False, True]})
    >>> fig = plot_term(frame, "age")
    >>> fig.axes[0].get_title()
    'age'
    """
    _check_comparison(comparison, _MAIN_COLUMNS, flag)
    _check_drawing(max_categories, tail_quantile, max_label_length)
    runs = _check_runs(runs)
    rows = comparison[comparison["term"] == term]
    if rows.empty:
        raise ValueError(f"term must be a term of the comparison table; got {term!r}.")
    _check_axes(ax)
    if ax is None:
        ax = Figure(figsize=(5, 3.5), layout="constrained").add_subplot()
    flag = _flag_column(rows, flag)
    x = _numeric_x(rows)
    numeric = x is not None and np.count_nonzero(np.isfinite(x)) >= 2
    if numeric:
        rows, where = _draw_numeric(ax, rows, x, flag, tail_quantile)
    else:
        rows, where = _draw_categorical(ax, rows, flag, max_categories, max_label_length)
    _focus_ylim(ax, rows, where)
    if numeric:  # a run's mean lies within its shape's values: the axis holds it
        _draw_runs(ax, runs, term)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    # names and categories are the user's text: "$" in them is not matplotlib's mathtext
    ax.set_title(_panel_title(term), parse_math=False)
    ax.set_ylabel("contribution (log-odds)")
    if legend:
        handles, labels = _legend_handles(clipped=_has_clipped([ax]), runs=_has_runs([ax]))
        ax.legend(handles, labels, fontsize=7)
    return ax.get_figure()


def _is_wide(rows, max_categories):
    """A categorical term showing more than eight values."""
    return _numeric_x(rows) is None and min(len(rows), max_categories) > 8


def _is_pair(value):
    return isinstance(value, tuple) and len(value) == 2


def _panels(table, terms, ncols, max_categories, what):
    """The terms to draw, checked, and where: ``(mains, pairs, wide, layout, ncols)``; main
    effects in rows of ``ncols`` panels, a categorical term with many values alone in a row
    after them (so its labels stay legible), pairwise interactions apart."""
    known = list(dict.fromkeys(table["term"]))
    if terms is None:
        terms = known
    terms = [terms] if isinstance(terms, str) else list(terms)
    if not terms:
        raise ValueError("terms must name at least one term; got [].")
    # terms are named as text (interpret names a column 0 as "0"): a column's own name works
    terms = [str(t) if t not in known and str(t) in known else t for t in terms]
    unknown = [t for t in terms if t not in known]
    if unknown:
        shown = ", ".join(map(repr, known[:12])) + (", ..." if len(known) > 12 else "")
        raise ValueError(f"terms must be terms of the {what} ({shown}); got {unknown!r}.")
    pair_terms = set(table.loc[table["value"].map(_is_pair), "term"])
    mains = [t for t in terms if t not in pair_terms]
    pairs = [t for t in terms if t in pair_terms]
    wide = [t for t in mains if _is_wide(table[table["term"] == t], max_categories)]
    narrow = [t for t in mains if t not in wide]
    ncols = max(1, min(ncols, len(narrow) or 1))
    layout = [narrow[i : i + ncols] for i in range(0, len(narrow), ncols)] + [[t] for t in wide]
    return mains, pairs, wide, layout, ncols


def plot_comparison(
    comparison, terms=None, *, ncols=3, max_categories=15, tail_quantile=0.99, runs=None
):
    """Mimic against outcome model for several terms, one panel per main effect and a row of
    three heatmaps (mimic, outcome model, difference) per pairwise interaction.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :meth:`CompareAudit.compare`.
    terms : sequence of str, optional
        Terms to draw, in order; all terms of the table when omitted.
    ncols : int, default=3
        Main-effect panels per row (at least 1); a categorical term with more than eight
        values shown takes a whole row, after the others.
    max_categories : int, default=15
        Passed to :func:`plot_term`.
    tail_quantile : float or None, default=0.99
        Passed to :func:`plot_term`.
    runs : pandas.DataFrame, optional
        A table of :meth:`CompareAudit.compare_runs`, passed to :func:`plot_term`: the runs'
        means drawn on the panels of the terms it holds.

    Returns
    -------
    matplotlib.figure.Figure
        With one legend for all main-effect panels.

    Examples
    --------
    >>> frame = pd.DataFrame({"term": ["sex", "sex"], "value": ["F", "M"],
    ...     "mimic": [0.1, -0.1], "mimic_lower": [0.0, -0.2], "mimic_upper": [0.2, 0.0],
    ...     "outcome": [-0.3, 0.1], "outcome_lower": [-0.4, 0.0], "outcome_upper": [-0.2, 0.2],
    ...     "difference": [0.4, -0.2], "significant": [True, True]})
    >>> fig = plot_comparison(frame)
    >>> [ax.get_title() for ax in fig.axes]
    ['sex']
    """
    _check_comparison(comparison, ("term", "value"))
    check_integer("ncols", ncols, minimum=1)
    _check_drawing(max_categories, tail_quantile)
    runs = _check_runs(runs)
    mains, pairs, wide, layout, ncols = _panels(
        comparison, terms, ncols, max_categories, "comparison table"
    )
    heights = [3.4 * len(layout) + 0.5] * bool(mains) + [3.2] * len(pairs)
    width = max(4.5 * ncols, 12.0 if pairs else 0.0, 9.0 if wide else 0.0)
    fig = Figure(figsize=(width, sum(heights)), layout="constrained")
    parts = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    if mains:
        grid = parts[0].add_gridspec(len(layout), ncols)
        for row, row_terms in enumerate(layout):
            for column, term in enumerate(row_terms):
                where = grid[row, :] if term in wide else grid[row, column]
                plot_term(
                    comparison, term, ax=parts[0].add_subplot(where),
                    max_categories=max_categories, tail_quantile=tail_quantile, legend=False,
                    runs=runs,
                )  # fmt: skip
        handles, labels = _legend_handles(
            clipped=_has_clipped(parts[0].axes), runs=_has_runs(parts[0].axes)
        )
        parts[0].legend(
            handles, labels, loc="outside upper center", fontsize=9,
            ncols=3 if len(handles) == 3 else (4 if width >= 13 else 2),
        )  # fmt: skip
    # one colour scale for every interaction: a small difference reads pale beside a large one
    limits = interaction_limits(comparison, pairs) if pairs else None
    for part, term in zip(parts[bool(mains) :], pairs):
        _draw_interaction(part, comparison, term, _flag_column(comparison), limits)
    return fig


def _axis_order(values):
    distinct = list(dict.fromkeys(values))
    known = [v for v in distinct if not pd.isna(v)]
    if _is_numeric(known):
        known = sorted(known, key=float)
    return ([np.nan] if len(known) < len(distinct) else []) + known


def _tick_labels(ax, axis, values, max_ticks=8, max_length=14):
    step = max(1, math.ceil(len(values) / max_ticks))
    positions = np.arange(0, len(values), step)
    # on two lines: a block's range cut to one line lost its upper end ("[4.763e+04, 7...")
    texts = _axis_texts(values)
    labels = [_two_lines(texts[i], max_length) for i in positions]
    if axis == "x":
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, rotation=40, ha="right", rotation_mode="anchor", fontsize=7,
                           parse_math=False)  # fmt: skip
    else:
        ax.set_yticks(positions)
        ax.set_yticklabels(labels, fontsize=7, parse_math=False)


def _axis_texts(values):
    """The values of a heatmap's axis as text: numbers that are not all integers in one
    notation and told apart (``.3g`` wrote 500 and 1.5e+03 on one axis, and 999.5 and 1000.2
    both as 1e+03), anything else as :func:`_value_text` writes it."""
    texts = [_value_text(value) for value in values]
    numeric = [
        i
        for i, value in enumerate(values)
        if isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    ]
    if any(not float(values[i]).is_integer() for i in numeric):
        for i, text in zip(numeric, _numbers([values[i] for i in numeric])):
            texts[i] = text
    return texts


def _value_text(value):
    if pd.isna(value) or (isinstance(value, str) and value == MISSING_LABEL):
        return value_label(value)
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:.3g}"
    return str(value)


def _block_order(rows, axis):
    """The labels of one axis of a block table, in the order of their block indices."""
    pairs = sorted(
        {(block[axis], label[axis]) for block, label in zip(rows["block"], rows["label"])}
    )
    return [label for _, label in pairs]


def _surfaces(rows, keys):
    """An interaction's cells as grids: ``(order_a, order_b, ia, ib, grids)``, the values of each
    axis in order, each row's cell, and one ``[len(order_b), len(order_a)]`` grid per key."""
    first, second = zip(*rows["value"])
    if "block" in rows:  # compare_interactions(): the blocks' own order, not the labels'
        order_a, order_b = _block_order(rows, 0), _block_order(rows, 1)
    else:
        order_a, order_b = _axis_order(first), _axis_order(second)

    def index_of(order, value):
        if pd.isna(value):
            return 0
        return order.index(value)

    ia = np.array([index_of(order_a, v) for v in first])
    ib = np.array([index_of(order_b, v) for v in second])
    grids = {}
    for key in keys:
        grid = np.full((len(order_b), len(order_a)), np.nan)
        grid[ib, ia] = rows[key].to_numpy(float)
        grids[key] = grid
    return order_a, order_b, ia, ib, grids


def _pair_names(term):
    names = str(term).split(" & ")
    return names if len(names) == 2 else ("first", "second")


def interaction_limits(comparison, terms) -> tuple[float, float]:
    """Colour limits shared by several interactions' heatmaps: the largest ``|mimic|`` and
    ``|outcome|`` of their rows, and the largest ``|difference|`` (each 1.0 when zero), so
    that a small difference reads pale beside a large one in another interaction."""
    rows = comparison[comparison["term"].isin(list(terms))]
    surfaces = np.abs(rows[["mimic", "outcome"]].to_numpy(float))
    difference = np.abs(rows["difference"].to_numpy(float))
    surface = float(np.nanmax(surfaces)) if np.isfinite(surfaces).any() else 0.0
    spread = float(np.nanmax(difference)) if np.isfinite(difference).any() else 0.0
    return surface or 1.0, spread or 1.0


def _draw_interaction(fig, comparison, term, flag, limits=None):
    rows = comparison[comparison["term"] == term]
    order_a, order_b, ia, ib, grids = _surfaces(rows, ("mimic", "outcome", "difference"))
    name_a, name_b = _pair_names(term)
    if limits is None:
        shared = np.nanmax(np.abs(np.concatenate([grids["mimic"], grids["outcome"]]))) or 1.0
        spread = np.nanmax(np.abs(grids["difference"])) or 1.0
    else:
        shared, spread = limits
    axes = fig.subplots(1, 3)
    titles = ("mimic (black box)", "outcome model", "difference (mimic - outcome)")
    images = []
    for ax, key, title in zip(axes, ("mimic", "outcome", "difference"), titles):
        limit = spread if key == "difference" else shared
        image = ax.imshow(
            grids[key], origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
            interpolation="nearest",
        )  # fmt: skip
        images.append(image)
        ax.set_title(title, fontsize=9)
        _tick_labels(ax, "x", order_a)
        _tick_labels(ax, "y", order_b)
        ax.set_xlabel(_short(name_a, _AXIS_NAME_LENGTH), parse_math=False, fontsize=8)
    axes[0].set_ylabel(_short(name_b, _AXIS_NAME_LENGTH), parse_math=False, fontsize=8)
    flagged = rows[flag].to_numpy(bool)
    if flagged.any():
        axes[2].plot(ia[flagged], ib[flagged], "k.", markersize=4)
    fig.colorbar(images[1], ax=list(axes[:2]), shrink=0.9, label="log-odds")
    fig.colorbar(images[2], ax=axes[2], shrink=0.9, label="log-odds")
    fig.suptitle(str(term), parse_math=False, fontsize=10)
    return fig


def plot_interaction(comparison, term, *, flag=None, fig=None, limits=None):
    """One pairwise interaction as heatmaps: the mimic's surface, the outcome model's (on one
    colour scale) and their difference, with flagged cells dotted.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :meth:`CompareAudit.compare` with interactions: the term's ``value`` is a
        pair (value of the first feature, value of the second); or of
        :meth:`CompareAudit.compare_interactions` (no ``value`` column: the blocks' ``label``
        pairs are drawn, in block order).
    term : str
        The interaction term (``"a & b"``).
    flag : str, optional
        Boolean column of the flagged cells; ``significant_bh`` when present, else
        ``significant``.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw the three panels; a new figure is made when omitted.
    limits : (float, float), optional
        Colour limits ``(surfaces, difference)``, symmetric about 0: for several
        interactions drawn apart on one scale (:func:`interaction_limits`); by default this
        interaction's own largest values.

    Returns
    -------
    matplotlib.figure.Figure or SubFigure
        The figure drawn on.

    Examples
    --------
    >>> frame = pd.DataFrame({"term": "a & b", "value": [(0, "x"), (0, "y"), (1, "x"), (1, "y")],
    ...     "mimic": [0.1, -0.1, -0.1, 0.1], "outcome": [0.0, 0.0, 0.0, 0.0],
    ...     "difference": [0.1, -0.1, -0.1, 0.1], "significant": [True, False, False, False]})
    >>> [ax.get_title() for ax in plot_interaction(frame, "a & b").axes[:3]]
    ['mimic (black box)', 'outcome model', 'difference (mimic - outcome)']
    """
    if isinstance(comparison, pd.DataFrame) and "value" not in comparison and "block" in comparison:
        # compare_interactions(): one cell per block, named by its pair of ranges or values
        comparison = comparison.assign(value=comparison["label"])
    _check_comparison(comparison, _INTERACTION_COLUMNS, flag)
    rows = comparison[comparison["term"] == term]
    if rows.empty:
        raise ValueError(f"term must be a term of the comparison table; got {term!r}.")
    if not rows["value"].map(_is_pair).all():
        raise ValueError(f"term must be a pairwise interaction (values are pairs); got {term!r}.")
    if limits is not None:
        if not isinstance(limits, tuple | list) or len(limits) != 2:
            fail("limits", "two colour limits (surfaces, difference)", limits)
        limits = tuple(
            check_real("limits", value, minimum=0.0, exclusive_minimum=True) for value in limits
        )
    if fig is None:
        fig = Figure(figsize=(12, 3.4), layout="constrained")
    return _draw_interaction(fig, rows, term, _flag_column(rows, flag), limits)


#: A student's shape functions drawn alone: (column, colour).
_STUDENT = (("student", MIMIC_COLOR),)
_SHAPE_COLUMNS = ("term", "value", "score", "lower", "upper")


def plot_shapes(
    shapes, terms=None, *, class_=None, ncols=3, max_categories=15, tail_quantile=0.99,
    ylabel="contribution",
):  # fmt: skip
    """A distilled GAM's shape functions: one panel per main effect (its contribution with the
    band of the bags), one heatmap per pairwise interaction.

    Parameters
    ----------
    shapes : pandas.DataFrame
        Output of :meth:`DistilledGAM.shape_functions <sklearn_distill.DistilledGAM.shape_functions>`
        (or :func:`sklearn_distill.shapes.shape_functions`): columns ``term``, ``value``,
        ``score``, ``lower``, ``upper``, and ``weight``, ``bin_low``, ``bin_high`` when known.
    terms : sequence of str, optional
        Terms to draw, in order; all terms of the table when omitted.
    class_ : optional
        For a table of several classes (a ``class`` column: a multi-class student) or outputs
        (an ``output`` column: several plain outputs), the class or output whose shapes are
        drawn; required then.
    ncols : int, default=3
        Main-effect panels per row (at least 1); a categorical term with more than eight
        values shown takes a whole row, after the others.
    max_categories : int, default=15
        For a categorical term, show at most this many values (the largest contributions;
        values held by enough rows first when the table says which).
    tail_quantile : float or None, default=0.99
        As in :func:`plot_term`: a numeric axis is cut where this share of the rows is reached
        when the rest is a long tail (the axis says so).
    ylabel : str, default="contribution"
        What the scores are, shown on the y axes and colour bars (e.g.
        ``"contribution (log-odds)"``; :meth:`DistilledGAM.plot_shapes
        <sklearn_distill.DistilledGAM.plot_shapes>` names the scale it mimics).

    Returns
    -------
    matplotlib.figure.Figure
        Numeric terms as step functions with shaded bands, categorical ones as points with
        error bars, on the scale the student mimics (log-odds for a classifier's
        probabilities, the teacher's units for a regressor); each interaction's surface on a
        colour scale centred at zero.

    Examples
    --------
    >>> frame = pd.DataFrame({"term": ["age"] * 3 + ["sex"] * 2,
    ...     "value": [20.0, 30.0, 40.0, "F", "M"], "score": [0.5, 0.0, -0.5, 0.2, -0.2],
    ...     "lower": [0.4, -0.1, -0.6, 0.1, -0.3], "upper": [0.6, 0.1, -0.4, 0.3, -0.1]})
    >>> [ax.get_title() for ax in plot_shapes(frame).axes]
    ['age', 'sex']
    """
    if not isinstance(ylabel, str):
        raise TypeError(f"ylabel must be a str; got {type(ylabel).__name__}.")
    if not isinstance(shapes, pd.DataFrame):
        raise TypeError(
            "shapes must be a pandas DataFrame (the table of DistilledGAM.shape_functions()); "
            f"got a {type(shapes).__name__}."
        )
    missing = [c for c in _SHAPE_COLUMNS if c not in shapes]
    if missing:
        raise ValueError(
            "shapes must have the columns of DistilledGAM.shape_functions()'s table; got one "
            f"without {', '.join(map(repr, missing))}."
        )
    check_integer("ncols", ncols, minimum=1)
    _check_drawing(max_categories, tail_quantile)
    if "class" in shapes or "output" in shapes:
        column = "class" if "class" in shapes else "output"
        classes = list(dict.fromkeys(shapes[column]))
        if class_ is None or class_ not in classes:
            what, why = (
                ("classes", "a multi-class student has shapes per class")
                if column == "class"
                else ("outputs", "a student of several plain outputs has shapes per output")
            )
            raise ValueError(
                f"class_ must be one of the table's {what} {classes!r} ({why}); got {class_!r}."
            )
        shapes = shapes[shapes[column] == class_]
        drawn = f"{column} {class_}"  # the figure says whose shapes it draws
    elif class_ is not None:
        raise ValueError(f"class_ must be None for a table of one class; got {class_!r}.")
    else:
        drawn = None
    table = shapes.rename(
        columns={"score": "student", "lower": "student_lower", "upper": "student_upper"}
    )
    _, pairs, wide, layout, ncols = _panels(table, terms, ncols, max_categories, "shapes table")
    # interactions: up to three heatmaps a row, after the main effects
    pair_rows = [pairs[i : i + 3] for i in range(0, len(pairs), 3)]
    heights = [3.2 * len(layout)] * bool(layout) + [3.4 * len(pair_rows)] * bool(pair_rows)
    width = max(4.5 * ncols, 4.6 * min(len(pairs), 3), 9.0 if wide else 0.0)
    fig = Figure(figsize=(width, sum(heights)), layout="constrained")
    # main effects and interactions apart, so the heatmaps' colour bars leave the panels alone
    parts = list(fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0])
    if layout:
        part = parts.pop(0)
        grid = part.add_gridspec(len(layout), ncols)
        for row, row_terms in enumerate(layout):
            for column, term in enumerate(row_terms):
                where = grid[row, :] if term in wide else grid[row, column]
                _draw_shape(part.add_subplot(where), table[table["term"] == term], term,
                            max_categories, tail_quantile, ylabel)  # fmt: skip
    if pair_rows:
        part = parts.pop(0)
        grid = part.add_gridspec(len(pair_rows), 3)
        for row, row_terms in enumerate(pair_rows):
            for column, term in enumerate(row_terms):
                ax = part.add_subplot(grid[row, column])
                _draw_surface(part, ax, table[table["term"] == term], term, ylabel)
    if drawn is not None:
        fig.suptitle(f"Shapes of {drawn}", parse_math=False)
    return fig


def _draw_shape(ax, rows, term, max_categories, tail_quantile, ylabel):
    x = _numeric_x(rows)
    if x is not None and np.count_nonzero(np.isfinite(x)) >= 2:
        rows, where = _draw_numeric(ax, rows, x, None, tail_quantile, series=_STUDENT)
    else:
        rows, where = _draw_categorical(ax, rows, None, max_categories, 22, series=_STUDENT)
    _focus_ylim(ax, rows, where, series=_STUDENT)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_title(_panel_title(term), parse_math=False)
    ax.set_ylabel(ylabel, parse_math=False)


def _draw_surface(fig, ax, rows, term, ylabel):
    order_a, order_b, _, _, grids = _surfaces(rows, ("student",))
    limit = np.nanmax(np.abs(grids["student"])) if np.isfinite(grids["student"]).any() else 0
    image = ax.imshow(
        grids["student"], origin="lower", aspect="auto", cmap="RdBu_r", vmin=-(limit or 1.0),
        vmax=limit or 1.0, interpolation="nearest",
    )  # fmt: skip
    name_a, name_b = _pair_names(term)
    _tick_labels(ax, "x", order_a)
    _tick_labels(ax, "y", order_b)
    ax.set_xlabel(_short(name_a, _AXIS_NAME_LENGTH), parse_math=False, fontsize=8)
    ax.set_ylabel(_short(name_b, _AXIS_NAME_LENGTH), parse_math=False, fontsize=8)
    ax.set_title(_panel_title(term), parse_math=False, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.9).set_label(ylabel, parse_math=False)


def plot_calibration(binned, *, curve=None, score_name="score", ax=None):
    """Calibration curve of the black box's score: observed outcome rate against the score.

    Parameters
    ----------
    binned : pandas.DataFrame
        Output of :func:`sklearn_distill.stats.binned_rate` (``score``, ``rate``, ``low``,
        ``high``, ``count``).
    curve : pandas.DataFrame, optional
        The fitted calibration map, columns ``score`` and ``probability``; drawn as a line.
    score_name : str, default="score"
        Label of the x axis.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> from sklearn_distill.stats import binned_rate
    >>> fig = plot_calibration(binned_rate([1, 1, 2, 2], [0, 1, 1, 1]), score_name="decile")
    >>> fig.axes[0].get_xlabel()
    'decile'
    """
    _check_axes(ax)
    if ax is None:
        ax = Figure(figsize=(5, 3.5), layout="constrained").add_subplot()
    centre = binned["rate"].to_numpy(float)
    # a score value with one outcome only has a Wilson bound a rounding error beyond [0, 1]
    low = np.clip(binned["low"].to_numpy(float), 0.0, 1.0)
    high = np.clip(binned["high"].to_numpy(float), 0.0, 1.0)
    err = np.clip(np.vstack([centre - low, high - centre]), 0.0, None)
    ax.errorbar(
        binned["score"], centre, yerr=err, fmt="o", color="black", ms=4,
        label="observed rate (Wilson interval)",
    )  # fmt: skip
    if curve is not None:
        curve = curve.sort_values("score")
        ax.plot(curve["score"], curve["probability"], color=MIMIC_COLOR, label="calibration map")
    ax.set_xlabel(str(score_name), parse_math=False)
    ax.set_ylabel("P(outcome = 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Calibration of the black-box score")
    return ax.get_figure()


def plot_residuals(
    mimic_residuals, outcome_residuals, *, correlations=None, max_points=5000, ax=None
):
    """Scatter of the mimic's residuals against the outcome model's (out of fold).

    Parameters
    ----------
    mimic_residuals, outcome_residuals : array-like of shape (n_samples,)
        Paired out-of-fold residuals: :meth:`CompareAudit.plot_residuals` passes the
        cross-fitted pairs its missing-feature test correlates.
    correlations : pandas.DataFrame, optional
        Output of :meth:`CompareAudit.missing_feature_test`; its estimates and intervals are
        written in the title.
    max_points : int, default=5000
        At most this many points are drawn (an evenly spaced subset), to keep files small.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_residuals(rng.normal(size=50), rng.normal(size=50))
    >>> fig.axes[0].get_ylabel()
    'outcome residual (y - outcome model)'
    """
    a = np.asarray(mimic_residuals, dtype=float)
    b = np.asarray(outcome_residuals, dtype=float)
    if a.shape != b.shape:
        raise ValueError(
            f"mimic_residuals and outcome_residuals differ in shape: {a.shape} and {b.shape}."
        )
    step = max(1, math.ceil(a.size / max_points))
    _check_axes(ax)
    if ax is None:
        ax = Figure(figsize=(5, 4), layout="constrained").add_subplot()
    ax.scatter(a[::step], b[::step], s=4, alpha=0.3, color="black", linewidths=0)
    if a.size > 1 and np.ptp(a) > 0:
        slope, intercept = np.polyfit(a, b, 1)
        grid = np.linspace(a.min(), a.max(), 50)
        ax.plot(grid, intercept + slope * grid, color=OUTCOME_COLOR, label="least-squares line")
        ax.legend(fontsize=8)
    ax.set_xlabel("mimic residual (score - mimic)")
    ax.set_ylabel("outcome residual (y - outcome model)")
    if correlations is not None:
        parts = [
            f"{name} {row.estimate:.3f} [{row.low:.3f}, {row.high:.3f}]"
            for name, row in correlations.iterrows()
        ]
        ax.set_title("\n".join(parts), fontsize=8)
    return ax.get_figure()
