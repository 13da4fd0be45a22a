"""Concept-labelled image data, where users look for it (re-exported from each capability)."""

from lightning_distill.attribution.datasets import DigitBlocks, SyntheticCells
from lightning_distill.dissection.broden import BrodenDataset, decode_label_png
from lightning_distill.dissection.synthetic import SyntheticConcepts

__all__ = [
    "BrodenDataset",
    "DigitBlocks",
    "SyntheticCells",
    "SyntheticConcepts",
    "decode_label_png",
]
