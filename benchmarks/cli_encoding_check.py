"""Cost of the command line's encoding checks on a large file, beside reading it.

``sklearn-distill audit --encoding latin-1`` (or another ISO 8859 part) first looks for bytes
0x80-0x9F, which such an encoding reads as control characters (``_c1_garbled``), and checks
that the file is not UTF-8 (``_utf8_garbled``); both read the file in pieces of 1 MiB. This
script writes a CSV of about ``--mb`` megabytes of latin-1 text and times, each the best of
``--repeats``:

- ``_c1_garbled`` on the file without such a byte (the common case: it reads the whole file),
  with one at its end (found last, then the whole file decoded as cp1252), and with one in its
  first row;
- ``_utf8_garbled`` on the file (it stops at the first byte that is not UTF-8);
- the search the C1 check ran before, one regular expression for a word around such a byte
  over every piece, on the file without one;
- ``pandas.read_csv`` of the file in latin-1, the reading that follows the checks.

Run: ``PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cli_encoding_check.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

import numpy as np
import pandas as pd

from sklearn_distill.__main__ import _c1_garbled, _utf8_garbled


def _word_regex_scan(path):
    """The search of the C1 check before: a regular expression for a word around a byte
    0x80-0x9F over every piece of the file."""
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            found = re.search(rb"[^\s,;|\"']*[\x80-\x9f][^\s,;|\"']*", piece)
            if found is not None:
                return found.group()
    return None


def _best(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--mb", type=float, default=50.0, help="size of the file (MB)")
    options.add_argument("--repeats", type=int, default=3)
    given = options.parse_args()
    rng = np.random.default_rng(0)
    rows = int(given.mb * 1e6 / 27.2)  # about 27.2 bytes a row
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "age": rng.integers(18, 70, size=rows),
            "text": np.where(rng.uniform(size=rows) < 0.5, "caf\xe9", "na\xefve"),
            "score": rng.normal(size=rows).round(6),
            "label": rng.integers(0, 2, size=rows),
        }
    )
    body = frame.to_csv(index=False).encode("latin-1")
    with tempfile.TemporaryDirectory() as folder:
        plain = os.path.join(folder, "plain.csv")
        at_end = os.path.join(folder, "end.csv")
        at_start = os.path.join(folder, "start.csv")
        with open(plain, "wb") as handle:
            handle.write(body)
        with open(at_end, "wb") as handle:
            handle.write(body + b"-1,30,5\x80,0.5,1\n")
        with open(at_start, "wb") as handle:
            handle.write(body.replace(b"caf\xe9", b"\x93caf\xe9\x94", 1))
        size = os.path.getsize(plain) / 1e6
        read = _best(lambda: pd.read_csv(plain, encoding="latin-1"), given.repeats)
        timings = {
            "C1 check, no such byte": _best(lambda: _c1_garbled(plain, "latin-1"), given.repeats),
            "C1 check, one at the end": _best(
                lambda: _c1_garbled(at_end, "latin-1"), given.repeats
            ),
            "C1 check, one in the first row": _best(
                lambda: _c1_garbled(at_start, "latin-1"), given.repeats
            ),
            "UTF-8 check": _best(lambda: _utf8_garbled(plain, "latin-1"), given.repeats),
            "the word search before, no such byte": _best(
                lambda: _word_regex_scan(plain), given.repeats
            ),
        }
    print(f"file: {size:.1f} MB, {rows} rows; pandas.read_csv: {read:.3f} s")
    for name, seconds in timings.items():
        print(f"{name:40s} {seconds:7.3f} s  {seconds / read:6.3f} of the read")


if __name__ == "__main__":
    main()
