"""Max, average and global average pooling. No parameters; they shrink the maps."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._threads import batches, map_batches
from ._validate import as_array, check_dout, float_dtype, output_hw, tap, window


class PoolGeometry(NamedTuple):
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    kernel: tuple[int, int]
    stride: tuple[int, int]
    out_hw: tuple[int, int]


def _pool_setup(fn, x, kernel_size, stride, strict):
    x = as_array(fn, "x", x, 4, "(N, C, H, W)")
    kernel = window(fn, "kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else window(fn, "stride", stride, minimum=1)
    out_hw = output_hw(fn, x.shape[2:], kernel, stride, (0, 0), strict)
    return x.astype(float_dtype(x), copy=False), PoolGeometry(x.shape, kernel, stride, out_hw)


def _taps(geom: PoolGeometry):
    """For each position (p, q) inside the window, the input pixels it covers across all windows."""
    kh, kw = geom.kernel
    for p in range(kh):
        for q in range(kw):
            yield tap(p, q, geom.stride, geom.out_hw)


def _out_shape(geom: PoolGeometry) -> tuple[int, int, int, int]:
    return (*geom.x_shape[:2], *geom.out_hw)


class MaxPoolCache(NamedTuple):
    x: np.ndarray
    out: np.ndarray
    geom: PoolGeometry


def maxpool2d_forward(x, *, kernel_size=2, stride=None, strict=True):
    """Max pooling forward pass.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    strict : bool
        As in :func:`~coursekit.layers.conv2d_forward`: raise if the windows do not
        tile the input, or floor like torch when False.

    Returns
    -------
    out : array, shape (N, C, H_out, W_out)
    cache : MaxPoolCache
    """
    x, geom = _pool_setup("maxpool2d_forward", x, kernel_size, stride, strict)
    taps = _taps(geom)
    out = x[next(taps)].copy()
    for pixels in taps:
        np.maximum(out, x[pixels], out=out)
    return out, MaxPoolCache(x, out, geom)


def maxpool2d_backward(dout, cache: MaxPoolCache):
    """Max pooling backward pass: each window's gradient goes to its winning input only.

    Where a window holds several equal maxima, the first in row-major order wins, as in torch.

    Returns
    -------
    dx : array, shape (N, C, H, W)
    """
    x, out, geom = cache
    dout = check_dout("maxpool2d_backward", dout, _out_shape(geom))
    dx = np.zeros(geom.x_shape, dtype=np.result_type(dout, x))
    taps = list(_taps(geom))
    overlap = geom.stride[0] < geom.kernel[0] or geom.stride[1] < geom.kernel[1]

    def route(s):  # the gradients of the images in slice s
        d, dxs = dout[s], dx[s]
        finite = np.isfinite(d).all()
        for wins, pixels in zip(_first_maxima(x[s], out[s], taps), taps):
            if not finite:  # 0 * inf is nan: keep the gradient off the other pixels of the window
                dxs[pixels] += np.where(wins, d, 0)
            elif overlap:  # a pixel in several windows gathers the gradients of all it wins
                dxs[pixels] += d * wins
            else:
                np.multiply(d, wins, out=dxs[pixels])

    size = max(_BATCH, _SLICE_BYTES // max(1, x[:1].nbytes))
    map_batches(route, batches(geom.x_shape[0], size), parallel=x.size >= _PARALLEL_SIZE)
    return dx


# Slices of at least _BATCH images and about _SLICE_BYTES of input: few enough numpy calls
# for small batches (LeNet-5's first pool on 50 images is one slice), and several slices for
# the threads to share on large ones.
_BATCH = 8
_SLICE_BYTES = 2**21
# Threads pay from about this many input pixels (on 2 cores: 2 million ran 1.6 times faster
# on 2 threads, LeNet-5's 240 thousand ran 1.5 times slower). Below it the slices run serially.
_PARALLEL_SIZE = 2**20


def _first_maxima(x, out, taps):
    """For each tap, a mask of the windows whose first maximum (in row-major order) it holds.

    A tap wins a window where its input equals the window's maximum and no earlier tap
    has won it: ties go to the first, as in torch. A window whose maximum is nan is won by none.
    """
    free = np.ones(out.shape, dtype=bool)
    masks = []
    for pixels in taps:
        wins = np.equal(x[pixels], out)
        np.logical_and(wins, free, out=wins)
        np.logical_xor(free, wins, out=free)  # wins lie inside free: this clears them
        masks.append(wins)
    return masks


class AvgPoolCache(NamedTuple):
    geom: PoolGeometry
    dtype: np.dtype


def avgpool2d_forward(x, *, kernel_size=2, stride=None, strict=True):
    """Average pooling forward pass; same parameters as :func:`maxpool2d_forward`."""
    x, geom = _pool_setup("avgpool2d_forward", x, kernel_size, stride, strict)
    taps = _taps(geom)
    out = x[next(taps)].copy()
    for pixels in taps:
        out += x[pixels]
    out /= geom.kernel[0] * geom.kernel[1]
    return out, AvgPoolCache(geom, x.dtype)


def avgpool2d_backward(dout, cache: AvgPoolCache):
    """Average pooling backward pass: each window spreads ``dout / (KH * KW)`` over its inputs."""
    geom, dtype = cache
    dout = check_dout("avgpool2d_backward", dout, _out_shape(geom))
    share = dout / (geom.kernel[0] * geom.kernel[1])
    dx = np.zeros(geom.x_shape, dtype=np.result_type(share, dtype))
    for pixels in _taps(geom):
        dx[pixels] += share
    return dx


class GlobalAvgPoolCache(NamedTuple):
    x_shape: tuple[int, int, int, int]


def global_avgpool_forward(x):
    """Global average pooling: the mean of each channel, (N, C, H, W) -> (N, C)."""
    x = as_array("global_avgpool_forward", "x", x, 4, "(N, C, H, W)")
    x = x.astype(float_dtype(x), copy=False)
    return x.mean(axis=(2, 3)), GlobalAvgPoolCache(x.shape)


def global_avgpool_backward(dout, cache: GlobalAvgPoolCache):
    """Backward of global average pooling: (N, C) -> (N, C, H, W), each pixel gets ``dout / (H W)``."""
    n, c, h, w = cache.x_shape
    dout = np.asarray(dout)
    if dout.shape != (n, c):
        raise ValueError(f"global_avgpool_backward: dout must have shape {(n, c)}, got {dout.shape}")
    return np.broadcast_to((dout / (h * w))[:, :, None, None], cache.x_shape).copy()
