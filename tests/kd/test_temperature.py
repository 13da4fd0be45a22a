"""Learned temperature (gradient reversal, cosine ramp) and the temperature sweep."""

import copy
import itertools
import math
import warnings

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule
from lightning_distill.kd.losses import kd_loss
from lightning_distill.kd.temperature import (
    LearnedTemperature,
    TemperatureSelection,
    _best_temperature,
    gradient_reversal,
    kd_loss_at,
    select_temperature,
)
from tests.helpers import NoisyInput, RecordingLinear, WritesItsInput, quiet_trainer


def test_gradient_reversal_flips_and_scales():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = gradient_reversal(x, 0.3)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([2.0, 5.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.6, -1.5]))


@pytest.mark.parametrize("temperature", [0.5, 4.0])
def test_kd_loss_at_equals_kd_loss(temperature):
    torch.manual_seed(0)
    s, t = torch.randn(7, 5), torch.randn(7, 5) * 3
    torch.testing.assert_close(
        kd_loss_at(s, t, torch.tensor(temperature)), kd_loss(s, t, temperature)
    )


def test_kd_loss_at_is_exact_at_the_temperatures_a_learned_one_reaches():
    # above T = 10 the T^2 factor magnifies float32's rounding: kd_loss widens to float64 there,
    # and so must the loss of the learned temperature, whose range reaches 21 (it starts at 15.6)
    gen = torch.Generator().manual_seed(7)
    s = torch.randn(64, 100, generator=gen, dtype=torch.float64)
    t = s + torch.randn(64, 100, generator=gen, dtype=torch.float64)
    for temperature in (15.62, 20.5):
        exact = kd_loss(s, t, temperature)
        for bound in (None, 21.0):
            value = kd_loss_at(
                s.float(), t.float(), torch.tensor(temperature), max_temperature=bound
            )
            assert value.dtype == torch.float32
            assert float(value) == pytest.approx(float(exact), rel=1e-7)
    # the temperature's gradient, with the student close to the teacher, where it is tiny
    near = s + 1e-3 * torch.randn(64, 100, generator=gen, dtype=torch.float64)
    temperatures = [
        torch.tensor(15.62, dtype=dtype, requires_grad=True)
        for dtype in (torch.float64, torch.float32)
    ]
    kd_loss_at(near, s, temperatures[0]).backward()
    kd_loss_at(near.float(), s.float(), temperatures[1], max_temperature=21.0).backward()
    assert float(temperatures[1].grad) == pytest.approx(float(temperatures[0].grad), rel=1e-3)


def test_kd_loss_at_masked_teacher_class_is_finite_with_finite_gradients():
    torch.manual_seed(0)
    s = torch.randn(6, 4, requires_grad=True)
    t = torch.randn(6, 4)
    t[:, 2] = float("-inf")  # a masked class
    t[0, 0] = float("-inf")
    temperature = LearnedTemperature(initial=3.0, ramp_epochs=0)
    value = kd_loss_at(s, t, temperature(1.0))
    torch.testing.assert_close(value, kd_loss(s, t, float(temperature(0.0))))
    value.backward()
    assert torch.isfinite(s.grad).all() and torch.isfinite(temperature.theta.grad).all()


def test_kd_loss_at_refuses_a_class_only_the_student_masks():
    s = torch.tensor([[0.0, 1.0, float("-inf")]])
    t = torch.tensor([[0.0, 1.0, 0.5]])
    with pytest.raises(ValueError, match=r"-inf \(a masked class\) where the teacher gives"):
        kd_loss_at(s, t, torch.tensor(2.0))


def test_learned_temperature_starts_at_a_temperature_the_loss_can_take():
    with pytest.raises(ValueError, match=r"t_start must be a finite number >= 1e-06"):
        LearnedTemperature(t_start=1e-40)


def test_kd_loss_at_keeps_float64_and_refuses_nan():
    s, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    value = kd_loss_at(s, t, torch.tensor(2.0))
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(float(kd_loss(s, t, 2.0)), rel=1e-12)
    t[1, 1] = float("nan")
    with pytest.raises(ValueError, match="teacher_logits"):
        kd_loss_at(s, t, torch.tensor(2.0))


def test_kd_loss_at_refuses_an_empty_batch_and_a_temperature_it_cannot_take():
    # kd_loss refuses both; kd_loss_at returned NaN for an empty batch, 0 at T = 0, a loss of
    # the reversed softmaxes at T < 0 and NaN at T = NaN
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="student_logits must hold at least one sample"):
        kd_loss_at(s[:0], t[:0], torch.tensor(2.0))
    for bad in (0.0, -2.0, float("nan"), float("inf"), 2e6):
        for max_temperature in (None, 21.0):  # read at once, or with the step's checks
            with pytest.raises(ValueError, match=r"temperature must be a finite number >= 1e-06"):
                kd_loss_at(s, t, torch.tensor(bad), max_temperature=max_temperature)
        with pytest.raises(ValueError, match=r"temperature must be a finite number >= 1e-06"):
            kd_loss_at(s, t, bad)
    with pytest.raises(TypeError, match="temperature must be a number or a one-element"):
        kd_loss_at(s, t, torch.tensor([1.0, 2.0]))
    # the ends of the range are taken, the lower one as float32 rounds it (a LearnedTemperature
    # with t_start=1e-6 reaches it), and agree with kd_loss
    for edge in (1e-6, 1e6):
        value = kd_loss_at(s, t, torch.tensor(edge, dtype=torch.float32))
        assert float(value) == pytest.approx(float(kd_loss(s, t, edge)), rel=1e-5)
    assert float(kd_loss_at(s, t, torch.tensor(2))) == pytest.approx(float(kd_loss(s, t, 2.0)))


