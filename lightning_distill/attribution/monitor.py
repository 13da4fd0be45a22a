"""Log attribution scores (localisation, five-band, teacher agreement) while a model trains."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from typing_extensions import override

# the dissection monitor's rank/world-size lookup: one definition for both monitors
from lightning_distill._batch import INPUT_KEYS, TARGET_KEYS, _first_key, shuffling_sampler
from lightning_distill._distributed import rank_and_world_size
from lightning_distill._monitoring import (
    as_module_input,
    check_reiterable,
    check_unique_prefix,
    check_unsharded,
    every_n_epochs_setting,
    known_empty,
    prefix_setting,
    random_state_kept,
    save_dir_setting,
    warn_if_never_runs,
)
from lightning_distill._validation import (
    CheckedSetting,
    FixedDict,
    check_bool,
    check_choice,
    check_integer,
    fail,
    is_listed,
    keeps_its_type,
    refuse_fixed_setting,
    rows_without_a_class,
)
from lightning_distill.attribution.methods import (
    FORWARD_ARGS,
    AttributionMethod,
    _captum_class,
    _single_tensor,
    attribute_indexed,
    check_method,
    entry_count,
    evaluation_mode,
    forward_argument_name,
    forward_arguments,
    per_input_forward_args,
    per_input_kwargs,
    slice_per_input,
)
from lightning_distill.attribution.metrics import (
    AttributionAgreement,
    AttributionLocalisation,
    FiveBandScore,
)
from lightning_distill.hooks import resolve_module_names

__all__ = ["AttributionMonitor"]

METRICS = ("localisation", "five_band", "agreement")
_MADE_FROM_FIVE_BAND_KWARGS = "the monitor's FiveBandScore is built from it"


def _check_probe(name: str, dataloader):
    """The probe data: iterable again and again, not known to be empty, in a fixed order."""
    if not hasattr(dataloader, "__iter__"):
        fail(name, "an iterable of probe batches", type(dataloader).__name__, TypeError)
    check_reiterable(dataloader)
    if known_empty(dataloader):
        fail(
            name,
            "probe data with at least one batch (drop_last=True with fewer items than "
            "batch_size yields none)",
            f"an empty {type(dataloader).__name__}",
        )
    check_unsharded(name, dataloader)  # before the order: a DistributedSampler shuffles by default
    shuffling = shuffling_sampler(dataloader)
    if shuffling is not None:
        fail(
            name,
            "in a fixed order (shuffle=False, no random sampler), so that every evaluation "
            "and every process sees the same batches",
            f"a DataLoader with a {shuffling}",
        )
    return dataloader


def _check_method_alone(name: str, method):
    """An attribution method :func:`attribute` can run (its keyword arguments are checked with
    it where both are known: at construction, and before every fit and evaluation)."""
    is_callable = callable(method) and not isinstance(method, type)
    if not is_callable and not (isinstance(method, str) and method == "loss_gradient"):
        _captum_class(method, name)
    return method


def _check_mapping(name: str, value) -> dict:
    """A mapping of keyword arguments (None: none), kept as a dict of its own."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail(name, "a dict of keyword arguments, or None", value, TypeError)
    return dict(value)


def _check_metrics(name: str, metrics) -> list[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Iterable):
        fail(name, "a sequence of " + ", ".join(METRICS), metrics, TypeError)
    metrics = [check_choice(name, item, METRICS) for item in metrics]
    if not metrics:
        fail(name, "a non-empty sequence of " + ", ".join(METRICS), metrics)
    return metrics


def _check_module_name(name: str, module) -> str | None:
    if module is not None and not isinstance(module, str):
        fail(name, "a submodule name (str)", module, TypeError)
    return module


def _check_label_per_image(labels: Tensor, images: int) -> None:
    """The ``[images]`` labels that ``correct_only=True`` compares with the predictions (one
    label for a whole batch, or a column of them, is not one per image)."""
    if tuple(labels.shape) != (images,):
        fail(
            "dataloader",
            "batches whose target entry holds one class index per image (correct_only=True "
            f"compares them with the predictions), shape [{images}]",
            f"a target of shape {tuple(labels.shape)}",
        )


def _check_teacher(name: str, teacher) -> nn.Module | None:
    if teacher is not None and not isinstance(teacher, nn.Module):
        fail(name, "a torch.nn.Module", type(teacher).__name__, TypeError)
    return teacher


def _first(batch: Mapping, keys: tuple[str, ...]):
    key = _first_key(batch, keys)
    return None if key is None else batch[key]


