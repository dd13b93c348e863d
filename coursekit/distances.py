"""Distances between feature vectors and between histograms.

* :func:`pnorm` - the p-norm ``||x||_p = (sum_i |x_i|^p)^(1/p)``, with ``p = inf``
  (the largest entry) and ``p = 0`` (the number of non-zero entries);
* :func:`pairwise_sq_l2` - all squared Euclidean distances between two sets of
  vectors, as one matrix product (no Python loops);
* :func:`histogram_intersection` and :func:`chi_squared` - two distances for
  normalised histograms, as used with bags of visual words.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pnorm", "pairwise_sq_l2", "histogram_intersection", "chi_squared"]


def pnorm(x, p: float = 2, axis: int | None = -1):
    """The p-norm of ``x`` along ``axis``: ``(sum_i |x_i|^p)^(1/p)``.

    Parameters
    ----------
    x : array, shape (..., D)
        Vectors; with ``axis=None`` the whole array is one vector.
    p : float
        ``p >= 1`` gives a norm (1: sum of absolute values, 2: Euclidean length,
        ``np.inf``: largest absolute value). ``0 < p < 1`` is allowed and gives
        the same formula, which is not a norm either (the triangle inequality fails).
        ``p = 0`` counts the non-zero entries ("L0").

    Returns
    -------
    float or array, shape (...)
        One value per vector.

    Notes
    -----
    The "L0 norm" is not a norm: it ignores scale, ``||2x||_0 = ||x||_0``,
    whereas a norm must satisfy ``||a x|| = |a| ||x||``. It is the limit of
    ``sum_i |x_i|^p`` (without the root) as ``p -> 0``, hence the name.
    """
    x = np.asarray(x)
    if p < 0:
        raise ValueError(f"pnorm: p must be >= 0 (or inf), got {p}")
    a = np.abs(x.astype(np.result_type(x, np.float64), copy=False))
    if p == 0:
        return np.count_nonzero(a, axis=axis)
    if np.isinf(p):
        return a.max(axis=axis)
    if p == 1:
        return a.sum(axis=axis)
    if p == 2:
        return np.sqrt((a * a).sum(axis=axis))
    return (a**p).sum(axis=axis) ** (1.0 / p)


def pairwise_sq_l2(A, B):
    """Squared Euclidean distances between every row of ``A`` and every row of ``B``.

    Uses ``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2``: one matrix product and two
    broadcast adds, no Python loop. Rounding can make the expansion slightly
    negative for (near-)identical rows, so the result is clipped at 0.

    Parameters
    ----------
    A : array, shape (M, D)
    B : array, shape (N, D)

    Returns
    -------
    D2 : array, shape (M, N), float64
        ``D2[i, j] = sum_d (A[i, d] - B[j, d])^2``.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"pairwise_sq_l2: A and B must be 2-D (M, D) and (N, D), got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"pairwise_sq_l2: A has {A.shape[1]} features but B has {B.shape[1]} (A.shape={A.shape}, B.shape={B.shape})")
    sq_a = np.einsum("ij,ij->i", A, A)
    sq_b = np.einsum("ij,ij->i", B, B)
    d2 = sq_a[:, None] - 2.0 * (A @ B.T) + sq_b[None, :]
    return np.maximum(d2, 0.0)


def _histograms(fn: str, h1, h2):
    h1 = np.asarray(h1, dtype=np.float64)
    h2 = np.asarray(h2, dtype=np.float64)
    if h1.shape[-1:] != h2.shape[-1:]:
        raise ValueError(f"{fn}: h1 and h2 must have the same number of bins, got shapes {h1.shape} and {h2.shape}")
    if (h1 < 0).any() or (h2 < 0).any():
        raise ValueError(f"{fn}: histograms must be non-negative")
    return h1, h2


def histogram_intersection(h1, h2):
    """Histogram intersection distance ``1 - sum_m min(h1[m], h2[m])``.

    For histograms normalised to sum to 1 the result lies in [0, 1]: 0 for
    identical histograms, 1 for histograms with no bin in common.

    Parameters
    ----------
    h1, h2 : array, shape (..., M)
        Histograms over M bins (broadcast against each other).

    Returns
    -------
    float or array, shape (...)
    """
    h1, h2 = _histograms("histogram_intersection", h1, h2)
    return 1.0 - np.minimum(h1, h2).sum(axis=-1)


def chi_squared(h1, h2):
    """Chi-squared distance ``1/2 sum_m (h1[m] - h2[m])^2 / (h1[m] + h2[m])``.

    Bins that are empty in both histograms contribute 0 (the term 0/0 is
    treated as 0). For normalised histograms the result lies in [0, 1].
    Differences in rare bins weigh more than the same differences in common bins.

    Parameters
    ----------
    h1, h2 : array, shape (..., M)

    Returns
    -------
    float or array, shape (...)
    """
    h1, h2 = _histograms("chi_squared", h1, h2)
    num = (h1 - h2) ** 2
    den = h1 + h2
    terms = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)
    return 0.5 * terms.sum(axis=-1)
