"""Level and power of CompareAudit's missing-feature test on generated worlds.

*Null* worlds: the black box's score is a function of the audit features only, so nothing is
missing and the Pearson test of the residuals should reject at its nominal 5%. *Planted*
worlds: the black box and the outcome share a feature ``h`` the audit data lack, at three
effect sizes; the test should find it. Each world is drawn over ``--seeds`` seeds; the table
gives the rejection rate of the Pearson bootstrap test at 5% (``p_value <= 0.05``; nearly
always the verdict of the interval excluding zero: 4 of 440 audits at 200 resamples differed) with its Monte-Carlo standard error
``sqrt(r (1 - r) / seeds)``, and the *flag rate*: the share of seeds where the interval lies
above zero, the positive correlation that the report and the command line read as a missing
feature (nominal 2.5% under the null); and the mean and standard deviation of the correlation
over the seeds.

Worlds (four standard normal features x0..x3 unless said; ``g`` is the true log-odds and the
outcome is ``y ~ Bernoulli(sigmoid(g))``). The black box is what an audit meets: a
``HistGradientBoostingClassifier`` trained on another sample of the same world (as many rows),
read as log-odds ``s`` unless said:

* ``main``: ``g = x0 - 0.8 |x1| + 0.5 x2``;
* ``num x num``: ``g = 0.8 x0 + 0.5 x3 + 0.9 x1 x2``;
* ``cat x num``: a nominal ``c`` (4 levels) changes the slope of x1: ``g = 0.6 x0 +
  s_c x1`` with ``s = (-1, -0.3, 0.4, 1)``;
* ``correlated``: x0, x1, x2 equicorrelated (0.8), ``g = x0 + 0.8 x1 - 0.6 x2``;
* ``many levels``: ``main`` plus a nominal ``c`` of 40 levels whose frequencies fall as
  1 / rank^1.3 (the rarest about 0.3% of the rows), each level's effect drawn once from
  N(0, 0.8^2);
* ``thin levels``, ``exact thin levels``: ``main``'s g on x0, x1, x2 plus a nominal ``c`` of
  80 equally frequent levels, each level's effect drawn once from N(0, 1) (at 1,200 rows,
  about 5 rows of each level in a third); the second with the true log-odds as the score;
* ``saturated``: ``g`` of ``main`` doubled, score ``sigmoid(s)`` rounded to 2 decimals
  (about a third of the rows read exactly 0 or 1);
* ``calibrated``: ``num x num``, score the black box's probability ``sigmoid(s)``;
* ``uncalibrated``: ``num x num``, score ``exp(s / 2)`` (monotone, on no probability scale);
* ``exact``: ``num x num`` with the true log-odds ``g`` itself as the score (a smooth black
  box that the mimic fits almost perfectly: see the README for why this one is hard);
* ``exact main``: ``main``'s g on three features (x0, x1, x2: the ``|x1|`` kink) as the
  score itself;
* ``deciles``, ``deciles num x num``: the g of ``main`` or ``num x num``, the score the decile
  1-10 of the black box's probability, cut at the deciles of its probability on its own
  training sample (a norm group, as COMPAS's decile scores);
* ``rare outcome``: ``main``'s g less 2.6 (about 7% of the outcomes are events);
* ``nominal K`` (K = 5, 30): ``main``'s g on x0, x1, x2 plus K nominal features of 3-8
  levels each (equally frequent; the numbers of levels and the levels' effects, drawn once
  from N(0, 1 / K), the same in every seed), for the test at few rows (``--n 150``);
* ``missing values``: ``main``; x1 missing with probability sigmoid(x0 - 1.5) (about 22% of
  the rows; at random given x0, which x1 does not depend on), in the black box's sample too;
* ``logistic``: ``main``'s g, the black box a ``LogisticRegression`` on x0..x3 (its score, the
  log-odds, linear in the audit features: with ``--calibration none``, ``sigmoid`` or
  ``temperature`` the test's adjustment holds it whole, and the test says it has nothing to
  correlate);
* ``logistic kink``: the same with ``|x1|`` given to the logistic regression as a fifth column
  (a score near the adjustment's span, not in it);
* ``wiggle``: ``main``'s g plus ``0.6 sin(2 x3)``, a smooth wiggle of x3 (two turns over
  its usual range) that the adjustment's quadratic cannot hold, so that models underfitting
  it share the misfit; ``fast wiggle`` the same with ``0.6 sin(4 x3)``;
* ``wiggle levels``: log-odds linear in x0, x1, x2 (``0.8 x0 + 0.5 x1 - 0.4 x2``), plus a
  nominal ``c`` of 4 equally frequent levels with effects ``(-0.5, 0, 0.3, 0.6)``, plus
  ``0.6 sin(2 x3)``; ``exact wiggle``, ``exact wiggle levels``: the two with the true log-odds
  as the score (the mimic then fits a smooth, noise-free surface and misfits the wiggle as the
  outcome model does);
* ``planted b``: ``g = x0 - 0.8 |x1| + 0.5 x2 + b h``, the black box trained with ``h``, the
  audit data without it, for b = 0.25, 0.5, 1;
* ``planted thin 0.5``: ``thin levels`` plus ``0.5 h``, ``h`` missing as above.

The audit runs with its defaults (isotonic calibration, 10 interaction pairs, 5 folds) except
for lighter EBMs (2 bags: the test needs no bands; the outcome model's default learning rate
``OUTCOME_LEARNING_RATE`` and at most 2,000 rounds) to
bound the run time; ``--n`` rows per world (default 1,000) and 200 bootstrap resamples.
``--models default`` runs the audit's own default models instead (no model arguments: what a
user gets; 8 bags each, one core), ``--models small`` deliberately small ones (the light
models with 16 bins and at most 300 rounds), to see what underfitting does to the test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audit_calibration.py [--seeds 10] [--n 1500]
        [--worlds main,num x num] [--interactions 10] [--seed-start 0]
        [--models light|default|small] [--calibration isotonic|sigmoid|...]

Every run prints one line per world and seed, so runs split over processes (``--worlds``,
``--seed-start``) can be pooled; ``--table LOG [LOG ...]`` prints the table of such lines.
"""

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from sklearn_distill import CompareAudit
from sklearn_distill._defaults import (
    AUDIT_EBM_PARAMS,
    DEFAULT_STUDENT_PARAMS,
    OUTCOME_LEARNING_RATE,
)

