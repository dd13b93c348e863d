"""The cases of homework 3's hidden tests (convolution and max pooling), and the checks that run them.

Every run covers every feature that a usual bug needs in order to show: a batch of two
or more images (a gradient averaged over the batch), several input channels (only
channel 0 used), several filters, non-square images and kernels (height and width
swapped), windows that overlap (a gradient assigned instead of accumulated), windows
that do not tile the input (the output size rounded the wrong way), padding 0 and
padding > 0 (the padding left on ``dx``, or ``[P:-P]`` cropping everything when P = 0),
values of size 1e-3 and 1e3, and, for pooling, exact ties. The seed draws the values,
the scales and one extra case of random shape; it never decides what is covered.

The student's backward gets its cache from the test, built from the forward's inputs
as the notebook prescribes (``(x, w, b, stride, padding)`` for the convolution,
``(x, kernel_size, stride)`` for max pooling), so a gradient test scores that gradient
whatever the student's forward does. The expected values come from
``coursekit.layers``, which the project checks against torch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from coursekit import checks
from coursekit.layers import conv2d_backward as _ref_conv_backward
from coursekit.layers import conv2d_forward as _ref_conv_forward
from coursekit.layers import maxpool2d_backward as _ref_pool_backward
from coursekit.layers import maxpool2d_forward as _ref_pool_forward

__all__ = ["ConvCase", "PoolCase", "conv_cases", "pool_cases", "check_conv2d_forward", "check_conv2d_backward",
           "check_conv2d_gradients_numerically", "check_maxpool_forward", "check_maxpool_backward"]

GRADIENTS = ("dx", "dw", "db")


class ConvCase(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: int
    padding: int
    label: str  # how the failure message names the case


class PoolCase(NamedTuple):
    x: np.ndarray
    kernel_size: int
    stride: int
    label: str


# (N, C, F, H, W, KH, KW, stride, padding, log10 of the x scale, log10 of the w scale). Each row's
# comment says what it covers; every row has N >= 2, C >= 2, F >= 2 and a non-square image.
_CONV_GEOMETRIES = (
    (2, 3, 2, 7, 5, 3, 2, 2, 1, 0, 0),  # rows overlap (S < KH), columns do not tile, P = 1
    (3, 2, 3, 6, 8, 2, 3, 1, 0, 3, 0),  # stride 1, P = 0, windows overlap both ways, large x
    (2, 4, 2, 9, 7, 4, 3, 3, 2, -3, -1),  # stride 3 < KH, columns do not tile, P = 2, small values
    (2, 2, 3, 5, 6, 3, 3, 2, 2, 0, 3),  # P = 2 with stride 2, overlapping, large w
)

# (N, C, H, W, kernel, stride, log10 of the scale)
_POOL_GEOMETRIES = (
    (2, 3, 6, 8, 2, 2, 0),  # windows tile the image
    (2, 2, 8, 7, 3, 2, 3),  # overlapping windows (stride < kernel), rows do not tile
    (3, 2, 7, 9, 2, 2, -3),  # stride = kernel, neither axis tiles: the last row is never visited
    (2, 3, 9, 6, 3, 1, 0),  # stride 1: every inner pixel is in up to 9 windows
    (2, 2, 7, 8, 2, 3, 0),  # stride > kernel: gaps between windows
)
# Ties are about which pixel of one window wins, so these windows do not overlap.
_TIE_GEOMETRIES = (
    (2, 3, 6, 7, 2, 2, 0),  # columns do not tile
    (2, 2, 7, 8, 3, 3, 2),  # 3x3 windows, neither axis tiles
    (3, 2, 4, 6, 2, 2, -2),
)


def _scale(rng: np.random.Generator, log10: float) -> float:
    """10 ** log10, varied by up to a factor of 3 either way."""
    return float(10.0 ** (log10 + rng.uniform(-0.5, 0.5)))


def _conv_label(k: int, n: int, seed: int, x, w, stride, padding) -> str:
    return (f"hidden case {k + 1} of {n} (seed {seed}): x of shape {x.shape}, w of shape {w.shape}, "
            f"stride {stride}, padding {padding}, |x| up to {np.abs(x).max():.3g}, |w| up to {np.abs(w).max():.3g}")


def _random_conv_geometry(rng: np.random.Generator) -> tuple:
    """One more case of random shape, still with N, C, F >= 2 and an output of at least 1x1."""
    while True:
        n, c, f = (int(v) for v in rng.integers(2, (4, 5, 4)))
        h, w, kh, kw = (int(v) for v in rng.integers((3, 3, 1, 1), (10, 10, 5, 5)))
        stride, padding = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        if h + 2 * padding >= kh and w + 2 * padding >= kw and (h, kh) != (w, kw):
            return n, c, f, h, w, kh, kw, stride, padding, 0, 0


def conv_cases(seed: int) -> list[ConvCase]:
    """The fixed geometries, in float64 with fresh values, and one of random shape."""
    rng = np.random.default_rng(seed)
    geometries = (*_CONV_GEOMETRIES, _random_conv_geometry(rng))
    cases = []
    for k, (n, c, f, h, w, kh, kw, stride, padding, x_log, w_log) in enumerate(geometries):
        x = _scale(rng, x_log) * rng.standard_normal((n, c, h, w))
        wt = _scale(rng, w_log) * rng.standard_normal((f, c, kh, kw))
        b = rng.standard_normal(f) * np.abs(x).max() * np.abs(wt).max()
        cases.append(ConvCase(x, wt, b, stride, padding,
                              _conv_label(k, len(geometries), seed, x, wt, stride, padding)))
    return cases


def _with_ties(rng: np.random.Generator, shape: tuple, kernel: int) -> np.ndarray:
    """Small integers, so windows hold equal maxima; and on every map, for certain, a window of
    equal values, a window whose maximum sits in its first and last pixel, and one whose maximum
    sits at its top-right and bottom-left corners (first in row-major order, last in column-major)."""
    k = kernel
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    x[:, :, :k, :k] = 5.0
    x[:, :, k:2 * k, k:2 * k] = 1.0
    x[:, :, k, k] = x[:, :, 2 * k - 1, 2 * k - 1] = 7.0
    x[:, :, k:2 * k, :k] = 1.0
    x[:, :, k, k - 1] = x[:, :, 2 * k - 1, 0] = 6.0
    return x


def pool_cases(seed: int, *, ties: bool = False) -> list[PoolCase]:
    """Max-pooling cases in float64: tie-free values, or (``ties``) values with equal maxima."""
    rng = np.random.default_rng(seed)
    geometries = _TIE_GEOMETRIES if ties else _POOL_GEOMETRIES
    cases = []
    for k, (n, c, h, w, kernel, stride, log10) in enumerate(geometries):
        scale = _scale(rng, log10)
        x = scale * (_with_ties(rng, (n, c, h, w), kernel) if ties else rng.standard_normal((n, c, h, w)))
        label = (f"hidden case {k + 1} of {len(geometries)} (seed {seed}): x of shape {x.shape}, "
                 f"kernel_size {kernel}, stride {stride}, |x| up to {np.abs(x).max():.3g}"
                 + (", with equal maxima in windows" if ties else ""))
        cases.append(PoolCase(x, kernel, stride, label))
    return cases


# ------------------------------------------------------------------ checks


def _values(name: str, result: Any, n: int) -> tuple:
    if n > 1 and not (isinstance(result, (tuple, list)) and len(result) == n):
        got = f"{type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) \
            else type(result).__name__
        raise checks.CheckFailure(f"{name}: should return {n} values, got a {got}")
    return tuple(result) if n > 1 else (result,)


def _unchanged(name: str, sent: dict) -> None:
    """The arrays handed to the student's function still hold what the test put in them."""
    for arg, (before, after) in sent.items():
        if not (np.shape(after) == before.shape and np.array_equal(np.asarray(after), before)):
            raise checks.CheckFailure(f"{name}: your function changed its argument {arg} in place; "
                                      "leave the inputs as they are and compute into new arrays")


