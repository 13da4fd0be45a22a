"""Features that nearly determine each other across kinds (a number and its bands held as
text, two categories), and the command line's listing of score copies written as text."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sklearn_distill.__main__ import unsafe_columns
from sklearn_distill.audit import _banding, _cramers_v, _warn_if_collinear


def _collinear_messages(X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_collinear(X)
    return [str(w.message) for w in caught if "strongly correlated" in str(w.message)]


def _ages(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 70, n)
    return pd.DataFrame(
        {
            "age": age,
            "age_band": pd.cut(age, [17, 25, 35, 45, 55, 70]).astype(str),
            "flag": rng.integers(0, 2, n),
            "city": rng.choice(["x", "y", "z"], n),
        }
    )


def test_a_number_and_its_bands_held_as_text_are_named_whatever_the_bands_sizes():
    X = _ages()
    said = _collinear_messages(X)
    assert len(said) == 1 and "'age' and 'age_band' (1.00, normalised correlation ratio)" in said[0]
    # the bands as numbers are named by Spearman's correlation, as before
    codes = X.assign(age_band=pd.factorize(X["age_band"], sort=True)[0])
    assert "'age' and 'age_band'" in _collinear_messages(codes)[0]
    # unequal bands and a yes/no split are bandings too (their correlation ratio is 0.70 and
    # 0.87: capped by the bands' sizes)
    for edges in ([17, 22, 66, 70], [17, 44, 70]):
        bands = X.assign(age_band=pd.cut(X["age"], edges).astype(str))
        assert (
            "'age' and 'age_band' (1.00, normalised correlation ratio)"
            in _collinear_messages(bands)[0]
        )
    # unrelated features of every kind: nothing
    assert _collinear_messages(X.drop(columns="age_band")) == []


def test_banding_is_the_correlation_ratio_over_its_largest_value_for_the_levels_sizes():
    # untied values 0..n-1: contiguous blocks of sizes m_i leave a within sum of squares of
    # m_i (m_i^2 - 1) / 12 each, so the largest eta^2 is 1 - sum m_i (m_i^2 - 1) / (n (n^2 - 1))
    rng = np.random.default_rng(0)
    n = 900
    values = rng.permutation(n).astype(float)
    codes = np.clip((values // 300 + rng.integers(-1, 2, n)).astype(int), 0, 2)
    counts = np.bincount(codes)
    means = np.array([values[codes == k].mean() for k in range(3)])
    eta2 = np.sum(counts * (means - values.mean()) ** 2) / np.sum((values - values.mean()) ** 2)
    largest = 1 - np.sum(counts * (counts**2 - 1)) / (n * (n**2 - 1))
    assert np.isclose(_banding(values, codes), eta2 / largest)
    assert 0.3 < _banding(values, codes) < 0.9  # a partial banding
    assert np.isclose(_banding(values, (values >= 600).astype(int)), 1.0)


def test_two_categories_that_relabel_each_other_are_named_by_cramers_v():
    X = _ages().drop(columns="age_band")
    X["town"] = X["city"].map({"x": "X", "y": "Y", "z": "Z"})
    said = _collinear_messages(X)
    assert len(said) == 1 and "'city' and 'town' (1.00, Cramér's V)" in said[0]
    # Cramér's V against scipy's on a 3 x 5 table, and against its definition on a 2 x 2 one
    from scipy.stats.contingency import association, crosstab

    rng = np.random.default_rng(4)
    a3 = rng.integers(0, 3, 400)
    b5 = (a3 + rng.integers(0, 3, 400)) % 5
    scipy_v = association(crosstab(a3, b5).count, method="cramer")
    assert np.isclose(_cramers_v(a3, b5), scipy_v)
    # two near-constant columns whose one odd row is the same row share no effect
    odd = np.zeros(len(X), dtype=int)
    odd[7] = 1
    near_constant = X.drop(columns="town").assign(p=odd.astype(str), q=np.where(odd, "u", "v"))
    assert _collinear_messages(near_constant) == []
    a = np.array([0, 0, 1, 1, 1, 0])
    b = np.array([0, 0, 1, 1, 0, 1])
    table = np.array([[2.0, 1.0], [1.0, 2.0]])
    expected = np.outer(table.sum(1), table.sum(0)) / 6
    assert np.isclose(_cramers_v(a, b), np.sqrt(((table - expected) ** 2 / expected).sum() / 6))
    # memory in the rows, not in the product of the levels: two columns of 200,000 levels
    many = np.arange(1_000_000) % 200_000
    assert _cramers_v(many, many) == 1.0
    # an identifier (a level per row) is no category to compare
    assert _collinear_messages(X.assign(town=[f"r{i}" for i in range(len(X))])) == []


def test_listing_names_score_copies_written_as_text():
    rng = np.random.default_rng(3)
    n = 600
    a = rng.normal(size=n)
    score = (1 / (1 + np.exp(-(a + 0.2 * rng.normal(size=n))))).round(4)
    frame = pd.DataFrame({"a": a, "score": score, "label": rng.choice(["no", "yes"], n)})
    frame["decile"] = "D" + (pd.qcut(frame["score"], 10, labels=False) + 1).astype(str)
    frame["pct"] = (frame["score"] * 100).round(1).astype(str) + "%"
    frame["dollars"] = [f"${v:,.0f}" for v in rng.uniform(1e3, 1e5, n)]
    # three unequal bands of the score (their correlation ratio is capped near 0.9 by their
    # sizes: the normalised one reads them as the copy they are)
    cuts = frame["score"].quantile([0.3, 0.8]).tolist()
    frame["band"] = pd.cut(frame["score"], [-1, *cuts, 2], labels=["Low", "Mid", "High"])
    frame["band"] = frame["band"].astype(str)
    columns = ["a", "decile", "pct", "dollars", "band"]
    reasons = unsafe_columns(frame, columns, "score", "label")
    assert set(reasons) == {"decile", "pct", "band"}
    assert "written as text" in reasons["pct"] and "correlation ratio" in reasons["decile"]


def test_models_without_bands_are_warned_about_at_fit_and_the_report_advises_bags():
    from types import SimpleNamespace

    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    from sklearn_distill.audit import _warn_if_no_bands
    from sklearn_distill.report import _untested_text

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_no_bands(
            student=ExplainableBoostingRegressor(outer_bags=1),
            outcome=ExplainableBoostingClassifier(validation_size=0),
        )
        _warn_if_no_bands(student=ExplainableBoostingRegressor(outer_bags=2), outcome=None)
    said = [str(w.message) for w in caught]
    assert len(said) == 2
    assert said[0].startswith("student=ExplainableBoostingRegressor(outer_bags=1)")
    assert said[1].startswith("outcome=ExplainableBoostingClassifier(validation_size=0")
    # values of 500 rows each, untestable for want of standard errors alone: the advice is
    # about bags, not max_bins or min_weight (which cannot help); thin values keep that advice
    table = pd.DataFrame(
        {
            "term": "c",
            "kind": "main",
            "value": ["x", "y", "z"],
            "weight": [500.0, 520.0, 480.0],
            "testable": False,
            "difference_lower": np.nan,
        }
    )
    (text,) = _untested_text(SimpleNamespace(min_weight=30.0), table)
    assert "at least 2 outer bags" in text and "max_bins" not in text
    thin = table.assign(weight=[5.0, 6.0, 4.0], difference_lower=0.1)
    (text,) = _untested_text(SimpleNamespace(min_weight=30.0), thin)
    assert "max_bins" in text and "outer bags" not in text


def test_the_report_states_the_attenuation_a_missing_part_of_the_risk_gives():
    from sklearn_distill.report import _fidelity_paragraphs, attenuation_from_rmse

    # the probit approximation: E[sigmoid(z + h)] for h ~ N(0, s^2) is near
    # sigmoid(z / sqrt(1 + pi s^2 / 8)); checked by numerical integration at z = 0.5 (the exact
    # factor there is 0.686, the approximation 0.706: "about", as the report says)
    s = 1.6
    h = np.linspace(-8 * s, 8 * s, 20001)
    density = np.exp(-(h**2) / (2 * s**2))
    mean = np.sum(density / (1 + np.exp(-(0.5 + h)))) / density.sum()
    assert abs(np.log(mean / (1 - mean)) / 0.5 - attenuation_from_rmse(s)) < 0.03
    said = _fidelity_paragraphs({"r2": 0.3, "rmse": s})
    assert any("about 0.71 times their size" in text for text in said)
    assert not any(
        "do not average" in text for text in _fidelity_paragraphs({"r2": 0.9, "rmse": 0.5})
    )
    # the audit's spread on rows the mimic did not see is the one read when there is one
    said = _fidelity_paragraphs({"r2": 0.3, "rmse": 1.2, "rmse_out_of_fold": s})
    assert any("about 0.71 times their size" in text for text in said)
    assert any("RMSE 1.600 log-odds on rows it did not see" in text for text in said)
    # an entry of None (a fidelity read back from JSON) is no out-of-fold RMSE, as for R^2
    said = _fidelity_paragraphs(
        {"r2": 0.3, "rmse": s, "rmse_out_of_fold": None, "r2_out_of_fold": None}
    )
    assert any("about 0.71 times their size" in text for text in said)
    assert not any("did not see" in text for text in said)


def test_the_audit_records_the_out_of_fold_rmse_of_its_mimic():
    from sklearn_distill import CompareAudit

    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 4, n)})
    missing = rng.normal(0, 1.6, n)  # a part of the score the audit data lack
    score = 0.8 * X["a"] + 0.3 * X["b"] + missing
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype(int)
    audit = CompareAudit(calibration=None, response="decision_function", cv=2, random_state=0)
    audit.fit(X, y, teacher_scores=score)
    found = audit.fidelity_["rmse_out_of_fold"]
    # as documented: the RMSE of the mean out-of-fold prediction (the residuals the audit keeps)
    assert found == pytest.approx(float(np.sqrt(np.mean(audit.mimic_residuals_**2))))
    # and it estimates the spread of the missing part (1.618 here; 1.642 found, the in-sample
    # RMSE 1.593: within 0.05 of it on four seeds, either way)
    assert abs(found - missing.std()) < 0.1


def test_bandings_are_told_from_containment_and_from_a_rare_tail_level():
    rng = np.random.default_rng(5)
    n = 3000
    age = rng.uniform(18, 70, n)
    # a real banding with 3% of rows given a random band: still named
    band = pd.cut(age, [17, 25, 35, 45, 55, 70]).astype(str).to_numpy()
    astray = rng.uniform(size=n) < 0.03
    band[astray] = rng.choice(np.unique(band), astray.sum())
    assert "'age' and 'band'" in _collinear_messages(pd.DataFrame({"age": age, "band": band}))[0]
    # a rare level holding half the rows of the number's top 3%: its levels explain little of
    # the number (correlation ratio about 0.2), though they sit at one end of it
    top = (age > np.quantile(age, 0.97)) & (rng.uniform(size=n) < 0.5)
    rare = pd.DataFrame({"age": age, "level": np.where(top, "rare", "common")})
    assert _collinear_messages(rare) == []
    # a mostly-zero number (250 distinct non-zero values) and a category holding every
    # non-zero row and as many zero rows: containment, not a banding (ties broken at random)
    gain = np.where(rng.uniform(size=n) < 0.9, 0.0, rng.lognormal(8, 1, n))
    holds = (gain > 0) | (rng.uniform(size=n) < gain.astype(bool).mean())
    contained = pd.DataFrame({"gain": gain, "kind": np.where(holds, "some", "none")})
    assert _collinear_messages(contained) == []
    # the non-zero indicator itself is a banding of it
    derived = contained.assign(kind=np.where(gain > 0, "some", "none"))
    assert "'gain' and 'kind'" in _collinear_messages(derived)[0]
