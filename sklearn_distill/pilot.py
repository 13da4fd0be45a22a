"""Student-size pilot: fidelity to the teacher against the student's complexity.

A mimic is only worth reading if it reproduces the teacher; a mimic is only readable if it is
small. :func:`student_size_pilot` fits students of growing complexity on one split and scores
their fidelity on the other, so the smallest faithful student can be chosen;
:func:`student_kinds` builds a ladder across student kinds (rule trees of several leaf counts,
sparse GAMs of several term counts, the full GAM) and :func:`plot_student_size` draws the
trade-off.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

from sklearn_distill import _teacher
from sklearn_distill._data import check_same_order, is_frame, record_codes, take_rows
from sklearn_distill._defaults import DEFAULT_STUDENT_PARAMS
from sklearn_distill._validation import check_seed, fail
from sklearn_distill.gam import DistilledGAM, DistillerBase
from sklearn_distill.tree import DistilledTree

COLUMNS = ["family", "label", "complexity", "r2", "rmse", "fit_seconds"]

#: Fewer rows than this on either side of the pilot's split are warned about.
_MIN_SPLIT_ROWS = 30


def _check_test_size(test_size, n_samples: int) -> None:
    """The pilot's held-out part: a share of the rows in (0, 1) or a count of rows that leaves
    some to fit (None: scikit-learn's default share, as train_test_split reads it)."""
    constraint = f"a share of the rows in (0, 1) or a number of rows in [1, {n_samples - 1}]"
    if test_size is None:
        return
    if isinstance(test_size, bool | np.bool_) or not isinstance(test_size, numbers.Real):
        fail("test_size", constraint, test_size, TypeError)
    if isinstance(test_size, numbers.Integral):
        if not 1 <= test_size <= n_samples - 1:
            fail("test_size", constraint, test_size)
    elif not 0 < test_size < 1:  # NaN too
        fail("test_size", constraint, test_size)


def _record_strata(codes, stratify, n_records: int) -> np.ndarray:
    """Each record's most frequent class of ``stratify`` (0 for every record without it)."""
    if stratify is None:
        return np.zeros(n_records, dtype=int)
    _, classes = np.unique(stratify, return_inverse=True)
    pairs, counts = np.unique(codes * (int(classes.max()) + 1) + classes, return_counts=True)
    record, kind = np.divmod(pairs, int(classes.max()) + 1)
    # by record, most rows first: the first entry of each record is its most frequent class
    order = np.lexsort((-counts, record))
    first = np.r_[True, record[order][1:] != record[order][:-1]]
    return kind[order][first]


def _split_records(codes, stratify, test_size, random_state):
    """Fitting and held-out rows with each record (``codes``) on one side: about
    ``test_size`` of the rows held out (see :func:`student_size_pilot`'s ``groups``).

    The records are drawn in random order, within each class of ``y`` (a record's most
    frequent one) when it is given, and held out while the rows drawn stay within
    ``test_size`` of the rows (a record held out when its middle row does)."""
    n_samples, n_records = len(codes), int(codes.max()) + 1
    if n_records < 2:
        fail("groups", "at least two records, one to fit and one to hold out", "1 record")
    share = 0.25 if test_size is None else float(test_size)
    if isinstance(test_size, numbers.Integral):
        share = test_size / n_samples
    sizes = np.bincount(codes)
    strata = _record_strata(codes, stratify, n_records)
    order = check_random_state(random_state).permutation(n_records)
    held = np.zeros(n_records, dtype=bool)
    for stratum in np.unique(strata):
        drawn = order[strata[order] == stratum]
        rows = sizes[drawn]
        middle = np.cumsum(rows) - rows / 2
        held[drawn[middle <= share * rows.sum()]] = True
    # whole records on both sides: the first drawn held out, the last drawn fitted
    if not held.any():
        held[order[0]] = True
    if held.all():
        held[order[-1]] = False
    test_rows = np.flatnonzero(held[codes])
    fit_rows = np.flatnonzero(~held[codes])
    held_share = len(test_rows) / n_samples
    if abs(held_share - share) > 0.1:
        # few records, or one record holding many of the rows: whole records cannot make it
        warnings.warn(
            f"student_size_pilot holds out {len(test_rows)} of {n_samples} rows "
            f"({held_share:.0%}) for test_size={test_size!r}: the {n_records} records in "
            "groups, each kept on one side, come no nearer to it.",
            UserWarning,
            stacklevel=3,
        )
    return fit_rows, test_rows


def student_complexity(student) -> float:
    """Size of a fitted student: terms of an EBM (or of a DistilledGAM), leaves of a tree (or
    of a DistilledTree), non-zero coefficients of a linear model (NaN for other estimators)."""
    if isinstance(student, DistilledTree):
        return float(student.tree_.get_n_leaves())
    if isinstance(student, DistillerBase):
        return float(np.mean([student_complexity(s) for s in student.students_]))
    if hasattr(student, "term_names_"):
        return float(len(student.term_names_))
    if hasattr(student, "get_n_leaves"):
        return float(student.get_n_leaves())
    if hasattr(student, "coef_"):
        return float(np.count_nonzero(student.coef_))
    if hasattr(student, "steps"):
        return student_complexity(student.steps[-1][1])
    return float("nan")


def student_kinds(
    leaf_counts=(2, 4, 8, 16, 32), max_terms=(1, 2, 4, 8), full_gam=True, random_state=None
):
    """A ladder across student kinds: :class:`~sklearn_distill.DistilledTree` rule sets of
    several leaf counts, sparse :class:`~sklearn_distill.DistilledGAM` s of several term counts
    and the full GAM, for :func:`student_size_pilot`.

    Parameters
    ----------
    leaf_counts : sequence of int, default=(2, 4, 8, 16, 32)
        ``max_leaf_nodes`` of the trees.
    max_terms : sequence of int, default=(1, 2, 4, 8)
        ``max_terms`` of the sparse GAMs (counts above the full GAM's terms are skipped by the
        pilot).
    full_gam : bool, default=True
        Add the GAM with every term.
    random_state : int or None, default=None

    Returns
    -------
    list of (family, label, estimator)

    Examples
    --------
    >>> [label for _, label, _ in student_kinds(leaf_counts=(4,), max_terms=(2,))]
    ['tree, 4 leaves', 'GAM, 2 terms', 'GAM, all terms']
    """
    ladder = [
        (
            "rule tree",
            f"tree, {k} leaves",
            DistilledTree(max_leaf_nodes=k, random_state=random_state),
        )
        for k in leaf_counts
    ]
    ladder += [
        (
            "sparse GAM",
            f"GAM, {k} term{'' if k == 1 else 's'}",
            DistilledGAM(max_terms=k, random_state=random_state),
        )
        for k in max_terms
    ]
    if full_gam:
        ladder.append(("GAM", "GAM, all terms", DistilledGAM(random_state=random_state)))
    return ladder


def default_ladder(X, random_state=None, n_jobs=None):
    """Students of growing size: EBMs with 0, 2, 5 and 10 pairwise interactions, and, for numeric X,
    regression trees of depth 2, 4, 6 and 8. ``n_jobs``: the EBMs' workers (``None``: every
    core, as :class:`~sklearn_distill.DistilledGAM`'s default student)."""
    from interpret.glassbox import ExplainableBoostingRegressor

    ladder = []
    for interactions in (0, 2, 5, 10):
        params = {**DEFAULT_STUDENT_PARAMS, "interactions": interactions}
        workers = -1 if n_jobs is None else n_jobs
        ebm = ExplainableBoostingRegressor(**params, n_jobs=workers, random_state=random_state)
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


def _warn_each_once(caught, stacklevel: int) -> None:
    """Give again each distinct warning (category and message) of ``caught``, once, in the
    order first seen."""
    seen = set()
    for record in caught:
        key = (record.category, str(record.message))
        if key in seen:
            continue
        seen.add(key)
        warnings.warn(record.message, stacklevel=stacklevel + 1)


def _has_strings(rows) -> bool:
    return any(isinstance(value, str) for row in rows for value in np.ravel(row))


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
    groups=None,
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
        Precomputed teacher outputs on ``X`` (needed when ``teacher`` is None); given beside
        a ``teacher``, read as its output (a classifier's probabilities as log-odds).
    y : array-like, default=None
        Labels, for ``calibration`` in ``gam_params``; when given, the split is stratified
        on them (so a class needs at least two rows).
    students : list of (family, label, estimator), default=None
        The ladder: each estimator is a regressor, fitted as the student of a
        :class:`~sklearn_distill.DistilledGAM`, or a :class:`~sklearn_distill.DistilledGAM` /
        :class:`~sklearn_distill.DistilledTree` used as it is (``gam_params`` it accepts are
        set on it, save those the ladder sets: a size, ``max_leaf_nodes`` or ``max_terms``, or
        a setting its distillers vary, which an option of another value is refused for);
        :func:`student_kinds` builds one across student kinds. By default
        :func:`default_ladder`.
    test_size : float or int, default=0.25
        Share of rows held out to measure fidelity, in (0, 1), or their number.
    random_state : int or None, default=None
        Seeds the split and the default students.
    verbose : bool, default=False
        Print one line per student as it is fitted.
    groups : array-like of shape (n_samples,), default=None
        Record identifiers, one per row of ``X`` (the same person or case entered more than
        once; any hashable values, none missing). A record's rows then stay on one side of the
        split, so that no held-out row has a copy among the fitting rows (a flexible student
        that memorises a record would otherwise read as faithful on its copy), and in one fold
        of a student's cross-fitted ``calibration`` (passed to its ``fit``). The records are
        drawn in random order (with ``y``, within each class, a record's most frequent one)
        and held out while the rows drawn stay within ``test_size`` of the rows (a share, or a
        number of rows); a warning says when whole records cannot come within 0.1 of it (few
        records, or one holding many of the rows).
        Needs at least two records.
    **gam_params
        Further :class:`~sklearn_distill.DistilledGAM` parameters (``response``,
        ``calibration``, ``temperature``, ``n_jobs``, ...); a distiller student is given those
        it takes. A name neither distiller takes is refused (``TypeError``).

    Returns
    -------
    pandas.DataFrame
        One row per student: ``family, label, complexity, r2, rmse, fit_seconds`` (plus
        ``agreement`` and ``auc`` for classifier teachers), fidelity on the held-out rows.

    Warns
    -----
    UserWarning
        Each warning of the students' fits and fidelity (a saturated teacher's probabilities,
        say) is given once per call, when the ladder is done, however many students repeat it.

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
    if not is_frame(X) and not hasattr(X, "shape"):
        # list-likes (lists of rows, tuples) become arrays, as scikit-learn estimators accept them
        X = np.asarray(X, dtype=object if _has_strings(X) else None)
    if getattr(X, "ndim", 2) != 2:
        raise ValueError(f"X must be two-dimensional (rows, features); got shape {X.shape}.")
    n_samples = X.shape[0]
    _check_test_size(test_size, n_samples)
    check_seed("random_state", random_state)
    for name, values in (("y", y), ("teacher_scores", teacher_scores), ("groups", groups)):
        check_same_order(X, values, name)
    codes = record_codes(groups, n_samples)
    _check_gam_params(gam_params)
    if students is not None:
        students = list(students)  # a generator of students is read once
    if students is not None and not students:
        raise ValueError("students must hold at least one (family, label, estimator); got [].")
    filled: set[str] = set()
    response = gam_params.get("response", "auto")
    if teacher is None and teacher_scores is None:
        raise ValueError("student_size_pilot needs a teacher or teacher_scores.")
    if teacher is not None:
        # scores given beside the teacher are read as its output, as the distillers read them
        # (a classifier's probabilities as log-odds, not as plain numbers)
        _teacher.check_teacher(teacher)
        method = _teacher.resolve_response(teacher, response)
        _teacher.warn_if_labels(teacher, response, method, stacklevel=2)
        queried = teacher_scores is None
        if queried:
            teacher_scores = _teacher.query_teacher(teacher, X, method)
            _teacher.check_class_columns(teacher, np.asarray(teacher_scores), method)
        if method != "predict" and response == "auto":
            gam_params["response"] = method
            filled = {"response"}  # the pilot's reading of the teacher, not the user's option
    # class columns labelled by class are read by label, as the distillers read them
    classes = getattr(teacher, "classes_", None)
    if classes is None and y is not None and isinstance(teacher_scores, pd.DataFrame):
        classes = _teacher.sorted_labels(y)
    teacher_scores = _teacher.align_score_columns(teacher_scores, classes)
    scores = _teacher.check_scores(teacher_scores, n_samples)
    if teacher is not None and not queried:
        # scores that are no probabilities where the teacher gives them are refused with the
        # reading that fits them, as a distiller's fit refuses them (the students, fitted
        # without the teacher, would advise response='predict', which queries its labels)
        _teacher.check_probabilities(scores, method, response, teacher)
        # scores given beside the teacher stand for it, as at a distiller's fit: labels or
        # another black box's scores in their place would be mimicked and measured silently
        own = _teacher.check_scores(
            _teacher.query_teacher(teacher, X, method), n_samples, name="the teacher's scores"
        )
        _teacher.check_scores_match_teacher(scores, own, teacher)
    if students is None:
        ladder = default_ladder(X, random_state, n_jobs=gam_params.get("n_jobs"))
    else:
        ladder = students
    rows = np.arange(n_samples)
    stratify = None if y is None else np.asarray(y)
    if stratify is not None:
        kind = type_of_target(stratify, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"y must hold class labels (the split is stratified on them); got {kind} "
                "values. Leave y out for a teacher of continuous scores."
            )
    if codes is None:
        fit_rows, test_rows = train_test_split(
            rows, test_size=test_size, random_state=random_state, stratify=stratify
        )
    else:
        fit_rows, test_rows = _split_records(codes, stratify, test_size, random_state)
    if len(test_rows) < _MIN_SPLIT_ROWS or len(fit_rows) < _MIN_SPLIT_ROWS:
        # a handful of held-out rows gives fidelities that say nothing (r2 of -180 with an AUC
        # of 1.0 on two rows), and a handful of fitting rows a ladder of one-leaf students
        warnings.warn(
            f"student_size_pilot splits {n_samples} rows into {len(fit_rows)} to fit and "
            f"{len(test_rows)} to score (test_size={test_size!r}): fewer than "
            f"{_MIN_SPLIT_ROWS} on a side, its fidelities are too noisy to rank students.",
            UserWarning,
            stacklevel=2,
        )
    X_fit, X_test = take_rows(X, fit_rows), take_rows(X, test_rows)
    y_fit = None if y is None else np.asarray(y)[fit_rows]
    varied = _varied_settings(ladder, gam_params)
    records = []
    caught = []
    try:
        # every student is fitted on the same rows, so each repeats the warnings about them (a
        # saturated teacher, categories the held-out rows add): they are recorded, under the
        # user's filters, and given once each when the ladder is done
        with warnings.catch_warnings(record=True) as caught:
            for position, entry in enumerate(ladder):
                family, label, student = _check_entry(position, entry)
                try:
                    record = _fit_student(
                        student,
                        gam_params,
                        random_state,
                        X_fit,
                        y_fit,
                        scores[fit_rows],
                        filled,
                        varied,
                        None if codes is None else codes[fit_rows],
                    )
                except _LadderError as error:
                    raise ValueError(f"students[{position}] ({label!r}): {error}") from None
                except Exception as error:
                    # a student's own failure, as raised, with a note of which one it was
                    if hasattr(error, "add_note"):  # Python 3.11+
                        error.add_note(f"raised fitting students[{position}] ({label!r})")
                    raise
                if record is None:
                    continue  # a sparse GAM as large as the full one
                gam, seconds = record
                fidelity = gam.fidelity(X_test, teacher_scores=scores[test_rows])
                complexity = student_complexity(gam)
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
                        f"[pilot] {label}: complexity {complexity:g}, held-out R^2 "
                        f"{fidelity['r2']:.4f}, {seconds:.1f} s",
                        flush=True,
                    )
    finally:
        _warn_each_once(caught, stacklevel=2)
    if not records:
        raise ValueError(
            "students gave no student to score: every one was a sparse GAM with at least as "
            "many terms as the full GAM (max_terms). Give smaller max_terms, or other students."
        )
    frame = pd.DataFrame.from_records(records)
    if "auc" in frame and len(frame) and frame["auc"].isna().all():
        warnings.warn(
            "auc is NaN for every student: the teacher puts every held-out row on one side of "
            "probability 0.5 (a rare outcome), so there are no two classes to rank, and "
            "agreement is then the share of rows the student also puts on that side; read r2 "
            "(on log-odds) instead.",
            UserWarning,
            stacklevel=2,
        )
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def _check_gam_params(gam_params):
    """Every option must be one a distiller takes: a student that lacks one is fitted without
    it, so a misspelt option would otherwise be dropped by every student, silently."""
    import difflib

    known = set(DistilledGAM().get_params(deep=False)) | set(DistilledTree().get_params(deep=False))
    known -= {"teacher", "student", "random_state"}  # random_state is the pilot's own
    if "augmentation" in gam_params:
        # the students are fitted on the teacher's scores of the split's rows, not on the
        # teacher: there is nothing to query on generated rows
        raise TypeError(
            "student_size_pilot does not take augmentation: its students are fitted on the "
            "teacher's scores of the rows, queried once, so no student can query the teacher "
            "on generated rows. Compare augmented students with DistilledGAM(augmentation=...) "
            "fitted one by one."
        )
    for name in gam_params:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"student_size_pilot got an option no distiller takes: {name!r}.{hint} "
                f"Options: {', '.join(sorted(known))}."
            )


