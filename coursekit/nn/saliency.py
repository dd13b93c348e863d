"""Which pixels did the network use? Occlusion and gradient saliency maps.

Two ways to ask a trained classifier where in an image its evidence for a
class lies, both model-agnostic and cheap enough for a CPU:

- :func:`gradient_saliency`: the size of the derivative of the class score
  with respect to each input pixel (Simonyan et al. 2014). One backward pass.
- :func:`occlusion_map`: slide a grey patch over the image and record how much
  the class's probability falls at each position (Zeiler and Fergus 2014).
  One forward pass per patch position, batched.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit import arith

__all__ = ["gradient_saliency", "occlusion_map"]


def _check_image(image: torch.Tensor, target: int, where: str) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{where}: image must be a (C, H, W) tensor, got {shape}")
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise ValueError(f"{where}: target must be a class index (int >= 0), got {target!r}")


def gradient_saliency(model: nn.Module, image: torch.Tensor, target: int) -> torch.Tensor:
    """``|d score_target / d x|``, the largest over the channels, for one image.

    Parameters
    ----------
    model : nn.Module
        A classifier mapping ``(N, C, H, W)`` to logits ``(N, K)``; used in evaluation mode.
    image : tensor, shape (C, H, W)
    target : int
        The class whose (pre-softmax) score is differentiated.

    Returns
    -------
    tensor, shape (H, W)
    """
    _check_image(image, target, "gradient_saliency")
    model.eval()
    x = image.detach().clone()[None].requires_grad_(True)
    scores = model(x)
    if target >= scores.shape[1]:
        raise ValueError(f"gradient_saliency: target {target} is not one of the model's {scores.shape[1]} classes")
    (grad,) = torch.autograd.grad(scores[0, target], x)
    return grad[0].abs().amax(0)


@torch.no_grad()
def occlusion_map(model: nn.Module, image: torch.Tensor, target: int, *, patch: int = 6, stride: int = 2,
                  fill: float = 0.0, score: str = "prob") -> torch.Tensor:
    """Drop of the target's probability (or score) when a ``patch`` x ``patch`` square is covered.

    The square, filled with ``fill``, visits every position of a grid with step
    ``stride`` (the last row and column of positions may leave a strip uncovered,
    as a strided convolution does). Each pixel gets the mean drop over the
    positions whose square covers it; pixels no square covers get 0.

    Parameters
    ----------
    model : nn.Module
    image : tensor, shape (C, H, W)
    target : int
    patch, stride : int
    fill : float
        Value of the occluder (0 is the background of MNIST digits).
    score : {"prob", "logit"}
        Softmax probability of ``target`` (as Zeiler and Fergus) or its raw score.

    Returns
    -------
    tensor, shape (H, W)
        ``baseline - occluded``: positive where covering the pixels hurts the class.
    """
    _check_image(image, target, "occlusion_map")
    if score not in ("prob", "logit"):
        raise ValueError(f"occlusion_map: score must be 'prob' or 'logit', got {score!r}")
    _, h, w = image.shape
    rows = arith.conv_output_size(h, patch, stride, strict=False)
    cols = arith.conv_output_size(w, patch, stride, strict=False)
    corners = [(r * stride, c * stride) for r in range(rows) for c in range(cols)]
    batch = image[None].repeat(len(corners) + 1, 1, 1, 1)
    for k, (top, left) in enumerate(corners, start=1):
        batch[k, :, top:top + patch, left:left + patch] = fill
    model.eval()
    out = model(batch)
    if target >= out.shape[1]:
        raise ValueError(f"occlusion_map: target {target} is not one of the model's {out.shape[1]} classes")
    values = (out.softmax(1) if score == "prob" else out)[:, target]
    drop, count = torch.zeros(h, w), torch.zeros(h, w)
    for k, (top, left) in enumerate(corners, start=1):
        drop[top:top + patch, left:left + patch] += values[0] - values[k]
        count[top:top + patch, left:left + patch] += 1
    return torch.where(count > 0, drop / count.clamp(min=1), torch.zeros_like(drop))
