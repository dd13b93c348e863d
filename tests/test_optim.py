"""Update rules against torch.optim, step by step (torch is the oracle)."""

import numpy as np
import pytest
import torch

from coursekit.optim import adam, rmsprop, sgd, sgd_momentum

RULES = [
    (sgd, {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
    (sgd_momentum, {"lr": 0.1, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (sgd_momentum, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (rmsprop, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    (adam, {"lr": 0.01}, lambda p: torch.optim.Adam(p, lr=0.01)),
]


@pytest.mark.parametrize("rule, hyper, make_torch", RULES, ids=lambda r: getattr(r, "__name__", ""))
def test_rule_matches_torch_over_five_steps(rule, hyper, make_torch):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(5)]
    wt = torch.tensor(w.copy(), requires_grad=True)
    opt = make_torch([wt])
    state = None
    for step, g in enumerate(grads):
        w, state = rule(w, g, state, **hyper)
        wt.grad = torch.tensor(g)
        opt.step()
        # float64 on both sides; the formulas are the same, so only rounding differs.
        np.testing.assert_allclose(w, wt.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{rule.__name__} step {step}")


def test_rules_do_not_modify_their_arguments():
    rng = np.random.default_rng(1)
    w, g = rng.standard_normal(5), rng.standard_normal(5)
    for rule in (sgd, sgd_momentum, rmsprop, adam):
        w0, g0 = w.copy(), g.copy()
        _, state = rule(w, g, None)
        state_copy = [np.copy(s) for s in state] if state is not None else None
        rule(w, g, state)
        assert np.array_equal(w, w0) and np.array_equal(g, g0), rule.__name__
        if state is not None:
            for a, b in zip(state, state_copy):
                assert np.array_equal(a, b), f"{rule.__name__} changed its state in place"
