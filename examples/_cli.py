"""Small command-line helpers shared by the example scripts (not part of the library).

The examples run as ``python examples/X.py`` from the repository root, so this module is
imported as ``_cli`` with the examples folder on ``sys.path``. The argparse types below refuse a
bad number while the command line is parsed, so the error names the flag and nothing has run yet.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count of seeds, epochs, rows, images ...)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (a random seed)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {value}")
    return value


def refits(text: str) -> int:
    """An argparse type for ``--stability``: 0 (no refits) or an integer >= 2, as in
    ``python -m sklearn_distill audit``."""
    value = _integer(text)
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"must be 0 (no refits) or an integer >= 2; got {value}")
    return value


def int_at_most(maximum: int):
    """An argparse type: an integer from 1 to ``maximum``."""

    def check(text: str) -> int:
        value = _integer(text)
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be an integer from 1 to {maximum}; got {value}")
        return value

    check.__name__ = f"integer from 1 to {maximum}"
    return check


def fill_defaults(args: argparse.Namespace, defaults: dict) -> argparse.Namespace:
    """Give each option left at ``None`` (not given on the command line) its default.

    Options whose default depends on ``--quick`` are declared with ``default=None``; after
    parsing, this fills in the quick or the normal default, so an explicit flag always wins.
    """
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def output_file(parser, path, flag: str, suffixes=None) -> Path:
    """Check an output file before any work: its suffix (if the script says what it writes),
    that it is not a directory, and that its folder exists or can be created (it is created).
    Refuses with ``parser.error`` naming ``flag``."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        wanted = " or ".join(suffixes)
        parser.error(f"{flag} must be a {wanted} file; got {str(path)!r}")
    if path.is_dir():
        parser.error(f"{flag} must be a file path; got {str(path)!r}, which is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"{flag}: cannot create the folder {str(path.parent)!r} ({error.strerror})")
    if not os.access(path.parent, os.W_OK):
        parser.error(f"{flag}: the folder {str(path.parent)!r} is not writable")
    return path


def output_dir(parser, path, flag: str) -> Path:
    """Create an output folder before any work, or refuse with ``parser.error``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        parser.error(f"{flag} must be a folder; got {str(path)!r}, which is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"{flag}: cannot create the folder {str(path)!r} ({error.strerror})")
    return path


def plural(count: int, word: str) -> str:
    """``1 seed``, ``2 seeds``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def parse_seed(doc: str, what: str, argv=None) -> argparse.Namespace:
    """The command line of an example whose only setting is the seed of its generated
    ``what`` (``--seed``, default 0, the README's run); ``doc`` is its docstring."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help=f"seed of the generated {what} (default: %(default)s, the README's run)",
    )
    return parser.parse_args(argv)
