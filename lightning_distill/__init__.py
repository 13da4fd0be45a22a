"""Knowledge distillation, network dissection and adaptive wavelet distillation for Lightning.

The names below load on first use (module-level ``__getattr__``): ``import lightning_distill``
alone imports neither Lightning nor Captum, PyWavelets or matplotlib; each capability's
subpackage (``lightning_distill.kd``, ``.dissection``, ``.awd``, ``.attribution``) loads what it
needs when it is imported. To export a new name, add it to ``_EXPORTS`` (and to the
``TYPE_CHECKING`` block for type checkers).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS = {
    "DistillationModule": "lightning_distill.kd.module",
    "FeatureDistillation": "lightning_distill.kd.module",
    "FeatureHooks": "lightning_distill.hooks",
    "KnowledgeDistillation": "lightning_distill.kd.callback",
    "L1Sparsity": "lightning_distill.kd.constraints",
    "LearnedTemperature": "lightning_distill.kd.temperature",
    "Monotonic": "lightning_distill.kd.constraints",
    "SoftDecisionTree": "lightning_distill.kd.soft_tree",
    "gaussian_noise": "lightning_distill.kd.augment",
    "mixup": "lightning_distill.kd.augment",
    "monotonicity_violations": "lightning_distill.kd.constraints",
    "select_temperature": "lightning_distill.kd.temperature",
}

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

if TYPE_CHECKING:
    from lightning_distill.hooks import FeatureHooks
    from lightning_distill.kd.augment import gaussian_noise, mixup
    from lightning_distill.kd.callback import KnowledgeDistillation
    from lightning_distill.kd.constraints import L1Sparsity, Monotonic, monotonicity_violations
    from lightning_distill.kd.module import DistillationModule, FeatureDistillation
    from lightning_distill.kd.soft_tree import SoftDecisionTree
    from lightning_distill.kd.temperature import LearnedTemperature, select_temperature


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a subpackage, e.g. .dissection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
