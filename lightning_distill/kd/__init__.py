"""Knowledge distillation in Lightning: losses, a module, a callback, feature methods.

* :mod:`~lightning_distill.kd.losses`: pure loss functions (no state, no Lightning).
* :class:`~lightning_distill.kd.module.DistillationModule`: a ``LightningModule`` that distils a
  frozen teacher into a student.
* :class:`~lightning_distill.kd.callback.KnowledgeDistillation`: the same loss on a module the
  user already has, as a callback.
"""

from lightning_distill.kd.callback import KnowledgeDistillation
from lightning_distill.kd.module import DistillationModule, FeatureDistillation

__all__ = ["DistillationModule", "FeatureDistillation", "KnowledgeDistillation"]
