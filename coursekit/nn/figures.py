"""Figures of training and of what a CNN learned, as matplotlib ``Figure`` objects.

Each function builds a ``matplotlib.figure.Figure`` without pyplot, so it works
with the Agg backend (no display) and leaves no global state; save it with
``fig.savefig(path)`` or show it in a notebook by returning it from a cell.

(These will move into :mod:`coursekit.plots` when the book's figures and the
torch side are merged.)
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

__all__ = ["training_curves", "first_layer_filters", "feature_maps", "confusion_matrix",
           "confusion_matrix_figure", "top_k_guesses"]


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / ncols)), ncols


def _to_display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) -> (H, W) grey or (H, W, 3) colour, scaled to [0, 1] per image."""
    img = np.asarray(img, dtype=np.float64)
    lo, hi = img.min(), img.max()
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if img.shape[0] == 3:
        return img.transpose(1, 2, 0), None
    return img[0], "gray"


def training_curves(history: Mapping[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, training and validation, from :func:`coursekit.nn.train.fit`'s history."""
    epochs = list(history.get("epoch") or range(1, len(history["train_loss"]) + 1))
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(epochs, history[f"train_{key}"], "o-", ms=3, label="train")
        val = np.asarray(history.get(f"val_{key}", []), dtype=float)
        if val.size and np.isfinite(val).any():
            ax.plot(epochs, val, "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def _first_conv(model: nn.Module) -> nn.Conv2d:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("first_layer_filters: the model has no Conv2d layer")


def first_layer_filters(model_or_weight: nn.Module | torch.Tensor, *, ncols: int | None = None,
                        title: str | None = "first-layer filters") -> Figure:
    """The first conv layer's filters as an image grid (each scaled to its own range).

    ``model_or_weight``: a model (its first ``Conv2d`` is used) or a weight tensor
    ``(F, C, KH, KW)``; 3-channel filters are shown in colour, others channel 0 in grey.
    """
    w = model_or_weight if isinstance(model_or_weight, torch.Tensor) else _first_conv(model_or_weight).weight
    w = w.detach().float().cpu().numpy()
    if w.ndim != 4:
        raise ValueError(f"first_layer_filters: weight must be (F, C, KH, KW), got {w.shape}")
    rows, cols = _grid(w.shape[0], ncols)
    fig = Figure(figsize=(1.1 * cols, 1.1 * rows + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < w.shape[0]:
            img, cmap = _to_display(w[i] if w.shape[1] == 3 else w[i, :1])
            ax.imshow(img, cmap=cmap, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return fig


def feature_maps(model: nn.Module, layer: str, image: torch.Tensor, *, max_maps: int = 32,
                 ncols: int | None = None) -> Figure:
    """The activations of one named layer for one input image, one panel per channel.

    Parameters
    ----------
    model : nn.Module
    layer : str
        A name from ``model.named_modules()``, e.g. ``"features.conv1"``.
    image : (C, H, W) or (1, C, H, W) tensor
    max_maps : int
        Show at most this many channels.
    """
    modules = dict(model.named_modules())
    if layer not in modules:
        names = [n for n in modules if n]
        raise ValueError(f"feature_maps: no layer {layer!r}; layers are: {', '.join(names)}")
    x = image if image.dim() == 4 else image.unsqueeze(0)
    p = next(model.parameters(), None)
    if p is not None:
        x = x.to(device=p.device, dtype=p.dtype)
    captured: list[torch.Tensor] = []
    handle = modules[layer].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    maps = captured[0][0].float().cpu().numpy()
    if maps.ndim != 3:
        raise ValueError(f"feature_maps: layer {layer!r} outputs shape {tuple(captured[0].shape)}, not (1, C, H, W)")
    n = min(max_maps, maps.shape[0])
    rows, cols = _grid(n + 1, ncols)
    fig = Figure(figsize=(1.3 * cols, 1.3 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    img, cmap = _to_display(x[0].float().cpu().numpy())
    axes[0].imshow(img, cmap=cmap)
    axes[0].set_title("input", fontsize=8)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if 1 <= i <= n:
            ax.imshow(maps[i - 1], cmap="viridis")
            ax.set_title(str(i - 1), fontsize=7)
    fig.suptitle(f"{layer}: {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}"
                 + (f" (first {n} shown)" if n < maps.shape[0] else ""))
    return fig


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as ``j``; ``(K, K)`` int64."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion_matrix: y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    k = num_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def confusion_matrix_figure(y_true, y_pred, class_names: Sequence[str] | None = None, *,
                            normalize: bool = False, title: str | None = None) -> Figure:
    """The confusion matrix as a heat map with the counts written in (rows: true class)."""
    k = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, k)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    fig = Figure(figsize=(0.45 * k + 2.5, 0.45 * k + 2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = shown.max() / 2 if shown.size else 0
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else str(cm[i, j]), ha="center", va="center",
                        fontsize=7, color="white" if shown[i, j] > thresh else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"accuracy {acc:.2%} on {cm.sum()} examples")
    return fig


def top_k_guesses(images, logits, labels, class_names: Sequence[str] | None = None, *, k: int = 5,
                  n: int = 8, ncols: int = 4) -> Figure:
    """Test images with the network's top-``k`` guesses as bars (true class in green, else red).

    Parameters
    ----------
    images : (N, C, H, W) array or tensor
    logits : (N, K) array or tensor of scores (softmax is applied here)
    labels : (N,) true classes
    n : int
        How many of the images to show (the first ``n``).
    """
    images = torch.as_tensor(np.asarray(images)).float().numpy()
    logits = torch.as_tensor(np.asarray(logits)).float()
    labels = np.asarray(labels).ravel()
    n = min(n, len(images))
    kk = min(k, logits.shape[1])
    probs = torch.softmax(logits[:n], dim=1)
    top_p, top_i = probs.topk(kk, dim=1)
    names = list(class_names) if class_names is not None else [str(i) for i in range(logits.shape[1])]
    rows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.2 * ncols, 1.6 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, 2 * ncols, width_ratios=[1, 1.2] * ncols))
    for idx in range(rows * ncols):
        ax_img, ax_bar = axes[idx // ncols, 2 * (idx % ncols)], axes[idx // ncols, 2 * (idx % ncols) + 1]
        ax_img.axis("off")
        if idx >= n:
            ax_bar.axis("off")
            continue
        img, cmap = _to_display(images[idx])
        ax_img.imshow(img, cmap=cmap)
        ax_img.set_title(names[labels[idx]], fontsize=8)
        p, ci = top_p[idx].numpy()[::-1], top_i[idx].numpy()[::-1]
        colors = ["tab:green" if c == labels[idx] else "tab:red" for c in ci]
        ax_bar.barh(range(kk), p, color=colors)
        ax_bar.set_yticks(range(kk), [names[c] for c in ci], fontsize=7)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=6)
    return fig
