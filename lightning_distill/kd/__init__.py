"""Knowledge distillation in Lightning: losses, a module, a callback, feature methods.

* :mod:`~lightning_distill.kd.losses`: pure loss functions (no state, no Lightning).
* :class:`~lightning_distill.kd.module.DistillationModule`: a ``LightningModule`` that distils a
  frozen teacher into a student.
* :class:`~lightning_distill.kd.callback.KnowledgeDistillation`: the same loss on a module the
  user already has, as a callback.
* :mod:`~lightning_distill.kd.constraints` (``Monotonic``, ``L1Sparsity``,
  ``monotonicity_violations``), :mod:`~lightning_distill.kd.soft_tree` (``SoftDecisionTree``),
  :mod:`~lightning_distill.kd.temperature` (``select_temperature``, ``LearnedTemperature``) and
  :mod:`~lightning_distill.kd.augment` (``mixup``, ``gaussian_noise``): constraint-based
  distillation, an interpretable student, the choice of temperature, teacher-labelled
  augmentation.
"""

from lightning_distill.kd.augment import gaussian_noise, mixup
from lightning_distill.kd.callback import KnowledgeDistillation
from lightning_distill.kd.constraints import L1Sparsity, Monotonic, monotonicity_violations
from lightning_distill.kd.module import DistillationModule, FeatureDistillation
from lightning_distill.kd.soft_tree import SoftDecisionTree
from lightning_distill.kd.temperature import LearnedTemperature, select_temperature

__all__ = [
    "DistillationModule",
    "FeatureDistillation",
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
