"""Homework 3 (convolution): the source notebook, its student version, and coursekit.checks.

Fast tests check the notebook's structure, run its solution code against
coursekit directly, and exercise coursekit.checks (located messages and the
anti-gaming guards). Tests marked slow run nbgrader.
"""
from __future__ import annotations

import re
import subprocess
import sys
import types

import nbformat
import numpy as np
import pytest

import coursekit.layers as ref
from coursekit import checks
import homework_support as support
from homework_support import cells as _cells, nbgrader as _nbgrader

HW = support.Homework(
    "hw3_conv",
    points={
        "test_forward_basic": 2,
        "test_forward_stride_padding": 2,
        "test_backward_numerical": 1,
        "test_backward_dx": 2,
        "test_backward_dw": 2,
        "test_backward_db": 1,
    },
    total=10,
    solution_cells=("conv2d_forward", "conv2d_backward"),
    public_only=("test_forward_basic", "test_backward_numerical"),
    solution_must_not_mention="coursekit.layers",
)


@pytest.fixture(scope="module")
def source_nb():
    return HW.read()


@pytest.fixture(scope="module")
def solution_namespace(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    return HW.run_solution(source_nb, {"np": np, "__name__": "hw3_solution"})


def _ref_forward(x, w, b, *, stride=1, padding=0):
    return ref.conv2d_forward(x, w, b, stride=stride, padding=padding, strict=False)


# ------------------------------------------------------------------ notebook shape


def test_source_notebook_is_valid_nbformat(source_nb):
    nbformat.validate(source_nb)
    assert source_nb.metadata.kernelspec.name == "python3"
    assert all(c.metadata.get("nbgrader", {}).get("schema_version") == 3 for c in source_nb.cells)


def test_graded_cells_points_and_locks(source_nb):
    cells = support.check_cell_contract(HW, source_nb)
    for gid in HW.points:
        src = cells[gid].source
        assert ("reference_disabled" in src or "check_backward" in src
                or "check_against_reference" in src), gid
    for gid in HW.hidden:
        src = cells[gid].source
        assert "strict=False" in src[src.index("### BEGIN HIDDEN TESTS"):], gid


def test_lecture_example_is_in_the_public_test(source_nb):
    src = _cells(source_nb)["test_forward_basic"].source
    assert "(1, 10, 32, 32)" in src and "padding=2" in src
    assert re.search(r"\[4, 3, 4\],\s*\[2, 4, 3\],\s*\[2, 3, 4\]", src)


# ------------------------------------------------- the solution against coursekit


def test_solution_worked_example(solution_namespace):
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
    out, _ = solution_namespace["conv2d_forward"](x[None, None], k[None, None], np.zeros(1))
    np.testing.assert_array_equal(out[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


@pytest.mark.parametrize("seed", range(4))
def test_solution_matches_reference(solution_namespace, seed):
    fwd, bwd = solution_namespace["conv2d_forward"], solution_namespace["conv2d_backward"]
    rng = np.random.default_rng(seed)
    for case in checks.conv2d_cases(rng, n=3):
        args = (case["x"], case["w"], case["b"])
        kw = {"stride": case["stride"], "padding": case["padding"]}
        checks.check_against_reference(fwd, _ref_forward, args, kw, name="conv2d_forward",
                                       outputs=("out", None))
        checks.check_backward(fwd, bwd, _ref_forward, ref.conv2d_backward, args, kwargs=kw,
                              input_names=("dx", "dw", "db"), only=("dx", "dw", "db"),
                              name="conv2d_backward", seed=seed)


def test_conv2d_cases_cover_stride_and_padding():
    cases = checks.conv2d_cases(np.random.default_rng(123), n=3)
    assert [(c["stride"], c["padding"]) for c in cases] == [(1, 1), (2, 2), (3, 0)]
    for c in cases:
        assert c["x"].dtype == np.float64 and c["x"].shape[1] == c["w"].shape[1]
        _ref_forward(c["x"], c["w"], c["b"], stride=c["stride"], padding=c["padding"])  # output >= 1x1


# ------------------------------------------------------------------ coursekit.checks


def test_assert_close_locates_the_worst_entry():
    expected = np.zeros((1, 3, 2, 4))
    actual = expected.copy()
    actual[0, 2, 1, 3] = 0.02
    actual[0, 0, 0, 0] = 1e-12  # inside the tolerance
    with pytest.raises(checks.CheckFailure) as exc:
        checks.assert_close("conv2d_forward", actual, expected, rtol=1e-7, atol=1e-9, what="out")
    msg = str(exc.value)
    assert msg.startswith("conv2d_forward: out differs from the reference at index (0, 2, 1, 3)")
    assert "got 0.02, expected 0" in msg and "1 of 24 entries" in msg


def test_assert_close_shape_dtype_and_nan_messages():
    with pytest.raises(checks.CheckFailure, match=r"dx has shape \(2, 3\) but expected \(3, 2\)"):
        checks.assert_close("conv2d_backward", np.zeros((2, 3)), np.zeros((3, 2)), what="dx")
    with pytest.raises(checks.CheckFailure, match="should be an array"):
        checks.assert_close("f", None, np.zeros(1))
    with pytest.raises(checks.CheckFailure, match=r"at index \(1,\): got nan"):
        checks.assert_close("f", np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(checks.CheckFailure, match="dtype float32 but expected float64"):
        checks.assert_dtype("f", np.zeros(1, np.float32), np.float64, what="out")


def test_numpy_patches_do_not_change_the_verdict(monkeypatch):
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "abs", lambda x: 0 * x)
    monkeypatch.setattr(np, "absolute", lambda x: 0 * x)
    monkeypatch.setattr(np, "max", lambda *a, **k: 0.0)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    with pytest.raises(checks.CheckFailure):
        checks.assert_close("f", np.ones(3), np.zeros(3))


def test_reload_keeps_import_time_numpy_and_undoes_patched_helpers(monkeypatch):
    import importlib

    monkeypatch.setattr(np, "absolute", lambda x: 0 * x)
    monkeypatch.setattr(checks, "assert_close", lambda *a, **k: None)
    fresh = importlib.reload(checks)
    with pytest.raises(fresh.CheckFailure):
        fresh.assert_close("f", np.ones(3), np.zeros(3))


def _student_alias():
    from coursekit.layers import conv2d_forward as f  # an alias made before the check

    def conv2d_forward(x, w, b, *, stride=1, padding=0):
        return f(x, w, b, stride=stride, padding=padding)
    return conv2d_forward


def _student_swallows():
    from coursekit.layers import conv2d_forward as f

    def conv2d_forward(x, w, b, *, stride=1, padding=0):
        try:
            return f(x, w, b, stride=stride, padding=padding)
        except Exception:  # noqa: BLE001 - the point: the error is caught
            return np.zeros(1), None
    return conv2d_forward


def _student_code_copy():
    return types.FunctionType(ref.conv2d_forward.__code__, ref.conv2d_forward.__globals__, "conv2d_forward",
                              ref.conv2d_forward.__defaults__)


def _student_private_helper():
    from coursekit.layers.conv import conv2d_forward_naive

    def conv2d_forward(x, w, b, *, stride=1, padding=0):
        return conv2d_forward_naive(x, w, b, stride=stride, padding=padding)
    return conv2d_forward


@pytest.mark.parametrize("make", [_student_alias, _student_swallows, _student_code_copy, _student_private_helper,
                                  lambda: ref.conv2d_forward])
def test_reference_disabled_catches_every_way_of_calling_the_reference(make):
    student = make()
    x, w, b = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.zeros(1)
    with pytest.raises(checks.ReferenceUsedError, match="coursekit.layers"):
        checks.check_against_reference(student, ref.conv2d_forward, (x, w, b), name="conv2d_forward",
                                       outputs=("out", None))
    # ... and everything is restored afterwards
    out, _ = ref.conv2d_forward(x, w, b)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 9.0))
    from coursekit.layers import conv2d_forward as alias
    assert alias(x, w, b)[0].shape == (1, 1, 2, 2)


def test_reference_disabled_blocks_torch_conv2d():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    original = F.conv2d
    with pytest.raises(checks.ReferenceUsedError, match="torch.nn.functional.conv2d"):
        with checks.reference_disabled():
            F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))
    assert F.conv2d is original


