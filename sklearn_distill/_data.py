"""Rows and columns of the data a student is fitted on: taking rows, and the checks of a frame's
columns that scikit-learn's ``check_array`` would do for an array (frames skip it so that
categorical columns reach the student as they are).

A column is *numeric* when its dtype is a number (booleans excluded) and *categorical* when it
holds labels (``category``, ``object``, ``string`` or ``bool`` dtype, or strings in an object
array). The kinds seen at fit are recorded; at predict time a numeric column must hold numbers
again, so that a label such as ``"zz"`` or ``True`` is refused instead of read as missing or as
1.0.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import numbers
import os
import re
import sys
import unicodedata
import warnings

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"

#: The start of the warning that a categorical column of the fitting data holds nearly one
#: level per row, or numbers written as text (a pattern for ``warnings.filterwarnings``).
TEXT_CATEGORY_WARNING = r"X column .* is read as a categorical feature"
#: Start of warn_empty_columns' warning (a regular expression), for callers that said it once.
EMPTY_COLUMNS_WARNING = r"X columns .* have no value on any row"
#: Start of warn_numbers_from_text's warning (a regular expression), for callers that said it.
NUMBER_TEXT_WARNING = r"X columns? .* holds? numbers written as text"
#: check_same_order's warning (a regular expression), for callers that said it once.
SAME_ORDER_WARNING = r".*'s index holds \d+ of its \d+ labels as labels of other rows of X"
#: Start of warn_values_equal_as_text's warning (a regular expression).
VALUES_EQUAL_AS_TEXT_WARNING = r"X column .* holds values that differ only in type"
#: Start of warn_values_equal_as_text's warning about white space (a regular expression).
WHITE_SPACE_WARNING = r"X column .* holds values that differ only in white space"
#: Start of warn_values_equal_as_text's warning about values equal but for their text.
EQUAL_VALUES_WARNING = r"X column .* holds values that are equal as values but not as text"
#: Start of warn_names_read_alike's warning (a regular expression).
NAMES_ALIKE_WARNING = r"X has column names that differ only in white space"

#: A categorical column has *nearly one level per row* when its distinct values outnumber both
#: this share of its non-missing rows (under two rows per level on average: a level can be
#: neither learnt nor tested, the audit's ``min_weight`` being 10) and ``_NEAR_UNIQUE_LEVELS``
#: (a few dozen labels on a small frame are as likely meant as not).
_NEAR_UNIQUE_SHARE = 0.5
_NEAR_UNIQUE_LEVELS = 50
#: A text column *holds numbers* when this share of its non-missing cells read as numbers once
#: ``_NUMBER_DECORATION`` is stripped (a few ``"n/a"`` cells allowed) and it has more than
#: ``_NUMBER_TEXT_LEVELS`` levels: up to ten levels, each still holds many rows as a category
#: (two are the same feature either way); beyond, the numbers' order is lost and the rows are
#: split among levels fitted, and tested, each on their own.
_NUMBER_TEXT_SHARE = 0.9
_NUMBER_TEXT_LEVELS = 10
#: Currency symbols, thousands separators (and a decimal comma), percent signs and white space.
_NUMBER_DECORATION = re.compile(r"[\s$\u20ac\u00a3\u00a5%,']")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def is_frame(X) -> bool:
    """True for a pandas DataFrame (or anything with ``iloc`` and ``columns``)."""
    return hasattr(X, "iloc") and hasattr(X, "columns")


def take_rows(X, rows):
    """Rows ``rows`` of a frame (by position) or of an array-like."""
    return X.iloc[rows] if is_frame(X) else np.asarray(X)[rows]


def concat_rows(first, second):
    """``first`` followed by ``second`` (both frames with the same columns, or both arrays)."""
    if is_frame(first):
        return pd.concat([first.reset_index(drop=True), second], ignore_index=True)
    return np.concatenate([first, second])


def record_codes(groups, n_samples: int, rows: str = "X") -> np.ndarray | None:
    """Record identifiers ``groups`` (one per row of ``rows``, X by default) as integer codes
    ``0..k-1`` in order of first appearance, or None for None: the one check of ``groups``
    wherever a fit takes them. Any hashable identifiers (numbers, text, a mix) are read as
    they are; a string, a scalar, a 2-D array, another length or a missing identifier is
    refused naming ``groups``.
    """
    if groups is None:
        return None
    constraint = f"a 1-D array-like of {n_samples} record identifiers"
    try:
        shape = np.shape(groups)
    except ValueError:  # ragged nested sequences
        shape = None
    if isinstance(groups, str) or shape == ():
        raise TypeError(f"groups must be {constraint}; got {groups!r}.")
    if shape is None or len(shape) != 1:
        # the shape, not the values: a column of thousands of identifiers is no message
        given = "a ragged nested sequence" if shape is None else f"an array of shape {shape}"
        raise TypeError(f"groups must be {constraint}; got {given}.")
    values = pd.Series(np.asarray(groups, dtype=object))
    if len(values) != n_samples:
        raise ValueError(
            f"groups must be one record identifier per row of {rows} ({n_samples}); got "
            f"{len(values)}."
        )
    if bool(values.isna().any()):
        raise ValueError(
            "groups must be record identifiers without missing values; got "
            f"{int(values.isna().sum())} missing value(s) of {n_samples}."
        )
    codes, _ = pd.factorize(values)
    return codes


def check_feature_count(X, name: str = "X") -> None:
    """Refuse data with no columns, frames and arrays alike (scikit-learn's wording)."""
    try:
        shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
    except (TypeError, ValueError):  # ragged lists, array-likes numpy cannot shape: check_array
        return
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one feature; got 0 feature(s) (shape={shape}) while a "
            "minimum of 1 is required."
        )


