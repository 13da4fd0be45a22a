"""FT, CRD, SSKD, RKD and PKT through FeatureDistillation in a DistillationModule fit."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill.kd.feature_losses import CRD, SSKD, FactorTransfer
from tests.helpers import (
    IndexedDataset,
    PlainClassifier,
    make_cnn,
    make_data,
    quiet_trainer,
    state_copy,
)

# make_cnn: 0 conv, 1 bn, 2 relu, 3 conv, 4 relu, 5 pool, 6 flatten, 7 linear
N = 48
OPTIONS = {
    "ft": {"paraphraser_epochs": 2},
    "crd": {"num_samples": N, "num_negatives": 16, "embed_dim": 8},
    "sskd": {"head_epochs": 2},
    "rkd": None,
    "pkt": None,
}
LAYER = {"ft": "4", "crd": "6", "sskd": "6", "rkd": "6", "pkt": "6"}
TERMS = {
    "ft": {"ft"},
    "crd": {"crd"},
    "sskd": {"sskd_tf", "sskd_ss"},
    "rkd": {"rkd_distance", "rkd_angle"},
    "pkt": {"pkt"},
}


def _loader(x, y, seed=0, batch_size=16):
    dataset = IndexedDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def _module(name, student, teacher, x, weight=1.0):
    spec = FeatureDistillation(LAYER[name], LAYER[name], name, weight, options=OPTIONS[name])
    return DistillationModule(student, teacher, features=[spec], example_input=x[:2], lr=0.01)


def _models(seed=0):
    torch.manual_seed(seed)
    return make_cnn(4), make_cnn(6)


@pytest.mark.parametrize("name", ["ft", "crd", "sskd", "rkd", "pkt"])
def test_each_method_trains_logs_its_terms_and_leaves_the_teacher_alone(name):
    x, y = make_data(N)
    student, teacher = _models()
    teacher_before = state_copy(teacher)
    flags = [p.requires_grad for p in teacher.parameters()]
    module = _module(name, student, teacher, x)
    method = module.feature_methods["0"]
    trainable = {id(p) for p in method.student_parameters()}
    heads_before = {k: v.clone() for k, v in method.state_dict().items()}
    trainer = quiet_trainer(max_epochs=2, log_every_n_steps=1)
    trainer.fit(module, _loader(x, y))

    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    names = {k.removeprefix("train/loss_feature/") for k in logged if "loss_feature/" in k}
    epoch_means = {n for n in names if n.endswith("_epoch")}  # each term's epoch mean too
    names -= epoch_means
    assert names == TERMS[name] and epoch_means == {f"{term}_epoch" for term in names}
    parts = sum(logged[f"train/loss_feature/{t}"] for t in names)
    assert parts == pytest.approx(logged["train/loss_feature"], rel=1e-5)
    assert all(math.isfinite(v) for v in logged.values())
    # the teacher: bit-identical, flags and mode given back
    after = teacher.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in teacher_before.items())
    assert [p.requires_grad for p in teacher.parameters()] == flags and teacher.training
    # the method's trainable parts are optimised with the student and changed
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert trainable <= optimised
    changed = {k for k, v in method.state_dict().items() if not torch.equal(v, heads_before[k])}
    if name in ("rkd", "pkt"):
        assert not trainable
    else:
        assert trainable and changed
    if method.needs_pretraining:
        assert method.is_pretrained
        stage = {id(p) for p in method.parameters()} - trainable
        assert stage and not stage & optimised  # the first stage's parts are not optimised


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(ValueError, match="'crd'.*'pkt'|'pkt'.*'crd'") as info:
        FeatureDistillation("6", "6", "contrastive")
    for name in ("attention", "hint", "ft", "crd", "sskd", "rkd", "pkt"):
        assert repr(name) in str(info.value)


def test_crd_needs_num_samples_and_known_options():
    x, _ = make_data(8)
    student, teacher = _models()
    with pytest.raises(ValueError, match="num_samples"):
        DistillationModule(student, teacher, features=[("6", "6", "crd")], example_input=x[:2])
    spec = FeatureDistillation("6", "6", "crd", options={"num_samples": 8, "bank": 3})
    with pytest.raises(ValueError, match="options must be keyword arguments of CRD"):
        DistillationModule(student, teacher, features=[spec], example_input=x[:2])
    with pytest.raises(ValueError, match="example_input"):
        DistillationModule(student, teacher, features=[("6", "6", "ft")])


def test_crd_batches_without_index_and_banks_smaller_than_the_batch_are_refused():
    x, y = make_data(32)
    student, teacher = _models()
    module = _module("crd", student, teacher, x)
    plain = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with pytest.raises(ValueError, match="index must be given"):
        quiet_trainer(max_steps=1).fit(module, plain)
    spec = FeatureDistillation("6", "6", "crd", options={"num_samples": 4})
    small = DistillationModule(student, teacher, features=[spec], example_input=x[:2])
    with pytest.raises(ValueError, match="num_samples must be at least the batch size"):
        quiet_trainer(max_steps=1).fit(small, _loader(x[:8], y[:8], batch_size=16))


def test_sskd_refuses_images_that_are_not_square():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 6, 5, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    student, teacher = _models()
    spec = FeatureDistillation("6", "6", "sskd", options={"head_epochs": 0})
    module = DistillationModule(student, teacher, features=[spec], example_input=x[:2])
    with pytest.raises(ValueError, match="H == W"):
        quiet_trainer(max_steps=1).fit(module, _loader(x, y))


@pytest.mark.parametrize("name", ["crd", "ft"])
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(name, tmp_path):
    x, y = make_data(N)

    def run(max_epochs, ckpt_path=None, save_to=None):
        student, teacher = _models()
        module = _module(name, student, teacher, x)
        trainer = quiet_trainer(max_epochs=max_epochs)
        trainer.fit(module, _loader(x, y), ckpt_path=ckpt_path)
        if save_to is not None:
            trainer.save_checkpoint(save_to)
        return module

    whole = run(3)
    ckpt = tmp_path / "epoch1.ckpt"
    run(1, save_to=ckpt)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert not any(k.startswith("teacher.") for k in state)
    if name == "crd":
        assert {"feature_methods.0.memory_student", "feature_methods.0.steps"} <= set(state)
    else:
        assert bool(state["feature_methods.0.pretrained"])
    resumed = run(3, ckpt_path=ckpt)
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].double(), b[key].double(), atol=1e-6), key
    if name == "crd":
        assert int(resumed.feature_methods["0"].steps) == 3 * N // 16


def test_a_method_pretrained_by_hand_is_not_trained_again():
    x, y = make_data(N)
    student, teacher = _models()
    module = _module("ft", student, teacher, x)
    method = module.feature_methods["0"]
    method.pretrained.fill_(True)
    before = state_copy(method.paraphraser_encoder)
    quiet_trainer(max_epochs=1).fit(module, _loader(x, y))
    after = method.paraphraser_encoder.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_methods_are_public_modules():
    assert issubclass(CRD, torch.nn.Module) and issubclass(SSKD, torch.nn.Module)
    assert FactorTransfer.needs_pretraining and CRD.needs_index


@pytest.mark.parametrize("precision", ["64-true", "bf16-true", "float64 by hand"])
@pytest.mark.parametrize("form", ["module", "callback"])
def test_methods_with_heads_train_in_true_precisions(precision, form):
    # the first stages read the training batches as the Trainer's precision gives them, the
    # heads are in the module's dtype (the callback casts its own), the CRD banks are read in
    # the embeddings' dtype; networks and data cast by the user, with the Trainer's default
    # precision, get heads of their dtype too (a float32 hint regressor met float64 features)
    x, y = make_data(N)
    dtype = torch.bfloat16 if precision == "bf16-true" else torch.float64
    by_hand = precision == "float64 by hand"
    if by_hand:
        x, precision = x.double(), "32-true"
    for name in ("ft", "crd", "sskd", "hint"):
        student, teacher = _models()
        if by_hand:
            student, teacher = student.double(), teacher.double()
        layer = "4" if name == "hint" else LAYER[name]
        options = None if name == "hint" else OPTIONS[name]
        prefix = "" if form == "module" else "net."
        spec = FeatureDistillation(prefix + layer, layer, name, 1.0, options=options)
        if form == "module":
            module = DistillationModule(
                student, teacher, features=[spec], example_input=x[:2], lr=0.01
            )
            callbacks = []
        else:
            module = PlainClassifier(student)
            callback = KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])
            callbacks = [callback]
        trainer = quiet_trainer(max_epochs=1, precision=precision, callbacks=callbacks)
        trainer.fit(module, _loader(x, y))
        if form == "module":
            heads = [*module.feature_methods.parameters(), *module.hint_regressors.parameters()]
        else:
            heads = list(callback._features.methods.parameters())
        assert heads and {p.dtype for p in heads} == {dtype}, name
        loss = trainer.callback_metrics["train/loss" if form == "module" else "train/loss_total"]
        assert torch.isfinite(loss), name


def test_a_hooked_layer_the_networks_share_is_refused():
    # a parameterless layer built once and put in both networks passes the shared-parameter
    # check; its hook would record the teacher's call, and RKD would compare it with itself
    shared = torch.nn.Flatten()
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), shared,
                                  torch.nn.Linear(64, 3))  # fmt: skip
    teacher = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), shared,
                                  torch.nn.Linear(96, 3))  # fmt: skip
    for student_layer, teacher_layer in (("2", "1"), ("1", "2")):
        spec = FeatureDistillation(student_layer, teacher_layer, "rkd", 1.0)
        with pytest.raises(ValueError, match=r"must name a layer of one network only; got '2'"):
            DistillationModule(student, teacher, features=[spec])
    DistillationModule(student, teacher, features=[FeatureDistillation("1", "1", "rkd", 1.0)])


def test_a_callable_loss_must_return_a_scalar_tensor():
    x, y = make_data(16)
    for bad, got in ((lambda s, t: (s - t).pow(2), "shape"), (lambda s, t: 1.5, "a float")):
        student, teacher = make_cnn(4), make_cnn(4)
        spec = FeatureDistillation("4", "4", bad, 1.0)
        module = DistillationModule(student, teacher, features=[spec])
        with pytest.raises(TypeError, match=f"loss must return a floating-point scalar.*{got}"):
            quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))


@pytest.mark.parametrize("form", ["module", "callback"])
def test_a_callable_loss_that_gives_nan_or_infinity_is_refused_before_the_step(form):
    x, y = make_data(16)
    for value in (math.nan, math.inf):

        def bad(s, t, value=value):
            return (s - t).pow(2).mean() * value

        student, teacher = make_cnn(4), make_cnn(4)
        before = [p.detach().clone() for p in student.parameters()]
        if form == "module":
            spec = FeatureDistillation("4", "4", bad, 1.0)
            module, callbacks = DistillationModule(student, teacher, features=[spec]), []
        else:
            spec = FeatureDistillation("net.4", "4", bad, 1.0)
            module = PlainClassifier(student)
            callbacks = [KnowledgeDistillation(teacher, features=[spec])]
        with pytest.raises(ValueError, match="loss must return a finite value; bad returned NaN"):
            quiet_trainer(max_steps=1, callbacks=callbacks).fit(
                module, DataLoader(TensorDataset(x, y), batch_size=8)
            )
        # no optimizer step on the value: the student's parameters are as they were (its batch
        # normalisation's statistics moved in the forward pass, as in any refused step)
        assert all(torch.equal(a, b) for a, b in zip(before, student.parameters())), value


def test_a_feature_layer_the_forward_does_not_run_is_named():
    x, y = make_data(16)

    class WithUnused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_cnn(4)
            self.unused = torch.nn.Conv2d(4, 4, 1)  # defined, never called by the forward

        def forward(self, x):
            return self.net(x)

    student = WithUnused()
    for spec in (
        FeatureDistillation("unused", "4", "hint"),
        FeatureDistillation("unused", "6", "rkd"),
    ):
        with pytest.raises(
            ValueError,
            match=r"features \(student_layer\) must name a submodule that the student's forward runs; got 'unused'",
        ):
            module = DistillationModule(student, make_cnn(4), features=[spec], example_input=x[:2])
            quiet_trainer(max_steps=1).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))


def test_heads_of_a_half_precision_student_keep_their_float64_buffers():
    x, _ = make_data(8)
    torch.manual_seed(0)
    module = DistillationModule(
        make_cnn(4).half(),
        make_cnn(6).half(),
        features=[
            FeatureDistillation(
                "6", "6", "crd", options={"num_samples": 8, "num_negatives": 4, "embed_dim": 4}
            )
        ],
        example_input=x[:2].half(),
    )
    crd = module.feature_methods["0"]
    assert crd.normalizers.dtype == torch.float64
    assert {p.dtype for p in crd.parameters()} == {torch.float16}


def test_a_feature_layer_run_twice_in_one_forward_is_said():
    class Shared(torch.nn.Module):  # one block applied twice
        def __init__(self):
            super().__init__()
            self.block = torch.nn.Linear(4, 4)
            self.head = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.block(torch.relu(self.block(x))))

    torch.manual_seed(0)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    spec = FeatureDistillation("block", "block", "hint", 1.0)
    module = DistillationModule(Shared(), Shared(), features=[spec], example_input=x[:2])
    with pytest.warns(UserWarning, match=r"'block' ran 2 times in one forward pass; its last"):
        module.training_step((x, y), 0)


@pytest.mark.parametrize("name", ["ft", "sskd"])
def test_a_first_stage_refuses_one_shot_training_data(name):
    # the first stage would read the generator, and the student's epoch train on what is left
    x, y = make_data(N)
    module = _module(name, *_models(), x)
    batches = ((x[i : i + 16], y[i : i + 16]) for i in range(0, N, 16))
    with pytest.raises(
        TypeError, match=r"must be data that can be read again .*one-shot generator"
    ):
        quiet_trainer(max_epochs=1).fit(module, batches)


def test_crd_warns_when_the_index_is_not_each_samples_own():
    import warnings

    x, y = make_data(N)
    for local, warned in ((True, True), (False, False)):
        module = _module("crd", *_models(), x)
        if local:  # the position within each batch of 16, not the sample's index
            loader = DataLoader(TensorDataset(x, y, torch.arange(N) % 16), batch_size=16)
        else:
            loader = DataLoader(IndexedDataset(x, y), batch_size=16, shuffle=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(max_epochs=2).fit(module, loader)
        said = [str(w.message) for w in caught if "bank rows" in str(w.message)]
        assert len(said) == int(warned)  # once, after the first num_samples rows
        if warned:
            assert f"CRD wrote 16 of its {N} bank rows over the first {N} training rows" in said[0]
