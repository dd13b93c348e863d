"""Every numpy layer, forward and backward, against PyTorch autograd.

torch (float64, CPU) is the oracle: the forward output is compared with the
torch.nn.functional op and each backward gradient with autograd's gradient of
sum(out * dout) for a random upstream gradient dout.

Tolerances used throughout:
* float64 -- RTOL64/ATOL64: both sides compute the same O(1)-valued sums of at
  most a few hundred terms in float64, only in a different order, so they can
  differ by round-off (~1e-14 here). 1e-9/1e-10 leaves four orders of margin yet
  any real bug (a wrong index, a missing term) shows up as an O(1e-2) or bigger
  difference.
* float32 -- RTOL32/ATOL32: float32 has unit round-off ~6e-8; accumulating up to
  a few hundred O(1) products and dividing by a batch std gives errors up to
  ~1e-5. 1e-4 is the conventional float32 tolerance and still far below the size
  of a real bug.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

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
    softmax,
    softmax_cross_entropy,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    tanh_backward,
    tanh_forward,
)

RTOL64, ATOL64 = 1e-9, 1e-10  # float64 round-off only; see module docstring
RTOL32, ATOL32 = 1e-4, 1e-4  # float32 round-off; see module docstring

seeds = st.integers(0, 2**32 - 1)


def torch_reference(fn, *arrays, rng, dout=None):
    """Run fn on float64 torch copies of `arrays`; return (out, dout, grads).

    grads[i] is d sum(out * dout) / d arrays[i]. dout is drawn from rng
    (standard normal) with out's shape unless given.
    """
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*ts)
    if dout is None:
        dout = rng.standard_normal(tuple(out.shape))
    out.backward(torch.as_tensor(np.asarray(dout, dtype=np.float64)))
    return out.detach().numpy(), dout, [t.grad.numpy() for t in ts]


def pair_or_int(draw, a, b):
    """Pass an int when both sides agree (half the time), else an (h, w) pair."""
    if a == b and draw(st.booleans()):
        return a
    return (a, b)


# --------------------------------------------------------------------------- conv


@st.composite
def conv_cases(draw, strict=False):
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    if strict:
        # build a size that the stride tiles exactly: H = (OH - 1) * s + k - 2p
        oh, ow = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = (oh - 1) * sh + kh - 2 * ph, (ow - 1) * sw + kw - 2 * pw
        assume(1 <= h <= 9 and 1 <= w <= 9)
    else:
        h = draw(st.integers(max(1, kh - 2 * ph), 9))
        w = draw(st.integers(max(1, kw - 2 * pw), 9))
    return dict(
        xshape=(n, c, h, w),
        wshape=(f, c, kh, kw),
        stride=pair_or_int(draw, sh, sw),
        padding=pair_or_int(draw, ph, pw),
        seed=draw(seeds),
    )


def check_conv_vs_torch(case, forward, backward, strict, assert_close):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["xshape"])
    w = rng.standard_normal(case["wshape"])
    b = rng.standard_normal(case["wshape"][0])
    s, p = case["stride"], case["padding"]
    out_t, dout, (dx_t, dw_t, db_t) = torch_reference(
        lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=s, padding=p), x, w, b, rng=rng
    )
    out, cache = forward(x, w, b, stride=s, padding=p, strict=strict)
    where = f"{forward.__name__} x{x.shape} w{w.shape} stride={s} padding={p}"
    assert_close(out, out_t, name=f"{where}: out", rtol=RTOL64, atol=ATOL64)
    dx, dw, db = backward(dout, cache)
    assert_close(dx, dx_t, name=f"{where}: dx", rtol=RTOL64, atol=ATOL64)
    assert_close(dw, dw_t, name=f"{where}: dw", rtol=RTOL64, atol=ATOL64)
    assert_close(db, db_t, name=f"{where}: db", rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize(
    "forward, backward",
    [(conv2d_forward, conv2d_backward), (conv2d_forward_naive, conv2d_backward_naive)],
    ids=["fast", "naive"],
)
@given(case=conv_cases(strict=False))
def test_conv2d_matches_torch_floor_mode(forward, backward, case, assert_close):
    check_conv_vs_torch(case, forward, backward, False, assert_close)


@pytest.mark.parametrize(
    "forward, backward",
    [(conv2d_forward, conv2d_backward), (conv2d_forward_naive, conv2d_backward_naive)],
    ids=["fast", "naive"],
)
@given(case=conv_cases(strict=True))
def test_conv2d_matches_torch_strict_when_stride_tiles(forward, backward, case, assert_close):
    check_conv_vs_torch(case, forward, backward, True, assert_close)


@pytest.mark.parametrize("strict", [True, False])
def test_conv2d_syllabus_shape_7x7_stride3_pad1(strict, assert_close):
    # 7 + 2*1 - 3 = 6 is divisible by 3, so strict mode accepts it -> 3x3 output.
    case = dict(xshape=(2, 3, 7, 7), wshape=(4, 3, 3, 3), stride=3, padding=1, seed=7)
    check_conv_vs_torch(case, conv2d_forward, conv2d_backward, strict, assert_close)


def test_conv2d_floor_mode_7x7_stride3_matches_torch(assert_close):
    # the syllabus' non-tiling case: strict=False floors like torch (2x2 output)
    case = dict(xshape=(1, 2, 7, 7), wshape=(3, 2, 3, 3), stride=3, padding=0, seed=3)
    check_conv_vs_torch(case, conv2d_forward, conv2d_backward, False, assert_close)


@given(case=conv_cases(strict=False))
def test_naive_and_fast_conv_agree(case, assert_close):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["xshape"])
    w = rng.standard_normal(case["wshape"])
    b = rng.standard_normal(case["wshape"][0])
    kw = dict(stride=case["stride"], padding=case["padding"], strict=False)
    out_f, cache_f = conv2d_forward(x, w, b, **kw)
    out_n, cache_n = conv2d_forward_naive(x, w, b, **kw)
    tag = f"x{x.shape} w{w.shape} {kw}"
    # same float64 sums in a different order -> round-off-level differences only
    assert_close(out_f, out_n, name=f"fast vs naive {tag}: out", rtol=RTOL64, atol=ATOL64)
    dout = rng.standard_normal(out_n.shape)
    for name, g_f, g_n in zip(
        ("dx", "dw", "db"), conv2d_backward(dout, cache_f), conv2d_backward_naive(dout, cache_n)
    ):
        assert_close(g_f, g_n, name=f"fast vs naive {tag}: {name}", rtol=RTOL64, atol=ATOL64)


# ------------------------------------------------------------------------ pooling


@st.composite
def pool_cases(draw, strict=False):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    default_stride = draw(st.booleans())
    sh, sw = (kh, kw) if default_stride else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if strict:
        oh, ow = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    else:
        h, w = draw(st.integers(kh, 8)), draw(st.integers(kw, 8))
    return dict(
        xshape=(n, c, h, w),
        kernel_size=pair_or_int(draw, kh, kw),
        stride=None if default_stride else pair_or_int(draw, sh, sw),
        seed=draw(seeds),
    )


def tie_free(rng, shape):
    """Distinct values (a scaled random permutation) so every max is unique."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) / size * 4.0


