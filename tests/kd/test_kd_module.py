import copy
import dataclasses
import functools
import io
import warnings

import lightning as L
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill.losses import attention_transfer_loss, distillation_terms, hint_loss
from tests.helpers import (
    IndexedDataset,
    PlainClassifier,
    RecordingLinear,
    Recurrent,
    WritesItsInput,
    make_cnn,
    make_data,
    quiet_trainer,
    shuffled_loader,
    state_copy,
    states_equal,
)


@pytest.fixture
def models():
    torch.manual_seed(0)
    return make_cnn(4), make_cnn(8)


def test_teacher_bit_identical_eval_throughout_and_flags_restored(models):
    student, teacher = models
    teacher.train()  # the user's mode, restored after the fit
    teacher_before = state_copy(teacher)  # BatchNorm buffers included
    student_before = state_copy(student)
    x, y = make_data()
    module = DistillationModule(student, teacher)
    modes = []

    class RecordTeacherMode(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append(pl_module.teacher.training)
            assert not any(p.requires_grad for p in pl_module.teacher.parameters())

        def on_after_backward(self, trainer, pl_module):
            assert all(p.grad is None for p in pl_module.teacher.parameters())

    trainer = quiet_trainer(max_epochs=2, callbacks=[RecordTeacherMode()])
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer.fit(module, loader, loader)
    assert modes and not any(modes)
    assert states_equal(teacher_before, state_copy(teacher))
    assert teacher.training  # mode given back after the fit
    assert all(p.requires_grad for p in teacher.parameters())
    assert not states_equal(student_before, state_copy(student))


def test_gradients_the_user_left_in_the_teacher_survive_fit_and_validate(models):
    # a Trainer clears the module's gradients before every run and validation; the teacher's
    # are the user's (here from their own backward pass) and stay
    student, teacher = models
    x, y = make_data()
    teacher(x).logsumexp(1).sum().backward()
    grads = [p.grad.clone() for p in teacher.parameters()]
    module = DistillationModule(student, teacher)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, loader, loader)
    trainer.validate(module, loader, verbose=False)
    assert all(torch.equal(p.grad, g) for p, g in zip(teacher.parameters(), grads))
    # the student's are cleared as usual
    assert all(p.grad is None for p in student.parameters())
    module.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, g) for p, g in zip(teacher.parameters(), grads))


