"""The teacher lifecycle, checkpoints and messages of DistillationModule and KnowledgeDistillation."""

import functools
import logging
import warnings
from collections import UserDict

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill.awd import AWDModule
from tests.helpers import (
    PlainClassifier,
    logged_and_saved_hyperparameters,
    make_cnn,
    make_data,
    quiet_trainer,
    state_copy,
    states_equal,
)


def _modes(module: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in module.named_modules()}


def _flags(module: nn.Module) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in module.named_parameters()}


def _loader(n=16, batch_size=8, seed=0):
    x, y = make_data(n, seed=seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class _ModeProbe(L.Callback):
    def __init__(self):
        self.teacher_modes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.teacher_modes.append(set(_modes(pl_module.teacher).values()))


def test_every_submodule_mode_and_flag_given_back_as_recorded_at_fit_start():
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(8)
    module = DistillationModule(student, teacher)
    # changed after construction: what counts is the state at the start of the fit
    teacher.train()
    teacher[1].eval()  # the user's frozen BatchNorm inside a training teacher
    teacher[0].weight.requires_grad_(False)
    modes, flags, weights = _modes(teacher), _flags(teacher), state_copy(teacher)
    probe = _ModeProbe()
    trainer = quiet_trainer(max_epochs=1, callbacks=[probe])
    trainer.fit(module, _loader())
    assert probe.teacher_modes and all(m == {False} for m in probe.teacher_modes)
    assert _modes(teacher) == modes and _flags(teacher) == flags
    assert states_equal(weights, state_copy(teacher))  # BatchNorm statistics untouched
    assert teacher.training and not teacher[1].training
    # validate with the same Trainer: frozen again, given back again
    trainer.validate(module, _loader(seed=1), verbose=False)
    assert _modes(teacher) == modes and _flags(teacher) == flags


def test_hint_regressors_built_without_changing_any_mode():
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(8)
    student[1].eval()
    teacher[1].eval()
    before = (_modes(student), _modes(teacher), _flags(teacher))
    x, _ = make_data(4)
    DistillationModule(student, teacher, features=[("4", "4", "hint")], example_input=x[:2])
    assert (_modes(student), _modes(teacher), _flags(teacher)) == before


def test_callback_gives_every_mode_back():
    from tests.kd.test_kd_callback import Classifier

    torch.manual_seed(0)
    teacher = make_cnn(8)
    teacher[1].eval()
    modes, flags = _modes(teacher), _flags(teacher)
    quiet_trainer(max_epochs=1, callbacks=[KnowledgeDistillation(teacher)]).fit(
        Classifier(make_cnn(4)), _loader()
    )
    assert _modes(teacher) == modes and _flags(teacher) == flags


class _NaNTeacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(36, 3)

    def forward(self, x):
        return self.linear(x.flatten(1)) * float("nan")


def test_non_finite_teacher_output_or_input_fails_at_the_first_batch():
    torch.manual_seed(0)
    teacher = _NaNTeacher()
    module = DistillationModule(make_cnn(4), teacher)
    with pytest.raises(ValueError, match="teacher output must be finite logits"):
        quiet_trainer(max_epochs=1).fit(module, _loader())
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    x, y = make_data(8)
    x[3, 0, 0, 0] = float("nan")
    module = DistillationModule(make_cnn(4), make_cnn(8, batch_norm=False))
    with pytest.raises(ValueError, match="inputs must be finite in this batch"):
        quiet_trainer(max_epochs=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    from tests.kd.test_kd_callback import Classifier

    with pytest.raises(ValueError, match="teacher output must be finite logits"):
        quiet_trainer(max_epochs=1, callbacks=[KnowledgeDistillation(_NaNTeacher())]).fit(
            Classifier(make_cnn(4)), _loader()
        )


def test_awd_teacher_with_non_finite_output_fails_naming_it():
    class NaNOutput(nn.Module):
        def forward(self, x):
            return x * float("nan")

    teacher = nn.Sequential(nn.Linear(16, 1), NaNOutput())
    module = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=1.0)
    loader = DataLoader(TensorDataset(torch.randn(8, 16)), batch_size=8)
    with pytest.raises(ValueError, match="teacher (output|gradients) must be finite"):
        quiet_trainer(max_epochs=1).fit(module, loader)
    assert torch.isfinite(module.h0).all()


def test_empty_batch_is_a_clear_error():
    module = DistillationModule(make_cnn(4), make_cnn(8))
    x, y = make_data(0)
    with pytest.raises(ValueError, match="must hold at least one sample"):
        module.training_step((x, y), 0)
    awd = AWDModule(nn.Linear(16, 1), wavelet="db2", levels=2)
    with pytest.raises(ValueError, match="batch must hold at least one sample"):
        awd.training_step(torch.zeros(0, 16), 0)


def test_student_sharing_parameters_with_teacher_is_refused():
    shared = nn.Linear(4, 3)
    student, teacher = nn.Sequential(shared), nn.Sequential(shared)
    with pytest.raises(ValueError, match="teacher must not share parameters with the student"):
        DistillationModule(student, teacher)
    from tests.kd.test_kd_callback import Classifier

    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match="teacher must not share parameters"):
        quiet_trainer(max_epochs=1, callbacks=[KnowledgeDistillation(teacher)]).fit(
            Classifier(student), DataLoader(TensorDataset(x, y), batch_size=8)
        )
    assert all(p.requires_grad for p in shared.parameters())


