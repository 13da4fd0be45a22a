"""Shared data for the dissection tests."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F

# label 0 unlabelled; objects 1-3, colours 4-5 (pixel layers), scenes 6-7 (whole-image labels)
LABEL_NAMES = ["-", "ball", "box", "tree", "red", "blue", "beach", "forest"]
LABEL_CATEGORIES = ["", "object", "object", "object", "color", "color", "scene", "scene"]
CATEGORY_CODES = [-1, 0, 0, 0, 1, 1, 2, 2]


def make_probe(num_images: int = 24, units: int = 6, seed: int = 0):
    """Activations ``[N, U, 7, 7]`` and labels ``[N, 2, 28, 28]``, ``[N, 2]``.

    Activations are multiples of 1/16 and the upsampling factor is 4, so the bilinear maps are
    exact in float32 and float64 alike: the metric and the float64 reference see identical masks.
    Some units follow a concept (to give detectors), the others are noise.
    """
    rng = np.random.default_rng(seed)
    labels = np.zeros((num_images, 2, 28, 28), dtype=np.int64)
    image_labels = np.zeros((num_images, 2), dtype=np.int64)
    for i in range(num_images):
        for label in (1, 2, 3):
            y, x = rng.integers(0, 20, size=2)
            h, w = rng.integers(4, 14, size=2)
            labels[i, 0, y : y + h, x : x + w] = label
        if rng.random() < 0.7:  # colour annotated in most images only
            y, x = rng.integers(0, 16, size=2)
            labels[i, 1, y : y + 12, x : x + 12] = rng.integers(4, 6)
        if rng.random() < 0.8:
            image_labels[i, 0] = rng.integers(6, 8)
    indicator = torch.from_numpy(labels).float()
    pooled = {
        c: F.avg_pool2d((indicator == c).any(1, keepdim=True).float(), 4).numpy()[:, 0]
        for c in (1, 2, 4)
    }
    activations = rng.integers(0, 48, size=(num_images, units, 7, 7)).astype(np.float32) / 16
    activations[:, 0] += 4 * pooled[1]
    activations[:, 1] += 4 * pooled[2]
    activations[:, 2] += 4 * pooled[4]
    activations[image_labels[:, 0] == 6, 3] += 1.0  # a "beach" unit
    return activations, labels, image_labels


@pytest.fixture
def probe():
    return make_probe()


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
