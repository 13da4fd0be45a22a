"""Image data with known evidence, generated offline from a seed.

* :class:`SyntheticCells`: Tjoa & Guan's (2020) synthetic cells with ground-truth heatmaps, for
  five-band scores and localisation.
* :class:`DigitBlocks`: a BlockMNIST-like task (Shah, Jain & Netrapalli, 2021) built from
  scikit-learn's bundled digits, where the discriminative pixels are known, for DiffROAR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from lightning_distill._validation import (
    check_choice,
    check_integer,
    check_real,
    fail,
    is_listed,
    refuse_fixed_setting,
)

__all__ = ["CELL_CLASSES", "DigitBlocks", "SyntheticCells"]

#: What a generated dataset's settings make, refused set again (they would describe other data).
_GENERATED = "the images, targets and heatmaps or masks are generated from it once"
_CELL_RECIPE = ("num_images", "image_size", "seed")
_BLOCKS_RECIPE = ("split", "digits", "block_size")

#: Class names of :class:`SyntheticCells`, in label order.
CELL_CLASSES = (
    "ring cell",
    "bar cell",
    "cross cell",
    "red rectangle",
    "green rectangle",
    "blue rectangle",
    "one-tail cell",
    "three-tail cell",
    "eight-tail cell",
    "blank",
)
BACKGROUNDS = ("black", "blotches", "waves")
#: Ground-truth heatmap values: outside the object, the object, its class-specific part.
BODY_VALUE, PART_VALUE = 0.4, 0.9


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, low: float, high: float):
    """A coarse ``cells x cells`` uniform grid, bilinearly upsampled to ``size x size``."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(low, high, size=(cells, cells))
    return zoom(coarse, size / cells, order=1, mode="nearest", grid_mode=True)[:size, :size]


