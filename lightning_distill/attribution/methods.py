"""Attribution maps of a model: loss gradients and any Captum method, under the right modes.

Attributions need gradients even where the caller runs without them (validation, a callback's
``torch.no_grad``, Lightning's inference mode). The functions here switch gradients on for the
input only, put every submodule in eval mode for the attribution and give every mode back, and
never touch the model's ``requires_grad`` flags nor accumulate into its parameters' ``.grad``.
Captum is imported on first use, not when the library is imported.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_distill._modes import evaluation_mode
from lightning_distill._validation import (
    check_choice,
    check_finite,
    fail,
    keeps_its_type,
    rows_without_a_class,
)

__all__ = ["attribute", "check_method", "evaluation_mode", "loss_gradient"]

AttributionMethod = str | type | Callable[[nn.Module, Tensor, Tensor], Tensor]


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@contextlib.contextmanager
def _layers_kept(model: nn.Module) -> Iterator[None]:
    """Every submodule's own attributes and hooks given back after the block.

    Captum's methods attach state to the model's layers and do not always take it off: LRP
    sets ``rule`` and ``activations`` on every layer, leaves ``activations`` (tensors of the
    last batch) behind, deletes ``rule`` attributes the user had set to choose the rules, and
    on a layer it has no rule for stops with the rules it attached still in place. Public
    attributes the block added are removed, those it removed are put back, and hooks it
    registered are taken off; values a layer changed itself (a lazy layer's ``in_features`` set
    on its first call) and torch's own private state (parameters, buffers, submodules) are
    left as the block made them.
    """
    saved = []
    for module in model.modules():
        public = {k: v for k, v in vars(module).items() if not k.startswith("_")}
        hooks = {name: set(getattr(module, name, {})) for name in _HOOK_DICTS}
        saved.append((module, public, hooks))
    try:
        yield
    finally:
        for module, public, hooks in saved:
            attributes = vars(module)
            for key in [k for k in attributes if not k.startswith("_") and k not in public]:
                del attributes[key]
            for key, value in public.items():  # (values a layer changed itself stay)
                if key not in attributes:
                    attributes[key] = value
            for name, kept in hooks.items():
                registered = getattr(module, name, None)
                for key in [k for k in registered or () if k not in kept]:
                    del registered[key]


@contextlib.contextmanager
def _gradients_on() -> Iterator[None]:
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        fail("model", "a torch.nn.Module", type(model).__name__, TypeError)


def _check_inputs(inputs, targets, *, targets_required: bool = False) -> Tensor | None:
    """Check ``inputs`` and return ``targets`` as an ``[N]`` int64 tensor on their device.

    Targets come in the forms Captum takes: an int (the same class for every input), a list or
    tuple of ints, or an integer tensor (``[N]``, or 0-d for every input)."""
    if not isinstance(inputs, Tensor):
        fail("inputs", "a floating-point torch.Tensor", type(inputs).__name__, TypeError)
    if not inputs.is_floating_point():
        fail(
            "inputs",
            "a floating-point torch.Tensor (cast images with .float())",
            inputs.dtype,
            TypeError,
        )
    check_finite("inputs", inputs)
    if targets is None and not targets_required:
        return None
    expected = "class indices: an int, a list of ints or a 1-D integer tensor"
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool | np.bool_):
        targets = torch.full((len(inputs),), int(targets), dtype=torch.long, device=inputs.device)
    elif isinstance(targets, np.ndarray) and targets.dtype.kind in "iu":
        targets = torch.as_tensor(targets, dtype=torch.long, device=inputs.device)
    elif isinstance(targets, list | tuple):
        # numpy integers too (labels read from an array)
        if not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool | np.bool_) for t in targets
        ):
            fail("targets", expected, targets, TypeError)
        targets = torch.tensor([int(t) for t in targets], dtype=torch.long, device=inputs.device)
    if (
        not isinstance(targets, Tensor)
        or targets.is_floating_point()
        or targets.is_complex()
        or targets.dtype == torch.bool
        or targets.ndim > 1
    ):
        fail("targets", expected, targets, TypeError)
    if targets.ndim == 0:
        targets = targets.expand(len(inputs))
    if len(targets) != len(inputs):
        fail("targets", f"one class index per input ({len(inputs)})", tuple(targets.shape))
    # a tensor of targets on another device than the inputs (CPU labels, CUDA images) too
    return targets.to(device=inputs.device, dtype=torch.long)


def _among(kinds: list[str]) -> str:
    return f" (its parameters': {', '.join(kinds)})" if len(kinds) > 1 else ""


def _refuse_mismatch(model: nn.Module, inputs: Tensor, error: RuntimeError) -> None:
    """Where the model failed on inputs of a dtype, or on a device, that none of its floating
    parameters and buffers has, say what to do (torch names only the clash). Checked after the
    failure, not before: a model may cast or move its input itself. Inputs are not cast here:
    the attributions are those of the inputs as given, in their dtype."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    dtypes = sorted({str(t.dtype) for t in tensors})
    devices = sorted({str(t.device) for t in tensors})
    cause = str(error).rstrip(".")
    if tensors and str(inputs.dtype) not in dtypes:
        raise TypeError(
            f"inputs must be in the model's dtype, {tensors[0].dtype}{_among(dtypes)}; got {inputs.dtype} inputs: cast the inputs "
            f"(inputs.to({tensors[0].dtype})) or the model (model.to({inputs.dtype})). ({cause}.)"
        ) from error
    if tensors and str(inputs.device) not in devices:
        raise ValueError(
            f"inputs must be on the model's device, {tensors[0].device}{_among(devices)}; got inputs on {inputs.device}: move the inputs "
            f"(inputs.to('{tensors[0].device}')) or the model. ({cause}.)"
        ) from error


