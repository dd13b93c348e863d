"""Deadlines, late policies and extensions: the course file and the extensions CSV.

The course file ``<course>/course.yml`` is written by hand and kept in git::

    timezone: Europe/Berlin          # the zone of every date written without one
    late:                            # the default policy of every assignment
      grace_minutes: 15              # up to due + 15 min counts as on time
      penalty_percent: 10            # of the assignment's points, per started unit late
      per: day                       # or: hour
      cap_percent: 50                # never more than this is deducted
      cutoff_hours: 168              # later than this after the due date: score 0
    assignments:
      hw1_classifiers:
        due: 2026-10-05 23:59
        canvas_id: 40113             # optional: Canvas's assignment id, for the import's column name
      hw2_backprop:
        due: 2026-10-19T23:59+02:00
        late: {penalty_percent: 5, per: hour}   # replaces these keys of the default

Extensions live in ``<course>/extensions.csv`` (``student_id, assignment, due,
hours, reason``): a new due date or extra hours, for one assignment or, with
``assignment`` empty or ``*``, for the whole term. A row for the assignment wins
over a term-wide one.

The submission time is the one the submission carries: nbgrader's
``timestamp.txt`` in the collected folder (``collect`` writes one from the time in
an LMS download's file names). A submission without a readable time is reported,
never guessed.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .grading import read_roster
from .layout import Course as CourseFolder

COURSE_FILE = "course.yml"
EXTENSIONS_FILE = "extensions.csv"
POLICY_KEYS = ("grace_minutes", "penalty_percent", "per", "cap_percent", "cutoff_hours")
_BLACKBOARD_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


class TermError(ValueError):
    """Bad input in the course file, the extensions or an override: the message is one line."""


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: float = 0.0
    penalty_percent: float = 0.0
    per: str = "day"
    cap_percent: float = 100.0
    cutoff_hours: float | None = None

    def penalty(self, late: timedelta) -> tuple:
        """``(percent deducted, past the cut-off)`` for a submission ``late`` after its due date."""
        if late <= timedelta(minutes=self.grace_minutes):
            return 0.0, False
        if self.cutoff_hours is not None and late > timedelta(hours=self.cutoff_hours):
            return 100.0, True
        unit = timedelta(days=1) if self.per == "day" else timedelta(hours=1)
        units = math.ceil(late / unit)
        return min(self.cap_percent, units * self.penalty_percent), False


@dataclass(frozen=True)
class Assignment:
    name: str
    due: datetime
    policy: LatePolicy
    canvas_id: str = ""  # the assignment's id in Canvas, for the import file's column name


@dataclass(frozen=True)
class Extension:
    student_id: str
    assignment: str | None  # None: the whole term
    due: datetime | None
    hours: float
    reason: str

    def describe(self) -> str:
        what = f"due {self.due:%Y-%m-%d %H:%M %Z}".strip() if self.due else f"+{self.hours:g} h"
        scope = "whole term" if self.assignment is None else self.assignment
        return f"{what} ({scope}{': ' + self.reason if self.reason else ''})"


@dataclass
class Course:
    tz: object = timezone.utc
    assignments: dict = field(default_factory=dict)
    extensions: list = field(default_factory=list)


# ------------------------------------------------------------------ dates


def parse_time(text, tz=timezone.utc, *, what: str = "date") -> datetime:
    """An aware datetime from ISO 8601, nbgrader's ``timestamp.txt`` or Blackboard's ``2026-10-05-23-59-00``.

    A time without a zone is in ``tz``. Raises :class:`TermError` naming ``what``.
    """
    s = str(text).strip()
    m = _BLACKBOARD_TIME.match(s)
    if m:
        s = "{}-{}-{}T{}:{}:{}".format(*m.groups())
    s = re.sub(r"\s*(?:UTC|GMT|Z)$", "+00:00", s)
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise TermError(f"unparsable {what} {str(text).strip()!r}: write e.g. 2026-10-05 23:59 or "
                        "2026-10-05T23:59+02:00") from None
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def _zone(name):
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise TermError(f"unknown time zone {name!r} in {COURSE_FILE}: use an IANA name like Europe/Berlin") from None


# ------------------------------------------------------------------ files


def _yaml_load(text: str, path: Path):
    class Loader(yaml.SafeLoader):
        pass

    # dates stay strings: we parse them ourselves, with the course's zone
    Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
                                      for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    try:
        return yaml.load(text, Loader=Loader) or {}
    except yaml.YAMLError as exc:
        first = str(exc).replace("\n", " ")
        raise TermError(f"{path} is not valid YAML: {first}") from None


def _policy(raw, base: LatePolicy, where: str) -> LatePolicy:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise TermError(f"{where}: late must be a mapping of {', '.join(POLICY_KEYS)}")
    unknown = sorted(set(raw) - set(POLICY_KEYS))
    if unknown:
        raise TermError(f"{where}: unknown late-policy key {unknown[0]!r} (known: {', '.join(POLICY_KEYS)})")
    values = {k: getattr(base, k) for k in POLICY_KEYS}
    for key, value in raw.items():
        if key == "per":
            if value not in ("day", "hour"):
                raise TermError(f"{where}: late.per must be day or hour, not {value!r}")
        elif value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TermError(f"{where}: late.{key} must be a number, not {value!r}") from None
            if value < 0:
                raise TermError(f"{where}: late.{key} must not be negative ({value:g})")
        values[key] = value
    return LatePolicy(**values)


def read_course_file(course_dir: Path) -> Course:
    """The course file and the extensions of ``course_dir``; an empty :class:`Course` if there is no course file."""
    course_dir = Path(course_dir)
    path = course_dir / COURSE_FILE
    course = Course()
    if not path.is_file():
        return course
    data = _yaml_load(path.read_text(), path)
    if not isinstance(data, dict):
        raise TermError(f"{path}: expected a mapping with timezone, late and assignments")
    course.tz = _zone(data.get("timezone", "UTC"))
    default = _policy(data.get("late"), LatePolicy(), f"{COURSE_FILE} late")
    for name, entry in (data.get("assignments") or {}).items():
        where = f"{COURSE_FILE} assignments.{name}"
        if not isinstance(entry, dict) or "due" not in entry:
            raise TermError(f"{where}: needs a due date (due: 2026-10-05 23:59)")
        due = parse_time(entry["due"], course.tz, what=f"due date of {name}")
        course.assignments[str(name)] = Assignment(str(name), due, _policy(entry.get("late"), default, where),
                                                   str(entry.get("canvas_id") or ""))
    course.extensions = read_extensions(course_dir / EXTENSIONS_FILE, course, known_students(course_dir))
    return course


def known_students(course_dir: Path) -> set | None:
    """Students on the roster or with a record; ``None`` when the course knows no student yet."""
    course_dir = Path(course_dir)
    names = set()
    roster = CourseFolder.at(course_dir).roster
    if roster.is_file():
        names |= set(read_roster(roster))
    results = CourseFolder.at(course_dir).results()
    if results.is_dir():
        names |= {p.stem for p in results.glob("*/*.json")}
    return names or None


def read_extensions(path: Path, course: Course, students: set | None) -> list:
    """The rows of the extensions CSV, checked against the course's assignments and students."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"student_id"} - set(reader.fieldnames or ())
        if missing:
            raise TermError(f"{path.name}: needs a student_id column (and assignment, due or hours, reason)")
        for line, row in enumerate(reader, start=2):
            out.append(_extension(row, f"{path.name} line {line}", course, students))
    return out


