"""Cross-fitted calibration of a one-dimensional teacher score against binary labels.

The score is mapped to P(y = 1 | score) by :class:`IsotonicCalibrator` (``"isotonic"``: isotonic
steps read as empirical logits), by scikit-learn's own calibrators for ``"sigmoid"`` and
``"temperature"`` (:class:`~sklearn.calibration.CalibratedClassifierCV` around a frozen
estimator that reads the score column), or by :class:`SplineCalibrator` (``"spline"``), fitted
on K - 1 folds and applied to the held-out fold, so that no row's calibrated value has seen its
own label.

**Direction.** Isotonic regression and temperature scaling fit increasing maps only; a score
that falls as risk rises (a "safety" or credit score) would be flattened to a constant. The
direction is read once from all rows (the sign of Spearman's correlation of score and label),
and a falling score is calibrated reversed (a decreasing map); a ``UserWarning`` says so.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.multiclass import type_of_target

from sklearn_distill._data import caller_stacklevel, check_signaling_nans
from sklearn_distill._validation import fail

CALIBRATIONS = (None, "isotonic", "sigmoid", "temperature", "spline")

#: Inverse L2 strengths tried by the spline calibration, least smoothing first.
_SPLINE_STRENGTHS = (100.0, 10.0, 1.0, 0.1, 0.01, 0.001)


class ScoreColumnClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose decision function is its single input column (times ``sign``).

    It lets scikit-learn's calibrators, written for classifiers, calibrate a bare score;
    ``sign=-1`` reads a score that falls as the positive class becomes likelier; ``center``
    is subtracted from it and ``scale`` divides it (a logistic map's intercept and slope take
    any shift and scale, the solver's iterates do not).
    """

    def __init__(self, sign=1, scale=1.0, center=0.0):
        self.sign = sign
        self.scale = scale
        self.center = center

    def fit(self, scores, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, scores):
        column = np.asarray(scores, dtype=float).reshape(len(scores), -1)[:, 0]
        return self.sign * (column - self.center) / self.scale

    def predict(self, scores):
        return self.classes_[(self.decision_function(scores) > 0).astype(int)]


#: a label that is a signaling NaN (pandas cannot test it for missing): what to do instead
_Y_SNAN = (
    "an observed label on every row; got the signaling NaN {}. Leave out the rows without a "
    "label, in X, y and teacher_scores alike."
)


def check_binary_labels(
    y, n_samples: int, *, missing: str | None = None, needed_for: str = "calibration"
) -> np.ndarray:
    """Binary labels, one per row of X: the one check of an observed outcome ``y``.

    ``missing`` is the message for ``y=None``; ``needed_for`` names what needs the labels in
    the other messages.
    """
    if y is None:
        raise ValueError(
            missing
            or "calibration needs the observed labels: pass y to fit (binary outcome), or set "
            "calibration=None."
        )
    check_signaling_nans(y, "y", _Y_SNAN)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({n_samples}); got shape {y.shape}."
        )
    bad = 0
    if y.dtype.kind == "f":
        bad = int(np.sum(~np.isfinite(y)))
    elif y.dtype.kind == "O":
        bad = int(np.sum(pd.isna(y)))
    if bad:
        raise ValueError(
            f"y must hold an observed label on every row; got {bad} missing (NaN, None, pd.NA) "
            f"or infinite value(s) of {n_samples}. Leave out the rows without a label, in X, y "
            "and teacher_scores alike."
        )
    try:
        classes = np.unique(y)
    except TypeError:  # labels numpy cannot sort: of mixed types (0 and "1")
        examples = {}
        for value in y:
            examples.setdefault(type(value).__name__, value)
        shown = ", ".join(f"{value!r} ({kind})" for kind, value in list(examples.items())[:4])
        raise TypeError(
            f"y must hold labels of one type; got labels of {len(examples)} types: {shown} "
            "(from files read apart?). Convert them to one type (e.g. y.astype(str)) if they "
            "name the same outcomes."
        ) from None
    # the labels as written, not numpy's repr of them (1, not np.int64(1))
    shown = [c.item() if isinstance(c, np.generic) else c for c in classes[:2]]
    if classes.size == 1:
        raise ValueError(f"y has a single class ({shown[0]!r}): {needed_for} needs both outcomes.")
    kind = type_of_target(y, input_name="y", raise_unknown=True)
    if kind == "continuous" and classes.size == 2:
        # two values, but fractional ones: scikit-learn takes them for a continuous target
        raise ValueError(
            f"{needed_for} needs binary labels y; got a 'continuous' target: its 2 distinct "
            f"values, {shown[0]!r} and {shown[1]!r}, are not whole numbers, and scikit-learn "
            "reads fractional labels as a continuous target, not as two classes. Encode the "
            "outcome as 0 and 1, as booleans or as strings."
        )
    if kind != "binary":
        raise ValueError(
            f"{needed_for} needs binary labels y; got a {kind!r} target with "
            f"{classes.size} distinct values (a binary outcome has two classes)."
        )
    return y


