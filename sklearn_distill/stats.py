"""Statistics for Distill-and-Compare audits: pure functions on arrays and data frames.

Nothing here fits a model or touches a file. The functions are the arithmetic behind
:class:`sklearn_distill.CompareAudit`:

* :func:`bootstrap_correlations` -- Pearson, Spearman and Kendall correlations of two paired
  samples (the mimic's and the outcome model's residuals) with percentile bootstrap intervals
  and bootstrap p-values for "no correlation".
* :func:`compare_shapes` -- two shape-function tables side by side with their difference, its
  standard error and whether it is significant.
* :func:`term_stability` -- which terms' importance and shape change across refits.
* :func:`binned_rate` -- observed outcome rate per score value or score bin, with Wilson
  intervals, for calibration curves.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import special
from scipy import stats as sp_stats
from sklearn.utils import check_random_state

from sklearn_distill._validation import check_integer, check_real, fail
from sklearn_distill.shapes import _INTEGER_LABEL, _label_order

__all__ = [
    "CORRELATION_METHODS",
    "binned_rate",
    "bootstrap_correlations",
    "bootstrap_p_value",
    "compare_shapes",
    "correlation",
    "lacks_bands",
    "normal_quantile",
    "resamples_needed",
    "summarize_terms",
    "term_stability",
    "untested_terms",
]

CORRELATION_METHODS = ("pearson", "spearman", "kendall")

# Bootstrap replicates are drawn in fixed-size chunks, each with its own seed derived from the
# caller's seed, so the result does not depend on how many workers share the chunks.
_CHUNK = 50


def normal_quantile(confidence):
    """Two-sided standard normal quantile for a confidence level.

    Parameters
    ----------
    confidence : float
        Confidence level in (0, 1), e.g. 0.95.

    Returns
    -------
    float
        ``z`` such that ``P(|Z| <= z) = confidence`` for a standard normal ``Z`` (1.96 for 0.95).

    Examples
    --------
    >>> round(normal_quantile(0.95), 2)
    1.96
    """
    confidence = _check_confidence(confidence)
    return float(special.ndtri(0.5 + confidence / 2.0))


def _check_confidence(confidence, name="confidence"):
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating)):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(confidence).__name__}.")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {confidence!r}.")
    return float(confidence)


def _as_numbers(name, values):
    """``values`` as a float array, or a TypeError naming the argument (numpy's own words
    name no argument: "could not convert string to float: 'no'")."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be numbers; got values numpy cannot read so ({error})."
        ) from None


