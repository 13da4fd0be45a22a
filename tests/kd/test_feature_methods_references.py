"""FitNets' hint, attention transfer, factor transfer, CRD and SSKD against their published
definitions, each transcribed in float64 numpy (never through the library's own functions), on
small random cases to ~1e-10, and by hand on cases small enough to do on paper.

The definitions (papers and the authors' code):

- FitNets (Romero et al. 2015): the regressed student feature against the teacher's, a mean of
  squares over every element (the paper writes 1/2 of the sum of squares per sample; the common
  reimplementations take ``MSELoss``, the mean).
- Attention transfer (Zagoruyko & Komodakis 2017): Q = sum_c |A_c|^p, flattened and divided by
  its L2 norm; eq. (2) takes the L2 norm of the difference per sample, the authors' code the
  mean of the squared differences over batch and positions (weight beta = 1000).
- Factor transfer (Kim et al. 2018): the factors flattened per sample and divided by their L2
  norms, L1 distance averaged over batch and positions (``L1Loss``); the paraphraser trained on
  an L1 reconstruction of the teacher's feature.
- CRD (Tian et al. 2020): eq. (18) with P = exp(v.m / T) / Z, Z = N * mean(exp(v.m / T)) over the
  first batch's [B, K + 1] scores, noise K / N; both directions summed; banks updated with
  momentum and renormalised.
- SSKD (Xu et al. 2020): T^2 KL (batchmean over the kept rows) of the rotated copies' class
  logits and of their cosine similarities to the originals; kept rows: every row the teacher
  ranks right, and the best-ranked ``ratio`` share (rounded down) of the others.
"""

import inspect
import math

import numpy as np
import pytest
import torch

from lightning_distill.kd.feature_losses import (
    CRD,
    SSKD,
    FactorTransfer,
    FeatureContext,
    crd_contrast_loss,
    factor_transfer_loss,
    rotate_batch,
    sskd_selection,
)
from lightning_distill.losses import attention_map, attention_transfer_loss, hint_loss

REL = 1e-10


def _rng(seed):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- FitNets hint
def test_hint_loss_is_the_mean_of_squares_over_every_element_in_float64():
    rng = _rng(0)
    student = rng.normal(size=(3, 5, 4, 4))
    teacher = rng.normal(size=(3, 7, 4, 4)) * 2.0
    weight, bias = rng.normal(size=(7, 5)), rng.normal(size=7)
    # a fixed 1x1 map as the regressor, written out in numpy for the reference
    mapped = np.einsum("oc,bchw->bohw", weight, student) + bias[None, :, None, None]
    expected = ((mapped - teacher) ** 2).mean()

    def regressor(x):
        w = torch.from_numpy(weight)
        return torch.einsum("oc,bchw->bohw", w, x) + torch.from_numpy(bias)[None, :, None, None]

    got = hint_loss(torch.from_numpy(student), torch.from_numpy(teacher), regressor)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(expected, rel=REL)


def test_hint_loss_by_hand_and_the_teacher_side_is_not_detached():
    # (1 - 0)^2, (2 - 0)^2, (0 - 1)^2, (3 - 3)^2: a mean of 6 / 4 = 1.5
    student = torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0], [1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    loss = hint_loss(student, teacher, lambda x: x)
    assert float(loss.detach()) == 1.5
    loss.backward()
    # d/dt mean (s - t)^2 = -2 (s - t) / n: the teacher feature receives it, as the docstring says
    expected = -2.0 * (student - teacher).detach() / 4
    torch.testing.assert_close(teacher.grad, expected, rtol=0, atol=0)
    torch.testing.assert_close(student.grad, -expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- attention transfer
def _np_attention_map(feature, p):
    return (np.abs(feature) ** p).sum(axis=1)


def _np_pool(feature, size):
    """Average pooling of [B, C, H, W] by integer factors down to ``size``."""
    b, c, h, w = feature.shape
    fh, fw = h // size[0], w // size[1]
    return feature.reshape(b, c, size[0], fh, size[1], fw).mean(axis=(3, 5))


def _np_attention_transfer(student, teacher, variant, p):
    size = tuple(min(a, b) for a, b in zip(student.shape[2:], teacher.shape[2:]))
    student, teacher = _np_pool(student, size), _np_pool(teacher, size)
    qs = _np_attention_map(student, p).reshape(len(student), -1)
    qt = _np_attention_map(teacher, p).reshape(len(teacher), -1)
    qs = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    qt = qt / np.linalg.norm(qt, axis=1, keepdims=True)
    if variant == "paper":
        return np.linalg.norm(qs - qt, axis=1).mean()
    return ((qs - qt) ** 2).mean()


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0])
def test_attention_map_is_the_sum_over_channels_of_absolute_values_to_the_p(p):
    feature = _rng(1).normal(size=(2, 5, 3, 4))  # negative activations: |A|^p, not A^p
    got = attention_map(torch.from_numpy(feature), p)
    assert got.dtype == torch.float64 and got.shape == (2, 3, 4)
    np.testing.assert_allclose(got.numpy(), _np_attention_map(feature, p), rtol=REL, atol=0)
    # the paper's |A|^p: a feature and its negative have the same map (A^p, as RepDistiller's
    # and mdistiller's f.pow(p), would flip the sign of the odd powers)
    torch.testing.assert_close(attention_map(-torch.from_numpy(feature), p), got)


