"""FT, CRD and SSKD as modules: formulas written out independently, stages, gradients, bad input."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_distill.kd.feature_losses import (
    CRD,
    PKT,
    RKD,
    SSKD,
    FactorTransfer,
    FeatureContext,
    factor_transfer_loss,
    rotate_batch,
)


def test_factor_transfer_loss_is_the_l1_distance_of_normalised_factors():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    expected = 0.0
    for a, b in zip(s.numpy(), t.numpy()):
        a, b = a.ravel(), b.ravel()
        expected += np.abs(a / np.linalg.norm(a) - b / np.linalg.norm(b)).sum()
    expected /= s.numel()
    assert float(factor_transfer_loss(s, t)) == pytest.approx(expected, rel=1e-10)
    # the factors are normalised per sample: a positive scale changes nothing
    assert float(factor_transfer_loss(5 * s, t)) == pytest.approx(expected, rel=1e-10)


def test_factor_transfer_pools_the_larger_factor():
    s = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    pooled = F.adaptive_avg_pool2d(s, (4, 4))
    assert float(factor_transfer_loss(s, t)) == pytest.approx(
        float(factor_transfer_loss(pooled, t))
    )


def test_factor_transfer_paraphraser_stage_then_translator_trains():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU())
    for p in teacher.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    method = FactorTransfer(4, 6, paraphraser_epochs=15, paraphraser_lr=0.1)
    batches = [torch.randn(8, 1, 5, 5) for _ in range(4)]
    assert not method.is_pretrained
    history = method.pretrain(batches, teacher)
    assert method.is_pretrained and len(history) == 15
    assert history[-1] < 0.95 * history[0]  # the autoencoder learns to reconstruct
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    # afterwards only the translator trains
    assert {id(p) for p in method.student_parameters()} == {
        id(p) for p in method.translator.parameters()
    }
    student_feature = torch.randn(8, 4, 5, 5, requires_grad=True)
    terms = method(student_feature, teacher(batches[0]))
    assert set(terms) == {"ft"}
    terms["ft"].backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in method.translator.parameters()
    )
    assert all(p.grad is None for p in method.paraphraser_encoder.parameters())
    assert student_feature.grad.abs().sum() > 0


def _crd_reference(method, s_feat, t_feat, index, contrast):
    """Eq. (18) of the CRD paper in float64, from the module's parameters and banks."""
    with torch.no_grad():
        ws, bs = method.embed_student.weight.double(), method.embed_student.bias.double()
        wt, bt = method.embed_teacher.weight.double(), method.embed_teacher.bias.double()
        vs = s_feat.double().flatten(1) @ ws.T + bs
        vt = t_feat.double().flatten(1) @ wt.T + bt
    vs = (vs / vs.norm(dim=1, keepdim=True)).numpy()
    vt = (vt / vt.norm(dim=1, keepdim=True)).numpy()
    mem_s = method.memory_student.double().numpy()
    mem_t = method.memory_teacher.double().numpy()
    n, k, tau = method.num_samples, method.num_negatives, method.temperature
    contrast = contrast.numpy()
    # student anchor against the teacher bank; teacher anchor against the student bank
    out_s = np.exp(np.einsum("bkd,bd->bk", mem_t[contrast], vs) / tau)
    out_t = np.exp(np.einsum("bkd,bd->bk", mem_s[contrast], vt) / tau)
    total = 0.0
    for out in (out_s, out_t):
        z = out.mean() * n
        p = out / z
        loss = 0.0
        for row in p:
            loss += math.log(row[0] / (row[0] + k / n + 1e-7))
            loss += sum(math.log((k / n) / (q + k / n + 1e-7)) for q in row[1:])
        total += -loss / len(p)
    new_s = mem_s[index.numpy()] * method.momentum + vs * (1 - method.momentum)
    new_s /= np.linalg.norm(new_s, axis=1, keepdims=True)
    return total, new_s


