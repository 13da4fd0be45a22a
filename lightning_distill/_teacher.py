"""The one teacher lifecycle of the Lightning side: freeze, give back, checkpoint policy.

Every module and callback that runs a user's trained network as a *teacher*
(:class:`~lightning_distill.DistillationModule`, :class:`~lightning_distill.KnowledgeDistillation`,
:class:`~lightning_distill.awd.AWDModule`) follows the same rules:

- **Freeze at the start of a run** (``setup`` of ``fit``, ``validate``, ``test``, ``predict``):
  record the mode (``training``) of *every* submodule of the teacher and the ``requires_grad``
  flag of every parameter, then switch the teacher to eval mode and its parameters off. The record
  is taken when the run starts, not when the module is built, so a teacher changed between two
  fits is given back as it was at the start of each.
- **Give back exactly as recorded** when the run ends (``teardown``) and when it fails
  (``on_exception``; Lightning skips ``teardown`` then): every submodule gets its own recorded
  mode back (a user's frozen BatchNorm inside a training teacher stays frozen), every parameter
  its flag.
- **Outside a run** (a method called directly, a probe forward at construction) the teacher is
  frozen for the duration of that call only (:meth:`TeacherLifecycle.frozen`).
- **Checkpoints leave the teacher out** by default (it is the user's model, already saved
  elsewhere, and often much larger than what is trained); ``keep_teacher_in_checkpoint=True``
  keeps its weights. Either way ``load_from_checkpoint`` takes the teacher again (modules are not
  hyperparameters); a checkpoint without the teacher loads strictly, the given teacher filling
  the gap; a checkpoint with it loads its weights into the given teacher (pass a fresh instance
  to rebuild the teacher from the checkpoint).
- **Lightning's eval-mode warning leaves the frozen teacher out**: Lightning warns when modules of
  the LightningModule are in eval mode as training starts; a teacher held as a submodule is,
  on purpose. When the teacher's modules are all it would count, the warning is silenced for
  that check (a filter of this library's own, removed right after it, at the end of the run or
  when the run fails); when modules of the user's are in eval mode too, the same warning counts
  and names those alone.

The teacher stays the object the user passed (no copy): moving or casting the module (``.to``,
``.double()``, a Trainer's precision) moves or casts the teacher too, as for any submodule.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn
from typing_extensions import override

from lightning_distill._logging import QuietMissingValLoader, QuietWarning, attached_trainer
from lightning_distill._validation import check_finite, output_remedy, value_check

__all__ = [
    "ModuleModes",
    "TeacherLifecycle",
    "TeacherModuleMixin",
    "check_initialised",
    "check_no_shared_parameters",
    "check_teacher_logits",
    "evaluating",
    "quiet_teacher_in_eval_mode",
    "tensors_given_back",
    "warn_if_probabilities",
]

TEACHER_PREFIX = "teacher."


def check_initialised(teacher: nn.Module) -> None:
    """Refuse a teacher with lazy parameters not yet initialised (``nn.LazyLinear`` never run):
    a trained teacher has its shapes, and freezing cannot switch off an uninitialised one."""
    lazy = [
        name
        for name, p in teacher.named_parameters()
        if isinstance(p, nn.parameter.UninitializedParameter)
    ]
    if lazy:
        raise ValueError(
            f"teacher has {len(lazy)} uninitialised lazy parameter(s) ({lazy[0]!r} first): a "
            "trained teacher has its shapes; run it once on an input (or load its weights) "
            "before distilling."
        )


class ModuleModes:
    """The ``training`` flag of every submodule of a module, recorded to be restored exactly.

    ``module.train(flag)`` would overwrite every submodule's own mode; :meth:`restore` gives each
    submodule the mode it had when recorded.
    """

    def __init__(self, module: nn.Module) -> None:
        self._modes = [(m, m.training) for m in module.modules()]

    def restore(self) -> None:
        # Pre-order (parents first), so a submodule's own train() override runs and the children
        # then get their own recorded mode back.
        for module, training in self._modes:
            module.train(training)
        for module, training in self._modes:
            module.training = training


@contextmanager
def tensors_given_back(module: nn.Module) -> Iterator[None]:
    """``module``'s parameters, their gradients and its buffers given back as they were after
    the block: the same tensor objects with their data (dtype and device), which a Trainer's precision
    (``"64-true"``, ``"bf16-true"``) or accelerator replaces when it casts or moves a module
    that holds it (a teacher inside ``AWDModule`` or ``DistillationModule``). Not copied: a
    frozen teacher's values do not change during a fit. For the library's own loops of fits
    (``awd_path``, ``select_temperature``), which the user calls as one function."""
    saved = [
        (
            child,
            dict(child._parameters),
            {name: p.data for name, p in child._parameters.items() if p is not None},
            # a gradient the user's own backward pass left: Module.to casts it with its
            # parameter, swapping the gradient object's data in place
            {
                name: (p.grad, p.grad.data)
                for name, p in child._parameters.items()
                if p is not None and p.grad is not None
            },
            dict(child._buffers),
        )
        for child in module.modules()
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for child, parameters, data, grads, buffers in saved:
                for name, parameter in parameters.items():
                    if parameter is not None:
                        parameter.data = data[name]
                        if name in grads:
                            grad, grad_data = grads[name]
                            grad.data = grad_data
                            parameter.grad = grad
                    child._parameters[name] = parameter
                for name, buffer in buffers.items():
                    child._buffers[name] = buffer


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode inside the block; every submodule's mode is given back."""
    modes = ModuleModes(module)
    module.eval()
    try:
        yield module
    finally:
        modes.restore()