def _check_outputs(outputs, targets: Tensor | None, bounds: tuple[int, int] | None) -> None:
    """Logits ``[N, classes]`` (or one output per input) that ``targets`` index."""
    if not isinstance(outputs, Tensor):
        fail("model", "a module returning a tensor of logits", type(outputs).__name__, TypeError)
    if targets is None:
        if outputs.ndim > 1 and outputs[0].numel() > 1:
            raise ValueError(
                "targets must be class indices for a model with several outputs per input (None "
                f"only for one output per input); got None for outputs of shape "
                f"{tuple(outputs.shape)}."
            )
        return
    if outputs.ndim != 2:
        fail("model", "a module returning logits of shape [N, classes]", tuple(outputs.shape))
    if bounds is not None and (bounds[0] < 0 or bounds[1] >= outputs.shape[1]):
        raise ValueError(
            f"targets must be class indices in [0, {outputs.shape[1] - 1}] (the model has "
            f"{outputs.shape[1]} outputs); got values from {bounds[0]} to {bounds[1]}."
        )


@contextlib.contextmanager
def _outputs_checked(model: nn.Module, targets: Tensor | None) -> Iterator[None]:
    """Check the model's outputs against ``targets`` on every forward run inside (Captum calls
    the model itself), so that a bad pair is refused with the library's message; and, read once
    when the block ends (one device sync), that no output was one that explains nothing: a row
    of logits with a NaN or ``+inf`` (its softmax is NaN) or nothing but ``-inf``, or a single
    output that is not finite. Such a model's input gradients can still be finite (NaN biases or
    batch-norm statistics: a diverged run), and its maps would be scored as any others."""
    bounds = None if targets is None or not len(targets) else _bounds(targets)
    flags: list[Tensor] = []

    def hook(module, args, outputs):
        _check_outputs(outputs, targets, bounds)
        detached = outputs.detach()
        if detached.ndim == 2 and detached.shape[1] > 1:
            flags.append(rows_without_a_class(detached))
        else:
            flags.append(~torch.isfinite(detached.reshape(len(detached), -1)).all(dim=1))

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
    _refuse_undefined_outputs(flags)


