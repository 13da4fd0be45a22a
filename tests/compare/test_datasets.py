"""load_compas: the packaged file equals ProPublica's filter applied to the raw data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_distill.datasets import load_compas
from sklearn_distill.datasets._compas import FEATURES

RAW = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "compas"
    / "compas-scores-two-years.csv"
)


def test_bunch_layout():
    compas = load_compas()
    assert list(compas.data.columns) == FEATURES == compas.feature_names
    assert len(compas.data) == len(compas.target) == len(compas.score) == len(compas.frame) == 6172
    assert set(compas.target.unique()) == {0, 1}
    assert compas.score.between(1, 10).all()
    assert compas.data.notna().all().all()
    assert (compas.data["length_of_stay"] >= 0).all()
    for column in ["race", "sex", "c_charge_degree", "c_charge_desc"]:
        assert isinstance(compas.data[column].dtype, pd.CategoricalDtype)
    assert set(compas.data["c_charge_degree"].cat.categories) == {"F", "M"}
    data, target, score = load_compas(return_X_y=True)
    pd.testing.assert_series_equal(target, compas.target)
    pd.testing.assert_frame_equal(data, compas.data)
    pd.testing.assert_series_equal(score, compas.score)


def test_fresh_copies():
    first = load_compas()
    first.data.loc[0, "age"] = -1
    assert load_compas().data.loc[0, "age"] != -1


@pytest.mark.skipif(not RAW.exists(), reason="raw COMPAS file not available")
def test_matches_propublica_filter_on_raw_file():
    """Recompute the filter and derived columns independently from the raw CSV."""
    raw = pd.read_csv(RAW)
    d = raw[
        (raw.days_b_screening_arrest <= 30)
        & (raw.days_b_screening_arrest >= -30)
        & (raw.is_recid != -1)
        & (raw.c_charge_degree != "O")
        & (raw.score_text != "N/A")
    ]
    compas = load_compas()
    assert len(d) == 6172
    np.testing.assert_array_equal(compas.score.to_numpy(), d.decile_score.to_numpy())
    np.testing.assert_array_equal(compas.target.to_numpy(), d.two_year_recid.to_numpy())
    np.testing.assert_array_equal(compas.data.age.to_numpy(), d.age.to_numpy())
    stay = [
        (pd.Timestamp(out).date() - pd.Timestamp(inn).date()).days
        for inn, out in zip(d.c_jail_in, d.c_jail_out)
    ]
    np.testing.assert_array_equal(compas.data.length_of_stay.to_numpy(), stay)
    blank = d.c_charge_desc.isna().to_numpy()
    assert blank.sum() > 0
    assert (compas.data.c_charge_desc.to_numpy()[blank] == "unknown").all()
    np.testing.assert_array_equal(
        compas.data.c_charge_desc.astype(str).to_numpy()[~blank], d.c_charge_desc[~blank]
    )
