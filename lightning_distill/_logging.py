"""Training-step logging: when to log step values (decided from public Trainer attributes only) and
the epoch means of loss terms."""

from __future__ import annotations

import copy
import re
import warnings

import torch
from lightning.pytorch.utilities.parsing import AttributeDict
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from lightning_distill._distributed import rank_and_world_size
from lightning_distill._validation import plain_data

__all__ = [
    "EpochMeans",
    "QuietMissingValLoader",
    "QuietWarning",
    "SettledHyperparameters",
    "StopStepValues",
    "attached_trainer",
    "logs_step_values",
    "settle_hyperparameters",
]

_MISSING_VAL_LOADER = "You defined a `validation_step` but have no `val_dataloader`"


class QuietWarning:
    """Silence Lightning's ``PossibleUserWarning`` whose message starts with ``message`` (taken
    literally) until :meth:`stop`.

    The filter is this library's own entry in ``warnings.filters``, inserted first and removed
    again by :meth:`stop`; the other entries are left as they were.
    """

    def __init__(self, message: str) -> None:
        # a pattern of this library's own (a regex comment at its end): filterwarnings replaces
        # an equal entry, so a user's filter for the same message would be removed with it
        pattern = re.escape(message) + "(?#lightning_distill)"
        warnings.filterwarnings("ignore", message=pattern, category=PossibleUserWarning)
        self._entry = warnings.filters[0]

    def stop(self) -> None:
        if self._entry in warnings.filters:
            warnings.filters.remove(self._entry)
        self._entry = None


class QuietMissingValLoader(QuietWarning):
    """Silence Lightning's "validation_step but no val_dataloader" warning until :meth:`stop`.

    The modules of this library validate when given validation data and train without it by
    design, so a fit without validation data is intended, not a likely mistake. The filter
    is removed again by :meth:`stop` (the module's ``setup``, which Lightning runs right after
    its configuration check, or a failed run), so it never outlives that check.
    """

    def __init__(self) -> None:
        super().__init__(_MISSING_VAL_LOADER)


class EpochMeans:
    """Running sums of a training epoch's loss terms, weighted by batch size, for their epoch
    means.

    One stacked, detached tensor of all terms per step (a tenth of the small tensor operations
    of a running sum per term), summed in float32 at least: bfloat16 sums of a whole epoch
    would be rounded. A step whose terms are other names than the last step's (a term that
    appears on some batches only) is summed apart, and each name's mean is over the samples of
    the steps that had it.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums: dict[tuple[str, ...], list] = {}

    def add(self, terms: dict, batch_size: int) -> torch.Tensor:
        """Add one step's ``terms`` (scalar tensors); returns them stacked and detached."""
        given = list(terms.values())
        if all(isinstance(value, torch.Tensor) and value.ndim == 0 for value in given) and (
            len({value.dtype for value in given}) == 1
        ):  # the common case: one stack, one detach
            values = torch.stack(given).detach()
        else:
            # a term of shape [1] (a user's loss) is read as the scalar it holds, as self.log does
            values = torch.stack([torch.as_tensor(value).detach().reshape(()) for value in given])
        if values.dtype not in (torch.float32, torch.float64):
            values = values.to(torch.promote_types(values.dtype, torch.float32))
        names = tuple(terms)
        entry = self._sums.get(names)
        if entry is None:
            self._sums[names] = [values * batch_size, batch_size]
        else:
            entry[0] += values * batch_size
            entry[1] += batch_size
        return values

    def _totals(self) -> dict[str, list]:
        """``{name: [sum, samples]}`` over the groups of names the steps had."""
        totals: dict[str, list] = {}
        for names, (sums, count) in self._sums.items():
            for name, total in zip(names, sums):
                entry = totals.setdefault(name, [0.0, 0])
                entry[0] = entry[0] + total
                entry[1] += count
        return totals

    def means(self) -> dict:
        """Each name's mean over the epoch's samples (empty before the first step)."""
        return {name: total / count for name, (total, count) in self._totals().items()}

    def synced_means(self, device: torch.device) -> dict:
        """:meth:`means` over the samples of every process under DDP (one process: the same).

        The processes first agree on the names (a term some process never logged, e.g. a
        label term where one process saw only unlabelled batches, is summed as 0 over 0 samples
        there), then add their per-name sums and sample counts: every process gets the same
        names in the same order, so the loggers' own syncs pair up, and each mean is over the
        samples of all processes (exact also when they hold different numbers of samples).
        """
        _, world_size = rank_and_world_size()
        if world_size == 1:
            return self.means()
        totals = self._totals()
        gathered: list = [None] * world_size
        torch.distributed.all_gather_object(gathered, sorted(totals))
        names = sorted(set().union(*gathered))
        if not names:
            return {}
        # one dtype on every process (one with no sums of its own included)
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        sums = torch.stack(
            [torch.as_tensor(totals.get(name, [0.0])[0]).to(device, dtype) for name in names]
        )
        counts = torch.tensor([totals.get(name, [0, 0])[1] for name in names], device=device)
        torch.distributed.all_reduce(sums)
        torch.distributed.all_reduce(counts)
        return {name: sums[i] / counts[i] for i, name in enumerate(names)}


