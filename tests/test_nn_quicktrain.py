"""The book's short training loop and its result cache."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from coursekit.nn.quicktrain import accuracy, cached_model, cached_result, mean_loss, train_on_tensors  # noqa: E402


def _separable(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    return X, (X[:, 0] + X[:, 1] > 0).long()


def test_training_fits_a_separable_problem():
    X, y = _separable()
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    before = mean_loss(model, X, y)
    losses = train_on_tensors(model, X, y, epochs=30, lr=0.05, batch_size=32)
    assert len(losses) == 30
    assert mean_loss(model, X, y) < before / 3, f"loss {before:.3f} -> {mean_loss(model, X, y):.3f}"
    assert accuracy(model, X, y) > 0.95


def test_only_the_given_parameters_change():
    X, y = _separable()
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    frozen = model[0].weight.detach().clone()
    head = model[2].weight.detach().clone()
    train_on_tensors(model, X, y, epochs=2, params=model[2].parameters())
    assert torch.equal(model[0].weight, frozen), "a parameter outside `params` was updated"
    assert not torch.equal(model[2].weight, head), "the trained parameters did not change"


def test_same_seed_same_weights():
    X, y = _separable()
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = nn.Linear(2, 2)
        train_on_tensors(model, X, y, epochs=3, seed=5)
        weights.append(model.weight.detach().clone())
    assert torch.equal(*weights)


def test_bad_input_is_named():
    X, y = _separable()
    with pytest.raises(ValueError, match="same number"):
        train_on_tensors(nn.Linear(2, 2), X, y[:10], epochs=1)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        train_on_tensors(nn.Linear(2, 2), X, y, epochs=0)


def test_cache_computes_once_per_config(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    path = tmp_path / "sub" / "result.json"
    assert cached_result(path, {"a": (1, 2)}, compute) == {"value": 1}
    assert cached_result(path, {"a": (1, 2)}, compute) == {"value": 1}, "a tuple config must match its JSON copy"
    assert len(calls) == 1
    assert cached_result(path, {"a": (1, 3)}, compute) == {"value": 2}, "a new config must recompute"
    assert json.loads(path.read_text())["config"] == {"a": [1, 3]}
    path.write_text("not json")
    assert cached_result(path, {"a": (1, 3)}, compute) == {"value": 3}, "an unreadable file must recompute"


def test_cached_model_trains_once_and_restores_the_weights(tmp_path):
    X, y = _separable()
    path = tmp_path / "model.pt"
    calls = []

    def train(model):
        calls.append(1)
        return {"losses": train_on_tensors(model, X, y, epochs=5, lr=0.05)}

    torch.manual_seed(0)
    first = nn.Linear(2, 2)
    result = cached_model(path, {"epochs": 5}, first, train)
    torch.manual_seed(1)
    second = nn.Linear(2, 2)
    assert cached_model(path, {"epochs": 5}, second, train) == result and len(calls) == 1
    assert torch.equal(first.weight, second.weight), "the loaded model must have the trained weights"
    cached_model(path, {"epochs": 6}, nn.Linear(2, 2), train)
    assert len(calls) == 2, "another config must train again"


def test_cached_model_retrains_when_the_saved_weights_do_not_fit(tmp_path):
    X, y = _separable()
    path = tmp_path / "model.pt"
    cached_model(path, {"v": 1}, nn.Linear(2, 2), lambda m: {})
    wider = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))
    assert cached_model(path, {"v": 1}, wider, lambda m: {"retrained": True}) == {"retrained": True}