def check_conv2d_forward(conv2d_forward: Callable, seed: int) -> None:
    """``out`` of the student's forward against the reference, on every case of ``conv_cases(seed)``."""
    for case in conv_cases(seed):
        expected, _ = _ref_conv_forward(case.x, case.w, case.b, stride=case.stride, padding=case.padding,
                                        strict=False)
        x, w, b = case.x.copy(), case.w.copy(), case.b.copy()
        with checks.in_case(case.label):
            result = conv2d_forward(x, w, b, stride=case.stride, padding=case.padding)
            out = _values("conv2d_forward", result, 2)[0]
            _unchanged("conv2d_forward", {"x": (case.x, x), "w": (case.w, w), "b": (case.b, b)})
            checks.assert_close_to_scale("conv2d_forward", out, expected, what="out")


def check_conv2d_backward(conv2d_backward: Callable, gradient: str, seed: int) -> None:
    """One gradient (``"dx"``, ``"dw"`` or ``"db"``) of the student's backward against the reference.

    The cache is ``(x, w, b, stride, padding)``, built here; ``dout`` is random.
    """
    which = GRADIENTS.index(gradient)
    rng = np.random.default_rng([seed, 1])
    for case in conv_cases(seed):
        out, ref_cache = _ref_conv_forward(case.x, case.w, case.b, stride=case.stride, padding=case.padding,
                                           strict=False)
        dout = rng.standard_normal(out.shape)
        expected = _ref_conv_backward(dout, ref_cache)[which]
        x, w, b, d = case.x.copy(), case.w.copy(), case.b.copy(), dout.copy()
        with checks.in_case(case.label):
            grads = _values("conv2d_backward", conv2d_backward(d, (x, w, b, case.stride, case.padding)), 3)
            _unchanged("conv2d_backward", {"dout": (dout, d), "x in the cache": (case.x, x),
                                           "w in the cache": (case.w, w), "b in the cache": (case.b, b)})
            checks.assert_close_to_scale("conv2d_backward", grads[which], expected, what=gradient)


