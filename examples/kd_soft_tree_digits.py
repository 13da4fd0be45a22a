"""Distil a digits CNN into a depth-4 soft decision tree (Frosst & Hinton, 2017).

The CNN teacher of ``examples/kd_digits.py`` is trained on scikit-learn's digits (8x8 images,
10 classes). A ``SoftDecisionTree`` of depth 4 (15 inner nodes whose filters are 8x8 images,
16 leaves) learns

* from the labels,
* from the teacher at the temperature ``select_temperature`` chooses (short runs over
  temperatures 1, 2, 4, 8 and two seeds; the table and docs/images/soft_tree_temperature.png),
* from the teacher with a learned temperature (CTKD: adversarial, cosine ramp).

Prints each tree's test accuracy and agreement with the teacher, the most probable path of three
test digits, and draws the KD tree (docs/images/soft_tree_digits.png).

Run: python examples/kd_soft_tree_digits.py  [--epochs 30] [--seed 0] [--out out/kd_soft_tree_digits]
     (about 30 s on 2 idle cores)
     (pictures go to out/; --out docs/images refreshes the README's)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from lightning_distill import (
    DistillationModule,
    LearnedTemperature,
    SoftDecisionTree,
    select_temperature,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import non_negative_int, output_dir, plural, positive_int
from kd_digits import cnn, loaders  # the teacher and data of the digits example

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def trainer(epochs: int) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def tree() -> SoftDecisionTree:
    # initialised from torch's global generator: seeded by the caller (seed_everything)
    return SoftDecisionTree(64, 10, depth=4, penalty_strength=0.1, input_shape=(8, 8))


@torch.no_grad()
def scores(model, teacher, loader) -> tuple[float, float]:
    model.eval()
    correct = agree = total = 0
    for x, y in loader:
        predictions = model(x).argmax(1)
        correct += int((predictions == y).sum())
        agree += int((predictions == teacher(x).argmax(1)).sum())
        total += len(y)
    return correct / total, agree / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=positive_int, default=30, help="epochs per tree, >= 1 (default: 30)"
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed, >= 0 (default: 0); the temperature sweep uses seeds SEED and SEED + 1",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/kd_soft_tree_digits"),
        help="folder for the two pictures (default: out/kd_soft_tree_digits; docs/images refreshes the README's)",
    )
    args = parser.parse_args()
    images = output_dir(parser, args.out, "--out")
    torch.set_num_threads(1)
    start = time.perf_counter()
    train, test = loaders(args.seed)

    L.seed_everything(args.seed, verbose=False)
    teacher = cnn(16)
    trainer(15).fit(DistillationModule(teacher, alpha=0.0, lr=3e-3), train)
    teacher.eval()

    sweep_start = time.perf_counter()
    selection = select_temperature(
        lambda t: DistillationModule(tree(), teacher, temperature=t, lr=0.03),
        lambda: trainer(max(args.epochs // 3, 1)),
        train,
        test,
        temperatures=(1, 2, 4, 8),
        seeds=(args.seed, args.seed + 1),
    )
    sweep_seconds = time.perf_counter() - sweep_start
    print(
        f"temperature sweep ({plural(max(args.epochs // 3, 1), 'epoch')} per run, 2 seeds, "
        f"{sweep_seconds:.0f} s; validation = the test split):"
    )
    print(selection.table.round(3).to_string())
    selection.plot().savefig(images / "soft_tree_temperature.png", dpi=110)
    best = selection.best_temperature

    learned = LearnedTemperature(t_start=1.0, t_range=20.0, ramp_epochs=args.epochs // 2)
    runs = {
        "tree from labels": lambda: DistillationModule(tree(), alpha=0.0, lr=0.03),
        f"tree by KD (T={best:g}, chosen)": lambda: DistillationModule(
            tree(), teacher, temperature=best, lr=0.03
        ),
        "tree by KD (learned T)": lambda: DistillationModule(
            tree(), teacher, temperature=learned, lr=0.03
        ),
    }
    print(f"\n{'model':32s} {'accuracy':>8s} {'agreement':>9s}")
    print(f"{'teacher (CNN, width 16)':32s} {scores(teacher, teacher, test)[0]:8.3f} {1:9.3f}")
    trees = {}
    for name, make in runs.items():
        L.seed_everything(args.seed, verbose=False)
        module = make()
        trainer(args.epochs).fit(module, train)
        trees[name] = module.student
        accuracy, agreement = scores(module.student, teacher, test)
        print(f"{name:32s} {accuracy:8.3f} {agreement:9.3f}")
    print(f"learned temperature at the end: {learned.value:.2f}")

    kd_tree = trees[f"tree by KD (T={best:g}, chosen)"]
    x, y = next(iter(test))
    print("\nmost probable path of three test digits (KD tree)")
    for label, explanation in zip(y[:3].tolist(), kd_tree.explain(x[:3])):
        path = " -> ".join(f"{s['node']}{s['direction'][0].upper()}" for s in explanation["nodes"])
        print(
            f"  digit {label}: {path} -> leaf {explanation['leaf']} "
            f"(path probability {explanation['path_probability']:.2f}), "
            f"predicts {explanation['prediction']}"
        )
    figure = kd_tree.plot_filters()
    figure.savefig(images / "soft_tree_digits.png", dpi=110)
    print(f"\npictures: {images / 'soft_tree_digits.png'}, {images / 'soft_tree_temperature.png'}")
    print(f"total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
