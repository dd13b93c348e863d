"""Numerical gradient checking: compare a backward pass with centred finite differences.

``(f(x + h) - f(x - h)) / 2h`` differs from the derivative by O(h^2); in float64
with h near 1e-5 the rounding error is near ``eps * |f| / h``, about 1e-10 for
values of order one, so a correct backward agrees to a relative error well below 1e-7.

That rounding error is absolute: an element whose true gradient is 0 or tiny (a
bias followed by batch norm, a weight that barely matters) shows a large
*relative* error from noise alone. So an element passes when its relative error
is at most ``tol`` or its absolute error at most ``atol``, as in ``np.allclose``.
:func:`gradient_verdict` is that rule, the one every check here and in
:mod:`coursekit.checks` applies.
"""

from __future__ import annotations

import inspect
from typing import Callable, NamedTuple, Sequence

import numpy as np

__all__ = [
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "GradientVerdict",
    "gradient_verdict",
    "GradientComparison",
    "check_gradients",
    "assert_gradients_ok",
    "check_model_gradients",
]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of a scalar function by centred differences.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : float array
        Point of evaluation. Each element is perturbed in place and restored.
    h : float
        Step.

    Returns
    -------
    array of x's shape
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = float(f(x))
        x[ix] = old - h
        f_minus = float(f(x))
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of ``sum(f(x) * dout)`` with respect to x, by centred differences.

    This is what a backward pass computes when the upstream gradient is ``dout``.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        out_plus = np.array(f(x), dtype=np.float64)  # copy: f may return a view of its state
        x[ix] = old - h
        out_minus = np.array(f(x), dtype=np.float64)
        x[ix] = old
        grad[ix] = np.sum((out_plus - out_minus) * dout) / (2 * h)
    return grad


# Bound at import: coursekit.checks gives verdicts on students' code, which may
# reassign numpy's functions after this module was imported.
_asarray, _absolute, _maximum, _minimum, _isfinite = np.asarray, np.absolute, np.maximum, np.minimum, np.isfinite
_argmax, _float64 = np.argmax, np.float64


def _elementwise_rel_error(a, b):
    a, b = _asarray(a, dtype=_float64), _asarray(b, dtype=_float64)
    return _absolute(a - b) / _maximum(1e-8, _absolute(a) + _absolute(b))


class GradientVerdict(NamedTuple):
    """How an analytic gradient compares with a numerical one, element by element."""

    n_bad: int  # elements that fail
    worst: int  # flat index of the element closest to failing (or failing worst)
    rel_error: float  # at ``worst``
    abs_error: float  # at ``worst``


def gradient_verdict(analytic, numerical, tol: float, atol: float) -> GradientVerdict:
    """The one rule: an element passes when ``rel_error <= tol`` or ``abs_error <= atol``.

    ``rel_error = |a - n| / max(1e-8, |a| + |n|)``. A non-finite analytic value
    always fails. The worst element is the one with the largest ``min(rel_error /
    tol, abs_error / atol)``. Empty gradients pass.
    """
    a = _asarray(analytic, dtype=_float64).reshape(-1)
    n = _asarray(numerical, dtype=_float64).reshape(-1)
    if a.size == 0:
        return GradientVerdict(0, 0, 0.0, 0.0)
    absolute = _absolute(a - n)
    rel = absolute / _maximum(1e-8, _absolute(a) + _absolute(n))
    score = _minimum(rel / tol, absolute / atol) if atol > 0 else rel / tol
    score[~_isfinite(score) | ~_isfinite(a)] = float("inf")
    k = int(_argmax(score))
    return GradientVerdict(int((score > 1).sum()), k, float(rel[k]), float(absolute[k]))


