"""Distillation losses as pure functions on tensors.

Every function here is stateless and validates its arguments, so it can be used in a hand-written
loop as well as inside :class:`~lightning_distill.DistillationModule`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor of logits, got dtype {logits.dtype}; "
            "cast with .float() if these really are logits"
        )
    if logits.dim() != 2:
        raise ValueError(
            f"{name} must have shape [batch, classes], got shape {tuple(logits.shape)}"
        )


def _check_pair(student_logits, teacher_logits) -> None:
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            "student_logits and teacher_logits must have the same number of classes, got "
            f"{student_logits.shape[1]} (student) and {teacher_logits.shape[1]} (teacher)"
        )
    if student_logits.shape[0] != teacher_logits.shape[0]:
        raise ValueError(
            "student_logits and teacher_logits must have the same batch size, got "
            f"{student_logits.shape[0]} (student) and {teacher_logits.shape[0]} (teacher)"
        )


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"temperature must be a positive number, got {temperature!r}")
    if not temperature > 0 or temperature != temperature or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def _check_fraction(name: str, value, *, upper_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0 or (upper_open and value == 1.0):
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name} must lie in {bound}, got {value!r}")
    return float(value)


def _check_targets(targets, logits: Tensor) -> None:
    if not isinstance(targets, Tensor):
        raise TypeError(
            f"targets must be a torch.Tensor of class indices, got {type(targets).__name__}"
        )
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must have shape [batch] = {tuple(logits.shape[:1])}, "
            f"got {tuple(targets.shape)}"
        )
    num_classes = logits.shape[1]
    # One reduction, one host sync: cheap next to a forward pass, and it turns CUDA's
    # device-side assert into a readable error.
    if targets.numel() and bool(((targets < 0) | (targets >= num_classes)).any()):
        raise ValueError(
            f"targets must lie in [0, {num_classes - 1}] for {num_classes} classes, "
            f"got values in [{int(targets.min())}, {int(targets.max())}]"
        )


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

    The computation uses ``log_softmax`` in float32 (float64 inputs stay float64) with autocast
    disabled, so it is finite for logits of any magnitude and under bf16/fp16 autocast.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape [batch, classes]
        Floating-point logits.
    temperature : float, default 1.0
        Softening temperature T > 0.
    reduction : {"batchmean", "sum", "none", "mean"}
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
    _check_pair(student_logits, teacher_logits)
    temperature = _check_temperature(temperature)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        log_p_student = F.log_softmax(_float_logits(student_logits) / temperature, dim=1)
        log_p_teacher = F.log_softmax(_float_logits(teacher_logits) / temperature, dim=1)
        # exp(log_t) * (log_t - log_s), summed over classes; exact zero where p_t underflows
        per_sample = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True)
        per_sample = per_sample.sum(dim=1) * (temperature**2)
    return _reduce(per_sample, reduction, student_logits.shape[0])


def label_smoothing_loss(logits: Tensor, targets: Tensor, smoothing: float) -> Tensor:
    r"""Cross-entropy with label smoothing, the baseline KD is usually compared with.

    .. math:: (1 - \varepsilon)\, \mathrm{CE}(y, z) + \varepsilon\, \mathrm{CE}(u, z)

    with :math:`u` the uniform distribution over classes; averaged over the batch. Equal to
    ``torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)``.

    Parameters
    ----------
    logits : Tensor of shape [batch, classes]
    targets : integer Tensor of shape [batch]
    smoothing : float in [0, 1]
    """
    _check_logits("logits", logits)
    _check_targets(targets, logits)
    smoothing = _check_fraction("smoothing", smoothing)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        log_probs = F.log_softmax(_float_logits(logits), dim=1)
        hard = -log_probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        uniform = -log_probs.mean(dim=1)
        return ((1.0 - smoothing) * hard + smoothing * uniform).mean()


class DistillationTerms(NamedTuple):
    """The weighted total and the unweighted terms of :func:`distillation_terms`."""

    total: Tensor
    ce: Tensor
    kd: Tensor


def distillation_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
) -> DistillationTerms:
    """Like :func:`distillation_loss`, but also return the unweighted CE and KD terms."""
    _check_pair(student_logits, teacher_logits)
    alpha = _check_fraction("alpha", alpha)
    ce = label_smoothing_loss(student_logits, targets, label_smoothing)
    kd = kd_loss(student_logits, teacher_logits, temperature)
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
    loss and which drops :math:`T^2` when its ``alpha`` makes the soft term vanish; to reproduce a
    torchdistill configuration with weight ``a``, pass ``alpha = 1 - a``.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape [batch, classes]
    targets : integer Tensor of shape [batch]
        Class indices.
    temperature : float, default 4.0
    alpha : float in [0, 1], default 0.9
        Weight of the teacher (KD) term; ``0`` trains on the labels alone.
    label_smoothing : float in [0, 1], default 0.0
        Label smoothing of the hard-label term.
    """
    return distillation_terms(
        student_logits, teacher_logits, targets, temperature, alpha, label_smoothing
    ).total


