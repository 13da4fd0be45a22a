"""Pictures of a distilled wavelet: filters, wavelet functions, top-attributed reconstructions.

Each function builds a :class:`matplotlib.figure.Figure` itself (never through ``pyplot``, so
nothing is left open in a user's session) and returns it.
"""

from __future__ import annotations

import numpy as np
import pywt
import torch
from matplotlib.figure import Figure

from lightning_distill._validation import check_integer
from lightning_distill.awd.module import AWDModule, wavelet_from_filter
from lightning_distill.awd.transform import lowpass_from_wavelet

__all__ = ["plot_filters", "plot_top_reconstructions", "plot_wavelet_functions"]


def _wavelet(wavelet) -> pywt.Wavelet:
    if isinstance(wavelet, AWDModule):
        return wavelet.learned_wavelet()
    name = wavelet if isinstance(wavelet, str) else getattr(wavelet, "name", "wavelet")
    return wavelet_from_filter(lowpass_from_wavelet(wavelet), name=name)


def _label(wavelet, fallback):
    if isinstance(wavelet, str):
        return wavelet
    return fallback


def _check_label(name, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None; got {type(value).__name__}.")
    return value


def plot_filters(wavelet, reference=None, *, label=None, reference_label=None):
    """Stem plots of the lowpass ``h0`` and highpass ``h1`` filters.

    Parameters
    ----------
    wavelet : str, pywt.Wavelet or AWDModule
    reference : str or pywt.Wavelet, optional
        A second wavelet drawn in grey (e.g. the one the learning started from, or the one
        that made the data).
    label, reference_label : str, optional
        Their names in the legend; by default a wavelet's name where it is given by name,
        else ``"learned"`` and ``"reference"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    label = _check_label("label", label) or _label(wavelet, "learned")
    reference_label = _check_label("reference_label", reference_label)
    learned = _wavelet(wavelet)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, attribute, title in zip(axes, ("rec_lo", "rec_hi"), ("lowpass h0", "highpass h1")):
        # the zero line drawn apart: a stem plot's own base line would stand for the learned
        # taps in the legend (a black line beside the blue markers)
        ax.axhline(0, color="k", lw=0.8)
        if reference is not None:
            ref = getattr(_wavelet(reference), attribute)
            ax.stem(
                np.arange(len(ref)) + 0.15,
                ref,
                linefmt="C7-",
                markerfmt="C7o",
                basefmt=" ",
                label=reference_label or _label(reference, "reference"),
            )
        taps = getattr(learned, attribute)
        ax.stem(
            np.arange(len(taps)), taps, linefmt="C0-", markerfmt="C0o", basefmt=" ", label=label
        )
        ax.set_title(title)
        ax.set_xlabel("tap")
        ax.legend(frameon=False, fontsize=8)
    return fig


def plot_wavelet_functions(
    wavelet, reference=None, level: int = 8, *, label=None, reference_label=None
):
    """Scaling function phi and wavelet psi (cascade algorithm, ``pywt.Wavelet.wavefun``).

    Parameters
    ----------
    wavelet : str, pywt.Wavelet or AWDModule
    reference : str or pywt.Wavelet, optional
    level : int, default=8
        Refinement level of the cascade algorithm, 1 to 20.
    label, reference_label : str, optional
        Their names in the legend, as for :func:`plot_filters`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    # pywt's cascade takes a float level silently (truncated) and refuses 0 without the name;
    # it draws (L - 1) * 2**level points, so level 30 asks for tens of GB (20: about 10
    # million points for db5, far finer than any figure)
    level = check_integer("level", level, minimum=1, maximum=20)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    label = _check_label("label", label)
    reference_label = _check_label("reference_label", reference_label)
    drawn = [(reference, "C7", reference_label or _label(reference, "reference"))]
    drawn = drawn if reference is not None else []
    drawn.append((wavelet, "C0", label or _label(wavelet, "learned")))
    for item, color, name in drawn:
        phi, psi, grid = _wavelet(item).wavefun(level=level)
        axes[0].plot(grid, phi, color=color, label=name)
        axes[1].plot(grid, psi, color=color, label=name)
    for ax, title in zip(axes, ("scaling function phi", "wavelet psi")):
        ax.set_title(title)
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(frameon=False, fontsize=8)
    return fig


def plot_top_reconstructions(
    module: AWDModule, x: torch.Tensor, n_coefficients: int, n_examples: int = 4
):
    """Signals (or images) next to their rebuild from the few most-attributed coefficients.

    Parameters
    ----------
    module : AWDModule
    x : torch.Tensor, or a batch holding one
        Batch of signals or images (or a batch as a loader gives it, read as
        :meth:`AWDModule.check_input` reads it); the first ``n_examples`` are drawn.
    n_coefficients : int
        Coefficients kept per sample, ranked by absolute TRIM attribution.
    n_examples : int, default=4
        Examples drawn (at least 1).

    Returns
    -------
    matplotlib.figure.Figure
        With several channels, each example shows the channel its kept coefficients rebuild
        most (named beside it).
    """
    if not isinstance(module, AWDModule):
        # its check_input would fail as an AttributeError on whatever was given
        raise TypeError(f"module must be an AWDModule; got {type(module).__name__}.")
    n_examples = check_integer("n_examples", n_examples, minimum=1)
    # a batch in any form the module reads (a loader's (signals, labels), a dict), checked
    x = module.check_input(x)[:n_examples]
    rebuilt, _ = module.reconstruct_top(x, n_coefficients)
    x = x.detach().cpu().double().numpy()
    rebuilt = rebuilt.detach().cpu().double().numpy()
    n = x.shape[0]
    size = x.shape[-1] if module.dim == 1 else x.shape[-2] * x.shape[-1]
    # each example's channel that the kept coefficients rebuild most: with several channels,
    # channel 0 may hold none of them (a teacher that reads one colour)
    energy = (rebuilt.reshape(n, -1, size) ** 2).sum(2)  # [n, channels]
    channels = energy.argmax(1)
    several = energy.shape[1] > 1
    if module.dim == 1:
        fig = Figure(figsize=(8, 1.8 * n), layout="constrained")
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)
        for k, ax in enumerate(axes[:, 0]):
            c = channels[k]
            ax.plot(x[k].reshape(-1, size)[c], color="C7", label="original")
            ax.plot(
                rebuilt[k].reshape(-1, size)[c],
                color="C3",
                label=f"top {n_coefficients} coefficients",
            )
            if several:
                ax.set_ylabel(f"channel {c}", fontsize=8)
            if k == 0:
                ax.legend(frameon=False, fontsize=8, ncol=2)
        axes[-1, 0].set_xlabel("sample")
    else:
        fig = Figure(figsize=(4.4, 2.2 * n), layout="constrained")
        axes = fig.subplots(n, 2, squeeze=False)
        for k in range(n):
            c = channels[k]
            if several:
                axes[k, 0].set_ylabel(f"channel {c}", fontsize=8)
            for ax, image, title in zip(
                axes[k],
                (x[k].reshape(-1, *x.shape[-2:])[c], rebuilt[k].reshape(-1, *x.shape[-2:])[c]),
                ("original", f"top {n_coefficients} coefficients\n(own colour scale)"),
            ):
                # each panel on its own symmetric scale: the kept part is much fainter
                limit = max(np.abs(image).max(), 1e-12)
                ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0:
                    ax.set_title(title, fontsize=9)
    what = "signals" if module.dim == 1 else "images"
    fig.suptitle(f"{what} rebuilt from the most-attributed wavelet coefficients", fontsize=10)
    return fig
