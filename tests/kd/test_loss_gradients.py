"""KD, DKD, RKD, PKT and the learned temperature: values AND gradients against the papers'
formulas written out in plain float64 torch, for float32 and float64 inputs, batches of one
and two, and temperatures from 1 to far above the usual range."""

import math

import pytest
import torch

from lightning_distill.kd.temperature import LearnedTemperature, kd_loss_at
from lightning_distill.losses import dkd_loss, kd_loss, pkt_loss, rkd_loss

DTYPES = [torch.float32, torch.float64]
# float32 inputs: the loss keeps float32's rounding of the inputs' use, not more
TOLERANCE = {torch.float32: dict(rtol=2e-5, atol=1e-6), torch.float64: dict(rtol=1e-9, atol=1e-12)}
# at T >= 1e4 the KL is ~1e-9 and T^2 ~1e8: even two float64 computations differ by ~1e-7
WIDE_TOLERANCE = dict(rtol=1e-6, atol=1e-9)


def _kd_reference(s, t, temperature):
    """Hinton et al.: T^2 KL(softmax(t / T) || softmax(s / T)), mean over the batch."""
    log_ps = torch.log_softmax(s / temperature, dim=1)
    log_pt = torch.log_softmax(t / temperature, dim=1)
    return temperature**2 * (log_pt.exp() * (log_pt - log_ps)).sum(1).mean()


def _dkd_reference(s, t, y, alpha, beta, temperature):
    """Zhao et al. 2022: T^2 (alpha TCKD + beta NCKD), each KL a mean over the batch. The
    non-target distribution is the softmax over the non-target logits (the renormalised
    probabilities, without their 0 / 0 when the target class holds all the probability)."""
    total = s.new_zeros(())
    for s_row, t_row, target in zip(s / temperature, t / temperature, y.tolist()):
        others = [c for c in range(len(s_row)) if c != target]
        # log p_target and log(1 - p_target) = log sum over the other classes
        bs = torch.stack([s_row[target], torch.logsumexp(s_row[others], 0)]) - torch.logsumexp(
            s_row, 0
        )
        bt = torch.stack([t_row[target], torch.logsumexp(t_row[others], 0)]) - torch.logsumexp(
            t_row, 0
        )
        tckd = (bt.exp() * (bt - bs)).sum()
        qs = torch.log_softmax(s_row[others], 0)
        qt = torch.log_softmax(t_row[others], 0)
        nckd = (qt.exp() * (qt - qs)).sum()
        total = total + alpha * tckd + beta * nckd
    return temperature**2 * total / len(y)


def _value_and_gradient(loss, student):
    student = student.detach().clone().requires_grad_(True)
    value = loss(student)
    (gradient,) = torch.autograd.grad(value, student)
    return value, gradient


def _assert_matches(loss, reference, student, dtype, temperature=1.0):
    """``loss`` on ``student`` in ``dtype`` against ``reference`` on it in float64: the value
    (in the input's floating dtype) and the gradient."""
    value, gradient = _value_and_gradient(loss, student.to(dtype))
    expected, expected_gradient = _value_and_gradient(reference, student.double())
    assert value.dtype == dtype
    tolerance = WIDE_TOLERANCE if temperature >= 1e4 else TOLERANCE[dtype]
    torch.testing.assert_close(value.double(), expected, **tolerance)
    torch.testing.assert_close(gradient.double(), expected_gradient, **tolerance)


