"""CompareAudit end to end on COMPAS: fit, compare, missing-feature test with 1,000 bootstraps.

Target: <= 60 s on 2 cores. The baseline, measured in the same run, is one Explainable
Boosting classifier of the outcome with interpret's default settings (what an auditor fitting
a single off-the-shelf EBM would wait for); the audit fits 12 EBMs (the full-data mimic and
outcome model, and both again on each of 5 folds) plus the bootstrap.

    .venv/bin/python benchmarks/audit_compas.py            # audit with n_jobs=2 and n_jobs=1
    .venv/bin/python benchmarks/audit_compas.py --quick    # audit with n_jobs=2 only
"""

import argparse
import os
import platform
import time

from sklearn_distill import CompareAudit
from sklearn_distill.datasets import load_compas

TARGET_S = 60.0


def timed_audit(X, y, score, n_jobs):
    stages = {}
    start = time.perf_counter()
    audit = CompareAudit(random_state=0, n_jobs=n_jobs).fit(X, y, teacher_scores=score)
    stages["fit (2 + 2 x 5 folds EBMs)"] = time.perf_counter() - start
    t = time.perf_counter()
    comparison = audit.compare()
    stages["compare"] = time.perf_counter() - t
    t = time.perf_counter()
    test = audit.missing_feature_test(n_bootstrap=1000)
    stages["missing-feature test (1,000 bootstraps)"] = time.perf_counter() - t
    stages["total"] = time.perf_counter() - start
    return stages, comparison, test


def default_ebm_seconds(X, y):
    from interpret.glassbox import ExplainableBoostingClassifier

    start = time.perf_counter()
    ExplainableBoostingClassifier(random_state=0).fit(X, y)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the n_jobs=1 run")
    args = parser.parse_args()

    compas = load_compas()
    X, y, score = compas.data, compas.target, compas.score
    print(
        f"COMPAS: {X.shape[0]} rows x {X.shape[1]} features; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )

    runs = {2: timed_audit(X, y, score, n_jobs=2)}
    if not args.quick:
        runs[1] = timed_audit(X, y, score, n_jobs=1)
    baseline = default_ebm_seconds(X, y)

    for n_jobs, (stages, _, _) in runs.items():
        print(f"\nCompareAudit, n_jobs={n_jobs}:")
        for stage, seconds in stages.items():
            print(f"  {stage:<42s} {seconds:7.1f} s")
    total = runs[2][0]["total"]
    print(f"\nbaseline: one default ExplainableBoostingClassifier of the outcome: {baseline:.1f} s")
    print(f"audit (n_jobs=2) / baseline: {total / baseline:.2f}")
    if 1 in runs:
        print(f"speed-up of n_jobs=2 over n_jobs=1: {runs[1][0]['total'] / total:.2f}")
    print(
        f"target <= {TARGET_S:.0f} s with n_jobs=2: {'met' if total <= TARGET_S else 'MISSED'} "
        f"({total:.1f} s)"
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print("missing-feature test:")
    print(runs[2][2][["estimate", "low", "high", "p_value"]].round(4).to_string())


if __name__ == "__main__":
    main()
