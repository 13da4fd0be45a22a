"""Network dissection as pure tensor functions.

Network dissection (Bau et al., 2017) asks, for every unit of a layer, which human-labelled concept
its strongest activations cover. It runs in two passes over a probe data set:

1. **thresholds**: ``T_u`` is a high quantile (0.995) of all activation values of unit ``u`` over
   the whole data set. The quantile is read from a fixed-size, log-spaced histogram
   (:func:`activation_histogram`, :func:`histogram_quantile`), so memory does not grow with the
   data and partial histograms from several processes add up exactly.
2. **tallies**: every activation map is upsampled bilinearly to the label resolution and
   thresholded, ``mask_u = up(A_u) > T_u``; :func:`dissection_tally` counts, summed over images,
   ``|mask_u & c|``, ``|c|`` and ``|mask_u|`` for the images that count towards concept ``c``.
   :func:`dissection_iou` turns the sums into ``IoU(u, c)``, and a unit is a *detector* of its best
   concept when that IoU reaches a threshold (0.04 in Bau et al.; Han et al. 2023 use 0.05).

Labels follow the Broden convention: integer label ids, ``0`` means unlabelled; pixel labels come as
``K`` layers ``[B, K, H, W]`` (a pixel may carry one label per layer) and whole-image labels as
``[B, S]`` (0-padded). Each label belongs to one category (``label_category[l]``).

Everything here is stateless; :class:`lightning_distill.metrics.NetworkDissection` keeps the sums.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_distill._validation import check_integer, check_real, fail

__all__ = [
    "FINE_PER_COARSE",
    "NETDISSECT_QUANTILE",
    "HistogramLayout",
    "LogBuckets",
    "activation_histogram",
    "best_concepts",
    "coarse_histogram",
    "dissection_iou",
    "dissection_tally",
    "histogram_quantile",
    "quantile_windows",
    "two_level_quantile",
    "upsample_activations",
    "window_histogram",
]

#: The quantile NetDissect reads out: ``readout(1000)[:, 994]`` of 1000 evenly spaced quantiles,
#: i.e. ``994 / 999`` rather than 0.995.
NETDISSECT_QUANTILE = 994 / 999

# Upsampled masks are built a slice of units at a time so that no temporary holds more than this
# many activation values (about 64 MiB in float32; maps whose pixels tie their threshold are
# interpolated again in float64, at most twice that).
_MAX_UPSAMPLED_VALUES = 2**24


@dataclass(frozen=True)
class LogBuckets:
    """Layout of a signed, log-spaced histogram.

    Magnitudes in ``[low, high)`` fall into ``num_log_bins`` buckets per sign whose edges grow by a
    constant factor ``ratio = (high / low) ** (1 / num_log_bins)``; a quantile read inside one of
    them is off by less than ``ratio - 1`` relative. Besides those there are buckets for exactly
    zero (common after a ReLU), for ``0 < |x| < low`` and for ``|x| >= high`` (bounded by the
    observed minimum and maximum).

    Parameters
    ----------
    low, high : float
        Magnitude range with guaranteed relative resolution, ``0 < low < high``.
    resolution : float
        Target relative width of one bucket; ``num_log_bins`` is the smallest count achieving it.

    Examples
    --------
    >>> buckets = LogBuckets(1e-3, 1e3, 1e-3)
    >>> buckets.num_log_bins, buckets.num_buckets
    (13823, 27651)
    """

    low: float = 1e-3
    high: float = 1e3
    resolution: float = 1e-3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 < self.low < self.high):
            raise ValueError(
                "histogram_range must be (low, high) with 0 < low < high, "
                f"got ({self.low}, {self.high})"
            )
        if not (math.isfinite(self.high / self.low) and math.isfinite(1.0 / self.low)):
            # the bucket edges are low * ratio ** k, and values are scaled by 1 / low
            raise ValueError(
                "histogram_range must be (low, high) with high / low and 1 / low within float64 "
                f"(below 1.8e308); got ({self.low}, {self.high})"
            )
        if not (0 < self.resolution < 1):
            raise ValueError(f"histogram_resolution must be in (0, 1), got {self.resolution}")

    @property
    def num_log_bins(self) -> int:
        return math.ceil(math.log(self.high / self.low) / math.log1p(self.resolution))

    @property
    def ratio(self) -> float:
        return (self.high / self.low) ** (1.0 / self.num_log_bins)

    @property
    def num_buckets(self) -> int:
        # underflow, n negative, (-low, 0), {0}, (0, low), n positive, overflow
        return 2 * self.num_log_bins + 5

    @property
    def zero_index(self) -> int:
        return self.num_log_bins + 2

    def index(self, values: Tensor) -> Tensor:
        """Bucket index of every value (same shape, int64)."""
        n = self.num_log_bins
        magnitude = values.abs().double()
        # offset 1: (0, low); 2 .. n+1: log bins; n+2: [high, inf); log(0) = -inf lands on 1,
        # and the sign (0 for an exact zero) takes it back to the zero bucket
        offset = magnitude.mul(1.0 / self.low).log_().mul_(1.0 / math.log(self.ratio)).floor_()
        offset = offset.add_(2).clamp_(1, n + 2).masked_fill_(magnitude >= self.high, n + 2)
        return offset.long().mul_(torch.sign(values).long()).add_(self.zero_index)

    def bounds(self, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Lower and upper value bound of every bucket (float64, infinite at the two ends)."""
        n = self.num_log_bins
        edges = self.low * self.ratio ** torch.arange(n + 1, dtype=torch.float64, device=device)
        edges[-1] = self.high
        inf = torch.tensor([math.inf], dtype=torch.float64, device=device)
        zero = torch.zeros(1, dtype=torch.float64, device=device)
        # positive side: offsets 0..n+2 -> [0,0], (0,low), n log bins, [high, inf)
        pos_low = torch.cat([zero, zero, edges[:-1], edges[-1:]])
        pos_high = torch.cat([zero, edges[:1], edges[1:], inf])
        low = torch.cat([-pos_high[1:].flip(0), pos_low])
        high = torch.cat([-pos_low[1:].flip(0), pos_high])
        return low, high


