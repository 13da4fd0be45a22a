"""Datasets shipped with sklearn_distill."""

from sklearn_distill.datasets._compas import load_compas

__all__ = ["load_compas"]