POOLS = {
    "max": (maxpool2d_forward, maxpool2d_backward, F.max_pool2d),
    "avg": (avgpool2d_forward, avgpool2d_backward, F.avg_pool2d),
}


def check_pool_vs_torch(kind, case, strict, assert_close):
    forward, backward, torch_fn = POOLS[kind]
    rng = np.random.default_rng(case["seed"])
    x = tie_free(rng, case["xshape"])
    k, s = case["kernel_size"], case["stride"]
    out_t, dout, (dx_t,) = torch_reference(
        lambda x_: torch_fn(x_, kernel_size=k, stride=s), x, rng=rng
    )
    out, cache = forward(x, kernel_size=k, stride=s, strict=strict)
    where = f"{forward.__name__} x{x.shape} kernel_size={k} stride={s} strict={strict}"
    assert_close(out, out_t, name=f"{where}: out", rtol=RTOL64, atol=ATOL64)
    assert_close(backward(dout, cache), dx_t, name=f"{where}: dx", rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_cases(strict=False))
def test_pool_matches_torch_floor_mode(kind, case, assert_close):
    check_pool_vs_torch(kind, case, False, assert_close)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_cases(strict=True))
def test_pool_matches_torch_strict_when_stride_tiles(kind, case, assert_close):
    check_pool_vs_torch(kind, case, True, assert_close)


