"""AWDModule under the Lightning Trainer."""

import copy
import pickle
import warnings
from collections import UserDict

import lightning as L
import numpy as np
import pytest
import pywt
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill.awd import AWDModule, wavelet_from_checkpoint
from lightning_distill.awd.losses import VALIDITY_TERMS
from lightning_distill.awd.transform import waverec1d
from tests.helpers import HostReads, logged_and_saved_hyperparameters


def _trainer(**kwargs):
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
    )
    options.update(kwargs)
    return L.Trainer(**options)


def _teacher(n_in=32, n_out=1):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(n_in, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_out)
    )


def _loader(shape=(32,), n=32, seed=0):
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(x), batch_size=16)


class _TeacherModeProbe(L.Callback):
    def __init__(self):
        self.modes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes.append(pl_module.teacher.training)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.modes.append(pl_module.teacher.training)


def test_fit_trains_filter_keeps_teacher_frozen_and_logs_every_term():
    teacher = _teacher()
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    module = AWDModule(
        teacher,
        wavelet="db2",
        levels=2,
        init_noise=0.05,
        seed=0,
        sparsity_weight=0.01,
        attribution_weight=0.1,
        lr=1e-2,
    )
    start = module.h0.detach().clone()
    probe = _TeacherModeProbe()
    trainer = _trainer(max_epochs=2, callbacks=[probe])
    trainer.fit(module, _loader(), _loader(seed=1))
    assert not torch.equal(module.h0.detach(), start)
    # the module's frozen copy is unchanged, and the user's teacher is untouched
    for key, value in module.teacher.state_dict().items():
        assert torch.equal(value, before[key])
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key])
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    assert probe.modes and not any(probe.modes)
    names = {"loss", "reconstruction", "sparsity", "attribution", *VALIDITY_TERMS}
    for stage in ("train", "val"):
        for name in names:
            key = f"{stage}/{name}" if stage == "val" else f"{stage}/{name}_epoch"
            assert key in trainer.callback_metrics, key
    metrics = trainer.callback_metrics
    weighted = (
        metrics["val/reconstruction"]
        + 0.01 * metrics["val/sparsity"]
        + 0.1 * metrics["val/attribution"]
        + sum(metrics[f"val/{t}"] for t in VALIDITY_TERMS)
    )
    torch.testing.assert_close(metrics["val/loss"], weighted)


def test_validate_and_test_work_under_default_inference_mode():
    module = AWDModule(_teacher(), wavelet="haar", levels=2, attribution_weight=1.0)
    seen = []

    class Probe(L.Callback):
        def on_validation_batch_start(self, *args, **kwargs):
            seen.append(torch.is_inference_mode_enabled())

    trainer = _trainer(callbacks=[Probe()])
    (metrics,) = trainer.validate(module, _loader(), verbose=False)
    assert seen and all(seen)  # the Trainer's default inference mode was really on
    assert metrics["val/attribution"] > 0
    assert np.isfinite(metrics["val/loss"])
    (metrics,) = trainer.test(module, _loader(), verbose=False)
    assert metrics["test/attribution"] > 0


def test_validation_attribution_equals_direct_computation():
    module = AWDModule(_teacher(), wavelet="db2", levels=2, attribution_weight=1.0).double()
    x = torch.randn(8, 32, dtype=torch.float64)
    module.eval()
    direct = module.losses(x)["attribution"].item()
    (metrics,) = _trainer().validate(
        module, DataLoader(TensorDataset(x), batch_size=8), verbose=False
    )
    assert metrics["val/attribution"] == pytest.approx(direct, rel=1e-6)


def test_attribution_term_alone_moves_the_filter_and_reduces_itself():
    module = AWDModule(
        _teacher(),
        wavelet="db2",
        levels=2,
        reconstruction_weight=0.0,
        validity_weight=0.0,
        attribution_weight=1.0,
        lr=0.05,
    )
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(4))
    first = module.losses(x)["attribution"].item()
    _trainer(max_epochs=5).fit(module, DataLoader(TensorDataset(x), batch_size=64))
    assert module.losses(x)["attribution"].item() < first


def test_learned_wavelet_is_a_pywt_wavelet_matching_the_module():
    module = AWDModule(
        _teacher(), wavelet="sym3", levels=2, mode="periodization", init_noise=0.05, seed=1
    ).double()
    wavelet = module.learned_wavelet()
    assert isinstance(wavelet, pywt.Wavelet) and wavelet.dec_len == 6
    np.testing.assert_allclose(wavelet.rec_lo, module.h0.detach().numpy())
    x = torch.randn(3, 32, dtype=torch.float64)
    ours = module(x)
    reference = pywt.wavedec(x.numpy(), wavelet, mode="periodization", level=2)
    for c, r in zip(ours, reference):
        np.testing.assert_allclose(c.detach().numpy(), r, atol=1e-10)
    phi, psi, grid = wavelet.wavefun(level=5)  # usable by pywt's cascade algorithm
    assert len(phi) == len(psi) == len(grid)


def test_wavelet_saved_and_restored_with_checkpoint(tmp_path):
    teacher = _teacher()
    module = AWDModule(
        teacher, wavelet="db2", levels=2, init_noise=0.1, seed=2, attribution_weight=0.1, lr=1e-2
    )
    trainer = _trainer()
    trainer.fit(module, _loader())
    path = tmp_path / "awd.ckpt"
    trainer.save_checkpoint(path)
    restored = AWDModule.load_from_checkpoint(path, teacher=teacher)
    assert torch.equal(restored.h0, module.h0)
    assert restored.levels == 2 and restored.mode == "zero"
    assert restored.learned_wavelet().filter_bank == module.learned_wavelet().filter_bank
    np.testing.assert_allclose(
        wavelet_from_checkpoint(path).rec_lo, module.h0.detach().double().numpy()
    )
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="is not a checkpoint of an AWDModule"):
        wavelet_from_checkpoint(tmp_path / "other.ckpt")
    # warm start from an exported wavelet; its checkpoint restores without naming the wavelet
    warm = AWDModule(teacher, wavelet=module.learned_wavelet(), levels=2)
    torch.testing.assert_close(warm.h0, module.h0.detach())
    trainer = _trainer()
    trainer.fit(warm, _loader())
    trainer.save_checkpoint(tmp_path / "warm.ckpt")
    again = AWDModule.load_from_checkpoint(tmp_path / "warm.ckpt", teacher=teacher)
    assert torch.equal(again.h0, warm.h0)


def squared_first_output(outputs):
    return outputs[:, 0] ** 2


def test_a_callable_target_must_be_given_again_on_load(tmp_path):
    # code is not plain data: the checkpoint marks the callable, and loading without it says
    # so instead of explaining the raw output
    teacher = _teacher()
    module = AWDModule(teacher, wavelet="db2", levels=2, target=squared_first_output)
    trainer = _trainer()
    trainer.fit(module, _loader())
    path = tmp_path / "callable.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["target"] == {"callable": "squared_first_output"}
    with pytest.raises(ValueError, match="target must be given again: .*squared_first_output"):
        AWDModule.load_from_checkpoint(path, teacher=teacher)
    loaded = AWDModule.load_from_checkpoint(path, teacher=teacher, target=squared_first_output)
    assert loaded.target is squared_first_output and torch.equal(loaded.h0, module.h0)


