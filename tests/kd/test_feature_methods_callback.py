"""Feature methods through the KnowledgeDistillation callback on a user's own module."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lightning_distill import FeatureDistillation, KnowledgeDistillation
from tests.helpers import IndexedDataset, make_cnn, make_data, quiet_trainer, state_copy

N = 48


class Classifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = make_cnn(4)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


def _loader(x, y):
    dataset = IndexedDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    return DataLoader(dataset, batch_size=16, sampler=sampler)


def _callback(x, teacher, loss="crd"):
    options = {
        "crd": {"num_samples": N, "num_negatives": 16, "embed_dim": 8},
        "ft": {"paraphraser_epochs": 1},
    }[loss]
    layer = "6" if loss == "crd" else "4"
    spec = FeatureDistillation(f"net.{layer}", layer, loss, 0.8, options=options)
    return KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])


@pytest.mark.parametrize("loss", ["crd", "ft"])
def test_callback_trains_the_method_and_gives_module_and_teacher_back(loss):
    x, y = make_data(N)
    torch.manual_seed(1)
    teacher = make_cnn(6)
    before = state_copy(teacher)
    module = Classifier()
    callback = _callback(x, teacher, loss)
    trainer = quiet_trainer(max_epochs=2, log_every_n_steps=1, callbacks=[callback])
    trainer.fit(module, _loader(x, y))
    methods = callback._features.methods
    state = callback.state_dict()["features"]["methods"]
    assert state and all(torch.equal(v, methods.state_dict()[k].cpu()) for k, v in state.items())
    logged = trainer.callback_metrics
    names = [k for k in logged if k.startswith("train/loss_feature/")]
    assert names == [f"train/loss_feature/{loss}"]
    assert float(logged[names[0]]) == pytest.approx(float(logged["train/loss_feature"]))
    method = methods["0"]
    assert method.is_pretrained if loss == "ft" else int(method.steps) == 2 * N // 16
    assert "training_step" not in module.__dict__
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in teacher.parameters()) and teacher.training


def test_crd_refuses_a_third_item_that_is_a_mask_not_an_index():
    """A boolean third item (a mask) had been read as bank rows 0 and 1, silently."""
    x, y = make_data(N)
    torch.manual_seed(1)
    teacher = make_cnn(6)
    mask = torch.arange(N) % 3 == 0
    loader = DataLoader(TensorDataset(x, y, mask), batch_size=16)
    callback = _callback(x, teacher)
    trainer = quiet_trainer(max_steps=1, callbacks=[callback])
    with pytest.raises(TypeError, match=r"index must be .*got a torch.bool tensor.*third item"):
        trainer.fit(Classifier(), loader)
    # the banks were left as they were: no row written from the mask
    assert int(callback._features.methods["0"].steps) == 0


def test_callback_resume_equals_an_uninterrupted_run(tmp_path):
    x, y = make_data(N)

    def run(max_epochs, ckpt_path=None, save_to=None):
        torch.manual_seed(1)
        teacher = make_cnn(6)
        module, callback = Classifier(), None
        callback = _callback(x, teacher)
        trainer = quiet_trainer(max_epochs=max_epochs, callbacks=[callback])
        trainer.fit(module, _loader(x, y), ckpt_path=ckpt_path)
        if save_to is not None:
            trainer.save_checkpoint(save_to)
        return module, callback

    whole_module, whole_callback = run(3)
    run(1, save_to=tmp_path / "one.ckpt")
    resumed_module, resumed_callback = run(3, ckpt_path=tmp_path / "one.ckpt")
    for a, b in [
        (whole_module.state_dict(), resumed_module.state_dict()),
        (
            whole_callback._features.methods.state_dict(),
            resumed_callback._features.methods.state_dict(),
        ),
    ]:
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key].double(), b[key].double(), atol=1e-6), key


def test_callback_shaped_methods_need_example_input():
    x, y = make_data(N)
    teacher = make_cnn(6)
    spec = FeatureDistillation("net.6", "6", "crd", options={"num_samples": N})
    callback = KnowledgeDistillation(teacher, features=[spec])
    with pytest.raises(ValueError, match="example_input"):
        quiet_trainer(max_steps=1, callbacks=[callback]).fit(Classifier(), _loader(x, y))


@pytest.mark.parametrize(
    ("student_layer", "teacher_layer", "side"),
    [("layer3", "4", "student_layer"), ("net.4", "layer9", "teacher_layer")],
)
def test_callback_says_which_side_names_a_layer_it_has_not(student_layer, teacher_layer, side):
    x, y = make_data(N)
    spec = FeatureDistillation(student_layer, teacher_layer, "attention")
    callback = KnowledgeDistillation(make_cnn(6), features=[spec])
    with pytest.raises(ValueError, match=rf"features \({side}\): .* has no submodule named"):
        quiet_trainer(max_steps=1, callbacks=[callback]).fit(Classifier(), _loader(x, y))


def test_feature_optimizer_steps_with_the_module_under_gradient_accumulation():
    x, y = make_data(N)  # 3 batches of 16 per epoch
    torch.manual_seed(1)
    teacher = make_cnn(6)
    callback = KnowledgeDistillation(
        teacher,
        features=[FeatureDistillation("net.4", "4", "hint")],
        example_input=x[:2],
    )
    module_steps = []

    class CountSteps(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            module_steps.append(trainer.global_step)

    trainer = quiet_trainer(
        max_epochs=2, accumulate_grad_batches=2, callbacks=[callback, CountSteps()]
    )
    trainer.fit(Classifier(), _loader(x, y))
    feature_steps = callback._features.optimizer.state_dict()["state"][0]["step"]
    # batches 1-2 and 3 (the epoch's end) of each epoch: 2 steps per epoch, not 3
    assert len(module_steps) == 4 and int(feature_steps) == 4


class Wider(Classifier):
    def __init__(self, channels):
        super().__init__()
        torch.manual_seed(0)
        self.net = make_cnn(channels)


def test_a_callback_reused_for_another_module_starts_as_a_fresh_one():
    # a sweep over students with one callback: the second started from the first's trained
    # hint regressor and Adam state (and one of another width failed deep in torch)
    x, y = make_data(N)
    torch.manual_seed(1)
    teacher = make_cnn(6)

    def hint_callback():
        spec = FeatureDistillation("net.4", "4", "hint", 0.8)
        return KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])

    reused = hint_callback()
    quiet_trainer(max_epochs=1, callbacks=[reused]).fit(Classifier(), _loader(x, y))
    first_heads = state_copy(reused._features.methods)
    for channels in (4, 5):  # the same architecture, then another width
        trained = {}
        for name, callback in (("reused", reused), ("fresh", hint_callback())):
            module = Wider(channels)
            torch.manual_seed(2)  # the heads are built from the global random state
            quiet_trainer(max_epochs=1, callbacks=[callback]).fit(module, _loader(x, y))
            trained[name] = (state_copy(module), state_copy(callback._features.methods))
        for a, b in zip(trained["reused"], trained["fresh"]):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)
    # the same module fitted again continues with its trained heads (a fresh optimizer, as
    # Lightning gives the module's own parameters)
    again = hint_callback()
    module = Classifier()
    quiet_trainer(max_epochs=1, callbacks=[again]).fit(module, _loader(x, y))
    heads = state_copy(again._features.methods)

    class AtStart(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.heads = state_copy(again._features.methods)
            self.optimizer = again._features.optimizer

    start = AtStart()
    quiet_trainer(max_steps=1, callbacks=[again, start]).fit(module, _loader(x, y))
    assert all(torch.equal(heads[k], v) for k, v in start.heads.items())
    assert start.optimizer is None  # built at the fit's first step
    assert first_heads.keys() == heads.keys()


def test_a_resume_that_takes_no_step_leaves_no_optimizer_state_for_the_next_fit(tmp_path):
    # a resume from a checkpoint at max_epochs takes no step; the next fit of the same module
    # (no checkpoint) must start the heads' Adam afresh, as Lightning starts the module's own,
    # not from the state the resume loaded and never used
    x, y = make_data(N)
    torch.manual_seed(1)
    spec = FeatureDistillation("net.4", "4", "hint", 0.8)
    callback = KnowledgeDistillation(make_cnn(6), features=[spec], example_input=x[:2])
    module = Classifier()
    trainer = quiet_trainer(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path)
    trainer.fit(module, _loader(x, y))
    path = tmp_path / "done.ckpt"
    trainer.save_checkpoint(path)
    resumed = quiet_trainer(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path)
    resumed.fit(module, _loader(x, y), ckpt_path=path)
    assert resumed.global_step == 3  # restored, and no step taken
    quiet_trainer(max_steps=1, callbacks=[callback]).fit(module, _loader(x, y))
    state = callback._features.optimizer.state_dict()["state"]
    assert int(state[0]["step"]) == 1  # one step of this fit, not 3 + 1


def test_a_used_callback_pickles():
    # the module it was built for is held by a weak reference, which does not pickle: a used
    # callback sent to ddp_spawn processes or a joblib sweep failed
    import pickle

    x, y = make_data(N)
    torch.manual_seed(1)
    spec = FeatureDistillation("net.4", "4", "hint", 0.8)
    callback = KnowledgeDistillation(make_cnn(6), features=[spec], example_input=x[:2])
    quiet_trainer(max_steps=1, callbacks=[callback]).fit(Classifier(), _loader(x, y))
    copy = pickle.loads(pickle.dumps(callback))
    assert copy._features._built_for is None
    heads = state_copy(callback._features.methods)
    assert all(torch.equal(heads[k], v) for k, v in state_copy(copy._features.methods).items())


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_parts_kept_from_a_fit_at_another_precision_follow_the_next_fits(precision):
    # a module fitted under "64-true" (or "bf16-true"), cast back with .float() and fitted again
    # under 32-true: its hint regressor stayed float64 (bfloat16) and the hint loss failed on
    # the float32 features
    x, y = make_data(N)
    torch.manual_seed(1)
    teacher = make_cnn(6)
    specs = [
        FeatureDistillation("net.4", "4", "hint", 0.8),
        FeatureDistillation(
            "net.6",
            "6",
            "crd",
            0.8,
            options={"num_samples": N, "num_negatives": 16, "embed_dim": 8},
        ),
    ]
    callback = KnowledgeDistillation(teacher, features=specs, example_input=x[:2])
    module = Classifier()
    quiet_trainer(max_epochs=1, precision=precision, callbacks=[callback]).fit(
        module, _loader(x, y)
    )
    trained = state_copy(callback._features.methods)
    wide = torch.float64 if precision == "64-true" else torch.bfloat16
    assert {v.dtype for v in trained.values() if v.is_floating_point()} == {wide}

    class AtStart(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.parts = state_copy(callback._features.methods)

    # fitted again at the same precision: the parts carry on bit for bit
    start = AtStart()
    quiet_trainer(max_steps=1, precision=precision, callbacks=[callback, start]).fit(
        module, _loader(x, y)
    )
    assert start.parts.keys() == trained.keys()
    assert all(
        v.dtype == trained[k].dtype and torch.equal(v, trained[k]) for k, v in start.parts.items()
    )
    trained = state_copy(callback._features.methods)
    module.float()
    # the dtypes a fresh callback builds the parts in for a float32 module
    fresh = KnowledgeDistillation(teacher, features=specs, example_input=x[:2])
    quiet_trainer(max_steps=1, callbacks=[fresh]).fit(Classifier(), _loader(x, y))
    built = {k: v.dtype for k, v in fresh._features.methods.state_dict().items()}
    assert built["1.normalizers"] == torch.float64  # kept in float64 on purpose
    start = AtStart()
    quiet_trainer(max_steps=2, callbacks=[callback, start]).fit(module, _loader(x, y))
    # the trained parts carried on, each in the dtype a fresh build gives it
    assert {k: v.dtype for k, v in start.parts.items()} == built
    for name, value in start.parts.items():
        assert torch.equal(value, trained[name].to(built[name]))
    assert all(bool(p.isfinite().all()) for p in callback._features.methods.parameters())
