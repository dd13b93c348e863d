"""Every backward pass against centred finite differences (float64), and the
gradient checker itself against an independent finite-difference loop.

Tolerance: relative error < 1e-7 (the course's standard). With centred
differences in float64 the truncation error is O(h^2) ~ 1e-10 and the rounding
error ~ eps * |f| / h ~ 1e-10 for O(1) values, so a correct backward lands
around 1e-9 or below, while a wrong one is off by O(1e-2) or more.
"""

from __future__ import annotations

import numpy as np
import pytest

from coursekit.gradcheck import (
    assert_gradients_ok,
    check_gradients,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)
from coursekit.layers import (
    avgpool2d_backward,
    avgpool2d_forward,
    batchnorm_backward,
    batchnorm_forward,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    dropout_backward,
    dropout_forward,
    global_avgpool_backward,
    global_avgpool_forward,
    linear_backward,
    linear_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_binary_cross_entropy,
    sigmoid_forward,
    softmax_cross_entropy,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    tanh_backward,
    tanh_forward,
)

TOL = 1e-7  # see module docstring
SEEDS = [0, 1, 2]


# ------------------------------------------------- an independent FD loop


def tiny_fd(f, x, dout, h=1e-5):
    """d sum(f(x) * dout) / dx by centred differences on fresh copies of x
    (written independently of coursekit.gradcheck, to check it)."""
    grad = np.empty(x.shape)
    flat = x.reshape(-1)
    for k in range(flat.size):
        xp, xm = flat.copy(), flat.copy()
        xp[k] += h
        xm[k] -= h
        fp = np.asarray(f(xp.reshape(x.shape)), dtype=np.float64)
        fm = np.asarray(f(xm.reshape(x.shape)), dtype=np.float64)
        grad.reshape(-1)[k] = (np.sum(fp * dout) - np.sum(fm * dout)) / (2 * h)
    return grad


def away_from_zero(rng, shape):
    """|x| >= 1e-3 so that no finite-difference step (h ~ 1e-5) crosses ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-3, np.copysign(1e-3, x), x)


def tie_free(rng, shape):
    """Distinct values spaced >= 4/size >> h apart: no step can change a max-pool argmax."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) / size * 4.0


# ------------------------------------------------------- layer gradchecks


def _fixed_dropout(p):
    def dropout_fixed_mask(x):
        # a fresh generator with the same seed on every call: the same mask each time
        return dropout_forward(x, p=p, training=True, rng=np.random.default_rng(1234))
    return dropout_fixed_mask


def _bn_kwargs(rng, c, training):
    return dict(
        running_mean=rng.standard_normal(c), running_var=rng.uniform(0.5, 2.0, c),
        training=training,
    )