def squared_output(y):
    return y[:, 0] ** 2


def test_the_loggers_are_given_the_hyperparameters_the_checkpoint_holds(tmp_path):
    # a callable target is stored as a marker, numpy settings as numbers, after
    # save_hyperparameters: the loggers were given the copy taken before
    module = AWDModule(
        _teacher(), wavelet="db2", lr=np.float64(1e-2), sparsity_weight=0.1, target=squared_output
    )
    params, saved = logged_and_saved_hyperparameters(
        module, _trainer, _loader(), tmp_path / "run.ckpt"
    )
    assert dict(params) == dict(saved)
    assert params["target"] == {"callable": "squared_output"}
    assert type(params["lr"]) is float


def test_numpy_scalar_settings_are_stored_plain_so_the_checkpoint_loads_with_weights_only(
    tmp_path,
):
    # np.float64 (a sweep's np.linspace value) passes every check as a float; stored raw it
    # made torch.load(weights_only=True), and so wavelet_from_checkpoint, fail after the fit
    teacher = _teacher(n_out=2)
    module = AWDModule(
        teacher,
        wavelet="db2",
        levels=np.int64(2),
        lr=np.float64(1e-2),
        init_noise=np.float32(0.0),
        sparsity_weight=torch.tensor(0.5),
        validity_weights={"cmf": np.float64(2.0)},
        target=(np.int64(1),),
    )
    trainer = _trainer()
    trainer.fit(module, _loader())
    path = tmp_path / "numpy.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["lr"] == 1e-2 and type(hparams["lr"]) is float
    assert type(hparams["levels"]) is int and type(hparams["init_noise"]) is float
    assert type(hparams["sparsity_weight"]) is float
    assert type(hparams["validity_weights"]["cmf"]) is float
    assert hparams["target"] == (1,) and type(hparams["target"][0]) is int
    np.testing.assert_array_equal(
        wavelet_from_checkpoint(path).rec_lo, module.h0.detach().double().numpy()
    )
    loaded = AWDModule.load_from_checkpoint(path, teacher=teacher, weights_only=True)
    assert torch.equal(loaded.h0, module.h0) and loaded.lr == 1e-2 and loaded.target == (1,)
    # resumed with Lightning's default loading (weights_only=True under torch >= 2.6)
    resumed = AWDModule(teacher, wavelet="db2", levels=np.int64(2), lr=np.float64(1e-2))
    trainer = _trainer(max_epochs=2)
    trainer.fit(resumed, _loader(), ckpt_path=path)
    assert trainer.current_epoch == 2


def test_two_dimensional_module_fits_images():
    teacher = _teacher(n_in=64, n_out=3)
    module = AWDModule(
        teacher,
        wavelet="haar",
        levels=2,
        dim=2,
        mode="periodization",
        target=1,
        attribution_weight=0.1,
        attribution="input_x_gradient",
    )
    trainer = _trainer()
    trainer.fit(module, _loader(shape=(1, 8, 8)), _loader(shape=(1, 8, 8)))
    assert trainer.callback_metrics["val/attribution"] > 0
    coefficients = module(torch.randn(2, 1, 8, 8))
    assert len(coefficients) == 1 + 3 * 2


def test_integrated_gradients_and_callable_target_train():
    teacher = _teacher(n_out=2)
    module = AWDModule(
        teacher,
        wavelet="db2",
        levels=2,
        attribution="integrated_gradients",
        n_steps=4,
        target=lambda out: out.sum(dim=1),
        attribution_weight=0.1,
    )
    _trainer().fit(module, _loader())
    assert torch.isfinite(module.h0).all()


# -- bad input --------------------------------------------------------------------------------


def test_bad_wavelet_names():
    with pytest.raises(
        ValueError,
        match=r"orthogonal PyWavelets wavelet, got 'db99'.*Valid names: .*db5.*haar.*sym5",
    ):
        AWDModule(_teacher(), wavelet="db99")
    with pytest.raises(ValueError, match="got 'bior2.2'"):
        AWDModule(_teacher(), wavelet="bior2.2")


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        AWDModule(lambda x: x)
    with pytest.raises(ValueError, match="mode must be one of"):
        AWDModule(_teacher(), mode="smooth")
    with pytest.raises(ValueError, match="dim must be one of 1, 2; got 3"):
        AWDModule(_teacher(), dim=3)
    with pytest.raises(ValueError, match="levels must be an integer >= 1; got 0"):
        AWDModule(_teacher(), levels=0)
    with pytest.raises(ValueError, match="attribution_weight must be a finite number >= 0"):
        AWDModule(_teacher(), attribution_weight=-1)
    with pytest.raises(ValueError, match="validity_weights has unknown terms"):
        AWDModule(_teacher(), validity_weights={"orthogonality": 1.0})
    with pytest.raises(ValueError, match="attribution method must be one of"):
        AWDModule(_teacher(), attribution="lime")
    with pytest.raises(TypeError, match="target must be None, an int"):
        AWDModule(_teacher(), target="class")


def test_numpy_integer_targets_explain_the_same_output_and_non_integer_indices_are_refused():
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))

    def attributions(target):
        module = AWDModule(_teacher(n_out=3), wavelet="db2", levels=2, target=target).eval()
        return module.attributions(module.check_input(x)).attributions

    expected = attributions(1)
    for given in (np.int64(1), (np.int32(1),), np.uint8(1)):
        for got, want in zip(attributions(given), expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    # a tuple index must hold ints: floats and strings had failed deep in torch
    for bad in ((0.5,), ("a",), (True,)):
        with pytest.raises(TypeError, match=r"target must be None, an int, a tuple of ints"):
            AWDModule(_teacher(n_out=3), target=bad)


def test_too_many_levels_for_signal_length():
    module = AWDModule(_teacher(n_in=16), wavelet="db2", levels=5)
    with pytest.raises(
        ValueError, match=r"levels must be between 1 and 4 for signals of length 16"
    ):
        module.losses(torch.randn(2, 16))


def test_images_given_to_1d_module_and_signals_to_2d_module():
    with pytest.raises(
        ValueError, match=r"1D module \(dim=1\).*Images need AWDModule\(\.\.\., dim=2\)"
    ):
        AWDModule(_teacher(), levels=1).losses(torch.randn(2, 1, 8, 8))
    with pytest.raises(
        ValueError, match=r"2D module \(dim=2\).*Signals need AWDModule\(\.\.\., dim=1\)"
    ):
        AWDModule(_teacher(), levels=1, dim=2).losses(torch.randn(2, 32))


def test_target_index_the_teacher_does_not_have():
    module = AWDModule(
        _teacher(n_out=2), wavelet="haar", levels=1, target=5, attribution_weight=1.0
    )
    with pytest.raises(ValueError, match=r"target 5 is not an index of the teacher's output"):
        module.losses(torch.randn(2, 32))
    # also at the first batch when training computes no attribution (attribution_weight=0)
    module = AWDModule(_teacher(n_out=2), wavelet="haar", levels=1, target=5)
    with pytest.raises(ValueError, match=r"target 5 is not an index of the teacher's output"):
        _trainer().fit(module, DataLoader(TensorDataset(torch.randn(4, 32)), batch_size=2))


def test_a_conv_teacher_given_signals_without_channels_is_told_to_add_them():
    teacher = torch.nn.Sequential(
        torch.nn.Conv1d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30, 1)
    )
    module = AWDModule(teacher, wavelet="haar", levels=1)
    with pytest.raises(ValueError, match=r"samples of shape \(32,\).*add the channel axis"):
        _trainer().fit(module, DataLoader(TensorDataset(torch.randn(8, 32)), batch_size=4))
    # with the channel axis it trains
    _trainer().fit(module, DataLoader(TensorDataset(torch.randn(8, 1, 32)), batch_size=4))


