"""Reader for data sets in the Broden format (Bau et al., 2017) used by network dissection."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["BrodenDataset", "decode_label_png"]

_CATEGORY_FIELD = re.compile(r"^([^(]*)\(([^)]*)\)$")


def decode_label_png(pixels: np.ndarray) -> np.ndarray:
    """Label ids of a Broden segmentation PNG: ``R + 256 * G`` (the blue channel is unused)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:  # a grey-scale file holds the ids directly
        return pixels.astype(np.int64)
    return pixels[..., 0].astype(np.int64) + 256 * pixels[..., 1].astype(np.int64)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"Broden data set file missing: {path}")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


class BrodenDataset(Dataset):
    """Images with pixel- and image-level concept labels stored in the Broden format.

    The directory holds ``index.csv`` (one row per image: ``image``, ``split``, ``ih``, ``iw``,
    ``sh``, ``sw`` and one column per category listing, separated by ``;``, either label PNG files
    or whole-image label numbers), ``category.csv``, ``label.csv`` (``number``, ``name``,
    ``category`` as ``"color(12);object(3)"``, ...), ``c_<category>.csv`` (per-category codes with
    their ``coverage``) and ``images/`` with the images and label PNGs. A PNG's label id is
    ``R + 256 * G``.

    A label listed in several categories gets its *primary* one, the category where its coverage
    is largest (as NetDissect does).

    Parameters
    ----------
    root : str or Path
        The data set directory.
    categories : sequence of str, optional
        Keep only these categories (default: all in ``category.csv``).
    split : str, optional
        Keep only rows of this split (e.g. ``"train"``, ``"val"``).
    transform : callable, optional
        Applied to every image tensor ``[3, ih, iw]`` in ``[0, 1]``.

    Attributes
    ----------
    label_names, label_categories : list of str
        Name and primary category of every label number (0: unlabelled).
    categories : list of str
    layers : list of str
        Category of every pixel label layer of ``item["labels"]``.

    Items are dictionaries with ``image`` (float ``[3, ih, iw]``), ``labels`` (int64
    ``[K, sh, sw]``, 0-padded layers) and ``image_labels`` (int64 ``[S]``, 0-padded).
    """

    def __init__(
        self,
        root: str | Path,
        categories: Sequence[str] | None = None,
        split: str | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root must be a Broden data set directory, got {root!s}")
        self.transform = transform
        known = [row["name"] for row in _read_csv(self.root / "category.csv")]
        if categories is None:
            categories = known
        if isinstance(categories, str):  # list("object") would be its letters
            raise TypeError(
                f"categories must be a sequence of category names, e.g. [{categories!r}]; got "
                f"the str {categories!r}"
            )
        categories = list(categories)
        unknown = [cat for cat in categories if cat not in known]
        if unknown:
            raise ValueError(f"categories {unknown} are not in category.csv (has {known})")
        self.categories = categories

        label_rows = _read_csv(self.root / "label.csv")
        num_labels = 1 + max(int(row["number"]) for row in label_rows)
        self.label_names = ["-"] * num_labels
        coverage = np.zeros((num_labels, len(categories)))
        for row in label_rows:
            number = int(row["number"])
            self.label_names[number] = row["name"]
            for part in filter(None, (row.get("category") or "").split(";")):
                match = _CATEGORY_FIELD.match(part)
                if match and match.group(1) in categories:
                    # the label.csv count is the fallback; c_<category>.csv coverage refines it
                    coverage[number, categories.index(match.group(1))] = float(match.group(2))
        for c, cat in enumerate(categories):
            path = self.root / f"c_{cat}.csv"
            if path.is_file():
                for row in _read_csv(path):
                    if row.get("coverage") not in (None, ""):
                        coverage[int(row["number"]), c] = float(row["coverage"])
        primary = coverage.argmax(1)
        self.label_categories = [
            categories[primary[n]] if coverage[n].max() > 0 else "" for n in range(num_labels)
        ]
        self.label_categories[0] = ""

        rows = _read_csv(self.root / "index.csv")
        if split is not None:
            splits = sorted({row.get("split") or "" for row in rows} - {""})
            if split not in splits:
                # a typo would give an empty data set, which fails far from here
                raise ValueError(f"split must be one of index.csv's splits {splits}; got {split!r}")
            rows = [row for row in rows if row.get("split") == split]
        self._rows = []
        pixel_slots = dict.fromkeys(categories, 0)
        image_slots = 0
        for row in rows:
            files, numbers = {}, []
            for cat in categories:
                entries = [e for e in (row.get(cat) or "").split(";") if e]
                names = [e for e in entries if not e.isdigit()]
                numbers += [int(e) for e in entries if e.isdigit()]
                files[cat] = names
                pixel_slots[cat] = max(pixel_slots[cat], len(names))
            image_slots = max(image_slots, len(numbers))
            self._rows.append((row, files, numbers))
        self.layers = [cat for cat in categories for _ in range(pixel_slots[cat])]
        self._pixel_slots = pixel_slots
        self._image_slots = image_slots

    def __len__(self) -> int:
        return len(self._rows)

    def _open(self, name: str, *, colour: bool = False) -> np.ndarray:
        from PIL import Image

        path = self.root / "images" / name
        if not path.is_file():
            raise FileNotFoundError(f"Broden image or label file missing: {path}")
        with Image.open(path) as picture:
            if colour and picture.mode not in ("RGB", "L"):
                # a palette (or alpha, CMYK, ...) image: its array holds palette indices or
                # other channels, not the colours the network should see
                return np.array(picture.convert("RGB"))
            return np.array(picture)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        row, files, numbers = self._rows[index]
        picture = self._open(row["image"], colour=True)
        if picture.ndim == 2:
            picture = np.stack([picture] * 3, axis=-1)
        image = torch.from_numpy(picture[..., :3].astype(np.float32) / 255.0).permute(2, 0, 1)
        if self.transform is not None:
            image = self.transform(image)
        height = int(row.get("sh") or picture.shape[0])
        width = int(row.get("sw") or picture.shape[1])
        labels = np.zeros((len(self.layers), height, width), dtype=np.int64)
        layer = 0
        for cat in self.categories:
            for slot, name in enumerate(files[cat]):
                decoded = decode_label_png(self._open(name))
                if decoded.shape != (height, width):
                    raise ValueError(
                        f"label file {name} is {decoded.shape[0]}x{decoded.shape[1]} but index.csv "
                        f"gives sh x sw = {height}x{width}"
                    )
                labels[layer + slot] = decoded
            layer += self._pixel_slots[cat]
        image_labels = np.zeros(self._image_slots, dtype=np.int64)
        image_labels[: len(numbers)] = numbers
        return {
            "image": image,
            "labels": torch.from_numpy(labels),
            "image_labels": torch.from_numpy(image_labels),
        }
