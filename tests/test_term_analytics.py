"""Item analysis: difficulty, discrimination against the point-biserial formula, grouped failure messages,
and the HTML page (fast: records and autograded notebooks written directly)."""
from __future__ import annotations

import numpy as np
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.analytics import analytics, item_total, item_stats
from autograder.cli import main
from autograder.grading import load_records
from term_support import collected, write_record


def test_discrimination_of_a_pass_fail_test_is_the_point_biserial_correlation():
    rng = np.random.default_rng(0)
    scores = np.column_stack([rng.integers(0, 2, 40), rng.integers(0, 3, 40), rng.integers(0, 5, 40)]).astype(float)
    rest = scores.sum(axis=1) - scores[:, 0]
    passed = scores[:, 0] == 1
    p = passed.mean()
    # r_pb = (M1 - M0) / s * sqrt(p q), s the population standard deviation of the rest
    r_pb = (rest[passed].mean() - rest[~passed].mean()) / rest.std() * np.sqrt(p * (1 - p))
    assert item_total(scores)[0] == pytest.approx(r_pb, abs=1e-12)
    assert item_total(np.column_stack([np.ones(5), np.arange(5.0)]))[0] is None  # everyone passed: no spread


def _autograded(course, hw, student, errors: dict):
    cells = []
    for gid, (ename, evalue) in errors.items():
        cell = new_code_cell("check()", metadata={"nbgrader": {"grade_id": gid, "grade": True}})
        cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=[])]
        cells.append(cell)
    path = course / "autograded" / student / hw / f"{hw}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(new_notebook(cells=cells), path)


@pytest.fixture
def course(tmp_path):
    course = tmp_path / "course"
    # 10 students; "easy" passed by 9, "hard" by 3 (the 3 strongest on "mid"): hard discriminates
    for k in range(10):
        s = f"s{k}"
        mid = k // 2
        hard = 2.0 if k >= 7 else 0.0
        easy = 1.0 if k != 0 else 0.0
        write_record(tmp_path / "course", "hw1", s, {"easy": (easy, 1), "mid": (mid, 4), "hard": (hard, 2)},
                     seconds=2.0 + k)
        collected(course, "hw1", s, "2030-01-01 00:00 UTC")
        if hard == 0:
            _autograded(course, "hw1", s, {"hard": ("ValueError", f"shape ({k}, 3) does not match (3, {k})")})
    return course


def test_difficulty_discrimination_and_failures_per_test(course):
    stats = {s.name: s for s in item_stats(course, "hw1", load_records(course, "hw1"))}
    assert stats["easy"].difficulty == pytest.approx(0.9) and stats["hard"].difficulty == pytest.approx(0.3)
    assert stats["mid"].difficulty == pytest.approx(0.2)  # k // 2 == 4 of 4 only for k = 8, 9
    assert stats["hard"].discrimination > 0.7
    assert stats["hard"].failures == (("ValueError: shape (#, #) does not match (#, #)", 7),)
    assert stats["easy"].failures[0][1] == 1 and "no error shown" in stats["easy"].failures[0][0]


def test_the_report_command_writes_the_analytics_page(course, capsys):
    (course / "course.yml").write_text("assignments:\n  hw1: {due: 2029-12-31 23:00}\n"
                                       "late: {penalty_percent: 10, per: day}\n")  # everyone 1 h late
    assert main(["report", "hw1", "--course-dir", str(course)]) == 0
    page = (course / "reports" / "hw1" / "analytics.html").read_text()
    assert "data:image/png;base64," in page and "discrimination" in page
    assert "9 lost points for lateness" in page  # s0 scored 0: nothing to lose and "7× ValueError: shape (#, #)" in page
    assert page == analytics("hw1", course).read_text()