def fingerprint(values) -> str:
    """A digest of the values of a frame, an array or a vector, to tell whether data given
    again are the data seen before.

    Numbers are read as floats (so ``1`` and ``1.0`` agree, as do a ``category`` column and
    the same labels as objects); column names and the index are left out (a frame's columns are
    checked by name elsewhere). Costs one hash of each column.
    """
    digest = hashlib.blake2b(digest_size=16)
    if is_frame(values):
        columns = [values.iloc[:, k] for k in range(values.shape[1])]
        digest.update(f"{values.shape}".encode())
    else:
        array = np.asarray(values)
        array = array.reshape(len(array), -1) if array.ndim != 2 else array
        columns = [pd.Series(array[:, k]) for k in range(array.shape[1])]
        digest.update(f"{array.shape}".encode())
    for column in columns:
        dtype = column.dtype
        if pd.api.types.is_object_dtype(dtype):
            # numbers held as objects (an array of a frame of mixed columns) digest as the
            # numeric column they came from
            try:
                numbers = pd.to_numeric(column)
            except (TypeError, ValueError):
                numbers = None
            if (
                numbers is not None
                and not column.map(lambda v: isinstance(v, bool | np.bool_)).any()
            ):
                column, dtype = numbers, numbers.dtype
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            floats = column.to_numpy(dtype=float, na_value=np.nan)
            # one bit pattern for every NaN, and -0.0 read as 0.0
            floats = np.where(np.isnan(floats), np.nan, floats + 0.0)
            digest.update(b"n" + floats.tobytes())
        else:
            hashed = pd.util.hash_pandas_object(column.astype(object), index=False)
            digest.update(b"o" + hashed.to_numpy().tobytes())
    return digest.hexdigest()


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning given by the calling function point at the first
    frame outside this package: the user's line, however many of the package's methods lie
    between (``predict``, ``predict_proba`` calling ``predict``, ``fidelity``, ...)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep

    def inside(frame) -> bool:
        name = frame.f_code.co_filename
        # "<string>", "<doctest ...>", "<stdin>": code of the user's, whatever the directory
        return not name.startswith("<") and os.path.abspath(name).startswith(package)

    frame, level = sys._getframe(1), 1
    while frame is not None and inside(frame):
        frame, level = frame.f_back, level + 1
    return level


def warn_unseen_categories(column, unseen, consequence: str) -> None:
    """Warn that column ``column`` of X holds categories not seen at fit, and what is done with
    them (``consequence``); the warning points at the user's call."""
    listed = sorted(unseen, key=repr)
    more = f" and {len(listed) - 10} more" if len(listed) > 10 else ""
    warnings.warn(
        f"X column {column!r} holds categories not seen at fit: {listed[:10]!r}{more}. "
        + consequence,
        UserWarning,
        stacklevel=caller_stacklevel(),
    )


def _column_label(X, index) -> str:
    return repr(X.columns[index]) if is_frame(X) else f"{index}"


def _is_label_cell(value) -> bool:
    if isinstance(value, complex | np.complexfloating):
        return False
    return (
        value is None or value is pd.NA or isinstance(value, str | bool | np.bool_ | numbers.Number)
    )


def _column(X, index):
    return X.iloc[:, index] if is_frame(X) else X[:, index]


def column_values(X, index) -> np.ndarray:
    """Column ``index`` of a frame or an array, as an array of objects (or of its dtype)."""
    return X.iloc[:, index].to_numpy(dtype=object) if is_frame(X) else np.asarray(X)[:, index]


def numeric_column(X, index) -> np.ndarray:
    """A numeric column as floats, missing values (None, NaN, pd.NA) as NaN, numbers written
    as text as Python's ``float`` reads them, and any other real number (a ``Fraction``, a
    ``Decimal``) as its ``float``."""
    column = X.iloc[:, index] if is_frame(X) else pd.Series(np.asarray(X)[:, index])
    if not pd.api.types.is_numeric_dtype(column.dtype):
        cells = column.astype(object).where(column.notna(), np.nan)
        column = pd.to_numeric(cells.map(_cell_number))
    return column.to_numpy(dtype=float, na_value=np.nan)


