"""The differentiable DWT against PyWavelets, and its algebraic properties."""

import warnings

import numpy as np
import pytest
import pywt
import torch

from lightning_distill.awd.transform import (
    MODES,
    check_levels,
    coefficient_lengths,
    dwt1d,
    filter_bank,
    idwt1d,
    lowpass_from_wavelet,
    orthogonal_wavelet_names,
    wavedec1d,
    wavedec2d,
    waverec1d,
    waverec2d,
)

WAVELETS = ["haar", "db2", "db5", "sym5", "coif2"]


def _h0(name, dtype=torch.float64):
    return torch.tensor(pywt.Wavelet(name).rec_lo, dtype=dtype)


@pytest.fixture(autouse=True)
def _quiet_pywt_levels():
    # pywt warns when levels exceed dwt_max_level; the comparisons use such levels on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_orthogonal_names_are_pywt_orthogonal_discrete_wavelets():
    names = orthogonal_wavelet_names()
    assert {"haar", "db5", "sym5", "coif2"} <= set(names)
    assert "bior2.2" not in names and "rbio1.3" not in names
    assert all(pywt.Wavelet(n).orthogonal for n in names)


@pytest.mark.parametrize("name", orthogonal_wavelet_names())
def test_filter_bank_matches_pywt(name):
    bank = filter_bank(_h0(name))
    for ours, theirs in zip(bank, pywt.Wavelet(name).filter_bank):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", WAVELETS)
def test_wavedec_waverec_1d_match_pywt(name, mode):
    rng = np.random.default_rng(0)
    h0 = _h0(name)
    for length in (1, 2, 5, 16, 33, 64):
        for levels in range(1, min(3, int(np.log2(length))) + 1):
            x = rng.normal(size=(3, length))
            reference = pywt.wavedec(x, name, mode=mode, level=levels)
            ours = wavedec1d(torch.from_numpy(x), h0, levels, mode)
            assert len(ours) == len(reference)
            for c, r in zip(ours, reference):
                assert c.shape == r.shape
                np.testing.assert_allclose(c.numpy(), r, rtol=0, atol=1e-10)
            rebuilt = waverec1d(ours, h0, mode).numpy()
            expected = pywt.waverec(reference, name, mode=mode)
            assert rebuilt.shape == expected.shape
            np.testing.assert_allclose(rebuilt, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["haar", "db2", "sym5"])
def test_wavedec_waverec_2d_match_pywt(name, mode):
    rng = np.random.default_rng(1)
    h0 = _h0(name)
    for shape in ((8, 8), (9, 13), (16, 5)):
        x = rng.normal(size=(2, 3, *shape))
        reference = pywt.wavedec2(x, name, mode=mode, level=2)
        ours = wavedec2d(torch.from_numpy(x), h0, 2, mode)
        np.testing.assert_allclose(ours[0].numpy(), reference[0], rtol=0, atol=1e-10)
        for level, ref_level in zip(ours[1:], reference[1:]):
            for c, r in zip(level, ref_level):
                assert c.shape == r.shape
                np.testing.assert_allclose(c.numpy(), r, rtol=0, atol=1e-10)
        rebuilt = waverec2d(ours, h0, mode).numpy()
        expected = pywt.waverec2(reference, name, mode=mode)
        assert rebuilt.shape == expected.shape
        np.testing.assert_allclose(rebuilt, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_float32_matches_pywt_to_1e6(mode):
    x = np.random.default_rng(2).normal(size=(4, 64)).astype(np.float32)
    ours = wavedec1d(torch.from_numpy(x), _h0("db5", torch.float32), 3, mode)
    for c, r in zip(ours, pywt.wavedec(x.astype(np.float64), "db5", mode=mode, level=3)):
        np.testing.assert_allclose(c.numpy(), r, rtol=0, atol=1e-5 * max(1, np.abs(r).max()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [n for n in orthogonal_wavelet_names() if n != "dmey"])
def test_perfect_reconstruction_for_valid_filters(name, mode):
    # dmey is an FIR approximation of Meyer's wavelet, not exactly orthogonal
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(2, 40)))
    h0 = _h0(name)
    rebuilt = waverec1d(wavedec1d(x, h0, 2, mode), h0, mode)[..., :40]
    torch.testing.assert_close(rebuilt, x, rtol=0, atol=1e-8)
    image = torch.from_numpy(np.random.default_rng(4).normal(size=(1, 12, 10)))
    rebuilt = waverec2d(wavedec2d(image, h0, 1, mode), h0, mode)[..., :12, :10]
    torch.testing.assert_close(rebuilt, image, rtol=0, atol=1e-8)


