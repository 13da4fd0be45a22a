"""The synthetic concept data set and the Broden reader (on a fixture written here)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lightning_distill.datasets import BrodenDataset, SyntheticConcepts, decode_label_png
from lightning_distill.metrics import NetworkDissection


def test_synthetic_is_reproducible_and_seeded():
    first, again, other = (SyntheticConcepts(20, seed=s) for s in (7, 7, 8))
    for name in ("images", "targets", "labels", "image_labels"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.images, other.images)


def test_synthetic_labels_are_consistent():
    data = SyntheticConcepts(60, image_size=24, seed=1)
    names, categories = data.label_names, data.label_categories
    assert names[0] == "-" and len(names) == len(categories)
    layers = data.labels
    # every object pixel has a colour and a texture, and the background has none
    assert torch.equal(layers[:, 0] > 0, layers[:, 1] > 0)
    assert torch.equal(layers[:, 0] > 0, layers[:, 2] > 0)
    for layer, category in enumerate(["object", "color", "texture"]):
        ids = layers[:, layer].unique().tolist()
        assert all(categories[i] == category for i in ids if i)
    assert all(categories[i] == "scene" for i in data.image_labels.flatten().tolist())
    # the class is the shape of the main (largest) object, which is always visible
    for n in range(len(data)):
        pixels = torch.bincount(layers[n, 0].flatten(), minlength=len(names))
        pixels[0] = 0
        assert data.class_names[data.targets[n]] == names[int(pixels.argmax())]
    # whole classes are balanced enough to learn
    assert len(data.targets.unique()) == len(data.class_names)
    images = data.images
    assert images.dtype == torch.float32 and images.min() >= 0 and images.max() <= 1


def test_synthetic_classification_view():
    data = SyntheticConcepts(10, seed=0)
    x, y, index = data.classification(with_index=True)[3]
    assert torch.equal(x, data.images[3]) and int(y) == int(data.targets[3]) and int(index) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_images": 0}, "num_images must be an integer >= 1; got 0"),
        ({"image_size": 8}, "image_size must be an integer >= 16; got 8"),
        ({"max_distractors": -1}, "max_distractors must be an integer >= 0; got -1"),
        ({"seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"seed": 1.5}, "seed must be an integer >= 0; got 1.5"),
        ({"seed": None}, "seed must be an integer >= 0; got None"),
    ],
)
def test_synthetic_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SyntheticConcepts(**kwargs)


def test_synthetic_takes_numpy_integers():
    data = SyntheticConcepts(np.int64(4), image_size=np.int64(16), seed=np.int64(3))
    same = SyntheticConcepts(4, image_size=16, seed=3)
    assert len(data) == 4 and torch.equal(data.images, same.images)


# ------------------------------------------------------------------ Broden fixture


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def encode(ids: np.ndarray) -> np.ndarray:
    """Label ids -> Broden RGB: R = id % 256, G = id // 256."""
    rgb = np.zeros((*ids.shape, 3), dtype=np.uint8)
    rgb[..., 0] = ids % 256
    rgb[..., 1] = ids // 256
    return rgb


def edit_csv(root, name, change):
    """Rewrite the CSV file ``root / name`` with ``change(rows)`` (the header is row 0)."""
    path = root / name
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(change(rows))


