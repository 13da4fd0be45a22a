"""Distillation losses, where Lightning users look for them.

The implementations live with their capability (:mod:`lightning_distill.kd.losses`); this
module re-exports the public ones.
"""

from lightning_distill.kd.feature_losses import dkd_loss, dkd_warmup, pkt_loss, rkd_loss
from lightning_distill.kd.losses import (
    DistillationTerms,
    HintRegressor,
    attention_map,
    attention_transfer_loss,
    distillation_loss,
    distillation_terms,
    hint_loss,
    kd_loss,
    label_smoothing_loss,
)

__all__ = [
    "DistillationTerms",
    "HintRegressor",
    "attention_map",
    "attention_transfer_loss",
    "distillation_loss",
    "distillation_terms",
    "dkd_loss",
    "dkd_warmup",
    "hint_loss",
    "kd_loss",
    "label_smoothing_loss",
    "pkt_loss",
    "rkd_loss",
]