def test_logs_losses_and_validation_metrics(models):
    student, teacher = models
    x, y = make_data()
    module = DistillationModule(
        student, teacher, features=[FeatureDistillation("3", "3", "attention", 10.0)]
    )
    trainer = quiet_trainer(max_epochs=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    trainer.fit(module, loader, loader)
    metrics = trainer.callback_metrics
    for key in ("train/loss", "train/loss_ce", "train/loss_kd", "train/loss_feature"):
        assert key in metrics
    student.eval(), teacher.eval()
    with torch.no_grad():
        s_pred, t_pred = student(x).argmax(1), teacher(x).argmax(1)
    assert metrics["val/acc"].item() == pytest.approx((s_pred == y).float().mean().item())
    assert metrics["val/teacher_agreement"].item() == pytest.approx(
        (s_pred == t_pred).float().mean().item()
    )


def test_training_loss_equals_formula_with_features(models):
    student, teacher = models
    x, y = make_data(8)
    specs = [
        FeatureDistillation("3", "3", "attention", 2.0, variant="paper"),
        FeatureDistillation("4", "4", "hint", 0.5),
    ]
    module = DistillationModule(
        student,
        teacher,
        temperature=3.0,
        alpha=0.6,
        label_smoothing=0.1,
        features=specs,
        example_input=x[:2],
    )
    module.train()
    teacher_before = state_copy(teacher)
    loss = module.training_step((x, y), 0)
    # the teacher ran frozen (eval mode: its BatchNorm statistics did not move) and is given back
    assert teacher.training and states_equal(teacher_before, state_copy(teacher))
    # reference: run the layers by hand, the teacher in eval mode
    teacher.eval()
    s_feat3 = student[:4](x)
    s_feat4 = student[4](s_feat3)
    t_feat3 = teacher[:4](x)
    t_feat4 = teacher[4](t_feat3)
    total, _, _ = distillation_terms(student(x), teacher(x).detach(), y, 3.0, 0.6, 0.1)
    expected = (
        total
        + 2.0 * attention_transfer_loss(s_feat3, t_feat3.detach(), variant="paper")
        + 0.5 * hint_loss(s_feat4, t_feat4.detach(), module.hint_regressors["1"])
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert module.hint_regressors["1"].map.weight.grad.abs().sum() > 0
    optimized = {
        id(p) for group in module.configure_optimizers().param_groups for p in group["params"]
    }
    assert all(id(p) in optimized for p in module.hint_regressors.parameters())
    assert not any(id(p) in optimized for p in teacher.parameters())


def _gap(s, t):
    return (s.mean() - t.mean()) ** 2


def test_features_of_a_recurrent_layer_by_element():
    # a layer that returns (output, state) was refused, and wrapping it was the only way
    torch.manual_seed(0)
    student, teacher = Recurrent(4), Recurrent(6)
    x, y = torch.randn(8, 5, 3), torch.randint(0, 3, (8,))
    specs = [
        FeatureDistillation("rnn[0]", "rnn[0]", "hint", 0.5),
        FeatureDistillation("rnn[1]", "rnn[1]", _gap, 2.0),
    ]
    module = DistillationModule(
        student, teacher, temperature=2.0, alpha=0.5, features=specs, example_input=x[:2]
    )
    loss = module.training_step((x, y), 0)
    s_sequence, s_state = student.rnn(x)
    t_sequence, t_state = teacher.rnn(x)
    total, _, _ = distillation_terms(student(x), teacher(x).detach(), y, 2.0, 0.5)
    expected = (
        total
        + 0.5 * hint_loss(s_sequence, t_sequence.detach(), module.hint_regressors["0"])
        + 2.0 * _gap(s_state, t_state.detach())
    )
    torch.testing.assert_close(loss, expected)
    # the callback takes the same names (the student's under the LightningModule's)
    losses = []

    class First(L.Callback):
        def on_before_backward(self, trainer, pl_module, loss):
            losses.append(loss.detach().clone())

    callback = KnowledgeDistillation(
        teacher,
        temperature=2.0,
        alpha=0.5,
        features=[FeatureDistillation("net.rnn[1]", "rnn[1]", _gap, 2.0)],
    )
    quiet_trainer(max_steps=1, callbacks=[callback, First()]).fit(
        PlainClassifier(student), DataLoader(TensorDataset(x, y), batch_size=8)
    )
    torch.testing.assert_close(losses[0], total + 2.0 * _gap(s_state, t_state).detach())


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_recurrent_hidden_state_is_refused_by_losses_that_read_samples(form):
    # "rnn[1]" is [num_layers, B, H]: PKT computed its value over 1 "sample" without a word
    torch.manual_seed(0)
    student, teacher = Recurrent(4), Recurrent(6)
    x, y = torch.randn(8, 5, 3), torch.randint(0, 3, (8,))
    prefix = "" if form == "module" else "net."
    spec = FeatureDistillation(prefix + "rnn[1]", "rnn[1]", "pkt")
    match = r"'(net\.)?rnn\[1\]' must give a batch-first feature for loss='pkt'.*batch's 8; got shape \(1, 8, [46]\)"
    if form == "module":
        module = DistillationModule(student, teacher, features=[spec])
        with pytest.raises(ValueError, match=match):
            module.training_step((x, y), 0)
    else:
        callback = KnowledgeDistillation(teacher, features=[spec])
        with pytest.raises(ValueError, match=match):
            quiet_trainer(max_steps=1, callbacks=[callback]).fit(
                PlainClassifier(student), DataLoader(TensorDataset(x, y), batch_size=8)
            )


def test_checkpoint_leaves_teacher_out_and_resume_matches_uninterrupted(models, tmp_path):
    student, teacher = models
    x, y = make_data(64)
    val = DataLoader(TensorDataset(x, y), batch_size=32)

    def run(max_epochs, student, ckpt_path=None, save_to=None):
        L.seed_everything(0)
        module = DistillationModule(student, teacher, lr=1e-2)
        trainer = quiet_trainer(max_epochs=max_epochs)
        trainer.fit(module, shuffled_loader(x, y), val, ckpt_path=ckpt_path)
        if save_to is not None:
            trainer.save_checkpoint(save_to)
        return module

    initial = state_copy(student)
    full = run(4, copy.deepcopy(student))

    first_student = copy.deepcopy(student)
    first_student.load_state_dict(initial)
    ckpt = tmp_path / "half.ckpt"
    half = run(2, first_student, save_to=ckpt)
    assert not states_equal(state_copy(half.student), state_copy(full.student))
    stored = torch.load(ckpt, weights_only=False)["state_dict"]
    assert not any(k.startswith("teacher.") for k in stored)
    assert any(k.startswith("student.") for k in stored)

    resumed_student = copy.deepcopy(student)
    resumed_student.load_state_dict(initial)
    resumed = run(4, resumed_student, ckpt_path=ckpt)
    assert states_equal(state_copy(full.student), state_copy(resumed.student))

    # load_from_checkpoint takes the modules again and keeps the hyperparameters
    restored = DistillationModule.load_from_checkpoint(
        ckpt, student=copy.deepcopy(student), teacher=teacher
    )
    assert restored.hparams.lr == 1e-2 and restored.hparams.temperature == 4.0


def test_keep_teacher_in_checkpoint(models, tmp_path):
    student, teacher = models
    x, y = make_data(16)
    module = DistillationModule(student, teacher, keep_teacher_in_checkpoint=True)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    stored = torch.load(tmp_path / "m.ckpt", weights_only=False)["state_dict"]
    assert any(k.startswith("teacher.") for k in stored)

    # loading writes the stored weights into the teacher given: a fresh instance is rebuilt
    fresh = copy.deepcopy(teacher)
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    restored = DistillationModule.load_from_checkpoint(
        tmp_path / "m.ckpt", student=copy.deepcopy(student), teacher=fresh
    )
    assert restored.teacher is fresh
    assert states_equal(state_copy(fresh), state_copy(teacher))


def test_cache_teacher_reuses_outputs_and_matches_uncached():
    torch.manual_seed(0)
    student, teacher = make_cnn(4, batch_norm=False), make_cnn(8, batch_norm=False)
    x, y = make_data(48)
    calls = []
    teacher.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))

    cached_student = copy.deepcopy(student)
    cached = DistillationModule(cached_student, teacher, cache_teacher=True)
    loader = DataLoader(IndexedDataset(x, y), batch_size=16, shuffle=True)
    quiet_trainer(max_epochs=3).fit(cached, loader)
    assert sum(calls) == 48  # each sample once, in the first epoch only

    # same order of batches without the cache gives the same weights
    plain = DistillationModule(copy.deepcopy(student), teacher)
    sequential = DataLoader(TensorDataset(x, y), batch_size=16)
    indexed = DataLoader(IndexedDataset(x, y), batch_size=16)
    cached2 = DistillationModule(copy.deepcopy(student), teacher, cache_teacher=True)
    quiet_trainer(max_epochs=2).fit(plain, sequential)
    quiet_trainer(max_epochs=2).fit(cached2, indexed)
    for a, b in zip(plain.student.parameters(), cached2.student.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_cache_teacher_keeps_float64_logits():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(6, 3).double(), torch.nn.Linear(6, 3).double()
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    batch = (x, y, torch.arange(8))
    cached = DistillationModule(student, teacher, cache_teacher=True, temperature=1.0)
    plain = DistillationModule(student, teacher, temperature=1.0)
    first = cached.training_step(batch, 0)
    again = cached.training_step(batch, 1)  # from the cache
    expected = plain.training_step((x, y), 0)
    assert first.dtype == again.dtype == torch.float64
    assert float(first) == float(expected) and float(again) == float(expected)


def test_cache_teacher_needs_index():
    student, teacher = make_cnn(4), make_cnn(8)
    x, y = make_data(8)
    module = DistillationModule(student, teacher, cache_teacher=True)
    with pytest.raises(ValueError, match="index"):
        module.training_step((x, y), 0)


def test_baselines_without_teacher(models):
    student, _ = models
    x, y = make_data(8)
    module = DistillationModule(student, None, alpha=0.0, label_smoothing=0.2)
    loss = module.training_step((x, y), 0)
    torch.testing.assert_close(
        loss, nn.functional.cross_entropy(student(x), y, label_smoothing=0.2)
    )


def test_teaching_assistant_chain():
    """A trained student can be the next teacher."""
    torch.manual_seed(0)
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    teacher, assistant, student = make_cnn(8), make_cnn(6), make_cnn(4)
    quiet_trainer(max_epochs=1).fit(DistillationModule(assistant, teacher), loader)
    assistant_after = state_copy(assistant)
    quiet_trainer(max_epochs=1).fit(DistillationModule(student, assistant), loader)
    assert states_equal(assistant_after, state_copy(assistant))


def test_lightning_cli_builds_module(monkeypatch):
    monkeypatch.setattr("sys.argv", ["cli"])
    from lightning.pytorch.cli import LightningCLI

    config = {
        "model": {
            "student": {
                "class_path": "torch.nn.Linear",
                "init_args": {"in_features": 4, "out_features": 3},
            },
            "teacher": {
                "class_path": "torch.nn.Linear",
                "init_args": {"in_features": 4, "out_features": 3},
            },
            "temperature": 2.0,
            "alpha": 0.5,
            # constraints from a config: built, not handed over as dicts
            "constraints": [
                {"class_path": "lightning_distill.L1Sparsity", "init_args": {"weight": 0.01}},
                {
                    "class_path": "lightning_distill.Monotonic",
                    "init_args": {"feature": 0, "direction": -1, "weight": 2.0},
                },
            ],
        },
        "trainer": {"logger": False, "enable_checkpointing": False},
    }
    cli = LightningCLI(DistillationModule, run=False, args=config, save_config_callback=None)
    assert isinstance(cli.model, DistillationModule)
    assert cli.model.hparams.temperature == 2.0 and cli.model.hparams.alpha == 0.5
    l1, monotonic = cli.model.constraints
    assert type(l1).__name__ == "L1Sparsity" and l1.weight == 0.01
    assert type(monotonic).__name__ == "Monotonic" and monotonic.direction == -1
    assert "student" not in cli.model.hparams and "teacher" not in cli.model.hparams


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -2}, ValueError, "temperature"),
        ({"alpha": 1.2}, ValueError, "alpha"),
        ({"alpha": -0.5}, ValueError, "alpha"),
        ({"label_smoothing": 3}, ValueError, "label_smoothing"),
        ({"features": [("nope", "3")]}, ValueError, "no submodule named 'nope'"),
        ({"features": [("3", "missing")]}, ValueError, "no submodule named 'missing'"),
        ({"features": [("3", "3", "hint")]}, ValueError, "example_input"),
        ({"features": [("3", "3", "cosine")]}, ValueError, "loss must be one of"),
        ({"features": [("3", "3")], "cache_teacher": True}, ValueError, "cache_teacher"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
    ],
)
def test_bad_arguments(models, kwargs, error, match):
    student, teacher = models
    with pytest.raises(error, match=match):
        DistillationModule(student, teacher, **kwargs)


def test_bad_models_and_batches(models):
    student, teacher = models
    with pytest.raises(ValueError, match="same object"):
        DistillationModule(student, student)
    with pytest.raises(TypeError, match="student"):
        DistillationModule("model", teacher)
    with pytest.raises(ValueError, match="alpha must be 0 without a teacher"):
        DistillationModule(student)
    module = DistillationModule(student, make_cnn(8, num_classes=5))
    x, y = make_data(4)
    with pytest.raises(ValueError, match="same number of classes"):
        module.training_step((x, y), 0)
    # validation and test compare the two models' predictions: refused alike
    for step in (module.validation_step, module.test_step):
        with pytest.raises(ValueError, match=r"got 3 \(student\) and 5 \(teacher\)"):
            step((x, y), 0)
    module = DistillationModule(student, teacher)
    with pytest.raises(ValueError, match="targets must lie"):
        module.training_step((x, y + 3), 0)
    # a bare tensor of inputs: no labels for the hard-label term alpha=0.9 weights
    with pytest.raises(ValueError, match="targets must be given while alpha=0.9"):
        module.training_step(x, 0)
    with pytest.raises(ValueError, match="batch must be"):
        module.training_step((x, y, y, y), 0)


def test_a_third_batch_element_that_is_no_index_is_refused_not_dropped(models):
    # sample weights or a mask in a batch's third place would be read as nothing at all
    student, teacher = models
    module = DistillationModule(student, teacher)
    x, y = make_data(8)
    for third, got in (
        (torch.rand(8), r"torch.float32 tensor of shape \(8,\)"),
        (torch.ones(8, 2, dtype=torch.long), r"torch.int64 tensor of shape \(8, 2\)"),
        (torch.ones(8, dtype=torch.bool), "torch.bool"),
        ([0.5] * 8, "list"),
    ):
        for step in (module.training_step, module.validation_step):
            with pytest.raises(TypeError, match=f"index must be a 1-D integer tensor.*got a {got}"):
                step((x, y, third), 0)
        with pytest.raises(TypeError, match="sample weights and masks are not read"):
            module.training_step({"x": x, "y": y, "index": third}, 0)
    # an integer index is the documented third element, read or not
    assert torch.isfinite(module.training_step((x, y, torch.arange(8)), 0))


