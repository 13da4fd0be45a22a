"""Which event the mimic models: with calibration=None the teacher's class score of y's event
(``classes_[1]``), whatever order the teacher keeps its classes in; teachers and scores that
cannot be matched to a binary outcome's event are refused before any model is fitted."""

import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression, LogisticRegression

from sklearn_distill import CompareAudit


def _world(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    logit = 1.5 * X[:, 0] - X[:, 1]
    y = (rng.uniform(size=n) < expit(logit)).astype(int)
    return X, y


def _audit(teacher=None, **kwargs):
    params = {
        "calibration": None,
        "student": LinearRegression(),
        "outcome": LogisticRegression(),
        "interactions": 0,
        "cv": 2,
        "n_crossfits": 1,
        "random_state": 0,
        **kwargs,
    }
    return CompareAudit(teacher, **params)


class _ReversedTeacher:
    """A fitted binary classifier that keeps its classes in the other order (classes_[0] is
    the larger label), with predict_proba's columns in that order."""

    def __init__(self, model):
        self.model = model
        self.classes_ = model.classes_[::-1]

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        return self.model.predict_proba(X)[:, ::-1]


class _NeverFitted(RegressorMixin, BaseEstimator):
    """A student that fails if the audit gets as far as fitting a model."""

    def fit(self, X, y):
        raise AssertionError("a model was fitted before the input was refused")

    def predict(self, X):
        return np.zeros(len(X))


def test_a_teacher_with_its_classes_in_the_other_order_is_read_for_ys_event():
    X, y = _world()
    teacher = LogisticRegression().fit(X, y)
    reversed_teacher = _ReversedTeacher(teacher)
    assert reversed_teacher.classes_[1] == 0  # its column 1 scores y's other label
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        plain = _audit(teacher).fit(X, y)
        swapped = _audit(reversed_teacher).fit(X, y)
    # the mimic models the log-odds of y = 1 either way: the same target, the same model
    target = teacher.decision_function(X)
    np.testing.assert_allclose(swapped.mimic_.teacher_target(X), target, atol=1e-6)
    np.testing.assert_allclose(swapped.mimic_.predict(X), plain.mimic_.predict(X), atol=1e-6)
    # its slopes have the outcome model's signs (the teacher is the outcome's own model)
    assert np.all(np.sign(swapped.mimic_.student_.coef_) == np.sign(swapped.outcome_.coef_))
    # the teacher itself is read as it is, and the calibration picture is of y's event
    assert swapped.teacher is reversed_teacher
    table = swapped.calibration_table_
    high = table["score"] > 0.5
    assert table.loc[high, "rate"].mean() > table.loc[~high, "rate"].mean()


def test_a_teacher_whose_classes_are_not_ys_labels_is_refused_without_a_calibration():
    X, y = _world()
    # trained on labels "high" (y = 1) and "low": its column 1 scores "low", y's other label
    teacher = LogisticRegression().fit(X, np.where(y == 1, "high", "low"))
    with pytest.raises(ValueError, match=r"teacher must have y's labels.*\['high', 'low'\]"):
        _audit(teacher, student=_NeverFitted()).fit(X, y)
    # y in the teacher's labels: its event is "low", the teacher's column 1
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        audit = _audit(teacher).fit(X, np.where(y == 1, "high", "low"))
    assert audit.classes_[1] == "low"
    assert np.all(np.sign(audit.mimic_.student_.coef_) == np.sign(audit.outcome_.coef_))
    # a calibration maps the score to P(y = 1) from the data: read reversed, with a warning
    with pytest.warns(UserWarning, match="score falls"):
        calibrated = _audit(teacher, calibration="sigmoid").fit(X, y)
    assert np.all(np.sign(calibrated.mimic_.student_.coef_) == np.sign(calibrated.outcome_.coef_))


@pytest.mark.parametrize("coding", ["text", "minus one", "minus one as text"])
def test_a_teacher_with_another_coding_of_ys_labels_is_read_for_ys_event(coding):
    # trained on "0"/"1" read from a file, or on -1/1 (or its text): its column 1 scores y's
    # event 1
    X, y = _world()
    labels = {
        "text": y.astype(str),
        "minus one": np.where(y == 1, 1, -1),
        "minus one as text": np.where(y == 1, "1", "-1"),
    }[coding]
    teacher = LogisticRegression().fit(X, labels)
    reference = _audit(LogisticRegression().fit(X, y)).fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        audit = _audit(teacher).fit(X, y)
    np.testing.assert_allclose(audit.mimic_.predict(X), reference.mimic_.predict(X), atol=1e-6)
    reversed_teacher = _ReversedTeacher(teacher)
    swapped = _audit(reversed_teacher).fit(X, y)
    np.testing.assert_allclose(swapped.mimic_.predict(X), reference.mimic_.predict(X), atol=1e-6)
    # the view the mimic reads swaps the columns, and is the teacher for everything else
    assert swapped.mimic_.teacher.model is teacher  # _ReversedTeacher's own attribute
    assert list(swapped.mimic_.teacher.classes_) == list(teacher.classes_)


@pytest.mark.parametrize("shift", ["y of 1/2, teacher of 0/1", "y of 0/1, teacher of 1/2"])
def test_a_teacher_of_a_shifted_coding_is_refused(shift):
    # which of the teacher's classes is y's event cannot be told: one label in common is a
    # different outcome in each coding
    X, y = _world()
    if shift.startswith("y of 1/2"):
        y_given, teacher_labels = y + 1, y
    else:
        y_given, teacher_labels = y, y + 1
    teacher = LogisticRegression().fit(X, teacher_labels)
    with pytest.raises(ValueError, match="teacher must have y's labels among its classes"):
        _audit(teacher, student=_NeverFitted()).fit(X, y_given)
    # the view of a swapped teacher is no estimator of its own: scikit-learn cannot clone it
    from sklearn.base import clone

    audit = _audit(_ReversedTeacher(LogisticRegression().fit(X, y))).fit(X, y)
    with pytest.raises(TypeError):
        clone(audit.mimic_.teacher)


def test_a_queried_teacher_of_the_other_event_is_warned_about():
    X, y = _world()
    # labels 0 and 1 like y's, but trained on the other event: its probability of y = 1
    # falls as y = 1 becomes likelier
    teacher = LogisticRegression().fit(X, 1 - y)
    with pytest.warns(UserWarning, match=r"the score falls as P\(y = 1\) rises \(the teacher's"):
        _audit(teacher).fit(X, y)


def test_two_column_scores_read_column_k_as_ys_classes_k_and_a_falling_one_is_warned():
    X, y = _world()
    probabilities = LogisticRegression().fit(X, y).predict_proba(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="the score falls")
        audit = _audit(response="predict_proba").fit(X, y, teacher_scores=probabilities)
    np.testing.assert_allclose(
        audit.mimic_.teacher_target(X, probabilities),
        np.log(probabilities[:, 1] / probabilities[:, 0]),
        atol=1e-6,
    )
    # the columns the other way round: column 1 then scores y = 0
    with pytest.warns(UserWarning, match=r"falls as P\(y = 1\) rises \(teacher_scores' column 1"):
        _audit(response="predict_proba").fit(X, y, teacher_scores=probabilities[:, ::-1])
    # two columns read as plain scores would be two targets, not a binary outcome's score
    with pytest.raises(ValueError, match="teacher_scores must be one score per row"):
        _audit(student=_NeverFitted()).fit(X, y, teacher_scores=probabilities)


@pytest.mark.parametrize("calibration", [None, "isotonic"])
def test_scores_of_more_than_two_classes_are_refused_before_any_fit(calibration):
    X, y = _world()
    three = LogisticRegression().fit(X, np.arange(len(y)) % 3)
    audit = _audit(calibration=calibration, student=_NeverFitted(), response="predict_proba")
    with pytest.raises(ValueError, match=r"teacher_scores must be .* got shape \(600, 3\)"):
        audit.fit(X, y, teacher_scores=three.predict_proba(X))
    with pytest.raises(ValueError, match="teacher must be a binary classifier.* 3 classes"):
        _audit(three, calibration=calibration, student=_NeverFitted()).fit(X, y)


def test_a_score_that_is_the_outcome_itself_is_refused():
    X, y = _world()
    labels = np.where(y == 1, "recid", "safe")
    # y's 0/1 event indicator, y itself, the indicator reversed, any coding of the two labels
    for scores in (y, 1 - y, 2.0 * y - 1, np.where(y == 1, 10.0, 3.0)):
        for outcome in (y, labels):
            with pytest.raises(ValueError, match="teacher_scores must be the black box's score"):
                _audit(student=_NeverFitted()).fit(X, outcome, teacher_scores=scores)
    # a two-valued score that is not the outcome is audited
    flag = (X[:, 0] > 0).astype(float)
    assert np.any(flag != y)
    _audit(calibration="isotonic").fit(X, y, teacher_scores=flag)


@pytest.mark.parametrize("calibration", [None, "isotonic"])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_refit_owes_nothing_to_the_fit_before_it(calibration, reverse):
    # the score's direction and the teacher as the mimic reads it are decided by each fit
    # (fit clears what an earlier fit set: a guard for the state this choice adds)
    X, y = _world()
    model = LogisticRegression().fit(X, y)
    teacher = _ReversedTeacher(model) if reverse else model
    falling = model.predict_proba(X)[:, 0]  # P(y = 0): it falls as y = 1 becomes likelier

    def fitted(audit, **scores):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the falling score is warned about
            return audit.fit(X, y, **scores)

    def same(a, b, **scores):
        np.testing.assert_allclose(a.mimic_.predict(X), b.mimic_.predict(X), atol=1e-9)
        np.testing.assert_allclose(
            a.mimic_.teacher_target(X, **scores), b.mimic_.teacher_target(X, **scores), atol=1e-9
        )
        np.testing.assert_allclose(a.mimic_residuals_, b.mimic_residuals_, atol=1e-9)

    # the falling score is another black box than the teacher: given without it (beside it,
    # scores that differ from the teacher's own are refused)
    queried = fitted(_audit(teacher, calibration=calibration))
    given = fitted(_audit(calibration=calibration), teacher_scores=falling)
    audit = fitted(_audit(calibration=calibration), teacher_scores=falling)
    same(fitted(audit.set_params(teacher=teacher)), queried)
    same(
        fitted(audit.set_params(teacher=None), teacher_scores=falling),
        given,
        teacher_scores=falling,
    )
