"""Adaptive wavelet distillation on generated 16x16 images (the 2D transform).

Images are a few Gaussian blobs of random position, width and sign plus pixel noise. The response
is read from one 2D wavelet band: y = 2 * (sum of the db3 level-2 horizontal details cH2 at row 3,
columns 2-4) + N(0, 0.1^2), with a 2-level zero-mode transform. A small CNN teacher learns y from
the images. AWD then learns a 2D wavelet from the teacher, starting from db3 plus noise and from
coif1 (same length), with and without the attribution term. Printed: distance of each learned
wavelet to db3 (minimised over shifts and sign), its validity error, and test R^2 of the
teacher and of a linear regression on the 3 most-attributed coefficients of each wavelet.

Run: python examples/awd_images.py           (about 40 s on 2 CPU cores)
     python examples/awd_images.py --quick   (about 10 s)
Pictures go to out/awd_images/.
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
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import non_negative_int, output_dir  # the examples folder, as run from the root

from lightning_distill.awd import AWDModule, filter_distance, validity_error
from lightning_distill.awd.plotting import plot_filters, plot_top_reconstructions

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

SIZE, LEVELS, MODE, TARGET_WAVELET = 16, 2, "zero", "db3"
ATTRIBUTION_WEIGHT = 0.05


def make_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blob images (n, 1, 16, 16) and the response read from their db3 cH2 band."""
    grid = np.arange(SIZE)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    images = 0.3 * rng.normal(size=(n, SIZE, SIZE))
    for _ in range(3):
        centre = rng.uniform(0, SIZE, size=(n, 2, 1, 1))
        width = rng.uniform(1.0, 3.0, size=(n, 1, 1))
        sign = rng.choice([-1.0, 1.0], size=(n, 1, 1))
        distance2 = (rows - centre[:, 0]) ** 2 + (cols - centre[:, 1]) ** 2
        images += sign * np.exp(-distance2 / (2 * width**2))
    horizontal_level2 = pywt.wavedec2(images, TARGET_WAVELET, mode=MODE, level=LEVELS)[1][0]
    y = 2 * horizontal_level2[:, 3, 2:5].sum(axis=1) + rng.normal(scale=0.1, size=n)
    return images[:, None].astype(np.float32), y.astype(np.float32)


def train_teacher(X, y, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    teacher = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * SIZE * SIZE, 1),
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


def top_attributed_r2(module: AWDModule, X_train, y_train, X_test, y_test, k: int = 3) -> float:
    """Linear regression on the k coefficient positions the teacher attributes most to."""
    scores = torch.cat([a.reshape(-1) for a in module.mean_attributions(torch.from_numpy(X_train))])
    columns = scores.topk(k).indices.numpy()

    def coefficients(X):
        flat = [c.detach().reshape(len(X), -1) for c in module(torch.from_numpy(X))]
        return torch.cat(flat, dim=1).numpy()[:, columns]

    model = LinearRegression().fit(coefficients(X_train), y_train)
    return r2_score(y_test, model.predict(coefficients(X_test)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a smoke test")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed, >= 0 (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("out/awd_images"))
    args = parser.parse_args()
    output_dir(parser, args.out, "--out")
    torch.set_num_threads(1)  # small networks: thread synchronisation costs more than it saves
    n_train, n_test = (1000, 500) if args.quick else (4000, 1000)
    teacher_epochs, awd_epochs = (15, 3) if args.quick else (30, 8)
    rng = np.random.default_rng(args.seed)
    X_train, y_train = make_images(n_train, rng)
    X_test, y_test = make_images(n_test, rng)

    start = time.perf_counter()
    teacher = train_teacher(X_train, y_train, teacher_epochs, args.seed)
    with torch.no_grad():
        teacher_r2 = r2_score(y_test, teacher(torch.from_numpy(X_test)).squeeze(1).numpy())
    print(f"teacher CNN: test R^2 = {teacher_r2:.3f}  ({time.perf_counter() - start:.0f} s)")
    raw = LinearRegression().fit(X_train.reshape(n_train, -1), y_train)
    print(
        f"reference, linear regression on the 256 pixels: test R^2 = "
        f"{r2_score(y_test, raw.predict(X_test.reshape(n_test, -1))):.3f}"
    )
    reference = AWDModule(teacher, wavelet=TARGET_WAVELET, levels=LEVELS, mode=MODE, dim=2)
    print(
        f"{TARGET_WAVELET}, top-3 attributed + linear regression: test R^2 = "
        f"{top_attributed_r2(reference, X_train, y_train, X_test, y_test):.3f}"
    )

    loader = DataLoader(TensorDataset(torch.from_numpy(X_train)), batch_size=100, shuffle=True)
    starts = {
        f"{TARGET_WAVELET} + noise": dict(wavelet=TARGET_WAVELET, init_noise=0.1, seed=args.seed),
        "coif1": dict(wavelet="coif1"),
    }
    target_filter = pywt.Wavelet(TARGET_WAVELET).rec_lo
    print(
        f"\n{'start':<12} {'attribution':<12} {f'dist. to {TARGET_WAVELET}':>12} "
        f"{'(at start)':>10} {'validity err.':>13} {'R^2 top-3':>9} {'time':>6}"
    )
    learned_modules = {}
    for label, init in starts.items():
        initial = AWDModule(teacher, levels=LEVELS, dim=2, **init).h0.detach()
        for attribution_weight in (0.0, ATTRIBUTION_WEIGHT):
            start = time.perf_counter()
            torch.manual_seed(args.seed)
            module = AWDModule(
                teacher,
                levels=LEVELS,
                mode=MODE,
                dim=2,
                lr=1e-2,
                attribution="saliency",
                attribution_weight=attribution_weight,
                validity_weight=10.0,
                **init,
            )
            L.Trainer(
                max_epochs=awd_epochs,
                accelerator="cpu",
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            ).fit(module, loader)
            learned_modules[(label, attribution_weight)] = module
            h0 = module.h0.detach()
            r2 = top_attributed_r2(module, X_train, y_train, X_test, y_test)
            print(
                f"{label:<12} {f'{attribution_weight:g}' if attribution_weight else 'off':<12} "
                f"{filter_distance(h0, target_filter):>12.3f} "
                f"{filter_distance(initial, target_filter):>10.3f} "
                f"{validity_error(h0):>13.4f} {r2:>9.3f} {time.perf_counter() - start:>5.0f}s"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    chosen = learned_modules[(f"{TARGET_WAVELET} + noise", ATTRIBUTION_WEIGHT)]
    figures = {
        "filters.png": plot_filters(
            chosen,
            reference=TARGET_WAVELET,
            # the learned wavelet, and where it started from; the target made the data
            label=f"learned (from {TARGET_WAVELET} + noise)",
            reference_label=f"{TARGET_WAVELET} (made y)",
        ),
        "top_reconstructions.png": plot_top_reconstructions(
            chosen, torch.from_numpy(X_test[:4]), n_coefficients=12
        ),
    }
    for name, fig in figures.items():
        fig.savefig(args.out / name, dpi=110)
    print(f"\npictures: {', '.join(str(args.out / n) for n in figures)}")


if __name__ == "__main__":
    main()