def test_kd_loss_at_of_a_one_element_temperature_is_a_scalar_as_kd_loss():
    # a temperature of shape [1] or [1, 1] (one value, which kd_loss_at takes) gave a loss of
    # that shape, which broadcast a scalar loss it was added to
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    for shape in ((), (1,), (1, 1)):
        temperature = torch.full(shape, 3.0, requires_grad=True)
        value = kd_loss_at(s, t, temperature)
        assert value.shape == kd_loss(s, t, 3.0).shape == ()
        assert float(value) == pytest.approx(float(kd_loss(s, t, 3.0)), rel=1e-6)
        value.backward()
        assert temperature.grad.shape == shape


def test_cosine_ramp_of_the_reversal_strength():
    temperature = LearnedTemperature(ramp_epochs=4, max_reversal=2.0)
    expected = [2.0 * 0.5 * (1 - math.cos(math.pi * e / 4)) for e in range(5)]
    assert [temperature.reversal_strength(e) for e in range(5)] == pytest.approx(expected)
    assert temperature.reversal_strength(0) == 0.0
    assert temperature.reversal_strength(9) == pytest.approx(2.0)
    assert LearnedTemperature(ramp_epochs=0).reversal_strength(0) == 1.0


def test_temperature_ascends_the_kd_loss_and_stays_in_range():
    torch.manual_seed(1)
    student, teacher = nn.Linear(4, 3), nn.Linear(4, 3)
    temperature = LearnedTemperature(t_start=2.0, t_range=3.0, initial=3.0, ramp_epochs=0)
    x = torch.randn(32, 4)
    with torch.no_grad():
        teacher_logits = teacher(x) * 4
    # the reversed gradient is minus the plain gradient of the loss in theta
    theta = temperature.theta.detach().clone().requires_grad_(True)
    plain = kd_loss_at(student(x), teacher_logits, 2.0 + 3.0 * torch.sigmoid(theta))
    (direct,) = torch.autograd.grad(plain, theta)
    kd_loss_at(student(x), teacher_logits, temperature(1.0)).backward()
    torch.testing.assert_close(temperature.theta.grad, -direct)
    # adversarial training with a large step: the temperature never leaves (2, 5)
    optimizer = torch.optim.SGD([*student.parameters(), *temperature.parameters()], lr=50.0)
    seen = []
    for _ in range(60):
        optimizer.zero_grad()
        t = temperature(1.0)
        seen.append(float(t.detach()))
        kd_loss_at(student(x), teacher_logits, t).backward()
        optimizer.step()
    assert all(2.0 <= value <= 5.0 for value in seen)
    assert max(seen) - min(seen) > 0.5  # it did move


def _sweep_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def test_select_temperature_refuses_column_targets_it_would_broadcast():
    # [N, 1] targets compared with [N] predictions broadcast to [N, N]: accuracy came out 9.3
    x, y = _sweep_data()
    teacher = nn.Linear(5, 2)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:, None]), batch_size=32)
    with pytest.raises(ValueError, match=r"val batches: targets must have shape \[batch\]"):
        select_temperature(
            lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t),
            lambda: quiet_trainer(max_epochs=1),
            train,
            val,
            (1.0,),
            seeds=(0,),
        )


def test_select_temperature_is_reproducible_and_summarises_runs():
    x, y = _sweep_data()
    torch.manual_seed(3)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    state = {k: v.clone() for k, v in teacher.state_dict().items()}

    def make_module(temperature):
        return DistillationModule(nn.Linear(5, 2), teacher, temperature=temperature, lr=0.05)

    def run():
        return select_temperature(
            make_module, lambda: quiet_trainer(max_epochs=2), train, val, (1, 4.0), seeds=(0, 1)
        )

    first, second = run(), run()
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.runs, second.runs)
    assert list(first.table.index) == [1.0, 4.0]
    assert len(first.runs) == 4
    for temperature, rows in first.runs.groupby("temperature"):
        assert first.table.loc[temperature, "accuracy"] == pytest.approx(rows["accuracy"].mean())
        assert first.table.loc[temperature, "kl_std"] == pytest.approx(rows["kl"].std(ddof=1))
    # the best mean agreement; a tie (here 0.671875 at 1 and 4) goes to the lower mean KL
    table = first.table
    tied = table[np.isclose(table["agreement"], table["agreement"].max(), rtol=1e-12, atol=0)]
    assert first.best_temperature == tied["kl"].idxmin()
    assert (
        (
            (first.runs[["accuracy", "agreement"]] >= 0)
            & (first.runs[["accuracy", "agreement"]] <= 1)
        )
        .all()
        .all()
    )
    assert (first.runs["kl"] >= 0).all()
    assert isinstance(first.plot(), Figure)
    # the teacher is handed back untouched
    assert all(torch.equal(v, state[k]) for k, v in teacher.state_dict().items())
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("criterion", ["agreement", "accuracy", "kl"])
def test_the_best_temperature_of_a_tie_does_not_depend_on_the_listed_order(criterion):
    # means of fractions of a small validation set tie often: the tie goes to the better
    # second criterion (lowest KL; highest agreement for "kl"), then to the lowest temperature
    rows = {
        1.0: {"accuracy": 0.75, "agreement": 0.71875, "kl": 0.0118},
        2.0: {"accuracy": 0.75, "agreement": 0.71875, "kl": 0.0115},
        4.0: {"accuracy": 0.5, "agreement": 0.5, "kl": 0.0115},
        8.0: {"accuracy": 0.75, "agreement": 0.71875, "kl": 0.0115},
    }
    expected = {"agreement": 2.0, "accuracy": 2.0, "kl": 2.0}[criterion]
    for order in itertools.permutations(rows):
        table = pd.DataFrame.from_dict({t: rows[t] for t in order}, orient="index")
        table.index.name = "temperature"
        assert _best_temperature(table, criterion) == expected, order
    # rounding in the means (sums of the same fractions in another order) is a tie too
    table = pd.DataFrame({"accuracy": [0.6, 0.6], "agreement": [0.1 + 0.2 + 0.3, 0.3 + 0.2 + 0.1],
                          "kl": [0.2, 0.1]}, index=[1.0, 4.0])  # fmt: skip
    assert table.agreement.iloc[0] != table.agreement.iloc[1]
    assert _best_temperature(table, "agreement") == 4.0


