"""How far the audit's outcome model shrinks the shapes it estimates, by learning rate.

Generated worlds of 4,000 rows (x0, x1 normal, x2 uniform on [-1, 1], b boolean with 40% true;
log-odds ``0.6 x0 - 0.5 x1 + 0.3 x2 + 0.7 b``, outcome drawn from it). For each learning rate
the audit's outcome model (``default_outcome_model`` with that rate) is fitted to the outcome;
the audit's mimic student (``default_mimic_student``) is fitted to the noise-free log-odds for
reference. Prints, per model, the row-weighted slope of the fitted shape on the true, centred
one for x0, x2 and b (1: no shrinkage), its spread over the worlds, and the mean fit time (CPU).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_shrinkage.py [--worlds 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

EFFECTS = {"feature_0000": 0.6, "feature_0002": 0.3, "feature_0003": 0.7}


def slopes(model):
    from sklearn_distill.shapes import shape_functions

    table = shape_functions(model, interactions=False)
    out = []
    for term, effect in EFFECTS.items():
        part = table[(table["term"] == term) & (table["weight"] > 0)]
        x = part["value"].to_numpy(float)
        if term == "feature_0003":
            x = np.array([0.0, 1.0])[-len(part) :]
        known = np.isfinite(x)
        weight = part["weight"].to_numpy(float)[known]
        truth = effect * x[known]
        truth = truth - np.average(truth, weights=weight)
        score = part["score"].to_numpy(float)[known]
        out.append(np.sum(weight * score * truth) / np.sum(weight * truth**2))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=10)
    parser.add_argument("--rates", default="0.015,0.05,0.1,0.2")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn_distill.audit import default_mimic_student, default_outcome_model

    models = {f"outcome, learning rate {r}": float(r) for r in args.rates.split(",")}
    models["mimic (noise-free log-odds)"] = None
    print(f"{args.worlds} worlds of 4,000 rows; slope of the fitted shape on the true one")
    print(f"{'model':34s} {'x0 (0.6)':>9s} {'x2 (0.3)':>9s} {'b (0.7)':>9s} {'fit s':>6s}")
    for name, rate in models.items():
        found, seconds = [], 0.0
        for world in range(args.worlds):
            rng = np.random.default_rng(200 + world)
            n = 4000
            b = (rng.uniform(size=n) < 0.4).astype(float)
            X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.uniform(-1, 1, n), b])
            logit = 0.6 * X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2] + 0.7 * b
            y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
            if rate is None:
                model, target = default_mimic_student(random_state=world), logit
            else:
                model = default_outcome_model(random_state=world).set_params(learning_rate=rate)
                target = y
            start = time.process_time()
            model.fit(X, target)
            seconds += time.process_time() - start
            found.append(slopes(model))
        mean, spread = np.mean(found, axis=0), np.std(found, axis=0)
        cells = " ".join(f"{m:5.2f}({s:.2f})" for m, s in zip(mean, spread))
        print(f"{name:34s} {cells} {seconds / args.worlds:6.1f}")


if __name__ == "__main__":
    main()