def layer_cases():
    """(id, forward, backward, make(rng) -> (inputs, kwargs))."""
    return [
        ("linear-2d", linear_forward, linear_backward,
         lambda r: ([r.standard_normal((4, 5)), r.standard_normal((3, 5)), r.standard_normal(3)], {})),
        ("linear-4d-input", linear_forward, linear_backward,
         lambda r: ([r.standard_normal((3, 2, 2, 3)), r.standard_normal((4, 12)), r.standard_normal(4)], {})),
        ("relu", relu_forward, relu_backward, lambda r: ([away_from_zero(r, (4, 6))], {})),
        ("sigmoid", sigmoid_forward, sigmoid_backward, lambda r: ([2 * r.standard_normal((4, 6))], {})),
        ("tanh", tanh_forward, tanh_backward, lambda r: ([r.standard_normal((3, 2, 4))], {})),
        *[
            (f"{tag}-s{s}-p{p}", fwd, bwd,
             lambda r, s=s, p=p: ([r.standard_normal((2, 3, 5, 5)), r.standard_normal((4, 3, 3, 3)),
                                   r.standard_normal(4)], dict(stride=s, padding=p, strict=False)))
            for tag, fwd, bwd in [("conv", conv2d_forward, conv2d_backward),
                                  ("conv_naive", conv2d_forward_naive, conv2d_backward_naive)]
            for s, p in [(1, 0), (2, 1), ((1, 2), (2, 0)), (3, 1)]
        ],
        ("conv-rect-kernel", conv2d_forward, conv2d_backward,
         lambda r: ([r.standard_normal((1, 2, 6, 4)), r.standard_normal((3, 2, 2, 3)), r.standard_normal(3)],
                    dict(stride=(2, 1), padding=(1, 0)))),
        ("maxpool-2x2", maxpool2d_forward, maxpool2d_backward,
         lambda r: ([tie_free(r, (2, 3, 4, 6))], dict(kernel_size=2))),
        ("maxpool-overlap", maxpool2d_forward, maxpool2d_backward,
         lambda r: ([tie_free(r, (2, 2, 5, 5))], dict(kernel_size=3, stride=1))),
        ("maxpool-floor", maxpool2d_forward, maxpool2d_backward,
         lambda r: ([tie_free(r, (1, 2, 7, 5))], dict(kernel_size=(2, 3), stride=2, strict=False))),
        ("avgpool-2x2", avgpool2d_forward, avgpool2d_backward,
         lambda r: ([r.standard_normal((2, 3, 4, 6))], dict(kernel_size=2))),
        ("avgpool-overlap", avgpool2d_forward, avgpool2d_backward,
         lambda r: ([r.standard_normal((2, 2, 5, 5))], dict(kernel_size=3, stride=(1, 2)))),
        ("global_avgpool", global_avgpool_forward, global_avgpool_backward,
         lambda r: ([r.standard_normal((2, 3, 3, 4))], {})),
        ("batchnorm-train", batchnorm_forward, batchnorm_backward,
         lambda r: ([r.standard_normal((5, 4)) * 2 + 1, r.standard_normal(4), r.standard_normal(4)],
                    _bn_kwargs(r, 4, True))),
        ("batchnorm-eval", batchnorm_forward, batchnorm_backward,
         lambda r: ([r.standard_normal((5, 4)), r.standard_normal(4), r.standard_normal(4)],
                    _bn_kwargs(r, 4, False))),
        ("spatial_batchnorm-train", spatial_batchnorm_forward, spatial_batchnorm_backward,
         lambda r: ([r.standard_normal((2, 3, 3, 2)) + 0.5, r.standard_normal(3), r.standard_normal(3)],
                    _bn_kwargs(r, 3, True))),
        ("spatial_batchnorm-eval", spatial_batchnorm_forward, spatial_batchnorm_backward,
         lambda r: ([r.standard_normal((2, 3, 3, 2)), r.standard_normal(3), r.standard_normal(3)],
                    _bn_kwargs(r, 3, False))),
        ("dropout-p0.3", _fixed_dropout(0.3), dropout_backward, lambda r: ([r.standard_normal((4, 5))], {})),
        ("dropout-p0.7", _fixed_dropout(0.7), dropout_backward, lambda r: ([r.standard_normal((3, 2, 4))], {})),
    ]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "forward, backward, make", [pytest.param(*c[1:], id=c[0]) for c in layer_cases()]
)
def test_backward_matches_finite_differences(forward, backward, make, seed):
    inputs, kwargs = make(np.random.default_rng(seed))
    # dout must not come from the inputs' seed: with the same stream dout would be an
    # affine function of x, which makes batch norm's dx vanish (~1e-8) by construction
    comparisons = check_gradients(forward, backward, inputs, kwargs=kwargs, seed=seed + 1000, tol=TOL)
    assert len(comparisons) == len(inputs), f"{len(comparisons)} comparisons for {len(inputs)} inputs"
    assert_gradients_ok(comparisons)  # message names the gradient, index and both values
    for c in comparisons:
        assert c.rel_error < TOL, str(c)


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_cross_entropy_gradient_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    scores, y = rng.standard_normal((5, 4)) * 2, rng.integers(0, 4, 5)
    _, dscores = softmax_cross_entropy(scores, y)
    num = numerical_gradient(lambda s: softmax_cross_entropy(s, y)[0], scores.copy())
    err = rel_error(dscores, num)
    assert err < TOL, f"softmax_cross_entropy dscores vs finite differences: rel error {err:.2e}"


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_bce_gradient_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    logits, t = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    _, dlogits = sigmoid_binary_cross_entropy(logits, t)
    num = numerical_gradient(lambda z: sigmoid_binary_cross_entropy(z, t)[0], logits.copy())
    err = rel_error(dlogits, num)
    assert err < TOL, f"sigmoid_binary_cross_entropy dlogits vs finite differences: rel error {err:.2e}"


# ------------------------------------------- the gradient checker itself


def test_numerical_gradient_of_known_function_and_restores_x():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x_before = x.copy()
    g = numerical_gradient(lambda v: np.sum(v**3) + np.sum(np.sin(v)), x)
    assert g.shape == x.shape, f"gradient shape {g.shape}, x shape {x.shape}"
    assert np.array_equal(x, x_before), "numerical_gradient did not restore x"
    # truncation h^2 f'''/6 ~ 1e-10 plus rounding eps*|f|/h ~ 1e-10: 1e-8 is ample
    expected = 3 * x**2 + np.cos(x)
    worst = np.unravel_index(np.argmax(np.abs(g - expected)), x.shape)
    assert np.allclose(g, expected, rtol=0, atol=1e-8), (
        f"at {worst}: numerical {g[worst]}, analytic {expected[worst]}"
    )


