"""Transfer learning on MNIST: features learned on digits 0-4, reused for 5-9.

The book's stand-in for fine-tuning an ImageNet network. A LeNet-5 is
pretrained on the digits 0-4; then, for 5-9, with only a few labelled examples
per digit, three ways of getting a classifier are compared:

- **frozen**: keep the pretrained convolutional layers (``features``) fixed
  and train a new classifier (the three dense layers) on top;
- **fine-tuned**: start from the pretrained convolutional layers with a new
  classifier and train everything, with a smaller learning rate;
- **scratch**: the same network from random weights, trained on the few examples.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from coursekit.nn.models import LeNet5
from coursekit.nn.quicktrain import accuracy, train_on_tensors

__all__ = ["digits_subset", "few_shots", "new_head", "new_classifier", "transfer_experiment"]


def digits_subset(X: torch.Tensor, y: torch.Tensor, digits) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples whose label is in ``digits``, relabelled 0, 1, ... in the order of ``digits``."""
    digits = list(digits)
    if not digits or len(set(digits)) != len(digits):
        raise ValueError(f"digits_subset: digits must be distinct and non-empty, got {digits}")
    keep = torch.isin(y, torch.tensor(digits))
    relabel = torch.full((int(y.max()) + 1,), -1, dtype=torch.int64)
    relabel[torch.tensor(digits)] = torch.arange(len(digits))
    return X[keep], relabel[y[keep]]


def few_shots(X: torch.Tensor, y: torch.Tensor, shots: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``shots`` examples of each class, drawn at random with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        where = (y == c).nonzero().flatten()
        if shots > len(where):
            raise ValueError(f"few_shots: class {int(c)} has {len(where)} examples, fewer than shots={shots}")
        picks.append(where[torch.randperm(len(where), generator=generator)[:shots]])
    index = torch.cat(picks)
    return X[index], y[index]


def new_head(model: LeNet5, num_classes: int) -> nn.Linear:
    """Replace LeNet-5's last layer (``classifier.fc5``) with a fresh one and return it."""
    model.classifier.fc5 = nn.Linear(model.classifier.fc5.in_features, num_classes)
    return model.classifier.fc5


def new_classifier(model: LeNet5, num_classes: int) -> nn.Module:
    """Replace LeNet-5's three dense layers (``classifier``) with freshly initialised ones and return them."""
    model.classifier = LeNet5(num_classes=num_classes).classifier
    return model.classifier


def _adapt(pretrained: dict, mode: str, X: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int) -> LeNet5:
    torch.manual_seed(seed)
    model = LeNet5(num_classes=len(pretrained["classifier.fc5.bias"]))
    if mode != "scratch":
        model.load_state_dict(pretrained)
    # LeNet-5 has no dropout or batch norm here, so training mode changes nothing in the frozen part.
    head = new_classifier(model, int(y.max()) + 1)
    if mode == "frozen":
        train_on_tensors(model, X, y, epochs=epochs, lr=1e-2, batch_size=16, seed=seed, params=head.parameters())
    else:
        train_on_tensors(model, X, y, epochs=epochs, lr=1e-3 if mode == "fine-tuned" else 3e-3,
                         batch_size=16, seed=seed)
    return model


def transfer_experiment(X_train: torch.Tensor, y_train: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor,
                        *, shots=(1, 5, 20, 100), seeds=(0, 1, 2), pretrain_epochs: int = 4,
                        updates: int = 150, source=(0, 1, 2, 3, 4), target=(5, 6, 7, 8, 9)) -> dict:
    """Pretrain on ``source`` digits, then adapt to ``target`` digits from ``shots`` examples each.

    Every adaptation makes about ``updates`` steps of batches of 16, whatever
    the number of shots, so that few shots are not also few steps. Returns a JSON-ready
    dict: ``pretrain_acc`` (test accuracy on the source digits), and
    ``records``, one per (mode, shots, seed), with the test accuracy on the
    target digits.
    """
    Xs, ys = digits_subset(X_train, y_train, source)
    Xs_test, ys_test = digits_subset(X_test, y_test, source)
    Xt, yt = digits_subset(X_train, y_train, target)
    Xt_test, yt_test = digits_subset(X_test, y_test, target)
    torch.manual_seed(0)
    base = LeNet5(num_classes=len(source))
    start = time.perf_counter()
    train_on_tensors(base, Xs, ys, epochs=pretrain_epochs, lr=2e-3, batch_size=32, seed=0)
    result = {"pretrain_acc": accuracy(base, Xs_test, ys_test), "pretrain_seconds": time.perf_counter() - start,
              "records": []}
    state = base.state_dict()
    for n in shots:
        for seed in seeds:
            Xf, yf = few_shots(Xt, yt, n, seed)
            epochs = -(-updates // -(-len(Xf) // 16))          # ceil(updates / batches per epoch)
            for mode in ("frozen", "fine-tuned", "scratch"):
                model = _adapt(state, mode, Xf, yf, epochs=epochs, seed=seed)
                result["records"].append({"mode": mode, "shots": n, "seed": seed,
                                          "test_acc": accuracy(model, Xt_test, yt_test)})
    return result