class _LadderError(ValueError):
    """A student of the ladder that the pilot's options contradict."""


def _check_entry(position: int, entry):
    """One ``(family, label, estimator)`` of the ladder."""
    if not isinstance(entry, tuple | list) or len(entry) != 3:
        raise ValueError(
            f"students[{position}] must be a (family, label, estimator) triple, as "
            f"student_kinds() gives; got {entry!r}."
        )
    return entry


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays, estimators: only the object itself is the same
        return a is b


#: A distiller's size, which its rung of the ladder states (``"tree, 8 leaves"``, ``"GAM, all
#: terms"``) and the pilot measures: always the rung's own, even at the default value.
_SIZE_SETTINGS = frozenset({"max_leaf_nodes", "max_terms"})


def _varied_settings(ladder, gam_params) -> set:
    """The pilot's options that are the ladder's own: a size (:data:`_SIZE_SETTINGS`), or a
    setting its distillers set to more than one value (what the ladder varies). No option may
    override them, not even on a rung whose value is the default (``student_kinds(leaf_counts=
    (8,))``: 8 leaves is DistilledTree's default, and the row reads "tree, 8 leaves")."""
    distillers = [
        entry[2].get_params(deep=False)
        for entry in ladder
        if isinstance(entry, tuple | list)
        and len(entry) == 3
        and isinstance(entry[2], DistillerBase)
    ]
    varied = set(_SIZE_SETTINGS.intersection(gam_params))
    for name in gam_params:
        values = [params[name] for params in distillers if name in params]
        if any(not _same(value, values[0]) for value in values[1:]):
            varied.add(name)
    return varied


