"""Pictures of what a network's units detect (re-exported from each capability)."""

from lightning_distill.dissection.plotting import plot_category_counts, plot_unit_grid

__all__ = ["plot_category_counts", "plot_unit_grid"]
