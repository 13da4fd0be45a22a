"""DissectionMonitor: logging, mode restoration, agreement with the metric, pictures, bad input."""

from __future__ import annotations

import warnings
from collections import UserDict

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_distill import FeatureHooks
from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.datasets import SyntheticConcepts
from lightning_distill.metrics import NetworkDissection
from tests.helpers import NoisyInput, TinyNet, quiet_trainer


@pytest.fixture(scope="module")
def concepts():
    return SyntheticConcepts(48, image_size=16, seed=5)


def probe_loader(data, batch_size=16):
    return DataLoader(data, batch_size=batch_size)


def test_monitor_logs_every_n_epochs(concepts):
    monitor = DissectionMonitor(
        probe_loader(concepts), "features.4", every_n_epochs=2, quantile=0.9
    )
    trainer = quiet_trainer(max_epochs=4, callbacks=[monitor])
    trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))
    assert [entry["epoch"] for entry in monitor.history] == [1, 3]
    logged = trainer.callback_metrics
    results = monitor.last_results
    assert float(logged["dissection/detectors"]) == results.num_detectors
    assert float(logged["dissection/unique_concepts"]) == len(results.unique_concepts)
    for category in concepts.categories:
        assert float(logged[f"dissection/{category}"]) == results.category_counts[category]
    assert monitor.state_dict()["history"] == monitor.history


def test_two_monitors_on_two_layers(concepts):
    first = DissectionMonitor(probe_loader(concepts), "features.1", prefix="conv1")
    second = DissectionMonitor(probe_loader(concepts), "features.4", prefix="conv2")
    trainer = quiet_trainer(max_epochs=1, callbacks=[first, second])
    trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))
    assert first.state_key != second.state_key
    assert first.metric.num_units == 8 and second.metric.num_units == 10
    logged = trainer.callback_metrics
    assert float(logged["conv1/detectors"]) == first.last_results.num_detectors
    assert float(logged["conv2/detectors"]) == second.last_results.num_detectors


def test_dissect_equals_metric_driven_by_hand(concepts):
    model = TinyNet(seed=1)
    loader = probe_loader(concepts, batch_size=10)
    monitor = DissectionMonitor(loader, "features.4", quantile=0.9)
    results = monitor.dissect(model)

    model.eval()
    metric = NetworkDissection(10, concepts.label_names, concepts.label_categories, quantile=0.9)
    with torch.no_grad(), FeatureHooks(model, ["features.4"]) as hooks:
        for batch in loader:
            model(batch["image"])
            metric.update(hooks["features.4"])
        metric.compute_thresholds()
        for batch in loader:
            model(batch["image"])
            metric.update(hooks["features.4"], batch["labels"], batch["image_labels"])
    expected = metric.results()
    assert results.units.equals(expected.units)
    assert results.category_counts == expected.category_counts


def test_dissect_runs_in_eval_without_grad_and_restores_modes(concepts):
    model = TinyNet()
    model.train()
    model.head[0].eval()  # a submodule in its own mode must come back as it was
    before = {name: m.training for name, m in model.named_modules()}
    seen = []

    def record(module, args, output):
        seen.append((module.training, model.head[0].training, torch.is_grad_enabled()))

    handle = model.features[4].register_forward_hook(record)
    DissectionMonitor(probe_loader(concepts), "features.4").dissect(model)
    handle.remove()
    assert seen and all(state == (False, False, False) for state in seen)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_dissect_gives_a_modules_own_train_its_mode_back(concepts):
    # the flags alone were put back: a module whose own train(False) set something besides
    # its flag read as training after a dissection but kept its evaluation setting
    model = TinyNet()
    model.scheduled = NoisyInput()
    model.train()
    DissectionMonitor(probe_loader(concepts), "features.4").dissect(model)
    assert model.scheduled.training and model.scheduled.std == 0.1


def test_monitor_writes_pictures(concepts, tmp_path):
    monitor = DissectionMonitor(
        probe_loader(concepts), "features.4", quantile=0.9, save_dir=tmp_path, plot_units=3, top_k=4
    )
    results = monitor.dissect(TinyNet(), epoch=0)
    from matplotlib.image import imread

    grid = imread(tmp_path / "units_epoch0.png")
    bars = imread(tmp_path / "categories_epoch0.png")
    assert grid.shape[0] > 100 and grid.shape[1] > 300
    assert bars.shape[0] > 100
    assert results.num_detectors == monitor.history[-1]["detectors"]


def test_the_category_chart_title_reads_as_a_sentence(concepts, tmp_path, monkeypatch):
    import lightning_distill.dissection.plotting as plotting

    titles = []
    drawn = plotting.plot_category_counts

    def record(results, ax=None, title=None):
        titles.append(title)
        return drawn(results, ax=ax, title=title)

    monkeypatch.setattr(plotting, "plot_category_counts", record)
    monitor = DissectionMonitor(
        probe_loader(concepts), "features.4", quantile=0.9, save_dir=tmp_path, plot_units=3
    )
    results = monitor.dissect(TinyNet(), epoch=0)
    n, units = results.num_detectors, len(results.units)
    assert titles == [
        f"features.4, after epoch 0 (from 0):\nconcept detectors: {n} of {units} units; "
        f"unique concepts: {len(results.unique_concepts)}"
    ]


def test_unit_grid_shows_the_top_images():
    from lightning_distill.functional import upsample_activations
    from lightning_distill.visualize import plot_unit_grid

    images = torch.rand(10, 3, 8, 8)
    activations = torch.zeros(10, 2, 4, 4)
    activations[7, 0, 1, 1] = 5.0  # image 7 is unit 0's strongest
    activations[2, 1, 2, 2] = 3.0
    fig = plot_unit_grid(images, activations, torch.tensor([1.0, 1.0]), ["a", "b"], top_k=3)
    axes = fig.axes
    assert len(axes) == 6
    shown = torch.as_tensor(axes[0].images[0].get_array())
    image = images[7]
    picture = ((image - image.min()) / (image.max() - image.min())).permute(1, 2, 0).double()
    mask = upsample_activations(activations[7:8, :1], (8, 8))[0, 0] > 1.0
    expected = picture * torch.where(mask, 1.0, 0.45).double()[..., None]
    assert mask.any() and not mask.all()
    torch.testing.assert_close(shown, expected)
    with pytest.raises(ValueError, match="thresholds must have 2 entries"):
        plot_unit_grid(images, activations, torch.tensor([1.0]))