class SplineCalibrator(ClassifierMixin, BaseEstimator):
    """A smooth monotone map of a score to P(y = 1 | score) (Tan et al.'s calibration).

    A logistic regression of the label on a cubic B-spline basis of the score (knots at the
    score's quantiles) plus the score itself; its L2 penalty is raised step by step until the
    fitted log-odds are monotone in the direction ``sign`` over the score's range. The score's
    own column is scaled up so that the penalty hardly touches it: the smoothest fit is a
    logistic (sigmoid) map, which is monotone.

    Parameters
    ----------
    sign : {1, -1}, default=1
        The direction of the map: increasing (1) or decreasing (-1) in the score.
    n_knots : int, default=6
        Knots of the spline basis (fewer when the score has fewer distinct values).

    Attributes
    ----------
    C_ : float
        The inverse penalty of the fit kept (``inf`` for the plain logistic map, or for the
        flat map at the overall rate when the logistic map runs against ``sign``).
    classes_ : ndarray of shape (2,)
    """

    def __init__(self, sign=1, n_knots=6):
        self.sign = sign
        self.n_knots = n_knots

    def _features(self, scores):
        scores = (np.asarray(scores, dtype=float).reshape(-1) - self.center_) / self.scale_
        columns = [100.0 * scores[:, None]]
        if self.spline_ is not None:
            columns.append(self.spline_.transform(scores[:, None]))
        return np.hstack(columns)

    def fit(self, scores, y):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import SplineTransformer

        scores = np.asarray(scores, dtype=float).reshape(-1)
        distinct = np.unique(scores)
        if distinct.size < 2:
            raise ValueError(
                "calibration='spline' needs a score with at least 2 distinct values; got "
                f"{distinct.size}."
            )
        # two values (a fold of a score with a rare third one): the logistic map on the score
        # alone, which passes through both rates, is the smooth monotone map (n_knots < 2)
        self.classes_ = np.unique(y)
        # mean and spread computed on the score over its largest magnitude: the squares of a
        # score of 1e200 overflow, those of 1e-200 underflow (the map had come out flat)
        magnitude = float(np.max(np.abs(scores))) or 1.0
        unit = scores / magnitude
        self.center_ = float(np.mean(unit)) * magnitude
        self.scale_ = float(np.std(unit)) * magnitude or 1.0
        n_knots = int(min(self.n_knots, distinct.size - 1))
        self.spline_ = None
        if n_knots >= 2:
            standard = (scores[:, None] - self.center_) / self.scale_
            self.spline_ = SplineTransformer(
                n_knots=n_knots, degree=3, knots="quantile", extrapolation="linear"
            ).fit(standard)
        grid = np.linspace(distinct[0], distinct[-1], 256)
        for strength in (*(_SPLINE_STRENGTHS if self.spline_ is not None else ()), None):
            if strength is None:  # the logistic map on the score alone
                self.spline_, strength = None, np.inf
            model = LogisticRegression(
                C=1e6 if np.isinf(strength) else strength, tol=1e-10, max_iter=10000
            )
            self.model_ = model.fit(self._features(scores), y)
            self.C_ = float(strength)
            logit = self.model_.decision_function(self._features(grid))
            if np.all(self.sign * np.diff(logit) >= -1e-9):
                break
        else:
            # the logistic map's slope takes the rows' direction, against ``sign`` (a weak
            # fall read as a risk score): the likelihood is concave, so the best map monotone
            # in ``sign``'s direction is flat, at the overall rate
            rate = float(np.mean(np.asarray(y) == self.classes_[1]))
            self.model_.coef_[:] = 0.0
            self.model_.intercept_[:] = np.log(rate) - np.log1p(-rate)
        return self

    def predict_proba(self, scores):
        return self.model_.predict_proba(self._features(scores))

    def predict(self, scores):
        return self.classes_[self.predict_proba(scores).argmax(axis=1)]