@given(shape=st.tuples(*[st.integers(1, 4)] * 4), seed=seeds)
def test_global_avgpool_matches_torch(shape, seed, assert_close):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out_t, dout, (dx_t,) = torch_reference(lambda x_: x_.mean(dim=(2, 3)), x, rng=rng)
    out, cache = global_avgpool_forward(x)
    assert out.shape == shape[:2], f"global_avgpool_forward: out shape {out.shape}, want {shape[:2]}"
    assert_close(out, out_t, name=f"global_avgpool x{shape}: out", rtol=RTOL64, atol=ATOL64)
    dx = global_avgpool_backward(dout, cache)
    assert_close(dx, dx_t, name=f"global_avgpool x{shape}: dx", rtol=RTOL64, atol=ATOL64)


# ------------------------------------------------------------------- batch norm


def check_batchnorm_vs_torch(forward, backward, xshape, training, momentum, eps, seed, assert_close):
    rng = np.random.default_rng(seed)
    c = xshape[1]
    x = rng.standard_normal(xshape) * 2.0 + 0.5
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    running_mean = rng.standard_normal(c)
    running_var = rng.uniform(0.5, 2.0, c)
    rm_before, rv_before = running_mean.copy(), running_var.copy()
    rm_t = torch.tensor(running_mean.copy())
    rv_t = torch.tensor(running_var.copy())
    out_t, dout, (dx_t, dg_t, db_t) = torch_reference(
        lambda x_, g_, b_: F.batch_norm(
            x_, rm_t, rv_t, g_, b_, training=training, momentum=momentum, eps=eps
        ),
        x, gamma, beta, rng=rng,
    )
    out, cache, new_rm, new_rv = forward(
        x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps
    )
    where = f"{forward.__name__} x{xshape} training={training} momentum={momentum} eps={eps}"
    assert_close(out, out_t, name=f"{where}: out", rtol=RTOL64, atol=ATOL64)
    # torch updated rm_t/rv_t in place (unbiased batch variance) when training
    assert_close(new_rm, rm_t.numpy(), name=f"{where}: new_running_mean", rtol=RTOL64, atol=ATOL64)
    assert_close(new_rv, rv_t.numpy(), name=f"{where}: new_running_var", rtol=RTOL64, atol=ATOL64)
    assert np.array_equal(running_mean, rm_before), f"{where} mutated running_mean passed in"
    assert np.array_equal(running_var, rv_before), f"{where} mutated running_var passed in"
    dx, dgamma, dbeta = backward(dout, cache)
    assert_close(dx, dx_t, name=f"{where}: dx", rtol=RTOL64, atol=ATOL64)
    assert_close(dgamma, dg_t, name=f"{where}: dgamma", rtol=RTOL64, atol=ATOL64)
    assert_close(dbeta, db_t, name=f"{where}: dbeta", rtol=RTOL64, atol=ATOL64)


bn_momentum = st.sampled_from([0.1, 0.0, 1.0]) | st.floats(0.01, 0.99)
bn_eps = st.sampled_from([1e-5, 1e-3])


@given(
    n=st.integers(2, 6), d=st.integers(1, 5), training=st.booleans(),
    momentum=bn_momentum, eps=bn_eps, seed=seeds,
)
def test_batchnorm_matches_torch(n, d, training, momentum, eps, seed, assert_close):
    check_batchnorm_vs_torch(
        batchnorm_forward, batchnorm_backward, (n, d), training, momentum, eps, seed, assert_close
    )


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    training=st.booleans(), momentum=bn_momentum, eps=bn_eps, seed=seeds,
)
def test_spatial_batchnorm_matches_torch(shape, training, momentum, eps, seed, assert_close):
    n, _, h, w = shape
    assume(n * h * w >= 2)  # unbiased variance needs two values per channel
    check_batchnorm_vs_torch(
        spatial_batchnorm_forward, spatial_batchnorm_backward, shape, training, momentum, eps,
        seed, assert_close,
    )


