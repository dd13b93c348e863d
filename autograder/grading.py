"""Release and grade homework with nbgrader, one stage per function.

The course directory is nbgrader's working root::

    <course_dir>/
      nbgrader_config.py        copied from autograder/nbgrader_config.py
      gradebook.db              SQLite gradebook (unless $AUTOGRADER_DB_URL names another database)
      source/<hw>/<hw>.ipynb    copied from solutions/<hw>/ (the instructor's version)
      release/<hw>/<hw>.ipynb   the student version (nbgrader generate_assignment)
      submitted/<student>/<hw>/<hw>.ipynb
      autograded/<student>/<hw>/<hw>.ipynb

      work/<hw>/template.db     the assignment's gradebook without students (jobs copy it)
      results/<hw>/<student>.json   one atomic result record per student (score, status, reason)
      quarantine/<hw>/<student>/    what preflight could not grade, with REASON.txt
      feedback/<student>/<hw>/<hw>.html, reports/<hw>/report.{png,html}

``release`` runs ``python -m nbgrader generate_assignment`` as a subprocess of
the current interpreter, with that interpreter's ``bin`` directory first on
``PATH`` (nbgrader's gradebook calls ``alembic`` as a command). ``grade`` hands
one job per student to a pool of worker processes (:mod:`autograder.pool`),
each of which imports nbgrader once and calls its Python API in-process inside
a private scratch course (:mod:`autograder.jobs`); the kernel runs under the
limits and sandbox of :mod:`autograder.sandbox`. Only this process writes the
course gradebook: it merges each result record as it arrives (one writer, so
SQLite never sees concurrent writers). Records make a run resumable: a student
whose record matches the current submission and source is not graded again
unless ``force`` is given.

The gradebook is SQLite in the course folder unless ``$AUTOGRADER_DB_URL``
(or ``--db-url``) names another database, e.g.
``postgresql://grader@db.example.org/ml101``: PostgreSQL lets several graders
(people, or the Dask executor's coordinator) write one gradebook at once.
Merges retry when two graders touch the same student at the same moment.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from .jobs import read_record, sqlite_url, template_gradebook
from .preflight import digest_file, find_notebook
from .sandbox import Limits

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
DEFAULT_COURSE_DIR = PACKAGE_DIR / "_course"
CONFIG_TEMPLATE = PACKAGE_DIR / "nbgrader_config.py"
DB_URL_ENV = "AUTOGRADER_DB_URL"
COURSE_ID = "coursekit"  # the gradebook's course row (nbgrader_config.py sets it for nbgrader too)
CSV_COLUMNS = ("student_id", "score", "max_score")
EXPORT_COLUMNS = ("student_id", "assignment", "score", "max_score", "status")


class GradingError(RuntimeError):
    """An nbgrader step failed for the whole assignment (not for one student)."""


@dataclass(frozen=True)
class GradeResult:
    """The outcome for one student.

    ``tests`` maps each graded cell's ``grade_id`` to ``(score, max_score)``;
    it is empty when the notebook never reached nbgrader. ``reason`` says why a
    student got no grade from nbgrader (missing or unreadable notebook, a
    failed autograde run); it is ``None`` when grading went through.
    """

    student_id: str
    score: float
    max_score: float
    reason: str | None = None
    tests: Mapping[str, tuple] = field(default_factory=dict)
    status: str = "ok"
    assignment: str = ""
    detail: str | None = None  # notes for a graded notebook (repairs, input(), dropped output ...)


# ---------------------------------------------------------------- nbgrader runs


def nbgrader_env(base: Mapping[str, str] | None = None) -> dict:
    """The environment for nbgrader: the interpreter's ``bin`` first on PATH."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + os.pathsep + path
    return env


def worker_env() -> dict:
    """nbgrader's environment without the gradebook's URL, for work on a private SQLite gradebook.

    Grading workers and the template build use it: neither may touch (or learn the
    password of) the course's database.
    """
    env = nbgrader_env()
    env.pop(DB_URL_ENV, None)
    return env


