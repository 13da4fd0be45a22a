"""``AWDModule``: adaptive wavelet distillation of a trained network, as a LightningModule."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import lightning as L
import numpy as np
import pywt
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from typing_extensions import override

from lightning_distill._batch import batch_inputs
from lightning_distill._logging import (
    EpochMeans,
    SettledHyperparameters,
    StopStepValues,
    attached_trainer,
    logs_step_values,
    settle_hyperparameters,
)
from lightning_distill._precision import autocast_off, refuse_float16_adam
from lightning_distill._teacher import TeacherModuleMixin
from lightning_distill._validation import (
    check_choice,
    check_finite,
    check_integer,
    check_real,
    fail,
    keeps_its_type,
    one_sync_per_step,
    plain_data,
    settle_value_checks,
    value_check,
)
from lightning_distill.awd.attributions import (
    TRIMResult,
    _check_batch_first,
    _method,
    flatten_coefficients,
    select_target,
    trim_attributions,
    unflatten_coefficients,
)
from lightning_distill.awd.losses import (
    VALIDITY_TERMS,
    _l1_per_sample_unchecked,
    _validity_terms,
    validity_error,
)
from lightning_distill.awd.transform import (
    MODES,
    as_filter,
    check_levels,
    lowpass_from_wavelet,
    wavedec1d,
    wavedec2d,
    wavelet_from_filter,
    waverec1d,
    waverec2d,
)

__all__ = ["AWDModule", "wavelet_from_checkpoint", "wavelet_from_filter"]

_CHECKPOINT_KEY = "awd_wavelet"


def wavelet_from_checkpoint(path, name: str = "awd") -> pywt.Wavelet:
    """The learned wavelet stored in an :class:`AWDModule` checkpoint, without the teacher.

    Parameters
    ----------
    path : str or path-like
        Checkpoint written by a Lightning ``Trainer`` fitting an :class:`AWDModule`.
    name : str, default="awd"

    Returns
    -------
    pywt.Wavelet
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # no such file, a folder, no permission: torch's message names the path
        raise
    except Exception as error:  # not a file torch.save wrote: torch's error names neither
        raise ValueError(
            f"path {str(path)!r} is not a checkpoint of an AWDModule (torch.load could not read "
            f"it as one: {type(error).__name__})."
        ) from error
    if not isinstance(checkpoint, dict) or _CHECKPOINT_KEY not in checkpoint:
        raise ValueError(f"path {str(path)!r} is not a checkpoint of an AWDModule.")
    return wavelet_from_filter(checkpoint[_CHECKPOINT_KEY]["rec_lo"], name=name)


def _check_weight(name: str, value) -> float:
    return check_real(name, value, minimum=0)


def _check_dim(dim) -> int:
    # 1.0 == 1 would pass check_choice and fail in the step's slicing
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be 1 (signals) or 2 (images); got {dim!r}.")
    return check_choice("dim", int(dim), (1, 2))


def _check_attribution(attribution) -> str:
    """A Captum method's name (an alias too), returned as its canonical name."""
    if not isinstance(attribution, str):
        raise TypeError(f"attribution must be a method name (str); got {attribution!r}.")
    try:
        return _method(attribution)
    except ValueError as error:
        raise ValueError(f"attribution {error}") from None


def _check_target(target):
    """None, an index (numpy integers too: a class read from an array), a tuple of indices or a
    callable; indices returned as ``int``."""

    def index(value) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)

    if not (
        target is None
        or callable(target)
        or index(target)
        or (isinstance(target, tuple) and all(index(i) for i in target))
    ):
        raise TypeError(
            f"target must be None, an int, a tuple of ints or a callable; got {target!r}."
        )
    if index(target):
        return int(target)
    if isinstance(target, tuple):
        return tuple(int(i) for i in target)
    return target


#: The loss's terms, each weighted by ``AWDModule.weights[term]``.
_TERMS = ("reconstruction", "sparsity", "attribution", *VALIDITY_TERMS)


class _Weights(dict):
    """``AWDModule.weights``: each term's weight checked when set (a number >= 0, or a tensor,
    a schedule or a learned weight, taken as it is); a name that is not a term is refused."""

    def __setitem__(self, term, value) -> None:
        if term not in _TERMS:
            fail("weights", f"keyed by the loss's terms ({', '.join(_TERMS)})", term)
        if not isinstance(value, torch.Tensor):
            value = _check_weight(f"weights[{term!r}]", value)
        super().__setitem__(term, value)

    def update(self, *args, **kwargs) -> None:
        for term, value in dict(*args, **kwargs).items():
            self[term] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, term, value=None):
        if term not in self:
            self[term] = value
        return self[term]

    @classmethod
    def of(cls, weights) -> _Weights:
        """``weights``, a dict with a weight for every term, checked."""
        if not isinstance(weights, Mapping):
            fail("weights", "a dict of the terms' weights", weights, TypeError)
        missing = [term for term in _TERMS if term not in weights]
        if missing:
            fail("weights", f"a weight for every term (none for {', '.join(missing)})", weights)
        checked = cls()
        for term, value in weights.items():
            checked[term] = value
        return checked