def check_conv2d_gradients_numerically(name: str, grads: tuple, x, w, b, *, stride: int, padding: int,
                                       dout) -> None:
    """``(dx, dw, db)`` against centred finite differences of ``sum(out * dout)``, ``out`` the reference's.

    The tolerances are those of :func:`coursekit.checks.check_backward_numerically` (float64, h = 1e-6).
    """
    grads = _values(name, grads, 3)

    def forward(*args):
        return _ref_conv_forward(*args, stride=stride, padding=padding, strict=False)

    checks.check_backward_numerically(forward, lambda _dout, _cache: grads, (x, w, b), dout=dout,
                                      input_names=GRADIENTS, name=name, disable_reference=False)


def check_maxpool_forward(maxpool2d_forward: Callable, seed: int) -> None:
    """``out`` of the student's max pooling against the reference, tie-free cases and cases with ties."""
    for case in (*pool_cases(seed), *pool_cases(seed, ties=True)):
        expected, _ = _ref_pool_forward(case.x, kernel_size=case.kernel_size, stride=case.stride, strict=False)
        x = case.x.copy()
        with checks.in_case(case.label):
            result = maxpool2d_forward(x, kernel_size=case.kernel_size, stride=case.stride)
            out = _values("maxpool2d_forward", result, 2)[0]
            _unchanged("maxpool2d_forward", {"x": (case.x, x)})
            checks.assert_close_to_scale("maxpool2d_forward", out, expected, what="out")


def check_maxpool_backward(maxpool2d_backward: Callable, seed: int, *, ties: bool = False) -> None:
    """``dx`` of the student's max pooling against the reference; the cache is ``(x, kernel_size, stride)``.

    Routing is exact (each entry of ``dx`` is a sum of entries of ``dout``), so the only
    tolerance is for sums of overlapping windows taken in another order.
    """
    rng = np.random.default_rng([seed, 2])
    for case in pool_cases(seed, ties=ties):
        out, ref_cache = _ref_pool_forward(case.x, kernel_size=case.kernel_size, stride=case.stride, strict=False)
        dout = rng.standard_normal(out.shape)
        expected = _ref_pool_backward(dout, ref_cache)
        x, d = case.x.copy(), dout.copy()
        with checks.in_case(case.label):
            dx = maxpool2d_backward(d, (x, case.kernel_size, case.stride))
            _unchanged("maxpool2d_backward", {"dout": (dout, d), "x in the cache": (case.x, x)})
            checks.assert_close_to_scale("maxpool2d_backward", dx, expected, what="dx")