@pytest.mark.parametrize("where", ["loader", "sampler"])
def test_a_loader_with_its_own_generator_gives_every_run_the_same_order(where):
    # the generator advances with every epoch: unrewound, a run's data order (and scores) would
    # depend on the runs before it, and two identical calls would differ
    x, y = _sweep_data()
    torch.manual_seed(3)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    data = TensorDataset(x[:64], y[:64])
    generator = torch.Generator().manual_seed(0)
    if where == "loader":
        train = DataLoader(data, batch_size=8, shuffle=True, generator=generator)
    else:
        sampler = torch.utils.data.RandomSampler(data, generator=generator)
        train = DataLoader(data, batch_size=8, sampler=sampler)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    start = generator.get_state()

    def sweep(temperatures):
        return select_temperature(
            lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t, lr=0.05),
            lambda: quiet_trainer(max_epochs=2),
            train,
            val,
            temperatures,
            seeds=(0,),
        ).runs.set_index("temperature")

    both, again, alone = sweep((1, 4)), sweep((1, 4)), sweep((4,))
    pd.testing.assert_frame_equal(both, again)
    pd.testing.assert_series_equal(both.loc[4.0], alone.loc[4.0])
    assert torch.equal(generator.get_state(), start)  # given back as it was


class _DictBatches(torch.utils.data.Dataset):
    def __init__(self, x, y, keys=("x", "y")):
        self.x, self.y, self.keys = x, y, keys

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i]}


def test_select_temperature_reads_dict_batches_and_leaves_global_seeds_alone(monkeypatch):
    import os
    import random

    import numpy as np

    x, y = _sweep_data()
    teacher = nn.Linear(5, 2)
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(7)  # noqa: NPY002 (the global state select_temperature must keep)
    expected = [float(torch.rand(1)), random.random(), np.random.rand()]  # noqa: NPY002
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(7)  # noqa: NPY002 (the global state select_temperature must keep)
    selection = select_temperature(
        lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t),
        lambda: quiet_trainer(max_epochs=1),
        DataLoader(_DictBatches(x[:64], y[:64]), batch_size=32, shuffle=True),
        DataLoader(_DictBatches(x[64:], y[64:]), batch_size=32),
        (1, 2),
        seeds=(0,),
    )
    assert len(selection.runs) == 2
    found = [float(torch.rand(1)), random.random(), np.random.rand()]  # noqa: NPY002
    assert found == expected
    assert "PL_GLOBAL_SEED" not in os.environ


class _ReadsKeyA(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 2)

    def forward(self, inputs):
        return self.linear(inputs["a"])


class _NestedBatches(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": {"a": self.x[i]}, "y": self.y[i]}


def test_scoring_casts_the_tensors_inside_dict_inputs_as_the_fit_did():
    # a fit with precision="64-true" casts the module and every floating tensor of a batch,
    # those inside dict inputs too; scoring cast only tensor inputs, and the float32 tensors
    # of a dict reached the float64 student: torch's dtype error after every run had trained
    x, y = _sweep_data()
    torch.manual_seed(0)
    teacher = _ReadsKeyA()
    built = []

    def make_module(temperature):
        built.append(DistillationModule(_ReadsKeyA(), teacher, temperature=temperature))
        return built[-1]

    val_x, val_y = x[64:], y[64:]
    selection = select_temperature(
        make_module,
        lambda: quiet_trainer(max_epochs=1, precision="64-true"),
        DataLoader(_NestedBatches(x[:64], y[:64]), batch_size=16),
        DataLoader(_NestedBatches(val_x, val_y), batch_size=10),
        (2,),
        seeds=(0,),
    )
    # the scores recomputed from the trained student and the teacher, in float64
    (module,) = built
    with torch.no_grad():
        student = module.student.eval()({"a": val_x.double()})
        # the sweep gave the teacher back in float32: its float64 twin, as the run cast it
        reference = copy.deepcopy(teacher).double().eval()({"a": val_x.double()})
    row = selection.runs.iloc[0]
    assert row["accuracy"] == pytest.approx(float((student.argmax(1) == val_y).double().mean()))
    agreement = (student.argmax(1) == reference.argmax(1)).double().mean()
    assert row["agreement"] == pytest.approx(float(agreement))
    # KL(teacher || student) at T = 1, the mean over rows of the sum over classes
    kl = F.kl_div(
        student.log_softmax(1), reference.log_softmax(1), reduction="batchmean", log_target=True
    )
    assert row["kl"] == pytest.approx(float(kl), rel=1e-9)


def test_select_temperature_refuses_a_reused_student_and_unreadable_loaders():
    x, y = _sweep_data()
    teacher, student = nn.Linear(5, 2), nn.Linear(5, 2)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    fits = []

    def trainer():
        trainer = quiet_trainer(max_epochs=1)
        fits.append(trainer)
        return trainer

    with pytest.raises(ValueError, match="make_module must be a callable building a new student"):
        select_temperature(
            lambda t: DistillationModule(student, teacher, temperature=t),
            trainer,
            train,
            val,
            (1, 2),
            seeds=(0,),
        )
    assert len(fits) == 1  # refused before the second run trained
    odd = DataLoader(_DictBatches(x[64:], y[64:], keys=("features", "label")), batch_size=32)
    fits.clear()
    with pytest.raises(
        ValueError, match=r"val must yield batches .*got a dict with keys \['features', 'label'\]"
    ):
        select_temperature(
            lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t),
            trainer,
            train,
            odd,
            (1,),
            seeds=(0,),
        )
    assert not fits  # before any training
    with pytest.raises(TypeError, match="train must be a DataLoader"):
        select_temperature(lambda t: None, trainer, None, val, (1,), seeds=(0,))


