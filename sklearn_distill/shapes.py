"""Tidy shape functions of a fitted Explainable Boosting Machine, with confidence bands.

An EBM is a sum of per-term lookup tables over bins. :func:`shape_functions` lays those tables
out as one row per term and bin, with a confidence interval taken from the spread of the
EBM's outer bags (``bagged_scores_``).

Why not interpret's own bands: ``explain_global`` draws the point estimate +- one standard
deviation across bags. Each outer bag is fitted on a random subsample without replacement of a
fraction ``f = 1 - validation_size`` of the rows, so the spread across bags is much narrower
than the sampling spread of a fit on all rows. The delete-d jackknife (Shao and Wu, 1989)
corrects it: with subsamples of ``r = f n`` rows and ``d = n - r`` rows left out, the variance of
the full-data estimate is ``(r / d) * Var_bags = f / (1 - f) * Var_bags``. That variance is
estimated from ``B`` bags, so the band is the Student interval on ``B - 1`` degrees of freedom,
``score +- t_{B - 1, (1 + confidence) / 2} * sqrt(f / (1 - f)) * SD_bags`` (with eight bags
``t`` is 2.36 where the normal quantile is 1.96; see benchmarks/gam_band_coverage.py).

Values, not bin midpoints: each bin is labelled by what it holds. A nominal feature's bin is its
category; an integer-valued feature's bin (interpret cuts integers halfway between consecutive
values, so every cut is a multiple of 0.5) holds the integers between its edges, labelled
``"18"`` or ``"18-19"``; another continuous feature's bin is labelled by its edges
``"[0.5, 1.25)"``. A boolean feature (interpret reads ``False`` and ``True`` as the numbers 0 and
1) is labelled ``"False"`` and ``"True"`` when :func:`shape_functions` is told which features
are boolean, as :class:`~sklearn_distill.DistilledGAM` and
:class:`~sklearn_distill.CompareAudit` do.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
import warnings

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from sklearn_distill._validation import check_bool, check_confidence, check_integer, fail

COLUMNS = [
    "term",
    "kind",
    "bin",
    "value",
    "label",
    "score",
    "lower",
    "upper",
    "std_error",
    "dof",
    "weight",
    "bin_low",
    "bin_high",
]


def _bag_fraction(ebm, n_samples: float) -> float:
    """Fraction of the rows each outer bag was fitted on (``n_samples``: the training weight)."""
    bag_weights = getattr(ebm, "bag_weights_", None)
    if bag_weights is not None and len(bag_weights) and n_samples > 0:
        # the weight each bag was fitted on, as interpret records it: exact for a count of
        # validation rows under sample weights (whose total is not the count of rows), and
        # for bags given to fit
        return float(np.mean(bag_weights)) / n_samples
    validation_size = getattr(ebm, "validation_size", None) or 0
    if validation_size >= 1:
        return 1.0 - validation_size / n_samples
    return 1.0 - validation_size


def standard_errors(ebm, term_index: int) -> np.ndarray:
    """Delete-d jackknife standard error of each bin's score of one term (NaN when the bags
    cannot tell: fewer than two bags, bags fitted on all rows, a term whose bags' scores
    the EBM no longer holds, as after ``ebm.monotonize``, or an EBM built by ``merge_ebms``,
    whose bags come from different data sets)."""
    bagged = ebm.bagged_scores_[term_index]
    if bagged is None:  # interpret drops a term's bags when it edits the term (monotonize)
        return np.full(np.shape(ebm.term_scores_[term_index]), np.nan)
    return _jackknife(ebm, np.asarray(bagged, dtype=float))


def _bag_count(ebm, term_index: int) -> int:
    """Outer bags behind one term's scores (0 when the EBM no longer holds them)."""
    bagged = ebm.bagged_scores_[term_index]
    return 0 if bagged is None else int(np.shape(bagged)[0])


def _check_one_score_per_bin(ebm, function: str) -> None:
    """Refuse a multiclass EBM (a score per class in every bin)."""
    for scores, features in zip(ebm.term_scores_, ebm.term_features_):
        if np.ndim(scores) > len(features):
            classes = len(getattr(ebm, "classes_", ())) or np.shape(scores)[-1]
            raise ValueError(
                f"ebm must be a binary or regression EBM (one score per bin) for {function}; "
                f"got a multiclass {type(ebm).__name__} with {classes} classes."
            )


def _merged(ebm) -> bool:
    """Whether ``ebm`` is the output of interpret's ``merge_ebms``: its bags are those of
    models fitted on different data sets, so no jackknife over them estimates a sampling
    spread. ``merge_ebms`` builds its EBM without calling the constructor or ``fit``, so it
    holds none of the constructor's parameters (``outer_bags``) and no ``best_iteration_``,
    which every fitted EBM holds."""
    fitted = hasattr(ebm, "term_scores_")
    return fitted and not (hasattr(ebm, "outer_bags") and hasattr(ebm, "best_iteration_"))


def _jackknife(ebm, bagged: np.ndarray) -> np.ndarray:
    """Delete-d jackknife standard error of statistics computed on each of ``ebm``'s bags
    (``bagged``: bags first; NaN for a merged EBM, whose bags come from different data)."""
    n_samples = float(np.sum(ebm.bin_weights_[0]))
    fraction = _bag_fraction(ebm, n_samples)
    if bagged.shape[0] < 2 or _merged(ebm) or not 0 < fraction < 1:
        return np.full(bagged.shape[1:], np.nan)
    return np.std(bagged, axis=0, ddof=1) * np.sqrt(fraction / (1 - fraction))


