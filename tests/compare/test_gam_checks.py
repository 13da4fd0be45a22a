"""scikit-learn's estimator checks for DistilledGAM (no teacher: it mimics y as a regressor)."""

import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_distill import DistilledGAM

# A small EBM keeps the ~50 checks fast; the default student is covered by the other tests.
SMALL_EBM = ExplainableBoostingRegressor(
    outer_bags=2, max_rounds=100, interactions=0, max_bins=16, n_jobs=1, random_state=0
)


# Every check passes, so no check is listed in ``expected_failed_checks``.
@parametrize_with_checks([DistilledGAM(student=SMALL_EBM, random_state=0)])
@pytest.mark.filterwarnings("ignore:Missing values detected")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
