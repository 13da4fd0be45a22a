"""Power and level of compare()'s adjusted flags: one Benjamini-Hochberg over all values, or
two stages (terms, then values inside the selected terms; Benjamini and Bogomolov, 2014).

Generated worlds of 3,000 rows: four continuous features (linear, sine-shaped, linear, linear)
and a boolean ``b`` (40% true), outcome log-odds
``0.5 x0 - 0.4 x1 + sin(x2) + 0.3 x3 + 0.7 b - 0.5``. The black box's score is the true
log-odds minus ``bias * b``: with ``bias = 0`` (null) every flag is false; with ``bias = 0.7``
(planted) the boolean's values differ and nothing else does. Both of the audit's default models
(``default_mimic_student`` in a ``DistilledGAM``, ``default_outcome_model``; main effects only)
are fitted to each world and compared with ``compare_shapes`` as ``CompareAudit.compare()``
does (``min_weight=10``, main effects as one family), once with each adjustment. Prints, per
world and adjustment, the share of seeds in which ``b`` is flagged and the share in which any
other term has a flagged value (a false discovery).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_flags.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def make_world(seed, bias, n=3000):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.uniform(-1, 1, n),
            "x2": rng.normal(size=n),
            "x3": rng.uniform(-2, 2, n),
            "b": rng.uniform(size=n) < 0.4,
        }
    )
    logit = 0.5 * X.x0 - 0.4 * X.x1 + np.sin(X.x2) + 0.3 * X.x3 + 0.7 * X.b - 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, (logit - bias * X.b).to_numpy()


def fitted_tables(seed, bias):
    from sklearn_distill import DistilledGAM
    from sklearn_distill.audit import default_mimic_student, default_outcome_model
    from sklearn_distill.shapes import shape_functions

    X, y, score = make_world(seed, bias)
    mimic = DistilledGAM(
        student=default_mimic_student(random_state=seed), calibration=None, random_state=seed
    ).fit(X, teacher_scores=score)
    outcome = default_outcome_model(random_state=seed + 10_000).fit(X, y)
    keep = ["term", "bin", "score", "std_error", "dof"]
    m = mimic.shape_functions(0.95)[[*keep, "kind", "weight"]]
    o = shape_functions(outcome, boolean_features=mimic._boolean_features())[keep]
    return m, o


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill.stats import compare_shapes

    start = time.perf_counter()
    rows = []
    for world, bias in (("null", 0.0), ("planted 0.7 on b", 0.7)):
        for seed in range(args.seeds):
            m, o = fitted_tables(seed, bias)
            for name, within in (("one stage", None), ("two stages", "term")):
                table = compare_shapes(
                    m, o, on=("term", "bin"), min_weight=10, family="kind", within=within
                )
                flags = table.groupby("term")["significant_bh"].any()
                rows.append(
                    {
                        "world": world,
                        "adjustment": name,
                        "b flagged": bool(flags["b"]),
                        "other term flagged": bool(flags.drop("b").any()),
                    }
                )
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["world", "adjustment"], sort=False).mean()
    print(f"{args.seeds} seeds per world; share of seeds")
    print(summary.round(3).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
