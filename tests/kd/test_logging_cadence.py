"""The step values of DistillationModule and KnowledgeDistillation reach the loggers on the
Trainer's logging steps, under the right step, and callback_metrics after each epoch."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill import DistillationModule, KnowledgeDistillation
from tests.helpers import PlainClassifier, quiet_trainer


class Recording(Logger):
    def __init__(self):
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    @property
    def name(self):
        return "recording"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.rows.append((step, dict(metrics)))


def steps_with(logger: Recording, key: str) -> list[int]:
    return [step for step, metrics in logger.rows if key in metrics]


def test_terms_are_logged_on_logging_steps_only():
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(28, 5), torch.randint(0, 3, (28,)))
    loader = DataLoader(data, batch_size=4)  # 7 batches
    teacher = torch.nn.Linear(5, 3)
    # written on the steps with (step + 1) % 3 == 0; the last batch's values (step 6) are logged
    # too but only reach trainer.callback_metrics
    expected = [2, 5]
    for run in ("module", "callback"):
        logger = Recording()
        trainer = quiet_trainer(logger=logger, log_every_n_steps=3)
        if run == "module":
            trainer.fit(DistillationModule(torch.nn.Linear(5, 3), teacher), loader)
        else:
            callback = KnowledgeDistillation(teacher)
            trainer = quiet_trainer(logger=logger, log_every_n_steps=3, callbacks=[callback])
            trainer.fit(PlainClassifier(torch.nn.Linear(5, 3)), loader)
        assert steps_with(logger, "train/loss_kd") == expected, run
        assert steps_with(logger, "train/loss_ce") == expected, run
        if run == "module":  # without a progress bar the total too
            assert steps_with(logger, "train/loss") == expected
        else:  # the total the optimizer steps on, beside the module's own loss
            assert steps_with(logger, "train/loss_total") == expected
        assert "train/loss_kd" in trainer.callback_metrics


@pytest.mark.parametrize("run", ["module", "callback"])
def test_a_run_ended_by_max_steps_leaves_its_last_steps_values(run):
    # max_steps=7 ends the run at the 7th of 10 batches, between logging steps (every 5): the
    # terms of step 6 (zero-based), not of step 4, are what callback_metrics holds after it
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(40, 5), torch.randint(0, 3, (40,)))
    teacher = torch.nn.Linear(5, 3)
    logged_at = []

    if run == "module":
        module = DistillationModule(torch.nn.Linear(5, 3), teacher)
        callbacks = []
    else:
        module = PlainClassifier(torch.nn.Linear(5, 3))
        callbacks = [KnowledgeDistillation(teacher)]
    log_dict = module.log_dict

    def recording(values, *args, **kwargs):
        if any(key.startswith("train/loss_kd") for key in values):
            logged_at.append(module.trainer.global_step)
        return log_dict(values, *args, **kwargs)

    module.log_dict = recording
    trainer = quiet_trainer(max_steps=7, log_every_n_steps=5, callbacks=callbacks)
    trainer.fit(module, DataLoader(data, batch_size=4))
    assert logged_at == [4, 6]


def test_a_monitored_step_value_is_logged_every_step(tmp_path):
    # a checkpoint saved every step and scored on train/loss_ce must see that step's value
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_distill.kd.losses import distillation_terms

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(28, 5), torch.randint(0, 3, (28,)))
    teacher = torch.nn.Linear(5, 3)
    seen = []

    class Scores(ModelCheckpoint):
        # the student before this step's update: the values the step logged
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            x, y = batch
            with torch.no_grad():
                terms = distillation_terms(pl_module.student(x), teacher(x), y, 4.0, 0.9, 0.0)
            self.expected = float(terms.ce)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((float(trainer.callback_metrics["train/loss_ce"]), self.expected))
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    module = DistillationModule(torch.nn.Linear(5, 3), teacher)
    checkpoint = Scores(monitor="train/loss_ce", every_n_train_steps=1, save_top_k=1)
    trainer = quiet_trainer(
        log_every_n_steps=5,
        callbacks=[checkpoint],
        enable_checkpointing=True,
        default_root_dir=tmp_path,  # not the working directory
    )
    trainer.fit(module, DataLoader(data, batch_size=4))
    assert len(seen) == 7
    for logged, computed in seen:
        assert logged == pytest.approx(computed, rel=1e-6)


def test_epoch_means_of_the_loss_terms_weigh_each_batch_by_its_size():
    # train/<term>_epoch (as AWDModule logs): the mean over the epoch's samples of each term,
    # so the last, smaller batch counts for its size
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(28, 5), torch.randint(0, 3, (28,)))
    loader = DataLoader(data, batch_size=8)  # batches of 8, 8, 8 and 4
    logger = Recording()
    module = DistillationModule(torch.nn.Linear(5, 3), torch.nn.Linear(5, 3))
    quiet_trainer(logger=logger, log_every_n_steps=1, max_epochs=2).fit(module, loader)
    sizes = torch.tensor([8.0, 8.0, 8.0, 4.0])
    for name in ("loss", "loss_ce", "loss_kd"):
        steps = [m[f"train/{name}"] for _, m in logger.rows if f"train/{name}" in m]
        epochs = [m[f"train/{name}_epoch"] for _, m in logger.rows if f"train/{name}_epoch" in m]
        assert len(steps) == 8 and len(epochs) == 2, name
        for epoch in range(2):
            values = torch.tensor(steps[4 * epoch : 4 * epoch + 4])
            expected = float((values * sizes).sum() / sizes.sum())
            assert epochs[epoch] == pytest.approx(expected, rel=1e-6), name


def test_epoch_means_of_a_term_some_steps_lack_are_over_the_steps_that_had_it():
    from lightning_distill._logging import EpochMeans

    means = EpochMeans()
    half = torch.tensor(2.0, dtype=torch.bfloat16)
    means.add({"loss": torch.tensor(1.0), "loss_ce": half}, 2)
    means.add({"loss": torch.tensor(4.0)}, 1)
    result = means.means()
    assert result.keys() == {"loss", "loss_ce"}
    assert float(result["loss"]) == pytest.approx(2.0) and float(result["loss_ce"]) == 2.0
    assert result["loss"].dtype == torch.float32  # summed in float32 beside a bfloat16 term
    means.reset()
    assert means.means() == {}


def test_epoch_means_take_terms_of_shape_one_and_python_numbers():
    # self.log takes a user's [1]-shaped loss or a float; the epoch sums stacked 0-d tensors only
    from lightning_distill._logging import EpochMeans

    means = EpochMeans()
    means.add({"loss": torch.tensor([2.0]), "extra": 1.5}, 2)
    means.add({"loss": torch.tensor([4.0]), "extra": 3.0}, 2)
    assert {k: float(v) for k, v in means.means().items()} == {"loss": 3.0, "extra": 2.25}


class SkipsSomeSteps(PlainClassifier):
    """Returns None (Lightning's skipped step) on the steps that ``skip(global_step)`` picks."""

    def __init__(self, net, skip):
        super().__init__(net)
        self.skip = skip

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return None if self.skip(self.global_step) else loss


def test_a_module_skipping_the_logging_steps_still_gets_its_terms_written():
    # The module skips exactly the steps the loggers write (every third). Logged on every step,
    # the terms of the step before would be written there (Lightning writes the latest value);
    # with the callback's cadence nothing reached the loggers all epoch.
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(28, 5), torch.randint(0, 3, (28,)))
    net, teacher = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)

    def fit(log_every_n_steps):
        logger = Recording()
        module = SkipsSomeSteps(copy.deepcopy(net), lambda step: (step + 1) % 3 == 0)
        trainer = quiet_trainer(
            logger=logger,
            log_every_n_steps=log_every_n_steps,
            max_epochs=2,  # 7 batches an epoch
            callbacks=[KnowledgeDistillation(copy.deepcopy(teacher))],
        )
        trainer.fit(module, DataLoader(data, batch_size=4))
        return {step: metrics for step, metrics in logger.rows if "train/loss_kd" in metrics}

    every_step, cadence = fit(1), fit(3)
    assert sorted(cadence) == [2, 5, 8, 11]
    for step, metrics in cadence.items():
        for name in ("train/loss_kd", "train/loss_ce", "train/loss_total"):
            # the step before distilled: the values of every-step logging, its own values
            assert metrics[name] == every_step[step - 1][name], (step, name)


