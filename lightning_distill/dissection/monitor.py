"""Log network dissection (how many units detect concepts) while a model trains."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset, Sampler, Subset

from lightning_distill._batch import INPUT_KEYS, _first_key, shuffling_sampler
from lightning_distill._distributed import rank_and_world_size
from lightning_distill._modes import evaluation_mode
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
    FixedList,
    check_integer,
    keeps_its_type,
    refuse_fixed_setting,
)
from lightning_distill.dissection.functional import NON_FINITE_MESSAGE
from lightning_distill.dissection.metric import DissectionResults, NetworkDissection
from lightning_distill.hooks import (
    FeatureHooks,
    _pick,
    resolve_layer_names,
    split_element,
    warn_if_run_repeatedly,
)

__all__ = ["DissectionMonitor"]


def _split_batch(batch: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(images, labels, image_labels)`` of a probe batch (a tuple, or a dict or any other
    mapping), checked before any forward pass."""
    if isinstance(batch, Mapping):
        # the key the training modules read (a batch with "x" and "image" trains on "x")
        key = _first_key(batch, INPUT_KEYS)
        if key is None:
            raise ValueError(
                "a probe batch given as a dict needs an 'image' entry (or one of "
                f"{INPUT_KEYS}), got keys {list(batch)}"
            )
        images = batch[key]
        labels, image_labels = batch.get("labels"), batch.get("image_labels")
        if labels is None and image_labels is None:
            raise ValueError(
                "a probe batch given as a dict needs its concept labels under 'labels' (pixel "
                "labels [B, K, H, W]) and/or 'image_labels' (whole-image labels [B, S]), got "
                f"keys {list(batch)}: rename the key (or pass tuples (images, labels))"
            )
        return images, labels, image_labels
    if isinstance(batch, list | tuple) and 2 <= len(batch) <= 3:
        images, labels = batch[0], batch[1]
        image_labels = batch[2] if len(batch) == 3 else None
        if isinstance(image_labels, Tensor) and image_labels.ndim != 2:
            raise ValueError(
                "the third entry of a probe batch (images, labels, image_labels) is read as "
                f"whole-image labels [B, S]; got shape {tuple(image_labels.shape)}. A class "
                "target there is not a concept label: leave it out, or give dict batches with "
                "'image' and 'labels' (other keys are ignored)."
            )
        if labels is None and image_labels is None:
            raise ValueError(
                "a probe batch (images, labels[, image_labels]) needs labels and/or "
                "image_labels, got None for both"
            )
        return images, labels, image_labels
    got = type(batch).__name__
    if isinstance(batch, list | tuple):
        got = f"a {got} of {len(batch)} entries"
    raise ValueError(
        "probe batches must be dicts with 'image', 'labels' (and 'image_labels') or tuples "
        f"(images, labels[, image_labels]), got {got}"
    )


def _sampler_order(loader: Any) -> list[int] | str | None:
    """Dataset index of every position of the probe iteration.

    None when the probe has no sampler to read (only a ``DataLoader`` over a map-style dataset
    with a batch sampler has one); a sentence saying why when the batch sampler gives another
    order on a second read (a custom shuffling sampler).
    """
    if (
        not isinstance(loader, DataLoader)
        or loader.batch_sampler is None
        or isinstance(loader.dataset, IterableDataset)
    ):
        return None
    order = [int(index) for batch in loader.batch_sampler for index in batch]
    again = [int(index) for batch in loader.batch_sampler for index in batch]
    if order != again:
        return (
            f"the loader's {type(loader.batch_sampler).__name__} gives another order on every "
            "pass, so its top images cannot be found again; give the loader a fixed order"
        )
    return order


class _ShareOfBatches(Sampler):
    """Every ``world_size``-th batch of a batch sampler, starting at batch ``rank``."""

    def __init__(self, batch_sampler: Iterable[list[int]], rank: int, world_size: int) -> None:
        self.batch_sampler = batch_sampler
        self.rank = rank
        self.world_size = world_size

    def __iter__(self):
        for index, batch in enumerate(self.batch_sampler):
            if index % self.world_size == self.rank:
                yield batch

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.rank + self.world_size - 1) // self.world_size


def _share_of_loader(loader: DataLoader, rank: int, world_size: int) -> DataLoader:
    """The same loader (workers, collation, pinning) loading only this process's batches."""
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_sampler=_ShareOfBatches(loader.batch_sampler, rank, world_size),
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers else None,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
    )


@contextmanager
def _probing(module: nn.Module, device: torch.device, loader):
    """The module in eval mode without gradients, every submodule's mode given back after, and
    the training's random state untouched: torch's generators and ``loader``'s own (the probe
    loader draws a seed when iterated, from its own generator when it has one)."""
    # a submodule's own train() (input noise, a frozen part) is given its mode back through it
    with evaluation_mode(module), torch.no_grad(), random_state_kept(device, loader):
        yield


