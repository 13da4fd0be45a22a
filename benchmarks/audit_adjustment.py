"""The missing-feature test's adjustment fitted within each third of a split, against one fit
over all rows at once, on the null worlds of ``audit_calibration.py``.

One audit per seed (the script's light models and worlds); the same fitted models and
cross-fitted residuals are then adjusted both ways:

* ``thirds``: the audit's own adjustment, fitted within each third of each split (the rows
  judged by the same two models);
* ``all rows``: one least-squares fit over all rows, with the cubic in the mean prediction
  over every split (the audit's adjustment before 2026-12-05).

For each, the Pearson statistic, its bootstrap p-value (200 resamples) and the part of it that
comes from the outcome noise: the adjusted mimic residuals against ``y - p`` (the world's true
probabilities), adjusted the same way. With nothing missing that part is zero in expectation
within thirds; over all rows a row's adjusted residual takes in residuals of rows judged by
models fitted on this row, and the row's own outcome noise enters both sides.

Run: python benchmarks/audit_adjustment.py [--n 3000] [--worlds exact,main] [--seeds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audit_calibration as worlds

from sklearn_distill import CompareAudit
from sklearn_distill import audit as audit_module

_captured: dict = {}
_within_thirds = audit_module._adjusted_pairs


def _capture(X, splits, mimic, outcome, target, left_out=None):
    _captured.update(X=X, splits=splits, mimic=mimic, target=target)
    return _within_thirds(X, splits, mimic, outcome, target, left_out)


def over_all_rows(X, mimic, outcome, target):
    basis = audit_module._adjustment_basis(X, mimic.shape[-1], (target - mimic).mean(axis=(0, 1)))
    both = audit_module._adjust(basis, np.stack([mimic, outcome]))
    return both[0], both[1]


def within_thirds(X, mimic, outcome, target):
    # the adjusted pairs (the variance inflation the fit keeps is left as the fit set it)
    return _within_thirds(X, _captured["splits"], mimic, outcome, target)[:2]


def correlation(mimic, outcome):
    """The statistic: each split's stacked pairs correlated, averaged over the splits."""
    return float(np.mean([np.corrcoef(m.ravel(), o.ravel())[0, 1] for m, o in zip(mimic, outcome)]))


def one_seed(world, seed, n):
    X, y, score = worlds.make_world(world, seed, n)
    rng = np.random.default_rng(seed)
    worlds._sample(world, rng, n)  # the black box's sample, as make_world draws it
    _, _, g, y_again = worlds._sample(world, rng, n)
    assert np.array_equal(y, y_again)
    noise = y - 1 / (1 + np.exp(-g))
    student, outcome_model = worlds.light_models()
    audit = CompareAudit(
        calibration="isotonic",
        interactions=10,
        student=student,
        outcome=outcome_model,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        audit.fit(X, y, teacher_scores=score)
    mimic, target = _captured["mimic"], _captured["target"]
    outcome = audit.crossfit_residuals_["outcome"]
    noise = np.broadcast_to(noise, outcome.shape).copy()
    result = {}
    for name, adjust in (("thirds", within_thirds), ("all rows", over_all_rows)):
        adjusted = adjust(_captured["X"], mimic, outcome, target)
        _, adjusted_noise = adjust(_captured["X"], mimic, noise, target)
        audit._test_residuals = adjusted
        test = audit.missing_feature_test(n_bootstrap=200).loc["pearson"]
        result[name] = (
            correlation(*adjusted),
            correlation(adjusted[0], adjusted_noise),
            float(test["p_value"]),
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--worlds", default="exact,main")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-start", type=int, default=0)
    args = parser.parse_args()
    audit_module._adjusted_pairs = _capture
    print(f"{args.seeds} seeds per world, {args.n} rows; Pearson r, its noise part, p-value")
    for world in args.worlds.split(","):
        rows = []
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            start = time.process_time()
            rows.append(one_seed(world, seed, args.n))
            print(
                f"  {world:12s} seed {seed:3d}: "
                + " | ".join(
                    f"{name} r {r:+.4f} noise {part:+.4f} p {p:.3f}"
                    for name, (r, part, p) in rows[-1].items()
                )
                + f" ({time.process_time() - start:.0f} s)",
                flush=True,
            )
        for name in ("thirds", "all rows"):
            r, part, p = zip(*(row[name] for row in rows))
            print(
                f"{world} ({name}): mean r {statistics.mean(r):+.4f} (sd {statistics.stdev(r):.4f}), "
                f"mean noise part {statistics.mean(part):+.4f} "
                f"(s.e. {statistics.stdev(part) / len(part) ** 0.5:.4f}), "
                f"rejections at 5% {sum(v <= 0.05 for v in p)} of {len(p)}"
            )


if __name__ == "__main__":
    main()
