"""The k-nearest-neighbour classifier: transfer the label of the nearest training examples."""

from __future__ import annotations

import numpy as np

from .distances import pairwise_sq_l2

__all__ = ["KNearestNeighbor"]


class KNearestNeighbor:
    """Classify by a majority vote of the ``k`` nearest training examples (Euclidean).

    Training only memorises the data; all the work happens in :meth:`predict`,
    which computes the distances from every test point to every training point
    with :func:`coursekit.distances.pairwise_sq_l2`.

    Ties are broken deterministically:

    * between neighbours at the same distance, the one stored first in the
      training set counts as nearer (a stable sort);
    * between labels with the same number of votes among the ``k`` neighbours,
      the smaller label wins.

    Parameters
    ----------
    k : int
        Number of neighbours that vote; ``k = 1`` is the nearest-neighbour rule.

    Examples
    --------
    >>> knn = KNearestNeighbor(k=1).fit(np.array([[0.0], [1.0]]), np.array([3, 7]))
    >>> knn.predict(np.array([[0.2], [0.9]])).tolist()
    [3, 7]
    """

    def __init__(self, k: int = 1):
        if int(k) != k or k < 1:
            raise ValueError(f"KNearestNeighbor: k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.X_train: np.ndarray | None = None
        self.y_train: np.ndarray | None = None

    def fit(self, X, y) -> "KNearestNeighbor":
        """Memorise the training set. ``X: (N, ...)`` is flattened to ``(N, D)``; ``y: (N,)`` integer labels."""
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim < 2:
            raise ValueError(f"KNearestNeighbor.fit: X must have shape (N, D) or (N, C, H, W), got {X.shape}")
        if y.shape != (len(X),):
            raise ValueError(f"KNearestNeighbor.fit: y must have shape ({len(X)},) to match X.shape={X.shape}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"KNearestNeighbor.fit: y must hold integer labels, got dtype {y.dtype}")
        if y.size and y.min() < 0:
            raise ValueError("KNearestNeighbor.fit: labels must be non-negative")
        if self.k > len(X):
            raise ValueError(f"KNearestNeighbor.fit: k={self.k} is larger than the training set ({len(X)} examples)")
        self.X_train = X.reshape(len(X), -1)
        self.y_train = y
        return self

    def distances(self, X) -> np.ndarray:
        """Squared Euclidean distances ``(M, N)`` from each test point to each training point."""
        if self.X_train is None:
            raise ValueError("KNearestNeighbor: call fit before predict")
        X = np.asarray(X)
        return pairwise_sq_l2(X.reshape(len(X), -1), self.X_train)

    def kneighbors(self, X) -> np.ndarray:
        """Indices ``(M, k)`` of the k nearest training examples, nearest first."""
        d2 = self.distances(X)
        return np.argsort(d2, axis=1, kind="stable")[:, : self.k]

    def predict(self, X) -> np.ndarray:
        """Labels ``(M,)``: the most common label among the k nearest, the smaller one on a tie."""
        labels = self.y_train[self.kneighbors(X)]  # (M, k)
        n_labels = int(self.y_train.max()) + 1
        votes = np.zeros((len(labels), n_labels), dtype=np.int64)
        np.add.at(votes, (np.arange(len(labels))[:, None], labels), 1)
        return votes.argmax(axis=1)  # argmax returns the first (smallest) label among the tied maxima
