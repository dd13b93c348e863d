"""The syllabus' worked examples, computed by the layers.

Every expected number below is taken from the syllabus (or worked out by hand
from it, as commented), never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from coursekit.layers import (
    conv2d_forward,
    convolve2d,
    correlate2d,
    maxpool2d_forward,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
)

# The worked examples are small sums of small integers or dyadic fractions
# (0.25, 0.5, 1): float64 represents every intermediate exactly, except for the
# box filter's division by 9 (see there). EXACT is used for the exact cases but
# allows one rounding step in case an implementation sums in a different order.
EXACT = dict(rtol=0, atol=1e-12)


# ------------------------------------------------------------------ 1-D

SIGNAL = [5, 9, 2, 6, 7, 9, 8]
DERIV_RESULT = [-3, -3, 5, 3, 1]  # syllabus: 5 9 2 6 7 9 8 with -1 0 1


def test_1d_correlation_with_derivative_filter(assert_close):
    got = correlate2d(np.array([SIGNAL], float), np.array([[-1.0, 0.0, 1.0]]), mode="valid")
    assert_close(got, [DERIV_RESULT], name="correlate2d(signal, [-1 0 1])", **EXACT)


def test_1d_true_convolution_with_flipped_filter(assert_close):
    # convolving with 1 0 -1 flips it into -1 0 1: the same result
    got = convolve2d(np.array([SIGNAL], float), np.array([[1.0, 0.0, -1.0]]), mode="valid")
    assert_close(got, [DERIV_RESULT], name="convolve2d(signal, [1 0 -1])", **EXACT)


def test_1d_example_as_conv_layer(assert_close):
    x = np.array(SIGNAL, float).reshape(1, 1, 1, 7)
    w = np.array([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    out, _ = conv2d_forward(x, w, np.zeros(1))
    assert_close(out, np.reshape(DERIV_RESULT, (1, 1, 1, 5)), name="conv2d_forward 1-D example", **EXACT)


# ------------------------------------------------------------------ 2-D

BINARY_IMAGE = np.array(
    [[1, 1, 1, 0, 0],
     [0, 1, 1, 1, 0],
     [0, 0, 1, 1, 1],
     [0, 0, 1, 1, 0],
     [0, 1, 1, 0, 0]], float)  # fmt: skip
X_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
FEATURE_MAP = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]], float)


def test_2d_binary_image_feature_map(assert_close):
    got = correlate2d(BINARY_IMAGE, X_KERNEL)
    assert_close(got, FEATURE_MAP, name="correlate2d(binary image, X kernel)", **EXACT)


def test_2d_binary_image_feature_map_as_conv_layer(assert_close):
    out, _ = conv2d_forward(BINARY_IMAGE[None, None], X_KERNEL[None, None], np.zeros(1))
    assert_close(out[0, 0], FEATURE_MAP, name="conv2d_forward(binary image, X kernel)", **EXACT)


TRUE_CONV_X = np.array([[0, 80, 40], [20, 40, 0], [0, 0, 40]], float)
TRUE_CONV_K = np.array([[0, 0.25], [0.5, 1]])
TRUE_CONV_OUT = np.array([[45, 110], [40, 40]], float)


def test_true_convolution_example(assert_close):
    assert_close(convolve2d(TRUE_CONV_X, TRUE_CONV_K), TRUE_CONV_OUT, name="convolve2d example", **EXACT)


def test_correlation_with_flipped_kernel_is_convolution(assert_close):
    got = correlate2d(TRUE_CONV_X, TRUE_CONV_K[::-1, ::-1])
    assert_close(got, TRUE_CONV_OUT, name="correlate2d with flipped kernel", **EXACT)


def test_convolution_is_not_correlation_for_asymmetric_kernel():
    # the example's kernel is not symmetric, so forgetting the flip must show
    assert not np.allclose(correlate2d(TRUE_CONV_X, TRUE_CONV_K), TRUE_CONV_OUT), (
        "correlate2d without the flip reproduced the convolution: flip is not exercised"
    )


# ------------------------------------------------------------- box filter


def box_filter_image():
    """10x10 image: 90s in rows 2..6, cols 3..7, one 0 inside at (5, 4) and a
    stray 90 at (8, 2) (the classic Seitz example).

    Why rows 2..6: the first valid output row averages image rows 0..2; the
    syllabus' first row 0 10 20 30 30 30 20 10 is (number of 90s)/9 * 90 with
    one 90 per column, so exactly one of rows 0..2 (row 2) belongs to the block,
    and the counts 0 1 2 3 3 3 2 1 over column windows j..j+2 put the block at
    columns 3..7.
    """
    img = np.zeros((10, 10))
    img[2:7, 3:8] = 90
    img[5, 4] = 0
    img[8, 2] = 90
    return img


# Full 8x8 result, worked by hand from the image above (count of 90s in each
# 3x3 window, times 10). Row 0 is the syllabus' row.
BOX_EXPECTED = np.array(
    [[0, 10, 20, 30, 30, 30, 20, 10],
     [0, 20, 40, 60, 60, 60, 40, 20],
     [0, 30, 60, 90, 90, 90, 60, 30],
     [0, 30, 50, 80, 80, 90, 60, 30],
     [0, 30, 50, 80, 80, 90, 60, 30],
     [0, 20, 30, 50, 50, 60, 40, 20],
     [10, 20, 30, 30, 30, 30, 20, 10],
     [10, 10, 10, 0, 0, 0, 0, 0]], float)  # fmt: skip


def test_box_filter_first_row_matches_syllabus():
    out = correlate2d(box_filter_image(), np.ones((3, 3)) / 9)
    assert out.shape == (8, 8), f"valid 3x3 on 10x10 should be 8x8, got {out.shape}"
    # every window sum is a multiple of 90, so the exact mean is a multiple of 10;
    # 1/9 is not representable, so the float result is off by ~1e-14: compare
    # within 1e-9 and also check that rounding gives the syllabus' integers
    assert np.allclose(out[0], BOX_EXPECTED[0], rtol=0, atol=1e-9), (
        f"first output row {np.round(out[0], 6).tolist()}, syllabus says {BOX_EXPECTED[0].tolist()}"
    )
    assert np.array_equal(np.rint(out[0]), BOX_EXPECTED[0])


def test_box_filter_whole_output(assert_close):
    out = correlate2d(box_filter_image(), np.ones((3, 3)) / 9)
    # atol 1e-9: the 1/9 weights make the float result differ from the exact
    # multiples of 10 by round-off only (~1e-14)
    assert_close(out, BOX_EXPECTED, name="3x3 box filter", rtol=0, atol=1e-9)


# -------------------------------------------------------------- max pool


def test_maxpool_2x2_stride2_example(assert_close):
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float)
    out, _ = maxpool2d_forward(x[None, None], kernel_size=2, stride=2)
    assert_close(out[0, 0], [[6, 8], [3, 4]], name="maxpool 2x2/2 example", rtol=0, atol=0)


# ----------------------------------------------------------- conv volumes


def test_32x32x3_with_one_5x5x3_filter_gives_28x28():
    out, _ = conv2d_forward(np.zeros((1, 3, 32, 32)), np.zeros((1, 3, 5, 5)), np.zeros(1))
    assert out.shape == (1, 1, 28, 28), f"got {out.shape}"


def test_six_5x5_filters_give_28x28x6():
    rng = np.random.default_rng(0)
    out, _ = conv2d_forward(rng.standard_normal((1, 3, 32, 32)), rng.standard_normal((6, 3, 5, 5)), np.zeros(6))
    assert out.shape == (1, 6, 28, 28), f"got {out.shape}"


def test_ten_5x5_filters_pad2_keep_32x32_and_have_760_params():
    w, b = np.zeros((10, 3, 5, 5)), np.zeros(10)
    out, _ = conv2d_forward(np.zeros((1, 3, 32, 32)), w, b, padding=2)
    assert out.shape == (1, 10, 32, 32), f"got {out.shape}"
    assert w.size + b.size == 760, f"(5*5*3)*10 + 10 should be 760, got {w.size + b.size}"


def test_100_filters_on_3x100x100_give_100x96x96():
    out, _ = conv2d_forward(np.zeros((1, 3, 100, 100)), np.zeros((100, 3, 5, 5)), np.zeros(100))
    assert out.shape == (1, 100, 96, 96), f"got {out.shape}"


def test_1x1_conv_is_per_pixel_matrix_product(assert_close):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64, 5, 6))
    w = rng.standard_normal((32, 64, 1, 1))
    b = rng.standard_normal(32)
    out, _ = conv2d_forward(x, w, b)
    expected = np.einsum("nchw,fc->nfhw", x, w[:, :, 0, 0]) + b[None, :, None, None]
    # both are 64-term float64 dot products summed in different orders: round-off only
    assert_close(out, expected, name="1x1 conv vs einsum", rtol=1e-10, atol=1e-10)


# -------------------------------------------------- softmax / cross-entropy


def test_softmax_ce_gradient_is_prediction_minus_onehot_over_n(assert_close):
    rng = np.random.default_rng(2)
    n, c = 5, 4
    scores = rng.standard_normal((n, c)) * 2
    y = np.array([0, 3, 1, 1, 2])
    loss, dscores = softmax_cross_entropy(scores, y)
    # formula: y_hat from the definition exp(s)/sum exp(s), written out here
    e = np.exp(scores)
    y_hat = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(c)[y]
    # same float64 expression up to operation order: round-off only
    assert_close(dscores, (y_hat - onehot) / n, name="dscores vs (y_hat - onehot)/N", rtol=1e-10, atol=1e-12)
    expected_loss = -np.mean(np.log(y_hat[np.arange(n), y]))
    assert abs(loss - expected_loss) < 1e-12, f"loss {loss}, -mean log y_hat[y] = {expected_loss}"
    assert_close(softmax(scores), y_hat, name="softmax vs exp/sum exp", rtol=1e-10, atol=1e-12)


def test_sigmoid_neuron_cross_entropy_gradient(assert_close):
    """E = -sum_n [t ln x + (1-t) ln(1-x)], x = sigmoid(z . w): dE/dw = -sum_n (t_n - x_n) z_n.

    The layer averages over the N elements, so its gradient is that sum / N.
    """
    rng = np.random.default_rng(3)
    n, d = 6, 3
    z = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    t = rng.integers(0, 2, n).astype(float)
    logits = z @ w
    loss, dlogits = sigmoid_binary_cross_entropy(logits, t)
    x = 1 / (1 + np.exp(-logits))
    dw_chain = z.T @ dlogits
    dw_formula = -((t - x)[:, None] * z).sum(axis=0) / n
    # same quantities in a different order in float64: round-off only
    assert_close(dw_chain, dw_formula, name="dE/dw via layer vs -sum (t - x) z / N", rtol=1e-10, atol=1e-12)
    expected_loss = -np.mean(t * np.log(x) + (1 - t) * np.log(1 - x))
    assert abs(loss - expected_loss) < 1e-12, f"loss {loss}, formula {expected_loss}"


# ------------------------------------------------------- scipy cross-check


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("kshape", [(1, 1), (3, 3), (3, 5), (5, 3)])
@pytest.mark.parametrize("ishape", [(5, 5), (7, 9)])
def test_convolve_and_correlate_match_scipy(mode, kshape, ishape, assert_close):
    rng = np.random.default_rng(sum(kshape) * 100 + sum(ishape))
    image, kernel = rng.standard_normal(ishape), rng.standard_normal(kshape)
    # at most 25-term float64 sums in a different order: round-off only
    for name, ours, theirs in [
        ("convolve2d", convolve2d, scipy.signal.convolve2d),
        ("correlate2d", correlate2d, scipy.signal.correlate2d),
    ]:
        expected = theirs(image, kernel, mode=mode)
        assert_close(ours(image, kernel, mode=mode), expected,
                     name=f"{name} image{ishape} kernel{kshape} mode={mode}", rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_convolve_default_and_integer_inputs(mode, assert_close):
    image = np.arange(30).reshape(5, 6)
    kernel = np.array([[1, 2, 0], [0, -1, 3], [2, 0, 1]])
    expected = scipy.signal.convolve2d(image, kernel, mode=mode)
    assert_close(convolve2d(image, kernel, mode=mode), expected, name=f"convolve2d int {mode}", **EXACT)
    if mode == "valid":
        assert_close(convolve2d(image, kernel), expected, name="convolve2d default mode", **EXACT)