class TeacherLifecycle:
    """Freeze a teacher and give it back exactly as recorded (see the module's docstring)."""

    def __init__(self) -> None:
        self._modes: ModuleModes | None = None
        self._flags: list[tuple[nn.Parameter, bool]] | None = None
        self._buffers: dict[str, Tensor] | None = None
        self._teacher: nn.Module | None = None

    @property
    def is_frozen(self) -> bool:
        """Whether a freeze is in effect (between :meth:`freeze` and :meth:`give_back`)."""
        return self._modes is not None

    def freeze(self, teacher: nn.Module) -> None:
        """Record modes and flags, then eval mode and no gradients. A second call is a no-op."""
        if self.is_frozen:
            return
        check_initialised(teacher)
        self._modes = ModuleModes(teacher)
        self._flags = [(p, p.requires_grad) for p in teacher.parameters()]
        # parameter by parameter: a TorchScript module has no requires_grad_()
        for param, _ in self._flags:
            param.requires_grad_(False)
        # a part made by torch.jit.trace keeps the mode it was traced in whatever eval() says:
        # its buffers are checked when it is given back (a scripted module reads its flag)
        traced = {
            id(buffer)
            for module in teacher.modules()
            if isinstance(module, torch.jit.TracedModule)
            for buffer in module.buffers()
        }
        self._buffers = {
            name: buffer.detach().clone()
            for name, buffer in teacher.named_buffers()
            if id(buffer) in traced
        } or None
        self._teacher = teacher
        teacher.eval()

    def give_back(self) -> None:
        """Restore every recorded mode and flag. A call without a freeze is a no-op."""
        if not self.is_frozen:
            return
        for param, flag in self._flags:
            param.requires_grad_(flag)
        self._modes.restore()
        if self._buffers is not None:
            _restore_buffers(self._teacher, self._buffers)
        self._modes = self._flags = self._buffers = self._teacher = None

    @contextmanager
    def frozen(self, teacher: nn.Module) -> Iterator[nn.Module]:
        """Frozen inside the block; given back after it unless a run's freeze was in effect."""
        if self.is_frozen:
            yield teacher
            return
        self.freeze(teacher)
        try:
            yield teacher
        finally:
            self.give_back()


def _restore_buffers(teacher: nn.Module, recorded: dict[str, Tensor]) -> None:
    """Give a TorchScript teacher its recorded buffers back when its forward passes changed
    them in eval mode, and say why: a module traced with ``torch.jit.trace`` in training mode
    runs batch normalisation on batch statistics (updating its running statistics) and
    dropout whatever its ``training`` flag says."""
    # the run may have moved or cast the teacher (a device, a true precision): compared and
    # given back in the buffer's own device and dtype
    now = {name: buffer for name, buffer in teacher.named_buffers() if name in recorded}
    changed = [
        name
        for name, buffer in now.items()
        if not torch.equal(buffer, recorded[name].to(buffer.device, buffer.dtype))
    ]
    if not changed:
        return
    with torch.no_grad():
        for name, buffer in now.items():
            buffer.copy_(recorded[name].to(buffer.device, buffer.dtype))
    warnings.warn(
        f"the teacher's buffers changed while it was frozen in eval mode ({len(changed)}: "
        f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): a TorchScript "
        "module made by torch.jit.trace in training mode keeps that mode, so its batch "
        "normalisation used batch statistics and its dropout dropped, and the soft labels of "
        "this run came from that. The buffers are given back as they were; trace the teacher "
        "in eval mode (teacher.eval() before torch.jit.trace) and run again.",
        UserWarning,
        stacklevel=2,
    )


