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
from matplotlib.figure import Figure

__all__ = ["plot_calibration", "plot_comparison", "plot_residuals", "plot_term"]

MIMIC_COLOR = "#1f77b4"
OUTCOME_COLOR = "#d62728"


def _is_numeric(values):
    return pd.api.types.is_numeric_dtype(pd.Series(list(values)).infer_objects())


def _focus_ylim(ax, rows, min_share=0.01):
    """Limit the y axis to the bands of values holding at least ``min_share`` of the rows, so
    that the very wide bands of a few sparse bins do not flatten the rest of the picture."""
    if "weight" not in rows or rows["weight"].sum() <= 0:
        return
    dense = rows[rows["weight"] >= min_share * rows["weight"].sum()]
    if dense.empty:
        return
    columns = ["mimic_lower", "mimic_upper", "outcome_lower", "outcome_upper", "mimic", "outcome"]
    values = dense[columns].to_numpy(float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    pad = 0.1 * (high - low) or 0.1
    ax.set_ylim(low - pad, high + pad)


def plot_term(comparison, term, *, ax=None, max_categories=15):
    """Mimic against outcome model for one term, with their confidence bands.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :meth:`CompareAudit.compare` (columns ``term``, ``value``, ``mimic``,
        ``mimic_lower``, ``mimic_upper``, ``outcome``, ``outcome_lower``, ``outcome_upper``,
        ``significant``).
    term : str
        The term to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.
    max_categories : int, default=15
        For a categorical term, show at most this many values (those with the largest absolute
        ``z``, or difference), so long category lists stay legible.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on. Numeric terms are drawn as step functions with shaded bands,
        categorical ones as points with error bars; values where the difference is significant
        are marked with a star. With a ``weight`` column, the y axis is fitted to the bands of
        the values that hold at least 1% of the rows.

    Examples
    --------
    >>> frame = pd.DataFrame({"term": "age", "value": [20.0, 30.0, 40.0],
    ...     "mimic": [0.5, 0.0, -0.5], "mimic_lower": [0.4, -0.1, -0.6],
    ...     "mimic_upper": [0.6, 0.1, -0.4], "outcome": [0.3, 0.0, -0.3],
    ...     "outcome_lower": [0.2, -0.1, -0.4], "outcome_upper": [0.4, 0.1, -0.2],
    ...     "significant": [True, False, True]})
    >>> ax = plot_term(frame, "age")
    >>> ax.get_title()
    'age'
    """
    rows = comparison[comparison["term"] == term]
    if rows.empty:
        raise ValueError(f"term {term!r} is not in the comparison table.")
    if ax is None:
        ax = Figure(figsize=(5, 3.5), layout="constrained").add_subplot()
    if _is_numeric(rows["value"]):
        rows = rows.assign(value=pd.to_numeric(rows["value"])).sort_values("value")
        x = rows["value"].to_numpy(float)
        for key, color, label in (
            ("mimic", MIMIC_COLOR, "mimic (black box)"),
            ("outcome", OUTCOME_COLOR, "outcome model"),
        ):
            ax.step(x, rows[key], where="post", color=color, label=label)
            ax.fill_between(
                x,
                rows[f"{key}_lower"],
                rows[f"{key}_upper"],
                step="post",
                color=color,
                alpha=0.2,
                linewidth=0,
            )
        sig = rows["significant"].to_numpy(bool)
        if sig.any():
            top = np.maximum(rows["mimic_upper"], rows["outcome_upper"]).to_numpy(float)
            ax.plot(x[sig], top[sig], "k*", markersize=5, label="significant difference")
    else:
        if len(rows) > max_categories:
            # the most significant differences first; the raw difference would favour rare
            # categories whose wide bands say little
            rank = rows["z"] if "z" in rows else rows["difference"]
            keep = rank.abs().nlargest(max_categories).index
            rows = rows.loc[keep]
        positions = np.arange(len(rows))
        labels = [str(v) for v in rows["value"]]
        for key, color, label, shift in (
            ("mimic", MIMIC_COLOR, "mimic (black box)", -0.15),
            ("outcome", OUTCOME_COLOR, "outcome model", 0.15),
        ):
            centre = rows[key].to_numpy(float)
            err = np.vstack(
                [centre - rows[f"{key}_lower"].to_numpy(float), rows[f"{key}_upper"] - centre]
            )
            ax.errorbar(
                positions + shift, centre, yerr=err, fmt="o", color=color, label=label, ms=4
            )
        sig = rows["significant"].to_numpy(bool)
        if sig.any():
            top = np.maximum(rows["mimic_upper"], rows["outcome_upper"]).to_numpy(float)
            ax.plot(positions[sig], top[sig], "k*", markersize=5)
        ax.set_xticks(positions)
        rotate = len(labels) > 3
        ax.set_xticklabels(
            labels,
            rotation=45 if rotate else 0,
            ha="right" if rotate else "center",
            fontsize=7,
            parse_math=False,
        )
    _focus_ylim(ax, rows)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    # names and categories are the user's text: "$" in them is not matplotlib's mathtext
    ax.set_title(str(term), parse_math=False)
    ax.set_ylabel("contribution (log-odds)")
    return ax


def plot_comparison(comparison, terms=None, *, ncols=3, max_categories=15):
    """Mimic against outcome model for several terms, one panel per term.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :meth:`CompareAudit.compare`.
    terms : sequence of str, optional
        Terms to draw, in order; all terms of the table when omitted.
    ncols : int, default=3
        Panels per row.
    max_categories : int, default=15
        Passed to :func:`plot_term`.

    Returns
    -------
    matplotlib.figure.Figure

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
    if terms is None:
        terms = list(dict.fromkeys(comparison["term"]))
    terms = list(terms)
    if not terms:
        raise ValueError("terms must name at least one term.")
    ncols = max(1, min(ncols, len(terms)))
    nrows = math.ceil(len(terms) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, term in zip(axes.ravel(), terms):
        plot_term(comparison, term, ax=ax, max_categories=max_categories)
    for ax in axes.ravel()[len(terms) :]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    return fig


def plot_calibration(binned, *, curve=None, score_name="score"):
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

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn_distill.stats import binned_rate
    >>> fig = plot_calibration(binned_rate([1, 1, 2, 2], [0, 1, 1, 1]), score_name="decile")
    >>> fig.axes[0].get_xlabel()
    'decile'
    """
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    centre = binned["rate"].to_numpy(float)
    err = np.vstack([centre - binned["low"].to_numpy(float), binned["high"] - centre])
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
    return fig


def plot_residuals(mimic_residuals, outcome_residuals, *, correlations=None, max_points=5000):
    """Scatter of the mimic's residuals against the outcome model's (out of fold).

    Parameters
    ----------
    mimic_residuals, outcome_residuals : array-like of shape (n_samples,)
        Out-of-fold residuals, as stored by :class:`CompareAudit` in ``mimic_residuals_`` and
        ``outcome_residuals_``.
    correlations : pandas.DataFrame, optional
        Output of :meth:`CompareAudit.missing_feature_test`; its estimates and intervals are
        written in the title.
    max_points : int, default=5000
        At most this many points are drawn (an evenly spaced subset), to keep files small.

    Returns
    -------
    matplotlib.figure.Figure

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
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.add_subplot()
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
    return fig