def test_student_sharing_a_submodule_without_parameters_is_refused():
    # a shared Dropout or affine-free BatchNorm would be in eval mode with the frozen teacher
    # for the whole fit: the student trained without dropout and without running statistics
    norm, drop = nn.BatchNorm1d(4, affine=False), nn.Dropout(0.5)
    student = nn.Sequential(norm, drop, nn.Linear(4, 3))
    teacher = nn.Sequential(norm, drop, nn.Linear(4, 3))
    match = r"teacher must not share submodules with the student; got 2 .*'0' \(BatchNorm1d\)"
    with pytest.raises(ValueError, match=match):
        DistillationModule(student, teacher)
    from tests.kd.test_kd_callback import Classifier

    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match="teacher must not share submodules with the trained"):
        quiet_trainer(max_epochs=1, callbacks=[KnowledgeDistillation(teacher)]).fit(
            Classifier(student), DataLoader(TensorDataset(x, y), batch_size=8)
        )
    assert norm.training and drop.training
    # torch's stateless layers act alike in both modes: sharing them is harmless
    flatten, relu = nn.Flatten(), nn.ReLU()
    DistillationModule(
        nn.Sequential(flatten, nn.Linear(4, 3), relu), nn.Sequential(flatten, nn.Linear(4, 3), relu)
    )

    class Noise(nn.Module):  # a user's layer may read self.training: refused
        def forward(self, x):
            return x + torch.randn_like(x) if self.training else x

    noise = Noise()
    with pytest.raises(ValueError, match=r"share submodules.*'0' \(Noise\)"):
        DistillationModule(nn.Sequential(noise, nn.Linear(4, 3)), nn.Sequential(noise))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": float("inf")}, ValueError, "lr must be a finite number > 0; got inf"),
        ({"lr": "0.1"}, TypeError, "lr must be a real number"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay must be a finite number >= 0"),
        ({"weight_decay": "x"}, TypeError, "weight_decay must be a real number"),
        ({"momentum": 5}, ValueError, "momentum must be a finite number >= 0 and < 1; got 5"),
        ({"cache_teacher": 1}, TypeError, "cache_teacher must be a bool"),
        (
            {"optimizer": {"class_path": "os.system"}},
            ValueError,
            "optimizer must name a torch.optim.Optimizer subclass",
        ),
        ({"features": "3"}, TypeError, "features must be a list"),
    ],
)
def test_hyperparameters_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        DistillationModule(make_cnn(4), make_cnn(8), **kwargs)


def test_feature_weight_is_validated():
    with pytest.raises(ValueError, match="weight must be a finite number >= 0; got inf"):
        FeatureDistillation("3", "3", weight=float("inf"))
    with pytest.raises(TypeError, match="student_layer must be a submodule name"):
        FeatureDistillation(None, "3")


def test_dict_batches_read_alike_and_missing_targets_named():
    torch.manual_seed(0)
    module = DistillationModule(make_cnn(4), make_cnn(8))
    x, y = make_data(4)
    reference = module.training_step((x, y), 0)
    for batch in ({"inputs": x, "targets": y}, {"x": x, "labels": y}, {"input": x, "y": y}):
        torch.testing.assert_close(module.training_step(batch, 0), reference)
    # a batch without labels (alpha < 1 needs them): the message names the keys read
    with pytest.raises(ValueError, match=r"targets must be given .*one of the keys \('targets'"):
        module.training_step({"inputs": x}, 0)
    with pytest.raises(ValueError, match=r"batch must be .*; got a dict with keys \['input_'\]"):
        module.training_step({"input_": x}, 0)
    from tests.kd.test_kd_callback import Classifier

    class DictClassifier(Classifier):
        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch["x"]), batch["label"])

    class DictData(torch.utils.data.Dataset):
        def __init__(self, keys):
            self.keys = keys

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return dict(zip(self.keys, (x[i], y[i])))

    quiet_trainer(max_steps=1, callbacks=[KnowledgeDistillation(make_cnn(8))]).fit(
        DictClassifier(make_cnn(4)), DataLoader(DictData(("x", "label")), batch_size=4)
    )

    class NoTargets(DictClassifier):
        def training_step(self, batch, batch_idx):
            return self(batch["x"]).sum()

    with pytest.raises(ValueError, match=r"targets must be given .*one of the keys \('targets'"):
        quiet_trainer(max_steps=1, callbacks=[KnowledgeDistillation(make_cnn(8))]).fit(
            NoTargets(make_cnn(4)), DataLoader(DictData(("x",)), batch_size=4)
        )


class _Encoding(UserDict):
    """A mapping batch as tokenizers give them (transformers' BatchEncoding): a UserDict, not a
    dict, that moves itself with ``.to``."""

    moved = 0

    def to(self, device):
        type(self).moved += 1
        self.data = {key: value.to(device) for key, value in self.data.items()}
        return self


def test_mapping_batches_that_are_not_dicts_train_as_dict_batches():
    x, y = make_data(8)

    def loader(form):
        pairs = TensorDataset(x, y)
        return DataLoader(
            pairs, batch_size=4, collate_fn=lambda items: form(default_collate(items))
        )

    def keyed(form):
        return lambda batch: form({"x": batch[0], "label": batch[1]})

    def trained_by_module(form):
        torch.manual_seed(0)
        module = DistillationModule(make_cnn(4), make_cnn(8), alpha=0.5)
        quiet_trainer(max_steps=2).fit(module, loader(keyed(form)))
        return state_copy(module.student)

    def trained_by_callback(form):
        from tests.kd.test_kd_callback import Classifier

        class MappingClassifier(Classifier):
            def training_step(self, batch, batch_idx):
                return F.cross_entropy(self(batch["x"]), batch["label"])

        torch.manual_seed(0)
        module, teacher = MappingClassifier(make_cnn(4)), make_cnn(8)
        quiet_trainer(max_steps=2, callbacks=[KnowledgeDistillation(teacher)]).fit(
            module, loader(keyed(form))
        )
        return state_copy(module.net)

    for train in (trained_by_module, trained_by_callback):
        _Encoding.moved = 0
        # read as a dict with the same entries: the same steps, the same student
        assert states_equal(train(_Encoding), train(dict))
        assert _Encoding.moved == 2  # Lightning moved each batch by its own .to
    # a mapping without the keys read is refused as a dict is, naming its type and keys
    module = DistillationModule(make_cnn(4), make_cnn(8))
    with pytest.raises(
        ValueError, match=r"batch must be .*; got a _Encoding with keys \['input_'\]"
    ):
        module.training_step(_Encoding({"input_": x}), 0)


