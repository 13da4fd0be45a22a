"""Seventh probe round on the scikit-learn side: copies of a two-valued score, a teacher given
beside its scores, a teacher swapped after fit, categories a subsample or a missing value hides,
and two class columns read with the default response."""

import copy
import functools
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.linear_model import LogisticRegression

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill.audit import _score_copies
from sklearn_distill.report import _score_copy_text
from tests.compare.test_audit_trust_round6 import _audit as _small_audit
from tests.compare.test_audit_trust_round6 import _world

_SMALL = {"outer_bags": 2, "max_rounds": 50, "interactions": 0, "max_bins": 16, "n_jobs": 1}


# the sixth round's audit and world, with smaller models
_audit = functools.partial(_small_audit, ebm=_SMALL)


def test_a_copy_of_a_two_valued_score_is_named_at_fit():
    X, y, logit = _world(n=300)
    flag = (logit > 0.3).astype(int)  # the black box: a yes/no flag
    text = np.where(flag == 1, "high", "low")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit = _audit().fit(X.assign(flag_txt=text), y, teacher_scores=flag)
    assert audit.score_copies_ == {"flag_txt": 1.0}
    said = [w for w in caught if "function of one feature of X alone" in str(w.message)]
    assert len(said) == 1 and "'flag_txt'" in str(said[0].message)
    assert "share of each score value's rows" in str(said[0].message)
    (text,) = _score_copy_text(audit)  # the report's finding names it with its measure
    assert "flag_txt (fixes the score on a share 1.000)" in text


def test_two_valued_copies_up_to_relabelling_with_a_few_rows_off_and_not_mere_correlates():
    X, _, logit = _world()
    flag = (logit > 0.3).astype(float)
    rng = np.random.default_rng(1)
    # the flag relabelled (reversed, as words), one row off: still a copy
    off = rng.choice(np.flatnonzero(flag == 1), 1, replace=False)
    relabelled = np.where(flag == 1, "no", "yes").astype(object)
    relabelled[off] = "yes"
    # a genuine binary feature that goes with the flag on about 90% of rows: no copy
    agree = np.where(rng.uniform(size=len(X)) < 0.9, flag, 1 - flag)
    # the flag as numbers and as a three-level category (two levels map to one flag value)
    levels = np.where(flag == 1, "A", np.where(X["b"] > 0, "B", "C"))
    frame = X.assign(rel=relabelled, agree=agree, num=flag * 5 - 1, lvl=levels)
    copies, nominal = _score_copies(frame, flag)
    assert set(copies) == {"rel", "num", "lvl"} and nominal == {"rel", "lvl"}
    # the figure: the smaller share of each flag value's rows the map gives, counted here
    ones = flag == 1
    expected = min(np.mean(relabelled[ones] == "no"), np.mean(relabelled[~ones] == "yes"))
    assert copies["rel"] == pytest.approx(expected) and expected < 1
    assert copies["num"] == copies["lvl"] == 1.0
    # a rare flag (1% of rows): a constant-looking feature that gives 99% of rows but misses
    # the flagged ones is no copy; nor is an identifier, one level per row
    rare = np.zeros(len(X))
    rare[:6] = 1
    ids = [f"r{k}" for k in range(len(X))]
    assert _score_copies(X.assign(agree=agree, row=ids), rare) == ({}, set())
    assert _score_copies(X.assign(agree=agree), flag) == ({}, set())


def _versions(n=300):
    """The audit data's black box (``current``) and an older version that ignores ``a``."""
    X, y, _ = _world(n=n)
    current = LogisticRegression().fit(X, y)
    old = LogisticRegression().fit(X.assign(a=0.0), y)
    return X, y, current, old


