"""nbgrader's gradebook: where it is, how to open it, and its one writer.

The gradebook is SQLite in the course folder unless ``$AUTOGRADER_DB_URL`` (or
``--db-url``) names another database, e.g. ``postgresql://grader@db.example.org/ml101``:
PostgreSQL lets several graders write one gradebook at once. Only the process that runs
``grade`` writes it, merging each result record as it arrives; merges retry when two
graders touch the same student at the same moment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Mapping, Sequence

from nbgrader.api import Gradebook, InvalidEntry, MissingEntry
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .layout import COURSE_ID, DB_URL_ENV, Course


class GradingError(RuntimeError):
    """A step failed for the whole assignment (not for one student); the message says what."""


def nbgrader_env(base: Mapping[str, str] | None = None) -> dict:
    """The environment for nbgrader: the interpreter's ``bin`` first on PATH (it calls ``alembic``)."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + os.pathsep + path
    return env


def worker_env() -> dict:
    """nbgrader's environment without the gradebook's URL: grading workers never learn the password."""
    env = nbgrader_env()
    env.pop(DB_URL_ENV, None)
    return env


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{Path(folder).resolve() / 'gradebook.db'}"


def gradebook_url(course: Course) -> str:
    """``$AUTOGRADER_DB_URL``, else SQLite in the course folder."""
    return os.environ.get(DB_URL_ENV, "").strip() or sqlite_url(Course.at(course).root)


def shown_url(url: str) -> str:
    """``url`` with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def open_gradebook(url: str) -> Gradebook:
    """nbgrader's ``Gradebook`` at ``url``; a :class:`GradingError` naming the database if it cannot be opened."""
    os.environ["PATH"] = nbgrader_env()["PATH"]  # a new database is stamped by the `alembic` command
    try:
        return Gradebook(url, course_id=COURSE_ID)
    except Exception as exc:  # noqa: BLE001 - bad URL, driver missing, server down, wrong password ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GradingError(f"cannot open the gradebook {shown_url(url)}: {type(exc).__name__}: {first}") from exc


def course_gradebook(course: Course, db_url: str | None = None) -> Gradebook:
    return open_gradebook(db_url or gradebook_url(course))


def run_nbgrader(args: Sequence[str], course: Course, *, timeout: int | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader <args>`` in the course folder and capture its output."""
    course = Course.at(course)
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course.root}"]
    return subprocess.run(cmd, cwd=course.root, env=nbgrader_env(env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def in_gradebook(hw: str, course: Course) -> bool:
    with course_gradebook(course) as gb:
        try:
            gb.find_assignment(hw)
        except MissingEntry:
            return False
    return True


def assignment_max_score(hw: str, course: Course) -> float:
    with course_gradebook(course) as gb:
        return float(gb.find_assignment(hw).max_score)


def read_scores(hw: str, student_id: str, course: Course, *, db_url: str | None = None) -> tuple:
    """``(score, max_score, {grade_id: (score, max_score)})`` from the gradebook."""
    with course_gradebook(course, db_url) as gb:
        submission = gb.find_submission(hw, student_id)
        tests = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                tests[grade.name] = (float(grade.score), float(grade.max_score))
        return float(submission.score), float(submission.max_score), tests


class GradebookWriter:
    """The one writer of the course gradebook: merges result records into it.

    A graded record (with per-test scores) becomes a submission whose grades' ``auto_score``
    are the record's; a record without grades (missing, malformed, ...) removes any earlier
    submission of that student, so the gradebook always agrees with the records. Merging the
    same record twice changes nothing. On a shared database another grader may write the
    same student between our read and our write: the merge is rolled back and tried again.
    """

    ATTEMPTS = 5

    def __init__(self, course: Course, db_url: str | None = None):
        self.url = db_url or gradebook_url(course)
        self.gb = None

    def __enter__(self):
        self.gb = open_gradebook(self.url)
        return self

    def __exit__(self, *exc):
        self.gb.close()
        return False

    def merge(self, record: dict) -> None:
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SQLAlchemy's autoflush chatter inside nbgrader's add_submission
                    self._merge(record)
                return
            except (InvalidEntry, DBAPIError) as exc:  # a unique key another grader just wrote, a deadlock ...
                self.gb.db.rollback()
                if attempt == self.ATTEMPTS:
                    raise GradingError(f"could not write {record['student_id']}'s grade to the gradebook "
                                       f"{shown_url(self.url)}: {exc}") from exc
                time.sleep(0.05 * attempt)

    def _merge(self, record: dict) -> None:
        gb, hw, student = self.gb, record["assignment"], record["student_id"]
        tests = record.get("tests") or {}
        try:
            sub = gb.find_submission(hw, student)
        except MissingEntry:
            sub = None
        if not tests:
            if sub is not None:
                gb.remove_submission(hw, student)
            return
        gb.update_or_create_student(student)
        if sub is None:
            sub = gb.add_submission(hw, student)
        changed = False
        for notebook in sub.notebooks:
            for g in notebook.grades:
                if g.name in tests and g.auto_score != float(tests[g.name][0]):
                    g.auto_score = float(tests[g.name][0])
                    changed = True
        if changed:
            gb.db.commit()
