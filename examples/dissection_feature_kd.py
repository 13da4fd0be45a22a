"""Does adding logit KD to feature distillation give a student more concept detectors?

Han et al. (ICML 2023, their figure comparing feature-distillation methods) report that the
logit-KD term *added to* a feature-distillation method raises the number of concept-detector
units of a ResNet-18 student on Broden for attention transfer (AT), factor transfer (FT),
contrastive representation distillation (CRD) and self-supervised KD (SSKD) alike (read off
their figure: AT ~287 -> ~303, FT ~304 -> ~313, CRD ~282 -> ~286, SSKD ~304 -> ~310).

This example repeats that comparison in small, with the teacher and student CNNs and the
synthetic concept images of ``dissection_kd_interpretability.py`` (whose model and training
pieces it imports):

- students trained with AT (last two conv blocks, weight 500: half the authors' code's 1000), FT (last
  conv block, beta 500, paraphraser trained first), CRD (pooled features, weight 0.8, 4,096
  negatives) and SSKD (pooled features, the paper's weights; teacher head trained first), each
  **without** the logit KD term (cross-entropy + the feature term) and **with** it
  (0.1 cross-entropy + 0.9 KD at T = 4 + the feature term), plus scratch and KD alone;
- every student dissected at its last conv block (64 units) on the same probe with the same IoU
  threshold (0.04) by ``DissectionMonitor`` at the end of training, over several seeds.

Prints a table (mean and standard deviation over the seeds) and draws one figure in the layout
of Han et al.'s: method on x, detectors without / with logit KD as paired bars, scratch and KD
alone as horizontal reference lines.

Run: PYTHONPATH=. python examples/dissection_feature_kd.py              (3 seeds, 6 epochs, 1,500 images)
     PYTHONPATH=. python examples/dissection_feature_kd.py --quick      (1 seed, 1-2 minutes)
The seeds can run in parallel processes sharing one teacher, then be merged:
     ... --seed-list 0 --teacher out/teacher.pt --out out/feature_kd/seed0   (likewise 1, 2)
     ... --merge out/feature_kd/seed0 out/feature_kd/seed1 out/feature_kd/seed2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

# the examples folder, as run from the repository root
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import fill_defaults, non_negative_int, output_dir, output_file, plural, positive_int
from dissection_kd_interpretability import CosineDistillation, accuracy, cnn, train

from lightning_distill import FeatureDistillation
from lightning_distill.callbacks import DissectionMonitor
from lightning_distill.datasets import SyntheticConcepts

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
warnings.filterwarnings("ignore", ".*sync_dist.*")
# the Trainers run without logger or progress bar; silence the "GPU available" banners too
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

FEATURE_METHODS = ("AT", "FT", "CRD", "SSKD")
LAYER = "student.features.relu3"


def feature_pairs(method: str, args) -> list[FeatureDistillation]:
    """The feature term of each method, with its authors' weight (AT: half of it, 500, with
    which the README's figures were measured)."""
    if method == "AT":
        return [
            FeatureDistillation(f"features.relu{i}", f"features.relu{i}", "attention", 500.0)
            for i in (2, 3)
        ]
    if method == "FT":
        options = {"paraphraser_epochs": args.stage_epochs}
        return [
            FeatureDistillation("features.relu3", "features.relu3", "ft", 500.0, options=options)
        ]
    if method == "CRD":
        options = {"num_samples": args.train_size, "num_negatives": args.negatives}
        return [FeatureDistillation("flatten", "flatten", "crd", 0.8, options=options)]
    if method == "SSKD":
        return [
            FeatureDistillation(
                "flatten", "flatten", "sskd", options={"head_epochs": args.stage_epochs}
            )
        ]
    raise ValueError(f"method must be one of {FEATURE_METHODS}; got {method!r}.")


def student_module(method: str, with_kd: bool, student, teacher, example, args):
    lr = 3e-3
    if method == "scratch":
        return CosineDistillation(student, None, alpha=0.0, lr=lr)
    if method == "KD":
        return CosineDistillation(student, teacher, alpha=0.9, temperature=4.0, lr=lr)
    return CosineDistillation(
        student,
        teacher,
        alpha=0.9 if with_kd else 0.0,
        temperature=4.0,
        features=feature_pairs(method, args),
        example_input=example,
        lr=lr,
    )


def runs() -> list[tuple[str, bool]]:
    return [("scratch", False), ("KD", True)] + [
        (method, with_kd) for method in FEATURE_METHODS for with_kd in (False, True)
    ]


def label(method: str, with_kd: bool) -> str:
    if method in ("scratch", "KD"):
        return method
    return f"{method} + KD" if with_kd else method