def _feature_bins(ebm, feature: int, n_term_features: int):
    levels = ebm.bins_[feature]
    return levels[min(n_term_features - 1, len(levels) - 1)]


def _recovered_values(cuts, minimum, maximum, n_unique):
    """The single value of each bin of a continuous feature, or None when bins hold more.

    When the feature has no more distinct values than bins, interpret cuts halfway between
    consecutive values, so each value follows from the previous one (``v_k = 2 c_k - v_{k-1}``,
    starting at the minimum); the recovered values are used when they end at the maximum and
    each lies inside its bin.
    """
    if n_unique != cuts.size + 1:
        return None
    values = [minimum]
    for cut in cuts:
        values.append(2 * cut - values[-1])
    values = np.asarray(values)
    inside = np.all(values[1:] > cuts) and np.all(values[:-1] < cuts)
    if inside and np.isclose(values[-1], maximum):
        values[-1] = maximum
        return values
    return None


def _numbers(values) -> list[str]:
    """``values`` as text in one notation, with 4 significant digits or as many more as keep
    distinct values apart (bins of x in [1e6, 1e6 + 50] would all read ``1e+06``): positional
    (``8521``, ``47630``, ``0.25``), or scientific (``1.5e+07``) for them all when the largest
    is 1e6 or more or below 0.001 (``[8521, 4.763e+04)`` read as numbers on two scales)."""
    values = np.asarray(values, dtype=float) + 0.0  # -0.0 reads as 0
    sizes = np.abs(values[np.isfinite(values) & (values != 0)])
    scientific = sizes.size > 0 and not 1e-3 <= sizes.max() < 1e6
    distinct = np.unique(values).size
    for digits in range(4, 18):
        texts = [_in_notation(value, digits, scientific) for value in values]
        if len(set(texts)) == distinct:
            break
    return texts


def _in_notation(value, digits, scientific) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if scientific:  # trailing zeros dropped: 1e+06, 1.5e+06
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return np.format_float_positional(
        value, precision=digits, unique=False, fractional=False, trim="-"
    )


def _integer_bins(cuts, minimum, maximum):
    """First and last integer of each bin of an integer-valued feature, or None when the
    feature is not integer-valued (bounds not integers, or a cut not a multiple of 0.5)."""
    doubled = 2 * cuts
    # an absolute tolerance: a relative one passes any cut at magnitudes of 1e5 and above; and
    # cuts halfway between distinct integers lie at least 1 apart
    if not (
        float(minimum).is_integer()
        and float(maximum).is_integer()
        and np.allclose(doubled, np.round(doubled), rtol=0.0, atol=1e-6)
        and bool(np.all(np.diff(cuts) >= 1.0 - 1e-9))
    ):
        return None
    # no training value lies on a cut (a cut is halfway between two of them), so a bin
    # holds the integers strictly between its edges, and its outer edges are the bounds
    first = np.concatenate([[minimum], np.floor(cuts) + 1])
    last = np.concatenate([np.ceil(cuts) - 1, [maximum]])
    return first, np.maximum(last, first)


def _integer_label(first, last) -> str:
    if first == last:
        return f"{first:.0f}"
    separator = " to " if first < 0 or last < 0 else "-"
    return f"{first:.0f}{separator}{last:.0f}"


#: The label of a feature's missing-value bin.
MISSING_LABEL = "missing"


