"""DiffROAR under the default protocol and the reference's, on the digit blocks.

A linear model, k = 0.2, three seeds, lr 0.01; the true signal mask as attribution and the
``"random"`` control. Protocols: the default (``--epochs-fixed`` epochs, the last epoch's test
accuracy), the reference's stopping rule alone (``train_accuracy_target=0.99``, at most
``--cap`` epochs, the last epoch's accuracy) and with its best-over-epochs figure
(``test_accuracy="best"``). Per protocol: each arm's mean accuracy over the seeds, the epochs
the arms trained, the mean DiffROAR and its two bands (``std``: the seeds' paired differences;
``std_all_pairs``: the reference's).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/diff_roar_protocol.py
        [--cap 100] [--epochs-fixed 3]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import torch
from torch import nn

from lightning_distill.attribution import diff_roar
from lightning_distill.datasets import DigitBlocks

warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--epochs-fixed", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = DigitBlocks("train"), DigitBlocks("test")
    protocols = {
        f"fixed {args.epochs_fixed} epochs, last": {"epochs": args.epochs_fixed},
        "target 0.99, last": {"epochs": args.cap, "train_accuracy_target": 0.99},
        "target 0.99, best": {
            "epochs": args.cap,
            "train_accuracy_target": 0.99,
            "test_accuracy": "best",
        },
    }
    print(
        f"{'attribution':<8} {'protocol':<24} {'top':>6} {'bottom':>6} {'epochs':>13} "
        f"{'diff_roar':>9} {'std':>6} {'std_all_pairs':>13} {'s':>4}"
    )
    for name, attribution in (("truth", (train.masks, test.masks)), ("random", "random")):
        for label, protocol in protocols.items():
            start = time.time()
            frame = diff_roar(
                linear,
                train.classification(),
                test.classification(),
                attribution=attribution,
                fractions=[0.2],
                seeds=3,
                lr=1e-2,
                **protocol,
            )
            summary = frame.attrs["summary"][0.2]
            epochs = (
                f"{frame.top_epochs.mean():5.1f}/{frame.bottom_epochs.mean():5.1f}"
                if "top_epochs" in frame
                else f"{protocol['epochs']:5d}/{protocol['epochs']:5d}"
            )
            print(
                f"{name:<8} {label:<24} {frame.top_accuracy.mean():6.3f} "
                f"{frame.bottom_accuracy.mean():6.3f} {epochs:>13} {summary['mean']:+9.3f} "
                f"{summary['std']:6.3f} {summary['std_all_pairs']:13.3f} "
                f"{time.time() - start:4.0f}"
            )


if __name__ == "__main__":
    main()