def _logits(batch, classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, classes, generator=gen, dtype=torch.float64) * 3
    t = torch.randn(batch, classes, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, classes, (batch,), generator=gen)
    return s, t, y


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 50.0, 1e4, 1e5])
def test_dkd_value_and_gradient_match_the_paper_at_every_temperature(dtype, batch, temperature):
    # float32 logits at a large T: T^2 magnifies float32's rounding of the two KLs (at T = 1e4
    # the loss was twice the true one, at T = 1e5 negative): computed in float64 as kd_loss
    s, t, y = _logits(batch)
    t_in = t.to(dtype)
    _assert_matches(
        lambda z: dkd_loss(z, t_in, y, alpha=1.0, beta=8.0, temperature=temperature),
        lambda z: _dkd_reference(z, t_in.double(), y, 1.0, 8.0, temperature),
        s,
        dtype,
        temperature,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dkd_where_the_target_class_holds_all_the_probability(dtype, temperature):
    # the teacher's p_target rounds to 1 (its 1 - p_target underflows): TCKD and NCKD stay
    # finite, and NCKD is still the KL between the non-target softmaxes
    t = torch.tensor([[800.0, 0.0, 1.0, -2.0], [0.0, -1.0, 900.0, 3.0]], dtype=torch.float64)
    s = torch.tensor([[2.0, 0.5, -1.0, 1.0], [0.3, 0.1, 0.2, -0.4]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    t_in = t.to(dtype)
    _assert_matches(
        lambda z: dkd_loss(z, t_in, y, alpha=1.0, beta=8.0, temperature=temperature),
        lambda z: _dkd_reference(z, t_in.double(), y, 1.0, 8.0, temperature),
        s,
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 50.0, 1e5])
def test_kd_loss_and_kd_loss_at_value_and_gradient_match_hinton(dtype, batch, temperature):
    s, t, _ = _logits(batch, seed=1)
    t_in = t.to(dtype)
    reference = lambda z: _kd_reference(z, t_in.double(), temperature)  # noqa: E731
    _assert_matches(lambda z: kd_loss(z, t_in, temperature), reference, s, dtype, temperature)
    _assert_matches(
        lambda z: kd_loss_at(z, t_in, torch.tensor(temperature)), reference, s, dtype, temperature
    )


def _rkd_reference(s, t, distance_weight, angle_weight):
    """Park et al. 2019: Huber between mean-normalised distances, and between the cosines of
    the angles of every triplet (0 where two samples coincide); the teacher's side fixed."""
    n = len(s)

    def huber(a, b):
        d = (a - b).abs()
        return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()

    def distances(e):
        d = torch.cdist(e, e)
        return d / (d.sum() / (n * (n - 1)))

    def angles(e):
        differences = e.unsqueeze(0) - e.unsqueeze(1)  # [i, j] = e_j - e_i
        directions = differences / differences.norm(dim=2, keepdim=True).clamp(min=1e-300)
        return directions @ directions.transpose(1, 2)

    t = t.detach()
    loss = distance_weight * huber(distances(s), distances(t))
    if angle_weight:
        loss = loss + angle_weight * huber(angles(s), angles(t))
    return loss


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("angle_weight", [50.0, 0.0])
def test_rkd_value_and_gradient_match_the_paper(dtype, angle_weight):
    gen = torch.Generator().manual_seed(2)
    s = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 3, generator=gen, dtype=torch.float64).to(dtype)
    _assert_matches(
        lambda z: rkd_loss(z, t, distance_weight=25.0, angle_weight=angle_weight),
        lambda z: _rkd_reference(z, t.double(), 25.0, angle_weight),
        s,
        dtype,
    )


def _pkt_reference(s, t, eps=1e-7):
    """Passalis & Tefas 2018: cosine kernel mapped to [0, 1], rows normalised into p(j | i),
    KL(teacher || student) as the authors' code takes it (mean over the B x B entries)."""

    def conditional(e):
        unit = e / (e.norm(dim=1, keepdim=True) + eps)
        kernel = (unit @ unit.T + 1) / 2
        return kernel / kernel.sum(dim=1, keepdim=True)

    ps, pt = conditional(s), conditional(t.detach())
    return (pt * torch.log((pt + eps) / (ps + eps))).mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["random", "identical student rows", "batch of one"])
def test_pkt_value_and_gradient_match_the_paper(dtype, case):
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    t = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    if case == "identical student rows":
        s = s[:1].expand(3, 5).clone()
    elif case == "batch of one":
        s, t = s[:1], t[:1]
    t = t.to(dtype)
    _assert_matches(lambda z: pkt_loss(z, t), lambda z: _pkt_reference(z, t.double()), s, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("epoch", [1, 4, 10])
def test_learned_temperature_gradient_is_the_kd_gradient_reversed_on_the_cosine_ramp(dtype, epoch):
    # CTKD: T = t_start + t_range sigmoid(theta); theta's gradient is -lambda_e dL/dtheta with
    # lambda_e = (1 - cos(pi e / E)) / 2
    s, t, _ = _logits(2, seed=4)
    learned = LearnedTemperature(1.0, 20.0, ramp_epochs=10, initial=5.0)
    reversal = learned.reversal_strength(epoch)
    assert reversal == pytest.approx(0.5 * (1 - math.cos(math.pi * epoch / 10)), rel=1e-12)
    loss = kd_loss_at(s.to(dtype), t.to(dtype), learned(reversal), max_temperature=21.0)
    (got,) = torch.autograd.grad(loss, learned.theta)

    theta = learned.theta.detach().double().requires_grad_(True)
    temperature = 1.0 + 20.0 * torch.sigmoid(theta)
    expected_loss = _kd_reference(s.to(dtype).double(), t.to(dtype).double(), temperature)
    (expected,) = torch.autograd.grad(expected_loss, theta)
    torch.testing.assert_close(loss.double(), expected_loss.detach(), **TOLERANCE[torch.float32])
    # theta, and T from it, are float32 (the parameter's dtype) whatever the logits' dtype
    torch.testing.assert_close(got.double(), -reversal * expected, **TOLERANCE[torch.float32])
