"""A whole term in miniature: three assignments, 30 students on time, late, extended, missing and copied,
a test fixed and regraded mid-term with the changes reviewed before publishing, two overrides that survive
the regrade, and final Canvas and Moodle files checked against numbers this test works out by itself.

The scores are result records as the grader writes them (grading 90 notebooks takes minutes here); the
regrade's grader is replaced by one that writes the fixed test's records. ``test_term_real_grading.py``
runs the same commands on real notebooks through nbgrader.
"""
from __future__ import annotations

import csv
import json
import math
import random
from datetime import datetime, timedelta, timezone

import nbformat
import pytest

from autograder import grading
from autograder import regrade as rg
from autograder.cli import main
from term_support import collected, released_notebook, student_notebook, write_record
from test_term_similarity import STUBS, TESTS, disguise, honest_function

UTC = timezone.utc
DUE = {"hw1": datetime(2026, 10, 5, 22, 0, tzinfo=UTC), "hw2": datetime(2026, 10, 19, 22, 0, tzinfo=UTC),
       "hw3": datetime(2026, 11, 2, 23, 0, tzinfo=UTC)}
TESTS_OF = {"hw1": {"a": 2, "b": 3, "c": 5}, "hw2": {"d": 4, "e": 6}, "hw3": {"f": 5, "g": 5}}
COURSE_YML = """\
timezone: Europe/Berlin
late: {grace_minutes: 10, penalty_percent: 10, per: day, cap_percent: 50, cutoff_hours: 96}
assignments:
  hw1: {due: 2026-10-06 00:00, canvas_id: 9001}        # 22:00 UTC (CEST)
  hw2: {due: 2026-10-20 00:00, canvas_id: 9002, late: {penalty_percent: 2, per: hour}}
  hw3: {due: 2026-11-03 00:00, canvas_id: 9003}        # 23:00 UTC (CET)
"""
# Percent deducted, worked out by hand from the policy for each lateness used below (hours after the due date).
# 2 and 52 h are s05's 50 and 100 h less the 48-hour extension.
PERCENT = {"hw1": {2: 10, 5: 10, 30: 20, 50: 30, 52: 30},   # per started day: 1, 1, 2, 3, 3 days
           "hw2": {2: 4, 5: 10, 30: 50, 50: 50, 52: 50},    # 2 % per started hour, capped at 50 %
           "hw3": {2: 10, 5: 10, 30: 20, 50: 30, 52: 30}}
CUTOFF = 100  # hours late: past the 96-hour cut-off, final 0
EXT_TERM = {"s05": 48}                                        # +48 h for every assignment
EXT_HW2 = {"s06": DUE["hw2"] + timedelta(days=5)}             # a new due date for hw2 only
STUDENTS = [f"s{k:02d}" for k in range(1, 31)]


def _plan(rng: random.Random) -> dict:
    """``{(hw, student): hours late against the original due date, or None for nothing handed in}``."""
    plan = {}
    for hw in DUE:
        for s in STUDENTS:
            plan[hw, s] = rng.choice([-2, -2, -2, -1, 0.1, 5, 30, 50, CUTOFF, None])
    plan["hw1", "s05"], plan["hw2", "s05"] = 30, 50    # late, but inside the +48 h extension only for hw1
    plan["hw2", "s06"] = CUTOFF                        # past the cut-off without the extension, on time with it
    plan["hw3", "s28"], plan["hw3", "s29"] = -3, -1    # s29 copies s28
    plan["hw2", "s10"], plan["hw1", "s11"] = -2, -2    # the two overridden students handed in on time
    plan["hw2", "s12"] = 5                             # late, and hit by the broken test
    return plan