@pytest.mark.parametrize("mode", ["zero", "periodization"])
def test_synthesis_is_adjoint_of_analysis_for_any_filter(mode):
    # <dwt(x), c> = <x, idwt(c)> holds whatever the filter, valid or not
    gen = torch.Generator().manual_seed(5)
    h0 = torch.randn(6, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 20, generator=gen, dtype=torch.float64)
    coefficients = wavedec1d(x, h0, 2, mode)
    probes = [torch.randn(c.shape, generator=gen, dtype=torch.float64) for c in coefficients]
    left = sum((c * p).sum() for c, p in zip(coefficients, probes))
    right = (x * waverec1d(probes, h0, mode)[..., :20]).sum()
    torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-12)
    # an odd length: zero mode stays adjoint; periodization pads with the last sample, as
    # PyWavelets does, and its synthesis (PyWavelets' too) does not fold it back
    x = torch.randn(15, generator=gen, dtype=torch.float64)
    coefficients = wavedec1d(x, h0, 1, mode)
    probes = [torch.randn(c.shape, generator=gen, dtype=torch.float64) for c in coefficients]
    left = sum((c * p).sum() for c, p in zip(coefficients, probes))
    right = (x * waverec1d(probes, h0, mode)[..., :15]).sum()
    assert (abs(float(left - right)) < 1e-12) == (mode == "zero")


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_1d(mode):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = (_h0("db2") + 0.1 * torch.randn(4, generator=gen, dtype=torch.float64)).requires_grad_()

    def roundtrip(x, h0):
        coefficients = wavedec1d(x, h0, 2, mode)
        return (*coefficients, waverec1d(coefficients, h0, mode))

    assert torch.autograd.gradcheck(roundtrip, (x, h0))
    c = torch.randn(1, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    d = torch.randn(1, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, d, h: idwt1d(c, d, h, mode), (c, d, h0))


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_2d(mode):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(1, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = (_h0("haar") + 0.1 * torch.randn(2, generator=gen, dtype=torch.float64)).requires_grad_()

    def roundtrip(x, h0):
        coefficients = wavedec2d(x, h0, 1, mode)
        return (coefficients[0], *coefficients[1], waverec2d(coefficients, h0, mode))

    assert torch.autograd.gradcheck(roundtrip, (x, h0))


def test_coefficient_lengths_match_pywt():
    for mode in MODES:
        for length in (7, 64, 100):
            expected = [len(c) for c in pywt.wavedec(np.zeros(length), "db5", mode=mode, level=4)]
            assert coefficient_lengths(length, 10, 4, mode) == expected


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((-5, 10, 4), ValueError, "length"),
        ((0, 10, 4), ValueError, "length"),
        ((64.0, 10, 4), TypeError, "length"),
        ((64, 0, 4), ValueError, "filter_length"),
        ((64, 10.0, 4), TypeError, "filter_length"),
        ((64, 10, 0), ValueError, "levels"),
        ((64, 10, 2.0), TypeError, "levels"),
    ],
    ids=["length-neg", "length-0", "length-float", "flen-0", "flen-float", "lev-0", "lev-float"],
)
def test_coefficient_lengths_refuse_what_no_transform_has_naming_it(args, error, name):
    # a negative length had given a list of lengths, a float one float lengths, 0 levels an
    # IndexError
    with pytest.raises(error, match=rf"^{name} must be an integer >= 1; got "):
        coefficient_lengths(*args, "zero")
    # numpy integers are integers: the lengths pywt gives
    expected = [len(c) for c in pywt.wavedec(np.zeros(64), "db5", mode="zero", level=4)]
    assert coefficient_lengths(np.int64(64), np.int64(10), np.int64(4), "zero") == expected