#: AWDModule's settings checked when set after construction (the constructor's checks)
_AWD_CHECKED_ON_SET = {
    "lr": lambda value: check_real("lr", value, minimum=0, exclusive_minimum=True),
    "n_steps": lambda value: check_integer("n_steps", value, minimum=1),
    "levels": lambda value: check_integer("levels", value, minimum=1),
    "mode": lambda value: check_choice("mode", value, MODES),
    "dim": _check_dim,
    "target": _check_target,
    "attribution": _check_attribution,
    "weights": _Weights.of,
}


#: Settings checked when set that the hyperparameters (and so checkpoints) hold as they are.
_SETTINGS_IN_HPARAMS = ("lr", "n_steps", "levels", "mode", "dim", "target", "attribution")

#: Attributes whose change calls for the input checks of a first batch again (``h0``: a filter
#: of another length assigned).
_RECHECK_INPUT_ON_SET = ("levels", "dim", "target", "h0", "teacher")


def _target_in_hparams(target):
    """``target`` as the hyperparameters hold it: a callable as a marker naming it (code is
    not plain data; loading then asks for it again), anything else as plain data."""
    if callable(target):
        return {"callable": getattr(target, "__qualname__", repr(target))}
    return plain_data(target)


#: The start of the warning :meth:`AWDModule.on_fit_start` gives when no term distils.
_NOTHING_TO_DISTIL = "AWDModule has no term that distils the teacher"


