"""Distilled-wavelet features for scikit-learn: the few largest coefficients of each band."""

from __future__ import annotations

import warnings

import numpy as np
import pywt
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from lightning_distill._validation import check_integer
from lightning_distill.awd.transform import (
    MODES,
    check_levels,
    lowpass_from_wavelet,
    wavelet_from_filter,
)

__all__ = ["AttributedCoefficients", "WaveletFeatures", "band_names", "top_coefficients"]


def band_names(levels: int, dim: int = 1) -> list[str]:
    """Names of the bands in PyWavelets' order: ``cA4, cD4, ..., cD1`` (1D) or
    ``cA2, cH2, cV2, cD2, cH1, cV1, cD1`` (2D).

    Examples
    --------
    >>> band_names(2)
    ['cA2', 'cD2', 'cD1']
    """
    if dim == 1:
        return [f"cA{levels}", *(f"cD{j}" for j in range(levels, 0, -1))]
    return [f"cA{levels}", *(f"c{b}{j}" for j in range(levels, 0, -1) for b in "HVD")]


def top_coefficients(bands, n_coefficients: int, absolute: bool) -> np.ndarray:
    """Per band, the ``n_coefficients`` coefficients of largest magnitude, largest first.

    Parameters
    ----------
    bands : sequence of numpy.ndarray, each of shape (n_samples, ...)
    n_coefficients : int
    absolute : bool
        Return magnitudes (True) or the signed coefficients (False).

    Returns
    -------
    numpy.ndarray, shape (n_samples, len(bands) * n_coefficients)

    Examples
    --------
    >>> top_coefficients([np.array([[1.0, -3.0, 2.0]])], 2, absolute=False)
    array([[-3.,  2.]])
    """
    columns = []
    for band in bands:
        flat = band.reshape(band.shape[0], -1)
        # stable sort on -|c| keeps the earlier coefficient first on ties
        order = np.argsort(-np.abs(flat), axis=1, kind="stable")[:, :n_coefficients]
        top = np.take_along_axis(flat, order, axis=1)
        columns.append(np.abs(top) if absolute else top)
    return np.concatenate(columns, axis=1)