SLOPES = {"a": -1.0, "b": -0.3, "c": 0.4, "d": 1.0}

# "wiggle levels": a nominal feature of 4 equally frequent levels and their effects
WIGGLE_LEVELS = {"a": -0.5, "b": 0.0, "c": 0.3, "d": 0.6}

# "many levels": a nominal feature of 40 levels, frequencies falling as 1 / rank^1.3 (the
# rarest about 0.3% of the rows), effects drawn once (the same in every seed)
LEVELS = [f"L{k:02d}" for k in range(40)]
LEVEL_EFFECTS = np.random.default_rng(12345).normal(scale=0.8, size=len(LEVELS))
LEVEL_FREQUENCIES = 1.0 / np.arange(1, len(LEVELS) + 1) ** 1.3
LEVEL_FREQUENCIES /= LEVEL_FREQUENCIES.sum()

# "thin levels": a nominal feature of 80 equally frequent levels (about 5 rows of each in a
# third of 1,200 rows), effects drawn once from N(0, 1)
THIN_LEVELS = [f"T{k:02d}" for k in range(80)]
THIN_EFFECTS = np.random.default_rng(2468).normal(size=len(THIN_LEVELS))


# "nominal K": K nominal features of 3-8 equally frequent levels (``main``'s g on x0..x2 beside
# them), the numbers of levels and the effects drawn once (N(0, 1 / K): their sum has variance
# about 1 whatever K)
NOMINAL_LEVELS = np.random.default_rng(1357).integers(3, 9, size=30)
NOMINAL_EFFECTS = [
    np.random.default_rng(1358 + f).normal(size=k) for f, k in enumerate(NOMINAL_LEVELS)
]


def _normal(rng, n, correlation=0.0):
    common = rng.normal(size=(n, 1))
    own = rng.normal(size=(n, 4))
    x = np.sqrt(correlation) * common + np.sqrt(1 - correlation) * own
    x[:, 3] = own[:, 3]
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])


