"""Plain numpy statements of the attribution scores, written apart from the library's code.

The five-band score follows the definition of Tjoa & Guan's reference code
(``FiveBandXAIMetric.fiveband_score`` / ``soft_fiveband_score`` in ``ericotjo001/explainable_ai``,
``xai_basic/src/xai_eval.py``): one image at a time, pixel by pixel, with explicit band
conditions, so that it shares nothing with the library's histogram formulation.

Arrays keep their dtype, and a threshold is rounded to the array's dtype before it is compared
with it: numpy 1.x (the reference's pinned numpy 1.23) compares a float32 array with a float64
scalar in float32, where numpy 2 would compare in float64.
"""

from __future__ import annotations

import numpy as np


def band(x: np.ndarray, thresholds) -> np.ndarray:
    """-2..2 by the reference's five conditions."""
    t0, t1, t2, t3 = (x.dtype.type(t) for t in thresholds)
    out = np.full(x.shape, 99, dtype=int)
    out[x <= t0] = -2
    out[(x > t0) & (x <= t1)] = -1
    out[(x > t1) & (x <= t2)] = 0
    out[(x > t2) & (x <= t3)] = 1
    out[x > t3] = 2
    assert not np.any(out == 99)
    return out


def five_band_one(h: np.ndarray, h0: np.ndarray, thresholds, thresholds0, clamp=None) -> dict:
    """Scores of one ``(C, H, W)`` map ``h`` against one ``(H, W)`` ground truth ``h0``;
    ``clamp=(low, high)``: the reference's ``clamp_then_sum_pixels_over_channels``, every value
    clipped first (``np.clip`` with Python floats keeps a float32 map float32)."""
    h = np.asarray(h)
    if h.dtype not in (np.float32, np.float64):
        h = h.astype(np.float64)
    if clamp is not None:
        h = np.clip(h, clamp[0], clamp[1])
    if np.all(h == 0):
        h = h.sum(axis=0)
    else:
        h = h.sum(axis=0)
        h = h / np.max(np.abs(h))
    hb = band(h, thresholds)
    h0 = np.asarray(h0)
    gb = band(h0 if h0.dtype in (np.float32, np.float64) else h0.astype(np.float64), thresholds0)
    equal = hb == gb
    tp = np.sum((hb != 0) & (gb != 0) & equal)
    fp = np.sum((hb != 0) & (gb == 0)) + np.sum((hb != 0) & (gb != 0) & ~equal)
    tn = np.sum((hb == 0) & (gb == 0))
    fn = np.sum((hb == 0) & (gb != 0))
    eps = 1e-6
    return {
        "pixel_accuracy": equal.sum() / equal.size,
        "recall": tp / (tp + fn + eps),
        "precision": tp / (tp + fp + eps),
        "fpr": fp / (fp + tn + eps),
    }


def soft_threshold_sets(thresholds, steps: int, delta: float) -> list[np.ndarray]:
    g = np.array(thresholds, dtype=np.float64)
    sets = []
    for i in range(steps):
        if i > 0:
            g = g + (-1) ** (g > 0.0).astype(float) * delta
        sets.append(g)
    return sets


def five_band(
    attribution, ground_truth, thresholds, thresholds0, steps=None, delta=0.005, clamp=None
):
    """``{score: array [N] or [N, K]}`` over a batch, image by image."""
    attribution = np.asarray(attribution)
    if attribution.ndim == 3:
        attribution = attribution[:, None]
    sets = soft_threshold_sets(thresholds, steps or 1, delta)
    names = ("pixel_accuracy", "precision", "recall", "fpr")
    out = {name: np.zeros((len(attribution), len(sets))) for name in names}
    for n in range(len(attribution)):
        for k, current in enumerate(sets):
            scores = five_band_one(attribution[n], ground_truth[n], current, thresholds0, clamp)
            for name in names:
                out[name][n, k] = scores[name]
    if steps is None:
        out = {name: value[:, 0] for name, value in out.items()}
    return out


def stats_across_images(per_image: dict, keep=None) -> dict:
    """The version-1 analysis' statistics over images (``get_stats_across_samples`` in
    ``xai_basic/legacy/srcV1/analysis/xai_analysis.py``) of ``five_band`` scores ``[N, K]``:
    per image the mean over the sets (``Amu``, ``Pmu``, ``Rmu``) and the best (``Au``, ``Pu``,
    ``Ru``); over the images (those where ``keep`` is true: its ``only_correct_pred``) their
    ``np.mean`` and ``np.var(x) ** 0.5``."""
    out = {}
    for name, table in per_image.items():
        table = np.asarray(table) if keep is None else np.asarray(table)[np.asarray(keep)]
        for kind, values in (("mu", table.mean(axis=1)), ("u", table.max(axis=1))):
            out[f"ave_{kind}/{name}"] = np.mean(values)
            out[f"std_{kind}/{name}"] = np.var(values) ** 0.5
    return out
