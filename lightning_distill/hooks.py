"""Capture intermediate outputs of named submodules with forward hooks."""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from lightning_distill._batch import map_tensors
from lightning_distill._validation import CheckedSetting, check_bool

__all__ = ["FeatureHooks", "resolve_layer_names", "resolve_module_names"]

# "rnn[0]": element 0 of the output of submodule "rnn" (a layer that returns a tuple)
_ELEMENT = re.compile(r"^(?P<name>.*)\[(?P<element>\d+)\]$")


def _checked_names(model, names, argument: str) -> list[str]:
    """``names`` as a list of str (one str is one name), for a ``model`` that is a module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable):
        raise TypeError(f"{argument} must be a module name (str) or a list of them; got {names!r}.")
    names = list(names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold module names as str; got {name!r}.")
    return names


def resolve_module_names(model: nn.Module, names: Iterable[str], *, argument: str = "names"):
    """Map each name to the submodule ``model.named_modules()`` gives it.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose submodules are looked up.
    names : iterable of str
        Names as in ``model.named_modules()`` (``""`` is the model itself); a submodule
        registered under several names (tied or shared) answers to each of them.
    argument : str
        The argument name used in error messages.

    Returns
    -------
    dict
        ``{name: module}`` in the order given.

    Raises
    ------
    ValueError
        For a name ``model`` has not, listing the closest existing names.
    """
    names = _checked_names(model, names, argument)
    # every name of a module registered under several (a tied or shared block, ``self.decoder
    # = self.encoder``): the default listing keeps its first name alone
    modules = dict(model.named_modules(remove_duplicate=False))
    resolved = {}
    for name in names:
        if name not in modules:
            candidates = [n for n in modules if n]
            close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
            hint = close or candidates[:10]
            raise ValueError(
                f"{argument}: {type(model).__name__} has no submodule named {name!r}; "
                f"closest names in model.named_modules(): {hint}."
            )
        resolved[name] = modules[name]
    return resolved


def split_element(model: nn.Module, name: str) -> tuple[str, int | None]:
    """``(submodule name, element)`` of a layer name: ``"rnn[0]"`` is element 0 of the output
    of ``"rnn"`` (a layer that returns a tuple, such as a recurrent one); a name without the
    suffix, or one that names a submodule as it is, has element ``None``."""
    match = _ELEMENT.match(name) if isinstance(name, str) else None
    if match is None or name in dict(model.named_modules(remove_duplicate=False)):
        return name, None
    return match["name"], int(match["element"])


def resolve_layer_names(model: nn.Module, names: Iterable[str], *, argument: str = "names"):
    """Like :func:`resolve_module_names`, for layer names that may pick one element of a
    submodule's output: ``"rnn[0]"`` resolves to the submodule ``"rnn"``. Returns
    ``{name: module}`` under the names as given."""
    names = _checked_names(model, names, argument)
    bases = [split_element(model, name)[0] for name in names]
    found = resolve_module_names(model, bases, argument=argument)
    return {name: found[base] for name, base in zip(names, bases)}


def _pick(output, element: int, name: str, argument: str):
    """Element ``element`` of a submodule's tuple (or list) output, for the layer ``name``."""
    if not isinstance(output, tuple | list):
        raise TypeError(
            f"{argument}: {name!r} picks element {element} of a submodule's output, which must "
            f"then be a tuple or a list; it returned a {type(output).__name__}. Name the "
            "submodule alone."
        )
    if element >= len(output):
        raise ValueError(
            f"{argument}: {name!r} picks element {element} of a submodule's output of "
            f"{len(output)} elements; pick one of 0 to {len(output) - 1}."
        )
    return output[element]