def test_crd_matches_the_paper_formula_and_updates_its_bank():
    torch.manual_seed(0)
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7)
    s_feat, t_feat = torch.randn(5, 6), torch.randn(5, 2, 5)
    index = torch.tensor([3, 0, 19, 7, 11])
    contrast = method.negatives(index, step=0)
    # the same sample gets the same negatives wherever it sits in the global batch
    shuffled = torch.tensor([11, 3, 19, 0, 7])
    again = method.negatives(shuffled, step=0)
    assert torch.equal(again[[1, 3, 2, 4, 0]], contrast)
    assert contrast.shape == (5, 8) and torch.equal(contrast[:, 0], index)
    expected, new_rows = _crd_reference(method, s_feat, t_feat, index, contrast)
    terms = method(s_feat, t_feat, FeatureContext(index=index))
    assert float(terms["crd"].detach()) == pytest.approx(expected, rel=1e-5)
    assert int(method.steps) == 1 and bool((method.normalizers > 0).all())
    assert np.allclose(method.memory_student[index].double().numpy(), new_rows, atol=1e-6)
    # Z stays fixed after the first step; the negatives change with the step
    z = method.normalizers.clone()
    method(s_feat, t_feat, FeatureContext(index=index))
    assert torch.equal(z, method.normalizers)
    assert not torch.equal(method.negatives(index, 1), contrast)


@pytest.mark.parametrize("temperature", [0.01, 0.004], ids=["T0.01", "T0.004"])
def test_crd_at_a_small_temperature_matches_the_paper_formula(temperature):
    # exp(v.m / T) overflows float32 (and the positive, divided by Z, underflows) from
    # T = 0.011 or so: the loss had been refused as non-finite scores; from the logs it is the
    # formula's value
    torch.manual_seed(0)
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7, temperature=temperature)
    s_feat, t_feat = torch.randn(5, 6), torch.randn(5, 10)
    index = torch.tensor([3, 0, 19, 7, 11])
    expected, _ = _crd_reference(method, s_feat, t_feat, index, method.negatives(index, step=0))
    loss = method(s_feat, t_feat, FeatureContext(index=index))["crd"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in method.embed_student.parameters())


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_crd_refuses_a_temperature_whose_normaliser_overflows_naming_it(training):
    method = CRD(3, 3, num_samples=10, embed_dim=2, num_negatives=4, temperature=1e-4)
    method.train(training)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    with pytest.raises(ValueError, match=r"^temperature must be .*; got 0\.0001\.$"):
        method(torch.randn(4, 3), torch.randn(4, 3), FeatureContext(index=torch.arange(4)))
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("temperature", -0.07, ValueError),
        ("temperature", math.nan, ValueError),
        ("temperature", "0.07", TypeError),
        ("momentum", 1.5, ValueError),
        ("momentum", -0.5, ValueError),
        ("num_negatives", 0, ValueError),
        ("num_negatives", 2.5, TypeError),
    ],
    ids=["T-negative", "T-nan", "T-str", "m-above-1", "m-negative", "K-zero", "K-float"],
)
def test_crd_settings_set_after_construction_are_checked_as_the_constructor_does(
    name, value, error
):
    # a negative temperature flips every similarity and a momentum outside [0, 1] pushes the
    # banks away from the embeddings: both had trained silently
    with pytest.raises(error) as built:
        CRD(6, 10, **{"num_samples": 20, "embed_dim": 4, "num_negatives": 7, name: value})
    torch.manual_seed(0)
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7)
    with pytest.raises(error) as set_later:
        setattr(method, name, value)
    assert str(set_later.value) == str(built.value)
    assert str(set_later.value).startswith(f"{name} must be")
    assert getattr(method, name) == {"temperature": 0.07, "momentum": 0.5, "num_negatives": 7}[name]
    # a valid value set later acts as the constructor's, and the state round-trips
    setattr(method, name, {"temperature": 0.1, "momentum": 0.9, "num_negatives": 5}[name])
    s_feat, t_feat = torch.randn(5, 6), torch.randn(5, 10)
    index = torch.tensor([3, 0, 19, 7, 11])
    contrast = method.negatives(index, step=0)
    expected, new_rows = _crd_reference(method, s_feat, t_feat, index, contrast)
    loss = method(s_feat, t_feat, FeatureContext(index=index))["crd"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert np.allclose(method.memory_student[index].double().numpy(), new_rows, atol=1e-6)
    restored = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7)
    restored.load_state_dict(method.state_dict())
    assert all(torch.equal(v, restored.state_dict()[k]) for k, v in method.state_dict().items())


