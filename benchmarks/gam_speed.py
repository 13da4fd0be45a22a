"""DistilledGAM speed and fidelity against an EBM with interpret's default settings.

The teacher is a fixed, noise-free, smooth function of 10 standard-normal features with two
pairwise interactions (a GA2M can represent it up to binning). Each model is fitted on ``n``
rows and scored on 20,000 fresh rows: held-out fidelity R^2 to the teacher.

Targets (issue 5): DistilledGAM's defaults fit 20,000 x 10 in <= 30 s and 100,000 x 10 in
<= 120 s, with held-out R^2 >= 0.99 and within 0.005 of the default EBM's.

    PYTHONPATH=. .venv/bin/python benchmarks/gam_speed.py --rows 20000 --baseline
    PYTHONPATH=. .venv/bin/python benchmarks/gam_speed.py --rows 100000

``--baseline`` also fits interpret's default ExplainableBoostingRegressor (slow: minutes) and
prints the time ratio and the R^2 gap. ``--student JSON`` overrides default student settings,
for exploring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Missing values detected")


def teacher(X):
    """A smooth black box: main effects of every feature and two pairwise interactions."""
    return (
        np.sin(1.5 * X[:, 0])
        + 0.5 * X[:, 1] ** 2
        + np.tanh(2 * X[:, 2])
        + 0.3 * X[:, 3] * X[:, 4]
        + np.exp(-(X[:, 5] ** 2))
        + 0.4 * np.abs(X[:, 6])
        + 0.2 * X[:, 7]
        + 0.5 * np.sin(X[:, 8] * X[:, 9])
    )


def make_data(n_rows, seed):
    X = np.random.default_rng(seed).normal(size=(n_rows, 10))
    return X, teacher(X)


def time_fit(model, X, *args, **kwargs):
    start = time.perf_counter()
    model.fit(X, *args, **kwargs)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20000])
    parser.add_argument("--baseline", action="store_true", help="also fit interpret's defaults")
    parser.add_argument("--student", type=json.loads, default=None, help="student overrides")
    parser.add_argument("--max-samples", type=int, default=-1, help="-1: DistilledGAM default")
    args = parser.parse_args(argv)

    from interpret.glassbox import ExplainableBoostingRegressor
    from sklearn.metrics import r2_score

    from sklearn_distill import DistilledGAM
    from sklearn_distill.gam import DEFAULT_STUDENT_PARAMS

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; teacher: 10 features")
    X_test, t_test = make_data(20000, seed=1)
    for n_rows in args.rows:
        X, _ = make_data(n_rows, seed=0)
        params = {}
        if args.student is not None:
            student_params = {**DEFAULT_STUDENT_PARAMS, "n_jobs": -1, **args.student}
            params["student"] = ExplainableBoostingRegressor(**student_params, random_state=0)
        if args.max_samples != -1:
            params["max_samples"] = args.max_samples or None
        gam = DistilledGAM(teacher, random_state=0, **params)
        seconds = time_fit(gam, X)
        r2 = gam.fidelity(X_test)["r2"]
        target = 30 if n_rows <= 20000 else 120
        print(
            f"DistilledGAM  n={n_rows:>8,}  fit {seconds:7.1f} s  held-out R^2 {r2:.5f}  "
            f"(target <= {target} s, R^2 >= 0.99)",
            flush=True,
        )
        if args.baseline:
            baseline = ExplainableBoostingRegressor(random_state=0)
            base_seconds = time_fit(baseline, X, teacher(X))
            base_r2 = r2_score(t_test, baseline.predict(X_test))
            print(
                f"default EBM   n={n_rows:>8,}  fit {base_seconds:7.1f} s  held-out R^2 "
                f"{base_r2:.5f}",
                flush=True,
            )
            print(
                f"ratio: DistilledGAM is {base_seconds / seconds:.1f}x faster; R^2 gap "
                f"{base_r2 - r2:+.5f} (target <= 0.005)",
                flush=True,
            )


if __name__ == "__main__":
    main()
