"""What share of terms does ``CompareAudit.stability()`` mark, where the truth is known?

Generated worlds of ``--rows`` rows. Features: x0, x1, x2, x3 independent normals, ``grp``
one of four equally likely values, ``noise`` a normal the outcome ignores, and ``twin``, x0
plus a little noise (correlation about 0.995). Outcome log-odds
``1.0 x0 - 0.7 x1 + 0.4 x2 + 0.2 x3 + (0.5, 0, -0.3, 0.1)[grp]``; the black box's score is the
outcome's log-odds itself (a perfect black box, so the mimic and the outcome model have the
same true shapes). Two kinds of world:

* ``identified``: the audit sees x0..x3, grp and noise. Every term with an effect has one
  true shape, which refits should find again: a mark on one of them is a false alarm.
  ``noise`` has no effect: what its shape shows is noise, and a mark there is right.
* ``twins``: the audit also sees ``twin``, so x0's effect can be split between x0 and twin
  in many ways that fit equally well: marks on x0 and twin are right.

A main-effect audit (``interactions=0``) is fitted to each world and ``stability()`` run with
``--refits`` bootstrap refits at the defaults. Printed: per term and model, the share of worlds
in which it was marked by the current rule (importance's coefficient of variation above 0.25
or shape noise above 1), by the earlier rule (either of the two above 0.25, or any change of
importance rank, computed here from the same table), and by each criterion alone.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_stability.py [--worlds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

EFFECTS = {"x0": "1.0", "x1": "0.7", "x2": "0.4", "x3": "0.2", "grp": "0.5 .. -0.3"}


def world(seed, rows, twins):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.normal(size=rows) for j in range(4)})
    X["grp"] = rng.choice(["a", "b", "c", "d"], rows)
    X["noise"] = rng.normal(size=rows)
    if twins:
        X["twin"] = X["x0"] + 0.1 * rng.normal(size=rows)
    logit = (
        1.0 * X["x0"] - 0.7 * X["x1"] + 0.4 * X["x2"] + 0.2 * X["x3"]
        + X["grp"].map({"a": 0.5, "b": 0.0, "c": -0.3, "d": 0.1})
    )  # fmt: skip
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y, logit.to_numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--refits", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill import CompareAudit

    start = time.perf_counter()
    rows = []
    for kind in ("identified", "twins"):
        for seed in range(args.worlds):
            X, y, logit = world(seed, args.rows, twins=kind == "twins")
            audit = CompareAudit(interactions=0, calibration=None, random_state=seed)
            audit.fit(X, y, teacher_scores=logit)
            table = audit.stability(X, y, teacher_scores=logit, n_refits=args.refits)
            for row in table.itertuples():
                rows.append(
                    {
                        "world": kind,
                        "term": row.term,
                        "model": row.model,
                        "marked now": bool(row.unstable),
                        "earlier rule": bool(
                            row.importance_cv > 0.25
                            or row.shape_noise > 0.25
                            or row.rank_min != row.rank_max
                        ),
                        "cv > 0.25": bool(row.importance_cv > 0.25),
                        "shape noise > 0.25": bool(row.shape_noise > 0.25),
                        "rank changed": bool(row.rank_min != row.rank_max),
                        "shape noise": row.shape_noise,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["truth"] = np.where(
        frame["term"].isin(["x0", "twin"]) & (frame["world"] == "twins"),
        "split between twins",
        np.where(frame["term"] == "noise", "no effect", "one true shape"),
    )
    shares = frame.groupby(["world", "truth", "term", "model"], sort=False)[
        [
            "marked now",
            "earlier rule",
            "cv > 0.25",
            "shape noise > 0.25",
            "rank changed",
            "shape noise",
        ]
    ].mean()
    print(
        f"{args.worlds} worlds of {args.rows} rows per kind, {args.refits} bootstrap refits; "
        "share of worlds in which a term was marked, by criterion (mean shape noise last)"
    )
    with pd.option_context("display.width", 140, "display.max_rows", 100):
        print(shares.round(2).to_string())
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
