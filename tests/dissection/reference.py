"""A plain network dissection for the tests: every activation kept, exact quantiles, loops.

Written from the definition (Bau et al. 2017; NetDissect-Lite for the "overlap" variant) without
using the library, so that the metric is checked against something independent.
"""

from __future__ import annotations

import numpy as np


def bilinear_upsample(feature_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize (the ``align_corners=False`` convention), in float64."""
    in_h, in_w = feature_map.shape

    def source(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        position = np.maximum(position, 0.0)
        low = np.floor(position).astype(int)
        low = np.minimum(low, in_size - 1)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, position - low

    y0, y1, wy = source(height, in_h)
    x0, x1, wx = source(width, in_w)
    fm = feature_map.astype(np.float64)
    out = np.empty((height, width))
    for i in range(height):
        for j in range(width):
            top = (1 - wx[j]) * fm[y0[i], x0[j]] + wx[j] * fm[y0[i], x1[j]]
            bottom = (1 - wx[j]) * fm[y1[i], x0[j]] + wx[j] * fm[y1[i], x1[j]]
            out[i, j] = (1 - wy[i]) * top + wy[i] * bottom
    return out


def reference_thresholds(activations: np.ndarray, quantile: float) -> np.ndarray:
    units = activations.shape[1]
    values = np.moveaxis(activations, 1, 0).reshape(units, -1).astype(np.float64)
    return np.array([np.quantile(values[u], quantile) for u in range(units)])


def reference_dissection(
    activations: np.ndarray,
    labels: np.ndarray,
    image_labels: np.ndarray | None,
    label_category: list[int],
    thresholds: np.ndarray,
    activation_side: str = "annotated",
) -> np.ndarray:
    """IoU ``[U, L]`` of every unit with every label (column 0 stays 0)."""
    num_images, units = activations.shape[:2]
    height, width = labels.shape[-2:]
    num_labels = len(label_category)
    if image_labels is None:
        image_labels = np.zeros((num_images, 0), dtype=int)
    masks = np.zeros((num_images, units, height, width), dtype=bool)
    for i in range(num_images):
        for u in range(units):
            masks[i, u] = bilinear_upsample(activations[i, u], height, width) > thresholds[u]
    iou = np.zeros((units, num_labels))
    for c in range(1, num_labels):
        category = label_category[c]
        same_category = [d for d in range(1, num_labels) if label_category[d] == category]
        for u in range(units):
            intersection = union = 0
            for i in range(num_images):
                whole_image = c in set(image_labels[i].tolist())
                concept = np.zeros((height, width), dtype=bool)
                for layer in labels[i]:
                    concept |= layer == c
                if whole_image:
                    concept[:] = True
                mask = masks[i, u]
                category_pixels = np.zeros((height, width), dtype=bool)
                for d in same_category:
                    for layer in labels[i]:
                        category_pixels |= layer == d
                    if d in set(image_labels[i].tolist()):
                        category_pixels[:] = True
                if activation_side == "annotated":
                    counted = category_pixels.any()
                else:
                    counted = (mask & category_pixels).any()
                intersection += (mask & concept).sum()
                union += (mask | concept).sum() if counted else concept.sum()
            iou[u, c] = intersection / union if union else 0.0
    return iou