def _refuse_undefined_outputs(flags: list[Tensor]) -> None:
    """Raise when a forward of the attribution gave outputs that explain nothing."""
    if not flags:
        return
    counts = torch.stack([flag.sum() for flag in flags]).tolist()  # the one read
    bad = next((k for k, count in enumerate(counts) if count), None)
    if bad is None:
        return
    raise ValueError(
        "model must return finite outputs on the inputs it explains (logits without NaN or "
        "+inf, and not all -inf: the attribution of such an output, or of a class beside it, "
        "is not defined, though its gradients may be finite: a diverged model?); got such "
        f"outputs for {counts[bad]} of {len(flags[bad])} rows of a forward pass."
    )


def _bounds(targets: Tensor) -> tuple[int, int]:
    low, high = torch.stack([targets.min(), targets.max()]).tolist()
    return int(low), int(high)


def _check_kwargs(explainer_class: type, kwargs: dict, argument: str = "kwargs") -> None:
    """Keyword arguments the Captum method's ``attribute`` takes (besides ``target``), and
    those it needs (``Occlusion``'s ``sliding_window_shapes``)."""
    parameters = inspect.signature(explainer_class.attribute).parameters
    named = {
        name: p
        for name, p in parameters.items()
        if name not in ("self", "inputs", "target")
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    if kwargs.get("return_convergence_delta"):
        fail(
            argument,
            "keyword arguments without return_convergence_delta=True (the attributions alone "
            "are returned; call Captum for the delta)",
            "return_convergence_delta=True",
        )
    needed = sorted(name for name, p in named.items() if p.default is inspect.Parameter.empty)
    missing = [name for name in needed if name not in kwargs]
    if missing:
        fail(
            argument,
            f"the arguments {explainer_class.__name__}.attribute needs ({', '.join(needed)})",
            f"none for {', '.join(missing)}",
            TypeError,
        )
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(named))
    if unknown:
        fail(
            argument,
            f"keyword arguments of {explainer_class.__name__}.attribute ({', '.join(named)})",
            unknown,
            TypeError,
        )


# Captum methods whose ``baselines`` is a distribution of reference inputs (any number of
# them, each shaped as one input), not one baseline per input
_BASELINE_DISTRIBUTIONS = ("GradientShap", "DeepLiftShap")
# Captum methods that assert ``baselines`` is shaped as the inputs or as one input, [1, ...]
_BASELINE_PER_INPUT = ("IntegratedGradients", "DeepLift")


# Captum methods that draw random numbers on every call (GradientShap from NumPy's global
# generator): within one call the draws of an input depend on the inputs before it in the batch
_DRAWS_PER_INPUT = ("GradientShap", "KernelShap", "Lime", "ShapleyValueSampling")
# of those, the methods whose draws do not depend on the inputs of a call: ShapleyValueSampling
# draws one set of feature permutations for the whole batch, their length the number of
# features (the same for every batch, unless the feature mask holds one entry per input)
_DRAWS_PER_CALL = ("ShapleyValueSampling",)
# keyword arguments that Captum reads as one entry per input when their first axis is not 1
_PER_INPUT_KWARGS = ("baselines", "feature_mask")