def test_numerical_gradient_array_of_linear_map():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 3))
    x = rng.standard_normal((3, 2))
    dout = rng.standard_normal((5, 2))
    x_before = x.copy()
    g = numerical_gradient_array(lambda v: a @ v, x, dout)
    assert np.array_equal(x, x_before), "numerical_gradient_array did not restore x"
    # f is linear: the centred difference is exact up to rounding (~1e-10)
    assert np.allclose(g, a.T @ dout, rtol=0, atol=1e-8), f"got {g}, want {a.T @ dout}"


@pytest.mark.parametrize(
    "forward, make",
    [
        (lambda x: conv2d_forward(x, W_CONV, B_CONV, stride=2, padding=1)[0], lambda r: r.standard_normal((1, 2, 5, 5))),
        (lambda x: batchnorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))[0],
         lambda r: r.standard_normal((4, 3))),
        (lambda x: np.tanh(x) * x, lambda r: r.standard_normal((2, 3))),
    ],
    ids=["conv", "batchnorm", "tanh-times-x"],
)
def test_numerical_gradient_array_matches_independent_loop(forward, make):
    rng = np.random.default_rng(4)
    x = make(rng)
    dout = rng.standard_normal(np.shape(forward(x)))
    ours, lib = tiny_fd(forward, x, dout), numerical_gradient_array(forward, x.copy(), dout)
    # same step and formula, only the summation order differs: rounding-level agreement
    assert np.allclose(lib, ours, rtol=1e-6, atol=1e-9), (
        f"numerical_gradient_array differs from an independent loop by up to {np.max(np.abs(lib - ours)):.2e}"
    )


W_CONV = np.random.default_rng(99).standard_normal((3, 2, 3, 3))
B_CONV = np.random.default_rng(98).standard_normal(3)


def test_check_gradients_reports_numerical_value_of_independent_loop():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((1, 3, 2, 2))
    comps = check_gradients(conv2d_forward, conv2d_backward, [x, w, b], dout=dout)
    fd = [
        tiny_fd(lambda v: conv2d_forward(v, w, b)[0], x, dout),
        tiny_fd(lambda v: conv2d_forward(x, v, b)[0], w, dout),
        tiny_fd(lambda v: conv2d_forward(x, w, v)[0], b, dout),
    ]
    assert [c.name for c in comps] == ["dx", "dw", "db"], [c.name for c in comps]
    for c, g in zip(comps, fd):
        # same finite difference computed twice: rounding-level agreement only
        assert abs(c.numerical - g[c.index]) <= 1e-6 * max(1.0, abs(g[c.index])), (
            f"{c.name}{c.index}: check_gradients numerical {c.numerical}, independent loop {g[c.index]}"
        )
        assert c.ok and c.tol == 1e-7, str(c)


def test_check_gradients_does_not_mutate_inputs():
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)]
    before = [a.copy() for a in inputs]
    check_gradients(linear_forward, linear_backward, inputs)
    for name, a, a0 in zip("xwb", inputs, before):
        assert np.array_equal(a, a0), f"check_gradients changed input {name}"


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1.0, 2.0], [1.0, 2.0], 0.0),
        ([1.0], [3.0], 0.5),  # |1-3| / (1+3)
        ([1.0, -2.0], [1.0, 2.0], 1.0),  # second element: 4 / 4
        ([0.0], [1e-9], 0.1),  # denominator floored at 1e-8
        ([0.0, 10.0], [0.0, 11.0], 1 / 21),  # 0/0 element counts as 0 (floor), max is 1/21
    ],
)
def test_rel_error_definition(a, b, expected):
    got = rel_error(np.array(a), np.array(b))
    assert np.isclose(got, expected, rtol=1e-12, atol=0), f"rel_error({a}, {b}) = {got}, want {expected}"


# ------------------------------------------- deliberately wrong backwards


def relu_backward_passes_everything(dout, cache):
    return dout  # wrong: ignores where x <= 0


