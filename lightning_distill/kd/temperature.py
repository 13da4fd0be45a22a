r"""Choosing the distillation temperature: a sweep of short runs, or a learned temperature.

* :func:`select_temperature` trains one short run per temperature and seed and reports, per
  temperature, the student's accuracy, its agreement with the teacher and the KL divergence to
  the teacher (at temperature 1) on validation data, with their spread over seeds. It costs
  ``len(temperatures) * len(seeds)`` trainings; use it to choose a fixed temperature.
* :class:`LearnedTemperature` is the global temperature of Curriculum Temperature for KD
  (Li et al., AAAI 2023): :math:`T = t_\mathrm{start} + t_\mathrm{range}\,\sigma(\theta)`,
  trained *adversarially*: a gradient-reversal layer flips the gradient reaching
  :math:`\theta`, so the temperature moves to make the KD loss harder while the student moves to
  make it easier, and the reversal's strength :math:`\lambda` rises from 0 to
  :math:`\lambda_\mathrm{max}` on a cosine ramp over the first epochs (easy to hard). It costs
  one scalar parameter and nothing measurable per step, and needs no sweep; the temperature it
  ends at is not the one a sweep would choose, it is a curriculum.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import random
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor, nn

from lightning_distill._batch import TEACHER_READS_AFTER, unpack_batch, watch_for_teacher
from lightning_distill._modes import evaluation_mode
from lightning_distill._monitoring import loader_generators
from lightning_distill._precision import autocast_off as _autocast_off
from lightning_distill._teacher import tensors_given_back
from lightning_distill._validation import (
    _as_python_number,
    check_choice,
    check_integer,
    check_real,
    fail,
    refuse_fixed_setting,
    torch_assigns,
    value_check,
)
from lightning_distill.kd.losses import (
    _FLOAT32_TEMPERATURE,
    _MAX_TEMPERATURE,
    _MIN_TEMPERATURE,
    _check_finite_logits,
    _check_not_empty,
    _check_pair,
    _check_targets,
    _check_temperature,
    _explain_infinite_kd,
    _float_logits,
    _shift,
)

if TYPE_CHECKING:  # pandas and matplotlib load when a selection runs or is drawn
    import pandas as pd

__all__ = [
    "LearnedTemperature",
    "TemperatureSelection",
    "gradient_reversal",
    "kd_loss_at",
    "select_temperature",
]


# --------------------------------------------------------------------------- learned
class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, strength: float) -> Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.strength * grad, None


def gradient_reversal(x: Tensor, strength: float) -> Tensor:
    """Identity forward; the backward pass multiplies the gradient by ``-strength``."""
    return _GradientReversal.apply(x, float(strength))


def _log_softmax_at(logits: Tensor, temperature: Tensor) -> Tensor:
    """``log_softmax(logits / T)`` with masked (``-inf``) classes kept out of every gradient: they
    are divided as zeros and put back as ``-inf``, so no ``0 * inf`` reaches ``T``'s gradient."""
    kept = logits > float("-inf")
    scaled = torch.where(kept, _shift(logits), 0.0) / temperature
    return F.log_softmax(torch.where(kept, scaled, float("-inf")), dim=1)


def kd_loss_at(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: Tensor,
    *,
    max_temperature: float | None = None,
) -> Tensor:
    r""":math:`T^2\,\mathrm{KL}(p_t^T \| p_s^T)` averaged over the batch, with ``temperature`` a
    tensor that may carry a gradient (:func:`~lightning_distill.kd.losses.kd_loss` takes a
    number).

    The same conventions as ``kd_loss``: the KL is taken in float64 for float64 logits and
    for temperatures that can exceed 10 (where the :math:`T^2` factor would magnify float32's
    rounding; CTKD's range reaches 21), in float32 otherwise, autocast off, and returned in the
    logits' floating dtype (float32 for half types); ``max_temperature`` is the largest
    temperature the tensor can take (a :class:`LearnedTemperature`'s upper end), which spares
    reading the tensor's value (a host sync on an accelerator) to decide. A teacher logit of ``-inf`` (a masked class) contributes exactly zero
    with finite gradients for the student and the temperature, and NaN or ``+inf`` logits, a
    row without a finite logit, or a class the student masks while the teacher gives it
    probability (an infinite KL) raise ``ValueError``; so do an empty batch and a temperature
    outside ``[1e-6, 1e6]`` (kd_loss's bounds) or NaN. ``temperature`` is a number or a
    one-element tensor.

    The teacher side is not detached: ``teacher_logits`` that require grad receive gradients.
    """
    _check_pair(student_logits, teacher_logits)
    _check_not_empty("student_logits", student_logits)  # a mean over no sample is NaN
    _check_finite_logits(student_logits, teacher_logits)
    _check_temperature_tensor(temperature, read=max_temperature is None)
    out_dtype = _float_logits(student_logits).dtype
    if max_temperature is None:
        max_temperature = float(torch.as_tensor(temperature).detach().max())
    wide = out_dtype == torch.float64 or max_temperature > _FLOAT32_TEMPERATURE
    dtype = torch.float64 if wide else out_dtype
    with _autocast_off(student_logits):
        # one value: the loss is a scalar, as kd_loss's, whatever the tensor's shape ([1], [1, 1])
        temperature = torch.as_tensor(temperature, device=student_logits.device).to(dtype)
        temperature = temperature.reshape(())
        log_student = _log_softmax_at(student_logits.to(dtype), temperature)
        log_teacher = _log_softmax_at(teacher_logits.to(dtype), temperature)
        p_teacher = log_teacher.exp()
        # p_t (log p_t - log p_s) with zero where p_t = 0; the unused branch gets finite inputs
        # so that its zero gradient does not turn into 0 * inf = NaN
        used = p_teacher > 0
        terms = p_teacher * torch.where(used, log_teacher - log_student, 0.0)
        kl = torch.where(used, terms, 0.0).sum()
        # a class the student masks while the teacher gives it probability (kd_loss's check)
        value_check(
            torch.isinf(kl),
            functools.partial(_explain_infinite_kd, student_logits.detach(), p_teacher.detach()),
        )
        return (kl * temperature.square() / student_logits.shape[0]).to(out_dtype)


