import copy

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from tests.helpers import (
    WritesItsInput,
    make_cnn,
    make_data,
    quiet_trainer,
    state_copy,
    states_equal,
)


class Classifier(L.LightningModule):
    """An ordinary module that knows nothing about distillation."""

    def __init__(self, net, call_inner=False):
        super().__init__()
        self.net = net
        self.call_inner = call_inner

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x) if self.call_inner else self(x)
        return F.cross_entropy(logits, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class ManualClassifier(Classifier):
    def __init__(self, net):
        super().__init__(net)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        return None


class RecordFirstStep(L.Callback):
    def __init__(self):
        self.loss = None
        self.grads = None

    def on_before_backward(self, trainer, pl_module, loss):
        if self.loss is None:
            self.loss = loss.detach().clone()

    def on_after_backward(self, trainer, pl_module):
        if self.grads is None:
            self.grads = [
                p.grad.detach().clone() for p in pl_module.parameters() if p.grad is not None
            ]


def _first_step(module, callbacks, x, y):
    record = RecordFirstStep()
    trainer = quiet_trainer(max_steps=1, callbacks=[*callbacks, record])
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=len(x)))
    return record


@pytest.mark.parametrize(("temperature", "alpha"), [(4.0, 0.9), (2.0, 0.3), (1.0, 1.0)])
def test_loss_and_gradients_equal_distillation_module(temperature, alpha):
    torch.manual_seed(0)
    net, teacher = make_cnn(4), make_cnn(8)
    x, y = make_data(16)
    reference = _first_step(
        DistillationModule(copy.deepcopy(net), teacher, temperature=temperature, alpha=alpha),
        [],
        x,
        y,
    )
    callback = KnowledgeDistillation(teacher, temperature=temperature, alpha=alpha)
    module = Classifier(copy.deepcopy(net))
    got = _first_step(module, [callback], x, y)
    torch.testing.assert_close(got.loss, reference.loss)
    assert len(got.grads) == len(reference.grads) > 0
    for a, b in zip(got.grads, reference.grads):
        torch.testing.assert_close(a, b)
    # the module's own loss would differ, so the callback really replaced it
    assert not torch.allclose(got.loss, F.cross_entropy(net(x), y))
    assert "training_step" not in module.__dict__  # wrapper removed after the fit


def test_teacher_untouched_and_logits_from_submodule():
    torch.manual_seed(1)
    net, teacher = make_cnn(4), make_cnn(8)
    teacher_before = state_copy(teacher)
    x, y = make_data(16)
    reference = _first_step(DistillationModule(copy.deepcopy(net), teacher), [], x, y)
    module = Classifier(copy.deepcopy(net), call_inner=True)
    got = _first_step(module, [KnowledgeDistillation(teacher, logits_from="net")], x, y)
    torch.testing.assert_close(got.loss, reference.loss)
    assert states_equal(teacher_before, state_copy(teacher))
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


