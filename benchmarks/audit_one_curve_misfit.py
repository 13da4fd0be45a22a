"""Level and power of the one-curve calibration check (``_calibration.parametric_form_p_value``).

``CompareAudit(calibration="sigmoid" | "temperature")`` warns when a parametric bootstrap
test finds that an isotonic map fits the outcomes better than the one curve (a line in
log-odds) would by chance, at p <= 0.01. Worlds of three normal features, true log-odds
``g = 0.8 x0 - 0.6 |x1| + 0.4 x2``; null: a score linear in ``g`` (``2 g - 1`` for the
sigmoid, ``g`` itself for temperature scaling); power: ``g**3 + g`` (ranks the rows exactly by
risk, no line in log-odds) and deciles of ``g``. Printed: the share of worlds with p <= 0.01
and p <= 0.05, with a 95% Clopper-Pearson interval for the first.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/audit_one_curve_misfit.py \
        [--seeds 200] [--rows 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--rows", type=int, default=600)
    args = parser.parse_args(argv)
    from sklearn_distill._calibration import parametric_form_p_value

    worlds = [
        ("sigmoid", "null: 2 g - 1", lambda g: 2 * g - 1),
        ("temperature", "null: g", lambda g: g),
        ("sigmoid", "g**3 + g", lambda g: g**3 + g),
        (
            "sigmoid",
            "deciles of g",
            lambda g: np.digitize(g, np.quantile(g, np.linspace(0, 1, 11)[1:-1])) + 1.0,
        ),
    ]
    print(f"{args.seeds} worlds of {args.rows} rows each; 199 parametric bootstrap draws")
    for method, name, make in worlds:
        start = time.process_time()
        p_values = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(1000 + seed)
            x = rng.normal(size=(args.rows, 3))
            g = 0.8 * x[:, 0] - 0.6 * np.abs(x[:, 1]) + 0.4 * x[:, 2]
            y = (rng.random(args.rows) < 1 / (1 + np.exp(-g))).astype(int)
            p_values.append(parametric_form_p_value(make(g), y, method, 1, 199, seed))
        p_values = np.array(p_values)
        k = int((p_values <= 0.01).sum())
        low = stats.beta.ppf(0.025, k, args.seeds - k + 1) if k else 0.0
        high = stats.beta.ppf(0.975, k + 1, args.seeds - k) if k < args.seeds else 1.0
        seconds = (time.process_time() - start) / args.seeds
        print(
            f"{method:>11} {name:>14}: p <= 0.01 in {k}/{args.seeds} = {k / args.seeds:.3f} "
            f"[{low:.3f}, {high:.3f}], p <= 0.05 in {np.mean(p_values <= 0.05):.3f} "
            f"({seconds:.2f} s CPU each)"
        )


if __name__ == "__main__":
    main()
