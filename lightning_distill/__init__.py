"""Knowledge distillation, network dissection and adaptive wavelet distillation for Lightning."""

from lightning_distill.hooks import FeatureHooks
from lightning_distill.kd.augment import gaussian_noise, mixup
from lightning_distill.kd.callback import KnowledgeDistillation
from lightning_distill.kd.constraints import L1Sparsity, Monotonic, monotonicity_violations
from lightning_distill.kd.module import DistillationModule, FeatureDistillation
from lightning_distill.kd.soft_tree import SoftDecisionTree
from lightning_distill.kd.temperature import LearnedTemperature, select_temperature

__all__ = [
    "DistillationModule",
    "FeatureDistillation",
    "FeatureHooks",
    "KnowledgeDistillation",
    "L1Sparsity",
    "LearnedTemperature",
    "Monotonic",
    "SoftDecisionTree",
    "gaussian_noise",
    "mixup",
    "monotonicity_violations",
    "select_temperature",
]

__version__ = "0.1.0.dev0"
