"""Record identifiers (``groups``) in the calibration folds of DistilledTree and DistilledGAM."""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from interpret.glassbox import ExplainableBoostingRegressor
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold, cross_validate

import sklearn_distill._calibration as calibration
import sklearn_distill.gam as gam_module
from sklearn_distill import DistilledGAM, DistilledTree


def _small_ebm():
    return ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=100, interactions=0, max_bins=16, n_jobs=1, random_state=0
    )


def _make(kind, **params):
    if kind == "tree":
        return DistilledTree(max_leaf_nodes=4, random_state=0, **params)
    return DistilledGAM(student=_small_ebm(), random_state=0, **params)


def _copied_records(n_records=80, copies=3, seed=0, strength=0.0):
    """Every record entered ``copies`` times (same features, score and label); the label's
    log-odds are ``strength`` times the score (0: a score that says nothing of it)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n_records), "b": rng.normal(size=n_records)})
    score = rng.normal(size=n_records)
    y = (rng.uniform(size=n_records) < 1 / (1 + np.exp(-strength * score))).astype(int)
    rows = np.repeat(np.arange(n_records), copies)
    X = X.iloc[rows].reset_index(drop=True)
    return X, y[rows], score[rows], rows


def _spy_on_folds(monkeypatch):
    splits = []

    def spied(kind):
        class Spied(kind):
            def split(self, X, y=None, groups=None):
                for train, test in super().split(X, y, groups):
                    splits.append((train, test))
                    yield train, test

        return Spied

    for name in ("StratifiedKFold", "StratifiedGroupKFold"):
        monkeypatch.setattr(calibration, name, spied(getattr(calibration, name)))
    return splits


@pytest.mark.parametrize("kind", ["tree", "gam"])
def test_calibration_folds_keep_each_record_together(kind, monkeypatch):
    X, y, score, rows = _copied_records()
    # identifiers of any kind: text, read as given
    records = np.array([f"case-{r:03d}" for r in rows], dtype=object)
    splits = _spy_on_folds(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _make(kind, calibration="isotonic", cv=3).fit(X, y, teacher_scores=score, groups=records)
    assert len(splits) == 3
    for train, test in splits:
        assert not set(records[train]) & set(records[test])
    # and by rows without them: some record is split (what the identifiers prevent)
    splits.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _make(kind, calibration="isotonic", cv=3).fit(X, y, teacher_scores=score)
    assert any(set(records[train]) & set(records[test]) for train, test in splits)


def _out_of_fold_probability(monkeypatch, **fit_kwargs):
    """The cross-fitted P(y = 1 | score) a calibrated DistilledTree's target is made of."""
    seen = []
    cross_fit = gam_module.cross_fit_calibration

    def spied(*args, **kwargs):
        probability, calibrator = cross_fit(*args, **kwargs)
        seen.append(probability)
        return probability, calibrator

    monkeypatch.setattr(gam_module, "cross_fit_calibration", spied)
    X, y, score, rows = _copied_records(n_records=150, copies=5, strength=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _make("tree", calibration="isotonic", cv=3).fit(X, y, teacher_scores=score, **fit_kwargs)
    monkeypatch.undo()
    return seen[0], y, rows


def test_a_grouped_calibration_does_not_read_a_records_label_through_its_copies(monkeypatch):
    # split by rows, a held-out row's copies sit in the fitting folds with its score and label,
    # and the isotonic steps lean its probability towards its own label: the out-of-fold
    # probabilities fit the labels better than a calibration of other records can (on seeds
    # 0 to 5 of these data the log-loss by rows was 0.053 to 0.118 below that by records)
    by_rows, y, rows = _out_of_fold_probability(monkeypatch)
    by_records, _, _ = _out_of_fold_probability(monkeypatch, groups=rows)
    assert log_loss(y, by_records) - log_loss(y, by_rows) > 0.03
    # each row's probability leans towards its own label
    assert np.mean((by_rows - by_records) * (2 * y - 1)) > 0


def test_groups_are_matched_by_position_and_refused_when_bad():
    X, y, score, rows = _copied_records(n_records=30)
    tree = _make("tree", calibration="sigmoid", cv=3)
    cases = [
        (
            rows[:-1],
            ValueError,
            r"groups must be one record identifier per row of X \(90\); got 89",
        ),
        (
            np.where(rows == 4, np.nan, rows.astype(float)),
            ValueError,
            r"groups must be record identifiers without missing values; got 3 missing value",
        ),
        ("case", TypeError, r"groups must be a 1-D array-like of 90 record identifiers; got 'c"),
        (
            np.column_stack([rows, rows]),
            TypeError,
            r"groups must be a 1-D array-like of 90 record identifiers; got an array of shape",
        ),
        # fewer records than calibration folds
        (rows % 2, ValueError, r"groups must be records small enough to split into cv=3"),
        (
            pd.Series(rows, index=X.index[::-1]),
            ValueError,
            r"groups has X.s row labels",
        ),
    ]
    for groups, error, message in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(error, match=message):
                tree.fit(X, y, teacher_scores=score, groups=groups)
    assert np.all(rows == np.repeat(np.arange(30), 3))  # nothing given was changed


def test_groups_without_calibration_are_said_to_have_no_effect():
    X, _, score, rows = _copied_records(n_records=30)
    plain = _make("tree").fit(X, teacher_scores=score)
    with pytest.warns(UserWarning, match=r"groups has no effect with calibration=None"):
        grouped = _make("tree").fit(X, teacher_scores=score, groups=rows)
    np.testing.assert_array_equal(grouped.predict(X), plain.predict(X))


def test_groups_reach_fit_through_metadata_routing():
    X, y, score, rows = _copied_records(n_records=60)
    tree = _make("tree", calibration="sigmoid", cv=3)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree.set_fit_request(teacher_scores=True, groups=True)
        tree.set_score_request(teacher_scores=True)
        result = cross_validate(
            tree,
            X,
            y,
            cv=GroupKFold(n_splits=3),
            params={"teacher_scores": score, "groups": rows},
            return_estimator=True,
        )
    for fitted in result["estimator"]:
        assert fitted._fit_records_ is not None  # its calibration folds were by records


def test_the_report_takes_a_rule_tree_calibrated_by_the_audits_records_only():
    from sklearn_distill import CompareAudit
    from sklearn_distill.report import audit_report_sections

    rng = np.random.default_rng(4)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = X["a"] - X["b"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    records = np.repeat(np.arange(n // 3), 3)  # each record entered three times
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = CompareAudit(
            calibration="sigmoid", cv=2, n_crossfits=1, interactions=0, random_state=0
        ).fit(X, y, teacher_scores=logit, groups=records)

        def tree(**groups):
            return DistilledTree(calibration="sigmoid", cv=2, max_leaf_nodes=4).fit(
                X, y, teacher_scores=logit, **groups
            )

        for fitted, got in (
            (tree(), "one fitted without groups"),
            (tree(groups=np.arange(n) // 2), "one fitted with other record identifiers"),
        ):
            with pytest.raises(
                ValueError, match=rf"rule_tree must be a tree whose calibration.*'{got}'"
            ):
                audit_report_sections(audit, n_bootstrap=20, rule_tree=fitted)
        # the same records under other identifiers are the same records
        named = np.array([f"r{r}" for r in records], dtype=object)
        sections = audit_report_sections(audit, n_bootstrap=20, rule_tree=tree(groups=named))
    assert any(section.heading == "The black box as rules" for section in sections)
