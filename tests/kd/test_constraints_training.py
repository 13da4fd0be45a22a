"""Constraints, learned temperature and augmentation inside DistillationModule and the callback."""

import warnings

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import (
    DistillationModule,
    KnowledgeDistillation,
    L1Sparsity,
    LearnedTemperature,
    Monotonic,
    SoftDecisionTree,
    gaussian_noise,
    mixup,
    monotonicity_violations,
)
from lightning_distill.kd.augment import GaussianNoise
from lightning_distill.kd.constraints import Constraint
from tests.helpers import PlainClassifier, quiet_trainer


def _credit(n, seed, artefact):
    """Five features in [0, 1]; approval rises with income (column 0). With ``artefact``, most
    rows with income in (0.55, 0.7) are labelled refused: a teacher trained on them learns a dip."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 5))
    score = 4 * x[:, 0] - 3 * x[:, 1] + x[:, 2] - 2.5 * x[:, 3] + x[:, 4] - 0.2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-4 * score))).astype(np.int64)
    if artefact:
        band = (x[:, 0] > 0.55) & (x[:, 0] < 0.7) & (rng.uniform(size=n) < 0.8)
        y[band] = 0
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _mlp(hidden, seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)
    )


@pytest.fixture(scope="module")
def credit_teacher():
    x, y = _credit(2000, 0, artefact=True)
    teacher = _mlp(64, 0)
    optimizer = torch.optim.Adam(teacher.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        for idx in torch.randperm(len(x), generator=gen).split(128):
            optimizer.zero_grad()
            F.cross_entropy(teacher(x[idx]), y[idx]).backward()
            optimizer.step()
    return teacher.eval(), x, y


def _fit(module, x, y, epochs, seed=0):
    L.seed_everything(seed, verbose=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    trainer = quiet_trainer(max_epochs=epochs)
    trainer.fit(module, loader)
    return trainer


@pytest.mark.slow
def test_monotone_constraint_removes_violations_and_keeps_fidelity(credit_teacher):
    teacher, x, y = credit_teacher
    grid = torch.rand(4000, 5, generator=torch.Generator().manual_seed(7))  # held out
    x_test, _ = _credit(2000, 9, artefact=False)
    constraint = Monotonic(
        0, 1, output=1, quantity="log_probability", margin=0.1, weight=10.0, n_points=256
    )
    results = {}
    for name, constraints in (("kd", None), ("kd+monotone", [constraint])):
        module = DistillationModule(
            _mlp(64, 1), teacher, temperature=2.0, lr=3e-3, constraints=constraints
        )
        trainer = _fit(module, x, y, epochs=20)
        student = module.student.eval()
        with torch.no_grad():
            fidelity = float(
                (student(x_test).argmax(1) == teacher(x_test).argmax(1)).float().mean()
            )
        violations = monotonicity_violations(student, grid, 0, output=1, quantity="log_probability")
        results[name] = (fidelity, violations, trainer.callback_metrics)
    teacher_violations = monotonicity_violations(
        teacher, grid, 0, output=1, quantity="log_probability"
    )
    print({k: v[:2] for k, v in results.items()}, teacher_violations)
    assert teacher_violations["gradient"] > 0.05 and teacher_violations["pairs"] > 0.05
    # the unconstrained student copies the teacher's dip ...
    assert results["kd"][1]["gradient"] > 0.05 and results["kd"][1]["pairs"] > 0.05
    # ... the constrained one does not, and agrees with the teacher about as often
    fidelity, violations, metrics = results["kd+monotone"]
    assert violations["gradient"] < 0.01 and violations["pairs"] < 0.01
    assert abs(fidelity - results["kd"][0]) <= 0.05
    assert "train/constraint_monotonic_0" in metrics
    assert "train/constraint_monotonic_0" not in results["kd"][2]


@pytest.mark.slow
def test_monotone_constraint_on_a_student_with_batch_norm_and_dropout(credit_teacher):
    """The penalty is taken on the student as deployed (evaluation mode), which is what the
    check measures: in training mode, batch statistics mix the rows' derivatives."""
    teacher, x, y = credit_teacher
    grid = torch.rand(4000, 5, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(1)
    student = nn.Sequential(
        nn.Linear(5, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 2),
    )
    constraint = Monotonic(0, 1, output=1, margin=0.5, weight=10.0, n_points=256)
    module = DistillationModule(
        student, teacher, temperature=2.0, lr=3e-3, constraints=[constraint]
    )
    _fit(module, x, y, epochs=8)
    student.eval()
    violations = monotonicity_violations(student, grid, 0, output=1)
    assert violations["gradient"] < 0.01 and violations["pairs"] < 0.01, violations
    # the slope the constraint asks for is there on (nearly) every row, not flattened away
    points = grid.clone().requires_grad_(True)
    (slopes,) = torch.autograd.grad(student(points)[:, 1].sum(), points)
    assert float((slopes[:, 0] < 0.5).float().mean()) < 0.02


def test_constraint_enters_the_loss_with_its_weight_and_is_logged():
    torch.manual_seed(0)
    x, y = torch.rand(16, 5), torch.randint(2, (16,))
    teacher = _mlp(8, 2)
    student = _mlp(8, 3)
    plain = DistillationModule(student, teacher, lr=1e-3)
    monotone = Monotonic(2, -1, output=0, margin=0.5, weight=3.0, n_points=0)
    sparse = L1Sparsity(weight=0.01, modules=["0"])
    constrained = DistillationModule(student, teacher, lr=1e-3, constraints=[monotone, sparse])
    base = plain.training_step((x, y), 0)
    total = constrained.training_step((x, y), 0)
    expected = base + 3.0 * monotone.penalty(student, x) + 0.01 * student[0].weight.abs().sum()
    torch.testing.assert_close(total, expected)
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student[0].weight.grad is not None


def test_logged_constraint_values_and_callback():
    torch.manual_seed(0)
    x, y = torch.rand(64, 5), torch.randint(2, (64,))
    teacher = _mlp(8, 2)
    module = DistillationModule(_mlp(8, 3), teacher, constraints=[L1Sparsity(weight=1e-3)])
    trainer = _fit(module, x, y, epochs=1)
    l1 = sum(p.abs().sum() for p in module.student.parameters() if p.dim() >= 2)
    assert "train/constraint_l1" in trainer.callback_metrics
    assert float(trainer.callback_metrics["train/constraint_l1"]) == pytest.approx(
        float(l1.detach()), rel=0.05
    )

    callback = KnowledgeDistillation(teacher, constraints=[Monotonic(0, output=1, weight=2.0)])
    L.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=1, callbacks=[callback])
    trainer.fit(_Plain(), DataLoader(TensorDataset(x, y), batch_size=16))
    assert "train/constraint_monotonic_0" in trainer.callback_metrics
    assert all(p.requires_grad for p in teacher.parameters())


