"""Bag of visual words: patches, codebook, assignments, pooling and the spatial pyramid."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.bovw import (
    BagOfVisualWords,
    assign_hard,
    assign_soft,
    extract_patches,
    fit_codebook,
    pool,
    spatial_pyramid,
)


def test_extract_patches_against_loops():
    rng = np.random.default_rng(0)
    img = rng.random((13, 11))
    p = extract_patches(img, size=4, stride=3, normalize=False)
    expected, centres = [], []
    for r in range(0, 13 - 4 + 1, 3):
        for c in range(0, 11 - 4 + 1, 3):
            expected.append(img[r:r + 4, c:c + 4].ravel())
            centres.append((r + 1.5, c + 1.5))
    np.testing.assert_array_equal(p.descriptors, np.array(expected))
    np.testing.assert_array_equal(p.centres, np.array(centres))
    assert p.image_shape == (13, 11)


def test_normalised_patches_ignore_brightness_and_contrast():
    rng = np.random.default_rng(1)
    img = rng.random((16, 16))
    a = extract_patches(img, 5, 2).descriptors
    b = extract_patches(3 * img + 40, 5, 2).descriptors
    np.testing.assert_allclose(a, b, atol=1e-6)  # eps in the divisor: differences of order 1e-8
    np.testing.assert_allclose(a.mean(1), 0, atol=1e-12)


def test_codebook_is_seeded_and_finds_obvious_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.concatenate([c + 0.1 * rng.normal(size=(40, 2)) for c in centres])
    cb1, cb2 = fit_codebook(X, 3, seed=3), fit_codebook(X, 3, seed=3)
    np.testing.assert_array_equal(cb1, cb2)
    # Match each true centre to its nearest word: every centre found within 0.1.
    d = np.sqrt(((centres[:, None, :] - cb1[None, :, :]) ** 2).sum(-1))
    assert sorted(d.argmin(1).tolist()) == [0, 1, 2]
    assert d.min(1).max() < 0.1


def _brute_nearest(D, C):
    return np.array([min(range(len(C)), key=lambda k: (np.sum((d - C[k]) ** 2), k)) for d in D])


@given(st.integers(1, 20), st.integers(1, 6), st.integers(0, 2**31))
def test_hard_assignment_is_one_hot_at_nearest_word(p, k, seed):
    rng = np.random.default_rng(seed)
    D, C = rng.normal(size=(p, 3)), rng.normal(size=(k, 3))
    codes = assign_hard(D, C)
    assert codes.shape == (p, k)
    assert (codes.sum(1) == 1).all() and set(np.unique(codes)) <= {0.0, 1.0}
    np.testing.assert_array_equal(codes.argmax(1), _brute_nearest(D, C))


@given(st.integers(1, 20), st.integers(1, 6), st.floats(0.01, 5), st.integers(0, 2**31))
def test_soft_assignment_rows_are_distributions_ordered_by_distance(p, k, beta, seed):
    rng = np.random.default_rng(seed)
    D, C = rng.normal(size=(p, 3)), rng.normal(size=(k, 3))
    codes = assign_soft(D, C, beta=beta)
    np.testing.assert_allclose(codes.sum(1), 1, rtol=1e-12)
    assert (codes >= 0).all()
    # Oracle: the formula with explicit loops.
    w = np.array([[np.exp(-beta * np.sum((d - c) ** 2)) for c in C] for d in D])
    with np.errstate(invalid="ignore"):
        expected = w / w.sum(1, keepdims=True)
    ok = np.isfinite(expected).all(1)  # far points underflow in the naive loop, not in ours
    np.testing.assert_allclose(codes[ok], expected[ok], rtol=1e-9, atol=1e-300)


def test_soft_assignment_tends_to_hard():
    rng = np.random.default_rng(2)
    D, C = rng.normal(size=(30, 3)), rng.normal(size=(5, 3))
    np.testing.assert_allclose(assign_soft(D, C, beta=1e4), assign_hard(D, C), atol=1e-6)


def test_sum_and_max_pooling():
    codes = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0.25, 0.75]])
    np.testing.assert_allclose(pool(codes, "sum"), [2 / 3, 0.25 / 3, 0.75 / 3])
    np.testing.assert_allclose(pool(codes, "sum", normalize=False), [2, 0.25, 0.75])
    np.testing.assert_allclose(pool(codes, "max"), [1, 0.25, 0.75])
    np.testing.assert_array_equal(pool(np.zeros((0, 3))), np.zeros(3))
    with pytest.raises(ValueError, match="method"):
        pool(codes, "mean")


def test_spatial_pyramid_against_loops_and_level_sums():
    rng = np.random.default_rng(0)
    img = rng.random((32, 32))
    p = extract_patches(img, 8, 4)
    C = rng.normal(size=(6, 64))
    codes = assign_hard(p.descriptors, C)
    v = spatial_pyramid(codes, p.centres, p.image_shape, levels=3)
    assert v.shape == (6 * (1 + 4 + 16),)
    # Level 0 is the plain histogram, and each level's cells add up to it.
    np.testing.assert_allclose(v[:6], pool(codes, "sum"))
    np.testing.assert_allclose(v[6:30].reshape(4, 6).sum(0), v[:6])
    np.testing.assert_allclose(v[30:].reshape(16, 6).sum(0), v[:6])
    # Level 1, cell by cell, by explicit membership tests.
    for cell, (r0, c0) in enumerate([(0, 0), (0, 16), (16, 0), (16, 16)]):
        inside = [(r0 <= r < r0 + 16) and (c0 <= c < c0 + 16) for r, c in p.centres]
        np.testing.assert_allclose(v[6 + 6 * cell: 12 + 6 * cell], codes[inside].sum(0) / len(codes))


def test_bag_of_visual_words_end_to_end_is_reproducible():
    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 16, 16))
    bow = BagOfVisualWords(n_words=5, patch_size=4, stride=4, levels=2, seed=1).fit(images)
    v = bow.transform(images)
    assert v.shape == (6, 5 * 5)
    np.testing.assert_allclose(v[:, :5].sum(1), 1)
    v2 = BagOfVisualWords(n_words=5, patch_size=4, stride=4, levels=2, seed=1).fit(images).transform(images)
    np.testing.assert_array_equal(v, v2)
    soft = BagOfVisualWords(n_words=5, patch_size=4, stride=4, assignment="soft", pooling="max", seed=1)
    s = soft.fit(images).transform(images)
    assert s.shape == (6, 5) and ((s > 0) & (s <= 1)).all()
    with pytest.raises(ValueError, match="call fit"):
        BagOfVisualWords(3).transform(images)