def test_dwt1d_keeps_batch_dimensions():
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    cA, cD = dwt1d(x, _h0("db2"), "symmetric")
    ref_a, ref_d = pywt.dwt(x.numpy(), "db2", mode="symmetric")
    np.testing.assert_allclose(cA.numpy(), ref_a, atol=1e-12)
    np.testing.assert_allclose(cD.numpy(), ref_d, atol=1e-12)


def test_check_levels_limits_and_warning():
    assert check_levels(6, 64, 2) == 6
    with pytest.raises(ValueError, match=r"levels must be between 1 and 6 .* length 64"):
        check_levels(7, 64, 10)
    with pytest.raises(ValueError, match="levels must be between 1"):
        check_levels(0, 64, 10)
    with pytest.raises(TypeError, match="levels must be an int"):
        check_levels(2.0, 64, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="dwt_max_level"):
            check_levels(4, 64, 10)


def test_lowpass_from_wavelet_names_noise_and_custom_wavelets():
    np.testing.assert_array_equal(lowpass_from_wavelet("db5"), pywt.Wavelet("db5").rec_lo)
    noisy = lowpass_from_wavelet("db5", noise=0.1, seed=3)
    np.testing.assert_array_equal(noisy, lowpass_from_wavelet("db5", noise=0.1, seed=3))
    assert 0 < np.abs(noisy - pywt.Wavelet("db5").rec_lo).max() < 1
    custom = pywt.Wavelet("mine", filter_bank=pywt.Wavelet("sym3").filter_bank)
    np.testing.assert_array_equal(lowpass_from_wavelet(custom), pywt.Wavelet("sym3").rec_lo)
    taps = [0.1, 0.2, 0.3, 0.4]
    h0 = lowpass_from_wavelet(taps)
    np.testing.assert_array_equal(h0, taps)
    h0[0] = 9.0
    assert taps[0] == 0.1  # a copy: the caller's filter is not touched