def test_signals_of_one_sample_are_refused_by_name():
    module = AWDModule(_teacher(), wavelet="haar", levels=1)
    with pytest.raises(ValueError, match="signals must have at least 2 samples.*got length 1"):
        module.losses(torch.randn(2, 1))


def test_nan_and_inf_in_input():
    module = AWDModule(_teacher(), wavelet="haar", levels=1)
    x = torch.randn(2, 32)
    x[0, 3] = float("nan")
    with pytest.raises(ValueError, match="batch contains NaN or infinite"):
        module.losses(x)
    x[0, 3] = float("inf")
    with pytest.raises(ValueError, match="batch contains NaN or infinite"):
        _trainer().fit(module, DataLoader(TensorDataset(x), batch_size=2))


def test_a_training_step_reads_its_checks_in_one_host_sync():
    # one read, the loss's finiteness (a NaN batch or teacher gradient makes the loss NaN)
    module = AWDModule(_teacher(), wavelet="haar", levels=2, attribution_weight=0.05)
    reads = HostReads()
    try:
        _trainer(max_steps=3, callbacks=[reads]).fit(module, _loader(n=48))
    finally:
        torch.Tensor.__bool__ = reads._original
    assert reads.per_step[1:] == [1, 1]  # the first also checks the teacher on the new shape


def _fit_refuses(module, x, match):
    start = module.h0.detach().clone()
    with pytest.raises(ValueError, match=match):
        _trainer().fit(module, DataLoader(TensorDataset(x), batch_size=len(x)))
    assert torch.equal(module.h0.detach(), start)  # refused before any step


def test_signals_that_overflow_the_loss_are_refused_not_trained_on():
    # finite float32 signals whose squared reconstruction error overflows float32: the loss
    # is infinite and Adam would turn h0 into NaN, blamed on the teacher a step later
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0)) * 1e30
    assert torch.isfinite(x).all() and not torch.isfinite((x**2).sum())
    match = "loss terms must be finite on this batch; got NaN or infinite reconstruction"
    with pytest.raises(ValueError, match=match):
        AWDModule(_teacher(), wavelet="db2", levels=2).losses(x)
    _fit_refuses(AWDModule(_teacher(), wavelet="db2", levels=2, attribution_weight=0.05), x, match)


def test_float64_signals_beyond_float32_are_refused_by_the_cast():
    x = torch.randn(8, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[0, 0] = 1e300  # finite in float64, infinite once cast to the filter's float32
    match = r"batch must be finite in the module's dtype, torch.float32; got values beyond"
    with pytest.raises(ValueError, match=match):
        AWDModule(_teacher(), wavelet="db2", levels=2, attribution_weight=0.05).losses(x)
    _fit_refuses(AWDModule(_teacher(), wavelet="db2", levels=2, attribution_weight=0.05), x, match)


class _NaNGradient(torch.nn.Module):
    """A finite output whose gradient with respect to the input is NaN."""

    def forward(self, x):
        x = x.flatten(1)
        if x.requires_grad:
            x.register_hook(lambda grad: grad * float("nan"))
        return x.sum(1, keepdim=True)


def test_non_finite_teacher_gradients_and_outputs_are_named():
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    module = AWDModule(_NaNGradient(), wavelet="haar", levels=1, attribution_weight=0.05)
    _fit_refuses(module, x, "teacher gradients must be finite on this batch")
    teacher = _teacher()  # a NaN weight: NaN outputs and gradients, the output named
    teacher[1].weight.data[0, 0] = float("nan")
    module = AWDModule(teacher, wavelet="haar", levels=1, attribution_weight=0.05)
    _fit_refuses(module, x, "teacher output must be finite on this batch")


def test_naming_a_non_finite_teacher_output_leaves_the_teacher_as_it_was():
    # the error path runs the teacher once more to say what failed: frozen, as training runs it
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(
        torch.nn.Linear(32, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1)
    ).train()
    teacher[2].weight.data[0, 0] = float("nan")
    statistics = teacher[1].running_mean.clone()
    module = AWDModule(teacher, wavelet="haar", levels=1, attribution_weight=0.05)
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="teacher output must be finite on this batch"):
        module.losses(x)
    assert teacher.training and teacher[1].training
    assert torch.equal(teacher[1].running_mean, statistics)


def test_a_non_finite_batch_is_named_before_what_it_causes():
    # NaN in the batch makes the attributions and the loss NaN too: the batch is named
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    x[3, 5] = float("nan")
    module = AWDModule(_teacher(), wavelet="haar", levels=1, attribution_weight=0.05)
    _fit_refuses(module, x, "batch contains NaN or infinite values")


def test_lightning_cli_builds_module(monkeypatch):
    monkeypatch.setattr("sys.argv", ["cli"])
    from lightning.pytorch.cli import LightningCLI

    config = {
        "model": {
            "teacher": {
                "class_path": "torch.nn.Linear",
                "init_args": {"in_features": 32, "out_features": 2},
            },
            "wavelet": "sym4",
            "levels": 2,
            "mode": "periodization",
            "target": 1,
            "attribution_weight": 0.2,
        },
        "trainer": {"logger": False, "enable_checkpointing": False},
    }
    cli = LightningCLI(AWDModule, run=False, args=config, save_config_callback=None)
    module = cli.model
    assert isinstance(module, AWDModule) and module.h0.shape == (8,)
    assert module.hparams.attribution_weight == 0.2 and module.target == 1
    assert "teacher" not in module.hparams
    assert module.losses(torch.randn(4, 32))["attribution"] > 0


