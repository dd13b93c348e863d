"""A small fully convolutional network that labels every pixel, on synthetic shapes.

:func:`shapes_dataset` draws squares and discs on a noisy background and
returns, with each image, its mask of pixel labels (0 background, 1 square,
2 disc). :class:`TinyFCN` shrinks the image 4 times with two conv-pool stages
(and one more convolution at that scale) and grows the maps back with two transposed convolutions, so its output has
the input's size whatever that size is (a multiple of 4). Training it takes
seconds on a CPU.

The sizes follow two formulas: a convolution maps ``n`` to
``(n - k + 2p) // s + 1`` (:func:`coursekit.arith.conv_output_size`), a
transposed convolution maps it back to ``(n - 1) * s - 2p + k``
(:func:`transposed_conv_output_size`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CLASSES", "transposed_conv_output_size", "shapes_dataset", "TinyFCN", "confusion", "per_class_iou"]

#: The pixel labels of :func:`shapes_dataset`.
CLASSES = ("background", "square", "disc")


def transposed_conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0,
                                output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one axis: ``(n - 1) * s - 2p + k + output_padding``.

    This is the input length of the convolution with the same ``kernel``,
    ``stride`` and ``padding`` that maps a length back to ``n`` (exactly when
    that convolution tiles; ``output_padding`` picks among the lengths a
    flooring convolution sends to ``n``). Matches ``torch.nn.ConvTranspose2d``.
    """
    for name, v, low in (("n", n, 1), ("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0),
                         ("output_padding", output_padding, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"transposed_conv_output_size: {name} must be an int >= {low}, got {v!r}")
    if output_padding >= stride:
        raise ValueError(f"transposed_conv_output_size: output_padding {output_padding} must be < stride {stride}")
    size = (n - 1) * stride - 2 * padding + kernel + output_padding
    if size < 1:
        raise ValueError(f"transposed_conv_output_size: padding {padding} leaves no output for n={n}, kernel={kernel}")
    return size


def _draw_shape(image: torch.Tensor, mask: torch.Tensor, label: int, generator: torch.Generator) -> None:
    size = image.shape[-1]
    radius = int(torch.randint(3, size // 5 + 1, (1,), generator=generator))
    cy, cx = (int(v) for v in torch.randint(radius, size - radius, (2,), generator=generator))
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    if label == 1:
        inside = ((yy - cy).abs() <= radius) & ((xx - cx).abs() <= radius)
    else:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= (radius + 0.5) ** 2
    brightness = 0.5 + 0.5 * torch.rand(1, generator=generator)
    image[inside] = brightness
    mask[inside] = label


def shapes_dataset(n: int, *, size: int = 32, shapes: int = 3, noise: float = 0.15,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``size`` x ``size`` with ``shapes`` random squares and discs each.

    Returns
    -------
    images : tensor (n, 1, size, size), float32
        Shapes of brightness 0.5 to 1 on a dark background, plus Gaussian noise.
    masks : tensor (n, size, size), int64
        The label of each pixel (:data:`CLASSES`); a later shape covers an earlier one.
    """
    for name, v, low in (("n", n, 1), ("size", size, 16), ("shapes", shapes, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"shapes_dataset: {name} must be an int >= {low}, got {v!r}")
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        for _ in range(shapes):
            label = int(torch.randint(1, 3, (1,), generator=generator))
            _draw_shape(images[i, 0], masks[i], label, generator)
    images += noise * torch.randn(images.shape, generator=generator)
    return images, masks


class TinyFCN(nn.Module):
    """Encoder (two conv 3x3 - relu - max pool 2 stages, one more conv) and decoder (two transposed convs, stride 2).

    Parameters
    ----------
    width : int
        Channels after the first stage (doubled after the second).
    num_classes : int

    Shapes
    ------
    x: (N, 1, H, W) with H and W multiples of 4 -> scores: (N, num_classes, H, W)
    """

    def __init__(self, width: int = 16, num_classes: int = len(CLASSES)):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            # At 1/4 resolution a 3x3 conv sees 12 pixels more: enough to tell a disc's edge from a square's corner.
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 2, stride=2), nn.ReLU(),
            nn.Conv2d(width, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"TinyFCN: height and width must be multiples of 4, got {tuple(x.shape[-2:])}")
        return self.decoder(self.encoder(x))


def confusion(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts of pixels: row the true label, column the predicted one."""
    if pred.shape != truth.shape:
        raise ValueError(f"confusion: pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ in shape")
    return torch.bincount(truth.flatten() * num_classes + pred.flatten(),
                          minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_iou(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> list[float]:
    """Intersection over union of the predicted and true pixels of each class (NaN if a class is absent from both)."""
    cm = confusion(pred, truth, num_classes).double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    return (inter / union).tolist()
