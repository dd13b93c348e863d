"""One student's grading job: pre-flight, the student's process, the trusted verdicts, a record.

A job never touches the course's gradebook. It copies the submission (links refused) into
a private scratch folder under ``work/<hw>/``, starts the student's process in the sandbox
with the notebook's cells (:mod:`autograder.session`), decides every test of the *source*
notebook in this process (:mod:`autograder.verdict`), publishes the graded notebook that
feedback is made from, and writes one :class:`~autograder.records.Record`. The grading
process (one writer) merges records into the gradebook.
"""
from __future__ import annotations

import copy
import fcntl
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

from . import records
from .files import copy_tree_safely
from .layout import Course
from .preflight import Preflight, inspect_submission
from .records import Job, Record, Status
from .sandbox import isolation_label
from .session import StudentProcess
from .verdict import run_tests, test_cells

_NOTEBOOKS: dict = {}


def _notebook(path: Path):
    """A notebook read once per worker (until it changes on disk)."""
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _NOTEBOOKS:
        _NOTEBOOKS[key] = nbformat.read(path, as_version=4)
    return _NOTEBOOKS[key]


def quarantine(course: Course, hw: str, student: str, folder: Path | None, reason: str) -> Path:
    dest = course.quarantine(hw, student)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if folder is not None and Path(folder).is_dir():
        copy_tree_safely(Path(folder), dest / "files", max_file_bytes=25 * 1024 ** 2)
    (dest / "REASON.txt").write_text(reason + "\n")
    return dest


def _publish(folder: Path, final: Path) -> None:
    """Copy ``folder`` to ``final`` (what feedback reads), replacing it whole, under a lock file."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    shutil.rmtree(staging)
    shutil.copytree(folder, staging)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            old = final.with_name(f".{final.name}.old{os.getpid()}")
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)


# ------------------------------------------------------------- the graded notebook


def _error(ename: str, text: str) -> dict:
    return new_output("error", ename=ename, evalue=text.splitlines()[0] if text else "", traceback=text.splitlines())


def graded_notebook(repaired, tests, verdicts, runs: dict, log: str):
    """The student's notebook as feedback shows it: test cells from the source, outputs the grader wrote."""
    nb = copy.deepcopy(repaired)
    by_id = {t.grade_id: (t, v) for t, v in zip(tests, verdicts)}
    for k, cell in enumerate(nb.cells):
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if gid in by_id:
            test, verdict = by_id[gid]
            cell.source = test.source
            if verdict.output:
                cell.outputs.append(new_output("stream", name="stdout", text=verdict.output))
            if verdict.message:
                cell.outputs.append(_error(f"Test{verdict.outcome.capitalize()}", verdict.message))
        elif k in runs and runs[k].error:
            cell.outputs.append(_error("Error" if runs[k].status == "error" else f"Cell{runs[k].status.capitalize()}",
                                       runs[k].error))
    if log.strip():
        nb.metadata["autograder"] = {"student_output": log[-20000:]}
    return nb


# ------------------------------------------------------------------------- a job


def _status(pf: Preflight, runs: dict, verdicts) -> Status:
    kinds = {r.status for r in runs.values()} | {v.outcome for v in verdicts}
    if pf.tampering:
        return Status.TAMPERED
    if "timeout" in kinds:
        return Status.TIMEOUT
    if "crashed" in kinds:
        return Status.CRASHED
    return Status.OK


def _notes(runs: dict, repaired, process: StudentProcess) -> list:
    notes = []
    for k, run in sorted(runs.items()):
        where = ((repaired.cells[k].get("metadata") or {}).get("nbgrader") or {}).get("grade_id") or f"cell {k + 1}"
        if run.status == "timeout":
            notes.append(f"{where} ran past the {process.limits.cell_timeout:g} s limit and was skipped")
        elif run.status == "crashed":
            notes.append(f"{where} killed the notebook's process and was skipped")
    if process.memory_cap_hit:
        notes.append(f"the notebook reached its memory cap ({process.limits.memory_bytes} bytes)")
    if any("more bytes of output were dropped" in log for log in process.logs):
        notes.append(f"printed output past {process.limits.output_bytes} bytes was dropped")
    return notes


