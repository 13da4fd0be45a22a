"""How steady DistilledGAM's shape bands are, by the student's number of outer bags.

The band of a shape value is ``t_{B - 1} * SE`` with SE the delete-d jackknife over the
student's ``B`` outer bags (``sklearn_distill.shapes``). Its standard error is estimated on
``B - 1`` degrees of freedom, so neighbouring values of a feature can get bands of very
different widths by the bags' noise alone. For each bag count the script fits the student
(``DEFAULT_STUDENT_PARAMS`` but ``outer_bags``, one thread) with three seeds on one data set
and reports, over the first 16 values of an integer feature:

- fit time (median of the three seeds, and its ratio to 4 bags, in this run);
- the largest ratio of two neighbouring values' standard errors (median over the seeds);
- the coefficient of variation of one value's standard error across the seeds (median over
  the values): the bags' noise in the band's width;
- SE / refit SD (median over the values), where the refit SD is the spread of the shape value
  over 20 refits with 4 bags on new data: fresh draws of a generated world, or bootstrap
  resamples of the rows for COMPAS. Above 1: the band is wider than the shape's actual
  variability.

Data: COMPAS's ``priors_count`` (the student mimics the cross-fitted isotonic calibration of
the decile, computed once, so that every fit has the same target) and a generated world
(6,000 rows, a noise-free target ``0.8 log(1 + count) + sin(2 a) + b^2 / 2 + 0.3 a c``, count
negative binomial).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gam_band_stability.py

``--data compas --values`` prints each value's refit SD and standard errors too.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

BAGS = (4, 8, 14)
VALUES = [str(v) for v in range(16)]


def world(seed, n=6000):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "count": rng.negative_binomial(1, 0.3, n),
            "a": rng.normal(size=n),
            "b": rng.uniform(-2, 2, n),
            "c": rng.normal(size=n),
        }
    )
    target = 0.8 * np.log1p(X["count"]) + np.sin(2 * X["a"]) + 0.5 * X["b"] ** 2
    return X, (target + 0.3 * X["a"] * X["c"]).to_numpy()


def compas():
    from sklearn_distill import DistilledGAM
    from sklearn_distill.datasets import load_compas

    data = load_compas()
    X, y, score = data.data, data.target, data.score
    mimic = DistilledGAM(calibration="isotonic", random_state=0, n_jobs=1)
    mimic.fit(X, y, teacher_scores=score)
    # the cross-fitted calibrated log-odds the mimic was fitted to, once for every fit below
    target = mimic._targets(X, y, score, np.random.RandomState(0))
    target = np.asarray(target[0] if isinstance(target, tuple) else target, dtype=float)
    return X, target.ravel()


def shape(X, target, feature, bags, seed):
    """The feature's shape table (indexed by label) and the fit's seconds."""
    from interpret.glassbox import ExplainableBoostingRegressor

    from sklearn_distill import DistilledGAM
    from sklearn_distill._defaults import DEFAULT_STUDENT_PARAMS

    params = {**DEFAULT_STUDENT_PARAMS, "outer_bags": bags}
    student = ExplainableBoostingRegressor(**params, n_jobs=1, random_state=seed)
    start = time.perf_counter()
    gam = DistilledGAM(student=student, random_state=seed).fit(X, teacher_scores=target)
    seconds = time.perf_counter() - start
    table = gam.shape_functions()
    return table[table.term == feature].set_index("label").reindex(VALUES), seconds


def study(name, X, target, feature, refit_data, refits, seeds, values=False):
    spread = pd.concat(
        [shape(*refit_data(k), feature, 4, k)[0]["score"] for k in range(refits)], axis=1
    ).std(axis=1, ddof=1)
    base_time = None
    print(f"\n{name}: {feature}, values 0-15; refit SD over {refits} refits with 4 bags")
    print("bags  fit s  ratio  max neighbour SE ratio  CV of SE  SE / refit SD")
    for bags in BAGS:
        fits = [shape(X, target, feature, bags, seed) for seed in range(seeds)]
        errors = pd.concat([table["std_error"] for table, _ in fits], axis=1).to_numpy()
        seconds = float(np.median([s for _, s in fits]))
        base_time = base_time or seconds
        if values:
            columns = {
                f"SE seed {seed}": table["std_error"] for seed, (table, _) in enumerate(fits)
            }
            frame = pd.DataFrame({"rows": fits[0][0]["weight"], "refit SD": spread, **columns})
            print(f"{bags} bags, per value:\n{frame.round(3).to_string()}")
        jumps = np.nanmax(np.maximum(errors[1:] / errors[:-1], errors[:-1] / errors[1:]), axis=0)
        cv = np.nanmedian(errors.std(axis=1, ddof=1) / errors.mean(axis=1))
        ratio = np.nanmedian(errors / spread.to_numpy()[:, None])
        print(
            f"{bags:>4}  {seconds:5.1f}  {seconds / base_time:5.2f}  {np.median(jumps):22.1f}"
            f"  {cv:8.2f}  {ratio:13.2f}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refits", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", choices=["both", "generated", "compas"], default="both")
    parser.add_argument("--values", action="store_true", help="print each value's figures")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from scipy.stats import chi2, f

    print("SE from B bags ~ sigma * sqrt(chi2_{B-1} / (B - 1)):")
    for bags in BAGS:
        dof = bags - 1
        low, high = np.sqrt(chi2.ppf([0.05, 0.95], dof) / dof)
        ten = 2 * f.sf(100, dof, dof)
        print(
            f"  {bags:>2} bags: 90% of SEs within {low:.2f}-{high:.2f} x sigma; P(two equal-sigma "
            f"SEs differ 10x) = {ten:.4f}, over 15 neighbour pairs {1 - (1 - ten) ** 15:.3f}"
        )

    if args.data != "compas":
        X, target = world(7)
        study(
            "generated",
            X,
            target,
            "count",
            lambda k: world(1000 + k),
            args.refits,
            args.seeds,
            args.values,
        )
    if args.data == "generated":
        return
    X, target = compas()

    def bootstrap(k):
        rows = np.random.default_rng(100 + k).integers(0, len(X), len(X))
        return X.iloc[rows].reset_index(drop=True), target[rows]

    study("COMPAS", X, target, "priors_count", bootstrap, args.refits, args.seeds, args.values)


if __name__ == "__main__":
    main()
