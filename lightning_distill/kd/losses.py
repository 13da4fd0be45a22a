"""Distillation losses as pure functions on tensors.

Every function here is stateless and validates its arguments, so it can be used in a hand-written
loop as well as inside :class:`~lightning_distill.DistillationModule`.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_distill._batch import TARGET_KEYS
from lightning_distill._precision import autocast_off as _autocast_off
from lightning_distill._validation import (
    check_choice,
    check_finite_deferred,
    check_float_tensor,
    check_real,
    check_same_device,
    fail,
    is_listed,
    output_remedy,
    refuse_fixed_setting,
    settle_value_checks,
    value_check,
)

__all__ = [
    "AttentionVariant",
    "DistillationTerms",
    "HintRegressor",
    "attention_map",
    "attention_transfer_loss",
    "distillation_loss",
    "distillation_terms",
    "hint_loss",
    "kd_loss",
    "label_smoothing_loss",
]

AttentionVariant = Literal["paper", "code"]
_REDUCTIONS = ("batchmean", "sum", "mean", "none")


# --------------------------------------------------------------------------- validation
def _check_logits(name: str, logits) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor; got {type(logits).__name__} (a model's output "
            f"that holds the logits? {output_remedy(logits)})."
        )
    if not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor of logits; got dtype {logits.dtype} "
            "(cast with .float() if these really are logits)."
        )
    if logits.dim() > 2:
        # dense outputs (segmentation, tokens): which axis holds the classes is the user's to
        # say, and distilling per position means folding the positions into the batch
        raise ValueError(
            f"{name} must have shape [batch, classes] with classes >= 2; got shape "
            f"{tuple(logits.shape)}: one distribution per position (a segmentation map "
            "[batch, classes, H, W], a sequence [batch, time, classes])? Fold the positions "
            "into the batch, the classes last: logits.movedim(1, -1).flatten(0, -2) for "
            "[batch, classes, H, W], logits.flatten(0, -2) for [batch, time, classes], and "
            "the targets alike (targets.flatten()); the mean reductions then average over "
            "every position of every sample."
        )
    if logits.dim() != 2 or logits.shape[1] == 0:
        raise ValueError(
            f"{name} must have shape [batch, classes] with classes >= 2; got shape "
            f"{tuple(logits.shape)}"
            + (
                ": a single logit per sample (a sigmoid's, for two classes)? Return two "
                "logits, e.g. torch.stack([-z / 2, z / 2], dim=1) for the logits z."
                if logits.dim() == 1
                else "."
            )
        )
    if logits.shape[1] == 1:
        # a softmax over one class is 1 whatever the logit: every loss is 0, nothing is learnt
        raise ValueError(
            f"{name} must have shape [batch, classes] with classes >= 2; got shape "
            f"{tuple(logits.shape)}: a single logit (a sigmoid's, for two classes) gives a "
            "softmax of 1 whatever its value, so the loss would be 0 and nothing learnt. "
            "Return two logits, e.g. torch.cat([-z / 2, z / 2], dim=1) for the logit z."
        )


def _check_pair(student_logits, teacher_logits) -> None:
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            "student_logits and teacher_logits must have the same number of classes; got "
            f"{student_logits.shape[1]} (student) and {teacher_logits.shape[1]} (teacher)."
        )
    if student_logits.shape[0] != teacher_logits.shape[0]:
        raise ValueError(
            "student_logits and teacher_logits must have the same batch size; got "
            f"{student_logits.shape[0]} (student) and {teacher_logits.shape[0]} (teacher)."
        )
    check_same_device("teacher_logits", teacher_logits, "student_logits", student_logits)


def _check_not_empty(name: str, tensor: Tensor) -> None:
    # A mean over no sample is undefined (0 / 0 = NaN): refuse it rather than return NaN.
    if tensor.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one sample for a mean; got shape {tuple(tensor.shape)}."
        )


def _check_logit_values(**named: Tensor) -> None:
    """Refuse NaN, +inf and rows without a finite logit (-inf marks a masked class; one sync)."""
    bad = None
    for logits in named.values():
        flags = torch.isnan(logits).any() | torch.isposinf(logits).any()
        if logits.numel():
            flags = flags | (~(logits > float("-inf")).any(dim=1)).any()
        bad = flags if bad is None else bad | flags
    if bad is None or not bool(bad):
        return
    for name, logits in named.items():
        nan_or_posinf = bool(torch.isnan(logits).any() | torch.isposinf(logits).any())
        if nan_or_posinf or (logits.numel() and not bool((logits > float("-inf")).any(1).all())):
            raise ValueError(
                f"{name} must be finite logits (-inf only to mask a class, at least one finite "
                "class per sample); got NaN, +inf or a row of -inf."
            )


def _check_finite_logits(student_logits: Tensor, teacher_logits: Tensor) -> None:
    """One reduction over both logits (read with the step's other checks, see
    ``one_sync_per_step``); the detailed check only when some logit is not finite."""
    value_check(
        ~(torch.isfinite(student_logits).all() & torch.isfinite(teacher_logits).all()),
        functools.partial(
            _check_logit_values, student_logits=student_logits, teacher_logits=teacher_logits
        ),
    )


def _explain_infinite_kd(student_logits: Tensor, teacher_probabilities: Tensor) -> None:
    """Raise the error of an infinite KD term: a class the student masks (``-inf``) while the
    teacher gives it probability, or (without one) an overflow."""
    conflict = (student_logits == float("-inf")) & (teacher_probabilities > 0)
    if bool(conflict.any()):
        sample, klass = (int(v) for v in conflict.nonzero()[0])
        raise ValueError(
            "student_logits are -inf (a masked class) where the teacher gives probability: "
            f"class {klass} in row {sample} of the batch (teacher probability "
            f"{float(teacher_probabilities[sample, klass]):.3g}), so the KL divergence is "
            f"infinite ({int(conflict.sum())} such entries). Mask the same classes in the "
            "teacher's logits (-inf there too), or leave them unmasked in the student's."
        )
    finite = student_logits[torch.isfinite(student_logits)]
    raise ValueError(
        "student_logits must span less than their dtype's range for a finite KD term; got "
        f"logits from {float(finite.min()):.3g} to {float(finite.max()):.3g} in "
        f"{student_logits.dtype}, whose differences overflow (use float64 or smaller logits)."
    )


# T above this loses even float64's precision in T^2 * KL (relative error 5e-6 at 1e6,
# 1e-4 at 1e7, measured against a long-double reference).
_MAX_TEMPERATURE = 1e6
# T below this: the logits' differences divided by T overflow, and T^2 underflows, in float32
# (T = 1e-40 gave inf * 0 = NaN); the loss's limit there is 0 anyway.
_MIN_TEMPERATURE = 1e-6
# Up to this temperature float32 keeps T^2 * KL to ~1e-7 relative error; above, float64.
_FLOAT32_TEMPERATURE = 10.0


def _check_temperature(temperature) -> float:
    return check_real(
        "temperature", temperature, minimum=_MIN_TEMPERATURE, maximum=_MAX_TEMPERATURE
    )


def _check_fraction(name: str, value, *, upper_open: bool = False) -> float:
    return check_real(name, value, minimum=0, maximum=1, exclusive_maximum=upper_open)


def _check_targets(targets, logits: Tensor, *, settle: bool = True, values: bool = True) -> None:
    """The targets' type and shape, and (``values``, unless checked already in this step) their
    range."""
    if not isinstance(targets, Tensor):
        raise TypeError(
            f"targets must be a torch.Tensor of class indices; got {type(targets).__name__}."
        )
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must hold integer class indices; got dtype {targets.dtype}.")
    if targets.shape != logits.shape[:1]:
        hint = (
            " (a map per sample: a segmentation map read as the targets, as a dict batch's "
            "'labels' is when it has no 'target'? Give the class indices under 'target', or "
            "(inputs, targets) tuples)"
            if targets.dim() > 2
            else ""
        )
        raise ValueError(
            f"targets must have shape [batch] = {tuple(logits.shape[:1])}; "
            f"got {tuple(targets.shape)}{hint}."
        )
    num_classes = logits.shape[1]
    if not values or not targets.numel():
        return

    def explain() -> None:
        low = int(targets.min())
        ignored = (
            f" ({low}: an ignore_index, cross_entropy's -100, marking samples without a label? "
            "They are not skipped here: every target must name a class. Leave those samples "
            "out of the labelled batches, or distil on the teacher alone with alpha=1.0 and "
            "batches without labels)"
            if low < 0
            else ""
        )
        raise ValueError(
            f"targets must lie in [0, {num_classes - 1}] for {num_classes} classes; "
            f"got values in [{low}, {int(targets.max())}]{ignored}."
        )

    # One reduction, read with the step's other checks in one host sync, before the targets
    # are used: it turns CUDA's device-side assert into a readable error.
    value_check(((targets < 0) | (targets >= num_classes)).any(), explain)
    if settle:
        settle_value_checks()


def _reduce(per_sample: Tensor, reduction: str, batch_size: int) -> Tensor:
    if reduction == "batchmean" or reduction == "mean":
        return per_sample.sum() / batch_size
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _float_logits(logits: Tensor) -> Tensor:
    # float64 stays float64 (for reference computations); everything else goes to float32.
    return logits if logits.dtype == torch.float64 else logits.float()


# --------------------------------------------------------------------------- response KD
def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    reduction: str = "batchmean",
) -> Tensor:
    r"""Knowledge-distillation loss of Hinton et al. (2015).

    .. math:: T^2 \, \mathrm{KL}\big(\mathrm{softmax}(t / T) \,\|\, \mathrm{softmax}(s / T)\big)

    The :math:`T^2` factor keeps the gradient's scale independent of the temperature: the
    gradient with respect to the student logits is :math:`T (p_s - p_t) / B`.

    The KL is computed as :math:`\sum_c p_t (\log p_t - \log p_s)` from ``log_softmax`` of both
    logits with autocast disabled, so it is finite for logits of any magnitude and under
    bf16/fp16 autocast: in float32 for ``T <= 10`` and in float64 above (float64 inputs always
    in float64), where the :math:`T^2` factor would otherwise magnify float32's rounding (at
    ``T = 1e5`` float32 gives a *negative* KL). ``T`` lies between ``1e-6`` and ``1e6``: beyond
    ``1e6`` even float64 loses the value, below ``1e-6`` float32 overflows (and the loss's
    limit is 0). A teacher logit of ``-inf`` (a masked class) contributes exactly
    zero. NaN or ``+inf`` logits, or a row without a finite logit, raise ``ValueError``; so do
    an empty batch with a mean reduction, a class the student masks (``-inf``) while the
    teacher gives it probability (an infinite KL), and teacher logits on another device than
    the student's. Logits per position (a segmentation map ``[batch, classes, H, W]``) are
    refused: fold the positions into the batch (``logits.movedim(1, -1).flatten(0, -2)``), and
    ``"batchmean"`` averages over every position of every sample.

    The teacher side is not detached: ``teacher_logits`` that require grad receive gradients.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape [batch, classes]
        Floating-point logits.
    temperature : float, default=1.0
        Softening temperature, ``1e-6 <= T <= 1e6``.
    reduction : {"batchmean", "sum", "none", "mean"}, default="batchmean"
        ``"batchmean"`` divides the summed KL by the batch size (the mathematically correct
        mean KL; ``"mean"`` is an alias of it here, unlike ``torch.nn.KLDivLoss``); ``"none"``
        returns one value per sample.

    Returns
    -------
    Tensor
        A scalar, or a ``[batch]`` tensor for ``reduction="none"``.

    Examples
    --------
    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(kd_loss(s, s, temperature=4.0))
    0.0
    """
    return _kd_loss(student_logits, teacher_logits, temperature, reduction)


def _kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float,
    reduction: str,
    *,
    values_checked: bool = False,
) -> Tensor:
    """:func:`kd_loss`; ``values_checked``: the logits' values were checked already in this
    step (:func:`queue_logit_checks`), so their check is not made twice."""
    _check_pair(student_logits, teacher_logits)
    temperature = _check_temperature(temperature)
    check_choice("reduction", reduction, _REDUCTIONS)
    if reduction in ("batchmean", "mean"):
        _check_not_empty("student_logits", student_logits)
    # One reduction (read with the step's other checks in one host sync) in the common case,
    # all finite; the detailed check only when some logit is not finite.
    if not values_checked:
        _check_finite_logits(student_logits, teacher_logits)
    out_dtype = _float_logits(student_logits).dtype
    wide = temperature > _FLOAT32_TEMPERATURE or out_dtype == torch.float64
    with _autocast_off(student_logits):
        student = student_logits.double() if wide else _float_logits(student_logits)
        teacher = teacher_logits.double() if wide else _float_logits(teacher_logits)
        # Shifted by the row's maximum before dividing by T (softmax does not change): the
        # quotient is <= 0, so a tiny T underflows to -inf (probability 0) instead of
        # overflowing to inf - inf = NaN.
        log_p_student = F.log_softmax(_shift(student) / temperature, dim=1)
        log_p_teacher = F.log_softmax(_shift(teacher) / temperature, dim=1)
        p_teacher = log_p_teacher.exp()
        # p_t (log p_t - log p_s), an exact zero where p_t = 0 (a masked class, -inf, or an
        # underflow), where 0 * (-inf) would be NaN
        terms = torch.where(
            p_teacher > 0, p_teacher * (log_p_teacher - log_p_student), p_teacher.new_zeros(())
        )
        per_sample = (terms.sum(dim=1) * (temperature**2)).to(out_dtype)
    # a class the student masks (-inf) while the teacher gives it probability: an infinite KL,
    # refused rather than logged as inf (read with the step's other checks)
    value_check(
        torch.isinf(per_sample).any(),
        functools.partial(_explain_infinite_kd, student_logits.detach(), p_teacher.detach()),
    )
    return _reduce(per_sample, reduction, student_logits.shape[0])


def _shift(logits: Tensor) -> Tensor:
    if logits.numel() == 0:
        return logits
    return logits - logits.detach().amax(dim=1, keepdim=True)


def label_smoothing_loss(logits: Tensor, targets: Tensor, smoothing: float) -> Tensor:
    r"""Cross-entropy with label smoothing, the baseline KD is usually compared with.

    .. math:: (1 - \varepsilon)\, \mathrm{CE}(y, z) + \varepsilon\, \mathrm{CE}(u, z)

    with :math:`u` the uniform distribution over classes; averaged over the batch. Equal to
    ``torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)`` where that
    is finite. A masked class (logit ``-inf``) is allowed; a target on one, or
    ``smoothing > 0`` with one (the uniform part gives it probability), makes the loss
    infinite and raises ``ValueError`` instead.

    Parameters
    ----------
    logits : Tensor of shape [batch, classes]
    targets : integer Tensor of shape [batch]
    smoothing : float in [0, 1]
    """
    return _smoothed_cross_entropy(logits, targets, smoothing, strict=True)


def _smoothed_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    smoothing: float,
    *,
    strict: bool,
    values_checked: bool = False,
    targets_checked: bool = False,
):
    """:func:`label_smoothing_loss`; ``strict=False`` (evaluation, where the value is reported,
    not trained on) gives an infinite or NaN loss as it is instead of refusing it;
    ``values_checked``: the logits' values were checked already (by the KD term of the same
    step), so their check is not made twice; ``targets_checked``: likewise the targets' range
    (:func:`queue_logit_checks`)."""
    _check_logits("logits", logits)
    _check_not_empty("logits", logits)
    smoothing = _check_fraction("smoothing", smoothing)
    if isinstance(targets, Tensor):  # before the targets' range is read, on their device
        check_same_device("targets", targets, "logits", logits)
    _check_targets(targets, logits, settle=False, values=not targets_checked)
    with _autocast_off(logits):
        log_probs = F.log_softmax(_float_logits(logits), dim=1)
        if strict:
            # NaN or +inf logits, or a row without a finite one (a NaN loss), and a label on a
            # masked (-inf) class or smoothing that gives one probability (an infinite loss):
            # refused rather than trained on. Flagged before the targets are used (clamped: an
            # index out of range is the range check's to refuse, which comes first), so that
            # the flags are read in one host sync with the step's other checks.
            if not values_checked:
                value_check(
                    ~torch.isfinite(logits).all(),
                    functools.partial(_check_logit_values, logits=logits),
                )
            safe = targets.long().clamp(0, logits.shape[1] - 1).unsqueeze(1)
            infinite = torch.isinf(log_probs.gather(1, safe)).any()
            if smoothing > 0:
                infinite = infinite | torch.isinf(log_probs).any()
            value_check(
                infinite,
                functools.partial(_explain_infinite_ce, logits.detach(), targets, smoothing),
            )
        settle_value_checks()
        loss = -log_probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        if smoothing > 0:  # 0 * inf would be NaN for a masked (-inf) logit
            loss = (1.0 - smoothing) * loss - smoothing * log_probs.mean(dim=1)
        return loss.mean()


def _explain_infinite_ce(logits: Tensor, targets: Tensor, smoothing: float) -> None:
    """Raise the error of an infinite cross-entropy: a label on a masked class, or label
    smoothing (which gives every class probability) with a masked class, or an overflow."""
    masked = logits == float("-inf")
    on_label = masked.gather(1, targets.long().unsqueeze(1)).squeeze(1)
    if bool(on_label.any()):
        sample = int(on_label.nonzero()[0, 0])
        raise ValueError(
            "targets must name classes whose logit is not -inf (masked); got class "
            f"{int(targets[sample])} in row {sample} of the batch, whose logit is -inf, so the "
            f"cross-entropy is infinite ({int(on_label.sum())} such rows)."
        )
    if smoothing > 0 and bool(masked.any()):
        klass = int(masked.nonzero()[0, 1])
        raise ValueError(
            f"label smoothing ({smoothing:g}) gives every class probability smoothing / "
            f"classes, a masked class too (class {klass} is -inf): the cross-entropy is "
            "infinite. Leave label smoothing at 0 with masked classes."
        )
    finite = logits[torch.isfinite(logits)]
    raise ValueError(
        "logits must span less than their dtype's range for a finite cross-entropy; got "
        f"logits from {float(finite.min()):.3g} to {float(finite.max()):.3g} in "
        f"{logits.dtype}, whose differences overflow (use float64 or smaller logits)."
    )


class DistillationTerms(NamedTuple):
    """The weighted total and the unweighted terms of :func:`distillation_terms` (``ce`` is
    None when there are no labels: ``alpha=1``, the teacher's soft labels alone)."""

    total: Tensor
    ce: Tensor | None
    kd: Tensor


def check_labels_or_teacher_alone(targets, alpha: float) -> None:
    """Refuse a batch without labels unless the loss is the teacher's term alone."""
    if targets is None and alpha != 1.0:
        raise ValueError(
            f"targets must be given while alpha={alpha!r} < 1 weights the hard-label term by "
            f"{1.0 - alpha:.3g}; got a batch without labels. Learn from the teacher's soft "
            "labels alone with alpha=1.0 (an unlabelled transfer set), or give batches "
            f"(inputs, targets) (a dict batch names them with one of the keys {TARGET_KEYS})."
        )


def queue_logit_checks(
    student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None, *, settle: bool
) -> None:
    """Make :func:`distillation_terms`' checks of the logits and labels ahead of it, read with
    the step's next :func:`settle_value_checks`: the feature losses run before it, and a method
    that changes state from the batch (CRD's banks) reads them with its own checks first. The
    loss is then computed with ``values_checked=True`` (:func:`_distillation_terms`), so that
    they are made once. ``settle``: read them at once, before a callable feature loss (the
    user's code, which may keep state) gets the batch."""
    _check_pair(student_logits, teacher_logits)
    _check_finite_logits(student_logits, teacher_logits)
    if targets is not None:
        _check_targets(targets, student_logits, settle=False)
    if settle:
        settle_value_checks()


def distillation_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
) -> DistillationTerms:
    """Like :func:`distillation_loss`, but also return the unweighted CE and KD terms.

    ``targets=None`` is allowed with ``alpha=1``: the total is then the KD term and ``ce`` None.
    """
    return _distillation_terms(
        student_logits, teacher_logits, targets, temperature, alpha, label_smoothing
    )