def test_select_temperature_refuses_a_module_it_cannot_fit_or_score_before_training():
    # a plain nn.Module reached Trainer.fit, whose TypeError named no argument; a module
    # without a teacher (DistillationModule(teacher=None, alpha=0)) was refused only once its
    # first run had trained
    x, y = _sweep_data()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    fits = []

    def trainer():
        fits.append(quiet_trainer(max_epochs=1))
        return fits[-1]

    with pytest.raises(TypeError, match=r"make_module must be a callable returning a Lightning"):
        select_temperature(lambda t: nn.Linear(5, 2), trainer, train, val, (1,), seeds=(0,))
    with pytest.raises(ValueError, match=r"module with a \.teacher.*; got a DistillationModule"):
        select_temperature(
            lambda t: DistillationModule(nn.Linear(5, 2), None, alpha=0.0, temperature=t),
            trainer,
            train,
            val,
            (1,),
            seeds=(0,),
        )
    assert not fits  # neither reached a Trainer


def test_select_temperature_refuses_what_would_leave_later_runs_untrained():
    x, y = _sweep_data()
    teacher = nn.Linear(5, 2)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)

    def make_module(t):
        return DistillationModule(nn.Linear(5, 2), teacher, temperature=t)

    # a generator is read once: by the check, then by the first run
    one_shot = (batch for batch in train)
    with pytest.raises(TypeError, match=r"train must be data that can be read again"):
        select_temperature(
            make_module, lambda: quiet_trainer(max_epochs=1), one_shot, val, (1, 2), (0,)
        )
    with pytest.raises(TypeError, match=r"val must be data that can be read again"):
        select_temperature(
            make_module, lambda: quiet_trainer(max_epochs=1), train, iter(val), (1, 2), (0,)
        )
    # one Trainer for every run: fitted once, it does not train again
    shared = quiet_trainer(max_epochs=1)
    with pytest.raises(ValueError, match=r"make_trainer must be a callable building a new Trainer"):
        select_temperature(make_module, lambda: shared, train, val, (1, 2), (0,))
    with pytest.raises(ValueError, match=r"run at temperature 1, seed 0 made no optimizer step"):
        select_temperature(make_module, lambda: quiet_trainer(max_epochs=0), train, val, (1,), (0,))
    # a make_trainer that forgot its return: named, not a weak-reference complaint
    for returned in (None, {"max_epochs": 1}):
        with pytest.raises(
            TypeError, match=r"make_trainer must be a callable returning a lightning.Trainer; got"
        ):
            select_temperature(make_module, lambda r=returned: r, train, val, (1,), (0,))


class _FixedKD(L.LightningModule):
    """A student distilled at a temperature of its own, whatever the sweep asks for."""

    def __init__(self, teacher):
        super().__init__()
        self.student, self.teacher = nn.Linear(5, 2), teacher

    def forward(self, x):
        return self.student(x)

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            teacher_logits = self.teacher(batch[0])
        return kd_loss(self.student(batch[0]), teacher_logits, 4.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.student.parameters(), lr=0.1)


def test_select_temperature_refuses_a_module_that_ignores_its_temperature():
    x, y = _sweep_data()
    teacher = nn.Linear(5, 2)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)

    def sweep(make_module, temperatures=(1, 4)):
        return select_temperature(
            make_module, lambda: quiet_trainer(max_epochs=1), train, val, temperatures, (0,)
        )

    # a factory that keeps its own T trained the same student at every T: equal rows
    with pytest.raises(
        ValueError,
        match=r"make_module must be .* at the temperature it is given \(1\); got 'a module with temperature 4'",
    ):
        sweep(lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=4.0))
    with pytest.raises(ValueError, match=r"got 'a module with a LearnedTemperature"):
        sweep(
            lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=LearnedTemperature())
        )
    # a module that does not say its temperature: the equal rows are warned about
    with pytest.warns(UserWarning, match="every temperature gave the same student"):
        selection = sweep(lambda t: _FixedKD(teacher))
    assert selection.table["kl"].nunique() == 1
    with warnings.catch_warnings(record=True) as caught:  # temperatures that are used
        warnings.simplefilter("always")
        sweep(lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t))
    assert not [w for w in caught if "same student" in str(w.message)]


