"""A linear classifier with the softmax (cross-entropy) loss, trained by gradient descent.

Scores are ``X @ W.T``: the weight matrix has PyTorch's ``nn.Linear`` layout,
``W: (C, D)``, one row per class, so each row is a template that the input is
correlated with. There is no separate bias: append a constant feature of 1 to
``X`` (the "bias trick") and the last column of ``W`` is the bias.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax_loss", "train_linear_classifier", "predict"]


def softmax_loss(W, X, y, reg=0.0):
    """Mean softmax cross-entropy of the scores ``X @ W.T``, plus weight decay, and its gradient.

    Parameters
    ----------
    W : array, shape (C, D)
        One row of weights per class.
    X : array, shape (N, D)
    y : int array, shape (N,)
        Labels in ``[0, C)``.
    reg : float
        Weight decay: adds ``reg / 2 * sum(W ** 2)`` to the loss and ``reg * W`` to the gradient.

    Returns
    -------
    loss : float
    dW : array, shape (C, D)
        ``(softmax(scores) - onehot(y)).T @ X / N + reg * W``.

    Each row's maximum score is subtracted before ``exp``, which changes
    nothing mathematically and keeps ``exp`` from overflowing.
    """
    W = np.asarray(W)
    X = np.asarray(X)
    y = np.asarray(y)
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"softmax_loss: W must be (C, D) and X (N, D) with the same D, got W.shape={W.shape}, "
                         f"X.shape={X.shape}")
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"softmax_loss: y must have shape ({n},) to match X.shape={X.shape}, got {y.shape}")
    scores = X @ W.T
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean() + 0.5 * reg * np.sum(W * W)
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dW = dscores.T @ X / n + reg * W
    return float(loss), dW


def predict(W, X):
    """Labels ``(N,)``: the class with the highest score ``X @ W.T``."""
    return np.argmax(np.asarray(X) @ np.asarray(W).T, axis=1)


def train_linear_classifier(X, y, *, num_classes=None, lr=0.5, reg=1e-4, num_iters=300, batch_size=None,
                            seed=0, weight_scale=1e-3):
    """Fit ``W`` by (mini-batch) gradient descent on :func:`softmax_loss`.

    Parameters
    ----------
    X : array, shape (N, D)
    y : int array, shape (N,)
    num_classes : int, default ``max(y) + 1``
    lr : float
        Step size: ``W <- W - lr * dW``.
    reg : float
        Weight decay.
    num_iters : int
        Number of steps.
    batch_size : int or None
        Examples per step, drawn at random without replacement; None: the whole set (plain gradient descent).
    seed : int
        Seeds the initial weights ``N(0, weight_scale^2)`` and the mini-batches.

    Returns
    -------
    W : array, shape (C, D)
    losses : list of float, one per step
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    c = int(y.max()) + 1 if num_classes is None else int(num_classes)
    W = weight_scale * rng.standard_normal((c, X.shape[1]))
    losses = []
    for _ in range(num_iters):
        if batch_size is None or batch_size >= len(X):
            Xb, yb = X, y
        else:
            idx = rng.choice(len(X), size=batch_size, replace=False)
            Xb, yb = X[idx], y[idx]
        loss, dW = softmax_loss(W, Xb, yb, reg)
        W = W - lr * dW
        losses.append(loss)
    return W, losses