def rel_error(a, b) -> float:
    """Largest element-wise relative error ``|a - b| / max(1e-8, |a| + |b|)``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ: {a.shape} and {b.shape}")
    return float(_elementwise_rel_error(a, b).max()) if a.size else 0.0


class GradientComparison(NamedTuple):
    """The analytic and numerical gradient of one argument, at their worst element."""

    where: str  # the backward function's name
    name: str  # gradient name, e.g. "dw"
    index: tuple[int, ...]
    analytic: float
    numerical: float
    rel_error: float
    tol: float
    atol: float = 0.0

    @property
    def abs_error(self) -> float:
        return abs(self.analytic - self.numerical)

    @property
    def ok(self) -> bool:
        return gradient_verdict([self.analytic], [self.numerical], self.tol, self.atol).n_bad == 0

    def __str__(self) -> str:
        verdict = "agrees with" if self.ok else "differs from"
        return (
            f"{self.where}: {self.name} {verdict} the numerical gradient at index {self.index}: "
            f"analytic {self.analytic:.6g}, numerical {self.numerical:.6g}, "
            f"relative error {self.rel_error:.2g} (expected < {self.tol:.0e}"
            + (f" or absolute error <= {self.atol:.0e})" if self.atol else ")")
        )


def check_gradients(
    forward: Callable,
    backward: Callable,
    inputs: Sequence,
    *,
    dout=None,
    kwargs: dict | None = None,
    h: float = 1e-5,
    tol: float = 1e-7,
    atol: float = 1e-9,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> list[GradientComparison]:
    """Compare a layer's backward pass with finite differences, one argument at a time.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs, **kwargs)`` returns ``(out, cache, ...)``; extra returns are ignored.
    backward : callable
        ``backward(dout, cache)`` returns one gradient per element of ``inputs``
        (a single array when there is one input).
    inputs : sequence of arrays
        The differentiated arguments; converted to float64 copies.
    dout : array, optional
        Upstream gradient; standard normal from ``seed`` by default.
    kwargs : dict, optional
        Arguments held fixed (stride, running statistics, ...).
    h, tol, atol : float
        Finite-difference step, the largest relative error accepted, and the
        absolute error accepted whatever the relative one (finite-difference noise).
    names : sequence of str, optional
        Argument names; by default those of ``forward``'s signature (``x, w, b`` -> ``dx, dw, db``).

    Returns
    -------
    list of GradientComparison
        One per input, at the element with the largest relative error.
    """
    kwargs = dict(kwargs or {})
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    if names is None:
        params = [p.name for p in inspect.signature(forward).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = params[: len(inputs)] if len(params) >= len(inputs) else [f"input{i}" for i in range(len(inputs))]
    out, cache = forward(*inputs, **kwargs)[:2]
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    where = getattr(backward, "__name__", "backward")
    if len(grads) != len(inputs):
        raise ValueError(f"check_gradients: {where} returned {len(grads)} gradients for {len(inputs)} inputs")
    results = []
    for i, (name, grad) in enumerate(zip(names, grads)):
        grad = np.asarray(grad)
        if grad.shape != inputs[i].shape:
            raise AssertionError(f"{where}: d{name} has shape {grad.shape} but {name} has shape {inputs[i].shape}")

        def f(xi, i=i):
            args = list(inputs)
            args[i] = xi
            return forward(*args, **kwargs)[0]

        numerical = numerical_gradient_array(f, inputs[i].copy(), dout, h)
        if grad.size == 0:
            results.append(GradientComparison(where, f"d{name}", (), 0.0, 0.0, 0.0, tol, atol))
            continue
        v = gradient_verdict(grad, numerical, tol, atol)
        worst = np.unravel_index(v.worst, grad.shape)
        results.append(GradientComparison(where, f"d{name}", tuple(int(i) for i in worst), float(grad[worst]),
                                          float(numerical[worst]), v.rel_error, tol, atol))
    return results


def assert_gradients_ok(comparisons: Sequence[GradientComparison]) -> None:
    """Raise ``AssertionError`` listing every gradient that failed its check."""
    failed = [str(c) for c in comparisons if not c.ok]
    if failed:
        raise AssertionError("\n".join(failed))


def check_model_gradients(model, X, y, *, h: float = 1e-5, tol: float = 1e-7, atol: float | None = None,
                          max_checks: int | None = None, seed: int = 0) -> list[GradientComparison]:  # fmt: skip
    """Compare every parameter gradient of ``model.loss(X, y)`` with finite differences.

    ``atol`` defaults to ``1e-8 * max(1, |loss|)``: the loss of a deep model carries
    rounding error of a few hundred eps, which the difference quotient divides by h.

    The model's parameters must be float64. Dropout, if any, must draw the same
    mask on every call (e.g. a model built with ``dropout=0``), or the finite
    differences measure noise. ``max_checks`` limits the elements checked per
    parameter (chosen at random from ``seed``); None checks them all.
    """
    loss, grads = model.loss(X, y)
    atol = 1e-8 * max(1.0, abs(loss)) if atol is None else atol
    where = f"{type(model).__name__}.loss"
    rng = np.random.default_rng(seed)
    results = []
    for name, w in model.params.items():
        if w.dtype != np.float64:
            raise ValueError(f"check_model_gradients: parameter {name} is {w.dtype}; build the model with dtype=np.float64")
        indices = list(np.ndindex(w.shape))
        if max_checks is not None and len(indices) > max_checks:
            indices = [indices[i] for i in rng.choice(len(indices), size=max_checks, replace=False)]
        analytic = np.array([grads[name][ix] for ix in indices])
        numerical = np.empty(len(indices))
        for k, ix in enumerate(indices):
            old = w[ix]
            w[ix] = old + h
            f_plus = model.loss(X, y)[0]
            w[ix] = old - h
            f_minus = model.loss(X, y)[0]
            w[ix] = old
            numerical[k] = (f_plus - f_minus) / (2 * h)
        v = gradient_verdict(analytic, numerical, tol, atol)
        k = v.worst
        results.append(GradientComparison(where, f"d{name}", tuple(int(i) for i in indices[k]), float(analytic[k]),
                                          float(numerical[k]), v.rel_error, tol, atol))
    return results
