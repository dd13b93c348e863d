"""A small fully convolutional network that labels every pixel, on synthetic shapes.

:func:`shapes_dataset` draws squares and discs on a noisy background and
returns, with each image, its mask of pixel labels (0 background, 1 square,
2 disc). :class:`TinyFCN` is a small U-Net: it shrinks the image 4 times with
two pools, grows the maps back with two transposed convolutions and joins the
encoder's maps of each size to the decoder's (skip connections), so its output
has the input's size whatever that size is (a multiple of 4). Training it takes
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


def _draw_shape(image: torch.Tensor, mask: torch.Tensor, label: int, radii: tuple[int, int],
                generator: torch.Generator) -> None:
    size = image.shape[-1]
    radius = int(torch.randint(radii[0], radii[1] + 1, (1,), generator=generator))
    cy, cx = (int(v) for v in torch.randint(radius, size - radius, (2,), generator=generator))
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    if label == 1:
        inside = ((yy - cy).abs() <= radius) & ((xx - cx).abs() <= radius)
    else:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= (radius + 0.5) ** 2
    brightness = 0.5 + 0.5 * torch.rand(1, generator=generator)
    image[inside] = brightness
    mask[inside] = label


def shapes_dataset(n: int, *, size: int = 32, shapes: int = 3, radii: tuple[int, int] = (4, 7),
                   noise: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``size`` x ``size`` with ``shapes`` random squares and discs each.

    Parameters
    ----------
    radii : (int, int)
        Smallest and largest half-width of a shape, in pixels. A square of
        half-width r has ``(4 - pi) (r + 1/2)^2`` more pixels than the disc of
        the same radius, in its four corners: 17 at r = 4, 49 at r = 7.

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
    if not (len(radii) == 2 and 1 <= radii[0] <= radii[1] and 2 * radii[1] + 1 <= size):
        raise ValueError(f"shapes_dataset: radii must be (low, high) with 1 <= low <= high and a shape of "
                         f"2 * high + 1 pixels fitting in size {size}, got {radii!r}")
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        for _ in range(shapes):
            label = int(torch.randint(1, 3, (1,), generator=generator))
            _draw_shape(images[i, 0], masks[i], label, radii, generator)
    images += noise * torch.randn(images.shape, generator=generator)
    return images, masks


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]


class TinyFCN(nn.Module):
    """A small U-Net: a conv-pool encoder, transposed convolutions back up, and skip connections.

    The encoder works at full, 1/2 and 1/4 resolution (``enc1``, ``enc2``,
    ``bottom``); the decoder doubles the size twice with transposed
    convolutions (kernel 2, stride 2). After each doubling the encoder's maps
    of the same size are concatenated to the upsampled ones (the U-Net skip
    connections), so the fine detail of the early layers, where a square's
    corner is, reaches the output, while the deep layers, whose units see a
    whole shape, say what it is.

    Parameters
    ----------
    width : int
        Channels of the full-resolution stage (doubled below it).
    num_classes : int

    Shapes
    ------
    x: (N, 1, H, W) with H and W multiples of 4 -> scores: (N, num_classes, H, W)
    """

    def __init__(self, width: int = 16, num_classes: int = len(CLASSES)):
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"TinyFCN: width must be an int >= 1, got {width!r}")
        w = width
        self.enc1 = nn.Sequential(*_conv(1, w))
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), *_conv(w, 2 * w))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), *_conv(2 * w, 2 * w), *_conv(2 * w, 2 * w))
        self.up2 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec2 = nn.Sequential(*_conv(w + 2 * w, w))         # after concatenating enc2's maps
        self.up1 = nn.ConvTranspose2d(w, w, 2, stride=2)
        self.head = nn.Conv2d(w + w, num_classes, 1)             # after concatenating enc1's maps

    def main_path(self) -> list[nn.Module]:
        """The layers an image passes through from input to scores, in order (the skips join dec2 and head)."""
        return [*self.enc1, *self.enc2, *self.bottom, self.up2, *self.dec2, self.up1, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"TinyFCN: height and width must be multiples of 4, got {tuple(x.shape[-2:])}")
        skip1 = self.enc1(x)
        skip2 = self.enc2(skip1)
        d2 = self.dec2(torch.cat([self.up2(self.bottom(skip2)), skip2], dim=1))
        return self.head(torch.cat([self.up1(d2), skip1], dim=1))


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
