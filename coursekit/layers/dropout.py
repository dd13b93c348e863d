"""Inverted dropout: ``p`` is the probability to drop, as in ``torch.nn.functional.dropout``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_dout, float_dtype


class DropoutCache(NamedTuple):
    scaled_mask: np.ndarray | None  # 0 where dropped, 1 / (1 - p) where kept; None: identity


def dropout_forward(x, *, p, training, rng=None):
    """Dropout forward pass.

    Parameters
    ----------
    x : array, any shape
    p : float in [0, 1)
        Probability of zeroing each element.
    training : bool
        False (evaluation) returns x unchanged. Kept elements are scaled by
        ``1 / (1 - p)`` while training, so the expected output equals x and
        evaluation needs no rescaling.
    rng : numpy.random.Generator
        Source of the mask; required when training with ``p > 0``.

    Returns
    -------
    out : array, same shape and dtype as x
    cache : DropoutCache
    """
    fn = "dropout_forward"
    x = np.asarray(x)
    x = x.astype(float_dtype(x), copy=False)
    if not 0 <= p < 1:
        raise ValueError(f"{fn}: p is the probability to drop and must lie in [0, 1), got {p}")
    if not training or p == 0:
        return x.copy(), DropoutCache(None)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{fn}: pass rng=np.random.default_rng(seed) when training with p > 0, got {rng!r}")
    scaled_mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * scaled_mask, DropoutCache(scaled_mask)


def dropout_backward(dout, cache: DropoutCache):
    """Dropout backward pass: the gradient flows through the kept elements, with the same scale."""
    dout = np.asarray(dout)
    if cache.scaled_mask is None:
        return dout.copy()
    check_dout("dropout_backward", dout, cache.scaled_mask.shape)
    return dout * cache.scaled_mask
