"""Overhead of DistillationModule under a Trainer against a hand-written PyTorch loop.

Both do the same work on the same models, data and optimizer: teacher forward under no_grad,
student forward and backward, Hinton's KD loss, Adam step. Epochs are timed after a warm-up
epoch, alternating the two runners; the median per-step time is reported with the ratio (target
<= 1.10 for steps of 20 ms or more). Times are the process's CPU time with one torch thread, so
that other work on a shared machine does not enter the ratio (wall time swung by 10% between
runs on a loaded machine).

Then the epoch time with ``cache_teacher=True`` against without it, for a teacher whose forward
costs at least the student's (target <= 0.7), measured on epochs after the first (which fills the
cache).

``--model mlp`` runs the configuration of an MLP teacher 784-2048-1024-10 and student 784-512-10
at batch 512 (about 30 ms steps), and ``--callback`` adds the ``KnowledgeDistillation`` callback on
a plain LightningModule (its own cross-entropy step; the callback adds the teacher and the KD
term) as a third runner, timed against the same hand-written loop (target <= 1.05 for both).

``--device cuda`` times on a GPU: wall time, the device synchronised at each epoch's ends (CPU
time would miss the device's work); ``--model wide-cnn`` is a configuration whose steps keep a
GPU busy (teacher 6 conv layers of 256 channels, student 4 of 128, 32 x 32 inputs, batch 256:
about 15 ms steps on an H200 with cuDNN's default TF32 convolutions).

Run: python benchmarks/kd_overhead.py [--repeats 10]
     python benchmarks/kd_overhead.py --model mlp --callback --repeats 5 --skip-cache
     python benchmarks/kd_overhead.py --device cuda --model wide-cnn --callback --skip-cache
"""

from __future__ import annotations

import argparse
import itertools
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_distill import DistillationModule, KnowledgeDistillation
from lightning_distill.losses import distillation_loss

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def cnn(width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class Plain(L.LightningModule):
    """A user's module: cross-entropy on its own logits (the callback adds the teacher)."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, x):
        return self.student(x)

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class Indexed(Dataset):
    def __init__(self, n: int, seed: int = 0, shape: tuple[int, ...] = (3, 16, 16)):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, *shape, generator=gen)
        self.y = torch.randint(0, 10, (n,), generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


DEVICE = torch.device("cpu")


def clock() -> float:
    """The process's CPU time on the CPU; on a GPU, wall time once the device is done."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
        return time.perf_counter()
    return time.process_time()


class EpochTimer(L.Callback):
    def __init__(self):
        self.epoch_seconds: list[float] = []
        self.steps: list[int] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._start, self._step = clock(), trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module):
        self.epoch_seconds.append(clock() - self._start)
        self.steps.append(trainer.global_step - self._step)


def lightning_epochs(student, teacher, loader, epochs, callback=False, **options) -> list[float]:
    """Seconds per step of each epoch after the first."""
    timer = EpochTimer()
    callbacks: list = [timer]
    if callback:
        module = Plain(student)
        callbacks.append(KnowledgeDistillation(teacher, temperature=4.0, alpha=0.9))
    else:
        module = DistillationModule(student, teacher, lr=1e-3, **options)
    trainer = L.Trainer(
        accelerator=DEVICE.type,
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(module, loader)
    return [s / n for s, n in zip(timer.epoch_seconds[1:], timer.steps[1:])]


def plain_epochs(student, teacher, loader, epochs) -> list[float]:
    student.to(DEVICE), teacher.to(DEVICE)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    teacher.eval()
    student.train()
    per_step = []
    for _ in range(epochs):
        start, steps = clock(), 0
        for x, y, _ in loader:
            x, y = x.to(DEVICE), y.to(DEVICE)  # as Lightning moves each batch
            with torch.no_grad():
                teacher_logits = teacher(x)
            loss = distillation_loss(student(x), teacher_logits, y, temperature=4.0, alpha=0.9)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        per_step.append((clock() - start) / steps)
    return per_step[1:]


def report(times, baseline, name, baseline_name, target) -> None:
    """Per-step times (fastest and median epoch) and their ratios to the baseline's.

    The fastest epoch is the least disturbed by other work on the machine; the median shows
    the typical case.
    """
    print(f"   {'':<20}{'fastest':>10}{'median':>10}  (ms/step over {len(times)} epochs)")
    for label, values in ((baseline_name, baseline), (name, times)):
        print(f"   {label:<20}{min(values) * 1e3:>10.1f}{statistics.median(values) * 1e3:>10.1f}")
    fastest = min(times) / min(baseline)
    median = statistics.median(times) / statistics.median(baseline)
    print(f"   {'ratio':<20}{fastest:>10.3f}{median:>10.3f}  (target {target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="alternating rounds")
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--model", choices=["cnn", "mlp", "wide-cnn"], default="cnn")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for a GPU")
    parser.add_argument("--callback", action="store_true", help="also time the callback")
    parser.add_argument("--skip-cache", action="store_true", help="skip part 2")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    # One thread by default: on a 2-core machine shared with other work, intra-op threads made
    # small convolutions several times slower and the timings noisy.
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, lightning {L.__version__}, threads {torch.get_num_threads()}, "
        f"device {torch.cuda.get_device_name(DEVICE) if DEVICE.type == 'cuda' else 'cpu'}"
    )

    if args.model == "wide-cnn":
        dataset = Indexed(max(args.samples, 256 * 24), shape=(3, 32, 32))
        loader = DataLoader(dataset, batch_size=256, shuffle=True)
        student, teacher = cnn(128, 4), cnn(256, 6)
    elif args.model == "cnn":
        dataset = Indexed(args.samples)
        loader = DataLoader(dataset, batch_size=64, shuffle=True)
        student, teacher = cnn(32, 3), cnn(48, 4)
    else:
        dataset = Indexed(max(args.samples, 512 * 12), shape=(784,))
        loader = DataLoader(dataset, batch_size=512, shuffle=True)
        student, teacher = mlp(784, 512, 10), mlp(784, 2048, 1024, 10)

    runners = {
        "hand-written loop": lambda: plain_epochs(student, teacher, loader, 3),
        "DistillationModule": lambda: lightning_epochs(student, teacher, loader, 3),
    }
    if args.callback:
        runners["KnowledgeDistillation"] = lambda: lightning_epochs(
            student, teacher, loader, 3, callback=True
        )
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            times[name] += runners[name]()
    print(f"\n1. Trainer + {', '.join(names[1:])} vs hand-written loop (same work per step)")
    for name in names[1:]:
        report(times[name], times["hand-written loop"], name, "hand-written loop", "<= 1.05")
    if args.skip_cache:
        return

    # cache_teacher: teacher forward at least as costly as the student's
    def forward_ms(model, x):
        with torch.no_grad():
            model(x)
            start = time.process_time()
            for _ in range(10):
                model(x)
        return (time.process_time() - start) / 10 * 1e3

    x = dataset.x[:64]
    print("\n2. Epoch time with cache_teacher=True vs False")
    print(
        f"   forward per batch: teacher {forward_ms(teacher, x):.1f} ms, "
        f"student {forward_ms(student, x):.1f} ms"
    )
    cached_times, uncached_times = [], []
    for _ in range(args.repeats):
        uncached_times += lightning_epochs(student, teacher, loader, 3)
        cached_times += lightning_epochs(student, teacher, loader, 3, cache_teacher=True)
    report(cached_times, uncached_times, "with cache", "without cache", "<= 0.70")


if __name__ == "__main__":
    main()
