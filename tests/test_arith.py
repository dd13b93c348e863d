"""Size and parameter arithmetic (coursekit.arith) against the syllabus numbers,
torch's own output shapes and brute-force counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from coursekit.arith import conv_output_size, conv_params, linear_params, receptive_field

# ------------------------------------------------------------- output sizes


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_syllabus_7x7_input_3x3_filter(stride, expected):
    got = conv_output_size(7, 3, stride)
    assert got == expected, f"7x7 input, 3x3 filter, stride {stride}: got {got}, syllabus says {expected}"


def test_syllabus_7x7_stride3_does_not_fit():
    # (7 - 3) / 3 + 1 = 2.33: strict mode refuses, and the message says why
    with pytest.raises(ValueError, match=r"conv_output_size.*stride"):
        conv_output_size(7, 3, 3)
    got = conv_output_size(7, 3, 3, strict=False)
    assert got == 2, f"floored 7x7/3x3/stride 3 should be 2 like torch, got {got}"


@pytest.mark.parametrize("f", [3, 5, 7])
@pytest.mark.parametrize("n", [7, 8, 32, 224])
def test_padding_f_minus_1_over_2_preserves_size(f, n):
    got = conv_output_size(n, f, 1, (f - 1) // 2)
    assert got == n, f"{f}x{f} filter, stride 1, pad {(f - 1) // 2} on {n}: got {got}, want {n}"


def test_syllabus_32_28_24_with_5x5_valid():
    sizes = [32]
    for _ in range(2):
        sizes.append(conv_output_size(sizes[-1], 5))
    assert sizes == [32, 28, 24], f"32 -> 5x5 -> 5x5 should shrink 32 -> 28 -> 24, got {sizes}"


@given(
    n=st.integers(1, 40), kernel=st.integers(1, 7),
    stride=st.integers(1, 4), padding=st.integers(0, 3),
)
def test_output_size_matches_torch_and_strictness(n, kernel, stride, padding):
    if n + 2 * padding < kernel:
        with pytest.raises(ValueError):
            conv_output_size(n, kernel, stride, padding, strict=False)
        return
    # oracle: the length of torch's actual conv1d output (floor mode)
    expected = F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, kernel), stride=stride, padding=padding).shape[-1]
    got = conv_output_size(n, kernel, stride, padding, strict=False)
    assert got == expected, f"n={n} k={kernel} s={stride} p={padding}: got {got}, torch gives {expected}"
    tiles = (n - kernel + 2 * padding) % stride == 0
    if tiles:
        assert conv_output_size(n, kernel, stride, padding) == expected
    else:
        with pytest.raises(ValueError):
            conv_output_size(n, kernel, stride, padding)


@pytest.mark.parametrize(
    "args", [(0, 3), (5, 0), (5, 3, 0), (5, 3, -1), (5, 3, 1, -1)],
    ids=["n=0", "kernel=0", "stride=0", "stride<0", "padding<0"],
)
def test_output_size_rejects_nonsense(args):
    with pytest.raises(ValueError, match="conv_output_size"):
        conv_output_size(*args, strict=False)


# --------------------------------------------------------------- parameters


def test_syllabus_ten_5x5_filters_on_32x32x3_have_760_params():
    assert conv_params(3, 10, 5) == 760, f"(5*5*3)*10 + 10 = 760, got {conv_params(3, 10, 5)}"


def test_alexnet_conv1_params():
    # 96 filters of 11x11x3 plus 96 biases = 34,944 (syllabus)
    assert conv_params(3, 96, 11) == 34_944, f"got {conv_params(3, 96, 11)}"


def test_syllabus_weight_counts_fc_local_shared():
    # fully connected: 200x200 image to 40,000 hidden units -> 1.6e9 weights
    assert linear_params(200 * 200, 40_000, bias=False) == 1_600_000_000
    # locally connected: each of 40K units has its own 10x10 field -> 4M weights
    assert 40_000 * conv_params(1, 1, 10, bias=False) == 4_000_000
    # shared: 100 filters of 10x10 -> 10K weights
    assert conv_params(1, 100, 10, bias=False) == 10_000


@given(
    cin=st.integers(1, 4), cout=st.integers(1, 5),
    kh=st.integers(1, 4), kw=st.integers(1, 4), bias=st.booleans(),
)
def test_conv_params_match_torch_module(cin, cout, kh, kw, bias):
    module = torch.nn.Conv2d(cin, cout, (kh, kw), bias=bias)
    expected = sum(p.numel() for p in module.parameters())
    kernel = kh if kh == kw else (kh, kw)
    got = conv_params(cin, cout, kernel, bias=bias)
    assert got == expected, f"Conv2d({cin}, {cout}, {(kh, kw)}, bias={bias}): got {got}, torch counts {expected}"


@given(fin=st.integers(1, 50), fout=st.integers(1, 50), bias=st.booleans())
def test_linear_params_match_torch_module(fin, fout, bias):
    expected = sum(p.numel() for p in torch.nn.Linear(fin, fout, bias=bias).parameters())
    got = linear_params(fin, fout, bias=bias)
    assert got == expected, f"Linear({fin}, {fout}, bias={bias}): got {got}, torch counts {expected}"


def test_linear_params_default_has_bias():
    assert linear_params(4, 3) == 15, "4*3 weights + 3 biases"


# ---------------------------------------------------------- receptive field


def brute_receptive_field(layers):
    """Walk one output unit back through the stack: window [a, b] at a layer's
    output came from input positions [a*s, b*s + k - 1]."""
    a = b = 0
    for k, s in reversed(list(layers)):
        a, b = a * s, b * s + k - 1
    return b - a + 1


@pytest.mark.parametrize("k, p", [(5, 2), (3, 2), (3, 3), (7, 2)])
def test_syllabus_conv_then_pool_sees_p_plus_k_minus_1(k, p):
    got = receptive_field([(k, 1), (p, p)])
    assert got == p + k - 1, f"{k}x{k} conv then {p}x{p} pool: got {got}, syllabus P+K-1 = {p + k - 1}"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_syllabus_stacked_3x3_convs(n):
    got = receptive_field([(3, 1)] * n)
    assert got == 2 * n + 1, f"{n} stacked 3x3 convs: got {got}, want 2n+1 = {2 * n + 1}"


def test_receptive_field_of_empty_stack_is_one_pixel():
    assert receptive_field([]) == 1


@given(layers=st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), max_size=6))
def test_receptive_field_matches_brute_force(layers):
    got, expected = receptive_field(layers), brute_receptive_field(layers)
    assert got == expected, f"layers {layers}: got {got}, walking back one unit gives {expected}"


def test_receptive_field_matches_gradient_support():
    """Independent check with autograd: the input pixels that receive gradient from
    one output unit of a real conv/pool stack span exactly the receptive field."""
    layers = [(3, 1), (2, 2), (3, 1), (3, 2)]
    x = torch.randn(1, 1, 40, 40, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s in layers:
        # all-ones kernels (a pool is a strided window too): with positive weights no
        # cancellation can hide a pixel from the gradient
        h = F.conv2d(h, torch.ones(1, 1, k, k, dtype=torch.float64), stride=s)
    h[0, 0, 0, 0].backward()
    rows = np.nonzero(x.grad[0, 0].abs().sum(dim=1).numpy())[0]
    support = int(rows.max() - rows.min() + 1)
    assert receptive_field(layers) == support, (
        f"layers {layers}: receptive_field {receptive_field(layers)}, autograd support {support}"
    )
