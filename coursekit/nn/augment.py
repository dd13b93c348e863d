"""Data augmentation on batches of image tensors, written in torch (no torchvision).

Every transform takes a batch ``x: (N, C, H, W)`` and returns a new tensor of
the same shape, dtype and device; the input is never modified. Randomness comes
from a passed ``torch.Generator`` (a CPU one; the draws are moved to ``x``'s
device), so a seeded generator gives the same augmented batch every run.
Each random transform has a deterministic functional core (:func:`hflip`,
:func:`crop`, :func:`rotate`) that the tests check directly.

>>> aug = Compose([RandomCrop(2), RandomHorizontalFlip(), RandomRotation(10), GaussianNoise(0.05)])
>>> g = torch.Generator().manual_seed(0)
>>> x_aug = aug(x, generator=g)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "hflip",
    "crop",
    "rotate",
    "affine",
    "RandomHorizontalFlip",
    "RandomCrop",
    "RandomRotation",
    "RandomAffine",
    "ElasticDistortion",
    "GaussianNoise",
    "Compose",
    "default_augment",
]

Transform = Callable[..., torch.Tensor]


def _check_batch(x: torch.Tensor, where: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{where}: x must be a (N, C, H, W) tensor, got {shape}")


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right. ``x: (N, C, H, W)``; ``hflip(hflip(x)) == x``."""
    _check_batch(x, "hflip")
    return x.flip(-1)