class IsotonicCalibrator(ClassifierMixin, BaseEstimator):
    """Isotonic regression of a binary label on a score, each step read as an empirical logit.

    Isotonic regression pools the scores into steps and estimates each step's rate as its
    share of positives, k / m. A step at the end of the score's range is often *pure* (all
    positives or none), so its rate is exactly 1 or 0 and its log-odds are infinite: only a
    clip would bound them, whatever the step's size, and a handful of rows would then carry
    log-odds of +-8 or more. Here each step's rate is the empirical logit's ``(k + 1/2) /
    (m + 1)`` (Haldane and Anscombe's correction), so a pure step of m rows reads
    ``log(2 m + 1)`` log-odds: the evidence it holds. The corrected rates are pooled again
    (weighted by the steps' sizes) where the correction would break the order of two small
    steps, so the map stays monotone. Between the steps' scores the rate is interpolated
    linearly, and it is constant beyond the ends, as :class:`~sklearn.isotonic.IsotonicRegression`
    does with ``out_of_bounds="clip"``.

    Parameters
    ----------
    sign : {1, -1}, default=1
        The direction of the map: increasing (1) or decreasing (-1) in the score.

    Attributes
    ----------
    X_thresholds_ : ndarray
        The scores at which the rate is set (those of
        :class:`~sklearn.isotonic.IsotonicRegression`).
    y_thresholds_ : ndarray
        The corrected rate at each of them.
    raw_thresholds_ : ndarray
        The isotonic rate (share of positives of its step) at each of them.
    classes_ : ndarray of shape (2,)
    """

    def __init__(self, sign=1):
        self.sign = sign

    def fit(self, scores, y):
        from sklearn.isotonic import IsotonicRegression

        scores = np.asarray(scores, dtype=float).reshape(-1)
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(
                f"y must hold two classes to calibrate a score; got {self.classes_.size}."
            )
        positive = (np.asarray(y) == self.classes_[1]).astype(float)
        increasing = self.sign > 0
        isotonic = IsotonicRegression(increasing=increasing, out_of_bounds="clip")
        # fitted on the score times a power of two (exact) that brings it near 1: scikit-learn
        # merges scores closer than an absolute 1e-15, which pooled a score of 1e-200 into
        # one step
        exponent = int(np.frexp(np.max(np.abs(scores)))[1]) if scores.size else 0
        fitted = isotonic.fit(np.ldexp(scores, -exponent), positive).predict(
            np.ldexp(scores, -exponent)
        )
        # The steps, in score order: a new step wherever the fitted rate changes. Pooled rates
        # are means, so one step can come out a unit in the last place apart across its rows;
        # two different steps differ by at least 1 / n^2.
        order = np.argsort(scores, kind="stable")
        starts = np.abs(np.diff(fitted[order])) > 0.5 / scores.size**2
        step_sorted = np.concatenate([[0], np.cumsum(starts)])
        sizes = np.bincount(step_sorted).astype(float)
        positives = np.bincount(step_sorted, weights=positive[order])
        corrected = (positives + 0.5) / (sizes + 1.0)
        # where the correction would reverse two small steps, pool them again (by size)
        index = np.arange(sizes.size)
        corrected = (
            IsotonicRegression(increasing=increasing)
            .fit(index, corrected, sample_weight=sizes)
            .predict(index)
        )
        self.X_thresholds_ = np.ldexp(isotonic.X_thresholds_, exponent)
        self.raw_thresholds_ = isotonic.y_thresholds_
        # every threshold is a training score, and rows of equal score share one step
        where = np.searchsorted(scores[order], self.X_thresholds_)
        self.y_thresholds_ = corrected[step_sorted[np.minimum(where, scores.size - 1)]]
        return self

    def raw_rate(self, scores):
        """The isotonic rate (share of positives of the step) at ``scores``, uncorrected."""
        scores = np.asarray(scores, dtype=float).reshape(-1)
        return np.interp(scores, self.X_thresholds_, self.raw_thresholds_)

    def predict_proba(self, scores):
        scores = np.asarray(scores, dtype=float).reshape(-1)
        probability = np.interp(scores, self.X_thresholds_, self.y_thresholds_)
        return np.column_stack([1.0 - probability, probability])

    def predict(self, scores):
        return self.classes_[self.predict_proba(scores).argmax(axis=1)]