class LogsItsOwnLoss(SkipsSomeSteps):
    """Logs its own loss on the steps it does not skip."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if loss is not None:
            self.log("own", loss.detach())
        return loss


def test_a_skipped_first_step_of_an_epoch_writes_no_value_of_the_epoch_before():
    # Lightning clears the step values at each epoch's end: on a skipped first step of an
    # epoch, a value the module logs on its other steps is not written, nor are the terms
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(28, 5), torch.randint(0, 3, (28,)))
    logger = Recording()
    module = LogsItsOwnLoss(torch.nn.Linear(5, 3), lambda step: step == 7)  # epoch 2's first
    callback = KnowledgeDistillation(torch.nn.Linear(5, 3))
    trainer = quiet_trainer(logger=logger, log_every_n_steps=1, max_epochs=2, callbacks=[callback])
    trainer.fit(module, DataLoader(data, batch_size=4))
    own = steps_with(logger, "own")
    assert 7 not in own and len(own) == 13  # Lightning's own convention
    assert steps_with(logger, "train/loss_kd") == own


class StopsAt(L.Callback):
    """Sets ``trainer.should_stop`` in its ``on_train_batch_end`` once ``global_step`` reaches
    ``step`` (after the step, as ``Timer`` does)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


class TermsBeforeEachStep(L.Callback):
    """Each step's distillation terms, computed from the student before its update."""

    def __init__(self, teacher, student_of):
        self.teacher, self.student_of = teacher, student_of
        self.terms: list[dict[str, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        from lightning_distill.kd.losses import distillation_terms

        x, y = batch
        with torch.no_grad():
            terms = distillation_terms(
                self.student_of(pl_module)(x), self.teacher(x), y, 4.0, 0.9, 0.0
            )
        self.terms.append({"loss_kd": float(terms.kd), "loss_ce": float(terms.ce)})


def _stopped_run(run, stop_at, monkeypatch=None, **trainer_options):
    """A fit of 16 batches stopped after the step that brings global_step to ``stop_at``: by a
    callback, or with ``monkeypatch`` by the Timer that ``max_time`` adds (on a clock of ten
    seconds a step)."""
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 5), torch.randint(0, 3, (64,)))  # 16 batches
    teacher = torch.nn.Linear(5, 3)
    if run == "module":
        module = DistillationModule(torch.nn.Linear(5, 3), copy.deepcopy(teacher))
        callbacks, student_of, total = [], lambda m: m.student, "train/loss"
    else:
        module = PlainClassifier(torch.nn.Linear(5, 3))
        callbacks = [KnowledgeDistillation(copy.deepcopy(teacher))]
        student_of, total = (lambda m: m.net), "train/loss_total"
    probe = TermsBeforeEachStep(teacher, student_of)
    logged_at = []
    log = module.log

    def recording(name, *args, **kwargs):  # log_dict calls it too
        if name == "train/loss_kd":
            logged_at.append(module.trainer.global_step)
        return log(name, *args, **kwargs)

    module.log = recording
    logger = Recording()
    # the stopping callback after KnowledgeDistillation, as a Timer that max_time adds is
    if monkeypatch is None:
        stoppers = [StopsAt(stop_at)]
    else:
        from lightning.pytorch.callbacks import timer

        clock = SimpleNamespace(monotonic=lambda: 10.0 * module.global_step)
        monkeypatch.setattr(timer, "time", clock)
        stoppers, trainer_options["max_time"] = [], {"seconds": 10 * stop_at - 5}
    options = {"logger": logger, "callbacks": [*callbacks, probe, *stoppers]}
    trainer = quiet_trainer(**options, **trainer_options)
    trainer.fit(module, DataLoader(data, batch_size=4))
    return trainer, logger, probe, logged_at, total


