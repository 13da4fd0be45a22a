"""TRIM attributions of wavelet coefficients through Captum, differentiable in the filter.

TRIM (Singh, Ha and Yu 2020) attributes a model's output to a *transformed* representation of
its input: the model sees ``inverse(coefficients) + (x - reconstruction).detach()``, which equals
``x`` in value, while gradients flow through the inverse transform to the coefficients. Captum's
attribution classes then work on the coefficient tuple unchanged.

Captum computes input gradients without ``create_graph``; :func:`gradients_with_graph` is a
drop-in for its ``gradient_func`` hook that keeps the graph, so that an attribution loss can be
differentiated once more, with respect to the wavelet filter (double backprop).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency

from lightning_distill._validation import check_choice, check_integer
from lightning_distill.awd.transform import wavedec1d, wavedec2d, waverec1d, waverec2d

__all__ = [
    "METHODS",
    "TRIMForward",
    "TRIMResult",
    "flatten_coefficients",
    "gradients_with_graph",
    "select_target",
    "trim_attributions",
    "unflatten_coefficients",
]

METHODS = {
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "integrated_gradients": IntegratedGradients,
}


def flatten_coefficients(coefficients, dim: int) -> tuple[torch.Tensor, ...]:
    """Flat tuple of coefficient tensors: ``(cA_J, cD_J, ..., cD_1)`` in 1D,
    ``(cA_J, cH_J, cV_J, cD_J, ..., cH_1, cV_1, cD_1)`` in 2D."""
    if dim == 1:
        return tuple(coefficients)
    return (coefficients[0], *(band for level in coefficients[1:] for band in level))


def unflatten_coefficients(flat, dim: int) -> list:
    """Inverse of :func:`flatten_coefficients` (the nesting of ``pywt.wavedec``/``wavedec2``)."""
    if dim == 1:
        return list(flat)
    return [flat[0], *(tuple(flat[i : i + 3]) for i in range(1, len(flat), 3))]


def select_target(outputs: torch.Tensor, target) -> torch.Tensor:
    """One scalar per sample from a model's outputs, as Captum's ``target`` argument selects it.

    Parameters
    ----------
    outputs : torch.Tensor, shape (batch, ...)
    target : None, int, tuple of int, or per-sample integer tensor/list
        ``None`` requires a single output per sample.

    Returns
    -------
    torch.Tensor, shape (batch,)
    """
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"teacher must return a tensor; got {type(outputs).__name__} (wrap the teacher in a "
            "module that returns the output to explain, e.g. its logits)."
        )
    batch = outputs.shape[0]
    if target is None:
        if outputs[0].numel() != 1:
            raise ValueError(
                f"target must be given: the teacher returns {outputs[0].numel()} outputs per "
                f"sample (output shape {tuple(outputs.shape)}); pass an output index or a callable."
            )
        return outputs.reshape(batch)
    if isinstance(target, (list, torch.Tensor)):
        index = torch.as_tensor(target, device=outputs.device).reshape(-1)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            # torch's gather would say "Expected dtype int32/int64 for index"
            raise TypeError(
                f"per-sample target must hold integer output indices; got dtype {index.dtype}."
            )
        if outputs.ndim != 2 or index.numel() != batch:
            raise ValueError(
                f"per-sample target needs outputs of shape (batch, k) and one index per sample; "
                f"got outputs {tuple(outputs.shape)} and {index.numel()} indices."
            )
        if int(index.max()) >= outputs.shape[1] or int(index.min()) < -outputs.shape[1]:
            raise ValueError(
                f"target indices must be in [0, {outputs.shape[1]}) for the teacher's output "
                f"shape {tuple(outputs.shape)}."
            )
        return outputs.gather(1, (index % outputs.shape[1]).unsqueeze(1)).reshape(batch)
    index = target if isinstance(target, tuple) else (target,)
    per_sample = tuple(outputs.shape[1:])
    if len(index) != len(per_sample) or any(
        not -size <= i < size for i, size in zip(index, per_sample)
    ):
        raise ValueError(
            f"target {target!r} is not an index of the teacher's output per sample, which has "
            f"shape {per_sample} (output shape {tuple(outputs.shape)})."
        )
    return outputs[(slice(None), *index)]


def _check_batch_first(outputs, batch: int, name: str = "teacher output") -> None:
    """Refuse a tensor ``outputs`` whose first axis is not the batch of ``batch`` samples.

    A batch of one through a teacher that squeezes its output: a 0-d output failed in
    indexing (an ``IndexError``), and a ``(1, k)`` output squeezed to ``(k,)`` was read as
    ``k`` samples of one output each, its ``k`` outputs summed silently.
    """
    if isinstance(outputs, torch.Tensor) and (outputs.ndim == 0 or outputs.shape[0] != batch):
        raise ValueError(
            f"{name} must have the batch first, shape ({batch}, ...); got shape "
            f"{tuple(outputs.shape)} for a batch of {batch}. A .squeeze() drops the batch axis "
            "of a batch of one; .squeeze(-1) keeps it."
        )


def gradients_with_graph(
    forward_fn: Callable,
    inputs: tuple[torch.Tensor, ...],
    target_ind=None,
    additional_forward_args=None,
    *,
    create_graph: bool = True,
) -> tuple[torch.Tensor, ...]:
    """Gradients of the targeted outputs w.r.t. ``inputs``, keeping the graph.

    Same signature and semantics as Captum's default ``gradient_func``
    (``captum._utils.gradient.compute_gradients``), with ``create_graph=True`` so that the
    returned gradients are themselves differentiable.
    """
    if additional_forward_args is None:
        additional_forward_args = ()
    elif not isinstance(additional_forward_args, tuple):
        additional_forward_args = (additional_forward_args,)
    with torch.enable_grad():
        outputs = forward_fn(*inputs, *additional_forward_args)
        if inputs:
            _check_batch_first(
                outputs, inputs[0].shape[0], "teacher output (after target, when a callable)"
            )
        selected = select_target(outputs, target_ind)
        if not selected.requires_grad:
            # torch's own complaint ("element 0 of tensors does not require grad") names
            # neither the teacher nor why
            raise ValueError(
                "teacher output must be differentiable with respect to its input (attributions "
                f"are its gradients); got an output of dtype {selected.dtype} with no gradient: "
                "does the teacher detach its input, run under torch.no_grad, or return "
                "integers (e.g. an argmax)? Attribute its scores or logits instead."
            )
        return torch.autograd.grad(
            selected,
            inputs,
            grad_outputs=torch.ones_like(selected),
            create_graph=create_graph,
        )


class TRIMForward:
    """``teacher(inverse(coefficients) + residual)``, the model Captum attributes.

    Parameters
    ----------
    teacher : torch.nn.Module or callable
    h0 : torch.Tensor
        Scaling filter of the transform.
    mode : str
        Boundary mode.
    dim : {1, 2}
        Transform over the last ``dim`` dimensions.
    signal_shape : tuple of int
        Shape of the last ``dim`` dimensions of the signals (the reconstruction is cropped to it).
    output_fn : callable or None
        Applied to the teacher's output (e.g. to pick a class or combine outputs).
    """

    def __init__(self, teacher, h0, mode, dim, signal_shape, output_fn=None):
        self.teacher = teacher
        self.h0 = h0
        self.mode = mode
        self.dim = dim
        self.signal_shape = tuple(signal_shape)
        self.output_fn = output_fn
        self._cached = None

    def reconstruct(self, flat: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Inverse transform of the flat coefficient tuple, cropped to the signal shape."""
        cached = self._cached
        if cached is not None and len(cached[0]) == len(flat):
            if all(a is b for a, b in zip(cached[0], flat)):
                return cached[1]
        coefficients = unflatten_coefficients(flat, self.dim)
        if self.dim == 1:
            return waverec1d(coefficients, self.h0, self.mode)[..., : self.signal_shape[0]]
        height, width = self.signal_shape
        return waverec2d(coefficients, self.h0, self.mode)[..., :height, :width]

    def remember(self, flat, reconstruction) -> None:
        """Reuse ``reconstruction`` when called on exactly these coefficient tensors."""
        self._cached = (tuple(flat), reconstruction)

    def __call__(self, *args):
        *flat, residual = args
        outputs = self.teacher(self.reconstruct(tuple(flat)) + residual)
        return outputs if self.output_fn is None else self.output_fn(outputs)


