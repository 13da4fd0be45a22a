"""How often CompareAudit.compare() calls a difference significant when there is none.

The black box here *is* the truth: its score is the true log-odds of the outcome, so the mimic
and the outcome model estimate the same shape functions and every "significant" difference is a
false positive. With 95% bands, about 5% of the term values should be flagged. The share is
measured for each calibration of the score, over a few synthetic data sets (3,000 rows; a
linear, a sine-shaped and a categorical feature), with CompareAudit's default EBMs, for the
main-effect values and the interaction cells apart (raw flags, before Benjamini-Hochberg).

    .venv/bin/python benchmarks/audit_null.py [--seeds 3]
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from sklearn_distill import CompareAudit

EFFECTS = {"p": 0.5, "q": 0.0, "r": -0.5, "s": 0.2}


def make_audit_data(seed, n=3000):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(-2, 2, size=n),
            "c": rng.choice(list(EFFECTS), size=n),
        }
    )
    logit = 0.8 * X["a"] + np.sin(X["b"]) + X["c"].map(EFFECTS)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, logit.to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        X, y, score = make_audit_data(seed)
        for calibration in (None, "sigmoid", "isotonic"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # isotonic saturates, as expected
                audit = CompareAudit(calibration=calibration, cv=2, random_state=seed, n_jobs=2)
                table = audit.fit(X, y, teacher_scores=score).compare()
            for kind, part in table.groupby("kind"):
                rows.append(
                    {
                        "calibration": str(calibration),
                        "kind": kind,
                        "seed": seed,
                        "share of values flagged": part["significant"].mean(),
                        "share of rows in flagged values": np.average(
                            part["significant"], weights=part["weight"]
                        ),
                    }
                )
    frame = pd.DataFrame(rows)
    print(frame.round(3).to_string(index=False))
    print("\nmean over seeds (nominal: 0.05):")
    summary = frame.groupby(["kind", "calibration"], sort=False)[
        ["share of values flagged", "share of rows in flagged values"]
    ].mean()
    print(summary.round(3).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
