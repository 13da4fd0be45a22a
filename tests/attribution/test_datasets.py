"""The synthetic cells and the digit blocks: seeded, with the promised heatmaps and masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_distill.datasets import DigitBlocks, SyntheticCells


@pytest.fixture(scope="module")
def cells():
    return SyntheticCells(120, image_size=32, seed=3)


def test_cells_shapes_values_and_seed(cells):
    assert cells.images.shape == (120, 3, 32, 32) and cells.images.dtype == torch.float32
    assert 0.0 <= cells.images.min() and cells.images.max() <= 1.0
    values = {round(v, 6) for v in cells.heatmaps.unique().tolist()}
    assert values == {0.0, 0.4, 0.9}
    again = SyntheticCells(120, image_size=32, seed=3)
    assert torch.equal(again.images, cells.images) and torch.equal(again.heatmaps, cells.heatmaps)
    other = SyntheticCells(120, image_size=32, seed=4)
    assert not torch.equal(other.images, cells.images)
    assert set(cells.targets.tolist()) == set(range(10))
    assert set(cells.backgrounds.tolist()) == {0, 1, 2}


def test_cells_heatmaps_follow_the_classes(cells):
    blank = cells.targets == cells.class_names.index("blank")
    assert blank.any()
    assert cells.heatmaps[blank].abs().sum() == 0
    # every other image has a body (0.4) and a class-specific part (0.9)
    for heatmap in cells.heatmaps[~blank]:
        assert (heatmap == np.float32(0.4)).any() and (heatmap == np.float32(0.9)).any()
    assert torch.equal(cells.masks, cells.heatmaps > 0.65)
    # one item's mask is that image's (computed for the one image, not for all N)
    loaded = torch.utils.data.default_collate([cells[i] for i in range(len(cells))])
    assert torch.equal(loaded["mask"], cells.masks)
    # on black backgrounds the object is the only thing drawn: non-black pixels lie in the body
    black = (cells.backgrounds == 0) & ~blank
    drawn = cells.images[black].amax(1) > 0
    assert not (drawn & (cells.heatmaps[black] == 0)).any()
    # rectangles: the border colour is the class (red, green, blue channel strongest)
    for channel, name in enumerate(("red rectangle", "green rectangle", "blue rectangle")):
        chosen = cells.targets == cells.class_names.index(name)
        border = cells.images[chosen].permute(1, 0, 2, 3)[:, cells.masks[chosen]]
        assert (border.argmax(0) == channel).float().mean() > 0.95
    item = cells[5]
    assert torch.equal(item["heatmap"], cells.heatmaps[5]) and int(item["target"]) == int(
        cells.targets[5]
    )


def test_digit_blocks_layout():
    train, test = DigitBlocks("train"), DigitBlocks("test")
    assert len(train) + len(test) == 1797
    assert train.images.shape[1:] == (1, 32, 16)
    # train and test hold different digits
    flat_train = {
        tuple(x.flatten().tolist()) for x in train.images[train.masks[:, None]].view(len(train), -1)
    }
    flat_test = {
        tuple(x.flatten().tolist()) for x in test.images[test.masks[:, None]].view(len(test), -1)
    }
    assert len(flat_train & flat_test) < 5  # only exact duplicates of the bundled digits
    # the null block is the same pattern everywhere; the mask is the other block
    nulls = train.images[~train.masks[:, None]].view(len(train), -1)
    assert (nulls == nulls[0]).all()
    top = train.masks[:, :16].all((1, 2))
    assert torch.equal(top, train.signal_on_top) and torch.equal(
        ~top, train.masks[:, 16:].all((1, 2))
    )
    assert 0.4 < train.signal_on_top.float().mean() < 0.6
    binary = DigitBlocks("train", digits=(3, 8))
    assert set(binary.targets.tolist()) == {0, 1}
    # the digits as an array (np.arange, a tensor) are the same digits
    for given in (np.array([3, 8]), torch.tensor([3, 8])):
        same = DigitBlocks("train", digits=given)
        assert same.class_names == binary.class_names == ["3", "8"]
        assert torch.equal(same.images, binary.images)
        assert torch.equal(same.targets, binary.targets)


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size must be an integer >= 32; got 16"):
        SyntheticCells(4, image_size=16)
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'"):
        DigitBlocks("valid")
    with pytest.raises(ValueError, match="block_size must be a multiple of 8; got 12"):
        DigitBlocks(block_size=12)
    with pytest.raises(ValueError, match="digits must be at least two distinct digits"):
        DigitBlocks(digits=(1, 1))


def test_digit_blocks_refuses_an_empty_split():
    # 0.001 of the 1797 digits rounds to 2 test digits, neither a 0 nor a 1: an empty test split
    # (and float32 targets) came back without a word, the training split is what it was
    train = DigitBlocks("train", digits=(0, 1), test_fraction=0.001)
    assert len(train) > 0 and train.targets.dtype == torch.int64
    for split, fraction in (("test", 0.001), ("train", 0.9996)):
        with pytest.raises(ValueError, match=f"test_fraction must be .* {split} split .*; got "):
            DigitBlocks(split, digits=(0, 1), test_fraction=fraction)


@pytest.mark.parametrize(
    ("make", "name", "value"),
    [
        (lambda: SyntheticCells(8, image_size=32, seed=3), "seed", 4),
        (lambda: SyntheticCells(8, image_size=32, seed=3), "num_images", 20),
        (lambda: DigitBlocks(split="test", digits=(0, 1)), "digits", (2, 3)),
        (lambda: DigitBlocks(split="test", digits=(0, 1)), "split", "train"),
    ],
)
def test_a_generated_datasets_recipe_is_fixed_at_construction(make, name, value):
    # set later, a seed or size did nothing: the data generated at construction stayed, with
    # a setting that described other data
    data = make()
    images = data.images.clone()
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction .*Build a new"):
        setattr(data, name, value)
    assert torch.equal(data.images, images)
    data.images = data.images[:2]  # the data themselves are the user's to subset
    assert len(data.images) == 2
