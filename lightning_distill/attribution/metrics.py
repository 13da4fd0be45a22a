"""Attribution scores as ``torchmetrics.Metric`` objects: per-image scores averaged over images.

Every state is a fixed-size float64 sum (or an int64 count) reduced by ``sum``, so memory does not
grow with the data, the result does not depend on how the images are split into batches, and
under DDP it equals that of one process (up to the order of float64 additions).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_distill._metric_states import DtypeKeepingMetric
from lightning_distill._validation import (
    check_choice,
    check_integer,
    check_real,
    fail,
    refuse_fixed_setting,
)
from lightning_distill.attribution.functional import (
    _SCORES,
    DEFAULT_THRESHOLDS,
    _check_clamp,
    _check_thresholds,
    _five_band_with_sets,
    attribution_agreement,
    five_band_threshold_sets,
    localisation_score,
)

__all__ = ["AttributionAgreement", "AttributionLocalisation", "FiveBandScore"]


def _columns(scores: Tensor) -> Tensor:
    """Per-image scores as ``[images, columns]`` (one column for ``[images]``), none too."""
    return scores.unsqueeze(-1) if scores.ndim == 1 else scores


class _MeanOfScores(DtypeKeepingMetric):
    """Sums of per-image scores and the number of images; ``compute`` gives their means."""

    is_differentiable = False
    full_state_update = False
    score_names: tuple[str, ...] = ()

    def _add_score_states(self, columns: int = 1) -> None:
        self.add_state(
            "score_sum",
            torch.zeros(len(self.score_names), columns, dtype=torch.float64),
            dist_reduce_fx="sum",
        )
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self._add_configuration_state()
        # the sums of the scores' squares, for std(): sums, so that a sync or a merge adds
        # them as it adds the sums
        self.add_state("score_square_sum", torch.zeros_like(self.score_sum), dist_reduce_fx="sum")

    _prepared: tuple | None = None  # (the batch, its scores) while forward runs
    #: states added after the metric's first release, unknown (NaN) in a state saved before
    #: them that holds images
    _later_states: tuple[str, ...] = ("score_square_sum",)

    def _scores(self, *args: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Every score of a batch, per image (checks the batch)."""
        raise NotImplementedError

    def update(self, *args: Tensor) -> None:
        prepared = self._prepared
        if prepared is not None and len(prepared[0]) == len(args):
            if all(a is b for a, b in zip(prepared[0], args)):
                self._accumulate(prepared[1])  # scored (and checked) by forward already
                return
        self._accumulate(self._scores(*args))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """torchmetrics' ``forward`` (the batch's value, and the batch added to the states), the
        batch checked first: torchmetrics resets the states before it updates on the batch, so
        a batch refused there had lost every batch accumulated before it. Scored once."""
        try:
            bound = inspect.signature(self._scores).bind(*args, **kwargs)
        except TypeError:  # torchmetrics' update call gives the error, as before
            return super().forward(*args, **kwargs)
        bound.apply_defaults()  # as update passes them: the batch is recognised there
        batch = bound.args
        self._prepared = (batch, self._scores(*batch))  # raises before any state changes
        try:
            return super().forward(*args, **kwargs)
        finally:
            self._prepared = None

    def _kept(self, scores: dict[str, Tensor], keep: Tensor | None) -> dict[str, Tensor]:
        """The scores of the images where ``keep`` (checked: a bool ``[images]`` tensor) is
        true; all of them for ``keep=None``."""
        if keep is None:
            return scores
        first = scores[self.score_names[0]]
        keep = _check_keep(keep, len(first)).to(first.device)
        return {name: value[keep] for name, value in scores.items()}

    def _accumulate(self, scores: dict[str, Tensor]) -> None:
        # [score, image, column], in float64 (the scores are): the sums of squares must be
        # those of the values summed, or their difference in std() is the rounding's
        stacked = torch.stack([_columns(scores[name]) for name in self.score_names])
        stacked = stacked.to(torch.float64)
        self.score_sum += stacked.sum(1).to(self.score_sum)
        self.score_square_sum += stacked.square().sum(1).to(self.score_square_sum)
        self.count += stacked.shape[1]

    def _fill_later_states(self, states: dict, prefix: str = "", names=None) -> None:
        """Add to ``states`` (saved states, keys after ``prefix``) each of ``names`` (the later
        states) it lacks: saved before they were states, its images' spreads (and bests) are
        unknown, NaN, unless it holds no image (zero). A dict without ``score_sum`` is left
        for the caller to refuse."""
        if not isinstance(states.get(prefix + "score_sum"), Tensor):
            return
        count = states.get(prefix + "count")
        empty = isinstance(count, Tensor) and int(count) == 0
        for name in self._later_states if names is None else names:
            if prefix + name not in states:
                states[prefix + name] = torch.full_like(
                    self._defaults[name], 0.0 if empty else float("nan")
                )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # (a copy of the caller's dict: torch's load_state_dict copies it)
        persistent = [name for name in self._later_states if self._persistent.get(name)]
        self._fill_later_states(state_dict, prefix, persistent)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def merge_state(self, incoming_state) -> None:
        """torchmetrics' ``merge_state`` (the base's settings check included); a dict of states
        kept from before the later states (the sums of squares behind :meth:`std`, and
        ``FiveBandScore``'s per-image bests) merges as ``load_state_dict`` reads it: those
        unknown (NaN) unless it holds no image. The caller's dict is left as it is."""
        if isinstance(incoming_state, dict):
            incoming_state = dict(incoming_state)
            self._fill_later_states(incoming_state)
        super().merge_state(incoming_state)

    def _warn_before_update(self, method: str, what: str, stacklevel: int = 3) -> None:
        """Warn, as torchmetrics does for ``compute``, when ``method`` reads states that no
        update has added to; called on the synced states, so that states merged or loaded into
        the metric (images, though no update) pass silently. On global rank zero only, as
        torchmetrics warns: every process reads the same synced states and would say the same."""
        if self.update_count == 0 and int(self.count) == 0:
            rank_zero_warn(
                f"The ``{method}`` method of metric {type(self).__name__} was called before the "
                f"``update`` method: there are no scores to average, and {what} NaN.",
                category=UserWarning,
                # rank_zero_warn's own three frames (its rank check, itself, its warn)
                stacklevel=stacklevel + 3,
            )

    def _means(self) -> Tensor:
        if self.update_count > 0 and int(self.count) == 0:
            # torchmetrics counts a refused update (one that raised) as an update and warns only
            # before the first one: after refused updates alone the NaN means came silently
            warnings.warn(
                f"{type(self).__name__} has no scores to average: every update since the last "
                "reset was refused (it raised) or kept none of its images (keep), so the means "
                "are NaN.",
                UserWarning,
                stacklevel=3,
            )
        return self.score_sum / self.count

    def _synced(self):
        """The states reduced across processes as :meth:`compute` reads them: torchmetrics'
        sync with the metric's own ``dist_sync_fn`` and ``sync_on_compute`` (a metric built with
        ``sync_on_compute=False`` reads its local states everywhere, and syncs nowhere)."""
        return self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self.sync_on_compute)

    def _spreads(self, ddof, spread_of) -> Any:
        """``spread_of(ddof)`` (its standard deviations from the synced states), ``ddof``
        checked first and the reasons for NaN said: no update yet, no image, too few."""
        ddof = check_integer("ddof", ddof, minimum=0)
        with self._synced():
            self._warn_before_update("std", "the standard deviations are", stacklevel=4)
            if self.update_count > 0 and int(self.count) == 0:
                self._means()  # its warning: every update was refused or kept nothing
            elif 0 < int(self.count) <= ddof:
                warnings.warn(
                    f"std(ddof={ddof}) needs more than {ddof} image"
                    f"{'s' if ddof > 1 else ''}; {type(self).__name__} has {int(self.count)}, "
                    "so the standard deviations are NaN.",
                    UserWarning,
                    stacklevel=3,
                )
            return spread_of(ddof)

    def _score_spreads(self, ddof: int) -> Tensor:
        """``[score, column]`` standard deviations of the scores over images."""
        return _spread(self.score_sum, self.score_square_sum, self.count, ddof)

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """Plot the computed value(s) (torchmetrics' plot: returns ``(fig, ax)``)."""
        return self._plot(val, ax)