@pytest.mark.parametrize("variant", ["paper", "code"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize(
    "shapes",
    [((3, 4, 6, 6), (3, 9, 6, 6)), ((3, 4, 8, 8), (3, 9, 4, 4)), ((3, 4, 4, 6), (3, 2, 8, 3))],
)
def test_attention_transfer_equals_its_float64_transcription(variant, p, shapes):
    rng = _rng(2)
    student, teacher = rng.normal(size=shapes[0]), rng.normal(size=shapes[1]) * 5
    got = attention_transfer_loss(
        torch.from_numpy(student), torch.from_numpy(teacher), variant=variant, p=p
    )
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(
        _np_attention_transfer(student, teacher, variant, p), rel=REL
    )


def test_attention_transfer_by_hand():
    # one channel, a 1 x 2 map: Q_s = [1, 4], Q_t = [4, 1], each over sqrt(17); the difference
    # is [-3, 3] / sqrt(17): its norm sqrt(18 / 17) (eq. 2), its mean square 9 / 17 (code)
    student = torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64)
    teacher = torch.tensor([[[[2.0, -1.0]]]], dtype=torch.float64)
    paper = attention_transfer_loss(student, teacher, variant="paper")
    code = attention_transfer_loss(student, teacher, variant="code")
    assert float(paper) == pytest.approx(math.sqrt(18 / 17), rel=1e-15)
    assert float(code) == pytest.approx(9 / 17, rel=1e-15)


# --------------------------------------------------------------------------- factor transfer
def _np_factor_transfer(student, teacher):
    s = student.reshape(len(student), -1)
    t = teacher.reshape(len(teacher), -1)
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    return np.abs(s - t).mean()


def test_factor_transfer_loss_by_hand():
    # [3, 4] / 5 = [0.6, 0.8] against [1, 0]: |[-0.4, 0.8]|, a mean of 0.6; the second sample
    # is the same direction on both sides (a scale apart): 0
    student = torch.tensor([[3.0, 4.0], [1.0, 1.0]], dtype=torch.float64)
    teacher = torch.tensor([[2.0, 0.0], [5.0, 5.0]], dtype=torch.float64)
    assert float(factor_transfer_loss(student, teacher)) == pytest.approx(0.3, rel=1e-15)


def test_factor_transfer_module_equals_the_authors_formula_in_float64():
    torch.manual_seed(0)
    method = FactorTransfer(4, 6).double()
    # the paraphrase rate k = 0.5 of the teacher's channels, the authors' three 3x3 layers
    assert method.paraphraser_encoder[-2].out_channels == 3
    assert method.translator[-2].out_channels == 3
    rng = _rng(3)
    student = torch.from_numpy(rng.normal(size=(3, 4, 5, 5))).requires_grad_(True)
    teacher = torch.from_numpy(rng.normal(size=(3, 6, 5, 5))).requires_grad_(True)
    got = method(student, teacher)["ft"]
    with torch.no_grad():
        factor_s = method.translator(student).numpy()
        factor_t = method.paraphraser_encoder(teacher).numpy()
    assert float(got.detach()) == pytest.approx(_np_factor_transfer(factor_s, factor_t), rel=REL)
    got.backward()
    # the teacher's factor is detached (the authors' factor_t.detach()); the student's is not
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_factor_transfer_paraphraser_stage_reconstructs_with_the_l1_loss():
    # one batch, one epoch: the stage's reported loss is the reconstruction before its one step
    torch.manual_seed(1)
    method = FactorTransfer(4, 6).double()
    teacher_feature = torch.from_numpy(_rng(4).normal(size=(2, 6, 4, 4)))
    with torch.no_grad():
        decoded = method.paraphraser_decoder(method.paraphraser_encoder(teacher_feature))
    expected = np.abs(decoded.numpy() - teacher_feature.numpy()).mean()
    history = method.pretrain([torch.zeros(2, 1)], lambda x: teacher_feature, epochs=1)
    assert history[0] == pytest.approx(expected, rel=REL)


# --------------------------------------------------------------------------- CRD
def _np_eq18(scores, num_samples, eps=1e-7):
    noise = (scores.shape[1] - 1) / num_samples
    positive = np.log(scores[:, 0] / (scores[:, 0] + noise + eps))
    negative = np.log(noise / (scores[:, 1:] + noise + eps))
    return -(positive.sum() + negative.sum()) / len(scores)


def test_crd_contrast_loss_equals_eq_18_in_float64_and_by_hand():
    scores = _rng(5).uniform(0.01, 3.0, size=(4, 9))
    got = crd_contrast_loss(torch.from_numpy(scores), num_samples=50)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(_np_eq18(scores, 50), rel=REL)
    # one negative, two samples: noise K / N = 1 / 2;
    # -[log(1 / (1 + 1/2 + eps)) + log((1/2) / (1/2 + 1/2 + eps))]
    eps = 1e-7
    by_hand = -(math.log(1 / (1.5 + eps)) + math.log(0.5 / (1.0 + eps)))
    got = crd_contrast_loss(torch.tensor([[1.0, 0.5]], dtype=torch.float64), num_samples=2)
    assert float(got) == pytest.approx(by_hand, rel=1e-14)


def _np_crd(method, student, teacher, index, contrast, normalizers=None):
    """Both directions of eq. (18), the normalisers and the updated banks, in numpy."""
    params = {k: v.detach().numpy() for k, v in method.state_dict().items()}
    vs = student.reshape(len(student), -1) @ params["embed_student.weight"].T
    vs = vs + params["embed_student.bias"]
    vt = teacher.reshape(len(teacher), -1) @ params["embed_teacher.weight"].T
    vt = vt + params["embed_teacher.bias"]
    vs = vs / np.linalg.norm(vs, axis=1, keepdims=True)
    vt = vt / np.linalg.norm(vt, axis=1, keepdims=True)
    bank_s, bank_t = params["memory_student"], params["memory_teacher"]
    tau, n = method.temperature, method.num_samples
    # the student's embedding against the teacher bank, the teacher's against the student bank
    exp_s = np.exp(np.einsum("bkd,bd->bk", bank_t[contrast], vs) / tau)
    exp_t = np.exp(np.einsum("bkd,bd->bk", bank_s[contrast], vt) / tau)
    if normalizers is None:  # fixed on the first batch: N times the mean over [B, K + 1]
        normalizers = (exp_s.mean() * n, exp_t.mean() * n)
    loss = _np_eq18(exp_s / normalizers[0], n) + _np_eq18(exp_t / normalizers[1], n)
    m = method.momentum
    new_s = bank_s[index] * m + vs * (1 - m)
    new_t = bank_t[index] * m + vt * (1 - m)
    new_s /= np.linalg.norm(new_s, axis=1, keepdims=True)
    new_t /= np.linalg.norm(new_t, axis=1, keepdims=True)
    return loss, normalizers, new_s, new_t


def test_crd_module_equals_eq_18_with_z_from_the_first_batch_in_float64():
    torch.manual_seed(0)
    method = CRD(6, 10, num_samples=20, embed_dim=4, num_negatives=7).double()
    rng = _rng(6)
    index = np.array([3, 0, 19, 7, 11])
    normalizers = None
    for step in range(3):
        student, teacher = rng.normal(size=(5, 6)), rng.normal(size=(5, 2, 5))
        contrast = method.negatives(torch.from_numpy(index), step=step).numpy()
        loss, normalizers, new_s, new_t = _np_crd(
            method, student, teacher, index, contrast, normalizers
        )
        got = method(
            torch.from_numpy(student),
            torch.from_numpy(teacher),
            FeatureContext(index=torch.from_numpy(index)),
        )["crd"]
        assert float(got.detach()) == pytest.approx(loss, rel=REL)
        np.testing.assert_allclose(method.normalizers.numpy(), normalizers, rtol=REL)
        np.testing.assert_allclose(method.memory_student[index].numpy(), new_s, rtol=REL)
        np.testing.assert_allclose(method.memory_teacher[index].numpy(), new_t, rtol=REL)


def test_crd_defaults_and_bank_initialisation_are_the_papers():
    defaults = {k: v.default for k, v in inspect.signature(CRD).parameters.items()}
    # RepDistiller's feat_dim, nce_k, nce_t, nce_m
    assert defaults["embed_dim"] == 128 and defaults["num_negatives"] == 16384
    assert defaults["temperature"] == 0.07 and defaults["momentum"] == 0.5
    method = CRD(3, 3, num_samples=4000, embed_dim=12)
    bound = 1.0 / math.sqrt(12 / 3)  # uniform on [-stdv, stdv], stdv = 1 / sqrt(dim / 3)
    for bank in (method.memory_student, method.memory_teacher):
        assert float(bank.abs().max()) <= bound
        assert float(bank.abs().max()) > 0.99 * bound
        assert abs(float(bank.mean())) < 0.01


# --------------------------------------------------------------------------- SSKD
def test_sskd_defaults_are_the_authors():
    defaults = {k: v.default for k, v in inspect.signature(SSKD).parameters.items()}
    assert defaults == {
        "student_dim": inspect.Parameter.empty,
        "teacher_dim": inspect.Parameter.empty,
        "tf_weight": 2.7,
        "ss_weight": 10.0,
        "tf_temperature": 4.0,
        "ss_temperature": 0.5,
        "tf_ratio": 1.0,
        "ss_ratio": 0.75,
        "head_epochs": 60,
        "head_lr": 0.05,
    }


def test_sskd_selection_by_hand():
    scores = torch.tensor(
        [
            [3.0, 1.0, 2.0],  # target 0 ranked first: kept
            [3.0, 1.0, 2.0],  # target 1 ranked third
            [3.0, 1.0, 2.0],  # target 2 ranked second
            [0.0, 5.0, 1.0],  # target 1 ranked first: kept
            [0.0, 5.0, 1.0],  # target 0 ranked third
        ],
        dtype=torch.float64,
    )
    targets = torch.tensor([0, 1, 2, 1, 0])
    # three wrong rows: ratio 0.5 keeps int(1.5) = 1, the best ranked (row 2); 0.7 keeps 2 (rows
    # 2, then one of the two ranked third: the first); 0 none; 1 all
    assert sskd_selection(scores, targets, 0.5).tolist() == [0, 2, 3]
    assert sskd_selection(scores, targets, 0.7).tolist() == [0, 1, 2, 3]
    assert sskd_selection(scores, targets, 0.0).tolist() == [0, 3]
    assert sskd_selection(scores, targets, 1.0).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("columns", [3, 40])
def test_sskd_selection_counts_a_target_tied_with_the_top_as_right(columns):
    # rank = columns scoring strictly above the target; an argsort's position of the target
    # among tied columns had depended on the sort (with 40 columns the target 0 tied with
    # column 1 came second: counted wrong and dropped at ratio 0, target 1 kept)
    scores = torch.zeros(4, columns, dtype=torch.float64)
    scores[:, :2] = 1.0  # columns 0 and 1 tie at the top of rows 0 and 1
    scores[2, :3] = torch.tensor([1.5, 1.0, 2.0])  # target 1: two columns above, rank 2
    scores[3, :3] = torch.tensor([1.0, 1.0, 3.0])  # target 0: one above (one tied), rank 1
    targets = torch.tensor([0, 1, 1, 0])
    assert sskd_selection(scores, targets, 0.0).tolist() == [0, 1]
    # of the two wrong rows, int(2 * 0.5) = 1 kept: the one of lower rank, row 3
    assert sskd_selection(scores, targets, 0.5).tolist() == [0, 1, 3]
    # on the rotation similarities of a batch holding one image twice: every copy of either
    # duplicate is as similar to both; all are right
    similarity = torch.tensor([[0.9, 0.9, 0.1], [0.8, 0.8, 0.3], [0.2, 0.2, 0.7]])
    similarity = similarity.repeat(3, 1)
    assert sskd_selection(similarity, torch.arange(9) % 3, 0.0).tolist() == list(range(9))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["target", "other"])
