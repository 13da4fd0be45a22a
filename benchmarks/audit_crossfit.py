"""Research harness for the missing-feature test: repeated, swapped double cross-fitting.

Not (yet) how ``CompareAudit`` computes its residuals: this script tries a scheme on the
generated worlds of ``audit_calibration.py`` by replacing the audit's private fold-refit step,
so that its level and power can be compared with the current test before the library adopts it.

The scheme, for each of ``--splits`` fold splits (different seeds):

1. each fold's training rows are cut into two stratified halves A and B; the mimic and the
   outcome model are fitted on A and again on B (the interaction pairs stay those of the
   full-data fit), and the held-out rows get mimic residuals ``mA``, ``mB`` and outcome
   residuals ``oA``, ``oB``;
2. with ``--basis quadratic`` every residual vector is residualised by least squares on a
   quadratic polynomial of the standardised numeric audit features (the linear and bilinear
   trends that the models' constant outer bins cannot extrapolate);
3. the statistic is the Pearson correlation of the stacked cross pairs ``(mA, oB)`` and
   ``(mB, oA)`` (a mimic and an outcome model that never saw the same rows), averaged over
   the splits; its standard error and two-sided p-value come from a bootstrap of the rows
   (each row's pairs in every split resampled together).

Run: OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/audit_crossfit.py --worlds exact --n 3000
     --seeds 10 [--seed-start 0] [--splits 3] [--basis quadratic|none]
Prints one line per seed and a summary per world (rejections at 5%, mean correlation, its
spread over seeds, the mean bootstrap standard error).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_calibration import light_models, make_world

import sklearn_distill.audit as audit_module
from sklearn_distill import CompareAudit

_PARTS: list = []


def swapped_fold_residuals(audit, X, y01, scores, train, test, seed, pairs):
    """Replacement of the audit's fold step: two half-size fits of both models."""
    halves = StratifiedKFold(2, shuffle=True, random_state=seed % 2**31)
    first, second = next(halves.split(np.zeros((len(train), 1)), y01[train]))
    X_test = audit_module.take_rows(X, test)
    residuals, targets = {}, []
    for name, rows in (("A", train[first]), ("B", train[second])):
        mimic, outcome = audit_module._fit_pair(
            audit,
            audit_module.take_rows(X, rows),
            y01[rows],
            scores[rows],
            seed,
            1,
            pairs,
            fold=True,
        )
        target = mimic.teacher_target(X_test, scores[test])
        targets.append(target)
        residuals[name] = (
            target - mimic.predict(X_test),
            y01[test] - outcome.predict_proba(X_test)[:, 1],
        )
    _PARTS.append((test, residuals))
    mimic_mean = (residuals["A"][0] + residuals["B"][0]) / 2
    outcome_mean = (residuals["A"][1] + residuals["B"][1]) / 2
    # each half's mimic calibrates the score itself: the fold's target is their mean
    return test, (targets[0] + targets[1]) / 2, mimic_mean, outcome_mean


def quadratic_basis(X) -> np.ndarray:
    numeric = [c for c in X.columns if X[c].dtype.kind in "fiu"]
    Z = X[numeric].to_numpy(float)
    Z = (Z - Z.mean(0)) / np.where(Z.std(0) > 0, Z.std(0), 1.0)
    p = Z.shape[1]
    columns = [np.ones(len(Z))] + [Z[:, i] for i in range(p)]
    columns += [Z[:, i] * Z[:, j] for i in range(p) for j in range(i, p)]
    return np.column_stack(columns)


def residualise(basis, values):
    coefficients, *_ = np.linalg.lstsq(basis, values, rcond=None)
    return values - basis @ coefficients


def split_residuals(X, y, score, seed, split, basis):
    """The four residual vectors of one fold split, residualised on ``basis`` if given."""
    _PARTS.clear()
    student, outcome = light_models()
    audit = CompareAudit(
        calibration="isotonic",
        interactions=10,
        student=student,
        outcome=outcome,
        random_state=seed * 100 + split,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=score)
    n = len(y)
    vectors = {key: np.empty(n) for key in ("mA", "oA", "mB", "oB")}
    for test, residuals in _PARTS:
        vectors["mA"][test], vectors["oA"][test] = residuals["A"]
        vectors["mB"][test], vectors["oB"][test] = residuals["B"]
    if basis is not None:
        vectors = {key: residualise(basis, value) for key, value in vectors.items()}
    return vectors


def statistic(parts, rows) -> float:
    values = []
    for v in parts:
        mimic = np.concatenate([v["mA"][rows], v["mB"][rows]])
        outcome = np.concatenate([v["oB"][rows], v["oA"][rows]])
        values.append(np.corrcoef(mimic, outcome)[0, 1])
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="exact")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--basis", choices=["quadratic", "none"], default="quadratic")
    parser.add_argument("--n-bootstrap", type=int, default=200)
    args = parser.parse_args()
    audit_module._fold_residuals = swapped_fold_residuals
    for world in args.worlds.split(","):
        estimates, errors, rejected = [], [], 0
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            start = time.perf_counter()
            X, y, score = make_world(world, seed, args.n)
            basis = quadratic_basis(X) if args.basis == "quadratic" else None
            parts = [
                split_residuals(X, y, score, seed, split, basis) for split in range(args.splits)
            ]
            estimate = statistic(parts, np.arange(args.n))
            rng = np.random.default_rng(seed)
            boot = np.array(
                [statistic(parts, rng.integers(0, args.n, args.n)) for _ in range(args.n_bootstrap)]
            )
            p_value = max(2 * min((boot <= 0).mean(), (boot >= 0).mean()), 1 / (len(boot) + 1))
            estimates.append(estimate)
            errors.append(float(boot.std(ddof=1)))
            rejected += p_value < 0.05
            print(
                f"{world} n={args.n} seed={seed} r={estimate:+.4f} p={p_value:.3f} "
                f"se={errors[-1]:.4f} {time.perf_counter() - start:.0f}s",
                flush=True,
            )
        spread = statistics.stdev(estimates) if len(estimates) > 1 else float("nan")
        print(
            f"SUMMARY {world} n={args.n} splits={args.splits} basis={args.basis}: rejected "
            f"{rejected}/{len(estimates)}; mean {np.mean(estimates):+.4f}, sd {spread:.4f}, "
            f"mean bootstrap s.e. {np.mean(errors):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
