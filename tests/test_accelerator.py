"""Every capability on an accelerator: the same numbers as on the CPU, states on the device.

Skipped without a CUDA or MPS device (CI has none). ``ACCELERATOR_TEST_DEVICE`` names the device
to test (``cuda``, ``cuda:1``, ``mps``); ``ACCELERATOR_TEST_DEVICE=cpu`` runs the same code with
the CPU on both sides, to try the tests themselves on a machine without an accelerator.

Each fit runs twice, on the CPU and on the device, from the same seeds and data, in float64
(float32 on MPS, which has no float64): parameters and logged values must agree to rounding."""

from __future__ import annotations

import contextlib
import copy
import os

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers import IndexedDataset, PlainClassifier, make_cnn, make_data, make_probe


def _device() -> torch.device | None:
    name = os.environ.get("ACCELERATOR_TEST_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return None


DEVICE = _device()
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no CUDA or MPS device")
DTYPE = torch.float32 if DEVICE is not None and DEVICE.type == "mps" else torch.float64
# float64 runs agree to rounding; float32 on MPS to its own rounding over a few steps
TOL = {"rtol": 1e-7, "atol": 1e-9} if DTYPE == torch.float64 else {"rtol": 2e-4, "atol": 1e-5}


def _accelerator(device: torch.device) -> dict:
    if device.type == "cpu":
        return {"accelerator": "cpu", "devices": 1}
    index = device.index if device.index is not None else 0
    return {"accelerator": "cuda" if device.type == "cuda" else "mps", "devices": [index]}


def _trainer(device: torch.device, **kwargs) -> L.Trainer:
    options = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=2,
        **_accelerator(device),
    )
    options.update(kwargs)
    return L.Trainer(**options)


def _on_both(run):
    """``run(device)`` on the CPU, then on the device under test, from the same seed (for the
    heads a fit builds as it starts)."""
    results = []
    for device in (torch.device("cpu"), DEVICE):
        torch.manual_seed(1)
        results.append(run(device))
    return tuple(results)


def _cpu_state(module: nn.Module) -> dict:
    return {
        k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v
        for k, v in module.state_dict().items()
    }


def _assert_states_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if not isinstance(a[key], torch.Tensor):  # a module's extra state: settings
            assert a[key] == b[key], key
        elif a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], **TOL, msg=lambda m, k=key: f"{k}: {m}")
        else:
            assert torch.equal(a[key], b[key]), key


def _logged(trainer: L.Trainer) -> dict:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _assert_logged_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=TOL["rtol"] * 100, abs=TOL["atol"] * 100), key


@contextlib.contextmanager
def _full_float32():
    """CUDA convolutions in full float32 (cuDNN may use TF32 by default), restored after."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


class _StatesOn(L.Callback):
    """Checks, as training ends (Lightning moves the module back to the CPU after the fit), that
    every parameter and buffer is on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.checked = device, False

    def on_train_end(self, trainer, pl_module) -> None:
        for name, tensor in [*pl_module.named_parameters(), *pl_module.named_buffers()]:
            assert tensor.device.type == self.device.type, name
        self.checked = True


# -- knowledge distillation --------------------------------------------------------------------


def _kd_data(n=48, seed=0):
    x, y = make_data(n, seed=seed)
    return x.to(DTYPE), y


def _indexed_loader(x, y, batch_size=16):
    return DataLoader(IndexedDataset(x, y), batch_size=batch_size, shuffle=False)


def test_distillation_module_with_teacher_cache_and_learned_temperature_matches_cpu():
    from lightning_distill import DistillationModule, LearnedTemperature

    x, y = _kd_data()
    torch.manual_seed(0)
    student, teacher = make_cnn(4).to(DTYPE), make_cnn(6).to(DTYPE)
    teacher_before = _cpu_state(teacher)

    def run(device):
        module = DistillationModule(
            copy.deepcopy(student),
            copy.deepcopy(teacher),
            temperature=LearnedTemperature(t_start=3.0),
            cache_teacher=True,
            lr=0.01,
        )
        states = _StatesOn(device)
        trainer = _trainer(device, max_epochs=3, callbacks=[states])
        trainer.fit(module, _indexed_loader(x, y), DataLoader(TensorDataset(x, y), batch_size=16))
        assert states.checked
        return _cpu_state(module.student), _logged(trainer)

    (cpu_state, cpu_logged), (dev_state, dev_logged) = _on_both(run)
    _assert_states_close(cpu_state, dev_state)
    _assert_logged_close(cpu_logged, dev_logged)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())


