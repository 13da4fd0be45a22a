"""How often CompareAudit.compare() calls a difference significant when there is none.

The black box here *is* the truth: its score is the true log-odds of the outcome, so the mimic
and the outcome model estimate the same shape functions and every "significant" difference is a
false positive. With 95% bands, about 5% of the term values should be flagged. The share is
measured for each calibration of the score, over a few synthetic data sets (3,000 rows; a
linear, a sine-shaped and a categorical feature), with CompareAudit's default EBMs, for the
main-effect values and the interaction cells apart (raw flags, before Benjamini-Hochberg).

    .venv/bin/python benchmarks/audit_null.py [--seeds 3] [--rows 3000]

``--runs R`` measures instead ``compare_runs(runs=R)``, the comparison of the numeric features
on runs of adjacent values that ``summary()`` makes for those whose values are too thin to
test one by one (both continuous features at 2,500 rows or fewer): per calibration, the share
of audits with a run flagged after the adjustment (the family-wise rate, nominally at most 5%
on these null worlds; with a 95% Clopper-Pearson interval) and the share of runs flagged
before it. ``--planted`` makes the black box ignore the effect of the linear feature ``a``
above ``--above`` (default 1; its score is the true log-odds less ``slope (a - above)`` there, on
about 16% of the rows at 1; ``--slope``, default 0.8, is a's effect in the truth): the same shares
then measure power; the audits with a run of ``a`` flagged, and of ``b`` (false), are counted
apart.
``--heavy`` adds a count-like feature ``d``, 0 on 60% of the rows and geometric with mean 50
on the others (one bin holding most rows, a long tail of thin ones), with effect
``0.8 log(1 + d / 20)`` in the truth and in the score; ``--planted-tail K`` (which implies
``--heavy``) makes the black box ignore ``d``'s effect above ``K`` (its score uses
``min(d, K)`` there), and the audits with a run of ``d`` flagged are counted apart.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_null.py --runs 5 \\
        --rows 1500 --seeds 40 [--planted [--slope 0.8] [--above 1]] \\
        [--heavy | --planted-tail 20] [--calibrations isotonic sigmoid none]
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from sklearn_distill import CompareAudit

EFFECTS = {"p": 0.5, "q": 0.0, "r": -0.5, "s": 0.2}


def count_effect(d):
    """The truth's effect of the count-like feature ``d`` (``--heavy``)."""
    return 0.8 * np.log1p(d / 20.0)


def make_audit_data(
    seed, n=3000, planted=False, slope=0.8, above=1.0, heavy=False, planted_tail=None
):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(-2, 2, size=n),
            "c": rng.choice(list(EFFECTS), size=n),
        }
    )
    logit = slope * X["a"] + np.sin(X["b"]) + X["c"].map(EFFECTS)
    heavy = heavy or planted_tail is not None
    if heavy:  # drawn after the others: a, b and c are those of the world without d
        zero = rng.uniform(size=n) < 0.6
        X["d"] = np.where(zero, 0, rng.geometric(0.02, size=n))
        logit = logit + count_effect(X["d"])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = logit - slope * np.clip(X["a"] - above, 0.0, None) if planted else logit
    if planted_tail is not None:
        score = score - count_effect(X["d"]) + count_effect(np.minimum(X["d"], planted_tail))
    return X, y, score.to_numpy()


def interval(k: int, n: int) -> tuple[float, float]:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def measure_runs(args):
    world = f"planted (a ignored above {args.above:g})" if args.planted else "null"
    heavy = args.heavy or args.planted_tail is not None
    if args.planted_tail is not None:
        world += f", d's effect ignored above {args.planted_tail:g}"
    elif heavy:
        world += ", with the count d"
    print(
        f"{args.seeds} {world} worlds of {args.rows} rows per calibration; CompareAudit("
        f"random_state=seed), defaults otherwise; compare_runs(runs={args.runs}); a's slope "
        f"{args.slope:g}"
    )
    print(
        f"{'calibration':>12} {'audits with a run flagged':>28} {'a flagged':>10} "
        f"{'b flagged':>10} {'d flagged':>10} {'runs flagged raw':>17} "
        f"{'terms compared':>15} {'runs of d':>10}"
    )
    start = time.perf_counter()
    for name in args.calibrations:
        calibration = None if name == "none" else name
        audits = on_a = on_b = on_d = raw = total = compared = runs_of_d = 0
        for seed in range(args.seeds):
            X, y, score = make_audit_data(
                seed, args.rows, args.planted, args.slope, args.above, heavy, args.planted_tail
            )
            audit = CompareAudit(calibration=calibration, random_state=seed, n_jobs=1)
            table = audit.fit(X, y, teacher_scores=score).compare_runs(runs=args.runs)
            flagged = table.groupby("term")["significant_bh"].any()
            audits += bool(flagged.any())
            on_a += bool(flagged.get("a", False))
            on_b += bool(flagged.get("b", False))
            on_d += bool(flagged.get("d", False))
            runs_of_d += int((table["term"] == "d").sum())
            raw += int(table["significant"].sum())
            total += len(table)
            compared += table["term"].nunique()
        low, high = interval(audits, args.seeds)
        print(
            f"{name:>12} {audits:>4}/{args.seeds} = {audits / args.seeds:.3f} "
            f"[{low:.2f}, {high:.2f}] {on_a:>10} {on_b:>10} {on_d:>10} {raw:>8}/{total:<8} "
            f"{compared / args.seeds:>15.1f} {runs_of_d / args.seeds:>10.1f}",
            flush=True,
        )
    print(f"\n{time.perf_counter() - start:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=None, help="measure compare_runs(runs=R)")
    parser.add_argument("--planted", action="store_true", help="a ignored above --above")
    parser.add_argument("--slope", type=float, default=0.8, help="a's effect per unit")
    parser.add_argument("--above", type=float, default=1.0, help="where --planted ignores a")
    parser.add_argument("--heavy", action="store_true", help="add the count d, 0 on 60%% of rows")
    parser.add_argument(
        "--planted-tail", type=float, default=None, metavar="K", help="d ignored above K"
    )
    parser.add_argument(
        "--calibrations", nargs="+", default=["none", "sigmoid", "isotonic"], metavar="NAME"
    )
    args = parser.parse_args()
    if args.runs is not None:
        warnings.filterwarnings("ignore", category=UserWarning)
        measure_runs(args)
        return
    rows = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        X, y, score = make_audit_data(seed, args.rows, args.planted)
        for calibration in (None if c == "none" else c for c in args.calibrations):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # isotonic saturates, as expected
                audit = CompareAudit(calibration=calibration, cv=2, random_state=seed, n_jobs=2)
                table = audit.fit(X, y, teacher_scores=score).compare()
            for kind, part in table.groupby("kind"):
                rows.append(
                    {
                        "calibration": str(calibration),
                        "kind": kind,
                        "seed": seed,
                        "share of values flagged": part["significant"].mean(),
                        "share of rows in flagged values": np.average(
                            part["significant"], weights=part["weight"]
                        ),
                    }
                )
    frame = pd.DataFrame(rows)
    print(frame.round(3).to_string(index=False))
    print("\nmean over seeds (nominal: 0.05):")
    summary = frame.groupby(["kind", "calibration"], sort=False)[
        ["share of values flagged", "share of rows in flagged values"]
    ].mean()
    print(summary.round(3).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
