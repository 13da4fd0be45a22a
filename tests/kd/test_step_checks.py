"""The value checks of a training step are read in one host sync, and still raise in time."""

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill._validation import (
    check_finite,
    check_finite_deferred,
    one_sync_per_step,
    settle_value_checks,
    value_check,
)
from lightning_distill.losses import kd_loss
from tests.helpers import (
    HostReads,
    IndexedDataset,
    PlainClassifier,
    make_cnn,
    make_data,
    quiet_trainer,
)


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_kd_step_reads_its_checks_in_one_host_sync(form):
    x, y = make_data(32)
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(6)
    reads = HostReads()
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


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_the_deferred_finite_check_waits_for_the_step_and_says_what_check_finite_says(dtype):
    large = torch.full((8,), torch.finfo(dtype).max / 2, dtype=dtype)
    bad = torch.cat([large, torch.tensor([math.nan], dtype=dtype)])
    with pytest.raises(ValueError) as immediate:
        check_finite("x", bad, where="in this batch")
    # outside a step: at once
    with pytest.raises(ValueError) as at_once:
        check_finite_deferred("x", bad, where="in this batch")
    # inside: when the step settles, the same error
    registered = []
    with pytest.raises(ValueError) as deferred:
        with one_sync_per_step():
            check_finite_deferred("x", bad, where="in this batch")
            check_finite_deferred("y", torch.full((3,), math.inf))  # the first failing one wins
            registered.append(True)  # nothing raised yet
    assert registered
    assert str(at_once.value) == str(deferred.value) == str(immediate.value)
    assert str(immediate.value) == "x must be finite in this batch; got NaN or infinite values."
    # finite values whose sum overflows, and integer tensors, pass in both places
    with one_sync_per_step():
        check_finite_deferred("x", large)
        check_finite_deferred("x", torch.tensor([1, 2]))
    check_finite_deferred("x", large)


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


# make_cnn: 0 conv, 1 bn, 2 relu, 3 conv, 4 relu, 5 pool, 6 flatten, 7 linear
_METHOD_LAYER = {
    "ft": "4",
    "crd": "6",
    "sskd": "6",
    "rkd": "6",
    "pkt": "6",
    "attention": "4",
    "hint": "4",
}
_METHOD_OPTIONS = {
    "ft": {"paraphraser_epochs": 1},
    "crd": {"num_samples": 32, "num_negatives": 8, "embed_dim": 4},
    "sskd": {"head_epochs": 1},
}


def _feature_fit(form, name, student, teacher, x, student_layer, teacher_layer):
    """(module, callbacks, the pair's method or None) distilling ``name`` on the layers."""
    options = _METHOD_OPTIONS.get(name)
    if form == "module":
        spec = FeatureDistillation(student_layer, teacher_layer, name, 1.0, options=options)
        module = DistillationModule(student, teacher, features=[spec], example_input=x[:2])
        return module, [], lambda: module.feature_methods["0"] if module.feature_methods else None
    spec = FeatureDistillation(f"net.{student_layer}", teacher_layer, name, 1.0, options=options)
    callback = KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])
    methods = lambda: callback._features.methods  # noqa: E731
    return PlainClassifier(student), [callback], lambda: methods()["0"] if methods() else None


@pytest.mark.parametrize("form", ["module", "callback"])
@pytest.mark.parametrize("name", list(_METHOD_LAYER))
def test_a_feature_methods_step_reads_its_checks_once(form, name):
    # The feature losses' finite checks are read with the step's other checks: a step reads
    # once, as a step without features does; CRD reads them once more, before it changes its
    # banks from the batch (before, FT read 6 or 5 times a step, RKD, PKT and attention 4 or 3)
    x, y = make_data(32)
    torch.manual_seed(0)
    layer = _METHOD_LAYER[name]
    module, callbacks, _ = _feature_fit(form, name, make_cnn(4), make_cnn(6), x, layer, layer)
    reads = HostReads()
    try:
        quiet_trainer(max_steps=2, callbacks=[reads, *callbacks]).fit(
            module, DataLoader(IndexedDataset(x, y), batch_size=16)
        )
    finally:
        torch.Tensor.__bool__ = reads._original
    expected = 2 if name == "crd" else 1
    assert reads.per_step == [expected, expected]