def gradebook_url(course_dir: Path) -> str:
    """The course gradebook's database URL: ``$AUTOGRADER_DB_URL``, else SQLite in the course folder."""
    return os.environ.get(DB_URL_ENV, "").strip() or sqlite_url(course_dir)


def shown_url(url: str) -> str:
    """``url`` with any password masked, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def open_gradebook(url: str):
    """nbgrader's ``Gradebook`` at ``url``; a :class:`GradingError` naming the database if it cannot be opened."""
    from nbgrader.api import Gradebook  # imported late: the CLI's --help should not pay for it

    os.environ["PATH"] = nbgrader_env()["PATH"]  # a new database is stamped by the `alembic` command
    try:
        return Gradebook(url, course_id=COURSE_ID)
    except Exception as exc:  # noqa: BLE001 - bad URL, driver missing, server down, wrong password ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GradingError(f"cannot open the gradebook {shown_url(url)}: {type(exc).__name__}: {first}") from exc


def run_nbgrader(args: Sequence[str], course_dir: Path, *, timeout: int | None = None,
                 cell_timeout: int | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader <args>`` in ``course_dir`` and capture its output.

    ``timeout`` bounds the whole run (seconds); ``cell_timeout`` overrides
    ``Execute.timeout`` from the config file. The gradebook is
    :func:`gradebook_url`'s (the config reads ``$AUTOGRADER_DB_URL``).
    """
    course_dir = Path(course_dir).resolve()
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    if cell_timeout is not None:
        cmd.append(f"--Execute.timeout={int(cell_timeout)}")
    return subprocess.run(cmd, cwd=course_dir, env=nbgrader_env(env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _tail(proc: subprocess.CompletedProcess, n: int = 15) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return "\n".join(lines[-n:])


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The most telling line of a failed run, for a one-line reason."""
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "ERROR" in ln or "Error" in ln:
            return ln
    return lines[-1] if lines else f"exit status {proc.returncode}"


# ---------------------------------------------------------------------- stages


def prepare_course(hw: str, course_dir: Path | None = None, *, solutions_dir: Path = SOLUTIONS_DIR) -> Path:
    """Create the course directory, write the config and copy ``solutions/<hw>/`` to ``source/<hw>/``."""
    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    src = Path(solutions_dir) / hw
    if not (src / f"{hw}.ipynb").is_file():
        raise GradingError(f"no source notebook {src / (hw + '.ipynb')}")
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_TEMPLATE, course_dir / "nbgrader_config.py")
    dest = course_dir / "source" / hw
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course_dir


def source_digest(hw: str, course_dir: Path) -> str:
    """A digest of the assignment's source folder and the grading config: records from another version are stale."""
    h = hashlib.sha256()
    src = Path(course_dir) / "source" / hw
    for path in sorted(src.rglob("*")) if src.is_dir() else []:
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            h.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    h.update(CONFIG_TEMPLATE.read_bytes())
    return h.hexdigest()


def _solutions_digest(hw: str, solutions_dir: Path) -> str:
    h = hashlib.sha256()
    src = Path(solutions_dir) / hw
    for path in sorted(src.rglob("*")):
        if path.is_file() and ".ipynb_checkpoints" not in path.parts and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    h.update(CONFIG_TEMPLATE.read_bytes())
    return h.hexdigest()


