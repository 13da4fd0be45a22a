"""Distillation on an unlabelled transfer set: ``alpha=1`` needs no labels.

With ``alpha=1`` the loss is the KD term alone, so a batch holding inputs alone must train the
student exactly as the same inputs with labels do (the hard-label term is weighted by 0).
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_distill import (
    DistillationModule,
    FeatureDistillation,
    KnowledgeDistillation,
    LearnedTemperature,
    mixup,
)
from tests.helpers import PlainClassifier, make_cnn, make_data, quiet_trainer, state_copy


class DictBatches(Dataset):
    """Samples as dicts, with or without a label, with their index."""

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        sample = {"inputs": self.x[i], "index": i}
        if self.y is not None:
            sample["targets"] = self.y[i]
        return sample


class InputsAlone(Dataset):
    """Samples that are bare tensors: batches are tensors."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def _fit_module(dataset, *, val=None, epochs=2, **options):
    torch.manual_seed(0)
    student = make_cnn(4)
    teacher = options.pop("teacher")
    module = DistillationModule(student, teacher, temperature=2.0, lr=0.05, **options)
    trainer = quiet_trainer(max_epochs=epochs, log_every_n_steps=1)
    val_loader = None if val is None else DataLoader(val, batch_size=8)
    trainer.fit(module, DataLoader(dataset, batch_size=8), val_loader)
    return state_copy(student), trainer


def _assert_same_states(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.fixture
def problem():
    torch.manual_seed(3)
    x, y = make_data(32)
    return x, y, make_cnn(6)


@pytest.mark.parametrize(
    "unlabelled",
    [
        lambda x: TensorDataset(x),  # batches (inputs,)
        lambda x: InputsAlone(x),  # batches are tensors
        lambda x: DictBatches(x),  # dicts without a target key
    ],
    ids=["tuple", "tensor", "dict"],
)
def test_unlabelled_batches_train_as_labelled_ones_at_alpha_one(problem, unlabelled):
    x, y, teacher = problem
    labelled, _ = _fit_module(TensorDataset(x, y), teacher=teacher, alpha=1.0)
    got, trainer = _fit_module(unlabelled(x), teacher=teacher, alpha=1.0)
    _assert_same_states(got, labelled)
    logged = trainer.callback_metrics
    assert "train/loss_kd" in logged and "train/loss_ce" not in logged
    torch.testing.assert_close(logged["train/loss"], logged["train/loss_kd"])


def test_unlabelled_validation_logs_the_agreement_alone(problem):
    x, y, teacher = problem
    _, trainer = _fit_module(
        TensorDataset(x), val=TensorDataset(x), teacher=teacher, alpha=1.0, epochs=1
    )
    module = trainer.lightning_module
    with torch.no_grad():
        expected = (module.student(x).argmax(1) == teacher.eval()(x).argmax(1)).float().mean()
    logged = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    assert set(logged) == {"val/teacher_agreement"}
    torch.testing.assert_close(logged["val/teacher_agreement"], expected)
    # a labelled validation set still gets every figure
    result = trainer.validate(module, DataLoader(TensorDataset(x, y), batch_size=8), verbose=False)
    assert {"val/loss", "val/acc", "val/teacher_acc", "val/teacher_agreement"} <= set(result[0])


def test_learned_temperature_and_cached_teacher_without_labels(problem):
    x, y, teacher = problem
    for options in (
        lambda: {"temperature": LearnedTemperature(initial=2.0, ramp_epochs=0)},
        lambda: {"temperature": 2.0, "cache_teacher": True},
    ):
        runs = []
        for dataset in (DictBatches(x, y), DictBatches(x)):
            torch.manual_seed(0)
            student = make_cnn(4)
            module = DistillationModule(student, teacher, alpha=1.0, lr=0.05, **options())
            quiet_trainer(max_epochs=2).fit(module, DataLoader(dataset, batch_size=8))
            # the student, and the temperature's parameter
            runs.append(
                {
                    k: v.detach().clone()
                    for k, v in module.state_dict().items()
                    if isinstance(v, torch.Tensor)
                }
            )
        _assert_same_states(runs[1], runs[0])


def test_augmentation_without_labels(problem):
    x, _, teacher = problem
    torch.manual_seed(0)
    student = make_cnn(4)
    before = state_copy(student)
    module = DistillationModule(student, teacher, alpha=1.0, augment=mixup(0.4))
    quiet_trainer(max_steps=2).fit(module, DataLoader(TensorDataset(x), batch_size=8))
    assert any(not torch.equal(before[k], v) for k, v in state_copy(student).items())

    def labelling(inputs, targets):  # makes up labels the batch did not have
        return inputs, torch.zeros(inputs.shape[0], dtype=torch.long)

    module = DistillationModule(make_cnn(4), teacher, alpha=1.0, augment=labelling)
    with pytest.raises(TypeError, match="augment must be .*no targets for a batch without labels"):
        quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x), batch_size=8))


