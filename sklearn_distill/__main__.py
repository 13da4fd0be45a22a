"""Command line: ``python -m sklearn_distill audit data.csv --score COL --label COL --features``.

Runs a :class:`~sklearn_distill.CompareAudit` on a CSV file of audit data -- features, the
black box's score and the observed outcome -- prints what the audit found (the mimic's
fidelity, the missing-feature test, the values where the black box and the outcome differ
after the Benjamini-Hochberg adjustment) and writes the self-contained HTML report. Progress
goes to standard error while it works. Also installed as the ``sklearn-distill`` command.

``--features`` is required. What a Distill-and-Compare audit concludes depends on which columns
are features: a column recorded after the outcome (a re-arrest date), derived from the score
(its text band) or identifying the row would be modelled without any error and turn the
findings upside down. Without ``--features`` the command lists the file's columns, says which
look unsafe and why, and prints a command line with the others; it audits nothing.

The printed findings open with what the reader of any log-odds must know: which of the label's
two values is the outcome event (``--event`` chooses; by default the second in sorted order)
and whether the score was read as rising or falling with it, the rows audited and those dropped
for a missing score or label, and the named features that look unsafe; the report's "Audit
settings" repeat them. Library warnings are shown once each, in the command line's terms.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import itertools
import os
import re
import shlex
import sys
import time
import warnings
from dataclasses import dataclass

from sklearn_distill._shell import option_tokens, read_as_an_option, typed_back

__all__ = ["main"]

#: A column whose out-of-fold AUC for the label alone reaches this is flagged as a leak.
_LEAK_AUC = 0.95
#: ... and so is one whose AUC exceeds the score's own AUC by this margin.
_LEAK_AUC_MARGIN = 0.10
#: A numeric column whose |Spearman| correlation with the score reaches this is a copy of it.
#: (A lower bar flags the features a black box leans on most: on generated data where the score
#: was a function of age and a hidden feature, age had |Spearman| 0.85 with the score.)
_SCORE_CORRELATION = 0.99
#: Added to the reason of a column flagged for beating the score's AUC by the margin, not for
#: an AUC of _LEAK_AUC: it may be a real input that the score leaves out.
_UNSCORED_INPUT = (
    " If it was known before the outcome, it is instead an input the score leaves out: among "
    "the features, the audit shows it as a difference between the two models' shapes (the "
    "outcome's beside the mimic's)."
)
#: Folds of the out-of-fold AUC of single columns.
_LEAK_FOLDS = 5


def _program_name():
    """The program's name as the user typed it: the console script's name, or ``python -m``."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if invoked in ("", "-c", "__main__.py") or invoked.endswith(".py"):
        return "python -m sklearn_distill"
    return invoked


def _version():
    from importlib import metadata

    try:
        return metadata.version("interpretable-distill")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        from sklearn_distill import __version__

        return __version__


class _AuditParser(argparse.ArgumentParser):
    """The audit command's parser: where the data file was given last, after an option of
    several values (``--features age sex data.csv``), argparse reads it as one of them and
    says the data file is missing; the message says where it went."""

    #: the arguments as given, set by main()
    raw = ()

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        # each option's action, to tell one that takes a value from a flag
        self.__dict__.setdefault("actions", {}).update(dict.fromkeys(action.option_strings, action))
        return action

    def action_of(self, word):
        """The action of the option ``word`` names, as the parser reads it: the whole name or
        the start of one alone (``--qui`` for ``--quiet``); None for no option."""
        actions = self.__dict__.get("actions", {})
        if word in actions:
            return actions[word]
        named = [name for name in actions if word.startswith("--") and name.startswith(word)]
        return actions[named[0]] if len(named) == 1 else None

    #: stands in for a value of exactly ``--`` given as ``--option=--`` (a missing-value text
    #: of some exports): argparse drops such a value as its end-of-options marker, silently
    _DASHES = "\x00--"

    def parse_known_args(self, args=None, namespace=None):
        given = list(sys.argv[1:] if args is None else args)
        marked = [
            f"{arg[:-2]}{self._DASHES}" if arg.startswith("--") and arg.endswith("=--") else arg
            for arg in given
        ]
        namespace, extras = super().parse_known_args(marked, namespace)

        def back(value):
            if value == self._DASHES:
                return "--"
            if isinstance(value, list):
                return [back(item) for item in value]
            return value

        for name, value in vars(namespace).items():
            setattr(namespace, name, back(value))
        return namespace, back(extras)

    def error(self, message):
        if message.startswith("the following arguments are required:") and "data" in message:
            taken = _data_read_as_a_value(self.raw)
            if taken is not None:
                option, value = taken
                message += (
                    f" ({value!r} was read as one of {option}, whose values run to the next "
                    "option: give the data file first, as in "
                    f"{self.prog} {shlex.quote(value)} --score COL --label COL --features COL ...)"
                )
        dashed = _dashed_after_features(self.raw)
        empty = re.match(r"argument (--[a-z-]+): expected (one|at least one) argument", message)
        column = None if empty is None else _dashed_after(self.raw, empty.group(1))
        if column in _COLUMN_OPTIONS:  # "--features --groups x": the features left out
            column = None
        if column is not None and empty.group(1) in _COLUMN_OPTIONS:
            # "--groups --case": a column named like an option given to an option of columns
            audited = " to audit" if empty.group(1) == "--features" else ""
            message += (
                f". If {column!r} is a column{audited}: the command line reads a name that "
                f"begins with '-' as an option; give it as {empty.group(1)}={column}"
            )
        elif (
            dashed is not None
            and dashed not in _COLUMN_OPTIONS  # an option of columns short of its value
            and message.startswith(("argument --features: expected", f"argument {dashed}:"))
            # a value the option refuses ("--n-jobs two") is the option's own, unless the
            # file's header names a column so
            and not (
                message.startswith(f"argument {dashed}: invalid")
                and _in_the_header(self.raw, dashed) is False
            )
        ):
            # a column named like an option ("--cv") given after --features
            message += (
                f". If {dashed!r} is a column to audit: the command line reads a name that "
                f"begins with '-' as an option; give it as --features={dashed}"
            )
        super().error(message)


#: The options that take several values, which take a data file given after them as one.
_MANY_VALUES = ("--features", "--categorical", "--numeric", "--na-values")


#: The options whose values name columns of the file.
_COLUMN_OPTIONS = ("--score", "--label", "--groups", *_MANY_VALUES[:3])


def _in_the_header(raw, name):
    """Whether the first line of a file named in ``raw`` (the data file, or another file an
    option names) holds a field ``name``, with any of the usual separators; None when no word
    names a readable file."""
    found = None
    for word in raw:
        if word.startswith("-") or not os.path.isfile(word):
            continue
        line = _first_line(word)
        if line is None:
            continue
        fields = re.split(r"[,;\t|]", line.lstrip("\ufeff").strip())
        found = found or name in {field.strip().strip('"').strip() for field in fields}
    return found


def _dashed_after_features(raw):
    """The first word after the last ``--features`` that the parser reads as an option
    (``--cv`` in ``--features age --cv group``); None when there is none."""
    if "--features" not in raw:
        return None
    start = len(raw) - raw[::-1].index("--features")
    return next((word for word in raw[start:] if read_as_an_option(word)), None)


def _dashed_after(raw, option):
    """The word right after the last ``option`` when the parser reads it as an option
    (``--case`` in ``--groups --case``); None otherwise."""
    if option not in raw:
        return None
    after = len(raw) - raw[::-1].index(option)
    if after == len(raw):
        return None
    return raw[after] if read_as_an_option(raw[after]) else None


def _lists_columns(word, parser):
    """Whether the parser reads ``word`` as ``--features``, ``--categorical`` or ``--numeric``
    (its whole name or the start of it alone, ``--feat``; with ``=VALUE`` or without)."""
    action = parser.action_of(word.split("=", 1)[0]) if word.startswith("--") else None
    return action is not None and action.dest in ("features", "categorical", "numeric")


def _options_after_columns(raw, names, parser):
    """The positions in ``raw`` of the words of ``names`` (columns named like options, read as
    options) that stand where the parser ended a list of columns: right after ``--features``,
    ``--categorical`` or ``--numeric`` (or the start of their names, ``--feat``) or one of
    their values, where a column may have been meant (``--cv`` in ``--features age --cv 2``).
    A word elsewhere (``--cv 2 --features age``), or given as ``--cv=2``, is the option's,
    whatever the file's columns."""
    found = []
    listing = False
    for position, word in enumerate(raw):
        if listing and word in names:
            found.append(position)
        if _lists_columns(word, parser):
            listing = True
        elif read_as_an_option(word):
            listing = False
    return found


def _values_given(words, position, action):
    """The words after ``words[position]`` that the parser gives its option (``action``)."""
    values = list(itertools.takewhile(lambda w: not read_as_an_option(w), words[position + 1 :]))
    if action is None or action.nargs == 0:
        return []
    return values[:1] if action.nargs is None else values  # the several extend their list


def _read_as_options_only(raw, positions, parser):
    """``raw`` with the options at ``positions`` given where no column can be meant: those
    of values with their values after ``=`` (``--cv=2``), flags before the first list of
    columns (``--quiet --features age``), with the data file typed after one."""
    words = list(raw)
    flags = []
    for position in reversed(positions):
        action = parser.action_of(words[position])
        if action is None or action.nargs == 0:
            # the word after a flag that is no option is the data file: moved with the flag,
            # since left at the end of the list it would be read as one of its columns
            data = itertools.takewhile(lambda w: not read_as_an_option(w), words[position + 1 :])
            end = position + 1 + len(list(data))
            flags[:0] = words[position:end]
            del words[position:end]
            continue
        option = words[position]
        values = _values_given(words, position, action)
        if not values:  # the parser refuses an option without its value before this
            continue
        words[position : position + 1 + len(values)] = [f"{option}={value}" for value in values]
    first = next(i for i, w in enumerate(words) if _lists_columns(w, parser))
    words[first:first] = flags
    return words


def _options_meant_as_columns(raw, names, parser):
    """``(options, words, listed)``: the words of ``names`` (columns named like options) that
    ``raw`` gives where a column may have been meant (``_options_after_columns``), ``raw``
    with each given where none is (``_read_as_options_only``), and each such word followed by
    the values the parser gave it (those would have been columns of the list too). A flag
    moved from the end of a list leaves the word after it there (``--quiet --cv 2`` after the
    features), which is found in turn."""
    words, options, listed = list(raw), [], []
    for _ in range(len(words)):
        positions = _options_after_columns(words, names, parser)
        if not positions:
            break
        options += [words[p] for p in positions]
        for p in positions:
            listed += [words[p], *_values_given(words, p, parser.action_of(words[p]))]
        words = _read_as_options_only(words, positions, parser)
    return list(dict.fromkeys(options)), words, listed


def _data_read_as_a_value(raw):
    """``(option, value)`` where the last value of an option of several values names a file
    that exists or ends in .csv, .tsv or .txt; else None."""
    for position in range(len(raw) - 1, -1, -1):
        if raw[position] in _MANY_VALUES:
            values = list(itertools.takewhile(lambda a: not a.startswith("-"), raw[position + 1 :]))
            if len(values) > 1:
                last = values[-1]
                if os.path.isfile(last) or last.lower().endswith((".csv", ".tsv", ".txt")):
                    return raw[position], last
    return None