def test_crd_seed_set_later_is_checked_and_num_samples_is_refused():
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7, seed=3)
    with pytest.raises(ValueError) as built:
        CRD(6, 10, num_samples=20, embed_dim=4, seed=-1)
    with pytest.raises(ValueError) as set_later:
        method.seed = -1
    assert str(set_later.value) == str(built.value)
    assert method.seed == 3
    method.seed = 5  # a valid seed set later draws the negatives as one given at construction
    other = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7, seed=5)
    index = torch.tensor([3, 0, 19])
    assert torch.equal(method.negatives(index, step=2), other.negatives(index, step=2))
    # the banks hold one row per sample: a num_samples set later had indices checked against
    # one size and rows drawn from a bank of another
    with pytest.raises(AttributeError, match=r"^num_samples is set at construction \(the memory"):
        method.num_samples = 40
    assert method.num_samples == 20 and method.memory_student.shape[0] == 20


def test_crd_bank_row_of_a_sample_drawn_twice_is_its_last_update():
    # a sampler drawing with replacement (or DistributedSampler's padding) repeats an index in
    # a batch: the bank row takes the last occurrence's update, on any device (CUDA's
    # index_copy_ keeps any one of repeated rows, and DDP processes would drift apart)
    import torch.nn.functional as F

    torch.manual_seed(0)
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7)
    s_feat, t_feat = torch.randn(5, 6), torch.randn(5, 10)
    index = torch.tensor([3, 7, 3, 11, 7])
    bank = method.memory_student.clone()
    with torch.no_grad():
        embedded = F.normalize(method.embed_student(s_feat), dim=1)
    method(s_feat, t_feat, FeatureContext(index=index))
    for row, last in ((3, 2), (7, 4), (11, 3)):
        expected = F.normalize(bank[row] * 0.5 + embedded[last] * 0.5, dim=0)
        torch.testing.assert_close(method.memory_student[row], expected)
    untouched = [i for i in range(20) if i not in (3, 7, 11)]
    assert torch.equal(method.memory_student[untouched], bank[untouched])


def test_crd_heads_get_gradients_and_the_bank_is_in_the_state_dict():
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7)
    s_feat = torch.randn(5, 6, requires_grad=True)
    method(s_feat, torch.randn(5, 10), FeatureContext(index=torch.arange(5)))["crd"].backward()
    for head in (method.embed_student, method.embed_teacher):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    state = method.state_dict()
    assert {"memory_student", "memory_teacher", "normalizers", "steps"} <= set(state)
    assert method.bank_bytes == 2 * 20 * 4 * 4


