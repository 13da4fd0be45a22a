"""DKD, RKD and PKT against their papers' formulas, written out independently in float64."""

import itertools
import math

import numpy as np
import pytest
import torch

from lightning_distill.kd.feature_losses import (
    crd_contrast_loss,
    dkd_warmup,
    factor_transfer_loss,
    sskd_selection,
)
from lightning_distill.kd.losses import hint_loss
from lightning_distill.losses import dkd_loss, kd_loss, pkt_loss, rkd_loss


def _softmax(row):
    e = np.exp(row - row.max())
    return e / e.sum()


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _dkd_reference(s, t, y, alpha, beta, temperature):
    total = 0.0
    for s_row, t_row, target in zip(s, t, y):
        ps, pt = _softmax(s_row / temperature), _softmax(t_row / temperature)
        tckd = _kl([pt[target], 1 - pt[target]], [ps[target], 1 - ps[target]])
        others = [c for c in range(len(s_row)) if c != target]
        qs = ps[others] / ps[others].sum()
        qt = pt[others] / pt[others].sum()
        total += alpha * tckd + beta * _kl(qt, qs)
    return temperature**2 * total / len(y)


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 2
    y = torch.tensor([0, 3, 1, 2, 3])
    return s, t, y


def test_dkd_matches_the_paper_formula(logits):
    s, t, y = logits
    for alpha, beta, temperature in [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (2.0, 0.0, 3.0)]:
        got = float(dkd_loss(s, t, y, alpha=alpha, beta=beta, temperature=temperature))
        expected = _dkd_reference(s.numpy(), t.numpy(), y.numpy(), alpha, beta, temperature)
        assert got == pytest.approx(expected, rel=1e-10)


def test_kd_decomposes_into_tckd_and_weighted_nckd(logits):
    s, t, y = logits
    temperature = 3.0
    for i in range(len(y)):
        si, ti, yi = s[i : i + 1], t[i : i + 1], y[i : i + 1]
        tckd = float(dkd_loss(si, ti, yi, alpha=1.0, beta=0.0, temperature=temperature))
        nckd = float(dkd_loss(si, ti, yi, alpha=0.0, beta=1.0, temperature=temperature))
        p_target = float(torch.softmax(ti / temperature, dim=1)[0, yi])
        kd = float(kd_loss(si, ti, temperature))
        assert kd == pytest.approx(tckd + (1 - p_target) * nckd, rel=1e-10)


def test_dkd_is_invariant_to_a_constant_added_to_the_logits(logits):
    s, t, y = logits
    shift = torch.tensor([[3.0], [-7.0], [100.0], [0.5], [-1e3]], dtype=torch.float64)
    base = dkd_loss(s, t, y)
    assert float(dkd_loss(s + shift, t - 2 * shift, y)) == pytest.approx(float(base), rel=1e-9)


def test_dkd_is_finite_for_huge_logits_and_zero_when_equal():
    s = torch.tensor([[1e4, -1e4, 0.0], [0.0, 5e3, -5e3]])
    y = torch.tensor([1, 1])
    assert math.isfinite(float(dkd_loss(s, s * 0.5, y)))
    assert float(dkd_loss(s, s, y)) == 0.0


def test_dkd_gradient_flows_to_the_student_only(logits):
    s, t, y = logits
    s = s.clone().requires_grad_(True)
    dkd_loss(s, t, y).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_dkd_warmup_is_linear_then_one():
    assert [dkd_warmup(e, 20) for e in (0, 1, 10, 20, 35)] == [0.0, 0.05, 0.5, 1.0, 1.0]


def _rkd_reference(s, t, wd, wa):
    def smooth_l1(a, b):
        d = abs(a - b)
        return 0.5 * d * d if d < 1 else d - 0.5

    def distances(x):
        n = len(x)
        d = np.array([[np.linalg.norm(x[i] - x[j]) for j in range(n)] for i in range(n)])
        return d / (d.sum() / (n * (n - 1)))

    def angles(x):
        n = len(x)
        out = np.zeros((n, n, n))
        for a, b, c in itertools.product(range(n), repeat=3):
            u, v = x[b] - x[a], x[c] - x[a]
            nu, nv = np.linalg.norm(u), np.linalg.norm(v)
            if nu > 0 and nv > 0:
                out[a, b, c] = u @ v / (nu * nv)
        return out

    ds, dt = distances(s), distances(t)
    as_, at = angles(s), angles(t)
    loss_d = np.mean([smooth_l1(a, b) for a, b in zip(ds.ravel(), dt.ravel())])
    loss_a = np.mean([smooth_l1(a, b) for a, b in zip(as_.ravel(), at.ravel())])
    return wd * loss_d + wa * loss_a


