"""Deadlines, late penalties, extensions, submission times, overrides and final scores (fast: no notebook runs).

Expected numbers are worked out by hand in the comments, from the policy's definition.
"""
from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from autograder import grading
from autograder import overrides as ovr
from autograder.cli import main
from autograder.finals import final_rows
from autograder.term import (LatePolicy, TermError, check_reveal, due_for, parse_time, read_course_file,
                             submission_time)
from term_support import collected, write_record

UTC = timezone.utc
COURSE_YML = """\
timezone: Europe/Berlin
late: {grace_minutes: 15, penalty_percent: 10, per: day, cap_percent: 30, cutoff_hours: 120}
assignments:
  hw1:
    due: 2026-10-05 23:59
  hw2:
    due: 2026-10-19T23:59+00:00
    late: {penalty_percent: 5, per: hour}
"""


def test_times_parse_from_every_source_and_a_bad_one_names_itself():
    berlin = parse_time("2026-10-05 23:59", timezone(timedelta(hours=2)))
    assert berlin == datetime(2026, 10, 5, 21, 59, tzinfo=UTC)
    assert parse_time("2026-10-05 21:59:30.123456 UTC") == datetime(2026, 10, 5, 21, 59, 30, 123456, tzinfo=UTC)
    assert parse_time("2026-10-05-21-59-30") == datetime(2026, 10, 5, 21, 59, 30, tzinfo=UTC)  # Blackboard
    assert parse_time("2026-10-05T23:59+02:00") == datetime(2026, 10, 5, 21, 59, tzinfo=UTC)
    with pytest.raises(TermError) as err:
        parse_time("next friday", what="due date of hw1")
    assert "unparsable due date of hw1 'next friday'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("late_minutes, percent, cut", [
    (-60, 0, False), (15, 0, False),        # early, and inside the 15-minute grace
    (16, 10, False),                         # one started day
    (24 * 60 + 1, 20, False),                # two started days
    (4 * 24 * 60, 30, False),                # four days: 40 %, capped at 30 %
    (120 * 60 + 1, 100, True),               # past the 120-hour cut-off
])
def test_the_late_policy_counts_started_units_after_the_grace(late_minutes, percent, cut):
    policy = LatePolicy(grace_minutes=15, penalty_percent=10, per="day", cap_percent=30, cutoff_hours=120)
    assert policy.penalty(timedelta(minutes=late_minutes)) == (percent, cut)


def _course(tmp_path, extensions=None, roster=("ada", "bob", "cy")):
    course = tmp_path / "course"
    course.mkdir()
    (course / "course.yml").write_text(COURSE_YML)
    (course / "roster.csv").write_text("student_id\n" + "".join(f"{s}\n" for s in roster))
    if extensions is not None:
        (course / "extensions.csv").write_text(extensions)
    return course


def test_extensions_apply_per_assignment_before_the_whole_term(tmp_path):
    course = _course(tmp_path, "student_id,assignment,due,hours,reason\n"
                               "ada,*,,48,accommodation\nada,hw2,2026-11-01 12:00,,illness\n")
    c = read_course_file(course)
    assert c.assignments["hw1"].due == datetime(2026, 10, 5, 21, 59, tzinfo=UTC)  # CEST is UTC+2
    due, ext = due_for(c, "hw1", "ada")
    assert due == datetime(2026, 10, 7, 21, 59, tzinfo=UTC) and ext.reason == "accommodation"
    due, ext = due_for(c, "hw2", "ada")
    assert due == datetime(2026, 11, 1, 11, 0, tzinfo=UTC) and ext.reason == "illness"  # CET is UTC+1
    assert due_for(c, "hw1", "bob") == (c.assignments["hw1"].due, None)


@pytest.mark.parametrize("rows, message", [
    ("zed,hw1,,24,x\n", "extension for unknown student 'zed'"),
    ("ada,hw9,,24,x\n", "extension for unknown assignment 'hw9'"),
    ("ada,hw1,2026-10-09 10:00,24,x\n", "not both"),
    ("ada,hw1,someday,,x\n", "unparsable extension date for ada 'someday'"),
])
def test_bad_extensions_are_one_line_errors(tmp_path, rows, message):
    course = _course(tmp_path, "student_id,assignment,due,hours,reason\n" + rows)
    with pytest.raises(TermError) as err:
        read_course_file(course)
    assert message in str(err.value) and "extensions.csv line 2" in str(err.value) and "\n" not in str(err.value)


