"""Cost of a ``Monotonic`` constraint in a KD training step on the tabular MLP.

The credit data and models of ``examples/kd_tabular_constraints.py`` (2,000 rows, 5 features,
teacher and student MLPs 5-64-64-2, batch 128, Adam): whole training epochs of
Trainer + DistillationModule without a constraint, and with ``Monotonic`` drawing 1,024 uniform
points per step (Liu et al.'s number), run alternately; also with 256 points, to show how the
cost grows with the points. Time is the process's CPU time with one torch thread (other work on
a shared machine does not enter it), per step: the first epoch apart (the penalty's backward
pass covers only the points that violate the margin, most of them at first) and the median of
the epochs after it; the median over rounds is reported with its ratio to the unconstrained step
(target <= 1.5 for 1,024 points).

Run: python benchmarks/kd_constraints.py [--rounds 5] [--plain]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from kd_tabular_constraints import credit_data, mlp

from lightning_distill import DistillationModule, Monotonic
from lightning_distill.kd.constraints import _chain_layers, _chain_slopes, box_points

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class EpochTimer(L.Callback):
    """Process CPU time of each training epoch."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.process_time()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.process_time() - self._start)


def step_ms(teacher, loader, n_points: int | None, epochs: int) -> tuple[float, float]:
    """CPU milliseconds per step: the first epoch's, and the median of the ``epochs`` after."""
    constraints = None
    if n_points is not None:
        constraints = [
            Monotonic(0, 1, output=1, quantity="log_probability", margin=0.1, n_points=n_points)
        ]
    module = DistillationModule(
        mlp(64, 1), teacher, temperature=2.0, lr=3e-3, constraints=constraints
    )
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs + 1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, loader)
    steps = len(loader)
    return 1000 * timer.seconds[0] / steps, 1000 * statistics.median(timer.seconds[1:]) / steps


def plain_breakdown(teacher, x, y, steps: int = 300) -> None:
    """The same step in a plain loop, and the penalty's parts (process CPU ms per call)."""
    student = mlp(64, 1)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    constraint = Monotonic(0, 1, output=1, quantity="log_probability", margin=0.1)

    def step(i: int, penalty: bool) -> None:
        rows = slice(128 * i % 1920, 128 * i % 1920 + 128)
        with torch.no_grad():
            soft = F.log_softmax(teacher(x[rows]) / 2.0, 1)
        logits = student(x[rows])
        loss = F.kl_div(
            F.log_softmax(logits / 2.0, 1), soft, log_target=True, reduction="batchmean"
        )
        loss = loss + F.cross_entropy(logits, y[rows])
        if penalty:
            loss = loss + constraint.penalty(student, x[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def ms(function) -> float:
        start = time.process_time()
        for i in range(steps):
            function(i)
        return 1000 * (time.process_time() - start) / steps

    for i in range(2 * steps):  # under way, as after the first epoch
        step(i, True)
    points = box_points(x[:128], 1024)
    layers = _chain_layers(student)  # a plain Sequential: the derivative is carried forward

    @torch.no_grad()
    def slopes(i: int):
        return _chain_slopes(layers, points, 0, 1, "log_probability")

    violating = float(((0.1 - slopes(0)) > 0).float().mean())
    print(f"\nplain loop ({steps} steps after {2 * steps}; {violating:.0%} of the rows violate):")
    print(f"  KD step                       {ms(lambda i: step(i, False)):6.3f} ms")
    print(f"  KD step + Monotonic           {ms(lambda i: step(i, True)):6.3f} ms")
    print(f"  slopes alone (no autograd)    {ms(slopes):6.3f} ms")
    print(
        f"  penalty forward (one pass)    {ms(lambda i: constraint.penalty(student, x[:128])):6.3f} ms"
    )
    print(
        "  penalty forward + backward    "
        f"{ms(lambda i: constraint.penalty(student, x[:128]).backward()):6.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also time the step and the penalty's parts in a plain loop",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = credit_data(2000, 0, artefact=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    teacher = mlp(64, 0).eval()
    if args.plain:
        plain_breakdown(teacher, x, y)
    runners = {"KD step": None, "+ Monotonic, 256 points": 256, "+ Monotonic, 1,024 points": 1024}
    times: dict[str, list[float]] = {name: [] for name in runners}
    first: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(args.rounds):
        for name, n_points in runners.items():
            torch.manual_seed(round_)
            first_ms, later_ms = step_ms(teacher, loader, n_points, args.epochs)
            first[name].append(first_ms)
            times[name].append(later_ms)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in times.items()))
    for title, table in (
        (f"epochs 2-{args.epochs + 1}", times),
        ("first epoch (most points violate the constraint)", first),
    ):
        base = statistics.median(table["KD step"])
        print(f"\n{title}: median CPU ms per step over {args.rounds} rounds (batch 128, 1 thread)")
        for name, values in table.items():
            median = statistics.median(values)
            ratios = [v / b for v, b in zip(values, table["KD step"])]
            print(
                f"  {name:28s} {median:7.2f} ms   ratio {median / base:5.2f}   "
                f"(per-round ratios {min(ratios):.2f}-{max(ratios):.2f})"
            )
    ratio = statistics.median(times["+ Monotonic, 1,024 points"]) / statistics.median(
        times["KD step"]
    )
    print(f"\nMonotonic with 1,024 points / KD step, epochs 2+: {ratio:.2f} (target <= 1.50)")


if __name__ == "__main__":
    main()