def _check_temperature_tensor(temperature, *, read: bool) -> None:
    """One temperature, a number or a one-element real tensor, within kd_loss's bounds (a
    temperature of 0 or below, or NaN, gave a loss of 0, of reversed softmaxes, or NaN). Its
    value is read at once when ``read`` (the caller reads it anyway), else with the step's
    other value checks (one host sync)."""
    if not isinstance(temperature, Tensor):
        _check_temperature(temperature)
        return
    if temperature.numel() != 1 or temperature.is_complex() or temperature.dtype == torch.bool:
        fail("temperature", "a number or a one-element real tensor", temperature, TypeError)
    bad = ~((temperature >= _MIN_TEMPERATURE) & (temperature <= _MAX_TEMPERATURE)).all()

    def explain() -> None:
        _check_temperature(float(temperature.detach().reshape(())))

    if read:
        if bool(bad):
            explain()
    else:
        value_check(bad, explain)


def _check_top(t_start: float, t_range: float) -> None:
    if not t_start + t_range <= _MAX_TEMPERATURE:
        # the bound of a fixed temperature: above it T^2 * KL loses even float64's precision
        # (and a sum that overflows made the temperature infinite)
        raise ValueError(
            f"t_start + t_range must be <= {_MAX_TEMPERATURE:g} (the largest temperature the KD "
            f"loss takes); got t_start={t_start!r}, t_range={t_range!r}, summing to "
            f"{t_start + t_range!r}."
        )


def _check_interior(t_start: float, t_range: float) -> None:
    """A range with a float32 value strictly inside it (the temperature is held inside)."""
    low = torch.tensor(t_start, dtype=torch.float32)
    high = torch.tensor(t_start + t_range, dtype=torch.float32)
    # ends that round to one float32 have nothing between them
    if not (low < high and torch.nextafter(low, high) <= torch.nextafter(high, low)):
        raise ValueError(
            "t_range must leave a float32 value strictly between t_start and t_start + t_range "
            f"(the temperature is computed in float32 at least); got t_start={t_start!r}, "
            f"t_range={t_range!r}."
        )


#: LearnedTemperature's settings, checked when set (in the constructor or after it)
_LEARNED_CHECKED_ON_SET = {
    "t_start": functools.partial(check_real, "t_start", minimum=_MIN_TEMPERATURE),
    "t_range": functools.partial(check_real, "t_range", minimum=0.0, exclusive_minimum=True),
    "ramp_epochs": functools.partial(check_integer, "ramp_epochs", minimum=0),
    "max_reversal": functools.partial(check_real, "max_reversal", minimum=0.0),
}