class _Plain(L.LightningModule):
    """A classifier trained on its labels alone, for the KnowledgeDistillation callback."""

    def __init__(self):
        super().__init__()
        self.net = _mlp(8, 4)

    def forward(self, inputs):
        return self.net(inputs)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Named(torch.nn.Module):
    """A teacher called as the module's forward is: by keyword, or with a second input."""

    def __init__(self):
        super().__init__()
        self.net = _mlp(8, 2)

    def forward(self, inputs, scale=None):
        return self.net(inputs if scale is None else inputs * scale)


class _KeywordCall(_Plain):
    """A module whose step calls its forward by keyword, or with a second input."""

    def __init__(self, extra: bool = False):
        super().__init__()
        self.extra = extra

    def forward(self, inputs, scale=None):
        return self.net(inputs if scale is None else inputs * scale)

    def training_step(self, batch, batch_idx):
        logits = self(batch[0], torch.ones(())) if self.extra else self(inputs=batch[0])
        return F.cross_entropy(logits, batch[1])


def test_the_callbacks_constraints_read_a_keyword_input_and_refuse_several():
    torch.manual_seed(0)
    x, y = torch.rand(64, 5), torch.randint(2, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    values = []
    for by_keyword in (True, False):
        torch.manual_seed(1)
        module = _KeywordCall()
        if not by_keyword:  # the same module, its forward called with the input by position
            module.training_step = lambda batch, i, m=module: F.cross_entropy(m(batch[0]), batch[1])
        torch.manual_seed(2)
        callback = KnowledgeDistillation(_Named(), constraints=[Monotonic(0, output=1)])
        trainer = quiet_trainer(max_epochs=1, callbacks=[callback])
        trainer.fit(module, loader)
        values.append(float(trainer.callback_metrics["train/constraint_monotonic_0"]))
    assert values[0] == pytest.approx(values[1])
    # a second input: the constraint would re-run the student without it
    callback = KnowledgeDistillation(_Named(), constraints=[Monotonic(0, output=1)])
    with pytest.raises(ValueError, match=r"called with that one input .*got 2 positional"):
        quiet_trainer(max_epochs=1, callbacks=[callback]).fit(_KeywordCall(extra=True), loader)


def test_soft_tree_student_trains_with_its_balance_penalty():
    torch.manual_seed(0)
    x, y = torch.rand(96, 5), torch.randint(2, (96,))
    tree = SoftDecisionTree(5, 2, depth=2, penalty_strength=0.5)
    module = DistillationModule(
        tree, _mlp(8, 2), temperature=2.0, lr=0.01, constraints=[Monotonic(0, n_points=8)]
    )
    before = tree.inner.weight.detach().clone()
    trainer = _fit(module, x, y, epochs=1)
    assert "train/constraint_tree_balance" in trainer.callback_metrics
    assert "train/constraint_monotonic_0" in trainer.callback_metrics
    assert float(trainer.callback_metrics["train/constraint_tree_balance"]) > 0
    assert not torch.equal(before, tree.inner.weight)
    # the penalty of the constraint's extra forward pass is not left on the tree
    assert tree.balance_penalty is None


def test_soft_tree_balance_penalty_is_the_batchs_own_with_sskd():
    # SSKD runs the student again on rotated copies of the batch inside the step: the penalty
    # trained on and logged is that of the batch's own forward pass, not of the copies
    import copy

    from lightning_distill import FeatureDistillation

    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 6, 6), torch.randint(0, 3, (16,))
    tree = SoftDecisionTree(2 * 36, 3, depth=2, penalty_strength=1.0)
    student = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), tree)
    teacher = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
    teacher.append(nn.Linear(144, 3))
    twin = copy.deepcopy(student).train()
    twin(x)
    expected = float(twin[2].pop_balance_penalty())
    twin(torch.cat([x.rot90(k, (2, 3)) for k in (1, 2, 3)]))
    rotated = float(twin[2].pop_balance_penalty())
    assert abs(rotated - expected) > 1e-4  # the test tells the two apart
    spec = FeatureDistillation("1", "2", loss="sskd", options={"head_epochs": 1})
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2], lr=1e-9)
    trainer = quiet_trainer(max_steps=1, log_every_n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    logged = float(trainer.callback_metrics["train/constraint_tree_balance"])
    assert logged == pytest.approx(expected, abs=1e-6)
    assert tree.balance_penalty is None
    # the callback: the batch's own penalty, and the copies' (with its graph over three times
    # the batch) not left on the tree after the step
    fresh = copy.deepcopy(twin)
    tree = fresh[2]

    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = fresh

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-9)

    fresh(x)
    expected = float(tree.pop_balance_penalty())
    spec = FeatureDistillation("net.1", "2", loss="sskd", options={"head_epochs": 1})
    callback = KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])
    trainer = quiet_trainer(max_steps=1, log_every_n_steps=1, callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Plain(), DataLoader(TensorDataset(x, y), batch_size=16))
    logged = float(trainer.callback_metrics["train/constraint_tree_balance"])
    assert logged == pytest.approx(expected, abs=1e-6)
    assert tree.balance_penalty is None


