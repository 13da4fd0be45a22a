"""The dissection pictures follow the plotting contract: ax=None, a Figure built without pyplot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
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


@pytest.mark.parametrize("where", ["images", "activations", "thresholds"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_unit_grid_refuses_non_finite_values_and_a_str_of_titles(where, value):
    # a NaN map or threshold drew as a unit without a mask (a blank image for NaN images),
    # silently; a str of titles was read as one title per letter
    given = {
        "images": torch.rand(4, 3, 8, 8),
        "activations": torch.rand(4, 2, 4, 4),
        "thresholds": torch.full((2,), 0.5),
    }
    before = {name: tensor.clone() for name, tensor in given.items()}
    given[where][0, ...] = value
    with pytest.raises(ValueError, match=f"{where} must be finite"):
        plot_unit_grid(given["images"], given["activations"], given["thresholds"])
    given[where].copy_(before[where])
    with pytest.raises(TypeError, match="row_titles must be a sequence of str, one per unit"):
        plot_unit_grid(**given, row_titles="ab")