def _cell_number(value):
    """A cell of a numeric object column as :func:`pandas.to_numeric` reads it: text as a
    number, a real number as its float (pandas refuses some, ``fractions.Fraction``), any other
    cell (a boolean) as it is."""
    if isinstance(value, str):
        return _text_number(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return float(value)
    return value


def check_frame_columns(X, name: str = "X") -> None:
    """Refuse what the students cannot read: duplicate column names, datetime, timedelta,
    period or interval columns, and cells that are lists, dicts or other containers."""
    if not is_frame(X):
        return
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(
            f"{name} must have distinct column names; got {duplicated!r} more than once."
        )
    texts = [isinstance(c, str) for c in X.columns]
    if any(texts) and not all(texts):
        # scikit-learn keeps feature names only when every name is a string
        others = [c for c, text in zip(X.columns, texts) if not text]
        raise TypeError(
            f"{name} must have column names that are all strings (or none a string); got "
            f"{', '.join(map(repr, others[:3]))} ({type(others[0]).__name__}) beside "
            f"{X.columns[texts.index(True)]!r}. Name every column as text "
            f"({name}.columns = {name}.columns.astype(str))."
        )
    for index, dtype in enumerate(X.dtypes):
        if pd.api.types.is_timedelta64_dtype(dtype):
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be numeric or categorical; got dtype "
                f"{str(dtype)!r}. Convert the durations to numbers first (for example "
                "column.dt.total_seconds() / 86400 for days) or drop the column."
            )
        if pd.api.types.is_datetime64_any_dtype(dtype):
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be numeric or categorical; got dtype "
                f"{str(dtype)!r}. Convert dates to numbers first (for example days since a "
                "reference date) or drop the column."
            )
        if isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype):
            kind = "periods" if isinstance(dtype, pd.PeriodDtype) else "intervals"
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be numeric or categorical; got dtype "
                f"{str(dtype)!r}. Convert the {kind} to numbers (for example "
                + (
                    "column.dt.start_time, then days since a reference date)"
                    if kind == "periods"
                    else "their midpoints, column.array.mid)"
                )
                + " or to labels (column.astype(str)), or drop the column."
            )
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be real numbers or labels; got dtype "
                f"{str(dtype)!r}."
            )
        if pd.api.types.is_object_dtype(dtype):
            check_label_cells(X.iloc[:, index], f"{name} column {X.columns[index]!r}")


def check_category_texts(X, name: str = "X") -> None:
    """Refuse a ``category`` column of a frame whose categories are tuples or lists (keys of a
    ``groupby``, pairs zipped together), which an Explainable Boosting Machine, reading each
    category as its text, fails on deep inside (numpy's "setting an array element with a
    sequence", naming no column). An object column of them is refused for every model
    (:func:`check_frame_columns`); :class:`~sklearn_distill.DistilledTree` reads such
    categories as they are."""
    if not is_frame(X):
        return
    for index, dtype in enumerate(X.dtypes):
        if not isinstance(dtype, pd.CategoricalDtype):
            continue
        for category in dtype.categories:
            if isinstance(category, tuple | list | np.ndarray):
                raise TypeError(
                    f"{name} column {X.columns[index]!r} must hold numbers or labels (strings); "
                    f"got a {type(category).__name__} category {category!r}, which the "
                    "Explainable Boosting student cannot read as a label. Make each one label "
                    f"first ({name}[col] = {name}[col].astype(str))."
                )


#: what a column of X may hold, and what to do with a signaling NaN there
_CELLS = (
    "numbers, labels or missing values; got the signaling NaN {}. Use NaN (or Decimal('NaN')) "
    "for a missing value."
)


def _refuse_signaling_nan(value, where: str, expected: str = _CELLS) -> None:
    if isinstance(value, decimal.Decimal) and value.is_snan():
        # a signaling NaN cannot be compared, hashed nor tested for missing (pandas' isna
        # raises on it): every later read of its column would fail
        raise ValueError(f"{where} must hold {expected.format(repr(value))}")


def check_signaling_nans(X, name: str = "X", expected: str = _CELLS) -> None:
    """Refuse a ``Decimal('sNaN')`` cell in an object column of a frame or an object array
        (or list, or Series: ``y``), which pandas cannot test for missing and numpy cannot read as
        a float; the other cells are left to the model's checks. ``expected`` completes "NAME must
    hold ..." (``{}`` stands for the cell)."""
    if is_frame(X):
        for index, dtype in enumerate(X.dtypes):
            if pd.api.types.is_object_dtype(dtype):
                where = f"{name} column {X.columns[index]!r}"
                for value in X.iloc[:, index]:
                    _refuse_signaling_nan(value, where, expected)
    elif getattr(getattr(X, "dtype", None), "kind", "O") == "O" and not hasattr(X, "toarray"):
        try:
            cells = np.asarray(X, dtype=object).ravel()
        except (TypeError, ValueError):  # ragged lists: the model's checks say why
            return
        for value in cells:
            _refuse_signaling_nan(value, name, expected)


def check_label_cells(values, where: str) -> None:
    """Each cell of an object column (or array) must be a number, a label or missing."""
    for value in values:
        _refuse_signaling_nan(value, where)
        if not _is_label_cell(value):
            if isinstance(value, pd.Timestamp | np.datetime64):
                raise ValueError(
                    f"{where} must hold numbers or labels; got the date {value!r}. Convert "
                    "dates to numbers first or drop the column."
                )
            # "argument must be a string or a real number" is numpy's wording for such a cell,
            # which scikit-learn's estimator checks expect
            raise TypeError(
                f"{where} must hold numbers or labels (strings): argument must be a string or a "
                f"real number; got a {type(value).__name__} cell {value!r}."
            )