class SyntheticCells(Dataset):
    """Tjoa & Guan's synthetic cell images with ground-truth heatmaps, generated from a seed.

    Ten classes of one object on one of three backgrounds, each image with a heatmap that says
    where the evidence for its class lies, with the values of the authors' generator
    (``ericotjo001/explainable_ai``, ``xai_basic``): 0 outside the object, 0.4 on the object's
    body and 0.9 on its class-specific part:

    ==============================  =================================================
    class                           class-specific part (0.9)
    ==============================  =================================================
    ring cell                       the border of a round cell
    bar cell, cross cell            a bar (and a perpendicular pole) across the cell
    red, green, blue rectangle      the coloured border of a rectangle
    one-, three-, eight-tail cell   the tails of a round cell
    blank                           none: background only, an all-zero heatmap
    ==============================  =================================================

    Objects have a random position near the centre, rotation, size and colours (the
    rectangles' border colour is their class). Backgrounds, filling the pixels outside the
    object: black, smooth colour blotches, or concentric waves around a random point. The
    authors draw 512 x 512 (or 256) images; the default 64 x 64 trains on a CPU in seconds.

    Parameters
    ----------
    num_images : int, default=1000
    image_size : int, default=64
        Side in pixels (>= 32); 512 reproduces the authors' size.
    seed : int, default=0
        The same seed gives the same data.

    Attributes
    ----------
    images : Tensor
        ``[N, 3, S, S]`` float32 in ``[0, 1]``.
    targets : Tensor
        ``[N]`` int64 class (index into ``class_names``), uniform over the ten classes.
    heatmaps : Tensor
        ``[N, S, S]`` float32 ground truth with values 0, 0.4 and 0.9.
    backgrounds : Tensor
        ``[N]`` int64 background kind (index into ``background_names``).
    class_names, background_names : list of str

    Examples
    --------
    >>> cells = SyntheticCells(20, seed=1)
    >>> cells.images.shape, cells.heatmaps.shape
    (torch.Size([20, 3, 64, 64]), torch.Size([20, 64, 64]))
    >>> sorted({round(v, 1) for v in cells.heatmaps.unique().tolist()})
    [0.0, 0.4, 0.9]
    >>> item = cells[0]
    >>> sorted(item)
    ['heatmap', 'image', 'mask', 'target']
    """

    def __setattr__(self, name: str, value) -> None:
        # the data are generated from these once: set later, they would describe other data
        refuse_fixed_setting(self, name, value, _CELL_RECIPE, _GENERATED)
        super().__setattr__(name, value)

    def __init__(self, num_images: int = 1000, image_size: int = 64, seed: int = 0) -> None:
        self.num_images = check_integer("num_images", num_images, minimum=1)
        self.image_size = check_integer("image_size", image_size, minimum=32)
        self.seed = check_integer("seed", seed, minimum=0)
        self.class_names = list(CELL_CLASSES)
        self.background_names = list(BACKGROUNDS)
        rng = np.random.default_rng(self.seed)
        size = self.image_size
        images = np.empty((num_images, 3, size, size), dtype=np.float32)
        heatmaps = np.empty((num_images, size, size), dtype=np.float32)
        targets = rng.integers(len(CELL_CLASSES), size=num_images)
        backgrounds = rng.integers(len(BACKGROUNDS), size=num_images)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        for n in range(num_images):
            image, heatmap = self._draw_object(rng, int(targets[n]), yy, xx)
            empty = ~(image > 0.01)  # the authors fill where a channel of the object is ~0
            background = self._draw_background(rng, int(backgrounds[n]), yy, xx)
            images[n] = np.clip(np.where(empty, background, image), 0.0, 1.0)
            heatmaps[n] = heatmap
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(targets.astype(np.int64))
        self.heatmaps = torch.from_numpy(heatmaps)
        self.backgrounds = torch.from_numpy(backgrounds.astype(np.int64))

    # ------------------------------------------------------------------ drawing
    def _draw_object(self, rng, label: int, yy, xx) -> tuple[np.ndarray, np.ndarray]:
        size = self.image_size
        image = np.zeros((3, size, size))
        heatmap = np.zeros((size, size))
        if CELL_CLASSES[label] == "blank":
            return image, heatmap
        cy, cx = rng.uniform(0.38, 0.62, size=2) * size
        angle = rng.uniform(0, 2 * np.pi)
        # coordinates along the object's own axes
        u = np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy)
        v = -np.sin(angle) * (xx - cx) + np.cos(angle) * (yy - cy)
        thickness = max(2.0, 0.05 * size)
        inner_color = rng.uniform(0.1, 0.5, size=3)
        border_color = rng.uniform(0.6, 1.0, size=3)
        name = CELL_CLASSES[label]
        if name.endswith("rectangle"):
            channel = ("red", "green", "blue").index(name.split()[0])
            border_color = rng.uniform(0.0, 0.2, size=3)
            border_color[channel] = rng.uniform(0.6, 0.9)
            half_h, half_w = rng.uniform(0.22, 0.3) * size, rng.uniform(0.12, 0.17) * size
            body = (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
            inner = (np.abs(u) <= half_w - thickness) & (np.abs(v) <= half_h - thickness)
            part = body & ~inner
        else:
            radius = rng.uniform(0.17, 0.22) * size
            # a slightly irregular outline, as the authors' noisy distance
            wobble = 1 + 0.04 * np.sin(3 * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
            distance = np.hypot(u, v) * wobble
            body = distance <= radius
            inner = distance < radius - thickness
            half = thickness / 2 + 0.5
            if name == "ring cell":
                part = body & ~inner
            elif name in ("bar cell", "cross cell"):
                part = body & (np.abs(v) <= half)
                if name == "cross cell":
                    part |= body & (np.abs(u) <= half)
            else:
                tails = {"one-tail cell": 1, "three-tail cell": 3, "eight-tail cell": 8}[name]
                part = np.zeros_like(body)
                for k in range(tails):
                    phi = 2 * np.pi * k / tails
                    along = np.cos(phi) * v - np.sin(phi) * u
                    across = np.sin(phi) * v + np.cos(phi) * u
                    part |= (
                        (np.abs(across) <= half) & (along >= 0.8 * radius) & (along <= 1.8 * radius)
                    )
                body = body | part
        colors = np.where(inner, 1, 0)[None] * inner_color[:, None, None]
        outline = body & ~inner
        colors = colors + np.where(outline, 1, 0)[None] * border_color[:, None, None]
        if name in ("bar cell", "cross cell"):
            colors = np.where(part[None], border_color[:, None, None], colors)
        elif "tail" in name:
            colors = np.where(part[None], 0.75 * border_color[:, None, None], colors)
        image[:] = colors
        heatmap[body] = BODY_VALUE
        heatmap[part] = PART_VALUE
        return image, heatmap

    def _draw_background(self, rng, kind: int, yy, xx) -> np.ndarray:
        size = self.image_size
        if BACKGROUNDS[kind] == "black":
            return np.zeros((3, size, size))
        if BACKGROUNDS[kind] == "blotches":
            cells = max(2, size // 8)
            return np.stack([_smooth_noise(rng, size, cells, 0.2, 0.7) for _ in range(3)])
        cy, cx = rng.uniform(0.25, 0.75, size=2) * size
        distance = np.hypot(yy - cy, xx - cx)
        waves = []
        for _ in range(3):
            jitter = _smooth_noise(rng, size, max(2, size // 16), -0.3, 0.3)
            # the authors' wavelengths at 512 pixels, scaled to this size
            stretch = rng.uniform(1e-4, 1e-3) * 180 / np.pi * 512 / size
            waves.append(0.25 * (np.sin(stretch * distance * (1 + jitter)) + 1))
        return np.stack(waves)

    # ------------------------------------------------------------------ access
    @property
    def masks(self) -> Tensor:
        """``[N, S, S]`` bool: the class-specific part (heatmap 0.9), all False for blanks."""
        return self.heatmaps > 0.5 * (BODY_VALUE + PART_VALUE)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "image": self.images[index],
            "target": self.targets[index],
            "heatmap": self.heatmaps[index],
            # the one image's mask: the property computes all N of them
            "mask": self.heatmaps[index] > 0.5 * (BODY_VALUE + PART_VALUE),
        }

    def classification(self) -> TensorDataset:
        """``(image, target)`` pairs for training."""
        return TensorDataset(self.images, self.targets)


class DigitBlocks(Dataset):
    """A BlockMNIST-like task from scikit-learn's bundled 8 x 8 digits (no download).

    After Shah, Jain & Netrapalli (NeurIPS 2021, "Do input gradients highlight discriminative
    features?"): every image stacks two square blocks vertically, a *signal* block holding a
    digit, which sets the label, and a *null* block holding the same fixed pattern (a square
    outline) in every image; the signal block is on top or at the bottom at random. The truly
    discriminative pixels are therefore known: those of the signal block (:attr:`masks`).

    Digits are upsampled to ``block_size`` by pixel repetition and scaled to ``[0, 1]``. The
    1797 digits are split once, by a fixed permutation independent of ``seed``, into a train and
    a test part, so the two splits never share a digit.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
    digits : sequence of int, optional
        The classes kept (default: all ten); labels are their positions in this sequence.
    block_size : int, default=16
        Side of each block (a multiple of 8): images are ``[1, 2 * block_size, block_size]``.
    test_fraction : float, default=0.3
    noise : float, default=0.0
        Standard deviation of Gaussian pixel noise added to both blocks.
    seed : int, default=0
        Draws the signal positions and the noise.

    Attributes
    ----------
    images : Tensor
        ``[N, 1, 2 * B, B]`` float32.
    targets : Tensor
        ``[N]`` int64.
    masks : Tensor
        ``[N, 2 * B, B]`` bool, True on the signal block.
    signal_on_top : Tensor
        ``[N]`` bool.

    Examples
    --------
    >>> train = DigitBlocks("train", digits=(0, 1))
    >>> train.images.shape[1:], train.masks.float().mean().item()
    (torch.Size([1, 32, 16]), 0.5)
    """

    def __setattr__(self, name: str, value) -> None:
        # the data are generated from these once: set later, they would describe other data
        refuse_fixed_setting(self, name, value, _BLOCKS_RECIPE, _GENERATED)
        super().__setattr__(name, value)

    def __init__(
        self,
        split: str = "train",
        *,
        digits: Sequence[int] | None = None,
        block_size: int = 16,
        test_fraction: float = 0.3,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        from sklearn.datasets import load_digits

        check_choice("split", split, ("train", "test"))
        if digits is None:
            digits = tuple(range(10))
        # a numpy array or a tensor of digits (np.arange(4)) as well as a list or tuple
        if not is_listed(digits):
            fail("digits", "a sequence of distinct digits 0-9", digits, TypeError)
        digits = tuple(check_integer("digits", d, minimum=0, maximum=9) for d in digits)
        if len(digits) < 2 or len(set(digits)) != len(digits):
            fail("digits", "at least two distinct digits 0-9", digits)
        block_size = check_integer("block_size", block_size, minimum=8)
        if block_size % 8:
            fail("block_size", "a multiple of 8", block_size)
        test_fraction = check_real(
            "test_fraction",
            test_fraction,
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        noise = check_real("noise", noise, minimum=0.0)
        seed = check_integer("seed", seed, minimum=0)
        self.split, self.digits, self.block_size = split, digits, block_size
        self.class_names = [str(d) for d in digits]

        bunch = load_digits()
        order = np.random.default_rng(0).permutation(len(bunch.target))
        cut = round(len(order) * (1 - test_fraction))
        chosen = order[:cut] if split == "train" else order[cut:]
        chosen = chosen[np.isin(bunch.target[chosen], digits)]
        if not len(chosen):
            # an empty split would train or test on nothing without a word
            fail(
                "test_fraction",
                f"a fraction that leaves the {split} split at least one image of the digits "
                f"{digits} (it splits the {len(order)} bundled digits {cut} / "
                f"{len(order) - cut})",
                test_fraction,
            )
        scale = block_size // 8
        signal = np.kron(bunch.images[chosen] / 16.0, np.ones((scale, scale)))
        null = np.zeros((block_size, block_size))
        edge = max(1, block_size // 8)
        null[edge:-edge, edge:-edge] = 1.0
        null[2 * edge : -2 * edge, 2 * edge : -2 * edge] = 0.0

        # an offset per split, so that train and test draw different positions for one seed
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        on_top = rng.random(len(chosen)) < 0.5
        images = np.empty((len(chosen), 1, 2 * block_size, block_size), dtype=np.float32)
        masks = np.zeros((len(chosen), 2 * block_size, block_size), dtype=bool)
        top = slice(0, block_size)
        bottom = slice(block_size, 2 * block_size)
        for n in range(len(chosen)):
            signal_rows, null_rows = (top, bottom) if on_top[n] else (bottom, top)
            images[n, 0, signal_rows] = signal[n]
            images[n, 0, null_rows] = null
            masks[n, signal_rows] = True
        if noise > 0:
            images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
        lookup = {d: i for i, d in enumerate(digits)}
        self.images = torch.from_numpy(images)
        self.targets = torch.tensor(
            [lookup[int(d)] for d in bunch.target[chosen]], dtype=torch.int64
        )
        self.masks = torch.from_numpy(masks)
        self.signal_on_top = torch.from_numpy(on_top)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "image": self.images[index],
            "target": self.targets[index],
            "mask": self.masks[index],
        }

    def classification(self) -> TensorDataset:
        """``(image, target)`` pairs for training."""
        return TensorDataset(self.images, self.targets)
