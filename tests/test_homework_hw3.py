"""Homework 3 (convolution and max pooling): the source notebook, its hidden cases, its corpus.

Fast tests check the notebook against the test contract (student(name), self-contained
cells, forbidden modules), the hidden cases' coverage on many seeds, the solution against
coursekit, and every wrong and correct implementation of tests/corpus/hw3_corpus.py graded
in process on several seeds. Tests marked slow run nbgrader: the student version, and the
whole corpus graded end to end in one autograder run.
"""
from __future__ import annotations

import importlib.util
import re

import nbformat
import numpy as np
import pytest

import coursekit.layers as ref
from coursekit import checks
from coursekit.homework import student_in
from coursekit.testcases import conv as hw3_cases
import homework_support as support
from homework_support import REPO, cells as _cells, nbgrader as _nbgrader

_spec = importlib.util.spec_from_file_location("hw3_corpus", REPO / "tests" / "corpus" / "hw3_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

HW = support.Homework(
    "hw3_conv",
    points={
        "test_forward_basic": 2,
        "test_forward_stride_padding": 2,
        "test_backward_numerical": 1,
        "test_backward_dx": 2,
        "test_backward_dw": 2,
        "test_backward_db": 1,
        "test_maxpool_forward": 2,
        "test_maxpool_backward": 2,
        "test_maxpool_backward_ties": 1,
    },
    total=15,
    solution_cells=("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"),
    public_only=("test_forward_basic", "test_backward_numerical"),
    solution_must_not_mention="coursekit.layers",
)
FORBIDDEN = {"torch", "scipy", "coursekit.layers", "coursekit.testcases"}
SEEDS = (0, 1, 2)  # the fast corpus test's hidden-test seeds


@pytest.fixture(scope="module")
def source_nb():
    return HW.read()


@pytest.fixture(scope="module")
def solution_namespace(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    return HW.run_solution(source_nb, {"np": np, "__name__": "hw3_solution"})


# ------------------------------------------------------------------ the test contract


def test_corpus_and_contract_agree():
    assert corpus.POINTS == HW.points and sum(HW.points.values()) == HW.total == corpus.TOTAL
    assert corpus.SOLUTION_CELLS == HW.solution_cells


def test_graded_cells_follow_the_contract(source_nb):
    nbformat.validate(source_nb)
    by_id = _cells(source_nb)
    graded = {gid: c.metadata["nbgrader"]["points"] for gid, c in by_id.items() if c.metadata["nbgrader"].get("grade")}
    assert graded == HW.points
    for gid in HW.points:
        meta, src = by_id[gid].metadata["nbgrader"], by_id[gid].source
        assert meta["locked"] and not meta["solution"], gid
        assert ("### BEGIN HIDDEN TESTS" in src) == (gid in HW.hidden), gid
        if gid in HW.hidden:
            assert "checks.fresh_seed()" in src[src.index("### BEGIN HIDDEN TESTS"):], gid
        for old in ("importlib.reload", "reference_disabled", "import student", "coursekit.layers"):
            assert old not in src, (gid, old)
        # one function per test: the credit rule of the introduction
        assert len(set(re.findall(r'student\("(\w+)"\)', src))) == 1, gid
    for gid in HW.solution_cells:
        meta, src = by_id[gid].metadata["nbgrader"], by_id[gid].source
        assert meta["solution"] and not meta["grade"] and not meta["locked"], gid
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src and "coursekit" not in src, gid
    for gid, c in by_id.items():
        if gid not in HW.solution_cells:
            assert c.metadata["nbgrader"]["locked"], gid
    assert "from coursekit.homework import student" in by_id["setup"].source
    assert FORBIDDEN <= set(source_nb.metadata["coursekit"]["forbidden"])


def test_every_test_cell_runs_alone(solution_namespace):
    """Self-contained: with nothing but ``student`` in its namespace, each test cell passes."""
    for gid, src in corpus.test_cells().items():
        exec(compile(src, gid, "exec"), {"student": student_in(solution_namespace)})  # noqa: S102


def test_introduction_states_the_caches_and_the_credit_rule(source_nb):
    intro = _cells(source_nb)["intro"].source
    for promise in ("cache = (x, w, b, stride, padding)", "cache = (x, kernel_size, stride)",
                    "never costs backward points", "Warnings cost nothing", "float64", "first"):
        assert promise in intro + _cells(source_nb)["pool_backward_intro"].source, promise


def test_lecture_examples_are_in_the_public_tests(source_nb):
    by_id = _cells(source_nb)
    src = by_id["test_forward_basic"].source
    assert "(1, 10, 32, 32)" in src and "padding=2" in src
    assert re.search(r"\[4, 3, 4\],\s*\[2, 4, 3\],\s*\[2, 3, 4\]", src)
    assert "[[4.0, 6.0], [6.0, 9.0]]" in by_id["test_forward_stride_padding"].source
    pool = by_id["test_maxpool_forward"].source
    assert "[[6.0, 8.0], [3.0, 4.0]]" in pool and "(1, 2, 27, 27)" in pool


# ------------------------------------------------------- the hidden cases cover every feature


@pytest.mark.parametrize("seed", range(40))
def test_conv_cases_cover_every_feature_on_every_seed(seed):
    cases = hw3_cases.conv_cases(seed)
    for c in cases:
        n, ch, h, w = c.x.shape
        f, _, kh, kw = c.w.shape
        assert n >= 2 and ch >= 2 and f >= 2 and (h, kh) != (w, kw), c.label
        assert c.x.dtype == c.w.dtype == c.b.dtype == np.float64
        ref.conv2d_forward(c.x, c.w, c.b, stride=c.stride, padding=c.padding, strict=False)  # output >= 1x1
    fixed = cases[:-1]  # the last case has a random shape
    assert {c.padding > 0 for c in fixed} == {True, False}
    assert any(c.stride < min(c.w.shape[2:]) for c in fixed)  # overlapping windows
    assert any(c.stride > 1 and c.stride < c.w.shape[2] for c in fixed)  # overlap with a stride > 1
    assert any((c.x.shape[3] + 2 * c.padding - c.w.shape[3]) % c.stride for c in fixed)  # windows not tiling
    scales = [np.abs(c.x).max() * np.abs(c.w).max() for c in fixed]
    assert min(scales) < 1e-2 and max(scales) > 1e2
    assert all(c.w.shape[2] != c.w.shape[3] for c in fixed[:3])  # non-square kernels


@pytest.mark.parametrize("seed", range(40))
def test_pool_cases_cover_every_feature_and_ties_on_every_seed(seed):
    plain, tied = hw3_cases.pool_cases(seed), hw3_cases.pool_cases(seed, ties=True)
    assert {(c.stride > c.kernel_size) - (c.stride < c.kernel_size) for c in plain} == {-1, 0, 1}
    assert any((c.x.shape[2] - c.kernel_size) % c.stride for c in plain)
    for c in plain + tied:
        assert c.x.shape[0] >= 2 and c.x.shape[1] >= 2 and c.x.shape[2] != c.x.shape[3], c.label
    for c in plain:  # no ties inside a window: the plain backward test is about routing only
        k, s = c.kernel_size, c.stride
        win = np.lib.stride_tricks.sliding_window_view(c.x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        flat = win.reshape(*win.shape[:4], -1)
        assert ((flat == flat.max(axis=-1, keepdims=True)).sum(axis=-1) == 1).all()
    for c in tied:
        k = c.kernel_size
        assert c.stride == k  # windows side by side: the tie test does not depend on accumulation
        for n in range(c.x.shape[0]):
            for ch in range(c.x.shape[1]):
                first = c.x[n, ch, :k, :k]
                second = c.x[n, ch, k:2 * k, k:2 * k]
                assert (first == first.max()).all()  # a window of equal values
                assert second[0, 0] == second[-1, -1] == second.max() > second[0, -1]  # first and last win
                corners = c.x[n, ch, k:2 * k, :k]
                assert corners[0, -1] == corners[-1, 0] == corners.max() > corners[0, 0]  # row- vs column-major


def test_the_reference_routes_ties_like_torch():
    """The hidden tie test's oracle agrees with torch's max-pooling gradient on the tie cases."""
    torch = pytest.importorskip("torch")
    for c in hw3_cases.pool_cases(7, ties=True):
        out, cache = ref.maxpool2d_forward(c.x, kernel_size=c.kernel_size, stride=c.stride, strict=False)
        dout = np.random.default_rng(0).standard_normal(out.shape)
        xt = torch.tensor(c.x, requires_grad=True)
        torch.nn.functional.max_pool2d(xt, c.kernel_size, c.stride).backward(torch.tensor(dout))
        np.testing.assert_array_equal(ref.maxpool2d_backward(dout, cache), xt.grad.numpy())


# ------------------------------------------------- the solution against coursekit


def test_solution_worked_example(solution_namespace):
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
    out, _ = solution_namespace["conv2d_forward"](x[None, None], k[None, None], np.zeros(1))
    np.testing.assert_array_equal(out[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


@pytest.mark.parametrize("seed", range(3))
def test_solution_passes_every_hidden_check(solution_namespace, seed):
    ns = solution_namespace
    hw3_cases.check_conv2d_forward(ns["conv2d_forward"], seed)
    for grad in ("dx", "dw", "db"):
        hw3_cases.check_conv2d_backward(ns["conv2d_backward"], grad, seed)
    hw3_cases.check_maxpool_forward(ns["maxpool2d_forward"], seed)
    hw3_cases.check_maxpool_backward(ns["maxpool2d_backward"], seed)
    hw3_cases.check_maxpool_backward(ns["maxpool2d_backward"], seed, ties=True)


def test_forward_returns_the_prescribed_caches(solution_namespace):
    x, w, b = np.ones((2, 2, 5, 4)), np.ones((3, 2, 3, 2)), np.zeros(3)
    _, cache = solution_namespace["conv2d_forward"](x, w, b, stride=2, padding=1)
    assert cache[0] is x and cache[1] is w and cache[2] is b and cache[3:] == (2, 1)
    _, cache = solution_namespace["maxpool2d_forward"](x, kernel_size=2)
    assert cache[0] is x and cache[1:] == (2, 2)


# ------------------------------------------------------------ failure messages


def test_a_hidden_failure_names_its_case_and_seed(solution_namespace):
    fwd = solution_namespace["conv2d_forward"]

    def channel0(x, w, b, **kw):
        return fwd(x[:, :1], w[:, :1], b, **kw)
    with pytest.raises(checks.CheckFailure) as exc:
        hw3_cases.check_conv2d_forward(channel0, 123)
    msg = str(exc.value)
    assert msg.startswith("conv2d_forward: out differs from the reference at index (")
    assert "in hidden case 1 of 5 (seed 123): x of shape (2, 3, 7, 5), w of shape (2, 3, 3, 2), stride 2, padding 1" in msg


def test_a_wrong_dtype_is_named(solution_namespace):
    bwd = solution_namespace["maxpool2d_backward"]
    with pytest.raises(checks.CheckFailure, match="dx has dtype float32 but expected float64"):
        hw3_cases.check_maxpool_backward(lambda d, c: bwd(d, c).astype(np.float32), 0)


def test_in_place_changes_are_reported(solution_namespace):
    bwd = solution_namespace["conv2d_backward"]

    def scaling(dout, cache):
        dout *= 1.0 + 1e-3
        return bwd(dout, cache)
    with pytest.raises(checks.CheckFailure, match="changed its argument dout in place"):
        hw3_cases.check_conv2d_backward(scaling, "db", 0)


def test_close_to_scale_tolerates_round_off_at_every_scale_and_nothing_more():
    rng = np.random.default_rng(0)
    for scale in (1e-4, 1.0, 1e4):
        expected = scale * rng.standard_normal((3, 4))
        checks.assert_close_to_scale("f", expected * (1 + 1e-12), expected)
        wrong = expected.copy()
        wrong[1, 2] += 1e-5 * np.abs(expected).max()
        with pytest.raises(checks.CheckFailure, match=r"at index \(1, 2\)") as exc:
            checks.assert_close_to_scale("f", wrong, expected)
        assert f"at full precision got {float(wrong[1, 2])!r}, expected {float(expected[1, 2])!r}" in str(exc.value)


def test_in_case_appends_the_label_and_lets_other_errors_through():
    with pytest.raises(checks.CheckFailure, match=r"bad\n    in case 3"):
        with checks.in_case("case 3"):
            raise checks.CheckFailure("bad")
    with pytest.raises(ZeroDivisionError):
        with checks.in_case("case 3"):
            1 / 0  # noqa: B018 - a student's error keeps its own type and traceback


# ---------------------------------------------------- the corpus, in process (fast)


@pytest.mark.parametrize("case", corpus.WRONG + corpus.CORRECT, ids=lambda c: c.name)
def test_corpus_case_loses_exactly_its_points(case):
    """Every wrong case fails exactly its predicted cells, every correct one none, on every seed."""
    assert len(corpus.WRONG) >= 12 and len(corpus.CORRECT) >= 3
    memo: dict = {}
    for seed in SEEDS:
        passed = corpus.score_in_process(case, seed, only_affected=False, cache=memo)
        assert corpus.verdict(case, passed) is None, f"seed {seed}: {corpus.verdict(case, passed)}"


def test_escape_rate_benchmark_runs(capsys):
    spec = importlib.util.spec_from_file_location("escape_rates_hw3", REPO / "benchmarks" / "escape_rates_hw3.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--seeds", "2", "--only", "pool_ties_to_last"]) == 0
    assert "| `pool_ties_to_last_maximum` | `test_maxpool_backward_ties` | 1 | 0.0% (0) | 0.0% (0) |" in capsys.readouterr().out


# ----------------------------------------------------------------- nbgrader (slow)


@pytest.fixture(scope="module")
def released_nb(tmp_path_factory):
    from autograder.grading import release
    path = release(HW.name, tmp_path_factory.mktemp("course"))
    return nbformat.read(path, as_version=4)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    support.assert_validates(HW.source, tmp_path)


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(released_nb):
    cells = support.check_released(HW, released_nb, leaks=(
        "np.tensordot", "x_padded", "fresh_seed", "check_conv2d_backward", "check_maxpool", "argmax", "divmod"))
    stub_args = {"conv2d_forward": (None, None, None), "maxpool2d_forward": (None,),
                 "conv2d_backward": (None, (None,) * 5), "maxpool2d_backward": (None, (None,) * 3)}
    for gid in HW.solution_cells:
        ns = {"np": np}
        exec(compile(cells[gid].source, gid, "exec"), ns)  # noqa: S102
        with pytest.raises(NotImplementedError):
            ns[gid](*stub_args[gid])
    assert "[4, 3, 4]" in cells["test_forward_basic"].source
    assert "check_conv2d_gradients_numerically" in cells["test_backward_numerical"].source
    assert {gid: c.metadata["nbgrader"]["points"] for gid, c in cells.items()
            if c.metadata["nbgrader"].get("grade")} == HW.points
    assert FORBIDDEN <= set(released_nb.metadata["coursekit"]["forbidden"])


@pytest.mark.slow
def test_student_version_fails_nbgrader_validate(released_nb, tmp_path):
    path = tmp_path / f"{HW.name}.ipynb"
    nbformat.write(released_nb, path)
    out = "".join(_nbgrader(["validate", str(path)], tmp_path).stdout)
    assert "NotImplementedError" in out or "VALIDATION FAILED" in out, out[-2000:]


def _replace_with(source):
    return lambda _old: source


SUBMISSIONS = {"a_solution": ((), HW.full)}
for _case in corpus.WRONG + corpus.CORRECT:
    SUBMISSIONS[_case.name] = (tuple((gid, _replace_with(src)) for gid, src in _case.sources.items()),
                               HW.lose(*_case.lost))
del SUBMISSIONS["correct_solution_loops"]  # the same notebook as a_solution
WARNS = ("correct_im2col_with_warnings",)  # its functions warn


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return HW.grade_all(SUBMISSIONS, tmp_path_factory.mktemp("hw3_corpus"))


def _mismatches(graded, students) -> list:
    wrong = []
    for student in students:
        try:
            support.check_submission(HW, graded, SUBMISSIONS, student)
        except AssertionError:
            wrong.append(f"{student}: got {HW.scores(graded, student)}, expected {SUBMISSIONS[student][1]}")
    return wrong


@pytest.mark.slow
def test_corpus_graded_end_to_end(graded):
    """One autograder run: every wrong case loses exactly its points, every correct one none."""
    support.check_grades_csv(HW, graded, SUBMISSIONS)
    wrong = _mismatches(graded, [s for s in SUBMISSIONS if s not in WARNS])
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_public_tests_in_the_notebook_agree_with_the_grader(graded):
    assert not support.check_public_agreement(HW.name, graded, list(SUBMISSIONS))


@pytest.mark.slow
def test_warnings_never_cost_points_end_to_end(graded):
    assert not _mismatches(graded, WARNS)


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    support.assert_hidden_tests_print_their_seed(HW.name, graded, HW.hidden)
