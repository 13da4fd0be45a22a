"""Distill-and-Compare audit of the COMPAS recidivism score (Tan et al., AIES 2018).

The audit data are ProPublica's Broward County records: seven features (age, race, sex,
priors count, length of stay, charge degree, charge description), the black-box COMPAS decile
score, and whether the person was re-arrested within two years. A transparent mimic of the
score is compared with a transparent model of the outcome, both on the log-odds scale; the
script prints the mimic's fidelity, the missing-feature test, the values where the two models
differ after the Benjamini-Hochberg adjustment and the terms whose story is unstable across
refits, and writes a self-contained HTML report.

Run from the repository root:

    PYTHONPATH=. python examples/compare_compas.py [report.html | --out report.html]

The report goes to reports/compas_audit.html unless another path is given, and the picture of
four terms (the README's docs/images/compas_comparison.png) beside it.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import output_file  # the examples folder, as run from the repository root

from sklearn_distill import CompareAudit
from sklearn_distill.datasets import load_compas
from sklearn_distill.report import format_p_value


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
    fidelity = {key: round(value, 3) for key, value in audit.fidelity_.items()}
    print(f"mimic fidelity to the calibrated score: {fidelity}")

    print("\nMissing-feature test: correlation of cross-fitted residuals (95% bootstrap CI)")
    shown = test[["estimate", "low", "high"]].round(4)
    # a bootstrap p-value at its floor 2 / (B + 1) is a bound, not a value
    shown["p_value"] = [format_p_value(p, b) for p, b in zip(test["p_value"], test["n_bootstrap"])]
    print(shown.to_string())

    flagged = comparison[comparison["significant_bh"]]
    print(
        f"\n{len(flagged)} of {len(comparison)} term values differ after the Benjamini-Hochberg "
        f"adjustment ({int(comparison['significant'].sum())} before it); values held by fewer "
        f"than {audit.min_weight} rows are never flagged:"
    )
    for line in audit.summary()["text"]:
        print(f"  {line}")
    columns = ["term", "label", "weight", "mimic", "outcome", "difference", "p_value_bh"]
    with pd.option_context("display.width", 120):
        print("\nFlagged values (log-odds; p-values adjusted):")
        print(flagged[columns].round(3).to_string(index=False))

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
    figure = Path(path).with_name("compas_comparison.png")
    audit.plot_comparison(terms=["age", "priors_count", "sex", "race"]).savefig(figure, dpi=100)
    print(f"Four terms side by side: {figure}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "report",
        nargs="?",
        default=None,
        help="HTML report to write; must end in .html or .htm (default: "
        "reports/compas_audit.html); compas_comparison.png is written beside it",
    )
    # the other examples' spelling of the same thing
    parser.add_argument("--out", default=None, help="the same as the positional report path")
    args = parser.parse_args(argv)
    if args.report is not None and args.out is not None and args.report != args.out:
        parser.error(f"give the report's path once; got {args.report!r} and --out {args.out!r}")
    args.report = args.report or args.out or "reports/compas_audit.html"
    output_file(parser, args.report, "report", suffixes=(".html", ".htm"))
    return args


if __name__ == "__main__":
    main(parse_args().report)
