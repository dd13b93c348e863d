"""Release and grade homework, one stage per function; the command line is a thin layer over these.

Stages: :func:`release` (nbgrader ``generate_assignment``), :func:`collect` (submissions from
folders or an LMS zip, links never followed), :func:`grade` (one job per student on an
executor; the gradebook written by this process alone), :func:`export` (CSV with a status per
student). Paths inside the course folder are :class:`autograder.layout.Course`'s.

How a score is decided: the student's notebook runs in a sandboxed process
(:mod:`autograder.sandbox`, :mod:`autograder.runner`); every graded test of the instructor's
source notebook runs in the grader's own process (:mod:`autograder.verdict`), reaching the
student's functions through a pipe that carries plain data only (:mod:`autograder.session`).
No student code ever runs in a process that computes, records or reports a score.

Records make a run resumable: a student whose record matches the current submission and
source is not graded again unless ``force`` is given.
"""
from __future__ import annotations

import csv
import hashlib
import re
import shutil
import stat
import sys
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from tqdm import tqdm

from . import records
from .dask_executor import DaskExecutor
from .files import copy_tree_safely
from .gradebook import (GradebookWriter, GradingError, assignment_max_score, course_gradebook, gradebook_url,
                        in_gradebook, nbgrader_env, read_scores, run_nbgrader, worker_env)
from .layout import CONFIG_TEMPLATE, COURSE_ID, DB_URL_ENV, DEFAULT_COURSE_DIR, SOLUTIONS_DIR, Course
from .pool import GRACE_SECONDS, LocalPool
from .preflight import digest_file, find_notebook, load_json
from .records import Job, Record, Status
from .sandbox import Limits, SandboxUnavailable, isolation_label, require_isolation

__all__ = ["COURSE_ID", "DB_URL_ENV", "DEFAULT_COURSE_DIR", "GradeResult", "GradingError", "collect", "export",
           "grade", "grade_one", "gradebook_url", "load_records", "nbgrader_env", "preflight", "prepare_course",
           "read_roster", "read_scores", "release", "run_nbgrader", "student_dirs", "write_csv"]

CSV_COLUMNS = ("student_id", "score", "max_score")
EXPORT_COLUMNS = ("student_id", "assignment", "score", "max_score", "status")


@dataclass(frozen=True)
class GradeResult:
    """The outcome for one student: score, status, and per test ``grade_id -> (score, max_score)``."""

    student_id: str
    score: float
    max_score: float
    reason: str | None = None
    tests: Mapping[str, tuple] = field(default_factory=dict)
    status: str = "ok"
    assignment: str = ""
    detail: str | None = None  # notes for a graded notebook (repairs, skipped cells ...)

    @classmethod
    def of(cls, rec: Record) -> "GradeResult":
        status = Status(rec.status).value
        return cls(rec.student_id, float(rec.score), float(rec.max_score), rec.reason if status != "ok" else None,
                   {k: tuple(v) for k, v in rec.tests.items()}, status, rec.assignment, rec.reason)


def _tail(proc, n: int = 15) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-n:])


def load_records(course_dir: Path, hw: str | None = None) -> list:
    """Every result record in the course (or of one homework) as a dict, sorted by assignment and student."""
    return records.load_all(Course.at(course_dir), hw)


# ------------------------------------------------------------------------ release


def prepare_course(hw: str, course_dir: Path | None = None, *, solutions_dir: Path = SOLUTIONS_DIR) -> Path:
    """Create the course folder, write the config and copy ``solutions/<hw>/`` to ``source/<hw>/``."""
    course = Course.at(course_dir)
    src = Path(solutions_dir) / hw
    if not (src / f"{hw}.ipynb").is_file():
        raise GradingError(f"no source notebook {src / (hw + '.ipynb')}")
    course.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_TEMPLATE, course.config)
    dest = course.source(hw)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course.root


