"""The step values of DistillationModule and KnowledgeDistillation reach the loggers on the
Trainer's logging steps, under the right step, and callback_metrics after each epoch."""

from __future__ import annotations

import copy

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