def _distillation_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor | None,
    temperature: float,
    alpha: float,
    label_smoothing: float,
    *,
    values_checked: bool = False,
) -> DistillationTerms:
    """:func:`distillation_terms`; ``values_checked``: the logits' values and the targets' range
    were checked already in this step (:func:`queue_logit_checks`)."""
    _check_pair(student_logits, teacher_logits)
    _check_not_empty("student_logits", student_logits)
    alpha = _check_fraction("alpha", alpha)
    # named as the argument is (the cross-entropy's own check names it 'smoothing')
    label_smoothing = _check_fraction("label_smoothing", label_smoothing)
    check_labels_or_teacher_alone(targets, alpha)
    if isinstance(targets, Tensor):  # named as the arguments are (the cross-entropy's: logits)
        check_same_device("targets", targets, "student_logits", student_logits)
    kd = _kd_loss(
        student_logits, teacher_logits, temperature, "batchmean", values_checked=values_checked
    )
    if targets is None:
        return DistillationTerms(kd, None, kd)
    # the student's logits were checked by kd_loss (or, with the targets, ahead of it)
    ce = _smoothed_cross_entropy(
        student_logits,
        targets,
        label_smoothing,
        strict=True,
        values_checked=True,
        targets_checked=values_checked,
    )
    return DistillationTerms((1.0 - alpha) * ce + alpha * kd, ce, kd)


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Hinton et al.'s combined loss: hard labels and the teacher's softened outputs.

    .. math:: (1 - \alpha)\, \mathrm{CE}(y, s) + \alpha\, T^2\, \mathrm{KL}(p_t^T \| p_s^T)

    ``alpha`` weights the *teacher* term, and the :math:`T^2` factor is kept for every
    ``alpha``. This differs from torchdistill's ``KDLoss``, whose ``alpha`` weights the hard-label
    loss and which returns the soft term *without* :math:`T^2` when its ``alpha`` is 0 or
    ``None`` (the soft term alone). To reproduce a torchdistill configuration with weight
    ``a > 0``, pass ``alpha = 1 - a``; with ``a = 0`` its loss is this one (``alpha=1``)
    divided by :math:`T^2`.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape [batch, classes]
    targets : integer Tensor of shape [batch], or None
        Class indices; None (no labels) only with ``alpha=1``.
    temperature : float, default=4.0
    alpha : float in [0, 1], default=0.9
        Weight of the teacher (KD) term; ``0`` trains on the labels alone, ``1`` on the
        teacher alone.
    label_smoothing : float in [0, 1], default=0.0
        Label smoothing of the hard-label term.
    """
    return distillation_terms(
        student_logits, teacher_logits, targets, temperature, alpha, label_smoothing
    ).total


# --------------------------------------------------------------------------- feature KD
def _check_feature_shape(name: str, shape) -> tuple[int, ...]:
    """One sample's feature shape: sizes >= 1 (a size of 0 mapped nothing, and a hint to an
    empty teacher feature was a mean over nothing, NaN); returns it as a tuple of ints."""
    constraint = "a tuple of sizes >= 1 (one sample's feature shape)"
    if not is_listed(shape) or isinstance(shape, Tensor):
        fail(name, constraint, shape, TypeError)
    sizes = tuple(shape)
    if any(isinstance(size, bool) or not isinstance(size, numbers.Integral) for size in sizes):
        fail(name, constraint, shape, TypeError)
    if any(size < 1 for size in sizes):
        fail(name, constraint, shape)
    return tuple(int(size) for size in sizes)


_HINT_SETTINGS = ("student_shape", "teacher_shape", "channels_first")


class HintRegressor(nn.Module):
    """A FitNets-style regressor: maps a student feature to the teacher feature's shape.

    Linear, unlike FitNets' (a convolution with the hint layer's nonlinearity) and mdistiller's
    or RepDistiller's ``ConvReg`` (a convolution sized to match the spatial sizes, batch
    normalisation and a ReLU); the hint loss on its output is theirs. A 1x1 convolution over
    the channels (``[B, C, H, W]`` features, and ``[B, C, L]`` ones with
    ``channels_first``) or a linear map over the last dimension (``[B, D]``, and ``[B, L, D]``
    token features); spatial sizes are then matched to the teacher's by bilinear (linear, for
    ``[B, C, L]``) interpolation. Its parameters are trained together with the student.

    Parameters
    ----------
    student_shape, teacher_shape : tuple of int
        Shapes of one sample's feature (batch dimension excluded).
    channels_first : bool, default=False
        For three-dimensional features: ``[B, C, L]`` (a 1-D convolution's output, mapped over
        ``C``) rather than ``[B, L, D]`` (tokens, mapped over ``D``, the lengths equal).
    """

    def __init__(
        self,
        student_shape: tuple[int, ...],
        teacher_shape: tuple[int, ...],
        channels_first: bool = False,
    ):
        super().__init__()
        student_shape = _check_feature_shape("student_shape", student_shape)
        teacher_shape = _check_feature_shape("teacher_shape", teacher_shape)
        if len(student_shape) != len(teacher_shape):
            raise ValueError(
                "student and teacher features must have the same number of dimensions for a "
                f"hint; got {student_shape} (student) and {teacher_shape} (teacher)."
            )
        if not isinstance(channels_first, bool):
            fail("channels_first", "a bool", channels_first, TypeError)
        self.student_shape, self.teacher_shape = student_shape, teacher_shape
        self.channels_first = channels_first and len(student_shape) == 2
        if len(student_shape) == 3:
            self.map = nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1)
        elif self.channels_first:
            self.map = nn.Conv1d(student_shape[0], teacher_shape[0], kernel_size=1)
        elif len(student_shape) == 2 and student_shape[0] != teacher_shape[0]:
            raise ValueError(
                f"hint features {student_shape} (student) and {teacher_shape} (teacher) read as "
                "[B, L, D] tokens must have the same length L: the regressor maps D only. "
                "Features of 1-D convolutions are [B, C, L]: pass "
                "FeatureDistillation(..., options={'channels_first': True}) (the default when "
                "the named layer is a 1-D convolution, norm or pooling layer)."
            )
        elif len(student_shape) in (1, 2):
            self.map = nn.Linear(student_shape[-1], teacher_shape[-1])
        else:
            raise ValueError(
                "hint features must be [B, D], [B, L, D] or [B, C, H, W]; got per-sample shape "
                f"{student_shape}"
            )

    def __setattr__(self, name: str, value) -> None:
        # the map is built from these: set later, teacher_shape resized the output the map
        # gave (interpolated to another size, without a word) and channels_first interpolated
        # a token map's output along its features
        refuse_fixed_setting(self, name, value, _HINT_SETTINGS, "the map is built from it")
        super().__setattr__(name, value)

    def forward(self, feature: Tensor) -> Tensor:
        out = self.map(feature)
        if out.dim() == 4 and out.shape[2:] != torch.Size(self.teacher_shape[1:]):
            out = F.interpolate(
                out, size=self.teacher_shape[1:], mode="bilinear", align_corners=False
            )
        if self.channels_first and out.shape[2:] != torch.Size(self.teacher_shape[1:]):
            out = F.interpolate(
                out, size=self.teacher_shape[1:], mode="linear", align_corners=False
            )
        return out


def hint_loss(student_feature: Tensor, teacher_feature: Tensor, regressor: nn.Module) -> Tensor:
    r"""FitNets hint loss: :math:`\mathrm{mean}\,(r(f_s) - f_t)^2`.

    The mean runs over every element of the batch's features, as in the common
    reimplementations (``MSELoss`` in RepDistiller and mdistiller, which weight it by 100);
    FitNets' paper writes :math:`\tfrac12 \|u_h - r(v_g)\|^2` per sample, which averaged over
    the batch is this value times half the teacher feature's size per sample. The teacher side is not detached:
    a ``teacher_feature`` that requires grad receives gradients.

    Parameters
    ----------
    student_feature, teacher_feature : Tensor
        Floating-point features with a batch dimension first; NaN or infinite values raise
        ``ValueError`` (as for the other feature losses) rather than give a NaN loss.
    regressor : torch.nn.Module
        Maps the student feature to the teacher feature's shape, e.g. :class:`HintRegressor`.
    """
    check_float_tensor("student_feature", student_feature, min_dim=1)
    check_float_tensor("teacher_feature", teacher_feature, min_dim=1)
    if not callable(regressor):
        fail("regressor", "a module or callable", type(regressor).__name__, TypeError)
    _check_not_empty("student_feature", student_feature)  # a mean over no sample is NaN
    check_same_device("teacher_feature", teacher_feature, "student_feature", student_feature)
    for name, feature in (
        ("student_feature", student_feature),
        ("teacher_feature", teacher_feature),
    ):
        if math.prod(feature.shape[1:]) == 0:  # a mean over no value (NaN), or a hint of nothing
            fail(name, "a feature of at least one value per sample", tuple(feature.shape))
    # read with the step's other value checks (one host sync; see one_sync_per_step)
    check_finite_deferred("student_feature", student_feature)
    check_finite_deferred("teacher_feature", teacher_feature)
    mapped = regressor(student_feature)
    if not isinstance(mapped, Tensor):
        fail("regressor", "a callable returning a tensor", type(mapped).__name__, TypeError)
    if mapped.shape != teacher_feature.shape:
        raise ValueError(
            "regressor(student_feature) must have the teacher feature's shape "
            f"{tuple(teacher_feature.shape)}; got {tuple(mapped.shape)}."
        )
    with _autocast_off(mapped):
        return F.mse_loss(_float_logits(mapped), _float_logits(teacher_feature))


def attention_map(feature: Tensor, p: float = 2.0) -> Tensor:
    r"""Spatial attention map of Zagoruyko and Komodakis (2017), not yet normalised.

    :math:`Q = \sum_c |A_c|^p`, shape ``[B, H, W]``. For ``p < 1`` the slope of
    :math:`|a|^p` is infinite at ``a = 0``; an activation exactly 0 (a ReLU's) passes no
    gradient, as through the ReLU itself, rather than a NaN one.

    The absolute value is the paper's. The authors' code and RepDistiller's and mdistiller's
    ``AT`` take ``f.pow(p).mean(1)``: the mean over channels changes nothing once the map is
    normalised, but without the absolute value an odd ``p`` keeps the sign of negative
    activations and a fractional one gives NaN for them; for ``p = 2`` (their default) and
    non-negative features (after a ReLU) the maps agree.
    """
    _check_feature("feature", feature)
    p = check_real("p", p, minimum=0, exclusive_minimum=True)
    magnitude = _float_logits(feature).abs()
    if p < 1:
        # p * 0^(p - 1) = inf, times abs's zero slope at 0, was a NaN gradient
        nonzero = magnitude > 0
        powered = torch.where(nonzero, magnitude, torch.ones_like(magnitude)).pow(p)
        return torch.where(nonzero, powered, torch.zeros_like(powered)).sum(dim=1)
    return magnitude.pow(p).sum(dim=1)


def _check_feature(name: str, feature) -> None:
    if not isinstance(feature, Tensor):
        raise TypeError(f"{name} must be a [B, C, H, W] tensor; got {type(feature).__name__}.")
    if not feature.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {feature.dtype}.")
    if feature.dim() != 4 or 0 in feature.shape[1:]:
        raise ValueError(
            f"{name} must be a [B, C, H, W] tensor with C, H, W >= 1; got shape "
            f"{tuple(feature.shape)}."
        )


def attention_transfer_loss(
    student_feature: Tensor,
    teacher_feature: Tensor,
    *,
    variant: AttentionVariant,
    p: float = 2.0,
) -> Tensor:
    r"""Attention transfer (Zagoruyko and Komodakis, ICLR 2017).

    Both features give attention maps :math:`Q = \sum_c |A_c|^p`; when their spatial sizes
    differ, the larger *feature* is first average-pooled to the smaller size (as the common
    reimplementations do, RepDistiller's and mdistiller's ``AT``; the authors' code needs equal
    sizes); each map is flattened and divided by its L2 norm. Two variants exist; this function
    has no default (:class:`~lightning_distill.FeatureDistillation` takes ``"code"``):

    - ``variant="paper"``: the paper's eq. (2), the L2 norm of the difference of the normalised
      maps per sample (not squared), averaged over the batch;
    - ``variant="code"``: the authors' released code, the *mean squared* difference of the
      normalised maps over batch and positions (their code then weights the sum over layers by
      beta = 1000, ``--beta 1e+3``, as mdistiller's and RepDistiller's ``AT`` do; pass that as
      the weight; the paper's eq. (2) writes beta / 2).

    Parameters
    ----------
    student_feature, teacher_feature : Tensor of shape [B, C, H, W]
        Channel counts may differ; batch sizes must agree.
    variant : {"paper", "code"}
    p : float, default=2.0
        Attention-map exponent, ``p > 0`` (of :math:`|A|^p`, see :func:`attention_map`).

    The teacher side is not detached: a ``teacher_feature`` that requires grad receives
    gradients.

    Returns
    -------
    Tensor
        A scalar. Empty batches, non-finite features and maps of a single position (a 1x1
        feature, or one pooled to 1x1: the normalised map is 1 whatever the feature, so the
        loss would be 0) raise ``ValueError``.
    """
    check_choice("variant", variant, ("paper", "code"))
    p = check_real("p", p, minimum=0, exclusive_minimum=True)
    _check_feature("student_feature", student_feature)
    _check_feature("teacher_feature", teacher_feature)
    if student_feature.shape[0] != teacher_feature.shape[0]:
        raise ValueError(
            "student_feature and teacher_feature must have the same batch size; got "
            f"{student_feature.shape[0]} and {teacher_feature.shape[0]}."
        )
    check_same_device("teacher_feature", teacher_feature, "student_feature", student_feature)
    _check_not_empty("student_feature", student_feature)
    size = tuple(min(a, b) for a, b in zip(student_feature.shape[2:], teacher_feature.shape[2:]))
    if size == (1, 1):
        # a map of one position divided by its norm is 1 whatever the feature: a loss of 0
        raise ValueError(
            "student_feature and teacher_feature must have attention maps of more than one "
            f"position; got spatial sizes {tuple(student_feature.shape[2:])} (student) and "
            f"{tuple(teacher_feature.shape[2:])} (teacher), compared at {size}: a map of one "
            "position, normalised, is 1 whatever the feature, so the loss would be 0 and "
            "nothing learnt. Distil layers before the global pooling."
        )
    # read with the step's other value checks (one host sync; see one_sync_per_step)
    check_finite_deferred("student_feature", student_feature)
    check_finite_deferred("teacher_feature", teacher_feature)
    # Each map is divided by its norm below, so scaling a sample's feature changes nothing;
    # dividing by its largest magnitude first keeps |A|^p from overflowing (or underflowing).
    # In float32 (float64 kept) with autocast off, as the logit losses.
    student_feature = _float_logits(student_feature)
    teacher_feature = _float_logits(teacher_feature)
    with _autocast_off(student_feature):
        if student_feature.shape[2:] != teacher_feature.shape[2:]:
            student_feature = F.adaptive_avg_pool2d(student_feature, size)
            teacher_feature = F.adaptive_avg_pool2d(teacher_feature, size)
        q_student = attention_map(_unit_max(student_feature), p)
        q_teacher = attention_map(_unit_max(teacher_feature), p)
        q_student = F.normalize(q_student.flatten(1), dim=1)
        q_teacher = F.normalize(q_teacher.flatten(1), dim=1)
        difference = q_student - q_teacher
        if variant == "paper":
            return difference.norm(p=2, dim=1).mean()
        return difference.pow(2).mean()


def _unit_max(feature: Tensor) -> Tensor:
    feature = _float_logits(feature)
    scale = feature.detach().abs().amax(dim=(1, 2, 3), keepdim=True)
    return feature / torch.where(scale > 0, scale, torch.ones_like(scale))
