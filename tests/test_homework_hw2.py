"""Homework 2 (backpropagation): the source notebook, its student version, and its grading.

Fast tests check the notebook's structure and run its solution code against
coursekit directly. Tests marked slow run nbgrader: ``nbgrader validate`` on the
source, the released student version, and ONE ``python -m autograder grade`` run
over all the submissions built below (the solution, the unchanged student
version, plausibly wrong implementations and two gaming attempts), whose
per-test scores are read back from the gradebook.
"""
from __future__ import annotations

import numpy as np
import pytest

import coursekit.layers as ref
from coursekit import checks
from coursekit.gradcheck import numerical_gradient as ref_numerical_gradient
from coursekit.nets import TwoLayerNet
import homework_support as support
from homework_support import GAMING, PATCH_CHECKS, cells as _cells, replace as _replace

HW = support.Homework(
    "hw2_backprop",
    points={
        "test_chain_rule": 1,
        "test_sigmoid_neuron_loss": 2,
        "test_sigmoid_neuron_grad": 2,
        "test_softmax": 1,
        "test_softmax_cross_entropy": 2,
        "test_linear_forward": 1,
        "test_linear_backward": 2,
        "test_relu": 1,
        "test_sigmoid_layer": 2,
        "test_numerical_gradient": 2,
        "test_two_layer_loss": 2,
        "test_two_layer_training": 2,
    },
    total=20,
    solution_cells=("chain_rule_example", "sigmoid_neuron_loss", "softmax", "linear", "activations",
                    "numerical_gradient", "two_layer"),
    public_only=("test_two_layer_training",),
)
FULL, _lose = HW.full, HW.lose


@pytest.fixture(scope="module")
def source_nb():
    return HW.read()


@pytest.fixture(scope="module")
def sol(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    return HW.run_solution(source_nb, {"np": np, "__name__": "hw2_solution"})


# ------------------------------------------------------------------ notebook shape


def test_graded_cells_points_and_locks(source_nb):
    cells = support.check_cell_contract(HW, source_nb)
    for gid in HW.points:
        src = cells[gid].source
        assert any(k in src for k in ("reference_disabled", "check_backward", "check_against_reference")), gid


def test_worked_examples_are_in_the_public_tests(source_nb):
    cells = _cells(source_nb)
    assert "[-2.0, 48.0]" in cells["test_chain_rule"].source and "[2.0, 144.0]" in cells["test_chain_rule"].source
    assert "10t^4 - 8t" in cells["test_chain_rule"].source
    assert "check_gradient_numerically" in cells["test_softmax_cross_entropy"].source.split("### BEGIN")[0]
    assert "check_backward_numerically" in cells["test_linear_backward"].source.split("### BEGIN")[0]
    # hidden tests use large scores / activations (softmax without the max shift, naive log(sigmoid))
    assert "1000.0" in cells["test_softmax"].source and "1000.0" in cells["test_softmax_cross_entropy"].source
    assert "uniform(40, 60)" in cells["test_sigmoid_neuron_loss"].source


# ------------------------------------------------- the solution against coursekit


def test_solution_chain_rule(sol):
    t = np.linspace(-2, 2, 9)
    z, dz = sol["chain_rule_example"](t)
    np.testing.assert_allclose(dz, 10 * t**4 - 8 * t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z, 2 * t**5 - 4 * t**2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_solution_matches_reference(sol, seed):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((5, 4)) * 1000
    y = rng.integers(0, 4, size=5)
    checks.assert_close("softmax", sol["softmax"](s), ref.softmax(s))
    loss, d = sol["softmax_cross_entropy"](s, y)
    rl, rd = ref.softmax_cross_entropy(s, y)
    checks.assert_scalar_close("sce", loss, rl)
    checks.assert_close("sce", d, rd)
    Z = rng.standard_normal((7, 3)) * 25
    w, t = rng.standard_normal(3), (rng.random(7) < 0.5).astype(float)
    G, dG = sol["sigmoid_neuron_loss"](w, Z, t, 0.2)
    bl, bd = ref.sigmoid_binary_cross_entropy(Z @ w, t)
    checks.assert_scalar_close("neuron", G, 7 * bl + 0.1 * np.sum(w * w), rtol=1e-9)
    checks.assert_close("neuron", dG, Z.T @ (7 * bd) + 0.2 * w)
    x = rng.standard_normal((3, 4)) * 20
    checks.check_backward(sol["sigmoid_forward"], lambda d, c: (sol["sigmoid_backward"](d, c),),
                          ref.sigmoid_forward, lambda d, c: (ref.sigmoid_backward(d, c),), (x,),
                          input_names=("dx",), only=("dx",), numerical=False)
    args = (rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2))
    checks.check_backward(sol["linear_forward"], sol["linear_backward"], ref.linear_forward, ref.linear_backward,
                          args, input_names=("dx", "dw", "db"), only=("dx", "dw", "db"))
    f = lambda v: float(np.sum(np.sin(v) * v))  # noqa: E731
    xg = rng.standard_normal((2, 3))
    checks.assert_close("numerical_gradient", sol["numerical_gradient"](f, xg.copy()),
                        ref_numerical_gradient(f, xg.copy()), rtol=1e-9, atol=1e-12)


def test_solution_two_layer_loss_and_training(sol):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(4, 5, 3, reg=0.1, dtype=np.float64)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, size=6)
    rl, rg = net.loss(X, y)
    loss, grads = sol["two_layer_loss"](net.params, X, y, 0.1)
    checks.assert_scalar_close("two_layer_loss", loss, rl)
    for k in rg:
        checks.assert_close("two_layer_loss", grads[k], rg[k])
    from coursekit.data import digits
    d = digits(flatten=True, dtype=np.float64)
    params = sol["train_two_layer_net"](d.X_train, d.y_train, d.X_val, d.y_val)
    net = TwoLayerNet(64, params["W1"].shape[0], 10, dtype=np.float64)
    net.params = params
    acc = np.mean(net.predict(d.X_test) == d.y_test)
    assert acc >= 0.95, acc  # the notebook asks for 0.92: a margin against other BLAS builds