def test_crd_eval_mode_leaves_the_state_alone():
    method = CRD(3, 3, num_samples=10, embed_dim=2, num_negatives=4).eval()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    value = method(torch.randn(4, 3), torch.randn(4, 3), FeatureContext(index=torch.arange(4)))
    assert math.isfinite(float(value["crd"].detach()))
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("index", "num_samples", "name"),
    [
        (None, 10, "index must be given"),
        (torch.tensor([0, 1, 2, 30]), 10, "index"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), 10, "index"),
        (torch.arange(4), 3, "num_samples"),
        # an index that cannot be one (a mask, complex values, positions past the data set)
        # is refused naming where it is read from
        (torch.tensor([True, False, True, True]), 10, "got a torch.bool tensor.*third item"),
        (torch.arange(4) + 0j, 10, "got a torch.complex64 tensor.*third item"),
        (torch.tensor([0, 1, 2, 10]), 10, r"\[0, 10\); got values in \[0, 10\].*third item"),
    ],
)
def test_crd_bad_input(index, num_samples, name):
    method = CRD(3, 3, num_samples=num_samples, embed_dim=2, num_negatives=4)
    with pytest.raises((ValueError, TypeError), match=name):
        method(torch.randn(4, 3), torch.randn(4, 3), FeatureContext(index=index))


def test_methods_reject_batches_of_different_sizes():
    method = CRD(3, 3, num_samples=10, embed_dim=2, num_negatives=4)
    with pytest.raises(ValueError, match="teacher_feature must be a batch of the same size"):
        method(torch.randn(4, 3), torch.randn(5, 3), FeatureContext(index=torch.arange(4)))


def test_rotate_batch_rotates_square_images_and_rejects_others():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    rotated = rotate_batch(x)
    assert rotated.shape == (6, 1, 3, 3)
    # row j is image j % 2 rotated by 90 * (1 + j // 2) degrees counter-clockwise
    assert torch.equal(rotated[1, 0], torch.tensor(x[1, 0].numpy()[:, ::-1].T.copy()))
    assert torch.equal(rotated[2], torch.flip(x[0], dims=(1, 2)))
    with pytest.raises(ValueError, match="H == W"):
        rotate_batch(torch.randn(2, 1, 3, 4))
    with pytest.raises(ValueError, match="H == W"):
        rotate_batch(torch.randn(2, 5))


