"""coursekit.linear_classifier: the softmax loss against torch autograd, and training on the digits."""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.linear_classifier import predict, softmax_loss, train_linear_classifier

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [1.0, 1000.0])  # 1000: scores in the thousands, exp would overflow unshifted
def test_softmax_loss_matches_torch(seed, scale):
    rng = np.random.default_rng(seed)
    n, d, c = rng.integers(1, 8), rng.integers(1, 6), rng.integers(2, 6)
    W, X = rng.standard_normal((c, d)) * scale, rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    reg = float(rng.uniform(0, 1))
    loss, dW = softmax_loss(W, X, y, reg)
    Wt = torch.tensor(W, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(torch.tensor(X) @ Wt.T, torch.tensor(y)) + 0.5 * reg * (Wt**2).sum()
    lt.backward()
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_softmax_loss_validates_shapes():
    with pytest.raises(ValueError, match="W must be"):
        softmax_loss(np.zeros((3, 4)), np.zeros((2, 5)), np.zeros(2, int))
    with pytest.raises(ValueError, match="y must have shape"):
        softmax_loss(np.zeros((3, 4)), np.zeros((2, 4)), np.zeros(3, int))


def test_training_on_digits_reaches_90_percent():
    from coursekit.data import digits
    d = digits(flatten=True, dtype=np.float64)
    add1 = lambda X: np.hstack([X, np.ones((len(X), 1))])  # noqa: E731 - the bias trick
    W, losses = train_linear_classifier(add1(d.X_train), d.y_train, num_classes=10)
    assert W.shape == (10, 65) and losses[-1] < losses[0]
    assert np.mean(predict(W, add1(d.X_test)) == d.y_test) >= 0.9


def test_minibatch_training_is_seeded():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 3)), rng.integers(0, 3, size=50)
    a = train_linear_classifier(X, y, num_iters=5, batch_size=10, seed=1)[0]
    b = train_linear_classifier(X, y, num_iters=5, batch_size=10, seed=1)[0]
    np.testing.assert_array_equal(a, b)
