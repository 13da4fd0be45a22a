"""Former home of :class:`DistillationModule`; kept so old imports work. Use :mod:`lightning_distill.kd`."""

from lightning_distill.kd.module import DistillationModule, FeatureDistillation

__all__ = ["DistillationModule", "FeatureDistillation"]