def test_hint_regressor_setup_leaves_teacher_mode_alone(models):
    student, teacher = models
    teacher.train()
    x, y = make_data(16)
    module = DistillationModule(
        student, teacher, features=[("4", "4", "hint")], example_input=x[:2]
    )
    assert teacher.training  # the shape probe ran the teacher in eval mode, then gave it back
    quiet_trainer(max_epochs=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    assert teacher.training


def test_cache_teacher_starts_empty_in_every_fit():
    torch.manual_seed(0)
    student, teacher = make_cnn(4, batch_norm=False), make_cnn(8, batch_norm=False)
    module = DistillationModule(student, teacher, cache_teacher=True)
    calls = []
    teacher.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    for seed in (1, 2):  # same indices, other samples: the first fit's logits must not be reused
        x, y = make_data(16, seed=seed)
        quiet_trainer(max_epochs=2).fit(module, DataLoader(IndexedDataset(x, y), batch_size=8))
    assert sum(calls) == 32


class _Ids(IndexedDataset):
    """Sample ids (a database's, say) in place of positions."""

    def __init__(self, x, y, offset):
        super().__init__(x, y)
        self.offset = offset

    def __getitem__(self, i):
        x, y, i = super().__getitem__(i)
        return x, y, i + self.offset


@pytest.mark.parametrize("offset", [20_000_000, 10**15, -(10**12)])
def test_cache_teacher_takes_sample_ids_in_memory_that_follows_the_samples(offset):
    # ids in place of positions took a slot per position up to the largest id (1.1 GB of cache
    # for 8 samples with ids of 2e7; ids of 1e15 failed in torch's allocator)
    torch.manual_seed(0)
    x, y = make_data(16)
    flat = x.flatten(1)
    student, teacher = nn.Linear(36, 3), nn.Linear(36, 3)
    runs = {}
    for name, dataset in (("ids", _Ids(flat, y, offset)), ("positions", IndexedDataset(flat, y))):
        calls = []
        handle = teacher.register_forward_hook(lambda m, a, o, calls=calls: calls.append(len(a[0])))
        module = DistillationModule(copy.deepcopy(student), teacher, cache_teacher=True)
        quiet_trainer(max_epochs=3).fit(module, DataLoader(dataset, batch_size=8))
        handle.remove()
        runs[name] = module
        assert sum(calls) == 16  # each sample's logits once
        assert module._teacher_cache._logits.shape[0] == 16  # a row per sample
    for a, b in zip(runs["ids"].student.parameters(), runs["positions"].student.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_cache_teacher_tables_end_at_the_training_set_size():
    # grown geometrically, they ended at up to twice the samples (128 rows for 100 here)
    torch.manual_seed(0)
    x, y = make_data(100)
    flat = x.flatten(1)
    module = DistillationModule(nn.Linear(36, 3), nn.Linear(36, 3), cache_teacher=True)
    quiet_trainer(max_epochs=2).fit(module, DataLoader(IndexedDataset(flat, y), batch_size=16))
    assert module._teacher_cache._logits.shape[0] == 100
    # without a length to go by (an iterable dataset), they still grow as samples come
    from lightning_distill.kd._cache import TeacherLogitCache

    cache = TeacherLogitCache()
    for start in range(0, 100, 16):
        index = torch.arange(start, min(start + 16, 100))
        cache.lookup(flat[index], index, lambda v: v[:, :3])
    assert cache._logits.shape[0] == 128


def test_cache_teacher_refuses_a_boolean_index():
    x, y = make_data(4)
    module = DistillationModule(make_cnn(4), make_cnn(8), cache_teacher=True)
    with pytest.raises(TypeError, match="index must be a 1-D integer tensor"):
        module.training_step((x, y, torch.tensor([True, False, True, True])), 0)


class _NoisyIndexed(IndexedDataset):
    """Random augmentation in the data set: another input under the same index every epoch."""

    def __getitem__(self, i):
        x, y, i = super().__getitem__(i)
        return x + 0.1 * torch.randn_like(x), y, i


class _BatchPositions(IndexedDataset):
    """A common mistake: the 'index' counts positions within a batch of 8."""

    def __getitem__(self, i):
        x, y, _ = super().__getitem__(i)
        return x, y, i % 8


@pytest.mark.parametrize("dataset", [_NoisyIndexed, _BatchPositions])
def test_cache_teacher_refuses_inputs_that_change_under_an_index(dataset):
    # before, the student was silently given the logits of another input
    torch.manual_seed(0)
    student, teacher = make_cnn(4, batch_norm=False), make_cnn(8, batch_norm=False)
    module = DistillationModule(student, teacher, cache_teacher=True)
    x, y = make_data(16)
    loader = DataLoader(dataset(x, y), batch_size=8)
    with pytest.raises(ValueError, match=r"cache_teacher=True needs each sample's input.*index"):
        quiet_trainer(max_epochs=2).fit(module, loader)


def test_cache_teacher_fingerprints_each_input():
    torch.manual_seed(0)
    student, teacher = nn.Linear(6, 3), nn.Linear(6, 3)
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    module = DistillationModule(student.double(), teacher.double(), cache_teacher=True)
    module.training_step((x, y, torch.arange(8)), 0)
    # the same samples in another order and batch size: from the cache, not refused
    module.training_step((x[[5, 2, 7]], y[[5, 2, 7]], torch.tensor([5, 2, 7])), 1)
    # a sample drawn twice (a sampler with replacement) is one input under one index
    module.training_step((x[[4, 4]], y[[4, 4]], torch.tensor([4, 4])), 2)
    # a change in one value of one sample, far below the values' scale, is seen
    changed = x.clone()
    changed[3, 5] += 1e-6
    with pytest.raises(ValueError, match=r"input of index 3 differs.*1 of 8 samples"):
        module.training_step((changed, y, torch.arange(8)), 3)
    # two other samples given one index in a new batch
    with pytest.raises(ValueError, match="input of index 9 differs"):
        module.training_step((x[:2], y[:2], torch.tensor([9, 9])), 4)
    with pytest.raises(ValueError, match="index must hold one index per sample; got 3 for"):
        module.training_step((x[:4], y[:4], torch.arange(3)), 5)


def _bag() -> nn.Module:
    """A token classifier: [B, T] ids (0 the padding) -> [B, 3] logits."""
    return nn.EmbeddingBag(10, 3, padding_idx=0, mode="sum")


def test_cache_teacher_takes_padded_samples_and_empty_batches():
    # token ids padded per batch: a sample is padded to another length in another batch
    torch.manual_seed(0)
    module = DistillationModule(_bag(), _bag(), cache_teacher=True)
    short = torch.tensor([[3, 4, 0], [5, 0, 0]])
    y = torch.tensor([0, 1])
    module.training_step((short, y, torch.tensor([0, 1])), 0)
    padded = torch.tensor([[3, 4, 0, 0, 0], [5, 0, 0, 0, 0]])
    module.training_step((padded, y, torch.tensor([0, 1])), 1)
    with pytest.raises(ValueError, match="input of index 1 differs"):
        module.training_step((torch.tensor([[3, 4, 0], [6, 0, 0]]), y, torch.tensor([0, 1])), 2)
    # padded longer than when cached: compared over the cached length, so an index that
    # counts positions within the batch is refused whatever the batches' padded lengths
    with pytest.raises(ValueError, match="input of index 0 differs"):
        module.training_step((torch.tensor([[7, 2, 1, 0, 0, 0]] * 2), y, torch.tensor([0, 1])), 2)
    # padded shorter: cannot be compared; its shorter form is what later batches are held to
    module.training_step((torch.tensor([[3, 4], [5, 0]]), y, torch.tensor([0, 1])), 2)
    module.training_step((torch.tensor([[3, 4, 0, 0], [5, 0, 0, 0]]), y, torch.tensor([0, 1])), 2)
    with pytest.raises(ValueError, match="input of index 1 differs"):
        module.training_step(
            (torch.tensor([[3, 4, 0, 0], [5, 9, 0, 0]]), y, torch.tensor([0, 1])), 2
        )
    # an empty batch is refused by the loss, by name, not by the cache's arithmetic
    with pytest.raises(ValueError, match="student_logits must hold at least one sample"):
        module.training_step((short[:0], y[:0], torch.tensor([], dtype=torch.long)), 3)


def test_cache_teacher_compares_tokens_padded_at_either_end_and_takes_tuple_inputs():
    torch.manual_seed(0)
    y, index = torch.tensor([0, 1]), torch.tensor([0, 1])
    module = DistillationModule(_bag(), _bag(), cache_teacher=True)
    module.training_step((torch.tensor([[0, 3, 4], [0, 0, 5]]), y, index), 0)
    module.training_step((torch.tensor([[0, 0, 3, 4], [0, 0, 0, 5]]), y, index), 1)  # left
    with pytest.raises(ValueError, match="input of index 1 differs"):
        module.training_step((torch.tensor([[0, 0, 3, 4], [0, 0, 0, 6]]), y, index), 2)
    # padded shorter: not comparable, but one index held by two other samples is refused
    with pytest.raises(ValueError, match="input of index 1 differs"):
        module.training_step((torch.tensor([[3, 4], [5, 6]]), y, torch.tensor([1, 1])), 3)

    class Signal(nn.Module):  # [B, C, L] padded along L, or a tuple of two inputs
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 3)

        def forward(self, x):
            if isinstance(x, tuple):
                return self.linear(x[0].sum(2)) + self.linear(x[1])
            return self.linear(x.sum(2))

    # signals padded along their last axis: their padding lies within the flattened sample,
    # so they are not compared (the same samples padded further are not refused)
    signal = torch.randn(2, 2, 3)
    module = DistillationModule(Signal(), Signal(), cache_teacher=True)
    module.training_step((signal, y, index), 0)
    module.training_step((torch.cat([signal, torch.zeros(2, 2, 2)], dim=2), y, index), 1)
    # a tuple of inputs: rows picked from each, every input fingerprinted
    module = DistillationModule(Signal(), Signal(), cache_teacher=True)
    extra = torch.randn(2, 2)
    module.training_step(((signal, extra), y, index), 0)
    module.training_step(((signal, extra), y, index), 1)
    with pytest.raises(ValueError, match="input of index 0 differs"):
        module.training_step(
            ((signal, extra + torch.tensor([[1.0, 0.0], [0.0, 0.0]])), y, index), 2
        )


def test_cache_teacher_refuses_sequence_first_inputs():
    class SequenceFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):  # [T, B, F] -> [B, classes]
            return self.linear(x.mean(0))

    module = DistillationModule(SequenceFirst(), SequenceFirst(), cache_teacher=True)
    x, y = torch.randn(5, 2, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="first dimension is the batch's.*5 rows for 2 rows"):
        module.training_step((x, y, torch.tensor([0, 1])), 0)