def _fit_student(
    student,
    gam_params,
    random_state,
    X_fit,
    y_fit,
    fit_scores,
    filled=(),
    varied=(),
    groups=None,
):
    """One student of the ladder fitted, and its fit time; None for a sparse GAM with as many
    terms as the full one. ``groups`` (record codes of the fitting rows) reach a student whose
    scores are calibrated, for its cross-fitting folds."""
    if isinstance(student, DistillerBase):
        shared = student.get_params(deep=False)
        defaults = type(student)().get_params(deep=False)
        for name, value in gam_params.items():
            # the ladder's own setting (its rung: max_leaf_nodes, max_terms) would be replaced,
            # and the row labelled by it describe another student; a default value is the
            # ladder's own for a size, and where the ladder varies the setting
            own = shared.get(name)
            own_setting = name in varied or not _same(own, defaults.get(name))
            if name in shared and own_setting and not _same(own, value):
                raise _LadderError(
                    f"it sets {name}={own!r}, but the pilot read the teacher with {name}="
                    f"{value!r} (the scores every student is fitted on); build it with "
                    f"{name}='auto', or give the pilot {name}={own!r}"
                    if name in filled
                    else f"it sets {name}={own!r}, which the pilot's {name}={value!r} would "
                    "override (its row would describe another student); leave "
                    f"{name} out of the pilot's options, or build the ladder with it"
                )
        settings = {k: v for k, v in gam_params.items() if k in shared}
        if shared.get("random_state") is None and random_state is not None:
            settings["random_state"] = random_state  # a seeded pilot gives the same table
        gam = clone(student).set_params(**settings)
    else:
        # a plain regressor is fitted inside a DistilledGAM, given the options it takes (those
        # of DistilledTree alone, max_leaf_nodes say, are not)
        taken = DistilledGAM().get_params(deep=False)
        options = {k: v for k, v in gam_params.items() if k in taken}
        gam = DistilledGAM(student=clone(student), random_state=random_state, **options)
    # only a calibration reads records (a distiller warns that they do nothing without one)
    records = None if gam.get_params()["calibration"] is None else groups
    start = time.perf_counter()
    try:
        gam.fit(X_fit, y_fit, teacher_scores=fit_scores, groups=records)
    except ValueError as error:
        if "max_terms must be at most" not in str(error):
            raise
        return None
    return gam, time.perf_counter() - start


