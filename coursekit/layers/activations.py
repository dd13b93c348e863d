"""Element-wise non-linearities: ReLU, sigmoid and tanh, each forward beside its backward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_dout, float_dtype


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(float_dtype(x), copy=False)


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
    x = _as_float(x)
    e = np.exp(-np.abs(x))  # never overflows; the two branches are the same function
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class ReluCache(NamedTuple):
    x: np.ndarray


def relu_forward(x):
    """ReLU ``max(0, x)``. Returns ``(out, cache)``; out has x's shape and dtype."""
    x = _as_float(x)
    return np.maximum(x, 0), ReluCache(x)


def relu_backward(dout, cache: ReluCache):
    """Gradient of ReLU: passes ``dout`` where ``x > 0`` and zero elsewhere (also at 0, like torch)."""
    dout = check_dout("relu_backward", dout, cache.x.shape)
    return dout * (cache.x > 0)


class SigmoidCache(NamedTuple):
    out: np.ndarray


def sigmoid_forward(x):
    """Sigmoid ``g(a) = 1 / (1 + e^-a)``. Returns ``(out, cache)``."""
    out = sigmoid(x)
    return out, SigmoidCache(out)


def sigmoid_backward(dout, cache: SigmoidCache):
    """Gradient of the sigmoid: ``dout * g(a) * (1 - g(a))``, from the saved output."""
    dout = check_dout("sigmoid_backward", dout, cache.out.shape)
    return dout * cache.out * (1 - cache.out)


class TanhCache(NamedTuple):
    out: np.ndarray


def tanh_forward(x):
    """Hyperbolic tangent. Returns ``(out, cache)``."""
    out = np.tanh(_as_float(x))
    return out, TanhCache(out)


def tanh_backward(dout, cache: TanhCache):
    """Gradient of tanh: ``dout * (1 - tanh(x)^2)``."""
    dout = check_dout("tanh_backward", dout, cache.out.shape)
    return dout * (1 - cache.out**2)
