"""Grade files for an LMS: Canvas's gradebook import and Moodle's CSV grade import.

Both are matched on identifiers from the roster CSV (one row per student, a
``student_id`` column that the course uses, plus what the LMS knows the student
by; column names are case-insensitive):

* Canvas: ``name``, ``canvas_id`` (Canvas's numeric user ID), ``sis_user_id``,
  ``sis_login_id``, ``section``. Canvas's import file is the layout of its own
  gradebook export: ``Student, ID, SIS User ID, SIS Login ID, Section``, one
  column per assignment named ``Name (assignment id)`` (a name without an id makes
  a new assignment), and a ``Points Possible`` row under the header.
* Moodle: ``email``, ``username`` or ``idnumber``: the file has that column and
  one grade column per assignment; in Moodle's *Import > CSV file* page map the
  identifier column to the same user field and each grade column to its grade item.

Only roster students go into the files (a student the LMS does not know cannot be
imported): students with a result but not on the roster are returned as
``extra`` for the command to report. Roster students with nothing handed in get 0.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .finals import final_rows, points
from .files import write_text_atomic
from .term import TermError, read_course_file

CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"
MOODLE_IDS = {"email": "Email address", "username": "Username", "idnumber": "ID number"}


def read_lms_roster(path: Path) -> list:
    """The roster's rows as dicts with lower-case keys, each with a ``student_id``."""
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    if rows and "student_id" not in rows[0]:
        raise TermError(f"{path.name}: the roster needs a student_id column for LMS files")
    ids = [r["student_id"] for r in rows]
    dupes = sorted({s for s in ids if ids.count(s) > 1})
    if dupes:
        raise TermError(f"{path.name}: student {dupes[0]!r} is on the roster twice")
    return [r for r in rows if r["student_id"]]


def _table(course_dir: Path, roster: Path, hw: str | None) -> tuple:
    """``(roster rows, assignments, {(student, hw): final}, {hw: max}, extra students)``."""
    people = read_lms_roster(roster)
    rows = final_rows(course_dir, hw, roster=roster)
    finals = {(r.student_id, r.assignment): r.final for r in rows}
    maxima = {}
    for r in rows:
        maxima.setdefault(r.assignment, r.max_score)
    on_roster = {p["student_id"] for p in people}
    extra = sorted({r.student_id for r in rows} - on_roster)
    return people, sorted(maxima), finals, maxima, extra


def _csv(rows: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_canvas(course_dir: Path, to: Path, roster: Path, hw: str | None = None) -> list:
    """Canvas's gradebook import CSV of the final scores; returns the students left out (not on the roster)."""
    people, hws, finals, maxima, extra = _table(course_dir, roster, hw)
    course = read_course_file(course_dir)
    columns = []
    for h in hws:
        a = course.assignments.get(h)
        columns.append(f"{h} ({a.canvas_id})" if a is not None and a.canvas_id else h)
    out = [list(CANVAS_HEADER) + columns, [CANVAS_POINTS_ROW, "", "", "", ""] + [points(maxima[h]) for h in hws]]
    for p in sorted(people, key=lambda p: (p.get("name", ""), p["student_id"])):
        if not (p.get("canvas_id") or p.get("sis_user_id") or p.get("sis_login_id")):
            raise TermError(f"roster: {p['student_id']} has no canvas_id, sis_user_id or sis_login_id "
                            "for Canvas to match")
        ids = [p.get("name") or p["student_id"], p.get("canvas_id", ""), p.get("sis_user_id", ""),
               p.get("sis_login_id", ""), p.get("section", "")]
        out.append(ids + [points(finals.get((p["student_id"], h), 0.0)) for h in hws])
    write_text_atomic(to, _csv(out))
    return extra


def write_moodle(course_dir: Path, to: Path, roster: Path, hw: str | None = None, *, id_field: str = "email") -> list:
    """Moodle's CSV grade import of the final scores; returns the students left out (not on the roster)."""
    if id_field not in MOODLE_IDS:
        raise TermError(f"unknown Moodle identifier {id_field!r}: one of {', '.join(MOODLE_IDS)}")
    people, hws, finals, _, extra = _table(course_dir, roster, hw)
    out = [[MOODLE_IDS[id_field]] + hws]
    for p in sorted(people, key=lambda p: p["student_id"]):
        if not p.get(id_field):
            raise TermError(f"roster: {p['student_id']} has no {id_field} for Moodle to match")
        out.append([p[id_field]] + [points(finals.get((p["student_id"], h), 0.0)) for h in hws])
    write_text_atomic(to, _csv(out))
    return extra