def test_epoch_means_count_samples_for_sequence_first_and_tuple_inputs():
    # the number of samples is the logits' rows, not the inputs' first dimension
    class SequenceFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):  # ([T, B, F], [B, F]) -> [B, classes]
            return self.linear(x[0].mean(0) + x[1])

    class Batches(torch.utils.data.Dataset):  # batches of 3 then 1 samples, 2 then 9 steps
        def __len__(self):
            return 2

        def __getitem__(self, i):
            steps, rows = (2, 3) if i == 0 else (9, 1)
            gen = torch.Generator().manual_seed(i)
            x = (torch.randn(steps, rows, 4, generator=gen), torch.randn(rows, 4, generator=gen))
            return x, torch.randint(0, 3, (rows,), generator=gen)

    torch.manual_seed(0)
    module = DistillationModule(SequenceFirst(), SequenceFirst())
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append((float(outputs["loss"]), len(batch[1])))

    loader = DataLoader(Batches(), batch_size=None)
    trainer = quiet_trainer(max_epochs=1, callbacks=[Record()])
    trainer.fit(module, loader)
    expected = sum(loss * n for loss, n in losses) / sum(n for _, n in losses)
    assert float(trainer.callback_metrics["train/loss_epoch"]) == pytest.approx(expected)


def test_cache_teacher_fingerprints_every_input_of_a_dict():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.left, self.right = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.left(x["left"]) + self.right(x["right"])

    torch.manual_seed(0)
    left, right, y = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 3, (6,))
    module = DistillationModule(Two(), Two(), cache_teacher=True)
    module.training_step(({"left": left, "right": right}, y, torch.arange(6)), 0)
    module.training_step(({"left": left, "right": right}, y, torch.arange(6)), 1)
    with pytest.raises(ValueError, match="input of index 0 differs"):
        module.training_step(({"left": left, "right": right.flip(0)}, y, torch.arange(6)), 2)


def test_optimizer_callable_that_cannot_be_pickled(models):
    student, teacher = models
    x, y = make_data(16)
    module = DistillationModule(
        student, teacher, optimizer=lambda params: torch.optim.SGD(params, lr=0.5)
    )
    trainer = quiet_trainer(max_epochs=1)
    # code is kept out of the hyperparameters (a checkpoint loaded with weights_only=True
    # cannot hold it), so Lightning has nothing to warn about
    assert module.hparams.optimizer is None
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*cannot be pickled")
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    (optimizer,) = trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.5


def test_predict_step_takes_tuple_dict_and_tensor_batches(models):
    student, teacher = models
    module = DistillationModule(student, teacher).eval()
    x, y = make_data(4)
    expected = student(x)
    for batch in ((x, y), {"inputs": x, "targets": y}, x):
        torch.testing.assert_close(module.predict_step(batch, 0), expected)


def test_failed_fit_gives_teacher_back(models):
    student, teacher = models
    teacher.train()
    x, y = make_data(16)
    module = DistillationModule(student, teacher)
    loader = DataLoader(TensorDataset(x, y + 10), batch_size=16)  # targets out of range
    with pytest.raises(ValueError, match="targets must lie"):
        quiet_trainer(max_epochs=1).fit(module, loader)
    assert teacher.training
    assert all(p.requires_grad for p in teacher.parameters())


def _conv1d_net(channels: int, stride: int = 1) -> nn.Sequential:
    torch.manual_seed(channels + stride)
    return nn.Sequential(
        nn.Conv1d(2, channels, 3, padding=1, stride=stride),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, padding=1),
        nn.Flatten(),
        nn.LazyLinear(4),
    )


@pytest.mark.parametrize("student_stride", [1, 2])
def test_hint_between_1d_convolutions_maps_channels_not_time(student_stride):
    # [B, C, L] features of Conv1d layers: the regressor is a 1x1 convolution over C (the
    # lengths matched by interpolation), not a linear map over L that mixes time positions
    x = torch.randn(6, 2, 20)
    student, teacher = _conv1d_net(3, student_stride), _conv1d_net(8)
    student(x), teacher(x)  # materialise the lazy layers
    spec = FeatureDistillation("2", "2", loss="hint")
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2])
    regressor = module.hint_regressors["0"]
    assert isinstance(regressor.map, nn.Conv1d)
    assert (regressor.map.in_channels, regressor.map.out_channels) == (3, 8)
    student_feature = student[:3](x)
    teacher_feature = teacher[:3](x)
    mapped = regressor(student_feature)
    assert mapped.shape == teacher_feature.shape
    # a time shift of the student's feature shifts the mapped feature the same way
    if student_stride == 1:
        shifted = regressor(torch.roll(student_feature, 1, dims=2))
        torch.testing.assert_close(shifted[..., 1:], mapped[..., :-1])
    loss = module.training_step((x, torch.randint(0, 4, (6,))), 0)
    assert torch.isfinite(loss)


def test_settings_a_feature_loss_would_not_read_are_refused():
    # set, they would be dropped: a user who changes the attention exponent in options trains
    # with p=2
    with pytest.raises(ValueError, match=r"options must be None or empty for loss='attention'"):
        FeatureDistillation("a", "b", loss="attention", options={"p": 4})
    with pytest.raises(ValueError, match="options must be None or empty for a callable loss"):
        FeatureDistillation("a", "b", loss=lambda s, t: (s - t).pow(2).mean(), options={"e": 1})
    for loss in ("hint", "rkd", lambda s, t: (s - t).pow(2).mean()):
        with pytest.raises(
            ValueError, match=r"p must be left at 2.0 .*setting of loss='attention'"
        ):
            FeatureDistillation("a", "b", loss=loss, p=1.0)
        with pytest.raises(ValueError, match=r"variant must be left at 'code'"):
            FeatureDistillation("a", "b", loss=loss, variant="paper")
    # what each reads is taken
    FeatureDistillation("a", "b", loss="attention", p=4.0, variant="paper", options={})
    FeatureDistillation("a", "b", loss="rkd", options={"distance_weight": 1.0})


def test_hint_options_and_token_lengths_are_checked_at_construction():
    with pytest.raises(TypeError, match=r"options\['channels_first'\] must be a bool"):
        FeatureDistillation("a", "b", loss="hint", options={"channels_first": "yes"})
    with pytest.raises(ValueError, match=r"options must be \{'channels_first': bool\}"):
        FeatureDistillation("a", "b", loss="hint", options={"stride": 2})

    class Tokens(nn.Module):
        def __init__(self, length, width):
            super().__init__()
            self.length, self.embed = length, nn.Linear(4, width)

        def forward(self, x):
            return self.embed(x).unsqueeze(1).expand(-1, self.length, -1).mean(1)

    x = torch.randn(3, 4)
    student, teacher = Tokens(5, 6), Tokens(7, 6)
    spec = FeatureDistillation("embed", "embed", loss="hint")
    # [B, D] features: fine; three-dimensional token features of other lengths are refused
    DistillationModule(student, teacher, features=[spec], example_input=x)
    from lightning_distill.losses import HintRegressor

    with pytest.raises(ValueError, match=r"same length L.*channels_first"):
        HintRegressor((5, 6), (7, 6))


