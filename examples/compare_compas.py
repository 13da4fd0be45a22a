"""Distill-and-Compare audit of the COMPAS recidivism score (Tan et al., AIES 2018).

The audit data are ProPublica's Broward County records: seven features (age, race, sex,
priors count, length of stay, charge degree, charge description), the black-box COMPAS decile
score, and whether the person was re-arrested within two years. A transparent mimic of the
score is compared with a transparent model of the outcome, both on the log-odds scale; the
script prints the missing-feature test, the largest significant shape differences and the
terms whose story is unstable across refits, and writes a self-contained HTML report.

Run from the repository root:

    PYTHONPATH=. python examples/compare_compas.py [report.html]

The report goes to reports/compas_audit.html unless another path is given.
"""

import sys
import time
from pathlib import Path

import pandas as pd

from sklearn_distill import CompareAudit
from sklearn_distill.datasets import load_compas


def main(path="reports/compas_audit.html"):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    compas = load_compas()
    X, y, score = compas.data, compas.target, compas.score
    print(f"COMPAS audit data: {X.shape[0]} rows, features {', '.join(X.columns)}")

    start = time.perf_counter()
    audit = CompareAudit(calibration="isotonic", cv=5, random_state=0, n_jobs=2)
    audit.fit(X, y, teacher_scores=score)
    test = audit.missing_feature_test(n_bootstrap=1000)
    comparison = audit.compare()
    print(f"fit, comparison and missing-feature test: {time.perf_counter() - start:.1f} s")
    print(f"mimic fidelity to the calibrated score (in sample): {audit.mimic_.fidelity(X, score)}")

    print("\nMissing-feature test: correlation of out-of-fold residuals (95% bootstrap CI)")
    print(test[["estimate", "low", "high", "p_value"]].round(4).to_string())

    significant = comparison[comparison["significant"]]
    by_term = significant.groupby("term").size().reindex(X.columns, fill_value=0)
    print(
        f"\n{len(significant)} of {len(comparison)} term values differ significantly "
        f"({int(comparison['significant_bh'].sum())} after the Benjamini-Hochberg adjustment):"
    )
    print(by_term.to_string())
    columns = ["term", "value", "weight", "mimic", "outcome", "difference"]
    # differences that concern many people: values holding at least 1% of the rows
    common = significant[significant["weight"] >= 0.01 * len(X)]
    with pd.option_context("display.width", 120):
        print("\nSignificant differences on values held by at least 1% of the rows (log-odds):")
        print(common[columns].round(3).to_string(index=False))

    stability = audit.stability(X, y, teacher_scores=score, n_refits=3)
    unstable = stability[stability["unstable"]]
    print("\nTerms whose importance or shape is unstable across 3 bootstrap refits:")
    print(
        unstable[["model", "term", "importance_mean", "importance_cv", "shape_noise"]]
        .round(3)
        .to_string(index=False)
    )

    audit.report(
        path,
        title="COMPAS: Distill-and-Compare audit",
        description={
            "data": "ProPublica COMPAS, two-year recidivism",
            "score": "decile_score",
            "outcome": "two_year_recid",
        },
    )
    print(f"\nReport written to {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