@pytest.fixture
def broden(tmp_path):
    """Three 8x8 images with 4x4 labels: color and object (pixels), part (two layers), scene."""
    root = tmp_path / "broden"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    # label 300 needs the green channel; "wheel" (4) is listed under object and part, with
    # more coverage as a part
    labels = [
        ("0", "-", "", "0", "0", ""),
        ("1", "red", "color(3)", "3", "0.2", ""),
        ("2", "car", "object(2)", "2", "0.3", ""),
        ("3", "street", "scene(2)", "2", "1.0", ""),
        ("4", "wheel", "object(1);part(2)", "2", "0.1", ""),
        ("300", "door", "part(1)", "1", "0.05", ""),
    ]
    write_csv(
        root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"], labels
    )
    write_csv(
        root / "category.csv",
        ["name", "first", "last", "count", "frequency"],
        [
            ("color", 1, 1, 1, 3),
            ("object", 2, 4, 2, 2),
            ("part", 4, 300, 2, 2),
            ("scene", 3, 3, 1, 2),
        ],
    )
    coverage = {
        "color": [(1, 1, 0.2)],
        "object": [(1, 2, 0.3), (2, 4, 0.01)],
        "part": [(1, 4, 0.1), (2, 300, 0.05)],
        "scene": [(1, 3, 1.0)],
    }
    for cat, rows in coverage.items():
        write_csv(
            root / f"c_{cat}.csv",
            ["code", "number", "name", "frequency", "coverage"],
            [(code, number, "x", 1, cov) for code, number, cov in rows],
        )
    index_rows, expected = [], []
    for n in range(3):
        image = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"img{n}.jpg", quality=100)
        Image.fromarray(image).save(root / "images" / f"img{n}.png")
        color = rng.choice([0, 1], size=(4, 4))
        obj = rng.choice([0, 2, 4], size=(4, 4))
        part1 = rng.choice([0, 4], size=(4, 4))
        part2 = rng.choice([0, 300], size=(4, 4))
        for name, ids in (("color", color), ("object", obj), ("part1", part1), ("part2", part2)):
            Image.fromarray(encode(ids)).save(root / "images" / f"img{n}_{name}.png")
        parts = f"img{n}_part1.png" if n == 1 else f"img{n}_part1.png;img{n}_part2.png"
        scene = "3" if n != 2 else ""
        index_rows.append(
            (
                f"img{n}.png",
                "train" if n < 2 else "val",
                8,
                8,
                4,
                4,
                f"img{n}_color.png",
                f"img{n}_object.png",
                parts,
                scene,
            )
        )
        expected.append(
            {
                "image": image,
                "layers": [color, obj, part1, np.zeros((4, 4), int) if n == 1 else part2],
                "scene": [3] if n != 2 else [0],
            }
        )
    write_csv(
        root / "index.csv",
        ["image", "split", "ih", "iw", "sh", "sw", "color", "object", "part", "scene"],
        index_rows,
    )
    return root, expected


def test_decode_label_png():
    ids = np.array([[0, 1, 255], [256, 300, 1203]])
    assert np.array_equal(decode_label_png(encode(ids)), ids)


def test_broden_reader(broden):
    root, expected = broden
    data = BrodenDataset(root)
    assert len(data) == 3
    assert data.categories == ["color", "object", "part", "scene"]
    assert data.layers == ["color", "object", "part", "part"]
    assert data.label_names[300] == "door" and data.label_names[4] == "wheel"
    assert data.label_categories[4] == "part"  # primary category: larger coverage
    assert data.label_categories[2] == "object" and data.label_categories[3] == "scene"
    for n, item in enumerate(data):
        want = expected[n]
        assert torch.equal(item["image"], torch.from_numpy(want["image"]).permute(2, 0, 1) / 255.0)
        assert torch.equal(item["labels"], torch.from_numpy(np.stack(want["layers"])).long())
        assert item["image_labels"].tolist() == want["scene"]
    assert len(BrodenDataset(root, split="val")) == 1
    only = BrodenDataset(root, categories=["object"])
    assert only.layers == ["object"] and only[0]["image_labels"].numel() == 0


def test_broden_reads_a_palette_image_as_its_colours(broden):
    from PIL import Image

    root, _ = broden
    path = root / "images" / "img0.png"
    colours = Image.open(path).convert("RGB")
    colours.quantize(colors=256).save(path)  # the same picture as palette indices
    assert Image.open(path).mode == "P"
    image = BrodenDataset(root)[0]["image"]
    want = np.array(Image.open(path).convert("RGB"))
    assert torch.equal(image, torch.from_numpy(want).permute(2, 0, 1) / 255.0)
    assert not torch.equal(image[0], image[1])  # colours, not an index repeated as grey