def test_a_classification_probe_is_refused_saying_what_it_holds_and_what_is_needed(concepts):
    # the training loader handed over as the probe: (image, class) pairs, no pixel labels
    training = DataLoader(concepts.classification(), batch_size=16)
    image_shape = list(concepts.classification()[0][0].shape)
    with pytest.raises(ValueError) as refused:
        DissectionMonitor(training, "features.4")
    message = str(refused.value)
    assert "got neither label_names nor label_categories" in message
    assert (
        f"a DataLoader over a TensorDataset without these attributes, whose items are (a "
        f"tensor {image_shape}, a 0-d tensor): (image, class) pairs" in message
    )
    assert "segmentation masks of label ids [B, K, H, W]" in message and "Broden" in message
    assert "BrodenDataset(root) or SyntheticConcepts(n)" in message
    # one of the two given: the other is named as missing
    with pytest.raises(ValueError, match="got label_names but no label_categories, and a list"):
        DissectionMonitor(
            [(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]))], "features.4", label_names=["-"]
        )
    with pytest.raises(ValueError, match="got label_categories but no label_names"):
        DissectionMonitor(training, "features.4", label_categories=["", "color"])


def test_bad_arguments(concepts, tmp_path):
    loader = probe_loader(concepts)
    with pytest.raises(ValueError, match="layer: TinyNet has no submodule named 'features.9'"):
        DissectionMonitor(loader, "features.9").dissect(TinyNet())
    trainer = quiet_trainer(callbacks=[DissectionMonitor(loader, "feature.4")])
    with pytest.raises(ValueError, match="layer: TinyNet has no submodule named 'feature.4'"):
        trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))
    with pytest.raises(ValueError, match="must output \\[batch, units, height, width\\]"):
        DissectionMonitor(loader, "head.2").dissect(TinyNet())
    with pytest.raises(ValueError, match="shuffle=False"):
        DissectionMonitor(DataLoader(concepts, batch_size=8, shuffle=True), "features.4")
    with pytest.raises(ValueError, match="label_names and label_categories are needed"):
        DissectionMonitor([(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))], "features.4")
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 1; got 0"):
        DissectionMonitor(loader, "features.4", every_n_epochs=0)
    with pytest.raises(TypeError, match=r"save_dir must be a str or os.PathLike .*; got 3.0"):
        DissectionMonitor(loader, "features.4", save_dir=3.0)
    with pytest.raises(ValueError, match=r"metric_kwargs must hold arguments of NetworkDissection"):
        DissectionMonitor(loader, "features.4", metric_kwargs={"quantil": 0.9})
    # a category named like a field of history would overwrite that field (and its log)
    categories = ["detectors" if c == "color" else c for c in concepts.label_categories]
    with pytest.raises(
        ValueError, match=r"label_categories must not be named .*got \['detectors'\]"
    ):
        DissectionMonitor(loader, "features.4", label_categories=categories)
    # picture settings are checked at construction, not after an epoch of training
    with pytest.raises(ValueError, match="top_k must be an integer >= 1; got -1"):
        DissectionMonitor(loader, "features.4", top_k=-1)
    with pytest.raises(ValueError, match="plot_units must be an integer >= 1; got 0"):
        DissectionMonitor(loader, "features.4", plot_units=0)
    with pytest.raises(TypeError, match="plot_units must be an integer"):
        DissectionMonitor(loader, "features.4", plot_units=2.7)
    with pytest.raises(TypeError, match="layer must be a module name"):
        DissectionMonitor(loader, 4)
    with pytest.raises(ValueError, match="prefix must be a non-empty str"):
        DissectionMonitor(loader, "features.4", prefix="")
    # empty probe data: a clear error naming it, not a bare StopIteration
    with pytest.raises(ValueError, match="dataloader must yield at least one probe batch"):
        DissectionMonitor(
            DataLoader(torch.utils.data.Subset(concepts, []), batch_size=8), "features.4"
        )
    empty = DissectionMonitor(
        _NoLength([]),
        "features.4",
        label_names=concepts.label_names,
        label_categories=concepts.label_categories,
    )
    with pytest.raises(
        ValueError, match="dataloader must yield at least one probe batch; got none"
    ):
        empty.dissect(TinyNet())
    with pytest.raises(ValueError, match="iou_threshold must be a finite number"):
        DissectionMonitor(loader, "features.4", iou_threshold=2.0)


