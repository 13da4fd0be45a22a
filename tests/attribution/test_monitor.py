"""AttributionMonitor: logs the metrics' values, restores modes, equal under DDP, clear errors."""

from __future__ import annotations

import math
import warnings
from collections import UserDict

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler

from lightning_distill.attribution import attribute
from lightning_distill.callbacks import AttributionMonitor
from lightning_distill.datasets import SyntheticCells
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore
from tests.helpers import quiet_trainer


def cnn(seed: int, width: int = 6) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width, momentum=0.0),  # lr=0 and no running-stat updates: fixed network
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


class StudentWithTeacher(L.LightningModule):
    """A student trained on labels, with a frozen teacher beside it (as in distillation)."""

    def __init__(self, lr: float = 0.0) -> None:
        super().__init__()
        self.student = cnn(0)
        self.teacher = cnn(1, width=8).requires_grad_(False)
        self.lr = lr

    def forward(self, x):
        return self.student(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.student(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.student.parameters(), lr=self.lr)


@pytest.fixture(scope="module")
def cells():
    return SyntheticCells(24, image_size=32, seed=5)


def expected_scores(module: StudentWithTeacher, data: SyntheticCells) -> dict[str, float]:
    """The metrics fed by hand, batch by batch, with the student in eval mode."""
    five, local, agree = FiveBandScore(), AttributionLocalisation(), AttributionAgreement()
    module.eval()
    for start in range(0, len(data), 8):
        x = data.images[start : start + 8].to(next(module.parameters()).dtype)
        y = data.targets[start : start + 8]
        maps = attribute(module.student, x, y, "Saliency")
        five.update(maps, data.heatmaps[start : start + 8])
        local.update(maps, data.masks[start : start + 8])
        agree.update(attribute(module.teacher, x, y, "Saliency"), maps)
    values = {name: float(v) for name, v in five.compute().items()}
    values["localisation"] = float(local.compute())
    values.update({name: float(v) for name, v in agree.compute().items()})
    return values


def test_logs_the_metrics_and_restores_modes(cells, tmp_path):
    module = StudentWithTeacher()
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=8), module="student", save_dir=tmp_path, plot_images=2
    )
    trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=1)
    trainer.fit(module, DataLoader(cells.classification(), batch_size=8))
    logged = {
        k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("attribution/")
    }
    expected = expected_scores(module, cells)
    assert set(logged) == {f"attribution/{name}" for name in expected}
    for name, value in expected.items():
        assert logged[f"attribution/{name}"] == pytest.approx(value, rel=1e-6), name
    assert monitor.history[0]["epoch"] == 0
    assert (tmp_path / "attribution_epoch0.png").exists()
    # the teacher stays frozen; training modes are those Lightning left, not eval
    assert not any(p.requires_grad for p in module.teacher.parameters())


def test_evaluate_gives_modes_back_and_works_under_no_grad(cells):
    module = StudentWithTeacher()
    module.train()
    module.teacher.eval()
    modes = [m.training for m in module.modules()]
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=8), module="student", metrics=["agreement"]
    )
    with torch.no_grad():
        values = monitor.evaluate(module)
    assert set(values) == {"spearman", "top_k_iou"}
    assert [m.training for m in module.modules()] == modes
    assert all(p.grad is None for p in module.parameters())


def test_bad_input(cells):
    with pytest.raises(ValueError, match="dataloader must be in a fixed order"):
        AttributionMonitor(DataLoader(cells, batch_size=8, shuffle=True))
    with pytest.raises(ValueError, match="metrics must be one of 'localisation', 'five_band'"):
        AttributionMonitor(DataLoader(cells, batch_size=8), metrics=["dissection"])
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 1"):
        AttributionMonitor(DataLoader(cells, batch_size=8), every_n_epochs=0)
    plain = DataLoader(cells.classification(), batch_size=8)
    monitor = AttributionMonitor(plain, metrics=["localisation"])
    with pytest.raises(ValueError, match="'localisation' needs probe batches with a 'mask' entry"):
        monitor.evaluate(cnn(0))
    # a misspelt method or keyword fails at construction, not after epochs of training
    with pytest.raises(ValueError, match="method must be"):
        AttributionMonitor(DataLoader(cells, batch_size=8), method="Saliancy")
    with pytest.raises(TypeError, match="method_kwargs must be keyword arguments of Saliency"):
        AttributionMonitor(DataLoader(cells, batch_size=8), method_kwargs={"n_steps": 8})
    with pytest.raises(TypeError, match="method_kwargs must be the arguments Occlusion"):
        AttributionMonitor(DataLoader(cells, batch_size=8), method="Occlusion")
    # every sampler that draws a new order on each pass
    random_subset = SubsetRandomSampler(range(8))
    with pytest.raises(ValueError, match="got 'a DataLoader with a SubsetRandomSampler'"):
        AttributionMonitor(DataLoader(cells, batch_size=8, sampler=random_subset))


@pytest.mark.ddp
@pytest.mark.parametrize("options", [{}, {"correct_only": True, "std": True}])
def test_ddp_equals_one_process(cells, tmp_path, options):
    def module() -> StudentWithTeacher:
        module = StudentWithTeacher()
        if options:  # the student predicts class 0 for every image (its maps are unchanged)
            with torch.no_grad():
                module.student[-1].bias[0] += 100.0
        return module

    def run(**trainer_kwargs):
        # lr=0 keeps the weights as initialised, so that both runs explain the same network
        monitor = AttributionMonitor(DataLoader(cells, batch_size=6), module="student", **options)
        trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=2, **trainer_kwargs)
        trainer.fit(module(), DataLoader(cells.classification(), batch_size=8))
        return {k: float(v) for k, v in trainer.callback_metrics.items() if "attribution" in k}

    single = run(devices=1)
    # forked workers skip re-importing torch and the library
    double = run(devices=2, strategy="ddp_fork")
    assert single.keys() == double.keys() and len(single) == (14 if options else 7)
    for name in single:
        assert double[name] == pytest.approx(single[name], rel=1e-6), name
    if options:
        # the images labelled 0 are scored: 2 and 15-17 in the batches of process 0 (0 and
        # 2), 9 in those of process 1 (1 and 3); each has some, and one batch of each none
        assert torch.nonzero(cells.targets == 0).flatten().tolist() == [2, 9, 15, 16, 17]
        alone = AttributionMonitor(DataLoader(cells, batch_size=6), module="student", **options)
        values = alone.evaluate(module())
        for name, value in values.items():
            assert single[f"attribution/{name}"] == pytest.approx(value, rel=1e-6), name


