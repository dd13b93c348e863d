"""Homework 4 (batch norm, dropout, a numpy ConvNet): the source notebook, its student version, its grading.

Fast tests check the notebook's structure (issue 12's test contract), the solution against coursekit,
and every corpus case of tests/corpus/hw4_corpus.py in-process on several seeds: each wrong case fails
exactly the graded cells it must, each correct variant none. Tests marked slow run nbgrader: ``nbgrader
validate`` on the source, the released student version, and ONE ``python -m autograder grade`` run
over corpus submissions, whose per-test scores are read back from the gradebook.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import coursekit.layers as ref
from coursekit import checks
from coursekit.testcases import normalization as cases
import homework_support as support
from corpus import hw4_corpus as corpus
from corpus import hw45_inprocess as inprocess
from homework_support import replace as _replace

HW = support.Homework(
    "hw4_batchnorm",
    points=corpus.POINTS,
    total=14,
    solution_cells=("batchnorm", "spatial_batchnorm", "dropout", "train_convnet"),
    public_only=("test_convnet_training",),
    solution_must_not_mention="coursekit.layers",  # train_convnet builds on coursekit's ConvNet and Solver
)
FULL, _lose = HW.full, HW.lose
FORBIDDEN = ["coursekit.layers.batchnorm", "coursekit.layers.dropout", "torch", "scipy"]


@pytest.fixture(scope="module")
def source_nb():
    return HW.read()


@pytest.fixture(scope="module")
def sol(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    return HW.run_solution(source_nb, {"np": np, "__name__": "hw4_solution"})


# ------------------------------------------------------------------ notebook shape


def test_graded_cells_points_locks_and_contract(source_nb):
    cells = support.check_cell_contract(HW, source_nb, FORBIDDEN)
    assert "time_budget(\"train_convnet\", 60)" in cells["test_convnet_training"].source
    assert "at_least=0.90" in cells["test_convnet_training"].source
    assert "**Credit rule.**" in cells["intro"].source


def test_test_cells_are_self_contained(source_nb):
    """Each test cell runs alone in a namespace holding only ``student`` (the grader runs nothing else)."""
    nb = inprocess.source(HW.name)
    ns = inprocess.namespace(nb)
    tests = {k: v for k, v in inprocess.test_cells(nb).items() if k not in corpus.SLOW}
    assert inprocess.failing(ns, tests, seed=1) == {}


# ------------------------------------------------- the solution against coursekit


def _bn_args(rng, shape):
    c = shape[1]
    return (rng.standard_normal(shape) * 2 + 1, rng.standard_normal(c), rng.standard_normal(c),
            rng.standard_normal(c), rng.uniform(0.5, 2, size=c))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("training", [True, False])
def test_solution_batchnorm_matches_reference(sol, seed, training):
    rng = np.random.default_rng(seed)
    kw = {"training": training, "momentum": 0.3, "eps": 1e-3}
    args = _bn_args(rng, (5, 3))
    checks.check_against_reference(sol["batchnorm_forward"], ref.batchnorm_forward, args, kw,
                                   outputs=("out", None, "rm", "rv"), disable_reference=False)
    x, g, b, rm, rv = args
    checks.check_backward_numerically(lambda x, g, b: sol["batchnorm_forward"](x, g, b, rm, rv, **kw)[:2],
                                      sol["batchnorm_backward"], (x, g, b), disable_reference=False)
    args = _bn_args(rng, (2, 3, 2, 3))
    checks.check_against_reference(sol["spatial_batchnorm_forward"], ref.spatial_batchnorm_forward, args, kw,
                                   outputs=("out", None, "rm", "rv"), disable_reference=False)


@pytest.mark.parametrize("training", [True, False])
def test_solution_dropout_matches_reference(sol, training):
    x = np.random.default_rng(0).standard_normal((6, 7))
    out, cache = sol["dropout_forward"](x, p=0.3, training=training, rng=np.random.default_rng(5))
    expected, _ = ref.dropout_forward(x, p=0.3, training=training, rng=np.random.default_rng(5))
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    assert (cache["keep"] is None) == (not training)


def test_failure_messages_name_the_case_and_the_dtype(sol):
    case = cases.batchnorm_cases(1234, training=True)[1]
    with pytest.raises(checks.CheckFailure, match=r"hidden case 2 of 5 \(x \(6, 4\) float64.*COURSEKIT_SEED=1234\)"):
        cases.check_batchnorm_forward(lambda *a, **k: (a[0] * 0, {}, a[3], a[4]), case)
    to32 = lambda *a, **k: tuple(v.astype(np.float32) if isinstance(v, np.ndarray) else v  # noqa: E731
                                 for v in sol["batchnorm_forward"](*a, **k))
    with pytest.raises(checks.CheckFailure, match="has dtype float32 but expected float64"):
        cases.check_batchnorm_forward(to32, case)


def test_hidden_cases_cover_the_same_features_at_every_seed():
    for seed in (0, 1, 99):
        shapes = [c.args["x"].shape for c in cases.batchnorm_cases(seed, training=True)]
        assert shapes[0][0] == 2 and all(n != d for n, d in shapes[1:])
        assert any(c.float32 for c in cases.batchnorm_cases(seed, training=True))
        assert all(h != w for c in cases.spatial_cases(seed, training=True) for h, w in [c.args["x"].shape[2:]])
        drop = cases.dropout_cases(seed)
        assert {c.args["training"] for c in drop} == {True, False} and any(c.args["p"] > 0.5 for c in drop)


@pytest.mark.slow
def test_solution_convnet_reaches_the_target(sol):
    from coursekit.data import mnist5k
    data = mnist5k()
    model = sol["train_convnet"](data.X_train, data.y_train, data.X_val, data.y_val)
    acc = float(np.mean(cases.convnet_from(model.params, model.bn_state).predict(data.X_test) == data.y_test))
    assert acc >= 0.93, acc  # the notebook asks for 0.90: a margin against other BLAS builds


# ------------------------------------------------------- the corpus, in-process


@pytest.fixture(scope="module")
def notebook_cells():
    return inprocess.source(HW.name)


@pytest.mark.parametrize("case", corpus.WRONG + corpus.CORRECT, ids=lambda c: c.name)
def test_corpus_case_loses_exactly_its_points(notebook_cells, case):
    nb = inprocess.edited(notebook_cells, case)
    ns = inprocess.namespace(nb)
    tests = {k: v for k, v in inprocess.test_cells(nb).items() if k not in corpus.SLOW}
    for seed in (3, 1000, 123456):
        failed = inprocess.failing(ns, tests, seed)
        assert set(failed) == set(case.lost) - set(corpus.SLOW), (seed, failed)


def test_corpus_size():
    assert len(corpus.WRONG) >= 12 and len(corpus.CORRECT) >= 3
    assert all(set(c.lost) <= set(corpus.POINTS) for c in corpus.WRONG)


# ----------------------------------------------------------------- nbgrader (slow)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    support.assert_validates(HW.source, tmp_path)


def _submission(case):
    return (tuple((gid, _replace(old, new)) for gid, old, new in case.edits), _lose(*case.lost) if case.lost else FULL)


# Graded end to end: every correct variant and one wrong case per graded cell (each submission trains the
# ConvNet, so the whole corpus takes about ten minutes on two cores: HW45_FULL_CORPUS=1 grades it all).
E2E = ("bn_running_stats_in_training", "bn_eps_outside_sqrt", "bn_backward_missing_xhat_term",
       "spatial_reshape_without_transpose", "dropout_not_inverted", "dropout_backward_unscaled")
SUBMISSIONS = {"a_solution": ((), FULL), **{
    f"c_{case.name}": _submission(case) for case in corpus.WRONG + corpus.CORRECT
    if not case.lost or case.name in E2E or os.environ.get("HW45_FULL_CORPUS")}}


# A correct variant that writes a RuntimeWarning: full marks, since the grader ignores stderr (issue 13).



@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("grading"))


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    cells = support.check_released(HW, graded["released"], leaks=(
        "N / (N - 1)", "transpose(0, 2, 3, 1)", "rng.random(x.shape) >=", "fresh_seed", "batchnorm_cases",
        "ThreeLayerConvNet(num_filters"))
    assert "[1.1, 20.9]" in cells["test_batchnorm_forward_train"].source  # public tests survive
    assert graded["released"].metadata["coursekit"]["forbidden"] == FORBIDDEN


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
