"""Reader for data sets in the Broden format (Bau et al., 2017) used by network dissection."""

from __future__ import annotations

import csv
import math
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


# PIL modes of 16-bit grey images (PNG, TIFF): converting them to RGB clips them at 255
_GREY_16_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
# PIL modes whose array holds label ids as ``decode_label_png`` reads them
_LABEL_MODES = ("RGB", "RGBA", "L", "1", "I", *_GREY_16_BIT)


def _read_csv(path: Path, columns: Sequence[str] = ()) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, which must hold ``columns``."""
    if not path.is_file():
        raise FileNotFoundError(f"Broden data set file missing: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path.name} must be a UTF-8 CSV file ({path}); {error}") from None
    missing = [column for column in columns if column not in header]
    if missing:
        raise ValueError(
            f"{path.name} must have the columns {list(columns)}; {missing} missing (its header "
            f"is {header}): {path}"
        )
    for line, row in enumerate(rows, 2):
        # csv.DictReader files the fields of a row by position: a field left out, or one
        # more (an unquoted comma), would shift the later ones into other columns
        if None in row or None in row.values():
            fields = sum(value is not None for key, value in row.items() if key is not None)
            fields += len(row.get(None, []))
            raise ValueError(
                f"{path.name} line {line} must have one field per column of the header "
                f"({len(header)}, empty ones included); got {fields}: {path}"
            )
    return rows


def _number(row: dict[str, str], column: str, path: Path, line: int) -> int:
    """A non-negative integer field (a label number, a size): ``int()`` alone would take
    ``-1``, which indexes from the end."""
    value = row.get(column)
    text = (value or "").strip()
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(
            f"{path.name} line {line}: {column} must be a non-negative integer; got {value!r}"
        )
    return int(text)


def _coverage(text: str, path: Path, line: int) -> float:
    """A label's coverage: a finite number >= 0 (a NaN or negative one would leave the label
    without a category, never a concept, without a word)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{path.name} line {line}: coverage must be a finite number >= 0; got {text!r}"
        )
    return value