def test_plot_attribution_maps(cells, tmp_path):
    from matplotlib.figure import Figure

    from lightning_distill.attribution.plotting import plot_attribution_maps

    maps = {"a": cells.heatmaps[:3], "b": torch.randn(3, 3, 32, 32)}
    figure = plot_attribution_maps(cells.images[:3], maps, path=tmp_path / "maps.png")
    assert isinstance(figure, Figure) and len(figure.axes) == 9
    assert (tmp_path / "maps.png").exists()
    other = Figure()
    axes = other.subplots(3, 3)
    assert plot_attribution_maps(cells.images[:3], maps, axes=axes) is other
    # grey [N, H, W] images and images of two channels (their mean, in grey)
    grey = plot_attribution_maps(torch.rand(2, 9, 7), {"a": torch.randn(2, 9, 7)})
    assert grey.axes[0].get_images()[0].get_array().shape == (9, 7)
    two = plot_attribution_maps(torch.rand(2, 2, 9, 7), {"a": torch.randn(2, 2, 9, 7)})
    assert two.axes[0].get_images()[0].get_array().shape == (9, 7)
    for bad_images, bad_maps, message in (
        (torch.rand(2, 9), {"a": torch.rand(2, 9, 7)}, r"images must be \[N, C, H, W\]"),
        (torch.rand(2, 9, 7), {"a": torch.rand(3, 9, 7)}, r"maps\['a'\] must hold the 2 images'"),
        (torch.rand(2, 9, 7), {"a": torch.rand(2, 7, 9)}, r"\(9, 7\) pixels; got shape"),
        (torch.rand(2, 9, 7), {}, "maps must be a non-empty mapping"),
    ):
        with pytest.raises((ValueError, TypeError), match=message):
            plot_attribution_maps(bad_images, bad_maps)


def test_plot_attribution_maps_refuses_what_it_cannot_draw():
    """A NaN or infinite map drew as an empty panel (NaN scaled by its own maximum) and an
    image as a blank one, silently; axes of another count and titles that are not a sequence
    failed in numpy or len() without naming the argument."""
    from matplotlib.figure import Figure

    from lightning_distill.attribution.plotting import plot_attribution_maps

    images, maps = torch.rand(2, 3, 6, 5), {"a": torch.randn(2, 3, 6, 5)}
    for bad in (math.nan, math.inf, -math.inf):
        spoilt = maps["a"].clone()
        spoilt[1, 2, 3, 4] = bad
        with pytest.raises(ValueError, match=r"maps\['a'\] must be finite"):
            plot_attribution_maps(images, {"a": spoilt})
        spoilt = images.clone()
        spoilt[0, 0, 0, 0] = bad
        with pytest.raises(ValueError, match="images must be finite"):
            plot_attribution_maps(spoilt, maps)
    with pytest.raises(TypeError, match=r"maps\['a'\] must be a real-valued Tensor"):
        plot_attribution_maps(images, {"a": maps["a"].to(torch.complex64)})
    for rows, columns in ((2, 3), (1, 1), (1, 4)):
        axes = Figure().subplots(rows, columns)
        if rows * columns == 4:  # as many axes, another layout: drawn row by row
            assert plot_attribution_maps(images, maps, axes=axes) is axes.flat[0].figure
            continue
        with pytest.raises(ValueError, match=r"axes must hold 2 x 2 Axes"):
            plot_attribution_maps(images, maps, axes=axes)
    for titles in (3, "ab"):
        with pytest.raises(TypeError, match="row_titles must be a sequence of str"):
            plot_attribution_maps(images, maps, row_titles=titles)
    # nothing passed in is changed, and finite maps still draw
    before = [images.clone(), maps["a"].clone()]
    figure = plot_attribution_maps(images, maps, row_titles=["x", "y"])
    assert len(figure.axes) == 4
    assert torch.equal(images, before[0]) and torch.equal(maps["a"], before[1])


def test_row_titles_given_as_an_array_or_index_label_the_rows():
    import numpy as np
    import pandas as pd

    from lightning_distill.attribution.plotting import plot_attribution_maps

    images, maps = torch.rand(3, 1, 4, 4), {"a": torch.randn(3, 1, 4, 4)}
    names = np.array(["cat", "dog", "eel"])
    labels = torch.tensor([2, 0, 2])
    for titles in (names[labels.numpy()], pd.Index(names[labels.numpy()]), ("eel", "cat", "eel")):
        figure = plot_attribution_maps(images, maps, row_titles=titles)
        # each row's input panel names its image's class, in order
        assert [figure.axes[2 * row].get_ylabel() for row in range(3)] == ["eel", "cat", "eel"]
    with pytest.raises(ValueError, match=r"row_titles must hold one title per image \(3\)"):
        plot_attribution_maps(images, maps, row_titles=names[:2])
    with pytest.raises(TypeError, match="row_titles must be a sequence of str"):
        plot_attribution_maps(images, maps, row_titles={"eel", "cat"})
    with pytest.raises(TypeError, match="row_titles must be a sequence of str"):
        plot_attribution_maps(images, maps, row_titles=labels)  # classes, not their names


def test_the_monitor_leaves_the_trainings_random_state_alone(cells):
    """Reading the probe loader draws a seed from torch's generator; a fit with the monitor must
    train exactly as the same fit without it (a shuffled training loader)."""

    def fit(with_monitor: bool) -> dict:
        torch.manual_seed(3)
        module = StudentWithTeacher(lr=0.05)
        callbacks = [AttributionMonitor(DataLoader(cells, batch_size=8))] if with_monitor else []
        torch.manual_seed(4)
        loader = DataLoader(cells.classification(), batch_size=8, shuffle=True)
        quiet_trainer(max_epochs=3, callbacks=callbacks).fit(module, loader)
        return {k: v.clone() for k, v in module.student.state_dict().items()}

    plain, monitored = fit(False), fit(True)
    assert all(torch.equal(plain[k], monitored[k]) for k in plain)
    module, monitor = StudentWithTeacher(), AttributionMonitor(DataLoader(cells, batch_size=8))
    state = torch.get_rng_state()  # building the networks seeds torch: read it after
    monitor.evaluate(module)
    assert torch.equal(state, torch.get_rng_state())


def test_a_schedule_longer_than_the_fit_is_warned_about(cells):
    monitor = AttributionMonitor(DataLoader(cells, batch_size=8), every_n_epochs=5)
    with pytest.warns(
        UserWarning, match=r"every 5 epochs \(every_n_epochs=5\), and this fit has max_epochs=2"
    ):
        quiet_trainer(max_epochs=2, callbacks=[monitor], limit_train_batches=1).fit(
            StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8)
        )
    assert monitor.history == []


def test_two_monitors_with_one_prefix_and_one_shot_probes_are_refused(cells):
    probe = DataLoader(cells, batch_size=8)
    student = AttributionMonitor(probe, module="student")
    teacher = AttributionMonitor(probe, module="teacher")
    trainer = quiet_trainer(callbacks=[student, teacher], limit_train_batches=1)
    with pytest.raises(ValueError, match="prefix must differ between the AttributionMonitors"):
        trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
    with pytest.raises(TypeError, match="one-shot generator"):
        AttributionMonitor(batch for batch in probe)


