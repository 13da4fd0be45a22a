"""``KnowledgeDistillation``: distil a frozen teacher into an existing LightningModule."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from typing_extensions import override

from lightning_distill._batch import (
    STUDENT_FIX,
    TEACHER_FIX,
    InputWatch,
    batch_targets,
    own_container,
    unpack_batch,
)
from lightning_distill._logging import StopStepValues, logs_step_values
from lightning_distill._teacher import (
    TeacherLifecycle,
    check_no_shared_parameters,
    check_teacher_logits,
    warn_if_probabilities,
)
from lightning_distill._validation import (
    check_real,
    keeps_its_type,
    one_sync_per_step,
    settle_value_checks,
)
from lightning_distill.hooks import resolve_module_names
from lightning_distill.kd._callback_features import CallbackFeatures
from lightning_distill.kd.constraints import (
    Constraint,
    _soft_trees,
    add_constraint_terms,
    check_constraints,
    check_constraints_on,
    student_penalty_terms,
)
from lightning_distill.kd.losses import (
    _check_fraction,
    _check_temperature,
    _distillation_terms,
    check_labels_or_teacher_alone,
    queue_logit_checks,
)
from lightning_distill.kd.module import _as_feature_specs, _stable_repr

__all__ = ["KnowledgeDistillation"]


_STUDENT_FIX = STUDENT_FIX + (
    " A write to another tensor sharing their storage counts too (labels sliced from the same "
    "tensor as the inputs, e.g. seq[:, -1] beside seq[:, :-1], written in place after the "
    "forward): clone one of them."
)


@torch.compiler.disable  # runs as Python in a compiled module too: its records are the check's
def _single_input(args: tuple, kwargs: dict):
    """The forward call's one input: its one positional argument (keyword options beside it
    are the forward's own), or its one keyword argument; None for none or several."""
    if len(args) == 1:
        return args[0]
    if not args and len(kwargs) == 1:
        return next(iter(kwargs.values()))
    return None


def _record_inputs(records: list, args: tuple, kwargs: dict) -> None:
    """The forward's inputs as it got them: its tensors' version counters, and its dicts and
    lists copied (the teacher is given these, whatever the forward did to them)."""
    copied = {name: own_container(value) for name, value in kwargs.items()}
    records.append((InputWatch((args, kwargs)), tuple(map(own_container, args)), copied))


_ABSENT = object()


def _one_input_error(where: str, args: tuple, kwargs: dict) -> ValueError:
    """The constraints and feature methods run the models again on the forward's one input."""
    given = f"{len(args)} positional argument(s)"
    if kwargs:
        given += f" and keyword(s) {sorted(kwargs)}"
    return ValueError(
        f"KnowledgeDistillation's constraints and feature methods run the models again on the "
        f"input of the module's {where}, so it must be called with that one input (self(x) or "
        f"self(x=x)); got {given}. Call it with the input alone (give other values to the "
        "module as attributes), or leave out constraints and features."
    )


def _takes_batch_index(step) -> bool:
    """Whether Lightning passes ``batch_idx`` to this (bound) ``training_step``: it names it,
    takes two positional arguments or more, or takes ``*args``."""
    parameters = inspect.signature(step).parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (
        any(p.name == "batch_idx" for p in parameters)
        or len(positional) >= 2
        or any(p.kind == p.VAR_POSITIONAL for p in parameters)
    )


def _manual_optimization_error(pl_module: L.LightningModule) -> ValueError:
    """Under manual optimisation Lightning ignores the loss that ``training_step`` returns."""
    return ValueError(
        "KnowledgeDistillation needs automatic optimisation: it replaces the loss that "
        f"training_step returns, but {type(pl_module).__name__} sets "
        "automatic_optimization = False. Compute lightning_distill.kd.losses."
        "distillation_loss in your manual step instead."
    )