def check_no_shared_parameters(
    teacher: nn.Module, trained: nn.Module, trained_name: str = "student"
) -> None:
    """Refuse a trained module that shares parameters or submodules with its teacher.

    A shared parameter would be frozen with the teacher: the trained module would silently stop
    learning it. A shared submodule would be in eval mode with the teacher.
    """
    if teacher is trained:
        raise ValueError(
            f"teacher must be a separate module from the {trained_name}; got the same object. "
            "Pass a copy (copy.deepcopy(model)): the teacher is frozen while the "
            f"{trained_name} trains."
        )
    teacher_params = {id(p) for p in teacher.parameters()}
    shared = [name for name, p in trained.named_parameters() if id(p) in teacher_params]
    if shared:
        raise ValueError(
            f"teacher must not share parameters with the {trained_name}; got {len(shared)} "
            f"shared parameter(s), e.g. {shared[:3]}. They would be frozen with the teacher: "
            "pass a copy of the teacher (copy.deepcopy(teacher))."
        )
    # A shared module without parameters (a Dropout, a BatchNorm without affine weights) would
    # be put in eval mode with the teacher for the whole fit: the trained module would silently
    # train without dropout and without updating running statistics. Torch's own stateless
    # layers (Flatten, ReLU, pooling) act alike in both modes and may be shared.
    teacher_modules = {id(m) for m in teacher.modules()}
    shared = []
    for name, module in trained.named_modules():
        if (
            id(module) in teacher_modules
            and _depends_on_mode(module)
            and not any(name.startswith(f"{outer}.") for outer, _ in shared)
        ):
            shared.append((name, module))
    if shared:
        listed = ", ".join(f"{name!r} ({type(m).__name__})" for name, m in shared[:3])
        raise ValueError(
            f"teacher must not share submodules with the {trained_name}; got {len(shared)} "
            f"shared submodule(s), e.g. {listed}. Freezing the teacher puts them in eval mode "
            f"for the whole fit, where the {trained_name} trains them: a Dropout would drop "
            "nothing, a BatchNorm would not update its running statistics, a layer of your "
            "own may read self.training. Give each model its own copy (copy.deepcopy)."
        )


_MODE_DEPENDENT = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.RNNBase,
    nn.MultiheadAttention,
)


def _depends_on_mode(module: nn.Module) -> bool:
    """Whether ``module`` (its own code, not its children's) may act otherwise in eval mode:
    torch's dropout, recurrent and attention layers, any module holding buffers (a norm layer's
    running statistics), and any class from outside ``torch.nn`` (its code may read
    ``self.training``)."""
    if isinstance(module, _MODE_DEPENDENT) or next(module.buffers(recurse=False), None) is not None:
        return True
    return not type(module).__module__.startswith("torch.nn.")


def check_teacher_logits(logits, inputs=None) -> None:
    """Refuse teacher logits holding NaN or +inf, or a row with no finite value (one reduction,
    read with the training step's other checks: see ``one_sync_per_step``).

    ``-inf`` entries are masked classes and allowed. When the logits fail and ``inputs`` is a
    floating tensor with non-finite values, the message blames the inputs.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"teacher output must be a tensor of logits; got {type(logits).__name__}: "
            f"{output_remedy(logits)}."
        )
    if not logits.is_floating_point():
        return

    def explain() -> None:
        bad = torch.isnan(logits) | torch.isposinf(logits)
        if logits.dim() >= 2:
            bad_rows = ~(logits > float("-inf")).any(dim=-1)
            ok = not bool(bad.any() | bad_rows.any())
        else:
            ok = not bool(bad.any())
        if ok:  # -inf entries alone: masked classes
            return
        if isinstance(inputs, Tensor) and inputs.is_floating_point():
            check_finite("inputs", inputs, where="in this batch")
        raise ValueError(
            "teacher output must be finite logits (-inf only for masked classes, at least one "
            "finite class per sample); got NaN, +inf or an all -inf row for finite inputs."
        )

    value_check(~torch.isfinite(logits).all(), explain)


def warn_if_probabilities(logits) -> None:
    """Warn when a teacher's outputs look like probabilities (every row non-negative and summing
    to 1): distillation softens logits, and ``softmax(p / T)`` of probabilities is nearly
    uniform, so the student would learn little of the teacher's ranking of the classes. Read
    with the step's other value checks (see ``one_sync_per_step``); called on the first
    teacher output."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        return
    if logits.shape[1] < 2 or logits.shape[0] < 1:
        return
    values = logits.detach().float()
    # a softmax in bfloat16 or float16 sums to 1 within its rounding of each class
    tolerance = max(1e-3, torch.finfo(logits.dtype).eps * logits.shape[1])
    looks_like = (values.min() >= 0) & ((values.sum(dim=1) - 1).abs().max() <= tolerance)

    def warn() -> None:
        warnings.warn(
            "the teacher's outputs look like probabilities (every row non-negative and summing "
            "to 1), where distillation expects logits: softening probabilities with the "
            "temperature gives nearly uniform targets. Give the teacher's logits (drop a final "
            "softmax) or their log (log-probabilities are logits up to a constant).",
            UserWarning,
            stacklevel=2,
        )

    value_check(looks_like, warn)


