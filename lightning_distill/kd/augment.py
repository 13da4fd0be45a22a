"""Teacher-labelled augmentation: new inputs each step, labelled by the teacher.

An ``augment`` callable takes a training batch's ``(inputs, targets)`` and returns new
``(inputs, targets)`` (or only new inputs, keeping the targets; for inputs that are a tuple or
list, always ``(inputs, targets)``: a pair of new inputs would read as inputs and targets). The distillation module applies
it before the teacher and the student see the batch, so the teacher's soft labels describe the
augmented inputs and the student learns the teacher's behaviour beyond the training rows.
Augmentations must not change their arguments in place: the batch may share memory with the
data set.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping

import torch
from torch import Tensor

from lightning_distill._batch import batch_size_of
from lightning_distill._validation import CheckedSetting, check_real, fail

__all__ = ["GaussianNoise", "Mixup", "apply_augment", "gaussian_noise", "mixup"]


def _check_float_inputs(inputs) -> Tensor:
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        got = inputs.dtype if isinstance(inputs, Tensor) else type(inputs).__name__
        fail("inputs", "a floating-point tensor to augment", got, TypeError)
    return inputs


def _folded_beta_share(alpha: float) -> float:
    """``max(l, 1 - l)`` for ``l ~ Beta(alpha, alpha)``, exact in distribution for any alpha."""
    gamma = torch.distributions.Gamma(torch.tensor(alpha + 1.0, dtype=torch.float64), 1.0)
    uniform = torch.rand(2, dtype=torch.float64).clamp_min(torch.finfo(torch.float64).tiny)
    log_gamma, log_uniform = torch.log(gamma.sample((2,))), torch.log(uniform)
    # l = sigmoid(log G1 - log G2); the uniforms' logs are subtracted before the division, which
    # stays finite (or a signed infinity) for an alpha as small as float64 holds; folding to
    # l >= 1/2 takes the absolute difference
    difference = (log_gamma[0] - log_gamma[1]) + (log_uniform[0] - log_uniform[1]) / alpha
    return float(torch.sigmoid(difference.abs()))


class Mixup:
    r"""Mixup (Zhang et al., 2018) of a batch with a shuffled copy of itself.

    :math:`\tilde x = \lambda x + (1 - \lambda) x_{\pi}` with
    :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)` folded to :math:`\lambda \ge 1/2`, so
    each mixed row is dominated by its own row, whose label it keeps for the hard-label term; the
    KD term uses the teacher's output on the mixed input, which is the point of mixing here.
    Uses torch's global random generator. :math:`\lambda` is drawn as
    :math:`G_1 / (G_1 + G_2)` of two Gamma(:math:`\alpha`) variables, each as
    :math:`\mathrm{Gamma}(\alpha + 1)\,U^{1/\alpha}` in logarithms and float64: a direct draw
    underflows for a small :math:`\alpha` (torch's Beta sampler then returns exactly 1/2, the
    strongest mix, where nearly no mixing is due) and overflows float32 for a huge one.
    """

    # checked when set, after construction too: an alpha in (-1, 0) drew mixing shares from
    # no Beta distribution without a word, a lower or NaN one failed in torch's Gamma sampler
    alpha = CheckedSetting(
        functools.partial(check_real, minimum=0.0, exclusive_minimum=True),
        "The Beta distribution's parameter, > 0 (checked when set).",
    )

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        inputs = _check_float_inputs(inputs)
        share = _folded_beta_share(self.alpha)
        order = torch.randperm(inputs.shape[0], device=inputs.device)
        return share * inputs + (1.0 - share) * inputs[order], targets

    def __repr__(self) -> str:
        return f"mixup(alpha={self.alpha})"


# no standard normal draw of torch's reaches this (its Box-Muller draws stay under
# sqrt(-2 ln 2**-53), about 8.6): noise of std s is finite where s times it is
_LARGEST_DRAW = 9.0


class GaussianNoise:
    """Add independent normal noise of standard deviation ``std`` to every input value."""

    # checked when set, after construction too: a NaN std made every input NaN (refused only
    # by the step's later check of the inputs), a negative one noise the repr misreported
    std = CheckedSetting(
        functools.partial(check_real, minimum=0.0, exclusive_minimum=True),
        "The noise's standard deviation, > 0 (checked when set).",
    )

    def __init__(self, std: float = 0.1) -> None:
        self.std = std

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        inputs = _check_float_inputs(inputs)
        # a std too large for the inputs' dtype (1e300, or 1e5 for float16) makes infinite
        # noise: named here, on the host, not by the step's later check of the inputs
        largest = torch.finfo(inputs.dtype).max
        if self.std * _LARGEST_DRAW > largest:
            fail(
                "std",
                f"small enough for noise of the inputs' dtype {inputs.dtype} to stay finite "
                f"(its largest value is {largest:.3g})",
                self.std,
            )
        return inputs + self.std * torch.randn_like(inputs), targets

    def __repr__(self) -> str:
        return f"gaussian_noise(std={self.std})"


def mixup(alpha: float = 0.2) -> Mixup:
    """A mixup augmentation; see :class:`Mixup`.

    Examples
    --------
    >>> x, y = torch.rand(6, 3), torch.arange(6)
    >>> mixed, labels = mixup(0.4)(x, y)
    >>> mixed.shape, bool(torch.equal(labels, y))
    (torch.Size([6, 3]), True)
    """
    return Mixup(alpha)


def gaussian_noise(std: float = 0.1) -> GaussianNoise:
    """A Gaussian-noise augmentation; see :class:`GaussianNoise`.

    Examples
    --------
    >>> noisy, _ = gaussian_noise(0.5)(torch.zeros(1000, 2), torch.zeros(1000))
    >>> 0.45 < float(noisy.std()) < 0.55
    True
    """
    return GaussianNoise(std)


def check_augment(augment):
    """``augment`` must be None or callable, and not one of the factories themselves (``mixup``
    for ``mixup(0.2)``: it would fail at the first step with a message naming neither)."""
    if any(augment is factory for factory in (mixup, gaussian_noise, Mixup, GaussianNoise)):
        raise TypeError(
            f"augment must be an augmentation, such as mixup(0.2) or gaussian_noise(0.05); got "
            f"{augment.__name__} itself: call it to make one, e.g. augment={augment.__name__}()."
        )
    if augment is not None and not callable(augment):
        fail(
            "augment",
            "a callable (inputs, targets) -> (inputs, targets), or None",
            augment,
            TypeError,
        )
    if augment is not None:
        try:
            signature = inspect.signature(augment)
        except (TypeError, ValueError):  # no signature to read (some builtins): not checked
            return augment
        try:
            signature.bind(None, None)
        except TypeError:
            # it would fail at the first training step with Python's message, naming neither
            # augment nor what it is given
            raise TypeError(
                "augment must be a callable taking two arguments, (inputs, targets) (targets "
                f"None for a batch without labels); got {augment!r} with signature "
                f"{signature}."
            ) from None
    return augment


def apply_augment(augment, inputs, targets) -> tuple[object, Tensor | None]:
    """Run ``augment`` on a batch and check what it returns (``targets`` None: a batch without
    labels, which the augmentation must give back as None)."""
    result = augment(inputs, targets)
    if isinstance(result, tuple) and len(result) == 2:
        new_inputs, new_targets = result
    else:
        new_inputs, new_targets = result, targets
    kind = (
        Tensor if isinstance(inputs, Tensor) else Mapping if isinstance(inputs, Mapping) else None
    )
    if isinstance(inputs, tuple | list) and not isinstance(new_inputs, tuple | list):
        # a pair of new inputs alone reads as (inputs, targets): its second item would
        # silently become the targets
        fail(
            "augment",
            f"a callable returning (inputs, targets) for inputs that are a "
            f"{type(inputs).__name__} (new inputs alone cannot be told from a pair of inputs "
            "and targets); e.g. return (inputs, targets) with inputs a "
            f"{type(inputs).__name__} as given",
            f"a {type(result).__name__} whose first item is a {type(new_inputs).__name__}",
            TypeError,
        )
    if new_inputs is None or (kind is not None and not isinstance(new_inputs, kind)):
        expected = "the inputs' kind" if kind is None else f"a {kind.__name__}, as the inputs"
        fail(
            "augment",
            f"a callable returning (inputs, targets) or new inputs ({expected}); an in-place "
            "augmentation must still return them",
            type(new_inputs).__name__,
            TypeError,
        )
    if targets is None:  # a batch without labels: the teacher labels every row
        if new_targets is not None:
            fail(
                "augment",
                "a callable returning new inputs only, or (inputs, None): no targets for a "
                "batch without labels",
                new_targets,
                TypeError,
            )
        return new_inputs, None
    if not isinstance(new_targets, Tensor):
        fail(
            "augment",
            "a callable returning (inputs, targets) tensors",
            type(new_targets).__name__,
            TypeError,
        )
    size = batch_size_of(new_inputs)
    if size is not None and size != new_targets.shape[0]:
        raise ValueError(
            "augment must return inputs and targets with the same batch size; got inputs of "
            f"batch size {size} and targets of batch size {new_targets.shape[0]}."
        )
    return new_inputs, new_targets