class FeatureHooks:
    """Capture the outputs of submodules, named as in ``model.named_modules()``.

    Used as a context manager: forward hooks are registered on entry and removed on exit, and the
    captured outputs are dropped on exit too, so nothing (no tensor, no autograd graph) is kept
    between steps. Read the outputs inside the ``with`` block.

    Each output is copied when it is captured, so what is read is the submodule's output even
    when a later operation overwrites it in place (``nn.ReLU(inplace=True)`` after a batch norm,
    ``out += identity`` in a residual block); without ``detach`` the copy is differentiable.

    A submodule that runs several times in one forward pass (a shared block, a recurrent cell)
    keeps every output, in call order: ``hooks.outputs(name)`` gives all of them and
    ``hooks[name]`` the last one.

    Parameters
    ----------
    model : torch.nn.Module
        The model to observe. It is not modified beyond the temporary hooks.
    names : str or iterable of str
        Submodule names. An unknown name raises ``ValueError`` listing the closest names. A
        name followed by ``[k]`` keeps element ``k`` of that submodule's output alone, for
        layers that return a tuple: ``"rnn[0]"`` is an ``nn.GRU``'s output sequence,
        ``"rnn[1]"`` its last hidden state (``[num_layers, B, H]``: not batch first).
    detach : bool, default=False
        Store ``output.detach()`` instead of the output (for monitoring rather than training).
    argument : str, default="names"
        The argument named in error messages.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> with FeatureHooks(model, ["0", "1"]) as hooks:
    ...     logits = model(torch.randn(3, 4))
    ...     hidden = hooks["1"]
    >>> tuple(hidden.shape)
    (3, 8)
    """

    # checked when set, after construction too: a truthy non-bool had been read as True
    detach = CheckedSetting(
        check_bool, "Whether the outputs are kept detached from the graph (checked when set)."
    )

    def __init__(self, model: nn.Module, names, *, detach: bool = False, argument: str = "names"):
        self._modules = resolve_layer_names(model, names, argument=argument)
        if not self._modules:
            raise ValueError("names must name at least one submodule; got an empty list.")
        self._elements = {name: split_element(model, name)[1] for name in self._modules}
        self._argument = argument
        self.detach = detach  # checked when set (below)
        self._handles: list[Any] = []
        self._outputs: dict[str, list[Any]] = {}

    @property
    def names(self) -> list[str]:
        """The observed submodule names, in the order given."""
        return list(self._modules)

    def _make_hook(self, name: str):
        element = self._elements[name]

        def hook(module, args, output):
            if element is not None:
                output = _pick(output, element, name, self._argument)
            # a copy: the next operation may overwrite the output in place (nn.ReLU(inplace=True),
            # out += identity, as torchvision's models do) before it is read
            self._outputs[name].append(_copy(output, detach=self.detach))

        return hook

    def __enter__(self) -> FeatureHooks:
        if self._handles:
            raise RuntimeError("FeatureHooks is already active; it cannot be entered twice")
        self._outputs = {name: [] for name in self._modules}
        self._handles = [
            module.register_forward_hook(self._make_hook(name))
            for name, module in self._modules.items()
        ]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._outputs = {}

    def outputs(self, name: str) -> list[Any]:
        """Every output of submodule ``name`` in this ``with`` block, in call order."""
        if name not in self._modules:
            raise KeyError(f"{name!r} is not observed; observed names: {self.names}")
        if not self._handles:
            raise RuntimeError(
                "outputs are only available inside the `with FeatureHooks(...)` block"
            )
        return list(self._outputs[name])

    def __getitem__(self, name: str):
        outputs = self.outputs(name)
        if not outputs:
            raise RuntimeError(
                f"submodule {name!r} has not run in this forward pass, so it has no output"
            )
        return outputs[-1]

    def __contains__(self, name: str) -> bool:
        return name in self._modules and bool(self._outputs.get(name))


def _copy(output, *, detach: bool):
    """A copy of every tensor in ``output`` (detached if asked; differentiable otherwise), in
    containers of the output's own types (a named tuple, a ``ModelOutput``-like mapping with
    attribute access, ``torch.return_types``), as :func:`map_tensors` rebuilds them."""
    if detach:
        return map_tensors(output, lambda tensor: tensor.detach().clone(), _DEPTH)
    return map_tensors(output, Tensor.clone, _DEPTH)


# how deep in an output's containers its tensors are copied
_DEPTH = 16


def warn_if_run_repeatedly(outputs: list, argument: str, layer: str, use: str) -> None:
    """Warn when ``layer`` (named by ``argument``) gave several ``outputs`` in one forward pass
    (a block the forward runs several times: shared, or a recurrent cell), whose last one is
    ``use``-d (``"distilled"``, ``"dissected"``): which call is meant cannot be told. Said once
    per place, by Python's warning filter."""
    if len(outputs) > 1:
        warnings.warn(
            f"{argument} {layer!r} ran {len(outputs)} times in one forward pass; its last "
            f"output is {use}. Name a submodule that runs once (wrap the call you mean in a "
            "module of its own, e.g. nn.Identity() after it) to choose another.",
            UserWarning,
            stacklevel=3,
        )
