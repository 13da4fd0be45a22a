"""TorchScript teachers, a frozen student, unreadable example inputs, forward keywords the
teacher does not take, and a soft tree's decay set after construction."""

import warnings

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import (
    DistillationModule,
    FeatureDistillation,
    KnowledgeDistillation,
    SoftDecisionTree,
    select_temperature,
)
from tests.helpers import quiet_trainer, state_copy, states_equal

pytestmark = pytest.mark.filterwarnings("ignore:.*(LeafSpec|deprecated|eval mode).*")


def _data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _loader(batch_size=4):
    return DataLoader(TensorDataset(*_data()), batch_size=batch_size)


def _mlp(hidden=8, batch_norm=False):
    layers = [nn.Linear(4, hidden)]
    layers += [nn.BatchNorm1d(hidden)] if batch_norm else []
    return nn.Sequential(*layers, nn.ReLU(), nn.Linear(hidden, 3))


def test_a_scripted_teacher_trains_a_student_and_is_given_back():
    torch.manual_seed(0)
    teacher = torch.jit.script(_mlp().eval())
    flags = [True, False, True, True]
    for param, flag in zip(teacher.parameters(), flags):
        param.requires_grad_(flag)
    before = state_copy(teacher)
    module = DistillationModule(_mlp(), teacher, alpha=0.5)
    student_before = state_copy(module.student)
    quiet_trainer(max_steps=2).fit(module, _loader())
    assert not states_equal(student_before, state_copy(module.student))
    assert states_equal(before, state_copy(teacher))
    assert [p.requires_grad for p in teacher.parameters()] == flags
    # the callback freezes it the same way
    student = _mlp()
    quiet_trainer(max_steps=2, callbacks=[KnowledgeDistillation(teacher)]).fit(
        _Plain(student), _loader()
    )
    assert [p.requires_grad for p in teacher.parameters()] == flags