def test_float32_probes_are_read_into_a_float64_fit(cells):
    monitor = AttributionMonitor(DataLoader(cells, batch_size=8), module="student")
    trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=1, precision="64-true")
    trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
    expected = expected_scores(StudentWithTeacher().double(), cells)
    assert monitor.history[0]["localisation"] == pytest.approx(expected["localisation"], rel=1e-9)


def test_probe_mistakes_fail_at_construction_or_fit_start_not_after_training(cells):
    # an empty probe: a StopIteration out of the epoch-end hook would end the fit silently
    with pytest.raises(ValueError, match="dataloader must be probe data with at least one batch"):
        AttributionMonitor(DataLoader(cells, batch_size=64, drop_last=True))
    with pytest.raises(ValueError, match="at least one batch"):
        AttributionMonitor([])
    batches = [next(iter(DataLoader(cells, batch_size=8)))]

    class Emptied(list):  # a length of 1, but no batch once the fit starts
        def __iter__(self):
            return iter([])

    monitor = AttributionMonitor(batches, module="student", every_n_epochs=2)
    with pytest.raises(ValueError, match="at least one batch"):
        monitor.dataloader = []  # known empty: refused when set, as at construction
    monitor.dataloader = Emptied(batches)
    trainer = quiet_trainer(callbacks=[monitor], max_epochs=2, limit_train_batches=1)
    with pytest.raises(ValueError, match="at least one batch"):
        trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
    # a metric the probe cannot give, a module without forward, non-integer float labels
    plain = DataLoader(cells.classification(), batch_size=8)
    for kwargs, match in (
        ({"metrics": ["five_band"], "module": "student"}, "'five_band' needs probe batches"),
        ({}, "module must be the name of the submodule to explain"),
    ):
        monitor = AttributionMonitor(plain, every_n_epochs=5, **kwargs)
        trainer = quiet_trainer(callbacks=[monitor], max_epochs=1, limit_train_batches=1)
        module = StudentWithTeacher() if kwargs else _NoForward()
        with pytest.raises(ValueError, match=match):
            trainer.fit(module, plain)
    fractional = [(cells.images[:4], torch.tensor([0.0, 1.0, 0.7, 2.0]))]
    with pytest.raises(ValueError, match="targets are integer classes .*got \\[0.0, 1.0, 0.69"):
        AttributionMonitor(fractional, metrics=["agreement"], teacher=cnn(1)).evaluate(cnn(0))
    whole = [(cells.images[:4], torch.tensor([0.0, 1.0, 3.0, 2.0]))]
    AttributionMonitor(whole, metrics=["agreement"], teacher=cnn(1)).evaluate(cnn(0))
    with pytest.raises(ValueError, match="five_band_kwargs: Unexpected keyword .*soft_step"):
        AttributionMonitor(batches, five_band_kwargs={"soft_step": 5})


class _NoForward(StudentWithTeacher):
    forward = L.LightningModule.forward


def test_tuple_and_plural_key_batches(cells):
    plural = [
        {
            "images": cells.images[:8],
            "targets": cells.targets[:8],
            "masks": cells.masks[:8],
            "heatmaps": cells.heatmaps[:8],
        }
    ]
    singular = DataLoader(cells, batch_size=8)
    model = cnn(0)
    expected = AttributionMonitor([next(iter(singular))], teacher=cnn(1)).evaluate(model)
    assert set(expected) >= {"localisation", "pixel_accuracy", "spearman"}
    assert AttributionMonitor(plural, teacher=cnn(1)).evaluate(model) == expected
    # a mapping that is not a dict (a UserDict, as transformers' BatchEncoding) reads alike
    mapping = [UserDict(plural[0])]
    assert AttributionMonitor(mapping, teacher=cnn(1)).evaluate(model) == expected
    # a batch holding two input keys is explained on the one the training modules read
    # ("x" before "image"), and two target keys likewise ("targets" before "target")
    both = [
        {
            "x": cells.images[:8],
            "image": torch.zeros_like(cells.images[:8]),
            "targets": cells.targets[:8],
            "target": torch.zeros_like(cells.targets[:8]),
            "masks": cells.masks[:8],
            "heatmaps": cells.heatmaps[:8],
        }
    ]
    assert AttributionMonitor(both, teacher=cnn(1)).evaluate(model) == expected
    triples = [(cells.images[:8], cells.targets[:8], cells.masks[:8])]
    with pytest.raises(ValueError, match="masks and heatmaps come in dict batches; got 'a tuple"):
        AttributionMonitor(triples, teacher=cnn(1)).evaluate(model)


def test_feature_permutation_needs_batches_of_two_or_more(cells):
    # it permutes each feature across a batch: a lone last image would get an all-zero map
    with pytest.raises(ValueError, match="batches of at least 2 images for FeaturePermutation"):
        AttributionMonitor(DataLoader(cells, batch_size=23), method="FeaturePermutation")
    AttributionMonitor(
        DataLoader(cells, batch_size=23, drop_last=True), method="FeaturePermutation"
    )
    AttributionMonitor(DataLoader(cells, batch_size=23), method="Saliency")


def test_soft_targets_are_fine_when_the_prediction_is_explained(cells):
    soft = [(cells.images[:4], torch.full((4, 10), 0.1))]  # probabilities, never read as classes
    monitor = AttributionMonitor(soft, metrics=["agreement"], teacher=cnn(1), target="prediction")
    assert set(monitor.evaluate(cnn(0))) == {"spearman", "top_k_iou"}


def test_a_probe_without_labels_serves_the_prediction_but_not_the_label(cells, tmp_path):
    # masks and heatmaps alone: the prediction is explained, the probe's labels never read
    unlabelled = [
        {"image": cells.images[i : i + 4], "mask": cells.masks[i : i + 4]} for i in (0, 4)
    ]
    model = cnn(0)
    monitor = AttributionMonitor(unlabelled, target="prediction", save_dir=tmp_path)
    labelled = [{**batch, "target": torch.zeros(4, dtype=torch.long)} for batch in unlabelled]
    with torch.no_grad():  # the same maps when the labels are there but not read
        reference = AttributionMonitor(labelled, target="prediction").evaluate(model)
    assert monitor.evaluate(model) == reference and set(reference) == {"localisation"}
    assert list(tmp_path.glob("attribution_*.png"))  # the picture needs no labels either
    with pytest.raises(ValueError, match=r"'target' entry .*target='prediction'"):
        AttributionMonitor(unlabelled).evaluate(model)
    with pytest.raises(TypeError, match=r"save_dir must be a str or os.PathLike .*; got 5"):
        AttributionMonitor(unlabelled, target="prediction", save_dir=5)


def test_evaluate_leaves_the_probe_loaders_own_generator_where_it_was():
    # a loader with its own generator draws its worker seed from it when iterated; shared with
    # the training loader, the monitor changed the training's data order
    torch.manual_seed(0)
    images = torch.randn(8, 3, 8, 8)
    probe_items = [
        {"image": images[i], "target": i % 3, "mask": images[i, 0] > 0} for i in range(8)
    ]
    g = torch.Generator().manual_seed(5)
    probe = DataLoader(probe_items, batch_size=4, generator=g)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    before = g.get_state()
    AttributionMonitor(probe, module=None).evaluate(net)
    assert torch.equal(g.get_state(), before)