def test_clear_errors():
    torch.manual_seed(2)
    x, y = make_data(8)
    teacher = make_cnn(8)
    with pytest.raises(ValueError, match="automatic optimisation"):
        _first_step(ManualClassifier(make_cnn(4)), [KnowledgeDistillation(teacher)], x, y)
    with pytest.raises(ValueError, match="called 0 times.*logits_from"):
        _first_step(
            Classifier(make_cnn(4), call_inner=True), [KnowledgeDistillation(teacher)], x, y
        )
    with pytest.raises(ValueError, match="logits_from: .*no submodule named 'head'"):
        _first_step(
            Classifier(make_cnn(4)), [KnowledgeDistillation(teacher, logits_from="head")], x, y
        )
    module = Classifier(make_cnn(4))
    with pytest.raises(ValueError, match="teacher must be a separate module"):
        _first_step(module, [KnowledgeDistillation(module.net)], x, y)
    with pytest.raises(ValueError, match="same number of classes"):
        _first_step(Classifier(make_cnn(4)), [KnowledgeDistillation(make_cnn(8, 5))], x, y)
    with pytest.raises(ValueError, match="temperature"):
        KnowledgeDistillation(teacher, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        KnowledgeDistillation(teacher, alpha=2)
    with pytest.raises(TypeError, match="teacher"):
        KnowledgeDistillation(lambda x: x)


class TurnsManualLate(Classifier):
    """Switches to manual optimisation after the callback's setup, stepping on its own loss."""

    def __init__(self, net, hook):
        super().__init__(net)
        self.hook = hook

    def on_fit_start(self):
        if self.hook == "on_fit_start":
            self.automatic_optimization = False

    def on_train_start(self):
        if self.hook == "on_train_start":
            self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return loss


@pytest.mark.parametrize("hook", ["on_fit_start", "on_train_start"])
def test_manual_optimisation_switched_on_after_setup_is_refused(hook):
    # Lightning ignores the loss a manual step returns: the student would train on its own loss
    # alone while the callback logged distillation terms
    torch.manual_seed(0)
    x, y = make_data(8)
    teacher = make_cnn(8)
    module = TurnsManualLate(make_cnn(4), hook)
    before = state_copy(module)
    with pytest.raises(ValueError, match="automatic optimisation.*TurnsManualLate"):
        _first_step(module, [KnowledgeDistillation(teacher)], x, y)
    assert states_equal(before, state_copy(module))  # refused before the student stepped
    assert "training_step" not in module.__dict__  # the module's own step given back


def test_state_dict_round_trip_warns_on_changed_settings():
    callback = KnowledgeDistillation(make_cnn(4), temperature=3.0, alpha=0.5)
    state = callback.state_dict()
    KnowledgeDistillation(make_cnn(4), temperature=3.0, alpha=0.5).load_state_dict(state)
    with pytest.warns(UserWarning, match="temperature"):
        KnowledgeDistillation(make_cnn(4), temperature=2.0, alpha=0.5).load_state_dict(state)


def test_failed_fit_gives_module_and_teacher_back():
    torch.manual_seed(3)
    x, y = make_data(8)
    teacher = make_cnn(8)
    teacher.train()
    module = Classifier(make_cnn(4), call_inner=True)  # the callback cannot find the logits
    with pytest.raises(ValueError, match="called 0 times"):
        _first_step(module, [KnowledgeDistillation(teacher)], x, y)
    assert "training_step" not in module.__dict__
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_teacher_cast_to_the_module_precision_and_given_back_bit_for_bit(precision):
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 3)
    )
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    teacher(x).sum().backward()  # the teacher holds gradients of the user's own
    grads = [p.grad.clone() for p in teacher.parameters()]
    before = state_copy(teacher)
    weight = teacher[0].weight
    seen = []
    teacher.register_forward_hook(lambda m, a, o: seen.append(o.dtype))
    trainer = quiet_trainer(
        max_epochs=1, precision=precision, callbacks=[KnowledgeDistillation(teacher)]
    )
    trainer.fit(Classifier(torch.nn.Linear(6, 3)), DataLoader(TensorDataset(x, y), batch_size=8))
    expected = torch.float64 if precision == "64-true" else torch.bfloat16
    assert seen and set(seen) == {expected}  # the teacher ran in the module's dtype
    assert states_equal(state_copy(teacher), before)  # and came back in its own, bit for bit
    assert all(v.dtype == before[k].dtype for k, v in teacher.state_dict().items())
    assert teacher[0].weight is weight
    # its gradients too, in its dtype: the user may go on training it
    assert all(p.grad.dtype == p.dtype for p in teacher.parameters())
    assert all(torch.equal(p.grad, g) for p, g in zip(teacher.parameters(), grads))
    torch.optim.Adam(teacher.parameters()).step()


