"""KnowledgeDistillation with the forms a LightningModule's training_step and batches take:
one teacher per fit, the step's own signature, the module's instance attributes given back,
labels and indices from targets_from / index_from, the logits_from submodule's inputs, first
stages on the forward's inputs, and a resume with other feature pairs."""

import types
import warnings

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill.kd import LearnedTemperature, feature_losses
from tests.helpers import quiet_trainer


def net(seed: int, inputs: int = 8) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, 3))


def conv(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(16, 3),
    )  # fmt: skip


class Student(L.LightningModule):
    def __init__(self, network=None):
        super().__init__()
        self.net = net(0) if network is None else network

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n=32, inputs=8, extra=False, seed=3):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, inputs, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    tensors = (x, y, torch.arange(n)) if extra else (x, y)
    return DataLoader(TensorDataset(*tensors), batch_size=8)


def test_one_teacher_per_fit_a_distillation_module_or_a_second_callback_is_refused():
    module = DistillationModule(net(0), net(1))
    with pytest.raises(ValueError, match="one teacher per fit"):
        quiet_trainer(callbacks=[KnowledgeDistillation(net(2), logits_from="student")]).fit(
            module, loader()
        )

    class Named(KnowledgeDistillation):  # Lightning's hint for two stateful callbacks
        @property
        def state_key(self):
            return f"{super().state_key}{id(self)}"

    student = Student()
    callbacks = [Named(net(1)), Named(net(2))]
    with pytest.raises(ValueError, match="already wrapped by another KnowledgeDistillation"):
        quiet_trainer(callbacks=callbacks).fit(student, loader())
    assert "training_step" not in student.__dict__  # the first callback's wrapper removed


def test_a_training_step_without_batch_idx_trains_as_the_module_would():
    class NoIndex(Student):
        def training_step(self, batch):
            return F.cross_entropy(self(batch[0]), batch[1])

    results = []
    for cls in (Student, NoIndex):
        student = cls()
        quiet_trainer(callbacks=[KnowledgeDistillation(net(1))]).fit(student, loader())
        results.append(torch.cat([p.detach().flatten() for p in student.parameters()]))
    assert torch.equal(*results)


def test_a_training_step_fetching_its_own_batches_is_refused():
    class Iterating(Student):
        def training_step(self, dataloader_iter):
            batch = next(dataloader_iter)[0]
            return F.cross_entropy(self(batch[0]), batch[1])

    with pytest.raises(ValueError, match="dataloader_iter"):
        quiet_trainer(callbacks=[KnowledgeDistillation(net(1))]).fit(Iterating(), loader())


def test_a_training_step_set_on_the_instance_is_given_back():
    student = Student()
    calls = []

    def own_step(self, batch, batch_idx):
        calls.append(batch_idx)
        return F.cross_entropy(self(batch[0]), batch[1])

    student.training_step = types.MethodType(own_step, student)
    mine = student.__dict__["training_step"]
    quiet_trainer(callbacks=[KnowledgeDistillation(net(1))]).fit(student, loader())
    assert calls == [0, 1, 2, 3]  # the instance's step ran under the callback
    assert student.__dict__["training_step"] is mine