def _points(rng: random.Random, hw: str, e_bug: set, student: str) -> dict:
    pts = {t: (m, m) if rng.random() < 0.6 else (rng.randint(0, m - 1), m) for t, m in TESTS_OF[hw].items()}
    if hw == "hw2" and student in e_bug:
        pts["e"] = (0, 6)  # the broken test gave 0 to a correct answer
    return pts


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    rng = random.Random(2026)
    course = tmp_path_factory.mktemp("term") / "course"
    course.mkdir()
    (course / "course.yml").write_text(COURSE_YML)
    roster = ["student_id,name,canvas_id,sis_user_id,sis_login_id,section,email"]
    for k, s in enumerate(STUDENTS, start=1):
        name = "Sam Renamed" if s == "s07" else f"Student {s}"  # s07 changed name and login in the LMS
        login = "sam.renamed" if s == "s07" else f"login{k}"
        roster.append(f"{s},{name},{7000 + k},SIS{k:03d},{login},A,{s}@uni.example")
    (course / "roster.csv").write_text("\n".join(roster) + "\n")
    (course / "extensions.csv").write_text("student_id,assignment,due,hours,reason\n"
                                           "s05,*,,48,accommodation\n"
                                           "s06,hw2,2026-10-25 00:00,,illness\n")
    plan = _plan(rng)
    e_bug = {s for s in STUDENTS if plan["hw2", s] is not None and rng.random() < 0.4} | {"s12", "s10"}
    points = {}
    for (hw, s), late in plan.items():
        if late is None:
            continue
        points[hw, s] = _points(rng, hw, e_bug, s)
        write_record(course, hw, s, points[hw, s])
        when = DUE[hw] + timedelta(hours=late)
        collected(course, hw, s, when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    write_record(course, "hw1", "x99", {"a": (2, 2), "b": (3, 3), "c": (5, 5)})  # not on the roster
    collected(course, "hw1", "x99", "2026-10-01 10:00:00 UTC")
    _hw3_notebooks(course, plan, rng)
    return {"course": course, "plan": plan, "points": points, "e_bug": e_bug}


def _hw3_notebooks(course, plan, rng):
    released = released_notebook(STUBS, TESTS)
    (course / "release" / "hw3").mkdir(parents=True)
    nbformat.write(released, course / "release" / "hw3" / "hw3.ipynb")
    code = {s: {g: honest_function(g, rng) for g in STUBS} for s in STUDENTS}
    code["s29"] = {g: disguise(src, rng) for g, src in code["s28"].items()}
    for s in STUDENTS:
        if plan["hw3", s] is not None:
            nbformat.write(student_notebook(released, code[s]), course / "collected" / "hw3" / s / "hw3.ipynb")


def _fake_regrade(term, monkeypatch):
    """The fixed test e: everyone the broken test gave 0 gets the points their answer earns (6)."""
    def release(hw, course_dir, **kwargs):
        return course_dir / "release" / hw / f"{hw}.ipynb"

    def grade(hw, course_dir=None, **kwargs):
        for (h, s), pts in term["points"].items():
            if h == hw and s in term["e_bug"]:
                write_record(course_dir, hw, s, {**pts, "e": (6, 6)})
        return []

    monkeypatch.setattr(grading, "release", release)
    monkeypatch.setattr(grading, "grade", grade)


def expected_final(term, hw: str, s: str) -> float:
    """This test's own arithmetic: points, the regrade fix, overrides, extensions, the late policy."""
    late = term["plan"][hw, s]
    if late is None:
        return 0.0
    if (hw, s) == ("hw1", "s11"):
        return 8.5                                   # the final-score override
    pts = {t: p for t, (p, _) in term["points"][hw, s].items()}
    if hw == "hw2" and s in term["e_bug"]:
        pts["e"] = 6
    if (hw, s) == ("hw2", "s10"):
        pts["e"] = 3                                 # the test override
    raw = sum(pts.values())
    late -= EXT_TERM.get(s, 0)
    if hw == "hw2" and s in EXT_HW2:
        late -= (EXT_HW2[s] - DUE["hw2"]).total_seconds() / 3600
    if late <= 10 / 60:
        return float(raw)
    if late > 96:
        return 0.0
    percent = PERCENT[hw].get(late)
    if percent is None:  # the 0.1 h case is inside the grace; any other value is a planning mistake
        raise AssertionError(f"no hand-worked penalty for {late} h")
    return max(0.0, raw - sum(TESTS_OF[hw].values()) * percent / 100)


def test_a_whole_term(term, monkeypatch, capsys, tmp_path):
    course = str(term["course"])
    # two overrides, before the regrade
    assert main(["override", "hw2", "s10", "--test", "e", "--points", "3", "--reason", "partial credit",
                 "--by", "ta", "--course-dir", course]) == 0
    assert main(["override", "hw1", "s11", "--points", "8.5", "--reason", "oral exam", "--by", "prof",
                 "--course-dir", course]) == 0
    assert main(["override", "hw1", "s11", "--test", "zz", "--points", "1", "--reason", "x",
                 "--course-dir", course]) == 1
    # week 6: test e of hw2 was wrong; it is fixed and everyone regraded
    _fake_regrade(term, monkeypatch)
    assert main(["regrade", "hw2", "--course-dir", course]) == 0
    out = capsys.readouterr()
    with (rg.pending(term["course"], "hw2") / "changes.csv").open() as fh:
        changes = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert set(changes) == {s for s in term["e_bug"] if term["points"]["hw2", s]["e"][0] == 0}
    for s, row in changes.items():
        old = sum(p for p, _ in term["points"]["hw2", s].values())
        assert (float(row["old_score"]), float(row["new_score"])) == (old, old + 6)
        assert row["tests_changed"] == "e: 0 -> 6"
    assert "test e set to 3 by ta" in changes["s10"]["overrides_in_force"]  # shown, and kept in force
    assert "nothing is exported until" in out.out
    # nobody sees new grades before the review ends
    assert main(["export", "--format", "canvas", "--to", str(tmp_path / "c.csv"), "--course-dir", course]) == 1
    assert "the regrade of hw2 waits for review" in capsys.readouterr().err
    assert main(["regrade", "hw2", "--publish", "--course-dir", course]) == 0
    # the LMS files
    assert main(["export", "--format", "canvas", "--to", str(tmp_path / "c.csv"), "--course-dir", course]) == 0
    assert "x99 has a result but is not on the roster" in capsys.readouterr().err
    assert main(["export", "--format", "moodle", "--to", str(tmp_path / "m.csv"), "--course-dir", course]) == 0
    _check_canvas(term, tmp_path / "c.csv")
    _check_moodle(term, tmp_path / "m.csv")
    # the copy is the most similar pair of hw3
    capsys.readouterr()
    assert main(["similarity", "hw3", "--course-dir", course]) == 0
    first = capsys.readouterr().out.splitlines()[0].split()
    assert sorted(first[1:]) == ["s28", "s29"]


def _check_canvas(term, path):
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "hw1 (9001)", "hw2 (9002)",
                       "hw3 (9003)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10", "10", "10"]
    body = {r[2]: r for r in rows[2:]}
    assert len(body) == 30 and "x99" not in json.dumps(rows)
    assert body["SIS007"][:5] == ["Sam Renamed", "7007", "SIS007", "sam.renamed", "A"]
    wrong = []
    for k, s in enumerate(STUDENTS, start=1):
        for j, hw in enumerate(DUE):
            want = expected_final(term, hw, s)
            got = float(body[f"SIS{k:03d}"][5 + j])
            if not math.isclose(got, want, abs_tol=1e-9):
                wrong.append(f"{s} {hw}: expected {want}, got {got} (late {term['plan'][hw, s]} h)")
    assert not wrong, "\n".join(wrong)


def _check_moodle(term, path):
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["Email address", "hw1", "hw2", "hw3"]
    got = {r[0]: [float(x) for x in r[1:]] for r in rows[1:]}
    want = {f"{s}@uni.example": [expected_final(term, hw, s) for hw in DUE] for s in STUDENTS}
    assert got == want
    # the plan covers every case the term must show
    lates = [v for v in term["plan"].values()]
    assert None in lates and CUTOFF in lates and -2 in lates and 30 in lates