def _sgd_function(params):
    return torch.optim.SGD(params, lr=0.05)


@pytest.mark.parametrize(
    ("optimizer", "kind"),
    [
        ("sgd", torch.optim.SGD),
        (torch.optim.Adam, torch.optim.Adam),
        (functools.partial(torch.optim.SGD, lr=0.05, momentum=0.5), torch.optim.SGD),
        (_sgd_function, torch.optim.SGD),
        (lambda params: torch.optim.SGD(params, lr=0.05), torch.optim.SGD),
    ],
    ids=["name", "class", "partial", "function", "lambda"],
)
def test_checkpoints_load_with_weights_only_for_every_optimizer_form(optimizer, kind, tmp_path):
    torch.manual_seed(0)
    teacher = make_cnn(8)
    module = DistillationModule(make_cnn(4), teacher, optimizer=optimizer)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, _loader())
    path = tmp_path / "kd.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)  # raises on any pickled code
    assert not any(k.startswith("teacher.") for k in checkpoint["state_dict"])
    # functions are code: not stored, passed again; every other form is stored as plain data
    stored = module.hparams.optimizer is not None
    assert stored == (
        optimizer not in (_sgd_function,) and getattr(optimizer, "__name__", "") != "<lambda>"
    )
    again = {} if stored else {"optimizer": optimizer}
    loaded = DistillationModule.load_from_checkpoint(
        path, student=make_cnn(4), teacher=teacher, **again
    )
    assert states_equal(state_copy(loaded.student), state_copy(module.student))
    assert isinstance(loaded.configure_optimizers(), kind)
    # resume from the checkpoint: the restored optimizer takes the checkpoint's state
    resumed = DistillationModule(make_cnn(4), teacher, optimizer=optimizer)
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(resumed, _loader(), ckpt_path=path)
    assert trainer.current_epoch == 2
    (restored,) = trainer.optimizers
    assert isinstance(restored, kind)


def test_optimizer_reference_is_plain_data_and_accepted_back():
    module = DistillationModule(
        make_cnn(4), make_cnn(8), optimizer=functools.partial(torch.optim.SGD, lr=0.3)
    )
    reference = module.hparams.optimizer
    assert reference == {"class_path": "torch.optim.sgd.SGD", "init_args": {"lr": 0.3}}
    again = DistillationModule(make_cnn(4), make_cnn(8), optimizer=reference)
    optimizer = again.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.3
    assert (
        DistillationModule(make_cnn(4), make_cnn(8), optimizer=_sgd_function).hparams["optimizer"]
        is None
    )


def test_features_saved_as_plain_data_and_restored_by_load_from_checkpoint(tmp_path):
    torch.manual_seed(0)
    student, teacher = make_cnn(4), make_cnn(8)
    x, y = make_data(16)
    specs = [
        FeatureDistillation("3", "3", "attention", 2.0, variant="paper", p=3.0),
        FeatureDistillation("4", "4", "hint", 0.5),
    ]
    module = DistillationModule(student, teacher, features=specs, example_input=x[:2])
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    path = tmp_path / "features.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["features"][0]["p"] == 3.0 and hparams["features"][1]["loss"] == "hint"
    loaded = DistillationModule.load_from_checkpoint(path, student=make_cnn(4), teacher=teacher)
    assert loaded.feature_specs == specs
    assert states_equal(
        state_copy(loaded.hint_regressors["1"]), state_copy(module.hint_regressors["1"])
    )
    module.eval()
    loaded.eval()
    terms = module._loss_terms(x, y, None)[0]
    loaded_terms = loaded._loss_terms(x, y, None)[0]
    assert terms.keys() == loaded_terms.keys() and "loss_feature" in terms
    for name in terms:
        torch.testing.assert_close(loaded_terms[name], terms[name])
    # the student alone, as the README says: the hint regressor served the training only
    with pytest.raises(ValueError, match="pass features=None too"):
        DistillationModule.load_from_checkpoint(path, student=make_cnn(4), teacher=None, alpha=0.0)
    alone = DistillationModule.load_from_checkpoint(
        path, student=make_cnn(4), teacher=None, alpha=0.0, features=None, weights_only=True
    )
    assert states_equal(state_copy(alone.student), state_copy(module.student))
    assert len(alone.hint_regressors) == 0
    # a module with other features keeps strict loading: the hint regressor is not dropped
    attention = [FeatureDistillation("3", "3", "attention")]
    with pytest.raises(RuntimeError, match="Unexpected key.*hint_regressors"):
        DistillationModule.load_from_checkpoint(
            path, student=make_cnn(4), teacher=teacher, features=attention
        )


@pytest.mark.parametrize("loss", ["ft", "crd", "sskd"])
def test_methods_with_heads_load_from_checkpoint_without_example_input(tmp_path, loss):
    # their heads' shapes are saved with the pairs, as a hint regressor's are
    torch.manual_seed(0)
    x, y = make_data(16)
    options = {"ft": {"paraphraser_epochs": 1}, "crd": {"num_samples": 16, "num_negatives": 4},
               "sskd": {"head_epochs": 1}}[loss]  # fmt: skip
    layer = "4" if loss == "ft" else "6"
    spec = FeatureDistillation(layer, layer, loss, 1.0, options=options)
    teacher = make_cnn(8)
    module = DistillationModule(make_cnn(4), teacher, features=[spec], example_input=x[:2])
    trainer = quiet_trainer(max_epochs=1)
    data = TensorDataset(x, y, torch.arange(16))
    trainer.fit(module, DataLoader(data, batch_size=8))
    path = tmp_path / f"{loss}.ckpt"
    trainer.save_checkpoint(path)
    loaded = DistillationModule.load_from_checkpoint(
        path, student=make_cnn(4), teacher=teacher, weights_only=True
    )
    assert states_equal(state_copy(loaded.feature_methods), state_copy(module.feature_methods))


