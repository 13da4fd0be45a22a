"""AWD loss terms against independent numpy formulas."""

import math

import numpy as np
import pytest
import pywt
import torch

from lightning_distill.awd.losses import (
    VALIDITY_TERMS,
    attribution_sparsity_loss,
    cmf_loss,
    even_shift_loss,
    filter_distance,
    highpass_sum_loss,
    lowpass_sum_loss,
    reconstruction_loss,
    sparsity_loss,
    unit_norm_loss,
    validity_error,
    validity_losses,
)

VALID = ["haar", "db2", "db5", "sym5", "coif2", "sym8"]


@pytest.mark.parametrize("name", VALID)
def test_validity_terms_vanish_for_orthogonal_wavelets(name):
    h0 = torch.tensor(pywt.Wavelet(name).rec_lo, dtype=torch.float64)
    terms = validity_losses(h0)
    assert set(terms) == set(VALIDITY_TERMS)
    assert max(float(v) for v in terms.values()) < 1e-20
    assert validity_error(h0) < 1e-10


FILTER_TERMS = [
    lowpass_sum_loss,
    highpass_sum_loss,
    unit_norm_loss,
    cmf_loss,
    even_shift_loss,
    validity_losses,
]


@pytest.mark.parametrize("term", FILTER_TERMS, ids=lambda term: term.__name__)
@pytest.mark.parametrize(
    ("h0", "error", "match"),
    [
        ([0.5**0.5, 0.5**0.5], TypeError, r"h0 must be a torch.Tensor; got 'list'"),
        (torch.ones(2, dtype=torch.long), TypeError, r"h0 must be a floating-point tensor"),
        (torch.full((2, 2), 0.5, dtype=torch.float64), ValueError, r"h0 must be a 1D tensor"),
        (torch.zeros(0, dtype=torch.float64), ValueError, r"h0 must be a 1D tensor"),
    ],
    ids=["list", "long", "2d", "empty"],
)
def test_filter_terms_refuse_what_is_not_one_float_filter_naming_h0(term, h0, error, match):
    # a list had failed with AttributeError, an integer tensor had given truncated terms
    # (cmf_loss of [1, 1] was 3 as integers, 4 as floats), and a 2D tensor had been read as
    # one filter (summed whole, or its rows run together)
    with pytest.raises(error, match=match):
        term(h0)
    # a 1D filter of either float dtype is read as before: each term is validity_losses' own
    haar = torch.tensor(pywt.Wavelet("haar").rec_lo, dtype=torch.float64)
    perturbed = haar + torch.tensor([0.1, -0.05], dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        terms = validity_losses(perturbed.to(dtype))
        if term is not validity_losses:
            name = term.__name__.removesuffix("_loss")
            assert torch.equal(term(perturbed.to(dtype)), terms[name])


def _perturbed(seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(pywt.Wavelet("db3").rec_lo) + rng.normal(scale=0.05, size=6)


def test_sum_and_norm_terms_match_formulas():
    h = _perturbed()
    h0 = torch.from_numpy(h)
    h1 = np.array([(-1) ** k * h[len(h) - 1 - k] for k in range(len(h))])
    assert math.isclose(float(lowpass_sum_loss(h0)), (h.sum() - np.sqrt(2)) ** 2, rel_tol=1e-12)
    assert math.isclose(float(highpass_sum_loss(h0)), h1.sum() ** 2, rel_tol=1e-12)
    assert math.isclose(float(unit_norm_loss(h0)), (h @ h - 1) ** 2, rel_tol=1e-12)


def test_cmf_matches_dtft_on_the_grid():
    h = _perturbed(1)
    grid = 2 * len(h)
    omega = 2 * np.pi * np.arange(grid // 2) / grid
    n = np.arange(len(h))

    def power(w):
        return np.abs(np.exp(-1j * np.outer(w, n)) @ h) ** 2

    expected = np.mean((power(omega) + power(omega + np.pi) - 2) ** 2)
    assert math.isclose(float(cmf_loss(torch.from_numpy(h))), expected, rel_tol=1e-10)
    assert expected > 1e-6


def test_cmf_grid_sees_every_frequency():
    # |H(w)|^2 + |H(w+pi)|^2 - 2 is a trigonometric polynomial of low degree, so the mean of its
    # square over the 2L-point grid is its mean over all frequencies; a coarser grid would
    # miss violations between its points
    h = _perturbed(2)
    w = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    n = np.arange(len(h))
    total = np.abs(np.exp(-1j * np.outer(w, n)) @ h) ** 2
    total += np.abs(np.exp(-1j * np.outer(w + np.pi, n)) @ h) ** 2
    dense_mean = np.mean((total - 2) ** 2)
    assert dense_mean > 1e-6
    assert math.isclose(float(cmf_loss(torch.from_numpy(h))), dense_mean, rel_tol=1e-10)


def test_even_shift_matches_correlation():
    h = _perturbed(3)
    full = np.correlate(h, h, mode="full")  # lags -(L-1)..(L-1)
    lags = np.arange(-(len(h) - 1), len(h))
    expected = np.sum(full[(lags % 2 == 0) & (lags != 0)] ** 2)
    assert math.isclose(float(even_shift_loss(torch.from_numpy(h))), expected, rel_tol=1e-12)
    assert expected > 0


def test_validity_error_is_largest_violation():
    h = _perturbed(4)
    h1 = np.array([(-1) ** k * h[len(h) - 1 - k] for k in range(len(h))])
    full = np.correlate(h, h, mode="full")
    lags = np.arange(-(len(h) - 1), len(h))
    expected = max(
        abs(h.sum() - np.sqrt(2)),
        abs(h1.sum()),
        abs(h @ h - 1),
        np.abs(full[(lags % 2 == 0) & (lags != 0)]).max(),
    )
    assert math.isclose(validity_error(h), expected, rel_tol=1e-12)
    assert validity_error(pywt.Wavelet("dmey").rec_lo) > 1e-4  # an FIR approximation


def test_sparsity_and_reconstruction_formulas():
    a = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    b = torch.tensor([[[3.0]], [[-1.0]]])
    assert float(sparsity_loss((a, b))) == pytest.approx(((1 + 2 + 3) + (0.5 + 1)) / 2)
    assert float(attribution_sparsity_loss((a, b))) == pytest.approx(3.75)
    x, y = torch.randn(3, 5), torch.randn(3, 5)
    assert float(reconstruction_loss(y, x)) == pytest.approx(float(((x - y) ** 2).mean()))


def test_filter_distance_ignores_shift_and_sign():
    h = np.asarray(pywt.Wavelet("db5").rec_lo)
    assert filter_distance(h, h) == 0
    # a translation (zeros before or after) and a sign flip are the same wavelet
    assert filter_distance(-np.concatenate([[0, 0, 0], h]), h) == pytest.approx(0, abs=1e-15)
    assert filter_distance(np.concatenate([h, [0, 0]]), -h) == pytest.approx(0, abs=1e-15)
    assert filter_distance(h, np.concatenate([[0, 0], h])) == pytest.approx(0, abs=1e-15)

    # a rotation wraps taps around: another filter (no longer a valid wavelet), not a shift;
    # its distance is the minimum over translations written out by hand
    def by_translations(a, b):
        size = len(a) + len(b) + len(a)
        best = np.inf
        for k in range(size - len(a) + 1):
            placed = np.zeros(size)
            placed[k : k + len(a)] = a
            target = np.zeros(size)
            target[len(a) : len(a) + len(b)] = b
            best = min(best, np.linalg.norm(placed - target), np.linalg.norm(placed + target))
        return best

    for shift in (3, 5):
        rotated = np.roll(h, shift)
        assert filter_distance(rotated, h) == pytest.approx(by_translations(rotated, h))
        assert filter_distance(rotated, h) > 0.01
    other = np.asarray(pywt.Wavelet("sym5").rec_lo)
    d = filter_distance(other, h)
    assert d > 0.1
    # the minimum over shifts and signs is at most the plain distance
    assert d <= np.linalg.norm(other - h) + 1e-15
    assert d == pytest.approx(filter_distance(h, other))


def test_loss_terms_are_differentiable():
    h0 = torch.from_numpy(_perturbed(5)).requires_grad_()
    total = sum(validity_losses(h0).values())
    (grad,) = torch.autograd.grad(total, h0)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


def test_filters_are_read_as_a_learnt_parameter_or_any_strided_array():
    from lightning_distill.awd import AWDModule
    from lightning_distill.awd.transform import wavelet_from_filter

    h0 = np.asarray(pywt.Wavelet("db3").rec_lo)
    reversed_h0 = h0[::-1]  # negative strides
    parameter = torch.nn.Parameter(torch.tensor(h0))  # as AWDModule.h0 is
    assert filter_distance(reversed_h0, list(reversed_h0)) == 0.0
    assert validity_error(reversed_h0) == validity_error(list(reversed_h0))
    assert validity_error(parameter) == validity_error(h0)
    np.testing.assert_allclose(wavelet_from_filter(parameter).rec_lo, h0)
    np.testing.assert_allclose(wavelet_from_filter(reversed_h0).rec_lo, reversed_h0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    warm = AWDModule(teacher, wavelet=parameter)  # a warm start from another module's filter
    np.testing.assert_allclose(warm.h0.detach().numpy(), h0)
    assert parameter.grad is None and parameter.requires_grad


def test_filter_distance_and_validity_error_take_wavelets_as_the_rest_of_awd_does():
    # a name or a pywt.Wavelet is read as its scaling filter (rec_lo), as everywhere a wavelet
    # is expected; it had been refused with "could not convert string to float: 'db5'"
    h = np.asarray(pywt.Wavelet("db5").rec_lo)
    assert filter_distance(h, "db5") == 0
    assert filter_distance(pywt.Wavelet("db5"), h) == 0
    assert filter_distance("sym5", "db5") == pytest.approx(
        filter_distance(pywt.Wavelet("sym5").rec_lo, h)
    )
    assert validity_error("db5") == validity_error(h)
    assert validity_error(pywt.Wavelet("sym5")) < 1e-10
    with pytest.raises(ValueError, match="h0 must be the name of an orthogonal"):
        validity_error("bior2.2")  # not orthogonal: refused with the valid names
    # errors name the argument that holds the bad wavelet
    with pytest.raises(ValueError, match="reference must be the name of an orthogonal"):
        filter_distance(h, "db99")
    with pytest.raises(TypeError, match="reference must be a str, a pywt.Wavelet"):
        filter_distance(h, pywt.ContinuousWavelet("mexh"))


def test_validity_error_and_filter_distance_refuse_what_is_no_filter():
    # None had read as a NaN filter (validity NaN), a table as its flattened entries, an empty
    # filter as torch's "negative padding is not supported"
    for bad, shown in ((None, "None"), ([], r"shape \(0,\)"), (np.ones((2, 2)), r"shape \(2, 2\)")):
        with pytest.raises(
            ValueError, match=rf"h0 must be a 1D filter of at least one tap; got {shown}"
        ):
            validity_error(bad)
        with pytest.raises(ValueError, match=r"reference must be a 1D filter"):
            filter_distance([1.0, 1.0], bad)
    with pytest.raises(TypeError, match=r"h0 must be a scaling filter, a 1D sequence of numbers"):
        validity_error(["a", "b"])
    # a single tap is a filter, if not a valid one: |h0^2 - 1| = 3 for h0 = 2
    assert validity_error([2.0]) == pytest.approx(3.0)


@pytest.mark.parametrize("loss", [sparsity_loss, attribution_sparsity_loss])
def test_l1_terms_refuse_what_is_no_sequence_of_bands_of_one_batch(loss):
    name = "coefficients" if loss is sparsity_loss else "attributions"
    coefficients = torch.tensor(
        [[1.0, -2.0, 0.5, 0.5], [0.0, 3.0, -1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]
    )
    # the term is the mean over samples (rows) of each sample's L1 norm: (4 + 5 + 8) / 3
    assert float(loss((coefficients,))) == pytest.approx(17 / 3)
    # a bare tensor had been iterated over its rows, every row's entries read as samples:
    # (1 + 0 + 2, 2 + 3 + 2, ...) averaged over 4 "samples", 17 / 4, without a word
    with pytest.raises(TypeError, match=rf"{name} must be a non-empty sequence of tensors"):
        loss(coefficients)
    with pytest.raises(ValueError, match=rf"{name} must be a non-empty sequence"):
        loss([])
    # bands of different batch sizes had failed in torch's reshape
    with pytest.raises(ValueError, match=rf"{name} must be tensors of one batch size.*\[3, 2\]"):
        loss([coefficients, coefficients[:2]])
    with pytest.raises(ValueError, match=rf"{name}\[1\] must be a tensor shaped \(batch, ...\)"):
        loss([coefficients, torch.tensor(1.0)])
    with pytest.raises(TypeError, match=rf"{name}\[0\] must be a tensor"):
        loss([[1.0, 2.0]])
    # integer and bool bands had failed deep in torch (mean() of an integer sum: "could not
    # infer output dtype"; abs of a bool tensor: '"abs_cpu" not implemented for Bool')
    for dtype in (torch.long, torch.int32, torch.uint8, torch.bool):
        with pytest.raises(TypeError, match=rf"{name}\[1\] must be a floating-point tensor"):
            loss([coefficients, coefficients.to(dtype)])
    # an empty batch had failed in torch's reshape ("cannot reshape tensor of 0 elements")
    with pytest.raises(ValueError, match=rf"{name} must be tensors of at least one sample"):
        loss([coefficients[:0], coefficients[:0]])


def test_reconstruction_loss_refuses_a_reconstruction_not_shaped_as_the_signal():
    x = torch.arange(8.0).reshape(2, 4)
    reconstruction = x + torch.tensor([[1.0], [2.0]])
    assert float(reconstruction_loss(reconstruction, x)) == pytest.approx((4 * 1 + 4 * 4) / 8)
    # a (batch, 1, N) reconstruction had been broadcast against (batch, N) signals, every
    # signal compared with every reconstruction, under a warning only
    with pytest.raises(ValueError, match=r"reconstruction must be shaped as x, \(2, 4\); got "):
        reconstruction_loss(reconstruction.unsqueeze(1), x)
    # one sample too many (waverec1d's output for an odd length, uncropped) had failed in torch
    with pytest.raises(ValueError, match=r"got \(2, 5\)"):
        reconstruction_loss(torch.zeros(2, 5), x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor; got 'list'"):
        reconstruction_loss(reconstruction, x.tolist())
    # integer or bool signals had met torch's bare '"mse_cpu" not implemented for Long'
    with pytest.raises(TypeError, match="x must be a floating-point tensor; got torch.int64"):
        reconstruction_loss(reconstruction, x.long())
    with pytest.raises(TypeError, match="reconstruction must be a floating-point tensor"):
        reconstruction_loss(reconstruction > 2, x)
    # an empty batch had given NaN
    with pytest.raises(
        ValueError, match=r"x must be a tensor holding at least one value; got \(0, "
    ):
        reconstruction_loss(reconstruction[:0], x[:0])