#: A score is read as falling only when its rank correlation with the label is negative at
#: this p-value: one unrelated to the label falls by chance half the time, and a falling
#: reading reverses every shape of the mimic (measured: on 2,000 rows of a score independent
#: of y, the sign alone read 44% of them as falling; at p < 0.01, 0.55%).
CLEAR_FALL_P = 0.01


def score_trend(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's correlation of ``scores`` with ``y`` and its two-sided p-value; (0, 1) for a
    constant score or label."""
    if np.ptp(scores) == 0 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return 0.0, 1.0
    test = spearmanr(scores, y)
    if not np.isfinite(test.statistic):
        return 0.0, 1.0
    return float(test.statistic), float(test.pvalue)


def score_direction(scores: np.ndarray, y: np.ndarray) -> int:
    """-1 when the score clearly falls as the positive label becomes likelier (Spearman's
    correlation negative at p < :data:`CLEAR_FALL_P`), else +1: a score is read as a risk
    score, rising with the label, unless the data show otherwise."""
    return _direction(*score_trend(scores, y))


def _direction(rho: float, p_value: float) -> int:
    return -1 if rho < 0 and p_value < CLEAR_FALL_P else 1


#: The start of the warning given when a score falls as the event becomes likelier (a pattern
#: for ``warnings.filterwarnings``: an audit gives it once, naming the label's own value, and
#: silences it in each of its models' calibrations).
SCORE_FALLS_WARNING = r"the score falls as P\(y = "


def warn_if_score_falls(
    scores, positive, method, event, *, stacklevel=2
) -> tuple[int, tuple[float, float] | None]:
    """The direction of ``scores`` (see :func:`score_direction`), with a ``UserWarning`` when it
    clearly falls as the event becomes likelier, and one when it falls too weakly to be read as
    falling. For ``"sigmoid"``, whose fitted slope follows the data either way, the direction
    is the sign of the rank correlation, and a fall is always said.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        A one-dimensional score.
    positive : ndarray of shape (n_samples,)
        Whether each row's label is the event (bool or 0/1).
    method : str
        The calibration, named in the warning.
    event : object
        The event's label value, named in the warning as ``P(y = event)``: the label's own
        value (``'repaid'``), not an internal code, where the caller knows it.
    stacklevel : int, default=2
        As for :func:`warnings.warn`, counted from the caller of this function.

    Returns
    -------
    sign : int
        +1 or -1.
    weak_fall : tuple of (float, float) or None
        The rank correlation and its p-value where the score falls too weakly to be read as
        falling (the second warning was given): read as rising all the same. None otherwise.
    """
    rho, p_value = score_trend(scores, positive)
    # the logistic map's fitted slope takes the data's direction whatever the sign: the sign
    # only names it, so the sign of the correlation names it best
    sign = (-1 if rho < 0 else 1) if method == "sigmoid" else _direction(rho, p_value)
    if isinstance(event, np.generic):
        event = event.item()  # 'P(y = 1)', not 'P(y = np.int64(1))'
    if sign < 0:
        warnings.warn(
            f"the score falls as P(y = {event!r}) rises (rank correlation with y {rho:.2f}, "
            f"p = {p_value:.2g}): the {method} calibration maps it with a decreasing function"
            + (
                " (read as increasing, it would be flattened to a constant)."
                if method in ("isotonic", "temperature")
                else "."
            ),
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    elif rho < 0 and method != "sigmoid":
        # a monotone map must be given a direction: a weak fall is not evidence enough to
        # reverse every shape, so the score is read as a risk score
        warnings.warn(
            f"the score falls as P(y = {event!r}) rises only weakly (rank correlation with y "
            f"{rho:.2f}, p = {p_value:.2g}): not a clear fall, so the {method} calibration "
            "reads it as rising, as a risk score (a falling score would be mapped to nearly "
            "a constant). If the score falls by design, negate it before the audit.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        return sign, (float(rho), float(p_value))
    return sign, None


def calibration_direction(calibrator) -> int:
    """The direction (+1 or -1) a fitted calibrator reads its score in."""
    if isinstance(calibrator, (SplineCalibrator, IsotonicCalibrator)):
        return calibrator.sign
    reader = calibrator.estimator
    return getattr(getattr(reader, "estimator", reader), "sign", 1)


def fit_calibrator(scores: np.ndarray, y: np.ndarray, method: str, sign: int = 1):
    """A calibrator of ``scores`` (1-D) against binary ``y``, fitted on all rows given;
    ``sign=-1`` fits a map that falls as the score rises."""
    if method == "spline":
        return SplineCalibrator(sign=sign).fit(scores, y)
    if method == "isotonic":
        return IsotonicCalibrator(sign=sign).fit(scores, y)
    # the logistic map a + b * score is the same map of any multiple of the score, and so is
    # temperature scaling's b * score, but a slope of 1e9 (a score in units of 1e-9) is beyond
    # their solvers (temperature's b is bounded to [e^-10, e^10]), which leave the map flat
    # or saturated: the score is read over its largest magnitude. The logistic map's intercept
    # also takes any shift of the score, so for it the score is centred first (a score of
    # 1e10 + s read over its magnitude varied by 1e-10, and the map came out flat); temperature
    # scaling's b * score has no intercept: its score is read as given
    center = float(np.median(scores)) if method == "sigmoid" else 0.0
    scale = float(np.max(np.abs(scores - center))) or 1.0
    reader = ScoreColumnClassifier(sign=sign, scale=scale, center=center)
    reader = reader.fit(scores.reshape(-1, 1), y)
    reader = FrozenEstimator(reader)
    # A frozen reader's out-of-fold scores are its in-sample scores, so the folds only have to
    # exist: unstratified 2-fold splits do, however few rows a class has (the default stratified
    # 5-fold split fails or warns below 5 rows per class).
    folds = KFold(n_splits=2) if len(y) >= 2 else None
    return CalibratedClassifierCV(reader, method=method, cv=folds).fit(scores.reshape(-1, 1), y)


def _deviance(y: np.ndarray, probability: np.ndarray) -> float:
    probability = np.clip(probability, 1e-12, 1 - 1e-12)
    return float(-2.0 * np.sum(y * np.log(probability) + (1 - y) * np.log1p(-probability)))


def _logistic_line(scores: np.ndarray, y: np.ndarray, intercept: bool) -> np.ndarray:
    """Maximum-likelihood ``P(y = 1) = sigmoid(a + b score)`` (``a = 0`` without intercept:
    temperature scaling), unpenalised; the fitted probabilities."""
    design = scores.reshape(-1, 1)
    line = LogisticRegression(C=np.inf, fit_intercept=intercept).fit(design, y)
    return line.predict_proba(design)[:, 1]


def _line_units(scores: np.ndarray, intercept: bool) -> np.ndarray:
    """The score in units the line's solver can follow, with the same lines through it: centred
    (with an intercept) and divided by its spread. Unpenalised, a line ``a + b score`` fits any
    shift and multiple of the score alike, but not a solver's iterates: on a score of 1e4 + s,
    1e-6 s or 1e9 s the fit stopped flat or short (computed over the largest magnitude, so
    that squares of 1e200 do not overflow)."""
    magnitude = float(np.max(np.abs(scores))) or 1.0
    unit = scores / magnitude
    if intercept:
        unit = unit - np.mean(unit)
    spread = float(np.sqrt(np.mean(unit**2)))
    return unit / spread if spread > 0 else unit


def _form_gap(scores: np.ndarray, y: np.ndarray, method: str, sign: int) -> tuple[float, object]:
    """Deviance of the one-curve map less that of the isotonic map, on the same rows."""
    intercept = method != "temperature"
    fitted = _logistic_line(_line_units(scores, intercept), y, intercept=intercept)
    isotonic = IsotonicCalibrator(sign=sign).fit(scores, y).predict_proba(scores)[:, 1]
    return _deviance(y, fitted) - _deviance(y, isotonic), fitted


def parametric_form_p_value(
    scores: np.ndarray,
    y: np.ndarray,
    method: str,
    sign: int = 1,
    n_resamples=99,
    seed=None,
    records=None,
) -> float:
    """Does a one-curve map (``"sigmoid"``: ``a + b score`` in log-odds; ``"temperature"``)
    miss the score's relation to the outcome? A parametric bootstrap of the deviance the
    isotonic map (any monotone relation) gains over it: outcomes are drawn from the fitted
    one-curve map, both maps refitted, and the p-value is the share of draws whose gain is at
    least the observed one (``(1 + k) / (1 + n_resamples)``). ``y`` holds 0 and 1.
    ``records``: one identifier per row; the rows of a record share one random draw (a record
    entered twice is drawn once, as its copies' outcomes are one).

    The null hypothesis is the map's form: P(y = 1 | score) is *some* logistic line in the
    score (through 0 for ``"temperature"``), fitted here by unpenalised maximum likelihood on
    the score centred and scaled (the same lines, in units the solver follows). It is not the
    map the calibration fits: scikit-learn's ``"sigmoid"`` is Platt's fit, on targets smoothed
    to ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, a line too, whose slope and intercept
    differ slightly; the test asks whether any line fits, not whether that one's parameters
    do. On 500 null worlds of 600 rows whose outcomes follow a logistic line of the score, it
    rejected at 0.01 in 7 (0.014, 95% interval [0.006, 0.029]) and at 0.05 in 27 (0.054,
    [0.036, 0.078]) with 199 draws (``benchmarks/README.md``)."""
    y = np.asarray(y, dtype=float)
    observed, fitted = _form_gap(scores, y, method, sign)
    rng = np.random.default_rng(seed)
    codes = None
    if records is not None:
        _, codes = np.unique(np.asarray(records), return_inverse=True)
    exceed = 0
    drawn = 0
    while drawn < n_resamples:
        uniform = rng.random(y.size) if codes is None else rng.random(codes.max() + 1)[codes]
        sample = (uniform < fitted).astype(float)
        if sample.min() == sample.max():
            continue  # one class: no map to fit (a rare draw)
        gap, _ = _form_gap(scores, sample, method, sign)
        exceed += gap >= observed
        drawn += 1
    return (1 + exceed) / (1 + n_resamples)


def calibrated_probability(calibrator, scores: np.ndarray, n_calibration: int) -> np.ndarray:
    """P(positive class | score) from a fitted calibrator, clipped away from 0 and 1 by half a
    count of the ``n_calibration`` rows it was fitted on (the empirical-logit correction), so
    that its log-odds stay finite."""
    probability = calibrator.predict_proba(scores.reshape(-1, 1))[:, 1]
    floor = 0.5 / (n_calibration + 1)
    return np.clip(probability, floor, 1 - floor)


def cross_fit_calibration(
    scores: np.ndarray,
    y: np.ndarray,
    method: str,
    cv: int,
    random_state=None,
    sign=None,
    event=None,
    groups=None,
):
    """Out-of-fold calibrated probabilities of ``scores``, and a calibrator fitted on all rows.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        The teacher's score (any monotone scale: decile, log-odds, margin).
    y : ndarray of shape (n_samples,)
        Binary labels.
    method : {"isotonic", "sigmoid", "temperature", "spline"}
        ``"isotonic"`` fits an :class:`IsotonicCalibrator`, ``"spline"`` a
        :class:`SplineCalibrator`; the others are
        :class:`~sklearn.calibration.CalibratedClassifierCV`'s.
    cv : int
        Number of stratified folds (at least 2).
    random_state : int, RandomState or None
        Shuffles the folds.
    sign : {1, -1} or None
        The score's direction, decided elsewhere (an audit decides it once on all its rows,
        and its refits on subsets use it); None decides it here, with its warnings.
    event : object, optional
        The event's label as the warnings name it (``P(y = event)``), when ``y`` holds codes
        of the labels (0/1); by default ``y``'s second class.
    groups : ndarray of shape (n_samples,), optional
        Record identifiers: a record's rows are kept in one fold
        (:class:`~sklearn.model_selection.StratifiedGroupKFold`), so that no row's probability
        is made from another row of its record.

    Returns
    -------
    probability : ndarray of shape (n_samples,)
        P(y = positive | score), each row from a calibrator that did not see it.
    calibrator : IsotonicCalibrator, CalibratedClassifierCV or SplineCalibrator
        Fitted on every row; used for new data. A score that falls as the positive label
        becomes likelier is calibrated reversed (:func:`calibration_direction` gives -1), with a
        ``UserWarning``.
    """
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < cv:
        raise ValueError(
            f"calibration is cross-fitted over cv={cv} stratified folds, so y needs at least {cv} "
            f"rows of each class; class {classes[counts.argmin()].item()!r} has {counts.min()}. Lower "
            "cv, or use calibration=None."
        )
    if method == "spline" and np.unique(scores).size < 3:
        raise ValueError(
            "calibration='spline' needs a score with at least 3 distinct values; got "
            f"{np.unique(scores).size}. Use calibration='sigmoid' or 'isotonic'."
        )
    if sign is None:
        named = classes[1] if event is None else event
        # the warning points at the user's fit, however many of the package's frames lie between
        sign, _ = warn_if_score_falls(
            scores, y == classes[1], method, named, stacklevel=caller_stacklevel()
        )
    probability = np.empty(scores.shape[0])
    if groups is None:
        folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    else:
        constraint = (
            f"records small enough to split into cv={cv} calibration folds, each fitted on "
            "rows of both classes"
        )
        n_records = np.unique(groups).size
        if n_records < cv:
            fail("groups", constraint, f"{n_records} record(s)")
        folds = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=random_state)
    for train, test in folds.split(scores.reshape(-1, 1), y, groups):
        if groups is not None and np.unique(y[train]).size < 2:
            fail("groups", constraint, "a fold whose other folds hold rows of one class")
        if method == "spline" and np.unique(scores[train]).size < 2:
            # the score's other values all lie in this held-out fold (rare values)
            value = scores[train][0].item()
            raise ValueError(
                f"calibration='spline' is fitted on {cv - 1} of cv={cv} folds, and the rows "
                f"outside one fold hold a single score value ({value!r}): the score's other "
                f"values lie on too few rows ({int(np.sum(scores != value))} of "
                f"{scores.size}). Use calibration='sigmoid' or 'isotonic', or lower cv."
            )
        fold_calibrator = fit_calibrator(scores[train], y[train], method, sign)
        probability[test] = calibrated_probability(fold_calibrator, scores[test], train.size)
    return probability, fit_calibrator(scores, y, method, sign)


#: Above this share of rows in score bins whose observed rate's 99% interval excludes the
#: calibration map, fitting warns that the map misses the outcome rates.
MISFIT_WARNING_SHARE = 0.2
#: ... and the largest gap between the map and an observed rate exceeds this (at tens of
#: thousands of rows a miss of 0.03 is significant, and too small to change a reading).
MISFIT_WARNING_GAP = 0.05
#: Start of that warning (a regular expression), for callers that said it once.
MISFIT_WARNING = r"the calibration map \(calibration=.*\) misses the observed outcome rates"


def calibration_misfit(calibrator, scores, y01) -> tuple[float, float]:
    """The share of rows in score bins (20 of equal count) whose observed outcome rate's 99%
    interval excludes the fitted map's probability, and the largest gap between the two."""
    from sklearn_distill.stats import binned_rate

    scores = np.asarray(scores, dtype=float)
    probability = calibrator.predict_proba(scores.reshape(-1, 1))[:, 1]
    table = binned_rate(scores, y01, n_bins=20, confidence=0.99, predicted=probability)
    outside = (table["predicted"] < table["low"]) | (table["predicted"] > table["high"])
    share = float(table.loc[outside, "count"].sum() / table["count"].sum())
    return share, float((table["predicted"] - table["rate"]).abs().max())


def misfit_message(calibration, share: float, gap: float) -> str:
    """The warning that the map of ``calibration`` misses the observed outcome rates."""
    return (
        f"the calibration map (calibration={calibration!r}) misses the observed outcome rates: "
        f"{100 * share:.0f}% of the rows lie in score bins whose observed rate's 99% interval "
        f"excludes the map (largest gap {gap:.2f}). Shapes and rules' probabilities are read "
        "on that map's scale. "
        + (
            "'temperature' only rescales a score that is a log-odds and 'sigmoid' fits one "
            "logistic curve; calibration='isotonic' or 'spline' follows any monotone relation "
            "of score and outcome."
            if calibration in ("temperature", "sigmoid")
            else "The outcome rate does not follow the score monotonically there: look at the "
            "calibration picture (plot_calibration())."
        )
    )