def test_batchnorm_default_momentum_is_torch_default(assert_close):
    """Called without momentum/eps, the running stats follow torch's defaults (0.1, 1e-5)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 3))
    gamma, beta = np.ones(3), np.zeros(3)
    rm, rv = np.zeros(3), np.ones(3)
    rm_t, rv_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    out_t = F.batch_norm(torch.tensor(x), rm_t, rv_t, training=True)
    out, _, new_rm, new_rv = batchnorm_forward(x, gamma, beta, rm, rv)
    assert_close(out, out_t.numpy(), name="batchnorm default: out", rtol=RTOL64, atol=ATOL64)
    assert_close(new_rm, rm_t.numpy(), name="batchnorm default: running_mean", rtol=RTOL64, atol=ATOL64)
    assert_close(new_rv, rv_t.numpy(), name="batchnorm default: running_var", rtol=RTOL64, atol=ATOL64)


# ----------------------------------------------------------- linear, activations


@given(
    n=st.integers(1, 4),
    inner=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    m=st.integers(1, 5),
    seed=seeds,
)
def test_linear_matches_torch(n, inner, m, seed, assert_close):
    rng = np.random.default_rng(seed)
    xshape = (n, *inner)
    d = int(np.prod(inner))
    x, w, b = rng.standard_normal(xshape), rng.standard_normal((m, d)), rng.standard_normal(m)
    out_t, dout, (dx_t, dw_t, db_t) = torch_reference(
        lambda x_, w_, b_: F.linear(x_.reshape(n, d), w_, b_), x, w, b, rng=rng
    )
    out, cache = linear_forward(x, w, b)
    where = f"linear x{xshape} w{w.shape}"
    assert_close(out, out_t, name=f"{where}: out", rtol=RTOL64, atol=ATOL64)
    dx, dw, db = linear_backward(dout, cache)
    assert dx.shape == xshape, f"{where}: dx shape {dx.shape} should be x's shape {xshape}"
    assert_close(dx, dx_t, name=f"{where}: dx", rtol=RTOL64, atol=ATOL64)
    assert_close(dw, dw_t, name=f"{where}: dw", rtol=RTOL64, atol=ATOL64)
    assert_close(db, db_t, name=f"{where}: db", rtol=RTOL64, atol=ATOL64)


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward, torch.relu),
    "sigmoid": (sigmoid_forward, sigmoid_backward, torch.sigmoid),
    "tanh": (tanh_forward, tanh_backward, torch.tanh),
}


def away_from_zero(rng, shape, scale=3.0):
    """Values with |x| >= 1e-3: ReLU's derivative is undefined at 0."""
    x = rng.standard_normal(shape) * scale
    return np.where(np.abs(x) < 1e-3, 1e-3 * np.sign(x + 0.5), x)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), seed=seeds)
def test_activation_matches_torch(name, shape, seed, assert_close):
    forward, backward, torch_fn = ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    out_t, dout, (dx_t,) = torch_reference(torch_fn, x, rng=rng)
    out, cache = forward(x)
    assert_close(out, out_t, name=f"{name} x{shape}: out", rtol=RTOL64, atol=ATOL64)
    assert_close(backward(dout, cache), dx_t, name=f"{name} x{shape}: dx", rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_saturated_inputs_match_torch(name, assert_close):
    # large |x|: sigmoid/tanh saturate; the result must be finite and equal torch's
    rng = np.random.default_rng(5)
    x = np.array([-1000.0, -80.0, -30.0, 30.0, 80.0, 1000.0])
    forward, backward, torch_fn = ACTIVATIONS[name]
    out_t, dout, (dx_t,) = torch_reference(torch_fn, x, rng=rng)
    with np.errstate(over="ignore", under="ignore"):  # only values are judged here
        out, cache = forward(x)
        dx = backward(dout, cache)
    assert_close(out, out_t, name=f"{name} saturated: out", rtol=RTOL64, atol=ATOL64)
    assert_close(dx, dx_t, name=f"{name} saturated: dx", rtol=RTOL64, atol=ATOL64)


def test_relu_gradient_at_exactly_zero_is_zero_like_torch(assert_close):
    # the subgradient convention at the kink: torch passes no gradient where x == 0
    x = np.array([[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]])
    rng = np.random.default_rng(0)
    out_t, dout, (dx_t,) = torch_reference(torch.relu, x, rng=rng)
    out, cache = relu_forward(x)
    assert_close(out, out_t, name="relu at 0: out", rtol=0, atol=0)
    assert_close(relu_backward(dout, cache), dx_t, name="relu at 0: dx", rtol=0, atol=0)


# ---------------------------------------------------------- softmax and losses


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    axis_pick=st.integers(0, 5),
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    seed=seeds,
)
def test_softmax_matches_torch(shape, axis_pick, scale, seed, assert_close):
    rng = np.random.default_rng(seed)
    axis = [-1, *range(len(shape))][axis_pick % (len(shape) + 1)]
    x = rng.standard_normal(shape) * scale
    expected = torch.softmax(torch.tensor(x), dim=axis).numpy()
    p = softmax(x, axis=axis)
    # 1e4-sized scores are exactly the case an unstable exp() overflows on
    assert_close(p, expected, name=f"softmax x{shape} axis={axis} scale={scale}", rtol=RTOL64, atol=ATOL64)