def test_a_feature_layer_returning_a_tuple_is_named_at_construction():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)

        def forward(self, x):
            return self.body(x), x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair, self.head = Pair(), nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.pair(x)[0])

    spec = FeatureDistillation("pair", "pair", loss="hint")
    with pytest.raises(
        TypeError, match=r"student layer 'pair' must output a tensor.*tuple.*'pair\[0\]'"
    ):
        DistillationModule(Net(), Net(), features=[spec], example_input=torch.randn(2, 4))


def test_a_teacher_of_another_dtype_than_the_inputs_is_explained():
    # a float64 teacher beside a float32 student: only true precisions convert both
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    teacher = torch.nn.Linear(5, 3).double()
    module = DistillationModule(torch.nn.Linear(5, 3), teacher)
    data = DataLoader(TensorDataset(torch.randn(16, 5), torch.randint(0, 3, (16,))), batch_size=8)
    with pytest.raises(TypeError, match=r"teacher must take the inputs' dtype; its parameters are"):
        quiet_trainer(max_epochs=1).fit(module, data)
    assert teacher.weight.dtype == torch.float64 and teacher.training  # given back as it was
    quiet_trainer(max_epochs=1, precision="64-true").fit(module, data)  # converts both


def test_evaluation_figures_are_exact_under_half_true_precisions():
    # the running means are submodules: a true half precision cast their sums, so a bfloat16
    # weight sum rounded counts above 256 (and float16's stopped at 65,504 rows)
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    teacher = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(1500, 4), torch.randint(0, 3, (1500,))
    module = DistillationModule(student, teacher)
    loader = DataLoader(TensorDataset(x, y), batch_size=100)
    trainer = quiet_trainer(precision="bf16-true")
    (result,) = trainer.validate(module, loader, verbose=False)
    assert module.metrics["val_acc"].mean_value.dtype == torch.float32
    hits = agreements = 0
    with torch.no_grad():
        for xb, yb in loader:  # the same batches, through the same bfloat16 models
            s = student(xb.to(torch.bfloat16)).argmax(1)
            t = teacher(xb.to(torch.bfloat16)).argmax(1)
            hits += int((s == yb).sum())
            agreements += int((s == t).sum())
    assert result["val/acc"] == pytest.approx(hits / 1500, abs=1e-6)
    assert result["val/teacher_agreement"] == pytest.approx(agreements / 1500, abs=1e-6)


@pytest.mark.parametrize(
    "optimizer", [torch.optim.SGD, torch.optim.AdamW, "torch.optim.RMSprop", "sgd"]
)
def test_the_optimizer_takes_the_learning_rate_of_the_hyperparameters_when_built(optimizer):
    # Tuner.lr_find(update_attr=True) sets hparams.lr after the module is built: an optimizer
    # class (or class path) took the rate given at construction, and hparams recorded a rate
    # the run never used
    torch.manual_seed(0)
    module = DistillationModule(
        nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Linear(4, 3)), optimizer=optimizer, lr=0.05
    )
    module.hparams.lr = 0.0123
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    (built,) = trainer.optimizers
    assert [group["lr"] for group in built.param_groups] == [0.0123]


def test_a_tuned_learning_rate_replaces_the_one_a_partial_sets():
    # optimizer=partial(SGD, lr=0.5) sets its own rate; Tuner.lr_find(update_attr=True) then
    # sets hparams.lr: the tuned rate is the one asked for last (it failed: "lr must be given
    # once"); without a change, the partial's own rate stays
    import functools

    def built_lr(module):
        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        trainer = quiet_trainer(max_steps=1)
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
        return [group["lr"] for group in trainer.optimizers[0].param_groups]

    def module():
        optimizer = functools.partial(torch.optim.SGD, lr=0.5)
        return DistillationModule(
            nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Linear(4, 3)), optimizer=optimizer
        )

    assert built_lr(module()) == [0.5]
    tuned = module()
    tuned.hparams.lr = 0.004
    assert built_lr(tuned) == [0.004]


def test_a_tuned_run_with_a_partial_loads_and_numbers_reach_the_optimizer_plain(tmp_path):
    # the checkpoint records the tuned lr the run trained with; loaded beside the same partial
    # it failed ("lr must be given once"); and a 0-d tensor lr reached torch as a tensor
    import functools

    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    optimizer = functools.partial(torch.optim.SGD, lr=0.5)
    student, teacher = nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Linear(4, 3))
    module = DistillationModule(student, teacher, optimizer=optimizer)
    module.hparams.lr = 0.004
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(module, loader)
    path = tmp_path / "tuned.ckpt"
    trainer.save_checkpoint(path)
    loaded = DistillationModule.load_from_checkpoint(
        path, student=nn.Sequential(nn.Linear(4, 3)), teacher=teacher, optimizer=optimizer
    )
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(loaded, loader)
    assert [g["lr"] for g in trainer.optimizers[0].param_groups] == [0.004]
    with pytest.raises(ValueError, match="lr must be given once"):  # built directly: twice
        DistillationModule(student, teacher, optimizer=optimizer, lr=0.1)
    module = DistillationModule(
        student, teacher, optimizer=torch.optim.Adam, lr=torch.tensor(0.01, dtype=torch.float64)
    )
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(module, loader)
    assert type(trainer.optimizers[0].param_groups[0]["lr"]) is float


def test_a_model_that_writes_its_inputs_in_place_is_refused():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    teacher = nn.Linear(4, 3)
    # the teacher runs after the student on the same batch: it would read the scaled inputs
    for first in (WritesItsInput(), nn.ReLU(inplace=True)):
        module = DistillationModule(nn.Sequential(first, nn.Linear(4, 3)), teacher)
        with pytest.raises(ValueError, match="student modified its inputs in place.*teacher"):
            module.training_step((x.clone(), y), 0)
    # a student alone may do as it likes with its batch: the step equals the one on a copy
    alone = DistillationModule(nn.Sequential(WritesItsInput(), nn.Linear(4, 3)), alpha=0.0)
    loss = alone.training_step((x.clone(), y), 0)
    expected = nn.functional.cross_entropy(alone.student[1](x * 10), y)
    torch.testing.assert_close(loss, expected)
    # the constraints read the batch after the teacher
    from lightning_distill import Monotonic

    writer = nn.Sequential(WritesItsInput(), nn.Linear(4, 3))
    module = DistillationModule(nn.Linear(4, 3), writer, constraints=[Monotonic(0, weight=1.0)])
    with pytest.raises(ValueError, match="teacher modified its inputs in place.*constraints"):
        module.training_step((x.clone(), y), 0)
    # without anything reading the batch after it, the teacher is left alone
    module = DistillationModule(nn.Linear(4, 3), nn.Sequential(WritesItsInput(), nn.Linear(4, 3)))
    assert torch.isfinite(module.training_step((x.clone(), y), 0))


def test_the_in_place_check_refuses_only_what_a_later_model_would_read():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    writer = nn.Sequential(WritesItsInput(), nn.Linear(4, 3))
    # predictions and a student alone in evaluation: no model reads the batch after it
    module = DistillationModule(writer, nn.Linear(4, 3))
    with torch.no_grad():
        assert module.predict_step((x.clone(), y), 0).shape == (8, 3)
    from lightning_distill import Monotonic

    alone = DistillationModule(writer, alpha=0.0, constraints=[Monotonic(0, weight=1.0)])
    with torch.no_grad():
        alone.validation_step((x.clone(), y), 0)
    # in evaluation the teacher does read it
    with torch.no_grad(), pytest.raises(ValueError, match="student modified its inputs"):
        module.validation_step((x.clone(), y), 0)


