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

import hashlib
import numbers
import warnings

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"


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
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            floats = column.to_numpy(dtype=float, na_value=np.nan)
            # one bit pattern for every NaN, and -0.0 read as 0.0
            floats = np.where(np.isnan(floats), np.nan, floats + 0.0)
            digest.update(b"n" + floats.tobytes())
        else:
            hashed = pd.util.hash_pandas_object(column.astype(object), index=False)
            digest.update(b"o" + hashed.to_numpy().tobytes())
    return digest.hexdigest()


def warn_unseen_categories(column, unseen, consequence: str, stacklevel: int) -> None:
    """Warn that column ``column`` of X holds categories not seen at fit, and what is done with
    them (``consequence``)."""
    listed = sorted(unseen, key=repr)
    more = f" and {len(listed) - 10} more" if len(listed) > 10 else ""
    warnings.warn(
        f"X column {column!r} holds categories not seen at fit: {listed[:10]!r}{more}. "
        + consequence,
        UserWarning,
        stacklevel=stacklevel + 1,
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
    """A numeric column as floats, missing values (None, NaN, pd.NA) as NaN."""
    column = X.iloc[:, index] if is_frame(X) else pd.Series(np.asarray(X)[:, index])
    if not pd.api.types.is_numeric_dtype(column.dtype):
        column = pd.to_numeric(column.astype(object).where(column.notna(), np.nan))
    return column.to_numpy(dtype=float, na_value=np.nan)


def check_frame_columns(X, name: str = "X") -> None:
    """Refuse what the students cannot read: duplicate column names, datetime or timedelta
    columns, and cells that are lists, dicts or other containers."""
    if not is_frame(X):
        return
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(
            f"{name} must have distinct column names; got {duplicated!r} more than once."
        )
    for index, dtype in enumerate(X.dtypes):
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be numeric or categorical; got dtype "
                f"{str(dtype)!r}. Convert dates to numbers first (for example days since a "
                "reference date) or drop the column."
            )
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError(
                f"{name} column {X.columns[index]!r} must be real numbers or labels; got dtype "
                f"{str(dtype)!r}."
            )
        if pd.api.types.is_object_dtype(dtype):
            check_label_cells(X.iloc[:, index], f"{name} column {X.columns[index]!r}")


def check_label_cells(values, where: str) -> None:
    """Each cell of an object column (or array) must be a number, a label or missing."""
    for value in values:
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


def column_kinds(X) -> list[str]:
    """``"numeric"`` or ``"categorical"`` for each column of ``X`` (a frame or a 2-D array)."""
    if is_frame(X):
        kinds = []
        for index, dtype in enumerate(X.dtypes):
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            if pd.api.types.is_object_dtype(dtype):
                numeric = all(
                    (isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_))
                    or value is None
                    for value in X.iloc[:, index]
                )
            kinds.append(NUMERIC if numeric else CATEGORICAL)
        return kinds
    X = np.asarray(X)
    if X.dtype.kind in "iuf":
        return [NUMERIC] * X.shape[1]
    if X.dtype.kind == "b":
        return [CATEGORICAL] * X.shape[1]
    return [
        CATEGORICAL if any(isinstance(v, str | bool | np.bool_) for v in X[:, k]) else NUMERIC
        for k in range(X.shape[1])
    ]


def boolean_columns(X, kinds) -> list[int]:
    """Indices of the columns of ``X`` whose values are booleans: a ``bool`` or ``boolean``
    dtype, a boolean array, or an object column holding only ``True``, ``False`` and missing
    values (``kinds`` from :func:`column_kinds`: such columns are categorical).

    An Explainable Boosting Machine reads them as the numbers 0 and 1; what the user reads should
    say ``False`` and ``True``, as the data do.
    """
    booleans = []
    for index, kind in enumerate(kinds):
        if kind != CATEGORICAL:
            continue
        dtype = X.dtypes.iloc[index] if is_frame(X) else np.asarray(X).dtype
        if pd.api.types.is_bool_dtype(dtype):
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
        if is_frame(X) and pd.api.types.is_bool_dtype(dtype):
            bad = bool(column.iloc[0])
        elif pd.api.types.is_numeric_dtype(dtype):
            continue
        else:
            values = column.tolist() if is_frame(X) else list(column)
            bad = next(
                (
                    v
                    for v in values
                    if v is not None
                    and (not isinstance(v, numbers.Number) or isinstance(v, bool | np.bool_))
                ),
                None,
            )
            if bad is None:
                continue
        raise ValueError(
            f"{name} column {_column_label(X, index)} must hold numbers, as it did at fit; got "
            f"{bad!r}."
        )
