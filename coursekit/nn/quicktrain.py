"""A short training loop on in-memory tensors, and a cache for its results.

The book's small experiments (plain against residual depth, transfer learning,
a fully convolutional network) each train a few tiny models for a few epochs.
They need less than :func:`coursekit.nn.train.fit` offers (no loaders, no
schedules, no checkpoints of optimiser state), and one thing it does not: a
way to train only some parameters, for frozen features. The numbers they
report are cached as JSON next to the book's build, keyed by the experiment's
configuration, so a rebuild reads them instead of training again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["train_on_tensors", "mean_loss", "accuracy", "cached_result", "cached_model"]


def _check_pair(X: torch.Tensor, y: torch.Tensor, where: str) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"{where}: X and y must be torch tensors, got {type(X).__name__} and {type(y).__name__}")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{where}: X and y must hold the same number (> 0) of examples, got {len(X)} and {len(y)}")


def train_on_tensors(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, weight_decay: float = 0.0,
                     params: Iterable[nn.Parameter] | None = None) -> list[float]:
    """Train ``model`` with Adam and cross-entropy on shuffled mini-batches of ``(X, y)``.

    Parameters
    ----------
    model : nn.Module
        Maps ``X[i:j]`` to logits: ``(N, K)`` for classes, ``(N, K, H, W)`` for a
        label per pixel (then ``y`` is ``(N, H, W)``).
    X, y : tensors
        All the training data; ``y`` holds int64 class indices.
    epochs, lr, batch_size : int, float, int
    seed : int
        Seeds the shuffling (a private generator; global state is untouched).
    weight_decay : float
        Adds ``weight_decay * w`` to every gradient (L2 regularisation).
    params : iterable of parameters, optional
        Only these are trained (e.g. a new head on frozen features); default all.

    Returns
    -------
    list of float
        The mean training loss of each epoch, in training mode.
    """
    _check_pair(X, y, "train_on_tensors")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train_on_tensors: epochs must be an int >= 1, got {epochs!r}")
    trained = list(model.parameters() if params is None else params)
    optimiser = torch.optim.Adam(trained, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(model(X[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / len(X))
    return losses


@torch.no_grad()
def mean_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Cross-entropy of ``model`` on ``(X, y)`` in evaluation mode."""
    _check_pair(X, y, "mean_loss")
    model.eval()
    total = sum(F.cross_entropy(model(X[i:i + batch_size]), y[i:i + batch_size], reduction="sum").item()
                for i in range(0, len(X), batch_size))
    return total / y.numel()


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``y`` (examples or pixels) that ``model`` labels correctly, in evaluation mode."""
    _check_pair(X, y, "accuracy")
    model.eval()
    right = sum((model(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
                for i in range(0, len(X), batch_size))
    return right / y.numel()


def cached_result(path: str | Path, config: dict, compute: Callable[[], dict]) -> dict:
    """Return ``compute()``, or the copy saved in ``path`` by an earlier call with the same ``config``.

    The file holds ``{"config": config, "result": result}`` as JSON; a file made
    with another configuration (or unreadable) is recomputed and overwritten.
    ``config`` and the result must be JSON-serialisable (lists, not arrays).
    """
    path = Path(path)
    config = json.loads(json.dumps(config))        # the form it takes after a round trip
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and saved.get("config") == config:
            return saved["result"]
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config, "result": result}))
    return result


def cached_model(path: str | Path, config: dict, model: nn.Module, train: Callable[[nn.Module], dict]) -> dict:
    """Load ``model``'s weights from ``path`` if saved there with the same ``config``, else train and save them.

    ``train(model)`` trains in place and returns a JSON-ready dict (a history,
    timings); the file keeps it beside the weights, and this function returns
    it either way. A file with another configuration is retrained and overwritten.
    """
    path = Path(path)
    config = json.loads(json.dumps(config))
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:                 # a truncated or foreign file: train afresh
            saved = None
        if isinstance(saved, dict) and json.loads(saved.get("config", "null")) == config:
            try:
                model.load_state_dict(saved["state"])
                return json.loads(saved["result"])
            except RuntimeError:          # saved from a model of another shape: train afresh
                pass
    result = train(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": json.dumps(config), "state": model.state_dict(), "result": json.dumps(result)}, path)
    return result