# Set while a metric replays cached batches it checked when they first came in: the checks (each
# reads a value back from the device) are not made twice.
_INPUTS_CHECKED = contextvars.ContextVar("inputs_checked", default=False)
# Set while a metric tallies with the category of each label it built itself (in range by
# construction): the range check, which reads a value back from the device, is not made for
# every batch.
_CATEGORIES_CHECKED = contextvars.ContextVar("categories_checked", default=False)


@contextlib.contextmanager
def _flag_set(flag: contextvars.ContextVar):
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def _inputs_checked():
    return _flag_set(_INPUTS_CHECKED)


def _categories_checked():
    return _flag_set(_CATEGORIES_CHECKED)


#: The start of the error for activations holding NaN or inf (a caller may add context to it).
NON_FINITE_MESSAGE = "activations contain NaN or inf values"


def _check_activations(activations: Tensor) -> None:
    if _INPUTS_CHECKED.get():
        return
    if not isinstance(activations, Tensor):
        raise TypeError(f"activations must be a torch.Tensor, got {type(activations).__name__}")
    if activations.ndim != 4:
        raise ValueError(
            "activations must have shape [batch, units, height, width], "
            f"got {tuple(activations.shape)}"
        )
    if not activations.is_floating_point():
        raise TypeError(f"activations must be a floating point tensor, got {activations.dtype}")
    if not torch.isfinite(activations).all():
        raise ValueError(NON_FINITE_MESSAGE)


def activation_histogram(activations: Tensor, buckets: LogBuckets) -> tuple[Tensor, Tensor, Tensor]:
    """Per-unit histogram, minimum and maximum of a batch of activation maps.

    Parameters
    ----------
    activations : Tensor
        ``[B, U, h, w]`` floating point activations.
    buckets : LogBuckets
        Histogram layout.

    Returns
    -------
    counts : Tensor
        ``[U, buckets.num_buckets]`` int64 counts of the activation values of every unit.
    minimum, maximum : Tensor
        ``[U]`` float64 smallest and largest value of every unit.

    Examples
    --------
    >>> counts, lo, hi = activation_histogram(torch.ones(2, 3, 4, 4), LogBuckets())
    >>> counts.sum(1).tolist(), hi.tolist()
    ([32, 32, 32], [1.0, 1.0, 1.0])
    """
    values = _unit_values(activations)
    return _per_unit_counts(values, buckets.index(values), buckets.num_buckets)


def _unit_values(activations: Tensor) -> Tensor:
    """``[U, B * h * w]`` values of every unit (checked)."""
    _check_activations(activations)
    return activations.detach().transpose(0, 1).reshape(activations.shape[1], -1)


