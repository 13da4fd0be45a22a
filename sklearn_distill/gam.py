"""DistilledGAM: a transparent additive model that mimics a black-box teacher's score.

:class:`DistillerBase` holds what every student kind shares (reading the teacher, calibration,
temperature, query augmentation, the frozen teacher, ``predict_proba`` and ``fidelity``);
:class:`DistilledGAM` and :class:`~sklearn_distill.DistilledTree` add only how their student is
fitted and read.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from sklearn_distill import _teacher
from sklearn_distill._calibration import (
    CALIBRATIONS,
    MISFIT_WARNING_GAP,
    MISFIT_WARNING_SHARE,
    calibrated_probability,
    calibration_misfit,
    check_binary_labels,
    cross_fit_calibration,
    misfit_message,
)
from sklearn_distill._data import (
    CATEGORICAL,
    NUMERIC,
    boolean_columns,
    caller_stacklevel,
    categories_as_labels,
    category_text,
    check_category_texts,
    check_feature_count,
    check_frame_columns,
    check_label_cells,
    check_numbers_read_as_text,
    check_numeric_columns,
    check_same_order,
    check_signaling_nans,
    column_kinds,
    column_values,
    concat_rows,
    fingerprint,
    holds_booleans,
    is_explainable_boosting,
    is_frame,
    numeric_column,
    record_codes,
    take_rows,
    text_number_columns,
    warn_empty_columns,
    warn_names_read_alike,
    warn_numbers_from_text,
    warn_text_categories,
    warn_unseen_categories,
    warn_values_equal_as_text,
)
from sklearn_distill._defaults import DEFAULT_STUDENT_PARAMS as DEFAULT_STUDENT_PARAMS
from sklearn_distill._defaults import default_student as default_student
from sklearn_distill._validation import (
    check_choice,
    check_integer,
    check_n_jobs,
    check_real,
    check_regressor,
    check_sample_weight,
    check_seed,
    fail,
)
from sklearn_distill.shapes import shape_functions as _ebm_shape_functions

#: Targets whose spread lies outside this range, or whose offset exceeds the upper bound times
#: their spread, are standardised before the student sees them (and the prediction is mapped
#: back): boosting and squared errors on 1e40 or 1e-200 lose every digit.
_UNIT_SCALE_RANGE = (1e-6, 1e6)

#: The start of the warnings ``predict`` gives for values the fitting rows did not hold (a
#: pattern for ``warnings.filterwarnings``).
NEW_VALUES_WARNING = r"X column .* (holds categories not seen at fit|has \d+ missing value)"

#: The start of interpret's warning, when an Explainable Boosting Machine is fitted on data with
#: missing values, that its own visualisations do not show them (a pattern for
#: ``warnings.filterwarnings``). The package's tables and pictures show the missing-value bin
#: (value NaN, label ``"missing"``), so the package silences that warning, and only that one,
#: around its own EBM fits.
INTERPRET_MISSING_VALUES_WARNING = "Missing values detected"

#: The start of the warning ``fit`` gives when plain scores of a callable teacher (or given
#: ``teacher_scores``) all lie in [0, 1], as probabilities do (plain text: ``re.escape`` it
#: for ``warnings.filterwarnings``).
PROBABILITY_SCORES_WARNING = "the teacher's scores all lie in [0, 1], as probabilities do"


def generate_queries(X, n_new: int, random_state) -> object:
    """Synthetic rows for querying the teacher: each is a real row of ``X`` in which every
    feature, with probability 1/2, takes the value of another random row.

    Mixing rows this way (a simplified form of the MUNGE scheme of Bucilua et al., 2006) keeps
    every value realistic for its own feature while breaking the features' correlations, so an
    additive student sees how the teacher responds to one feature with the others held apart.
    """
    rng = check_random_state(random_state)
    n_samples = _num_samples(X)
    base = rng.randint(n_samples, size=n_new)
    donor = rng.randint(n_samples, size=n_new)
    n_features = X.shape[1]
    swap = rng.random_sample((n_new, n_features)) < 0.5
    if not is_frame(X):
        return np.where(swap, X[donor], X[base])
    generated = X.iloc[base].reset_index(drop=True)
    donors = X.iloc[donor].reset_index(drop=True)
    for k, column in enumerate(generated.columns):
        generated.loc[swap[:, k], column] = donors.loc[swap[:, k], column]
    return generated


def _scale_of(target: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-column offset and one common spread of a target, computed without overflow."""
    columns = target.reshape(target.shape[0], -1)
    magnitude = float(np.max(np.abs(columns)))
    if magnitude == 0:
        return np.zeros(columns.shape[1]), 1.0
    unit = columns / magnitude
    offset = unit.mean(axis=0)
    spread = float(np.sqrt(np.mean((unit - offset) ** 2))) or 1.0  # one row: no spread
    return offset * magnitude, spread * magnitude


def _r2(target, prediction, sample_weight=None) -> float:
    """R^2 averaged over columns (as ``sklearn.metrics.r2_score``), on standardised values so
    that neither 1e200 nor 1e-200 scores overflow or underflow (R^2 is unchanged when target
    and prediction are shifted and scaled alike)."""
    target = np.asarray(target, dtype=float).reshape(len(target), -1)
    prediction = np.asarray(prediction, dtype=float).reshape(len(target), -1)
    offset, scale = _scale_of(target)
    target, prediction = (target - offset) / scale, (prediction - offset) / scale
    if sample_weight is not None:
        return float(r2_score(target, prediction, sample_weight=sample_weight))
    residual = np.sum((target - prediction) ** 2, axis=0)
    total = np.sum((target - target.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))
    return float(np.mean(r2))