def test_a_bad_course_file_is_a_one_line_error(tmp_path):
    course = _course(tmp_path)
    (course / "course.yml").write_text("assignments:\n  hw1: {due: 2026-10-05 23:59, late: {penality: 3}}\n")
    with pytest.raises(TermError, match="unknown late-policy key 'penality'"):
        read_course_file(course)
    (course / "course.yml").write_text("assignments:\n  hw1: {due: 5th of May}\n")
    assert main(["export", "--course-dir", str(course), "--to", str(tmp_path / "g.csv")]) == 1


def test_the_submission_time_comes_from_the_submission_or_is_reported(tmp_path):
    course = _course(tmp_path)
    collected(course, "hw1", "ada", "2026-10-05 20:00:00.000000 UTC")
    (course / "collected" / "hw1" / "bob" / "hw1").mkdir(parents=True)
    (course / "collected" / "hw1" / "bob" / "hw1" / "timestamp.txt").write_text("2026-10-06 08:00:00 UTC")
    collected(course, "hw1", "cy", None)
    assert submission_time(course, "hw1", "ada") == (datetime(2026, 10, 5, 20, 0, tzinfo=UTC), "")
    assert submission_time(course, "hw1", "bob")[0] == datetime(2026, 10, 6, 8, 0, tzinfo=UTC)
    assert submission_time(course, "hw1", "cy") == (None, "no submission time (timestamp.txt missing)")


def test_collect_keeps_the_latest_time_from_lms_file_names(tmp_path):
    zpath = tmp_path / "dl.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("hw1_ada_attempt_2026-10-05-21-00-00_hw1.ipynb", "{}")
        zf.writestr("hw1_ada_attempt_2026-10-06-09-30-00_notes.txt", "x")
        zf.writestr("hw1_bob_attempt_2026-10-04-10-00-00_hw1.ipynb", "{}")
    course = tmp_path / "course"
    assert grading.collect("hw1", zpath, course) == 2
    assert (course / "collected/hw1/ada/timestamp.txt").read_text().strip() == "2026-10-06-09-30-00"
    assert submission_time(course, "hw1", "bob")[0] == datetime(2026, 10, 4, 10, 0, tzinfo=UTC)


def test_collect_keeps_nbgrader_timestamps_of_a_folder_and_of_a_zip_of_folders(tmp_path):
    src = tmp_path / "submitted"
    (src / "ada").mkdir(parents=True)
    (src / "ada" / "hw1.ipynb").write_text("{}")
    (src / "ada" / "timestamp.txt").write_text("2026-10-05 21:00:00.000000 UTC")
    course = tmp_path / "course"
    grading.collect("hw1", src, course)
    zpath = tmp_path / "folders.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("bob/hw1.ipynb", "{}")
        zf.writestr("bob/timestamp.txt", "2026-10-06 09:00:00 UTC")
    grading.collect("hw1", zpath, course)
    assert submission_time(course, "hw1", "ada")[0] == datetime(2026, 10, 5, 21, 0, tzinfo=UTC)
    assert submission_time(course, "hw1", "bob")[0] == datetime(2026, 10, 6, 9, 0, tzinfo=UTC)


def test_final_scores_combine_lateness_extensions_and_overrides(tmp_path, capsys):
    course = _course(tmp_path, "student_id,assignment,due,hours,reason\ncy,hw1,,72,accommodation\n",
                     roster=("ada", "bob", "cy", "dee", "eve"))
    tests = {"t1": (4, 4), "t2": (3, 6)}                       # 7 of 10 points
    for s in ("ada", "bob", "cy", "eve"):
        write_record(course, "hw1", s, tests)
    collected(course, "hw1", "ada", "2026-10-05 21:50:00 UTC")  # on time (due 21:59 UTC)
    collected(course, "hw1", "bob", "2026-10-07 10:00:00 UTC")  # 36 h late: 2 days, 20 % of 10 = 2 points
    collected(course, "hw1", "cy", "2026-10-08 10:00:00 UTC")   # extension to 10-08 21:59: on time
    collected(course, "hw1", "eve", None)                      # no time: reported, no penalty
    ovr.add_override(course, "hw1", "bob", 6, "t2 was mis-specified for bob's valid approach", test="t2", by="ta")
    ovr.add_override(course, "hw1", "ada", 9.5, "oral exam", by="prof")
    rows = {r.student_id: r for r in final_rows(course, "hw1")}
    assert rows["ada"].final == 9.5 and rows["ada"].penalty == 0
    assert rows["bob"].raw == 10 and rows["bob"].penalty == 2 and rows["bob"].final == 8  # 4 + 6, minus 2
    assert rows["bob"].late.late_hours == pytest.approx(36.02, abs=0.01)
    assert rows["cy"].final == 7 and "accommodation" in rows["cy"].late.extension
    assert rows["dee"].status == "missing" and rows["dee"].final == 0
    assert rows["eve"].final == 7 and "timestamp.txt missing" in rows["eve"].late.problem
    out = tmp_path / "g.csv"
    assert main(["export", "hw1", "--course-dir", str(course), "--to", str(out)]) == 0
    assert "warning: eve hw1: no submission time (timestamp.txt missing); no late penalty" in capsys.readouterr().err
    got = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert (got["bob"]["score"], got["bob"]["penalty"], got["bob"]["final_score"]) == ("7", "2", "8")
    assert "test t2 set to 6 by ta" in got["bob"]["overrides"] and got["ada"]["final_score"] == "9.5"


