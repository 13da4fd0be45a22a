"""Network dissection (Bau et al., 2017) as a ``torchmetrics.Metric``."""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_distill._distributed import rank_and_world_size
from lightning_distill._metric_states import DtypeKeepingMetric
from lightning_distill._validation import (
    FixedList,
    check_choice,
    check_integer,
    check_real,
    fail,
    refuse_fixed_setting,
)
from lightning_distill.dissection.functional import (
    FINE_PER_COARSE,
    NETDISSECT_QUANTILE,
    HistogramLayout,
    LogBuckets,
    _categories_checked,
    _check_activations,
    _check_label_resolution,
    _check_labels,
    _inputs_checked,
    best_concepts,
    coarse_histogram,
    dissection_iou,
    dissection_tally,
    quantile_windows,
    two_level_quantile,
    window_histogram,
)

__all__ = ["DissectionResults", "NetworkDissection", "ThresholdsNotSetError"]


_MAX_BUCKETS = 10**6  # the default range and resolution give 13,822

#: NetworkDissection's settings that size its states, fixed at construction
_DISSECTION_SETTINGS = ("num_units", "label_names", "label_categories", "categories")
_SIZED_FROM_IT = "the states are sized from it"
#: settings the states' meaning and their fingerprint (the configuration state) are made from
_MEANING_SETTINGS = ("quantile", "activation_side")
_MEANT_BY_IT = "the thresholds, the masks' areas and the states' fingerprint are made from it"


def _names(name: str, values) -> list[str]:
    """A list of str from any sequence of them (a list, a tuple, a numpy array, a pandas
    column); an entry that is not a str (None, a number) is refused, not turned into one."""
    expected = f"{name} must be a sequence of str" + (
        ", one per label (in id order)" if name.startswith("label_") else " (in order)"
    )
    # a set or a mapping has no id order (a set's order changes between processes)
    if isinstance(values, str | bytes | set | frozenset | Mapping) or not hasattr(
        values, "__iter__"
    ):
        raise TypeError(f"{expected}; got {values!r}.")
    try:
        names = list(values)
    except TypeError:  # iterable in name only (a 0-d array or tensor)
        raise TypeError(f"{expected}; got {values!r}.") from None
    for index, value in enumerate(names):
        if not isinstance(value, str):
            raise TypeError(
                f"{name} must be a sequence of str; entry {index} is {value!r} "
                f"({type(value).__name__}): use '' for an id without a label or category."
            )
    return [str(value) for value in names]


def _pass_of(states: Mapping[str, Any]) -> str | None:
    """The pass a metric's states belong to: ``"tally"`` once the thresholds are set,
    ``"refine"`` once the quantile windows are found, else ``"thresholds"`` (None without
    those states)."""
    thresholds, windows = states.get("thresholds"), states.get("windows")
    if not (isinstance(thresholds, Tensor) and isinstance(windows, Tensor)):
        return None
    if bool(torch.isfinite(thresholds).all()):
        return "tally"
    return "refine" if bool((windows >= 0).all()) else "thresholds"


class ThresholdsNotSetError(ValueError, RuntimeError):
    """A tally or a result was asked for before the per-unit thresholds exist."""


@dataclass
class DissectionResults:
    """What a dissection found.

    Attributes
    ----------
    units : pandas.DataFrame
        One row per unit: ``unit``, ``concept`` (its best concept), ``category``, ``iou``,
        ``threshold`` and ``detector`` (``iou >= iou_threshold`` and ``iou > 0``; a unit whose
        best IoU is 0 overlaps no concept: its ``concept`` and ``category`` are missing).
    num_detectors : int
        Number of detector units.
    unique_concepts : list of str
        Distinct concepts detected by at least one unit, sorted.
    category_counts : dict of str to int
        Detector units per category (every category, zeros included).
    """

    units: Any
    num_detectors: int
    unique_concepts: list[str] = field(default_factory=list)
    category_counts: dict[str, int] = field(default_factory=dict)