def crop(x: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and cut an ``H x W`` window at per-image offsets.

    Parameters
    ----------
    x : (N, C, H, W)
    padding : int
        Zeros added on each side.
    offsets : (N, 2) integer tensor
        ``(top, left)`` of each window in the padded image, each in ``[0, 2 * padding]``;
        ``offsets == padding`` returns the image unchanged.

    Returns
    -------
    (N, C, H, W), the image shifted by ``padding - offsets`` with zeros let in.
    """
    _check_batch(x, "crop")
    n, c, h, w = x.shape
    offsets = torch.as_tensor(offsets, device=x.device).long()
    if offsets.shape != (n, 2):
        raise ValueError(f"crop: offsets must have shape ({n}, 2), got {tuple(offsets.shape)}")
    if n and (offsets.min() < 0 or offsets.max() > 2 * padding):
        raise ValueError(f"crop: offsets must lie in [0, {2 * padding}] for padding {padding}")
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (N, W)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def rotate(x: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate each image about its centre by its angle (counter-clockwise, in degrees).

    Bilinear sampling through ``affine_grid`` + ``grid_sample``; pixels that come
    from outside the image are zero. ``x: (N, C, H, W)``, ``degrees``: scalar or ``(N,)``.
    A rotation by 0 returns ``x`` (up to float rounding); by 90 it equals
    ``torch.rot90(x, 1, (2, 3))`` for square images.
    """
    _check_batch(x, "rotate")
    n = x.shape[0]
    theta = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).expand(n) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(theta)
    # affine_grid maps each output pixel's (x, y) in [-1, 1] to where it samples
    # the input; y points down, so this matrix turns the picture counter-clockwise.
    mat = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def affine(x: torch.Tensor, degrees: torch.Tensor | float = 0.0, scale: torch.Tensor | float = 1.0,
           shift: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate (degrees, counter-clockwise), scale (>1 enlarges) and shift each image, in one resampling.

    ``x: (N, C, H, W)``; ``degrees``, ``scale``: scalars or ``(N,)``; ``shift``: ``(N, 2)``
    pixels ``(down, right)`` or None. Bilinear, zeros from outside. With the
    defaults it returns ``x``; with ``scale=1, shift=None`` it is :func:`rotate`.
    """
    _check_batch(x, "affine")
    n, _, h, w = x.shape
    theta = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).expand(n) * (math.pi / 180)
    inv = 1 / torch.as_tensor(scale, dtype=x.dtype, device=x.device).expand(n)
    cos, sin = torch.cos(theta) * inv, torch.sin(theta) * inv
    if shift is None:
        tx = ty = torch.zeros_like(theta)
    else:
        shift = torch.as_tensor(shift, dtype=x.dtype, device=x.device)
        if shift.shape != (n, 2):
            raise ValueError(f"affine: shift must have shape ({n}, 2), got {tuple(shift.shape)}")
        # A shift of d pixels is 2d/size in affine_grid's [-1, 1] coordinates; the
        # output samples from the opposite direction, hence the minus sign.
        ty, tx = -2 * shift[:, 0] / h, -2 * shift[:, 1] / w
    # Sample at R^-1 (p - t): the rotation part as in rotate, then the shift.
    mat = torch.stack([torch.stack([cos, -sin, cos * tx - sin * ty], -1),
                       torch.stack([sin, cos, sin * tx + cos * ty], -1)], 1)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


class RandomHorizontalFlip:
    """Flip each image left-right with probability ``p`` (not for digits: a mirrored 2 is no 2)."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "RandomHorizontalFlip")
        mask = (torch.rand(x.shape[0], generator=generator) < self.p).to(x.device)
        return torch.where(mask[:, None, None, None], hflip(x), x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomCrop:
    """Pad by ``padding`` zeros and crop back to the original size at a random place.

    Shifts each image by up to ``padding`` pixels in each direction.
    """

    def __init__(self, padding: int = 4):
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.padding = padding

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "RandomCrop")
        offsets = torch.randint(0, 2 * self.padding + 1, (x.shape[0], 2), generator=generator)
        return crop(x, self.padding, offsets)

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding})"


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from ``[-degrees, degrees]``."""

    def __init__(self, degrees: float = 10.0):
        if degrees < 0:
            raise ValueError(f"RandomRotation: degrees must be >= 0, got {degrees}")
        self.degrees = float(degrees)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "RandomRotation")
        angles = _uniform(x.shape[0], -self.degrees, self.degrees, generator)
        return rotate(x, angles.to(x.dtype))

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees})"


class RandomAffine:
    """Random rotation in ``[-degrees, degrees]``, scale in ``scale``, shift up to ``translate`` pixels.

    One bilinear resampling for all three (less blur than chaining them).
    """

    def __init__(self, degrees: float = 10.0, scale: tuple[float, float] = (0.9, 1.1), translate: float = 2.0):
        if degrees < 0 or translate < 0 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffine: need degrees >= 0, translate >= 0 and 0 < scale[0] <= scale[1], "
                             f"got degrees={degrees}, scale={scale}, translate={translate}")
        self.degrees, self.scale, self.translate = float(degrees), (float(scale[0]), float(scale[1])), float(translate)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "RandomAffine")
        n = x.shape[0]
        angles = _uniform(n, -self.degrees, self.degrees, generator)
        scales = _uniform(n, *self.scale, generator)
        shifts = torch.stack([_uniform(n, -self.translate, self.translate, generator) for _ in range(2)], 1)
        return affine(x, angles.to(x.dtype), scales.to(x.dtype), shifts.to(x.dtype))

    def __repr__(self) -> str:
        return f"RandomAffine(degrees={self.degrees}, scale={self.scale}, translate={self.translate})"


class ElasticDistortion:
    """Elastic distortion (Simard et al. 2003): move pixels along a smooth random field.

    The field is uniform noise in [-1, 1] per pixel and axis, blurred with a (normalised)
    Gaussian of ``sigma`` pixels and scaled by ``alpha`` pixels; images are
    resampled bilinearly along it. ``alpha=0`` is the identity.
    """

    def __init__(self, alpha: float = 34.0, sigma: float = 4.0):
        if alpha < 0 or sigma <= 0:
            raise ValueError(f"ElasticDistortion: need alpha >= 0 and sigma > 0, got alpha={alpha}, sigma={sigma}")
        self.alpha, self.sigma = float(alpha), float(sigma)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "ElasticDistortion")
        n, _, h, w = x.shape
        field = 2 * torch.rand((n, 2, h, w), generator=generator, dtype=torch.float64) - 1
        radius = max(1, int(3 * self.sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2)
        k = k / k.sum()
        # Separable blur of both displacement channels, zero padding at the border.
        field = F.conv2d(field, k.view(1, 1, 1, -1).expand(2, 1, 1, -1), padding=(0, radius), groups=2)
        field = F.conv2d(field, k.view(1, 1, -1, 1).expand(2, 1, -1, 1), padding=(radius, 0), groups=2)
        field = (self.alpha * field).to(device=x.device, dtype=x.dtype)
        eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=x.dtype, device=x.device).expand(n, 2, 3)
        grid = F.affine_grid(eye, list(x.shape), align_corners=False)
        # Pixels to affine_grid's [-1, 1] units: 2 / size per pixel.
        offset = torch.stack([field[:, 0] * (2 / w), field[:, 1] * (2 / h)], dim=-1)
        return F.grid_sample(x, grid + offset, mode="bilinear", padding_mode="zeros", align_corners=False)

    def __repr__(self) -> str:
        return f"ElasticDistortion(alpha={self.alpha}, sigma={self.sigma})"


class GaussianNoise:
    """Add ``N(0, std^2)`` noise to every pixel; clamp to ``clamp`` (a (low, high) pair) if given."""

    def __init__(self, std: float = 0.05, clamp: tuple[float, float] | None = None):
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std, self.clamp = float(std), clamp

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x, "GaussianNoise")
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        out = x + self.std * noise
        return out.clamp(*self.clamp) if self.clamp is not None else out

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std}, clamp={self.clamp})"


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator=generator)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def default_augment(kind: str = "digits") -> Compose:
    """The augmentation the command line uses with ``--augment``.

    ``"digits"`` (MNIST, Fashion-MNIST, digits): one random affine resampling,
    rotations of up to 10 degrees, scaling by 0.9-1.1 and shifts of up to 2
    pixels; no flips (on MNIST-5k this beat crop + rotation and elastic distortion). ``"natural"`` (CIFAR-10): shifts of
    up to 4 pixels and horizontal flips.
    """
    if kind == "digits":
        return Compose([RandomAffine(10.0, (0.9, 1.1), 2.0)])
    if kind == "natural":
        return Compose([RandomCrop(4), RandomHorizontalFlip(0.5)])
    raise ValueError(f"default_augment: kind must be 'digits' or 'natural', got {kind!r}")