def test_a_later_probe_batch_without_the_metrics_entry_or_with_one_hot_targets_is_named():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x, y, mask = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 1, 0]), torch.rand(4, 6, 6) > 0.5
    probe = [{"image": x, "target": y, "mask": mask}, {"image": x, "target": y}]
    with pytest.raises(ValueError, match=r"'mask' entry in every probe batch: .*batch 1 \(from"):
        AttributionMonitor(probe, metrics=["localisation"]).evaluate(net)
    one_hot = [{"image": x, "target": F.one_hot(y, 2), "mask": mask}]
    with pytest.raises(ValueError, match=r"one class index per image, .*shape \(4, 2\)"):
        AttributionMonitor(one_hot, metrics=["localisation"]).evaluate(net)
    # a segmentation map read as the targets (a Broden-like batch: image and labels alone)
    segmentation = [{"image": x, "labels": torch.zeros(4, 1, 6, 6, dtype=torch.long)}]
    with pytest.raises(ValueError, match=r"not a map per image .*target='prediction'"):
        AttributionMonitor(segmentation, teacher=net).evaluate(net)
    # explaining the prediction, the probe needs no classes
    AttributionMonitor(segmentation, teacher=net, target="prediction").evaluate(net)


def test_target_entries_that_are_not_tensors_are_named_or_left_unread(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x, y, mask = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 1, 0]), torch.rand(4, 6, 6) > 0.5
    # a later batch's target entry is a list: named, not an AttributeError from `.to`
    probe = [{"image": x, "target": y, "mask": mask}, {"image": x, "target": [0, 1, 1, 0]}]
    probe[1]["mask"] = mask
    with pytest.raises(TypeError, match=r"target entry is a tensor of classes; got \[0, 1"):
        AttributionMonitor(probe, metrics=["localisation"]).evaluate(net)
    # explaining the prediction, the target entry is never read (here the items' file names),
    # in the metrics and in the picture alike
    named = [{"image": x, "target": ["a.png", "b.png", "c.png", "d.png"], "mask": mask}] * 2
    plain = [{"image": x, "mask": mask}] * 2
    with torch.no_grad():
        reference = AttributionMonitor(plain, target="prediction").evaluate(net)
    monitor = AttributionMonitor(
        named, metrics=["localisation"], target="prediction", save_dir=tmp_path
    )
    assert monitor.evaluate(net) == reference
    assert list(tmp_path.glob("attribution_*.png"))


def test_class_names_are_read_through_a_subset():
    class Named(torch.utils.data.Dataset):
        class_names = ("zero", "one", "two")

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"image": torch.zeros(1, 4, 4), "target": i}

    subset = torch.utils.data.Subset(torch.utils.data.Subset(Named(), [2, 1, 0]), [0, 1])
    monitor = AttributionMonitor(DataLoader(subset, batch_size=2), module=None)
    assert [monitor._class_name(i) for i in (0, 2, 5)] == ["zero", "two", "5"]


def test_class_names_held_as_an_array_name_the_classes():
    import numpy as np

    class Named(torch.utils.data.Dataset):
        class_names = np.array(["zero", "one", "two"])

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"image": torch.zeros(1, 4, 4), "target": i}

    monitor = AttributionMonitor(DataLoader(Named(), batch_size=2), module=None)
    assert [monitor._class_name(i) for i in (0, 2, 5)] == ["zero", "two", "5"]


def test_a_tied_module_is_found_under_each_of_its_names(cells):
    # named_modules() lists a module registered twice under its first name alone
    holder = nn.Module()
    holder.student = cnn(0)
    holder.alias = holder.student
    probe = DataLoader(cells, batch_size=8)
    by_alias = AttributionMonitor(probe, module="alias").evaluate(holder)
    assert by_alias == AttributionMonitor(probe, module="student").evaluate(holder)


class _Returns(nn.Module):
    """``cnn(0)``'s logits, handed on by ``how``."""

    def __init__(self, how):
        super().__init__()
        self.net = cnn(0)
        self.how = how

    def forward(self, x):
        return self.how(self.net(x))


@pytest.mark.parametrize(
    ("how", "error", "match"),
    [
        (lambda logits: (logits, logits.mean()), TypeError, r"got 'tuple'"),
        (lambda logits: logits[:, 0], ValueError, r"got \(8,\)"),
        (lambda logits: logits @ torch.ones(3, 3), ValueError, r"could not be run on the probe"),
    ],
    ids=["tuple", "one-output", "cannot-run"],
)
def test_a_model_the_prediction_cannot_be_read_from_is_named(cells, how, error, match):
    # target="prediction" takes the argmax of the model's logits: any other output (or a
    # model that cannot read the images) failed deep in torch, far from the argument
    probe = DataLoader(cells, batch_size=8)
    monitor = AttributionMonitor(probe, metrics=["localisation"], target="prediction")
    with pytest.raises(error, match=r"^module .*" + match):
        monitor.evaluate(_Returns(how))


def test_probe_images_given_as_a_list_are_named(cells):
    def listed(items):  # a collate_fn that keeps the images as a list
        return {
            "image": [item["image"] for item in items],
            "target": torch.stack([torch.as_tensor(item["target"]) for item in items]),
            "mask": torch.stack([item["mask"] for item in items]),
        }

    monitor = AttributionMonitor(DataLoader(cells, batch_size=8, collate_fn=listed))
    with pytest.raises(TypeError, match=r"^dataloader must be batches whose images are one .*"):
        monitor.evaluate(cnn(0))


