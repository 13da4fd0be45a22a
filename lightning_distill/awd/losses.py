"""Loss terms of adaptive wavelet distillation, as pure functions.

Each term is returned on its own so that it can be weighted and logged separately; the
validity terms vanish exactly when ``h0`` is the scaling filter of an orthogonal wavelet with at
least one vanishing moment.
"""

from __future__ import annotations

import functools
import math

import pywt
import torch
import torch.nn.functional as F

from lightning_distill._validation import check_float_tensor, fail
from lightning_distill.awd.transform import (
    _filter_array,
    as_filter,
    filter_bank,
    lowpass_from_wavelet,
)

__all__ = [
    "VALIDITY_TERMS",
    "attribution_sparsity_loss",
    "cmf_loss",
    "even_shift_loss",
    "filter_distance",
    "highpass_sum_loss",
    "lowpass_sum_loss",
    "reconstruction_loss",
    "sparsity_loss",
    "unit_norm_loss",
    "validity_error",
    "validity_losses",
]

VALIDITY_TERMS = ("lowpass_sum", "highpass_sum", "unit_norm", "cmf", "even_shift")


def reconstruction_loss(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error between a signal and its reconstruction.

    Examples
    --------
    >>> float(reconstruction_loss(torch.zeros(2, 4), torch.ones(2, 4)))
    1.0
    """
    for name, value in (("reconstruction", reconstruction), ("x", x)):
        # an integer or bool tensor met torch's bare '"mse_cpu" not implemented for ...'
        check_float_tensor(name, value, min_dim=0)
    if reconstruction.shape != x.shape:
        # mse_loss would broadcast a (batch, 1, N) reconstruction against a (batch, N) signal
        # into a (batch, batch, N) comparison, with a warning only
        fail("reconstruction", f"shaped as x, {tuple(x.shape)}", tuple(reconstruction.shape))
    if x.numel() == 0:
        # the mean of no squared error: torch gives NaN, with a warning at most
        fail("x", "a tensor holding at least one value", tuple(x.shape))
    return F.mse_loss(reconstruction, x)


def _l1_per_sample(tensors, name: str) -> torch.Tensor:
    """Sum of ``|t|`` over every tensor and every element but the first dimension, batch mean;
    ``tensors`` refused (naming ``name``) unless a non-empty sequence of tensors of one batch
    size: a single tensor would be iterated over its rows, each row's entries read as samples."""
    constraint = "a non-empty sequence of tensors shaped (batch, ...)"
    if not isinstance(tensors, list | tuple):
        fail(name, constraint, tensors, TypeError)
    if not tensors:
        fail(name, constraint, tensors)
    for index, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            fail(f"{name}[{index}]", "a tensor shaped (batch, ...)", t, TypeError)
        if not t.is_floating_point():
            # torch's mean of an integer sum (or abs of a bool tensor) failed deep inside
            fail(
                f"{name}[{index}]",
                "a floating-point tensor shaped (batch, ...)",
                t.dtype,
                TypeError,
            )
        if t.ndim == 0:
            fail(f"{name}[{index}]", "a tensor shaped (batch, ...)", t)
    batch = tensors[0].shape[0]
    sizes = [t.shape[0] for t in tensors]
    if any(size != batch for size in sizes):
        fail(name, "tensors of one batch size (first dimension)", sizes)
    if batch == 0:
        # the batch mean of no sample: torch's reshape of an empty tensor failed
        fail(name, "tensors of at least one sample (a batch size of 1 or more)", sizes)
    return _l1_per_sample_unchecked(tensors)


def _l1_per_sample_unchecked(tensors) -> torch.Tensor:
    """:func:`_l1_per_sample` without its checks, for callers whose bands it made itself
    (``AWDModule``'s step: about 25 us of checks a call on a 1D step of 12 ms)."""
    batch = tensors[0].shape[0]
    return sum(t.abs().reshape(batch, -1).sum(dim=1) for t in tensors).mean()


def sparsity_loss(coefficients) -> torch.Tensor:
    """L1 norm of all wavelet coefficients, summed per sample and averaged over the batch.

    Parameters
    ----------
    coefficients : sequence of torch.Tensor
        Flat coefficient tuple, each of shape (batch, ...).

    Examples
    --------
    >>> float(sparsity_loss((torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0]]))))
    6.0
    """
    return _l1_per_sample(coefficients, "coefficients")


def attribution_sparsity_loss(attributions) -> torch.Tensor:
    """L1 norm of the attributions of the wavelet coefficients (per sample, batch mean).

    Parameters
    ----------
    attributions : sequence of torch.Tensor
        One tensor per coefficient tensor, each of shape (batch, ...).
    """
    return _l1_per_sample(attributions, "attributions")


def _check_filter(h0) -> None:
    """``h0`` must be a 1D floating-point tensor of at least one tap (a scaling filter): a list
    has no tensor methods, an integer tensor truncates the terms, and a 2D tensor would be read
    whole (summed, or its rows run together) as if it were one filter."""
    check_float_tensor("h0", h0, min_dim=1)
    if h0.ndim != 1 or h0.numel() == 0:
        fail("h0", "a 1D tensor of at least one tap (a scaling filter)", tuple(h0.shape))


def _checks_filter(term):
    """A validity term that checks its filter first; the unchecked term is ``__wrapped__``
    (what :func:`validity_losses` calls after its own check, and the training step, whose
    filter is its own parameter)."""

    @functools.wraps(term)
    def checked(h0):
        _check_filter(h0)
        return term(h0)

    return checked


@_checks_filter
def lowpass_sum_loss(h0: torch.Tensor) -> torch.Tensor:
    """``(sum(h0) - sqrt(2))^2``: the scaling filter passes constants with gain sqrt(2)."""
    return (h0.sum() - math.sqrt(2.0)) ** 2


@_checks_filter
def highpass_sum_loss(h0: torch.Tensor) -> torch.Tensor:
    """``sum(h1)^2`` for the quadrature-mirror highpass ``h1``: the wavelet has zero mean."""
    return filter_bank(h0)[3].sum() ** 2


@_checks_filter
def unit_norm_loss(h0: torch.Tensor) -> torch.Tensor:
    """``(||h0||^2 - 1)^2``."""
    return (h0.pow(2).sum() - 1.0) ** 2


@_checks_filter
def cmf_loss(h0: torch.Tensor) -> torch.Tensor:
    """Conjugate mirror filter condition ``|H(w)|^2 + |H(w + pi)|^2 = 2``.

    Mean squared violation over a DFT grid of ``2L`` frequencies; the left side is a
    trigonometric polynomial of degree ``L - 1``, so that grid checks it everywhere.
    """
    length = h0.shape[-1]
    grid = 2 * length
    # torch's FFT takes no half precisions (a "bf16-true" run): the filter is a few numbers,
    # so it is transformed in float32 and the loss given back in the filter's dtype
    wide = h0.float() if h0.dtype in (torch.bfloat16, torch.float16) else h0
    power = torch.fft.fft(wide, n=grid).abs().pow(2)
    return (power[: grid // 2] + power[grid // 2 :] - 2.0).pow(2).mean().to(h0.dtype)


def _autocorrelation(h0: torch.Tensor) -> torch.Tensor:
    """``r[m] = sum_n h0[n] h0[n + m]`` for ``m = -(L-1), ..., L-1``."""
    length = h0.shape[-1]
    return F.conv1d(h0.view(1, 1, -1), h0.view(1, 1, -1), padding=length - 1).view(-1)


@_checks_filter
def even_shift_loss(h0: torch.Tensor) -> torch.Tensor:
    """``sum_{k != 0} (sum_n h0[n] h0[n + 2k])^2``: orthogonality to its even shifts."""
    length = h0.shape[-1]
    correlation = _autocorrelation(h0)
    lags = torch.arange(-(length - 1), length, device=h0.device)
    mask = (lags % 2 == 0) & (lags != 0)
    return correlation[mask].pow(2).sum()


def validity_losses(h0: torch.Tensor) -> dict[str, torch.Tensor]:
    """All wavelet-validity terms of ``h0``, keyed by :data:`VALIDITY_TERMS`.

    Parameters
    ----------
    h0 : torch.Tensor, shape (L,)
        The scaling filter, a floating-point tensor.

    Examples
    --------
    >>> import pywt
    >>> h0 = torch.tensor(pywt.Wavelet("db4").rec_lo, dtype=torch.float64)
    >>> max(float(v) for v in validity_losses(h0).values()) < 1e-20
    True
    """
    _check_filter(h0)
    return _validity_terms(h0)


def _validity_terms(h0: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`validity_losses` of a filter known to be a 1D floating-point tensor (no check)."""
    return {
        "lowpass_sum": lowpass_sum_loss.__wrapped__(h0),
        "highpass_sum": highpass_sum_loss.__wrapped__(h0),
        "unit_norm": unit_norm_loss.__wrapped__(h0),
        "cmf": cmf_loss.__wrapped__(h0),
        "even_shift": even_shift_loss.__wrapped__(h0),
    }


def _scaling_filter(h0, argument: str) -> torch.Tensor:
    """A filter, or a wavelet's name or ``pywt.Wavelet`` read as its scaling filter (``rec_lo``);
    errors name ``argument`` (a continuous wavelet is refused there too, not in ``float()``)."""
    if isinstance(h0, str | pywt.Wavelet | pywt.ContinuousWavelet):
        return as_filter(lowpass_from_wavelet(h0, argument=argument))
    taps = _filter_array(h0, argument)  # None would be NaN, a table flattened
    if taps.ndim != 1 or taps.size == 0:
        got = repr(h0) if taps.ndim == 0 else f"shape {taps.shape}"
        raise ValueError(f"{argument} must be a 1D filter of at least one tap; got {got}.")
    return torch.from_numpy(taps)


def validity_error(h0) -> float:
    """How far ``h0`` is from the scaling filter of a valid orthogonal wavelet.

    The largest absolute violation among ``sum(h0) - sqrt(2)``, ``sum(h1)``,
    ``||h0||^2 - 1`` and ``sum_n h0[n] h0[n + 2k]`` for ``k != 0``. Zero exactly when the
    filter bank is orthonormal (perfect reconstruction) and has a vanishing moment.

    Parameters
    ----------
    h0 : torch.Tensor or array-like, shape (L,), or str or pywt.Wavelet
        The scaling filter; an orthogonal wavelet's name or ``pywt.Wavelet`` stands for its
        ``rec_lo``.

    Returns
    -------
    float

    Examples
    --------
    >>> import pywt
    >>> validity_error(pywt.Wavelet("sym5").rec_lo) < 1e-10  # pywt stores sym5 to ~1e-12
    True
    >>> round(validity_error([1.0, 1.0]), 6)  # Haar without the 1/sqrt(2)
    1.0
    """
    h0 = _scaling_filter(h0, "h0")
    length = h0.shape[-1]
    correlation = _autocorrelation(h0)
    lags = torch.arange(-(length - 1), length)
    even = correlation[(lags % 2 == 0) & (lags != 0)]
    violations = [
        (h0.sum() - math.sqrt(2.0)).abs(),
        filter_bank(h0)[3].sum().abs(),
        (h0.pow(2).sum() - 1.0).abs(),
        even.abs().max() if even.numel() else torch.zeros((), dtype=torch.float64),
    ]
    return float(torch.stack(violations).max())


def filter_distance(h0, reference) -> float:
    """Euclidean distance between two filters, minimised over shifts (translations) and sign.

    A wavelet is unchanged in substance by a shift (a translation) or a sign flip of its
    filter, so those are factored out: both filters are zero-padded to ``L + L' - 1`` taps, so
    that every shift translates one against the other and none wraps taps around (a rotation
    of a filter is another filter).

    Parameters
    ----------
    h0, reference : torch.Tensor or array-like, shape (L,) and (L',), or str or pywt.Wavelet
        Scaling filters; an orthogonal wavelet's name or ``pywt.Wavelet`` stands for its
        ``rec_lo``.

    Returns
    -------
    float

    Examples
    --------
    >>> filter_distance([0.0, 1.0, 2.0], [-1.0, -2.0])
    0.0
    """
    a, b = _scaling_filter(h0, "h0"), _scaling_filter(reference, "reference")
    length = a.numel() + b.numel() - 1
    a = F.pad(a, (0, length - a.numel()))
    b = F.pad(b, (0, length - b.numel()))
    shifted = torch.stack([torch.roll(a, s) for s in range(length)])
    distances = torch.cat([(shifted - b).norm(dim=1), (shifted + b).norm(dim=1)])
    return float(distances.min())