def test_scores_of_another_black_box_beside_the_teacher_are_refused_at_fit():
    X, y, current, old = _versions()
    P = current.predict_proba(X)
    # the rows the message counts, computed here: beyond 1% of the old teacher's range
    theirs = old.predict_proba(X)[:, 1]
    off = int(np.sum(np.abs(P[:, 1] - theirs) > 0.01 * np.ptp(theirs)))
    assert 0 < off < len(X)
    for model in (DistilledTree(old, max_leaf_nodes=4), DistilledTree(old, calibration="sigmoid")):
        with pytest.raises(ValueError, match=rf"teacher_scores differ .* on {off} of 300 rows"):
            model.fit(X, y, teacher_scores=P)
    with pytest.raises(ValueError, match=rf"teacher_scores differ .* on {off} of 300 rows"):
        _audit(old).fit(X, y, teacher_scores=P[:, 1])
    # the teacher's own scores, rounded as an export rounds them, one column or two: taken
    rounded = np.round(P, 3)
    DistilledTree(current, max_leaf_nodes=4).fit(X, teacher_scores=rounded[:, 1])
    DistilledTree(current, max_leaf_nodes=4).fit(X, teacher_scores=rounded)


def test_stability_needs_the_scores_fit_read():
    X, y, current, _ = _versions()
    scores = np.round(current.predict_proba(X)[:, 1], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = _audit(current).fit(X, y, teacher_scores=scores)
    with pytest.raises(ValueError, match="teacher_scores .* are required: fit read the scores"):
        audit.stability(X, y, n_refits=2)


def test_another_teacher_set_after_fit_is_not_read_in_fits_place():
    X, _, current, old = _versions()
    tree = DistilledTree(current, max_leaf_nodes=4, random_state=0).fit(X)
    before = tree.fidelity(X)
    tree.set_params(teacher=old)
    for call in (tree.fidelity, tree.score, tree.teacher_target):
        with pytest.raises(ValueError, match="teacher LogisticRegression at fit, another object"):
            call(X)
    # set back, or the fitted model copied whole (the copy's teacher is its own copy of fit's)
    assert tree.set_params(teacher=current).fidelity(X) == before
    assert pickle.loads(pickle.dumps(tree)).fidelity(X) == before
    assert copy.deepcopy(tree).fidelity(X) == before


def test_tree_warns_of_a_missing_category_as_of_an_unseen_one():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "c": rng.choice(list("pqr"), 300)})
    scores = X["a"] + 3 * (X["c"] == "p") - 3 * (X["c"] == "r")
    tree = DistilledTree(max_leaf_nodes=6, random_state=0).fit(X, teacher_scores=scores)
    new = pd.DataFrame({"a": [0.0, 0.0], "c": ["q", None]})
    with pytest.warns(UserWarning, match="X column 'c' has 1 missing value.* had none at fit"):
        routed = tree.predict(new)
    # routed as an unseen category is, which is warned about too
    with pytest.warns(UserWarning, match="categories not seen at fit"):
        unseen = tree.predict(new.assign(c=["q", "s"]))
    assert routed[1] == unseen[1]
    # a column that held missing values at fit: nothing to say
    held = X.assign(c=X["c"].mask(X.index < 20))
    tree = DistilledTree(max_leaf_nodes=6, random_state=0).fit(held, teacher_scores=scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree.predict(new)


def test_gam_warns_of_categories_its_subsample_missed():
    rng = np.random.default_rng(0)
    n = 400
    c = rng.choice(["p", "q"], n).astype(object)
    c[:12] = ["r", "s", "t"] * 4  # rare levels, 12 rows: a subsample of 40 misses some
    X = pd.DataFrame({"a": rng.normal(size=n), "c": c})
    scores = X["a"] - 4.0 * X["c"].isin(["r", "s", "t"])
    gam = DistilledGAM(student=ExplainableBoostingRegressor(**_SMALL), max_samples=40)
    with pytest.warns(UserWarning, match="max_samples drew to fit the student") as caught:
        gam.set_params(random_state=0).fit(X, teacher_scores=scores)
    (said,) = [str(w.message) for w in caught if "max_samples drew" in str(w.message)]
    # the rows and categories it names: those predict, on the same X, calls unseen
    with pytest.warns(UserWarning, match="categories not seen at fit") as told:
        gam.predict(X)
    (unseen,) = [str(w.message) for w in told if "not seen at fit" in str(w.message)]
    listed = [level for level in "rst" if f"'{level}'" in unseen.split(":")[1].split("]")[0]]
    rows = int(X["c"].isin(listed).sum())
    assert listed and f"'c' ({rows} rows, {len(listed)} categories)" in said
    # every row drawn: nothing to say
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*max_samples drew")
        gam.set_params(max_samples=None).fit(X, teacher_scores=scores)


def test_two_class_columns_read_with_the_default_response_name_the_fix():
    X, y, current, _ = _versions()
    P = current.predict_proba(X)
    fix = r"teacher_scores have 2 columns .* pass response='predict_proba'"
    with pytest.raises(ValueError, match=fix):
        DistilledTree(calibration="isotonic").fit(X, y, teacher_scores=P)
    with pytest.raises(ValueError, match=fix):
        _audit().fit(X, y, teacher_scores=P)
    # the fix it names works: the same tree as from the event's column alone (an isotonic map
    # reads the log-odds of class columns as it reads the probability: in order; up to the
    # clipping of probabilities before their log-odds)
    two = DistilledTree(calibration="isotonic", response="predict_proba", random_state=0)
    one = DistilledTree(calibration="isotonic", random_state=0)
    np.testing.assert_allclose(
        two.fit(X, y, teacher_scores=P).predict(X),
        one.fit(X, y, teacher_scores=P[:, 1]).predict(X),
        atol=1e-3,
    )


def test_a_rare_outcomes_probabilities_exported_to_two_decimals_are_the_teachers():
    # half a step of 0.01 (0.005) is above 1% of a range of probabilities under 0.5: such
    # exports were refused as another black box's scores
    X, y, _ = _world(n=400)
    teacher = LogisticRegression().fit(X, y)
    teacher.intercept_ = teacher.intercept_ - 3.0  # a rare event: P(1) within [0, 0.4]
    P = teacher.predict_proba(X)
    spread = np.ptp(P[:, 1])
    assert spread < 0.5 and np.any(np.abs(np.round(P[:, 1], 2) - P[:, 1]) > 0.01 * spread)
    DistilledTree(teacher, max_leaf_nodes=4).fit(X, teacher_scores=np.round(P[:, 1], 2))
    # the same scores to two decimals but of another black box are still refused
    other = np.round(np.clip(P[:, 1] + 0.03, 0, 1), 2)
    with pytest.raises(ValueError, match="teacher_scores differ"):
        DistilledTree(teacher, max_leaf_nodes=4).fit(X, teacher_scores=other)
    # percentages beside a teacher: the advice is to divide them, not response='predict'
    # (which would query the classifier's labels to compare)
    with pytest.raises(ValueError, match=r"percentages divided by 100") as refused:
        DistilledTree(teacher, max_leaf_nodes=4).fit(X, teacher_scores=100 * P[:, 1])
    assert "response='predict'" not in str(refused.value)


def test_a_mostly_zero_number_is_no_copy_of_a_flag_it_does_not_fix():
    # each distinct non-zero value is a level of one row, which "fixes" the flag on its row:
    # a number that is zero on 86% of rows was named a copy (1.000) of a flag that needs age
    rng = np.random.default_rng(2)
    n = 2000
    gain = np.where(rng.uniform(size=n) < 0.86, 0.0, rng.lognormal(8, 1, n))
    age = rng.uniform(20, 70, n)
    flag = ((gain > 0) & (age > 45)).astype(float)
    X = pd.DataFrame({"gain": gain, "age": age})
    assert _score_copies(X, flag) == ({}, set())
    # the flag itself, as a number: still named
    assert set(_score_copies(X.assign(copy=flag), flag)[0]) == {"copy"}


def test_a_threshold_of_a_number_with_a_sparse_tail_is_a_copy_of_the_flag():
    # the flagged rows lie on one-row values of the number (levels under five rows fix
    # nothing), but one cut of it separates the flag: a copy
    rng = np.random.default_rng(3)
    points = np.round(np.concatenate([rng.uniform(0, 50, 2900), rng.uniform(60, 100, 100)]), 3)
    flag = (points >= 60).astype(float)
    copies, _ = _score_copies(pd.DataFrame({"points": points, "x": rng.normal(size=3000)}), flag)
    assert copies == {"points": 1.0}


def test_the_teachers_labels_or_scores_rounded_to_whole_numbers_are_not_its_probabilities():
    # a grid as coarse as the range (0/1) says nothing of which black box gave it
    X, _, current, _ = _versions()
    with pytest.raises(ValueError, match="teacher_scores differ"):
        DistilledTree(current, max_leaf_nodes=4).fit(
            X, teacher_scores=current.predict(X).astype(float)
        )