class _Net(nn.Module):
    def __init__(self, width, classes=3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        feature = self.body(x)
        return self.head(feature), feature


def _sskd_reference(method, s_feat, t_feat, s_rot, t_rot, s_logits_rot, t_logits_rot, y):
    """The ss and tf terms of Xu et al. written out in float64 with loops."""
    s_feat, t_feat, s_rot, t_rot = (v.detach() for v in (s_feat, t_feat, s_rot, t_rot))
    s_logits_rot, t_logits_rot = s_logits_rot.detach(), t_logits_rot.detach()

    def heads(head, feat):
        with torch.no_grad():
            return head.double()(feat.double()).numpy()

    def similarity(orig, rot):
        return np.array(
            [[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in orig] for a in rot]
        )

    def kl_rows(s, t, temperature, rows):
        total = 0.0
        for i in rows:
            p_t = np.exp(t[i] / temperature) / np.exp(t[i] / temperature).sum()
            p_s = np.exp(s[i] / temperature) / np.exp(s[i] / temperature).sum()
            total += (p_t * np.log(p_t / p_s)).sum()
        return total / len(rows) * temperature**2

    def keep(scores, targets, ratio):
        rank = np.array([int((row > row[t]).sum()) for row, t in zip(scores, targets)])
        wrong = np.flatnonzero(rank > 0)
        kept_wrong = wrong[np.argsort(rank[wrong], kind="stable")][: int(len(wrong) * ratio)]
        return sorted(set(np.flatnonzero(rank == 0)) | set(kept_wrong))

    batch = len(y)
    s_sim = similarity(heads(method.student_head, s_feat), heads(method.student_head, s_rot))
    t_sim = similarity(heads(method.teacher_head, t_feat), heads(method.teacher_head, t_rot))
    rot_targets = np.arange(3 * batch) % batch
    ss_rows = keep(t_sim, rot_targets, method.ss_ratio)
    tf_rows = keep(t_logits_rot.double().numpy(), np.tile(y.numpy(), 3), method.tf_ratio)
    ss = kl_rows(s_sim, t_sim, method.ss_temperature, ss_rows)
    tf = kl_rows(
        s_logits_rot.double().numpy(), t_logits_rot.double().numpy(), method.tf_temperature, tf_rows
    )
    return method.ss_weight * ss, method.tf_weight * tf


def test_sskd_matches_the_paper_formula_and_trains_the_student_head_only():
    torch.manual_seed(0)
    student, teacher = _Net(4).double(), _Net(6).double()
    teacher.requires_grad_(False)
    method = SSKD(4, 6, ss_ratio=0.5).double()
    x, y = torch.randn(4, 1, 5, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    _, s_feat = student(x)
    _, t_feat = teacher(x)
    rotated = rotate_batch(x)
    context = FeatureContext(
        inputs=x, targets=y, run_student=student, run_teacher=lambda z: teacher(z)
    )
    terms = method(s_feat, t_feat, context)
    assert set(terms) == {"sskd_tf", "sskd_ss"}
    s_logits_rot, s_rot = student(rotated)
    t_logits_rot, t_rot = teacher(rotated)
    ss, tf = _sskd_reference(
        copy.deepcopy(method), s_feat, t_feat, s_rot, t_rot, s_logits_rot, t_logits_rot, y
    )
    assert float(terms["sskd_ss"]) == pytest.approx(ss, rel=1e-9)
    assert float(terms["sskd_tf"]) == pytest.approx(tf, rel=1e-9)
    (terms["sskd_ss"] + terms["sskd_tf"]).backward()
    assert all(p.grad is not None for p in method.student_head.parameters())
    assert all(p.grad is None for p in method.teacher_head.parameters())
    assert all(p.grad is not None for p in student.parameters())


def test_sskd_at_a_large_temperature_in_float32_matches_the_formula():
    # the softened KLs times T^2 were taken in float32: at T = 1e4 their rounding gave an ss
    # term of 29.8 for a true 6.4e-5 (negative values at 1e5); and a tiny T (1e-40) gave NaN
    torch.manual_seed(0)
    student, teacher = _Net(4), _Net(6)
    teacher.requires_grad_(False)
    method = SSKD(4, 6, ss_ratio=0.5, tf_temperature=1e4, ss_temperature=1e4)
    x, y = torch.randn(4, 1, 5, 5), torch.tensor([0, 1, 2, 1])
    _, s_feat = student(x)
    _, t_feat = teacher(x)
    context = FeatureContext(inputs=x, targets=y, run_student=student, run_teacher=teacher)
    terms = method(s_feat, t_feat, context)
    s_logits_rot, s_rot = student(rotate_batch(x))
    t_logits_rot, t_rot = teacher(rotate_batch(x))
    ss, tf = _sskd_reference(
        copy.deepcopy(method), s_feat, t_feat, s_rot, t_rot, s_logits_rot, t_logits_rot, y
    )
    assert terms["sskd_tf"].dtype == torch.float32
    # the reference from the float32 features and logits: float32's rounding of those only
    assert float(terms["sskd_ss"]) == pytest.approx(ss, rel=1e-3)
    assert float(terms["sskd_tf"]) == pytest.approx(tf, rel=1e-4)
    for name in ("tf_temperature", "ss_temperature"):
        with pytest.raises(ValueError, match=f"{name} must be a finite number >= 1e-06"):
            SSKD(4, 6, **{name: 1e-40})


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_sskd_refuses_non_finite_outputs_of_the_rotated_copies(side):
    # the rotated copies go through one more forward pass each; a model whose output there is
    # NaN (finite on the originals) had given a NaN loss without a word
    torch.manual_seed(0)
    student, teacher = _Net(4), _Net(6)
    x, y = torch.randn(4, 1, 5, 5), torch.tensor([0, 1, 2, 1])
    _, s_feat = student(x)
    _, t_feat = teacher(x)

    def broken(net):
        def run(z):
            logits, feature = net(z)
            return logits * float("nan"), feature

        return run

    runs = {"student": student, "teacher": teacher}
    runs[side] = broken(runs[side])
    context = FeatureContext(
        inputs=x, targets=y, run_student=runs["student"], run_teacher=runs["teacher"]
    )
    with pytest.raises(ValueError, match=f"{side}_logits must be finite on the batch's rotated"):
        SSKD(4, 6)(s_feat, t_feat, context)


def test_sskd_head_stage_learns_to_match_rotations():
    torch.manual_seed(0)
    # unpooled features: a rotated copy is told from the others by where things are
    teacher = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
    teacher.requires_grad_(False)
    method = SSKD(4, 144, head_epochs=20, head_lr=0.5)
    batches = [torch.randn(8, 1, 6, 6) for _ in range(3)]
    history = method.pretrain(batches, teacher)
    assert method.is_pretrained
    assert history[0] == pytest.approx(math.log(8), rel=0.1)  # chance among 8 originals
    assert history[-1] < 0.7 * history[0]
    assert all(not p.requires_grad for p in method.teacher_head.parameters())
    assert method.student_parameters() == list(method.student_head.parameters())


def test_sskd_needs_the_forward_functions():
    method = SSKD(3, 3)
    with pytest.raises(ValueError, match="run_student"):
        method(torch.randn(2, 3), torch.randn(2, 3), FeatureContext())


@pytest.mark.parametrize(
    ("method", "teacher"),
    [
        (lambda: FactorTransfer(2, 3), nn.Conv2d(1, 3, 3, padding=1)),
        (lambda: SSKD(3, 75), nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Flatten())),
    ],
    ids=["ft", "sskd"],
)
def test_pretrain_refuses_a_negative_epoch_count_and_stays_untrained(method, teacher):
    # a negative count ran no epoch and yet marked the stage done: the student then trained
    # against an untrained paraphraser or head, without a word
    method = method()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 0; got -1"):
        method.pretrain([torch.randn(4, 1, 5, 5)], teacher.requires_grad_(False), epochs=-1)
    assert not method.is_pretrained
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in before.items())
    assert method.pretrain([torch.randn(4, 1, 5, 5)], teacher, epochs=0) == []


