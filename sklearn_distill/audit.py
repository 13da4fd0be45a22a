"""CompareAudit: audit a black-box score by comparing a mimic of it with a model of the outcome.

Distill-and-Compare (Tan, Caruana, Hooker and Lou, AIES 2018). The auditor has *audit data*:
features ``X``, the black box's score on them and the observed outcome ``y``. Two transparent
additive models are fitted on the same rows:

* the **mimic**, a :class:`~sklearn_distill.DistilledGAM` of the score, and
* the **outcome model**, an Explainable Boosting classifier of ``y``.

**Common scale.** Both models' shape functions are in log-odds of the outcome. The mimic
regresses on the logit of the score calibrated to ``P(y = 1 | score)`` (cross-fitted, isotonic
by default, as Tan et al. fit COMPAS's decile score on the logit scale); the outcome model is a
logistic EBM. A shape that differs between them means the black box weighs a feature unlike
the data do. With ``calibration=None`` the score is mimicked as given, so it must already be in
log-odds of the outcome (a classifier teacher read with ``predict_proba`` is converted to
log-odds by the mimic itself).

**Missing features.** If the black box used information the audit data lack, both models miss
it: the mimic's residuals (score - mimic, on the mimic's log-odds scale) and the outcome
model's residuals (y - predicted probability) are then correlated. The residuals are
*cross-fitted three ways*: the rows are split into thirds, both models are fitted on each
third, and a row's mimic residual is paired with the outcome residual of a model fitted on the
*other* third, so no model saw the row it is judged on, and the two models of a pair never saw
the same rows (two models smoothing the same rows make correlated errors of their own, which
read as a missing feature). See :meth:`CompareAudit.missing_feature_test`.
"""

from __future__ import annotations

import copy
import numbers
import re
import sys
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils.validation import _num_samples, check_is_fitted

from sklearn_distill import _teacher
from sklearn_distill._calibration import (
    CALIBRATIONS,
    CLEAR_FALL_P,
    MISFIT_WARNING,
    MISFIT_WARNING_GAP,
    MISFIT_WARNING_SHARE,
    SCORE_FALLS_WARNING,
    IsotonicCalibrator,
    calibrated_probability,
    calibration_direction,
    calibration_misfit,
    check_binary_labels,
    fit_calibrator,
    misfit_message,
    parametric_form_p_value,
    score_trend,
    warn_if_score_falls,
)
from sklearn_distill._data import (
    CATEGORICAL,
    EMPTY_COLUMNS_WARNING,
    EQUAL_VALUES_WARNING,
    NAMES_ALIKE_WARNING,
    NUMBER_TEXT_WARNING,
    NUMERIC,
    SAME_ORDER_WARNING,
    TEXT_CATEGORY_WARNING,
    VALUES_EQUAL_AS_TEXT_WARNING,
    WHITE_SPACE_WARNING,
    boolean_columns,
    caller_stacklevel,
    categories_as_labels,
    check_feature_count,
    check_same_order,
    check_signaling_nans,
    column_kinds,
    fingerprint,
    is_frame,
    numeric_column,
    readable_columns,
    record_codes,
    take_rows,
    text_number_columns,
    warn_empty_columns,
    warn_names_read_alike,
    warn_numbers_from_text,
    warn_text_categories,
    warn_values_equal_as_text,
)
from sklearn_distill._defaults import default_mimic_student as default_mimic_student
from sklearn_distill._defaults import default_outcome_model as default_outcome_model
from sklearn_distill._validation import (
    check_bool,
    check_confidence,
    check_integer,
    check_n_jobs,
    check_real,
    check_regressor,
    check_seed,
    fail,
)
from sklearn_distill.gam import (
    INTERPRET_MISSING_VALUES_WARNING,
    NEW_VALUES_WARNING,
    NOT_DISTRIBUTIONS_WARNING,
    PROBABILITY_SCORES_WARNING,
    DistilledGAM,
    FrozenTeacherMixin,
    _warn_if_not_distributions,
    clear_fitted_state,
)
from sklearn_distill.shapes import (
    interaction_blocks,
    main_effect_runs,
    ordered_main_terms,
    shape_functions,
)
from sklearn_distill.stats import (
    binned_rate,
    bootstrap_correlations,
    compare_shapes,
    lacks_bands,
    resamples_needed,
    summarize_terms,
    term_stability,
    untested_terms,
)

__all__ = ["CompareAudit", "default_mimic_student", "default_outcome_model"]

#: The start of compare()'s warning about features whose values are mostly untestable.
UNTESTED_WARNING = "compare(): most rows of these features lie in values too thin to test"
#: Below this R^2 of the mimic on the audit rows, fit() warns that the mimic is not the black
#: box (a score in another row order than X gives about 0; COMPAS gives 0.57).
LOW_FIDELITY_R2 = 0.1
UNTESTED_INTERACTIONS_WARNING = (
    "compare(): most rows of these interactions lie in cells too thin to test"
)

#: Outer bags of the default models refitted on each fold. Their job is a residual, not a
#: band, and the bagged average of two bags predicts about as well as that of eight.
_FOLD_OUTER_BAGS = 2

#: Nominal features with more categories than this (the default interaction bins) are left out
#: of interaction detection.
_WIDE_CATEGORIES = 32

#: Above this share of rows in isotonic steps of observed rate 0 or 1, fit() warns (see
#: CompareAudit._warn_if_calibration_saturates).
_SATURATION_WARNING_SHARE = 0.005
#: The parametric bootstrap p-value at which a one-curve calibration map is said to miss the
#: score's relation to the outcome (``_calibration.parametric_form_p_value``; on null worlds
#: of 600 rows a sigmoid map of a score linear in log-odds was flagged in 2 of 100 at this
#: level, a cubic of the log-odds in 80 of 100: ``benchmarks/audit_one_curve_misfit.py``).
_ONE_CURVE_MISFIT_P = 0.01

#: The fewest bootstrap resamples :meth:`CompareAudit.missing_feature_test` accepts (see there).
MIN_BOOTSTRAP = 20

_X_CONSTRAINT = "an array-like or DataFrame of shape (n_samples, n_features)"


def _seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


def _with_seed(estimator, seed, n_jobs):
    """A clone of ``estimator`` with its seed (and EBM workers) set where it has them."""
    estimator = clone(estimator)
    params = estimator.get_params(deep=False)
    update = {}
    if "random_state" in params and seed is not None:
        update["random_state"] = seed
    # only an EBM's workers are set: they run its bags, which the audit schedules itself
    if "outer_bags" in params and "n_jobs" in params and n_jobs is not None:
        update["n_jobs"] = n_jobs
    return estimator.set_params(**update)


def _set_terms(estimator, terms, outer_bags=None):
    """``estimator`` (an EBM) with its interaction terms set; other estimators as given.

    ``terms`` is the number of pairs to detect (an int) together with the pairs not to
    consider, or an explicit list of pairs of feature indices.
    """
    params = estimator.get_params(deep=False)
    if "interactions" not in params:
        return estimator
    update = {}
    if isinstance(terms, tuple):  # (how many to detect, pairs excluded from detection)
        count, excluded = terms
        update["interactions"] = count
        # an exclude written as text ("mains") cannot take pairs beside it
        if excluded and "exclude" in params and not isinstance(params["exclude"], str):
            update["exclude"] = [*(params["exclude"] or []), *excluded]
    else:
        update["interactions"] = [tuple(pair) for pair in terms] if terms else 0
    if outer_bags is not None and "outer_bags" in params:
        update["outer_bags"] = min(outer_bags, params["outer_bags"])
    return estimator.set_params(**update)


def _unclear_pair(names, pair) -> str | None:
    """Why the term of ``pair`` (indices into ``names``) would be named unclearly: a feature
    name holding ``" & "`` (the separator of the pair's term name, "age & priors", where the
    audit would split it), or a term name that is a column's name; None when it is clear."""
    first, second = (names[k] for k in pair)
    if " & " in first or " & " in second:
        return f"{first if ' & ' in first else second!r} holds ' & '"
    if f"{first} & {second}" in names:
        return f"its term name {first + ' & ' + second!r} is a column's name"
    return None


#: Start of _pairs_named_unclearly's warning (a regular expression), said once by fit.
SEPARATOR_WARNING = r"X columns .* hold ' & ', the separator of interaction term names"


def _pairs_named_unclearly(names, warned=None) -> set[tuple[int, int]]:
    """The pairs whose interaction terms would be named unclearly (see :func:`_unclear_pair`):
    left out of interaction detection, with a warning naming the columns, which is appended
    to the list ``warned`` when one is given."""
    if names is None or not any(" & " in name for name in names):
        return set()  # a term name holding ' & ' needs a column name holding it
    # every pair with a column holding ' & ', and the pairs whose term is named like one
    position = {name: k for k, name in enumerate(names)}
    holding = [k for k, name in enumerate(names) if " & " in name]
    pairs = {tuple(sorted((k, j))) for k in holding for j in range(len(names)) if j != k}
    for k in holding:
        for cut in range(len(names[k])):
            if names[k].startswith(" & ", cut):
                first, second = names[k][:cut], names[k][cut + 3 :]
                if first in position and second in position and first != second:
                    pairs.add(tuple(sorted((position[first], position[second]))))
    if pairs:
        columns = sorted(name for name in names if " & " in name)
        message = (
            f"X columns {columns} hold ' & ', the separator of interaction term names: they "
            "are left out of interaction detection (and so is a pair of features whose term "
            "would be named like one of them). Rename them (e.g. 'income and assets') to let "
            "the audit pair them."
        )
        if warned is not None:
            warned.append(message)
        warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())
    return pairs


def _check_no_term_separator(names, pairs) -> None:
    """Refuse explicit pairs whose interaction terms would be named unclearly: "income &
    assets" would be split as two features where the audit reads which features a term joins,
    and a term named like a column would collide with it."""
    for pair in pairs:
        why = None if names is None else _unclear_pair(names, pair)
        if why is not None:
            raise ValueError(
                f"interactions must pair features whose term names are clear; got the pair "
                f"{tuple(names[k] for k in pair)!r}: {why} (' & ' joins the two features of "
                "an interaction term's name). Rename the column (e.g. 'income and assets')."
            )


def _interaction_pairs(model):
    """The pairs of feature indices of a fitted EBM's interaction terms (none otherwise)."""
    return [
        tuple(int(f) for f in term)
        for term in getattr(model, "term_features_", [])
        if len(term) == 2
    ]


#: Calibration maps refitted on resamples, whose spread the mimic's interaction blocks carry.
_CALIBRATION_REPLICATES = 50


def _term_cells(ebm, X, terms) -> dict[int, np.ndarray]:
    """Each row's cell (flat index into ``term_scores_[term]``) of the given terms, as the
    fitted Explainable Boosting Machine bins ``X``: a shallow copy of it holds the cells'
    numbers in place of their scores, and ``eval_terms`` reads them back (the model's own
    binning, missing and unseen values included; the fitted model is left as it was)."""
    probe = copy.copy(ebm)
    probe.term_scores_ = list(ebm.term_scores_)
    for term in terms:
        shape = np.shape(ebm.term_scores_[term])
        probe.term_scores_[term] = np.arange(np.prod(shape), dtype=float).reshape(shape)
    values = np.asarray(probe.eval_terms(X), dtype=float)
    return {term: np.rint(values[:, term]).astype(np.intp) for term in terms}


