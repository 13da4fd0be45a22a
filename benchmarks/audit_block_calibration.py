"""Do the interaction blocks hold their level when the score is calibrated? Null worlds.

The black box's score *is* the outcome's true probability, and the truth is additive
(``lo = -1 + 0.3 priors - 0.03 (age - 40)``, a categorical ``race`` without effect): every
flagged interaction block is a false positive. A calibration map estimated from the rows
(isotonic steps, spline wiggles) is not linear in log-odds, so its estimation error bends the
additive score into surfaces the mimic learns as interactions; the blocks' bands carry that
noise (``CompareAudit`` refits the map on resamples), which this script measures, with the
bands' width with and without it.

Printed per calibration: the share of audits with at least one block flagged after the
adjustment (with a 95% Clopper-Pearson interval), and the median ratio of the mimic's block
standard errors with the calibration's noise to those without it.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_block_calibration.py \
        [--seeds 12] [--rows 800] [--calibrations isotonic spline sigmoid none]

``--refit-check SEED`` instead compares, on one world, the spread the audit adds with the
spread of the mimic's blocks when the mimic itself is refitted on targets of maps refitted on
resamples (8 refits).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats


def world(seed: int, n: int, intercept: float = -1.0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, n).astype(float)
    priors = rng.integers(0, 8, n)
    race = rng.choice(["A", "B", "C"], n, p=[0.5, 0.4, 0.1])
    lo = intercept + 0.3 * priors - 0.03 * (age - 40)
    y = (rng.random(n) < 1 / (1 + np.exp(-lo))).astype(int)
    X = pd.DataFrame({"age": age, "priors": priors, "race": pd.Categorical(race)})
    return X, y, 1 / (1 + np.exp(-lo))


def refit_check(seed: int, n: int, refits: int = 8) -> None:
    from sklearn.base import clone

    from sklearn_distill import CompareAudit, _teacher
    from sklearn_distill._calibration import (
        calibrated_probability,
        calibration_direction,
        fit_calibrator,
    )
    from sklearn_distill.shapes import interaction_blocks

    X, y, score = world(seed, n)
    audit = CompareAudit(n_jobs=1, random_state=0, interactions=2).fit(X, y, teacher_scores=score)
    mimic, student = audit.mimic_, audit.mimic_.student_
    plain, groups = interaction_blocks(student)
    wide, _ = interaction_blocks(
        student, groups=groups, target_replicates=audit._calibration_replicates_
    )
    values = mimic._calibration_input(score)
    sign = calibration_direction(mimic.calibrator_)
    rng = np.random.default_rng(1)
    size = round(n * (audit.cv - 1) / audit.cv)
    blocks = []
    for k in range(refits):
        rows = rng.integers(0, n, size)
        refitted = fit_calibrator(values[rows], y[rows], mimic.calibration, sign)
        target = _teacher.scores_to_target(
            calibrated_probability(refitted, values, size), "predict_proba", 1.0, mimic.proba_clip
        )
        refit = clone(student).set_params(random_state=k).fit(X, target)
        blocks.append(interaction_blocks(refit, groups=groups)[0]["score"].to_numpy())
    spread = np.std(blocks, axis=0, ddof=1)
    added = np.sqrt(np.maximum(wide["std_error"] ** 2 - plain["std_error"] ** 2, 0))
    print(f"one null world (seed {seed}, {n} rows), medians over its blocks:")
    print(f"  the bags' jackknife SE                         {np.median(plain['std_error']):.4f}")
    print(f"  the spread the audit adds for the calibration  {np.median(added):.4f}")
    print(f"  the blocks' spread over {refits} refits on resampled targets {np.median(spread):.4f}")


def interval(k: int, n: int) -> tuple[float, float]:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument(
        "--calibrations", nargs="+", default=["isotonic", "spline", "sigmoid", "none"]
    )
    parser.add_argument("--refit-check", type=int, default=None, metavar="SEED")
    parser.add_argument(
        "--intercept", type=float, default=-1.0, help="of the log-odds (-4.8: about 3%% events)"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.refit_check is not None:
        refit_check(args.refit_check, args.rows)
        return
    from sklearn_distill import CompareAudit
    from sklearn_distill.shapes import interaction_blocks

    start = time.perf_counter()
    print(
        f"{args.seeds} null worlds of {args.rows} rows per calibration (intercept "
        f"{args.intercept:g}); CompareAudit("
        "interactions=2, random_state=0), defaults otherwise"
    )
    print(
        f"{'calibration':>12} {'audits with a block flagged':>30} {'blocks flagged':>15} "
        f"{'SE ratio':>9}"
    )
    for name in args.calibrations:
        calibration = None if name == "none" else name
        flagged, blocks, total, ratios = 0, 0, 0, []
        for seed in range(args.seeds):
            X, y, score = world(seed, args.rows, args.intercept)
            audit = CompareAudit(n_jobs=1, random_state=0, interactions=2, calibration=calibration)
            audit.fit(X, y, teacher_scores=score)
            table = audit.compare_interactions()
            flagged += bool(table["significant_bh"].any())
            blocks += int(table["significant_bh"].sum())
            total += len(table)
            replicates = getattr(audit, "_calibration_replicates_", None)
            if replicates is not None:
                scale = float(np.ravel(audit.mimic_.target_scale_)[0])
                booleans = audit.mimic_._boolean_features()
                plain, _ = interaction_blocks(
                    audit.mimic_.student_, boolean_features=booleans, scale=scale
                )
                wide, _ = interaction_blocks(
                    audit.mimic_.student_,
                    boolean_features=booleans,
                    scale=scale,
                    target_replicates=replicates,
                )
                ratios.append(np.median(wide["std_error"] / plain["std_error"]))
        low, high = interval(flagged, args.seeds)
        ratio = f"{np.median(ratios):9.2f}" if ratios else f"{'-':>9}"
        print(
            f"{name:>12} {flagged:>4}/{args.seeds} = {flagged / args.seeds:.2f} "
            f"[{low:.2f}, {high:.2f}] {blocks:>8}/{total:<6} {ratio}"
        )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
