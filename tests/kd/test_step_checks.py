"""The value checks of a training step are read in one host sync, and still raise in time."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill._validation import one_sync_per_step, settle_value_checks, value_check
from lightning_distill.losses import kd_loss
from tests.helpers import IndexedDataset, PlainClassifier, make_cnn, make_data, quiet_trainer


class _Reads(L.Callback):
    """Counts ``Tensor.__bool__`` calls (each a host read of a device value) in training steps:
    from the batch's start to the backward pass."""

    def __init__(self):
        self.per_step: list[int] = []
        self._original = torch.Tensor.__bool__

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        count = self.per_step.append(0) or self
        original = self._original

        def counted(tensor):
            count.per_step[-1] += 1
            return original(tensor)

        torch.Tensor.__bool__ = counted

    def on_before_backward(self, trainer, pl_module, loss):
        torch.Tensor.__bool__ = self._original

    def on_exception(self, trainer, pl_module, exception):
        torch.Tensor.__bool__ = self._original


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_kd_step_reads_its_checks_in_one_host_sync(form):
    x, y = make_data(32)
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(6)
    reads = _Reads()
    callbacks = [reads]
    if form == "module":
        module = DistillationModule(student, teacher)
    else:
        module = PlainClassifier(student)
        callbacks.append(KnowledgeDistillation(teacher))
    try:
        quiet_trainer(max_steps=2, callbacks=callbacks).fit(
            module, DataLoader(TensorDataset(x, y), batch_size=16)
        )
    finally:
        torch.Tensor.__bool__ = reads._original
    # teacher logits finite, both logits finite, class indices in range: one read for the three
    assert reads.per_step == [1, 1]


# with the callback, the module's own cross-entropy meets a bad label first (torch's error)
@pytest.mark.parametrize(
    "form, bad", [("module", "targets"), ("module", "teacher"), ("callback", "teacher")]
)
def test_batched_checks_still_raise_their_own_errors(form, bad):
    x, y = make_data(16)
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(6)
    if bad == "targets":
        y[3], match = 7, r"targets must lie in \[0, 2\] for 3 classes; got values in \[0, 7\]"
    else:
        x[2, 0, 0, 0], match = float("nan"), "inputs must be finite in this batch"
    if form == "module":
        module, callbacks = DistillationModule(student, teacher), []
    else:
        module, callbacks = PlainClassifier(student), [KnowledgeDistillation(teacher)]
    with pytest.raises(ValueError, match=match):
        quiet_trainer(max_steps=1, callbacks=callbacks).fit(
            module, DataLoader(TensorDataset(x, y), batch_size=16)
        )