class LearnedTemperature(nn.Module):
    r"""A global temperature learned adversarially, as in CTKD (Li et al., AAAI 2023).

    .. math:: T = t_\mathrm{start} + t_\mathrm{range}\,\sigma(\theta), \qquad
              \lambda_e = \lambda_\mathrm{max}\,\tfrac12\big(1 - \cos(\pi \min(e, E) / E)\big)

    :math:`\theta` receives the KD loss's gradient multiplied by :math:`-\lambda_e` (gradient
    reversal) in the :math:`e`-th epoch, with :math:`E` = ``ramp_epochs``. Epochs are counted from
    1, as the authors' code counts them (:class:`~lightning_distill.DistillationModule` passes
    Lightning's ``current_epoch + 1``): the first epoch already reverses, with
    :math:`\lambda_1 = \lambda_\mathrm{max}(1 - \cos(\pi / E)) / 2`, and full strength is
    reached in epoch :math:`E`. The temperature stays strictly inside
    :math:`(t_\mathrm{start}, t_\mathrm{start} + t_\mathrm{range})`, also where the sigmoid
    rounds to 0 or 1 (past :math:`|\theta| \approx 17` in float32): there it is held at the
    nearest value inside the range (one rounding step from the end), while :math:`\theta`
    keeps the gradient of the formula above. It is computed in float32 at least (in float64
    for a float64 :math:`\theta`), as the KD loss reads it: a bfloat16 :math:`\theta` would
    round it to steps of 0.125 in CTKD's range.

    The ramp scales :math:`\theta`'s *gradient*, as the authors' code does; there
    :math:`\theta` shares the student's SGD optimizer, so the ramp scales its steps. An
    adaptive optimizer (Adam, AdamW: ``DistillationModule``'s default is Adam) divides each
    gradient by its own running scale and so undoes the ramp: the reversal keeps its direction
    but :math:`\theta` moves at nearly full speed from the first epoch (measured over 12
    epochs with the student frozen, ``ramp_epochs=10``: :math:`\theta`'s step in epoch 1 was
    0.99 of its step in epoch 10 under Adam, 0.032 under SGD; the schedule's ratio is 0.024).
    For the curriculum, train with ``optimizer="sgd"``.

    Parameters
    ----------
    t_start : float, default=1.0
        Lower end of the range (CTKD's default).
    t_range : float, default=20.0
        Width of the range (CTKD's default).
    ramp_epochs : int, default=10
        Epochs of the cosine ramp of the reversal strength; 0: full strength from the start.
    max_reversal : float, default=1.0
        :math:`\lambda_\mathrm{max}`.
    initial : float, optional
        Initial temperature, inside the range; by default
        :math:`t_\mathrm{start} + t_\mathrm{range}\,\sigma(1)` (15.62 for the default range),
        where the authors' code starts (its :math:`\theta` is initialised to 1).

    Examples
    --------
    >>> temperature = LearnedTemperature(t_start=1.0, t_range=20.0, initial=4.0)
    >>> round(float(temperature(reversal=0.0)), 4)
    4.0
    >>> round(LearnedTemperature(ramp_epochs=10).reversal_strength(5), 6)
    0.5
    """

    def __init__(
        self,
        t_start: float = 1.0,
        t_range: float = 20.0,
        *,
        ramp_epochs: int = 10,
        max_reversal: float = 1.0,
        initial: float | None = None,
    ) -> None:
        super().__init__()
        # each checked by __setattr__, the range's top once both ends are set
        self.t_start = t_start
        self.t_range = t_range
        self.ramp_epochs = ramp_epochs
        self.max_reversal = max_reversal
        theta = 1.0
        if initial is not None:
            upper = self.t_start + self.t_range
            initial = check_real(
                "initial",
                initial,
                minimum=self.t_start,
                maximum=upper,
                exclusive_minimum=True,
                exclusive_maximum=True,
            )
            share = (initial - self.t_start) / self.t_range
            theta = math.log(share / (1.0 - share))
        # fixed: set later, it had changed nothing but what as_data() (and so the module's
        # hyperparameters) reported as the start, silently
        self.initial = initial
        self.theta = nn.Parameter(torch.tensor(theta))

    def __setattr__(self, name: str, value) -> None:
        # the settings set after construction are checked as the constructor checks them: a
        # t_start below 0 let the temperature turn negative, a range beyond the KD loss's
        # largest temperature or a ramp of -1 epochs (full strength at once) trained silently
        refuse_fixed_setting(self, name, value, ("initial",), "theta starts from it")
        check = _LEARNED_CHECKED_ON_SET.get(name)
        if check is not None and not torch_assigns(self, name, value):
            value = check(value)
            ends = {
                "t_start": self.__dict__.get("t_start"),
                "t_range": self.__dict__.get("t_range"),
            }
            if name in ends:
                ends[name] = value
                if None not in ends.values():
                    _check_top(**ends)
                    _check_interior(**ends)
        super().__setattr__(name, value)

    def reversal_strength(self, epoch: int) -> float:
        """:math:`\\lambda_e` in the ``epoch``-th epoch, counted from 1 (0 gives 0)."""
        if self.ramp_epochs == 0:
            return self.max_reversal
        progress = min(max(epoch, 0), self.ramp_epochs) / self.ramp_epochs
        return self.max_reversal * 0.5 * (1.0 - math.cos(math.pi * progress))

    def forward(self, reversal: float) -> Tensor:
        """The temperature (a scalar tensor) whose gradient reaches :math:`\\theta` reversed and
        scaled by ``reversal`` (>= 0: a negative one would descend the KD loss instead)."""
        if not 0 <= reversal < math.inf:  # NaN too
            fail("reversal", "a finite number >= 0 (the reversal strength)", reversal)
        return self._temperature(gradient_reversal(self.theta, reversal))

    def _temperature(self, theta: Tensor) -> Tensor:
        r""":math:`t_\mathrm{start} + t_\mathrm{range}\,\sigma(\theta)`, strictly inside the
        range: where rounding reaches an end (a saturated sigmoid), the nearest value inside,
        with the formula's gradient."""
        if theta.dtype != torch.float64:
            theta = theta.float()  # a half-precision theta: the temperature in float32
        temperature = self.t_start + self.t_range * torch.sigmoid(theta)
        # the ends as the dtype holds them, one step inwards: nearest to the true end, so one
        # step inwards is inside it. Numbers, not tensors: a tensor made on theta's device at
        # every step would be a copy from the host that waits for the device's queued work
        exact = np.float64 if theta.dtype == torch.float64 else np.float32
        low, high = exact(self.t_start), exact(self.t_start + self.t_range)
        # each held in that dtype exactly, so clamp reads them as they are
        low, high = float(np.nextafter(low, high)), float(np.nextafter(high, low))
        inside = temperature.clamp(low, high)
        # the held value forward, the formula's gradient backward (a clamp's would be zero,
        # and theta could not come back from the end)
        return temperature + (inside - temperature).detach()

    def get_extra_state(self) -> dict:
        """The range, saved beside :math:`\\theta`: the parameter is a temperature only in it."""
        return {"t_start": self.t_start, "t_range": self.t_range}

    def set_extra_state(self, state) -> None:
        pass  # the range was checked in _load_from_state_dict, before theta was copied

    def _check_range(self, state) -> None:
        if not isinstance(state, dict):
            return
        changed = [k for k in ("t_start", "t_range") if k in state and state[k] != getattr(self, k)]
        if changed:
            raise ValueError(
                "temperature must have the range of the checkpoint's learned temperature (its "
                "parameter is a temperature only in that range: "
                + ", ".join(f"{k}={state[k]!r}" for k in changed)
                + "); got "
                + ", ".join(f"{k}={getattr(self, k)!r}" for k in changed)
                + ". Pass LearnedTemperature("
                + ", ".join(
                    f"{k}={state.get(k, getattr(self, k))!r}" for k in ("t_start", "t_range")
                )
                + ") to resume the fit or load the weights, or leave temperature out of "
                "load_from_checkpoint to use the saved one."
            )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ) -> None:
        # refused before theta is copied: a refused load leaves the temperature as it was
        self._check_range(state_dict.get(prefix + "_extra_state"))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )
        if prefix + "_extra_state" in missing_keys:  # saved before the range was: nothing to
            missing_keys.remove(prefix + "_extra_state")  # compare

    def as_data(self) -> dict:
        """The settings as plain data (for hyperparameters); :meth:`from_data` rebuilds it."""
        return {
            "learned": True,
            "t_start": self.t_start,
            "t_range": self.t_range,
            "ramp_epochs": self.ramp_epochs,
            "max_reversal": self.max_reversal,
            "initial": self.initial,
        }

    @classmethod
    def from_data(cls, data: dict) -> LearnedTemperature:
        """The temperature :meth:`as_data` described, at its initial value."""
        known = {"learned", "t_start", "t_range", "ramp_epochs", "max_reversal", "initial"}
        if not isinstance(data, dict) or data.get("learned") is not True or set(data) - known:
            fail("temperature", "a number > 0, a LearnedTemperature or its as_data() dict", data)
        return cls(**{k: v for k, v in data.items() if k != "learned"})

    @property
    def value(self) -> float:
        """The current temperature."""
        with torch.no_grad():
            return float(self._temperature(self.theta))

    def extra_repr(self) -> str:
        return (
            f"t_start={self.t_start}, t_range={self.t_range}, ramp_epochs={self.ramp_epochs}, "
            f"max_reversal={self.max_reversal}"
        )


