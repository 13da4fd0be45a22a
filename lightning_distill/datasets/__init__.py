"""Concept-labelled image data, where users look for it (re-exported from each capability)."""

from lightning_distill.dissection.broden import BrodenDataset, decode_label_png
from lightning_distill.dissection.synthetic import SyntheticConcepts

__all__ = ["BrodenDataset", "SyntheticConcepts", "decode_label_png"]