def test_sskd_selection_refuses_scores_that_are_not_finite(bad, where):
    # a NaN compares False with everything: a NaN at the target had left its row no column
    # above it (rank 0, kept as right at any ratio), a NaN elsewhere had not counted; an
    # infinity is refused as by the module's other losses
    scores = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    scores[0, 0 if where == "target" else 1] = bad
    with pytest.raises(ValueError, match="scores must be finite; got NaN or infinite values"):
        sskd_selection(scores, torch.tensor([0, 0]), 0.0)


class _Net(torch.nn.Module):
    def __init__(self, width, classes=4):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(width, classes)

    def forward(self, x):
        feature = self.body(x)
        return self.head(feature), feature


def _np_softened_kl(student, teacher, temperature):
    def log_softmax(z):
        z = z / temperature
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    log_s, log_t = log_softmax(student), log_softmax(teacher)
    return temperature**2 * (np.exp(log_t) * (log_t - log_s)).sum(axis=1).mean()


def _np_keep(scores, targets, ratio):
    rank = (scores > scores[np.arange(len(scores)), targets][:, None]).sum(axis=1)
    wrong = np.flatnonzero(rank > 0)
    kept = wrong[np.argsort(rank[wrong], kind="stable")][: int(len(wrong) * ratio)]
    return np.sort(np.concatenate([np.flatnonzero(rank == 0), kept]))


