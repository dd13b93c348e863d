"""Overrides: an instructor or TA sets the points of one test, or the final score, of one student.

Every override is kept in ``<course>/overrides.json`` with who, when and why;
dropping one marks it dropped (with who, when and why) instead of deleting it.
Overrides live apart from the result records, so a regrade leaves them in force.
The file is rewritten through a temporary file and a rename: an interrupted
command leaves the old list or the new one.
"""
from __future__ import annotations

import getpass
import html
import json
from datetime import datetime, timezone
from pathlib import Path

from .gradebook import gradebook_url, open_gradebook
from .grading import load_records
from .files import write_text_atomic
from .term import TermError, known_students

OVERRIDES_FILE = "overrides.json"
FINAL = None  # the ``test`` of an override of the final score


def overrides_path(course_dir: Path) -> Path:
    return Path(course_dir) / OVERRIDES_FILE


def read_overrides(course_dir: Path) -> list:
    path = overrides_path(course_dir)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise TermError(f"{path} is not valid JSON ({exc}); restore it from git or a backup") from None
    return list(data)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a container
        return "unknown"


def test_points(course_dir: Path, hw: str) -> dict:
    """``{grade_id: max points}`` of ``hw``'s graded tests, from its records or else the gradebook."""
    for rec in load_records(course_dir, hw):
        if rec.get("tests"):
            return {k: float(v[1]) for k, v in rec["tests"].items()}
    try:
        with open_gradebook(gradebook_url(course_dir)) as gb:
            assignment = gb.find_assignment(hw)
            return {c.name: float(c.max_score) for nb in assignment.notebooks for c in nb.grade_cells}
    except Exception:  # noqa: BLE001 - never released here
        return {}


def add_override(course_dir: Path, hw: str, student: str, points: float, reason: str, *,
                 test: str | None = FINAL, by: str | None = None) -> dict:
    """Record an override of ``test`` (or of the final score) and return it."""
    if not reason or not reason.strip():
        raise TermError("an override needs a reason (--reason)")
    students = known_students(course_dir) or set()
    if student not in students:
        raise TermError(f"override for unknown student {student!r} (not on the roster, no submission)")
    tests = test_points(course_dir, hw)
    if not tests:
        raise TermError(f"override for unknown assignment {hw!r} (not released or graded in {course_dir})")
    if test is not FINAL and test not in tests:
        raise TermError(f"override for unknown test {test!r} of {hw} (tests: {', '.join(sorted(tests))})")
    top = tests[test] if test is not FINAL else sum(tests.values())
    if not 0 <= float(points) <= top:
        what = f"test {test}" if test is not FINAL else f"{hw}'s final score"
        raise TermError(f"override of {points:g} points is outside 0..{top:g} for {what}")
    entries = read_overrides(course_dir)
    entry = {"id": max((e["id"] for e in entries), default=0) + 1, "assignment": hw, "student_id": student,
             "test": test, "points": float(points), "reason": reason.strip(), "by": _who(by), "at": _now(),
             "dropped": None}
    write_text_atomic(overrides_path(course_dir), json.dumps(entries + [entry], indent=1) + "\n")
    return entry


def drop_override(course_dir: Path, override_id: int, reason: str = "", *, by: str | None = None) -> dict:
    """Mark override ``override_id`` dropped (kept in the file, no longer applied)."""
    entries = read_overrides(course_dir)
    match = [e for e in entries if e["id"] == int(override_id)]
    if not match:
        raise TermError(f"no override with id {override_id} (see `overrides list`)")
    match[0]["dropped"] = {"by": _who(by), "at": _now(), "reason": reason}
    write_text_atomic(overrides_path(course_dir), json.dumps(entries, indent=1) + "\n")
    return match[0]


def active(course_dir: Path, hw: str | None = None) -> dict:
    """``{(hw, student): {test or None: entry}}``: the latest override in force per test and student."""
    out: dict = {}
    for e in read_overrides(course_dir):
        if e.get("dropped") or (hw and e["assignment"] != hw):
            continue
        out.setdefault((e["assignment"], e["student_id"]), {})[e["test"]] = e
    return out


def describe(entry: dict) -> str:
    target = f"test {entry['test']}" if entry["test"] is not FINAL else "final score"
    return f"{target} set to {entry['points']:g} by {entry['by']} on {entry['at'][:10]}: {entry['reason']}"


def annotate_feedback(course_dir: Path, hw: str, pages: list) -> int:
    """Put the overrides in force at the top of each student's feedback page; return how many pages changed."""
    in_force = active(course_dir, hw)
    changed = 0
    for page in pages:
        page = Path(page)
        student = page.parent.parent.name  # feedback/<student>/<hw>/<hw>.html
        mine = in_force.get((hw, student))
        if not mine:
            continue
        items = "".join(f"<li>{html.escape(describe(e))}</li>" for e in mine.values())
        box = (f"<div style='border:2px solid #dd8452;padding:6px;margin:8px'><b>Changed by your instructor"
               f"</b><ul>{items}</ul></div>")
        text = page.read_text()
        at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
        write_text_atomic(page, text[:at] + box + text[at:])
        changed += 1
    return changed
