import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_distill.kd import FeatureDistillation
from lightning_distill.losses import (
    HintRegressor,
    attention_map,
    attention_transfer_loss,
    distillation_loss,
    distillation_terms,
    hint_loss,
    kd_loss,
    label_smoothing_loss,
)


def reference_kd(student, teacher, temperature):
    """T^2 * mean over samples of sum_k p_t log(p_t / p_s), in float64 numpy."""
    s = np.asarray(student, dtype=np.float64) / temperature
    t = np.asarray(teacher, dtype=np.float64) / temperature
    log_ps = s - s.max(1, keepdims=True)
    log_ps -= np.log(np.exp(log_ps).sum(1, keepdims=True))
    log_pt = t - t.max(1, keepdims=True)
    log_pt -= np.log(np.exp(log_pt).sum(1, keepdims=True))
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(1)
    return temperature**2 * kl.mean()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_kd_loss_equals_float64_reference(temperature):
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 10, generator=gen) * 3, torch.randn(16, 10, generator=gen) * 3
    got = kd_loss(s, t, temperature)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference_kd(s.numpy(), t.numpy(), temperature), rel=1e-5)
    got64 = kd_loss(s.double(), t.double(), temperature)
    assert got64.dtype == torch.float64
    assert got64.item() == pytest.approx(reference_kd(s.numpy(), t.numpy(), temperature), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 6),
    classes=st.integers(2, 7),
    temperature=st.floats(0.25, 10.0),
    seed=st.integers(0, 10_000),
)
def test_kd_gradient_is_t_times_probability_gap_over_batch(batch, classes, temperature, seed):
    gen = torch.Generator().manual_seed(seed)
    s = (torch.randn(batch, classes, generator=gen, dtype=torch.float64) * 4).requires_grad_()
    t = torch.randn(batch, classes, generator=gen, dtype=torch.float64) * 4
    kd_loss(s, t, temperature).backward()
    expected = temperature * (F.softmax(s / temperature, 1) - F.softmax(t / temperature, 1)) / batch
    torch.testing.assert_close(s.grad, expected.detach(), rtol=1e-9, atol=1e-12)


def test_kd_zero_when_student_equals_teacher_and_shift_invariant():
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    assert kd_loss(s, s.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-7)
    base = kd_loss(s, t, 3.0)
    torch.testing.assert_close(kd_loss(s + 7.5, t, 3.0), base, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kd_loss(s, t - 100.0, 3.0), base, rtol=1e-5, atol=1e-6)
    # a per-sample constant too
    torch.testing.assert_close(
        kd_loss(s + torch.arange(8.0)[:, None], t, 3.0), base, rtol=1e-5, atol=1e-6
    )


def test_kd_reductions():
    gen = torch.Generator().manual_seed(2)
    s, t = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    per_sample = kd_loss(s, t, 2.0, reduction="none")
    assert per_sample.shape == (6,)
    assert (per_sample >= 0).all()
    torch.testing.assert_close(kd_loss(s, t, 2.0, reduction="sum"), per_sample.sum())
    torch.testing.assert_close(kd_loss(s, t, 2.0), per_sample.sum() / 6)
    # agrees with torch's KLDivLoss(batchmean) times T^2
    expected = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean") * 4
    torch.testing.assert_close(kd_loss(s, t, 2.0), expected)


