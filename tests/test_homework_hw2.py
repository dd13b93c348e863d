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
from coursekit.testcases import backprop as cases
import homework_support as support
from corpus import hw2_corpus as corpus  # tests/ is on sys.path, as for homework_support

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


def test_graded_cells_points_locks_and_the_student_contract(source_nb):
    cells = support.check_cell_contract(HW, source_nb)
    assert "Each test scores one function" in cells["intro"].source  # the credit rule, stated
    assert {"coursekit.layers", "coursekit.gradcheck"} <= set(source_nb.metadata.coursekit.forbidden)
    assert "cache = (x, w)" in cells["linear"].source.split("### END SOLUTION")[1]  # the cache the tests build


def test_worked_examples_are_in_the_public_tests(source_nb):
    cells = support.cells(source_nb)
    assert "[-2.0, 48.0]" in cells["test_chain_rule"].source and "[2.0, 144.0]" in cells["test_chain_rule"].source
    assert "10t^4 - 8t" in cells["test_chain_rule"].source
    assert "check_gradient_numerically" in cells["test_softmax_cross_entropy"].source.split("### BEGIN")[0]
    assert "numerical_gradients" in cells["test_linear_backward"].source.split("### BEGIN")[0]


def test_corpus_has_enough_cases():
    assert len(corpus.WRONG) >= 12 and len(corpus.CORRECT) >= 3
    assert {lost for _, tests in corpus.WRONG.values() for lost in tests} == set(HW.points)  # every test catches one


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
    g = ref.sigmoid_forward(x)[0]
    checks.assert_close("sigmoid", sol["sigmoid_forward"](x)[0], g, rtol=1e-12, atol=0)
    dout = rng.standard_normal(x.shape)
    checks.assert_close("sigmoid", sol["sigmoid_backward"](dout, g), dout * g * (1 - g))
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


# ------------------------------------------------------- the corpus, in-process (fast)


@pytest.mark.parametrize("name", [*corpus.WRONG, *corpus.CORRECT])
def test_corpus_case_loses_exactly_its_tests_in_process(name):
    """Every wrong implementation fails exactly its tests, every correct variant none, on several seeds."""
    support.check_corpus_in_process(HW, corpus, name, seeds=(0, 1, 2**31 + 7))


def test_hidden_cases_cover_the_features_on_every_seed():
    """Randomness varies the values, not the coverage: what catches each bug is there for any seed."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        huge = cases.cross_entropy_cases(rng)[-1]
        s, y = huge["scores"], huge["y"]
        assert s.max() > 710 and s[0].max() - s[0, y[0]] > 745 and s[0].max() - s[1].max() > 745
        assert all(len(set(c["x"].shape)) == 2 and len(c["x"]) >= 2 for c in cases.softmax_cases(rng))
        for c in cases.linear_cases(rng):
            assert len({*c["x"].shape, len(c["w"])}) == 3 and len(c["x"]) >= 2
        assert all((c["x"] == 0).any() for c in cases.relu_cases(rng))
        tail = cases.sigmoid_cases(rng)[-1]["x"]
        assert ((tail < -709.8) & (tail > -745)).any()  # e^-x overflows, the sigmoid is a subnormal, not 0
        layouts = [c["x"] for c in cases.numerical_gradient_cases(rng)]
        assert not layouts[0].flags.c_contiguous and not layouts[1].flags.c_contiguous
        assert all(c["reg"] >= 0.1 and len(c["X"]) >= 2 for c in cases.two_layer_cases(rng))


def test_recording_function_sees_a_copy_perturbed():
    x = np.random.default_rng(0).standard_normal((3, 2)).T
    f = cases.RecordingFunction(x.copy(), np.ones(x.shape))
    flat = x.ravel()  # a copy: x is not contiguous
    flat[0] += 1e-5
    f(x)
    assert not f.saw_change
    x[0, 0] += 1e-5
    f(x)
    assert f.saw_change


# ----------------------------------------------------- the corpus through the grader (slow)


SUBMISSIONS = support.corpus_submissions(HW, corpus)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions (the whole corpus), grade them all with one CLI run."""
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("grading"), jobs=2, timeout=1800)


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    cells = support.check_released(HW, graded["released"], leaks=(
        "logaddexp", "np.ndindex(x.shape)", "dout.T @ x", "fresh_seed", "neuron_cases", "cross_entropy_cases",
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
def test_public_tests_in_the_notebook_agree_with_the_grader(graded):
    assert not support.check_public_agreement(HW.name, graded, list(SUBMISSIONS))


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    support.assert_hidden_tests_print_their_seed(HW.name, graded, HW.hidden)
