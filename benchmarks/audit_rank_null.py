"""Why only Pearson's correlation tests "nothing missing" in the missing-feature test.

The test's null, nothing missing, is that the outcome residual ``y - p(X)`` has mean zero given
the audit features X. That makes it uncorrelated (Pearson) with any function of X, the mimic's
residual included. It does not make rank correlations zero: the rank of ``y - p`` is not a
residual of mean zero given X. This script measures the rejection rate at 5% of the bootstrap
test of each correlation (``sklearn_distill.stats.bootstrap_correlations``, the engine of
``CompareAudit.missing_feature_test``) on null worlds:

- without models (``--reps`` replicates): the outcome residual uses the true ``p``; the
  "mimic residual" is (A) independent noise, (B) a periodic function of the log-odds plus
  noise, (C) a linear function of the log-odds plus noise;
- with ``--audits K``: ``CompareAudit`` (defaults: isotonic calibration, 10 interaction pairs,
  3 cross-fits) on K seeds of a world whose score *is* the true log-odds
  ``x0 - 0.8 |x1| + 0.5 x2`` (3,000 rows), the test's own residuals correlated by each method.

Usage: ``PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/audit_rank_null.py [--reps 100]
[--audits 0] [--rows 3000] [--bootstrap 200]`` (about a minute without audits; each audit adds
about 15 s).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from sklearn_distill import CompareAudit
from sklearn_distill.stats import bootstrap_correlations

METHODS = ("pearson", "spearman", "kendall")


def _rate(hits: int, total: int) -> str:
    rate = hits / total
    return f"{rate:.3f} +- {np.sqrt(rate * (1 - rate) / total):.3f} ({hits}/{total})"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def _tally(hits: dict, estimates: dict, table) -> None:
    for method in METHODS:
        hits[method] += bool(table.loc[method, "p_value"] <= 0.05)
        estimates[method].append(table.loc[method, "estimate"])


def _print_rates(hits: dict, estimates: dict, total: int, prefix: str = "") -> None:
    for method in METHODS:
        print(
            f"  {prefix}{method:8s} rejects at 5%: {_rate(hits[method], total)}; "
            f"mean estimate {np.mean(estimates[method]):+.4f}"
        )


def _world(rng, rows: int):
    X = rng.normal(size=(rows, 4))
    log_odds = X[:, 0] - 0.8 * np.abs(X[:, 1]) + 0.5 * X[:, 2]
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return X, y, log_odds


def without_models(reps: int, rows: int, n_bootstrap: int) -> None:
    print(f"without models: {reps} replicates of {rows} rows, {n_bootstrap} resamples each")
    for name in ("A: noise", "B: sin(2 g) + noise", "C: g + noise"):
        hits = dict.fromkeys(METHODS, 0)
        estimates = {method: [] for method in METHODS}
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            _, y, log_odds = _world(rng, rows)
            outcome = y - 1 / (1 + np.exp(-log_odds))
            noise = 0.3 * rng.normal(size=rows)
            mimic = {
                "A": noise,
                "B": 0.3 * np.sin(2 * log_odds) + noise,
                "C": 0.3 * (log_odds - log_odds.mean()) + noise,
            }[name[0]]
            table = bootstrap_correlations(
                mimic, outcome, n_bootstrap=n_bootstrap, random_state=rep
            )
            _tally(hits, estimates, table)
        _print_rates(hits, estimates, reps, prefix=f"{name:22s} ")


def with_audits(audits: int, rows: int, n_bootstrap: int) -> None:
    print(
        f"\nCompareAudit (isotonic, 10 pairs, 3 cross-fits) on {audits} seeds of {rows} rows; "
        "score = the true log-odds"
    )
    hits = dict.fromkeys(METHODS, 0)
    estimates = {method: [] for method in METHODS}
    start = time.perf_counter()
    for seed in range(audits):
        X, y, log_odds = _world(np.random.default_rng(1000 + seed), rows)
        X = pd.DataFrame(X, columns=[f"x{k}" for k in range(4)])
        audit = CompareAudit(random_state=seed, n_jobs=1, n_crossfits=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit.fit(X, y, teacher_scores=log_odds)
        # the residuals the test correlates (after its adjustment), every method's p-value
        mimic, outcome = audit._test_residuals
        table = bootstrap_correlations(
            mimic,
            outcome,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            groups=None,
        )
        _tally(hits, estimates, table)
    _print_rates(hits, estimates, audits)
    print(f"  ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=_positive, default=100)
    parser.add_argument("--audits", type=int, default=0, help="CompareAudit seeds (0: none)")
    parser.add_argument("--rows", type=_positive, default=3000)
    parser.add_argument("--bootstrap", type=_positive, default=200)
    args = parser.parse_args()
    if args.audits < 0:
        parser.error(f"--audits must be at least 0; got {args.audits}")
    start = time.perf_counter()
    without_models(args.reps, args.rows, args.bootstrap)
    if args.audits:
        with_audits(args.audits, args.rows, args.bootstrap)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