def _main_effects(X):
    return X["x0"] - 0.8 * X["x1"].abs() + 0.5 * X["x2"]


def _num_by_num(X):
    return 0.8 * X["x0"] + 0.5 * X["x3"] + 0.9 * X["x1"] * X["x2"]


def _sample(name, rng, n):
    """(features the black box sees, the audit's feature columns, log-odds g, outcome y)."""
    X = _normal(rng, n, 0.8 if name == "correlated" else 0.0)
    if name == "exact main":
        X = X.drop(columns="x3")
    if name in ("main", "deciles", "missing values", "exact main", "logistic", "logistic kink"):
        g = _main_effects(X)
    elif name in ("num x num", "calibrated", "uncalibrated", "exact", "deciles num x num"):
        g = _num_by_num(X)
    elif name == "rare outcome":
        g = _main_effects(X) - 2.6
    elif name == "cat x num":
        X = X.drop(columns="x3").assign(c=rng.choice(list(SLOPES), size=n))
        X["c"] = X["c"].astype("category")
        g = 0.6 * X["x0"] + X["c"].map(SLOPES).astype(float) * X["x1"]
    elif name == "correlated":
        g = X["x0"] + 0.8 * X["x1"] - 0.6 * X["x2"]
    elif name in ("wiggle", "fast wiggle", "exact wiggle"):
        g = _main_effects(X) + 0.6 * np.sin((2.0 if name == "wiggle" else 4.0) * X["x3"])
    elif name in ("wiggle levels", "exact wiggle levels"):
        X = X.assign(c=rng.choice(list(WIGGLE_LEVELS), size=n))
        X["c"] = X["c"].astype("category")
        g = (
            0.8 * X["x0"]
            + 0.5 * X["x1"]
            - 0.4 * X["x2"]
            + X["c"].map(WIGGLE_LEVELS).astype(float)
            + 0.6 * np.sin(2.0 * X["x3"])
        )
    elif name == "many levels":
        codes = rng.choice(len(LEVELS), size=n, p=LEVEL_FREQUENCIES)
        X["c"] = pd.Categorical(np.asarray(LEVELS)[codes], categories=LEVELS)
        g = _main_effects(X) + LEVEL_EFFECTS[codes]
    elif name in ("thin levels", "exact thin levels", "planted thin 0.5"):
        codes = rng.integers(len(THIN_LEVELS), size=n)
        X = X.drop(columns="x3")
        X["c"] = pd.Categorical(np.asarray(THIN_LEVELS)[codes], categories=THIN_LEVELS)
        g = _main_effects(X) + THIN_EFFECTS[codes]
        if name.startswith("planted"):
            X["h"] = rng.normal(size=n)
            g = g + 0.5 * X["h"]
    elif name.startswith("nominal"):
        X = X.drop(columns="x3")
        g = _main_effects(X)
        features = int(name.split()[1])
        for f in range(features):
            codes = rng.integers(NOMINAL_LEVELS[f], size=n)
            X[f"c{f}"] = pd.Categorical(
                [f"v{c}" for c in codes], categories=[f"v{c}" for c in range(NOMINAL_LEVELS[f])]
            )
            g = g + NOMINAL_EFFECTS[f][codes] / np.sqrt(features)
    elif name == "saturated":
        g = 2 * _main_effects(X)
    elif name.startswith("planted"):
        X["h"] = rng.normal(size=n)
        g = _main_effects(X) + float(name.split()[1]) * X["h"]
    else:
        raise ValueError(f"unknown world {name!r}")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-np.asarray(g)))).astype(int)
    if name == "missing values":
        # x1 missing at random given x0 (independent of x1), in the black box's sample too
        X.loc[rng.uniform(size=n) < 1 / (1 + np.exp(1.5 - X["x0"])), "x1"] = np.nan
    return X, [c for c in X.columns if c != "h"], np.asarray(g, dtype=float), y


def _logistic_columns(X, kink):
    """The logistic regression black box's columns: x0..x3, and |x1| for ``logistic kink``."""
    return X.assign(k=X["x1"].abs()) if kink else X


