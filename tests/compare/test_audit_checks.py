"""scikit-learn's estimator checks and ecosystem conventions for CompareAudit.

The checks fit CompareAudit dozens of times, so the mimic's student and the outcome model are
fast linear models here; the default EBMs are exercised in test_audit.py. The checks' data sets
have as few as three rows of a class per fold, too few for the score's cross-fitted
calibration, so the score is mimicked uncalibrated (calibration is tested in test_audit.py).
"""

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_distill.audit import CompareAudit


class FirstColumn:
    """A black box that can be queried: the first feature is its score. A class with a fixed
    repr, so that the checks' test ids are the same in every process (a function's repr holds
    its address, which differs between pytest-xdist's workers)."""

    def __call__(self, X):
        return np.asarray(X, dtype=float)[:, 0]

    def __repr__(self) -> str:
        return "first_column"


first_column = FirstColumn()


def _audit():
    return CompareAudit(
        first_column,
        student=LinearRegression(),
        outcome=LogisticRegression(),
        calibration=None,
        cv=2,
        random_state=0,
    )


# No check is expected to fail.
@parametrize_with_checks([_audit()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_routes_teacher_scores_to_the_audit():
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    X.loc[::7, "b"] = np.nan
    y = (X["a"] + rng.normal(size=60) > 0).astype(int)
    score = X["a"].to_numpy()
    audit = _audit().set_params(teacher=None)
    pipe = make_pipeline(SimpleImputer(), audit).fit(X, y, compareaudit__teacher_scores=score)
    fitted = pipe[-1]
    assert fitted.n_features_in_ == 2
    assert fitted.mimic_residuals_.shape == (60,)
    assert audit is fitted and X["b"].isna().sum() == 9  # the input frame is left as it was