@pytest.mark.parametrize("every, epochs, steps", [(3, 1, [2, 5]), (5, 2, [4, 9, 14])])
def test_step_values_reach_the_logger_under_their_own_step(tmp_path, every, epochs, steps):
    # loggers write every log_every_n_steps steps; what they write at step s must be the terms
    # of batch s, not those of an earlier batch (the last batch of an epoch logs too, for
    # callback_metrics, and must not be written under a later step)
    from lightning.pytorch.loggers import CSVLogger

    class LossProbe(L.Callback):
        def __init__(self):
            self.losses = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.losses.append(float(outputs["loss"]))

    module = AWDModule(_teacher(), wavelet="db2", levels=2, attribution_weight=0.1, lr=0.05)
    probe = LossProbe()
    logger = CSVLogger(tmp_path, name="awd")
    trainer = _trainer(logger=logger, log_every_n_steps=every, max_epochs=epochs, callbacks=[probe])
    trainer.fit(module, _loader(n=128))
    rows = np.genfromtxt(f"{logger.log_dir}/metrics.csv", delimiter=",", names=True)
    written = [(int(r["step"]), r["trainloss"]) for r in rows if np.isfinite(r["trainloss"])]
    assert [step for step, _ in written] == steps
    # the last batch's loss is in callback_metrics (for EarlyStopping / ModelCheckpoint)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(probe.losses[-1])
    for step, value in written:
        assert value == pytest.approx(probe.losses[step], rel=1e-6)


def test_a_stop_set_by_a_callback_after_the_step_writes_that_steps_values(tmp_path):
    # Lightning writes the step values at a stop that a callback's on_train_batch_end sets
    # (Timer, which max_time adds, or a user's), after a step that logged nothing between
    # logging steps: the values written there must be that step's, not the logging step's before
    import csv

    from lightning.pytorch.loggers import CSVLogger

    class TermProbe(L.Callback):
        def __init__(self):
            self.terms = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            terms = pl_module.losses(batch[0])
            self.terms.append({k: float(v) for k, v in terms.items()})

    class StopsAt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 5:  # after the step of index 4
                trainer.should_stop = True

    module = AWDModule(
        _teacher(), wavelet="db2", levels=2, sparsity_weight=0.01, attribution_weight=0.1, lr=0.05
    )
    probe = TermProbe()
    logger = CSVLogger(tmp_path, name="awd")
    trainer = _trainer(logger=logger, log_every_n_steps=3, callbacks=[probe, StopsAt()])
    trainer.fit(module, _loader(n=128))  # 8 batches
    with open(f"{logger.log_dir}/metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["train/loss"]]
    assert [int(row["step"]) for row in rows] == [2, 4]
    for row in rows:
        terms = probe.terms[int(row["step"])]
        assert float(row["train/loss"]) == pytest.approx(terms["loss"], rel=1e-5)
        for name in ("reconstruction", "sparsity", "attribution"):
            logged = float(row[f"train/{name}_step"])
            assert logged == pytest.approx(terms[name], rel=1e-5, abs=1e-7), name
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(probe.terms[4]["loss"])
    # the epoch means over the five steps that ran, each once
    for name in ("loss", "attribution"):
        expected = sum(terms[name] for terms in probe.terms) / 5
        assert float(trainer.callback_metrics[f"train/{name}_epoch"]) == pytest.approx(expected)


def test_epoch_values_are_the_sample_weighted_means_of_the_epochs_batches():
    # batches of 16, 16 and 8: the epoch value of each term is its mean over samples, and the
    # sums restart with each epoch
    class TermProbe(L.Callback):
        def __init__(self):
            self.batches = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.batches = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            terms = pl_module.losses(batch)
            self.batches.append(({k: float(v) for k, v in terms.items()}, len(batch[0])))

    module = AWDModule(
        _teacher(), wavelet="db2", levels=2, sparsity_weight=0.01, attribution_weight=0.1, lr=0.05
    )
    probe = TermProbe()
    trainer = _trainer(max_epochs=2, callbacks=[probe])
    trainer.fit(module, _loader(n=40))
    assert [size for _, size in probe.batches] == [16, 16, 8]
    names = {"loss", "reconstruction", "sparsity", "attribution", *VALIDITY_TERMS}
    assert set(probe.batches[0][0]) == names
    for name in names:
        expected = sum(terms[name] * size for terms, size in probe.batches) / 40
        logged = float(trainer.callback_metrics[f"train/{name}_epoch"])
        assert logged == pytest.approx(expected, rel=1e-5, abs=1e-7), name


def _bn_teacher(n_in=32):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    )


@pytest.mark.parametrize("keep", [False, True])
def test_teacher_out_of_checkpoints_unless_kept_and_given_back_as_it_was(tmp_path, keep):
    teacher = _bn_teacher()
    teacher.train()
    teacher[1].eval()  # the user's frozen BatchNorm inside a training teacher
    teacher[0].weight.requires_grad_(False)
    modes = [m.training for m in teacher.modules()]
    flags = [p.requires_grad for p in teacher.parameters()]
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    module = AWDModule(
        teacher, wavelet="db2", levels=2, attribution_weight=0.1, keep_teacher_in_checkpoint=keep
    )
    assert module.teacher is teacher  # frozen in place, not copied
    trainer = _trainer()
    trainer.fit(module, _loader())
    assert [m.training for m in teacher.modules()] == modes
    assert [p.requires_grad for p in teacher.parameters()] == flags
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    path = tmp_path / "awd.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert any(k.startswith("teacher.") for k in state) == keep
    restored = AWDModule.load_from_checkpoint(path, teacher=_bn_teacher())
    assert torch.equal(restored.h0, module.h0)


def test_gradients_the_user_left_in_the_teacher_survive_a_fit():
    teacher = _bn_teacher()
    teacher(torch.randn(8, 32)).sum().backward()
    grads = [p.grad.clone() for p in teacher.parameters()]
    module = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=0.1)
    _trainer().fit(module, _loader())
    assert all(torch.equal(p.grad, g) for p, g in zip(teacher.parameters(), grads))


def test_methods_called_outside_a_fit_run_the_teacher_frozen_and_give_it_back():
    teacher = _bn_teacher()
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    module = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=1.0)
    x = torch.randn(6, 32)
    terms = module.losses(x)
    terms["loss"].backward()
    module.mean_attributions(x)
    module.reconstruct_top(x, 3)
    # eval mode inside (BatchNorm statistics unchanged), no gradient into the teacher, and
    # every mode and flag as before
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    assert teacher.training and all(m.training for m in teacher.modules())
    assert all(p.requires_grad for p in teacher.parameters())
    assert module.h0.grad is not None


def test_dict_batches_are_read_like_distillation_modules():
    module = AWDModule(_teacher(), wavelet="haar", levels=1)
    x = torch.randn(4, 32)
    expected = {k: v.detach() for k, v in module.losses(x).items()}
    # a mapping that is not a dict (a UserDict, as transformers' BatchEncoding) reads alike
    for batch in ({"inputs": x}, {"x": x, "y": torch.zeros(4)}, (x,), UserDict({"x": x})):
        found = module.losses(batch)
        for name, value in expected.items():
            torch.testing.assert_close(found[name].detach(), value)
    with pytest.raises(ValueError, match="batch must hold inputs: .* got a dict") as caught:
        module.losses({"signal": x})
    assert "target" not in str(caught.value)  # AWD reads no targets


