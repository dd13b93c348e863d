"""Distances: p-norms against numpy/scipy, the vectorised pairwise distances against
scipy.spatial.distance, and the histogram distances against brute-force loops."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial import distance

from coursekit.distances import chi_squared, histogram_intersection, pairwise_sq_l2, pnorm

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@given(arrays(np.float64, st.integers(1, 12), elements=finite), st.sampled_from([1, 2, 3, 0.5, np.inf]))
def test_pnorm_matches_scipy_minkowski_distance_from_zero(x, p):
    # scipy's minkowski is the p-norm of the difference; p = inf is chebyshev.
    zero = np.zeros_like(x)
    expected = distance.chebyshev(x, zero) if np.isinf(p) else distance.minkowski(x, zero, p)
    # Tolerance: a few ulps of accumulated rounding in sums of up to 12 terms;
    # abs=1e-150 because |x|^p underflows to 0 for |x| below about 1e-154 (as in np.linalg.norm).
    assert pnorm(x, p) == pytest.approx(expected, rel=1e-12, abs=1e-150)


def test_pnorm_special_cases_and_axis():
    x = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]])
    assert pnorm(x, 2).tolist() == [5.0, 0.0]
    assert pnorm(x, 1).tolist() == [7.0, 0.0]
    assert pnorm(x, np.inf).tolist() == [4.0, 0.0]
    assert pnorm(x, 0).tolist() == [2, 0]
    assert pnorm(x, 2, axis=None) == 5.0


def test_l0_is_not_a_norm_it_ignores_scale():
    x = np.array([0.0, 0.5, 1.0, 0.0])
    assert pnorm(x, 0) == 2
    assert pnorm(10 * x, 0) == pnorm(x, 0)  # a norm would scale by 10
    assert pnorm(10 * x, 2) == pytest.approx(10 * pnorm(x, 2))


def test_pnorm_rejects_negative_p():
    with pytest.raises(ValueError, match="p must be"):
        pnorm(np.ones(3), -1)


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_pairwise_sq_l2_matches_scipy_cdist(m, n, d, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(m, d)) * 10, rng.normal(size=(n, d)) * 10
    expected = distance.cdist(A, B, "sqeuclidean")
    # Tolerance: the expansion |a|^2 - 2ab + |b|^2 loses digits relative to the
    # norms (about 1e-13 of |a|^2 + |b|^2), not relative to the distance itself.
    scale = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :]
    np.testing.assert_array_less(np.abs(pairwise_sq_l2(A, B) - expected), 1e-12 * scale + 1e-12)


def test_pairwise_sq_l2_zero_on_identical_rows_and_never_negative():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 7)) * 1e3
    d2 = pairwise_sq_l2(A, A)
    assert (d2 >= 0).all()
    assert np.abs(np.diag(d2)).max() < 1e-6 * (A**2).sum(1).max()


def test_pairwise_sq_l2_has_no_python_loop():
    # Documented design: one matrix product. A loop over 2000 x 2000 pairs in
    # Python would take seconds; the vectorised version takes milliseconds.
    import inspect

    import coursekit.distances as dist

    src = inspect.getsource(dist.pairwise_sq_l2)
    assert "for " not in src.split('"""')[-1]


def test_pairwise_sq_l2_checks_shapes():
    with pytest.raises(ValueError, match="A has 3 features but B has 4"):
        pairwise_sq_l2(np.zeros((2, 3)), np.zeros((2, 4)))


def _loop_intersection(h1, h2):
    return 1 - sum(min(a, b) for a, b in zip(h1, h2))


def _loop_chi2(h1, h2):
    total = 0.0
    for a, b in zip(h1, h2):
        if a + b > 0:
            total += (a - b) ** 2 / (a + b)
    return 0.5 * total


hist = arrays(np.float64, 6, elements=st.floats(0, 10, allow_nan=False))


@given(hist, hist)
def test_histogram_distances_match_loops(h1, h2):
    assert histogram_intersection(h1, h2) == pytest.approx(_loop_intersection(h1, h2), abs=1e-12)
    assert chi_squared(h1, h2) == pytest.approx(_loop_chi2(h1, h2), abs=1e-12)


@given(st.integers(0, 2**31))
def test_histogram_distances_on_normalised_histograms(seed):
    rng = np.random.default_rng(seed)
    h1, h2 = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
    for d in (histogram_intersection, chi_squared):
        assert 0 <= d(h1, h2) <= 1 + 1e-12
        assert d(h1, h1) == pytest.approx(0, abs=1e-12)
        assert d(h1, h2) == pytest.approx(d(h2, h1))


def test_histogram_distances_disjoint_and_empty_bins():
    a, b = np.array([0.5, 0.5, 0, 0]), np.array([0, 0, 0.25, 0.75])
    assert histogram_intersection(a, b) == 1.0
    assert chi_squared(a, b) == 1.0
    # 0/0 in the last bins counts as 0, not nan
    assert chi_squared(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0


def test_histogram_distances_broadcast_over_rows():
    rng = np.random.default_rng(1)
    H = rng.dirichlet(np.ones(5), size=4)
    q = rng.dirichlet(np.ones(5))
    assert np.allclose(chi_squared(H, q), [_loop_chi2(h, q) for h in H])
    assert np.allclose(histogram_intersection(H, q), [_loop_intersection(h, q) for h in H])


def test_histograms_must_be_non_negative():
    with pytest.raises(ValueError, match="non-negative"):
        chi_squared(np.array([-1.0, 1.0]), np.array([1.0, 1.0]))