class _Captured(BaseException):
    """Stops a ``training_step`` at its forward call, carrying the call's arguments (a
    ``BaseException``: a step's own ``except Exception`` does not catch it)."""

    def __init__(self, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.args, self.kwargs = args, kwargs


@contextlib.contextmanager
def _muted_logging(module: L.LightningModule):
    """``module.log`` and ``module.log_dict`` do nothing within (instance attributes the
    module had are given back)."""
    saved = {name: module.__dict__.get(name, _ABSENT) for name in ("log", "log_dict")}
    module.__dict__["log"] = module.__dict__["log_dict"] = lambda *args, **kwargs: None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _ABSENT:
                module.__dict__.pop(name, None)
            else:
                module.__dict__[name] = value


@contextlib.contextmanager
def _record_enclosing_calls(module: nn.Module, source: nn.Module):
    """Within: ``(name, input tensors)`` of each call of a submodule of ``module`` (``module``
    itself left out) that holds ``source``. Submodules that take no hooks (TorchScript) are not
    watched."""
    holders = [
        (name, sub)
        for name, sub in module.named_modules()
        if sub is not module and sub is not source and any(s is source for s in sub.modules())
    ]
    called: list = []
    handles = []

    def record(name, args, kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        called.append((name, tensors))

    try:
        for name, sub in holders:
            try:
                handles.append(
                    sub.register_forward_pre_hook(
                        lambda m, a, kw, name=name: record(name, a, kw), with_kwargs=True
                    )
                )
            except RuntimeError:  # a scripted module takes no Python hooks
                continue
        yield called
    finally:
        for handle in handles:
            handle.remove()


def _warn_if_inner_layer(logits_from: str, called: list, inputs: tuple, kwargs: dict) -> None:
    """Warn when the ``logits_from`` submodule is a layer inside a network that was itself
    called in the step on other inputs than the layer's: the teacher is then run on what that
    network computed before the layer (the student's hidden features), not on the batch's
    inputs. A layer that reads its network's own input (the first of a ``Sequential``, a
    wrapper that passes its input through) is not one."""
    given = [a for a in (*inputs, *kwargs.values()) if isinstance(a, Tensor)]
    inner = [name for name, tensors in called if not any(t is g for t in tensors for g in given)]
    if inner:
        outer = max(inner, key=len)  # the innermost network holding it
        warnings.warn(
            f"logits_from={logits_from!r} names a layer inside {outer!r}, which was itself called "
            f"in this training step: the teacher, the constraints and the feature methods are run "
            f"on what {logits_from!r} is given, that is what {outer!r} computed before it, not on "
            f"the batch's inputs. Name the network that takes the inputs and returns the logits "
            f"(logits_from={outer!r}) unless the teacher reads those features.",
            UserWarning,
            stacklevel=2,
        )


def _binds(teacher: nn.Module, inputs, keywords) -> bool:
    """Whether the teacher's forward takes these arguments (True when its signature cannot be
    read, a TorchScript module's say: its own error is then left as it is)."""
    try:
        inspect.signature(teacher.forward).bind(*inputs, **keywords)
    except TypeError:
        return False
    except ValueError:  # no signature to read
        return True
    return True


def _check_crd_index(specs, targets_from, index_from) -> None:
    """CRD reads each sample's index from the batch: with batches laid out for ``targets_from``,
    ``index_from`` must say where."""
    if targets_from is not batch_targets and index_from is None:
        if any(spec.loss == "crd" for spec in specs):
            raise ValueError(
                "index_from must be given with loss='crd' when targets_from is "
                "given: that method reads each sample's position in the data set from the "
                "batch, and a batch laid out for targets_from may hold something else at the "
                "default place (batch[2]); got index_from=None."
            )


def _check_teacher(teacher) -> None:
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module; got {type(teacher).__name__}.")


def _check_logits_from(logits_from) -> None:
    if logits_from is not None and not isinstance(logits_from, str):
        raise TypeError(f"logits_from must be a submodule name (str) or None; got {logits_from!r}.")


class KnowledgeDistillation(L.Callback):
    r"""Make an existing LightningModule train on the distillation loss.

    The module is left unchanged: its ``forward`` must return the logits ``[batch, classes]``,
    its ``training_step`` must call it (``self(x)``) once and return its loss (a tensor or a
    dict with ``"loss"``), and it must use automatic optimisation. During ``fit`` the callback
    wraps ``training_step``: it records the inputs and output of that forward call, runs the
    frozen teacher on the same inputs (a forward or training step that wrote those inputs in
    place first is refused: the teacher would read other inputs), and returns

    .. math:: (1 - \alpha)\,\mathrm{CE}_\varepsilon(y, s) + \alpha\,T^2\,\mathrm{KL}(p_t^T \| p_s^T)

    in place of the module's own loss, which is what
    :class:`~lightning_distill.DistillationModule` computes, in the training loop only (a
    ``validation_step`` that calls ``training_step`` gets the module's own loss, as under
    ``trainer.validate``, without running the teacher). The wrapper is removed in
    ``teardown``, or when the fit fails. It logs ``train/loss_ce``, ``train/loss_kd`` and
    ``train/loss_total``, the loss the optimizer steps on (what the module's own ``training_step``
    returns is its labels' term only).
    As in the module, tensors stay on the module's device and one boolean per step (the
    teacher logits' finiteness check) comes back to the host.

    Parameters
    ----------
    teacher : torch.nn.Module
        Frozen when the fit starts (eval mode, no gradient) and given back as it was then,
        every submodule's mode and every ``requires_grad`` flag, after the fit, also a failed
        one (the lifecycle of ``lightning_distill._teacher``); moved to the module's device.
        Cast to the module's floating dtype for the fit when they differ (``precision=
        "64-true"``, a ``.double()`` module) and given back its own tensors after it, bit for
        bit. It is not part of the module, so never in its checkpoints.
    temperature : float, default=4.0
    alpha : float in [0, 1], default=0.9
        Weight of the KD term; ``T^2`` is kept for every alpha.
    label_smoothing : float in [0, 1], default=0.0
        Label smoothing of the hard-label term.
    logits_from : str, optional
        Name of the submodule (as in ``named_modules()``) whose output is the logits, for a
        ``training_step`` that calls an inner network instead of ``self(x)``. The teacher, the
        constraints and the feature methods are run on **that submodule's inputs**, so it is
        normally the whole network, called on the batch's inputs (``self.net(x)``), not its
        last layer: a layer inside a network that was itself called in the step is warned
        about at the first step (a layer fed by ``F.relu`` or other functions outside any
        submodule is not seen).
    targets_from : callable, optional
        ``batch -> targets``; by default ``batch[1]`` of a tuple batch, or the first of the keys
        ``"targets"``, ``"target"``, ``"labels"``, ``"label"``, ``"y"`` of a dict batch (the
        keys :class:`~lightning_distill.DistillationModule` reads too). With ``alpha=1`` the
        batch may hold no labels (a tensor, an ``(inputs,)`` tuple, a dict without a target
        key), and a ``targets_from`` may return None: the loss is then the KD term alone. The
        feature methods that read labels (SSKD) read these.
    index_from : callable, optional
        ``batch -> index``, each sample's position in the data set, for CRD's memory bank; by
        default ``batch[2]`` of a tuple batch or the key ``"index"`` (or ``"idx"``) of a dict
        batch. Required with CRD when ``targets_from`` is given (a batch of another layout).
    constraints : list of Monotonic, L1Sparsity or other Constraint, optional
        Penalties on the module (or the ``logits_from`` submodule) evaluated on the inputs of
        its forward call, added to the loss as in
        :class:`~lightning_distill.DistillationModule` and logged as
        ``train/constraint_<name>``.
    features : list of FeatureDistillation, optional
        Feature-distillation pairs as in :class:`~lightning_distill.DistillationModule`, any
        ``loss`` (``"attention"``, ``"hint"``, ``"ft"``, ``"crd"``, ``"sskd"``, ``"rkd"``,
        ``"pkt"`` or a callable); student layers are named as in the LightningModule's
        ``named_modules()``. Their weighted terms are added to the loss and logged as
        ``train/loss_feature/<name>`` (their sum as ``train/loss_feature``). Trainable parts
        (heads, translator, regressors) cannot join the module's optimizer: they have an Adam
        optimizer of their own with learning rate ``feature_lr``, stepped with the module's
        optimizer (once per ``accumulate_grad_batches`` batches). Its steps follow the
        Trainer's: under ``"16-mixed"`` the AMP scaler unscales their gradients and skips the
        step when they are not finite (an overflow there lowers the scale, as one in the
        module does); ``gradient_clip_val`` and ``gradient_clip_algorithm`` clip their
        gradients, as a group of their own (by ``"norm"``: the norm of these parts' gradients
        alone, not joined with the module's; a module's own ``configure_gradient_clipping``
        does not reach them). Not driven by the module's learning-rate scheduler. They,
        CRD's bank and that optimizer's state are in the callback's ``state_dict`` (so in
        checkpoints). First stages (FT's paraphraser, SSKD's teacher head) run in
        ``on_train_start`` over the fit's training data, once, on the inputs the module's
        forward (or the ``logits_from`` submodule) is given for each batch: the module's
        ``training_step`` is run up to that call (under ``no_grad``, its logging muted, the
        module's buffers given back afterwards; its other code before the call, counters or
        random draws, runs once per first-stage batch), so inputs it prepares (scaled,
        reshaped) reach the first stage as they reach the teacher later; each of their epochs
        reads as
        many batches as the fit's epochs (``trainer.num_training_batches``: after
        ``limit_train_batches``, ``overfit_batches``, ``fast_dev_run``), and under
        ``fast_dev_run`` they run one epoch.
    example_input : Tensor, optional
        A batch of inputs giving the features' shapes; required for ``"hint"``, ``"ft"``,
        ``"crd"`` and ``"sskd"``.
    feature_lr : float, default=1e-3
        Learning rate of the feature parts' Adam. Its ``eps`` (1e-8) is 0 in float16: trainable
        parts under ``Trainer(precision="16-true")`` are refused; ``"16-mixed"`` and
        ``"bf16-true"`` train them.

    Examples
    --------
    >>> from torch import nn
    >>> callback = KnowledgeDistillation(nn.Linear(4, 3), temperature=2.0, alpha=0.5)
    >>> trainer = L.Trainer(max_epochs=10, callbacks=[callback], logger=False)  # doctest: +SKIP
    """

    def __init__(
        self,
        teacher: nn.Module,
        temperature: float = 4.0,
        alpha: float = 0.9,
        *,
        label_smoothing: float = 0.0,
        logits_from: str | None = None,
        targets_from: Callable[[Any], Tensor] | None = None,
        index_from: Callable[[Any], Tensor] | None = None,
        constraints: list[Constraint] | None = None,
        features: list | None = None,
        example_input: Tensor | None = None,
        feature_lr: float = 1e-3,
    ) -> None:
        _check_teacher(teacher)
        _check_logits_from(logits_from)
        self.targets_from = targets_from  # each checked by __setattr__
        self.index_from = index_from
        self.teacher = teacher
        self.temperature = temperature  # these three checked by __setattr__
        self.alpha = alpha
        self.label_smoothing = label_smoothing
        self.logits_from = logits_from  # these three checked by __setattr__ too
        self.constraints = constraints
        specs, _ = _as_feature_specs(features)
        _check_crd_index(specs, self.targets_from, self.index_from)
        if example_input is not None and not isinstance(example_input, Tensor):
            raise TypeError(
                f"example_input must be a torch.Tensor or None; got {type(example_input).__name__}."
            )
        feature_lr = check_real("feature_lr", feature_lr, minimum=0, exclusive_minimum=True)
        self._features = CallbackFeatures(specs, example_input, feature_lr) if specs else None
        self._teacher_lifecycle = TeacherLifecycle()
        self._wrapped_module: L.LightningModule | None = None
        # the module's own instance attribute training_step, if any, given back after the fit
        self._instance_step: Any = _ABSENT
        # whether the next wrapped step is the fit's first (its logits_from input is checked)
        self._first_step = True
        # whether the teacher's outputs were looked at for probabilities (once per callback)
        self._teacher_outputs_seen = False
        # whether the last wrapped training_step returned None (no loss, no backward)
        self._last_step_skipped = False
        # the train/ values (detached) and batch size of the epoch's last step that distilled:
        # logged again on a logging step the module skips, as values logged every step would be
        self._last_logged: tuple[dict[str, Tensor], int] | None = None
        # the step's values, logged from the module's on_train_batch_end at a stop set after
        # the step (see _wrap_batch_end)
        self._stop_values = StopStepValues()
        # the module's own instance attribute on_train_batch_end, if any, given back after the fit
        self._instance_batch_end: Any = _ABSENT
        # the teacher's own floating tensors while it runs cast to the module's dtype
        self._uncast: list[tuple[nn.Module, str, bool, Tensor]] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # set after construction too: a non-callable failed in the training step with
        # "'int' object is not callable", and None (the constructor's default) as well
        if name == "targets_from":
            if value is not None and not callable(value):
                raise TypeError(
                    f"targets_from must be callable(batch) -> targets or None; got {value!r}."
                )
            value = batch_targets if value is None else value
        elif name == "index_from" and value is not None and not callable(value):
            raise TypeError(f"index_from must be callable(batch) -> index or None; got {value!r}.")
        elif name == "temperature":
            if isinstance(value, torch.nn.Module):  # a LearnedTemperature needs the module
                raise TypeError(
                    "temperature must be a real number for the callback; got a "
                    f"{type(value).__name__}: a learned temperature is a parameter trained "
                    "with the student, which DistillationModule(temperature="
                    "LearnedTemperature()) holds and optimises."
                )
            value = _check_temperature(value)
        elif name in ("alpha", "label_smoothing"):
            # set after construction, a value out of [0, 1] trained against a weight of the
            # wrong sign (alpha) or failed in the step naming the loss function's argument
            value = _check_fraction(name, value)
        elif name == "teacher":  # a non-module failed in setup with Python's message
            _check_teacher(value)  # ("'int' object has no attribute 'parameters'")
        elif name == "logits_from":
            _check_logits_from(value)
        elif name == "constraints":  # a list of its own, as the constructor keeps (a bad
            # one failed in setup or the step with Python's message, "'int' object is not
            # iterable")
            value = check_constraints(value)
        # the two together (CRD's index_from beside a targets_from) are checked when a fit
        # starts: set one after the other, either may come first
        super().__setattr__(name, value)

    # ----------------------------------------------------------------- set-up / teardown
    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not pl_module.automatic_optimization:
            raise _manual_optimization_error(pl_module)
        if self._features is not None:  # targets_from and index_from as they are now
            _check_crd_index(self._features.specs, self.targets_from, self.index_from)
        self._last_logged = None
        self._stop_values.reset()
        from lightning_distill.kd.module import DistillationModule

        if isinstance(pl_module, DistillationModule) and pl_module.teacher is not None:
            raise ValueError(
                "KnowledgeDistillation replaces the loss that training_step returns, and the "
                f"trained module is a {type(pl_module).__name__}, which distils its own "
                "teacher: that teacher's terms would be dropped without a word. Distil one "
                "teacher per fit: pass this teacher to the module, or train a plain "
                "LightningModule with the callback."
            )
        wrapped = getattr(pl_module.__dict__.get("training_step"), "_distilled_by", None)
        if wrapped is self:  # a fit that ended without teardown: start from the module's own
            self._restore()
        elif wrapped is not None:
            raise ValueError(
                "KnowledgeDistillation replaces the loss that training_step returns, and "
                f"{type(pl_module).__name__}'s training_step is already wrapped by another "
                "KnowledgeDistillation callback: one of the two teachers would be dropped "
                "without a word. Distil one teacher per fit (one KnowledgeDistillation callback)."
            )
        if "dataloader_iter" in inspect.signature(pl_module.training_step).parameters:
            raise ValueError(
                "KnowledgeDistillation reads each batch that training_step is given (its labels, "
                "and the inputs the teacher is run on), so training_step must take the batch; "
                f"{type(pl_module).__name__}.training_step takes dataloader_iter and fetches "
                "its batches itself."
            )
        if any(m is self.teacher for m in pl_module.modules()):
            raise ValueError(
                "teacher must be a separate module from the trained module; got the module or "
                "one of its submodules. Pass a copy (copy.deepcopy(model)): the teacher is frozen "
                "while the module trains."
            )
        check_no_shared_parameters(self.teacher, pl_module, "trained module")
        source = pl_module
        if self.logits_from is not None:
            source = resolve_module_names(pl_module, [self.logits_from], argument="logits_from")[
                self.logits_from
            ]
        check_constraints_on(self.constraints, source)
        self._teacher_lifecycle.freeze(self.teacher)
        if self._features is not None:
            self._features.setup(
                pl_module,
                self.teacher,
                source,
                trainer.precision_plugin.convert_module,
                trainer.precision,
            )
        self._wrap_training_step(pl_module, source)

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the Trainer has set the module's precision by now: the teacher's dtype, once per fit
        self._match_dtype(pl_module)
        if self._features is not None:
            self._match_device(pl_module.device)
            self._features.methods.to(pl_module.device)
            # Built in every process from its own random state (DDP broadcasts the module's
            # parameters, not these): rank 0's start for all, so that the averaged gradients
            # keep them equal and the run is the one-process run.
            self._features.broadcast_from_rank_zero(trainer)
            # the step's code before its forward runs once per first-stage batch: the
            # module's buffers (a preprocessing layer's running statistics) are given back
            # as they were, so that the first stage leaves the module as it found it
            pending = self._features.has_pending_first_stage()
            # by name: a step may rebind a buffer (self.seen = self.seen + n), not only
            # update it in place
            buffers = (
                {name: b.detach().clone() for name, b in pl_module.named_buffers()}
                if pending
                else {}
            )
            try:
                self._features.pretrain(
                    trainer,
                    self.teacher,
                    pl_module.device,
                    forward_input=self._forward_input_of(trainer, pl_module),
                )
            finally:
                for name, kept in buffers.items():
                    owner, _, attribute = name.rpartition(".")
                    setattr(pl_module.get_submodule(owner), attribute, kept)

    def _forward_input_of(self, trainer: L.Trainer, pl_module: L.LightningModule):
        """``batch -> input``: what the module's ``training_step`` gives its forward (or the
        ``logits_from`` submodule) for a loader batch, moved as the Trainer moves batches (the
        data module's batch hooks where it overrides them, else the module's); the step runs up
        to that call only (a pre-hook stops it there), under ``no_grad``, its ``log`` and
        ``log_dict`` calls muted. None when the step returns without the call. The step's code
        before the call runs each time (counters, random draws)."""
        source, step = self._source, self._original_step
        takes_index = _takes_batch_index(step)

        def stop(module, args, kwargs):
            raise _Captured(args, kwargs)

        datamodule = getattr(trainer, "datamodule", None)

        def hook(name):
            # as Lightning picks a batch hook: the data module's when it overrides it
            if datamodule is not None and getattr(type(datamodule), name, None) is not getattr(
                L.LightningDataModule, name
            ):
                return getattr(datamodule, name)
            return getattr(pl_module, name)

        def forward_input(batch):
            batch = trainer.precision_plugin.convert_input(batch)
            batch = hook("on_before_batch_transfer")(batch, 0)
            batch = hook("transfer_batch_to_device")(batch, pl_module.device, 0)
            batch = hook("on_after_batch_transfer")(batch, 0)
            handle = source.register_forward_pre_hook(stop, with_kwargs=True)
            try:
                with torch.no_grad(), _muted_logging(pl_module):
                    step(batch, 0) if takes_index else step(batch)
            except _Captured as captured:
                value = _single_input(captured.args, captured.kwargs)
                if value is None:
                    raise _one_input_error(self._where, captured.args, captured.kwargs) from None
                return value
            finally:
                handle.remove()
            return None  # the step skipped this batch

        return forward_input

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning clears the step values at the end of each epoch: none is written again
        self._last_logged = None
        self._stop_values.reset()

    @override
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # With the module's optimizer: once per accumulated group of batches. Lightning calls
        # this hook after unscaling the module's gradients and before clipping them, stepping
        # through the scaler and updating its scale; the heads' optimizer goes through the same
        # scaler (unscale_ + step before that update) and the same clipping settings.
        if self._features is not None:
            scaler = getattr(trainer.precision_plugin, "scaler", None)
            self._features.step(
                scaler=scaler,
                clip_val=trainer.gradient_clip_val,
                clip_algorithm=trainer.gradient_clip_algorithm,
                # Lightning skips the step (and the scaler's update) when the closure's
                # training_step returned None under a scaler
                skip=scaler is not None and self._last_step_skipped,
            )

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips teardown when the fit fails: give module and teacher back here too.
        self._restore()

    def _restore(self) -> None:
        if self._wrapped_module is not None:
            # The wrapper is an instance attribute: deleting it uncovers the class's method, or
            # the module's own instance attribute is given back
            for name, kept in (
                ("training_step", self._instance_step),
                ("on_train_batch_end", self._instance_batch_end),
            ):
                if kept is _ABSENT:
                    self._wrapped_module.__dict__.pop(name, None)
                else:
                    self._wrapped_module.__dict__[name] = kept
            self._wrapped_module = None
            self._instance_step = self._instance_batch_end = _ABSENT
        self._uncast_teacher()
        self._teacher_lifecycle.give_back()

    # ----------------------------------------------------------------- the wrapper
    def _wrap_training_step(self, pl_module: L.LightningModule, source: nn.Module) -> None:
        original = pl_module.training_step
        self._original_step = original
        self._source = source
        where = self._where
        self._first_step = True

        def training_step(*args, **kwargs):
            if not pl_module.trainer.training:
                # called from the module's own validation_step (or another evaluation hook)
                # during the fit: its own loss, as trainer.validate computes it; the teacher is
                # not run and no train/ value is logged from there
                return original(*args, **kwargs)
            if not pl_module.automatic_optimization:
                # switched off after setup (in on_fit_start, on_train_start): Lightning would
                # ignore the distilled loss returned below and train on the module's own
                raise _manual_optimization_error(pl_module)
            batch = args[0] if args else kwargs["batch"]
            calls: list = []  # the forward's outputs (its inputs are in given)
            given: list = []
            before = source.register_forward_pre_hook(
                lambda module, a, kw: _record_inputs(given, a, kw), with_kwargs=True
            )
            handle = source.register_forward_hook(lambda module, a, out: calls.append(out))
            # on the first step: was a network holding the logits_from submodule called?
            enclosing = (
                _record_enclosing_calls(pl_module, source)
                if self._first_step and source is not pl_module
                else contextlib.nullcontext([])
            )
            features = self._features
            student_features = None
            trees = _soft_trees(source)  # one walk of the student's modules a step
            for tree in trees:  # a call before the step is no part of the batch's penalty
                tree.pop_balance_penalty()
            try:
                hooks = features.capture_student() if features else contextlib.nullcontext()
                with hooks as sh, enclosing as called:
                    output = original(*args, **kwargs)
                    if features is not None and output is not None and len(calls) == 1:
                        student_features = features.student_features(sh)
            finally:
                handle.remove()
                before.remove()
            # the callback's value checks are read in one host sync (see one_sync_per_step);
            # the module's own step ran outside, its checks as it makes them
            with one_sync_per_step():
                self._last_step_skipped = output is None
                if output is None:  # the module skipped this batch
                    # On a step the loggers write, the values of the epoch's last step that
                    # distilled: logged on every step, they would be the ones written here (as
                    # Lightning writes a value the module logs on its other steps only); a
                    # module that skips exactly the logging steps would otherwise have no
                    # train/ value written all epoch.
                    if self._last_logged is not None:
                        names, batch_size = self._last_logged
                        log_now = logs_step_values(pl_module.trainer)
                        if log_now:
                            self._log(pl_module, names, batch_size)
                        self._keep_for_a_stop(names, log_now, batch_size)
                    return None
                if len(calls) != 1:
                    raise ValueError(
                        f"KnowledgeDistillation needs training_step to call the module's {where} "
                        f"exactly once per batch to find the logits; it was called {len(calls)} "
                        "times. Call self(x) once, or name the submodule that outputs the logits "
                        "with logits_from=..."
                    )
                logits = calls[0]
                watch, inputs, input_kwargs = given[0]
                first_step, self._first_step = self._first_step, False
                if first_step and self.logits_from is not None:
                    _warn_if_inner_layer(self.logits_from, called, inputs, input_kwargs)
                if not isinstance(logits, Tensor) or logits.dim() != 2:
                    got = (
                        tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                    )
                    raise ValueError(
                        f"KnowledgeDistillation needs the module's {where} to return logits of shape "
                        f"[batch, classes]; it returned {got}. Use logits_from=... to name the "
                        "submodule that outputs the logits"
                    )
                # the one input the constraints and feature methods run the models on again
                model_input = _single_input(inputs, input_kwargs)
                if model_input is None and (self.constraints or features is not None):
                    raise _one_input_error(where, inputs, input_kwargs)
                if self.targets_from is batch_targets:  # labels optional for the teacher alone
                    targets = batch_targets(batch, optional=True)
                else:
                    targets = self.targets_from(batch)
                check_labels_or_teacher_alone(targets, self.alpha)
                self._match_device(logits.device)
                watch.check(
                    f"{type(pl_module).__name__}'s {where} or training_step",
                    "the teacher, which is given the same inputs after it,",
                    fix=_STUDENT_FIX,
                )
                try:
                    if features is None:
                        with torch.no_grad():
                            teacher_logits = self.teacher(*inputs, **input_kwargs)
                    else:
                        teacher_logits, teacher_features = features.teacher_forward(
                            self.teacher, inputs, input_kwargs
                        )
                except RuntimeError as error:
                    # torch's shape or dtype complaint, deep in the teacher, on the inputs of an
                    # inner submodule's call at the first step; out of memory and the like, and
                    # later steps' errors, keep their type
                    if not first_step or self.logits_from is None or keeps_its_type(error):
                        raise
                    raise ValueError(
                        f"the teacher failed on the inputs of submodule {self.logits_from!r}'s "
                        "call (logits_from) at the fit's first step: the teacher is run on what "
                        "that submodule is given, so it should be the network called on the "
                        f"batch's inputs. The teacher said: {error}"
                    ) from error
                except TypeError as error:
                    if not input_kwargs or _binds(self.teacher, inputs, input_kwargs):
                        raise  # the teacher's own error, not the call's keywords
                    raise TypeError(
                        f"KnowledgeDistillation calls the teacher as the module's {where} was "
                        f"called, keywords included ({sorted(input_kwargs)}); the teacher "
                        f"refused them: {error}. Give options of the module's own to it as "
                        "attributes rather than forward keywords, or wrap the teacher in a "
                        "module that takes them."
                    ) from error
                if self.constraints or features is not None:
                    watch.check(
                        "teacher",
                        "the constraints and feature methods, which run after it,",
                        fix=TEACHER_FIX,
                    )
                check_teacher_logits(teacher_logits, model_input)
                if not self._teacher_outputs_seen:
                    self._teacher_outputs_seen = True
                    warn_if_probabilities(teacher_logits)
                own = feature_terms = None
                if features is not None:
                    # the student's own penalties (a soft tree's), read before the feature
                    # methods run it again (SSKD's rotated copies)
                    own = student_penalty_terms(source, trees)
                    # The feature losses run before the loss below, their checks and the
                    # logits' and labels' read together (the loss does not check them again):
                    # a method reads them all before it changes state from the batch (CRD's
                    # banks), and a step without one reads them once, as a step without
                    # features does. A callable loss (the user's code, which may keep state)
                    # gets the batch once they are read.
                    queue_logit_checks(
                        logits, teacher_logits, targets, settle=features.settle_before_terms
                    )
                    feature_terms = features.terms(
                        student_features,
                        teacher_features,
                        targets,
                        lambda: self._batch_index(batch),
                        model_input,
                        source,
                        self.teacher,
                        teacher_logits.shape[0],
                    )
                total, ce, kd = _distillation_terms(
                    logits,
                    teacher_logits,
                    targets,
                    self.temperature,
                    self.alpha,
                    self.label_smoothing,
                    values_checked=features is not None,
                )
                terms = add_constraint_terms(
                    {"loss": total, "loss_kd": kd}
                    if ce is None
                    else {"loss": total, "loss_ce": ce, "loss_kd": kd},
                    self.constraints,
                    source,
                    model_input,
                    own=own,
                    trees=trees,
                )
                total = terms.pop("loss")
                if feature_terms is not None:
                    feature_loss = sum(feature_terms.values())
                    total = total + feature_loss
                    terms["loss_feature"] = feature_loss
                    terms.update({f"loss_feature/{k}": v for k, v in feature_terms.items()})
                # before anything is logged: values the checks refuse must not get that far
                settle_value_checks()
                # each self.log costs about a millisecond (Lightning's result collection): the terms
                # are logged on the steps whose values the loggers write, as DistillationModule does
                # the total the optimizer steps on: the module's own loss is its labels' term
                logged = {"loss_total": total, **terms}
                names = {f"train/{name}": value.detach() for name, value in logged.items()}
                self._last_logged = (names, logits.shape[0])
                log_now = logs_step_values(pl_module.trainer)
                if log_now:
                    self._log(pl_module, names, logits.shape[0])
                self._keep_for_a_stop(names, log_now, logits.shape[0])
                if isinstance(output, dict):
                    return {**output, "loss": total}
                return total

        # Lightning reads the step's signature (whether to pass batch_idx) through __wrapped__
        training_step.__wrapped__ = inspect.unwrap(original)
        training_step._distilled_by = self
        self._instance_step = pl_module.__dict__.get("training_step", _ABSENT)
        pl_module.training_step = training_step
        self._wrapped_module = pl_module
        self._wrap_batch_end(pl_module)

    def _keep_for_a_stop(self, names: dict[str, Tensor], logged: bool, batch_size: int) -> None:
        """Keep the step's values for a stop set after it (see :meth:`_wrap_batch_end`)."""
        keys = tuple(names)
        self._stop_values.keep(keys, list(names.values()), keys if logged else (), batch_size)

    def _wrap_batch_end(self, pl_module: L.LightningModule) -> None:
        """Log the step's values from the module's ``on_train_batch_end`` where a stop was set
        after the step.

        A callback's ``on_train_batch_end`` that sets ``trainer.should_stop`` (``Timer``, which
        ``max_time`` adds, or a user's callback) makes the loggers write the step values after
        that batch, including on a step that did not log them; this callback's own hook may run
        before the one that stops, in the order of the Trainer's callbacks. Lightning calls the
        module's hook after every callback's: wrapped for the fit (an instance attribute, given
        back by :meth:`_restore` as the wrapped ``training_step`` is), it logs them there.
        """
        original = pl_module.on_train_batch_end

        def on_train_batch_end(*args, **kwargs):
            result = original(*args, **kwargs)
            late = self._stop_values.late(pl_module.trainer)
            if late:
                self._log(pl_module, late, self._stop_values.batch_size, "on_train_batch_end")
            return result

        self._instance_batch_end = pl_module.__dict__.get("on_train_batch_end", _ABSENT)
        pl_module.on_train_batch_end = on_train_batch_end

    @staticmethod
    def _log(
        pl_module: L.LightningModule,
        names: dict[str, Tensor],
        batch_size: int,
        hook: str = "training_step",
    ) -> None:
        try:
            pl_module.log_dict(names, batch_size=batch_size)
        except MisconfigurationException as error:
            if "twice" not in str(error):
                raise
            # Lightning's message blames the module for one call it made
            raise ValueError(
                "KnowledgeDistillation logs "
                f"{', '.join(names)} after the module's {hook}, which "
                "logged one of these names itself with other arguments; rename "
                f"the module's. Lightning said: {error}"
            ) from None

    @property
    def _where(self) -> str:
        """What the module's step calls to give the logits, as the messages name it."""
        return f"submodule {self.logits_from!r}" if self.logits_from else "forward"

    def _batch_index(self, batch):
        """Each sample's position in the data set (CRD's bank rows): ``index_from(batch)``, or
        the batch's third element (key ``"index"``/``"idx"``), which it must have."""
        if self.index_from is not None:
            return self.index_from(batch)
        try:
            index = unpack_batch(batch, targets_optional=True)[2]
        except ValueError as error:
            index, said = None, f" {error}"
        else:
            said = ""
        if index is None:
            raise ValueError(
                "KnowledgeDistillation's CRD reads each sample's index (its position in the data "
                "set) from the batch, as batch[2] or under the key 'index' or 'idx'; this batch "
                f"has none.{said} Give index_from=callable(batch) -> index for batches of "
                "another layout."
            )
        return index

    def _match_device(self, device: torch.device) -> None:
        param = next(self.teacher.parameters(), None)
        if param is not None and param.device != device:
            self.teacher.to(device)

    def _match_dtype(self, pl_module: L.LightningModule) -> None:
        """Cast the teacher to the module's floating dtype if they differ, keeping its own
        tensors to give back (a float32 teacher cast to bfloat16 and back would lose bits)."""
        wanted = next((p.dtype for p in pl_module.parameters() if p.is_floating_point()), None)
        current = next((p.dtype for p in self.teacher.parameters() if p.is_floating_point()), None)
        if wanted is None or current is None or wanted == current:
            return
        if self._uncast is None:
            # a parameter's gradient too: Module.to casts it with the parameter
            self._uncast = [
                (
                    module,
                    name,
                    isinstance(tensor, nn.Parameter),
                    tensor.data,
                    # its data: Module.to swaps the .data of the gradient object in place
                    tensor.grad.data
                    if isinstance(tensor, nn.Parameter) and tensor.grad is not None
                    else None,
                )
                for module in self.teacher.modules()
                for name, tensor in (
                    *module.named_parameters(recurse=False),
                    *module.named_buffers(recurse=False),
                )
                if tensor.is_floating_point()
            ]
        self.teacher.to(wanted)

    def _uncast_teacher(self) -> None:
        if self._uncast is None:
            return
        for module, name, is_parameter, original, grad in self._uncast:
            if is_parameter:
                parameter = getattr(module, name)
                parameter.data = original
                parameter.grad = grad  # the gradient it held, in its own dtype
            else:
                setattr(module, name, original)  # a registered buffer stays one
        self._uncast = None

    # ----------------------------------------------------------------- state
    @override
    def state_dict(self) -> dict[str, Any]:
        state = {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "label_smoothing": self.label_smoothing,
            # what shaped the training besides the settings, as text (passed again to resume)
            "constraints": [_stable_repr(c) for c in self.constraints],
        }
        if self._features is not None:
            state["features"] = self._features.state_dict()
        return state

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        features = state_dict.pop("features", None)
        if features is not None and self._features is not None:
            self._features.load_state_dict(features)
        elif features is not None:
            warnings.warn(
                "KnowledgeDistillation resumed without the feature pairs the checkpoint was "
                "trained with: their trained heads (regressors, CRD banks) are dropped and the "
                "run goes on without them. Pass the same features to resume the run as it was.",
                stacklevel=2,
            )
        current = self.state_dict()
        current.pop("features", None)
        changed = {k: (v, current[k]) for k, v in state_dict.items() if current.get(k) != v}
        if changed:
            warnings.warn(
                "KnowledgeDistillation resumed with settings that differ from the checkpoint's "
                f"(checkpoint, now): {changed}; training continues with the current ones",
                stacklevel=2,
            )