def test_a_teacher_error_is_named_without_a_conv_hint_it_does_not_need():
    teacher = _teacher(n_in=16)  # a shape error of a Linear teacher: no Conv1d to add axes to
    module = AWDModule(teacher, wavelet="haar", levels=1)
    with pytest.raises(ValueError, match=r"teacher failed on a batch of samples of shape") as error:
        module.losses(torch.randn(4, 32))
    assert "Conv1d" not in str(error.value) and ".." not in str(error.value)
    # checked once per sample shape seen, not again when shapes alternate
    runs = []
    teacher = torch.nn.Sequential(torch.nn.AdaptiveAvgPool1d(8), torch.nn.Linear(8, 1))
    teacher.register_forward_hook(lambda *args: runs.append(1))
    module = AWDModule(teacher, wavelet="haar", levels=1).train()
    for length in (32, 48, 32, 48):
        module.check_input(torch.randn(4, length))
    assert len(runs) == 2


def test_fits_under_bfloat16_true_precision_with_float32_epoch_sums():
    # torch's FFT takes no bfloat16: the CMF term failed 17 frames deep under "bf16-true";
    # the filter is transformed in float32, and the epoch sums are float32 too
    from lightning_distill.awd.losses import cmf_loss

    h0 = torch.tensor(pywt.Wavelet("db3").dec_lo[::-1], dtype=torch.float32) * 1.01
    wide = cmf_loss(h0)
    narrow = cmf_loss(h0.to(torch.bfloat16))
    assert narrow.dtype == torch.bfloat16
    assert float(narrow) == pytest.approx(float(cmf_loss(h0.to(torch.bfloat16).float())), rel=1e-2)
    assert float(wide) > 0
    module = AWDModule(_teacher(), wavelet="db2", levels=2, sparsity_weight=0.01, lr=0.05)
    trainer = _trainer(precision="bf16-true")
    trainer.fit(module, _loader(n=48))
    assert module.h0.dtype == torch.bfloat16
    assert all(mean.dtype == torch.float32 for mean in module._epoch_means.means().values())
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])


def test_a_module_cast_to_float64_before_training_starts_from_the_exact_wavelet():
    exact = torch.as_tensor(pywt.Wavelet("db5").rec_lo, dtype=torch.float64)
    module = AWDModule(_teacher(), wavelet="db5", levels=2, init_noise=0.0)
    assert module.h0.dtype == torch.float32 and not torch.equal(module.h0.double(), exact)
    assert torch.equal(module.double().h0, exact)  # not its float32 rounding
    assert module.h0.requires_grad
    # a filter that moved is cast as it is
    trained = AWDModule(_teacher(), wavelet="db5", levels=2)
    _trainer(max_steps=1).fit(trained, _loader())
    moved = trained.h0.detach().clone()
    assert torch.equal(trained.double().h0, moved.double())


def test_a_float64_teacher_in_a_float32_module_is_told_to_cast():
    module = AWDModule(_teacher().double(), wavelet="haar", levels=1)
    with pytest.raises(
        TypeError, match=r"teacher must compute in the module's dtype.*\.double\(\)"
    ):
        module.losses(torch.randn(2, 32, dtype=torch.float64))
    module.double().losses(torch.randn(2, 32, dtype=torch.float64))

    class CastsItsInput(torch.nn.Module):  # a float64 reference model that casts what it reads
        def __init__(self):
            super().__init__()
            self.net = _teacher().double()

        def forward(self, x):
            return self.net(x.double()).to(x.dtype)

    AWDModule(CastsItsInput(), wavelet="haar", levels=1, attribution_weight=1.0).losses(
        torch.randn(2, 32)
    )


def test_callable_targets_are_checked_on_the_first_batch():
    loader = DataLoader(TensorDataset(torch.randn(4, 32)), batch_size=2)
    for target, match in (
        (lambda out: out[:, :2], r"one value per sample, shape \(batch,\).*got \(2, 2\)"),
        (lambda out: out.sum(), r"one value per sample.*got \(\)"),
    ):
        # attribution_weight=0: training itself would not find out
        module = AWDModule(_teacher(n_out=3), wavelet="haar", levels=1, target=target)
        with pytest.raises(ValueError, match=match):
            _trainer().fit(module, loader)
    AWDModule(_teacher(n_out=3), wavelet="haar", levels=1, target=lambda out: out[:, 1]).losses(
        torch.randn(2, 32)
    )
    with pytest.raises(ValueError, match="target, a callable, failed on the teacher's output"):
        _trainer().fit(
            AWDModule(_teacher(n_out=3), wavelet="haar", levels=1, target=lambda out: out[:, 5]),
            loader,
        )

    class Several(torch.nn.Module):  # a teacher returning (logits, features, extra)
        def __init__(self):
            super().__init__()
            self.net = _teacher(n_out=3)

        def forward(self, x):
            logits = self.net(x)
            return logits, x, logits.sum()

    for shape in ((), (1,), (1, 1)):  # one value per sample, whatever its trailing axes
        module = AWDModule(
            Several(),
            wavelet="haar",
            levels=1,
            attribution_weight=1.0,
            target=lambda out, shape=shape: out[0][:, 1].reshape(len(out[0]), *shape),
        )
        module.losses(torch.randn(1, 32))  # a batch of one sample


def test_grayscale_images_without_a_channel_axis_are_told_to_add_one():
    with pytest.raises(ValueError, match=r"Single-channel images need a channel axis"):
        AWDModule(_teacher(64), levels=1, dim=2).losses(torch.randn(2, 8, 8))


def test_a_module_moved_to_the_meta_device_can_be_materialised():
    module = AWDModule(_teacher(), wavelet="db2", levels=1).to("meta")
    assert module.h0.is_meta
    module.to_empty(device="cpu")  # FSDP-style empty init: nothing to read on the meta device
    assert module.h0.device.type == "cpu"


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_two_cpu_processes_equal_one(tmp_path):
    # the evaluation terms were logged without sync_dist: under DDP they were rank 0's mean
    from pathlib import Path

    from tests.helpers import run_ddp_script

    script = Path(__file__).with_name("awd_ddp_script.py")
    single = run_ddp_script(script, 1, tmp_path / "single.json")
    double = run_ddp_script(script, 2, tmp_path / "ddp.json")
    assert double.pop("h0") == pytest.approx(single.pop("h0"), abs=1e-6)
    assert set(double) == set(single) and {"val/loss", "train/loss_epoch"} <= set(single)
    # epoch values are means over every process's samples; step values (train/loss and
    # train/<term>_step) are the logging process's own batch
    epoch_values = [n for n in single if n.startswith("val/") or n.endswith("_epoch")]
    assert len(epoch_values) > 10
    for name in epoch_values:
        assert double[name] == pytest.approx(single[name], rel=1e-5, abs=1e-7), name


