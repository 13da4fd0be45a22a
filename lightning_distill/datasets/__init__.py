"""Concept-labelled image data for network dissection."""

from lightning_distill.datasets.broden import BrodenDataset, decode_label_png
from lightning_distill.datasets.synthetic import SyntheticConcepts

__all__ = ["BrodenDataset", "SyntheticConcepts", "decode_label_png"]
