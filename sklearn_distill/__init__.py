"""Distill-and-Compare for scikit-learn: GAM mimics of black-box scores and their audit.

Importing this package never imports torch.
"""

__version__ = "0.1.0.dev0"

from sklearn_distill.audit import CompareAudit  # noqa: F401
from sklearn_distill.gam import DistilledGAM  # noqa: E402
