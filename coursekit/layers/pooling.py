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
    dx = np.empty(geom.x_shape, dtype=np.result_type(dout, x))
    (kh, kw), (ho, wo) = geom.kernel, geom.out_hw
    h, w = geom.x_shape[2:]
    tiled = geom.stride == geom.kernel and (h, w) == (ho * kh, wo * kw)

    def route(s):  # the gradients of the images in slice s
        if not (tiled and _route_tiled(x[s], out[s], dout[s], dx[s], kh, kw)):
            _route_by_tap(x[s], out[s], dout[s], dx[s], geom)

    map_batches(route, batches(geom.x_shape[0], _BATCH), parallel=x.size >= _PARALLEL_SIZE)
    return dx


_BATCH = 8  # images per slice handed to a thread
# Threads pay from about this many input pixels (on 2 cores: 2 million ran 1.6 times faster
# on 2 threads, LeNet-5's 240 thousand ran 1.5 times slower). Below it the slices run serially.
_PARALLEL_SIZE = 2**20


def _route_tiled(x, out, dout, dx, kh, kw) -> bool:
    """Where the windows tile the input, mark every window's winner in one comparison.

    Splitting H into (window row, offset) is a view; comparing with the maxima repeated
    along W keeps numpy's inner loops a full row long. Returns False, writing nothing,
    when a window holds a tie (the first maximum must win, which this cannot tell) or a
    gradient is not finite (0 * inf would put nan on the window's other pixels).
    """
    n, c, ho, wo = out.shape
    x5 = x.reshape(n, c, ho, kh, wo * kw)
    wins = x5 == np.repeat(out, kw, axis=3)[:, :, :, None, :]
    if np.count_nonzero(wins) != out.size or not np.isfinite(dout).all():
        return False
    np.multiply(wins, np.repeat(dout, kw, axis=3)[:, :, :, None, :], out=dx.reshape(x5.shape))
    return True


def _route_by_tap(x, out, dout, dx, geom):
    """Any windows: visit each position in the window, the first maximum claiming the gradient."""
    dx[...] = 0
    unclaimed = np.ones(out.shape, dtype=bool)
    for pixels in _taps(geom):
        wins = (x[pixels] == out) & unclaimed
        dx[pixels] += np.where(wins, dout, 0)
        unclaimed &= ~wins


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
