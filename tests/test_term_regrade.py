"""Regrades and overrides survive interruptions: nothing is lost, and the review compares with the grades
from before the regrade began (fast: the grader is replaced by one that writes records)."""
from __future__ import annotations

import json
import os

import pytest

from autograder import grading
from autograder import overrides as ovr
from autograder import regrade as rg
from term_support import write_record

HW = "hw2"


def _course(tmp_path):
    course = tmp_path / "course"
    for s, e in (("ada", 0), ("bob", 6), ("cy", 0)):
        write_record(course, HW, s, {"d": (4, 4), "e": (e, 6)})
    (course / "release" / HW).mkdir(parents=True)
    (course / "release" / HW / f"{HW}.ipynb").write_text('{"cells": []}')
    return course


def test_an_interrupted_regrade_resumes_against_the_grades_from_before(tmp_path, monkeypatch):
    course = _course(tmp_path)
    calls = []

    def grade(hw, course_dir=None, **kwargs):  # grades ada, then the power goes (first call only)
        calls.append(hw)
        write_record(course_dir, hw, "ada", {"d": (4, 4), "e": (6, 6)})
        if len(calls) == 1:
            raise KeyboardInterrupt
        write_record(course_dir, hw, "cy", {"d": (4, 4), "e": (6, 6)})
        return []

    monkeypatch.setattr(grading, "release", lambda *a, **k: None)
    monkeypatch.setattr(grading, "grade", grade)
    with pytest.raises(KeyboardInterrupt):
        rg.regrade(HW, course)
    assert rg.pending(course, HW) is not None
    changes = rg.regrade(HW, course)  # run again: resumes the same review
    assert [(c.student_id, c.old_score, c.new_score) for c in changes] == [("ada", 4, 10), ("cy", 4, 10)]
    assert len(list((course / "regrades" / HW).glob("2*"))) == 1
    with pytest.raises(ValueError, match="waits for review"):
        rg.check_published(course, HW)
    rg.publish(course_dir=course, hw=HW)
    rg.check_published(course, HW)


def test_a_crash_while_writing_overrides_keeps_the_old_file(tmp_path, monkeypatch):
    course = _course(tmp_path)
    ovr.add_override(course, HW, "ada", 3, "first", test="e", by="ta")
    before = ovr.overrides_path(course).read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        ovr.add_override(course, HW, "bob", 1, "second", test="e", by="ta")
    assert ovr.overrides_path(course).read_bytes() == before
    assert [p.name for p in course.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    assert json.loads(before)[0]["reason"] == "first"
