"""The autograder end to end on the demo homework: release, grade a class in ONE command-line run,
per-test scores, statuses, feedback, export, and refusing to run without a sandbox."""
from __future__ import annotations

import csv
import html
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import demo_support as demo
from autograder import grading
from autograder.cli import build_parser
from autograder.gradebook import nbgrader_env, read_scores
from autograder.sandbox import bwrap_available
from autograder.cgroups import available as cgroup_problem

REPO = Path(__file__).resolve().parents[1]
HW = demo.HW
ZERO = dict.fromkeys(demo.TESTS, 0.0)


def _cli(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


# ------------------------------------------------------------------- fast tests


def test_preflight_reasons(tmp_path):
    assert grading.preflight(HW, tmp_path) == f"missing {HW}.ipynb"
    (tmp_path / f"{HW}.ipynb").write_text("{")
    assert grading.preflight(HW, tmp_path).startswith(f"unreadable {HW}.ipynb: NotJSONError")
    (tmp_path / f"{HW}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert grading.preflight(HW, tmp_path) is None


def test_write_csv_and_student_dirs(tmp_path):
    for s in ("bob", "alice", ".hidden"):
        (tmp_path / "subs" / s).mkdir(parents=True)
    (tmp_path / "subs" / "linked").symlink_to(tmp_path / "subs" / "bob")
    assert [s for s, _ in grading.student_dirs(tmp_path / "subs")] == ["alice", "bob"]
    out = grading.write_csv([grading.GradeResult("alice", 9.5, 10.0), grading.GradeResult("bob", 0.0, 10.0, "x")],
                            tmp_path / "g.csv")
    assert out.read_text().splitlines() == ["student_id,score,max_score", "alice,9.5,10", "bob,0,10"]
    with pytest.raises(grading.GradingError, match="does not exist"):
        grading.student_dirs(tmp_path / "nowhere")


def test_nbgrader_env_puts_the_interpreter_first():
    env = nbgrader_env({"PATH": "/usr/bin"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_cli_arguments():
    args = build_parser().parse_args(["grade", HW, "--sandbox", "none", "--cell-timeout", "7"])
    assert (args.sandbox, args.cell_timeout) == ("none", 7.0)
    assert build_parser().parse_args(["grade", HW]).sandbox == "bwrap"
    assert build_parser().parse_args(["release", HW]).course_dir == grading.DEFAULT_COURSE_DIR


def test_course_dir_is_git_ignored():
    assert "/autograder/_course/" in (REPO / ".gitignore").read_text()


def test_without_a_sandbox_grading_refuses_in_one_line(tmp_path):
    (tmp_path / "subs" / "a").mkdir(parents=True)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no bwrap on PATH
    proc = _cli("grade", HW, "--submissions", tmp_path / "subs", "--course-dir", tmp_path / "c",
                "--solutions", demo.SOLUTIONS, env=env, check=False)
    assert proc.returncode == 1
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(error) == 1 and "bubblewrap" in error[0] and "--sandbox none" in error[0]
    assert not (tmp_path / "c" / "results").exists()


# ------------------------------------------------------------------ slow: grading

WRONG_SCALE = "def scale(x, a):\n    return a + x"
CHEATING_SGD = ("def sgd_step(w, dw, lr):\n    import numpy as np\n    np.allclose = lambda *a, **k: True\n"
                "    np.testing.assert_allclose = lambda *a, **k: None\n    return w")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    if not bwrap_available() or cgroup_problem():
        pytest.skip("needs bubblewrap and a cgroup (apt-get install bubblewrap; run as root)")
    root = tmp_path_factory.mktemp("grading")
    course, subs = root / "course", root / "submissions"
    released = demo.release(course)
    good = demo.solved(released)
    demo.write(subs / "a_solution", good)
    demo.write(subs / "b_unchanged", released)
    demo.write(subs / "c_wrong_scale", demo.replace(good, "scale", WRONG_SCALE))
    demo.write(subs / "d_cheating_sgd", demo.replace(good, "sgd_step", CHEATING_SGD))
    (subs / "e_missing").mkdir()
    (subs / "e_missing" / "homework.ipynb").write_text("{}")
    (subs / "f_unreadable").mkdir()
    (subs / "f_unreadable" / f"{HW}.ipynb").write_text('{"cells": [')
    out_csv = root / "grades.csv"
    proc = _cli("grade", HW, "--submissions", subs, "--out", out_csv, "--course-dir", course, "--solutions",
                demo.SOLUTIONS, "--jobs", "2", "--no-progress")
    rows = {r["student_id"]: r for r in csv.DictReader(out_csv.open())}
    return {"course": course, "rows": rows, "stdout": proc.stdout, "csv": out_csv, "root": root}


def _tests(graded, student):
    tests = read_scores(HW, student, graded["course"])[2]
    assert {gid: mx for gid, (_, mx) in tests.items()} == demo.FULL
    return {gid: score for gid, (score, _) in tests.items()}


def _record(graded, student):
    return json.loads((graded["course"] / "results" / HW / f"{student}.json").read_text())


@pytest.mark.slow
def test_csv_has_one_row_per_student_folder(graded):
    assert graded["csv"].read_text().splitlines()[0] == "student_id,score,max_score"
    assert sorted(graded["rows"]) == ["a_solution", "b_unchanged", "c_wrong_scale", "d_cheating_sgd", "e_missing",
                                      "f_unreadable"]
    assert all(r["max_score"] == "4" for r in graded["rows"].values())


@pytest.mark.slow
def test_solution_full_stub_zero_wrong_function_loses_its_test(graded):
    assert _tests(graded, "a_solution") == demo.FULL
    assert _tests(graded, "b_unchanged") == ZERO
    assert _tests(graded, "c_wrong_scale") == {**demo.FULL, "test_scale": 0.0}
    assert _tests(graded, "d_cheating_sgd") == {**demo.FULL, "test_sgd_step": 0.0}
    assert _record(graded, "d_cheating_sgd")["status"] == "tampered"  # flagged for a person, scored as trusted


@pytest.mark.slow
def test_messages_say_what_went_wrong_in_the_students_terms(graded):
    rec = _record(graded, "c_wrong_scale")
    assert "scale(arange(3), 2) gave [2. 3. 4.]" in rec["messages"]["test_scale"]
    assert rec["public"]["test_scale"] is False and rec["public"]["test_counter"] is True
    stub = _record(graded, "b_unchanged")["messages"]["test_scale"]
    assert "scale raised NotImplementedError" in stub and "Where, in your code" in stub
    assert _record(graded, "a_solution")["isolation"] == "bwrap+cgroup"


@pytest.mark.slow
def test_bad_submissions_get_zero_with_a_reason(graded):
    for student, reason in (("e_missing", f"missing {HW}.ipynb"), ("f_unreadable", f"unreadable {HW}.ipynb")):
        assert graded["rows"][student]["score"] == "0"
        line = next(ln for ln in graded["stdout"].splitlines() if ln.startswith(student + ":"))
        assert reason in line, line


@pytest.mark.slow
def test_feedback_shows_messages_and_hides_hidden_tests(graded):
    _cli("feedback", HW, "--course-dir", graded["course"])
    page = (graded["course"] / "feedback" / "c_wrong_scale" / HW / f"{HW}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "AssertionError: scale(arange(3), 2) gave [2. 3. 4.]" in text and 'print("scale: correct")' in text
    assert "BEGIN HIDDEN TESTS" not in text and "default_rng" not in text
    assert not (graded["course"] / "feedback" / "e_missing").exists()


@pytest.mark.slow
def test_sandbox_none_is_explicit_and_said_in_the_export_and_report(graded):
    course = graded["course"]
    _cli("grade", HW, "--submissions", graded["root"] / "submissions", "--course-dir", course, "--solutions",
         demo.SOLUTIONS, "--student", "a_solution", "--sandbox", "none", "--no-progress")
    assert _record(graded, "a_solution")["isolation"] == "NO SANDBOX" and _record(graded, "a_solution")["score"] == 4
    _cli("export", HW, "--course-dir", course, "--to", graded["root"] / "export.csv")
    rows = list(csv.DictReader((graded["root"] / "export.csv").open()))
    assert next(r for r in rows if r["student_id"] == "a_solution")["isolation"] == "NO SANDBOX"
    _cli("report", HW, "--course-dir", course)
    assert "with no sandbox" in (course / "reports" / HW / "report.html").read_text()
