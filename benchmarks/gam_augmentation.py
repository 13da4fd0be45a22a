"""What query augmentation does to DistilledGAM's fidelity when the transfer set is small.

A gradient-boosting teacher is trained on 5,000 labelled rows of six correlated features. The
student sees only a small transfer set (``--transfer`` rows) but may query the teacher on
generated rows (``augmentation`` times as many, see ``sklearn_distill.gam.generate_queries``).
Fidelity R^2 is measured on 20,000 fresh rows from the data distribution, averaged over seeds.
For reference, the last line fits on as many *real* rows as the largest augmented set: the
ceiling that generated queries approach.

    PYTHONPATH=. .venv/bin/python benchmarks/gam_augmentation.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Missing values detected")


def make_data(n_rows, rng, correlation=0.5):
    covariance = np.full((6, 6), correlation) + (1 - correlation) * np.eye(6)
    X = rng.multivariate_normal(np.zeros(6), covariance, size=n_rows)
    signal = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 / 2 + np.abs(X[:, 2]) + X[:, 3] * X[:, 4] / 2
    return X, signal + 0.3 * rng.normal(size=n_rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfer", type=int, default=300)
    parser.add_argument("--augmentation", type=float, nargs="+", default=[0, 1, 3, 10])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)

    from sklearn.ensemble import HistGradientBoostingRegressor

    from sklearn_distill import DistilledGAM

    results = {a: [] for a in args.augmentation}
    reference = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        X_train, y_train = make_data(5000, rng)
        teacher = HistGradientBoostingRegressor(random_state=seed).fit(X_train, y_train)
        X_transfer, _ = make_data(args.transfer, rng)
        X_test, _ = make_data(20000, rng)
        for augmentation in args.augmentation:
            start = time.perf_counter()
            gam = DistilledGAM(teacher, augmentation=augmentation or None, random_state=seed)
            gam.fit(X_transfer)
            results[augmentation].append((gam.fidelity(X_test)["r2"], time.perf_counter() - start))
        n_real = args.transfer + round(max(args.augmentation) * args.transfer)
        X_real, _ = make_data(n_real, rng)
        start = time.perf_counter()
        gam = DistilledGAM(teacher, random_state=seed).fit(X_real)
        reference.append((gam.fidelity(X_test)["r2"], time.perf_counter() - start))
    print(f"transfer set: {args.transfer} rows; fidelity on 20,000 fresh rows; {args.seeds} seeds")
    print(
        f"{'augmentation':>12} {'queried rows':>13} {'R^2 mean':>9} {'R^2 min':>8} {'fit (s)':>8}"
    )
    for augmentation, runs in results.items():
        r2 = np.array([r for r, _ in runs])
        seconds = np.mean([s for _, s in runs])
        queried = args.transfer + round(augmentation * args.transfer)
        print(
            f"{augmentation:>12g} {queried:>13,} {r2.mean():>9.4f} {r2.min():>8.4f} {seconds:>8.1f}"
        )
    r2 = np.array([r for r, _ in reference])
    seconds = np.mean([s for _, s in reference])
    print(f"{'real rows':>12} {n_real:>13,} {r2.mean():>9.4f} {r2.min():>8.4f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