# ---------------------------------------------------------------- Lightning's eval-mode warning
# Lightning's words (lightning/pytorch/loops/fit_loop.py, _warn_if_modules_in_eval_mode), said
# on rank 0 when any of the LightningModule's named_modules() is in eval mode right before
# on_train_start.
_EVAL_MODE = "Found {} module(s) in eval mode at the start of training."
_EVAL_MODE_ADVICE = (
    " This may lead to unexpected behavior during training. If this is intentional,"
    " you can ignore this warning."
)


def quiet_teacher_in_eval_mode(module: nn.Module, teacher: nn.Module) -> QuietWarning | None:
    """Keep the frozen ``teacher``'s modules out of Lightning's eval-mode warning for ``module``.

    Called once the teacher is frozen. Returns None when no module of the teacher's is in eval
    mode (Lightning's warning, if any, is the user's). Otherwise silences Lightning's warning
    for the count it would give now (the returned filter; :meth:`~QuietWarning.stop` it after
    Lightning's check), and, when modules other than the teacher's are in eval mode too, says
    the same warning with their count and names. A mode changed after this call gives Lightning
    another count, which is not silenced.
    """
    teacher_modules = {id(m) for m in teacher.modules()}
    # as Lightning counts them: named_modules() gives a module held twice once
    in_eval = [(name, m) for name, m in module.named_modules() if not m.training]
    own = [name for name, m in in_eval if id(m) not in teacher_modules]
    if len(own) == len(in_eval):
        return None
    quiet = QuietWarning(_EVAL_MODE.format(len(in_eval)) + _EVAL_MODE_ADVICE)
    if own:
        listed = ", ".join(repr(name) for name in own[:3]) + (", ..." if len(own) > 3 else "")
        rank_zero_warn(
            _EVAL_MODE.format(len(own))[:-1] + f" ({listed}), not counting the teacher's "
            f"{len(in_eval) - len(own)}, frozen in eval mode on purpose." + _EVAL_MODE_ADVICE,
            category=PossibleUserWarning,
        )
    return quiet


# --------------------------------------------------------------------------- checkpoint policy
def drop_teacher(checkpoint: dict[str, Any], prefix: str = TEACHER_PREFIX) -> None:
    """Remove the teacher's weights from a checkpoint's ``state_dict``."""
    state = checkpoint.get("state_dict", {})
    for key in [k for k in state if k.startswith(prefix)]:
        del state[key]


def fill_teacher(checkpoint: dict[str, Any], teacher: nn.Module, prefix: str = TEACHER_PREFIX):
    """Give a checkpoint without the teacher the current teacher's weights (strict loading)."""
    state = checkpoint.setdefault("state_dict", {})
    if not any(k.startswith(prefix) for k in state):
        for key, value in teacher.state_dict().items():
            state[prefix + key] = value


class _GiveTeacherBackOnException(L.Callback):
    """Gives the teacher back when a run fails: LightningModules have no exception hook. Also
    ends the eval-mode warning's filter right after Lightning's check, whatever the module's
    own ``on_train_start`` does."""

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        _stop_quieting(pl_module, "_quiet_eval_warning")

    @override
    def on_exception(self, trainer, pl_module, exception) -> None:
        lifecycle = getattr(pl_module, "_teacher_lifecycle", None)
        if lifecycle is not None:
            lifecycle.give_back()
        _stop_quieting(pl_module)


def _stop_quieting(module, *names: str) -> None:
    """Remove the module's warning filters (``names``; by default all of them)."""
    for name in names or ("_quiet_val_warning", "_quiet_eval_warning"):
        quiet = getattr(module, name, None)
        if quiet is not None:
            quiet.stop()
            setattr(module, name, None)