def test_numpy_scalar_settings_are_stored_plain_so_checkpoints_load_and_resume(tmp_path):
    # np.float64 (a sweep's np.linspace value) passes every check as a float; stored raw it
    # made torch.load(weights_only=True), and so a resume, fail after the fit
    torch.manual_seed(0)
    teacher = make_cnn(8)
    x, _ = make_data(16)
    features = [
        FeatureDistillation("3", "3", "attention", np.float64(2.0), p=np.float64(3.0)),
        FeatureDistillation("4", "4", "hint", np.float32(0.5)),
    ]
    settings = {
        "alpha": np.linspace(0.5, 0.9, 3)[2],
        "lr": np.float32(1e-2),
        "weight_decay": np.float64(0.0),
        "label_smoothing": torch.tensor(0.1),
    }

    def build():
        torch.manual_seed(1)
        return DistillationModule(
            make_cnn(4), teacher, features=features, example_input=x[:2], **settings
        )

    module = build()
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, _loader())
    path = tmp_path / "numpy.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["alpha"] == 0.9 and type(hparams["alpha"]) is float
    assert hparams["lr"] == pytest.approx(1e-2) and type(hparams["lr"]) is float
    assert type(hparams["weight_decay"]) is float and type(hparams["label_smoothing"]) is float
    assert [pair["weight"] for pair in hparams["features"]] == [2.0, 0.5]
    assert all(type(pair["weight"]) is float for pair in hparams["features"])
    assert type(hparams["features"][0]["p"]) is float
    loaded = DistillationModule.load_from_checkpoint(
        path, student=make_cnn(4), teacher=teacher, weights_only=True
    )
    assert loaded.feature_specs == features
    assert states_equal(state_copy(loaded.hint_regressors), state_copy(module.hint_regressors))
    # resumed with Lightning's default loading (weights_only=True under torch >= 2.6)
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(build(), _loader(), ckpt_path=path)
    assert trainer.current_epoch == 2


def test_the_loggers_are_given_the_hyperparameters_the_checkpoint_holds(tmp_path):
    # the temperature, the optimizer and the feature pairs are stored after
    # save_hyperparameters, and numpy settings made plain: the loggers (hparams.yaml,
    # TensorBoard) were given the copy taken before, without the temperature
    torch.manual_seed(0)
    x, _ = make_data(16)
    module = DistillationModule(
        make_cnn(4),
        make_cnn(8),
        temperature=np.float64(2.0),
        alpha=np.float32(0.5),
        optimizer="sgd",
        features=[FeatureDistillation("4", "4", "hint")],
        example_input=x[:2],
    )
    params, saved = logged_and_saved_hyperparameters(
        module, quiet_trainer, _loader(), tmp_path / "run.ckpt"
    )
    assert dict(params) == dict(saved)
    assert params["temperature"] == 2.0 and type(params["alpha"]) is float

    # a subclass that saves its own arguments too: the loggers get them beside the module's
    class WithOwnArgument(DistillationModule):
        def __init__(self, student, teacher, extra=3, **kwargs):
            super().__init__(student, teacher, **kwargs)
            self.save_hyperparameters(ignore=["student", "teacher"])

    own = WithOwnArgument(make_cnn(4), make_cnn(8), extra=7, temperature=np.float64(3.0))
    assert own.hparams_initial["extra"] == 7 and own.hparams_initial["temperature"] == 3.0
    assert type(own.hparams_initial["temperature"]) is float


def mean_gap(student_feature, teacher_feature):
    return (student_feature.mean() - teacher_feature.mean()) ** 2


def test_a_callable_feature_loss_makes_load_from_checkpoint_ask_for_the_features(tmp_path):
    # code is not plain data: the checkpoint marks the callable, and loading without features=
    # says so instead of dropping every pair and the trained hint regressor silently
    torch.manual_seed(0)
    teacher = make_cnn(8)
    x, _ = make_data(16)
    features = [
        FeatureDistillation("4", "4", "hint"),
        FeatureDistillation("3", "3", mean_gap, 0.5),
    ]
    module = DistillationModule(make_cnn(4), teacher, features=features, example_input=x[:2])
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, _loader())
    path = tmp_path / "callable.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["features"][0]["loss"] == "hint"
    assert hparams["features"][1]["loss"] == {"callable": "mean_gap"}
    with pytest.raises(
        ValueError,
        match=r"features must be given again: .*callable loss 'mean_gap'.* example_input=",
    ):
        DistillationModule.load_from_checkpoint(path, student=make_cnn(4), teacher=teacher)
    # given again: the pairs, the hint regressor and the loss are those of the trained module
    loaded = DistillationModule.load_from_checkpoint(
        path,
        student=make_cnn(4),
        teacher=teacher,
        features=features,
        example_input=x[:2],
        weights_only=True,
    )
    assert loaded.feature_specs == features
    assert states_equal(state_copy(loaded.hint_regressors), state_copy(module.hint_regressors))
    module.eval()
    loaded.eval()
    x, y = make_data(8)
    terms, loaded_terms = module._loss_terms(x, y, None)[0], loaded._loss_terms(x, y, None)[0]
    assert "loss_feature/callable" in terms and terms.keys() == loaded_terms.keys()
    for name in terms:
        torch.testing.assert_close(loaded_terms[name], terms[name])
    # the student alone, as the README says, still loads
    alone = DistillationModule.load_from_checkpoint(
        path,
        student=make_cnn(4),
        teacher=None,
        alpha=0.0,
        features=None,
        cache_teacher=False,
        weights_only=True,
    )
    assert states_equal(state_copy(alone.student), state_copy(module.student))
    assert not alone.feature_specs and len(alone.hint_regressors) == 0


