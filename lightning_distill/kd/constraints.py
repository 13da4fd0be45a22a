r"""Constraints on the student, added to the distillation loss as penalties.

A constraint is an object with a ``name``, a ``weight`` and a method
``penalty(model, inputs) -> Tensor`` giving an unweighted scalar; the training loss gains
``weight * penalty`` and the penalty is logged as ``train/constraint_<name>``.

* :class:`Monotonic`: the output should rise (or fall) with one input feature. The penalty is the
  one of Liu et al. (NeurIPS 2020, "Certified Monotonic Neural Networks"),
  :math:`\mathrm{mean}\big(\mathrm{relu}(b - \delta\,\partial f / \partial x_j)^2\big)` with
  margin :math:`b` and direction :math:`\delta = \pm 1`, over the batch and points drawn
  uniformly in the batch's feature box (their regulariser samples uniform points in the data's
  box; the batch's box keeps this free of a data-set-wide statistic).
* :class:`L1Sparsity`: the sum of absolute weights, which pushes weights towards zero.
* :func:`monotonicity_violations`: a check of the finished model, independent of training.

Nothing here certifies monotonicity: the penalty and the check read the model at sampled
points only (Liu et al. certify their piecewise-linear networks by solving a mixed-integer
linear program, which is not done here), so a penalty or a violation share of zero says
that no violation was found at those points, not that there is none between them.
"""

from __future__ import annotations

import functools
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_distill._batch import mapping_like
from lightning_distill._modes import evaluation_mode as _evaluation_mode
from lightning_distill._precision import autocast_on
from lightning_distill._validation import (
    check_choice,
    check_finite,
    check_integer,
    check_real,
    fail,
    keeps_its_type,
    value_check,
)
from lightning_distill.hooks import resolve_module_names

__all__ = [
    "Constraint",
    "L1Sparsity",
    "Monotonic",
    "monotonic_penalty",
    "monotonicity_violations",
]

Quantity = Literal["logit", "log_probability"]
_QUANTITIES = ("logit", "log_probability")


class Constraint:
    """Base of the penalties :class:`~lightning_distill.DistillationModule` accepts.

    Subclasses set ``name`` and ``weight`` and implement :meth:`penalty`. Its value is checked
    at each training step: anything but a real scalar tensor is refused with a ``TypeError``
    (an integer one is cast to floating point), a NaN or infinite one with a ``ValueError``
    before the optimizer steps on it. ``name`` and ``weight`` are read at each step too (they
    may be changed between fits) and checked there: a name shared with another constraint, or
    a weight that is not a finite number ``>= 0`` (a tensor weight is taken as it is), is
    refused.
    """

    name: str
    weight: float

    def penalty(self, model: nn.Module, inputs: Any) -> Tensor:  # pragma: no cover - abstract
        """The unweighted penalty (a scalar tensor) of ``model`` on a batch of ``inputs``."""
        raise NotImplementedError


def _check_direction(direction) -> int:
    if isinstance(direction, Tensor) and direction.numel() == 1 and not direction.is_complex():
        direction = direction.item()  # a one-element tensor reads as its number
    if isinstance(direction, bool) or not isinstance(direction, numbers.Real):
        fail("direction", "+1 or -1", direction, TypeError)  # True reads as 1: refused
    if direction not in (1, -1):
        fail("direction", "+1 or -1", direction)
    return int(direction)


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        fail("name", "a non-empty str of letters, digits and underscores", name, TypeError)
    return name


# --------------------------------------------------------------------------- inputs
def _feature_tensor(inputs, feature, name: str = "inputs") -> Tensor:
    """The tensor holding ``feature`` (a column of a 2-D tensor, or a key of a dict batch)."""
    if isinstance(inputs, Mapping):
        if not isinstance(feature, str):
            fail("feature", f"a key of the dict {name} " + repr(sorted(map(str, inputs))), feature)
        if feature not in inputs:
            fail("feature", f"a key of the dict {name} " + repr(sorted(map(str, inputs))), feature)
        tensor = inputs[feature]
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"{name}[{feature!r}] must be a torch.Tensor; got {type(tensor).__name__}."
            )
        where = f"{name}[{feature!r}]"
        if tensor.dim() == 2 and tensor.shape[1] == 1:
            tensor = tensor[:, 0]
        if tensor.dim() != 1:
            raise ValueError(
                f"{where} must have shape [batch] or [batch, 1]; got {tuple(tensor.shape)}."
            )
    else:
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor [batch, features] or a dict of tensors; got "
                f"{type(inputs).__name__}."
            )
        if inputs.dim() != 2:
            raise ValueError(
                f"{name} must have shape [batch, features]; got {tuple(inputs.shape)}."
            )
        if isinstance(feature, str):
            fail("feature", "a column index for tensor inputs (names need dict inputs)", feature)
        feature = check_integer("feature", feature, minimum=0, maximum=inputs.shape[1] - 1)
        tensor, where = inputs[:, feature], name
    if not tensor.is_floating_point():
        raise TypeError(
            f"{where} must be a floating-point tensor to differentiate the output with respect "
            f"to feature {feature!r}; got dtype {tensor.dtype}."
        )
    return tensor


def _resolve_feature(model, inputs, feature):
    """``feature`` as ``_feature_tensor`` reads it: a name given for tensor inputs is looked up
    in the model's ``feature_names`` (a :class:`~lightning_distill.SoftDecisionTree`'s, or any
    model's declaring them), else in those of the one kind of submodule that declares them (a
    soft tree behind a scaler, ``nn.Sequential(scaler, tree)``), one name per column; other
    features are returned as given."""
    if isinstance(inputs, Mapping) or not isinstance(feature, str):
        return feature
    names, owner = getattr(model, "feature_names", None), type(model).__name__
    if names is None and isinstance(model, nn.Module):
        # the names a submodule declares, when they are the same wherever declared
        declared = {}
        for path, module in model.named_modules():
            found = getattr(module, "feature_names", None) if path else None
            if found is not None:
                declared.setdefault(_name_list(found, feature, type(module).__name__), path)
        if len(declared) > 1:
            fail(
                "feature",
                "a column index when the model's submodules declare different feature_names "
                f"({', '.join(f'{p}: {list(n)!r}' for n, p in declared.items())}), or a model "
                "that declares its own",
                feature,
            )
        if declared:
            ((found, path),) = declared.items()
            names, owner = list(found), f"{owner}'s submodule {path}"
            columns = inputs.shape[-1] if isinstance(inputs, Tensor) and inputs.dim() else None
            if columns is not None and len(names) != columns:
                fail(
                    "feature",
                    f"a column index: the feature_names of {owner} ({len(names)} names) do not "
                    f"name the model's {columns} input columns",
                    feature,
                )
    names = list(_name_list(names, feature, owner))
    if feature not in names:
        fail("feature", f"one of the model's feature_names {names!r} or a column index", feature)
    if names.count(feature) > 1:
        fail("feature", "a name the model's feature_names hold once (or a column index)", feature)
    return names.index(feature)


def _name_list(names, feature, owner: str) -> tuple[str, ...]:
    """``feature_names`` as a tuple of str, or a ValueError naming ``feature``."""
    # a list, a tuple, an array or an index of names; a set has no column order
    if isinstance(names, str | set | frozenset | Mapping) or not isinstance(names, Iterable):
        fail(
            "feature",
            "a column index for tensor inputs (a name needs dict inputs, or a model with "
            f"feature_names to look it up in; this {owner} has none)",
            feature,
        )
    return tuple(str(name) for name in names)


def _uniform_in_box(tensor: Tensor, n_points: int) -> Tensor:
    low, high = tensor.aminmax(dim=0, keepdim=True)
    shape = (n_points, *tensor.shape[1:])
    # low + u * (high - low), inside [low, high] up to rounding, in one operation
    return torch.lerp(low, high, torch.rand(shape, dtype=tensor.dtype, device=tensor.device))