def test_in_evaluation_under_inference_mode_the_teacher_reads_the_batch_as_it_was():
    """Tensors made under inference mode (every batch of Lightning's validate and test, and of
    validation in fit on an accelerator) keep no version counter: the teacher reads a copy
    taken before the student."""
    torch.manual_seed(0)
    teacher = RecordingLinear()
    seen = teacher.seen
    module = DistillationModule(nn.Sequential(WritesItsInput(), nn.Linear(4, 3)), teacher)
    with torch.inference_mode():
        x, y = torch.randn(8, 4), torch.randint(3, (8,))
        original = x.clone()
        module.validation_step((x, y), 0)
        agreement = module.metrics["val_teacher_agreement"].compute()
        expected = (
            (module.student[1](original * 10).argmax(1) == teacher.linear(original).argmax(1))
            .float()
            .mean()
        )
    assert torch.equal(seen[0], original)
    torch.testing.assert_close(agreement, expected)
    # and through a Trainer's validate, on the CPU
    seen.clear()
    loader = DataLoader(TensorDataset(original, y), batch_size=8)
    (results,) = quiet_trainer().validate(module, loader, verbose=False)
    assert torch.equal(seen[0], original)
    assert results["val/teacher_agreement"] == pytest.approx(float(expected))
    # inputs in a dict, a list and a named tuple alike; tensors that are not inference
    # tensors are not copied
    from collections import namedtuple

    from lightning_distill._batch import copy_unwatched

    Pair = namedtuple("Pair", "a b")
    plain = torch.ones(2)
    with torch.inference_mode():
        made = torch.ones(2)
    for inputs in ({"x": made, "y": plain}, [made, plain], Pair(made, plain), (made,)):
        copied = copy_unwatched(inputs)
        assert type(copied) is type(inputs)
        items = list(copied.values()) if isinstance(copied, dict) else list(copied)
        assert items[0] is not made and torch.equal(items[0], made)
        assert len(items) == 1 or items[1] is plain
    assert copy_unwatched(plain) is plain

    # container types are kept: list and tuple types, torch's return types
    class Items(list):
        pass

    values = torch.return_types.max((made, plain))
    for inputs in (Items([made, plain]), values):
        copied = copy_unwatched(inputs)
        assert type(copied) is type(inputs) and copied[0] is not made and copied[1] is plain


def test_a_mapping_that_keeps_its_entries_in_an_attribute_is_copied_whole():
    """copy.copy of such a mapping shares its store: writing the copy would write the batch."""
    from collections.abc import MutableMapping

    from lightning_distill._batch import copy_unwatched, own_container

    class Store(MutableMapping):
        def __init__(self, entries):
            self._entries = dict(entries)

        def __getitem__(self, key):
            return self._entries[key]

        def __setitem__(self, key, value):
            self._entries[key] = value

        def __delitem__(self, key):
            del self._entries[key]

        def __iter__(self):
            return iter(self._entries)

        def __len__(self):
            return len(self._entries)

    x = torch.ones(2)
    with torch.inference_mode():
        made = torch.ones(2)
    batch = Store({"x": x, "made": made})
    mine = own_container(batch)
    mine["x"] = None
    assert batch["x"] is x and type(mine) is Store
    copied = copy_unwatched(batch)
    assert batch["made"] is made and copied["made"] is not made and type(copied) is Store


@dataclasses.dataclass
class _Graph:
    """A batch object of inputs (a graph batch, say): the student reads ``nodes``."""

    nodes: torch.Tensor
    edges: torch.Tensor


class _GraphModel(nn.Module):
    """``nn.Linear(4, 3)`` on ``g.nodes``; scales them in place, or rebinds the field to a
    scaled copy, first; keeps a copy of the nodes it reads in ``seen``."""

    def __init__(self, writes: str | None = None):
        super().__init__()
        self.linear, self.writes, self.seen = nn.Linear(4, 3), writes, []

    def forward(self, g):
        if self.writes == "in place":
            g.nodes.mul_(10)
        elif self.writes == "rebind":
            g.nodes = g.nodes * 10
        self.seen.append(g.nodes.clone())
        return self.linear(g.nodes)


def test_inputs_in_a_dataclass_are_watched_and_kept_for_the_teacher():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    edges = torch.zeros(2, 5, dtype=torch.long)
    # a student that scales the batch object's tensor in place would hand the teacher other
    # inputs: refused, as for a tensor batch
    module = DistillationModule(_GraphModel("in place"), _GraphModel())
    with pytest.raises(ValueError, match="student modified its inputs in place.*teacher"):
        module.training_step((_Graph(x.clone(), edges), y), 0)
    # one that rebinds a field of the object: the teacher reads the batch as it was
    teacher = _GraphModel()
    module = DistillationModule(_GraphModel("rebind"), teacher)
    assert torch.isfinite(module.training_step((_Graph(x.clone(), edges), y), 0))
    assert torch.equal(teacher.seen[0], x)
    # in evaluation, tensors made under inference mode (no version counter) are copied for
    # the teacher before the student runs: it reads them as they were
    teacher = _GraphModel()
    module = DistillationModule(_GraphModel("in place"), teacher)
    with torch.inference_mode():
        made = _Graph(x.clone(), edges.clone())
        module.validation_step((made, y), 0)
    assert torch.equal(teacher.seen[0], x)


class _DictStudent(nn.Module):
    """Reads ``d["x"]``; adds a key to its dict, or rebinds ``x`` to a scaled copy."""

    def __init__(self, rebind: bool):
        super().__init__()
        self.linear, self.rebind = nn.Linear(4, 3), rebind

    def forward(self, d):
        if self.rebind:
            d["x"] = d["x"] * 100
        else:
            d["seen"] = True
        return self.linear(d["x"])


def test_a_student_may_change_its_dict_of_inputs_and_the_teacher_reads_the_batch():
    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    seen = []

    class DictTeacher(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, d):
            seen.append(dict(d))
            return self.linear(d["x"])

    for rebind in (False, True):
        seen.clear()
        module = DistillationModule(_DictStudent(rebind), DictTeacher())
        batch = {"inputs": {"x": x.clone()}, "targets": y}
        assert torch.isfinite(module.training_step(batch, 0))
        # the teacher got the batch's dict as it was: its own tensor, no key the student added
        assert set(seen[0]) == {"x"} and torch.equal(seen[0]["x"], x)


def test_the_watch_finds_tensors_in_nested_and_mixed_inputs():
    from collections import UserDict

    from lightning_distill._batch import InputWatch, own_container

    x = torch.zeros(3)
    for inputs in ((None, x), (0, x), {"views": [x]}, {"a": {"b": x}}, ((), {"batch": {"x": x}})):
        watch = InputWatch(inputs)
        x.add_(1)
        with pytest.raises(ValueError, match="modified its inputs in place"):
            watch.check("student", "the teacher")
    # token ids are not walked one by one
    assert InputWatch([[1, 2, 3]] * 4)._tensors == []
    # a mapping of any kind is copied for the later models (transformers' BatchEncoding is one)
    encoding = UserDict({"x": x})
    copied = own_container(encoding)
    copied["x"] = None
    assert encoding["x"] is x and type(copied) is UserDict


def test_cache_teacher_runs_the_teacher_once_for_a_new_index_seen_twice_in_a_batch():
    from lightning_distill.kd._cache import TeacherLogitCache

    x = torch.randn(4, 3)
    batch = torch.cat([x, x[:1]])  # index 0 twice, the same input
    index = torch.tensor([0, 1, 2, 3, 0])
    rows = []

    def teacher(v):
        rows.append(len(v))
        return v * 2

    cache = TeacherLogitCache()
    logits = cache.lookup(batch, index, teacher)
    assert rows == [4]  # each sample's logits once
    torch.testing.assert_close(logits, batch * 2)
    # two different inputs under one new index: refused, as under a cached one
    other = torch.cat([x, x[1:2]])
    with pytest.raises(ValueError, match="the input of index 0 differs"):
        TeacherLogitCache().lookup(other, index, teacher)


@pytest.mark.parametrize("shapes", [((3, 4, 1, 1), (3, 2, 1, 1)), ((3, 4, 6, 6), (3, 2, 1, 1))])
def test_attention_transfer_refuses_maps_of_one_position(shapes):
    # a one-position map divided by its norm is 1 for any feature: the loss is 0 whatever the
    # student does (it had returned that 0, silently)
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(*shapes[0], generator=gen)
    teacher = torch.randn(*shapes[1], generator=gen)
    with pytest.raises(ValueError, match="more than one position"):
        attention_transfer_loss(student, teacher, variant="code")
    # two positions are enough for the loss to depend on the features
    two = attention_transfer_loss(
        torch.randn(3, 4, 2, 1, generator=gen),
        torch.randn(3, 2, 2, 1, generator=gen),
        variant="code",
    )
    assert float(two) > 0


def test_attention_pair_after_global_pooling_is_refused_in_a_fit(models):
    # layer 5 of make_cnn is AdaptiveAvgPool2d(1): its attention map has a single position
    student, teacher = models
    x, y = make_data(8)
    module = DistillationModule(
        student, teacher, features=[FeatureDistillation("4", "5")], example_input=x[:2]
    )
    with pytest.raises(ValueError, match="more than one position"):
        quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=4))