@pytest.mark.parametrize("name", ["attention", "hint", "ft", "crd", "sskd", "rkd", "pkt"])
def test_feature_methods_match_cpu(name):
    from lightning_distill import DistillationModule, FeatureDistillation

    options = {
        "ft": {"paraphraser_epochs": 2},
        "crd": {"num_samples": 48, "num_negatives": 16, "embed_dim": 8},
        "sskd": {"head_epochs": 2},
    }.get(name)
    layer = "4" if name in ("attention", "hint", "ft") else "6"
    x, y = _kd_data()
    torch.manual_seed(0)
    student, teacher = make_cnn(4).to(DTYPE), make_cnn(6).to(DTYPE)

    def run(device):
        spec = FeatureDistillation(layer, layer, name, 1.0, options=options)
        module = DistillationModule(
            copy.deepcopy(student), copy.deepcopy(teacher), features=[spec], example_input=x[:2]
        )
        trainer = _trainer(device)
        trainer.fit(module, _indexed_loader(x, y))
        return _cpu_state(module), _logged(trainer)

    (cpu_state, cpu_logged), (dev_state, dev_logged) = _on_both(run)
    _assert_states_close(cpu_state, dev_state)
    _assert_logged_close(cpu_logged, dev_logged)


def test_callback_with_a_constraint_and_a_hint_matches_cpu():
    from lightning_distill import FeatureDistillation, KnowledgeDistillation, L1Sparsity

    x, y = _kd_data()
    torch.manual_seed(0)
    net, teacher = make_cnn(4).to(DTYPE), make_cnn(6).to(DTYPE)

    def run(device):
        callback = KnowledgeDistillation(
            copy.deepcopy(teacher),
            constraints=[L1Sparsity(weight=1e-3, modules=["net.0"])],
            features=[FeatureDistillation("net.4", "4", "hint", 0.5)],
            example_input=x[:2],
        )
        module = PlainClassifier(copy.deepcopy(net))
        trainer = _trainer(device, callbacks=[callback])
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
        return _cpu_state(module), _logged(trainer)

    (cpu_state, cpu_logged), (dev_state, dev_logged) = _on_both(run)
    _assert_states_close(cpu_state, dev_state)
    _assert_logged_close(cpu_logged, dev_logged)


def test_soft_tree_student_and_monotonic_constraint_run_on_the_device():
    from lightning_distill import DistillationModule, Monotonic, SoftDecisionTree

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=gen, dtype=DTYPE)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2)).to(DTYPE)
    tree = SoftDecisionTree(in_features=5, num_classes=2, depth=3).to(DTYPE)

    def run(device):
        module = DistillationModule(copy.deepcopy(tree), copy.deepcopy(teacher), temperature=2.0)
        trainer = _trainer(device)
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
        return _cpu_state(module.student), _logged(trainer)

    (cpu_state, cpu_logged), (dev_state, dev_logged) = _on_both(run)
    _assert_states_close(cpu_state, dev_state)
    _assert_logged_close(cpu_logged, dev_logged)
    # the constraint's uniform points come from the device's generator: not comparable to the
    # CPU's, so only its run on the device is checked
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2)).to(DTYPE)
    module = DistillationModule(
        mlp, copy.deepcopy(teacher), constraints=[Monotonic(0, +1, output=1, weight=10.0)]
    )
    trainer = _trainer(DEVICE)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    logged = _logged(trainer)
    assert np.isfinite(list(logged.values())).all()
    assert "train/constraint_monotonic_epoch" in logged or any("constraint" in k for k in logged)


