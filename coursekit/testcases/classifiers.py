"""Hidden-test cases for homework 1 (integral image, norms, distances, k-NN, softmax loss).

Each generator takes a ``np.random.Generator`` and returns a list of cases whose
*features* are fixed: every call has a batch of at least two, non-square shapes,
exact ties, empty histogram bins and scores that overflow ``exp``. The generator
only draws the values, so no seed can skip the case that catches a bug. Each case
carries a ``label`` that a failure message prints, so a student can rebuild it.
"""
from __future__ import annotations

import numpy as np

from coursekit.knn import KNearestNeighbor

__all__ = ["integral_image_cases", "pnorm_cases", "pairwise_cases", "knn_plain_cases", "knn_tie_cases", "knn_vote",
           "knn_own_rule", "knn_expectations",
           "histogram_cases", "softmax_loss_cases"]


def _hw(rng: np.random.Generator, low: int = 2, high: int = 7) -> tuple:
    """Two different sizes, so that a transposed axis shows."""
    h = int(rng.integers(low, high))
    w = h + int(rng.integers(1, 4))
    return (h, w) if rng.random() < 0.5 else (w, h)


def integral_image_cases(rng: np.random.Generator) -> list:
    """Non-square float, uint8 (sums far above 255) and signed-integer images."""
    shape = _hw(rng)
    return [
        {"label": f"float64 image {shape}", "image": rng.uniform(0, 255, size=shape)},
        {"label": f"uint8 image {_hw(rng, 3)}", "image": rng.integers(100, 256, size=_hw(rng, 3)).astype(np.uint8)},
        {"label": f"int64 image with negative pixels {_hw(rng)}", "image": rng.integers(-50, 50, size=_hw(rng))},
    ]