def test_terms_under_bf16_autocast_equal_the_float32_terms():
    # "bf16-mixed" runs the steps under autocast, which ran the transforms (convolutions) in
    # bfloat16: an exact wavelet's reconstruction error was bfloat16 rounding (4e-4, not 1e-13)
    module = AWDModule(_teacher(64), wavelet="db4", levels=3, attribution_weight=1.0)
    x = 3 * torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    reference = module.losses(x, create_graph=True)
    (reference_grad,) = torch.autograd.grad(reference["loss"], module.h0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = module.losses(x, create_graph=True)
        coefficients = module(x)
        rebuilt, _ = module.reconstruct_top(x, 20)
    (mixed_grad,) = torch.autograd.grad(mixed["loss"], module.h0)
    assert float(reference["reconstruction"].detach()) < 1e-10
    for name, value in reference.items():
        assert mixed[name].dtype == value.dtype == torch.float32, name
        torch.testing.assert_close(mixed[name], value, rtol=1e-6, atol=1e-12, msg=name)
    torch.testing.assert_close(mixed_grad, reference_grad, rtol=1e-5, atol=1e-8)
    assert all(c.dtype == torch.float32 for c in coefficients)
    torch.testing.assert_close(rebuilt, module.reconstruct_top(x, 20)[0], rtol=1e-6, atol=1e-6)
    # what a "bf16-mixed" Trainer logs is the float32 value
    logged = _trainer(precision="bf16-mixed").validate(
        module, DataLoader(TensorDataset(x), batch_size=16), verbose=False
    )[0]
    module.eval()
    expected = float(module.losses(x, create_graph=False)["reconstruction"])
    assert logged["val/reconstruction"] == pytest.approx(expected, rel=1e-5)


def test_loss_is_the_weighted_sum_of_its_terms_whatever_was_called_before():
    # the loss is one product of the stacked terms with their weights: it equals the sum of
    # weight x term, follows weights changed after construction, keeps the graph of a weight
    # set as a tensor, and a first call under inference mode does not break training after
    teacher = torch.nn.Sequential(torch.nn.Linear(32, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    module = AWDModule(teacher, wavelet="db2", levels=2, dim=1, sparsity_weight=0.1)
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        module.losses(x)
    module.train()
    terms = module.losses(x)
    expected = sum(module.weights[name] * value for name, value in terms.items() if name != "loss")
    torch.testing.assert_close(terms["loss"], expected)
    terms["loss"].backward()  # failed when the weights were first made under inference mode
    assert module.h0.grad is not None and bool(torch.isfinite(module.h0.grad).all())
    module.weights["sparsity"] = 2.0
    terms = module.losses(x)
    torch.testing.assert_close(terms["loss"] - expected, 1.9 * terms["sparsity"].detach())
    weight = torch.tensor(0.5, requires_grad=True)
    module.weights["sparsity"] = weight
    module.losses(x)["loss"].backward()
    torch.testing.assert_close(weight.grad, terms["sparsity"].detach())


def test_a_fit_with_no_term_that_distils_is_warned_about():
    # sparsity_weight=0 and attribution_weight=0 (the defaults): the reconstruction and
    # validity terms alone are met by the starting wavelet, so the fit learns nothing
    torch.manual_seed(0)
    teacher = _teacher()
    loader = DataLoader(TensorDataset(torch.randn(32, 32)), batch_size=16)
    trainer_kwargs = dict(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    module = AWDModule(teacher, wavelet="db2", levels=2)
    with pytest.warns(UserWarning, match="no term that distils the teacher"):
        L.Trainer(**trainer_kwargs).fit(module, loader)
    # and indeed the filter stayed where it started
    start = torch.tensor(pywt.Wavelet("db2").rec_lo, dtype=torch.float32)
    assert torch.allclose(module.h0.detach(), start, atol=1e-3)
    distilling = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        L.Trainer(**trainer_kwargs).fit(distilling, loader)
    assert not [w for w in caught if "no term that distils" in str(w.message)]


def test_wavelet_from_checkpoint_names_a_file_that_is_no_checkpoint(tmp_path):
    # a file torch.save did not write had surfaced as torch's "KeyError: 101" or an
    # UnpicklingError advising weights_only=False
    text, array = tmp_path / "notes.txt", tmp_path / "signals.npy"
    text.write_text("hello")
    np.save(array, np.ones(3))
    for path in (text, array):
        with pytest.raises(ValueError, match=r"is not a checkpoint of an AWDModule \(torch.load"):
            wavelet_from_checkpoint(path)
    torch.save(5, tmp_path / "number.pt")
    with pytest.raises(ValueError, match="is not a checkpoint of an AWDModule"):
        wavelet_from_checkpoint(tmp_path / "number.pt")
    with pytest.raises(FileNotFoundError):  # torch's own message names the path
        wavelet_from_checkpoint(tmp_path / "missing.ckpt")


def test_float64_checkpoint_resumes_and_loads_in_float64(tmp_path):
    # Lightning loads a checkpoint's state into the module as constructed (float32) and casts
    # it for "64-true" afterwards: a float64 filter came back as its float32 rounding, so a
    # resumed fit drifted from an uninterrupted one (about 1e-8), and so did
    # load_from_checkpoint(...).double()
    options = dict(wavelet="db2", levels=2, sparsity_weight=0.05, attribution_weight=0.1, lr=1e-2)
    uninterrupted = AWDModule(_teacher(), **options)
    _trainer(max_epochs=2, precision="64-true").fit(uninterrupted, _loader())
    first = AWDModule(_teacher(), **options)
    trainer = _trainer(max_epochs=1, precision="64-true")
    trainer.fit(first, _loader())
    path = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]["h0"]
    assert saved.dtype == torch.float64
    assert not torch.equal(saved.float().double(), saved)  # its float32 rounding is not it
    loaded = AWDModule.load_from_checkpoint(path, teacher=_teacher()).double()
    assert torch.equal(loaded.h0.detach(), saved)
    resumed = AWDModule(_teacher(), **options)
    _trainer(max_epochs=2, precision="64-true").fit(resumed, _loader(), ckpt_path=path)
    assert resumed.h0.dtype == torch.float64
    assert torch.equal(resumed.h0.detach(), uninterrupted.h0.detach())


def test_attributions_read_a_batch_of_any_float_dtype_or_form_as_the_other_methods_do():
    # a float64 (numpy's default) or half-precision batch, or a loader's (signals,) tuple, had
    # failed deep in torch (a dtype mismatch, a list without .device); forward, mean_attributions
    # and reconstruct_top read the same batches
    teacher = _teacher(n_in=3 * 97)
    module = AWDModule(teacher, wavelet="db4", levels=4, mode="symmetric", target=0)
    x = torch.randn(2, 3, 97, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    given = x.clone()
    # reference: the teacher's gradient w.r.t. the coefficients through the inverse transform
    coefficients = tuple(c.detach().requires_grad_() for c in module(x))
    rebuilt = waverec1d(list(coefficients), module.h0.detach(), "symmetric")[..., :97]
    expected = torch.autograd.grad(teacher(rebuilt).sum(), coefficients)
    for batch in (x, x.half(), x.bfloat16(), (x,), [x], {"inputs": x}):
        result = module.attributions(batch)
        assert all(a.dtype == module.h0.dtype for a in result.attributions)
        tolerance = 1e-5 if batch is x or isinstance(batch, tuple | list | dict) else 5e-2
        for got, want in zip(result.attributions, expected):
            torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(x, given, rtol=0, atol=0)
    # create_graph keeps the graph to h0 through the cast of a batch that requires grad
    result = module.attributions(x.requires_grad_(), create_graph=True)
    (h0_grad,) = torch.autograd.grad(sum(a.sum() for a in result.attributions), module.h0)
    assert torch.isfinite(h0_grad).all() and h0_grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"batch must be shaped \(batch, length\)"):
        module.attributions(x[0, 0])


def test_a_float16_filter_is_refused_before_adam_steps_on_it():
    # Adam's eps (1e-8) is 0 in float16: under "16-true" its steps divided by zero, and the
    # fit stopped on a NaN filter with "training diverged: lower lr"
    assert torch.tensor(1e-8, dtype=torch.float16) == 0
    module = AWDModule(_teacher(), wavelet="db2", levels=2, lr=0.05)
    start = module.h0.detach().to(torch.float16)
    with pytest.raises(
        ValueError,
        match=r"^precision must be '16-mixed' or 'bf16-true' for AWDModule, whose filter h0 "
        r"trains with Adam.*is 0 in float16.*got '16-true'\.$",
    ):
        _trainer(precision="16-true").fit(module, _loader())
    assert torch.equal(module.h0.detach(), start)  # cast by the Trainer, never stepped


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda m: m.weights.__setitem__("sparsity", -1.0), ValueError, r"^weights\['sparsity'\]"),
        (lambda m: m.weights.update(cmf=float("nan")), ValueError, r"^weights\['cmf'\]"),
        (lambda m: m.weights.__setitem__("sparsty", 1.0), ValueError, r"^weights must be keyed"),
        (lambda m: setattr(m, "weights", {"sparsity": 1.0}), ValueError, r"^weights must be a "),
        (lambda m: setattr(m, "lr", -1e-3), ValueError, r"^lr must be"),
        (lambda m: setattr(m, "n_steps", 0), ValueError, r"^n_steps must be"),
        (lambda m: setattr(m, "dim", 3), ValueError, r"^dim must be"),
        (lambda m: setattr(m, "dim", 1.0), TypeError, r"^dim must be 1"),
        (lambda m: setattr(m, "target", "a"), TypeError, r"^target must be None, an int"),
        (lambda m: setattr(m, "target", 1.5), TypeError, r"^target must be None, an int"),
        (lambda m: setattr(m, "levels", 0), ValueError, r"^levels must be an integer >= 1"),
        (lambda m: setattr(m, "mode", "zeros"), ValueError, r"^mode must be one of 'zero'"),
    ],
    ids=[
        "weight-negative",
        "update-nan",
        "weight-misspelt",
        "weights-missing",
        "lr",
        "n_steps",
        "dim",
        "dim-float",
        "target-str",
        "target-float",
        "levels",
        "mode",
    ],
)
def test_settings_set_after_construction_are_checked(change, error, message):
    # a negative weight set after construction trained the filter to grow the term it
    # weights (the loss went below zero), silently; a misspelt term was never read; a target
    # of another type failed inside the attribution ("'<=' not supported")
    module = AWDModule(_teacher(), wavelet="db2", levels=2, sparsity_weight=0.1)
    settings = ("lr", "n_steps", "dim", "target", "levels", "mode")
    before = (dict(module.weights), *(getattr(module, name) for name in settings))
    with pytest.raises(error, match=message):
        change(module)
    assert (dict(module.weights), *(getattr(module, name) for name in settings)) == before