def test_rkd_matches_the_paper_formula():
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    t = torch.randn(5, 2, 2, generator=gen, dtype=torch.float64) * 3
    for wd, wa in [(25.0, 50.0), (1.0, 0.0), (0.0, 1.0)]:
        got = float(rkd_loss(s, t, distance_weight=wd, angle_weight=wa))
        expected = _rkd_reference(s.numpy(), t.flatten(1).numpy(), wd, wa)
        assert got == pytest.approx(expected, rel=1e-9)


def test_rkd_is_invariant_to_the_scale_of_the_embeddings():
    gen = torch.Generator().manual_seed(2)
    s = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    base = float(rkd_loss(s, t))
    assert base > 0
    assert float(rkd_loss(7.5 * s, 0.01 * t)) == pytest.approx(base, rel=1e-9)
    # and a student that is a scaled copy of the teacher has nothing to learn
    assert float(rkd_loss(4.0 * t, t)) == pytest.approx(0.0, abs=1e-12)


def test_rkd_gradient_is_finite_with_duplicate_samples():
    s = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, -1.0]], requires_grad=True)
    t = torch.randn(4, 3)
    rkd_loss(s, t).backward()
    assert torch.isfinite(s.grad).all()


def _rkd_torch_reference(s, t, distance_weight=25.0, angle_weight=50.0):
    """RKD written out pair by pair and triplet by triplet in torch (for its gradient); the
    distance of a coincident pair is clamped to 1e-6 as documented, and the direction between
    coincident samples is the constant 0 (no gradient: the angle is undefined there)."""
    n = len(s)

    def huber(a, b):
        d = (a - b).abs()
        return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()

    def distances(e):
        d = torch.stack(
            [
                torch.stack(
                    [
                        e.new_zeros(())
                        if i == j
                        else (e[i] - e[j]).pow(2).sum().clamp(min=1e-12).sqrt()
                        for j in range(n)
                    ]
                )
                for i in range(n)
            ]
        )
        return d / (d.sum() / (n * (n - 1)))

    def direction(v):
        return v / v.norm() if bool(v.detach().any()) else v.detach() * 0

    def angles(e):
        return torch.stack(
            [
                (direction(e[j] - e[i]) * direction(e[k] - e[i])).sum()
                for i, j, k in itertools.product(range(n), repeat=3)
            ]
        )

    return distance_weight * huber(distances(s), distances(t)) + angle_weight * huber(
        angles(s), angles(t)
    )


def test_rkd_gradient_with_duplicate_samples_matches_the_formula():
    # Two identical samples (two all-zero ReLU features, say): their direction is undefined and
    # must not move the student; F.normalize's 0 / max(0, 1e-12) had a gradient of 1e12.
    gen = torch.Generator().manual_seed(7)
    s = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    s[1] = s[0]
    t = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    got = s.clone().requires_grad_(True)
    expected = s.clone().requires_grad_(True)
    rkd_loss(got, t).backward()
    _rkd_torch_reference(expected, t).backward()
    assert float(rkd_loss(s, t)) == pytest.approx(float(_rkd_torch_reference(s, t)), rel=1e-10)
    torch.testing.assert_close(got.grad, expected.grad, rtol=1e-8, atol=1e-10)
    assert float(got.grad.abs().max()) < 100.0


def _pkt_reference(s, t, eps):
    def conditional(x):
        unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + eps)
        sim = (unit @ unit.T + 1) / 2
        return sim / sim.sum(axis=1, keepdims=True)

    ps, pt = conditional(s), conditional(t)
    n = len(s)
    return sum(
        pt[i, j] * math.log((pt[i, j] + eps) / (ps[i, j] + eps)) for i in range(n) for j in range(n)
    ) / (n * n)


