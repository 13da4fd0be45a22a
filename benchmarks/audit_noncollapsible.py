"""A black box equal to the true risk, where the risk also depends on information the audit
data lack: log-odds do not average (they are not collapsible), so the outcome model's shapes
shrink toward 0 while the mimic's do not, and compare() flags values of a fair black box.

World: ``logit = a + 1.0 * (g == "v") + h``, ``h ~ N(0, sigma^2)`` known to the black box and
absent from X; the score *is* ``logit``. For each sigma: the values flagged after the
Benjamini-Hochberg adjustment, the slope of the outcome model's shape values on the mimic's
(weighted by rows), the attenuation ``1 / sqrt(1 + pi * sigma^2 / 8)`` (the probit
approximation for a normal missing part independent of X), the one the report states from the
mimic's RMSE, and a plain logistic regression's slopes against a linear regression's, for
scale. sigma = 0 is the control (nothing missing).

Run: OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/audit_noncollapsible.py [--rows 12000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from sklearn_distill import CompareAudit
from sklearn_distill.report import attenuation_from_rmse


def one_world(sigma: float, rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=rows), "g": rng.choice(["u", "v"], rows)})
    logit = X["a"] + 1.0 * (X["g"] == "v") + sigma * rng.normal(size=rows)
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    models = {"interactions": 0, "max_bins": 8, "outer_bags": 8}
    audit = CompareAudit(
        student=ExplainableBoostingRegressor(**models),
        outcome=ExplainableBoostingClassifier(**models),
        calibration="spline",
        interactions=0,
        n_crossfits=1,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.fit(X, y, teacher_scores=logit.to_numpy())
        table = audit.compare()
    weight = table["weight"].to_numpy(float)
    mimic, outcome = table["mimic"].to_numpy(float), table["outcome"].to_numpy(float)
    slope = float(np.sum(weight * mimic * outcome) / np.sum(weight * mimic**2))
    Z = np.column_stack([X["a"], X["g"] == "v"])
    logistic = LogisticRegression(C=1e6).fit(Z, y).coef_[0]
    linear = LinearRegression().fit(Z, logit).coef_
    return {
        "sigma": sigma,
        "flagged": f"{int(table['significant_bh'].sum())} of {len(table)}",
        "outcome/mimic slope": round(slope, 3),
        "formula": round(1 / np.sqrt(1 + np.pi * sigma**2 / 8), 3),
        # what the report reads: the RMSE on rows the cross-fitted mimics did not see
        "report (out-of-fold RMSE)": round(
            attenuation_from_rmse(audit.fidelity_["rmse_out_of_fold"]), 3
        ),
        "out-of-fold RMSE": round(float(audit.fidelity_["rmse_out_of_fold"]), 3),
        "in-sample RMSE": round(float(audit.fidelity_["rmse"]), 3),
        "logistic/linear slopes": np.round(logistic / linear, 3).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 1.0, 1.6])
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    start = time.perf_counter()
    results = [one_world(sigma, args.rows, args.seed) for sigma in args.sigmas]
    pd.set_option("display.width", 200)
    print(f"{args.rows} rows, seed {args.seed}, EBMs max_bins=8, outer_bags=8, spline calibration")
    print(pd.DataFrame(results).to_string(index=False))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