@pytest.mark.parametrize(
    "temperatures, error",
    [
        ((1, 0), ValueError),
        ((2, -1.0), ValueError),
        ((), ValueError),
        ((1, float("nan")), ValueError),
        ((4, 1e-9), ValueError),  # below the module's bound: refused before the T = 4 runs
        ((4, 1e7), ValueError),  # above it (DistillationModule's 1e6): the same
        ((1, float("inf")), ValueError),
        ("4", TypeError),
        ((1, "2"), TypeError),
        ((2, 2.0), ValueError),
        ((2.0, 2.0000001), ValueError),  # the table would show two rows labelled 2.0
    ],
)
def test_select_temperature_bad_temperatures(temperatures, error):
    with pytest.raises(error, match=r"temperatures must be .*; got"):
        select_temperature(lambda t: None, lambda: None, [], [], temperatures)


def _module_takes(temperature) -> bool:
    """Whether DistillationModule takes ``temperature`` as its fixed temperature."""
    try:
        DistillationModule(nn.Linear(2, 2), nn.Linear(2, 2), temperature=temperature)
    except ValueError:
        return False
    return True


def test_select_temperature_takes_the_temperatures_the_module_takes():
    # a temperature the module refuses was refused only when its first run was built, after
    # the runs of the temperatures before it had trained
    from lightning_distill.kd.temperature import _check_temperatures

    module_takes = _module_takes

    def sweep_takes(temperature):
        try:
            _check_temperatures((temperature,))
        except ValueError:
            return False
        return True

    for temperature in (1e-6, 1e6, 4.0):
        for nearby in (temperature, np.nextafter(temperature, 0), np.nextafter(temperature, 1e9)):
            assert sweep_takes(float(nearby)) == module_takes(float(nearby)), nearby


def test_select_temperature_refuses_repeated_seeds():
    # the same seeded run three times: a spread of 0 that was never measured
    with pytest.raises(ValueError, match=r"seeds must be distinct integers.*; got \(0, 0, 0\)"):
        select_temperature(lambda t: None, lambda: None, [], [], (1, 2), seeds=(0, 0, 0))


def test_select_temperature_refuses_no_seeds_as_a_value_as_it_refuses_no_temperatures():
    # a sequence is the right type: an empty one is a ValueError, as an empty temperatures is
    for empty in ((), [], np.array([], dtype=int)):
        with pytest.raises(ValueError, match=r"seeds must be a non-empty sequence .*; got"):
            select_temperature(lambda t: None, lambda: None, [], [], (1, 2), seeds=empty)
    with pytest.raises(TypeError, match=r"seeds must be a non-empty sequence .*; got 3"):
        select_temperature(lambda t: None, lambda: None, [], [], (1, 2), seeds=3)


def test_select_temperature_refuses_seeds_numpy_cannot_take_before_any_run():
    # seed_everything refuses them when the run starts, with a message that names no argument;
    # the largest numpy takes (and numpy integers) pass the check
    calls = []

    def make_module(temperature):
        calls.append(temperature)
        raise AssertionError("no run may start")

    for bad in ((0, 2**32), (np.uint64(2**32 + 1),)):
        with pytest.raises(ValueError, match=r"seeds must be an integer >= 0 and <= 4294967295"):
            select_temperature(make_module, lambda: None, [], [], (1, 2), seeds=bad)
    assert calls == []
    from lightning_distill._validation import check_integer

    assert check_integer("seeds", np.uint32(2**32 - 1), minimum=0, maximum=2**32 - 1) == 2**32 - 1


def test_select_temperature_reads_numpy_and_torch_sequences():
    from lightning_distill.kd.temperature import _as_sequence, _check_temperatures

    assert _check_temperatures(np.array([1.0, 2.0])) == [1.0, 2.0]
    assert _check_temperatures(torch.tensor([4, 8])) == [4.0, 8.0]
    assert _check_temperatures((np.float32(1.5), np.int64(3))) == [1.5, 3.0]
    # the items of a tensor, as seeds take them (a 0-d tensor had been refused as no number)
    assert _check_temperatures(list(torch.tensor([2.0, 8.0]))) == [2.0, 8.0]
    with pytest.raises(TypeError, match="temperatures must be"):
        _check_temperatures([torch.tensor([2.0, 8.0])])
    with pytest.raises(TypeError, match="temperatures must be"):
        _check_temperatures([torch.tensor(True)])
    assert _as_sequence(np.arange(3)) == [0, 1, 2]
    with pytest.raises(TypeError, match="temperatures must be"):
        _check_temperatures(np.ones((2, 2)))
    with pytest.raises(TypeError, match="temperatures must be"):
        _check_temperatures((np.bool_(True), 2.0))


def test_a_negative_reversal_is_refused():
    # it would descend the KD loss: the temperature would no longer be adversarial
    temperature = LearnedTemperature()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="reversal must be a finite number >= 0"):
            temperature(reversal=bad)
    assert torch.isfinite(temperature(reversal=0.0))