def test_select_temperature_matches_cpu_and_gives_the_device_generator_back():
    from lightning_distill import DistillationModule, select_temperature

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=gen, dtype=DTYPE)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2)).to(DTYPE)
    train = DataLoader(TensorDataset(x, y), batch_size=16)
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16)

    def run(device):
        def make_module(t):
            student = nn.Linear(5, 2).to(DTYPE)
            return DistillationModule(student, copy.deepcopy(teacher), temperature=t, lr=0.05)

        before = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        selection = select_temperature(
            make_module, lambda: _trainer(device), train, val, (1.0, 4.0), seeds=(0, 1)
        )
        if before is not None:
            assert torch.equal(torch.cuda.get_rng_state(device), before)
        return selection.runs

    cpu_runs, dev_runs = _on_both(run)
    pd.testing.assert_frame_equal(cpu_runs, dev_runs, rtol=TOL["rtol"] * 100)


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "bf16-true"])
def test_reduced_precision_fits(precision):
    if DEVICE.type != "cuda":
        pytest.skip("reduced precision is checked on CUDA")
    from lightning_distill import DistillationModule, FeatureDistillation

    x, y = make_data(48)
    for options in ({"cache_teacher": True}, {"features": [FeatureDistillation("4", "4", "pkt")]}):
        torch.manual_seed(0)
        module = DistillationModule(make_cnn(4), make_cnn(6), **options)
        trainer = _trainer(DEVICE, precision=precision)
        trainer.fit(module, _indexed_loader(x, y), DataLoader(TensorDataset(x, y), batch_size=16))
        logged = _logged(trainer)
        assert np.isfinite(list(logged.values())).all(), (options, logged)


# -- network dissection ------------------------------------------------------------------------

NAMES = ["-", "ball", "box", "tree", "red", "blue", "beach", "forest"]
CATEGORIES = ["", "object", "object", "object", "color", "color", "scene", "scene"]


@pytest.mark.parametrize("cache_bytes", [2**29, 0])
def test_network_dissection_equals_cpu_and_keeps_states_on_the_device(cache_bytes):
    from lightning_distill.metrics import NetworkDissection

    activations, labels, image_labels = make_probe(48, units=6)
    batches = [
        (
            torch.from_numpy(activations[i : i + 16]).to(DTYPE),
            torch.from_numpy(labels[i : i + 16]),
            torch.from_numpy(image_labels[i : i + 16]),
        )
        for i in range(0, 48, 16)
    ]

    def run(device):
        metric = NetworkDissection(6, NAMES, CATEGORIES, quantile=0.9, cache_bytes=cache_bytes).to(
            device
        )
        on_device = [tuple(t.to(device) for t in batch) for batch in batches]
        for a, lab, img in on_device:
            metric.update(a, lab, img)
        thresholds = metric.compute_thresholds()
        if thresholds is None:
            for a, *_ in on_device:
                metric.update(a)
            thresholds = metric.compute_thresholds()
            for a, lab, img in on_device:
                metric.update(a, lab, img)
        else:
            metric.replay()
        for name, state in metric.metric_state.items():
            values = state if isinstance(state, list) else [state]
            assert all(v.device.type == device.type for v in values), name
        return thresholds.cpu(), metric.results().units

    (cpu_thresholds, cpu_units), (dev_thresholds, dev_units) = _on_both(run)
    torch.testing.assert_close(cpu_thresholds, dev_thresholds, rtol=0, atol=0)
    assert cpu_units.equals(dev_units), (cpu_units, dev_units)


def test_dissection_monitor_in_a_fit_matches_cpu():
    from lightning_distill.callbacks import DissectionMonitor
    from lightning_distill.datasets import SyntheticConcepts
    from tests.helpers import TinyNet

    concepts = SyntheticConcepts(48, image_size=16, seed=5)

    def run(device):
        monitor = DissectionMonitor(DataLoader(concepts, batch_size=16), "features.4", quantile=0.9)
        trainer = _trainer(device, max_epochs=1, callbacks=[monitor])
        # lr=0: the same network on both sides (its dropout draws from each device's generator)
        trainer.fit(TinyNet(lr=0.0), DataLoader(concepts.classification(), batch_size=16))
        return monitor.last_results.units

    with _full_float32():
        cpu_units, dev_units = _on_both(run)
    # float32 networks: thresholds agree to rounding, IoUs to a pixel or so
    np.testing.assert_allclose(cpu_units["threshold"], dev_units["threshold"], rtol=1e-4)
    np.testing.assert_allclose(cpu_units["iou"], dev_units["iou"], atol=1e-3)


# -- attribution metrics -----------------------------------------------------------------------


def _cells():
    from lightning_distill.datasets import SyntheticCells

    cells = SyntheticCells(12, image_size=32, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 10),
    ).to(DTYPE)
    return cells, model


