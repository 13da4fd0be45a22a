"""Constraint-based distillation on a generated credit data set, and a soft decision tree.

The true approval probability rises with income, but the training labels carry an artefact:
most applicants with an income in (0.55, 0.70) were recorded as refused (a glitch in one
branch's records, say). A teacher MLP trained on them learns a dip in income. Four students
learn from the same rows:

* an MLP from the labels,
* an MLP by knowledge distillation (KD),
* an MLP by KD with a ``Monotonic`` constraint on income (Liu et al. 2020's penalty on the batch
  and 1,024 uniform points in its box),
* a depth-4 ``SoftDecisionTree`` by KD (Frosst & Hinton 2017).

For each: accuracy on clean test labels (the artefact is absent there), fidelity (top-1
agreement with the teacher) on the test rows, and the share of a held-out uniform grid where the
approval probability falls as income rises (derivative and +delta pairs). Then the tree's path for
three applicants, and its picture (docs/images/soft_tree_credit.png).

Run: python examples/kd_tabular_constraints.py  [--epochs 20] [--seed 0] [--out out/kd_tabular_constraints]
     (about 20 s on 2 cores)
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
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import (  # the examples folder, as run from the root
    non_negative_int,
    output_dir,
    positive_int,
)

from lightning_distill import (
    DistillationModule,
    Monotonic,
    SoftDecisionTree,
    monotonicity_violations,
)

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

FEATURES = ["income", "debt_ratio", "age", "late_payments", "years_employed"]
INCOME = 0


def credit_data(n: int, seed: int, artefact: bool):
    """Features uniform in [0, 1]; approval probability logistic in a linear score rising with
    income; with ``artefact``, 80% of the rows with income in (0.55, 0.70) are labelled refused."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, len(FEATURES)))
    score = 4 * x[:, 0] - 3 * x[:, 1] + x[:, 2] - 2.5 * x[:, 3] + x[:, 4] - 0.2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-4 * score))).astype(np.int64)
    if artefact:
        band = (x[:, 0] > 0.55) & (x[:, 0] < 0.70) & (rng.uniform(size=n) < 0.8)
        y[band] = 0
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def mlp(hidden: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(len(FEATURES), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 2),
    )


def fit(module: DistillationModule, train: DataLoader, epochs: int, seed: int) -> float:
    L.seed_everything(seed, verbose=False)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(module, train)
    return time.perf_counter() - start


@torch.no_grad()
def scores(model: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor):
    model.eval()
    predictions = model(x).argmax(1)
    accuracy = float((predictions == y).float().mean())
    fidelity = float((predictions == teacher(x).argmax(1)).float().mean())
    return accuracy, fidelity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=positive_int, default=20, help="epochs per student, >= 1 (default: 20)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed, >= 0 (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/kd_tabular_constraints"),
        help="folder for the tree's picture (default: out/kd_tabular_constraints; docs/images refreshes the README's)",
    )
    args = parser.parse_args()
    images = output_dir(parser, args.out, "--out")
    torch.set_num_threads(1)
    start = time.perf_counter()

    x_train, y_train = credit_data(2000, args.seed, artefact=True)
    x_test, y_test = credit_data(3000, args.seed + 1, artefact=False)
    grid = torch.rand(5000, len(FEATURES), generator=torch.Generator().manual_seed(args.seed + 2))
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=128, shuffle=True)

    teacher = mlp(64, args.seed)
    fit(DistillationModule(teacher, alpha=0.0, lr=3e-3), train, 3 * args.epochs, args.seed)
    teacher.eval()

    monotone = Monotonic(INCOME, +1, output=1, quantity="log_probability", margin=0.1, weight=10.0)
    students = {
        "MLP from labels": DistillationModule(mlp(64, args.seed + 1), alpha=0.0, lr=3e-3),
        "MLP by KD": DistillationModule(mlp(64, args.seed + 1), teacher, temperature=2.0, lr=3e-3),
        "MLP by KD + monotone": DistillationModule(
            mlp(64, args.seed + 1), teacher, temperature=2.0, lr=3e-3, constraints=[monotone]
        ),
        "soft tree (depth 4) by KD": DistillationModule(
            SoftDecisionTree(
                len(FEATURES),
                2,
                depth=4,
                inverse_temperature=4.0,
                penalty_strength=0.05,
                feature_names=FEATURES,
            ),
            teacher,
            temperature=2.0,
            lr=0.03,
        ),
    }
    rows = []
    models = {"teacher": teacher}
    for name, module in students.items():
        seconds = fit(module, train, args.epochs, args.seed)
        models[name] = module.student
        rows.append((name, seconds))

    print("accuracy on clean test labels, fidelity (agreement with the teacher) on test rows,")
    print("share of a uniform grid where P(approve) falls as income rises (gradient, pairs)\n")
    print(
        f"{'model':28s} {'accuracy':>8s} {'fidelity':>8s} {'viol. grad':>10s} {'viol. pairs':>11s}"
    )
    for name, model in models.items():
        accuracy, fidelity = scores(model, teacher, x_test, y_test)
        violations = monotonicity_violations(
            model, grid, INCOME, output=1, quantity="log_probability"
        )
        print(
            f"{name:28s} {accuracy:8.3f} {fidelity:8.3f} {violations['gradient']:10.3%} "
            f"{violations['pairs']:11.3%}"
        )
    print("\ntraining time (s): " + ", ".join(f"{name} {s:.1f}" for name, s in rows))

    tree = models["soft tree (depth 4) by KD"]
    print("\nsoft tree: the most probable path of three test applicants")
    for row, explanation in zip(x_test[:3], tree.explain(x_test[:3])):
        values = ", ".join(f"{n}={v:.2f}" for n, v in zip(FEATURES, row.tolist()))
        print(f"  applicant ({values})")
        for step in explanation["nodes"]:
            # the inputs that pushed the way taken; none: the node's bias decided
            reasons = ", ".join(step["top_features"][:2]) or "its bias"
            print(
                f"    node {step['node']:2d} -> {step['direction']:5s} "
                f"(p={step['probability']:.2f}; driven by {reasons})"
            )
        verdict = ["refuse", "approve"][explanation["prediction"]]
        decision = ["refuse", "approve"][explanation["model_prediction"]]
        # the tree decides from every leaf (a mixture): the path explains it when they agree
        agreement = "as the tree decides" if explanation["agrees"] else "the tree decides"
        print(
            f"    leaf {explanation['leaf']:2d} (path probability "
            f"{explanation['path_probability']:.2f}): {verdict}, "
            f"P(approve)={explanation['class_distribution'][1]:.2f}; {agreement}: {decision}"
        )
    figure = tree.plot_filters(class_names=["refuse", "approve"])
    figure.savefig(images / "soft_tree_credit.png", dpi=110)
    print(f"\ntree picture: {images / 'soft_tree_credit.png'}")
    print(f"total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