def test_checker_catches_relu_backward_that_passes_everything():
    rng = np.random.default_rng(7)
    x = away_from_zero(rng, (3, 4))
    comps = check_gradients(relu_forward, relu_backward_passes_everything, [x])
    (c,) = comps
    assert not c.ok, f"wrong ReLU backward was accepted: {c}"
    assert c.name == "dx", c.name
    assert x[c.index] < 0, f"worst index {c.index} should be where x < 0 (x = {x[c.index]})"
    with pytest.raises(AssertionError) as err:
        assert_gradients_ok(comps)
    msg = str(err.value)
    assert "relu_backward_passes_everything" in msg and "dx" in msg and str(c.index) in msg, msg


def conv2d_backward_scaled_dw(dout, cache):
    dx, dw, db = conv2d_backward(dout, cache)
    return dx, dw * 1.01, db


BAD_INDEX = (2, 0, 1, 1)


def conv2d_backward_one_bad_weight(dout, cache):
    dx, dw, db = conv2d_backward(dout, cache)
    dw = dw.copy()
    dw[BAD_INDEX] += 0.05
    return dx, dw, db


def _conv_inputs():
    rng = np.random.default_rng(8)
    return [rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]


def test_checker_catches_conv_dw_scaled_by_1_01():
    comps = check_gradients(conv2d_forward, conv2d_backward_scaled_dw, _conv_inputs(), kwargs=dict(padding=1))
    verdict = {c.name: c.ok for c in comps}
    assert verdict == {"dx": True, "dw": False, "db": True}, verdict
    bad = comps[1]
    # a 1% scale gives relative error 0.01 / 2.01 ~ 5e-3 everywhere
    assert 4e-3 < bad.rel_error < 6e-3, str(bad)
    assert len(bad.index) == 4, f"index {bad.index} should locate an element of the 4-D weight"
    with pytest.raises(AssertionError) as err:
        assert_gradients_ok(comps)
    msg = str(err.value)
    assert "dw" in msg and str(bad.index) in msg and "conv2d_backward_scaled_dw" in msg, msg
    assert "dx" not in msg and "db" not in msg, f"only dw failed, message says: {msg}"


def test_checker_locates_a_single_wrong_element():
    comps = check_gradients(conv2d_forward, conv2d_backward_one_bad_weight, _conv_inputs(), kwargs=dict(stride=2))
    bad = comps[1]
    assert not bad.ok and bad.index == BAD_INDEX, f"expected the failure at {BAD_INDEX}: {bad}"
    assert abs(bad.analytic - bad.numerical - 0.05) < 1e-6, (
        f"analytic - numerical should be the injected 0.05: {bad.analytic} - {bad.numerical}"
    )
    with pytest.raises(AssertionError, match=r"dw .*\(2, 0, 1, 1\)"):
        assert_gradients_ok(comps)


def test_checker_uses_given_names():
    comps = check_gradients(
        conv2d_forward, conv2d_backward_scaled_dw, _conv_inputs(), names=["image", "filters", "bias"]
    )
    assert [c.name for c in comps] == ["dimage", "dfilters", "dbias"], [c.name for c in comps]
    assert "dfilters" in str(comps[1]) and not comps[1].ok


def test_assert_gradients_ok_passes_silently_on_correct_backward():
    assert_gradients_ok(check_gradients(conv2d_forward, conv2d_backward, _conv_inputs()))


def _linear_backward_scaled(scale):
    def linear_backward_slightly_off(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        return dx * scale, dw, db
    return linear_backward_slightly_off


def test_checker_tolerance_is_what_decides():
    """A 1e-6 relative slip in dx (rel error ~5e-7) fails the default 1e-7 and passes tol=1e-5."""
    rng = np.random.default_rng(9)
    inputs = [rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)]
    backward = _linear_backward_scaled(1 + 1e-6)
    strict = check_gradients(linear_forward, backward, inputs)
    assert [c.ok for c in strict] == [False, True, True], [str(c) for c in strict]
    # |a - b| / (|a| + |b|) = 1e-6 / (2 + 1e-6) for every element of dx
    assert 4e-7 < strict[0].rel_error < 6e-7, str(strict[0])
    loose = check_gradients(linear_forward, backward, inputs, tol=1e-5)
    assert all(c.ok for c in loose), [str(c) for c in loose]
    assert_gradients_ok(loose)


def test_checker_works_in_float64_even_for_float32_inputs():
    # finite differences with h = 1e-5 are meaningless in float32 (eps ~1e-7), so the
    # checker must differentiate float64 copies; then a correct backward passes
    rng = np.random.default_rng(10)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in [(4, 5), (3, 5), (3,)]]
    comps = check_gradients(linear_forward, linear_backward, inputs)
    assert_gradients_ok(comps)
    assert all(a.dtype == np.float32 for a in inputs), "check_gradients changed the caller's arrays"
