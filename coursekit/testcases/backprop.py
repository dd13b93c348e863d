"""Hidden-test cases for homework 2 (the chain rule, softmax, layers, gradient checking, a two-layer net).

As in :mod:`coursekit.testcases.classifiers`, the features of the cases are fixed
and only the values are drawn: batches of two or more, shapes whose sizes all
differ, exact zeros for ReLU, scores and activations beyond ``exp``'s range,
arrays that are not contiguous in memory. Each case has a ``label`` to print.
The module also holds the test oracles built from the reference layers.
"""
from __future__ import annotations

import numpy as np

from coursekit import checks, gradcheck, layers

__all__ = ["chain_rule_cases", "neuron_cases", "neuron_loss_reference", "softmax_cases", "cross_entropy_cases",
           "linear_cases", "relu_cases", "sigmoid_cases", "numerical_gradient_cases", "RecordingFunction",
           "two_layer_cases", "two_layer_loss_from", "REFERENCE_LAYERS", "numerical_gradients",
           "assert_two_layer_close", "two_layer_expectations"]


def _distinct_sizes(rng: np.random.Generator, n: int, low: int = 2, high: int = 7) -> tuple:
    """``n`` different sizes in ``[low, low + high)``, in random order."""
    return tuple(int(v) for v in low + rng.permutation(high)[:n])


def chain_rule_cases(rng: np.random.Generator) -> list:
    """A vector, a 2-D array and a plain Python number."""
    return [{"label": "t of shape (5,)", "t": rng.uniform(-3, 3, size=5)},
            {"label": "t of shape (2, 3)", "t": rng.uniform(-3, 3, size=(2, 3))},
            {"label": "t a Python float", "t": float(rng.uniform(-3, 3))}]


def neuron_loss_reference(w, Z, t, alpha=0.0):
    """The neuron's summed cross-entropy plus weight decay, and its gradient, from the reference loss."""
    loss, dlogits = layers.sigmoid_binary_cross_entropy(Z @ w, t)
    n = len(t)
    return loss * n + 0.5 * alpha * np.sum(w * w), Z.T @ (dlogits * n) + alpha * w


def neuron_cases(rng: np.random.Generator) -> list:
    """Two ordinary batches and one whose activations reach |a| = 40..60 on the wrong side of the target."""
    cases = []
    for large in (False, False, True):
        n, d = int(rng.integers(4, 12)), int(rng.integers(2, 6))
        Z = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, d - 1))], axis=1)
        w = rng.standard_normal(d)
        t = (rng.random(n) < 0.5).astype(float)
        t[:2] = (0.0, 1.0)
        if large:  # g(a) rounds to exactly 1.0, so log(1 - g(a)) computed naively is -inf
            a = Z @ w
            w *= rng.uniform(40, 60) / a[np.abs(a).argmax()]
            t = (Z @ w < 0).astype(float)
        label = f"Z {Z.shape}" + (", |a| up to 60, confidently wrong" if large else "")
        cases.append({"label": label, "w": w, "Z": Z, "t": t, "alpha": float(rng.uniform(0.1, 0.5))})
    return cases


