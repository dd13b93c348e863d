"""fit / evaluate: reproducible seeding, exact resume from a checkpoint, device choice, GPU path."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from coursekit.nn.augment import default_augment  # noqa: E402
from coursekit.nn.datasets import make_loaders, synthetic_split  # noqa: E402
from coursekit.nn.device import DeviceError, pick_device  # noqa: E402
from coursekit.nn.models import LeNet5  # noqa: E402
from coursekit.nn.train import HISTORY_KEYS, evaluate, fit, load_checkpoint, predict  # noqa: E402

FIT = dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine", device="cpu",
           progress=False, seed=3)


def _setup(augment=True, seed=3):
    """A small LeNet-5 with dropout (so the global RNG matters) on 140 synthetic images, augmented."""
    split = synthetic_split(200, seed=1)
    loaders = make_loaders(split, batch_size=32, augment=default_augment() if augment else None, seed=seed)
    torch.manual_seed(seed)
    return LeNet5(1, 10, 28, dropout=0.3), loaders


class _CrashingLoader:
    """Yields the wrapped loader's batches for ``epochs`` epochs, then fails like a killed job."""

    def __init__(self, loader, epochs):
        self.loader, self.epochs, self.started = loader, epochs, 0

    def __iter__(self):
        self.started += 1
        if self.started > self.epochs:
            raise RuntimeError("simulated crash")
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)


def _assert_same_weights(a, b, what):
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), f"{what}: {name} differs by up to {(pa - pb).abs().max().item():.3g}"


def test_same_seed_gives_identical_weights_and_history():
    m1, l1 = _setup()
    h1 = fit(m1, l1.train, l1.val, epochs=2, **FIT)
    m2, l2 = _setup()
    h2 = fit(m2, l2.train, l2.val, epochs=2, **FIT)
    _assert_same_weights(m1, m2, "two runs with seed 3")
    assert h1["train_loss"] == h2["train_loss"] and h1["val_acc"] == h2["val_acc"]
    assert set(h1) == set(HISTORY_KEYS) and h1["epoch"] == [1, 2]
    assert all(len(v) == 2 for v in h1.values())
    assert h1["images"] == [140, 140]
    m3, l3 = _setup(seed=4)
    fit(m3, l3.train, l3.val, epochs=2, **{**FIT, "seed": 4})
    assert not torch.equal(m1.features.conv1.weight, m3.features.conv1.weight), "a different seed changed nothing"


@pytest.mark.parametrize("optimizer,schedule,ema", [("sgd", "cosine", 0.0), ("adam", "step", 0.0),
                                                  ("sgd", "cosine", 0.9)])
def test_resume_continues_exactly(tmp_path, optimizer, schedule, ema):
    kw = {**FIT, "optimizer": optimizer, "schedule": schedule, "lr": 0.05 if optimizer == "sgd" else 1e-3,
          "step_epochs": 1, "ema": ema}
    straight, ls = _setup()
    h_straight = fit(straight, ls.train, ls.val, epochs=3, **kw)

    ckpt = tmp_path / "ckpt.pt"
    first, lf = _setup()
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(first, _CrashingLoader(lf.train, 1), lf.val, epochs=3, checkpoint=ckpt, **kw)
    assert load_checkpoint(ckpt)["epoch"] == 1
    # A fresh process would rebuild everything: new model, new loaders, then resume.
    resumed, lr_ = _setup()
    h_resumed = fit(resumed, lr_.train, lr_.val, epochs=3, checkpoint=ckpt, resume=True, **kw)
    _assert_same_weights(straight, resumed, f"3 epochs straight vs 1 + resume to 3 ({optimizer}, {schedule})")
    assert h_resumed["train_loss"] == h_straight["train_loss"], "the resumed history must equal the straight one"
    assert h_resumed["lr"] == h_straight["lr"]
    assert load_checkpoint(ckpt)["epoch"] == 3
    # Asking for no more epochs than done returns the stored history without training.
    again, la = _setup()
    h_again = fit(again, la.train, la.val, epochs=3, checkpoint=ckpt, **kw)
    assert h_again["train_loss"] == h_straight["train_loss"]
    _assert_same_weights(straight, again, "loading a finished checkpoint")