class WaveletFeatures(TransformerMixin, BaseEstimator):
    """Turn signals (or images) into a few wavelet features per band.

    Each sample is decomposed with ``pywt.wavedec`` (``pywt.wavedec2`` for images) and, in every
    band (approximation and each detail level), the ``n_coefficients`` coefficients of largest
    magnitude are kept, largest first. Use it in a ``Pipeline`` before a linear model.

    Parameters
    ----------
    wavelet : str, pywt.Wavelet or sequence of float, default="db5"
        An orthogonal wavelet: a PyWavelets name, a learned one
        (``AWDModule.learned_wavelet()``), or a scaling filter.
    levels : int, default=4
    mode : {"zero", "symmetric", "reflect", "periodization"}, default="zero"
    n_coefficients : int, default=1
        Coefficients kept per band (``m``).
    absolute : bool, default=True
        Keep magnitudes (True) or signed values (False) of those coefficients.
    image_shape : tuple of int or None, default=None
        ``(height, width)``: rows of ``X`` are flattened images, decomposed in 2D.

    Attributes
    ----------
    n_features_in_ : int
    wavelet_ : pywt.Wavelet
    bands_ : list of str
        Band names, e.g. ``["cA4", "cD4", "cD3", "cD2", "cD1"]``.
    levels_, mode_, n_coefficients_, absolute_, image_shape_
        The settings at ``fit``; ``transform`` and ``get_feature_names_out`` use these, so
        parameters set since (``set_params``) take effect at the next ``fit``.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> X = np.random.default_rng(0).normal(size=(40, 32))
    >>> y = X[:, 3]
    >>> model = make_pipeline(WaveletFeatures("db2", levels=2, n_coefficients=2),
    ...                       LinearRegression()).fit(X, y)
    >>> model[0].get_feature_names_out()[:3].tolist()
    ['cA2_1', 'cA2_2', 'cD2_1']
    """

    def __init__(
        self,
        wavelet="db5",
        levels=4,
        mode="zero",
        n_coefficients=1,
        absolute=True,
        image_shape=None,
    ):
        self.wavelet = wavelet
        self.levels = levels
        self.mode = mode
        self.n_coefficients = n_coefficients
        self.absolute = absolute
        self.image_shape = image_shape

    def _fitted(self, name: str):
        return getattr(self, f"{name}_", getattr(self, name))

    def _decompose(self, X: np.ndarray, wavelet=None, shape=None, mode=None, levels=None):
        if wavelet is None:
            # the settings of fit, not as they may have been set since (set_params without
            # refitting); a transformer fitted before these existed has the parameters only
            wavelet, shape = self.wavelet_, self._fitted("image_shape")
            mode, levels = self._fitted("mode"), self._fitted("levels")
        with warnings.catch_warnings():
            # level beyond dwt_max_level was already reported in fit
            warnings.simplefilter("ignore", UserWarning)
            if shape is None:
                return pywt.wavedec(X, wavelet, mode=mode, level=levels, axis=-1)
            images = X.reshape(X.shape[0], *shape)
            coefficients = pywt.wavedec2(images, wavelet, mode=mode, level=levels)
        return [coefficients[0], *(band for level in coefficients[1:] for band in level)]

    def fit(self, X, y=None):
        """Check the parameters against the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=np.float64)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}.")
        levels = check_integer("levels", self.levels, minimum=1)
        n_coefficients = check_integer("n_coefficients", self.n_coefficients, minimum=1)
        if not isinstance(self.absolute, (bool, np.bool_)):
            raise TypeError(f"absolute must be a bool, got {type(self.absolute).__name__}.")
        if X.shape[1] < 2:
            raise ValueError(
                f"X must hold signals of at least 2 samples (columns), got n_features = "
                f"{X.shape[1]}."
            )
        wavelet = _as_wavelet(self.wavelet)
        filter_length = wavelet.dec_len
        if self.image_shape is None:
            shortest = X.shape[1]
            dim = 1
        else:
            shape = self.image_shape
            if (
                isinstance(shape, str)
                or not hasattr(shape, "__len__")
                or len(shape) != 2
                or not all(
                    isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                    for s in shape
                )
            ):
                raise TypeError(
                    f"image_shape must be None or (height, width), two ints >= 1; got "
                    f"{self.image_shape!r}."
                )
            shape = (int(shape[0]), int(shape[1]))
            if shape[0] * shape[1] != X.shape[1]:
                raise ValueError(
                    f"image_shape must be (height, width) with height * width = n_features "
                    f"({X.shape[1]}), got {self.image_shape!r}."
                )
            shortest = min(shape)
            dim = 2
        check_levels(levels, shortest, filter_length)
        image_shape = None if self.image_shape is None else shape
        bands = self._decompose(X[:1], wavelet, image_shape, self.mode, levels)
        sizes = [band[0].size for band in bands]
        if n_coefficients > min(sizes):
            raise ValueError(
                f"n_coefficients must be at most {min(sizes)}, the size of the smallest band, "
                f"got {n_coefficients}."
            )
        # what transform and get_feature_names_out read: the settings as they were at fit
        self.wavelet_ = wavelet
        self.image_shape_ = image_shape
        self.levels_ = levels
        self.mode_ = self.mode
        self.n_coefficients_ = n_coefficients
        self.absolute_ = bool(self.absolute)
        self.bands_ = band_names(levels, dim)
        return self

    def transform(self, X):
        """Top coefficients of every band.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_bands * n_coefficients)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return top_coefficients(
            self._decompose(X), self._fitted("n_coefficients"), self._fitted("absolute")
        )

    def get_feature_names_out(self, input_features=None):
        """Feature names ``<band>_<rank>``, e.g. ``cD3_1`` for the largest of band cD3."""
        check_is_fitted(self)
        return np.asarray(
            [
                f"{band}_{k}"
                for band in self.bands_
                for k in range(1, self._fitted("n_coefficients") + 1)
            ],
            dtype=object,
        )


def _as_wavelet(wavelet) -> pywt.Wavelet:
    h0 = lowpass_from_wavelet(wavelet)  # checks orthogonality, listing the valid names
    if isinstance(wavelet, pywt.Wavelet):
        return wavelet
    return pywt.Wavelet(wavelet) if isinstance(wavelet, str) else wavelet_from_filter(h0)


