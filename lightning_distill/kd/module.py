"""``DistillationModule``: knowledge distillation as a LightningModule."""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from typing_extensions import override

from lightning_distill._batch import (
    TEACHER_FIX,
    TEACHER_READS_AFTER,
    InputWatch,
    batch_inputs,
    batch_size_of,
    index_problem,
    own_container,
    unpack_batch,
    watch_for_teacher,
)
from lightning_distill._logging import (
    EpochMeans,
    SettledHyperparameters,
    StopStepValues,
    attached_trainer,
    logs_step_values,
    settle_hyperparameters,
)
from lightning_distill._metric_states import DtypeKeepingMeanMetric
from lightning_distill._precision import refuse_float16_adam
from lightning_distill._teacher import (
    TeacherModuleMixin,
    check_no_shared_parameters,
    check_teacher_logits,
    evaluating,
    warn_if_probabilities,
)
from lightning_distill._validation import (
    FixedDict,
    FixedList,
    check_choice,
    check_real,
    describe,
    fail,
    keeps_its_type,
    one_sync_per_step,
    plain_data,
    refuse_fixed_setting,
    rows_without_a_class,
    settle_value_checks,
)
from lightning_distill.hooks import FeatureHooks, resolve_layer_names, warn_if_run_repeatedly
from lightning_distill.kd._cache import TeacherLogitCache
from lightning_distill.kd.augment import apply_augment, check_augment
from lightning_distill.kd.constraints import (
    Constraint,
    _soft_trees,
    add_constraint_terms,
    check_constraints,
    check_constraints_on,
    student_penalty_terms,
)
from lightning_distill.kd.feature_losses import (
    FEATURE_METHODS,
    FeatureContext,
    LoaderInputs,
    build_feature_method,
    callable_term,
    check_batch_first,
    heads_in_dtype_of,
    method_needs_shapes,
)
from lightning_distill.kd.losses import (
    HintRegressor,
    _check_fraction,
    _check_pair,
    _check_temperature,
    _distillation_terms,
    _smoothed_cross_entropy,
    attention_transfer_loss,
    check_labels_or_teacher_alone,
    hint_loss,
    label_smoothing_loss,
    queue_logit_checks,
)
from lightning_distill.kd.temperature import LearnedTemperature, kd_loss_at

__all__ = ["DistillationModule", "FeatureDistillation"]

_FEATURE_LOSSES = ("attention", "hint", *FEATURE_METHODS)
_OPTIMIZERS = ("adam", "adamw", "sgd")

#: While DistillationModule.load_from_checkpoint builds a module: the names of the arguments
#: passed to it (None otherwise). A teacher missing there is one that checkpoints do not hold,
#: not a label-only baseline.
_LOADING_WITH: ContextVar[frozenset | None] = ContextVar("_LOADING_WITH", default=None)


@dataclass(frozen=True)
class FeatureDistillation:
    """One feature-distillation pair: a student layer taught by a teacher layer.

    Parameters
    ----------
    student_layer, teacher_layer : str
        Submodule names as in ``named_modules()`` of the student and the teacher. A name
        followed by ``[k]`` distils element ``k`` of the output of a layer that returns a
        tuple: ``"rnn[0]"`` is an ``nn.GRU``'s or ``nn.LSTM``'s output sequence ``[B, T, H]``
        (with ``batch_first=True``). Features are read batch first: a recurrent layer's
        hidden state (``"rnn[1]"``, ``[num_layers, B, H]`` whatever ``batch_first`` says) is
        refused by the built-in losses; a callable loss receives it as it is.
    loss : {"attention", "hint", "ft", "crd", "sskd", "rkd", "pkt"} or callable, default="attention"
        ``"attention"``: :func:`~lightning_distill.kd.losses.attention_transfer_loss`;
        ``"hint"``: FitNets' :func:`~lightning_distill.kd.losses.hint_loss` through a trainable
        :class:`~lightning_distill.kd.losses.HintRegressor`; ``"ft"``, ``"crd"``, ``"sskd"``,
        ``"rkd"``, ``"pkt"``: the methods of :mod:`lightning_distill.kd.feature_losses`
        (factor transfer, contrastive representation distillation, self-supervised KD,
        relational KD, probabilistic knowledge transfer) with their papers' defaults; their
        trainable parts train with the student, their first stages (FT's paraphraser, SSKD's
        teacher head) run at the start of training, and their state is in checkpoints. A
        callable receives ``(student_feature, teacher_feature)`` and returns a scalar tensor
        (a NaN or infinite value is refused with a ``ValueError`` before the optimizer steps).
    weight : float, default=1.0
        Multiplies this term in the total loss. The default is 1.0 for every loss, not the
        weight each method was published with: attention transfer 1000 (the authors' beta),
        hint 100 (RepDistiller's and mdistiller's), ``"ft"`` 500 (the authors'; RepDistiller
        takes 200), ``"crd"`` 0.8, ``"pkt"`` 30000 (RepDistiller's and mdistiller's);
        ``"sskd"`` and ``"rkd"`` weight their terms inside (``options``), with their papers'
        values by default.
    variant : {"code", "paper"}, default="code"
        Attention-transfer variant (see :func:`~lightning_distill.kd.losses.attention_transfer_loss`).
    p : float, default=2.0
        Attention-map exponent.
    options : dict, optional
        Keyword arguments of the feature method's class, e.g. ``{"num_samples": 50000}`` for
        ``"crd"`` (required: the training set's size) or ``{"head_epochs": 10}`` for ``"sskd"``.
    """

    student_layer: str
    teacher_layer: str
    loss: str | Callable[[Tensor, Tensor], Tensor] = "attention"
    weight: float = 1.0
    variant: str = "code"
    p: float = 2.0
    options: dict | None = None

    def __post_init__(self):
        for name in ("student_layer", "teacher_layer"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"{name} must be a submodule name (str); got {getattr(self, name)!r}."
                )
        if not callable(self.loss) and (
            not isinstance(self.loss, str) or self.loss not in _FEATURE_LOSSES
        ):
            error = ValueError if isinstance(self.loss, str) else TypeError
            raise error(
                f"loss must be one of {', '.join(map(repr, _FEATURE_LOSSES))} or a callable; "
                f"got {self.loss!r}."
            )
        if self.loss == "attention":
            check_choice("variant", self.variant, ("code", "paper"))
            check_real("p", self.p, minimum=0, exclusive_minimum=True)
        else:
            # attention transfer's own settings: set for another loss they would do nothing
            loss = "a callable loss" if callable(self.loss) else f"loss={self.loss!r}"
            for name, default in (("variant", "code"), ("p", 2.0)):
                if getattr(self, name) != default:
                    fail(
                        name,
                        f"left at {default!r} for {loss} (it is a setting of loss='attention')",
                        getattr(self, name),
                    )
        check_real("weight", self.weight, minimum=0)
        if self.options is not None and not isinstance(self.options, dict):
            raise TypeError(f"options must be a dict or None; got {self.options!r}.")
        if self.options is not None:
            # a copy of its own that refuses edits, as the pair's fields refuse to be set: the
            # caller's dict changed later had changed the options of a pair already given to a
            # module or callback (read again when a callback builds its methods)
            object.__setattr__(
                self,
                "options",
                FixedDict(self.options, "options", type(self).__name__, "the pair is frozen"),
            )
        if self.options and (self.loss == "attention" or callable(self.loss)):
            # nothing would read them (attention transfer's settings are variant= and p=)
            what = (
                "a callable loss"
                if callable(self.loss)
                else "loss='attention' (use p= and variant=)"
            )
            fail("options", f"None or empty for {what}, which takes no options", self.options)
        if self.loss == "hint" and self.options:
            unknown = sorted(set(self.options) - {"channels_first"})
            if unknown:
                fail("options", "{'channels_first': bool} for loss='hint'", unknown)
            if not isinstance(self.options["channels_first"], bool):
                fail(
                    "options['channels_first']", "a bool", self.options["channels_first"], TypeError
                )


#: Layers whose three-dimensional outputs are [B, C, L] (channels first), for a hint.
_CHANNELS_FIRST_1D = (
    nn.Conv1d,
    nn.ConvTranspose1d,
    nn.BatchNorm1d,
    nn.InstanceNorm1d,
    nn.MaxPool1d,
    nn.AvgPool1d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveAvgPool1d,
)


def hint_channels_first(spec: FeatureDistillation, student: nn.Module, teacher: nn.Module) -> bool:
    """Whether a hint reads three-dimensional features as ``[B, C, L]``: as ``options`` says,
    else when either named layer is a 1-D convolution, norm or pooling layer."""
    if spec.options and "channels_first" in spec.options:
        return spec.options["channels_first"]
    layers = (
        resolve_layer_names(student, [spec.student_layer], argument="student_layer"),
        resolve_layer_names(teacher, [spec.teacher_layer], argument="teacher_layer"),
    )
    return any(isinstance(m, _CHANNELS_FIRST_1D) for found in layers for m in found.values())


def forward_and_read(forward, z, hooks: FeatureHooks, layer: str, side: str):
    """``forward(z)`` and the output ``layer`` gave in it, inside a ``with hooks`` block that
    already observed other passes (SSKD's rotated copies)."""
    before = len(hooks.outputs(layer))
    logits = forward(z)
    return logits, layer_output(hooks, layer, side, since=before)