def test_broden_feeds_the_metric(broden):
    root, _ = broden
    data = BrodenDataset(root)
    metric = NetworkDissection(2, data.label_names, data.label_categories, quantile=0.5)
    loader = DataLoader(data, batch_size=2)
    for batch in loader:
        metric.update(batch["image"][:, :2])
    metric.compute_thresholds()
    for batch in loader:
        metric.update(batch["image"][:, :2], batch["labels"], batch["image_labels"])
    results = metric.results()
    assert len(results.units) == 2
    # every pixel of the two scene images is "street"
    assert int(metric.label_area[3]) == 2 * 16


def test_broden_bad_input(broden, tmp_path):
    root, _ = broden
    # the message says what the folder holds and where it comes from, not only that it is absent
    with pytest.raises(
        FileNotFoundError,
        match=r"root must be a Broden data set directory \(the folder holding "
        r"index.csv, .*dlbroden.sh.*\); got '.*missing', which is not a directory",
    ):
        BrodenDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"categories \['texture'\] are not in category.csv"):
        BrodenDataset(root, categories=["texture"])
    # a str is one category's name, not a sequence of its letters
    with pytest.raises(TypeError, match=r"categories must be a sequence .* e.g. \['object'\]"):
        BrodenDataset(root, categories="object")
    # a split no row has (a typo) would give an empty data set
    with pytest.raises(ValueError, match=r"split must be one of index.csv's splits \[.*'val'"):
        BrodenDataset(root, split="validation")
    (root / "images" / "img0_color.png").unlink()
    with pytest.raises(FileNotFoundError, match="img0_color.png"):
        BrodenDataset(root)[0]


@pytest.mark.parametrize("mode", ["P", "LA"])
def test_broden_reads_label_pngs_of_other_modes_as_their_ids(broden, mode):
    # a PNG optimiser may store an RGB label file as a palette; a grey file may carry alpha.
    # Their arrays hold palette indices, or grey and alpha, not R + 256 * G
    root, expected = broden
    ids = expected[0]["layers"][1]  # object: ids 0, 2 and 4
    path = root / "images" / "img0_object.png"
    if mode == "P":
        Image.fromarray(encode(ids)).quantize(colors=256).save(path)
    else:
        Image.fromarray(ids.astype(np.uint8), "L").convert("LA").save(path)
    assert Image.open(path).mode == mode
    labels = BrodenDataset(root)[0]["labels"]
    assert torch.equal(labels[1], torch.from_numpy(ids).long())


def test_broden_reads_16_bit_grey_images_in_their_range(broden):
    root, _ = broden
    grey = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(grey).save(root / "images" / "img0.png")
    assert Image.open(root / "images" / "img0.png").mode == "I;16"
    image = BrodenDataset(root)[0]["image"]
    want = torch.from_numpy(grey / 65535.0).float()
    assert torch.allclose(image, want.expand(3, 8, 8))  # it was clipped: 1.0 but for the 0


