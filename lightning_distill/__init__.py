"""Knowledge distillation, network dissection and adaptive wavelet distillation for Lightning."""

from lightning_distill.callbacks.kd import KnowledgeDistillation
from lightning_distill.features import FeatureHooks
from lightning_distill.module import DistillationModule, FeatureDistillation

__all__ = [
    "DistillationModule",
    "FeatureDistillation",
    "FeatureHooks",
    "KnowledgeDistillation",
]

__version__ = "0.1.0.dev0"