def test_a_float_dim_is_refused_at_construction():
    # 1.0 == 1 passed the choice of (1, 2), and the step's slicing then failed in torch
    with pytest.raises(TypeError, match=r"^dim must be 1 \(signals\) or 2 \(images\); got 1\.0"):
        AWDModule(_teacher(), wavelet="db2", levels=2, dim=1.0)
    assert type(AWDModule(_teacher(), wavelet="db2", levels=2, dim=np.int64(1)).dim) is int


def test_target_set_after_construction_is_stored_as_the_constructor_stores_it():
    module = AWDModule(_teacher(n_out=3), wavelet="db2", levels=2)
    module.target = np.int64(2)  # a class read from an array
    assert module.target == 2 and type(module.target) is int
    module.target = (np.int64(1),)
    assert module.target == (1,) and type(module.target[0]) is int


def test_settings_set_after_construction_reach_the_checkpoint(tmp_path):
    # the checkpoint's hyperparameters had kept the constructor's levels, mode and target: the
    # module loaded from it was another model than the one trained (levels 2 for 3), silently
    teacher = _teacher(n_out=3)
    module = AWDModule(teacher, wavelet="db2", levels=2, target=0, lr=1e-2, attribution_weight=0.1)
    module.levels, module.mode, module.target = np.int64(3), "periodization", (np.int64(2),)
    module.lr, module.n_steps = 5e-3, 4
    trainer = _trainer()
    trainer.fit(module, _loader())
    path = tmp_path / "changed.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert (hparams["levels"], hparams["mode"], hparams["target"]) == (3, "periodization", (2,))
    assert (hparams["lr"], hparams["n_steps"]) == (5e-3, 4) and type(hparams["levels"]) is int
    loaded = AWDModule.load_from_checkpoint(path, teacher=teacher)
    assert (loaded.levels, loaded.mode, loaded.target) == (3, "periodization", (2,))
    x = torch.randn(4, 32)
    torch.testing.assert_close(
        loaded.losses(x, create_graph=False)["loss"], module.losses(x, create_graph=False)["loss"]
    )
    # the terms' weights set later too, as a whole dict or one by one
    module.weights["sparsity"], module.weights["cmf"] = 0.25, 3.0
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert (hparams["sparsity_weight"], hparams["validity_weights"]) == (0.25, {"cmf": 3.0})
    loaded = AWDModule.load_from_checkpoint(path, teacher=teacher)
    assert loaded.weights == module.weights
    # a callable set later is held as the constructor holds one: a marker, asked for on load
    module.target = squared_output
    assert module.hparams["target"] == {"callable": "squared_output"}
    assert module.hparams_initial["target"] == 0  # what the loggers were given at the start


def test_weights_set_as_a_whole_dict_act_and_the_module_copies():
    torch.manual_seed(0)
    module = AWDModule(_teacher(), wavelet="db2", levels=2, sparsity_weight=0.1)
    x = torch.randn(8, 32)
    module.weights = {**module.weights, "sparsity": 2.0}
    terms = module.losses(x, create_graph=False)
    expected = sum(module.weights[name] * value for name, value in terms.items() if name != "loss")
    torch.testing.assert_close(terms["loss"], expected)
    copied = copy.deepcopy(module)
    assert copied.weights == module.weights
    with pytest.raises(ValueError, match=r"^weights\['sparsity'\]"):
        copied.weights["sparsity"] = -1.0
    assert pickle.loads(pickle.dumps(module.weights)) == module.weights


