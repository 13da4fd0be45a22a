"""Pictures of a network dissection: detectors per category, top images of a unit with its mask.

Each function builds a :class:`matplotlib.figure.Figure` itself (never through ``pyplot``, so
nothing is left open in a user's session) and returns it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lightning_distill._validation import check_finite
from lightning_distill.dissection.functional import _upsampled_above

__all__ = ["plot_category_counts", "plot_unit_grid"]


def plot_category_counts(results: Any, ax: Any = None, title: str | None = None) -> Any:
    """Bar chart of detector units per category.

    Parameters
    ----------
    results : DissectionResults or mapping of str to int
        A dissection's results, or its ``category_counts``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure otherwise.
    title : str, optional
        Defaults to the number of detectors and unique concepts.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (``ax``'s when given).

    Examples
    --------
    >>> fig = plot_category_counts({"color": 3, "object": 5})
    >>> [int(bar.get_height()) for bar in fig.axes[0].patches]
    [3, 5]
    """
    from matplotlib.figure import Figure

    counts = results if isinstance(results, Mapping) else results.category_counts
    if ax is None:
        fig = Figure(figsize=(1.2 + 0.9 * max(1, len(counts)), 3.2), layout="tight")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    names, values = list(counts), [int(v) for v in counts.values()]
    bars = ax.bar(names, values, color="tab:blue")
    ax.bar_label(bars)
    ax.set_ylabel("detector units")
    ax.set_xlabel("category")
    if title is None and not isinstance(results, Mapping):
        title = f"{results.num_detectors} detectors, {len(results.unique_concepts)} unique concepts"
    if title:
        ax.set_title(title)
    ax.set_ylim(0, max([*values, 1]) * 1.15)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of units
    return fig


def _displayable(image: Tensor) -> Tensor:
    """``[3, H, W]`` (or ``[1, H, W]``) any range -> ``[H, W, 3]`` in [0, 1]."""
    image = image.detach().double().cpu()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    low, high = image.min(), image.max()
    image = (image - low) / (high - low) if high > low else torch.zeros_like(image)
    return image.permute(1, 2, 0)


def _nearest(side: int, size: int) -> Tensor:
    """For each of ``size`` display positions, the one of ``side`` cells whose span holds the
    position's centre (cells of equal width over the same extent)."""
    return (
        ((torch.arange(size, dtype=torch.float64) + 0.5) * side / size).long().clamp(max=side - 1)
    )


def plot_unit_grid(
    images: Tensor,
    activations: Tensor,
    thresholds: Tensor,
    row_titles: Sequence[str] | None = None,
    top_k: int = 6,
    path: str | Path | None = None,
    mask_size: tuple[int, int] | None = None,
    title: str | None = None,
) -> Any:
    """Top-activating images of some units with each unit's mask overlaid, one row per unit.

    The images of a row are the ``top_k`` with the largest maximum activation of that unit; the
    mask is the activation map resized bilinearly to ``mask_size`` (the image size by default)
    and thresholded at the unit's threshold, as the dissection's tally computes it, drawn as an
    outline over the image (yellow edged in black), the rest of the image dimmed. A dissection
    counts IoU at the labels' resolution: pass theirs as ``mask_size`` to see the masks that
    were counted (:class:`~lightning_distill.callbacks.DissectionMonitor` does), each mask pixel
    then a block of the image (each image pixel takes the mask pixel whose span holds its
    centre; with labels finer than the image, the image's pixels are blocks of the mask's).

    Parameters
    ----------
    images : Tensor
        ``[N, C, H, W]`` images (C = 1 or 3), any value range (each is rescaled for display).
    activations : Tensor
        ``[N, R, h, w]`` activation maps of the ``R`` units to show.
    thresholds : Tensor
        ``[R]`` the units' thresholds.
    row_titles : sequence of str, optional
        One label per unit, e.g. ``"unit 7: red (IoU 0.31)"``.
    top_k : int, default=6
        Images per row.
    path : str or Path, optional
        Save the figure there as PNG.
    mask_size : (int, int), optional
        ``(height, width)`` at which each mask is computed: the labels' of the dissection whose
        masks are shown. Default: the images' own.
    title : str, optional
        Title of the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    for name, value in (("images", images), ("activations", activations)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if images.ndim == 4 and images.shape[1] not in (1, 3):
        hint = (
            " (channels last? use images.permute(0, 3, 1, 2))" if images.shape[-1] in (1, 3) else ""
        )
        raise ValueError(
            f"images must have 1 or 3 channels in dim 1, [N, C, H, W]; got shape "
            f"{tuple(images.shape)}{hint}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    if images.ndim != 4 or activations.ndim != 4 or images.shape[0] != activations.shape[0]:
        raise ValueError(
            "images [N, C, H, W] and activations [N, R, h, w] must share N, got "
            f"{tuple(images.shape)} and {tuple(activations.shape)}"
        )
    rows = activations.shape[1]
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
    if thresholds.shape[0] != rows:
        raise ValueError(f"thresholds must have {rows} entries, got {thresholds.shape[0]}")
    # a NaN or an infinity would draw as an empty mask or a blank image, silently
    for name, values in (("images", images), ("activations", activations)):
        if values.is_complex():
            raise TypeError(f"{name} must be a real-valued Tensor; got {values.dtype}.")
        check_finite(name, values)
    check_finite("thresholds", thresholds)
    if row_titles is not None and (
        isinstance(row_titles, str) or not isinstance(row_titles, Sequence)
    ):
        raise TypeError(
            f"row_titles must be a sequence of str, one per unit; got {type(row_titles).__name__}."
        )
    if row_titles is not None and len(row_titles) != rows:
        raise ValueError(f"row_titles must have {rows} entries, got {len(row_titles)}")
    size = tuple(images.shape[-2:])
    if mask_size is None:
        mask_size = size
    if (
        not isinstance(mask_size, Sequence)
        or len(mask_size) != 2
        or not all(
            isinstance(side, numbers.Integral) and not isinstance(side, bool) and side >= 1
            for side in mask_size
        )
    ):
        raise ValueError(
            f"mask_size must be a (height, width) pair of integers >= 1, or None; got {mask_size!r}"
        )
    mask_size = (int(mask_size[0]), int(mask_size[1]))
    top_k = min(int(top_k), images.shape[0])
    fig = Figure(figsize=(1.6 * top_k, 1.75 * rows + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(rows, top_k, squeeze=False)
    if title:
        fig.suptitle(title, fontsize=8)
    maps = activations.detach().cpu()
    # drawn at the finer of the two resolutions on each side: each image pixel and each mask
    # pixel a block of display pixels (the same grid when the two sizes are equal)
    shown = (max(size[0], mask_size[0]), max(size[1], mask_size[1]))
    image_rows, image_cols = _nearest(size[0], shown[0]), _nearest(size[1], shown[1])
    mask_rows, mask_cols = _nearest(mask_size[0], shown[0]), _nearest(mask_size[1], shown[1])
    peaks = maps.flatten(2).amax(2)  # [N, R]
    for row in range(rows):
        order = torch.argsort(peaks[:, row], descending=True)[:top_k]
        # the masks the tally counts (exact ties are not above the threshold)
        masks = _upsampled_above(
            maps[order, row].unsqueeze(1), thresholds[row].expand(len(order)), mask_size
        ).view(len(order), *mask_size)
        masks = masks[:, mask_rows][:, :, mask_cols]
        for col, index in enumerate(order.tolist()):
            ax = axes[row, col]
            picture = _displayable(images[index])[image_rows][:, image_cols]
            mask = masks[col].numpy()
            ax.imshow((picture * torch.where(torch.from_numpy(mask), 1.0, 0.45)[..., None]).numpy())
            if mask.any():
                # yellow edged in black: visible on a red or a yellow concept alike
                ax.contour(mask, levels=[0.5], colors="black", linewidths=2.2)
                ax.contour(mask, levels=[0.5], colors="yellow", linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0 and row_titles is not None:
                ax.set_ylabel(row_titles[row], fontsize=7, rotation=0, ha="right", va="center")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