def _extension(row: dict, where: str, course: Course, students: set | None) -> Extension:
    student = (row.get("student_id") or "").strip()
    hw = (row.get("assignment") or "").strip()
    due, hours = (row.get("due") or "").strip(), (row.get("hours") or "").strip()
    if students is not None and student not in students:
        raise TermError(f"{where}: extension for unknown student {student!r} (not on the roster, no submission)")
    if hw not in ("", "*") and hw not in course.assignments:
        raise TermError(f"{where}: extension for unknown assignment {hw!r} (not in {COURSE_FILE})")
    if bool(due) == bool(hours):
        raise TermError(f"{where}: give either a new due date or extra hours, not {'both' if due else 'neither'}")
    try:
        extra = float(hours) if hours else 0.0
    except ValueError:
        raise TermError(f"{where}: hours must be a number, not {hours!r}") from None
    try:
        when = parse_time(due, course.tz, what=f"extension date for {student}") if due else None
    except TermError as exc:
        raise TermError(f"{where}: {exc}") from None
    return Extension(student, hw if hw not in ("", "*") else None, when, extra, (row.get("reason") or "").strip())


# ------------------------------------------------------------------ lateness


@dataclass(frozen=True)
class Lateness:
    submitted: datetime | None
    due: datetime | None
    late_hours: float = 0.0
    penalty_percent: float = 0.0
    cutoff: bool = False
    extension: str = ""
    problem: str = ""  # e.g. no readable submission time