def test_a_diverged_models_nan_logits_are_refused_not_explained_as_class_0(cells):
    # NaN batch-norm statistics (a diverged run whose optimiser skipped its steps) make every
    # logit NaN while the input gradients stay finite: argmax read each image as class 0 and
    # the maps of class 0 were scored as any other
    probe = DataLoader(cells, batch_size=8)
    holder = StudentWithTeacher()
    with torch.no_grad():
        holder.student[1].running_mean[0] = float("nan")
    holder.train()
    modes = [m.training for m in holder.modules()]
    with torch.no_grad():
        assert torch.isnan(holder.student.eval()(cells[0]["image"][None])).all()
    holder.train()
    monitor = AttributionMonitor(probe, module="student", target="prediction")
    match = r"^module 'student' must return logits without NaN or \+inf.* 8 of 8 images"
    with pytest.raises(ValueError, match=match):
        monitor.evaluate(holder)
    assert [m.training for m in holder.modules()] == modes  # modes given back
    # one image's logits with a +inf, or all -inf: that image alone is named
    for broken in (torch.tensor([0.0] * 9 + [math.inf]), torch.full((10,), -math.inf)):
        model = _Returns(lambda logits, row=broken: torch.cat([row[None], logits[1:]]))
        plain = AttributionMonitor(probe, metrics=["localisation"], target="prediction")
        with pytest.raises(ValueError, match=r"^pl_module must .* 1 of 8 images"):
            plain.evaluate(model)

    # with target="label" no forward of the monitor's own reads the logits: attribute()'s
    # forward does, and refuses them (the maps of the labels' classes were scored before)
    labelled = AttributionMonitor(probe, module="student", metrics=["localisation"])
    with pytest.raises(ValueError, match=r"^model must return finite outputs .* 8 of 8 rows"):
        labelled.evaluate(holder)
    assert [m.training for m in holder.modules()] == modes

    # a class masked with -inf that no probe image predicts is no divergence: the scores are
    # those of the unmasked model
    with torch.no_grad():
        images = torch.stack([item["image"] for item in cells])
        predicted = set(cnn(0).eval()(images).argmax(1).tolist())
    (unused, *_) = sorted(set(range(10)) - predicted)
    masked = _Returns(lambda logits: logits.index_fill(1, torch.tensor([unused]), -math.inf))
    plain = AttributionMonitor(probe, metrics=["localisation"], target="prediction")
    assert plain.evaluate(masked) == pytest.approx(plain.evaluate(_Returns(lambda x: x)))


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("target", "labels", ValueError),
        ("every_n_epochs", 0, ValueError),
        ("plot_images", -1, ValueError),
        ("dataloader", "shuffled", ValueError),
        ("dataloader", 3, TypeError),
        ("method", "Salency", ValueError),
        ("method_kwargs", ["n_steps"], TypeError),
        ("metrics", ["localization"], ValueError),
        ("module", 0, TypeError),
        ("teacher", "teacher", TypeError),
        ("prefix", "", ValueError),
        ("save_dir", 3, TypeError),
    ],
    ids=[
        "target-misspelt",
        "every-0",
        "plot_images-negative",
        "dataloader-shuffled",
        "dataloader-int",
        "method-misspelt",
        "method_kwargs-list",
        "metrics-misspelt",
        "module-int",
        "teacher-str",
        "prefix-empty",
        "save_dir-int",
    ],
)
def test_monitor_settings_set_after_construction_are_checked(cells, name, value, error):
    # a misspelt target read as "prediction" (the predicted class explained, not the label),
    # silently, and every_n_epochs=0 failed in a hook with ZeroDivisionError; the others were
    # taken and failed at the end of an epoch (an empty prefix logged under "/localisation")
    if value == "shuffled":
        value = DataLoader(cells, batch_size=8, shuffle=True)
    with pytest.raises(error) as built:
        arguments = {"dataloader": DataLoader(cells, batch_size=8), name: value}
        AttributionMonitor(**arguments)
    monitor = AttributionMonitor(DataLoader(cells, batch_size=8))
    before = getattr(monitor, name)
    with pytest.raises(error) as set_later:
        setattr(monitor, name, value)
    assert str(set_later.value) == str(built.value)
    assert getattr(monitor, name) == before


def test_monitor_method_and_its_kwargs_set_one_at_a_time_are_checked_together_before_work(cells):
    probe = DataLoader(cells, batch_size=8)
    monitor = AttributionMonitor(probe, metrics=["localisation"])
    given = {"n_steps": 4}
    # a pair that fits passes through one that does not: each is checked alone when set
    monitor.method = "IntegratedGradients"
    monitor.method_kwargs = given
    given["n_steps"] = 1000  # the monitor keeps a dict of its own
    assert monitor.method_kwargs == {"n_steps": 4}
    expected = AttributionMonitor(
        probe, metrics=["localisation"], method="IntegratedGradients", method_kwargs={"n_steps": 4}
    ).evaluate(cnn(0))
    assert monitor.evaluate(cnn(0)) == expected
    # a pair that does not fit is refused before any work, naming method_kwargs as the
    # constructor does
    monitor.method = "Saliency"
    with pytest.raises(TypeError) as built:
        AttributionMonitor(probe, method="Saliency", method_kwargs={"n_steps": 4})
    with pytest.raises(TypeError) as evaluated:
        monitor.evaluate(cnn(0))
    assert str(evaluated.value) == str(built.value)
    assert str(built.value).startswith("method_kwargs must")
    assert len(monitor.history) == 1  # nothing recorded
    fitted = AttributionMonitor(probe, metrics=["localisation"], module="student")
    fitted.method_kwargs = {"n_steps": 4}
    trainer = quiet_trainer(callbacks=[fitted], max_epochs=1, limit_train_batches=1)
    with pytest.raises(TypeError, match="^method_kwargs must"):
        trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
    assert trainer.global_step == 0  # refused at the fit's start, not after an epoch


def test_monitor_five_band_kwargs_are_fixed_at_construction(cells):
    # set later (or edited in place) they never reached the FiveBandScore built from them
    probe = DataLoader(cells, batch_size=8)
    monitor = AttributionMonitor(probe, metrics=["five_band"], five_band_kwargs={"soft_steps": 3})
    with pytest.raises(AttributeError, match="^five_band_kwargs is set at construction"):
        monitor.five_band_kwargs = {"soft_steps": 9}
    with pytest.raises(TypeError, match="^five_band_kwargs is set at construction .* in place"):
        monitor.five_band_kwargs["soft_steps"] = 9
    assert monitor.five_band_kwargs == {"soft_steps": 3}
    import copy
    import pickle

    for copied in (copy.deepcopy(monitor), pickle.loads(pickle.dumps(monitor))):
        assert copied.five_band_kwargs == {"soft_steps": 3}
        assert copied.evaluate(cnn(0)) == monitor.evaluate(cnn(0))


def test_monitor_keeps_lists_of_its_own(cells):
    chosen = ["localisation"]
    monitor = AttributionMonitor(DataLoader(cells, batch_size=8), metrics=chosen)
    chosen.append("five_band")  # the user's list, changed after construction
    assert monitor.metrics == ["localisation"]
    monitor.metrics = chosen
    chosen.remove("five_band")
    assert monitor.metrics == ["localisation", "five_band"]
    assert set(monitor.evaluate(cnn(0))) == {
        "localisation",
        "pixel_accuracy",
        "precision",
        "recall",
        "fpr",
    }


def test_long_row_titles_stay_within_their_rows():
    # a title longer than its row ("prediction: green rectangle" under a 1.7-inch row) ran
    # into the rows beside it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lightning_distill.attribution.plotting import plot_attribution_maps

    titles = ["prediction: green rectangle", "label: blank", "prediction: " + "long name " * 4]
    images, maps = torch.rand(3, 3, 16, 16), {"model": torch.rand(3, 16, 16)}
    own = plot_attribution_maps(images, maps, row_titles=titles)
    given = Figure(figsize=(3, 6))
    plot_attribution_maps(images, maps, row_titles=titles, axes=given.subplots(3, 2))
    # axes of a subfigure (a figure's lower half, under a panel of bars): a subfigure has no
    # height in inches of its own, which drawing into it had met as an AttributeError
    parent = Figure(figsize=(3, 12))
    lower = parent.subfigures(2, 1)[1]
    plot_attribution_maps(images, maps, row_titles=titles, axes=lower.subplots(3, 2))
    for figure in (own, given, parent):
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        for ax, title in zip(figure.axes[::2], titles, strict=True):
            label = ax.yaxis.label
            assert label.get_text().replace("\n", " ") == title.strip()
            assert label.get_window_extent(renderer).height <= ax.get_window_extent(renderer).height


