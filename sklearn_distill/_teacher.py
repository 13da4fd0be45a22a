"""Querying a teacher and turning its outputs into the targets a student regresses on.

Pure functions on arrays: no estimator state. A teacher is a fitted scikit-learn style
estimator, or any callable from X to scores. Classifier outputs are mimicked on the log-odds
scale, where an additive student is natural (Tan et al. 2018 fit COMPAS on the logit scale).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from sklearn_distill._data import caller_stacklevel

RESPONSES = ("auto", "predict", "predict_proba", "decision_function")

#: Responses whose outputs are read as class scores (mimicked on the log-odds scale).
CLASSIFIER_RESPONSES = ("predict_proba", "decision_function")


def _is_classifier(teacher) -> bool:
    """scikit-learn's ``is_classifier``, also for duck-typed objects without estimator tags
    (whose ``get_tags`` raises): those count as classifiers when they expose ``classes_`` and
    ``predict_proba``."""
    try:
        return is_classifier(teacher)
    except (AttributeError, TypeError):
        return hasattr(teacher, "classes_") and hasattr(teacher, "predict_proba")


def is_estimator_teacher(teacher) -> bool:
    """True when ``teacher`` looks like a scikit-learn estimator rather than a plain callable."""
    return any(hasattr(teacher, name) for name in ("fit", *RESPONSES[1:]))


def _check_fitted(teacher) -> None:
    """scikit-learn's ``check_is_fitted``, also for duck-typed estimators without scikit-learn's
    tags (``check_is_fitted`` reads them): those count as fitted when they say so
    (``__sklearn_is_fitted__``) or carry a learned attribute (a name ending in ``_``)."""
    if hasattr(teacher, "__sklearn_tags__"):
        check_is_fitted(teacher)
        return
    if hasattr(teacher, "__sklearn_is_fitted__"):
        fitted = teacher.__sklearn_is_fitted__()
    else:
        learned = getattr(teacher, "__dict__", {})
        fitted = any(k.endswith("_") and not k.startswith("__") for k in learned)
    if not fitted:
        raise NotFittedError(f"This {type(teacher).__name__} instance is not fitted yet.")


def _not_fitted_message(teacher) -> str:
    """Why an unfitted ``teacher`` is refused, and the ways out: fit it, or, when scikit-learn's
    ``clone`` made it (a ``GridSearchCV`` grid over ``teacher``), freeze it or pass its scores."""
    if isinstance(teacher, FrozenEstimator):
        inner = type(teacher.estimator).__name__
        return (
            f"teacher FrozenEstimator({inner}) is not fitted: FrozenEstimator keeps an estimator "
            "as it was given and its fit does nothing. Fit the estimator before wrapping it: "
            "FrozenEstimator(estimator.fit(X_train, y_train))."
        )
    return (
        f"teacher {type(teacher).__name__} is not fitted: the teacher is distilled as it is and "
        "never fitted here. Fit it first (teacher.fit(X_train, y_train)), then pass the fitted "
        "model. If it was fitted, a copy reached the fit: scikit-learn's clone (used by "
        "GridSearchCV, cross_validate and clone itself) refits nothing and hands over an "
        "unfitted copy of each fitted estimator it clones, the teachers of a grid over teacher "
        "({'teacher': [...]}) among them (this model, cloned itself, shares its teacher). Wrap "
        "each fitted teacher as FrozenEstimator(teacher) (from sklearn.frozen), which clone "
        "leaves as it is, or pass its scores as teacher_scores."
    )


def check_teacher(teacher) -> None:
    """Raise a clear error when ``teacher`` is neither an estimator, a callable, nor None."""
    if teacher is None:
        return
    if isinstance(teacher, type):
        # a class has fit as a function and is callable: neither reading scores it
        raise TypeError(
            "teacher must be a fitted estimator, a callable from X to scores, or None; got the "
            f"class {teacher.__name__} itself. Pass a fitted instance "
            f"({teacher.__name__}(...).fit(X_train, y_train))."
        )
    if is_estimator_teacher(teacher):
        if hasattr(teacher, "fit"):
            try:
                _check_fitted(teacher)
            except NotFittedError as error:
                raise NotFittedError(_not_fitted_message(teacher)) from error
        return
    if not callable(teacher):
        raise TypeError(
            "teacher must be a fitted estimator, a callable from X to scores, or None; "
            f"got {type(teacher).__name__}."
        )


def resolve_response(teacher, response: str) -> str:
    """The method used to read the teacher: one of ``predict``, ``predict_proba``,
    ``decision_function`` (``"auto"`` picks ``predict_proba``, then ``decision_function``, for
    classifiers and ``predict`` otherwise). For a callable or precomputed scores, ``response``
    says how to read the scores ("auto" means plain scores, like ``predict``)."""
    if response not in RESPONSES:
        raise ValueError(f"response must be one of {RESPONSES}; got {response!r}.")
    estimator = teacher is not None and is_estimator_teacher(teacher)
    if response == "auto":
        if estimator and _is_classifier(teacher):
            for name in CLASSIFIER_RESPONSES:
                if hasattr(teacher, name):
                    return name
        return "predict"
    if estimator and not hasattr(teacher, response):
        raise ValueError(
            f"teacher {type(teacher).__name__} has no method {response!r} asked for by "
            f"response={response!r}."
        )
    return response


#: Start of warn_if_labels' warning (a regular expression), for callers that said it once.
LABELS_WARNING = r"teacher .* is a classifier with neither predict_proba nor decision_function"


#: Start of the warning that ``response="predict"`` reads a multiclass classifier's labels
#: as numbers (a regular expression).
CLASS_IDS_WARNING = r"response='predict' reads teacher .*'s predicted labels as numbers"


def _numbered_classes(teacher) -> list | None:
    """A classifier's classes when they are more than two and read as numbers (``0/1/2``, or
    texts such as ``"1"``, as its predicted labels are read), else None."""
    try:
        classes = np.asarray(getattr(teacher, "classes_", None))
        if classes.ndim != 1 or classes.size <= 2:
            return None
        classes.astype(float)
    except (TypeError, ValueError):
        return None
    return classes.tolist()


def warn_if_labels(teacher, response: str, method: str, *, stacklevel: int = 2) -> bool:
    """Warn when a classifier's predicted labels, not scores, are mimicked as numbers; return
    whether it warned. ``response="auto"`` falls back to them when the classifier offers
    neither ``predict_proba`` nor ``decision_function`` (a hard-voting ensemble);
    ``response="predict"`` asks for them, which for more than two classes is a regression on
    class ids (two classes' labels read as numbers keep their order, and are left alone)."""
    if method != "predict" or teacher is None:
        return False
    if not is_estimator_teacher(teacher) or not _is_classifier(teacher):
        return False
    if response == "predict":
        classes = _numbered_classes(teacher)
        if classes is None:
            return False
        name = type(teacher).__name__
        scoring = [reader for reader in CLASSIFIER_RESPONSES if hasattr(teacher, reader)]
        instead = (
            f"Pass response='auto' (its {scoring[0]}) to mimic its score of each class"
            if scoring
            else "Give a teacher that scores its classes (e.g. "
            "VotingClassifier(voting='soft')) to mimic its score of each class"
        )
        shown = ", ".join(map(repr, classes[:6])) + (", ..." if len(classes) > 6 else "")
        warnings.warn(
            f"response='predict' reads teacher {name}'s predicted labels as numbers: its "
            f"{len(classes)} classes ({shown}) become one regression target, so the student "
            "averages class ids whose order and spacing mean nothing (a prediction between "
            f"two classes is no class). {instead}; if the labels are amounts on a scale, pass "
            f"the teacher as a callable (lambda X: teacher.predict(X)) to mimic them as "
            "numbers.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        return True
    if response != "auto":
        return False
    warnings.warn(
        f"teacher {type(teacher).__name__} is a classifier with neither predict_proba nor "
        "decision_function, so its predicted labels are mimicked as numbers: the student "
        "learns where the label changes, not the teacher's confidence. Give a teacher that "
        "scores its classes (e.g. VotingClassifier(voting='soft')), or pass its scores as "
        "teacher_scores.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    return True


#: Start of warn_if_margins' warning (a regular expression), for callers that said it once.
MARGINS_WARNING = r"teacher .* has no predict_proba: its decision_function margins"


def warn_if_margins(teacher, response: str, method: str, calibration, *, stacklevel=2) -> None:
    """Warn when ``response="auto"`` falls back to a classifier's ``decision_function`` with no
    calibration: its margins are read as log-odds, so the student's probabilities (rules,
    ``predict_proba``) are sigmoid(margin), not probabilities of the outcome."""
    if response != "auto" or method != "decision_function" or calibration is not None:
        return
    if teacher is None or not is_estimator_teacher(teacher):
        return
    warnings.warn(
        f"teacher {type(teacher).__name__} has no predict_proba: its decision_function margins "
        "are read as log-odds, so the student's probabilities (rules, predict_proba) are "
        "sigmoid(margin), on the margin's scale rather than the outcome's. Pass a calibration "
        "(e.g. calibration='isotonic', with y) for probabilities of the outcome.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def _warn_if_columns_out_of_order(columns) -> None:
    """A callable's class columns are read by position (column ``k`` scores the ``k``-th class
    in sorted order); a frame whose column labels are not in sorted order (``[1, 0]``, ``["yes",
    "no"]``) says another reading, so say which one is taken."""
    labels = list(columns)
    try:
        ordered = sorted(labels)
    except TypeError:  # labels of mixed types: no order to compare with
        return
    if labels != ordered:
        warnings.warn(
            f"teacher(X) returned a DataFrame with class columns labelled {labels}: a callable's "
            "class columns are read by position, column k as the score of the k-th class in "
            f"sorted order, not by their labels (here as {ordered}). Return the columns in "
            "sorted order (frame[sorted(frame.columns)]) if the labels are the classes.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def query_teacher(teacher, X, method: str) -> np.ndarray:
    """Scores of ``teacher`` on ``X`` as a float array (1-D, or 2-D with one column per class)."""
    estimator = is_estimator_teacher(teacher)
    source = f"{type(teacher).__name__}.{method}(X)" if estimator else "teacher(X)"
    try:
        scores = getattr(teacher, method)(X) if estimator else teacher(X)
    except Exception as error:
        # the teacher's own error, said where it came from (its traceback stays whole);
        # notes are Python 3.11's, on 3.10 the error goes as it is
        if hasattr(error, "add_note"):
            error.add_note(f"Raised by the teacher, queried as {source} by the distiller.")
        raise
    if (
        not estimator
        and method in CLASSIFIER_RESPONSES  # plain scores' columns are outputs, not classes
        and isinstance(scores, pd.DataFrame)
        and scores.shape[1] > 1
    ):
        _warn_if_columns_out_of_order(scores.columns)
    try:
        return np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as error:
        hint = ""
        if method == "predict" and is_estimator_teacher(teacher) and _is_classifier(teacher):
            scoring = [name for name in CLASSIFIER_RESPONSES if hasattr(teacher, name)]
            hint = (
                f" (a classifier's labels, which are not scores: pass response='auto' or "
                f"{scoring[0]!r} to read its class scores)"
                if scoring
                else " (a classifier without predict_proba or decision_function: its labels "
                "are not scores)"
            )
        raise TypeError(
            f"teacher must return numeric scores from {source}; got "
            f"{_not_a_number(scores, error)}{hint}."
        ) from None


def _final_estimator(teacher):
    """The estimator that scores, behind a ``Pipeline``, a fitted search or a frozen wrapper
    (where a one-vs-one ``decision_function_shape`` is set)."""
    for _ in range(16):  # wrappers nest a few levels at most
        inner = None
        if hasattr(teacher, "steps") and hasattr(teacher, "_final_estimator"):
            inner = teacher._final_estimator
        elif hasattr(teacher, "best_estimator_"):
            inner = teacher.best_estimator_
        elif type(teacher).__name__ == "FrozenEstimator" and hasattr(teacher, "estimator"):
            inner = teacher.estimator
        if inner is None or inner is teacher:
            return teacher
        teacher = inner
    return teacher


def check_class_columns(teacher, scores: np.ndarray, method: str) -> None:
    """A classifier's 2-D scores must hold one column per class: a one-vs-one
    ``decision_function`` (``SVC(decision_function_shape="ovo")``) has one per *pair* of
    classes, which would be mimicked as class scores and give wrong labels."""
    if method not in CLASSIFIER_RESPONSES or scores.ndim != 2:
        return
    if not is_estimator_teacher(teacher) or not hasattr(teacher, "classes_"):
        return
    n_classes = len(teacher.classes_)
    name = type(teacher).__name__
    final = _final_estimator(teacher)
    if method == "decision_function" and getattr(final, "decision_function_shape", None) == "ovo":
        raise ValueError(
            f"teacher {name}'s decision_function is one-vs-one: its {scores.shape[1]} columns "
            f"score pairs of classes, not the {n_classes} classes. Set "
            "decision_function_shape='ovr' on the teacher, or pass response='predict_proba' "
            "(with probability=True)."
        )
    if scores.shape[1] != n_classes:
        raise ValueError(
            f"teacher {name}.{method}(X) has {scores.shape[1]} columns for its {n_classes} "
            "classes (classes_): the scores must hold one column per class."
        )


def _not_a_number(values, error):
    """The first value of ``values`` that is not a number (shown in a message), else the
    error's own words."""
    try:
        cells = np.asarray(values, dtype=object).ravel()
    except (TypeError, ValueError):
        return str(error)
    for cell in cells:
        try:
            float(cell)
        except (TypeError, ValueError):
            return repr(cell)
    return str(error)


def sorted_labels(y):
    """``y``'s distinct labels in sorted order (scikit-learn's ``classes_``), or None when they
    cannot be sorted (labels of mixed types, refused with their own message where read)."""
    try:
        return np.unique(np.asarray(y))
    except TypeError:
        return None


def classes_named_by_columns(scores):
    """The classes a DataFrame of class columns names by its column labels, sorted (as
    scikit-learn sorts ``classes_``), or None when its columns are not labelled by class:
    positions (a ``RangeIndex``, labels numbered ``0..k-1`` in any order, as numbers or as
    text), repeated labels, or labels of mixed types (which have no order)."""
    if not isinstance(scores, pd.DataFrame) or scores.shape[1] < 2:
        return None
    if isinstance(scores.columns, pd.RangeIndex):
        return None
    labels = list(scores.columns)
    texts = [str(c) for c in labels]
    if len(set(texts)) < len(texts) or sorted(texts) == sorted(map(str, range(len(texts)))):
        return None
    if not all(isinstance(c, str) for c in labels):
        numeric = all(
            isinstance(c, numbers.Real) and not isinstance(c, bool | np.bool_) for c in labels
        )
        if not numeric or sorted(labels) == list(range(len(labels))):  # 0.0, 1.0, ...
            return None
    return np.sort(np.asarray(labels))


def _numbered_in_order(scores):
    """``scores`` whose columns, labelled by no class, are numbered ``0..k-1`` in another order
    (``pd.DataFrame(proba)[[1, 0]]`` beside classes ``["no", "yes"]``) with the columns put in
    the order of their numbers: column ``k`` is class ``k``'s; anything else as it is."""
    texts = [str(c) for c in scores.columns]
    numbers = [str(k) for k in range(len(texts))]
    if texts == numbers or sorted(texts) != sorted(numbers):
        return scores
    return scores.iloc[:, [texts.index(k) for k in numbers]]


def align_score_columns(scores, classes, *, name: str = "teacher_scores"):
    """``scores`` with its columns in the order of ``classes`` when it is a DataFrame whose
    column labels are the classes in another order (``pd.DataFrame(proba,
    columns=model.classes_)[["yes", "no"]]``); anything else as it is, read by position.

    Labels are matched by value (``1`` and ``1.0`` alike), and when no column matches a class by
    value, by text (``"1"`` for ``1``: a frame read back from a CSV file). Columns labelled
    ``0..k-1`` in order are positions, whatever the classes, and so are ``"0".."k-1"`` in order
    unless they are the classes' texts, and a frame's column numbers in order (a ``RangeIndex``
    of step 1: ``frame.iloc[:, 1:]`` of a frame read without a header). Columns that name no
    class but are numbered ``0..k-1`` in another order are read by their numbers (column
    labelled ``k`` for class ``k``: ``pd.DataFrame(proba)[[1, 0]]``). Columns that name every
    class and more are read by position too (a fit on rows that lack a class). Columns that name
    some classes but not all are refused: read by position, a class's column could stand for
    another class.
    """
    if classes is None or not isinstance(scores, pd.DataFrame) or scores.shape[1] < 2:
        return scores
    columns = scores.columns
    positions = list(range(len(columns)))
    # 0..k-1 in order, or a frame's column numbers in order (frame.iloc[:, 1:] of a frame read
    # without a header: RangeIndex(1, k + 1)); pandas labels pd.DataFrame(proba)[[1, 0]] with a
    # RangeIndex too, descending, read by label below
    if list(columns) == positions or (isinstance(columns, pd.RangeIndex) and columns.step == 1):
        return scores
    texts = [str(c) for c in columns]
    if texts == [str(k) for k in positions] and set(texts) != {str(c) for c in classes}:
        return scores  # "0".."k-1" in order, not the classes' texts: a CSV header of positions
    wanted = pd.Index(np.asarray(classes))
    try:
        found = wanted.get_indexer(columns)  # each column's class, -1 for none
    except (TypeError, ValueError, pd.errors.InvalidIndexError):  # labels of mixed types
        return scores
    matched = found >= 0
    if not matched.any():
        # the classes written as text ("0", "1", "2": a frame read back from a CSV file), as
        # a teacher's classes are matched by text when their values differ
        texts = [str(c) for c in wanted]
        if len(set(texts)) < len(texts):
            return _numbered_in_order(scores)
        found = pd.Index(texts).get_indexer([str(c) for c in columns])
        matched = found >= 0
        if not matched.any():
            return _numbered_in_order(scores)
    if matched.all() and list(found) == list(range(len(wanted))):
        return scores
    if matched.sum() == len(wanted) == len(columns):
        # the classes' own columns, in the classes' order (by position: a list of boolean
        # labels would be read as a mask)
        return scores.iloc[:, [list(found).index(k) for k in range(len(wanted))]]
    if matched.sum() == len(wanted):  # every class named, and columns beyond them
        return scores
    raise ValueError(
        f"{name} must have one column per class, labelled by the classes "
        f"{list(wanted)} (in any order) or not by class at all (read by position, column k for "
        f"class k); got columns {list(columns)}, which name some classes and not others."
    )


def columns_as_at_fit(scores, columns):
    """``scores`` with its columns put in the order of ``columns`` (the labels of the frame of
    scores a model was fitted on, in the order it read them) when it is a DataFrame whose
    columns carry those very labels in another order: read by position, each column would
    stand for another output or class. Anything else as it is."""
    if columns is None or not isinstance(scores, pd.DataFrame):
        return scores
    labels = list(scores.columns)
    if len(labels) != len(columns) or labels == list(columns):
        return scores
    try:
        found = pd.Index(labels).get_indexer(pd.Index(columns))
    except (TypeError, ValueError, pd.errors.InvalidIndexError):  # repeated or mixed labels
        return scores
    if (found < 0).any() or len(set(found.tolist())) != len(found):
        return scores
    return scores.iloc[:, found]


def refuse_column_name(values, name: str) -> None:
    """Refuse a string where one value per row of X goes (``y``, ``teacher_scores``,
    ``groups``): a column's name, as pandas-minded code passes it, was read as one value (by
    numpy, "could not convert string to float") or as a sequence of its letters (by
    scikit-learn, "14 rows in y" for ``"two_year_recid"``)."""
    if isinstance(values, str | bytes):
        raise TypeError(
            f"{name} must hold one value per row of X (an array or a Series); got the string "
            f"{values!r}. To use a column of your data, pass the column itself "
            f"(data[{values!r}]) and leave it out of X."
        )


def check_scores(scores, n_samples: int, *, name: str = "teacher_scores") -> np.ndarray:
    """Validate raw teacher scores: numeric, 1-D or 2-D, ``n_samples`` rows, finite, varying."""
    refuse_column_name(scores, name)
    if np.iscomplexobj(scores):
        # np.asarray(..., dtype=float) would drop the imaginary part with a ComplexWarning only
        raise TypeError(f"{name} must be real numbers; got complex values.")
    try:
        scores = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numeric; got {error}.") from None
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {scores.shape}.")
    if scores.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {scores.shape[0]} rows but X has {n_samples}: lengths must match."
        )
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        hint = ""
        if name == "teacher_scores" and np.isnan(scores).any():
            finite = np.isfinite(scores) if scores.ndim == 1 else np.isfinite(scores).all(axis=1)
            keep = (
                "np.isfinite(teacher_scores)"
                if scores.ndim == 1
                else "np.isfinite(teacher_scores).all(axis=1)"
            )
            hint = (
                f" Leave out the rows without a score (first at position "
                f"{int(np.flatnonzero(~finite)[0])}), in X, y and teacher_scores alike: e.g. "
                f"keep = {keep}, then X[keep], y[keep], teacher_scores[keep] (the command line "
                "drops rows whose score is missing and says how many)."
            )
        if name == "teacher_scores" and np.isinf(scores).any():
            hint += (
                " An infinite score is no missing one (log-odds of a probability of 0 or 1?): "
                "give finite scores, e.g. probabilities clipped away from 0 and 1."
            )
        raise ValueError(f"{name} contains {bad} NaN or infinite values; all must be finite.{hint}")
    if n_samples > 1 and np.all(np.ptp(scores, axis=0) == 0):
        hint = ""
        if name == "the teacher's scores":
            hint = (
                " Is X what the teacher was fitted on? A Pipeline step before the distiller "
                "transforms the teacher's input too."
            )
        raise ValueError(f"{name} are constant: there is nothing for a student to mimic.{hint}")
    return scores


def check_probabilities(
    scores: np.ndarray, method: str, response: str, teacher, *, name: str = "teacher_scores"
) -> None:
    """Refuse scores read as class probabilities (``method``, the response resolved from the
    user's ``response``) that are not in [0, 1], with the reading that fits them: beside a
    classifier ``teacher``, its margins (``response='decision_function'``) or ``teacher=None``
    (``response='predict'`` would query its labels to compare); without one, ``'predict'``."""
    if method != "predict_proba" or (scores.min() >= 0 and scores.max() <= 1):
        return
    why = (
        "response='predict_proba'"
        if response == "predict_proba"
        else "they stand for the classifier teacher's predict_proba"
    )
    percent = 0 <= scores.min() and 1.5 < scores.max() <= 100
    if teacher is not None:
        margins = hasattr(teacher, "decision_function")
        advice = (
            "Give them as the teacher's predict_proba gives them"
            + (" (percentages divided by 100)" if percent else "")
            + (", pass response='decision_function' for the teacher's margins," if margins else ",")
            + " or teacher=None to mimic them as they are."
        )
    else:
        advice = (
            ("Percentages: divide them by 100. " if percent else "")
            + "To read them as they are, pass response='predict' (a calibration "
            "then maps them to the outcome's log-odds)."
        )
    raise ValueError(
        f"{name} must be class probabilities in [0, 1] ({why}); got values from "
        f"{scores.min():.4g} to {scores.max():.4g}. {advice}"
    )


#: Scores differ "beyond rounding" by more than this share of the teacher's range of scores.
SCORES_MATCH_TOLERANCE = 0.01


def check_scores_match_teacher(
    given: np.ndarray, queried: np.ndarray, teacher, *, at_fit: bool = True
) -> None:
    """Refuse ``teacher_scores`` given beside a ``teacher`` whose own output on the same rows
    (``queried``, read with the same response) differs from them beyond rounding (on some row,
    by more than 1% of the teacher's range of scores in that column, or half the step of the
    decimals ``given`` is written to where that is at most 5% of the range): they are another black
    box's scores (an older version, other rows), and every later query of the teacher would
    read that other black box. One-column and two-column class scores are compared by their
    column 1; scores of shapes that cannot be matched are left to the reading that follows.
    ``at_fit=False``: given to a fitted model (``fidelity``, ``score``, ``teacher_target``), where
    they would stand for the teacher (``fidelity(X, y)`` passes the labels so)."""
    if given.shape != queried.shape:
        if given.ndim == 1 and queried.ndim == 2 and queried.shape[1] == 2:
            queried = queried[:, 1]
        elif queried.ndim == 1 and given.ndim == 2 and given.shape[1] == 2:
            given = given[:, 1]
        else:
            return
    # each column's own range: class columns of other scales are each rounded on theirs; and
    # scores exported to d decimals are within half a step of the teacher's (probabilities of
    # a rare outcome to 2 decimals: 0.005 off, above 1% of a range of 0.39)
    spread = np.ptp(queried, axis=0)
    tolerance = np.maximum(SCORES_MATCH_TOLERANCE * spread, 1e-9)
    # a step that is small against the scores' range only: on a grid as coarse as the range
    # (0/1 "probabilities", a classifier's labels) any black box on the same side would pass
    step = _rounding_step(given)
    tolerance = np.where(
        step <= 0.05 * spread, np.maximum(tolerance, step / 2 * (1 + 1e-6)), tolerance
    )
    beyond = np.abs(given - queried) > tolerance
    gaps = np.abs(given - queried).reshape(given.shape[0], -1).max(axis=1)
    off = int(np.sum(beyond.reshape(given.shape[0], -1).any(axis=1)))
    if off:
        name = type(teacher).__name__ if is_estimator_teacher(teacher) else "teacher"
        measured = (
            f"teacher_scores differ from the teacher's own scores on X ({name}, queried once to "
            f"compare) on {off} of {gaps.shape[0]} rows, by up to {gaps.max():.4g} (more than "
            f"rounding: {np.max(tolerance):.3g}"
        )
        if not at_fit:
            raise ValueError(
                f"{measured}): the student would be measured against them instead of the "
                "teacher. teacher_scores (the second argument) are the teacher's raw scores on "
                "X, not labels y; leave them out to query the teacher."
            )
        raise ValueError(
            f"{measured}, 1% of the teacher's range of scores or half the step of the decimals "
            "teacher_scores are written to): they are the scores of another black box, or of "
            "other rows, and every later query of the teacher would read a black box the fit "
            "never saw. Pass the teacher that gave teacher_scores, or only one of the two: "
            "teacher=None to mimic teacher_scores, or no teacher_scores to query the teacher."
        )


def _rounding_step(values: np.ndarray) -> float:
    """The step of the decimal grid ``values`` are written on (``0.01`` for scores exported to
    two decimals), for up to six decimals; 0 when they are on none."""
    finite = values[np.isfinite(values)]
    for decimals in range(7):
        scaled = finite * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return 10.0**-decimals
    return 0.0


#: Above this share of teacher probabilities at 0 or 1 (beyond the clip), fitting warns.
SATURATION_WARNING_SHARE = 0.05


#: Start of warn_if_saturated's warning (a regular expression), for callers that said it once.
SATURATED_WARNING = r"\d+% of the teacher's probabilities are 0 or 1"


def warn_if_saturated(probabilities: np.ndarray, clip: float) -> float:
    """Warn when many teacher probabilities lie at 0 or 1 (beyond ``clip``); return their share.

    A random forest's votes are often exactly 0 or 1; clipped at ``clip`` they become log-odds of
    +-log((1 - clip) / clip) (9.2 for 1e-4), steps larger than any the teacher takes elsewhere,
    which a student fitted on log-odds spends its capacity on. A larger clip, or a calibrated
    teacher, keeps them in range.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim == 2 and probabilities.shape[1] == 2:
        probabilities = probabilities[:, 1]
    saturated = (probabilities < clip) | (probabilities > 1 - clip)
    share = float(np.mean(saturated.any(axis=1) if saturated.ndim == 2 else saturated))
    if share > SATURATION_WARNING_SHARE:
        bound = float(np.log((1 - clip) / clip))
        larger = [f"{c:g}" for c in (1e-3, 1e-2) if c > clip]
        advice = "calibrate"
        if larger:
            advice = (
                f"try proba_clip={' or '.join(larger)} (a random forest's tree mimic was "
                "closest at 1e-2, benchmarks/README.md), or calibrate"
            )
        beyond = f"beyond proba_clip={clip:g}"
        if saturated.ndim == 2:  # more than two classes: the share is one of rows
            beyond = f"counted by row: rows where some class's probability lies {beyond}"
        warnings.warn(
            f"{100 * share:.0f}% of the teacher's probabilities are 0 or 1 ({beyond}), so "
            f"their log-odds are clipped to +-{bound:.1f} and the "
            "student learns these steps as if the teacher were that certain. If fidelity() "
            f"on held-out rows suffers, {advice} the teacher "
            "(sklearn.calibration.CalibratedClassifierCV) first.",
            UserWarning,
            stacklevel=4,
        )
    return share


def probabilities_to_logits(probabilities: np.ndarray, clip: float) -> np.ndarray:
    """Log-odds of class probabilities.

    A 1-D array (or 2 columns) gives the binary log-odds ``log(p / (1 - p))``; k > 2 columns give
    centred log-probabilities ``log p_k - mean_j log p_j``, which softmax maps back to ``p``.
    Probabilities are clipped to ``[clip, 1 - clip]`` so that certain predictions stay finite.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("teacher probabilities must lie in [0, 1].")
    if probabilities.ndim == 2 and probabilities.shape[1] == 2:
        probabilities = probabilities[:, 1]
    probabilities = np.clip(probabilities, clip, 1 - clip)
    if probabilities.ndim == 1:
        return np.log(probabilities) - np.log1p(-probabilities)
    log_p = np.log(probabilities)
    return log_p - log_p.mean(axis=1, keepdims=True)


def scores_to_target(scores: np.ndarray, method: str, temperature: float, clip: float):
    """Map raw teacher scores to the student's regression target.

    ``predict`` scores are used as they are; ``predict_proba`` becomes log-odds and
    ``decision_function`` margins are read as log-odds; both are divided by ``temperature``
    (a temperature above 1 softens the probabilities the student reproduces).
    """
    if method == "predict":
        return scores
    logits = probabilities_to_logits(scores, clip) if method == "predict_proba" else scores
    if logits.ndim == 2 and logits.shape[1] == 2 and method == "decision_function":
        logits = logits[:, 1] - logits[:, 0]
    return logits / temperature


def logits_to_probabilities(logits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`probabilities_to_logits`: sigmoid for 1-D, softmax row-wise for 2-D.
    Always returns one column per class."""
    logits = np.asarray(logits, dtype=float)
    if logits.ndim == 1:
        positive = 0.5 * (1.0 + np.tanh(0.5 * logits))  # overflow-free sigmoid
        return np.column_stack([1.0 - positive, positive])
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def target_labels(target: np.ndarray) -> np.ndarray:
    """Class index a log-odds target stands for (sign for binary, argmax for multiclass)."""
    return (target > 0).astype(int) if target.ndim == 1 else np.argmax(target, axis=1)