#: FiveBandScore's settings, fixed at construction
_FIVE_BAND_SETTINGS = (
    "thresholds",
    "ground_truth_thresholds",
    "soft_steps",
    "soft_delta",
    "clamp",
)
#: the scores whose per-image best over the threshold sets FiveBandScore keeps (the reference's
#: Au, Pu, Ru; it takes no best of the false-positive rate)
_BEST_SCORES = ("pixel_accuracy", "precision", "recall")
#: FiveBandScore's states added after its first release, unknown (NaN) in a state saved before
#: them that holds images: the per-image bests' sums, and the sums of squares behind std()
_LATER_STATES = ("best_sum", "score_square_sum", "soft_square_sum", "best_square_sum")
#: what FiveBandScore.std() gives the spread of: the scores of compute(), curves() or
#: per_image_best()
_SPREAD_OF = ("compute", "curves", "per_image_best")


def _check_keep(keep, images: int) -> Tensor:
    """``keep`` as a bool ``[images]`` tensor (checked, never changed)."""
    constraint = f"a bool tensor of shape [{images}] (one entry per image of the batch)"
    if not isinstance(keep, Tensor):
        fail("keep", constraint, type(keep).__name__, TypeError)
    if keep.dtype != torch.bool:
        # 0/1 integers or probabilities read as a selection could select silently wrongly
        fail("keep", constraint + ", e.g. logits.argmax(1) == labels", keep.dtype, TypeError)
    if tuple(keep.shape) != (images,):
        fail("keep", constraint, tuple(keep.shape))
    return keep