def box_points(inputs, n_points: int, batch: int | None = None):
    """The batch followed by ``n_points`` points drawn uniformly in its feature box.

    Floating tensors are drawn uniformly between their per-position minimum and maximum over
    the batch; other tensors of a dict batch (integer category codes) take randomly chosen rows
    of the batch. Values of a dict batch that are not per row (not tensors, 0-d tensors, tensors
    of another length than ``batch``: options of the whole batch) are kept as they are.
    ``batch``: the number of rows (by default the length of a dict's first tensor with one
    dimension or more). Uses torch's global random generator.
    """
    if isinstance(inputs, Mapping):
        if batch is None:
            batch = next(
                (v.shape[0] for v in inputs.values() if isinstance(v, Tensor) and v.dim()), 0
            )
        rows = torch.randint(batch, (n_points,)) if batch else None
        points = {}
        for key, value in inputs.items():
            if not isinstance(value, Tensor) or not value.dim() or value.shape[0] != batch:
                points[key] = value  # the same for every row: the points share it
                continue
            value = value.detach()
            extra = (
                _uniform_in_box(value, n_points)
                if value.is_floating_point()
                else value[rows.to(value.device)]
            )
            points[key] = torch.cat([value, extra])
        return mapping_like(inputs, points)
    inputs = inputs.detach()
    return torch.cat([inputs, _uniform_in_box(inputs, n_points)])


def _with_grad(points, feature):
    """A copy of ``points`` whose feature column requires grad, and that column."""
    if isinstance(points, Mapping):
        column = points[feature].detach().clone().requires_grad_(True)
        return mapping_like(points, {**points, feature: column}), column
    points = points.detach().clone().requires_grad_(True)
    return points, points


def _output_of(model: nn.Module, x, output: int, quantity: str, rows: int) -> Tensor:
    """Column ``output`` of ``model(x)`` (its log-softmax for ``"log_probability"``), one value
    per row of ``x`` (``rows`` of them)."""
    try:
        out = model(x)
    except RuntimeError as error:  # torch's shape or dtype complaint, deep in the model
        if keeps_its_type(error):  # out of memory and the like keep their type
            raise
        shape = (
            tuple(x.shape)
            if isinstance(x, Tensor)
            else {k: tuple(getattr(v, "shape", ())) for k, v in x.items()}
        )
        raise ValueError(f"model could not be run on inputs of shape {shape}: {error}") from error
    if not isinstance(out, Tensor) or out.dim() not in (1, 2):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"model must return a [batch] or [batch, outputs] tensor; got {got}.")
    if out.shape[0] != rows:
        # an output pooled over the batch has no derivative or pair per row: the shares (and
        # the penalty) would be of no meaning
        raise ValueError(
            f"model must return one row per input row ({rows}) for a per-row derivative; got "
            f"an output of shape {tuple(out.shape)}."
        )
    if out.dim() == 1:
        if output != 0:
            fail("output", "0 for a model with one output", output)
        if quantity != "logit":
            fail("quantity", "'logit' for a model with one output", quantity)
        return out
    check_integer("output", output, minimum=0, maximum=out.shape[1] - 1)
    _check_quantity_width(quantity, out.shape[1])
    if quantity == "log_probability":
        return F.log_softmax(out, dim=1)[:, output]
    return out[:, output]


def _check_quantity_width(quantity: str, width: int) -> None:
    if quantity == "log_probability" and width < 2:
        fail(
            "quantity",
            "'logit' for a model with one output column (a log-softmax over one column is 0 "
            "whatever the inputs, so every model would look monotone)",
            quantity,
        )


def _derivative(model, points, feature, output, quantity, *, create_graph: bool):
    differentiable, column = _with_grad(points, feature)
    values = _output_of(model, differentiable, output, quantity, column.shape[0])
    grad = None
    if values.requires_grad:
        (grad,) = torch.autograd.grad(
            values.sum(), column, create_graph=create_graph, allow_unused=True
        )
    if grad is None:
        # no autograd path from the inputs to the output (a piecewise-constant model, such as
        # a soft tree read by its most probable leaf): its derivative is zero
        grad = torch.zeros_like(column)
    if isinstance(points, Mapping):
        return grad.reshape(grad.shape[0], -1)[:, 0], values
    return grad[:, feature], values


def monotonic_penalty(
    model: nn.Module,
    points,
    feature: int | str,
    *,
    output: int = 0,
    direction: int = 1,
    margin: float = 0.0,
    quantity: Quantity = "logit",
) -> Tensor:
    r"""Liu et al.'s monotonicity penalty on given points.

    .. math:: \frac{1}{n}\sum_{i=1}^{n} \mathrm{relu}\Big(b - \delta\,
              \frac{\partial f_o(x_i)}{\partial x_{i,j}}\Big)^2

    differentiable in the model's parameters: the mean over the points, as in Liu et al.'s
    training code for MNIST (their COMPAS script takes the largest term instead, which weighs
    the worst point alone). The model is evaluated as it is deployed (and as
    :func:`monotonicity_violations` checks it): in evaluation mode, every submodule's mode
    restored afterwards, so that batch normalisation uses its running statistics (and the
    points do not update them), dropout is off and each row's derivative is its own. A model
    whose rows depend on each other even then (batch normalisation without running
    statistics) is refused. Rows that already meet the margin contribute zero (value and
    gradient), so only the violating rows enter the gradient's computation (below). Returns a
    constant zero when every row meets the margin. Under
    ``torch.no_grad()`` or ``torch.inference_mode()`` the value is computed all the same (with
    autograd inside where the derivative needs it) and returned without a graph.

    How the derivative is taken:

    * A plain chain (an ``nn.Sequential`` of ``Linear``, ``ReLU``, ``LeakyReLU``, ``Tanh``,
      ``Sigmoid``, ``Identity``, ``BatchNorm1d`` and ``Dropout``, starting with a ``Linear``;
      the tabular MLP) whose calls run nothing but its layers carries the derivative forward
      beside its activations, a forward-mode pass written with plain tensor operations:
      one pass over every row without autograd, which keeps what the gradient needs on the
      violating rows, and a hand-written backward through it (first order: its gradient
      cannot be differentiated again, ``create_graph=True`` raises).
    * The same chain with weight pre-hooks (pruning, the classic weight and spectral norms),
      or called under ``torch.autocast`` (mixed precision), carries the derivative with
      autograd operations instead: a first pass without autograd finds the violating rows, a
      second, differentiable one runs on them.
    * Any other model (other forward hooks or pre-hooks, global ones included, or a
      ``forward`` set on an instance, make a chain one): reverse mode, a first-order
      ``torch.autograd.grad`` to find the violating rows, then ``create_graph=True`` on them
      (the loss's backward then runs through the derivative, a second-order pass).

    All give the same value and gradients (tested against a full second-order pass).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``points`` to ``[n]`` or ``[n, outputs]``.
    points : Tensor [n, features] or dict of tensors
    feature : int or str
        Column index for tensor points (or a name of ``model.feature_names``), key for dict
        points.
    output : int, default=0
        The output column :math:`o`.
    direction : {1, -1}, default=1
        ``1``: the output should not fall as the feature rises; ``-1``: not rise.
    margin : float, default=0.0
        :math:`b`; a positive margin asks for a slope of at least ``margin``.
    quantity : {"logit", "log_probability"}, default="logit"
        Constrain the raw output, or its log-softmax (for classifiers, monotone in the class
        probability itself).

    Returns
    -------
    Tensor
        A scalar, in float32 for a float16 or bfloat16 model (summed in float32: a float16 sum
        of squares overflows for moderate violations), else in the model's dtype.
    """
    direction = _check_direction(direction)
    margin = check_real("margin", margin, minimum=0.0)
    check_choice("quantity", quantity, _QUANTITIES)
    feature = _resolve_feature(model, points, feature)
    n_rows = _feature_tensor(points, feature).shape[0]
    return _mean_penalty(model, points, feature, output, direction, margin, quantity, n_rows)


def _mean_penalty(model, points, feature, output, direction, margin, quantity, n_rows) -> Tensor:
    """:func:`monotonic_penalty` once its arguments are checked (``n_rows``: the points')."""
    if not isinstance(model, nn.Module):
        fail("model", "a torch.nn.Module", model, TypeError)
    _check_points(model, points, "inputs", same_dtype=False)
    wanted_graph = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    layers = None if isinstance(points, Mapping) else _chain_layers(model)
    if _fused(layers, points):
        # a chain in its present modes computes as in evaluation mode (its dropout drops
        # nothing, its batch normalisation uses running statistics): no modes to switch; and
        # its forward pass needs no autograd (under no_grad: the value alone)
        return _plain_chain_penalty(
            layers, points, feature, output, direction, margin, quantity, n_rows
        )
    # the student as deployed, and as monotonicity_violations checks it
    with _evaluation_mode(model):
        _check_rows_independent(model)
        # the derivative needs autograd even when the caller turned it off (a validation step)
        with torch.inference_mode(False), torch.enable_grad():
            penalty = _penalty_in_eval_mode(
                model, _outside_inference(points), feature, output, direction, margin, quantity
            )
    return penalty / n_rows if wanted_graph else (penalty / n_rows).detach()