def _parser(prog=None):
    prog = prog or _program_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Distill-and-Compare audits of black-box scores.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_AuditParser)
    audit = commands.add_parser(
        "audit",
        help="compare a mimic of a score with a model of the outcome",
        description=(
            "Fit a transparent mimic of the black-box score and a transparent model of the "
            "observed outcome, compare their shape functions, test for features the data lack, "
            "and write an HTML report."
        ),
        epilog=(
            "Run without --features to list the file's columns, with those that look unsafe "
            "(identifiers, dates, columns derived from the score, columns that predict the "
            "label alone) and a command line that leaves them out. A column whose name begins "
            "with '-' is named after '=', as --features=-x (each feature so, or beside a list: "
            "--features age --features=-x), --groups=-x; '--' does not make the words after "
            "it columns. Where the file has a column named like an option and the option is "
            "given right after the features (--features age --cv 2), the command refuses to "
            "guess which is meant: give the option as --cv=2, or before --features."
        ),
    )
    audit.add_argument("data", help="CSV file with one row per case")
    audit.add_argument("--score", required=True, help="column holding the black-box score")
    audit.add_argument("--label", required=True, help="column holding the binary outcome")
    audit.add_argument(
        "--features",
        nargs="+",
        action="extend",  # given twice, both lists count (argparse would keep the last alone)
        metavar="COL",
        help="feature columns (required: the audit never guesses them); may be given again",
    )
    audit.add_argument(
        "--event",
        metavar="VALUE",
        help="the label's value that is the outcome event: the log-odds printed and drawn are "
        "those of this value (default: the second of the label's two values in sorted order; "
        "the output names the one used)",
    )
    audit.add_argument(
        "--categorical",
        nargs="+",
        action="extend",
        metavar="COL",
        default=[],
        help="features to read as categories although they hold numbers (zip codes, branch "
        "codes): each value its own category, kept as written (leading zeros included)",
    )
    audit.add_argument(
        "--numeric",
        nargs="+",
        action="extend",
        metavar="COL",
        default=[],
        help="features to read as numbers whatever their form (hours '07', months '01', a "
        "zero-padded count '00042'): leading zeros allowed, text numbers read as the other "
        "features' ('$94,901', '88.5%%', '1,234'), a cell that is not a number read as "
        "missing, counted in a note; a column under half of whose cells read is refused",
    )
    audit.add_argument(
        "--sep",
        default=",",
        help="the file's field separator, one character; '\\t' for a tab (default: %(default)r)",
    )
    audit.add_argument(
        "--decimal",
        default=".",
        help="the file's decimal mark, one character: ',' for numbers written 0,5 (default: "
        "%(default)r)",
    )
    audit.add_argument(
        "--encoding",
        default="utf-8",
        help="the file's text encoding (default: %(default)s, a byte-order mark allowed); "
        "spreadsheets saved as CSV on Windows in Western Europe write cp1252",
    )
    audit.add_argument(
        "--na-values",
        nargs="+",
        action="extend",  # may be given again: --na-values=-99 (a value that starts with -)
        metavar="TEXT",
        help="cell texts that mean a missing value in every column (e.g. NA -99), besides an "
        "empty cell and pandas' list (NA, N/A, NULL, None, nan, ...). Pandas' texts count as "
        "missing in columns of numbers or yes/no values; in other columns of text they stay "
        "categories as written (a note says so), since 'NA' or 'None' may be a real value "
        "there, unless named here",
    )
    audit.add_argument(
        "--groups",
        metavar="COL",
        help="column of record identifiers: rows of one record (the same case entered twice) "
        "stay together in the missing-feature test's cross-fitting, in the calibration "
        "folds of the score and of --rules, in the folds of the checks of unsafe columns, "
        "and in --stability's bootstrap samples (default: every row its own)",
    )
    audit.add_argument(
        "--out",
        default="report.html",
        help="HTML report to write; must end in .html (or .htm) and must not be the data file "
        "(default: %(default)s)",
    )
    audit.add_argument(
        "--calibration",
        default="isotonic",
        choices=["isotonic", "spline", "sigmoid", "temperature", "none"],
        help="how the score is mapped to P(label | score) before mimicking: isotonic or "
        "spline for any monotone score, sigmoid for one logistic curve, temperature only for a "
        "score that is a log-odds; none mimics the score as given, as log-odds of the event "
        "(see --response) (default: %(default)s)",
    )
    audit.add_argument(
        "--response",
        default="auto",
        choices=["auto", "predict", "predict_proba", "decision_function"],
        help="how the score is read, as the Python API's response: predict_proba for a "
        "probability of the outcome event (in [0, 1]), read as its log-odds; "
        "decision_function for a classifier's margin, read as log-odds; predict, or auto, "
        "for a score read as it is. With --calibration none the score so read is mimicked as "
        "the event's log-odds: one in [0, 1] is refused unless --response predict_proba or "
        "predict says how to read it, and with auto one that looks unlike log-odds (of at most "
        "20 whole-number values such as a decile, or a tenth of it beyond +-20) unless "
        "--response decision_function says it is log-odds all the same or predict says to "
        "mimic it as given, on its own scale (default: %(default)s)",
    )
    audit.add_argument(
        "--cv", type=int, default=5, help="folds of the score's calibration (default: %(default)s)"
    )
    audit.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples of the missing-feature test (default: %(default)s)",
    )
    audit.add_argument(
        "--confidence", type=float, default=0.95, help="confidence level (default: %(default)s)"
    )
    audit.add_argument(
        "--min-weight",
        type=float,
        default=10.0,
        help="rows a value must hold to be tested (flagged) by the comparison "
        "(default: %(default)g)",
    )
    audit.add_argument(
        "--max-bins",
        type=int,
        default=None,
        metavar="N",
        help="bins per continuous feature of both models (default: 256); fewer bins hold more "
        "rows each, so that a small audit's values can be tested (the models then use their "
        "eight bags in every cross-fit, which takes longer)",
    )
    audit.add_argument(
        "--runs",
        default="5",
        metavar="N",
        help="runs of adjacent values per numeric feature on which the features whose values "
        "are mostly too thin to test one by one are compared; 0 or none leaves the runs out "
        "(default: %(default)s)",
    )
    audit.add_argument(
        "--stability",
        type=int,
        default=0,
        metavar="N",
        help="also refit both models N times on bootstrap samples (default: %(default)s, skip)",
    )
    audit.add_argument(
        "--rules",
        type=int,
        default=8,
        metavar="N",
        help="also read the score as N rules (a small tree) in the report; 0 skips "
        "(default: %(default)s)",
    )
    audit.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="joblib workers, -1 for all cores (default: one)",
    )
    audit.add_argument("--random-state", type=int, default=0, help="seed (default: %(default)s)")
    audit.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser, audit


# ---------------------------------------------------------------------------- the output path
def _check_out(args, parser):
    """Refuse an output path that cannot be written, or that is the input, before any work."""
    out, data = args.out, args.data
    if not out.lower().endswith((".html", ".htm")):
        parser.error(f"--out must be an .html (or .htm) file; got {out!r}.")
    if os.path.exists(out) and os.path.exists(data) and os.path.samefile(out, data):
        parser.error(f"--out must not be the data file; got {out!r}, which is {data!r}.")
    from sklearn_distill._validation import check_output_path

    try:
        check_output_path(out, "--out")
    except ValueError as error:
        parser.error(str(error))