def layer_output(hooks: FeatureHooks, layer: str, side: str, *, since: int = 0):
    """The output of ``layer`` in the forward pass ``hooks`` observed (its calls from the
    ``since``-th on); a layer the forward did not run (defined but unused, on a branch not
    taken) is the pair's mistake, named so."""
    outputs = hooks.outputs(layer)[since:]
    if not outputs:
        raise ValueError(
            f"features ({side}_layer) must name a submodule that the {side}'s forward runs; got "
            f"{layer!r}, which did not run in this forward pass (defined but unused, or on a "
            "branch not taken)."
        )
    warn_if_run_repeatedly(outputs, f"features ({side}_layer)", layer, "distilled")
    return outputs[-1]


def feature_shapes(spec: FeatureDistillation, student_hooks, teacher_hooks) -> tuple:
    """Per-sample shapes (student, teacher) of one pair's features, each a tensor."""
    shapes = []
    for side, hooks, layer in (
        ("student", student_hooks, spec.student_layer),
        ("teacher", teacher_hooks, spec.teacher_layer),
    ):
        feature = layer_output(hooks, layer, side)
        if not isinstance(feature, Tensor):
            raise TypeError(
                f"{side} layer {layer!r} must output a tensor for feature distillation; it "
                f"returned a {type(feature).__name__}. Name a submodule that outputs the "
                "tensor itself"
                + (
                    f", or pick one element of the output: {layer + '[0]'!r} (a recurrent "
                    "layer's output sequence)."
                    if isinstance(feature, tuple | list) and not layer.endswith("]")
                    else "."
                )
            )
        shapes.append(tuple(feature.shape[1:]))
    return tuple(shapes)


#: saved beside each pair whose hint regressor or method heads need the features' shapes (the
#: name is kept from when only hints had them), so that checkpoints load without example_input
_SHAPES_KEY = "hint_shapes"

#: what the hyperparameters hold in place of a callable loss, ``{"callable": <its name>}``: code
#: is not plain data, and the marker makes a module built from them ask for the pairs again
_CALLABLE_KEY = "callable"


def _saved_callable(item) -> str | None:
    """The name of the callable loss whose marker a saved pair (a dict) holds, else None."""
    if isinstance(item, dict):
        loss = item.get("loss")
        if isinstance(loss, dict) and _CALLABLE_KEY in loss:
            return str(loss[_CALLABLE_KEY])
    return None


def _check_no_saved_callables(features: list | tuple) -> None:
    """Refuse pairs read back from hyperparameters whose loss was a callable: the callable is
    not there, and training on without the pair (or dropping its trained parameters) would
    be a silent change of the method."""
    names = [name for name in map(_saved_callable, features) if name is not None]
    if not names:
        return
    # pairs saved with their features' shapes (hints, heads) take them from example_input
    shapes = any(isinstance(item, dict) and _SHAPES_KEY in item for item in features)
    raise ValueError(
        "features must be given again: the checkpoint's feature pairs use the callable "
        f"loss{'es' if len(names) > 1 else ''} {', '.join(map(repr, names))}, which checkpoints "
        "do not store; pass features=<the same pairs> to load_from_checkpoint"
        + (" (with example_input=..., for the features' shapes)" if shapes else "")
        + ", or features=None with teacher=None, alpha=0.0 to load the student alone; got the "
        "saved pairs " + ", ".join(map(_describe_saved_pair, features)) + "."
    )


def _shape_text(x) -> str:
    """The shape of inputs for a message: a tensor's, or those of the tensors a dict, tuple or
    list of inputs holds ("{'a': (8, 4)}"), or the type of anything else."""
    if isinstance(x, Tensor):
        return str(tuple(x.shape))
    if isinstance(x, dict):
        return str(
            {k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in x.items()}
        )
    if isinstance(x, list | tuple):
        return str([tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for v in x])
    return type(x).__name__


def _describe_saved_pair(item) -> str:
    if not isinstance(item, dict):
        return describe(item)
    name = _saved_callable(item)
    loss = repr(item.get("loss")) if name is None else f"callable {name!r}"
    return f"({item.get('student_layer')!r}, {item.get('teacher_layer')!r}, {loss})"


def _needs_shapes(spec: FeatureDistillation) -> bool:
    return spec.loss == "hint" or (isinstance(spec.loss, str) and method_needs_shapes(spec.loss))


def _as_feature_specs(features) -> tuple[list[FeatureDistillation], list | None]:
    """The pairs as FeatureDistillation objects, and the hint shapes saved with them, if any."""
    if features is None:
        return [], None
    if isinstance(features, FeatureDistillation | dict):
        features = [features]
    if not isinstance(features, list | tuple):
        raise TypeError(
            "features must be a list of FeatureDistillation objects, (student_layer, "
            f"teacher_layer[, loss[, weight]]) tuples or dicts; got {features!r}."
        )
    _check_no_saved_callables(features)
    specs, shapes = [], []
    for item in features:
        if isinstance(item, FeatureDistillation):
            specs.append(item)
            shapes.append(None)
        elif isinstance(item, Sequence) and not isinstance(item, str) and 2 <= len(item) <= 4:
            specs.append(FeatureDistillation(*item))
            shapes.append(None)
        elif isinstance(item, dict):
            item = dict(item)
            shapes.append(item.pop(_SHAPES_KEY, None))
            unknown = sorted(set(map(str, item)) - {f.name for f in fields(FeatureDistillation)})
            if unknown:
                raise TypeError(
                    "features given as dicts must use FeatureDistillation's fields; got the "
                    f"unknown keys {unknown}."
                )
            specs.append(FeatureDistillation(**item))
        else:
            raise TypeError(
                "features must hold FeatureDistillation objects, (student_layer, teacher_layer"
                f"[, loss[, weight]]) tuples or dicts; got {item!r}."
            )
    needed = [shape for spec, shape in zip(specs, shapes) if _needs_shapes(spec)]
    if needed and all(shape is not None for shape in needed):
        # saved by an earlier module (see _features_as_data): no example_input needed
        return specs, [None if shape is None else tuple(map(tuple, shape)) for shape in shapes]
    return specs, None


def _check_no_shared_layers(student: nn.Module, teacher: nn.Module, hooked: dict) -> None:
    """A hooked layer must belong to one network: a module object in both (a parameterless
    ``nn.Flatten()`` built once and put in each) records whichever network ran it last, and
    the loss would compare a network's feature with itself."""
    in_student = {id(m) for m in student.modules()}
    in_teacher = {id(m) for m in teacher.modules()}
    for name, module in hooked.items():
        if id(module) in in_student and id(module) in in_teacher:
            layer = name.removeprefix("teacher ")
            side = "teacher_layer" if name.startswith("teacher ") else "student_layer"
            raise ValueError(
                f"features ({side}) must name a layer of one network only; got {layer!r}, a "
                f"{type(module).__name__} object that the student and the teacher share. Its "
                "hook would record whichever network ran it last: give each network its own "
                "module (copy.deepcopy)."
            )


def _features_as_data(specs: list[FeatureDistillation], shapes: list | None) -> list[dict]:
    """The pairs as plain dicts for the hyperparameters, with the features' shapes of those
    that need them. A callable loss is code, which a checkpoint loaded with
    ``weights_only=True`` cannot hold: its pair keeps ``{"callable": <its name>}`` instead, so
    that a module built from these dicts asks for the pairs again (see
    :func:`_check_no_saved_callables`)."""
    data = []
    for i, spec in enumerate(specs):
        item = {f.name: getattr(spec, f.name) for f in fields(spec)}
        if callable(spec.loss):
            name = getattr(spec.loss, "__qualname__", type(spec.loss).__qualname__)
            item["loss"] = {_CALLABLE_KEY: name}
        if shapes is not None and _needs_shapes(spec) and shapes[i] is not None:
            item[_SHAPES_KEY] = [list(shapes[i][0]), list(shapes[i][1])]
        data.append(item)
    return plain_data(data)


def _unique_term_names(named: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """One dict of the pairs' terms; a name several pairs give gets the pair's position."""
    counts: dict[str, int] = {}
    for terms in named:
        for name in terms:
            counts[name] = counts.get(name, 0) + 1
    return {
        (f"{name}_{i}" if counts[name] > 1 else name): value
        for i, terms in enumerate(named)
        for name, value in terms.items()
    }


def _optimizer_reference(optimizer):
    """A checkpoint-safe form of ``optimizer`` for the hyperparameters.

    Names stay names; an optimizer class becomes ``{"class_path": ...}`` and a
    ``functools.partial`` of one with plain keyword arguments ``{"class_path": ..., "init_args":
    {...}}`` (the form LightningCLI uses). Other callables (functions, lambdas) are code, which a
    checkpoint loaded with ``weights_only=True`` cannot hold: None, and ``load_from_checkpoint``
    takes ``optimizer=`` again to train further.
    """
    if isinstance(optimizer, str | dict):
        return optimizer
    target, kwargs = optimizer, {}
    if isinstance(optimizer, functools.partial) and not optimizer.args:
        target, kwargs = optimizer.func, dict(optimizer.keywords)
    if (
        isinstance(target, type)
        and issubclass(target, torch.optim.Optimizer)
        and all(_is_plain(v) for v in kwargs.values())
    ):
        reference = {"class_path": f"{target.__module__}.{target.__qualname__}"}
        if kwargs:
            reference["init_args"] = kwargs
        return reference
    return None


def _is_plain(value) -> bool:
    if isinstance(value, bool | int | float | str | type(None)):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


def _resolve_optimizer(optimizer):
    """A name, a callable, or a callable built from a ``{"class_path", "init_args"}`` dict."""
    if optimizer is None or callable(optimizer):
        return optimizer
    if isinstance(optimizer, str) and "." in optimizer:
        # a class path written alone (LightningCLI's --model.optimizer=torch.optim.SGD)
        optimizer = {"class_path": optimizer}
    if isinstance(optimizer, dict):
        path = optimizer.get("class_path")
        extra = set(optimizer) - {"class_path", "init_args"}
        target = None
        if isinstance(path, str) and not extra and "." in path:
            module_name, _, name = path.rpartition(".")
            try:
                target = getattr(importlib.import_module(module_name), name)
            except (ImportError, AttributeError):
                target = None
        if not (isinstance(target, type) and issubclass(target, torch.optim.Optimizer)):
            raise ValueError(
                "optimizer must name a torch.optim.Optimizer subclass ('torch.optim.SGD', or "
                "{'class_path': ..., 'init_args': {...}}) when given as a path or a dict; got "
                f"{optimizer!r}."
            )
        return functools.partial(target, **dict(optimizer.get("init_args") or {}))
    if isinstance(optimizer, str) and optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, _OPTIMIZERS))}, the class path of a "
            "torch.optim.Optimizer ('torch.optim.SGD'), a {'class_path': ..., 'init_args': "
            f"{{...}}}} dict or a callable; got {optimizer!r}."
        )
    check_choice("optimizer", optimizer, _OPTIMIZERS)
    return optimizer