@pytest.mark.parametrize("magnitude", [1e4, -1e4])
def test_kd_finite_for_huge_logits(magnitude):
    s = torch.tensor([[magnitude, 0.0, -magnitude], [0.0, magnitude, 1.0]], requires_grad=True)
    t = torch.tensor([[-magnitude, 0.0, magnitude], [magnitude, 0.0, 1.0]])
    loss = kd_loss(s, t, 1.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()
    assert loss.item() == pytest.approx(reference_kd(s.detach().numpy(), t.numpy(), 1.0), rel=1e-5)


def test_kd_under_bf16_autocast_computes_in_float32():
    gen = torch.Generator().manual_seed(3)
    s = (torch.randn(8, 10, generator=gen) * 1e4).bfloat16()
    t = (torch.randn(8, 10, generator=gen) * 1e4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = kd_loss(s, t, 4.0)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    expected = reference_kd(s.float().numpy(), t.float().numpy(), 4.0)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
def test_label_smoothing_loss_equals_torch(smoothing):
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(12, 7, generator=gen) * 2
    targets = torch.randint(0, 7, (12,), generator=gen)
    expected = F.cross_entropy(logits, targets, label_smoothing=smoothing)
    torch.testing.assert_close(label_smoothing_loss(logits, targets, smoothing), expected)


def test_distillation_loss_combines_terms_and_keeps_t_squared():
    gen = torch.Generator().manual_seed(5)
    s, t = torch.randn(10, 4, generator=gen), torch.randn(10, 4, generator=gen)
    y = torch.randint(0, 4, (10,), generator=gen)
    for alpha in (0.0, 0.3, 1.0):
        got = distillation_loss(s, t, y, temperature=3.0, alpha=alpha)
        expected = (1 - alpha) * F.cross_entropy(s, y) + alpha * 9.0 * F.kl_div(
            F.log_softmax(s / 3, 1), F.softmax(t / 3, 1), reduction="batchmean"
        )
        torch.testing.assert_close(got, expected)
    terms = distillation_terms(s, t, y, temperature=3.0, alpha=0.25, label_smoothing=0.1)
    torch.testing.assert_close(terms.ce, F.cross_entropy(s, y, label_smoothing=0.1))
    torch.testing.assert_close(terms.kd, kd_loss(s, t, 3.0))
    torch.testing.assert_close(terms.total, 0.75 * terms.ce + 0.25 * terms.kd)


def test_hint_loss_formula_and_regressor_gradients():
    gen = torch.Generator().manual_seed(6)
    student = torch.randn(3, 4, 5, 5, generator=gen, requires_grad=True)
    teacher = torch.randn(3, 8, 10, 10, generator=gen)
    regressor = HintRegressor((4, 5, 5), (8, 10, 10))
    loss = hint_loss(student, teacher, regressor)
    mapped = F.interpolate(
        regressor.map(student), size=(10, 10), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(loss, ((mapped - teacher) ** 2).mean())
    loss.backward()
    assert regressor.map.weight.grad is not None and regressor.map.weight.grad.abs().sum() > 0
    assert student.grad.abs().sum() > 0
    # vector features go through a linear map
    linear = HintRegressor((6,), (9,))
    v = torch.randn(4, 6, generator=gen)
    w = torch.randn(4, 9, generator=gen)
    torch.testing.assert_close(hint_loss(v, w, linear), ((linear.map(v) - w) ** 2).mean())


@pytest.mark.parametrize(
    "student, teacher, regressor, error, words",
    [
        ([1.0], torch.randn(2, 5), torch.nn.Linear(3, 5), TypeError, "student_feature"),
        (torch.randn(2, 3), [1.0], torch.nn.Linear(3, 5), TypeError, "teacher_feature"),
        (torch.randn(2, 3), torch.ones(2, 5, dtype=torch.long), torch.nn.Linear(3, 5),
         TypeError, "teacher_feature must be a floating-point"),
        (torch.randn(2, 3), torch.randn(2, 5), None, TypeError, "regressor"),
        (torch.randn(2, 3), torch.randn(2, 5), lambda x: (x,), TypeError, "regressor"),
        (torch.full((2, 3), float("nan")), torch.randn(2, 5), torch.nn.Linear(3, 5),
         ValueError, "student_feature must be finite"),
        (torch.randn(2, 3), torch.full((2, 5), float("inf")), torch.nn.Linear(3, 5),
         ValueError, "teacher_feature must be finite"),
        (torch.tensor(1.0), torch.randn(2, 5), torch.nn.Linear(3, 5),
         ValueError, r"student_feature must be a tensor with a batch dimension \[batch, ...\]"),
        # no value per sample: a mean over nothing (NaN), or a hint the student cannot change
        (torch.randn(2, 3), torch.randn(2, 0), lambda x: x[:, :0],
         ValueError, r"teacher_feature must be a feature of at least one value per sample"),
        (torch.randn(2, 0), torch.randn(2, 5), lambda x: torch.zeros(2, 5),
         ValueError, r"student_feature must be a feature of at least one value per sample"),
    ],
)  # fmt: skip
def test_hint_loss_refuses_bad_input_naming_it(student, teacher, regressor, error, words):
    # as the other feature losses: no AttributeError from deep inside, no silent NaN or inf loss
    with pytest.raises(error, match=words):
        hint_loss(student, teacher, regressor)


@pytest.mark.parametrize(
    "student_shape, teacher_shape, error, words",
    [
        ((4,), (0,), ValueError, r"teacher_shape must be a tuple of sizes >= 1.*got \(0,\)"),
        ((0,), (4,), ValueError, r"student_shape must be a tuple of sizes >= 1.*got \(0,\)"),
        ((-1,), (4,), ValueError, r"student_shape must be a tuple of sizes >= 1.*got \(-1,\)"),
        ((3, 4, 4), (5, 0, 2), ValueError, r"teacher_shape must be .*got \(5, 0, 2\)"),
        ((3, 0), (3, 4), ValueError, r"student_shape must be .*got \(3, 0\)"),
        ((2.5,), (3,), TypeError, r"student_shape must be a tuple of sizes >= 1.*got \(2.5,\)"),
        ((True,), (3,), TypeError, r"student_shape must be .*got \(True,\)"),
        (4, (3,), TypeError, r"student_shape must be a tuple of sizes >= 1.*got 4"),
    ],
)  # fmt: skip
def test_hint_regressor_refuses_bad_shapes_naming_them(student_shape, teacher_shape, error, words):
    # a size of 0 built a regressor whose hint loss was NaN (a mean over nothing) or ignored the
    # student; a negative size or a non-integer one failed inside torch
    with pytest.raises(error, match=words):
        HintRegressor(student_shape, teacher_shape)


def test_hint_loss_takes_finite_features_whose_sum_overflows():
    # the finite check reads the features' sum, and looks closer only when it is not finite:
    # finite float16 values whose sum overflows are not refused
    student = torch.full((4, 8), 6e4, dtype=torch.float16)
    teacher = torch.full((4, 8), 6e4, dtype=torch.float16)
    assert not torch.isfinite(student.sum())
    loss = hint_loss(student, teacher, lambda s: s)
    assert float(loss) == 0.0


def _at_reference(fs, ft, variant):
    """Attention transfer written out with loops, float64."""
    fs, ft = fs.double(), ft.double()
    if fs.shape[2:] != ft.shape[2:]:  # pool the larger feature (not its map) to the smaller
        size = tuple(min(a, b) for a, b in zip(fs.shape[2:], ft.shape[2:]))
        fs, ft = F.adaptive_avg_pool2d(fs, size), F.adaptive_avg_pool2d(ft, size)
    out = []
    for i in range(fs.shape[0]):
        qs = (fs[i] ** 2).sum(0)
        qt = (ft[i] ** 2).sum(0)
        qs = qs.flatten() / math.sqrt(float((qs**2).sum()))
        qt = qt.flatten() / math.sqrt(float((qt**2).sum()))
        diff = qs - qt
        out.append(diff.norm() if variant == "paper" else (diff**2).mean())
    return torch.stack(out).mean()


@pytest.mark.parametrize("variant", ["paper", "code"])
@pytest.mark.parametrize("sizes", [((4, 6, 6), (9, 6, 6)), ((4, 8, 8), (9, 4, 4))])
def test_attention_transfer_matches_reference(variant, sizes):
    gen = torch.Generator().manual_seed(7)
    fs = torch.randn(3, *sizes[0], generator=gen, dtype=torch.float64)
    ft = torch.randn(3, *sizes[1], generator=gen, dtype=torch.float64)
    got = attention_transfer_loss(fs, ft, variant=variant)
    torch.testing.assert_close(got, _at_reference(fs, ft, variant))
    assert attention_transfer_loss(fs, fs.clone() * 3, variant=variant).item() == pytest.approx(
        0.0, abs=1e-12
    )


def test_attention_transfer_variant_is_explicit():
    f = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError):
        attention_transfer_loss(f, f)  # no default variant
    with pytest.raises(ValueError, match="variant"):
        attention_transfer_loss(f, f, variant="other")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, t, y: kd_loss(s, t[:, :3]), ValueError, "same number of classes"),
        (lambda s, t, y: kd_loss(s, t, 0.0), ValueError, "temperature"),
        (lambda s, t, y: kd_loss(s, t, -1.0), ValueError, "temperature"),
        (lambda s, t, y: kd_loss(s, t, float("nan")), ValueError, "temperature"),
        (lambda s, t, y: kd_loss(s.long(), t), TypeError, "student_logits.*floating"),
        (lambda s, t, y: kd_loss(s, t.int()), TypeError, "teacher_logits.*floating"),
        (lambda s, t, y: kd_loss(s, t, reduction="avg"), ValueError, "reduction"),
        (lambda s, t, y: kd_loss(s[0], t[0]), ValueError, "student_logits.*shape"),
        (lambda s, t, y: distillation_loss(s, t, y, alpha=1.5), ValueError, "alpha"),
        (lambda s, t, y: distillation_loss(s, t, y, alpha=-0.1), ValueError, "alpha"),
        (
            lambda s, t, y: distillation_loss(s, t, y + 4),
            ValueError,
            r"targets must lie in \[0, 3\]",
        ),
        (lambda s, t, y: distillation_loss(s, t, y - 5), ValueError, "targets must lie"),
        (lambda s, t, y: distillation_loss(s, t, y.float()), TypeError, "targets.*integer"),
        (lambda s, t, y: label_smoothing_loss(s, y, 2.0), ValueError, "smoothing"),
    ],
)
def test_bad_input_errors_name_the_argument(call, error, match):
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    s_before, t_before = s.clone(), t.clone()
    with pytest.raises(error, match=match):
        call(s, t, y)
    assert torch.equal(s, s_before) and torch.equal(t, t_before)


