"""Softmax, softmax cross-entropy and sigmoid binary cross-entropy, each returning its gradient."""

from __future__ import annotations

import numpy as np

from ._validate import as_array, float_dtype
from .activations import sigmoid


def softmax(x, axis: int = -1):
    """Softmax ``exp(x_c) / sum_c' exp(x_c')`` along ``axis``.

    The maximum is subtracted first: the result is unchanged, and ``exp`` never
    overflows, whatever the magnitude of the scores.
    """
    x = np.asarray(x)
    x = x.astype(float_dtype(x), copy=False)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of softmax probabilities, and its gradient.

    Parameters
    ----------
    scores : array, shape (N, C)
        Unnormalised class scores.
    y : int array, shape (N,)
        Labels in ``[0, C)``.

    Returns
    -------
    loss : float
        ``-(1/N) sum_n log softmax(scores_n)[y_n]``.
    dscores : array, shape (N, C)
        ``(softmax(scores) - onehot(y)) / N``: prediction minus target.
    """
    fn = "softmax_cross_entropy"
    scores = as_array(fn, "scores", scores, 2, "(N, C)")
    y = np.asarray(y)
    n, c = scores.shape
    if y.shape != (n,):
        raise ValueError(f"{fn}: y must have shape ({n},) to match scores.shape={scores.shape}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{fn}: y must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= c):
        raise ValueError(f"{fn}: labels must lie in [0, {c}), got values from {y.min()} to {y.max()}")
    scores = scores.astype(float_dtype(scores), copy=False)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    return float(loss), dscores


def sigmoid_binary_cross_entropy(logits, t):
    """Mean binary cross-entropy of ``sigmoid(logits)`` against targets ``t``, and its gradient.

    Parameters
    ----------
    logits : array, any shape
        Pre-activations ``a``; the prediction is ``x = sigmoid(a)``.
    t : array, same shape
        Targets in [0, 1].

    Returns
    -------
    loss : float
        Mean over all elements of ``-[t log x + (1 - t) log(1 - x)]``, computed as
        ``max(a, 0) - a t + log(1 + e^-|a|)`` so that no log of 0 occurs.
    dlogits : array
        ``(x - t) / numel``: prediction error, averaged.
    """
    fn = "sigmoid_binary_cross_entropy"
    logits = np.asarray(logits)
    t = np.asarray(t)
    if logits.shape != t.shape:
        raise ValueError(f"{fn}: t has shape {t.shape} but logits have shape {logits.shape}")
    a = logits.astype(float_dtype(logits), copy=False)
    loss = np.maximum(a, 0) - a * t + np.log1p(np.exp(-np.abs(a)))
    dlogits = ((sigmoid(a) - t) / max(a.size, 1)).astype(a.dtype, copy=False)
    return float(loss.mean()), dlogits