def test_lowpass_from_wavelet_bad_input():
    with pytest.raises(ValueError, match=r"orthogonal PyWavelets wavelet, got 'db99'.*db5"):
        lowpass_from_wavelet("db99")
    with pytest.raises(ValueError, match=r"orthogonal .* got 'bior2.2'"):
        lowpass_from_wavelet("bior2.2")
    with pytest.raises(ValueError, match="wavelet must be orthogonal"):
        lowpass_from_wavelet(pywt.Wavelet("bior2.2"))
    with pytest.raises(TypeError, match="wavelet must be a str, a pywt.Wavelet or a scaling"):
        lowpass_from_wavelet(5)
    with pytest.raises(ValueError, match="even length >= 2"):
        lowpass_from_wavelet([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="finite numbers"):
        lowpass_from_wavelet([0.5, float("nan")])
    with pytest.raises(ValueError, match="noise must be a finite number"):
        lowpass_from_wavelet("db5", noise=-1.0)
    # float(noise) had said "could not convert string to float: 'a'", numpy's generator
    # "expected non-negative integer" for seed=-1, neither naming the argument; True read as 1.0
    for kwargs, error, message in (
        ({"noise": "a"}, TypeError, r"noise must be a real number >= 0; got 'a'"),
        ({"noise": True}, TypeError, r"noise must be a real number >= 0; got True"),
        ({"noise": 0.1, "seed": -1}, ValueError, r"seed must be an integer >= 0; got -1"),
        ({"noise": 0.1, "seed": "x"}, TypeError, r"seed must be an integer >= 0; got 'x'"),
    ):
        with pytest.raises(error, match=message):
            lowpass_from_wavelet("db5", **kwargs)


def test_bad_mode_is_named():
    with pytest.raises(ValueError, match="mode must be one of"):
        dwt1d(torch.zeros(1, 8), _h0("haar", torch.float32), "smooth")
    # the multilevel transforms check the mode once, before any level (zero levels too)
    for call in (
        lambda: wavedec1d(torch.zeros(1, 8), _h0("haar", torch.float32), 0, "smooth"),
        lambda: waverec1d([torch.zeros(1, 4)], _h0("haar", torch.float32), "smooth"),
        lambda: wavedec2d(torch.zeros(1, 8, 8), _h0("haar", torch.float32), 1, "smooth"),
        lambda: waverec2d([torch.zeros(1, 4, 4)], _h0("haar", torch.float32), "smooth"),
    ):
        with pytest.raises(ValueError, match="mode must be one of"):
            call()


@pytest.mark.parametrize("mode", MODES)
def test_multilevel_transforms_are_their_levels_composed(mode):
    # the filters are made once per multilevel transform: the result is each level's
    # dwt1d / idwt1d applied in turn, bit for bit, with the same gradient in h0
    h0 = _h0("db3", torch.float32).requires_grad_()
    x = torch.randn(3, 2, 40, generator=torch.Generator().manual_seed(0))
    coefficients = wavedec1d(x, h0, 3, mode)
    details, approximation = [], x
    for _ in range(3):
        approximation, detail = dwt1d(approximation, h0, mode)
        details.append(detail)
    by_levels = (approximation, *details[::-1])
    assert all(torch.equal(a, b) for a, b in zip(coefficients, by_levels, strict=True))
    rebuilt = waverec1d(list(coefficients), h0, mode)
    approximation = coefficients[0]
    for detail in coefficients[1:]:
        approximation = approximation[..., : detail.shape[-1]]
        approximation = idwt1d(approximation, detail, h0, mode)
    assert torch.equal(rebuilt, approximation)
    (grad,) = torch.autograd.grad(rebuilt.square().sum(), h0, retain_graph=True)
    (expected,) = torch.autograd.grad(approximation.square().sum(), h0)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)
    # 2D: one level is dwt1d along the last dimension, then along the one before
    images = torch.randn(2, 12, 10, generator=torch.Generator().manual_seed(1))
    low, high = dwt1d(images, h0, mode)
    aa, da = (t.transpose(-1, -2) for t in dwt1d(low.transpose(-1, -2), h0, mode))
    ad, dd = (t.transpose(-1, -2) for t in dwt1d(high.transpose(-1, -2), h0, mode))
    approximation, details = wavedec2d(images, h0, 1, mode)
    assert torch.equal(approximation, aa)
    assert all(torch.equal(a, b) for a, b in zip(details, (da, ad, dd), strict=True))


