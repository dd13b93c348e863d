"""numpy networks: every parameter gradient against finite differences; training makes progress."""

import numpy as np
import pytest

from coursekit.gradcheck import assert_gradients_ok, check_model_gradients
from coursekit.nets import LeNet5, ThreeLayerConvNet, TwoLayerNet
from coursekit.solver import Solver

# float64 models on small inputs. check_model_gradients accepts a relative error
# below 1e-7, or an absolute error below 1e-8 * |loss| (finite-difference rounding:
# biases before batch norm have a true gradient of exactly 0).
MODELS = {
    "two_layer": (TwoLayerNet, dict(input_dim=12, hidden_dim=9, reg=0.1), (6, 12)),
    "two_layer_bn": (TwoLayerNet, dict(input_dim=12, hidden_dim=9, batchnorm=True), (6, 12)),
    "three_layer_conv": (ThreeLayerConvNet, dict(input_dim=(2, 8, 8), num_filters=3, filter_size=3, hidden_dim=7, reg=0.05), (4, 2, 8, 8)),
    "three_layer_conv_bn": (ThreeLayerConvNet, dict(input_dim=(2, 8, 8), num_filters=3, filter_size=3, hidden_dim=7, batchnorm=True), (4, 2, 8, 8)),
    "lenet5_28": (LeNet5, dict(input_dim=(1, 28, 28), reg=0.01), (2, 1, 28, 28)),
    "lenet5_32_bn": (LeNet5, dict(input_dim=(1, 32, 32), batchnorm=True), (3, 1, 32, 32)),
}


@pytest.mark.parametrize("name", MODELS)
def test_model_gradients_match_finite_differences(name):
    cls, kwargs, shape = MODELS[name]
    rng = np.random.default_rng(0)
    model = cls(**kwargs, dtype=np.float64, seed=0)
    X = rng.standard_normal(shape)
    y = rng.integers(0, 10, shape[0])
    results = check_model_gradients(model, X, y, max_checks=25)
    assert {r.name for r in results} == {f"d{k}" for k in model.params}
    assert_gradients_ok(results)


def test_gradient_check_catches_a_wrong_model_gradient():
    model = TwoLayerNet(input_dim=6, hidden_dim=5, dtype=np.float64, seed=0)
    original = model.loss

    def broken(X, y=None):
        out = original(X, y)
        if y is None:
            return out
        loss, grads = out
        return loss, {**grads, "W1": grads["W1"] * 1.05}

    model.loss = broken
    rng = np.random.default_rng(0)
    results = check_model_gradients(model, rng.standard_normal((4, 6)), rng.integers(0, 10, 4))
    failed = [r for r in results if not r.ok]
    assert [r.name for r in failed] == ["dW1"]
    assert "dW1 differs from the numerical gradient at index" in str(failed[0])


class _TextbookOrder:
    """The conv nets with ReLU before max pooling, as drawn, instead of after it."""

    def _pool_relu(self, h):
        h, relu_undo = self._relu(h)
        h, pool_undo = self._pool(h)
        return h, lambda d, grads: relu_undo(pool_undo(d, grads), grads)


@pytest.mark.parametrize("cls, kwargs, shape", [
    (LeNet5, dict(input_dim=(1, 28, 28)), (3, 1, 28, 28)),
    (ThreeLayerConvNet, dict(input_dim=(2, 8, 8), num_filters=3, filter_size=3, hidden_dim=7, batchnorm=True), (4, 2, 8, 8)),
])  # fmt: skip
def test_pooling_before_relu_gives_the_textbook_order_exactly(cls, kwargs, shape):
    """The nets pool before the ReLU (cheaper); loss and every gradient must equal ReLU-then-pool
    bit for bit. Weights in {-1, 0, 1} and inputs in {-1, 0, 1} make integer maps, so windows hold
    ties, zeros and all-negative values: the cases where routing could differ."""
    rng = np.random.default_rng(4)
    textbook = type("Textbook", (_TextbookOrder, cls), {})
    models = [c(**kwargs, dtype=np.float64, seed=0) for c in (cls, textbook)]
    for name, w in models[0].params.items():
        w[...] = rng.integers(-1, 2, w.shape)
    models[1].params = {k: v.copy() for k, v in models[0].params.items()}
    X, y = rng.integers(-1, 2, shape).astype(np.float64), rng.integers(0, 10, shape[0])
    (loss, grads), (loss_t, grads_t) = (m.loss(X, y) for m in models)
    assert loss == loss_t, f"{cls.__name__}: loss {loss} with pool-then-ReLU, {loss_t} with ReLU-then-pool"
    for k in grads:
        diff = np.abs(grads[k] - grads_t[k]).max()
        assert np.array_equal(grads[k], grads_t[k]), f"{cls.__name__}: d{k} differs between the two orders by {diff}"


