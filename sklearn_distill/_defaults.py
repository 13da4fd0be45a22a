"""Default Explainable Boosting Machines of the package, in one place.

:class:`~sklearn_distill.DistilledGAM`'s student, and :class:`~sklearn_distill.CompareAudit`'s
mimic and outcome model are built here. ``sklearn_distill.gam.default_student`` and
``sklearn_distill.audit.default_mimic_student`` / ``default_outcome_model`` re-export them.
"""

from __future__ import annotations

__all__ = [
    "AUDIT_EBM_PARAMS",
    "DEFAULT_STUDENT_PARAMS",
    "default_mimic_student",
    "default_outcome_model",
    "default_student",
]

#: Settings of the default Explainable Boosting Machine student, chosen for mimicking a teacher
#: (see benchmarks/gam_speed.py and benchmarks/README.md). interpret's defaults are tuned for
#: noisy labels: a small learning rate, 14 bags and 5 x n_features interactions boost for
#: hundreds of thousands of rounds on a noise-free target. A teacher's score needs fine main-
#: effect bins (1024) far more than slow learning; 32 bins per interaction axis cost a quarter
#: of 64 for a fidelity loss of about 0.001 R^2. Eight bags, as the audit's EBMs: the bands of
#: :mod:`sklearn_distill.shapes` rest on a standard error estimated from the bags, on bags - 1
#: degrees of freedom. With four (3 dof) 90% of the standard errors fall within 0.34-1.61 times
#: their expectation, and neighbouring values of COMPAS's priors_count got bands 5 to 19 times
#: apart by the bags' noise alone; eight (7 dof) narrow that to 0.56-1.42 and the t quantile
#: from 3.18 to 2.36, for 1.4 times the fit time on two cores (20,000 rows) and 2.0-2.7 times on
#: one thread (benchmarks/gam_band_stability.py).
DEFAULT_STUDENT_PARAMS = {
    "learning_rate": 0.5,
    "max_rounds": 2000,
    "early_stopping_rounds": 20,
    "outer_bags": 8,
    "validation_size": 0.15,
    "interactions": 10,
    "max_bins": 1024,
    "max_interaction_bins": 32,
    "smoothing_rounds": 50,
    "interaction_smoothing_rounds": 20,
}

#: Settings shared by the audit's two default EBMs. The same ``max_bins`` and
#: ``max_interaction_bins`` give both models the same bins on the same rows, so their shape
#: functions line up value by value (and cell by cell for an interaction); eight bags make the
#: jackknife bands of :mod:`sklearn_distill.shapes` steadier than four. ``interactions`` is
#: set by the audit itself (its ``interactions`` parameter), as an explicit list of pairs
#: shared by both models.
AUDIT_EBM_PARAMS = {
    "max_bins": 256,
    "max_interaction_bins": 32,
    "interactions": 0,
    "outer_bags": 8,
    "validation_size": 0.15,
}


#: The audit's outcome model's learning rate (interpret's default is 0.015): see
#: :func:`default_outcome_model`.
OUTCOME_LEARNING_RATE = 0.1


def default_student(random_state=None, n_jobs=None):
    """The default student: an ExplainableBoostingRegressor with :data:`DEFAULT_STUDENT_PARAMS`.

    Parameters
    ----------
    random_state : int or None, default=None
    n_jobs : int or None, default=None
        Workers of the EBM's bags; ``None`` uses every core (the bags are independent fits).

    Returns
    -------
    interpret.glassbox.ExplainableBoostingRegressor

    Examples
    --------
    >>> default_student(random_state=0).get_params()["max_bins"]
    1024
    """
    from interpret.glassbox import ExplainableBoostingRegressor

    return ExplainableBoostingRegressor(
        **DEFAULT_STUDENT_PARAMS,
        n_jobs=-1 if n_jobs is None else n_jobs,
        random_state=random_state,
    )


def default_mimic_student(random_state=None, n_jobs=1):
    """The audit mimic's default student: :func:`default_student`'s settings with the audit's
    binning and bag count (:data:`AUDIT_EBM_PARAMS`).

    Parameters
    ----------
    random_state : int or None, default=None
    n_jobs : int, default=1
        Workers of the EBM's bags.

    Returns
    -------
    interpret.glassbox.ExplainableBoostingRegressor

    Examples
    --------
    >>> default_mimic_student(random_state=0).get_params()["outer_bags"]
    8
    """
    from interpret.glassbox import ExplainableBoostingRegressor

    params = {**DEFAULT_STUDENT_PARAMS, **AUDIT_EBM_PARAMS}
    return ExplainableBoostingRegressor(**params, n_jobs=n_jobs, random_state=random_state)


def default_outcome_model(random_state=None, n_jobs=1):
    """The audit's default outcome model: a logistic EBM with the mimic's binning and bag count.

    Boosting settings are interpret's own (early stopping on each bag's held-out rows) but for
    the learning rate, :data:`OUTCOME_LEARNING_RATE` instead of interpret's 0.015. Early
    stopping picks the fit that predicts held-out labels best, which for noisy 0/1 labels is a
    shrunk one; at 0.015 it shrank the shapes of generated worlds (4,000 rows) to 91%, 76% and
    89% of the true effects of a strong, a weak and a boolean feature, while the mimic, fitted
    to a noise-free score, kept 100%: a faithful black box then differs from the outcome by the
    shrinkage alone. At 0.1 the shares were 94%, 88% and 101%, and a fit took half the time.

    Parameters
    ----------
    random_state : int or None, default=None
    n_jobs : int, default=1
        Workers of the EBM's bags.

    Returns
    -------
    interpret.glassbox.ExplainableBoostingClassifier

    Examples
    --------
    >>> default_outcome_model(random_state=0).get_params()["max_bins"]
    256
    """
    from interpret.glassbox import ExplainableBoostingClassifier

    return ExplainableBoostingClassifier(
        **AUDIT_EBM_PARAMS,
        learning_rate=OUTCOME_LEARNING_RATE,
        n_jobs=n_jobs,
        random_state=random_state,
    )
