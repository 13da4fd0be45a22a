"""Argument checks shared by the scikit-learn side (torch-free).

Every message has one form: ``"<name> must be <constraint>; got <value!r>."``, raised as
``TypeError`` for a value of the wrong type and ``ValueError`` for a value of the right type
outside its range.
"""

from __future__ import annotations

import numbers
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
