"""Network dissection (Bau et al., CVPR 2017): which hidden units detect which concepts.

* :mod:`~lightning_distill.dissection.functional`: histograms, thresholds, tallies, IoU (pure).
* :class:`~lightning_distill.dissection.metric.NetworkDissection`: the ``torchmetrics.Metric``.
* :class:`~lightning_distill.dissection.monitor.DissectionMonitor`: the Lightning callback.
* :mod:`~lightning_distill.dissection.plotting`: unit grids and per-category bar charts.
* :class:`~lightning_distill.dissection.synthetic.SyntheticConcepts` and
  :class:`~lightning_distill.dissection.broden.BrodenDataset`: concept-labelled probe data.
"""

from lightning_distill.dissection.broden import BrodenDataset, decode_label_png
from lightning_distill.dissection.metric import (
    DissectionResults,
    NetworkDissection,
    ThresholdsNotSetError,
)
from lightning_distill.dissection.monitor import DissectionMonitor
from lightning_distill.dissection.plotting import plot_category_counts, plot_unit_grid
from lightning_distill.dissection.synthetic import SyntheticConcepts

__all__ = [
    "BrodenDataset",
    "DissectionMonitor",
    "DissectionResults",
    "NetworkDissection",
    "SyntheticConcepts",
    "ThresholdsNotSetError",
    "decode_label_png",
    "plot_category_counts",
    "plot_unit_grid",
]
