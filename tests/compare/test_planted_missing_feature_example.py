"""The planted missing-feature example prints the test's table as the command line and the
report do."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_distill import CompareAudit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compare_planted_missing_feature.py"


def _example():
    spec = importlib.util.spec_from_file_location("compare_planted_missing_feature", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_prints_p_values_at_their_floor_and_no_nan():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    hidden = rng.normal(size=n)
    logit = X["a"] + 2 * hidden
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    audit = CompareAudit(
        random_state=0, calibration="spline", cv=2, n_crossfits=1, interactions=0, n_jobs=1
    )
    audit.fit(X, y, teacher_scores=logit.to_numpy())
    table = audit.missing_feature_test(n_bootstrap=99)
    assert table.loc["pearson", "p_value"] <= 2 / 100  # at the bootstrap's floor
    shown = _example().test_table(table)
    assert list(shown["p-value"]) == ["<= 0.02", "not a test", "not a test"]
    assert "nan" not in shown.to_string().lower()
