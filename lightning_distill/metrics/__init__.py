"""torchmetrics metrics of interpretability, where torchmetrics users look for them.

Each metric lives with its capability and has a pure function in
:mod:`lightning_distill.functional`.
"""

from lightning_distill.attribution.metrics import (
    AttributionAgreement,
    AttributionLocalisation,
    FiveBandScore,
)
from lightning_distill.dissection.metric import (
    DissectionResults,
    NetworkDissection,
    ThresholdsNotSetError,
)

__all__ = [
    "AttributionAgreement",
    "AttributionLocalisation",
    "DissectionResults",
    "FiveBandScore",
    "NetworkDissection",
    "ThresholdsNotSetError",
]
