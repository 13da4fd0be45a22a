"""The dissection pictures follow the plotting contract: ax=None, a Figure built without pyplot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from lightning_distill.visualize import plot_category_counts, plot_unit_grid


def test_category_counts_builds_or_uses_the_given_axes():
    open_before = plt.get_fignums()
    fig = plot_category_counts({"color": 2, "object": 0, "scene": 4})
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert [int(bar.get_height()) for bar in fig.axes[0].patches] == [2, 0, 4]
    host = Figure()
    ax = host.add_subplot()
    assert plot_category_counts({"color": 1}, ax=ax, title="given") is host
    assert ax.get_title() == "given" and len(host.axes) == 1
    grid = plot_unit_grid(torch.rand(4, 3, 8, 8), torch.rand(4, 2, 4, 4), torch.full((2,), 0.5))
    assert isinstance(grid, Figure) and len(grid.axes) == 2 * 4
    # nothing was opened in pyplot's global state
    assert plt.get_fignums() == open_before