def _thresholds(metric: NetworkDissection):
    """``metric.compute_thresholds()``; its advice on ``histogram_range`` says how to give it to
    the monitor (through ``metric_kwargs``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thresholds = metric.compute_thresholds()
    for warning in caught:
        message = str(warning.message)
        if "histogram_range=" in message:
            message += (
                " DissectionMonitor takes it as metric_kwargs={'histogram_range': (low, high)}."
            )
        warnings.warn(message, warning.category, stacklevel=4)
    return thresholds


#: Fields of each ``history`` entry (and logged names) beside the counts per concept category.
_HISTORY_FIELDS = ("epoch", "units", "detectors", "unique_concepts")

#: DissectionMonitor's settings fixed at construction, and what is made from them
_LABEL_SETTINGS = ("label_names", "label_categories")
_MADE_FROM_LABELS = "the metric and the counts per category in history are made from it"
_MADE_FROM_METRIC_KWARGS = "the metric kept between dissections is built from it"


def _check_probe(name: str, dataloader):
    """The probe data: iterable, in a fixed order, not known to be empty."""
    if not hasattr(dataloader, "__iter__"):
        raise TypeError(
            f"{name} must be an iterable of probe batches, got {type(dataloader).__name__}"
        )
    check_unsharded(name, dataloader)  # before the order: a DistributedSampler shuffles by default
    shuffling = shuffling_sampler(dataloader)
    if shuffling is not None:
        raise ValueError(
            f"{name} must keep a fixed order (shuffle=False, no random sampler): both "
            "passes, all processes and the unit picture must see the same batches; got a "
            f"DataLoader with a {shuffling} (another order on every pass)"
        )
    if known_empty(dataloader):
        raise ValueError(
            f"{name} must yield at least one probe batch; got an empty {type(dataloader).__name__}."
        )
    return dataloader


def _probe_dataset(dataloader):
    """The probe's dataset (through ``Subset``s that do not name the labels), or None."""
    dataset = getattr(dataloader, "dataset", None)
    while isinstance(dataset, Subset) and not hasattr(dataset, "label_names"):
        dataset = dataset.dataset  # a Subset of a probe set keeps its labels' names
    return dataset


def _dataset_labels(dataset) -> dict[str, list | None]:
    """The label names and categories ``dataset`` gives itself (None for each it gives none)."""
    labels = {setting: getattr(dataset, setting, None) for setting in _LABEL_SETTINGS}
    return {setting: None if value is None else list(value) for setting, value in labels.items()}


def _check_layer(name: str, layer) -> str:
    if not isinstance(layer, str):
        raise TypeError(f"{name} must be a module name (str); got {layer!r}.")
    return layer


def _check_callable(what: str):
    def check(name: str, value):
        if value is not None and not callable(value):
            raise TypeError(
                f"{name} must be a callable {what}, or None; got {type(value).__name__}"
            )
        return value

    return check


def _describe_item(item) -> str:
    """``(a tensor [3, 8, 8], an int)`` for a probe item or batch, for an error message."""

    def one(value) -> str:
        if isinstance(value, Tensor):
            return f"a tensor {list(value.shape)}" if value.ndim else "a 0-d tensor"
        return f"a {type(value).__name__}"

    if isinstance(item, list | tuple):
        return f"({', '.join(one(value) for value in item)})"
    if isinstance(item, Mapping):
        return f"a dict with keys {sorted(map(str, item))}"
    return one(item)


def _missing_labels_message(dataloader, dataset, label_names, label_categories) -> str:
    """Why a probe without label names cannot be dissected: what it is, and what it needs."""
    if label_names is None and label_categories is None:
        missing = "neither label_names nor label_categories"
    elif label_names is None:
        missing = "label_categories but no label_names"
    else:
        missing = "label_names but no label_categories"
    where = (
        f"a {type(dataloader).__name__} over a {type(dataset).__name__}"
        if dataset is not None
        else f"a {type(dataloader).__name__}"
    )
    try:  # one item (of a map-style dataset) or batch (of a list), to say what the probe holds
        if dataset is not None and not isinstance(dataset, IterableDataset):
            first, kind = dataset[0], "items"
        elif isinstance(dataloader, Sequence):
            first, kind = dataloader[0], "batches"
        else:
            first = kind = None
    except Exception:  # a probe that cannot be indexed: described by its type alone
        first = kind = None
    holds = f", whose {kind} are {_describe_item(first)}" if kind is not None else ""
    if isinstance(first, list | tuple) and len(first) == 2:
        target = first[1]
        if isinstance(target, int) or (
            isinstance(target, Tensor) and target.ndim <= 1 and not target.is_floating_point()
        ):
            holds += (
                ": (image, class) pairs, as a classification dataset gives them, no pixel labels"
            )
    return (
        "label_names and label_categories are needed: the probe must hold pixel-level concept "
        "labels (segmentation masks of label ids [B, K, H, W], with optional whole-image labels, "
        "in the Broden format: README, 'Network dissection'), and the name and category of "
        f"every label id; got {missing}, and {where} without these attributes{holds}. Use "
        "BrodenDataset(root) or SyntheticConcepts(n) (which carry them), or, for probe data of "
        "your own with such masks, pass label_names (the name of each label id, entry 0 "
        "unlabelled) and label_categories (the category of each)."
    )


