"""Update rules for numpy networks, with the conventions of ``torch.optim``.

Each rule is a pure function ``rule(w, dw, state, **hyper) -> (new_w, new_state)``:
``state`` is what the rule remembers between steps for one parameter (``None`` on
the first step); neither ``w`` nor ``state`` is modified. Following torch lets the
tests check every rule step by step against ``torch.optim``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES"]


def sgd(w, dw, state=None, *, lr=1e-2):
    """Plain gradient descent: ``w <- w - lr * dw``."""
    return w - lr * dw, None


class MomentumState(NamedTuple):
    velocity: np.ndarray


def sgd_momentum(w, dw, state: MomentumState | None = None, *, lr=1e-2, momentum=0.9, nesterov=False):
    """SGD with momentum, as ``torch.optim.SGD``: ``v <- mu v + dw``, ``w <- w - lr v``.

    With ``nesterov=True`` the step uses the look-ahead gradient ``dw + mu v``.
    """
    v = dw.copy() if state is None else momentum * state.velocity + dw  # torch starts v at the first gradient
    step = dw + momentum * v if nesterov else v
    return w - lr * step, MomentumState(v)


class RMSPropState(NamedTuple):
    square_avg: np.ndarray


def rmsprop(w, dw, state: RMSPropState | None = None, *, lr=1e-2, alpha=0.99, eps=1e-8):
    """RMSProp, as ``torch.optim.RMSprop``: divide each step by a running RMS of the gradient."""
    sq = (1 - alpha) * dw**2 if state is None else alpha * state.square_avg + (1 - alpha) * dw**2
    return w - lr * dw / (np.sqrt(sq) + eps), RMSPropState(sq)


class AdamState(NamedTuple):
    m: np.ndarray
    v: np.ndarray
    t: int


def adam(w, dw, state: AdamState | None = None, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam, as ``torch.optim.Adam``: momentum on the gradient and its square, bias-corrected.

    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1^t)`` and
    ``v_hat = v / (1 - beta2^t)``, computed in torch's order: the corrections are applied to
    the scalars, and each new array is updated in place, so one step makes few temporaries.
    """
    m0, v0, t0 = (np.zeros_like(w), np.zeros_like(w), 0) if state is None else state
    t = t0 + 1
    m = beta1 * m0
    m += (1 - beta1) * dw
    v = beta2 * v0
    v += (1 - beta2) * (dw * dw)
    denom = np.sqrt(v)
    denom /= np.sqrt(1 - beta2**t)  # sqrt(v_hat)
    denom += eps
    step = m / denom
    step *= lr / (1 - beta1**t)  # lr * m_hat / (sqrt(v_hat) + eps)
    return w - step, AdamState(m, v, t)


UPDATE_RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}