# --------------------------------------------------------------------------- sweep
_CRITERIA = {"agreement": True, "accuracy": True, "kl": False}  # higher is better?


@dataclass
class TemperatureSelection:
    """The result of :func:`select_temperature`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per temperature: ``accuracy``, ``agreement``, ``kl`` (means over seeds) and
        ``accuracy_std``, ``agreement_std``, ``kl_std`` (sample standard deviations; NaN for one
        seed), and ``runs``.
    runs : pandas.DataFrame
        One row per temperature and seed.
    best_temperature : float
        The temperature with the best mean ``criterion``, chosen whether or not it beats the
        others by more than the spread over seeds (no test is made): read the ``_std``
        columns, or the runs seed by seed, before calling one temperature better.
    criterion : str
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    best_temperature: float
    criterion: str

    def plot(self, ax=None):
        """Accuracy and agreement (left axis) and KL (right axis) against the temperature, with
        error bars of one standard deviation over seeds. Returns the figure."""
        from matplotlib.figure import Figure

        if ax is None:
            figure = Figure(figsize=(5.5, 3.5), layout="constrained")
            ax = figure.add_subplot()
        else:
            figure = ax.figure
        table = self.table
        temperatures = table.index.to_numpy(dtype=float)
        for column, colour in (("accuracy", "tab:blue"), ("agreement", "tab:green")):
            ax.errorbar(
                temperatures,
                table[column],
                yerr=table[f"{column}_std"].fillna(0.0),
                marker="o",
                capsize=3,
                color=colour,
                label=f"student {column}" if column == "accuracy" else "agreement with teacher",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
        ax.minorticks_off()
        ax.set_xlabel("temperature")
        ax.set_ylabel("share of validation rows")
        right = ax.twinx()
        right.errorbar(
            temperatures,
            table["kl"],
            yerr=table["kl_std"].fillna(0.0),
            marker="s",
            capsize=3,
            color="tab:red",
            linestyle="--",
            label="KL(teacher || student)",
        )
        right.set_ylabel("KL to the teacher (T = 1)")
        ax.axvline(self.best_temperature, color="grey", linewidth=0.8, linestyle=":")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        handles, labels = lines[0] + more[0], lines[1] + more[1]
        if figure.get_layout_engine() is not None:
            # below the axes, where the layout makes room: inside, "best" sees only one of the
            # two axes and covers the other's error bars
            ax.legend(
                handles,
                labels,
                fontsize=8,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                ncol=3,
                frameon=False,
            )
        else:  # a caller's figure without a layout engine would cut a legend off below
            ax.legend(handles, labels, fontsize=8, loc="best")
        ax.set_title(f"Temperature sweep (best by {self.criterion}: {self.best_temperature:g})")
        return figure


@contextlib.contextmanager
def _isolated_global_seeds():
    """The caller's random states (Python, numpy, torch) and ``PL_GLOBAL_SEED`` as they were
    once the runs, which seed them, are over."""
    # seed_everything seeds numpy's legacy global generator: that is the state to keep
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    seed_variable = os.environ.get("PL_GLOBAL_SEED")
    try:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        if seed_variable is None:
            os.environ.pop("PL_GLOBAL_SEED", None)
        else:
            os.environ["PL_GLOBAL_SEED"] = seed_variable


@contextlib.contextmanager
def _same_shuffle_each_run(loader):
    """Give each run the loader's generators as they were at the call (so a run's data order
    does not depend on the runs before it), and give them back so at the end."""
    generators = loader_generators(loader)
    states = [generator.get_state() for generator in generators]

    def rewind():
        for generator, state in zip(generators, states):
            generator.set_state(state)

    try:
        yield rewind
    finally:
        rewind()


def _as_sequence(values):
    """A 1-D numpy array or tensor as a list (numpy and torch numbers become Python numbers);
    anything else unchanged."""
    if isinstance(values, np.ndarray | torch.Tensor) and values.ndim == 1:
        return values.tolist()
    return values


def _check_temperatures(temperatures) -> list[float]:
    temperatures = _as_sequence(temperatures)
    if isinstance(temperatures, str) or not isinstance(temperatures, Sequence):
        fail("temperatures", "a non-empty sequence of numbers > 0", temperatures, TypeError)
    if len(temperatures) == 0:
        fail("temperatures", "a non-empty sequence of numbers > 0", temperatures)
    values = []
    for value in temperatures:
        value = _as_python_number(value)  # a 0-d tensor (an item of a tensor), as seeds take
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            fail("temperatures", "a non-empty sequence of numbers > 0", temperatures, TypeError)
        if not _MIN_TEMPERATURE <= value <= _MAX_TEMPERATURE:  # NaN too
            # the module's own bounds, checked before the first run rather than in the middle
            fail(
                "temperatures",
                f"a non-empty sequence of numbers >= {_MIN_TEMPERATURE:g} and "
                f"<= {_MAX_TEMPERATURE:g}",
                temperatures,
            )
        values.append(float(value))
    if len(set(values)) != len(values):
        fail("temperatures", "distinct numbers", temperatures)
    # the table shows six significant digits: two that read alike there could not be told apart
    shown = [f"{value:.6g}" for value in values]
    if len(set(shown)) != len(shown):
        fail(
            "temperatures",
            "numbers that differ in their first six significant digits",
            temperatures,
        )
    return values


def _inputs_and_targets(batch, name: str = "val"):
    """A batch read as ``DistillationModule`` reads it; a bad one is blamed on ``name``."""
    try:
        inputs, targets, _ = unpack_batch(batch)
    except ValueError as error:
        raise ValueError(f"{name} must yield batches the module can read: {error}") from None
    return inputs, targets


def _check_loader(name: str, loader) -> None:
    """A loader of readable batches, checked on its first batch before any training."""
    if loader is None or isinstance(loader, str | bytes) or not isinstance(loader, Iterable):
        fail(name, "a DataLoader (an iterable of batches)", loader, TypeError)
    if getattr(loader, "persistent_workers", False) and getattr(loader, "num_workers", 0) > 0:
        # the workers start once (seeded from the random state of that moment) and live on
        # from one run to the next: their random state is not the run's seed's
        warnings.warn(
            f"{name} has persistent_workers=True: its workers start once and keep their random "
            "state from one run to the next, so with random augmentation in the data set a "
            "run's data, and its scores, depend on the runs before it and on the random state "
            "before the call; build the loader with persistent_workers=False for runs that are "
            "each repeatable.",
            UserWarning,
            stacklevel=3,
        )
    if isinstance(loader, Iterator):
        # read once by this check and once per run: the later runs would train (or be
        # scored) on nothing, and be reported all the same
        fail(
            name,
            "data that can be read again (a DataLoader, a list of batches): every run reads it",
            f"a one-shot {type(loader).__name__}",
            TypeError,
        )
    for batch in loader:
        _inputs_and_targets(batch, name)
        return
    fail(name, "a loader with at least one batch", loader)


def _check_uses_temperature(module, temperature: float) -> None:
    """Refuse a module that will not distil at ``temperature``: a learned temperature, or a
    fixed one other than asked (a factory that ignores its argument)."""
    asked = f"a callable building a module that distils at the temperature it is given ({temperature:g})"
    if isinstance(getattr(module, "learned_temperature", None), nn.Module):
        fail("make_module", asked, "a module with a LearnedTemperature, which sets its own")
    hparams = getattr(module, "hparams", None)
    used = hparams.get("temperature") if isinstance(hparams, Mapping) else None
    if isinstance(used, numbers.Real) and not isinstance(used, bool):
        if not math.isclose(float(used), temperature, rel_tol=1e-9):
            fail("make_module", asked, f"a module with temperature {float(used):g}")


class _FreshModules:
    """Refuse a module that shares parameters or buffers with a module whose run changed them (a
    factory closing over one student would train it again in every run); the teacher may be
    shared, and so may a part of the student that no run changes (a frozen feature extractor
    built once: refused only once a run has changed it, e.g. its batch normalisation's running
    statistics, since every later run would start from another one). Such a part is given
    back its own tensors after each run, as the teacher is (a casting precision casts it)."""

    def __init__(self) -> None:
        # (id of a submodule, name of its parameter or buffer) -> the submodule
        self._changed: dict[tuple[int, str], weakref.ref] = {}
        self._before: list[tuple[weakref.ref, str, Tensor, Tensor]] = []

    def check(self, module) -> None:
        """Refuse ``module`` before its run; keep what its run may change, for :meth:`record`."""
        from lightning.pytorch import LightningModule

        # a torch.compile'd module (which Lightning fits) is checked as the module it wraps
        if not isinstance(getattr(module, "_orig_mod", module), LightningModule):
            fail("make_module", "a callable returning a LightningModule", module, TypeError)
        teacher = getattr(module, "teacher", None)
        if not isinstance(teacher, nn.Module):  # scoring needs it: refused before training
            raise ValueError(
                "make_module must be a callable returning a module with a .teacher (an "
                f"nn.Module); got a {type(module).__name__} whose teacher is "
                f"{type(teacher).__name__ if teacher is not None else None}."
            )
        shared = {id(m) for m in teacher.modules()}
        before = []
        # by submodule and name: a precision or device move replaces a buffer by a new tensor
        for submodule in module.modules():
            if id(submodule) in shared:
                continue
            own = (
                *submodule.named_parameters(recurse=False),
                *submodule.named_buffers(recurse=False),
            )
            for name, tensor in own:
                earlier = self._changed.get((id(submodule), name))
                if earlier is not None and earlier() is submodule:
                    fail(
                        "make_module",
                        "a callable building a new student on every call (the teacher may be "
                        "shared, and so may frozen parts of the student that no run changes)",
                        "a module whose student was changed by an earlier run",
                    )
                # the values before the run: whether it changed them is read afterwards (not
                # from requires_grad: a callback may unfreeze a part during the fit)
                before.append((weakref.ref(submodule), name, tensor, tensor.detach().clone()))
        self._before = before

    def record(self) -> None:
        """After the run of the module last checked: remember what it changed, and give what
        it only cast or moved back its own tensors."""
        with torch.no_grad():
            for ref, name, tensor, values in self._before:
                submodule = ref()
                now = None if submodule is None else getattr(submodule, name, None)
                if not isinstance(now, Tensor):
                    continue
                # a casting precision ("64-true", "bf16-true") leaves the module cast: the same
                # values in another dtype are no change
                same = now.shape == values.shape and torch.equal(
                    now.detach().cpu(), values.to(device="cpu", dtype=now.dtype)
                )
                if not same:
                    self._changed[(id(submodule), name)] = ref
                else:
                    if isinstance(tensor, nn.Parameter) and tensor.dtype != values.dtype:
                        tensor.data = values  # cast in place (its values are unchanged)
                    elif tensor.device != values.device:
                        tensor.data = values
                    if now is not tensor:  # a buffer (or parameter) replaced by a cast copy
                        setattr(submodule, name, tensor)
        self._before = []


def _to_module(tensor: Tensor, device, dtype) -> Tensor:
    """``tensor`` on the module's device, in its floating dtype when floating."""
    cast = dtype is not None and tensor.is_floating_point()
    return tensor.to(device, dtype) if cast else tensor.to(device)