def _rmse(target, prediction) -> float:
    target = np.asarray(target, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    scale = float(np.max(np.abs(target))) or 1.0
    return float(scale * np.sqrt(np.mean(((target - prediction) / scale) ** 2)))


def _check_numeric_target(y) -> None:
    """``y`` mimicked as a score must hold numbers: a label (a string) is refused, naming y."""
    check_signaling_nans(y, "y", "a number on every row (the score the student mimics); got {}.")
    try:
        array = np.asarray(y)
    except (TypeError, ValueError):  # ragged: check_array says why
        return
    if array.dtype.kind in "biufc":
        return
    label = next((v for v in array.ravel().tolist() if isinstance(v, str | bytes)), None)
    if label is not None:
        raise TypeError(
            f"y must be numbers (with no teacher and no teacher_scores, y is the score the "
            f"student mimics); got the label {label!r}. To mimic a classifier, pass it as the "
            "teacher, or its scores as teacher_scores (with the labels as y for calibration)."
        )


#: The parameters that say how the teacher is read (recorded at fit as ``fit_settings_``).
_TARGET_SETTINGS = ("response", "calibration", "temperature", "proba_clip")


def clear_fitted_state(estimator) -> None:
    """Delete what an earlier ``fit`` learnt (every attribute whose name ends in ``_``), so that
    a refit leaves nothing of it behind: scikit-learn's convention that ``fit`` starts afresh.
    Analyses run after a fit and stored on the estimator (``missing_feature_test_``,
    ``stability_``) go too, and ``feature_names_in_`` when the new X has no names."""
    for name in [k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")]:
        delattr(estimator, name)


class FrozenTeacherMixin:
    """Keeps a meta-estimator's ``teacher`` frozen, as :class:`sklearn.frozen.FrozenEstimator`
    does: ``clone`` shares the fitted teacher instead of cloning it (a clone would be unfitted),
    and the teacher's own parameters are neither listed by ``get_params`` nor settable through
    ``set_params`` (``teacher__C=...`` would change the user's fitted teacher in place)."""

    def __sklearn_clone__(self):
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        return type(self)(teacher=teacher, **{k: clone(v, safe=False) for k, v in params.items()})

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        return {key: value for key, value in params.items() if not key.startswith("teacher__")}

    def set_params(self, **params):
        nested = sorted(key for key in params if key.startswith("teacher__"))
        if nested:
            raise ValueError(
                f"the teacher is frozen: its parameters cannot be set through "
                f"{type(self).__name__}.set_params (got {nested}); pass another fitted "
                "teacher as teacher=... instead."
            )
        own = self.get_params(deep=False)
        for name in sorted({key.split("__", 1)[0] for key in params if "__" in key}):
            if name not in own:
                continue  # scikit-learn names the unknown parameter
            if params.get(name, own[name]) is None:  # the estimator may come along
                nested = sorted(key for key in params if key.startswith(f"{name}__"))
                raise ValueError(
                    f"{name} is None (a default built at fit), so {nested} cannot be set through "
                    f"{type(self).__name__}.set_params; pass the estimator with those settings "
                    f"as {name}=... instead."
                )
        return super().set_params(**params)


def _label_position(labels, feature) -> int | None:
    """The position of the column labelled ``feature``: the same text for a string, the same
    integer (of any integer type) for an integer label, the same value otherwise; never a
    boolean, and ``1.0`` does not name a column labelled ``1``."""
    if isinstance(feature, bool | np.bool_):
        return None
    for position, label in enumerate(labels):
        if isinstance(label, str) or isinstance(feature, str):
            if isinstance(label, str) and isinstance(feature, str) and label == feature:
                return position
            continue
        if isinstance(label, bool | np.bool_):
            continue
        if isinstance(label, numbers.Integral) != isinstance(feature, numbers.Integral):
            continue
        try:
            if bool(label == feature):
                return position
        except (TypeError, ValueError):  # labels numpy cannot compare as one truth value
            continue
    return None


def _read_as_text(value) -> bool:
    """Whether a category is a number (not a bool) or a str: one that an Explainable Boosting
    Machine reads as its :func:`~sklearn_distill._data.category_text` at fit and at predict
    alike (a column of booleans alone reads as 0 and 1 at predict, as True and False among
    other values)."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, str | numbers.Real)


#: Start of _warn_if_not_distributions' warning (a regular expression).
NOT_DISTRIBUTIONS_WARNING = r".* are read as class probabilities \(one column per class\), but"


def _warn_if_not_distributions(scores: np.ndarray, name: str, stacklevel: int = 5) -> str | None:
    """Warn when class probabilities (one column per class) have rows that do not sum to 1
    (one-vs-rest or multi-label sigmoids): they are read as a softmax's, and the student
    mimics each row renormalised, which is not the teacher's. Returns the rows' count and
    sums as the warning gives them (None when it did not warn)."""
    sums = scores.sum(axis=1)
    # probabilities rounded to d decimals (all on that grid) sum to within half a unit of
    # the d-th decimal per class of 1
    tolerance = 1e-3
    for decimals in (1, 2, 3):
        if np.allclose(scores, np.round(scores, decimals), rtol=0, atol=1e-9):
            tolerance = max(tolerance, 0.5 * 10.0**-decimals * scores.shape[1])
            break
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        rows = (
            f"{int(off.sum())} of {len(sums)} rows do not sum to 1 (sums from {sums.min():.3g} "
            f"to {sums.max():.3g})"
        )
        warnings.warn(
            f"{name} are read as class probabilities (one column per class), but "
            f"{rows}: one-vs-rest or multi-label scores? The student mimics each "
            "row as a distribution (renormalised), which is not what these scores say. Pass "
            "the teacher's softmax probabilities, or one class's score alone.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return rows
    return None


class DistillerBase(FrozenTeacherMixin, RegressorMixin, BaseEstimator):
    """What every distilled student shares: the teacher is read (or its scores taken), mapped
    to the target the student regresses on (log-odds for classifiers, calibrated log-odds with
    ``calibration``, divided by ``temperature``), extended by query augmentation and
    subsampled; the student is fitted on that target (standardised when its scale is far from
    one) and read back by ``predict``, ``predict_proba`` and ``fidelity``.

    Subclasses store the shared parameters (``teacher``, ``response``, ``calibration``,
    ``random_state``, ``temperature``, ``cv``, ``monotone_constraints``, ``augmentation``,
    ``max_samples``, ``proba_clip``) and implement :meth:`_fit_student` and
    :meth:`_predict_student`.
    """

    #: The calibrated score's direction when a caller decided it on more rows than this fit
    #: sees (a CompareAudit's refits on thirds and bootstrap samples); None decides it here.
    _calibration_sign: int | None = None
    #: The event's label as warnings name it, when the labels given to fit are codes of it
    #: (CompareAudit's 0/1): ``None`` names y's own second class.
    _event_label = None
    #: Record identifiers of the rows given to fit (a CompareAudit's ``groups``, or the row a
    #: bootstrap refit's copy was drawn from): the calibration's cross-fitting keeps each
    #: record's rows in one fold; None splits by rows.
    _calibration_groups = None

    # ------------------------------------------------------------------ subclass hooks
    def _check_student_params(self):
        """Validate the subclass's own parameters (called at the start of fit)."""

    def _fit_student(self, transfer, target, constraints, seed):
        """Fit the student on ``transfer`` against ``target`` (standardised, 2-D)."""
        raise NotImplementedError

    def _predict_student(self, X):
        """The student's standardised output on checked ``X``, of shape (n_samples, n_outputs)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_seed("random_state", self.random_state)
        check_real("temperature", self.temperature, minimum=0, exclusive_minimum=True)
        check_integer("cv", self.cv, minimum=2)
        if self.augmentation is not None:
            check_real("augmentation", self.augmentation, minimum=0)
        if self.max_samples is not None:
            check_integer("max_samples", self.max_samples, minimum=2)
        check_real(
            "proba_clip",
            self.proba_clip,
            minimum=0,
            maximum=0.5,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        self._check_student_params()

    def _match_frame_columns(self, X, *, reset):
        """Read frame columns by name, also when the names are not strings (scikit-learn
        records and checks string names only): the columns of fit, in fit's order."""
        if reset:
            named = all(isinstance(c, str) for c in X.columns)
            self._frame_columns_ = None if named else list(X.columns)
            return X
        columns = getattr(self, "_frame_columns_", None)
        if columns is None or list(X.columns) == columns:
            return X
        if sorted(map(repr, X.columns)) != sorted(map(repr, columns)):
            raise ValueError(
                f"X must have the columns the model was fitted with, {columns!r}; got "
                f"{list(X.columns)!r}."
            )
        return X[columns]

    def _check_X(self, X, *, reset):
        if X is None:
            fail("X", "an array-like or DataFrame of shape (n_samples, n_features)", X, TypeError)
        if reset:
            check_feature_count(X)
        if is_frame(X):
            check_frame_columns(X)
            if any(isinstance(c, str) and type(c) is not str for c in X.columns):
                # numpy's str_ names (a frame built from an array of names) read as the text
                # they are: scikit-learn records and checks names only of type str
                X = X.set_axis([str(c) if isinstance(c, str) else c for c in X.columns], axis=1)
            X = self._match_frame_columns(X, reset=reset)
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError("X has 0 rows: a student needs data to mimic the teacher on.")
            # the columns select_dtypes(include="number") selects, read without it: pandas'
            # own test warns of a 'category' of booleans held as objects (a deprecation)
            numeric = X.iloc[
                :,
                [
                    index
                    for index, dtype in enumerate(X.dtypes)
                    if pd.api.types.is_numeric_dtype(dtype) and not holds_booleans(dtype)
                ],
            ]
            if numeric.size:
                infinite = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan)).any(axis=0)
                if infinite.any():
                    names = [repr(name) for name in numeric.columns[infinite]]
                    indices = X.columns.get_indexer(numeric.columns[infinite])
                    raise ValueError(
                        f"X contains infinity (column{'s' if len(names) > 1 else ''} "
                        f"{', '.join(names[:5])}); {self._infinity_advice(indices, reset=reset)}."
                    )
        else:
            if reset:
                self._frame_columns_ = None  # no frame: features are read by position
            dtype = getattr(X, "dtype", None)
            if dtype is not None and np.issubdtype(dtype, np.complexfloating):
                # "Complex data not supported" is scikit-learn's wording, which its checks expect
                raise ValueError(
                    f"X must be real numbers or labels (Complex data not supported); got dtype "
                    f"{dtype}."
                )
            if dtype is not None and dtype.kind in "US":
                # text cells are labels, read as in an object array (the tags declare strings)
                X = np.asarray(X, dtype=object)
            allow_nan = self.__sklearn_tags__().input_tags.allow_nan
            finite = "allow-nan" if allow_nan else True
            X = check_array(X, dtype=None, ensure_all_finite=finite, input_name="X")
            if X.dtype.kind == "O":
                # keep strings (categories) for the student, but reject non-scalar cells early
                check_label_cells(X.ravel(), "X")
            elif X.dtype.kind not in "biuf":
                X = check_array(X, ensure_all_finite=finite, input_name="X")
            validate_data(self, X, reset=reset, skip_check_array=True)
        if reset:
            self.feature_kinds_ = column_kinds(X)
            warn_numbers_from_text(text_number_columns(X, self.feature_kinds_))
        else:
            check_numeric_columns(X, self.feature_kinds_)
            # refuses text that reads as infinity
            text_number_columns(
                X, self.feature_kinds_, advice=lambda k: self._infinity_advice([k], reset=False)
            )
        return X

    def _infinity_advice(self, indices, *, reset):
        """What the message refusing infinite values in the columns ``indices`` advises."""
        return "use NaN for missing values"

    def _feature_label(self, index):
        names = getattr(self, "feature_names_in_", None)
        return names[index] if names is not None else index

    def _resolve_constraints(self, n_features):
        if not self.monotone_constraints:
            return None
        if not isinstance(self.monotone_constraints, dict):
            raise TypeError(
                "monotone_constraints must be a dict {feature: +1 or -1}; got "
                f"{self.monotone_constraints!r}."
            )
        # a frame's columns by their labels (names that are not strings too: scikit-learn
        # records string names only), an array's by position
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = getattr(self, "_frame_columns_", None) or []
        names = list(names)
        constraints = [0] * n_features
        for feature, direction in self.monotone_constraints.items():
            position = _label_position(names, feature)
            if position is not None:
                index = position
            elif (
                not names
                and isinstance(feature, int | np.integer)
                and not isinstance(feature, bool)
                and 0 <= feature < n_features
            ):
                index = int(feature)
            else:
                known = names or f"column indices 0..{n_features - 1}"
                raise ValueError(
                    f"monotone_constraints must name features of X ({known}); got {feature!r}."
                )
            if isinstance(direction, bool) or direction not in (-1, 0, 1):
                raise ValueError(
                    f"monotone_constraints[{feature!r}] must be +1, -1 or 0; got {direction!r}."
                )
            if direction and self.feature_kinds_[index] == CATEGORICAL:
                raise ValueError(
                    f"monotone_constraints[{feature!r}] must be 0: {feature!r} is categorical "
                    f"and its categories have no order; got {direction!r}. Drop the "
                    "constraint, or encode the feature as numbers if its labels are ordered."
                )
            constraints[index] = int(direction)
        return constraints

    # ------------------------------------------------------------------ targets
    def _raw_scores(
        self, X, teacher_scores, n_samples, *, name="teacher_scores", classes=None, at_fit=False
    ):
        if teacher_scores is not None:
            # matched to X's rows by position, as at fit: a reordered Series is refused
            check_same_order(X, teacher_scores, name)
            if self._is_classifier_like:
                # class columns labelled by class are read by label (fit: y's classes)
                known = classes if at_fit else getattr(self, "classes_", None)
                teacher_scores = _teacher.align_score_columns(teacher_scores, known, name=name)
            if at_fit:
                # a frame's labels, in the order read: the same labels in another order later
                # (fidelity, score, teacher_target) are read by them, not by position
                self._score_columns_ = (
                    list(teacher_scores.columns)
                    if isinstance(teacher_scores, pd.DataFrame)
                    else None
                )
            else:
                teacher_scores = _teacher.columns_as_at_fit(
                    teacher_scores, getattr(self, "_score_columns_", None)
                )
            scores = _teacher.check_scores(teacher_scores, n_samples, name=name)
            _teacher.check_probabilities(
                scores, self.response_, self.response, self.teacher, name=name
            )
            if self.response_ == "predict_proba" and scores.ndim == 2 and at_fit:
                _warn_if_not_distributions(scores, name)
            return scores
        scores = _teacher.query_teacher(self.teacher, X, self.response_)
        scores = _teacher.check_scores(scores, n_samples, name="the teacher's scores")
        _teacher.check_class_columns(self.teacher, scores, self.response_)
        return scores

    def _calibration_input(self, scores, response=None):
        """The one-dimensional score the calibrator reads (log-odds for class outputs);
        ``response`` is the resolved way the teacher is read (default: the fitted
        ``response_``), for a reading before the fit."""
        response = self.response_ if response is None else response
        if scores.ndim != 1 and response == "predict" and scores.shape[1] == 2:
            source = "teacher_scores" if self.teacher is None else "the teacher's scores"
            raise ValueError(
                f"{source} have 2 columns (a binary classifier's class scores?), which "
                f"response={self.response!r} reads as two plain scores, while calibration="
                f"{self.calibration!r} needs one score per row; got shape {scores.shape}. For "
                "class scores pass response='predict_proba' (or 'decision_function' for "
                "margins), or give the event's column alone."
            )
        if scores.ndim != 1 and (response == "predict" or scores.shape[1] > 2):
            raise ValueError(
                f"calibration needs a one-dimensional teacher score; got shape {scores.shape}."
            )
        if response == "predict":
            return scores
        return _teacher.scores_to_target(scores, response, 1.0, self.proba_clip)

    def _to_target(self, scores):
        if self.calibration is not None:
            probability = calibrated_probability(
                self.calibrator_, self._calibration_input(scores), self.n_calibration_
            )
            return _teacher.scores_to_target(
                probability, "predict_proba", self.temperature, self.proba_clip
            )
        if self.response_ == "predict":
            return scores
        return _teacher.scores_to_target(scores, self.response_, self.temperature, self.proba_clip)

    @property
    def _is_classifier_like(self):
        # once fitted, as fitted (set_params(calibration=None) leaves a calibrated student)
        calibration = getattr(self, "fit_settings_", {}).get("calibration", self.calibration)
        return calibration is not None or self.response_ in _teacher.CLASSIFIER_RESPONSES

    def _check_class_scores(self):
        if not hasattr(self, "response_") or not self._is_classifier_like:
            raise AttributeError(
                "predict_proba is offered once fitted, for classifier teachers or calibrated "
                "scores only; this model mimics plain scores."
            )
        return True

    def _targets(self, X, y, teacher_scores, rng, groups=None):
        """The target on the rows of ``X`` (before augmentation and subsampling); ``groups``
        (record codes, or None) keep a record's rows in one calibration fold."""
        n_samples = _num_samples(X)
        name = type(self).__name__
        for argument, values in (("y", y), ("teacher_scores", teacher_scores)):
            _teacher.refuse_column_name(values, argument)
        self.calibrator_ = None
        if self.augmentation and self.teacher is None:
            raise ValueError(
                "augmentation queries the teacher on generated rows: it needs a teacher, "
                "not only teacher_scores or y."
            )
        if self.teacher is None and teacher_scores is None:
            if y is None:
                raise ValueError(
                    f"{name} requires y to be passed, but the target y is None: with no "
                    "teacher and no teacher_scores, y is what the student mimics."
                )
            if self.calibration is not None:
                raise ValueError(
                    "calibration maps a teacher's score to P(y | score): pass teacher_scores "
                    "or a teacher along with the labels y."
                )
            if self.response_ != "predict":
                raise ValueError(
                    f"response={self.response!r} needs a teacher or teacher_scores; y alone is "
                    "mimicked as plain scores (response='auto')."
                )
            _check_numeric_target(y)
            # NaN and inf are refused by check_scores below, naming how many
            y = check_array(
                y, ensure_2d=False, input_name="y", dtype="numeric", ensure_all_finite=False
            )
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            if y.shape[0] != n_samples:
                raise ValueError(
                    f"y has {y.shape[0]} rows but X has {n_samples}: lengths must match."
                )
            return _teacher.check_scores(y.astype(float), n_samples, name="y")
        if y is not None and _num_samples(y) != n_samples:
            raise ValueError(
                f"y has {_num_samples(y)} rows but X has {n_samples}: lengths must match."
            )
        classes = getattr(self.teacher, "classes_", None)
        named = None  # the classes a frame's column labels name, when they are classes_
        if classes is None and isinstance(teacher_scores, pd.DataFrame):
            # the classes classes_ will hold: y's labels when they name every column, else
            # the columns' own labels when they name classes (y's among them), else the
            # numbers 0..k-1; read by them here as fidelity(), score() and teacher_target()
            # read them after fit (columns labelled [1, 0], or ["zeta", "alpha", "mid"],
            # without y had been read by position here and by label there: the same frame,
            # or the same labels in another order, gave another target)
            n_columns = teacher_scores.shape[1]
            classes = None if y is None else _teacher.sorted_labels(y)
            if classes is None or len(classes) != n_columns:
                named = _teacher.classes_named_by_columns(teacher_scores)
                if (
                    named is not None
                    and classes is not None
                    and not set(np.asarray(classes).tolist()) <= set(named.tolist())
                ):
                    named = None  # y names other classes: numbered, as y's warning says
                classes = np.arange(n_columns) if named is None else named
        scores = self._raw_scores(X, teacher_scores, n_samples, classes=classes, at_fit=True)
        if (
            teacher_scores is not None
            and self.teacher is not None
            and not getattr(self, "_teacher_scores_checked", False)  # by the audit, once
        ):
            # the one point where scores of another black box can be told: later queries of
            # the teacher (fidelity, score, augmentation) would read it
            queried = self._raw_scores(X, None, n_samples)
            _teacher.check_scores_match_teacher(scores, queried, self.teacher)
        if self.calibration is not None:
            labels = check_binary_labels(y, n_samples)
            probability, self.calibrator_ = cross_fit_calibration(
                self._calibration_input(scores),
                labels,
                self.calibration,
                self.cv,
                rng,
                sign=self._calibration_sign,
                event=self._event_label,
                groups=self._calibration_groups if groups is None else groups,
            )
            self.n_calibration_ = n_samples
            self.classes_ = self.calibrator_.classes_
            # a map of the wrong form (temperature on deciles: P = 0.5 everywhere) would put
            # every rule or shape on a wrong scale, as the audit warns
            event = np.asarray(labels) == self.classes_[1]
            share, gap = calibration_misfit(
                self.calibrator_, self._calibration_input(scores), event.astype(int)
            )
            if share > MISFIT_WARNING_SHARE and gap > MISFIT_WARNING_GAP:
                warnings.warn(
                    misfit_message(self.calibration, share, gap),
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
            return _teacher.scores_to_target(
                probability, "predict_proba", self.temperature, self.proba_clip
            )
        target = self._to_target(scores)
        if self.response_ == "predict_proba":
            self._saturated_share_ = _teacher.warn_if_saturated(scores, self.proba_clip)
        self._warn_if_probabilities(scores)
        if self._is_classifier_like:
            n_classes = 2 if target.ndim == 1 else target.shape[1]
            labels = np.arange(n_classes)
            if named is not None and len(named) == n_classes:
                labels = named
            elif y is not None and self.teacher is None:
                # precomputed class scores: the classes are the labels y names, when they match
                observed = np.unique(np.asarray(y))
                if observed.size == n_classes:
                    labels = observed
                else:
                    warnings.warn(
                        f"y holds {observed.size} labels for the {n_classes} classes of "
                        "teacher_scores, so the classes are numbered 0.."
                        f"{n_classes - 1} (classes_) rather than named by y.",
                        UserWarning,
                        stacklevel=4,
                    )
            self.classes_ = getattr(self.teacher, "classes_", labels)
        return target

    def _warn_if_probabilities(self, scores):
        """Warn when plain scores whose source is unknown (a callable teacher, or
        ``teacher_scores``) look like probabilities: they are mimicked on their own scale,
        not as log-odds. An estimator says what it returns, so its ``predict`` is trusted."""
        if self.response_ != "predict":
            return
        if self.teacher is not None and _teacher.is_estimator_teacher(self.teacher):
            return
        if scores.min() < 0 or scores.max() > 1 or np.unique(scores).size <= 2:
            return
        source = "teacher(X)" if self.teacher is not None else "teacher_scores"
        if scores.ndim == 2:
            # one column per class, each row summing to 1: class probabilities
            if not np.allclose(scores.sum(axis=1), 1.0, atol=1e-6):
                return
            source += ", each row summing to 1"
        warnings.warn(
            f"{PROBABILITY_SCORES_WARNING} ({source}), and are mimicked "
            "as given, on the probability scale: an additive model of a probability is not one "
            "of its log-odds. If they are probabilities of a class, pass "
            "response='predict_proba' (they are then read as log-odds).",
            UserWarning,
            stacklevel=4,
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, *, teacher_scores=None, groups=None):
        """Query the teacher on ``X`` (or read ``teacher_scores``) and fit the student.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The transfer set. DataFrames may hold categorical columns and missing values.
            A categorical column with nearly one level per row (more levels than half its
            non-missing rows, and more than 50), or one of text that reads as numbers
            (``"$43,165"``, ``"12,5"``, ``"7%"``), is warned about: as a category it carries
            little information. An Explainable Boosting student is fitted alike whatever the
            order of an unordered ``category`` column's categories, and whether it holds
            unused ones: as on the same values as text (an ``object`` column). An ordered
            ``category`` is an ordinal feature to it, in its categories' order.
        y : array-like of shape (n_samples,), default=None
            Observed labels, needed by ``calibration``; without a teacher or
            ``teacher_scores``, the target the student mimics.
        teacher_scores : array-like of shape (n_samples,) or (n_samples, n_classes), default=None
            Precomputed teacher outputs on ``X``, read as ``response`` says; used instead of
            querying the teacher. A DataFrame's class columns labelled by the classes are read
            by label in any order, and columns numbered ``0..k-1`` in another order by their
            numbers (``pd.DataFrame(proba)[[1, 0]]``); other columns by position, column ``k``
            for the ``k``-th class in sorted order. Without a classifier teacher, the classes
            (``classes_``) are ``y``'s labels when they are as many as the columns, else the
            columns' own labels, sorted, when they name classes (``["zeta", "alpha", "mid"]``,
            with ``y``'s labels among them or no ``y``), else the numbers ``0..k-1``. A frame
            given later (:meth:`fidelity`, :meth:`score`, :meth:`teacher_target`) with the
            column labels of this one in another order is read by them, for plain outputs too. Given beside a teacher, they are compared with the teacher's
            own output on ``X`` (one query), and refused when they differ beyond rounding
            (on some row by more than 1% of the teacher's range of scores, or half the step of
            the decimals they are written to where that is at most 5% of the range): later
            queries of the teacher (:meth:`fidelity`, :meth:`score`) would read another black
            box.
        groups : array-like of shape (n_samples,), default=None
            Record identifiers, one per row of ``X`` (any hashable values; none missing):
            rows with the same identifier (the same person or case entered twice) are kept in
            one fold of the cross-fitted ``calibration``
            (:class:`~sklearn.model_selection.StratifiedGroupKFold` instead of
            :class:`~sklearn.model_selection.StratifiedKFold`), so that no row's target is made
            by a calibrator that saw its record's label through a copy; a record split
            between folds makes the calibrated targets optimistic. Pass the ``groups`` given to
            :meth:`CompareAudit.fit <sklearn_distill.CompareAudit.fit>` to calibrate as the
            audit's mimic does (:func:`~sklearn_distill.report.write_audit_report` refuses a
            calibrated ``rule_tree`` fitted without the audit's records). Needs at least
            ``cv`` records, and each fold's other folds must hold rows of both classes. Only
            the calibration reads them: with ``calibration=None`` nothing is fitted out of
            fold, and ``groups`` is ignored with a ``UserWarning``. Matched to ``X``'s rows by
            position, as ``y`` is. With metadata routing
            (``sklearn.set_config(enable_metadata_routing=True)``), request them with
            ``set_fit_request(groups=True)``.

        Returns
        -------
        self : object
            The fitted model.
        """
        clear_fitted_state(self)
        self._check_params()
        _teacher.check_teacher(self.teacher)
        check_same_order(X, y, "y")  # teacher_scores: where they are read (_raw_scores)
        check_same_order(X, groups, "groups")
        X = self._check_X(X, reset=True)
        n_samples = _num_samples(X)
        groups = record_codes(groups, n_samples)
        if groups is not None and self.calibration is None:
            warnings.warn(
                "groups has no effect with calibration=None: record identifiers keep a "
                "record's rows in one of the calibration's cross-fitting folds, and without a "
                "calibration the student is fitted on every row, nothing out of fold.",
                UserWarning,
                stacklevel=2,
            )
        # a digest of the records the calibration folds kept together (the report compares it
        # with an audit's), None when they split by rows
        self._fit_records_ = (
            None if groups is None or self.calibration is None else fingerprint(groups)
        )
        # a digest of the fitting rows: the report prints a rule tree as the audit's only when
        # it was fitted on the audit's rows
        self._fit_fingerprint_ = fingerprint(X)
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max) if self.random_state is not None else None
        self.response_ = _teacher.resolve_response(self.teacher, self.response)
        # what fitting warned of the teacher's scores, for an audit's report
        self._labels_mimicked_ = _teacher.warn_if_labels(
            self.teacher, self.response, self.response_, stacklevel=2
        )
        self._saturated_share_ = 0.0
        _teacher.warn_if_margins(
            self.teacher, self.response, self.response_, self.calibration, stacklevel=2
        )
        constraints = self._resolve_constraints(self.n_features_in_)
        target = self._targets(X, y, teacher_scores, rng, groups)
        if float(self.temperature) != 1.0 and not self._is_classifier_like:
            warnings.warn(
                f"temperature={self.temperature!r} has no effect: it divides log-odds (a "
                "classifier teacher's probabilities or margins, or a score mapped by "
                "calibration), and this teacher's predict scores are mimicked as they are.",
                UserWarning,
                stacklevel=2,
            )
        warn_text_categories(X, self.feature_kinds_, stacklevel=2)
        warn_empty_columns(X, stacklevel=2)
        warn_names_read_alike(X, stacklevel=2)

        transfer, transfer_target = X, target
        # augmentation * n_samples rows: none when that rounds to 0 (a teacher refuses 0 rows)
        n_new = round(float(self.augmentation) * n_samples) if self.augmentation else 0
        if n_new > 0:
            generated = generate_queries(X, n_new, rng)
            generated_scores = self._raw_scores(generated, None, n_new)
            transfer = concat_rows(X, generated)
            transfer_target = np.concatenate([target, self._to_target(generated_scores)])

        n_transfer = _num_samples(transfer)
        if self.max_samples is not None and n_transfer > self.max_samples:
            rows = np.sort(rng.choice(n_transfer, size=self.max_samples, replace=False))
            transfer, transfer_target = take_rows(transfer, rows), transfer_target[rows]

        columns = transfer_target.reshape(transfer_target.shape[0], -1)
        self.n_outputs_ = columns.shape[1]
        offset, scale = _scale_of(columns)
        low, high = _UNIT_SCALE_RANGE
        if low <= scale <= high and np.all(np.abs(offset) <= high * max(scale, 1.0)):
            offset, scale = np.zeros(self.n_outputs_), 1.0
        self.target_offset_, self.target_scale_ = offset, scale
        self._fit_student(transfer, (columns - offset) / scale, constraints, seed)
        # how the teacher was read: set_params after fit changes the parameters, not the
        # fitted student, which teacher_target, fidelity and score measure against it
        self.fit_settings_ = {name: getattr(self, name) for name in _TARGET_SETTINGS}
        # the teacher itself, by identity: another one set since would be read in its place
        self._fit_teacher_ = self.teacher
        self._after_fit(X, target, transfer)
        return self

    def _check_fit_settings(self, method: str) -> None:
        """Refuse to read the teacher otherwise than at fit (see ``fit_settings_``)."""
        settings = getattr(self, "fit_settings_", None)
        if settings is None:
            return
        changed = [
            f"{name} {old!r} at fit, {getattr(self, name)!r} now"
            for name, old in settings.items()
            if getattr(self, name) != old
        ]
        teacher = getattr(self, "_fit_teacher_", self.teacher)
        if self.teacher is not teacher:

            def called(model):
                return "None" if model is None else type(model).__name__

            changed.append(
                f"teacher {called(teacher)} at fit, another object now ({called(self.teacher)})"
            )
        if changed:
            raise ValueError(
                f"{method} reads the teacher as the fitted student mimics it, but set_params "
                f"changed how it is read since fit ({'; '.join(changed)}). Fit again with the "
                "new settings, or set them back."
            )

    def _after_fit(self, X, target, fitted):
        """Hook run once the student is fitted, with the rows of ``X``, their target and the
        rows the student was fitted on (``X``'s, generated ones with ``augmentation``, a
        subsample with ``max_samples``)."""

    def _warn_if_subsample_missed_categories(self, X, fitted, known, names, consequence) -> None:
        """Warn when the rows the student was fitted on (``max_samples``' subsample) lack
        categories that rows of X hold (``known``: column index -> the categories the fitted
        rows held; ``names``: the columns' names); ``consequence``: what the student is called
        and what becomes of those rows."""
        if fitted is X or not known:
            return
        missed = []
        for index, categories in known.items():
            values = pd.Series(column_values(X, index), dtype=object)
            lacking = values.notna() & ~values.isin(list(categories))
            if lacking.any():
                label = names[index]
                missed.append(
                    f"{label!r} ({lacking.sum()} rows, {values[lacking].nunique()} categories)"
                )
        if missed:
            warnings.warn(
                f"the {self.max_samples} rows max_samples drew to fit the {consequence[0]} lack "
                f"categories that other rows of X hold: {', '.join(missed)}. Those rows are "
                f"{consequence[1]}, whatever the teacher scores them; raise max_samples to fit "
                "on them.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    # ------------------------------------------------------------------ prediction
    def predict(self, X):
        """The student's mimic of the teacher's score (log-odds for classifier teachers or
        calibrated scores; one column per class for more than two classes).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self, "target_scale_")
        X = self._check_X(X, reset=False)
        outputs = self._predict_student(X) * self.target_scale_ + self.target_offset_
        return outputs[:, 0] if self.n_outputs_ == 1 else outputs

    @available_if(_check_class_scores)
    def predict_proba(self, X):
        """Class probabilities from the mimicked log-odds (sigmoid, or softmax for more than
        two classes); for a ``temperature`` above 1 these are the softened probabilities.

        Only for classifier teachers (``predict_proba`` or ``decision_function``) or
        calibrated scores.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return _teacher.logits_to_probabilities(self.predict(X))

    def teacher_target(self, X, teacher_scores=None):
        """The teacher's score on ``X`` on the scale the student mimics (log-odds for
        classifiers, calibrated log-odds with ``calibration``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        teacher_scores : array-like, default=None
            Raw teacher outputs on ``X``; needed when there is no teacher to query.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self, "target_scale_")
        self._check_fit_settings("teacher_target()")
        if teacher_scores is None and self.teacher is None:
            raise ValueError("teacher_scores are needed: this model has no teacher to query on X.")
        # checked as predict checks it: the teacher gets the columns of fit, in fit's order (a
        # frame's columns in another order are refused, or read by name when not named by
        # strings), as it read them at fit
        X = self._check_X(X, reset=False)
        n_samples = _num_samples(X)
        scores = self._raw_scores(X, teacher_scores, n_samples)
        if (
            teacher_scores is not None
            and self.teacher is not None
            and not getattr(self, "_teacher_scores_checked", False)  # by the audit, once
        ):
            # checked as fit checks them: labels given in their place (fidelity(X, y)) would
            # otherwise be measured silently instead of the teacher
            queried = self._raw_scores(X, None, n_samples)
            _teacher.check_scores_match_teacher(scores, queried, self.teacher, at_fit=False)
        target = self._to_target(scores)
        if target.reshape(n_samples, -1).shape[1] != self.n_outputs_:
            # another number of outputs than fit's: R^2 would broadcast one against the other
            name = "teacher_scores" if teacher_scores is not None else "the teacher's scores"
            k = self.n_outputs_
            if self._is_classifier_like:
                expected = (
                    "one score per row, or two class columns"
                    if k == 1
                    else f"{k} columns, one per class of classes_"
                )
            else:
                expected = "one score per row" if k == 1 else f"{k} columns, one per output"
            raise ValueError(f"{name} must have {expected}, as at fit; got shape {scores.shape}.")
        return target

    def fidelity(self, X, teacher_scores=None):
        """How closely the student reproduces the teacher on ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Ideally rows not used in fitting.
        teacher_scores : array-like, default=None
            Raw teacher outputs on ``X`` (as given to :meth:`fit`); by default the teacher is
            queried.

        Returns
        -------
        dict
            ``"r2"`` and ``"rmse"`` of the student against the teacher's target
            (:meth:`teacher_target`). For a target of several columns (more than two classes,
            or outputs) ``"r2"`` is the mean of the columns' R^2 (as
            ``sklearn.metrics.r2_score``) and ``"rmse"`` the root of the mean squared gap over
            every row and column, pooled (not the mean of the columns' RMSEs, which is at most
            it). For classifier teachers or calibrated scores also
            ``"agreement"`` (share of rows where both predict the same class) and ``"auc"``
            (ROC AUC of the student's probabilities against the teacher's predicted class;
            NaN when the teacher predicts one class only on these rows, and, for more than two
            classes, when it predicts fewer than all of them: the one-vs-rest AUC of a class
            the teacher never predicts here is undefined).
        """
        check_is_fitted(self, "target_scale_")
        self._check_fit_settings("fidelity()")
        target = self.teacher_target(X, teacher_scores)
        prediction = self.predict(X)
        result = {"r2": _r2(target, prediction), "rmse": _rmse(target, prediction)}
        if self._is_classifier_like:
            teacher_labels = _teacher.target_labels(target)
            result["agreement"] = float(
                np.mean(teacher_labels == _teacher.target_labels(prediction))
            )
            probabilities = _teacher.logits_to_probabilities(prediction)
            present = np.unique(teacher_labels)
            if present.size < 2:
                result["auc"] = float("nan")
            elif probabilities.shape[1] == 2:
                result["auc"] = float(roc_auc_score(teacher_labels, probabilities[:, 1]))
            else:
                result["auc"] = float(
                    roc_auc_score(
                        teacher_labels,
                        probabilities[:, present],
                        multi_class="ovr",
                        labels=present,
                    )
                    if present.size == probabilities.shape[1]
                    else np.nan
                )
        return result

    def score(self, X, y=None, sample_weight=None, *, teacher_scores=None):
        """R^2 of the student against the teacher on ``X``; used by ``GridSearchCV`` and
        ``cross_val_score``.

        The teacher's side is, in this order: ``teacher_scores`` when given (raw teacher
        outputs on ``X``, read as at fit: log-odds for class outputs, calibrated with
        ``calibration``); the teacher, queried on ``X``, when there is one; else ``y``, taken
        as the very target the student mimics (a model fitted on ``y`` alone, or on plain
        scores with ``response="auto"`` or ``"predict"`` and no calibration).

        With precomputed scores and no teacher, ``GridSearchCV(model, grid).fit(X,
        teacher_scores=s)`` cannot score its candidates: scikit-learn passes ``teacher_scores``
        to ``fit`` only, so every score fails (NaN, with a warning) and the first candidate
        wins. The supported ways:

        * give the teacher itself (a fitted estimator, or a callable): clones share it and
          ``score`` queries it;
        * for plain scores, pass them as ``y``: ``GridSearchCV(model, grid).fit(X, s)``
          mimics ``y`` on each training fold and scores against it on each test fold;
        * for class probabilities or a calibrated score, route ``teacher_scores`` to both
          methods: ``sklearn.set_config(enable_metadata_routing=True)``, then
          ``model.set_fit_request(teacher_scores=True).set_score_request(teacher_scores=True)``
          and ``GridSearchCV(model, grid).fit(X, y, teacher_scores=s)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            The target itself, when there is no teacher and no ``teacher_scores``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: finite, non-negative, not all zero.
        teacher_scores : array-like, default=None
            Raw teacher outputs on ``X``, as given to :meth:`fit`.

        Returns
        -------
        float
        """
        check_is_fitted(self, "target_scale_")
        self._check_fit_settings("score()")
        if sample_weight is not None:
            check_same_order(X, sample_weight, "sample_weight")
            sample_weight = check_sample_weight(sample_weight, _num_samples(X))
        if teacher_scores is None and self.teacher is None:
            if y is None:
                raise ValueError(
                    "y or teacher_scores must be given to score a model that has no teacher to "
                    "query; got neither. Pass the teacher's scores on X as teacher_scores=... "
                    "(plain scores, fitted with no calibration, may be passed as y); for "
                    f"GridSearchCV see {type(self).__name__}.score's docstring."
                )
            if self._is_classifier_like:
                raise ValueError(
                    "teacher_scores must be given to score this model, which has no teacher "
                    "to query: it mimics log-odds (of class outputs, or of a calibrated score), "
                    "which y cannot stand for; got y alone. Pass the teacher's scores on X as "
                    "teacher_scores=..."
                )
            # matched to X's rows by position, as at fit: a reordered Series is refused
            check_same_order(X, y, "y")
            _check_numeric_target(y)
            y = check_array(
                y, ensure_2d=False, dtype="numeric", input_name="y", ensure_all_finite=False
            )
            if not np.all(np.isfinite(y)):
                raise ValueError(
                    f"y contains {int(np.sum(~np.isfinite(y)))} NaN or infinite values; all must "
                    "be finite."
                )
            prediction = self.predict(X)
            if y.shape[0] != prediction.shape[0]:
                raise ValueError(
                    f"y has {y.shape[0]} rows but X has {prediction.shape[0]}: lengths must match."
                )
            if y.reshape(len(y), -1).shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y must have {self.n_outputs_} column(s), one per output as at fit; got "
                    f"shape {y.shape}."
                )
            return _r2(y, prediction, sample_weight)
        return _r2(self.teacher_target(X, teacher_scores), self.predict(X), sample_weight)


class DistilledGAM(DistillerBase):
    """A generalized additive model that mimics a teacher's score (model distillation).

    The teacher, a black box, is read on the *transfer set* ``X`` (or its scores are given);
    the student, by default an Explainable Boosting Machine, regresses on those scores. Its
    shape functions then show how the teacher uses each feature (Tan et al., 2018).

    Values the fitting rows did not hold: at predict time (``predict``, ``predict_proba``,
    ``fidelity``, ``score``) a category not seen at fit (integer and text categories compared
    as text for an Explainable Boosting student, which reads them so: ``"1"`` is the ``1`` of
    fit; ``"True"`` is not the ``True`` of fit), and a
    missing value (``NaN``, ``None``, ``pd.NA``) in a column that had none at fit, numeric,
    categorical or boolean, are predicted with a ``UserWarning`` naming the column: the
    student learnt nothing for them (an Explainable Boosting Machine gives them a
    contribution of 0 in that term, as a rule).
    :class:`~sklearn_distill.DistilledTree` warns about unseen categories too, and refuses
    the missing numbers (none of its rules covers them).

    Parameters
    ----------
    teacher : fitted estimator, callable or None, default=None
        The black box. A fitted scikit-learn estimator is read with the method chosen by
        ``response``; a callable maps X to scores. With ``None``, pass ``teacher_scores`` to
        :meth:`fit`, or the model mimics ``y`` itself. The teacher is never refitted nor
        modified, and a clone of this model shares it (as with
        :class:`sklearn.frozen.FrozenEstimator`), so it survives ``clone`` and ``GridSearchCV``.
        A grid over ``teacher`` itself clones its values (unfitted copies, refused at fit):
        wrap each fitted teacher as ``FrozenEstimator(teacher)`` there.
        It is queried on the X this model receives: in a ``Pipeline``, after the steps before
        it, so keep the teacher's own preprocessing inside the teacher.
    response : {"auto", "predict", "predict_proba", "decision_function"}, default="auto"
        How the teacher is read and its scores understood. ``"auto"`` uses ``predict_proba``
        (else ``decision_function``) for a classifier and ``predict`` otherwise; for a callable
        or precomputed scores it means plain scores. Probabilities are mimicked as log-odds
        (centred log-probabilities, one student per class, for more than two classes) and
        decision-function margins are read as log-odds. ``"predict"`` on a classifier mimics
        its predicted labels as numbers; for more than two classes that is a regression on
        class ids, warned about (``UserWarning``).
    calibration : {None, "isotonic", "sigmoid", "temperature", "spline"}, default=None
        Map a one-dimensional teacher score to P(y = 1 | score) with the binary labels ``y``
        before mimicking its log-odds, as Tan et al. do for COMPAS. Cross-fitted over ``cv``
        stratified folds. ``"isotonic"`` reads each isotonic step of m rows with k positives
        as the empirical logit's rate ``(k + 1/2) / (m + 1)`` (see ``calibrator_``);
        ``"sigmoid"`` and ``"temperature"`` are
        :class:`~sklearn.calibration.CalibratedClassifierCV`'s; ``"spline"`` is a smooth
        monotone logistic spline.
    student : regressor or None, default=None
        The student, cloned before fitting. ``None`` gives an ExplainableBoostingRegressor
        with settings for distillation (:data:`DEFAULT_STUDENT_PARAMS`).
    random_state : int, RandomState instance or None, default=None
        Seeds the default student, the calibration folds, query augmentation and subsampling.
    n_jobs : int or None, default=None
        Parallel jobs of the default student (``None``: every core).
    temperature : float, default=1.0
        Divides the teacher's log-odds; above 1 it softens the probabilities the student
        reproduces (Hinton et al., 2015).
    cv : int, default=5
        Folds for cross-fitted calibration: stratified folds of rows, or of whole records when
        :meth:`fit` is given ``groups``.
    monotone_constraints : dict or None, default=None
        ``{feature: +1 or -1}`` (name, or column index for arrays) to make the student's
        shape increasing or decreasing in that feature. Honoured by the EBM student and by
        students with a ``monotonic_cst`` parameter. A categorical feature cannot be
        constrained (its categories have no order).
    augmentation : float or None, default=None
        Query augmentation: add ``augmentation * n_samples`` generated rows, rounded (see
        :func:`generate_queries`) to the transfer set and label them with the teacher. Needs a
        teacher that can be queried.
    max_samples : int or None, default=100_000
        Fit the student on at most this many rows of the transfer set (after augmentation),
        drawn at random; ``None`` uses every row. A noise-free score is learnt as well from
        100,000 rows as from millions, in a fraction of the time (benchmarks/README.md).
        ``fit`` warns, naming the column, when the drawn rows lack categories that other rows
        of X hold: the student learnt nothing for those rows.
    proba_clip : float, default=1e-4
        Teacher probabilities are clipped to ``[proba_clip, 1 - proba_clip]`` before log-odds.
        1e-4 was the best or near-best clip, on the probability scale, for the mimics of a
        random forest (45% of its probabilities exactly 0 or 1) and of a boosted model
        (benchmarks/saturation_clip.py); when many probabilities lie beyond the clip,
        ``fit`` warns.
    max_terms : int or None, default=None
        Keep only the ``max_terms`` most important terms (main effects and pairwise
        interactions ranked by the EBM's mean absolute contribution, summed over classes) and
        refit the student on them: a sparse GAM. ``fidelity`` says what the sparsity costs.
        Needs an Explainable Boosting Machine student.

    Attributes
    ----------
    student_ : estimator
        The fitted student (the first class's one for more than two classes).
    students_ : list of estimators
        One fitted student per output.
    response_ : str
        The teacher method used (``"predict"`` for plain scores).
    fit_settings_ : dict
        ``response``, ``calibration``, ``temperature`` and ``proba_clip`` as fitted: after
        ``set_params`` changes one of them, or sets another ``teacher`` (another object than
        fit's, the same kind or not), :meth:`teacher_target`, :meth:`fidelity` and
        :meth:`score` are refused until the next :meth:`fit` (they would read the teacher
        otherwise than the fitted student mimics it); :meth:`predict` is unchanged.
    classes_ : ndarray
        Class labels, for classifier teachers or calibrated scores.
    calibrator_ : IsotonicCalibrator, CalibratedClassifierCV, SplineCalibrator or None
        Calibrator fitted on all rows, applied to new teacher scores: for ``"isotonic"`` an
        isotonic map whose steps read as empirical logits, ``(k + 1/2) / (m + 1)`` for a step of
        m rows with k positives (a pure step at the end of the score's range then has finite
        log-odds set by its size, not by a clip); scikit-learn's calibrator for ``"sigmoid"``
        and ``"temperature"``.
    target_offset_ : ndarray of shape (n_outputs,)
    target_scale_ : float
        The students regress on ``(target - target_offset_) / target_scale_`` (offset 0 and
        scale 1 unless the teacher's scores are far from unit scale); ``predict`` and
        :meth:`shape_functions` map back.
    terms_ : list of tuple of int or None
        With ``max_terms``: the features of each kept term, most important first.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from sklearn_distill import DistilledGAM
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, X[:, 0] ** 2)
    >>> gam = DistilledGAM(forest, random_state=0).fit(X)
    >>> gam.fidelity(X)["r2"] > 0.9
    True
    """

    def __init__(
        self,
        teacher=None,
        *,
        response="auto",
        calibration=None,
        student=None,
        random_state=None,
        n_jobs=None,
        temperature=1.0,
        cv=5,
        monotone_constraints=None,
        augmentation=None,
        max_samples=100_000,
        proba_clip=1e-4,
        max_terms=None,
    ):
        self.teacher = teacher
        self.response = response
        self.calibration = calibration
        self.student = student
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.temperature = temperature
        self.cv = cv
        self.monotone_constraints = monotone_constraints
        self.augmentation = augmentation
        self.max_samples = max_samples
        self.proba_clip = proba_clip
        self.max_terms = max_terms

    #: Bags of an Explainable Boosting student (``fit(..., bags=)``: +1 to boost on, -1 to
    #: stop on; one row per row of X): a CompareAudit's, which keep a record's rows on one
    #: side of each bag's early-stopping split; None lets the student split by rows.
    _student_bags = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # one student per output column
        if self.student is None:
            tags.input_tags.allow_nan = True
            tags.input_tags.categorical = True
            tags.input_tags.string = True
        else:
            tags.input_tags.allow_nan = get_tags(self.student).input_tags.allow_nan
        return tags

    def _check_student_params(self):
        check_n_jobs("n_jobs", self.n_jobs)
        if self.student is not None:
            check_regressor("student", self.student, target="the teacher's (log-odds) score")
        if self.max_terms is not None:
            check_integer("max_terms", self.max_terms, minimum=1)
            if self.student is not None and not is_explainable_boosting(self.student):
                raise ValueError(
                    "max_terms needs an Explainable Boosting Machine student (it refits the "
                    f"student on the kept terms); got student={self.student!r}."
                )

    def _check_X(self, X, *, reset):
        X = super()._check_X(X, reset=reset)
        if self.student is None or is_explainable_boosting(self.student):
            # an Explainable Boosting student reads a column of objects by its cells' text
            check_numbers_read_as_text(X, self.feature_kinds_)
            check_category_texts(X)
        return X

    def _make_student(self, constraints, seed):
        if self.student is None:
            student = default_student(random_state=seed, n_jobs=self.n_jobs)
        else:
            student = clone(self.student)
        params = student.get_params(deep=False)
        detects = isinstance(params.get("interactions"), numbers.Real) and not isinstance(
            params.get("interactions"), bool
        )
        # pairs given by the user are theirs; an exclude written as text ("mains") cannot
        # take pairs beside it
        if (
            detects
            and params["interactions"] > 0
            and "exclude" in params
            and not isinstance(params["exclude"], str)
        ):
            # a pair whose term would be named like a column ("age & priors" beside age and
            # priors) is left out of the EBM's detection, as the audit does, with a warning
            from sklearn_distill.audit import _pairs_named_unclearly

            names = getattr(self, "feature_names_in_", None)
            if names is None and getattr(self, "_frame_columns_", None) is not None:
                names = [str(c) for c in self._frame_columns_]
            unclear = _pairs_named_unclearly(None if names is None else list(names))
            given = {tuple(term) for term in params["exclude"] or [] if isinstance(term, tuple)}
            unclear = sorted(pair for pair in unclear if pair not in given)
            if unclear:
                student.set_params(exclude=[*(params["exclude"] or []), *unclear])
        if constraints is None:
            return student
        if "monotone_constraints" in params:
            return student.set_params(monotone_constraints=constraints)
        if "monotonic_cst" in params:
            return student.set_params(monotonic_cst=constraints)
        raise ValueError(
            f"monotone_constraints were given but the student {type(student).__name__} "
            "cannot honour them (it has no monotone_constraints or monotonic_cst parameter)."
        )

    def _explain_unread_categories(self, error) -> None:
        """A student that reads numbers only, given columns of text or categories, fails with
        numpy's or pandas' words ("could not convert string to float"), naming no column:
        say which columns and what to do."""
        if "convert" not in str(error) or "float" not in str(error):
            return
        kinds = getattr(self, "feature_kinds_", None) or []
        names = getattr(self, "feature_names_in_", None)
        categorical = [
            str(names[k]) if names is not None else f"column {k}"
            for k, kind in enumerate(kinds)
            if kind == CATEGORICAL
        ]
        if not categorical:
            return
        student = type(self.student).__name__
        raise ValueError(
            f"student must read X's categorical columns {categorical}; {student} reads numbers "
            f"only and failed on them ({error}). Encode them as numbers first (a Pipeline with "
            "a OneHotEncoder or OrdinalEncoder in front of the student), or use the default "
            "Explainable Boosting student, which reads categories."
        ) from error

    def _fit_student(self, transfer, target, constraints, seed):
        fit_params = {}
        if self._student_bags is not None:
            if len(self._student_bags) != _num_samples(transfer):
                raise ValueError(
                    f"the student's bags hold {len(self._student_bags)} rows but it is fitted "
                    f"on {_num_samples(transfer)}: they are rows of X, without augmentation "
                    "or max_samples."
                )
            fit_params["bags"] = self._student_bags
        # an Explainable Boosting student: the categories' order of an unordered 'category'
        # column is not data, and would change the fit (a copy; the teacher read the user's frame)
        transfer = categories_as_labels(transfer, self.student)
        with warnings.catch_warnings():
            # interpret warns that its own plots hide the missing-value bin; shape_functions
            # and the package's pictures show that bin, so the warning would only mislead
            warnings.filterwarnings(
                "ignore", message=INTERPRET_MISSING_VALUES_WARNING, category=UserWarning
            )
            # a column without a value: fit() named it; interpret would repeat numpy's
            # "All-NaN slice" from its preprocessor, naming no column
            warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
            try:
                self.students_ = [
                    self._make_student(constraints, seed).fit(transfer, column, **fit_params)
                    for column in target.T
                ]
            except (TypeError, ValueError) as error:
                self._explain_unread_categories(error)
                raise
            self.terms_ = None
            if self.max_terms is not None:
                self.terms_ = self._most_important_terms()
                mains = {term[0] for term in self.terms_ if len(term) == 1}
                params = {
                    "interactions": [term for term in self.terms_ if len(term) > 1],
                    "exclude": [(k,) for k in range(self.n_features_in_) if k not in mains],
                }
                self.students_ = [
                    self._make_student(constraints, seed)
                    .set_params(**params)
                    .fit(transfer, column, **fit_params)
                    for column in target.T
                ]
        self.student_ = self.students_[0]
        if hasattr(self.student_, "term_scores_"):  # interpret bins categories by their text
            warn_values_equal_as_text(transfer, self.feature_kinds_, stacklevel=3)

    def _most_important_terms(self):
        importance = {}
        for student in self.students_:
            for features, value in zip(student.term_features_, student.term_importances()):
                key = tuple(int(k) for k in features)
                importance[key] = importance.get(key, 0.0) + float(value)
        if self.max_terms > len(importance):
            raise ValueError(
                f"max_terms must be at most the {len(importance)} terms of the full student; "
                f"got {self.max_terms!r}."
            )
        ranked = sorted(importance, key=lambda term: (-importance[term], term))
        return ranked[: self.max_terms]

    def _after_fit(self, X, target, fitted):
        # interpret reads booleans as 0 and 1: shape_functions labels them False and True again
        self._boolean_features_ = boolean_columns(X, self.feature_kinds_)
        # what the student's rows held (max_samples may leave a rare category out), so that
        # predict can say when X holds something else
        self._categories_seen_, self._numeric_missing_ = {}, set()
        self._categorical_missing_ = set()
        for index, kind in enumerate(self.feature_kinds_):
            if kind == CATEGORICAL:
                values = pd.Series(column_values(fitted, index), dtype=object)
                if values.isna().any():
                    self._categorical_missing_.add(index)
                self._categories_seen_[index] = set(values.dropna().unique())
            elif np.isnan(numeric_column(fitted, index)).any():
                self._numeric_missing_.add(index)
        # columns whose missing values X held but max_samples' subsample left out (column
        # index -> X's count): the student learnt nothing for them all the same, and predict
        # says that the drawn rows had none, not X
        self._missing_left_out_, self._n_fitted_rows_ = {}, _num_samples(fitted)
        if fitted is not X:
            for index, kind in enumerate(self.feature_kinds_):
                if index in self._numeric_missing_ | self._categorical_missing_:
                    continue
                if kind == CATEGORICAL:
                    count = int(pd.Series(column_values(X, index), dtype=object).isna().sum())
                else:
                    count = int(np.isnan(numeric_column(X, index)).sum())
                if count:
                    self._missing_left_out_[index] = count
        if self._missing_left_out_:
            # said at fit, not first at predict: raising max_samples is the remedy
            left_out = ", ".join(
                f"{self._feature_label(index)!r} ({count} rows)"
                for index, count in self._missing_left_out_.items()
            )
            warnings.warn(
                f"the {self._n_fitted_rows_} rows max_samples drew to fit the student hold no "
                f"missing value in columns where other rows of X do: {left_out}. The student "
                "learnt nothing for them (a contribution of 0 in their term), whatever the "
                "teacher scores them; raise max_samples to fit on them.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        self._warn_if_subsample_missed_categories(
            X,
            fitted,
            self._categories_seen_,
            [self._feature_label(index) for index in range(self.n_features_in_)],
            ("student", "predicted as unseen categories, with a contribution of 0 in their term"),
        )

    def _warn_about_new_values(self, X):
        """Warn when ``X`` holds categories, or missing values (in a numeric, categorical or
        boolean column), that the fitting rows did not:
        the student learnt nothing for them. (:class:`~sklearn_distill.DistilledTree` warns
        about the categories too, and refuses the missing numbers: its rules say nothing of
        them.)"""
        seen = getattr(self, "_categories_seen_", None)
        if seen is None:  # fitted before these were recorded
            return
        # fitted before missing categories were recorded: nothing to say of them
        categorical_missing = getattr(self, "_categorical_missing_", None)
        for index, kind in enumerate(self.feature_kinds_):
            name = self._feature_label(index)
            missing = 0
            if kind == CATEGORICAL:
                values = pd.Series(column_values(X, index), dtype=object)
                if categorical_missing is not None and index not in categorical_missing:
                    missing = int(values.isna().sum())
                values = values.dropna()
                unseen = set(values.unique()) - seen[index]
                if unseen and hasattr(self.student_, "term_scores_"):
                    # an Explainable Boosting Machine reads number and text categories as
                    # text: 1, 1.0 and "1" are one category to it (warn_values_equal_as_text
                    # said so at fit). Not so booleans: True and "True" differ
                    known = {category_text(value) for value in seen[index] if _read_as_text(value)}
                    unseen = {
                        value
                        for value in unseen
                        if not (_read_as_text(value) and category_text(value) in known)
                    }
                if unseen:
                    warn_unseen_categories(
                        name,
                        unseen,
                        "The student learnt nothing for them, so its contribution for them says "
                        "nothing of the teacher (an Explainable Boosting Machine usually gives "
                        "them 0).",
                    )
            elif kind == NUMERIC and index not in self._numeric_missing_:
                missing = int(np.isnan(numeric_column(X, index)).sum())
            if missing:
                left_out = getattr(self, "_missing_left_out_", {}).get(index)
                if left_out:
                    when = (
                        f"and the {self._n_fitted_rows_} rows max_samples drew to fit the "
                        f"student had none (X at fit had {left_out})"
                    )
                    advice = "Raise max_samples to fit on them, or impute them."
                else:
                    when = "and had none at fit"
                    advice = "Impute them, or fit on rows where the column is missing too."
                warnings.warn(
                    f"X column {name!r} has {missing} missing value(s), {when}: the student "
                    "learnt nothing for them, so its contribution for them says nothing of "
                    "the teacher (an Explainable Boosting Machine gives them 0). "
                    f"{advice}",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )

    def _predict_student(self, X):
        self._warn_about_new_values(X)
        X = self._booleans_as_read_at_fit(X)
        return np.column_stack([np.asarray(s.predict(X), dtype=float) for s in self.students_])

    def _booleans_as_read_at_fit(self, X):
        """``X`` with each ``category`` column of booleans given as its values (objects) where
        the Explainable Boosting student read the feature as numbers at fit (from a ``bool``,
        ``boolean`` or object column of booleans): interpret reads such a category column as
        missing on every row, so each row's contribution of the feature was that of a missing
        value, silently. The user's frame is left as it was."""
        types = getattr(self.student_, "feature_types_in_", None)
        if types is None or not is_frame(X):
            return X
        columns = [
            index
            for index, dtype in enumerate(X.dtypes)
            if isinstance(dtype, pd.CategoricalDtype)
            and holds_booleans(dtype)
            and types[index] == "continuous"
        ]
        if not columns:
            return X
        X = X.copy(deep=False)
        for index in columns:
            X.isetitem(index, X.iloc[:, index].astype(object))
        return X

    def _boolean_features(self):
        """Indices of the features that held booleans at fit (none for a model fitted before
        they were recorded)."""
        return getattr(self, "_boolean_features_", ())

    def shape_functions(self, confidence=0.95, interactions=True):
        """The student's shape functions as a tidy DataFrame.

        Parameters
        ----------
        confidence : float, default=0.95
            Coverage of the bands from the EBM's bags (see :mod:`sklearn_distill.shapes`).
        interactions : bool, default=True
            Include pairwise interaction terms.

        Returns
        -------
        pandas.DataFrame
            The columns of :func:`sklearn_distill.shapes.shape_functions` (``term``,
            ``kind``, ``bin``, ``value``, ``label``, ``score``, ``lower``, ``upper``,
            ``std_error``, ``dof``, ``weight``, ``bin_low``, ``bin_high``; ``class`` first,
            for more than two classes, or ``output`` (0, 1, ...) for several plain outputs),
            scores on the mimicked scale.
            A boolean feature's values are ``False`` and ``True`` (labels ``"False"`` and
            ``"True"``), as in X, though the EBM reads them as 0 and 1.
        """
        check_is_fitted(self, "students_")
        if not hasattr(self.student_, "term_scores_"):
            raise TypeError(
                "shape_functions needs an Explainable Boosting Machine student; this model's "
                f"student is {type(self.student_).__name__}."
            )
        tables = [
            _ebm_shape_functions(
                student,
                confidence=confidence,
                interactions=interactions,
                boolean_features=self._boolean_features(),
            )
            for student in self.students_
        ]
        if self.target_scale_ != 1.0:
            for table in tables:
                for column in ("score", "lower", "upper", "std_error"):
                    table[column] = table[column] * self.target_scale_
        if len(tables) == 1:
            return tables[0]
        if self._is_classifier_like:
            for label, table in zip(self.classes_, tables):
                table.insert(0, "class", label)
        else:  # several plain outputs (a multi-output regressor's, a 2-D y): by position
            for position, table in enumerate(tables):
                table.insert(0, "output", position)
        return pd.concat(tables, ignore_index=True)

    def plot_shapes(self, terms=None, *, class_=None, confidence=0.95, **kwargs):
        """The student's shape functions as a figure
        (:func:`sklearn_distill.plotting.plot_shapes` of :meth:`shape_functions`).

        Parameters
        ----------
        terms : sequence of str, optional
            Terms to draw; all when omitted.
        class_ : optional
            The class drawn, for a student of more than two classes, or the output (0, 1, ...)
            for several plain outputs (required then).
        confidence : float, default=0.95
            Coverage of the bands.
        **kwargs
            ``ncols``, ``max_categories``, ``tail_quantile``, ``ylabel`` of
            :func:`~sklearn_distill.plotting.plot_shapes` (the y axes say the mimicked scale:
            ``"contribution (log-odds)"`` for classifier teachers and calibrated scores,
            ``"contribution (centred log-probability)"`` for more than two classes).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from sklearn_distill.plotting import plot_shapes

        check_is_fitted(self, "students_")
        scale = "log-odds" if self._is_classifier_like else "the teacher's units"
        if self._is_classifier_like and len(getattr(self, "classes_", ())) > 2:
            scale = "centred log-probability"  # of each class: what the students regress on
        temperature = getattr(self, "fit_settings_", {}).get("temperature", self.temperature)
        if self._is_classifier_like and temperature != 1:
            scale = f"{scale} / {temperature:g}"  # the temperature divides them
        kwargs.setdefault("ylabel", f"contribution ({scale})")
        return plot_shapes(self.shape_functions(confidence), terms, class_=class_, **kwargs)
