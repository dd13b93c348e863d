"""2-D convolution (cross-correlation, as in ``torch.nn.functional.conv2d``).

Two implementations with the same signatures:

* ``conv2d_forward_naive`` / ``conv2d_backward_naive``: loops that read like the formula
  ``out[n, f, i, j] = b[f] + sum_{c,p,q} x_pad[n, c, i*S + p, j*S + q] * w[f, c, p, q]``;
* ``conv2d_forward`` / ``conv2d_backward``: the same computation as a matrix product per
  image over its gathered windows (im2col), and col2im as ``KH * KW`` slice-adds.

The tests check that both agree with each other and with torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._threads import batches, kept, map_batches, scratch
from ._validate import as_array, check_dout, float_dtype, output_hw, window


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


def _out_shape(geom: ConvGeometry) -> tuple[int, int, int, int]:
    return (geom.x_shape[0], geom.w_shape[0], *geom.out_hw)


# Fast: im2col + one matrix product per image, a chunk of images at a time.
#
# Layout: the windows of one image are gathered channel-first, as a matrix of shape
# (C*KH*KW, H_out*W_out): column t holds the window of output pixel t. For a chunk of B
# images that is cols of shape (B, C*KH*KW, H_out*W_out), and for each image
#
#     out_n  = W2 @ cols_n        (F, H_out*W_out)      W2 = w.reshape(F, C*KH*KW)
#     dw    += dout_n @ cols_n.T  (F, C*KH*KW)
#     dcols_n = W2.T @ dout_n     (C*KH*KW, H_out*W_out), then col2im adds it back onto dx_n.
#
# ``np.matmul`` runs these per-image products over a stack in one call.
#
# col2im takes wide rows. With stride 1 along W, output pixel (i, j) writes at tap (p, q) to
# the flat position (i*SH + p)*W_pad + (j + q) of its padded channel. Let j run over the whole
# padded width W_pad instead of stopping at W_out: the extra columns are windows that hang over
# the right edge and wrap onto the next row, and their dout is set to zero, so they add
# nothing. In exchange, each tap's addition is one run of H_out*W_pad consecutive numbers per
# image and channel, instead of H_out short rows of W_out, whose per-row overhead was most of
# the time of LeNet-5's second conv (10-pixel-wide maps). A spare zero row under each padded
# gradient keeps the last wrapped window inside the array. The price is a copy of dout and a
# product W_pad / W_out times wider, which long rows do not repay: beyond _SHORT_ROW columns,
# and where the stride along W is larger than 1 (the rows are not contiguous anyway), the
# rows stay W_out wide. (The gather stays W_out wide too: there the overhang would also widen
# the forward's product and its output would need cropping, which cost more than the shorter
# rows save.)
#
# The batch is split into equal chunks of at least _MIN_BLOCK images and, above that, of
# about _CHUNK_BYTES of cols (KH*KW times as many numbers as the input), so that a chunk's
# cols are still in the cache while the products and col2im read them, rather than making a
# round trip through memory for the whole batch; and so that small layers such as LeNet-5's
# make few numpy calls, whose fixed cost would otherwise outweigh their arithmetic. Each
# thread gathers its chunks into the same scratch buffer, call after call (see _threads.py),
# and the chunks run on as many threads as numpy's BLAS may use.
#
# Where the whole batch's cols are small (at most _KEEP_BYTES: LeNet-5's convs on 50 images,
# 3.9 and 3.0 MB; the benchmark's float64 conv 3->32 on 64 images, 14 MB), the forward
# gathers them into an array the cache keeps, and the backward reuses them instead of
# gathering again (LeNet-5's backward passes on 50 images: 0.49 -> 0.27 ms and 1.9 -> 1.5 ms
# on one thread). The array comes from _threads.kept, which reuses one no longer referenced:
# fresh, it cost 2,500 page faults per training step. Larger cols are gathered again from
# the cached padded input (one copy) rather than held (KH*KW times the input's memory).

_MIN_BLOCK = 8  # images
_SHORT_ROW = 16  # col2im takes wide rows up to this W_out (gain at 10: 15%, at 16: 1-6%; at 32 a loss)
_CHUNK_BYTES = 2**21
# Threads pay from about this many multiply-adds per pass. Measured on 2 cores, idle: with
# LeNet-5's convs on 50 images (6 and 12 million) threaded, a numpy training epoch took
# 0.55-0.63 s against 0.63-0.67 s serial (bench_epoch.py, 2026-11-30); under load the
# threads lose, which the issue-3 measurements (taken at a load of 15-20) had recorded.
_PARALLEL_MACS = 2**22
_KEEP_BYTES = 2**24  # 16 MiB


class Conv2dCache(NamedTuple):
    x_padded: np.ndarray  # (N, C, H + 2 PH, W + 2 PW)
    w: np.ndarray  # (F, C, KH, KW)
    geom: ConvGeometry
    cols: np.ndarray | None = None  # (N, C*KH*KW, H_out*W_out): the forward's windows, kept when small


def _chunks(geom: ConvGeometry, itemsize: int) -> list[slice]:
    """The batch as equal chunks of images (see the sizes above)."""
    n, (c, kh, kw), (ho, wo) = geom.x_shape[0], geom.w_shape[1:], geom.out_hw
    size = max(_MIN_BLOCK, _CHUNK_BYTES // (c * kh * kw * ho * wo * itemsize))
    count = -(-n // size)
    return batches(n, -(-n // count))


def _windows(xp, geom: ConvGeometry, width: int, *, writeable=False):
    """View (B, C, KH, KW, H_out, width) of the padded images ``xp``.

    ``[n, c, p, q, i, j] = xp[n, c, i*SH + p, j*SW + q]``, where j + q may run on into the next
    row when ``width`` is wider than W_out (col2im's wide rows).
    """
    n, c = xp.shape[:2]
    kh, kw = geom.w_shape[2:]
    (sh, sw), ho = geom.stride, geom.out_hw[0]
    s0, s1, s2, s3 = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(n, c, kh, kw, ho, width), strides=(s0, s1, s2, s3, s2 * sh, s3 * sw), writeable=writeable
    )


def _im2col(xp, geom: ConvGeometry, out=None):
    """Gather every window of the padded images ``xp`` (B, C, H_pad, W_pad) in one copy.

    Returns cols of shape (B, C*KH*KW, H_out*W_out): ``cols[n, :, t]`` is the window of
    output pixel t of image n, flattened in the order (c, p, q) of ``w[f]``. cols is ``out``
    when given (an array of that shape), else the calling thread's scratch buffer,
    overwritten by that thread's next call.
    """
    windows = _windows(xp, geom, geom.out_hw[1])
    cols = scratch(windows.shape, xp.dtype) if out is None else out.reshape(windows.shape)
    np.copyto(cols, windows)
    n, c, kh, kw, ho, wo = cols.shape
    return cols.reshape(n, c * kh * kw, ho * wo)


def _wide(geom: ConvGeometry) -> int:
    """Columns per row of col2im's windows: W_pad for short rows at stride 1 along W, else W_out."""
    wo = geom.out_hw[1]
    return geom.x_shape[3] + 2 * geom.padding[1] if geom.stride[1] == 1 and wo <= _SHORT_ROW else wo


def _widen(dout, geom: ConvGeometry):
    """dout (B, F, H_out, W_out) as (B, F, H_out*W_wide), zero in the columns past W_out."""
    n, f, ho, wo = dout.shape
    if _wide(geom) == wo:
        return dout.reshape(n, f, ho * wo)
    wide = np.zeros((n, f, ho, _wide(geom)), dtype=dout.dtype)
    wide[..., :wo] = dout
    return wide.reshape(n, f, -1)


def _col2im(dcols, dxp, geom: ConvGeometry):
    """Add the window gradients dcols (B, C*KH*KW, H_out*W_wide) onto dxp (B, C, H_pad + 1, W_pad)."""
    dx = _windows(dxp, geom, _wide(geom), writeable=True)
    dcols = dcols.reshape(dx.shape)
    kh, kw = geom.w_shape[2:]
    for p in range(kh):  # each kernel tap adds its gradients back onto the input pixels it read
        for q in range(kw):
            dx[:, :, p, q] += dcols[:, :, p, q]


def conv2d_forward(x, w, b, *, stride=1, padding=0, strict=False):
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
        False (default): the one rule above, as torch. True: also refuse, with a
        ``ValueError``, a stride whose windows leave rows or columns over.

    Returns
    -------
    out : array, shape (N, F, H_out, W_out)
        ``H_out = floor((H + 2 P - KH) / S) + 1``, likewise ``W_out``, as in
        ``torch.nn.functional.conv2d``: when the stride does not tile the padded
        input, the rows and columns no window reaches are left out.
    cache : Conv2dCache
    """
    x, w, b, geom = _conv_setup("conv2d_forward", x, w, b, stride, padding, strict)
    xp = _pad(x, geom.padding)
    n, f = x.shape[0], w.shape[0]
    (ho, wo) = geom.out_hw
    w2 = w.reshape(f, -1)  # (F, C*KH*KW): one filter per row
    out = np.empty((n, f, ho * wo), dtype=x.dtype)
    cols_shape = (n, w2.shape[1], ho * wo)  # every image's windows, as _im2col lays them out
    cols = kept(cols_shape, x.dtype) if np.prod(cols_shape) * x.itemsize <= _KEEP_BYTES else None

    def chunk(s):
        windows = _im2col(xp[s], geom, None if cols is None else cols[s])
        np.matmul(w2, windows, out=out[s])  # (B, F, H_out*W_out): each window times each filter
        out[s] += b[:, None]

    map_batches(chunk, _chunks(geom, x.itemsize), parallel=out.size * w2.shape[1] >= _PARALLEL_MACS)
    return out.reshape(n, f, ho, wo), Conv2dCache(xp, w, geom, cols)


def conv2d_backward(dout, cache: Conv2dCache, *, need_dx=True):
    """Convolution layer backward pass (vectorised).

    Parameters
    ----------
    dout : array, shape (N, F, H_out, W_out)
    cache : Conv2dCache from :func:`conv2d_forward`
    need_dx : bool
        False: skip the input's gradient (a network's first layer, whose input is
        the data), and return None for it.

    Returns
    -------
    dx : array, shape (N, C, H, W), or None
    dw : array, shape (F, C, KH, KW)
    db : array, shape (F,)
    """
    xp, w, geom, cols = cache
    dout = check_dout("conv2d_backward", dout, _out_shape(geom))
    n, f = dout.shape[:2]
    dout3 = dout.reshape(n, f, -1)  # per image, the layout of the forward's product
    w2t = w.reshape(f, -1).T  # (C*KH*KW, F)
    dtype = np.result_type(dout, xp)
    dxp = np.zeros((n, xp.shape[1], xp.shape[2] + 1, xp.shape[3]), dtype=dtype) if need_dx else None

    def chunk(s):
        if need_dx:
            _col2im(np.matmul(w2t, _widen(dout[s], geom)), dxp[s], geom)
        windows = _im2col(xp[s], geom) if cols is None else cols[s]
        return np.matmul(dout3[s], windows.transpose(0, 2, 1)).sum(axis=0)  # this chunk's part of dw

    dw = sum(map_batches(chunk, _chunks(geom, xp.itemsize), parallel=dout.size * w2t.shape[0] >= _PARALLEL_MACS))
    db = dout3.sum(axis=(0, 2), dtype=dtype)
    (ph, pw), (h, wd) = geom.padding, geom.x_shape[2:]
    dx = dxp[:, :, ph : ph + h, pw : pw + wd] if need_dx else None
    return dx, dw.reshape(geom.w_shape), db


# Naive: loops that read like the formula.


def conv2d_forward_naive(x, w, b, *, stride=1, padding=0, strict=False):
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
    return out, Conv2dCache(xp, w, geom)


def conv2d_backward_naive(dout, cache: Conv2dCache):
    """Convolution backward pass as explicit loops; same contract as :func:`conv2d_backward`."""
    xp, w, geom, _ = cache
    dout = check_dout("conv2d_backward_naive", dout, _out_shape(geom))
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