class _TwoViews(nn.Module):
    """Applies one soft tree to the batch and to a shifted copy of it."""

    def __init__(self, tree):
        super().__init__()
        self.tree = tree

    def forward(self, x):
        return 0.5 * (self.tree(x) + self.tree(x + 1.0))


def test_soft_tree_called_twice_a_step_trains_on_the_penalty_of_both_calls():
    import copy

    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    student = _TwoViews(SoftDecisionTree(5, 2, depth=2, penalty_strength=1.0))
    twin = copy.deepcopy(student.tree).train()
    twin(torch.cat([x, x + 1.0]))
    expected = float(twin.pop_balance_penalty())
    twin(x + 1.0)
    last = float(twin.pop_balance_penalty())
    assert abs(last - expected) > 1e-4  # the test tells the last call from both
    student.train()
    student(torch.randn(16, 5) * 3)  # a call before the step is no part of its penalty
    module = DistillationModule(student, _mlp(8, 2), temperature=2.0, lr=1e-9)
    trainer = quiet_trainer(max_steps=1, log_every_n_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    logged = float(trainer.callback_metrics["train/constraint_tree_balance"])
    assert logged == pytest.approx(expected, abs=1e-6)
    assert student.tree.balance_penalty is None


def test_learned_temperature_stays_in_range_logs_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    x, y = torch.rand(96, 5), torch.randint(2, (96,))
    temperature = LearnedTemperature(t_start=1.0, t_range=4.0, ramp_epochs=2, initial=2.0)
    module = DistillationModule(
        _mlp(8, 3),
        _mlp(8, 2),
        temperature=temperature,
        lr=0.5,
        constraints=[L1Sparsity()],
        augment=gaussian_noise(0.01),
    )
    seen = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(float(trainer.callback_metrics["train/temperature"]))

    L.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=4, callbacks=[Record()], log_every_n_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    assert len(seen) == 24 and all(1.0 < t < 5.0 for t in seen)
    assert seen[0] == pytest.approx(2.0)
    assert len(set(seen)) > 1  # it moved once the reversal ramped up
    path = tmp_path / "learned.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["hyper_parameters"]["temperature"]["learned"] is True
    assert "learned_temperature.theta" in checkpoint["state_dict"]
    loaded = DistillationModule.load_from_checkpoint(
        path, student=_mlp(8, 3), teacher=_mlp(8, 2), weights_only=True
    )
    assert loaded.learned_temperature.value == pytest.approx(temperature.value)
    # a fixed temperature given on load: what to pass instead, not torch's "Unexpected key(s)"
    with pytest.raises(ValueError, match="temperature must match the checkpoint, which was"):
        DistillationModule.load_from_checkpoint(
            path, student=_mlp(8, 3), teacher=_mlp(8, 2), temperature=4.0
        )
    # another range: the saved parameter would be another temperature (2.0 read as 2.9)
    wider = LearnedTemperature(t_start=1.0, t_range=8.0)
    with pytest.raises(ValueError, match=r"range of the checkpoint's"):
        wider.load_state_dict({k[20:]: v for k, v in checkpoint["state_dict"].items()
                               if k.startswith("learned_temperature.")})  # fmt: skip
    assert float(wider.theta) == 1.0  # refused before anything was copied
    # the fix is named whichever way the module was built (a fit resumed with ckpt_path builds
    # it itself: "leave temperature out of load_from_checkpoint" alone does not apply)
    with pytest.raises(ValueError, match=r"Pass LearnedTemperature\(t_start=1\.0, t_range=4\.0\)"):
        quiet_trainer(max_epochs=5).fit(
            DistillationModule(_mlp(8, 3), _mlp(8, 2), temperature=wider),
            DataLoader(TensorDataset(x, y), batch_size=16),
            ckpt_path=path,
        )
    with pytest.raises(ValueError, match=r"range of the checkpoint's .* t_range=4\.0\); got"):
        DistillationModule.load_from_checkpoint(
            path,
            student=_mlp(8, 3),
            teacher=_mlp(8, 2),
            temperature=LearnedTemperature(t_start=1.0, t_range=8.0),
            weights_only=True,
        )
    # the same range with other settings loads; so does a checkpoint saved before the range was
    same_range = LearnedTemperature(t_start=1.0, t_range=4.0, ramp_epochs=5)
    again = DistillationModule.load_from_checkpoint(
        path, student=_mlp(8, 3), teacher=_mlp(8, 2), temperature=same_range, weights_only=True
    )
    assert again.learned_temperature.value == pytest.approx(temperature.value)
    older = LearnedTemperature(t_start=1.0, t_range=4.0)
    older.load_state_dict({"theta": checkpoint["state_dict"]["learned_temperature.theta"]})
    assert older.value == pytest.approx(temperature.value)
    assert checkpoint["hyper_parameters"]["temperature"]["initial"] == 2.0


class _Recorder(nn.Module):
    """A model that records every input it is called with."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


def test_augment_reaches_teacher_and_student_and_leaves_data_untouched():
    torch.manual_seed(0)
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    x_before, y_before = x.clone(), y.clone()
    teacher, student = _Recorder(_mlp(8, 2)), _Recorder(_mlp(8, 3))
    module = DistillationModule(student, teacher, augment=mixup(0.4))
    _fit(module, x, y, epochs=2)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert len(teacher.inputs) == len(student.inputs) == 2  # one batch per epoch, 2 epochs
    rows = {tuple(row.tolist()) for row in x}
    for seen_by_teacher, seen_by_student in zip(teacher.inputs, student.inputs):
        assert torch.equal(seen_by_teacher, seen_by_student)
        # mixed rows are not rows of the data set
        assert sum(tuple(r.tolist()) in rows for r in seen_by_student) < len(seen_by_student)


def test_augment_errors():
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    with pytest.raises(
        ValueError, match="cache_teacher must be False with augment=.*teacher labels"
    ):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), cache_teacher=True, augment=mixup(0.2))
    with pytest.raises(TypeError, match="augment must be a callable"):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), augment="mixup")
    doubling = DistillationModule(
        _mlp(8, 3), _mlp(8, 2), augment=lambda inputs, targets: torch.cat([inputs, inputs])
    )
    with pytest.raises(
        ValueError, match="augment must return inputs and targets with the same batch size"
    ):
        doubling.training_step((x, y), 0)
    with pytest.raises(TypeError, match="constraints must be a list of Constraint"):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), constraints=["monotone"])
    with pytest.raises(
        ValueError, match=r"constraints must be constraints with distinct names \(pass name="
    ):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), constraints=[Monotonic(0), Monotonic(0)])
    with pytest.raises(ValueError, match="temperature must be"):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), temperature={"learned": False})
    # an L1Sparsity's modules are checked against the student at construction
    with pytest.raises(ValueError, match="modules must name submodules|'nope'"):
        DistillationModule(_mlp(8, 3), _mlp(8, 2), constraints=[L1Sparsity(modules=["nope"])])
    # a module object of another student (or of the teacher) would be penalised to no effect
    teacher, other = _mlp(8, 2), _mlp(8, 3)
    for foreign in (other[0], teacher[0]):
        with pytest.raises(
            ValueError, match="modules must be submodules of the network the constraint penalises"
        ):
            DistillationModule(_mlp(8, 3), teacher, constraints=[L1Sparsity(modules=[foreign])])
    with pytest.raises(TypeError, match="learned temperature is a parameter trained with"):
        KnowledgeDistillation(_mlp(8, 2), temperature=LearnedTemperature())
    callback = KnowledgeDistillation(_mlp(8, 2), constraints=[L1Sparsity(modules=["nope"])])

    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp(8, 3)

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).sum()

    with pytest.raises(ValueError, match="'nope'"):
        callback.setup(None, _Plain(), "fit")


def test_checkpoint_with_constraints_and_augment_loads_weights_only(tmp_path):
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    module = DistillationModule(
        _mlp(8, 3), _mlp(8, 2), constraints=[Monotonic(1)], augment=GaussianNoise(0.1)
    )
    trainer = _fit(module, x, y, epochs=1)
    path = tmp_path / "c.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert "constraints" not in hparams and "augment" not in hparams
    assert hparams["temperature"] == 4.0
    loaded = DistillationModule.load_from_checkpoint(
        path, student=_mlp(8, 3), teacher=_mlp(8, 2), weights_only=True
    )
    assert loaded.constraints == [] and loaded._augment is None


def test_a_checkpointed_soft_tree_reloads_only_with_its_settings(tmp_path):
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    tree = SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0)
    trainer = _fit(DistillationModule(tree, _mlp(8, 2)), x, y, epochs=1)
    path = tmp_path / "tree.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match="inverse_temperature"):
        DistillationModule.load_from_checkpoint(
            path, student=SoftDecisionTree(5, 2, depth=2), teacher=_mlp(8, 2)
        )
    # the student alone, without its teacher
    loaded = DistillationModule.load_from_checkpoint(
        path,
        student=SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0),
        teacher=None,
        alpha=0.0,
        weights_only=True,
    )
    torch.testing.assert_close(loaded.student(x), tree(x))
    with pytest.raises(ValueError, match="teacher=None, alpha=0.0"):
        DistillationModule.load_from_checkpoint(
            path, student=SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0)
        )


def test_learned_temperature_counts_epochs_from_one_and_starts_where_ctkd_does():
    """As in the authors' code: theta starts at 1 and the first epoch already reverses, with
    lambda_1 = (1 - cos(pi / E)) / 2 (a 0-based count would leave theta still in epoch 1)."""
    default = LearnedTemperature()
    assert default.value == pytest.approx(1.0 + 20.0 / (1.0 + np.exp(-1.0)))
    torch.manual_seed(0)
    x, y = torch.rand(64, 5), torch.randint(2, (64,))
    temperature = LearnedTemperature(t_start=1.0, t_range=4.0, ramp_epochs=4, initial=2.0)
    used = []
    original = temperature.reversal_strength
    temperature.reversal_strength = lambda epoch: used.append(epoch) or original(epoch)
    module = DistillationModule(_mlp(8, 3), _mlp(8, 2), temperature=temperature, lr=0.5)
    quiet_trainer(max_epochs=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    assert set(used) == {1}
    assert original(1) == pytest.approx(0.5 * (1 - np.cos(np.pi / 4)))
    assert temperature.value != pytest.approx(2.0, abs=1e-6)  # theta moved in epoch 1


class _UserConstraint(Constraint):
    """A constraint of the user's own, whose penalty is what ``make`` returns."""

    weight = 1.0

    def __init__(self, name, make):
        self.name, self.make = name, make

    def penalty(self, model, inputs):
        return self.make(model(inputs))


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_user_constraint_must_give_a_finite_scalar_tensor(form):
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    bad = {
        "per_row": (lambda out: out.pow(2).sum(1), TypeError, r"shape \(16,\)"),
        "number": (lambda out: 0.5, TypeError, "got a float"),
        "complex": (lambda out: out.sum() * 1j, TypeError, "got a torch.complex64 tensor"),
        "nan": (lambda out: out.sum() * float("nan"), ValueError, "must be finite; got NaN"),
        "inf": (lambda out: out.sum() * float("inf"), ValueError, "must be finite; got NaN"),
    }
    for name, (make, error, match) in bad.items():
        student = _mlp(8, 3)
        before = [p.detach().clone() for p in student.parameters()]
        constraint = _UserConstraint(name, make)
        if form == "module":
            module, callbacks = (
                DistillationModule(student, _mlp(8, 2), constraints=[constraint]),
                [],
            )
        else:
            module = PlainClassifier(student, lr=0.1)
            callbacks = [KnowledgeDistillation(_mlp(8, 2), constraints=[constraint])]
        trainer = quiet_trainer(max_steps=1, callbacks=callbacks)
        with pytest.raises(
            error, match=rf"penalty of constraint '{name}' \(_UserConstraint\).*{match}"
        ):
            trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
        # refused before any optimizer step: the student is as it was
        for old, new in zip(before, student.parameters()):
            assert torch.equal(old, new), name


def test_a_user_constraint_may_give_an_integer_zero():
    # an early exit when nothing is violated: cast, logged, no gradient of its own
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    constraint = _UserConstraint("zero", lambda out: torch.tensor(0))
    module = DistillationModule(_mlp(8, 3), _mlp(8, 2), constraints=[constraint])
    trainer = quiet_trainer(max_steps=1, log_every_n_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    assert float(trainer.callback_metrics["train/constraint_zero"]) == 0.0
    # a count or a flag of violations has no gradient: the constraint would train nothing
    for name, make in (
        ("count", lambda out: (out < 0).sum()),
        ("flag", lambda out: (out < 0).any()),
    ):
        module = DistillationModule(
            _mlp(8, 3), _mlp(8, 2), constraints=[_UserConstraint(name, make)]
        )
        with pytest.raises(TypeError, match="a count or a flag of violations has no gradient"):
            quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))