def _check_numbers(args, parser):
    """Refuse numeric options out of range before any work (the audit's own checks would
    refuse some of them only after reading the data, or after the whole fit)."""
    from sklearn_distill._validation import check_integer, check_n_jobs, check_real
    from sklearn_distill.audit import MIN_BOOTSTRAP

    args.runs = _runs_option(args.runs, parser)
    for option, count in (("--rules", args.rules), ("--stability", args.stability)):
        if count < 0 or count == 1:
            what = "no rules" if option == "--rules" else "no refits"
            parser.error(f"{option} must be 0 ({what}) or an integer >= 2; got {count}.")
    try:
        check_integer("--cv", args.cv, minimum=2)
        check_integer("--n-bootstrap", args.n_bootstrap, minimum=MIN_BOOTSTRAP)
        check_real(
            "--confidence",
            args.confidence,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        if args.n_jobs == 0:
            raise ValueError(
                "--n-jobs must be a positive number of workers, or -1 for all cores (-2 for "
                "all but one); got 0."
            )
        check_n_jobs("--n-jobs", args.n_jobs)
        if not 0 <= args.random_state < 2**32:
            raise ValueError(
                f"--random-state must be a seed from 0 to {2**32 - 1}; got {args.random_state}."
            )
        check_real("--min-weight", args.min_weight, minimum=0)
        if args.max_bins is not None:
            check_integer("--max-bins", args.max_bins, minimum=3)
    except ValueError as error:
        parser.error(str(error))


def _runs_option(text, parser):
    """``--runs`` as the library takes it: an integer >= 2, or None for ``0`` or ``none``."""
    if str(text).strip().lower() == "none":
        return None
    try:
        count = int(str(text).strip())
    except ValueError:
        count = None
    if count == 0:
        return None
    if count is None or count < 2:
        parser.error(
            "--runs must be an integer >= 2 (runs of adjacent values per feature), or 0 or "
            f"none to leave the runs out; got {text!r}."
        )
    return count


# ---------------------------------------------------------------------------- columns
def _unknown_columns_message(option, names, frame, data):
    available = [str(c) for c in frame.columns]
    hints = []
    for name in names:
        # case first: difflib scores 'y' against 'Y' as nothing alike
        close = [c for c in available if c.casefold() == str(name).casefold()]
        close = close or difflib.get_close_matches(str(name), available, n=3)
        parts = [part.strip() for part in str(name).split(",")]
        if option in _MANY_VALUES and len(parts) > 1 and all(p in available for p in parts):
            # "--features age,sex,race": a list written with commas is one name to argparse
            hints.append(
                f"{name!r}: separate the columns with spaces, not commas: "
                f"{option} {' '.join(map(shlex.quote, parts))}"
            )
        elif close:
            hints.append(f"{name!r}: did you mean {' or '.join(map(repr, close))}?")
    text = (
        f"{option} names {'a column' if len(names) == 1 else 'columns'} not in {data!r}: "
        f"{', '.join(map(repr, names))}."
    )
    if hints:
        text += " " + " ".join(hints)
    return text + f"\nColumns of {data!r}: {', '.join(available)}"


def _looks_like_dates(column):
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return False
    sample = column.dropna().astype(str).str.strip().head(200)
    if sample.empty or not sample.str.contains(r"\d").all():
        return False
    if sample.str.fullmatch(r"\d+").all():
        # codes written in digits (zip codes, branch codes) are no dates, though pandas reads
        # "01001" as a year; a compact date stamp (20240105) is
        parsed = pd.to_datetime(
            sample.where(sample.str.len() == 8), errors="coerce", format="%Y%m%d"
        )
    else:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def _label_auc(codes, y01, seed=0, groups=None):
    """Out-of-fold AUC of a single column for the label: each row's rate of its code (value, or
    quantile bin) among the other folds' rows, shrunk towards the base rate; with ``groups``
    (record identifiers), a record's rows lie in one fold, so that no row is predicted by a
    copy of itself."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    prediction = np.empty(len(y01))
    if groups is None:
        folds = StratifiedKFold(_LEAK_FOLDS, shuffle=True, random_state=seed)
    else:
        folds = StratifiedGroupKFold(_LEAK_FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(np.zeros((len(y01), 1)), y01, groups):
        prior = y01[train].mean()
        stats = pd.Series(y01[train]).groupby(codes[train]).agg(["sum", "count"])
        rate = (stats["sum"] + prior) / (stats["count"] + 1)
        prediction[test] = pd.Series(codes[test]).map(rate).fillna(prior).to_numpy(float)
    return float(roc_auc_score(y01, prediction))


def _codes(column):
    """Group codes of a column: its values, or 20 quantile bins of a many-valued number."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) and column.nunique() > 20:
        bins = pd.qcut(column.rank(method="first"), 20, labels=False)
        return bins.fillna(-1).to_numpy(int)
    return pd.factorize(column.astype(object), use_na_sentinel=False)[0].astype(np.int64)


def unsafe_columns(frame, columns, score, label, categorical=(), decimal=".", groups=None):
    """Columns of ``frame`` that look unsafe as audit features, each with the reason.

    A column is flagged when it holds no value or one value on every row, dates, a distinct
    value on every row or per record (an identifier; records entered twice repeat it with the
    whole row; floats are measurements, which may differ on every row, and so are numbers
    written as text whose cells carry a currency sign, ``%``, accounting parentheses or a minus
    (leading or trailing) or whose numbers have fractions, ``"$94,901"`` or ``"1,234.5"``, while
    thousands commas or spaces alone mark no measurement: ``"10,295"`` or ``"617 555 0101"`` may be record numbers), a
    function of the score (a single value per score value) or a copy of the score up to a
    monotone map (``|Spearman| >= 0.99``), or when it predicts the label alone almost perfectly
    or far better than the score does (out-of-fold AUC ``>= 0.95``, or ``0.10`` above the
    score's own AUC): such a column was probably recorded after the outcome. The label checks read the rows the audit would keep, those with a label
    and a numeric score. The checks are heuristics; a column they pass can still be unsafe.

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : sequence of str
        The columns to check.
    score, label : str
        The score's and the label's columns.
    categorical : sequence of str, default=()
        Columns declared categories (``--categorical``): their values are labels, never
        measurements.
    decimal : {".", ","}, default="."
        The decimal mark of numbers written as text (``--decimal``): with ``","`` a dot
        separates thousands (``"€1.769,70"``).
    groups : array-like of shape (len(frame),), default=None
        Record identifiers (``--groups``), without missing values: the label checks' folds keep
        a record's rows together, and a column is a function of the score only where the
        score's values repeat across records (a record's own score, and a column of the
        record, such as a household's region, are one value per score value by themselves).

    Returns
    -------
    dict
        Column name -> reason, in the order of ``columns``.
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import ConstantInputWarning
    from sklearn.metrics import roc_auc_score

    from sklearn_distill._data import record_codes
    from sklearn_distill.audit import _nominal_score_copies

    n_rows = len(frame)
    score_values = pd.to_numeric(frame[score], errors="coerce")
    label_values = frame[label]
    # the label checks read the rows the audit keeps: those with a label and a score
    labelled = (label_values.notna() & score_values.notna()).to_numpy()
    classes = pd.unique(label_values[labelled])
    records = None
    if groups is not None:
        # the fits' one check: a string or a scalar is refused as a TypeError, and a vector of
        # another length or with gaps (read at the wrong rows, or failing with pandas' index
        # error) as a ValueError, naming groups; the codes tell records apart as the
        # identifiers do
        records = pd.Series(record_codes(groups, n_rows, rows="frame"))
    y01 = None
    score_auc = float("nan")
    if len(classes) == 2:
        y01 = (label_values[labelled] == sorted(classes, key=str)[1]).to_numpy(int)
        if np.bincount(y01).min() < _LEAK_FOLDS or (
            records is not None and records[labelled].nunique() < _LEAK_FOLDS
        ):
            y01 = None  # too few rows of a class (or records) for out-of-fold AUCs
        else:
            score_auc = float(roc_auc_score(y01, score_values[labelled]))
            score_auc = max(score_auc, 1.0 - score_auc)
    # the score's values repeat: on two rows each, or two records each with groups
    if records is None:
        score_repeats = score_values.nunique() <= n_rows / 2
    else:
        pairs = pd.DataFrame({"score": score_values.to_numpy(), "record": records.to_numpy()})
        score_repeats = score_values.nunique() <= len(pairs.drop_duplicates()) / 2
    # records entered twice repeat their identifier with the whole row
    n_records = len(frame.drop_duplicates())
    reasons = {}
    for name in columns:
        column = frame[name]
        distinct = column.nunique(dropna=False)
        if distinct <= 1:
            empty = column.isna().all()
            reasons[name] = "no value on any row" if empty else "one value on every row"
            continue
        if _looks_like_dates(column):
            reasons[name] = "dates: give what they measure instead (an age, a duration)"
            continue
        numbers, as_text = column, False
        if not pd.api.types.is_numeric_dtype(column):  # numbers written as text: "88.5%"
            numbers, as_text = _text_numbers(column, decimal), True
        # measurements differ on every row: floats, and numbers written as text with a
        # currency sign, %, a minus or accounting parentheses, or with fractions ("$94,901",
        # "88.5%", "-1,374"), not codes written in digits, thousands commas or spaces
        # ("10234", "10,295": a record number is never negative)
        measured = pd.api.types.is_float_dtype(column)
        if as_text and numbers is not None and name not in categorical:
            written = column[numbers.notna()].astype(str)
            measured = bool(
                written.str.contains(r"[$€£%(]|^\s*[-\u2212\u2012\u2013]|\d-\s*$", regex=True).any()
                or (numbers.dropna() % 1 != 0).any()
            )
        if distinct == n_rows and not measured:
            reasons[name] = "a distinct value on every row (an identifier?)"
            continue
        if distinct == n_records < n_rows and not measured:
            reasons[name] = (
                "a distinct value per record, repeated only where the whole row repeats (an "
                f"identifier? pass it as --groups {name})"
            )
            continue
        if score_repeats and frame.groupby(score)[name].nunique(dropna=False).max() == 1:
            reasons[name] = f"a function of the score: one value per value of {score!r}"
            continue
        if numbers is not None and not pd.api.types.is_bool_dtype(numbers):
            with warnings.catch_warnings():
                # a column of one value on these rows has no correlation (NaN), said below
                warnings.simplefilter("ignore", ConstantInputWarning)
                rho = numbers.corr(score_values, method="spearman")
            if np.isfinite(rho) and abs(rho) >= _SCORE_CORRELATION:
                written = ", written as text" if as_text else ""
                reasons[name] = (
                    f"a copy of the score up to a monotone map{written} (Spearman {rho:.3f})"
                )
                continue
        if as_text and numbers is None:  # categories: the audit's own check of score copies
            known = score_values.notna().to_numpy()
            eta = _nominal_score_copies(
                frame.loc[known, [name]],
                score_values[known].to_numpy(float),
                set(),
                normalised=True,
            ).get(str(name))
            if eta is not None:
                reasons[name] = (
                    f"a category that the score's order determines (normalised correlation ratio "
                    f"{eta:.3f}): a banded copy of the score?"
                )
                continue
        if y01 is not None:
            auc = _label_auc(
                _codes(column[labelled]),
                y01,
                groups=None if records is None else records[labelled].to_numpy(),
            )
            if auc >= _LEAK_AUC or auc >= score_auc + _LEAK_AUC_MARGIN:
                reasons[name] = (
                    f"alone predicts {label!r} out of fold with AUC {auc:.2f} (the score: "
                    f"{score_auc:.2f}): recorded after the outcome?"
                )
                if auc < _LEAK_AUC:
                    # far better than the score, not nearly perfect: a later record, or an
                    # input the score leaves out. The comparison of the two models shows such
                    # an input (the missing-feature test looks the other way: for what the
                    # score used that the features lack). Said where --features leaves the
                    # column out and where it names it, so no advice on --features here
                    reasons[name] += _UNSCORED_INPUT
    return reasons


# a spreadsheet's accounting zero: a dash alone, beside a currency sign or not ("$ -", "-")
_ACCOUNTING_ZERO = r"[$€£]?\s*[-\u2012\u2013\u2014]\s*[$€£]?"


def _text_numbers(column, decimal="."):
    """A text column read as numbers when nearly all its cells are numbers once these are
    taken off: a percent or currency sign; thousands commas, each before exactly three digits
    (not ``"0,5"``); spaces at a cell's ends or beside a sign, and between digits only as
    thousands groups, a space before exactly three digits (``"12 345"``; not ``"2 7"`` nor
    ``"617 555 0101"``); and an accounting negative's parentheses, read as a minus only in a
    column whose cells also carry a currency or percent sign, a thousands separator or a
    decimal point (``"(1,234)"``, ``"($1,234.50)"``, ``"(5%)"``; an answer code ``"(3)"`` is no
    negative). A minus sign (U+2212), or a figure or en dash before a digit, is a minus; a
    trailing minus (``"5.2-"``) is one only in such a column of amounts. In a column where some
    cell carries a currency sign, a cell that is only a dash (``"$ -"``, ``"-"``) is a
    spreadsheet's accounting zero, 0. With ``decimal=","`` the dot and the comma swap roles:
    a dot (or a space) separates thousands, each before exactly three digits (``"€1.769,70"``,
    ``"14,5 %"``; ``"0.5"`` is not read). A column of
    codes is not read: one whose numbers carry ``%`` on some cells only (5% beside 5 or 0.05
    has no one scale), or where some whole number has a leading zero (``"02139"``; not
    ``"0.5"``, ``"0"`` nor a padded ``"000949.51"``: codes have no fraction). Returns floats (NaN where missing or not a number), or None. A percentage keeps
    its printed scale (``"88.5%"`` is 88.5)."""
    numbers, read_share, _ = _text_number_reading(column, decimal)
    return numbers if read_share is None or read_share >= 0.95 else None


def _text_number_reading(column, decimal=".", codes=True):
    """What :func:`_text_numbers` reads: ``(numbers, share, unread)``, the numbers or None
    (a column of codes, or of no text), the share of its cells that read (None where the column
    is refused whatever the share) and the cells that do not read (a boolean mask). With
    ``codes=False`` (``--numeric``) a whole number with a leading zero is a number (``"07"`` is
    7), not a code."""
    import numpy as np
    import pandas as pd

    text = column.dropna().astype(str)
    if text.empty:
        return None, None, None
    cells = column.astype("string").str.strip()
    if decimal == ",":  # "1.769,70" is written 1,769.70 where the decimal mark is a dot
        cells = cells.str.translate(str.maketrans(".,", ",."))
    # a minus sign, and a figure or en dash before a digit, is a minus
    cells = cells.str.replace("\u2212", "-", regex=False)
    cells = cells.str.replace(r"[\u2012\u2013](?=[$€£\s]*\d)", "-", regex=True)
    # amounts: a currency or percent sign, a thousands separator or a decimal point on some cell
    amounts = cells.str.contains(r"[$€£%]|\d[, \u00a0\u202f]\d{3}(?!\d)|\.\d", regex=True)
    # an accounting zero, "$ -", in a column where some cell carries a currency sign
    if cells.str.contains(r"[$€£]", regex=True).fillna(False).any():
        zero = cells.str.fullmatch(_ACCOUNTING_ZERO).fillna(False)
        cells = cells.where(~zero, "0")
    # a space between digits separates thousands only before exactly three digits ("12 345");
    # others between digits stay ("2 7" is no number), those beside a sign go ("$ 94,901")
    cells = cells.str.replace(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?!\d))", "", regex=True)
    cells = cells.str.replace(r"(?<![\d\s])\s+|\s+(?![\d\s])", "", regex=True)
    # an accounting negative, "(1,234)" is -1234, and a trailing minus, "5.2-", in a column of
    # amounts: not a code "(3)" or "3-"
    if amounts.fillna(False).any():
        cells = cells.str.replace(r"^\(([^()]*)\)$", r"-\1", regex=True)
        cells = cells.str.replace(r"^([^-+]*\d[%$€£]?)-$", r"-\1", regex=True)
    # a comma separates thousands only (three digits after it); "0,5" is not read
    thousands = ~cells.str.contains(r",(?!\d{3}(?!\d))", regex=True).fillna(False)
    if not codes:  # the first group of thousands has no leading zero: "0,125" is no 125
        thousands &= ~cells.str.contains(r"(?<![\d.])0\d*,", regex=True).fillna(False)
    stripped = cells.str.replace(r"[%$€£,]", "", regex=True).where(thousands)
    numbers = pd.to_numeric(stripped, errors="coerce").astype(float)
    numbers = numbers.where(np.isfinite(numbers))  # "inf" measures nothing
    read = numbers.notna()
    unread = column.notna() & ~read
    # codes: a leading zero on a whole number ("02139") is kept by text alone; a padded
    # measurement with a fraction ("000949.51") is a number
    if codes and stripped[read].str.match(r"[-+]?0\d+$", na=False).any():
        return None, None, unread
    percent = cells[read].str.contains("%", regex=False)
    if percent.any() and not percent.all():
        return None, None, unread
    return numbers, float(read.sum() / len(text)), unread


def _describe_unsafe(reasons):
    return "\n".join(f"  {name}: {reason}" for name, reason in reasons.items())


def _features_required_message(args, frame, prog):
    candidates = [c for c in frame.columns if c not in (args.score, args.label, args.groups)]
    given = None  # the records named, where every row has one
    if args.groups is not None and args.groups in frame:
        identifiers = frame[args.groups].str.strip()
        given = None if (identifiers.isna() | (identifiers == "")).any() else identifiers
    reasons = unsafe_columns(
        frame, candidates, args.score, args.label, args.categorical, args.decimal, given
    )
    safe = [c for c in candidates if c not in reasons]
    # the record identifier: the one given, or the one column found to be one
    records = [name for name, reason in reasons.items() if "pass it as --groups" in reason]
    groups = args.groups if args.groups is not None else (records[0] if len(records) == 1 else None)
    lines = [
        "--features is required: name the columns the audit may use.",
        "What the audit concludes depends on them; a column recorded after the outcome, "
        "derived from the score or identifying the row would be used without any error.",
        f"Columns of {args.data!r} besides the score and the label: {', '.join(candidates)}",
    ]
    if reasons:
        lines += ["Columns that look unsafe:", _describe_unsafe(reasons)]
    if safe:
        # a column or value the parser would read as an option (-x) goes as --option=-x
        command = [
            prog, "audit", args.data,
            *option_tokens("--score", [args.score]), *option_tokens("--label", [args.label]),
            *(["--sep", args.sep] if args.sep != "," else []),
            *(["--decimal", args.decimal] if args.decimal != "." else []),
            *(["--encoding", args.encoding] if args.encoding != "utf-8" else []),
            *(f"--na-values={value}" for value in args.na_values or ()),
            *(option_tokens("--event", [args.event]) if args.event is not None else []),
            *(option_tokens("--groups", [groups]) if groups is not None else []),
            *(option_tokens("--categorical", codes)
              if (codes := [c for c in args.categorical if c in safe]) else []),
            *(option_tokens("--numeric", numbers)
              if (numbers := [c for c in args.numeric if c in safe]) else []),
            *option_tokens("--features", safe),
        ]  # fmt: skip
        lead = (
            "The others, once each is checked to be a real input known before the outcome. The "
            "checks above do not"
            if reasons
            else "No column looks unsafe to these checks (no value or one value on every row, "
            "dates, identifiers, functions or copies of the score, a column that alone "
            "predicts the label). Use them once each is checked to be a real input known "
            "before the outcome. The checks do not"
        )
        lines += [
            f"{lead} see every unsafe column: one recorded after the outcome that predicts it "
            "no better than the score does (a later event, a charge of that event), or a "
            "second output of the same black box, passes them. Remove those from this command "
            "before running it:",
            "  " + " ".join([prog, *(shlex.quote(str(part)) for part in command[1:])]),
        ]
    # left out of the command with the rest, though each may be a real input
    unscored = [name for name, reason in reasons.items() if reason.endswith(_UNSCORED_INPUT)]
    if unscored:
        lines.append(
            "Flagged above, but possibly inputs the score leaves out (they predict the label "
            "far better than the score does, not almost perfectly): add to --features those "
            f"known before the outcome: {', '.join(map(str, unscored))}."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reading the file
def _plain(value):
    """A numpy scalar as the Python value it holds (``1``, not ``np.int64(1)``)."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def _separator(args, parser):
    """The field separator ``--sep`` names: one character; ``\\t`` or ``tab`` for a tab."""
    sep = "\t" if args.sep in ("\\t", "tab", "TAB") else args.sep
    if len(sep) != 1:
        parser.error(
            f"--sep must be one character (',', ';', '|', or '\\t' for a tab); got {args.sep!r}."
        )
    return sep


def _sep_option(sep):
    """``sep`` as one would type it after ``--sep``."""
    return "'\\t'" if sep == "\t" else shlex.quote(sep)


def _header_names(path, sep, encoding="utf-8"):
    """The header's column names as written (pandas renames a repeated ``age`` to ``age.1``),
    or None when the header cannot be read so."""
    import csv

    encoding = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        with open(path, newline="", encoding=encoding) as handle:
            return next(csv.reader(handle, delimiter=sep))
    except (OSError, UnicodeDecodeError, csv.Error, StopIteration):
        return None


def _separator_advice(header: str, sep: str) -> str | None:
    """What to pass when ``header`` (a file's first line) holds another likely separator."""
    seen = [c for c in (";", "\t", ",", "|") if c != sep and c in header]
    if not seen:
        return None
    return (
        f"its header holds {seen[0]!r}, which probably separates its columns (spreadsheets set "
        f"to a European locale write ';'). Pass --sep {_sep_option(seen[0])}"
        + (" (and --decimal ',' if its numbers are written 0,5)." if seen[0] == ";" else ".")
    )


#: Byte-order marks and the Unicode encoding each starts (UTF-32's before UTF-16's, whose
#: little-endian mark begins UTF-32's), with the codecs that read the mark as one (those of a
#: stated byte order, utf-16-le say, would keep it in the first column's name).
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "UTF-8", ("utf-8", "utf-8-sig")),
    (codecs.BOM_UTF32_LE, "UTF-32", ("utf-32",)),
    (codecs.BOM_UTF32_BE, "UTF-32", ("utf-32",)),
    (codecs.BOM_UTF16_LE, "UTF-16", ("utf-16",)),
    (codecs.BOM_UTF16_BE, "UTF-16", ("utf-16",)),
)