def test_feature_methods_read_the_labels_of_targets_from_and_the_index_of_index_from(
    monkeypatch,
):
    """Batches (x, group, y, position): labels third, the sample index fourth."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 1, 6, 6, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    group = (y + 1) % 3
    data = DataLoader(TensorDataset(x, group, y, torch.arange(32)), batch_size=16)

    class Grouped(Student):
        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[2])

    seen = {"targets": [], "index": []}
    for name in ("SSKD", "CRD"):
        method = getattr(feature_losses, name)
        original = method.forward

        def spy(self, s, t, context=None, original=original, name=name):
            if name == "SSKD":
                seen["targets"].append(context.targets.clone())
            else:
                seen["index"].append(context.index.clone())
            return original(self, s, t, context)

        monkeypatch.setattr(method, "forward", spy)
    features = [
        FeatureDistillation("net.2", "2", "sskd", options={"head_epochs": 1}),
        FeatureDistillation("net.3", "3", "crd", options={"num_samples": 32, "embed_dim": 4}),
    ]
    with pytest.raises(ValueError, match="index_from must be given with loss='crd'"):
        KnowledgeDistillation(conv(1), targets_from=lambda b: b[2], features=features)
    callback = KnowledgeDistillation(
        conv(1),
        targets_from=lambda b: b[2],
        index_from=lambda b: b[3],
        features=features,
        example_input=x[:2],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(callbacks=[callback]).fit(Grouped(conv(0)), data)
    assert [t.tolist() for t in seen["targets"]] == [y[:16].tolist(), y[16:].tolist()]
    assert [i.tolist() for i in seen["index"]] == [list(range(16)), list(range(16, 32))]
    with pytest.raises(TypeError, match="index_from"):
        KnowledgeDistillation(conv(1), index_from=3)


def test_targets_from_and_index_from_set_after_construction_are_checked_as_at_construction():
    # a non-callable (or None) set later failed in the training step with "'int' object is not
    # callable"; a targets_from set later without an index_from let CRD read batch[2] of a
    # batch laid out otherwise
    callback = KnowledgeDistillation(net(1))
    for name in ("targets_from", "index_from"):
        before = getattr(callback, name)
        with pytest.raises(TypeError, match=rf"^{name} must be callable\(batch\)"):
            setattr(callback, name, 3)
        assert getattr(callback, name) is before
    seen = []

    def targets(batch):
        seen.append(batch[1])
        return batch[1]

    callback.targets_from = targets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(callbacks=[callback]).fit(Student(net(0)), loader())
    assert torch.equal(torch.cat(seen), loader().dataset.tensors[1])
    callback.targets_from = None  # the default reading, as at construction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(callbacks=[callback]).fit(Student(net(0)), loader())
    assert len(seen) == len(loader())
    crd = FeatureDistillation("net.3", "3", "crd", options={"num_samples": 32, "embed_dim": 4})
    with_crd = KnowledgeDistillation(conv(1), features=[crd], example_input=torch.zeros(2, 1, 6, 6))
    # the pair is checked when a fit starts (setup): set one after the other, either first
    with_crd.targets_from = lambda b: b[2]
    with pytest.raises(ValueError, match="index_from must be given with loss='crd'"):
        with_crd.setup(None, Student(net(0)), "fit")
    with_crd.index_from = lambda b: b[3]
    with_crd.setup(None, Student(net(0)), "validate")  # only a fit's setup checks
    with_crd.targets_from = None  # back to the default layout, then index_from
    with_crd.index_from = None


@pytest.mark.parametrize(
    "name, value, error, message",
    [
        ("temperature", 0.0, ValueError, r"^temperature must be a finite number >= "),
        ("temperature", "2", TypeError, r"^temperature must be a real number"),
        ("alpha", 1.5, ValueError, r"^alpha must be a finite number >= 0 and <= 1; got 1\.5"),
        ("label_smoothing", -0.1, ValueError, r"^label_smoothing must be a finite number >= 0"),
    ],
)
def test_loss_settings_set_after_construction_are_checked_as_at_construction(
    name, value, error, message
):
    # set later, alpha = 1.5 trained with the hard term's weight negative, and a label_smoothing
    # out of range failed in the step under the loss function's argument name, 'smoothing'
    with pytest.raises(error, match=message):
        KnowledgeDistillation(net(1), **{name: value})
    callback = KnowledgeDistillation(net(1), temperature=3.0, alpha=0.25, label_smoothing=0.1)
    before = getattr(callback, name)
    with pytest.raises(error, match=message):
        setattr(callback, name, value)
    assert getattr(callback, name) == before
    with pytest.raises(TypeError, match="learned temperature is a parameter trained with"):
        callback.temperature = LearnedTemperature()
    callback.alpha, callback.label_smoothing, callback.temperature = 1, 0, 2
    assert (callback.alpha, callback.label_smoothing, callback.temperature) == (1.0, 0.0, 2.0)


def test_feature_methods_that_read_nothing_from_the_batch_take_dict_batches_of_any_keys():
    class Keyed(Student):
        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch["features"]), batch["cls"])

    batches = DataLoader([{"features": b[0], "cls": b[1]} for b in loader()], batch_size=None)
    callback = KnowledgeDistillation(
        net(1),
        targets_from=lambda b: b["cls"],
        features=[FeatureDistillation("net.1", "1", "rkd")],
    )
    student = Keyed()
    before = [p.detach().clone() for p in student.parameters()]
    quiet_trainer(callbacks=[callback]).fit(student, batches)
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))
    # CRD reads the index: a dict without one names the method and index_from
    crd = FeatureDistillation("net.1", "1", "crd", options={"num_samples": 32, "embed_dim": 4})
    callback = KnowledgeDistillation(net(1), features=[crd], example_input=torch.randn(2, 8))

    class Plain(Student):
        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch["inputs"]), batch["targets"])

    keyed = [{"inputs": b[0], "targets": b[1], "row": b[1]} for b in loader()]
    keyed = DataLoader(keyed, batch_size=None)
    with pytest.raises(ValueError, match="CRD reads each sample's index.*index_from"):
        quiet_trainer(callbacks=[callback]).fit(Plain(), keyed)


class Wrapped(Student):
    """The network is called on the batch's inputs through a parameter-free Flatten."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.net(self.flatten(batch[0])), batch[1])


