"""ProPublica's COMPAS two-year recidivism data, as used by Tan et al. (2018)."""

from __future__ import annotations

from importlib import resources

import pandas as pd
from sklearn.utils import Bunch

FEATURES = [
    "age",
    "race",
    "sex",
    "priors_count",
    "length_of_stay",
    "c_charge_degree",
    "c_charge_desc",
]
CATEGORICAL = ["race", "sex", "c_charge_degree", "c_charge_desc"]

DESCR = """\
COMPAS two-year recidivism (Broward County, Florida, 2013-2014)
----------------------------------------------------------------

ProPublica's compas-scores-two-years.csv ("Machine Bias", 2016), after ProPublica's filter:
-30 <= days_b_screening_arrest <= 30, is_recid != -1, c_charge_degree != "O",
score_text != "N/A". 6,172 rows.

Features (those of Tan et al., "Distill-and-Compare", AIES 2018):
- age: age in years at screening
- race, sex: as recorded (categorical)
- priors_count: number of prior offences
- length_of_stay: days between the calendar dates of c_jail_in and c_jail_out
- c_charge_degree: F (felony) or M (misdemeanour)
- c_charge_desc: charge description; blank -> "unknown" (categorical)

score: decile_score, the COMPAS risk decile (1-10), a black-box score.
target: two_year_recid, 1 if re-arrested within two years.

Source: ProPublica compas-analysis repository; direct identifiers removed.
"""


def load_compas(*, return_X_y=False):
    """Load the COMPAS recidivism audit data (ProPublica's filter, Tan et al.'s features).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target, score)`` instead of a Bunch.

    Returns
    -------
    sklearn.utils.Bunch
        - ``data``: DataFrame of the 7 features (categorical dtype for the string columns);
        - ``target``: Series ``two_year_recid`` (0/1), the observed outcome;
        - ``score``: Series ``decile_score`` (1-10), the black-box COMPAS score;
        - ``frame``: DataFrame with the features, ``decile_score`` and ``two_year_recid``;
        - ``feature_names``, ``target_name``, ``score_name``, ``DESCR``.

    Examples
    --------
    >>> from sklearn_distill.datasets import load_compas
    >>> compas = load_compas()
    >>> compas.data.shape
    (6172, 7)
    >>> sorted(compas.target.unique().tolist())
    [0, 1]
    """
    with resources.files(__package__).joinpath("data", "compas.csv.gz").open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip")
    for column in CATEGORICAL:
        frame[column] = frame[column].astype("category")
    data = frame[FEATURES].copy()
    target = frame["two_year_recid"].copy()
    score = frame["decile_score"].copy()
    if return_X_y:
        return data, target, score
    return Bunch(
        data=data,
        target=target,
        score=score,
        frame=frame,
        feature_names=list(FEATURES),
        target_name="two_year_recid",
        score_name="decile_score",
        DESCR=DESCR,
    )
