"""Adaptive wavelet distillation on the simulation of Ha et al. (2021), scaled to 2 CPU cores.

Signals X ~ N(0, I_64). The response is built from one wavelet band:
y = 2 * (cD3[7] + cD3[8] + cD3[9]) + N(0, 0.1^2), where cD3 are the level-3 detail coefficients
of the db5 transform (4 levels, zero mode). A teacher MLP 64-32-32-1 learns y from X. AWD then
learns a wavelet from the teacher, starting from db5 plus noise and from sym5, with and without
the attribution term. Printed: the distance of each learned wavelet to db5 (minimised over
shifts and sign), and test R^2 of the teacher and of linear regressions on two kinds of
wavelet features, for db5 and for each learned wavelet:
  * "band max": per band, the largest absolute coefficient (5 features, position-free);
  * "top-3 attributed": the 3 coefficients with the largest mean |attribution| on the training
    set (positions chosen by the teacher's attributions through that wavelet).

Run: python examples/awd_simulation.py        (under a minute on 2 CPU cores)
     python examples/awd_simulation.py --quick (fewer samples and epochs, about 10 s)
Pictures go to out/awd_simulation/.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pywt
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import non_negative_int, output_dir  # the examples folder, as run from the root

from lightning_distill.awd import (
    AttributedCoefficients,
    AWDModule,
    WaveletFeatures,
    filter_distance,
    validity_error,
)
from lightning_distill.awd.plotting import (
    plot_filters,
    plot_top_reconstructions,
    plot_wavelet_functions,
)

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
# torch's deprecation of a check Lightning makes, said at every fit between the progress lines
warnings.filterwarnings(
    "ignore", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", category=FutureWarning
)
warnings.filterwarnings("ignore", ".*dwt_max_level.*")
warnings.filterwarnings("ignore", ".*Level value of.*")
warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
# the rows with the attribution term "off" are the ablation without the teacher, on purpose:
# the warning that such a fit learns nothing from the teacher would interrupt the table
warnings.filterwarnings("ignore", ".*has no term that distils the teacher.*")
# the Trainers below run without logger or progress bar; silence the "GPU available" banners too
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

LENGTH, LEVELS, MODE = 64, 4, "zero"
ATTRIBUTION_WEIGHT = 0.05


def simulate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """X ~ N(0, I_64); y from the db5 level-3 details at positions 7-9."""
    X = rng.normal(size=(n, LENGTH))
    details_level3 = pywt.wavedec(X, "db5", mode=MODE, level=LEVELS)[2]
    y = 2 * details_level3[:, 7:10].sum(axis=1) + rng.normal(scale=0.1, size=n)
    return X.astype(np.float32), y.astype(np.float32)


def train_teacher(X, y, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    teacher = nn.Sequential(
        nn.Linear(LENGTH, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)
    )
    optimizer = torch.optim.Adam(teacher.parameters(), lr=1e-3)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=64, shuffle=True
    )
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.mse_loss(teacher(xb).squeeze(1), yb).backward()
            optimizer.step()
    return teacher.eval()


def band_max_r2(wavelet, X_train, y_train, X_test, y_test) -> float:
    model = make_pipeline(
        WaveletFeatures(wavelet, levels=LEVELS, mode=MODE, n_coefficients=1), LinearRegression()
    )
    return r2_score(y_test, model.fit(X_train, y_train).predict(X_test))


def top_attributed_r2(module: AWDModule, X_train, y_train, X_test, y_test, k: int = 3) -> float:
    """Linear regression on the k coefficient positions the teacher attributes most to."""
    model = make_pipeline(AttributedCoefficients(module, n_coefficients=k), LinearRegression())
    return r2_score(y_test, model.fit(X_train, y_train).predict(X_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a smoke test")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed, >= 0 (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("out/awd_simulation"))
    args = parser.parse_args()
    output_dir(parser, args.out, "--out")
    torch.set_num_threads(1)  # tiny networks: thread synchronisation costs more than it saves
    n_train, n_test = (1000, 1000) if args.quick else (5000, 2000)
    teacher_epochs, awd_epochs = (30, 4) if args.quick else (60, 10)
    rng = np.random.default_rng(args.seed)
    X_train, y_train = simulate(n_train, rng)
    X_test, y_test = simulate(n_test, rng)

    start = time.perf_counter()
    teacher = train_teacher(X_train, y_train, teacher_epochs, args.seed)
    with torch.no_grad():
        teacher_r2 = r2_score(y_test, teacher(torch.from_numpy(X_test)).squeeze(1).numpy())
    print(
        f"teacher MLP 64-32-32-1: test R^2 = {teacher_r2:.3f}  ({time.perf_counter() - start:.0f} s)"
    )
    raw = LinearRegression().fit(X_train, y_train)
    print(
        f"reference, linear regression on the raw 64 samples: test R^2 = "
        f"{r2_score(y_test, raw.predict(X_test)):.3f}"
    )
    db5 = AWDModule(teacher, wavelet="db5", levels=LEVELS, mode=MODE)
    print(
        f"db5, band max + linear regression:        test R^2 = "
        f"{band_max_r2('db5', X_train, y_train, X_test, y_test):.3f}"
    )
    print(
        f"db5, top-3 attributed + linear regression: test R^2 = "
        f"{top_attributed_r2(db5, X_train, y_train, X_test, y_test):.3f}"
    )

    loader = DataLoader(TensorDataset(torch.from_numpy(X_train)), batch_size=100, shuffle=True)
    starts = {
        "db5 + noise": dict(wavelet="db5", init_noise=0.1, seed=args.seed),
        "sym5": dict(wavelet="sym5"),
    }
    runs = {}
    print()
    print(
        f"{'start':<12} {'attribution':<12} {'dist. to db5':>12} {'(at start)':>10} "
        f"{'validity err.':>13} {'R^2 band max':>12} {'R^2 top-3':>9} {'time':>6}"
    )
    for label, init in starts.items():
        initial_distance = filter_distance(
            AWDModule(teacher, levels=LEVELS, **init).h0.detach(), pywt.Wavelet("db5").rec_lo
        )
        for attribution_weight in (0.0, ATTRIBUTION_WEIGHT):
            start = time.perf_counter()
            torch.manual_seed(args.seed)
            module = AWDModule(
                teacher,
                levels=LEVELS,
                mode=MODE,
                lr=1e-2,
                attribution="saliency",
                attribution_weight=attribution_weight,
                validity_weight=10.0,
                **init,
            )
            trainer = L.Trainer(
                max_epochs=awd_epochs,
                accelerator="cpu",
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            trainer.fit(module, loader)
            learned = module.learned_wavelet()
            distance = filter_distance(learned.rec_lo, pywt.Wavelet("db5").rec_lo)
            band_max = band_max_r2(learned, X_train, y_train, X_test, y_test)
            top3 = top_attributed_r2(module, X_train, y_train, X_test, y_test)
            runs[(label, attribution_weight)] = module
            print(
                f"{label:<12} {f'{attribution_weight:g}' if attribution_weight else 'off':<12} "
                f"{distance:>12.3f} {initial_distance:>10.3f} "
                f"{validity_error(learned.rec_lo):>13.4f} {band_max:>12.3f} {top3:>9.3f} "
                f"{time.perf_counter() - start:>5.0f}s"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    best = runs[("db5 + noise", ATTRIBUTION_WEIGHT)]
    # the learned wavelet, and where it started from; db5 is also the one that made y
    legend = {"label": "learned (from db5 + noise)", "reference_label": "db5 (made y)"}
    figures = {
        "filters.png": plot_filters(best, reference="db5", **legend),
        "wavelet_functions.png": plot_wavelet_functions(best, reference="db5", **legend),
        "top_reconstructions.png": plot_top_reconstructions(
            best, torch.from_numpy(X_test[:4]), n_coefficients=6
        ),
    }
    for name, fig in figures.items():
        fig.savefig(args.out / name, dpi=110)
    print(f"\npictures: {', '.join(str(args.out / n) for n in figures)}")


if __name__ == "__main__":
    main()
