"""Cross-fitted calibration of a one-dimensional teacher score against binary labels.

The score is mapped to P(y = 1 | score) with scikit-learn's own calibrators
(:class:`~sklearn.calibration.CalibratedClassifierCV` around a frozen estimator that reads the
score column), fitted on K - 1 folds and applied to the held-out fold, so that no row's
calibrated value has seen its own label.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.multiclass import type_of_target

CALIBRATIONS = (None, "isotonic", "sigmoid", "temperature")


class ScoreColumnClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose decision function is its single input column.

    It lets scikit-learn's calibrators, written for classifiers, calibrate a bare score.
    """

    def fit(self, scores, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, scores):
        return np.asarray(scores, dtype=float).reshape(len(scores), -1)[:, 0]

    def predict(self, scores):
        return self.classes_[(self.decision_function(scores) > 0).astype(int)]


def check_binary_labels(y, n_samples: int) -> np.ndarray:
    """Labels for calibration: exactly two classes, ``n_samples`` of them."""
    if y is None:
        raise ValueError(
            "calibration needs the observed labels: pass y to fit (binary outcome), or set "
            "calibration=None."
        )
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({n_samples}); got shape {y.shape}."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values.")
    classes = np.unique(y)
    if classes.size == 1:
        raise ValueError(f"y has a single class ({classes[0]!r}): calibration needs both outcomes.")
    kind = type_of_target(y)
    if kind != "binary":
        raise ValueError(f"calibration needs binary labels y; got a {kind!r} target.")
    return y


def fit_calibrator(scores: np.ndarray, y: np.ndarray, method: str) -> CalibratedClassifierCV:
    """A calibrator of ``scores`` (1-D) against binary ``y``, fitted on all rows given."""
    reader = FrozenEstimator(ScoreColumnClassifier().fit(scores.reshape(-1, 1), y))
    # A frozen reader's out-of-fold scores are its in-sample scores, so the folds only have to
    # exist: unstratified 2-fold splits do, however few rows a class has (the default stratified
    # 5-fold split fails or warns below 5 rows per class).
    folds = KFold(n_splits=2) if len(y) >= 2 else None
    return CalibratedClassifierCV(reader, method=method, cv=folds).fit(scores.reshape(-1, 1), y)


def calibrated_probability(
    calibrator: CalibratedClassifierCV, scores: np.ndarray, n_calibration: int
) -> np.ndarray:
    """P(positive class | score) from a fitted calibrator, clipped away from 0 and 1 by half a
    count of the ``n_calibration`` rows it was fitted on (the empirical-logit correction), so
    that its log-odds stay finite."""
    probability = calibrator.predict_proba(scores.reshape(-1, 1))[:, 1]
    floor = 0.5 / (n_calibration + 1)
    return np.clip(probability, floor, 1 - floor)


def cross_fit_calibration(
    scores: np.ndarray, y: np.ndarray, method: str, cv: int, random_state=None
) -> tuple[np.ndarray, CalibratedClassifierCV]:
    """Out-of-fold calibrated probabilities of ``scores``, and a calibrator fitted on all rows.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        The teacher's score (any monotone scale: decile, log-odds, margin).
    y : ndarray of shape (n_samples,)
        Binary labels.
    method : {"isotonic", "sigmoid", "temperature"}
        Passed to :class:`~sklearn.calibration.CalibratedClassifierCV`.
    cv : int
        Number of stratified folds (at least 2).
    random_state : int, RandomState or None
        Shuffles the folds.

    Returns
    -------
    probability : ndarray of shape (n_samples,)
        P(y = positive | score), each row from a calibrator that did not see it.
    calibrator : CalibratedClassifierCV
        Fitted on every row; used for new data.
    """
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < cv:
        raise ValueError(
            f"calibration is cross-fitted over cv={cv} stratified folds, so y needs at least {cv} "
            f"rows of each class; class {classes[counts.argmin()].item()!r} has {counts.min()}. Lower "
            "cv, or use calibration=None."
        )
    probability = np.empty(scores.shape[0])
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    for train, test in folds.split(scores.reshape(-1, 1), y):
        fold_calibrator = fit_calibrator(scores[train], y[train], method)
        probability[test] = calibrated_probability(fold_calibrator, scores[test], train.size)
    return probability, fit_calibrator(scores, y, method)