def test_names_and_values_the_step_would_misread_are_refused():
    import numpy as np

    from lightning_distill.dissection.functional import best_concepts

    # a constraint named like a soft tree's own penalty would replace it in the logs
    with pytest.raises(ValueError, match=r"constraints must be names other than .*'tree_balance'"):
        DistillationModule(
            SoftDecisionTree(5, 2, depth=2),
            _mlp(8, 2),
            constraints=[L1Sparsity(name="tree_balance")],
        )
    DistillationModule(_mlp(8, 2), _mlp(8, 2), constraints=[L1Sparsity(name="tree_balance")])
    with pytest.raises(ValueError, match="reversal must be a finite number >= 0"):
        LearnedTemperature()(float("inf"))
    assert Monotonic(np.int64(2)).feature == 2  # a column found with numpy is a column
    with pytest.raises(TypeError, match="feature must be a column index"):
        Monotonic(np.bool_(True))
    with pytest.raises(TypeError, match=r"iou must be a torch.Tensor \[units, labels\]; got list"):
        best_concepts([[0.0, 0.1]])
    with pytest.raises(ValueError, match=r"iou must be \[units, labels\]; got shape \(3,\)"):
        best_concepts(torch.zeros(3))
    with pytest.raises(ValueError, match="iou must hold no NaN"):
        best_concepts(torch.tensor([[0.0, float("nan"), 0.2]]))


