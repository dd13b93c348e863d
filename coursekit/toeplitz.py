"""A convolution written out as the matrix it is.

A 2-D cross-correlation (what ``conv2d_forward`` computes) is linear in its
input, so for a fixed kernel it is a matrix product ``out.ravel() = T @ x.ravel()``.
Row ``r`` of ``T`` holds the kernel's taps at the columns of the input pixels that
output ``r`` sees, and zeros elsewhere: a banded, doubly block-Toeplitz matrix.
The book uses it to show local connectivity, weight sharing and the backward
pass (``dx = T.T @ dout``) on one picture.
"""

from __future__ import annotations

import numpy as np

from coursekit.arith import conv_output_size, pair

__all__ = ["correlation_matrix"]


def correlation_matrix(kernel, input_shape, *, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The matrix ``T`` with ``T @ x.ravel() == correlate(x, kernel).ravel()``.

    Parameters
    ----------
    kernel : array, shape (KH, KW)
        The kernel, applied without a flip (cross-correlation, as in CNNs).
    input_shape : (int, int)
        ``(H, W)`` of the unpadded input; use ``(1, W)`` for a 1-D signal.
    stride, padding : int or (int, int)
        As in ``conv2d_forward``; the output size is floored like torch's. For a
        1-D signal pass ``padding=(0, P)``.

    Returns
    -------
    numpy.ndarray, shape (H_out * W_out, H * W)
        Taps that fall on the zero padding have no column and are left out.

    Raises
    ------
    ValueError
        If the kernel is not 2-D, or does not fit in the padded input.
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim != 2:
        raise ValueError(f"correlation_matrix: kernel must be 2-D (KH, KW), got shape {kernel.shape}")
    h, w = input_shape
    kh, kw = kernel.shape
    sh, sw = pair(stride, "stride", where="correlation_matrix")
    ph, pw = pair(padding, "padding", where="correlation_matrix")
    h_out = conv_output_size(h, kh, sh, ph, strict=False)
    w_out = conv_output_size(w, kw, sw, pw, strict=False)
    T = np.zeros((h_out * w_out, h * w))
    for i in range(h_out):
        for j in range(w_out):
            for p in range(kh):
                for q in range(kw):
                    r, c = i * sh + p - ph, j * sw + q - pw
                    if 0 <= r < h and 0 <= c < w:
                        T[i * w_out + j, r * w + c] = kernel[p, q]
    return T
