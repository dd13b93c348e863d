"""Homework 1 (images, distances, k-NN, a linear classifier): the source notebook, its student version, its grading.

Fast tests check the notebook's structure and run its solution code against
coursekit directly. Tests marked slow run nbgrader: ``nbgrader validate`` on the
source, the released student version, and ONE ``python -m autograder grade`` run
over all the submissions built below, whose per-test scores are read back from
the gradebook.
"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit import checks, distances, filters, linear_classifier
from coursekit.knn import KNearestNeighbor
import homework_support as support
from homework_support import GAMING, replace as _replace

HW = support.Homework(
    "hw1_classifiers",
    points={
        "test_integral_image": 1,
        "test_pnorm": 2,
        "test_pairwise_sq_l2": 2,
        "test_pairwise_vectorised": 1,
        "test_knn_predict": 2,
        "test_knn_ties": 1,
        "test_histogram_intersection": 1,
        "test_chi_squared": 1,
        "test_softmax_loss": 2,
        "test_linear_classifier_training": 2,
    },
    total=15,
    solution_cells=("integral_image", "pnorm", "pairwise_sq_l2", "knn", "histograms", "linear_classifier"),
    public_only=("test_linear_classifier_training",),
)
FULL, _lose = HW.full, HW.lose


@pytest.fixture(scope="module")
def source_nb():
    return HW.read()


@pytest.fixture(scope="module")
def sol(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    return HW.run_solution(source_nb, {"np": np, "__name__": "hw1_solution"})


# ------------------------------------------------------------------ notebook shape


def test_graded_cells_points_and_locks(source_nb):
    cells = support.check_cell_contract(HW, source_nb)
    for gid in HW.points:
        assert "reference_disabled" in cells[gid].source, gid
    assert "0, 16, 29, 42, 58, 74" in cells["test_integral_image"].source  # the syllabus's worked example
    assert "1000.0" in cells["test_softmax_loss"].source  # large scores in the hidden test


# ------------------------------------------------- the solution against coursekit


@pytest.mark.parametrize("seed", range(3))
def test_solution_matches_reference(sol, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, size=(5, 7))
    np.testing.assert_array_equal(sol["integral_image"](img), filters.integral_image(img))
    x = rng.standard_normal((4, 6))
    x[rng.random(x.shape) < 0.3] = 0
    for p in (0, 0.5, 1, 2, 3, np.inf):
        np.testing.assert_allclose(sol["pnorm"](x, p), distances.pnorm(x, p), rtol=1e-12)
    A, B = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    np.testing.assert_allclose(sol["pairwise_sq_l2"](A, B), distances.pairwise_sq_l2(A, B), rtol=1e-10, atol=1e-12)
    h1, h2 = rng.random((3, 6)) * (rng.random((3, 6)) < 0.5), rng.random((3, 6)) * (rng.random((3, 6)) < 0.5)
    np.testing.assert_allclose(sol["histogram_intersection"](h1, h2), distances.histogram_intersection(h1, h2))
    np.testing.assert_allclose(sol["chi_squared"](h1, h2), distances.chi_squared(h1, h2))
    for k in (1, 2, 3, 4, 5):
        Xtr = rng.integers(0, 3, size=(20, 2)).astype(float)
        ytr = rng.integers(0, 4, size=20)
        Xte = rng.integers(0, 3, size=(15, 2)).astype(float)
        np.testing.assert_array_equal(sol["KNearestNeighbor"](k).fit(Xtr, ytr).predict(Xte),
                                      KNearestNeighbor(k).fit(Xtr, ytr).predict(Xte))
    W, X, y = rng.standard_normal((4, 3)) * 1000, rng.standard_normal((5, 3)), rng.integers(0, 4, size=5)
    loss, dW = sol["softmax_loss"](W, X, y, 0.3)
    rl, rdW = linear_classifier.softmax_loss(W, X, y, 0.3)
    np.testing.assert_allclose(loss, rl, rtol=1e-12)
    np.testing.assert_allclose(dW, rdW, rtol=1e-10, atol=1e-12)


def test_solution_distances_are_vectorised_and_a_loop_is_caught(sol):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((50, 8)), rng.standard_normal((30, 8))
    checks.assert_no_python_loop_over("pairwise_sq_l2", lambda n: sol["pairwise_sq_l2"](A[:n], B))

    def looped(A, B):
        return np.stack([((B - a) ** 2).sum(axis=1) for a in A])
    with pytest.raises(checks.CheckFailure, match="loops over the rows"):
        checks.assert_no_python_loop_over("pairwise_sq_l2", lambda n: looped(A[:n], B), what="rows")


def test_solution_linear_classifier_reaches_the_target(sol):
    from coursekit.data import digits
    d = digits(flatten=True, dtype=np.float64)
    add1 = lambda X: np.hstack([X, np.ones((len(X), 1))])  # noqa: E731
    W = sol["train_linear_classifier"](add1(d.X_train), d.y_train, 10)
    assert np.mean((add1(d.X_test) @ W.T).argmax(axis=1) == d.y_test) >= 0.93  # the notebook asks for 0.90


# ----------------------------------------------------------------- nbgrader (slow)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    support.assert_validates(HW.source, tmp_path)


_variant = HW.variant


LOOP_DISTANCES = ("pairwise_sq_l2", _replace(
    "    sq_a = (A * A).sum(axis=1)\n    sq_b = (B * B).sum(axis=1)\n"
    "    return np.maximum(sq_a[:, None] - 2.0 * (A @ B.T) + sq_b[None, :], 0.0)\n",
    "    D2 = np.zeros((len(A), len(B)))\n    for i in range(len(A)):  # one test row at a time\n"
    "        D2[i] = ((B - A[i]) ** 2).sum(axis=1)\n    return D2\n"))
L0_COUNTS_ALL = ("pnorm", _replace("        return np.count_nonzero(a, axis=-1)\n", "        return (a ** p).sum(axis=-1)\n"))
VOTE_NEAREST_FIRST = ("knn", _replace(
    "        n_labels = int(self.y_train.max()) + 1\n"
    "        votes = (labels[:, :, None] == np.arange(n_labels)).sum(axis=1)  # (M, n_labels)\n"
    "        return votes.argmax(axis=1)  # the first (smallest) label among equal vote counts\n",
    "        from collections import Counter\n"
    "        return np.array([Counter(row.tolist()).most_common(1)[0][0] for row in labels])\n"))
CHI_NAN = ("histograms", _replace("    terms = np.divide(num, den, out=np.zeros(num.shape), where=den > 0)\n",
                                  "    terms = num / den\n"))
LOSS_NO_SHIFT = ("linear_classifier", _replace("    shifted = scores - scores.max(axis=1, keepdims=True)\n",
                                               "    shifted = scores\n"))

# student -> (edits, expected per-test scores)
SUBMISSIONS = {
    "a_solution": ((), FULL),
    # right values, but a Python loop over the test rows
    "c_loop_over_test_images": ((LOOP_DISTANCES,), _lose("test_pairwise_vectorised")),
    # "L0" as sum(|x|**0): 0**0 == 1 counts the zeros too
    "d_l0_counts_zeros": ((L0_COUNTS_ALL,), _lose("test_pnorm")),
    # Counter.most_common: on equal votes the nearest neighbour's label wins, not the smaller label
    "e_knn_vote_tie_nearest_first": ((VOTE_NEAREST_FIRST,), _lose("test_knn_ties")),
    # 0/0 = nan for bins empty in both histograms
    "f_chi_squared_nan": ((CHI_NAN,), _lose("test_chi_squared")),
    # softmax without the max shift: exp overflows on the hidden test's scores in the thousands
    "g_softmax_loss_no_shift": ((LOSS_NO_SHIFT,), _lose("test_softmax_loss")),
    # calls the reference distances: every test that computes distances scores 0
    "h_imports_reference": ((("pairwise_sq_l2", lambda s: "from coursekit.distances import pairwise_sq_l2\n"),),
                            _lose("test_pairwise_sq_l2", "test_pairwise_vectorised", "test_knn_predict",
                                  "test_knn_ties")),
    "i_allclose_patch": (((CHI_NAN[0], lambda s: CHI_NAN[1](s) + GAMING),), _lose("test_chi_squared")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("grading"))


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    cells = support.check_released(HW, graded["released"], leaks=(
        "cumsum", "count_nonzero", "A @ B.T", "kind=\"stable\")[:", "where=den > 0", "_ck.",
        "fresh_seed", "_FORBID", "1000.0", "W - 0.5 * dW"))
    assert "0, 16, 29, 42, 58, 74" in cells["test_integral_image"].source  # public tests survive
    assert "BEGIN HIDDEN" not in cells["test_pairwise_vectorised"].source


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
