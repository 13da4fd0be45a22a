"""Lightning callbacks, where Lightning users look for them (re-exported from each capability)."""

from lightning_distill.attribution.monitor import AttributionMonitor
from lightning_distill.dissection.monitor import DissectionMonitor
from lightning_distill.kd.callback import KnowledgeDistillation

__all__ = ["AttributionMonitor", "DissectionMonitor", "KnowledgeDistillation"]