def _split_batch(batch: Any) -> dict[str, Tensor | None]:
    """``{"image", "target", "mask", "heatmap"}`` of a probe batch (a dict, or any mapping, or
    a tuple)."""
    if isinstance(batch, Mapping):
        # the keys, in their order, by which the training modules read a dict batch: a probe
        # batch holding two of them is explained on the inputs the model is trained on
        images = _first(batch, INPUT_KEYS)
        if images is None:
            fail("dataloader", f"batches with an image entry (one of {INPUT_KEYS})", sorted(batch))
        return {
            "image": images,
            "target": _first(batch, TARGET_KEYS),
            "mask": _first(batch, ("mask", "masks")),
            "heatmap": _first(batch, ("heatmap", "heatmaps")),
        }
    if isinstance(batch, list | tuple) and len(batch) == 2:
        return {"image": batch[0], "target": batch[1], "mask": None, "heatmap": None}
    got = type(batch).__name__
    if isinstance(batch, list | tuple):
        got = f"a {got} of {len(batch)} entries"
    fail(
        "dataloader",
        "batches that are dicts with 'image', 'target' (and 'mask', 'heatmap') or "
        "(images, targets) tuples: masks and heatmaps come in dict batches",
        got,
    )
    raise AssertionError  # unreachable


def _check_entries(batch: dict, number: int, chosen) -> None:
    """Every probe batch carries what the chosen metrics read (chosen from the first batch)."""
    for metric, key in (("localisation", "mask"), ("five_band", "heatmap")):
        if metric in chosen and batch[key] is None:
            raise ValueError(
                f"dataloader must yield a {key!r} entry in every probe batch: metric {metric!r} "
                f"needs it (chosen from the first batch, which has one); batch {number} (from "
                f"0) has none. Give every item a {key}, or leave {metric!r} out of metrics."
            )


def _check_labels(labels) -> None:
    """Class labels: integers, or floats that hold whole numbers (truncating 0.7 to class 0
    would explain another class without a word)."""
    if not isinstance(labels, Tensor):
        fail("dataloader", "batches whose target entry is a tensor of classes", labels, TypeError)
    if labels.dtype == torch.bool or labels.is_complex():
        fail("dataloader", "batches whose targets are integer classes", labels.dtype, TypeError)
    if labels.ndim > 2:
        # a map per image: a segmentation map read as the targets (a Broden batch's "labels")
        fail(
            "dataloader",
            "batches whose target entry holds one class index per image, shape [B], not a map "
            "per image (a segmentation map under 'labels'?): give the classes under 'target', "
            "or pass target='prediction' to explain the model's own prediction",
            f"a target of shape {tuple(labels.shape)}",
        )
    if labels.ndim > 1:
        fail(
            "dataloader",
            "batches whose target entry holds one class index per image, shape [B] (not "
            "one-hot rows: take their argmax)",
            f"a target of shape {tuple(labels.shape)}",
        )
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        fail(
            "dataloader",
            "batches whose targets are integer classes (floats only if whole numbers)",
            labels.flatten()[:5].tolist(),
        )


def _has_lone_batch(dataloader) -> bool:
    """Whether a ``DataLoader`` over a sized dataset yields a batch of one item."""
    if not isinstance(dataloader, DataLoader) or dataloader.batch_size is None:
        return False
    try:
        count = len(dataloader.sampler)
    except TypeError:
        return False
    size = dataloader.batch_size
    return count > 0 and (size == 1 or (count % size == 1 and not dataloader.drop_last))


class _ProbeChanged(Exception):
    """The probe's batches differ from the batch sizes the monitor kept."""


def _first_batch(batches) -> dict[str, Tensor | None]:
    """The first batch of the probe (or of an iterator over it, which moves on by one),
    split; a clear error for a probe that yields none (a ``StopIteration`` escaping a
    Lightning hook would end the fit without a word)."""
    batch = next(iter(batches), None)
    if batch is None:
        fail(
            "dataloader",
            "probe data with at least one batch (drop_last=True with fewer items than "
            "batch_size yields none)",
            "no batch",
        )
    return _split_batch(batch)


