"""correlation_matrix against the convolution layer it writes out (an independent implementation)."""

import numpy as np
import pytest

from coursekit.layers import conv2d_backward, conv2d_forward, correlate2d
from coursekit.toeplitz import correlation_matrix


@pytest.mark.parametrize("shape, k, stride, padding", [((5, 6), 3, 1, 0), ((4, 4), 3, 2, 1), ((7, 5), 2, 3, 2)])
def test_matrix_product_equals_the_conv_layer_and_its_transpose_is_the_backward(shape, k, stride, padding):
    rng = np.random.default_rng(0)
    x, kernel = rng.normal(size=shape), rng.normal(size=(k, k))
    T = correlation_matrix(kernel, shape, stride=stride, padding=padding)
    out, cache = conv2d_forward(x[None, None], kernel[None, None], np.zeros(1), stride=stride, padding=padding,
                                strict=False)
    np.testing.assert_allclose(T @ x.ravel(), out.ravel(), atol=1e-12)
    dout = rng.normal(size=out.shape)
    dx, dw, _ = conv2d_backward(dout, cache)
    np.testing.assert_allclose(T.T @ dout.ravel(), dx.ravel(), atol=1e-12)


def test_one_dimensional_signal_gives_the_banded_matrix():
    T = correlation_matrix(np.array([[1.0, 2.0, 3.0]]), (1, 5))
    expected = np.array([[1, 2, 3, 0, 0], [0, 1, 2, 3, 0], [0, 0, 1, 2, 3]], dtype=float)
    np.testing.assert_array_equal(T, expected)
    x = np.arange(5.0)
    np.testing.assert_allclose(T @ x, correlate2d(x[None], np.array([[1.0, 2.0, 3.0]]))[0])


def test_rejects_a_kernel_that_is_not_2d():
    with pytest.raises(ValueError, match="correlation_matrix: kernel must be 2-D"):
        correlation_matrix(np.ones(3), (1, 5))