def _byte_order_mark(path) -> tuple[str, tuple[str, ...]] | None:
    """The Unicode encoding whose byte-order mark starts the file, and the codec names that
    read it; None without a mark."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except OSError:
        return None
    for mark, name, codec_names in _BYTE_ORDER_MARKS:
        if start.startswith(mark):
            return name, codec_names
    return None


def _utf8_garbled(path, encoding: str) -> tuple[str, str] | None:
    """``(as written, as read)``: a word of a file whose text beyond ASCII is all valid UTF-8
    (which text in a one-byte encoding almost never is), as UTF-8 reads it and as the one-byte
    ``encoding`` garbles it (``café`` read as ``cafÃ©`` under cp1252); None when the file is
    ASCII, not UTF-8 or unreadable, or ``encoding`` is not a one-byte one."""
    high = bytes(range(128, 256))
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return None
    if len(high.decode(encoding, errors="replace")) != len(high):
        return None  # UTF-16, or an encoding of several bytes a character
    decoder = codecs.getincrementaldecoder("utf-8")()
    word = None
    try:
        with open(path, "rb") as handle:
            # in pieces: the whole file must be UTF-8, and may be large
            for piece in iter(lambda: handle.read(1 << 20), b""):
                text = decoder.decode(piece)
                if word is None and not text.isascii():
                    word = re.search(r"[^\s,;|\"']*[^\x00-\x7f][^\s,;|\"']*", text).group()
            decoder.decode(b"", final=True)
    except (OSError, UnicodeDecodeError):
        return None
    if word is None:
        return None
    read = word.encode("utf-8").decode(encoding, errors="replace")
    return (word, read) if read != word else None


#: The bytes that a code page of the ISO 8859 family reads as C1 control characters.
_C1_BYTES = bytes(range(0x80, 0xA0))

#: The Windows code page that is kin to a one-byte encoding reading bytes 0x80-0x9F as C1
#: controls (keyed by Python's codec name), and where its text is written: Windows puts
#: punctuation (curly quotes, dashes, the euro sign) and some letters at those bytes, so a
#: file that holds them and was read so is, nearly always, Windows text read with its ISO
#: cousin. The WHATWG Encoding Standard, which browsers follow, reads the labels iso-8859-1,
#: iso-8859-9 and iso-8859-11 (tis-620) as windows-1252, -1254 and -874 for this reason; the
#: others pair each part of ISO 8859 with the Windows code page Microsoft made for the same
#: script (cp1252 holds latin-9's letters too). None of these reads a byte as a C1 control:
#: Python's decoders refuse the bytes they leave unassigned.
_WINDOWS_KIN = {
    "iso8859-1": ("cp1252", "Western Europe"),
    "iso8859-15": ("cp1252", "Western Europe"),
    "iso8859-2": ("cp1250", "Central Europe"),
    "iso8859-5": ("cp1251", "Cyrillic script"),
    "iso8859-6": ("cp1256", "Arabic script"),
    "iso8859-7": ("cp1253", "Greek"),
    "iso8859-8": ("cp1255", "Hebrew"),
    "iso8859-9": ("cp1254", "Turkish"),
    "iso8859-11": ("cp874", "Thai"),
    "tis-620": ("cp874", "Thai"),
    "iso8859-13": ("cp1257", "the Baltic languages"),
}


def _reads_c1_controls(encoding: str) -> bool:
    """Whether ``encoding`` reads every byte 0x80-0x9F as the C1 control character of that
    code (U+0080-U+009F), as latin-1 and the rest of the ISO 8859 family do."""
    try:
        return _C1_BYTES.decode(encoding) == _C1_BYTES.decode("latin-1")
    except (LookupError, UnicodeError):
        return False


#: A byte that the ISO 8859 family reads as a C1 control, and what ends a word around it.
_C1_BYTE = re.compile(rb"[\x80-\x9f]")
_WORD_END = re.compile(rb"[\s,;|\"']")
#: The longest word shown on either side of the byte.
_WORD_REACH = 40


def _word_around(text: bytes, at: int) -> bytes:
    """The word (between separators, spaces and quotes) of ``text`` that holds byte ``at``,
    cut ``_WORD_REACH`` bytes either side."""
    start = max(0, at - _WORD_REACH)
    ends = [found.end() for found in _WORD_END.finditer(text, start, at)]
    end = _WORD_END.search(text, at, at + _WORD_REACH + 1)
    return text[ends[-1] if ends else start : at + _WORD_REACH + 1 if end is None else end.start()]


def _c1_garbled(path, encoding: str) -> tuple[str | None, str, str | None] | None:
    """``(as written, as read, kin)``: a word of a file that holds bytes 0x80-0x9F, which
    ``encoding`` (latin-1, or another of the ISO 8859 family) reads as C1 control characters,
    as ``kin``, the Windows code page kin to ``encoding`` (cp1252 for latin-1), reads it (its
    euro sign, curly quotes and dashes: ``5€`` read as ``'5\\x80'``) and as ``encoding``
    does; ``as written`` is None when the file is not ``kin`` text either, or ``encoding``
    has no Windows kin (``kin`` is None then). None when the file holds no such byte or
    cannot be read, or ``encoding`` reads those bytes otherwise."""
    if not _reads_c1_controls(encoding):
        return None
    kin = _WINDOWS_KIN.get(codecs.lookup(encoding).name, (None,))[0]
    word = None
    try:
        with open(path, "rb") as handle:
            # in pieces, the file may be large; the word around the first such byte is read
            # with the end of the piece before and the start of the next
            carried = b""
            for piece in iter(lambda: handle.read(1 << 20), b""):
                # bytes.translate deletes them in a seventh of the time a search takes
                found = None
                if len(piece.translate(None, _C1_BYTES)) != len(piece):
                    found = _C1_BYTE.search(piece)
                if found is not None:
                    text = carried + piece + handle.read(_WORD_REACH)
                    word = _word_around(text, len(carried) + found.start())
                    break
                carried = piece[-_WORD_REACH:]
        if word is None:
            return None
        read = word.decode(encoding, errors="replace")
        if kin is None:
            return None, read, None
        # the whole file must be text of the kin, not the word alone
        windows = codecs.getincrementaldecoder(kin)()
        with open(path, "rb") as handle:
            for piece in iter(lambda: handle.read(1 << 20), b""):
                windows.decode(piece)
            windows.decode(b"", final=True)
    except OSError:
        return None
    except UnicodeDecodeError:
        return None, read, kin
    return word.decode(kin), read, kin


def _nul_bytes(path) -> str | None:
    """What a file that holds NUL bytes, which no text in a one-byte encoding holds, is read
    as: the codec of UTF-16 text without a byte-order mark (a NUL beside each ASCII
    character: at most of the odd offsets of its first piece for utf-16-le, of the even ones
    for utf-16-be; the codec must read the whole file), else ``""``; None when the file holds
    no NUL byte or cannot be read."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(1 << 16)
            found = b"\x00" in start
            for piece in iter(lambda: handle.read(1 << 20), b""):
                if found:
                    break
                found = b"\x00" in piece
        if not found:
            return None
        halves = {"utf-16-le": start[1::2], "utf-16-be": start[0::2]}
        for codec, half in halves.items():
            other = halves["utf-16-be" if codec == "utf-16-le" else "utf-16-le"]
            if half.count(0) < len(half) / 4 or other.count(0) > len(other) / 16:
                continue
            decoder = codecs.getincrementaldecoder(codec)()
            with open(path, "rb") as handle:
                for piece in iter(lambda: handle.read(1 << 20), b""):
                    decoder.decode(piece)
            decoder.decode(b"", final=True)
            return codec
    except OSError:
        return None
    except UnicodeDecodeError:
        pass
    return ""