def _single_tensor(value):
    """A tensor, or Captum's one-tuple form of it for a single input tensor; else ``None``."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, Tensor) else None


def per_input_kwargs(method: AttributionMethod, kwargs: dict, inputs_ndim: int) -> list[str]:
    """Names of the keyword arguments of a Captum ``method`` that hold one entry per input: a
    ``baselines`` (not a distribution of references, as GradientShap's) or ``feature_mask``
    tensor of the inputs' rank whose first axis is not 1. Such a tensor is tied to the inputs
    of one call: it cannot be passed alike to every batch of a larger set."""
    if not isinstance(method, str | type) or method == "loss_gradient":
        return []
    name = method if isinstance(method, str) else method.__name__
    keys = []
    for key in _PER_INPUT_KWARGS:
        if key == "baselines" and name in _BASELINE_DISTRIBUTIONS:
            continue
        value = _single_tensor(kwargs.get(key))
        if value is not None and value.ndim == inputs_ndim and value.shape[0] != 1:
            keys.append(key)
    return keys


FORWARD_ARGS = "additional_forward_args"


def forward_arguments(value) -> tuple:
    """Captum's reading of ``additional_forward_args`` (``_format_additional_forward_args``): a
    tuple holds the extra arguments of the forward, any other value is the one extra argument
    (a list included), ``None`` is none."""
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def forward_argument_name(argument: str, kwargs: dict, position: int) -> str:
    """``argument['additional_forward_args']``, with ``[position]`` when it is a tuple."""
    name = f"{argument}[{FORWARD_ARGS!r}]"
    return f"{name}[{position}]" if isinstance(kwargs.get(FORWARD_ARGS), tuple) else name


def entry_count(value) -> int | None:
    """How many entries an extra forward argument would give one per input, as Captum's
    per-example split reads it (``_select_example`` in ``captum.attr._utils.batching``): the
    length of a tensor with a first axis, or of a list; ``None`` for anything else (a number, a
    0-d tensor, a string, a dict), which every input shares."""
    if isinstance(value, Tensor):
        return int(value.shape[0]) if value.ndim else None
    if isinstance(value, list):
        return len(value)
    return None


def per_input_forward_args(kwargs: dict, counts) -> list[tuple[str, int]]:
    """Keys ``("additional_forward_args", position)`` of the extra forward arguments holding
    one entry per input: a tensor or list whose length (see :func:`entry_count`) is one of
    ``counts``, the numbers of inputs they would be given with, other than 1 (a tensor with 1
    on its first axis is one entry for all inputs, broadcast by the model, as a number is).
    Captum's split of a batch into its examples cuts exactly these."""
    counts = {count for count in counts if count != 1}
    return [
        (FORWARD_ARGS, position)
        for position, value in enumerate(forward_arguments(kwargs.get(FORWARD_ARGS)))
        if entry_count(value) in counts
    ]


def slice_per_input(kwargs: dict, keys: list[str | tuple[str, int]], start: int, stop: int) -> dict:
    """``kwargs`` with the per-input entries named by ``keys`` cut to inputs ``start:stop``:
    tensors named by a keyword (Captum's one-tuple form kept), and extra forward arguments
    named by ``("additional_forward_args", position)`` (given back as Captum's tuple form)."""
    sliced = dict(kwargs)
    arguments = None
    for key in keys:
        if isinstance(key, tuple):
            if arguments is None:
                arguments = list(forward_arguments(kwargs.get(FORWARD_ARGS)))
            arguments[key[1]] = arguments[key[1]][start:stop]
            continue
        value = kwargs[key]
        if isinstance(value, list | tuple):
            sliced[key] = type(value)([value[0][start:stop]])
        else:
            sliced[key] = value[start:stop]
    if arguments is not None:
        sliced[FORWARD_ARGS] = tuple(arguments)
    return sliced


def _image_seed(stream: int, index: int) -> int:
    """A 32-bit seed of one input, from its stream (a data set split) and its index there."""
    return int(np.random.SeedSequence([stream, index]).generate_state(1)[0])


def _stream_seed(stream: int) -> int:
    """A 32-bit seed of every call of a stream (a data set split)."""
    return int(np.random.SeedSequence([stream]).generate_state(1)[0])


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's CPU generator (and ``device``'s, on CUDA or MPS) and NumPy's global one
    seeded with ``seed`` inside the block, and given back as they were after it."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    # Captum's GradientShap draws from NumPy's legacy global generator: that one is seeded
    numpy_state = np.random.get_state()  # noqa: NPY002
    # GradientShap's noise is drawn on the inputs' device: MPS's one generator is kept by its
    # own functions (torch.random.fork_rng keeps it only in newer torch, by device_type)
    mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
    try:
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(seed)
            for index in devices:
                torch.cuda.default_generators[index].manual_seed(seed)
            if mps_state is not None:
                torch.mps.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        if mps_state is not None:
            torch.mps.set_rng_state(mps_state)