def _np_cosine(rotated, original):
    rotated = rotated / np.linalg.norm(rotated, axis=1, keepdims=True)
    original = original / np.linalg.norm(original, axis=1, keepdims=True)
    return rotated @ original.T


def test_sskd_equals_the_authors_terms_in_their_sample_major_layout_in_float64():
    # The authors' batch holds each image followed by its three rotations; the library stacks
    # the rotations (row j a copy of image j % B). With no ties in the ranks the kept rows are
    # the same copies, and the terms (means over the kept rows) the same numbers.
    torch.manual_seed(3)
    student, teacher = _Net(5).double(), _Net(7).double()
    teacher.requires_grad_(False)
    method = SSKD(5, 7).double()
    batch = 6
    x = torch.randn(batch, 1, 6, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 1, 2])
    _, s_feat = student(x)
    _, t_feat = teacher(x)
    terms = method(
        s_feat,
        t_feat,
        FeatureContext(inputs=x, targets=y, run_student=student, run_teacher=teacher),
    )
    # the authors' layout: [x_0, rot90(x_0), rot180(x_0), rot270(x_0), x_1, ...]
    views = torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)], dim=1)
    views = views.reshape(4 * batch, 1, 6, 6)
    original = np.arange(4 * batch) % 4 == 0
    with torch.no_grad():
        s_logits, s_all = (v.numpy() for v in student(views))
        t_logits, t_all = (v.numpy() for v in teacher(views))
        s_rep = method.student_head(torch.from_numpy(s_all)).numpy()
        t_rep = method.teacher_head(torch.from_numpy(t_all)).numpy()
    aug_targets = np.repeat(y.numpy(), 3)
    tf_rows = _np_keep(t_logits[~original], aug_targets, 1.0)
    tf = _np_softened_kl(s_logits[~original][tf_rows], t_logits[~original][tf_rows], 4.0)
    s_sim = _np_cosine(s_rep[~original], s_rep[original])
    t_sim = _np_cosine(t_rep[~original], t_rep[original])
    ss_rows = _np_keep(t_sim, np.repeat(np.arange(batch), 3), 0.75)
    ss = _np_softened_kl(s_sim[ss_rows], t_sim[ss_rows], 0.5)
    assert float(terms["sskd_tf"].detach()) == pytest.approx(2.7 * tf, rel=REL)
    assert float(terms["sskd_ss"].detach()) == pytest.approx(10.0 * ss, rel=REL)


def test_sskd_head_stage_is_the_cross_entropy_of_raw_cosine_similarities():
    # the authors' teacher stage: cross-entropy of the [3B, B] cosine similarities (no
    # temperature), the class of a rotated copy its own image; one batch, one epoch: the loss
    # reported is the one before the step
    torch.manual_seed(4)
    body = _Net(5).double().body
    body.requires_grad_(False)
    method = SSKD(5, 5).double()
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        original = method.teacher_head(body(x)).numpy()
        rotated = method.teacher_head(body(rotate_batch(x))).numpy()
    similarity = _np_cosine(rotated, original)
    targets = np.arange(9) % 3
    log_p = similarity - np.log(np.exp(similarity).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(9), targets].mean()
    history = method.pretrain([x], body, epochs=1)
    assert history[0] == pytest.approx(expected, rel=REL)