@pytest.mark.parametrize("form", ["module", "callback"])
@pytest.mark.parametrize("name", list(_METHOD_LAYER))
def test_a_feature_methods_step_checks_the_logits_and_labels_once(form, name, monkeypatch):
    # The logits' finiteness and the labels' range are checked ahead of the feature methods
    # (queue_logit_checks); the loss, and SSKD's selection on the rotated copies, did not need
    # to check them again (two reductions more a step, and SSKD's two more)
    from lightning_distill.kd import losses

    checks = {"logits": 0, "targets": 0}
    original = losses.value_check

    def counted(bad, explain):
        if getattr(explain, "func", None) is losses._check_logit_values:
            checks["logits"] += 1
        elif getattr(explain, "__qualname__", "").startswith("_check_targets."):
            checks["targets"] += 1
        original(bad, explain)

    monkeypatch.setattr(losses, "value_check", counted)
    x, y = make_data(32)
    torch.manual_seed(0)
    layer = _METHOD_LAYER[name]
    module, callbacks, _ = _feature_fit(form, name, make_cnn(4), make_cnn(6), x, layer, layer)
    quiet_trainer(max_steps=2, callbacks=callbacks).fit(
        module, DataLoader(IndexedDataset(x, y), batch_size=16)
    )
    assert checks == {"logits": 2, "targets": 2}  # one of each a step


class _Tapped(torch.nn.Module):
    """A make_cnn's logits; ``tap`` outputs a copy of its layer ``layer``'s output (the feature
    distilled), with row 2 NaN (or the logits' row 2) while ``bad`` names it."""

    def __init__(self, net, layer):
        super().__init__()
        self.net, self.tap, self.layer, self.bad = net, torch.nn.Identity(), int(layer), None

    def forward(self, x):
        outputs = []
        hook = self.net[self.layer].register_forward_hook(lambda m, i, out: outputs.append(out))
        try:
            logits = self.net(x)
        finally:
            hook.remove()
        feature = outputs[0]
        if self.bad == "feature":
            feature = feature.clone()
            feature[2] = float("nan")
        elif self.bad == "logits":
            logits = logits.clone()
            logits[2] = float("nan")
        self.tap(feature)
        return logits


class _BadSecondBatch(L.Callback):
    """Arms ``model.bad`` for the second batch, and keeps the feature method's state then."""

    def __init__(self, model, bad, method):
        self.model, self.bad, self.method, self.before = model, bad, method, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.model.bad = self.bad if batch_idx == 1 else None
        method = self.method()
        if batch_idx == 1 and method is not None:
            self.before = {k: v.clone() for k, v in method.state_dict().items()}


@pytest.mark.parametrize("form", ["module", "callback"])
@pytest.mark.parametrize("name", list(_METHOD_LAYER))
@pytest.mark.parametrize("side", ["student", "teacher"])
def test_a_nan_feature_is_refused_by_name_before_the_method_changes_state(form, name, side):
    # a NaN in the distilled feature alone (the logits finite): refused with the feature's
    # name, and the method's state (CRD's banks, normalising constants and step count) as
    # before the batch. Before, CRD refused the NaN scores only after updating its banks with
    # them, and SSKD trained on a NaN loss.
    x, y = make_data(32)
    torch.manual_seed(0)
    student = _Tapped(make_cnn(4), _METHOD_LAYER[name])
    teacher = _Tapped(make_cnn(6), _METHOD_LAYER[name])
    module, callbacks, method = _feature_fit(form, name, student, teacher, x, "tap", "tap")
    bad = _BadSecondBatch(student if side == "student" else teacher, "feature", method)
    argument = "embedding" if name in ("rkd", "pkt") else "feature"
    with pytest.raises(ValueError, match=f"^{side}_{argument} must be finite; got NaN"):
        quiet_trainer(max_epochs=1, callbacks=[bad, *callbacks]).fit(
            module, DataLoader(IndexedDataset(x, y), batch_size=16)
        )
    if bad.before is not None:
        after = method().state_dict()
        assert all(torch.equal(value, after[key]) for key, value in bad.before.items())


# with the callback, the module's own cross-entropy meets a bad label first (torch's error)
@pytest.mark.parametrize(
    "form, bad", [("module", "logits"), ("module", "label"), ("callback", "logits")]
)
def test_a_batch_refused_for_its_logits_or_labels_leaves_crds_state_alone(form, bad):
    # the module ran the feature methods before its logits and labels were checked, so CRD
    # updated its banks from a batch refused for a NaN student logit or a label out of range
    x, y = make_data(32)
    if bad == "label":
        y[20] = 7  # in the second batch
    torch.manual_seed(0)
    student = _Tapped(make_cnn(4), "6")
    module, callbacks, method = _feature_fit(form, "crd", student, make_cnn(6), x, "tap", "6")
    keep = _BadSecondBatch(student, "logits" if bad == "logits" else None, method)
    match = "student_logits must be finite logits" if bad == "logits" else "targets must lie in"
    with pytest.raises(ValueError, match=match):
        quiet_trainer(max_epochs=1, callbacks=[keep, *callbacks]).fit(
            module, DataLoader(IndexedDataset(x, y), batch_size=16)
        )
    after = method().state_dict()
    assert int(after["steps"]) == 1
    assert all(torch.equal(value, after[key]) for key, value in keep.before.items())