class _TupleBlock(nn.Module):
    """A block returning two tensors, as some backbones' stages do."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y, y.detach()


def _tuple_net(channels: int) -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = _TupleBlock(channels)
            self.head = nn.Sequential(
                nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 3)
            )

        def forward(self, x):
            return self.head(self.block(x)[0])

    return Net()


@pytest.mark.parametrize("loss", ["attention", "rkd", "pkt"])
@pytest.mark.parametrize("path", ["module", "callback"])
def test_a_layer_returning_a_tuple_is_named_with_the_element_to_pick(loss, path):
    # hint and FT named the layer and 'block[0]'; the other built-in losses had said only
    # "student_feature must be a ... tensor; got tuple"
    torch.manual_seed(0)
    x, y = make_data(8)
    spec = FeatureDistillation("block", "block", loss)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    if path == "module":
        fit = (DistillationModule(_tuple_net(4), _tuple_net(6), features=[spec]), [])
    else:  # the callback's student layers are named in the LightningModule
        spec = FeatureDistillation("net.block", "block", loss)
        callback = KnowledgeDistillation(_tuple_net(6), features=[spec])
        fit = (PlainClassifier(_tuple_net(4)), [callback])
    with pytest.raises(TypeError, match=r"layer '(net\.)?block' must output a tensor.*block\[0\]'"):
        quiet_trainer(max_steps=1, callbacks=fit[1]).fit(fit[0], loader)
    # the element itself is distilled
    spec = FeatureDistillation("block[0]", "block[0]", loss)
    module = DistillationModule(_tuple_net(4), _tuple_net(6), features=[spec])
    quiet_trainer(max_steps=1).fit(module, loader)


def test_cache_teacher_takes_inputs_without_a_row_per_sample():
    # a tuple of inputs holding a tensor shared by the batch (a scale, a per-class table):
    # the teacher runs on the new samples' rows with the shared tensors as given (before, the
    # cache indexed them by sample and torch raised an IndexError), and a change in a shared
    # tensor changes every sample's input, so it is refused as any other change
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):
            inputs, scale, offsets = x
            return self.linear(inputs) * scale + offsets

    torch.manual_seed(0)
    student, teacher = Scaled(), Scaled()
    x, y, index = torch.randn(6, 4), torch.randint(0, 3, (6,)), torch.arange(6)
    shared = (torch.tensor(2.0), torch.randn(3))
    cached = DistillationModule(student, teacher, cache_teacher=True)
    plain = DistillationModule(student, teacher)
    expected = plain.training_step(((x, *shared), y), 0)
    torch.testing.assert_close(cached.training_step(((x, *shared), y, index), 0), expected)
    # a part of the batch new, the rest from the cache: the same loss as without it
    mixed = torch.tensor([4, 5, 6, 7])
    more = torch.cat([x[4:], torch.randn(2, 4)])
    expected = plain.training_step(((more, *shared), y[:4]), 1)
    torch.testing.assert_close(cached.training_step(((more, *shared), y[:4], mixed), 1), expected)
    with pytest.raises(ValueError, match="input of index 0 differs"):
        cached.training_step(((x, torch.tensor(3.0), shared[1]), y, index), 2)


def test_cache_teacher_reads_a_shared_tensor_with_as_many_rows_as_a_batch_as_shared():
    # a table shared by every batch whose length equals the batch size had been read as one
    # row per sample: the teacher was given the rows of the new samples alone, a sample seen
    # at another position was refused as changed, and a change of the table in a new
    # sample's row left the other samples' cached logits standing
    from lightning_distill.kd._cache import TeacherLogitCache

    def teacher(x):  # attention over the table: any number of its rows is taken
        return torch.softmax(x["x"] @ x["table"].T, -1) @ x["table"][:, :2]

    gen = torch.Generator().manual_seed(0)
    table, inputs = torch.randn(4, 3, generator=gen), torch.randn(10, 3, generator=gen)
    cache = TeacherLogitCache()

    def batch(ids, shared=table):
        ids = torch.tensor(ids)
        return {"x": inputs[ids], "table": shared}, ids

    # an epoch of batches of 4, 4 and 2: the last one shows the table is shared
    for ids in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9]):
        x, index = batch(ids)
        torch.testing.assert_close(cache.lookup(x, index, teacher), teacher(x))
    # shuffled, part new: the teacher's logits on the batch, the whole table seen
    x, index = batch([9, 2, 0, 5])
    torch.testing.assert_close(cache.lookup(x, index, teacher), teacher(x))
    x, index = batch([3, 1, 8, 6])
    torch.testing.assert_close(cache.lookup(x, index, teacher), teacher(x))
    # the table changed in one row: every sample's input changed
    changed = table.clone()
    changed[3] += 1.0
    x, index = batch([0, 1, 2, 4], changed)
    with pytest.raises(ValueError, match="input of index 0 differs"):
        cache.lookup(x, index, teacher)


def test_epoch_means_after_a_mid_epoch_resume_cover_the_batches_lightning_covers(tmp_path):
    # Lightning keeps no self.log(on_epoch=True) sums in checkpoints: after a resume from a
    # checkpoint saved within an epoch, its epoch values are over the batches trained since;
    # the module's train/*_epoch means (its own sums) are over the same batches
    from lightning.pytorch.callbacks import ModelCheckpoint

    class Logged(DistillationModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("lightning_mean", loss.detach(), on_epoch=True, batch_size=len(batch[1]))
            self.losses.append(float(loss))
            return loss

    def module():
        torch.manual_seed(0)
        built = Logged(nn.Linear(5, 3), nn.Linear(5, 3), lr=1e-3)
        built.losses = []
        return built

    gen = torch.Generator().manual_seed(1)
    data = TensorDataset(
        torch.randn(32, 5, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    )
    first = module()
    saving = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1)
    quiet_trainer(callbacks=[saving], enable_checkpointing=True).fit(
        first, DataLoader(data, batch_size=4)
    )
    resumed = module()
    trainer = quiet_trainer()
    trainer.fit(resumed, DataLoader(data, batch_size=4), ckpt_path=tmp_path / "epoch=0-step=3.ckpt")
    assert len(resumed.losses) == 5  # the 8 steps of the epoch less the 3 before the checkpoint
    mean = sum(resumed.losses) / len(resumed.losses)  # batches of 4: the samples' mean
    logged = trainer.callback_metrics
    assert float(logged["lightning_mean"]) == pytest.approx(mean, rel=1e-6)
    assert float(logged["train/loss_epoch"]) == pytest.approx(mean, rel=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_the_built_in_adam_refuses_float16_parameters_naming_the_remedies(optimizer):
    # Adam adds eps=1e-8 in the parameters' dtype: it is 0 in float16, and (1 - 0.999) * g**2
    # is 0 there for small gradients, so the steps divide by zero. Under "16-true" the fit
    # failed at its second step, telling the user their logits were NaN
    assert torch.tensor(1e-8, dtype=torch.float16) == 0
    assert torch.tensor(1e-3 * 4e-3**2, dtype=torch.float16) == 0
    torch.manual_seed(0)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    student = nn.Linear(8, 3)
    module = DistillationModule(student, nn.Linear(8, 3), optimizer=optimizer)
    with pytest.raises(
        ValueError,
        match=r"^optimizer must be 'sgd' or a callable .*eps=1e-4.*'16-mixed' or 'bf16-true'"
        rf".*is 0 in float16.*got '{optimizer}' with float16 parameters",
    ):
        quiet_trainer(precision="16-true").fit(module, loader)
    # the remedies train to finite weights that moved
    for remedy in ("sgd", functools.partial(torch.optim.Adam, eps=1e-4)):
        torch.manual_seed(0)
        student = nn.Linear(8, 3)
        start = student.weight.detach().to(torch.float16)
        module = DistillationModule(student, nn.Linear(8, 3), optimizer=remedy)
        quiet_trainer(precision="16-true").fit(module, loader)
        assert student.weight.dtype == torch.float16
        assert all(bool(p.isfinite().all()) for p in student.parameters())
        assert not torch.equal(student.weight, start)


class _DivergesOnLargeInputs(nn.Module):
    """A linear student whose logits are NaN for the rows whose first feature exceeds 1."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return torch.where(x[:, :1] > 1.0, torch.nan, self.linear(x))


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_evaluation_figures_of_a_student_with_nan_logits_read_nan_with_one_warning(stage):
    # argmax of a row of NaN names class 0: the accuracy and the agreement were made up from
    # it, and the epoch's loss dropped the NaN batches (a mean over the finite ones alone)
    torch.manual_seed(0)
    student, teacher = _DivergesOnLargeInputs(), nn.Linear(4, 3)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    diverged = int((x[:, 0] > 1.0).sum())
    assert 0 < diverged < 64 // 4  # some batches of 16 finite throughout, some not
    module = DistillationModule(student, teacher)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = getattr(quiet_trainer(), stage)(module, loader, verbose=False)
    prefix = "val" if stage == "validate" else "test"
    for name in ("loss", "acc", "teacher_agreement"):
        assert torch.isnan(torch.tensor(result[f"{prefix}/{name}"])), name
    with torch.no_grad():  # the teacher's own figure is unaffected
        teacher_acc = (teacher(x).argmax(1) == y).float().mean().item()
    assert result[f"{prefix}/teacher_acc"] == pytest.approx(teacher_acc)
    told = [w for w in caught if "logits" in str(w.message) and "NaN" in str(w.message)]
    assert len(told) == 1
    word = "validation" if stage == "validate" else "test"
    assert f"for {diverged} of the 64 {word} samples" in str(told[0].message)
    for name in ("loss", "acc", "teacher_agreement"):
        assert f"{prefix}/{name}" in str(told[0].message)
    # a later epoch on finite logits gives finite figures and no warning
    with torch.no_grad():  # equal logits: argmax predicts class 0 everywhere
        student.linear.weight.zero_()
        student.linear.bias.zero_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finite = x[:, 0] <= 1.0
        clean = DataLoader(TensorDataset(x[finite], y[finite]), batch_size=16)
        (result,) = getattr(quiet_trainer(), stage)(module, clean, verbose=False)
    assert not [w for w in caught if "logits" in str(w.message)]
    assert result[f"{prefix}/acc"] == pytest.approx((y[finite] == 0).float().mean().item())