@pytest.mark.parametrize(
    ("targets", "error", "words"),
    [
        (
            torch.tensor([0, 1]),
            ValueError,
            r"targets must have shape \[batch\] = \(4,\); got \(2,\)",
        ),
        ([0, 1, 2, 1], TypeError, "targets must be a torch.Tensor of class indices; got list"),
    ],
    ids=["short", "list"],
)
def test_sskd_names_the_targets_against_the_batch(targets, error, words):
    # the targets were repeated for the rotated copies first: a short tensor was reported
    # against three times the batch ("(12,); got (6,)") and a list failed inside torch
    torch.manual_seed(0)
    student, teacher = _Net(4), _Net(6)
    x = torch.randn(4, 1, 5, 5)
    _, s_feat = student(x)
    _, t_feat = teacher(x)
    context = FeatureContext(inputs=x, targets=targets, run_student=student, run_teacher=teacher)
    with pytest.raises(error, match=words):
        SSKD(4, 6)(s_feat, t_feat, context)


@pytest.mark.parametrize(
    ("method", "student", "teacher", "name", "sizes"),
    [
        (lambda: FactorTransfer(3, 8), (2, 4, 5, 5), (2, 8, 5, 5), "student_feature", "3.*got 4"),
        (lambda: FactorTransfer(3, 8), (2, 3, 5, 5), (2, 6, 5, 5), "teacher_feature", "8.*got 6"),
        (lambda: SSKD(4, 6), (2, 5), (2, 6), "student_feature", "4.*got 5"),
        (lambda: SSKD(4, 6), (2, 4), (2, 2, 2), "teacher_feature", "6.*got 4"),
        (lambda: CRD(6, 10, num_samples=4), (2, 7), (2, 10), "student_feature", "6.*got 7"),
        (lambda: CRD(6, 10, num_samples=4), (2, 2, 3), (2, 2, 4), "teacher_feature", "10.*got 8"),
    ],
    ids=["ft-student", "ft-teacher", "sskd-student", "sskd-teacher", "crd-student", "crd-teacher"],
)
def test_methods_name_a_feature_of_another_size_than_built_for(
    method, student, teacher, name, sizes
):
    # such a feature failed inside torch's convolution or matrix product
    context = FeatureContext(
        inputs=torch.randn(2, 1, 5, 5), targets=torch.tensor([0, 1]), index=torch.tensor([0, 1])
    )
    method = method()
    state = {key: value.clone() for key, value in method.state_dict().items()}
    with pytest.raises(ValueError, match=f"{name} must be a feature of {sizes}"):
        method(torch.randn(*student), torch.randn(*teacher), context)
    # refused before any state changed (CRD's banks and step counter)
    assert all(torch.equal(value, state[key]) for key, value in method.state_dict().items())