def test_softmax_default_axis_is_last(assert_close):
    x = np.random.default_rng(2).standard_normal((3, 4))
    expected = torch.softmax(torch.tensor(x), dim=-1).numpy()
    assert_close(softmax(x), expected, name="softmax default axis", rtol=RTOL64, atol=ATOL64)


@given(
    n=st.integers(1, 6), k=st.integers(2, 6),
    scale=st.sampled_from([1.0, 10.0, 1e4]), seed=seeds,
)
def test_softmax_cross_entropy_matches_torch(n, k, scale, seed, assert_close):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, k)) * scale
    y = rng.integers(0, k, n)
    s_t = torch.tensor(scores, requires_grad=True)
    loss_t = F.cross_entropy(s_t, torch.as_tensor(y), reduction="mean")
    loss_t.backward()
    loss, dscores = softmax_cross_entropy(scores, y)
    where = f"softmax_cross_entropy scores{scores.shape} scale={scale}"
    assert_close(np.float64(loss), loss_t.item(), name=f"{where}: loss", rtol=RTOL64, atol=ATOL64)
    assert_close(dscores, s_t.grad.numpy(), name=f"{where}: dscores", rtol=RTOL64, atol=ATOL64)


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    scale=st.sampled_from([1.0, 10.0, 1e3]),
    soft=st.booleans(),
    seed=seeds,
)
def test_sigmoid_bce_matches_torch(shape, scale, soft, seed, assert_close):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape) * scale
    t = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    z_t = torch.tensor(logits, requires_grad=True)
    loss_t = F.binary_cross_entropy_with_logits(z_t, torch.tensor(t), reduction="mean")
    loss_t.backward()
    loss, dlogits = sigmoid_binary_cross_entropy(logits, t)
    where = f"sigmoid_binary_cross_entropy logits{shape} scale={scale} soft={soft}"
    assert_close(np.float64(loss), loss_t.item(), name=f"{where}: loss", rtol=RTOL64, atol=ATOL64)
    assert_close(dlogits, z_t.grad.numpy(), name=f"{where}: dlogits", rtol=RTOL64, atol=ATOL64)


# ------------------------------------------------------------- float32 inputs


