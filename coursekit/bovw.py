"""Bag of visual words: the hand-made image representation that CNNs replaced.

The pipeline, one function per step:

1. :func:`extract_patches` - cut small patches on a regular grid and describe
   each one by its (contrast-normalised) pixel values;
2. :func:`fit_codebook` - cluster many descriptors with k-means; the centres
   are the *visual words*;
3. :func:`assign_hard` / :func:`assign_soft` - code every descriptor by its
   nearest word (a one-hot row) or by a weight for every word;
4. :func:`pool` - combine the codes of one image into one vector, by summing
   (a histogram of word counts) or by taking the maximum;
5. :func:`spatial_pyramid` - pool separately over the cells of 1x1, 2x2,
   4x4, ... grids and concatenate, so the vector also says *where* words occur.

:class:`BagOfVisualWords` chains the steps with ``fit`` / ``transform``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .distances import pairwise_sq_l2

__all__ = [
    "Patches",
    "extract_patches",
    "fit_codebook",
    "assign_hard",
    "assign_soft",
    "pool",
    "spatial_pyramid",
    "BagOfVisualWords",
]


class Patches(NamedTuple):
    """Descriptors of the patches of one image and where the patches are."""

    descriptors: np.ndarray  # (P, size * size)
    centres: np.ndarray  # (P, 2): (row, col) of each patch centre, in pixels
    image_shape: tuple[int, int]  # (H, W) of the image they came from


def extract_patches(image, size: int = 8, stride: int = 4, *, normalize: bool = True, eps: float = 1e-8) -> Patches:
    """Cut ``size`` x ``size`` patches every ``stride`` pixels and flatten them.

    Parameters
    ----------
    image : array, shape (H, W)
        A grayscale image.
    size, stride : int
        Patch side and step of the grid.
    normalize : bool
        Subtract each patch's mean and divide by its standard deviation (plus
        ``eps``), so that the descriptor ignores brightness and contrast and keeps shape.

    Returns
    -------
    Patches
        ``descriptors (P, size * size)`` float64, ``centres (P, 2)`` and the image shape,
        with ``P = ((H - size) // stride + 1) * ((W - size) // stride + 1)``.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"extract_patches: image must be 2-D (H, W), got shape {image.shape}")
    if size < 1 or stride < 1:
        raise ValueError(f"extract_patches: size and stride must be positive, got size={size}, stride={stride}")
    h, w = image.shape
    if size > h or size > w:
        raise ValueError(f"extract_patches: patch size {size} does not fit in an image of shape {image.shape}")
    windows = sliding_window_view(image, (size, size))[::stride, ::stride]  # (Ph, Pw, size, size), a view
    ph, pw = windows.shape[:2]
    desc = windows.reshape(ph * pw, size * size).copy()
    if normalize:
        desc -= desc.mean(axis=1, keepdims=True)
        desc /= desc.std(axis=1, keepdims=True) + eps
    rows, cols = np.meshgrid(np.arange(ph) * stride, np.arange(pw) * stride, indexing="ij")
    centres = np.stack([rows.ravel(), cols.ravel()], axis=1) + (size - 1) / 2
    return Patches(desc, centres, (h, w))


def fit_codebook(descriptors, n_words: int, *, seed: int = 0, n_init: int = 3, max_iter: int = 100) -> np.ndarray:
    """Cluster descriptors with k-means (``sklearn.cluster.KMeans``); the centres are the words.

    Parameters
    ----------
    descriptors : array, shape (P, D)
        Descriptors pooled from many training images.
    n_words : int
        Size K of the vocabulary.
    seed : int
        Seeds k-means' initialisation, so the codebook is reproducible.

    Returns
    -------
    codebook : array, shape (K, D)
    """
    from sklearn.cluster import KMeans

    descriptors = np.asarray(descriptors, dtype=np.float64)
    if descriptors.ndim != 2:
        raise ValueError(f"fit_codebook: descriptors must be 2-D (P, D), got shape {descriptors.shape}")
    if not 1 <= n_words <= len(descriptors):
        raise ValueError(f"fit_codebook: n_words must lie in [1, {len(descriptors)}] (the number of descriptors), got {n_words}")
    km = KMeans(n_clusters=n_words, n_init=n_init, max_iter=max_iter, random_state=seed)
    km.fit(descriptors)
    return km.cluster_centers_


def _check_codebook(fn, descriptors, codebook):
    descriptors = np.asarray(descriptors, dtype=np.float64)
    codebook = np.asarray(codebook, dtype=np.float64)
    if descriptors.ndim != 2 or codebook.ndim != 2 or descriptors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"{fn}: descriptors (P, D) and codebook (K, D) must agree in D, "
            f"got descriptors.shape={descriptors.shape}, codebook.shape={codebook.shape}"
        )
    return descriptors, codebook


