"""Final scores: the graded score, test overrides, the late penalty and a final-score override.

For each student and assignment (every roster student, every record)::

    raw     = graded score, with each overridden test's points replaced
    penalty = the course file's percent of the assignment's points for the lateness (at most raw)
    final   = raw - penalty, 0 past the cut-off, or the final-score override if there is one
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from . import overrides as ovr
from .grading import EXPORT_COLUMNS, export
from .files import write_text_atomic
from .term import Lateness, lateness, read_course_file, COURSE_FILE

TERM_COLUMNS = ("submitted", "late_hours", "penalty", "final_score", "extension", "overrides", "note")


@dataclass(frozen=True)
class FinalRow:
    student_id: str
    assignment: str
    score: float        # as graded
    max_score: float
    status: str
    reason: str
    raw: float          # with test overrides
    late: Lateness
    penalty: float      # points deducted for lateness
    final: float
    overrides: tuple    # override entries applied

    def csv_values(self) -> list:
        submitted = self.late.submitted.isoformat(timespec="minutes") if self.late.submitted else ""
        note = self.late.problem or ("after the cut-off: 0" if self.late.cutoff else "")
        return [submitted, f"{self.late.late_hours:g}", points(self.penalty), points(self.final),
                self.late.extension, "; ".join(ovr.describe(e) for e in self.overrides), note]


def points(x: float) -> str:
    """Points as written in every file: at most two decimals, no trailing zeros."""
    return f"{round(float(x), 2) + 0.0:g}"


def has_term_files(course_dir: Path) -> bool:
    course_dir = Path(course_dir)
    return (course_dir / COURSE_FILE).is_file() or ovr.overrides_path(course_dir).is_file()


def final_rows(course_dir: Path, hw: str | None = None, roster: Path | None = None) -> list:
    """One :class:`FinalRow` per student and assignment, sorted by assignment and student."""
    course = read_course_file(course_dir)
    in_force = ovr.active(course_dir, hw)
    return [_final(course, course_dir, r, in_force.get((r["assignment"], r["student_id"]), {}))
            for r in export(course_dir, hw, None, roster=roster)]


def _final(course, course_dir: Path, rec: dict, mine: dict) -> FinalRow:
    tests = rec.get("tests") or {}
    raw = float(rec["score"])
    applied = []
    for test, entry in mine.items():
        if test is not None and test in tests:
            raw += entry["points"] - float(tests[test][0])
            applied.append(entry)
    late = lateness(course, course_dir, rec["assignment"], rec["student_id"], graded=bool(tests))
    max_score = float(rec["max_score"])
    penalty = raw if late.cutoff else min(raw, max_score * late.penalty_percent / 100)
    final = raw - penalty
    if None in mine:
        final = mine[None]["points"]
        applied.append(mine[None])
    return FinalRow(rec["student_id"], rec["assignment"], float(rec["score"]), max_score, rec["status"],
                    rec.get("reason") or "", raw, late, penalty, final, tuple(applied))


def write_plain(rows: list, to: Path, *, with_reason: bool = False) -> Path:
    """The plain export with the term's columns after the usual ones."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS + (("reason",) if with_reason else ()) + TERM_COLUMNS)
    for r in rows:
        head = [r.student_id, r.assignment, points(r.score), points(r.max_score), r.status]
        writer.writerow(head + ([r.reason] if with_reason else []) + r.csv_values())
    return write_text_atomic(to, buf.getvalue())