def test_check_against_reference_reports_mutated_input(solution_namespace):
    fwd = solution_namespace["conv2d_forward"]

    def mutating(x, w, b, **kw):
        out = fwd(x, w, b, **kw)
        x[...] = 0
        return out
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2))
    with pytest.raises(checks.CheckFailure, match="modified its argument x in place"):
        checks.check_against_reference(mutating, _ref_forward, args, name="conv2d_forward",
                                       outputs=("out", None), arg_names=("x", "w", "b"))


def test_check_backward_numerically_locates_a_scaled_dw(solution_namespace):
    fwd, bwd = solution_namespace["conv2d_forward"], solution_namespace["conv2d_backward"]

    def bad_backward(dout, cache):
        dx, dw, db = bwd(dout, cache)
        return dx, 2 * dw, db
    rng = np.random.default_rng(1)
    args = (rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3))
    checks.check_backward_numerically(fwd, bwd, args, kwargs={"stride": 2, "padding": 1},
                                      input_names=("dx", "dw", "db"))
    with pytest.raises(checks.CheckFailure,
                       match=r"^conv2d_backward: dw differs from the numerical gradient at index \(\d+, \d+, \d+, \d+\): "
                             r"analytic .*, numerical .*, relative error 3\.3e-01 \(expected < 1e-06"):
        checks.check_backward_numerically(fwd, bad_backward, args, kwargs={"stride": 2, "padding": 1},
                                          input_names=("dx", "dw", "db"), name="conv2d_backward")