def test_per_image_baselines_explain_each_probe_image_against_its_own(cells):
    # one baseline per probe image was refused unless the probe was one batch; a tensor of one
    # batch's baselines was given to every batch, image i of each batch explained against
    # baseline i without a word
    module = cnn(0)
    baselines = torch.rand(cells.images.shape, generator=torch.Generator().manual_seed(3))
    kwargs = {"baselines": baselines, "n_steps": 4}
    expected = AttributionLocalisation()
    module.eval()
    maps = attribute(module, cells.images, cells.targets, "IntegratedGradients", **kwargs)
    expected.update(maps, cells.masks)
    for batch_size in (24, 8, 5):
        monitor = AttributionMonitor(
            DataLoader(cells, batch_size=batch_size),
            method="IntegratedGradients",
            method_kwargs=kwargs,
            metrics=["localisation"],
        )
        score = monitor.evaluate(module)["localisation"]
        assert score == pytest.approx(float(expected.compute()), rel=1e-5)
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=8),
        method="IntegratedGradients",
        method_kwargs={"baselines": baselines[:8]},
        metrics=["localisation"],
    )
    with pytest.raises(
        ValueError,
        match=r"method_kwargs\['baselines'\] must be a tensor with one entry per probe image "
        r"\(24, in the probe's order\) or one for all images \(1\) on its first axis; got "
        r"\(8, 3, 32, 32\)\.",
    ):
        monitor.evaluate(module)


def test_a_method_that_draws_gives_the_same_scores_whatever_the_probe_batch_size(cells):
    # GradientShap drew each image's noise after that of the images before it in its batch
    # (and from NumPy's global generator, which the monitor neither fixed nor gave back)
    module = StudentWithTeacher()
    kwargs = {"baselines": torch.zeros(2, 3, 32, 32), "n_samples": 3}
    scores = []
    for batch_size in (24, 7):
        monitor = AttributionMonitor(
            DataLoader(cells, batch_size=batch_size),
            method="GradientShap",
            method_kwargs=kwargs,
            module="student",
        )
        # the caller's NumPy state differs between the runs, and is given back
        np.random.seed(batch_size)  # noqa: NPY002
        state = np.random.get_state()[1].copy()  # noqa: NPY002
        scores.append(monitor.evaluate(module))
        assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    assert scores[0].keys() == scores[1].keys()
    for name in scores[0]:
        assert scores[0][name] == pytest.approx(scores[1][name], rel=1e-6, abs=1e-7), name


