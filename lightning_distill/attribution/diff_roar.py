"""DiffROAR (Shah, Jain & Netrapalli, NeurIPS 2021): do attributions rank discriminative pixels?

Remove-and-retrain, from both ends: keep only the ``k`` most (top-k) or least (bottom-k)
attributed input coordinates of every training and test image, retrain a fresh model on each
masked training set, and compare the test accuracies::

    DiffROAR(k) = accuracy(top-k kept) - accuracy(bottom-k kept)

Positive when the attribution ranks the discriminative coordinates first, about 0 for a random
attribution, negative when it ranks them last ("feature inversion").
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill._logging import attached_trainer
from lightning_distill._monitoring import as_module_input, random_state_kept
from lightning_distill._precision import refuse_float16_adam
from lightning_distill._validation import (
    check_choice,
    check_finite,
    check_integer,
    check_real,
    check_trainer_kwargs,
    describe,
    fail,
    keeps_its_type,
)
from lightning_distill.attribution.methods import (
    FORWARD_ARGS,
    AttributionMethod,
    _single_tensor,
    attribute_indexed,
    check_method,
    evaluation_mode,
    forward_argument_name,
    forward_arguments,
    per_input_forward_args,
    per_input_kwargs,
)

__all__ = ["diff_roar", "mask_by_rank"]


class _Classifier(L.LightningModule):
    """Cross-entropy training of a plain ``nn.Module`` with Adam; ``epoch_end(trainer)``, when
    given, runs at the end of every training epoch (it may set ``trainer.should_stop``)."""

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        epoch_end: Callable[[L.Trainer], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.epoch_end = epoch_end

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def on_train_epoch_end(self) -> None:
        if self.epoch_end is not None:
            self.epoch_end(self.trainer)

    def configure_optimizers(self):
        refuse_float16_adam(
            self.model.parameters(),
            "trainer_kwargs['precision']",
            "'16-mixed' or 'bf16-true' for diff_roar, whose fresh models train with Adam",
            "their weights",
            precision=getattr(attached_trainer(self), "precision", None),
        )
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def _as_pair(name: str, data) -> tuple[Tensor, Tensor]:
    if isinstance(data, TensorDataset):
        data = data.tensors
    elif callable(getattr(data, "classification", None)):
        # the library's data sets (DigitBlocks, SyntheticCells) yield dicts with masks beside
        # the images; their (image, target) pairs are one call away
        fail(
            name,
            "an (images, targets) pair of tensors or a TensorDataset of them (for a "
            f"{type(data).__name__}, pass its .classification())",
            type(data).__name__,
            TypeError,
        )
    if not isinstance(data, Sequence) or len(data) != 2:
        fail(
            name, "an (images, targets) pair of tensors or a TensorDataset of them", data, TypeError
        )
    images, targets = data
    if not isinstance(images, Tensor) or not images.is_floating_point() or images.ndim < 2:
        shown = (
            f"a {images.dtype} tensor of shape {tuple(images.shape)}"
            if isinstance(images, Tensor)
            else type(images).__name__
        )
        fail(f"{name}[0]", "a floating-point [N, ...] tensor of images", shown, TypeError)
    if (
        not isinstance(targets, Tensor)
        or targets.is_floating_point()
        or targets.is_complex()
        or targets.dtype == torch.bool
        or targets.shape != images.shape[:1]
    ):
        shown = (
            f"{type(targets).__name__} of shape {tuple(targets.shape)} and dtype {targets.dtype}"
            if isinstance(targets, Tensor)
            else type(targets).__name__
        )
        fail(f"{name}[1]", f"an integer tensor of {len(images)} class indices", shown, TypeError)
    if len(images) < 2:
        fail(name, "at least 2 images", len(images))
    if bool((targets < 0).any()):
        fail(f"{name}[1]", "class indices >= 0", int(targets.min()))
    targets = targets.long()
    check_finite(name, images)
    return images.detach(), targets.detach()


def _one_number(value) -> bool:
    """A single number: a Python or NumPy scalar, or a 0-d tensor or array (not a bool)."""
    if isinstance(value, Tensor | np.ndarray):
        return value.ndim == 0 and value.dtype not in (torch.bool, np.bool_)
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _zero_d(value) -> bool:
    # iterating a 0-d tensor raises torch's own TypeError
    return isinstance(value, Tensor | np.ndarray) and value.ndim == 0


def _as_written(value):
    """A NumPy or 0-d torch float as the shortest decimal its own dtype reads back as the same
    value (``np.float32(0.2)`` and a bfloat16 0.2 are 0.2, not 0.20000000298 or 0.2001953125),
    so that the frame's ``fraction`` column reads as the fraction was written; other values as
    they are."""
    if isinstance(value, np.floating | np.ndarray) and np.ndim(value) == 0:
        if not np.issubdtype(np.asarray(value).dtype, np.floating):
            return np.asarray(value)[()]  # a 0-d array of another kind: its scalar
        value = torch.from_numpy(np.asarray(value))
    if not (isinstance(value, Tensor) and value.ndim == 0 and value.is_floating_point()):
        return value
    number = value.detach().cpu().item()
    if math.isfinite(number):
        for digits in range(1, 18):
            shortest = float(f"{number:.{digits}g}")
            if torch.tensor(shortest, dtype=value.dtype).item() == number:
                return shortest
    return number


def _check_fractions(fractions) -> list[float]:
    if _one_number(fractions):  # np.float32(0.2), torch.tensor(0.2) as well as 0.2
        fractions = [fractions]
    if not isinstance(fractions, Iterable) or isinstance(fractions, str) or _zero_d(fractions):
        fail("fractions", "a sequence of numbers in (0, 1)", fractions, TypeError)
    fractions = list(fractions)
    if not fractions:
        fail("fractions", "a non-empty sequence of numbers in (0, 1)", fractions)
    checked = [
        check_real(
            "fractions",
            _as_written(k),
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        for k in fractions
    ]
    if len(set(checked)) != len(checked):
        # a fraction repeated trains the same seeded runs again: copies, not a spread
        fail("fractions", "distinct numbers", tuple(checked))
    return checked


def _check_seeds(seeds) -> list[int]:
    if _one_number(seeds):  # a count: np.int64(3) or torch.tensor(3) as well as 3
        count = seeds.item() if hasattr(seeds, "item") else seeds
        seeds = range(check_integer("seeds", count, minimum=1))
    if not isinstance(seeds, Iterable) or isinstance(seeds, str) or _zero_d(seeds):
        fail("seeds", "a number of seeds or a sequence of int seeds", seeds, TypeError)
    seeds = [check_integer("seeds", s, minimum=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        fail("seeds", "a non-empty sequence of distinct seeds", seeds)
    return seeds


def _match_attribution(name: str, attribution, images: Tensor) -> Tensor:
    if not isinstance(attribution, Tensor):
        fail(name, "a Tensor of attributions", type(attribution).__name__, TypeError)
    pixels = images.shape[:1] + images.shape[2:]
    if images.ndim < 3:
        # flat [N, D] inputs have no pixel axes: an [N] (or [N, 1]) map is one value per image,
        # which would tie every coordinate and keep the same random ones in both arms
        if attribution.shape != images.shape:
            fail(name, f"shaped as the images {tuple(images.shape)}", tuple(attribution.shape))
    elif attribution.ndim == images.ndim - 1 and attribution.shape == pixels:
        # one value per pixel ([N, H, W]) ranks all channels of that pixel alike
        attribution = attribution.unsqueeze(1).expand_as(images)
    elif attribution.ndim == images.ndim and attribution.shape == (*pixels[:1], 1, *pixels[1:]):
        attribution = attribution.expand_as(images)  # [N, 1, H, W]: the same
    if attribution.shape != images.shape:
        fail(
            name,
            f"shaped as the images {tuple(images.shape)} or as their pixels "
            f"{tuple(pixels)} (or {(*pixels[:1], 1, *pixels[1:])})",
            tuple(attribution.shape),
        )
    attribution = attribution.detach()
    if not attribution.is_floating_point():
        attribution = attribution.to(torch.float64)
    elif attribution.dtype not in (torch.float32, torch.float64):
        attribution = attribution.to(torch.float32)  # half types: widened exactly
    # float64 values stay float64: rounded to float32, close values would tie, and a tie is
    # broken at random
    check_finite(name, attribution)
    return attribution


def _kept_count(fraction: float, count: int) -> int:
    """Coordinates ``mask_by_rank`` keeps: the reference code (``harshays/inputgradients``,
    ``get_masked_data``) overwrites ``round((1 - fraction) * count)`` of them; at least one is kept."""
    return max(1, count - round((1.0 - fraction) * count))


def mask_by_rank(
    images: Tensor,
    attribution: Tensor,
    fraction: float,
    *,
    keep: str = "top",
    fill: float | Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Keep the ``fraction`` of each image's coordinates with the largest (or smallest) |attribution|.

    Coordinates are channel-pixels, ranked per image by ``|attribution|`` as in the reference
    code of Shah et al. (``harshays/inputgradients``); the others are set to ``fill``. Ties are
    broken by a random order of the coordinates (from ``generator``), so that e.g. a binary mask
    used as attribution keeps a random part of the masked region rather than its first rows.
    ``keep="top"`` and ``keep="bottom"`` with the same generator state are the two ends of one
    ranking (the reference's ``argsort`` and its reverse): they keep no coordinate in common
    while the kept count is at most half the coordinates, ties included.

    Parameters
    ----------
    images, attribution : Tensor
        Of the same shape ``[N, C, H, W]``, or the attribution of the pixels, ``[N, H, W]`` or
        ``[N, 1, H, W]``, ranking all channels of a pixel alike.
    fraction : float
        In ``(0, 1)``. As in the reference code, ``round((1 - fraction) * coordinates)`` are
        removed and the rest kept (at least 1): with Python's rounding of halves to even this
        can keep one coordinate more or fewer than ``round(fraction * coordinates)``.
    keep : {"top", "bottom"}, default="top"
    fill : float or 0-d Tensor, default=0.0
        Value of the removed coordinates (DiffROAR: the training set's mean).
    generator : torch.Generator, optional

    Returns
    -------
    Tensor
        A masked copy of ``images``.
    """
    fraction = check_real(
        "fraction",
        fraction,
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )
    check_choice("keep", keep, ("top", "bottom"))
    if not isinstance(images, Tensor):
        fail("images", "a Tensor", type(images).__name__, TypeError)
    attribution = _match_attribution("attribution", attribution, images)  # or its pixels
    if not (isinstance(fill, numbers.Real) and not isinstance(fill, bool)) and not (
        isinstance(fill, Tensor) and fill.ndim == 0
    ):
        fail("fill", "a number or a 0-d Tensor", fill, TypeError)
    if generator is not None and not isinstance(generator, torch.Generator):
        fail("generator", "a torch.Generator or None", generator, TypeError)
    value = float(fill)
    if not math.isfinite(value):
        fail("fill", "a finite number", fill)
    if not images.is_floating_point():
        # the removed coordinates hold the images' dtype: a fraction would be cut off, a value
        # out of its range wrapped around (or made True), silently
        info = torch.iinfo(torch.uint8 if images.dtype == torch.bool else images.dtype)
        info_max = 1 if images.dtype == torch.bool else info.max
        if value != int(value) or not info.min <= value <= info_max:
            fail(
                "fill",
                f"a whole number in [{info.min}, {info_max}] for {images.dtype} images (or "
                "floating-point images)",
                fill,
            )
    flat = images.reshape(len(images), -1)
    scores = attribution.reshape(len(images), -1).abs()
    count = flat.shape[1]
    kept = _kept_count(fraction, count)
    # drawn on the generator's device (the CPU unless a device's generator is given), used on
    # the scores' device: indexing the CPU permutation with an accelerator's order fails
    device = generator.device if generator is not None else torch.device("cpu")
    shuffle = torch.randperm(count, generator=generator, device=device).to(scores.device)
    # one ranking, most attributed first, ties in the shuffled order: top-k is its head and
    # bottom-k its tail, so that the two never share a coordinate while 2 k <= coordinates
    order = scores[:, shuffle].argsort(dim=1, descending=True, stable=True)
    removed = order[:, kept:] if keep == "top" else order[:, : count - kept]
    removed = shuffle[removed].to(flat.device)
    masked = flat.clone()
    masked.scatter_(
        1, removed, torch.as_tensor(fill, dtype=masked.dtype).expand_as(removed).clone()
    )
    return masked.view_as(images)


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    # every fresh Trainer announces the hardware; a run trains dozens of them
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _refuse_other_processes(options: dict, trainer_kwargs: dict, settings: str) -> None:
    """Refuse Trainer ``options`` that train in other processes than this one (a strategy with
    a launcher, ``"ddp_spawn"`` or ``"ddp"``, or several devices). Such a Trainer splits every
    epoch between its processes, each in batches of ``batch_size`` drawn in its sampler's order
    (the same for every seed): a model trained with twice the batch and half the steps, not the
    protocol the frame names (two CPU processes gave other accuracies than one on the same
    seeds). The per-epoch measures of ``settings`` (empty: none asked) are also taken by a hook
    of this process, which would see no epoch of a model trained elsewhere. A Trainer is built
    to read the strategy, nothing is trained."""
    with _quiet_lightning(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what the Trainer says of the hardware, said at fit
        trainer = L.Trainer(**options)
    if trainer.world_size > 1 or trainer.strategy.launcher is not None:
        measured = (
            f"; and with {settings} each epoch's accuracies are measured by a hook in this "
            "process, which a model trained in other processes gives none"
            if settings
            else ""
        )
        fail(
            "trainer_kwargs",
            "a Trainer that trains in this process (one device, no multi-process strategy: "
            "each fresh model trains on all the training images in batches of batch_size, in "
            "the order its seed draws, and a Trainer of several processes would split every "
            "epoch between them, each process in batches of batch_size in its sampler's "
            f"order, the same for every seed{measured}). Leave out 'strategy' and 'devices'",
            trainer_kwargs,
        )


def _refuse_no_training(trainer_kwargs: dict, test_accuracy: str) -> None:
    """Refuse ``trainer_kwargs`` that train no batch (``limit_train_batches=0`` or
    ``max_steps=0``): every fresh model would be scored with its initial weights, and with
    ``test_accuracy="best"`` no epoch would end to choose from."""
    for key, meaning in (
        ("limit_train_batches", "a number of batches >= 1 or a fraction > 0.0 of them"),
        ("max_steps", "a number of steps >= 1, or -1 for no limit"),
    ):
        value = trainer_kwargs.get(key)
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 0:
            best = (
                ", and test_accuracy='best' would have no epoch to choose from"
                if test_accuracy == "best"
                else ""
            )
            raise ValueError(
                f"trainer_kwargs[{key!r}] must let every fresh model train ({meaning}, or no "
                f"such key); got {value!r}: no batch would be trained, so every accuracy "
                f"would be that of a model's initial weights{best}."
            )


def _refuse_untrained(
    trainer: L.Trainer, epochs: int, monitored: bool, test_accuracy: str, trainer_kwargs, run: str
) -> None:
    """Refuse a fit that ended without a training step, or, when the protocol measures after
    each epoch (``monitored``), before its first epoch ended (``epochs``, those counted): the
    model's initial weights would be scored as a trained model's, and ``test_accuracy="best"``
    would have no epoch to choose from."""
    if trainer.global_step > 0 and (epochs > 0 or not monitored):
        return
    chosen = (
        ", and test_accuracy='best' chooses among the epochs that ended"
        if test_accuracy == "best"
        else ""
    )
    ended = (
        "without a training step"
        if trainer.global_step == 0
        else f"after {trainer.global_step} training steps, before any epoch ended"
    )
    raise ValueError(
        "trainer_kwargs must let every fresh model train at least one step"
        f"{' and end an epoch' if monitored else ''}{chosen}; got {describe(trainer_kwargs)}, "
        f"with which the model retrained {run} ended its fit {ended} (a max_time too short, "
        "or a callback that stops the fit)."
    )


@torch.no_grad()
def _accuracy(
    model: nn.Module, images: Tensor, targets: Tensor, batch_size: int, refuse_non_finite
) -> float:
    """Test accuracy, the images in the model's dtype and on its device (a Trainer's
    ``precision="64-true"`` or ``"bf16-true"`` casts the trained model, not the images).
    ``refuse_non_finite()`` raises when some logit is NaN or infinite: the argmax of such a
    row names an arbitrary class (the first, for NaN), which would be counted as a guess."""
    predictions, finite = [], True
    with evaluation_mode(model):
        for x in images.split(batch_size):
            logits = model(as_module_input(x, model))
            finite = finite and bool(torch.isfinite(logits).all())
            predictions.append(logits.argmax(1).cpu())
    if not finite:
        refuse_non_finite()
    return float((torch.cat(predictions) == targets.cpu()).double().mean())


def _refuse_diverged_model() -> None:
    raise ValueError(
        "model must give finite logits on the test images, whose accuracy is "
        "frame.attrs['model_accuracy']; got NaN or infinite logits."
    )


def _shared_state(network: nn.Module, others: list[nn.Module]) -> list:
    """What ``network`` shares with ``others`` (a frozen backbone shared by the factory's
    models, or frozen tensors tied without their module): every submodule they hold too, with
    its own parameters, buffers and mode, and any parameter or buffer they hold, each as the
    tensor object and a copy of its value (dtype and device included), to be put back by
    :func:`_restore_shared`."""
    modules = {id(m) for other in others for m in other.modules()}
    tensors = {id(t) for other in others for t in (*other.parameters(), *other.buffers())}
    saved = []
    for module in network.modules():
        whole = id(module) in modules
        # copied: a frozen parameter may be written in place in train mode (running
        # statistics held as parameters), so a shared backbone costs one copy per run
        params = {
            name: (p, p.data.detach().clone())
            for name, p in module.named_parameters(recurse=False)
            if whole or id(p) in tensors
        }
        buffers = {
            name: (b, b.detach().clone())
            for name, b in module.named_buffers(recurse=False)
            if whole or id(b) in tensors
        }
        if whole or params or buffers:
            saved.append((module, module.training if whole else None, params, buffers))
    return saved


@torch.no_grad()
def _restore_shared(saved: list) -> None:
    """Put back what :func:`_shared_state` saved: the same tensor objects (a casting precision
    or an accelerator replaces a module's buffers; whoever else holds them keeps seeing the
    module's), with their values (running statistics that training in train mode updated),
    dtype and device, and the shared modules' modes."""
    for module, training, params, buffers in saved:
        for name, (param, value) in params.items():
            param.data = value
            module._parameters[name] = param
        for name, (buffer, value) in buffers.items():
            buffer.data = value
            module._buffers[name] = buffer
        if training is not None:
            module.training = training


def _batch_sizes(count: int, batch_size: int) -> list[int]:
    """The sizes of the batches ``count`` images are attributed in."""
    sizes = [batch_size] * (count // batch_size)
    if count % batch_size:
        sizes.append(count % batch_size)
    if len(sizes) > 1 and sizes[-1] == 1:
        # a lone image joins the batch before it: a method that compares the inputs of a
        # batch (FeaturePermutation) cannot attribute one input alone
        sizes[-2:] = [sizes[-2] + 1]
    return sizes


def _attributions(attribution, model, images, targets, batch_size, kwargs, stream) -> Tensor:
    sizes = _batch_sizes(len(images), batch_size)
    # in the model's dtype and on its device (a model cast with .double(), or on a GPU), as
    # its accuracy is measured; the maps come back as the images are. A method that draws
    # gives each image the draws of its index in its split (``stream``), not of its batch
    parts, start = [], 0
    for x, y in zip(images.split(sizes), targets.split(sizes)):
        inputs = as_module_input(x, model)
        indices = range(start, start + len(x))
        maps = attribute_indexed(
            model, inputs, y.to(inputs.device), attribution, indices, stream, **kwargs
        )
        parts.append(maps.to(images.device, images.dtype))
        start += len(x)
    return torch.cat(parts)


def _probe_model(model_factory, images: Tensor, targets: Tensor) -> nn.Module:
    """One model from the factory (the caller's random state untouched), run on two images: it
    must take the images' dtype and return ``[N, classes]`` logits covering every target."""
    with torch.random.fork_rng(devices=[]):
        probe = model_factory()
    if not isinstance(probe, nn.Module):
        fail("model_factory", "a callable returning an nn.Module", type(probe).__name__, TypeError)
    dtype = next((p.dtype for p in probe.parameters() if p.is_floating_point()), None)
    if dtype is not None and dtype != images.dtype:
        raise TypeError(
            f"train_data images must have the dtype of model_factory's models ({dtype}); got "
            f"{images.dtype} (cast the images or the models)."
        )
    classes = int(targets.max()) + 1
    with torch.no_grad(), evaluation_mode(probe):
        try:
            outputs = probe(images[:2])
        except RuntimeError as error:  # torch's shape or dtype complaint, deep in the model
            if keeps_its_type(error):  # out of memory and the like keep their type
                raise
            raise ValueError(
                "model_factory must return models that read the images; a fresh model failed on "
                f"two images of shape {tuple(images.shape[1:])}: {error}"
            ) from error
    shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
    if not isinstance(outputs, Tensor) or outputs.ndim != 2 or outputs.shape[1] < classes:
        raise ValueError(
            "model_factory must return models whose output is [N, classes] logits with at least "
            f"{classes} classes (the largest target is {classes - 1}); got output {shape} for "
            "two images."
        )
    return probe


def _chance_accuracy(targets: Tensor) -> float:
    """The test accuracy of the best constant guess: the share of the commonest class."""
    return float(torch.bincount(targets).max()) / len(targets)


def _warn_if_patterns_leak(frame, chance: float, count: int, level: float = 1e-3) -> None:
    """Warn when the kept patterns alone name the class above chance (one-sided binomial test
    of each fraction's and arm's mean pattern accuracy over the seeds, ``count`` test images,
    at ``level`` per fraction and arm)."""
    from scipy.stats import binomtest

    leaks = []
    means = frame.groupby("fraction")[["top_mask_accuracy", "bottom_mask_accuracy"]].mean()
    for fraction, row in means.iterrows():
        for arm in ("top", "bottom"):
            accuracy = float(row[f"{arm}_mask_accuracy"])
            correct = min(count, round(accuracy * count))
            if chance < 1 and binomtest(correct, count, chance, "greater").pvalue < level:
                leaks.append(f"k={fraction:g} {arm} {accuracy:.3f}")
    if leaks:
        warnings.warn(
            "diff_roar: the kept patterns alone predict the class above chance "
            f"({chance:.3f}, the commonest class's share of the test images): "
            + ", ".join(leaks)
            + ". The arms' accuracies there carry what the pattern of kept coordinates says about "
            "the class, not only the kept pixels' values; their difference does not rank the "
            "attribution (see the docstring).",
            stacklevel=3,
        )


def diff_roar(
    model_factory: Callable[[], nn.Module],
    train_data: Any,
    test_data: Any,
    *,
    attribution: AttributionMethod | tuple[Tensor, Tensor] = "loss_gradient",
    model: nn.Module | None = None,
    fractions: Sequence[float] = (0.1, 0.2, 0.5),
    seeds: int | Sequence[int] = 3,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    attribution_kwargs: dict[str, Any] | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    mask_control: bool = False,
    train_accuracy_target: float | None = None,
    test_accuracy: str = "final",
    validation_data: Any = None,
):
    """DiffROAR of an attribution method: retrain on top-k and bottom-k masked data, compare.

    For every fraction ``k`` and seed: the top-k and bottom-k coordinates (channel-pixels, by
    ``|attribution|``) of every training and test image are kept and the others replaced by the
    mean of the training images, as in ``harshays/inputgradients`` (see :func:`mask_by_rank`); a
    fresh model from ``model_factory`` is trained on each masked training set by a Lightning
    ``Trainer`` (cross-entropy, Adam) and tested on the masked test set. ``DiffROAR(k) =
    top_accuracy - bottom_accuracy``. The seed sets the fresh model's initialisation (the same for
    its top-k and bottom-k twin), the batch order, the tie-breaking and the random control, so the
    spread over seeds is that of the whole retraining. Ties of ``|attribution|`` (a binary mask,
    zero pixels under InputXGradient) are broken by one random order of the coordinates per
    seed, the same for the training and the test images, so that a model is tested on the
    masking it was trained on.

    Which coordinates are kept is information too: a map computed with the true label (the
    loss gradient, Saliency of the label's logit) can keep a pattern that encodes the class, and
    the fresh model then reads the class off the pattern rather than off the pixel values (the
    leakage Rong et al., ICML 2022, describe for remove-and-retrain). Both arms then score as
    high as the evaluated model or higher, and a DiffROAR near 0 says the measure broke, not
    that the attribution is uninformative: read ``top_accuracy`` and ``bottom_accuracy`` beside
    the evaluated model's own test accuracy (``frame.attrs["model_accuracy"]``) and the
    ``"random"`` control, or measure the leak with ``mask_control=True``.

    Training protocol. By default every fresh model trains ``epochs`` epochs (Adam at a constant
    ``lr``) and its accuracy on the masked test images after the last epoch is reported: a
    fixed budget, the same for both arms, and no choice made on the test images. The reference
    code (``fit_model`` in ``harshays/inputgradients``) trains each model until its accuracy on
    the training set reaches ``1 - epsilon`` (0.99 by default) or an epoch cap, evaluating every
    ``update_gap`` updates, and its figures plot the best accuracy over those evaluations on its
    validation loader; ``train_accuracy_target=0.99, test_accuracy="best"`` comes close to it
    (differences below). The best over epochs of the accuracy on the test images themselves is
    a selection on the test set: it is optimistic (never below the last epoch's, so it cannot
    show the decline of an arm that overfits), and the bias differs between the arms as their
    curves differ in noise, so a DiffROAR from it is not an unbiased estimate of the difference
    of two trained models' accuracies. ``validation_data`` removes that selection: the epoch is
    then the one with the best accuracy on the (masked) validation images, and the test
    accuracy reported is that epoch's, measured on images that chose nothing (the reference's
    own selection, on a validation loader). A train-accuracy target trains each arm until it fits
    its training set (or to the cap), so that each is compared at what its kept pixels allow;
    with a fixed budget the arm that learns more slowly is compared unfinished, and DiffROAR
    then also measures how fast each masked set is learnt. What neither protocol can
    tell apart is said above (the leak), and ``epochs`` too small for the target leaves arms
    unfinished (the ``top_epochs`` and ``bottom_epochs`` columns show it: equal to ``epochs``).

    Differences from the reference that remain: it measures the training-set accuracy (and
    the validation accuracy it keeps the best of) every ``update_gap`` (50) updates, on half
    the training set while the training loss is above 0.75, here after every epoch on the
    whole set; which split its validation loader held for the retrained models is not in its
    code; its optimiser and learning-rate schedule are the caller's (its notebook trains the
    synthetic-data models with SGD and a step decay; the masked models' settings are not in
    the repository), here Adam at a constant ``lr``; its band is the standard deviation
    (``ddof=0``) of ``top_i - bottom_j`` over all pairs of independently trained runs, pooled
    over the runs its result files hold, here ``frame.attrs["summary"]``'s
    ``std_all_pairs`` over all pairs of seeds of one attribution (``std`` is that of the paired
    differences, each seed's two arms starting from the same weights). Its mean over all pairs
    is the mean of ``diff_roar`` here (the same numbers of top and bottom runs). The masking is
    the reference's (see :func:`mask_by_rank`; ties only are broken differently).

    Parameters
    ----------
    model_factory : callable
        ``model_factory()`` returns a new, untrained ``nn.Module`` of the evaluated architecture
        (logits out) on every call.
    train_data, test_data : (Tensor, Tensor) or TensorDataset
        Images ``[N, C, H, W]`` and int64 classes.
    validation_data : (Tensor, Tensor) or TensorDataset, optional
        Images and classes that select the epoch with ``test_accuracy="best"`` (refused with
        ``"final"``, which selects nothing). They are masked as the test images are: each
        image ranked by its own attribution (the method's map of it on ``model``, a third
        precomputed tensor, or its own noise for ``"random"``), with the same tie-breaking and
        fill. Disjoint from the test images, they make the reported accuracy that of an epoch
        chosen without the test images.
    attribution : str, Captum class, callable or (Tensor, Tensor), default="loss_gradient"
        How the coordinates are ranked: ``"loss_gradient"`` (``∇x CE(f(x), y)``), the name of a
        ``captum.attr`` method (``"Saliency"``, ``"IntegratedGradients"``, ...) or a callable
        ``(model, images, targets) -> attributions``, all computed on ``model`` with the true
        labels (a method that draws at random, as ``"FeaturePermutation"`` or ``"Lime"``,
        draws once from a fixed seed, leaving the caller's random state, NumPy's included, as
        it was; GradientShap, KernelShap and Lime draw for each image from its index, and
        ShapleyValueSampling the same permutations for every batch, so their maps do not
        depend on ``batch_size``, while
        FeaturePermutation's do by definition: it permutes each feature across a batch);
        ``"random"`` (Gaussian noise, the control whose DiffROAR is 0 in expectation);
        or precomputed ``(train_attributions, test_attributions)`` shaped as the images or as
        their pixels ``[N, H, W]`` (with ``validation_data``, a triple ending with the
        validation images' attributions).
    model : torch.nn.Module, optional
        The trained model whose attributions are evaluated; required unless ``attribution`` is
        ``"random"`` or precomputed. Not modified: its accuracy is measured before any
        training, and modules the factory's models share with it (or with each other: a frozen
        backbone, which may be shared) are constants of every run, each run starting from them
        as passed; their buffers (BatchNorm's running statistics, which training in train mode
        updates), dtype, device and mode are put back after each run.
    fractions : sequence of float, default=(0.1, 0.2, 0.5)
        Levels ``k`` in ``(0, 1)``: the kept fraction of coordinates. Each must keep at least
        one coordinate and remove at least one (``round((1 - k) * coordinates)`` are removed),
        and no two may keep the same number (they would be the same runs).
    seeds : int or sequence of int, default=3
        A number of seeds (``0..seeds-1``) or the seeds.
    epochs, batch_size, lr
        Training of every fresh model: ``epochs`` epochs (the cap, with
        ``train_accuracy_target``) of Adam at ``lr``. When the training images leave a last
        batch of one image, it is dropped in each (shuffled) epoch: batch normalisation cannot
        train on one.
    attribution_kwargs : dict, optional
        Passed to the Captum method's ``attribute`` for every batch of training and test
        images: a ``baselines`` or ``feature_mask`` tensor holds one entry for all images
        (``[1, C, H, W]`` or ``[C, H, W]``); one per image is refused (compute such maps with
        :func:`~lightning_distill.attribution.attribute` and pass them as ``attribution``).
        So is an extra forward argument (``additional_forward_args``, or an item of its tuple)
        that Captum would split between a batch's images: a tensor or list whose length is the
        number of training or test images or the size of a batch. Numbers, tensors with 1 on
        their first axis or none, and other values are given to every batch as they are.
    trainer_kwargs : dict, optional
        Passed to ``lightning.Trainer`` (default: CPU, no logger, checkpoints or progress bar);
        the epochs are ``epochs``, not a ``max_epochs`` key here. A precision that casts the
        model (``"64-true"``, ``"bf16-true"``) scores it on the test images cast alike.
        ``"16-true"`` is refused: Adam's ``eps`` (1e-8) is 0 in float16, and its steps would
        divide by zero (``"16-mixed"`` keeps float32 weights). A Trainer that trains in other
        processes (several devices, ``"ddp"``, ``"ddp_spawn"``) is refused before any work: it
        would split every epoch between its processes, each in batches of ``batch_size`` in
        its sampler's order whatever the seed (twice the batch, half the steps: other
        accuracies than the protocol's), and the accuracies after each epoch of
        ``train_accuracy_target`` and ``test_accuracy="best"`` are measured in this process.
        Arguments that train nothing (``limit_train_batches=0``, ``max_steps=0``) are refused
        before any work, and a fit that ends without a training step (a ``max_time`` too
        short, a callback that stops it), or with ``train_accuracy_target`` or
        ``test_accuracy="best"`` before its first epoch ended, as soon as it ends: the model's
        initial weights would be scored as a trained model's.
    mask_control : bool, default=False
        Also train, for each arm, a fresh model on the pattern of kept coordinates alone (the
        kept ones 1, the removed ones 0: no pixel value), tested on the test images' patterns,
        at twice the cost: columns ``top_mask_accuracy`` and ``bottom_mask_accuracy``. Above
        chance, the pattern carries the label, and the arm's accuracy is not the kept pixels'
        information alone: a warning then names the fractions and arms whose mean pattern
        accuracy over the seeds lies above chance (the commonest class's share of the test
        images, ``frame.attrs["chance_accuracy"]``) by a one-sided binomial test at 0.001.
    train_accuracy_target : float, optional
        In ``(0, 1]``: stop training a fresh model at the end of the first epoch after which its
        accuracy on its whole (masked) training set, in evaluation mode, is at least this (the
        reference's rule with ``1 - epsilon``, 0.99), or after ``epochs`` epochs; the epochs
        each arm trained are given as ``top_epochs`` and ``bottom_epochs``. The pattern-control
        models of ``mask_control`` train by the same rule, their epochs given as
        ``top_mask_epochs`` and ``bottom_mask_epochs``. Default: no target, ``epochs`` epochs.
    test_accuracy : {"final", "best"}, default="final"
        ``"final"``: the test accuracy after the last epoch. ``"best"``: the largest of the test
        accuracies measured after every epoch, as the reference reports its best evaluation; a
        selection on the test images, optimistic (see the training protocol above), for
        comparing with the paper's figures, not as an unbiased accuracy. With
        ``validation_data``, ``"best"`` is the test accuracy after the epoch with the largest
        validation accuracy (the first of equal ones), no selection on the test images. With
        ``"best"``, the epoch each accuracy was taken after (counted from 1, the first of equal
        ones; ``epochs``, or the arm's ``top_epochs``, when it is the last) is given as
        ``top_best_epoch`` and ``bottom_best_epoch`` (``top_mask_best_epoch`` and
        ``bottom_mask_best_epoch`` for the pattern-control models of ``mask_control``).

    Returns
    -------
    pandas.DataFrame
        One row per fraction and seed: ``fraction``, ``seed``, ``top_accuracy``,
        ``bottom_accuracy``, ``diff_roar`` (and ``top_mask_accuracy``,
        ``bottom_mask_accuracy`` with ``mask_control``; ``top_epochs``, ``bottom_epochs`` with
        ``train_accuracy_target``, and ``top_mask_epochs``, ``bottom_mask_epochs`` with both;
        ``top_best_epoch``, ``bottom_best_epoch`` with ``test_accuracy="best"``, and
        ``top_mask_best_epoch``, ``bottom_mask_best_epoch`` with it and ``mask_control``).
        ``frame.attrs["summary"]`` maps every fraction to the ``mean`` and ``std`` of ``diff_roar`` over the seeds and ``std_all_pairs``, the
        reference's band: the standard deviation (``ddof=0``) of ``top_accuracy[i] -
        bottom_accuracy[j]`` over all pairs of seeds ``i, j`` (NaN for one seed, as ``std``);
        ``frame.attrs["protocol"]`` holds ``epochs``, ``train_accuracy_target``,
        ``test_accuracy`` and ``validation_images`` (their number, or None);
        ``frame.attrs["model_accuracy"]`` is the evaluated model's accuracy on the unmasked test
        images (when ``model`` is given).

    Examples
    --------
    >>> import torch
    >>> from lightning_distill.datasets import DigitBlocks
    >>> train, test = DigitBlocks("train", digits=(0, 1)), DigitBlocks("test", digits=(0, 1))
    >>> def small_net():
    ...     return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 16, 2))
    >>> frame = diff_roar(
    ...     small_net, train.classification(), test.classification(),
    ...     attribution=(train.masks, test.masks), fractions=[0.2], seeds=1, epochs=5, lr=1e-2,
    ... )
    >>> list(frame.columns)
    ['fraction', 'seed', 'top_accuracy', 'bottom_accuracy', 'diff_roar']
    >>> bool(frame.diff_roar.iloc[0] > 0.2)  # the signal block ranks first: clearly positive
    True
    """
    import pandas as pd

    if not callable(model_factory):
        fail(
            "model_factory",
            "a callable returning a new nn.Module",
            type(model_factory).__name__,
            TypeError,
        )
    train_images, train_targets = _as_pair("train_data", train_data)

    def shaped_as_training(name: str, data) -> tuple[Tensor, Tensor]:
        images, targets = _as_pair(name, data)
        if images.shape[1:] != train_images.shape[1:]:
            fail(
                name,
                f"images shaped as train_data's {tuple(train_images.shape[1:])}",
                tuple(images.shape[1:]),
            )
        return images, targets

    test_images, test_targets = shaped_as_training("test_data", test_data)
    validation = validation_data is not None
    if validation:
        val_images, val_targets = shaped_as_training("validation_data", validation_data)
    fractions = _check_fractions(fractions)
    coordinates = int(np.prod(train_images.shape[1:]))
    for fraction in fractions:
        # keeping all coordinates leaves top-k and bottom-k the same images, a difference of 0
        # that would read as "no information in the attribution"
        if _kept_count(fraction, coordinates) >= coordinates:
            fail(
                "fractions",
                f"numbers that remove at least one of the {coordinates} coordinates of an image "
                f"(round((1 - fraction) * {coordinates}) >= 1)",
                fraction,
            )
        # below half a coordinate the reference keeps none; mask_by_rank keeps one, a larger
        # share than the fraction the frame would name
        if coordinates - round((1.0 - fraction) * coordinates) < 1:
            fail(
                "fractions",
                f"numbers that keep at least one of the {coordinates} coordinates of an image "
                f"({coordinates} - round((1 - fraction) * {coordinates}) >= 1)",
                fraction,
            )
    kept = {}
    for fraction in fractions:
        # two fractions keeping as many coordinates train the same seeded runs: copies under
        # two names, not two levels
        count = _kept_count(fraction, coordinates)
        if count in kept:
            fail(
                "fractions",
                f"numbers that keep different numbers of the {coordinates} coordinates of an "
                f"image ({kept[count]!r} and {fraction!r} both keep {count})",
                tuple(fractions),
            )
        kept[count] = fraction
    seeds = _check_seeds(seeds)
    if not isinstance(mask_control, bool | np.bool_):
        fail("mask_control", "a bool", mask_control, TypeError)
    mask_control = bool(mask_control)
    epochs = check_integer("epochs", epochs, minimum=1)
    if train_accuracy_target is not None:
        train_accuracy_target = check_real(
            "train_accuracy_target",
            train_accuracy_target,
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
        )
    if not isinstance(test_accuracy, str):
        fail("test_accuracy", "'final' or 'best'", test_accuracy, TypeError)
    check_choice("test_accuracy", test_accuracy, ("final", "best"))
    if validation and test_accuracy != "best":
        # the final epoch's test accuracy selects nothing: the images would be unused
        raise ValueError(
            "validation_data must be None unless test_accuracy='best' (the validation images "
            f"select the epoch whose test accuracy is reported); got validation images with "
            f"test_accuracy={test_accuracy!r}. Pass test_accuracy='best', or no validation_data."
        )
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    lr = check_real("lr", lr, minimum=0.0, exclusive_minimum=True)
    attribution_kwargs = dict(attribution_kwargs or {})
    trainer_kwargs = check_trainer_kwargs("trainer_kwargs", trainer_kwargs, ("max_epochs",))
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": epochs,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(trainer_kwargs)
    per_epoch = [
        f"{name}={value!r}"
        for name, value, default in (
            ("train_accuracy_target", train_accuracy_target, None),
            ("test_accuracy", test_accuracy, "final"),
        )
        if value != default
    ]
    _refuse_no_training(trainer_kwargs, test_accuracy)
    _refuse_other_processes(options, trainer_kwargs, " and ".join(per_epoch))
    precomputed = isinstance(attribution, tuple | list)
    random_control = isinstance(attribution, str) and attribution == "random"
    if isinstance(attribution, str) and attribution.lower() == "random" and not random_control:
        fail("attribution", "'random' (lower case) for the random control", attribution)
    if not precomputed and not random_control:
        # a misspelt method fails before any attribution or training, naming this argument
        check_method(attribution, attribution_kwargs, "attribution", "attribution_kwargs")
        for key in per_input_kwargs(attribution, attribution_kwargs, train_images.ndim):
            # the same keyword arguments explain the training and the test images, batch by
            # batch: a tensor of one entry per image fits neither set as a whole
            fail(
                f"attribution_kwargs[{key!r}]",
                "one entry for every image, with 1 on its first axis (e.g. "
                f"{(1, *train_images.shape[1:])}) or no such axis: the same keyword arguments "
                "explain the training and the test images in batches of batch_size. For one "
                "per image, compute the maps with lightning_distill.attribution.attribute and "
                "pass attribution=(train_maps, test_maps)",
                tuple(_single_tensor(attribution_kwargs[key]).shape),
            )
        # Captum splits an extra forward argument of a batch's length between its inputs:
        # given whole to every batch, one of all the images' length (or of a batch's) would
        # reach each batch with other images' entries
        explained = [train_images, test_images] + ([val_images] if validation else [])
        batches = sorted({size for x in explained for size in _batch_sizes(len(x), batch_size)})
        counts = {*map(len, explained), *batches}
        for _, position in per_input_forward_args(attribution_kwargs, counts):
            fail(
                forward_argument_name("attribution_kwargs", attribution_kwargs, position),
                "the same for every image (a number, a tensor with 1 on its first axis or "
                "with no first axis, or a tensor or list whose length is neither the number of "
                f"training ({len(train_images)}), test ({len(test_images)})"
                + (f" or validation ({len(val_images)})" if validation else "")
                + f" images nor that of a batch ({', '.join(map(str, batches))})): "
                "the same keyword arguments explain the training and the test images in "
                "batches of batch_size. For one entry per image, compute the maps with "
                "lightning_distill.attribution.attribute and pass "
                "attribution=(train_maps, test_maps)",
                forward_arguments(attribution_kwargs[FORWARD_ARGS])[position],
            )
    # before any attribution or training: do the factory's models read these images and give
    # a logit for every class?
    probe = _probe_model(
        model_factory,
        train_images,
        torch.cat([train_targets, test_targets] + ([val_targets] if validation else [])),
    )

    val_attr = None
    if precomputed:
        if validation and len(attribution) != 3:
            # the validation images are masked by their own attributions, as the test images
            fail(
                "attribution",
                "a triple (train_attributions, test_attributions, validation_attributions) of "
                "three tensors with validation_data",
                attribution,
            )
        if not validation and len(attribution) != 2:
            fail(
                "attribution",
                "a pair (train_attributions, test_attributions) of two tensors",
                attribution,  # as given: its type alone ('tuple') is the one expected
            )
        train_attr = _match_attribution("attribution[0]", attribution[0], train_images)
        test_attr = _match_attribution("attribution[1]", attribution[1], test_images)
        if validation:
            val_attr = _match_attribution("attribution[2]", attribution[2], val_images)
    elif not random_control:
        if not isinstance(model, nn.Module):
            fail(
                "model",
                f"the trained nn.Module whose attributions are evaluated (attribution={attribution!r})",
                model,
                TypeError,
            )
        # a random method (FeaturePermutation, Lime, a callable that draws) draws from a fixed
        # seed, the caller's random state kept: the frame is a function of the arguments, as
        # the seeds promise, and the caller's next draw is not moved by this call
        device = next(iter(model.parameters()), torch.empty(0)).device
        with random_state_kept(device):
            # the generators random_state_kept gives back, no other (torch.manual_seed would
            # reseed every accelerator's)
            torch.default_generator.manual_seed(0)
            if device.type == "cuda":
                index = device.index if device.index is not None else torch.cuda.current_device()
                torch.cuda.default_generators[index].manual_seed(0)
            elif device.type == "mps":
                torch.mps.manual_seed(0)
            train_attr = _attributions(
                attribution, model, train_images, train_targets, batch_size, attribution_kwargs, 0
            )
            test_attr = _attributions(
                attribution, model, test_images, test_targets, batch_size, attribution_kwargs, 1
            )
            if validation:
                val_attr = _attributions(
                    attribution, model, val_images, val_targets, batch_size, attribution_kwargs, 2
                )
        train_attr = _match_attribution("attribution", train_attr, train_images)
        test_attr = _match_attribution("attribution", test_attr, test_images)
        if validation:
            val_attr = _match_attribution("attribution", val_attr, val_images)
    fill = train_images.mean()
    # before any training (which would update the buffers of modules it shares with the
    # factory's models)
    model_accuracy = (
        None
        if model is None
        else _accuracy(model, test_images, test_targets, 512, _refuse_diverged_model)
    )

    produced: list[nn.Module] = [probe] if model is None else [model, probe]
    # the parameters training updates; shared constants (a frozen backbone, fixed statistics)
    # are not trained and may be shared
    owned = {id(p) for m in produced for p in m.parameters() if p.requires_grad}

    def fresh_model() -> nn.Module:
        candidate = model_factory()
        if not isinstance(candidate, nn.Module):
            fail(
                "model_factory",
                "a callable returning an nn.Module",
                type(candidate).__name__,
                TypeError,
            )
        if any(candidate is earlier for earlier in produced):
            fail(
                "model_factory",
                "a callable returning a new, untrained model on every call",
                "the same object twice",
            )
        tensors = {id(p) for p in candidate.parameters() if p.requires_grad}
        if tensors & owned:
            fail(
                "model_factory",
                "a callable returning a model with its own trainable parameters on every call "
                "(a model sharing them with an earlier one, or with model, would start from its "
                "weights and train them in place)",
                "a model sharing trainable parameters with an earlier one",
            )
        produced.append(candidate)
        owned.update(tensors)
        return candidate

    def train_and_test(
        seed: int, train_x: Tensor, test_x: Tensor, val_x: Tensor | None, run: str
    ) -> tuple[float, int, int | None]:
        """The test accuracy of a fresh model trained on ``train_x`` (the last epoch's, or with
        ``test_accuracy="best"`` the best epoch's: the largest, or that of the epoch with the
        best accuracy on ``val_x`` when given), the number of epochs it trained and, with
        ``test_accuracy="best"``, the epoch (from 1) the accuracy was taken after."""
        torch.manual_seed(seed)
        network = fresh_model()
        order = torch.Generator().manual_seed(seed)
        lone = len(train_x) > batch_size and len(train_x) % batch_size == 1
        loader = DataLoader(
            TensorDataset(train_x, train_targets),
            batch_size,
            shuffle=True,
            generator=order,
            drop_last=lone,  # a batch of one image fails batch normalisation
        )
        # modules shared with model or the factory's other models (a frozen backbone) are
        # constants: training in train mode updates their buffers (BatchNorm's running
        # statistics) and a precision or accelerator casts and moves them; each run sees them
        # as the caller passed them, and they are given back so
        shared = _shared_state(network, produced[:-1])

        def diverged(images: str = "test") -> Callable[[], None]:
            def refuse() -> None:
                # a diverged model predicts the first class everywhere: its accuracy would be
                # that class's share, and DiffROAR 0 for any attribution
                raise ValueError(
                    f"lr must let every fresh model train to finite weights; got {lr!r}: the "
                    f"model retrained {run} (seed {seed}) gives NaN or infinite logits on the "
                    f"{images} images, its training diverged. Lower lr."
                )

            return refuse

        tested: list[float] = []  # the test accuracy after each epoch (test_accuracy="best")
        validated: list[float] = []  # the validation accuracy after each epoch (val_x given)
        trained = [0]  # epochs

        def epoch_end(trainer: L.Trainer) -> None:
            trained[0] += 1
            if test_accuracy == "best":
                tested.append(_accuracy(network, test_x, test_targets, 512, diverged()))
            if val_x is not None:
                validated.append(
                    _accuracy(network, val_x, val_targets, 512, diverged("validation"))
                )
            if train_accuracy_target is not None:
                # the reference's stopping rule: the accuracy on the whole (masked) training
                # set, in evaluation mode, at or above the target
                reached = _accuracy(network, train_x, train_targets, 512, diverged("training"))
                if reached >= train_accuracy_target:
                    trainer.should_stop = True

        # the default protocol evaluates nothing between epochs: its runs are as they were
        monitored = train_accuracy_target is not None or test_accuracy == "best"
        try:
            classifier = _Classifier(network, lr, epoch_end if monitored else None)
            trainer = L.Trainer(**options)
            trainer.fit(classifier, loader)
            # a max_time, or a callback, may stop the fit before it trains
            retrained = f"{run} (seed {seed})"
            _refuse_untrained(
                trainer, trained[0], monitored, test_accuracy, trainer_kwargs, retrained
            )
            if val_x is not None:
                # the test accuracy of the epoch the validation images select (the first of
                # equally good ones): no choice made on the test images
                best = int(np.argmax(validated))
                return tested[best], trained[0], best + 1
            if test_accuracy == "best":
                # the last epoch's accuracy is among them: the best is never below the final
                # (the first of equally good epochs, as with validation images)
                best = int(np.argmax(tested))
                return tested[best], trained[0], best + 1
            return _accuracy(network, test_x, test_targets, 512, diverged()), trained[0], None
        finally:
            _restore_shared(shared)

    rows = []
    with _quiet_lightning(), torch.random.fork_rng(devices=[]):
        for seed in seeds:
            if random_control:
                noise = torch.Generator().manual_seed(10_000 + seed)
                train_attr = torch.randn(train_images.shape, generator=noise)
                test_attr = torch.randn(test_images.shape, generator=noise)
                if validation:
                    val_attr = torch.randn(val_images.shape, generator=noise)
            for fraction in fractions:
                accuracies, patterns, epochs_trained, pattern_epochs = {}, {}, {}, {}
                best_epochs, pattern_best_epochs = {}, {}
                for keep in ("top", "bottom"):
                    # one order of the coordinates breaks the ties of the training and the
                    # test images alike: a binary mask keeps the same coordinates in both, so
                    # the model is tested on the masking it was trained on
                    def masked(images, attr, background, keep=keep, fraction=fraction, seed=seed):
                        return mask_by_rank(
                            images,
                            attr,
                            fraction,
                            keep=keep,
                            fill=background,
                            generator=torch.Generator().manual_seed(seed),
                        )

                    pairs = [(train_images, train_attr), (test_images, test_attr)]
                    if validation:
                        # ranked by their own attributions, as the test images
                        pairs.append((val_images, val_attr))
                    train_x, test_x, *val_x = (masked(x, a, fill) for x, a in pairs)
                    run = f"on the {keep}-{fraction:g} coordinates"
                    accuracies[keep], epochs_trained[keep], best_epochs[keep] = train_and_test(
                        seed, train_x, test_x, val_x[0] if validation else None, run
                    )
                    if mask_control:
                        # the same kept coordinates as ones, the rest zeros: the pattern alone
                        train_m, test_m, *val_m = (
                            masked(torch.ones_like(x), a, 0) for x, a in pairs
                        )
                        run = f"on the pattern of the {keep}-{fraction:g} coordinates"
                        (
                            patterns[keep],
                            pattern_epochs[keep],
                            pattern_best_epochs[keep],
                        ) = train_and_test(
                            seed, train_m, test_m, val_m[0] if validation else None, run
                        )
                row = {
                    "fraction": fraction,
                    "seed": seed,
                    "top_accuracy": accuracies["top"],
                    "bottom_accuracy": accuracies["bottom"],
                    "diff_roar": accuracies["top"] - accuracies["bottom"],
                }
                if train_accuracy_target is not None:
                    row["top_epochs"] = epochs_trained["top"]
                    row["bottom_epochs"] = epochs_trained["bottom"]
                if test_accuracy == "best":
                    # the epoch each reported accuracy was taken after (from 1)
                    row["top_best_epoch"] = best_epochs["top"]
                    row["bottom_best_epoch"] = best_epochs["bottom"]
                if mask_control:
                    row["top_mask_accuracy"] = patterns["top"]
                    row["bottom_mask_accuracy"] = patterns["bottom"]
                    if train_accuracy_target is not None:
                        row["top_mask_epochs"] = pattern_epochs["top"]
                        row["bottom_mask_epochs"] = pattern_epochs["bottom"]
                    if test_accuracy == "best":
                        row["top_mask_best_epoch"] = pattern_best_epochs["top"]
                        row["bottom_mask_best_epoch"] = pattern_best_epochs["bottom"]
                rows.append(row)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("fraction")["diff_roar"].agg(["mean", "std"])
    # the reference's band: the population sd of top_i - bottom_j over all pairs of seeds i, j,
    # which is sqrt(var(top) + var(bottom)), both with ddof=0 (the cross terms average to 0)
    spread = frame.groupby("fraction")[["top_accuracy", "bottom_accuracy"]].var(ddof=0)
    summary["std_all_pairs"] = np.sqrt(spread["top_accuracy"] + spread["bottom_accuracy"])
    if len(seeds) < 2:
        summary["std_all_pairs"] = np.nan  # one run has no spread to show, as "std"
    frame.attrs["summary"] = {k: dict(v) for k, v in summary.to_dict("index").items()}
    frame.attrs["protocol"] = {
        "epochs": epochs,
        "train_accuracy_target": train_accuracy_target,
        "test_accuracy": test_accuracy,
        "validation_images": len(val_images) if validation else None,
    }
    if mask_control:
        chance = _chance_accuracy(test_targets)
        frame.attrs["chance_accuracy"] = chance
        _warn_if_patterns_leak(frame, chance, len(test_targets))
    if model_accuracy is not None:
        frame.attrs["model_accuracy"] = model_accuracy
    return frame