@pytest.mark.parametrize("run, bar", [("module", False), ("callback", False), ("module", True)])
def test_a_stop_set_by_a_callback_after_the_step_writes_that_steps_values(run, bar):
    # Lightning writes the step values at a stop set in a callback's on_train_batch_end, after
    # a step that (between logging steps) logged nothing: the final row held step 4's values
    # under step 6. With a progress bar the module logs its loss on every step, its terms not.
    trainer, logger, probe, logged_at, total = _stopped_run(
        run, 7, log_every_n_steps=5, enable_progress_bar=bar
    )
    rows = {step: metrics for step, metrics in logger.rows if "train/loss_kd" in metrics}
    assert sorted(rows) == [4, 6]
    for step, metrics in rows.items():
        for name in ("loss_kd", "loss_ce"):
            expected = probe.terms[step][name]
            assert metrics[f"train/{name}"] == pytest.approx(expected, rel=1e-5), (step, name)
    assert rows[6][total] != rows[4][total]
    assert float(trainer.callback_metrics["train/loss_kd"]) == rows[6]["train/loss_kd"]
    # logged at the logging step and once more at the stop; not on the other steps
    assert logged_at == [4, 7]


@pytest.mark.parametrize("run", ["module", "callback"])
def test_a_run_that_max_time_stops_writes_its_last_steps_values(run, monkeypatch):
    # the Timer that Trainer(max_time=...) adds comes after KnowledgeDistillation among the
    # callbacks, and sets should_stop in its on_train_batch_end
    trainer, logger, probe, logged_at, _ = _stopped_run(run, 7, monkeypatch, log_every_n_steps=5)
    assert trainer.global_step == 7
    rows = {step: metrics for step, metrics in logger.rows if "train/loss_kd" in metrics}
    assert sorted(rows) == [4, 6]
    for step, metrics in rows.items():
        expected = probe.terms[step]["loss_kd"]
        assert metrics["train/loss_kd"] == pytest.approx(expected, rel=1e-5), step
    assert logged_at == [4, 7]


