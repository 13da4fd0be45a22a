"""TRIM attributions through Captum against hand-written double backprop."""

import numpy as np
import pytest
import pywt
import torch

from lightning_distill.awd.attributions import (
    TRIMForward,
    flatten_coefficients,
    select_target,
    trim_attributions,
    unflatten_coefficients,
)
from lightning_distill.awd.losses import attribution_sparsity_loss
from lightning_distill.awd.transform import wavedec1d, wavedec2d, waverec1d, waverec2d


def _teacher(n_in, n_out=2, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(n_in, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_out)
    ).double()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _filter(name="db2", seed=0):
    gen = torch.Generator().manual_seed(seed)
    h0 = torch.tensor(pywt.Wavelet(name).rec_lo, dtype=torch.float64)
    return (h0 + 0.05 * torch.randn(h0.shape, generator=gen, dtype=torch.float64)).requires_grad_()


def _reference_attributions(teacher, x, h, method, target, mode, dim, levels):
    """Plain autograd, no Captum: TRIM input, gradients with create_graph, then the method."""
    if dim == 1:
        flat = tuple(wavedec1d(x, h, levels, mode))

        def rebuild(f):
            return waverec1d(list(f), h, mode)[..., : x.shape[-1]]
    else:
        flat = flatten_coefficients(wavedec2d(x, h, levels, mode), 2)

        def rebuild(f):
            return waverec2d(unflatten_coefficients(f, 2), h, mode)[
                ..., : x.shape[-2], : x.shape[-1]
            ]

    residual = (x - rebuild(flat)).detach()

    def grads_at(f):
        out = teacher(rebuild(f) + residual)[:, target]
        return torch.autograd.grad(out.sum(), f, create_graph=True)

    if method == "saliency":
        return grads_at(flat)
    if method == "input_x_gradient":
        return tuple(g * c for g, c in zip(grads_at(flat), flat))
    # integrated gradients, zero baseline, Gauss-Legendre on [0, 1]; Captum rounds the step
    # sizes to float32, so the reference does too
    nodes, weights = np.polynomial.legendre.leggauss(8)
    total = [torch.zeros_like(c) for c in flat]
    for alpha, weight in zip((nodes + 1) / 2, weights / 2):
        scaled = tuple(float(alpha) * c for c in flat)
        step = float(np.float32(weight))
        total = [t + step * g for t, g in zip(total, grads_at(scaled))]
    return tuple(t * c for t, c in zip(total, flat))


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients"])
@pytest.mark.parametrize("mode", ["zero", "periodization"])
def test_attribution_loss_gradient_matches_double_backprop_reference_1d(method, mode):
    teacher = _teacher(16)
    x = torch.randn(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h0 = _filter()
    result = trim_attributions(teacher, x, h0, levels=2, mode=mode, method=method, target=1)
    (ours,) = torch.autograd.grad(attribution_sparsity_loss(result.attributions), h0)

    h = h0.detach().clone().requires_grad_()
    reference = _reference_attributions(teacher, x, h, method, 1, mode, 1, 2)
    (expected,) = torch.autograd.grad(attribution_sparsity_loss(reference), h)

    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)
    assert expected.abs().max() > 1e-3
    for a, r in zip(result.attributions, reference):
        torch.testing.assert_close(a, r.detach(), rtol=0, atol=1e-10)


def test_attribution_loss_gradient_matches_reference_2d():
    teacher = _teacher(64)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h0 = _filter("haar")
    result = trim_attributions(
        teacher, x, h0, levels=2, mode="symmetric", dim=2, method="input_x_gradient", target=0
    )
    (ours,) = torch.autograd.grad(attribution_sparsity_loss(result.attributions), h0)
    h = h0.detach().clone().requires_grad_()
    reference = _reference_attributions(teacher, x, h, "input_x_gradient", 0, "symmetric", 2, 2)
    (expected,) = torch.autograd.grad(attribution_sparsity_loss(reference), h)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)
    assert expected.abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["zero", "periodization"])