def _run_submission(job: Job, pf: Preflight, scratch: Path) -> tuple:
    """Start the student's process on the repaired notebook and decide every test: ``(verdicts, runs, process)``."""
    course = job.course
    source = _notebook(course.source_notebook(job.hw))
    tests = test_cells(source)
    test_ids = {t.grade_id for t in tests}
    workdir = scratch / "submission"
    workdir.mkdir()
    copy_tree_safely(Path(job.folder), workdir, skip=(pf.path,), max_total_bytes=5 * 1024 ** 2)
    nbformat.write(pf.notebook, workdir / f"{job.hw}.ipynb")
    cells = [(k, c.source) for k, c in enumerate(pf.notebook.cells) if c.cell_type == "code"
             and ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") not in test_ids]
    deadline = time.monotonic() + job.limits.notebook_timeout
    views = _Processes(workdir, cells, job.limits, scratch, deadline)
    try:
        verdicts = run_tests(tests, views, deadline)
    finally:
        views.close()
    return tests, verdicts, views.merged()


class _Processes:
    """One student process per set of forbidden modules, started when a test first needs it."""

    def __init__(self, workdir: Path, cells: list, limits, scratch: Path, deadline: float):
        self.args, self.deadline, self.started = (workdir, cells, limits, scratch), deadline, {}

    def __call__(self, forbidden: tuple) -> StudentProcess:
        if forbidden not in self.started:
            workdir, cells, limits, scratch = self.args
            view = scratch / f"view{len(self.started)}"
            view.mkdir()
            process = StudentProcess(workdir, cells, limits, view, forbidden=forbidden)
            process.start(self.deadline)
            self.started[forbidden] = process
        return self.started[forbidden]

    def close(self) -> None:
        for process in self.started.values():
            process.close()

    def merged(self) -> StudentProcess:
        """The least restricted process (its cell runs are what feedback shows), with every process's logs and caps."""
        processes = sorted(self.started.values(), key=lambda p: len(p.forbidden))
        if not processes:
            return StudentProcess(*self.args)
        first = processes[0]
        for other in processes[1:]:
            first.logs += other.logs
            first.memory_cap_hit = first.memory_cap_hit or other.memory_cap_hit
        return first


def grade_job(job: Job) -> Record:
    """Grade one student; return (and write) the record. Never raises for a bad submission."""
    started = time.monotonic()
    course = job.course

    def finish(**fields) -> Record:
        rec = Record.for_job(job, seconds=round(time.monotonic() - started, 2),
                             isolation=isolation_label(job.limits), **fields)
        return records.save(rec, course)

    if job.folder is None:
        return finish(status=Status.MISSING, reason=f"missing {job.hw}.ipynb (no submission)")
    pf = inspect_submission(job.hw, Path(job.folder), _notebook(course.released(job.hw)))
    if pf.status is not None:
        quarantine(course, job.hw, job.student, Path(job.folder), pf.reason)
        return finish(status=Status(pf.status), reason=pf.reason, notes=pf.notes)
    course.work(job.hw).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{job.student}.", dir=course.work(job.hw)))
    try:
        tests, verdicts, process = _run_submission(job, pf, scratch)
        graded = scratch / "graded"
        graded.mkdir()
        nbformat.write(graded_notebook(pf.notebook, tests, verdicts, process.runs, "".join(process.logs)),
                       graded / f"{job.hw}.ipynb")
        _publish(graded, course.autograded(job.student, job.hw))
        notes = pf.notes + _notes(process.runs, pf.notebook, process)
        status = _status(pf, process.runs, verdicts)
        return finish(score=sum(v.score for v in verdicts), status=status,
                      reason="; ".join(pf.tampering + notes) or None, notes=notes, tampering=pf.tampering,
                      tests={v.grade_id: [v.score, v.max_score] for v in verdicts},
                      messages={v.grade_id: v.message for v in verdicts if v.message},
                      public={v.grade_id: v.public_passed for v in verdicts})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def failure_record(job: Job, status: Status, reason: str, *, seconds: float = 0.0, trace: str | None = None) -> Record:
    """Write and return the record of a job that left none itself (its worker raised, died or hung)."""
    rec = Record.for_job(job, status=status, reason=reason, seconds=round(seconds, 2),
                         isolation=isolation_label(job.limits), traceback=trace)
    try:
        records.save(rec, job.course)
    except OSError:
        pass
    return rec


def grade_job_guarded(job: Job) -> Record:
    """:func:`grade_job`, with a grader bug turned into a ``crashed`` record for this student alone."""
    try:
        return grade_job(job)
    except Exception as exc:  # noqa: BLE001 - one student's failure must not stop the rest
        return failure_record(job, Status.CRASHED, f"grader error: {type(exc).__name__}: {str(exc)[:300]}",
                              trace=traceback.format_exc()[-4000:])
