"""Record identifiers (``groups``) in student_size_pilot: the held-out split and the students'
calibration folds keep each record's rows together."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeRegressor

import sklearn_distill.gam as gam_module
from sklearn_distill import DistilledTree
from sklearn_distill.pilot import student_size_pilot


def _copied_records(n_records=120, copies=3, seed=0):
    """Every record entered ``copies`` times (same features and score); the score a noisy
    function of the features, so that a student that memorises rows reads as faithful on
    their copies and only there."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n_records), "b": rng.normal(size=n_records)})
    score = X["a"].to_numpy() + rng.normal(scale=1.0, size=n_records)
    y = (rng.uniform(size=n_records) < 1 / (1 + np.exp(-score))).astype(int)
    rows = np.repeat(np.arange(n_records), copies)
    return X.iloc[rows].reset_index(drop=True), y[rows], score[rows], rows


def _spy_on_fits(monkeypatch):
    """The rows (the features' first column) and records each distiller was fitted and
    scored on."""
    seen = {"fit": [], "groups": [], "test": []}
    fit, fidelity = gam_module.DistillerBase.fit, gam_module.DistillerBase.fidelity

    def spy_fit(self, X, y=None, *, teacher_scores=None, groups=None):
        seen["fit"].append(np.asarray(X)[:, 0].copy())
        seen["groups"].append(None if groups is None else np.asarray(groups).copy())
        return fit(self, X, y, teacher_scores=teacher_scores, groups=groups)

    def spy_fidelity(self, X, *args, **kwargs):
        seen["test"].append(np.asarray(X)[:, 0].copy())
        return fidelity(self, X, *args, **kwargs)

    monkeypatch.setattr(gam_module.DistillerBase, "fit", spy_fit)
    monkeypatch.setattr(gam_module.DistillerBase, "fidelity", spy_fidelity)
    return seen


LADDER = [("tree", "deep tree", DecisionTreeRegressor(min_samples_leaf=1, random_state=0))]


@pytest.mark.parametrize("with_y", [False, True])
def test_no_record_is_on_both_sides_of_the_split(monkeypatch, with_y):
    X, y, score, records = _copied_records()
    seen = _spy_on_fits(monkeypatch)
    student_size_pilot(
        None,
        X,
        teacher_scores=score,
        y=y if with_y else None,
        students=LADDER,
        random_state=0,
        groups=records,
    )
    # each record's "a" is its own (continuous, drawn once per record)
    fitted, held_out = set(seen["fit"][0]), set(seen["test"][0])
    assert fitted and held_out and not fitted & held_out
    share = len(seen["test"][0]) / len(X)
    assert 0.15 < share < 0.35  # about the default test_size of 0.25
    # without groups, rows split at random: copies of records on both sides
    seen = _spy_on_fits(monkeypatch)
    student_size_pilot(None, X, teacher_scores=score, students=LADDER, random_state=0)
    assert set(seen["fit"][-1]) & set(seen["test"][-1])


def test_held_out_fidelity_of_a_memorising_student_is_not_read_off_copies():
    X, _, score, records = _copied_records()
    by_rows = student_size_pilot(None, X, teacher_scores=score, students=LADDER, random_state=0)
    by_records = student_size_pilot(
        None, X, teacher_scores=score, students=LADDER, random_state=0, groups=records
    )
    # the score's noise is as large as its signal: a tree grown to single rows reproduces the
    # held-out copies of records it saw (R^2 near 1 on rows), not new records
    assert by_rows["r2"].iloc[0] > 0.7
    assert by_records["r2"].iloc[0] < 0.3