def test_a_learned_temperature_reaches_only_temperatures_a_fixed_one_may_take():
    # its upper end had no bound: t_range=1e7 trained at temperatures a fixed one is refused
    # (T^2 * KL loses float64's precision there), and t_start=t_range=1e308 gave T = inf
    fixed_takes = _module_takes
    for t_start, t_range in ((1.0, 1e7), (1e308, 1e308), (1.0, 1e6 - 1.0), (2.0, 1e6 - 1.0)):
        upper = t_start + t_range
        if fixed_takes(upper):
            assert LearnedTemperature(t_start, t_range).value < upper
        else:
            with pytest.raises(ValueError, match=r"t_start \+ t_range must be <= 1e\+06"):
                LearnedTemperature(t_start, t_range)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_a_learned_temperature_stays_strictly_inside_its_range_at_extreme_theta(dtype):
    # past |theta| ~ 17 the float32 sigmoid rounds to 0 or 1 and T had reached the ends
    # exactly (past ~37 in float64); a bfloat16 theta rounded T to steps of 0.125
    t_start, t_range = 1.0, 20.0
    temperature = LearnedTemperature(t_start, t_range, ramp_epochs=0).to(dtype)
    for theta in (-1e4, -200.0, -40.0, -20.0, -17.0, 17.0, 18.0, 40.0, 200.0, 1e4):
        with torch.no_grad():
            temperature.theta.fill_(theta)
        value = temperature(1.0)
        assert value.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
        assert t_start < float(value) < t_start + t_range
        assert t_start < temperature.value < t_start + t_range
    # where the formula is not held (its sigmoid well inside (0, 1)), T is the formula
    with torch.no_grad():
        temperature.theta.fill_(0.5)
    expected = t_start + t_range * torch.sigmoid(torch.tensor(0.5, dtype=value.dtype))
    assert float(temperature(1.0)) == float(expected)
    # a held value keeps the formula's gradient: theta can come back from the end
    with torch.no_grad():
        temperature.theta.fill_(-20.0)
    temperature.theta.grad = None
    temperature(1.0).backward()
    s = torch.sigmoid(torch.tensor(-20.0, dtype=torch.float64))
    expected_grad = -t_range * float(s * (1 - s))  # reversed, at full strength
    assert float(temperature.theta.grad) == pytest.approx(expected_grad, rel=1e-2)
    # a range with no float32 value strictly inside is refused
    with pytest.raises(ValueError, match="t_range must leave a float32 value strictly between"):
        LearnedTemperature(4.0, 1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_a_learned_temperature_makes_no_tensor_of_host_numbers_on_every_step(dtype, monkeypatch):
    # the ends held inside the range were made as tensors on theta's device at every call: on
    # an accelerator, two copies from the host, each waiting for the device's queued work, at
    # every training step. They are numbers now, and the values are those of the formula.
    temperature = LearnedTemperature(1.0, 20.0, ramp_epochs=0).to(dtype)
    made = []
    for name in ("tensor", "as_tensor", "full", "full_like", "scalar_tensor"):
        original = getattr(torch, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            made.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    values = {}
    for theta in (-40.0, 0.5, 40.0):
        with torch.no_grad():
            temperature.theta.fill_(theta)
        values[theta] = temperature(1.0)
    monkeypatch.undo()
    assert made == []
    exact = torch.float64 if dtype == torch.float64 else torch.float32
    low, high = torch.tensor(1.0, dtype=exact), torch.tensor(21.0, dtype=exact)
    assert values[-40.0].item() == torch.nextafter(low, high).item()
    assert values[40.0].item() == torch.nextafter(high, low).item()
    theta = torch.tensor(0.5, dtype=dtype).to(exact)
    assert values[0.5].item() == (1.0 + 20.0 * torch.sigmoid(theta)).item()


def test_learned_temperature_bad_arguments():
    with pytest.raises(ValueError, match="t_start must be"):
        LearnedTemperature(t_start=0.0)
    with pytest.raises(ValueError, match="t_range must be"):
        LearnedTemperature(t_range=-1.0)
    with pytest.raises(
        ValueError, match=r"initial must be a finite number > 1.0 and < 21.0; got 30"
    ):
        LearnedTemperature(initial=30)
    with pytest.raises(ValueError, match="criterion must be one of"):
        select_temperature(lambda t: None, lambda: None, [], [], (1,), criterion="loss")


def test_the_plot_legend_lies_outside_the_data_area():
    # with two y axes, an inside legend placed "best" sees one axis only and hides error bars
    table = pd.DataFrame(
        {
            "accuracy": [0.93, 0.88],
            "accuracy_std": [0.01, 0.06],
            "agreement": [0.94, 0.89],
            "agreement_std": [0.01, 0.06],
            "kl": [0.18, 0.26],
            "kl_std": [0.02, 0.14],
            "runs": [2, 2],
        },
        index=pd.Index([1.0, 8.0], name="temperature"),
    )
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    selection = TemperatureSelection(table, table, best_temperature=1.0, criterion="agreement")
    figure = selection.plot()
    FigureCanvasAgg(figure).draw()  # a canvas that lays the figure out
    ax = figure.axes[0]
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 3
    assert 0 <= legend.get_window_extent().y0  # inside the figure
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0  # below the data
    # on a caller's figure without a layout engine it stays inside the figure
    bare = Figure(figsize=(5.5, 3.5))
    FigureCanvasAgg(bare)
    selection.plot(ax=bare.add_subplot())
    bare.canvas.draw()
    assert 0 <= bare.axes[0].get_legend().get_window_extent().y0


def test_scoring_refuses_a_student_that_writes_its_inputs_and_copies_inference_tensors():
    """The teacher reads the validation batch after the student (as in training)."""
    from lightning_distill.kd.temperature import _validation_scores

    class Pair(nn.Module):
        def __init__(self, teacher):
            super().__init__()
            self.student = nn.Sequential(WritesItsInput(), nn.Linear(4, 3))
            self.teacher = teacher

        def forward(self, x):
            return self.student(x)

    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    with torch.no_grad(), pytest.raises(ValueError, match="student modified its inputs in place"):
        _validation_scores(Pair(RecordingLinear()), [(x.clone(), y)])
    teacher = RecordingLinear()
    with torch.inference_mode():
        made = x.clone()
        _validation_scores(Pair(teacher), [(made, y)])
    assert torch.equal(teacher.seen[-1], x)  # the teacher read the batch as it was


def test_select_temperature_leaves_the_val_loaders_own_generator_where_it_was():
    x, y = _sweep_data()
    teacher = nn.Linear(5, 2)
    train = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
    g = torch.Generator().manual_seed(3)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32, generator=g)
    before = g.get_state()
    select_temperature(
        lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t),
        lambda: quiet_trainer(max_epochs=1),
        train,
        val,
        (1,),
        (0,),
    )
    assert torch.equal(g.get_state(), before)


