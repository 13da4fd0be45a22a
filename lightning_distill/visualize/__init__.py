"""Pictures of what a network's units detect."""

from lightning_distill.visualize.dissection import plot_category_counts, plot_unit_grid

__all__ = ["plot_category_counts", "plot_unit_grid"]