def _fused(layers, points) -> bool:
    """Whether a chain takes :class:`_ChainPenalty`: no weight hooks (their weights are made
    during the call), and no autocast (its backward pass runs outside autocast, where the
    forward pass's lower-precision activations and full-precision weights would meet)."""
    return (
        layers is not None
        and not any(layer._forward_pre_hooks for layer in layers)
        and not autocast_on(points.device.type)
    )


def _plain_chain_penalty(
    layers, points, feature, output, direction, margin, quantity, n_rows: int = 1
) -> Tensor:
    """The sum over rows of ``relu(margin - direction * slope)^2``, divided by ``n_rows``, of a
    chain without weight hooks, by :class:`_ChainPenalty`."""
    plan, params = _chain_plan(layers)
    # the first Linear's weight (a chain starts with one; without weight hooks, the weight
    # attribute is the registered parameter)
    _check_dtype_of_chain(params[plan[0][2][0]].dtype, points)
    _check_chain_width(layers, points)
    spec = (feature, output, quantity, margin, direction, n_rows)
    # points made under inference mode: autograd may not keep them for the backward pass
    points = _outside_inference(points)
    return _ChainPenalty.apply(
        plan, spec, points.detach() if points.requires_grad else points, *params
    )


def _check_chain_dtype(layers, points: Tensor) -> None:
    first = next((layer for layer in layers if isinstance(layer, nn.Linear)), None)
    # the layer's registered parameters, not its ``weight`` attribute: under weight norm or
    # pruning that attribute is made by a pre-hook at each call, so after ``.double()`` it keeps
    # the old dtype until the layer runs again
    dtype = (
        None
        if first is None
        else next((p.dtype for p in first.parameters() if p.is_floating_point()), None)
    )
    if dtype is not None:
        _check_dtype_of_chain(dtype, points)


def _check_chain_width(layers, points: Tensor) -> None:
    """Points as wide as the chain's first ``Linear`` takes, refused as the other models' are
    (the chain's layers run as functions here: torch's own error would be raw)."""
    first = next(layer for layer in layers if type(layer) is nn.Linear)
    if points.shape[1] != first.in_features:
        raise ValueError(
            f"model could not be run on inputs of shape {tuple(points.shape)}: its first Linear "
            f"takes {first.in_features} features."
        )


def _check_dtype_of_chain(dtype: torch.dtype, points: Tensor) -> None:
    if points.dtype != dtype:
        # an nn.Sequential does not cast its input: torch's own error would be raw
        raise TypeError(
            f"inputs must have the model's dtype {dtype}; got {points.dtype} (an "
            "nn.Sequential does not cast its input: cast the points or the model)."
        )


def _penalty_in_eval_mode(model, points, feature, output, direction, margin, quantity) -> Tensor:
    """The sum over rows of ``relu(margin - direction * slope)^2`` (see ``monotonic_penalty``)."""
    layers = None if isinstance(points, Mapping) else _chain_layers(model)
    if _fused(layers, points):
        return _plain_chain_penalty(layers, points, feature, output, direction, margin, quantity)
    if layers is not None:
        _check_chain_dtype(layers, points)
        _check_chain_width(layers, points)
        # A chain with weight hooks (pruning, weight or spectral norm), or under autocast: the
        # derivative is carried forward beside the activations by autograd operations, so the
        # penalty needs a first-order backward only, and the screen no backward at all.
        points = points.detach()  # as the reverse-mode path: no gradient to what made them
        # no_grad, not inference_mode: a weight pre-hook (pruning, weight norm) sets the
        # layer's weight attribute during the call, which must stay usable by autograd
        with torch.no_grad():
            slopes = _chain_slopes(layers, points, feature, output, quantity)
        violating = (margin - direction * slopes) > 0
        if not bool(violating.any()):
            return slopes.new_zeros((), dtype=_summed_dtype(slopes))
        slopes = _chain_slopes(layers, points[violating], feature, output, quantity)
        return _sum_of_squares(F.relu(margin - direction * slopes))
    # Rows that meet the margin add exactly zero, with zero gradient: find them with a cheap
    # first-order pass, and differentiate twice (create_graph) through the others only.
    grad, _ = _derivative(model, points, feature, output, quantity, create_graph=False)
    violating = (margin - direction * grad) > 0
    if not bool(violating.any()):
        return grad.new_zeros((), dtype=_summed_dtype(grad))
    grad, _ = _derivative(
        model, _rows(points, violating), feature, output, quantity, create_graph=True
    )
    return _sum_of_squares(F.relu(margin - direction * grad))


def _summed_dtype(terms: Tensor) -> torch.dtype:
    """The dtype the penalty is summed and returned in: float32 at least (a float16 sum of
    squares overflows, to an infinite loss, from a mean square of about 32 over 2,000 rows)."""
    return torch.promote_types(terms.dtype, torch.float32)


def _sum_of_squares(terms: Tensor) -> Tensor:
    """``terms.square().sum()`` in :func:`_summed_dtype`."""
    terms = terms.to(_summed_dtype(terms))
    return terms.dot(terms) if terms.dim() == 1 else terms.square().sum()


