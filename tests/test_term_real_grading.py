"""The term's commands on real notebooks through nbgrader: a broken test, graded; the test fixed and the
class regraded with the changes reviewed; an override that survives; late work; the Canvas file."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder import overrides as ovr
from autograder import regrade as rg
from autograder.bench import solved as _solved
from autograder.cli import main
from autograder.precheck import precheck
from autograder.reports import feedback

REPO = Path(__file__).resolve().parents[1]
HW = "hw3_conv"
pytestmark = pytest.mark.slow


def _break_test(solutions: Path) -> None:
    """The instructor's mistake: test_forward_basic fails whatever the answer."""
    path = solutions / HW / f"{HW}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_forward_basic")
    cell.source += "\nraise AssertionError('a typo in the expected output')"
    nbformat.write(nb, path)


def test_a_fixed_test_is_regraded_on_real_notebooks(tmp_path, capsys):
    course, solutions = tmp_path / "course", tmp_path / "solutions"
    shutil.copytree(REPO / "solutions" / HW, solutions / HW)
    _break_test(solutions)
    released = nbformat.read(grading.release(HW, course, solutions_dir=solutions), as_version=4)
    source = nbformat.read(REPO / "solutions" / HW / f"{HW}.ipynb", as_version=4)
    stamps = {"s1": "2026-10-05 20:00:00 UTC", "s2": "2026-10-07 04:00:00 UTC", "s3": "2026-10-05 10:00:00 UTC"}
    for s, stamp in stamps.items():  # s2 is 30 h late; s3 hands in the untouched stubs
        folder = course / "collected" / HW / s
        folder.mkdir(parents=True)
        nbformat.write(_solved(released, source) if s != "s3" else released, folder / f"{HW}.ipynb")
        (folder / "timestamp.txt").write_text(stamp)
    (course / "roster.csv").write_text("student_id,name,sis_login_id\ns1,One,l1\ns2,Two,l2\ns3,Three,l3\n")
    (course / "course.yml").write_text(f"assignments:\n  {HW}: {{due: 2026-10-05T22:00+00:00}}\n"
                                       "late: {penalty_percent: 10, per: day}\n")
    first = {r.student_id: r.score for r in grading.grade(HW, course_dir=course, jobs=2, progress=False,
                                                           release_first=False, log=lambda *a: None)}
    assert first == {"s1": 13.0, "s2": 13.0, "s3": 0.0}
    ovr.add_override(course, HW, "s3", 1, "the approach is right", test="test_forward_basic", by="ta")

    shutil.copytree(REPO / "solutions" / HW, solutions / HW, dirs_exist_ok=True)  # the fix
    changes = rg.regrade(HW, course, solutions_dir=solutions, jobs=2, progress=False, log=lambda *a: None)
    # every notebook holds the broken test as handed out: an earlier release's cell, not tampering
    assert [(c.student_id, c.old_score, c.new_score, c.tests, c.new_status) for c in changes] == [
        ("s1", 13.0, 15.0, (("test_forward_basic", 0.0, 2.0),), "ok"),
        ("s2", 13.0, 15.0, (("test_forward_basic", 0.0, 2.0),), "ok")]
    assert {r["student_id"]: r["status"] for r in grading.load_records(course, HW)} == {"s1": "ok", "s2": "ok",
                                                                                      "s3": "ok"}
    assert main(["export", HW, "--format", "canvas", "--to", str(tmp_path / "c.csv"),
                 "--course-dir", str(course)]) == 1  # not before the review
    assert rg.publish(HW, course)
    assert main(["export", HW, "--format", "canvas", "--to", str(tmp_path / "c.csv"),
                 "--course-dir", str(course)]) == 0
    rows = list(csv.reader((tmp_path / "c.csv").open()))
    assert rows[1][5] == "15"
    # s1 on time: 15; s2 30 h late, two started days at 10 % of 15 points: 12; s3: 0 plus the 1-point override
    assert {r[0]: r[5] for r in rows[2:]} == {"One": "15", "Two": "12", "Three": "1"}
    # feedback: hidden tests stay hidden by default, and show when asked for (the command checks the deadline)
    [page] = feedback(HW, course, students=["s3"])
    assert "BEGIN HIDDEN TESTS" not in page.read_text() and "the approach is right" not in page.read_text()
    ovr.annotate_feedback(course, HW, [page])
    assert "test test_forward_basic set to 1 by ta" in page.read_text()
    [page] = feedback(HW, course, students=["s3"], reveal_hidden=True)
    assert "BEGIN HIDDEN TESTS" in page.read_text()


def test_precheck_runs_the_public_tests_of_a_real_homework(tmp_path):
    released_path = grading.release(HW, tmp_path / "course")
    released = nbformat.read(released_path, as_version=4)
    source = nbformat.read(REPO / "solutions" / HW / f"{HW}.ipynb", as_version=4)
    mine = tmp_path / "laptop" / f"{HW} (2).ipynb"
    mine.parent.mkdir()
    nbformat.write(_solved(released, source), mine)
    result = precheck(mine, released_path)
    public = ["test_forward_basic", "test_forward_stride_padding", "test_backward_numerical", "test_maxpool_forward",
              "test_maxpool_backward", "test_maxpool_backward_ties"]
    assert result.ok and result.passed == public, str(result)
    assert result.hidden_only == ["test_backward_dx", "test_backward_dw", "test_backward_db"]
    assert f"renamed {HW} (2).ipynb to {HW}.ipynb" in str(result)
    nbformat.write(released, mine)  # the stubs, handed in untouched
    result = precheck(mine, released_path)
    assert not result.ok and {t for t, _ in result.failed} == set(public)
    assert all("NotImplementedError" in m for _, m in result.failed), str(result)