def _calibration_replicates(mimic, X, y01, scores, cv, seed, records=None):
    """How much the mimic's target moves, cell by cell of each interaction and bin by bin of
    each main effect of an ordered feature, when its calibration map is refitted on resamples
    of the rows: ``{term name: (K, *cells)}`` mean changes (see
    :func:`~sklearn_distill.shapes.interaction_blocks` and
    :func:`~sklearn_distill.shapes.main_effect_runs`), or None without a calibration or such
    terms.

    The mimic regresses on ``logit(g(score))``; ``g`` is estimated, and a flexible map
    (isotonic steps, spline wiggles) is not linear in log-odds, so its estimation error bends
    an additive score into surfaces the mimic learns as interactions, exactly, with narrow
    bands (its target has no label noise); along one feature, its error moves the mimic's
    shape over runs of hundreds of rows as much as the bags' spread or more. Each replicate refits ``g`` on a bootstrap sample
    of the size of a cross-fitting fold's training rows (records drawn whole when given),
    maps every row's score, and the change from the replicates' mean is averaged over each
    cell's rows. A cell mean moves more than the boosted surface, which shrinks, so the
    spread errs wide."""
    student = mimic.student_
    calibrator = getattr(mimic, "calibrator_", None)
    ordered = (
        set(ordered_main_terms(student, mimic._boolean_features()))
        if hasattr(student, "feature_types_in_")
        else set()
    )
    terms = [
        (index, name)
        for index, (features, name) in enumerate(
            zip(getattr(student, "term_features_", []), getattr(student, "term_names_", []))
        )
        if len(features) == 2 or name in ordered
    ]
    if calibrator is None or not terms or not hasattr(student, "eval_terms"):
        return None
    values = mimic._calibration_input(scores)
    sign = calibration_direction(calibrator)
    rng = np.random.default_rng(seed)
    members = None
    n_units = len(y01)
    if records is not None:
        # each record's rows, grouped by one sort (not one scan of the rows per record)
        _, codes = np.unique(np.asarray(records), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
        n_units = len(members)
    draw = max(2, round(n_units * (cv - 1) / cv))
    cells = _term_cells(student, X, [index for index, _ in terms])
    counts = {
        index: np.bincount(
            cells[index], minlength=int(np.prod(np.shape(student.term_scores_[index])))
        )
        for index, _ in terms
    }
    # each replicate's target averaged over each cell's rows (a mean is linear: the change from
    # the replicates' mean is taken per cell), so that no K x n array is held
    means = {index: [] for index, _ in terms}
    while len(means[terms[0][0]]) < _CALIBRATION_REPLICATES:
        chosen = rng.integers(0, n_units, draw)
        rows = chosen if members is None else np.concatenate([members[k] for k in chosen])
        if np.unique(y01[rows]).size < 2:
            continue  # a resample of one class has no map to fit
        refitted = fit_calibrator(values[rows], y01[rows], mimic.calibration, sign)
        probability = calibrated_probability(refitted, values, rows.size)
        target = _teacher.scores_to_target(
            probability, "predict_proba", mimic.temperature, mimic.proba_clip
        )
        for index, _ in terms:
            sums = np.bincount(cells[index], weights=target, minlength=counts[index].size)
            means[index].append(
                np.divide(sums, counts[index], out=np.zeros_like(sums), where=counts[index] > 0)
            )
    out = {}
    for index, name in terms:
        stacked = np.stack(means[index])
        stacked -= stacked.mean(axis=0)
        out[name] = stacked.reshape((len(stacked), *np.shape(student.term_scores_[index])))
    return out


def _record_bags(model, records, seed):
    """Bags for an Explainable Boosting ``model`` that keep each record's rows on one side
    of every bag's split into boosting and early-stopping rows (``fit(..., bags=)``: +1 to
    boost on, -1 to stop on), or None when the model is no EBM or stops on no held-out rows.

    An EBM stops boosting when its loss on a random share of the rows stops falling; with the
    copies of a record on both sides, that loss keeps falling as the model memorises the
    copies (a null world of records entered three times boosted 20,000-86,000 rounds per bag
    instead of about 530, and its shapes swung by +-4 log-odds). ``records``: one code per row
    (the rows a bootstrap sample repeats share their original row's code).
    """
    share = getattr(model, "validation_size", None)
    n_bags = getattr(model, "outer_bags", None)
    if records is None or not isinstance(n_bags, int | np.integer) or not share:
        return None
    codes, uniques = pd.factorize(pd.Series(records, dtype=object))
    n_records = len(uniques)
    if isinstance(share, float) and share < 1:
        n_held = round(share * n_records)
    else:  # a number of rows: as many records, on average
        n_held = round(float(share) * n_records / len(codes))
    n_held = min(max(n_held, 1), n_records - 1)
    rng = np.random.default_rng(seed)
    bags = np.ones((len(codes), int(n_bags)), dtype=np.int8)
    for b in range(int(n_bags)):
        held = np.zeros(n_records, dtype=bool)
        held[rng.choice(n_records, n_held, replace=False)] = True
        bags[held[codes], b] = -1
    return bags


def labels_mimicked_text(teacher) -> str:
    """What an audit says of a teacher read by its predicted labels (the mimic's own warning
    speaks of a student): one without class scores, or one of more than two classes whose
    labels ``response='predict'`` asked for."""
    scoring = [reader for reader in _teacher.CLASSIFIER_RESPONSES if hasattr(teacher, reader)]
    if scoring:
        classes = list(getattr(teacher, "classes_", ()))
        return (
            "The black box was read by its predicted labels (response='predict'): "
            f"{type(teacher).__name__}'s {len(classes)} classes were mimicked as numbers, one "
            "regression on the class ids, whose order and spacing mean nothing. The mimic "
            "learns where the label changes, not the black box's confidence, so its shapes say "
            "where the labels weigh a feature unlike the outcome, not a score. Pass its "
            f"score of the outcome's event (from its {scoring[0]}) as teacher_scores."
        )
    return (
        f"The black box was read by its predicted labels: {type(teacher).__name__} "
        "is a classifier with neither predict_proba nor decision_function, so its labels "
        "were mimicked as numbers. The mimic learns where the label changes, not the black "
        "box's confidence, so its shapes say where the labels weigh a feature unlike the "
        "outcome, not a score. Give a teacher that scores its classes (e.g. "
        "VotingClassifier(voting='soft')), or pass its scores as teacher_scores."
    )


def saturated_text(share, clip) -> str:
    """What an audit says of a black box whose probabilities are 0 or 1 on a ``share`` of the
    rows, clipped at the mimic's ``clip`` (the mimic's own warning speaks of a student and of
    its proba_clip, which the audit does not take)."""
    bound = float(np.log((1 - clip) / clip))
    return (
        f"{100 * share:.0f}% of the black box's probabilities are 0 or 1 (beyond "
        f"proba_clip={clip:g}): with no calibration their log-odds are clipped to "
        f"+-{bound:.1f}, steps larger than any the black box takes elsewhere, and the "
        "mimic's shapes follow those steps as if the black box were that certain, so a "
        "difference from the outcome model may be one of the clip alone. Calibrate the "
        "score (calibration='isotonic')."
    )


def _fit_pair(audit, X, y01, scores, seed, ebm_jobs, terms, *, fold=False, records=None):
    """Fit a mimic and an outcome model on the same rows; return both. Its mimic warns of
    none of the teacher's scores' labels or saturated probabilities: the audit's fit says
    them once, of all its rows, in the audit's terms.

    ``terms`` says which interaction pairs both models carry (see :func:`_set_terms`): when
    pairs are detected, the mimic detects them and the outcome model is given the mimic's.
    ``records`` (a code per row: the records the user named, or a bootstrap sample's copies
    of a row) keeps each record's rows together in both models' early-stopping splits
    (:func:`_record_bags`) and in the mimic's calibration folds.
    """
    rng = np.random.RandomState(seed) if seed is not None else np.random.RandomState()
    mimic_seed, outcome_seed = (_seed(rng), _seed(rng)) if seed is not None else (None, None)
    mimic = audit._make_mimic(mimic_seed, ebm_jobs, terms, fold)
    # the score's direction, decided once on all the audit's rows (a third or a bootstrap
    # sample has less power, and read the other way its calibration flattens the target)
    mimic._calibration_sign = getattr(audit, "_score_sign_", None)
    mimic._event_label = audit.classes_[1]  # the mimic is given y's 0/1 codes
    mimic._calibration_groups = records
    mimic._student_bags = _record_bags(mimic.student, records, mimic_seed)
    if mimic.calibration == "spline" and np.ndim(scores) == 1 and np.unique(scores).size < 3:
        # fit() checked the whole score; a third (or bootstrap sample) that holds only two of
        # its values is mapped by the logistic map through their two rates, which is what the
        # monotone spline reduces to there
        mimic.set_params(calibration="sigmoid")
    with warnings.catch_warnings():
        # interpret warns that its own plots hide the missing-value bin; the audit's tables and
        # pictures show that bin (value NaN), so the warning would only mislead
        warnings.filterwarnings(
            "ignore", message=INTERPRET_MISSING_VALUES_WARNING, category=UserWarning
        )
        # fit() warned once about a categorical column of nearly one level per row, and about
        # columns without a value (interpret's preprocessor then repeats numpy's "All-NaN
        # slice" for every fit, naming no column)
        warnings.filterwarnings("ignore", message=TEXT_CATEGORY_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=EMPTY_COLUMNS_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=NUMBER_TEXT_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=SAME_ORDER_WARNING, category=UserWarning)
        warnings.filterwarnings(
            "ignore", message=VALUES_EQUAL_AS_TEXT_WARNING, category=UserWarning
        )
        warnings.filterwarnings("ignore", message=WHITE_SPACE_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=EQUAL_VALUES_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=NAMES_ALIKE_WARNING, category=UserWarning)
        # fit() checks the full-data map once, on all rows
        warnings.filterwarnings("ignore", message=MISFIT_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=NOT_DISTRIBUTIONS_WARNING, category=UserWarning)
        # with calibration=None fit() said it in the audit's terms
        warnings.filterwarnings("ignore", message=_teacher.MARGINS_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=SEPARATOR_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
        # fit() says these once, of all rows, as the report does (the mimic's own words are
        # of a student); a third or a bootstrap sample would repeat them, with its own share
        # of saturated rows
        repeated_warnings = (
            _teacher.LABELS_WARNING,
            _teacher.CLASS_IDS_WARNING,
            _teacher.SATURATED_WARNING,
        )
        for repeated in repeated_warnings:
            warnings.filterwarnings("ignore", message=repeated, category=UserWarning)
        # the audit says it in its own terms (calibration=None), or calibrates the score
        warnings.filterwarnings(
            "ignore", message=re.escape(PROBABILITY_SCORES_WARNING), category=UserWarning
        )
        if np.ndim(scores) == 1 and audit.calibration is not None:
            # fit() said it once, naming the label's own value, not this mimic's 0/1 codes
            warnings.filterwarnings("ignore", message=SCORE_FALLS_WARNING, category=UserWarning)
        mimic.fit(X, y01, teacher_scores=scores)
        if isinstance(terms, tuple):
            terms = _interaction_pairs(mimic.student_)
        outcome = audit._make_outcome(outcome_seed, ebm_jobs, terms, fold)
        bags = _record_bags(outcome, records, outcome_seed)
        # an Explainable Boosting Machine: fitted alike whatever the order of an unordered
        # 'category' column's categories, as the mimic's student is
        X = categories_as_labels(X, outcome)
        if bags is None:
            outcome.fit(X, y01)
        else:
            outcome.fit(X, y01, bags=bags)
    return mimic, outcome


def _third_residuals(audit, X, y01, scores, fitted, judged, seed, pairs, records=None):
    """Residuals of both models fitted on the rows ``fitted`` (a third of the audit data),
    judged on the rows ``judged`` (the other two thirds).

    Returns the mimic's target and residual (the target is read through the mimic's own,
    cross-fitted, calibration) and the outcome model's residual, each of length n_samples,
    NaN on the rows ``fitted``.
    """
    fitted_scores = None if scores is None else scores[fitted]
    judged_scores = None if scores is None else scores[judged]
    mimic, outcome = _fit_pair(
        audit, take_rows(X, fitted), y01[fitted], fitted_scores, seed, 1, pairs, fold=True,
        records=None if records is None else records[fitted],
    )  # fmt: skip
    X_judged = take_rows(X, judged)
    target, mimic_residual, outcome_residual = np.full((3, len(y01)), np.nan)
    target[judged] = mimic.teacher_target(X_judged, judged_scores)
    with warnings.catch_warnings():
        # a rare category or a few missing values may all lie outside the fitted third: the
        # mimic then says so, about every fold, though the audit's data hold them
        warnings.filterwarnings("ignore", message=NEW_VALUES_WARNING, category=UserWarning)
        mimic_residual[judged] = target[judged] - mimic.predict(X_judged)
    outcome_residual[judged] = y01[judged] - outcome.predict_proba(X_judged)[:, 1]
    return target, mimic_residual, outcome_residual


def _cross_pairs(parts, results, n_samples):
    """The two cross pairs of every row from the three fits of one three-way split.

    Row ``i`` of third ``k`` was judged by the models of the two other thirds ``a < b``: its
    pairs are (mimic of ``a``, outcome model of ``b``) and (mimic of ``b``, outcome model of
    ``a``), a mimic and an outcome model that never saw the same row, nor row ``i``.
    Returns arrays of shape (2, n_samples): mimic residuals, outcome residuals, mimic targets.
    """
    mimic = np.empty((2, n_samples))
    outcome = np.empty((2, n_samples))
    target = np.empty((2, n_samples))
    for k in range(3):
        first, second = (t for t in range(3) if t != k)
        rows = parts[k]
        for pair, (m, o) in enumerate(((first, second), (second, first))):
            target[pair, rows] = results[m][0][rows]
            mimic[pair, rows] = results[m][1][rows]
            outcome[pair, rows] = results[o][2][rows]
    return mimic, outcome, target


#: The missing-feature test's polynomial holds at most this many columns, and at most one per
#: ten rows of the third of a split it is fitted on.
_MAX_ADJUSTMENT_COLUMNS = 200
#: Its level indicators fill the columns left up to one per two rows of the third, at most this
#: many (the least-squares fit's cost grows with their square).
_MAX_LEVEL_COLUMNS = 600
#: Knots of the spline the missing-feature test's adjustment holds of each numeric feature, at
#: most (fewer where the columns of one per ten rows of the third do not reach).
_MAX_SPLINE_KNOTS = 10
#: ... and at most one knot per this many rows of the third (less one): past the last knot a
#: truncated cubic grows fastest, and with few rows beyond it the most extreme row's leverage
#: neared 1 (0.99 with 9 rows beyond it in a third of 100).
_ROWS_PER_KNOT = 20
#: A feature's levels of one row in a third are held (their rows zeroed) while at most this
#: share of the third's rows are alone in their level.
_MAX_ONE_ROW_SHARE_HELD = 0.5


def _standardised(values):
    """``values`` (float, NaN where missing) centred and scaled, missing set to 0; None when
    no two observed values differ by more than rounding (a mean of a few equal values, say,
    which scaling would blow up into a column of rounding noise). Scaled by the largest
    magnitude first, so that values near the float range do not overflow."""
    missing = ~np.isfinite(values)
    kept = values[~missing]
    if kept.size < 2 or np.ptp(kept) == 0:
        return None
    kept = kept / np.max(np.abs(kept))
    centre, scale = kept.mean(), kept.std()
    if not scale > 8 * np.finfo(float).eps:
        return None
    z = np.zeros(values.size)
    z[~missing] = (kept - centre) / scale
    return z


def _label_of(columns, feature) -> int | None:
    """The position of the column named ``feature``: a string names a column whose label reads
    as that string; anything else (an integer) names a column with that very label (a frame
    with integer labels), else None (an integer is then a position, so ``1`` is not read as
    a column named ``"1"`` elsewhere in X)."""
    if isinstance(feature, bool | np.bool_):
        return None
    for position, label in enumerate(columns):
        if isinstance(feature, str):
            if str(label) == feature:
                return position
        elif not isinstance(label, str | bool | np.bool_) and _same_label(label, feature):
            return position
    return None


def _same_label(label, feature) -> bool:
    try:
        return bool(label == feature)
    except (TypeError, ValueError):  # labels numpy cannot compare as one truth value
        return False


def _columns_by_kind(X, *, nominal: bool = True, labelled: bool = False) -> tuple[dict, list]:
    """``X``'s numeric columns by their label (their position for an array), as floats (NaN
    where missing), booleans as 0 and 1 and numbers written as text as :func:`column_kinds`
    reads them; and (with ``nominal``) each other column's level codes (``pd.factorize``, a
    missing value a level of its own), a list, or a dict by label with ``labelled``. One
    reading of the columns' kinds for both. Booleans are 0 and 1 whatever holds them (a
    ``bool``, ``boolean`` or ``category`` dtype, or objects: a file's column of ``True`` and
    ``False`` with an empty cell is read as objects), so that the same data give the same
    reading."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf":
        return {k: column.astype(float) for k, column in enumerate(X.T)}, {} if labelled else []
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    kinds = column_kinds(frame)
    booleans = set(boolean_columns(frame, kinds))
    numeric, codes = {}, []
    for index in range(frame.shape[1]):
        if index in booleans or kinds[index] == NUMERIC:
            # numbers written as text are read as the rest of the library reads them
            numeric[frame.columns[index]] = numeric_column(frame, index)
        elif nominal:
            codes.append(
                (frame.columns[index], pd.factorize(frame.iloc[:, index], use_na_sentinel=False)[0])
            )
    return numeric, dict(codes) if labelled else [level for _, level in codes]


def _numeric_columns(X) -> dict:
    """The numeric columns of :func:`_columns_by_kind`."""
    return _columns_by_kind(X, nominal=False)[0]


def _level_indicators(nominal_codes, limit: int, held=None) -> list[np.ndarray]:
    """At most ``limit`` indicator columns of the levels of nominal features (their level codes,
    from :func:`_columns_by_kind`), each feature's most frequent level left out (the intercept
    holds it). A level of one row is held too (its row's residuals are zeroed: both models
    miss such a level alike), unless more than ``_MAX_ONE_ROW_SHARE_HELD`` of the rows are
    alone in their level (an identifier: its levels would zero most rows; then only levels of
    two rows or more). Each feature's levels are taken rarest first, the features in turn (the
    rarest level of each, then the next rarest of each, ...), so that a feature of many
    levels (a zip code) does not leave another one out. Only the columns kept are built.
    ``held``, a list, gets for each feature the number of its levels given a column, the
    number that could be (its most frequent aside), and the number of rows alone in a level
    that could not be."""
    features = []  # (codes, that feature's levels kept, rarest first, rows in one-row levels)
    for codes in nominal_codes:
        counts = np.bincount(codes)
        reference = int(np.argmax(counts))
        single = int(np.count_nonzero(counts == 1)) if counts.size > 1 else 0
        # a level of one row is held too (its row's residuals zeroed: its misfit, shared by
        # both models, leaves the correlation), unless most rows are alone in their level (an
        # identifier, whose levels would zero most of the rows)
        smallest = 1 if single <= _MAX_ONE_ROW_SHARE_HELD * codes.size else 2
        kept = sorted((int(c), k) for k, c in enumerate(counts) if k != reference and c >= smallest)
        if smallest == 1:
            single = 0
        features.append((codes, [k for _, k in kept], single))
    chosen = []  # (codes, level) in turn over the features
    given = [0] * len(features)
    for rank in range(max((len(levels) for _, levels, _ in features), default=0)):
        for f, (codes, levels, _) in enumerate(features):
            if rank < len(levels) and len(chosen) < limit:
                chosen.append((codes, levels[rank]))
                given[f] += 1
    if held is not None:
        held.extend(
            (given[f], len(levels), single) for f, (_, levels, single) in enumerate(features)
        )
    return [(codes == level).astype(float) for codes, level in chosen]


def _adjustment_basis(X, n_samples, prediction=None, left_out=None, mimic_residual=None):
    """Columns of a quadratic polynomial in the numeric features of ``X``, indicators of the
    levels of its nominal features and a cubic in ``prediction``, for the missing-feature
    test's adjustment (see :meth:`CompareAudit.missing_feature_test`).

    The prediction and each numeric column are standardised (a column's missing values set
    to its mean, with an indicator column). The polynomial comes first: intercept,
    ``prediction`` and its square and cube, linear terms, missing-value indicators, squares,
    pairwise products, at most one column per ten rows or ``_MAX_ADJUSTMENT_COLUMNS``,
    whichever is smaller (with many numeric features, the squares and products go first).
    Then the level indicators (see :func:`_level_indicators`: each feature's rarest first,
    the features in turn), as many as the remaining columns of one per two rows allow, at most
    ``_MAX_LEVEL_COLUMNS``: so a nominal feature of many levels (a zip code) takes neither the
    polynomial's place nor that of another feature's levels. ``left_out``, a dict, gets for
    each nominal feature (by label) the third's ``(levels given a column, levels that could
    be, rows alone in a level that could not be, rows)``, appended to a list (read by
    :func:`unadjusted_levels`). Given ``mimic_residual`` (a pair's mimic's residual in the
    third, ``prediction`` that mimic's prediction) and a
    prediction, :func:`_level_misfit_columns` are added, the features' pairs in turn
    while they fit in the columns left up to one per two rows. Last, a cubic spline of each
    numeric feature (:func:`_spline_columns`: truncated cubics at the feature's quantiles), in
    another budget of one column per ten rows (at most ``_MAX_ADJUSTMENT_COLUMNS``, and within
    the one per two rows), the same number of knots for every feature: at most
    ``_MAX_SPLINE_KNOTS``, and one per ``_ROWS_PER_KNOT`` rows less one. Last, so that the
    polynomial, the levels and their misfit columns are those they were without it.
    """
    polynomial_limit = min(max(1, n_samples // 10), _MAX_ADJUSTMENT_COLUMNS)
    columns = [np.ones(n_samples)]
    z = None if prediction is None else _standardised(np.asarray(prediction, dtype=float))
    standard_prediction = z
    if z is not None:
        columns += [z, z * z, z * z * z]
    linear, indicators = [], []
    numeric, nominal = _columns_by_kind(X, labelled=True)
    nominal_codes = list(nominal.values())
    for values in numeric.values():
        z = _standardised(values)
        if z is not None:
            linear.append(z)
            missing = ~np.isfinite(values)
            if missing.any():
                indicators.append(missing.astype(float))
    columns += linear + indicators

    def more():  # squares, then products, made only as far as the limit reaches
        yield from (z * z for z in linear)
        for a in range(len(linear)):
            for b in range(a):
                yield linear[a] * linear[b]

    extra = more()
    while len(columns) < polynomial_limit:
        column = next(extra, None)
        if column is None:
            break
        columns.append(column)
    columns = columns[:polynomial_limit]
    held = []  # (levels given a column, levels of two rows or more, rows alone in a level)
    levels = _level_indicators(
        nominal_codes, max(0, min(n_samples // 2 - len(columns), _MAX_LEVEL_COLUMNS)), held
    )
    if left_out is not None:
        for label, record in zip(nominal, held):
            left_out.setdefault(label, []).append((*record, n_samples))
    columns += levels
    if mimic_residual is not None and standard_prediction is not None:
        # within the same one column per two rows: two per nominal feature, past it, could
        # fit every row of a third of few rows and many features, its residuals then zero
        room = max(0, n_samples // 2 - len(columns)) // 2
        columns += _level_misfit_columns(nominal_codes[:room], mimic_residual, standard_prediction)
    # last, each numeric feature's spline, within another one column per ten rows (and the
    # one per two rows in all): the same number of knots for each feature
    room = min(polynomial_limit, max(0, n_samples // 2 - len(columns)))
    knots = 0
    if linear:
        knots = min(_MAX_SPLINE_KNOTS, room // len(linear), n_samples // _ROWS_PER_KNOT - 1)
    for z in linear:
        columns += _spline_columns(z, knots)
    return np.column_stack(columns)


def _spline_columns(z, knots) -> list[np.ndarray]:
    """Truncated cubic columns ``max(z - t, 0) ** 3`` of a standardised numeric feature ``z``
    at up to ``knots`` knots ``t``, its quantiles at ``1 / (knots + 1), ..., knots / (knots +
    1)`` (the distinct ones strictly inside its range: none for a feature of two values).
    With the polynomial's intercept, linear and square terms they span the cubic splines of
    the feature with these knots that are quadratic below the first: see
    :func:`_adjustment_basis`."""
    if knots < 1:
        return []
    cuts = np.unique(np.quantile(z, np.arange(1, knots + 1) / (knots + 1)))
    cuts = cuts[(cuts > z.min()) & (cuts < z.max())]
    return [np.maximum(z - t, 0.0) ** 3 for t in cuts]


#: What the missing-feature test says of a score that its adjustment holds whole.
SCORE_IN_ADJUSTMENT_TEXT = (
    "the missing-feature test has nothing to correlate: the score, as the mimic reads it, is "
    "a function of the audit features that the test's adjustment holds whole (a polynomial "
    "of degree two in the numeric features plus effects of the nominal features' levels, as "
    "a logistic regression's log-odds on these features are), so its residuals beyond the "
    "adjustment are zero: the score, as calibrated, uses nothing the audit data lack, and the "
    "correlations are NaN. The audit's shape and value comparisons are unaffected."
)


def unadjusted_levels(records) -> dict:
    """The nominal features whose levels the missing-feature test's adjustment could not all
    hold, from :func:`_adjustment_basis`'s records (label -> one ``(given, levels of two rows
    or more, rows in one-row levels, rows)`` per third): label -> ``(levels given a column in
    the third that left most without one, levels of two rows or more there, mean share of
    a third's rows in levels of one row)``, for a feature with levels of two rows or more left
    without a column in some third, or with rows alone in a level given none (more than
    ``_MAX_ONE_ROW_SHARE_HELD`` of a third's rows were) and some level of two rows (not a pure
    identifier, which neither model learns)."""
    found = {}
    for label, thirds in records.items():
        # the third that left most levels of two rows or more without a column
        given, levels = max(thirds, key=lambda record: record[1] - record[0])[:2]
        share = float(np.mean([record[2] / record[3] for record in thirds]))
        # a pure identifier (no level of two rows in any third) is learnt by neither model:
        # nothing shared to warn of
        repeats = any(record[1] > 0 for record in thirds)
        if given < levels or (share > 0 and repeats):
            found[label] = (given, levels, share)
    return found


def levels_unadjusted_text(left_out) -> str | None:
    """What the missing-feature test's verdict is worth when its adjustment could not hold
    every level of some nominal features (``left_out``: :func:`unadjusted_levels`); None when
    it held them all."""
    if not left_out:
        return None
    parts = []
    for label, record in left_out.items():
        given, levels = record[0], record[1]
        share = record[2]
        said = []
        if given < levels:
            said.append(f"{given} of {levels} levels held")
        if share > 0:
            said.append(f"{share:.1%} of a third's rows alone in their level")
        parts.append(f"{label!r} ({'; '.join(said)})")
    return (
        "the missing-feature test's adjustment could not hold every level of "
        f"{', '.join(parts)}: levels of one row get no column where most rows are alone in "
        f"theirs (an identifier), nor levels past {_MAX_LEVEL_COLUMNS} indicators or one "
        "column per two rows of a third, and levels too thin for "
        "models fitted on a third to learn leave the same misfit in both models' residuals, "
        "which reads as missing information (a world with nothing missing and a category of "
        "three rows a level read 0.28-0.31, p at its floor). See whether the correlation "
        "survives grouping the rare levels into one and fitting again."
    )


def _adjust(basis, values):
    """``values`` (shape (..., n_samples)) less their least-squares fit on ``basis``."""
    return _adjust_with_rank(basis, values)[0]


def _adjust_with_rank(basis, values):
    """:func:`_adjust`, and the rank of ``basis`` (the number of independent columns fitted)."""
    flat = values.reshape(-1, values.shape[-1]).T
    coefficients, _, rank, _ = np.linalg.lstsq(basis, flat, rcond=None)
    return (flat - basis @ coefficients).T.reshape(values.shape), int(rank)


def _leverage(basis):
    """The leverage of each row of ``basis``: the diagonal of its hat matrix (the sum is its
    rank). From the singular value decomposition, with the cutoff of
    :func:`numpy.linalg.lstsq` (singular values at most ``eps * max(n, k)`` times the largest
    taken for zero), so that it is the hat matrix of the fit :func:`_adjust` makes."""
    left, singular, _ = np.linalg.svd(basis, full_matrices=False)
    if singular.size:
        left = left[:, singular > np.finfo(float).eps * max(basis.shape) * singular[0]]
    return np.einsum("ij,ij->i", left, left)


#: The adjusted mimic residuals' root mean square, over the mimics' targets' spread, at or
#: below which the score is taken for a function the adjustment holds (rounding: ~1e-15)
_SCORE_IN_ADJUSTMENT = float(np.sqrt(np.finfo(float).eps))

#: ... or over the largest target's size times the machine epsilon: the rounding of fits to
#: targets far from zero, whatever their spread (a score of 1e4 to 1e12 plus a linear function
#: leaves 0.2-0.3 of that; a residual of a few units in the last place of the targets is all
#: float64 can tell of them)
_ROUNDING_OF_SIZE = 4.0

# 1 - h at or below which a row's leverage h is taken for 1: its fitted value is its own (a
# level held by that row alone) and its adjusted residuals are zero, whatever rounding leaves
_HELD_ROW = 1e-9


def _leverage_inflation(mimic, outcome, leverage):
    """The HC2 factor of one split's stacked correlation: ``sum(psi**2 / (1 - h)) /
    sum(psi**2)`` over the rows, ``psi`` a row's term of the correlation's influence function
    (its pairs summed) and ``h`` its leverage in its third's adjustment.

    ``mimic`` and ``outcome`` (shape (n_pairs, n_samples)) are the adjusted residuals
    ``a = M u`` and ``b = M v`` (``M = I - H``, ``H`` the hat matrix of the row's third;
    ``leverage`` its diagonal). With nothing missing, the mimic's residual ``u`` is a function
    of the audit features and ``v = g + e`` with noise ``e`` of mean zero given them; as
    ``M`` is symmetric and idempotent, ``sum(a * b) = sum(a * v)``, whose variance given the
    features is ``sum(a_i**2 var(e_i))`` (a row's pairs summed). The bootstrap reads each
    ``var(e_i)`` from ``b_i**2``, where ``(M e)_i`` has variance ``(1 - h_i) var(e)`` for
    noise of one variance: it understates each row's term by its own ``1 - h_i``. Dividing
    the squared influence of each row by ``1 - h_i`` (MacKinnon and White's HC2) corrects
    that row by row; the HC1 factor ``n / (n - k)`` corrects it by the mean leverage ``k /
    n`` only, which falls short where the terms are largest on rows of high leverage (a rare
    level's rows with noisy outcomes: with two-row levels three times as noisy as 20-row
    levels, the correlation's variance over noise draws was 1.50 times the bootstrap's, where
    ``n / (n - k)`` is 1.25 and this factor 1.47). The influence function of Pearson's r of
    standardised ``a``, ``b`` is ``a * b - r * (a**2 + b**2) / 2``; under the null its first
    term is the one above. A row with a leverage of 1 (its residuals zeroed) adds nothing.
    1.0 where either residual is constant."""
    a = mimic - mimic.mean()
    b = outcome - outcome.mean()
    scale_a, scale_b = np.sqrt(np.mean(a * a)), np.sqrt(np.mean(b * b))
    if not (scale_a > 0 and scale_b > 0):
        return 1.0
    a, b = a / scale_a, b / scale_b
    r = np.mean(a * b)
    psi = (a * b - 0.5 * r * (a * a + b * b)).sum(axis=0)
    squares = psi * psi
    total = squares.sum()
    if not total > 0:
        return 1.0
    free = 1.0 - leverage
    # a row alone in its held level has leverage 1 and residuals 0 (|(M v)_i| is at most
    # sqrt(1 - h_i) |v|, so its term vanishes with its leverage)
    corrected = np.divide(squares, free, out=np.zeros_like(squares), where=free > _HELD_ROW)
    return float(corrected.sum() / total)


def _level_misfit_columns(nominal_codes, mimic_residual, z) -> list[np.ndarray]:
    """Two columns per nominal feature (its level codes in a third, ``nominal_codes``): the
    mean of a pair's mimic's residual ``mimic_residual`` over the other rows of each row's level
    (0 for a row alone in its level), times the standardised prediction ``z`` and times its
    square (see :func:`_adjustment_basis`, which adds them when given a mimic's residual).

    A level's effect that both models miss is missed on two scales: the outcome model's
    probability by ``p (1 - p)`` times its log-odds miss, the mimic through its calibration
    map's slope, so the shared misfit is the level's effect times a function of the predicted
    log-odds, which the level's indicator, constant within the level, cannot hold (on a null
    world whose score is the true log-odds and an 80-level category, five rows a level in a
    third, the test rejected in 5 of 40 seeds, mean correlation +0.011; with these columns 1
    of 40, +0.000). The mean of the mimic's residual over the level's other rows stands for
    its effect: with the row's own residual in it (a level of two or three rows), the column
    would take part of the row's own correlation out (1 of 40 too, but mean +0.005). Both are
    functions of the audit features, the score and models fitted on the other thirds, none of
    the third's outcomes, so they keep the test's level."""
    columns = []
    for codes in nominal_codes:
        counts = np.bincount(codes)
        sums = np.bincount(codes, weights=mimic_residual, minlength=counts.size)
        # the mean over the level's other rows (0 for a row alone in its level): a row's own
        # residual in its column would take part of its own correlation out
        others = counts[codes] - 1
        level_mean = np.where(
            others > 0, (sums[codes] - mimic_residual) / np.maximum(others, 1), 0.0
        )
        columns += [level_mean * z, level_mean * z * z]
    return columns


def _adjusted_pairs(X, splits, mimic, outcome, target, left_out=None):
    """The cross pairs' residuals (arrays of shape (splits, 2, n_samples), as
    :func:`_cross_pairs` stacks them) adjusted for :func:`_adjustment_basis`, one third of
    each split and one pair at a time.

    The rows of a third were judged by the same models, fitted on the two other thirds, so
    a fit within the third mixes only residuals that none of its rows' outcomes helped to
    make. Fitted over all rows at once, a row's adjusted residual would take in other rows'
    residuals, and the models that judged those rows were fitted on this row: its own
    outcome noise would then enter both sides of the correlation (see
    :meth:`CompareAudit.missing_feature_test`). Each pair is adjusted for a basis of its own:
    the cubic in its own mimic's prediction, the level-misfit columns from its own mimic's
    residual. A basis shared by the two pairs, in their mimics' mean prediction, took the
    other pair's mimic into each pair's residual (adjusted, the mimic residual of the pair
    of mimic ``a`` held half the difference of the two mimics' predictions), and that mimic
    was fitted on the same rows as the pair's outcome model: what two models fitted on the
    same rows share entered the correlation. Where the score lies in the columns' span (a
    logistic regression's log-odds, read with ``calibration=None``, ``'sigmoid'`` or
    ``'temperature'``), the two pairs' adjusted mimic residuals were then exact opposites,
    the outcome's noise cancelled from the statistic and the test rejected on every null
    world tried (a bootstrap standard error of 0.001-0.005 for 0.02-0.03). ``left_out`` (a
    dict) gets each third's record of how the nominal features' levels were held, as
    :func:`_adjustment_basis` records it (read by :func:`unadjusted_levels`).

    Also returns the factor by which the fit shrinks the correlation's variance: the larger
    of the HC1 factor ``n / (n - k)`` (``n`` rows of a split, ``k`` independent columns
    fitted over its thirds, the mean of the pairs': a residual adjusted for ``k`` columns
    keeps ``n - k`` degrees of freedom, so resampling the adjusted rows as independent
    would understate the correlation's variance by about that factor, as the ordinary
    least-squares residuals understate the noise's variance) and the HC2 factor of
    :func:`_leverage_inflation` (row by row, by the rows' leverages, the mean of the pairs'),
    each the mean over the splits. HC2 is the finer one where the noise is the outcome's
    alone; the larger of the two is kept so that the variance is not read lower than the
    degrees of freedom say where that does not hold."""
    adjusted_mimic, adjusted_outcome = np.empty_like(mimic), np.empty_like(outcome)
    n_pairs = mimic.shape[1]
    hc1, hc2 = [], []
    for r, parts in enumerate(splits):
        fitted = 0.0
        leverage = np.zeros(mimic.shape[-1])
        for rows in parts:
            X_rows = take_rows(X, rows)
            for pair in range(n_pairs):
                basis = _adjustment_basis(
                    X_rows,
                    len(rows),
                    target[r][pair, rows] - mimic[r][pair, rows],
                    # the levels are held alike in both pairs (they are the features'): one record
                    left_out if pair == 0 else None,
                    mimic_residual=mimic[r][pair, rows],
                )
                both, rank = _adjust_with_rank(
                    basis, np.stack([mimic[r][pair, rows], outcome[r][pair, rows]])
                )
                held = _leverage(basis)
                # a row its fit holds alone (leverage 1) has residuals of exactly zero: rounding
                # leaves 1e-14 or so, whose order would set the rank correlations' ties by
                # chance (on the platform's linear algebra); as zeros they are ties, as in
                # Pearson's r
                both[..., 1.0 - held <= _HELD_ROW] = 0.0
                adjusted_mimic[r][pair, rows], adjusted_outcome[r][pair, rows] = both
                leverage[rows] += held / n_pairs
                fitted += rank / n_pairs
        rows_in_split = sum(len(rows) for rows in parts)
        hc1.append(rows_in_split / max(rows_in_split - fitted, 1))
        hc2.append(_leverage_inflation(adjusted_mimic[r], adjusted_outcome[r], leverage))
    return adjusted_mimic, adjusted_outcome, max(float(np.mean(hc1)), float(np.mean(hc2)))


def _check_groups(groups, n_samples):
    """Record identifiers as integer codes (:func:`record_codes`), at least 3 of them, or
    None."""
    codes = record_codes(groups, n_samples)
    if codes is not None and codes.max() + 1 < 3:
        fail(
            "groups",
            "at least 3 distinct record identifiers (the rows are split in thirds)",
            int(codes.max()) + 1,
        )
    return codes


def _bootstrap_rows(rng, n_samples, groups=None):
    """Row indices of one bootstrap sample of ``n_samples`` rows.

    Without ``groups``, ``n_samples`` rows drawn with replacement. With ``groups`` (integer
    codes ``0..k-1``, one per row, as :func:`_check_groups` gives), a cluster bootstrap: ``k``
    record identifiers drawn with replacement, and every row of each drawn record, so that a
    record's rows are in a sample all together (as often as the record was drawn) or not at all.
    """
    if groups is None:
        return rng.randint(0, n_samples, n_samples)
    order = np.argsort(groups, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(groups))[:-1])
    drawn = rng.randint(0, len(members), len(members))
    return np.concatenate([members[g] for g in drawn])


def _check_group_thirds(parts, y01, needed, groups, folds=None):
    """Each third of the cross-fitting holds ``needed`` rows of each class, and, where its score
    is calibrated over ``folds`` group-aware folds, as many records (the calibration's own
    refusal would count the records of a third, not those given)."""
    for part in parts:
        records = np.unique(groups[part]).size
        if folds is not None and records < folds:
            fail(
                "groups",
                f"records enough that each third of the cross-fitting splits into cv={folds} "
                f"calibration folds (lower cv, or give more records)",
                f"a third with {records} of the {np.unique(groups).size} records",
            )
        smallest = int(np.bincount(y01[part], minlength=2).min())
        if smallest < needed:
            fail(
                "groups",
                f"records small enough to split into thirds holding at least {needed} rows of "
                "each class",
                f"a third with {smallest} rows of one class",
            )


def _warn_if_repeated_rows(X, scores, y01, share=0.05):
    """Warn when ``share`` or more of the rows repeat another row exactly; returns ``(rows that
    repeat another, rows)`` then (the report's caveat of the missing-feature test), else None."""
    if hasattr(X, "toarray"):  # sparse: refused with its own message when the models fit
        return None
    try:
        frame = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        columns = [frame, pd.Series(y01)]
        if scores is not None:
            columns.append(pd.DataFrame(np.asarray(scores).reshape(len(y01), -1)))
        repeated = pd.concat(columns, axis=1, ignore_index=True).duplicated(keep=False)
    except (TypeError, ValueError, NotImplementedError):  # odd cells: nothing to say
        return None
    if repeated.mean() < share:
        return None
    warnings.warn(
        f"{int(repeated.sum())} of {len(repeated)} rows ({100 * repeated.mean():.0f}%) repeat "
        "another row exactly (features, score and label). If some are the same record "
        "entered more than once, pass fit(..., groups=record_ids): a record in two thirds "
        "of the cross-fitting makes the missing-feature test report a missing feature too "
        "readily. Distinct cases that happen to be identical need nothing.",
        UserWarning,
        stacklevel=3,
    )
    return int(repeated.sum()), len(repeated)


#: Above this (rank correlation, normalised correlation ratio or Cramér's V), two audited features
#: are said to share their effects.
_COLLINEAR = 0.9

#: Pairs with a category times rows above which they are measured on a sample of the rows.
_PAIR_ROWS = 20_000_000


#: A numeric feature this rank-correlated with the score is taken for a copy of it.
_SCORE_COPY = 0.99


def _score_copies(X, scores) -> tuple[dict, set]:
    """Features of ``X`` that are copies of the (one-dimensional) score: numeric ones up to a
    monotone map, ``|Spearman| >= 0.99`` (:func:`_nominal_score_copies` for the others), or,
    for a two-valued score, any feature whose value fixes it (:func:`_two_valued_score_copies`);
    name -> figure, and the names of the nominal ones among them."""
    if hasattr(X, "toarray") or scores is None:
        return {}, set()
    score = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 else scores
    if score.ndim != 1:
        return {}, set()
    values = np.unique(score[np.isfinite(score)])
    if values.size < 2:
        return {}, set()
    try:
        numeric = _numeric_columns(X)
    except (TypeError, ValueError):  # cells the models refuse, with their own message
        return {}, set()
    if values.size == 2:
        return _two_valued_score_copies(X, score == values[1], np.isfinite(score), numeric)
    ranked = pd.Series(score).rank()
    copies = {}
    for label, values in numeric.items():
        column = pd.Series(values)
        if column.nunique() < 3:
            continue
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            rho = column.rank().corr(ranked)
        if np.isfinite(rho) and abs(rho) >= _SCORE_COPY:
            copies[str(label)] = float(rho)
    nominal = _nominal_score_copies(X, score, set(numeric))
    copies.update(nominal)
    return copies, set(nominal)


def _nominal_score_copies(X, score, numeric: set, *, normalised: bool = False) -> dict:
    """Nominal features of ``X`` (categories, text) of which the score is a function: the
    correlation ratio of the score's ranks over their levels, ``eta = sqrt(between / total)
    >= 0.99`` (on ranks, as the numeric check's Spearman: deciles of a skewed score held as
    text score as deciles held as numbers do), with three levels or more and at least five
    rows per level on average (an identifier column, one level per row, explains any score
    and is not a copy): name -> eta. ``normalised``: :func:`_banding` instead (eta^2 over the
    largest its levels' sizes allow), which also reads three "Low"/"Mid"/"High" bands of a
    continuous score as a banding; a dominant category whose levels do not overlap on the
    score (a grade that explains nearly all of it) reads the same, so only the command line's
    listing, which asks, uses it."""
    if not isinstance(X, pd.DataFrame):
        return {}
    finite = np.isfinite(score)
    ranks = pd.Series(score[finite]).rank().to_numpy()
    total = float(np.var(ranks)) * ranks.size
    if total <= 0:
        return {}
    copies = {}
    for label in X.columns:
        if label in numeric:
            continue
        codes = pd.factorize(X[label], use_na_sentinel=False)[0][finite]
        codes = np.unique(codes, return_inverse=True)[1]  # the levels these rows hold
        levels = int(codes.max()) + 1 if codes.size else 0
        if levels < 3 or levels * 5 > codes.size:
            continue
        figure = _banding(ranks, codes) if normalised else _correlation_ratio(ranks, codes)
        if figure >= _SCORE_COPY:
            copies[str(label)] = figure
    return copies


def _score_copy_measure(scores) -> str:
    """How :func:`_score_copies` measured the copies of these scores: ``"share"`` for a
    two-valued score, ``"correlation"`` otherwise."""
    if scores is None:
        return "correlation"
    score = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 else scores
    finite = score[np.isfinite(score)] if score.ndim == 1 else score
    return "share" if score.ndim == 1 and np.unique(finite).size == 2 else "correlation"


def _two_valued_score_copies(X, event, finite, numeric: dict) -> tuple[dict, set]:
    """Features of ``X`` (numeric or nominal, a missing value a level of its own) whose value
    fixes a two-valued score (``event``: which rows hold its larger value), whatever the two
    values are called: each of the feature's levels mapped to the score value most of its
    rows hold, the share of each score value's rows that this map gives is ``>= 0.99`` for
    both (so a rare score value is not outweighed by the common one, and a feature that merely
    goes with the score is no copy), with at least five rows per level on average (an
    identifier fixes any score) and the rows of levels under five rows counted as not fixed.
    Name -> the smaller of the two shares, and the names of the nominal ones among them."""
    event = event[finite]
    counts = np.array([np.sum(~event), np.sum(event)])
    if counts.min() == 0:
        return {}, set()
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    copies, nominal = {}, set()
    for position, label in enumerate(frame.columns):
        key = label if isinstance(X, pd.DataFrame) else position
        column = numeric[key] if key in numeric else frame.iloc[:, position]
        codes = pd.factorize(column, use_na_sentinel=False)[0][finite]
        codes = np.unique(codes, return_inverse=True)[1]  # the levels these rows hold
        levels = int(codes.max()) + 1 if codes.size else 0
        if levels < 2:
            continue
        share = 0.0
        if levels * 5 <= codes.size:  # else an identifier, which fixes any score
            ones = np.bincount(codes, weights=event, minlength=levels)
            zeros = np.bincount(codes, minlength=levels) - ones
            says_one = ones > zeros  # the score value most of each level's rows hold
            # a level of fewer than five rows fixes nothing: each distinct value of a
            # mostly-zero number would otherwise "fix" the score on its one row
            thick = ones + zeros >= 5
            fixed = np.array([zeros[~says_one & thick].sum(), ones[says_one & thick].sum()])
            share = float((fixed / counts).min())
        if key in numeric:  # or a threshold of the number (however many values it takes)
            share = max(share, _best_cut_share(column[finite], event))
        if share >= _SCORE_COPY:
            copies[str(key)] = share
            if key not in numeric:
                nominal.add(str(key))
    return copies, nominal


def _best_cut_share(values: np.ndarray, event: np.ndarray) -> float:
    """How well one cut of a number separates a two-valued score: over the cuts between its
    distinct values (missing values on either side), and both directions, the largest of the
    smaller share of each score value's rows on its side. 1 for ``flag = points >= 60``."""
    values = np.asarray(values, dtype=float)
    best = 0.0
    for missing_high in (False, True):
        filled = np.where(np.isnan(values), np.inf if missing_high else -np.inf, values)
        order = np.argsort(filled, kind="stable")
        ordered, flags = filled[order], event[order].astype(float)
        ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])  # last row of a value
        ones_below = np.cumsum(flags)[ends]
        zeros_below = (ends + 1) - ones_below
        n_ones, n_zeros = flags.sum(), flags.size - flags.sum()
        # zeros below the cut and ones above it, or the other way round
        up = np.minimum(zeros_below / n_zeros, (n_ones - ones_below) / n_ones)
        down = np.minimum(ones_below / n_ones, (n_zeros - zeros_below) / n_zeros)
        best = max(best, float(np.max(up)), float(np.max(down)))
    return best


def _warn_if_collinear(X, threshold=_COLLINEAR, limit=5) -> str | None:
    """Warn when features of ``X`` nearly determine each other: numeric ones rank-correlated
    (``|Spearman| > threshold``), a nominal one whose levels cut a numeric one's ranks into
    intervals (:func:`_banding`: ``age`` and an ``age_band`` held as text, whatever the
    bands' sizes), or two nominal ones, one of which determines the other (Cramér's V: a
    relabelling, or a city and its state). The two models can split a shared effect between such features
    differently (``benchmarks/audit_null_worlds.py``). Nominal features of more levels than a
    fifth of the rows (identifiers) are left out, as in :func:`_nominal_score_copies`.
    Returns the pairs as the warning lists them (None when there are none), for the report."""
    if hasattr(X, "toarray") or len(X) == 0:
        return None
    try:
        numeric, nominal = _columns_by_kind(X, labelled=True)
    except (TypeError, ValueError):  # cells the models refuse, with their own message
        return None
    pairs = []  # (name, name, figure, measure)
    columns, ranks = [], None
    if numeric:
        ranks = np.column_stack(
            [pd.Series(values).rank().to_numpy() for values in numeric.values()]
        )
        with warnings.catch_warnings():  # an all-missing column has no mean: left out below
            warnings.simplefilter("ignore", RuntimeWarning)
            ranks = np.where(np.isnan(ranks), np.nanmean(ranks, axis=0), ranks)
        # five rows or more off the commonest value: one odd row of two near-constant columns
        # is no shared effect
        kept = np.array(
            [
                column.size - np.unique(column, return_counts=True)[1].max() >= 5
                for column in ranks.T
            ]
        )
        columns = [label for label, keep in zip(numeric, kept) if keep]
        ranks = ranks[:, kept]
    if len(columns) >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.corrcoef(ranks, rowvar=False)
        upper = np.triu(np.abs(rho) > threshold, k=1)
        pairs += [
            (columns[a], columns[b], rho[a, b], "Spearman") for a, b in zip(*np.nonzero(upper))
        ]
    n_rows = len(X)
    # numbers of a few values (a yes/no flag held as a number, codes) meet a category by
    # Cramér's V, as another category: the normalised correlation ratio of a tied number reads
    # a category that merely holds all its ones (every defaulter among the "subprime") as 1
    few = [position for position in range(len(columns)) if np.unique(ranks[:, position]).size < 10]
    coded = {columns[p]: np.unique(ranks[:, p], return_inverse=True)[1] for p in few}
    spread = [p for p in range(len(columns)) if p not in few]
    # the pairs with a category, on a fixed sample of rows in a very wide or long X: each
    # costs a few passes over the rows (about 1 ms at 50,000), hundreds of columns make
    # tens of thousands of pairs, and these figures need no more rows to be told apart
    n_pairs = len(nominal) * (len(columns) + len(nominal))
    rows = slice(None)
    if n_pairs and n_pairs * n_rows > _PAIR_ROWS:
        keep = max(_PAIR_ROWS // n_pairs, 2_000)
        if keep < n_rows:
            rows = np.sort(np.random.default_rng(0).choice(n_rows, keep, replace=False))
    sampled = {label: codes[rows] for label, codes in nominal.items()}
    n_sampled = len(next(iter(sampled.values()))) if sampled else n_rows
    # a category of two levels or more, each of two of them on five rows or more (one odd row
    # of two near-constant columns is no shared effect), that is not an identifier, on the
    # rows measured
    levels = {}
    for label, codes in sampled.items():
        codes = np.unique(codes, return_inverse=True)[1]  # the levels these rows hold
        counts = np.bincount(codes)
        if 2 <= counts.size <= n_sampled / 5 and int(np.sort(counts)[-2]) >= 5:
            levels[label] = codes
    names = list(levels)
    # ties broken at random (fixed seed): a category holding every non-zero row of a
    # mostly-zero number and some zeros is no banding of it; "non-zero" itself still is
    tie_rng = np.random.default_rng(0)
    distinct = {}
    for p in spread:
        values = ranks[rows, p]
        order = np.lexsort((tie_rng.random(values.size), values))
        untied = np.empty(values.size)
        untied[order] = np.arange(values.size)
        distinct[p] = untied
    ordered = np.arange(float(n_sampled))  # every untied column, sorted
    for label in names:
        for position in spread:
            banding = _banding(distinct[position], levels[label], ordered)
            # and the levels explain a fair share of the number (a rare level in its top
            # tail among other rows has a high banding and a correlation ratio of 0.2)
            if banding > threshold and _correlation_ratio(distinct[position], levels[label]) >= 0.5:
                pairs.append((columns[position], label, banding, "normalised correlation ratio"))
        for other, codes in coded.items():
            v = _cramers_v(codes[rows], levels[label])
            if v > threshold:
                pairs.append((other, label, v, "Cramér's V"))
    for a, first in enumerate(names):
        for second in names[a + 1 :]:
            v = _cramers_v(levels[first], levels[second])
            if v > threshold:
                pairs.append((first, second, v, "Cramér's V"))
    if not pairs:
        return None
    pairs.sort(key=lambda pair: -abs(pair[2]))
    listed = ", ".join(
        f"{a!r} and {b!r} ({r:.2f}{'' if kind == 'Spearman' else ', ' + kind})"
        for a, b, r, kind in pairs[:limit]
    )
    more = f" and {len(pairs) - limit} more pairs" if len(pairs) > limit else ""
    warnings.warn(
        f"X holds strongly correlated features (Spearman's correlation above {threshold}; "
        "for a category, how nearly its levels cut a numeric feature into intervals, the "
        "normalised correlation ratio, or "
        f"Cramér's V with another category): {listed}{more}. The mimic and the outcome model "
        "can split a shared effect between such features differently, so compare() may flag "
        "a value of one while their sum agrees (on generated worlds with nothing to find and "
        "three numeric features correlated at 0.95, 6 of 60 audits flagged some value, "
        "against 5%). "
        "Read their shapes together.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
    return listed + more


def _warn_if_no_bands(**models) -> None:
    """Warn when an Explainable Boosting model can give no confidence bands (fewer than 2
    outer bags, or no validation share, so that every bag saw every row): compare() then
    has no standard error for any value and tests none, after the whole fit."""
    for name, model in models.items():
        params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
        bags, share = params.get("outer_bags"), params.get("validation_size")
        if isinstance(bags, numbers.Integral) and bags < 2:
            why = f"outer_bags={bags}"
        elif isinstance(share, numbers.Real) and share == 0:
            why = "validation_size=0 (every bag sees every row)"
        else:
            continue
        warnings.warn(
            f"{name}={type(model).__name__}({why}) gives no confidence bands, so compare() "
            "and compare_interactions() can test no value (their differences come without "
            "a standard error); fit it with at least 2 outer bags and a validation share "
            "(outer_bags >= 2, validation_size > 0).",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def _correlation_ratio(values: np.ndarray, codes: np.ndarray) -> float:
    """``eta = sqrt(between / total)`` of ``values`` over the levels ``codes`` (0..k-1)."""
    counts = np.bincount(codes)
    held = counts > 0
    means = np.bincount(codes, weights=values)[held] / counts[held]
    total = float(np.sum((values - values.mean()) ** 2))
    between = float(np.sum(counts[held] * (means - values.mean()) ** 2))
    return float(np.sqrt(min(between / total, 1.0))) if total > 0 else 0.0


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of two level-code columns (0 when either has one level). The chi-squared
    statistic from the non-empty cells only, ``n (sum n_ij^2 / (n_i n_j) - 1)``: memory in
    the rows, not in the product of the level counts."""
    rows, cols = int(a.max()) + 1, int(b.max()) + 1
    if min(rows, cols) < 2:
        return 0.0
    cells, counts = np.unique(a.astype(np.int64) * cols + b, return_counts=True)
    row_totals, col_totals = np.bincount(a, minlength=rows), np.bincount(b, minlength=cols)
    n = float(a.size)
    ratio = counts.astype(float) ** 2 / (row_totals[cells // cols] * col_totals[cells % cols])
    chi2 = n * (float(ratio.sum()) - 1.0)
    levels = min(int((row_totals > 0).sum()), int((col_totals > 0).sum()))
    if levels < 2:
        return 0.0
    return float(np.sqrt(max(chi2, 0.0) / (n * (levels - 1))))


def _banding(values: np.ndarray, codes: np.ndarray, ordered: np.ndarray | None = None) -> float:
    """How nearly the levels ``codes`` (0..k-1, each held) cut ``values`` into intervals (the
    normalised correlation ratio):
    the correlation ratio's ``eta^2 = between / total`` divided by the largest it can be for
    levels of these sizes, which contiguous blocks of the sorted values reach (the levels
    taken in the order of their means); 1 for a banding of the values whatever the bands'
    sizes (two bands at the median: eta 0.87, banding 1), 0 when the levels' means agree."""
    counts = np.bincount(codes)
    grand = float(values.mean())
    means = np.bincount(codes, weights=values) / counts
    between = float(np.sum(counts * (means - grand) ** 2))
    order = np.argsort(means, kind="stable")
    block = np.repeat(np.arange(counts.size), counts[order])
    ordered = np.sort(values) if ordered is None else ordered  # values sorted (given: reused)
    best_means = np.bincount(block, weights=ordered) / counts[order]
    best = float(np.sum(counts[order] * (best_means - grand) ** 2))
    return min(between / best, 1.0) if best > 0 else 0.0


def _single_level_features(X):
    """Indices of the columns of ``X`` with one level or none (a constant, or missing on
    every row; missing counts as a level of its own): no interaction to find with them, and an
    all-missing one has no block to compare (none for input the mimic will refuse)."""
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X) if isinstance(X, np.ndarray | list | tuple) else None
        if array is None or array.ndim != 2:
            return []
        frame = pd.DataFrame(array)
    single = []
    for index, (_, column) in enumerate(frame.items()):
        try:
            levels = column.nunique(dropna=True) + int(column.isna().any())
        except TypeError:  # unhashable cells: the mimic's checks refuse them, naming why
            return []
        if levels < 2:
            single.append(index)
    return single


def _wide_features(X, max_cells):
    """Indices of the nominal columns of ``X`` with more than ``max_cells`` categories (none for
    input the mimic will refuse: its own checks then say why)."""
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X) if isinstance(X, np.ndarray | list | tuple) else None
        if array is None or array.ndim != 2 or array.dtype.kind not in "biufOUSb":
            return []
        if array.dtype.kind in "biuf":
            return []  # numbers are binned as continuous features
        frame = pd.DataFrame(array.astype(object))
    wide = []
    # numbers written as text are continuous features, as the models read them
    kinds = column_kinds(frame)
    for index, (_, column) in enumerate(frame.items()):
        if kinds[index] == CATEGORICAL:
            try:
                count = column.nunique(dropna=True)
            except TypeError:  # unhashable cells: the mimic's checks refuse them, naming why
                return []
            if count > max_cells:
                wide.append(index)
    return wide


#: Names the swapped view of a teacher does not take from it (scikit-learn's protocol).
_VIEW_OWN_NAMES = frozenset({"get_params", "set_params", "fit", "fit_transform", "partial_fit"})


class _EventColumnTeacher:
    """A binary classifier teacher read with its two classes swapped, so that its column 1 (its
    ``classes_[1]``, which a mimic reads as the event) is y's event: the audit's view of a
    teacher whose classes are y's labels in the other order. Its probabilities' columns are
    swapped and a one-column margin is negated; the teacher itself is untouched."""

    def __init__(self, teacher):
        self.teacher = teacher

    @property
    def classes_(self):
        return np.asarray(self.teacher.classes_)[::-1]

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        return np.asarray(self.teacher.predict_proba(X), dtype=float)[:, ::-1]

    def decision_function(self, X):
        margin = np.asarray(self.teacher.decision_function(X), dtype=float)
        return -margin if margin.ndim == 1 else margin[:, ::-1]

    def __getattr__(self, name):
        # anything else public (predict, feature_names_in_, ...) is the teacher's own; not the
        # private and protocol names (clone, get_params): this view is not the teacher
        if name == "teacher" or name.startswith("_") or name in _VIEW_OWN_NAMES:
            raise AttributeError(name)
        return getattr(self.teacher, name)


#: Parameters that do not change what a refit of the audit's models gives.
_NOT_REFIT_SETTINGS = frozenset({"n_jobs", "verbose", "confidence", "min_weight"})


def _refit_settings(audit) -> dict:
    """The parameters a refit reads, with the student's and outcome model's own (``student__``
    ...): a nested estimator by its class and parameters, not by identity (an equal clone is
    the same setting, the same object changed in place is not)."""
    settings = {}
    for name, value in audit.get_params(deep=True).items():
        if name.split("__")[0] in _NOT_REFIT_SETTINGS:
            continue
        if hasattr(value, "get_params") and not isinstance(value, type):
            value = type(value)  # its parameters are listed apart (deep=True)
        elif isinstance(value, dict | list | set):
            value = copy.deepcopy(value)  # a container changed in place is a change
        settings[name] = value  # others as they are (a RandomState by identity)
    return settings


def _setting_changed(before, now) -> bool:
    """Whether a parameter differs from its value at fit (an estimator by identity)."""
    if before is now:
        return False
    try:
        return bool(before != now)
    except (TypeError, ValueError):  # values that do not compare to one bool (arrays)
        return True


def _same_class(a, b) -> bool:
    """Whether two class labels are the same label (``1`` and ``True`` are, ``1`` and ``"1"``
    are not)."""
    if isinstance(a, str) != isinstance(b, str):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


#: A score is plainly not log-odds when it takes at most this many distinct whole-number values
#: (a grade, a decile) ...
FEW_SCORE_VALUES = 20
#: ... or when a tenth of its values lie beyond this many log-odds (a probability of 1 - 2e-9,
#: beyond what a fitted model gives its rows).
LOG_ODDS_BOUND = 20.0


def score_unlike_log_odds(scores):
    """Why a one-column score looks unlike log-odds of an outcome, or None: it takes at most
    ``FEW_SCORE_VALUES`` distinct whole-number values (a grade, a decile: a probability's
    log-odds vary continuously), or a tenth of its values lie beyond +-``LOG_ODDS_BOUND`` (a
    points scale). A score in [0, 1] is left to the probability check."""
    scores = np.asarray(scores, dtype=float)
    finite = scores[np.isfinite(scores)]
    if finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1):
        return None
    values = np.unique(finite)
    if values.size <= FEW_SCORE_VALUES and np.all(values == np.round(values)):
        return (
            f"take only {values.size} distinct whole-number values ({values.min():g} to "
            f"{values.max():g}), as a grade or a decile does, not the continuous values of "
            "log-odds"
        )
    if np.quantile(np.abs(finite), 0.9) > LOG_ODDS_BOUND:
        return (
            f"run from {finite.min():g} to {finite.max():g}, a tenth of them beyond "
            f"+-{LOG_ODDS_BOUND:g}: far beyond the log-odds a model gives (20 is a probability "
            "of 1 - 2e-9)"
        )
    return None


class CompareAudit(FrozenTeacherMixin, BaseEstimator):
    """Audit a black-box score: a GAM mimic of the score against a GAM of the outcome.

    Parameters
    ----------
    teacher : fitted estimator, callable or None, default=None
        The black box, if it can be queried (see :class:`DistilledGAM`); usually ``None``, with
        its scores on the audit data passed to :meth:`fit` as ``teacher_scores``.
    response : {"auto", "predict", "predict_proba", "decision_function"}, default="auto"
        How the teacher is read, or the scores understood (see :class:`DistilledGAM`):
        ``"predict_proba"`` and ``"decision_function"`` outputs are put on the log-odds scale
        before calibration or mimicking; ``"auto"`` reads plain scores.
    calibration : {"isotonic", "sigmoid", "temperature", "spline", None}, default="isotonic"
        How the score is mapped to ``P(y = 1 | score)`` before it is mimicked on the log-odds
        scale (cross-fitted on the audit data). Isotonic suits a score with few distinct values
        (deciles, points). Each isotonic step of m rows with k positives is read as the
        empirical logit's rate ``(k + 1/2) / (m + 1)``, so the pure steps at the ends of a
        continuous score (observed rate 0 or 1) get finite log-odds set by their size rather
        than by a clip (which gave a few rows log-odds of +-8 and heavy-tailed residuals that
        made the missing-feature test reject too often). The mimic still follows those steps
        (``fit`` warns when they hold many rows): for a continuous score use ``"spline"``
        (Tan et al.'s smooth monotone map: a logistic spline whose smoothness is raised until
        it is monotone; it needs 3 distinct score values). ``"sigmoid"`` and
        ``"temperature"`` assume the score is linear in the outcome's log-odds: a score that
        ranks rows exactly by risk but is another monotone function of it (``g**3 + g`` of the
        true log-odds ``g``) is then mimicked as that function of an additive risk, whose
        interactions and bends the outcome lacks: on null worlds of 1,200 rows interaction
        blocks were flagged in 18 of 22 audits with ``"sigmoid"``, 1 of 20 with isotonic and
        0 of 10 with spline, and the binned misfit check warned in 1 of the 22. ``fit`` now
        also tests a one-curve map's form (a parametric bootstrap of the deviance an isotonic
        map gains over it, warning at p <= 0.01): 80 of 100 such worlds of 600 rows warned
        (38 of 40 at 1,200 rows), and 2 of 100 whose score was linear in log-odds
        (``benchmarks/audit_one_curve_misfit.py``). A score that falls
        as risk rises is detected (negative rank correlation with ``y`` at p < 0.01) and mapped
        by a decreasing function, with a warning; one that falls too weakly for that is read
        as a risk score (rising), with a warning. ``None`` mimics the score as given: use it only
        for a score already in log-odds of the outcome (``fit`` warns when every score lies
        in [0, 1], as a probability's do, and the report's findings then say that the score was
        read on its own scale and the mimic's R^2 is of that scale: read those with
        ``response="predict_proba"``, or calibrate them) of the event ``classes_[1]``, the second of ``y``'s sorted labels
        (``fit`` warns when the score falls as that event becomes likelier: it then scores the
        other label, and every shape would be compared with the wrong sign; so it does for two
        class columns and for a queried teacher). A queried classifier teacher is read for
        that event by its class label: one of its two classes must be ``y``'s event or its
        other label (matched by value, else as text: ``"1"`` for ``1``), else ``fit`` refuses
        it, as its event cannot be matched. A teacher whose classes are in the other order is
        read with its columns swapped (``mimic_.teacher`` is then a view of it that swaps them;
        other attributes are the teacher's own).
    interactions : int or list of pairs, default=10
        Pairwise interaction terms of both models (GA2Ms, as Tan et al. fit): an integer is how
        many pairs to detect (interpret's FAST ranking, run once, on the full-data mimic: the
        black box's score is noise-free, so its interactions are found most reliably there,
        and choosing them without the labels keeps the outcome model's residuals free of
        selection); a list gives the pairs itself, as pairs of feature names or column
        positions (an integer is a column's label when X has a column of that very label, as
        integer labels are, else a position: ``1`` is not the column named ``"1"``). Both models then carry the *same* pairs, so their terms line up and
        :meth:`compare` can compare them; the fold refits reuse the pairs instead of detecting
        them again. ``0`` gives main effects only. Pairs with a nominal feature of more
        categories than the interaction bins (32) are not detected: their cells hold a few rows
        each and cannot be read, and they cost most of the fit time (COMPAS's charge
        description). A main-effect audit misreads a black box with interactions: both
        main-effect models miss the interaction, their residuals correlate, and the
        missing-feature test reports a missing feature that is not missing. Applies to
        Explainable Boosting models (those with an ``interactions`` parameter), given or
        default; other estimators are fitted as given.
    min_weight : float, default=10
        Values (bins, interaction cells) held by fewer training rows are shown by
        :meth:`compare` but never flagged, and left out of the Benjamini-Hochberg families: a
        bin of a handful of rows has a shape estimate, and a bag spread, too noisy for the
        normal-theory test (on COMPAS, 18% of single-row values were flagged at a nominal 5%).
    monotone_constraints : dict or None, default=None
        ``{feature: +1 or -1}``, passed to the mimic (:class:`DistilledGAM`): the mimic's
        shape of each such feature is kept monotone.
    cv : int, default=5
        Folds of the score's cross-fitted calibration (stratified on ``y``).
    n_crossfits : int, default=3
        Repeats of the three-way cross-fitting behind the missing-feature test, each on a new
        random (stratified) split of the rows into thirds: both models are fitted
        ``3 * n_crossfits`` times each, on a third of the rows. The test's statistic averages
        over the repeats, which steadies it against the models' own fitting noise, and the
        repeats' spread is added to the bootstrap's variance (a resample of the rows holds the
        fitted models fixed: with one split, the bootstrap standard error was 22% below the
        statistic's spread over seeds on generated worlds, ``benchmarks/README.md``).
    confidence : float, default=0.95
        Level of the shape bands, of the significance of shape differences and of the
        missing-feature intervals.
    random_state : int, RandomState instance or None, default=None
        Seeds the models, the folds and the bootstrap.
    n_jobs : int or None, default=None
        joblib workers for the folds, refits and bootstrap resamples (``-1``: all cores;
        ``None``: one, unless inside a ``joblib.parallel_config`` context -- which is how a
        Dask or Ray backend takes over). The two full-data fits give ``n_jobs`` to the EBMs'
        bags instead (one worker when ``None``).
    student : regressor or None, default=None
        The mimic's student, cloned. ``None`` gives :func:`default_mimic_student`.
    outcome : classifier or None, default=None
        The outcome model, cloned; it must be an Explainable Boosting classifier for
        :meth:`compare`, and should bin features as the student does (same ``max_bins``).
        ``None`` gives :func:`default_outcome_model`.
    verbose : int or bool, default=0
        Above 0 (or True), progress goes to standard error: one line per step, and joblib's
        own lines as folds and refits finish. ``None`` is 0; anything else is refused.

    Attributes
    ----------
    mimic_ : DistilledGAM
        The mimic, fitted on all rows.
    outcome_ : ExplainableBoostingClassifier
        The outcome model, fitted on all rows.
    classes_ : ndarray of shape (2,)
        The outcome's labels; the second is the event whose log-odds are modelled.
    interaction_pairs_ : list of tuple
        The pairs of features of both models' interaction terms, as ``interactions`` takes
        them: a frame's column labels as given (names that are not strings too), an array's
        column indices.
    fit_settings_ : dict
        The parameters the fit used (``response``, ``calibration``, ``cv``, ``n_crossfits``,
        ``random_state``), as given: what the report states, whatever ``set_params`` changed
        after the fit (refit to apply new ones; :meth:`stability` refuses to refit with
        settings changed since).
    score_copies_ : dict
        Features that are copies of the score, warned about at fit (the audit then compares
        the score with itself): numeric ones up to a monotone map (``|Spearman| >= 0.99``),
        nominal ones (categories, text) whose levels fix the score (correlation ratio ``>=
        0.99``, three levels or more and five rows per level on average, so an identifier
        column is not taken for one); for a two-valued score (a yes/no flag), any feature
        whose value fixes it up to relabelling (each of its levels mapped to the score value
        most of its rows hold, that map gives ``>= 0.99`` of each score value's rows, five rows
        per level on average), the figure the smaller of the two shares; name -> that figure.
        Empty when none.
    fidelity_ : dict
        How faithful the mimic is: :meth:`DistilledGAM.fidelity` on the audit data (in
        sample: ``"r2"``, ``"rmse"``, ``"agreement"``, ``"auc"``), and ``"r2_out_of_fold"``
        and ``"rmse_out_of_fold"``, the R^2 and the RMSE on each row of the mean prediction
        of the ``2 * n_crossfits`` cross-fitted mimics that did not see it (each fitted on a
        third of the rows; an average of several models, it can exceed the in-sample
        ``"r2"``).
    mimic_residuals_ : ndarray of shape (n_samples,)
        Out-of-fold ``mimic target - mimic prediction`` (log-odds), averaged over the
        ``2 * n_crossfits`` cross-fitted mimics that did not see the row.
    outcome_residuals_ : ndarray of shape (n_samples,)
        Out-of-fold ``y - P(y = 1)``, averaged over the cross-fitted outcome models that did
        not see the row. The correlation of these two averages is *not* the missing-feature
        test's statistic: an average mixes a mimic and an outcome model fitted on the same
        rows, the pairing the test avoids.
    crossfit_residuals_ : dict
        ``"mimic"`` and ``"outcome"``: arrays of shape (n_crossfits, 2, n_samples), each row's
        two cross pairs in each repeat (pair ``p`` of repeat ``r`` is ``mimic[r, p]`` against
        ``outcome[r, p]``, models fitted on different thirds), before the test's adjustment.
    calibration_table_ : pandas.DataFrame or None
        Observed outcome rate per score value (:func:`~sklearn_distill.stats.binned_rate`),
        when the score is one-dimensional or a binary classifier's two class probabilities
        (then by the positive class's).
    calibration_curve_ : pandas.DataFrame or None
        The fitted calibration map (``score``, ``probability``) on a grid of scores.
    missing_feature_test_ : pandas.DataFrame
        Set by :meth:`missing_feature_test`.
    stability_ : pandas.DataFrame
        Set by :meth:`stability`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Every :meth:`fit` starts afresh: it drops what an earlier fit and the analyses after it
    left (``missing_feature_test_``, ``stability_``, and ``feature_names_in_`` when the new
    ``X`` has no column names).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from interpret.glassbox import (ExplainableBoostingClassifier,
    ...                                 ExplainableBoostingRegressor)
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    >>> hidden = rng.normal(size=600)  # a feature the audit data lack
    >>> logit = X["a"] + hidden
    >>> y = (rng.uniform(size=600) < 1 / (1 + np.exp(-logit))).astype(int)
    >>> score = logit + 0.3 * rng.normal(size=600)  # the black box saw `hidden`
    >>> small = dict(outer_bags=4, max_rounds=300, interactions=0, max_bins=64)
    >>> audit = CompareAudit(cv=3, random_state=0,
    ...     student=ExplainableBoostingRegressor(**small, learning_rate=0.1),
    ...     outcome=ExplainableBoostingClassifier(**small, learning_rate=0.05))
    >>> audit = audit.fit(X, y, teacher_scores=score)
    >>> test = audit.missing_feature_test(n_bootstrap=200)
    >>> bool(test.loc["pearson", "low"] > 0)
    True
    """

    def __init__(
        self,
        teacher=None,
        *,
        response="auto",
        calibration="isotonic",
        interactions=10,
        min_weight=10,
        monotone_constraints=None,
        cv=5,
        n_crossfits=3,
        confidence=0.95,
        random_state=None,
        n_jobs=None,
        student=None,
        outcome=None,
        verbose=0,
    ):
        self.teacher = teacher
        self.response = response
        self.calibration = calibration
        self.interactions = interactions
        self.min_weight = min_weight
        self.monotone_constraints = monotone_constraints
        self.cv = cv
        self.n_crossfits = n_crossfits
        self.confidence = confidence
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.student = student
        self.outcome = outcome
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # the outcome is binary: estimator checks then generate two-class targets
        tags.classifier_tags = ClassifierTags(multi_class=False)
        if self.student is None and self.outcome is None:
            tags.input_tags.allow_nan = True
            tags.input_tags.categorical = True
            tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ progress
    def _progress(self, message):
        if self.verbose:
            print(f"[CompareAudit] {message}", file=sys.stderr, flush=True)

    @property
    def _joblib_verbosity(self):
        # joblib prints a line per finished task from verbosity 10 on
        return 10 if self.verbose else 0

    # ------------------------------------------------------------------ construction
    def _make_mimic(self, seed, ebm_jobs, terms, fold=False):
        student = (
            default_mimic_student(seed, ebm_jobs)
            if self.student is None
            else _with_seed(self.student, seed, ebm_jobs)
        )
        bags = _FOLD_OUTER_BAGS if fold and self.student is None else None
        mimic = DistilledGAM(
            # calibration=None: the teacher read with y's event as its column 1 (see fit)
            getattr(self, "_mimic_teacher_", self.teacher),
            response=getattr(self, "_mimic_response_", self.response),
            calibration=self.calibration,
            student=_set_terms(student, terms, bags),
            random_state=seed,
            n_jobs=ebm_jobs,
            cv=self.cv,
            monotone_constraints=self.monotone_constraints,
            # the outcome model sees every row, so must the mimic: a subsample would give the
            # student other bins, and compare() matches the two models' shapes bin by bin
            max_samples=None,
        )
        # teacher_scores beside a teacher are compared with it once, by the audit's fit
        mimic._teacher_scores_checked = True
        return mimic

    def _make_outcome(self, seed, ebm_jobs, terms, fold=False):
        if self.outcome is None:
            bags = _FOLD_OUTER_BAGS if fold else None
            return _set_terms(default_outcome_model(seed, ebm_jobs), terms, bags)
        return _set_terms(_with_seed(self.outcome, seed, ebm_jobs), terms)

    def _resolve_terms(self, X):
        """The interaction terms of the full-data fit: ``[]``, an explicit list of pairs of
        column indices, or ``(count, excluded pairs)`` for detection."""
        names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        shape = np.shape(X) if names is None else (len(X), len(names))
        n_features = shape[1] if len(shape) == 2 else 0
        value = self.interactions
        if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
            count = check_integer("interactions", value, minimum=0)
            if count == 0 or n_features < 2:
                return []
            # wide nominal columns (too many cells to compare) and columns of one level
            left_out = {*_wide_features(X, _WIDE_CATEGORIES), *_single_level_features(X)}
            excluded = {tuple(sorted((w, j))) for w in left_out for j in range(n_features)}
            excluded |= _pairs_named_unclearly(names, self._data_cautions_)
            return count, sorted(pair for pair in excluded if pair[0] != pair[1])
        known = names if names is not None else f"column indices 0..{n_features - 1}"
        constraint = (
            f"a non-negative integer or a list of pairs of distinct features of X ({known})"
        )
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            fail("interactions", constraint, value, TypeError)
        pairs = []
        for pair in value:
            if isinstance(pair, str | bytes) or not isinstance(pair, Iterable):
                fail("interactions", constraint, value, TypeError)
            pair = tuple(pair)
            indices = []
            for feature in pair:
                if names is not None and _label_of(X.columns, feature) is not None:
                    indices.append(_label_of(X.columns, feature))
                elif (
                    isinstance(feature, numbers.Integral)
                    and not isinstance(feature, bool | np.bool_)
                    and 0 <= feature < n_features
                ):
                    indices.append(int(feature))
                else:
                    fail("interactions", constraint, value)
            if len(indices) != 2 or indices[0] == indices[1]:
                fail("interactions", constraint, value)
            if tuple(sorted(indices)) not in {tuple(sorted(p)) for p in pairs}:
                pairs.append(tuple(indices))  # (a, b) and (b, a) are one term
        _check_no_term_separator(names, pairs)
        return pairs

    def _check_params(self):
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {CALIBRATIONS}; got {self.calibration!r}."
            )
        check_integer("cv", self.cv, minimum=2)
        check_integer("n_crossfits", self.n_crossfits, minimum=1)
        check_seed("random_state", self.random_state)
        check_n_jobs("n_jobs", self.n_jobs)
        check_confidence(self.confidence)
        # False/True or a level (0, 1, 2, ...): anything else would switch progress on unasked
        if self.verbose is not None and not isinstance(self.verbose, bool | np.bool_):
            check_integer("verbose", self.verbose, minimum=0)
        if isinstance(self.interactions, numbers.Integral) and not isinstance(
            self.interactions, bool | np.bool_
        ):
            check_integer("interactions", self.interactions, minimum=0)
        elif isinstance(self.interactions, bool | np.bool_ | numbers.Real):
            fail(
                "interactions",
                "a non-negative integer or a list of pairs of features",
                self.interactions,
                TypeError,
            )
        check_real("min_weight", self.min_weight, minimum=0)
        if self.outcome is not None and not hasattr(self.outcome, "predict_proba"):
            raise TypeError(
                "outcome must be a classifier with predict_proba (an Explainable Boosting "
                f"classifier for compare()); got {type(self.outcome).__name__}."
            )
        if self.student is not None:
            check_regressor("student", self.student, target="the black box's log-odds")
        _warn_if_no_bands(student=self.student, outcome=self.outcome)

    def _check_y(self, y, n_samples):
        y = check_binary_labels(
            y,
            n_samples,
            missing="CompareAudit requires y to be passed, but the target y is None: give the "
            "observed outcome on the audit data.",
            needed_for="the audit",
        )
        classes = np.unique(y)
        return classes, (y == classes[1]).astype(int)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, *, teacher_scores=None, groups=None):
        """Fit the mimic and the outcome model, and their out-of-fold residuals.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The audit data's features; DataFrames may hold categorical columns and missing
            values. A categorical column with nearly one level per row, or of text that reads
            as numbers (``"$43,165"``, ``"12,5"``, ``"7%"``), is warned about: as a category it
            carries little information, and the missing-feature test would read what it lost
            as information the audit data lack.
        y : array-like of shape (n_samples,)
            The observed binary outcome.
        teacher_scores : array-like of shape (n_samples,) or (n_samples, 2), default=None
            The black box's score on ``X``; needed unless ``teacher`` can be queried. Two
            columns are a binary classifier's class scores (``response="predict_proba"`` or
            ``"decision_function"``), column ``k`` that of ``classes_[k]``, ``y``'s sorted
            labels, as scikit-learn orders ``predict_proba``: column 1 is the event's; a
            DataFrame whose columns are labelled by the classes, or numbered 0 and 1 in the other
            order (``pd.DataFrame(proba)[[1, 0]]``), is read by label. More columns are
            refused (the outcome is binary). Given beside a ``teacher``, they are
            compared with the teacher's own scores on ``X`` (one query) and refused when they
            differ beyond rounding (on some row by more than 1% of the teacher's range of
            scores, or half the step of the decimals they are written to where that is at most
            5% of the range): they are then another black box's. ``y``,
            ``teacher_scores`` and ``groups`` are matched to X's rows by position, as
            scikit-learn does; a pandas one whose index holds X's labels in another order is
            refused (reindex it with ``.reindex(X.index)``), one whose labels are mostly
            labels of other rows of X is warned about.
        groups : array-like of shape (n_samples,), default=None
            Record identifiers: rows with the same identifier (the same person or case
            entered twice) are kept together wherever labels are used out of fold: in the
            same third of the missing-feature test's cross-fitting, as scikit-learn's group
            splitters do, on one side of both models' early-stopping splits (Explainable
            Boosting Machines'), and in one fold of the mimic's cross-fitted calibration
            (whose folds must then each be fitted on rows of both classes). A record repeated
            in two thirds lets a model fitted on one copy predict the other, which correlates
            the residuals and makes the test report a missing feature too readily; one in two
            calibration folds gives a row a target made from its copy's label; one on both
            sides of an early-stopping split lets boosting run on as it memorises the copies.
            Without
            ``groups``, a warning is given when 5% or more of the rows repeat another row
            exactly (features, score and label): identical rows may be distinct people
            (common with few, coarse features) or the same record twice, which only the
            auditor can tell. Pass the same identifiers to :meth:`stability`, whose
            bootstrap then resamples whole records.

        Returns
        -------
        self : CompareAudit
        """
        clear_fitted_state(self)
        self._check_params()
        if self.teacher is None and teacher_scores is None:
            raise ValueError(
                "teacher_scores (the black box's score on X) are required when no teacher is "
                "given to query."
            )
        if X is None:
            fail("X", _X_CONSTRAINT, X, TypeError)
        try:
            n_samples = _num_samples(X)
        except TypeError:
            fail("X", _X_CONSTRAINT, X, TypeError)
        check_feature_count(X)
        check_signaling_nans(X)
        # what fit warned of the data, for the report's findings (each qualifies them all)
        self._data_cautions_ = []
        for name, values in (("y", y), ("teacher_scores", teacher_scores), ("groups", groups)):
            _teacher.refuse_column_name(values, name)
        for name, values in (("y", y), ("teacher_scores", teacher_scores), ("groups", groups)):
            self._data_cautions_.append(check_same_order(X, values, name))
        n_labels = _length(y)
        if n_labels is not None and n_labels != n_samples:
            raise ValueError(
                f"X and y must have one row per audit case each; got {n_samples} rows in X and "
                f"{n_labels} in y."
            )
        if n_samples < 2 * self.cv:
            raise ValueError(
                f"cv={self.cv} folds need at least {2 * self.cv} rows; X has {n_samples} sample(s)."
            )
        self.classes_, y01 = self._check_y(y, n_samples)
        # the label's name, for the report ("two_year_recid = 1", not "1")
        name = getattr(y, "name", None) if isinstance(y, pd.Series) else None
        self._outcome_name = None if name is None else str(name)
        # a score taken uncalibrated that clearly falls with the event (set where it is read)
        self._taken_score_falls_ = None
        # a calibrated score that falls too weakly to be read as falling (set where it is read)
        self._weak_fall_ = None
        smallest = int(np.bincount(y01).min())
        # each third of the rows is fitted on its own, its score calibrated with cv folds
        needed = 3 * (self.cv if self.calibration is not None else 1)
        if smallest < needed:
            raise ValueError(
                f"y has only {smallest} rows of one class; the audit needs at least {needed} "
                "(the missing-feature test fits both models on each third of the rows"
                + (
                    f", and each third's calibration has cv={self.cv} folds)."
                    if needed > 3
                    else ")."
                )
            )
        scores = None
        margins_unlike_log_odds = None
        # class probabilities whose rows do not sum to 1 (fit warned), for the report
        self._not_distributions_ = None
        if teacher_scores is not None:
            teacher_scores = _teacher.align_score_columns(teacher_scores, self.classes_)
            scores = _teacher.check_scores(teacher_scores, n_samples)
            self._check_score_columns(scores)
            _check_score_is_not_label(scores, y01, self.classes_)
            if scores.ndim == 2 and self.response == "predict_proba":
                self._not_distributions_ = _warn_if_not_distributions(
                    scores, "teacher_scores", stacklevel=3
                )
            self._warn_if_probabilities(scores, "teacher_scores")
            if scores.ndim == 1 and self.calibration is not None:
                # decided once, on all rows: every refit of the mimic takes it
                # a weak fall is warned of and read as rising all the same (the report
                # says so beside it). Decided on the score the mimic's calibration reads, as
                # a teacher's queried score is: a probability as its clipped log-odds, where
                # the probabilities beyond the clip tie (read as given, their order could
                # set a direction that the calibrated map cannot follow)
                reader = self._make_mimic(None, 1, [])
                response = _teacher.resolve_response(reader.teacher, reader.response)
                # scores that are no probabilities where they are read as such are refused
                # with the reading that fits them, as the mimic's fit refuses them
                _teacher.check_probabilities(scores, response, reader.response, reader.teacher)
                self._score_sign_, self._weak_fall_ = warn_if_score_falls(
                    reader._calibration_input(scores, response),
                    y01,
                    self.calibration,
                    self.classes_[1],
                )
            elif self.calibration is None:
                self._warn_if_taken_score_falls(self._event_score(scores), y01, scores.ndim)
            if self.calibration == "spline" and np.unique(scores).size < 3:
                raise ValueError(
                    "calibration='spline' needs a score with at least 3 distinct values; got "
                    f"{np.unique(scores).size}. Use calibration='sigmoid' or 'isotonic'."
                )
        else:
            self._mimic_teacher_, self._mimic_response_ = self._event_teacher()
            method = _teacher.resolve_response(self.teacher, self.response)
            if (
                self.calibration is None
                and method == "decision_function"
                and not _margins_are_log_odds(self.teacher, X)
            ):
                # what the report says of the scale the mimic is on (set after the query)
                margins_unlike_log_odds = (
                    f"are {type(self.teacher).__name__}'s decision_function margins, not its "
                    "log-odds"
                )
                warnings.warn(
                    f"calibration=None reads the teacher's decision_function margins as "
                    f"log-odds of the outcome, and {type(self.teacher).__name__}'s are not its "
                    "log-odds (it has no predict_proba, or a sigmoid of its margins is not its "
                    "predict_proba): they are on a scale of their own (an SVM's, say), so "
                    "compare() would read a difference of scale as a difference in how the "
                    "features are weighed. Use a calibration (the default 'isotonic', or "
                    "'sigmoid') unless the margins are log-odds.",
                    UserWarning,
                    stacklevel=2,
                )
        groups = _check_groups(groups, n_samples)
        # rows repeating another exactly, without record identifiers: a caveat of the
        # missing-feature test in the report (None when under 5% or groups were given)
        self._repeated_rows_ = (
            None if groups is not None else _warn_if_repeated_rows(X, scores, y01)
        )
        readable, kinds = readable_columns(X)
        if readable is not None:  # else the mimic's checks say why they cannot read it
            self._data_cautions_.append(
                warn_numbers_from_text(text_number_columns(readable, kinds))
            )
        self._data_cautions_ += warn_text_categories(X, kinds, stacklevel=2)
        self._data_cautions_.append(warn_empty_columns(X, stacklevel=2))
        self._data_cautions_ += warn_values_equal_as_text(X, kinds, stacklevel=2)
        self._data_cautions_.append(warn_names_read_alike(X, stacklevel=2))
        self._data_cautions_ = [text for text in self._data_cautions_ if text]
        # features that nearly determine each other: a caveat of the flags in the report
        self._collinear_features_ = _warn_if_collinear(X)
        # the settings this fit used, for what is said of it later (report): set_params after
        # fit changes the parameters, not the fitted models
        params = self.get_params(deep=False)
        self.fit_settings_ = {
            name: params[name]
            for name in ("response", "calibration", "cv", "n_crossfits", "random_state")
        }
        # what the refits of stability() read, to refuse them once set_params changed it: the
        # parameters, and those of the student and outcome models (changed in place too)
        self._fit_params = _refit_settings(self)
        rng = check_random_state(self.random_state)
        seeded = self.random_state is not None
        main_seed = _seed(rng) if seeded else None

        # the full-data pair gives its workers to the EBMs' bags
        self._progress(f"fitting the mimic and the outcome model on {n_samples} rows")
        ebm_jobs = 1 if self.n_jobs is None else self.n_jobs
        terms = self._resolve_terms(X)
        self.mimic_, self.outcome_ = _fit_pair(
            self, X, y01, scores, main_seed, ebm_jobs, terms, records=groups
        )
        # what the full-data mimic found of the black box's scores, said in the audit's terms
        # and kept for the report: its labels mimicked as numbers, or its probabilities at 0
        # or 1 clipped into steps
        self._labels_mimicked_ = bool(getattr(self.mimic_, "_labels_mimicked_", False))
        share = getattr(self.mimic_, "_saturated_share_", 0.0)
        self._saturated_share_ = share if share > _teacher.SATURATION_WARNING_SHARE else None
        if self._labels_mimicked_:
            warnings.warn(labels_mimicked_text(self.teacher), UserWarning, stacklevel=2)
        if self._saturated_share_ is not None:
            warnings.warn(saturated_text(share, self.mimic_.proba_clip), UserWarning, stacklevel=2)
        queried = None
        if scores is None:
            # before the cross-fits: a teacher that memorised these rows gives the label as
            # its score (X is checked by the mimic's fit by now)
            queried = _teacher.query_teacher(self.mimic_.teacher, X, self.mimic_.response_)
            _check_score_is_not_label(queried, y01, self.classes_, queried=True)
        elif self.teacher is not None:
            # teacher_scores beside a teacher: the one point where scores of another black box
            # can be told (one query, after the mimic's fit has checked X)
            teacher, response = self._event_teacher()
            method = _teacher.resolve_response(teacher, response)
            mine = _teacher.check_scores(
                _teacher.query_teacher(teacher, X, method), n_samples, name="the teacher's scores"
            )
            _teacher.check_scores_match_teacher(scores, mine, self.teacher)
        calibrator = getattr(self.mimic_, "calibrator_", None)
        if getattr(self, "_score_sign_", None) is None and calibrator is not None:
            # a teacher's score: the full-data mimic decided its direction on all rows
            self._score_sign_ = calibration_direction(calibrator)
        self.n_features_in_ = self.mimic_.n_features_in_
        if hasattr(self.mimic_, "feature_names_in_"):
            self.feature_names_in_ = self.mimic_.feature_names_in_
        pairs = _interaction_pairs(self.mimic_.student_) if isinstance(terms, tuple) else terms
        self._pairs = pairs
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            names = [str(name) for name in names]
        elif is_frame(X):  # labels that are not all strings: as given (interactions= takes them)
            names = list(X.columns)
        self.interaction_pairs_ = [
            tuple(names[f] if names is not None else f for f in pair) for pair in pairs
        ]
        # the features as the tables name them (the student's names: an array's columns are
        # feature_0000, ... to an Explainable Boosting Machine), for what is said of the fit
        shown = getattr(self.mimic_.student_, "feature_names_in_", None)
        if shown is None or len(shown) != self.n_features_in_:
            shown = names if names is not None else range(self.n_features_in_)
        self._feature_labels = [str(name) for name in shown]

        # the missing-feature test's residuals: repeated three-way cross-fitting
        splits, split_seeds = [], []
        for _ in range(self.n_crossfits):
            seed = _seed(rng) if seeded else None
            if groups is None:
                thirds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
            else:
                thirds = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed)
            parts = [test for _, test in thirds.split(np.zeros((n_samples, 1)), y01, groups)]
            if groups is not None:
                folds = self.cv if self.calibration is not None else None
                _check_group_thirds(parts, y01, needed, groups, folds)
            splits.append(parts)
            split_seeds.append([_seed(rng) if seeded else None for _ in parts])
        self._progress(
            f"cross-fitted residuals: fitting both models on each third of the rows, "
            f"{self.n_crossfits} time(s) ({3 * self.n_crossfits} fits of each)"
        )
        results = Parallel(n_jobs=self.n_jobs, verbose=self._joblib_verbosity)(
            delayed(_third_residuals)(
                self,
                X,
                y01,
                scores,
                parts[k],
                np.concatenate(parts[:k] + parts[k + 1 :]),
                seeds[k],
                pairs,
                groups,
            )
            for parts, seeds in zip(splits, split_seeds)
            for k in range(3)
        )
        mimic, outcome, target = zip(
            *(
                _cross_pairs(parts, results[3 * r : 3 * r + 3], n_samples)
                for r, parts in enumerate(splits)
            )
        )
        mimic, outcome, target = np.stack(mimic), np.stack(outcome), np.stack(target)
        self.crossfit_residuals_ = {"mimic": mimic, "outcome": outcome}
        self.mimic_residuals_ = mimic.mean(axis=(0, 1))
        self.outcome_residuals_ = outcome.mean(axis=(0, 1))
        fold_targets = target.mean(axis=(0, 1))
        # nominal features some of whose levels the test's adjustment could not hold
        records = {}
        adjusted_mimic, adjusted_outcome, inflation = _adjusted_pairs(
            X, splits, mimic, outcome, target, records
        )
        self._unadjusted_levels_ = unadjusted_levels(records)
        self._test_residuals = (adjusted_mimic, adjusted_outcome)
        # the score, as the mimics read it, in the adjustment's span (a logistic regression's
        # log-odds read as given): the adjusted mimic residuals are rounding, with nothing
        # in them to correlate
        spread = np.sqrt(np.mean((target - target.mean(axis=-1, keepdims=True)) ** 2))
        rounding = _ROUNDING_OF_SIZE * np.finfo(float).eps * np.max(np.abs(target))
        self._score_in_adjustment_ = bool(
            spread > 0
            and np.sqrt(np.mean(adjusted_mimic**2)) <= max(_SCORE_IN_ADJUSTMENT * spread, rounding)
        )
        # what the adjustment's degrees of freedom take from the residuals' variance
        self._test_variance_inflation = inflation
        self.fidelity_ = self.mimic_.fidelity(X, scores)
        spread = float(np.sum((fold_targets - fold_targets.mean()) ** 2))
        self.fidelity_["r2_out_of_fold"] = (
            1.0 - float(np.sum(self.mimic_residuals_**2)) / spread if spread > 0 else float("nan")
        )
        # the spread the mimic leaves on rows it did not see (the in-sample RMSE is smaller by
        # what the mimic fits of the rows' noise): the report's attenuation reads it
        self.fidelity_["rmse_out_of_fold"] = float(np.sqrt(np.mean(self.mimic_residuals_**2)))
        r2 = float(self.fidelity_.get("r2", float("nan")))
        # the mimic reproduces almost none of the score: the report gives fit's advice
        self._low_fidelity_ = r2 < LOW_FIDELITY_R2
        if r2 < LOW_FIDELITY_R2:
            warnings.warn(
                f"the mimic reproduces almost none of the score (R^2 {r2:.3f} on the audit "
                "rows): its shapes, and their differences from the outcome's, are not the black "
                "box's logic. Check that teacher_scores are in X's row order and that X holds "
                "what the black box was given.",
                UserWarning,
                stacklevel=2,
            )
        self._bootstrap_seed = _seed(rng) if seeded else None
        if scores is None:
            scores = queried
            self._warn_if_probabilities(scores, "the teacher's scores")
            if margins_unlike_log_odds is not None:
                # fit warned: the mimic and its R^2 are on the margins' scale, not log-odds
                self._score_unlike_log_odds_ = margins_unlike_log_odds
            if self.calibration is None and self.mimic_.response_ != "predict":
                self._warn_if_taken_score_falls(self._event_score(scores), y01, "teacher")
        # whether fit read teacher_scores (stability() then needs them again)
        self._fit_read_scores_ = teacher_scores is not None
        # what stability() checks its data against: a digest of each, not a copy
        self._fit_fingerprints_ = {
            "X": fingerprint(X),
            "y": fingerprint(y01),
            "teacher_scores": fingerprint(scores),
            # the partition of the rows into records (codes in order of first appearance)
            "groups": None if groups is None else fingerprint(groups),
        }
        # the missing-feature test resamples whole records
        self._record_codes_ = groups
        copies, nominal = _score_copies(X, scores)
        self.score_copies_ = {
            # the features as the tables name them (an array's columns: feature_0000, ...)
            (name if is_frame(X) else self._feature_labels[int(name)]): rho
            for name, rho in copies.items()
        }
        # which copies are nominal features (their figure is a correlation ratio), for the
        # report; nominal features are a frame's, named as they are
        self._nominal_score_copies_ = sorted(nominal)
        # a two-valued score's copies are measured by the share of rows their value fixes
        self._score_copy_measure_ = _score_copy_measure(scores)
        if self.score_copies_:
            listed = ", ".join(f"{name!r} ({rho:.3f})" for name, rho in self.score_copies_.items())
            how = (
                "the smaller share of each score value's rows that the feature's value gives"
                if self._score_copy_measure_ == "share"
                else "Spearman's correlation with a numeric feature, the correlation ratio over "
                "a categorical one's levels"
            )
            warnings.warn(
                f"the score is a function of one feature of X alone, or nearly ({how}): "
                f"{listed}. If "
                "that column was derived from the score (an "
                "export of it, a risk percentage), the mimic reads the score off it and the "
                "outcome model uses it too: the audit compares the score with itself, and "
                "differences in the other features shrink or vanish. Leave such a column out.",
                UserWarning,
                stacklevel=2,
            )
        self._set_calibration_tables(X, y01, scores)
        # the calibration map's own estimation noise, which the bands of the interaction blocks
        # and of the main effects' runs carry
        self._calibration_replicates_ = _calibration_replicates(
            self.mimic_,
            X,
            y01,
            scores,
            self.cv,
            _seed(rng) if seeded else None,
            records=groups,
        )
        return self

    def _check_score_columns(self, scores) -> None:
        """Refuse ``teacher_scores`` the binary audit cannot read, before any model is fitted:
        more than two columns (class scores of more than two classes), or two columns that
        ``response`` does not read as class scores with ``calibration=None``."""
        if scores.ndim != 2:
            return
        if scores.shape[1] > 2:
            raise ValueError(
                "teacher_scores must be one score per row, or the two class columns of a binary "
                f"classifier (the outcome is binary); got shape {scores.shape}, the scores of "
                f"{scores.shape[1]} classes. Pass the score of y's event ({self._event_text()})."
            )
        method = _teacher.resolve_response(self.teacher, self.response)
        if self.calibration is None and method not in _teacher.CLASSIFIER_RESPONSES:
            raise ValueError(
                f"teacher_scores must be one score per row with response={self.response!r} and "
                f"calibration=None; got shape {scores.shape}. For a binary classifier's two "
                "class columns pass response='predict_proba' (or 'decision_function'); column "
                "k is then read as the score of classes_[k], y's sorted labels, as scikit-learn "
                "orders predict_proba."
            )

    def _event_text(self) -> str:
        event = self.classes_[1]
        event = event.item() if isinstance(event, np.generic) else event
        return f"y = {event!r}, classes_[1], the second of y's sorted labels"

    def _event_teacher(self):
        """The teacher as the mimic reads it, and the response it is read with.

        A teacher of more than two classes is refused. With ``calibration=None`` the mimic
        reads the teacher's class scores as given, column 1 (the teacher's ``classes_[1]``) as
        the event; that must be y's event ``classes_[1]``: a teacher whose classes are y's
        labels in the other order is read with its columns swapped, one whose classes are not
        y's labels is refused (its event cannot be matched). A calibration maps the score to
        ``P(y = classes_[1])`` from the data, in whichever direction it runs."""
        teacher = self.teacher
        method = _teacher.resolve_response(teacher, self.response)
        classes = getattr(teacher, "classes_", None)
        if (
            method not in _teacher.CLASSIFIER_RESPONSES
            or not _teacher.is_estimator_teacher(teacher)
            or classes is None
        ):
            # a callable's class columns are read as y's sorted labels, as teacher_scores are
            return teacher, self.response
        classes = list(np.asarray(classes).tolist())
        if len(classes) != 2:
            raise ValueError(
                f"teacher must be a binary classifier, as the outcome is binary; got "
                f"{type(teacher).__name__} with {len(classes)} classes (classes_ {classes!r}). "
                "Pass its score of y's event as teacher_scores."
            )
        if self.calibration is not None:
            return teacher, self.response
        mine = [c.item() if isinstance(c, np.generic) else c for c in self.classes_]

        def column_of(label):
            # the teacher's class that is this label: by value (True is 1), else by text ("1"
            # for 1, a teacher trained on the labels read from a file)
            for same in (_same_class, lambda a, b: str(a) == str(b)):
                found = [k for k, c in enumerate(classes) if same(c, label)]
                if len(found) == 1:
                    return found[0]
            return None

        def negative(label):
            # a coding of "not the event": 0, False or -1 (a -1/1 teacher for y of 0/1), or
            # its text ("0", "-1", "False": labels read from a file)
            if isinstance(label, str):
                return label.strip() in ("0", "-1", "False", "0.0", "-1.0")
            return label in (0, -1)

        # y's event as one of the teacher's two classes, and y's other label as the other (or
        # both codings of "not the event"); a shifted coding (teacher of 0/1 for y of 1/2) is
        # refused: which class is which cannot be told
        event, other = column_of(mine[1]), column_of(mine[0])
        matched = event is not None and (
            (other is not None and other != event)
            or (other is None and negative(mine[0]) and negative(classes[1 - event]))
        )
        column = event if matched else None
        if column is None:
            raise ValueError(
                f"teacher must have y's labels among its classes with calibration=None, which "
                f"reads the teacher's score of y's event ({self._event_text()}) as given; got "
                f"{type(teacher).__name__} with classes_ {classes!r} and y's labels {mine!r}, "
                "so no column of the teacher is known to score that event. Pass y in the "
                "teacher's labels, or a calibration (e.g. calibration='isotonic'), which maps "
                "the teacher's score to P(y = event) from the data."
            )
        if column == 1:
            return teacher, self.response
        return _EventColumnTeacher(teacher), method

    @staticmethod
    def _event_score(scores):
        """The one-dimensional score of the event from ``scores`` as the mimic reads them:
        column 1 of class probabilities, the margin of column 1 over column 0."""
        if scores.ndim == 1:
            return scores
        return scores[:, 1] - scores[:, 0]

    def _warn_if_taken_score_falls(self, scores, y01, source=1) -> None:
        """Without a calibration the score is read as it is, for the event ``classes_[1]``; one
        that falls as that event becomes likelier most likely scores the other label (y's
        labels sorted the event first): every shape would be compared with the wrong sign.
        ``source``: 1 or 2 for ``teacher_scores`` of that many columns, ``"teacher"`` for a
        queried teacher (``scores``: the event's one-dimensional score)."""
        rho, p_value = score_trend(scores, y01)
        # a clear fall only: a score unrelated to y falls by chance half the time
        if not (rho < 0 and p_value < CLEAR_FALL_P):
            return
        # what the report says of it (every shape compared with the wrong sign)
        self._taken_score_falls_ = (float(rho), float(p_value))
        event, other = (
            label.item() if isinstance(label, np.generic) else label
            for label in (self.classes_[1], self.classes_[0])
        )
        if source == "teacher":
            what = (
                f" (the teacher's score of {event!r}, its class matching y's event)"
                if isinstance(getattr(self.teacher, "classes_", None), Iterable)
                else " (the teacher's column 1, read as the score of y's classes_[1])"
            )
            scale = "class score"
        elif source == 2:
            what = " (teacher_scores' column 1: column k scores classes_[k], y's sorted labels)"
            scale = "class score"
        else:
            what = ""
            scale = "probability" if self.response == "predict_proba" else "log-odds"
        warnings.warn(
            f"the score falls as P(y = {event!r}) rises{what} (rank correlation with y "
            f"{rho:.2f}, p = {p_value:.2g}), and "
            f"calibration=None reads it as the {scale} of y = {event!r} (classes_[1], the "
            f"second of y's sorted labels). If it scores {other!r}, every shape is compared "
            f"with the wrong sign: pass y == {other!r} as y (the score's event as True), or "
            "a calibration, which maps a falling score by a decreasing function.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )

    def _warn_if_probabilities(self, scores, name):
        """Warn when ``calibration=None`` is to mimic, as log-odds, a score that looks like a
        probability (every value in [0, 1])."""
        self._score_in_unit_interval_ = False
        # mimicked as given, on the score's own scale (what the report says its R^2 is of), and
        # why that scale is plainly not log-odds, where it is not (None otherwise)
        self._score_as_given_ = False
        self._score_unlike_log_odds_ = None
        if self.calibration is not None or scores.ndim != 1:
            return
        if _teacher.resolve_response(self.teacher, self.response) == "predict_proba":
            return  # probabilities are turned into log-odds by the mimic
        # a one-column score read as "predict" or "decision_function" is mimicked as given;
        # "decision_function" says the score is a margin, log-odds: a points score of few
        # whole numbers, or large log-odds of a nearly separable fit, is taken at its word
        self._score_as_given_ = True
        response = _teacher.resolve_response(self.teacher, self.response)
        if response != "decision_function":
            self._score_unlike_log_odds_ = score_unlike_log_odds(scores)
        if self._score_unlike_log_odds_ is not None:
            warnings.warn(
                f"{name} {self._score_unlike_log_odds_}, but calibration=None mimics the "
                "score as given, as log-odds of the outcome, and compares it with the outcome "
                "model's log-odds: the mimic's shapes, R^2 and RMSE are on the score's own "
                "scale. Calibrate it (calibration='isotonic', 'spline' or 'sigmoid').",
                UserWarning,
                stacklevel=3,
            )
        if scores.min() >= 0 and scores.max() <= 1:
            # what the report and the printed findings say of the scale (R^2 of the score as
            # given, not of log-odds)
            self._score_in_unit_interval_ = True
            warnings.warn(
                f"{name} all lie in [0, 1], as probabilities do, but calibration=None mimics "
                "the score as given, as log-odds of the outcome, and compares it with the "
                "outcome model's log-odds: a probability would be compared on the wrong scale. "
                "For a probability pass response='predict_proba' (read as log-odds), or a "
                "calibration (calibration='isotonic', 'spline' or 'sigmoid').",
                UserWarning,
                stacklevel=3,
            )

    def _set_calibration_tables(self, X, y01, scores):
        self.calibration_table_ = self.calibration_curve_ = None
        # what the calibration's warnings say, for the report (each qualifies every shape)
        self._calibration_cautions_ = []
        if scores.ndim == 2 and scores.shape[1] == 2:
            # a binary classifier's class probabilities: the positive class's column is the
            # one-dimensional score (the mimic reads it as log-odds, with no calibration)
            scores = scores[:, 1]
        if scores.ndim != 1:
            return
        self.calibration_table_ = binned_rate(scores, y01, n_bins=20, confidence=self.confidence)
        if self.mimic_.calibrator_ is not None and self.mimic_.response_ == "predict":
            grid = np.unique(np.quantile(scores, np.linspace(0, 1, 201)))
            probability = self.mimic_.calibrator_.predict_proba(grid.reshape(-1, 1))[:, 1]
            self.calibration_curve_ = pd.DataFrame({"score": grid, "probability": probability})
            self._warn_if_calibration_saturates(scores)
            self._warn_if_calibration_misfits(scores, y01)

    def _warn_if_calibration_misfits(self, scores, y01):
        """Warn when the calibration map misses the observed outcome rates: a map of the wrong
        form for the score (``'temperature'`` only rescales a score that is a log-odds, and
        cannot follow deciles or points) gives every later figure on a wrong scale."""
        share, gap = calibration_misfit(self.mimic_.calibrator_, scores, y01)
        if share > MISFIT_WARNING_SHARE and gap > MISFIT_WARNING_GAP:
            message = misfit_message(self.calibration, share, gap)
            self._calibration_cautions_.append(message)
            warnings.warn(
                message,
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        elif self.calibration in ("temperature", "sigmoid"):
            self._warn_if_one_curve_misfits(scores, y01)

    def _warn_if_one_curve_misfits(self, scores, y01):
        """A one-curve map (linear in log-odds) of a score that is another monotone function
        of the risk bends an additive risk into interactions and bends the mimic learns, and
        the binned check above misses it on a few thousand rows: a parametric bootstrap test
        of the deviance an isotonic map gains over the curve (199 draws, seed 0) warns at
        p <= 0.01."""
        sign = calibration_direction(self.mimic_.calibrator_)
        p_value = parametric_form_p_value(
            np.asarray(scores, dtype=float),
            y01,
            self.calibration,
            sign,
            199,
            seed=0,
            records=getattr(self, "_record_codes_", None),
        )
        if p_value <= _ONE_CURVE_MISFIT_P:
            message = (
                f"the calibration map (calibration={self.calibration!r}) is one curve in "
                "log-odds, and the score's relation to the outcome is not (a monotone map "
                "fits the rows better than any such curve would by chance: parametric "
                f"bootstrap p = {p_value:.3f}). The mimic then learns the curve's misfit as "
                "shapes and interactions the outcome lacks (on null worlds whose score ranked "
                "the rows exactly by risk, blocks were flagged in 18 of 22 audits). Use "
                "calibration='isotonic' or 'spline', which follow any monotone relation."
            )
            self._calibration_cautions_.append(message)
            warnings.warn(
                message,
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def _warn_if_calibration_saturates(self, scores):
        # Isotonic regression pools the extreme scores into steps whose observed rate can be
        # exactly 0 or 1. Their log-odds then rest on the step's size alone (the empirical
        # logit, log(2 m + 1) for a pure step of m rows), not on how far the scores reach, and
        # the mimic's shapes follow those steps. A logistic or spline map reads the score
        # smoothly.
        calibrator = self.mimic_.calibrator_
        if not isinstance(calibrator, IsotonicCalibrator):
            return
        rate = calibrator.raw_rate(scores)
        share = float(np.mean((rate <= 0.0) | (rate >= 1.0)))
        if share > _SATURATION_WARNING_SHARE:
            message = (
                f"the isotonic calibration puts {100 * share:.1f}% of the scores in steps whose "
                "observed rate is exactly 0 or 1; their log-odds rest on the size of the step "
                "alone, and the mimic's shape functions follow those steps. For a score with "
                "many distinct values use calibration='spline' (a smooth monotone map; "
                "'sigmoid' assumes the score is linear in log-odds)."
            )
            self._calibration_cautions_.append(message)
            warnings.warn(
                message,
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    # ------------------------------------------------------------------ analyses
    def compare(self, *, interactions=True, min_weight=None):
        """Both models' shape functions side by side, with bands, difference and significance.

        Bands are the jackknife intervals of the EBMs' bags (see
        :mod:`sklearn_distill.shapes`). They measure how much *one* EBM fit varies with the
        rows it sees, while a shape is the mean of the bags, which varies less: on generated
        worlds of 4,000 rows the bands were about twice as wide as the spread of the estimates
        over new data, on continuous features (2.0x for both models) and on interaction
        blocks (3.3x for the outcome model, 2.5x for the mimic), and about right on a boolean
        feature (0.9x and 1.2x; ``benchmarks/audit_band_width.py``). Flags are therefore
        conservative on such worlds: they hold their level, and a difference must be about
        twice its standard error's nominal reach to be flagged reliably. A bag of the outcome
        model whose early stopping lands right after its smoothing rounds keeps about half a
        category level's effect, and the jackknife reads that as sampling noise: a level of
        a quarter of 3,000 rows that the black box ignores, a difference of 0.65 log-odds
        (about seven times its spread over new data), was flagged in 6 of 12 worlds
        (``benchmarks/audit_category_power.py``; 16 bags did not help). Two cases the bands
        do not carry (``benchmarks/audit_null_worlds.py``: null worlds whose score is the true
        log-odds, 3,000 rows): **strongly correlated features** (three at correlation 0.95),
        whose shared effect the mimic and the outcome model split between them differently:
        6 of 60 audits flagged some value, twice the nominal 5% (0 of 16 at 8,000 rows); at
        correlation 0.9 with a nonlinear (tanh) shape, 1,200 rows and the bins ``compare()``
        advises, 2 of 20 audits, all on that feature, with 5.9% of its values flagged before
        the adjustment (0.4-1.6% with independent features). A value of one such feature can
        differ while their sum does not (compare their shapes together; :meth:`fit` warns of
        features that nearly determine each other: numeric ones rank-correlated above 0.9, a
        number and a category its ranks separate, two categories);
        and **a jump or a steep tail** of a shape, which the outcome model's
        smoothing blurs and shrinks while the noise-free mimic follows it: 0 of 20 audits
        flagged a value, but in a longer run 3 of 55 did, with the flags in the bins next to
        the jump. Such a difference may be the outcome model's bias, not the black box's.
        A third case, which no band can carry: **information the audit data lack**. Log-odds
        do not average, so when the outcome also depends on a missing part of spread sigma,
        the outcome model's shapes are about ``1 / sqrt(1 + pi sigma**2 / 8)`` times those of
        a black box equal to the true risk, and its features are flagged (12,000 rows, sigma
        1.6: 6 of 8 values; ``benchmarks/audit_noncollapsible.py``). The report states the
        factor from the mimic's RMSE; a flag it can explain (mimic larger than outcome, in the
        same direction) cannot tell such a part from a different weighting. Eight bags cannot estimate the variance of their own mean (that
        needs hundreds). The difference is significant when its interval at
        ``confidence`` (Student's, with the two models' standard errors combined as
        independent) excludes zero (:func:`~sklearn_distill.stats.compare_shapes`). Read the
        Benjamini-Hochberg flags (``significant_bh``): hundreds of values are tested at once.
        Main effects and interaction cells are adjusted as two families: a main-effect value
        asks whether the black box weighs one value of one feature unlike the outcome does,
        and the interactions' many thin cells (743 testable on COMPAS) would otherwise dilute
        that question's flags. Inside each family the adjustment runs in two stages, with the
        terms as groups (Benjamini and Bogomolov, 2014; see
        :func:`~sklearn_distill.stats.compare_shapes`): the terms that differ at all are
        selected first, then the values inside each selected term. A boolean feature's two
        values thus compete with the other terms, not with the hundreds of values of the
        continuous features (one adjustment over all values needed ``p < 0.05 / n_values``
        or so: a bias of 0.7 log-odds on a boolean was flagged in 8 of 20 generated worlds of
        3,000 rows, in two stages in 20 of 20; ``benchmarks/audit_flags.py``). ``p_value_bh``
        is the adjusted value *at this confidence*: compared with another level it does not
        give that level's decisions (the selection of terms depends on the level).

        Each EBM term is centred on its weighted mean over the training rows, so a value's
        ``difference`` is measured against that mean: it asks whether the black box weighs the
        value, *relative to the feature's average*, unlike the outcome does. A bias on one value
        of a many-valued feature moves the mean, and shifts every other value the opposite way
        by the bias times the biased value's share of the rows: values the score treats as the
        outcome does can then be flagged (+1.5 log-odds on one of four equal regions, 4,000
        rows: that region differs by 0.39, the three others by -0.10 to -0.16, one of them
        flagged). Read a term's largest difference first, and smaller ones of the opposite sign
        beside it as its possible echo. Features whose values outside the missing-value bin and
        the most common value are mostly too thin to test are warned about
        (:func:`~sklearn_distill.stats.untested_terms`); :meth:`compare_runs` tests the
        numeric and ordinal ones on runs of adjacent values (and :meth:`summary` does).

        A few missing values (or a rare extra category) in a feature of two values widen the
        bands of its two values, though their estimates vary no more over new data, so a real
        difference can go unflagged. The outcome model's first rounds (interpret's
        ``smoothing_rounds``) cut each feature's bins at random; with a third bin about half the
        cuts set that bin apart instead of the two values, whose difference then grows more
        slowly, and bags that stop early carry less of it than bags that run on: the jackknife
        reads that spread as sampling noise. In generated worlds of 2,000 rows
        (``benchmarks/audit_missing_bin.py``), 5 missing values of a yes/no feature that truly
        differs by 0.7 log-odds raised the standard error of its values' difference by about
        30% while its spread over the worlds stayed the same; the feature was flagged in 14 of
        20 worlds instead of 20, in 19 when the 5 rows were left out of the audit, and in none
        of 20 null worlds either way. Centring the terms without the missing-value bin, or
        testing the difference between the two values, gives the same standard errors: the
        spread is in the fits, not in how they are compared. With a handful of missing values
        in such a feature, audit the rows where it is known as well, and say so.

        Parameters
        ----------
        interactions : bool, default=True
            Also compare the pairwise interaction terms, cell by cell (both models carry the
            same pairs: see ``interactions`` of the audit).
        min_weight : float or None, default=None
            Values held by fewer training rows are shown but never flagged; ``None`` uses the
            audit's ``min_weight``.

        Returns
        -------
        pandas.DataFrame
            One row per term and value (bin; for an interaction, per pair of bins), in
            log-odds, main effects first: ``term`` (``"a & b"`` for an interaction), ``kind``
            (``"main"`` or ``"interaction"``), ``value`` (a value the bin holds; for an
            interaction the pair of the two bins' values), ``label`` (what to show: ``"18"``,
            ``"18-19"``, ``"[0.5, 1.25)"``, the category; a pair for an interaction),
            ``mimic``, ``mimic_lower``, ``mimic_upper``, ``outcome``, ``outcome_lower``,
            ``outcome_upper``, ``difference`` (mimic - outcome), ``difference_lower``,
            ``difference_upper``, ``z``, ``p_value``, ``significant`` (per value),
            ``p_value_bh`` and ``significant_bh`` (Benjamini-Hochberg over the testable rows,
            main effects and interaction cells as two families, each adjusted in two stages,
            terms then values: the flags to read; a main effect of a single value, centred to
            0 by both models so that its p-value is 1 by construction, is no member of the
            main effects' family and its ``p_value_bh`` is 1),
            ``testable`` (``weight >= min_weight``), ``weight`` (training
            rows in the bin), ``bin_low``, ``bin_high`` (a continuous feature's bin edges).
        """
        check_is_fitted(self, "outcome_")
        if not hasattr(self.outcome_, "term_scores_"):
            raise TypeError(
                "compare() needs an Explainable Boosting classifier as the outcome model; got "
                f"{type(self.outcome_).__name__}."
            )
        if not hasattr(self.mimic_.student_, "term_scores_"):
            raise TypeError(
                "compare() needs an Explainable Boosting regressor as the student "
                f"(CompareAudit(student=...)); got {type(self.mimic_.student_).__name__}. "
                "missing_feature_test() reads any regressor's residuals."
            )
        if not isinstance(interactions, bool | np.bool_):
            fail("interactions", "True or False", interactions, TypeError)
        min_weight = self.min_weight if min_weight is None else min_weight
        min_weight = check_real("min_weight", min_weight, minimum=0)
        mimic = self.mimic_.shape_functions(self.confidence, interactions=interactions)
        outcome = shape_functions(
            self.outcome_,
            confidence=self.confidence,
            interactions=interactions,
            # fitted on the mimic's X: the same features held booleans
            boolean_features=self.mimic_._boolean_features(),
        )
        self._check_terms_line_up(mimic, outcome)
        keep = ["term", "bin", "score", "std_error", "dof"]
        extra = ["kind", "value", "label", "weight", "bin_low", "bin_high"]
        # A term of a single value (a feature constant on the audit rows) is centred to 0 by
        # both models: its difference is 0 and its p-value 1 by construction. It is adjusted
        # on its own, outside the main effects' family, where it would only count one more
        # term for the others to be adjusted against.
        single = (mimic["kind"] == "main") & (mimic.groupby("term")["term"].transform("size") == 1)
        family = mimic["kind"].where(~single, "main, single value")
        with warnings.catch_warnings():
            # rows of one model only are refused just below, with the reason
            warnings.filterwarnings("ignore", "compare_shapes leaves out", UserWarning)
            table = compare_shapes(
                mimic[[*keep, *extra]].assign(family=family),
                outcome[[*keep, "label"]],
                confidence=self.confidence,
                on=("term", "bin"),
                min_weight=min_weight,
                family="family",
                within="term",
            )
        same_labels = (
            table["mimic_label"].map(str).to_numpy() == table["outcome_label"].map(str).to_numpy()
        )
        if len(table) != len(mimic) or len(table) != len(outcome) or not same_labels.all():
            raise ValueError(
                "the mimic's and the outcome model's bins differ, so their shapes cannot be "
                "compared value by value: give student and outcome the same binning "
                "(max_bins, max_interaction_bins, feature_types)."
            )
        table = table.drop(columns=["bin", "outcome_label", "mimic_family"])
        table = table.rename(columns={f"mimic_{c}": c for c in extra})
        columns = ["term", "kind", "value", "label"]
        rest = [c for c in table.columns if c not in columns]
        table = table[columns + rest]
        untested = untested_terms(table)
        thin = untested[untested["kind"] == "interaction"]
        untested = untested[untested["kind"] == "main"]
        if len(thin):
            warnings.warn(
                UNTESTED_INTERACTIONS_WARNING + ": " + "; ".join(thin["text"]) + f" (min_weight="
                f"{min_weight:g}). A difference there cannot be flagged cell by cell; compare "
                "the surfaces on coarse blocks with compare_interactions().",
                UserWarning,
                stacklevel=2,
            )
        if len(untested):
            unbanded = lacks_bands(table, min_weight)
            warnings.warn(
                UNTESTED_WARNING + ": " + "; ".join(untested["text"]) + f" (min_weight="
                f"{min_weight:g}; rows counted outside each feature's missing-value bin and its "
                "most common value"
                + (
                    "; values without a standard error, as the models' bags give no "
                    "confidence bands, are untestable too"
                    if unbanded
                    else ""
                )
                + "). A difference there cannot be flagged value by value. Compare a "
                "numeric or ordinal feature's shapes on runs of adjacent values with "
                "compare_runs() (summary() does), or fit the audit with student=/outcome= "
                "Explainable Boosting models of fewer max_bins (about n_rows / (2 * "
                "min_weight)), or pass compare(min_weight=...) lower"
                + (
                    "; for the values without a standard error, models of at least 2 outer "
                    "bags and a validation share."
                    if unbanded
                    else "."
                ),
                UserWarning,
                stacklevel=2,
            )
        return table

    def compare_interactions(self, *, blocks=3, min_weight=None):
        """Both models' interaction surfaces compared on a coarse grid of blocks.

        :meth:`compare` tests an interaction cell by cell, and cells are thin: a 32 x 32 grid
        on a few thousand rows leaves most cells with a handful of rows, below ``min_weight``,
        never flagged. An interaction the outcome carries and the black box ignores (or the
        reverse) then goes unseen cell by cell. Here each axis is cut into ``blocks`` runs of
        consecutive bins holding about equal rows (the missing-value bin apart, and a boolean's
        two values), the same blocks for both models, cut from the
        mimic's rows; a block's score is the row-weighted mean of the surface over its cells,
        with the jackknife standard error of the same mean in each bag
        (:func:`~sklearn_distill.shapes.interaction_blocks`). With a ``calibration`` the
        mimic's target is itself estimated: a fitted map (isotonic steps, spline wiggles) is
        not linear in log-odds, and its error bends even an additive score into surfaces the
        mimic learns, with narrow bags' bands (the target has no label noise). The mimic's
        block bands therefore also carry the map's noise: it is refitted on 50 bootstrap
        resamples, and the spread of the resulting change of the target, averaged over each
        block's rows and purified like the surfaces, is added to the block's variance. On
        null worlds of 800 rows (the score the true probability, an additive truth) this took
        the audits with a block flagged from 6 in 12 to 0 in 12 under the default isotonic
        map; the added spread is about 1.5 times what refitting the mimic on the resampled
        targets shows, so it errs wide, and at 800 rows the blocks' bands became 2.6-2.9
        times as wide (``benchmarks/audit_block_calibration.py``). The refits cost 3% of
        an isotonic audit's fit, about 10% of a sigmoid one's and 40-47% of a spline one's. Blocks are tested as
        :meth:`compare` tests values: Student's interval of the difference, the two-stage
        Benjamini-Hochberg adjustment with the terms as groups.

        A nominal feature has no order to cut along: its categories stay apart when they are
        no more than ``blocks``, else its ``blocks - 1`` largest do and the others are pooled
        (an ordinal one is cut in runs). A block alone in its row or column of blocks is left
        out: purified, it is zero in both models. Both surfaces are purified first (Lengerich et
        al., 2020: every row's and column's weighted mean moved to the main effects; interpret
        only centres a term), so a block measures what the pair adds beyond the main effects,
        in both models alike, however boosting split a function between a main effect and the
        pair. A block's mean shows where a surface rises or falls (a product ``x0 * x1`` puts
        opposite signs in opposite corners); it cannot show detail finer than a block, and a
        surface that changes sign inside one block can average to nothing there.

        Power is limited: the bands are about three times as wide as the blocks' spread over
        new data (see :meth:`compare`); on generated worlds of 4,000 rows, a product
        ``0.8 x0 x1`` in the outcome that the black box ignored was flagged on blocks in 4
        seeds of 10, and never cell by cell (11 of 892 cells testable); with a black box that
        used it, no block was flagged (``benchmarks/audit_interaction_blocks.py``). A block not
        flagged is no proof that the surfaces agree.

        Parameters
        ----------
        blocks : int, default=3
            Runs of bins per axis (at least 2).
        min_weight : float or None, default=None
            Blocks held by fewer rows are shown but never flagged; ``None`` uses the audit's.

        Returns
        -------
        pandas.DataFrame
            One row per interaction term and block: ``term``, ``kind`` (``"interaction
            block"``), ``block`` (the pair of block indices), ``features`` (the two feature
            names), ``label`` (the pair of ranges or values), then the columns of
            :meth:`compare` (``mimic`` ... ``testable``) and ``weight`` (rows in the block). Empty when the models hold no interactions.
        """
        self._require_term_scores("compare_interactions")
        blocks = check_integer("blocks", blocks, minimum=2)
        min_weight = self.min_weight if min_weight is None else min_weight
        min_weight = check_real("min_weight", min_weight, minimum=0)
        booleans = self.mimic_._boolean_features()
        scale = float(np.ravel(self.mimic_.target_scale_)[0])
        mimic, groups = interaction_blocks(
            self.mimic_.student_,
            blocks=blocks,
            boolean_features=booleans,
            scale=scale,
            target_replicates=getattr(self, "_calibration_replicates_", None),
        )
        outcome, _ = interaction_blocks(
            self.outcome_, groups=groups, boolean_features=booleans, blocks=blocks
        )
        self._check_terms_line_up(mimic, outcome)
        table = self._compare_pooled(
            mimic,
            outcome,
            min_weight,
            "interaction blocks",
            "max_bins, max_interaction_bins, feature_types",
        )
        table = table.rename(columns={"bin": "block", "mimic_kind": "kind"})
        table = table.rename(
            columns={"mimic_label": "label", "mimic_weight": "weight", "mimic_features": "features"}
        )
        columns = ["term", "kind", "block", "features", "label"]
        return table[columns + [c for c in table.columns if c not in columns]]

    def compare_runs(self, *, runs=5, terms=None, min_weight=None):
        """Both models' main effects of ordered features compared on runs of adjacent values.

        :meth:`compare` tests a main effect value by value, and a numeric feature binned finely
        on a small audit has thin values: with the default models (256 bins) a feature of
        1,000-2,500 rows holds 4-10 rows per value, below ``min_weight``, never flagged
        (:func:`~sklearn_distill.stats.untested_terms` lists such features). Here each
        feature's observed values are cut into ``runs`` runs of adjacent bins holding about
        equal rows (the missing-value bin apart), the same runs for both models, cut from the
        mimic's rows, as :meth:`compare_interactions` cuts an interaction's axes, except that
        a value holding more rows than a run's share is a run of its own and the runs it
        leaves are spent on the other values (a count at 0 on 60% of the rows: the 0 and four
        runs of its tail, cut by rows); a run's
        score is the row-weighted mean of the shape over its rows, with the jackknife
        standard error of the same mean in each bag, and under a ``calibration`` the spread
        of the map refitted on resamples added to the mimic's
        (:func:`~sklearn_distill.shapes.main_effect_runs`). Runs are tested as
        :meth:`compare` tests values: Student's interval of the difference, the two-stage
        Benjamini-Hochberg adjustment with the terms as groups, all the runs compared here as
        one family.

        A run's mean shows a difference that keeps its sign along the run (a black box that
        ignores a feature above some value, or weighs its low values more); it cannot show
        detail finer than a run, and a difference that changes sign inside a run averages out
        there. Each term is centred on its weighted mean over all rows, so a run that differs
        shifts the others the opposite way by its share of the rows (read the largest first).
        A run not flagged is no proof that the shapes agree.

        On null worlds of 1,000-2,000 rows (the score the true log-odds; a linear and a
        sine-shaped feature of 4-8 rows per value, none testable by :meth:`compare`), 5 of 280
        audits flagged a run after the adjustment (0.018; 4 of 80, the nominal 0.05, where
        the linear effect was steep, all on the sine, whose bends the outcome model blunts),
        and 0.9% of the runs before it. Power is low: at 1,500 rows a black box that ignored
        a linear effect ``0.8 a`` above 1 (16% of the rows) was never found, above 0 in 40% of
        the audits, and ``1.5 a`` above 0 in 65-72%; the outcome model's bands are widest at
        the ends of a strong effect, so the run flagged can be the one the centring shifts
        rather than the one that differs most (``benchmarks/audit_null.py --runs 5``). With
        a count at 0 on 60% of the rows added to those worlds (its 0 one run, its tail four),
        none of 40 audits flagged a run with the isotonic calibration, 1 of 20 without one
        (on the sine); a score that ignored the count above 20 was found in 6 of 20
        (``--heavy``, ``--planted-tail 20``).

        Parameters
        ----------
        runs : int, default=5
            Runs of observed values per feature (at least 2; a feature with fewer observed
            bins keeps one run per bin; a value heavier than a run's share is one of them).
        terms : sequence of str or None, default=None
            Main effects of ordered (numeric or ordinal, not boolean) features to compare;
            ``None`` compares those whose values are mostly too thin to test one by one
            (:func:`~sklearn_distill.stats.untested_terms` of :meth:`compare`'s table).
        min_weight : float or None, default=None
            Runs held by fewer rows are shown but never flagged; ``None`` uses the audit's.

        Returns
        -------
        pandas.DataFrame
            One row per term and run: ``term``, ``kind`` (``"main run"``), ``run`` (its index;
            0 is the missing-value bin when it holds rows), ``label`` (the run's range:
            ``"18-22"``, ``"[0.5, 1.25)"``, ``"missing"``), then the columns of
            :meth:`compare` (``mimic`` ... ``testable``), ``weight`` (rows in the run),
            ``n_bins`` (bins in the run), ``low`` and ``high`` (the run's reach on the
            feature's axis: its observed bins' lowest and highest edges; NaN for the
            missing-value run). Empty when no term is chosen.
        """
        self._require_term_scores("compare_runs")
        runs = check_integer("runs", runs, minimum=2)
        min_weight = self.min_weight if min_weight is None else min_weight
        min_weight = check_real("min_weight", min_weight, minimum=0)
        booleans = self.mimic_._boolean_features()
        if terms is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # compare() itself warns of them
                table = self.compare(interactions=False, min_weight=min_weight)
            terms = self._thin_ordered_terms(table)
        elif isinstance(terms, str) or not np.iterable(terms):
            fail("terms", "a sequence of main-effect term names, or None", terms, TypeError)
        scale = float(np.ravel(self.mimic_.target_scale_)[0])
        mimic, groups = main_effect_runs(
            self.mimic_.student_,
            runs=runs,
            terms=list(terms),
            boolean_features=booleans,
            scale=scale,
            target_replicates=getattr(self, "_calibration_replicates_", None),
        )
        outcome, _ = main_effect_runs(
            self.outcome_, runs=runs, terms=list(terms), groups=groups, boolean_features=booleans
        )
        table = self._compare_pooled(mimic, outcome, min_weight, "runs", "max_bins, feature_types")
        table = table.rename(
            columns={
                "bin": "run",
                "mimic_kind": "kind",
                "mimic_label": "label",
                "mimic_weight": "weight",
                "mimic_n_bins": "n_bins",
                "mimic_low": "low",
                "mimic_high": "high",
            }
        )
        columns = ["term", "kind", "run", "label"]
        return table[columns + [c for c in table.columns if c not in columns]]

    def _require_term_scores(self, method: str) -> None:
        """A fitted audit whose two models are Explainable Boosting models (term scores to pool
        into interaction blocks or runs); a ``TypeError`` naming ``method`` otherwise."""
        check_is_fitted(self, "outcome_")
        if not hasattr(self.outcome_, "term_scores_") or not hasattr(
            self.mimic_.student_, "term_scores_"
        ):
            raise TypeError(
                f"{method}() needs Explainable Boosting models as student and outcome; got "
                f"{type(self.mimic_.student_).__name__} and {type(self.outcome_).__name__}."
            )

    def _compare_pooled(self, mimic, outcome, min_weight, what: str, binning: str):
        """Both models' pooled values (interaction blocks, runs of a main effect; one row per
        ``term`` and ``bin`` index) compared as :meth:`compare` compares values, one
        Benjamini-Hochberg family with the terms as groups; refused when the same index does
        not cover the same values in both models (other binnings)."""
        merged = mimic.merge(outcome, on=["term", "bin"], suffixes=("", "_outcome"))
        if (
            len(merged) != len(mimic)
            or len(merged) != len(outcome)
            or not (merged["label"].map(str) == merged["label_outcome"].map(str)).all()
        ):
            raise ValueError(
                f"the mimic's and the outcome model's bins differ, so their {what} cannot be "
                f"compared: give student and outcome the same binning ({binning})."
            )
        return compare_shapes(
            mimic,
            outcome[["term", "bin", "score", "std_error", "dof"]],
            confidence=self.confidence,
            on=("term", "bin"),
            min_weight=min_weight,
            family="kind",
            within="term",
        )

    def _thin_ordered_terms(self, comparison) -> list[str]:
        """The main effects of ordered features that :func:`untested_terms` lists in
        :meth:`compare`'s table ``comparison``: their values are mostly too thin to test one
        by one."""
        untested = untested_terms(comparison)
        listed = set(untested.loc[untested["kind"] == "main", "term"])
        booleans = self.mimic_._boolean_features()
        return [t for t in ordered_main_terms(self.mimic_.student_, booleans) if t in listed]

    def _check_terms_line_up(self, mimic, outcome):
        only_mimic = sorted(set(mimic["term"]) - set(outcome["term"]))
        only_outcome = sorted(set(outcome["term"]) - set(mimic["term"]))
        if only_mimic or only_outcome:
            raise ValueError(
                "the mimic and the outcome model must have the same terms to be compared; "
                f"got {only_mimic} in the mimic only and {only_outcome} in the outcome model "
                "only. Give both the same interaction pairs (CompareAudit's interactions; a "
                "given student or outcome model keeps no pairs of its own)."
            )

    def summary(self, *, min_weight=None, blocks=3, runs=5):
        """One line per term with flagged values: how many differ, and where.

        A value's difference is measured against its term's weighted mean (each EBM term is
        centred on it; see :meth:`compare`): a bias on one value of a many-valued feature
        shifts the others the opposite way, and a line may name values the score treats as the
        outcome does beside the one it does not. Read the largest difference first
        (``largest_difference``, and :meth:`compare`'s table). An interaction can have two
        lines: its flagged cells (:meth:`compare`) and its flagged coarse blocks
        (:meth:`compare_interactions`), where thin cells are pooled and can be tested. A
        numeric or ordinal feature whose values are mostly too thin to test
        (:func:`~sklearn_distill.stats.untested_terms`) is compared on runs of adjacent values
        (:meth:`compare_runs`), and has a line when a run differs (``"age: 18-22 differs (1 of
        5 runs of adjacent values)"``; a difference that changes sign inside a run averages
        out there).

        Parameters
        ----------
        min_weight : float or None, default=None
            Passed to :meth:`compare`, :meth:`compare_interactions` and :meth:`compare_runs`.
        blocks : int or None, default=3
            Passed to :meth:`compare_interactions` (blocks per axis); ``None`` leaves the
            blocks out.
        runs : int or None, default=5
            Passed to :meth:`compare_runs` (runs per feature) for the ordered features whose
            values are mostly too thin to test; ``None`` leaves the runs out.

        Returns
        -------
        pandas.DataFrame
            :func:`~sklearn_distill.stats.summarize_terms` of :meth:`compare`'s table and
            :meth:`compare_interactions`' and :meth:`compare_runs`' tables: per term (and
            kind: ``"main"``, ``"main run"``, ``"interaction"`` for cells, ``"interaction
            block"``) with a flagged
            (Benjamini-Hochberg) value, ``n_values``, ``n_testable``, ``n_flagged``,
            ``n_flagged_raw``, ``largest_difference`` and ``text`` (e.g.
            ``"age: 4 values differ, from 18 to 22"``, ``"x1 & x2: 1 block differs, the
            largest at x1 [0.43, 2.9] x x2 [0.44, 3.1]"``).
        """
        if blocks is not None:
            blocks = check_integer("blocks", blocks, minimum=2)
        if runs is not None:
            runs = check_integer("runs", runs, minimum=2)
        # compare()'s warnings, said about the caller's line rather than this one
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tables = [self.compare(min_weight=min_weight)]
            if blocks is not None and (tables[0]["kind"] == "interaction").any():
                coarse = self.compare_interactions(blocks=blocks, min_weight=min_weight)
                tables.append(coarse.rename(columns={"block": "value"}))
            thin = [] if runs is None else self._thin_ordered_terms(tables[0])
            if thin:
                coarse = self.compare_runs(runs=runs, terms=thin, min_weight=min_weight)
                tables.append(coarse.rename(columns={"run": "value"}))
        untested = untested_terms(tables[0])
        untested = set(untested.loc[untested["kind"] == "main", "term"])
        for warning in caught:
            text = str(warning.message)
            # the summary holds the coarse blocks and runs those warnings point to
            if blocks is not None and text.startswith(UNTESTED_INTERACTIONS_WARNING):
                continue
            if thin and text.startswith(UNTESTED_WARNING) and untested <= set(thin):
                continue
            warnings.warn(warning.message, warning.category, stacklevel=2)
        return summarize_terms(pd.concat(tables, ignore_index=True))

    def missing_feature_test(self, n_bootstrap=1000):
        """Correlation of the two models' cross-fitted residuals, with bootstrap intervals.

        A positive correlation says both models miss the same thing: the black box used
        information (a feature, or a transformation of one) that the audit data lack. A
        clearly negative one (its p-value below ``1 - confidence``) is no sign of a missing
        feature: it says
        the adjustment misfits these data (the test's assumptions may not hold), so read the
        verdict with care.

        How it is computed. Each row has, in each of the ``n_crossfits`` three-way splits, two
        *cross pairs*: the residual of a mimic fitted on one of the two thirds the row is not
        in, against the residual of the outcome model fitted on the other (see
        ``crossfit_residuals_``). A mimic and an outcome model fitted on the same rows smooth
        the same surface the same way, and their errors correlate with nothing missing; the
        cross pairs share no rows (double cross-fitting, after Newey and Robins, 2018).

        Both residual vectors are then adjusted by least squares, within each third of each
        split: the rows of a third were judged by the same two models, fitted on the other
        two thirds. The adjustment mixes rows (a row's adjusted residual takes in the other
        rows'), and fitted over all rows at once it took in the residuals of rows judged by
        models fitted on this row, so that the row's own outcome noise entered both sides of
        the correlation: on a null world whose score is the true log-odds (3,000 rows, 20
        seeds) the noise part of the correlation averaged -0.006 that way, -0.003 within the
        thirds, where it is zero in expectation given the splits (-0.003 is 1.6 standard
        errors of that mean). The columns:

        * a quadratic polynomial of the numeric features (the linear and bilinear trends that
          the models' constant outer bins cannot follow, which both models miss alike) and a
          cubic in the pair's own mimic's prediction (both models shrink the extreme
          log-odds of a steep surface toward the middle, a shared misfit that is a function
          of the predicted log-odds): at most one per ten rows of the third and 200 in all,
          the prediction's powers and the linear terms first;
        * indicators of the nominal features' levels, filling the columns up to one per two
          rows of the third, at most 600: a rare level, seen in few or none of a model's
          training rows, is shrunk toward nothing by both models alike (without them a null
          world with a 40-level feature, the rarest levels at 0.3% of the rows, was flagged
          in 57% of its seeds at 3,000 rows; with 27 of its 78 levels held, a world with an
          80-level feature at 1,200 rows, about five rows of each level in a third, was
          flagged in 3 of 3, correlation 0.26-0.31); each feature's rarest first, the
          features in turn, after the polynomial, so that a feature of many levels (a zip
          code) never crowds it out. A level of one row in the third is held too (its row's
          residuals zeroed), unless more than half the third's rows are alone in their level
          (an identifier); then the feature is named by a warning and in the report's caveats
          (a record identifier of two rows each: about two rows in three alone), as are
          levels left without a column past those limits.
        * for each nominal feature, the third's mean of the pair's mimic's residual over the
          other rows of each row's level times the prediction and its square (two columns, the
          features in turn while the columns stay within one per two rows): both
          models miss a level's
          effect on scales that vary with the predicted log-odds (the outcome model's
          probability by ``p (1 - p)`` times its log-odds miss, the mimic through its
          calibration's slope), a shared misfit the level's indicator, constant within the
          level, cannot hold. On that 80-level world with the true log-odds as the score the
          test rejected in 5 of 40 seeds with the indicators alone (mean correlation +0.011,
          3.5 standard errors of that mean above zero), 1 of 40 (+0.000) with these columns;
          the missing feature of effect 0.5 beside the 80 levels was found in 7 of 10 seeds
          (7 without them).
        * last, a cubic spline of each numeric feature: truncated cubics ``max(z - t, 0)**3``
          of the standardised feature at up to ten of its quantiles (with the polynomial's
          terms, a cubic spline quadratic below its first knot), in another budget of one
          column per ten rows of the third and at most one knot per 20 rows, the same number
          for every feature: both models hold a feature's shape in steps, flat beyond its
          outer bins, and where the score is smooth what both miss of it along a feature is a
          shared misfit that no quadratic holds. On a null world whose score is the true
          log-odds, ``x0 - 0.8 |x1| + 0.5 x2 + 0.6 sin(2 x3)`` (``exact wiggle`` of
          ``benchmarks/audit_calibration.py``, 1,200 rows, 20 seeds) the test rejected in 9
          of 20 without it (mean correlation +0.037), 2 of 20 with it (+0.017); columns of
          ``sin(2 x3)`` itself removed none of the shared part, a spline with its tails cut
          at the features' 2% and 98% quantiles half of it: what both models miss lies at
          the features' extremes more than in the wiggle. The missing feature of effect 0.5
          was found as before. A row at a feature's extreme has a high leverage in these
          columns (up to 0.97 in a third of 100 rows), which the HC2 factor below accounts
          for.

        A residual adjusted for ``k`` columns keeps ``n - k`` of its ``n`` degrees of
        freedom, and varies less than the error it stands for: the bootstrap's variance is
        multiplied by ``n / (n - k)`` (``k``: the independent columns fitted over a split's
        thirds; White's HC1 correction), which matters where many levels are held (up to a
        factor 2; for four numeric features 1.17 at 1,200 rows, the spline's 40 columns of a
        third of 400 included, 1.02-1.06 without them), or by the HC2
        factor where that is larger: each row's squared term of the correlation's influence
        function divided by its own ``1 - h`` (``h``: its leverage in its third's
        adjustment), over their sum. A row of high leverage (a level of two rows in its
        third) keeps less of its noise than ``n / (n - k)`` allows for, and where such rows
        are the noisy ones that factor falls short (two-row levels three times as noisy as
        the rest: the correlation's variance over noise draws was 1.50 times the bootstrap's,
        ``n / (n - k)`` 1.25, HC2 1.47).

        The test asks whether the residuals share something *beyond* a function of the audit
        features of that form. Every column is a function of the audit features and of models
        that saw none of the third's rows, so it keeps the test's level and leaves a missing
        feature independent of the audit features whole. Each pair has columns of its own, from
        its own mimic: shared columns, in the two mimics' mean prediction, took the other
        mimic, fitted on the same rows as the pair's outcome model, into the pair's residual,
        and where the score lies in the columns' span (a logistic regression's log-odds read
        with ``calibration=None``, ``'sigmoid'`` or ``'temperature'``) the test rejected on
        every null world tried. A score the columns hold whole leaves residuals of rounding alone
        (of the score's spread, or of its size for a score far from zero, such as a log-odds plus
        1e10: a few units in the last place of the largest target, whatever the spread, are taken
        for rounding): the test then warns that it has nothing to correlate and gives NaN (the
        score, as calibrated, uses nothing the audit data lack). The statistic is the correlation of
        each split's stacked cross pairs, averaged over the splits; its interval and p-value come
        from resampling rows (all their pairs, in every split, together; whole records when
        :meth:`fit` was given ``groups``, so that the copies of a record entered several times are
        not counted as independent evidence) with the fitted models held fixed; the spread of the
        splits' own correlations (over the number of splits) is added to its variance.

        What it can tell apart (``benchmarks/audit_calibration.py``, generated worlds, 3,000
        rows, 20 seeds each): with nothing missing, Pearson's two-sided test at 5% rejected
        in 4 of 200 audits over ten kinds of world (pure main effects, numeric and
        categorical interactions, correlated features, a 40-level nominal feature with rare
        levels, missing values, a saturated score, calibrated, uncalibrated and exact
        scores; at most 2 in any one); a feature missing from the audit data with an effect
        of 0.5 on the log-odds was found in every seed. (These figures are of columns shared
        by the two pairs; with each pair's own, the worlds rerun at 1,200 rows stayed within
        their noise, the planted feature's correlation within 0.001 seed by seed.) The interval holds the fitted models
        fixed, so it leaves out how the two models' shared misfit varies from one data set to
        the next, which does not shrink as rows are added: at 10,000 rows a world with a
        numeric x numeric interaction rejected in 6 of 72 seeds (5 on the positive side; the
        correlation averaged +0.003, a third of its standard error), 4 of 20 with decile
        scores. On large data read a small correlation (0.01-0.02) as inconclusive, whatever
        its p-value. The interval also holds the calibration map fixed, which is fitted on the
        outcomes: on other null worlds of 1,200 rows (three features, one a ``|x|`` kink, the
        score the true log-odds, the default isotonic map) the correlation's spread over data
        sets was 1.5 times its bootstrap standard error and the test rejected in 3 of 20
        audits, all on the positive side (a world of that kind over 80 seeds, ``exact main``
        of ``benchmarks/audit_calibration.py``: spread 1.07 times the standard error, 5 of 80
        rejections, 2 on the positive side); with the exact log-odds at 5,000 rows and
        ``calibration=None`` the correlation sat +0.0075 above zero on average (29 seeds),
        both models misfitting the kink alike. On the 3,000-row worlds the correlation's spread over seeds was
        0.010-0.017: weigh a small correlation by its
        size, and beside ``fidelity_["r2_out_of_fold"]``. At a few hundred rows with many
        nominal features the adjustment can hold few of their levels (one column per two
        rows of a third; a warning names the features) and what both models miss of
        the others shifts the correlation up: on null worlds with 30 nominal features of 3-8
        levels (``nominal 30`` of the script) it averaged +0.061 at 150 rows (17 of 20
        seeds positive; 1 rejection, the interval's standard error, 0.080, being wider than
        the spread over seeds, 0.065) and +0.037 at 300 rows (28 of 40 positive; 4
        rejections, all positive, a flag rate of 0.10 against 0.025), where 5 such features
        or none at 150 rows gave 1 and 0 of 20 with no positive shift. With that warning on
        few rows, a correlation below about 0.2 (the largest of those null worlds: 0.18 at
        150 rows, 0.16 at 300) cannot be told from the levels' shared misfit. The test cannot
        say *which*
        information is missing, nor tell a missing feature from a transformation of the
        audit features that additive models with pairwise interactions cannot represent
        (a three-way interaction, say). Nor can it tell a missing feature from a shape that
        both models underfit alike beyond what the spline of each feature holds: with models
        small enough to underfit (16 bins, at most 300 rounds, ``calibration='sigmoid'``) on
        the smooth-score null world of the spline's bullet above, at 900 rows, the test
        rejected in 4 of 20 seeds with the spline (mean correlation +0.051, 1.6 bootstrap
        standard errors; 18 of 20 and +0.088 without it), where models as the defaults (at
        1,200 rows, isotonic calibration) rejected in 2 of 20. The fidelity does not tell
        them apart (the small mimics' out-of-fold R^2 was 0.969, the others' 0.956): from
        models smaller than the defaults, read a small correlation as inconclusive.

        Parameters
        ----------
        n_bootstrap : int, default=1000
            Bootstrap resamples of the rows, or of the records when fit had ``groups``
            (:func:`~sklearn_distill.stats.bootstrap_correlations`), at least 20 (``MIN_BOOTSTRAP``): with fewer, the interval's ends are the most
            extreme replicates themselves and the standard error rests on a handful of values.
            No p-value can fall below ``2 / (n_bootstrap + 1)``, so a test at the level
            ``1 - confidence`` needs more than ``2 / (1 - confidence) - 1`` resamples (40 at
            95%; fewer are warned about, and the report then says the test could not decide);
            the default leaves room for both.

        Only Pearson's correlation is a test of "nothing missing". Its null, that the outcome
        residual has mean zero given the audit features, makes the residual uncorrelated with
        any function of them, the mimic's residual included; it does not make *rank*
        correlations zero (the rank of ``y - p`` is not a residual of mean zero given the
        features). With nothing missing, a mimic residual that still depends on the features
        (an isotonic calibration's steps, any misfit) gives Spearman and Kendall a nonzero
        value: on a null world whose score is the true log-odds (3,000 rows, isotonic
        calibration) their bootstrap tests at 5% rejected in 6 and 7 of 20 seeds, Pearson's in
        2, and without models, with the true probabilities, in 64-100% of 100 draws where the
        mimic's residual is a function of the features (Pearson's: 6-7%;
        ``benchmarks/audit_rank_null.py``). Their estimates and intervals are given for
        comparison with Tan et al.'s Table 1, without a p-value: an interval says where the
        rank correlation lies, and one that excludes zero is no sign of a missing feature.
        Rows that the adjustment fits alone (a level of a nominal feature held by one row of
        a third) have residuals of exactly zero, so they enter the rank correlations as ties
        at zero, as they enter Pearson's as zeros, whatever the platform's rounding.

        Returns
        -------
        pandas.DataFrame
            Index ``pearson``, ``spearman``, ``kendall``; columns ``estimate``, ``low``,
            ``high`` (interval at ``confidence``), ``p_value`` (bootstrap, for "no
            correlation"; Pearson's only, NaN for the rank correlations, which are not tests
            of "nothing missing"), ``std_error``, ``n_bootstrap``. Also stored as
            ``missing_feature_test_`` (until the next :meth:`fit`, which drops it).
        """
        check_is_fitted(self, "mimic_residuals_")
        check_integer("n_bootstrap", n_bootstrap, minimum=MIN_BOOTSTRAP)
        check_confidence(self.confidence)
        # the level as the verdict reads it (1 - 0.95 is 0.05000000000000004); a p-value must
        # fall below it, and none falls below 2 / (n_bootstrap + 1)
        needed = resamples_needed(self.confidence)
        if n_bootstrap < needed:
            floor, alpha = 2 / (n_bootstrap + 1), round(1.0 - float(self.confidence), 12)
            warnings.warn(
                f"n_bootstrap={n_bootstrap} resamples cannot give a p-value below "
                f"{floor:.3g}, not below 1 - confidence = {alpha:.3g}: the test cannot find a "
                f"correlation at this level, whatever the data. Use at least {needed} "
                "resamples (n_bootstrap; on the command line --n-bootstrap).",
                UserWarning,
                stacklevel=2,
            )
        unheld = levels_unadjusted_text(getattr(self, "_unadjusted_levels_", None))
        if unheld:
            warnings.warn(unheld, UserWarning, stacklevel=2)
        if getattr(self, "_score_in_adjustment_", False):
            warnings.warn(SCORE_IN_ADJUSTMENT_TEXT, UserWarning, stacklevel=2)
            table = pd.DataFrame(
                {
                    "estimate": np.nan,
                    "low": np.nan,
                    "high": np.nan,
                    "p_value": np.nan,
                    "std_error": np.nan,
                    "n_bootstrap": 0,
                },
                index=pd.Index(["pearson", "spearman", "kendall"], name="method"),
            )
            self.missing_feature_test_ = table
            self._missing_feature_test_settings_ = {
                "confidence": self.confidence,
                "n_bootstrap": int(n_bootstrap),
            }
            return table
        self._progress(f"missing-feature test: {n_bootstrap} bootstrap resamples")
        mimic, outcome = self._test_residuals
        table = bootstrap_correlations(
            mimic,
            outcome,
            n_bootstrap=n_bootstrap,
            confidence=self.confidence,
            random_state=self._bootstrap_seed,
            n_jobs=self.n_jobs,
            groups=getattr(self, "_record_codes_", None),
            # the adjusted residuals keep n - k degrees of freedom of n (fit's adjustment)
            variance_inflation=getattr(self, "_test_variance_inflation", 1.0),
        )
        # only Pearson's correlation is zero when nothing is missing (see the docstring)
        table.loc[["spearman", "kendall"], "p_value"] = np.nan
        self.missing_feature_test_ = table
        # the report reruns the test when the audit's confidence has changed since
        self._missing_feature_test_settings_ = {
            "confidence": self.confidence,
            "n_bootstrap": int(n_bootstrap),
        }
        return table

    def stability(
        self,
        X,
        y,
        *,
        teacher_scores=None,
        groups=None,
        n_refits=5,
        bootstrap=True,
        threshold=0.25,
        shape_threshold=1.0,
    ):
        """Refit both models on bootstrap samples with new seeds; flag unstable terms.

        Several additive models can fit the same data equally well and tell different stories;
        a term whose importance or shape changes from refit to refit should not carry a
        conclusion. The marks are thresholds, not tests, and claim no level: an unmarked term
        is not shown stable, only not seen to move in ``n_refits`` refits, and an effect that
        two correlated features share can move between them with neither marked (read their
        shapes together; :meth:`fit` names such features).

        Parameters
        ----------
        X, y, teacher_scores
            The audit data given to :meth:`fit`, the very same values (checked against a
            digest of each recorded at fit; ``teacher_scores`` may be left out when :meth:`fit`
            queried the teacher, and are required when it read them).
        groups : array-like of shape (n_samples,), default=None
            Record identifiers, as for :meth:`fit`: the bootstrap then resamples whole
            records (a cluster bootstrap: record identifiers are drawn with replacement and
            every row of each drawn record is taken), so a record entered several times is
            never split between being in a sample and out of it, and each refit's mimic
            calibrates with a record's rows in one fold. When the audit was fitted
            with ``groups``, pass the same ones (other identifiers are refused); left out, the
            rows are resampled one by one, with a warning. Without ``bootstrap``, unused.
        n_refits : int, default=5
            Refits of each model (at least 2).
        bootstrap : bool, default=True
            Refit on bootstrap samples of the rows; ``False`` changes only the seeds.
        threshold : float, default=0.25
            The largest coefficient of variation of a term's importance that is not marked;
            above 0 (:func:`~sklearn_distill.stats.term_stability`).
        shape_threshold : float, default=1.0
            The largest shape noise (the refits' disagreement about a term's shape, next to
            the shape's own spread) that is not marked; above 0. A change of importance rank
            alone marks no term.

        Returns
        -------
        pandas.DataFrame
            :func:`~sklearn_distill.stats.term_stability`'s table for each model, with a
            ``model`` column (``"mimic"`` or ``"outcome"``); also stored as ``stability_``
            (until the next :meth:`fit`, which drops it).
        """
        check_is_fitted(self, "outcome_")
        # the refits must be of the fitted audit: settings changed by set_params since would
        # measure the stability of models the audit never fitted
        fitted = getattr(self, "_fit_params", None)
        if fitted is None:  # fitted by a version that kept no settings: nothing to compare
            fitted = {}
        now = _refit_settings(self)
        changed = {
            name: (value, now.get(name))
            for name, value in fitted.items()
            if name not in now or _setting_changed(value, now[name])
        }
        changed.update({name: (None, now[name]) for name in now if fitted and name not in fitted})
        # a model replaced by another kind: said once, not with each of its parameters
        changed = {
            name: values for name, values in changed.items() if name.split("__")[0] == name
            or name.split("__")[0] not in changed
        }  # fmt: skip
        if changed:
            said = ", ".join(
                f"{k} {old!r} at fit, {new!r} now" for k, (old, new) in changed.items()
            )
            raise ValueError(
                f"stability() refits the audit as it was fitted; its settings changed since "
                f"fit ({said}). Call fit() again to audit with the new settings, or set them back."
            )
        check_integer("n_refits", n_refits, minimum=2)
        bootstrap = check_bool("bootstrap", bootstrap)
        threshold = check_real("threshold", threshold, minimum=0, exclusive_minimum=True)
        shape_threshold = check_real(
            "shape_threshold", shape_threshold, minimum=0, exclusive_minimum=True
        )
        if X is None:
            fail("X", _X_CONSTRAINT, X, TypeError)
        # the columns of fit, checked as the mimic's predict checks them: other columns would
        # give refits of models the audit never fitted
        self.mimic_._check_X(X, reset=False)
        n_samples = _num_samples(X)
        if n_samples != _num_samples(self.mimic_residuals_):
            raise ValueError(
                f"X has {n_samples} rows but the audit was fitted on "
                f"{_num_samples(self.mimic_residuals_)}: pass the data given to fit."
            )
        _, y01 = self._check_y(y, n_samples)
        if self.teacher is None and teacher_scores is None:
            raise ValueError(
                "teacher_scores (the black box's score on X) are required when no teacher is "
                "given to query."
            )
        if teacher_scores is None and getattr(self, "_fit_read_scores_", False):
            raise ValueError(
                "teacher_scores (the black box's score on X) are required: fit read the "
                "scores from teacher_scores, and refits that queried the teacher instead could "
                "read another black box (the teacher set now, or one whose scores differ by "
                "rounding). Pass the teacher_scores given to fit."
            )
        scores = (
            None
            if teacher_scores is None
            else _teacher.check_scores(
                _teacher.align_score_columns(teacher_scores, self.classes_), n_samples
            )
        )
        groups = _check_groups(groups, n_samples)
        self._check_same_data(X, y01, scores, groups)
        fitted_groups = getattr(self, "_fit_fingerprints_", {}).get("groups")
        if bootstrap and groups is None and fitted_groups is not None:
            warnings.warn(
                "the audit was fitted with groups (record identifiers), but stability() got "
                "none: its bootstrap resamples rows one by one, so the rows of a record entered "
                "more than once are split, some in a sample and some not. Pass "
                "stability(..., groups=record_ids) to resample whole records.",
                UserWarning,
                stacklevel=2,
            )
        rng = check_random_state(None if self.random_state is None else self._bootstrap_seed)
        samples = [
            _bootstrap_rows(rng, n_samples, groups) if bootstrap else np.arange(n_samples)
            for _ in range(n_refits)
        ]
        seeds = [_seed(rng) for _ in range(n_refits)]
        self._progress(f"stability: refitting both models {n_refits} times")
        refits = Parallel(n_jobs=self.n_jobs, verbose=self._joblib_verbosity)(
            delayed(_refit_contributions)(self, X, y01, scores, rows, seed)
            for rows, seed in zip(samples, seeds)
        )
        tables = []
        for model, index in (("mimic", 0), ("outcome", 1)):
            names, _ = refits[0][index]
            contributions = np.stack([refit[index][1] for refit in refits])
            table = term_stability(
                contributions, names, threshold=threshold, shape_threshold=shape_threshold
            )
            tables.append(table.assign(model=model).reset_index())
        self.stability_ = pd.concat(tables, ignore_index=True)[
            ["model", "term", *tables[0].columns.drop(["model", "term"])]
        ]
        # what the report says of the table (dropped with it by the next fit)
        self.stability_settings_ = {
            "n_refits": n_refits,
            "bootstrap": bootstrap,
            "threshold": threshold,
            "shape_threshold": shape_threshold,
            # what the bootstrap resampled: whole records, or rows one by one although fit
            # had record identifiers (it warned), or rows of an audit without them
            "resampled": (
                "records"
                if groups is not None
                else "rows apart from their records"
                if fitted_groups is not None
                else "rows"
            ),
        }
        return self.stability_

    def _check_same_data(self, X, y01, scores, groups=None):
        """Refuse data other than fit's: refits of other data would be read as this audit's."""
        recorded = getattr(self, "_fit_fingerprints_", None)
        if recorded is None:  # fitted before the digests were recorded
            return
        given = {"X": X, "y": y01, "teacher_scores": scores, "groups": groups}
        for name, what in (
            ("X", "the features"),
            ("y", "the outcome"),
            ("teacher_scores", "the black box's scores"),
            ("groups", "the record identifiers"),
        ):
            if given[name] is None or recorded.get(name) is None:
                # teacher_scores left out: the teacher is queried on X, as at fit; groups
                # given only now (or not at all): nothing of fit's to match
                continue
            if fingerprint(given[name]) != recorded[name]:
                raise ValueError(
                    f"{name} must be {what} given to fit, as stability() refits this audit's "
                    "models on them; got other values (of the same shape). Refit the audit on "
                    "new data first."
                )

    # ------------------------------------------------------------------ output
    def plot_comparison(self, terms=None, *, runs=5, **kwargs):
        """Mimic against outcome per term (:func:`sklearn_distill.plotting.plot_comparison`).

        ``runs``: the numeric and ordinal features whose values are mostly too thin to test
        one by one are compared on this many runs of adjacent values (:meth:`compare_runs`),
        each run's two means drawn over the run's values on the feature's panel and a run that
        differs marked; ``None`` draws no runs. Other keyword arguments go to
        :func:`~sklearn_distill.plotting.plot_comparison`."""
        from sklearn_distill.plotting import plot_comparison
        from sklearn_distill.report import _run_comparison

        check_is_fitted(self, "outcome_")
        if runs is not None:
            runs = check_integer("runs", runs, minimum=2)
        comparison = self.compare()
        table = _run_comparison(self, comparison, runs)
        return plot_comparison(comparison, terms, runs=table, **kwargs)

    def plot_interaction(self, term, *, blocks=False, fig=None):
        """One interaction as heatmaps of both surfaces and their difference
        (:func:`sklearn_distill.plotting.plot_interaction`): its cells from :meth:`compare`,
        or with ``blocks=True`` its coarse blocks from :meth:`compare_interactions` (a number,
        ``blocks=4``, the blocks per axis, as :meth:`compare_interactions` takes it). ``term``
        as the tables name it (``"a & b"``); ``fig`` a figure or subfigure to draw in."""
        from sklearn_distill.plotting import plot_interaction

        check_is_fitted(self, "outcome_")
        count = isinstance(blocks, numbers.Integral) and not isinstance(blocks, bool | np.bool_)
        if count or check_bool("blocks", blocks):
            # compare_interactions checks a count
            table = self.compare_interactions(**({"blocks": blocks} if count else {}))
            terms = set(table["term"])
        else:
            table = self.compare()
            terms = set(table.loc[table["kind"] == "interaction", "term"])
        if term not in terms:
            raise ValueError(
                f"term must be one of the audit's interactions {sorted(terms)}; got {term!r}."
            )
        return plot_interaction(table, term, fig=fig)

    def plot_calibration(self, score_name="score", *, ax=None):
        """Calibration curve of the score (:func:`sklearn_distill.plotting.plot_calibration`);
        ``ax``: where to draw (a new figure when omitted)."""
        from sklearn_distill.plotting import plot_calibration

        check_is_fitted(self, "outcome_")
        if self.calibration_table_ is None:
            raise ValueError("the score is not one-dimensional: there is no calibration curve.")
        figure = plot_calibration(
            self.calibration_table_, curve=self.calibration_curve_, score_name=score_name, ax=ax
        )
        # the rate drawn is of y's event, classes_[1], whatever its label (not "1")
        outcome = getattr(self, "_outcome_name", None) or "outcome"
        axis = figure.axes[0] if ax is None else ax
        axis.set_ylabel(f"P({outcome} = {self.classes_[1]})", parse_math=False)
        return figure

    def plot_residuals(self, *, ax=None):
        """Scatter of the residual pairs the missing-feature test correlates: every cross pair
        of every repeat, after the adjustment
        (:func:`sklearn_distill.plotting.plot_residuals`), with the correlations of
        :meth:`missing_feature_test` when it was run at the current ``confidence``; ``ax``:
        where to draw (a new figure when omitted)."""
        from sklearn_distill.plotting import plot_residuals

        check_is_fitted(self, "mimic_residuals_")
        mimic, outcome = self._test_residuals
        # the stored test's intervals are shown only at the level they were computed at
        settings = getattr(self, "_missing_feature_test_settings_", {})
        current = settings.get("confidence") == self.confidence
        # a test with nothing to correlate has no correlations to show (NaN)
        shown = current and not getattr(self, "_score_in_adjustment_", False)
        return plot_residuals(
            mimic.ravel(),
            outcome.ravel(),
            correlations=getattr(self, "missing_feature_test_", None) if shown else None,
            ax=ax,
        )

    def report(
        self,
        path,
        *,
        title="Distill-and-Compare audit",
        n_bootstrap=1000,
        description=None,
        rule_tree=None,
        rule_fidelity=None,
        runs=5,
    ):
        """Write a self-contained HTML report (:func:`sklearn_distill.report.write_audit_report`).

        The arguments, ``path`` included (a file in an existing directory, writable), are
        checked before any work. The missing-feature test shown is the one stored by
        :meth:`missing_feature_test` when it was run at the audit's current ``confidence``;
        when it has not been run, or was run at another confidence (``set_params``), it is
        run here at the current one, and stored (see
        :func:`~sklearn_distill.report.audit_report_sections`).

        Parameters
        ----------
        path : str or os.PathLike
            Where to write the HTML file.
        title : str, default="Distill-and-Compare audit"
        n_bootstrap : int, default=1000
            Used to run :meth:`missing_feature_test` if it has not been run (at least 20).
        description : dict, optional
            Extra key/value lines for the summary (e.g. the data file, score and label
            columns); shown escaped.
        rule_tree : DistilledTree, optional
            A fitted rule tree of the same score, shown as "the black box as rules".
        rule_fidelity : dict, optional
            Its fidelity, shown beside it.
        runs : int or None, default=5
            Runs of adjacent values per feature on which the numeric and ordinal features
            whose values are mostly too thin to test are compared (:meth:`compare_runs`);
            ``None`` leaves the runs out.

        Returns
        -------
        str
            The path written.
        """
        from sklearn_distill.report import write_audit_report

        check_is_fitted(self, "outcome_")
        return write_audit_report(
            self,
            path,
            title=title,
            n_bootstrap=n_bootstrap,
            description=description,
            rule_tree=rule_tree,
            rule_fidelity=rule_fidelity,
            runs=runs,
        )


def _margins_are_log_odds(teacher, X, rows: int = 50) -> bool:
    """Whether a binary classifier's ``decision_function`` is the log-odds of its own
    ``predict_proba`` (a logistic model's is) on the first ``rows`` rows of ``X``; False when
    it has no ``predict_proba`` or either cannot be read."""
    if not hasattr(teacher, "predict_proba"):
        return False
    try:
        head = take_rows(X, np.arange(min(rows, _num_samples(X))))
        margin = np.asarray(teacher.decision_function(head), dtype=float)
        proba = np.asarray(teacher.predict_proba(head), dtype=float)
    except Exception:  # the audit's own fit reads the teacher and says what fails
        return False
    if margin.ndim != 1 or proba.ndim != 2 or proba.shape[1] != 2:
        return False
    from scipy.special import expit

    return bool(np.allclose(expit(margin), proba[:, 1], atol=1e-6))


def _check_score_is_not_label(scores, y01, classes, *, queried: bool = False) -> None:
    """Refuse a score that is the outcome itself: two values, one on every row of each label
    (y's 0/1 event indicator, y as given, or either reversed; of two class columns, the event
    column's margin over the other, as the mimic reads them: one-hot labels). Audited, it reads
    as a black box that weighs features as the outcome does, with its residuals' correlation
    taken for a missing feature: leakage (the label column given as the score), or a teacher
    audited on rows it memorised (``queried``), not an audit."""
    shown = scores
    if scores.ndim == 2 and scores.shape[1] == 2:
        shown = scores[:, 1]  # said as given: the event's column
        scores = CompareAudit._event_score(scores)
    if scores.ndim != 1:
        return
    values = np.unique(scores)
    if values.size != 2:
        return
    on_event = np.unique(scores[y01 == 1])
    on_other = np.unique(scores[y01 == 0])
    if on_event.size == 1 and on_other.size == 1:
        labels = [c.item() if isinstance(c, np.generic) else c for c in classes]
        event, other = shown[y01 == 1][0], shown[y01 == 0][0]
        found = (
            f"two values, {event:g} on every row of y = {labels[1]!r} and "
            f"{other:g} on every row of y = {labels[0]!r}"
        )
        if queried:
            raise ValueError(
                f"teacher's scores on X are the outcome itself (the event's score takes {found}): "
                "a teacher that memorised these rows (audited on its own training data?) or "
                "that separates them perfectly. The audit would read the label as a black "
                "box's score; audit the teacher on rows it was not trained on."
            )
        raise ValueError(
            f"teacher_scores must be the black box's score, not the outcome; the event's score "
            f"takes {found}: the label itself (was the label column given as the score, or "
            "one-hot class columns?). A score that is the outcome is leakage, and the audit "
            "would read it as a black box."
        )


def _length(values):
    """The number of rows of ``values``, or None when it has none (None, a scalar)."""
    if values is None:
        return None
    try:
        return _num_samples(values)
    except TypeError:
        return None


def _refit_contributions(audit, X, y01, scores, rows, seed):
    """Per-term contributions on all of ``X`` of a mimic and an outcome model refitted on
    ``rows``; each as (term names, array of shape (n_samples, n_terms))."""
    sample_scores = None if scores is None else scores[rows]
    # the copies a bootstrap sample makes of a row (or of a record's rows) stay together in
    # both models' early-stopping splits and in the mimic's calibration folds: split
    # apart, a copy's calibrated target would be made from its twin's label, its own
    codes = getattr(audit, "_record_codes_", None)
    records = rows if codes is None else codes[rows]
    mimic, outcome = _fit_pair(
        audit, take_rows(X, rows), y01[rows], sample_scores, seed, 1, audit._pairs,
        records=records,
    )  # fmt: skip
    out = []
    for model in (mimic.student_, outcome):
        if not hasattr(model, "eval_terms"):
            raise TypeError(
                "stability() needs Explainable Boosting Machines (eval_terms); got "
                f"{type(model).__name__}."
            )
        out.append((list(model.term_names_), np.asarray(model.eval_terms(X), dtype=float)))
    return out