def test_load_from_checkpoint_without_the_teacher_says_to_pass_it_again(tmp_path):
    torch.manual_seed(0)
    module = DistillationModule(make_cnn(4), make_cnn(8))
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, _loader())
    path = tmp_path / "kd.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(
        ValueError,
        match=r"teacher must be passed to load_from_checkpoint again: .*alpha=0\.9.*"
        r"teacher=None, alpha=0\.0, features=None, cache_teacher=False",
    ):
        DistillationModule.load_from_checkpoint(path, student=make_cnn(4))
    # built directly, the same module keeps its message about the label-only baseline
    with pytest.raises(ValueError, match="alpha must be 0 without a teacher"):
        DistillationModule(make_cnn(4))
    # a checkpoint of a student trained on labels alone needs no teacher
    baseline = DistillationModule(make_cnn(4), alpha=0.0)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(baseline, _loader())
    trainer.save_checkpoint(tmp_path / "baseline.ckpt")
    loaded = DistillationModule.load_from_checkpoint(
        tmp_path / "baseline.ckpt", student=make_cnn(4), weights_only=True
    )
    assert loaded.teacher is None
    assert states_equal(state_copy(loaded.student), state_copy(baseline.student))
    # still a class method only, as Lightning's: an instance is not loaded in place
    with pytest.raises(TypeError, match="cannot be called on an instance"):
        module.load_from_checkpoint(path, student=make_cnn(4), teacher=make_cnn(8))


def test_a_float64_teacher_in_the_shape_probe_is_explained():
    # what a precision="64-true" fit leaves: the teacher in float64, the next example_input not
    torch.manual_seed(0)
    teacher = make_cnn(8).double()
    x, _ = make_data(4)
    with pytest.raises(
        TypeError,
        match=r"teacher must take example_input's dtype; its parameters are torch\.float64 "
        r"and example_input is torch\.float32 .*teacher\.to\(torch\.float32\)",
    ):
        DistillationModule(make_cnn(4), teacher, features=[("4", "4", "hint")], example_input=x[:2])
    # cast back as the message says, the probe runs
    module = DistillationModule(
        make_cnn(4), teacher.float(), features=[("4", "4", "hint")], example_input=x[:2]
    )
    assert len(module.hint_regressors) == 1


def test_same_trainer_validating_after_fit_prints_no_private_name(caplog, capsys):
    torch.manual_seed(0)
    module = DistillationModule(make_cnn(4), make_cnn(8))
    trainer = quiet_trainer(max_epochs=1)
    with caplog.at_level(logging.INFO):
        trainer.fit(module, _loader())
        trainer.validate(module, _loader(seed=1), verbose=False)
        trainer.fit(DistillationModule(make_cnn(4), make_cnn(8)), _loader())
    printed = caplog.text + capsys.readouterr().out
    assert "_GiveTeacherBack" not in printed and "will override" not in printed


