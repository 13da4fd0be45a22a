"""Fit AWD along a path of (sparsity, attribution) weights and pick the pair by CV."""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from torch.utils.data import DataLoader, TensorDataset

from lightning_distill._teacher import tensors_given_back
from lightning_distill._validation import check_integer, check_trainer_kwargs, fail
from lightning_distill.awd.features import WaveletFeatures
from lightning_distill.awd.losses import validity_error
from lightning_distill.awd.module import _NOTHING_TO_DISTIL, AWDModule

__all__ = ["AWDPath", "awd_path"]

log = logging.getLogger(__name__)


@dataclass
class AWDPath:
    """Result of :func:`awd_path`.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per point of the path: ``sparsity_weight``, ``attribution_weight``,
        ``cv_score`` (mean), ``cv_score_std``, ``validity_error``, ``warm_start`` (row it started
        from, -1 for the initial wavelet).
    wavelets : list of pywt.Wavelet
        The learned wavelet of each row.
    best_index : int
        Row with the highest ``cv_score``.
    best_pipeline : sklearn.pipeline.Pipeline
        Features of the best wavelet + the estimator, refitted on all data.
    """

    results: pd.DataFrame
    wavelets: list = field(repr=False)
    best_index: int
    best_pipeline: Pipeline = field(repr=False)

    @property
    def best_params(self) -> dict:
        """``{"sparsity_weight": ..., "attribution_weight": ...}`` of the best row."""
        row = self.results.iloc[self.best_index]
        return {
            "sparsity_weight": float(row["sparsity_weight"]),
            "attribution_weight": float(row["attribution_weight"]),
        }

    @property
    def best_wavelet(self):
        """The learned wavelet of the best row."""
        return self.wavelets[self.best_index]


