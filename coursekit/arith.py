"""Size, parameter and compute arithmetic for stacks of convolution and pooling layers.

Every number in the course's tables (output sizes, parameter counts, multiply-adds,
receptive fields) comes from these functions, so the book, the homework and the
torch ``summary`` agree with the hand formulas:

    W2 = (W1 - F + 2P) / S + 1,   parameters = (F * F * D1) * K + K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

__all__ = [
    "pair",
    "conv_output_size",
    "conv_params",
    "linear_params",
    "conv_macs",
    "receptive_field",
    "Conv",
    "Pool",
    "Dense",
    "LayerRow",
    "describe",
]


def pair(value, name: str = "value", *, where: str = "arith") -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints; accepts an int or a pair."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return (value, value)
    try:
        h, w = value
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be an int or an (h, w) pair, got {value!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w)):
        raise ValueError(f"{where}: {name} must hold ints, got {value!r}")
    return (h, w)


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, *, strict: bool = True) -> int:
    """Output length of a convolution or pooling window along one axis.

    Parameters
    ----------
    n : int
        Input length (height or width).
    kernel, stride, padding : int
        Window extent F, step S and zero padding P on each side.
    strict : bool
        If True (default), raise ``ValueError`` when the windows do not tile the
        padded input exactly, i.e. when ``(n - F + 2P) / S`` is not an integer
        (the 7x7 input, 3x3 filter, stride 3 case). If False, floor like
        ``torch.nn.functional.conv2d`` and drop the rows that do not fit.

    Returns
    -------
    int
        ``(n - kernel + 2 * padding) // stride + 1``.
    """
    for name, v, low in (("n", n, 1), ("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"conv_output_size: {name} must be an int >= {low}, got {v!r}")
    span = n + 2 * padding - kernel
    if span < 0:
        raise ValueError(
            f"conv_output_size: a window of {kernel} does not fit in an input of {n} with padding {padding}"
        )
    if strict and span % stride:
        raise ValueError(
            f"conv_output_size: stride {stride} does not tile the input: "
            f"({n} - {kernel} + 2*{padding}) / {stride} + 1 = {span / stride + 1:.2f} is not an integer "
            "(change stride or padding, or pass strict=False to floor like torch)"
        )
    return span // stride + 1


def conv_params(in_channels: int, out_channels: int, kernel, bias: bool = True) -> int:
    """Learnable parameters of a conv layer: ``(KH * KW * D1) * K`` weights plus ``K`` biases."""
    kh, kw = pair(kernel, "kernel", where="conv_params")
    return kh * kw * in_channels * out_channels + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Learnable parameters of a fully connected layer: ``c * p + c`` with bias."""
    return in_features * out_features + (out_features if bias else 0)


def conv_macs(in_channels: int, out_channels: int, kernel, out_h: int, out_w: int) -> int:
    """Multiply-accumulates of one conv layer on one image (bias adds not counted).

    Each of the ``K * H2 * W2`` outputs is a dot product of length ``KH * KW * D1``.
    One multiply-accumulate is two floating-point operations.
    """
    kh, kw = pair(kernel, "kernel", where="conv_macs")
    return out_channels * out_h * out_w * in_channels * kh * kw


def receptive_field(layers: Iterable[tuple[int, int]]) -> int:
    """Side of the input patch that one output unit of a stack of windows sees.

    Parameters
    ----------
    layers : iterable of (kernel, stride)
        Conv or pooling windows from input to output.

    Each layer adds ``(kernel - 1) * jump`` to the field, where ``jump`` is the
    product of the strides below it: a KxK stride-1 conv followed by a PxP pool
    sees ``P + K - 1`` pixels; n stacked 3x3 convs see ``2n + 1``.
    """
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


# A layer stack, described by hand, for tables such as AlexNet's.


@dataclass(frozen=True)
class Conv:
    """A conv layer: ``out_channels`` filters of ``kernel`` x ``kernel``."""

    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    name: str = "conv"


@dataclass(frozen=True)
class Pool:
    """A max or average pooling window (no parameters)."""

    kernel: int
    stride: int | None = None
    name: str = "pool"


@dataclass(frozen=True)
class Dense:
    """A fully connected layer; flattens its input first."""

    out_features: int
    name: str = "fc"


class LayerRow(NamedTuple):
    """One row of :func:`describe`: shapes are ``(C, H, W)`` or ``(features,)``."""

    name: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: int | None


def describe(layers: Sequence[Conv | Pool | Dense], input_shape: tuple[int, int, int], *, strict: bool = False) -> list[LayerRow]:
    """Walk a layer stack and report each layer's output shape, parameters and MACs.

    Parameters
    ----------
    layers : sequence of Conv, Pool, Dense
    input_shape : (C, H, W)
    strict : bool
        Passed to :func:`conv_output_size`; False floors like torch.
    """
    c, h, w = input_shape
    features = None
    windows: list[tuple[int, int]] = []
    rows = []
    for layer in layers:
        if isinstance(layer, Conv):
            if features is not None:
                raise ValueError(f"describe: {layer.name} is a conv after a dense layer")
            h2 = conv_output_size(h, layer.kernel, layer.stride, layer.padding, strict=strict)
            w2 = conv_output_size(w, layer.kernel, layer.stride, layer.padding, strict=strict)
            params = conv_params(c, layer.out_channels, layer.kernel)
            macs = conv_macs(c, layer.out_channels, layer.kernel, h2, w2)
            c, h, w = layer.out_channels, h2, w2
            windows.append((layer.kernel, layer.stride))
            rows.append(LayerRow(layer.name, (c, h, w), params, macs, receptive_field(windows)))
        elif isinstance(layer, Pool):
            stride = layer.stride or layer.kernel
            h = conv_output_size(h, layer.kernel, stride, strict=strict)
            w = conv_output_size(w, layer.kernel, stride, strict=strict)
            windows.append((layer.kernel, stride))
            rows.append(LayerRow(layer.name, (c, h, w), 0, 0, receptive_field(windows)))
        elif isinstance(layer, Dense):
            fan_in = features if features is not None else c * h * w
            features = layer.out_features
            rows.append(LayerRow(layer.name, (features,), linear_params(fan_in, features), fan_in * features, None))
        else:
            raise ValueError(f"describe: unknown layer {layer!r}")
    return rows