def test_broden_refuses_malformed_csv_files_naming_them(broden):
    root, _ = broden

    def edit(name, change):
        edit_csv(root, name, change)

    original = {name: (root / name).read_text() for name in ("label.csv", "category.csv")}
    original["index.csv"] = (root / "index.csv").read_text()

    def restore():
        for name, text in original.items():
            (root / name).write_text(text)

    cases = [
        # a category without its count was dropped: "car" was no concept, without a word
        (
            "label.csv",
            lambda r: [*r[:3], [*r[3][:2], "object", *r[3][3:]], *r[4:]],
            r"label.csv line 4: category must be .*'object\(12\)'.*got 'object'",
        ),
        # a negative number named the last label (Python's index from the end)
        (
            "label.csv",
            lambda r: [*r[:2], ["-1", *r[2][1:]], *r[3:]],
            r"label.csv line 3: number must be a non-negative integer; got '-1'",
        ),
        # a number given twice: the later row's name silently replaced the earlier's
        (
            "label.csv",
            lambda r: [*r[:3], [r[2][0], *r[3][1:]], *r[4:]],
            r"label.csv line 4: number must name one label; \d+ is also the number of line 3",
        ),
        ("label.csv", lambda r: r[:1], r"label.csv lists no labels"),
        ("label.csv", lambda r: [row[1:] for row in r], r"label.csv must have the columns"),
        ("category.csv", lambda r: [row[1:] for row in r], r"category.csv must have the columns"),
        ("category.csv", lambda r: r[:1], r"category.csv lists no categories"),
        ("index.csv", lambda r: [row[1:] for row in r], r"index.csv must have the columns"),
        (
            "index.csv",
            lambda r: [r[0]] + [[*row[:4], "x", *row[5:]] for row in r[1:]],
            r"index.csv line 2: sh must be a non-negative integer; got 'x'",
        ),
        (
            "index.csv",
            lambda r: [r[0]] + [[*row[:-1], "999"] for row in r[1:]],
            r"index.csv line 2: scene lists label 999, which label.csv does not have",
        ),
    ]
    for name, change, match in cases:
        edit(name, change)
        with pytest.raises(ValueError, match=match):
            BrodenDataset(root)[0]
        restore()

    # a label file holding an id beyond label.csv's, named (the metric's error did not)
    ids = np.zeros((4, 4), dtype=np.int64)
    ids[0, 0] = 500
    Image.fromarray(encode(ids)).save(root / "images" / "img0_object.png")
    with pytest.raises(ValueError, match=r"img0_object.png holds label 500, .*label.csv"):
        BrodenDataset(root)[0]


@pytest.mark.parametrize(
    "name, change, match",
    [
        # a field left out of a row moved the later ones into other columns: the object
        # file read as color labels, the part files as objects (or a category's labels lost)
        (
            "index.csv",
            lambda r: [r[0], [*r[1][:6], *r[1][7:]], *r[2:]],
            r"index.csv line 2 must have one field per column of the header \(10, empty ones "
            r"included\); got 9",
        ),
        (
            "label.csv",
            lambda r: [*r[:3], [*r[3], "x"], *r[4:]],
            r"label.csv line 4 must have one field per column of the header \(6, .*got 7",
        ),
        # a coverage that is no number: Python's float() complaint, naming neither file nor line
        (
            "c_object.csv",
            lambda r: [r[0], [*r[1][:4], "0,3"], *r[2:]],
            r"c_object.csv line 2: coverage must be a finite number >= 0; got '0,3'",
        ),
        # a NaN (or negative) coverage left "car" without a category, never a concept, silently
        (
            "c_object.csv",
            lambda r: [r[0], [*r[1][:4], "nan"], *r[2:]],
            r"c_object.csv line 2: coverage must be a finite number >= 0; got 'nan'",
        ),
        (
            "label.csv",
            lambda r: [*r[:3], [*r[3][:2], "object(-2)", *r[3][3:]], *r[4:]],
            r"label.csv line 4: category must be .*got 'object\(-2\)'",
        ),
    ],
    ids=["index field missing", "label field extra", "coverage text", "coverage nan", "count<0"],
)
def test_broden_refuses_shifted_rows_and_bad_coverage_naming_the_line(broden, name, change, match):
    root, _ = broden
    assert BrodenDataset(root).label_categories[2] == "object"  # "car", as written
    edit_csv(root, name, change)
    with pytest.raises(ValueError, match=match):
        BrodenDataset(root)[0]


def test_broden_refuses_an_empty_list_of_categories(broden):
    # numpy's "attempt to get argmax of an empty sequence" before
    root, _ = broden
    with pytest.raises(ValueError, match=r"categories must name at least one category of "):
        BrodenDataset(root, categories=[])


def test_synthetic_concepts_recipe_is_fixed_at_construction():
    # set later, a seed did nothing: the data generated at construction stayed
    data = SyntheticConcepts(4, image_size=16, seed=1)
    with pytest.raises(AttributeError, match=r"^seed is set at construction .*Build a new"):
        data.seed = 2
    assert data.seed == 1
    import copy
    import pickle

    for other in (copy.deepcopy(data), pickle.loads(pickle.dumps(data))):
        assert other.seed == 1 and torch.equal(other.images, data.images)
