"""Attribution-based interpretability: five-band scores, localisation, agreement, DiffROAR.

* :mod:`~lightning_distill.attribution.functional`: the scores as pure functions.
* :mod:`~lightning_distill.attribution.metrics`: the same as ``torchmetrics.Metric`` objects.
* :mod:`~lightning_distill.attribution.methods`: loss gradients and Captum attributions under
  the right grad and eval modes.
* :func:`~lightning_distill.attribution.diff_roar.diff_roar`: remove-and-retrain from both ends.
* :class:`~lightning_distill.attribution.monitor.AttributionMonitor`: the Lightning callback.
* :func:`~lightning_distill.attribution.plotting.plot_attribution_maps`: inputs beside maps.
* :mod:`~lightning_distill.attribution.datasets`: synthetic cells and digit blocks with known
  evidence.

Captum and matplotlib are imported on first use only.
"""

from lightning_distill.attribution.datasets import DigitBlocks, SyntheticCells
from lightning_distill.attribution.diff_roar import diff_roar
from lightning_distill.attribution.functional import (
    attribution_agreement,
    five_band_scores,
    localisation_score,
)
from lightning_distill.attribution.methods import attribute, loss_gradient
from lightning_distill.attribution.metrics import (
    AttributionAgreement,
    AttributionLocalisation,
    FiveBandScore,
)
from lightning_distill.attribution.monitor import AttributionMonitor

__all__ = [
    "AttributionAgreement",
    "AttributionLocalisation",
    "AttributionMonitor",
    "DigitBlocks",
    "FiveBandScore",
    "SyntheticCells",
    "attribute",
    "attribution_agreement",
    "diff_roar",
    "five_band_scores",
    "localisation_score",
    "loss_gradient",
]
