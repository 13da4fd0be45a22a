"""How the score's calibration sets the scale of the audit's effects: a planted bias, read back.

Generated worlds of 4,000 rows (age uniform on [20, 70], debt normal, region one of four
equally likely values; outcome log-odds ``-0.04 (age - 45) + 0.7 debt``, outcome drawn from
it). The black box's score is the outcome's log-odds plus a bias of ``--bias`` log-odds on
region ``a``. A main-effect ``CompareAudit`` is fitted to each world with the score given
three ways: its raw log-odds mimicked as they are (``calibration=None``), the same calibrated
by the monotone spline, and the score's deciles (1-10) calibrated by isotonic regression (the
default). Printed, per way, the bias the mimic reads (region ``a``'s value minus the mean of
the other three regions' values) and the difference the audit reports there, as means (and
standard deviations) over the worlds, and the share of worlds in which ``a`` is flagged after
the adjustment.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_calibration_scale.py [--worlds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def world(seed, bias, n=4000):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.uniform(20, 70, n),
            "debt": rng.normal(size=n),
            "region": rng.choice(["a", "b", "c", "d"], n),
        }
    )
    truth = -0.04 * (X["age"] - 45) + 0.7 * X["debt"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-truth))).astype(int).to_numpy()
    logit = (truth + bias * (X["region"] == "a")).to_numpy()
    return X, y, logit


def read_back(audit):
    table = audit.compare()
    region = table[table["term"] == "region"].set_index("value")
    others = [v for v in ("b", "c", "d")]
    mimic = region.loc["a", "mimic"] - region.loc[others, "mimic"].mean()
    outcome = region.loc["a", "outcome"] - region.loc[others, "outcome"].mean()
    return mimic, region.loc["a", "difference"], outcome, bool(region.loc["a", "significant_bh"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=5)
    parser.add_argument("--bias", type=float, default=0.74)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill import CompareAudit

    start = time.perf_counter()
    rows = []
    for seed in range(args.worlds):
        X, y, logit = world(seed, args.bias)
        deciles = pd.qcut(logit, 10, labels=False) + 1
        ways = (
            ("raw log-odds, calibration=None", logit, None),
            ("raw log-odds, calibration='spline'", logit, "spline"),
            ("deciles, calibration='isotonic'", deciles, "isotonic"),
        )
        for way, score, calibration in ways:
            audit = CompareAudit(interactions=0, calibration=calibration, random_state=seed)
            audit.fit(X, y, teacher_scores=score)
            mimic, difference, outcome, flagged = read_back(audit)
            rows.append(
                {
                    "score given as": way,
                    "bias read by the mimic": mimic,
                    "difference reported at a": difference,
                    "outcome's a - others": outcome,
                    "a flagged (share)": flagged,
                }
            )
    frame = pd.DataFrame(rows)
    frame["a flagged (share)"] = frame["a flagged (share)"].astype(float)
    grouped = frame.groupby("score given as", sort=False)
    table = grouped.mean().round(3).astype(str) + " (" + grouped.std().round(3).astype(str) + ")"
    print(f"planted bias {args.bias} log-odds on region a; {args.worlds} worlds of 4,000 rows")
    print("means (standard deviations) over the worlds")
    with pd.option_context("display.width", 120):
        print(table.to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