def test_attention_transfer_bad_features():
    f = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError, match="feature must be a .* tensor; got list"):
        attention_transfer_loss([[1.0]], f, variant="code")
    with pytest.raises(
        ValueError, match=r"feature must be a \[B, C, H, W\] tensor with C, H, W >= 1; got shape"
    ):
        attention_transfer_loss(f[0], f, variant="code")
    with pytest.raises(ValueError, match="same batch size"):
        attention_transfer_loss(f, f[:1], variant="paper")


def _kd_long_double(student, teacher, temperature):
    """T^2 KL(p_t || p_s), batch mean, in numpy's long double: an independent reference."""
    s = student.double().numpy().astype(np.longdouble) / temperature
    t = teacher.double().numpy().astype(np.longdouble) / temperature
    log_s = s - s.max(1, keepdims=True)
    log_s = log_s - np.log(np.exp(log_s).sum(1, keepdims=True))
    log_t = t - t.max(1, keepdims=True)
    log_t = log_t - np.log(np.exp(log_t).sum(1, keepdims=True))
    return float((np.exp(log_t) * (log_t - log_s)).sum(1).mean() * temperature**2)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 100.0, 1e3, 1e5, 1e6])
def test_kd_loss_float32_matches_long_double_reference_at_any_temperature(temperature):
    gen = torch.Generator().manual_seed(3)
    s, t = 3 * torch.randn(32, 10, generator=gen), 3 * torch.randn(32, 10, generator=gen)
    value = kd_loss(s, t, temperature)
    assert value.dtype == torch.float32
    expected = _kd_long_double(s, t, temperature)
    assert expected > 0
    # float32's own rounding of the result is ~6e-8; 1e-5 bounds the float64 path at T = 1e6
    assert abs(float(value) - expected) / expected < 1e-5