def test_pkt_matches_the_paper_formula():
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    for eps in (1e-7, 0.1):
        expected = _pkt_reference(s.numpy(), t.numpy(), eps)
        assert float(pkt_loss(s, t, eps=eps)) == pytest.approx(expected, rel=1e-10)


def test_pkt_is_invariant_to_positive_rescaling():
    gen = torch.Generator().manual_seed(4)
    s = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    base = float(pkt_loss(s, t))
    assert base > 0
    assert float(pkt_loss(3.0 * s, 0.5 * t)) == pytest.approx(base, rel=1e-6)
    # each sample normalised by its own norm: a positive factor per sample changes nothing either
    factors = torch.tensor([[0.1], [2.0], [5.0], [1.0], [30.0]], dtype=torch.float64)
    assert float(pkt_loss(factors * s, t)) == pytest.approx(base, rel=1e-6)
    # a negative factor on one sample flips its cosine similarities: not invariant
    flipped = s.clone()
    flipped[0] *= -1
    assert float(pkt_loss(flipped, t)) != pytest.approx(base, rel=1e-3)


def test_crd_contrast_loss_matches_eq_18():
    gen = torch.Generator().manual_seed(5)
    scores = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 0.01
    n, eps = 40, 1e-7
    k = 4
    expected = 0.0
    for row in scores.numpy():
        expected += math.log(row[0] / (row[0] + k / n + eps))
        expected += sum(math.log((k / n) / (p + k / n + eps)) for p in row[1:])
    assert float(crd_contrast_loss(scores, n)) == pytest.approx(-expected / 3, rel=1e-10)


def test_sskd_selection_keeps_right_rows_and_the_best_ranked_share_of_wrong_ones():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.0],  # target 0 ranks first: right
            [0.1, 0.9, 0.0],  # target 0 ranks second
            [0.0, 0.1, 0.9],  # target 0 ranks third
            [0.2, 0.5, 0.3],  # target 2 ranks second
        ]
    )
    targets = torch.tensor([0, 0, 0, 2])
    assert sskd_selection(scores, targets, 1.0).tolist() == [0, 1, 2, 3]
    assert sskd_selection(scores, targets, 0.0).tolist() == [0]
    kept = sskd_selection(scores, targets, 0.75).tolist()  # int(3 * 0.75) = 2 wrong rows kept
    assert kept[0] == 0 and len(kept) == 3 and 2 not in kept


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: rkd_loss(torch.randn(4, 3), torch.randn(5, 3)), "teacher_embedding"),
        (lambda: rkd_loss(torch.randn(2, 3), torch.randn(2, 3)), "student_embedding"),
        (lambda: pkt_loss(torch.randn(4, 3), torch.randn(3, 3)), "teacher_embedding"),
        (lambda: pkt_loss(torch.randn(4, 3), torch.randn(4, 3), eps=0.0), "eps"),
        (lambda: rkd_loss(torch.randn(4, 3), torch.randn(4, 3), angle_weight=-1.0), "angle_weight"),
        (
            lambda: dkd_loss(torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 3])),
            "targets",
        ),
        (
            lambda: dkd_loss(
                torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4).long(), beta=-1.0
            ),
            "beta",
        ),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_rkd_needs_three_samples_with_or_without_angles():
    s, t = torch.randn(2, 3), torch.randn(2, 4)
    with pytest.raises(ValueError, match="at least 3"):
        rkd_loss(s, t)
    # two samples: one distance, divided by the mean distance it is 1 for any embeddings, so
    # the distance term is 0 with a zero gradient whatever the student: refused, not returned
    with pytest.raises(ValueError, match="student_embedding must be a batch of at least 3"):
        rkd_loss(s, t, angle_weight=0.0)
    assert math.isfinite(float(rkd_loss(torch.randn(3, 3), torch.randn(3, 4), angle_weight=0.0)))


def test_inputs_are_not_mutated(logits):
    s, t, y = logits
    copies = [s.clone(), t.clone(), y.clone()]
    dkd_loss(s, t, y)
    rkd_loss(s, t)
    pkt_loss(s, t)
    assert all(torch.equal(a, b) for a, b in zip(copies, [s, t, y]))


