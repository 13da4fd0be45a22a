"""Coverage of the shape-function confidence bands of ``sklearn_distill.shapes``.

Twenty data sets of 2,000 rows, y = sin(2 x0) + N(0, 1) with a second, irrelevant feature; an
EBM with 8 bags is fitted to each. The true shape of x0 in each bin is the bin mean of sin(2 x),
centred with the bin weights as EBM shapes are. Prints how often the 95% band covers it: the
bands ``shape_functions`` returns (delete-d jackknife, Student's t on the bags' 7 degrees of
freedom), the same standard errors with the normal quantile 1.96, and the raw bag spread
(+-1.96 standard deviations, no jackknife correction).

    PYTHONPATH=. .venv/bin/python benchmarks/gam_band_coverage.py
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Missing values detected")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    from interpret.glassbox import ExplainableBoostingRegressor
    from scipy.stats import norm

    from sklearn_distill.shapes import shape_functions

    z = norm.ppf(0.975)
    dense = np.random.default_rng(10_000).uniform(-2, 2, 200_000)  # for the true bin means
    jackknife, normal, raw = [], [], []
    for repeat in range(args.repeats):
        rng = np.random.default_rng(repeat)
        X = rng.uniform(-2, 2, size=(2000, 2))
        y = np.sin(2 * X[:, 0]) + rng.normal(size=2000)
        ebm = ExplainableBoostingRegressor(
            outer_bags=8, interactions=0, max_bins=16, random_state=repeat
        ).fit(X, y)
        table = shape_functions(ebm, confidence=0.95)
        table = table[table.term == "feature_0000"]
        cuts = table["bin_high"].to_numpy(dtype=float)[:-1]
        bin_of = np.searchsorted(cuts, dense, side="right")
        truth = np.array([np.sin(2 * dense[bin_of == k]).mean() for k in range(len(table))])
        truth -= np.average(truth, weights=table["weight"])
        jackknife.append(np.mean((table["lower"] <= truth) & (truth <= table["upper"])))
        normal.append(np.mean(np.abs(table["score"] - truth) <= z * table["std_error"]))
        fraction = 1 - ebm.validation_size
        raw_sd = table["std_error"] / np.sqrt(fraction / (1 - fraction))
        raw.append(np.mean(np.abs(table["score"] - truth) <= z * raw_sd))
    print(f"{args.repeats} data sets, {len(table)} bins each; nominal coverage 0.95")
    print(f"jackknife bands, t on 7 dof (shape_functions): {np.mean(jackknife):.3f}")
    print(f"jackknife standard errors, normal 1.96:       {np.mean(normal):.3f}")
    print(f"raw bag spread, +-1.96 SD:                    {np.mean(raw):.3f}")


if __name__ == "__main__":
    main()
