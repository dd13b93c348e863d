"""Model simple and complex cells of the visual cortex, after Hubel and Wiesel.

A *simple cell* responds to an edge or bar of one orientation at one place: we
model it as an oriented Gabor kernel, correlated with the image and rectified.
A *complex cell* responds to the same orientation anywhere in a small region:
we model it as the largest simple-cell response over that region. These are a
convolution with a ReLU and a max pooling, which is the point of the model.
"""

from __future__ import annotations

import numpy as np

from coursekit.layers import correlate2d

__all__ = ["gabor_kernel", "bar_image", "simple_cell_map", "simple_cell", "complex_cell"]


def gabor_kernel(size: int, theta: float, *, wavelength: float = 6.0, sigma: float = 2.5,
                 phase: float = 0.0) -> np.ndarray:
    """An oriented Gabor kernel: a cosine grating under a Gaussian window, with zero mean.

    ``theta`` (radians) is the orientation of the bar the kernel prefers: 0 for a
    vertical bar, pi/2 for a horizontal one. ``phase = 0`` gives a bar detector (a
    bright centre with dark flanks), ``pi/2`` an edge detector.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gabor_kernel: size must be a positive odd int, got {size}")
    r = np.arange(size) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    across = xx * np.cos(theta) + yy * np.sin(theta)  # distance across the preferred bar
    k = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.cos(2 * np.pi * across / wavelength + phase)
    return k - k.mean()  # no response to a flat image


def bar_image(size: int, theta: float, *, offset: float = 0.0, width: float = 2.0) -> np.ndarray:
    """A bright bar (value 1) on black, at orientation ``theta``, shifted ``offset`` pixels across itself.

    The bar's edges are ramps one pixel wide, so its total brightness across is ``width`` at any
    offset, including fractions of a pixel.
    """
    if size < 1:
        raise ValueError(f"bar_image: size must be a positive int, got {size}")
    r = np.arange(size) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    across = xx * np.cos(theta) + yy * np.sin(theta) - offset
    return np.clip(width / 2 + 0.5 - np.abs(across), 0.0, 1.0)


def simple_cell_map(image, kernel) -> np.ndarray:
    """Rectified responses of one simple-cell type at every position: ``max(0, image * kernel)``, same size."""
    return np.maximum(correlate2d(image, kernel, mode="same"), 0.0)


def simple_cell(image, kernel) -> float:
    """The response of the simple cell whose receptive field is centred on the image."""
    image = np.asarray(image, dtype=float)
    return float(simple_cell_map(image, kernel)[image.shape[0] // 2, image.shape[1] // 2])


def complex_cell(image, kernel, *, reach: int = 4) -> float:
    """The largest simple-cell response within ``reach`` pixels of the centre: a max pooling."""
    if reach < 0:
        raise ValueError(f"complex_cell: reach must be >= 0, got {reach}")
    responses = simple_cell_map(image, kernel)
    ci, cj = responses.shape[0] // 2, responses.shape[1] // 2
    return float(responses[ci - reach:ci + reach + 1, cj - reach:cj + reach + 1].max())