class _NoLength:
    """An iterable without a length (like a loader over an iterable dataset)."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


class _Brightness(torch.utils.data.Dataset):
    """Image ``i`` is a spot of brightness ``i`` (labelled "spot"): the identity net's best units
    peak on the brightest images of the probe."""

    label_names = ("-", "spot")
    label_categories = ("", "object")

    def __len__(self):
        return 100

    def __getitem__(self, index):
        image = torch.zeros(1, 8, 8)
        image[0, :2, :2] = float(index)
        labels = torch.zeros(1, 8, 8, dtype=torch.long)
        labels[0, :2, :2] = 1
        return {"image": image, "labels": labels}


def _identity_net():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.zero_()
    return net


@pytest.mark.parametrize(
    "probe",
    ["sequential", "sampler range(50, 100)", "Subset in reverse", "list of batches"],
)
def test_unit_picture_shows_the_top_images_of_the_probe_itself(probe, tmp_path, monkeypatch):
    import lightning_distill.dissection.plotting as plotting

    data = _Brightness()
    loaders = {
        "sequential": lambda: DataLoader(data, batch_size=10),
        "sampler range(50, 100)": lambda: DataLoader(data, batch_size=10, sampler=range(50, 100)),
        "Subset in reverse": lambda: DataLoader(
            torch.utils.data.Subset(data, list(range(60, 10, -1))), batch_size=7
        ),
        "list of batches": lambda: list(DataLoader(data, batch_size=10, sampler=range(30, 70))),
    }
    loader = loaders[probe]()
    probe_images = torch.cat([batch["image"] for batch in loader])
    shown = {}

    def spy(images, activations, thresholds, **kwargs):
        shown["images"] = images
        return plot_unit_grid(images, activations, thresholds, **kwargs)

    plot_unit_grid = plotting.plot_unit_grid
    monkeypatch.setattr(plotting, "plot_unit_grid", spy)
    monitor = _brightness_monitor(loader, tmp_path, top_k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        monitor.dissect(_identity_net())
    assert (tmp_path / "units_now.png").exists()
    # the picture's images are the probe's own, and the brightest of them (the unit's top 4)
    brightest = probe_images.amax((1, 2, 3)).sort(descending=True).values[:4]
    assert sorted(shown["images"].amax((1, 2, 3)).tolist()) == sorted(brightest.tolist())
    for image in shown["images"]:
        assert any(torch.equal(image, candidate) for candidate in probe_images)


def _brightness_monitor(loader, save_dir, **kwargs):
    return DissectionMonitor(
        loader,
        "0",
        label_names=_Brightness.label_names,
        label_categories=_Brightness.label_categories,
        save_dir=save_dir,
        **kwargs,
    )


class _ReshufflingBatches(torch.utils.data.Sampler):
    """A batch sampler that draws a new order on every pass (not caught at construction)."""

    def __init__(self, size: int, batch_size: int):
        self.size, self.batch_size = size, batch_size

    def __iter__(self):
        order = torch.randperm(self.size).tolist()
        return iter([order[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)])

    def __len__(self):
        return -(-self.size // self.batch_size)


def test_unit_picture_warns_when_the_probe_cannot_give_its_images_again(tmp_path):
    data = _Brightness()
    loader = iter(list(DataLoader(data, batch_size=10)))
    monitor = _brightness_monitor(loader, tmp_path)
    why = "did not yield them"
    with pytest.warns(UserWarning, match=rf"save_dir=.*units_now.png was not written.*{why}"):
        results = monitor.dissect(_identity_net())
    assert results.num_detectors == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["categories_now.png"]


class _SizedBrightness(_Brightness):
    """``_Brightness`` whose images (and labels) are 8 x 8 up to index 49 and 12 x 12 after."""

    def __getitem__(self, index):
        side = 8 if index < 50 else 12
        image = torch.zeros(1, side, side)
        image[0, :2, :2] = float(index)
        labels = torch.zeros(1, side, side, dtype=torch.long)
        labels[0, :2, :2] = 1
        return {"image": image, "labels": labels}


@pytest.mark.parametrize("probe", ["DataLoader", "list of batches"])
def test_unit_picture_of_images_of_several_sizes_is_left_out_with_a_warning(probe, tmp_path):
    # the unit's 12 top images are items 48..59: two of 8 x 8, ten of 12 x 12, which cannot be
    # drawn side by side at one size: the picture is left out, the dissection stands
    data = _SizedBrightness()
    loader = DataLoader(data, batch_size=1, sampler=range(40, 60))
    if probe == "list of batches":
        loader = list(loader)
    plain = _brightness_monitor(loader, None).dissect(_identity_net())
    monitor = _brightness_monitor(loader, tmp_path, top_k=12)
    why = r"different sizes \(1, 8, 8\) and \(1, 12, 12\)"
    with pytest.warns(UserWarning, match=rf"save_dir=.*units_now.png was not written.*{why}"):
        results = monitor.dissect(_identity_net())
    assert results.units.equals(plain.units)
    assert monitor.history[-1]["detectors"] == plain.num_detectors
    assert sorted(path.name for path in tmp_path.iterdir()) == ["categories_now.png"]


def test_a_one_shot_probe_is_refused_where_it_would_be_read_again(concepts, tmp_path):
    names = {"label_names": concepts.label_names, "label_categories": concepts.label_categories}
    batches = list(probe_loader(concepts, batch_size=8))
    # during training every dissection reads the probe again: refused before the first epoch
    monitor = DissectionMonitor(iter(batches), "features.4", **names)
    trainer = quiet_trainer(max_epochs=2, callbacks=[monitor])
    with pytest.raises(TypeError, match="dataloader must be probe data that can be read again"):
        trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))
    assert monitor.history == []
    # a fit with one dissection due reads it once: fine
    once = DissectionMonitor(iter(batches), "features.4", every_n_epochs=2, **names)
    quiet_trainer(max_epochs=3, callbacks=[once]).fit(
        TinyNet(), DataLoader(concepts.classification(), batch_size=16)
    )
    assert [entry["epoch"] for entry in once.history] == [1]
    # one dissect() whose maps do not fit the cache needs a second pass
    uncached = DissectionMonitor(
        iter(batches), "features.4", metric_kwargs={"cache_bytes": 0}, **names
    )
    with pytest.raises(TypeError, match=r"do not fit the metric's cache.*one-shot list_iterator"):
        uncached.dissect(TinyNet())
    # one whose maps fit is read once: fine
    assert DissectionMonitor(iter(batches), "features.4", **names).dissect(TinyNet()) is not None


def test_metric_kwargs_may_not_contradict_the_monitors_own_arguments(concepts):
    loader = probe_loader(concepts)
    with pytest.raises(ValueError, match=r"quantile=0.5 there and quantile=0.99"):
        DissectionMonitor(loader, "features.4", quantile=0.99, metric_kwargs={"quantile": 0.5})
    # any mapping (a read-only one, a configuration object) is read as a dict
    import types

    frozen = types.MappingProxyType({"quantile": 0.99})
    assert (
        DissectionMonitor(loader, "features.4", metric_kwargs=frozen).metric_kwargs["quantile"]
        == 0.99
    )
    # set once, either way, it is taken
    for monitor in (
        DissectionMonitor(loader, "features.4", quantile=0.99),
        DissectionMonitor(loader, "features.4", metric_kwargs={"quantile": 0.99}),
        DissectionMonitor(loader, "features.4", quantile=0.99, metric_kwargs={"quantile": 0.99}),
    ):
        assert monitor.metric_kwargs["quantile"] == 0.99


@pytest.mark.parametrize(
    "sampler",
    [
        torch.utils.data.SubsetRandomSampler(range(20)),
        torch.utils.data.WeightedRandomSampler(torch.ones(20), 20),
        torch.utils.data.DistributedSampler(range(20), num_replicas=1, rank=0),  # shuffles
    ],
    ids=lambda sampler: type(sampler).__name__,
)
def test_random_samplers_are_refused(concepts, sampler):
    with pytest.raises(ValueError, match=f"fixed order.*{type(sampler).__name__}"):
        DissectionMonitor(DataLoader(concepts, batch_size=8, sampler=sampler), "features.4")


def _sharded(data, where: str, replicas: int, shuffle: bool = False) -> DataLoader:
    """A probe loader whose DistributedSampler gives rank 1 of ``replicas`` processes its
    shard, as its sampler, inside its batch sampler, or item by item."""
    rank = min(1, replicas - 1)
    sampler = torch.utils.data.DistributedSampler(
        data, num_replicas=replicas, rank=rank, shuffle=shuffle
    )
    if where == "batch_sampler":
        batches = torch.utils.data.BatchSampler(sampler, batch_size=8, drop_last=False)
        return DataLoader(data, batch_sampler=batches)
    if where == "batch_size=None":
        return DataLoader(data, batch_size=None, sampler=sampler)
    return DataLoader(data, batch_size=8, sampler=sampler)


@pytest.mark.parametrize("where", ["sampler", "batch_sampler", "batch_size=None"])
@pytest.mark.parametrize("monitor", ["DissectionMonitor", "AttributionMonitor"])
def test_a_probe_sharded_by_a_distributed_sampler_is_refused(concepts, monitor, where):
    # under DDP each process read its own shard of the probe and then scored every
    # world_size-th batch of it: most of the probe was scored by no process, silently
    from lightning_distill.callbacks import AttributionMonitor

    def build(loader):
        if monitor == "DissectionMonitor":
            return DissectionMonitor(loader, "features.4")
        return AttributionMonitor(loader)

    expected = (
        r"dataloader must give every process the whole probe .* the monitor splits the probe "
        r"between the processes itself.*; got a DataLoader with a DistributedSampler of "
        r"num_replicas=2"
    )
    for shuffle in (False, True):  # a shuffling one is told the same (shuffle=False alone
        # would not do)
        with pytest.raises(ValueError, match=expected):
            build(_sharded(concepts, where, replicas=2, shuffle=shuffle))
    # set after construction: refused alike, the probe kept
    built = build(probe_loader(concepts))
    kept = built.dataloader
    with pytest.raises(ValueError, match=expected):
        built.dataloader = _sharded(concepts, where, replicas=2)
    assert built.dataloader is kept
    # one replica gives the whole probe, in order: accepted
    assert build(_sharded(concepts, where, replicas=1)).dataloader is not None


class _Reshuffling(torch.utils.data.Sampler):
    """A sampler of its own that draws a new order on every pass, with no shuffle flag."""

    def __init__(self, size: int):
        self.size = size

    def __iter__(self):
        return iter(torch.randperm(self.size).tolist())

    def __len__(self):
        return self.size


class _Fixed(_Reshuffling):
    def __iter__(self):
        return iter(range(self.size - 1, -1, -1))


class _ReshufflingByNumpy(_Reshuffling):
    def __iter__(self):
        return iter(np.random.permutation(self.size).tolist())  # noqa: NPY002


class _ReshufflingByPython(_Reshuffling):
    def __iter__(self):
        import random

        order = list(range(self.size))
        random.shuffle(order)
        return iter(order)


@pytest.mark.parametrize(
    "where", ["sampler", "batch_sampler", "numpy", "python", "batch_size=None"]
)
def test_custom_samplers_that_reshuffle_are_found_by_reading_them_twice(concepts, where):
    import random

    from lightning_distill.callbacks import AttributionMonitor

    n = len(concepts)
    kinds = {"numpy": _ReshufflingByNumpy, "python": _ReshufflingByPython}
    if where == "batch_sampler":
        shuffling = DataLoader(concepts, batch_sampler=_ReshufflingBatches(n, 8))
        name = "_ReshufflingBatches"
    elif where == "batch_size=None":  # items one by one: the sampler itself is read
        shuffling = DataLoader(concepts, batch_size=None, sampler=_Reshuffling(n))
        name = "_Reshuffling"
    else:
        kind = kinds.get(where, _Reshuffling)
        shuffling = DataLoader(concepts, batch_size=8, sampler=kind(n))
        name = kind.__name__
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002 - the global generator a sampler may use
    before = (torch.rand(1), random.random(), np.random.rand())  # noqa: NPY002
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    with pytest.raises(ValueError, match=f"fixed order.*a DataLoader with a {name} "):
        DissectionMonitor(shuffling, "features.4")
    # reading the sampler twice left every global generator where it was
    assert (torch.rand(1), random.random(), np.random.rand()) == before  # noqa: NPY002
    with pytest.raises(ValueError, match=f"dataloader must be in a fixed order.*{name}"):
        AttributionMonitor(shuffling)
    # a sampler of its own in a fixed order is read twice and accepted
    fixed = DataLoader(concepts, batch_size=8, sampler=_Fixed(n))
    DissectionMonitor(fixed, "features.4")


class _ByKey(torch.utils.data.Sampler):
    """A fixed order of string keys (a dataset indexed by name)."""

    def __init__(self, keys):
        self.keys = keys

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


class _KeysOfUnknownLength(_ByKey):
    def __len__(self):
        raise NotImplementedError("length unknown")


class _Keyed(torch.utils.data.Dataset):
    def __getitem__(self, key):
        return torch.zeros(3, 8, 8), int(key[-1])


def test_samplers_of_keys_tuples_or_no_length_are_not_refused():
    # items that are no ints, and a sampler that cannot say its length: nothing to refuse
    from lightning_distill._batch import shuffling_sampler

    keys = [f"cell_{i}" for i in range(6)]
    assert shuffling_sampler(DataLoader(_Keyed(), batch_size=2, sampler=_ByKey(keys))) is None
    assert (
        shuffling_sampler(DataLoader(_Keyed(), batch_size=2, sampler=_KeysOfUnknownLength(keys)))
        is None
    )
    pairs = [[(0, 32), (1, 32)], [(2, 32), (3, 32)]]
    assert shuffling_sampler(DataLoader(_Keyed(), batch_sampler=pairs)) is None


class _Wide(torch.nn.Module):
    def __init__(self, units: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, units, 3, padding=1), torch.nn.ReLU()
        )

    def forward(self, x):
        return self.features(x)


@pytest.mark.filterwarnings("ignore:the thresholds of .* outside histogram_range")
def test_one_monitor_dissects_a_teacher_and_a_narrower_student(concepts):
    # the library's study: a 96-unit teacher and 64-unit students, one probe, one layer name
    teacher, student = _Wide(96, seed=0), _Wide(64, seed=1)
    monitor = DissectionMonitor(probe_loader(concepts), "features.1", quantile=0.9)
    shared = [monitor.dissect(model) for model in (teacher, student, teacher)]
    for model, results in zip((teacher, student, teacher), shared, strict=True):
        fresh = DissectionMonitor(probe_loader(concepts), "features.1", quantile=0.9)
        expected = fresh.dissect(model)
        assert len(results.units) == len(expected.units)
        assert results.units.equals(expected.units)
        assert results.category_counts == expected.category_counts
    assert [entry["units"] for entry in monitor.history] == [96, 64, 96]
    assert [entry["detectors"] for entry in monitor.history] == [r.num_detectors for r in shared]
    assert monitor.last_results is shared[-1]


@pytest.mark.parametrize("key", ["label", "segmentation"])
def test_dict_probe_without_a_labels_key_is_refused_before_any_forward(concepts, key):
    batches = [{"image": batch["image"], key: batch["labels"]} for batch in probe_loader(concepts)]
    model = TinyNet()
    calls = []
    model.features.register_forward_hook(lambda *args: calls.append(1))
    monitor = DissectionMonitor(
        batches,
        "features.4",
        label_names=concepts.label_names,
        label_categories=concepts.label_categories,
    )
    with pytest.raises(
        ValueError, match=rf"'labels'.*'image_labels'.*got keys \['image', '{key}'\]"
    ):
        monitor.dissect(model)
    assert calls == []


def test_a_dict_probe_is_read_under_the_training_modules_input_keys(concepts):
    # "x" before "image", as DistillationModule reads the batch: the model trained on x is
    # dissected on x, not on the image entry beside it
    expected = _listed_probe_monitor(list(probe_loader(concepts)), concepts).dissect(TinyNet())
    both = [
        {**b, "x": b["image"], "image": torch.zeros_like(b["image"])}
        for b in probe_loader(concepts)
    ]
    results = _listed_probe_monitor(both, concepts).dissect(TinyNet())
    assert results.units.equals(expected.units)
    # a mapping that is not a dict (a UserDict, as transformers' BatchEncoding) reads alike
    mappings = [UserDict(b) for b in both]
    results = _listed_probe_monitor(mappings, concepts).dissect(TinyNet())
    assert results.units.equals(expected.units)


def test_a_subset_of_the_probe_keeps_its_label_names_and_nan_maps_name_the_layer(concepts):
    subset = torch.utils.data.Subset(concepts, range(20))
    monitor = DissectionMonitor(probe_loader(subset, batch_size=10), "features.4", quantile=0.9)
    assert monitor.label_names == list(concepts.label_names)
    assert monitor.label_categories == list(concepts.label_categories)
    results = monitor.dissect(TinyNet(seed=1))
    assert len(results.units) == 10

    model = TinyNet(seed=1)
    with torch.no_grad():
        model.features[3].bias[0] = float("nan")
    with pytest.raises(ValueError, match=r"layer 'features\.4' output NaN or inf"):
        monitor.dissect(model)


def test_a_layer_the_forward_does_not_reach_points_to_forward(concepts):
    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.student, self.teacher = TinyNet(seed=1), TinyNet(seed=2)

        def forward(self, x):
            return self.student(x)

    monitor = DissectionMonitor(probe_loader(concepts), "teacher.features.4", quantile=0.9)
    with pytest.raises(ValueError, match=r"'teacher\.features\.4' did not run in module\(images\)"):
        monitor.dissect(Pair())
    monitor.forward = lambda module, images: module.teacher(images)
    assert len(monitor.dissect(Pair()).units) == 10


def test_the_histogram_range_advice_says_how_to_give_it_to_the_monitor(concepts):
    model = TinyNet(seed=1)
    with torch.no_grad():
        model.features[3].weight.mul_(1e6)  # maps far above the default range's 1e3
    monitor = DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.9)
    with pytest.warns(UserWarning, match="outside histogram_range") as caught:
        monitor.dissect(model)
    (advice,) = [w for w in caught if "outside histogram_range" in str(w.message)]
    assert "metric_kwargs={'histogram_range': (low, high)}" in str(advice.message)
    assert advice.filename == __file__  # at the line that called dissect()


def test_the_monitor_leaves_the_trainings_random_state_alone(concepts):
    def fit(with_monitor: bool) -> dict:
        model = TinyNet(seed=2)
        monitors = [DissectionMonitor(probe_loader(concepts), "features.4")] if with_monitor else []
        torch.manual_seed(4)
        loader = DataLoader(concepts.classification(), batch_size=16, shuffle=True)
        quiet_trainer(max_epochs=3, callbacks=monitors).fit(model, loader)
        return {k: v.clone() for k, v in model.state_dict().items()}

    plain, monitored = fit(False), fit(True)
    assert all(torch.equal(plain[k], monitored[k]) for k in plain)
    model, monitor = TinyNet(), DissectionMonitor(probe_loader(concepts), "features.4")
    state = torch.get_rng_state()  # TinyNet() seeds torch: read the state after building it
    monitor.dissect(model)
    assert torch.equal(state, torch.get_rng_state())


def test_two_monitors_with_one_prefix_are_refused(concepts):
    first = DissectionMonitor(probe_loader(concepts), "features.1")
    second = DissectionMonitor(probe_loader(concepts), "features.4")
    trainer = quiet_trainer(max_epochs=1, callbacks=[first, second])
    with pytest.raises(ValueError, match="prefix must differ between the DissectionMonitors"):
        trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))


def test_layer_mistakes_fail_before_training_and_1x1_maps_are_warned_about(concepts):
    class Steps(L.Callback):
        steps = 0

        def on_train_batch_end(self, *args):
            Steps.steps += 1

    monitor = DissectionMonitor(probe_loader(concepts), "head.1")  # pooled: [B, 10, 1, 1]
    with pytest.warns(UserWarning, match=r"'head\.1' outputs 1 x 1 maps") as caught:
        monitor.dissect(TinyNet())
        monitor.dissect(TinyNet())
    assert sum("1 x 1 maps" in str(w.message) for w in caught) == 1  # once per monitor
    flat = DissectionMonitor(probe_loader(concepts), "head.2")  # flattened: [B, 10]
    trainer = quiet_trainer(max_epochs=1, callbacks=[flat, Steps()])
    with pytest.raises(ValueError, match=r"'head\.2' must output \[batch, units, height, width\]"):
        trainer.fit(TinyNet(), DataLoader(concepts.classification(), batch_size=16))
    assert Steps.steps == 0  # refused at the start of the fit, not after an epoch
    late = DissectionMonitor(probe_loader(concepts), "features.4", every_n_epochs=3)
    with pytest.warns(
        UserWarning, match=r"every 3 epochs \(every_n_epochs=3\), and this fit has max_epochs=1"
    ):
        quiet_trainer(max_epochs=1, callbacks=[late]).fit(
            TinyNet(), DataLoader(concepts.classification(), batch_size=16)
        )


def test_the_monitor_reads_float32_probes_into_a_float64_fit(concepts):
    monitor = DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.9)
    trainer = quiet_trainer(max_epochs=1, callbacks=[monitor], precision="64-true")
    model = TinyNet(seed=1)
    trainer.fit(model, DataLoader(concepts.classification(), batch_size=16))
    assert next(model.parameters()).dtype == torch.float64
    # the trained float64 net dissected by hand, on float64 probe images
    expected = DissectionMonitor(
        [{**b, "image": b["image"].double()} for b in probe_loader(concepts)],
        "features.4",
        quantile=0.9,
        label_names=concepts.label_names,
        label_categories=concepts.label_categories,
    ).dissect(model)
    assert monitor.last_results.units.equals(expected.units)


class _Rewrapped(torch.nn.Module):
    """A layer whose maps come out channels-last [B, h, w, U] (as after a LayerNorm over
    channels in ConvNeXt) or inside a tuple."""

    def __init__(self, inner, how):
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x):
        maps = self.inner(x)
        return maps.permute(0, 2, 3, 1) if self.how == "channels_last" else (maps, None)


class _Unwrapped(torch.nn.Module):
    def __init__(self, layer, how):
        super().__init__()
        self.layer, self.how = layer, how

    def forward(self, x):
        out = self.layer(x)
        return out.permute(0, 3, 1, 2) if self.how == "channels_last" else out[0]


@pytest.mark.parametrize(
    ("how", "transform"),
    [("channels_last", lambda out: out.permute(0, 3, 1, 2)), ("tuple", lambda out: out[0])],
)
def test_output_transform_dissects_a_layer_whose_output_is_not_its_maps(concepts, how, transform):
    expected = DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.9).dissect(
        TinyNet(seed=2)
    )
    model = TinyNet(seed=2)
    model.features[4] = _Rewrapped(model.features[4], how)
    model.features.append(_Unwrapped(torch.nn.Identity(), how))  # the head sees its maps
    monitor = DissectionMonitor(
        probe_loader(concepts), "features.4", quantile=0.9, output_transform=transform
    )
    assert monitor.dissect(model).units.equals(expected.units)
    if how == "tuple":
        with pytest.raises(ValueError, match="got tuple: pass output_transform="):
            DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.9).dissect(model)
    with pytest.raises(TypeError, match="output_transform must be a callable"):
        DissectionMonitor(probe_loader(concepts), "features.4", output_transform="permute")
    failing = DissectionMonitor(
        probe_loader(concepts), "features.4", output_transform=lambda out: out.no_such_field
    )
    with pytest.raises(ValueError, match="output_transform failed on layer 'features.4'"):
        failing.dissect(model)


def test_an_element_of_a_layer_returning_a_tuple_is_named_as_in_feature_hooks(concepts):
    # "features.4[0]" (element 0 of the layer's tuple output, as FeatureHooks and the
    # distillation layer names read it) had been refused as no submodule of that name
    expected = DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.9).dissect(
        TinyNet(seed=2)
    )
    model = TinyNet(seed=2)
    model.features[4] = _Rewrapped(model.features[4], "tuple")
    model.features.append(_Unwrapped(torch.nn.Identity(), "tuple"))
    monitor = DissectionMonitor(probe_loader(concepts), "features.4[0]", quantile=0.9)
    assert monitor.dissect(model).units.equals(expected.units)
    # in a fit too (the layer is looked up at setup)
    trainer = quiet_trainer(max_epochs=1, callbacks=[monitor])
    trainer.fit(model, DataLoader(concepts.classification(), batch_size=16))
    assert monitor.history[-1]["epoch"] == 0
    assert monitor.last_results.units.equals(
        DissectionMonitor(probe_loader(concepts), "features.4[0]", quantile=0.9)
        .dissect(model)
        .units
    )
    # the tuple's refusal names this way; a wrong pick is told as such, naming layer
    with pytest.raises(ValueError, match=r"got tuple: .* or layer='features.4\[0\]'"):
        DissectionMonitor(probe_loader(concepts), "features.4").dissect(model)
    with pytest.raises(ValueError, match=r"layer: 'features.4\[2\]' picks element 2 .* of 2"):
        DissectionMonitor(probe_loader(concepts), "features.4[2]").dissect(model)
    with pytest.raises(TypeError, match=r"layer: 'features.3\[0\]' picks element 0"):
        DissectionMonitor(probe_loader(concepts), "features.3[0]").dissect(model)


def _listed_probe_monitor(batches, concepts):
    """A monitor of layer features.4 over a list of batches (which has no label names)."""
    return DissectionMonitor(
        batches,
        "features.4",
        label_names=concepts.label_names,
        label_categories=concepts.label_categories,
    )


def test_a_class_target_in_a_tuple_batch_is_not_read_as_image_labels(concepts):
    triples = [
        (batch["image"], batch["labels"], torch.zeros(len(batch["image"]), dtype=torch.long))
        for batch in probe_loader(concepts)
    ]
    monitor = _listed_probe_monitor(triples, concepts)
    with pytest.raises(ValueError, match="third entry .* whole-image labels \\[B, S\\]"):
        monitor.dissect(TinyNet())
    four = [(*triple, triple[2]) for triple in triples]
    monitor.dataloader = four
    with pytest.raises(ValueError, match="got a tuple of 4 entries"):
        monitor.dissect(TinyNet())


def test_uint8_probe_images_are_refused_by_name(concepts):
    raw = [
        {"image": (batch["image"] * 255).to(torch.uint8), "labels": batch["labels"]}
        for batch in probe_loader(concepts)
    ]
    monitor = _listed_probe_monitor(raw, concepts)
    with pytest.raises(TypeError, match="dataloader must yield images in a floating dtype"):
        monitor.dissect(TinyNet())


class _GeneratorProbe(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(8, 3, 8, 8, generator=g)
        self.labels = torch.randint(0, 3, (8, 1, 8, 8), generator=g)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"image": self.x[i], "labels": self.labels[i]}


def _generator_monitor(layer: str, loader=None) -> DissectionMonitor:
    """A monitor of ``layer`` on ``_GeneratorProbe`` (three labels), by batches of 4."""
    loader = DataLoader(_GeneratorProbe(), batch_size=4) if loader is None else loader
    return DissectionMonitor(
        loader, layer, label_names=["-", "a", "b"], label_categories=["", "c", "c"]
    )


def test_dissection_leaves_the_probe_loaders_own_generators_where_they_were():
    # a loader with its own generator draws its worker seed from it when iterated; shared with
    # the training loader, a monitor changed the training's data order
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    g = torch.Generator().manual_seed(5)
    sampler_g = torch.Generator().manual_seed(6)
    probe = DataLoader(
        _GeneratorProbe(),
        batch_size=4,
        generator=g,
        sampler=torch.utils.data.SequentialSampler(range(8)),
    )
    probe.sampler.generator = sampler_g  # a sampler's own generator is given back too
    before = g.get_state(), sampler_g.get_state()
    _generator_monitor("1", probe).dissect(net)
    assert torch.equal(g.get_state(), before[0])
    assert torch.equal(sampler_g.get_state(), before[1])


def test_probe_images_the_module_cannot_read_are_named():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
    monitor = _generator_monitor("1")  # three-channel images
    with pytest.raises(
        ValueError,
        match=r"DissectionMonitor's module\(images\) failed on the probe's images \(dataloader\) "
        r"of shape \(4, 3, 8, 8\).*3 channels",
    ):
        monitor.dissect(net)


def test_a_layer_run_twice_in_one_forward_is_said():
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = torch.nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.block(torch.relu(self.block(x)))

    torch.manual_seed(0)
    monitor = _generator_monitor("block")
    with pytest.warns(
        UserWarning,
        match=r"layer 'block' ran 2 times in one forward pass; its "
        r"last output is dissected",
    ):
        monitor.dissect(Twice())
    # once per monitor, not at every dissection (every epoch of a fit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.dissect(Twice())
    assert not [w for w in caught if "ran 2 times" in str(w.message)]


def test_a_tied_block_is_found_under_each_of_its_names(concepts):
    # a block registered twice (self.second = self.first, as weight tying does) is listed by
    # named_modules() under its first name alone; its other name was refused as missing
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.first = torch.nn.Conv2d(3, 5, 3, padding=1)
            self.second = self.first

        def forward(self, x):
            return self.second(x)

    model = Tied()
    loader = probe_loader(concepts)
    by_alias = DissectionMonitor(loader, "second", quantile=0.9).dissect(model)
    by_first = DissectionMonitor(loader, "first", quantile=0.9).dissect(model)
    assert by_alias.units.equals(by_first.units)
    assert [len(m._forward_hooks) for m in model.modules()] == [0, 0]


def _listed(items):
    """A collate_fn that keeps the images as a list (as for images of several sizes)."""
    return {
        "image": [item["image"] for item in items],
        "labels": torch.stack([item["labels"] for item in items]),
    }


def test_probe_images_given_as_a_list_are_named(concepts):
    monitor = DissectionMonitor(
        DataLoader(concepts, batch_size=8, collate_fn=_listed), "features.4"
    )
    with pytest.raises(TypeError, match=r"^dataloader must be batches whose images are one .*"):
        monitor.dissect(TinyNet())


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("every_n_epochs", 0, ValueError),
        ("every_n_epochs", -2, ValueError),
        ("plot_units", -1, ValueError),
        ("top_k", 2.5, TypeError),
        ("dataloader", "shuffled", ValueError),
        ("dataloader", 3, TypeError),
        ("layer", 4, TypeError),
        ("prefix", "", ValueError),
        ("forward", "model", TypeError),
        ("output_transform", 0, TypeError),
        ("save_dir", 3, TypeError),
    ],
    ids=[
        "every-0",
        "every-negative",
        "plot_units-negative",
        "top_k-float",
        "dataloader-shuffled",
        "dataloader-int",
        "layer-int",
        "prefix-empty",
        "forward-str",
        "output_transform-int",
        "save_dir-int",
    ],
)
def test_monitor_settings_set_after_construction_are_checked(concepts, name, value, error):
    # every_n_epochs=0 failed in a hook with ZeroDivisionError, a negative one ran every epoch,
    # and a negative plot_units or top_k dropped units or images from the end, silently; a
    # shuffling probe passed two orders to the two passes, an empty prefix logged under
    # "/detectors", and the others failed in a hook or a dissection
    if value == "shuffled":
        value = DataLoader(concepts, batch_size=16, shuffle=True)
    arguments = {"dataloader": probe_loader(concepts), "layer": "features.4", name: value}
    with pytest.raises(error) as built:
        DissectionMonitor(**arguments)
    monitor = DissectionMonitor(probe_loader(concepts), "features.4")
    before = getattr(monitor, name)
    with pytest.raises(error) as set_later:
        setattr(monitor, name, value)
    assert str(set_later.value) == str(built.value)
    assert getattr(monitor, name) == before


@pytest.mark.parametrize("name", ["label_names", "label_categories"])
def test_monitor_labels_are_fixed_at_construction(concepts, name):
    # set later, the labels skipped the constructor's checks (a category named like a history
    # field, here "units", which overwrote it) and a metric already built kept the old ones
    monitor = DissectionMonitor(probe_loader(concepts), "features.4")
    before = list(getattr(monitor, name))
    expected = monitor.dissect(TinyNet(seed=1))
    changed = list(before)
    changed[1] = "units"
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction"):
        setattr(monitor, name, changed)
    with pytest.raises(TypeError, match=rf"^{name} is set at construction .* in place"):
        getattr(monitor, name)[1] = "units"
    with pytest.raises(TypeError, match=rf"^{name} is set at construction .* in place"):
        getattr(monitor, name).append("more")
    assert getattr(monitor, name) == before == list(getattr(concepts, name))
    monitor.every_n_epochs = 2  # the monitor's other settings are still set as before
    results = monitor.dissect(TinyNet(seed=1))
    assert results.units.equals(expected.units)


def test_monitor_metric_kwargs_are_fixed_at_construction(concepts):
    # set later (or edited in place) they had been read only by a metric of another width:
    # the next dissection of the same layer kept the metric built with the old ones
    monitor = DissectionMonitor(probe_loader(concepts), "features.4", quantile=0.99)
    expected = monitor.dissect(TinyNet(seed=1))
    with pytest.raises(AttributeError, match=r"^metric_kwargs is set at construction"):
        monitor.metric_kwargs = {"quantile": 0.9}
    with pytest.raises(TypeError, match=r"^metric_kwargs is set at construction .* in place"):
        monitor.metric_kwargs["quantile"] = 0.9
    with pytest.raises(TypeError, match=r"^metric_kwargs is set at construction .* in place"):
        monitor.metric_kwargs.update(iou_threshold=0.5)
    assert monitor.metric_kwargs == {
        "quantile": 0.99,
        "iou_threshold": 0.04,
        "activation_side": "annotated",
    }
    results = monitor.dissect(TinyNet(seed=1))
    assert results.units.equals(expected.units)
    # a copy to edit builds another monitor; the fixed one copies and pickles as a dict
    other = DissectionMonitor(
        probe_loader(concepts), "features.4", metric_kwargs={**monitor.metric_kwargs}
    )
    assert other.metric_kwargs == monitor.metric_kwargs
    import copy
    import pickle

    for copied in (copy.deepcopy(monitor), pickle.loads(pickle.dumps(monitor))):
        assert copied.metric_kwargs == monitor.metric_kwargs
        with pytest.raises(TypeError, match="in place"):
            copied.metric_kwargs["quantile"] = 0.5


def test_monitor_probe_set_later_must_name_its_labels_as_the_monitor_does(concepts):
    # a probe whose dataset names its labels otherwise had its label ids read under the
    # monitor's names, silently
    monitor = DissectionMonitor(probe_loader(concepts), "features.4")
    renamed = SyntheticConcepts(48, image_size=16, seed=5)
    renamed.label_names = [f"other_{name}" for name in concepts.label_names]
    with pytest.raises(ValueError, match=r"^dataloader must have the label_names the monitor"):
        monitor.dataloader = probe_loader(renamed)
    # a probe of the same labels (another batch size here) is taken, and read
    monitor.dataloader = probe_loader(concepts, batch_size=12)
    assert monitor.dissect(TinyNet(seed=1)).units.equals(
        DissectionMonitor(probe_loader(concepts), "features.4").dissect(TinyNet(seed=1)).units
    )


def test_monitor_built_with_its_own_label_names_takes_its_probe_again(concepts):
    # label_names given to the constructor name the probe's label ids otherwise than its dataset
    # does (taken there): the same probe, or another of the same dataset, set later had been
    # refused as a probe of other labels
    names = [name.upper() for name in concepts.label_names]
    monitor = DissectionMonitor(probe_loader(concepts), "features.4", label_names=names)
    monitor.dataloader = monitor.dataloader
    monitor.dataloader = probe_loader(concepts, batch_size=12)
    assert monitor.label_names == names
    built = DissectionMonitor(probe_loader(concepts), "features.4", label_names=names)
    assert monitor.dissect(TinyNet(seed=1)).units.equals(built.dissect(TinyNet(seed=1)).units)
    # a probe naming its labels as neither does is still refused
    renamed = SyntheticConcepts(48, image_size=16, seed=5)
    renamed.label_names = [f"other_{name}" for name in concepts.label_names]
    with pytest.raises(ValueError, match=r"^dataloader must have the label_names the monitor"):
        monitor.dataloader = probe_loader(renamed)


class _CoarseLabelBrightness(_Brightness):
    """``_Brightness`` (8 x 8 images, a spot of brightness ``i`` over a 3 x 3 corner) with its
    pixel labels at 4 x 4."""

    def __getitem__(self, index):
        image = torch.zeros(1, 8, 8)
        image[0, :3, :3] = float(index)
        labels = torch.zeros(1, 4, 4, dtype=torch.long)
        labels[0, :2, :2] = 1
        return {"image": image, "labels": labels}


@pytest.mark.parametrize("probe", ["DataLoader", "list of batches"])
def test_unit_picture_draws_the_masks_the_tally_counted_at_the_labels_resolution(
    probe, tmp_path, monkeypatch
):
    # the tally counts IoU on the maps resized to the labels (4 x 4); the picture drew them
    # resized to the images (8 x 8), masks that were not counted, and did not say so
    import lightning_distill.dissection.plotting as plotting
    from lightning_distill.functional import upsample_activations

    loader = DataLoader(_CoarseLabelBrightness(), batch_size=10, sampler=range(30, 70))
    if probe == "list of batches":
        loader = list(loader)
    drawn = {}

    def spy(images, activations, thresholds, **kwargs):
        drawn.update(images=images, activations=activations, thresholds=thresholds, **kwargs)
        drawn["figure"] = plot_unit_grid(images, activations, thresholds, **kwargs)
        return drawn["figure"]

    plot_unit_grid = plotting.plot_unit_grid
    monkeypatch.setattr(plotting, "plot_unit_grid", spy)
    results = _brightness_monitor(loader, tmp_path, top_k=3).dissect(_identity_net())
    assert (tmp_path / "units_now.png").exists()
    threshold = float(results.units.threshold.iloc[0])
    assert threshold == float(drawn["thresholds"][0])
    differ = 0
    # the columns: the images by their peak activation, the brightest first
    order = drawn["activations"][:, 0].flatten(1).amax(1).argsort(descending=True)
    for col, index in enumerate(order[:3].tolist()):
        image = drawn["images"][index]
        maps = drawn["activations"][index : index + 1, :1]
        counted = (upsample_activations(maps, (4, 4)) > threshold)[0, 0]
        blocks = counted.repeat_interleave(2, 0).repeat_interleave(2, 1)
        picture = (image[0] - image.min()) / (image.max() - image.min())
        expected = (picture.double() * torch.where(blocks, 1.0, 0.45).double())[..., None]
        shown = torch.as_tensor(drawn["figure"].axes[col].images[0].get_array())
        torch.testing.assert_close(shown, expected.expand(8, 8, 3))
        differ += int((blocks != (upsample_activations(maps, (8, 8)) > threshold)[0, 0]).sum())
    assert differ > 0  # the masks at the images' resolution are other masks
    # and the picture says what it shows
    assert drawn["mask_size"] == (4, 4)
    assert drawn["title"] == (
        "0, now: unit masks at 4 x 4 pixels, the labels', where IoU is counted; images 8 x 8"
    )


class _SizedLabelBrightness(_Brightness):
    """``_Brightness`` (8 x 8 images) whose labels are 4 x 4 up to index 49 and 8 x 8 after."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        if index < 50:
            item["labels"] = item["labels"][:, ::2, ::2]
        return item


@pytest.mark.parametrize("probe", ["DataLoader", "list of batches"])
def test_unit_picture_of_labels_of_several_sizes_is_left_out_with_a_warning(probe, tmp_path):
    # the masks of one picture are drawn at one resolution, the labels': top images whose
    # labels differ in size (items 48, 49 at 4 x 4, the others at 8 x 8) leave it out
    loader = DataLoader(_SizedLabelBrightness(), batch_size=1, sampler=range(40, 60))
    if probe == "list of batches":
        loader = list(loader)
    monitor = _brightness_monitor(loader, tmp_path, top_k=12)
    why = r"pixel labels of different sizes \(4, 4\) and \(8, 8\)"
    with pytest.warns(UserWarning, match=rf"save_dir=.*units_now.png was not written.*{why}"):
        monitor.dissect(_identity_net())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["categories_now.png"]
