"""Student-size pilot: fidelity to the teacher against the student's complexity.

A mimic is only worth reading if it reproduces the teacher; a mimic is only readable if it is
small. :func:`student_size_pilot` fits students of growing complexity on one split and scores
their fidelity on the other, so the smallest faithful student can be chosen;
:func:`plot_student_size` draws the trade-off.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor

from sklearn_distill import _teacher
from sklearn_distill._data import is_frame, take_rows
from sklearn_distill._defaults import DEFAULT_STUDENT_PARAMS
from sklearn_distill.gam import DistilledGAM

COLUMNS = ["family", "label", "complexity", "r2", "rmse", "fit_seconds"]


def student_complexity(student) -> float:
    """Size of a fitted student: terms of an EBM, leaves of a tree, non-zero coefficients of a
    linear model (NaN for other estimators)."""
    if hasattr(student, "term_names_"):
        return float(len(student.term_names_))
    if hasattr(student, "get_n_leaves"):
        return float(student.get_n_leaves())
    if hasattr(student, "coef_"):
        return float(np.count_nonzero(student.coef_))
    if hasattr(student, "steps"):
        return student_complexity(student.steps[-1][1])
    return float("nan")


def default_ladder(X, random_state=None):
    """Students of growing size: EBMs with 0, 2, 5 and 10 pairwise interactions, and, for numeric X,
    regression trees of depth 2, 4, 6 and 8."""
    from interpret.glassbox import ExplainableBoostingRegressor

    ladder = []
    for interactions in (0, 2, 5, 10):
        params = {**DEFAULT_STUDENT_PARAMS, "interactions": interactions}
        ebm = ExplainableBoostingRegressor(**params, n_jobs=-1, random_state=random_state)
        ladder.append(("EBM", f"EBM, {interactions} pairs", ebm))
    numeric = (
        X.select_dtypes(include="number").shape[1] == X.shape[1]
        if is_frame(X)
        else np.asarray(X).dtype.kind in "biuf"
    )
    if numeric:
        for depth in (2, 4, 6, 8):
            tree = DecisionTreeRegressor(max_depth=depth, random_state=random_state)
            ladder.append(("tree", f"tree, depth {depth}", tree))
    return ladder


def student_size_pilot(
    teacher,
    X,
    *,
    teacher_scores=None,
    y=None,
    students=None,
    test_size=0.25,
    random_state=None,
    verbose=False,
    **gam_params,
):
    """Fit students of growing complexity and measure their held-out fidelity.

    Parameters
    ----------
    teacher : fitted estimator, callable or None
        As for :class:`~sklearn_distill.DistilledGAM`; queried once on all of ``X``.
    X : array-like or DataFrame of shape (n_samples, n_features)
        The transfer set, split into a fitting part and a held-out part.
    teacher_scores : array-like, default=None
        Precomputed teacher outputs on ``X`` (needed when ``teacher`` is None).
    y : array-like, default=None
        Labels, for ``calibration`` in ``gam_params``.
    students : list of (family, label, regressor), default=None
        The ladder; by default :func:`default_ladder`.
    test_size : float, default=0.25
        Share of rows held out to measure fidelity.
    random_state : int or None, default=None
        Seeds the split and the default students.
    verbose : bool, default=False
        Print one line per student as it is fitted.
    **gam_params
        Further :class:`~sklearn_distill.DistilledGAM` parameters (``response``,
        ``calibration``, ``temperature``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per student: ``family, label, complexity, r2, rmse, fit_seconds`` (plus
        ``agreement`` and ``auc`` for classifier teachers), fidelity on the held-out rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2))
    >>> ladder = [("tree", f"depth {d}", DecisionTreeRegressor(max_depth=d)) for d in (1, 3)]
    >>> table = student_size_pilot(None, X, teacher_scores=X[:, 0], students=ladder)
    >>> table["complexity"].tolist()
    [2.0, 8.0]
    """
    n_samples = X.shape[0]
    response = gam_params.get("response", "auto")
    if teacher_scores is None:
        if teacher is None:
            raise ValueError("student_size_pilot needs a teacher or teacher_scores.")
        _teacher.check_teacher(teacher)
        method = _teacher.resolve_response(teacher, response)
        teacher_scores = _teacher.query_teacher(teacher, X, method)
        if method != "predict" and response == "auto":
            gam_params["response"] = method
    scores = _teacher.check_scores(teacher_scores, n_samples)
    ladder = default_ladder(X, random_state) if students is None else students
    rows = np.arange(n_samples)
    stratify = None if y is None else np.asarray(y)
    fit_rows, test_rows = train_test_split(
        rows, test_size=test_size, random_state=random_state, stratify=stratify
    )
    X_fit, X_test = take_rows(X, fit_rows), take_rows(X, test_rows)
    y_fit = None if y is None else np.asarray(y)[fit_rows]
    records = []
    for family, label, student in ladder:
        gam = DistilledGAM(student=clone(student), random_state=random_state, **gam_params)
        start = time.perf_counter()
        gam.fit(X_fit, y_fit, teacher_scores=scores[fit_rows])
        seconds = time.perf_counter() - start
        fidelity = gam.fidelity(X_test, teacher_scores=scores[test_rows])
        complexity = np.mean([student_complexity(s) for s in gam.students_])
        records.append(
            {
                "family": family,
                "label": label,
                "complexity": complexity,
                **fidelity,
                "fit_seconds": seconds,
            }
        )
        if verbose:
            print(
                f"[pilot] {label}: complexity {complexity:g}, held-out R^2 {fidelity['r2']:.4f}, "
                f"{seconds:.1f} s",
                flush=True,
            )
    frame = pd.DataFrame.from_records(records)
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def plot_student_size(table, *, ax=None, metric="r2"):
    """Fidelity against complexity, one line per student family.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`student_size_pilot`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure by default.
    metric : str, default="r2"
        The fidelity column on the vertical axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if metric not in table.columns:
        raise ValueError(f"metric must be a column of table; got {metric!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for family, rows in table.groupby("family", sort=False):
        rows = rows.sort_values("complexity")
        ax.plot(rows["complexity"], rows[metric], marker="o", label=family)
        for _, row in rows.iterrows():
            ax.annotate(
                row["label"].split(", ")[-1],
                (row["complexity"], row[metric]),
                textcoords="offset points",
                xytext=(3, 4),
                rotation=35,
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.margins(x=0.1, y=0.15)  # room for the rotated labels
    ax.set_xlabel("student complexity (EBM terms, tree leaves)")
    ax.set_ylabel(f"held-out fidelity ({metric})")
    ax.set_title("Student-size pilot: fidelity to the teacher")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure
