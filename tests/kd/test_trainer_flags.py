"""The callback's feature parts and the first stages under the Trainer's own flags: the AMP
scaler of "16-mixed", gradient clipping, and the batch limits (limit_train_batches,
overfit_batches, fast_dev_run)."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from lightning_distill import DistillationModule, FeatureDistillation, KnowledgeDistillation
from lightning_distill.kd.feature_losses import LoaderInputs
from tests.helpers import PlainClassifier, make_cnn, make_data, quiet_trainer, state_copy

BATCH = 16


def _hint_callback(x) -> KnowledgeDistillation:
    torch.manual_seed(1)
    teacher = make_cnn(6)
    spec = FeatureDistillation("net.4", "4", "hint")
    return KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])


def _student() -> PlainClassifier:
    torch.manual_seed(0)
    return PlainClassifier(make_cnn(4))


def _fp16(scaler) -> list:
    # what precision="16-mixed" builds on a GPU; on the CPU Lightning would pick bf16 (no scaler)
    return [MixedPrecision("16-mixed", "cpu", scaler=scaler)]


def _heads_state(callback) -> dict:
    optimizer = callback._features.optimizer
    return {} if optimizer is None else optimizer.state_dict()["state"]


def _heads(callback) -> list[torch.Tensor]:
    return [p.detach().clone() for p in callback._features.methods.parameters()]


# ----------------------------------------------------------------------------- AMP scaler
class _HeadsAtStart(L.Callback):
    """The heads' parameters as the fit starts (they are built in the callback's setup)."""

    def __init__(self, callback):
        self.callback, self.start = callback, None

    def on_train_start(self, trainer, pl_module):
        self.start = _heads(self.callback)


def _fit_fp16(scaler, steps: int, x, y, **trainer_kwargs):
    callback, module = _hint_callback(x), _student()
    start = _HeadsAtStart(callback)
    trainer = quiet_trainer(
        max_steps=steps, callbacks=[callback, start], plugins=_fp16(scaler), **trainer_kwargs
    )
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=BATCH))
    assert start.start
    return callback, module, start.start


def test_heads_step_on_unscaled_gradients_under_a_grad_scaler():
    x, y = make_data(64)
    reference, _, _ = _fit_fp16(torch.amp.GradScaler("cpu", enabled=False), 4, x, y)
    expected = _heads_state(reference)
    assert expected and all(int(s["step"]) == 4 for s in expected.values())
    for scale in (2.0**4, 2.0**12):
        callback, _, _ = _fit_fp16(torch.amp.GradScaler("cpu", init_scale=scale), 4, x, y)
        state = _heads_state(callback)
        for key, moments in expected.items():
            # Adam's moments are sums of the gradients it stepped on: those of the unscaled
            # run (fp16 rounding of the backward aside), not `scale` times them
            for name in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(
                    state[key][name], moments[name], rtol=1e-4, atol=1e-6, msg=name
                )
        for got, want in zip(_heads(callback), _heads(reference)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_an_overflow_step_is_skipped_for_the_heads_and_they_train_on():
    x, y = make_data(64)
    # 2^40 overflows fp16 in the backward; the scaler skips that step
    callback, module, before = _fit_fp16(torch.amp.GradScaler("cpu", init_scale=2.0**40), 1, x, y)
    assert _heads_state(callback) == {}  # the heads' Adam never stepped
    after = _heads(callback)
    assert len(after) == len(before) == 2
    assert all(torch.equal(a, b) for a, b in zip(after, before))  # unchanged, so finite
    assert all(torch.equal(a, b) for a, b in zip(module.parameters(), _student().parameters()))

    # backing off to 2^10 after it, the next steps train
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40, backoff_factor=2.0**-30)
    callback, module, before = _fit_fp16(scaler, 3, x, y)
    assert scaler.get_scale() == 2.0**10
    state = _heads_state(callback)
    assert state and all(int(s["step"]) == 2 for s in state.values())  # steps 2 and 3
    after = _heads(callback)
    assert all(bool(torch.isfinite(p).all()) for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())


class _SkipsBatch(PlainClassifier):
    """Returns None (no loss, no backward) on the batches in ``skip``."""

    def __init__(self, net, skip):
        super().__init__(net)
        self.skip = skip

    def training_step(self, batch, batch_idx):
        if batch_idx in self.skip:
            return None
        return F.cross_entropy(self(batch[0]), batch[1])


def test_a_step_the_trainer_skips_under_a_scaler_is_skipped_for_the_heads():
    # Under a scaler Lightning skips the optimizer step (and the scaler's update) when the
    # group's last training_step returned None; the heads skip it too, and the next group's
    # unscale_/step through the same scaler works.
    x, y = make_data(64)  # 4 batches: groups (0, 1) and (2, 3)
    callback = _hint_callback(x)
    torch.manual_seed(0)
    module = _SkipsBatch(make_cnn(4), skip={1})
    trainer = quiet_trainer(
        max_epochs=1,
        accumulate_grad_batches=2,
        callbacks=[callback],
        plugins=_fp16(torch.amp.GradScaler("cpu", init_scale=2.0**8)),
    )
    with warnings.catch_warnings():
        # Lightning says it once per process (a class-level cache), not once per fit
        warnings.filterwarnings("ignore", message=".*returned `None`", category=UserWarning)
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=BATCH))
    state = _heads_state(callback)
    assert state and all(int(s["step"]) == 1 for s in state.values())
    assert all(p.grad is None for p in callback._features.methods.parameters())


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_heads_gradients_are_clipped_with_the_trainers_settings(algorithm):
    x, y = make_data(64)
    clip = 1e-3

    def first_moments(**clipping):
        callback = _hint_callback(x)
        trainer = quiet_trainer(max_steps=1, callbacks=[callback], **clipping)
        trainer.fit(_student(), DataLoader(TensorDataset(x, y), batch_size=BATCH))
        state = _heads_state(callback)
        # after Adam's first step exp_avg = (1 - beta1) * gradient
        return [state[k]["exp_avg"] / 0.1 for k in sorted(state)]

    raw = first_moments()
    clipped = first_moments(gradient_clip_val=clip, gradient_clip_algorithm=algorithm)
    if algorithm == "norm":
        norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in raw]))
        assert norm > 100 * clip  # the clip is active
        expected = [g * (clip / (norm + 1e-6)) for g in raw]  # clip_grad_norm_'s factor
    else:
        assert max(float(g.abs().max()) for g in raw) > 100 * clip
        expected = [g.clamp(-clip, clip) for g in raw]
    for got, want in zip(clipped, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-9)


# ----------------------------------------------------------------------------- first stages
class _Counting(Dataset):
    """(x, y) samples recording which indices were read."""

    def __init__(self, x, y):
        self.x, self.y, self.read = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.read.append(int(i))
        return self.x[i], self.y[i]


def _fit_with_stage(kind: str, loss: str, epochs: int, data: _Counting, sampler=None, **flags):
    """A fit whose FT or SSKD first stage runs ``epochs`` epochs, by ``DistillationModule``
    or by the callback on a user's module (the loader shuffles, or draws from ``sampler``)."""
    options = {"ft": {"paraphraser_epochs": epochs}, "sskd": {"head_epochs": epochs}}[loss]
    torch.manual_seed(0)
    student = make_cnn(4)
    torch.manual_seed(1)
    teacher = make_cnn(6)
    example = data.x[:2]
    if kind == "module":
        spec = FeatureDistillation("4", "4", loss, options=options)
        module = DistillationModule(student, teacher, features=[spec], example_input=example)
        callbacks = []
    else:
        spec = FeatureDistillation("net.4", "4", loss, options=options)
        module = PlainClassifier(student)
        callbacks = [KnowledgeDistillation(teacher, features=[spec], example_input=example)]
    trainer = quiet_trainer(callbacks=callbacks, **flags)
    loader = DataLoader(data, batch_size=BATCH, shuffle=sampler is None, sampler=sampler)
    trainer.fit(module, loader)
    return trainer


@pytest.mark.parametrize("kind", ["module", "callback"])
@pytest.mark.parametrize(
    ("flags", "batches", "stage_epochs"),
    [
        ({"limit_train_batches": 2, "max_epochs": 1}, 2, 3),
        ({"fast_dev_run": True}, 1, 1),
        ({"fast_dev_run": 2}, 2, 1),
    ],
)
def test_first_stages_read_the_batches_the_trainer_allows(kind, flags, batches, stage_epochs):
    x, y = make_data(160)  # 10 batches of 16
    for loss in ("ft", "sskd"):
        data = _Counting(x, y)
        trainer = _fit_with_stage(kind, loss, 3, data, **flags)
        assert trainer.num_training_batches == batches
        # the stage's epochs of `batches` batches each, then the fit's own `batches`
        assert len(data.read) == (stage_epochs + 1) * batches * BATCH, loss


@pytest.mark.parametrize("kind", ["module", "callback"])
def test_first_stages_read_the_overfitted_batches(kind):
    x, y = make_data(160)
    data = _Counting(x, y)
    with pytest.warns(UserWarning, match="turning off the train dataloader shuffling"):
        _fit_with_stage(kind, "ft", 3, data, overfit_batches=1, max_epochs=1)
    # 3 stage epochs and the fit read the one overfitted batch: the data set's first 16 rows
    assert len(data.read) == 4 * BATCH and set(data.read) == set(range(BATCH))


