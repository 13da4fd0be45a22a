"""Command line: ``python -m sklearn_distill audit data.csv --score COL --label COL``.

Runs a :class:`~sklearn_distill.CompareAudit` on a CSV file of audit data -- features, the
black box's score and the observed outcome -- prints the missing-feature test and the largest
significant shape differences, and writes the self-contained HTML report. Progress goes to
standard error while it works. Also installed as the ``sklearn-distill`` command.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_distill",
        description="Distill-and-Compare audits of black-box scores.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser(
        "audit",
        help="compare a mimic of a score with a model of the outcome",
        description=(
            "Fit a transparent mimic of the black-box score and a transparent model of the "
            "observed outcome, compare their shape functions, test for features the data lack, "
            "and write an HTML report."
        ),
    )
    audit.add_argument("data", help="CSV file with one row per case")
    audit.add_argument("--score", required=True, help="column holding the black-box score")
    audit.add_argument("--label", required=True, help="column holding the binary outcome")
    audit.add_argument(
        "--features",
        nargs="+",
        metavar="COL",
        help="feature columns (default: every column but the score and the label)",
    )
    audit.add_argument("--out", default="report.html", help="HTML report to write")
    audit.add_argument(
        "--calibration",
        default="isotonic",
        choices=["isotonic", "sigmoid", "temperature", "none"],
        help="how the score is mapped to P(label | score) before mimicking (default isotonic)",
    )
    audit.add_argument("--cv", type=int, default=5, help="folds for out-of-fold residuals")
    audit.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples")
    audit.add_argument("--confidence", type=float, default=0.95, help="confidence level")
    audit.add_argument(
        "--stability",
        type=int,
        default=0,
        metavar="N",
        help="also refit both models N times on bootstrap samples (default: skip)",
    )
    audit.add_argument("--n-jobs", type=int, default=None, help="joblib workers (-1: all cores)")
    audit.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    audit.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser, audit


def _read_audit_data(args, parser, say):
    import pandas as pd

    try:
        frame = pd.read_csv(args.data)
    except (OSError, ValueError) as error:
        parser.error(f"cannot read {args.data!r}: {error}")
    for option, column in (("--score", args.score), ("--label", args.label)):
        if column not in frame.columns:
            parser.error(f"{option} {column!r} is not a column of {args.data!r}")
    features = args.features or [c for c in frame.columns if c not in (args.score, args.label)]
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        parser.error(f"--features names columns not in {args.data!r}: {unknown}")
    clash = {args.score, args.label} & set(features)
    if clash:
        parser.error(f"--features must not include the score or the label: {sorted(clash)}")
    if not features:
        parser.error("no feature columns left besides the score and the label")
    keep = frame[[args.score, args.label]].notna().all(axis=1)
    if not keep.all():
        say(f"dropping {int((~keep).sum())} rows with a missing score or label")
        frame = frame[keep]
    score = pd.to_numeric(frame[args.score], errors="coerce")
    if score.isna().any():
        parser.error(f"--score {args.score!r} holds values that are not numbers")
    return frame[features], frame[args.label].to_numpy(), score.to_numpy(float)


def _audit(args, parser):
    start = time.perf_counter()

    def say(message):
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    import pandas as pd

    from sklearn_distill.audit import CompareAudit

    say(f"reading {args.data}")
    X, y, score = _read_audit_data(args, parser, say)
    say(f"{len(X)} rows, features: {', '.join(map(str, X.columns))}")
    audit = CompareAudit(
        calibration=None if args.calibration == "none" else args.calibration,
        cv=args.cv,
        confidence=args.confidence,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )
    try:
        audit.fit(X, y, teacher_scores=score)
        test = audit.missing_feature_test(n_bootstrap=args.n_bootstrap)
        if args.stability:
            audit.stability(X, y, teacher_scores=score, n_refits=args.stability)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    comparison = audit.compare()
    say(f"writing {args.out}")
    audit.report(
        args.out,
        description={"data": args.data, "score column": args.score, "label column": args.label},
    )
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print("Missing-feature test (correlation of out-of-fold residuals):")
        print(test.round(4).to_string())
        significant = comparison[comparison["significant"]]
        print(
            f"\n{len(significant)} of {len(comparison)} term values differ significantly "
            f"between the mimic and the outcome model (confidence {args.confidence:g}); "
            f"{int(comparison['significant_bh'].sum())} after the Benjamini-Hochberg adjustment."
        )
        if len(significant):
            top = significant.reindex(significant["z"].abs().sort_values(ascending=False).index)
            columns = ["term", "value", "mimic", "outcome", "difference", "p_value"]
            print(top[columns].head(10).round(4).to_string(index=False))
        if args.stability:
            unstable = audit.stability_[audit.stability_["unstable"]]
            names = [f"{m}:{t}" for m, t in zip(unstable["model"], unstable["term"])]
            print(f"\nUnstable terms across refits: {', '.join(names) or 'none'}")
    print(f"\nReport written to {args.out}")
    say("done")
    return 0


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        Exit status (0 on success; argument errors exit with status 2).
    """
    parser, audit_parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "audit":
        return _audit(args, audit_parser)
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