def _chain_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of ``model`` when it is a plain chain whose derivative in one input column
    can be carried forward beside its activations, else ``None``.

    A chain is an ``nn.Sequential`` (nested ones flattened) of exactly ``Linear``, ``ReLU``,
    ``LeakyReLU`` with a slope >= 0, ``Tanh``, ``Sigmoid``, ``Identity``, ``BatchNorm1d`` in
    evaluation mode with running statistics and ``Dropout`` that drops nothing (evaluation mode
    or ``p=0``), starting with a ``Linear``, whose calls run
    nothing else (:func:`_calls_are_plain`); subclasses are not chains (their ``forward`` may
    differ), nor is anything else: those take the generic autograd path.
    """
    walked: list[nn.Module] = []
    layers = _flat_chain(model, walked)
    if layers is None or not _calls_are_plain(walked):
        return None
    # the tangent starts at the first Linear's column: an activation before it would act on
    # the input column itself
    first = next((layer for layer in layers or () if type(layer) is not nn.Identity), None)
    return layers if type(first) is nn.Linear else None


@functools.cache
def _weight_pre_hooks() -> tuple[type, ...]:
    """Forward pre-hooks that only recompute a layer's ``weight`` before its call (pruning, the
    classic weight and spectral norms); the tangent reads the weight after the call."""
    from torch.nn.utils import prune

    kinds = [prune.BasePruningMethod]
    try:
        from torch.nn.utils.spectral_norm import SpectralNorm
        from torch.nn.utils.weight_norm import WeightNorm

        kinds += [SpectralNorm, WeightNorm]
    except ImportError:  # pragma: no cover - older or newer torch without them
        pass
    return tuple(kinds)


def _calls_are_plain(modules: list[nn.Module]) -> bool:
    """Whether calling a model runs its layers' ``forward`` and nothing that could change a
    value on the way: no forward hooks or pre-hooks on any of its ``modules`` (except
    :func:`_weight_pre_hooks`), no global module hooks, no ``forward`` set on an instance.

    torch offers no public way to list hooks, so this reads its registries
    (``Module._forward_hooks`` and the like); when one is not where it is expected, the answer
    is ``False`` and the exact reverse-mode path is taken: a change in torch can only cost speed.
    """
    from torch.nn.modules import module as torch_module

    harmless = _weight_pre_hooks()
    missing = object()
    for name in ("_global_forward_hooks", "_global_forward_pre_hooks"):
        registry = getattr(torch_module, name, missing)
        if registry is missing or registry:
            return False
    for module in modules:
        hooks = getattr(module, "_forward_hooks", missing)
        pre_hooks = getattr(module, "_forward_pre_hooks", missing)
        if hooks is missing or pre_hooks is missing or hooks or "forward" in vars(module):
            return False
        if not all(isinstance(hook, harmless) for hook in pre_hooks.values()):
            return False
    return True


def _flat_chain(model: nn.Module, walked: list[nn.Module]) -> list[nn.Module] | None:
    """The chain's layers (``Dropout`` left out), nested ``nn.Sequential`` flattened; every
    module met (containers and dropouts too: all of ``model.modules()`` for a chain) is
    appended to ``walked``."""
    if type(model) is not nn.Sequential:
        return None
    walked.append(model)
    layers = []
    for layer in model:
        kind = type(layer)
        if kind is nn.Sequential:
            inner = _flat_chain(layer, walked)
            if inner is None:
                return None
            layers.extend(inner)
            continue
        walked.append(layer)
        if kind in (nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity) or (
            kind is nn.LeakyReLU and layer.negative_slope >= 0
        ):
            layers.append(layer)
        elif kind is nn.BatchNorm1d and not layer.training and layer.running_var is not None:
            layers.append(layer)  # running statistics: a fixed affine map per unit
        elif kind is not nn.Dropout or (layer.training and layer.p > 0):
            return None
    return layers


def _chain_slopes(
    layers, points: Tensor, feature: int, output: int, quantity: str, record: list | None = None
) -> Tensor:
    """``d f_output / d points[:, feature]`` of a chain (see :func:`_chain_layers`), carried
    forward as a tangent beside the activations: one pass, differentiable in the parameters
    by a first-order backward.

    A layer with a weight pre-hook (pruning, weight or spectral norm) runs through its own
    ``__call__``, which sets its weight, and the tangent reads the weight after that call; the
    others run as their functions (a module call costs more than the operation on these small
    matrices). An activation's derivative is read from its output before the next layer runs.
    A ``ReLU`` or ``LeakyReLU`` works in place on the output of the ``Linear`` or
    ``BatchNorm1d`` before it, and multiplies that layer's new derivative in place (nothing
    else reads either); a narrow layer on many rows takes :func:`_linear`'s transposed product.

    ``record``: a list, for :class:`_ChainPenalty`'s forward pass (no weight hooks, no
    autograd). What its backward pass reads is appended: an entry per layer (``Identity``
    left out; a ``ReLU``'s or ``LeakyReLU``'s is its output, the same tensor as the next
    layer's input, from which the backward pass reads its slope), then the head's.
    """
    feature = check_integer("feature", feature, minimum=0, maximum=points.shape[1] - 1)
    h, tangent = points, None
    fresh = False  # whether h is a Linear's or BatchNorm1d's output, which nothing else reads
    for layer in layers:
        kind = type(layer)
        if kind is nn.Identity:
            continue
        if layer._forward_pre_hooks:
            out = layer(h)
        elif kind is nn.Linear:
            out = _linear(h, layer.weight, layer.bias)
        elif kind is nn.BatchNorm1d:  # evaluation mode with running statistics (a chain's)
            out = F.batch_norm(
                h, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0,
                layer.eps,
            )  # fmt: skip
        elif kind is nn.ReLU:
            # in place on a layer's own output (its backward does not read it): one array
            # less to write, on a pass whose arrays are a thousand rows long
            out = h.relu_() if fresh else torch.relu(h)
        elif kind is nn.LeakyReLU:
            out = F.leaky_relu(h, layer.negative_slope, inplace=fresh)
        elif kind is nn.Tanh:
            out = torch.tanh(h)
        else:  # Sigmoid
            out = torch.sigmoid(h)
        fresh = kind is nn.Linear or kind is nn.BatchNorm1d
        if kind is nn.Linear:
            if record is not None:
                record.append((h, tangent))
            weight = layer.weight
            # the first Linear's column made contiguous: a strided column broadcast over the
            # rows costs several times a contiguous one
            tangent = (
                weight[:, feature].contiguous() if tangent is None else _linear(tangent, weight)
            )
        elif kind is nn.BatchNorm1d:
            scale = torch.rsqrt(layer.running_var + layer.eps)
            if record is not None:
                # the statistics as they are now (a forward pass in training mode before the
                # backward would move the buffers)
                record.append((h, tangent, layer.running_mean.clone(), scale))
            tangent = (scale if layer.weight is None else layer.weight * scale) * tangent
        elif kind is nn.ReLU or kind is nn.LeakyReLU:
            # the backward pass takes the slope from the output (the next layer's input) and
            # the negative slope as it is now (set again before the backward pass, the
            # gradient would otherwise be of another function)
            slope = layer.negative_slope if kind is nn.LeakyReLU else 0.0
            if record is not None:
                record.append((out, tangent.dim() == 1, slope))
            factor = _relu_slope(out.detach() if out.requires_grad else out, slope)
            if factor.dtype != tangent.dtype:  # under autocast: as torch promotes
                tangent = factor * tangent
            elif tangent.dim() == 1:  # the first Linear's column, one for every row
                tangent = factor.mul_(tangent)
            else:  # a layer's new derivative, which nothing else reads: in place
                tangent = tangent.mul_(factor)
        else:  # Tanh, Sigmoid: the derivative from the output
            if record is not None:
                record.append((out, tangent))
            slope = 1 - out.square() if kind is nn.Tanh else out * (1 - out)
            tangent = slope * tangent
        h = out
    check_integer("output", output, minimum=0, maximum=h.shape[1] - 1)
    _check_quantity_width(quantity, h.shape[1])
    rows_tangent = tangent.expand_as(h) if tangent.dim() == 1 else tangent
    slopes = rows_tangent[:, output]
    if quantity == "log_probability":
        # softmax over the rows of the transposed view: the same values, several times faster
        # than over a short last dimension (two classes: 7 against 62 us on 1,152 rows)
        # (and the mean over the classes likewise, along the rows of the transposed views)
        probabilities = F.softmax(h.T, dim=0)
        mean = (probabilities * rows_tangent.T).sum(dim=0)
        slopes = slopes - mean
        if record is not None:
            record.append((probabilities.T, rows_tangent, mean[:, None]))
    elif record is not None:
        record.append((tangent,))
    return slopes


def _linear(h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(h, weight, bias)``; a narrow layer (2 to 10 outputs: a classifier's head) on
    many rows on the CPU as the transpose of ``weight @ h.T``, the same values 2-4 times faster
    there (one thread, 64 inputs, 1,152 rows: 8 against 24 us for two outputs, 20 against 25
    for ten; one output or 32 are faster as they are)."""
    if h.dim() == 2 and 2 <= weight.shape[0] <= 10 and h.shape[0] >= 512 and h.is_cpu:
        if bias is None:
            return torch.mm(weight, h.T).T
        return torch.addmm(bias[:, None], weight, h.T).T
    return F.linear(h, weight, bias)


def _relu_slope(out: Tensor, negative_slope: float) -> Tensor:
    """A ``ReLU``'s (``negative_slope`` 0) or ``LeakyReLU``'s derivative, read from its output
    (a new tensor)."""
    if negative_slope == 0:
        return out.sign()  # the output is >= 0: its sign is the derivative
    return torch.ones_like(out).masked_fill_(out <= 0, negative_slope)


def _chain_plan(layers) -> tuple[list, list[Tensor]]:
    """The chain as ``(kind, layer, parameter positions)`` steps (``Identity`` left out) and
    the parameters they read, in order: the inputs of :class:`_ChainPenalty`."""
    kinds = {
        nn.Linear: "linear",
        nn.BatchNorm1d: "batchnorm",
        nn.ReLU: "relu",
        nn.LeakyReLU: "leaky",
        nn.Tanh: "tanh",
        nn.Sigmoid: "sigmoid",
    }
    plan, params = [], []

    def position(tensor):
        if tensor is None:
            return None
        params.append(tensor)
        return len(params) - 1

    for layer in layers:
        kind = kinds.get(type(layer))
        if kind is None:  # Identity
            continue
        where = ()
        if kind in ("linear", "batchnorm"):
            where = (position(layer.weight), position(layer.bias))
        plan.append((kind, layer, where))
    return plan, params


class _At(int):
    """A position in the list of tensors :func:`_pack` makes: its own type, so that it is not
    taken for another int or bool an entry holds (a ReLU entry's vector-derivative flag)."""


def _pack(entries) -> tuple[list[Tensor], list[tuple]]:
    """The tensors of ``entries`` (tuples of tensors and other values) in one list, and the
    entries with each tensor replaced by its position in it (:func:`_unpack` reverses)."""
    tensors, layout = [], []
    for entry in entries:
        items = []
        for item in entry:
            if isinstance(item, Tensor):
                items.append(_At(len(tensors)))
                tensors.append(item)
            else:
                items.append(item)
        layout.append(tuple(items))
    return tensors, layout


def _unpack(layout, tensors) -> list[tuple]:
    return [
        tuple(tensors[item] if isinstance(item, _At) else item for item in entry)
        for entry in layout
    ]


def _as_tangent(grad: Tensor, tangent: Tensor) -> Tensor:
    """``grad`` summed over rows where the tangent it belongs to is one vector for every row
    (the first ``Linear``'s column, before an activation makes it row-wise)."""
    return grad.sum(dim=0) if tangent.dim() == 1 and grad.dim() == 2 else grad


class _ChainPenalty(torch.autograd.Function):
    r"""``sum(relu(margin - direction * slope)^2) / n_rows`` over the rows of a plain chain
    without weight hooks (see :func:`_chain_layers`), with the derivative carried forward beside the
    activations and a hand-written backward: one autograd node instead of a graph of some forty
    small operations, and no second pass over the violating rows.

    The forward pass runs once over every row, without autograd, and keeps the activations
    and derivatives of the violating rows only (the others add exactly zero, value and
    gradient); a tensor two entries hold is kept once. The backward pass reverses that two-stream pass (activations
    :math:`h`, derivatives :math:`t = \partial h / \partial x_j`). A ``Linear`` with
    :math:`z = hW^\top + b`, :math:`u = tW^\top` and output gradients :math:`g_z, g_u` gives
    :math:`\nabla W = g_z^\top h + g_u^\top t`, :math:`\nabla b = \sum_i g_z` and sends
    :math:`g_z W`, :math:`g_u W` to its inputs (the first ``Linear``'s derivative is its
    column :math:`W_{:,j}`, one vector for every row, whose gradient is summed over the rows).
    An activation :math:`h' = \sigma(z)`, :math:`t' = \sigma'(z)\,t` sends
    :math:`g_{t'}\,\sigma'` to :math:`t` and :math:`g_{h'}\,\sigma' + g_{t'}\,t\,\sigma''` to
    :math:`z`, with :math:`\sigma'' = 0` for ReLU and LeakyReLU, :math:`-2h'\sigma'` for Tanh
    and :math:`(1 - 2h')\,\sigma'` for Sigmoid. Batch normalisation with running statistics is
    a fixed affine map per unit, :math:`k = \gamma / \sqrt{v + \epsilon}`. Tested against
    autograd's second-order pass. Inputs: ``plan`` and ``params`` from :func:`_chain_plan`,
    ``spec = (feature, output, quantity, margin, direction, n_rows)`` (the feature checked; the
    sum is divided by ``n_rows``), detached
    ``points``.
    """

    @staticmethod
    def forward(ctx, plan, spec, points, *params):
        feature, output, quantity, margin, direction, n_rows = spec
        # the parameters are the layers' own (params only link them to autograd)
        saved: list = []
        slopes = _chain_slopes(
            [layer for _, layer, _ in plan], points, feature, output, quantity, saved
        )
        *saved, head = saved
        # margin - direction * slopes, in one operation
        excess = torch.rsub(slopes, margin) if direction == 1 else slopes + margin
        rows = (excess > 0).nonzero().squeeze(1)
        # what the backward pass reads (the margin is in the excess)
        width = head[0].shape[-1]  # the outputs'
        ctx.settings = (feature, output, quantity, direction, n_rows)
        ctx.plan, ctx.width, ctx.violating = plan, width, False
        if rows.numel() == 0:  # a constant zero, as on the other paths
            zero = excess.new_zeros((), dtype=_summed_dtype(excess))
            ctx.mark_non_differentiable(zero)
            return zero
        if rows.numel() < excess.shape[0]:  # keep the violating rows only
            kept: dict[int, Tensor] = {}

            def keep(item):
                # a tensor two entries hold (a ReLU's output, the next Linear's input) once
                if isinstance(item, Tensor) and item.dim() == 2:
                    if id(item) not in kept:
                        kept[id(item)] = item.index_select(0, rows)
                    return kept[id(item)]
                return item

            saved = [tuple(map(keep, entry)) for entry in saved]
            head, excess = tuple(map(keep, head)), excess.index_select(0, rows)
        # through save_for_backward, so that autograd frees them after the backward pass
        tensors, ctx.layout = _pack([*saved, head, (excess,)])
        ctx.save_for_backward(*params, *tensors)
        ctx.n_params, ctx.violating = len(params), True
        return _sum_of_squares(excess).div_(n_rows)

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():  # create_graph=True: its operations would miss terms
            raise RuntimeError(
                "monotonic_penalty's gradient on a plain nn.Sequential chain is computed by a "
                "first-order backward; a second derivative through it (create_graph=True) is "
                "not supported. Wrap the student in a module of your own (not an "
                "nn.Sequential) to take the reverse-mode path, which supports it."
            )
        if not ctx.violating:
            return (None,) * len(ctx.needs_input_grad)
        feature, output, quantity, direction, n_rows = ctx.settings
        params, tensors = ctx.saved_tensors[: ctx.n_params], ctx.saved_tensors[ctx.n_params :]
        *saved, head, (excess,) = _unpack(ctx.layout, tensors)
        needs = ctx.needs_input_grad[3:]
        grads: list[Tensor | None] = [None] * len(params)

        def add(position, value):
            if position is not None and needs[position] and value is not None:
                grads[position] = value if grads[position] is None else grads[position] + value

        # minus d (excess^2 / n) / d slope
        # in the rows' dtype (the penalty's is wider when theirs is float16 or bfloat16)
        minus = (excess.to(grad.dtype) * (grad * (2.0 * direction / n_rows))).to(excess.dtype)
        if quantity == "log_probability":
            probabilities, tangent, mean = head
            g_t = probabilities * minus[:, None]
            g_h = (tangent - mean) * g_t
            g_t.select(1, output).sub_(minus)  # a view written in place: no copy back
        else:
            (tangent,) = head
            g_t = minus.new_zeros((minus.shape[0], ctx.width))
            g_t[:, output] = minus.neg_()
            g_h = None
        g_t = _as_tangent(g_t, tangent)
        for (kind, _, where), entry in zip(reversed(ctx.plan), reversed(saved)):
            if kind == "linear":
                h_in, t_in = entry
                weight = params[where[0]]
                if needs[where[0]]:
                    if t_in is None:
                        column = g_t.sum(dim=0) if g_t.dim() == 2 else g_t  # one for all rows
                        if g_h is None:
                            g_weight = torch.zeros_like(weight)
                            g_weight[:, feature] = column
                        else:
                            g_weight = g_h.T @ h_in
                            g_weight.select(1, feature).add_(column)
                    elif t_in.dim() == 1:
                        g_weight = torch.outer(_as_tangent(g_t, t_in), t_in)
                        g_weight = g_weight if g_h is None else g_weight.addmm_(g_h.T, h_in)
                    else:
                        g_weight = g_t.T @ t_in
                        g_weight = g_weight if g_h is None else g_weight.addmm_(g_h.T, h_in)
                    add(where[0], g_weight)
                add(where[1], None if g_h is None else g_h.sum(dim=0))
                if t_in is None:
                    break  # the inputs need no gradient
                g_h = None if g_h is None else g_h @ weight
                g_t = g_t @ weight
            elif kind == "batchnorm":
                h_in, t_in, running_mean, scale = entry
                gamma = None if where[0] is None else params[where[0]]
                if gamma is not None and needs[where[0]]:
                    g_gamma = _as_tangent(g_t * t_in, scale) * scale
                    if g_h is not None:
                        g_gamma = g_gamma + (g_h * (h_in - running_mean)).sum(0) * scale
                    add(where[0], g_gamma)
                add(where[1], None if g_h is None else g_h.sum(dim=0))
                factor = scale if gamma is None else gamma * scale
                g_h = None if g_h is None else g_h * factor
                g_t = g_t * factor
            elif kind in ("relu", "leaky"):
                out, vector_tangent, slope = entry
                factor = _relu_slope(out, slope)
                g_h = None if g_h is None else g_h * factor
                g_t = g_t * factor
                if vector_tangent:
                    g_t = g_t.sum(dim=0)
            else:  # tanh, sigmoid
                out, t_in = entry
                if kind == "tanh":
                    slope, curvature = 1 - out.square(), -2 * out
                else:
                    slope, curvature = out * (1 - out), 1 - 2 * out
                g_z = g_t * t_in * curvature
                g_h = (g_z if g_h is None else g_h + g_z) * slope
                g_t = _as_tangent(g_t * slope, t_in)
        return (None, None, None, *grads)


def _check_rows_independent(model: nn.Module) -> None:
    """Refuse a model (in evaluation mode) whose rows depend on each other: batch normalisation
    without running statistics normalises by the batch's even then, so a row's derivative in
    its own feature is not defined apart from the other rows."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    for name, module in model.named_modules():
        if isinstance(module, norms) and (
            module.running_mean is None or module.running_var is None
        ):
            raise ValueError(
                "model must treat its rows independently in evaluation mode for a per-row "
                f"derivative; got batch normalisation without running statistics at "
                f"{name or 'the model'!r} (track_running_stats=False). Keep running statistics, "
                "or normalise per row (LayerNorm, GroupNorm)."
            )


def _rows(points, mask: Tensor):
    if isinstance(points, Mapping):
        size = mask.shape[0]
        return mapping_like(
            points,
            {
                key: value[mask.to(value.device)]
                if isinstance(value, Tensor) and value.dim() and value.shape[0] == size
                else value
                for key, value in points.items()
            },
        )
    return points[mask]


def _default_name(feature) -> str:
    """``Monotonic``'s name by default: ``"monotonic_<feature>"`` (characters of a key other
    than letters, digits and underscores as underscores)."""
    return "monotonic_" + re.sub(r"\W", "_", str(feature))


class Monotonic(Constraint):
    """Penalise a student whose output is not monotone in one feature.

    Parameters
    ----------
    feature : int or str
        The feature: a column of ``[batch, features]`` inputs, or a key of dict inputs whose value
        is ``[batch]`` or ``[batch, 1]``. Must be a floating-point input. A name given for
        tensor inputs is looked up in the student's ``feature_names`` (a
        :class:`~lightning_distill.SoftDecisionTree` built with them, or any student that
        declares one name per column; else those of the one kind its submodules declare, a
        soft tree behind a scaler), at each step; a student without them refuses it.
    direction : {1, -1}, default=1
        ``1``: increasing; ``-1``: decreasing.
    output : int, default=0
        The output (logit) column constrained.
    margin : float, default=0.0
        Required slope; Liu et al. use a small positive margin so that the trained model is
        monotone with some room.
    weight : float, default=1.0
        Multiplies the penalty in the loss.
    n_points : int, default=1024
        Points drawn uniformly in the batch's feature box besides the batch's own rows.
    quantity : {"logit", "log_probability"}, default="logit"
        See :func:`monotonic_penalty`.
    name : str, optional
        Logged as ``train/constraint_<name>``; ``"monotonic_<feature>"`` by default (characters
        of a feature key other than letters, digits and underscores become underscores).

    Notes
    -----
    The student runs once more per step on ``batch + n_points`` rows: a plain
    ``nn.Sequential`` MLP once, without autograd, with a hand-written backward through the
    rows that violate the margin (outside autocast and without weight hooks); other models
    with a first-order backward, then again, with gradients, on the violating rows; see
    :func:`monotonic_penalty`. The runs are in
    evaluation mode (the student as deployed; its modes are restored): batch normalisation
    uses its running statistics and the uniform points do not update them, dropout is off.

    Examples
    --------
    >>> model = torch.nn.Linear(3, 2)
    >>> constraint = Monotonic(feature=0, direction=1, output=1, weight=10.0)
    >>> constraint.name
    'monotonic_0'
    >>> float(constraint.penalty(model, torch.randn(8, 3)).detach()) >= 0
    True
    """

    def __init__(
        self,
        feature: int | str,
        direction: int = 1,
        *,
        output: int = 0,
        margin: float = 0.0,
        weight: float = 1.0,
        n_points: int = 1024,
        quantity: Quantity = "logit",
        name: str | None = None,
    ) -> None:
        if isinstance(feature, bool) or not isinstance(feature, numbers.Integral | str):
            fail("feature", "a column index (int) or a feature name (str)", feature, TypeError)
        if not isinstance(feature, str):
            feature = int(feature)  # a numpy integer (a column found by np.argmax) as an int
            if feature < 0:
                fail("feature", "a column index >= 0", feature)
        self.feature = feature
        self.direction = _check_direction(direction)
        self.output = check_integer("output", output, minimum=0)
        self.margin = check_real("margin", margin, minimum=0.0)
        self.weight = check_real("weight", weight, minimum=0.0)
        self.n_points = check_integer("n_points", n_points, minimum=0)
        self.quantity = check_choice("quantity", quantity, _QUANTITIES)
        # a dict key such as "late-payments" names its default with underscores only
        default = _default_name(feature)
        self.name = _check_name(default if name is None else name)

    def penalty(self, model: nn.Module, inputs) -> Tensor:
        """The penalty on the batch ``inputs`` and ``n_points`` uniform points in its box."""
        # the settings as they are now (attributes set after construction are checked too)
        direction = _check_direction(self.direction)
        margin = check_real("margin", self.margin, minimum=0.0)
        quantity = check_choice("quantity", self.quantity, _QUANTITIES)
        n_points = check_integer("n_points", self.n_points, minimum=0)
        feature = _resolve_feature(model, inputs, self.feature)
        n_rows = _feature_tensor(inputs, feature).shape[0]
        if n_rows == 0:
            fail(
                "inputs",
                "a batch of at least one row (the uniform points are drawn in the box its rows "
                "span)",
                "an empty batch",
            )
        points = box_points(inputs, n_points, n_rows)  # the feature's tensor checked above
        return _mean_penalty(
            model, points, feature, self.output, direction, margin, quantity, n_rows + n_points
        )

    def __repr__(self) -> str:
        # every setting that shapes a run (checkpoints compare this text on resuming); the
        # three read last are written where they differ from their defaults, so that a
        # constraint with the defaults reads as it did in older checkpoints
        text = (
            f"Monotonic(feature={self.feature!r}, direction={self.direction}, "
            f"output={self.output}, margin={self.margin}, weight={self.weight}"
        )
        if self.n_points != 1024:
            text += f", n_points={self.n_points!r}"
        if self.quantity != "logit":
            text += f", quantity={self.quantity!r}"
        if self.name != _default_name(self.feature):
            text += f", name={self.name!r}"
        return text + ")"


def _check_modules(modules) -> list[str | nn.Module] | None:
    """L1Sparsity's ``modules``: None, or module names and modules (one alone as a list)."""
    if modules is None:
        return None
    if isinstance(modules, str | nn.Module):
        modules = [modules]
    if not isinstance(modules, Iterable):  # list() would raise "not iterable"
        fail(
            "modules",
            "a list of module names (str) or torch.nn.Module objects",
            modules,
            TypeError,
        )
    modules = list(modules)
    for item in modules:
        if not isinstance(item, str | nn.Module):
            fail("modules", "module names (str) or torch.nn.Module objects", item, TypeError)
    return modules