class BrodenDataset(Dataset):
    """Images with pixel- and image-level concept labels stored in the Broden format.

    The directory holds ``index.csv`` (one row per image: ``image``, ``split``, ``ih``, ``iw``,
    ``sh``, ``sw`` and one column per category listing, separated by ``;``, either label PNG files
    or whole-image label numbers), ``category.csv``, ``label.csv`` (``number``, ``name``,
    ``category`` as ``"color(12);object(3)"``, ...), ``c_<category>.csv`` (per-category codes with
    their ``coverage``) and ``images/`` with the images and label PNGs. A PNG's label id is
    ``R + 256 * G`` (of its colours when it is a palette file; a grey file holds the ids). A
    16-bit grey image is read in its range (``value / 65535``). A malformed file (a column
    missing, a number that is not one, a label id that ``label.csv`` does not have) raises a
    ``ValueError`` naming the file and line.

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
            raise FileNotFoundError(
                f"root must be a Broden data set directory (the folder holding index.csv, "
                f"category.csv and images/, as NetDissect-Lite's script/dlbroden.sh unzips "
                f"broden1_224.zip); got {str(root)!r}, which is not a directory"
            )
        self.transform = transform
        known = [row["name"] for row in _read_csv(self.root / "category.csv", ["name"])]
        if not known:
            raise ValueError(f"category.csv lists no categories: {self.root / 'category.csv'}")
        if categories is None:
            categories = known
        if isinstance(categories, str):  # list("object") would be its letters
            raise TypeError(
                f"categories must be a sequence of category names, e.g. [{categories!r}]; got "
                f"the str {categories!r}"
            )
        categories = list(categories)
        if not categories:
            raise ValueError(
                f"categories must name at least one category of category.csv {known}; got "
                "none (leave it out to keep them all)"
            )
        unknown = [cat for cat in categories if cat not in known]
        if unknown:
            raise ValueError(f"categories {unknown} are not in category.csv (has {known})")
        self.categories = categories

        path = self.root / "label.csv"
        label_rows = _read_csv(path, ["number", "name"])
        if not label_rows:
            raise ValueError(f"label.csv lists no labels: {path}")
        numbers = [_number(row, "number", path, line) for line, row in enumerate(label_rows, 2)]
        first_line: dict[int, int] = {}
        for line, number in enumerate(numbers, 2):
            if number in first_line:  # the later row's name would replace the earlier's
                raise ValueError(
                    f"label.csv line {line}: number must name one label; {number} is also the "
                    f"number of line {first_line[number]}"
                )
            first_line[number] = line
        num_labels = 1 + max(numbers)
        self.label_names = ["-"] * num_labels
        coverage = np.zeros((num_labels, len(categories)))
        for line, (number, row) in enumerate(zip(numbers, label_rows, strict=True), 2):
            self.label_names[number] = row["name"]
            for part in filter(None, (row.get("category") or "").split(";")):
                match = _CATEGORY_FIELD.match(part.strip())
                try:
                    count = float(match.group(2)) if match else math.nan
                except ValueError:
                    count = math.nan
                if not (math.isfinite(count) and count >= 0):
                    # a category it does not match would leave the label without one: never
                    # a concept, without a word
                    raise ValueError(
                        f"label.csv line {line}: category must be entries like 'object(12)' "
                        f"(a category and its count) separated by ';'; got {part!r}"
                    )
                if match.group(1) in categories:
                    # the label.csv count is the fallback; c_<category>.csv coverage refines it
                    coverage[number, categories.index(match.group(1))] = count
        for c, cat in enumerate(categories):
            path = self.root / f"c_{cat}.csv"
            if path.is_file():
                for line, row in enumerate(_read_csv(path, ["number"]), 2):
                    if row.get("coverage") not in (None, ""):
                        number = _number(row, "number", path, line)
                        if number >= num_labels:
                            raise ValueError(
                                f"{path.name} line {line}: label {number} is not in label.csv "
                                f"(numbers 0..{num_labels - 1})"
                            )
                        coverage[number, c] = _coverage(row["coverage"], path, line)
        primary = coverage.argmax(1)
        self.label_categories = [
            categories[primary[n]] if coverage[n].max() > 0 else "" for n in range(num_labels)
        ]
        self.label_categories[0] = ""

        path = self.root / "index.csv"
        rows = list(enumerate(_read_csv(path, ["image"]), 2))
        if split is not None:
            splits = sorted({row.get("split") or "" for _, row in rows} - {""})
            if split not in splits:
                # a typo would give an empty data set, which fails far from here
                raise ValueError(f"split must be one of index.csv's splits {splits}; got {split!r}")
            rows = [(line, row) for line, row in rows if row.get("split") == split]
        self._rows = []
        pixel_slots = dict.fromkeys(categories, 0)
        image_slots = 0
        for line, row in rows:
            files, numbers = {}, []
            for cat in categories:
                entries = [e for e in (row.get(cat) or "").split(";") if e]
                names = [e for e in entries if not e.isdigit()]
                listed = [int(e) for e in entries if e.isdigit()]
                unknown = next((n for n in listed if n >= num_labels), None)
                if unknown is not None:
                    raise ValueError(
                        f"index.csv line {line}: {cat} lists label {unknown}, which "
                        f"label.csv does not have (numbers 0..{num_labels - 1})"
                    )
                numbers += listed
                files[cat] = names
                pixel_slots[cat] = max(pixel_slots[cat], len(names))
            image_slots = max(image_slots, len(numbers))
            size = tuple(
                _number(row, column, path, line) if row.get(column) else None
                for column in ("sh", "sw")
            )
            self._rows.append((row, files, numbers, size))
        self.layers = [cat for cat in categories for _ in range(pixel_slots[cat])]
        self._pixel_slots = pixel_slots
        self._image_slots = image_slots

    def __len__(self) -> int:
        return len(self._rows)

    def _path(self, name: str) -> Path:
        path = self.root / "images" / name
        if not path.is_file():
            raise FileNotFoundError(f"Broden image or label file missing: {path}")
        return path

    def _image(self, name: str) -> np.ndarray:
        """``[ih, iw, 3]`` float32 colours in ``[0, 1]``."""
        from PIL import Image

        path = self._path(name)
        with Image.open(path) as picture:
            if picture.mode in _GREY_16_BIT:
                # in [0, 65535]: converting to RGB would clip every value above 255
                grey = np.array(picture).astype(np.float32) / 65535.0
                return np.stack([grey] * 3, axis=-1)
            if picture.mode in ("I", "F"):
                raise ValueError(
                    f"image {path} has PIL mode {picture.mode!r} (32-bit integer or float "
                    "pixels), whose range is unknown: save it as 8-bit RGB or grey"
                )
            if picture.mode not in ("RGB", "L"):
                # a palette (or alpha, CMYK, ...) image: its array holds palette indices or
                # other channels, not the colours the network should see
                picture = picture.convert("RGB")
            pixels = np.array(picture)
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        return pixels[..., :3].astype(np.float32) / 255.0

    def _label(self, name: str) -> np.ndarray:
        """``[sh, sw]`` label ids of a label file."""
        from PIL import Image

        path = self._path(name)
        with Image.open(path) as picture:
            mode = picture.mode
            if mode in ("P", "PA"):
                # a palette (as PNG optimisers store few colours): its array holds palette
                # indices; the ids are its colours' R + 256 * G
                picture = picture.convert("RGB")
            elif mode == "LA":
                picture = picture.getchannel("L")  # grey ids; the alpha would read as G
            elif mode not in _LABEL_MODES:
                raise ValueError(
                    f"label file {path} has PIL mode {mode!r}: label files must be RGB(A) "
                    "(id = R + 256 * G), grey (id = value) or a palette of such colours"
                )
            ids = decode_label_png(np.array(picture))
        if ids.size and int(ids.max()) >= len(self.label_names):
            raise ValueError(
                f"label file {name} holds label {int(ids.max())}, which label.csv does not have "
                f"(numbers 0..{len(self.label_names) - 1}): {path}"
            )
        return ids

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        row, files, numbers, (height, width) = self._rows[index]
        picture = self._image(row["image"])
        image = torch.from_numpy(picture).permute(2, 0, 1)
        if self.transform is not None:
            image = self.transform(image)
        given = height is not None and width is not None
        height = picture.shape[0] if height is None else height
        width = picture.shape[1] if width is None else width
        labels = np.zeros((len(self.layers), height, width), dtype=np.int64)
        layer = 0
        for cat in self.categories:
            for slot, name in enumerate(files[cat]):
                decoded = self._label(name)
                if decoded.shape != (height, width):
                    size = (
                        "index.csv gives sh x sw ="
                        if given
                        else "the image (index.csv gives no sh, sw) is"
                    )
                    raise ValueError(
                        f"label file {name} is {decoded.shape[0]}x{decoded.shape[1]} but {size} "
                        f"{height}x{width}"
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