def test_wavelet_from_filter_refuses_what_is_no_orthogonal_scaling_filter():
    from lightning_distill.awd.transform import wavelet_from_filter

    # PyWavelets pads an odd filter with a zero, each of the bank's four alike: the highpass no
    # longer is the quadrature mirror of the lowpass, and the wavelet flagged orthogonal did
    # not invert its own transform (it had been given back silently)
    for bad in ([0.5, 0.5, 0.5], np.ones((2, 2)) / 2, [], [0.7]):
        with pytest.raises(ValueError, match=r"h0 must be a 1D scaling filter of even length"):
            wavelet_from_filter(bad)
    with pytest.raises(TypeError, match=r"h0 must be a scaling filter.*'db2'"):
        wavelet_from_filter("db2")
    # a NaN or infinite tap had made a wavelet whose every transform was NaN
    for tap in (np.nan, np.inf):
        with pytest.raises(ValueError, match=r"^h0 must hold finite numbers; got \[.*, 1\.0\]"):
            wavelet_from_filter([tap, 1.0])
    # what it takes gives a wavelet whose transform pywt inverts
    wavelet = wavelet_from_filter(torch.tensor(pywt.Wavelet("db3").rec_lo, dtype=torch.float64))
    x = np.random.default_rng(0).normal(size=17)
    rebuilt = pywt.waverec(pywt.wavedec(x, wavelet, level=2), wavelet)[:17]
    np.testing.assert_allclose(rebuilt, x, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_filters_of_a_half_precision_module_are_read(dtype):
    # a warm start from a module cast to bfloat16 (Trainer(precision="bf16-true")): numpy has
    # no bfloat16, and torch's "Got unsupported ScalarType BFloat16" had been the answer
    from lightning_distill.awd import AWDModule, WaveletFeatures
    from lightning_distill.awd.transform import wavelet_from_filter

    h0 = torch.tensor(pywt.Wavelet("db2").rec_lo).to(dtype)
    exact = h0.double().numpy()
    np.testing.assert_array_equal(lowpass_from_wavelet(h0), exact)
    np.testing.assert_array_equal(wavelet_from_filter(h0).rec_lo, exact)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    warm = AWDModule(teacher, wavelet=torch.nn.Parameter(h0), levels=2)
    np.testing.assert_array_equal(warm.h0.detach().double().numpy(), exact)
    X = np.random.default_rng(0).normal(size=(4, 16))
    features = WaveletFeatures(h0, levels=2).fit(X)
    np.testing.assert_array_equal(features.wavelet_.rec_lo, exact)
    with pytest.raises(TypeError, match=r"wavelet must be a scaling filter.*\['a', 'b'\]"):
        lowpass_from_wavelet(["a", "b"])


def test_operands_torch_cannot_use_are_refused_naming_the_argument():
    # an h0 of another dtype than the signal, a numpy or list filter, an odd filter, integer
    # signals or too few dimensions had failed deep in torch (conv1d's dtype mismatch, a list
    # without .shape), or given a transform that is no orthogonal wavelet's (an odd filter);
    # a negative number of levels had returned the signal as if decomposed
    x = torch.randn(2, 9, dtype=torch.float64)
    h0 = _h0("db2")
    cases = [
        (lambda: wavedec1d(x.float(), h0, 2), TypeError, r"h0 must have the dtype and device of x"),
        (lambda: dwt1d(x, h0.float()), TypeError, r"h0 must have the dtype and device of x"),
        (lambda: wavedec1d(x, pywt.Wavelet("db2").rec_lo, 1), TypeError, r"h0 must be a torch"),
        (lambda: wavedec1d(x, torch.ones(3, dtype=torch.float64), 1), ValueError, r"h0 .* even"),
        (lambda: wavedec1d(torch.arange(8), h0, 1), TypeError, r"x must be a floating-point"),
        (lambda: wavedec1d(x[0, 0], h0, 1), ValueError, r"x must have at least 1 dim"),
        (lambda: wavedec2d(x[0], h0, 1), ValueError, r"x must have at least 2 dim"),
        (lambda: wavedec1d(x, h0, -1), ValueError, r"levels must be an integer >= 0"),
        (lambda: wavedec2d(x, h0, 1.5), TypeError, r"levels must be an integer >= 0"),
        (lambda: waverec1d([], h0), TypeError, r"coeffs must be a non-empty list"),
        (
            lambda: waverec1d(pywt.wavedec(x.numpy(), "db2", level=1), h0),
            TypeError,
            r"coeffs\[0\] must be a torch.Tensor",
        ),
        (
            lambda: waverec1d([c.float() for c in wavedec1d(x, h0, 1)], h0),
            TypeError,
            r"h0 must have the dtype and device of coeffs\[0\]",
        ),
        (
            lambda: waverec2d(
                [torch.zeros(1, 4, 4, dtype=torch.float64), torch.zeros(1, 4, 4)], h0
            ),
            TypeError,
            r"coeffs\[1\] must be a \(cH, cV, cD\) triple",
        ),
        (lambda: idwt1d(x, x.float(), h0), TypeError, r"h0 must have the dtype and device of cD"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    # level 0 is PyWavelets' too: the signal alone, as pywt.wavedec gives it
    (alone,) = wavedec1d(x, h0, 0)
    assert len(pywt.wavedec(x.numpy(), "db2", level=0)) == 1
    torch.testing.assert_close(alone, x, rtol=0, atol=0)


def test_signals_empty_along_a_transformed_dimension_are_refused_naming_them():
    h0 = _h0("db2")
    # an empty batch is transformed as PyWavelets transforms it: empty bands of its lengths
    empty_batch = np.zeros((0, 16))
    for ours, theirs in zip(
        wavedec1d(torch.from_numpy(empty_batch), h0, 2), pywt.wavedec(empty_batch, "db2", level=2)
    ):
        assert tuple(ours.shape) == theirs.shape
    # an empty signal axis had failed in torch's reshape ("cannot reshape tensor of 0 elements")
    cases = [
        (lambda: wavedec1d(torch.zeros(2, 0, dtype=torch.float64), h0, 1), r"x .* \(2, 0\)"),
        (lambda: dwt1d(torch.zeros(0, dtype=torch.float64), h0), r"x .* \(0,\)"),
        (lambda: wavedec2d(torch.zeros(2, 8, 0, dtype=torch.float64), h0, 1), r"x .* \(2, 8, 0\)"),
        (lambda: wavedec2d(torch.zeros(2, 0, 8, dtype=torch.float64), h0, 1), r"x .* \(2, 0, 8\)"),
        (
            lambda: waverec1d([torch.zeros(2, 0, dtype=torch.float64)] * 2, h0, "periodization"),
            r"coeffs\[0\] .* \(2, 0\)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=r"must have at least one sample along "):
            call()
        with pytest.raises(ValueError, match=message):
            call()


def test_reflect_mode_refuses_a_level_of_one_sample_as_pywt_does():
    """Whole-sample symmetry has no reflection of one sample: PyWavelets refuses it, and a level
    of one sample had been extended as a constant here, coefficients pywt does not define."""
    h0 = torch.tensor(pywt.Wavelet("haar").rec_lo, dtype=torch.float64)
    x = torch.randn(2, 8, dtype=torch.float64)
    with pytest.raises(ValueError):  # the reference refuses it
        pywt.wavedec(x.numpy(), "haar", mode="reflect", level=4)
    with pytest.raises(ValueError, match=r"mode='reflect' needs at least 2 samples.*level 4 of 4"):
        wavedec1d(x, h0, 4, "reflect")
    with pytest.raises(ValueError, match=r"a length of 1 has 1 at level 1"):
        dwt1d(x[:, :1], h0, "reflect")
    with pytest.raises(ValueError, match=r"mode='reflect' needs at least 2 samples"):
        wavedec2d(torch.randn(2, 1, 8, dtype=torch.float64), h0, 1, "reflect")
    # the levels PyWavelets computes are computed as it does; other modes take one sample
    ours = wavedec1d(x, h0, 3, "reflect")
    reference = pywt.wavedec(x.numpy(), "haar", mode="reflect", level=3)
    assert all(np.allclose(a.numpy(), b) for a, b in zip(ours, reference))
    for mode in ("zero", "symmetric", "periodization"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pywt: the level is too high
            reference = pywt.wavedec(x.numpy(), "haar", mode=mode, level=4)
        ours = wavedec1d(x, h0, 4, mode)
        assert all(np.allclose(a.numpy(), b) for a, b in zip(ours, reference))