class AttributedCoefficients(TransformerMixin, BaseEstimator):
    """The wavelet coefficients a teacher attributes most to, as features.

    ``fit`` ranks every coefficient position of the learned wavelet by its mean absolute TRIM
    attribution over ``X`` (:meth:`AWDModule.mean_attributions
    <lightning_distill.awd.AWDModule.mean_attributions>`: the teacher's attributions seen through
    the distilled wavelet) and keeps the ``n_coefficients`` largest; ``transform`` returns each
    sample's coefficients at those positions. Unlike :class:`WaveletFeatures`, whose features are
    the largest coefficients *of each sample* wherever they lie, the positions here are fixed,
    so a linear model on them reads like a model on named inputs.

    The module is used, never trained nor changed: its teacher is frozen for each call and given
    back as it was.

    Parameters
    ----------
    module : AWDModule
        A distilled (trained) :class:`~lightning_distill.awd.AWDModule`.
    n_coefficients : int, default=3
        Coefficient positions kept.
    batch_size : int, default=256
        Samples per attribution batch in ``fit`` (memory, not results).

    Attributes
    ----------
    positions_ : ndarray of int, shape (n_coefficients,)
        Indices into the flat coefficient vector (bands in
        :func:`~lightning_distill.awd.attributions.flatten_coefficients` order), most attributed
        first.
    attribution_ : ndarray of shape (n_positions,)
        Mean absolute attribution of every position.
    filter_ : ndarray
        The module's wavelet filter ``h0`` at fit; :meth:`transform` refuses a module whose
        filter has changed since.
    n_features_in_ : int

    Examples
    --------
    >>> import torch
    >>> from lightning_distill.awd import AWDModule
    >>> teacher = torch.nn.Linear(16, 1)
    >>> awd = AWDModule(teacher, wavelet="db2", levels=2)
    >>> X = np.random.default_rng(0).normal(size=(20, 16)).astype(np.float32)
    >>> AttributedCoefficients(awd, n_coefficients=2).fit_transform(X).shape
    (20, 2)
    """

    def __init__(self, module, n_coefficients=3, batch_size=256):
        self.module = module
        self.n_coefficients = n_coefficients
        self.batch_size = batch_size

    def _check_module(self):
        from lightning_distill.awd.module import AWDModule

        if not isinstance(self.module, AWDModule):
            raise TypeError(f"module must be an AWDModule; got {type(self.module).__name__}.")

    def _as_tensor(self, X):
        import torch

        array = np.asarray(X)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"X must hold numbers; got an array of dtype {array.dtype}.")
        if not np.all(np.isfinite(array)):
            raise ValueError("X must be finite; got NaN or infinite values.")
        return torch.as_tensor(array, dtype=self.module.h0.dtype)

    def _flat_coefficients(self, x):
        import torch

        with torch.no_grad():
            return torch.cat([c.reshape(x.shape[0], -1) for c in self.module(x)], dim=1)

    def fit(self, X, y=None):
        """Rank the coefficient positions by mean absolute attribution over ``X``."""
        from lightning_distill._validation import check_integer

        self._check_module()
        n_coefficients = check_integer("n_coefficients", self.n_coefficients, minimum=1)
        batch_size = check_integer("batch_size", self.batch_size, minimum=1)
        x = self._as_tensor(X)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"X must hold at least one sample; got shape {tuple(x.shape)}.")
        total = None
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size]
            means = self.module.mean_attributions(batch)
            flat = np.concatenate([m.reshape(-1).cpu().double().numpy() for m in means])
            total = flat * len(batch) if total is None else total + flat * len(batch)
        self.attribution_ = total / x.shape[0]
        if n_coefficients > self.attribution_.size:
            raise ValueError(
                f"n_coefficients must be at most {self.attribution_.size} (coefficient positions); "
                f"got {n_coefficients}."
            )
        # stable order: ties keep the earlier (coarser) position first
        self.positions_ = np.argsort(-self.attribution_, kind="stable")[:n_coefficients]
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        self.input_shape_ = tuple(x.shape[1:])
        # the wavelet the positions were ranked under (the module may train on)
        self.filter_ = self.module.h0.detach().cpu().double().numpy().copy()
        return self

    def transform(self, X):
        """Each sample's coefficients at the chosen positions, shape ``(n_samples, n_coefficients)``.

        The module's wavelet must be the one of ``fit``: trained further (or loaded) since, it
        would give other coefficients at positions ranked under the old wavelet, and is refused.
        """
        check_is_fitted(self, "positions_")
        self._check_module()
        fitted = getattr(self, "filter_", None)
        now = self.module.h0.detach().cpu().double().numpy()
        # within float32's precision: a cast of the same wavelet (.double(), .float()) is the
        # same filter; a training step is not
        tolerance = 1e-6 * max(1.0, float(np.abs(now).max())) if now.size else 0.0
        if fitted is not None and (
            fitted.shape != now.shape or not np.allclose(fitted, now, rtol=0.0, atol=tolerance)
        ):
            raise ValueError(
                "module must have the wavelet filter it had at fit; its h0 changed since (trained "
                "further or loaded), so the kept positions were ranked under another wavelet. "
                "Fit again, or give fit a copy of the module (copy.deepcopy) to train on apart."
            )
        x = self._as_tensor(X)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X must have samples of shape {self.input_shape_} as in fit; got "
                f"{tuple(x.shape[1:])}."
            )
        return self._flat_coefficients(x)[:, self.positions_].cpu().numpy()

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "positions_")
        return np.asarray([f"coefficient_{position}" for position in self.positions_], dtype=object)