@pytest.mark.parametrize("kwargs, message", [
    ({"student": "zed", "test": "t1"}, "override for unknown student 'zed'"),
    ({"student": "ada", "test": "t9"}, "override for unknown test 't9' of hw1 (tests: t1, t2)"),
    ({"student": "ada", "test": "t1", "points": 5}, "outside 0..4"),
    ({"student": "ada", "test": "t1", "reason": " "}, "needs a reason"),
])
def test_bad_overrides_are_one_line_errors(tmp_path, kwargs, message):
    course = _course(tmp_path)
    write_record(course, "hw1", "ada", {"t1": (4, 4), "t2": (3, 6)})
    args = {"points": 1, "reason": "why", **kwargs}
    with pytest.raises(TermError) as err:
        ovr.add_override(course, "hw1", args.pop("student"), args.pop("points"), args.pop("reason"), **args)
    assert message in str(err.value)
    assert not ovr.overrides_path(course).exists()  # nothing half-written


def test_overrides_are_kept_with_who_when_why_and_dropping_keeps_them(tmp_path, capsys):
    course = _course(tmp_path)
    write_record(course, "hw1", "ada", {"t1": (0, 4), "t2": (3, 6)})
    assert main(["override", "hw1", "ada", "--test", "t1", "--points", "4", "--reason", "regrade request",
                 "--by", "ta1", "--course-dir", str(course)]) == 0
    assert main(["override", "hw1", "ada", "--test", "t7", "--points", "4", "--reason", "x",
                 "--course-dir", str(course)]) == 1
    assert "override for unknown test 't7'" in capsys.readouterr().err
    [entry] = ovr.read_overrides(course)
    assert (entry["by"], entry["reason"], entry["points"]) == ("ta1", "regrade request", 4.0)
    assert datetime.fromisoformat(entry["at"]) <= datetime.now(UTC)
    assert final_rows(course, "hw1")[0].final == 7
    assert main(["overrides", "drop", "1", "--reason", "mistake", "--course-dir", str(course)]) == 0
    assert ovr.read_overrides(course)[0]["dropped"]["reason"] == "mistake"
    assert final_rows(course, "hw1")[0].final == 3


def test_hidden_tests_are_revealed_only_after_every_deadline(tmp_path, capsys):
    course = _course(tmp_path, "student_id,assignment,due,hours,reason\ncy,hw1,,24,accommodation\n")
    c = read_course_file(course)
    # hw1 due 2026-10-05 21:59 UTC, cy +24 h, cut-off 120 h later: 2026-10-11 21:59 UTC
    last = datetime(2026, 10, 11, 21, 59, tzinfo=UTC)
    assert check_reveal(c, "hw1", ["ada", "cy"], now=last) == last
    with pytest.raises(TermError, match=r"stay hidden until 2026-10-11T23:59\+02:00"):
        check_reveal(c, "hw1", ["ada", "cy"], now=last - timedelta(minutes=1))
    (course / "course.yml").write_text("assignments:\n  hw1: {due: 2999-01-01 00:00}\n")  # cy: +24 h
    assert main(["feedback", "hw1", "--reveal-hidden", "--course-dir", str(course)]) == 1
    assert "hidden tests of hw1 stay hidden until 2999-01-02T00:00" in capsys.readouterr().err