def attribute_indexed(
    model: nn.Module,
    inputs: Tensor,
    targets,
    method: AttributionMethod,
    indices: range,
    stream: int = 0,
    **kwargs: Any,
) -> Tensor:
    """:func:`attribute` of a batch of a larger set whose inputs sit at ``indices`` there, each
    map the same whatever batch its input comes in.

    A Captum method that draws (GradientShap, KernelShap, Lime) attributes each input alone,
    the random state (torch's and NumPy's) seeded from ``(stream, index)`` and given back
    afterwards: its map is a function of the input and its index, not of the batch size nor of
    the inputs beside it. ShapleyValueSampling draws one set of feature permutations for a
    whole call, whatever its inputs: it attributes the batch at once, the random state seeded
    from ``stream`` alone, so that every batch draws the same permutations and an input's map
    is the same in any batch (with a ``feature_mask`` of one entry per input, which sets the
    number of features of a call, it attributes each input alone as the others do). Other
    methods attribute the batch at once (their maps do not depend on the batch;
    FeaturePermutation's do by definition: it permutes each feature across the batch).
    Per-input tensors in ``kwargs`` (see :func:`per_input_kwargs`) and per-input extra forward
    arguments (see :func:`per_input_forward_args`) are the batch's: each input alone is given
    its own entries.
    """
    if len(indices) != len(inputs):
        raise AssertionError("one index per input")
    name = getattr(method, "__name__", method) if isinstance(method, str | type) else None
    if name not in _DRAWS_PER_INPUT or not isinstance(inputs, Tensor) or len(inputs) == 0:
        return attribute(model, inputs, targets, method, **kwargs)
    targets = _check_inputs(inputs, targets)
    keys = per_input_kwargs(method, kwargs, inputs.ndim)
    keys += per_input_forward_args(kwargs, [len(inputs)])
    if kwargs.get(FORWARD_ARGS) is not None:
        # in Captum's tuple form: with one input, Captum's Lime unpacks a bare tensor as if it
        # were the tuple of the extra arguments (one argument per row)
        kwargs = {**kwargs, FORWARD_ARGS: forward_arguments(kwargs[FORWARD_ARGS])}
    if name in _DRAWS_PER_CALL and "feature_mask" not in keys:
        # the same permutations for every batch of the stream: one call for the batch (a call
        # per input made as many passes of one input each)
        with _seeded(_stream_seed(stream), inputs.device):
            return attribute(model, inputs, targets, method, **kwargs)
    maps = []
    for position, index in enumerate(indices):
        one = slice_per_input(kwargs, keys, position, position + 1)
        target = None if targets is None else targets[position : position + 1]
        with _seeded(_image_seed(stream, index), inputs.device):
            maps.append(attribute(model, inputs[position : position + 1], target, method, **one))
    return torch.cat(maps)


