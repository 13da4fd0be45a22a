"""Are the audit models' standard errors the spread of their estimates over new data?

Generated worlds of 4,000 rows (x0, x1 normal, x2 uniform, b boolean with 40% true; log-odds
``0.6 x0 - 0.5 x1 + 0.8 x0 x1 + 0.3 x2 + 0.7 b``). In each world the audit's default outcome model
(``default_outcome_model``, with the pair x0 & x1) is fitted to the 0/1 outcome and the
audit's default mimic student (``default_mimic_student``, same pair) to the true log-odds plus
N(0, 1) noise. For a few bins of x2's main effect, b's two values and the 3 x 3 coarse blocks of the
interaction (``interaction_blocks``), prints the standard deviation of the estimate over the
worlds beside the mean jackknife standard error the model reported, and their ratio (1 when
the standard errors are right; above 1 when they are too wide).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_band_width.py [--worlds 16]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=16)
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill.audit import default_mimic_student, default_outcome_model
    from sklearn_distill.shapes import interaction_blocks, shape_functions

    start = time.perf_counter()
    bins = [5, 60, 120, 200]
    found = {"outcome": ([], [], [], [], [], []), "mimic": ([], [], [], [], [], [])}
    for world in range(args.worlds):
        rng = np.random.default_rng(100 + world)
        n = args.rows
        b = (rng.uniform(size=n) < 0.4).astype(float)
        X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.uniform(-1, 1, n), b])
        logit = 0.6 * X[:, 0] - 0.5 * X[:, 1] + 0.8 * X[:, 0] * X[:, 1] + 0.3 * X[:, 2] + 0.7 * b
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
        models = {
            "outcome": (default_outcome_model(random_state=world), y),
            "mimic": (default_mimic_student(random_state=world), logit + rng.normal(size=n)),
        }
        for name, (model, target) in models.items():
            model.set_params(interactions=[(0, 1)]).fit(X, target)
            blocks, _ = interaction_blocks(model, blocks=3)
            table = shape_functions(model, interactions=False)
            main = table[table["term"] == "feature_0002"].iloc[bins]
            boolean = table[table["term"] == "feature_0003"].tail(2)  # b = 0, b = 1
            scores, errors, main_scores, main_errors, bool_scores, bool_errors = found[name]
            bool_scores.append(boolean["score"].to_numpy())
            bool_errors.append(boolean["std_error"].to_numpy())
            scores.append(blocks["score"].to_numpy())
            errors.append(blocks["std_error"].to_numpy())
            main_scores.append(main["score"].to_numpy())
            main_errors.append(main["std_error"].to_numpy())
    print(f"{args.worlds} worlds of {args.rows} rows")
    for name, (scores, errors, main_scores, main_errors, bools, bool_errors) in found.items():
        for what, est, err in (
            ("interaction blocks", scores, errors),
            (f"x2 bins {bins}", main_scores, main_errors),
            ("b = 0, b = 1", bools, bool_errors),
        ):
            spread = np.std(est, axis=0, ddof=1)
            reported = np.mean(err, axis=0)
            print(f"{name}, {what}:")
            print("  spread over worlds  ", np.round(spread, 3))
            print("  mean standard error ", np.round(reported, 3))
            print("  ratio (median)      ", np.round(np.median(reported / spread), 2))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