def test_logits_from_naming_a_layer_inside_a_network_that_ran_is_warned_about():
    student = Student()
    teacher = nn.Linear(8, 3)  # reads 8 features, as the student's hidden layer has
    with pytest.warns(UserWarning, match=r"'net.2' names a layer inside 'net', which was itself"):
        quiet_trainer(callbacks=[KnowledgeDistillation(teacher, logits_from="net.2")]).fit(
            student, loader()
        )


class Staged(L.LightningModule):
    """A network fed by other submodules: parameter-free ones, a frozen backbone, an input
    standardisation with parameters. None is a mistake."""

    def __init__(self):
        super().__init__()
        self.prepare = nn.Sequential(nn.Identity(), nn.Identity(), nn.Flatten())
        self.scale = nn.BatchNorm1d(8)
        torch.manual_seed(0)
        self.backbone = nn.Linear(8, 8).requires_grad_(False)
        self.net = net(0)

    def training_step(self, batch, batch_idx):
        features = self.backbone(self.scale(self.prepare(batch[0])))
        return F.cross_entropy(self.net(features), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=0.1)


def test_a_network_fed_by_other_submodules_is_distilled_without_a_word():
    gen = torch.Generator().manual_seed(0)
    data = DataLoader(
        TensorDataset(torch.randn(16, 2, 4, generator=gen), torch.randint(0, 3, (16,))),
        batch_size=8,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*names a layer inside")
        quiet_trainer(callbacks=[KnowledgeDistillation(net(1), logits_from="net")]).fit(
            Staged(), data
        )


def test_a_teacher_failing_on_the_logits_from_inputs_names_logits_from():
    class Scaled(Student):  # the network gets inputs the teacher cannot read
        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.net(batch[0][:, :8]), batch[1])

    with pytest.raises(ValueError, match="logits_from.*The teacher said"):
        quiet_trainer(callbacks=[KnowledgeDistillation(net(1, 9), logits_from="net")]).fit(
            Scaled(), loader(inputs=9)
        )


def test_first_stages_train_on_the_inputs_the_forward_is_given():
    """The module scales 8-bit images in training_step: SSKD's teacher head is trained on the
    scaled inputs, as the teacher reads them later (it read 0..255 before)."""
    gen = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 256, (32, 1, 6, 6), generator=gen).float()
    data = DataLoader(TensorDataset(raw, torch.randint(0, 3, (32,), generator=gen)), 16)

    class Scaling(Student):
        def training_step(self, batch, batch_idx):
            self.log("seen", batch[0].max())  # muted while the first stage reads the inputs
            return F.cross_entropy(self(batch[0] / 255.0), batch[1])

    teacher = conv(1)
    largest = []
    teacher.register_forward_pre_hook(lambda m, a: largest.append(float(a[0].abs().max())))
    callback = KnowledgeDistillation(
        teacher,
        features=[FeatureDistillation("net.3", "3", "sskd", options={"head_epochs": 2})],
        example_input=raw[:2] / 255.0,
    )
    student = Scaling(conv(0))
    quiet_trainer(callbacks=[callback], limit_train_batches=2).fit(student, data)
    first_stage = largest[1:5]  # after example_input's call: 2 epochs x 2 batches
    assert len(largest) > 5 and max(largest) <= 1.0 and len(first_stage) == 4
    assert {"log", "log_dict"}.isdisjoint(student.__dict__)


