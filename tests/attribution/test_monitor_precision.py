"""AttributionMonitor with a teacher that is not part of the module, under true precisions: the
Trainer casts the module, not that teacher; each model reads the probe in its own dtype."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_distill.attribution import attribute
from lightning_distill.callbacks import AttributionMonitor
from lightning_distill.datasets import SyntheticCells
from lightning_distill.metrics import AttributionAgreement, AttributionLocalisation, FiveBandScore
from tests.attribution.test_monitor import cnn
from tests.helpers import PlainClassifier, quiet_trainer, state_copy, states_equal

PROBE_BATCH = 8


def student() -> PlainClassifier:
    """A module without a teacher of its own; lr 0 (and BatchNorm momentum 0): fixed weights."""
    return PlainClassifier(cnn(0), lr=0.0)


@pytest.fixture(scope="module")
def cells():
    return SyntheticCells(24, image_size=32, seed=5)


def by_hand(net, teacher, data: SyntheticCells) -> dict[str, float]:
    """The metrics fed batch by batch: each model's maps of the probe images in its own dtype."""
    five, local, agree = FiveBandScore(), AttributionLocalisation(), AttributionAgreement()
    net.eval()
    dtype = next(net.parameters()).dtype
    for start in range(0, len(data), PROBE_BATCH):
        x = data.images[start : start + PROBE_BATCH]
        y = data.targets[start : start + PROBE_BATCH]
        maps = attribute(net, x.to(dtype), y, "Saliency")
        five.update(maps, data.heatmaps[start : start + PROBE_BATCH])
        local.update(maps, data.masks[start : start + PROBE_BATCH])
        agree.update(attribute(teacher, x, y, "Saliency"), maps)
    values = {name: float(v) for name, v in five.compute().items()}
    values["localisation"] = float(local.compute())
    values.update({name: float(v) for name, v in agree.compute().items()})
    return values


@pytest.mark.parametrize(
    ("precision", "dtype"), [("64-true", torch.float64), ("bf16-true", torch.bfloat16)]
)
def test_a_separate_teacher_is_read_in_its_own_dtype_and_given_back(
    cells, tmp_path, precision, dtype
):
    teacher = cnn(1, width=8)
    teacher.train()
    teacher[3].eval()  # a mix of modes and flags, to be given back as they were
    teacher[0].requires_grad_(False)
    state = state_copy(teacher)
    modes = [m.training for m in teacher.modules()]
    flags = [p.requires_grad for p in teacher.parameters()]
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=PROBE_BATCH), teacher=teacher, save_dir=tmp_path
    )
    module = student()
    trainer = quiet_trainer(callbacks=[monitor], limit_train_batches=1, precision=precision)
    trainer.fit(module, DataLoader(cells.classification(), batch_size=8))

    assert next(module.parameters()).dtype == dtype  # the Trainer cast the module
    expected = by_hand(module.net, teacher, cells)
    assert set(monitor.history[0]) == {"epoch", *expected}
    for name, value in expected.items():
        assert monitor.history[0][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    logged = trainer.callback_metrics
    assert float(logged["attribution/spearman"]) == pytest.approx(expected["spearman"], rel=1e-6)
    assert (tmp_path / "attribution_epoch0.png").exists()
    # the teacher is as it was: float32 tensors bit for bit, modes and flags
    assert states_equal(state_copy(teacher), state)
    assert all(
        t.dtype == torch.float32 for t in teacher.state_dict().values() if t.is_floating_point()
    )
    assert [m.training for m in teacher.modules()] == modes
    assert [p.requires_grad for p in teacher.parameters()] == flags
    assert all(p.grad is None for p in teacher.parameters())


def test_a_separate_teacher_explains_the_students_predictions(cells):
    teacher = cnn(1, width=8)
    monitor = AttributionMonitor(
        DataLoader(cells, batch_size=PROBE_BATCH),
        teacher=teacher,
        metrics=["agreement"],
        target="prediction",
    )
    module = student()
    quiet_trainer(callbacks=[monitor], limit_train_batches=1, precision="64-true").fit(
        module, DataLoader(cells.classification(), batch_size=8)
    )
    agree = AttributionAgreement()
    module.net.eval()
    for start in range(0, len(cells), PROBE_BATCH):
        x = cells.images[start : start + PROBE_BATCH]
        with torch.no_grad():
            predicted = module.net(x.double()).argmax(1)
        agree.update(
            attribute(teacher, x, predicted, "Saliency"),
            attribute(module.net, x.double(), predicted, "Saliency"),
        )
    for name, value in agree.compute().items():
        assert monitor.history[0][name] == pytest.approx(float(value), rel=1e-9), name
