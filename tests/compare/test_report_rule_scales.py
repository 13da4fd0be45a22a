"""The report's rules section on the scale the score was mimicked on: a score mimicked as given
(no calibration, a plain score) is not shown as log-odds, a tree that read the score otherwise
than the audit's mimic is refused, and rules of a score riding a large offset read apart."""

import html
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

from sklearn_distill import CompareAudit, DistilledTree
from sklearn_distill.report import write_audit_report

_SMALL = {"outer_bags": 2, "max_rounds": 200, "interactions": 0, "max_bins": 32, "n_jobs": 1}


def _audit(**settings):
    return CompareAudit(
        student=ExplainableBoostingRegressor(**_SMALL),
        outcome=ExplainableBoostingClassifier(**_SMALL),
        n_crossfits=1, cv=3, random_state=0, **settings,
    )  # fmt: skip


def _world(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    probability = 1 / (1 + np.exp(-(X["a"] - 0.5 * X["b"]).to_numpy()))
    y = (rng.uniform(size=n) < probability).astype(int)
    return X, y, probability


def _rules_part(path):
    page = open(path, encoding="utf-8").read()
    part = page[page.index("<h2>The black box as rules</h2>") :]
    return part[: part.index("</section>")]


def _fitted(settings, tree_settings, X, y, score):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit(**settings).fit(X, y, teacher_scores=score)
        tree = DistilledTree(max_leaf_nodes=4, random_state=0, **tree_settings)
        tree.fit(X, y, teacher_scores=score)
    return audit, tree


def _write(audit, tree, path, X, score):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_audit_report(
            audit, path, n_bootstrap=20, rule_tree=tree, rule_fidelity=tree.fidelity(X, score)
        )


def test_a_score_mimicked_as_given_is_not_shown_as_log_odds(tmp_path):
    # a probability read as a plain score: its rules' predictions are probabilities (0.2 to
    # 0.8), which a "log-odds" column would have a reader take for P(event) 0.55 to 0.69
    X, y, probability = _world()
    settings = dict(calibration=None, response="predict")
    audit, tree = _fitted(settings, settings, X, y, probability)
    part = _rules_part(_write(audit, tree, tmp_path / "given.html", X, probability))
    headers = re.findall(r"<th[^>]*>(.*?)</th>", part)
    assert "log-odds" not in headers and html.escape("score's P(event)") not in headers
    assert "score (as given)" in headers
    text = html.unescape(re.sub(r"<[^>]+>", " ", part))
    assert "mean log-odds" not in text and "P(event)" not in text
    assert "not log-odds" in text
    assert "reproduce the score as given" in text
    # each rule's value is the mean of the probabilities it covers, as printed
    rules = tree.rules()
    for _, rule in rules.iterrows():
        covered = tree.explain(X)["rule_id"].to_numpy() == rule["rule_id"]
        assert rule["prediction"] == pytest.approx(probability[covered].mean())
        assert f"{rule['prediction']:.3f}" in part


@pytest.mark.parametrize("response", ["predict", "predict_proba"])
def test_the_differences_and_shapes_are_given_the_units_they_are_in(response):
    # a probability mimicked as given: its shapes are on the probability's scale, the outcome
    # model's in log-odds; the tables' and pictures' texts said "log-odds" for both
    from sklearn_distill.report import audit_report_sections

    X, y, probability = _world()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit(calibration=None, response=response).fit(X, y, teacher_scores=probability)
        sections = {s.heading: s for s in audit_report_sections(audit, n_bootstrap=20)}
    largest = sections["Largest differences"].paragraphs[0]
    shapes = sections["Shape functions: mimic against outcome model"].paragraphs[0]
    if response == "predict":
        assert "(mimic - outcome, the mimic on the score's own scale, the outcome model in " in (
            largest
        )
        assert "the mimic's to the score on its own scale, not log-odds" in shapes
    else:  # read as a probability: both in log-odds
        assert "(mimic - outcome, log-odds)" in largest
        assert shapes.startswith("Contribution of each feature value to the log-odds")


def test_a_probability_read_as_log_odds_keeps_its_log_odds_and_probabilities(tmp_path):
    X, y, probability = _world()
    settings = dict(calibration=None, response="predict_proba")
    audit, tree = _fitted(settings, settings, X, y, probability)
    part = _rules_part(_write(audit, tree, tmp_path / "proba.html", X, probability))
    headers = re.findall(r"<th[^>]*>(.*?)</th>", part)
    assert "log-odds" in headers and html.escape("score's P(event)") in headers
    text = html.unescape(re.sub(r"<[^>]+>", " ", part))
    assert "calibrated" not in text and "read as log-odds as by the mimic" in text


def test_a_tree_that_read_the_score_otherwise_than_the_mimic_is_refused(tmp_path):
    # the audit reads the probabilities as log-odds; a tree of the raw probabilities would
    # be printed in the log-odds column
    X, y, probability = _world()
    audit, tree = _fitted(dict(calibration=None, response="predict_proba"), {}, X, y, probability)
    with pytest.raises(ValueError, match=r"response='predict_proba'\); got \"response='predict'\""):
        _write(audit, tree, tmp_path / "mixed.html", X, probability)


def test_rules_of_a_score_riding_a_large_offset_read_apart(tmp_path):
    X, y, _ = _world()
    score = 1e10 + 2 * (X["a"] - 0.5 * X["b"]).to_numpy()
    settings = dict(calibration=None, response="predict")
    audit, tree = _fitted(settings, settings, X, y, score)
    part = _rules_part(_write(audit, tree, tmp_path / "offset.html", X, score))
    # each rule's value to the digits that tell it from the others (not 1e+10 on every row)
    cells = [c for c in re.findall(r"<td>([^<]*)</td>", part) if re.fullmatch(r"\d{10,}\.?\d*", c)]
    predictions = tree.rules()["prediction"]
    assert len(cells) == len(predictions) and len(set(cells)) == predictions.nunique() > 1
    assert sorted(float(c) for c in cells) == pytest.approx(sorted(predictions), abs=0.1)


def test_the_audits_calibration_picture_names_the_event_it_draws():
    # the observed rate drawn is of y's event (classes_[1], "repaid" here), not of a "1"
    from matplotlib.figure import Figure

    X, y, probability = _world()
    labels = pd.Series(np.where(y == 1, "repaid", "defaulted"), name="status")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit().fit(X, labels, teacher_scores=probability)
    assert audit.plot_calibration().axes[0].get_ylabel() == "P(status = repaid)"
    ax = Figure().subplots()
    audit.plot_calibration(ax=ax)
    assert ax.get_ylabel() == "P(status = repaid)"
    # and the rate is that event's: the share of "repaid" rows at each score
    table = audit.calibration_table_
    assert (table["rate"] * table["count"]).sum() == pytest.approx((labels == "repaid").sum())