# agreement: the share of rows given the teacher's class (at 0.5 for two classes, the most
# probable one for more)
METRICS = {
    "r2": "R^2 on log-odds",
    "agreement": "class agreement",
    "auc": "AUC vs teacher labels",
}


def plot_student_size(table, *, ax=None, metric=None):
    """Fidelity against complexity, one line per student family.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`student_size_pilot`.
    ax : matplotlib Axes, default=None
        Where to draw one metric; by default a new figure with one panel per metric.
    metric : str or None, default=None
        The fidelity column on the vertical axis; ``None`` draws every fidelity column the
        table has (``r2``, and ``agreement`` and ``auc`` for classifier teachers), side by side.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if metric is None:
        metrics = [m for m in METRICS if m in table.columns] if ax is None else ["r2"]
    elif metric not in table.columns:
        raise ValueError(f"metric must be a column of table; got {metric!r}.")
    else:
        metrics = [metric]
    if ax is None:
        figure = Figure(figsize=(5.2 * len(metrics), 4.4), layout="constrained")
        axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    else:
        figure, axes = ax.figure, [ax]
    labels = [_draw_metric(axis, table, name) for axis, name in zip(axes, metrics)]
    if len(metrics) > 1:
        figure.suptitle("Student-size pilot: held-out fidelity to the teacher")
    # the labels' sizes are in points, the gaps between points in data: where a label goes is
    # decided on the laid-out figure, by the labels' drawn extents
    figure.figure.draw_without_rendering()  # the root figure, also of an ax in a subfigure
    for axis, placed in zip(axes, labels):
        _place_labels(axis, placed)
    if axes[0].get_lines():  # none when no student has a size the axis can place
        legend = axes[0].legend(title="student", fontsize=8)
        for text in legend.get_texts():  # families as written: "$5-$10" is no formula
            text.set_parse_math(False)
    return figure


def _label_side(label, above: bool, leftwards: bool) -> None:
    """Put a point's label above or below it, reading away from it to the right or left."""
    label.xyann = (-3 if leftwards else 3, 4 if above else -6)
    label.set_rotation((35 if above else -35) * (-1 if leftwards else 1))
    label.set_verticalalignment("bottom" if above else "top")
    label.set_horizontalalignment("right" if leftwards else "left")