def test_kd_loss_temperature_beyond_float64_precision_is_refused():
    s = torch.randn(2, 3)
    with pytest.raises(
        ValueError, match=r"temperature must be a finite number >= 1e-06 and <= 1000000"
    ):
        kd_loss(s, s, 1e7)


def test_masked_teacher_class_contributes_exactly_zero():
    gen = torch.Generator().manual_seed(4)
    s = torch.randn(6, 5, generator=gen, requires_grad=True)
    t = torch.randn(6, 5, generator=gen)
    t_masked = t.clone()
    t_masked[:, 2] = float("-inf")
    value = kd_loss(s, t_masked, 2.0, reduction="none")
    # reference: the sum over the unmasked classes only, student softmax over all classes
    keep = [0, 1, 3, 4]
    log_p_s = torch.log_softmax(s.detach().double() / 2.0, dim=1)
    log_p_t = torch.log_softmax(t[:, keep].double() / 2.0, dim=1)
    expected = (log_p_t.exp() * (log_p_t - log_p_s[:, keep])).sum(1) * 4.0
    torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    value.sum().backward()
    assert torch.isfinite(s.grad).all()
    # masked in both: the same value as without the class at all
    s_masked = s.detach().clone()
    s_masked[:, 2] = float("-inf")
    torch.testing.assert_close(
        kd_loss(s_masked, t_masked, 3.0), kd_loss(s.detach()[:, keep], t[:, keep], 3.0)
    )


def test_masked_logit_in_label_smoothing_and_total_loss_is_not_nan():
    logits = torch.tensor([[0.5, float("-inf"), 1.0], [2.0, 0.0, float("-inf")]])
    targets = torch.tensor([0, 1])
    value = label_smoothing_loss(logits, targets, 0.0)
    expected = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(value, expected)
    assert torch.isfinite(distillation_loss(logits, logits, targets, alpha=0.5))