def test_fresh_seed_prints_and_replays(monkeypatch, capsys):
    monkeypatch.delenv(checks.SEED_ENV_VAR, raising=False)
    a, b = checks.fresh_seed(), checks.fresh_seed()
    out = capsys.readouterr().out
    assert f"grading seed: {a}\n" in out and f"grading seed: {b}\n" in out
    monkeypatch.setenv(checks.SEED_ENV_VAR, "12345")
    assert checks.fresh_seed() == 12345
    assert "grading seed: 12345 (replayed" in capsys.readouterr().out


def test_checks_does_not_import_torch():
    code = "import sys, coursekit.checks; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ----------------------------------------------------------------- nbgrader (slow)


@pytest.fixture(scope="module")
def released_nb(tmp_path_factory):
    from autograder import release
    path = release(HW.name, tmp_path_factory.mktemp("course"))
    return nbformat.read(path, as_version=4)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    support.assert_validates(HW.source, tmp_path)


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(released_nb):
    cells = support.check_released(HW, released_nb, leaks=(
        "np.tensordot", "x_padded", "_ck.", "fresh_seed", "check_backward(", "_ref"))
    for gid in HW.solution_cells:
        src = cells[gid].source
        assert "def " + gid in src
        ns = {"np": np}
        exec(compile(src, gid, "exec"), ns)  # noqa: S102
        with pytest.raises(NotImplementedError):
            ns[gid](None, None) if gid == "conv2d_backward" else ns[gid](None, None, None)
    # the public tests and the points survive
    assert "[4, 3, 4]" in cells["test_forward_basic"].source
    assert "check_backward_numerically" in cells["test_backward_numerical"].source
    assert {gid: c.metadata["nbgrader"]["points"] for gid, c in cells.items()
            if c.metadata["nbgrader"].get("grade")} == HW.points


@pytest.mark.slow
def test_student_version_fails_nbgrader_validate(released_nb, tmp_path):
    path = tmp_path / f"{HW.name}.ipynb"
    nbformat.write(released_nb, path)
    out = "".join(_nbgrader(["validate", str(path)], tmp_path).stdout)
    assert "NotImplementedError" in out or "VALIDATION FAILED" in out, out[-2000:]