def _first_line(path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline()
    except OSError:
        return None


def _line_of_row(args, row: int) -> int | None:
    """The file's line that ends data row ``row`` (0 for the first under the header), as the
    csv module reads the file (blank lines skipped, as pandas skips them, quoted cells across
    lines counted); None when the file cannot be read so."""
    import csv

    try:
        with open(args.data, encoding=args.encoding, newline="") as handle:
            records = csv.reader(handle, delimiter=_separator(args, None), quotechar='"')
            seen = -1  # the header
            for record in records:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                if seen == row:
                    return records.line_num
                seen += 1
    except (OSError, UnicodeError, csv.Error, ValueError):
        return None
    return None


def _read_csv(args, parser):
    """The data file as a frame; refuses a file read as one column because ``--sep`` is not
    its separator, and a header that names a column twice."""
    import pandas as pd

    sep = _separator(args, parser)
    if len(args.decimal) != 1 or args.decimal == sep:
        parser.error(
            "--decimal must be one character other than the separator ('.' or ','); got "
            f"{args.decimal!r}."
        )
    # codes read as text keep their leading zeros, and the models read text as categories;
    # --numeric columns are read from their text too (_read_declared_numbers); record
    # identifiers are text, so that 007 and 7 stay two records
    named = [*args.categorical, *args.numeric, *([args.groups] if args.groups is not None else [])]
    text_columns = dict.fromkeys(named, str)
    # the user's missing-value texts add to pandas' (which text columns then take back)
    missing = {} if args.na_values is None else {"na_values": list(args.na_values)}
    try:
        "".encode(args.encoding)  # a text encoding (rot13 or zlib are codecs, not encodings)
    except LookupError:
        parser.error(
            f"--encoding must name a text encoding (utf-8, cp1252, latin-1, ...); got "
            f"{args.encoding!r}."
        )
    mark = _byte_order_mark(args.data)
    if mark is not None and codecs.lookup(args.encoding).name not in mark[1]:
        # read in another encoding, the header and every cell would be garbled (UTF-16 as
        # cp1252 puts a NUL between letters)
        advice = (
            "leave --encoding out" if mark[0] == "UTF-8" else f"pass --encoding {mark[0].lower()}"
        )
        parser.error(
            f"{args.data!r} starts with {mark[0]}'s byte-order mark: it is {mark[0]} text, "
            f"which --encoding {args.encoding} would garble; {advice}."
        )

    garbled = _utf8_garbled(args.data, args.encoding)
    if garbled is not None:
        # without a byte-order mark, UTF-8 read in a one-byte encoding is garbled silently:
        # every name and cell beyond ASCII (its categories, the report's labels) misread
        parser.error(
            f"{args.data!r} reads as UTF-8 text, which --encoding {args.encoding} would garble "
            f"({garbled[0]!r} read as {garbled[1]!r}); leave --encoding out."
        )

    garbled = _c1_garbled(args.data, args.encoding)
    if garbled is not None:
        # latin-1 and the rest of ISO 8859 read every byte, so a Windows file's euro signs and
        # curly quotes (bytes 0x80-0x9F in cp1252) had become invisible control characters in
        # names and cells
        written, read, kin = garbled
        nul = _nul_bytes(args.data)
        if nul is not None:
            # code pages read NUL as a character: UTF-16 and binary files would pass for them
            advice = f" ({read!r}), and it holds NUL bytes, which no text in a one-byte encoding "
            advice += (
                f"holds: it is UTF-16 text without a byte-order mark: pass --encoding {nul}."
                if nul
                else "holds: it may be no text file at all (a spreadsheet's own format, a "
                "compressed file); if it is one, pass its own encoding."
            )
        elif written is not None:
            # a code page reads most bytes (cp1252 all but five): a DOS file's "caf\x82" reads
            # as "caf" and a low quote, so the word is shown for the user to judge, and the
            # file is not called Windows text
            advice = (
                f" ({written!r} read as {read!r}): the file reads as Windows text ({kin}); if "
                f"{written!r} is what it says, pass --encoding {kin}, else the file's own "
                "encoding."
            )
        elif kin is not None:
            region = _WINDOWS_KIN[codecs.lookup(args.encoding).name][1]
            # the region's Windows code page cannot read the file either: the advice names
            # encodings that read the bytes it leaves unassigned, not that code page
            advice = (
                f" ({read!r}), and it is not {kin} text either (the Windows code page for "
                f"{region} leaves some of those bytes unassigned): pass the file's own "
                "encoding, one that reads them, such as a DOS code page (cp850, cp437), a Mac "
                "one (mac-roman) or the Windows code page of another script (cp1250 to cp1258)."
            )
        else:
            advice = (
                f" ({read!r}), which text in {args.encoding} does not hold: pass the file's own "
                "encoding (a Windows code page, cp1250 to cp1258 or cp874, if it was saved on "
                "Windows)."
            )
        parser.error(
            f"{args.data!r} holds bytes 0x80-0x9F, which --encoding {args.encoding} reads as "
            "control characters" + advice
        )

    def read(**options):
        return pd.read_csv(
            args.data,
            sep=sep,
            decimal=args.decimal,
            dtype=text_columns or None,
            encoding=args.encoding,
            **missing,
            **options,
        )

    try:
        # index_col=False: pandas would otherwise read the first field of data lines longer
        # than the header as row labels and shift every value under the next column's name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = read(index_col=False)
        longer = [w for w in caught if issubclass(w.category, pd.errors.ParserWarning)]
        for other in caught:  # pandas' other warnings (mixed types, ...) reach the user
            if other not in longer:
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
        if longer:
            frame = _fields_beyond_header(args, parser, frame, read(), sep)
    except UnicodeDecodeError as error:
        advice = (
            "pass the file's encoding, e.g. --encoding cp1252 for a spreadsheet saved as CSV "
            "on Windows in Western Europe."
            if codecs.lookup(args.encoding).name == "utf-8"
            else "it is not the file's encoding: pass the file's own."
        )
        parser.error(
            f"cannot read {args.data!r} as {args.encoding} text ({error.reason}): {advice}"
        )
    except (OSError, ValueError) as error:
        # a file of another separator whose text fields hold the separator fails to
        # tokenise before it could be read as one column
        header = _first_line(args.data)
        advice = None if header is None or sep in header else _separator_advice(header, sep)
        parser.error(
            # pandas' message ends in a line break, which would stand before the advice
            f"cannot read {args.data!r}: {str(error).strip()}"
            + ("" if advice is None else f". {advice[0].upper()}{advice[1:]}")
        )
    columns = [str(c) for c in frame.columns]
    if len(columns) == 1:
        advice = _separator_advice(columns[0], sep)
        if advice is not None:
            parser.error(
                f"{args.data!r} was read as one column, {columns[0]!r}, with the separator "
                f"{sep!r}: {advice}"
            )
    names = _header_names(args.data, sep, args.encoding)
    if names is not None and len(names) == len(columns):
        # blank cells are refused or left out below, not as one name given twice
        repeated = [name for name in dict.fromkeys(names) if name.strip() and names.count(name) > 1]
        if repeated:
            positions = {
                name: [str(i + 1) for i, n in enumerate(names) if n == name] for name in repeated
            }
            places = "; ".join(
                f"{name!r} (columns {', '.join(at[:-1])} and {at[-1]})"
                for name, at in positions.items()
            )
            renamed = [c for c, n in zip(columns, names) if n in repeated and c != n]
            parser.error(
                f"{args.data!r} names {'a column' if len(repeated) == 1 else 'columns'} more "
                f"than once: {places}. pandas would read the later ones as "
                f"{', '.join(map(repr, renamed))}, different features of one name. Give each "
                "column a name of its own."
            )
        frame = _unnamed_columns(args, parser, frame, names)
    frame = _read_declared_numbers(args, parser, frame)
    frame = _keep_leading_zero_codes(args, frame, sep)
    if args.decimal == ",":  # first: a column of numbers keeps pandas' missing texts
        frame = _read_dotted_thousands(args, parser, frame)
    # before the categories' missing texts: "NA" in a column of numbers is missing
    frame = _read_numbers_written_as_text(args, frame)
    return _keep_written_categories(args, frame, sep)


def _fields_beyond_header(args, parser, frame, shifted, sep):
    """``frame`` (read without row labels) when the data lines' fields beyond the header's
    names are empty (a separator closing every data line but not the header), with a note;
    otherwise a refusal. ``shifted`` is the same file as pandas reads it by default: the extra
    fields first, as row labels, so that its last columns hold the fields beyond the names. A
    header read as one name that another separator would split is left to the one-column
    check (``shifted`` returned), which names the separator."""
    extra = shifted.index.nlevels
    if shifted.iloc[:, -extra:].isna().all().all():
        print(
            f"note: the data lines of {args.data!r} end with a separator that its header does "
            "not: the empty field after it is left out.",
            file=sys.stderr,
        )
        return frame
    names = len(shifted.columns)
    if names == 1 and _separator_advice(str(shifted.columns[0]), sep) is not None:
        return shifted  # another separator's file (its decimal commas split the lines): said next
    parser.error(
        f"{args.data!r} has {names + extra} fields on its data lines but {names} names in its "
        f"header: name every column in the header (a first column of row labels too, e.g. "
        "'id'); pandas would read the first field as row labels and every other value under "
        "the name of the column before it."
    )


def _unnamed_columns(args, parser, frame, names):
    """``frame`` without the columns whose header cell is blank (empty or white space) and
    that hold no value on any row (a separator closing every line), named in a note; a blank
    header cell over values is refused, naming its position. pandas names such a column
    ``Unnamed: 4``, a name of its own making that would then stand for the column in the
    messages, ``--features`` and the report."""
    blank = [index for index, name in enumerate(names) if not name.strip()]
    if not blank:
        return frame
    empty = [index for index in blank if frame.iloc[:, index].isna().all()]
    held = [index for index in blank if index not in empty]

    def positions(indices):
        numbers = [str(index + 1) for index in indices]
        if len(numbers) == 1:
            return f"column {numbers[0]}"
        return f"columns {', '.join(numbers[:-1])} and {numbers[-1]}"

    if held:
        parser.error(
            f"{args.data!r} has no name in its header for {positions(held)} of "
            f"{len(names)}, which {'holds' if len(held) == 1 else 'hold'} values (pandas would "
            f"call {'it' if len(held) == 1 else 'them'} "
            f"{', '.join(repr(str(frame.columns[index])) for index in held)}): name "
            f"{'it' if len(held) == 1 else 'each'} in the header, or delete "
            f"{'it' if len(held) == 1 else 'them'}"
            + (
                " (a first column without a name is often the row numbers pandas' to_csv "
                "writes without index=False)."
                if held[0] == 0
                else "."
            )
        )
    print(
        f"note: {positions(empty)} of {args.data!r} "
        + ("has" if len(empty) == 1 else "have")
        + " no name in the header and no value on any row (a separator closing each line): "
        "left out.",
        file=sys.stderr,
    )
    return frame.drop(columns=[frame.columns[index] for index in empty])


def _under_half(share: float) -> str:
    """A share under one half as a percentage that does not read as half or more (0.4996 is
    "49.96%", not "50%")."""
    for digits in range(0, 6):
        text = f"{100 * share:.{digits}f}"
        if float(text) < 50:
            return text + "%"
    return f"{100 * share:g}%"


def _read_declared_numbers(args, parser, frame):
    """``--numeric`` features read as numbers whatever their form: a whole number with a
    leading zero is a number (``"07"`` is 7, not a code), and text numbers are read by
    :func:`_text_numbers`' rules otherwise (``"$94,901"``, ``"88.5%"``, ``"1,234"``). Cells that
    are not numbers are read as missing and counted in a note; a column under half of whose
    cells read is refused, quoting one that does not, and so is one with ``%`` on some cells
    only (no one scale). ``args.declared_numbers`` keeps, per column, the cells read as
    missing (a count and an example), for the report. Columns outside ``--features`` are left
    to the checks of :func:`_read_audit_data`."""
    import pandas as pd

    args.declared_numbers = {}
    for column in dict.fromkeys(args.numeric):
        if column not in frame.columns or (args.features and column not in args.features):
            continue
        values = frame[column]
        numbers, share, unread = _text_number_reading(values, args.decimal, codes=False)
        if share is None and numbers is None and unread is None:  # no cell written
            frame[column] = pd.to_numeric(values, errors="coerce").astype(float)
            args.declared_numbers[column] = (0, None)
            continue
        name = shlex.quote(str(column))
        if numbers is None:
            written = values.dropna().astype(str).str.strip()
            example = written[written.str.contains("%", regex=False)].iloc[0]
            other = written[~written.str.contains("%", regex=False)].iloc[0]
            parser.error(
                f"--numeric {column!r}: its numbers carry '%' on some cells only, e.g. "
                f"{example!r} beside {other!r}, which have no one scale: write the column in "
                f"one convention, or pass --categorical {name} to read its values as categories."
            )
        count = int(unread.sum())
        if share < 0.5:
            common = values[unread].astype(str).value_counts().index[0]
            parser.error(
                f"--numeric {column!r}: fewer than half of its cells read as numbers "
                f"({_under_half(share)}); {count} do not, e.g. {common!r}. Leave the column out of --numeric (pass --categorical "
                f"{name} to read its values as categories), or, if such cells mean a missing "
                f"value, pass {shlex.quote(f'--na-values={common}')}."
            )
        frame[column] = numbers
        example = values[unread].astype(str).iloc[0] if count else None
        args.declared_numbers[column] = (count, example)
        if count:
            total = count + int(numbers.notna().sum())
            what = "is not a number" if count == 1 else "are not numbers"
            print(
                f"note: column {column!r} read as numbers (--numeric): {count} of its {total} "
                f"cells {what}, read as missing, e.g. {example!r}.",
                file=sys.stderr,
            )
    return frame


def _keep_leading_zero_codes(args, frame, sep):
    """Feature columns that pandas read as numbers but whose cells, as written, hold a number
    with a leading zero and no fraction (``"02139"``; not ``"0"``, ``"0.5"`` nor ``"000949.51"``)
    are kept as the text codes they
    are (ZIP codes, account numbers), as the text reader keeps them; pandas would read
    ``"02139"`` as 2139, silently. A note names each column with an example. ``--categorical``
    columns are read as text already; ``args.leading_zero_codes`` keeps the others, read as
    categories."""
    import pandas as pd

    args.leading_zero_codes = []
    numeric = [
        c
        for c in dict.fromkeys(args.features or ())
        if c in frame.columns
        and c not in args.categorical
        and c not in args.numeric
        and c not in (args.score, args.label)
        and pd.api.types.is_numeric_dtype(frame[c].dtype)
        and not pd.api.types.is_bool_dtype(frame[c].dtype)
    ]
    if not numeric:
        return frame
    missing = {} if args.na_values is None else {"na_values": list(args.na_values)}
    raw = pd.read_csv(
        args.data, sep=sep, usecols=numeric, dtype=str, encoding=args.encoding, **missing
    )
    for column in numeric:
        written = raw[column].str.strip()
        coded = written.str.match(r"[-+]?0\d+$", na=False)  # codes have no fraction
        if not coded.any():
            continue
        frame[column] = written.to_numpy()
        args.leading_zero_codes.append(column)
        example = written[coded].iloc[0]
        print(
            f"note: column {column!r} holds numbers with a leading zero, e.g. {example!r}: "
            f"read as codes (categories), as written (pandas would read "
            f"{_plain(pd.to_numeric(example))!r}). Pass "
            f"--categorical {shlex.quote(str(column))} to say they are codes, or "
            f"--numeric {shlex.quote(str(column))} to read them as numbers (an hour '07', a "
            "month '01').",
            file=sys.stderr,
        )
    return frame


def _read_numbers_written_as_text(args, frame):
    """Feature columns of text that :func:`_text_numbers` reads as numbers (``"$94,901"``,
    ``"88.5%"``, ``"(1,234)"``) are read so, cells that are not numbers as missing, and the
    score when every cell of it reads; a note names each column with an example of its
    reading, and ``args.read_as_numbers`` keeps it for the report. A percentage keeps its
    printed scale; with ``--decimal ','`` a dot separates thousands and the comma is the
    decimal mark. A feature left as text although most of its cells read (half or more) is
    named in a note too, with the share read and a cell that did not. ``--categorical``
    columns are left as categories, and so are the label (its two values are labels whatever
    they are written as) and the groups (identifiers).
    ``args.written_as_text`` keeps the features as written, for :func:`unsafe_columns` to
    tell record numbers (``"10,295"``) from measurements."""
    import pandas as pd

    args.read_as_numbers = {}
    args.written_as_text = {}
    features = [c for c in dict.fromkeys(args.features or ()) if c not in args.categorical]
    for column in dict.fromkeys([*features, args.score]):
        if column not in frame or column == args.label:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype):  # booleans included
            continue
        numbers, share, unread = _text_number_reading(values, args.decimal)
        is_score = column == args.score
        if numbers is not None and share < 0.95:
            if not is_score and share >= 0.5:
                _note_nearly_numbers(column, values, numbers, unread, share)
            continue
        if numbers is None:
            if not is_score:
                _note_leading_zero_text(args, column, values)
            continue
        if is_score and unread.any():
            # refused with a cell that is not a number quoted (_check_score), not one that is
            frame[column] = numbers.astype(object).where(~unread, values)
            continue
        reading = _numbers_from_text_reading(values, numbers, unread)
        if not is_score:
            args.written_as_text[column] = values
        frame[column] = numbers
        args.read_as_numbers[column] = reading
        name = f"--score {column!r}" if is_score else f"column {column!r}"
        advice = (
            ""
            if is_score
            else f" Pass --categorical {shlex.quote(str(column))} to read its values as categories."
        )
        print(f"note: {name} read as numbers: {reading}.{advice}", file=sys.stderr)
    return frame


def _note_leading_zero_text(args, column, values):
    """A note naming a feature of text kept as codes because a whole number in it is written
    with a leading zero (``"07"``, ``"$0042"``) although it would read as numbers otherwise,
    with the options that say which it is."""
    numbers, share, _ = _text_number_reading(values, args.decimal, codes=False)
    if numbers is None or share < 0.95:
        return
    # read as the categories the note says (the library would read text of digits as numbers,
    # and refuse a stray cell of text among them later)
    codes = getattr(args, "leading_zero_codes", None)
    if codes is None:
        codes = args.leading_zero_codes = []
    if column not in codes:
        codes.append(column)
    written = values[numbers.notna()].astype(str).str.strip()
    example = written[written.str.contains(r"(?<![\d.,])0\d", regex=True)]
    example = example.iloc[0] if len(example) else written.iloc[0]
    name = shlex.quote(str(column))
    print(
        f"note: column {column!r} holds numbers with a leading zero, e.g. {example!r}: read "
        f"as codes (categories), as written. Pass --categorical {name} to say they are codes, "
        f"or --numeric {name} to read them as numbers (an hour '07', a month '01').",
        file=sys.stderr,
    )


def _note_nearly_numbers(column, values, numbers, unread, share):
    """A note naming a feature left as text although most of its cells read as numbers: the
    share read, an example of each kind and the options that would read it."""
    cells = values[unread].astype(str)
    common = cells.value_counts().index[0]
    read = numbers.notna()
    example = values[read].astype(str).iloc[0]
    print(
        f"note: column {column!r} is left as text, categories: {share:.0%} of its cells read "
        f"as numbers (e.g. {example!r} is {numbers[read].iloc[0]:.15g}), not 95%; "
        f"{int(unread.sum())} do not, e.g. {common!r}. If such cells mean a missing value, "
        f"pass {shlex.quote(f'--na-values={common}')} to read the column as numbers; pass "
        f"--categorical {shlex.quote(str(column))} to keep it as categories without this note.",
        file=sys.stderr,
    )


