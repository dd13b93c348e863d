"""Batch normalisation for (N, D) features and, per channel, for (N, C, H, W) maps.

Follows ``torch.nn.functional.batch_norm``: batch statistics while training,
running statistics in evaluation, running variance updated with the unbiased
batch variance. Running statistics are returned, never written into the caller's arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_array, check_dout, float_dtype


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray  # (N, D) normalised input
    gamma: np.ndarray  # (D,)
    inv_std: np.ndarray  # (D,) 1 / sqrt(var + eps) of the statistics used
    training: bool  # batch statistics (depend on x) or running ones (constants)


def _check_params(fn, d, unit, **arrays):
    for name, a in arrays.items():
        if a.shape != (d,):
            raise ValueError(f"{fn}: {name} must have shape ({d},), one value per {unit}, got {a.shape}")


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation forward pass over a mini-batch of feature vectors.

    Parameters
    ----------
    x : array, shape (N, D)
    gamma, beta : array, shape (D,)
        Learned scale and shift: ``out = gamma * x_hat + beta``.
    running_mean, running_var : array, shape (D,)
        Estimates used in evaluation; not modified.
    training : bool
        True: normalise with the batch mean and (biased) variance, and update the
        running estimates. False: normalise with the running estimates.
    momentum : float
        Weight of the new batch in the running estimates: ``new = (1 - m) old + m batch``.
    eps : float
        Added to the variance before the square root.

    Returns
    -------
    out : array, shape (N, D)
    cache : BatchNormCache
    new_running_mean, new_running_var : array, shape (D,)
        The updated estimates (copies of the old ones when not training).
    """
    x = as_array("batchnorm_forward", "x", x, 2, "(N, D)")
    return _normalise("batchnorm_forward", "feature", x, gamma, beta, running_mean, running_var, training,
                      momentum, eps)


def _normalise(fn, unit, x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Batch norm of the rows of ``x: (N, D)``; ``fn`` and ``unit`` (feature, channel) name it in errors."""
    gamma, beta, running_mean, running_var = map(np.asarray, (gamma, beta, running_mean, running_var))
    n, d = x.shape
    _check_params(fn, d, unit, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    if not 0 <= momentum <= 1:
        raise ValueError(f"{fn}: momentum must lie in [0, 1], got {momentum}")
    x = x.astype(float_dtype(x), copy=False)
    gamma, beta = gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False)
    if training:
        if n < 2:
            raise ValueError(f"{fn}: training needs more than one value per {unit} to estimate a variance, "
                             f"got {n} (x.shape={x.shape})")
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = ((x - mean) * inv_std).astype(x.dtype, copy=False)
    out = gamma * x_hat + beta
    return out, BatchNormCache(x_hat, gamma, inv_std.astype(x.dtype), training), new_mean, new_var


def batchnorm_backward(dout, cache: BatchNormCache):
    """Batch normalisation backward pass.

    In training, the mean and variance depend on every example, so each input's
    gradient also collects a share from the whole batch:
    ``dx = inv_std / N * (N dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat))``.

    Returns
    -------
    dx : array, shape (N, D)
    dgamma, dbeta : array, shape (D,)
    """
    x_hat, gamma, inv_std, training = cache
    dout = check_dout("batchnorm_backward", dout, x_hat.shape)
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx_hat = dout * gamma
    if training:
        n = x_hat.shape[0]
        dx = inv_std / n * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    else:
        dx = dx_hat * inv_std
    return dx, dgamma, dbeta


class SpatialBatchNormCache(NamedTuple):
    inner: BatchNormCache  # over (N * H * W, C)
    x_shape: tuple[int, int, int, int]


def _to_rows(x):
    """(N, C, H, W) -> (N * H * W, C): every pixel of every image is one example of C features."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows, shape):
    n, c, h, w = shape
    return np.ascontiguousarray(rows.reshape(n, h, w, c).transpose(0, 3, 1, 2))


def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation per channel of (N, C, H, W) maps (``torch.nn.BatchNorm2d``).

    Statistics pool over the batch and both spatial axes; parameters are (C,).
    Same signature and returns as :func:`batchnorm_forward`.
    """
    x = as_array("spatial_batchnorm_forward", "x", x, 4, "(N, C, H, W)")
    out, inner, new_mean, new_var = _normalise("spatial_batchnorm_forward", "channel", _to_rows(x), gamma, beta,
                                               running_mean, running_var, training, momentum, eps)
    return _from_rows(out, x.shape), SpatialBatchNormCache(inner, x.shape), new_mean, new_var


def spatial_batchnorm_backward(dout, cache: SpatialBatchNormCache):
    """Backward of :func:`spatial_batchnorm_forward`: returns ``(dx, dgamma, dbeta)``."""
    dout = check_dout("spatial_batchnorm_backward", dout, cache.x_shape)
    dx, dgamma, dbeta = batchnorm_backward(_to_rows(dout), cache.inner)
    return _from_rows(dx, cache.x_shape), dgamma, dbeta
