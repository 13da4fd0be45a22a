"""scikit-learn's estimator checks for DistilledTree (no teacher: it mimics y as a regressor)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_distill import DistilledTree


# Every check passes, so no check is listed in ``expected_failed_checks``.
@parametrize_with_checks([DistilledTree(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