def test_resuming_with_other_feature_pairs_names_features(tmp_path):
    def crd(dim):
        options = {"num_samples": 32, "embed_dim": dim}
        return [FeatureDistillation("net.1", "1", "crd", options=options)]

    example = torch.randn(2, 8)
    trainer = quiet_trainer(
        callbacks=[KnowledgeDistillation(net(1), features=crd(4), example_input=example)]
    )
    trainer.fit(Student(), loader(extra=True))
    path = tmp_path / "run.ckpt"
    trainer.save_checkpoint(path)
    callback = KnowledgeDistillation(net(1), features=crd(8), example_input=example)
    with pytest.raises(ValueError, match=r"features must be the feature pairs.*embed_dim': 4"):
        quiet_trainer(max_epochs=2, callbacks=[callback]).fit(
            Student(), loader(extra=True), ckpt_path=path
        )
    # the same parts with another weight: loaded, with a warning that says what differs
    other = [FeatureDistillation("net.1", "1", "crd", weight=0.5, options=crd(4)[0].options)]
    callback = KnowledgeDistillation(net(1), features=other, example_input=example)
    with pytest.warns(UserWarning, match="feature pairs whose settings differ"):
        quiet_trainer(max_epochs=2, callbacks=[callback]).fit(
            Student(), loader(extra=True), ckpt_path=path
        )


def _sskd(head_epochs=1):
    return [FeatureDistillation("net.3", "3", "sskd", options={"head_epochs": head_epochs})]


def _raw_images(n=32):
    gen = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 256, (n, 1, 6, 6), generator=gen).float()
    return raw, torch.randint(0, 3, (n,), generator=gen)


def test_first_stages_move_batches_with_the_data_module_hooks_and_leave_buffers_as_they_were():
    raw, y = _raw_images()

    class Scaling(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(TensorDataset(raw, y), batch_size=16)

        def on_after_batch_transfer(self, batch, dataloader_idx):
            return {"x": batch[0] / 255.0, "y": batch[1]}

    class Normalising(Student):
        def __init__(self):
            super().__init__(conv(0))
            self.norm = nn.BatchNorm2d(1)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(self.norm(batch["x"])), batch["y"])

    teacher = conv(1)
    largest = []
    teacher.register_forward_pre_hook(lambda m, a: largest.append(float(a[0].abs().max())))
    student = Normalising()
    counts = []
    student.norm.register_forward_hook(lambda m, a, o: counts.append(int(m.num_batches_tracked)))
    callback = KnowledgeDistillation(
        teacher, targets_from=lambda b: b["y"], features=_sskd(2), example_input=raw[:2] / 255
    )
    quiet_trainer(callbacks=[callback], max_steps=1).fit(student, datamodule=Scaling())
    # the first stage (2 epochs x 2 batches) read the data module's scaled inputs, normalised
    assert len(largest) > 5 and max(largest[1:5]) < 10
    # the first stage's four calls moved the statistics (1..4), given back before training:
    # the training step's own call counts from the start again
    assert counts == [1, 2, 3, 4, 1] and int(student.norm.num_batches_tracked) == 1


def test_a_step_that_catches_every_exception_still_gives_the_first_stage_its_inputs():
    raw, y = _raw_images()

    class Guarded(Student):
        def training_step(self, batch, batch_idx):
            try:
                return F.cross_entropy(self(batch[0] / 255.0), batch[1])
            except Exception:  # the module's own guard
                return None

    teacher = conv(1)
    calls = []
    teacher.register_forward_pre_hook(lambda m, a: calls.append(1))
    callback = KnowledgeDistillation(teacher, features=_sskd(), example_input=raw[:2] / 255)
    quiet_trainer(callbacks=[callback], max_steps=1).fit(
        Guarded(conv(0)), DataLoader(TensorDataset(raw, y), batch_size=16)
    )
    assert len(calls) >= 1 + 2 + 1  # example input, the first stage's two batches, a step


def test_a_first_stage_that_reads_no_batch_is_warned_about():
    raw, y = _raw_images()

    class Skipping(Student):
        calls = 0

        def training_step(self, batch, batch_idx):
            # skips the batches the first stage reads (its two), then trains; a step of
            # training that returned None would be said by Lightning once per process only
            self.calls += 1
            if self.calls <= 2:
                return None
            return F.cross_entropy(self(batch[0]), batch[1])

    callback = KnowledgeDistillation(conv(1), features=_sskd(), example_input=raw[:2])
    with pytest.warns(UserWarning, match="first stage .* read no batch"):
        quiet_trainer(callbacks=[callback], max_steps=1).fit(
            Skipping(conv(0)), DataLoader(TensorDataset(raw, y), batch_size=16)
        )