def _check_paired(x, y, names=("x", "y")):
    x = _as_numbers(names[0], x)
    y = _as_numbers(names[1], y)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(
            f"{names[0]} and {names[1]} must be one-dimensional, got shapes {x.shape} and "
            f"{y.shape}."
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same length, got {x.shape[0]} and "
            f"{y.shape[0]}."
        )
    if x.shape[0] < 3:
        raise ValueError(f"{names[0]} and {names[1]} must hold at least 3 pairs; got {x.shape[0]}.")
    for name, values in zip(names, (x, y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    return x, y


def _check_stacked(x, y):
    """``x`` and ``y`` as arrays of shape (n_repeats, n_pairs, n_samples): a one-dimensional
    sample is one repeat of one pair."""
    x = _as_numbers("x", x)
    y = _as_numbers("y", y)
    if x.ndim == 1 or y.ndim == 1:
        x, y = _check_paired(x, y)
        return x[None, None, :], y[None, None, :]
    if x.ndim != 3 or x.shape != y.shape:
        raise ValueError(
            "x and y must be one-dimensional, or both of shape (n_repeats, n_pairs, n_samples); "
            f"got shapes {x.shape} and {y.shape}."
        )
    if min(x.shape) < 1 or x.shape[2] < 3:
        raise ValueError(f"at least 3 samples in every pair are needed, got shape {x.shape}.")
    for name, values in (("x", x), ("y", y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    return x, y


def _stacked_correlations(x, y, counts, methods, per_repeat=False):
    """Correlations of resamples of stacked samples, each given by the multiplicities
    ``counts`` (shape (n_draws, n_samples): how often a resample holds each sample).

    For each repeat, every pair of each sample in the resample is stacked (``x[r, :, s]``
    against ``y[r, :, s]``, as often as the resample holds sample ``s``); the result is the
    mean over the repeats, one array per method (with ``per_repeat``, each repeat's: arrays of
    shape (n_repeats, n_draws)).

    Pearson's r is the weighted one,
    from weighted sums of per-sample moments; Spearman's rho is the weighted Pearson's r of
    the resample's mean ranks, which come from one sort of the full sample (a value's rank in
    a resample is the weight of the smaller values plus half its tie group's weight, plus one
    half). Kendall's tau-b is computed on the gathered resample.
    """
    n_repeats, _, length = x.shape
    n_draws = counts.shape[0]
    positions = (
        [np.repeat(np.arange(length), draw) for draw in counts] if "kendall" in methods else None
    )
    counts = counts.astype(float)
    out = {m: np.zeros((n_repeats, n_draws)) for m in methods}
    for r in range(n_repeats):
        if "pearson" in methods:
            out["pearson"][r] = _weighted_pearson(counts, x[r], y[r])
        if "spearman" in methods:
            out["spearman"][r] = _weighted_pearson(
                counts, _resample_ranks(counts, x[r]), _resample_ranks(counts, y[r])
            )
        if "kendall" in methods:
            # the resample gathered (Kendall's tau-b does not depend on the rows' order)
            out["kendall"][r] = [
                _kendall(x[r][:, held].ravel(), y[r][:, held].ravel()) for held in positions
            ]
    return out if per_repeat else {m: value.mean(axis=0) for m, value in out.items()}


def _weighted_pearson(counts, a, b):
    """Pearson's r of stacked pairs under multiplicities of the samples.

    ``counts`` has shape (n_draws, n_samples); ``a`` and ``b`` have shape (n_pairs,
    n_samples) (the same in every draw) or (n_draws, n_pairs, n_samples). NaN where either
    takes one value only in a draw.

    The moments come from weighted sums about the full sample's mean (one pass). Where that
    loses precision (a draw whose variance is small next to its mean square about the full
    sample's mean: it left out an outlier, or takes one value) the draw is recomputed about
    its own mean.
    """
    total = counts.sum(axis=1) * a.shape[-2]

    def weighted_sum(u):  # sum over a draw's stacked values, each counted as often as drawn
        u = u.sum(axis=-2)
        return counts @ u if u.ndim == 1 else np.einsum("dn,dn->d", counts, u)

    a = _unit_scaled(a - a.mean(axis=(-2, -1), keepdims=True))
    b = _unit_scaled(b - b.mean(axis=(-2, -1), keepdims=True))
    mean_a, mean_b = weighted_sum(a) / total, weighted_sum(b) / total
    square_a, square_b = weighted_sum(a * a) / total, weighted_sum(b * b) / total
    variance_a = square_a - mean_a**2
    variance_b = square_b - mean_b**2
    covariance = weighted_sum(a * b) / total - mean_a * mean_b
    usable = np.ones(counts.shape[0], dtype=bool)
    coarse = np.flatnonzero((variance_a <= 1e-6 * square_a) | (variance_b <= 1e-6 * square_b))
    if coarse.size:
        weights = counts[coarse]

        def about_own_mean(u, mean):
            u = u[coarse] if u.ndim == 3 else np.broadcast_to(u, (coarse.size, *u.shape))
            return u - mean[coarse][:, None, None]

        def sums(u):
            return np.einsum("dn,dn->d", weights, u.sum(axis=1)) / total[coarse]

        a_rows, b_rows = about_own_mean(a, mean_a), about_own_mean(b, mean_b)
        variance_a[coarse] = sums(a_rows * a_rows)
        variance_b[coarse] = sums(b_rows * b_rows)
        covariance[coarse] = sums(a_rows * b_rows)
        # a draw of one value has no spread, whatever the rounding left
        present = np.broadcast_to((weights > 0)[:, None, :], a_rows.shape)
        for values in (a_rows, b_rows):
            low = np.where(present, values, np.inf).min(axis=(1, 2))
            high = np.where(present, values, -np.inf).max(axis=(1, 2))
            usable[coarse] &= high > low
    scale = np.sqrt(np.clip(variance_a, 0, None) * np.clip(variance_b, 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = covariance / scale
    return np.where(usable & (scale > 0), np.clip(r, -1.0, 1.0), np.nan)


def _resample_ranks(counts, values):
    """Mean ranks (1-based) of the stacked ``values`` (shape (n_pairs, n_samples)) in each
    resample given by a row of ``counts``; shape (n_draws, n_pairs, n_samples)."""
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.empty(flat.size, dtype=np.intp)
    group[order] = np.cumsum(starts) - 1
    n_groups = int(group[order[-1]]) + 1
    n_draws = counts.shape[0]
    weights = np.tile(counts, values.shape[0])  # each stacked value's multiplicity
    group_weight = np.bincount(
        (group + n_groups * np.arange(n_draws)[:, None]).ravel(),
        weights=weights.ravel(),
        minlength=n_draws * n_groups,
    ).reshape(n_draws, n_groups)
    # one running sum over the draws laid end to end (faster than a cumsum along axis 1); the
    # counts are integers, so the sums are exact
    running = np.cumsum(group_weight.ravel()).reshape(n_draws, n_groups)
    running[1:] -= running[:-1, -1:].copy()
    rank = running - (group_weight - 1) / 2
    return rank[:, group].reshape(n_draws, *values.shape)


def _rowwise_pearson(a, b):
    # Pearson's r along the last axis; rows with zero variance give NaN, not a warning.
    a = _unit_scaled(a - a.mean(axis=-1, keepdims=True), axis=-1)
    b = _unit_scaled(b - b.mean(axis=-1, keepdims=True), axis=-1)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=-1) / denom
    return np.where(denom > 0, r, np.nan)


def _unit_scaled(values, axis=None):
    """``values`` divided by their largest magnitude (along ``axis``) where it lies outside
    [1e-100, 1e100], so that their squares neither underflow (values near 1e-200) nor overflow
    (near 1e200): a correlation does not depend on the scale. Values of usual magnitudes are
    left as they are (their figures to the last digit)."""
    divisor = _extreme_peak(values, axis)
    return values if divisor is None else values / divisor


def _extreme_peak(values, axis=None):
    """The largest finite magnitude of ``values`` (along ``axis``, kept as a dimension) where
    it lies outside [1e-100, 1e100], 1 elsewhere; None when it lies inside everywhere."""
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(values), np.abs(values), 0.0)
        peak = finite.max(axis=axis, keepdims=axis is not None)
    extreme = (peak > 0) & ((peak < 1e-100) | (peak > 1e100))
    return np.where(extreme, peak, 1.0) if np.any(extreme) else None


def _kendall(a, b):
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return float(sp_stats.kendalltau(a, b).statistic)


def _correlations_of(a, b, methods):
    """Correlations of paired rows ``a[i], b[i]`` (2-D arrays), one array per method."""
    out = {}
    if "pearson" in methods:
        out["pearson"] = _rowwise_pearson(a, b)
    if "spearman" in methods:
        out["spearman"] = _rowwise_pearson(
            sp_stats.rankdata(a, axis=-1), sp_stats.rankdata(b, axis=-1)
        )
    if "kendall" in methods:
        out["kendall"] = np.array([_kendall(ra, rb) for ra, rb in zip(a, b)])
    return out


def correlation(x, y, method="pearson"):
    """Correlation of two paired samples.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
        Paired observations, finite.
    method : {"pearson", "spearman", "kendall"}, default="pearson"
        Pearson's product-moment ``r``, Spearman's rank ``rho`` (Pearson's ``r`` of average
        ranks) or Kendall's ``tau-b`` (which accounts for ties).

    Returns
    -------
    float
        The correlation; NaN when either sample is constant.

    Examples
    --------
    >>> correlation([1, 2, 3, 4], [1, 3, 2, 4], method="spearman")
    0.8
    """
    x, y = _check_paired(x, y)
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {CORRELATION_METHODS}; got {method!r}.")
    if method not in CORRELATION_METHODS:
        raise ValueError(f"method must be one of {CORRELATION_METHODS}; got {method!r}.")
    methods = (method,)
    return float(_correlations_of(x[None, :], y[None, :], methods)[method][0])


def _check_methods(methods):
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in CORRELATION_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"methods must be a non-empty subset of {CORRELATION_METHODS}, got {methods!r}."
        )
    return methods


def resamples_needed(confidence) -> int:
    """The fewest bootstrap resamples whose p-value floor, ``2 / (B + 1)`` (see
    :func:`bootstrap_p_value`), lies below the level ``1 - confidence`` (rounded as the
    verdicts read it: 1 - 0.95 is 0.05000000000000004): 40 at 95%, 200 at 99%.

    Examples
    --------
    >>> resamples_needed(0.95), resamples_needed(0.99)
    (40, 200)
    """
    alpha = round(1.0 - _check_confidence(confidence), 12)
    return math.floor(2 / alpha - 1) + 1


def lacks_bands(comparison, min_weight) -> bool:
    """Whether some values held by enough rows (``weight >= min_weight``) have no standard
    error in :func:`compare_shapes`' table (models whose bags give no confidence bands): they
    are untestable for that reason, not for their rows."""
    if not {"weight", "difference_lower"} <= set(comparison.columns):
        return False
    enough = comparison["weight"].to_numpy(float) >= float(min_weight)
    return bool((enough & comparison["difference_lower"].isna().to_numpy()).any())


def bootstrap_p_value(replicates, null=0.0):
    """Two-sided bootstrap p-value for ``statistic == null``.

    The achieved significance level of the percentile interval (Efron and Tibshirani, 1993,
    ch. 15): the smallest ``alpha`` for which the ``1 - alpha`` percentile interval of the
    replicates excludes ``null``. With ``B`` replicates the smallest reachable value is
    ``2 / (B + 1)``, because the observed sample counts as one replicate on each side.

    Parameters
    ----------
    replicates : array-like of shape (n_bootstrap,)
        Bootstrap replicates of the statistic; NaN entries are ignored (an infinite one
        counts on its side of ``null``, as the interval's order statistics place it).
    null : float, default=0.0
        Value of the statistic under the null hypothesis.

    Returns
    -------
    float
        p-value in ``(0, 1]``; NaN when every replicate is NaN.

    Examples
    --------
    >>> bootstrap_p_value([0.2, 0.3, 0.25, -0.01])
    0.8
    """
    replicates = _as_numbers("replicates", replicates)
    if replicates.ndim != 1:
        raise ValueError(
            f"replicates must be one-dimensional (one statistic per resample); got shape "
            f"{replicates.shape}."
        )
    null = check_real("null", null)
    replicates = replicates[~np.isnan(replicates)]
    n = replicates.size
    if n == 0:
        return float("nan")
    below = (np.count_nonzero(replicates <= null) + 1) / (n + 1)
    above = (np.count_nonzero(replicates >= null) + 1) / (n + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def _bootstrap_chunk(x, y, n_draws, seed, methods, groups=None):
    """``n_draws`` resamples: of the samples, or (``groups``: a code 0..G-1 per sample) of the
    groups, every sample of a drawn group taken each time it is drawn."""
    rng = np.random.default_rng(seed)
    units = x.shape[2] if groups is None else int(groups.max()) + 1
    drawn = rng.integers(0, units, size=(n_draws, units))
    counts = np.bincount(
        (drawn + units * np.arange(n_draws)[:, None]).ravel(), minlength=n_draws * units
    ).reshape(n_draws, units)
    if groups is not None:
        counts = counts[:, groups]
    return _stacked_correlations(x, y, counts, methods)


def _add_between_repeats(per_repeat, estimates, replicates):
    """Stretch each method's replicates about its estimate so that their variance gains the
    repeats' own spread (``per_repeat``: each repeat's correlation) over the number of
    repeats (see :func:`bootstrap_correlations`)."""
    for m, values in per_repeat.items():
        reps = replicates[m].to_numpy()
        finite = reps[np.isfinite(reps)]
        if finite.size < 2 or not np.all(np.isfinite(values)):
            continue
        se = np.std(finite, ddof=1)
        between = np.var(values, ddof=1) / values.size
        if se > 0:
            _stretch(replicates, m, estimates[m], np.sqrt(1.0 + between / se**2))


def _stretch(replicates, method, estimate, factor):
    """Move ``method``'s replicates away from ``estimate`` by ``factor``, clipped to [-1, 1]."""
    stretched = estimate + factor * (replicates[method].to_numpy() - estimate)
    replicates[method] = np.clip(stretched, -1.0, 1.0)


def bootstrap_correlations(
    x,
    y,
    *,
    n_bootstrap=1000,
    confidence=0.95,
    methods=CORRELATION_METHODS,
    random_state=None,
    n_jobs=None,
    return_replicates=False,
    groups=None,
    variance_inflation=1.0,
):
    """Correlations of paired samples with percentile bootstrap intervals and p-values.

    Pairs ``(x[i], y[i])`` are resampled with replacement ``n_bootstrap`` times; each method's
    correlation is recomputed on every resample. The interval is the percentile interval of the
    replicates; the p-value (for "the correlation is zero") is :func:`bootstrap_p_value`.
    Percentile p-values of an unstudentised Pearson correlation are anti-conservative when
    both samples are skewed: for independent pairs of a lognormal (sigma 1.5) and a rare-event
    residual (5% events), 1,000 pairs, 400 resamples, the test rejected in 14% of 600 draws
    at 5% (12% for two lognormals); symmetric heavy tails (t with 2.5 degrees of freedom)
    held the level.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,) or (n_repeats, n_pairs, n_samples)
        Paired observations, finite, at least 3 samples. Three-dimensional input holds
        several pairs per sample (as the cross-fitted residuals of
        :class:`~sklearn_distill.CompareAudit`): in each repeat the ``n_pairs`` pairs of every
        sample are stacked into one sample of ``n_pairs * n_samples`` pairs, the statistic is
        the mean over the repeats of the stacked correlation, and a resample draws samples
        (all their pairs, in every repeat) with replacement. The repeats are taken to be
        repeats of a random procedure on the same samples (new splits and model fits), which
        a resample of the samples holds fixed: with two or more repeats, their spread is added
        to the bootstrap's variance, each replicate being moved away from the estimate by the
        factor ``sqrt(1 + s**2 / (n_repeats * se**2))`` (``s``: the standard deviation of the
        per-repeat correlations; ``se``: the replicates' standard deviation), so that the
        replicates' variance is ``se**2 + s**2 / n_repeats``, the variance of a mean of
        ``n_repeats`` repeats (after the repeated cross-fitting of Chernozhukov et al., 2018);
        a stretched replicate is clipped to [-1, 1].
    n_bootstrap : int, default=1000
        Number of bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the intervals.
    methods : sequence of {"pearson", "spearman", "kendall"}, default=all three
        Correlations to compute.
    random_state : int, RandomState instance or None, default=None
        Seed of the resampling. The result does not depend on ``n_jobs``.
    n_jobs : int or None, default=None
        Workers for joblib (``None`` means 1 unless inside a ``joblib.parallel_backend``
        context; ``-1`` means all cores).
    return_replicates : bool, default=False
        Also return the replicates, a data frame with one column per method.
    groups : array-like of shape (n_samples,), default=None
        Record identifiers: the bootstrap then draws records with replacement (a cluster
        bootstrap), every sample of a drawn record taken each time, so that samples of one
        record (a case entered several times) are never treated as independent. With one
        sample per record it is the plain bootstrap, draw for draw.
    variance_inflation : float, default=1.0
        At least 1: the replicates are moved away from the estimate by its square root
        (before the repeats' spread is added), so that their variance is that many times the
        resampling's. For samples that are residuals of a least-squares fit of ``k`` columns
        on ``n`` rows, ``n / (n - k)``: such residuals vary less than the errors they stand
        for, and resampled as independent they understate the correlation's variance by
        about that factor.

    Returns
    -------
    table : pandas.DataFrame
        Index: the methods. Columns ``estimate`` (on the full sample), ``low``, ``high`` (the
        interval), ``p_value``, ``std_error`` (standard deviation of the replicates) and
        ``n_bootstrap`` (finite replicates: a resample of constant values has no correlation).
    replicates : pandas.DataFrame
        Only when ``return_replicates`` is true.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=200)
    >>> b = a + rng.normal(size=200)
    >>> table = bootstrap_correlations(a, b, n_bootstrap=200, random_state=0)
    >>> list(table.columns)
    ['estimate', 'low', 'high', 'p_value', 'std_error', 'n_bootstrap']
    >>> bool(table.loc["pearson", "low"] > 0.5)
    True
    """
    x, y = _check_stacked(x, y)
    methods = _check_methods(methods)
    confidence = _check_confidence(confidence)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise TypeError(f"n_bootstrap must be an int, got {type(n_bootstrap).__name__}.")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}.")
    variance_inflation = check_real("variance_inflation", variance_inflation, minimum=1.0)
    codes = None
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != x.shape[2]:
            raise ValueError(
                f"groups must hold one record identifier per sample ({x.shape[2]}); got shape "
                f"{groups.shape}."
            )
        codes, _ = pd.factorize(pd.Series(groups, dtype=object))  # in order of appearance
        if (codes < 0).any():
            raise ValueError(
                "groups must hold a record identifier on every sample; got missing values."
            )
        if codes.max() < 1:
            raise ValueError("groups must hold at least 2 distinct record identifiers; got 1.")

    per_repeat = _stacked_correlations(
        x, y, np.ones((1, x.shape[2]), dtype=np.int64), methods, per_repeat=True
    )
    per_repeat = {m: values[:, 0] for m, values in per_repeat.items()}
    estimates = {m: values.mean() for m, values in per_repeat.items()}
    rng = check_random_state(random_state)
    sizes = [min(_CHUNK, n_bootstrap - start) for start in range(0, n_bootstrap, _CHUNK)]
    seeds = rng.randint(0, 2**31 - 1, size=len(sizes))
    chunks = Parallel(n_jobs=n_jobs)(
        delayed(_bootstrap_chunk)(x, y, size, int(seed), methods, codes)
        for size, seed in zip(sizes, seeds)
    )
    replicates = pd.DataFrame({m: np.concatenate([chunk[m] for chunk in chunks]) for m in methods})
    if variance_inflation != 1.0:
        for m in methods:
            _stretch(replicates, m, estimates[m], np.sqrt(variance_inflation))
    if x.shape[0] > 1:
        _add_between_repeats(per_repeat, estimates, replicates)

    alpha = 1.0 - confidence
    rows = {}
    for m in methods:
        reps = replicates[m].to_numpy()
        finite = reps[np.isfinite(reps)]
        if finite.size:
            low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
            std_error = float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan
        else:
            low = high = std_error = np.nan
        rows[m] = {
            "estimate": float(estimates[m]),
            "low": float(low),
            "high": float(high),
            "p_value": bootstrap_p_value(finite),
            "std_error": std_error,
            "n_bootstrap": int(finite.size),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    if return_replicates:
        return table, replicates
    return table


def _t_quantile(confidence, dof):
    """Two-sided Student quantile per row; normal where the degrees of freedom are unknown."""
    dof = np.asarray(dof, dtype=float)
    usable = np.isfinite(dof) & (dof > 0)
    quantile = np.full(dof.shape, normal_quantile(confidence))
    quantile[usable] = sp_stats.t.ppf(0.5 + confidence / 2.0, dof[usable])
    return quantile


def _benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    p_values = np.asarray(p_values, dtype=float)
    if p_values.size == 0:
        return p_values
    return sp_stats.false_discovery_control(p_values, method="bh")


def _two_stage_bh(p_values, families, alpha):
    """Adjusted p-values of the two-stage procedure of Benjamini and Bogomolov (2014).

    Families (``families``: a code per hypothesis) are selected by Benjamini-Hochberg on their
    Simes p-values; inside each of the ``R`` selected families, of ``m`` in all, Benjamini-
    Hochberg runs at the level ``alpha * R / m``. The value returned for a hypothesis of a
    selected family is its within-family adjusted p-value times ``m / R`` (compared with
    ``alpha``, it gives the procedure's decision); for a hypothesis of a family not selected, the
    family's own adjusted p-value, or that product if larger (both at least ``alpha``). The
    expected share of false discoveries among a selected family's discoveries, averaged over the
    selected families, stays at most ``alpha``, and so does the false discovery rate over the
    families; a family of two values no longer competes with families of hundreds.
    """
    codes, index = np.unique(families, return_inverse=True)
    within = np.empty(p_values.shape)
    simes = np.empty(codes.size)
    for k in range(codes.size):
        members = index == k
        within[members] = _benjamini_hochberg(p_values[members])
        simes[k] = within[members].min()
    family_adjusted = _benjamini_hochberg(simes)
    selected = family_adjusted < alpha
    scale = codes.size / max(int(selected.sum()), 1)
    adjusted = np.minimum(1.0, within * scale)
    return np.where(selected[index], adjusted, np.maximum(adjusted, family_adjusted[index]))


def compare_shapes(
    mimic,
    outcome,
    *,
    confidence=0.95,
    on=("term", "value"),
    min_weight=0.0,
    family=None,
    within=None,
):
    """Two shape-function tables side by side, with their difference and its significance.

    Each table has one row per term and value, a point estimate ``score`` and its standard
    error ``std_error``. The two models' errors are treated as independent (they are fitted
    separately, to different targets, though on the same rows), so the standard error of the
    difference is ``sqrt(se_mimic**2 + se_outcome**2)``; the difference is significant when its
    two-sided interval at ``confidence`` excludes zero. The interval is normal, or, when both
    tables carry the degrees of freedom of their errors (a ``dof`` column, as
    :func:`~sklearn_distill.shapes.shape_functions` gives), Student's on the Welch-Satterthwaite
    degrees of freedom ``(se_m**2 + se_o**2)**2 / (se_m**4 / dof_m + se_o**4 / dof_o)`` (a
    side whose standard error is 0 adds no term, whatever its ``dof``).

    Parameters
    ----------
    mimic, outcome : pandas.DataFrame
        Columns ``on`` plus ``score`` and ``std_error``; other columns are carried over with a
        ``mimic_`` or ``outcome_`` prefix.
    confidence : float, default=0.95
        Level of the bands and of the test.
    on : str or sequence of str, default=("term", "value")
        Column(s) identifying a row; rows present in only one table are dropped, with a warning
        that counts them on each side and shows one (text keys match only when spelled
        alike), and the counts are kept in
        ``result.attrs["unmatched"]`` (``{"mimic": int, "outcome": int}``).
    min_weight : float, default=0.0
        Rows whose ``weight`` (a column of ``mimic``, needed when ``min_weight > 0``) is below
        this are kept but not tested: never flagged, and left out of the Benjamini-Hochberg
        family.
    family : str, optional
        A column of ``mimic`` (or of ``on``) whose groups are separate Benjamini-Hochberg
        families, each adjusted on its own (:meth:`CompareAudit.compare` adjusts main effects
        and interaction cells apart); ``None`` adjusts all tested rows together.
    within : str, optional
        A column of ``mimic`` (or of ``on``) that splits each family further into groups
        adjusted in two stages (Benjamini and Bogomolov, 2014): the groups whose values
        differ at all are selected first, by Benjamini-Hochberg on each group's Simes p-value,
        and Benjamini-Hochberg then runs inside each selected group at the level
        ``(1 - confidence) * R / m`` (``R`` groups selected of ``m``). With the terms as
        groups (as :meth:`CompareAudit.compare` does), a boolean feature's two values are
        no longer adjusted against the hundreds of values of the continuous features: they
        need ``p < 0.05 / n_terms`` or so, not ``0.05 / n_values``. The false discovery rate
        is controlled over the groups and, on average, within the selected groups.

    Returns
    -------
    pandas.DataFrame
        Columns ``on``, then ``mimic``, ``mimic_lower``, ``mimic_upper``, ``outcome``,
        ``outcome_lower``, ``outcome_upper``, ``difference`` (mimic - outcome),
        ``difference_lower``, ``difference_upper``, ``z``, ``p_value``, ``significant`` (per
        value, no correction for the number of values), ``p_value_bh`` (Benjamini-Hochberg
        adjusted over the tested rows of its family, in two stages when ``within`` is given;
        NaN for the others), ``significant_bh``
        (``p_value_bh < 1 - confidence``: controls the false discovery rate within each
        family), ``testable``
        (``weight >= min_weight``, and a finite standard error above 0 unless the two agree
        to rounding), then any extra columns.

    Examples
    --------
    >>> a = pd.DataFrame({"term": ["x", "x"], "value": [0, 1], "score": [0.0, 1.0],
    ...                   "std_error": [0.1, 0.1]})
    >>> b = a.assign(score=[0.0, 0.2])
    >>> compare_shapes(a, b)["significant"].tolist()
    [False, True]
    """
    confidence = _check_confidence(confidence)
    min_weight = check_real("min_weight", min_weight, minimum=0)
    on = [on] if isinstance(on, str) else list(on)  # one column by its name, as pandas reads it
    for name, frame in (("mimic", mimic), ("outcome", outcome)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
        missing = [c for c in [*on, "score", "std_error"] if c not in frame.columns]
        if min_weight > 0 and name == "mimic" and "weight" not in frame.columns:
            missing.append("weight")
        for column in (family, within):
            if column is not None and name == "mimic" and column not in frame.columns:
                missing.append(column)
        if missing:
            raise ValueError(f"{name} lacks the columns {missing}.")
        repeated = frame.duplicated(subset=on, keep=False)
        if bool(repeated.any()):
            first = ", ".join(map(str, frame.loc[repeated, on].iloc[0].tolist()))
            raise ValueError(
                f"{name} must hold one row per {tuple(on)}; got {int(repeated.sum())} rows that "
                f"share their keys, e.g. ({first}) (each pairing would be tested and counted in "
                "the Benjamini-Hochberg family)."
            )
        # the columns read as numbers, refused by name when they are not
        read = ["score", "std_error", "dof", "weight" if min_weight > 0 else None]
        for column in (c for c in read if c in frame.columns):
            values = _as_numbers(f"{name}'s {column}", frame[column])
            what = {"std_error": "NaN where there is none", "dof": "NaN if unknown"}.get(column)
            if what and bool((values < 0).any()):
                raise ValueError(
                    f"{name}'s {column} must be non-negative (or {what}); got "
                    f"{int((values < 0).sum())} negative value(s), the smallest "
                    f"{np.nanmin(values):.4g}."
                )
    for name, column in (("family", family), ("within", within)):
        if column in ("score", "std_error", "dof"):
            raise ValueError(
                f"{name} must name a column that groups the rows (a column of mimic other "
                f"than score, std_error and dof); got {column!r}."
            )
    with_dof = "dof" in mimic.columns and "dof" in outcome.columns

    def _prefixed(frame, prefix):
        extra = [c for c in frame.columns if c not in on]
        return frame.rename(columns={c: f"{prefix}_{c}" for c in extra})

    try:
        merged = _prefixed(mimic, "mimic").merge(_prefixed(outcome, "outcome"), on=on, how="inner")
    except ValueError as error:  # keys of types pandas cannot match (numbers against text)
        kinds = {
            name: {key: str(frame[key].dtype) for key in on}
            for name, frame in (("mimic", mimic), ("outcome", outcome))
        }
        raise ValueError(
            f"outcome's key columns {on} must be of the types of mimic's, so that the rows "
            f"can be matched; got {kinds['mimic']} against {kinds['outcome']} (pandas said: "
            f"{error})"
        ) from None
    unmatched = _unmatched_rows(mimic, outcome, on, len(merged))
    m, se_m = merged.pop("mimic_score").to_numpy(float), merged.pop("mimic_std_error")
    o, se_o = merged.pop("outcome_score").to_numpy(float), merged.pop("outcome_std_error")
    se_m, se_o = se_m.to_numpy(float), se_o.to_numpy(float)
    if with_dof:
        dof_m = merged.pop("mimic_dof").to_numpy(float)
        dof_o = merged.pop("outcome_dof").to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            # a side without spread adds nothing to the sum, whatever its degrees of freedom
            # (unknown ones too): the difference then has the other side's
            part_m = np.where(se_m == 0, 0.0, se_m**4 / dof_m)
            part_o = np.where(se_o == 0, 0.0, se_o**4 / dof_o)
            dof_d = (se_m**2 + se_o**2) ** 2 / (part_m + part_o)
        crit_m, crit_o, crit_d = (_t_quantile(confidence, d) for d in (dof_m, dof_o, dof_d))
    else:
        crit_m = crit_o = crit_d = np.full(m.shape, normal_quantile(confidence))
        dof_d = np.full(m.shape, np.inf)
    diff = m - o
    se_d = np.sqrt(se_m**2 + se_o**2)
    # A standard error of 0 (every bag gave the same value) is no certainty: values the fits
    # pin down exactly (a purified interaction cell whose main effects take it all, 1e-308 on
    # both sides) differ by rounding alone. Such a row is no difference when the two agree to
    # rounding, and is not tested otherwise, like a row without a standard error (bags that
    # cannot give one).
    negligible = np.abs(diff) <= 1e-9 * np.maximum(1.0, np.maximum(np.abs(m), np.abs(o)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se_d > 0, diff / se_d, np.where(negligible, 0.0, np.nan))
    z = np.where(np.isnan(se_d), np.nan, z)
    # Student's on the degrees of freedom the band reads (normal where they are unknown or 0),
    # so that a value is significant exactly when its band excludes zero
    known = np.isfinite(dof_d) & (dof_d > 0)
    p_value = 2.0 * sp_stats.t.sf(np.abs(z), np.where(known, dof_d, np.inf))
    # a real difference without spread over the bags cannot be tested, nor one without a
    # (finite) standard error at all (models that give no bands), nor a score that is no
    # number: untested, and counted so
    testable = ~((se_d == 0) & ~negligible) & np.isfinite(se_d) & np.isfinite(diff)
    if min_weight > 0:
        testable &= merged["mimic_weight"].to_numpy(float) >= min_weight
    # An audit tests hundreds of values at once: the Benjamini-Hochberg adjustment keeps the
    # expected share of false discoveries among the flagged values at 1 - confidence.
    p_value_bh = np.full(m.shape, np.nan)
    tested = testable & np.isfinite(p_value)

    def codes(column):
        if column is None:
            return np.zeros(m.shape, dtype=int)
        values = merged[column] if column in on else merged[f"mimic_{column}"]
        return pd.factorize(values, use_na_sentinel=False)[0]

    groups, parts = codes(family), codes(within)
    for group in np.unique(groups[tested]):
        members = tested & (groups == group)
        if within is None:
            p_value_bh[members] = _benjamini_hochberg(p_value[members])
        else:
            p_value_bh[members] = _two_stage_bh(p_value[members], parts[members], 1.0 - confidence)
    core = pd.DataFrame(
        {
            "mimic": m,
            "mimic_lower": m - crit_m * se_m,
            "mimic_upper": m + crit_m * se_m,
            "outcome": o,
            "outcome_lower": o - crit_o * se_o,
            "outcome_upper": o + crit_o * se_o,
            "difference": diff,
            "difference_lower": diff - crit_d * se_d,
            "difference_upper": diff + crit_d * se_d,
            "z": z,
            "p_value": p_value,
            "significant": testable & (p_value < 1.0 - confidence),
            "p_value_bh": p_value_bh,
        },
        index=merged.index,
    )
    core["significant_bh"] = tested & (p_value_bh < 1.0 - confidence)
    core["testable"] = testable
    extra = merged.drop(columns=on)
    result = pd.concat([merged[on], core, extra], axis=1).reset_index(drop=True)
    result.attrs["unmatched"] = unmatched
    return result


def _unmatched_rows(
    mimic: pd.DataFrame, outcome: pd.DataFrame, on: list, matched: int
) -> dict[str, int]:
    """How many rows of each table have no row with the same keys in the other (each table's
    keys are unique, so that is its rows less the ``matched`` pairs); warns, naming one, when
    any has (they are left out of the comparison)."""
    counts = {"mimic": len(mimic) - matched, "outcome": len(outcome) - matched}
    if counts["mimic"] or counts["outcome"]:
        alone = mimic if counts["mimic"] else outcome
        other = outcome if counts["mimic"] else mimic
        keys = alone[on].merge(other[on], on=on, how="left", indicator=True)
        example = tuple(
            value.item() if isinstance(value, np.generic) else value
            for value in keys.loc[keys["_merge"] == "left_only", on].iloc[0].tolist()
        )
        warnings.warn(
            f"compare_shapes leaves out {counts['mimic']} row(s) of mimic and "
            f"{counts['outcome']} of outcome that have no row with the same {tuple(on)} in "
            f"the other table, e.g. {example!r} of "
            f"{'mimic' if counts['mimic'] else 'outcome'} (text keys match only when spelled "
            "alike: 'Male' and 'male ' are two keys).",
            UserWarning,
            stacklevel=3,
        )
    return counts


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'} differ{'s' if count == 1 else ''}"


def untested_terms(comparison, *, min_share=0.5):
    """Terms whose informative values mostly cannot be flagged: their bins hold too few rows.

    A value held by fewer than ``min_weight`` training rows is shown by :meth:`CompareAudit.
    compare` but never flagged. A continuous feature binned finely on a small audit (256 bins
    of 2,000 rows hold about 8 rows each) then has no testable value at all, and its absence
    from :func:`summarize_terms` would read as "no difference" when it means "not tested".
    :meth:`CompareAudit.compare_runs` tests such a numeric or ordinal feature on runs of
    adjacent values instead (:meth:`CompareAudit.summary` and the report do).

    The tested share is measured over a feature's *informative* rows: those outside its
    missing-value bin and outside its most common observed value. A feature missing on 70% of
    the rows (or zero on 70%) whose observed values lie in thin bins is then listed although
    its one large bin is testable: a difference in how its observed values are weighed could
    not be flagged. A binary feature, a categorical feature with a few large levels or a
    continuous feature on a large audit keeps its other values testable and is not listed. A
    feature with at most one observed value is measured over the rows outside its largest bin
    (an indicator stored as 1 or missing: the rows at 1 when most are missing), and a feature
    with a single bin over all its rows.

    An interaction term (``kind`` ``"interaction"``) is measured over all its rows: it is
    listed when its testable cells hold less than ``min_share`` of them (a 32 x 32 grid on a
    few thousand rows leaves most cells thin; :meth:`CompareAudit.compare_interactions` tests
    such a surface on coarse blocks).

    Parameters
    ----------
    comparison : pandas.DataFrame
        :meth:`CompareAudit.compare`'s table (columns ``term``, ``kind``, ``weight``,
        ``testable``; the missing-value bin is the row whose ``value`` is missing, or, without
        a ``value`` column, whose ``label`` is ``"missing"``).
    min_share : float, default=0.5
        Terms whose testable values hold less than this share of the informative rows are
        listed.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``kind``, ``n_values``, ``n_testable``, ``tested_share`` (share of the
        informative rows whose value is testable), ``informative_rows`` (their number),
        ``median_rows`` (rows per value) and ``text``, main effects first, each kind least
        tested first.

    Examples
    --------
    >>> table = pd.DataFrame({"term": ["age"] * 3 + ["sex"] * 2, "kind": "main",
    ...     "weight": [8.0, 7.0, 9.0, 500.0, 480.0], "testable": [False] * 3 + [True] * 2})
    >>> untested_terms(table)["text"].tolist()
    ['age: 0 of 3 values testable (8 rows per value)']

    A feature missing on most rows, its observed values in bins of 2 to 4 rows but one:

    >>> sparse = pd.DataFrame({"term": "m", "kind": "main", "value": [np.nan, 1.0, 2.0, 3.0,
    ...     4.0], "weight": [700.0, 12.0, 3.0, 2.0, 4.0], "testable": [True, True] + [False] * 3})
    >>> untested_terms(sparse)[["text", "tested_share"]].values.tolist()
    [['m: 2 of 5 values testable (4 rows per value)', 0.0]]
    """
    missing = [c for c in ("term", "kind", "weight", "testable") if c not in comparison.columns]
    if missing:
        raise ValueError(f"comparison lacks the columns {missing}.")
    rows = []
    kinds = comparison["kind"].to_numpy()
    groups = [
        (kind, term, group)
        for kind in ("main", "interaction")
        for term, group in comparison[kinds == kind].groupby("term", sort=False)
    ]
    for kind, term, group in groups:
        weight = group["weight"].to_numpy(float)
        testable = group["testable"].to_numpy(bool)
        if kind == "main":
            informative = _informative_bins(group, weight, testable)
        else:
            informative = weight > 0
        total = weight[informative].sum()
        share = float(weight[informative & testable].sum() / total) if total > 0 else 0.0
        if share >= min_share:
            continue
        median = float(np.median(weight))
        unit = "value" if kind == "main" else "cell"
        rows.append(
            {
                "term": term,
                "kind": kind,
                "n_values": len(group),
                "n_testable": int(testable.sum()),
                "tested_share": share,
                "informative_rows": float(total),
                "median_rows": median,
                "text": f"{term}: {int(testable.sum())} of {len(group)} {unit}s testable "
                f"({median:g} rows per {unit})",
            }
        )
    columns = [
        "term",
        "kind",
        "n_values",
        "n_testable",
        "tested_share",
        "informative_rows",
        "median_rows",
        "text",
    ]
    table = pd.DataFrame(rows, columns=columns)
    table["order"] = (table["kind"] != "main").astype(int)
    table = table.sort_values(["order", "tested_share"], kind="stable")
    return table.drop(columns="order").reset_index(drop=True)


def _informative_bins(group, weight, testable):
    """The bins of one main effect whose rows say how its values are weighed: all but the
    missing-value bin and the most common observed value (see :func:`untested_terms`).

    Each term is centred on its weighted mean, so a bin that holds most rows sits near zero in
    both models whatever they do, and a difference shows in the other values.
    """
    if "value" in group.columns:
        is_missing = pd.isna(group["value"]).to_numpy(bool)
    elif "label" in group.columns:
        is_missing = (group["label"].astype(str) == "missing").to_numpy(bool)
    else:
        is_missing = np.zeros(len(group), dtype=bool)
    observed = ~is_missing & (weight > 0)

    # of bins tied for the most rows, a testable one is left out (whatever the rows' order: the
    # listing must not depend on it), so that the tie cannot make a term read as more tested
    def largest(among):
        where = np.flatnonzero(among)
        return where[np.lexsort((testable[where], weight[where]))[-1]]

    keep = np.ones(len(group), dtype=bool)
    if observed.sum() >= 2:
        keep = observed.copy()
        keep[largest(observed)] = False
    elif (weight > 0).sum() >= 2:
        keep[largest(weight > 0)] = False
    return keep


def summarize_terms(comparison, *, flag="significant_bh"):
    """One row per term with flagged values: how many differ, and where, in words.

    Parameters
    ----------
    comparison : pandas.DataFrame
        :meth:`CompareAudit.compare`'s table (columns ``term``, ``kind``, ``value``,
        ``label``, ``difference``, ``significant``, ``significant_bh``, ``testable``).
    flag : str, default="significant_bh"
        The boolean column counted as flagged.

    Returns
    -------
    pandas.DataFrame
        Terms with at least one flagged value, most flagged first: ``term``, ``kind``,
        ``n_values`` (rows of the term), ``n_testable``, ``n_flagged`` (by ``flag``),
        ``n_flagged_raw`` (by ``significant``, unadjusted), ``largest_difference`` (the
        flagged difference of largest size, signed: mimic - outcome) and ``text``: for a
        numeric feature ``"age: 4 values differ, from 18 to 22"`` (the flagged bins' lowest
        and highest values), for a nominal one the flagged categories, for an interaction the
        cell of the largest difference (for rows of kind ``"interaction block"``, from
        :meth:`CompareAudit.compare_interactions`, the block: a term's cells and its blocks
        are summarised apart), for rows of kind ``"main run"`` (from
        :meth:`CompareAudit.compare_runs`; their ``value`` the run's index) the flagged runs'
        ranges, ``"age: 18-22 differs (1 of 5 runs of adjacent values)"``.

    Examples
    --------
    >>> table = pd.DataFrame({"term": ["age"] * 3, "kind": "main", "value": [18.0, 19.0, 20.0],
    ...     "label": ["18", "19", "20-21"], "difference": [0.5, 0.4, 0.0],
    ...     "significant": [True, True, False], "significant_bh": [True, True, False],
    ...     "testable": True})
    >>> summarize_terms(table)["text"].tolist()
    ['age: 2 values differ, from 18 to 19']
    """
    columns = ["term", "kind", "value", "label", "difference", "significant", flag, "testable"]
    missing = [c for c in dict.fromkeys(columns) if c not in comparison.columns]
    if missing:
        raise ValueError(f"comparison lacks the columns {missing}.")
    rows = []
    # a pair's cells and its coarse blocks are two rows of the summary
    for (term, kind), group in comparison.groupby(["term", "kind"], sort=False, dropna=False):
        flagged = group[group[flag].to_numpy(bool)]
        if flagged.empty:
            continue
        largest = flagged.loc[flagged["difference"].abs().idxmax()]
        if kind in ("interaction", "interaction block"):
            names = str(term).split(" & ")
            cell = " x ".join(
                f"{name} {label}" for name, label in zip(names, largest["label"], strict=False)
            )
            what = "cell" if kind == "interaction" else "block"
            text = f"{term}: {_plural(len(flagged), what)}, the largest at {cell}"
        elif kind == "main run":
            # runs of adjacent values (CompareAudit.compare_runs), named by their ranges in
            # their order along the feature
            shown = flagged.sort_values("value", kind="stable")["label"].map(str)
            verb = "differs" if len(flagged) == 1 else "differ"
            text = (
                f"{term}: {', '.join(shown)} {verb} ({len(flagged)} of {len(group)} "
                f"run{'' if len(group) == 1 else 's'} of adjacent values)"
            )
        else:
            # a range for numbers only: booleans are two categories, not a range "from False
            # to True", and a nominal feature's categories are text, even those that read as
            # numbers ("2", "10"), with no order between them
            number = flagged["value"].map(
                lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
            )
            numeric = pd.to_numeric(flagged["value"].where(number), errors="coerce")
            if numeric.notna().all() and len(flagged) > 1:
                order = numeric.argsort().to_numpy()
                labels = flagged["label"].to_numpy()[order]
                first, last = labels[0], labels[-1]
                # integer bins ("-5", "18", "19-20", "-5 to -3"): the first and last integers
                low, high = _INTEGER_LABEL.match(str(first)), _INTEGER_LABEL.match(str(last))
                if low and high:
                    first, last = low.group(1), high.group(2) or high.group(1)
                text = f"{term}: {_plural(len(flagged), 'value')}, from {first} to {last}"
            else:
                labels = sorted(map(str, flagged["label"]), key=_label_order)
                shown = ", ".join(labels[:5])
                more = ", ..." if len(flagged) > 5 else ""
                text = f"{term}: {_plural(len(flagged), 'value')}: {shown}{more}"
        rows.append(
            {
                "term": term,
                "kind": kind,
                "n_values": len(group),
                "n_testable": int(group["testable"].sum()),
                "n_flagged": len(flagged),
                "n_flagged_raw": int(group["significant"].sum()),
                "largest_difference": float(largest["difference"]),
                "text": text,
            }
        )
    columns = ["term", "kind", "n_values", "n_testable", "n_flagged", "n_flagged_raw"]
    table = pd.DataFrame(rows, columns=[*columns, "largest_difference", "text"])
    return table.sort_values("n_flagged", ascending=False, kind="stable").reset_index(drop=True)


def term_stability(contributions, term_names=None, *, threshold=0.25, shape_threshold=1.0):
    """Which terms' importance and shape change across refits of an additive model.

    A term is marked unstable when its importance moves between refits (coefficient of
    variation above ``threshold``) or when the refits disagree about its shape by about as
    much as the shape itself varies (shape noise above ``shape_threshold``): then what the
    term says cannot be told from what the refit happened to draw. A change of importance rank
    alone does not mark a term (terms of about equal importance swap ranks without either
    being unstable); the ranks are in the table.

    On generated worlds of 3,000 rows (``benchmarks/audit_stability.py``, refits of
    :meth:`~sklearn_distill.CompareAudit.stability`), the outcome model's terms with an effect
    of 0.4 log-odds per standard deviation or more, and a four-valued feature of effects
    -0.3 to 0.5, were never marked, the weakest (0.2) in
    20-80% of the worlds (the earlier mark, any rank change or shape noise above 0.25, hit the
    real-effect terms in up to 100%), a term without effect in 80-100%; the mimic of a
    noise-free score marked only the term without effect. Two nearly identical features that
    share one effect were never marked: refits of one algorithm split it the same way, so a
    term not marked is no proof that another model could not tell it otherwise.

    Parameters
    ----------
    contributions : array-like of shape (n_refits, n_samples, n_terms)
        Each refit's per-sample term contributions on the same rows (e.g. from
        ``ExplainableBoostingMachine.eval_terms``), at least two refits.
    term_names : sequence of str, optional
        Names of the terms; ``term_0, term_1, ...`` when omitted.
    threshold : float, default=0.25
        The largest coefficient of variation of a term's importance across refits that is
        not marked.
    shape_threshold : float, default=1.0
        The largest shape noise that is not marked (1: the refits' disagreement as loud as
        the shape).

    Returns
    -------
    pandas.DataFrame
        Index: the terms, ordered by mean importance. Columns:

        * ``importance_mean``, ``importance_std``: the mean absolute contribution (interpret's
          ``term_importances("avg_weight")``) across refits;
        * ``importance_cv``: their ratio;
        * ``rank_min``, ``rank_max``: best and worst importance rank (1 = most important;
          shown, not part of the mark);
        * ``shape_noise``: root mean square over rows of the across-refit standard deviation,
          divided by the standard deviation over rows of the mean contribution -- how loud the
          disagreement between refits is next to the shape itself;
        * ``unstable``: the flag described above.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> shape = rng.normal(size=(100, 1))
    >>> refits = np.stack([shape, 1.01 * shape])
    >>> bool(term_stability(refits)["unstable"].iloc[0])
    False
    """
    c = _as_numbers("contributions", contributions)
    if c.ndim != 3 or c.shape[1] < 1:
        raise ValueError(
            "contributions must have shape (n_refits, n_samples, n_terms) with at least one "
            f"sample, got shape {c.shape}."
        )
    threshold = check_real("threshold", threshold, minimum=0, exclusive_minimum=True)
    shape_threshold = check_real(
        "shape_threshold", shape_threshold, minimum=0, exclusive_minimum=True
    )
    n_refits, _, n_terms = c.shape
    if n_refits < 2:
        raise ValueError(f"contributions must hold at least 2 refits, got {n_refits}.")
    if term_names is None:
        term_names = [f"term_{j}" for j in range(n_terms)]
    if isinstance(term_names, str):  # its letters would name the terms
        raise TypeError(f"term_names must be a sequence of names; got the string {term_names!r}.")
    term_names = list(term_names)
    if len(term_names) != n_terms:
        raise ValueError(f"term_names has {len(term_names)} names for {n_terms} terms.")

    # a term of extreme magnitude in units of its largest: the figures are ratios, and squares of
    # contributions near 1e-200 (or 1e200) would underflow to 0 (overflow to inf)
    finite = np.isfinite(c)
    scale = _extreme_peak(c, axis=(0, 1))
    scale = np.ones(c.shape[2]) if scale is None else scale[0, 0]
    scaled = c / scale
    importance = np.abs(scaled).mean(axis=1) * scale  # (n_refits, n_terms)
    # rank 1 = most important; ties share the best rank
    # a term whose importance is NaN (non-finite contributions) ranks last
    ranks = sp_stats.rankdata(-np.nan_to_num(importance, nan=-np.inf), axis=1, method="min")
    imp_mean = importance.mean(axis=0)
    imp_std = (importance / scale).std(axis=0, ddof=1) * scale
    noise = np.sqrt((scaled.std(axis=0, ddof=1) ** 2).mean(axis=0))
    signal = scaled.mean(axis=0).std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(imp_mean > 0, imp_std / imp_mean, np.where(imp_std > 0, np.inf, 0.0))
        shape_noise = np.where(signal > 0, noise / signal, np.where(noise > 0, np.inf, 0.0))
    # a non-finite contribution leaves its term's figures NaN (not 0: no sign of stability)
    broken = ~finite.all(axis=(0, 1))
    cv = np.where(broken, np.nan, cv)
    shape_noise = np.where(broken, np.nan, shape_noise)
    rank_min, rank_max = ranks.min(axis=0), ranks.max(axis=0)
    table = pd.DataFrame(
        {
            "importance_mean": imp_mean,
            "importance_std": imp_std,
            "importance_cv": cv,
            "rank_min": rank_min.astype(int),
            "rank_max": rank_max.astype(int),
            "shape_noise": shape_noise,
            # NaN (a refit with non-finite contributions) marks a term, as a value above does
            "unstable": ~(cv <= threshold) | ~(shape_noise <= shape_threshold),
        },
        index=pd.Index(term_names, name="term"),
    )
    return table.sort_values("importance_mean", ascending=False)


def binned_rate(score, y, *, n_bins=10, confidence=0.95, predicted=None):
    """Observed outcome rate per score value (few distinct scores) or per score quantile bin.

    Parameters
    ----------
    score : array-like of shape (n_samples,)
        The black box's score, finite.
    y : array-like of shape (n_samples,)
        Binary outcome coded 0/1.
    n_bins : int, default=10
        Scores with at most ``n_bins`` distinct values are grouped by value; otherwise by
        quantile bins (ties kept together).
    confidence : float, default=0.95
        Coverage of the Wilson score interval of each rate.
    predicted : array-like of shape (n_samples,), default=None
        A probability per row (a calibration map's, say): its mean in each group is added as
        the column ``predicted``, to set beside the observed rate.

    Returns
    -------
    pandas.DataFrame
        Columns ``score`` (mean score in the group), ``rate``, ``low``, ``high``, ``count``
        (and ``predicted``).

    Examples
    --------
    >>> binned_rate([1, 1, 2, 2], [0, 1, 1, 1])["rate"].tolist()
    [0.5, 1.0]
    """
    score, y = _check_paired(score, y, names=("score", "y"))
    if not np.isin(y, (0.0, 1.0)).all():
        other = np.unique(y[~np.isin(y, (0.0, 1.0))])
        raise ValueError(
            f"y must be coded 0/1 (the outcome); got {other.size} other value(s), e.g. "
            f"{other[0]:g}."
        )
    confidence = _check_confidence(confidence)
    n_bins = check_integer("n_bins", n_bins, minimum=1)
    if predicted is not None:
        try:
            predicted = np.asarray(predicted, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            fail("predicted", f"an array-like of {len(score)} probabilities", predicted, TypeError)
        if predicted.shape[0] != len(score):
            fail("predicted", f"one probability per row ({len(score)})", predicted.shape[0])
        if not np.all((predicted >= 0) & (predicted <= 1)):  # NaN fails too
            fail("predicted", "probabilities in [0, 1] (no NaN)", "other values")
    distinct = np.unique(score)
    if distinct.size <= n_bins:
        groups = np.searchsorted(distinct, score)
    else:
        edges = np.unique(np.quantile(score, np.linspace(0, 1, n_bins + 1)[1:-1]))
        groups = np.searchsorted(edges, score, side="right")
        if edges.size and edges[0] == distinct[0]:
            # most rows tie at the lowest score: they are a bin of their own (cut to the
            # right of the edge, they would share one with every score above it)
            groups = np.where(score == distinct[0], 0, groups)
    frame = pd.DataFrame({"group": groups, "score": score, "y": y})
    columns = {"score": ("score", "mean"), "rate": ("y", "mean"), "count": ("y", "size")}
    if predicted is not None:
        frame["predicted"] = predicted
        columns["predicted"] = ("predicted", "mean")
    agg = frame.groupby("group").agg(**columns)
    z = normal_quantile(confidence)
    n, p = agg["count"].to_numpy(float), agg["rate"].to_numpy(float)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    # the interval of a rate of 0 starts at 0, of 1 ends at 1: the two terms that cancel there
    # leave a rounding residue either side (a low of 6e-17 above an observed 0 would read as a
    # rate outside its own interval)
    agg["low"] = np.where(p == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    agg["high"] = np.where(p == 1, 1.0, np.clip(centre + half, 0.0, 1.0))
    shown = ["score", "rate", "low", "high", "count"] + (
        ["predicted"] if predicted is not None else []
    )
    return agg[shown].reset_index(drop=True)
