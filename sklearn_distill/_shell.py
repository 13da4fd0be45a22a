"""Values written as the command line takes them back (for the report's settings and the
commands the command line suggests)."""

from __future__ import annotations

import re
import shlex

__all__ = ["option_tokens", "read_as_an_option", "typed_back"]


def read_as_an_option(text: str) -> bool:
    """Whether the parser may read ``text``, given after an option, as an option of its own: a
    word starting with ``-`` other than ``-`` alone and a negative number (argparse reads those
    two as values); such a value runs only as ``--option=text``."""
    return text.startswith("-") and text != "-" and re.fullmatch(r"-\d*\.?\d+", text) is None


def option_tokens(option: str, values) -> list[str]:
    """The words of ``option`` given ``values``: ``[option, *values]``, or, where the parser
    would read one of them as an option (``--``, ``-x``), ``option=value`` for each (an option
    of several values must then be one that extends its list when given again)."""
    values = [str(value) for value in values]
    if any(read_as_an_option(value) for value in values):
        return [f"{option}={value}" for value in values]
    return [option, *values]


def typed_back(option: str, values) -> str:
    """``values`` of ``option`` as a shell takes them, to type after the option:
    ``"'loan amount' 'a,b'"``; where the parser would read one of them as an option
    (``--``, ``-x``), every value as ``option=value`` (``"--na-values=-- --na-values=NA"``),
    the options included."""
    tokens = option_tokens(option, values)
    return shlex.join(tokens if tokens[0] != option else tokens[1:])