@pytest.mark.parametrize("kind", ["module", "callback"])
@pytest.mark.parametrize("loss", ["ft", "sskd"])
def test_each_stage_epoch_sets_a_distributed_samplers_epoch(kind, loss):
    # the shuffling DistributedSampler Lightning puts in under DDP (here given in one process)
    # orders by its epoch, which the stage's passes had left as it was: every pass read the
    # same order, where a shuffling loader in one process reads a new one each pass
    x, y = make_data(64)
    data = _Counting(x, y)
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3)
    _fit_with_stage(kind, loss, 3, data, sampler=sampler, max_epochs=2)

    def order(epoch):
        reference = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3)
        reference.set_epoch(epoch)
        return list(reference)

    reads = [data.read[k : k + len(x)] for k in range(0, len(data.read), len(x))]
    # the stage's passes 0, 1, 2, then the fit's epochs 0 and 1, as the Trainer sets them
    assert reads == [order(0), order(1), order(2), order(0), order(1)]
    assert len({tuple(read) for read in reads}) == 3


def test_without_limits_the_stage_reads_every_batch_for_its_epochs():
    x, y = make_data(64)
    data = _Counting(x, y)
    _fit_with_stage("callback", "ft", 2, data, max_epochs=1)
    assert len(data.read) == 3 * len(x)


def test_a_stage_keeps_the_teacher_and_leaves_the_module_as_it_was():
    # the counting and limits change nothing else: the callback's teacher comes back as it was
    x, y = make_data(64)
    torch.manual_seed(1)
    teacher = make_cnn(6)
    before = state_copy(teacher)
    spec = FeatureDistillation("net.4", "4", "ft", options={"paraphraser_epochs": 2})
    callback = KnowledgeDistillation(teacher, features=[spec], example_input=x[:2])
    quiet_trainer(limit_train_batches=1, callbacks=[callback]).fit(
        _student(), DataLoader(TensorDataset(x, y), batch_size=BATCH)
    )
    assert callback._features.methods["0"].is_pretrained
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())


def test_loader_inputs_limits_are_checked_and_applied():
    batches = [(torch.full((2, 1), float(i)), torch.zeros(2)) for i in range(5)]
    inputs = LoaderInputs(batches, "cpu", lambda batch: batch, limit_batches=3, limit_epochs=1)
    assert [float(x[0, 0]) for x in inputs] == [0.0, 1.0, 2.0]
    assert [float(x[0, 0]) for x in inputs] == [0.0, 1.0, 2.0]  # again, each pass
    with pytest.raises(ValueError, match=r"limit_epochs must be an integer >= 1; got 0"):
        LoaderInputs(batches, "cpu", lambda batch: batch, limit_epochs=0)
    with pytest.raises(TypeError, match=r"limit_batches must be an integer"):
        LoaderInputs(batches, "cpu", lambda batch: batch, limit_batches=1.5)