def submission_time(course_dir: Path, hw: str, student: str, tz=timezone.utc) -> tuple:
    """``(datetime or None, problem)`` from the collected submission's ``timestamp.txt``."""
    folder = CourseFolder.at(course_dir).collected(hw) / student
    if not folder.is_dir():
        return None, ""
    stamps = [folder / "timestamp.txt", *sorted(folder.glob("*/timestamp.txt"))]
    stamp = next((p for p in stamps if p.is_file()), None)
    if stamp is None:
        return None, "no submission time (timestamp.txt missing)"
    try:
        return parse_time(stamp.read_text()[:100], tz, what="timestamp.txt"), ""
    except TermError as exc:
        return None, str(exc)


def due_for(course: Course, hw: str, student: str) -> tuple:
    """``(due date, extension or None)`` of ``student`` for ``hw``; ``(None, None)`` without a deadline."""
    assignment = course.assignments.get(hw)
    if assignment is None:
        return None, None
    mine = [e for e in course.extensions if e.student_id == student and e.assignment in (hw, None)]
    if not mine:
        return assignment.due, None
    ext = next((e for e in reversed(mine) if e.assignment == hw), mine[-1])
    return (ext.due or assignment.due + timedelta(hours=ext.hours)), ext


def lateness(course: Course, course_dir: Path, hw: str, student: str, graded: bool) -> Lateness:
    """How late ``student``'s ``hw`` came in, and the penalty the course file gives for it."""
    due, ext = due_for(course, hw, student)
    if due is None or not graded:
        return Lateness(None, due, extension=ext.describe() if ext else "")
    submitted, problem = submission_time(course_dir, hw, student, course.tz)
    note = ext.describe() if ext else ""
    if submitted is None:
        return Lateness(None, due, extension=note, problem=problem or "no submission time")
    late = submitted - due
    percent, cut = course.assignments[hw].policy.penalty(late)
    hours = max(0.0, late.total_seconds() / 3600)
    return Lateness(submitted, due, round(hours, 2), percent, cut, note)


def check_reveal(course: Course, hw: str, students, now: datetime | None = None) -> datetime:
    """The last deadline of ``hw`` over ``students`` (extensions included); :class:`TermError` if it is ahead.

    Hidden tests may be shown in feedback only once nobody can still hand in:
    one student's feedback would otherwise tell another, extended one, the tests.
    """
    if hw not in course.assignments:
        raise TermError(f"{hw} has no due date in {COURSE_FILE}: hidden tests stay hidden")
    last = max([due_for(course, hw, s)[0] for s in students] + [course.assignments[hw].due])
    cutoff = course.assignments[hw].policy.cutoff_hours
    if cutoff is not None:
        last += timedelta(hours=cutoff)
    now = now or datetime.now(timezone.utc)
    if now < last:
        raise TermError(f"hidden tests of {hw} stay hidden until {last.isoformat(timespec='minutes')} "
                        "(the last deadline, extensions and cut-off included)")
    return last
