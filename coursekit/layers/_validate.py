"""Argument checks shared by the layers: every error names the function, the argument and its shape."""

from __future__ import annotations

import numpy as np

from ..arith import conv_output_size, pair


def as_array(fn: str, name: str, a, ndim: int | None = None, layout: str = "") -> np.ndarray:
    """Return ``a`` as an ndarray, checking its number of dimensions."""
    a = np.asarray(a)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D{' ' + layout if layout else ''}, got shape {a.shape}")
    return a


def check_dout(fn: str, dout, expected_shape) -> np.ndarray:
    """``dout`` as an ndarray, if it has the shape of the forward pass's output."""
    dout = np.asarray(dout)
    expected_shape = tuple(expected_shape)
    if dout.shape != expected_shape:
        raise ValueError(f"{fn}: dout must have the forward output's shape {expected_shape}, got {dout.shape}")
    return dout


def float_dtype(*arrays) -> np.dtype:
    """The dtype a layer computes in: the inputs' common float type (float64 for integer inputs)."""
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def window(fn: str, name: str, value, *, minimum: int) -> tuple[int, int]:
    """An int-or-pair argument (kernel size, stride, padding) as a checked ``(h, w)`` pair."""
    h, w = pair(value, name, where=fn)
    if h < minimum or w < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return h, w


def output_hw(fn: str, hw, kernel, stride, padding, strict: bool) -> tuple[int, int]:
    """Output height and width of a sliding window, with the layer's name in any error."""
    sizes = []
    for axis, n, k, s, p in zip("HW", hw, kernel, stride, padding):
        if n + 2 * p < k:
            raise ValueError(
                f"{fn}: the {k}-wide window does not fit along {axis}: input {n} with padding {p}"
            )
        try:
            sizes.append(conv_output_size(n, k, s, p, strict=strict))
        except ValueError as err:
            raise ValueError(f"{fn}: along {axis}, {str(err).split(': ', 1)[1]}") from None
    return sizes[0], sizes[1]


def tap(p: int, q: int, stride, out_hw):
    """Index of the input pixels that window position (p, q) covers, one per output position.

    A window of any layer (conv or pooling) starts at ``(i * SH, j * SW)``; its entry
    ``(p, q)`` therefore reads rows ``p, p + SH, ...`` and columns ``q, q + SW, ...``.
    """
    (sh, sw), (ho, wo) = stride, out_hw
    return (slice(None), slice(None), slice(p, p + sh * (ho - 1) + 1, sh), slice(q, q + sw * (wo - 1) + 1, sw))