def test_the_module_baseline_without_a_teacher_takes_the_callback():
    student = DistillationModule(net(0), None, alpha=0.0)
    quiet_trainer(callbacks=[KnowledgeDistillation(net(1), logits_from="student")]).fit(
        student, loader()
    )


def test_a_layer_that_reads_its_networks_own_input_is_not_warned_about():
    class Probabilities(Student):  # the logits layer first, a softmax after it
        def __init__(self):
            super().__init__(nn.Sequential(net(0), nn.Softmax(dim=1)))

        def training_step(self, batch, batch_idx):
            return F.nll_loss(self.net(batch[0]).log(), batch[1])

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*names a layer inside")
        quiet_trainer(callbacks=[KnowledgeDistillation(net(1), logits_from="net.0")]).fit(
            Probabilities(), loader()
        )


def test_a_buffer_the_step_rebinds_is_given_back_after_the_first_stage():
    raw, y = _raw_images()

    class Counting(Student):
        def __init__(self):
            super().__init__(conv(0))
            self.register_buffer("seen", torch.zeros(()))

        def training_step(self, batch, batch_idx):
            self.seen = self.seen + len(batch[0])  # rebinds the buffer
            return F.cross_entropy(self(batch[0] / 255.0), batch[1])

    student = Counting()
    callback = KnowledgeDistillation(conv(1), features=_sskd(2), example_input=raw[:2] / 255)
    quiet_trainer(callbacks=[callback], max_steps=1).fit(
        student, DataLoader(TensorDataset(raw, y), batch_size=16)
    )
    assert float(student.seen) == 16  # the one training step's rows, not the first stage's


def test_a_scripted_submodule_beside_the_logits_from_network_is_no_obstacle():
    class WithScript(Student):
        def __init__(self):
            super().__init__()
            self.prepare = torch.jit.script(nn.Sequential(nn.Identity()))  # takes no hooks

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.net(self.prepare(batch[0])), batch[1])

    student = WithScript()
    before = [p.detach().clone() for p in student.net.parameters()]
    quiet_trainer(callbacks=[KnowledgeDistillation(net(1), logits_from="net")]).fit(
        student, loader()
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, student.net.parameters()))


def test_a_step_that_logs_per_step_runs_in_the_first_stage_with_its_logging_muted():
    """Lightning refuses self.log(on_step=True) inside on_train_start, where the first stage
    runs the step up to its forward: the step's logging is muted there."""
    raw, y = _raw_images()

    class Logging(Student):
        def training_step(self, batch, batch_idx):
            self.log("rows", float(len(batch[0])), on_step=True)
            return F.cross_entropy(self(batch[0] / 255.0), batch[1])

    trainer = quiet_trainer(
        callbacks=[KnowledgeDistillation(conv(1), features=_sskd(), example_input=raw[:2] / 255)],
        max_steps=1,
    )
    trainer.fit(Logging(conv(0)), DataLoader(TensorDataset(raw, y), batch_size=16))
    assert float(trainer.callback_metrics["rows"]) == 16


class ValidatesWithItsTrainingStep(Student):
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.training_step(batch, batch_idx))


class TrainTotalBeforeValidation(L.Callback):
    def on_validation_start(self, trainer, pl_module):
        self.total = trainer.callback_metrics["train/loss_total"].clone()


def test_a_validation_step_calling_training_step_gets_the_modules_own_loss():
    teacher, calls = net(1), []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    module, before_validation = ValidatesWithItsTrainingStep(), TrainTotalBeforeValidation()
    trainer = quiet_trainer(
        callbacks=[KnowledgeDistillation(teacher), before_validation], num_sanity_val_steps=0
    )
    validation = loader(seed=4)
    trainer.fit(module, loader(), validation)
    assert len(calls) == len(loader())  # the teacher ran on the training batches alone
    with torch.no_grad():  # the module's own loss on the validation batches (of equal sizes)
        own = torch.stack([F.cross_entropy(module(x), y) for x, y in validation]).mean()
    torch.testing.assert_close(trainer.callback_metrics["val_loss"], own)
    # the training total is not overwritten by a value computed during validation
    torch.testing.assert_close(
        trainer.callback_metrics["train/loss_total"], before_validation.total
    )