class _DetachingTeacher(torch.nn.Module):
    """Scores computed from a detached input, or integers: no gradient reaches the input."""

    def __init__(self, integer=False):
        super().__init__()
        self.linear = torch.nn.Linear(32, 1)
        self.integer = integer

    def forward(self, x):
        if self.integer:
            return (self.linear(x) > 0).long()
        return self.linear(x.detach())


@pytest.mark.parametrize("integer", [False, True], ids=["detached", "integer"])
def test_a_teacher_output_without_gradient_is_named_not_left_to_autograd(integer):
    # torch's "element 0 of tensors does not require grad and does not have a grad_fn" came
    # out of the attributions, the training step's too, naming neither the teacher nor why
    module = AWDModule(_DetachingTeacher(integer), wavelet="db2", levels=2, attribution_weight=0.1)
    message = r"^teacher output must be differentiable with respect to its input"
    with pytest.raises(ValueError, match=message):
        module.attributions(torch.randn(4, 32))
    with pytest.raises(ValueError, match=message):
        _trainer().fit(module, _loader())


def test_several_validation_and_test_loaders_are_evaluated_each_under_its_own_name():
    # Lightning refused several loaders to a validation_step without dataloader_idx
    module = AWDModule(_teacher(), wavelet="db2", levels=2, init_noise=0.1, seed=0)
    first, second = _loader(seed=0), _loader(seed=1)
    (alone,) = _trainer().validate(module, second, verbose=False)
    metrics = _trainer().validate(module, [first, second], verbose=False)
    assert len(metrics) == 2
    for name, value in alone.items():
        assert metrics[1][f"{name}/dataloader_idx_1"] == pytest.approx(value, rel=1e-6)
    assert metrics[0]["val/sparsity/dataloader_idx_0"] != pytest.approx(alone["val/sparsity"])
    tested = _trainer().test(module, [first, second], verbose=False)
    assert tested[1]["test/loss/dataloader_idx_1"] == pytest.approx(alone["val/loss"], rel=1e-6)


def test_settings_changed_after_a_first_batch_are_checked_against_the_next():
    # the first batch of a sample shape is checked (the level limit of its length, the
    # target in the teacher's output) and the shape remembered; a change of levels or target
    # after it skipped the checks: 6 levels ran on signals of 16 samples (limit 4)
    x = torch.randn(4, 16)
    module = AWDModule(_teacher(n_in=16, n_out=3), wavelet="db2", levels=2, target=0)
    module.losses(x)
    module.levels = 6
    with pytest.raises(ValueError, match=r"^levels must be between 1 and 4 for signals of length"):
        module.losses(x)
    module.levels = 2
    module.target = lambda output: output  # three values per sample, not one
    with pytest.raises(ValueError, match=r"^target, a callable, must return one value per sample"):
        module.losses(x)
    module.target = 1
    module.h0 = torch.nn.Parameter(torch.tensor(pywt.Wavelet("db8").rec_lo, dtype=torch.float32))
    with pytest.warns(UserWarning, match=r"levels=2 exceeds pywt\.dwt_max_level\(16, 16\)"):
        module.losses(x)


class _SqueezingTeacher(torch.nn.Module):
    """``linear(x).squeeze()``: no batch axis left for a batch of one."""

    def __init__(self, n_out=1):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(32, n_out)

    def forward(self, x):
        return self.linear(x).squeeze()


def test_a_teacher_that_squeezes_away_the_batch_of_one_is_named():
    # a last batch of one gave the teacher's 0-d output to the target's indexing: an
    # IndexError ("tuple index out of range") from the training step
    message = r"^teacher output .*must have the batch first, shape \(1, \.\.\.\); got shape \(\)"
    module = AWDModule(_SqueezingTeacher(), wavelet="db2", levels=2, attribution_weight=0.1)
    loader = DataLoader(TensorDataset(torch.randn(17, 32)), batch_size=8)  # last batch: one
    with pytest.raises(ValueError, match=message):
        _trainer().fit(module, loader)
    module = AWDModule(_SqueezingTeacher(n_out=3), wavelet="db2", levels=2, target=0)
    with pytest.raises(ValueError, match=r"must have the batch first.* got shape \(3,\)"):
        module.attributions(torch.randn(1, 32))


def test_an_attribution_method_set_after_construction_is_checked_and_reaches_the_checkpoint(
    tmp_path,
):
    # the method set later was neither checked ("foo" failed at the next step, naming
    # "method") nor written to the hyperparameters: the module loaded from the checkpoint
    # computed saliency where integrated gradients had trained the filter, silently
    teacher = _teacher(n_out=1)
    module = AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=0.1)
    for value, error in (("foo", ValueError), (1, TypeError)):
        with pytest.raises(error, match=r"^attribution (method )?must be"):
            module.attribution = value
    assert module.attribution == "saliency"
    module.attribution = "IntegratedGradients"  # an alias, held by its canonical name
    assert module.attribution == "integrated_gradients"
    trainer = _trainer()
    trainer.fit(module, _loader())
    path = tmp_path / "method.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hyper_parameters"]["attribution"] == (
        "integrated_gradients"
    )
    loaded = AWDModule.load_from_checkpoint(path, teacher=teacher)
    assert loaded.attribution == "integrated_gradients"
    x = torch.randn(4, 32)
    for ours, theirs in zip(
        loaded.attributions(x).attributions, module.attributions(x).attributions
    ):
        torch.testing.assert_close(ours, theirs)


def test_a_teacher_working_in_place_leaves_the_callers_batch_as_it_was():
    # the first batch of a shape went to the teacher as it was given (for the checks of its
    # reading): ReLU(inplace=True) first rectified the caller's signals, which the fit's
    # first step and every method then worked on
    torch.manual_seed(0)
    in_place = torch.nn.Sequential(torch.nn.ReLU(inplace=True), torch.nn.Linear(32, 1))
    plain = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(32, 1))
    plain.load_state_dict(in_place.state_dict())
    x = torch.randn(4, 32)
    given = x.clone()
    for call in (
        lambda m: m(x),
        lambda m: m.attributions(x),
        lambda m: m.losses(x),
        lambda m: m.reconstruct_top(x, 3),
    ):
        module, reference = (
            AWDModule(teacher, wavelet="db2", levels=2, attribution_weight=0.1)
            for teacher in (in_place, plain)
        )
        call(module)
        assert torch.equal(x, given)
    terms, expected = module.losses(x), reference.losses(x)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value)
    loader = DataLoader(TensorDataset(x), batch_size=4)
    _trainer().fit(module, loader)
    assert torch.equal(loader.dataset.tensors[0], given)
