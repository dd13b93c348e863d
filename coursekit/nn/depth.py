"""Plain and residual networks of any depth, and the degradation experiment.

He et al. (2016) observed that a deeper plain network, even with batch norm,
reaches a *higher training error* than a shallower one, and that adding
shortcut connections removes the effect. :class:`DepthNet` builds both
variants with the same layers, so that the shortcut is the only difference,
and :func:`degradation_experiment` trains them at several depths on MNIST-size
images, small enough to run on a CPU in about a minute.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from coursekit.nn.quicktrain import accuracy, mean_loss, train_on_tensors

__all__ = ["TwoConvBlock", "DepthNet", "weighted_layers", "first_layer_gradient", "refresh_batchnorm",
           "degradation_experiment"]


class TwoConvBlock(nn.Module):
    """conv 3x3 - bn - relu - conv 3x3 - bn, then relu(F(x) + x) or, plain, relu(F(x)).

    Shapes
    ------
    x: (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, channels: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(f + x if self.residual else f)


class DepthNet(nn.Module):
    """A stem, ``blocks`` two-conv blocks at one resolution, global pooling and a linear head.

    The stem is a 3x3 stride-2 convolution with batch norm and ReLU followed by a
    2x2 max pool (28x28 -> 7x7), so every block works on small maps. The network
    has ``2 * blocks + 2`` layers with weights (see :func:`weighted_layers`).

    Parameters
    ----------
    blocks : int
        Number of :class:`TwoConvBlock`, >= 1.
    residual : bool
        Shortcut connections in every block, or none.
    width : int
        Channels of every block.
    in_channels, num_classes : int

    Shapes
    ------
    x: (N, in_channels, H, W) -> logits: (N, num_classes)
    """

    def __init__(self, blocks: int, residual: bool, *, width: int = 16, in_channels: int = 1,
                 num_classes: int = 10):
        super().__init__()
        for name, value in (("blocks", blocks), ("width", width), ("in_channels", in_channels),
                            ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DepthNet: {name} must be an int >= 1, got {value!r}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2))
        self.body = nn.Sequential(*(TwoConvBlock(width, residual) for _ in range(blocks)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


def weighted_layers(blocks: int) -> int:
    """Layers with weights in a :class:`DepthNet` of ``blocks`` blocks: stem, 2 per block, head."""
    return 2 * blocks + 2


def first_layer_gradient(model: DepthNet, X: torch.Tensor, y: torch.Tensor) -> float:
    """Norm of the loss gradient with respect to the stem's weights, for one batch in training mode."""
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    return model.stem[0].weight.grad.norm().item()


@torch.no_grad()
def refresh_batchnorm(model: nn.Module, X: torch.Tensor, batch_size: int = 500) -> None:
    """Recompute every batch norm's running statistics as plain averages over ``X``.

    The running averages kept during a short, fast-moving training run lag
    behind the final weights; in evaluation mode a deep network then sees
    statistics of weights it no longer has. One pass over the training data
    with the final weights fixes that ("precise batch norm").
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                   # cumulative average over the batches of this pass
    model.train()
    for start in range(0, len(X), batch_size):
        model(X[start:start + batch_size])
    for m in norms:
        m.momentum = 0.1


def degradation_experiment(X_train: torch.Tensor, y_train: torch.Tensor, X_test: torch.Tensor,
                           y_test: torch.Tensor, *, blocks=(1, 4, 10), width: int = 16, epochs: int = 3,
                           lr: float = 3e-3, batch_size: int = 64, seed: int = 0) -> dict:
    """Train a plain and a residual :class:`DepthNet` for each number of blocks.

    Every pair starts from the same seed and sees the same batches. Returns a
    JSON-ready dict with one record per network: ``kind``, ``blocks``,
    ``layers``, ``params``, ``epoch_loss`` (training loss per epoch, training
    mode), ``train_loss`` (evaluation mode, after training), ``test_acc``,
    ``init_grad`` (first-layer gradient norm before training) and ``cpu_seconds``
    (processor time of the training, which a busy machine does not inflate).
    """
    records = []
    for n in blocks:
        for kind in ("plain", "residual"):
            torch.manual_seed(seed)
            model = DepthNet(n, kind == "residual", width=width)
            grad = first_layer_gradient(model, X_train[:256], y_train[:256])
            start = time.process_time()
            losses = train_on_tensors(model, X_train, y_train, epochs=epochs, lr=lr,
                                      batch_size=batch_size, seed=seed)
            refresh_batchnorm(model, X_train)
            records.append({"kind": kind, "blocks": n, "layers": weighted_layers(n),
                            "params": sum(p.numel() for p in model.parameters()),
                            "epoch_loss": losses, "train_loss": mean_loss(model, X_train, y_train),
                            "test_acc": accuracy(model, X_test, y_test), "init_grad": grad,
                            "cpu_seconds": time.process_time() - start})
    return {"records": records}