_SET_LATER = [
    (RKD, "distance_weight", -1.0, ValueError),
    (RKD, "angle_weight", math.nan, ValueError),
    (RKD, "angle_weight", "50", TypeError),
    (FactorTransfer, "paraphraser_epochs", -1, ValueError),
    (FactorTransfer, "paraphraser_lr", -0.1, ValueError),
    (SSKD, "tf_weight", -2.7, ValueError),
    (SSKD, "ss_weight", math.inf, ValueError),
    (SSKD, "tf_temperature", 0.0, ValueError),
    (SSKD, "ss_ratio", 1.5, ValueError),
    (SSKD, "head_epochs", -1, ValueError),
    (SSKD, "head_epochs", 2.5, TypeError),
    (SSKD, "head_lr", math.nan, ValueError),
    (PKT, "eps", -1e-7, ValueError),
    (PKT, "eps", "1e-7", TypeError),
]


def _method(cls, **settings):
    return cls(**settings) if cls in (RKD, PKT) else cls(4, 6, **settings)


@pytest.mark.parametrize(
    ("cls", "name", "value", "error"),
    _SET_LATER,
    ids=[f"{cls.__name__}-{name}-{value!r}" for cls, name, value, _ in _SET_LATER],
)
def test_feature_method_settings_set_after_construction_are_checked_as_the_constructor_does(
    cls, name, value, error
):
    # a negative weight pushed the student away from the teacher, and fewer than 0 epochs left
    # a stage untrained but marked pretrained: all had trained silently
    with pytest.raises(error) as built:
        _method(cls, **{name: value})
    method = _method(cls)
    before = getattr(method, name)
    with pytest.raises(error) as set_later:
        setattr(method, name, value)
    assert str(set_later.value) == str(built.value)
    assert str(set_later.value).startswith(f"{name} must be")
    assert getattr(method, name) == before
    # the setting stays settable, and the method still copies and pickles
    setattr(method, name, before)
    assert getattr(copy.deepcopy(method), name) == before
    assert getattr(pickle.loads(pickle.dumps(method)), name) == before


def test_rkd_weights_set_after_construction_scale_its_terms():
    torch.manual_seed(0)
    s_feat, t_feat = torch.randn(6, 5), torch.randn(6, 7)
    unit = RKD(distance_weight=1.0, angle_weight=1.0)(s_feat, t_feat)
    method = RKD()
    method.distance_weight, method.angle_weight = 3.0, 0.5
    terms = method(s_feat, t_feat)
    torch.testing.assert_close(terms["rkd_distance"], 3.0 * unit["rkd_distance"])
    torch.testing.assert_close(terms["rkd_angle"], 0.5 * unit["rkd_angle"])


def test_a_negative_number_of_pretraining_epochs_is_refused():
    method = FactorTransfer(4, 6)
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 0; got -1\.$"):
        method.pretrain([torch.randn(2, 6, 4, 4)], lambda x: x, epochs=-1)
    assert not method.is_pretrained