class _Plain(L.LightningModule):
    def __init__(self, net, scale=None):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x, scale=1.0):
        return self.net(x) * scale

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x) if self.scale is None else self(x, scale=self.scale)
        return nn.functional.cross_entropy(logits, y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_teacher_traced_in_training_mode_is_given_its_buffers_back_with_a_warning():
    torch.manual_seed(0)
    x, _ = _data()
    teacher = torch.jit.trace(_mlp(batch_norm=True).train(), x[:4])  # batch statistics baked in
    before = state_copy(teacher)
    module = DistillationModule(_mlp(), teacher, alpha=1.0)
    with pytest.warns(UserWarning, match=r"teacher's buffers changed.*torch.jit.trace"):
        quiet_trainer(max_steps=3).fit(module, _loader())
    assert states_equal(before, state_copy(teacher))
    # traced in eval mode: nothing changes, nothing said
    traced = torch.jit.trace(_mlp(batch_norm=True).eval(), x[:4])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*buffers changed.*")
        quiet_trainer(max_steps=3).fit(DistillationModule(_mlp(), traced, alpha=1.0), _loader())


@pytest.mark.filterwarnings("ignore:.*every temperature gave the same student")
@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_select_temperature_scores_a_module_the_trainer_cast(precision):
    torch.manual_seed(0)
    teacher = _mlp()

    def make_trainer():
        return quiet_trainer(max_epochs=1, precision=precision)

    selection = select_temperature(
        lambda t: DistillationModule(_mlp(), teacher, temperature=t),
        make_trainer,
        _loader(8),
        _loader(8),
        temperatures=(1, 4),
        seeds=(0,),
    )
    assert list(selection.runs["temperature"]) == [1.0, 4.0]
    assert selection.runs[["accuracy", "agreement", "kl"]].notna().all().all()


def test_a_frozen_student_is_refused_by_name():
    module = DistillationModule(_mlp().requires_grad_(False), _mlp(), alpha=0.5)
    with pytest.raises(ValueError, match=r"student must have parameters that require gradients"):
        quiet_trainer(max_steps=1).fit(module, _loader())


def test_an_example_input_the_models_cannot_read_is_named():
    features = [FeatureDistillation("1", "1", "hint", 1.0)]
    with pytest.raises(ValueError, match=r"example_input.*student failed.*shape \(2, 9\)"):
        DistillationModule(
            _mlp(), _mlp(hidden=7), example_input=torch.randn(2, 9), features=features
        )
    with pytest.raises(ValueError, match=r"example_input must be a batch.*shape \(4,\).*'1'"):
        DistillationModule(_mlp(), _mlp(hidden=7), example_input=torch.randn(4), features=features)
    teacher = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with pytest.raises(ValueError, match=r"example_input.*teacher failed"):
        DistillationModule(_mlp(), teacher, example_input=torch.randn(2, 4), features=features)


def test_forward_keywords_the_teacher_does_not_take_are_named():
    trainer = quiet_trainer(max_steps=1, callbacks=[KnowledgeDistillation(nn.Linear(4, 3))])
    with pytest.raises(TypeError, match=r"keywords included \(\['scale'\]\).*attributes"):
        trainer.fit(_Plain(nn.Linear(4, 3), scale=2.0), _loader())


def test_a_soft_tree_decay_set_after_construction_acts():
    x, _ = _data()

    def penalty(tree):
        tree.train()
        tree(x)
        return tree.balance_penalty

    torch.manual_seed(0)
    built = SoftDecisionTree(4, 3, depth=3, penalty_decay=0.0)
    torch.manual_seed(0)
    changed = SoftDecisionTree(4, 3, depth=3, penalty_decay=0.5)
    assert not torch.equal(penalty(built), penalty(changed))
    changed.penalty_decay = 0.0
    assert torch.equal(penalty(built), penalty(changed))
    assert changed.state_dict()["_extra_state"]["penalty_decay"] == 0.0
    with pytest.raises(ValueError, match="penalty_decay"):
        changed.penalty_decay = -1.0


class _Counting(nn.Module):
    """A teacher that counts its calls in a buffer, in any mode."""

    def __init__(self):
        super().__init__()
        self.net = _mlp()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_a_scripted_teacher_keeps_what_its_forward_writes_on_purpose():
    # torch.jit.script reads the training flag as eager code does: only traced parts are
    # checked and given back
    teacher = torch.jit.script(_Counting().eval())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*buffers changed.*")
        quiet_trainer(max_steps=3).fit(DistillationModule(_mlp(), teacher, alpha=1.0), _loader())
    assert int(teacher.calls) >= 3


def test_a_teacher_the_run_casts_is_compared_in_its_new_dtype():
    x, _ = _data()
    teacher = torch.jit.trace(_mlp(batch_norm=True).eval(), x[:4])  # eval mode: no change
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*buffers changed.*")
        trainer = quiet_trainer(max_steps=2, precision="64-true")
        trainer.fit(DistillationModule(_mlp(), teacher, alpha=1.0), _loader())


def test_a_frozen_student_with_heads_of_its_own_still_trains_them():
    from lightning_distill import LearnedTemperature

    module = DistillationModule(
        _mlp().requires_grad_(False), _mlp(), alpha=0.5, temperature=LearnedTemperature()
    )
    before = [p.detach().clone() for p in module.learned_temperature.parameters()]
    quiet_trainer(max_steps=2).fit(module, _loader())
    after = list(module.learned_temperature.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_teacher_giving_probabilities_is_warned_about_once_and_log_probabilities_are_not(form):
    """softmax(p / T) of probabilities is nearly uniform: a teacher ending in a softmax is
    said once; its log-probabilities (logits up to a constant) and its logits are not."""
    from lightning_distill import KnowledgeDistillation
    from tests.helpers import PlainClassifier, make_cnn, make_data

    x, y = make_data(32)
    torch.manual_seed(0)
    base = make_cnn(6)
    said = {}
    for name, last in [("softmax", nn.Softmax(dim=1)), ("log", nn.LogSoftmax(dim=1))]:
        teacher = nn.Sequential(base, last)
        if form == "module":
            module, callbacks = DistillationModule(make_cnn(4), teacher), []
        else:
            module, callbacks = PlainClassifier(make_cnn(4)), [KnowledgeDistillation(teacher)]
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            quiet_trainer(max_steps=3, callbacks=callbacks).fit(
                module, DataLoader(TensorDataset(x, y), batch_size=8)
            )
        said[name] = sum("look like probabilities" in str(w.message) for w in seen)
    assert said == {"softmax": 1, "log": 0}