def _check_baselines(explainer_class: type, inputs: Tensor, kwargs: dict) -> None:
    """A tensor of ``baselines`` in the inputs' dtype and on their device, shaped as Captum
    takes it; Captum's own complaint is an ``AssertionError`` printing both tensors in full,
    and a baseline in another dtype failed inside the model, blamed on the inputs."""
    baselines = kwargs.get("baselines")
    if isinstance(baselines, list | tuple) and len(baselines) == 1:
        baselines = baselines[0]  # Captum's form for a single input tensor
    if not isinstance(baselines, Tensor):
        return
    name = explainer_class.__name__
    if not baselines.is_floating_point() or baselines.dtype != inputs.dtype:
        fail(
            "baselines",
            f"a tensor in the inputs' dtype, {inputs.dtype} (or a number)",
            baselines.dtype,
            TypeError,
        )
    if baselines.device != inputs.device:
        fail("baselines", f"a tensor on the inputs' device, {inputs.device}", baselines.device)
    shape, one = tuple(baselines.shape), tuple(inputs.shape[1:])
    if name in _BASELINE_DISTRIBUTIONS:
        if baselines.ndim != inputs.ndim or shape[1:] != one:
            fail(
                "baselines",
                f"a batch of reference inputs for {name}, each shaped as one input: "
                f"[B, {', '.join(map(str, one))}]",
                shape,
            )
    elif name in _BASELINE_PER_INPUT and shape not in (tuple(inputs.shape), (1, *one)):
        fail(
            "baselines",
            f"a number or a tensor shaped as the inputs {tuple(inputs.shape)} or as one input "
            f"{(1, *one)} for {name}",
            shape,
        )
    elif baselines.ndim == inputs.ndim and shape[0] not in (1, len(inputs)):
        # perturbation methods broadcast the baselines against the inputs: a batch of another
        # size failed deep in Captum, or (one input) was broadcast to every baseline
        fail(
            "baselines",
            f"a number or a tensor with one baseline per input ({len(inputs)}) or one for all "
            f"(1) on its first axis for {name}, e.g. {tuple(inputs.shape)} or {(1, *one)}",
            shape,
        )


def loss_gradient(
    model: nn.Module, inputs: Tensor, targets: Tensor, *, reduction: str = "norm"
) -> Tensor:
    """The gradient of the cross-entropy loss with respect to the input, ``∇x CE(f(x), y)``.

    The loss-gradient maps Han et al. (2023) compare between students, after Tsipras et al.
    (ICLR 2019, "Robustness may be at odds with accuracy"), and the attribution Shah et al.
    (2021) evaluate with DiffROAR. The loss is summed over the batch, so each image's gradient is
    that of its own loss whatever the batch size. The model runs in eval mode (every submodule's
    mode is restored afterwards); gradients are taken for the input only.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits ``[N, classes]``.
    inputs : Tensor
        ``[N, C, H, W]`` (or any ``[N, ...]``) inputs.
    targets : Tensor, list of int or int
        ``[N]`` classes ``y`` (an int: the same class for every input).
    reduction : {"norm", "none"}, default="norm"
        ``"norm"``: the per-pixel magnitude, the Euclidean norm over channels, ``[N, H, W]``
        (``|∇x|`` for one channel); for inputs of another rank (``[N, H, W]`` images, ``[N, L]``
        or ``[N, C, L]`` signals) there is no image channel axis to reduce, and it is ``|∇x|``
        shaped as ``inputs``. ``"none"``: the gradient itself, shaped as ``inputs``.

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> loss_gradient(model, torch.rand(5, 3, 4, 4), torch.zeros(5, dtype=torch.long)).shape
    torch.Size([5, 4, 4])
    """
    _check_model(model)
    targets = _check_inputs(inputs, targets, targets_required=True)
    check_choice("reduction", reduction, ("norm", "none"))
    with evaluation_mode(model), _gradients_on():
        x = inputs.detach().clone().requires_grad_(True)
        try:
            outputs = model(x)
        except RuntimeError as error:  # torch's shape or dtype complaint, deep in the model
            if keeps_its_type(error):  # out of memory and the like keep their type
                raise
            _refuse_mismatch(model, inputs, error)
            raise ValueError(
                f"model could not be run on inputs of shape {tuple(inputs.shape)}: {error}"
            ) from error
        if isinstance(outputs, Tensor) and outputs.ndim == 2 and outputs.shape[1] < 2:
            fail(
                "model",
                "logits of at least 2 classes for the loss gradient (the cross-entropy of one "
                "logit is 0 whatever the input: its gradient would be all zeros); use Saliency, "
                "or give the model two logits, e.g. torch.cat([-z, z], 1)",
                tuple(outputs.shape),
            )
        _check_outputs(outputs, targets, _bounds(targets) if len(targets) else None)
        loss = F.cross_entropy(outputs, targets.detach().clone(), reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x)
    check_finite("loss_gradient", gradient, where="(the model's loss or outputs are not finite)")
    if reduction == "none":
        return gradient
    return gradient.norm(dim=1) if gradient.ndim == 4 else gradient.abs()


