"""The library's main job in well under a minute: a Distill-and-Compare audit of the COMPAS score.

Distillation as a tool for understanding a model: COMPAS, a black-box recidivism score, is
mimicked by a transparent model (a GAM of the score), which is compared with a transparent
model of what actually happened (a GAM of two-year re-arrest), on ProPublica's Broward County
records bundled with the library (Tan, Caruana, Hooker and Lou, AIES 2018). Where the two
models' shapes differ, COMPAS weighs a feature unlike the outcome does; where their errors are
correlated, COMPAS probably uses information the audit data lack.

The script fits the audit, runs the missing-feature test, reads the score as eight rules, writes
the HTML report and prints what the audit found and where the report is. ``make demo`` runs
it. ``--stability N`` also refits both models N times to say which terms are stable (slower).

Run from the repository root:

    python examples/compare_demo.py [--out report.html] [--stability 3]

The report goes to reports/compas_demo.html unless another path is given.
"""

import argparse
import os
import sys
import textwrap
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import output_file, refits  # the examples folder, as run from the repository root

from sklearn_distill import CompareAudit, DistilledTree
from sklearn_distill.datasets import load_compas
from sklearn_distill.report import audit_findings_text

STABILITY_STEP = """\
  python examples/compare_demo.py --stability 3   the same audit, with the terms that are stable
      across three refits on bootstrap samples (slower)
"""
NEXT_STEPS = f"""\
Next (`python` is .venv/bin/python after `make demo`):
  open the report in a browser (every figure and table is inside the one file)
{STABILITY_STEP}  python -m sklearn_distill audit data.csv --score COL --label COL --features COL ...
      the same audit of your own CSV file (run it without --features to see your columns)
  python examples/compare_compas.py              the COMPAS audit step by step, with more tables
  python examples/compare_planted_missing_feature.py
      a known answer: the missing-feature test finds a feature hidden from the audit
  python examples/kd_digits.py                   knowledge distillation of a CNN (Lightning)
  python examples/dissection_kd_interpretability.py
      network dissection: are a KD student's units more interpretable?
  python examples/awd_simulation.py              adaptive wavelet distillation"""


def main(path="reports/compas_demo.html", stability=0):
    start = time.perf_counter()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    compas = load_compas()
    X, y, score = compas.data, compas.target, compas.score
    print(
        f"Auditing the COMPAS decile score against two-year re-arrest: {X.shape[0]} people, "
        f"{X.shape[1]} features ({', '.join(X.columns)}).",
        flush=True,
    )
    # calibration="isotonic" (the default) suits a score with few distinct values, as deciles
    audit = CompareAudit(random_state=0, n_jobs=2)
    audit.fit(X, y, teacher_scores=score)
    audit.missing_feature_test(n_bootstrap=1000)
    print(f"  fitted and tested in {time.perf_counter() - start:.0f} s", flush=True)
    if stability:
        audit.stability(X, y, teacher_scores=score, n_refits=stability)
        elapsed = time.perf_counter() - start
        print(f"  stability across {stability} refits checked at {elapsed:.0f} s", flush=True)
    # the score read as eight rules, shown in the report beside the shapes
    rules = DistilledTree(calibration="isotonic", max_leaf_nodes=8, random_state=0)
    rules.fit(X, y, teacher_scores=score)
    written = audit.report(
        path,
        title="COMPAS: Distill-and-Compare audit",
        description={
            "data": "ProPublica COMPAS, Broward County, two-year recidivism",
            "score": "decile_score (the black box)",
            "outcome": "two_year_recid",
        },
        rule_tree=rules,
        rule_fidelity=rules.fidelity(X, score),
    )
    print()
    print(audit_findings_text(audit))
    print(f"\nReport: {os.path.abspath(written)}")
    print(f"(whole demo: {time.perf_counter() - start:.0f} s)\n")
    # the stability run is suggested only when it was not done
    print(NEXT_STEPS.replace(STABILITY_STEP, "") if stability else NEXT_STEPS)


def show_warning(message, category, filename, lineno, file=None, line=None):
    """The library's warnings as notes on standard error, wrapped as the findings are: Python's
    own form shows this script's file, line number and source line, which say nothing to a
    reader of the audit."""
    text = textwrap.fill(str(message), 100, subsequent_indent="  ")
    print(f"warning: {text}", file=sys.stderr if file is None else file, flush=True)


if __name__ == "__main__":
    warnings.showwarning = show_warning
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        default="reports/compas_demo.html",
        help="HTML report to write; must end in .html or .htm, and its folder is created "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--stability",
        type=refits,
        default=0,
        metavar="N",
        help="also refit both models N times on bootstrap samples: 0 (default, skip) or >= 2",
    )
    arguments = parser.parse_args()
    output_file(parser, arguments.out, "--out", suffixes=(".html", ".htm"))
    main(arguments.out, arguments.stability)