#: The settings a run saves beside its rows.json (settings.json) and a merge compares.
SETTINGS = ("epochs", "train_size", "negatives", "stage_epochs")
QUICK = {"seeds": 1, "epochs": 3, "train_size": 800, "negatives": 512, "stage_epochs": 2}
NORMAL = {"seeds": 3, "epochs": 6, "train_size": 1500, "negatives": 4096, "stage_epochs": 3}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=positive_int, default=None, help=">= 1 (default: 3)")
    parser.add_argument(
        "--seed-list",
        type=non_negative_int,
        nargs="+",
        default=None,
        help="run these seeds only (each >= 0)",
    )
    parser.add_argument(
        "--teacher", type=Path, default=None, help="teacher weights: loaded if present, else saved"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="summarise the rows.json of these run folders (each at most once)",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help=">= 1 (default: 6)")
    parser.add_argument(
        "--train-size", type=positive_int, default=None, help="training images (default: 1500)"
    )
    parser.add_argument(
        "--negatives",
        type=positive_int,
        default=None,
        help="CRD negatives per sample (default: 4096)",
    )
    parser.add_argument(
        "--stage-epochs",
        type=positive_int,
        default=None,
        help="FT paraphraser / SSKD head epochs (default: 3)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 seed, 3 epochs, 800 images, 512 negatives, 2 stage epochs, unless given",
    )
    parser.add_argument("--out", type=Path, default=Path("out/feature_kd"))
    parser.add_argument(
        "--figure", type=Path, default=None, help="default: OUT/detectors.png (folder created)"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help=">= 1 (default: 1)")
    args = parser.parse_args()
    # --quick changes the defaults only: a flag given explicitly wins
    fill_defaults(args, QUICK if args.quick else NORMAL)
    if args.seed_list is not None and len(set(args.seed_list)) < len(args.seed_list):
        parser.error(f"--seed-list must not repeat a seed; got {args.seed_list}")
    start = time.perf_counter()
    if args.merge:
        # read and checked before any folder is created
        check_merge(parser, args.merge)
        rows, settings = merge_runs(parser, args.merge)
    torch.set_num_threads(args.threads)
    output_dir(parser, args.out, "--out")
    figure = output_file(parser, args.figure or args.out / "detectors.png", "--figure")
    if args.merge:
        summarise(rows, args, figure, start, settings=settings)
        return
    if args.teacher is not None and not args.teacher.exists():
        output_file(parser, args.teacher, "--teacher")  # saved there after training

    train_data = SyntheticConcepts(args.train_size, seed=0)
    test_data = SyntheticConcepts(1000, seed=1)
    probe = DataLoader(SyntheticConcepts(600, seed=2), batch_size=200)
    classes = len(train_data.class_names)
    L.seed_everything(0, verbose=False)
    teacher = cnn((24, 48, 96), classes)
    # every run reads the sample index (CRD needs it; the others ignore it)
    loader = DataLoader(train_data.classification(with_index=True), batch_size=64, shuffle=True)
    if args.teacher is not None and args.teacher.exists():
        teacher.load_state_dict(torch.load(args.teacher, weights_only=True))
    else:
        train(CosineDistillation(teacher, None, alpha=0.0, lr=3e-3), loader, args.epochs + 4)
        if args.teacher is not None:
            torch.save(teacher.state_dict(), args.teacher)
    teacher_acc = accuracy(teacher, test_data)
    print(f"teacher: test accuracy {teacher_acc:.3f} ({time.perf_counter() - start:.0f} s)")
    example = train_data.images[:2]

    seeds = list(args.seed_list) if args.seed_list is not None else list(range(args.seeds))
    settings = {key: getattr(args, key) for key in SETTINGS}
    # saved beside rows.json, so that --merge can print and compare what each run measured
    (args.out / "settings.json").write_text(json.dumps({**settings, "seeds": seeds}, indent=1))
    rows: dict[str, list[dict]] = {label(m, k): [] for m, k in runs()}
    for seed in seeds:
        for method, with_kd in runs():
            L.seed_everything(100 + seed, verbose=False)
            student = cnn((16, 32, 64), classes)
            module = student_module(method, with_kd, student, teacher, example, args)
            monitor = DissectionMonitor(probe, LAYER, every_n_epochs=args.epochs)
            run_start = time.perf_counter()
            train(module, loader, args.epochs, callbacks=[monitor])
            results = monitor.last_results
            row = {
                "accuracy": accuracy(student, test_data),
                "detectors": results.num_detectors,
                "unique": len(results.unique_concepts),
                "seconds": time.perf_counter() - run_start,
                "seed": seed,
            }
            rows[label(method, with_kd)].append(row)
            # written after every student, so a stopped run keeps what it measured
            (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
            print(
                f"seed {seed} {label(method, with_kd):>10}: accuracy {row['accuracy']:.3f}, "
                f"detectors {row['detectors']:2d}/64, unique concepts {row['unique']:2d} "
                f"({row['seconds']:.0f} s; {time.perf_counter() - start:.0f} s in all)"
            )

    summarise(rows, args, figure, start, teacher_acc, settings={**settings, "seeds": seeds})


def check_merge(parser, paths: list[Path]) -> None:
    """Refuse --merge folders that are absent, lack rows.json, or are given twice, before any
    folder is created."""
    seen = {}
    for path in paths:
        if not (path / "rows.json").is_file():
            what = "does not exist" if not path.exists() else "holds no rows.json"
            parser.error(f"--merge: {str(path)!r} {what}; give the --out folders of earlier runs")
        key = path.resolve()
        if key in seen:
            parser.error(f"--merge: the run folder {str(key)!r} is given twice")
        seen[key] = path


def merge_runs(parser, paths: list[Path]) -> tuple[dict, dict | None]:
    """The rows of several runs, and their common settings (None where a run, saved before
    settings.json existed, did not record them). Refuses runs whose recorded settings differ,
    and a seed measured by two runs."""
    rows = {name: [] for name in (label(m, k) for m, k in runs())}
    recorded, unrecorded, seeds = {}, [], {}
    for path in paths:
        for name, found in json.loads((path / "rows.json").read_text()).items():
            rows[name].extend(found)
        settings_file = path / "settings.json"
        if not settings_file.is_file():
            unrecorded.append(path)
            print(f"{path}: settings not recorded (a run saved before settings.json existed)")
            continue
        settings = json.loads(settings_file.read_text())
        run_settings = {key: settings.get(key) for key in SETTINGS}
        print(f"{path}: seeds {settings.get('seeds')}, {format_settings(run_settings)}")
        if recorded and run_settings != recorded:
            parser.error(
                f"--merge: {str(path)!r} was run with {format_settings(run_settings)}, the "
                f"runs before it with {format_settings(recorded)}; merge runs of one setting"
            )
        recorded = run_settings
        for seed in settings.get("seeds", []):
            if seed in seeds:
                parser.error(
                    f"--merge: seed {seed} was measured by both {str(seeds[seed])!r} and "
                    f"{str(path)!r}"
                )
            seeds[seed] = path
    if unrecorded or not recorded:
        return rows, None
    return rows, {**recorded, "seeds": sorted(seeds)}


def format_settings(settings: dict) -> str:
    return (
        f"{plural(settings['epochs'], 'epoch')}, {plural(settings['train_size'], 'image')}, "
        f"{settings['negatives']} CRD negatives, {settings['stage_epochs']} stage epochs"
    )


def summarise(
    rows: dict, args, figure: Path, start: float, teacher_acc=None, settings=None
) -> None:
    seeds = len(next(iter(rows.values())))
    summary = {
        name: {
            key: (float(np.mean([r[key] for r in found])), float(np.std([r[key] for r in found])))
            for key in ("accuracy", "detectors", "unique", "seconds")
        }
        for name, found in rows.items()
    }
    if settings is None:
        described = "settings not recorded"
    else:
        described = (
            f"{plural(settings['epochs'], 'epoch')}, {plural(settings['train_size'], 'image')}"
        )
    print(
        f"\nmean (std) over {seeds} seed(s), {described}; "
        "student last conv block, 64 units, IoU >= 0.04"
    )
    print(f"{'method':>10}  {'accuracy':>14}  {'detectors':>12}  {'unique':>11}  {'s/run':>6}")
    for name, stats in summary.items():
        acc, det, uni = stats["accuracy"], stats["detectors"], stats["unique"]
        print(
            f"{name:>10}  {acc[0]:.3f} ({acc[1]:.3f})  {det[0]:5.1f} ({det[1]:4.1f})  "
            f"{uni[0]:4.1f} ({uni[1]:3.1f})  {stats['seconds'][0]:6.0f}"
        )
    arguments = {k: str(v) for k, v in vars(args).items()}
    if args.merge:
        # the flags of a merge are not the settings of the runs it merges
        arguments = {k: arguments[k] for k in ("merge", "out", "figure")}
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                "args": arguments,
                "settings": settings if settings is not None else "settings not recorded",
                "summary": summary,
                "rows": rows,
                "teacher_accuracy": teacher_acc,
            },
            indent=1,
        )
    )
    plot_paired_bars(summary, figure, seeds)
    print(f"\nfigure {figure}; total {time.perf_counter() - start:.0f} s")


def plot_paired_bars(summary: dict, path: Path, seeds: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    x = np.arange(len(FEATURE_METHODS))
    width = 0.38
    for ax, key, title in (
        (axes[0], "detectors", "concept detectors (of 64 units)"),
        (axes[1], "accuracy", "test accuracy"),
    ):
        for offset, with_kd, color in (
            (-width / 2, False, "#9ecae1"),
            (width / 2, True, "#3182bd"),
        ):
            stats = [summary[label(m, with_kd)][key] for m in FEATURE_METHODS]
            ax.bar(
                x + offset,
                [s[0] for s in stats],
                width,
                yerr=[s[1] for s in stats],
                capsize=3,
                color=color,
                label="with logit KD" if with_kd else "without logit KD",
            )
        for name, style in (("scratch", ":"), ("KD", "--")):
            ax.axhline(summary[name][key][0], color="0.3", linestyle=style, lw=1, label=name)
        ax.set_xticks(x, FEATURE_METHODS)
        ax.set_title(title, fontsize=10)
        if key == "accuracy":
            low = min(summary[n][key][0] for n in summary)
            ax.set_ylim(max(0.0, low - 0.1), 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        f"Feature distillation without / with the logit KD term (mean and std over {seeds} "
        "seed(s))",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
