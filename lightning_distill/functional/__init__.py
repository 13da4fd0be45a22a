"""Pure tensor functions behind the library's metrics (no state, no I/O)."""

from lightning_distill.attribution.functional import (
    attribution_agreement,
    five_band_scores,
    localisation_score,
)
from lightning_distill.dissection.functional import (
    NETDISSECT_QUANTILE,
    HistogramLayout,
    LogBuckets,
    activation_histogram,
    best_concepts,
    coarse_histogram,
    dissection_iou,
    dissection_tally,
    histogram_quantile,
    quantile_windows,
    two_level_quantile,
    upsample_activations,
    window_histogram,
)

__all__ = [
    "NETDISSECT_QUANTILE",
    "HistogramLayout",
    "LogBuckets",
    "activation_histogram",
    "attribution_agreement",
    "best_concepts",
    "coarse_histogram",
    "dissection_iou",
    "dissection_tally",
    "five_band_scores",
    "histogram_quantile",
    "localisation_score",
    "quantile_windows",
    "two_level_quantile",
    "upsample_activations",
    "window_histogram",
]