def release(hw: str, course_dir: Path | None = None, *, solutions_dir: Path = SOLUTIONS_DIR,
            force: bool = True) -> Path:
    """Generate the student version of ``hw``; return the path of its notebook.

    Runs ``nbgrader generate_assignment --force``, which also records the
    assignment's graded cells in the gradebook, and writes
    ``<course_dir>/release/<hw>/<hw>.ipynb`` and the template gradebook the
    grading jobs start from. With ``force=False`` nothing is done when the
    solutions and the config have not changed since the last release.
    """
    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    released = course_dir / "release" / hw / f"{hw}.ipynb"
    stamp = course_dir / "work" / hw / "released.sha256"
    if not force and released.is_file() and template_gradebook(course_dir, hw).is_file() and stamp.is_file() \
            and stamp.read_text() == _solutions_digest(hw, solutions_dir) and _in_gradebook(hw, course_dir):
        return released
    course_dir = prepare_course(hw, course_dir, solutions_dir=solutions_dir)
    _gradebook(course_dir).close()  # a clear error for a bad URL before nbgrader's traceback
    proc = run_nbgrader(["generate_assignment", hw, "--force"], course_dir)
    if proc.returncode != 0 or not released.is_file():
        raise GradingError(f"nbgrader generate_assignment {hw} failed:\n{_tail(proc)}")
    make_template(hw, course_dir)
    stamp.write_text(_solutions_digest(hw, solutions_dir))
    return released


def _in_gradebook(hw: str, course_dir: Path) -> bool:
    from nbgrader.api import MissingEntry

    with _gradebook(course_dir) as gb:
        try:
            gb.find_assignment(hw)
        except MissingEntry:
            return False
    return True


