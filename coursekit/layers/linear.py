"""Fully connected (affine) layer, ``out = x @ w.T + b``, with PyTorch's weight layout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._threads import one_blas_thread
from ._validate import as_array, check_dout, float_dtype

# Products below this many multiply-adds run on one BLAS thread (see _threads.py), as the convs'.
_PARALLEL_MACS = 2**24


class LinearCache(NamedTuple):
    x_flat: np.ndarray  # (N, D)
    w: np.ndarray  # (M, D)
    x_shape: tuple[int, ...]


def linear_forward(x, w, b):
    """Affine layer forward pass.

    Parameters
    ----------
    x : array, shape (N, D) or (N, d1, ..., dk)
        Inputs; trailing axes are flattened to ``D = d1 * ... * dk``.
    w : array, shape (M, D)
        Weights, one row per output (``torch.nn.Linear`` layout).
    b : array, shape (M,)

    Returns
    -------
    out : array, shape (N, M)
    cache : LinearCache
    """
    fn = "linear_forward"
    x = np.asarray(x)
    w = as_array(fn, "w", w, 2, "(M, D)")
    b = as_array(fn, "b", b, 1, "(M,)")
    if x.ndim < 1:
        raise ValueError(f"{fn}: x must have a batch axis, got shape {x.shape}")
    x_flat = x.reshape(x.shape[0], -1)
    if x_flat.shape[1] != w.shape[1]:
        raise ValueError(
            f"{fn}: x has {x_flat.shape[1]} features per example (shape {x.shape}) "
            f"but w expects {w.shape[1]} (w.shape={w.shape})"
        )
    if b.shape != (w.shape[0],):
        raise ValueError(f"{fn}: b must have shape ({w.shape[0]},) to match w.shape={w.shape}, got {b.shape}")
    dtype = float_dtype(x, w, b)
    with one_blas_thread(x_flat.size * w.shape[0] < _PARALLEL_MACS):
        out = x_flat.astype(dtype, copy=False) @ w.T.astype(dtype, copy=False)
    out += b
    return out, LinearCache(x_flat, w, x.shape)


def linear_backward(dout, cache: LinearCache):
    """Affine layer backward pass.

    Parameters
    ----------
    dout : array, shape (N, M)
    cache : LinearCache

    Returns
    -------
    dx : array, shape of the forward's x
    dw : array, shape (M, D)
    db : array, shape (M,)
    """
    x_flat, w, x_shape = cache
    dout = check_dout("linear_backward", dout, (x_flat.shape[0], w.shape[0]))
    with one_blas_thread(x_flat.size * w.shape[0] < _PARALLEL_MACS):
        dx = (dout @ w).reshape(x_shape)  # each input feeds every output: "one from all"
        dw = dout.T @ x_flat  # each weight links one input to one output: "one to one"
    db = dout.sum(axis=0)
    return dx, dw, db