def _with_zeros_and_negatives(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Entries with exact zeros (a different number per row) and each row's largest |x| negative."""
    x = rng.standard_normal(shape) * rng.choice([0.5, 3.0])
    rows = x.reshape(-1, shape[-1])
    for i, row in enumerate(rows):
        row[rng.permutation(shape[-1])[: 1 + i % (shape[-1] - 1)]] = 0.0
        big = int(np.abs(row).argmax())
        row[big] = -abs(row[big]) - 0.5
    return rows.reshape(shape)


def pnorm_cases(rng: np.random.Generator) -> list:
    """Every kind of p on a batch of rows with zeros and negative entries, and one 3-D batch."""
    n, d = int(rng.integers(2, 6)), int(rng.integers(3, 8))
    cases = []
    for p in (1, 2, 3, 0.5, np.inf, 0):
        cases.append({"label": f"p={p}, x of shape {(n, d)}", "x": _with_zeros_and_negatives(rng, (n, d)), "p": p})
    shape = (2, int(rng.integers(2, 4)), d)
    for p in (2, 0):
        cases.append({"label": f"p={p}, x of shape {shape}", "x": _with_zeros_and_negatives(rng, shape), "p": p})
    return cases


def pairwise_cases(rng: np.random.Generator) -> list:
    """Four pairs A, B of different lengths; every row of the shorter one repeats in the longer, far from 0.

    Expanding the square for identical rows of large norm rounds to a small negative
    value for some of them in most calls, so over four calls unclipped code shows a
    negative squared distance (measured: on none of 2000 seeds did all four stay >= 0).
    """
    cases = []
    for k in range(4):
        m, d = int(rng.integers(8, 15)), int(rng.integers(8, 21))
        n = m + int(rng.integers(1, 5))
        A = rng.standard_normal((m, d)) + rng.uniform(20, 60, size=d)
        B = np.concatenate([A, rng.standard_normal((n - m, d)) + rng.uniform(20, 60, size=d)])
        B = B[rng.permutation(n)]
        A, B = (B, A) if k % 2 else (A, B)  # every other case has more rows in A
        cases.append({"label": f"A {A.shape}, B {B.shape}, with repeated rows", "A": A, "B": B})
    return cases


def knn_vote(d2: np.ndarray, y_train: np.ndarray, k: int) -> np.ndarray:
    """The homework's rule on given squared distances: stable nearest-first order, smaller label on a tie."""
    nearest = np.argsort(np.asarray(d2), axis=1, kind="stable")[:, :k]
    labels = np.asarray(y_train)[nearest]
    votes = (labels[:, :, None] == np.arange(int(np.max(y_train)) + 1)).sum(axis=1)
    return votes.argmax(axis=1)


def knn_plain_cases(rng: np.random.Generator) -> list:
    """Continuous points (no equal distances) in two classes, k = 1, 3, 5 (odd: no equal votes), 30 to 40
    test points each, so that the k-th neighbour changes many predictions."""
    cases = []
    for k in (1, 3, 5):
        n, m, d = int(rng.integers(20, 41)), int(rng.integers(30, 41)), int(rng.integers(2, 6))
        cases.append({"label": f"k={k}, X_train ({n}, {d}), X_test ({m}, {d})", "k": k,
                      "X_train": rng.standard_normal((n, d)), "y_train": rng.integers(0, 2, size=n),
                      "X_test": rng.standard_normal((m, d))})
    return cases


def knn_own_rule(pairwise_sq_l2, X_train, y_train, X_test, k: int) -> list:
    """``[(label, labels)]``: the homework's rule applied to the student's own ``pairwise_sq_l2`` (whose bugs
    its own tests charge), or ``[]`` if those distances cannot be computed."""
    try:
        own_d2 = pairwise_sq_l2(X_test.reshape(len(X_test), -1), X_train.reshape(len(X_train), -1))
        return [("the k-NN rule on your pairwise_sq_l2", knn_vote(own_d2, y_train, k))]
    except Exception:  # noqa: BLE001 - the student's distances fail: their own tests say so
        return []


def knn_expectations(case: dict, pairwise_sq_l2) -> list:
    """``(label, labels)`` pairs a correct ``predict`` may return: the reference's, and :func:`knn_own_rule`'s."""
    k, X_train, y_train, X_test = case["k"], case["X_train"], case["y_train"], case["X_test"]
    return [("the reference", KNearestNeighbor(k).fit(X_train, y_train).predict(X_test)),
            *knn_own_rule(pairwise_sq_l2, X_train, y_train, X_test, k)]


def knn_tie_cases(rng: np.random.Generator) -> list:
    """Training sets of 40 to 80 points on a 3x3 grid (exact distance ties everywhere), even and odd k.

    With many equal distances at the k-th neighbour, an unstable sort picks other
    neighbours; with even k, equal vote counts are frequent. One case stores the
    points as (N, 1, 2) "images", which fit must flatten.
    """
    cases = []
    for k, shape in ((1, (2,)), (2, (2,)), (3, (1, 2)), (4, (2,)), (6, (2,))):
        n = int(rng.integers(40, 81))
        X_train = rng.integers(0, 3, size=(n, *shape)).astype(float)
        X_test = rng.integers(0, 3, size=(int(rng.integers(20, 31)), *shape)).astype(float)
        y_train = rng.integers(0, int(rng.integers(3, 6)), size=n)
        cases.append({"label": f"k={k}, {n} training points of shape {shape} on a grid", "k": k,
                      "X_train": X_train, "y_train": y_train, "X_test": X_test})
    return cases


def _histograms(rng: np.random.Generator, shape: tuple, empty: np.ndarray) -> np.ndarray:
    h = rng.random(shape) + 0.05
    h = h * (rng.random(shape) < 0.7)
    h[..., empty] = 0.0
    h[..., 0] += 0.1  # never all empty
    return h / h.sum(axis=-1, keepdims=True)


def histogram_cases(rng: np.random.Generator) -> list:
    """Pairs of histograms, one shape pair broadcasting; bin 1 is empty in both, bin 2 in one only."""
    m = int(rng.integers(4, 10))
    cases = []
    for s1, s2 in (((m,), (m,)), ((4, m), (4, m)), ((3, 1, m), (1, 2, m))):
        h1 = _histograms(rng, s1, np.array([1]))
        h2 = _histograms(rng, s2, np.array([1, 2]))
        cases.append({"label": f"h1 {s1}, h2 {s2}, bins empty in both", "h1": h1, "h2": h2})
    return cases


def _far_apart_rows(rng: np.random.Generator, n: int, d: int, c: int) -> tuple:
    """W, X whose first row of scores spans more than 1600 with a maximum above 800, and whose second
    row's maximum is at least 790 lower; the first label sits on the lowest score."""
    W = rng.standard_normal((c, d))
    X = rng.standard_normal((n, d))
    s0 = W @ X[0]
    W *= 1700.0 / (s0.max() - s0.min())
    s0 = W @ X[0]
    if s0.max() < -s0.min():
        X[0] = -X[0]
    X[1] = 0.01 * X[0]
    y = rng.integers(0, c, size=n)
    y[0] = int((W @ X[0]).argmin())
    y[1] = (y[0] + 1) % c  # at least two different labels
    return W, X, y


def softmax_loss_cases(rng: np.random.Generator) -> list:
    """Batches of 2 to 8 with C != D and reg >= 0.1; the last case has scores beyond exp's range."""
    cases = []
    for big in (False, False, True):
        n, c = int(rng.integers(2, 9)), int(rng.integers(3, 7))
        d = c + int(rng.integers(1, 4))
        reg = float(rng.uniform(0.1, 0.5))
        if big:
            W, X, y = _far_apart_rows(rng, n, d, c)
        else:
            W, X = rng.standard_normal((c, d)) * 2, rng.standard_normal((n, d))
            y = rng.integers(0, c, size=n)
            y[:2] = rng.permutation(c)[:2]
        label = f"W {W.shape}, X {X.shape}, reg={reg:.3f}" + (", scores in the thousands" if big else "")
        cases.append({"label": label, "W": W, "X": X, "y": y, "reg": reg, "big": big})
    return cases
