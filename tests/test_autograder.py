"""The autograder: release, grade one folder of submissions, per-test scores.

The slow tests grade every submission below in ONE run of the command line
(``python -m autograder grade``) in a temporary course directory, then read the
CSV and the per-test scores from the gradebook.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder.cli import build_parser
from homework_support import GAMING, PATCH_CHECKS

REPO = Path(__file__).resolve().parents[1]
HW = "hw3_conv"
SOURCE_NB = REPO / "solutions" / HW / f"{HW}.ipynb"

FULL = {
    "test_forward_basic": 2.0,
    "test_forward_stride_padding": 2.0,
    "test_backward_numerical": 1.0,
    "test_backward_dx": 2.0,
    "test_backward_dw": 2.0,
    "test_backward_db": 1.0,
}
ZERO = dict.fromkeys(FULL, 0.0)
WRONG_DW = {**FULL, "test_backward_numerical": 0.0, "test_backward_dw": 0.0}
WRONG_DX = {**FULL, "test_backward_numerical": 0.0, "test_backward_dx": 0.0}



# ------------------------------------------------------------------- fast tests


def test_preflight_reasons(tmp_path):
    assert grading.preflight(HW, tmp_path) == f"missing {HW}.ipynb"
    (tmp_path / f"{HW}.ipynb").write_text("{not json")
    assert grading.preflight(HW, tmp_path).startswith(f"unreadable {HW}.ipynb: NotJSONError")
    (tmp_path / f"{HW}.ipynb").write_bytes(SOURCE_NB.read_bytes())
    assert grading.preflight(HW, tmp_path) is None


def test_write_csv_and_student_dirs(tmp_path):
    for name in ("bob", "alice", ".hidden"):
        (tmp_path / "subs" / name).mkdir(parents=True)
    (tmp_path / "subs" / "notes.txt").write_text("not a student")
    assert [s for s, _ in grading.student_dirs(tmp_path / "subs")] == ["alice", "bob"]
    out = grading.write_csv([grading.GradeResult("alice", 9.5, 10.0), grading.GradeResult("bob", 0.0, 10.0, "x")],
                            tmp_path / "g.csv")
    rows = list(csv.reader(out.open()))
    assert rows == [["student_id", "score", "max_score"], ["alice", "9.5", "10"], ["bob", "0", "10"]]
    with pytest.raises(grading.GradingError, match="does not exist"):
        grading.student_dirs(tmp_path / "nowhere")


def test_nbgrader_env_puts_the_interpreter_first():
    env = grading.nbgrader_env({"PATH": "/usr/bin"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_cli_arguments():
    args = build_parser().parse_args(["grade", HW, "--submissions", "subs", "--out", "g.csv", "--course-dir", "c"])
    assert (args.command, args.hw, args.submissions, args.out, args.course_dir) == \
        ("grade", HW, Path("subs"), Path("g.csv"), Path("c"))
    assert build_parser().parse_args(["release", HW]).course_dir == grading.DEFAULT_COURSE_DIR


def test_course_dir_is_git_ignored():
    ignore = (REPO / ".gitignore").read_text()
    assert "/autograder/_course/" in ignore


# ------------------------------------------------------------------ slow: grading


def _edit(nb, grade_id, transform):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            new = transform(cell.source)
            assert new != cell.source, f"edit of {grade_id} changed nothing"
            cell.source = new
            return nb
    raise KeyError(grade_id)


def _variant(*edits):
    nb = nbformat.read(SOURCE_NB, as_version=4)
    for grade_id, transform in edits:
        _edit(nb, grade_id, transform)
    return nb


def _wrong_dw(src):
    return src.replace("    return dx, dw, db", "    return dx, 2 * dw, db")


def _uncropped_dx(src):
    return src.replace("    dx = dx_padded[:, :, P:HP - P, P:WP - P]", "    dx = dx_padded")


SUBMISSIONS = {
    "a_solution": lambda: _variant(),
    "c_wrong_dw": lambda: _variant(("conv2d_backward", _wrong_dw)),
    "d_uncropped_dx": lambda: _variant(("conv2d_backward", _uncropped_dx)),
    "e_imports_reference": lambda: _variant(
        ("conv2d_forward", lambda s: "from coursekit.layers import conv2d_forward\n"),
        ("conv2d_backward", lambda s: "from coursekit.layers import conv2d_backward\n")),
    "f_allclose_patch": lambda: _variant(("conv2d_backward", lambda s: _wrong_dw(s) + "\n" + GAMING)),
    "g_patches_checks": lambda: _variant(("conv2d_backward", lambda s: _wrong_dw(s) + "\n" + PATCH_CHECKS)),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    root = tmp_path_factory.mktemp("grading")
    course = root / "course"
    subs = root / "submissions"
    released = grading.release(HW, course)
    (subs / "b_unchanged").mkdir(parents=True)
    (subs / "b_unchanged" / f"{HW}.ipynb").write_bytes(released.read_bytes())
    for student, make in SUBMISSIONS.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(make(), subs / student / f"{HW}.ipynb")
    (subs / "h_missing").mkdir()
    (subs / "h_missing" / "homework.ipynb").write_text("{}")  # wrong name
    (subs / "i_unreadable").mkdir()
    (subs / "i_unreadable" / f"{HW}.ipynb").write_text('{"cells": [')
    out_csv = root / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", HW, "--submissions", str(subs), "--out", str(out_csv),
         "--course-dir", str(course)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader(out_csv.open()))
    return {"course": course, "rows": rows, "stdout": proc.stdout, "csv": out_csv}


def _tests(graded, student):
    """Per-test scores from the gradebook (their max scores must be the notebook's points)."""
    tests = grading.read_scores(HW, student, graded["course"])[2]
    assert {gid: mx for gid, (_, mx) in tests.items()} == FULL
    return {gid: score for gid, (score, _) in tests.items()}


def _row(graded, student):
    return next(r for r in graded["rows"] if r["student_id"] == student)


@pytest.mark.slow
def test_csv_has_one_row_per_student_folder(graded):
    header = graded["csv"].read_text().splitlines()[0]
    assert header == "student_id,score,max_score"
    assert [r["student_id"] for r in graded["rows"]] == sorted(
        ["b_unchanged", *SUBMISSIONS, "h_missing", "i_unreadable"])
    assert all(r["max_score"] == "10" for r in graded["rows"])


@pytest.mark.slow
def test_solution_gets_full_marks(graded):
    assert _row(graded, "a_solution")["score"] == "10"
    assert _tests(graded, "a_solution") == FULL


@pytest.mark.slow
def test_unchanged_student_version_gets_zero(graded):
    assert _row(graded, "b_unchanged")["score"] == "0"
    assert _tests(graded, "b_unchanged") == ZERO


@pytest.mark.slow
@pytest.mark.parametrize("student, expected", [("c_wrong_dw", WRONG_DW), ("d_uncropped_dx", WRONG_DX)])
def test_a_wrong_gradient_loses_exactly_its_tests(graded, student, expected):
    assert _tests(graded, student) == expected
    assert float(_row(graded, student)["score"]) == sum(expected.values()) == 7


@pytest.mark.slow
def test_importing_the_reference_scores_zero(graded):
    assert _tests(graded, "e_imports_reference") == ZERO


@pytest.mark.slow
@pytest.mark.parametrize("student", ["f_allclose_patch", "g_patches_checks"])
def test_patching_numpy_or_checks_gains_nothing(graded, student):
    assert _tests(graded, student) == WRONG_DW


@pytest.mark.slow
def test_bad_submissions_get_zero_with_a_reason(graded):
    for student, reason in (("h_missing", f"missing {HW}.ipynb"), ("i_unreadable", f"unreadable {HW}.ipynb")):
        assert _row(graded, student)["score"] == "0"
        line = next(ln for ln in graded["stdout"].splitlines() if ln.startswith(student + ":"))
        assert reason in line, line


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    nb = nbformat.read(graded["course"] / "autograded" / "a_solution" / HW / f"{HW}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid in ("test_forward_stride_padding", "test_backward_dx", "test_backward_dw", "test_backward_db"):
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert text.startswith("grading seed: "), (gid, text)


@pytest.mark.slow
def test_feedback_hides_the_hidden_tests(graded):
    proc = grading.run_nbgrader(["generate_feedback", HW, "--student=c_wrong_dw", "--force"], graded["course"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (graded["course"] / "feedback" / "c_wrong_dw" / HW / f"{HW}.html").read_text()
    assert "check_backward_numerically" in html  # public tests stay
    for leak in ("BEGIN HIDDEN TESTS", "_ck", "conv2d_cases", "fresh_seed", "_ref_forward"):
        assert leak not in html, leak  # neither in the source nor in a traceback
    # the failure message itself (what, where, by how much) is still shown
    assert "dw differs from the reference at index" in html