def _f32_cases():
    """(name, numpy fn returning (out, grads), torch fn, inputs) for float32 checks."""
    rng = np.random.default_rng(123)
    x4 = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w4 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b4 = rng.standard_normal(4).astype(np.float32)
    x2 = rng.standard_normal((5, 6)).astype(np.float32)
    w2 = rng.standard_normal((3, 6)).astype(np.float32)
    b2 = rng.standard_normal(3).astype(np.float32)
    g3, be3 = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    g6, be6 = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    xp = tie_free(rng, (2, 3, 6, 6)).astype(np.float32)
    xr = away_from_zero(rng, (5, 6)).astype(np.float32)
    rm3, rv3 = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm6, rv6 = np.zeros(6, np.float32), np.ones(6, np.float32)

    def layer(fwd, bwd, **kw):
        def run(dout, *inputs):
            out, cache = fwd(*inputs, **kw)[:2]
            grads = bwd(dout, cache)
            return out, grads if isinstance(grads, tuple) else (grads,)
        return run

    return [
        ("conv2d", layer(conv2d_forward, conv2d_backward, stride=1, padding=1),
         lambda x, w, b: F.conv2d(x, w, b, padding=1), (x4, w4, b4)),
        ("conv2d_naive", layer(conv2d_forward_naive, conv2d_backward_naive, stride=2, padding=1, strict=False),
         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (x4, w4, b4)),
        ("linear", layer(linear_forward, linear_backward), F.linear, (x2, w2, b2)),
        ("maxpool2d", layer(maxpool2d_forward, maxpool2d_backward, kernel_size=2),
         lambda x: F.max_pool2d(x, 2), (xp,)),
        ("avgpool2d", layer(avgpool2d_forward, avgpool2d_backward, kernel_size=3, stride=3),
         lambda x: F.avg_pool2d(x, 3), (x4,)),
        ("global_avgpool", layer(global_avgpool_forward, global_avgpool_backward),
         lambda x: x.mean(dim=(2, 3)), (x4,)),
        ("batchnorm", layer(lambda x, g, b: batchnorm_forward(x, g, b, rm6, rv6), batchnorm_backward),
         lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), (x2, g6, be6)),
        ("spatial_batchnorm",
         layer(lambda x, g, b: spatial_batchnorm_forward(x, g, b, rm3, rv3), spatial_batchnorm_backward),
         lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), (x4, g3, be3)),
        ("relu", layer(relu_forward, relu_backward), torch.relu, (xr,)),
        ("sigmoid", layer(sigmoid_forward, sigmoid_backward), torch.sigmoid, (x2,)),
        ("tanh", layer(tanh_forward, tanh_backward), torch.tanh, (x2,)),
    ]


@pytest.mark.parametrize(
    "name, run, torch_fn, inputs", [pytest.param(*c, id=c[0]) for c in _f32_cases()]
)
def test_float32_inputs_keep_dtype_and_match_torch(name, run, torch_fn, inputs, assert_close):
    rng = np.random.default_rng(0)
    # oracle: torch in float64 on exactly the float32 values we pass in
    out_t, dout, grads_t = torch_reference(torch_fn, *inputs, rng=rng)
    dout32 = dout.astype(np.float32)
    out, grads = run(dout32, *inputs)
    assert out.dtype == np.float32, f"{name}: float32 input gave {out.dtype} output"
    assert_close(out, out_t, name=f"{name} float32: out", rtol=RTOL32, atol=ATOL32)
    for i, (g, g_t) in enumerate(zip(grads, grads_t)):
        assert g.dtype == np.float32, f"{name}: gradient #{i} is {g.dtype}, want float32"
        assert_close(g, g_t, name=f"{name} float32: gradient #{i}", rtol=RTOL32, atol=ATOL32)


def test_float32_softmax_and_losses_keep_dtype(assert_close):
    rng = np.random.default_rng(9)
    s = (rng.standard_normal((4, 5)) * 3).astype(np.float32)
    y = rng.integers(0, 5, 4)
    t = rng.integers(0, 2, (4, 5)).astype(np.float32)
    p = softmax(s)
    assert p.dtype == np.float32, f"softmax: float32 input gave {p.dtype}"
    assert_close(p, torch.softmax(torch.tensor(s, dtype=torch.float64), -1).numpy(),
                 name="softmax float32", rtol=RTOL32, atol=ATOL32)
    s_t = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(s_t, torch.as_tensor(y)).backward()
    _, ds = softmax_cross_entropy(s, y)
    assert ds.dtype == np.float32, f"softmax_cross_entropy: dscores is {ds.dtype}"
    assert_close(ds, s_t.grad.numpy(), name="softmax_cross_entropy float32: dscores", rtol=RTOL32, atol=ATOL32)
    z_t = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    F.binary_cross_entropy_with_logits(z_t, torch.tensor(t, dtype=torch.float64)).backward()
    _, dz = sigmoid_binary_cross_entropy(s, t)
    assert dz.dtype == np.float32, f"sigmoid_binary_cross_entropy: dlogits is {dz.dtype}"
    assert_close(dz, z_t.grad.numpy(), name="sigmoid_bce float32: dlogits", rtol=RTOL32, atol=ATOL32)


# -------------------------------------------------------------------- dropout
# torch's dropout draws its own mask, so dropout is checked through properties.

P_VALUES = [0.1, 0.3, 0.5, 0.8]


