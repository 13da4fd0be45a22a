"""Pictures of attribution maps: inputs beside the maps of one or more models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lightning_distill._validation import check_finite, is_listed

__all__ = ["plot_attribution_maps"]


def _displayable(image: Tensor):
    """``[C, H, W]`` any range -> ``[H, W, 3]`` for three channels, else ``[H, W]`` (one
    channel, or the mean of the channels) in [0, 1]."""
    image = image.detach().double().cpu()
    if image.shape[0] != 3:
        image = image.mean(0, keepdim=True)
    low, high = image.min(), image.max()
    image = (image - low) / (high - low) if high > low else torch.zeros_like(image)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def _check_pictures(images, maps, row_titles):
    """``images`` as ``[N, C, H, W]`` (``[N, H, W]`` given a channel axis); every map of the
    same ``N``, ``H`` and ``W``."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a Tensor; got {type(images).__name__}.")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or not len(images):
        raise ValueError(
            "images must be [N, C, H, W] or [N, H, W] with N >= 1; got shape "
            f"{tuple(images.shape)}."
        )
    if not isinstance(maps, Mapping) or not maps:
        raise TypeError(f"maps must be a non-empty mapping of str to Tensor; got {maps!r}.")
    for name, values in maps.items():
        shape = tuple(getattr(values, "shape", ()))
        if not isinstance(values, Tensor) or values.ndim not in (3, 4):
            raise ValueError(
                f"maps[{name!r}] must be a [N, C, H, W] or [N, H, W] Tensor; got "
                f"{type(values).__name__} of shape {shape}."
            )
        if shape[0] != len(images) or shape[-2:] != tuple(images.shape[-2:]):
            raise ValueError(
                f"maps[{name!r}] must hold the {len(images)} images' "
                f"{tuple(images.shape[-2:])} pixels; got shape {shape}."
            )
    # a NaN or an infinity would draw as an empty or flat panel (NaN scaled by its own
    # maximum), silently
    for name, values in (("images", images), *((f"maps[{k!r}]", v) for k, v in maps.items())):
        if values.is_complex():
            raise TypeError(f"{name} must be a real-valued Tensor; got {values.dtype}.")
        check_finite(name, values)
    # a numpy array or a pandas Index of titles (class names picked by label) as a list
    if row_titles is not None and (isinstance(row_titles, Tensor) or not is_listed(row_titles)):
        raise TypeError(
            f"row_titles must be a sequence of str, one per image; got {type(row_titles).__name__}."
        )
    if row_titles is not None and len(row_titles) != len(images):
        raise ValueError(
            f"row_titles must hold one title per image ({len(images)}); got {len(row_titles)}."
        )
    return images


def _magnitude(attribution: Tensor):
    """A map as the per-pixel magnitude, scaled to [0, 1] by its own maximum."""
    attribution = attribution.detach().double().cpu()
    if attribution.ndim == 3:
        attribution = attribution.abs().sum(0)
    else:
        attribution = attribution.abs()
    peak = attribution.max()
    return (attribution / peak if peak > 0 else attribution).numpy()


def plot_attribution_maps(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    row_titles: Sequence[str] | None = None,
    axes: Any = None,
    path: str | Path | None = None,
    cmap: str = "inferno",
    title: str | None = None,
) -> Any:
    """One row per image: the input, then each model's attribution map (per-pixel magnitude).

    As Han et al.'s (2023) figure of loss-gradient maps: input | student A | student B. Each map
    is scaled by its own maximum, so the picture shows *where* a model's evidence lies, not how
    large its gradients are.

    Parameters
    ----------
    images : Tensor
        ``[N, C, H, W]`` (or ``[N, H, W]``) inputs; three channels are drawn in colour, others
        as the grey mean of their channels.
    maps : mapping of str to Tensor
        Column title -> ``[N, C, H, W]`` or ``[N, H, W]`` maps of the same images.
    row_titles : sequence of str, optional
    axes : array of matplotlib Axes, optional
        ``N x (1 + len(maps))`` axes to draw into; a new figure otherwise (no pyplot).
    path : str or Path, optional
        Save the figure there.
    cmap : str, default="inferno"
    title : str, optional
        Above the grid (a new figure only).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np
    from matplotlib.figure import Figure

    images = _check_pictures(images, maps, row_titles)
    rows, columns = len(images), 1 + len(maps)
    own_figure = axes is None
    if own_figure:
        figure = Figure(figsize=(1.7 * columns, 1.7 * rows * images.shape[-2] / images.shape[-1]))
        axes = figure.subplots(rows, columns, squeeze=False)
    else:
        axes = np.asarray(axes)
        if axes.size != rows * columns:
            raise ValueError(
                f"axes must hold {rows} x {columns} Axes (one row per image: the input and "
                f"{len(maps)} map{'s' if len(maps) > 1 else ''}); got {axes.size} in shape "
                f"{axes.shape}."
            )
        axes = axes.reshape(rows, columns)
        figure = axes[0, 0].figure
    import textwrap

    # a title longer than its row ran into the rows beside it: wrapped to the row's height
    # (at most 12 characters an inch of it, at this font size)
    if own_figure:
        inches = figure.get_figheight() / rows
    else:
        # the given axes' own height: their figure may be a subfigure, which has no height of
        # its own in inches (its position is a share of the subfigure, not of the whole figure)
        root = getattr(figure, "figure", None) or figure
        inches = axes[0, 0].bbox.height / root.dpi
    for row in range(rows):
        image = _displayable(images[row])
        axes[row, 0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        if row_titles is not None:
            text = textwrap.fill(
                str(row_titles[row]), max(10, int(12 * inches)), break_on_hyphens=False
            )
            axes[row, 0].set_ylabel(text, fontsize=8)
        for column, (name, values) in enumerate(maps.items(), start=1):
            axes[row, column].imshow(_magnitude(values[row]), cmap=cmap, vmin=0, vmax=1)
            if row == 0:
                axes[row, column].set_title(name, fontsize=8)
        if row == 0:
            axes[row, 0].set_title("input", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if own_figure:
        if title is not None:
            # wrapped to the figure's width (about 14 characters an inch at this size): a
            # narrow figure (two columns) would cut a long title at both ends
            width = max(20, int(14 * figure.get_figwidth()))
            figure.suptitle(textwrap.fill(title, width), fontsize=8)
        figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure
