"""Small models and data shared by the Lightning-side tests."""

import lightning as L
import torch
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
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(kwargs)
    return L.Trainer(**options)


def state_copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