def make_world(name, seed, n):
    """(X, y, score) of one world: the audit data and the black box's score on them."""
    rng = np.random.default_rng(seed)
    X_train, _, _, y_train = _sample(name, rng, n)
    if name.startswith("logistic"):
        kink = name == "logistic kink"
        black_box = LogisticRegression().fit(_logistic_columns(X_train, kink), y_train)
    else:
        black_box = HistGradientBoostingClassifier(
            random_state=seed, categorical_features="from_dtype"
        )
        black_box.fit(X_train, y_train)
    X, audit_columns, g, y = _sample(name, rng, n)
    if name.startswith("logistic"):
        s = black_box.decision_function(_logistic_columns(X, kink))
    else:
        s = black_box.decision_function(X)
    if name == "saturated":
        score = np.round(1 / (1 + np.exp(-s)), 2)
    elif name == "calibrated":
        score = 1 / (1 + np.exp(-s))
    elif name == "uncalibrated":
        score = np.exp(s / 2)
    elif name in (
        "exact",
        "exact main",
        "exact thin levels",
        "exact wiggle",
        "exact wiggle levels",
    ):
        score = g
    elif name.startswith("deciles"):
        # decile 1-10 of the probability, cut at the deciles of the black box's own sample
        cuts = np.quantile(black_box.predict_proba(X_train)[:, 1], np.arange(1, 10) / 10)
        score = 1.0 + np.searchsorted(cuts, 1 / (1 + np.exp(-s)), side="right")
    else:
        score = s
    return X[audit_columns], y, np.asarray(score, dtype=float)


NULL_WORLDS = [
    "main",
    "num x num",
    "cat x num",
    "correlated",
    "many levels",
    "thin levels",
    "exact thin levels",
    "saturated",
    "calibrated",
    "uncalibrated",
    "exact",
    "exact main",
    "deciles",
    "deciles num x num",
    "rare outcome",
    "missing values",
    "nominal 5",
    "nominal 30",
    "logistic",
    "logistic kink",
    "wiggle",
    "fast wiggle",
    "wiggle levels",
    "exact wiggle",
    "exact wiggle levels",
]
PLANTED_WORLDS = ["planted 0.25", "planted 0.5", "planted 1", "planted thin 0.5"]


def light_models(small=False):
    """The light mimic and outcome model (2 bags), or with ``small`` deliberately small ones
    (16 bins, at most 300 rounds: models that underfit a wiggle)."""
    shared = {**AUDIT_EBM_PARAMS, "outer_bags": 2, "n_jobs": 1}
    rounds = 2000
    if small:
        shared["max_bins"], rounds = 16, 300
    student = ExplainableBoostingRegressor(
        **{**DEFAULT_STUDENT_PARAMS, **shared, "max_rounds": rounds}
    )
    outcome = ExplainableBoostingClassifier(
        **shared, learning_rate=OUTCOME_LEARNING_RATE, max_rounds=rounds
    )
    return student, outcome


