"""Knowledge distillation, network dissection and adaptive wavelet distillation for Lightning."""

from lightning_distill.hooks import FeatureHooks
from lightning_distill.kd.callback import KnowledgeDistillation
from lightning_distill.kd.module import DistillationModule, FeatureDistillation

__all__ = [
    "DistillationModule",
    "FeatureDistillation",
    "FeatureHooks",
    "KnowledgeDistillation",
]

__version__ = "0.1.0.dev0"
