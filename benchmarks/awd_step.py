"""Time per training step of AWDModule against a hand-written PyTorch step doing the same work.

Both do, per step: multilevel DWT of the batch, inverse transform with the TRIM residual, the
teacher, the saliency of the coefficients with create_graph (double backprop), the loss
(reconstruction + validity + coefficient L1 + attribution L1), backward and an Adam step. The
hand-written step calls the library's pure transform and loss functions directly (they are
checked against PyWavelets and formulas in the tests); it measures what the module, Captum and
the Lightning loop add on top.

Three timings per configuration (CPU time of this process, one torch thread; mean over 100 steps
after one warm-up step, so the Trainer's logging steps, every 50, count), median over interleaved
repeats:
  * baseline: the hand-written step;
  * module:   AWDModule.losses + backward + Adam step, called directly (no Trainer);
  * trainer:  one step inside Trainer.fit (batch start to batch end, logging included).
Target: trainer / baseline <= 1.2.

Run: python benchmarks/awd_step.py    (about 1-2 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import lightning as L
import pywt
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill.awd import AWDModule
from lightning_distill.awd.attributions import flatten_coefficients, unflatten_coefficients
from lightning_distill.awd.losses import validity_losses
from lightning_distill.awd.transform import wavedec1d, wavedec2d, waverec1d, waverec2d

# CPU time of this process: on a shared machine, wall time mostly measures the neighbours
CLOCK = time.process_time

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
warnings.filterwarnings("ignore", ".*dwt_max_level.*")
warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")


def configurations():
    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)
    )
    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 1),
    )
    return {
        "1D: 100 x 64 signals, db5, 4 levels, MLP 64-32-32-1": (mlp, (100, 64), "db5", 4, 1),
        "2D: 100 x 16x16 images, db3, 2 levels, CNN": (cnn, (100, 1, 16, 16), "db3", 2, 2),
    }


WEIGHTS = dict(sparsity_weight=0.01, attribution_weight=0.05, validity_weight=1.0, lr=1e-3)


class HandWritten:
    """The same step in plain PyTorch: no Captum, no LightningModule."""

    def __init__(self, teacher, wavelet, levels, dim):
        self.teacher = teacher.eval().requires_grad_(False)
        self.h0 = nn.Parameter(torch.tensor(pywt.Wavelet(wavelet).rec_lo, dtype=torch.float32))
        self.levels, self.dim = levels, dim
        self.optimizer = torch.optim.Adam([self.h0], lr=WEIGHTS["lr"])

    def step(self, x):
        h0, size = self.h0, x.shape[-self.dim :]
        if self.dim == 1:
            flat = tuple(wavedec1d(x, h0, self.levels, "zero"))
            rebuilt = waverec1d(list(flat), h0, "zero")[..., : size[0]]
        else:
            flat = flatten_coefficients(wavedec2d(x, h0, self.levels, "zero"), 2)
            coefficients = unflatten_coefficients(flat, 2)
            rebuilt = waverec2d(coefficients, h0, "zero")[..., : size[0], : size[1]]
        output = self.teacher(rebuilt + (x - rebuilt).detach()).sum()
        saliency = torch.autograd.grad(output, flat, create_graph=True)
        batch = x.shape[0]
        loss = (
            ((rebuilt - x) ** 2).mean()
            + sum(validity_losses(h0).values())
            + WEIGHTS["sparsity_weight"]
            * sum(c.abs().reshape(batch, -1).sum(1) for c in flat).mean()
            + WEIGHTS["attribution_weight"]
            * sum(s.abs().reshape(batch, -1).sum(1) for s in saliency).mean()
        )
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class StepTimer(L.Callback):
    def __init__(self):
        self.times = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = CLOCK()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times.append(CLOCK() - self._start)


def module_for(teacher, wavelet, levels, dim):
    return AWDModule(teacher, wavelet=wavelet, levels=levels, dim=dim, **WEIGHTS)


def time_direct(step, x, n):
    step(x)  # warm-up, as the first Trainer step is left out
    start = CLOCK()
    for _ in range(n):
        step(x)
    return (CLOCK() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved repeats")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, lightning {L.__version__}, 1 thread; "
        f"{args.repeats} repeats x {args.steps} steps; CPU time per step"
    )
    for name, (teacher, shape, wavelet, levels, dim) in configurations().items():
        x = torch.randn(*shape)
        baseline = HandWritten(teacher, wavelet, levels, dim)
        module = module_for(teacher, wavelet, levels, dim)
        optimizer = module.configure_optimizers()
        module.train()

        def module_step(x, module=module, optimizer=optimizer):
            loss = module.losses(x)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        results = {"baseline": [], "module": [], "trainer": []}
        loader = DataLoader(
            TensorDataset(x.repeat(args.steps + 1, *[1] * (x.ndim - 1))), batch_size=shape[0]
        )
        for repeat in range(args.repeats):
            # alternate the order so that neither side always runs on a warmer cache
            pair = [("baseline", baseline.step), ("module", module_step)]
            for key, step in pair if repeat % 2 == 0 else pair[::-1]:
                results[key].append(time_direct(step, x, args.steps))
            timer = StepTimer()
            L.Trainer(
                max_epochs=1,
                accelerator="cpu",
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=[timer],
            ).fit(module_for(teacher, wavelet, levels, dim), loader)
            # mean, not median: the steps that log (every log_every_n_steps) must count
            results["trainer"].append(statistics.fmean(timer.times[1:]))
        medians = {k: statistics.median(v) for k, v in results.items()}
        print(f"\n{name}")
        for key, value in medians.items():
            print(
                f"  {key:<9} {1e3 * value:7.2f} ms/step   ratio to baseline "
                f"{value / medians['baseline']:.2f}"
            )
        verdict = "meets" if medians["trainer"] / medians["baseline"] <= 1.2 else "MISSES"
        print(
            f"  trainer/baseline {medians['trainer'] / medians['baseline']:.2f}: "
            f"{verdict} the <= 1.2 target"
        )


if __name__ == "__main__":
    main()