def settle_hyperparameters(module) -> None:
    """Store ``module.hparams`` as plain data (:func:`~lightning_distill._validation.plain_data`)
    and keep a copy of them for the loggers (:class:`SettledHyperparameters`): call it once the
    module has set its hyperparameters.

    Checkpoints hold ``hparams``; the loggers (``hparams.yaml``, TensorBoard's and MLflow's
    parameters) are given ``hparams_initial``, by default the copy ``save_hyperparameters`` took
    when it was called. The settings a module stores after that call (its temperature, optimizer
    and feature pairs as data, numpy scalars as numbers) would otherwise reach the checkpoints
    but not the loggers, which would record a run without its temperature.
    """
    for key, value in module.hparams.items():
        module.hparams[key] = plain_data(value)
    module._settled_hparams = copy.deepcopy(dict(module.hparams))


class SettledHyperparameters:
    """A LightningModule mixin: ``hparams_initial`` (what the Trainer gives its loggers) holds
    the settings as :func:`settle_hyperparameters` kept them at the end of construction, not
    as ``save_hyperparameters`` took them before the module stored the rest; the keys of a
    later ``save_hyperparameters`` call (a subclass's own arguments) are kept beside them."""

    @property
    def hparams_initial(self) -> AttributeDict:
        initial = super().hparams_initial
        settled = getattr(self, "_settled_hparams", None)
        if settled is not None:  # None while still under construction
            initial.update(copy.deepcopy(settled))
        return initial


def attached_trainer(module):
    """The Trainer running ``module``, or None when it runs outside a Trainer."""
    try:
        return module.trainer
    except RuntimeError:
        return None


def logs_step_values(trainer, *, last_batch: bool = True) -> bool:
    """Whether the loggers write the values logged in the current training step.

    Each ``self.log`` call costs about a millisecond on a small CPU (Lightning's result
    collection), several percent of a small step, and loggers write step values only every
    ``log_every_n_steps`` steps: after the step whose count, *including itself*, is a multiple
    of it (``global_step + 1``). A value logged on another step would be written later, under
    the wrong step. With ``last_batch``, an epoch's last batch logs too, and the step that
    reaches ``max_steps``, so that ``trainer.callback_metrics`` holds every term after each
    epoch and after the run. When a callback (a
    ``ModelCheckpoint``, ``EarlyStopping``) or a learning-rate scheduler monitors a ``train/``
    value, every step logs: between logger steps ``trainer.callback_metrics`` would hold an
    older step's value, and a checkpoint saved every step would be scored with it.

    Parameters
    ----------
    trainer : lightning.Trainer or None
        None (a module used without a Trainer) logs every step.
    last_batch : bool, default=True
        Also log on the last batch of an epoch.
    """
    if trainer is None:
        return True
    if _step_values_monitored(trainer):
        return True
    every = trainer.log_every_n_steps
    if every and (trainer.global_step + 1) % every == 0:
        return True
    # a run that max_steps ends in the middle of an epoch: its last step logs, as an epoch's
    last_step = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step + 1
    return bool(last_batch and (trainer.is_last_batch or trainer.should_stop or last_step))


class StopStepValues:
    """A training step's values, kept to be logged from ``on_train_batch_end`` when the run is
    stopped after the step.

    Lightning writes the step values after every batch at which ``trainer.should_stop`` is set,
    also when a callback sets it in its ``on_train_batch_end`` (``Timer``, which
    ``Trainer(max_time=...)`` adds, or a user's callback): after the step, which
    :func:`logs_step_values` had let go unlogged, so the loggers would write the last logging
    step's values under the final step. The LightningModule's ``on_train_batch_end`` runs after
    every callback's: there :meth:`late` gives the values the step did not log, to log under
    the same names.

    Lightning keeps a value per hook and name until the epoch's end, and for a name logged from
    both hooks the loggers get one of the two by the order in which the hooks first logged it,
    not the newer one. A name :meth:`late` gave is therefore given again on each later step of
    the epoch that logs it (a stop that ``min_steps`` or ``min_epochs`` overrules leaves
    ``should_stop`` set, and every later step logs): the two hooks then hold the same value. On
    the other steps :meth:`late` gives nothing, so no ``self.log`` call is added to an ordinary
    step.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the epoch's values (at each epoch's start: Lightning clears step values at an
        epoch's end)."""
        self._names: tuple = ()
        self._values = None
        self._logged: tuple = ()
        self._batch_size: int | None = None
        self._late: set[str] = set()

    def keep(self, names: tuple, values, logged: tuple, batch_size: int | None) -> None:
        """The step's term ``names``, their detached ``values`` (a stacked tensor or a
        sequence, in the same order), the names the step logged, and its batch size."""
        self._names, self._values, self._logged = names, values, logged
        self._batch_size = batch_size

    @property
    def batch_size(self) -> int | None:
        """The batch size of the step :meth:`keep` was given last."""
        return self._batch_size

    def late(self, trainer) -> dict:
        """The values to log from ``on_train_batch_end`` (usually none): at a stop the names
        the step did not log, and on any step the names given before in the epoch that the step
        logged. The step's values are let go."""
        names, values, logged = self._names, self._values, self._logged
        self._names, self._values, self._logged = (), None, ()
        stop = trainer is not None and trainer.should_stop
        if not names or not (stop or self._late):
            return {}
        late = {
            name: values[i]
            for i, name in enumerate(names)
            if (stop and name not in logged) or (name in logged and name in self._late)
        }
        self._late.update(late)
        return late


def _step_values_monitored(trainer) -> bool:
    """Whether a callback or a scheduler of ``trainer`` monitors a ``train/`` value."""
    monitors = [getattr(callback, "monitor", None) for callback in trainer.callbacks]
    monitors += [getattr(config, "monitor", None) for config in trainer.lr_scheduler_configs]
    return any(isinstance(name, str) and name.startswith("train/") for name in monitors)