def _digest(folder: Path) -> str:
    """A digest of a notebook folder and the grading config: records graded against another version are stale."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")) if Path(folder).is_dir() else []:
        if path.is_file() and not {".ipynb_checkpoints", "__pycache__"} & set(path.parts):
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    h.update(CONFIG_TEMPLATE.read_bytes())
    return h.hexdigest()


def source_digest(hw: str, course_dir: Path) -> str:
    return _digest(Course.at(course_dir).source(hw))


def release(hw: str, course_dir: Path | None = None, *, solutions_dir: Path = SOLUTIONS_DIR,
            force: bool = True) -> Path:
    """Generate the student version of ``hw``; return the path of its notebook.

    Runs ``nbgrader generate_assignment --force``, which also records the assignment's graded
    cells in the gradebook. With ``force=False`` nothing is done when the solutions and the
    config have not changed since the last release.
    """
    course = Course.at(course_dir)
    released, stamp = course.released(hw), course.release_stamp(hw)
    if not force and released.is_file() and stamp.is_file() \
            and stamp.read_text() == _digest(Path(solutions_dir) / hw) and in_gradebook(hw, course):
        return released
    prepare_course(hw, course.root, solutions_dir=solutions_dir)
    course_gradebook(course).close()  # a clear error for a bad URL before nbgrader's traceback
    proc = run_nbgrader(["generate_assignment", hw, "--force"], course)
    if proc.returncode != 0 or not released.is_file():
        raise GradingError(f"nbgrader generate_assignment {hw} failed:\n{_tail(proc)}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_digest(Path(solutions_dir) / hw))
    return released


def preflight(hw: str, student_dir: Path) -> str | None:
    """Why a submission cannot be graded (a quick check), or ``None``; the full pass is preflight.inspect_submission."""
    nb_path, _ = find_notebook(hw, Path(student_dir))
    if nb_path is None:
        return f"missing {hw}.ipynb"
    try:
        load_json(nb_path)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the student's, not ours
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"unreadable {hw}.ipynb: {type(exc).__name__}: {first[:200]}"
    return None


# -------------------------------------------------------------------------- grade


def student_dirs(submissions: Path) -> list:
    """One ``(student_id, folder)`` per sub-folder of ``submissions`` (links skipped), sorted by id."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist")
    return sorted((p.name, p) for p in submissions.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def read_roster(path: Path) -> list:
    """Student ids from a roster CSV: a ``student_id`` (or ``id``/``username``) column, else the first one."""
    with Path(path).open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    for name in ("student_id", "id", "username", "student", "login"):
        if name in header:
            col = header.index(name)
            body = rows[1:]
            break
    else:
        col, body = 0, rows
    return sorted({r[col].strip() for r in body if len(r) > col and r[col].strip()})


def write_csv(results: Sequence[GradeResult], out: Path) -> Path:
    """The short CSV of ``grade --out``: ``student_id, score, max_score`` (see :func:`export` for statuses)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow([r.student_id, f"{r.score:g}", f"{r.max_score:g}"])
    return out


def _log_line(rec: Record) -> str:
    status = Status(rec.status).value
    if status in ("missing", "malformed", "crashed", "timeout") and not rec.tests:
        return f"{rec.student_id}: score 0 [{status}] ({rec.reason})"
    line = f"{rec.student_id}: {rec.score:g} / {rec.max_score:g} [{status}]"
    return line + (f" ({rec.reason})" if rec.reason else "")


def _class_list(course: Course, submissions: Path, roster: Path | None, students, log) -> tuple:
    """``(everyone, folders)``: every student with a folder or on the roster, limited to ``students``."""
    folders = dict(student_dirs(submissions))
    if roster is None and course.roster.is_file():
        roster = course.roster
    elif roster is not None:
        course.root.mkdir(parents=True, exist_ok=True)
        if Path(roster).resolve() != course.roster.resolve():
            shutil.copyfile(roster, course.roster)
    on_roster = read_roster(roster) if roster is not None else []
    everyone = sorted(set(folders) | set(on_roster))
    if students:
        unknown = sorted(set(students) - set(everyone))
        if unknown:
            raise GradingError(f"no submission folder and no roster entry for {', '.join(unknown)}")
        everyone = [s for s in everyone if s in set(students)]
    for s in sorted(set(folders) - set(on_roster)) if on_roster else []:
        log(f"warning: {s} is not on the roster (graded anyway)")
    return everyone, folders


def _plan(hw: str, course: Course, everyone, folders, limits: Limits, force: bool) -> tuple:
    """``(todo, done)``: jobs to run, and records still valid for the current submission and source."""
    max_score = assignment_max_score(hw, course)
    src_digest = source_digest(hw, course.root)
    todo, done = [], {}
    for student in everyone:
        folder = folders.get(student)
        digest = digest_file(find_notebook(hw, folder)[0] if folder is not None else None)
        old = records.load(course, hw, student)
        if not force and old is not None and old.digest == digest and old.source_digest == src_digest \
                and old.isolation == isolation_label(limits):
            done[student] = old
            continue
        todo.append(Job(hw, student, str(folder) if folder else None, str(course.root), max_score, limits, digest,
                        src_digest))
    return todo, done


def _executor(executor: str, jobs: int, scheduler: str | None, log):
    if executor == "local":
        return LocalPool(jobs, worker_env())
    if executor == "dask":
        if not scheduler:
            raise GradingError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
        return DaskExecutor(scheduler, log=log)
    raise GradingError(f"unknown executor {executor!r}: local or dask")


def grade(hw: str, submissions: Path | None = None, out: Path | None = None, course_dir: Path | None = None, *,
          cell_timeout: float | None = None, log=print, jobs: int = 1, students: Sequence[str] | None = None,
          force: bool = False, roster: Path | None = None, limits: Limits | None = None,
          progress: bool | None = None, release_first: bool = True, executor: str = "local",
          scheduler: str | None = None, solutions_dir: Path = SOLUTIONS_DIR) -> list:
    """Grade every student folder in ``submissions`` (and every roster student); optionally write the CSV.

    Refuses to start (one-line :class:`GradingError`) when the sandbox asked for cannot be had.
    Releases ``hw`` first when the solutions changed. Each student is one job on the executor
    (``local``: ``jobs`` worker processes; ``dask``: the cluster at ``scheduler``); a student
    whose record matches the current submission and source is skipped unless ``force``. A
    student whose notebook cannot be graded gets score 0, a status and a reason; the run goes
    on. Returns one :class:`GradeResult` per student, sorted by id.
    """
    course = Course.at(course_dir)
    limits = limits or Limits()
    if cell_timeout is not None:
        limits = replace(limits, cell_timeout=float(cell_timeout))
    try:
        require_isolation(limits)
    except SandboxUnavailable as exc:
        raise GradingError(str(exc)) from None
    run = _executor(executor, jobs, scheduler, log)
    everyone, folders = _class_list(course, Path(submissions or course.collected(hw)), roster, students, log)
    if release_first:
        release(hw, course.root, force=False, solutions_dir=solutions_dir)
    todo, done = _plan(hw, course, everyone, folders, limits, force)
    if done:
        log(f"{len(done)} students already graded (use --force to re-grade), {len(todo)} to grade")
    bar = tqdm(total=len(todo), unit="nb", desc="grading", file=sys.stderr, smoothing=0.1, dynamic_ncols=True,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    say = bar.write if not bar.disable and log is print else log
    with GradebookWriter(course) as writer:
        for rec in done.values():  # a run killed between a record and its merge is completed here
            writer.merge(rec.as_dict())

        def on_result(rec: Record):
            done[rec.student_id] = rec
            writer.merge(rec.as_dict())
            say(_log_line(rec))
            bar.update(1)

        if todo:
            run.run(todo, on_result, deadline_s=limits.notebook_timeout + GRACE_SECONDS)
    bar.close()
    results = [GradeResult.of(done[s]) for s in everyone if s in done]
    if out is not None:
        write_csv(results, out)
    return results


def grade_one(hw: str, student_id: str, student_dir: Path, course_dir: Path, *, limits: Limits | None = None,
              **kwargs) -> GradeResult:
    """Grade one student in worker processes like :func:`grade` (the assignment must be released)."""
    results = grade(hw, Path(student_dir).parent, None, course_dir, students=[student_id], force=True,
                    limits=limits, release_first=False, log=lambda *_: None, progress=False, **kwargs)
    return results[0]


# ------------------------------------------------------------------------- export


def export(course_dir: Path | None = None, hw: str | None = None, to: Path | None = None, *,
           roster: Path | None = None, with_reason: bool = False) -> list:
    """Rows ``student_id, assignment, score, max_score, status`` (one per student and assignment).

    Students on the roster without a record get a ``missing`` row with score 0.
    """
    course = Course.at(course_dir)
    records = load_records(course.root, hw)
    if roster is None and course.roster.is_file():
        roster = course.roster
    on_roster = read_roster(roster) if roster else []
    hws = [hw] if hw else sorted({r["assignment"] for r in records})
    rows = {(r["assignment"], r["student_id"]): r for r in records}
    for h in hws:
        max_score = next((r["max_score"] for r in records if r["assignment"] == h), None)
        if max_score is None:
            try:
                max_score = assignment_max_score(h, course)
            except Exception:  # noqa: BLE001 - never released here
                max_score = 0.0
        for s in on_roster:
            rows.setdefault((h, s), {"student_id": s, "assignment": h, "score": 0.0, "max_score": max_score,
                                     "status": "missing", "reason": "no submission"})
    ordered = [rows[k] for k in sorted(rows)]
    if to is not None:
        _write_export(ordered, Path(to), with_reason)
    return ordered


def _write_export(rows: list, to: Path, with_reason: bool) -> None:
    """The CSV; an ``isolation`` column appears when any grade was made without a sandbox."""
    unsandboxed = any(r.get("isolation") == "NO SANDBOX" for r in rows)
    to.parent.mkdir(parents=True, exist_ok=True)
    with to.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS + (("reason",) if with_reason else ()) + (("isolation",) if unsandboxed else ()))
        for r in rows:
            row = [r["student_id"], r["assignment"], f"{float(r['score']):g}", f"{float(r['max_score']):g}",
                   r["status"]]
            writer.writerow(row + ([r.get("reason") or ""] if with_reason else [])
                            + ([r.get("isolation") or ""] if unsandboxed else []))


# ------------------------------------------------------------------------ collect

# nbgrader's ZipCollectApp default (Blackboard-style names), and a Moodle/Canvas-style fallback.
ZIP_PATTERNS = (r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>.+)",
                r"(?P<student_id>[^_/]+)_(?:\d+_)*(?:assignsubmission_file_|late_)?(?P<file_id>[^/]+\.ipynb)")


def collect(hw: str, source: Path, course_dir: Path | None = None, *, roster: Path | None = None,
            regex: str | None = None, log=print) -> int:
    """Copy submissions into ``<course>/collected/<hw>/<student>/``; return how many students.

    ``source`` is a folder of per-student folders, or an LMS zip whose member
    names carry the student id (``regex`` with a ``student_id`` group; by
    default nbgrader zip_collect's pattern, then a ``<id>_..._<file>`` one).
    The submission time stays with the submission: a folder's nbgrader
    ``timestamp.txt`` is copied with it, and a zip member name's ``timestamp``
    group (Blackboard's ``..._attempt_2026-10-05-23-59-00_...``) is written to the
    student's ``timestamp.txt`` (the latest, when a student has several files).
    """
    course = Course.at(course_dir)
    dest = course.collected(hw)
    dest.mkdir(parents=True, exist_ok=True)
    if roster is not None:
        shutil.copyfile(roster, course.roster)
    seen = set()
    source = Path(source)
    if source.is_dir():
        for student, folder in student_dirs(source):
            target = dest / student
            if target.exists():
                shutil.rmtree(target)
            for skipped in copy_tree_safely(folder, target):
                log(f"warning: {student}: skipped {skipped} (links are never followed)")
            seen.add(student)
    elif zipfile.is_zipfile(source):
        patterns = [re.compile(regex)] if regex else [re.compile(p) for p in ZIP_PATTERNS]
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                if info.is_dir() or info.file_size > 50 * 1024 ** 2:
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    log(f"warning: skipped {info.filename}: a symbolic link in the zip (links are never followed)")
                    continue
                name = info.filename
                parts = Path(name).parts
                m = None
                if len(parts) > 1 and not (regex or patterns[0].match(parts[-1])):
                    student, filename = parts[-2], parts[-1]  # a zip of student folders
                else:
                    m = next((p.match(parts[-1]) for p in patterns if p.match(parts[-1])), None)
                    if m is None:
                        continue
                    student = m.group("student_id")
                    filename = m.groupdict().get("file_id") or parts[-1]
                if not re.fullmatch(r"[A-Za-z0-9._@-]+", student) or student.startswith("."):
                    continue
                filename = Path(filename).name
                target = dest / student / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
                if m is not None and m.groupdict().get("timestamp"):
                    _keep_timestamp(dest / student / "timestamp.txt", m.group("timestamp"))
                seen.add(student)
    else:
        raise GradingError(f"{source} is neither a folder nor a zip file")
    return len(seen)


def _keep_timestamp(path: Path, stamp: str) -> None:
    """Write ``stamp`` to ``path`` unless the time already there is later (same-format stamps sort as text)."""
    old = path.read_text().strip() if path.is_file() else ""
    if stamp.strip() > old:
        path.write_text(stamp.strip() + "\n")