def _per_unit_counts(values: Tensor, index: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Counts of ``index`` (``[U, n]`` in ``[0, size)``) per unit, and each unit's extremes."""
    units = values.shape[0]
    index = index + torch.arange(units, device=index.device).unsqueeze(1) * size
    counts = torch.bincount(index.flatten(), minlength=units * size).view(units, size)
    if values.shape[1] == 0:
        inf = torch.full((units,), math.inf, dtype=torch.float64, device=values.device)
        return counts, inf, -inf
    return counts, values.amin(1).double(), values.amax(1).double()


def histogram_quantile(
    counts: Tensor, minimum: Tensor, maximum: Tensor, quantile: float, buckets: LogBuckets
) -> Tensor:
    """Per-unit quantile read from an :func:`activation_histogram`.

    Follows ``numpy.quantile``'s default ("linear") definition, value at rank ``q (N - 1)`` of the
    sorted data, and interpolates linearly inside the bucket holding that rank, assuming its
    values are evenly spread between the bucket's edges (clipped to the observed range).

    Parameters
    ----------
    counts : Tensor
        ``[U, buckets.num_buckets]`` histogram counts.
    minimum, maximum : Tensor
        ``[U]`` observed extremes, bounding the two open-ended buckets.
    quantile : float
        In ``[0, 1]``.
    buckets : LogBuckets
        The layout ``counts`` was made with.

    Returns
    -------
    Tensor
        ``[U]`` float64 thresholds.

    Examples
    --------
    >>> x = torch.linspace(1, 2, 1001).view(1, 1, 1, -1)
    >>> counts, lo, hi = activation_histogram(x, LogBuckets())
    >>> round(histogram_quantile(counts, lo, hi, 0.5, LogBuckets()).item(), 3)
    1.5
    """
    quantile = check_real("quantile", quantile, minimum=0, maximum=1)
    total = counts.sum(1)
    if (total == 0).any():
        raise ValueError("the histogram of some unit is empty: no activations were seen")
    low, high = buckets.bounds(counts.device)
    low = torch.maximum(low.unsqueeze(0), minimum.unsqueeze(1))
    high = torch.minimum(high.unsqueeze(0), maximum.unsqueeze(1))
    rank = quantile * (total - 1).double()
    below = torch.floor(rank)
    cumulative = counts.cumsum(1).double()

    def value_at(index: Tensor) -> Tensor:
        # the sorted value of integer rank `index`: its bucket, then its place among the bucket's
        # values taken as evenly spread (mid-points) between the bucket's edges
        bucket = torch.searchsorted(cumulative, index.unsqueeze(1), right=True)
        bucket = bucket.clamp(max=counts.shape[1] - 1)
        in_bucket = counts.gather(1, bucket).squeeze(1).double()
        before = cumulative.gather(1, bucket).squeeze(1) - in_bucket
        fraction = ((index - before + 0.5) / in_bucket.clamp(min=1)).clamp(0, 1)
        bucket_low = low.gather(1, bucket).squeeze(1)
        bucket_high = high.gather(1, bucket).squeeze(1)
        return bucket_low + fraction * (bucket_high - bucket_low)

    above = torch.minimum(below + 1, (total - 1).double())
    weight = rank - below
    return (1 - weight) * value_at(below) + weight * value_at(above)


def _check_size(size) -> tuple[int, int]:
    """``(height, width)`` of positive integers, or one for a square (as torch reads it)."""
    if isinstance(size, list | tuple | torch.Size):
        if len(size) != 2:
            fail("size", "an int or a pair of ints (height, width)", size, TypeError)
        return tuple(check_integer("size", side, minimum=1) for side in size)
    side = check_integer("size", size, minimum=1)
    return side, side


def upsample_activations(activations: Tensor, size: tuple[int, int] | int) -> Tensor:
    """Bilinear resizing to the label resolution, as NetDissect-Lite's ``imresize(..., mode='F')``
    (PIL's bilinear resize): ``align_corners=False``, and antialiased along a side that shrinks
    (PIL widens its triangle filter to the scale there; torch's ``antialias=True`` is the same
    filter). Upsampling, the usual case, is plain bilinear interpolation either way. Values stay
    within the map's range (the weights are non-negative and sum to one). ``activations``:
    ``[B, U, h, w]`` floating point maps, finite; ``size``: ``(height, width)``, or one int for a
    square."""
    _check_activations(activations)
    return _resize(activations, _check_size(size))


def _resize(activations: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`upsample_activations` of checked maps and size."""
    if tuple(activations.shape[-2:]) == size:
        return activations
    if activations.shape[-2] <= size[0] and activations.shape[-1] <= size[1]:
        return F.interpolate(activations, size=size, mode="bilinear", align_corners=False)
    # torch antialiases in float32 and float64 only
    wide = activations.dtype if activations.dtype == torch.float64 else torch.float32
    resized = F.interpolate(
        activations.to(wide), size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return resized.to(activations.dtype)


def _weight_rounding(sides: tuple[int, int], size: tuple[int, int]) -> int:
    """How many times a value's precision the bilinear weights of a resize from ``sides`` to
    ``size`` may be off: 1 when each side grows by a power of two (or stays), whose source
    positions ``(i + 0.5) / 2**k - 0.5`` are exact; otherwise the larger side, the magnitude of
    the source positions whose fractions the weights are."""
    exact = all(
        out % side == 0 and (out // side) & (out // side - 1) == 0 for side, out in zip(sides, size)
    )
    return 1 if exact else max(sides)


def _upsampled_above(maps: Tensor, thresholds: Tensor, size: tuple[int, int]) -> Tensor:
    """``[n, P]`` pixels of the upsampled maps ``[n, 1, h, w]`` above their ``[n]`` thresholds,
    as exact arithmetic places them.

    Interpolated in at least float32 (bf16/fp16 would round the values compared with the
    threshold). Its weights are rounded, so a pixel whose exact value ties the threshold can
    come out an ulp above it: a sparse unit's threshold of 0 on a map that is 0 around a lone
    active pixel, at an odd upsampling factor, grew its mask by a ring, and two neighbours of a
    coarse (bf16, quantised) map can interpolate onto a threshold exactly. The rounding cuts
    both ways: neighbours of opposite signs (a layer before its ReLU) can interpolate to just
    above the threshold in exact arithmetic and come out below it. Maps with a pixel within
    float32 rounding of their threshold, on either side, are interpolated again in float64,
    where a value within float64 rounding of the threshold is a tie, not above it. The
    rounding grows with the map's largest magnitude and, unless each side grows by a power of
    two, with its side: torch computes each weight as the fraction of a source position up to
    ``h`` (or ``w``), rounded to the precision of that position, about ``side * eps`` of a
    weight (:func:`_weight_rounding`). An exact zero of a map
    of one sign is exact at a threshold of 0 when the map is upsampled (every product in it is
    zero: a bilinear weight rounds to zero only where it is zero) and is not interpolated
    again.
    """
    thresholds = thresholds.unsqueeze(1)
    # the largest magnitude involved: rounding errors scale with it, with the number of pixels
    # a resized one mixes (4 upsampling; more when an antialiased side shrinks) and with the
    # rounding of the weights (see above)
    flat = maps.flatten(1)
    level = torch.maximum(flat.abs().amax(1, keepdim=True).double(), thresholds.abs())
    mixing = max(1.0, maps.shape[-2] / size[0]) * max(1.0, maps.shape[-1] / size[1])
    level = level * mixing * _weight_rounding(tuple(maps.shape[-2:]), size)
    ties = 16 * torch.finfo(torch.float64).eps * level
    dtype = torch.promote_types(maps.dtype, torch.float32)
    upsampled = _resize(maps.to(dtype), size).flatten(1)
    if dtype == torch.float64:
        return upsampled > thresholds + ties
    # compared in float32, exactly: v > T for a float32 v iff v > the largest float32 <= T
    floor = thresholds.float()
    floor = torch.where(
        floor.double() > thresholds, floor.nextafter(floor.new_tensor(-math.inf)), floor
    )
    above = upsampled > floor
    # near: the exact value may lie on either side of the threshold (the float32 rounding of
    # the values and of the threshold), within (lower, upper); exact zeros of one-signed maps
    # at a threshold of 0 aside (upsampled: the antialiasing filter of a shrinking side may
    # round a small weight to zero): their lower bound is 0 itself, on the side they lie
    rounding = 16 * torch.finfo(torch.float32).eps * (level + thresholds.abs())
    lower, upper = (thresholds - rounding).float(), (thresholds + rounding).float()
    if mixing == 1.0:
        zero = thresholds == 0
        lower = torch.where(zero & (flat.amin(1, keepdim=True) >= 0), 0.0, lower)
        upper = torch.where(zero & (flat.amax(1, keepdim=True) <= 0), 0.0, upper)
    near = ((upsampled > lower) & (upsampled < upper)).any(1)
    del upsampled
    if near.any():
        exact = _resize(maps[near].double(), size).flatten(1)
        above[near] = exact > thresholds[near] + ties[near]
    return above


def _check_labels(labels: Tensor, name: str, num_labels: int, ndim: int, batch: int) -> None:
    if _INPUTS_CHECKED.get():
        return
    if not isinstance(labels, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != ndim:
        shape = "[batch, layers, height, width]" if ndim == 4 else "[batch, slots]"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of label ids, got {labels.dtype}")
    if labels.shape[0] != batch:
        raise ValueError(
            f"{name} has batch size {labels.shape[0]} but activations have batch size {batch}"
        )
    if labels.numel():
        smallest, largest = labels.min().item(), labels.max().item()
        if smallest < 0:
            raise ValueError(
                f"{name} must be non-negative label ids (0 = unlabelled), got {smallest}"
            )
        if largest >= num_labels:
            raise ValueError(
                f"{name} contains label {largest} but only {num_labels} labels are declared "
                f"(ids 0..{num_labels - 1}); 0 is the unlabelled id: set entries without a "
                "label (an ignore value such as 255) to 0, where they count as no concept"
            )
        if largest == 1 and num_labels > 2 and labels.shape[1] >= num_labels - 1:
            # one 0/1 mask per concept (as many layers as concepts, where label ids come in a
            # few layers) reads as label 1 in every layer: a silent wrong answer
            layout = "[B, L, H, W]" if ndim == 4 else "[B, L]"
            convert = (
                "masks * torch.arange(1, L + 1).view(1, L, 1, 1) when layer l holds concept "
                "l + 1 (and no layer holds the unlabelled id 0)"
                if ndim == 4
                else "multihot * torch.arange(1, L + 1)"
            )
            warnings.warn(
                f"{name} holds only the ids 0 and 1 in all its {labels.shape[1]} "
                f"{'layers' if ndim == 4 else 'slots'}: it looks like one 0/1 mask per concept "
                f"{layout}, which reads as label 1 everywhere. The metric takes label ids "
                f"(0 = unlabelled) in each layer; convert with {convert}.",
                stacklevel=3,
            )


def _check_label_resolution(labels: Tensor, activations: Tensor) -> None:
    """Refuse pixel labels whose aspect ratio is not the maps'.

    The maps are resized to the label resolution, so the labels must show the same field of view
    as the maps at a common scale ``s``: a layer's map is the image shrunk by the layer's stride,
    with each side rounded either way by padding and stride (one pixel at most for a
    convolution with padding). The labels ``[H, W]`` fit maps ``[h, w]`` when some ``s`` has
    ``|H / s - h| <= 1`` and ``|W / s - w| <= 1``; otherwise (e.g. labels transposed, ``(W, H)``
    instead of ``(H, W)``) resizing would stretch the maps over the wrong pixels: an error.
    A 1-pixel tolerance rather than a relative one keeps small maps (7x7 for 224x224 labels,
    odd input sizes) accepted, and refuses any swap of sides that differ by more than a pixel.
    Labels smaller than the maps are accepted: the maps are then downsampled bilinearly with
    PIL's antialiasing, as NetDissect-Lite's ``imresize`` does for layers finer than Broden's
    112 x 112 labels.
    Non-tensors and wrong ranks are left to the other checks.
    """
    if not (isinstance(labels, Tensor) and isinstance(activations, Tensor)):
        return
    if labels.ndim != 4 or activations.ndim != 4:
        return
    (height, width), (h, w) = tuple(labels.shape[-2:]), tuple(activations.shape[-2:])
    if (height, width) == (h, w):
        return
    lowest = max(height / (h + 1), width / (w + 1))
    highest = min(height / (h - 1) if h > 1 else math.inf, width / (w - 1) if w > 1 else math.inf)
    if lowest > highest:
        raise ValueError(
            f"labels have spatial shape {(height, width)} (height, width) but the activations "
            f"have {(h, w)}: their height/width ratios differ ({height / max(width, 1):.3g} "
            f"against {h / max(w, 1):.3g}), so resizing the maps to the labels would stretch "
            "them. Labels must show the maps' field of view (the same height/width ratio, to "
            "within one map pixel): check that they are [batch, layers, height, width], not "
            "transposed, and that the activations are [batch, units, height, width], not "
            "channels-last [batch, height, width, units] (DissectionMonitor: "
            "output_transform=lambda out: out.permute(0, 3, 1, 2))."
        )


def _check_label_category(label_category: Tensor, num_categories: int) -> None:
    """``label_category``: a 1-d integer tensor of category indices below ``num_categories``
    (negative: no category), one per label id."""
    if not (
        isinstance(label_category, Tensor)
        and label_category.ndim == 1
        and not (label_category.is_floating_point() or label_category.is_complex())
        and label_category.dtype != torch.bool
    ):
        fail(
            "label_category",
            "a 1-d integer tensor, the category index of every label id",
            label_category,
            TypeError,
        )
    num_categories = check_integer("num_categories", num_categories, minimum=1)
    if _INPUTS_CHECKED.get() or _CATEGORIES_CHECKED.get() or len(label_category) < 2:
        return
    if int(label_category[1:].max()) >= num_categories:  # entry 0 (unlabelled) is not read
        fail(
            "label_category",
            f"category indices below num_categories={num_categories} (negative: none)",
            label_category,
        )


def _distinct_layers(labels: Tensor) -> Tensor:
    """Zero a pixel's label in a layer when an earlier layer already gives it the same label."""
    labels = labels.long().clone()
    for k in range(1, labels.shape[1]):
        repeated = (labels[:, k : k + 1] == labels[:, :k]).any(1)
        labels[:, k][repeated] = 0
    return labels


def _presence(ids: Tensor, batch: int, num_labels: int) -> Tensor:
    """``[B, L]`` int64, 1 where label ``l`` occurs in image ``b`` (``ids``: ``[B, n]``)."""
    image = torch.arange(batch, device=ids.device).unsqueeze(1).expand_as(ids)
    counts = torch.bincount((image * num_labels + ids).flatten(), minlength=batch * num_labels)
    present = (counts.view(batch, num_labels) > 0).long()
    present[:, 0] = 0
    return present


def dissection_tally(
    activations: Tensor,
    labels: Tensor | None,
    thresholds: Tensor,
    label_category: Tensor,
    num_categories: int,
    image_labels: Tensor | None = None,
    activation_side: str = "annotated",
) -> tuple[Tensor, Tensor, Tensor]:
    """Sums of one batch from which :func:`dissection_iou` computes IoU over a whole data set.

    Parameters
    ----------
    activations : Tensor
        ``[B, U, h, w]`` activation maps.
    labels : Tensor or None
        ``[B, K, H, W]`` integer pixel labels (0 = unlabelled), or None if there are only
        whole-image labels (then ``H, W = h, w``). ``H / W`` must be the maps' ``h / w`` to
        within one map pixel (a ValueError otherwise, e.g. for transposed labels); labels
        smaller than the maps are accepted (the maps are then downsampled to them, as
        NetDissect-Lite does).
    thresholds : Tensor
        ``[U]`` per-unit thresholds ``T_u``; the mask is ``upsampled activation > T_u``.
    label_category : Tensor
        ``[L]`` int64 category index of every label; entry 0 (unlabelled) and negative entries
        (labels without a category) are ignored.
    num_categories : int
        Number of categories.
    image_labels : Tensor, optional
        ``[B, S]`` whole-image labels (0-padded); such a label covers every pixel of its image.
    activation_side : {"annotated", "overlap"}
        Which images count a unit's mask towards the union of concept ``c``: those in which
        ``c``'s category is annotated (NetDissect), or those in which the mask overlaps a label of
        that category (NetDissect-Lite).

    Returns
    -------
    intersection : Tensor
        ``[U, L]`` int64, summed ``|mask_u & c|``.
    mask_area : Tensor
        ``[U, num_categories]`` int64, summed ``|mask_u|`` over the images counted for a category.
    label_area : Tensor
        ``[L]`` int64, summed ``|c|``.

    Examples
    --------
    >>> acts = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])   # one unit, right column active
    >>> labels = torch.tensor([[[[1, 2], [1, 2]]]])           # label 1 left, label 2 right
    >>> inter, mask_area, label_area = dissection_tally(
    ...     acts, labels, torch.tensor([0.5]), torch.tensor([0, 0, 0]), 1)
    >>> inter.tolist(), mask_area.tolist(), label_area.tolist()
    ([[0, 0, 2]], [[2]], [0, 2, 2])
    """
    _check_activations(activations)
    _check_label_category(label_category, num_categories)
    batch, units = activations.shape[:2]
    num_labels = int(label_category.shape[0])
    if activation_side not in ("annotated", "overlap"):
        raise ValueError(
            f"activation_side must be 'annotated' or 'overlap', got {activation_side!r}"
        )
    if not isinstance(thresholds, Tensor):
        # a list or an array of the thresholds: torch.as_tensor(...) gives the tensor
        fail(
            "thresholds",
            f"a tensor of shape ({units},) (torch.as_tensor of them)",
            thresholds,
            TypeError,
        )
    if thresholds.shape != (units,):
        raise ValueError(
            f"thresholds must be a tensor of shape ({units},), got {tuple(thresholds.shape)}"
        )
    if torch.isnan(thresholds).any():
        raise ValueError(
            "thresholds are not set (NaN): run the threshold pass over the data before tallying"
        )
    device = activations.device
    if labels is None:
        labels = torch.zeros(batch, 0, *activations.shape[-2:], dtype=torch.long, device=device)
    else:
        _check_labels(labels, "labels", num_labels, 4, batch)
        if not _INPUTS_CHECKED.get():
            _check_label_resolution(labels, activations)
    if image_labels is None:
        image_labels = torch.zeros(batch, 0, dtype=torch.long, device=device)
    _check_labels(image_labels, "image_labels", num_labels, 2, batch)
    height, width = labels.shape[-2:]
    pixels = height * width
    category = label_category.to(device=device, dtype=torch.long)
    label_to_category = F.one_hot(category.clamp(min=0), num_categories).double()
    label_to_category[0] = 0
    label_to_category[category < 0] = 0

    labels = _distinct_layers(labels)
    image_present = _presence(image_labels.long(), batch, num_labels)
    # A whole-image label already covers every pixel of its image: its pixel entries there
    # would count the same pixels twice.
    labels[image_present.gather(1, labels.flatten(1)).view_as(labels) > 0] = 0
    pixel_present = _presence(labels.flatten(1), batch, num_labels)

    label_area = torch.bincount(labels.flatten(), minlength=num_labels)
    label_area[0] = 0
    label_area = label_area + image_present.sum(0) * pixels
    present = (pixel_present + image_present).clamp(max=1).double()
    annotated = (present @ label_to_category) > 0  # [B, categories]
    image_category = (image_present.double() @ label_to_category) > 0

    flat_labels = labels.flatten(2)  # [B, K, P]
    thresholds = thresholds.to(device)
    activations = activations.detach()
    # Bilinear upsampling is a convex combination of the map's values, so a map whose peak is
    # not above the threshold has an empty mask (exact ties are not above it, see
    # _upsampled_above): only the other (image, unit) pairs are upsampled (most of them, for a
    # high quantile, are skipped).
    peaks = activations.flatten(2).amax(2).double()  # [B, U]
    candidate = peaks > thresholds.double().unsqueeze(0)
    pair_image, pair_unit = candidate.nonzero(as_tuple=True)
    counts = torch.zeros(batch * units, dtype=torch.long, device=device)
    intersection = torch.zeros(units * num_labels, dtype=torch.long, device=device)
    overlap_keys = []
    step = max(1, _MAX_UPSAMPLED_VALUES // max(1, pixels))
    for start in range(0, len(pair_image), step):
        image = pair_image[start : start + step]
        unit = pair_unit[start : start + step]
        maps = activations[image, unit].unsqueeze(1)  # [n, 1, h, w]
        above = _upsampled_above(maps, thresholds[unit], (height, width))  # [n, P]
        pair, pixel = above.nonzero(as_tuple=True)
        hit_image, hit_unit = image[pair], unit[pair]
        counts += torch.bincount(hit_image * units + hit_unit, minlength=batch * units)
        hit_labels = flat_labels[hit_image, :, pixel]  # [hits, K]
        keep = hit_labels > 0
        hit_units = hit_unit.unsqueeze(1).expand_as(hit_labels)[keep]
        intersection += torch.bincount(
            hit_units * num_labels + hit_labels[keep], minlength=units * num_labels
        )
        if activation_side == "overlap":
            hit_images = hit_image.unsqueeze(1).expand_as(hit_labels)[keep]
            hit_category = category[hit_labels[keep]]
            known = hit_category >= 0
            overlap_keys.append(
                ((hit_images * units + hit_units) * num_categories + hit_category)[known]
            )
    mask_count = counts.view(batch, units).double()
    intersection = intersection.view(units, num_labels)
    intersection += torch.round(mask_count.T @ image_present.double()).long()
    if activation_side == "annotated":
        area = mask_count.T @ annotated.double()
    else:
        keys = torch.cat(overlap_keys) if overlap_keys else counts.new_zeros(0)
        overlap = torch.bincount(keys, minlength=batch * units * num_categories) > 0
        overlap = overlap.view(batch, units, num_categories)
        overlap |= image_category.unsqueeze(1) & (mask_count > 0).unsqueeze(2)
        area = (mask_count.unsqueeze(2) * overlap.double()).sum(0)
    mask_area = torch.round(area).long()
    return intersection, mask_area, label_area


def _check_tallies(
    intersection: Tensor, mask_area: Tensor, label_area: Tensor, label_category: Tensor
) -> None:
    """The sums of :func:`dissection_tally` (``[U, L]``, ``[U, C]``, ``[L]``) and the ``[L]``
    categories of their labels: real tensors of matching shapes."""
    expected = {
        "intersection": (intersection, "[units, labels]", 2),
        "mask_area": (mask_area, "[units, categories]", 2),
        "label_area": (label_area, "[labels]", 1),
    }
    for name, (tally, shape, ndim) in expected.items():
        if not isinstance(tally, Tensor) or tally.is_complex() or tally.dtype == torch.bool:
            fail(name, f"a real tensor {shape} (a sum of dissection_tally)", tally, TypeError)
        if tally.ndim != ndim:
            raise ValueError(f"{name} must be a tensor {shape}; got shape {tuple(tally.shape)}.")
    _check_label_category(label_category, max(1, mask_area.shape[1]))
    units, labels = intersection.shape
    if mask_area.shape[0] != units:
        raise ValueError(
            f"mask_area must be [units, categories] with the {units} units of intersection; "
            f"got shape {tuple(mask_area.shape)}."
        )
    for name, tally in (("label_area", label_area), ("label_category", label_category)):
        if tally.shape[0] != labels:
            raise ValueError(
                f"{name} must be [labels] with the {labels} labels of intersection; got shape "
                f"{tuple(tally.shape)}."
            )


def dissection_iou(
    intersection: Tensor, mask_area: Tensor, label_area: Tensor, label_category: Tensor
) -> Tensor:
    """``IoU(u, c) = I(u, c) / (M(u, category(c)) + A(c) - I(u, c))`` from summed tallies.

    Returns a ``[U, L]`` float64 tensor; label 0 (unlabelled), labels without a category
    (negative ``label_category``) and empty unions give 0.

    Examples
    --------
    >>> dissection_iou(torch.tensor([[0, 1, 2]]), torch.tensor([[4]]), torch.tensor([0, 3, 2]),
    ...                torch.tensor([0, 0, 0])).tolist()
    [[0.0, 0.16666666666666666, 0.5]]
    """
    _check_tallies(intersection, mask_area, label_area, label_category)
    category = label_category.to(device=mask_area.device, dtype=torch.long)
    inter = intersection.double()
    union = mask_area.double()[:, category.clamp(min=0)] + label_area.double().unsqueeze(0) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    iou[:, 0] = 0
    iou[:, category < 0] = 0
    return iou


def best_concepts(iou: Tensor) -> tuple[Tensor, Tensor]:
    """Best concept of every unit: ``(best IoU [U], label id [U])``, ignoring label 0.

    Ties go to the smallest label id. A NaN IoU is refused (it would be taken for the best).
    """
    if not isinstance(iou, Tensor):
        raise TypeError(f"iou must be a torch.Tensor [units, labels]; got {type(iou).__name__}.")
    if iou.dim() != 2:
        raise ValueError(f"iou must be [units, labels]; got shape {tuple(iou.shape)}.")
    if iou.shape[1] < 2:
        raise ValueError("at least one label besides 0 (unlabelled) is needed")
    if torch.isnan(iou[:, 1:]).any():
        raise ValueError("iou must hold no NaN (a NaN would be taken for a unit's best IoU).")
    best_iou, best = iou[:, 1:].max(1)
    return best_iou, best + 1


# ---------------------------------------------------------------------------- coarse-then-fine
# A histogram with ``resolution``-wide buckets over six decades takes ~27,600 counts per unit. The
# threshold pass instead counts *coarse* buckets (``FINE_PER_COARSE`` consecutive fine buckets
# each); the coarse histogram tells which coarse bucket holds the quantile's two order statistics,
# and a second look at the same values counts the fine buckets inside those two only. The fine
# buckets are those of :class:`LogBuckets`, so the result equals the one-level histogram's.

#: Fine buckets per coarse bucket of the two-level histogram.
FINE_PER_COARSE = 32


@dataclass(frozen=True)
class HistogramLayout:
    """Coarse buckets of a :class:`LogBuckets` layout: groups of consecutive fine buckets.

    Each of the ``num_log_bins`` log buckets per sign is grouped with its neighbours by
    ``group``; the special buckets (exact zero, ``(0, low)`` and ``|x| >= high`` per sign) stay
    alone.

    Attributes
    ----------
    fine_to_coarse : Tensor
        ``[buckets.num_buckets]`` int64 coarse bucket of every fine bucket.
    start : Tensor
        ``[num_coarse]`` int64 first fine bucket of every coarse bucket.

    Examples
    --------
    >>> layout = HistogramLayout.build(LogBuckets(1e-3, 1e3, 1e-3), 32)
    >>> layout.num_coarse, layout.group
    (869, 32)
    """

    buckets: LogBuckets
    group: int
    fine_to_coarse: Tensor
    start: Tensor

    @classmethod
    def build(
        cls, buckets: LogBuckets, group: int = FINE_PER_COARSE, device: torch.device | None = None
    ) -> HistogramLayout:
        n = buckets.num_log_bins
        fine = torch.arange(buckets.num_buckets, device=device) - buckets.zero_index
        offset = fine.abs()
        coarse_offset = torch.where(
            offset < 2,
            offset,
            torch.where(offset == n + 2, 2 + (n + group - 1) // group, 2 + (offset - 2) // group),
        )
        zero = 2 + (n + group - 1) // group
        fine_to_coarse = zero + torch.sign(fine) * coarse_offset
        start = torch.full((2 * zero + 1,), buckets.num_buckets, device=device)
        start = start.scatter_reduce(
            0, fine_to_coarse, torch.arange(buckets.num_buckets, device=device), "amin"
        )
        return cls(buckets, group, fine_to_coarse, start)

    @property
    def num_coarse(self) -> int:
        return int(self.start.shape[0])

    def to(self, device: torch.device) -> HistogramLayout:
        return HistogramLayout(
            self.buckets, self.group, self.fine_to_coarse.to(device), self.start.to(device)
        )


def coarse_histogram(activations: Tensor, layout: HistogramLayout) -> tuple[Tensor, Tensor, Tensor]:
    """Per-unit coarse histogram, minimum and maximum of a batch of activation maps.

    Returns ``[U, layout.num_coarse]`` int64 counts and ``[U]`` float64 extremes, as
    :func:`activation_histogram` does for the fine buckets.
    """
    values = _unit_values(activations)
    index = layout.fine_to_coarse[layout.buckets.index(values)]
    return _per_unit_counts(values, index, layout.num_coarse)


def _ranks(total: Tensor, quantile: float) -> tuple[Tensor, Tensor, Tensor]:
    """Integer ranks ``floor(q (N - 1))`` and the next one, and the weight of the latter."""
    rank = quantile * (total - 1).double()
    below = torch.floor(rank)
    above = torch.minimum(below + 1, (total - 1).double())
    return below, above, rank - below


def quantile_windows(counts: Tensor, quantile: float) -> Tensor:
    """``[U, 2]`` coarse buckets holding the two order statistics the quantile interpolates.

    ``counts`` is a coarse histogram (:func:`coarse_histogram`, summed over the data set).
    """
    quantile = check_real("quantile", quantile, minimum=0, maximum=1)
    total = counts.sum(1)
    if (total == 0).any():
        raise ValueError("the histogram of some unit is empty: no activations were seen")
    cumulative = counts.cumsum(1).double()
    below, above, _ = _ranks(total, quantile)
    ranks = torch.stack([below, above], 1)
    return torch.searchsorted(cumulative, ranks, right=True).clamp(max=counts.shape[1] - 1)


def window_histogram(
    activations: Tensor,
    windows: Tensor,
    layout: HistogramLayout,
    extremes: tuple[Tensor, Tensor] | None = None,
    *,
    spans: bool = False,
) -> Tensor | tuple[Tensor, ...]:
    """``[U, 2, layout.group]`` int64 fine counts inside the two coarse buckets of ``windows``.

    Only the values between the windows' edges (widened by 1e-6 relative, far beyond the
    rounding of a bucket index) get a bucket index: a small share of the data for a high
    quantile. The windows hold two consecutive order statistics, so no value lies in a bucket
    between them and one range per unit covers both.

    With ``extremes=(minimum, maximum)`` (each unit's, over the data set), also returns
    ``[U, 2]`` int64 counts of the window values equal to the minimum and to the maximum: the
    ties :func:`two_level_quantile` reads exactly. Counting them inside the windows suffices: a
    tie matters to the quantile only when its value's bucket is a window, and then every tied
    value lies there.

    With ``spans=True`` (and ``extremes``), also returns the smallest and the largest value seen
    in each fine bucket (``[U, 2, layout.group]`` float64; +inf and -inf where none): a bucket
    that holds one distinct value, :func:`two_level_quantile` reads exactly.
    """
    values = _unit_values(activations)
    units, group = values.shape[0], layout.group
    low, high = layout.buckets.bounds(values.device)
    last = torch.cat([layout.start[1:] - 1, layout.start.new_tensor([len(low) - 1])])
    window_low = low[layout.start[windows[:, 0]]].unsqueeze(1)  # [U, 1]
    window_high = high[last[windows[:, 1]]].unsqueeze(1)
    compared = torch.promote_types(values.dtype, torch.float32)
    window_low = (window_low - 1e-6 * window_low.abs()).to(compared)
    window_high = (window_high + 1e-6 * window_high.abs()).to(compared)
    values = values.to(compared)
    unit, place = ((values >= window_low) & (values <= window_high)).nonzero(as_tuple=True)
    inside = values[unit, place]
    fine = layout.buckets.index(inside)
    coarse = layout.fine_to_coarse[fine]
    offset = fine - layout.start[coarse]
    found = []
    for slot in range(2):
        hit = coarse == windows[unit, slot]
        found.append((unit[hit] * 2 + slot) * group + offset[hit])
    where = torch.cat(found)
    counts = torch.bincount(where, minlength=units * 2 * group).view(units, 2, group)
    if extremes is None:
        return counts
    # the extremes are values of the activations' dtype (kept in float64): exact in it
    ties = [
        torch.bincount(unit[inside == extreme.to(compared)[unit]], minlength=units)
        for extreme in extremes
    ]
    if not spans:
        return counts, torch.stack(ties, 1)
    kept = torch.cat(
        [inside[coarse == windows[unit, slot]] for slot in range(2)]
    ).double()  # in the order of `where`
    size = units * 2 * group
    lowest = torch.full((size,), math.inf, dtype=torch.float64, device=values.device)
    highest = torch.full((size,), -math.inf, dtype=torch.float64, device=values.device)
    lowest = lowest.scatter_reduce(0, where, kept, "amin").view(units, 2, group)
    highest = highest.scatter_reduce(0, where, kept, "amax").view(units, 2, group)
    return counts, torch.stack(ties, 1), lowest, highest


def two_level_quantile(
    coarse: Tensor,
    fine: Tensor,
    windows: Tensor,
    minimum: Tensor,
    maximum: Tensor,
    quantile: float,
    layout: HistogramLayout,
    extremes: Tensor | None = None,
    spans: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Per-unit quantile from a coarse histogram and the fine counts of its two windows.

    Without ``extremes``, equals :func:`histogram_quantile` of the one-level histogram with
    the fine buckets: the same bucket is found for every rank and the same interpolation is
    made inside it. With ``extremes`` (the tie counts of :func:`window_histogram`), an order
    statistic among the values tied at a unit's minimum or maximum is that value exactly, as
    the exact quantile is: a unit that saturates (ReLU6, a clipped input, a binary unit) on
    more than ``1 - quantile`` of its pixels then gets its maximum as threshold, so no pixel
    exceeds it, where interpolating inside the maximum's bucket would put the threshold just
    below and every saturated pixel above it.

    With ``spans`` (the smallest and largest values :func:`window_histogram` saw in each fine
    bucket), the order statistics of a bucket are placed between the values it holds, the first
    on the smallest and the last on the largest, instead of across the bucket's edges: a bucket
    that holds one distinct value (bfloat16 or quantized activations, whose values lie further
    apart than a bucket is wide) gives that value exactly, as the exact quantile does, so none
    of its tied pixels exceeds the threshold. A tie that shares its bucket with other values is
    still interpolated (within the bucket, 1e-3 relative).

    Examples
    --------
    >>> x = torch.linspace(1, 2, 1001).view(1, 1, 1, -1)
    >>> layout = HistogramLayout.build(LogBuckets())
    >>> coarse, lo, hi = coarse_histogram(x, layout)
    >>> windows = quantile_windows(coarse, 0.5)
    >>> fine = window_histogram(x, windows, layout)
    >>> round(two_level_quantile(coarse, fine, windows, lo, hi, 0.5, layout).item(), 3)
    1.5
    """
    quantile = check_real("quantile", quantile, minimum=0, maximum=1)
    total = coarse.sum(1)
    low, high = layout.buckets.bounds(coarse.device)
    cumulative = coarse.cumsum(1).double()
    fine_cumulative = fine.cumsum(2).double()
    below, above, weight = _ranks(total, quantile)

    def value_at(index: Tensor) -> Tensor:
        bucket = torch.searchsorted(cumulative, index.unsqueeze(1), right=True)
        bucket = bucket.clamp(max=coarse.shape[1] - 1).squeeze(1)
        before = cumulative.gather(1, bucket.unsqueeze(1)).squeeze(1)
        before = before - coarse.gather(1, bucket.unsqueeze(1)).squeeze(1).double()
        slot = (windows[:, 0] != bucket).long()  # the window holding this coarse bucket
        inside = fine_cumulative[torch.arange(len(slot), device=slot.device), slot]  # [U, group]
        step = torch.searchsorted(inside, (index - before).unsqueeze(1), right=True)
        step = step.clamp(max=layout.group - 1)
        in_bucket = fine[torch.arange(len(slot), device=slot.device), slot].gather(1, step)
        in_bucket = in_bucket.squeeze(1).double()
        before = before + inside.gather(1, step).squeeze(1) - in_bucket
        where = (layout.start[bucket] + step.squeeze(1)).clamp(max=len(low) - 1)
        fraction = ((index - before + 0.5) / in_bucket.clamp(min=1)).clamp(0, 1)
        bucket_low = torch.maximum(low[where], minimum)
        bucket_high = torch.minimum(high[where], maximum)
        if spans is not None:
            rows = torch.arange(len(slot), device=slot.device)
            seen_low = spans[0][rows, slot].gather(1, step).squeeze(1)
            seen_high = spans[1][rows, slot].gather(1, step).squeeze(1)
            seen = torch.isfinite(seen_low) & torch.isfinite(seen_high)
            # the k-th of n values: the smallest at k = 0, the largest at k = n - 1
            spread = ((index - before) / (in_bucket - 1).clamp(min=1)).clamp(0, 1)
            fraction = torch.where(seen, spread, fraction)
            bucket_low = torch.where(seen, seen_low, bucket_low)
            bucket_high = torch.where(seen, seen_high, bucket_high)
        value = bucket_low + fraction * (bucket_high - bucket_low)
        if extremes is not None:
            # order statistics 0 .. m - 1 are the minimum, N - M .. N - 1 the maximum
            value = torch.where(index < extremes[:, 0].double(), minimum, value)
            value = torch.where(index >= (total - extremes[:, 1]).double(), maximum, value)
        return value

    return (1 - weight) * value_at(below) + weight * value_at(above)
