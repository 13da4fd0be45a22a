"""Former home of :class:`FeatureHooks`; kept so old imports work. Use :mod:`lightning_distill.hooks`."""

from lightning_distill.hooks import FeatureHooks, resolve_module_names

__all__ = ["FeatureHooks", "resolve_module_names"]