def run_world(name, seed, n, interactions, n_bootstrap, calibration="isotonic", models="light"):
    X, y, score = make_world(name, seed, n)
    # None: the audit's own default models
    student, outcome = (None, None) if models == "default" else light_models(models == "small")
    audit = CompareAudit(
        calibration=calibration,
        interactions=interactions,
        student=student,
        outcome=outcome,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # saturation warnings, expected here
        audit.fit(X, y, teacher_scores=score)
    test = audit.missing_feature_test(n_bootstrap=n_bootstrap).loc["pearson"]
    return test["estimate"], test["p_value"], audit.fidelity_["r2_out_of_fold"], test["std_error"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (to split runs)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--interactions", type=int, default=10)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument(
        "--calibration",
        default="isotonic",
        choices=["isotonic", "sigmoid", "spline", "temperature", "none"],
        help="the audit's calibration of the score (its default: isotonic)",
    )
    parser.add_argument(
        "--models",
        default="light",
        choices=["light", "default", "small"],
        help="the script's light EBMs, the audit's default ones, or deliberately small ones",
    )
    parser.add_argument("--worlds", default=",".join(NULL_WORLDS + PLANTED_WORLDS))
    parser.add_argument("--table", nargs="+", metavar="LOG", help="pool the lines of logs")
    args = parser.parse_args()
    if args.table:
        print_table(pd.DataFrame(_read_logs(args.table)))
        return
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    print(
        f"{args.seeds} seeds x {len(worlds)} worlds, {args.n} rows, interactions="
        f"{args.interactions}, calibration={args.calibration}, models={args.models}; "
        f"{os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    start = time.perf_counter()
    for world in worlds:
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            t = time.perf_counter()
            estimate, p_value, r2, se = run_world(
                world,
                seed,
                args.n,
                args.interactions,
                args.n_bootstrap,
                None if args.calibration == "none" else args.calibration,
                args.models,
            )
            rows.append(
                {
                    "world": world,
                    "seed": seed,
                    "pearson": estimate,
                    "p": p_value,
                    "r2": r2,
                    "se": se,
                }
            )
            print(
                f"  {world:<14s} seed {seed:2d}: r = {estimate:+.3f}, p = {p_value:.3f}, "
                f"out-of-fold R^2 {r2:.3f}, bootstrap s.e. {se:.4f} "
                f"({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
    print(f"\n{time.perf_counter() - start:.0f} s")
    print_table(pd.DataFrame(rows))


def read_seed_lines(paths, pattern):
    """The per-seed lines of logs as rows: ``pattern``'s named groups, ``world`` as text,
    ``seed`` an int, the others floats (NaN where a group is absent); for a world and seed seen
    twice, the last line."""
    import re

    line = re.compile(pattern)
    rows = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for text in handle:
                match = line.match(text)
                if match:
                    row = {"world": match["world"], "seed": int(match["seed"])}
                    for key, value in match.groupdict().items():
                        if key not in row:
                            row[key] = float(value) if value else np.nan
                    rows[row["world"], row["seed"]] = row
    return list(rows.values())


def _read_logs(paths):
    rows = read_seed_lines(
        paths,
        r"^\s+(?P<world>.+?)\s+seed\s+(?P<seed>\d+): r = (?P<pearson>[-+.\d]+|[-+]?nan), "
        r"p = (?P<p>[.\d]+|nan), out-of-fold R\^2 (?P<r2>[-.\d]+)"
        r"(?:, bootstrap s\.e\. (?P<se>[.\d]+|nan))?",
    )
    order = {w: k for k, w in enumerate(NULL_WORLDS + PLANTED_WORLDS)}
    return sorted(rows, key=lambda row: (order.get(row["world"], 99), row["seed"]))


def print_table(frame):
    frame = frame.assign(
        rejected=frame["p"] <= 0.05, flagged=(frame["p"] <= 0.05) & (frame["pearson"] > 0)
    )
    table = frame.groupby("world", sort=False).agg(
        seeds=("p", "size"),
        rejection=("rejected", "mean"),
        flag=("flagged", "mean"),
        mean_pearson=("pearson", "mean"),
        sd_pearson=("pearson", "std"),
        mean_se=("se", "mean"),
        mean_r2=("r2", "mean"),
        # the test had nothing to correlate (the score held whole by its adjustment)
        nothing=("pearson", lambda r: int(r.isna().sum())),
    )
    table["mc_se"] = np.sqrt(table["rejection"] * (1 - table["rejection"]) / table["seeds"])
    table["kind"] = ["null" if w in NULL_WORLDS else "planted" for w in table.index]
    table["target"] = [
        "<= 0.10" if w in NULL_WORLDS else (">= 0.9" if w == "planted 0.5" else "")
        for w in table.index
    ]
    print("\nPearson test at 5% (two-sided), and the flag the report and CLI raise:")
    print(
        "| world | kind | seeds | rejection rate | MC s.e. | flag rate | mean Pearson (sd) | "
        "mean bootstrap s.e. | mean OOF R^2 | nothing to correlate | target |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for world, row in table.iterrows():
        print(
            f"| {world} | {row['kind']} | {row['seeds']} | {row['rejection']:.2f} | "
            f"{row['mc_se']:.2f} | {row['flag']:.2f} | {row['mean_pearson']:+.3f} "
            f"({row['sd_pearson']:.3f}) | {row['mean_se']:.4f} | {row['mean_r2']:.3f} | "
            f"{row['nothing']} | {row['target']} |"
        )


if __name__ == "__main__":
    main()