def test_a_calibrated_student_gets_the_fitting_rows_records(monkeypatch):
    X, y, score, records = _copied_records()
    seen = _spy_on_fits(monkeypatch)
    ladder = [
        ("tree", "4 leaves", DistilledTree(max_leaf_nodes=4, random_state=0)),
        ("tree", "plain", DecisionTreeRegressor(max_depth=2, random_state=0)),
    ]
    student_size_pilot(
        None,
        X,
        teacher_scores=score,
        y=y,
        students=ladder,
        random_state=0,
        groups=records,
        calibration="isotonic",
        cv=3,
    )
    for rows, groups in zip(seen["fit"], seen["groups"]):
        assert groups is not None
        # the codes follow the records: rows with the same "a" share one code, others differ
        pairs = set(zip(rows.tolist(), groups.tolist()))
        assert len(pairs) == len(set(rows.tolist())) == len(set(groups.tolist()))
    # no calibration: the students are given no records (they would only warn)
    seen = _spy_on_fits(monkeypatch)
    student_size_pilot(None, X, teacher_scores=score, students=ladder, groups=records)
    assert seen["groups"] == [None, None]


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        (np.arange(5), ValueError, "groups must be one record identifier per row"),
        (np.array([0.0, np.nan] * 180), ValueError, "groups must be record identifiers without"),
        ("abc", TypeError, "groups must be a 1-D array-like"),
        (np.zeros(360), ValueError, "groups must be at least two records"),
    ],
)
def test_bad_groups_are_refused_naming_them(groups, error, match):
    X, _, score, _ = _copied_records()
    given = np.array(groups, dtype=object) if isinstance(groups, np.ndarray) else groups
    before = None if isinstance(given, str) else given.copy()
    with pytest.raises(error, match=match):
        student_size_pilot(None, X, teacher_scores=score, students=LADDER, groups=given)
    if before is not None:  # nothing the user passed is changed
        assert pd.Series(given).equals(pd.Series(before))


def _held_out_share(monkeypatch, X, score, **options):
    seen = _spy_on_fits(monkeypatch)
    student_size_pilot(None, X, teacher_scores=score, students=LADDER, **options)
    return len(seen["test"][0]) / len(X)


@pytest.mark.parametrize(("test_size", "share"), [(0.6, 0.6), (0.9, 0.9), (250, 250 / 360)])
def test_the_record_split_holds_out_test_size_of_the_rows_with_y(monkeypatch, test_size, share):
    # 120 records of 3 rows: shares of the rows that whole records reach within 1/120
    X, y, score, records = _copied_records()
    held = _held_out_share(
        monkeypatch, X, score, y=y, groups=records, test_size=test_size, random_state=0
    )
    assert abs(held - share) < 0.03


def test_records_of_several_sizes_hold_out_about_test_size_of_the_rows(monkeypatch):
    # records of 1 to 18 rows: drawing a quarter of the records held out 19% to 29% of the
    # rows over these seeds, drawing records until a quarter of the rows 24.5% to 25.3%
    rng = np.random.default_rng(1)
    sizes = rng.geometric(1 / 3, size=200)
    records = np.repeat(np.arange(200), sizes)
    X = pd.DataFrame({"a": rng.normal(size=len(records)), "b": rng.normal(size=len(records))})
    score = X["a"].to_numpy()
    for seed in range(10):
        held = _held_out_share(monkeypatch, X, score, groups=records, random_state=seed)
        assert abs(held - 0.25) < 0.02, seed


def test_a_split_whole_records_cannot_make_is_said_not_a_scikit_learn_error(monkeypatch):
    X, _, score, _ = _copied_records()
    two = (np.arange(len(X)) >= len(X) // 2).astype(int)
    with pytest.warns(UserWarning, match=r"holds out 180 of 360 rows \(50%\) for test_size=0.9"):
        held = _held_out_share(monkeypatch, X, score, groups=two, test_size=0.9)
    assert held == 0.5


def test_a_rare_class_raises_no_warning_of_folds_never_asked_for(monkeypatch):
    X, y, score, records = _copied_records()
    rare = np.zeros_like(y)
    rare[records == 0] = 1  # one record of the rare class: 3 rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        held = _held_out_share(monkeypatch, X, score, y=rare, groups=records, random_state=0)
    assert not [w for w in caught if "n_splits" in str(w.message)]
    assert abs(held - 0.25) < 0.03
