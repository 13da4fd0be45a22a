"""A synthetic concept-segmentation data set, generated from a seed (no downloads)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from lightning_distill._validation import check_integer, refuse_fixed_setting

__all__ = ["SyntheticConcepts"]

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
COLORS = {
    "red": (0.9, 0.15, 0.1),
    "green": (0.15, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "purple": (0.6, 0.2, 0.8),
    "cyan": (0.1, 0.85, 0.85),
    "white": (0.95, 0.95, 0.95),
    "orange": (1.0, 0.55, 0.05),
}
TEXTURES = ("solid", "stripes", "checker", "dots")
SCENES = ("plain", "gradient", "noise", "grid")


def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float):
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= 0.8 * r) & (np.abs(dx) <= 0.8 * r)
    if shape == "triangle":  # apex up
        return (dy <= 0.8 * r) & (dy >= -r + 2 * np.abs(dx))
    if shape == "cross":
        arm = 0.35 * r
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    if shape == "ring":
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= r
    raise ValueError(shape)


def _texture(texture: str, yy: np.ndarray, xx: np.ndarray, phase: int) -> np.ndarray:
    """Brightness factor in (0, 1] of a texture at every pixel."""
    if texture == "solid":
        return np.ones_like(yy, dtype=np.float32)
    if texture == "stripes":
        return np.where(((yy + xx + phase) // 2) % 2 == 0, 1.0, 0.35)
    if texture == "checker":
        return np.where(((yy + phase) // 3 + (xx + phase) // 3) % 2 == 0, 1.0, 0.35)
    if texture == "dots":
        return np.where(((yy + phase) % 4 < 2) & ((xx + phase) % 4 < 2), 0.35, 1.0)
    raise ValueError(texture)


class SyntheticConcepts(Dataset):
    """Small RGB images of shapes with pixel-level concept labels, generated from a seed.

    Every image has a background *scene* (plain, gradient, noise or grid) and one large *main*
    object in front of up to ``max_distractors`` smaller ones. Each object has a shape, a colour
    and a texture. The class of an image (for training classifiers) is the shape of its main
    object, so colour, texture, scene and the distractors are nuisances the classifier must
    learn to ignore.

    Labels follow the Broden convention (0 = unlabelled): three pixel label layers, ``object``
    (shape of every object pixel), ``color`` and ``texture`` (of the object pixels), and one
    whole-image label, the ``scene``.

    Parameters
    ----------
    num_images : int, default=2000
    image_size : int, default=32
    seed : int, default=0
        The same seed gives the same data.
    max_distractors : int, default=2

    Attributes
    ----------
    images : Tensor
        ``[N, 3, S, S]`` float32 in ``[0, 1]``.
    targets : Tensor
        ``[N]`` int64 class (index into ``class_names``).
    labels : Tensor
        ``[N, 3, S, S]`` int64 pixel labels (layers: object, color, texture).
    image_labels : Tensor
        ``[N, 1]`` int64 scene label.
    label_names, label_categories : list of str
        Name and category of every label id (id 0: ``"-"``, unlabelled).
    categories : list of str
        ``["object", "color", "texture", "scene"]``.
    class_names : list of str
        The shapes.

    Examples
    --------
    >>> data = SyntheticConcepts(8, seed=1)
    >>> item = data[0]
    >>> item["image"].shape, item["labels"].shape, item["image_labels"].shape
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32]), torch.Size([1]))
    >>> data.label_names[int(item["image_labels"][0])] in SCENES
    True
    """

    def __setattr__(self, name: str, value) -> None:
        # the data are generated from these once: set later, they would describe other data
        refuse_fixed_setting(
            self,
            name,
            value,
            ("num_images", "image_size", "seed"),
            "the images and their labels are generated from it once",
        )
        super().__setattr__(name, value)

    def __init__(
        self,
        num_images: int = 2000,
        image_size: int = 32,
        seed: int = 0,
        max_distractors: int = 2,
    ) -> None:
        num_images = check_integer("num_images", num_images, minimum=1)
        image_size = check_integer("image_size", image_size, minimum=16)
        max_distractors = check_integer("max_distractors", max_distractors, minimum=0)
        # an integer: the same seed gives the same data (None would give other data each time)
        seed = check_integer("seed", seed, minimum=0)
        self.num_images, self.image_size, self.seed = num_images, image_size, seed
        self.categories = ["object", "color", "texture", "scene"]
        self.label_names = ["-", *SHAPES, *COLORS, *TEXTURES, *SCENES]
        self.label_categories = [
            "",
            *["object"] * len(SHAPES),
            *["color"] * len(COLORS),
            *["texture"] * len(TEXTURES),
            *["scene"] * len(SCENES),
        ]
        self.class_names = list(SHAPES)
        first = {"object": 1, "color": 1 + len(SHAPES)}
        first["texture"] = first["color"] + len(COLORS)
        first["scene"] = first["texture"] + len(TEXTURES)

        rng = np.random.default_rng(seed)
        size = image_size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        iy, ix = np.mgrid[0:size, 0:size]
        palette = np.array(list(COLORS.values()), dtype=np.float32)
        images = np.empty((num_images, 3, size, size), dtype=np.float32)
        labels = np.zeros((num_images, 3, size, size), dtype=np.int64)
        scenes = np.empty((num_images, 1), dtype=np.int64)
        targets = np.empty(num_images, dtype=np.int64)
        for n in range(num_images):
            scene = int(rng.integers(len(SCENES)))
            base = rng.uniform(0.05, 0.4, size=3).astype(np.float32)
            if SCENES[scene] == "plain":
                background = np.broadcast_to(base[:, None, None], (3, size, size))
            elif SCENES[scene] == "gradient":
                other = rng.uniform(0.05, 0.4, size=3).astype(np.float32)
                t = (xx if rng.random() < 0.5 else yy) / (size - 1)
                background = base[:, None, None] * (1 - t) + other[:, None, None] * t
            elif SCENES[scene] == "noise":
                background = base[:, None, None] + rng.uniform(-0.1, 0.1, (3, size, size))
            else:
                step = int(rng.integers(5, 9))
                lines = ((iy % step) == 0) | ((ix % step) == 0)
                background = base[:, None, None] + 0.25 * lines
            image = np.array(background, dtype=np.float32)
            layer = labels[n]
            num_distractors = int(rng.integers(max_distractors + 1))
            # distractors first, the main object last so that it is never hidden
            radii = [rng.uniform(0.12, 0.19) * size for _ in range(num_distractors)]
            radii.append(rng.uniform(0.26, 0.36) * size)
            for k, radius in enumerate(radii):
                shape = int(rng.integers(len(SHAPES)))
                color = int(rng.integers(len(COLORS)))
                texture = int(rng.integers(len(TEXTURES)))
                cy, cx = rng.uniform(radius, size - 1 - radius, size=2)
                mask = _shape_mask(SHAPES[shape], yy, xx, cy, cx, radius)
                shade = _texture(TEXTURES[texture], iy, ix, int(rng.integers(4)))
                rgb = np.clip(palette[color] + rng.normal(0, 0.03, 3), 0, 1)
                image[:, mask] = (rgb[:, None, None] * shade)[:, mask]
                layer[0][mask] = first["object"] + shape
                layer[1][mask] = first["color"] + color
                layer[2][mask] = first["texture"] + texture
                if k == len(radii) - 1:
                    targets[n] = shape
            images[n] = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
            scenes[n, 0] = first["scene"] + scene
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(targets)
        self.labels = torch.from_numpy(labels)
        self.image_labels = torch.from_numpy(scenes)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "image": self.images[index],
            "labels": self.labels[index],
            "image_labels": self.image_labels[index],
            "target": self.targets[index],
        }

    def classification(self, with_index: bool = False) -> TensorDataset:
        """``(image, target)`` pairs (``(image, target, index)`` with ``with_index``) for training."""
        if with_index:
            return TensorDataset(self.images, self.targets, torch.arange(self.num_images))
        return TensorDataset(self.images, self.targets)