def test_linear_teacher_saliency_is_the_transform_of_its_weights(mode):
    # For f(x) = w.x, d f / d coefficients = (synthesis)^T w = analysis(w) in these modes
    # (synthesis is the adjoint of analysis for any filter). This closed form needs no
    # double backprop, so its gradient w.r.t. h0 is an independent reference.
    weight = torch.randn(1, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    teacher = torch.nn.Linear(20, 1, bias=False).double()
    teacher.weight.data.copy_(weight)
    teacher.weight.requires_grad_(False)
    x = torch.randn(4, 20, dtype=torch.float64)
    h0 = _filter("db3", seed=4)
    result = trim_attributions(teacher, x, h0, levels=2, mode=mode, method="saliency")
    (ours,) = torch.autograd.grad(attribution_sparsity_loss(result.attributions), h0)

    h = h0.detach().clone().requires_grad_()
    closed_form = wavedec1d(weight, h, 2, mode)
    for a, c in zip(result.attributions, closed_form):
        torch.testing.assert_close(a, c.detach().expand_as(a), rtol=0, atol=1e-12)
    (expected,) = torch.autograd.grad(sum(c.abs().sum() for c in closed_form), h)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)


def test_teacher_sees_exactly_x_and_reconstruction_is_returned():
    teacher = _teacher(16)
    x = torch.randn(3, 16, dtype=torch.float64)
    h0 = _filter()  # not a valid wavelet: reconstruction differs from x
    coefficients = tuple(wavedec1d(x, h0, 2, "zero"))
    forward = TRIMForward(teacher, h0, "zero", 1, (16,))
    reconstruction = forward.reconstruct(coefficients)
    assert (reconstruction - x).abs().max() > 1e-3
    outputs = forward(*coefficients, (x - reconstruction).detach())
    torch.testing.assert_close(outputs, teacher(x), rtol=0, atol=1e-12)


def test_callable_target_equals_index_target():
    teacher = _teacher(16, n_out=3)
    x = torch.randn(3, 16, dtype=torch.float64)
    h0 = _filter()
    by_index = trim_attributions(teacher, x, h0, levels=2, target=2, create_graph=False)
    by_callable = trim_attributions(
        teacher, x, h0, levels=2, target=lambda out: out[:, 2], create_graph=False
    )
    for a, b in zip(by_index.attributions, by_callable.attributions):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)
    # a callable can also combine outputs, e.g. a sum over classes
    summed = trim_attributions(
        teacher, x, h0, levels=2, target=lambda out: out.sum(dim=1), create_graph=False
    )
    parts = [
        trim_attributions(teacher, x, h0, levels=2, target=k, create_graph=False).attributions
        for k in range(3)
    ]
    for i, a in enumerate(summed.attributions):
        torch.testing.assert_close(a, sum(p[i] for p in parts), rtol=0, atol=1e-12)


def test_without_create_graph_attributions_are_constants():
    teacher = _teacher(16)
    h0 = _filter()
    result = trim_attributions(
        teacher,
        torch.randn(2, 16, dtype=torch.float64),
        h0,
        levels=1,
        target=0,
        create_graph=False,
    )
    assert not any(a.requires_grad for a in result.attributions)


def test_select_target_bad_input():
    outputs = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"target 3 is not an index .* shape \(3,\)"):
        select_target(outputs, 3)
    with pytest.raises(ValueError, match="target must be given"):
        select_target(outputs, None)
    with pytest.raises(TypeError, match="teacher must return a tensor; got dict"):
        select_target({"logits": outputs}, 0)
    assert select_target(torch.arange(4.0).reshape(4, 1), None).tolist() == [0, 1, 2, 3]
    assert select_target(outputs + torch.arange(3.0), torch.tensor([0, 1, 2, 2])).tolist() == [
        0,
        1,
        2,
        2,
    ]


