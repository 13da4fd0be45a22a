"""A known answer for the missing-feature test of Distill-and-Compare.

Two black boxes score the same people. Both were trained on the features the auditor has --
age, income, region -- but the first also saw a feature the audit data lack (``hidden``,
which drives the outcome). Auditing each with CompareAudit, the test should find a missing
feature for the first black box and none for the second.

Run from the repository root:

    PYTHONPATH=. python examples/compare_planted_missing_feature.py [--seed 0]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import parse_seed  # the examples folder, as run from the repository root

from sklearn_distill import CompareAudit
from sklearn_distill.report import format_p_value


def make_people(n, rng):
    """Features, the hidden feature, and an outcome whose log-odds are additive in all four."""
    age = rng.integers(18, 75, size=n)
    income = rng.lognormal(mean=10, sigma=0.5, size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    hidden = rng.normal(size=n)
    logit = (
        -0.04 * (age - 40)
        - 0.6 * (np.log(income) - 10)
        + np.select([region == "south", region == "east"], [0.5, -0.3], 0.0)
        + 1.2 * hidden
    )
    outcome = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame({"age": age, "income": income, "region": region})
    return features, hidden, outcome


def black_box(features, hidden, outcome, *, sees_hidden, seed):
    """A gradient-boosted classifier trained on the features, and on ``hidden`` if it may
    (seeded: on 20,000 rows it stops early on a validation split it draws)."""
    X = features.assign(region=features["region"].astype("category"))
    if sees_hidden:
        X = X.assign(hidden=hidden)
    model = HistGradientBoostingClassifier(
        max_iter=200, categorical_features="from_dtype", random_state=seed
    )
    return model.fit(X, outcome), sees_hidden


def score(box, features, hidden):
    model, sees_hidden = box
    X = features.assign(region=features["region"].astype("category"))
    if sees_hidden:
        X = X.assign(hidden=hidden)
    return model.predict_proba(X)[:, 1]


def test_table(table):
    """The missing-feature test's table as the command line and the report print it: a
    p-value at the bootstrap's floor as ``<= 0.002`` (the true one may be anything below),
    and the rank correlations, which carry none, as not a test."""
    shown = table[["estimate", "low", "high"]].round(4)
    shown["p-value"] = [
        "not a test" if method != "pearson" and p != p else format_p_value(p, b)
        for method, p, b in zip(table.index, table["p_value"], table["n_bootstrap"])
    ]
    return shown


def main(seed=0):
    rng = np.random.default_rng(seed)
    # the black boxes are trained on one sample; the auditor sees another
    train_features, train_hidden, train_outcome = make_people(20_000, rng)
    audit_features, audit_hidden, audit_outcome = make_people(5_000, rng)

    results = {}
    for name, sees_hidden in (("uses the hidden feature", True), ("does not", False)):
        box = black_box(
            train_features, train_hidden, train_outcome, sees_hidden=sees_hidden, seed=seed
        )
        audit_scores = score(box, audit_features, audit_hidden)
        # the auditor has features, score and outcome -- not `hidden`
        audit = CompareAudit(random_state=0, n_jobs=2)
        audit.fit(audit_features, audit_outcome, teacher_scores=audit_scores)
        table = audit.missing_feature_test(n_bootstrap=1000)
        # Pearson's row is the test (the rank correlations are not zero when nothing is
        # missing): a positive correlation, its p-value below 5%
        pearson = table.loc["pearson"]
        detected = bool(pearson["estimate"] > 0 and pearson["p_value"] < 0.05)
        results[name] = detected
        print(f"\nBlack box that {name}: residual correlations (95% bootstrap intervals)")
        print(test_table(table).to_string())
        print(f"missing feature detected: {detected}")

    expected = {"uses the hidden feature": True, "does not": False}
    print(f"\nknown answer recovered: {results == expected}")


def parse_args(argv=None):
    return parse_seed(__doc__, "people", argv)


if __name__ == "__main__":
    main(parse_args().seed)