def test_a_forward_or_step_that_writes_its_inputs_in_place_is_refused():
    torch.manual_seed(0)
    x, y = make_data(8)
    net = torch.nn.Sequential(WritesItsInput(), make_cnn(4))
    # the teacher is given the forward's inputs after the forward ran: scaled ones
    with pytest.raises(
        ValueError, match="Classifier's forward or training_step modified its inputs"
    ):
        _first_step(Classifier(net), [KnowledgeDistillation(make_cnn(8))], x, y)

    class WritesAfterForward(Classifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            x.add_(1)
            return F.cross_entropy(logits, y)

    with pytest.raises(ValueError, match="modified its inputs in place"):
        _first_step(WritesAfterForward(make_cnn(4)), [KnowledgeDistillation(make_cnn(8))], x, y)
    # a student that leaves them alone trains as before
    record = _first_step(Classifier(make_cnn(4)), [KnowledgeDistillation(make_cnn(8))], x, y)
    assert torch.isfinite(record.loss)


def test_a_step_may_add_to_its_dict_batch_and_shared_storage_is_named():
    torch.manual_seed(0)
    x, y = make_data(8)

    class DictClassifier(Classifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            inputs = {"x": x}
            logits = self(inputs)
            inputs["prediction"] = logits.argmax(1)  # after the forward: not read by the teacher
            return F.cross_entropy(logits, y)

        def forward(self, d):
            return self.net(d["x"])

    class DictTeacher(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_cnn(8)

        def forward(self, d):
            assert set(d) == {"x"}
            return self.net(d["x"])

    record = _first_step(DictClassifier(make_cnn(4)), [KnowledgeDistillation(DictTeacher())], x, y)
    assert torch.isfinite(record.loss)

    # labels sliced from the same tensor as the inputs share its version counter
    class SharedStorage(Classifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            whole = torch.cat([x.flatten(1), y[:, None].float()], 1)
            inputs, labels = whole[:, :-1].view_as(x), whole[:, -1]
            logits = self(inputs)
            labels.clamp_(0, 2)  # written in place after the forward
            return F.cross_entropy(logits, labels.long())

    with pytest.raises(ValueError, match="sharing their storage.*clone one of them"):
        _first_step(SharedStorage(make_cnn(4)), [KnowledgeDistillation(make_cnn(8))], x, y)


def test_the_teacher_gets_keyword_inputs_as_the_forward_got_them():
    torch.manual_seed(0)
    x, y = make_data(8)
    seen = []

    class KeywordClassifier(Classifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self(batch={"x": x}), y)

        def forward(self, batch):
            logits = self.net(batch["x"])
            batch["x"] = batch["x"] * 100  # rebinds an entry of its own dict
            return logits

    class KeywordTeacher(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_cnn(8)

        def forward(self, batch):
            seen.append(batch["x"])
            return self.net(batch["x"])

    _first_step(KeywordClassifier(make_cnn(4)), [KnowledgeDistillation(KeywordTeacher())], x, y)
    assert torch.equal(seen[0], x)


class SGDClassifier(Classifier):
    """Trains with SGD, which float16 parameters take (Adam's eps is 0 in float16)."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_feature_parts_under_float16_true_precision_are_refused_before_they_are_cast():
    # the parts' own Adam (eps=1e-8, 0 in float16) turned the hint regressor NaN, and the
    # student through it: the fit failed a few steps in, blaming the student's logits
    assert torch.tensor(1e-8, dtype=torch.float16) == 0
    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    student = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    teacher = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    before = state_copy(student)
    hint = FeatureDistillation("net.0", "0", "hint")
    callback = KnowledgeDistillation(teacher, features=[hint], example_input=x[:2])
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    with pytest.raises(
        ValueError,
        match=r"^precision must be '16-mixed' or 'bf16-true' for KnowledgeDistillation's "
        r"feature parts.*is 0 in float16.*got '16-true'",
    ):
        quiet_trainer(precision="16-true", callbacks=[callback]).fit(SGDClassifier(student), loader)
    assert states_equal(state_copy(student), before)  # refused before anything was cast
    # the same callback then trains under a precision whose Adam works, its parts afresh
    quiet_trainer(precision="bf16-true", callbacks=[callback]).fit(SGDClassifier(student), loader)
    parts = list(callback._features.methods.parameters())
    assert parts and all(p.dtype == torch.bfloat16 and bool(p.isfinite().all()) for p in parts)