@pytest.mark.parametrize(
    "row", [[0.0, float("nan"), 1.0], [0.0, float("inf"), 1.0], [float("-inf")] * 3]
)
def test_label_smoothing_loss_refuses_logits_of_no_value(row):
    # before, NaN came back (and a teacher-less module trained on it)
    logits = torch.tensor([[0.5, 0.0, 1.0], row])
    with pytest.raises(ValueError, match=r"logits must be finite logits"):
        label_smoothing_loss(logits, torch.tensor([0, 2]), 0.1)


def test_a_class_the_student_masks_but_the_teacher_does_not_is_refused_not_inf():
    # the KL of a teacher that gives a class probability from a student that gives it none
    # is infinite; a loss of inf would be logged and trained on
    s = torch.tensor([[1.0, 0.5, float("-inf")], [0.0, 1.0, float("-inf")]])
    t = torch.tensor([[1.0, 0.5, 0.2], [0.0, 1.0, float("-inf")]])
    match = r"student_logits are -inf \(a masked class\) where the teacher gives probability: "
    with pytest.raises(
        ValueError, match=match + r"class 2 in row 0 of the batch \(teacher probability"
    ):
        kd_loss(s, t, 2.0)
    with pytest.raises(ValueError, match=match):
        kd_loss(s.double(), t.double(), 20.0)  # the float64 path
    # a teacher probability that underflows to zero contributes zero: finite, accepted
    far = torch.tensor([[0.0, 1.0, -1e5]], dtype=torch.float64)
    assert float(kd_loss(s[:1].double(), far, 1.0)) == pytest.approx(
        float(kd_loss(s[:1, [0, 1]].double(), far[:, [0, 1]], 1.0)), rel=1e-12
    )


def test_an_infinite_cross_entropy_is_refused_with_its_cause():
    logits = torch.tensor([[0.5, float("-inf"), 1.0], [2.0, 0.0, float("-inf")]])
    with pytest.raises(
        ValueError, match=r"got class 2 in row 1 of the batch, whose logit is -inf.*\(1 such rows\)"
    ):
        label_smoothing_loss(logits, torch.tensor([0, 2]), 0.0)
    with pytest.raises(
        ValueError, match=r"label smoothing \(0.1\) gives every class probability.*class 1 is -inf"
    ):
        label_smoothing_loss(logits, torch.tensor([0, 1]), 0.1)
    # a target out of range is the range check's to refuse (it comes first)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\]"):
        label_smoothing_loss(logits, torch.tensor([0, 5]), 0.0)
    # the same labels through the combined loss
    with pytest.raises(ValueError, match="whose logit is -inf"):
        distillation_loss(logits, logits, torch.tensor([1, 0]), alpha=0.5)


@pytest.mark.parametrize(
    ("logits", "name"),
    [
        (torch.tensor([[0.0, float("nan")]]), "student_logits"),
        (torch.tensor([[0.0, float("inf")]]), "student_logits"),
        (torch.tensor([[float("-inf"), float("-inf")]]), "student_logits"),
    ],
)
def test_nan_and_positive_infinite_logits_are_refused(logits, name):
    with pytest.raises(ValueError, match=f"{name} must be finite logits"):
        kd_loss(logits, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="teacher_logits must be finite logits"):
        kd_loss(torch.zeros(1, 2), logits)


def test_empty_batches_raise_instead_of_nan():
    empty, targets = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    for call in (
        lambda: kd_loss(empty, empty),
        lambda: distillation_loss(empty, empty, targets),
        lambda: label_smoothing_loss(empty, targets, 0.1),
        lambda: attention_transfer_loss(
            torch.zeros(0, 2, 3, 3), torch.zeros(0, 2, 3, 3), variant="code"
        ),
    ):
        with pytest.raises(ValueError, match="must hold at least one sample"):
            call()
    # a sum over no sample is well defined
    assert float(kd_loss(empty, empty, reduction="sum")) == 0.0
    assert kd_loss(empty, empty, reduction="none").shape == (0,)


@pytest.mark.parametrize("p", [0, -1.0, float("nan"), float("inf")])
def test_attention_exponent_is_validated(p):
    f = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="p must be a finite number > 0"):
        attention_transfer_loss(f, f, variant="code", p=p)
    with pytest.raises(ValueError, match="p must be a finite number > 0"):
        FeatureDistillation("a", "b", p=p)
    with pytest.raises(TypeError, match="p must be a real number"):
        attention_transfer_loss(f, f, variant="code", p="2")