class AWDModule(TeacherModuleMixin, SettledHyperparameters, L.LightningModule):
    """Adaptive wavelet distillation (Ha, Singh, Yu et al., NeurIPS 2021).

    Learns the scaling filter ``h0`` of an orthogonal wavelet so that the signals are rebuilt
    from their coefficients, the wavelet stays valid, and the coefficients and the teacher's TRIM
    attributions on them are sparse. The loss is::

        reconstruction_weight * mean((x - inverse(dwt(x)))^2)
        + sum_t validity_weight[t] * validity_t(h0)
        + sparsity_weight * mean_batch ||dwt(x)||_1
        + attribution_weight * mean_batch ||TRIM attributions||_1

    Device: every tensor stays on the module's device during training. One value per step comes
    back to the host: whether the loss is finite (a synchronisation on an accelerator, no copy
    of a tensor); a NaN or infinite signal or teacher gradient makes it so, and is then named. A loss that is not finite is refused, with its cause (signals that overflow the
    module's dtype, a teacher's gradients, a diverged filter), rather than trained on. :meth:`learned_wavelet` and the checkpoint's filter bank
    copy ``h0`` to the CPU.

    Parameters
    ----------
    teacher : torch.nn.Module
        Trained network mapping a batch of signals to outputs of shape (batch, ...). Frozen
        (eval mode, no gradients) while a Trainer runs and while a method here uses it, then
        given back as it was: every submodule's mode and every parameter's ``requires_grad``
        flag (see ``lightning_distill._teacher``). It is not copied: moving or casting the
        module moves or casts it too.
    wavelet : str, pywt.Wavelet or sequence of float, default="db5"
        Orthogonal wavelet the filter starts from (names: ``pywt.wavelist(kind="discrete")``
        with ``orthogonal`` true), a wavelet exported by another ``AWDModule`` (warm start), or
        a scaling filter.
    levels : int, default=4
        Number of decomposition levels.
    mode : {"zero", "symmetric", "reflect", "periodization"}, default="zero"
        Boundary extension, as in PyWavelets.
    dim : {1, 2}, default=1
        1: signals shaped (batch, length) or (batch, channels, length).
        2: images shaped (batch, channels, height, width).
    init_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the starting filter.
    seed : int or None
        Seed of that noise.
    attribution : {"saliency", "input_x_gradient", "integrated_gradients"}, default="saliency"
        Captum method used for the TRIM attributions.
    target : None, int, tuple or callable
        Output of the teacher to attribute: an index (Captum ``target``), a callable mapping the
        teacher's output to one value per sample, or None for a single-output teacher.
    reconstruction_weight, sparsity_weight, attribution_weight : float
        Weights of the reconstruction, coefficient-L1 and attribution-L1 terms.
    validity_weight : float, default=1.0
        Weight of each of the validity terms (``lowpass_sum``, ``highpass_sum``, ``unit_norm``,
        ``cmf``, ``even_shift``); ``validity_weights`` overrides single terms.
    validity_weights : dict or None
        Per-term weights, keyed by term name.
    lr : float, default=1e-3
        Adam learning rate. Adam's ``eps`` (1e-8) is 0 in float16: a float16 filter
        (``Trainer(precision="16-true")``) is refused; ``"16-mixed"`` and ``"bf16-true"`` train.
    n_steps : int, default=8
        Integrated-gradients steps.
    keep_teacher_in_checkpoint : bool, default=False
        Store the teacher's weights in checkpoints too. Either way ``load_from_checkpoint``
        takes ``teacher`` again (modules are not hyperparameters); a checkpoint that holds the
        teacher's weights loads them *into the teacher given*, so pass a fresh instance of the
        architecture to rebuild it, or your trained teacher only when it is the one saved.

    Attributes
    ----------
    h0 : torch.nn.Parameter
        The learned scaling filter.

    Examples
    --------
    >>> teacher = torch.nn.Sequential(torch.nn.Linear(32, 1))
    >>> module = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=0.1)
    >>> trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False,
    ...                     enable_checkpointing=False, enable_progress_bar=False,
    ...                     enable_model_summary=False)
    >>> loader = torch.utils.data.DataLoader(torch.randn(16, 32), batch_size=8)
    >>> trainer.fit(module, loader)
    >>> module.learned_wavelet().dec_len
    4
    """

    def __init__(
        self,
        teacher: torch.nn.Module,
        *,
        wavelet="db5",
        levels: int = 4,
        mode: str = "zero",
        dim: int = 1,
        init_noise: float = 0.0,
        seed: int | None = None,
        attribution: str = "saliency",
        target=None,
        reconstruction_weight: float = 1.0,
        sparsity_weight: float = 0.0,
        attribution_weight: float = 0.0,
        validity_weight: float = 1.0,
        validity_weights: dict | None = None,
        lr: float = 1e-3,
        n_steps: int = 8,
        keep_teacher_in_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(teacher, torch.nn.Module):
            raise TypeError(f"teacher must be a torch.nn.Module; got {type(teacher).__name__}.")
        check_choice("mode", mode, MODES)
        _check_dim(dim)
        levels = check_integer("levels", levels, minimum=1)
        if isinstance(target, dict) and "callable" in target:
            # what a checkpoint holds for a callable target: code is not plain data
            raise ValueError(
                f"target must be given again: this module was saved with the callable target "
                f"{target['callable']!r}, which checkpoints do not store; pass "
                "target=<the same callable> to load_from_checkpoint."
            )
        target = _check_target(target)
        n_steps = check_integer("n_steps", n_steps, minimum=1)
        if not isinstance(keep_teacher_in_checkpoint, bool):
            raise TypeError(
                f"keep_teacher_in_checkpoint must be a bool; got {keep_teacher_in_checkpoint!r}."
            )
        self.attribution = attribution  # checked, as its canonical name (see __setattr__)
        init_noise = check_real("init_noise", init_noise, minimum=0)
        if seed is not None:
            seed = check_integer("seed", seed, minimum=0)
        if isinstance(wavelet, list | tuple | np.ndarray | torch.Tensor):
            try:
                as_filter(wavelet)
            except (TypeError, ValueError):
                raise TypeError(
                    f"wavelet given as a filter must hold numbers; got {wavelet!r}."
                ) from None
        weights = {
            "reconstruction": _check_weight("reconstruction_weight", reconstruction_weight),
            "sparsity": _check_weight("sparsity_weight", sparsity_weight),
            "attribution": _check_weight("attribution_weight", attribution_weight),
        }
        base = _check_weight("validity_weight", validity_weight)
        if validity_weights is not None and not isinstance(validity_weights, dict):
            raise TypeError(
                f"validity_weights must be a dict of term weights or None; got {validity_weights!r}."
            )
        overrides = dict(validity_weights or {})
        unknown = sorted(set(overrides) - set(VALIDITY_TERMS))
        if unknown:
            raise ValueError(
                f"validity_weights has unknown terms {unknown}; valid: {', '.join(VALIDITY_TERMS)}."
            )
        for term in VALIDITY_TERMS:
            weights[term] = _check_weight(f"validity_weights[{term!r}]", overrides.get(term, base))
        # checked again when set or changed (a dict whose items are checked; see __setattr__)
        self.weights = weights
        self.lr = check_real("lr", lr, minimum=0, exclusive_minimum=True)
        initial = lowpass_from_wavelet(wavelet, noise=init_noise, seed=seed)
        if not np.all(np.abs(initial) < torch.finfo(torch.get_default_dtype()).max):
            raise ValueError(
                f"init_noise must leave the starting filter finite; got {init_noise!r}."
            )
        if not isinstance(wavelet, str):
            # stored as its filter, so checkpoints hold plain numbers, not pywt objects
            wavelet = lowpass_from_wavelet(wavelet).tolist()
        self.save_hyperparameters(ignore=["teacher", "target"] if callable(target) else ["teacher"])
        if callable(target):
            # a marker, not the code: loading without target= then says to pass it again
            # instead of explaining the raw output silently
            self.hparams["target"] = _target_in_hparams(target)
        # settings given as numpy scalars or 0-d tensors pass the checks as numbers, but
        # torch.load(weights_only=True) (and so wavelet_from_checkpoint) cannot read them back;
        # the loggers are given them as checkpoints hold them
        settle_hyperparameters(self)
        self.h0 = torch.nn.Parameter(torch.as_tensor(initial, dtype=torch.get_default_dtype()))
        # the start in float64: a module cast to float64 before training starts from it, not
        # from its float32 rounding (about 2e-8 off PyWavelets' filter)
        self._start_filter = np.asarray(initial, dtype=np.float64)
        self.teacher = teacher
        self._init_teacher(keep_teacher_in_checkpoint)
        self.levels = int(levels)
        self.mode = mode
        self.dim = dim
        self.target = target
        self.n_steps = n_steps
        self._checked_shapes = set()  # sample shapes the teacher was checked on
        self._epoch_means = EpochMeans()
        self._stop_values = StopStepValues()

    def __setattr__(self, name: str, value) -> None:
        # the weights (each one as it is set too), lr, n_steps, dim, target, levels, mode and
        # attribution set after construction are checked as the constructor checks them: a
        # negative weight trained the filter to grow the term it weights, silently
        check = _AWD_CHECKED_ON_SET.get(name)
        if check is not None:
            value = check(value)
        super().__setattr__(name, value)
        if name in _RECHECK_INPUT_ON_SET:
            # the first batch of each sample shape is checked against these (the level limit
            # of its length, the teacher's reading of it, the target in its output): a change
            # after that batch had skipped the checks, e.g. levels past floor(log2(length))
            checked = self.__dict__.get("_checked_shapes")
            if checked is not None:
                checked.clear()
        if check is not None and name in _SETTINGS_IN_HPARAMS:
            # the checkpoint's hyperparameters follow a setting changed after construction: a
            # module loaded from it (load_from_checkpoint, wavelet_from_checkpoint) had been
            # built with the constructor's levels, mode, dim or target, silently another model
            hparams = self.__dict__.get("_hparams")
            if hparams is not None and name in hparams:
                hparams[name] = _target_in_hparams(value) if name == "target" else plain_data(value)

    @override
    def _apply(self, fn, *args, **kwargs):
        start = getattr(self, "_start_filter", None)
        at_start = (
            start is not None
            and not self.h0.is_meta
            and self.h0.dtype != torch.float64
            and torch.equal(self.h0.detach(), torch.as_tensor(start).to(self.h0))
        )
        this = super()._apply(fn, *args, **kwargs)
        if at_start and self.h0.dtype == torch.float64 and not self.h0.is_meta:
            # cast to float64 while still at the (rounded) start: take the exact start
            with torch.no_grad():
                self.h0.copy_(torch.as_tensor(start, device=self.h0.device))
        return this

    # -- structure -------------------------------------------------------------------------
    @override
    def configure_optimizers(self):
        refuse_float16_adam(
            [self.h0],
            "precision",
            "'16-mixed' or 'bf16-true' for AWDModule, whose filter h0 trains with Adam",
            "the filter",
            precision=getattr(attached_trainer(self), "precision", None),
        )
        return torch.optim.Adam([self.h0], lr=self.lr)

    def learned_wavelet(self, name: str = "awd") -> pywt.Wavelet:
        """The current wavelet as a ``pywt.Wavelet`` (see :func:`wavelet_from_filter`)."""
        return wavelet_from_filter(self.h0.detach().cpu().double().numpy(), name=name)

    def validity_error(self) -> float:
        """How far the current filter is from a valid orthogonal wavelet."""
        return validity_error(self.h0)

    def _weights_in_hparams(self, hparams) -> None:
        """The terms' weights as they are now, written into ``hparams`` under the constructor's
        arguments (``validity_weights``: the terms that differ from ``validity_weight``), so
        that a module loaded from a checkpoint weighs its terms as this one does (weights set
        after construction, ``module.weights["sparsity"] = 0.1``, had been left out). A weight
        held as a tensor (a schedule, a learned weight) is left as the constructor gave it."""
        for term in ("reconstruction", "sparsity", "attribution"):
            weight = self.weights[term]
            if not isinstance(weight, torch.Tensor) and f"{term}_weight" in hparams:
                hparams[f"{term}_weight"] = float(weight)
        validity = {term: self.weights[term] for term in VALIDITY_TERMS}
        if "validity_weight" in hparams and not any(
            isinstance(weight, torch.Tensor) for weight in validity.values()
        ):
            base = hparams["validity_weight"]
            overrides = {t: float(w) for t, w in validity.items() if float(w) != base}
            if overrides or hparams.get("validity_weights") is not None:
                hparams["validity_weights"] = overrides

    @override
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)  # the teacher policy (out unless kept)
        self._weights_in_hparams(self.hparams)
        if isinstance(checkpoint.get(self.CHECKPOINT_HYPER_PARAMS_KEY), dict):
            self._weights_in_hparams(checkpoint[self.CHECKPOINT_HYPER_PARAMS_KEY])
        # the filter bank alone, so the wavelet can be read back without the teacher
        checkpoint[_CHECKPOINT_KEY] = {
            "rec_lo": self.h0.detach().cpu().double().numpy().tolist(),
            "mode": self.mode,
            "levels": self.levels,
            "dim": self.dim,
        }

    @override
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        # Lightning loads the state into the module as constructed (float32) and casts it for
        # "64-true" afterwards (a resumed fit), as load_from_checkpoint(...).double() does: the
        # filter saved in float64 would come back as its float32 rounding. Keep it as the start
        # that a cast to float64 takes (see _apply).
        saved = checkpoint.get("state_dict", {}).get("h0")
        if isinstance(saved, torch.Tensor) and saved.is_floating_point():
            self._start_filter = saved.detach().cpu().double().numpy()

    # -- input checks ------------------------------------------------------------------------
    def check_input(self, x) -> torch.Tensor:
        """Validate a batch of signals (shape, finiteness, levels) and return it as a tensor.

        A batch is a tensor, a tuple or list whose first element is one, or a dict with an
        input key (``"inputs"``, ...) as :class:`~lightning_distill.DistillationModule` reads.
        The module computes in its filter's dtype (float32 unless the module is cast, e.g. by
        ``Trainer(precision="64-true")``): a float64 batch is cast to it. A mixed-precision
        Trainer (``"bf16-mixed"``, ``"16-mixed"``) changes nothing: the transforms, the
        attributions (the teacher's forward too) and the loss terms run with autocast off.
        """
        return self._check_input(x)

    def _check_input(self, x, *, check_values: bool = True) -> torch.Tensor:
        """:meth:`check_input`; with ``check_values=False`` the batch's finiteness is left to
        the loss's check (a training step: a NaN or infinite signal makes the loss so, and the
        loss's check names the batch first)."""
        if isinstance(x, (tuple, list)):
            if not x:
                raise ValueError(f"batch must hold a tensor of signals; got {x!r}.")
            x = x[0]
        elif isinstance(x, Mapping):
            x = batch_inputs(x)  # an input key ("inputs", "x", ...), as DistillationModule reads
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"batch must be a torch.Tensor; got {type(x).__name__}.")
        if not x.is_floating_point():
            raise TypeError(f"batch must be a floating-point tensor; got dtype {x.dtype}.")
        if self.dim == 1 and x.ndim not in (2, 3):
            hint = " Images need AWDModule(..., dim=2)." if x.ndim == 4 else ""
            raise ValueError(
                "batch must be shaped (batch, length) or (batch, channels, length) for a 1D "
                f"module (dim=1); got shape {tuple(x.shape)}.{hint}"
            )
        if self.dim == 2 and x.ndim != 4:
            hint = {
                2: " Signals need AWDModule(..., dim=1).",
                3: " Single-channel images need a channel axis (x.unsqueeze(1)); signals of "
                "several channels need AWDModule(..., dim=1).",
            }.get(x.ndim, "")
            raise ValueError(
                "batch must be shaped (batch, channels, height, width) for a 2D module (dim=2), "
                f"got shape {tuple(x.shape)}.{hint}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"batch must hold at least one sample; got shape {tuple(x.shape)}.")
        if check_values and not bool(torch.isfinite(x).all()):
            _refuse_non_finite_batch()
        sample_shape = tuple(x.shape[1:])
        if sample_shape not in self._checked_shapes:
            check_levels(self.levels, min(x.shape[-self.dim :]), self.h0.shape[-1])
            self._check_teacher_reads(x)
            self._checked_shapes.add(sample_shape)
        return x

    def _check_teacher_reads(self, x: torch.Tensor) -> None:
        """Once per sample shape seen, on two samples (one sample of a ``(1, length)`` batch reads as
        one unbatched channel to a ``Conv1d``): the teacher reads the batch's layout, and its
        output has ``target`` (an index, or a callable giving one value per sample), also when
        training computes no attribution (``attribution_weight=0``); torch's complaint deep in
        the teacher becomes a ``ValueError`` naming the shape. ``target=None`` on a teacher of
        several outputs is left to where attributions are computed: a fit without them does
        not need a target."""
        try:
            with self._frozen_teacher(), torch.no_grad():
                # a copy: a teacher that works in place (ReLU(inplace=True) first) had changed
                # the caller's batch, which the step then trained on
                output = self.teacher(x[:2].to(self.h0.dtype, copy=True))
        except RuntimeError as error:
            if keeps_its_type(error):  # out of memory and the like keep their type
                raise
            layout = (
                "(batch, length) or (batch, channels, length)"
                if self.dim == 1
                else "(batch, channels, height, width)"
            )
            floating = {p.dtype for p in self.teacher.parameters() if p.is_floating_point()}
            if floating and self.h0.dtype not in floating and "dtype" in str(error):
                raise TypeError(
                    f"teacher must compute in the module's dtype, {self.h0.dtype}, or cast its "
                    f"input itself; its parameters are "
                    f"{', '.join(sorted(str(d) for d in floating))}: cast the module with the "
                    "teacher inside it (AWDModule(...).double() or Trainer(precision='64-true') "
                    "for float64; awd_path(..., trainer_kwargs={'precision': '64-true'})), or "
                    f"cast the teacher. ({str(error).rstrip('.')}.)"
                ) from error
            conv = any(isinstance(m, torch.nn.Conv1d) for m in self.teacher.modules())
            hint = (
                " Its Conv1d layers need (batch, channels, length) signals: add the channel "
                "axis (X.unsqueeze(1))."
                if self.dim == 1 and x.ndim == 2 and conv and "channels" in str(error)
                else ""
            )
            raise ValueError(
                f"teacher failed on a batch of samples of shape {tuple(x.shape[1:])} (AWD gives "
                f"it the batch's own layout, {layout}, and reconstructions of the same shape): "
                f"{str(error).rstrip('.')}.{hint}"
            ) from error
        _check_batch_first(output, len(x[:2]))
        if callable(self.target):
            samples = len(x[:2])
            described = (
                f"of shape {tuple(output.shape)}"
                if isinstance(output, torch.Tensor)
                else f"(a {type(output).__name__})"
            )
            try:
                selected = self.target(output)
            except Exception as error:  # the user's callable: its failure, named
                raise ValueError(
                    f"target, a callable, failed on the teacher's output {described}: "
                    f"{type(error).__name__}: {error}"
                ) from error
            if not (
                isinstance(selected, torch.Tensor)
                and selected.ndim >= 1
                and selected.shape[0] == samples
                and selected[0].numel() == 1
            ):
                shape = (
                    tuple(selected.shape)
                    if isinstance(selected, torch.Tensor)
                    else type(selected).__name__
                )
                raise ValueError(
                    "target, a callable, must return one value per sample, shape (batch,), "
                    f"from the teacher's output {described}; got {shape} for {samples} samples."
                )
        elif self.target is not None and isinstance(output, torch.Tensor):
            # (None, on a teacher of several outputs, fails where attributions are computed:
            # a fit without them, attribution_weight=0 and no validation, does not need one)
            select_target(output, self.target)

    # -- computation -------------------------------------------------------------------------
    def losses(self, x: torch.Tensor, *, create_graph: bool = True) -> dict[str, torch.Tensor]:
        """Every loss term and their weighted sum (``"loss"``) on a batch.

        Parameters
        ----------
        x : torch.Tensor
            Batch of signals or images.
        create_graph : bool, default=True
            Keep the graph of the attributions (needed to train on the attribution term).

        Returns
        -------
        dict of str to torch.Tensor
            ``reconstruction``, ``sparsity``, ``attribution``, the validity terms, and ``loss``.
        """
        return self._losses(self.check_input(x), create_graph=create_graph)

    def _losses(self, x: torch.Tensor, *, create_graph: bool) -> dict[str, torch.Tensor]:
        given, x = x, x.to(self.h0.dtype)
        # in the filter's dtype whatever the Trainer's precision: under "bf16-mixed" autocast
        # would run the transforms (convolutions) in bfloat16, and an exact wavelet would no
        # longer reconstruct its signal (a reconstruction error of bfloat16 rounding)
        with autocast_off(x):
            terms = self._terms(x, create_graph=create_graph)
        self._check_loss(given, x, terms)
        return terms

    def _terms(self, x: torch.Tensor, *, create_graph: bool) -> dict[str, torch.Tensor]:
        h0 = self.h0
        need_attributions = self.weights["attribution"] > 0 or not self.training
        if need_attributions:
            result = self._attributions(x, create_graph=create_graph)
            coefficients, reconstruction = result.coefficients, result.reconstruction
            # the transform's own bands: the public losses' input checks are not needed here
            attribution = _l1_per_sample_unchecked(result.attributions)
        else:
            # the attribution term has no weight: skip the teacher and the double backprop
            coefficients = self._decompose(x)
            reconstruction = self._reconstruct(coefficients, h0, x.shape[-self.dim :])
        terms = {
            "reconstruction": F.mse_loss(reconstruction, x),
            "sparsity": _l1_per_sample_unchecked(coefficients),
            **_validity_terms(h0),
        }
        if need_attributions:
            terms["attribution"] = attribution
        # the weighted sum as one product of the stacked terms with their weights: two tensor
        # operations forward and two backward, where a product and a sum per term took 18 each
        # (about 0.1 ms of a 6 ms step of a small 1D model, forward alone)
        weights = [self.weights[name] for name in terms]
        if any(isinstance(weight, torch.Tensor) for weight in weights):
            # a weight set as a tensor (a schedule, a learned weight) keeps its graph
            terms["loss"] = sum(weight * value for weight, value in zip(weights, terms.values()))
            return terms
        values = torch.stack(list(terms.values()))
        terms["loss"] = torch.dot(values, self._weight_vector(tuple(terms), weights, values))
        return terms

    def _check_loss(self, given: torch.Tensor, x: torch.Tensor, terms: dict) -> None:
        """Refuse a NaN or infinite loss, with its cause, read with the step's other value
        checks (one host sync a step). A NaN or infinite signal, a teacher's NaN gradients and
        terms that overflow the filter's dtype all make the loss so; finite signals whose
        terms overflow would otherwise train ``h0`` into NaN, blamed on the teacher a step
        later."""
        loss = terms["loss"].detach()
        value_check(~torch.isfinite(loss), lambda: self._refuse_non_finite_loss(given, x, terms))

    def _refuse_non_finite_loss(self, given: torch.Tensor, x: torch.Tensor, terms: dict) -> None:
        """The cause of a loss that is not finite (``given``: the batch before the cast to the
        filter's dtype), the batch's first."""
        x = x.detach()
        if not bool(torch.isfinite(x).all()):
            if not bool(torch.isfinite(given.detach()).all()):
                _refuse_non_finite_batch()
            # finite as given, not once cast to the filter's dtype
            raise ValueError(
                f"batch must be finite in the module's dtype, {x.dtype}; got values beyond its "
                f"range (magnitudes up to {torch.finfo(x.dtype).max:.3g}) once cast. Scale the "
                "signals (e.g. standardise them), or train in float64 "
                "(Trainer(precision='64-true'))."
            )
        attribution = terms.get("attribution")
        if attribution is not None and not bool(torch.isfinite(attribution.detach())):
            with self._frozen_teacher():  # its modes and running statistics left as they are
                output = _teacher_output(self.teacher, x)
            check_finite("teacher output", output, where="on this batch")
            raise ValueError(
                "teacher gradients must be finite on this batch; got NaN or infinite "
                "attributions for a finite output."
            )
        if not bool(torch.isfinite(self.h0.detach()).all()):
            raise ValueError(
                "the wavelet filter h0 must be finite; got NaN or infinite values (training "
                "diverged: lower lr)."
            )
        bad = [
            name
            for name, value in terms.items()
            if name != "loss" and not bool(torch.isfinite(value.detach()))
        ]
        if bad:
            raise ValueError(
                f"loss terms must be finite on this batch; got NaN or infinite {', '.join(bad)} "
                f"for finite signals of largest magnitude {float(x.abs().max()):.3g}, which "
                f"overflow {x.dtype} in the loss. Scale the signals (e.g. standardise them), or "
                "train in float64 (Trainer(precision='64-true'))."
            )
        raise ValueError(
            "loss must be finite on this batch; its terms are finite but their weighted sum "
            f"overflows {x.dtype}: lower the weights ({self.weights})."
        )

    def _weight_vector(self, names: tuple, weights: list, like: torch.Tensor) -> torch.Tensor:
        """The (number) ``weights`` of the terms ``names`` as a tensor like ``like``, made once
        per set of names, weights (``self.weights`` may be changed between steps), dtype and
        device, outside inference mode (a first call under ``torch.inference_mode`` would
        otherwise keep a tensor that training may not save for its backward pass)."""
        key = (names, tuple(weights), like.dtype, like.device)
        cached = self.__dict__.get("_weight_cache")
        if cached is None or cached[0] != key:
            with torch.inference_mode(False):
                vector = torch.tensor(key[1], dtype=like.dtype, device=like.device)
            cached = self.__dict__["_weight_cache"] = (key, vector)
        return cached[1]

    def _log_terms(self, stage: str, terms: dict, batch_size: int) -> None:
        # sync_dist: under DDP the epoch value is the mean over every process's samples
        # (Lightning sums the weighted values and the batch sizes across processes)
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                prog_bar=name == "loss",
                batch_size=batch_size,
                on_step=False,
                on_epoch=True,
                sync_dist=True,
            )

    @override
    def on_fit_start(self) -> None:
        super().on_fit_start()
        weights = [self.weights["sparsity"], self.weights["attribution"]]
        if all(not isinstance(w, torch.Tensor) and w == 0 for w in weights):
            # the reconstruction and validity terms alone: a wavelet of PyWavelets already
            # meets them, so the fit would leave the filter where it starts, silently
            rank_zero_warn(
                f"{_NOTHING_TO_DISTIL} (sparsity_weight=0 and attribution_weight=0, the "
                "defaults): the reconstruction and validity terms alone are met by any valid "
                "wavelet, such as the starting one, so training has nothing to move the filter "
                "toward but a valid wavelet and learns nothing from the teacher. Set "
                "attribution_weight (the teacher's TRIM attributions, Ha et al.'s term) and/or "
                "sparsity_weight, e.g. attribution_weight=0.05.",
                category=UserWarning,
            )

    @override
    def on_train_epoch_start(self) -> None:
        self._epoch_means.reset()
        self._stop_values.reset()

    @override
    def training_step(self, batch, batch_idx):
        with one_sync_per_step():  # the loss's finiteness: the batch's and the teacher's too
            x = self._check_input(batch, check_values=False)
            terms = self._losses(x, create_graph=True)
            settle_value_checks()  # before the epoch means and the loggers see the terms
        batch_size = x.shape[0]
        # one stacked, detached tensor of all terms, summed for the epoch means
        values = self._epoch_means.add(terms, batch_size)
        # A call to self.log costs 0.6 to 1 ms on CPU, near a tenth of a small step. Loggers write
        # only every `log_every_n_steps` steps anyway, so log the step values at that cadence,
        # and the epoch means of all terms once per epoch, from running sums. The Trainer writes
        # after the step whose count *including itself* is a multiple of log_every_n_steps
        # (global_step + 1), so log exactly there: a value logged on another step would be
        # written later, under the wrong step.
        logged = logs_step_values(attached_trainer(self))
        if logged:
            for name, value in zip(terms, values):
                self._log_step_value(name, value, batch_size)
        # for a stop set after the step (see on_train_batch_end)
        names = tuple(terms)
        self._stop_values.keep(names, values, names if logged else (), batch_size)
        return terms["loss"]

    def _log_step_value(self, name: str, value: torch.Tensor, batch_size: int) -> None:
        if name == "loss":
            self.log("train/loss", value, prog_bar=True, batch_size=batch_size)
        else:
            self.log(f"train/{name}_step", value, batch_size=batch_size)

    @override
    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # A callback's on_train_batch_end that stopped the run after the step (Timer, which
        # max_time adds, or a user's) makes the loggers write the step values now: the step's
        # own, logged here where the step did not log them (a subclass overriding this hook
        # calls super().on_train_batch_end).
        for name, value in self._stop_values.late(attached_trainer(self)).items():
            self._log_step_value(name, value, self._stop_values.batch_size)

    @override
    def on_train_epoch_end(self) -> None:
        # over every process's samples, the names agreed first (see EpochMeans.synced_means)
        for name, mean in self._epoch_means.synced_means(self.device).items():
            self.log(f"train/{name}_epoch", mean, sync_dist=True)

    def _evaluate(self, batch, stage: str):
        with one_sync_per_step():
            x = self._check_input(batch, check_values=False)
            # The Trainer evaluates under torch.inference_mode, which forbids autograd;
            # attributions are gradients, so leave it locally and work on a normal copy.
            with torch.inference_mode(False), torch.enable_grad():
                x = x.clone()
                terms = {k: v.detach() for k, v in self._losses(x, create_graph=False).items()}
        self._log_terms(stage, terms, x.shape[0])
        return terms["loss"]

    # dataloader_idx: several evaluation loaders are allowed (Lightning refuses them to a step
    # without it); each loader's values are logged under their own "/dataloader_idx_<k>" suffix
    @override
    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        return self._evaluate(batch, "val")

    @override
    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        return self._evaluate(batch, "test")

    def attributions(self, x: torch.Tensor, *, create_graph: bool = False) -> TRIMResult:
        """TRIM attributions of a batch under the current filter.

        Works under ``torch.inference_mode`` too (it is left locally: attributions are
        gradients). Computed with autocast off, in the filter's dtype (the teacher too), also
        under a mixed-precision Trainer.

        Parameters
        ----------
        x : torch.Tensor, or a batch holding one
            Batch of signals or images, read as :meth:`check_input` reads it and cast to the
            filter's dtype (the cast keeps a graph to ``x``).
        create_graph : bool, default=False
            Keep the graph, so that the attributions can be differentiated w.r.t. ``h0``.

        Returns
        -------
        TRIMResult
        """
        x = self.check_input(x).to(self.h0.dtype)
        return self._attributions(x, create_graph=create_graph)

    def _attributions(self, x: torch.Tensor, *, create_graph: bool = False) -> TRIMResult:
        """:meth:`attributions` of a batch already checked and in the filter's dtype."""
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            self._frozen_teacher(),
            autocast_off(x),
        ):
            return trim_attributions(
                self.teacher,
                x.clone() if x.is_inference() else x,
                self.h0,
                levels=self.levels,
                mode=self.mode,
                dim=self.dim,
                method=self.attribution,
                target=self.target,
                create_graph=create_graph,
                n_steps=self.n_steps,
            )

    def mean_attributions(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mean absolute TRIM attribution of every coefficient position over a batch.

        Parameters
        ----------
        x : torch.Tensor
            Batch of signals or images.

        Returns
        -------
        tuple of torch.Tensor
            One tensor per band (flat order, see
            :func:`~lightning_distill.awd.attributions.flatten_coefficients`), without the
            batch dimension.
        """
        result = self._attributions(self.check_input(x).to(self.h0.dtype))
        return tuple(a.detach().abs().mean(dim=0) for a in result.attributions)

    def reconstruct_top(
        self, x: torch.Tensor, n_coefficients: int
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Rebuild each signal from its ``n_coefficients`` most attributed coefficients.

        All other coefficients are set to zero before the inverse transform, so the result shows
        what of the signal the teacher relies on, as seen through the learned wavelet.

        Parameters
        ----------
        x : torch.Tensor
            Batch of signals or images.
        n_coefficients : int
            Coefficients kept per sample, ranked by absolute TRIM attribution.

        Returns
        -------
        reconstruction : torch.Tensor, same shape as ``x``, in the module's dtype
        kept : tuple of torch.Tensor of bool
            Per coefficient tensor, which coefficients were kept.
        """
        x = self.check_input(x).to(self.h0.dtype)
        n_coefficients = check_integer("n_coefficients", n_coefficients)
        result = self._attributions(x)
        batch = x.shape[0]
        scores = torch.cat([a.detach().abs().reshape(batch, -1) for a in result.attributions], 1)
        if not 1 <= n_coefficients <= scores.shape[1]:
            raise ValueError(
                f"n_coefficients must be between 1 and {scores.shape[1]} (coefficients per "
                f"sample); got {n_coefficients}."
            )
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(1, scores.topk(n_coefficients, dim=1).indices, True)
        kept, masked, offset = [], [], 0
        for c in result.coefficients:
            size = c[0].numel()
            mask = keep[:, offset : offset + size].reshape(c.shape)
            offset += size
            kept.append(mask)
            masked.append(c.detach() * mask)
        return self._reconstruct(masked, self.h0.detach(), x.shape[-self.dim :]), tuple(kept)

    def _decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        decompose = wavedec1d if self.dim == 1 else wavedec2d
        with autocast_off(x):
            return flatten_coefficients(decompose(x, self.h0, self.levels, self.mode), self.dim)

    def _reconstruct(self, flat, h0: torch.Tensor, shape) -> torch.Tensor:
        # the inverse transform cropped to the signal: pywt's synthesis can be a sample longer
        coefficients = unflatten_coefficients(flat, self.dim)
        with autocast_off(h0):
            if self.dim == 1:
                return waverec1d(coefficients, h0, self.mode)[..., : shape[0]]
            return waverec2d(coefficients, h0, self.mode)[..., : shape[0], : shape[1]]

    @override
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Flat tuple of wavelet coefficients of ``x`` under the current filter.

        Shapes follow :func:`~lightning_distill.awd.attributions.flatten_coefficients`.
        """
        return self._decompose(self.check_input(x).to(self.h0.dtype))


def _refuse_non_finite_batch() -> None:
    raise ValueError("batch contains NaN or infinite values; AWD needs finite signals.")


def _teacher_output(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The teacher's output on ``x``, for an error message only."""
    with torch.no_grad():
        output = teacher(x.clone())  # a teacher may work in place
    return output if isinstance(output, torch.Tensor) else torch.as_tensor(float("nan"))