class NetworkDissection(DtypeKeepingMetric):
    """Count the units of a layer that detect human-labelled concepts (network dissection).

    Two passes over the same probe data, both fed through :meth:`update`:

    1. *threshold pass*: ``update`` adds the activations to a per-unit histogram; then
       :meth:`compute_thresholds` sets ``T_u``, the ``quantile`` of all of unit ``u``'s activations
       (read from the histogram to within ``histogram_resolution`` relative);
    2. *tally pass*: ``update`` upsamples every map bilinearly to the label resolution, thresholds
       it and adds up, over the whole data set, ``|mask & c|``, ``|c|`` and ``|mask|``. Then
       ``IoU(u, c) = sum |mask_u & c| / sum |mask_u | c|`` and :meth:`compute` returns how many
       units reach ``iou_threshold`` with their best concept.

    The histogram is two-level: the threshold pass counts coarse buckets (32 fine buckets each),
    and the fine buckets are counted only inside the two coarse buckets that hold the quantile's
    order statistics. That second look at the data comes from a cache: the threshold pass keeps
    the maps it is given (and the labels, if given) while they fit ``cache_bytes``; then
    :meth:`compute_thresholds` reads them again, and :meth:`replay` runs the tally pass from them,
    with no data loading and no forward. When they do not fit, :meth:`compute_thresholds`
    returns ``None`` and the metric is in its ``"refine"`` phase: feed the activations once more
    with :meth:`update`, call :meth:`compute_thresholds` again, then run the tally pass.

    Every state is a fixed-size tensor reduced by sum, min or max (the cache is not a state, and
    is bounded by ``cache_bytes``): the result under DDP equals that of one process. The
    histogram takes ``2 * log(high / low) / log1p(resolution) / 32`` int64 counts per unit
    (about 7 KiB by default; 14 MiB for 2,048 units) and is freed once the thresholds are set.
    Everything stays on the activations' device; only :meth:`results` (a pandas table) and the
    checks that raise copy a few numbers to the CPU.

    Parameters
    ----------
    num_units : int
        Channels of the dissected layer.
    label_names : sequence of str
        Name of every label id; entry 0 is the unlabelled id (its name is not used).
    label_categories : sequence of str
        Category of every label id (entry 0 is ignored), e.g. ``"color"``, ``"object"``. A label
        whose category is ``""`` (an id without a label, as in gaps of Broden's ``label.csv``) is
        never a concept and annotates no category.
    quantile : float or "netdissect", default=0.995
        Activation quantile giving each unit's threshold. ``"netdissect"`` reproduces NetDissect's
        readout, ``994 / 999``.
    iou_threshold : float, default=0.04
        A unit whose best IoU reaches this value is a detector (Bau et al. 0.04, Han et al. 0.05).
    activation_side : {"annotated", "overlap"}, default="annotated"
        Images in which a unit's mask counts towards the union with concept ``c``: those where
        ``c``'s category is annotated (NetDissect), or those where the mask overlaps a label of
        that category (NetDissect-Lite).
    histogram_range : (float, float), default=(1e-3, 1e3)
        Activation magnitudes with guaranteed threshold resolution. Outside it a threshold is
        only bounded by the range's edge and the unit's observed extremes (it can be off by a
        factor of several); a warning then names a range that covers the thresholds.
    histogram_resolution : float, default=1e-3
        Relative width of a fine histogram bucket.
    cache_bytes : int, default=2**29
        Memory (on the activations' device) for the maps and labels of the threshold pass. 0
        keeps nothing: the thresholds then take two passes over the data (coarse, then fine)
        before the tally pass.
    categories : sequence of str, optional
        Order of the categories in results and plots; by default their first appearance in
        ``label_categories``.

        ``num_units`` and the three lists are fixed at construction (the states are sized from
        them): set again they are refused (``AttributeError``), and the lists, kept as lists,
        refuse edits in place (``TypeError``).
    **kwargs
        Passed to :class:`torchmetrics.Metric`.

    Examples
    --------
    >>> import torch
    >>> metric = NetworkDissection(2, ["-", "sky", "red"], ["", "object", "color"])
    >>> activations = torch.rand(4, 2, 4, 4)
    >>> labels = torch.randint(0, 3, (4, 1, 8, 8))
    >>> metric.update(activations, labels)          # threshold pass
    >>> _ = metric.compute_thresholds()
    >>> metric.update(activations, labels)          # tally pass
    >>> int(metric.compute()) in (0, 1, 2)
    True
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        num_units: int,
        label_names: Sequence[str],
        label_categories: Sequence[str],
        *,
        quantile: float | str = 0.995,
        iou_threshold: float = 0.04,
        activation_side: str = "annotated",
        histogram_range: tuple[float, float] = (1e-3, 1e3),
        histogram_resolution: float = 1e-3,
        categories: Sequence[str] | None = None,
        cache_bytes: int = 2**29,
        **kwargs: Any,
    ) -> None:
        # compute() reads iou_threshold, which may be set between two calls: not cached (the
        # count is cheap beside the tallies); compute_with_cache=True caches it as torchmetrics
        # does, until the next update
        kwargs.setdefault("compute_with_cache", False)
        super().__init__(**kwargs)
        num_units = check_integer("num_units", num_units, minimum=1)
        label_names = _names("label_names", label_names)
        label_categories = _names("label_categories", label_categories)
        if len(label_names) < 2:
            raise ValueError(
                "label_names must name label 0 (unlabelled) and at least one concept, "
                f"got {len(label_names)} names"
            )
        if len(label_categories) != len(label_names):
            raise ValueError(
                "label_categories must have one entry per label of label_names "
                f"({len(label_names)}); got {len(label_categories)}."
            )
        concepts = [n for n, cat in zip(label_names[1:], label_categories[1:], strict=True) if cat]
        if not concepts:
            raise ValueError(
                "label_categories must give at least one label besides 0 a category (a label "
                f"whose category is '' is never a concept); got {label_categories!r}."
            )
        repeated = sorted(n for n, count in Counter(concepts).items() if count > 1)
        if repeated:
            raise ValueError(
                "label_names must name each concept once (results and unique concepts go by "
                f"name); got {repeated} more than once: add the category, e.g. 'red-color'."
            )
        if categories is None:
            categories = [cat for cat in dict.fromkeys(label_categories[1:]) if cat]
        categories = _names("categories", categories)
        unknown = sorted(set(label_categories[1:]) - set(categories) - {""})
        if unknown:
            raise ValueError(f"label_categories uses categories missing from categories: {unknown}")
        if quantile == "netdissect":
            quantile = NETDISSECT_QUANTILE
        if isinstance(quantile, str):
            raise ValueError(f"quantile must be in (0, 1) or 'netdissect'; got {quantile!r}.")
        quantile = check_real(
            "quantile",
            quantile,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        iou_threshold = check_real("iou_threshold", iou_threshold, minimum=0, maximum=1)
        check_choice("activation_side", activation_side, ("annotated", "overlap"))
        if not isinstance(histogram_range, Sequence) or len(histogram_range) != 2:
            raise ValueError(f"histogram_range must be (low, high); got {histogram_range!r}.")
        histogram_range = tuple(
            check_real("histogram_range", bound, minimum=0, exclusive_minimum=True)
            for bound in histogram_range
        )
        histogram_resolution = check_real(
            "histogram_resolution", histogram_resolution, minimum=0, exclusive_minimum=True
        )
        self.buckets = LogBuckets(
            float(histogram_range[0]), float(histogram_range[1]), float(histogram_resolution)
        )
        if self.buckets.num_log_bins > _MAX_BUCKETS:
            raise ValueError(
                f"histogram_range and histogram_resolution must give at most {_MAX_BUCKETS} "
                f"buckets per sign; got {self.buckets.num_log_bins} for {histogram_range!r} "
                f"and {histogram_resolution!r}."
            )
        self.cache_bytes = check_integer("cache_bytes", cache_bytes, minimum=0)
        layout = HistogramLayout.build(self.buckets, FINE_PER_COARSE)
        self.register_buffer("_fine_to_coarse", layout.fine_to_coarse, False)
        self.register_buffer("_coarse_start", layout.start, False)
        self._phase = "thresholds"
        self._kept: list[tuple[Tensor, Tensor | None, Tensor | None]] | None = []
        self._cached_bytes = 0
        self._replaying = False
        self._replayed: str | None = None  # the pass replay() fed (its sums hold the cache)
        self.num_units = num_units
        # lists that refuse edits in place too (an edited name would name an old label's IoU)
        fixed = functools.partial(FixedList, kind=type(self).__name__, made=_SIZED_FROM_IT)
        self.label_names = fixed(label_names, "label_names")
        self.label_categories = fixed(label_categories, "label_categories")
        self.categories = fixed(categories, "categories")
        self.quantile = float(quantile)
        self.iou_threshold = float(iou_threshold)
        self.activation_side = activation_side
        category_index = {cat: i for i, cat in enumerate(categories)}
        codes = [-1] + [category_index[cat] if cat else -1 for cat in label_categories[1:]]
        self.register_buffer("label_category", torch.tensor(codes, dtype=torch.long), False)

        num_labels = len(label_names)
        nan = torch.full((num_units,), math.nan, dtype=torch.float64)
        self.add_state(
            "histogram",
            torch.zeros(num_units, layout.num_coarse, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state("fine", torch.zeros(num_units, 2, FINE_PER_COARSE, dtype=torch.long), "sum")
        # the smallest and largest values seen in each fine bucket: a tie inside a unit's range
        # (low-precision activations) is then read exactly, as the exact quantile reads it
        fine_shape = (num_units, 2, FINE_PER_COARSE)
        self.add_state("fine_lowest", torch.full(fine_shape, math.inf, dtype=torch.float64), "min")
        self.add_state(
            "fine_highest", torch.full(fine_shape, -math.inf, dtype=torch.float64), "max"
        )
        # coarse buckets of the quantile's order statistics: equal on every process once set
        self.add_state("windows", torch.full((num_units, 2), -1, dtype=torch.long), "max")
        # values equal to each unit's minimum and maximum (counted in the refine pass, once
        # the extremes of the whole data set are known): ties at the extremes are exact
        self.add_state("extremes", torch.zeros(num_units, 2, dtype=torch.long), "sum")
        # batches of the threshold pass this process could not cache
        self.add_state("uncached_batches", torch.zeros((), dtype=torch.long), "sum")
        self.add_state(
            "minimum", torch.full((num_units,), math.inf, dtype=torch.float64), dist_reduce_fx="min"
        )
        self.add_state(
            "maximum",
            torch.full((num_units,), -math.inf, dtype=torch.float64),
            dist_reduce_fx="max",
        )
        # identical on every process once set, so the max-reduction leaves it unchanged
        self.add_state("thresholds", nan, dist_reduce_fx="max")
        self.add_state(
            "intersection",
            torch.zeros(num_units, num_labels, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state(
            "mask_area",
            torch.zeros(num_units, len(categories), dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state(
            "label_area", torch.zeros(num_labels, dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("tallied_images", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self._add_configuration_state()

    def __setattr__(self, name: str, value) -> None:
        # the states (one row per unit, one column per label and per category) and the label
        # to category codes are made from these: one set after construction failed later with
        # an IndexError or a torch error, or named the concepts of the old labels anew
        refuse_fixed_setting(self, name, value, _DISSECTION_SETTINGS, _SIZED_FROM_IT)
        # set later, these had changed what the states mean while their fingerprint (which
        # merges, MetricCollection's groups and loads compare) kept the old ones, silently
        refuse_fixed_setting(self, name, value, _MEANING_SETTINGS, _MEANT_BY_IT)
        if name == "cache_bytes":  # a negative budget had cached nothing, silently
            value = check_integer(name, value, minimum=0)
        elif name == "iou_threshold":
            # may change between two computes (it reads no state); checked when set, as at
            # construction, rather than at the next compute
            value = float(check_real(name, value, minimum=0, maximum=1))
        super().__setattr__(name, value)

    @property
    def phase(self) -> str:
        """``"thresholds"``, ``"refine"`` (only without a complete cache), then ``"tally"``."""
        return self._phase

    @property
    def layout(self) -> HistogramLayout:
        """Coarse and fine buckets of the threshold histogram."""
        return HistogramLayout(
            self.buckets, FINE_PER_COARSE, self._fine_to_coarse, self._coarse_start
        )

    @property
    def cache_complete(self) -> bool:
        """Whether this process holds every batch of the threshold pass (no sync)."""
        return self._kept is not None and int(self.uncached_batches) == 0

    def reset(self) -> None:
        """Clear the sums, the thresholds and the cache."""
        super().reset()
        self._phase = "thresholds"
        self._kept = []
        self._cached_bytes = 0
        self._replayed = None

    #: emptied by set_thresholds once the thresholds are set (reset() brings them back)
    _freeable_states = ("histogram", "fine", "fine_lowest", "fine_highest")

    def _identity(self) -> str:
        # what the states depend on (iou_threshold is read by compute() alone)
        return (
            f"{self._configuration()}, label_names={self.label_names}, "
            f"label_categories={self.label_categories}, categories={self.categories}, "
            f"quantile={self.quantile}, activation_side={self.activation_side}"
        )

    def _configuration(self) -> str:
        return (
            f"num_units={self.num_units}, len(label_names)={len(self.label_names)}, "
            f"len(categories)={len(self.categories)}, histogram_range=({self.buckets.low}, "
            f"{self.buckets.high}), histogram_resolution={self.buckets.resolution}"
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # the pass is not a state: a loaded metric (persistent(True)) is in the pass its
        # states say, thresholds set (tally) or quantile windows found (refine), with no cache
        loaded = prefix + "thresholds" in state_dict  # torchmetrics takes its states out
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if not loaded:
            return
        self._replayed = None  # the sums are the loaded ones, not those of an earlier replay()
        self._phase = _pass_of({"thresholds": self.thresholds, "windows": self.windows})
        if self._phase != "thresholds":
            self.clear_cache()  # no cache here holds the loaded threshold pass
        elif int(self.histogram.sum()):
            self.clear_cache()
            self.uncached_batches += 1  # the saved batches, which no cache here holds
        self._computed = None

    def merge_state(self, incoming_state) -> None:
        """Add another metric's sums (torchmetrics' ``merge_state``: a metric or a dict of its
        states), in the same pass: the threshold pass or the tally pass (not the refine pass),
        and in the tally pass with the same thresholds.

        In the threshold pass this metric's cache holds its own batches only, so it is marked
        incomplete: :meth:`compute_thresholds` then asks for a refine pass over the data
        instead of replaying half of it.
        """
        if self._phase == "refine":
            # each metric counted ties at its own extremes, and the coarse histogram (shared by
            # copies of one metric) would be counted twice: no merge there is right
            raise ValueError(
                "merge_state must be called in the threshold or the tally pass; this metric is "
                "in the refine pass (merge the threshold passes, then refine the merged metric "
                "over the data)."
            )
        if isinstance(incoming_state, NetworkDissection):
            phase, thresholds = incoming_state.phase, incoming_state.thresholds
        elif isinstance(incoming_state, Mapping):
            # a dict of states (torchmetrics' other form): its pass is the one its states say
            phase, thresholds = _pass_of(incoming_state), incoming_state.get("thresholds")
        else:
            phase = thresholds = None  # torchmetrics refuses it
        if phase is not None:
            metric = isinstance(incoming_state, Metric)
            if phase != self._phase:
                raise ValueError(
                    "incoming_state must be "
                    + ("a NetworkDissection" if metric else "the states of a NetworkDissection")
                    + f" in the same pass; got {'one' if metric else 'states'} in the {phase!r} "
                    f"pass, this one is in the {self._phase!r} pass."
                )
            if self._phase == "tally" and not torch.equal(
                thresholds.to(self.thresholds), self.thresholds
            ):
                raise ValueError(
                    "incoming_state must tally with the same thresholds as this metric; got "
                    "other thresholds."
                )
        if self._phase == "thresholds":
            self.clear_cache()
            self.uncached_batches += 1  # the incoming batches, which no cache here holds
        super().merge_state(incoming_state)

    def clear_cache(self) -> None:
        """Free the cached maps and labels (a later :meth:`replay` is then an error)."""
        if self._kept:
            self.uncached_batches += len(self._kept)
        self._kept = None
        self._cached_bytes = 0

    def _check_given_labels(
        self, activations: Tensor, labels: Tensor | None, image_labels: Tensor | None
    ) -> None:
        """The threshold pass's labels, checked whether or not they are cached (before any
        state changes: a refused batch counts nothing)."""
        for tensor, name, ndim in ((labels, "labels", 4), (image_labels, "image_labels", 2)):
            if tensor is not None:
                _check_labels(tensor, name, len(self.label_names), ndim, activations.shape[0])

    def _keep(self, activations: Tensor, labels: Tensor | None, image_labels: Tensor | None):
        if self._kept is None:
            self.uncached_batches += 1
            return
        # label ids in the smallest integer type that holds them (int64 labels would take more
        # room than the maps), checked first so that no id wraps around; the maps in their own
        # dtype, so that replaying gives the same sums. Copies: the caller may reuse or modify
        # its tensors (an in-place ReLU after the layer).
        ids = torch.uint8 if len(self.label_names) <= 256 else torch.int16
        ids = ids if len(self.label_names) <= 32768 else torch.int32
        given = [t for t in (labels, image_labels) if t is not None]
        size = activations.numel() * activations.element_size()
        size += sum(t.numel() for t in given) * torch.empty(0, dtype=ids).element_size()
        if self._cached_bytes + size > self.cache_bytes:
            self.clear_cache()
            self.uncached_batches += 1
            return
        kept = [activations.detach().clone()]
        for tensor in (labels, image_labels):
            kept.append(None if tensor is None else tensor.to(ids, copy=True))
        self._kept.append(tuple(kept))
        self._cached_bytes += size

    def replay(self) -> None:
        """Feed the cached batches of the threshold pass to :meth:`update` again.

        Runs the tally pass (or the refine pass) without data loading or forward; the threshold
        pass must have been given the labels.
        """
        if self._phase == "thresholds":
            raise RuntimeError("replay() follows compute_thresholds(); the threshold pass is on")
        if self._replayed == self._phase:
            raise RuntimeError(
                f"replay() already fed the cached batches to the {self._phase} pass: replaying "
                "them again would count every one twice. Read the results as they are, or call "
                "reset() to start a new dissection"
            )
        if not self.cache_complete:
            if self._phase == "tally" and int(self.tallied_images) > 0:
                raise RuntimeError(
                    f"the tally pass already holds {int(self.tallied_images)} images given to "
                    "update() (which freed the cache): replay() would count them again. Feed "
                    "the rest of the data to update(), or call reset() to start again"
                )
            raise RuntimeError(
                "the cache does not hold the whole threshold pass (cache_bytes too small, or "
                "cleared): feed the data to update() instead"
            )
        if self._phase == "tally" and any(
            labels is None and image_labels is None for _, labels, image_labels in self._kept
        ):
            raise RuntimeError(
                "the threshold pass was given no labels, so the tally pass cannot be replayed: "
                "call update(activations, labels) on the data instead"
            )
        self._replaying = True
        try:
            with _inputs_checked():  # checked when they came in
                for activations, labels, image_labels in self._kept:
                    self.update(activations, labels, image_labels)
        finally:
            self._replaying = False
            # even after a failure part of the way: the batches fed so far are in the sums
            self._replayed = self._phase

    def _check_units(self, activations: Tensor) -> None:
        if isinstance(activations, Tensor) and activations.ndim == 4:
            if activations.shape[1] != self.num_units:
                shape = tuple(activations.shape)
                # a layer whose maps come out [B, h, w, U] (ConvNeXt, ViT blocks reshaped)
                hint = (
                    ": channels-last maps [batch, height, width, units]? give "
                    "activations.permute(0, 3, 1, 2)"
                    if shape[-1] == self.num_units
                    else f": give the [batch, units, height, width] maps of the layer it "
                    f"dissects, or build it with num_units={shape[1]}"
                )
                raise ValueError(
                    f"activations have {shape[1]} units (dim 1) but the metric was "
                    f"built with num_units={self.num_units}; got shape {shape}{hint}"
                )

    def update(
        self, activations: Tensor, labels: Tensor | None = None, image_labels: Tensor | None = None
    ) -> None:
        """Add a batch to the current pass.

        Parameters
        ----------
        activations : Tensor
            ``[B, U, h, w]`` activation maps of the dissected layer.
        labels : Tensor, optional
            ``[B, K, H, W]`` integer pixel labels, 0 = unlabelled. Not needed in the threshold
            pass, where they are only cached for :meth:`replay` (and checked at once against
            the maps: ``H / W`` must be ``h / w`` to within one map pixel, see
            :func:`~lightning_distill.functional.dissection_tally`).
        image_labels : Tensor, optional
            ``[B, S]`` whole-image labels, 0-padded.
        """
        self._check_units(activations)
        if self._replayed == self._phase and not self._replaying:
            raise RuntimeError(
                f"replay() already fed the whole data set, from the cache, to the {self._phase} "
                "pass: a batch given to update() now would be counted twice. Read the results "
                "as they are, or call reset() to start a new dissection"
            )
        if self._phase == "thresholds":
            # the maps first: the labels' checks read their batch size and spatial shape
            _check_activations(activations)
            if labels is not None:
                _check_label_resolution(labels, activations)
            self._check_given_labels(activations, labels, image_labels)
            with _inputs_checked():  # checked above: not read back from the device twice
                counts, minimum, maximum = coarse_histogram(activations, self.layout)
            self.histogram += counts
            self.minimum = torch.minimum(self.minimum, minimum)
            self.maximum = torch.maximum(self.maximum, maximum)
            self._keep(activations, labels, image_labels)
            return
        if self._phase == "refine":
            fine, ties, lowest, highest = window_histogram(
                activations, self.windows, self.layout, (self.minimum, self.maximum), spans=True
            )
            self.fine += fine
            self.extremes += ties
            self.fine_lowest = torch.minimum(self.fine_lowest, lowest)
            self.fine_highest = torch.maximum(self.fine_highest, highest)
            return
        if labels is None and image_labels is None:
            raise ValueError("the tally pass needs labels and/or image_labels, got neither")
        with _categories_checked():  # built in range at construction: no read per batch
            intersection, mask_area, label_area = dissection_tally(
                activations,
                labels,
                self.thresholds,
                self.label_category,
                len(self.categories),
                image_labels=image_labels,
                activation_side=self.activation_side,
            )
        if not self._replaying and self._kept:
            # the tally pass comes from the data: the cache is of no more use (freed once the
            # batch is accepted: a refused one leaves replay() possible)
            self.clear_cache()
        self.intersection += intersection
        self.mask_area += mask_area
        self.label_area += label_area
        self.tallied_images += activations.shape[0]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported: a dissection of one batch means nothing (use ``update``)."""
        raise RuntimeError(
            "NetworkDissection sums over the whole data set in two passes: call update() per "
            "batch, compute_thresholds() between the passes and compute() at the end, not "
            "metric(...) per batch"
        )

    def compute_thresholds(self) -> Tensor | None:
        """End the threshold pass: set every unit's threshold from the (synced) histogram.

        Returns
        -------
        Tensor or None
            ``[num_units]`` float64 thresholds; ``None`` when the cache of some process did not
            hold its whole threshold pass: then feed the activations once more to
            :meth:`update` (the ``"refine"`` phase) and call this again.
        """
        if self._phase == "tally":
            raise RuntimeError("thresholds are already set; call reset() to start again")
        if self._phase == "thresholds":
            with self.sync_context(
                dist_sync_fn=self.dist_sync_fn, should_sync=self.sync_on_compute
            ):
                if int(self.histogram[0].sum()) == 0:
                    raise RuntimeError(
                        "no activations seen: call update() on the data before compute_thresholds()"
                    )
                windows = quantile_windows(self.histogram, self.quantile)
                cached_everywhere = int(self.uncached_batches) == 0
                # the data set's extremes, which the refine pass counts ties at
                minimum, maximum = self.minimum.clone(), self.maximum.clone()
            self.windows = windows
            self.minimum, self.maximum = minimum, maximum
            self._phase = "refine"
            if not cached_everywhere:
                return None
            self.replay()
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self.sync_on_compute):
            expected = self.histogram.gather(1, self.windows).sum()
            if int(self.fine.sum()) != int(expected):
                raise RuntimeError(
                    "the refine pass must see the same activations as the threshold pass: "
                    f"{int(self.fine.sum())} values fell into the quantile's buckets, "
                    f"expected {int(expected)}"
                )
            thresholds = two_level_quantile(
                self.histogram,
                self.fine,
                self.windows,
                self.minimum,
                self.maximum,
                self.quantile,
                self.layout,
                self.extremes,
                (self.fine_lowest, self.fine_highest),
            )
            # the smallest non-zero magnitude among the values of the quantile's windows: the
            # order statistics the threshold interpolates are no smaller (or are 0)
            seen = torch.cat([self.fine_lowest, self.fine_highest], 2).abs().flatten(1)
            smallest_seen = seen.masked_fill(seen == 0, math.inf).amin(1)
        self._warn_outside_range(thresholds, smallest_seen)
        self.set_thresholds(thresholds)
        return thresholds.clone()

    def _warn_outside_range(self, thresholds: Tensor, smallest_seen: Tensor) -> None:
        """Warn, with a range that covers them, when thresholds fall outside histogram_range.

        ``smallest_seen``: every unit's smallest non-zero magnitude among the values of its
        quantile windows (inf where none).
        """
        low, high = self.buckets.low, self.buckets.high
        magnitude = thresholds.abs()
        # a constant unit's threshold is its one value, exactly, wherever it lies
        constant = (self.minimum == self.maximum).to(magnitude.device)
        below = (magnitude < low) & (magnitude > 0) & ~constant
        above = (magnitude >= high) & ~constant
        if not bool((below | above).any()):
            return
        # a threshold above the range lies between `high` and its unit's largest magnitude; one
        # below it, between 0 and `low`: widen the range past both (a factor 1000 below the
        # smallest estimate, as the estimate there is itself coarse, and below the order
        # statistics it interpolates: an estimate across values of many decades can lie far
        # above them)
        largest = torch.maximum(self.maximum.abs(), self.minimum.abs()).double()
        new_high = float(largest[above].max()) * 1.01 if bool(above.any()) else high
        new_low = low
        if bool(below.any()):
            new_low = min(
                float(magnitude[below].min()) / 1e3,
                float(smallest_seen.to(magnitude.device)[below].min()) / 1.01,
            )
        if rank_and_world_size()[0] != 0:  # said once, by the first process
            return
        warnings.warn(
            f"the thresholds of {int((below | above).sum())} units lie outside histogram_range="
            f"({low:g}, {high:g}) ({int(below.sum())} below it, {int(above.sum())} above): "
            "there a threshold is only bounded by 0, the range's edges and the unit's extremes, "
            "and can be off by a factor of several, which changes the detectors. Dissect again "
            f"with histogram_range=({min(new_low, low):.3g}, {max(new_high, high):.3g}) to "
            f"cover them at the relative resolution {self.buckets.resolution:g}.",
            UserWarning,
            stacklevel=3,  # at the line that called compute_thresholds()
        )

    def set_thresholds(self, thresholds: Tensor) -> None:
        """Use given per-unit thresholds (e.g. from an earlier run) and start the tally pass.

        Refused once the tally pass has seen data (its sums belong to the old thresholds); call
        ``reset()`` to start again.
        """
        if self._phase == "tally" and int(self.tallied_images) > 0:
            raise RuntimeError(
                "thresholds are already in use by a tally; call reset() to start again, "
                "not set_thresholds() in the middle of the tally pass"
            )
        try:
            given = None if isinstance(thresholds, str | bytes) else torch.as_tensor(thresholds)
        except (TypeError, ValueError, RuntimeError):  # torch's "could not infer dtype" and such
            given = None
        if given is None or given.is_complex():
            fail(
                "thresholds",
                f"real numbers, one per unit ({self.num_units}): a tensor, array or sequence",
                thresholds,
                TypeError,
            )
        thresholds = given.to(device=self.thresholds.device, dtype=torch.float64)
        if thresholds.shape != (self.num_units,):
            raise ValueError(
                f"thresholds must have shape ({self.num_units},), got {tuple(thresholds.shape)}"
            )
        if not torch.isfinite(thresholds).all():
            raise ValueError("thresholds must be finite")
        self.thresholds = thresholds.clone()
        # the histograms are of no further use: free them (reset() brings them back)
        self.histogram = self.histogram.new_zeros(self.num_units, 0)
        self.fine = self.fine.new_zeros(self.num_units, 2, 0)
        self.fine_lowest = self.fine_lowest.new_zeros(self.num_units, 2, 0)
        self.fine_highest = self.fine_highest.new_zeros(self.num_units, 2, 0)
        self._phase = "tally"
        self._computed = None

    def _require_tally(self) -> None:
        if self._phase != "tally":
            raise ThresholdsNotSetError(
                "no thresholds yet: run the threshold pass (update on the data, then "
                "compute_thresholds() or set_thresholds()) and the tally pass before computing"
            )
        if int(self.tallied_images) == 0:
            raise ThresholdsNotSetError(
                "the tally pass saw no data: call update() after the thresholds"
            )
        if int(self.mask_area.sum()) == 0:
            warnings.warn(
                "no unit's mask held a single pixel in the tally pass, so every IoU is 0. Maps "
                "larger than the labels are shrunk to the labels' size, which averages peaks "
                "and can bring every one below its threshold: give labels at the maps' "
                "resolution or finer. (Units that never exceed their thresholds, e.g. constant "
                "ones, have empty masks too.)",
                UserWarning,
                stacklevel=3,
            )

    def iou(self) -> Tensor:
        """``[num_units, num_labels]`` IoU of every unit with every label (synced)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self.sync_on_compute):
            self._require_tally()
            return dissection_iou(
                self.intersection, self.mask_area, self.label_area, self.label_category
            )

    def compute(self) -> Tensor:
        """Number of detector units: best IoU ``>= iou_threshold`` (and above 0)."""
        self._require_tally()
        iou = dissection_iou(
            self.intersection, self.mask_area, self.label_area, self.label_category
        )
        best_iou, _ = best_concepts(iou)
        return ((best_iou >= self._iou_threshold()) & (best_iou > 0)).sum()

    def _iou_threshold(self) -> float:
        """``iou_threshold`` as it is now (it may be set between two calls), checked."""
        return check_real("iou_threshold", self.iou_threshold, minimum=0, maximum=1)

    def results(self) -> DissectionResults:
        """Per-unit table, unique concepts and detectors per category (synced under DDP)."""
        import pandas as pd

        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self.sync_on_compute):
            self._require_tally()
            iou = dissection_iou(
                self.intersection, self.mask_area, self.label_area, self.label_category
            )
            thresholds = self.thresholds.clone()
        best_iou, best_label = best_concepts(iou)
        # a unit that overlaps no concept at all (a dead unit) has no best concept: its label
        # would only be the tie-break, and it is no detector even at iou_threshold=0
        overlaps = best_iou > 0
        detector = (best_iou >= self._iou_threshold()) & overlaps
        concepts = [
            self.label_names[i] if hit else None
            for i, hit in zip(best_label.tolist(), overlaps.tolist())
        ]
        categories = [
            self.label_categories[i] if hit else None
            for i, hit in zip(best_label.tolist(), overlaps.tolist())
        ]
        units = pd.DataFrame(
            {
                "unit": range(self.num_units),
                "concept": concepts,
                "category": categories,
                "iou": best_iou.cpu().numpy(),
                "threshold": thresholds.cpu().numpy(),
                "detector": detector.cpu().numpy(),
            }
        )
        detected = units[units["detector"]]
        counts = {cat: int((detected["category"] == cat).sum()) for cat in self.categories}
        return DissectionResults(
            units=units,
            num_detectors=int(detector.sum()),
            unique_concepts=sorted(set(detected["concept"])),
            category_counts=counts,
        )

    def plot(self, results: DissectionResults | None = None, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of detector units per category.

        Parameters
        ----------
        results : DissectionResults, optional
            Defaults to :meth:`results`.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure otherwise.

        Returns
        -------
        (Figure, Axes)
        """
        from lightning_distill.dissection.plotting import plot_category_counts

        if results is None:
            results = self.results()
        fig = plot_category_counts(results, ax=ax)
        return fig, fig.axes[0] if ax is None else ax