def test_rkd_distances_of_embeddings_with_a_large_common_offset_keep_float32_precision():
    # |a|^2 + |b|^2 - 2ab cancels when the embeddings share a large offset: the distances
    # (invariant to it) are taken after centring the batch
    gen = torch.Generator().manual_seed(5)
    s = torch.randn(16, 128, generator=gen, dtype=torch.float64)
    t = torch.randn(16, 128, generator=gen, dtype=torch.float64)
    expected = _rkd_reference(s.numpy(), t.numpy(), 25.0, 50.0)
    for offset, spread in [(20.0, 0.05), (30.0, 0.01), (100.0, 0.01)]:
        narrow = (offset + spread * s).float().requires_grad_(True)
        wide = (offset + spread * s).requires_grad_(True)
        got = rkd_loss(narrow, (offset + spread * t).float())
        assert float(got) == pytest.approx(expected, rel=1e-3), offset
        (grad_narrow,) = torch.autograd.grad(got, narrow)
        (grad_wide,) = torch.autograd.grad(rkd_loss(wide, offset + spread * t), wide)
        error = (grad_narrow.double() - grad_wide).norm() / grad_wide.norm()
        assert float(error) < 1e-2, offset


@pytest.mark.parametrize(
    "call",
    [
        lambda e: dkd_loss(e(0, 5), e(0, 5), torch.zeros(0, dtype=torch.long)),
        lambda e: pkt_loss(e(0, 5), e(0, 5)),
        lambda e: rkd_loss(e(0, 5), e(0, 5)),
        lambda e: factor_transfer_loss(e(0, 3, 4, 4), e(0, 3, 4, 4)),
        lambda e: crd_contrast_loss(e(0, 9).abs(), 100),
        lambda e: hint_loss(e(0, 3, 4, 4), e(0, 3, 4, 4), torch.nn.Identity()),
    ],
)
def test_an_empty_batch_is_refused_rather_than_a_nan_mean(call):
    with pytest.raises(ValueError, match="must hold at least one sample for a mean"):
        call(lambda *shape: torch.randn(*shape))


@pytest.mark.parametrize(
    "student, teacher, name",
    [
        ((2, 0), (2, 0), "student_factor"),
        ((2, 3), (2, 0), "teacher_factor"),
        ((2, 0, 4, 4), (2, 0, 4, 4), "student_factor"),
        ((2, 3, 0, 4), (2, 3, 4, 4), "student_factor"),
    ],
    ids=["vectors", "teacher-vector", "no-channel", "no-row"],
)
def test_factor_transfer_refuses_factors_without_a_value_per_sample(student, teacher, name):
    # the normalised factors' mean over no value had been a NaN loss, silently
    with pytest.raises(ValueError, match=f"{name} must be a factor of at least one value per"):
        factor_transfer_loss(torch.randn(*student), torch.randn(*teacher))


def _near_pair(shape, gap=0.01, seed=0):
    """bfloat16 student and teacher features a small ``gap`` apart (near convergence, where
    bfloat16 arithmetic turns the relational losses into rounding noise)."""
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(*shape, generator=g).bfloat16()
    teacher = (student.float() + gap * torch.randn(*shape, generator=g)).bfloat16()
    return student, teacher


def _attention(s, t):
    from lightning_distill.kd.losses import attention_transfer_loss

    return attention_transfer_loss(s, t, variant="code")


@pytest.mark.parametrize(
    "loss, shape",
    [
        (rkd_loss, (16, 32)),
        (pkt_loss, (16, 32)),
        (factor_transfer_loss, (4, 3, 5, 5)),
        (_attention, (4, 3, 5, 5)),
    ],
    ids=["rkd", "pkt", "ft", "attention"],
)
def test_feature_losses_under_bf16_autocast_equal_the_float32_formula(loss, shape):
    student, teacher = _near_pair(shape)
    leaf = student.float().requires_grad_()
    reference = loss(leaf, teacher.float())
    (reference_grad,) = torch.autograd.grad(reference, leaf)
    mixed_leaf = student.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(mixed_leaf, teacher)
    (mixed_grad,) = torch.autograd.grad(mixed, mixed_leaf)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=1e-5, atol=0.0)
    # the gradient reaches the bfloat16 feature rounded to its dtype
    torch.testing.assert_close(mixed_grad.float(), reference_grad.bfloat16().float())
    # float64 stays float64
    assert loss(student.double(), teacher.double()).dtype == torch.float64


