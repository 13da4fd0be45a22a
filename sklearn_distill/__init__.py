"""Distill-and-Compare for scikit-learn: GAM mimics of black-box scores and their audit.

Importing this package never imports torch.
"""

from sklearn_distill.audit import CompareAudit
from sklearn_distill.gam import DistilledGAM
from sklearn_distill.tree import DistilledTree

__all__ = ["CompareAudit", "DistilledGAM", "DistilledTree"]

__version__ = "0.1.0.dev0"