def make_template(hw: str, course_dir: Path) -> Path:
    """Write ``work/<hw>/template.db``: a SQLite gradebook with the assignment and no students.

    From SQLite, a copy of the course gradebook without its students. From
    another database, nbgrader's ``generate_assignment`` run again in a scratch
    root, into SQLite.
    """
    course_dir = Path(course_dir).resolve()
    target = template_gradebook(course_dir, hw)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    if gradebook_url(course_dir) == sqlite_url(course_dir):
        shutil.copyfile(course_dir / "gradebook.db", tmp)
        with open_gradebook(f"sqlite:///{tmp}") as gb:
            for student in list(gb.students):
                gb.remove_student(student.id)
    else:
        scratch = Path(tempfile.mkdtemp(prefix=".template.", dir=target.parent))
        try:
            (scratch / "source").symlink_to(course_dir / "source", target_is_directory=True)
            shutil.copyfile(course_dir / "nbgrader_config.py", scratch / "nbgrader_config.py")
            proc = run_nbgrader(["generate_assignment", hw, "--force"], scratch, env=worker_env())
            if proc.returncode != 0 or not (scratch / "gradebook.db").is_file():
                raise GradingError(f"nbgrader generate_assignment {hw} (template gradebook) failed:\n{_tail(proc)}")
            shutil.copyfile(scratch / "gradebook.db", tmp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    os.replace(tmp, target)
    return target


def ensure_template(hw: str, course_dir: Path) -> Path:
    target = template_gradebook(course_dir, hw)
    return target if target.is_file() else make_template(hw, course_dir)


def _gradebook(course_dir: Path, db_url: str | None = None):
    """The course's gradebook, or the one at ``db_url``."""
    return open_gradebook(db_url or gradebook_url(course_dir))


def assignment_max_score(hw: str, course_dir: Path) -> float:
    with _gradebook(course_dir) as gb:
        return float(gb.find_assignment(hw).max_score)


def read_scores(hw: str, student_id: str, course_dir: Path, *, db_url: str | None = None) -> tuple:
    """``(score, max_score, {grade_id: (score, max_score)})`` from the gradebook (the course's, or ``db_url``)."""
    with _gradebook(course_dir, db_url) as gb:
        submission = gb.find_submission(hw, student_id)
        tests = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                tests[grade.name] = (float(grade.score), float(grade.max_score))
        return float(submission.score), float(submission.max_score), tests


def preflight(hw: str, student_dir: Path) -> str | None:
    """Return why a submission cannot be graded, or ``None`` if it can (a quick check).

    The full pass -- find a renamed notebook, repair cells, flag tampering,
    quarantine -- is :func:`autograder.preflight.inspect_submission`, which
    every grading job runs.
    """
    import nbformat

    nb_path = Path(student_dir) / f"{hw}.ipynb"
    if not nb_path.is_file():
        return f"missing {hw}.ipynb"
    try:
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the student's, not ours
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"unreadable {hw}.ipynb: {type(exc).__name__}: {first[:200]}"
    return None


def _result(record: dict) -> GradeResult:
    tests = {k: tuple(v) for k, v in (record.get("tests") or {}).items()}
    reason = record.get("reason")
    if record["status"] in ("ok",) and not reason:
        reason = None
    return GradeResult(record["student_id"], float(record["score"]), float(record["max_score"]),
                       reason if record["status"] != "ok" else None, tests, record["status"],
                       record.get("assignment", ""), reason)


def _job(hw, student_id, folder, course_dir, max_score, *, cell_timeout=None, limits=None, digest=None,
         source_digest=None) -> dict:
    return {"hw": hw, "student": student_id, "folder": str(folder) if folder else None,
            "course_dir": str(Path(course_dir).resolve()), "max_score": float(max_score),
            "cell_timeout": cell_timeout, "limits": asdict(limits or Limits()), "digest": digest,
            "source_digest": source_digest}


def grade_one(hw: str, student_id: str, student_dir: Path, course_dir: Path, *,
              max_score: float | None = None, cell_timeout: int | None = None,
              timeout: int | None = None, limits: Limits | None = None) -> GradeResult:
    """Grade one student's submission in this process; never raises for a bad submission.

    The assignment must have been released into ``course_dir`` first (see
    :func:`release`). Writes the student's result record and merges it into
    the gradebook.
    """
    from .jobs import grade_job

    course_dir = Path(course_dir).resolve()
    ensure_template(hw, course_dir)
    if max_score is None:
        max_score = assignment_max_score(hw, course_dir)
    limits = limits or Limits()
    if timeout is not None:
        limits = replace(limits, notebook_timeout=float(timeout))
    path, _ = find_notebook(hw, student_dir)
    job = _job(hw, student_id, student_dir, course_dir, max_score, cell_timeout=cell_timeout, limits=limits,
               digest=digest_file(path), source_digest=source_digest(hw, course_dir))
    record = grade_job(job)
    with GradebookWriter(course_dir) as writer:
        writer.merge(record)
    return _result(record)


def student_dirs(submissions: Path) -> list:
    """One ``(student_id, folder)`` per sub-folder of ``submissions``, sorted by id."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist")
    return sorted((p.name, p) for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))


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


# ------------------------------------------------------------------ gradebook


class GradebookWriter:
    """The one writer of the course gradebook: merges result records into it.

    A graded record (with per-test scores) becomes a submission whose grades'
    ``auto_score`` are the record's; a record without grades (missing,
    malformed, crashed, timeout) removes any earlier submission of that
    student, so the gradebook always agrees with the records. Merging the same
    record twice changes nothing. On a shared database another grader may add
    the same student or submission between our read and our write: the merge
    is then rolled back and tried again.
    """

    ATTEMPTS = 5

    def __init__(self, course_dir: Path, db_url: str | None = None):
        self.url = db_url or gradebook_url(course_dir)
        self.gb = None

    def __enter__(self):
        self.gb = open_gradebook(self.url)
        return self

    def __exit__(self, *exc):
        self.gb.close()
        return False

    def merge(self, record: dict) -> None:
        import warnings

        from nbgrader.api import InvalidEntry
        from sqlalchemy.exc import DBAPIError

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
        from nbgrader.api import MissingEntry

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


# ----------------------------------------------------------------------- grade


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit="nb", desc="grading", file=sys.stderr, disable=not enabled, smoothing=0.1,
                dynamic_ncols=True)


def _log_line(rec: dict) -> str:
    status, reason = rec["status"], rec.get("reason")
    if status in ("missing", "malformed", "crashed", "timeout") and not rec.get("tests"):
        return f"{rec['student_id']}: score 0 [{status}] ({reason})"
    line = f"{rec['student_id']}: {rec['score']:g} / {rec['max_score']:g} [{status}]"
    return line + (f" ({reason})" if reason else "")


def grade(hw: str, submissions: Path | None = None, out: Path | None = None, course_dir: Path | None = None, *,
          cell_timeout: int | None = None, log=print, jobs: int = 1, students: Sequence[str] | None = None,
          force: bool = False, roster: Path | None = None, limits: Limits | None = None,
          progress: bool | None = None, release_first: bool = True, executor: str = "local",
          scheduler: str | None = None) -> list:
    """Grade every student folder in ``submissions`` (and every roster student) and optionally write the CSV.

    Releases ``hw`` into ``course_dir`` first when the solutions changed. Each
    student is one job on a pool of ``jobs`` worker processes; a student whose
    result record matches the current submission and source is skipped unless
    ``force``. A student whose notebook cannot be graded gets score 0, a status
    and a one-line reason (logged); the run goes on. Returns one
    :class:`GradeResult` per student, sorted by id.

    ``executor="dask"`` sends the same jobs to the Dask distributed cluster
    whose scheduler is at ``scheduler`` (see :mod:`autograder.dask_executor`)
    instead of local worker processes; ``jobs`` is then unused.
    """
    from .pool import GRACE_SECONDS, run_jobs

    if executor not in ("local", "dask"):
        raise GradingError(f"unknown executor {executor!r}: local or dask")
    if executor == "dask" and not scheduler:
        raise GradingError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    if submissions is None:
        submissions = course_dir / "collected" / hw
    folders = dict(student_dirs(submissions))
    if roster is None and (course_dir / "roster.csv").is_file():
        roster = course_dir / "roster.csv"
    elif roster is not None:
        course_dir.mkdir(parents=True, exist_ok=True)
        if Path(roster).resolve() != (course_dir / "roster.csv").resolve():
            shutil.copyfile(roster, course_dir / "roster.csv")
    on_roster = read_roster(roster) if roster is not None else []
    everyone = sorted(set(folders) | set(on_roster))
    if students:
        unknown = sorted(set(students) - set(everyone))
        if unknown:
            raise GradingError(f"no submission folder and no roster entry for {', '.join(unknown)}")
        everyone = [s for s in everyone if s in set(students)]
    if release_first:
        release(hw, course_dir, force=False)
    ensure_template(hw, course_dir)
    max_score = assignment_max_score(hw, course_dir)
    src_digest = source_digest(hw, course_dir)
    limits = limits or Limits()
    for s in sorted(set(folders) - set(on_roster)) if on_roster else []:
        log(f"warning: {s} is not on the roster (graded anyway)")

    todo, records = [], {}
    for student in everyone:
        folder = folders.get(student)
        path = find_notebook(hw, folder)[0] if folder is not None else None
        digest = digest_file(path)
        old = read_record(course_dir, hw, student)
        if not force and old is not None and old.get("digest") == digest \
                and old.get("source_digest") == src_digest:
            records[student] = old
            continue
        todo.append(_job(hw, student, folder, course_dir, max_score, cell_timeout=cell_timeout, limits=limits,
                         digest=digest, source_digest=src_digest))
    if records:
        log(f"{len(records)} students already graded (use --force to re-grade), {len(todo)} to grade")

    bar = _progress(len(todo), sys.stderr.isatty() if progress is None else progress)
    say = log
    if bar is not None and not bar.disable and log is print:
        say = bar.write

    with GradebookWriter(course_dir) as writer:
        for rec in records.values():  # a run killed between a record and its merge is completed here
            writer.merge(rec)

        def on_result(rec):
            records[rec["student_id"]] = rec
            writer.merge(rec)
            say(_log_line(rec))
            if bar is not None:
                bar.update(1)

        if todo:
            cell = cell_timeout or 60
            deadline = limits.notebook_timeout + cell + GRACE_SECONDS
            if executor == "dask":
                from .dask_executor import run_jobs_on_cluster
                run_jobs_on_cluster(todo, scheduler, deadline_s=deadline, on_result=on_result, log=say)
            else:
                run_jobs(todo, jobs, worker_env(), deadline_s=deadline, on_result=on_result)
    if bar is not None:
        bar.close()
    results = [_result(records[s]) for s in everyone if s in records]
    if out is not None:
        write_csv(results, out)
    return results


# ----------------------------------------------------------------------- export


def load_records(course_dir: Path, hw: str | None = None) -> list:
    """Every result record in the course (or of one homework), sorted by assignment and student."""
    base = Path(course_dir).resolve() / "results"
    hws = [hw] if hw else sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    out = []
    for h in hws:
        for path in sorted((base / h).glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except ValueError:
                continue
    return out


def export(course_dir: Path | None = None, hw: str | None = None, to: Path | None = None, *,
           roster: Path | None = None, with_reason: bool = False) -> list:
    """Rows ``student_id, assignment, score, max_score, status`` (one per student and assignment).

    Students on the roster without a record get a ``missing`` row with score 0.
    """
    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    records = load_records(course_dir, hw)
    if roster is None and (course_dir / "roster.csv").is_file():
        roster = course_dir / "roster.csv"
    on_roster = read_roster(roster) if roster else []
    hws = [hw] if hw else sorted({r["assignment"] for r in records})
    rows = {(r["assignment"], r["student_id"]): r for r in records}
    for h in hws:
        max_score = next((r["max_score"] for r in records if r["assignment"] == h), None)
        if max_score is None:
            try:
                max_score = assignment_max_score(h, course_dir)
            except Exception:  # noqa: BLE001 - never released here
                max_score = 0.0
        for s in on_roster:
            rows.setdefault((h, s), {"student_id": s, "assignment": h, "score": 0.0, "max_score": max_score,
                                     "status": "missing", "reason": "no submission"})
    ordered = [rows[k] for k in sorted(rows)]
    if to is not None:
        to = Path(to)
        to.parent.mkdir(parents=True, exist_ok=True)
        with to.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_COLUMNS + (("reason",) if with_reason else ()))
            for r in ordered:
                row = [r["student_id"], r["assignment"], f"{float(r['score']):g}", f"{float(r['max_score']):g}",
                       r["status"]]
                writer.writerow(row + ([r.get("reason") or ""] if with_reason else []))
    return ordered


# ---------------------------------------------------------------------- collect

# nbgrader's ZipCollectApp default (Blackboard-style names), and a Moodle/Canvas-style fallback.
ZIP_PATTERNS = (r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>.+)",
                r"(?P<student_id>[^_/]+)_(?:\d+_)*(?:assignsubmission_file_|late_)?(?P<file_id>[^/]+\.ipynb)")


def collect(hw: str, source: Path, course_dir: Path | None = None, *, roster: Path | None = None,
            regex: str | None = None) -> int:
    """Copy submissions into ``<course>/collected/<hw>/<student>/``; return how many students.

    ``source`` is a folder of per-student folders, or an LMS zip whose member
    names carry the student id (``regex`` with a ``student_id`` group; by
    default nbgrader zip_collect's pattern, then a ``<id>_..._<file>`` one).
    The submission time stays with the submission: a folder's nbgrader
    ``timestamp.txt`` is copied with it, and a zip member name's ``timestamp``
    group (Blackboard's ``..._attempt_2026-10-05-23-59-00_...``) is written to the
    student's ``timestamp.txt`` (the latest, when a student has several files).
    """
    import re
    import zipfile

    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    dest = course_dir / "collected" / hw
    dest.mkdir(parents=True, exist_ok=True)
    if roster is not None:
        shutil.copyfile(roster, course_dir / "roster.csv")
    seen = set()
    source = Path(source)
    if source.is_dir():
        for student, folder in student_dirs(source):
            target = dest / student
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target, symlinks=False, ignore_dangling_symlinks=True)
            seen.add(student)
    elif zipfile.is_zipfile(source):
        patterns = [re.compile(regex)] if regex else [re.compile(p) for p in ZIP_PATTERNS]
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                if info.is_dir() or info.file_size > 50 * 1024 ** 2:
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
