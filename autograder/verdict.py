"""Decide every graded test in the grader's own process, which never runs student code.

The tests come from the instructor's *source* notebook (public and hidden parts), never
from the student's copy. Each test cell runs here with ``exec`` in a fresh namespace whose
only given name is ``student`` (:class:`autograder.session.Student`); it reaches the
student's functions through the pipe and judges what comes back with coursekit's checks.
A test scores its points if the cell finishes and nothing else; no output, message or
metadata from the student's process counts.
"""
from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass

from .session import Budget, Student, StudentCodeError, StudentGone, StudentProcess

MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class GradedTest:
    grade_id: str
    points: float
    source: str
    index: int                 # position in the source notebook
    forbidden: tuple = ()      # modules hidden from the student's process while this test runs


@dataclass(frozen=True)
class Verdict:
    grade_id: str
    score: float
    max_score: float
    outcome: str        # passed, failed, timeout, crashed
    message: str | None  # why it failed, for the student's feedback
    output: str         # what the test printed (seeds to replay a hidden case, ...)
    seconds: float
    public_passed: bool  # the part a student sees (before the hidden region) passed


HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def split_hidden(source: str) -> tuple:
    """``(public, rest)``: a test cell's code before its hidden region, and the remainder."""
    lines = source.splitlines(keepends=True)
    for k, line in enumerate(lines):
        if line.strip() == HIDDEN_BEGIN:
            return "".join(lines[:k]), "".join(["\n"] * k + lines[k:])
    return source, ""


def _meta(cell) -> dict:
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return meta if isinstance(meta, dict) else {}


def test_cells(source_nb) -> list:
    """The autograded test cells of an nbgrader source notebook, in order, each with its forbidden modules."""
    banned = forbidden_modules(source_nb)
    out = []
    for k, cell in enumerate(source_nb.cells):
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            allowed = set(_coursekit_meta(cell).get("allow", []))
            forbidden = tuple(m for m in banned if m not in allowed)
            out.append(GradedTest(meta["grade_id"], float(meta.get("points", 0)), cell.source, k, forbidden))
    return out


def _coursekit_meta(node) -> dict:
    meta = (node.get("metadata") or {}).get("coursekit") or {}
    return meta if isinstance(meta, dict) else {}


def forbidden_modules(notebook) -> list:
    """The modules a homework forbids (notebook metadata ``coursekit.forbidden``).

    A test cell may allow some of them back (cell metadata ``coursekit.allow``): a test of
    training with the course's own layers, say, in a homework whose other tests forbid those
    layers. The grader runs such tests in a second student process with that view.
    """
    return [str(m) for m in _coursekit_meta(notebook).get("forbidden", []) if isinstance(m, str)]


def _failure(exc: BaseException) -> tuple:
    """``(outcome, message)`` for an exception that ended a test."""
    if isinstance(exc, StudentGone):
        return ("timeout" if exc.kind == "timeout" else "crashed"), str(exc)
    if isinstance(exc, StudentCodeError):
        text = str(exc)
        if exc.student_traceback:
            text += "\n\nWhere, in your code:\n" + exc.student_traceback
        return "failed", text
    return "failed", f"{type(exc).__name__}: {exc}"


def run_test(test: GradedTest, process: StudentProcess, time_left: float) -> Verdict:
    """Run one test cell against the student's process; restart the process first if it died."""
    started = time.monotonic()
    printed = io.StringIO()
    public_passed = False
    process.budget = Budget(started + min(process.limits.cell_timeout, max(time_left, 0.0)))
    try:
        if not process.alive and not process.start(started + max(time_left, 0.0)):
            raise StudentGone("the student's process could not be started again (it died or hung too often)",
                              "crashed")
        namespace = {"__name__": "__grader__", "student": Student(process)}
        public, rest = split_hidden(test.source)
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a warning never costs a point
            _run(public, test, namespace)
            public_passed = True
            _run(rest, test, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any way a test ends early is a failure of that test
        outcome, message = _failure(exc)
        return Verdict(test.grade_id, 0.0, test.points, outcome, message[:MESSAGE_CHARS], printed.getvalue()[-2000:],
                       time.monotonic() - started, public_passed)
    return Verdict(test.grade_id, test.points, test.points, "passed", None, printed.getvalue()[-2000:],
                   time.monotonic() - started, True)


def _run(code: str, test: GradedTest, namespace: dict) -> None:
    if code.strip():
        exec(compile(code, f"<test {test.grade_id}>", "exec"), namespace)  # noqa: S102 - the instructor's test


def run_tests(tests, processes, job_deadline: float) -> list:
    """Every test, in order, each against the student's process for its forbidden modules.

    ``processes(forbidden)`` returns that process (started on first use). A test that finds
    no time left fails with a timeout.
    """
    return [run_test(t, processes(t.forbidden), job_deadline - time.monotonic()) for t in tests]