class _HostWaits(torch.utils._python_dispatch.TorchDispatchMode):
    """The operators that make the host wait for a GPU (their result's size or value is read
    on the host): a boolean-mask selection (``nonzero``/``masked_select``, an ``index`` by a
    bool tensor), a scalar read, ``unique``. On the CPU nothing waits, but they are dispatched
    the same, so they can be caught here."""

    WAITING = ("nonzero", "masked_select", "_local_scalar_dense", "unique", "item")

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        boolean_index = name == "index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ())
        )
        if boolean_index or any(name.startswith(w) for w in self.WAITING):
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))


def _feature_loss_cases():
    from lightning_distill.kd.feature_losses import (
        dkd_loss,
        factor_transfer_loss,
        pkt_loss,
        rkd_loss,
    )
    from lightning_distill.losses import attention_transfer_loss, hint_loss

    return {
        "rkd": lambda s, t, y: rkd_loss(s.flatten(1), t.flatten(1)),
        "pkt": lambda s, t, y: pkt_loss(s.flatten(1), t.flatten(1)),
        "dkd": lambda s, t, y: dkd_loss(s.flatten(1)[:, :5], t.flatten(1)[:, :5], y),
        "attention": lambda s, t, y: attention_transfer_loss(s, t, variant="paper"),
        "factor_transfer": lambda s, t, y: factor_transfer_loss(s, t),
        "hint": lambda s, t, y: hint_loss(s, t, torch.nn.Conv2d(4, 4, 1)),
    }


@pytest.mark.parametrize("name", sorted(_feature_loss_cases()))
def test_a_feature_loss_makes_the_host_wait_for_nothing_inside_a_step(name):
    # inside a training step the checks wait for the step's one read; the loss itself selects
    # nothing by a boolean mask and reads no value back (each a device wait on a GPU; RKD's
    # off-diagonal mean and DKD's target / other-class split were boolean-mask selections)
    torch.manual_seed(0)
    student = torch.randn(8, 4, 3, 3, requires_grad=True)
    teacher = torch.randn(8, 4, 3, 3)
    targets = torch.randint(0, 5, (8,))
    loss = _feature_loss_cases()[name]
    waits = _HostWaits()
    with one_sync_per_step():
        with waits:
            value = loss(student, teacher, targets)
            value.backward()
    # DKD reads its class indices' range check at once: the device must not meet an index out
    # of range (CUDA answers with a device-side assert); nothing else
    allowed = ["_local_scalar_dense.default"] if name == "dkd" else []
    assert waits.seen == allowed
    assert torch.isfinite(value) and student.grad is not None


def test_crd_counts_the_rows_of_a_refused_batch_nowhere():
    # the bank-coverage count had taken a refused batch's rows as written: two refused
    # batches of four rows warned that 4 of 8 rows were written, with none written at all
    import warnings

    from lightning_distill.kd.feature_losses import CRD, FeatureContext

    torch.manual_seed(0)
    crd = CRD(4, 4, num_samples=8, embed_dim=3, num_negatives=4).train()
    banks = crd.memory_student.clone(), crd.memory_teacher.clone()
    feature = torch.randn(4, 4)
    bad = feature.clone()
    bad[0, 0] = math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with pytest.raises(ValueError, match="student_feature must be finite"):
                with one_sync_per_step():
                    crd(bad, feature, FeatureContext(index=torch.arange(4)))
        assert int(crd.steps) == 0
        assert torch.equal(crd.memory_student, banks[0])
        assert torch.equal(crd.memory_teacher, banks[1])
        for start in (0, 4):
            with one_sync_per_step():
                crd(feature, feature, FeatureContext(index=torch.arange(start, start + 4)))
    assert int(crd.steps) == 2
    assert not torch.equal(crd.memory_student, banks[0])
    # no coverage warning: each of the 8 rows written is its own sample's
    assert not [w for w in caught if "bank rows" in str(w.message)]