def _sweep_under(precision, teacher, x, y):
    """A two-temperature sweep of one seed with ``teacher`` under a Trainer ``precision``."""
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return select_temperature(
        lambda t: DistillationModule(nn.Linear(5, 2), teacher, temperature=t),
        lambda: quiet_trainer(max_epochs=1, precision=precision),
        train,
        val,
        (1.0, 2.0),
        seeds=(0,),
    )


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_a_sweep_under_a_casting_precision_gives_the_teacher_back_uncast(precision):
    # the Trainer casts the module, the teacher inside it, for each run: the sweep gives the
    # caller's teacher back its own float32 tensors (bf16 would have rounded its weights)
    x, y = _sweep_data()
    torch.manual_seed(4)
    teacher = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    teacher.eval()
    params = {name: (p, p.detach().clone()) for name, p in teacher.named_parameters()}
    buffers = {name: b.clone() for name, b in teacher.named_buffers()}
    result = _sweep_under(precision, teacher, x, y)
    assert len(result.runs) == 2
    for name, parameter in teacher.named_parameters():
        same, before = params[name]
        assert parameter is same and parameter.dtype == torch.float32
        assert torch.equal(parameter, before)
    for name, buffer in teacher.named_buffers():
        assert buffer.dtype == buffers[name].dtype and torch.equal(buffer, buffers[name])
    assert teacher(x[:4]).dtype == torch.float32


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_a_sweep_under_a_casting_precision_gives_the_teachers_gradients_back_uncast(precision):
    # gradients the user's own backward pass left in the teacher are kept by every run (the
    # module's zero_grad leaves them), and cast with it by the Trainer's precision: the sweep
    # gives back the same gradient tensors with their own float32 values, not cast (bf16 would
    # have rounded them, and a float32 parameter held a gradient of another dtype)
    x, y = _sweep_data()
    torch.manual_seed(4)
    teacher = nn.Linear(5, 2)
    teacher(x[:8]).square().sum().backward()
    grads = {name: (p.grad, p.grad.clone()) for name, p in teacher.named_parameters()}
    _sweep_under(precision, teacher, x, y)
    for name, parameter in teacher.named_parameters():
        same, before = grads[name]
        assert parameter.grad is same and parameter.grad.dtype == torch.float32
        assert torch.equal(parameter.grad, before)


def test_a_frozen_feature_extractor_shared_by_every_run_is_taken_until_a_run_changes_it():
    # a pretrained, frozen feature extractor built once under a new head in every run: no run
    # trains it, so the runs are independent; it had been refused as a student trained before
    x, y = _sweep_data()
    torch.manual_seed(3)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    backbone = nn.Sequential(nn.Linear(5, 8), nn.Tanh()).requires_grad_(False)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)

    def sweep(make_extractor, make_trainer=lambda: quiet_trainer(max_epochs=2)):
        return select_temperature(
            lambda t: DistillationModule(
                nn.Sequential(make_extractor(), nn.Linear(8, 2)), teacher, temperature=t, lr=0.05
            ),
            make_trainer,
            train,
            val,
            (1, 4),
            seeds=(0, 1),
        )

    shared = sweep(lambda: backbone)
    # the reference: a copy of the extractor for every run
    copied = sweep(lambda: copy.deepcopy(backbone))
    pd.testing.assert_frame_equal(shared.runs, copied.runs)
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())
    # a shared part a run changes is refused before the next run trains: running statistics
    # of a batch normalisation in training mode, or weights a callback unfroze
    norm = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8)).requires_grad_(False)
    fits = []

    def counted():
        fits.append(quiet_trainer(max_epochs=1))
        return fits[-1]

    with pytest.raises(ValueError, match="changed by an earlier run"):
        sweep(lambda: norm, counted)
    assert len(fits) == 1

    class Unfreeze(L.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.optimizers[0].add_param_group({"params": list(backbone.parameters())})
            backbone.requires_grad_(True)

    def unfreezing():
        fits.append(quiet_trainer(max_epochs=1, callbacks=[Unfreeze()]))
        return fits[-1]

    fits.clear()
    with pytest.raises(ValueError, match="changed by an earlier run"):
        sweep(lambda: backbone, unfreezing)
    assert len(fits) == 1
    assert not torch.equal(backbone[0].weight, before["0.weight"])  # the run did train it


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_a_frozen_shared_part_of_the_student_is_given_back_uncast(precision):
    # a frozen extractor (with batch normalisation in evaluation mode: statistics no run
    # moves) shared by every run is cast with the student by the precision: given back its
    # own float32 values and tensors, as the teacher is
    x, y = _sweep_data()
    torch.manual_seed(4)
    teacher = nn.Linear(5, 2)
    backbone = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh()).requires_grad_(False)
    backbone[1].running_mean.normal_()
    backbone.eval()
    params = {name: (p, p.detach().clone()) for name, p in backbone.named_parameters()}
    buffers = {name: (b, b.clone()) for name, b in backbone.named_buffers()}
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)

    class Frozen(DistillationModule):
        def on_train_epoch_start(self):  # Lightning puts every module in training mode
            super().on_train_epoch_start()
            backbone.eval()

    result = select_temperature(
        lambda t: Frozen(nn.Sequential(backbone, nn.Linear(8, 2)), teacher, temperature=t),
        lambda: quiet_trainer(max_epochs=1, precision=precision),
        train,
        val,
        (1.0, 2.0),
        seeds=(0, 1),
    )
    assert len(result.runs) == 4
    for name, parameter in backbone.named_parameters():
        same, before = params[name]
        assert parameter is same and parameter.dtype == torch.float32
        assert torch.equal(parameter, before)
    for name, buffer in backbone.named_buffers():
        same, before = buffers[name]
        assert buffer is same and torch.equal(buffer, before)


