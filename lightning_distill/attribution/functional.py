"""Scores of attribution maps as pure tensor functions (no state, no Lightning, no I/O).

* :func:`five_band_scores`: Tjoa & Guan's five-band scores of a heatmap against a ground-truth
  heatmap (pixel accuracy, precision, recall, false-positive rate), optionally swept over the
  "soft" threshold sets of their reference code.
* :func:`localisation_score`: the share of a map's mass inside a ground-truth mask.
* :func:`attribution_agreement`: how alike two maps of the same inputs are (Spearman rank
  correlation and overlap of the top pixels), e.g. a teacher's and a student's.

:mod:`lightning_distill.attribution.metrics` accumulates them over batches as
``torchmetrics.Metric`` objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_distill._validation import check_finite, check_integer, check_real, fail

__all__ = [
    "CLAMPED_THRESHOLDS",
    "DEFAULT_THRESHOLDS",
    "EARLY_THRESHOLDS",
    "REFERENCE_CLAMP",
    "attribution_agreement",
    "five_band_scores",
    "five_band_threshold_sets",
    "localisation_score",
]

#: The band thresholds of Tjoa & Guan's reference settings, for the map and the ground truth
#: (``XAI_SETTING_FIVE_BAND`` in ``xai_basic/src/xai_eval.py`` of ``ericotjo001/explainable_ai``,
#: with ``soft_delta=0.005`` and ``n_soft_steps=56``).
DEFAULT_THRESHOLDS = (-0.7, -0.3, 0.3, 0.7)
#: The map thresholds of the reference's version-1 code, the code of the paper's arXiv version
#: (2009.02899): ``XAI_SETTING_0001`` in ``xai_basic/legacy/srcV1/pipeline/eval/xai_settings.py``,
#: used with the ground truth's :data:`DEFAULT_THRESHOLDS`, ``soft_delta=0.005`` and
#: ``n_soft_steps=56``.
EARLY_THRESHOLDS = (-0.5, -0.3, 0.3, 0.5)
#: The map thresholds of the version-1 code's clamped setting, ``XAI_SETTING_0002`` in the same
#: file (with the ground truth's :data:`DEFAULT_THRESHOLDS`, ``soft_delta=0.01`` and
#: ``n_soft_steps=41``), used with ``clamp=``:data:`REFERENCE_CLAMP`.
CLAMPED_THRESHOLDS = (-0.9, -0.5, 0.5, 0.9)
#: The range every attribution value is clipped to in that setting before the channel sum
#: (its ``clamp_setting``, ``'min_max': [-0.1, 0.1]``), in the attribution's own units.
REFERENCE_CLAMP = (-0.1, 0.1)
# the reference adds this to every denominator of recall, precision and FPR
_EPSILON = 1e-6
# index of the zero band among the five bands (-2, -1, 0, 1, 2)
_ZERO_BAND = 2
_SCORES = ("pixel_accuracy", "precision", "recall", "fpr")


# ---------------------------------------------------------------------------------- checks
def _check_thresholds(name: str, thresholds, *, within_unit: bool = False) -> np.ndarray:
    if isinstance(thresholds, Tensor):
        thresholds = thresholds.detach().cpu().tolist()
    if isinstance(thresholds, str) or not isinstance(thresholds, Sequence | np.ndarray):
        fail(name, "a sequence of four increasing real numbers", thresholds, TypeError)
    values = list(thresholds)
    if len(values) != 4:
        fail(name, "a sequence of four increasing real numbers", thresholds)
    values = [check_real(f"{name}[{i}]", value) for i, value in enumerate(values)]
    if np.any(np.diff(values) <= 0):
        fail(name, "four strictly increasing numbers", tuple(thresholds))
    if within_unit and (values[0] < -1 or values[-1] > 1):
        fail(
            name,
            "four numbers in [-1, 1] (the map is divided by its largest magnitude, so a "
            "threshold outside never separates two pixels)",
            tuple(thresholds),
        )
    return np.asarray(values, dtype=np.float64)


def _check_clamp(clamp) -> tuple[float, float] | None:
    """``None``, or ``(low, high)`` as floats with ``low <= 0 <= high`` and ``low < high``."""
    if clamp is None:
        return None
    form = "None or a pair (low, high) of real numbers with low <= 0 <= high and low < high"
    if isinstance(clamp, Tensor):
        clamp = clamp.detach().cpu().tolist()
    if isinstance(clamp, str) or not isinstance(clamp, Sequence | np.ndarray):
        fail("clamp", form, clamp, TypeError)
    values = list(clamp)
    if len(values) != 2:
        fail("clamp", form, clamp)
    low, high = (check_real(f"clamp[{i}]", value) for i, value in enumerate(values))
    # a bound above zero (or below it) would give every pixel without attribution a value:
    # the map's zero, which the normalisation keeps, would no longer mean "no evidence"
    if not (low <= 0.0 <= high and low < high):
        fail("clamp", form, (low, high))
    return (low, high)


def _check_tensor(name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        fail(name, "a torch.Tensor", type(value).__name__, TypeError)
    if value.is_complex():
        fail(name, "a real-valued tensor", value.dtype, TypeError)
    if value.numel() == 0:
        fail(name, "a non-empty tensor", tuple(value.shape))
    return value


def _as_maps(
    name: str, value, *, allow_channels: bool = True, dtype=torch.float64, finite: bool = True
) -> Tensor:
    """``[N, H, W]`` or ``[N, C, H, W]`` as a ``[N, C, H, W]`` tensor (float64 unless a floating
    ``dtype=None`` keeps the input's), checked finite unless ``finite=False``."""
    value = _check_tensor(name, value)
    if value.ndim == 3:
        value = value.unsqueeze(1)
    elif value.ndim != 4 or (not allow_channels and value.shape[1] != 1):
        form = "[N, C, H, W] or [N, H, W]" if allow_channels else "[N, H, W] or [N, 1, H, W]"
        fail(name, f"a {form} tensor", tuple(value.shape))
    if dtype is None and value.is_floating_point():
        value = value.detach()
    else:
        value = value.detach().to(dtype or torch.float64)
    if finite:
        check_finite(name, value)
    return value


def _check_spatial(name: str, value: Tensor, other_name: str, other: Tensor) -> None:
    if value.shape[0] != other.shape[0] or value.shape[-2:] != other.shape[-2:]:
        fail(
            name,
            f"a tensor with the number of images, height and width of {other_name} "
            f"(shape {tuple(other.shape)})",
            tuple(value.shape),
        )


def _as_mask(name: str, value, maps_name: str, maps: Tensor) -> Tensor:
    """A binary ``[N, H, W]`` / ``[N, 1, H, W]`` mask as an ``[N, H, W]`` tensor: bool masks
    as they are, others (checked to hold 0 and 1 only) in float64."""
    original = _check_tensor(name, value)
    binary = original.dtype == torch.bool
    if binary:  # kept as bool: multiplied into the masses without a float copy
        if not (original.ndim == 3 or (original.ndim == 4 and original.shape[1] == 1)):
            fail(name, "a [N, H, W] or [N, 1, H, W] tensor", tuple(original.shape))
        mask = original.detach().reshape(original.shape[0], *original.shape[-2:])
    else:
        mask = _as_maps(name, original, allow_channels=False)[:, 0]
    _check_spatial(name, original, maps_name, maps)
    if not binary and not bool(((mask == 0) | (mask == 1)).all()):
        fail(name, "a binary mask (bool, or values 0 and 1)", "other values")
    return mask


# ---------------------------------------------------------------------------- five bands
def five_band_threshold_sets(
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    soft_steps: int | None = None,
    soft_delta: float = 0.005,
) -> Tensor:
    """The map's threshold sets of the five-band score, ``[K, 4]`` float64.

    ``K = 1`` (the thresholds as given) without ``soft_steps``; otherwise ``K = soft_steps`` sets,
    the first as given and each next one the previous moved by ``soft_delta`` toward zero (a
    positive threshold decreases, any other increases), accumulated step by step in float64 as
    Tjoa & Guan's reference code does (``n_soft_steps``, ``soft_delta``).

    Examples
    --------
    >>> five_band_threshold_sets(soft_steps=56)[[0, -1]].tolist()  # doctest: +ELLIPSIS
    [[-0.7, -0.3, 0.3, 0.7], [-0.42..., -0.02..., 0.02..., 0.42...]]
    """
    current = _check_thresholds("thresholds", thresholds, within_unit=True)
    # checked without soft_steps too: FiveBandScore keeps it as a float either way
    delta = check_real("soft_delta", soft_delta, minimum=0.0, exclusive_minimum=True)
    if soft_steps is None:
        return torch.from_numpy(current[None].copy())
    steps = check_integer("soft_steps", soft_steps, minimum=1)
    sets = [current]
    for step in range(1, steps):
        current = current + np.where(current > 0.0, -delta, delta)
        if np.any(np.diff(current) <= 0):
            fail(
                "soft_steps",
                f"small enough that the thresholds stay increasing (they stop at step {step} "
                f"with soft_delta={delta})",
                steps,
            )
        sets.append(current)
    return torch.from_numpy(np.stack(sets))


def _scoring_dtype(value: Tensor) -> torch.dtype:
    """The dtype a five-band input (floating, as ``_as_maps`` gives it: integers in float64) is
    banded in: its own for float32 and float64, as the reference's numpy computes (its sum,
    division and comparisons round to the array's dtype), float32 for the half types (bfloat16
    has no numpy counterpart)."""
    return value.dtype if value.dtype in (torch.float32, torch.float64) else torch.float32


def _normalised_heatmap(attribution: Tensor) -> Tensor:
    """Sum over channels, divide by the largest magnitude; an all-zero map stays zero. In the
    attribution's dtype, the channels added one after the other (numpy's sum over a leading
    axis), so that every value rounds as in the reference. The attribution's finiteness is read
    from the largest magnitudes (a NaN or infinity in any channel makes its image's non-finite),
    so it is checked value by value only then."""
    heatmap = _channel_sum(attribution, attribution.dtype, absolute=False)  # [N, HW], fresh
    # amax and amin: about ten times faster than aminmax along a row on the CPU here
    low, high = heatmap.amin(1, keepdim=True), heatmap.amax(1, keepdim=True)
    peak = torch.maximum(-low, high)  # the largest magnitude, without a copy of the map
    if not bool(torch.isfinite(peak).all()):
        check_finite("attribution", attribution)
        # channels of a finite map summing past its dtype's range (the reference would divide
        # inf by inf): a float32 map is summed in float64, where its sum is finite; a float64
        # one has each image scaled by a power of two (exact) to a largest magnitude below 1,
        # which leaves the normalised map as it is
        if attribution.dtype != torch.float64:
            return _normalised_heatmap(attribution.to(torch.float64))
        _, exponent = torch.frexp(attribution.abs().flatten(1).amax(1))
        return _normalised_heatmap(torch.ldexp(attribution, -exponent.view(-1, 1, 1, 1)))
    # the reference divides 0 / 0 when channels cancel exactly; such a map is zero everywhere
    # and stays zero (divided by 1), with no band but 0
    return heatmap.div_(torch.where(peak > 0, peak, 1.0))


def _interval_index(values: Tensor, boundaries: Tensor, *, max_per_cell: int = 4) -> Tensor:
    """``torch.bucketize(values, boundaries, out_int32=True)`` (the number of boundaries below
    each value, int32) for sorted, distinct ``boundaries`` of the values' dtype, by a uniform grid
    of cells instead of a binary search.

    A value's cell is ``trunc(clamp((v - lo) * scale))``, computed in float32 the same way for
    the values and the boundaries. Every step is monotone (rounding included), so a boundary in
    a lower cell than a value is below it and one in a higher cell is above it; only the few
    boundaries of the value's own cell are compared, in the values' dtype. Exact, and several times
    faster than the binary search; falls back to it when boundaries crowd into one cell.
    """
    count = boundaries.numel()
    low, high = float(boundaries[0]), float(boundaries[-1])
    if count < 2 or not high > low:
        return torch.bucketize(values, boundaries, out_int32=True)
    cells = 4 * count
    scale = cells / (high - low)

    def cell(v: Tensor) -> Tensor:
        return torch.sub(v.to(torch.float32), low).mul_(scale).clamp_(0, cells - 1).to(torch.int32)

    per_cell = torch.bincount(cell(boundaries), minlength=cells)
    width = int(per_cell.max())
    if width > max_per_cell:
        return torch.bucketize(values, boundaries, out_int32=True)
    below = (torch.cumsum(per_cell, 0) - per_cell).to(torch.int32)  # boundaries in lower cells
    padded = torch.cat([boundaries, boundaries.new_full((width,), torch.inf)])
    flat = values.reshape(-1)
    first = below.index_select(0, cell(flat))  # index_select: several times faster than [ ]
    index = first.clone() if width > 1 else first
    for k in range(width):
        index += padded.index_select(0, first + k if k else first) < flat
    return index.view(values.shape)


def band_confusion(heatmap: Tensor, ground_truth: Tensor, threshold_sets: Tensor, gt_thresholds):
    """Per image and threshold set, counts of (map band, ground-truth band): ``[N, K, 5, 5]``.

    ``heatmap`` is the normalised ``[N, P]`` map, ``ground_truth`` ``[N, P]``. A value ``x`` falls
    in band ``#{t in thresholds : t < x}`` (0..4 for -2..2), i.e. ``x <= t0`` is the lowest band
    and ``t3 < x`` the highest, as in the reference. Each is compared with the thresholds
    rounded to its own dtype, as the reference's numpy compares an array with a scalar (a
    float32 value of 0.3 lies on the threshold 0.3). Instead of banding every pixel once per
    set, every pixel is placed once among all thresholds of all sets; each interval between two
    consecutive thresholds has one band per set.
    """
    device = heatmap.device
    threshold_sets = threshold_sets.to(device=device, dtype=heatmap.dtype)
    gt_thresholds = torch.as_tensor(gt_thresholds, dtype=torch.float64).to(
        device=device, dtype=ground_truth.dtype
    )
    boundaries = torch.unique(threshold_sets)  # sorted
    intervals = boundaries.numel() + 1
    images = heatmap.shape[0]
    # one count per (image, ground-truth band, interval), indexed in int32 where that fits
    wide = torch.int32 if images * 5 * intervals < 2**31 else torch.int64
    cell = _interval_index(ground_truth, gt_thresholds).to(wide)
    cell *= intervals
    cell += torch.arange(0, images * 5 * intervals, 5 * intervals, device=device, dtype=wide)[
        :, None
    ]
    cell += _interval_index(heatmap, boundaries)
    counts = torch.bincount(cell.flatten(), minlength=images * 5 * intervals)
    # the counts of a set's band are those of a range of consecutive intervals: differences of
    # the running counts (exact integers) at the positions of the set's thresholds
    running = F.pad(counts.view(images * 5, intervals).cumsum(1), (1, 0))  # [N * 5, 1 + intervals]
    # threshold j of every set is boundary number `at[:, j]`; band b of a set holds the
    # intervals after its threshold b - 1 up to the one ending at its threshold b
    at = torch.searchsorted(boundaries, threshold_sets)  # [K, 4]
    sets = threshold_sets.shape[0]
    upper = torch.cat([at + 1, at.new_full((sets, 1), intervals)], 1).flatten()  # [K * 5]
    lower = torch.cat([at.new_zeros((sets, 1)), at + 1], 1).flatten()
    confusion = running.index_select(1, upper) - running.index_select(1, lower)
    # [N, 5 (truth), K, 5 (map)] -> [N, K, 5 (map), 5 (truth)]
    return confusion.to(torch.float64).view(images, 5, sets, 5).permute(0, 2, 3, 1)


def scores_from_confusion(confusion: Tensor) -> dict[str, Tensor]:
    """Tjoa & Guan's pixel accuracy, precision, recall and FPR from band counts ``[..., 5, 5]``.

    A pixel is a true positive when both bands are non-zero and equal, a false positive when the
    map's band is non-zero and the ground truth's is zero *or a different non-zero band*, a true
    negative when both are zero and a false negative when only the ground truth's is non-zero.
    Each denominator gets ``1e-6`` added, as in the reference.
    """
    diagonal = confusion.diagonal(dim1=-2, dim2=-1)
    matching = diagonal.sum(-1)
    true_negative = diagonal[..., _ZERO_BAND]
    true_positive = matching - true_negative
    predicted = confusion.sum((-2, -1)) - confusion[..., _ZERO_BAND, :].sum(-1)
    false_positive = predicted - true_positive
    false_negative = confusion[..., _ZERO_BAND, :].sum(-1) - true_negative
    return {
        "pixel_accuracy": matching / confusion.sum((-2, -1)),
        "precision": true_positive / (true_positive + false_positive + _EPSILON),
        "recall": true_positive / (true_positive + false_negative + _EPSILON),
        "fpr": false_positive / (false_positive + true_negative + _EPSILON),
    }


def five_band_scores(
    attribution: Tensor,
    ground_truth: Tensor,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ground_truth_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    soft_steps: int | None = None,
    soft_delta: float = 0.005,
    clamp: tuple[float, float] | None = None,
) -> dict[str, Tensor]:
    """Five-band scores of attribution maps against ground-truth heatmaps (Tjoa & Guan, 2020).

    The definition is that of the authors' reference code (``xai_basic/src/xai_eval.py`` of
    ``ericotjo001/explainable_ai``, ``FiveBandXAIMetric``):

    1. the attribution is summed over channels and divided by its largest magnitude (a map that
       is zero everywhere stays zero), so that it lies in ``[-1, 1]``;
    2. map and ground truth are each cut into five bands ``-2..2`` by four thresholds ``t``:
       ``x <= t0``, ``t0 < x <= t1``, ``t1 < x <= t2``, ``t2 < x <= t3``, ``t3 < x``;
    3. per image, with a pixel *positive* when its band is not zero: pixel accuracy is the share
       of pixels whose bands are equal; a true positive has equal non-zero bands, a false
       positive a non-zero map band with the ground truth's zero **or different** (a pixel of the
       right region in the wrong band counts against precision, so this is not a multiclass
       precision), a true negative two zero bands, a false negative a zero map band where the
       ground truth's is not. ``precision = TP / (TP + FP + 1e-6)``, ``recall = TP / (TP + FN +
       1e-6)``, ``fpr = FP / (FP + TN + 1e-6)``.

    Steps 1 and 2 run in the dtype of the attribution (and of the ground truth): float32 maps
    are summed, divided and compared with the thresholds rounded to float32, as the
    reference's numpy does with float32 arrays (Captum's and torch's default), so that a pixel
    on a threshold lands in the band the reference gives it; half types are scored in float32.
    This is the reference under the numpy of its environment (1.x, which compares a float32
    array with a Python float in float32); the same reference code run under numpy 2 compares
    in float64 and can band a float32 pixel that lies on a threshold (0.3 in float32 is just
    above 0.3) one band higher. Float64 maps give the same scores under either.
    A map whose channels cancel to zero everywhere is scored as the all-zero map (the reference
    divides 0 by 0 there and fails).

    With ``soft_steps=K`` (the reference's ``n_soft_steps``; it uses 56) the scores are computed
    for ``K`` threshold sets of the map, the first as given and each next one moved
    ``soft_delta`` toward zero (see :func:`five_band_threshold_sets`); the ground truth's
    thresholds stay fixed. The curve's mean over the sets is the "soft" score (the reference's
    ``Pmu``, ``Rmu``, ``Amu``); its largest value over the sets, ``scores[name].amax(-1)``, is the
    reference's per-image "best" (``Pu``, ``Ru``, ``Au``), each score's best taken on its own
    (they need not come from the same set). :meth:`FiveBandScore.per_image_best
    <lightning_distill.metrics.FiveBandScore.per_image_best>` averages those over images.

    Parameters
    ----------
    attribution : Tensor
        ``[N, C, H, W]`` or ``[N, H, W]`` attribution maps.
    ground_truth : Tensor
        ``[N, H, W]`` (or ``[N, 1, H, W]``) ground-truth heatmaps; Tjoa & Guan's cell data use
        0 (background), 0.4 (the cell) and 0.9 (the class-specific part), which the default
        thresholds put in bands 0, 1 and 2.
    thresholds : sequence of four floats, default=(-0.7, -0.3, 0.3, 0.7)
        Band thresholds of the map (:data:`EARLY_THRESHOLDS` are those of the reference's
        version-1 code, the paper's arXiv version).
    ground_truth_thresholds : sequence of four floats, default=(-0.7, -0.3, 0.3, 0.7)
    soft_steps : int, optional
        Number of threshold sets of the soft sweep; ``None`` scores the given thresholds only.
    soft_delta : float, default=0.005
    clamp : pair of floats (low, high), optional
        Clip every attribution value (each channel's) to ``[low, high]`` before step 1: the
        reference's clamped setting (``XAI_SETTING_0002``: its ``fiveband_score`` in
        ``xai_basic/legacy/srcV1/pipeline/eval/eval_metrics.py`` clips the ``(C, H, W)`` map,
        ``clamp_then_sum_pixels_over_channels``), :data:`REFERENCE_CLAMP` = ``(-0.1, 0.1)`` with
        :data:`CLAMPED_THRESHOLDS`, ``soft_steps=41``, ``soft_delta=0.01``. The bounds are in the
        attribution's own units, so the clamped scores depend on its scale (ten times the map
        clips more of it), which the unclamped ones do not: they compare methods whose maps are
        on one scale. A map within the bounds everywhere scores as without ``clamp``; a map
        clipped at both bounds on most of its pixels has its large values tied, and its bands
        tell little more than the sign. ``low <= 0 <= high``, so a pixel without attribution
        stays zero. ``None`` (default) clips nothing.

    Returns
    -------
    dict of str to Tensor
        ``pixel_accuracy``, ``precision``, ``recall``, ``fpr``: float64 ``[N]``, or ``[N, K]``
        with ``soft_steps=K``.

    Examples
    --------
    >>> import torch
    >>> truth = torch.tensor([[[0.0, 0.4], [0.9, 0.0]]])
    >>> scores = five_band_scores(truth.clone(), truth)  # the map's max is 0.9: 0.4 -> 0.44
    >>> {name: round(float(value), 4) for name, value in scores.items()}
    {'pixel_accuracy': 1.0, 'precision': 1.0, 'recall': 1.0, 'fpr': 0.0}
    """
    gt_thresholds = _check_thresholds("ground_truth_thresholds", ground_truth_thresholds)
    sets = five_band_threshold_sets(thresholds, soft_steps, soft_delta)
    clamp = _check_clamp(clamp)
    scores = _five_band_with_sets(attribution, ground_truth, sets, gt_thresholds, clamp)
    if soft_steps is None:
        scores = {name: value[:, 0] for name, value in scores.items()}
    return scores


def _five_band_with_sets(
    attribution, ground_truth, sets: Tensor, gt_thresholds, clamp: tuple[float, float] | None = None
) -> dict:
    """``five_band_scores`` (``[N, K]`` each) for checked threshold sets (and a checked
    ``clamp``), computed once by a metric rather than on every batch."""
    # finiteness is read from the largest magnitudes (here and in _normalised_heatmap)
    given = attribution  # its shape as given, for the messages
    attribution = _as_maps("attribution", attribution, dtype=None, finite=False)
    attribution = attribution.to(_scoring_dtype(attribution))
    truth = _as_maps("ground_truth", ground_truth, allow_channels=False, dtype=None, finite=False)
    truth = truth.to(_scoring_dtype(truth))
    _check_spatial("ground_truth", ground_truth, "attribution", given)
    low, high = torch.aminmax(truth)
    largest = float(torch.maximum(-low, high))
    if not np.isfinite(largest):
        check_finite("ground_truth", truth)
    if -1 <= gt_thresholds[0] and gt_thresholds[-1] <= 1:
        # heatmaps kept as 8-bit images (0/102/230) would all fall in the top band, silently
        if largest > 1 + 1e-6:
            raise ValueError(
                "ground_truth must hold heatmaps on the scale of ground_truth_thresholds, "
                "within [-1, 1] here (Tjoa & Guan's hold 0, 0.4 and 0.9); got values up to "
                f"{largest:g}: divide 8-bit heatmaps by 255, or give ground_truth_thresholds "
                "on their scale."
            )
    if clamp is not None:
        # checked first: clipping would turn an infinity into a bound (and hide it)
        check_finite("attribution", attribution)
        # in the scoring dtype, the bounds rounded to it, as numpy clips a float32 array with
        # Python floats; a fresh tensor (the caller's attribution is left as it is)
        attribution = attribution.clamp(min=clamp[0], max=clamp[1])
    heatmap = _normalised_heatmap(attribution)
    confusion = band_confusion(heatmap, truth.flatten(1), sets, gt_thresholds)
    return scores_from_confusion(confusion)


# --------------------------------------------------------------------------- localisation
def localisation_score(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of each map's mass that falls inside its ground-truth mask, ``[N]``.

    The mass of a pixel is the magnitude of the map there, summed over channels
    (``sum_c |a_c|``); the score is ``sum(mass * mask) / sum(mass)``: 1 when all of the map lies
    inside the mask, the mask's share of the image for a uniform map. A map that is zero
    everywhere carries no information about where the evidence is and scores the mask's share
    (chance), as a uniform map does. This "energy inside the box" form is the pointing-game
    family's soft variant (Wang et al., Score-CAM, 2020); Han et al. (2023) compare loss-gradient
    maps (after Tsipras et al., 2019) by eye, this puts a number on them.

    Parameters
    ----------
    maps : Tensor
        ``[N, C, H, W]`` or ``[N, H, W]`` attributions or gradients (signs are ignored).
    masks : Tensor
        Binary ``[N, H, W]`` or ``[N, 1, H, W]`` masks of the region that should hold the
        evidence (the object, the signal block, the class-specific part).

    Returns
    -------
    Tensor
        float64 ``[N]`` in ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    >>> mask[:, :2] = True
    >>> localisation_score(torch.ones(1, 4, 4), mask).tolist()
    [0.5]
    """
    # finiteness is read from the masses' sums (a NaN or infinity in a map makes its sum so)
    given = maps  # its shape as given, for the messages
    maps = _as_maps("maps", maps, dtype=None, finite=False)
    mask = _as_mask("masks", masks, "maps", given).flatten(1)
    # each pixel's mass in the maps' precision, float32 for the half types (whose channels may
    # overflow their own range), as numpy sums a float32 map's channels; the masses are added up
    # in float64. A float64 mass per pixel cost twice the memory traffic for digits below the
    # float32 rounding of the map itself.
    mass = _channel_sum(maps, _scoring_dtype(maps), absolute=True)
    total = mass.sum(1, dtype=torch.float64)
    overflow = ~torch.isfinite(total)
    if bool(overflow.any()):
        check_finite("maps", maps)
        # maps near their dtype's largest value: their sums overflow, their shares do not.
        # Those images (only) are scaled by their largest value first, in float64.
        peak = maps.abs().flatten(1).amax(1).to(torch.float64)
        scale = torch.where(overflow, peak, 1.0)
        scaled = (maps.to(torch.float64) / scale[:, None, None, None]).abs().sum(1).flatten(1)
        mass = torch.where(overflow[:, None], scaled, mass)
        total = mass.sum(1)
    inside = mass.mul_(mask).sum(1, dtype=torch.float64)  # mass is no longer needed: in place
    chance = mask.sum(1, dtype=torch.float64) / mask.shape[1]
    return torch.where(total > 0, inside / torch.where(total > 0, total, 1.0), chance)


# ---------------------------------------------------------------------------- agreement
def _sort_keys(values: Tensor) -> tuple[Tensor, int] | None:
    """Unique int64 keys that sort as ``values`` (rows of float32 or narrower) with ties in index
    order: the float's bits made monotone (``-0.0`` taken as ``0.0``) above the column index.
    ``None`` when they do not fit (float64 values, or more than ``2**31`` columns)."""
    columns = values.shape[1]
    if values.dtype not in (torch.float32, torch.float16, torch.bfloat16) or columns > 2**31:
        return None
    bits = (values.to(torch.float32) + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into 0.0
    monotone = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).to(torch.int64) + 2**31  # 0 .. 2**32 - 1
    shift = max(1, (columns - 1).bit_length())
    index = torch.arange(columns, device=values.device)
    return (monotone << shift) | index, shift


def _sorted_runs(values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The stable ascending order of each row and, at each sorted position, the first sorted
    position and the length of its run of equal values (all int64 ``[rows, columns]``)."""
    columns = values.shape[1]
    keyed = _sort_keys(values)
    if keyed is None:
        ordered, order = values.sort(dim=1, stable=True)
        differs = ordered[:, 1:] != ordered[:, :-1]
    else:
        keys, shift = keyed
        keys = keys.sort(dim=1).values
        order = keys & ((1 << shift) - 1)
        monotone = keys >> shift
        differs = monotone[:, 1:] != monotone[:, :-1]
    starts = torch.ones(order.shape, dtype=torch.bool, device=order.device)
    starts[:, 1:] = differs
    ends = torch.ones_like(starts)
    ends[:, :-1] = differs
    positions = torch.arange(columns, device=order.device).expand_as(order)
    first = torch.where(starts, positions, 0).cummax(1).values
    last = torch.where(ends, positions, columns).flip(1).cummin(1).values.flip(1)
    return order, first, last - first + 1


def _numpy_runs(values: Tensor, count: int, *, nonnegative: bool = False):
    """``_sorted_runs`` and ``_top_shares`` of float32 (or narrower) rows on the CPU, with numpy
    mostly in place: numpy's vectorised sort of 64-bit integers is several times faster than
    torch's sort, and on maps of a few MB fresh memory costs about as much as the arithmetic.
    Ranks come from sorted positions, corrected on runs of ties only. The keys are
    ``_sort_keys``' built in place (about 2 ms less per 64 maps of 64 x 64 than building them
    with torch). Returns the flat index (row offset included) of each sorted position's pixel,
    the pixel's centred doubled mean rank (int64), and the top pixels' flat indices and shares
    (``_top_shares``). ``nonnegative=True`` promises values that are all ``+0.0`` or above (sums
    of magnitudes: no ``-0.0``, no NaN), whose bits already sort as the floats do."""
    rows, columns = values.shape
    shift = max(1, (columns - 1).bit_length())
    if nonnegative:
        keys = values.to(torch.float32).numpy().view(np.int32).astype(np.int64)
    else:
        bits = (values.to(torch.float32) + 0.0).numpy().view(np.int32)  # + 0.0: -0.0 -> 0.0
        keys = np.empty((rows, columns), dtype=np.int64)
        np.right_shift(bits, 31, out=keys)  # the float's bits made monotone, as in _sort_keys
        np.bitwise_and(keys, 0x7FFFFFFF, out=keys)
        np.bitwise_xor(keys, bits, out=keys)
        keys += 2**31
    keys <<= shift
    keys |= np.arange(columns, dtype=np.int64)
    keys.sort(axis=1)
    order = keys & ((1 << shift) - 1)
    order += (np.arange(rows, dtype=np.int64) * columns)[:, None]
    keys >>= shift  # the monotone values, sorted
    # the run of equal values holding the cut, per row: its first and last sorted positions
    cut = columns - count
    at_cut = keys[:, cut : cut + 1]
    first = cut - (keys[:, :cut] == at_cut).sum(1)
    last = cut + (keys[:, cut + 1 :] == at_cut).sum(1)
    # shares of the top places from the earliest such run on (ties at the cut share the places
    # left to them); 1 above the run, 0 below it
    tail = int(first.min())
    spot = np.arange(tail, columns, dtype=np.int64)
    left = (count - (columns - 1 - last)) / (last - first + 1)
    shares = np.where(
        spot > last[:, None], 1.0, np.where(spot >= first[:, None], left[:, None], 0.0)
    )
    top = order[:, tail:].copy()
    # pairs of equal neighbours (flat index of the left one); without ties, twice the mean rank
    # of sorted position j is 2 j, and a run of ties takes its first + last position instead
    pairs = np.flatnonzero(keys[:, 1:] == keys[:, :-1])
    pairs += pairs // (columns - 1)  # from [rows, columns - 1] to [rows, columns] flat indices
    centred = keys.reshape(-1)
    np.multiply(np.arange(columns, dtype=np.int64), 2, out=keys)
    keys -= columns - 1
    if pairs.size:
        breaks = np.flatnonzero(np.diff(pairs) != 1)
        run_first = pairs[np.r_[0, breaks + 1]]
        run_last = pairs[np.r_[breaks, pairs.size - 1]] + 1
        value = run_first % columns + run_last % columns - (columns - 1)
        lengths = run_last - run_first + 1
        members = np.repeat(run_first - np.cumsum(lengths) + lengths, lengths)
        members += np.arange(members.size, dtype=np.int64)
        centred[members] = np.repeat(value, lengths)
    return order, keys, top, shares


def _top_shares(order: Tensor, first: Tensor, length: Tensor, count: int):
    """The pixels that may be among a row's ``count`` highest places (``[rows, m]`` indices) and
    their shares of those places (float64; each row's shares sum to ``count``).

    A run of equal values that straddles the cut shares the places left to it equally: the
    probability that a pixel is among the top ``count`` when ties are broken at random. Only the
    sorted positions from the start of the earliest run holding the cut on are returned.
    """
    cut = order.shape[1] - count
    tail = int(first[:, cut].min())
    first, length = first[:, tail:], length[:, tail:]
    above = (first + length - first.clamp(min=cut)).clamp(min=0).to(torch.float64)
    return order[:, tail:], above / length.to(torch.float64)


def _rank_correlation(a: tuple[Tensor, Tensor, Tensor], b: tuple[Tensor, Tensor, Tensor]):
    """Spearman's correlation per row from two rows' ``_sorted_runs``: the Pearson correlation
    of mean ranks, as twice the centred mean ranks (``2 first + length - columns``, integers
    whose sum is 0), so that the sums are exact in float64; 0 for a constant row."""
    (order_a, first_a, length_a), (order_b, first_b, length_b) = a, b
    columns = order_a.shape[1]
    centred_a = (2 * first_a + length_a - columns).to(torch.float64)
    centred_b = (2 * first_b + length_b - columns).to(torch.float64)
    # a's rank of the pixel at each of b's sorted positions
    ranks_a = torch.empty_like(centred_a).scatter_(1, order_a, centred_a).gather(1, order_b)
    covariance = (ranks_a * centred_b).sum(1)
    denominator = (centred_a.square().sum(1) * centred_b.square().sum(1)).sqrt()
    correlation = covariance / torch.where(denominator > 0, denominator, 1.0)
    return torch.where(denominator > 0, correlation.clamp(-1.0, 1.0), 0.0)


def _agreement_parts(
    pixels_a: Tensor, pixels_b: Tensor, count: int, *, use_numpy=None, nonnegative=False
):
    """Per row: Spearman's correlation of two rows of pixels, and the expected size of the
    intersection of their top ``count`` pixels (ties broken at random, independently).
    ``use_numpy`` (default: float32 or narrower rows on the CPU) takes ``_numpy_runs``
    (``nonnegative``: sums of magnitudes, see there)."""
    if use_numpy is None:
        narrow = (torch.float32, torch.float16, torch.bfloat16)
        use_numpy = (
            pixels_a.device.type == "cpu"
            and pixels_a.dtype in narrow
            and pixels_b.dtype in narrow
            and pixels_a.shape[1] <= 2**31
        )
    if not use_numpy:
        runs_a, runs_b = _sorted_runs(pixels_a), _sorted_runs(pixels_b)
        spearman = _rank_correlation(runs_a, runs_b)
        top_a, shares_a = _top_shares(*runs_a, count)
        top_b, shares_b = _top_shares(*runs_b, count)
        dense_a = shares_a.new_zeros(runs_a[0].shape).scatter_(1, top_a, shares_a)
        return spearman, (dense_a.gather(1, top_b) * shares_b).sum(1)
    order_a, centred_a, top_a, shares_a = _numpy_runs(pixels_a, count, nonnegative=nonnegative)
    order_b, centred_b, top_b, shares_b = _numpy_runs(pixels_b, count, nonnegative=nonnegative)
    # a's centred rank of the pixel at each of b's sorted positions; the sums of products of
    # ranks are below columns**3, exact in int64 up to 2**21 pixels (float64 above). np.put and
    # np.take: faster than assignment and reading through an index array
    exact = np.int64 if centred_a.shape[1] <= 2**21 else np.float64
    centred_a, centred_b = centred_a.astype(exact, copy=False), centred_b.astype(exact, copy=False)
    ranks_a = np.empty(order_a.size, dtype=exact)
    np.put(ranks_a, order_a, centred_a)
    at_b = np.take(ranks_a, order_b)
    covariance = np.einsum("ij,ij->i", at_b, centred_b).astype(np.float64)
    squares_a = np.einsum("ij,ij->i", centred_a, centred_a).astype(np.float64)
    squares_b = np.einsum("ij,ij->i", centred_b, centred_b).astype(np.float64)
    denominator = np.sqrt(squares_a * squares_b)
    correlation = np.where(
        denominator > 0, (covariance / np.where(denominator > 0, denominator, 1.0)), 0.0
    ).clip(-1.0, 1.0)
    dense_a = np.zeros(order_a.size, dtype=np.float64)
    np.put(dense_a, top_a, shares_a)
    intersection = np.einsum("ij,ij->i", np.take(dense_a, top_b), shares_b)
    return torch.from_numpy(correlation), torch.from_numpy(intersection)


def _channel_sum(maps: Tensor, dtype: torch.dtype, *, absolute: bool) -> Tensor:
    """``[N, C, H, W]`` -> ``[N, H * W]``: the sum of the channels' magnitudes (or of the
    channels) in ``dtype``, added one after the other as numpy's sum over the channel axis
    does, into one fresh tensor (no copy of the maps)."""
    # abs() gives a fresh tensor; the signed first channel is copied (never added into)
    total = maps[:, 0].abs().to(dtype) if absolute else maps[:, 0].to(dtype, copy=True)
    scratch = torch.empty_like(maps[:, 0]) if absolute and maps.shape[1] > 1 else None
    for channel in range(1, maps.shape[1]):
        total += torch.abs(maps[:, channel], out=scratch) if absolute else maps[:, channel]
    return total.flatten(1)


def _finite_pixels(name: str, maps: Tensor, *, absolute: bool) -> Tensor:
    """:func:`_channel_sum` of ``maps`` in float32 at least, which must be finite. A NaN or
    infinity in a map makes the sum of its pixels non-finite, so the maps themselves are checked
    only when that sum is not finite; finite maps whose channel sums overflow their precision
    (float32 values near 3e38) are summed in float64 instead, which would otherwise turn
    different pixels into tied infinities."""
    pixels = _channel_sum(maps, _scoring_dtype(maps), absolute=absolute)
    if not bool(torch.isfinite(pixels.sum())):
        check_finite(name, maps)
        if not bool(torch.isfinite(pixels).all()):
            pixels = _channel_sum(maps, torch.float64, absolute=absolute)
    return pixels


def attribution_agreement(
    a: Tensor, b: Tensor, *, top_k: float = 0.1, absolute: bool = True
) -> dict[str, Tensor]:
    """How alike two attribution maps of the same images are, per image.

    Both maps are first reduced to one importance per pixel: ``sum_c |a_c|`` (``absolute=True``)
    or the signed channel sum, in the maps' precision (float32 for float32, float16 and
    bfloat16 maps): pixels whose sums round to the same float32 tie, as they would for
    ``scipy.stats.spearmanr`` on those sums; pass float64 maps to separate them. Then, per
    image:

    * ``spearman``: Spearman's rank correlation of the two maps over the pixels (ties get their
      mean rank, as in ``scipy.stats.spearmanr``; a constant map has no ranking and scores 0);
    * ``top_k_iou``: intersection over union of the ``k = round(top_k * pixels)`` (at least one)
      most important pixels of each map. Equal values that straddle the k-th place share the
      places left equally (each such pixel counts as the fraction of the tie that fits), and the
      intersection is the sum over pixels of the two maps' shares: its expected size when ties
      are broken at random, independently in each map. Ties are thus never taken for agreement:
      two maps that are constant (or zero) everywhere score the chance level
      ``k / (2 pixels - k)`` (0.053 for ``top_k=0.1``), as do two independent maps on average;
      ``IoU = I / (2k - I)``.

    Both are 1 for identical maps (``top_k_iou`` when no tie straddles the k-th place) and
    unchanged by a positive rescaling of either map. Used to
    ask whether a student explains its decisions as its teacher does (the same attribution
    method applied to both on the same inputs); the pair of measures follows the explanation-
    agreement literature (Krishna et al., "The disagreement problem in explainable ML", 2022:
    rank correlation and feature agreement of the top-k), with one difference: their feature
    agreement is the share of the top-k held in common, ``I / k``; ``top_k_iou`` is the
    intersection over the union, ``I / (2k - I)``, lower for a partial overlap (an agreement
    of 0.5 is an IoU of 1/3; ``I / k = 2 IoU / (1 + IoU)`` converts one to the other).

    Parameters
    ----------
    a, b : Tensor
        Maps of the same shape, ``[N, C, H, W]`` or ``[N, H, W]``.
    top_k : float, default=0.1
        Fraction of pixels, in ``(0, 1]``, compared by ``top_k_iou``.
    absolute : bool, default=True
        Compare magnitudes (``True``) or signed values.

    Returns
    -------
    dict of str to Tensor
        ``spearman`` and ``top_k_iou``, float64 ``[N]``.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(2, 3, 8, 8)
    >>> {k: v.tolist() for k, v in attribution_agreement(a, 2 * a).items()}
    {'spearman': [1.0, 1.0], 'top_k_iou': [1.0, 1.0]}
    """
    top_k = check_real("top_k", top_k, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    if not isinstance(absolute, bool):
        fail("absolute", "a bool", absolute, TypeError)
    maps_a = _as_maps("a", a, dtype=None, finite=False)
    maps_b = _as_maps("b", b, dtype=None, finite=False)
    if maps_a.shape != maps_b.shape:
        fail("b", f"of the shape of a, {tuple(a.shape)}", tuple(b.shape))
    # channels reduced, and pixels ordered, in the input's precision (float32 for float16 and
    # bfloat16, whose sums would round or overflow); ranks and scores in float64
    pixels_a, pixels_b = (
        _finite_pixels(name, maps, absolute=absolute)
        for name, maps in (("a", maps_a), ("b", maps_b))
    )
    count = max(1, round(top_k * pixels_a.shape[1]))
    spearman, intersection = _agreement_parts(pixels_a, pixels_b, count, nonnegative=absolute)
    return {"spearman": spearman, "top_k_iou": intersection / (2 * count - intersection)}
