"""Single-channel 2-D convolution and correlation, as in signal processing.

``convolve2d`` flips the kernel: ``(x * k)[i, j] = sum_{p,q} x[i - p, j - q] k[p, q]``;
``correlate2d`` does not, and is what deep-learning layers call "convolution".
Correlating with the flipped kernel gives the convolution.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_array
from .conv import conv2d_forward

_MODES = ("valid", "same", "full")


def correlate2d(image, kernel, mode: str = "valid"):
    """Cross-correlate a 2-D image with a 2-D kernel (no flip).

    Parameters
    ----------
    image : array, shape (H, W)
    kernel : array, shape (KH, KW)
    mode : {"valid", "same", "full"}
        "valid": only positions where the kernel lies inside the image,
        (H - KH + 1, W - KW + 1); "same": zero-pad so the output is (H, W)
        (odd kernels only, so the kernel has a centre); "full": every overlap,
        (H + KH - 1, W + KW - 1).

    Returns
    -------
    array
        Float output (float64 for integer inputs).
    """
    return _correlate("correlate2d", image, kernel, mode, flip=False)


def _correlate(fn, image, kernel, mode, *, flip):
    """Correlate ``image`` with ``kernel`` (flipped in both axes if ``flip``); ``fn`` names it in errors."""
    image = as_array(fn, "image", image, 2, "(H, W)")
    kernel = as_array(fn, "kernel", kernel, 2, "(KH, KW)")
    kh, kw = kernel.shape
    if mode == "valid":
        padding = (0, 0)
    elif mode == "full":
        padding = (kh - 1, kw - 1)
    elif mode == "same":
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"{fn}: mode='same' needs an odd-sized kernel with a centre pixel, got kernel.shape={kernel.shape}")
        padding = (kh // 2, kw // 2)
    else:
        raise ValueError(f"{fn}: mode must be one of {_MODES}, got {mode!r}")
    if mode == "valid" and (kh > image.shape[0] or kw > image.shape[1]):
        raise ValueError(f"{fn}: kernel.shape={kernel.shape} is larger than image.shape={image.shape} in mode 'valid'")
    if flip:
        kernel = kernel[::-1, ::-1]
    out, _ = conv2d_forward(image[None, None], kernel[None, None], np.zeros(1, dtype=kernel.dtype), padding=padding)
    return out[0, 0]


def convolve2d(image, kernel, mode: str = "valid"):
    """True 2-D convolution: correlation with the kernel flipped in both axes.

    Same parameters and output shapes as :func:`correlate2d`.
    """
    return _correlate("convolve2d", image, kernel, mode, flip=True)