def _weights(name, values) -> list[float]:
    constraint = "a non-empty 1D sequence of finite numbers >= 0"
    weights = None
    if not isinstance(values, str | bytes):  # numpy would read "0.5" as a number
        try:
            weights = np.atleast_1d(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    if weights is None:
        fail(name, constraint, values, TypeError)
    if (
        weights.ndim != 1
        or weights.size == 0
        or not np.all(np.isfinite(weights))
        or np.any(weights < 0)
    ):
        fail(name, constraint, values)
    return sorted(float(v) for v in weights)


def awd_path(
    teacher: torch.nn.Module,
    X,
    y,
    *,
    sparsity_weights=(0.0,),
    attribution_weights=(0.0,),
    wavelet="db5",
    levels: int = 4,
    mode: str = "zero",
    dim: int = 1,
    n_coefficients: int = 1,
    absolute: bool = True,
    estimator=None,
    cv=5,
    scoring=None,
    max_epochs: int = 10,
    batch_size: int = 64,
    module_kwargs: dict | None = None,
    trainer_kwargs: dict | None = None,
    random_state: int | None = None,
    verbose: bool = False,
) -> AWDPath:
    """Fit :class:`AWDModule` over a grid of weights with warm starts; score each wavelet by CV.

    The grid is walked with sparsity weights in increasing order on the outside and
    attribution weights in increasing order inside; each fit starts from the wavelet of the
    previous point (the first point of a row from the first point of the row before). Each
    learned wavelet is then judged by the cross-validated score of
    ``Pipeline([WaveletFeatures(wavelet), estimator])`` on ``(X, y)``. AWD itself sees only ``X``
    and the teacher, never ``y``.

    Parameters
    ----------
    teacher : torch.nn.Module
    X : array-like of shape (n_samples, length), or (n_samples, 1, height, width) if ``dim=2``
    y : array-like of shape (n_samples,)
    sparsity_weights, attribution_weights : sequence of float
    wavelet, levels, mode, dim
        As in :class:`AWDModule`; ``wavelet`` is the start of the path.
    n_coefficients, absolute
        As in :class:`WaveletFeatures`.
    estimator : scikit-learn estimator, default=LinearRegression()
        Cloned for every fit.
    cv, scoring
        As in :func:`sklearn.model_selection.cross_val_score`.
    max_epochs, batch_size : int
        Training of each point.
    module_kwargs : dict, optional
        Further :class:`AWDModule` arguments (``lr``, ``target``, ``attribution``...).
    trainer_kwargs : dict, optional
        Further ``lightning.Trainer`` arguments. A precision that casts the module
        (``"64-true"``) or an accelerator runs each fit with the teacher cast or moved alike;
        the teacher is given back in its own dtype and on its own device after each point.
    random_state : int or None, default=None
        Seed of every random choice of the path: the order in which the training batches are
        shuffled and, when ``module_kwargs`` sets ``init_noise``, the noise added to each
        point's starting filter (one seed per point, drawn from ``random_state``). Two calls
        with the same int and the same arguments give the same results (on the same machine
        and library versions). None draws the shuffling from torch's global generator and
        leaves the noise to ``module_kwargs["seed"]``. The cross-validation folds come from
        ``cv``: an int gives unshuffled (Stratified)KFold, which involves no randomness; pass a
        splitter with its own ``random_state`` to shuffle them.
    verbose : bool, default=False
        Log one line per point (logger ``lightning_distill.awd.path``, level INFO).

    Returns
    -------
    AWDPath

    Examples
    --------
    >>> teacher = torch.nn.Linear(16, 1)
    >>> X = np.random.default_rng(0).normal(size=(20, 16))
    >>> y = X[:, 0]
    >>> path = awd_path(teacher, X, y, wavelet="db2", levels=2, cv=2, max_epochs=1,
    ...                 batch_size=10, random_state=0)
    >>> len(path.results)
    1
    """
    if random_state is not None:
        random_state = check_integer("random_state", random_state, minimum=0)
    sparsity = _weights("sparsity_weights", sparsity_weights)
    attribution = _weights("attribution_weights", attribution_weights)
    if max(sparsity) == 0 and max(attribution) == 0:
        warnings.warn(
            "awd_path's grid has sparsity_weights and attribution_weights of 0 only (the "
            "defaults): every point fits the reconstruction and validity terms alone, which "
            "the starting wavelet already meets, so the path is that wavelet. Give the weights "
            "to try, e.g. attribution_weights=[0.01, 0.05, 0.1].",
            UserWarning,
            stacklevel=2,
        )
    max_epochs = check_integer("max_epochs", max_epochs, minimum=1)
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    trainer_kwargs = check_trainer_kwargs("trainer_kwargs", trainer_kwargs, ("max_epochs",))
    X = np.asarray(X)
    # float64 signals stay float64 for the cross-validated features (the module reads its
    # batches in its own dtype); anything else becomes float32
    X = X.astype(np.float64 if X.dtype == np.float64 else np.float32, copy=False)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of samples, got {X.shape[0]} and {y.shape[0]}."
        )
    if dim == 1 and X.ndim != 2:
        # flattening (n, channels, length) would run the features across channel boundaries
        raise ValueError(f"X must be shaped (n_samples, length) for dim=1, got {X.shape}.")
    if dim == 2 and (X.ndim != 4 or X.shape[1] != 1):
        raise ValueError(
            f"X must be shaped (n_samples, 1, height, width) for dim=2, got {X.shape}."
        )
    image_shape = tuple(X.shape[-2:]) if dim == 2 else None
    flat = X.reshape(X.shape[0], -1)
    estimator = LinearRegression() if estimator is None else estimator
    module_kwargs = dict(module_kwargs or {})
    for reserved in ("wavelet", "levels", "mode", "dim", "sparsity_weight", "attribution_weight"):
        if reserved in module_kwargs:
            raise ValueError(
                f"module_kwargs must not set {reserved!r}; it is an awd_path argument."
            )
    if random_state is not None and "seed" in module_kwargs:
        raise ValueError(
            "module_kwargs must not set 'seed' when random_state is given; the noise seeds are "
            "drawn from random_state."
        )
    trainer_options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer_options.update(trainer_kwargs or {})
    trainer_options["max_epochs"] = max_epochs
    n_points = len(sparsity) * len(attribution)
    generator, point_seeds = None, [module_kwargs.get("seed")] * n_points
    if random_state is not None:
        # independent streams for the shuffling and for each point's noise
        streams = np.random.SeedSequence(int(random_state)).spawn(n_points + 1)
        generator = torch.Generator().manual_seed(int(streams[0].generate_state(1)[0]))
        point_seeds = [int(stream.generate_state(1)[0]) for stream in streams[1:]]
    module_kwargs.pop("seed", None)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X)), batch_size=batch_size, shuffle=True, generator=generator
    )

    def pipeline(learned):
        features = WaveletFeatures(
            learned,
            levels=levels,
            mode=mode,
            n_coefficients=n_coefficients,
            absolute=absolute,
            image_shape=image_shape,
        )
        return Pipeline([("features", features), ("model", clone(estimator))])

    # the features' settings against the data before any training (n_coefficients larger than
    # the smallest band would otherwise fail every fold after the first point is trained)
    pipeline(wavelet)[0].fit(flat[:2])

    rows, wavelets = [], []
    row_start = -1
    for lam_sparsity in sparsity:
        for j, lam_attribution in enumerate(attribution):
            warm = len(wavelets) - 1 if j > 0 else row_start
            start = wavelet if warm < 0 else wavelets[warm]
            module = AWDModule(
                teacher,
                wavelet=start,
                levels=levels,
                mode=mode,
                dim=dim,
                sparsity_weight=lam_sparsity,
                attribution_weight=lam_attribution,
                seed=point_seeds[len(wavelets)],
                **module_kwargs,
            )
            # the user's teacher keeps its dtype and device: a precision or an accelerator in
            # trainer_kwargs casts or moves it with the module, which the user never sees
            with warnings.catch_warnings(), tensors_given_back(teacher):
                warnings.filterwarnings("ignore", message=".*dwt_max_level.*")
                warnings.filterwarnings("ignore", message=".*eval mode.*")
                warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
                # a point of both weights 0 is the grid's baseline (said once above when all are)
                warnings.filterwarnings("ignore", message=re.escape(_NOTHING_TO_DISTIL))
                L.Trainer(**trainer_options).fit(module, loader)
            learned = module.learned_wavelet(name=f"awd_{len(wavelets)}")
            scores = cross_val_score(pipeline(learned), flat, y, cv=cv, scoring=scoring)
            if j == 0:
                row_start = len(wavelets)
            wavelets.append(learned)
            rows.append(
                {
                    "sparsity_weight": lam_sparsity,
                    "attribution_weight": lam_attribution,
                    "cv_score": float(np.mean(scores)),
                    "cv_score_std": float(np.std(scores)),
                    "validity_error": validity_error(learned.rec_lo),
                    "warm_start": warm,
                }
            )
            if verbose:
                log.info(
                    "point %d/%d sparsity=%g attribution=%g cv_score=%.4f",
                    len(rows),
                    n_points,
                    lam_sparsity,
                    lam_attribution,
                    rows[-1]["cv_score"],
                )
    results = pd.DataFrame(rows)
    scores = results["cv_score"].to_numpy()
    if np.isnan(scores).all():
        raise ValueError(
            "every point's cv_score is NaN (the folds failed, or scoring gave NaN): check "
            "estimator, scoring and cv, e.g. with "
            "sklearn.model_selection.cross_val_score(..., error_score='raise')."
        )
    best = int(np.nanargmax(scores))  # a failed point (NaN) is never the best
    best_pipeline = pipeline(wavelets[best]).fit(flat, y)
    return AWDPath(results, wavelets, best, best_pipeline)
