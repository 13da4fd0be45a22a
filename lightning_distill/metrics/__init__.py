"""torchmetrics metrics of interpretability."""

from lightning_distill.metrics.dissection import (
    DissectionResults,
    NetworkDissection,
    ThresholdsNotSetError,
)

__all__ = ["DissectionResults", "NetworkDissection", "ThresholdsNotSetError"]
