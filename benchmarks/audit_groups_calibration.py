"""Level of CompareAudit's missing-feature test with ``groups=`` on null worlds of records.

A record is a person seen on 1 to 5 rows (sizes from a geometric distribution with success
probability 0.22, cut at 5: mean 2.5 rows). A person's ``sex`` (2 levels) and ``race`` (3
levels, shares 0.5 / 0.35 / 0.15) are the same on each of their rows, ``age`` is their age at
the first row plus 0-3 years, ``x3`` is half theirs and half the row's (``0.7 person +
0.71 row``, both standard normal), ``x1`` and ``x2`` are the row's own. The true log-odds

    g = -0.3 + 0.8 x1 - 0.6 |x2| + 0.5 x3 - 0.02 (age - 40) + 0.4 [sex = M]
        + (0, 0.3, -0.5)[race]

and the outcome ``y ~ Bernoulli(sigmoid(g + u))`` with ``u ~ N(0, s^2)`` a record effect
that no one sees (``--record-sd``; 0 and 1 by default): with ``s > 0`` a person's rows share
their noise. The black box's score is a function of the audit features only (``--score``:
``exact``, ``g`` itself; ``misfit``, ``g + 0.4 sin(2 x1)``, a fixed misfit the outcome does
not have), so nothing is missing from it and the Pearson test should reject at its 5%.

Each seed's world is audited twice: ``fit(..., groups=record_ids)`` (thirds of whole
records, the outcome model's bags by record, the test's cluster bootstrap) and ``fit`` without
``groups`` (every row taken as independent). Printed per world and seed: the correlation, its
p-value and bootstrap standard error, and the variance factor the test multiplied the
bootstrap's variance by (``factor``), with, beside it, the same factor computed by records:
the HC2 term summed over each record's rows before squaring and divided by ``1 - h_g`` (``h_g``
the sum of the record's rows' leverages in their third), the larger of it and the HC1 factor,
each over the splits as the audit averages them (``record factor``: a record-level, CR2-like
reading of the same adjustment, for diagnosis only; the audit does not use it).

The audit runs as in ``benchmarks/audit_calibration.py`` (its lighter EBMs, isotonic
calibration, 10 interaction pairs, 200 bootstrap resamples).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_groups_calibration.py \
        [--seeds 40] [--n 1200 3000] [--record-sd 0 1] [--score exact] [--seed-start 0]

``--calibration-folds rows`` splits the mimic's cross-fitted calibration by rows even with
``groups`` (as before the audit kept records whole there), to compare.

One line per world, seed and fit, so that runs can be pooled; ``--table LOG [LOG ...]``
prints the table of such lines: per world and fit, the rejection rate at 5% (``p <= 0.05``)
with its Monte-Carlo standard error ``sqrt(r (1 - r) / seeds)``, the mean and standard
deviation of the correlation over seeds, the mean bootstrap standard error and their ratio
(near 1 when the standard error is calibrated), and the mean factors.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from audit_calibration import light_models, read_seed_lines

import sklearn_distill.audit as audit_module
import sklearn_distill.gam as gam_module
from sklearn_distill import CompareAudit

RACES = np.array(["A", "B", "C"])
RACE_EFFECTS = np.array([0.0, 0.3, -0.5])
SIZE_P = 0.22  # geometric record sizes cut at 5 rows: mean 2.5


def record_sizes(rng, n):
    """Record sizes of 1-5 rows summing to ``n`` (the last record cut to fit)."""
    k = np.arange(1, 6)
    weights = SIZE_P * (1 - SIZE_P) ** (k - 1)
    sizes = rng.choice(k, size=n, p=weights / weights.sum())
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    return sizes


def make_world(seed, n, record_sd, score="exact"):
    """(X, y, score, record ids) of one null world of records."""
    rng = np.random.default_rng(seed)
    sizes = record_sizes(rng, n)
    k = sizes.size
    record = np.repeat(np.arange(k), sizes)
    sex = rng.choice(np.array(["F", "M"]), size=k)
    race = rng.choice(3, size=k, p=[0.5, 0.35, 0.15])
    base_age = rng.integers(18, 70, size=k)
    person = rng.normal(size=k)
    u = rng.normal(scale=record_sd, size=k) if record_sd > 0 else np.zeros(k)
    X = pd.DataFrame(
        {
            "sex": pd.Categorical(sex[record]),
            "race": pd.Categorical(RACES[race[record]]),
            "age": (base_age[record] + rng.integers(0, 4, size=n)).astype(float),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": 0.7 * person[record] + np.sqrt(0.51) * rng.normal(size=n),
        }
    )
    g = (
        -0.3
        + 0.8 * X["x1"]
        - 0.6 * X["x2"].abs()
        + 0.5 * X["x3"]
        - 0.02 * (X["age"] - 40)
        + 0.4 * (X["sex"] == "M")
        + RACE_EFFECTS[race[record]]
    ).to_numpy(dtype=float)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(g + u[record])))).astype(int)
    if score == "exact":
        s = g
    elif score == "misfit":
        s = g + 0.4 * np.sin(2 * X["x1"].to_numpy())
    else:
        raise ValueError(f"unknown score {score!r}")
    # record identifiers as a user has them: strings, rows of a record not next to each other
    order = rng.permutation(n)
    ids = np.array([f"p{r:05d}" for r in record])
    return X.iloc[order].reset_index(drop=True), y[order], s[order], ids[order]


class _FactorProbe:
    """Records, while the audit adjusts its residuals, the HC1 ranks and the HC2 factors by
    rows (the audit's) and by records (``records``: integer codes, one per row)."""

    def __init__(self):
        self.records = None
        self.inside = False
        self.ranks, self.by_rows, self.by_records = [], [], []
        self._pairs = audit_module._adjusted_pairs
        self._rank = audit_module._adjust_with_rank
        self._inflation = audit_module._leverage_inflation
        self._leverage = audit_module._leverage
        audit_module._adjusted_pairs = self._adjusted_pairs
        audit_module._adjust_with_rank = self._adjust_with_rank
        audit_module._leverage_inflation = self._leverage_inflation
        audit_module._leverage = self._leverage_of

    def _adjusted_pairs(self, X, splits, *args, **kwargs):
        self.inside, self.thirds, self.spaces = True, [p for parts in splits for p in parts], []
        try:
            return self._pairs(X, splits, *args, **kwargs)
        finally:
            self.inside = False

    def _leverage_of(self, basis):
        if self.inside:  # the third's hat matrix H = U U' (U: as _leverage takes it)
            left, singular, _ = np.linalg.svd(basis, full_matrices=False)
            if singular.size:
                left = left[:, singular > np.finfo(float).eps * max(basis.shape) * singular[0]]
            self.spaces.append(left)
        return self._leverage(basis)

    def _adjust_with_rank(self, basis, values):
        adjusted, rank = self._rank(basis, values)
        if self.inside:
            self.ranks.append((basis.shape[0], rank))
        return adjusted, rank

    def _leverage_inflation(self, mimic, outcome, leverage):
        factor = self._inflation(mimic, outcome, leverage)
        self.by_rows.append(factor)
        split = len(self.by_rows) - 1
        thirds = range(3 * split, 3 * split + 3)
        spaces = [(self.thirds[t], self.spaces[t]) for t in thirds]
        self.by_records.append(record_inflation(mimic, outcome, spaces, self.records))
        return factor

    def start(self, records):
        self.records = records
        self.ranks, self.by_rows, self.by_records = [], [], []

    def factors(self):
        """(HC1, HC2 by rows, HC2 by records), each the mean over the splits."""
        ranks = np.array(self.ranks).reshape(len(self.by_rows), 3, 2)
        rows, fitted = ranks[..., 0].sum(axis=1), ranks[..., 1].sum(axis=1)
        hc1 = float(np.mean(rows / np.maximum(rows - fitted, 1)))
        return hc1, float(np.mean(self.by_rows)), float(np.mean(self.by_records))


def record_inflation(mimic, outcome, spaces, records):
    """The HC2 factor of one split by records (CR2-like): each record's summed influence
    ``S_g`` squared, over ``1 - h_g``, summed, over the sum of the ``S_g**2``; the influence as
    the audit's ``_leverage_inflation`` takes it. ``h_g = c_g' H_gg c_g / c_g' c_g`` with
    ``c`` the standardised mimic residuals summed over the pairs (``S_g`` is about
    ``sum(c_i e_i)`` over the record's rows, whose adjusted noise keeps ``c' (I - H_gg) c``
    of the variance of noise of one variance) and ``H_gg`` the record's block of the hat
    matrices of its rows' thirds (``spaces``: each third's rows and ``U``, ``H = U U'``);
    with one row a record it is the row's leverage."""
    a = mimic - mimic.mean()
    b = outcome - outcome.mean()
    a, b = a / np.sqrt(np.mean(a * a)), b / np.sqrt(np.mean(b * b))
    r = np.mean(a * b)
    psi = (a * b - 0.5 * r * (a * a + b * b)).sum(axis=0)
    c = a.sum(axis=0)
    count = records.max() + 1
    summed = np.bincount(records, weights=psi, minlength=count)
    held = np.zeros(count)
    for rows, left in spaces:
        projected = np.zeros((count, left.shape[1]))
        np.add.at(projected, records[rows], left * c[rows, None])
        held += np.einsum("ij,ij->i", projected, projected)
    norm = np.bincount(records, weights=c * c, minlength=count)
    free = 1.0 - np.divide(held, norm, out=np.ones(count), where=norm > 0)
    squares = summed * summed
    corrected = np.divide(squares, free, out=np.zeros_like(squares), where=free > 1e-9)
    return float(corrected.sum() / squares.sum())


def run_world(probe, seed, n, record_sd, score, grouped, interactions, n_bootstrap):
    X, y, s, ids = make_world(seed, n, record_sd, score)
    student, outcome = light_models()
    audit = CompareAudit(
        interactions=interactions,
        student=student,
        outcome=outcome,
        random_state=seed,
        n_jobs=1,
    )
    probe.start(pd.factorize(pd.Series(ids, dtype=object))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=s, groups=ids if grouped else None)
    hc1, by_rows, by_records = probe.factors()
    test = audit.missing_feature_test(n_bootstrap=n_bootstrap).loc["pearson"]
    return {
        "pearson": test["estimate"],
        "p": test["p_value"],
        "se": test["std_error"],
        "factor": audit._test_variance_inflation,
        "record_factor": max(hc1, by_records),
        "hc1": hc1,
        "hc2_rows": by_rows,
    }


def calibration_leak(n, record_sd, seeds, *, twice=False, cv=5):
    """How much of a row's own label its cross-fitted calibrated probability carries, with the
    calibration folds by rows and by records: ``corr(p - sigmoid(s), y - sigmoid(s))`` over
    ``seeds`` (the score ``s`` is the true log-odds here, so ``y - sigmoid(s)`` is the row's
    label noise). ``twice``: every row entered twice (the same score and label). No model is
    fitted. Prints the mean correlation by rows, by records, and their paired difference."""
    from sklearn_distill._calibration import cross_fit_calibration

    found = {"rows": [], "records": []}
    for seed in range(seeds):
        _, y, score, records = make_world(seed, n, record_sd)
        if twice:
            y, score, records = np.tile(y, 2), np.tile(score, 2), np.tile(records, 2)
        base = 1 / (1 + np.exp(-score))
        for folds, values in found.items():
            probability, _ = cross_fit_calibration(
                score,
                y,
                "isotonic",
                cv,
                seed,
                sign=1,
                groups=records if folds == "records" else None,
            )
            values.append(np.corrcoef(probability - base, y - base)[0, 1])
    world = f"n={n} s={record_sd:g}{' every row twice' if twice else ''}"
    for folds, values in found.items():
        values = np.asarray(values)
        print(
            f"  {world:<26s} folds by {folds:<7s}: corr {values.mean():+.4f} "
            f"(s.e. {values.std(ddof=1) / np.sqrt(values.size):.4f})"
        )
    difference = np.asarray(found["rows"]) - np.asarray(found["records"])
    print(
        f"  {world:<26s} rows - records: {difference.mean():+.4f} "
        f"(s.e. {difference.std(ddof=1) / np.sqrt(difference.size):.4f})",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (to split runs)")
    parser.add_argument("--n", type=int, nargs="+", default=[1200, 3000])
    parser.add_argument("--record-sd", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--score", default="exact", choices=["exact", "misfit"])
    parser.add_argument("--fits", default="groups,rows", help="groups, rows or both")
    parser.add_argument("--interactions", type=int, default=10)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument(
        "--calibration-folds",
        default="records",
        choices=["records", "rows"],
        help="with groups: the mimic's calibration folds by records (the audit's) or by rows",
    )
    parser.add_argument("--table", nargs="+", metavar="LOG", help="pool the lines of logs")
    parser.add_argument(
        "--leak",
        choices=["once", "twice"],
        help="no audit: how much of a row's own label its calibrated probability carries, "
        "folds by rows against by records, the rows as drawn or every row entered twice",
    )
    args = parser.parse_args()
    if args.table:
        print_table(pd.DataFrame(_read_logs(args.table)))
        return
    if args.leak:
        for n in args.n:
            for sd in args.record_sd:
                calibration_leak(n, sd, args.seeds, twice=args.leak == "twice")
        return
    fits = [f.strip() for f in args.fits.split(",") if f.strip()]
    if args.calibration_folds == "rows":
        calibrate = gam_module.cross_fit_calibration
        gam_module.cross_fit_calibration = lambda *a, groups=None, **k: calibrate(*a, **k)
    print(
        f"{args.seeds} seeds, rows {args.n}, record sd {args.record_sd}, score {args.score}, "
        f"fits {fits}, calibration folds by {args.calibration_folds}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    probe = _FactorProbe()
    rows = []
    start = time.perf_counter()
    for n in args.n:
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            for sd in args.record_sd:
                for fit in fits:
                    t = time.perf_counter()
                    result = run_world(
                        probe,
                        seed,
                        n,
                        sd,
                        args.score,
                        fit == "groups",
                        args.interactions,
                        args.n_bootstrap,
                    )
                    world = f"n={n} s={sd:g} {args.score} {fit}"
                    rows.append({"world": world, "seed": seed, **result})
                    print(
                        f"  {world:<24s} seed {seed:2d}: r = {result['pearson']:+.4f}, "
                        f"p = {result['p']:.3f}, bootstrap s.e. {result['se']:.4f}, "
                        f"factor {result['factor']:.4f}, record factor "
                        f"{result['record_factor']:.4f} ({time.perf_counter() - t:.0f} s)",
                        flush=True,
                    )
    print(f"\n{time.perf_counter() - start:.0f} s")
    print_table(pd.DataFrame(rows))


def _read_logs(paths):
    rows = read_seed_lines(
        paths,
        r"^\s+(?P<world>.+?)\s+seed\s+(?P<seed>\d+): r = (?P<pearson>[-+.\d]+), "
        r"p = (?P<p>[.\d]+), bootstrap s\.e\. (?P<se>[.\d]+), factor (?P<factor>[.\d]+), "
        r"record factor (?P<record_factor>[.\d]+)",
    )
    return sorted(rows, key=lambda row: (row["world"], row["seed"]))


def print_table(frame):
    frame = frame.assign(rejected=frame["p"] <= 0.05)
    table = frame.groupby("world", sort=False).agg(
        seeds=("p", "size"),
        rejection=("rejected", "mean"),
        mean_pearson=("pearson", "mean"),
        sd_pearson=("pearson", "std"),
        mean_se=("se", "mean"),
        factor=("factor", "mean"),
        record_factor=("record_factor", "mean"),
    )
    table["mc_se"] = np.sqrt(table["rejection"] * (1 - table["rejection"]) / table["seeds"])
    print("\nPearson test at 5% (two-sided), nothing missing from the score:")
    print(
        "| world | seeds | rejection rate | MC s.e. | mean r (sd) | mean bootstrap s.e. | "
        "sd / s.e. | factor | record factor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for world, row in table.iterrows():
        print(
            f"| {world} | {int(row['seeds'])} | {row['rejection']:.3f} | {row['mc_se']:.3f} | "
            f"{row['mean_pearson']:+.4f} ({row['sd_pearson']:.4f}) | {row['mean_se']:.4f} | "
            f"{row['sd_pearson'] / row['mean_se']:.2f} | {row['factor']:.3f} | "
            f"{row['record_factor']:.3f} |"
        )


if __name__ == "__main__":
    main()
