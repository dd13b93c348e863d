"""2-D convolution (cross-correlation, as in ``torch.nn.functional.conv2d``).

Two implementations with the same signatures:

* ``conv2d_forward_naive`` / ``conv2d_backward_naive``: loops that read like the formula
  ``out[n, f, i, j] = b[f] + sum_{c,p,q} x_pad[n, c, i*S + p, j*S + q] * w[f, c, p, q]``;
* ``conv2d_forward`` / ``conv2d_backward``: the same computation as one matrix product
  over gathered windows (im2col), and col2im as ``KH * KW`` slice-adds.

The tests check that both agree with each other and with torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_array, float_dtype, output_hw, tap, window


class ConvGeometry(NamedTuple):
    """Everything about a convolution's shapes, checked once."""

    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    w_shape: tuple[int, int, int, int]  # (F, C, KH, KW)
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]


def _conv_setup(fn, x, w, b, stride, padding, strict):
    x = as_array(fn, "x", x, 4, "(N, C, H, W)")
    w = as_array(fn, "w", w, 4, "(F, C, KH, KW)")
    b = as_array(fn, "b", b, 1, "(F,)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"{fn}: x has {x.shape[1]} channels but w expects {w.shape[1]} "
            f"(x.shape={x.shape}, w.shape={w.shape})"
        )
    if b.shape != (w.shape[0],):
        raise ValueError(f"{fn}: b must have shape ({w.shape[0]},), one bias per filter of w.shape={w.shape}, got {b.shape}")
    stride = window(fn, "stride", stride, minimum=1)
    padding = window(fn, "padding", padding, minimum=0)
    out_hw = output_hw(fn, x.shape[2:], w.shape[2:], stride, padding, strict)
    dtype = float_dtype(x, w, b)
    geom = ConvGeometry(x.shape, w.shape, stride, padding, out_hw)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), b.astype(dtype, copy=False), geom


def _pad(x, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _crop(xp, geom: ConvGeometry):
    (ph, pw), (h, w) = geom.padding, geom.x_shape[2:]
    return xp[:, :, ph : ph + h, pw : pw + w]


def _check_dout(fn, dout, geom: ConvGeometry):
    expected = (geom.x_shape[0], geom.w_shape[0], *geom.out_hw)
    dout = np.asarray(dout)
    if dout.shape != expected:
        raise ValueError(f"{fn}: dout must have the forward output's shape {expected}, got {dout.shape}")
    return dout


# Fast: im2col + one matrix product.
#
# The windows are gathered channel-first, as one matrix of shape (C*KH*KW, N*H_out*W_out),
# so the forward pass, dw and dx are each a single large matrix product, which BLAS runs
# near its peak and splits well across threads (a batch of N small products does neither).


class Conv2dCache(NamedTuple):
    cols: np.ndarray  # (C*KH*KW, N*H_out*W_out): every input window, one per column
    w: np.ndarray  # (F, C, KH, KW)
    geom: ConvGeometry


def _im2col(xp, geom: ConvGeometry):
    """Gather every window of the padded input into columns, in one copy."""
    n, c = xp.shape[:2]
    kh, kw = geom.w_shape[2:]
    (sh, sw), (ho, wo) = geom.stride, geom.out_hw
    s0, s1, s2, s3 = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(c, kh, kw, n, ho, wo), strides=(s1, s2, s3, s0, s2 * sh, s3 * sw), writeable=False
    )
    return windows.reshape(c * kh * kw, n * ho * wo)