def _huge_scores(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """Scores with a row whose maximum is 800 to 1000, a row 800 or more below it, and an all-negative row."""
    s = rng.standard_normal((n, c)) * 3
    s[0] = rng.uniform(-1000, 1000, size=c)
    high, low = rng.permutation(c)[:2]
    s[0, high], s[0, low] = rng.uniform(800, 1000), rng.uniform(-1000, -800)
    s[1] = rng.uniform(-1000, -800, size=c)
    return s


def softmax_cases(rng: np.random.Generator) -> list:
    """Ordinary scores (N != C) and scores beyond exp's range in float64."""
    cases = []
    for huge in (False, True):
        n, c = _distinct_sizes(rng, 2, 3)
        s = _huge_scores(rng, n, c) if huge else rng.standard_normal((n, c)) * 3
        cases.append({"label": f"x {s.shape}" + (", scores up to +-1000" if huge else ""), "x": s})
    return cases


def cross_entropy_cases(rng: np.random.Generator) -> list:
    """As :func:`softmax_cases`; in the huge case the first label sits on a score 1600 below its row's maximum,
    so its probability underflows to 0 and its log must come from the log-sum-exp."""
    cases = []
    for huge in (False, False, True):
        n, c = _distinct_sizes(rng, 2, 3)
        s = _huge_scores(rng, n, c) if huge else rng.standard_normal((n, c)) * 3
        y = rng.integers(0, c, size=n)
        y[:2] = rng.permutation(c)[:2]
        if huge:
            y[0] = int(s[0].argmin())
        cases.append({"label": f"scores {s.shape}" + (", scores up to +-1000" if huge else ""), "scores": s, "y": y})
    return cases


def linear_cases(rng: np.random.Generator) -> list:
    """x (N, D), w (M, D), b (M,) with N, D, M all different and N >= 2."""
    cases = []
    for _ in range(2):
        n, d, m = _distinct_sizes(rng, 3)
        cases.append({"label": f"x ({n}, {d}), w ({m}, {d}), b ({m},)", "x": rng.standard_normal((n, d)),
                      "w": rng.standard_normal((m, d)), "b": rng.standard_normal(m)})
    return cases


def relu_cases(rng: np.random.Generator) -> list:
    """Non-square x with exact zeros (the gradient there is 0) and no entry within 1e-3 of zero otherwise."""
    cases = []
    for _ in range(2):
        shape = _distinct_sizes(rng, 2)
        x = rng.standard_normal(shape) * 3
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
        x.flat[rng.permutation(x.size)[:2]] = 0.0
        cases.append({"label": f"x {shape} with exact zeros", "x": x})
    return cases


def sigmoid_cases(rng: np.random.Generator) -> list:
    """Ordinary inputs, |x| up to 50, and x from -725 to -712 where e^-x overflows float64 and the
    sigmoid is a tiny subnormal number (e^-720 = 2.9e-313), not 0."""
    cases = []
    for label, scale in (("x ~ N(0, 3^2)", 3.0), ("|x| up to 50", 50.0), ("x near -720 and +720", None)):
        shape = _distinct_sizes(rng, 2)
        if scale is None:
            x = rng.uniform(712, 725, size=shape) * rng.choice([-1.0, 1.0], size=shape)
            x.flat[0] = -abs(x.flat[0])
        else:
            x = rng.uniform(-scale, scale, size=shape)
        cases.append({"label": f"{label}, shape {shape}", "x": x, "numerical": scale is not None and scale < 10})
    return cases


class RecordingFunction:
    """``f(v) = sum(c sin(3v) + v^3 / 3)``, which remembers whether a call ever saw ``v`` differ from ``x0``.

    Its second and third derivatives are large, so a one-sided difference (error
    about h f''/2, 5e-5 at h=1e-5) fails where a centred one (about h^2 f'''/6) passes.
    """

    def __init__(self, x0: np.ndarray, c: np.ndarray):
        self.x0, self.c = np.array(x0), np.array(c)
        self.calls = 0
        self.saw_change = False

    def __call__(self, v) -> float:
        v = np.asarray(v, dtype=np.float64)
        self.calls += 1
        self.saw_change = self.saw_change or (v.shape == self.x0.shape and bool((v != self.x0).any()))
        return float(np.sum(self.c * np.sin(3 * v) + v**3 / 3))

    def gradient(self) -> np.ndarray:
        return 3 * self.c * np.cos(3 * self.x0) + self.x0**2


def numerical_gradient_cases(rng: np.random.Generator) -> list:
    """A transposed (Fortran-ordered) matrix, a strided 3-D view and a contiguous vector.

    ``x.ravel()`` and ``x.reshape(-1)`` return copies of the first two, so code that
    perturbs through them never changes ``x``.
    """
    a, b = _distinct_sizes(rng, 2)
    transposed = rng.standard_normal((a, b)).T
    strided = rng.standard_normal((2, 3, 2 * int(rng.integers(2, 4))))[:, :, ::2]
    vector = rng.standard_normal(int(rng.integers(3, 7)))
    return [{"label": f"x of shape {x.shape}, {kind}", "x": x, "c": rng.standard_normal(x.shape)}
            for kind, x in (("a transposed view", transposed), ("a strided view", strided),
                            ("contiguous", vector))]


def two_layer_cases(rng: np.random.Generator) -> list:
    """Networks with N, D, H and C all different, N >= 2, reg >= 0.1, every class present twice or more."""
    cases = []
    for _ in range(2):
        n, d, h, c = _distinct_sizes(rng, 4, 2, 8)
        n = max(n, c + 1)
        params = {"W1": rng.standard_normal((h, d)), "b1": rng.standard_normal(h),
                  "W2": rng.standard_normal((c, h)), "b2": rng.standard_normal(c)}
        y = rng.integers(0, c, size=n)
        y[:2] = rng.permutation(c)[:2]
        cases.append({"label": f"X ({n}, {d}), hidden {h}, {c} classes", "params": params,
                      "X": rng.standard_normal((n, d)), "y": y, "reg": float(rng.uniform(0.1, 0.3))})
    return cases


def two_layer_loss_from(fns: dict, params: dict, X, y, reg: float) -> tuple:
    """linear - ReLU - linear - softmax cross-entropy with weight decay, built from the layer functions in
    ``fns`` (keys ``linear_forward``, ``linear_backward``, ``relu_forward``, ``relu_backward``,
    ``softmax_cross_entropy``): the reference layers, or a student's."""
    h, cache1 = fns["linear_forward"](X, params["W1"], params["b1"])
    a, cache_relu = fns["relu_forward"](h)
    scores, cache2 = fns["linear_forward"](a, params["W2"], params["b2"])
    data_loss, dscores = fns["softmax_cross_entropy"](scores, y)
    da, dW2, db2 = fns["linear_backward"](dscores, cache2)
    dh = fns["relu_backward"](da, cache_relu)
    _, dW1, db1 = fns["linear_backward"](dh, cache1)
    loss = float(data_loss) + 0.5 * reg * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
    grads = {"W1": np.asarray(dW1) + reg * params["W1"], "b1": np.asarray(db1),
             "W2": np.asarray(dW2) + reg * params["W2"], "b2": np.asarray(db2)}
    return loss, grads


REFERENCE_LAYERS = {name: getattr(layers, name) for name in
                    ("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_cross_entropy")}


def numerical_gradients(forward, inputs: tuple, dout: np.ndarray) -> tuple:
    """Centred finite differences of ``sum(forward(*inputs)[0] * dout)`` with respect to each input."""
    grads = []
    for i, xi in enumerate(inputs):
        def f(v, i=i):
            return forward(*inputs[:i], v, *inputs[i + 1:])[0]
        grads.append(gradcheck.numerical_gradient_array(f, np.array(xi, dtype=np.float64), dout, h=1e-6))
    return tuple(grads)


def assert_two_layer_close(name: str, loss, grads, candidates: list, *, rtol: float = 1e-7,
                           atol: float = 1e-9) -> str:
    """Pass if ``(loss, grads)`` matches one of ``candidates``, ``(label, (loss, grads))`` pairs; returns the
    label. ``grads`` must be a dict with the keys W1, b1, W2, b2. Raises the first candidate's failure."""
    if not isinstance(grads, dict) or set(grads) != {"W1", "b1", "W2", "b2"}:
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise checks.CheckFailure(f"{name}: grads should be a dict with the keys W1, b1, W2, b2, got {got}")
    first = None
    for label, (expected_loss, expected_grads) in candidates:
        try:
            checks.assert_scalar_close(name, loss, expected_loss, rtol=rtol, atol=atol, against=label)
            for key in ("W1", "b1", "W2", "b2"):
                checks.assert_close(name, grads[key], expected_grads[key], rtol=rtol, atol=atol,
                                    what=f"grads[{key!r}]", against=label)
            return label
        except checks.CheckFailure as exc:
            first = first or exc
    raise first


def two_layer_expectations(own_layers: dict, params: dict, X, y, reg: float) -> list:
    """``(label, (loss, grads))`` pairs a correct ``two_layer_loss`` may return: the course's network, and the
    same network built from the student's own layer functions unless one of them raises."""
    expected = [("the course's network", two_layer_loss_from(REFERENCE_LAYERS, params, X, y, reg))]
    try:
        expected.append(("the network of your own layers", two_layer_loss_from(own_layers, params, X, y, reg)))
    except Exception:  # noqa: BLE001 - a layer raises: only the course's network counts
        pass
    return expected
