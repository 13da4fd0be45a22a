"""What ``CompareAudit.fit`` warns of reaches the audit's report, beside the findings it
qualifies: features that nearly determine each other, and a calibration map that misses the
outcome rates or rests on steps of rate 0 or 1."""

import html
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.helpers import small_audit


def _findings(path):
    """The text of the report's "What the audit found" section, as a reader sees it."""
    page = open(path, encoding="utf-8").read()
    section = page.split("What the audit found", 1)[1].split("<h2", 1)[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def _fit_and_report(audit, X, y, scores, path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.fit(X, y, teacher_scores=scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.report(path, n_bootstrap=40)
    return [str(w.message) for w in caught], _findings(path)


def _world(n, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    X = pd.DataFrame({"a": a, "a_copy": a + 0.1 * rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] - 0.5 * X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, logit.to_numpy()


def test_features_that_nearly_determine_each_other_are_named_among_the_findings(tmp_path):
    X, y, logit = _world(600)
    messages, findings = _fit_and_report(small_audit("spline"), X, y, logit, tmp_path / "r.html")
    (warned,) = [m for m in messages if "strongly correlated features" in m]
    # the pairs as fit listed them, with their figure, reach the reader of the report
    listed = re.search(r"category\): (.*)\. The mimic and the outcome", warned)[1]
    assert "'a' and 'a_copy'" in listed
    assert listed in findings
    assert "read their shapes together" in findings
    # a pair of numbers carries no measure's name: the reader is told it is Spearman's
    assert f"{listed} (Spearman's correlation where no other measure is named)." in findings
    # an audit of features that do not determine each other says nothing of the kind
    X2 = X.drop(columns="a_copy")
    messages, findings = _fit_and_report(small_audit("spline"), X2, y, logit, tmp_path / "s.html")
    assert not any("strongly correlated features" in m for m in messages)
    assert "nearly determine each other" not in findings


def test_a_pair_of_categories_is_named_with_its_measure_alone(tmp_path):
    X, y, logit = _world(600)
    rng = np.random.default_rng(1)
    X = X.drop(columns="a_copy").assign(
        city=rng.choice(["p", "q", "r", "s"], len(X)),
    )
    X["region"] = X["city"].map({"p": "north", "q": "north", "r": "south", "s": "west"})
    messages, findings = _fit_and_report(small_audit("spline"), X, y, logit, tmp_path / "r.html")
    (warned,) = [m for m in messages if "strongly correlated features" in m]
    listed = re.search(r"category\): (.*)\. The mimic and the outcome", warned)[1]
    assert "Cramér's V" in listed and listed in findings
    # every figure names its measure: the list ends the clause, with no word of Spearman's
    assert f"nearly determine each other: {listed}. The mimic" in findings


@pytest.mark.parametrize(
    "calibration, scores, warned",
    [
        # deciles of the log-odds: 'temperature' only rescales them, missing the rates
        ("temperature", "deciles", r"calibration map \(calibration='temperature'\) misses"),
        # a continuous score through isotonic steps: its extreme steps are pure
        ("isotonic", "logit", r"isotonic calibration puts .*% of the scores in steps"),
    ],
    ids=["temperature-misses", "isotonic-saturates"],
)
def test_what_fit_warned_of_the_calibration_map_is_among_the_findings(
    tmp_path, calibration, scores, warned
):
    X, y, logit = _world(2000)
    X = X.drop(columns="a_copy")
    if scores == "deciles":
        logit = np.searchsorted(np.quantile(logit, np.linspace(0, 1, 11)[1:-1]), logit) + 1.0
    messages, findings = _fit_and_report(small_audit(calibration), X, y, logit, tmp_path / "r.html")
    (message,) = [m for m in messages if re.search(warned, m)]
    # the warning's own words, its figures included, as a sentence of the findings
    shown = message[0].upper() + message[1:].replace(
        "plot_calibration()", "'Calibration of the score' below"
    )
    assert re.sub(r"\s+", " ", shown) in findings


def test_a_falling_score_mimicked_uncalibrated_is_named_among_the_findings(tmp_path):
    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    audit = small_audit(None)
    messages, findings = _fit_and_report(audit, X, y, -logit, tmp_path / "r.html")
    (warned,) = [m for m in messages if m.startswith("the score falls as P(y = 1) rises")]
    rho = re.search(r"rank correlation with y (-[\d.]+)", warned)[1]
    # the mimic's shapes run opposite to the outcome's: the reader is told, with the figure
    assert (
        f"The score falls as the outcome event (1) becomes likelier (rank correlation with the outcome {rho},"
        in findings
    )
    assert "every difference has the wrong sign" in findings
    mimic = audit.compare(interactions=False).query("term == 'a'")
    assert np.corrcoef(mimic["mimic"], mimic["outcome"])[0, 1] < 0
    # the same audit of the score as it rises, and a refit with a calibration, say nothing
    for calibration, scores in ((None, logit), ("spline", -logit)):
        audit.set_params(calibration=calibration)  # refitted: nothing of the first fit stays
        messages, findings = _fit_and_report(audit, X, y, scores, tmp_path / "s.html")
        assert "wrong sign" not in findings


def test_what_fit_warned_of_the_data_is_among_the_findings(tmp_path):
    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    n = len(X)
    X["ident"] = [f"id{k}" for k in range(n)]  # nearly one level per row
    X["empty"] = np.nan  # no value on any row
    X["mixed"] = pd.Series([(1, "1", "x")[k % 3] for k in range(n)], dtype=object)
    X["text"] = [f"{v:.2f}" for v in X["a"]]  # numbers written as text
    X["b "] = X["b"] + np.random.default_rng(1).normal(size=n)  # reads like 'b'
    X["p & q"] = np.random.default_rng(2).normal(size=n)  # the term separator
    audit = small_audit("spline").set_params(interactions=1)
    messages, findings = _fit_and_report(audit, X, y, logit, tmp_path / "r.html")
    warned = [
        m
        for m in messages
        if re.search(r"nearly one level|no value|differ only in|hold ' & '|written as text", m)
    ]
    assert len(warned) == 6
    for message in warned:
        # the warning's words reach the reader, the data named as features, not as X
        shown = re.sub(r"^X columns? ", "Feature ", message)
        shown = shown.replace("Feature [", "Features [").replace(
            "X has column names", "The data have feature names"
        )
        assert "Data: " + re.sub(r"\s+", " ", shown) in findings
    # the command line's own note of unsafe features says it once, not twice
    from sklearn_distill.report import write_audit_report

    note = "Features that look unsafe, audited because --features names them: empty (no value "
    note += "on any row); ident (a distinct value on every row (an identifier?))."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_audit_report(audit, tmp_path / "c.html", n_bootstrap=40, data_notes=[note])
    said = _findings(tmp_path / "c.html")
    assert "Data: Feature 'ident' is read as" in findings
    assert "Data: Feature 'ident' is read as" not in said
    assert "have no value on any row" not in said and "differ only in type" in said
    # clean data: nothing of the kind
    messages, findings = _fit_and_report(
        small_audit("spline"), X[["a", "b"]], y, logit, tmp_path / "s.html"
    )
    assert "Data: " not in findings


def test_values_matched_to_rows_of_other_labels_are_named_among_the_findings(tmp_path):
    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    X.index = X.index + 1000
    shifted = pd.Series(
        np.asarray(y), index=X.index + 1
    )  # sliced apart from X: each label one row off
    messages, findings = _fit_and_report(
        small_audit("spline"), X, shifted, logit, tmp_path / "r.html"
    )
    (warned,) = [m for m in messages if "labels as labels of other rows" in m]
    assert "Data: " + re.sub(r"\s+", " ", warned) in findings


def _page(path):
    page = open(path, encoding="utf-8").read()
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_a_mimic_of_almost_none_of_the_score_gives_fits_advice(tmp_path):
    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    shuffled = np.random.default_rng(3).permutation(logit)  # scores of other rows
    messages, _ = _fit_and_report(small_audit("spline"), X, y, shuffled, tmp_path / "r.html")
    assert any(m.startswith("the mimic reproduces almost none of the score") for m in messages)
    faithful = _page(tmp_path / "r.html").split("How faithful the mimic is", 1)[1]
    faithful = faithful.split("What the audit found", 1)[0]
    assert "given in the rows' order" in faithful
    # the scores in their rows' order: a faithful mimic, no such advice
    _fit_and_report(small_audit("spline"), X, y, logit, tmp_path / "s.html")
    assert "rows' order" not in _page(tmp_path / "s.html")


def test_a_calibrated_score_that_falls_weakly_is_said_to_fall_beside_its_reading(tmp_path):
    from sklearn_distill._calibration import score_trend

    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    rng = np.random.default_rng(1)
    scores = -0.08 * logit + rng.normal(size=len(X))
    rho, p_value = score_trend(scores, y)
    assert rho < 0 and p_value > 0.05  # a weak fall: read as rising all the same
    messages, _ = _fit_and_report(small_audit("isotonic"), X, y, scores, tmp_path / "r.html")
    assert any("rises only weakly" in m for m in messages)
    page = _page(tmp_path / "r.html")
    assert (
        "read as rising as the outcome event becomes likelier: an increasing calibration, "
        "although in these data it falls weakly as the event becomes likelier (rank "
        f"correlation with the outcome {rho:.2f}, p = {p_value:.2g}"
    ) in page
    # the score as it rises: no fall said
    _fit_and_report(small_audit("isotonic"), X, y, -scores, tmp_path / "s.html")
    assert "falls weakly" not in _page(tmp_path / "s.html")


def _report_text(path, after, before="<h2"):
    """The text a reader sees from the heading ``after`` to the next section."""
    page = open(path, encoding="utf-8").read()
    section = page.split(after, 1)[1].split(before, 1)[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def test_margins_that_are_not_log_odds_are_said_to_be_on_their_own_scale(tmp_path):
    from sklearn.svm import LinearSVC

    X, y, _ = _world(600)
    X = X.drop(columns="a_copy")
    teacher = LinearSVC().fit(X, y)
    audit = small_audit(None).set_params(teacher=teacher)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.fit(X, y)
    assert any("decision_function margins as log-odds" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.report(tmp_path / "r.html", n_bootstrap=40)
    fidelity = _report_text(tmp_path / "r.html", "How faithful the mimic is")
    assert "both in log-odds of the outcome" not in fidelity
    assert "the mimic on the score's own scale" in fidelity
    assert "LinearSVC's decision_function margins, not its log-odds" in fidelity
    assert "of the score on its own scale, not of log-odds" in fidelity
    # a logistic teacher's margins are its log-odds: read as such, and said so
    from sklearn.linear_model import LogisticRegression

    audit.set_params(teacher=LogisticRegression().fit(X, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.fit(X, y).report(tmp_path / "s.html", n_bootstrap=40)
    assert "both in log-odds of the outcome" in _report_text(tmp_path / "s.html", "How faithful")


def test_a_teacher_of_labels_or_of_saturated_probabilities_is_warned_of_once_and_reported(
    tmp_path,
):
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y, _ = _world(600)
    X = X.drop(columns="a_copy")
    voters = [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=3))]
    labels = VotingClassifier(voters, voting="hard").fit(X, y)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    clip = 1e-4
    share = np.mean(np.isin(forest.predict_proba(X)[:, 1], (0.0, 1.0)))
    assert share > 0.05  # five trees' votes: many rows at 0 or 1
    cases = [
        (labels, "isotonic", "The black box was read by its predicted labels", "predicted labels"),
        (forest, None, "of the black box's probabilities are 0 or 1", "probabilities are 0 or 1"),
    ]
    for teacher, calibration, warned, reported in cases:
        audit = small_audit(calibration).set_params(teacher=teacher)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit.fit(X, y)
        # said once, of all the rows, not again by each third's mimic, in the audit's terms
        # (the mimic, the black box), not the mimic's own (a student, a proba_clip to try)
        (said,) = [str(w.message) for w in caught if warned in str(w.message)]
        assert not [str(w.message) for w in caught if "student" in str(w.message)]
        assert "try proba_clip" not in said
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit.report(tmp_path / "r.html", n_bootstrap=40)
        findings = _findings(tmp_path / "r.html")
        assert reported in findings
        # the warning is the finding the report states
        assert " ".join(said.split()) in findings
    # the share of all rows at 0 or 1, and the bound of their clipped log-odds
    assert f"{100 * share:.0f}% of the black box's probabilities are 0 or 1" in findings
    assert f"clipped to +-{np.log((1 - clip) / clip):.1f}" in findings
    # a user of DistilledGAM itself still hears of its student
    from sklearn_distill import DistilledGAM

    with pytest.warns(UserWarning, match="the student learns these steps"):
        DistilledGAM(forest, student=small_audit(None).student, random_state=0).fit(X)


def test_a_scoring_classifier_read_by_its_labels_of_many_classes_is_warned_of_once(tmp_path):
    # response='predict' on a 3-class LogisticRegression: the audit had said it was "a
    # classifier with neither predict_proba nor decision_function" (it has both), and each
    # third's mimic repeated its own warning of the class ids
    from sklearn.linear_model import LogisticRegression

    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    classes = np.digitize(logit, [-0.5, 0.5])
    teacher = LogisticRegression().fit(X, classes)
    audit = small_audit(None).set_params(teacher=teacher, response="predict")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.fit(X, y)
    said = [str(w.message) for w in caught if "predicted labels" in str(w.message)]
    assert len(said) == 1, said
    assert "neither predict_proba nor decision_function" not in said[0]
    assert "response='predict'" in said[0] and "3 classes" in said[0]
    # the audit reads one score of the outcome's event: a 3-class teacher's is given as scores
    assert "score of the outcome's event (from its predict_proba) as teacher_scores" in said[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.report(tmp_path / "r.html", n_bootstrap=40)
    assert " ".join(said[0].split()) in _findings(tmp_path / "r.html")


def test_class_probabilities_whose_rows_do_not_sum_to_one_are_named_among_the_findings(tmp_path):
    X, y, logit = _world(600)
    X = X.drop(columns="a_copy")
    p = 1 / (1 + np.exp(-logit))
    scores = 0.7 * np.c_[1 - p, p] + 0.2  # each row sums to 1.1
    audit = small_audit("spline").set_params(response="predict_proba")
    messages, findings = _fit_and_report(audit, X, y, scores, tmp_path / "r.html")
    (warned,) = [m for m in messages if "do not sum to 1" in m]
    rows = re.search(r"(\d+ of \d+ rows do not sum to 1 \(sums from [^)]*\))", warned)[1]
    assert rows.startswith(f"{len(X)} of {len(X)} rows")
    assert f"read as class probabilities (response='predict_proba'), but {rows}" in findings
    # rows that do sum to 1 say nothing of it
    _, findings = _fit_and_report(audit, X, y, np.c_[1 - p, p], tmp_path / "s.html")
    assert "do not sum to 1" not in findings


def test_the_stability_paragraph_says_whether_whole_records_were_resampled(tmp_path):
    X, y, logit = _world(300)
    X = X.drop(columns="a_copy")
    # each record entered twice
    X, y, logit = pd.concat([X, X], ignore_index=True), np.r_[y, y], np.r_[logit, logit]
    records = np.r_[np.arange(300), np.arange(300)]
    audit = small_audit("spline")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.fit(X, y, teacher_scores=logit, groups=records)
    texts = {}
    for given in (None, records):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit.stability(X, y, teacher_scores=logit, groups=given, n_refits=2)
        split = any("resamples rows one by one" in str(w.message) for w in caught)
        assert split == (given is None)  # warned only when the records were split
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audit.report(tmp_path / "r.html", n_bootstrap=40)
        texts[given is None] = _report_text(tmp_path / "r.html", "Stability across refits")
    assert "bootstrap samples of the rows one by one" in texts[True]
    assert "stability() was run without them" in texts[True]
    assert "bootstrap samples of whole records (groups)" in texts[False]
    assert "without them" not in texts[False]


def test_largest_differences_say_what_could_not_be_tested_instead_of_empty_tables(tmp_path):
    # thin interaction cells and a feature of one value: no table of headers alone, and no
    # value of a one-valued feature (0 in both shapes, as each is centred) listed as testable
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "one": ["x"] * n})
    logit = X["a"] - X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    audit = small_audit("spline").set_params(interactions=1, min_weight=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.fit(X, y, teacher_scores=logit + 0.5 * X["a"] * X["b"])
        audit.report(tmp_path / "r.html", n_bootstrap=40)
    comparison = audit.compare(interactions=True)
    cells = comparison[comparison["kind"] == "interaction"]
    assert len(cells) and not cells["testable"].any()
    assert comparison[comparison["kind"] == "main"]["testable"].any()
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = page.split("Largest differences", 1)[1].split("<h2", 1)[0]
    assert "<h3>Main effects</h3>" in section
    assert "Interactions, cell by cell</h3>" not in section
    assert "No interaction cell could be tested, so none is listed." in section
    tables = re.findall(r"<table.*?</table>", section, re.S)
    assert tables and all("<td" in table for table in tables)  # no table of headers alone
    assert ">one<" not in tables[0] and ">a<" in tables[0]
    assert "Not listed: one, of one value on every row" in section


def test_a_feature_with_one_testable_value_of_several_is_still_among_the_largest():
    # a feature of one value is left out (it can never differ); one with several values of
    # which a single one holds enough rows to be tested is not of one value
    from sklearn_distill.report import _largest

    rows = pd.DataFrame(
        {
            "term": ["a", "a", "a", "b", "c", "c"],
            "label": ["x", "y", "z", "w", "u", "v"],
            "z": [0.1, 5.0, 0.2, 9.0, 1.0, 2.0],
            "testable": [False, True, False, True, True, True],
            "difference": [0.0] * 6,
        }
    )
    listed = _largest(rows)
    assert list(zip(listed["term"], listed["label"])) == [("a", "y"), ("c", "v"), ("c", "u")]
