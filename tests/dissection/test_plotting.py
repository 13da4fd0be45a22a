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


def test_unit_grid_draws_the_masks_at_the_resolution_given_as_blocks_of_the_image():
    # the tally counts IoU on the map resized to the labels (4 x 4 here); the picture drew the
    # map resized to the image (8 x 8), a mask that was not counted
    from lightning_distill.functional import upsample_activations

    images = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    activations = torch.tensor([[[[0.0, 1.0], [0.2, 0.0]]]])
    threshold = torch.tensor([0.3])
    counted = (upsample_activations(activations, (4, 4)) > 0.3)[0, 0]
    fine = (upsample_activations(activations, (8, 8)) > 0.3)[0, 0]
    blocks = counted.repeat_interleave(2, 0).repeat_interleave(2, 1)  # each mask pixel 2 x 2
    assert int((blocks != fine).sum()) == 6  # the two pictures differ by 6 pixels
    picture = (images[0, 0] - images.min()) / (images.max() - images.min())
    for mask_size, drawn in (((4, 4), blocks), (None, fine), ((8, 8), fine)):
        fig = plot_unit_grid(images, activations, threshold, mask_size=mask_size, title="t")
        shown = torch.as_tensor(fig.axes[0].images[0].get_array())
        expected = (picture.double() * torch.where(drawn, 1.0, 0.45).double())[..., None]
        torch.testing.assert_close(shown, expected.expand(8, 8, 3))
        assert fig._suptitle.get_text() == "t"
    # labels finer than the image: each image pixel a 2 x 2 block of the 16 x 16 mask's pixels
    fig = plot_unit_grid(images, activations, threshold, mask_size=(16, 16))
    shown = torch.as_tensor(fig.axes[0].images[0].get_array())
    mask = (upsample_activations(activations, (16, 16)) > 0.3)[0, 0]
    grown = picture.double().repeat_interleave(2, 0).repeat_interleave(2, 1)
    expected = (grown * torch.where(mask, 1.0, 0.45).double())[..., None].expand(16, 16, 3)
    torch.testing.assert_close(shown, expected)
    for wrong in ((4,), (4, 0), (4.0, 4), "44"):
        with pytest.raises(ValueError, match=r"mask_size must be a \(height, width\) pair"):
            plot_unit_grid(images, activations, threshold, mask_size=wrong)