def _text_number(value) -> float | None:
    """The number a text cell writes as Python's ``float`` reads it (``"-0.137"``, ``" 12 "``,
    ``"1e-5"``), else None."""
    if not isinstance(value, str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _number_or_missing(value, *, text: bool) -> bool:
    """A number (not a boolean), a missing cell, or (with ``text``) a number written as text."""
    if value is None or value is pd.NA:  # pd.NA: a nullable column's missing cell
        return True
    if isinstance(value, numbers.Number):
        return not isinstance(value, bool | np.bool_)
    return text and _text_number(value) is not None


def check_numbers_read_as_text(X, kinds, name: str = "X") -> None:
    """Each number in a numeric column of objects must read as a number from its text, as an
    Explainable Boosting model reads such a column: a ``fractions.Fraction`` (text ``"17/4"``)
    there would make its column one of labels, where the library reads numbers."""
    for index, kind in enumerate(kinds):
        column = _column(X, index)
        if kind != NUMERIC or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        for value in column.tolist() if is_frame(X) else list(column):
            if (
                isinstance(value, numbers.Real)
                # Python's and numpy's numbers read back from their text: no text made
                and not isinstance(value, bool | int | float | np.number | np.bool_)
                and _text_number(str(value)) is None
            ):
                label = _column_label(X, index)
                how = f" ({name}[{X.columns[index]!r}].astype(float))" if is_frame(X) else ""
                raise TypeError(
                    f"{name} column {label} must hold numbers that read as numbers from their "
                    f"text (int, float, Decimal); got a {type(value).__name__} cell {value!r}, "
                    "which the Explainable Boosting student would read as the label "
                    f"{str(value)!r}. Convert the column to floats first{how}."
                )


def column_kinds(X) -> list[str]:
    """``"numeric"`` or ``"categorical"`` for each column of ``X`` (a frame or a 2-D array).

    Text columns (object or string dtype, not ``category``) whose every cell is a number, a
    number written as text (as Python's ``float`` reads it) or missing are numeric: the
    Explainable Boosting Machine reads them as continuous features, and so does every part of
    the library (:func:`numeric_column` reads them; :func:`text_number_columns` names them). A
    ``category`` dtype declares its labels and stays categorical.
    """
    if is_frame(X):
        kinds = []
        for index, dtype in enumerate(X.dtypes):
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
                numeric = all(_number_or_missing(value, text=True) for value in X.iloc[:, index])
            kinds.append(NUMERIC if numeric else CATEGORICAL)
        return kinds
    X = np.asarray(X)
    if X.dtype.kind in "iuf":
        return [NUMERIC] * X.shape[1]
    if X.dtype.kind == "b":
        return [CATEGORICAL] * X.shape[1]
    return [
        NUMERIC if all(_number_or_missing(v, text=True) for v in X[:, k]) else CATEGORICAL
        for k in range(X.shape[1])
    ]


def warn_numbers_from_text(converted, stacklevel: int | None = None) -> str | None:
    """Say which columns hold numbers written as text (``converted``, from
    :func:`text_number_columns`) and are read as numbers; the warning points at the user's
    line unless ``stacklevel`` is given. Returns the message warned (None when none)."""
    if not converted:
        return None
    message = (
        (
            f"X columns {', '.join(converted)} hold"
            if len(converted) > 1
            else f"X column {converted[0]} holds"
        )
        + " numbers written as text: read as numbers (a continuous feature), as the "
        "Explainable Boosting Machine reads them; the teacher is given them as they are. "
        "Give a column the 'category' dtype to read its values as labels."
    )
    warnings.warn(
        message,
        UserWarning,
        stacklevel=caller_stacklevel() if stacklevel is None else stacklevel,
    )
    return message


def text_number_columns(X, kinds, advice=None) -> list[str]:
    """The labels of the numeric columns of ``X`` (``kinds`` from :func:`column_kinds`) that
    hold numbers written as text; they are read as numbers where the library reads them
    (:func:`numeric_column`) and given to the teacher and the student as they are (the
    Explainable Boosting Machine parses them itself). Text that reads as an infinite number
    (``"inf"``, ``"1e400"``) is refused, as an infinite number is; ``"nan"`` is a missing
    value. So is an infinite number in an object column (a frame column of dtype object, or an
    object array), which the checks of float columns do not see. ``advice(index)`` gives the
    refusal's advice for column ``index`` (by default, to use NaN for missing values)."""
    found = []
    for index, kind in enumerate(kinds):
        if kind != NUMERIC:
            continue
        dtype = X.dtypes.iloc[index] if is_frame(X) else getattr(X, "dtype", None)
        if dtype is not None and pd.api.types.is_numeric_dtype(dtype):
            continue  # numbers already: nothing written as text (and no per-cell pass)
        values = column_values(X, index)
        if values.dtype.kind in "biufc":
            continue
        infinite = next((v for v in values if _is_infinite_number(v)), None)
        if infinite is not None:
            raise ValueError(
                f"X column {_column_label(X, index)} contains infinity ({infinite!r}, in a "
                f"column of dtype object); {_advice(advice, index)}."
            )
        texts = [v for v in values if isinstance(v, str)]
        if not texts:
            continue
        infinite = next((v for v in texts if math.isinf(_text_number(v) or 0.0)), None)
        if infinite is not None:
            raise ValueError(
                f"X column {_column_label(X, index)} contains infinity (the text "
                f"{infinite!r}); {_advice(advice, index)}."
            )
        found.append(_column_label(X, index))
    return found


def _advice(advice, index) -> str:
    return "use NaN for missing values" if advice is None else advice(index)


def _is_infinite_number(value) -> bool:
    """Whether a cell is an infinite number (not text: see :func:`text_number_columns`)."""
    if isinstance(value, str | bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return math.isinf(value)


def _reads_as_number(value) -> bool:
    """Whether a cell reads as a number once currency symbols, thousands separators, ``%`` and
    white space are stripped (``"$43,165"``, ``"12,5"``, ``"7%"``)."""
    text = _NUMBER_DECORATION.sub("", str(value))
    return _PLAIN_NUMBER.fullmatch(text) is not None


def readable_columns(X, kinds=None):
    """``(X, kinds)`` with ``X`` a frame or a 2-D object array and ``kinds`` its
    :func:`column_kinds`, or ``(None, None)`` for sparse or unreadable data (the model's own
    checks speak of those): for what is said about the data before the model reads it."""
    if not is_frame(X):
        if hasattr(X, "toarray"):  # sparse: numbers only
            return None, None
        try:
            X = np.asarray(X, dtype=object)
        except (TypeError, ValueError):
            return None, None
        if X.ndim != 2:
            return None, None
    if kinds is None:
        try:
            kinds = column_kinds(X)
        except (TypeError, ValueError):
            return None, None
    return X, kinds


def _categorical_columns(X, kinds=None):
    """``(index, column as a Series)`` of each categorical column of the fitting data (none
    for sparse or unreadable data: the model's own checks speak of those)."""
    X, kinds = readable_columns(X, kinds)
    if X is None:
        return
    for index, kind in enumerate(kinds):
        if kind == CATEGORICAL:
            yield (
                index,
                (_column(X, index) if is_frame(X) else pd.Series(X[:, index], dtype=object)),
            )


def warn_text_categories(X, kinds=None, name: str = "X", stacklevel: int = 2) -> list[str]:
    """Warn about each categorical column of the fitting data that has nearly one level per
    row, or that holds numbers written as text.

    A numeric column read from a file as text (``"$43,165"``, ``"12,5"``, ``"7%"``, with a few
    ``"n/a"``) becomes a categorical feature of one level per row or so: as a category it
    carries almost no information, silently, and an audit then reads what it lost as a missing
    feature. The thresholds are ``_NEAR_UNIQUE_*`` and ``_NUMBER_TEXT_*`` above. A warning,
    not an error: an identifier-like category may be intended. A ``category`` dtype declares
    its labels, so its numbers are not questioned (its levels per row are).

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The fitting data; anything else is left to the model's own checks.
    kinds : list of str, default=None
        :func:`column_kinds` of ``X``; computed when not given.
    name : str, default="X"
        How the data are named in the message.
    stacklevel : int, default=2
        As for :func:`warnings.warn`, counted from the caller of this function.

    Returns
    -------
    list of str
        The messages warned, one per column.
    """
    warned = []
    for index, column in _categorical_columns(X, kinds):
        dtype = column.dtype
        if (
            holds_booleans(dtype)
            or pd.api.types.is_datetime64_any_dtype(dtype)
            or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
        ):  # booleans are two labels; dates and durations are refused with their own advice
            continue
        counts = pd.Series(column.to_numpy(dtype=object), dtype=object).dropna().value_counts()
        if counts.empty or all(isinstance(v, bool | np.bool_) for v in counts.index):
            continue
        n_rows, n_levels = int(counts.sum()), len(counts)
        near_unique = n_levels > _NEAR_UNIQUE_LEVELS and n_levels > _NEAR_UNIQUE_SHARE * n_rows
        numbers_as_text = False
        if not isinstance(column.dtype, pd.CategoricalDtype):
            reads = np.array([_reads_as_number(v) for v in counts.index], dtype=bool)
            numbers_as_text = (
                n_levels > _NUMBER_TEXT_LEVELS
                and counts.to_numpy()[reads].sum() >= _NUMBER_TEXT_SHARE * n_rows
            )
        if near_unique or numbers_as_text:
            label = repr(X.columns[index]) if is_frame(X) else f"{index}"
            message = (
                f"{name} column {label} is read as a categorical feature with {n_levels} "
                f"levels in {n_rows} non-missing rows ({n_rows / n_levels:.1f} rows per level)"
            )
            if near_unique:
                message += (
                    ": nearly one level per row, so as a category it carries almost no "
                    "information (a level held by a row or two can be neither learnt nor tested)."
                )
            else:
                message += "."
            if numbers_as_text:
                decorated = [v for v in counts.index[reads] if _NUMBER_DECORATION.search(str(v))]
                example = (decorated or list(counts.index[reads]))[0]
                others = counts.index[~reads]
                message += (
                    f" Its values read as numbers once currency symbols, thousands separators, "
                    f"'%' and spaces are stripped (e.g. {str(example)!r}"
                    + (
                        f"; {int(counts.to_numpy()[~reads].sum())} cells do not, e.g. "
                        f"{str(others[0])!r}"
                        if len(others)
                        else ""
                    )
                    + "): as categories they lose their order and each level is fitted, and "
                    "tested, on its own rows. Convert the column to numbers (a decimal comma "
                    "to a point, cells that are not numbers to missing; e.g. with "
                    "pandas.to_numeric) before fitting."
                )
            else:
                message += (
                    " If it holds numbers, convert it to numbers before fitting; if it is an "
                    "identifier (a name, a record number), drop it."
                )
            message += " If the levels are meant as categories, ignore this warning."
            warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
            warned.append(message)
    return warned


def holds_booleans(dtype) -> bool:
    """Whether ``dtype`` is one of booleans: ``bool``, ``boolean``, or a ``category`` whose
    categories are all booleans (``pd.Categorical`` of booleans held as objects, too, which
    pandas' ``is_bool_dtype`` reads only with a deprecation warning, and will not read)."""
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        return len(categories) > 0 and all(isinstance(c, bool | np.bool_) for c in categories)
    return pd.api.types.is_bool_dtype(dtype)


def boolean_columns(X, kinds) -> list[int]:
    """Indices of the columns of ``X`` whose values are booleans: a ``bool`` or ``boolean``
    dtype, a ``category`` of booleans, a boolean array, or an object column holding only
    ``True``, ``False`` and missing values (``kinds`` from :func:`column_kinds`: such columns
    are categorical).

    An Explainable Boosting Machine reads them as the numbers 0 and 1; what the user reads should
    say ``False`` and ``True``, as the data do.
    """
    booleans = []
    for index, kind in enumerate(kinds):
        if kind != CATEGORICAL:
            continue
        dtype = X.dtypes.iloc[index] if is_frame(X) else np.asarray(X).dtype
        if holds_booleans(dtype):
            booleans.append(index)
        elif pd.api.types.is_object_dtype(dtype):
            values = pd.Series(column_values(X, index), dtype=object).dropna()
            if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
                booleans.append(index)
    return booleans


def check_numeric_columns(X, kinds, name: str = "X") -> None:
    """Each column that was numeric at fit must hold numbers (or missing values) in ``X``:
    a string or a boolean there is an error naming the column, not a missing value or 1.0."""
    for index, kind in enumerate(kinds):
        if kind != NUMERIC:
            continue
        column = _column(X, index)
        dtype = column.dtype
        if is_frame(X) and holds_booleans(dtype):
            bad = bool(column.iloc[0])
        elif pd.api.types.is_numeric_dtype(dtype):
            continue
        else:
            values = column.tolist() if is_frame(X) else list(column)
            bad = next(
                (
                    v
                    for v in values
                    if v is not None and v is not pd.NA and not _number_or_missing(v, text=True)
                ),
                None,
            )
            if bad is None:
                continue
        raise ValueError(
            f"{name} column {_column_label(X, index)} must hold numbers, as it did at fit; got "
            f"{bad!r}."
        )


#: characters that show as nothing (zero-width spaces and joiners, a byte-order mark)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


def reads_as(text: str) -> str:
    """How ``text`` reads: its compatibility form (NFKC: composed accents, a no-break space as
    a space), invisible characters left out, runs of white space as one space, none around."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_INVISIBLE).split())


def _read_alike(texts) -> list[list[str]]:
    """Groups of two or more of ``texts`` that read alike (:func:`reads_as`)."""
    by_shown: dict[str, list] = {}
    for text in texts:
        by_shown.setdefault(reads_as(text), []).append(text)
    return [group for group in by_shown.values() if len(group) > 1]


def warn_names_read_alike(X, stacklevel: int = 2) -> str | None:
    """Warn when a frame's column names differ only in how they read (``"age"`` and
    ``"age "``, accents composed and decomposed): tables and reports show them alike.
    Returns the message warned (None when none)."""
    if not is_frame(X):
        return None
    alike = _read_alike([column for column in X.columns if isinstance(column, str)])
    if not alike:
        return None
    shown = "; ".join(" and ".join(repr(v) for v in group) for group in alike[:3])
    message = (
        f"X has column names that differ only in white space, invisible characters or the "
        f"Unicode form of their letters ({shown}): they are separate features that read "
        "alike in every table and report. Rename them."
    )
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
    return message


def category_text(value) -> str:
    """The text an Explainable Boosting Machine reads a category as (interpret bins categories
    by their text): a float as its shortest text less a whole number's ``".0"`` (``1.0`` reads
    as ``"1"``, as ``1`` and ``"1"`` do; ``2.5`` as ``"2.5"``), anything else as ``str(value)``
    (booleans too, which a column of booleans alone does not reach: the student reads it as 0
    and 1)."""
    if isinstance(value, float | np.floating):
        text = str(float(value) + 0.0)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _text_order(texts) -> list[int]:
    """Positions of ``texts`` in the order an Explainable Boosting Machine gives the levels of a
    column of labels (an ``object`` or ``string`` column): by their value when every text reads
    as a number (as numpy reads it), then by text; else by text (Unicode code points)."""
    try:
        values = np.array(list(texts), dtype=np.str_).astype(np.float64)
    except ValueError:  # a text that is not a number
        return sorted(range(len(texts)), key=lambda k: texts[k])
    return sorted(range(len(texts)), key=lambda k: (values[k], texts[k]))


def is_explainable_boosting(model) -> bool:
    """Whether ``model`` is an Explainable Boosting Machine (it has their ``exclude``)."""
    return "exclude" in model.get_params(deep=False)


def categories_as_labels(X, model=None):
    """``X`` as the Explainable Boosting Machine ``model`` (None: a default one) is to be fitted
    on it, with each unordered ``category`` column's categories as such a model would find them
    in an ``object`` column of the same values: only those the rows hold, in the order it gives
    the levels of such a column (by text, or by value when all read as numbers;
    :func:`_text_order`). Another kind of ``model`` gets ``X`` as it is.

    An Explainable Boosting Machine takes a ``category`` column's categories as they are, unused
    ones included, in their order, and bins the levels of a column of labels in an order of its
    own; boosting depends on that order. The same rows as a ``category`` with categories
    ``['a', 'b', 'c']`` or ``['c', 'a', 'b']``, or as text read from a file, would otherwise
    give different models (as another seed does), though the order of an unordered category is
    not data. Ordered categories are left as they are: the model reads them as ordinal, in
    their order, which is the user's. So is a column for which the model's ``feature_types``
    (None or one entry per column) declares something other than ``"auto"`` or ``"nominal"``
    (an ordinal one, say).

    Used where such a model is fitted; predictions do not depend on the categories' order (the
    fitted model reads a category by its text). The user's frame is left as it was; the
    values, and so the labels of the model's bins, are the user's.
    """
    if not is_frame(X) or (model is not None and not is_explainable_boosting(model)):
        return X
    feature_types = None if model is None else model.get_params(deep=False).get("feature_types")
    changed = []
    for index, dtype in enumerate(X.dtypes):
        if not isinstance(dtype, pd.CategoricalDtype) or dtype.ordered:
            continue
        if feature_types is not None:
            try:
                declared = feature_types[index]
            except (TypeError, KeyError, IndexError):
                continue  # declared otherwise than one entry per column: as the user gave it
            if declared is not None and not (
                isinstance(declared, str) and declared in ("auto", "nominal")
            ):
                continue
        column = X.iloc[:, index]
        codes = np.unique(column.cat.codes.to_numpy())
        held = dtype.categories[codes[codes >= 0]]
        # the texts of the same values in an object column: a boolean among other categories is
        # "True" there (categories all booleans read as "0" and "1" keep the same order)
        order = _text_order([category_text(value) for value in held])
        categories = held[order]
        if not categories.equals(dtype.categories):
            changed.append((index, column.cat.set_categories(categories)))
    if not changed:
        return X
    X = X.copy(deep=False)
    for index, column in changed:
        X.isetitem(index, column)
    return X


def warn_values_equal_as_text(
    X, kinds=None, name: str = "X", stacklevel: int = 2, *, reads_text: bool = True
) -> list[str]:
    """Warn about each categorical column holding distinct values that read alike as text
    (``1`` and ``"1"``, ``1.0`` and ``"1"``, from concatenated files; :func:`category_text`):
    an Explainable Boosting model bins categories by their text, so it merges them, silently. With ``reads_text=False``
    (``DistilledTree``, whose categories are values: it keeps those apart) that warning is left
    out; values that read alike and values equal but for their text are warned about for
    both. Returns the messages warned."""
    warned = []
    for index, column in _categorical_columns(X, kinds):
        try:
            values = pd.Series(column.to_numpy(dtype=object), dtype=object).dropna().unique()
        except TypeError:  # unhashable cells: the model's checks refuse them, naming why
            continue
        by_text: dict[str, list] = {}
        for value in values:
            by_text.setdefault(category_text(value), []).append(value)
        merged = [group for group in by_text.values() if len(group) > 1]
        label = repr(X.columns[index]) if is_frame(X) else f"{index}"
        # texts that read alike: white space ("M" and "M " from a CSV file, a no-break or a
        # doubled space), invisible characters, composed and decomposed accents
        padded = _read_alike(by_text)
        if padded:
            shown = "; ".join(" and ".join(repr(v) for v in group) for group in padded[:3])
            message = (
                f"{name} column {label} holds values that differ only in white space, invisible "
                f"characters or the Unicode form of their letters ({shown}): they are separate "
                "categories, and read alike in the report. Normalise them (e.g. "
                "X[col].str.normalize('NFKC').str.split().str.join(' ')) if they are the same "
                "category."
            )
            warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
            warned.append(message)
        # values equal in Python but not as text (True and 1, False and 0): the tree's
        # categories merge them, the Explainable Boosting student keeps them apart. unique()
        # merges equal values itself, so the cells are read with their types (object columns)
        by_value: dict = {}
        booleans = False
        if pd.api.types.is_object_dtype(column.dtype) and any(
            isinstance(v, numbers.Number) for v in values
        ):
            # unique() keeps the first of True and 1: the cells' types say whether both are
            # there; only a column holding booleans beside other numbers is read cell by cell
            types = set(column.dropna().map(type).unique())
            booleans = bool(types & {bool, np.bool_}) and len(types) > 1
        if booleans:
            try:
                typed = pd.unique(column.dropna().map(lambda v: (type(v).__name__, v)))
                for _, value in typed:
                    by_value.setdefault(value, set()).add(str(value))
            except TypeError:  # unhashable cells
                by_value = {}
        equal = [sorted(texts) for texts in by_value.values() if len(texts) > 1]
        if equal:
            shown = "; ".join(" and ".join(texts) for texts in equal[:3])
            message = (
                f"{name} column {label} holds values that are equal as values but not as text "
                f"({shown}, from files joined together): DistilledTree takes them for one "
                "category, the Explainable Boosting student for several. Convert the column to "
                "one type if they are the same category."
            )
            warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
            warned.append(message)
        if not merged or not reads_text:
            continue
        shown = "; ".join(" and ".join(repr(v) for v in group) for group in merged[:3])
        message = (
            f"{name} column {label} holds values that differ only in type ({shown}): the "
            "Explainable Boosting student reads categories as text, so it merges them into one "
            "category. Convert the column to one type (e.g. X[col].astype(str)) if they are "
            "the same category, or rename them if they are not."
        )
        warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
        warned.append(message)
    return warned


def _is_fresh_index(index) -> bool:
    """Whether ``index`` is the 0..n-1 ``RangeIndex`` pandas gives a new Series or frame."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def check_same_order(X, values, name: str) -> str | None:
    """Refuse pandas ``values`` (``y``, scores, groups) whose index holds X's row labels in
    another order, and warn when most of its labels are X's labels at other positions.

    Values are matched to X's rows by position, as scikit-learn does; a Series sorted or merged
    apart from X keeps its labels and loses the order, and would be misaligned silently (a
    shuffled score looked like a black box unlike the outcome on every feature). The same set
    of labels in another order is refused. A Series sliced apart from X (``X =
    frame.iloc[:-1]`` beside ``frame["score"].iloc[1:]``: 1,999 of 2,000 labels shared, each one
    row off) flagged a feature the black box weighs as the outcome does; but the same
    structure comes from correct data (``X`` rebuilt with a fresh index beside the ``y`` of a
    filtered or merged frame), so when at least ``_MOVED_SHARE`` of the values' labels are X's
    labels at other positions a warning says so. A fresh ``RangeIndex`` on ``values`` (0..n-1,
    as ``pd.Series(model.predict(X))`` has) is read by position without a word unless it holds
    exactly X's labels: it cannot be told from a Series sliced from the start of a frame.
    Repeated labels are refused when they are X's, as often each, in another sequence;
    otherwise they, and unhashable labels, are left to position.
    """
    if not is_frame(X) or not isinstance(values, pd.Series | pd.DataFrame):
        return
    mine, theirs = X.index, values.index
    if len(mine) != len(theirs) or mine.equals(theirs):
        return
    if not (mine.is_unique and theirs.is_unique):
        # repeated labels (frames joined with pd.concat): the same labels, as often each, in
        # another sequence are a sort or shuffle apart from X
        try:
            reordered = mine.sort_values().equals(theirs.sort_values())
        except TypeError:  # labels that do not sort together
            return
        if reordered:
            raise ValueError(
                f"{name} has X's row labels in its index (repeated labels), in another order: "
                "values are matched to X's rows by position (as scikit-learn does), so they "
                f"would be misaligned. Put X and {name} in one order (sort them alike, or give "
                f"both a fresh index before reordering), or pass {name}.to_numpy() if the order "
                "is right."
            )
        return
    try:
        shared = mine.intersection(theirs)
        moved = int((mine.get_indexer(shared) != theirs.get_indexer(shared)).sum())
    except TypeError:  # unhashable or incomparable labels
        return
    if len(shared) == len(mine):
        remedy = (
            # a fresh index (pd.Series(model.predict(X))) is more often right than reordered
            f"Pass {name}.to_numpy() if the order is right (values computed from X itself), "
            f"or {name}.reindex(X.index) if they were sorted apart from X."
            if _is_fresh_index(theirs)
            else f"Pass {name}.reindex(X.index), or {name}.to_numpy() if the order is right."
        )
        raise ValueError(
            f"{name} has X's row labels in its index, in another order: values are matched to "
            f"X's rows by position (as scikit-learn does), so they would be misaligned. {remedy}"
        )
    if _is_fresh_index(theirs) or moved < _MOVED_SHARE * len(theirs):
        return
    message = (
        f"{name}'s index holds {moved} of its {len(theirs)} labels as labels of other rows of "
        f"X: values are matched to X's rows by position (as scikit-learn does). If {name} was "
        "sliced or merged apart from X, they are misaligned (match them by label with "
        f"{name}.reindex(X.index)); if the order is right, pass {name}.to_numpy() to say so."
    )
    warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())
    return message


#: The share of a Series' labels that, found at other rows of X, makes check_same_order warn.
_MOVED_SHARE = 0.9


def warn_empty_columns(X, name: str = "X", stacklevel: int = 2) -> str | None:
    """Warn about each column of the fitting data with no value on any row: it carries
    nothing (the EBM then prints numpy's "All-NaN slice" from deep inside, naming no column).
    Returns the message warned (None when none)."""
    if not is_frame(X):
        return None
    empty = [str(column) for column in X.columns[X.isna().all().to_numpy()]]
    if not empty:
        return None
    message = (
        f"{name} columns {empty} have no value on any row: they carry nothing to model; drop them."
    )
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
    return message
