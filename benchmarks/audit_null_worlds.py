"""`compare()`'s flags on null worlds the band-width benchmarks do not cover.

In each world the black box's score *is* the true log-odds ``g(X)`` and ``y ~
Bernoulli(sigmoid(g))``: the mimic and the outcome model estimate the same shapes, so every
flag (``significant_bh``) is a false discovery, and under this complete null the chance that an
audit flags anything is its family-wise error, nominally 5%. Worlds (four features):

- ``independent``: N(0, 1) features, ``g = x0 - 0.8 |x1| + 0.5 x2``;
- ``correlated``: x0, x1, x2 equicorrelated at 0.95, ``g = x0 + 0.8 x1 - 0.6 x2``;
- ``jump``: ``g = 2 x0 + 1.5 [x1 > 0] - tanh(3 x2)`` (a step and steep tails).

Default ``CompareAudit`` (isotonic calibration, 10 interaction pairs) with ``n_crossfits=1``
(``compare()`` reads only the full-data models). Prints, per world, the share of audits with
any flag (with its Monte-Carlo standard error) and the mean share of testable values flagged
before the adjustment.

Usage: ``PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/audit_null_worlds.py [--worlds
correlated jump] [--seeds 20] [--seed-start 0] [--rows 3000] [--calibration isotonic|none]`` (about 8 s per
audit of 3,000 rows).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from sklearn_distill import CompareAudit

WORLDS = ("independent", "correlated", "jump")


def sample(world: str, rng, rows: int):
    if world == "correlated":
        common, own = rng.normal(size=(rows, 1)), rng.normal(size=(rows, 4))
        x = np.sqrt(0.95) * common + np.sqrt(0.05) * own
        x[:, 3] = own[:, 3]
    else:
        x = rng.normal(size=(rows, 4))
    if world == "independent":
        g = x[:, 0] - 0.8 * np.abs(x[:, 1]) + 0.5 * x[:, 2]
    elif world == "correlated":
        g = x[:, 0] + 0.8 * x[:, 1] - 0.6 * x[:, 2]
    else:
        g = 2.0 * x[:, 0] + 1.5 * (x[:, 1] > 0) - np.tanh(3 * x[:, 2])
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-g))).astype(int)
    return pd.DataFrame(x, columns=[f"x{k}" for k in range(4)]), y, g


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=WORLDS, default=list(WORLDS))
    parser.add_argument("--seeds", type=_positive, default=20)
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--rows", type=_positive, default=3000)
    parser.add_argument("--calibration", choices=("isotonic", "none"), default="isotonic")
    args = parser.parse_args()
    calibration = None if args.calibration == "none" else args.calibration
    for world in args.worlds:
        start = time.perf_counter()
        flagged, shares, where = 0, [], {}
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            X, y, g = sample(world, np.random.default_rng(1000 + seed), args.rows)
            audit = CompareAudit(
                calibration=calibration, random_state=seed, n_jobs=1, n_crossfits=1
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = audit.fit(X, y, teacher_scores=g).compare()
            testable = table[table["testable"]]
            shares.append(float(testable["significant"].mean()))
            flags = table[table["significant_bh"]]
            flagged += len(flags) > 0
            for term in flags["term"]:
                where[term] = where.get(term, 0) + 1
        rate = flagged / args.seeds
        error = np.sqrt(rate * (1 - rate) / args.seeds)
        print(
            f"{world:12s} calibration={args.calibration}: audits with any flag "
            f"{rate:.3f} +- {error:.3f} ({flagged}/{args.seeds}); testable values flagged "
            f"before the adjustment {np.mean(shares):.4f}; flags by term {where or '-'} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