def test_feature_terms_without_labels(problem):
    x, y, teacher = problem
    runs = []
    for dataset in (TensorDataset(x, y), TensorDataset(x)):
        torch.manual_seed(0)
        features = [FeatureDistillation("3", "3", loss="attention", weight=10.0)]
        module = DistillationModule(make_cnn(4), teacher, alpha=1.0, lr=0.05, features=features)
        quiet_trainer(max_epochs=1).fit(module, DataLoader(dataset, batch_size=8))
        runs.append(state_copy(module.student))
    _assert_same_states(runs[1], runs[0])


def test_batches_without_labels_need_alpha_one_and_a_teacher(problem):
    x, _, teacher = problem
    loader = DataLoader(TensorDataset(x), batch_size=8)
    module = DistillationModule(make_cnn(4), teacher, alpha=0.9)
    with pytest.raises(ValueError, match=r"targets must be given while alpha=0\.9 < 1"):
        quiet_trainer(max_steps=1).fit(module, loader)
    module = DistillationModule(make_cnn(4), None, alpha=0.0)
    with pytest.raises(ValueError, match=r"batch must be .*got a list of length 1"):
        quiet_trainer(max_steps=1).fit(module, loader)
    # SSKD reads the labels: it says so
    features = [FeatureDistillation("3", "3", loss="sskd", weight=1.0)]
    module = DistillationModule(
        make_cnn(4), teacher, alpha=1.0, features=features, example_input=x[:2]
    )
    with pytest.raises(ValueError, match="targets must be the batch's class indices for SSKD"):
        quiet_trainer(max_steps=1).fit(module, loader)


class InputsOnlyClassifier(PlainClassifier):
    """A user's module that reads batches of inputs alone."""

    def training_step(self, batch, batch_idx):
        return self(batch[0]).logsumexp(dim=1).mean()


def test_callback_without_labels_trains_as_with_labels_at_alpha_one(problem):
    x, y, teacher = problem
    torch.manual_seed(0)
    net = make_cnn(4)
    runs = []
    for module, dataset in (
        (PlainClassifier(copy.deepcopy(net), lr=0.05), TensorDataset(x, y)),
        (InputsOnlyClassifier(copy.deepcopy(net), lr=0.05), TensorDataset(x)),
    ):
        callback = KnowledgeDistillation(teacher, temperature=2.0, alpha=1.0)
        trainer = quiet_trainer(max_epochs=2, callbacks=[callback], log_every_n_steps=1)
        trainer.fit(module, DataLoader(dataset, batch_size=8))
        runs.append((state_copy(module.net), dict(trainer.callback_metrics)))
    _assert_same_states(runs[1][0], runs[0][0])
    assert "train/loss_ce" in runs[0][1] and "train/loss_ce" not in runs[1][1]
    # with alpha < 1 the labels are needed, and the callback says so
    module = InputsOnlyClassifier(copy.deepcopy(net))
    trainer = quiet_trainer(max_steps=1, callbacks=[KnowledgeDistillation(teacher, alpha=0.5)])
    with pytest.raises(ValueError, match=r"targets must be given while alpha=0\.5 < 1"):
        trainer.fit(module, DataLoader(TensorDataset(x), batch_size=8))
    # a targets_from that finds no labels in a batch may say so with None
    callback = KnowledgeDistillation(teacher, alpha=1.0, targets_from=lambda batch: None)
    module = InputsOnlyClassifier(copy.deepcopy(net))
    quiet_trainer(max_steps=1, callbacks=[callback]).fit(
        module, DataLoader(TensorDataset(x), batch_size=8)
    )


def test_functional_terms_without_labels():
    from lightning_distill.losses import distillation_terms, kd_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    total, ce, kd = distillation_terms(student, teacher, None, temperature=3.0, alpha=1.0)
    assert ce is None
    torch.testing.assert_close(total, kd_loss(student, teacher, 3.0))
    torch.testing.assert_close(kd, total)
    with pytest.raises(ValueError, match=r"targets must be given while alpha=0\.5"):
        distillation_terms(student, teacher, None, alpha=0.5)
    # labelled: unchanged
    y = torch.tensor([0, 1, 2, 0, 1])
    total, ce, kd = distillation_terms(student, teacher, y, temperature=3.0, alpha=0.5)
    torch.testing.assert_close(ce, F.cross_entropy(student, y))
    torch.testing.assert_close(total, 0.5 * ce + 0.5 * kd)