def _place_labels(ax, labels) -> None:
    """Place each ``(label, above)``: reading rightwards from its point, or leftwards when it
    would cross the axes' right edge (a label reading leftwards over a neighbouring point
    would name it); on its preferred side, or the other one where the preferred place leaves
    the axes or covers a label placed before it; where both do (an axes too small for its
    labels), on the side where the least of it lies outside or over them."""
    from matplotlib.transforms import Bbox

    box = ax.get_window_extent()

    def shared(first, second) -> float:
        common = Bbox.intersection(first, second)
        return 0.0 if common is None else common.width * common.height

    placed = []
    for label, above in labels:
        _label_side(label, above, leftwards=False)
        leftwards = label.get_window_extent().x1 > box.x1
        clashes = []
        for side in (above, not above):
            _label_side(label, side, leftwards)
            extent = label.get_window_extent()
            outside = extent.width * extent.height - shared(extent, box)
            clashes.append(outside + sum(shared(extent, other) for other in placed))
            if clashes[-1] == 0:
                break
        else:
            _label_side(label, above if clashes[0] <= clashes[1] else not above, leftwards)
        placed.append(label.get_window_extent())


def _draw_metric(ax, table, metric):
    # the size axis is logarithmic: students of size 0 (a linear model with no coefficient)
    # or of unknown size (NaN) have no place on it, and are named under the plot instead
    sizes = table["complexity"].to_numpy(float)
    unplaced = table.loc[~(sizes > 0), "label"].astype(str).tolist()
    if unplaced:
        ax.annotate(
            "not drawn (size 0 or unknown): " + ", ".join(unplaced),
            (0.0, 0.0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            fontsize=7,
            va="top",
            parse_math=False,
        )
    table = table.loc[sizes > 0]
    labels = []  # each point's label and whether it goes above the point, in drawing order
    # a family of None or NaN is a line of its own (groupby would drop its students), and a
    # family or label given as a number is named as text
    groups = table.groupby("family", sort=False, dropna=False)
    for number, (family, rows) in enumerate(groups):
        rows = rows.sort_values("complexity")
        ax.plot(rows["complexity"], rows[metric], marker="o", label=str(family))
        for _, row in rows.iterrows():
            # two students of one size ("8 terms", "8 leaves"): the higher one is labelled
            # above its point, the lower one below; otherwise families alternate
            others = table.loc[
                (table["complexity"] == row["complexity"]) & (table["family"] != family), metric
            ].dropna()
            if len(others) and row[metric] > others.max():
                above = True
            elif len(others) and row[metric] < others.min():
                above = False
            else:
                above = number % 2 == 0
            label = ax.annotate(
                str(row["label"]).split(", ")[-1],
                (row["complexity"], row[metric]),
                xytext=(0, 0),  # set by _label_side
                textcoords="offset points",
                fontsize=7,
                parse_math=False,  # labels as written: "$5 to $10" is no formula
            )
            label.set_in_layout(False)  # kept inside the axes by _place_labels
            _label_side(label, above, leftwards=False)
            labels.append((label, above))
    ax.set_xscale("log")
    ticks = []
    for size in np.unique(table["complexity"].dropna()):
        if not ticks or size >= 1.5 * ticks[-1]:  # labels of closer sizes would overlap
            ticks.append(size)
    ax.set_xticks(ticks, [f"{size:g}" for size in ticks])
    ax.minorticks_off()
    ax.margins(x=0.1, y=0.15)  # room for the rotated labels
    ax.set_xlabel("student size (GAM terms, tree leaves)")
    name = METRICS.get(metric, metric)
    if metric == "r2" and "agreement" not in table.columns:
        # a regressor's (or plain) scores are mimicked as they are, not as log-odds
        name = "R^2 on the teacher's scores"
    ax.set_ylabel(f"held-out {name}")
    ax.grid(alpha=0.3)
    return labels