@pytest.mark.parametrize(
    ("name", "value", "optimizer"),
    [
        ("momentum", 1.5, "sgd"),
        ("momentum", 1.5, torch.optim.SGD),
        ("lr", -0.1, "adam"),
        ("weight_decay", float("nan"), "sgd"),
    ],
    ids=["momentum-sgd", "momentum-class", "lr", "weight_decay"],
)
def test_optimizer_hyperparameters_set_after_construction_are_checked_when_built(
    name, value, optimizer
):
    # SGD takes a momentum of 1 or more, which makes its steps grow without bound: a momentum
    # set in hparams after construction trained so silently
    student = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError) as built:
        DistillationModule(student, None, alpha=0.0, optimizer=optimizer, **{name: value})
    module = DistillationModule(student, None, alpha=0.0, optimizer=optimizer)
    module.hparams[name] = value
    before = copy.deepcopy(student.state_dict())
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    with pytest.raises(ValueError) as set_later:
        quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    assert str(set_later.value) == str(built.value)
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())


def test_feature_pairs_are_fixed_at_construction(models, tmp_path):
    # set again or edited in place, the pairs no longer matched the hooks, hint regressors and
    # feature methods built from them: a pair removed failed in the step with "'int' object has
    # no attribute 'detach'", one added with a KeyError
    student, teacher = models
    x, y = make_data()
    given = [FeatureDistillation("3", "3", loss="hint")]
    module = DistillationModule(student, teacher, features=given, example_input=x[:2])
    given.append(FeatureDistillation("0", "0"))  # the caller's list: the module's is its own
    assert module.feature_specs == [FeatureDistillation("3", "3", loss="hint")]
    with pytest.raises(AttributeError, match=r"^feature_specs is set at construction .*"):
        module.feature_specs = []
    with pytest.raises(TypeError, match=r"in place on a DistillationModule.*\(features=\.\.\.\)"):
        module.feature_specs.append(FeatureDistillation("0", "0"))
    with pytest.raises(TypeError, match="in place"):
        module.feature_specs[0] = FeatureDistillation("3", "3")
    assert len(module.feature_specs) == len(module.hint_regressors) == 1
    # the module copies, pickles, trains and checkpoints as before
    copied = copy.deepcopy(module)
    assert copied.feature_specs == module.feature_specs
    with pytest.raises(TypeError, match="in place"):
        copied.feature_specs.clear()
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    trainer = quiet_trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    assert "train/loss_feature" in trainer.callback_metrics
    path = tmp_path / "pairs.ckpt"
    trainer.save_checkpoint(path)
    loaded = DistillationModule.load_from_checkpoint(
        path, student=make_cnn(4), teacher=make_cnn(8), weights_only=True
    )
    assert loaded.feature_specs == module.feature_specs


def test_a_feature_pairs_options_are_its_own_and_frozen_with_it():
    # the caller's dict, changed after the pair was made, had changed the options of a pair
    # already given to a module or callback (a callback builds its methods at the fit's start)
    options = {"num_samples": 64}
    spec = FeatureDistillation("a", "b", loss="crd", options=options)
    options["num_samples"] = 10
    assert spec.options == {"num_samples": 64}
    with pytest.raises(TypeError, match=r"^options is set at construction .* FeatureDistillation"):
        spec.options["num_negatives"] = 8
    assert spec == FeatureDistillation("a", "b", loss="crd", options={"num_samples": 64})
    changed = dataclasses.replace(spec, options={**spec.options, "num_negatives": 8})
    assert changed.options == {"num_samples": 64, "num_negatives": 8}
    assert copy.deepcopy(spec) == spec and dataclasses.asdict(spec)["options"] == spec.options


def test_a_feature_pairs_options_read_by_asdict_are_plain_data():
    # dataclasses.asdict rebuilds a dict field as type(value)(items): the frozen options came
    # back as a nameless frozen dict, which refused edits with an empty message and could not
    # be dumped to YAML (hparams.yaml) nor read by torch.load(weights_only=True)
    spec = FeatureDistillation("a", "b", loss="crd", options={"num_samples": 64})
    data = dataclasses.asdict(spec)
    assert type(data["options"]) is dict
    data["options"]["num_samples"] = 10  # data of its own: the pair keeps its options
    assert spec.options == {"num_samples": 64}
    assert yaml.safe_load(yaml.safe_dump(data))["options"] == {"num_samples": 10}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["options"] == {"num_samples": 10}
    with pytest.raises(TypeError, match=r"^options is set at construction"):
        spec.options["num_samples"] = 10


@pytest.mark.parametrize(
    ("name", "value", "temperature", "teacher"),
    [
        ("alpha", 1.5, "learned", True),  # had trained the hard term with weight -0.5
        ("alpha", float("nan"), "learned", True),  # had been named as the student's logits
        ("alpha", 0.5, 4.0, False),  # without a teacher, had been ignored
        ("label_smoothing", 2.0, 4.0, True),  # had been named 'smoothing'
        ("label_smoothing", -0.1, "learned", False),
    ],
)
def test_loss_hyperparameters_set_after_construction_are_checked_at_the_step(
    name, value, temperature, teacher
):
    from lightning_distill import LearnedTemperature

    def build(**settings):
        torch.manual_seed(0)
        arguments = {
            "alpha": 0.5 if teacher else 0.0,
            "temperature": LearnedTemperature() if temperature == "learned" else temperature,
            **settings,
        }
        return DistillationModule(
            nn.Linear(4, 3), nn.Linear(4, 3) if teacher else None, **arguments
        )

    with pytest.raises(ValueError) as built:
        build(**{name: value})
    module = build()
    module.hparams[name] = value
    before = copy.deepcopy(module.student.state_dict())
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    with pytest.raises(ValueError) as set_later:
        quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    assert str(set_later.value).startswith(f"{name} must be")
    assert str(built.value).startswith(f"{name} must be")
    assert all(torch.equal(v, module.student.state_dict()[k]) for k, v in before.items())


def test_distillation_terms_names_label_smoothing_as_its_argument():
    from lightning_distill.losses import distillation_terms

    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match=r"^label_smoothing must be a finite number >= 0"):
        distillation_terms(s, t, y, 2.0, 0.5, 2.0)


@pytest.mark.parametrize("other", ["augment", "features", "no teacher"])
def test_cache_teacher_set_after_construction_is_checked_as_the_constructor_does(other):
    # hparams.cache_teacher set to True later was read by the step: with augment or feature
    # pairs the constructor refuses it (a cache gives the student the logits of other inputs,
    # or no features), but the step had only asked for an index in the batch
    from lightning_distill.kd.augment import gaussian_noise

    torch.manual_seed(0)
    student, teacher = nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Linear(4, 3))
    settings = {
        "augment": {"augment": gaussian_noise(0.1)},
        "features": {
            "features": [FeatureDistillation("0", "0", loss="hint")],
            "example_input": torch.randn(2, 4),
        },
        "no teacher": {"alpha": 0.0},
    }[other]
    models = (student, None) if other == "no teacher" else (student, teacher)
    with pytest.raises(ValueError) as built:
        DistillationModule(*models, cache_teacher=True, **settings)
    module = DistillationModule(*models, **settings)
    module.hparams.cache_teacher = True
    before = copy.deepcopy(student.state_dict())
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    loader = DataLoader(IndexedDataset(x, y), batch_size=8)
    with pytest.raises(ValueError) as set_later:
        quiet_trainer(max_steps=1).fit(module, loader)
    assert str(set_later.value) == str(built.value)
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())
    module.hparams.cache_teacher = "yes"
    with pytest.raises(TypeError, match=r"^cache_teacher must be a bool; got 'yes'\.$"):
        quiet_trainer(max_steps=1).fit(module, loader)
