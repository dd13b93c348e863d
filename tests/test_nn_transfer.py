"""Digit subsets, few-shot draws and the transfer experiment's bookkeeping."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from coursekit.nn.models import LeNet5  # noqa: E402
from coursekit.nn.transfer import (digits_subset, few_shots, new_classifier, new_head,  # noqa: E402
                                   transfer_experiment)


def test_digits_subset_keeps_and_relabels():
    X = torch.arange(10.0)[:, None]
    y = torch.tensor([5, 0, 7, 5, 9, 1, 6, 7, 8, 2])
    Xs, ys = digits_subset(X, y, (5, 6, 7, 8, 9))
    assert ys.tolist() == [0, 2, 0, 4, 1, 2, 3]
    assert Xs[:, 0].tolist() == [0, 2, 3, 4, 6, 7, 8]
    with pytest.raises(ValueError, match="distinct"):
        digits_subset(X, y, (1, 1))


def test_few_shots_draws_each_class_equally_and_reproducibly():
    y = torch.arange(5).repeat(20)
    X = torch.arange(100.0)
    Xf, yf = few_shots(X, y, 3, seed=4)
    assert torch.bincount(yf).tolist() == [3] * 5
    assert torch.equal(Xf, few_shots(X, y, 3, seed=4)[0])
    assert (y[Xf.long()] == yf).all(), "each drawn example keeps its own label"
    with pytest.raises(ValueError, match="fewer than shots=21"):
        few_shots(X, y, 21)


def test_new_head_replaces_only_the_last_layer():
    model = LeNet5(num_classes=5)
    before = model.classifier.fc4.weight.clone()
    head = new_head(model, 7)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7) and head is model.classifier.fc5
    assert torch.equal(model.classifier.fc4.weight, before)


def test_new_classifier_keeps_the_features():
    model = LeNet5(num_classes=5)
    before = model.features.conv2.weight.clone()
    old_fc3 = model.classifier.fc3.weight.clone()
    new_classifier(model, 3)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert torch.equal(model.features.conv2.weight, before)
    assert not torch.equal(model.classifier.fc3.weight, old_fc3)


def test_experiment_runs_every_mode_and_frozen_keeps_the_features():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(200, 1, 28, 28, generator=g)
    y = torch.arange(10).repeat(20)
    result = transfer_experiment(X, y, X[:50], y[:50], shots=(2,), seeds=(0,), pretrain_epochs=1, updates=3)
    modes = [r["mode"] for r in result["records"]]
    assert modes == ["frozen", "fine-tuned", "scratch"]
    assert all(0 <= r["test_acc"] <= 1 for r in result["records"]) and 0 <= result["pretrain_acc"] <= 1