def assign_hard(descriptors, codebook) -> np.ndarray:
    """Hard assignment: each descriptor votes for its nearest word only.

    Returns
    -------
    codes : array, shape (P, K)
        One-hot rows; on a distance tie the word with the smaller index wins.
    """
    descriptors, codebook = _check_codebook("assign_hard", descriptors, codebook)
    nearest = pairwise_sq_l2(descriptors, codebook).argmin(axis=1)
    codes = np.zeros((len(descriptors), len(codebook)))
    codes[np.arange(len(descriptors)), nearest] = 1.0
    return codes


def assign_soft(descriptors, codebook, *, beta: float = 1.0) -> np.ndarray:
    """Soft assignment: each descriptor spreads one vote over all words.

    The weight of word ``k`` is ``exp(-beta ||d - c_k||^2)``, normalised over the
    words (a softmax of ``-beta`` times the squared distances). Large ``beta``
    approaches hard assignment; small ``beta`` spreads the vote evenly.

    Returns
    -------
    codes : array, shape (P, K)
        Non-negative rows that sum to 1.
    """
    if beta <= 0:
        raise ValueError(f"assign_soft: beta must be positive, got {beta}")
    descriptors, codebook = _check_codebook("assign_soft", descriptors, codebook)
    logits = -beta * pairwise_sq_l2(descriptors, codebook)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    return w / w.sum(axis=1, keepdims=True)


