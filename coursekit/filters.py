"""Classic image filters: smoothing, sharpening and edge kernels, the integral image,
and local contrast normalisation. Kernels are for :func:`coursekit.layers.correlate2d`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .layers import correlate2d

__all__ = [
    "box_kernel",
    "gaussian_kernel",
    "sharpen_kernel",
    "VERTICAL_EDGE",
    "HORIZONTAL_EDGE",
    "LAPLACIAN_8",
    "integral_image",
    "box_sum",
    "local_contrast_normalize",
]

VERTICAL_EDGE = np.array([[-1.0, 0.0, 1.0]] * 3)
"""Columns -1, 0, 1 subtract the left neighbours from the right ones, so it fires on vertical edges."""

HORIZONTAL_EDGE = VERTICAL_EDGE.T.copy()
"""Rows -1, 0, 1 subtract the upper neighbours from the lower ones, so it fires on horizontal edges."""

LAPLACIAN_8 = np.array([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
"""8 in the centre and -1 around it; the weights sum to 0, so flat regions give 0."""


def box_kernel(size: int = 3) -> np.ndarray:
    """Moving average over a ``size`` x ``size`` window: every weight ``1 / size**2``."""
    if size < 1:
        raise ValueError(f"box_kernel: size must be >= 1, got {size}")
    return np.full((size, size), 1.0 / size**2)


def gaussian_kernel(sigma: float, radius: int | None = None) -> np.ndarray:
    """Sampled 2-D Gaussian ``G(x, y) = exp(-(x^2 + y^2) / 2 sigma^2) / (2 pi sigma^2)``.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels.
    radius : int, optional
        Half-width of the grid; defaults to ``ceil(3 sigma)``, beyond which the
        weights are below 1% of the peak.

    Returns
    -------
    array, shape (2 r + 1, 2 r + 1)
        Normalised to sum to 1, so a flat image passes unchanged.
    """
    if sigma <= 0:
        raise ValueError(f"gaussian_kernel: sigma must be > 0, got {sigma}")
    r = int(np.ceil(3 * sigma)) if radius is None else radius
    x = np.arange(-r, r + 1)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    return g / g.sum()


def sharpen_kernel(size: int = 3) -> np.ndarray:
    """``2 * identity - box``: the image plus its detail (image minus its blur)."""
    k = -box_kernel(size)
    k[size // 2, size // 2] += 2
    return k


def integral_image(image) -> np.ndarray:
    """Summed-area table with a zero first row and column.

    ``ii[r, c]`` is the sum of ``image[:r, :c]``, so ``ii`` has shape (H + 1, W + 1)
    and any rectangle's sum takes four look-ups (:func:`box_sum`).
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"integral_image: image must be 2-D (H, W), got shape {image.shape}")
    ii = np.zeros((image.shape[0] + 1, image.shape[1] + 1), dtype=np.result_type(image, np.int64))
    ii[1:, 1:] = image.cumsum(axis=0).cumsum(axis=1)
    return ii


def box_sum(ii, top: int, left: int, bottom: int, right: int):
    """Sum of ``image[top:bottom, left:right]`` from its integral image, in four look-ups."""
    return ii[bottom, right] - ii[top, right] - ii[bottom, left] + ii[top, left]


class ContrastNormalized(NamedTuple):
    out: np.ndarray
    local_mean: np.ndarray
    local_std: np.ndarray


def local_contrast_normalize(image, *, sigma: float = 1.0, radius: int = 3, c: float | None = None) -> ContrastNormalized:
    """Subtract a Gaussian-weighted local mean, divide by ``max(c, local std)``.

    Parameters
    ----------
    image : array, shape (H, W)
    sigma, radius : float, int
        The weighting window (default 7 x 7, weights summing to 1).
    c : float, optional
        Floor of the divisor, so flat regions are not blown up; defaults to the
        mean of the local standard deviations (Jarrett et al. 2009).

    Returns
    -------
    ContrastNormalized
        ``out`` (H, W), and the local mean and standard deviation it used.
    """
    image = np.asarray(image, dtype=np.float64)
    w = gaussian_kernel(sigma, radius)
    mean = correlate2d(image, w, mode="same")
    centred = image - mean
    std = np.sqrt(correlate2d(centred**2, w, mode="same"))
    floor = std.mean() if c is None else c
    return ContrastNormalized(centred / np.maximum(floor, std), mean, std)