def _numbers_from_text_reading(values, numbers, unread):
    """How a column of text was read as numbers, by example: ``'$94,901' is 94901``, an
    accounting negative, a percentage's scale, and the cells read as missing."""
    import pandas as pd

    read = numbers.notna()
    written = values[read].astype(str).str.strip()
    plain = pd.to_numeric(written, errors="coerce").notna()
    negative = written.str.startswith("(")
    zero = written.str.fullmatch(_ACCOUNTING_ZERO) & (numbers[read] == 0)
    decorated = written[~plain & ~negative & ~zero]
    shown = decorated if len(decorated) else written[~negative & ~zero]
    examples = [] if shown.empty else [shown.index[0]]
    if negative.any():
        examples.append(written.index[negative.to_numpy()][0])
    parts = [f"{written[i]!r} is {numbers[i]:.15g}" for i in examples]
    if negative.any():
        parts[-1] += ", an accounting negative"
    text = "; ".join(parts)
    if written.str.contains("%", regex=False).any():  # then every cell read has one
        example = numbers[examples[0]]
        text += f" (percentages keep their printed scale: {example:.15g}, not {example / 100:.15g})"
    if zero.any():
        count = int(zero.sum())
        cells = "1 cell" if count == 1 else f"{count} cells"
        text += (
            f"; {cells} of a dash alone, e.g. {written[zero].iloc[0]!r}, read as 0 (a "
            "spreadsheet's accounting zero)"
        )
    if unread.any():
        cells = values[unread].astype(str)
        count = int(unread.sum())
        what = (
            "1 cell that is not a number" if count == 1 else f"{count} cells that are not numbers"
        )
        text += f"; {what} read as missing, e.g. {cells.iloc[0]!r}"
    return text


# pandas' default texts of a missing value (pandas.read_csv's na_values), an empty cell aside
_DEFAULT_NA_TEXTS = frozenset(
    "#N/A,#N/A N/A,#NA,-1.#IND,-1.#QNAN,-NaN,-nan,1.#IND,1.#QNAN,<NA>,N/A,NA,NULL,NaN,None,"
    "n/a,nan,null".split(",")
)
# missing everywhere: no category is written so (and --na-values could not name them, being
# options to argparse)
_ALWAYS_MISSING = frozenset({"-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"})


def _keep_written_categories(args, frame, sep):
    """Feature columns of text keep cells such as ``NA`` or ``None`` as the categories they may
    be (North America, no prior offence): pandas reads them as missing everywhere. Columns of
    numbers or yes/no values keep pandas' reading (``NA`` there is a missing value), unless
    declared ``--categorical``; the score, the label and the groups keep it too. A note names
    what was kept."""
    import pandas as pd

    text = [
        c
        for c in dict.fromkeys(args.features or ())
        if c in frame.columns
        and (c in args.categorical or not pd.api.types.is_numeric_dtype(frame[c].dtype))
        and frame[c].isna().any()
    ]
    if not text:
        return frame
    raw = pd.read_csv(
        args.data,
        sep=sep,
        usecols=text,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        encoding=args.encoding,
    )
    meant_missing = _DEFAULT_NA_TEXTS - _ALWAYS_MISSING - set(args.na_values or ())
    for column in text:
        written = raw[column]
        kept = written.isin(meant_missing) & frame[column].isna().to_numpy()
        if not kept.any():
            continue
        others = written[~kept].dropna().str.strip()
        if column not in args.categorical and (others.empty or _numbers_or_yes_no(others)):
            continue  # TRUE/FALSE/NA as R writes a yes/no column, or numbers: NA is missing
        counts = written[kept].value_counts()
        listed = ", ".join(f"{value!r} ({n} rows)" for value, n in counts.items())
        frame[column] = frame[column].astype(object).where(~kept.to_numpy(), written)
        print(
            f"note: column {column!r} holds {listed}, read as written, a category of its own "
            "(pandas would read it as missing); pass "
            f"{' '.join(shlex.quote(f'--na-values={v}') for v in counts.index)} to read it as "
            "missing.",
            file=sys.stderr,
        )
    return frame


_YES_NO_TEXTS = frozenset({"true", "false", "yes", "no"})


def _numbers_or_yes_no(cells) -> bool:
    """Whether every text cell is a number (as Python's ``float`` reads it), true/false or
    yes/no (any case)."""
    from sklearn_distill._data import _text_number

    return all(
        cell.lower() in _YES_NO_TEXTS or _text_number(cell) is not None for cell in cells.unique()
    )


# a first group without a leading zero: 0.125 or 030.123 are not numbers written in thousands
_DOTTED_THOUSANDS = r"[-+]?[1-9]\d{0,2}(\.\d{3})+(,\d*)?"
_NUMBER_WITH_COMMA = r"[-+]?(\d+(,\d*)?|,\d+)"


def _read_dotted_thousands(args, parser, frame):
    """With ``--decimal ','``, a feature or score column of text whose every cell is a number
    written with a dot between thousands (``12.500``) or without a dot (``950``, ``1,5``) is
    read as numbers, with a note; pandas leaves it as text, which the audit would read as 12.5
    beside 950. A column holding such numbers beside other dotted ones (``12.5``) is refused;
    columns without any (dates such as ``31.12.2023``, ``0.125``) are left as they are, and so
    are ``--categorical`` columns and the groups (identifiers are labels)."""
    import pandas as pd

    numeric = [c for c in dict.fromkeys([*(args.features or ()), args.score]) if c in frame]
    for column in numeric:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype) or column in args.categorical:
            continue
        written = values.dropna()
        if written.empty or not all(isinstance(v, str) for v in written):
            continue
        written = written.str.strip()
        dotted = written.str.contains(".", regex=False)
        if not dotted.any() or not written.str.fullmatch(r"[-+]?[\d.,]+").all():
            continue
        grouped = written.str.fullmatch(_DOTTED_THOUSANDS)
        if not grouped.any():
            continue
        readable = grouped | (~dotted & written.str.fullmatch(_NUMBER_WITH_COMMA))
        if not readable.all():
            parser.error(
                f"column {column!r} holds numbers written with a dot between thousands, e.g. "
                f"{written[grouped].iloc[0]!r}, beside other dotted ones, e.g. "
                f"{written[~readable].iloc[0]!r}, in a file read with --decimal ',': write the "
                "column in one convention."
            )
        numbers = pd.to_numeric(
            written.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        )
        frame[column] = numbers.reindex(values.index)  # missing cells stay missing
        print(
            f"note: column {column!r} read as numbers with '.' between thousands, as "
            f"--decimal ',' implies ({written[grouped].iloc[0]!r} is "
            f"{numbers[grouped].iloc[0]:.15g}).",
            file=sys.stderr,
        )
    return frame


def _check_score(args, parser, frame, n_dropped):
    """The score as floats; refuses cells that are not numbers, quoting one, and a constant
    score (before any check that reads the score, such as the leak check)."""
    import numpy as np
    import pandas as pd

    raw = frame[args.score]
    score = pd.to_numeric(raw, errors="coerce")
    bad = ~np.isfinite(score.to_numpy(float))
    if bad.any():
        first = int(np.argmax(bad))
        value = _plain(raw.iloc[first])
        row = frame.index[first]
        hint = ""
        if str(value).strip().endswith("%"):
            hint = " Write percentages as plain numbers (1.2, not 1.2%)."
        elif re.fullmatch(r"[-+]?\d*,\d+", str(value).strip()) and args.decimal != ",":
            hint = " For numbers written with a decimal comma, pass --decimal ','."
        line = _line_of_row(args, row)
        where = f"line {line} of {args.data!r}" if line is not None else f"in {args.data!r}"
        parser.error(
            f"--score {args.score!r} holds values that are not numbers: {int(bad.sum())} of "
            f"{len(raw)} rows, e.g. {value!r} in data row {row + 1} ({where}).{hint}"
        )
    if score.nunique() < 2:
        where = "row that has a label" if n_dropped else "row"
        parser.error(
            f"--score {args.score!r} is constant: it holds {score.iloc[0]:g} on "
            f"every {where}, and a score that does not vary gives a mimic nothing to read."
        )
    return score.to_numpy(float)


def _check_score_scale(args, parser, score):
    """Refuse a score the audit would read on the wrong scale, before any work. With
    --calibration none, a score read as log-odds (--response auto, or decision_function, a
    margin: for one column both mimic it as given) that plainly is not: one in [0, 1] (a
    probability, most likely); with --response auto also one of few whole-number values (a
    grade, a decile) or one far beyond log-odds (``score_unlike_log_odds``), which
    --response decision_function declares log-odds all the same; the library only warns.
    --response predict says "as given" and is let through (the findings then say the score's
    own scale). And one outside [0, 1] read as a probability (--response predict_proba)."""
    import numpy as np

    from sklearn_distill.audit import score_unlike_log_odds

    low, high = float(np.min(score)), float(np.max(score))
    in_unit = low >= 0 and high <= 1
    span = f"{low:g} to {high:g}"
    if args.response == "predict_proba" and not in_unit:
        parser.error(
            f"--response predict_proba reads --score {args.score!r} as a probability of the "
            f"outcome event, which lies in [0, 1]; the score runs from {span}. Write a "
            "percentage as a probability (0.25 for 25%); for a score on another scale leave "
            "--response out (a calibration maps it to probabilities)."
        )
    if args.calibration != "none" or args.response not in ("auto", "decision_function"):
        return
    read = (
        "--calibration none mimics the score as given, as log-odds of the outcome event"
        if args.response == "auto"
        else "--response decision_function with --calibration none reads the score as a "
        "margin, log-odds of the outcome event, and mimics it as given"
    )
    if in_unit:
        parser.error(
            f"--score {args.score!r} lies in [0, 1] ({span}), as a probability does, and {read}: "
            "a probability would be compared with the outcome model on the wrong scale, and "
            "the findings would read the mimic's R^2 as one of log-odds. Say how to read it: "
            "--response predict_proba for a probability of the event (--event names it), read "
            "as its log-odds; --response predict to mimic it as given (a score that is a "
            "log-odds already); or leave out --calibration (isotonic, the default, maps the "
            "score to probabilities of the event from the data)."
        )
    # --response decision_function says the score is a margin, log-odds: taken at its word
    reason = score_unlike_log_odds(score) if args.response == "auto" else None
    if reason is not None:
        parser.error(
            f"--score {args.score!r} looks unlike log-odds: its values {reason}. {read}, so "
            "the mimic would be compared with the outcome model on the wrong scale, and the "
            "findings would read its R^2 and differences as log-odds. Leave out --calibration "
            "(isotonic, the default, maps the score to probabilities of the event from the "
            "data); pass --response decision_function if the score is log-odds all the same "
            "(a points score of log-odds, a nearly separable model's margin); or --response "
            "predict to mimic it as given, on its own scale."
        )


def _check_features_finite(args, parser, frame, features):
    """Refuse a feature of numbers holding an infinite one (``inf`` written in the file),
    quoting a cell and its line, before any work: a missing value is an empty cell."""
    import numpy as np
    import pandas as pd

    for column in features:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            continue
        infinite = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
        if infinite.any():
            first = int(np.argmax(infinite))
            row = frame.index[first]
            line = _line_of_row(args, row)
            where = f"line {line} of {args.data!r}" if line is not None else f"in {args.data!r}"
            parser.error(
                f"--features {column!r} holds infinite values: {int(infinite.sum())} of "
                f"{len(values)} rows, e.g. {_plain(values.iloc[first])!r} in data row {row + 1} "
                f"({where}). Leave a missing value's cell empty, or write the number it stands "
                "for."
            )


def _label_values(column):
    """The label's distinct values, sorted as the audit sorts them."""
    import numpy as np

    values = column.unique()
    try:
        return [_plain(v) for v in np.unique(values)]
    except TypeError:  # mixed types
        return sorted((_plain(v) for v in values), key=str)


def _choose_event(args, parser, values):
    """The event (``--event``, or the second of the two values) and the other value."""
    listed = ", ".join(map(repr, values[:5])) + (", ..." if len(values) > 5 else "")
    if len(values) != 2:
        parser.error(
            f"--label {args.label!r} must hold a binary outcome (two values); got "
            f"{len(values)}: {listed}."
        )
    if args.event is None:
        return values[1], values[0]
    given = args.event.strip()

    def numeric(value):
        try:
            return not isinstance(value, bool | str) and float(value) == float(given)
        except (TypeError, ValueError):
            return False

    for same in (
        lambda value: str(value) == args.event,
        lambda value: str(value).lower() == given.lower(),
        numeric,
    ):
        matches = [i for i, value in enumerate(values) if same(value)]
        if len(matches) == 1:
            return values[matches[0]], values[1 - matches[0]]
    parser.error(
        f"--event must be one of the two values of --label {args.label!r}: "
        f"{' or '.join(map(repr, values))}; got {args.event!r}."
    )


@dataclass
class _AuditData:
    """The audit's inputs as read from the file, and what a reader must know about them."""

    X: object
    #: 1 where the label is the event, else 0
    y: object
    score: object
    groups: object
    event: object
    other: object
    n_read: int
    n_dropped: int
    #: named features that look unsafe: name -> reason
    unsafe: dict
    #: columns of text read as numbers: name -> how, by example
    read_as_numbers: dict