def test_attributions_and_their_scores_equal_cpu():
    from lightning_distill.attribution import attribute, loss_gradient
    from lightning_distill.functional import (
        attribution_agreement,
        five_band_scores,
        localisation_score,
    )
    from lightning_distill.metrics import (
        AttributionAgreement,
        AttributionLocalisation,
        FiveBandScore,
    )

    cells, model = _cells()
    images, targets = cells.images.to(DTYPE), cells.targets

    def run(device):
        net = copy.deepcopy(model).to(device)
        x, t = images.to(device), targets.to(device)
        heat, masks = cells.heatmaps.to(device), cells.masks.to(device)
        saliency = attribute(net, x, t, "Saliency")
        gradients = attribute(net, x, t, "IntegratedGradients", n_steps=8)
        lossgrad = loss_gradient(net, x, t)
        assert saliency.device.type == device.type
        out = {
            "five_band": five_band_scores(gradients, heat, soft_steps=56),
            "localisation": localisation_score(lossgrad, masks),
            "agreement": attribution_agreement(saliency, gradients),
        }
        metrics = {
            "five_band": FiveBandScore(soft_steps=56),
            "localisation": AttributionLocalisation(),
            "agreement": AttributionAgreement(),
        }
        metrics = {k: m.to(device) for k, m in metrics.items()}
        for half in (slice(0, 6), slice(6, 12)):
            metrics["five_band"].update(gradients[half], heat[half])
            metrics["localisation"].update(lossgrad[half], masks[half])
            metrics["agreement"].update(saliency[half], gradients[half])
        out["metrics"] = {k: m.compute() for k, m in metrics.items()}
        out["best"] = metrics["five_band"].per_image_best()
        out["maps"] = {"saliency": saliency, "ig": gradients, "loss_gradient": lossgrad}
        return out

    def to_cpu(value):
        if isinstance(value, dict):
            return {k: to_cpu(v) for k, v in value.items()}
        return value.detach().cpu()

    cpu, dev = (to_cpu(r) for r in _on_both(run))
    torch.testing.assert_close(dev, cpu, **TOL)


def test_attribution_monitor_in_a_fit_matches_cpu():
    from lightning_distill.callbacks import AttributionMonitor
    from tests.attribution.test_monitor import StudentWithTeacher

    cells, _ = _cells()

    def run(device):
        torch.manual_seed(0)
        monitor = AttributionMonitor(DataLoader(cells, batch_size=6), module="student")
        trainer = _trainer(device, max_epochs=1, callbacks=[monitor])
        trainer.fit(StudentWithTeacher(), DataLoader(cells.classification(), batch_size=6))
        return {k: v for k, v in _logged(trainer).items() if k.startswith("attribution/")}

    with _full_float32():
        cpu_logged, dev_logged = _on_both(run)
    assert cpu_logged
    for key in cpu_logged:  # float32 networks
        assert dev_logged[key] == pytest.approx(cpu_logged[key], abs=1e-3), key


def test_diff_roar_runs_on_the_device():
    from lightning_distill.attribution import diff_roar
    from lightning_distill.datasets import DigitBlocks

    train, test = DigitBlocks("train"), DigitBlocks("test")

    def make():
        return nn.Sequential(nn.Flatten(), nn.Linear(train.images[0].numel(), 10))

    table = diff_roar(
        make,
        train.classification(),
        test.classification(),
        model=make(),
        fractions=(0.5,),
        seeds=1,
        epochs=1,
        trainer_kwargs=_accelerator(DEVICE),
    )
    assert len(table) == 1 and np.isfinite(table["diff_roar"]).all()


# -- adaptive wavelet distillation -------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2])
def test_awd_module_matches_cpu(dim):
    from lightning_distill.awd import AWDModule

    shape = (32,) if dim == 1 else (1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, *shape, generator=gen, dtype=DTYPE)
    torch.manual_seed(0)
    n_in = int(np.prod(shape))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, 2))

    def run(device):
        module = AWDModule(
            copy.deepcopy(teacher).to(DTYPE),
            wavelet="db2" if dim == 1 else "haar",
            levels=2,
            dim=dim,
            mode="zero" if dim == 1 else "periodization",
            init_noise=0.05,
            seed=0,
            target=1,
            sparsity_weight=0.01,
            attribution_weight=0.1,
            lr=1e-2,
        ).to(DTYPE)
        trainer = _trainer(device)
        loader = DataLoader(TensorDataset(x), batch_size=16)
        trainer.fit(module, loader, loader)
        return _cpu_state(module), _logged(trainer)

    (cpu_state, cpu_logged), (dev_state, dev_logged) = _on_both(run)
    _assert_states_close(cpu_state, dev_state)
    _assert_logged_close(cpu_logged, dev_logged)
