"""Do a few missing values in a yes/no feature weaken the audit's test of its other values?

Generated worlds of 2,000 rows: age (integers 18-79), a yes/no feature ``flag`` ("Y" on 40% of
the rows), a four-valued ``region`` and a hidden N(0, 1) variable that is not in X. The outcome's
log-odds are ``0.8 age_z + effect * flag + 0.5 region_effect + 0.8 hidden - 0.3``; the black
box's score (deciles of ``0.8 age_z + 0.5 region_effect + 0.8 hidden`` plus noise) ignores
``flag``. With ``effect=0.7`` (power worlds) ``flag`` truly differs between the score and the
outcome; with ``effect=0`` (null worlds) it does not. Each world is audited twice, with ``flag``
as given and with its first 5 values set to None (a missing-value bin of 5 rows, too thin to
be tested itself), and a third time without those 5 rows ("dropped"), by ``CompareAudit`` with
its default models (``interactions=0``).

Printed per world kind and number of None: the share of worlds where ``flag``'s N or Y value is
flagged (``significant_bh``), the median p-value of N, and, for the difference of Y, its spread
over the worlds beside the root-mean-square standard error ``compare()`` gave (their ratio is 1
when the standard errors are right).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_missing_bin.py [--worlds 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def world(seed, effect, n_missing, rows, drop=False):
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    age_z = (age - 45) / 15
    flag = rng.random(rows) < 0.4
    region = rng.integers(0, 4, rows)
    region_effect = np.array([0.0, 0.5, -0.5, 1.0])[region]
    hidden = rng.normal(size=rows)
    logit = 0.8 * age_z + effect * flag + 0.5 * region_effect + 0.8 * hidden - 0.3
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    score = 0.8 * age_z + 0.5 * region_effect + 0.8 * hidden + 0.2 * rng.normal(size=rows)
    score = pd.qcut(score, 10, labels=False).astype(float) + 1
    X = pd.DataFrame(
        {
            "age": age,
            "flag": np.where(flag, "Y", "N").astype(object),
            "region": pd.Categorical(np.array(["north", "south", "east", "west"])[region]),
        }
    )
    X.loc[X.index[:n_missing], "flag"] = None
    if drop:  # the audit on the rows where flag is known
        return X.iloc[n_missing:].reset_index(drop=True), y[n_missing:], score[n_missing:]
    return X, y, score


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--missing", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill import CompareAudit

    start = time.perf_counter()
    print(f"{args.worlds} worlds of {args.rows} rows per kind; flag with 0 or {args.missing} None")
    print("kind   None     flagged  median p(N)  SD of diff(Y)  RMS SE of diff(Y)  SE / SD")
    for kind, effect in (("power", 0.7), ("null", 0.0)):
        for n_missing, drop in ((0, False), (args.missing, False), (args.missing, True)):
            flagged, p_values, differences, errors = [], [], [], []
            for seed in range(args.worlds):
                X, y, score = world(1000 + seed, effect, n_missing, args.rows, drop)
                audit = CompareAudit(random_state=seed, interactions=0)
                table = audit.fit(X, y, teacher_scores=score).compare()
                rows = table[(table["term"] == "flag") & (table["label"] != "missing")]
                rows = rows.set_index("label")
                flagged.append(bool(rows["significant_bh"].any()))
                p_values.append(rows.loc["N", "p_value"])
                differences.append(rows.loc["Y", "difference"])
                # compare() gives the difference and z = difference / its standard error
                errors.append(rows.loc["Y", "difference"] / rows.loc["Y", "z"])
            spread = np.std(differences, ddof=1)
            rms = np.sqrt(np.mean(np.square(errors)))
            print(
                f"{kind:6s} {n_missing:4d} {'dropped' if drop else '':7s} {np.mean(flagged):7.0%}  {np.median(p_values):11.4f}"
                f"  {spread:13.3f}  {rms:17.3f}  {rms / spread:7.2f}",
                flush=True,
            )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
