"""An audit scaled out with joblib's Dask backend gives the results of a single process.

A ``dask.distributed.LocalCluster`` of two worker processes (no dashboard, no network beyond
the local loopback) runs the fold refits and the bootstrap of a small audit under
``joblib.parallel_config(backend="dask")``; every result equals ``n_jobs=1`` exactly.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from joblib import parallel_config

from sklearn_distill import CompareAudit

distributed = pytest.importorskip("dask.distributed")

TINY = {"outer_bags": 2, "max_rounds": 100, "max_bins": 16, "max_interaction_bins": 8}


def _audit(n_jobs):
    return CompareAudit(
        calibration="sigmoid",
        interactions=1,
        cv=3,
        random_state=0,
        n_jobs=n_jobs,
        student=ExplainableBoostingRegressor(**TINY, learning_rate=0.2, n_jobs=1),
        outcome=ExplainableBoostingClassifier(**TINY, learning_rate=0.05, n_jobs=1),
    )


def _run(audit, X, y, score):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=score)
    return audit, audit.compare(), audit.missing_feature_test(n_bootstrap=120)


def test_dask_cluster_equals_one_process():
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] + 0.8 * X["a"] * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = (logit + 0.2 * rng.normal(size=n)).to_numpy()

    local, local_table, local_test = _run(_audit(1), X, y, score)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with parallel_config(backend="dask"):
            remote, remote_table, remote_test = _run(_audit(-1), X, y, score)
        # the work ran on the cluster's two worker processes
        assert len(client.scheduler_info()["workers"]) == 2
        assert sum(client.run(lambda: 1).values()) == 2

    np.testing.assert_array_equal(remote.mimic_residuals_, local.mimic_residuals_)
    np.testing.assert_array_equal(remote.outcome_residuals_, local.outcome_residuals_)
    assert remote.interaction_pairs_ == local.interaction_pairs_
    pd.testing.assert_frame_equal(remote_table, local_table)
    pd.testing.assert_frame_equal(remote_test, local_test)