def pool(codes, method: str = "sum", *, normalize: bool = True) -> np.ndarray:
    """Combine the codes of one image (or one region) into one vector.

    Parameters
    ----------
    codes : array, shape (P, K)
    method : {"sum", "max"}
        ``"sum"``: add the codes, a histogram of (soft) word counts. ``"max"``:
        the largest code of each word, "is the word present anywhere?".
    normalize : bool
        For ``"sum"``, divide by the number of descriptors P, so that the
        histogram sums to 1 with hard or soft codes. Max pooling is already in [0, 1].

    Returns
    -------
    array, shape (K,)
        Zeros when there are no descriptors.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"pool: codes must be 2-D (P, K), got shape {codes.shape}")
    if method not in ("sum", "max"):
        raise ValueError(f"pool: method must be 'sum' or 'max', got {method!r}")
    if len(codes) == 0:
        return np.zeros(codes.shape[1])
    if method == "max":
        return codes.max(axis=0)
    total = codes.sum(axis=0)
    return total / len(codes) if normalize else total


def spatial_pyramid(codes, centres, image_shape, *, levels: int = 2, method: str = "sum") -> np.ndarray:
    """Pool codes over the cells of a pyramid of grids and concatenate (Lazebnik et al. 2006).

    Level ``l`` (``l = 0 .. levels - 1``) splits the image into a ``2^l x 2^l`` grid;
    each descriptor belongs to the cell that holds its centre.

    Parameters
    ----------
    codes : array, shape (P, K)
    centres : array, shape (P, 2)
        (row, col) of each descriptor, as returned by :func:`extract_patches`.
    image_shape : (H, W)
    levels : int
        Number of pyramid levels; 1 gives the plain bag of words.
    method : {"sum", "max"}
        With ``"sum"`` each cell's histogram is divided by the number of
        descriptors in the *whole image*, so every level sums to 1 and the
        cells of a level add up to the level above.

    Returns
    -------
    array, shape (K * sum_l 4^l,)
        Level 0 first, then the cells of each level in row-major order.
    """
    codes = np.asarray(codes, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    if codes.ndim != 2 or centres.shape != (len(codes), 2):
        raise ValueError(f"spatial_pyramid: codes (P, K) and centres (P, 2) must agree, got {codes.shape} and {centres.shape}")
    if levels < 1:
        raise ValueError(f"spatial_pyramid: levels must be >= 1, got {levels}")
    h, w = image_shape
    n = len(codes)
    parts = []
    for level in range(levels):
        cells = 2**level
        r = np.clip((centres[:, 0] * cells / h).astype(int), 0, cells - 1)
        c = np.clip((centres[:, 1] * cells / w).astype(int), 0, cells - 1)
        cell_of = r * cells + c
        for cell in range(cells * cells):
            part = pool(codes[cell_of == cell], method, normalize=False)
            parts.append(part / n if method == "sum" and n else part)
    return np.concatenate(parts)


class BagOfVisualWords:
    """Images -> bag-of-visual-words vectors, with a codebook learned by k-means.

    Parameters
    ----------
    n_words : int
        Vocabulary size K.
    patch_size, stride : int
        Grid of patches, see :func:`extract_patches`.
    assignment : {"hard", "soft"}
    beta : float
        Softness of ``"soft"`` assignment, see :func:`assign_soft`.
    pooling : {"sum", "max"}
    levels : int
        Spatial pyramid levels; 1 is the orderless bag of words.
    seed : int
        Seeds the sampling of training descriptors and k-means.
    max_descriptors : int
        At most this many descriptors (sampled at random) train the codebook.
    """

    def __init__(self, n_words: int = 32, *, patch_size: int = 8, stride: int = 4, assignment: str = "hard",
                 beta: float = 1.0, pooling: str = "sum", levels: int = 1, seed: int = 0,
                 max_descriptors: int = 20_000):  # fmt: skip
        if assignment not in ("hard", "soft"):
            raise ValueError(f"BagOfVisualWords: assignment must be 'hard' or 'soft', got {assignment!r}")
        if pooling not in ("sum", "max"):
            raise ValueError(f"BagOfVisualWords: pooling must be 'sum' or 'max', got {pooling!r}")
        self.n_words, self.patch_size, self.stride = n_words, patch_size, stride
        self.assignment, self.beta, self.pooling, self.levels = assignment, beta, pooling, levels
        self.seed, self.max_descriptors = seed, max_descriptors
        self.codebook: np.ndarray | None = None

    @staticmethod
    def _gray(images):
        images = np.asarray(images)
        if images.ndim == 4:  # (N, C, H, W): average the channels
            images = images.mean(axis=1)
        if images.ndim != 3:
            raise ValueError(f"BagOfVisualWords: images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
        return images

    def _patches(self, image) -> Patches:
        return extract_patches(image, self.patch_size, self.stride)

    def fit(self, images) -> "BagOfVisualWords":
        """Learn the codebook from the patches of ``images`` (N, H, W) or (N, C, H, W)."""
        desc = np.concatenate([self._patches(im).descriptors for im in self._gray(images)])
        rng = np.random.default_rng(self.seed)
        if len(desc) > self.max_descriptors:
            desc = desc[rng.choice(len(desc), self.max_descriptors, replace=False)]
        self.codebook = fit_codebook(desc, self.n_words, seed=self.seed)
        return self

    def encode(self, image) -> np.ndarray:
        """Codes ``(P, K)`` of one image's patches."""
        if self.codebook is None:
            raise ValueError("BagOfVisualWords: call fit before transform")
        return self._codes(self._patches(image).descriptors)

    def _codes(self, d):
        if self.assignment == "hard":
            return assign_hard(d, self.codebook)
        return assign_soft(d, self.codebook, beta=self.beta)

    def transform(self, images) -> np.ndarray:
        """Vectors ``(N, K * sum_l 4^l)`` for ``images`` (N, H, W) or (N, C, H, W)."""
        out = []
        for im in self._gray(images):
            p = self._patches(im)
            if self.codebook is None:
                raise ValueError("BagOfVisualWords: call fit before transform")
            out.append(spatial_pyramid(self._codes(p.descriptors), p.centres, p.image_shape, levels=self.levels, method=self.pooling))
        return np.stack(out)