@torch.no_grad()
def _validation_scores(module, val) -> dict[str, float]:
    student, teacher = module, module.teacher  # an nn.Module (_FreshModules.check)
    # both in eval mode, each submodule's own mode given back after (through its own train()
    # where it has one: the flags alone left such a module in its evaluation setting)
    with evaluation_mode(student), evaluation_mode(teacher):
        return _scores_in_eval(student, teacher, val)


def _scores_in_eval(student, teacher, val) -> dict[str, float]:
    device = next(student.parameters()).device
    # a Trainer's precision ("64-true", "bf16-true") cast the module: its floating inputs too
    dtype = next((p.dtype for p in student.parameters() if p.is_floating_point()), None)
    correct = agree = rows = 0
    kl = 0.0
    for batch in val:
        inputs, targets = _inputs_and_targets(batch)
        # every tensor of the inputs (a dict or tuple of them too), as the fit's precision
        # plugin and device transfer gave them to the module
        inputs = apply_to_collection(inputs, Tensor, _to_module, device, dtype)
        targets = targets.to(device)
        # the teacher reads the batch after the student (see watch_for_teacher)
        watch, later = watch_for_teacher(inputs)
        student_logits = student(inputs)
        watch.check("student", TEACHER_READS_AFTER)
        teacher_logits = teacher(later)
        try:  # as training reads them: [N] class indices ([N, 1] would broadcast)
            _check_targets(targets, student_logits)
        except (TypeError, ValueError) as error:
            raise type(error)(f"val batches: {error}") from None
        predictions = student_logits.argmax(1)
        correct += int((predictions == targets).sum())
        agree += int((predictions == teacher_logits.argmax(1)).sum())
        kl += float(kd_loss_at(student_logits, teacher_logits, torch.tensor(1.0))) * len(targets)
        rows += len(targets)
    if rows == 0:
        fail("val", "a loader with at least one batch", val)
    return {"accuracy": correct / rows, "agreement": agree / rows, "kl": kl / rows}