@pytest.mark.parametrize("p", P_VALUES)
def test_dropout_statistics(p):
    x = np.ones((200, 500))  # 1e5 units
    out, _ = dropout_forward(x, p=p, training=True, rng=np.random.default_rng(0))
    n = x.size
    dropped = np.mean(out == 0)
    # fraction dropped is Binomial(n, p)/n: std sqrt(p(1-p)/n) <= 1.6e-3; allow 5 std
    tol_frac = 5 * np.sqrt(p * (1 - p) / n)
    assert abs(dropped - p) < tol_frac, f"p={p}: dropped fraction {dropped:.4f}, expected {p} +- {tol_frac:.4f}"
    # inverted dropout: E[out] = x. mean(out) has std sqrt(p/((1-p) n)); allow 5 std
    tol_mean = 5 * np.sqrt(p / ((1 - p) * n))
    assert abs(out.mean() - 1.0) < tol_mean, f"p={p}: mean {out.mean():.4f} should be 1 +- {tol_mean:.4f}"


@pytest.mark.parametrize("p", P_VALUES)
def test_dropout_kept_values_scaled_and_backward_uses_same_mask(p, assert_close):
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (6, 7, 5))  # nonzero x, so out == 0 exactly marks dropped units
    out, cache = dropout_forward(x, p=p, training=True, rng=np.random.default_rng(42))
    kept = out != 0
    assert 0 < kept.sum() < kept.size, f"p={p}: degenerate mask ({kept.sum()} of {kept.size} kept)"
    # kept units are x / (1 - p): one multiply, so agree to a few ulps
    assert_close(out[kept], x[kept] / (1 - p), name=f"dropout p={p}: kept values", rtol=1e-12, atol=0)
    dout = rng.standard_normal(x.shape)
    dx = dropout_backward(dout, cache)
    assert np.all(dx[~kept] == 0), f"dropout p={p}: gradient leaks through dropped units"
    assert_close(dx[kept], dout[kept] / (1 - p), name=f"dropout p={p}: dx kept", rtol=1e-12, atol=0)


def test_dropout_same_seed_same_mask_different_seed_different_mask():
    x = np.ones((50, 40))
    a, _ = dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(7))
    b, _ = dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(7))
    c, _ = dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(8))
    assert np.array_equal(a, b), "same rng seed gave different dropout masks"
    assert not np.array_equal(a, c), "different seeds gave the same 2000-unit mask"


@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True), (0.0, False)])
def test_dropout_identity_when_eval_or_p_zero(p, training):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    out, cache = dropout_forward(x, p=p, training=training, rng=np.random.default_rng(0))
    assert np.array_equal(out, x), f"dropout p={p} training={training} changed the input"
    dout = rng.standard_normal((4, 5))
    assert np.array_equal(dropout_backward(dout, cache), dout), (
        f"dropout p={p} training={training}: backward is not the identity"
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_cases(strict=False), levels=st.integers(1, 3))
def test_pool_with_ties_matches_torch(kind, case, levels, assert_close):
    """Inputs with many equal values (0..levels-1): torch's max-pool gradient goes to
    the first maximum of each window in row-major order; so must ours."""
    forward, backward, torch_fn = POOLS[kind]
    rng = np.random.default_rng(case["seed"])
    x = rng.integers(0, levels, case["xshape"]).astype(np.float64)
    k, s = case["kernel_size"], case["stride"]
    out_t, dout, (dx_t,) = torch_reference(lambda x_: torch_fn(x_, kernel_size=k, stride=s), x, rng=rng)
    out, cache = forward(x, kernel_size=k, stride=s, strict=False)
    where = f"{forward.__name__} (ties) x{x.shape} kernel_size={k} stride={s}"
    assert_close(out, out_t, name=f"{where}: out", rtol=RTOL64, atol=ATOL64)
    assert_close(backward(dout, cache), dx_t, name=f"{where}: dx", rtol=RTOL64, atol=ATOL64)


def test_conv2d_backward_without_dx_gives_the_same_dw_and_db(assert_close):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 2, 7, 7)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    out, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dout = rng.standard_normal(out.shape)
    _, dw, db = conv2d_backward(dout, cache)
    dx, dw2, db2 = conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    assert_close(dw2, dw, name="dw", rtol=0, atol=0)
    assert_close(db2, db, name="db", rtol=0, atol=0)