def _read_audit_data(args, parser, say):
    if args.score == args.label:
        parser.error(
            f"--score and --label must be different columns; got {args.score!r} for both: "
            "the label given as the score is the outcome itself (leakage), not a black box's "
            "score to audit."
        )
    both = [c for c in dict.fromkeys(args.numeric) if c in args.categorical]
    if both:
        parser.error(
            f"--numeric and --categorical both name {', '.join(map(repr, both))}: a column is "
            "read as numbers or as categories, not both; name it in one of them."
        )
    roles = {args.score: "--score", args.label: "--label", args.groups: "--groups"}
    taken = [c for c in dict.fromkeys(args.numeric) if c in roles]
    if taken:
        parser.error(
            "--numeric must name feature columns, not the score, the label or the groups; got "
            + ", ".join(f"{c!r} ({roles[c]})" for c in taken)
            + "."
        )
    frame = _read_csv(args, parser)
    named = [("--score", args.score), ("--label", args.label)]
    if args.groups is not None:
        named.append(("--groups", args.groups))
    for option, column in named:
        if column not in frame.columns:
            parser.error(_unknown_columns_message(option, [column], frame, args.data))
    n_read = len(frame)
    keep = frame[[args.score, args.label]].notna().all(axis=1)
    n_dropped = int((~keep).sum())
    if n_dropped:
        say(f"dropping {n_dropped} rows with a missing score or label")
        frame = frame[keep]
    if frame.empty:
        parser.error(
            f"{args.data!r} holds no row to audit: "
            + (
                "it has a header and no data rows."
                if n_read == 0
                else f"each of its {n_read} rows misses --score {args.score!r} or --label "
                f"{args.label!r}."
            )
        )
    # the score and the label first: the column checks below read both
    score = _check_score(args, parser, frame, n_dropped)
    labels = frame[args.label]
    if labels.dtype.kind == "f" and (labels % 1 == 0).all():
        labels = labels.astype("int64")  # 0/1 read as 0.0/1.0 beside a blank cell
    event, other = _choose_event(args, parser, _label_values(labels))
    if not args.features:
        parser.error(_features_required_message(args, frame, args.prog))
    _check_score_scale(args, parser, score)
    # a column named like an option ("--quiet") given after --features is read as that option:
    # the audit would run without it, silently
    # (one given as --features=NAME is among the features, and the word is the option's)
    # Only where a column could have been meant: an option given elsewhere, or as --cv=2, is
    # the option's, and a file's column cannot take it away
    typed = list(getattr(args, "argv", ()))
    named = {str(c) for c in frame.columns if read_as_an_option(str(c))} - set(args.features)
    option_like, as_options, listed = _options_meant_as_columns(typed, named, parser)
    if option_like:
        # with the values the options took that are columns ("group" of "--categorical
        # group"): had the option been meant as a column, they were meant as features too
        columns = {str(c) for c in frame.columns}
        listed = [w for w in listed if w in option_like or w in columns]
        meant = typed_back("--features", dict.fromkeys([*args.features, *listed]))
        options = " and ".join(option_like)
        either = "the option" if len(option_like) == 1 else "the options"
        command = shlex.join(as_options)
        parser.error(
            f"columns {', '.join(map(repr, option_like))} of {args.data} are named like options, "
            "and the command line reads them as options, not as --features: give each feature "
            f"as --features=NAME ({meant}), or rename them in the file. If you meant {either} "
            f"{options}, give {'it' if len(option_like) == 1 else 'them'} where no column is "
            f"meant, after '=' or before --features: {args.prog} {command}"
        )
    features = list(dict.fromkeys(args.features))
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        parser.error(_unknown_columns_message("--features", unknown, frame, args.data))
    clash = {args.score, args.label, args.groups} & set(features)
    if clash:
        parser.error(
            f"--features must not include the score, the label or the groups: {sorted(clash)}"
        )
    if args.groups is not None and args.groups in (args.score, args.label):
        parser.error("--groups must be a column other than the score and the label")
    for option, named in (("--categorical", args.categorical), ("--numeric", args.numeric)):
        absent = [c for c in dict.fromkeys(named) if c not in frame.columns]
        if absent:
            parser.error(_unknown_columns_message(option, absent, frame, args.data))
        outside = [c for c in dict.fromkeys(named) if c not in features]
        if outside:
            parser.error(
                f"{option} must name columns of --features; got "
                f"{', '.join(map(repr, outside))}, not among them."
            )
    _check_features_finite(args, parser, frame, features)
    # the checks read the features as written: "10,295" on every row is an identifier, read
    # as numbers or not
    written = getattr(args, "written_as_text", {})
    checked = frame.copy() if written else frame
    for name, values in written.items():
        checked[name] = values.loc[frame.index]
    groups = None
    if args.groups is not None:
        # identifiers as written, less the spaces around them (" 7" is record 7)
        identifiers = frame[args.groups].str.strip()
        identifiers = identifiers.mask(identifiers == "")
        missing = identifiers.isna().to_numpy()
        if missing.any():
            row = frame.index[int(missing.argmax())]
            line = _line_of_row(args, row)
            where = f"line {line} of {args.data!r}" if line is not None else f"in {args.data!r}"
            parser.error(
                f"--groups {args.groups!r} has missing record identifiers: {int(missing.sum())} "
                f"of {len(missing)} rows, e.g. data row {row + 1} ({where}). Give each row its "
                "record's identifier (a row of its own a new one), or leave --groups out."
            )
        groups = identifiers.to_numpy()
    # the checks' folds keep each record's rows together
    reasons = unsafe_columns(
        checked, features, args.score, args.label, args.categorical, args.decimal, groups
    )
    if reasons:
        # a warning, not a refusal: the user named these columns
        print(
            "warning: --features includes columns that look unsafe:\n" + _describe_unsafe(reasons),
            file=sys.stderr,
        )
    X = frame[features]
    # declared categories, and codes written with a leading zero: the library gives no advice
    # to read them as numbers
    codes = [*args.categorical, *getattr(args, "leading_zero_codes", ())]
    if codes:
        X = X.astype(dict.fromkeys(codes, "category"))
    return _AuditData(
        X=X,
        y=(labels == event).to_numpy(int),
        score=score,
        groups=groups,
        event=event,
        other=other,
        n_read=n_read,
        n_dropped=n_dropped,
        unsafe=reasons,
        read_as_numbers=getattr(args, "read_as_numbers", {}),
    )


# ---------------------------------------------------------------------------- warnings
def _settings_in_option_terms(text):
    """The library's ``calibration='spline'`` (and ``'isotonic' or 'spline'``, ``'isotonic',
    'spline' or 'sigmoid'`` lists) as the command line's ``--calibration spline``, and its
    ``response='predict_proba'`` as ``--response predict_proba``."""
    text = re.sub(
        r"calibration='(\w+)'((?:(?:,| or) '\w+')*)",
        lambda m: "--calibration " + m[1] + re.sub(r"'(\w+)'", r"\1", m[2]),
        text,
    )
    text = re.sub(r"\bresponse='(\w+)'", r"--response \1", text)
    text = text.replace("Lower cv,", "Lower --cv,")
    return text.replace("calibration=None", "--calibration none")


def _scores_in_option_terms(text, score):
    """The library's ``teacher_scores`` (the argument a Python user passes) as the command
    line's ``--score COL``; the advice to check their row order, which a file's column cannot
    get wrong, as advice to check the column itself."""
    if score is None:
        return text
    text = text.replace(
        "Check that teacher_scores are in X's row order and that X holds what the black box was "
        "given.",
        f"Check that --score {score!r} is the black box's score of these rows and that "
        "--features hold what the black box was given.",
    )
    return re.sub(r"\bteacher_scores\b", f"--score {score!r}", text)


def _error_in_option_terms(args, data, text):
    """A library error in the command line's terms, with the rows left out when some were."""
    text = _settings_in_option_terms(text)
    text = _scores_in_option_terms(text, args.score)
    text = re.sub(r"^groups ", f"--groups {args.groups!r}: ", text)
    text = re.sub(r"^y has ", f"--label {args.label!r} has ", text)
    # the audit's cv=5 is the command line's --cv 5
    text = re.sub(r"\bcv=(\d+)", r"--cv \1", text)
    text = re.sub(r"rows; X has (\d+) sample\(s\)\.", r"rows to audit; got \1.", text)
    if data is not None and data.n_dropped:
        text += (
            f" ({data.n_dropped} of {data.n_read} rows were left out for a missing score or label.)"
        )
    return text


class _WarningPrinter:
    """Shows the library's warnings to a command-line user (``warnings.showwarning``): each
    once, as ``warning: ...`` without the source line, with the Python API's advice put in
    the command line's terms (``--groups COL``, not ``fit(..., groups=...)``)."""

    def __init__(self, label, score=None):
        self.label = label
        self.score = score
        self.event = None
        self.other = None
        self.seen = set()

    def rephrase(self, text):
        from sklearn_distill.report import in_feature_terms

        text = text.replace(
            "pass fit(..., groups=record_ids)", "pass --groups COL (a column of record identifiers)"
        )
        text = _settings_in_option_terms(text)
        text = _scores_in_option_terms(text, self.score)
        # X and compare() are the Python API's: the command line's are --features and the audit
        text = text.replace(
            "X holds strongly correlated features", "--features hold strongly correlated features"
        )
        text = text.replace("so compare() may flag", "so the audit may flag")
        text = text.replace(
            "'sigmoid' assumes the score", "--calibration sigmoid assumes the score"
        )
        text = re.sub(r"\bn_bootstrap=(\d+) resamples", r"--n-bootstrap \1 resamples", text)
        text = text.replace(
            "resamples (n_bootstrap; on the command line --n-bootstrap)", "resamples"
        )
        text = text.replace(
            "If the score falls by design, negate it before the audit.",
            "If the score falls by design, write its negation in the file and pass that column "
            "as --score.",
        )
        text = re.sub(
            r"^X columns (\[.*\]) have no value on any row: they carry nothing to model; drop "
            r"them\.",
            r"--features \1 have no value on any row: they carry nothing to model; leave them "
            r"out of --features.",
            text,
        )
        # the data are the file's columns given as --features: "Feature 'age'", as the report
        # says, not the Python API's "X column 'age'" (nor a teacher, which the command line
        # has none of: its score is a column)
        text = in_feature_terms(text, "The file has column names")
        text = text.replace("; the teacher is given them as they are.", ".")
        # the library's advice to call pandas is the file's to follow on the command line
        text = text.replace(
            "Convert the column to numbers (a decimal comma to a point, cells that are not "
            "numbers to missing; e.g. with pandas.to_numeric) before fitting.",
            "Pass --numeric COL to read it as numbers (cells that do not read become missing, "
            "counted in a note), write the column as plain numbers in the file (--decimal ',' "
            "reads decimal commas), or leave it out of --features.",
        )
        text = text.replace(
            "If it holds numbers, convert it to numbers before fitting; if it is an identifier "
            "(a name, a record number), drop it.",
            "If it holds numbers, pass --numeric COL to read them as numbers; if it is an "
            "identifier (a name, a record number), leave it out of --features.",
        )
        text = text.replace(
            "Give a column the 'category' dtype to read its values as labels.",
            "Pass --categorical COL to read a column's values as labels.",
        )
        text = text.replace(
            "Normalise them (e.g. X[col].str.normalize('NFKC').str.split().str.join(' ')) if "
            "they are the same category.",
            "Write them alike in the file if they are the same category.",
        )
        # the report's values too thin to test: the options that make them testable
        text = text.replace(
            "Fit the audit with student=/outcome= Explainable Boosting models of fewer "
            "max_bins, or lower min_weight (on the command line: --max-bins N, --min-weight W).",
            "Run the audit again with a smaller --max-bins N (fewer bins per continuous "
            "feature, so more rows in each) or a lower --min-weight W.",
        )
        text = re.sub(
            r"\bfewer than min_weight=(\S+) rows", r"fewer than --min-weight \1 rows", text
        )
        if self.event is not None:
            # the audit is given 1 for the event: name the label's own values, and the option
            # that chooses the event
            named = f"{self.label} = {self.event!r}"
            text = re.sub(
                r"\bof y = 1 \(classes_\[1\], the second of y's sorted labels\)",
                f"of {named} (the outcome event)",
                text,
            )
            if self.other is not None:
                text = text.replace(
                    "If it scores 0, ", f"If it scores {self.label} = {self.other!r}, "
                )
                text = text.replace(
                    "pass y == 0 as y (the score's event as True)",
                    f"pass --event {shlex.quote(str(self.other))}",
                )
            text = text.replace("P(y = 1)", f"P({named})")
            text = text.replace("rank correlation with y)", "rank correlation with the event)")
        return text

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        text = self.rephrase(str(message))
        if text in self.seen:
            return
        self.seen.add(text)
        kind = "" if category is UserWarning else f" ({category.__name__})"
        print(f"warning{kind}: {text}", file=sys.stderr if file is None else file, flush=True)


# ---------------------------------------------------------------------------- the audit
def _audit(args, parser):
    start = time.perf_counter()

    def say(message):
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    _check_out(args, parser)
    _check_numbers(args, parser)
    with warnings.catch_warnings():
        printer = _WarningPrinter(args.label, args.score)
        warnings.showwarning = printer
        return _run_audit(args, parser, say, printer)


