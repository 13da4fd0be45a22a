"""Interpretability evaluations that retrain models, where the literature's users look for them.

Re-exports :func:`lightning_distill.attribution.diff_roar` (its home is the attribution
capability).
"""

from lightning_distill.attribution.diff_roar import diff_roar

__all__ = ["diff_roar"]
