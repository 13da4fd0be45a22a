"""Small models, data and Trainer settings shared by the Lightning-side tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset


def make_cnn(channels: int, num_classes: int = 3, batch_norm: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(1, channels, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(channels))
    layers += [
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    ]
    return nn.Sequential(*layers)


def make_data(n: int = 64, num_classes: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    return x, y


class Recurrent(nn.Module):
    """A GRU classifier of [B, T, 3] sequences: ``rnn`` returns (output sequence, last state)."""

    def __init__(self, hidden: int, num_classes: int = 3):
        super().__init__()
        self.rnn = nn.GRU(3, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        sequence, _ = self.rnn(x)
        return self.head(sequence[:, -1])


class WritesItsInput(nn.Module):
    """Scales its input in place, then hands it on (a model that writes its batch)."""

    def forward(self, x):
        return x.mul_(10)


class RecordingLinear(nn.Module):
    """``nn.Linear(4, 3)`` that keeps a copy of every input it reads in ``seen``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.seen: list = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.linear(x)


class IndexedDataset(Dataset):
    """(input, target, index) samples, as cache_teacher needs."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


def shuffled_loader(x, y, batch_size=16, seed=0):
    """A shuffled loader whose order depends only on (seed, epoch): resumable."""
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def quiet_trainer(**kwargs) -> L.Trainer:
    """A CPU Trainer without logger, checkpoints, progress bar or summary; one epoch by default."""
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    if "max_epochs" not in kwargs and "max_steps" not in kwargs:
        options["max_epochs"] = 1
    options.update(kwargs)
    return L.Trainer(**options)


def state_copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class PlainClassifier(L.LightningModule):
    """A user's own LightningModule around ``net``: cross-entropy, SGD (for the callback)."""

    def __init__(self, net: nn.Module, lr: float = 0.01):
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch[0], batch[1]  # (x, y) or (x, y, index)
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TinyNet(L.LightningModule):
    def __init__(self, classes: int = 6, lr: float = 0.05, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lr = lr
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 10, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, classes)
        )

    def forward(self, x):
        return self.head(self.features(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


# label 0 unlabelled; objects 1-3, colours 4-5 (pixel layers), scenes 6-7 (whole-image labels)
LABEL_NAMES = ["-", "ball", "box", "tree", "red", "blue", "beach", "forest"]
LABEL_CATEGORIES = ["", "object", "object", "object", "color", "color", "scene", "scene"]
CATEGORY_CODES = [-1, 0, 0, 0, 1, 1, 2, 2]


def make_probe(num_images: int = 24, units: int = 6, seed: int = 0):
    """Activations ``[N, U, 7, 7]`` and labels ``[N, 2, 28, 28]``, ``[N, 2]``.

    Activations are multiples of 1/16 and the upsampling factor is 4, so the bilinear maps are
    exact in float32 and float64 alike: the metric and the float64 reference see identical masks.
    Some units follow a concept (to give detectors), the others are noise.
    """
    rng = np.random.default_rng(seed)
    labels = np.zeros((num_images, 2, 28, 28), dtype=np.int64)
    image_labels = np.zeros((num_images, 2), dtype=np.int64)
    for i in range(num_images):
        for label in (1, 2, 3):
            y, x = rng.integers(0, 20, size=2)
            h, w = rng.integers(4, 14, size=2)
            labels[i, 0, y : y + h, x : x + w] = label
        if rng.random() < 0.7:  # colour annotated in most images only
            y, x = rng.integers(0, 16, size=2)
            labels[i, 1, y : y + 12, x : x + 12] = rng.integers(4, 6)
        if rng.random() < 0.8:
            image_labels[i, 0] = rng.integers(6, 8)
    indicator = torch.from_numpy(labels).float()
    pooled = {
        c: F.avg_pool2d((indicator == c).any(1, keepdim=True).float(), 4).numpy()[:, 0]
        for c in (1, 2, 4)
    }
    activations = rng.integers(0, 48, size=(num_images, units, 7, 7)).astype(np.float32) / 16
    activations[:, 0] += 4 * pooled[1]
    activations[:, 1] += 4 * pooled[2]
    activations[:, 2] += 4 * pooled[4]
    activations[image_labels[:, 0] == 6, 3] += 1.0  # a "beach" unit
    return activations, labels, image_labels


ROOT = Path(__file__).resolve().parents[1]


def ddp_problem():
    """Fixed data and freshly seeded teacher and student MLPs of the KD DDP scripts."""
    L.seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 10, generator=gen)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    teacher = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3))
    student = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    return x, y, teacher, student


def ddp_fit(
    module, devices: int, global_batch: int, train, val, max_epochs: int = 3, callbacks=None
):
    """Fit ``module`` with ``devices`` CPU processes (DDP for more than one) and return the
    Trainer. Rank r takes samples r, r + devices, ... of each data set in order: with the same
    global batch every step sees the same samples as one process does, so the updates agree."""
    trainer = L.Trainer(
        callbacks=callbacks,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )

    def loader(dataset):
        sampler = DistributedSampler(
            dataset, num_replicas=devices, rank=trainer.global_rank, shuffle=False
        )
        return DataLoader(dataset, batch_size=global_batch // devices, sampler=sampler)

    trainer.fit(module, loader(train), loader(val))
    return trainer


def ddp_metrics(trainer, student: nn.Module) -> dict:
    """The logged ``val/`` metrics, world size, steps and the student's weight sum."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["world_size"] = trainer.world_size
    metrics["steps"] = trainer.global_step
    metrics["weight_sum"] = float(sum(p.double().sum() for p in student.parameters()))
    return metrics


def write_from_rank_zero(trainer, metrics: dict, out_path: str) -> None:
    """Rank 0 writes ``metrics``; then every rank leaves the process group. Lightning leaves it
    up at the end of a fit, and gloo's threads still running at interpreter exit can abort a
    process ("terminate called without an active exception") after its work is done."""
    if trainer.global_rank == 0:
        with open(out_path, "w") as f:
            json.dump(metrics, f)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def run_ddp_script(script: Path, devices: int, out: Path, *extra: str) -> dict:
    """Run ``script DEVICES OUT [EXTRA...]`` in a fresh interpreter (no inherited distributed
    settings, one thread) and return the JSON it wrote to ``OUT``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MASTER_", "LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, str(script), str(devices), str(out), *extra],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


class HyperparameterLogger(Logger):
    """A logger keeping the hyperparameters a Trainer gives it (``params``, as given)."""

    def __init__(self) -> None:
        super().__init__()
        self.params = None

    @property
    def name(self) -> str:
        return "hyperparameters"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.params = params

    def log_metrics(self, metrics, step=None) -> None:
        pass


def logged_and_saved_hyperparameters(module, make_trainer, loader, path):
    """Fit ``module`` with ``make_trainer(logger=...)`` on ``loader``: the hyperparameters its
    loggers were given and those a checkpoint saved at ``path`` holds."""
    logger = HyperparameterLogger()
    trainer = make_trainer(logger=logger)
    trainer.fit(module, loader)
    trainer.save_checkpoint(path)
    return logger.params, torch.load(path, weights_only=True)["hyper_parameters"]


class HostReads(L.Callback):
    """Counts ``Tensor.__bool__`` calls (each a host read of a device value) in training steps:
    from the batch's start to the backward pass."""

    def __init__(self):
        self.per_step: list[int] = []
        self._original = torch.Tensor.__bool__

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        count = self.per_step.append(0) or self
        original = self._original

        def counted(tensor):
            count.per_step[-1] += 1
            return original(tensor)

        torch.Tensor.__bool__ = counted

    def on_before_backward(self, trainer, pl_module, loss):
        torch.Tensor.__bool__ = self._original

    def on_exception(self, trainer, pl_module, exception):
        torch.Tensor.__bool__ = self._original


def small_audit(calibration):
    """A main-effect CompareAudit with small, fast Explainable Boosting models (2 bags, 100
    rounds, 16 bins), for tests of what fit says and reports rather than of the fits."""
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    from sklearn_distill import CompareAudit

    small = {"outer_bags": 2, "max_rounds": 100, "max_bins": 16, "n_jobs": 1}
    return CompareAudit(
        calibration=calibration,
        interactions=0,
        cv=2,
        n_crossfits=1,
        random_state=0,
        student=ExplainableBoostingRegressor(**small, learning_rate=0.3),
        outcome=ExplainableBoostingClassifier(**small, learning_rate=0.05),
    )


class NoisyInput(torch.nn.Module):
    """Adds input noise in training only, its level set by its own ``train()`` (as a schedule
    would): after a block that put it in eval mode, the flag alone would read as training
    while the level stayed off."""

    def __init__(self, std: float = 0.1):
        super().__init__()
        self.base = self.std = std

    def train(self, mode: bool = True):
        self.std = self.base if mode else 0.0
        return super().train(mode)

    def forward(self, x):
        return x + self.std * torch.randn_like(x) if self.std else x