# Captum classes built from one argument that are not a method on the model: wrappers of
# another attribution method, and language-model attributions
_WRAPPERS = ("NoiseTunnel", "DataLoaderAttribution")
# Captum's base classes, which attribute nothing themselves
_BASES = ("Attribution", "GradientAttribution", "PerturbationAttribution")


def _takes_the_model_alone(explainer_class: type) -> bool:
    """Whether ``explainer_class(model)`` builds the method (no layer, no other method)."""
    if explainer_class.__name__ in _WRAPPERS or "LLM" in explainer_class.__name__:
        return False
    if explainer_class.__name__ in _BASES or inspect.isabstract(explainer_class):
        return False
    try:
        inspect.signature(explainer_class).bind(object())
    except TypeError:  # a layer, a tokenizer, ... is needed too
        return False
    except ValueError:  # no signature to read: let the call say
        return True
    return True


@functools.cache
def _known_methods() -> tuple[str, ...]:
    """Names of the ``captum.attr`` methods built from the model alone (read once: every
    attribution call resolves its method)."""
    import captum.attr

    return tuple(
        sorted(
            name
            for name in captum.attr.__all__
            if isinstance(getattr(captum.attr, name, None), type)
            and issubclass(getattr(captum.attr, name), captum.attr.Attribution)
            and not name.startswith(("Layer", "Neuron", "Internal"))
            and _takes_the_model_alone(getattr(captum.attr, name))
        )
    )


def _captum_class(method: str | type, argument: str = "method") -> type:
    import captum.attr

    known = _known_methods()
    if isinstance(method, type):
        if issubclass(method, captum.attr.Attribution) and _takes_the_model_alone(method):
            return method
    elif isinstance(method, str) and method in known:
        return getattr(captum.attr, method)
    fail(
        argument,
        "'loss_gradient', a callable (model, inputs, targets) -> attributions, or the name of a "
        "captum.attr method built from the model alone (" + ", ".join(known) + ")",
        method,
    )
    raise AssertionError  # unreachable: fail raises


def check_method(
    method: AttributionMethod,
    kwargs: dict,
    argument: str = "method",
    kwargs_argument: str = "kwargs",
) -> type | None:
    """Refuse an attribution method :func:`attribute` cannot run, or keyword arguments it would
    not take, before any work (``argument`` and ``kwargs_argument`` name the caller's
    parameters). Returns the Captum class of a Captum method, else ``None``."""
    if isinstance(method, str) and method == "loss_gradient":
        if kwargs:
            fail(kwargs_argument, f"empty for {argument}='loss_gradient'", sorted(kwargs))
    elif callable(method) and not isinstance(method, type):
        if kwargs:
            fail(
                kwargs_argument,
                f"empty for a callable {argument} (it is called as f(model, inputs, targets))",
                sorted(kwargs),
            )
    else:
        explainer_class = _captum_class(method, argument)
        _check_kwargs(explainer_class, kwargs, kwargs_argument)
        return explainer_class
    return None