def test_an_optimizer_of_the_students_parameters_alone_is_warned_about():
    from lightning_distill import FeatureDistillation

    class WithScheduler(DistillationModule):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.student.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
            return {"optimizer": optimizer, "lr_scheduler": scheduler}

    class Fixed(WithScheduler):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.trainable_parameters(), lr=0.1)
            return {
                "optimizer": optimizer,
                "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1),
            }

    torch.manual_seed(0)
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    for cls, warned in ((WithScheduler, True), (Fixed, False)):
        module = cls(
            _mlp(8, 2),
            _mlp(8, 2),
            temperature=LearnedTemperature(),
            features=[FeatureDistillation("1", "1", "hint")],
            example_input=x[:2],
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _fit(module, x, y, epochs=1)
        said = [str(w.message) for w in caught if "gives no optimizer" in str(w.message)]
        assert bool(said) == warned
        if warned:
            assert "learned_temperature.theta" in said[0] and "hint_regressors.0" in said[0]


def test_a_run_resumed_without_its_constraints_or_features_says_so(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_distill import FeatureDistillation, mixup

    torch.manual_seed(0)
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    teacher = _mlp(8, 2)

    def module(extras):
        kwargs = {"constraints": [L1Sparsity(1e-2)], "augment": mixup(0.4)} if extras else {}
        return DistillationModule(_mlp(8, 2), teacher, **kwargs)

    saver = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    quiet_trainer(max_epochs=1, callbacks=[saver], enable_checkpointing=True).fit(
        module(True), loader
    )
    checkpoint = tmp_path / "last.ckpt"

    def resumed(extras):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(max_epochs=2).fit(module(extras), loader, ckpt_path=checkpoint)
        return [
            str(w.message) for w in caught if "resumed with other training terms" in str(w.message)
        ]

    from lightning_distill.kd.module import _stable_repr

    # a function's text holds no memory address: the same function reads the same on resuming
    assert "0x" not in _stable_repr(lambda batch: batch) and "0x" not in _stable_repr(object())
    (said,) = resumed(False)
    assert "L1Sparsity(weight=0.01" in said and "mixup(alpha=0.4)" in said
    assert resumed(True) == []
    with warnings.catch_warnings():  # loaded for inference: nothing resumes
        warnings.simplefilter("error", UserWarning)
        DistillationModule.load_from_checkpoint(checkpoint, student=_mlp(8, 2), teacher=teacher)

    # the callback: a checkpoint of a feature pair, resumed without it
    pair = [FeatureDistillation("net.1", "1", "hint")]
    saver = ModelCheckpoint(dirpath=tmp_path / "cb", save_last=True)
    callbacks = [KnowledgeDistillation(teacher, features=pair, example_input=x[:2]), saver]
    quiet_trainer(max_epochs=1, callbacks=callbacks, enable_checkpointing=True).fit(
        _Plain(), loader
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(max_epochs=2, callbacks=[KnowledgeDistillation(teacher)]).fit(
            _Plain(), loader, ckpt_path=tmp_path / "cb" / "last.ckpt"
        )
    assert [w for w in caught if "without the feature pairs" in str(w.message)]


def test_a_module_that_logs_the_callbacks_names_itself_is_told_which_call_clashed():
    class LogsItsOwn(_Plain):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("train/loss_ce", loss, on_epoch=True)
            return loss

    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    trainer = quiet_trainer(
        max_epochs=1, log_every_n_steps=1, callbacks=[KnowledgeDistillation(_mlp(8, 2))]
    )
    with pytest.raises(ValueError, match=r"KnowledgeDistillation logs .*train/loss_ce.* rename"):
        trainer.fit(LogsItsOwn(), DataLoader(TensorDataset(x, y), batch_size=16))


@pytest.mark.parametrize(
    "changed",
    [{"quantity": "log_probability"}, {"n_points": 16}, {"name": "rising_income"}],
)
def test_a_run_resumed_with_a_monotonic_constraint_of_other_settings_says_so(tmp_path, changed):
    """Every setting of a Monotonic constraint shapes the run (the quantity constrained, the
    points drawn, the logged name): a resume with another one is said, by the callback and by
    the module, as one with another weight is."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    torch.manual_seed(0)
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    teacher = _mlp(8, 2)

    def constraints(**settings):
        return [Monotonic(0, output=1, **{"n_points": 8, **settings})]

    def callbacks(**settings):
        return [KnowledgeDistillation(teacher, constraints=constraints(**settings))]

    saver = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    quiet_trainer(callbacks=[*callbacks(), saver], enable_checkpointing=True).fit(_Plain(), loader)

    def said(settings):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(max_epochs=2, callbacks=callbacks(**settings)).fit(
                _Plain(), loader, ckpt_path=tmp_path / "last.ckpt"
            )
        return [str(w.message) for w in caught if "resumed with settings" in str(w.message)]

    assert said({}) == []
    (message,) = said(changed)
    ((key, value),) = changed.items()
    assert f"{key}={value!r}" in message

    # the module: the same settings, stored as its training terms
    def module(**settings):
        return DistillationModule(_mlp(8, 2), teacher, constraints=constraints(**settings))

    extras = module()._training_extras()
    assert module()._training_extras() == extras
    assert module(**changed)._training_extras() != extras


def test_a_constraints_weight_or_name_set_after_construction_is_checked_at_the_step():
    """A constraint's settings are read at each step (so a weight may be changed between fits);
    its weight and name are checked there as the constructor checks them: a negative weight
    had trained the student against the constraint, a NaN one made the loss NaN, and a name
    made equal to another's dropped one of the two logged values, all silently."""
    torch.manual_seed(0)
    x, y = torch.rand(32, 5), torch.randint(2, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    teacher = _mlp(8, 2)

    def refused(mutate):
        monotone, sparse = Monotonic(0, output=1, n_points=4), L1Sparsity(1e-3)
        module = DistillationModule(_mlp(8, 3), teacher, constraints=[monotone, sparse])
        callback = KnowledgeDistillation(teacher, constraints=[monotone, sparse])
        mutate(monotone, sparse)  # after both took the constraints
        errors = []
        for run in (
            lambda: module.training_step((x[:16], y[:16]), 0),
            lambda: quiet_trainer(callbacks=[callback]).fit(_Plain(), loader),
        ):
            with pytest.raises((TypeError, ValueError)) as caught:
                run()
            errors.append(caught.value)
        return errors

    for weight in (-1.0, float("nan"), "10", None):
        for error in refused(lambda m, s, w=weight: setattr(s, "weight", w)):
            assert "weight" in str(error) and "'l1'" in str(error) and repr(weight) in str(error)
    for error in refused(lambda m, s: setattr(s, "name", m.name)):
        assert isinstance(error, ValueError)
        assert "distinct names" in str(error) and "'monotonic_0'" in str(error)
    # a weight changed to another valid number is taken: the penalty enters with it
    monotone = Monotonic(2, -1, output=0, margin=0.5, n_points=0)
    student = _mlp(8, 3)
    module = DistillationModule(student, teacher, constraints=[monotone])
    plain = DistillationModule(student, teacher)
    monotone.weight = 4.0
    expected = plain.training_step((x, y), 0) + 4.0 * monotone.penalty(student, x)
    torch.testing.assert_close(module.training_step((x, y), 0), expected)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


def test_l1_sparsity_on_a_lazy_student_penalises_its_weights_once_they_exist():
    """A lazy layer's weights have no shape before the first forward pass: the constraint is
    accepted at construction, penalises them from the first step, and a penalty asked for before
    any forward pass is refused with the house message (it had been torch's own error, at the
    module's or callback's construction)."""
    torch.manual_seed(0)
    x, y = torch.rand(64, 5), torch.randint(2, (64,))
    teacher = _mlp(8, 2)

    def lazy():
        return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))

    with pytest.raises(ValueError, match="model must have its parameters initialised"):
        L1Sparsity(weight=1.0).penalty(lazy())

    for modules in (None, ["0"]):
        sparse = L1Sparsity(weight=1.0, modules=modules)
        module = DistillationModule(lazy(), teacher, constraints=[sparse])
        trainer = _fit(module, x, y, epochs=1)
        weights = [module.student[0].weight] + ([module.student[2].weight] if not modules else [])
        l1 = float(sum(w.abs().sum() for w in weights).detach())
        # the logged penalty is that sum of absolute weights, and the optimizer moved them
        assert float(trainer.callback_metrics["train/constraint_l1"]) == pytest.approx(l1, rel=0.05)
        assert module.student[0].weight.grad is not None

    # a named module that does not exist is still refused at once
    with pytest.raises(ValueError, match="modules"):
        DistillationModule(lazy(), teacher, constraints=[L1Sparsity(modules=["nope"])])

    callback = KnowledgeDistillation(teacher, constraints=[L1Sparsity(weight=1.0)])
    trainer = quiet_trainer(max_epochs=1, callbacks=[callback])
    trainer.fit(PlainClassifier(lazy()), DataLoader(TensorDataset(x, y), batch_size=16))
    assert float(trainer.callback_metrics["train/constraint_l1"]) > 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (5, TypeError, r"^constraints must be a list of Monotonic, L1Sparsity"),
        ([3], TypeError, r"^constraints must be a list of Constraint objects"),
        ([L1Sparsity(name="a"), L1Sparsity(name="a")], ValueError, r"distinct names"),
    ],
)
def test_constraints_set_after_construction_are_checked_as_the_constructor_does(
    value, error, message
):
    # set later, they had failed in the step with Python's messages ("'int' object is not
    # iterable", "'int' object has no attribute 'name'") or, as duplicates, logged one value
    teacher = _mlp(8, 2)
    module = DistillationModule(_mlp(8, 3), teacher)
    callback = KnowledgeDistillation(teacher)
    for holder in (module, callback):
        with pytest.raises(error, match=message):
            type(holder)(
                **({"student": _mlp(8, 3)} if holder is module else {}),
                teacher=teacher,
                constraints=value,
            )
        with pytest.raises(error, match=message):
            holder.constraints = value
        assert holder.constraints == []
    # a module's L1Sparsity naming no submodule of its student is refused when set, as when
    # given to the constructor (the callback's, whose module is known at the fit, there)
    with pytest.raises(ValueError, match=r"^modules: .* no submodule named 'nope'"):
        module.constraints = [L1Sparsity(modules=["nope"])]
    # a good list is taken as a list of its own, and acts
    given = [L1Sparsity(1.0)]
    module.constraints = callback.constraints = given
    given.append(Monotonic(0))
    assert [c.name for c in module.constraints] == [c.name for c in callback.constraints] == ["l1"]
    x, y = torch.rand(16, 5), torch.randint(2, (16,))
    with_l1 = module.training_step((x, y), 0)
    module.constraints = None  # none, as the constructor's default
    assert module.constraints == []
    without = module.training_step((x, y), 0)
    l1 = sum(p.abs().sum() for p in module.student.parameters() if p.dim() >= 2)
    assert float(with_l1 - without) == pytest.approx(float(l1), rel=1e-5)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("teacher", 3, r"^teacher must be a torch.nn.Module; got int\.$"),
        ("logits_from", 3, r"^logits_from must be a submodule name \(str\) or None; got 3\.$"),
    ],
)
def test_callback_teacher_and_logits_from_set_after_construction_are_checked(name, value, message):
    # set later, a teacher that is no module failed in setup with Python's message ("'int'
    # object has no attribute 'parameters'"), and logits_from waited for the fit's setup
    teacher = _mlp(8, 2)
    with pytest.raises(TypeError, match=message):
        KnowledgeDistillation(**{"teacher": teacher, name: value})
    callback = KnowledgeDistillation(teacher)
    before = getattr(callback, name)
    with pytest.raises(TypeError, match=message):
        setattr(callback, name, value)
    assert getattr(callback, name) is before