@pytest.mark.parametrize("run", ["module", "callback"])
def test_a_stop_that_min_steps_overrules_writes_each_later_steps_own_values(run):
    # should_stop stays set (here to the epoch's end), and every later step is written: the
    # values logged at the stop (from on_train_batch_end) must not be written again there
    trainer, logger, probe, _, _ = _stopped_run(run, 7, log_every_n_steps=5, min_steps=12)
    rows = {step: metrics for step, metrics in logger.rows if "train/loss_kd" in metrics}
    assert sorted(rows) == [4, *range(6, 16)]
    for step, metrics in rows.items():
        expected = probe.terms[step]["loss_kd"]
        assert metrics["train/loss_kd"] == pytest.approx(expected, rel=1e-5), step
    assert float(trainer.callback_metrics["train/loss_kd"]) == rows[15]["train/loss_kd"]


@pytest.mark.parametrize("run", ["module", "callback"])
def test_a_stop_leaves_the_epoch_means_as_they_were(run):
    # the terms logged again at the stop are step values only: the epoch means are over the
    # samples of the steps that ran, each once
    _, logger, probe, _, _ = _stopped_run(run, 7, log_every_n_steps=5)
    epoch = [metrics for _, metrics in logger.rows if "train/loss_kd_epoch" in metrics]
    if run == "callback":  # the callback logs no epoch means of its own
        assert epoch == []
        return
    assert len(epoch) == 1
    expected = sum(terms["loss_kd"] for terms in probe.terms) / len(probe.terms)
    assert len(probe.terms) == 7
    assert epoch[0]["train/loss_kd_epoch"] == pytest.approx(expected, rel=1e-5)


def test_the_callback_gives_back_the_modules_own_on_train_batch_end():
    module = PlainClassifier(torch.nn.Linear(5, 3))
    own = lambda *args, **kwargs: None  # noqa: E731
    module.on_train_batch_end = own
    data = TensorDataset(torch.randn(8, 5), torch.randint(0, 3, (8,)))
    callback = KnowledgeDistillation(torch.nn.Linear(5, 3))
    quiet_trainer(callbacks=[callback]).fit(module, DataLoader(data, batch_size=4))
    assert module.__dict__["on_train_batch_end"] is own
    plain = PlainClassifier(torch.nn.Linear(5, 3))
    quiet_trainer(callbacks=[callback]).fit(plain, DataLoader(data, batch_size=4))
    assert "on_train_batch_end" not in plain.__dict__