def test_scores_mode_and_dtype():
    model = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=2, filter_size=3, hidden_dim=5, dtype=np.float32)
    scores = model.loss(np.zeros((3, 1, 8, 8)))
    assert scores.shape == (3, 10) and scores.dtype == np.float32
    loss, grads = model.loss(np.zeros((3, 1, 8, 8)), np.array([0, 1, 2]))
    assert all(grads[k].dtype == np.float32 for k in grads)


def test_batchnorm_state_updates_in_training_only():
    model = TwoLayerNet(input_dim=4, hidden_dim=3, batchnorm=True, dtype=np.float64)
    X = np.random.default_rng(0).standard_normal((8, 4)) + 5
    before = [a.copy() for a in model.bn_state["1"]]
    model.loss(X)  # evaluation
    assert all(np.array_equal(a, b) for a, b in zip(before, model.bn_state["1"]))
    model.loss(X, np.zeros(8, dtype=int))
    assert not np.array_equal(before[0], model.bn_state["1"][0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dropout"):
        TwoLayerNet(dropout=1.0)
    with pytest.raises(ValueError, match="odd"):
        ThreeLayerConvNet(filter_size=4)
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        LeNet5(input_dim=(1, 20, 20))
    with pytest.raises(ValueError, match="update_rule"):
        Solver(TwoLayerNet(), np.zeros((2, 64)), np.zeros(2, int), np.zeros((2, 64)), np.zeros(2, int), update_rule="lbfgs")


def test_solver_fits_a_separable_problem_and_keeps_the_best_parameters():
    # Ten well-separated Gaussian clusters: any working trainer reaches near 100%.
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 20)) * 4
    y = rng.integers(0, 10, 600)
    X = centres[y] + rng.standard_normal((600, 20))
    model = TwoLayerNet(input_dim=20, hidden_dim=32, seed=0)
    solver = Solver(model, X[:500], y[:500], X[500:], y[500:], update_rule="adam", optim_config={"lr": 1e-2},
                    batch_size=50, num_epochs=4, lr_decay=0.9, progress=False)  # fmt: skip
    history = solver.train()
    assert len(history.loss) == 4 * 10 and len(history.val_acc) == 4
    assert history.loss[-1] < history.loss[0] / 4
    assert max(history.val_acc) > 0.95
    assert history.lr == pytest.approx([1e-2 * 0.9**k for k in range(4)])
    assert solver.accuracy(X[500:], y[500:]) == pytest.approx(max(history.val_acc))


def test_dropout_model_is_reproducible_from_its_seed():
    X = np.random.default_rng(0).standard_normal((5, 10))
    y = np.arange(5)
    runs = [TwoLayerNet(input_dim=10, hidden_dim=8, dropout=0.5, seed=3).loss(X, y)[0] for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_numpy_lenet5_reaches_95_percent_on_mnist5k_in_five_epochs():
    # Issue 3's bar, on the course's fixed 1,000-image test set; the recipe gives
    # about 96%, so 95% leaves room for BLAS rounding differences between machines.
    from coursekit.data import mnist5k
    from coursekit.solver import LENET5_MNIST5K

    data = mnist5k()
    solver = Solver(LeNet5(seed=0), data.X_train, data.y_train, data.X_val, data.y_val, seed=0, progress=False,
                    **LENET5_MNIST5K)  # fmt: skip
    history = solver.train()
    assert len(history.epoch_seconds) == 5
    assert solver.accuracy(data.X_test, data.y_test) >= 0.95