def _run_audit(args, parser, say, printer):
    from sklearn_distill.audit import CompareAudit
    from sklearn_distill.report import quiet_compare, write_audit_report
    from sklearn_distill.tree import DistilledTree

    say(f"reading {args.data}")
    data = _read_audit_data(args, parser, say)
    printer.event, printer.other = data.event, data.other
    X, y, score, groups = data.X, data.y, data.score, data.groups
    say(f"{len(X)} rows; features: {', '.join(map(str, X.columns))}")
    models = {}
    if args.max_bins is not None:
        from sklearn_distill._defaults import default_mimic_student, default_outcome_model

        # the audit's default models with other bins (both alike, so their shapes line up)
        models = {
            "student": default_mimic_student().set_params(max_bins=args.max_bins),
            "outcome": default_outcome_model().set_params(max_bins=args.max_bins),
        }
    audit = CompareAudit(
        response=args.response,
        calibration=None if args.calibration == "none" else args.calibration,
        min_weight=args.min_weight,
        cv=args.cv,
        confidence=args.confidence,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
        **models,
    )
    rule_tree = rule_fidelity = None
    try:
        audit.fit(X, y, teacher_scores=score, groups=groups)
        test = audit.missing_feature_test(n_bootstrap=args.n_bootstrap)
        if args.stability:
            # the bootstrap resamples whole records, as the cross-fitting keeps them whole
            audit.stability(X, y, teacher_scores=score, groups=groups, n_refits=args.stability)
        if args.rules:
            say(f"reading the score as {args.rules} rules")
            rule_tree = DistilledTree(
                response=audit.response,
                calibration=audit.calibration,
                max_leaf_nodes=args.rules,
                random_state=args.random_state,
                cv=args.cv,
            )
            # the score calibrated in the direction the audit decided on its rows: the tree's
            # own reading of them can differ (a probability's log-odds, clipped, tie values the
            # audit told apart). Both read the event as y's 1, so it is the audit's.
            rule_tree._calibration_sign = getattr(audit, "_score_sign_", None)
            # and its calibration folds keep each record's rows together, as the audit's do
            calibrated = rule_tree.calibration is not None
            rule_tree.fit(X, y, teacher_scores=score, groups=groups if calibrated else None)
            rule_fidelity = rule_tree.fidelity(X, score)
    except (ValueError, TypeError) as error:
        parser.error(_error_in_option_terms(args, data, str(error)))
    comparison = quiet_compare(audit)
    say(f"writing {args.out}")
    description = {"data": args.data, "score column": args.score, "label column": args.label}
    description["rows"] = _rows_text(data)  # replaces the report's own count
    if data.unsafe:
        description["features that look unsafe"] = "; ".join(
            f"{name}: {reason}" for name, reason in data.unsafe.items()
        )
    # the options that change what is fitted, beside the report's own settings; those of how
    # the file and the score were read as a shell takes them (--sep ';', not --sep ;)
    read = {
        "field separator (--sep)": (args.sep, ","),
        "decimal mark (--decimal)": (args.decimal, "."),
        "text encoding (--encoding)": (args.encoding, "utf-8"),
        "how the score is read (--response)": (args.response, "auto"),
    }
    for key, (value, default) in read.items():
        if value != default:
            description[key] = shlex.quote(value)
    # the columns and texts named, each as a shell takes it ('loan amount', not loan amount;
    # the features are the report's own setting, written so under their option)
    if args.na_values:
        description["missing-value texts (--na-values)"] = typed_back("--na-values", args.na_values)
    if args.groups is not None:
        description["record identifiers (--groups)"] = typed_back("--groups", [args.groups])
    if args.max_bins is not None:
        description["bins per continuous feature (--max-bins)"] = args.max_bins
    if args.categorical:
        description["read as categories (--categorical)"] = typed_back(
            "--categorical", dict.fromkeys(args.categorical)
        )
    if args.numeric:
        description["read as numbers (--numeric)"] = typed_back(
            "--numeric", dict.fromkeys(args.numeric)
        )
        # the cells that did not read, beside the names typed back, not inside them
        declared = getattr(args, "declared_numbers", {})
        unread = []
        for column in dict.fromkeys(args.numeric):
            count, example = declared.get(column, (0, None))
            if count:
                cells = f"{count} cell{'' if count == 1 else 's'} not a number"
                unread.append(f"{column}: {cells}, read as missing, e.g. {example!r}")
        if unread:
            description["cells not a number in the columns read as numbers"] = "; ".join(unread)
    if data.read_as_numbers:
        description["read as numbers from text"] = "; ".join(
            f"{name}: {reading}" for name, reading in data.read_as_numbers.items()
        )
    # what fit warned of the data, with the remedies the command line offers (its options,
    # the file), as the warnings printed said them
    audit._data_cautions_ = [printer.rephrase(text) for text in audit._data_cautions_]
    # and the report's own remedies (values too thin to test, the black box's probabilities
    # at 0 or 1), with the options' names
    audit._option_terms_ = printer.rephrase
    # and the settings by the options that set them (--min-weight, not min_weight)
    audit._option_names_ = {
        "features": "--features",
        "calibration": "--calibration",
        "cv": "--cv",
        "confidence": "--confidence",
        "random_state": "--random-state",
        "min_weight": "--min-weight",
        "n_bootstrap": "--n-bootstrap",
        "n_refits": "--stability",
        "runs": "--runs",
        **({"event": "--event"} if args.event is not None else {}),
    }
    # and of the calibration map, with the options' names (--calibration spline)
    audit._calibration_cautions_ = [
        printer.rephrase(text) for text in getattr(audit, "_calibration_cautions_", None) or []
    ]
    write_audit_report(
        audit,
        args.out,
        description=description,
        rule_tree=rule_tree,
        rule_fidelity=rule_fidelity,
        event=str(data.event),
        outcome=str(args.label),
        data_notes=_data_notes(args, data, audit),
        runs=args.runs,
    )
    print(_findings_text(audit, test, comparison, _data_lines(args, data, audit), runs=args.runs))
    print(f"\nReport written to {args.out}")
    say("done")
    return 0


def _rows_text(data):
    """The rows audited, and those dropped: ``"784 (16 dropped: missing score or label)"``."""
    rows = str(len(data.X))
    if data.n_dropped:
        rows += f" ({data.n_dropped} dropped: missing score or label)"
    return rows


def _uncalibrated_falling(data, audit):
    """Whether the score falls as the event becomes likelier and is mimicked uncalibrated."""
    from sklearn_distill._calibration import score_direction

    return audit.calibration is None and score_direction(data.score, data.y) < 0


def _data_lines(args, data, audit):
    """The printed lines about the data: the outcome event and how the score was read, the
    rows kept, the named features that look unsafe."""
    from sklearn_distill.report import _calibration_sign, _score_on_own_scale

    named = f"{args.label} = {data.event!r}"
    chosen = "; by default the second in sorted order: --event chooses"
    chosen = "" if args.event is not None else chosen
    line = (
        f"outcome event: {data.event} ({named}, coded 1; {data.other!r} coded 0{chosen}): the "
        f"log-odds below are those of {named}"
    )
    sign = _calibration_sign(audit)
    if sign is not None:
        direction = "rising" if sign > 0 else "falling"
        line += f"; the score was read as {direction} as {named} becomes likelier."
    elif _uncalibrated_falling(data, audit):
        line += (
            f"; the score falls as {named} becomes likelier, and --calibration none mimics it "
            "as given: its shapes run opposite to the outcome model's. Choose a calibration."
        )
    elif audit.mimic_.response_ == "predict_proba":
        line += (
            f"; the score was read as the probability of {named} and mimicked as its log-odds "
            "(--response predict_proba, --calibration none)."
        )
    elif getattr(audit, "_score_in_unit_interval_", False):
        line += (
            "; the score was mimicked as given (--calibration none), on its own scale although "
            "it lies in [0, 1] as a probability does: not as log-odds (see below)."
        )
    elif _score_on_own_scale(audit):
        line += (
            "; the score was mimicked as given (--calibration none, --response predict), on its "
            "own scale: not as log-odds, which its values do not look like (see below)."
        )
    else:
        line += "; the score was mimicked as given (--calibration none)."
    lines = [line, f"rows: {_rows_text(data)}"]
    if data.unsafe:
        lines.append(
            "features that look unsafe, audited as --features names them: "
            + "; ".join(f"{name}: {reason}" for name, reason in data.unsafe.items())
        )
    return lines


def _data_notes(args, data, audit):
    """What a report reader must know about the data: rows left out, unsafe features."""
    notes = []
    if data.n_dropped:
        notes.append(
            f"{data.n_dropped} of {data.n_read} rows were left out: their score or label is "
            "missing. If they are not missing at random (applicants the black box could not "
            "score), the findings hold for the rows kept only."
        )
    if data.unsafe:
        notes.append(
            "Features that look unsafe, audited because --features names them: "
            + "; ".join(f"{name} ({reason})" for name, reason in data.unsafe.items())
            + ". A feature recorded after the outcome, or derived from the score, turns the "
            "findings about it (and the missing-feature test) upside down."
        )
    # a score that falls with the event, mimicked uncalibrated: the report's findings say it
    return notes


def _findings_text(audit, test, comparison, data_lines=(), runs=5):
    """What the audit found, as printed text: the data's lines (the outcome event, the rows),
    the report's findings (the thin features compared on ``runs`` runs of adjacent values,
    none when None), the test's table and the flagged values with the largest
    differences."""
    import textwrap

    import pandas as pd

    from sklearn_distill.report import (
        _block_comparison,
        _nothing_to_correlate,
        _score_on_own_scale,
        audit_findings_text,
        format_p_value,
    )

    # a score in [0, 1] mimicked as given: the mimic's column is on the score's own scale
    unit = "log-odds"
    if _score_on_own_scale(audit):
        unit = "the mimic on the score's own scale, the outcome in log-odds"
    lines = []
    if data_lines:
        lines.append("The audit's data:")
        for line in data_lines:
            # an option stays whole (--min-weight, not "--min-" and "weight" on two lines)
            lines.append(
                textwrap.fill(
                    line,
                    100,
                    initial_indent="  - ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
        lines.append("")
    lines += [
        audit_findings_text(audit, runs=runs),
        "",
        "Missing-feature test (cross-fitted residuals; Pearson's p-value alone: rank correlations "
        "are not zero when nothing is missing, so they are no test of it):",
    ]
    if _nothing_to_correlate(audit, test):
        # no correlation to print (its verdict above says why), not a table of NaN
        lines.append("  none: the test had nothing to correlate (see its verdict above).")
    else:
        shown = test[["estimate", "low", "high"]].round(4)
        shown["p_value"] = [
            format_p_value(p, b) for p, b in zip(test["p_value"], test["n_bootstrap"])
        ]
        lines.append(shown.to_string())
    flagged = comparison[comparison["significant_bh"]]
    if len(flagged):
        top = flagged.reindex(flagged["z"].abs().sort_values(ascending=False).index).head(10)
        top = top.assign(value=top["label"] if "label" in top else top["value"])
        top["p_value_bh"] = [format_p_value(p) for p in top["p_value_bh"]]
        columns = ["term", "value", "mimic", "outcome", "difference", "p_value_bh", "weight"]
        lines.append(f"\nFlagged values with the largest standardised differences ({unit}):")
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            lines.append(top[columns].round(3).to_string(index=False))
    blocks = _block_comparison(audit)
    if blocks is not None and blocks["significant_bh"].any():
        flagged = blocks[blocks["significant_bh"].to_numpy(bool)]
        top = flagged.reindex(flagged["z"].abs().sort_values(ascending=False).index).head(10)
        top = top.assign(block=[" x ".join(map(str, label)) for label in top["label"]])
        top["p_value_bh"] = [format_p_value(p) for p in top["p_value_bh"]]
        columns = ["term", "block", "mimic", "outcome", "difference", "p_value_bh", "weight"]
        lines.append(
            f"\nFlagged interaction blocks with the largest standardised differences ({unit}):"
        )
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            lines.append(top[columns].round(3).to_string(index=False))
    return "\n".join(lines)


def _unrecognised_message(raw, extras, features=()) -> str:
    """argparse's message for arguments no option takes, and, where one of them follows
    ``--features`` and begins with a dash, that it may be a column named like an option (the
    command line reads ``-p`` as an option, and none is called that), with the ``--features``
    to type (``features``: those the parser read)."""
    text = f"unrecognized arguments: {' '.join(extras)}"
    # "--features=--cv group": the form with "=" takes one value, and "group" is left over
    for position, word in enumerate(raw):
        option = word.split("=", 1)[0]
        left = list(
            itertools.takewhile(
                lambda w: w in extras and not read_as_an_option(w), raw[position + 1 :]
            )
        )
        if "=" in word and option in _MANY_VALUES and left:
            meant = option_tokens(option, [word.split("=", 1)[1], *left])
            return text + (
                f". {word} gives {option} that one value, and the words after it are none of "
                f"its values; give them all as {shlex.join(meant)}"
            )
    if "--features" not in raw:
        return text
    after = raw[raw.index("--features") + 1 :]
    if "--" in extras and "--" in after:
        # "--features age -- --cv": no end-of-options marker before columns named like options
        columns = extras[extras.index("--") + 1 :]
        meant = shlex.join(option_tokens("--features", [*dict.fromkeys(features), *columns]))
        return text + (
            ". '--' does not make the words after it columns; a column named like an option "
            f"is given as --features=NAME: type the features as {meant}"
        )
    dashed = [extra for extra in extras if extra.startswith("-") and extra in after]
    if dashed:
        # with the words left over right after each (had it been a column, they would have
        # been features too: "group" in "--features age -p group"), up to an option read
        columns, left = [], list(extras)
        run = False
        for word in after:
            run = word in left and (run or word in dashed)
            if run:
                columns.append(word)
                left.remove(word)
        meant = shlex.join(option_tokens("--features", [*dict.fromkeys(features), *columns]))
        text += (
            f". If {', '.join(map(repr, dashed))} "
            + ("is a column" if len(dashed) == 1 else "are columns")
            + " to audit: the command line reads a name that begins with '-' as an option, "
            f"not as one of --features; give each feature as --features=NAME ({meant}), or "
            "rename the column in the file. Otherwise "
            + ("it is" if len(dashed) == 1 else "they are")
            + " no option of this command (--help lists them; the report's path is --out)."
        )
    return text


def main(argv=None, *, prog=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.
    prog : str, optional
        The program's name in messages; by default as the user typed it
        (``sklearn-distill`` or ``python -m sklearn_distill``).

    Returns
    -------
    int
        Exit status (0 on success; argument errors exit with status 2).
    """
    parser, audit_parser = _parser(prog)
    raw = list(sys.argv[1:] if argv is None else argv)
    audit_parser.raw = raw
    args, extras = parser.parse_known_args(raw)
    if extras:
        (audit_parser if args.command == "audit" else parser).error(
            _unrecognised_message(raw, extras, getattr(args, "features", None) or ())
        )
    args.prog = parser.prog
    args.argv = raw
    if args.command == "audit":
        return _audit(args, audit_parser)
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