class TeacherModuleMixin:
    """The teacher lifecycle for a ``LightningModule`` holding its teacher as ``self.teacher``.

    Put it first among the bases (``class M(TeacherModuleMixin, L.LightningModule)``), call
    ``self._init_teacher(keep_in_checkpoint)`` in ``__init__`` after ``super().__init__()`` and
    ``self.teacher = ...``, and call ``super()`` in any override of ``setup``, ``teardown``,
    ``train``, ``configure_callbacks``, ``on_save_checkpoint`` and ``on_load_checkpoint``.
    """

    def _init_teacher(self, keep_in_checkpoint: bool) -> None:
        self._teacher_lifecycle = TeacherLifecycle()
        self._keep_teacher_in_checkpoint = bool(keep_in_checkpoint)
        self._quiet_val_warning = None
        self._quiet_eval_warning = None

    def __setattr__(self, name: str, value: Any) -> None:
        # The Trainer records the running hook's name on the module before and after every hook
        # call (about 40 times a step), and nn.Module.__setattr__'s checks for parameters,
        # buffers and submodules take about 2 us each time. A string or None under a name that
        # holds none of those is set as nn.Module would set it, without the checks.
        held = self.__dict__
        if (
            (value is None or type(value) is str)
            and name not in held.get("_parameters", ())
            and name not in held.get("_buffers", ())
            and name not in held.get("_modules", ())
        ):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _frozen_teacher(self):
        """Context: the teacher frozen for a call made outside a run (no-op inside one)."""
        return self._teacher_lifecycle.frozen(self.teacher)

    @override
    def train(self, mode: bool = True):
        super().train(mode)
        lifecycle = getattr(self, "_teacher_lifecycle", None)
        # While frozen for a run, train() calls (a hook calling self.train()) do not reach it.
        if lifecycle is not None and lifecycle.is_frozen and self.teacher is not None:
            self.teacher.eval()
        return self

    @override
    def zero_grad(self, set_to_none: bool = True) -> None:
        """``nn.Module.zero_grad`` on every parameter but the teacher's.

        A Trainer clears the module's gradients before each run and validation; the teacher is
        the user's module, which this one never trains, so gradients it held (from the user's
        own backward pass) are left as they were.
        """
        teacher = getattr(self, "teacher", None)
        kept = set() if teacher is None else {id(p) for p in teacher.parameters()}
        for param in self.parameters():
            if param.grad is None or id(param) in kept:
                continue
            if set_to_none:
                param.grad = None
                continue
            if param.grad.grad_fn is not None:
                param.grad.detach_()
            else:
                param.grad.requires_grad_(False)
            param.grad.zero_()

    @override
    def setup(self, stage: str) -> None:
        _stop_quieting(self)
        super().setup(stage)
        if self.teacher is not None:
            self._teacher_lifecycle.freeze(self.teacher)
            # Lightning warns about modules in eval mode when training starts, and the frozen
            # teacher's are, on purpose: left out of that warning (the filter ends right after
            # the check, in the callback's on_train_start, or in teardown or on failure)
            if stage == "fit" and attached_trainer(self) is not None:
                self._quiet_eval_warning = quiet_teacher_in_eval_mode(self, self.teacher)

    @override
    def teardown(self, stage: str) -> None:
        super().teardown(stage)
        _stop_quieting(self)
        self._teacher_lifecycle.give_back()

    @override
    def configure_callbacks(self):
        callbacks = list(super().configure_callbacks() or [])
        trainer = attached_trainer(self)
        # The same Trainer running again (validate after fit) already holds the callback; a new
        # instance would make Lightning announce that it replaces it.
        held = trainer is not None and any(
            isinstance(c, _GiveTeacherBackOnException) for c in trainer.callbacks
        )
        if not held:
            callbacks.append(_GiveTeacherBackOnException())
        # Lightning checks the loops right after this hook and warns when validation_step has
        # no val_dataloader; validating is optional here, so a fit without validation data is
        # intended. The filter is removed in setup (or on failure), right after that check.
        _stop_quieting(self)
        self._quiet_val_warning = QuietMissingValLoader()
        return callbacks

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.teacher is not None and not self._keep_teacher_in_checkpoint:
            drop_teacher(checkpoint)

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.teacher is not None:
            fill_teacher(checkpoint, self.teacher)
        else:  # the student alone: a teacher kept in the checkpoint has no module to go to
            drop_teacher(checkpoint)
