"""The training and visualisation figures build with the Agg backend and save as PNG."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
torch = pytest.importorskip("torch")

from matplotlib.figure import Figure  # noqa: E402

from coursekit.nn import figures  # noqa: E402
from coursekit.nn.models import LeNet5  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LeNet5(1, 10, 28)


def _saves(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_training_curves(tmp_path):
    h = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "train_acc": [0.6, 0.8, 0.9],
         "val_loss": [1.1, 0.6, 0.4], "val_acc": [0.5, 0.7, 0.85]}
    _saves(figures.training_curves(h, title="t"), tmp_path, "curves")


def test_filters_and_feature_maps(model, tmp_path):
    fig = figures.first_layer_filters(model)
    assert len([a for a in fig.axes if a.images]) == 6, "LeNet-5 has 6 first-layer filters"
    _saves(fig, tmp_path, "filters")
    _saves(figures.first_layer_filters(torch.randn(8, 3, 5, 5)), tmp_path, "filters_rgb")
    fig = figures.feature_maps(model, "features.conv2", torch.rand(1, 28, 28))
    assert len([a for a in fig.axes if a.images]) == 17, "input + 16 maps of conv2"
    _saves(fig, tmp_path, "maps")
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        figures.feature_maps(model, "conv9", torch.rand(1, 28, 28))


def test_confusion_matrix_counts_and_figure(tmp_path):
    y = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 2, 0, 2])
    cm = figures.confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    _saves(figures.confusion_matrix_figure(y, p, ["a", "b", "c"], normalize=True), tmp_path, "cm")


def test_top_k_guesses(model, tmp_path):
    x = torch.rand(6, 1, 28, 28)
    fig = figures.top_k_guesses(x, model(x).detach(), [1, 2, 3, 4, 5, 6], k=3, n=6, ncols=3)
    _saves(fig, tmp_path, "guesses")