# ----------------------------------------------------------------- nbgrader (slow)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    support.assert_validates(HW.source, tmp_path)


_variant = HW.variant


NO_SHIFT = ("softmax", _replace("    shifted = x - x.max(axis=1, keepdims=True)\n    e = np.exp(shifted)\n",
                                "    e = np.exp(x)\n"))
SIGMOID_INPUT = ("activations", _replace("    return out, out\n", "    return out, x  # backward: dout * x * (1 - x)\n"))
NAIVE_LOG = ("sigmoid_neuron_loss", _replace(
    "    log_x = -softplus_neg\n    log_1mx = -a - softplus_neg\n",
    "    x = 1 / (1 + np.exp(-a))\n    log_x, log_1mx = np.log(x), np.log(1 - x)\n"))
ONE_SIDED = ("numerical_gradient", _replace(
    "        x[ix] = old - h\n        f_minus = float(f(x))\n        x[ix] = old\n        grad[ix] = (f_plus - f_minus) / (2 * h)",
    "        x[ix] = old\n        f_minus = float(f(x))\n        grad[ix] = (f_plus - f_minus) / h"))

# student -> (edits, expected per-test scores)
SUBMISSIONS = {
    "a_solution": ((), FULL),
    # exp overflows on the hidden test's scores in the thousands: softmax only (the loss has its own log-softmax)
    "c_softmax_no_shift": ((NO_SHIFT,), _lose("test_softmax")),
    # sigmoid backward from the input instead of the output
    "d_sigmoid_backward_input": ((SIGMOID_INPUT,), _lose("test_sigmoid_layer")),
    # log(sigmoid(a)) computed naively: -inf / inexact for large |a|; the gradient is still right
    "e_neuron_naive_log": ((NAIVE_LOG,), _lose("test_sigmoid_neuron_loss")),
    # one-sided finite differences: O(h) error
    "f_one_sided_difference": ((ONE_SIDED,), _lose("test_numerical_gradient")),
    # calls the reference: every test that runs softmax or the loss scores 0
    "g_imports_reference": ((("softmax", lambda s: "from coursekit.layers import softmax, softmax_cross_entropy\n"),),
                            _lose("test_softmax", "test_softmax_cross_entropy", "test_two_layer_loss",
                                  "test_two_layer_training")),
    # patching numpy gains nothing: no test scores more than the same code unpatched. The patched np.abs
    # and np.max also break later tests' own arithmetic, and which ones depends on the fresh seeds each
    # grading run draws, so for this student the expectation is that bound, not exact scores.
    "h_allclose_patch": (((NO_SHIFT[0], lambda s: NO_SHIFT[1](s) + GAMING),), "at most c_softmax_no_shift"),
    "i_patches_checks": (((SIGMOID_INPUT[0], lambda s: SIGMOID_INPUT[1](s) + PATCH_CHECKS),),
                         _lose("test_sigmoid_layer")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("grading"))


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    cells = support.check_released(HW, graded["released"], leaks=(
        "logaddexp", "np.ndindex(x.shape)", "dout.T @ x", "_ck.", "fresh_seed", "_neuron_ref", "1000.0",
        "lr, batch_size"))
    assert "[2.0, 144.0]" in cells["test_chain_rule"].source  # public tests survive


@pytest.mark.slow
def test_grades_csv_and_full_and_zero_marks(graded):
    support.check_grades_csv(HW, graded, SUBMISSIONS)


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_each_submission_loses_exactly_the_expected_tests(graded, student):
    support.check_submission(HW, graded, SUBMISSIONS, student)


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    support.assert_hidden_tests_print_their_seed(HW.name, graded, HW.hidden)