class _Scaled(nn.Module):
    """A model whose forward takes an extra argument: one scale per image (``[N]``), or one
    for all (a number, a 0-d or ``[1]`` tensor); records every scale it is given."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.given = []

    def forward(self, x, scale=1.0):
        self.given.append(scale)
        if isinstance(scale, torch.Tensor) and scale.ndim:
            scale = scale.reshape(-1, *[1] * (x.ndim - 1))
        return self.base(x * scale)


def test_per_image_extra_forward_arguments_explain_each_probe_image_with_its_own(cells):
    # additional_forward_args of one entry per probe image was given whole to every batch:
    # torch's size mismatch deep in Captum, or (a probe of one batch's length) every batch
    # explained with the first batch's entries
    model = _Scaled(cnn(0))
    scales = 0.5 + torch.rand(len(cells.images), generator=torch.Generator().manual_seed(3))
    expected = AttributionLocalisation()
    model.eval()
    maps = attribute(
        model, cells.images, cells.targets, "Saliency", additional_forward_args=(scales,)
    )
    expected.update(maps, cells.masks)
    for batch_size in (24, 8, 5):
        for arguments in (scales, (scales,)):
            monitor = AttributionMonitor(
                DataLoader(cells, batch_size=batch_size),
                method="Saliency",
                method_kwargs={"additional_forward_args": arguments},
                metrics=["localisation"],
            )
            score = monitor.evaluate(model)["localisation"]
            assert score == pytest.approx(float(expected.compute()), rel=1e-5)
    # one batch's scales given to every batch: refused, naming the argument
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=8),
        method="Saliency",
        method_kwargs={"additional_forward_args": (torch.tensor(1.0), scales[:8])},
        metrics=["localisation"],
    )
    with pytest.raises(
        ValueError,
        match=r"method_kwargs\['additional_forward_args'\]\[1\] must be one entry per probe "
        r"image \(24, in the probe's order\) on its first axis, or the same for every image "
        r".* not that of a probe batch, 8\); got tensor\(\[",
    ):
        monitor.evaluate(model)
    # arguments that are not per image reach every batch as they were passed
    for shared in (2.0, torch.tensor(2.0), torch.tensor([2.0]), torch.full((3,), 2.0)[:1]):
        model.given.clear()
        monitor = AttributionMonitor(
            DataLoader(cells, batch_size=8),
            method="Saliency",
            method_kwargs={"additional_forward_args": shared},
            metrics=["localisation"],
        )
        score = monitor.evaluate(model)["localisation"]
        assert model.given and all(given is shared for given in model.given)
        doubled = AttributionLocalisation()
        doubled.update(
            attribute(model, cells.images, cells.targets, "Saliency", additional_forward_args=2.0),
            cells.masks,
        )
        assert score == pytest.approx(float(doubled.compute()), rel=1e-5)


# ------------------------------------------- correctly classified images only, spreads
class _Guesses(nn.Module):
    """``cnn(0)`` with 100 added to the logit of class ``guess``: it predicts ``guess`` for
    every image, and its input gradients (its maps) are those of ``cnn(0)``."""

    def __init__(self, guess: int) -> None:
        super().__init__()
        self.net = cnn(0)
        self.guess = guess

    def forward(self, x):
        logits = self.net(x)
        return logits + 100.0 * F.one_hot(torch.tensor(self.guess), 10).to(logits)


def _scores_by_hand(net: nn.Module, teacher: nn.Module, data, keep, batch_size: int) -> dict:
    """The metrics fed by hand with the maps of each image's label, ``keep`` selecting images,
    with their means and their spreads over images."""
    five, local, agree = FiveBandScore(), AttributionLocalisation(), AttributionAgreement()
    net.eval()
    teacher.eval()
    for start in range(0, len(data), batch_size):
        part = slice(start, start + batch_size)
        x, y = data.images[part], data.targets[part]
        maps = attribute(net, x, y, "Saliency")
        five.update(maps, data.heatmaps[part], keep=keep[part])
        local.update(maps, data.masks[part], keep=keep[part])
        agree.update(attribute(teacher, x, y, "Saliency"), maps, keep=keep[part])
    values = {name: float(v) for name, v in five.compute().items()}
    values.update({f"{name}_std": float(v) for name, v in five.std().items()})
    values["localisation"] = float(local.compute())
    values["localisation_std"] = float(local.std())
    values.update({name: float(v) for name, v in agree.compute().items()})
    values.update({f"{name}_std": float(v) for name, v in agree.std().items()})
    return values


@pytest.mark.parametrize("target", ["label", "prediction"])
def test_correct_only_scores_the_images_the_model_classifies_correctly(cells, target):
    # the model predicts class 0 for every image: the correctly classified images are those
    # labelled 0 (5 of 24, in 3 of the 5 batches: batches that keep none add none). With
    # target="prediction" their maps explain class 0, their label: the same scores
    guess, teacher = 0, cnn(1, width=8)
    model = _Guesses(guess).eval()
    correct = cells.targets == guess
    assert int(correct.sum()) == 5
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=5),
        teacher=teacher,
        target=target,
        correct_only=True,
        std=True,
    )
    values = monitor.evaluate(model)
    expected = _scores_by_hand(cnn(0), teacher, cells, correct, 5)
    assert set(values) == set(expected)
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert monitor.history[-1] == {"epoch": None, **values}
    # against numpy on the five images' functional scores, and not the scores of all images
    from lightning_distill.functional import localisation_score

    maps = attribute(cnn(0).eval(), cells.images, cells.targets, "Saliency")
    shares = localisation_score(maps, cells.masks).numpy()
    assert values["localisation"] == pytest.approx(np.mean(shares[correct.numpy()]), rel=1e-9)
    assert values["localisation_std"] == pytest.approx(np.std(shares[correct.numpy()]), rel=1e-9)
    assert values["localisation"] != pytest.approx(np.mean(shares), rel=1e-3)


def test_std_alone_logs_the_spreads_of_all_images_beside_the_means(cells):
    teacher = cnn(1, width=8)
    module = StudentWithTeacher()
    module.teacher = teacher
    monitor = AttributionMonitor(DataLoader(cells, batch_size=8), module="student", std=True)
    trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=1)
    trainer.fit(module, DataLoader(cells.classification(), batch_size=8))
    logged = {
        k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("attribution/")
    }
    everything = torch.ones(len(cells), dtype=torch.bool)
    expected = _scores_by_hand(module.student, teacher, cells, everything, 8)
    assert set(logged) == {f"attribution/{name}" for name in expected}
    for name, value in expected.items():
        assert logged[f"attribution/{name}"] == pytest.approx(value, rel=1e-6), name
        assert monitor.history[0][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    # without std (the default) the spreads are neither logged nor recorded
    plain = AttributionMonitor(DataLoader(cells, batch_size=8), module="student")
    assert not any(name.endswith("_std") for name in plain.evaluate(module))


def test_correct_only_with_no_correct_image_logs_nan_and_says_why(cells):
    # class 1 is not among the first 8 images' labels
    probe = DataLoader(torch.utils.data.Subset(cells, range(8)), batch_size=4)
    assert 1 not in cells.targets[:8].tolist()
    monitor = AttributionMonitor(probe, metrics=["localisation"], correct_only=True, std=True)
    with pytest.warns(UserWarning, match="kept none of its images"):
        values = monitor.evaluate(_Guesses(1))
    assert set(values) == {"localisation", "localisation_std"}
    assert all(math.isnan(value) for value in values.values())


def test_correct_only_needs_the_labels_and_bools_are_checked(cells):
    # target="prediction" reads no target entry, but correct_only compares with the labels
    without_labels = [
        {"image": cells.images[:4], "mask": cells.masks[:4]},
        {"image": cells.images[4:8], "mask": cells.masks[4:8]},
    ]
    monitor = AttributionMonitor(without_labels, target="prediction", correct_only=True)
    match = r"dataloader must be batches with a 'target' entry \(the labels that correct_only"
    with pytest.raises(ValueError, match=match):
        monitor.evaluate(cnn(0))
    monitor.correct_only = False  # the maps of the predictions need no labels
    assert set(monitor.evaluate(cnn(0))) == {"localisation"}
    # one label for the whole batch is not one per image
    one_label = [{"image": cells.images[:4], "mask": cells.masks[:4], "target": torch.tensor(0)}]
    monitor = AttributionMonitor(one_label, target="prediction", correct_only=True)
    with pytest.raises(ValueError, match=r"one class index per image .* shape \[4\]; got"):
        monitor.evaluate(cnn(0))
    # a model whose prediction cannot be read is named, with the reason it is read
    probe = DataLoader(cells, batch_size=8)
    monitor = AttributionMonitor(probe, metrics=["localisation"], correct_only=True)
    with pytest.raises(TypeError, match=r"^module .*correct_only=True compares with the labels"):
        monitor.evaluate(_Returns(lambda logits: (logits, logits.mean())))
    for name in ("correct_only", "std"):
        with pytest.raises(TypeError, match=rf"{name} must be a bool; got 1"):
            AttributionMonitor(probe, **{name: 1})
        with pytest.raises(TypeError, match=rf"{name} must be a bool"):
            setattr(monitor, name, "yes")


class _CountedProbe(DataLoader):
    """A probe DataLoader that counts the passes begun over it."""

    passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def test_an_evaluation_with_per_image_entries_reads_the_probe_once(cells):
    # per-image baselines (or extra forward arguments) were checked against the probe's batch
    # sizes, read in a pass of their own before every evaluation, and the first batch in
    # another: three passes over the probe an evaluation where one does
    module = cnn(0)
    baselines = torch.rand(cells.images.shape, generator=torch.Generator().manual_seed(3))
    scales = 0.5 + torch.rand(len(cells.images), generator=torch.Generator().manual_seed(4))
    model = _Scaled(module)
    model.eval()
    for kwargs in (
        {"baselines": baselines, "n_steps": 4},
        {"baselines": baselines, "n_steps": 4, "additional_forward_args": (scales,)},
    ):
        expected = AttributionLocalisation()
        maps = attribute(model, cells.images, cells.targets, "IntegratedGradients", **kwargs)
        expected.update(maps, cells.masks)
        probe = _CountedProbe(cells, batch_size=5)
        monitor = AttributionMonitor(
            probe, method="IntegratedGradients", method_kwargs=kwargs, metrics=["localisation"]
        )
        scores = [monitor.evaluate(model)["localisation"] for _ in range(3)]
        # the batch sizes once (at the first evaluation, outside a fit), then one pass each
        assert probe.passes == 1 + 3
        assert scores == [pytest.approx(float(expected.compute()), rel=1e-5)] * 3
    # without per-image entries: no batch sizes, and the first batch read in the one pass
    probe = _CountedProbe(cells, batch_size=5)
    monitor = AttributionMonitor(probe, method="Saliency", metrics=["localisation"])
    for _ in range(2):
        monitor.evaluate(model)
    assert probe.passes == 2
    # in a fit: the first batch and the batch sizes in one pass at its start, then one an epoch
    probe = _CountedProbe(cells, batch_size=5)
    monitor = AttributionMonitor(
        probe,
        method="IntegratedGradients",
        method_kwargs={"baselines": baselines, "n_steps": 4},
        metrics=["localisation"],
        module="student",
    )
    train = DataLoader(cells.classification(), batch_size=8)
    quiet_trainer(max_epochs=3, limit_train_batches=1, callbacks=[monitor]).fit(
        StudentWithTeacher(), train
    )
    assert probe.passes == 1 + 3
    assert len(monitor.history) == 3


class _AlternatingProbe:
    """Probe batches of 8 images on odd passes, of 6 on even ones (not a fixed probe)."""

    def __init__(self, data):
        self.data, self.passes = data, 0

    def __iter__(self):
        self.passes += 1
        return iter(DataLoader(self.data, batch_size=8 if self.passes % 2 else 6))


def test_a_probe_whose_batches_changed_since_they_were_read_is_read_anew(cells):
    # the per-image entries are checked against the batch sizes kept from an earlier pass: a
    # probe (a list of batches) changed in place since is read anew, and scored as before
    baselines = torch.rand(cells.images.shape, generator=torch.Generator().manual_seed(3))
    kwargs = {"baselines": baselines, "n_steps": 2}

    def monitor_of(probe):
        return AttributionMonitor(
            probe, method="IntegratedGradients", method_kwargs=kwargs, metrics=["localisation"]
        )

    expected = monitor_of(DataLoader(cells, batch_size=24)).evaluate(cnn(0))["localisation"]
    probe = list(DataLoader(cells, batch_size=8))
    monitor = monitor_of(probe)
    assert monitor.evaluate(cnn(0))["localisation"] == pytest.approx(expected, rel=1e-5)
    # batches of 8, 5, 5, 5, 1, then one image fewer (fewer batches than were read)
    probe[1:] = list(DataLoader(torch.utils.data.Subset(cells, range(8, 24)), batch_size=5))
    assert monitor.evaluate(cnn(0))["localisation"] == pytest.approx(expected, rel=1e-5)
    del probe[-1]
    with pytest.raises(
        ValueError,
        match=r"method_kwargs\['baselines'\] must be a tensor with one entry per probe image "
        r"\(23, in the probe's order\)",
    ):
        monitor.evaluate(cnn(0))
    # a probe whose batches differ from one pass to the next is named
    with pytest.raises(
        ValueError,
        match=r"^dataloader must be probe data that yields the same batches on every pass "
        r"\(method_kwargs holds entries checked against the probe's 3 batches of 8, 8, 8 "
        r"images, read in the pass before\); got 'batch 0 \(from 0\) of 6 images'\.$",
    ):
        monitor_of(_AlternatingProbe(cells)).evaluate(cnn(0))


@pytest.mark.parametrize("target", ["label", "prediction"])
def test_correct_only_refuses_a_probe_without_a_label_per_image_at_fit_start(cells, target):
    # correct_only compares a label per image with the predictions: a probe holding one label
    # per batch (or a column of them) was refused at the first evaluation only, after
    # every_n_epochs of training (here never: the fit ended without a word)
    for labels in (torch.tensor(0), torch.zeros(4, 1, dtype=torch.long)):
        probe = [{"image": cells.images[:4], "mask": cells.masks[:4], "target": labels}]
        monitor = AttributionMonitor(
            probe,
            module="student",
            metrics=["localisation"],
            target=target,
            correct_only=True,
            every_n_epochs=5,
        )
        trainer = quiet_trainer(callbacks=[monitor], max_epochs=1, limit_train_batches=1)
        match = r"dataloader must be batches whose target entry holds one class index per image"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # every_n_epochs past max_epochs
            with pytest.raises(ValueError, match=match):
                trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
        assert trainer.global_step == 0
        # without correct_only the labels are read as before
        monitor.correct_only = False
        if target == "label" and labels.ndim == 0:
            assert set(monitor.evaluate(StudentWithTeacher())) == {"localisation"}


def test_per_image_entries_with_a_probe_of_persistent_workers(cells):
    # a DataLoader with persistent workers hands out one iterator, reset by every iter(): the
    # batch sizes read in the middle of the scoring pass ended that pass after its first
    # batch, and the probe was refused as one whose batches differ from pass to pass
    baselines = torch.rand(cells.images.shape, generator=torch.Generator().manual_seed(3))
    kwargs = {"baselines": baselines, "n_steps": 2}
    model = cnn(0).eval()
    expected = AttributionLocalisation()
    maps = attribute(model, cells.images, cells.targets, "IntegratedGradients", **kwargs)
    expected.update(maps, cells.masks)
    order = [list(range(start, min(start + 5, 24))) for start in range(0, 24, 5)]
    probe = DataLoader(cells, batch_sampler=order, num_workers=1, persistent_workers=True)
    monitor = AttributionMonitor(
        probe, method="IntegratedGradients", method_kwargs=kwargs, metrics=["localisation"]
    )
    for _ in range(2):
        score = monitor.evaluate(model)["localisation"]
        assert score == pytest.approx(float(expected.compute()), rel=1e-5)
    # batches changed since their sizes were read (batches of 8): read anew, scored the same
    order[:] = [list(range(start, start + 8)) for start in range(0, 24, 8)]
    score = monitor.evaluate(model)["localisation"]
    assert score == pytest.approx(float(expected.compute()), rel=1e-5)


@pytest.mark.ddp
def test_ddp_with_per_image_entries_equals_one_process(cells):
    # every process reads the whole probe's batch sizes at fit start and keeps them: the
    # entries of each of its batches are cut at the batch's place in the whole probe (batches
    # of 7, 7, 7, 3: process 0 takes images 0-6 and 14-20, process 1 images 7-13 and 21-23)
    baselines = torch.rand(cells.images.shape, generator=torch.Generator().manual_seed(3))

    def run(**trainer_kwargs):
        monitor = AttributionMonitor(
            DataLoader(cells, batch_size=7),
            method="IntegratedGradients",
            method_kwargs={"baselines": baselines, "n_steps": 2},
            module="student",
        )
        trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=2, **trainer_kwargs)
        trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=8))
        return {k: float(v) for k, v in trainer.callback_metrics.items() if "attribution" in k}

    single = run(devices=1)
    double = run(devices=2, strategy="ddp_fork")
    alone = AttributionMonitor(
        DataLoader(cells, batch_size=24),
        method="IntegratedGradients",
        method_kwargs={"baselines": baselines, "n_steps": 2},
        module="student",
    ).evaluate(StudentWithTeacher())
    assert single.keys() == double.keys() and len(single) == 7
    for name in single:
        assert double[name] == pytest.approx(single[name], rel=1e-6), name
        assert single[name] == pytest.approx(alone[name.split("/")[1]], rel=1e-5), name
