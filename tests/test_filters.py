"""Classic filters: the syllabus's integral-image example, kernel properties."""

import numpy as np
import pytest

from coursekit.filters import (
    LAPLACIAN_8,
    VERTICAL_EDGE,
    box_kernel,
    box_sum,
    gaussian_kernel,
    integral_image,
    local_contrast_normalize,
    sharpen_kernel,
)
from coursekit.layers import correlate2d

SYLLABUS_IMAGE = np.array([[1, 2, 2, 4, 1], [3, 4, 1, 5, 2], [2, 3, 3, 2, 4], [4, 1, 5, 4, 6], [6, 3, 2, 1, 3]])


def test_integral_image_worked_example():
    ii = integral_image(SYLLABUS_IMAGE)
    assert ii.shape == (6, 6)
    assert ii[0].tolist() == [0] * 6 and ii[:, 0].tolist() == [0] * 6
    assert ii[1].tolist() == [0, 1, 3, 5, 9, 10]
    assert ii[-1].tolist() == [0, 16, 29, 42, 58, 74]


def test_box_sum_agrees_with_direct_sums_everywhere():
    ii = integral_image(SYLLABUS_IMAGE)
    for top in range(5):
        for bottom in range(top + 1, 6):
            for left in range(5):
                for right in range(left + 1, 6):
                    assert box_sum(ii, top, left, bottom, right) == SYLLABUS_IMAGE[top:bottom, left:right].sum()


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.3])
def test_gaussian_kernel_is_normalised_symmetric_and_follows_the_formula(sigma):
    g = gaussian_kernel(sigma)
    r = int(np.ceil(3 * sigma))
    assert g.shape == (2 * r + 1, 2 * r + 1)
    assert g.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, ::-1])
    # Ratio of two samples is the formula's, whatever the normalisation.
    assert g[r, r + 1] / g[r, r] == pytest.approx(np.exp(-1 / (2 * sigma**2)))


def test_kernels_preserve_or_cancel_flat_images():
    flat = np.full((9, 9), 7.0)
    for k in (box_kernel(3), gaussian_kernel(1.0), sharpen_kernel(3)):
        np.testing.assert_allclose(correlate2d(flat, k), 7.0)  # weights sum to 1
    for k in (VERTICAL_EDGE, LAPLACIAN_8):
        np.testing.assert_allclose(correlate2d(flat, k), 0.0, atol=1e-12)  # weights sum to 0


def test_vertical_edge_kernel_sign_gives_edge_polarity():
    step = np.zeros((5, 6))
    step[:, 3:] = 1  # dark to bright, left to right
    response = correlate2d(step, VERTICAL_EDGE)
    assert response.max() == 3 and response.min() == 0
    assert correlate2d(step[:, ::-1], VERTICAL_EDGE).min() == -3


def test_local_contrast_normalisation_equalises_contrast():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((40, 40))
    img[:, 20:] *= 10  # right half has ten times the contrast
    # A small floor: each region is divided by its own local std, so contrasts meet.
    out = local_contrast_normalize(img, c=1e-3).out
    left, right = out[5:-5, 5:15].std(), out[5:-5, 25:35].std()
    assert 0.5 < right / left < 2  # before: ratio 10
    # The default floor (mean local std) keeps the low-contrast half from being amplified.
    default = local_contrast_normalize(img)
    assert default.out[5:-5, 5:15].std() < left / 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(0)
    with pytest.raises(ValueError, match="2-D"):
        integral_image(np.zeros((2, 2, 2)))
