"""Can an audit see an interaction the black box ignores? Cells against coarse blocks.

Generated worlds of 4,000 rows (x0, x1 normal, x2 uniform on [-1, 1]; outcome log-odds
``0.6 x0 - 0.5 x1 + 0.8 x0 x1 + 0.3 x2``). The black box's score is the true log-odds
(``uses``: nothing to find) or the same without the product (``ignores``). A default
``CompareAudit`` (one cross-fit, the pair x0 & x1 given) is fitted to each world; printed, per
kind of world, the share of seeds in which ``compare()`` flags an interaction cell and in which
``compare_interactions()`` flags a block (after the adjustment), and the testable cells.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_interaction_blocks.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill import CompareAudit

    start = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        n = 4000
        X = pd.DataFrame(
            {"x0": rng.normal(size=n), "x1": rng.normal(size=n), "x2": rng.uniform(-1, 1, n)}
        )
        product = 0.8 * X["x0"] * X["x1"]
        logit = 0.6 * X["x0"] - 0.5 * X["x1"] + product + 0.3 * X["x2"]
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
        for world, score in (("uses", logit), ("ignores", logit - product)):
            audit = CompareAudit(interactions=[("x0", "x1")], n_crossfits=1, random_state=seed)
            audit.fit(X, y, teacher_scores=score.to_numpy())
            cells = audit.compare()
            cells = cells[cells["kind"] == "interaction"]
            blocks = audit.compare_interactions()
            rows.append(
                {
                    "black box": world,
                    "a cell flagged": bool(cells["significant_bh"].any()),
                    "a block flagged": bool(blocks["significant_bh"].any()),
                    "blocks flagged": int(blocks["significant_bh"].sum()),
                    "testable cells": int(cells["testable"].sum()),
                    "cells": len(cells),
                }
            )
    frame = pd.DataFrame(rows)
    print(f"{args.seeds} seeds per world; shares of seeds, mean counts")
    print(frame.groupby("black box", sort=False).mean().round(2).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