# --------------------------------------------------------------------------- feature KD
class HintRegressor(nn.Module):
    """FitNets' regressor: maps a student feature to the teacher feature's shape.

    A 1x1 convolution (``[B, C, H, W]`` features) or a linear map over the last dimension
    (``[B, D]`` or ``[B, L, D]`` features); spatial sizes are then matched to the teacher's by
    bilinear interpolation. Its parameters are trained together with the student.

    Parameters
    ----------
    student_shape, teacher_shape : tuple of int
        Shapes of one sample's feature (batch dimension excluded).
    """

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]):
        super().__init__()
        student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
        if len(student_shape) != len(teacher_shape):
            raise ValueError(
                "student and teacher features must have the same number of dimensions for a "
                f"hint, got {student_shape} (student) and {teacher_shape} (teacher)"
            )
        self.student_shape, self.teacher_shape = student_shape, teacher_shape
        if len(student_shape) == 3:
            self.map = nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1)
        elif len(student_shape) in (1, 2):
            self.map = nn.Linear(student_shape[-1], teacher_shape[-1])
        else:
            raise ValueError(
                "hint features must be [B, D], [B, L, D] or [B, C, H, W], got per-sample shape "
                f"{student_shape}"
            )

    def forward(self, feature: Tensor) -> Tensor:
        out = self.map(feature)
        if out.dim() == 4 and out.shape[2:] != torch.Size(self.teacher_shape[1:]):
            out = F.interpolate(
                out, size=self.teacher_shape[1:], mode="bilinear", align_corners=False
            )
        return out


def hint_loss(student_feature: Tensor, teacher_feature: Tensor, regressor: nn.Module) -> Tensor:
    r"""FitNets hint loss: :math:`\mathrm{mean}\,(r(f_s) - f_t)^2`.

    Parameters
    ----------
    student_feature, teacher_feature : Tensor
    regressor : torch.nn.Module
        Maps the student feature to the teacher feature's shape, e.g. :class:`HintRegressor`.
    """
    mapped = regressor(student_feature)
    if mapped.shape != teacher_feature.shape:
        raise ValueError(
            "regressor(student_feature) must have the teacher feature's shape "
            f"{tuple(teacher_feature.shape)}, got {tuple(mapped.shape)}"
        )
    return F.mse_loss(_float_logits(mapped), _float_logits(teacher_feature))


def attention_map(feature: Tensor, p: float = 2.0) -> Tensor:
    r"""Spatial attention map of Zagoruyko and Komodakis (2017), not yet normalised.

    :math:`Q = \sum_c |A_c|^p`, shape ``[B, H, W]``.
    """
    if not isinstance(feature, Tensor):
        raise TypeError(f"feature must be a [B, C, H, W] tensor, got {type(feature).__name__}")
    if feature.dim() != 4:
        raise ValueError(f"feature must be a [B, C, H, W] tensor, got shape {tuple(feature.shape)}")
    return _float_logits(feature).abs().pow(p).sum(dim=1)


def attention_transfer_loss(
    student_feature: Tensor,
    teacher_feature: Tensor,
    *,
    variant: AttentionVariant,
    p: float = 2.0,
) -> Tensor:
    r"""Attention transfer (Zagoruyko and Komodakis, ICLR 2017).

    Both features give attention maps :math:`Q = \sum_c |A_c|^p`; when their spatial sizes
    differ, the larger map is average-pooled to the smaller size; each map is flattened and
    divided by its L2 norm. Two variants exist and neither is a default:

    - ``variant="paper"``: the paper's eq. (2), the L2 norm of the difference of the normalised
      maps per sample (not squared), averaged over the batch;
    - ``variant="code"``: the authors' released code, the *mean squared* difference of the
      normalised maps over batch and positions (their code then weights it by beta = 1000 / 2;
      pass that as the weight).

    Parameters
    ----------
    student_feature, teacher_feature : Tensor of shape [B, C, H, W]
        Channel counts may differ; batch sizes must agree.
    variant : {"paper", "code"}
    p : float, default 2.0
    """
    if variant not in ("paper", "code"):
        raise ValueError(f"variant must be 'paper' or 'code', got {variant!r}")
    q_student = attention_map(student_feature, p)
    q_teacher = attention_map(teacher_feature, p)
    if q_student.shape[0] != q_teacher.shape[0]:
        raise ValueError(
            "student_feature and teacher_feature must have the same batch size, got "
            f"{q_student.shape[0]} and {q_teacher.shape[0]}"
        )
    if q_student.shape[1:] != q_teacher.shape[1:]:
        size = tuple(min(a, b) for a, b in zip(q_student.shape[1:], q_teacher.shape[1:]))
        q_student = F.adaptive_avg_pool2d(q_student.unsqueeze(1), size).squeeze(1)
        q_teacher = F.adaptive_avg_pool2d(q_teacher.unsqueeze(1), size).squeeze(1)
    q_student = F.normalize(q_student.flatten(1), dim=1)
    q_teacher = F.normalize(q_teacher.flatten(1), dim=1)
    difference = q_student - q_teacher
    if variant == "paper":
        return difference.norm(p=2, dim=1).mean()
    return difference.pow(2).mean()