class L1Sparsity(Constraint):
    """Penalise the sum of absolute weights (L1), which pushes weights towards zero.

    Added to the loss and minimised by the optimizer's (sub)gradient steps, the penalty makes
    weights hover around zero rather than land on it (SGD and Adam alike): to prune, set the
    weights below a threshold to zero after training (``torch.nn.utils.prune``).

    Parameters
    ----------
    weight : float, default=1e-4
        Multiplies the penalty in the loss.
    modules : list of str or torch.nn.Module, optional
        Submodules of the student (names as in ``named_modules()``, or the modules themselves)
        whose weight matrices and kernels (parameters with two or more dimensions) are penalised;
        every such parameter of the student by default. Biases are left alone. A module named
        that holds no such parameter (an activation, a normalisation layer) is refused with a
        ``ValueError``. A :class:`~lightning_distill.kd.soft_tree.SoftDecisionTree`'s weights
        are its split filters alone (``tree.inner.weight``, the tree's
        :attr:`~lightning_distill.kd.soft_tree.SoftDecisionTree.split_weights`): its leaves'
        class logits, a matrix too, are never penalised (pulled to zero they would make every
        leaf's class distribution uniform, which reads no better), by default or when the tree
        (or a module holding it) is named.
    name : str, default="l1"
        Logged as ``train/constraint_<name>``.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.fill_(-0.5)
    >>> float(L1Sparsity(weight=1.0, modules=["0"]).penalty(model, None).detach())
    3.0
    """

    def __init__(
        self,
        weight: float = 1e-4,
        modules: Sequence[str | nn.Module] | None = None,
        *,
        name: str = "l1",
    ) -> None:
        self.weight = check_real("weight", weight, minimum=0.0)
        self.modules = modules  # checked in __setattr__
        self.name = _check_name(name)

    def __setattr__(self, name: str, value) -> None:
        # modules set after construction are checked (and listed) as the constructor does:
        # an int failed at the step with "'int' object is not iterable", a str was read letter
        # by letter
        if name == "modules":
            value = _check_modules(value)
        super().__setattr__(name, value)

    def parameters_of(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters penalised on ``model``."""
        chosen = self._modules_of(model)
        # one walk of each module's parameters (a lazy one anywhere is refused before the rest)
        params = [list(module.parameters()) for module in chosen]
        for module, own in zip(chosen, params):
            if any(nn.parameter.is_lazy(param) for param in own):
                # an uninitialised parameter has no shape yet: torch's own error would be raw
                raise ValueError(
                    "model must have its parameters initialised for L1Sparsity's penalty; got "
                    f"uninitialised parameters in {type(module).__name__} (a lazy module, such "
                    "as nn.LazyLinear, has them until its first forward pass: run the model "
                    "once on a batch first)."
                )
        # a soft tree's leaf logits are class scores, not weights: sparse splits are asked for
        leaves = {id(tree.leaf_logits) for tree in _soft_trees(model)}
        seen: dict[int, nn.Parameter] = {}
        for module, own in zip(chosen, params):
            weights = [param for param in own if param.dim() >= 2 and id(param) not in leaves]
            if not weights and self.modules is not None:
                # a named activation or normalisation layer penalises nothing: dropped
                # silently, the user would believe it penalised
                name = next(
                    n for n, m in model.named_modules(remove_duplicate=False) if m is module
                )
                fail(
                    "modules",
                    "modules with weight matrices or kernels (parameters of two or more "
                    f"dimensions); {name or 'the model'!r} ({type(module).__name__}) has none",
                    self.modules,
                )
            for param in weights:
                seen.setdefault(id(param), param)
        return list(seen.values())

    def _modules_of(self, model: nn.Module) -> list[nn.Module]:
        """The modules of ``model`` whose weights are penalised (names looked up)."""
        if self.modules is None:
            chosen = [model]
        else:
            names = [m for m in self.modules if isinstance(m, str)]
            found = resolve_module_names(model, names, argument="modules") if names else {}
            chosen = [found[m] if isinstance(m, str) else m for m in self.modules]
            # a module object must be one of this model's (a constraint built for another
            # student, reused with a new one, would penalise weights no step trains)
            own = {id(module) for module in model.modules()}
            for module in chosen:
                if id(module) not in own:
                    raise ValueError(
                        "modules must be submodules of the network the constraint penalises "
                        "(the student; with KnowledgeDistillation, the module logits_from "
                        f"names); got a {type(module).__name__} object that is not part of it "
                        "(built for another student?). Module names are looked up in each "
                        "network."
                    )
        return chosen

    def penalty(self, model: nn.Module, inputs=None) -> Tensor:
        """The sum of absolute values of the penalised weights (``inputs`` is unused), in
        float32 for float16 or bfloat16 weights (a float16 sum overflows from 65,504: the
        weights of a few million parameters)."""
        params = self.parameters_of(model)
        if not params:
            fail("modules", "modules with weight matrices or kernels", self.modules)
        return sum(param.abs().sum(dtype=_summed_dtype(param)) for param in params)

    def __repr__(self) -> str:
        return f"L1Sparsity(weight={self.weight}, modules={self.modules!r}, name={self.name!r})"


def check_constraints(constraints) -> list[Constraint]:
    """Validate a list of constraints (unique names); returns it as a list."""
    if constraints is None:
        return []
    if isinstance(constraints, Constraint):
        constraints = [constraints]
    if not isinstance(constraints, Sequence):
        fail(
            "constraints",
            "a list of Monotonic, L1Sparsity or other Constraint",
            constraints,
            TypeError,
        )
    names: set[str] = set()
    for item in constraints:
        if not isinstance(item, Constraint):
            fail(
                "constraints",
                "a list of Constraint objects (Monotonic, L1Sparsity)",
                item,
                TypeError,
            )
        if item.name in names:
            fail(
                "constraints",
                "constraints with distinct names (pass name=... to tell two apart, e.g. two "
                "Monotonic constraints on one feature for different outputs)",
                item.name,
            )
        names.add(item.name)
    return list(constraints)


def check_constraints_on(constraints, model: nn.Module) -> None:
    """What can be checked before the first batch: an ``L1Sparsity``'s modules exist in
    ``model`` and hold weight matrices (``Monotonic``'s feature needs a batch)."""
    lazy = any(nn.parameter.is_lazy(param) for param in model.parameters())
    for constraint in constraints:
        if not isinstance(constraint, L1Sparsity):
            continue
        if lazy:
            # a lazy module's weights have no shape until the first forward pass: the names
            # are checked now, the weights at the first step
            constraint._modules_of(model)
        elif not constraint.parameters_of(model):
            fail("modules", "modules with weight matrices or kernels", constraint.modules)
    if _soft_trees(model):
        # a soft tree logs its own balance penalty under these names
        taken = [c.name for c in constraints if re.fullmatch(r"tree_balance(_\d+)?", c.name)]
        if taken:
            fail(
                "constraints",
                "names other than the soft tree's own penalty, 'tree_balance' (its logged "
                "value would be replaced by the constraint's)",
                taken,
            )


def constraint_terms(constraints, model: nn.Module, inputs) -> tuple[Tensor | None, dict]:
    """``(sum of weight * penalty, {"constraint_<name>": penalty})`` for a batch."""
    total = None
    terms = {}
    for constraint in constraints:
        # name and weight as they are now, checked as the constructor and check_constraints
        # check them (penalty() checks the settings it reads itself)
        key = f"constraint_{_check_name(constraint.name)}"
        if key in terms:
            fail(
                "constraints",
                "constraints with distinct names (a name was changed after construction to "
                "another constraint's)",
                constraint.name,
            )
        weight = constraint.weight
        if not isinstance(weight, Tensor):  # a tensor (a user's schedule) is read as it is
            check_real(f"weight of constraint {constraint.name!r}", weight, minimum=0.0)
        value = constraint.penalty(model, inputs)
        if type(constraint) not in (Monotonic, L1Sparsity):
            # a user's own: the built-ins give finite scalar tensors of finite models and
            # inputs, which the step checks already (no check of theirs on the hot path)
            value = checked_penalty(constraint, value)
        terms[key] = value
        # a weight of one (the default) adds the penalty as it is: no product, forward or backward
        weighted = value if type(weight) in (int, float) and weight == 1 else weight * value
        total = weighted if total is None else total + weighted
    return total, terms


def checked_penalty(constraint, value) -> Tensor:
    """``constraint``'s penalty ``value`` as a 0-d floating tensor (an integer one cast), refused
    unless it is a real scalar tensor; a NaN or infinite value is refused with the step's other
    value checks (an optimizer step on it would make the student's parameters NaN)."""
    if not isinstance(value, Tensor) or value.numel() != 1 or value.is_complex():
        got = (
            f"a {value.dtype} tensor of shape {tuple(value.shape)}"
            if isinstance(value, Tensor)
            else f"a {type(value).__name__}"
        )
        raise TypeError(
            f"penalty of constraint {constraint.name!r} ({type(constraint).__name__}) must be a "
            f"scalar tensor (reduce it, e.g. with .mean(), and keep it a tensor so its gradient "
            f"reaches the student); got {got}."
        )
    value = value.reshape(())
    if not value.is_floating_point():
        # an integer zero (an early exit: nothing violated) adds nothing and needs no gradient;
        # any other integer or boolean value (a count of violations) would train nothing
        if value.dtype == torch.bool or bool(value != 0):
            raise TypeError(
                f"penalty of constraint {constraint.name!r} ({type(constraint).__name__}) must "
                "be a floating-point tensor that depends on the model (a count or a flag of "
                f"violations has no gradient, so the constraint would train nothing); got a "
                f"{value.dtype} tensor of value {value.item()!r}."
            )
        value = value.to(torch.get_default_dtype())

    def explain():
        raise ValueError(
            f"penalty of constraint {constraint.name!r} ({type(constraint).__name__}) must be "
            "finite; got NaN or infinity on this batch (an optimizer step on it would make the "
            "student's parameters NaN)."
        )

    # read with the step's other value checks (one host sync; see one_sync_per_step)
    value_check(~torch.isfinite(value.detach()), explain)
    return value


def _soft_trees(student: nn.Module) -> list:
    from lightning_distill.kd.soft_tree import SoftDecisionTree

    return [module for module in student.modules() if isinstance(module, SoftDecisionTree)]


def student_penalty_terms(student: nn.Module, trees: list | None = None) -> dict[str, Tensor]:
    """Penalties a student computes itself on its last training batch, read once.

    The :class:`~lightning_distill.kd.soft_tree.SoftDecisionTree` balance penalty, under
    ``"constraint_tree_balance"`` (``"constraint_tree_balance_<k>"`` for several trees). Read right
    after the student's forward pass on the batch, before constraints run it on other points.
    ``trees``: the student's soft trees, when already found.
    """
    penalties = [
        penalty
        for tree in (_soft_trees(student) if trees is None else trees)
        if (penalty := tree.pop_balance_penalty()) is not None
    ]
    if len(penalties) == 1:
        return {"constraint_tree_balance": penalties[0]}
    return {f"constraint_tree_balance_{k}": value for k, value in enumerate(penalties)}


def add_constraint_terms(
    terms: dict,
    constraints,
    student: nn.Module,
    inputs,
    own: dict | None = None,
    trees: list | None = None,
) -> dict:
    """Add the student's own penalties and ``constraints``' weighted penalties to
    ``terms["loss"]``, and each unweighted penalty under ``"constraint_<name>"``.

    ``own``: the student's own penalties (:func:`student_penalty_terms`) when they were read
    already, right after its forward pass on the batch, because it ran again since (SSKD's
    rotated copies); what those later passes stored is dropped. By default they are read here.
    ``trees``: the student's soft trees, when already found this step (one walk of its modules).
    """
    trees = _soft_trees(student) if trees is None else trees
    if own is None:
        own = student_penalty_terms(student, trees)
    elif trees:
        # drop penalties of forward passes after the batch's own
        student_penalty_terms(student, trees)
    extra, named = constraint_terms(constraints, student, inputs)
    if constraints and trees:
        # drop penalties of the constraints' extra forward passes
        student_penalty_terms(student, trees)
    for value in own.values():
        terms["loss"] = terms["loss"] + value
    if extra is not None:
        terms["loss"] = terms["loss"] + extra
    terms.update(own)
    terms.update(named)
    return terms


# --------------------------------------------------------------------------- the check
def monotonicity_violations(
    model: nn.Module,
    X,
    feature: int | str,
    *,
    output: int = 0,
    direction: int = 1,
    delta: float | None = None,
    quantity: Quantity = "logit",
) -> dict[str, float]:
    """Share of points where ``model`` is not monotone in ``feature``.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated in eval mode; every submodule's mode is restored afterwards. Must return
        ``[n]`` or ``[n, outputs]``: one row per row of ``X``.
    X : Tensor [n, features] or dict of tensors
        The points checked (e.g. a held-out grid).
    feature : int or str
        Column index for tensor ``X`` (or a name of ``model.feature_names``), key for dict ``X``.
    output : int, default=0
    direction : {1, -1}, default=1
    delta : float, optional
        Step added to the feature for the pair check; 5% of the feature's range in ``X`` by
        default (1.0 when the range is zero). The raised points may lie beyond ``X``'s range
        (a row at the feature's maximum is compared with one ``delta`` above it), so ``"pairs"``
        also reads the model just outside the checked points.
    quantity : {"logit", "log_probability"}, default="logit"

    Returns
    -------
    dict
        ``"gradient"``: share of rows whose derivative has the wrong sign (strictly);
        ``"pairs"``: share of rows whose output moves the wrong way (strictly) when the feature
        is raised by ``delta``.

    Notes
    -----
    An empirical check at the rows of ``X``: shares of zero mean that no violation was found
    there, not that the model is monotone between them (no certificate is computed; Liu et
    al. certify by a mixed-integer linear program, which is not done here).

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, -3.0]]))
    >>> monotonicity_violations(model, torch.randn(50, 2), feature=1, direction=1)
    {'gradient': 1.0, 'pairs': 1.0}
    """
    if not isinstance(model, nn.Module):
        fail("model", "a torch.nn.Module", model, TypeError)
    direction = _check_direction(direction)
    check_choice("quantity", quantity, _QUANTITIES)
    feature = _resolve_feature(model, X, feature)
    column = _feature_tensor(X, feature, "X")
    if column.shape[0] == 0:
        fail("X", "a non-empty batch", tuple(column.shape))
    _check_points(model, X)
    if delta is None:
        # in Python floats, without autograd: the range of a float16 feature can overflow its
        # dtype (a delta of inf the caller never gave)
        low, high = column.detach().aminmax()
        spread = float(high) - float(low)
        delta = 0.05 * spread if spread > 0 else 1.0
    delta = check_real("delta", delta, minimum=0.0, exclusive_minimum=True)
    with _evaluation_mode(model):
        # a row's derivative and its raised twin must be its own (as for the penalty)
        _check_rows_independent(model)
        # a check is often run inside evaluation code: gradients on, here only
        with torch.inference_mode(False), torch.enable_grad():
            X = _outside_inference(X)
            grad, values = _derivative(model, X, feature, output, quantity, create_graph=False)
        with torch.no_grad():
            raised = _output_of(
                model, _raise_feature(X, feature, delta), output, quantity, column.shape[0]
            )
            wrong_pairs = direction * (raised - values.detach()) < 0
    if not bool(torch.isfinite(grad).all() & torch.isfinite(raised).all()):
        raise ValueError(
            "model must give finite outputs and derivatives at every row of X; got NaN or "
            f"infinite values at {int((~torch.isfinite(grad) | ~torch.isfinite(raised)).sum())} "
            f"of {grad.shape[0]} rows."
        )
    wrong_gradient = direction * grad < 0
    rows = wrong_gradient.numel()
    return {  # counts over rows, exact (a float32 mean would read 0.805 as 0.80500001)
        "gradient": int(wrong_gradient.sum()) / rows,
        "pairs": int(wrong_pairs.sum()) / rows,
    }


def _check_points(model: nn.Module, X, argument: str = "X", *, same_dtype: bool = True) -> None:
    """Finite floating inputs (the derivative is undefined at NaN or infinite inputs, and a NaN
    row would give a value of no meaning rather than an error), in the model's floating dtype
    when ``same_dtype`` (the check's grid; a training batch is the model's to cast)."""
    dtype = None
    if same_dtype:
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    items = X.items() if isinstance(X, Mapping) else [(None, X)]
    for key, value in items:
        if not isinstance(value, Tensor) or not value.is_floating_point():
            continue
        name = argument if key is None else f"{argument}[{key!r}]"
        check_finite(name, value)
        if dtype is not None and value.dtype != dtype:
            raise TypeError(
                f"{name} must have the model's dtype {dtype}; got {value.dtype} (cast the points "
                "or the model so that they match)."
            )


def _outside_inference(X):
    """``X`` with inference-mode tensors (made under ``torch.inference_mode``) cloned into
    ordinary ones, which autograd may save."""
    if isinstance(X, Mapping):
        return mapping_like(
            X,
            {
                k: v.clone() if isinstance(v, Tensor) and v.is_inference() else v
                for k, v in X.items()
            },
        )
    return X.clone() if X.is_inference() else X


def _raise_feature(X, feature, delta: float):
    if isinstance(X, Mapping):
        return mapping_like(X, {**X, feature: X[feature] + delta})
    raised = X.clone()
    raised[:, feature] += delta
    return raised