@pytest.mark.parametrize(
    "target",
    [torch.tensor([0.0, 1.0, 1.0, 2.0]), [True, False, True, False]],
    ids=["float", "bool"],
)
def test_a_per_sample_target_of_non_integers_is_named(target):
    # torch's gather said "Expected dtype int32/int64 for index", for floats and bools alike
    with pytest.raises(TypeError, match=r"^per-sample target must hold integer output indices"):
        select_target(torch.zeros(4, 3), target)
    h0 = _filter()
    with pytest.raises(TypeError, match=r"^per-sample target must hold integer output indices"):
        trim_attributions(
            _teacher(16, n_out=3),
            torch.randn(4, 16, dtype=torch.float64),
            h0,
            levels=2,
            target=target,
        )


def test_a_squeezed_output_of_a_batch_of_one_is_not_read_as_a_batch_of_its_outputs():
    # a (1, 3) output squeezed to (3,) was read as three samples of one output each: with
    # target=None the attributions were those of the sum of the three outputs, silently
    teacher = _teacher(16, n_out=3)

    def squeezing(x):
        return teacher(x).squeeze()

    x = torch.randn(1, 16, dtype=torch.float64)
    # (integrated gradients run the teacher on n_steps copies of the batch, which it does not
    # squeeze away)
    for method in ("saliency", "input_x_gradient"):
        with pytest.raises(ValueError, match=r"must have the batch first, shape \(1, \.\.\.\)"):
            trim_attributions(squeezing, x, _filter(), levels=2, method=method)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="method must be one of saliency"):
        trim_attributions(
            _teacher(8),
            torch.randn(1, 8, dtype=torch.float64),
            _filter(),
            levels=1,
            method="deeplift",
        )


def test_dim_and_n_steps_are_checked_naming_them():
    teacher = _teacher(64)
    images = torch.randn(2, 8, 8, dtype=torch.float64)
    # a valid call: one attribution per coefficient of pywt.wavedec2's bands
    result = trim_attributions(
        teacher,
        images,
        _filter(),
        levels=1,
        dim=2,
        method="integrated_gradients",
        target=0,
        n_steps=2,
    )
    bands = pywt.wavedec2(images.numpy(), "db2", mode="zero", level=1)
    expected = [bands[0].shape, *(band.shape for band in bands[1])]
    assert [a.shape for a in result.attributions] == expected
    # dim 3 or 0 had failed unpacking the signal shape ("too many values to unpack"), n_steps=0
    # in Captum's AssertionError, a float in numpy's "deg must be an integer"
    cases = [
        ({"dim": 3}, ValueError, r"dim must be one of 1, 2; got 3"),
        ({"dim": 0}, ValueError, r"dim must be one of 1, 2; got 0"),
        ({"dim": True}, TypeError, r"dim must be 1 \(signals\) or 2 \(images\); got True"),
        ({"dim": 2, "n_steps": 0}, ValueError, r"n_steps must be an integer >= 1; got 0"),
        ({"dim": 2, "n_steps": 1.5}, TypeError, r"n_steps must be an integer >= 1; got 1.5"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            trim_attributions(
                teacher, images, _filter(), levels=1, method="integrated_gradients", **kwargs
            )


def test_flatten_unflatten_roundtrip():
    coefficients = [torch.zeros(1), (torch.ones(1), torch.ones(2), torch.ones(3))]
    flat = flatten_coefficients(coefficients, 2)
    assert len(flat) == 4
    again = unflatten_coefficients(flat, 2)
    assert again[0] is coefficients[0] and again[1] == coefficients[1]


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients"])
def test_without_create_graph_every_method_gives_plain_tensors(method):
    # values to read (numpy, plots), no graph kept alive
    teacher = _teacher(16)
    x = torch.randn(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with_graph = trim_attributions(teacher, x, _filter(), levels=2, method=method, target=1)
    plain = trim_attributions(
        teacher, x, _filter(), levels=2, method=method, target=1, create_graph=False
    )
    assert not any(a.requires_grad for a in plain.attributions)
    for a, b in zip(plain.attributions, with_graph.attributions):
        torch.testing.assert_close(a, b.detach())
        a.numpy()  # readable as it is
