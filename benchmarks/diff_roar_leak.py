"""How much of DiffROAR is the kept pattern leaking the label? The digit blocks, two models.

For a linear model and for the studies' student CNN (widths 16-32-64), each trained on the
digit blocks, DiffROAR of the per-pixel loss gradient (as ``examples/attribution_kd_study.py``
ranks pixels) and of Saliency, with ``mask_control=True``: beside each arm's accuracy, the
accuracy of a fresh model trained on the arm's pattern of kept coordinates alone (chance 0.1).
The random control and the true signal mask are the references (patterns at chance).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/diff_roar_leak.py [--seeds 2]
        [--epochs 2] [--fractions 0.1 0.5] [--null-calls 40]

Each run says whether ``diff_roar`` warned that the patterns leak; ``--null-calls N`` instead
counts the warnings over N random-control calls (the warning's level on patterns that carry
no label).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from dissection_kd_interpretability import cnn  # the studies' student CNN

from lightning_distill.attribution import diff_roar, loss_gradient
from lightning_distill.datasets import DigitBlocks

warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def trained(factory, images, targets, epochs, lr):
    torch.manual_seed(0)
    model = factory()
    optimizer = torch.optim.Adam(model.parameters(), lr)
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(images), 64):
            rows = order[start : start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[rows]), targets[rows]).backward()
            optimizer.step()
    return model.eval()


def warned(seen) -> str:
    """The fractions and arms the leak warning named, or "none"."""
    leaks = [str(w.message) for w in seen if "patterns alone" in str(w.message)]
    return leaks[0].split("): ")[1].split(". The")[0] if leaks else "none"


def null_level(train, test, calls: int, fractions, epochs: int) -> None:
    """How often the leak warning fires on patterns that carry no label: the random control,
    one seed per call, on the linear model (each call tests every fraction and both arms)."""
    linear = lambda: nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, 10))  # noqa: E731
    fired = 0
    start = time.perf_counter()
    for call in range(calls):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            diff_roar(
                linear, train.classification(), test.classification(), attribution="random",
                fractions=fractions, seeds=[100 + call], epochs=epochs, lr=3e-3,
                mask_control=True,
            )  # fmt: skip
        fired += warned(seen) != "none"
    print(f"null level: the leak warning fired in {fired} of {calls} random-control calls "
          f"({2 * len(fractions)} tests each at 0.001); {time.perf_counter() - start:.0f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="of each DiffROAR model")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.5])
    parser.add_argument(
        "--null-calls", type=int, default=0,
        help="only count the leak warnings of this many random-control calls (linear model)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = DigitBlocks("train"), DigitBlocks("test")
    if args.null_calls:
        null_level(train, test, args.null_calls, args.fractions, args.epochs)
        return
    three = {"linear": False, "cnn": True}  # the CNN reads three channels, as in the study
    factories = {
        "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, 10)),
        "cnn": lambda: cnn((16, 32, 64), 10),
    }
    columns = ["top_accuracy", "bottom_accuracy", "diff_roar", "top_mask_accuracy"]
    columns.append("bottom_mask_accuracy")
    for name, factory in factories.items():
        start = time.perf_counter()
        x, tx = train.images, test.images
        if three[name]:
            x, tx = x.repeat(1, 3, 1, 1), tx.repeat(1, 3, 1, 1)
        model = trained(factory, x, train.targets, epochs=6 if three[name] else 60, lr=3e-3)

        def per_pixel(images, targets, model=model):
            parts = zip(images.split(250), targets.split(250))
            return torch.cat([loss_gradient(model, a, b) for a, b in parts])

        rankings = {
            "loss gradient": (per_pixel(x, train.targets), per_pixel(tx, test.targets)),
            "Saliency": "Saliency",
            "random": "random",
            "true signal mask": (train.masks, test.masks),
        }
        for label, attribution in rankings.items():
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                frame = diff_roar(
                    factory, (x, train.targets), (tx, test.targets), attribution=attribution,
                    model=model if attribution == "Saliency" else None, fractions=args.fractions,
                    seeds=args.seeds, epochs=args.epochs, lr=3e-3, mask_control=True,
                )  # fmt: skip
            if label == "Saliency":
                accuracy = frame.attrs["model_accuracy"]
            print(f"\n{name}, {label}: mean over {args.seeds} seeds; leak warning: {warned(seen)}")
            print(frame.groupby("fraction")[columns].mean().round(3).to_string())
        print(f"{name}: the explained model's test accuracy {accuracy:.3f}; "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
