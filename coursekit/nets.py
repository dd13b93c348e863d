"""Networks built from the numpy layers.

A model keeps its parameters in ``model.params`` (a dict of arrays) and exposes
``loss(X, y=None)``: with ``y=None`` it returns class scores (evaluation mode);
with labels it returns ``(loss, grads)`` in training mode, where ``grads`` has
the same keys as ``params``. Weight decay adds ``reg * 0.5 * sum(w**2)`` over the
weight matrices (not biases, not batch-norm parameters), whose gradient ``reg * w``
shrinks the weights.

Batch-norm running statistics live in ``model.bn_state`` and are replaced (never
mutated) after each training call; dropout draws from ``model.rng``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod

import numpy as np

from . import layers as L

__all__ = ["TwoLayerNet", "ThreeLayerConvNet", "LeNet5"]


class _Net(ABC):
    """What every model shares: parameter initialisation, the optional layers, the loss."""

    def __init__(self, *, reg, dtype, seed, batchnorm, dropout):
        if not 0 <= dropout < 1:
            raise ValueError(f"{type(self).__name__}: dropout is the probability to drop, in [0, 1), got {dropout}")
        self.reg = reg
        self.dtype = np.dtype(dtype)
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.init_rng = np.random.default_rng(seed)
        self.rng = np.random.default_rng(None if seed is None else seed + 1)
        self.params: dict[str, np.ndarray] = {}
        self.bn_state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.decayed: list[str] = []  # weights under weight decay

    def _weight(self, name, shape, fan_in, weight_scale):
        """He initialisation ``N(0, 2 / fan_in)`` unless a fixed scale is given."""
        scale = np.sqrt(2.0 / fan_in) if weight_scale is None else weight_scale
        self.params[name] = (scale * self.init_rng.standard_normal(shape)).astype(self.dtype)
        self.decayed.append(name)

    def _zeros(self, name, size, value=0.0):
        self.params[name] = np.full(size, value, dtype=self.dtype)

    def _bn_params(self, name, size):
        self._zeros(f"gamma{name}", size, 1.0)
        self._zeros(f"beta{name}", size)
        self.bn_state[name] = (np.zeros(size, dtype=self.dtype), np.ones(size, dtype=self.dtype))

    # Forward pieces; each returns (out, undo) where undo(dout) -> dx and writes grads.

    def _norm(self, h, name, training, spatial):
        if not self.batchnorm:
            return h, lambda d, grads: d
        forward = L.spatial_batchnorm_forward if spatial else L.batchnorm_forward
        backward = L.spatial_batchnorm_backward if spatial else L.batchnorm_backward
        rm, rv = self.bn_state[name]
        out, cache, rm, rv = forward(h, self.params[f"gamma{name}"], self.params[f"beta{name}"], rm, rv, training=training)
        if training:
            self.bn_state[name] = (rm, rv)

        def undo(d, grads):
            dx, grads[f"gamma{name}"], grads[f"beta{name}"] = backward(d, cache)
            return dx

        return out, undo

    def _drop(self, h, training):
        if not self.dropout:
            return h, lambda d, grads: d
        out, cache = L.dropout_forward(h, p=self.dropout, training=training, rng=self.rng)
        return out, lambda d, grads: L.dropout_backward(d, cache)

    @abstractmethod
    def _forward(self, X, training):
        """Scores and the list of backward steps, in forward order."""

    def loss(self, X, y=None):
        """Scores ``(N, C)`` when ``y`` is None, else ``(loss, grads)`` in training mode."""
        X = np.asarray(X, dtype=self.dtype)
        training = y is not None
        scores, steps = self._forward(X, training)
        if not training:
            return scores
        data_loss, d = L.softmax_cross_entropy(scores, y)
        grads: dict[str, np.ndarray] = {}
        for undo in reversed(steps):
            d = undo(d, grads)
        reg_loss = 0.0
        for name in self.decayed if self.reg else ():
            w = self.params[name]
            reg_loss += 0.5 * self.reg * float(np.sum(w * w))
            grads[name] = grads[name] + self.reg * w
        return data_loss + reg_loss, grads

    def predict(self, X, batch_size=500):
        """Predicted labels ``(N,)``, in batches to bound memory."""
        X = np.asarray(X)
        return np.concatenate([self.loss(X[i : i + batch_size]).argmax(axis=1) for i in range(0, len(X), batch_size)])

    def _weighted(self, forward, backward, h, k, **kwargs):
        """A layer with weights ``W{k}`` and bias ``b{k}`` (linear or conv)."""
        out, cache = forward(h, self.params[f"W{k}"], self.params[f"b{k}"], **kwargs)

        def undo(d, grads):
            dx, grads[f"W{k}"], grads[f"b{k}"] = backward(d, cache)
            return dx

        return out, undo

    def _linear(self, h, k):
        return self._weighted(L.linear_forward, L.linear_backward, h, k)

    def _conv(self, h, k, padding):
        # The first layer's input is the data: its gradient is never used, so it is not computed.
        backward = L.conv2d_backward if k > 1 else functools.partial(L.conv2d_backward, need_dx=False)
        return self._weighted(L.conv2d_forward, backward, h, k, padding=padding)

    @staticmethod
    def _relu(h):
        out, cache = L.relu_forward(h)
        return out, lambda d, grads: L.relu_backward(d, cache)

    @staticmethod
    def _pool(h):
        out, cache = L.maxpool2d_forward(h, kernel_size=2)
        return out, lambda d, grads: L.maxpool2d_backward(d, cache)

    def _pool_relu(self, h):
        """ReLU then 2x2 max pooling, computed in the other order, which gives the same numbers.

        ``max(relu(a), relu(b)) = relu(max(a, b))``, and a window's gradient reaches the same
        input either way (its first maximum if that is positive, no input otherwise), so the
        ReLU runs on the pooled maps, a quarter of the numbers.
        """
        h, pool_undo = self._pool(h)
        h, relu_undo = self._relu(h)
        return h, lambda d, grads: pool_undo(relu_undo(d, grads), grads)

    def _run(self, h, stages):
        """Apply ``stages`` (callables h -> (out, undo)) in order, collecting the undo steps."""
        steps = []
        for stage in stages:
            h, undo = stage(h)
            steps.append(undo)
        return h, steps


class TwoLayerNet(_Net):
    """Linear - [batch norm] - ReLU - [dropout] - linear, on flattened inputs.

    Parameters: ``W1 (H, D)``, ``b1 (H,)``, ``W2 (C, H)``, ``b2 (C,)`` (torch layout).
    """

    def __init__(self, input_dim=64, hidden_dim=100, num_classes=10, *, weight_scale=None, reg=0.0,
                 batchnorm=False, dropout=0.0, dtype=np.float32, seed=0):  # fmt: skip
        super().__init__(reg=reg, dtype=dtype, seed=seed, batchnorm=batchnorm, dropout=dropout)
        self._weight("W1", (hidden_dim, input_dim), input_dim, weight_scale)
        self._zeros("b1", hidden_dim)
        self._weight("W2", (num_classes, hidden_dim), hidden_dim, weight_scale)
        self._zeros("b2", num_classes)
        if batchnorm:
            self._bn_params("1", hidden_dim)

    def _forward(self, X, training):
        return self._run(X, [
            lambda h: self._linear(h, 1),
            lambda h: self._norm(h, "1", training, spatial=False),
            self._relu,
            lambda h: self._drop(h, training),
            lambda h: self._linear(h, 2),
        ])  # fmt: skip


class ThreeLayerConvNet(_Net):
    """Conv - [batch norm] - ReLU - 2x2 max pool - linear - ReLU - [dropout] - linear.

    The conv keeps the spatial size (padding ``(F - 1) / 2``, odd ``filter_size``).
    Parameters: ``W1 (F, C, K, K)``, ``b1``, ``W2 (hidden, F * H/2 * W/2)``, ``b2``, ``W3 (classes, hidden)``, ``b3``.
    """

    def __init__(self, input_dim=(1, 28, 28), num_filters=16, filter_size=5, hidden_dim=100, num_classes=10, *,
                 weight_scale=None, reg=0.0, batchnorm=False, dropout=0.0, dtype=np.float32, seed=0):  # fmt: skip
        super().__init__(reg=reg, dtype=dtype, seed=seed, batchnorm=batchnorm, dropout=dropout)
        c, h, w = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"ThreeLayerConvNet: filter_size must be odd to keep the size, got {filter_size}")
        if h % 2 or w % 2:
            raise ValueError(f"ThreeLayerConvNet: input height and width must be even for the 2x2 pool, got {input_dim}")
        self.padding = (filter_size - 1) // 2
        self._weight("W1", (num_filters, c, filter_size, filter_size), c * filter_size**2, weight_scale)
        self._zeros("b1", num_filters)
        pooled = num_filters * (h // 2) * (w // 2)
        self._weight("W2", (hidden_dim, pooled), pooled, weight_scale)
        self._zeros("b2", hidden_dim)
        self._weight("W3", (num_classes, hidden_dim), hidden_dim, weight_scale)
        self._zeros("b3", num_classes)
        if batchnorm:
            self._bn_params("1", num_filters)

    def _forward(self, X, training):
        return self._run(X, [
            lambda h: self._conv(h, 1, self.padding),
            lambda h: self._norm(h, "1", training, spatial=True),
            self._pool_relu,
            lambda h: self._linear(h, 2),
            self._relu,
            lambda h: self._drop(h, training),
            lambda h: self._linear(h, 3),
        ])  # fmt: skip


class LeNet5(_Net):
    """LeNet-5 with ReLU and max pooling (LeCun et al. 1998, modernised).

    conv 6@5x5 - ReLU - pool - conv 16@5x5 - ReLU - pool - fc 120 - ReLU - fc 84 - ReLU - fc classes.
    28x28 inputs are zero-padded by 2 in the first conv, giving the classic 32x32 geometry.
    """

    def __init__(self, input_dim=(1, 28, 28), num_classes=10, *, weight_scale=None, reg=0.0,
                 batchnorm=False, dropout=0.0, dtype=np.float32, seed=0):  # fmt: skip
        super().__init__(reg=reg, dtype=dtype, seed=seed, batchnorm=batchnorm, dropout=dropout)
        c, h, w = input_dim
        if (h, w) not in ((28, 28), (32, 32)):
            raise ValueError(f"LeNet5: input must be 28x28 or 32x32, got {input_dim}")
        self.padding = 2 if h == 28 else 0
        self._weight("W1", (6, c, 5, 5), c * 25, weight_scale)
        self._zeros("b1", 6)
        self._weight("W2", (16, 6, 5, 5), 6 * 25, weight_scale)
        self._zeros("b2", 16)
        for k, (n_in, n_out) in enumerate([(400, 120), (120, 84), (84, num_classes)], start=3):
            self._weight(f"W{k}", (n_out, n_in), n_in, weight_scale)
            self._zeros(f"b{k}", n_out)
        if batchnorm:
            self._bn_params("1", 6)
            self._bn_params("2", 16)

    def _forward(self, X, training):
        return self._run(X, [
            lambda h: self._conv(h, 1, self.padding),
            lambda h: self._norm(h, "1", training, spatial=True),
            self._pool_relu,
            lambda h: self._conv(h, 2, 0),
            lambda h: self._norm(h, "2", training, spatial=True),
            self._pool_relu,
            lambda h: self._linear(h, 3),
            self._relu,
            lambda h: self._linear(h, 4),
            self._relu,
            lambda h: self._drop(h, training),
            lambda h: self._linear(h, 5),
        ])  # fmt: skip
