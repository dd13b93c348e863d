"""Typed jobs and result records, and the one list of statuses.

A :class:`Job` is what a worker (local or Dask) needs to grade one student; a
:class:`Record` is what it produces, written as JSON to ``results/<hw>/<student>.json``
with ``os.replace`` so a record is complete or absent. Records are plain JSON so that
instructors' scripts (and the export) can read them without this package.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from .files import write_text_atomic
from .layout import Course
from .sandbox import Limits


class Status(str, Enum):
    OK = "ok"                # graded
    TIMEOUT = "timeout"      # graded, but a cell or a test ran past its time (those tests score 0)
    CRASHED = "crashed"      # graded as far as the student's process lived, or a grader error
    MALFORMED = "malformed"  # not a gradable notebook (quarantined)
    MISSING = "missing"      # no notebook
    TAMPERED = "tampered"    # graded (the trusted score), and flagged for a person to look at


@dataclass(frozen=True)
class Job:
    hw: str
    student: str
    folder: str | None
    course_dir: str
    max_score: float
    limits: Limits = field(default_factory=Limits)
    digest: str | None = None
    source_digest: str | None = None

    @property
    def course(self) -> Course:
        return Course.at(self.course_dir)


@dataclass
class Record:
    student_id: str
    assignment: str
    max_score: float
    score: float = 0.0
    status: Status = Status.OK
    reason: str | None = None
    tests: dict = field(default_factory=dict)      # grade_id -> [score, max_score]
    messages: dict = field(default_factory=dict)   # grade_id -> why it failed (shown in feedback)
    public: dict = field(default_factory=dict)     # grade_id -> whether the visible part of the test passed
    notes: list = field(default_factory=list)
    tampering: list = field(default_factory=list)
    digest: str | None = None
    source_digest: str | None = None
    seconds: float = 0.0
    isolation: str = ""
    traceback: str | None = None                   # a grader error's traceback, for the instructor

    @classmethod
    def for_job(cls, job: Job, **fields) -> "Record":
        return cls(student_id=job.student, assignment=job.hw, max_score=float(job.max_score), digest=job.digest,
                   source_digest=job.source_digest, **fields)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["status"] = Status(self.status).value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["status"] = Status(known.get("status", "ok"))
        known["tests"] = {k: list(v) for k, v in (known.get("tests") or {}).items()}
        return cls(**known)

    @property
    def graded(self) -> bool:
        return bool(self.tests)


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def save(record: Record, course: Course) -> Record:
    write_json_atomic(course.record(record.assignment, record.student_id), record.as_dict())
    return record


def load(course: Course, hw: str, student: str) -> Record | None:
    try:
        return Record.from_dict(json.loads(course.record(hw, student).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load_all(course: Course, hw: str | None = None) -> list:
    """Every record of the course (or of one homework) as a JSON dict, sorted by assignment and student."""
    base = course.results()
    hws = [hw] if hw else sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    out = []
    for h in hws:
        for path in sorted(course.results(h).glob("*.json")):
            try:
                out.append(Record.from_dict(json.loads(path.read_text())).as_dict())
            except (ValueError, TypeError):
                continue
    return out