def _several_sizes(images: list[Tensor], labels: list[Tensor | None]) -> str | None:
    """Why images of several sizes, or with pixel labels of several sizes, cannot be drawn
    side by side (None when they can)."""
    sizes = list(dict.fromkeys(tuple(image.shape) for image in images))
    if len(sizes) > 1:
        return (
            f"the top images of the units have different sizes {sizes[0]} and {sizes[1]}, and "
            "the unit picture draws them side by side at one size; give the probe images of "
            "one size (resize or crop them in its dataset) for the picture"
        )
    sizes = list(dict.fromkeys(None if lab is None else tuple(lab.shape[-2:]) for lab in labels))
    if len(sizes) > 1:
        return (
            f"the top images of the units have pixel labels of different sizes {sizes[0]} and "
            f"{sizes[1]}, and the unit picture draws every unit's masks at one resolution, the "
            "labels' (where IoU is counted); give the probe labels of one size for the picture"
        )
    return None


def _label_size(labels: Tensor | None) -> tuple[int, int] | None:
    """``(height, width)`` of pixel labels ``[..., H, W]``; None without them."""
    return None if labels is None else tuple(int(side) for side in labels.shape[-2:])


class DissectionMonitor(Callback):
    """Dissect a layer on a probe set every few epochs and log how many units detect concepts.

    At the end of every ``every_n_epochs``-th training epoch the monitor runs the two passes of
    :class:`~lightning_distill.metrics.NetworkDissection` over ``dataloader`` (thresholds, then
    tallies) under ``torch.no_grad`` with the module in eval mode, restores every submodule's
    mode, and logs ``dissection/detectors``, ``dissection/unique_concepts`` and
    ``dissection/<category>`` to the Trainer's loggers. Under DDP each process loads only every
    ``world_size``-th batch (a ``DataLoader`` is split by its batch sampler; another iterable is
    iterated whole and the other batches skipped) and the metric's sums are reduced across
    processes, so the numbers equal those of one process.

    The network runs once over the probe data when the maps of the layer (in its dtype) and the
    labels fit the metric's ``cache_bytes`` (default 512 MiB, set it with ``metric_kwargs``);
    then thresholds and tallies come from the cached maps. Otherwise the probe data is loaded
    and run three times (coarse histogram, fine histogram, tallies). The cache is freed at the
    end of every dissection. Only the results table and the pictures go to the CPU.

    Parameters
    ----------
    dataloader : torch.utils.data.DataLoader or iterable of batches
        Probe data, in a fixed order: a ``DataLoader`` with a random sampler (``shuffle=True``,
        ``SubsetRandomSampler``, ``WeightedRandomSampler``, a sampler with ``shuffle=True``) is
        refused; any fixed-order sampler (``sampler=range(50, 100)``, a ``Subset``) is fine.
        It is the whole probe on every process: a ``DistributedSampler`` of more than one
        replica is refused (under DDP the monitor splits the probe itself).
        It is iterated more than once (a second pass when the maps do not fit the cache, the
        unit picture), so a one-shot iterator will not do. Batches are dicts with ``image``
        (or, as the training modules read them and in their order, ``inputs``, ``input``,
        ``x``, ``images``),
        ``labels`` (pixel labels ``[B, K, H, W]``) and/or ``image_labels`` (whole-image labels
        ``[B, S]``), as :class:`~lightning_distill.datasets.SyntheticConcepts` and
        :class:`~lightning_distill.datasets.BrodenDataset` give, or tuples
        ``(images, labels[, image_labels])``; a dict with neither label key is refused before
        any forward pass, naming the keys it has. Pixel labels must show the maps' field of view
        (same height/width ratio, see :meth:`NetworkDissection.update
        <lightning_distill.metrics.NetworkDissection.update>`).
    layer : str
        Name of the dissected submodule in ``pl_module.named_modules()`` (e.g.
        ``"student.layer3"`` in a :class:`~lightning_distill.DistillationModule`). Its output
        must be ``[B, U, h, w]``; for a submodule that returns a tuple, ``"name[k]"`` dissects
        element ``k`` of it, as in :class:`~lightning_distill.FeatureHooks`. A submodule the
        forward runs more than once (a shared block) is dissected at its last call, with a
        warning.
    every_n_epochs : int, default=1
    label_names, label_categories : sequence of str, optional
        Name and category of every label id; default: the attributes of the same name of
        ``dataloader.dataset``. Fixed at construction: kept as lists that refuse to be set again
        (``AttributeError``) or edited in place (``TypeError``).
    quantile, iou_threshold, activation_side
        See :class:`~lightning_distill.metrics.NetworkDissection`.
    forward : callable, optional
        ``forward(pl_module, images)`` runs the model; default ``pl_module(images)``.
    output_transform : callable, optional
        Applied to the layer's output before it is dissected, to give ``[B, U, h, w]`` maps:
        ``lambda out: out[0]`` for a layer that returns a tuple, ``lambda out: out.permute(0,
        3, 1, 2)`` for a channels-last ``[B, h, w, U]`` layer (after a ``LayerNorm``, say).
    save_dir : str or Path, optional
        If given, every dissection also writes ``categories_epoch<N>.png`` (detectors per
        category) and ``units_epoch<N>.png`` (top images of the best units with their masks;
        ``_now`` instead of ``_epoch<N>`` for :meth:`dissect` without ``epoch``). The masks
        are those the tally counted IoU on: each unit's map resized to its images' pixel labels
        (to the map's own size for whole-image labels alone) and thresholded, drawn over the
        image as blocks when the labels are coarser than the image (the picture's title gives
        both resolutions). The unit picture shows the probe's own images, those that reached each unit's highest peaks
        during the dissection: from a ``DataLoader`` over a map-style dataset they are the
        dataset items its sampler put at those places (loaded again by index, collated by its
        ``collate_fn``); from any other probe (an iterable dataset, a list of batches) they are
        taken from its batches, iterated once more. If they cannot be fetched (the probe cannot
        be iterated again) or differ in size (a probe of images, or of pixel labels, of several
        sizes), the unit picture is not written and a warning says so; the dissection's results
        stand.
    plot_units : int, default=8
        Units in the unit picture (best IoU first).
    top_k : int, default=6
        Images per unit in the unit picture.
    metric_kwargs : dict, optional
        Further :class:`~lightning_distill.metrics.NetworkDissection` arguments. Fixed at
        construction, as the labels are: kept (with ``quantile``, ``iou_threshold`` and
        ``activation_side``) as a dict that refuses to be set again or edited in place.
    prefix : str, default="dissection"
        Logged names are ``<prefix>/detectors`` etc.; give each monitor its own prefix when
        several dissect different layers.

    Attributes
    ----------
    history : list of dict
        ``{"epoch", "units", "detectors", "unique_concepts", <category>: count}`` per
        dissection, in the order they ran (``units``: the layer's width; ``epoch``: None for
        :meth:`dissect` outside a fit).
    last_results : DissectionResults or None
        Results of the latest dissection.
    metric : NetworkDissection or None
        The metric of the latest dissection; rebuilt when a layer of another width is dissected.

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> from lightning_distill.datasets import SyntheticConcepts
    >>> probe = DataLoader(SyntheticConcepts(64), batch_size=32)
    >>> monitor = DissectionMonitor(probe, "student.features.2", every_n_epochs=2)
    """

    def __init__(
        self,
        dataloader: Iterable[Any],
        layer: str,
        *,
        every_n_epochs: int = 1,
        label_names: Sequence[str] | None = None,
        label_categories: Sequence[str] | None = None,
        quantile: float | str = 0.995,
        iou_threshold: float = 0.04,
        activation_side: str = "annotated",
        forward: Callable[[nn.Module, Tensor], Any] | None = None,
        output_transform: Callable[[Any], Tensor] | None = None,
        save_dir: str | Path | None = None,
        plot_units: int = 8,
        top_k: int = 6,
        metric_kwargs: dict[str, Any] | None = None,
        prefix: str = "dissection",
    ) -> None:
        super().__init__()
        # these are checked when set (properties below), here and after construction
        self.dataloader = dataloader
        self.layer = layer
        self.every_n_epochs = every_n_epochs
        dataset = _probe_dataset(dataloader)
        if label_names is None:
            label_names = getattr(dataset, "label_names", None)
        if label_categories is None:
            label_categories = getattr(dataset, "label_categories", None)
        if label_names is None or label_categories is None:
            raise ValueError(
                _missing_labels_message(dataloader, dataset, label_names, label_categories)
            )
        self.prefix = prefix  # checked when set
        # the labels the probe's dataset names itself, which label_names and label_categories
        # given here may name otherwise: a probe set later may name its labels as these do
        self._probe_labels = _dataset_labels(dataset)
        # fixed, edits in place refused too: the metric kept between dissections is built
        # from them, and history's counts per category follow label_categories
        fixed = functools.partial(FixedList, kind=type(self).__name__, made=_MADE_FROM_LABELS)
        self.label_names = fixed(label_names, "label_names")
        self.label_categories = fixed(label_categories, "label_categories")
        reserved = sorted(set(map(str, self.label_categories)) & set(_HISTORY_FIELDS))
        if reserved:
            # the counts per category sit beside these fields in `history` and the logged names
            raise ValueError(
                f"label_categories must not be named like the monitor's own fields "
                f"{list(_HISTORY_FIELDS)} (the count of that category would overwrite the "
                f"field in history and in the logs); got {reserved}. Rename the category."
            )
        self.forward = forward  # these three checked when set
        self.output_transform = output_transform
        self._warned_repeated = False  # the layer ran several times in a forward: said once
        self.save_dir = save_dir
        self.plot_units = plot_units
        self.top_k = top_k
        if metric_kwargs is not None and not isinstance(metric_kwargs, Mapping):
            raise TypeError(f"metric_kwargs must be a mapping or None; got {metric_kwargs!r}")
        metric_kwargs = None if metric_kwargs is None else dict(metric_kwargs)
        own = {
            "quantile": quantile,
            "iou_threshold": iou_threshold,
            "activation_side": activation_side,
        }
        defaults = {
            name: inspect.signature(DissectionMonitor.__init__).parameters[name].default
            for name in own
        }
        # set both ways with other values, one of the two would be dropped without a word
        clash = sorted(
            name
            for name, value in (metric_kwargs or {}).items()
            if name in own and own[name] != defaults[name] and own[name] != value
        )
        if clash:
            raise ValueError(
                f"metric_kwargs must not set again what the monitor's own arguments set; got "
                f"{', '.join(f'{n}={metric_kwargs[n]!r} there and {n}={own[n]!r}' for n in clash)}"
                " (pass each once)"
            )
        # fixed, edits in place refused too: the metric kept between dissections is built from
        # them once (set later, they had been read only by a metric of another width)
        self.metric_kwargs = FixedDict(
            {**own, **(metric_kwargs or {})},
            "metric_kwargs",
            type(self).__name__,
            _MADE_FROM_METRIC_KWARGS,
        )
        # build a throw-away metric now so that bad metric arguments fail at construction
        try:
            NetworkDissection(1, self.label_names, self.label_categories, **self.metric_kwargs)
        except ValueError as error:
            if "Unexpected keyword" not in str(error):
                raise  # the metric's own check of a value, which names it
            # torchmetrics' message for a name neither the metric nor Metric takes
            raise ValueError(
                f"metric_kwargs must hold arguments of NetworkDissection (quantile, "
                f"iou_threshold, histogram_range, cache_bytes, ...); {error}"
            ) from None
        self.metric: NetworkDissection | None = None
        self._warned_flat_maps = False
        self.history: list[dict[str, Any]] = []
        self.last_results: DissectionResults | None = None

    def __setattr__(self, name: str, value) -> None:
        # set after construction, the labels skipped the constructor's checks (each other's
        # length, the metric's, the names history reserves), and a metric already built kept
        # the old ones while a metric of another width took the new; metric_kwargs likewise
        refuse_fixed_setting(self, name, value, _LABEL_SETTINGS, _MADE_FROM_LABELS)
        refuse_fixed_setting(self, name, value, ("metric_kwargs",), _MADE_FROM_METRIC_KWARGS)
        if name == "dataloader" and "label_names" in self.__dict__:
            self._check_probe_labels(value)
        super().__setattr__(name, value)

    def _check_probe_labels(self, dataloader) -> None:
        """Refuse a probe set after construction whose dataset names its labels otherwise than
        the monitor does (and than the probe the monitor was built on, whose labels the
        monitor's own may rename): its label ids would be read under the monitor's names."""
        own = _dataset_labels(_probe_dataset(_check_probe("dataloader", dataloader)))
        for setting in _LABEL_SETTINGS:
            if own[setting] is not None and own[setting] not in (
                list(getattr(self, setting)),
                self._probe_labels[setting],
            ):
                raise ValueError(
                    f"dataloader must have the {setting} the monitor was built with (its "
                    f"label ids are read under the monitor's {setting}); got a probe whose "
                    f"dataset has other {setting}. Build a new DissectionMonitor for it."
                )

    # ------------------------------------------------------------------ checked settings
    # set after construction too: every_n_epochs=0 failed in a hook, a negative one ran every
    # epoch, and a negative plot_units or top_k dropped units from the end silently; a
    # shuffling probe, a layer or callable of another type, an empty prefix or a save_dir
    # that is no path had failed in a hook or a dissection, or logged under "/detectors"
    dataloader = CheckedSetting(
        _check_probe,
        "The probe data, in a fixed order (checked when set; a probe of other labels is refused).",
    )
    layer = CheckedSetting(_check_layer, "Name of the dissected submodule (checked when set).")
    prefix = prefix_setting()
    forward = CheckedSetting(
        _check_callable("forward(pl_module, images)"),
        "Runs the model on the probe's images; None: ``pl_module(images)`` (checked when set).",
    )
    output_transform = CheckedSetting(
        _check_callable("taking the layer's output"),
        "Applied to the layer's output before it is dissected (checked when set).",
    )
    save_dir = save_dir_setting()
    every_n_epochs = every_n_epochs_setting()
    plot_units = CheckedSetting(
        functools.partial(check_integer, minimum=1),
        "Units in the unit picture, best IoU first (checked when set).",
    )
    top_k = CheckedSetting(
        functools.partial(check_integer, minimum=1),
        "Images per unit in the unit picture (checked when set).",
    )

    # ------------------------------------------------------------------ Lightning hooks
    @property
    def state_key(self) -> str:
        # several monitors (one per layer) may live in one Trainer
        return self._generate_state_key(layer=self.layer, prefix=self.prefix)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        resolve_layer_names(pl_module, [self.layer], argument="layer")
        check_unique_prefix(trainer, self, lambda monitor: f"layer {monitor.layer!r}")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        warn_if_never_runs("DissectionMonitor", self.every_n_epochs, trainer)
        if isinstance(self.dataloader, Iterator):
            # each dissection reads the probe again: a one-shot iterator serves one alone
            epochs = trainer.max_epochs
            due = None if epochs is None or epochs < 0 else epochs // self.every_n_epochs
            if due is None or due > 1:
                check_reiterable(self.dataloader)
            return  # its batches are kept for the one dissection (no first-batch look)
        # a layer the forward does not reach, or flat maps, fail now rather than after an epoch
        device = next(iter(pl_module.parameters()), torch.empty(0)).device
        with _probing(pl_module, device, self.dataloader):
            # the whole probe's first batch, on every process alike
            first = next(iter(self.dataloader), None)
            if first is not None:
                self._run(pl_module, _split_batch(first)[0][:2])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        results = self.dissect(pl_module, epoch=trainer.current_epoch)
        values = {
            f"{self.prefix}/detectors": float(results.num_detectors),
            f"{self.prefix}/unique_concepts": float(len(results.unique_concepts)),
        }
        for category, count in results.category_counts.items():
            values[f"{self.prefix}/{category}"] = float(count)
        # identical on every process already; sync_dist only keeps Lightning's DDP check quiet
        pl_module.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ------------------------------------------------------------------ dissection
    def _run(self, pl_module: nn.Module, images: Tensor) -> Tensor:
        images = as_module_input(images, pl_module)
        # "name[k]": the submodule's output is captured whole and element k picked after the
        # forward, so that a wrong pick is told as such, not as the forward's failure
        submodule, element = split_element(pl_module, self.layer)
        with FeatureHooks(pl_module, [submodule], detach=True, argument="layer") as hooks:
            how = "module(images)" if self.forward is None else "forward(module, images)"
            try:
                if self.forward is None:
                    pl_module(images)
                else:
                    self.forward(pl_module, images)
            except (RuntimeError, TypeError, IndexError, KeyError, AttributeError) as error:
                if isinstance(error, RuntimeError) and keeps_its_type(error):
                    raise  # out of memory and the like keep their type (the CPU's is plain)
                # torch's shape or dtype complaint, deep in the model: named
                raise ValueError(
                    f"DissectionMonitor's {how} failed on the probe's images (dataloader) of "
                    f"shape {tuple(images.shape)} and dtype {images.dtype} "
                    f"({type(error).__name__}: {error}). Check that the module reads the "
                    "probe's images"
                    + (" and that forward= runs" if self.forward is not None else "")
                    + "."
                ) from error
            if submodule not in hooks:
                raise ValueError(
                    f"layer {self.layer!r} did not run in {how}: pass forward= to run the part "
                    "of the module that reaches it (e.g. forward=lambda module, images: "
                    "module.teacher(images) for a teacher's layer)."
                )
            outputs = hooks.outputs(submodule)
            if not self._warned_repeated:  # once per monitor, not at every dissection
                self._warned_repeated = len(outputs) > 1
                warn_if_run_repeatedly(outputs, "layer", self.layer, "dissected")
            output = outputs[-1]
        if element is not None:
            output = _pick(output, element, self.layer, "layer")
        if self.output_transform is not None:
            try:
                output = self.output_transform(output)
            except Exception as error:  # the user's callable: its failure, named
                described = (
                    f"of shape {tuple(output.shape)}"
                    if isinstance(output, Tensor)
                    else f"(a {type(output).__name__})"
                )
                raise ValueError(
                    f"output_transform failed on layer {self.layer!r}'s output {described}: "
                    f"{type(error).__name__}: {error}"
                ) from error
        if not isinstance(output, Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            element = (
                f", or layer={self.layer + '[0]'!r}"
                if isinstance(output, tuple | list)
                and self.output_transform is None
                and element is None  # not picked already
                else ""
            )
            raise ValueError(
                f"layer {self.layer!r} must output [batch, units, height, width] maps, got "
                f"{shape}: pass output_transform= to pick or reshape them (e.g. "
                f"output_transform=lambda out: out[0]{element} for a tuple)"
            )
        if output.shape[-2:] == (1, 1) and not self._warned_flat_maps:
            self._warned_flat_maps = True  # once per monitor
            warnings.warn(
                f"layer {self.layer!r} outputs 1 x 1 maps: each unit gives one value per image, "
                "spread over every pixel, so its IoU measures how much of each image a concept "
                "covers, not where the unit looks. Dissect a layer with spatial maps.",
                UserWarning,
                stacklevel=2,
            )
        return output if output.is_floating_point() else output.float()

    def _batches(self, rank: int, world_size: int):
        """``(position of the first image, images, labels, image_labels)`` of this process."""
        loader = self.dataloader
        if (
            world_size > 1
            and isinstance(loader, DataLoader)
            and loader.batch_sampler is not None
            and not isinstance(loader.dataset, IterableDataset)
        ):
            # positions from the (cheap, deterministic) batch sampler; images from this share
            positions, position = [], 0
            for index, batch in enumerate(loader.batch_sampler):
                if index % world_size == rank:
                    positions.append(position)
                position += len(batch)
            share = _share_of_loader(loader, rank, world_size)
            for position, batch in zip(positions, share, strict=True):
                yield (position, *_split_batch(batch))
            return
        position = 0
        for index, batch in enumerate(loader):
            images, labels, image_labels = _split_batch(batch)
            if index % world_size == rank:
                yield position, images, labels, image_labels
            position += len(images)

    def dissect(self, pl_module: nn.Module, epoch: int | None = None) -> DissectionResults:
        """Run both passes on the probe data now and return the results (also kept in history).

        Any module with a submodule named ``layer`` can be dissected, of any width: one monitor
        can dissect a teacher (say 96 units) and then its students (64 units) on the same probe,
        and each result equals that of a fresh monitor (the metric is rebuilt when the width
        changes, and reset before every dissection). Under DDP every process must call it (the
        sums are reduced across processes).

        Parameters
        ----------
        pl_module : torch.nn.Module
            The model; its submodules' modes are restored afterwards.
        epoch : int, optional
            Recorded in ``history`` and in the picture names; None outside a fit.

        Returns
        -------
        DissectionResults
        """
        resolve_layer_names(pl_module, [self.layer], argument="layer")
        rank, world_size = rank_and_world_size()
        device = next(iter(pl_module.parameters()), torch.empty(0)).device
        with _probing(pl_module, device, self.dataloader):
            try:
                return self._dissect(pl_module, device, rank, world_size, epoch)
            except ValueError as error:
                # the metric checks the maps' values (once per batch); say whose they are
                if not str(error).startswith(NON_FINITE_MESSAGE):
                    raise
                raise ValueError(
                    f"layer {self.layer!r} output NaN or inf values on the probe: a diverged "
                    "model cannot be dissected."
                ) from error
            finally:
                # the cached maps and labels (up to cache_bytes on the device) go with every
                # dissection, one that raised included
                if self.metric is not None:
                    self.metric.clear_cache()

    def _dissect(self, pl_module, device, rank, world_size, epoch) -> DissectionResults:
        keep = self.top_k if self.save_dir is not None else 0
        metric = top_peaks = top_positions = None

        def start(units: int):
            # the metric is sized by the layer's first output: no forward pass of its own. A
            # layer of another width (a student after its teacher) gets a metric of its own:
            # nothing of the previous dissection is carried over (each starts from reset())
            if self.metric is None or self.metric.num_units != units:
                self.metric = NetworkDissection(
                    units, self.label_names, self.label_categories, **self.metric_kwargs
                )
            started = self.metric.to(device)
            started.reset()
            peaks = torch.full((units, keep), -torch.inf, device=device)
            return started, peaks, torch.full((units, keep), -1, dtype=torch.long, device=device)

        def labelled(labels, image_labels):
            return (
                None if labels is None else labels.to(device),
                None if image_labels is None else image_labels.to(device),
            )

        for position, images, labels, image_labels in self._batches(rank, world_size):
            activations = self._run(pl_module, images)
            if metric is None:
                metric, top_peaks, top_positions = start(activations.shape[1])
            metric.update(activations, *labelled(labels, image_labels))
            if keep:
                peaks = activations.flatten(2).amax(2).T.float()  # [U, B]
                places = torch.arange(len(images), device=device) + position
                top_peaks, chosen = torch.cat([top_peaks, peaks], 1).topk(keep, dim=1)
                candidates = torch.cat([top_positions, places.expand(metric.num_units, -1)], 1)
                top_positions = candidates.gather(1, chosen)
        if metric is None:  # no batch for this process (or none at all)
            first_batch = next(iter(self.dataloader), None)
            if first_batch is None:
                raise ValueError("dataloader must yield at least one probe batch; got none.")
            first = _split_batch(first_batch)[0]
            metric, top_peaks, top_positions = start(self._run(pl_module, first[:1]).shape[1])
        if not metric.cache_complete and isinstance(self.dataloader, Iterator):
            # its batches are gone: the passes below would read nothing
            raise TypeError(
                "dataloader must be probe data that can be read again (a DataLoader, a list of "
                "batches) when the layer's maps do not fit the metric's cache "
                f"(metric_kwargs={{'cache_bytes': ...}}); got a one-shot "
                f"{type(self.dataloader).__name__}."
            )
        if _thresholds(metric) is None:
            # some process could not cache its share: one more look for the fine histogram
            if metric.cache_complete:
                metric.replay()
            else:
                for _, images, _, _ in self._batches(rank, world_size):
                    metric.update(self._run(pl_module, images))
            _thresholds(metric)
        if metric.cache_complete:
            metric.replay()
        else:
            for _, images, labels, image_labels in self._batches(rank, world_size):
                activations = self._run(pl_module, images)
                metric.update(activations, *labelled(labels, image_labels))
        metric.clear_cache()
        results = metric.results()
        self.last_results = results
        entry = {
            "epoch": epoch,
            "units": metric.num_units,
            "detectors": results.num_detectors,
            "unique_concepts": len(results.unique_concepts),
            **results.category_counts,
        }
        self.history.append(entry)
        if self.save_dir is not None:
            if world_size > 1:
                top_peaks, top_positions = self._gather_top(top_peaks, top_positions, world_size)
            if rank == 0:
                self._save_pictures(pl_module, device, results, top_positions, epoch)
        return results

    def _probe_images(self, positions: list[int]) -> tuple[Tensor, tuple[int, int] | None] | str:
        """The probe's own images at these (sorted) positions of its iteration, in that order,
        and the ``(height, width)`` of their pixel labels (None when they have none).

        A ``DataLoader`` over a map-style dataset: the dataset items its batch sampler put at
        these positions, collated by its ``collate_fn`` (any sampler order, e.g. a ``Subset``'s
        indices or ``sampler=range(50, 100)``). Any other probe: iterated once more, keeping the
        images at these positions from its own batches. A sentence saying why when they cannot
        be had.
        """
        loader = self.dataloader
        order = _sampler_order(loader)
        if isinstance(order, str):
            return order
        if order is not None and positions[-1] < len(order):
            items = [loader.dataset[order[p]] for p in positions]
            try:
                images, labels, _ = _split_batch(loader.collate_fn(items))
                return images, _label_size(labels)
            except RuntimeError:
                # default_collate cannot stack images (or labels) of several sizes: said as such
                alone = [_split_batch(loader.collate_fn([item])) for item in items]
                reason = _several_sizes([a[0][0] for a in alone], [a[1] for a in alone])
                if reason is None:
                    raise
                return reason
        found: list[Tensor] = []
        found_labels: list[Tensor | None] = []
        wanted = iter(positions)
        position, target = 0, next(wanted)
        for batch in loader:
            images, labels, _ = _split_batch(batch)
            while target is not None and target < position + len(images):
                found.append(images[target - position])
                found_labels.append(None if labels is None else labels[target - position])
                target = next(wanted, None)
            if target is None:
                reason = _several_sizes(found, found_labels)
                if reason is not None:
                    return reason
                return torch.stack(found), _label_size(found_labels[0])
            position += len(images)
        return (
            "iterating dataloader once more did not yield them (a one-shot iterator?); pass a "
            "DataLoader or a sequence of batches, which can be iterated again"
        )

    def _gather_top(self, peaks: Tensor, positions: Tensor, world_size: int):
        gathered_peaks = [torch.empty_like(peaks) for _ in range(world_size)]
        gathered_positions = [torch.empty_like(positions) for _ in range(world_size)]
        torch.distributed.all_gather(gathered_peaks, peaks.contiguous())
        torch.distributed.all_gather(gathered_positions, positions.contiguous())
        peaks, chosen = torch.cat(gathered_peaks, 1).topk(peaks.shape[1], dim=1)
        return peaks, torch.cat(gathered_positions, 1).gather(1, chosen)

    def _save_pictures(self, pl_module, device, results, top_positions, epoch) -> None:
        from lightning_distill.dissection.plotting import plot_category_counts, plot_unit_grid

        self.save_dir.mkdir(parents=True, exist_ok=True)
        tag = f"epoch{epoch}" if epoch is not None else "now"
        when = f"after epoch {epoch} (from 0)" if epoch is not None else "now"
        title = (
            f"{self.layer}, {when}:\nconcept detectors: {results.num_detectors} of "
            f"{len(results.units)} units; unique concepts: {len(results.unique_concepts)}"
        )
        figure = plot_category_counts(results, title=title)
        # a long layer name or title is never cut at the figure's edge
        figure.savefig(self.save_dir / f"categories_{tag}.png", dpi=110, bbox_inches="tight")

        table = results.units.sort_values("iou", ascending=False).head(self.plot_units)
        units = table["unit"].tolist()
        positions = sorted({p for p in top_positions[units].flatten().tolist() if p >= 0})
        if not positions:
            return
        fetched = self._probe_images(positions)
        if isinstance(fetched, str):
            warnings.warn(
                f"save_dir={str(self.save_dir)!r}: units_{tag}.png was not written, as the top "
                f"images of the units could not be fetched from the probe again: {fetched}",
                UserWarning,
                stacklevel=2,
            )
            return
        images, label_size = fetched
        activations = self._run(pl_module, images)[:, units].cpu()
        # the masks the tally counted: at the pixel labels' resolution, or at the maps' own
        # for whole-image labels alone
        mask_size = label_size or tuple(activations.shape[-2:])
        where = "the labels'" if label_size else "the maps' (whole-image labels)"
        resolution = (
            f"{self.layer}, {when}: unit masks at {mask_size[0]} x {mask_size[1]} pixels, "
            f"{where}, where IoU is counted; images {images.shape[-2]} x {images.shape[-1]}"
        )
        titles = [
            f"unit {r.unit}: {r.concept if isinstance(r.concept, str) else 'no concept'}\n"
            f"IoU {r.iou:.3f}"
            for r in table.itertuples()
        ]
        plot_unit_grid(
            images,
            activations,
            torch.tensor(table["threshold"].to_numpy().copy()),
            row_titles=titles,
            top_k=self.top_k,
            path=self.save_dir / f"units_{tag}.png",
            mask_size=mask_size,
            title=resolution,
        )