def conv2d_forward(x, w, b, *, stride=1, padding=0, strict=True):
    """Convolution layer forward pass (vectorised).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (F, C, KH, KW)
        F filters, each spanning the full input depth C.
    b : array, shape (F,)
    stride, padding : int or (int, int)
        Step of the window and zeros added on each side, per axis (H, W).
    strict : bool
        True (default): raise ``ValueError`` if the windows do not tile the padded
        input exactly. False: floor like torch, ignoring the rows and columns left over.

    Returns
    -------
    out : array, shape (N, F, H_out, W_out)
        ``H_out = (H - KH + 2 P) / S + 1``, likewise ``W_out``. Computed as
        (F, N, ...) and returned as a transposed view: no copy.
    cache : Conv2dCache
    """
    x, w, b, geom = _conv_setup("conv2d_forward", x, w, b, stride, padding, strict)
    cols = _im2col(_pad(x, geom.padding), geom)
    f = w.shape[0]
    out = w.reshape(f, -1) @ cols  # (F, N*H_out*W_out): one dot product per window and filter
    out += b[:, None]
    return out.reshape(f, x.shape[0], *geom.out_hw).transpose(1, 0, 2, 3), Conv2dCache(cols, w, geom)


def conv2d_backward(dout, cache: Conv2dCache):
    """Convolution layer backward pass (vectorised).

    Parameters
    ----------
    dout : array, shape (N, F, H_out, W_out)
    cache : Conv2dCache from :func:`conv2d_forward`

    Returns
    -------
    dx : array, shape (N, C, H, W)
    dw : array, shape (F, C, KH, KW)
    db : array, shape (F,)
    """
    cols, w, geom = cache
    dout = _check_dout("conv2d_backward", dout, geom)
    n, f = dout.shape[:2]
    c, kh, kw = geom.w_shape[1:]
    (ho, wo), (ph, pw) = geom.out_hw, geom.padding
    dout2 = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N*H_out*W_out), the layout of the forward's output
    db = dout2.sum(axis=1)
    dw = (dout2 @ cols.T).reshape(geom.w_shape)
    dcols = (w.reshape(f, -1).T @ dout2).reshape(c, kh, kw, n, ho, wo)
    # col2im: each kernel tap adds its gradients back onto the input pixels it read.
    h, wd = geom.x_shape[2:]
    dxp = np.zeros((c, n, h + 2 * ph, wd + 2 * pw), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxp[tap(p, q, geom.stride, geom.out_hw)] += dcols[:, p, q]
    return dxp[:, :, ph : ph + h, pw : pw + wd].transpose(1, 0, 2, 3), dw, db


# Naive: loops that read like the formula.


class Conv2dNaiveCache(NamedTuple):
    x_padded: np.ndarray  # (N, C, H + 2 PH, W + 2 PW)
    w: np.ndarray  # (F, C, KH, KW)
    geom: ConvGeometry


def conv2d_forward_naive(x, w, b, *, stride=1, padding=0, strict=True):
    """Convolution forward pass as explicit loops; same contract as :func:`conv2d_forward`."""
    x, w, b, geom = _conv_setup("conv2d_forward_naive", x, w, b, stride, padding, strict)
    xp = _pad(x, geom.padding)
    n, f = x.shape[0], w.shape[0]
    kh, kw = w.shape[2:]
    (sh, sw), (ho, wo) = geom.stride, geom.out_hw
    out = np.empty((n, f, ho, wo), dtype=x.dtype)
    for i_n in range(n):
        for i_f in range(f):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[i_n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    out[i_n, i_f, i, j] = np.sum(patch * w[i_f]) + b[i_f]
    return out, Conv2dNaiveCache(xp, w, geom)


def conv2d_backward_naive(dout, cache: Conv2dNaiveCache):
    """Convolution backward pass as explicit loops; same contract as :func:`conv2d_backward`."""
    xp, w, geom = cache
    dout = _check_dout("conv2d_backward_naive", dout, geom)
    n, f, ho, wo = dout.shape
    kh, kw = w.shape[2:]
    sh, sw = geom.stride
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i_n in range(n):
        for i_f in range(f):
            for i in range(ho):
                for j in range(wo):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    g = dout[i_n, i_f, i, j]
                    dw[i_f] += g * xp[i_n, :, rows, cols]
                    dxp[i_n, :, rows, cols] += g * w[i_f]
    return np.ascontiguousarray(_crop(dxp, geom)), dw, db