@pytest.mark.parametrize("which", ["kd", "awd"])
def test_no_missing_val_dataloader_warning_and_no_filter_left(which):
    torch.manual_seed(0)
    if which == "kd":
        module, loader = DistillationModule(make_cnn(4), make_cnn(8)), _loader()
    else:
        module = AWDModule(nn.Linear(16, 1), wavelet="db2", levels=2)
        loader = DataLoader(TensorDataset(torch.randn(8, 16)), batch_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters_before = list(warnings.filters)
        quiet_trainer(max_epochs=1).fit(module, loader)
        assert warnings.filters == filters_before  # the library's filter did not outlive the check
    assert not [w for w in caught if "val_dataloader" in str(w.message)]


def _fit_catching_eval_mode_warnings(module, loader, **trainer_kwargs):
    """Fit; return Lightning's "module(s) in eval mode" warnings and whether the warnings
    filters after the fit are those before it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters_before = list(warnings.filters)
        quiet_trainer(max_epochs=1, **trainer_kwargs).fit(module, loader)
        filters_kept = warnings.filters == filters_before
    return [w for w in caught if "in eval mode at the start of training" in str(w.message)], (
        filters_kept
    )


@pytest.mark.parametrize("which", ["kd", "awd", "callback"])
def test_a_frozen_teacher_in_eval_mode_is_not_reported_and_no_filter_left(which):
    torch.manual_seed(0)
    callbacks = []
    if which == "kd":
        module, loader = DistillationModule(make_cnn(4), make_cnn(8)), _loader()
    elif which == "awd":
        module = AWDModule(nn.Linear(16, 1), wavelet="db2", levels=2)
        loader = DataLoader(TensorDataset(torch.randn(8, 16)), batch_size=8)
    else:  # the callback holds its teacher itself: Lightning never counted it
        module, loader = PlainClassifier(make_cnn(4)), _loader()
        callbacks = [KnowledgeDistillation(make_cnn(8))]
    reported, filters_kept = _fit_catching_eval_mode_warnings(module, loader, callbacks=callbacks)
    assert reported == []
    assert filters_kept  # the library's filter did not outlive the fit
    if which != "callback":
        assert module.teacher.training  # given back as it was


@pytest.mark.parametrize("left_in_eval", ["1", ""])  # the student's BatchNorm; the whole student
def test_modules_of_the_users_own_in_eval_mode_are_still_reported(left_in_eval):
    torch.manual_seed(0)
    student = make_cnn(4)
    student.get_submodule(left_in_eval).eval()
    own = sum(not m.training for m in student.modules())
    module = DistillationModule(student, make_cnn(8))
    reported, filters_kept = _fit_catching_eval_mode_warnings(module, _loader())
    # once, with the count of the user's modules, not the teacher's too
    assert len(reported) == 1
    assert issubclass(reported[0].category, PossibleUserWarning)
    message = str(reported[0].message)
    assert message.startswith(f"Found {own} module(s) in eval mode at the start of training")
    assert f"'student.{left_in_eval or '0'}'" in message and "teacher's 9" in message
    assert filters_kept


def test_the_eval_mode_filter_ends_right_after_lightnings_check():
    class Probe(DistillationModule):
        def on_train_start(self):  # no super(): the filter does not wait for it
            self.filters_at_train_start = list(warnings.filters)

    torch.manual_seed(0)
    module = Probe(make_cnn(4), make_cnn(8))
    filters_before = list(warnings.filters)
    quiet_trainer(max_epochs=1).fit(module, _loader())
    assert module.filters_at_train_start == filters_before


def test_the_eval_mode_filter_is_removed_when_the_fit_fails_before_training():
    class Failing(DistillationModule):
        def configure_optimizers(self):
            raise RuntimeError("no optimizer today")

    torch.manual_seed(0)
    module = Failing(make_cnn(4), make_cnn(8))
    filters_before = list(warnings.filters)
    with pytest.raises(RuntimeError, match="no optimizer today"):
        quiet_trainer(max_epochs=1).fit(module, _loader())
    assert warnings.filters == filters_before
    assert module.teacher.training


def test_configure_callbacks_outside_a_trainer():
    module = DistillationModule(make_cnn(4), make_cnn(8))
    (callback,) = module.configure_callbacks()
    assert isinstance(callback, L.Callback)
    module.setup("fit")  # ends the warning filter and freezes the teacher
    assert not module.teacher.training
    module.teardown("fit")
    assert module.teacher.training


def test_the_modules_lr_reaches_an_optimizer_class_and_conflicts_are_refused():
    def group(**kwargs):
        module = DistillationModule(make_cnn(4), make_cnn(8), **kwargs)
        return module.configure_optimizers().param_groups[0]

    # a class takes the module's settings it accepts (SGD's own default lr is 0.001)
    sgd = group(optimizer=torch.optim.SGD, lr=0.1, weight_decay=0.01, momentum=0.5)
    assert (sgd["lr"], sgd["weight_decay"], sgd["momentum"]) == (0.1, 0.01, 0.5)
    assert group(optimizer=torch.optim.AdamW, lr=0.1)["lr"] == 0.1  # no momentum to take
    # settings left at the module's defaults leave the class's own (RMSprop: lr 0.01, no
    # momentum); a partial's own setting stands
    rmsprop = group(optimizer=torch.optim.RMSprop)
    assert (rmsprop["lr"], rmsprop["momentum"], rmsprop["weight_decay"]) == (0.01, 0, 0)
    partial = functools.partial(torch.optim.SGD, lr=0.3)
    assert (group(optimizer=partial)["lr"], group(optimizer=partial)["momentum"]) == (0.3, 0)
    assert group(optimizer=partial, momentum=0.5)["momentum"] == 0.5
    assert group(optimizer={"class_path": "torch.optim.SGD"}, lr=0.2)["lr"] == 0.2
    with pytest.raises(ValueError, match="lr must be given once: the module has lr=0.5"):
        group(optimizer=partial, lr=0.5)
    # a class path alone, as LightningCLI writes --model.optimizer=torch.optim.SGD
    assert group(optimizer="torch.optim.SGD", lr=0.2)["lr"] == 0.2
    with pytest.raises(ValueError, match="the class path of a torch.optim.Optimizer"):
        group(optimizer="sgdd")
    # a function builds its own optimizer: settings it cannot see are warned about
    with pytest.warns(UserWarning, match=r"lr=0.1 of the module are not used"):
        group(optimizer=_sgd_function, lr=0.1)


@pytest.mark.parametrize("entry", ["module", "callback", "awd"])
def test_a_teacher_with_uninitialised_lazy_parameters_is_refused_by_name(entry):
    """Refused when a run starts (built, it may still be filled from a checkpoint)."""
    teacher = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    student = nn.Linear(4, 3)
    module, callbacks = {
        "module": lambda: (DistillationModule(student, teacher), []),
        "callback": lambda: (PlainClassifier(student, lr=0.1), [KnowledgeDistillation(teacher)]),
        "awd": lambda: (AWDModule(teacher, wavelet="haar", levels=1), []),
    }[entry]()
    batches = DataLoader(TensorDataset(x) if entry == "awd" else TensorDataset(x, y), batch_size=4)
    with pytest.raises(ValueError, match=r"teacher has 2 uninitialised lazy parameter\(s\)"):
        quiet_trainer(max_epochs=1, callbacks=callbacks).fit(module, batches)
    teacher(torch.randn(2, 4))  # run once: shapes known, accepted
    quiet_trainer(max_epochs=1, callbacks=callbacks).fit(module, batches)


@pytest.mark.parametrize("entry", ["module", "awd"])
def test_a_lazy_teacher_is_rebuilt_from_a_checkpoint_that_keeps_it(entry, tmp_path):
    def lazy_teacher():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(3))

    teacher = lazy_teacher()
    teacher(torch.randn(2, 4))
    build = {
        "module": lambda t: DistillationModule(nn.Linear(4, 3), t, keep_teacher_in_checkpoint=True),
        "awd": lambda t: AWDModule(t, wavelet="haar", levels=1, keep_teacher_in_checkpoint=True),
    }[entry]
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    batches = DataLoader(TensorDataset(x) if entry == "awd" else TensorDataset(x, y), batch_size=4)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(build(teacher), batches)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    fresh = lazy_teacher()  # never run: its shapes come from the checkpoint
    cls = DistillationModule if entry == "module" else AWDModule
    kwargs = {"student": nn.Linear(4, 3)} if entry == "module" else {}
    cls.load_from_checkpoint(tmp_path / "m.ckpt", teacher=fresh, **kwargs)
    assert states_equal(state_copy(fresh), state_copy(teacher))


def test_each_evaluation_dataloader_has_its_own_figures_and_a_fit_may_follow():
    torch.manual_seed(0)
    student = make_cnn(4)
    module = DistillationModule(student, make_cnn(8))
    first, second = _loader(16, seed=1), _loader(24, seed=2)
    trainer = quiet_trainer(max_epochs=1)
    for stage, prefix in ((trainer.validate, "val"), (trainer.test, "test")):
        results = stage(module, [first, second], verbose=False)
        for i, loader in enumerate((first, second)):
            x, y = loader.dataset.tensors
            with torch.no_grad():
                accuracy = float((student.eval()(x).argmax(1) == y).float().mean())
            assert results[i][f"{prefix}/acc/dataloader_idx_{i}"] == pytest.approx(accuracy)
    # states reset inside the evaluation loop's inference mode must not break a later fit
    quiet_trainer(max_epochs=1).fit(module, _loader(16), [first, second])
    assert "val/acc/dataloader_idx_1" in quiet_trainer().validate(module, [first, second])[1]


def test_evaluation_loss_is_the_mean_over_samples_with_a_short_last_batch():
    # 10 samples in batches of 3, 3, 3 and 1: the mean of the batch means is another figure
    torch.manual_seed(0)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    student, teacher = nn.Linear(4, 3), nn.Linear(4, 3)
    module = DistillationModule(student, teacher)
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    with torch.no_grad():
        per_sample = F.cross_entropy(student(x), y, reduction="none").double()
    batch_means = torch.stack([chunk.mean() for chunk in per_sample.split(3)]).mean()
    assert abs(float(batch_means - per_sample.mean())) > 1e-3  # the data tell them apart
    trainer = quiet_trainer()
    for stage, prefix in ((trainer.validate, "val"), (trainer.test, "test")):
        (results,) = stage(module, loader, verbose=False)
        assert results[f"{prefix}/loss"] == pytest.approx(float(per_sample.mean()), rel=1e-5)


def test_the_student_alone_loads_from_a_checkpoint_that_kept_the_teacher(tmp_path):
    torch.manual_seed(0)
    module = DistillationModule(make_cnn(4), make_cnn(8), keep_teacher_in_checkpoint=True)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(module, _loader(16))
    trainer.save_checkpoint(tmp_path / "kept.ckpt")
    saved = torch.load(tmp_path / "kept.ckpt", weights_only=True)["state_dict"]
    assert any(key.startswith("teacher.") for key in saved)
    alone = DistillationModule.load_from_checkpoint(
        tmp_path / "kept.ckpt", student=make_cnn(4), teacher=None, alpha=0.0, weights_only=True
    )
    assert states_equal(state_copy(alone.student), state_copy(module.student))


def test_cached_teacher_logits_for_inputs_given_as_a_dict():
    class TwoInputs(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 3))

        def forward(self, inputs):
            return self.net(torch.cat([inputs["left"], inputs["right"]], dim=1))

    class Indexed(torch.utils.data.Dataset):
        def __init__(self):
            self.x, self.y = torch.randn(24, 4), torch.randint(0, 3, (24,))

        def __len__(self):
            return 24

        def __getitem__(self, i):
            return {"left": self.x[i], "right": 0.5 * self.x[i]}, self.y[i], i

    torch.manual_seed(0)
    data, teacher = Indexed(), TwoInputs(16)
    trained = []
    for cache in (False, True):
        torch.manual_seed(1)
        module = DistillationModule(TwoInputs(4), teacher, cache_teacher=cache)
        quiet_trainer(max_epochs=2).fit(module, DataLoader(data, batch_size=8))
        trained.append(state_copy(module.student))
    assert states_equal(*trained)


def test_enum_settings_are_stored_as_their_values():
    # a (str, Enum) member passes the checks as its str value but str() of it is "Kind.NAME"
    import enum

    from lightning_distill._validation import plain_data

    class Optimizer(str, enum.Enum):
        SGD = "sgd"

    class Level(enum.IntEnum):
        HIGH = 3

    assert plain_data({"optimizer": Optimizer.SGD, "levels": [Level.HIGH]}) == {
        "optimizer": "sgd",
        "levels": [3],
    }
    assert type(plain_data(Level.HIGH)) is int
    module = DistillationModule(make_cnn(4), make_cnn(8), optimizer=Optimizer.SGD)
    assert module.hparams["optimizer"] == "sgd" and type(module.hparams["optimizer"]) is str


def test_a_student_in_another_dtype_than_the_batches_is_explained():
    torch.manual_seed(0)
    module = DistillationModule(nn.Linear(4, 3), nn.Linear(4, 3)).double()
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(TypeError, match=r"student must take the inputs' dtype.*float64.*64-true"):
        module.training_step((x, y), 0)
    module.training_step((x.double(), y), 0)


def test_integer_batches_for_a_floating_student_are_explained():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    y = torch.randint(0, 3, (8,))

    def net():
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))

    module = DistillationModule(net(), net(), alpha=0.5)
    for step in (module.training_step, module.validation_step, module.predict_step):
        with pytest.raises(
            TypeError, match=r"student must take the inputs' dtype.*float32.*torch.uint8.*/ 255"
        ):
            step((images, y), 0)
    assert torch.isfinite(module.training_step((images.float() / 255, y), 0))
    # a student that reads integers (an embedding) takes them; a shape error in it stays torch's
    embedding = DistillationModule(
        nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3)),
        nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3)),
    )
    tokens = torch.randint(0, 10, (8, 3))
    assert torch.isfinite(embedding.training_step((tokens, y), 0))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        embedding.training_step((torch.randint(0, 10, (8, 5)), y), 0)
    # token ids of a dtype the embedding does not take: torch's own words, no float advice
    with pytest.raises(RuntimeError, match="'indices' to have one of the following scalar types"):
        embedding.training_step((tokens.to(torch.uint8), y), 0)


def test_a_users_own_filter_for_the_same_warnings_outlives_the_fit():
    # warnings.filterwarnings replaces an equal entry: the library's filters use patterns of
    # their own, so removing them never removes a user's filter for the same message
    import re

    from lightning_distill._logging import QuietMissingValLoader, QuietWarning

    message = "Found 9 module(s) in eval mode at the start of training."
    with warnings.catch_warnings():
        for text in (message, "You defined a `validation_step` but have no `val_dataloader`"):
            warnings.filterwarnings("ignore", message=re.escape(text), category=PossibleUserWarning)
        before = list(warnings.filters)
        for quiet in (QuietWarning(message), QuietMissingValLoader()):
            quiet.stop()
        assert warnings.filters == before


def test_a_teacher_that_does_not_take_the_inputs_is_named():
    torch.manual_seed(0)
    module = DistillationModule(nn.Linear(6, 3), nn.Linear(5, 3))  # teacher of 5 features
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match=r"teacher must take the inputs.*shape \(8, 6\)") as caught:
        module.training_step((x, y), 0)
    assert isinstance(caught.value.__cause__, RuntimeError)  # torch's own message kept
    assert "mat1 and mat2" in str(caught.value)


def test_a_teacher_error_after_a_first_batch_keeps_its_type():
    class Fails(nn.Linear):
        calls = 0

        def forward(self, x):
            Fails.calls += 1
            if Fails.calls > 1:
                raise RuntimeError("the teacher's own failure")
            return super().forward(x)

    torch.manual_seed(0)
    module = DistillationModule(nn.Linear(4, 3), Fails(4, 3))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    module.training_step((x, y), 0)
    with pytest.raises(RuntimeError, match="the teacher's own failure"):
        module.training_step((x, y), 1)


def test_a_teacher_that_does_not_take_inputs_of_a_dict_is_named_with_their_shapes():
    class Reads(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.linear = nn.Linear(features, 3)

        def forward(self, inputs):
            return self.linear(inputs["a"])

    torch.manual_seed(0)
    module = DistillationModule(Reads(4), Reads(5))  # teacher of 5 features
    x, y = {"a": torch.randn(8, 4)}, torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match=r"inputs of shape \{'a': \(8, 4\)\}"):
        module.training_step((x, y), 0)


def test_the_library_data_sets_train_a_module_as_they_are():
    # their batches are dicts keyed "image" and "target" (as the monitors' probes read them)
    from torch.utils.data import DataLoader

    from lightning_distill.datasets import SyntheticCells

    def net():
        return nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)
        )

    torch.manual_seed(0)
    batch = next(iter(DataLoader(SyntheticCells(8, image_size=32), batch_size=8)))
    module = DistillationModule(net(), net(), alpha=0.5)
    loss = module.training_step(batch, 0)
    expected = module.training_step((batch["image"], batch["target"]), 0)
    assert torch.isfinite(loss) and torch.equal(loss, expected)


def test_a_segmentation_map_read_as_the_targets_is_named():
    # a Broden-like dict batch: image and segmentation labels, no target; "image" is an input
    # key and "labels" a target key, so the map reaches the loss as the targets
    torch.manual_seed(0)

    def net():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))

    module = DistillationModule(net(), net(), alpha=0.5)
    batch = {"image": torch.randn(2, 3, 4, 4), "labels": torch.zeros(2, 1, 4, 4, dtype=torch.long)}
    with pytest.raises(ValueError, match=r"got \(2, 1, 4, 4\) \(a map per sample: a segmentation"):
        module.training_step(batch, 0)


@pytest.mark.parametrize("make", ["kd", "awd"])
def test_attribute_setting_matches_nn_module(make):
    """The modules set plain strings and None without nn.Module's registry checks (the Trainer
    sets the running hook's name twice a hook); anything else, and any name holding a
    parameter, buffer or submodule, goes through nn.Module's rules unchanged."""
    if make == "kd":
        module = DistillationModule(nn.Linear(4, 3), nn.Linear(4, 3))
        param_name = "student"  # a submodule
    else:
        module = AWDModule(nn.Linear(16, 1), wavelet="db2", levels=2)
        param_name = "h0"
    module.register_buffer("kept", torch.zeros(2))

    module._current_fx_name = "training_step"
    assert module._current_fx_name == "training_step"
    assert "_current_fx_name" in module.__dict__
    module._current_fx_name = None
    assert module._current_fx_name is None

    # a string where a parameter or submodule is registered: nn.Module's TypeError
    with pytest.raises(TypeError, match=param_name):
        setattr(module, param_name, "text")
    assert isinstance(getattr(module, param_name), nn.Module | nn.Parameter)
    # None on a registered buffer empties the registry entry, as nn.Module does
    module.kept = None
    assert "kept" in module._buffers and module._buffers["kept"] is None
    assert "kept" not in module.__dict__
    # a submodule set after a plain value under the same name moves into the registry
    module.extra = "plain"
    module.extra = nn.Linear(1, 1)
    assert "extra" in module._modules and "extra" not in module.__dict__
    module.extra = None
    assert module._modules["extra"] is None
