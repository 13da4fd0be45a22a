"""Pixel labels must show the maps' field of view: a height/width ratio that differs is refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lightning_distill.functional import dissection_tally, upsample_activations
from lightning_distill.metrics import NetworkDissection

NAMES = ["-", "stripe", "red"]
CATEGORIES = ["", "object", "color"]


def stripe_probe(height: int = 12, width: int = 30, images: int = 8):
    """Activations ``[N, 1, h, w]`` that detect a vertical stripe exactly, and its labels."""
    generator = torch.Generator().manual_seed(0)
    activations = torch.zeros(images, 1, height, width)
    labels = torch.zeros(images, 1, height, width, dtype=torch.long)
    for i in range(images):
        column = int(torch.randint(0, width - 3, (1,), generator=generator))
        activations[i, 0, :, column : column + 3] = 1.0
        labels[i, 0, :, column : column + 3] = 1
    return activations, labels


def tally(activations, labels):
    return dissection_tally(activations, labels, torch.tensor([0.5]), torch.tensor([-1, 0, 1]), 2)


def test_transposed_labels_are_refused_before_any_state_changes():
    activations, labels = stripe_probe()
    transposed = labels.transpose(-1, -2).contiguous()  # [N, 1, 30, 12]: (W, H) by mistake
    metric = NetworkDissection(1, NAMES, CATEGORIES, quantile=0.5)
    before = {name: getattr(metric, name).clone() for name in ("histogram", "minimum")}
    with pytest.raises(ValueError, match=r"labels .*\(30, 12\).* activations .*\(12, 30\)"):
        metric.update(activations, transposed)  # threshold pass: refused at once
    for name, value in before.items():
        assert torch.equal(getattr(metric, name), value), name
    with pytest.raises(ValueError, match=r"labels .*\(30, 12\).* activations .*\(12, 30\)"):
        tally(activations, transposed)
    metric.set_thresholds(torch.tensor([0.5]))  # tally pass fed from the data
    with pytest.raises(ValueError, match="not transposed"):
        metric.update(activations, transposed)
    assert int(metric.tallied_images) == 0


def test_right_labels_give_the_perfect_detector():
    # the same data with matching labels: accepted silently, IoU 1 (what the transposed labels
    # turned into 0.057 before they were refused)
    activations, labels = stripe_probe()
    metric = NetworkDissection(1, NAMES, CATEGORIES, quantile=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.update(activations, labels)
        metric.set_thresholds(torch.tensor([0.5]))
        metric.update(activations, labels)
    assert metric.results().units["iou"].iloc[0] == 1.0


@pytest.mark.parametrize(
    ("maps", "labels"),
    [
        ((7, 7), (28, 28)),  # an integer multiple (the README's case)
        ((12, 30), (24, 60)),  # non-square, integer multiple
        ((13, 13), (112, 112)),  # AlexNet conv5 on Broden's 112 labels: not an integer factor
        ((8, 10), (225, 301)),  # stride 32 with sides rounded up: ratios 28.1 and 30.1
        ((5, 7), (20, 28)),
        ((1, 1), (9, 4)),  # one value per map: no aspect to keep
        ((6, 6), (6, 6)),
    ],
)
def test_labels_of_the_maps_field_of_view_are_accepted_silently(maps, labels):
    activations = torch.rand(2, 3, *maps)
    pixel_labels = torch.randint(0, 3, (2, 1, *labels))
    metric = NetworkDissection(3, NAMES, CATEGORIES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.update(activations, pixel_labels)
        tally(activations[:, :1], pixel_labels)


@pytest.mark.parametrize(
    ("maps", "labels"),
    [((12, 30), (30, 12)), ((7, 14), (28, 28)), ((2, 5), (20, 8)), ((28, 28), (112, 56))],
)
def test_labels_with_another_height_width_ratio_are_refused(maps, labels):
    activations = torch.rand(2, 1, *maps)
    pixel_labels = torch.randint(0, 3, (2, 1, *labels))
    with pytest.raises(ValueError, match=rf"labels have spatial shape \({labels[0]}, "):
        NetworkDissection(1, NAMES, CATEGORIES).update(activations, pixel_labels)
    with pytest.raises(ValueError, match="height/width ratios differ"):
        tally(activations, pixel_labels)


def test_labels_smaller_than_the_maps_downsample_the_maps():
    # as NetDissect-Lite does for layers finer than the labels: no warning, the maps resized
    activations, labels = stripe_probe(12, 30)
    small = labels[..., ::3, ::3].contiguous()  # [N, 1, 4, 10]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NetworkDissection(1, NAMES, CATEGORIES).update(activations, small)
        got = tally(activations, small)
    # the tallies are those of the maps resized to the labels beforehand
    expected = tally(upsample_activations(activations, (4, 10)), small)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_maps_shrunk_to_smaller_labels_are_resized_as_pil_does():
    # NetDissect-Lite resizes each map with scipy's imresize(mode="F"): PIL's bilinear resize,
    # which widens its filter when it shrinks (antialiasing); plain bilinear sampling differs
    from PIL import Image

    generator = torch.Generator().manual_seed(1)
    for (h, w), (height, width) in [((16, 16), (8, 8)), ((28, 28), (7, 7)), ((13, 17), (6, 9))]:
        maps = torch.rand(3, 2, h, w, generator=generator)
        pil = np.stack([
            np.stack([
                np.asarray(Image.fromarray(m.numpy(), mode="F").resize((width, height), Image.BILINEAR))
                for m in image
            ])
            for image in maps
        ])  # fmt: skip
        np.testing.assert_allclose(upsample_activations(maps, (height, width)), pil, atol=1e-6)
        # and the tallies read the resized maps: a unit's mask is PIL's map above its threshold
        labels = torch.randint(0, 2, (3, 1, height, width), generator=generator)
        got = dissection_tally(
            maps, labels, torch.tensor([0.55, 0.45]), torch.tensor([-1, 0, 1]), 2
        )
        expected = dissection_tally(
            torch.from_numpy(pil), labels, torch.tensor([0.55, 0.45]), torch.tensor([-1, 0, 1]), 2
        )
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b)