class AttributionMonitor(Callback):
    """Score a model's attribution maps on a probe set every few epochs and log the scores.

    At the end of every ``every_n_epochs``-th training epoch the monitor computes attributions
    of the model (by a Captum method, the loss gradient or a callable; gradients with respect
    to the input are switched on even where the caller runs without them) on ``dataloader``, with
    every submodule in eval mode and each one's mode given back afterwards, and logs:

    * ``<prefix>/localisation``: share of the map's mass inside the batch's ``mask``
      (:class:`~lightning_distill.metrics.AttributionLocalisation`);
    * ``<prefix>/pixel_accuracy``, ``precision``, ``recall``, ``fpr``: five-band scores against
      the batch's ``heatmap`` (:class:`~lightning_distill.metrics.FiveBandScore`);
    * ``<prefix>/spearman``, ``<prefix>/top_k_iou``: agreement with the teacher's maps by the
      same method on the same inputs and targets
      (:class:`~lightning_distill.metrics.AttributionAgreement`);
    * with ``std=True``, beside each score ``<prefix>/<score>_std``: its standard deviation over
      the probe images (``ddof=0``, the metrics' ``std()``; for the five-band scores that of
      each image's score averaged over the threshold sets, whose mean is logged).

    With ``correct_only=True`` every score (and spread) is that of the probe images the
    explained model classifies correctly alone: its prediction, the argmax of its output in
    eval mode, equal to the batch's label (the metrics' ``keep=``; Tjoa & Guan's analysis
    reports the scores of all test images and of these apart). Two monitors with different
    prefixes log both.

    Under DDP each process takes every ``world_size``-th batch and the metrics' sums are
    reduced across processes, so the logged numbers equal those of one process.

    Parameters
    ----------
    dataloader : iterable
        Probe data in a fixed order (no shuffling). Batches are dicts with ``image``, ``target``
        and optionally ``mask`` (binary ``[B, H, W]``) and ``heatmap`` (``[B, H, W]`` ground
        truth with Tjoa & Guan's values), as :class:`~lightning_distill.datasets.SyntheticCells`
        and :class:`~lightning_distill.datasets.DigitBlocks` give (the plural keys ``images``,
        ``targets``, ``masks``, ``heatmaps`` are read too, and the inputs and targets under
        every key the training modules read, in their order: ``inputs``, ``input``, ``x``,
        ``images``, ``image``; ``targets``, ``target``, ``labels``, ``label``, ``y``), or
        ``(images, targets)`` tuples. An empty probe is refused, and so is a ``DistributedSampler``
        of more than one replica: every process passes the whole probe, which the monitor
        splits itself.
    method : str, Captum class or callable, default="Saliency"
        See :func:`lightning_distill.attribution.attribute`.
    metrics : sequence of {"localisation", "five_band", "agreement"}, optional
        Default: every metric the probe data and the teacher allow.
    every_n_epochs : int, default=1
    module : str, optional
        Name in ``pl_module.named_modules()`` of the model to explain (e.g. ``"student"``);
        default: ``pl_module`` itself.
    teacher : torch.nn.Module, optional
        The reference model of ``agreement``; default: ``pl_module.teacher`` if it is a module
        (as in :class:`~lightning_distill.DistillationModule`). It runs on its own device and
        in its own floating dtype, which the monitor leaves as they are (the probe images are
        converted for each model): a teacher that is not part of the module keeps float32
        under ``precision="64-true"`` or ``"bf16-true"``, and stays on the CPU unless you
        move it to the module's device.
    target : {"label", "prediction"}, default="label"
        Which class each map explains: the batch's label, or the explained model's prediction
        (the teacher's map then explains the same class). With ``"prediction"`` the probe
        needs no ``target`` entry (dict batches with masks or heatmaps alone).
    top_k : float, default=0.1
        Fraction of pixels of ``top_k_iou``.
    correct_only : bool, default=False
        Score only the probe images whose label the explained model predicts (the agreement
        too: the images the explained model, not the teacher, gets right). The probe then
        needs its ``target`` entry (the labels) whatever ``target`` is; with
        ``target="label"`` the model runs once more per batch, without gradients, to predict.
        A probe none of whose images is classified correctly logs NaN scores, with a
        warning.
    std : bool, default=False
        Also log and record ``<score>_std``, the standard deviation over images of each score.
    five_band_kwargs, method_kwargs : dict, optional
        Passed to :class:`~lightning_distill.metrics.FiveBandScore` and to the Captum method.
        ``five_band_kwargs`` is fixed at construction (kept as a dict that refuses to be set
        again or edited in place); ``method_kwargs`` may be set again, and is checked with
        ``method`` before every fit and evaluation. A ``baselines`` or ``feature_mask`` tensor
        whose first axis is not 1 holds one entry per probe image, in the probe's order: each
        batch is explained with its images' entries. So does an extra forward argument
        (``additional_forward_args``, or an item of its tuple) that is a tensor or list of
        the probe's length (Captum splits such an argument between a batch's inputs); one of
        a probe batch's length (other than 1) is refused, and any other (a number, a tensor
        with 1 on its first axis or none) is given to every batch as it is. The probe's batch
        sizes these are checked against are read at the start of every fit (or at the first
        evaluation outside one) and kept, so that an evaluation reads the probe once; a probe
        whose batches have changed since (a list of batches edited in place) is read anew, and
        one whose batches differ from one pass to the next is refused. A method that draws
        (GradientShap, KernelShap, Lime) draws each image's numbers from its position in the
        probe, and ShapleyValueSampling the same permutations for every batch, so the scores
        do not depend on the probe's batch size.
    save_dir : str or Path, optional
        If given, every evaluation also writes ``attribution_epoch<N>.png`` (the first
        ``plot_images`` images of the first probe batch beside the model's and the teacher's
        maps; ``N`` is the Trainer's ``current_epoch``, counted from 0).
    plot_images : int, default=4
    prefix : str, default="attribution"
        Start of the logged names; two monitors on one Trainer need different prefixes (the
        prefix also tells their saved states apart).

    Attributes
    ----------
    history : list of dict
        ``{"epoch", <score>: value}`` per evaluation (and ``<score>_std: value`` with
        ``std=True``).

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> from lightning_distill.datasets import SyntheticCells
    >>> probe = DataLoader(SyntheticCells(32), batch_size=16)
    >>> monitor = AttributionMonitor(probe, method="Saliency", module="student", every_n_epochs=2)
    """

    def __init__(
        self,
        dataloader: Iterable[Any],
        *,
        method: AttributionMethod = "Saliency",
        metrics: Sequence[str] | None = None,
        every_n_epochs: int = 1,
        module: str | None = None,
        teacher: nn.Module | None = None,
        target: str = "label",
        top_k: float = 0.1,
        correct_only: bool = False,
        std: bool = False,
        five_band_kwargs: dict[str, Any] | None = None,
        method_kwargs: dict[str, Any] | None = None,
        save_dir: str | Path | None = None,
        plot_images: int = 4,
        prefix: str = "attribution",
    ) -> None:
        super().__init__()
        # each checked when set (properties below), here and after construction
        self.dataloader = dataloader
        self.method = method
        self.method_kwargs = method_kwargs
        # a misspelt method or a wrong keyword fails now, not after every_n_epochs of training
        self._check_method_settings()
        self.metrics = metrics
        self.module = module
        self.teacher = teacher
        self.prefix = prefix
        self.every_n_epochs = every_n_epochs
        self.target = target
        self.correct_only = correct_only
        self.std = std
        # fixed, edits in place refused too: the FiveBandScore below is built from them once
        self.five_band_kwargs = FixedDict(
            _check_mapping("five_band_kwargs", five_band_kwargs),
            "five_band_kwargs",
            type(self).__name__,
            _MADE_FROM_FIVE_BAND_KWARGS,
        )
        self.save_dir = save_dir
        self.plot_images = plot_images
        # built now so that bad metric arguments fail at construction
        try:
            self._five_band = FiveBandScore(**self.five_band_kwargs)
        except (TypeError, ValueError) as error:
            raise type(error)(f"five_band_kwargs: {error}") from error
        self._localisation = AttributionLocalisation()
        self._agreement = AttributionAgreement(top_k=top_k)
        self.history: list[dict[str, Any]] = []

    def __setattr__(self, name: str, value) -> None:
        # set again (or edited in place: a FixedDict), five_band_kwargs had not reached the
        # FiveBandScore built from them at construction
        refuse_fixed_setting(self, name, value, ("five_band_kwargs",), _MADE_FROM_FIVE_BAND_KWARGS)
        super().__setattr__(name, value)
        if name == "dataloader":
            # another probe: its batch sizes are read anew when per-image entries need them
            self._probe_sizes: list[int] | None = None

    def _check_method_settings(self) -> None:
        """Check ``method`` with ``method_kwargs`` (and a FeaturePermutation's probe): at
        construction, and before every fit and evaluation, as each may be set alone."""
        explainer = check_method(self.method, self.method_kwargs, "method", "method_kwargs")
        if explainer is not None and explainer.__name__ == "FeaturePermutation":
            if _has_lone_batch(self.dataloader):
                fail(
                    "dataloader",
                    "batches of at least 2 images for FeaturePermutation (it permutes each "
                    "feature across a batch); change batch_size or pass drop_last=True",
                    "a batch of 1 image",
                )

    # ------------------------------------------------------------------ checked settings
    # set after construction too: a misspelt target read as "prediction" (the attributions
    # explained the predicted class, not the label), and every_n_epochs=0 failed in a hook;
    # a shuffling probe, a misspelt method or metric, a module or teacher of another type, an
    # empty prefix or a save_dir that is no path had been taken and failed (or logged under
    # "/localisation") at the end of an epoch. method and method_kwargs are each checked when
    # set and together before every fit and evaluation (set one at a time, a pair that fits
    # passes through one that does not)
    dataloader = CheckedSetting(
        _check_probe, "The probe data, in a fixed order (checked when set)."
    )
    method = CheckedSetting(
        _check_method_alone,
        "The attribution method (checked when set, with ``method_kwargs`` before each fit).",
    )
    method_kwargs = CheckedSetting(
        _check_mapping,
        "Keyword arguments of the method, kept as a dict of their own (checked when set, with "
        "``method`` before each fit).",
    )
    metrics = CheckedSetting(
        _check_metrics,
        "The metrics computed, kept as a list of their own; None: every one the probe allows "
        "(checked when set).",
    )
    module = CheckedSetting(
        _check_module_name, "Name of the submodule explained, or None (checked when set)."
    )
    teacher = CheckedSetting(
        _check_teacher, "The reference model of ``agreement``, or None (checked when set)."
    )
    prefix = prefix_setting()
    save_dir = save_dir_setting()
    every_n_epochs = every_n_epochs_setting()
    target = CheckedSetting(
        functools.partial(check_choice, choices=("label", "prediction")),
        '``"label"`` or ``"prediction"``: the class explained (checked when set).',
    )
    plot_images = CheckedSetting(
        functools.partial(check_integer, minimum=1),
        "Probe images in the picture (checked when set).",
    )
    correct_only = CheckedSetting(
        check_bool,
        "Whether only the images the model classifies correctly are scored (checked when set).",
    )
    std = CheckedSetting(
        check_bool,
        "Whether each score's standard deviation over images is logged (checked when set).",
    )

    # ------------------------------------------------------------------ Lightning hooks
    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(prefix=self.prefix, module=self.module)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.module is not None:
            resolve_module_names(pl_module, [self.module], argument="module")
        check_unique_prefix(
            trainer, self, lambda monitor: f"module {monitor.module or 'the whole module'!r}"
        )

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        warn_if_never_runs("AttributionMonitor", self.every_n_epochs, trainer)
        self._check_method_settings()  # each may have been set alone since construction
        # what the probe or the module cannot give fails now, not after every_n_epochs
        model, teacher = self._models(pl_module)
        if type(model).forward in (nn.Module.forward, L.LightningModule.forward):
            fail(
                "module",
                "the name of the submodule to explain, e.g. 'student' (the LightningModule "
                "has no forward of its own)",
                self.module,
            )
        device = next(iter(model.parameters()), torch.empty(0)).device
        # reading the probe draws a seed (from the loader's own generator when it has one)
        with random_state_kept(device, self.dataloader):
            batches = iter(self.dataloader)
            first = _first_batch(batches)
            self._check_probe(first, teacher)
            self._probe_sizes = None  # read again for every fit: the probe may have changed
            self._per_input_keys(first, batches)

    def _check_probe(self, first: dict, teacher: nn.Module | None) -> list[str]:
        """The metrics to compute from this probe; refuses a probe without labels when they
        are the classes to explain (or correct_only reads them), or without what a requested
        metric needs."""
        chosen = self._chosen_metrics(first, teacher)
        # with target="prediction" (and correct_only=False) the probe's targets are not read
        if self.target == "label" or self.correct_only:
            if first["target"] is None:
                read = (
                    "the classes to explain; target='prediction' explains the model's own "
                    "prediction without one"
                    if self.target == "label"
                    else "the labels that correct_only=True compares the predictions with"
                )
                fail("dataloader", f"batches with a 'target' entry ({read})", "none")
            _check_labels(first["target"])
            if self.correct_only:
                _check_label_per_image(first["target"], len(first["image"]))
        return chosen

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        values = self.evaluate(pl_module, epoch=trainer.current_epoch)
        logged = {f"{self.prefix}/{name}": value for name, value in values.items()}
        # identical on every process already; sync_dist only keeps Lightning's DDP check quiet
        pl_module.log_dict(logged, on_step=False, on_epoch=True, sync_dist=True)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ------------------------------------------------------------------ evaluation
    def _models(self, pl_module: nn.Module) -> tuple[nn.Module, nn.Module | None]:
        model = pl_module
        if self.module is not None:
            model = resolve_module_names(pl_module, [self.module], argument="module")[self.module]
        teacher = self.teacher
        if teacher is None and isinstance(getattr(pl_module, "teacher", None), nn.Module):
            teacher = pl_module.teacher
        return model, teacher

    def _chosen_metrics(self, first: dict, teacher: nn.Module | None) -> list[str]:
        available = {
            "localisation": first["mask"] is not None,
            "five_band": first["heatmap"] is not None,
            "agreement": teacher is not None,
        }
        needs = {
            "localisation": "probe batches with a 'mask' entry",
            "five_band": "probe batches with a 'heatmap' entry",
            "agreement": "a teacher (the teacher argument or pl_module.teacher)",
        }
        if self.metrics is None:
            chosen = [name for name in METRICS if available[name]]
            if not chosen:
                fail("metrics", "computable: " + "; ".join(needs.values()), "none available")
            return chosen
        for name in self.metrics:
            if not available[name]:
                fail("metrics", f"computable: {name!r} needs {needs[name]}", self.metrics)
        return self.metrics

    def _sizes(self, first: dict, rest) -> list[int]:
        """The number of images of every probe batch, in order: read at the start of every
        fit (or at the first evaluation that needs them, outside a fit) in the pass whose
        first batch is ``first`` and whose other batches the iterator ``rest`` gives (it is
        exhausted then), and kept, so that an evaluation reads the probe once; checked against
        the batches every evaluation reads (:meth:`_batches`), and read anew when they
        differ. Read from the open pass, not a new one: a DataLoader with persistent workers
        hands out one iterator, which a new pass would reset under the open one."""
        if self._probe_sizes is None:
            rest_sizes = [len(_split_batch(batch)["image"]) for batch in rest]
            self._probe_sizes = [len(first["image"]), *rest_sizes]
        return self._probe_sizes

    def _per_input_keys(self, first: dict, rest) -> tuple[list, list[int] | None]:
        """The keys of ``method_kwargs`` holding one entry per probe image (a ``baselines`` or
        ``feature_mask`` tensor whose first axis is not 1; ``("additional_forward_args",
        position)`` for an extra forward argument of the probe's length), checked against the
        number of probe images, and the probe's batch sizes they were checked against (None
        when there may be no such keys, and the sizes were not read; when they are not kept,
        they are read from ``rest``, the iterator of the pass ``first`` began): each batch is
        explained with its images' entries, in the probe's fixed order."""
        images = first["image"]
        ndim = images.ndim if isinstance(images, Tensor) else 0
        keys: list = per_input_kwargs(self.method, self.method_kwargs, ndim)
        arguments = forward_arguments(self.method_kwargs.get(FORWARD_ARGS))
        lengths = {entry_count(value) for value in arguments} - {None, 1}
        if not keys and not lengths:
            return keys, None
        sizes = self._sizes(first, rest)
        count = sum(sizes)
        for key in keys:
            shape = tuple(_single_tensor(self.method_kwargs[key]).shape)
            if shape[0] != count:
                fail(
                    f"method_kwargs[{key!r}]",
                    f"a tensor with one entry per probe image ({count}, in the probe's order) "
                    "or one for all images (1) on its first axis",
                    shape,
                )
        # an extra forward argument of a batch's length is split between the batch's images
        # by Captum: one entry per probe image is cut to each batch's; one of a batch's length
        # given whole to every batch would reach each with the first batch's entries
        for key in per_input_forward_args(self.method_kwargs, [count, *sizes]):
            value = arguments[key[1]]
            if entry_count(value) != count:
                fail(
                    forward_argument_name("method_kwargs", self.method_kwargs, key[1]),
                    f"one entry per probe image ({count}, in the probe's order) on its first "
                    "axis, or the same for every image (a number, a tensor with 1 on its first "
                    "axis or with no first axis, or one whose length is not that of a probe "
                    f"batch, {', '.join(map(str, sorted(set(sizes))))})",
                    value,
                )
            keys.append(key)
        return keys, sizes

    def _batches(
        self, rank: int, world_size: int, first: dict, rest, sizes: list[int] | None, again: bool
    ):
        """``(number, start, batch)`` of this process's probe batches, numbered from 0 in the
        probe, ``start`` the position of the batch's first image in the probe: ``first``, then
        the batches of the iterator ``rest`` (one pass over the probe). Every batch's size is
        checked against ``sizes`` (those the per-image entries were checked against) before
        the batch is used: :class:`_ProbeChanged` when they differ, refused when they differ
        ``again`` (sizes read in the pass before)."""
        start = 0
        index = -1
        for index, split in enumerate(
            itertools.chain([first], (_split_batch(batch) for batch in rest))
        ):
            count = len(split["image"])
            if sizes is not None and (index >= len(sizes) or count != sizes[index]):
                self._refuse_other_sizes(sizes, f"batch {index} (from 0) of {count} images", again)
            if index % world_size == rank:
                yield index, start, split
            start += count
        if sizes is not None and index + 1 != len(sizes):
            self._refuse_other_sizes(sizes, f"{index + 1} batches", again)

    def _refuse_other_sizes(self, sizes: list[int], got: str, again: bool) -> None:
        if not again:
            raise _ProbeChanged
        fail(
            "dataloader",
            "probe data that yields the same batches on every pass (method_kwargs holds "
            "entries checked against the probe's "
            f"{len(sizes)} batches of {', '.join(map(str, sizes))} images, read in the pass "
            "before)",
            got,
        )

    def evaluate(self, pl_module: nn.Module, epoch: int | None = None) -> dict[str, float]:
        """Score the attributions on the probe data now; returns (and records) the scores.

        Under DDP every process must call it (the sums are reduced across processes). Torch's
        random state and the probe loader's own generators are given back afterwards (reading
        the probe loader draws a seed), so a random attribution method gives the same scores on
        every call and a generator the probe shares with the training loader keeps its order.
        """
        self._check_method_settings()
        model, teacher = self._models(pl_module)
        device = next(iter(model.parameters()), torch.empty(0)).device
        with random_state_kept(device, self.dataloader):
            return self._evaluate(pl_module, model, teacher, device, epoch)

    def _evaluate(self, pl_module, model, teacher, device, epoch) -> dict[str, float]:
        rank, world_size = rank_and_world_size()
        try:
            first, chosen, keys, metrics = self._score(
                pl_module, model, teacher, device, rank, world_size, again=False
            )
        except _ProbeChanged:
            # the probe's batches are not those whose sizes were kept (a list of batches
            # changed in place): read them anew and score again
            self._probe_sizes = None
            first, chosen, keys, metrics = self._score(
                pl_module, model, teacher, device, rank, world_size, again=True
            )
        values: dict[str, float] = {}
        for name in chosen:
            result = metrics[name].compute()
            if isinstance(result, dict):
                values.update({key: float(value) for key, value in result.items()})
            else:
                values[name] = float(result)
            if self.std:
                # the spread of each image's score whose mean compute() gives (for the five
                # bands: of its score averaged over the threshold sets)
                spread = metrics[name].std()
                if isinstance(spread, dict):
                    values.update({f"{key}_std": float(value) for key, value in spread.items()})
                else:
                    values[f"{name}_std"] = float(spread)
        self.history.append({"epoch": epoch, **values})
        if self.save_dir is not None and rank == 0:
            self._save_picture(model, teacher, first, device, epoch, keys)
        return values

    def _score(self, pl_module, model, teacher, device, rank, world_size, again: bool):
        """One pass over the probe, its first batch choosing the metrics: ``(first batch,
        chosen metrics, per-image keys, metrics updated)``."""
        batches = iter(self.dataloader)
        first = _first_batch(batches)
        chosen = self._check_probe(first, teacher)
        kept = self._probe_sizes is not None
        keys, sizes = self._per_input_keys(first, batches)
        if sizes is not None and not kept:
            # the batch sizes were read to the end of this pass: the scoring pass is the next
            batches = iter(self.dataloader)
            first = _first_batch(batches)
        metrics = {
            "five_band": self._five_band,
            "localisation": self._localisation,
            "agreement": self._agreement,
        }
        for name in chosen:
            metrics[name] = metrics[name].to(device)
            metrics[name].reset()
        # attribute() switches modes per call; holding eval mode here keeps the prediction pass
        # and the attributions on the same mode, and gives every submodule's mode back once
        with evaluation_mode(pl_module):
            split = self._batches(rank, world_size, first, batches, sizes, again)
            for number, start, batch in split:
                _check_entries(batch, number, chosen)
                indices = range(start, start + len(batch["image"]))
                self._update(model, teacher, batch, chosen, metrics, device, indices, keys)
        return first, chosen, keys, metrics

    def _targets(self, model: nn.Module, images: Tensor, labels, device) -> Tensor:
        """The classes to explain: the batch's labels (checked before they are moved: a
        later batch's may not be a tensor), or the model's prediction, whose batches' target
        entries are not read at all."""
        if self.target == "label":
            _check_labels(labels)
            return labels.to(device).long()
        return self._predictions(model, images)

    def _correct(self, model, images: Tensor, labels, targets: Tensor) -> Tensor:
        """Which images of a batch the model classifies correctly: its prediction (``targets``
        with ``target="prediction"``) equal to the batch's label."""
        _check_labels(labels)
        _check_label_per_image(labels, len(images))
        predicted = targets if self.target == "prediction" else self._predictions(model, images)
        return predicted == labels.to(predicted.device).long()

    def _predictions(self, model: nn.Module, images: Tensor) -> Tensor:
        """The model's predicted class of each image: the argmax of its logits (checked)."""
        read = (
            "target='prediction' explains"
            if self.target == "prediction"
            else "correct_only=True compares with the labels"
        )
        with torch.no_grad():
            try:
                outputs = model(images)
            except RuntimeError as error:
                if keeps_its_type(error):  # out of memory and the like keep their type
                    raise
                # torch's shape or dtype complaint, deep in the model (as attribute() says it)
                raise ValueError(
                    f"module could not be run on the probe's images of shape "
                    f"{tuple(images.shape)} to predict their classes ({read} the "
                    f"predictions): {error}"
                ) from error
        if not isinstance(outputs, Tensor) or outputs.ndim != 2:
            # attribute() reads the same logits: a tuple or a flat output fails there alike
            fail(
                "module",
                f"a model returning logits of shape [N, classes] ({read} their argmax)",
                tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__,
                TypeError if not isinstance(outputs, Tensor) else ValueError,
            )
        # a row with a NaN, a +inf (whose softmax is NaN), or nothing but -inf predicts no class:
        # argmax would read it as the NaN's class, or class 0, and explain that class without a
        # word (a diverged model's gradients can stay finite, e.g. with NaN biases or
        # batch-norm statistics, so the maps would be scored as any other)
        broken = rows_without_a_class(outputs)
        if bool(broken.any()):
            name = "pl_module" if self.module is None else f"module {self.module!r}"
            raise ValueError(
                f"{name} must return logits without NaN or +inf, and not all -inf, on the "
                f"probe's images ({read} each image's largest logit, which such a row has "
                "not: a diverged model?); got such logits for "
                f"{int(broken.sum())} of {len(broken)} images of a probe batch."
            )
        return outputs.argmax(1)

    def _maps(self, model, images, targets, indices: range, keys: list[str]) -> Tensor:
        """The maps of the probe images at ``indices``: with their own entries of per-image
        keyword arguments, and (a method that draws) the draws of their positions in the
        probe, whatever the batch size; the student's and the teacher's alike."""
        kwargs = slice_per_input(self.method_kwargs, keys, indices.start, indices.stop)
        return attribute_indexed(model, images, targets, self.method, indices, **kwargs)

    def _update(self, model, teacher, batch, chosen, metrics, device, indices, keys) -> None:
        images = as_module_input(batch["image"], model)
        targets = self._targets(model, images, batch["target"], device)
        keep = None
        if self.correct_only:
            keep = self._correct(model, images, batch["target"], targets)
        maps = self._maps(model, images, targets, indices, keys)
        if keep is not None:
            keep = keep.to(maps.device)
        if "localisation" in chosen:
            metrics["localisation"].update(maps, batch["mask"].to(device), keep)
        if "five_band" in chosen:
            metrics["five_band"].update(maps, batch["heatmap"].to(device), keep)
        if "agreement" in chosen:
            teacher_maps = self._teacher_maps(
                teacher, batch["image"], targets, maps.device, indices, keys
            )
            metrics["agreement"].update(teacher_maps, maps, keep)

    def _teacher_maps(self, teacher, images: Tensor, targets: Tensor, device, indices, keys):
        """The teacher's maps of ``images``, computed on the teacher's own device and floating
        dtype (a ``teacher=`` that is not part of the module is not cast or moved by the
        Trainer's precision: under ``"64-true"`` or ``"bf16-true"`` it stays as it was), then
        brought to ``device``; the agreement ranks each map in its own dtype."""
        inputs = as_module_input(images, teacher)
        maps = self._maps(teacher, inputs, targets.to(inputs.device), indices, keys)
        return maps.to(device)

    def _class_name(self, index: int) -> str:
        """The probe data set's name of a class (``class_names``, as the library's data sets
        have; a ``Subset``'s from the data set it takes from), else its index."""
        dataset = getattr(self.dataloader, "dataset", None)
        while isinstance(dataset, Subset) and not hasattr(dataset, "class_names"):
            dataset = dataset.dataset  # a Subset of a probe set keeps its classes' names
        names = getattr(dataset, "class_names", None)
        # a list or tuple of names, or a numpy array or pandas Index of them
        if is_listed(names) and 0 <= index < len(names):
            return str(names[index])
        return str(index)

    def _save_picture(self, model, teacher, first, device, epoch, keys) -> None:
        from lightning_distill.attribution.plotting import plot_attribution_maps

        images = as_module_input(first["image"][: self.plot_images], model)
        # with target="prediction" the target entry is not read (it need not be a tensor)
        labels = first["target"][: self.plot_images] if self.target == "label" else None
        with evaluation_mode(model):
            targets = self._targets(model, images, labels, device)
        name = self.module or "model"
        indices = range(len(images))  # the first images of the probe
        maps = {name: self._maps(model, images, targets, indices, keys)}
        if teacher is not None:
            maps["teacher"] = self._teacher_maps(
                teacher, first["image"][: self.plot_images], targets, images.device, indices, keys
            )
        self.save_dir.mkdir(parents=True, exist_ok=True)
        tag = f"epoch{epoch}" if epoch is not None else "now"
        method = getattr(self.method, "__name__", str(self.method))
        when = f"after epoch {epoch} (from 0)" if epoch is not None else "now"
        explained = "label" if self.target == "label" else "prediction"
        plot_attribution_maps(
            images.cpu(),
            {key: value.cpu() for key, value in maps.items()},
            row_titles=[f"{explained}: {self._class_name(int(t))}" for t in targets.tolist()],
            path=self.save_dir / f"attribution_{tag}.png",
            title=f"{method} maps {when}; each map scaled to its own maximum",
        )