def _spread(sums: Tensor, squares: Tensor, count: Tensor, ddof: int) -> Tensor:
    """Standard deviation from sums and sums of squares over ``count`` values, divided by
    ``count - ddof`` (NaN where that is not positive). The variance is clipped at zero: the
    difference of two float64 sums can round below it when the values are (nearly) equal."""
    n = count.to(torch.float64)
    squared_deviations = (squares - sums * sums / n).clamp(min=0.0)
    divisor = n - ddof
    divisor = torch.where(divisor > 0, divisor, torch.nan)
    return (squared_deviations / divisor).sqrt()


class FiveBandScore(_MeanOfScores):
    """Tjoa & Guan's five-band scores of attribution maps, averaged over images.

    See :func:`lightning_distill.functional.five_band_scores` for the definition (that of the
    authors' reference code). Each image is scored on its own and the per-image scores are
    averaged; :meth:`std` gives their standard deviation over images. An image whose ground
    truth is all zero (the blank class of :class:`~lightning_distill.datasets.SyntheticCells`)
    scores precision = recall = 0 whatever the map, so it lowers the means by its share of the
    images: leave such images out of the probe (or out of the scores, ``keep=``) to read the
    scores as the explainer's.

    The reference's version-1 analysis (``xai_basic/legacy/srcV1/analysis/xai_analysis.py``,
    ``get_stats_across_samples``) reports, per explainer: the means over images of each image's
    mean over the threshold sets (``sAveAmu``, ``sAvePmu``, ``sAveRmu``: :meth:`compute`) and of
    each image's best (``sAveAu``...: :meth:`per_image_best`), each with its standard deviation
    over images, ``np.var(x) ** 0.5`` (``ddof=0``: :meth:`std`); for all test images and for
    the correctly classified ones alone (``sample_mode='only_correct_pred'``: an image whose
    predicted class, the argmax of the model's output, is its label; ``update(..., keep=)``),
    and optionally without the blank class (``exclude_empty``, again ``keep=``).

    Parameters
    ----------
    thresholds : sequence of four floats, default=(-0.7, -0.3, 0.3, 0.7)
    ground_truth_thresholds : sequence of four floats, default=(-0.7, -0.3, 0.3, 0.7)
    soft_steps : int, optional
        With ``K`` steps, :meth:`compute` gives each score's mean over the ``K`` threshold sets
        (the "soft" score), :meth:`curves` the curves (mean over images per set) and
        :meth:`per_image_best` the mean over images of each image's best score over the sets.
        The reference uses 56.
    soft_delta : float, default=0.005
    clamp : pair of floats (low, high), optional
        Clip every attribution value to ``[low, high]`` before the channel sum and the
        normalisation: the reference's clamped setting, ``clamp=(-0.1, 0.1)`` with
        ``thresholds=(-0.9, -0.5, 0.5, 0.9)``, ``soft_steps=41``, ``soft_delta=0.01``
        (:data:`~lightning_distill.attribution.functional.REFERENCE_CLAMP`,
        :data:`~lightning_distill.attribution.functional.CLAMPED_THRESHOLDS`). In the
        attribution's units: see :func:`~lightning_distill.functional.five_band_scores`.
    **kwargs
        Passed to :class:`torchmetrics.Metric`.

    Attributes
    ----------
    threshold_sets : Tensor
        ``[K, 4]`` thresholds of the map, one row per set.

    Examples
    --------
    >>> import torch
    >>> metric = FiveBandScore(soft_steps=56)
    >>> truth = torch.zeros(2, 8, 8)
    >>> truth[:, 2:6, 2:6] = 0.4
    >>> truth[:, 2:4, 2:6] = 0.9
    >>> metric.update(truth.clone(), truth)  # the body, 0.4 / 0.9 = 0.44, leaves band 1 late
    >>> {name: round(float(value), 3) for name, value in metric.compute().items()}
    {'pixel_accuracy': 0.991, 'precision': 0.964, 'recall': 1.0, 'fpr': 0.01}
    >>> [round(v, 6) for v in metric.curves()["precision"][[0, -1]].tolist()]
    [1.0, 0.5]
    >>> {name: round(float(value), 3) for name, value in metric.per_image_best().items()}
    {'pixel_accuracy': 1.0, 'precision': 1.0, 'recall': 1.0}
    >>> float(metric.std()["precision"])  # two identical images: no spread
    0.0

    Scoring the correctly classified images only, as the reference's analysis also does:

    >>> correct = FiveBandScore(soft_steps=56)
    >>> logits, labels = torch.tensor([[2.0, 0.1], [0.3, 0.9]]), torch.tensor([0, 0])
    >>> correct.update(truth.clone(), truth, keep=logits.argmax(1) == labels)
    >>> int(correct.count)
    1
    """

    higher_is_better = None  # fpr is better low, the others high
    score_names = _SCORES
    _later_states = _LATER_STATES

    def __init__(
        self,
        *,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        ground_truth_thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        soft_steps: int | None = None,
        soft_delta: float = 0.005,
        clamp: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        sets = five_band_threshold_sets(thresholds, soft_steps, soft_delta)
        self._ground_truth_thresholds = _check_thresholds(
            "ground_truth_thresholds", ground_truth_thresholds
        )
        self.clamp = _check_clamp(clamp)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.ground_truth_thresholds = tuple(float(t) for t in ground_truth_thresholds)
        self.soft_steps = soft_steps
        self.soft_delta = float(soft_delta)
        self.register_buffer("threshold_sets", sets, persistent=False)
        self._add_score_states(len(sets))
        # per score of _BEST_SCORES, the sum over images of each image's best over the sets
        self.add_state(
            "best_sum", torch.zeros(len(_BEST_SCORES), dtype=torch.float64), dist_reduce_fx="sum"
        )
        # sums of squares over images, for std(): of each image's mean over the sets (the
        # scores compute() averages) and of each image's bests (those of the scores per set
        # are the base's score_square_sum)
        self.add_state(
            "soft_square_sum",
            torch.zeros(len(self.score_names), dtype=torch.float64),
            dist_reduce_fx="sum",
        )
        self.add_state(
            "best_square_sum",
            torch.zeros(len(_BEST_SCORES), dtype=torch.float64),
            dist_reduce_fx="sum",
        )

    def __setattr__(self, name: str, value) -> None:
        # the threshold settings make the states (one row of scores per threshold set) and the
        # buffer the scores read: one set after construction was never read, while the
        # metric's description and identity reported it
        refuse_fixed_setting(
            self,
            name,
            value,
            _FIVE_BAND_SETTINGS,
            "the threshold sets and the states are made from it",
        )
        super().__setattr__(name, value)

    def _identity(self) -> str:
        # what the states depend on: the threshold sets themselves (soft_delta is no longer
        # one of them without soft_steps), not how they were asked for. The clamp only when
        # set: the fingerprint of a metric without it stays that of the states saved before it
        clamp = "" if self.clamp is None else f", clamp={self.clamp}"
        return (
            f"threshold_sets={self.threshold_sets.tolist()}, "
            f"ground_truth_thresholds={self.ground_truth_thresholds}{clamp}"
        )

    def _configuration(self) -> str:
        sets = len(self.threshold_sets)
        clamp = "" if self.clamp is None else f", clamp={self.clamp}"
        return (
            f"thresholds={self.thresholds}, ground_truth_thresholds="
            f"{self.ground_truth_thresholds}, soft_steps={self.soft_steps}, soft_delta="
            f"{self.soft_delta}{clamp}: {sets} threshold set{'s' if sets > 1 else ''}"
        )

    def update(self, attribution: Tensor, ground_truth: Tensor, keep: Tensor | None = None) -> None:
        """Add the scores of a batch of ``[N, C, H, W]`` maps and ``[N, H, W]`` ground truths.

        ``keep``, a bool ``[N]`` tensor, adds only the images where it is true, e.g.
        ``logits.argmax(1) == labels`` for the correctly classified images (the reference's
        ``only_correct_pred``) or ``labels != blank_class``. The whole batch is checked and
        scored either way (an image left out is no cheaper); a batch that keeps no image
        adds none. Keep a second metric without ``keep`` for the scores of all images.
        """
        super().update(attribution, ground_truth, keep)

    def _scores(
        self, attribution: Tensor, ground_truth: Tensor, keep: Tensor | None = None
    ) -> dict[str, Tensor]:
        # the threshold sets are fixed: computed once, in __init__
        scores = _five_band_with_sets(
            attribution,
            ground_truth,
            self.threshold_sets,
            self._ground_truth_thresholds,
            self.clamp,
        )
        return self._kept(scores, keep)

    def _accumulate(self, scores: dict[str, Tensor]) -> None:
        super()._accumulate(scores)
        # [score, image, set]
        stacked = torch.stack([_columns(scores[name]) for name in self.score_names])
        stacked = stacked.to(torch.float64)
        self.soft_square_sum += stacked.mean(-1).square().sum(1).to(self.soft_square_sum)
        best = torch.stack([stacked[self.score_names.index(name)] for name in _BEST_SCORES])
        best = best.amax(-1)  # [score, image]
        self.best_sum += best.sum(1).to(self.best_sum)
        self.best_square_sum += best.square().sum(1).to(self.best_square_sum)

    def curves(self) -> dict[str, Tensor]:
        """Mean score per threshold set, ``[K]`` each (``K = 1`` without ``soft_steps``).

        Under DDP every process must call it (the sums are reduced across processes, as in
        :meth:`compute`).
        """
        with self._synced():
            self._warn_before_update("curves", "the curves are")
            return self._curves()

    def per_image_best(self) -> dict[str, Tensor]:
        """Mean over images of each image's best score over the threshold sets (scalars).

        For each image and each of ``pixel_accuracy``, ``precision`` and ``recall``, the largest
        value over the ``K`` threshold sets, averaged over images: the "best" scores of Tjoa &
        Guan's reference (``Au``, ``Pu``, ``Ru`` per image, averaged over images as its
        ``sAveAu``, ``sAvePu``, ``sAveRu``; its version-1 analysis code,
        ``xai_basic/legacy/srcV1``). Each score's best is taken on its own, so an image's best
        precision and best recall may come from different sets: the three are not the scores of
        one banding. This is not the best of the :meth:`curves` (which average over images
        first, and never exceed these); the false-positive rate has no best here, as in the
        reference. Their standard deviations over images (the reference's ``sStdAu``...):
        ``std("per_image_best")``. Without ``soft_steps`` (one set) it equals :meth:`compute`.

        Under DDP every process must call it (the sums are reduced across processes).
        """
        with self._synced():
            self._warn_before_update("per_image_best", "the means are")
            if self.update_count > 0 and int(self.count) == 0:
                self._means()  # its warning: every update was refused
            return dict(zip(_BEST_SCORES, self.best_sum / self.count))

    def std(self, of: str = "compute", *, ddof: int = 0) -> dict[str, Tensor]:
        """Standard deviation over images of the per-image scores whose mean ``of`` gives.

        * ``"compute"``: of each image's score averaged over the threshold sets (its "soft"
          score; the reference's ``sStdAmu``, ``sStdPmu``, ``sStdRmu``), all four scores,
          scalars;
        * ``"curves"``: of each image's score at each threshold set, ``[K]`` per score;
        * ``"per_image_best"``: of each image's best over the sets (``sStdAu``, ``sStdPu``,
          ``sStdRu``), scalars.

        ``ddof=0`` divides the sum of squared deviations by the number of images ``n``, as the
        reference's ``np.var(x) ** 0.5`` does; ``ddof=1`` by ``n - 1`` (NaN for ``n <= ddof``).
        It is the spread of the images' scores, not the uncertainty of their mean (for images
        drawn independently, that is about ``std(ddof=1) / sqrt(n)``). A large spread
        with a middling mean can be an explainer right on some images and wrong on others, or
        images of unequal difficulty (blank ones score 0): the number does not tell them apart.
        Computed from float64 sums of the scores and of their squares (added under DDP and
        merges as the means' sums are): for scores in ``[0, 1]`` the variance carries a
        rounding error of about ``1e-16`` per update, so a spread below about
        ``1e-8 * sqrt(updates)`` is not resolved (it may read as zero).

        Under DDP every process must call it (the sums are reduced across processes).
        """
        of = check_choice("of", of, _SPREAD_OF)
        return self._spreads(ddof, lambda ddof: self._five_band_spreads(of, ddof))

    def _five_band_spreads(self, of: str, ddof: int) -> dict[str, Tensor]:
        if of == "curves":
            return dict(zip(self.score_names, self._score_spreads(ddof)))
        if of == "compute":
            sums = self.score_sum.mean(-1)  # per score, the sum of the images' soft scores
            spread = _spread(sums, self.soft_square_sum, self.count, ddof)
            return dict(zip(self.score_names, spread))
        return dict(
            zip(_BEST_SCORES, _spread(self.best_sum, self.best_square_sum, self.count, ddof))
        )

    def _curves(self) -> dict[str, Tensor]:
        return dict(zip(self.score_names, self._means()))

    def compute(self) -> dict[str, Tensor]:
        """Mean scores (for a soft sweep: the mean over the threshold sets of the curves)."""
        return {name: curve.mean() for name, curve in self._curves().items()}


class AttributionLocalisation(_MeanOfScores):
    """Mean share of the attribution mass inside ground-truth masks.

    See :func:`lightning_distill.functional.localisation_score`: 1 when maps lie inside the
    masks, the masks' area share for uniform maps, 0 for an empty mask (a blank image of
    :class:`~lightning_distill.datasets.SyntheticCells`: leave those out of the probe).

    Examples
    --------
    >>> import torch
    >>> metric = AttributionLocalisation()
    >>> mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    >>> mask[:, :, :1] = True
    >>> metric.update(torch.ones(2, 4, 4), mask)
    >>> float(metric.compute())
    0.25
    """

    higher_is_better = True
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0
    score_names = ("localisation",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_score_states()

    def update(self, maps: Tensor, masks: Tensor, keep: Tensor | None = None) -> None:
        """Add a batch of ``[N, C, H, W]`` / ``[N, H, W]`` maps and binary ``[N, H, W]`` masks.

        ``keep``, a bool ``[N]`` tensor, adds only the images where it is true (e.g.
        ``logits.argmax(1) == labels``), as in :meth:`FiveBandScore.update`.
        """
        super().update(maps, masks, keep)

    def _scores(self, maps: Tensor, masks: Tensor, keep: Tensor | None = None) -> dict[str, Tensor]:
        return self._kept({"localisation": localisation_score(maps, masks)}, keep)

    def compute(self) -> Tensor:
        return self._means()[0, 0]

    def std(self, *, ddof: int = 0) -> Tensor:
        """Standard deviation over images of the per-image scores :meth:`compute` averages.

        ``ddof=0`` divides by the number of images (numpy's default), ``ddof=1`` by one less;
        the spread of the images' scores, not the uncertainty of their mean. See
        :meth:`FiveBandScore.std`. Under DDP every process must call it.
        """
        return self._spreads(ddof, lambda ddof: self._score_spreads(ddof)[0, 0])


class AttributionAgreement(_MeanOfScores):
    """Agreement of two models' attributions on the same inputs (e.g. teacher and student).

    See :func:`lightning_distill.functional.attribution_agreement`: per image, Spearman's rank
    correlation of the two maps and the IoU of their top ``top_k`` pixels, averaged over images.

    Parameters
    ----------
    top_k : float, default=0.1
    absolute : bool, default=True
    **kwargs
        Passed to :class:`torchmetrics.Metric`.

    Examples
    --------
    >>> import torch
    >>> metric = AttributionAgreement(top_k=0.25)
    >>> teacher_maps = torch.rand(3, 1, 8, 8)
    >>> metric.update(teacher_maps, 3 * teacher_maps)
    >>> {name: float(value) for name, value in metric.compute().items()}
    {'spearman': 1.0, 'top_k_iou': 1.0}
    """

    higher_is_better = True
    score_names = ("spearman", "top_k_iou")

    def __init__(self, top_k: float = 0.1, absolute: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.top_k = check_real("top_k", top_k, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        if not isinstance(absolute, bool):
            fail("absolute", "a bool", absolute, TypeError)
        self.absolute = absolute
        self._add_score_states()

    def _configuration(self) -> str:
        return f"top_k={self.top_k}, absolute={self.absolute}"

    def update(self, a: Tensor, b: Tensor, keep: Tensor | None = None) -> None:
        """Add a batch of paired maps of the same shape (``a``: e.g. the teacher's).

        ``keep``, a bool ``[N]`` tensor, adds only the pairs where it is true (e.g. the images
        the student classifies correctly), as in :meth:`FiveBandScore.update`.
        """
        super().update(a, b, keep)

    def _scores(self, a: Tensor, b: Tensor, keep: Tensor | None = None) -> dict[str, Tensor]:
        scores = attribution_agreement(a, b, top_k=self.top_k, absolute=self.absolute)
        return self._kept(scores, keep)

    def compute(self) -> dict[str, Tensor]:
        return dict(zip(self.score_names, self._means()[:, 0]))

    def std(self, *, ddof: int = 0) -> dict[str, Tensor]:
        """Standard deviation over images of each per-image score :meth:`compute` averages.

        ``ddof=0`` divides by the number of images (numpy's default), ``ddof=1`` by one less;
        the spread of the images' scores, not the uncertainty of their mean. See
        :meth:`FiveBandScore.std`. Under DDP every process must call it.
        """

        def spreads(ddof: int) -> dict[str, Tensor]:
            return dict(zip(self.score_names, self._score_spreads(ddof)[:, 0]))

        return self._spreads(ddof, spreads)
