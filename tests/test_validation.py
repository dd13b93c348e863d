"""Argument checking: bad shapes and settings raise ValueError with a message that
names the function and the offending shape or setting; inputs are never
mutated; outputs and gradients keep the input's float dtype."""

from __future__ import annotations

import re

import numpy as np
import pytest

from coursekit.layers import (
    avgpool2d_backward,
    avgpool2d_forward,
    batchnorm_backward,
    batchnorm_forward,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    convolve2d,
    correlate2d,
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

z = np.zeros


def shape_text(shape):
    """How Python prints a shape tuple, as a regex: (8, 3, 3, 3)."""
    return re.escape(str(tuple(shape)))


def raises_naming(call, fn, *fragments):
    """call() must raise ValueError whose message names `fn` and matches at least
    one of the regex `fragments` (case-insensitive)."""
    with pytest.raises(ValueError, match=re.escape(fn)) as err:
        call()
    msg = str(err.value)
    assert any(re.search(f, msg, re.IGNORECASE) for f in fragments), (
        f"{fn}: message should mention one of {fragments}; got: {msg}"
    )


# ---------------------------------------------------------------------- conv

CONV_FORWARDS = [conv2d_forward, conv2d_forward_naive]

CONV_BAD = [
    ("channels", dict(x=z((2, 4, 5, 5)), w=z((8, 3, 3, 3)), b=z(8)), ["channel", shape_text((8, 3, 3, 3))]),
    ("x-3d", dict(x=z((4, 5, 5)), w=z((8, 4, 3, 3)), b=z(8)), [shape_text((4, 5, 5))]),
    ("w-3d", dict(x=z((1, 4, 5, 5)), w=z((4, 3, 3)), b=z(4)), [shape_text((4, 3, 3))]),
    ("b-length", dict(x=z((1, 3, 5, 5)), w=z((8, 3, 3, 3)), b=z(7)), [shape_text((7,)), r"\bb\b"]),
    ("kernel-too-big", dict(x=z((1, 1, 3, 3)), w=z((1, 1, 5, 5)), b=z(1)), ["fit", "larger", "kernel", "window"]),
    ("kernel-too-big-w", dict(x=z((1, 1, 6, 3)), w=z((1, 1, 3, 4)), b=z(1), padding=0), ["fit", "larger", "kernel", "window"]),
    ("stride-0", dict(x=z((1, 1, 5, 5)), w=z((1, 1, 3, 3)), b=z(1), stride=0), ["stride"]),
    ("stride-negative", dict(x=z((1, 1, 5, 5)), w=z((1, 1, 3, 3)), b=z(1), stride=(1, -1)), ["stride"]),
    ("stride-triple", dict(x=z((1, 1, 5, 5)), w=z((1, 1, 3, 3)), b=z(1), stride=(1, 1, 1)), ["stride"]),
    ("padding-negative", dict(x=z((1, 1, 5, 5)), w=z((1, 1, 3, 3)), b=z(1), padding=-1), ["padding"]),
    ("padding-negative-pair", dict(x=z((1, 1, 5, 5)), w=z((1, 1, 3, 3)), b=z(1), padding=(0, -2)), ["padding"]),
    # the syllabus case: 7x7 input, 3x3 filter, stride 3 does not tile
    ("stride-does-not-tile", dict(x=z((1, 1, 7, 7)), w=z((1, 1, 3, 3)), b=z(1), stride=3, strict=True),
     ["stride", "tile"]),
]


@pytest.mark.parametrize("forward", CONV_FORWARDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("args, fragments", [pytest.param(a, f, id=i) for i, a, f in CONV_BAD])
def test_conv_forward_rejects(forward, args, fragments):
    args = dict(args)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    raises_naming(lambda: forward(x, w, b, **args), forward.__name__, *fragments)


@pytest.mark.parametrize("forward", CONV_FORWARDS, ids=lambda f: f.__name__)
def test_conv_floors_a_non_tiling_stride_by_default(forward):
    for kw in ({}, {"strict": False}):
        out, _ = forward(z((1, 1, 7, 7)), z((1, 1, 3, 3)), z(1), stride=3, **kw)
        assert out.shape == (1, 1, 2, 2), f"floor((7-3)/3)+1 = 2, got {out.shape}"


@pytest.mark.parametrize(
    "forward, backward",
    [(conv2d_forward, conv2d_backward), (conv2d_forward_naive, conv2d_backward_naive)],
    ids=["fast", "naive"],
)
def test_conv_backward_rejects_wrong_dout_shape(forward, backward):
    _, cache = forward(z((2, 3, 5, 5)), z((4, 3, 3, 3)), z(4))  # out (2, 4, 3, 3)
    raises_naming(lambda: backward(z((2, 4, 3, 4)), cache), backward.__name__, shape_text((2, 4, 3, 4)), "dout")


# -------------------------------------------------------------------- linear


@pytest.mark.parametrize(
    "x, w, b, fragments",
    [
        (z((4, 5)), z((3, 6)), z(3), [shape_text((3, 6)), shape_text((4, 5)), "feature"]),
        (z((4, 2, 3)), z((3, 5)), z(3), [shape_text((3, 5)), shape_text((4, 2, 3)), "feature"]),
        (z((4, 5)), z((3, 5)), z(4), [shape_text((4,)), r"\bb\b"]),
        (z((4, 5)), z(5), z(3), [shape_text((5,)), r"\bw\b"]),
    ],
    ids=["features", "features-flattened", "bias", "w-1d"],
)
def test_linear_forward_rejects(x, w, b, fragments):
    raises_naming(lambda: linear_forward(x, w, b), "linear_forward", *fragments)


def test_linear_backward_rejects_wrong_dout_shape():
    _, cache = linear_forward(z((4, 5)), z((3, 5)), z(3))
    raises_naming(lambda: linear_backward(z((4, 2)), cache), "linear_backward", shape_text((4, 2)), "dout")


# ------------------------------------------------------------------- pooling

POOL_FORWARDS = [maxpool2d_forward, avgpool2d_forward]

POOL_BAD = [
    ("x-3d", z((3, 4, 4)), dict(kernel_size=2), [shape_text((3, 4, 4))]),
    ("kernel-too-big", z((1, 1, 2, 2)), dict(kernel_size=3), ["fit", "larger", "kernel", "window"]),
    ("kernel-0", z((1, 1, 4, 4)), dict(kernel_size=0), ["kernel"]),
    ("stride-0", z((1, 1, 4, 4)), dict(kernel_size=2, stride=0), ["stride"]),
    ("does-not-tile", z((1, 1, 5, 5)), dict(kernel_size=2), ["stride", "tile"]),
    ("does-not-tile-pair", z((1, 1, 4, 7)), dict(kernel_size=(2, 3), stride=(2, 3)), ["stride", "tile"]),
]


@pytest.mark.parametrize("forward", POOL_FORWARDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("x, kwargs, fragments", [pytest.param(x, k, f, id=i) for i, x, k, f in POOL_BAD])
def test_pool_forward_rejects(forward, x, kwargs, fragments):
    raises_naming(lambda: forward(x, **kwargs), forward.__name__, *fragments)


@pytest.mark.parametrize(
    "forward, backward", [(maxpool2d_forward, maxpool2d_backward), (avgpool2d_forward, avgpool2d_backward)],
    ids=["max", "avg"],
)
def test_pool_backward_rejects_wrong_dout_shape(forward, backward):
    x = np.arange(32, dtype=float).reshape(1, 2, 4, 4)
    _, cache = forward(x, kernel_size=2)
    raises_naming(lambda: backward(z((1, 2, 2, 3)), cache), backward.__name__, shape_text((1, 2, 2, 3)), "dout")


def test_global_avgpool_rejects_non_4d():
    raises_naming(lambda: global_avgpool_forward(z((3, 4, 4))), "global_avgpool_forward", shape_text((3, 4, 4)))


def test_global_avgpool_backward_rejects_wrong_dout_shape():
    _, cache = global_avgpool_forward(z((2, 3, 4, 4)))
    raises_naming(lambda: global_avgpool_backward(z((2, 4)), cache), "global_avgpool_backward", shape_text((2, 4)))


# ---------------------------------------------------------------- batch norm


def _bn_args(x, d, **bad):
    args = dict(gamma=np.ones(d), beta=z(d), running_mean=z(d), running_var=np.ones(d))
    args.update(bad)
    return x, args


BN_BAD = [
    ("gamma", batchnorm_forward, *_bn_args(z((4, 3)), 3, gamma=np.ones(4)), [shape_text((4,)), "gamma"]),
    ("beta", batchnorm_forward, *_bn_args(z((4, 3)), 3, beta=z((3, 1))), [shape_text((3, 1)), "beta"]),
    ("running_mean", batchnorm_forward, *_bn_args(z((4, 3)), 3, running_mean=z(2)), [shape_text((2,)), "running_mean"]),
    ("running_var", batchnorm_forward, *_bn_args(z((4, 3)), 3, running_var=np.ones(5)), [shape_text((5,)), "running_var"]),
    ("x-3d", batchnorm_forward, *_bn_args(z((4, 3, 2)), 3), [shape_text((4, 3, 2))]),
    ("spatial-x-2d", spatial_batchnorm_forward, *_bn_args(z((4, 3)), 3), [shape_text((4, 3))]),
    ("spatial-gamma", spatial_batchnorm_forward, *_bn_args(z((2, 3, 2, 2)), 3, gamma=np.ones(2)),
     [shape_text((2,)), "gamma"]),
]


@pytest.mark.parametrize("forward, x, args, fragments", [pytest.param(*c[1:], id=c[0]) for c in BN_BAD])
def test_batchnorm_forward_rejects(forward, x, args, fragments):
    raises_naming(lambda: forward(x, **args), forward.__name__, *fragments)


@pytest.mark.parametrize(
    "forward, backward, shape",
    [(batchnorm_forward, batchnorm_backward, (4, 3)), (spatial_batchnorm_forward, spatial_batchnorm_backward, (2, 3, 2, 2))],
    ids=["batchnorm", "spatial"],
)
def test_batchnorm_backward_rejects_wrong_dout_shape(forward, backward, shape):
    rng = np.random.default_rng(0)
    x, args = _bn_args(rng.standard_normal(shape), 3)
    _, cache, _, _ = forward(x, **args)
    bad = shape[:-1] + (shape[-1] + 1,)
    raises_naming(lambda: backward(z(bad), cache), backward.__name__, shape_text(bad), "dout")


# -------------------------------------------------------- losses and dropout


@pytest.mark.parametrize(
    "scores, y, fragments",
    [
        (z((4, 3)), np.array([0, 1, 2]), [shape_text((3,)), r"\by\b"]),
        (z(3), np.array([0]), [shape_text((3,)), "scores"]),
        (z((2, 3)), np.array([0, 3]), ["label", r"\b3\b"]),
        (z((2, 3)), np.array([-1, 0]), ["label", "-1"]),
    ],
    ids=["y-length", "scores-1d", "label-too-big", "label-negative"],
)
def test_softmax_cross_entropy_rejects(scores, y, fragments):
    raises_naming(lambda: softmax_cross_entropy(scores, y), "softmax_cross_entropy", *fragments)


def test_sigmoid_bce_rejects_shape_mismatch():
    raises_naming(
        lambda: sigmoid_binary_cross_entropy(z((4, 3)), z((4, 2))),
        "sigmoid_binary_cross_entropy", shape_text((4, 2)), shape_text((4, 3)),
    )


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_p_out_of_range(p, training):
    # p is checked even in eval mode, where it is otherwise unused
    raises_naming(
        lambda: dropout_forward(np.ones((3, 3)), p=p, training=training, rng=np.random.default_rng(0)),
        "dropout_forward", r"\bp\b", str(p),
    )


# -------------------------------------------------------------------- signal


@pytest.mark.parametrize("fn", [convolve2d, correlate2d], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "image, kernel, mode, fragments",
    [
        (z((1, 5, 5)), z((3, 3)), "valid", [shape_text((1, 5, 5)), "image"]),
        (z((5, 5)), z((3,)), "valid", [shape_text((3,)), "kernel"]),
        (z((5, 5)), z((3, 3)), "bogus", ["mode", "bogus"]),
        (z((3, 3)), z((4, 2)), "valid", [shape_text((4, 2)), "larger", "fit"]),
    ],
    ids=["image-3d", "kernel-1d", "mode", "kernel-too-big"],
)
def test_signal_rejects(fn, image, kernel, mode, fragments):
    raises_naming(lambda: fn(image, kernel, mode=mode), fn.__name__, *fragments)


# ----------------------------------------------- no mutation, dtype preserved


def _tie_free(rng, shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0 - 1.0


def layer_runs():
    """(id, make(rng, dtype) -> arrays, run(arrays, dout_rng) -> list of outputs and gradients).

    `run` draws dout from dout_rng with the output's shape and dtype and returns
    every array the forward and backward produced, plus (dout after backward,
    a copy of dout taken before backward), or None when there is no backward.
    """

    def fb(forward, backward, **kw):
        def run(arrays, rng):
            res = forward(*arrays, **kw)
            out, cache = res[0], res[1]
            dout = rng.standard_normal(out.shape).astype(out.dtype)
            dout_before = dout.copy()
            grads = backward(dout, cache)
            grads = list(grads) if isinstance(grads, tuple) else [grads]
            return [out, *res[2:], *grads], (dout, dout_before)
        return run

    def bn(shape, c, spatial):
        def make(rng, dt):
            return [rng.standard_normal(shape).astype(dt), rng.standard_normal(c).astype(dt),
                    rng.standard_normal(c).astype(dt), rng.standard_normal(c).astype(dt),
                    rng.uniform(0.5, 2, c).astype(dt)]
        fwd, bwd = (spatial_batchnorm_forward, spatial_batchnorm_backward) if spatial else (batchnorm_forward, batchnorm_backward)
        return make, fwd, bwd

    def arrays(*shapes):
        return lambda rng, dt: [rng.standard_normal(s).astype(dt) for s in shapes]

    mk_bn, f_bn, b_bn = bn((4, 3), 3, False)
    mk_sbn, f_sbn, b_sbn = bn((2, 3, 2, 2), 3, True)
    return [
        ("conv2d", arrays((2, 3, 5, 5), (4, 3, 3, 3), (4,)), fb(conv2d_forward, conv2d_backward, padding=1)),
        ("conv2d_naive", arrays((2, 3, 5, 5), (4, 3, 3, 3), (4,)),
         fb(conv2d_forward_naive, conv2d_backward_naive, stride=2)),
        ("linear", arrays((4, 2, 3), (5, 6), (5,)), fb(linear_forward, linear_backward)),
        ("relu", arrays((3, 4)), fb(relu_forward, relu_backward)),
        ("sigmoid", arrays((3, 4)), fb(sigmoid_forward, sigmoid_backward)),
        ("tanh", arrays((3, 4)), fb(tanh_forward, tanh_backward)),
        ("maxpool2d", lambda rng, dt: [_tie_free(rng, (2, 2, 4, 4)).astype(dt)],
         fb(maxpool2d_forward, maxpool2d_backward, kernel_size=2)),
        ("avgpool2d", arrays((2, 2, 4, 4)), fb(avgpool2d_forward, avgpool2d_backward, kernel_size=2, stride=1)),
        ("global_avgpool", arrays((2, 3, 4, 4)), fb(global_avgpool_forward, global_avgpool_backward)),
        ("batchnorm-train", mk_bn, fb(f_bn, b_bn, training=True)),
        ("batchnorm-eval", mk_bn, fb(f_bn, b_bn, training=False)),
        ("spatial_batchnorm-train", mk_sbn, fb(f_sbn, b_sbn, training=True)),
        ("spatial_batchnorm-eval", mk_sbn, fb(f_sbn, b_sbn, training=False)),
        ("dropout", arrays((5, 6)),
         fb(lambda x: dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(0)), dropout_backward)),
        ("dropout-eval", arrays((5, 6)),
         fb(lambda x: dropout_forward(x, p=0.5, training=False, rng=np.random.default_rng(0)), dropout_backward)),
        ("softmax", arrays((3, 4)), lambda a, rng: ([softmax(*a)], None)),
        ("softmax_cross_entropy", arrays((3, 4)),
         lambda a, rng: ([softmax_cross_entropy(a[0], np.array([0, 3, 1]))[1]], None)),
        ("sigmoid_bce", arrays((3, 4)),
         lambda a, rng: ([sigmoid_binary_cross_entropy(a[0], (a[0] > 0).astype(a[0].dtype))[1]], None)),
        ("correlate2d", arrays((6, 5), (3, 3)), lambda a, rng: ([correlate2d(*a, mode="same")], None)),
        ("convolve2d", arrays((6, 5), (3, 2)), lambda a, rng: ([convolve2d(*a, mode="full")], None)),
    ]


LAYER_RUNS = [pytest.param(mk, run, id=name) for name, mk, run in layer_runs()]


@pytest.mark.parametrize("make, run", LAYER_RUNS)
def test_inputs_and_dout_are_not_mutated(make, run):
    arrays = make(np.random.default_rng(0), np.float64)
    before = [a.copy() for a in arrays]
    _, douts = run(arrays, np.random.default_rng(1))
    for i, (a, a0) in enumerate(zip(arrays, before)):
        assert np.array_equal(a, a0), f"input #{i} (shape {a.shape}) was modified in place"
    if douts is not None:
        dout, dout_before = douts
        assert np.array_equal(dout, dout_before), "backward modified dout in place"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make, run", LAYER_RUNS)
def test_outputs_and_gradients_keep_input_dtype(make, run, dtype):
    results, _ = run(make(np.random.default_rng(0), dtype), np.random.default_rng(1))
    for i, r in enumerate(results):
        assert np.asarray(r).dtype == dtype, f"result #{i} has dtype {np.asarray(r).dtype}, input was {np.dtype(dtype)}"


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "forward, shape", [(batchnorm_forward, (6, 3)), (spatial_batchnorm_forward, (2, 3, 2, 2))],
    ids=["batchnorm", "spatial"],
)
def test_running_stats_not_mutated_and_new_arrays_returned(forward, shape, training):
    rng = np.random.default_rng(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm0, rv0 = rm.copy(), rv.copy()
    _, _, new_rm, new_rv = forward(rng.standard_normal(shape), np.ones(3), z(3), rm, rv, training=training)
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0), "running stats passed in were updated in place"
    # returned, never shared: a caller updating the new stats in place must not
    # silently change the old ones (also in eval mode, where they are unchanged)
    assert not np.shares_memory(new_rm, rm) and not np.shares_memory(new_rv, rv), (
        f"{forward.__name__}(training={training}): new running stats alias the arrays passed in"
    )
    if training:
        assert not np.allclose(new_rm, rm0), "training with momentum 0.1 should move the running mean"
    else:
        assert np.array_equal(new_rm, rm0) and np.array_equal(new_rv, rv0), "eval mode changed the running stats"
