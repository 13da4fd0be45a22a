"""DistilledTree speed: fit time beyond the teacher's own prediction time.

A HistGradientBoostingClassifier, trained on 100,000 x 10 rows of a generated problem, is the
queried teacher. Each round times, interleaved, the teacher's ``predict_proba`` on the rows
(the baseline: what any distillation must spend) and ``DistilledTree(teacher).fit`` on the
same rows, in process CPU time on one thread; the medians over the rounds, their difference
(the tree's own cost) and their ratio are printed.

Target: the fit takes at most 2 s beyond the teacher's prediction time.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/tree_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from sklearn_distill import DistilledTree


def make_data(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 10))
    logit = np.sin(1.5 * X[:, 0]) + X[:, 1] - 0.5 * X[:, 2] ** 2 + 0.3 * X[:, 3] * X[:, 4]
    y = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def cpu_seconds(function):
    start = time.process_time()
    function()
    return time.process_time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    X, y = make_data(args.rows)
    teacher = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y)
    teacher_times, fit_times = [], []
    for round_ in range(args.rounds):
        teacher_times.append(cpu_seconds(lambda: teacher.predict_proba(X)))
        tree = DistilledTree(teacher, max_leaf_nodes=8, random_state=0)
        fit_times.append(cpu_seconds(lambda tree=tree: tree.fit(X)))
        print(f"round {round_}: teacher {teacher_times[-1]:.2f} s, fit {fit_times[-1]:.2f} s")
    teacher_s, fit_s = np.median(teacher_times), np.median(fit_times)
    print(f"{args.rows} x 10, medians over {args.rounds} rounds (process CPU time):")
    print(f"  teacher predict_proba {teacher_s:.2f} s, DistilledTree.fit {fit_s:.2f} s")
    print(f"  fit beyond the teacher {fit_s - teacher_s:.2f} s (target <= 2 s)")
    print(f"  ratio fit / teacher {fit_s / teacher_s:.2f}")
    print(f"  fidelity R^2 on the fitting rows {tree.fidelity(X)['r2']:.3f}")


if __name__ == "__main__":
    main()
