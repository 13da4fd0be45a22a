"""Feature pairs of the ``KnowledgeDistillation`` callback: hooks, methods and their optimizer.

The callback cannot add parameters to the user's module or optimizer, so the trainable parts of
its feature methods (CRD's heads, FT's translator, SSKD's student head, hint regressors) have
an Adam optimizer of their own, stepped when the module's optimizer steps (once per group of
``accumulate_grad_batches`` batches; gradients averaged over processes under DDP, unscaled and
checked by the AMP scaler under ``"16-mixed"``, clipped with the Trainer's
``gradient_clip_val``); their state and the optimizer's travel in the callback's ``state_dict``,
so a resumed fit continues exactly.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import torch
from torch import Tensor, nn

from lightning_distill._batch import unpack_batch
from lightning_distill._precision import refuse_float16_adam
from lightning_distill._teacher import evaluating
from lightning_distill._validation import fail
from lightning_distill.hooks import FeatureHooks, resolve_layer_names
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
from lightning_distill.kd.losses import HintRegressor, attention_transfer_loss, hint_loss
from lightning_distill.kd.module import (
    _stable_repr,
    _unique_term_names,
    feature_shapes,
    hint_channels_first,
    layer_output,
)


class CallbackFeatures:
    """Feature-distillation pairs run beside a wrapped ``training_step``.

    Student layers are named as in the LightningModule's ``named_modules()``; teacher layers as
    in the teacher's.
    """

    def __init__(self, specs: list, example_input: Tensor | None, lr: float) -> None:
        self.specs = specs
        # a callable loss (the user's code, which may keep state) gets a batch whose logits and
        # labels were read
        self.settle_before_terms = any(callable(spec.loss) for spec in specs)
        self.example_input = example_input
        self.lr = lr
        self.methods = nn.ModuleDict()
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending_state: dict[str, Any] | None = None
        self._student_hooks: FeatureHooks | None = None
        self._teacher_hooks: FeatureHooks | None = None
        # the module the parts were built for (a weak reference: the callback may outlive it)
        self._built_for: weakref.ref | None = None
        self._wide_buffers: list[tuple[nn.Module, str]] = []

    def setup(
        self,
        pl_module: nn.Module,
        teacher: nn.Module,
        source: nn.Module,
        convert=None,
        precision: str | None = None,
    ) -> None:
        """Hooks, the parts built (once) and converted by ``convert`` (the Trainer's precision
        plugin's ``convert_module``: float64 under "64-true", as the module's own layers) before
        a saved state is loaded into them, so that a float64 state is not read through float32
        parts. Trainable parts that would be float16 (``precision``, the Trainer's, "16-true")
        are refused before they are cast: their Adam cannot train them."""
        # which side names a layer it has not, as DistillationModule says it
        student_layers = [s.student_layer for s in self.specs]
        resolve_layer_names(pl_module, student_layers, argument="features (student_layer)")
        teacher_layers = [s.teacher_layer for s in self.specs]
        resolve_layer_names(teacher, teacher_layers, argument="features (teacher_layer)")
        self._student_hooks = FeatureHooks(
            pl_module, student_layers, argument="features (student_layer)"
        )
        self._teacher_hooks = FeatureHooks(
            teacher, teacher_layers, argument="features (teacher_layer)"
        )
        built_for = None if self._built_for is None else self._built_for()
        if len(self.methods) and built_for is not None and built_for is not pl_module:
            # a callback reused for another module (a sweep over students): the parts were
            # built for, and trained with, the last one; this fit starts as a fresh callback's
            self.methods = nn.ModuleDict()
            self._pending_optimizer_state = None
        # each fit's optimizer is its own, as Lightning builds the module's anew for each fit
        # (a resumed fit's state is loaded into it after this set-up); a state an earlier
        # resume loaded and never used (it took no step) is not this fit's
        self.optimizer = None
        self._pending_optimizer_state = None
        built = len(self.methods) == 0
        if built:
            self._build(pl_module, teacher, source)
        else:
            # parts kept from an earlier fit of this module are in the dtype that fit's
            # precision cast them to ("64-true", "bf16-true"): in the module's own dtype now,
            # as built ones are (the buffers built in float64 in float64), before this fit's
            # precision converts both; cast once, so that nothing is rounded on the way
            dtype = next(
                (p.dtype for p in pl_module.parameters() if p.is_floating_point()),
                torch.get_default_dtype(),
            )
            wide = [(module, name, getattr(module, name)) for module, name in self._wide_buffers]
            self.methods.to(dtype)
            for module, name, buffer in wide:
                setattr(module, name, buffer.to(torch.float64))
        # the dtype convert gives a float32 part, where it casts one
        cast_to = None if convert is None else convert(nn.Linear(1, 1)).weight.dtype
        try:
            refuse_float16_adam(
                self.methods.parameters(),
                "precision",
                "'16-mixed' or 'bf16-true' for KnowledgeDistillation's feature parts (heads, "
                "regressors), which train with an Adam of their own",
                "these parts",
                precision=precision,
                cast_to=None if cast_to == torch.float32 else cast_to,
            )
        except ValueError:
            if built:  # a later fit builds them afresh, as this one did
                self.methods = nn.ModuleDict()
            raise
        self._built_for = weakref.ref(pl_module)
        if convert is not None:
            convert(self.methods)
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)

    def _build(self, pl_module, teacher, source) -> None:
        shaped = [s for s in self.specs if s.loss == "hint" or method_needs_shapes(str(s.loss))]
        shapes = [(None, None)] * len(self.specs)
        if shaped:
            if self.example_input is None:
                raise ValueError(
                    f"example_input must be a batch of inputs with loss={shaped[0].loss!r} (it "
                    "gives the features' shapes, e.g. example_input=x[:2]); got None."
                )
            with (
                torch.no_grad(),
                evaluating(pl_module),
                self._student_hooks as sh,
                self._teacher_hooks as th,
            ):
                source(self.example_input)
                teacher(self.example_input)
                shapes = [feature_shapes(spec, sh, th) for spec in self.specs]
        for i, (spec, (s_shape, t_shape)) in enumerate(zip(self.specs, shapes)):
            if spec.loss == "hint":
                self.methods[str(i)] = HintRegressor(
                    s_shape, t_shape, channels_first=hint_channels_first(spec, pl_module, teacher)
                )
            elif spec.loss in FEATURE_METHODS:
                self.methods[str(i)] = build_feature_method(
                    spec.loss, s_shape, t_shape, spec.options
                )
        # the buffers built in float64 on purpose (CRD's normalisers), for a later fit
        self._wide_buffers = [
            (module, name)
            for module in self.methods.modules()
            for name, buffer in module.named_buffers(recurse=False)
            if buffer.dtype == torch.float64
        ]
        heads_in_dtype_of(self.methods, pl_module)

    def broadcast_from_rank_zero(self, trainer) -> None:
        """Give every process rank 0's parameters and buffers, in place on their device
        (``torch.distributed.broadcast`` per tensor: no copy through the CPU, which CRD's
        banks would make large); nothing is sent with one process."""
        import torch.distributed as dist

        if trainer.world_size < 2 or len(self.methods) == 0 or not dist.is_initialized():
            return
        for tensor in [*self.methods.parameters(), *self.methods.buffers()]:
            data = tensor.data
            if data.dtype == torch.bool:  # sent as bytes: not every backend sends booleans
                sent = data.to(torch.uint8)
                dist.broadcast(sent, src=0)
                data.copy_(sent.bool())
            else:
                dist.broadcast(data, src=0)

    # ----------------------------------------------------------------- during the fit
    def capture_student(self) -> FeatureHooks:
        return self._student_hooks

    def student_features(self, hooks: FeatureHooks) -> list[Tensor]:
        return [layer_output(hooks, s.student_layer, "student") for s in self.specs]

    def teacher_forward(self, teacher: nn.Module, inputs: tuple, kwargs: dict):
        with torch.no_grad(), self._teacher_hooks as th:
            logits = teacher(*inputs, **kwargs)
            return logits, [layer_output(th, s.teacher_layer, "teacher") for s in self.specs]

    def _pending_first_stages(self) -> list[tuple[int, nn.Module]]:
        """The methods (by pair) whose first stage is still to run (FT's paraphraser, SSKD's
        head)."""
        return [
            (int(k), m)
            for k, m in self.methods.items()
            if getattr(m, "needs_pretraining", False) and not m.is_pretrained
        ]

    def has_pending_first_stage(self) -> bool:
        return bool(self._pending_first_stages())

    def pretrain(self, trainer, teacher: nn.Module, device, forward_input=None) -> None:
        """First stages (FT's paraphraser, SSKD's teacher head) over the fit's training data.
        ``forward_input(batch)``: the input the module's forward is given for a loader batch
        (None to skip the batch); by default the batch's inputs as the loader gives them."""
        pending = self._pending_first_stages()
        if not pending:
            return
        unpack = _unpack if forward_input is None else (lambda batch: (forward_input(batch),))
        inputs = LoaderInputs.of_trainer(trainer, device, unpack)
        for i, method in pending:
            layer = self.specs[i].teacher_layer
            hooks = FeatureHooks(teacher, [layer], argument="features (teacher_layer)")

            def teacher_feature(x, hooks=hooks, layer=layer):
                with torch.no_grad(), hooks as th:
                    teacher(x)
                    return layer_output(th, layer, "teacher")

            method.pretrain(inputs, teacher_feature)
        if inputs.yielded == 0:
            warnings.warn(
                "KnowledgeDistillation's first stage (FT's paraphraser, SSKD's teacher head) "
                "read no batch: the training step returned before calling the module's "
                "forward on each one, so the trained parts start untrained.",
                UserWarning,
                stacklevel=2,
            )

    def terms(
        self,
        student_features: list[Tensor],
        teacher_features: list[Tensor],
        targets: Tensor | None,
        batch_index,
        inputs: Tensor,
        source: nn.Module,
        teacher: nn.Module,
        rows: int,
    ) -> dict[str, Tensor]:
        """The pairs' weighted terms by name. ``targets``: the labels the callback read
        (``targets_from``), their range checked by the step (``queue_logit_checks``);
        ``batch_index()``: each sample's position in the data set, read only for a method that
        needs it (CRD); ``rows``: the batch's samples (rows of logits)."""
        self.methods.to(inputs.device)
        needs_index = any(getattr(m, "needs_index", False) for m in self.methods.values())
        index = batch_index() if needs_index else None
        named = []
        for i, (spec, s_feat, t_feat) in enumerate(
            zip(self.specs, student_features, teacher_features)
        ):
            check_batch_first(spec, s_feat, t_feat, rows)
            if spec.loss == "attention":
                found = {
                    "attention": attention_transfer_loss(
                        s_feat, t_feat, variant=spec.variant, p=spec.p
                    )
                }
            elif spec.loss == "hint":
                found = {"hint": hint_loss(s_feat, t_feat, self.methods[str(i)])}
            elif str(i) in self.methods:
                context = FeatureContext(
                    inputs,
                    targets,
                    index,
                    lambda z, layer=spec.student_layer: self._run(source, z, layer),
                    lambda z, layer=spec.teacher_layer: self._run_teacher(teacher, z, layer),
                    targets_checked=True,  # by the step, ahead of the features
                )
                found = self.methods[str(i)](s_feat, t_feat, context)
            else:
                found = {"callable": callable_term(spec.loss, s_feat, t_feat)}
            named.append({name: spec.weight * value for name, value in found.items()})
        return _unique_term_names(named)

    def _run(self, source: nn.Module, z: Tensor, layer: str):
        with self._student_hooks as sh:
            return source(z), layer_output(sh, layer, "student")

    def _run_teacher(self, teacher: nn.Module, z: Tensor, layer: str):
        with torch.no_grad(), self._teacher_hooks as th:
            return teacher(z), layer_output(th, layer, "teacher")

    def step(
        self,
        scaler=None,
        clip_val: float | None = None,
        clip_algorithm: str | None = None,
        skip: bool = False,
    ) -> None:
        """One step of the parts' optimizer, taken as the Trainer takes the module's.

        ``scaler``: the AMP ``GradScaler`` of the Trainer's precision plugin (``"16-mixed"``),
        whose scale multiplies these gradients as it does the module's: the scaler unscales
        them and skips the step when they are not finite, as it does for the module's
        optimizer, and the ``update`` that Lightning calls after the module's step counts an
        overflow here too. ``clip_val``, ``clip_algorithm``: the Trainer's
        ``gradient_clip_val`` and ``gradient_clip_algorithm`` (``"norm"`` by default, as
        Lightning's), applied to these gradients, unscaled, as a group of their own (the norm
        is over these parts' gradients alone). ``skip``: the Trainer skips the module's step
        (the last ``training_step`` returned None under a scaler), so these parts' gradients
        are dropped too.
        """
        params = [p for p in self.methods.parameters() if p.requires_grad]
        if not params:
            return
        optimizer = self._optimizer(params)
        if skip:
            optimizer.zero_grad(set_to_none=True)
            return
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for param in params:
                if param.grad is None:
                    param.grad = torch.zeros_like(param)
                dist.all_reduce(param.grad)
                param.grad /= dist.get_world_size()
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:  # nothing to step on (the scaler refuses an optimizer without any)
            return
        if scaler is not None:
            scaler.unscale_(optimizer)
        if clip_val is not None and clip_val > 0:
            # the Trainer's GradClipAlgorithmType, a str enum whose str() is its class's name
            algorithm = str(getattr(clip_algorithm, "value", clip_algorithm) or "norm").lower()
            if algorithm == "value":
                torch.nn.utils.clip_grad_value_(with_grad, clip_val)
            elif algorithm == "norm":
                torch.nn.utils.clip_grad_norm_(with_grad, clip_val)
            else:
                fail("gradient_clip_algorithm", "'norm' or 'value'", clip_algorithm)
        if scaler is not None:
            scaler.step(optimizer)  # skipped when the unscaled gradients are not finite
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(params, lr=self.lr)
            if self._pending_optimizer_state is not None:
                self.optimizer.load_state_dict(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self.optimizer

    # ----------------------------------------------------------------- state
    _pending_optimizer_state: dict | None = None

    def __getstate__(self) -> dict:
        # a weak reference does not pickle (a used callback sent to ddp_spawn processes, a
        # joblib sweep); the copy knows no module, so its next fit keeps the parts it has
        state = dict(self.__dict__)
        state["_built_for"] = None
        return state

    def _pairs(self) -> list[str]:
        return [_stable_repr(spec) for spec in self.specs]

    def state_dict(self) -> dict[str, Any]:
        return {
            "methods": {k: v.detach().cpu().clone() for k, v in self.methods.state_dict().items()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            # the pairs as text, to say which differ when a resumed fit passes others
            "pairs": self._pairs(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(self.methods) == 0 and state.get("methods"):
            self._pending_state = state  # applied once setup has built the methods
            return
        self._pending_state = None
        saved = state.get("pairs")
        try:
            self.methods.load_state_dict(state.get("methods", {}))
        except RuntimeError as error:  # missing, unexpected or other-shaped parts
            said = "" if saved is None else f" (checkpoint: {saved}; now: {self._pairs()})"
            raise ValueError(
                "features must be the feature pairs the checkpoint was trained with to resume "
                f"KnowledgeDistillation's run{said}: their trained parts (heads, regressors, "
                "CRD's banks) do not fit the pairs given now. Pass the same features, or start "
                f"a fresh fit. torch said: {error}"
            ) from None
        if saved is not None and saved != self._pairs():
            warnings.warn(
                "KnowledgeDistillation resumed with feature pairs whose settings differ from "
                f"the checkpoint's (checkpoint: {saved}; now: {self._pairs()}); their trained "
                "parts are loaded and training continues with the current settings.",
                stacklevel=2,
            )
        self.optimizer = None
        self._pending_optimizer_state = state.get("optimizer")


def _unpack(batch):
    """A training batch as the feature methods read it: labels optional (SSKD, which needs
    them, says so; the KD term refuses a batch without them unless ``alpha=1``)."""
    return unpack_batch(batch, targets_optional=True)
