"""Lightning callbacks: distil into an existing module, log interpretability during training."""

from lightning_distill.callbacks.dissection import DissectionMonitor
from lightning_distill.callbacks.kd import KnowledgeDistillation

__all__ = ["DissectionMonitor", "KnowledgeDistillation"]