@dataclass
class TRIMResult:
    """Coefficients, reconstruction and attributions of one batch.

    Attributes
    ----------
    coefficients : tuple of torch.Tensor
        Flat coefficient tuple (see :func:`flatten_coefficients`).
    reconstruction : torch.Tensor
        Inverse transform of the coefficients, same shape as the input.
    attributions : tuple of torch.Tensor
        One tensor per coefficient tensor.
    """

    coefficients: tuple
    reconstruction: torch.Tensor
    attributions: tuple


def _method(method):
    key = method.lower() if isinstance(method, str) else method
    aliases = {"saliency": "saliency", "inputxgradient": "input_x_gradient"}
    aliases["integratedgradients"] = "integrated_gradients"
    if isinstance(key, str):
        key = aliases.get(key, key)
    if key not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    return key


def trim_attributions(
    teacher,
    x: torch.Tensor,
    h0: torch.Tensor,
    *,
    levels: int,
    mode: str = "zero",
    dim: int = 1,
    method: str = "saliency",
    target=None,
    create_graph: bool = True,
    n_steps: int = 8,
) -> TRIMResult:
    """TRIM attributions of a teacher's output to the wavelet coefficients of ``x``.

    Parameters
    ----------
    teacher : torch.nn.Module or callable
        Maps a batch shaped like ``x`` to outputs of shape (batch, ...).
    x : torch.Tensor, shape (batch, ..., N) or (batch, ..., H, W)
    h0 : torch.Tensor, shape (L,)
        Scaling filter; attributions are differentiable w.r.t. it when ``create_graph``. The
        teacher sees ``reconstruction + (x - reconstruction).detach()``, ``x`` in value, as in
        awave's ``TrimModel``: for a nonlinear teacher their gradient w.r.t. ``h0`` also runs
        through the teacher's input (its second derivatives), so it is not the derivative of
        the attributions' value alone (the two agree for a linear teacher).
    levels : int
    mode : {"zero", "symmetric", "reflect", "periodization"}
    dim : {1, 2}
    method : {"saliency", "input_x_gradient", "integrated_gradients"}
        Captum's ``Saliency`` (signed gradient), ``InputXGradient`` or ``IntegratedGradients``
        (zero baseline, ``n_steps`` Gauss-Legendre steps).
    target : None, int, tuple or callable
        Output index to attribute (Captum's ``target``), or a callable mapping the teacher's
        output to one value per sample.
    create_graph : bool, default=True
        Keep the graph of the gradients so the attributions can be differentiated.
    n_steps : int, default=8
        Steps of integrated gradients.

    Returns
    -------
    TRIMResult

    Examples
    --------
    >>> import pywt
    >>> teacher = torch.nn.Linear(16, 1).double()
    >>> h0 = torch.tensor(pywt.Wavelet("db2").rec_lo, dtype=torch.float64, requires_grad=True)
    >>> result = trim_attributions(teacher, torch.randn(4, 16, dtype=torch.float64), h0,
    ...                            levels=2, target=0)
    >>> [tuple(a.shape) for a in result.attributions]
    [(4, 6), (4, 6), (4, 9)]
    """
    method = _method(method)
    if isinstance(dim, bool):
        raise TypeError(f"dim must be 1 (signals) or 2 (images); got {dim!r}.")
    # any other dim had run the 2D transform (or failed unpacking x's shape)
    check_choice("dim", dim, (1, 2))
    # Captum's own check of n_steps is an AssertionError, or numpy's for a float
    n_steps = check_integer("n_steps", n_steps, minimum=1)
    if dim == 1:
        coefficients = wavedec1d(x, h0, levels, mode)
    else:
        coefficients = wavedec2d(x, h0, levels, mode)
    flat = flatten_coefficients(coefficients, dim)
    if not any(c.requires_grad for c in flat):
        # attributions need a graph from the coefficients to the output
        flat = tuple(c.detach().requires_grad_() for c in flat)
    forward = TRIMForward(
        teacher, h0, mode, dim, x.shape[-dim:], output_fn=target if callable(target) else None
    )
    reconstruction = forward.reconstruct(flat)
    forward.remember(flat, reconstruction)
    residual = (x - reconstruction).detach()
    explainer = METHODS[method](forward)
    explainer.gradient_func = functools.partial(gradients_with_graph, create_graph=create_graph)
    kwargs = {
        "additional_forward_args": (residual,),
        "target": None if callable(target) else target,
    }
    if method == "saliency":
        kwargs["abs"] = False
    elif method == "integrated_gradients":
        kwargs["n_steps"] = n_steps
    attributions = tuple(explainer.attribute(flat, **kwargs))
    if not create_graph:
        # methods that multiply the gradient by the inputs (InputXGradient, integrated
        # gradients) would otherwise keep the coefficients' graph alive
        attributions = tuple(a.detach() for a in attributions)
    return TRIMResult(flat, reconstruction, attributions)