def select_temperature(
    make_module: Callable[[float], nn.Module],
    make_trainer: Callable[[], object],
    train,
    val,
    temperatures: Sequence[float] = (1, 2, 4, 8, 16),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    criterion: str = "agreement",
) -> TemperatureSelection:
    """Train one short run per temperature and seed and compare them on validation data.

    Each run seeds Python, numpy and torch with its seed (``lightning.seed_everything``), builds
    a module with ``make_module(temperature)`` and a trainer with ``make_trainer()``, fits on
    ``train`` and scores the student on ``val``: accuracy, agreement with the teacher's
    predictions and KL(teacher || student) at temperature 1. Runs with the same seeds give the
    same table (on CPU, given deterministic data loading). A ``train`` loader that shuffles
    with its own ``torch.Generator`` (``DataLoader(generator=...)``, or its sampler's) has it
    rewound before each run, so every run draws the same data order whatever ran before it,
    and given back as it was; so is a ``val`` loader's, before each scoring (a loader with
    ``persistent_workers=True`` keeps its workers, and their random state, from one run to
    the next: a warning says so). The caller's random states and ``PL_GLOBAL_SEED`` are restored
    afterwards. ``make_module`` must build a new student on
    every call (a module whose student an earlier run changed is refused; a frozen part of the
    student that no run changes, such as a pretrained feature extractor, may be shared, and
    so may the teacher: a Trainer precision that casts the module, ``"64-true"`` or ``"bf16-true"``, casts a
    teacher inside it for the run, and the sweep gives it back its own tensors after each
    run), and both loaders are checked on their first batch before any training. A module
    that says it distils at another temperature (``hparams.temperature``, as
    ``DistillationModule`` keeps it) or with a ``LearnedTemperature`` is refused; for a module
    that does not say, a sweep whose temperatures all gave the same student (the same KL, seed
    by seed) is warned about.

    Parameters
    ----------
    make_module : callable
        ``temperature -> DistillationModule`` (or any LightningModule whose ``forward`` gives
        the student's logits and which has a ``teacher``).
    make_trainer : callable
        ``() -> lightning.Trainer``; a fresh one per run, e.g. with a few epochs.
    train, val : DataLoader
        Batches ``(inputs, targets)`` (or with an index, or dicts), read as
        ``DistillationModule`` reads them.
    temperatures : sequence of float, default=(1, 2, 4, 8, 16)
    seeds : sequence of int, default=(0, 1, 2)
        Distinct integers in ``[0, 2**32 - 1]`` (numpy's seed range). Give the spread over
        runs; more seeds, narrower doubt, linear cost.
    criterion : {"agreement", "accuracy", "kl"}, default="agreement"
        Chooses ``best_temperature`` (highest mean agreement or accuracy, lowest mean KL).
        Ties go to the lowest mean KL (the highest mean agreement for ``"kl"``), then to the
        lowest temperature, whatever the order of ``temperatures``.

    Returns
    -------
    TemperatureSelection
        ``table``, ``runs``, ``best_temperature`` and ``plot()``.
    """
    from lightning.fabric.utilities.seed import seed_everything

    if not callable(make_module):
        fail("make_module", "a callable temperature -> module", make_module, TypeError)
    if not callable(make_trainer):
        fail("make_trainer", "a callable () -> lightning.Trainer", make_trainer, TypeError)
    temperatures = _check_temperatures(temperatures)
    seeds = _as_sequence(seeds)
    if isinstance(seeds, str) or not isinstance(seeds, Sequence):
        fail("seeds", "a non-empty sequence of integers", seeds, TypeError)
    if len(seeds) == 0:  # the right type, no value: as an empty temperatures is refused
        fail("seeds", "a non-empty sequence of integers", seeds)
    # numpy's bounds, which seed_everything enforces when the run starts (not naming seeds)
    seeds = [check_integer("seeds", seed, minimum=0, maximum=2**32 - 1) for seed in seeds]
    if len(set(seeds)) != len(seeds):
        # a seeded run repeated gives the same figures: a spread of 0 that was never measured
        fail("seeds", "distinct integers (each seed's run is repeatable)", tuple(seeds))
    check_choice("criterion", criterion, tuple(_CRITERIA))
    records = []
    trainers: list = []
    fresh = _FreshModules()
    # reading a loader draws a seed from its own generator when it has one: val's is rewound
    # before each scoring and, as train's, given back at the end
    with (
        _isolated_global_seeds(),
        _same_shuffle_each_run(train) as rewind,
        _same_shuffle_each_run(val) as rewind_val,
    ):
        _check_loader("train", train)
        _check_loader("val", val)
        for temperature in temperatures:
            for seed in seeds:
                seed_everything(seed, verbose=False)
                rewind()
                module = make_module(temperature)
                fresh.check(module)
                _check_uses_temperature(module, temperature)
                trainer = make_trainer()
                if not callable(getattr(trainer, "fit", None)):  # a forgotten return: None
                    fail(
                        "make_trainer",
                        "a callable returning a lightning.Trainer",
                        trainer,
                        TypeError,
                    )
                if any(earlier() is trainer for earlier in trainers):
                    fail(
                        "make_trainer",
                        "a callable building a new Trainer on every call (a fitted Trainer "
                        "does not train again: the later runs would be scored untrained)",
                        "the Trainer of an earlier run",
                    )
                trainers.append(weakref.ref(trainer))  # not kept alive (nor its module)
                # a Trainer whose precision casts the module ("64-true", "bf16-true") casts a
                # teacher inside it: the caller's teacher is given back its own tensors after
                # each run (the next run casts it again), not left cast or rounded by the sweep
                with tensors_given_back(module.teacher):
                    trainer.fit(module, train_dataloaders=train)
                    if getattr(trainer, "global_step", 1) == 0:
                        fail(
                            "make_trainer",
                            "a Trainer that trains (the run at temperature "
                            f"{temperature:g}, seed {seed} made no optimizer step)",
                            "a run of 0 steps (max_steps=0, max_epochs=0, or no batch in train)",
                        )
                    rewind_val()
                    scores = _validation_scores(module, val)
                fresh.record()
                records.append({"temperature": temperature, "seed": seed, **scores})
    import pandas as pd

    runs = pd.DataFrame.from_records(records)
    if len(temperatures) > 1 and (runs.groupby("seed")["kl"].nunique() == 1).all():
        # a module whose temperature is not read (a fixed one in a callback, say) trains the
        # same student at every temperature: a table of equal rows that compared nothing
        warnings.warn(
            "select_temperature: every temperature gave the same student (the same KL to the "
            "teacher, seed by seed): make_module(temperature) seems not to use its "
            "temperature, and the table compares nothing.",
            UserWarning,
            stacklevel=2,
        )
    grouped = runs.groupby("temperature", sort=False)[["accuracy", "agreement", "kl"]]
    table = grouped.mean()
    spread = grouped.std(ddof=1).add_suffix("_std")
    table = table.join(spread)
    table["runs"] = runs.groupby("temperature", sort=False).size()
    table = table[
        ["accuracy", "accuracy_std", "agreement", "agreement_std", "kl", "kl_std", "runs"]
    ]
    return TemperatureSelection(table, runs, _best_temperature(table, criterion), criterion)


def _best_temperature(table, criterion: str) -> float:
    """The temperature of ``table`` with the best mean ``criterion``. Ties (equal means up to
    rounding: common with fractions of a small validation set) go to the lowest mean KL, or the
    highest mean agreement when the criterion is KL, then to the lowest temperature: the choice
    does not depend on the order the temperatures were listed in."""
    tie_break = "agreement" if criterion == "kl" else "kl"
    candidates = table.index.to_numpy(dtype=float)
    for column in (criterion, tie_break):
        values = table.loc[candidates, column].to_numpy(dtype=float)
        best = values.max() if _CRITERIA[column] else values.min()
        candidates = candidates[np.isclose(values, best, rtol=1e-12, atol=0.0)]
    return float(candidates.min())