class _MaskLast(torch.nn.Module):
    """A classifier that masks its last class with -inf."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        logits = self.net(x)
        return logits.masked_fill(torch.arange(logits.shape[1]) == logits.shape[1] - 1, -torch.inf)


@pytest.mark.parametrize("form", ["module", "callback"])
@pytest.mark.parametrize("conflict", ["label", "teacher"])
def test_an_infinite_loss_from_a_masked_class_stops_the_fit(form, conflict):
    # a label on a class the student masks, or a teacher that gives it probability: the loss
    # is infinite; the step refuses it (before, train/loss read inf)
    x, y = make_data(16)
    torch.manual_seed(0)
    student, teacher = _MaskLast(make_cnn(4)), make_cnn(6)
    if conflict == "label":
        teacher, match = _MaskLast(teacher), "whose logit is -inf"
    else:
        y, match = y.clamp(max=1), "where the teacher gives probability"
    if form == "module":
        module, callbacks = DistillationModule(student, teacher, alpha=0.5), []
    else:
        module = PlainClassifier(student)
        callbacks = [KnowledgeDistillation(teacher, alpha=0.5)]
    with pytest.raises(ValueError, match=match):
        quiet_trainer(max_steps=1, callbacks=callbacks).fit(
            module, DataLoader(TensorDataset(x, y), batch_size=16)
        )


def test_validation_reports_an_infinite_loss_instead_of_stopping():
    # evaluation reports the model as it is: a validation label on a class the student masks
    # gives val/loss inf beside a valid accuracy (training refuses such a label)
    x, y = make_data(16)
    torch.manual_seed(0)
    student = _MaskLast(make_cnn(4))
    module = DistillationModule(student, _MaskLast(make_cnn(6)), alpha=0.5)
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=1)
    train = DataLoader(TensorDataset(x, y.clamp(max=1)), batch_size=16)
    trainer.fit(module, train, DataLoader(TensorDataset(x, y), batch_size=16))
    assert float(trainer.callback_metrics["val/loss"]) == float("inf")
    with torch.no_grad():
        accuracy = (student(x).argmax(1) == y).float().mean()
    assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(float(accuracy))


def test_value_checks_wait_for_the_scope_and_run_in_order():
    raised = []

    def fails(name):
        def explain():
            raised.append(name)
            raise ValueError(name)

        return explain

    # outside a step: at once
    with pytest.raises(ValueError, match="now"):
        value_check(torch.tensor(True), fails("now"))
    value_check(torch.tensor(False), fails("never"))
    raised.clear()
    # inside: when settled, the first failing check in the order they were made
    with pytest.raises(ValueError, match="second"):
        with one_sync_per_step():
            value_check(torch.tensor(False), fails("first"))
            value_check(torch.tensor(True), fails("second"))
            value_check(torch.tensor(True), fails("third"))
            assert raised == []  # nothing read yet
    assert raised == ["second"]
    # a check whose closer look clears the values (masked -inf logits) lets the others run
    with pytest.raises(ValueError, match="last"):
        with one_sync_per_step():
            value_check(torch.tensor(True), lambda: None)
            value_check(torch.tensor(True), fails("last"))
    # settled checks are not read again, and settling outside a step does nothing
    with one_sync_per_step():
        value_check(torch.tensor(False), fails("x"))
        settle_value_checks()
        settle_value_checks()
    settle_value_checks()


def _crd_spec(n):
    return FeatureDistillation(
        "6", "6", "crd", 1.0, options={"num_samples": n, "num_negatives": 8, "embed_dim": 4}
    )


def test_a_refused_batch_leaves_the_feature_methods_state_and_the_cache_as_they_were():
    x, y = make_data(32)
    x[20, 0, 0, 0] = float("nan")  # in the second batch
    torch.manual_seed(0)
    module = DistillationModule(
        make_cnn(4), make_cnn(6), features=[_crd_spec(32)], example_input=x[:2]
    )
    crd = module.feature_methods["0"]
    with pytest.raises(ValueError, match="inputs must be finite in this batch"):
        quiet_trainer(max_epochs=1).fit(module, DataLoader(IndexedDataset(x, y), batch_size=16))
    # the first batch's update only: one step, banks finite
    assert int(crd.steps) == 1
    assert torch.isfinite(crd.normalizers).all()
    assert torch.isfinite(crd.memory_student).all() and torch.isfinite(crd.memory_teacher).all()

    class NanTeacher(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_cnn(6)

        def forward(self, inputs):
            out = self.net(inputs)
            return torch.where(inputs[:, :1, 0, 0] > 5, float("nan"), out)

    x, y = make_data(32)
    x[20, 0, 0, 0] = 10.0  # finite input, NaN teacher logits
    module = DistillationModule(make_cnn(4), NanTeacher(), cache_teacher=True)
    with pytest.raises(ValueError, match="teacher output must be finite logits"):
        quiet_trainer(max_epochs=1).fit(module, DataLoader(IndexedDataset(x, y), batch_size=16))
    cache = module._teacher_cache
    assert cache._logits is not None and torch.isfinite(cache._logits).all()
    assert len(cache._rows) == 16  # the first batch's samples alone


@pytest.mark.parametrize("form", ["module", "callback"])
@pytest.mark.parametrize("loss", ["attention", "pkt"])
def test_a_feature_loss_does_not_hide_the_check_that_refuses_the_batch(form, loss):
    x, y = make_data(16)
    x[2, 0, 0, 0] = float("nan")
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(6)
    layer = "4" if loss == "attention" else "6"
    if form == "module":
        spec = FeatureDistillation(layer, layer, loss)
        module, callbacks = DistillationModule(student, teacher, alpha=1.0, features=[spec]), []
    else:
        spec = FeatureDistillation(f"net.{layer}", layer, loss)
        callback = KnowledgeDistillation(teacher, alpha=1.0, features=[spec])
        module, callbacks = PlainClassifier(student), [callback]
    with pytest.raises(ValueError, match="inputs must be finite in this batch"):
        quiet_trainer(max_steps=1, callbacks=callbacks).fit(
            module, DataLoader(TensorDataset(x, y), batch_size=16)
        )


def test_the_modules_own_step_keeps_its_checks_under_the_callback():
    # a module that calls a library loss in its own step and handles the error itself
    class Guarded(PlainClassifier):
        def training_step(self, batch, batch_idx):
            logits = self(batch[0])
            try:
                kd_loss(logits, torch.full_like(logits, float("nan")))
                self.caught = False
            except ValueError:
                self.caught = True
            return torch.nn.functional.cross_entropy(logits, batch[1])

    x, y = make_data(16)
    torch.manual_seed(0)
    module = Guarded(make_cnn(4))
    quiet_trainer(max_steps=1, callbacks=[KnowledgeDistillation(make_cnn(6))]).fit(
        module, DataLoader(TensorDataset(x, y), batch_size=16)
    )
    assert module.caught


def test_a_step_error_stands_when_the_flags_cannot_be_read():
    class Unreadable(torch.Tensor):
        def __bool__(self):
            raise RuntimeError("CUDA error: device-side assert triggered")

    def refuse():
        raise ValueError("the check's")

    flag = torch.tensor(True).as_subclass(Unreadable)
    with pytest.raises(KeyError, match="the step's own"):
        with one_sync_per_step():
            value_check(flag, refuse)
            raise KeyError("the step's own")
    # readable flags: the check's error, from the step's
    with pytest.raises(ValueError, match="the check's") as raised:
        with one_sync_per_step():
            value_check(torch.tensor(True), refuse)
            raise KeyError("the step's own")
    assert isinstance(raised.value.__cause__, KeyError)
