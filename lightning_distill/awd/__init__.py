"""Adaptive wavelet distillation (Ha, Singh, Yu et al., NeurIPS 2021).

Learn an orthogonal wavelet in which a trained network's TRIM attributions are sparse, then
predict with a few of its coefficients.

* :mod:`~lightning_distill.awd.transform`: differentiable DWT/IDWT (1D, 2D) matching PyWavelets.
* :mod:`~lightning_distill.awd.losses`: reconstruction, validity and sparsity terms.
* :mod:`~lightning_distill.awd.attributions`: TRIM attributions through Captum, differentiable
  in the filter.
* :class:`AWDModule`: the LightningModule.
* :class:`WaveletFeatures` and :func:`awd_path`: from the distilled wavelet to a linear model.
* :mod:`~lightning_distill.awd.plotting`: filters, wavelet functions, reconstructions.
"""

from lightning_distill.awd.features import AttributedCoefficients, WaveletFeatures
from lightning_distill.awd.losses import filter_distance, validity_error
from lightning_distill.awd.module import AWDModule, wavelet_from_checkpoint, wavelet_from_filter
from lightning_distill.awd.path import AWDPath, awd_path

__all__ = [
    "AWDModule",
    "AWDPath",
    "AttributedCoefficients",
    "WaveletFeatures",
    "awd_path",
    "filter_distance",
    "validity_error",
    "wavelet_from_checkpoint",
    "wavelet_from_filter",
]