def value_label(value):
    """What a bin's value reads as: ``"missing"`` for the missing-value bin, a category that is
    itself written ``missing`` quoted (``'missing'``), so the two read apart; other values as
    they are."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING_LABEL
    if isinstance(value, str) and value == MISSING_LABEL:
        return repr(value)
    return value


def _bin_table(ebm, feature: int, bins, boolean: bool = False) -> pd.DataFrame:
    """Value, label and edges of each bin of one feature, in the EBM's order (missing bin first;
    the trailing 'unseen' bin is left out). A ``boolean`` feature's values are read back as
    ``False`` and ``True``."""
    if isinstance(bins, dict):  # nominal or ordinal: category -> bin index (from 1)
        categories = sorted(bins, key=bins.get)
        if boolean and set(categories) <= {"0", "1"}:
            # a 'category' column of booleans: interpret names its categories "0" and "1"
            categories = [category == "1" for category in categories]
        values = [np.nan, *categories]
        labels = [MISSING_LABEL, *(str(value_label(str(c))) for c in categories)]
        low = high = np.full(len(values), np.nan)
        return pd.DataFrame({"value": values, "label": labels, "bin_low": low, "bin_high": high})
    cuts = np.asarray(bins, dtype=float)
    minimum, maximum = np.asarray(ebm.feature_bounds_[feature], dtype=float)
    edges = np.concatenate([[minimum], cuts, [maximum]])
    low = np.concatenate([[np.nan], edges[:-1]])
    high = np.concatenate([[np.nan], edges[1:]])
    unique_counts = getattr(ebm, "unique_val_counts_", None)
    n_unique = -1 if unique_counts is None else int(unique_counts[feature])
    values = _recovered_values(cuts, minimum, maximum, n_unique)
    integers = _integer_bins(cuts, minimum, maximum)
    boolean_values = boolean and values is not None and np.isin(values, (0.0, 1.0)).all()
    if boolean_values:
        # False and True, read by interpret as 0 and 1: one bin each
        values = np.array([bool(v) for v in values], dtype=object)
        labels = [str(v) for v in values]
    elif values is not None:  # one distinct value per bin
        labels = (
            [_integer_label(v, v) for v in values] if integers is not None else _numbers(values)
        )
    elif integers is not None:
        values = integers[0]
        labels = [_integer_label(a, b) for a, b in zip(*integers)]
    else:
        values = 0.5 * (edges[:-1] + edges[1:])
        texts = _numbers(edges)
        labels = [
            f"[{a}, {b}{']' if k == cuts.size else ')'}"
            for k, (a, b) in enumerate(itertools.pairwise(texts))
        ]
    # the missing-value bin first; an object array keeps booleans from becoming 0.0 and 1.0
    missing = np.array([np.nan], dtype=object if boolean_values else float)
    frame = pd.DataFrame(
        {
            "value": np.concatenate([missing, values]),
            "label": [MISSING_LABEL, *labels],
            "bin_low": low,
            "bin_high": high,
        },
        dtype=object,
    )
    return frame


def block_groups(weights: np.ndarray, blocks: int, *, nominal: bool = False) -> np.ndarray:
    """Coarse groups of one axis of an interaction: the missing-value bin (index 0) alone when
    it holds rows, the other bins cut into at most ``blocks`` runs of consecutive bins holding
    about equal rows (``weights``: rows per bin along the axis). A ``nominal`` axis has no
    order to cut along: its categories stay apart when they are no more than ``blocks``, else
    its ``blocks - 1`` largest stay apart and the others form one group. Returns a group per
    bin (bins without rows join their neighbours' group, or the pooled categories)."""
    weights = np.asarray(weights, dtype=float)
    observed = weights[1:]
    total = observed.sum()
    groups = np.zeros(weights.size, dtype=int)
    held = int(np.count_nonzero(observed))
    n_groups = min(blocks, held)
    if nominal and held > 0:
        # no order to cut along: the largest categories apart (all of them when they are no
        # more than ``blocks``), the others pooled last; categories without rows join the pool
        kept = held if held <= blocks else blocks - 1
        largest = np.argsort(-observed, kind="stable")[:kept]
        run = np.full(observed.size, kept if held > blocks else kept - 1)
        run[np.sort(largest)] = np.arange(kept)
        groups[1:] = run + 1
    elif total > 0 and n_groups > 0:
        middle = (np.cumsum(observed) - observed / 2) / total  # each bin's middle row
        run = np.minimum((middle * n_groups).astype(int), n_groups - 1)
        _, run = np.unique(run, return_inverse=True)  # runs left empty by a heavy bin vanish
        groups[1:] = run + 1
    if weights[0] > 0:
        return groups  # 0: the missing-value bin, 1..: the groups of observed bins
    groups[0] = 1  # no missing values: the bin (empty) joins the first group
    return groups - 1


#: A label of an integer-valued feature's bin (:func:`_integer_label`).
_INTEGER_LABEL = re.compile(r"^(-?\d+)(?:(?:-| to )(-?\d+))?$")


def _label_order(label):
    """Sort key of categories listed in words: those that read as numbers by their value
    ("2", "3", "10"), then the others as text."""
    try:
        number = float(label)
    except ValueError:
        return (1, 0.0, label)
    return (0, number, label) if math.isfinite(number) else (1, 0.0, label)


def _group_labels(
    table: pd.DataFrame, groups: np.ndarray, weights=None, nominal: bool = False
) -> list[str]:
    """What to show for each coarse group of one axis (``table``: :func:`_bin_table`;
    ``weights``: the rows of each of its bins, to leave out of a pooled group of categories
    those no row holds, such as a pandas category that is not used; ``nominal``: the axis's
    categories have no order, so a pooled group of them is listed, never a range, even when
    they read as integers)."""
    labels = []
    top = pd.to_numeric(table["bin_high"], errors="coerce").max()
    for group in range(groups.max() + 1):
        chosen = groups == group
        part = table[chosen]
        if len(part) > 1:  # an empty missing-value bin joined the first run
            # (by value: a category written "missing" is a value of its own)
            missing = part["value"].isna() if "value" in part else part["label"] == MISSING_LABEL
            part = part[~missing]
        ranges = pd.to_numeric(part["bin_low"], errors="coerce").notna().all()
        if weights is not None and len(part) > 1 and not ranges:
            rows = pd.Series(np.asarray(weights, dtype=float), index=table.index)
            held = rows.loc[part.index].to_numpy() > 0
            if held.any():
                part = part[held]
        names = [str(label) for label in part["label"]]
        if nominal:
            names = sorted(names, key=_label_order)
        low = pd.to_numeric(part["bin_low"], errors="coerce").to_numpy(float)
        high = pd.to_numeric(part["bin_high"], errors="coerce").to_numpy(float)
        integers = [_INTEGER_LABEL.match(name) for name in names]
        if not names:  # the missing-value bin alone (a feature missing on every row)
            labels.append(MISSING_LABEL)
        elif len(names) == 1:
            labels.append(names[0])
        elif all(integers) and not nominal:  # "18", "19-20": the run's first and last
            first = int(integers[0].group(1))
            last = int(integers[-1].group(2) or integers[-1].group(1))
            labels.append(_integer_label(first, last))
        elif np.isfinite(low).all() and np.isfinite(high).all():
            closed = "]" if np.isclose(high.max(), top) else ")"
            labels.append((low.min(), high.max(), closed))  # written below, in one notation
        elif len(names) <= 3:
            labels.append(", ".join(names))
        elif not nominal:  # a run of ordered categories: its first and last
            labels.append(f"{names[0]} to {names[-1]} ({len(names)} values)")
        else:
            labels.append(f"{', '.join(names[:2])}, ... ({len(names)} values)")
    ends = iter(
        _numbers([end for label in labels if isinstance(label, tuple) for end in label[:2]])
    )
    return [
        f"[{next(ends)}, {next(ends)}{label[2]}" if isinstance(label, tuple) else label
        for label in labels
    ]


def _pure(scores, weights) -> np.ndarray:
    """The pure component of a pair's surface (:func:`interpret.utils.purify`, in a fixed
    order, so that refits agree)."""
    from interpret.utils import purify

    return np.asarray(purify(np.asarray(scores, dtype=float), weights, is_randomized=False)[0])


def _block_mean(ebm, scores, bagged, weights, cells, scale, replicates=None):
    """One coarse block of a term (``cells``: a mask over the term's bins or cells): the
    row-weighted mean of ``scores`` over its rows, the delete-d jackknife standard error of the
    same mean in each of the bags (``bagged``: bags first), widened by the spread of the same
    mean over ``replicates`` of an estimated target (in its units, before ``scale``), and the
    rows it holds."""
    weight = float(weights[cells].sum())
    share = weights[cells] / weight
    bag_means = bagged[:, cells] @ share
    std_error = scale * float(_jackknife(ebm, bag_means[:, None])[0])
    if replicates is not None:
        spread = float(np.var(replicates[:, cells] @ share, ddof=1))
        std_error = float(np.sqrt(std_error**2 + spread))
    return scale * float(scores[cells] @ share), std_error, weight


def interaction_blocks(
    ebm,
    *,
    blocks: int = 3,
    groups=None,
    boolean_features=(),
    scale: float = 1.0,
    target_replicates=None,
) -> tuple[pd.DataFrame, dict]:
    """A fitted EBM's interaction surfaces on a coarse grid, with jackknife standard errors.

    Each axis of an interaction is cut into at most ``blocks`` runs of consecutive bins holding
    about equal rows (a nominal feature: its categories apart when they are no more than
    ``blocks``, else its ``blocks - 1`` largest apart and the others pooled; an ordinal one is
    cut in runs like a continuous one; the missing-value bin alone); a block's score is the
    row-weighted mean over its cells of the *pure* interaction (the surface purified as in Lengerich et al., 2020,
    with :func:`interpret.utils.purify`: every row's and column's weighted mean zero, the rest
    belonging to the main effects), in every bag as in the model, so its standard error is
    the delete-d jackknife of the bags' block means (as :func:`shape_functions`' bands).
    Purifying makes two models comparable that split a function differently between a main
    effect and the pair (interpret centres each term but does not purify it). A
    surface whose fine cells hold a few rows each, too thin to test one by one, can be tested
    here on blocks of hundreds of rows: a coarse block still shows a surface that rises in
    one corner, though not its detail.

    Parameters
    ----------
    ebm : fitted Explainable Boosting Machine (binary or regression; multiclass is refused)
    blocks : int, default=3
        Groups per axis, at least 2 (a feature with fewer observed bins keeps one group per
        bin). A block alone in its row or column of blocks (its other blocks hold no rows) is
        left out: purified, it is zero in every model.
    groups : dict or None, default=None
        ``{term name: (groups of axis 0, groups of axis 1)}`` as returned by an earlier call:
        the same blocks for a second model binned alike. ``None`` cuts them from this model's
        rows.
    boolean_features : collection of int, default=()
        As in :func:`shape_functions`.
    scale : float, default=1.0
        Factor on the scores (a model fitted on a standardised target).
    target_replicates : dict or None, default=None
        ``{term name: array of shape (K, *term_scores_[term].shape)}``: for K replicates of
        an estimated target (a calibration map refitted on resamples), the mean change of the
        target over each cell's rows. Each replicate is purified and averaged over a block as
        the surface is, and the replicates' variance is added to the block's squared standard
        error (in the target's units, before ``scale``): the bags see one fixed target, so
        their spread alone misses the noise of a target that was itself estimated.

    Returns
    -------
    table : pandas.DataFrame
        One row per interaction term and block: ``term``, ``kind`` (``"interaction block"``),
        ``bin`` (the pair of block indices), ``features`` (the pair's two feature names),
        ``label`` (the pair of ranges or values),
        ``score``, ``std_error``, ``dof``, ``weight`` (rows in the block).
    groups : dict
        The blocks used, to pass to a second model.
    """
    blocks = check_integer("blocks", blocks, minimum=2)
    booleans = _check_feature_indices("boolean_features", boolean_features)
    _check_one_score_per_bin(ebm, "interaction_blocks")
    cut = {} if groups is None else dict(groups)  # the caller's dict stays as it was
    columns = ["term", "kind", "bin", "features", "label", "score", "std_error", "dof", "weight"]
    frames = []
    for index, (features, name) in enumerate(zip(ebm.term_features_, ebm.term_names_)):
        if len(features) != 2:
            continue
        bins = [_feature_bins(ebm, f, 2) for f in features]
        tables = [_bin_table(ebm, f, b, f in booleans) for f, b in zip(features, bins)]
        keep = tuple(slice(0, len(table)) for table in tables)
        full_weights = np.asarray(ebm.bin_weights_[index], dtype=float)
        # the pure interaction (each row's and column's weighted mean zero): what the pair
        # adds beyond the two main effects, however boosting split the function between them
        scores = _pure(ebm.term_scores_[index], full_weights)[keep]
        bagged = np.stack([_pure(bag, full_weights) for bag in ebm.bagged_scores_[index]])
        bagged = bagged[(slice(None), *keep)]
        replicates = None
        if target_replicates is not None and name in target_replicates:
            replicates = np.stack([_pure(r, full_weights) for r in target_replicates[name]])
            replicates = replicates[(slice(None), *keep)]
        weights = full_weights[keep]
        if name not in cut:
            kinds = [ebm.feature_types_in_[f] for f in features]
            cut[name] = tuple(
                block_groups(w, blocks, nominal=kind == "nominal")
                for w, kind in zip((weights.sum(axis=1), weights.sum(axis=0)), kinds)
            )
        first, second = cut[name]
        if (first.size, second.size) != weights.shape:
            raise ValueError(
                f"groups for {name!r} cover {first.size} x {second.size} bins; the model has "
                f"{weights.shape[0]} x {weights.shape[1]}: the two models are binned unlike."
            )
        axis_weights = (weights.sum(axis=1), weights.sum(axis=0))
        nominal = [ebm.feature_types_in_[f] == "nominal" for f in features]
        labels = [
            _group_labels(t, g, w, nominal=k)
            for t, g, w, k in zip(tables, cut[name], axis_weights, nominal)
        ]
        block_weights = np.zeros((first.max() + 1, second.max() + 1))
        np.add.at(block_weights, (first[:, None], second[None, :]), weights)
        held = block_weights > 0
        rows = []
        for a, b in zip(*np.nonzero(held)):
            # a block alone in its row or column of blocks is zero once purified: the pair
            # adds nothing there beyond the main effects, and there is nothing to test
            if held[a].sum() < 2 or held[:, b].sum() < 2:
                continue
            cells = (first == a)[:, None] & (second == b)[None, :]
            score, std_error, weight = _block_mean(
                ebm, scores, bagged, weights, cells, scale, replicates
            )
            rows.append(
                {
                    "term": name,
                    "kind": "interaction block",
                    "bin": (int(a), int(b)),
                    "features": tuple(str(ebm.feature_names_in_[f]) for f in features),
                    "label": (labels[0][a], labels[1][b]),
                    "score": score,
                    "std_error": std_error,
                    "dof": float(bagged.shape[0] - 1),
                    "weight": weight,
                }
            )
        frames.append(pd.DataFrame(rows, columns=columns))  # columns also when no row
    if not frames:
        return pd.DataFrame(columns=columns), cut
    return pd.concat(frames, ignore_index=True)[columns], cut


def _heavy_bins(observed: np.ndarray, runs: int) -> np.ndarray:
    """Which of an ordered feature's observed bins (``observed``: rows per bin) hold more rows
    than a run's share: more than ``1 / runs`` of the rows, then, with those set apart, more
    than ``1 / (runs - k)`` of the rows left for the ``runs - k`` runs left, until no other
    bin is. Fewer than ``runs`` bins are ever heavy while light bins hold rows."""
    heavy = np.zeros(observed.size, dtype=bool)
    while True:
        left = runs - int(heavy.sum())
        light = observed[~heavy].sum()
        if left < 1 or light <= 0:
            return heavy
        grown = heavy | (observed > light / left)
        if grown.sum() == heavy.sum():
            return heavy
        heavy = grown


def _cut_around_heavy(observed: np.ndarray, heavy: np.ndarray, runs: int) -> np.ndarray:
    """The run of each observed bin holding rows (``observed``: their rows, all positive)
    when the ``heavy`` ones are runs of their own: the ``runs`` runs they leave are shared
    among the stretches of light bins between and beside them, each stretch one run and the
    others, one at a time, to the stretch with the most rows per run (no stretch more runs
    than bins), each stretch cut into its runs as :func:`block_groups` cuts an axis. When
    there are more stretches than runs left, the lightest stretches join the run before them
    (the heavy bin after them when they lead)."""
    # pieces in order: ("heavy", bin) or ("light", first bin, end)
    pieces = []
    start = None
    for index, is_heavy in enumerate(heavy):
        if is_heavy:
            if start is not None:
                pieces.append(("light", start, index))
                start = None
            pieces.append(("heavy", index, index + 1))
        elif start is None:
            start = index
    if start is not None:
        pieces.append(("light", start, heavy.size))
    light = [p for p, piece in enumerate(pieces) if piece[0] == "light"]
    rows = {p: observed[pieces[p][1] : pieces[p][2]].sum() for p in light}
    bins = {p: pieces[p][2] - pieces[p][1] for p in light}
    left = runs - int(heavy.sum())
    kept = sorted(light, key=lambda p: (-rows[p], p))[:left]
    share = {p: (1 if p in kept else 0) for p in light}
    for _ in range(left - len(kept)):
        open_ = [p for p in kept if share[p] < bins[p]]
        if not open_:
            break
        best = max(open_, key=lambda p: (rows[p] / share[p], -p))
        share[best] += 1
    run = np.zeros(observed.size, dtype=int)
    next_run = 0
    for p, (kind, first, end) in enumerate(pieces):
        if kind == "heavy" or share[p] > 0:
            count = 1 if kind == "heavy" else share[p]
            inside = block_groups(np.concatenate([[0.0], observed[first:end]]), count)[1:]
            run[first:end] = next_run + inside
            next_run += int(inside.max()) + 1
        else:
            # a stretch without a run of its own: the run before it, or the first one
            run[first:end] = max(next_run - 1, 0)
    return run


def _run_groups(weights: np.ndarray, runs: int) -> np.ndarray:
    """The runs of one ordered feature's bins (``weights``: rows per bin, the missing-value bin
    first): :func:`block_groups`, except that

    - a feature with no more observed bins than ``runs`` keeps each observed bin a run of its
      own (cut into equal rows, a light bin beside a heavy one joined it, and 3 values of
      70%, 20% and 10% of the rows gave 2 runs);
    - a bin holding more rows than a run's share (:func:`_heavy_bins`: a count at 0 on 60% of
      the rows) is a run of its own, and the runs it leaves are spent on the other bins, cut
      by rows between and beside the heavy ones (:func:`_cut_around_heavy`): cut into equal
      rows, a value of 60% spans three of five runs' worth, which would leave the tail two.

    Bins without rows join the run before them (the first run when they lead)."""
    weights = np.asarray(weights, dtype=float)
    held = weights[1:] > 0
    groups = np.zeros(weights.size, dtype=int)
    if 0 < held.sum() <= runs:
        groups[1:] = np.maximum(np.cumsum(held) - 1, 0) + 1
    else:
        heavy = _heavy_bins(weights[1:][held], runs) if held.any() else np.zeros(0, bool)
        if not heavy.any():
            return block_groups(weights, runs)  # no bin heavier than a run's share
        run = _cut_around_heavy(weights[1:][held], heavy, runs)
        # bins without rows: the run of the bin with rows before them (the first run if none)
        before = np.maximum(np.cumsum(held) - 1, 0)
        groups[1:] = run[before] + 1
    if weights[0] > 0:
        return groups  # 0: the missing-value bin, 1..: the runs of observed bins
    groups[0] = 1  # no missing values: the bin (empty) joins the first run
    return groups - 1


def ordered_main_terms(ebm, boolean_features=()) -> list[str]:
    """Names of the main-effect terms of ``ebm`` whose feature has an order to cut along: a
    numeric (``"continuous"``) or ``"ordinal"`` feature, not a boolean one (two values, each
    tested on its own)."""
    booleans = _check_feature_indices("boolean_features", boolean_features)
    return [
        name
        for features, name in zip(ebm.term_features_, ebm.term_names_)
        if len(features) == 1
        and features[0] not in booleans
        and ebm.feature_types_in_[features[0]] in ("continuous", "ordinal")
    ]


def main_effect_runs(
    ebm,
    *,
    runs: int = 5,
    terms=None,
    groups=None,
    boolean_features=(),
    scale: float = 1.0,
    target_replicates=None,
) -> tuple[pd.DataFrame, dict]:
    """A fitted EBM's main effects of ordered features on runs of adjacent bins, with
    jackknife standard errors.

    The main-effect counterpart of :func:`interaction_blocks`: a feature's observed bins are
    cut into at most ``runs`` runs of consecutive bins holding about equal rows, the
    missing-value bin apart (:func:`block_groups`, as an interaction's axis is cut), except
    that a value holding more rows than a run's share is a run of its own and the runs it
    leaves are cut from the other values by rows, between and beside it: ``runs=5`` on a
    count at 0 on 60% of the rows gives the 0 and four runs of its tail, where a cut into
    equal rows throughout (an interaction's axis) lets the 0 span three runs' worth and
    leaves the tail two. A feature with no more observed bins than ``runs`` keeps one run per
    bin. A run's
    score is the row-weighted mean of the shape over its rows, in every bag as in the model,
    so its standard error is the delete-d jackknife of the bags' run means (as
    :func:`shape_functions`' bands). A feature binned finely on a small data set (256 bins of
    a few rows each) can then be tested on runs of hundreds of rows. A run's mean shows a
    difference that keeps its sign along the run; it cannot show detail finer than a run, and
    a difference that changes sign inside a run averages out there. Each EBM term is centred
    on its weighted mean over all rows, so a run's score is measured against that mean.

    Parameters
    ----------
    ebm : fitted Explainable Boosting Machine (binary or regression; multiclass is refused)
    runs : int, default=5
        Runs of observed bins per feature, at least 2 (a feature with fewer observed bins
        keeps one run per bin; a value heavier than a run's share is one of them).
    terms : sequence of str or None, default=None
        Main-effect terms to cut, each of an ordered feature (see
        :func:`ordered_main_terms`); ``None`` cuts them all.
    groups : dict or None, default=None
        ``{term name: run of each bin}`` as returned by an earlier call: the same runs for a
        second model binned alike. ``None`` cuts them from this model's rows.
    boolean_features : collection of int, default=()
        As in :func:`shape_functions` (boolean features are not cut).
    scale : float, default=1.0
        Factor on the scores (a model fitted on a standardised target).
    target_replicates : dict or None, default=None
        ``{term name: array of shape (K, *term_scores_[term].shape)}``: for K replicates of
        an estimated target, the mean change of the target over each bin's rows (see
        :func:`interaction_blocks`). Each replicate is centred on its weighted mean over the
        term's rows, as the term is, averaged over a run, and the replicates' variance is
        added to the run's squared standard error (in the target's units, before ``scale``).

    Returns
    -------
    table : pandas.DataFrame
        One row per term and run: ``term``, ``kind`` (``"main run"``), ``bin`` (the run's
        index: 0 is the missing-value bin when it holds rows), ``label`` (the run's range:
        ``"18-22"``, ``"[0.5, 1.25)"``; ``"missing"``), ``score``, ``std_error``, ``dof``,
        ``weight`` (rows in the run), ``n_bins`` (observed bins in the run), ``low`` and
        ``high`` (the lowest and highest edge of the run's observed bins, for drawing the run
        on the feature's axis; NaN for the missing-value run and where the bins have no
        numeric edges).
    groups : dict
        The runs used, to pass to a second model.
    """
    runs = check_integer("runs", runs, minimum=2)
    booleans = _check_feature_indices("boolean_features", boolean_features)
    if not hasattr(ebm, "term_scores_"):
        raise TypeError(
            f"main_effect_runs needs a fitted Explainable Boosting Machine; got "
            f"{type(ebm).__name__}."
        )
    _check_one_score_per_bin(ebm, "main_effect_runs")
    ordered = ordered_main_terms(ebm, booleans)
    if terms is None:
        chosen = ordered
    else:
        if isinstance(terms, str) or not np.iterable(terms):
            fail("terms", "a sequence of main-effect term names, or None", terms, TypeError)
        chosen = list(dict.fromkeys(terms))
        others = [t for t in chosen if t not in ordered]
        if others:
            raise ValueError(
                "terms must name main effects of ordered (numeric or ordinal, not boolean) "
                f"features, {ordered}; got {others}."
            )
    cut = {} if groups is None else dict(groups)  # the caller's dict stays as it was
    columns = ["term", "kind", "bin", "label", "score", "std_error", "dof", "weight", "n_bins"]
    columns += ["low", "high"]
    rows = []
    names = list(ebm.term_names_)
    for name in chosen:
        index = names.index(name)
        feature = ebm.term_features_[index][0]
        table = _bin_table(ebm, feature, _feature_bins(ebm, feature, 1))
        keep = slice(0, len(table))  # the trailing "unseen" bin left out
        weights = np.asarray(ebm.bin_weights_[index], dtype=float)[keep]
        scores = np.asarray(ebm.term_scores_[index], dtype=float)[keep]
        bagged = ebm.bagged_scores_[index]
        bagged = (
            np.empty((0, weights.size)) if bagged is None else np.asarray(bagged, float)[:, keep]
        )
        replicates = None
        if target_replicates is not None and name in target_replicates:
            replicates = np.asarray(target_replicates[name], dtype=float)[:, keep]
            # centred on the term's rows, as interpret centres the term
            replicates = replicates - (replicates @ weights / weights.sum())[:, None]
        if name not in cut:
            cut[name] = _run_groups(weights, runs)
        group = np.asarray(cut[name])
        if group.size != weights.size:
            raise ValueError(
                f"groups for {name!r} cover {group.size} bins; the model has {weights.size}: "
                "the two models are binned unlike."
            )
        labels = _group_labels(table, group, weights)
        edges = {
            side: pd.to_numeric(table[f"bin_{side}"], errors="coerce").to_numpy(float)
            if f"bin_{side}" in table
            else np.full(len(table), np.nan)
            for side in ("low", "high")
        }
        observed = (
            table["value"].notna().to_numpy() if "value" in table else np.ones(len(table), bool)
        )
        for run in range(group.max() + 1):
            cells = (group == run) & (weights > 0)
            if not cells.any():
                continue
            # the run's reach on the feature's axis, from its observed bins' edges
            low, high = edges["low"][cells & observed], edges["high"][cells & observed]
            finite = bool(low.size) and np.isfinite(low).all() and np.isfinite(high).all()
            score, std_error, weight = _block_mean(
                ebm, scores, bagged, weights, cells, scale, replicates
            )
            rows.append(
                {
                    "term": name,
                    "kind": "main run",
                    "bin": run,
                    "label": labels[run],
                    "score": score,
                    "std_error": std_error,
                    "dof": float(bagged.shape[0] - 1) if bagged.shape[0] else np.nan,
                    "weight": weight,
                    "n_bins": int(cells.sum()),
                    "low": float(low.min()) if finite else np.nan,
                    "high": float(high.max()) if finite else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=columns), cut


def _check_feature_indices(name, indices) -> set[int]:
    """A collection of feature indices (non-negative integers) as a set."""
    constraint = "a collection of feature indices (non-negative integers)"
    if isinstance(indices, str | bytes) or not np.iterable(indices):
        fail(name, constraint, indices, TypeError)
    checked = set()
    for index in indices:
        if not isinstance(index, numbers.Integral) or isinstance(index, bool | np.bool_):
            fail(name, constraint, indices, TypeError)
        if index < 0:
            fail(name, constraint, indices)
        checked.add(int(index))
    return checked


def shape_functions(
    ebm, *, confidence: float = 0.95, interactions: bool = True, boolean_features=()
) -> pd.DataFrame:
    """Tidy table of a fitted EBM's shape functions with confidence bands.

    Parameters
    ----------
    ebm : fitted ExplainableBoostingRegressor or ExplainableBoostingClassifier
        Binary or regression EBM (one score per bin); a multiclass one is refused.
    confidence : float, default=0.95
        Coverage of the band, in (0, 1).
    interactions : bool, default=True
        Include pairwise interaction terms (their ``value`` is a tuple of the two features'
        bin values).
    boolean_features : collection of int, default=()
        Indices of the features that held booleans in the data the EBM was fitted on
        (interpret reads them as 0 and 1, and keeps no trace of their dtype): their bins get
        the values ``False`` and ``True`` and the labels ``"False"`` and ``"True"``.

    Returns
    -------
    pandas.DataFrame
        One row per term and bin, columns:

        - ``term``: the term's name (``"a & b"`` for an interaction);
        - ``kind``: ``"main"`` or ``"interaction"``;
        - ``bin``: the bin's index in the EBM's tables (0 is the missing-value bin); a pair of
          indices for an interaction cell. Two EBMs binned alike share these;
        - ``value``: a value the bin holds: the category for a nominal feature; ``False`` or
          ``True`` for a boolean one (see ``boolean_features``); for a continuous one, the
          lowest integer of the bin for an integer-valued feature, the
          bin's single value when every bin holds one distinct value, else the bin's midpoint
          (a position for plotting; edges in ``bin_low``, ``bin_high``); NaN for the
          missing-value bin (listed only when missing values were seen in training); for an
          interaction cell, the pair of its two bins' values;
        - ``label``: what to show for the bin (see the module docstring): ``"18"``,
          ``"18-19"``, ``"[0.5, 1.25)"``, the category, ``"False"`` or ``"True"``,
          ``"missing"``; a pair of labels for an interaction cell;
        - ``score``: the term's contribution on the model's scale (log-odds for a classifier);
        - ``lower``, ``upper``: the confidence band (see the module docstring), NaN when the
          bags cannot give one (an EBM built by interpret's ``merge_ebms`` among them: its
          bags were fitted on different data sets);
        - ``std_error``: the jackknife standard error behind the band;
        - ``dof``: its degrees of freedom (outer bags - 1), behind the band's ``t`` quantile;
          NaN for a term whose bags the EBM dropped (``ebm.monotonize`` does);
        - ``weight``: training rows (or sample weight) in the bin.

    Examples
    --------
    >>> import numpy as np
    >>> from interpret.glassbox import ExplainableBoostingRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> ebm = ExplainableBoostingRegressor(outer_bags=4, max_rounds=50, interactions=0)
    >>> table = shape_functions(ebm.fit(X, X[:, 0] ** 2))
    >>> list(table.columns[:6])
    ['term', 'kind', 'bin', 'value', 'label', 'score']
    """
    confidence = check_confidence(confidence)
    interactions = check_bool("interactions", interactions)
    booleans = _check_feature_indices("boolean_features", boolean_features)
    if not hasattr(ebm, "term_scores_"):
        raise TypeError(
            f"shape functions need a fitted Explainable Boosting Machine; got {type(ebm).__name__}."
        )
    _check_one_score_per_bin(ebm, "shape_functions")
    frames = []
    for index, (features, name) in enumerate(zip(ebm.term_features_, ebm.term_names_)):
        scores = np.asarray(ebm.term_scores_[index], dtype=float)
        if len(features) > 2 or (len(features) == 2 and not interactions):
            continue
        errors = standard_errors(ebm, index)
        weights = np.asarray(ebm.bin_weights_[index], dtype=float)
        tables = [
            _bin_table(ebm, f, _feature_bins(ebm, f, len(features)), f in booleans)
            for f in features
        ]
        # drop the trailing "unseen" bin of every axis
        keep = tuple(slice(0, len(table)) for table in tables)
        scores, errors, weights = scores[keep], errors[keep], weights[keep]
        if len(features) == 1:
            frame = tables[0].copy()
            frame["bin"] = np.arange(len(frame))
            frame["kind"] = "main"
        else:
            grid = np.meshgrid(*[np.arange(len(t)) for t in tables], indexing="ij")
            cells = list(zip(*(g.ravel() for g in grid)))
            frame = pd.DataFrame(
                {
                    "value": [tuple(t["value"].iloc[i] for t, i in zip(tables, c)) for c in cells],
                    "label": [tuple(t["label"].iloc[i] for t, i in zip(tables, c)) for c in cells],
                    "bin_low": np.nan,
                    "bin_high": np.nan,
                    "bin": [tuple(int(i) for i in c) for c in cells],
                }
            )
            frame["kind"] = "interaction"
        bags = _bag_count(ebm, index)
        frame["dof"] = float(bags - 1) if bags else np.nan
        frame["score"] = scores.ravel()
        frame["std_error"] = errors.ravel()
        frame["weight"] = weights.ravel()
        frame["term"] = name
        frames.append(frame[frame["weight"] > 0])
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    # edges are numbers (NaN for categories and cells), whatever the frames' dtypes were
    table[["bin_low", "bin_high"]] = table[["bin_low", "bin_high"]].astype(float)
    with np.errstate(invalid="ignore"):
        quantile = student_t.ppf(0.5 + confidence / 2, table["dof"].where(table["dof"] > 0))
    table["lower"] = table["score"] - quantile * table["std_error"]
    table["upper"] = table["score"] + quantile * table["std_error"]
    if _merged(ebm):
        warnings.warn(
            "the EBM was merged (interpret's merge_ebms): its bags were fitted on different "
            "data sets, so their spread is no sampling spread and no confidence band follows "
            "from it; lower, upper and std_error are NaN.",
            UserWarning,
            stacklevel=2,
        )
    elif table["std_error"].isna().all():
        warnings.warn(
            "the EBM's bags cannot give confidence bands (fewer than 2 outer bags, "
            "validation_size=0 so that every bag saw all rows, or terms whose bags the EBM "
            "dropped, as monotonize does); lower and upper are NaN.",
            UserWarning,
            stacklevel=2,
        )
    return table[COLUMNS]
