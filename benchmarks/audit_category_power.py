"""Power and level of ``compare()`` on one level of a category, and candidate outcome models.

*Region worlds* (3,000 rows): income (10% missing), age, a four-level ``region``, a yes/no
``emp`` and ``shoe`` (no effect); the outcome's log-odds are
``-0.05 (income - 50) + 0.03 (age - 50) + 1.0 [region == "n"] - 0.3``. The black box's score
is those log-odds without the region term (*planted*: ``n`` differs, about -0.65 after
centring) or with it (*null*: every flag is false). Main-effect audits,
``calibration="spline"``, ``n_crossfits=1`` (``compare()`` reads only the full-data models).

Candidates, each on the same audit (the full-data outcome model refitted with the candidate's
settings and swapped in; ``compare()`` reads nothing else of it, and the refit with the default
settings is checked to give the audit's own bags):

- ``default``: the audit's outcome model (8 bags, interpret's 75 smoothing rounds);
- ``outer_bags=16``;
- ``MAD bands``: the default fits, each value's standard error from the median absolute
  deviation of the bags (times 1.4826) instead of their standard deviation;
- ``smoothing_rounds=0``.

Per candidate: the share of planted worlds in which ``n`` is flagged (``significant_bh``),
the share of audits with a flag in another term (planted) or anywhere (null), the share of
testable values flagged before the adjustment, the spread of ``n``'s difference over the worlds
and the root-mean-square of its reported standard error (their ratio: 1 is right), and the
CPU time of the full-data outcome model's fit. Then the level of ``smoothing_rounds=0`` on the
correlated null worlds of ``audit_null_worlds.py`` (``calibration=None``, main effects).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_category_power.py
    [--worlds 12] [--correlated 15]
"""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from audit_null_worlds import sample
from sklearn.base import clone

import sklearn_distill.shapes as shapes
from sklearn_distill import CompareAudit

CANDIDATES = {
    "default": None,
    "outer_bags=16": {"outer_bags": 16},
    "MAD bands": "mad",
    "smoothing_rounds=0": {"smoothing_rounds": 0},
}


def region_world(seed, rows=3000):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 10, rows),
            "age": rng.integers(18, 80, rows).astype(float),
            "region": pd.Categorical(rng.choice(["n", "s", "e", "w"], rows)),
            "emp": rng.choice(["yes", "no"], rows),
            "shoe": rng.normal(0, 1, rows),
        }
    )
    X.loc[rng.random(rows) < 0.1, "income"] = np.nan
    north = (X["region"] == "n").to_numpy()
    logit = (
        -0.05 * (X["income"].fillna(50) - 50) + 0.03 * (X["age"] - 50) + 1.0 * north - 0.3
    ).to_numpy()
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, logit, north


def _mad_jackknife(ebm, bagged):
    n_samples = float(np.sum(ebm.bin_weights_[0]))
    fraction = shapes._bag_fraction(ebm, n_samples)
    if bagged.shape[0] < 2 or not 0 < fraction < 1:
        return np.full(bagged.shape[1:], np.nan)
    spread = 1.4826 * np.median(np.abs(bagged - np.median(bagged, axis=0)), axis=0)
    return spread * np.sqrt(fraction / (1 - fraction))


@contextmanager
def mad_bands():
    # the bands' standard error has no public switch: the private jackknife is replaced for
    # the duration of one compare()
    original = shapes._jackknife
    shapes._jackknife = _mad_jackknife
    try:
        yield
    finally:
        shapes._jackknife = original


def _swapped(audit, X, y, params):
    """compare() of ``audit`` with its outcome model refitted under ``params``; CPU seconds."""
    base = audit.outcome_
    model = clone(base).set_params(**params)
    start = time.process_time()
    model.fit(X, y)
    seconds = time.process_time() - start
    if not params:
        same = all(np.array_equal(a, b) for a, b in zip(model.bagged_scores_, base.bagged_scores_))
        assert same, "the default refit does not give the audit's outcome model"
    audit.outcome_ = model
    try:
        return audit.compare(), seconds
    finally:
        audit.outcome_ = base


def region_rows(worlds):
    rows = []
    for seed in range(worlds):
        X, y, logit, north = region_world(1000 + seed)
        for kind, score in (("planted", logit - north), ("null", logit)):
            audit = CompareAudit(
                calibration="spline", interactions=0, n_crossfits=1, random_state=seed, n_jobs=1
            ).fit(X, y, teacher_scores=score)
            for name, setting in CANDIDATES.items():
                if setting == "mad":
                    with mad_bands():
                        table = audit.compare()
                    seconds = np.nan
                else:
                    table, seconds = _swapped(audit, X, y, setting or {})
                testable = table[table["testable"]]
                value = table[(table["term"] == "region") & (table["label"] == "n")].iloc[0]
                others = testable[testable["term"] != "region"] if kind == "planted" else testable
                rows.append(
                    {
                        "kind": kind,
                        "candidate": name,
                        "n flagged": bool(value["significant_bh"]),
                        "other flag": bool(others["significant_bh"].any()),
                        "raw share": float(testable["significant"].mean()),
                        "difference": float(value["difference"]),
                        "se": float(value["difference"] / value["z"]),
                        "outcome fit s": seconds,
                    }
                )
    return pd.DataFrame(rows)


def correlated_level(seeds):
    rows = []
    for seed in range(seeds):
        X, y, g = sample("correlated", np.random.default_rng(1000 + seed), 3000)
        audit = CompareAudit(
            calibration=None, interactions=0, n_crossfits=1, random_state=seed, n_jobs=1
        ).fit(X, y, teacher_scores=g)
        for name in ("default", "smoothing_rounds=0"):
            table, _ = _swapped(audit, X, y, CANDIDATES[name] or {})
            testable = table[table["testable"]]
            rows.append(
                {
                    "candidate": name,
                    "any flag": bool(testable["significant_bh"].any()),
                    "raw share": float(testable["significant"].mean()),
                }
            )
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=12)
    parser.add_argument("--correlated", type=int, default=15)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    frame = region_rows(args.worlds)
    for kind in ("planted", "null"):
        part = frame[frame["kind"] == kind].groupby("candidate", sort=False)
        summary = pd.DataFrame(
            {
                "n flagged": part["n flagged"].mean(),
                "other" if kind == "planted" else "any flag": part["other flag"].mean(),
                "raw share": part["raw share"].mean(),
                "SD of difference": part["difference"].std(ddof=1),
                "RMS se": part["se"].apply(lambda s: float(np.sqrt(np.mean(s**2)))),
                "outcome fit s": part["outcome fit s"].mean(),
            }
        )
        summary["se / SD"] = summary["RMS se"] / summary["SD of difference"]
        print(f"region worlds, {kind} ({args.worlds} worlds)")
        print(summary.round(3).to_string(), flush=True)
    if args.correlated:
        level = correlated_level(args.correlated).groupby("candidate", sort=False).mean()
        print(f"\ncorrelated null worlds ({args.correlated}): share with any flag, raw share")
        print(level.round(3).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
