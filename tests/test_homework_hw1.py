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
from coursekit.testcases import classifiers as cases
import homework_support as support
from corpus import hw1_corpus as corpus  # noqa: E402 - tests/ is on sys.path, as for homework_support

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


def test_graded_cells_points_locks_and_the_student_contract(source_nb):
    cells = support.check_cell_contract(HW, source_nb)
    assert "0, 16, 29, 42, 58, 74" in cells["test_integral_image"].source  # the syllabus's worked example
    assert "Each test scores one function" in cells["intro"].source  # the credit rule, stated
    assert {"coursekit.distances", "coursekit.knn", "scipy.spatial"} <= set(source_nb.metadata.coursekit.forbidden)


def test_corpus_has_enough_cases():
    assert len(corpus.WRONG) >= 12 and len(corpus.CORRECT) >= 3
    assert {lost for _, tests in corpus.WRONG.values() for lost in tests} == set(HW.points)  # every test catches one


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


# ------------------------------------------------------- the corpus, in-process (fast)


@pytest.mark.parametrize("name", [*corpus.WRONG, *corpus.CORRECT])
def test_corpus_case_loses_exactly_its_tests_in_process(name):
    """Every wrong implementation fails exactly its tests, every correct variant none, on several seeds."""
    support.check_corpus_in_process(HW, corpus, name, seeds=(0, 1, 2**31 + 7))


def test_hidden_cases_cover_the_features_on_every_seed():
    """Randomness varies the values, not the coverage: what catches each bug is there for any seed."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        images = cases.integral_image_cases(rng)
        assert any(c["image"].dtype == np.uint8 and c["image"].astype(int).sum() > 255 for c in images)
        assert all(c["image"].shape[0] != c["image"].shape[1] for c in images)
        assert {c["p"] for c in cases.pnorm_cases(rng)} >= {0, 1, 3, np.inf}
        for c in cases.pairwise_cases(rng):
            repeated = (c["A"][:, None, :] == c["B"][None, :, :]).all(axis=-1).sum()
            assert len(c["A"]) != len(c["B"]) and repeated >= 8
        for c in cases.histogram_cases(rng):
            assert ((c["h1"] == 0) & (c["h2"] == 0)).any()
        big = cases.softmax_loss_cases(rng)[-1]
        scores = big["X"] @ big["W"].T
        assert scores.max() > 710 and scores[0].max() - scores[0, big["y"][0]] > 745  # exp overflows, p underflows
        assert all(len(c["X"]) >= 2 and c["reg"] >= 0.1 for c in cases.softmax_loss_cases(rng))


# ----------------------------------------------------- the corpus through the grader (slow)


SUBMISSIONS = support.corpus_submissions(HW, corpus)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions (the whole corpus), grade them all with one CLI run."""
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("grading"), jobs=2, timeout=1800)


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    cells = support.check_released(HW, graded["released"], leaks=(
        "cumsum", "count_nonzero", "A @ B.T", "kind=\"stable\")[:", "where=den > 0",
        "fresh_seed", "knn_tie_cases", "softmax_loss_cases", "W - 0.5 * dW"))
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
def test_public_tests_in_the_notebook_agree_with_the_grader(graded):
    assert not support.check_public_agreement(HW.name, graded, list(SUBMISSIONS))


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    support.assert_hidden_tests_print_their_seed(HW.name, graded, HW.hidden)