def test_a_loader_with_persistent_workers_is_warned_of():
    # its workers start once and live on from run to run: with random augmentation in the data
    # set, a run's data depended on the runs before it, silently
    data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=1, persistent_workers=True)
    plain = torch.utils.data.DataLoader(data, batch_size=4, num_workers=1)
    with pytest.warns(UserWarning, match=r"^train has persistent_workers=True: .* repeatable"):
        with pytest.raises(TypeError, match="make_module"):
            select_temperature(lambda t: None, lambda: None, loader, plain, (1, 2), seeds=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(TypeError, match="make_module"):
            select_temperature(lambda t: None, lambda: None, plain, plain, (1, 2), seeds=(0,))


_LEARNED_SET_LATER = [
    ("t_start", -5.0, ValueError),
    ("t_start", math.nan, ValueError),
    ("t_range", -3.0, ValueError),
    ("t_range", 1e6, ValueError),  # t_start + t_range beyond the KD loss's largest temperature
    ("ramp_epochs", -1, ValueError),
    ("ramp_epochs", 2.5, TypeError),
    ("max_reversal", -1.0, ValueError),
]


def test_a_learned_temperature_setting_assigned_as_a_parameter_stays_a_parameter():
    # the check on assignment had read an nn.Parameter as a float: never registered, silently
    temperature = LearnedTemperature(ramp_epochs=0)
    temperature.t_start = nn.Parameter(torch.tensor(1.0))
    assert isinstance(temperature.t_start, nn.Parameter)
    assert "t_start" in dict(temperature.named_parameters())


@pytest.mark.parametrize(
    ("name", "value", "error"),
    _LEARNED_SET_LATER,
    ids=[f"{name}-{value!r}" for name, value, _ in _LEARNED_SET_LATER],
)
def test_learned_temperature_settings_set_after_construction_are_checked(name, value, error):
    # a t_start below 0 let the temperature turn negative, and a ramp of -1 epochs reversed at
    # full strength from the first epoch: both had trained silently
    with pytest.raises(error) as built:
        LearnedTemperature(**{name: value})
    temperature = LearnedTemperature()
    before = getattr(temperature, name)
    with pytest.raises(error) as set_later:
        setattr(temperature, name, value)
    assert str(set_later.value) == str(built.value)
    assert getattr(temperature, name) == before


def test_learned_temperature_range_set_after_construction_acts():
    temperature = LearnedTemperature(t_start=1.0, t_range=20.0, ramp_epochs=10)
    temperature.t_start, temperature.t_range, temperature.ramp_epochs = 2.0, 4.0, 4
    # T = t_start + t_range * sigmoid(theta), theta = 1 at the start
    assert temperature.value == pytest.approx(2.0 + 4.0 / (1.0 + math.exp(-1.0)))
    assert temperature.reversal_strength(2) == pytest.approx(0.5)
    copied = copy.deepcopy(temperature)
    assert (copied.t_start, copied.t_range, copied.ramp_epochs) == (2.0, 4.0, 4)


def test_a_learned_temperatures_initial_value_is_fixed_at_construction():
    # theta starts from it: set later, it had changed nothing but the start as_data() (and so
    # the module's hyperparameters and checkpoints) reported, silently
    temperature = LearnedTemperature(initial=5.0)
    with pytest.raises(AttributeError, match=r"^initial is set at construction \(theta starts"):
        temperature.initial = 10.0
    assert temperature.as_data()["initial"] == 5.0
    assert temperature.value == pytest.approx(5.0)
    rebuilt = LearnedTemperature.from_data(temperature.as_data())
    assert rebuilt.value == pytest.approx(5.0) and rebuilt.initial == 5.0
    assert copy.deepcopy(LearnedTemperature()).initial is None


def test_a_sweep_gives_a_teachers_own_train_its_mode_back():
    # the sweep's validation scores gave back the teacher's flags alone: a submodule whose own
    # train(False) turned its noise off read as training afterwards, its noise still off
    x, y = _sweep_data()
    torch.manual_seed(5)
    noisy = NoisyInput()
    teacher = nn.Sequential(noisy, nn.Linear(5, 2))
    teacher.train()
    result = _sweep_under("32-true", teacher, x, y)
    assert len(result.runs) == 2
    assert noisy.training and noisy.std == 0.1
