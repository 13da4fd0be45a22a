"""Argument checks shared by the scikit-learn side (torch-free).

Every message has one form: ``"<name> must be <constraint>; got <value!r>."``, raised as
``TypeError`` for a value of the wrong type and ``ValueError`` for a value of the right type
outside its range.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable

import numpy as np


def fail(name: str, constraint: str, value, error: type[Exception] = ValueError):
    """Raise ``error`` with the house message form."""
    raise error(f"{name} must be {constraint}; got {value!r}.")


def check_integer(
    name: str, value, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer (not a bool) within ``[minimum, maximum]``; returns it as ``int``."""
    bounds = _bounds_text(minimum, maximum, integer=True)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        fail(name, f"an integer{bounds}", value, TypeError)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        fail(name, f"an integer{bounds}", value)
    return int(value)


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> float:
    """A finite real number (not a bool) within the given bounds; returns it as ``float``."""
    bounds = _bounds_text(minimum, maximum, exclusive_minimum, exclusive_maximum)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        fail(name, f"a real number{bounds}", value, TypeError)
    number = float(value)
    below = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    above = maximum is not None and (number >= maximum if exclusive_maximum else number > maximum)
    if not np.isfinite(number) or below or above:
        fail(name, f"a finite number{bounds}", value)
    return number


def check_choice(name: str, value, choices: Iterable):
    """One of ``choices`` (compared with ``==``; strings are not matched case-insensitively)."""
    choices = tuple(choices)
    if isinstance(value, str | int | float | type(None)) and value in choices:
        return value
    fail(name, "one of " + ", ".join(repr(choice) for choice in choices), value)


def _bounds_text(minimum, maximum, exclusive_minimum=False, exclusive_maximum=False, integer=False):
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if exclusive_maximum else '<='} {maximum}")
    return (" " + " and ".join(parts)) if parts else ""


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` (a Python or numpy bool; not a truthy string such as ``"no"``)."""
    if not isinstance(value, bool | np.bool_):
        fail(name, "True or False", value, TypeError)
    return bool(value)


#: The seeds numpy accepts: integers in ``[0, 2**32 - 1]``.
_MAX_SEED = 2**32 - 1


def check_seed(name: str, value) -> None:
    """A ``random_state``: None, an integer in ``[0, 2**32 - 1]`` or a numpy ``RandomState``."""
    constraint = f"None, an integer >= 0 and <= {_MAX_SEED}, or a numpy RandomState instance"
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        fail(name, constraint, value, TypeError)
    if not 0 <= value <= _MAX_SEED:
        fail(name, constraint, value)


def check_n_jobs(name: str, value) -> None:
    """joblib's ``n_jobs``: None or a non-zero integer (``-1``: every core)."""
    constraint = "None or a non-zero integer (-1: every core)"
    if value is None:
        return
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        fail(name, constraint, value, TypeError)
    if value == 0:
        fail(name, constraint, value)


def check_output_path(path, name: str = "path") -> str:
    """A file path that can be written: not a directory, in a directory that exists, writable.

    Checked before the work whose result goes there. An existing file is opened for appending,
    which leaves its content as it is; a file the check creates is removed again. Returns the
    path as a string.
    """
    if not isinstance(path, str | os.PathLike):
        fail(name, "a str or os.PathLike", path, TypeError)
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{name} must be a file path; got {path!r}, which is a directory.")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        # a file where the directory should be is there, not absent: say which it is
        what = "a file, not a directory" if os.path.exists(directory) else "absent"
        raise ValueError(
            f"{name} must be in an existing directory; got {path!r} ({directory!r} is {what})."
        )
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise ValueError(f"{name} must be writable; got {path!r} ({error.strerror}).") from None
    if not existed:
        os.remove(path)
    return path


def check_confidence(confidence, name: str = "confidence") -> float:
    """A confidence level strictly between 0 and 1."""
    return check_real(
        name, confidence, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True
    )


def check_regressor(name: str, value, *, target: str) -> None:
    """A scikit-learn style regressor: it has ``fit`` and ``predict`` and is not a classifier
    (``target`` says what it regresses on, for the message)."""
    from sklearn_distill._teacher import _is_classifier

    if not (hasattr(value, "fit") and hasattr(value, "predict")):
        fail(name, f"a scikit-learn regressor (with fit and predict) of {target}", value, TypeError)
    if _is_classifier(value):
        raise TypeError(
            f"{name} must be a regressor: it is fitted on {target}, a continuous target; got "
            f"{value!r}, a classifier. Pass a regressor such as interpret's "
            "ExplainableBoostingRegressor (or None for the default)."
        )


def check_sample_weight(sample_weight, n_samples: int, name: str = "sample_weight") -> np.ndarray:
    """Weights of the rows: one finite, non-negative number per row, not all zero; returns
    them as a float array."""
    try:
        weights = np.asarray(sample_weight, dtype=float)
    except (TypeError, ValueError):
        fail(name, f"an array-like of {n_samples} numbers", sample_weight, TypeError)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"{name} must hold one weight per row of X ({n_samples}); got shape {weights.shape}."
        )
    if not np.all(np.isfinite(weights)):
        bad = int(np.sum(~np.isfinite(weights)))
        raise ValueError(f"{name} must be finite numbers; got {bad} NaN or infinite values.")
    if np.any(weights < 0):
        raise ValueError(
            f"{name} must be non-negative; got {int(np.sum(weights < 0))} negative weights "
            f"(the smallest {weights.min():g})."
        )
    if not weights.sum() > 0:
        raise ValueError(f"{name} must have a positive sum; got all {n_samples} weights zero.")
    return weights