@pytest.mark.parametrize("variant", ["paper", "code"])
@pytest.mark.parametrize("p", [0.5, 0.8])
def test_attention_transfer_below_p_one_has_the_gradient_of_features_with_zeros(variant, p):
    # |a|^p has an infinite slope at 0 for p < 1: a feature's exact zeros gave NaN gradients
    # (with a finite loss), which reached the student through a multiplicative mask (dropout's)
    # and made its parameters NaN at the next optimizer step. Masked out, an entry cannot
    # change the loss: its gradient is 0. Checked by finite differences (entries away from 0,
    # so that no step crosses the kink) in float64.
    gen = torch.Generator().manual_seed(3)
    sign = torch.randint(0, 2, (2, 3, 5, 3), generator=gen) * 2 - 1
    z = (sign * (0.1 + torch.rand(2, 3, 5, 3, generator=gen))).double().requires_grad_()
    mask = (torch.rand(2, 3, 5, 3, generator=gen) < 0.5).double()
    teacher = torch.randn(2, 4, 5, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda pre: attention_transfer_loss(pre * mask, teacher, variant=variant, p=p), z
    )
    assert torch.autograd.gradcheck(lambda pre: attention_map(pre * mask, p).sum(), z)
    # the values are the formula's, zeros included
    torch.testing.assert_close(
        attention_map(z * mask, p), ((z * mask).abs() ** p).sum(dim=1), rtol=0, atol=0
    )


def test_attention_transfer_is_scale_free_and_finite_at_extreme_scales():
    gen = torch.Generator().manual_seed(5)
    f, g = torch.randn(3, 2, 4, 4, generator=gen), torch.randn(3, 5, 4, 4, generator=gen)
    for variant in ("code", "paper"):
        reference = attention_transfer_loss(f, g, variant=variant)
        for scale in (1e30, 1e-30):
            value = attention_transfer_loss(f * scale, g, variant=variant)
            torch.testing.assert_close(value, reference)


def test_kd_loss_at_tiny_temperatures_is_never_nan():
    gen = torch.Generator().manual_seed(6)
    s, t = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    for temperature in (1e-3, 1e-6):
        value = kd_loss(s, t, temperature, reduction="none")
        assert not torch.isnan(value).any() and (value >= 0).all()
        assert float(kd_loss(s, s, temperature)) == 0.0
    # the teacher's argmax agreeing with the student's: T^2 KL -> 0 as T -> 0
    assert float(kd_loss(t * 2.0, t, 1e-6)) < 1e-6
    # below 1e-6 the logits' differences over T overflow float32 (T = 1e-40 gave NaN): refused
    for temperature in (1e-7, 1e-40):
        with pytest.raises(ValueError, match=r"temperature must be a finite number >= 1e-06"):
            kd_loss(s, t, temperature)


def test_a_single_logit_is_refused_not_distilled_to_zero():
    # a softmax over one class is 1: the loss would be 0 whatever the student, nothing learnt
    one = torch.randn(4, 1)
    for call in (
        lambda: kd_loss(one, one.flip(0)),
        lambda: distillation_loss(one, one, torch.zeros(4, dtype=torch.long)),
        lambda: label_smoothing_loss(one, torch.zeros(4, dtype=torch.long), 0.1),
    ):
        with pytest.raises(ValueError, match=r"classes >= 2; got shape \(4, 1\): a single logit"):
            call()


@pytest.mark.parametrize(
    ("name", "value"),
    [("teacher_shape", (8, 5, 5)), ("student_shape", (4, 3, 3)), ("channels_first", True)],
)
def test_hint_regressor_shapes_are_fixed_at_construction(name, value):
    # the map is built from them: set later, teacher_shape had resized the map's output to the
    # new size, interpolated without a word
    regressor = HintRegressor((4, 6, 6), (8, 3, 3))
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction"):
        setattr(regressor, name, value)
    out = regressor(torch.randn(2, 4, 6, 6))
    assert out.shape == (2, 8, 3, 3)
    # copies, saved weights and precision changes leave them to torch as before
    import copy

    copied = copy.deepcopy(regressor).double()
    copied.load_state_dict(regressor.state_dict())
    assert copied.teacher_shape == (8, 3, 3)
    assert torch.allclose(
        copied(torch.ones(1, 4, 6, 6, dtype=torch.float64)).float(),
        regressor(torch.ones(1, 4, 6, 6)),
        atol=1e-6,
    )
