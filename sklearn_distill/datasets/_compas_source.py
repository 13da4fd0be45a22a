"""Build the packaged COMPAS file from ProPublica's compas-scores-two-years.csv.

Run once, from the repository root::

    python -m sklearn_distill.datasets._compas_source PATH/compas-scores-two-years.csv

It applies ProPublica's filter, derives the length of stay and writes only the columns the
library needs to ``sklearn_distill/datasets/data/compas.csv.gz``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sklearn_distill.datasets._compas import FEATURES

COLUMNS = [*FEATURES, "decile_score", "two_year_recid"]

OUTPUT = Path(__file__).parent / "data" / "compas.csv.gz"


def propublica_subset(raw: pd.DataFrame) -> pd.DataFrame:
    """ProPublica's filter and the derived columns, from the raw two-year file.

    Rows kept: ``-30 <= days_b_screening_arrest <= 30``, ``is_recid != -1``,
    ``c_charge_degree != "O"`` and ``score_text != "N/A"`` (ProPublica, "Machine Bias", 2016).
    ``length_of_stay`` is ``c_jail_out - c_jail_in`` in days between calendar dates (as in
    ProPublica's analysis); a blank ``c_charge_desc`` becomes ``"unknown"``.
    """
    keep = (
        raw["days_b_screening_arrest"].between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"].fillna("N/A") != "N/A")
    )
    data = raw.loc[keep].copy()
    jail_in = pd.to_datetime(data["c_jail_in"]).dt.normalize()
    jail_out = pd.to_datetime(data["c_jail_out"]).dt.normalize()
    data["length_of_stay"] = (jail_out - jail_in).dt.days
    description = data["c_charge_desc"].fillna("").astype(str).str.strip()
    data["c_charge_desc"] = description.where(description != "", "unknown")
    return data[COLUMNS].reset_index(drop=True)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m sklearn_distill.datasets._compas_source RAW_CSV")
    subset = propublica_subset(pd.read_csv(argv[0]))
    subset.to_csv(OUTPUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(subset)} rows x {subset.shape[1]} columns to {OUTPUT}")


if __name__ == "__main__":
    main()