#: The module's own optimizer settings (a class or partial of a torch optimizer takes them when it
#: accepts them and does not set them itself); their defaults are read from the signature.
_OPTIMIZER_SETTINGS = ("lr", "weight_decay", "momentum")


@functools.cache
def _optimizer_setting_defaults() -> dict:
    """The defaults of :data:`_OPTIMIZER_SETTINGS` in ``DistillationModule.__init__``."""
    parameters = inspect.signature(DistillationModule.__init__).parameters
    return {name: parameters[name].default for name in _OPTIMIZER_SETTINGS}


def _with_module_settings(optimizer, settings: dict, since: dict | None = None):
    """``optimizer`` (a resolved name or callable) with the module's ``lr``, ``weight_decay``
    and ``momentum`` filled in when it is a torch optimizer class, or a ``functools.partial``
    of one, that accepts them and does not set them, for the settings given to the module
    (other than their defaults): ``optimizer=torch.optim.SGD, lr=0.1`` trains at 0.1, not at
    SGD's own default; a setting left at the module's default leaves the class's own default
    (``RMSprop`` keeps its lr 0.01 and momentum 0). A partial that sets one of them to another
    value than the one given to the module is refused: two learning rates were asked for. A
    function or lambda builds its optimizer itself: settings given to the module are then
    unused, and a warning says so. ``since``: settings changed after the module was built
    (``Tuner.lr_find(update_attr=True)`` sets ``hparams.lr``): they are filled in whatever
    their value, in place of a partial's own."""
    if not callable(optimizer):
        return optimizer
    target, given = optimizer, {}
    if isinstance(optimizer, functools.partial) and not optimizer.args:
        target, given = optimizer.func, dict(optimizer.keywords)
    defaults = _optimizer_setting_defaults()
    changed = {k: v for k, v in settings.items() if v != defaults[k]}
    if not (isinstance(target, type) and issubclass(target, torch.optim.Optimizer)):
        if changed:
            warnings.warn(
                "optimizer is a function that builds its own optimizer, so "
                + ", ".join(f"{k}={v!r}" for k, v in changed.items())
                + " of the module are not used: set them in the function, or pass the "
                "optimizer class (e.g. optimizer=torch.optim.SGD), which takes them.",
                UserWarning,
                stacklevel=3,
            )
        return optimizer
    accepted = inspect.signature(target).parameters
    fill = {}
    for name, value in changed.items():
        if name not in accepted:
            continue
        if name in given and name not in (since or {}):
            if given[name] != value:
                raise ValueError(
                    f"{name} must be given once: the module has {name}={value!r} and the "
                    f"optimizer {target.__name__} {name}={given[name]!r}; drop one of them."
                )
            continue
        fill[name] = value
    for name, value in (since or {}).items():
        if name in accepted:
            given.pop(name, None)
            fill[name] = value
    return functools.partial(target, **given, **fill) if fill else optimizer


_READ_AFTER_TEACHER = "the constraints and feature methods, which read the batch after it,"


def _dataset_length(loader) -> int | None:
    """The length of a data loader's dataset, None when it has none (an iterable dataset,
    several loaders combined)."""
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError, NotImplementedError):
        return None


def _evaluation_mean() -> DtypeKeepingMeanMetric:
    """A running mean of an evaluation figure that keeps NaN: torchmetrics' default drops NaN
    values (with a warning), and an epoch's loss then read the mean over the batches whose
    student logits were finite."""
    return DtypeKeepingMeanMetric(nan_strategy="disable")