def test_weight_average_is_the_exponential_moving_average_of_the_steps():
    """ema=d: the model ends with a_t = d_t a_(t-1) + (1 - d_t) w_t over the weights after each step.

    a_1 = w_1, and d_t = min(d, (1 + n) / (10 + n)) after n averaged steps (the warm-up).
    """
    torch.manual_seed(0)
    batches = [(torch.randn(8, 5), torch.randint(0, 3, (8,))) for _ in range(6)]
    start = torch.nn.Linear(5, 3)
    d, lr = 0.6, 0.5  # the warm-up's decay passes 0.6 after 13 steps of 18: both regimes are exercised
    # The oracle: plain SGD steps by hand, and the average by the formula.
    w = {k: v.clone() for k, v in start.state_dict().items()}
    avg = None
    for epoch in range(3):
        for x, y in batches:
            w_req = {k: v.clone().requires_grad_(True) for k, v in w.items()}
            loss = torch.nn.functional.cross_entropy(x @ w_req["weight"].T + w_req["bias"], y)
            grads = torch.autograd.grad(loss, list(w_req.values()))
            w = {k: (v - lr * g).detach() for (k, v), g in zip(w.items(), grads)}
            if avg is None:
                avg, n = dict(w), 1
            else:
                d_n = min(d, (1 + n) / (10 + n))
                avg, n = {k: d_n * avg[k] + (1 - d_n) * w[k] for k in w}, n + 1
    model = torch.nn.Linear(5, 3)
    model.load_state_dict(start.state_dict())
    h = fit(model, batches, batches, epochs=3, optimizer="sgd", lr=lr, momentum=0.0, weight_decay=0.0,
            schedule=None, ema=d, device="cpu", progress=False, seed=None)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, avg[k], atol=1e-6), f"{k}: the model's weights are not the moving average"
        assert not torch.allclose(v, w[k], atol=1e-4), f"{k}: the model kept its last weights, not the average"
    assert h["val_loss"][-1] == pytest.approx(evaluate(model, batches)[0], rel=1e-6), "validation must see the average"
    with pytest.raises(ValueError, match=r"ema must be in \[0, 1\)"):
        fit(model, batches, epochs=1, ema=1.0, device="cpu", progress=False)


def test_fit_learns_and_evaluate_agrees_with_predict():
    loaders = make_loaders(synthetic_split(200, seed=1), batch_size=16, seed=3)
    torch.manual_seed(3)
    model = LeNet5(1, 10, 28)
    # LeNet-5 sits on the 2.3 plateau for a while; 54 steps at lr 0.1 get it off.
    h = fit(model, loaders.train, loaders.val, epochs=6, **{**FIT, "lr": 0.1})
    assert h["train_loss"][-1] < h["train_loss"][0], f"training loss did not fall: {h['train_loss']}"
    loss, acc = evaluate(model, loaders.test)
    logits, labels = predict(model, loaders.test)
    assert logits.shape == (40, 10) and labels.shape == (40,)
    assert acc == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert acc > 0.5, f"a learnable toy problem should be mostly solved, accuracy {acc:.2f}"
    assert math.isnan(fit(model, loaders.train, None, epochs=1, **FIT)["val_acc"][0])


def test_bad_arguments_are_named():
    model, loaders = _setup(augment=False)
    with pytest.raises(ValueError, match="optimizer must be"):
        fit(model, loaders.train, epochs=1, **{**FIT, "optimizer": "lbfgs"})
    with pytest.raises(ValueError, match="schedule must be"):
        fit(model, loaders.train, epochs=1, **{**FIT, "schedule": "linear"})


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    auto = pick_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert auto.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        pick_device("tpu-ish")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mixed-precision path); none here")
def test_fit_on_cuda_with_mixed_precision(tmp_path):
    model, loaders = _setup(augment=True)
    h = fit(model, loaders.train, loaders.val, epochs=3, checkpoint=tmp_path / "c.pt",
            **{**FIT, "device": "cuda", "seed": 3}, amp=True)
    assert next(model.parameters()).device.type == "cuda"
    assert all(math.isfinite(v) for v in h["train_loss"]) and h["train_loss"][-1] < h["train_loss"][0]
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["scaler"] is not None, "the GradScaler state must be checkpointed under AMP"
    loss, acc = evaluate(model, loaders.test, "cuda", amp=True)
    assert math.isfinite(loss) and 0 <= acc <= 1