def test_sskd_similarity_and_kl_under_bf16_autocast_equal_float32():
    from lightning_distill.kd.feature_losses import _rotation_similarity, _softened_kl

    original, rotated = _near_pair((8, 16), gap=0.5)
    reference = _rotation_similarity(original.float(), rotated.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = _rotation_similarity(original, rotated)
        kl = _softened_kl(mixed, mixed + 0.01, 4.0)
    torch.testing.assert_close(mixed, reference, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(kl, _softened_kl(reference, reference + 0.01, 4.0))


def test_crd_contrast_under_bf16_autocast_is_computed_in_float32():
    import copy

    from lightning_distill.kd.feature_losses import CRD, FeatureContext

    torch.manual_seed(0)
    crd = CRD(8, 8, num_samples=32, embed_dim=6, num_negatives=20)
    # bfloat16 heads give the same embeddings with and without autocast: what differs is the
    # arithmetic after them
    crd.embed_student.bfloat16()
    crd.embed_teacher.bfloat16()
    twin = copy.deepcopy(crd)
    student, teacher = _near_pair((4, 8))
    context = FeatureContext(index=torch.tensor([3, 7, 11, 30]))
    reference = twin(student, teacher, context)["crd"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = crd(student, teacher, context)["crd"]
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(crd.memory_student, twin.memory_student)


_NAN_FEATURE = torch.full((2, 3, 4, 4), float("nan"))


@pytest.mark.parametrize(
    "call, error, words",
    [
        # factor transfer: a NaN factor had given a NaN loss
        (lambda: factor_transfer_loss(_NAN_FEATURE, torch.randn(2, 3, 4, 4)), ValueError,
         "student_factor must be finite"),
        (lambda: factor_transfer_loss(torch.randn(2, 3, 4, 4), _NAN_FEATURE), ValueError,
         "teacher_factor must be finite"),
        # CRD: NaN or negative scores had given NaN, no negative column a loss of about 0
        (lambda: crd_contrast_loss(torch.full((3, 5), float("nan")), 10), ValueError,
         "scores must be finite"),
        (lambda: crd_contrast_loss(-torch.rand(3, 5), 10), ValueError, "scores must be finite"),
        (lambda: crd_contrast_loss(torch.rand(3, 1), 10), ValueError, "K >= 1 negatives"),
        # SSKD's selection: a target outside the columns had counted as ranked first (kept)
        (lambda: sskd_selection(torch.randn(4, 3), torch.tensor([0, 1, 2, 5]), 0.5), ValueError,
         r"targets must lie in \[0, 2\]"),
        (lambda: sskd_selection(torch.randn(4, 3), torch.tensor([0.0, 1, 2, 1]), 0.5), TypeError,
         "targets must hold integer"),
        (lambda: sskd_selection(torch.randn(4), torch.tensor([0, 1, 2, 1]), 0.5), ValueError,
         "scores must be a"),
    ],
)  # fmt: skip
def test_pure_feature_losses_refuse_bad_values_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_sskd_selection_keeps_the_right_rows_and_the_best_ranked_wrong_ones():
    # independent: row kept when the target is the top column, or among the ratio share of
    # the wrong rows whose target ranks best
    gen = torch.Generator().manual_seed(9)
    scores = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 5, (8,), generator=gen)
    rank = [int((scores[i] > scores[i, targets[i]]).sum()) for i in range(8)]
    wrong = sorted((r, i) for i, r in enumerate(rank) if r > 0)
    for ratio in (0.0, 0.5, 1.0):
        kept = {i for i, r in enumerate(rank) if r == 0}
        kept |= {i for _, i in wrong[: int(len(wrong) * ratio)]}
        assert sskd_selection(scores, targets, ratio).tolist() == sorted(kept)
