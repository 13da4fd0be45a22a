"""Tidy shape functions of a fitted Explainable Boosting Machine, with confidence bands.

An EBM is a sum of per-term lookup tables over bins. :func:`shape_functions` lays those tables
out as one row per term and bin, with a confidence interval taken from the spread of the
EBM's outer bags (``bagged_scores_``).

Why not interpret's own bands: ``explain_global`` draws the point estimate +- one standard
deviation across bags. Each outer bag is fitted on a random subsample without replacement of a
fraction ``f = 1 - validation_size`` of the rows, so the spread across bags is much narrower
than the sampling spread of a fit on all rows. The delete-d jackknife (Shao and Wu, 1989)
corrects it: with subsamples of ``r = f n`` rows and ``d = n - r`` rows left out, the variance of
the full-data estimate is ``(r / d) * Var_bags = f / (1 - f) * Var_bags``. The band is then the
normal interval ``score +- z_{(1 + confidence) / 2} * sqrt(f / (1 - f)) * SD_bags``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm

COLUMNS = ["term", "value", "score", "lower", "upper", "std_error", "weight", "bin_low", "bin_high"]


def _bag_fraction(ebm, n_samples: float) -> float:
    """Fraction of the rows each outer bag was fitted on."""
    validation_size = getattr(ebm, "validation_size", None) or 0
    if validation_size >= 1:
        return 1.0 - validation_size / n_samples
    return 1.0 - validation_size


def standard_errors(ebm, term_index: int) -> np.ndarray:
    """Delete-d jackknife standard error of each bin's score of one term (NaN when the bags
    cannot tell: fewer than two bags, or bags fitted on all rows)."""
    bagged = np.asarray(ebm.bagged_scores_[term_index], dtype=float)
    n_samples = float(np.sum(ebm.bin_weights_[0]))
    fraction = _bag_fraction(ebm, n_samples)
    if bagged.shape[0] < 2 or not 0 < fraction < 1:
        return np.full(bagged.shape[1:], np.nan)
    return np.std(bagged, axis=0, ddof=1) * np.sqrt(fraction / (1 - fraction))


def _feature_bins(ebm, feature: int, n_term_features: int):
    levels = ebm.bins_[feature]
    return levels[min(n_term_features - 1, len(levels) - 1)]


def _bin_values(cuts, minimum, maximum, n_unique) -> np.ndarray:
    """A representative value per bin of a continuous feature.

    When the feature has no more distinct values than bins, interpret cuts halfway between
    consecutive values, so each value follows from the previous one (``v_k = 2 c_k - v_{k-1}``,
    starting at the minimum); the recovered values are used when they end at the maximum and
    each lies inside its bin. Otherwise, and always for interaction bins, the bin's midpoint.
    """
    edges = np.concatenate([[minimum], cuts, [maximum]])
    midpoints = 0.5 * (edges[:-1] + edges[1:])
    if n_unique != cuts.size + 1:
        return midpoints
    values = [minimum]
    for cut in cuts:
        values.append(2 * cut - values[-1])
    values = np.asarray(values)
    inside = np.all(values[1:] > cuts) and np.all(values[:-1] < cuts)
    if inside and np.isclose(values[-1], maximum):
        values[-1] = maximum
        return values
    return midpoints


def _bin_table(ebm, feature: int, bins) -> pd.DataFrame:
    """Value and edges of each bin of one feature, in the EBM's order (missing bin first; the
    trailing 'unseen' bin is left out)."""
    if isinstance(bins, dict):  # nominal or ordinal: category -> bin index (from 1)
        categories = sorted(bins, key=bins.get)
        values = [np.nan, *categories]
        low = high = np.full(len(values), np.nan)
        return pd.DataFrame({"value": values, "bin_low": low, "bin_high": high})
    cuts = np.asarray(bins, dtype=float)
    minimum, maximum = np.asarray(ebm.feature_bounds_[feature], dtype=float)
    edges = np.concatenate([[minimum], cuts, [maximum]])
    low = np.concatenate([[np.nan], edges[:-1]])
    high = np.concatenate([[np.nan], edges[1:]])
    unique_counts = getattr(ebm, "unique_val_counts_", None)
    n_unique = -1 if unique_counts is None else int(unique_counts[feature])
    values = np.concatenate([[np.nan], _bin_values(cuts, minimum, maximum, n_unique)])
    return pd.DataFrame({"value": values, "bin_low": low, "bin_high": high}, dtype=object)


def shape_functions(ebm, *, confidence: float = 0.95, interactions: bool = True) -> pd.DataFrame:
    """Tidy table of a fitted EBM's shape functions with confidence bands.

    Parameters
    ----------
    ebm : fitted ExplainableBoostingRegressor or ExplainableBoostingClassifier
        Binary or regression EBM (one score per bin).
    confidence : float, default=0.95
        Coverage of the band, in (0, 1).
    interactions : bool, default=True
        Include pairwise interaction terms (their ``value`` is a tuple of the two features'
        bin values).

    Returns
    -------
    pandas.DataFrame
        One row per term and bin, columns:

        - ``term``: the term's name (``"a & b"`` for an interaction);
        - ``value``: the bin's representative value: the category for a nominal feature; for a
          continuous one, the bin's single value when every bin holds one distinct value
          (integer counts, ages), else the bin's midpoint (edges in ``bin_low``,
          ``bin_high``); NaN for the missing-value bin (listed only when missing values were
          seen in training);
        - ``score``: the term's contribution on the model's scale (log-odds for a classifier);
        - ``lower``, ``upper``: the confidence band (see the module docstring), NaN when the
          bags cannot give one;
        - ``std_error``: the jackknife standard error behind the band;
        - ``weight``: training rows (or sample weight) in the bin.

    Examples
    --------
    >>> import numpy as np
    >>> from interpret.glassbox import ExplainableBoostingRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> ebm = ExplainableBoostingRegressor(outer_bags=4, max_rounds=50, interactions=0)
    >>> table = shape_functions(ebm.fit(X, X[:, 0] ** 2))
    >>> list(table.columns[:5])
    ['term', 'value', 'score', 'lower', 'upper']
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence!r}.")
    if not hasattr(ebm, "term_scores_"):
        raise TypeError(
            f"shape functions need a fitted Explainable Boosting Machine; got {type(ebm).__name__}."
        )
    z = norm.ppf(0.5 + confidence / 2)
    frames = []
    for index, (features, name) in enumerate(zip(ebm.term_features_, ebm.term_names_)):
        scores = np.asarray(ebm.term_scores_[index], dtype=float)
        if scores.ndim > 2 or (scores.ndim == 2 and not interactions):
            continue
        if scores.ndim == 2 and len(features) == 1:
            raise ValueError("shape_functions handles binary and regression EBMs only.")
        errors = standard_errors(ebm, index)
        weights = np.asarray(ebm.bin_weights_[index], dtype=float)
        tables = [_bin_table(ebm, f, _feature_bins(ebm, f, len(features))) for f in features]
        # drop the trailing "unseen" bin of every axis
        keep = tuple(slice(0, len(table)) for table in tables)
        scores, errors, weights = scores[keep], errors[keep], weights[keep]
        if len(features) == 1:
            frame = tables[0].copy()
        else:
            grid = np.meshgrid(*[np.arange(len(t)) for t in tables], indexing="ij")
            values = [
                tuple(t["value"].iloc[i] for t, i in zip(tables, cell))
                for cell in zip(*(g.ravel() for g in grid))
            ]
            frame = pd.DataFrame({"value": values, "bin_low": np.nan, "bin_high": np.nan})
        frame["score"] = scores.ravel()
        frame["std_error"] = errors.ravel()
        frame["weight"] = weights.ravel()
        frame["term"] = name
        frames.append(frame[frame["weight"] > 0])
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    table["lower"] = table["score"] - z * table["std_error"]
    table["upper"] = table["score"] + z * table["std_error"]
    if table["std_error"].isna().all():
        warnings.warn(
            "the EBM's bags cannot give confidence bands (fewer than 2 outer bags, or "
            "validation_size=0 so that every bag saw all rows); lower and upper are NaN.",
            UserWarning,
            stacklevel=2,
        )
    return table[COLUMNS]