def _stable_repr(value) -> str:
    """A description that is the same from one run to the next: the object's repr without
    memory addresses (a function's, a lambda's, a partial's or a default repr hold one)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


_MADE_FROM_SPECS = "the feature hooks, hint regressors and feature methods are built from it"


def _check_cache_teacher(cache_teacher, teacher, augment, specs) -> None:
    """``cache_teacher`` as the constructor checks it, with the module's teacher, ``augment``
    and feature pairs (also at each step: ``hparams.cache_teacher`` may be set later)."""
    if not isinstance(cache_teacher, bool):
        raise TypeError(f"cache_teacher must be a bool; got {cache_teacher!r}.")
    if not cache_teacher:
        return
    if teacher is None:
        raise ValueError(
            "cache_teacher must be False without a teacher; got True (to load a "
            "checkpoint's student alone, pass cache_teacher=False too)."
        )
    if augment is not None:
        raise ValueError(
            "cache_teacher must be False with augment=...: the teacher labels each "
            "augmented batch afresh, so a cache would give the student the logits of other "
            "inputs than the ones it sees; got True."
        )
    if specs:
        raise ValueError(
            "cache_teacher must be False with feature distillation (features=...), which "
            "needs the teacher's features, not only its logits; got True."
        )


class DistillationModule(TeacherModuleMixin, SettledHyperparameters, L.LightningModule):
    r"""Train a student on a frozen teacher's softened outputs (and, optionally, features).

    The training loss is

    .. math:: (1 - \alpha)\,\mathrm{CE}_\varepsilon(y, s) + \alpha\,T^2\,\mathrm{KL}(p_t^T \| p_s^T)
              + \sum_k w_k\, \ell_k(f_s^{(k)}, f_t^{(k)})

    with :math:`\mathrm{CE}_\varepsilon` the cross-entropy with label smoothing
    :math:`\varepsilon` and :math:`\ell_k` the feature losses. Without a teacher (and
    ``alpha=0``) it trains the student on the labels alone: the from-scratch and label-smoothing
    baselines.

    The teacher is frozen: it runs under ``torch.no_grad`` in eval mode for the whole run
    (Lightning's ``train()`` calls do not reach it), its parameters take no gradient (so DDP
    ignores them) and are not optimised, and its weights are left out of checkpoints unless
    ``keep_teacher_in_checkpoint``. Every submodule's mode and every ``requires_grad`` flag are
    recorded when a Trainer run starts and given back exactly in ``teardown``, or when the run
    fails (the one lifecycle of ``lightning_distill._teacher``). A direct call outside a run
    freezes it for that call only. The teacher is a submodule: moving or casting the module
    (``.to()``, ``.double()``, a Trainer's ``precision="64-true"``) moves or casts it too, and
    it stays so after the run, like the student. Non-finite teacher logits (NaN, ``+inf``) stop the run at the
    first such batch; ``-inf`` marks a masked class.

    Device: every tensor stays on the student's device during training. One value per step
    comes back to the host: the boolean of that finiteness check (a synchronisation on an
    accelerator, no copy of a tensor).

    The student runs first and the teacher after it on the same batch, so a student that
    writes its inputs in place (``nn.ReLU(inplace=True)`` first, ``x.mul_(...)``) would hand
    the teacher other inputs: it is refused (``ValueError``) in the steps where a later model
    reads the batch (training and evaluation with a teacher or constraints; not predictions),
    as is a teacher that writes them when constraints or feature methods read the batch after
    it. This is told by the version counters of the inputs' tensors. Tensors made under
    ``torch.inference_mode`` have none: Lightning's ``validate`` and ``test`` (and validation
    inside ``fit`` on an accelerator) give such batches, so in evaluation the teacher reads a
    copy of those tensors, taken before the student runs, and a writing student changes
    nothing it reads. The teacher, the constraints and the feature methods read a copy of a
    dict (any mutable mapping) or list of inputs taken before the student ran (the same
    tensors, apart from those copies), so that a student adding or rebinding an entry leaves
    them the batch's.

    Lightning's warning "Found N module(s) in eval mode at the start of training" leaves the
    frozen teacher's modules out: when they are all it would count it is not given; modules of
    the user's in eval mode are still reported (a ``PossibleUserWarning``), counted and named
    without the teacher's.

    Batches are ``(inputs, targets)`` or, for ``cache_teacher``, ``(inputs, targets, index)``
    with ``index`` the samples' positions in the dataset (or any integer ids); or dicts with one of the keys
    ``inputs``/``input``/``x``, ``targets``/``target``/``labels``/``label``/``y`` and
    ``index``/``idx`` (the keys :class:`~lightning_distill.KnowledgeDistillation` reads too).

    **Without labels** (an unlabelled transfer set, Hinton et al.'s setting): with a teacher
    and ``alpha=1.0`` the loss is the KD term alone, and batches may hold inputs alone -- a
    tensor, an ``(inputs,)`` tuple (a ``TensorDataset`` of inputs) or a dict without a target
    key (with an index key for ``cache_teacher``). ``train/loss_ce`` is then not logged, and
    evaluation batches without labels log ``teacher_agreement`` alone (no ``loss``, ``acc``,
    ``teacher_acc``). With ``alpha < 1`` a batch without labels is refused. SSKD needs labels.

    Evaluation (``val/``, ``test/``) does not refuse a student's NaN or ``+inf`` logits, or a
    row of ``-inf`` (a diverged student loaded from a checkpoint): such samples predict no
    class, so the epoch's ``loss``, ``acc`` and ``teacher_agreement`` read NaN, and one
    warning at the epoch's end says for how many samples.

    Parameters
    ----------
    student : torch.nn.Module
        Maps inputs to logits ``[batch, classes]``; trained.
    teacher : torch.nn.Module or None
        Maps the same inputs to logits with the same number of classes; frozen.
    temperature : float or LearnedTemperature, default=4.0
        Softening temperature T of the KD term, or a
        :class:`~lightning_distill.kd.temperature.LearnedTemperature` trained adversarially
        with the student (CTKD) and logged as ``train/temperature``; its settings are kept in
        the hyperparameters as plain data and its value in checkpoints.
    alpha : float in [0, 1], default=0.9
        Weight of the KD term; ``1 - alpha`` weights the hard-label term. ``T^2`` is kept for
        every alpha. Must be 0 without a teacher.
    label_smoothing : float in [0, 1], default=0.0
        Label smoothing of the hard-label term.
    features : list of FeatureDistillation or tuples, optional
        Feature-distillation pairs; layer outputs are captured with
        :class:`~lightning_distill.FeatureHooks`.
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"}, callable or dict, default="adam"
        A callable receives the trainable parameters and returns an optimizer. Override
        ``configure_optimizers`` for schedulers, building the optimizer on
        :meth:`trainable_parameters` (the student's alone would leave a learned temperature
        and the feature methods' heads untrained: the fit warns). Hyperparameters hold plain data only, so that
        checkpoints load with ``torch.load(weights_only=True)``: an optimizer class or a
        ``functools.partial`` of one (plain keyword arguments) is stored as ``{"class_path":
        ..., "init_args": {...}}``, a form also accepted here; a function or lambda is not
        stored, and ``load_from_checkpoint`` then takes ``optimizer=`` again to train further.
        ``"adam"`` and ``"adamw"`` (``eps=1e-8``, which is 0 in float16: their steps would
        divide by zero) refuse float16 parameters (``Trainer(precision="16-true")``): use
        ``"sgd"``, a callable with an ``eps`` float16 holds
        (``functools.partial(torch.optim.Adam, eps=1e-4)``), or ``"16-mixed"`` or
        ``"bf16-true"``.
    weight_decay : float, default=0.0
    momentum : float, default=0.9
        Used by ``"sgd"``. ``lr``, ``weight_decay`` and ``momentum`` given to the module (not
        left at these defaults) also reach an optimizer class (or a partial or ``class_path``
        of one) that accepts them and does not set them itself; left at the defaults, the
        class's own defaults stand; set in both to different values, they are refused; a
        function given as ``optimizer`` builds its optimizer itself (a warning says when they
        would be unused).
    cache_teacher : bool, default=False
        Compute each sample's teacher logits once and reuse them in later epochs of the same
        fit (every ``fit`` starts with an empty cache). Only valid when a sample's input is the
        same every epoch, i.e. without random augmentation; batches must carry each sample's
        index (its position in the data set, or any integer id: memory follows the samples
        cached, not the largest index).
        Each cached sample keeps a fingerprint of its input, and an input that changes under its
        index is refused (token sequences ``[B, T]`` padded to another length are compared over
        the shorter one; other inputs of another size are not compared). A tensor shared by
        the batch (a table) is part of every sample's fingerprint; one with as many rows as
        every batch is read as one row per sample (give it a leading dimension of 1). Not
        combinable with feature distillation.
    keep_teacher_in_checkpoint : bool, default=False
        Store the teacher's weights in checkpoints too. Either way, ``load_from_checkpoint``
        takes ``student`` and ``teacher`` again (modules are not hyperparameters); a checkpoint
        that holds the teacher's weights loads them *into the teacher given* (as it loads the
        student's into the student), so pass a fresh instance of the architecture to rebuild
        it, or your trained teacher only when it is the one the checkpoint saved. ``features``
        are saved as plain hyperparameters, with the hint regressors' shapes, and restored
        (unless a pair's ``loss`` is a callable, which checkpoints do not store: then
        ``load_from_checkpoint`` asks for ``features`` again, or ``features=None`` to drop the
        pairs).
    constraints : list of Monotonic, L1Sparsity or other Constraint, optional
        Penalties on the student added to the loss (``weight * penalty``); each unweighted
        penalty is logged as ``train/constraint_<name>``. A
        :class:`~lightning_distill.SoftDecisionTree` student adds its balance penalty
        (``train/constraint_tree_balance``, logged as added: the paper's C, its
        strength lambda included) without being listed. Not hyperparameters: pass
        them again to ``load_from_checkpoint`` to train further.
    augment : callable, optional
        ``(inputs, targets) -> (inputs, targets)`` (or new inputs only; always both for tuple
        or list inputs) applied to each training
        batch before the teacher and the student see it, so the teacher labels the augmented
        inputs: :func:`~lightning_distill.mixup`, :func:`~lightning_distill.gaussian_noise` or
        your own. Not combinable with ``cache_teacher``. Not a hyperparameter.
    example_input : Tensor, optional
        A batch of inputs, used to infer feature shapes for ``"hint"`` regressors and the
        ``"ft"``, ``"crd"`` and ``"sskd"`` methods (required then) and as
        ``example_input_array``.

    Examples
    --------
    >>> from torch import nn
    >>> teacher = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    >>> student = nn.Linear(8, 3)
    >>> module = DistillationModule(student, teacher, temperature=4.0, alpha=0.9)
    >>> module.hparams.temperature
    4.0
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        *,
        temperature: float | LearnedTemperature | dict = 4.0,
        alpha: float = 0.9,
        label_smoothing: float = 0.0,
        features: list[FeatureDistillation] | None = None,
        lr: float = 1e-3,
        optimizer: str | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = "adam",
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        cache_teacher: bool = False,
        keep_teacher_in_checkpoint: bool = False,
        example_input: Tensor | None = None,
        constraints: list[Constraint] | None = None,
        augment: Callable | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(student, nn.Module):
            raise TypeError(f"student must be a torch.nn.Module; got {type(student).__name__}.")
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise TypeError(
                f"teacher must be a torch.nn.Module or None; got {type(teacher).__name__}."
            )
        if teacher is not None:
            check_no_shared_parameters(teacher, student, "student")
        learned_temperature = None
        if isinstance(temperature, LearnedTemperature | dict):
            learned_temperature = (
                temperature
                if isinstance(temperature, LearnedTemperature)
                else LearnedTemperature.from_data(temperature)
            )
        else:
            _check_temperature(temperature)
        constraints = check_constraints(constraints)
        augment = check_augment(augment)
        _check_fraction("alpha", alpha)
        _check_fraction("label_smoothing", label_smoothing)
        check_real("lr", lr, minimum=0, exclusive_minimum=True)
        check_real("weight_decay", weight_decay, minimum=0)
        check_real("momentum", momentum, minimum=0, maximum=1, exclusive_maximum=True)
        optimizer_reference = _optimizer_reference(optimizer)
        optimizer = _resolve_optimizer(optimizer)
        # checked (and a function's unused settings warned about) now; filled in when the
        # optimizer is built, with the hyperparameters changed since (a tuner's lr)
        loading_with = _LOADING_WITH.get()  # the arguments of load_from_checkpoint, if loading
        self._built_settings = plain_data(
            {"lr": lr, "weight_decay": weight_decay, "momentum": momentum}
        )
        # a checkpoint records the settings its run trained with, a tuned lr included: loaded,
        # they replace a partial's own (which the run's tuner had replaced too)
        defaults = _optimizer_setting_defaults()
        self._loaded_settings = (
            {k: v for k, v in self._built_settings.items() if v != defaults[k]}
            if loading_with is not None
            else {}
        )
        _with_module_settings(optimizer, self._built_settings, self._loaded_settings)
        if not isinstance(cache_teacher, bool):
            raise TypeError(f"cache_teacher must be a bool; got {cache_teacher!r}.")
        if not isinstance(keep_teacher_in_checkpoint, bool):
            raise TypeError(
                f"keep_teacher_in_checkpoint must be a bool; got {keep_teacher_in_checkpoint!r}."
            )
        if example_input is not None and not isinstance(example_input, Tensor):
            raise TypeError(
                f"example_input must be a torch.Tensor or None; got {type(example_input).__name__}."
            )
        if (
            teacher is None
            and loading_with is not None
            and "teacher" not in loading_with
            and (alpha != 0 or features or cache_teacher)
        ):
            # the checkpoint's settings are those of a module trained with a teacher (a
            # ValueError, as the label-only message it replaces here)
            raise ValueError(
                "teacher must be passed to load_from_checkpoint again: checkpoints do not hold "
                "the teacher module (keep_teacher_in_checkpoint=True keeps its weights, which "
                "load into the teacher given), and this one was trained with a teacher "
                f"(alpha={alpha!r}); got no teacher. Pass teacher=<the trained teacher>, or "
                "load the student alone: load_from_checkpoint(path, student=..., "
                "teacher=None, alpha=0.0, features=None, cache_teacher=False)."
            )
        specs, known_shapes = _as_feature_specs(features)
        if teacher is None:
            if alpha != 0:
                raise ValueError(
                    f"alpha must be 0 without a teacher; got {alpha!r}. Pass alpha=0.0 to "
                    "train the student on labels alone, or to load a checkpoint's student "
                    "without its teacher: load_from_checkpoint(path, student=..., "
                    "teacher=None, alpha=0.0, features=None, cache_teacher=False)."
                )
            if specs:
                raise ValueError(
                    f"features must be None without a teacher; got {features!r} (to load a "
                    "checkpoint's student alone, pass features=None too)."
                )
        _check_cache_teacher(cache_teacher, teacher, augment, specs)

        # Hyperparameters hold plain data only, so that checkpoints load with
        # torch.load(weights_only=True): modules are passed again to load_from_checkpoint,
        # optimizers are stored as a reference (see _optimizer_reference), features as dicts.
        self.save_hyperparameters(
            ignore=[
                "student",
                "teacher",
                "features",
                "example_input",
                "optimizer",
                "constraints",
                "augment",
                "temperature",
            ]
        )
        self.hparams["optimizer"] = optimizer_reference
        self.hparams["temperature"] = (
            float(temperature) if learned_temperature is None else learned_temperature.as_data()
        )
        self.learned_temperature = learned_temperature
        check_constraints_on(constraints, student)
        self.constraints = constraints
        self._augment = augment
        self._epoch_means = EpochMeans()
        self._stop_values = StopStepValues()
        self.student = student
        self.teacher = teacher
        self._init_teacher(keep_teacher_in_checkpoint)
        # fixed, edits in place refused too: the hooks, hint regressors and feature methods
        # are built from them (a pair removed later failed in the step with "'int' object has no
        # attribute 'detach'", one added with a KeyError)
        self.feature_specs = FixedList(
            specs, "feature_specs", type(self).__name__, _MADE_FROM_SPECS, "features"
        )
        # a callable loss (the user's code, which may keep state) gets a batch whose logits and
        # labels were read (see _loss_terms)
        self._settle_before_features = any(callable(spec.loss) for spec in specs)
        self.example_input_array = example_input
        self._optimizer = optimizer

        if specs:
            hooked = {
                **resolve_layer_names(
                    student, [s.student_layer for s in specs], argument="features (student_layer)"
                ),
                **{
                    f"teacher {name}": module
                    for name, module in resolve_layer_names(
                        teacher,
                        [s.teacher_layer for s in specs],
                        argument="features (teacher_layer)",
                    ).items()
                },
            }
            _check_no_shared_layers(student, teacher, hooked)
        self._student_hooks = (
            FeatureHooks(
                student,
                [s.student_layer for s in specs],
                argument="features (student_layer)",
            )
            if specs
            else None
        )
        self._teacher_hooks = (
            FeatureHooks(
                teacher,
                [s.teacher_layer for s in specs],
                argument="features (teacher_layer)",
            )
            if specs
            else None
        )
        # the features' shapes, for hint regressors and methods' heads: saved with the pairs
        # (a checkpoint loads without example_input), else probed on example_input
        shapes = known_shapes
        needing = [s.loss for s in specs if _needs_shapes(s)]
        if shapes is None and needing:
            hint = needing[0] == "hint"
            shapes = self._feature_shapes(
                example_input,
                "a 'hint' feature loss" if hint else f"loss={needing[0]!r}",
                "regressor" if hint else "method's heads",
            )
        # ModuleDict keys cannot hold dots, so regressors are keyed by the pair's position.
        self.hint_regressors = nn.ModuleDict()
        # FT, CRD, SSKD, RKD, PKT, keyed by the pair's position as well.
        self.feature_methods = nn.ModuleDict()
        for i, spec in enumerate(specs):
            if spec.loss == "hint":
                self.hint_regressors[str(i)] = HintRegressor(
                    *shapes[i], channels_first=hint_channels_first(spec, student, teacher)
                )
            elif spec.loss in FEATURE_METHODS:
                pair = shapes[i] if _needs_shapes(spec) else (None, None)
                self.feature_methods[str(i)] = build_feature_method(spec.loss, *pair, spec.options)
        heads_in_dtype_of(self.hint_regressors, student)
        heads_in_dtype_of(self.feature_methods, student)
        self.hparams["features"] = _features_as_data(specs, shapes)
        # settings given as numpy scalars (np.linspace sweeps) or 0-d tensors pass the checks
        # as numbers, but torch.load(weights_only=True) cannot read them back: stored plain,
        # and the loggers given the hyperparameters as checkpoints hold them
        settle_hyperparameters(self)

        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": _evaluation_mean()
                for stage in ("val", "test")
                for name in ("loss", "acc", "teacher_agreement", "teacher_acc")
            }
        )
        # Plain attributes, not buffers: DDP would broadcast buffers from rank 0 and each rank
        # caches the samples it sees.
        self._teacher_cache = TeacherLogitCache()
        # per evaluation stage: samples whose student logits predict no class, samples seen
        # and the figures made NaN by them (one warning at the epoch's end, one host sync)
        self._undefined_rows: dict[str, list] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "feature_specs":
            refuse_fixed_setting(
                self, name, value, ("feature_specs",), _MADE_FROM_SPECS, "features"
            )
        elif name == "constraints":
            # set after construction too (a list of its own): a non-list or a non-constraint
            # had failed in the step with Python's message ("'int' object is not iterable"),
            # an L1Sparsity naming no module of the student at its first penalty
            value = check_constraints(value)
            if "student" in self._modules:
                check_constraints_on(value, self.student)
        super().__setattr__(name, value)

    # ----------------------------------------------------------------- set-up helpers
    def _feature_shapes(self, example_input, needed_by: str, what: str) -> list:
        """Per-sample shapes (student, teacher) of every pair's features, from one probe."""
        if example_input is None:
            raise ValueError(
                f"example_input must be a batch of inputs with {needed_by} (it gives the "
                f"features' shapes for the {what}, e.g. example_input=x[:2]); got None."
            )
        # Both models run in eval mode for the probe; every submodule's mode is given back.
        with (
            torch.no_grad(),
            evaluating(self.student),
            self._frozen_teacher(),
            self._student_hooks as sh,
            self._teacher_hooks as th,
        ):
            shape = tuple(example_input.shape) if isinstance(example_input, Tensor) else None
            said = f" of shape {shape}" if shape is not None else ""
            try:
                self.student(example_input)
            except (RuntimeError, TypeError, ValueError, IndexError) as error:
                raise ValueError(
                    f"example_input must be a batch the student reads (both models run on it "
                    f"once, to find the features' shapes); the student failed on example_input"
                    f"{said}: {error}"
                ) from error
            try:
                self.teacher(example_input)
            except RuntimeError as error:
                self._explain_dtype_mismatch(example_input, error, probe=True)
                raise ValueError(
                    f"example_input must be a batch the teacher reads (both models run on it "
                    f"once, to find the features' shapes); the teacher failed on example_input"
                    f"{said}: {error}"
                ) from error
            try:
                shapes = [feature_shapes(spec, sh, th) for spec in self.feature_specs]
            except ValueError as error:
                raise ValueError(
                    f"{error} (read from example_input{said}: is its first dimension the batch?)"
                ) from error
        flat = [
            (spec.student_layer if side == 0 else spec.teacher_layer)
            for spec, pair in zip(self.feature_specs, shapes)
            for side, shape in enumerate(pair)
            if shape is not None and len(shape) == 0
        ]
        if flat:
            raise ValueError(
                f"example_input must be a batch (its first dimension the batch, e.g. "
                f"example_input=x[:2]); got example_input{said}, on which layer {flat[0]!r} "
                "gave one number per row: a feature needs a dimension beside the batch's."
            )
        return shapes

    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's :meth:`~lightning.pytorch.core.LightningModule.load_from_checkpoint`.

        Modules are not hyperparameters: pass ``student=`` and ``teacher=`` again (and
        ``optimizer=``, ``features=``, ``constraints=``, ``augment=`` where they are callables or
        modules); ``teacher=None, alpha=0.0, features=None, cache_teacher=False`` loads the
        student alone. A checkpoint trained with a teacher, loaded without ``teacher=``, is
        refused with a message that says so.
        """
        token = _LOADING_WITH.set(frozenset(kwargs))
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        finally:
            _LOADING_WITH.reset(token)

    # the overridden method's own kind of class method (Lightning's refuses a call on an
    # instance, which would leave that instance as it was)
    load_from_checkpoint = type(L.LightningModule.__dict__["load_from_checkpoint"])(
        load_from_checkpoint
    )

    @override
    def on_fit_start(self) -> None:
        # Cached logits belong to the data of one fit: a later fit may index other samples.
        self._teacher_cache.reset()

    @override
    def on_train_start(self) -> None:
        self._warn_if_own_parameters_untrained()
        if self.hparams.cache_teacher:
            # the cache's tables end at the training set's size rather than up to twice it
            self._teacher_cache.expect(_dataset_length(self.trainer.train_dataloader))
        # First stages of feature methods (FT's paraphraser, SSKD's teacher head) run once, over
        # this fit's training data; a resumed fit finds them done (the flag is in checkpoints).
        pending = [(int(k), m) for k, m in self.feature_methods.items() if not m.is_pretrained]
        if not pending:
            return
        inputs = LoaderInputs.of_trainer(self.trainer, self.device, self._unpack)
        for i, method in pending:
            layer = self.feature_specs[i].teacher_layer
            hooks = FeatureHooks(self.teacher, [layer], argument="features (teacher_layer)")

            def teacher_feature(x, hooks=hooks, layer=layer):
                with hooks as th:
                    self._teacher_forward(x)
                    return layer_output(th, layer, "teacher")

            method.pretrain(inputs, teacher_feature)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimizer trains: the student's parameters that require gradients, the
        hint regressors', a learned temperature's and the feature methods' heads'."""
        return [p for p in self.student.parameters() if p.requires_grad] + self._own_parameters()

    def _own_parameters(self) -> list[nn.Parameter]:
        params = list(self.hint_regressors.parameters())
        if self.learned_temperature is not None:
            params += list(self.learned_temperature.parameters())
        params += [p for m in self.feature_methods.values() for p in m.student_parameters()]
        return params

    def _warn_if_own_parameters_untrained(self) -> None:
        """An overridden ``configure_optimizers`` that builds on the student's parameters
        alone leaves the module's own (a learned temperature, the heads) as initialised."""
        optimized = {
            id(p)
            for optimizer in self.trainer.optimizers
            for group in optimizer.param_groups
            for p in group["params"]
        }
        own = {id(p) for p in self._own_parameters()}
        left = [
            name
            for name, p in self.named_parameters()
            if p.requires_grad and id(p) in own and id(p) not in optimized
        ]
        if left:
            shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
            warnings.warn(
                f"configure_optimizers gives no optimizer the module's own parameters {shown} "
                "(a learned temperature, hint regressors, feature methods' heads): they stay as "
                "initialised. Build the optimizer on self.trainable_parameters().",
                UserWarning,
                stacklevel=2,
            )

    @override
    def configure_optimizers(self):
        params = self.trainable_parameters()
        if not params:  # a frozen student may still train heads or a learned temperature
            count = sum(1 for _ in self.student.parameters())
            raise ValueError(
                "student must have parameters that require gradients (the optimizer trains "
                "them, and this module has none of its own to train); got "
                + (
                    "a student without parameters."
                    if count == 0
                    else f"{count} parameter(s), none with requires_grad=True: a frozen "
                    "student (call requires_grad_(True) on what should train)."
                )
            )
        hp = self.hparams
        # as they are now (a tuner or a user may set hparams.lr and the rest after construction),
        # checked as the constructor checks them: SGD takes a momentum of 1 or more silently
        check_real("lr", hp.lr, minimum=0, exclusive_minimum=True)
        check_real("weight_decay", hp.weight_decay, minimum=0)
        check_real("momentum", hp.momentum, minimum=0, maximum=1, exclusive_maximum=True)
        if self._optimizer is None:
            raise ValueError(
                "optimizer must be given to train: this module was loaded from a checkpoint of "
                "one trained with a callable optimizer, which checkpoints do not store; pass "
                "optimizer=... to load_from_checkpoint; got None."
            )
        if callable(self._optimizer):
            # the hyperparameters as they are now: Tuner.lr_find(update_attr=True), or a user,
            # may have set hparams.lr since the module was built
            now = {"lr": hp.lr, "weight_decay": hp.weight_decay, "momentum": hp.momentum}
            changed = {k: v for k, v in now.items() if v != self._built_settings[k]}
            since = {**self._loaded_settings, **changed}
            with warnings.catch_warnings():
                if not changed:  # said once, at construction
                    warnings.simplefilter("ignore", UserWarning)
                build = _with_module_settings(self._optimizer, self._built_settings, since)
            return build(params)
        if self._optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
            )
        precision = getattr(attached_trainer(self), "precision", None)
        refuse_float16_adam(
            params,
            "optimizer",
            "'sgd' or a callable whose optimizer's eps float16 holds (e.g. "
            "functools.partial(torch.optim.Adam, eps=1e-4)) to train float16 parameters, or the "
            "Trainer's precision '16-mixed' or 'bf16-true' instead",
            "the student's weights",
            given=f"{self._optimizer!r} with float16 parameters"
            + ("" if precision is None else f" (Trainer precision {precision!r})"),
        )
        cls = torch.optim.AdamW if self._optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=hp.lr, weight_decay=hp.weight_decay)

    # ----------------------------------------------------------------- forward passes
    @override
    def forward(self, x: Tensor) -> Tensor:
        """The student's logits."""
        return self.student(x)

    def _student_forward(self, x) -> Tensor:
        try:
            return self.student(x)
        except RuntimeError as error:
            param = next((p for p in self.student.parameters() if p.is_floating_point()), None)
            if (
                type(error) is RuntimeError
                and isinstance(x, Tensor)
                and x.is_floating_point()
                and param is not None
                and param.dtype != x.dtype
            ):
                raise TypeError(
                    f"student must take the inputs' dtype; its parameters are {param.dtype} "
                    f"and the inputs {x.dtype}. Cast the data (x.to({param.dtype})), or run the "
                    "Trainer with a precision that casts the batches (precision='64-true' for "
                    f"float64). Torch said: {error}"
                ) from error
            if (
                type(error) is RuntimeError
                and isinstance(x, Tensor)
                and not x.is_floating_point()
                and param is not None
                # torch's floating-layer dtype errors ("Input type (unsigned char) and bias
                # type (float) should be the same", "mat1 and mat2 must have the same dtype"),
                # not a shape error, nor an embedding's "indices" of a dtype it does not take
                and "same" in str(error)
                and "indices" not in str(error)
            ):
                # integer inputs (raw 8-bit images, codes) reaching a floating layer; a student
                # that reads integers (an embedding) does not raise here
                raise TypeError(
                    f"student must take the inputs' dtype; its parameters are {param.dtype} "
                    f"and the inputs {x.dtype}. Convert the data to floating point in the "
                    f"dataset or the augmentation (e.g. x.to({param.dtype}) / 255 for 8-bit "
                    f"images). Torch said: {error}"
                ) from error
            raise

    def _teacher_forward(self, x) -> Tensor:
        # Inside a Trainer run the teacher is frozen already; a direct call freezes it for the
        # call and gives it back.
        with torch.no_grad(), self._frozen_teacher():
            try:
                logits = self.teacher(x)
            except RuntimeError as error:
                self._explain_dtype_mismatch(x, error)
                # torch's shape complaint deep in the teacher, on its first batch: the teacher
                # does not take the student's inputs. Out of memory and the like, and errors
                # after a first batch went through, keep their type.
                if getattr(self, "_teacher_outputs_seen", False) or keeps_its_type(error):
                    raise
                shape = _shape_text(x)
                raise ValueError(
                    f"teacher must take the inputs the student is given; it failed on the first "
                    f"batch's inputs of shape {shape} (the same features, in the same layout, "
                    f"as it was trained on?). The teacher said: {error}"
                ) from error
        check_teacher_logits(logits, x)
        if not getattr(self, "_teacher_outputs_seen", False):
            self._teacher_outputs_seen = True
            warn_if_probabilities(logits)
        return logits

    def _explain_dtype_mismatch(self, x, error: RuntimeError, *, probe: bool = False) -> None:
        """Say what to do when the teacher's floating dtype is not the inputs' (a float64
        teacher beside a float32 student: only true precisions convert the two together; a
        Trainer with ``precision="64-true"`` leaves the teacher in float64 after its fit).
        ``probe``: ``x`` is the ``example_input`` of the features' shape probe."""
        if keeps_its_type(error) or not isinstance(x, Tensor):
            return
        param = next((p for p in self.teacher.parameters() if p.is_floating_point()), None)
        if param is None or not x.is_floating_point() or param.dtype == x.dtype:
            return
        if probe:
            why = (
                " (a fit with precision='64-true' leaves the teacher in float64)"
                if param.dtype == torch.float64
                else ""
            )
            raise TypeError(
                f"teacher must take example_input's dtype; its parameters are {param.dtype} "
                f"and example_input is {x.dtype}{why}. Cast the teacher to the student's dtype "
                f"(teacher.to({x.dtype})) before building the module. Torch said: {error}"
            ) from error
        raise TypeError(
            f"teacher must take the inputs' dtype; its parameters are {param.dtype} and the "
            f"inputs {x.dtype}. Cast the teacher to the student's dtype (teacher.to({x.dtype})) "
            "before building the module, or run the Trainer with a precision that converts "
            f"both (precision='64-true' for float64). Torch said: {error}"
        ) from error

    def _cached_teacher_logits(self, x: Tensor, index, samples: int | None) -> Tensor:
        if index is None:
            raise ValueError(
                "batch must be (inputs, targets, index) with cache_teacher=True, index holding "
                "each sample's position in the dataset or an id (without labels: a dict with an input "
                "and an index key); got a batch without index."
            )
        # its type: checked with the batch (_unpack)
        rows = batch_size_of(x)
        if samples is None:  # no tensor of logits: the loss says what is wrong with them
            samples = len(index) if rows is None else rows
        if rows is not None and rows != samples:
            raise ValueError(
                "cache_teacher=True needs inputs whose first dimension is the batch's: it keeps "
                f"each sample's logits by row; got inputs of {rows} rows for {samples} rows of "
                "logits (sequence-first inputs [time, batch, ...]? Give batch-first ones, or "
                "use cache_teacher=False)."
            )
        if len(index) != samples:
            raise ValueError(
                f"index must hold one index per sample; got {len(index)} for a batch of "
                f"{samples} samples."
            )
        return self._teacher_cache.lookup(x, index, self._settled_teacher_forward)

    def _settled_teacher_forward(self, x) -> Tensor:
        """The teacher's logits, checked before the cache keeps them."""
        logits = self._teacher_forward(x)
        settle_value_checks()
        return logits

    def _unpack(self, batch) -> tuple[Any, Tensor | None, Tensor | None]:
        """``(inputs, targets, index)``; a batch may hold inputs alone when the loss needs no
        labels (``alpha=1``), or in evaluation (only the agreement with the teacher is read)."""
        x, targets, index = unpack_batch(batch, targets_optional=self.teacher is not None)
        got = None if index is None else index_problem(index)
        if got is not None:
            # read as the samples' index (the teacher cache's and CRD's key): anything else
            # there (sample weights, a mask) would be dropped without a word
            raise TypeError(
                "index must be a 1-D integer tensor of sample positions or ids (a batch is "
                "(inputs, targets) or (inputs, targets, index), or a dict with an index key); got "
                f"{got} (sample weights and masks are not read: weigh the loss in a module of "
                "your own)."
            )
        return x, targets, index

    def _read_after_student(self) -> bool:
        """Whether a model reads the training batch after the student (the teacher, or the
        constraints' penalties)."""
        return self.teacher is not None or bool(self.constraints)

    def _readers_after_student(self) -> str:
        readers = [
            name
            for name, present in (
                ("the teacher", self.teacher is not None),
                ("the constraints", bool(self.constraints)),
            )
            if present
        ]
        return f"{' and '.join(readers)}, which read the same batch after it,"

    def _loss_terms(
        self, x, targets: Tensor | None, index, later=None, trees: list | None = None
    ) -> tuple[dict[str, Tensor], int, dict[str, Tensor]]:
        """The loss and its terms by name, the batch's number of samples (the student's
        rows of logits: inputs may be sequence-first, or a tuple) and the student's own
        penalties on the batch (a soft tree's balance, read right after its forward pass:
        a feature method may run it again on other inputs, SSKD's rotated copies). ``later``:
        the inputs as the models after the student read them (see ``_training_step``), ``x``
        by default; ``trees``: the student's soft trees, when already found this step."""
        # The teacher, the constraints and the feature methods read the batch after the
        # student: a student that wrote it in place would hand them other inputs.
        later = x if later is None else later
        watch = InputWatch(x) if self._read_after_student() else None
        after_student = self._readers_after_student  # the message's words, built if it is raised
        if self._student_hooks is None:
            student_logits = self._student_forward(x)
            own = student_penalty_terms(self.student, trees)
            if watch is not None:
                watch.check("student", after_student)
            teacher_logits = None
            if self.teacher is not None:
                teacher_logits = (
                    self._cached_teacher_logits(later, index, batch_size_of(student_logits))
                    if self.hparams.cache_teacher
                    else self._teacher_forward(later)
                )
                if self.constraints:
                    watch.check("teacher", _READ_AFTER_TEACHER, fix=TEACHER_FIX)
            feature_loss = None
        else:
            with self._student_hooks as sh, self._teacher_hooks as th:
                student_logits = self._student_forward(x)
                own = student_penalty_terms(self.student, trees)
                watch.check("student", after_student)
                teacher_logits = self._teacher_forward(later)
                watch.check("teacher", _READ_AFTER_TEACHER, fix=TEACHER_FIX)
                # The batch's logits and labels are checked with the feature losses' own checks
                # (the loss below does not check them again): a method reads them all before it
                # changes state from the batch (CRD's banks), and a step without one reads them
                # once, as a step without features does. A callable loss (the user's code, which
                # may keep state) gets the batch once they are read.
                queue_logit_checks(
                    student_logits,
                    teacher_logits,
                    targets,
                    settle=self._settle_before_features,
                )
                # read before any method runs more forward passes (SSKD's rotated copies)
                pairs = [
                    (
                        layer_output(sh, s.student_layer, "student"),
                        layer_output(th, s.teacher_layer, "teacher"),
                    )
                    for s in self.feature_specs
                ]
                named = []
                for i, (spec, (student_feature, teacher_feature)) in enumerate(
                    zip(self.feature_specs, pairs)
                ):
                    context = FeatureContext(
                        later,
                        targets,
                        index,
                        lambda z, layer=spec.student_layer: forward_and_read(
                            self.student, z, sh, layer, "student"
                        ),
                        lambda z, layer=spec.teacher_layer: forward_and_read(
                            self._teacher_forward, z, th, layer, "teacher"
                        ),
                        targets_checked=True,  # by queue_logit_checks above
                    )
                    check_batch_first(
                        spec, student_feature, teacher_feature, student_logits.shape[0]
                    )
                    named.append(
                        self._feature_terms(i, spec, student_feature, teacher_feature, context)
                    )
            feature_terms = _unique_term_names(named)
            feature_loss = sum(feature_terms.values())
        hp = self.hparams  # a batch without labels was refused unless alpha=1 (training_step)
        if teacher_logits is None:
            ce = label_smoothing_loss(student_logits, targets, hp.label_smoothing)
            return {"loss": ce, "loss_ce": ce}, student_logits.shape[0], own
        # with feature pairs, the logits and labels were checked ahead (queue_logit_checks)
        checked = feature_loss is not None
        if self.learned_temperature is None:
            total, ce, kd = _distillation_terms(
                student_logits,
                teacher_logits,
                targets,
                hp.temperature,
                hp.alpha,
                hp.label_smoothing,
                values_checked=checked,
            )
            terms = {"loss": total, "loss_ce": ce, "loss_kd": kd}
        else:
            temperature = self.learned_temperature(
                # epochs counted from 1, as in the authors' code: the first one reverses too
                self.learned_temperature.reversal_strength(self.current_epoch + 1)
            )
            learned = self.learned_temperature
            kd = kd_loss_at(
                student_logits,
                teacher_logits,
                temperature,
                max_temperature=learned.t_start + learned.t_range,
            )
            if targets is None:  # alpha=1: the teacher alone
                total, ce = kd, None
            else:  # the student's logits were checked by kd_loss_at
                ce = _smoothed_cross_entropy(
                    student_logits,
                    targets,
                    hp.label_smoothing,
                    strict=True,
                    values_checked=True,
                    targets_checked=checked,
                )
                total = (1.0 - hp.alpha) * ce + hp.alpha * kd
            terms = {"loss": total, "loss_ce": ce, "loss_kd": kd, "temperature": temperature}
        if terms["loss_ce"] is None:  # no labels
            del terms["loss_ce"]
        if feature_loss is not None:
            terms["loss"] = terms["loss"] + feature_loss
            terms["loss_feature"] = feature_loss
            # weighted as they enter the loss: they sum to loss_feature
            terms.update({f"loss_feature/{k}": v for k, v in feature_terms.items()})
        return terms, student_logits.shape[0], own

    def _feature_terms(
        self, i: int, spec: FeatureDistillation, student_feature, teacher_feature, context
    ) -> dict[str, Tensor]:
        """The pair's weighted loss terms by name."""
        if spec.loss == "attention":
            terms = {
                "attention": attention_transfer_loss(
                    student_feature, teacher_feature, variant=spec.variant, p=spec.p
                )
            }
        elif spec.loss == "hint":
            terms = {
                "hint": hint_loss(student_feature, teacher_feature, self.hint_regressors[str(i)])
            }
        elif str(i) in self.feature_methods:
            terms = self.feature_methods[str(i)](student_feature, teacher_feature, context)
        else:
            terms = {"callable": callable_term(spec.loss, student_feature, teacher_feature)}
        return {name: spec.weight * value for name, value in terms.items()}

    # ----------------------------------------------------------------- Lightning steps
    @override
    def training_step(self, batch, batch_idx: int) -> Tensor:
        # the step's value checks (finite logits, class indices in range) are read in one host
        # sync rather than one each: on a GPU each sync idles the device while the host launches
        # the next kernels
        with one_sync_per_step():
            return self._training_step(batch)

    def _check_loss_settings(self) -> None:
        """``alpha`` and ``label_smoothing`` as they are now (``hparams`` may be set after
        construction), checked as the constructor checks them: with a learned temperature an
        alpha of 1.5 had trained the hard-label term with a negative weight, without a teacher
        any alpha had been ignored, and a label_smoothing out of range was named 'smoothing'."""
        hp = self.hparams
        alpha = _check_fraction("alpha", hp.alpha)
        _check_fraction("label_smoothing", hp.label_smoothing)
        if self.teacher is None and alpha != 0:
            raise ValueError(
                f"alpha must be 0 without a teacher; got {hp.alpha!r} (the loss is the "
                "hard-label term alone)."
            )
        # set to True later, with augment or feature pairs, it had been refused for the
        # batch's layout, or had given the student another input's cached logits
        _check_cache_teacher(hp.cache_teacher, self.teacher, self._augment, self.feature_specs)

    def _training_step(self, batch) -> Tensor:
        x, targets, index = self._unpack(batch)
        self._check_loss_settings()
        check_labels_or_teacher_alone(targets, self.hparams.alpha)
        if self._augment is not None:
            x, targets = apply_augment(self._augment, x, targets)
        # the batch as the models after the student read it: the student may add, remove or
        # rebind entries of a dict or list of inputs without changing what they read
        later = own_container(x) if self._read_after_student() else x
        trees = _soft_trees(self.student)  # one walk of the student's modules a step
        for tree in trees:  # a call before the step is no part of the batch's penalty
            tree.pop_balance_penalty()
        terms, batch_size, own = self._loss_terms(x, targets, index, later, trees)
        terms = add_constraint_terms(terms, self.constraints, self.student, later, own, trees)
        settle_value_checks()  # before the epoch means and the loggers see the terms
        names = tuple(terms)
        values = self._epoch_means.add(terms, batch_size)
        loss = terms.pop("loss")
        trainer = attached_trainer(self)
        # each self.log costs about a millisecond (Lightning's result collection): every step
        # only for a progress bar that shows the loss, otherwise on the steps the loggers write
        log_terms = logs_step_values(trainer)
        log_loss = log_terms or trainer.progress_bar_callback is not None
        if log_loss:
            self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        if log_terms:
            self.log_dict(
                {f"train/{name}": value.detach() for name, value in terms.items()},
                batch_size=batch_size,
            )
        # for a stop set after the step (see on_train_batch_end)
        logged = names if log_terms else ("loss",) if log_loss else ()
        self._stop_values.keep(names, values, logged, batch_size)
        return loss

    @override
    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # A callback's on_train_batch_end that stopped the run after the step (Timer, which
        # max_time adds, or a user's) makes the loggers write the step values now: the step's
        # own, logged here where the step did not log them (a subclass overriding this hook
        # calls super().on_train_batch_end).
        for name, value in self._stop_values.late(attached_trainer(self)).items():
            self.log(
                f"train/{name}",
                value,
                prog_bar=name == "loss",
                on_step=True,
                on_epoch=False,
                batch_size=self._stop_values.batch_size,
            )

    @override
    def on_train_epoch_start(self) -> None:
        self._epoch_means.reset()
        self._stop_values.reset()

    @override
    def on_train_epoch_end(self) -> None:
        # the epoch means of the loss and its terms over the samples of every process (the
        # processes agree on the names first: one that never saw a term would otherwise skip
        # a sync the others make, and the run would hang); the values are then the same on
        # every process, and sync_dist only keeps Lightning's DDP check quiet
        for name, mean in self._epoch_means.synced_means(self.device).items():
            self.log(f"train/{name}_epoch", mean, sync_dist=True)

    def _stage_metric(
        self, stage: str, name: str, dataloader_idx: int
    ) -> tuple[DtypeKeepingMeanMetric, str]:
        """The running mean of ``name`` for one evaluation dataloader (each its own, so two
        loaders' figures are not pooled), and its attribute path for ``self.log``."""
        key = f"{stage}_{name}" if dataloader_idx == 0 else f"{stage}{dataloader_idx}_{name}"
        if key not in self.metrics:
            # made during an evaluation loop: normal tensors, which a later fit's loop updates
            with torch.inference_mode(False):
                self.metrics[key] = _evaluation_mean().to(self.device)
        return self.metrics[key], f"metrics.{key}"

    def _evaluate(self, batch, stage: str, dataloader_idx: int = 0) -> None:
        x, targets, _ = self._unpack(batch)
        # the teacher reads the batch after the student; tensors made under inference mode
        # (the batches of Lightning's validate and test, and of validation in fit on an
        # accelerator) keep no version counter, so the teacher reads a copy of those, taken
        # before the student runs
        watch, later = watch_for_teacher(x) if self.teacher is not None else (None, x)
        logits = self._student_forward(x)
        if watch is not None:
            watch.check("student", TEACHER_READS_AFTER)
        x = later
        predictions = logits.argmax(dim=1)
        # NaN or +inf logits, or a row without a finite one (a diverged student), predict no
        # class: argmax would name the first NaN's (class 0 for a row of NaN), a made-up
        # accuracy. Such samples count NaN, so the epoch's figure says NaN, as its loss does.
        undefined = rows_without_a_class(logits)
        batch_size = logits.shape[0]
        updates = {}
        if targets is not None:
            # reported as it is (inf for a label on a masked class), not refused
            updates["loss"] = _smoothed_cross_entropy(logits, targets, 0.0, strict=False)
            updates["acc"] = (predictions == targets).float().masked_fill(undefined, torch.nan)
        if self.teacher is not None:
            teacher_logits = self._teacher_forward(x)
            # as training checks them: agreement over two different sets of classes is no figure
            _check_pair(logits, teacher_logits)
            teacher_predictions = teacher_logits.argmax(dim=1)
            updates["teacher_agreement"] = (
                (predictions == teacher_predictions).float().masked_fill(undefined, torch.nan)
            )
            if targets is not None:
                updates["teacher_acc"] = (teacher_predictions == targets).float()
        count, rows, names = self._undefined_rows.setdefault(stage, [0, 0, set()])
        # a tensor sum on the logits' device: read once, at the epoch's end
        self._undefined_rows[stage] = [count + undefined.sum(), rows + undefined.numel(), names]
        names.update(name for name in updates if name != "teacher_acc")
        for name, value in updates.items():
            metric, attribute = self._stage_metric(stage, name, dataloader_idx)
            if value.dim() == 0:
                # a batch mean counts once per sample: torchmetrics' MeanMetric drops the
                # weights given to update() under nan_strategy="disable" (every batch had
                # counted once, a short last batch as much as a full one)
                metric.update(value.expand(batch_size))
            else:
                metric.update(value)
            self.log(
                f"{stage}/{name}",
                metric,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "acc",
                batch_size=batch_size,
                metric_attribute=attribute,
            )

    def _fresh_metrics(self, stage: str) -> None:
        # Lightning resets logged metrics at an evaluation epoch's end, inside inference mode:
        # their states are then inference tensors, which a later fit's validation (no_grad,
        # not inference) cannot update in place ("trainer.validate(module)" before a fit)
        with torch.inference_mode(False):
            for key, metric in self.metrics.items():
                if key.startswith(stage):  # "val_acc", "val1_acc" (a second loader's)
                    metric.reset()
        self._undefined_rows.pop(stage, None)

    def _warn_if_undefined_rows(self, stage: str) -> None:
        """One warning for an evaluation epoch in which the student's logits predicted no
        class for some samples (its figures read NaN: see ``_evaluate``)."""
        count, rows, names = self._undefined_rows.pop(stage, [0, 0, set()])
        trainer = attached_trainer(self)
        if trainer is not None and trainer.world_size > 1:
            # the epoch's figures are synced: so is the count they are warned of, said once
            # (every process reaches this hook each evaluation epoch, so the sum cannot hang)
            counts = torch.stack(
                [
                    torch.as_tensor(value, device=self.device).long().reshape(())
                    for value in (count, rows)
                ]
            )
            count, rows = trainer.strategy.reduce(counts, reduce_op="sum").tolist()
            if not trainer.is_global_zero:
                return
        if not int(count) or not names:
            return
        figures = ", ".join(
            f"{stage}/{name}" for name in ("loss", "acc", "teacher_agreement") if name in names
        )
        warnings.warn(
            f"student gave NaN or +inf logits, or a row without a finite logit, for "
            f"{int(count)} of the {rows} {'validation' if stage == 'val' else 'test'} samples "
            f"this epoch: they predict no class, so {figures} read NaN (a diverged student, "
            "or NaN weights or inputs?).",
            UserWarning,
            stacklevel=2,
        )

    @override
    def on_validation_epoch_start(self) -> None:
        self._fresh_metrics("val")

    @override
    def on_test_epoch_start(self) -> None:
        self._fresh_metrics("test")

    @override
    def on_validation_epoch_end(self) -> None:
        self._warn_if_undefined_rows("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._warn_if_undefined_rows("test")

    @override
    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val", dataloader_idx)

    @override
    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "test", dataloader_idx)

    @override
    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        return self._student_forward(batch_inputs(batch))

    def _training_extras(self) -> dict[str, Any]:
        """What shaped the training but is no hyperparameter (passed again on resuming), as
        plain text: the constraints and the augmentation."""
        augment = self._augment
        return {
            "constraints": [_stable_repr(c) for c in self.constraints],
            "augment": None if augment is None else _stable_repr(augment),
        }

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["distillation_extras"] = self._training_extras()

    def _warn_if_resumed_without_extras(self, checkpoint: dict[str, Any]) -> None:
        """A fit resumed from a checkpoint with other constraints or augmentation than it
        was trained with goes on under other terms: say so (they are passed again, not
        stored as hyperparameters)."""
        saved = checkpoint.get("distillation_extras")
        trainer = self._trainer
        if saved is None or trainer is None or trainer.state.fn != "fit":
            return  # loaded for inference (load_from_checkpoint), or an older checkpoint
        now = self._training_extras()
        changed = [name for name in now if now[name] != saved.get(name, now[name])]
        if changed:
            said = "; ".join(f"{name}: {saved[name]!r} then, {now[name]!r} now" for name in changed)
            warnings.warn(
                f"DistillationModule resumed with other training terms than the checkpoint's "
                f"({said}): the run goes on under them. Pass the same constraints and augment "
                "to resume the run as it was.",
                UserWarning,
                stacklevel=2,
            )

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._warn_if_resumed_without_extras(checkpoint)
        state = checkpoint.get("state_dict", {})
        if not self.feature_specs:
            # the student alone (features=None): the feature losses' own parameters (hint
            # regressors, projection heads) served the training, not the student
            for key in [k for k in state if k.startswith(("hint_regressors.", "feature_methods."))]:
                del state[key]
        # a learned temperature is a parameter of the module: say what to pass instead of
        # torch's "Unexpected key(s)" / "Missing key(s)" when it is there on one side only
        saved = any(k.startswith("learned_temperature.") for k in checkpoint.get("state_dict", {}))
        here = self.learned_temperature is not None
        if saved != here:
            what = "a learned temperature" if saved else "a fixed temperature"
            hint = (
                "leave temperature out of load_from_checkpoint (the saved one is used) or pass "
                "the checkpoint's hyper_parameters['temperature']"
                if saved
                else "pass a fixed temperature (a number)"
            )
            raise ValueError(
                f"temperature must match the checkpoint, which was trained with {what}; got "
                f"{'a fixed' if saved else 'a learned'} temperature here: {hint}."
            )
