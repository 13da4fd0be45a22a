"""DistilledTree: a small regression tree that mimics a teacher's score, read as rules.

Each leaf of the tree is a rule: the conditions on the path from the root, in feature names
and the labels of the data (``priors_count > 3.5 and age <= 24.5``). :meth:`DistilledTree.rules`
lists them with their prediction and the rows they cover; :meth:`DistilledTree.explain` says
which rule fired for each row.

**Categorical features** are split on sets of categories. scikit-learn's trees split numbers
only, so each categorical column reaches the tree as the rank of its categories ordered by their
mean target on the fitting rows (by the first principal direction of their mean targets, for
several classes). For a squared error, the best split of the categories into two sets is one of
the splits of that ordering (Breiman et al., 1984, for the root node; deeper nodes use the same
global ordering, an approximation). A split then reads ``purpose in {'car', 'education'}`` on
one side and ``purpose not in {'car', 'education'}`` on the other. Missing values and categories
not seen at fit rank after every known category, so they always take the ``not in`` side, and
the rule that says so is true for them: for a column with missing values at fit it reads
``(purpose not in {'car', 'education'} or purpose is missing)``. Labels are written as values
(``{2020-01-01}`` for a date, ``{(0, 2]}`` for an interval of ``pd.cut``).

**Feature names** are written as they are, or quoted as a Python string where a name would
make the rule ambiguous (``'debt and loans' <= 3``: a name holding a word of the rules' own,
``and``, ``or``, ``in``, ``not``, ``is``, holding a quote (``"driver's age"``) or a comparison
sign (``'x < 1' <= 0.5``), reading as a number (``'1.5' > 2``), or starting with a bracket).

**Missing numbers** are routed by the tree itself (scikit-learn learns, at each split, on which
side rows with a missing value go). For a feature with missing values at fit, a rule states it:
the side that takes them reads ``x is missing`` in a rule of its own, the other side adds
``x is not missing``. A rule read alone is therefore true of every row it covers, missing values
included.

**Thresholds** are the shortest decimals that split the fitting rows as scikit-learn's tree did
(``debt_ratio <= 0.2815`` rather than its float32 midpoint ``0.2814999967813492``), and the
model routes every row with those very thresholds, in float64: the rules are the model.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import _num_samples, check_is_fitted

from sklearn_distill import _teacher
from sklearn_distill._data import (
    CATEGORICAL,
    caller_stacklevel,
    column_values,
    is_frame,
    numeric_column,
    warn_unseen_categories,
    warn_values_equal_as_text,
)
from sklearn_distill._validation import check_integer, check_real
from sklearn_distill.gam import DistillerBase

__all__ = ["OPERATORS", "DistilledTree"]

#: The operators of a rule's conditions, as ``(feature, operator, value)`` tuples.
OPERATORS = ("<=", ">", "in", "not in", "is missing", "is not missing")


def _format_label(label) -> str:
    """A category label as a reader writes it: numpy scalars as the Python values they hold
    (``'a'``, not ``np.str_('a')``), pandas' dates, durations, periods and intervals (a
    ``category`` column's labels, from ``pd.cut`` for one) as their values (``2020-01-01``,
    ``(0, 2]``), not their constructors."""
    if isinstance(label, pd.Timestamp):
        midnight = label.tz is None and label == label.normalize()
        return label.strftime("%Y-%m-%d") if midnight else str(label)
    if isinstance(label, pd.Timedelta | pd.Period | pd.Interval):
        return str(label)
    return repr(label.item() if isinstance(label, np.generic) else label)


def _set_labels(value) -> list:
    """A set's category labels as a rule writes them, in order: numeric codes in their order
    ({9, 10}, not {10, 9}); mixed kinds by their text."""
    try:
        ordered = sorted(value)
    except TypeError:
        ordered = sorted(value, key=repr)
    return [_format_label(v) for v in ordered]


def _format_value(value) -> str:
    if isinstance(value, set):
        return "{" + ", ".join(_set_labels(value)) + "}"
    text = repr(float(value))  # the shortest text that reads back as the same number
    return text[:-2] if text.endswith(".0") else text


def _shortest_between(low: float, high: float) -> float:
    """The shortest decimal strictly between ``low`` and ``high``, nearest their middle
    (``40.5`` between 40 and 41, ``0.2815`` between 0.281 and 0.282)."""
    if not np.isfinite(low) or not np.isfinite(high):
        return float(low if np.isfinite(low) else high)
    middle = low + (high - low) / 2
    for digits in range(1, 18):
        decimal = float(f"{middle:.{digits}g}")
        if low < decimal < high:
            return decimal
    return float(low)


#: Words and operators of a rule's text: a feature name holding one of them as a word is quoted.
_RULE_WORDS = frozenset({"and", "or", "in", "not", "is", "<=", ">"})


def _reads_as_number(name: str) -> bool:
    try:
        float(name)
    except ValueError:
        return False
    return True


def _format_feature(feature) -> str:
    """A feature's name as a rule writes it: as it is, or quoted as a Python string literal
    (``'debt and loans' <= 3``) where the name would make the rule's text ambiguous (it holds
    a word of the rule's own, such as ``and``, holds a quote or a comparison sign (``x < 1``,
    ``a>b``), reads as a number (``'1.5' <= 3``, a column named ``0``), starts with a bracket,
    has spaces at either end, is empty or holds characters that do not print)."""
    name = str(feature)
    plain = (
        name
        and name == name.strip()
        and name.isprintable()
        and name[0] != "("
        and not set(name) & set("'\"<>=")
        and not _reads_as_number(name)
        and not _RULE_WORDS.intersection(name.split())
    )
    return name if plain else repr(name)


def format_condition(condition, *, or_missing=False) -> str:
    """A condition ``(feature, operator, value)`` as text: ``age <= 24.5``; with
    ``or_missing``, a ``not in`` condition also names the missing values it holds:
    ``(purpose not in {'car'} or purpose is missing)``."""
    feature, operator, value = condition
    name = _format_feature(feature)
    if operator in ("is missing", "is not missing"):
        return f"{name} {operator}"
    text = f"{name} {operator} {_format_value(value)}"
    if or_missing and operator == "not in":
        return f"({text} or {name} is missing)"
    return text


class _PathState:
    """What a path from the root says about each feature, merged into the tightest conditions."""

    def __init__(self):
        self.order = []  # features in order of first appearance
        self.low, self.high, self.missing = {}, {}, {}
        self.inside, self.outside = {}, {}

    def copy(self):
        new = _PathState()
        new.order = list(self.order)
        for name in ("low", "high", "missing", "inside", "outside"):
            setattr(new, name, dict(getattr(self, name)))
        return new

    def _touch(self, feature):
        if feature not in self.order:
            self.order.append(feature)

    def conditions(self, names):
        out = []
        for feature in self.order:
            name = names[feature]
            if self.missing.get(feature) is True:
                out.append((name, "is missing", None))
                continue
            if feature in self.low:
                out.append((name, ">", self.low[feature]))
            if feature in self.high:
                out.append((name, "<=", self.high[feature]))
            if feature in self.inside:
                out.append(
                    (name, "in", set(self.inside[feature] - self.outside.get(feature, set())))
                )
            elif feature in self.outside:
                out.append((name, "not in", set(self.outside[feature])))
            if self.missing.get(feature) is False:
                out.append((name, "is not missing", None))
        return out


#: The largest magnitude scikit-learn's trees read (they read X as float32).
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(values, name) -> None:
    """Refuse a numeric column with values beyond float32's range, naming it: scikit-learn's
    tree reads X as float32 and refuses them without naming the column."""
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) > _FLOAT32_MAX
    if beyond.any():
        largest = float(np.max(np.abs(values[beyond])))
        raise ValueError(
            f"X column {name!r} must lie within float32's range (|x| <= {_FLOAT32_MAX:.3g}), as "
            f"the tree (scikit-learn's) reads X as float32; got {int(beyond.sum())} values "
            f"beyond it (up to {largest:.3g} in magnitude). Rescale the column (e.g. divide it "
            "by a power of ten) before distilling."
        )


class DistilledTree(DistillerBase):
    """A regression tree that mimics a teacher's score, readable as rules (distillation).

    The teacher is read as by :class:`~sklearn_distill.DistilledGAM` (log-odds for classifier
    teachers, calibrated log-odds with ``calibration``, plain scores otherwise) and a
    :class:`~sklearn.tree.DecisionTreeRegressor` with at most ``max_leaf_nodes`` leaves is
    fitted to that target. Every leaf is a rule (:meth:`rules`); :meth:`explain` gives the rule
    that fired for each row; :meth:`export_text` prints the whole tree.

    Values the fitting rows did not hold: at predict time (``predict``, ``explain``,
    ``fidelity``) a category not seen at fit is routed with the missing values, to the ``not
    in`` side of every split on its column, with a ``UserWarning`` naming it, and so is a
    missing value in a categorical column that had none at fit (its rules' ``not in`` reads as
    if it held one of the other categories); a missing value in a numeric column that had none
    at fit is refused (``ValueError``), as no rule says where it goes.
    :class:`~sklearn_distill.DistilledGAM` warns about both instead, for its terms have an
    answer (a contribution of 0).

    Parameters
    ----------
    teacher : fitted estimator, callable or None, default=None
        The black box, as for :class:`~sklearn_distill.DistilledGAM`: never refitted nor
        modified, shared by clones; in a grid over ``teacher``, wrap each as
        ``FrozenEstimator(teacher)``.
    response : {"auto", "predict", "predict_proba", "decision_function"}, default="auto"
        How the teacher is read (see :class:`~sklearn_distill.DistilledGAM`).
    calibration : {None, "isotonic", "sigmoid", "temperature", "spline"}, default=None
        Map a one-dimensional score to P(y = 1 | score) with the labels ``y`` first.
    max_leaf_nodes : int, default=8
        Leaves of the tree (best-first growth), at least 2: the number of rules, more where a
        feature with missing values splits a rule in two.
    max_depth : int or None, default=None
        Longest rule (conditions on the path), unlimited by default.
    min_samples_leaf : int or float, default=0.01
        Fewest fitting rows a leaf may hold (a float is a share of the rows): rules that cover
        a handful of rows explain little.
    monotone_constraints : dict or None, default=None
        ``{feature: +1 or -1}`` (name, or column index for arrays): the prediction never
        decreases (+1) or never increases (-1) with that feature, other features held fixed.
        Passed to the tree's ``monotonic_cst``. Numeric features only; one output only.
    random_state : int, RandomState instance or None, default=None
        Seeds the tree, the calibration folds, query augmentation and subsampling.
    temperature : float, default=1.0
        Divides the teacher's log-odds (above 1 softens the probabilities mimicked).
    cv : int, default=5
        Folds for cross-fitted calibration: stratified folds of rows, or of whole records when
        :meth:`fit` is given ``groups``.
    augmentation : float or None, default=None
        Query augmentation (see :func:`~sklearn_distill.gam.generate_queries`).
    max_samples : int or None, default=None
        Fit on at most this many rows of the transfer set; ``None`` uses every row.
    proba_clip : float, default=1e-4
        Teacher probabilities are clipped to ``[proba_clip, 1 - proba_clip]`` before log-odds
        (see :class:`~sklearn_distill.DistilledGAM`).

    Attributes
    ----------
    tree_ : DecisionTreeRegressor
        The fitted tree, on numeric columns and category ranks.
    thresholds_ : ndarray of shape (n_nodes,)
        The threshold of each split as the rules state it and the model applies it (NaN at
        leaves; +inf where a split sends the missing values one way and every value the
        other, which the rules state as ``is missing`` / ``is not missing``).
    categories_ : dict
        For each categorical column index, its known categories in rank order.
    rules_ : list of dict
        The rules, one or more per leaf (see :meth:`rules`).
    response_, fit_settings_, classes_, calibrator_, target_offset_, target_scale_,
    n_features_in_, feature_names_in_
        As for :class:`~sklearn_distill.DistilledGAM`.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_distill import DistilledTree
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.integers(18, 70, 400), "priors": rng.integers(0, 9, 400)})
    >>> score = (X["priors"] > 3) * 2.0 - (X["age"] > 40)
    >>> tree = DistilledTree(max_leaf_nodes=4, random_state=0).fit(X, teacher_scores=score)
    >>> for rule, prediction in tree.rules()[["rule", "prediction"]].to_numpy():
    ...     print(f"{rule}: {prediction:.1f}")
    priors <= 3.5 and age <= 41: 0.0
    priors <= 3.5 and age > 41: -1.0
    priors > 3.5 and age <= 40.5: 2.0
    priors > 3.5 and age > 40.5: 1.0
    """

    def __init__(
        self,
        teacher=None,
        *,
        response="auto",
        calibration=None,
        max_leaf_nodes=8,
        max_depth=None,
        min_samples_leaf=0.01,
        monotone_constraints=None,
        random_state=None,
        temperature=1.0,
        cv=5,
        augmentation=None,
        max_samples=None,
        proba_clip=1e-4,
    ):
        self.teacher = teacher
        self.response = response
        self.calibration = calibration
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.monotone_constraints = monotone_constraints
        self.random_state = random_state
        self.temperature = temperature
        self.cv = cv
        self.augmentation = augmentation
        self.max_samples = max_samples
        self.proba_clip = proba_clip

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # one tree with one output per class
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def _check_student_params(self):
        check_integer("max_leaf_nodes", self.max_leaf_nodes, minimum=2)
        if self.max_depth is not None:
            check_integer("max_depth", self.max_depth, minimum=1)
        if isinstance(self.min_samples_leaf, numbers.Integral) and not isinstance(
            self.min_samples_leaf, bool
        ):
            check_integer("min_samples_leaf", self.min_samples_leaf, minimum=1)
        else:
            check_real(
                "min_samples_leaf",
                self.min_samples_leaf,
                minimum=0,
                maximum=0.5,
                exclusive_minimum=True,
            )

    # ------------------------------------------------------------------ encoding
    def _names(self):
        """The features' names in rules: a frame's column labels (also labels that are not
        strings, which scikit-learn does not record), else ``feature_0000``, ``feature_0001``,
        ..., as the GAM and the audit name an array's features."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = getattr(self, "_frame_columns_", None)
        if names is not None:
            return [str(name) for name in names]
        return [f"feature_{k:04d}" for k in range(self.n_features_in_)]

    def _encode(self, X, *, warn_unseen=True, check_missing=True):
        """Numeric columns as floats, categorical ones as category ranks (missing and unseen
        categories after all known ones)."""
        n_samples = _num_samples(X)
        encoded = np.empty((n_samples, self.n_features_in_))
        names = self._names()
        for index in range(self.n_features_in_):
            if index not in self.categories_:
                encoded[:, index] = numeric_column(X, index)
                _check_float32_range(encoded[:, index], names[index])
                if (
                    check_missing
                    and index not in self.missing_features_
                    and np.isnan(encoded[:, index]).any()
                ):
                    raise ValueError(
                        f"X column {names[index]!r} must have no missing values, as at fit (the "
                        "tree learnt no rule for them); impute them, or fit on rows where it "
                        f"is missing; got {int(np.isnan(encoded[:, index]).sum())} missing."
                    )
                continue
            ranks = self._ranks_[index]
            values = pd.Series(column_values(X, index), dtype=object)
            missing = values.isna().to_numpy()
            codes = np.array(values.map(ranks).to_numpy(dtype=float, na_value=np.nan))
            unseen = set(values[np.isnan(codes) & ~missing])
            codes[np.isnan(codes)] = len(ranks)  # missing and unseen: after every known category
            if unseen and warn_unseen:
                warn_unseen_categories(
                    names[index],
                    unseen,
                    "They are routed with missing values, to the 'not in' side of every split "
                    "on this column.",
                )
            known = getattr(self, "_categories_with_missing_", None)  # None: fitted before
            if warn_unseen and known is not None and index not in known and missing.any():
                warnings.warn(
                    f"X column {names[index]!r} has {int(missing.sum())} missing value(s), and "
                    "had none at fit: the tree learnt no rule for them. They are routed as an "
                    "unseen category, to the 'not in' side of every split on this column, and "
                    "their rules read as if they held one of the other categories; impute them, "
                    "or fit on rows where the column is missing.",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
            encoded[:, index] = codes
        return encoded

    def _infinity_advice(self, indices, *, reset):
        # at predict, NaN is refused too in a numeric column that had no missing values at fit
        refused = [
            k
            for k in ([] if reset else indices)
            if k not in self.categories_ and k not in self.missing_features_
        ]
        if not refused:
            return super()._infinity_advice(indices, reset=reset)
        if list(refused) == list(indices) and len(refused) == 1:
            where = "this column, which"
        else:
            names = ", ".join(repr(self._names()[k]) for k in refused)
            where = f"column{'s' if len(refused) > 1 else ''} {names}, which"
        return (
            f"use finite numbers: NaN is refused too in {where} had no missing values at fit "
            "(the tree learnt no rule for them)"
        )

    def _learn_categories(self, X, target):
        """Rank each categorical column's categories by their mean target."""
        self.categories_, self._ranks_ = {}, {}
        for index, kind in enumerate(self.feature_kinds_):
            if kind != CATEGORICAL:
                continue
            values = pd.Series(column_values(X, index), dtype=object)
            present = values.notna().to_numpy()
            codes, labels = pd.factorize(values[present])
            counts = np.bincount(codes, minlength=len(labels)).astype(float)
            sums = np.zeros((len(labels), target.shape[1]))
            np.add.at(sums, codes, target[present])
            means = sums / np.maximum(counts, 1)[:, None]
            if target.shape[1] == 1:
                key = means[:, 0]
            else:  # several classes: the first principal direction of the category means
                centred = means - np.average(means, axis=0, weights=counts)
                direction = np.linalg.svd(centred * np.sqrt(counts)[:, None])[2][0]
                key = centred @ direction
            order = sorted(range(len(labels)), key=lambda k: (key[k], repr(labels[k])))
            self.categories_[index] = [labels[k] for k in order]
            self._ranks_[index] = {labels[k]: rank for rank, k in enumerate(order)}

    # ------------------------------------------------------------------ fitting
    def _fit_student(self, transfer, target, constraints, seed):
        if constraints is not None and target.shape[1] > 1:
            raise ValueError(
                "monotone_constraints must be None for a teacher with more than two classes "
                f"(the tree then has {target.shape[1]} outputs); got {self.monotone_constraints!r}."
            )
        # the tree's categories are values: True and 1 are one category to it
        warn_values_equal_as_text(transfer, self.feature_kinds_, stacklevel=3, reads_text=False)
        self._learn_categories(transfer, target)
        self.missing_features_ = self._features_with_missing(transfer)
        self._categories_with_missing_ = self._categories_missing(transfer)
        self.tree_ = DecisionTreeRegressor(
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            monotonic_cst=constraints,
            random_state=seed,
        )
        encoded = self._encode(transfer, warn_unseen=False)
        self._warn_if_float32_hides(encoded)
        self.tree_.fit(encoded, target[:, 0] if target.shape[1] == 1 else target)
        self.thresholds_ = self._readable_thresholds(encoded)

    def _warn_if_float32_hides(self, encoded):
        """Warn about columns the tree cannot split: scikit-learn's trees read X as float32
        and treat a feature whose float32 values span at most 1e-7 as constant, so a column
        of tiny range (values times 1e-12) or riding a large offset (1e12 plus a few units)
        would be left out of every rule without a word."""
        names = getattr(self, "feature_names_in_", None)
        hidden, coarse = [], []
        for j in range(encoded.shape[1]):
            values = encoded[:, j][np.isfinite(encoded[:, j])]
            if values.size < 2 or np.ptp(values) == 0:
                continue
            name = str(names[j]) if names is not None else str(j)
            narrow = values.astype(np.float32)
            if float(np.ptp(narrow)) <= 1e-7:
                hidden.append(name)
                continue
            # values float32 merges although they lie apart by more than a millionth of the
            # column's range: a large offset (epoch seconds, 1.7e9 + k) leaves float32 a grid
            # coarser than the data's (not float noise: k / 10 and k * 0.1 merging is harmless)
            unique = np.unique(values)
            merged = np.diff(unique.astype(np.float32)) == 0
            apart = np.diff(unique) > 1e-6 * float(np.ptp(values))
            if int((merged & apart).sum()) > 0.1 * unique.size:
                kept = np.unique(narrow).size
                coarse.append(f"{name} ({unique.size} values, {kept} in float32)")
        if coarse:
            warnings.warn(
                f"X columns {', '.join(coarse)} have distinct values that float32 cannot tell "
                "apart, so the tree (scikit-learn's, which reads X as float32) splits them on a "
                "coarser grid than the data's and its rules mix rows across the merged values. "
                "Rescale them (subtract an offset, such as the column's smallest value) before "
                "distilling.",
                UserWarning,
                stacklevel=4,
            )
        if hidden:
            warnings.warn(
                f"X columns {hidden} vary, but not in float32 by more than 1e-7, so the tree "
                "(scikit-learn's, which reads X as float32) treats them as constant and no rule "
                "will use them. Rescale them (subtract an offset, multiply a tiny range) "
                "before distilling.",
                UserWarning,
                stacklevel=4,
            )

    def _readable_thresholds(self, encoded):
        """For each split, the shortest decimal between the fitting rows the tree sent left and
        those it sent right (the tree itself compares float32 values with float32 midpoints)."""
        tree = self.tree_.tree_
        thresholds = np.full(tree.node_count, np.nan)
        paths = self.tree_.decision_path(encoded).tocsc()
        for node in np.flatnonzero(tree.children_left != -1):
            if not np.isfinite(tree.threshold[node]):
                # scikit-learn's split of the missing values from all others (+inf: every
                # value goes left); a finite stand-in would send larger values with the missing
                thresholds[node] = float(tree.threshold[node])
                continue
            rows = paths.indices[paths.indptr[node] : paths.indptr[node + 1]]
            values = encoded[rows, tree.feature[node]]
            values = values[~np.isnan(values)]
            left = values.astype(np.float32) <= tree.threshold[node]
            low = values[left].max() if left.any() else -np.inf
            high = values[~left].min() if (~left).any() else np.inf
            if np.isfinite(low) or np.isfinite(high):
                thresholds[node] = _shortest_between(low, high)
            else:
                thresholds[node] = float(tree.threshold[node])
        return thresholds

    def _apply(self, encoded):
        """The leaf of each row, routed with :attr:`thresholds_` in float64 (missing values as
        the tree learnt)."""
        tree = self.tree_.tree_
        node = np.zeros(len(encoded), dtype=np.intp)
        while True:
            active = np.flatnonzero(tree.children_left[node] != -1)
            if active.size == 0:
                return node
            current = node[active]
            value = encoded[active, tree.feature[current]]
            left = np.where(
                np.isnan(value),
                tree.missing_go_to_left[current].astype(bool),
                value <= self.thresholds_[current],
            )
            node[active] = np.where(left, tree.children_left[current], tree.children_right[current])

    def _leaf_values(self, encoded):
        values = self.tree_.tree_.value[self._apply(encoded)]
        return np.asarray(values[:, :, 0], dtype=float)

    def _features_with_missing(self, X):
        return {
            index
            for index in range(self.n_features_in_)
            if index not in self.categories_ and np.isnan(numeric_column(X, index)).any()
        }

    def _categories_missing(self, X):
        """The categorical columns in which ``X`` holds missing values."""
        return {
            index
            for index in self.categories_
            if pd.Series(column_values(X, index), dtype=object).isna().any()
        }

    def _predict_student(self, X):
        encoded = self._encode(X)
        return self._leaf_values(encoded)

    def _after_fit(self, X, target, fitted):
        # rows of X left out by max_samples may miss values the fitting rows never missed
        self.missing_features_ |= self._features_with_missing(X)
        self._categories_with_missing_ |= self._categories_missing(X)
        self._warn_if_subsample_missed_categories(
            X,
            fitted,
            self.categories_,
            self._names(),
            ("tree", "routed as unseen categories (with the missing values) by every rule"),
        )
        self.rules_ = self._build_rules()
        ids = self._rule_ids(self._encode(X, warn_unseen=False, check_missing=False))
        target = target.reshape(len(target), -1)
        for rule_id, rule in enumerate(self.rules_):
            covered = ids == rule_id
            rule["n_rows"] = int(covered.sum())
            rule["teacher_mean"] = (
                target[covered].mean(axis=0) if covered.any() else np.full(target.shape[1], np.nan)
            )
        self.n_fit_rows_ = len(ids)

    # ------------------------------------------------------------------ rules
    def _build_rules(self):
        tree = self.tree_.tree_
        names = self._names()
        rules = []

        def walk(node, state):
            left, right = tree.children_left[node], tree.children_right[node]
            if left == -1:
                value = tree.value[node][:, 0] * self.target_scale_ + self.target_offset_
                missing = {f: m for f, m in state.missing.items()}
                rules.append(
                    {
                        "leaf": int(node),
                        "conditions": state.conditions(names),
                        "missing": missing,
                        "value": value,
                    }
                )
                return
            feature, threshold = int(tree.feature[node]), float(self.thresholds_[node])
            if feature in self.categories_:
                labels = self.categories_[feature]
                below = set(labels[: int(np.floor(threshold)) + 1])
                for child, inside in ((left, True), (right, False)):
                    branch = state.copy()
                    branch._touch(feature)
                    if inside:
                        known = branch.inside.get(feature, set(labels))
                        branch.inside[feature] = known & below
                    else:
                        branch.outside[feature] = branch.outside.get(feature, set()) | below
                    walk(child, branch)
                return
            missing_left = bool(tree.missing_go_to_left[node])
            can_be_missing = feature in self.missing_features_
            for child, is_left in ((left, True), (right, False)):
                # an infinite threshold splits the missing values from all others: no value
                # lies beyond it, and every value lies on its near side
                possible = np.isfinite(threshold) or is_left == (threshold > 0)
                if state.missing.get(feature) is not True and possible:
                    branch = state.copy()
                    branch._touch(feature)
                    if np.isfinite(threshold):
                        bounds = branch.high if is_left else branch.low
                        tighter = min if is_left else max
                        bounds[feature] = tighter(bounds.get(feature, threshold), threshold)
                    if can_be_missing:
                        branch.missing[feature] = False
                    walk(child, branch)
                if (
                    can_be_missing
                    and missing_left == is_left
                    and state.missing.get(feature) is not False
                ):
                    branch = state.copy()
                    branch._touch(feature)
                    branch.missing[feature] = True
                    walk(child, branch)

        walk(0, _PathState())
        return rules

    def _rule_ids(self, encoded):
        leaves = self._apply(encoded)
        ids = np.full(len(encoded), -1)
        for rule_id, rule in enumerate(self.rules_):
            covered = leaves == rule["leaf"]
            for feature, missing in rule["missing"].items():
                covered &= np.isnan(encoded[:, feature]) == missing
            ids[covered] = rule_id
        return ids

    def _probability(self, value):
        """P(class 1) for one output, the class probabilities for several."""
        if len(value) == 1:
            return float(_teacher.logits_to_probabilities(value)[0, 1])
        return _teacher.logits_to_probabilities(value[None, :])[0]

    def _most_probable(self, probabilities):
        """The class (a label of ``classes_``) of each row's largest probability."""
        return np.asarray(self.classes_)[np.argmax(probabilities, axis=1)]

    def _scalar(self, value):
        return float(value[0]) if len(value) == 1 else np.asarray(value)

    def rules(self):
        """The tree's rules, one row per leaf (two or more where a feature with missing values
        at fit splits the leaf's rows into those that have a value and those that miss it).

        Returns
        -------
        pandas.DataFrame
            ``rule_id``; ``rule``, the conditions as text joined by ``and``; ``conditions``, a
            list of ``(feature, operator, value)`` tuples, ``operator`` one of ``"<="``,
            ``">"``, ``"in"``, ``"not in"`` (``value`` a set of category labels as they appear
            in X; ``"not in"`` holds the missing values too, which ``rule`` says where the
            column had some at fit), ``"is missing"``, ``"is not missing"`` (``value`` None);
            the feature named as in X (``rule`` quotes a name that would make it ambiguous,
            see the module's notes); ``prediction`` (the
            mimicked score: log-odds for classifier teachers; an array per class for more than
            two); ``probability`` (classifier teachers and calibrated scores; for more than
            two classes an array in the order of ``classes_``, and ``class``, the most probable
            class's label); ``n_rows`` and
            ``share`` of the fitting rows the rule covers (the rows given to ``fit``: rows
            generated by ``augmentation`` are not counted); ``teacher_mean``, the teacher's
            mean target on them; ``leaf``, the tree's node id.
        """
        check_is_fitted(self, "rules_")
        # the categorical features whose missing values a "not in" takes, as the text says
        names = self._names()
        with_missing = {names[k] for k in getattr(self, "_categories_with_missing_", ())}
        records = []
        for rule_id, rule in enumerate(self.rules_):
            text = " and ".join(
                format_condition(c, or_missing=c[0] in with_missing) for c in rule["conditions"]
            )
            record = {
                "rule_id": rule_id,
                "rule": text or "always",
                "conditions": list(rule["conditions"]),
                "prediction": self._scalar(rule["value"]),
            }
            if self._is_classifier_like:
                record["probability"] = self._probability(rule["value"])
                if len(rule["value"]) > 1:
                    record["class"] = self._most_probable(record["probability"][None, :])[0]
            record.update(
                n_rows=rule["n_rows"],
                share=rule["n_rows"] / self.n_fit_rows_,
                teacher_mean=self._scalar(rule["teacher_mean"]),
                leaf=rule["leaf"],
            )
            records.append(record)
        return pd.DataFrame.from_records(records)

    def explain(self, X):
        """The rule that fired for each row of ``X``, and the prediction.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            With the columns seen at fit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``X``: ``rule_id``, ``rule`` (text), ``prediction`` (and
            ``probability`` for classifier teachers and calibrated scores; for more than two
            classes also ``class``, the most probable class's label).
        """
        check_is_fitted(self, "rules_")
        X = self._check_X(X, reset=False)
        index = X.index if is_frame(X) else pd.RangeIndex(_num_samples(X))
        encoded = self._encode(X)
        ids = self._rule_ids(encoded)
        table = self.rules()
        prediction = self._leaf_values(encoded) * self.target_scale_ + self.target_offset_
        out = pd.DataFrame(
            {
                "rule_id": ids,
                "rule": table["rule"].to_numpy()[ids],
                "prediction": list(prediction) if self.n_outputs_ > 1 else prediction[:, 0],
            },
            index=index,
        )
        if self._is_classifier_like:
            probabilities = _teacher.logits_to_probabilities(
                prediction[:, 0] if self.n_outputs_ == 1 else prediction
            )
            out["probability"] = (
                probabilities[:, 1] if self.n_outputs_ == 1 else list(probabilities)
            )
            if self.n_outputs_ > 1:
                out["class"] = self._most_probable(probabilities)
        return out

    def export_text(self, *, decimals=3):
        """The whole tree as indented text: each split's two sides (with where missing values
        and unseen categories go), and at each leaf its rule id, prediction and rows.

        Parameters
        ----------
        decimals : int, default=3
            Digits of the predictions shown (thresholds as in :meth:`rules`).

        Returns
        -------
        str
        """
        check_is_fitted(self, "rules_")
        check_integer("decimals", decimals, minimum=0)
        tree = self.tree_.tree_
        names = self._names()
        table = self.rules()
        by_leaf = {}
        for _, row in table.iterrows():
            by_leaf.setdefault(row["leaf"], []).append(row)
        lines = []

        def leaf_text(rows):
            row = rows[0]
            # + 0.0: a small negative prediction rounds to 0.0, not -0.0
            prediction = np.round(np.asarray(row["prediction"], dtype=float), decimals) + 0.0
            text = f"prediction {prediction.tolist()}"
            if "class" in row:  # several classes: each probability by its class
                probability = np.round(np.asarray(row["probability"], dtype=float), decimals)
                shares = ", ".join(
                    f"{label} {p}" for label, p in zip(self.classes_, probability.tolist())
                )
                text += f" (probability {shares}: class {row['class']})"
            elif "probability" in row:
                probability = np.round(np.asarray(row["probability"], dtype=float), decimals)
                text += f" (probability {probability.tolist()})"
            n_rows = sum(r["n_rows"] for r in rows)
            ids = ", ".join(str(r["rule_id"]) for r in rows)
            label = "rule" if len(rows) == 1 else "rules"
            return f"{label} {ids}: {text}, {n_rows} rows ({100 * n_rows / self.n_fit_rows_:.1f}%)"

        def walk(node, depth, present):
            # present: numeric features an earlier split showed to hold a value on this path
            indent = "|   " * depth + "|--- "
            left, right = tree.children_left[node], tree.children_right[node]
            if left == -1:
                lines.append(indent + leaf_text(by_leaf[node]))
                return
            feature, threshold = int(tree.feature[node]), float(self.thresholds_[node])
            name = names[feature]
            held = set()  # the side texts that show the feature holds a value
            if feature in self.categories_:
                below = set(self.categories_[feature][: int(np.floor(threshold)) + 1])
                sides = (
                    (left, format_condition((name, "in", below))),
                    (right, format_condition((name, "not in", below)) + " (or missing, or unseen)"),
                )
            else:
                missing = ""
                if feature in self.missing_features_ and feature not in present:
                    missing_left = bool(tree.missing_go_to_left[node])
                    missing = (" (or missing)", "") if missing_left else ("", " (or missing)")
                else:
                    missing = ("", "")
                sides = (
                    (left, format_condition((name, "<=", threshold)) + missing[0]),
                    (right, format_condition((name, ">", threshold)) + missing[1]),
                )
                # the side the missing values do not take holds values only
                held = {text for _, text in sides if any(missing) and "(or missing)" not in text}
                if not np.isfinite(threshold):  # the missing values apart from all others
                    values = format_condition((name, "is not missing", None))
                    nothing = format_condition((name, "is missing", None))
                    near, far = (values, nothing) if threshold > 0 else (nothing, values)
                    sides = ((left, near), (right, far))
                    held = {values}
            for child, text in sides:
                lines.append(indent + text)
                walk(child, depth + 1, present | {feature} if text in held else present)

        walk(0, 0, frozenset())
        return "\n".join(lines)