def attribute(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor | None,
    method: AttributionMethod = "Saliency",
    **kwargs: Any,
) -> Tensor:
    """Attributions of ``model``'s outputs for ``targets`` on ``inputs``.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits ``[N, classes]``. Runs in eval mode; every submodule's mode is restored.
        Outputs that explain nothing are refused (a ``ValueError``), also when their gradients
        are finite: a row of logits holding a NaN or ``+inf``, or nothing but ``-inf`` (a
        class masked with ``-inf`` is kept), or a single output that is not finite, on any
        forward pass the method makes (read once, after the attribution).
    inputs : Tensor
        ``[N, C, H, W]`` inputs (not modified), in the model's dtype and on its device (they
        are not cast: a mismatch the model cannot read is refused, saying which cast to make).
    targets : Tensor, list of int, int or None
        ``[N]`` classes to explain (the labels, or the model's predictions); an int explains
        the same class for every input, as in Captum. None only for one output per input.
    method : str, Captum class or callable, default="Saliency"
        The name of a ``captum.attr`` method built from the model alone (``"Saliency"``,
        ``"IntegratedGradients"``, ``"InputXGradient"``, ``"GuidedBackprop"``, ...), such a
        class, ``"loss_gradient"`` (:func:`loss_gradient`, per channel), or a callable
        ``method(model, inputs, targets) -> Tensor``.
    **kwargs
        Passed to the Captum method's ``attribute`` (e.g. ``baselines``, ``n_steps``).

    Returns
    -------
    Tensor
        Detached attributions shaped as ``inputs``; a ``ValueError`` if any is NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> x, y = torch.rand(5, 3, 4, 4), torch.zeros(5, dtype=torch.long)
    >>> attribute(model, x, y, "IntegratedGradients", n_steps=8).shape
    torch.Size([5, 3, 4, 4])
    """
    _check_model(model)
    targets = _check_inputs(inputs, targets)
    explainer_class = check_method(method, kwargs)
    if not len(inputs):  # no input, no attribution (Captum fails on an empty batch)
        return torch.zeros_like(inputs)
    if explainer_class is not None and explainer_class.__name__ == "FeaturePermutation":
        if len(inputs) < 2:
            fail(
                "inputs",
                "a batch of at least 2 inputs for FeaturePermutation (it permutes each feature "
                "across the batch: one input gives all-zero attributions)",
                f"{len(inputs)} input",
            )
    if isinstance(method, str) and method == "loss_gradient":
        result = loss_gradient(model, inputs, targets, reduction="none")
    elif callable(method) and not isinstance(method, type):
        with evaluation_mode(model), _gradients_on():
            result = method(model, inputs.detach().clone(), targets)
        if not isinstance(result, Tensor):
            fail("method", "a callable returning a Tensor", type(result).__name__, TypeError)
        if result.shape != inputs.shape:
            fail(
                "method",
                f"a callable returning attributions shaped as inputs, {tuple(inputs.shape)}",
                tuple(result.shape),
            )
    else:
        with (
            _layers_kept(model),
            evaluation_mode(model),
            _gradients_on(),
            _outputs_checked(model, targets),
        ):
            _check_baselines(explainer_class, inputs, kwargs)
            explainer = explainer_class(model)
            copy = inputs.detach().clone().requires_grad_(True)
            try:
                result = explainer.attribute(copy, target=targets, **kwargs)
            except TypeError as error:
                if "has no rule defined" not in str(error):
                    raise
                # Captum's LRP meets a layer it has no rule for (Flatten, a custom module)
                raise ValueError(
                    f"attribution by {explainer_class.__name__} needs a rule for every layer "
                    f"without submodules; {str(error).split(' has no rule')[0]} has none. "
                    "Captum's LRP cannot propagate through reshaping modules (nn.Flatten): "
                    "reshape in the model's forward instead (x.flatten(1)). Other layers take "
                    "a rule as an attribute, as Captum reads them (layer.rule = EpsilonRule(), "
                    "from captum.attr._utils.lrp_rules); rules set so are kept after the call."
                ) from error
            except RuntimeError as error:
                # torch's bare complaint (a shape or dtype the model cannot take), deep inside
                # the model and Captum; its subclasses (out of memory, ...) keep their type
                if keeps_its_type(error):
                    raise
                _refuse_mismatch(model, inputs, error)
                raise ValueError(
                    f"attribution by {explainer_class.__name__} failed on inputs of shape "
                    f"{tuple(inputs.shape)}: {error}"
                ) from error
    result = result.detach()
    check_finite("attributions", result, where=f"(method {method!r})")
    return result
