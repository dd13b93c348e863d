"""Release and grade homework with nbgrader, one stage per function.

The course directory is nbgrader's working root::

    <course_dir>/
      nbgrader_config.py        copied from autograder/nbgrader_config.py
      gradebook.db              SQLite gradebook
      source/<hw>/<hw>.ipynb    copied from solutions/<hw>/ (the instructor's version)
      release/<hw>/<hw>.ipynb   the student version (nbgrader generate_assignment)
      submitted/<student>/<hw>/<hw>.ipynb
      autograded/<student>/<hw>/<hw>.ipynb

nbgrader runs as a subprocess of the current interpreter (``python -m
nbgrader``), with that interpreter's ``bin`` directory first on ``PATH``
(nbgrader's gradebook calls ``alembic`` as a command). A subprocess per student
keeps one bad notebook from taking the grader down, and is the unit a worker
pool or a sandbox can take over later: :func:`grade` is a loop over
:func:`grade_one`.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
DEFAULT_COURSE_DIR = PACKAGE_DIR / "_course"
CONFIG_TEMPLATE = PACKAGE_DIR / "nbgrader_config.py"
CSV_COLUMNS = ("student_id", "score", "max_score")


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


# ---------------------------------------------------------------- nbgrader runs


def nbgrader_env(base: Mapping[str, str] | None = None) -> dict:
    """The environment for nbgrader: the interpreter's ``bin`` first on PATH."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def run_nbgrader(args: Sequence[str], course_dir: Path, *, timeout: int | None = None,
                 cell_timeout: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader <args>`` in ``course_dir`` and capture its output.

    ``timeout`` bounds the whole run (seconds); ``cell_timeout`` overrides
    ``Execute.timeout`` from the config file.
    """
    course_dir = Path(course_dir).resolve()
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    if cell_timeout is not None:
        cmd.append(f"--Execute.timeout={int(cell_timeout)}")
    return subprocess.run(cmd, cwd=course_dir, env=nbgrader_env(), capture_output=True, text=True,
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


def release(hw: str, course_dir: Path | None = None, *, solutions_dir: Path = SOLUTIONS_DIR) -> Path:
    """Generate the student version of ``hw``; return the path of its notebook.

    Runs ``nbgrader generate_assignment --force``, which also records the
    assignment's graded cells in the gradebook, and writes
    ``<course_dir>/release/<hw>/<hw>.ipynb``.
    """
    course_dir = prepare_course(hw, course_dir, solutions_dir=solutions_dir)
    proc = run_nbgrader(["generate_assignment", hw, "--force"], course_dir)
    released = course_dir / "release" / hw / f"{hw}.ipynb"
    if proc.returncode != 0 or not released.is_file():
        raise GradingError(f"nbgrader generate_assignment {hw} failed:\n{_tail(proc)}")
    return released


def _gradebook(course_dir: Path):
    from nbgrader.api import Gradebook  # imported late: the CLI's --help should not pay for it
    return Gradebook(f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}")


def assignment_max_score(hw: str, course_dir: Path) -> float:
    with _gradebook(course_dir) as gb:
        return float(gb.find_assignment(hw).max_score)


def read_scores(hw: str, student_id: str, course_dir: Path) -> tuple:
    """``(score, max_score, {grade_id: (score, max_score)})`` from the gradebook."""
    with _gradebook(course_dir) as gb:
        submission = gb.find_submission(hw, student_id)
        tests = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                tests[grade.name] = (float(grade.score), float(grade.max_score))
        return float(submission.score), float(submission.max_score), tests


def preflight(hw: str, student_dir: Path) -> str | None:
    """Return why a submission cannot be graded, or ``None`` if it can."""
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


def grade_one(hw: str, student_id: str, student_dir: Path, course_dir: Path, *,
              max_score: float | None = None, cell_timeout: int | None = None,
              timeout: int | None = None) -> GradeResult:
    """Grade one student's submission; never raises for a bad submission.

    Copies ``student_dir/<hw>.ipynb`` to ``submitted/<student_id>/<hw>/``, runs
    ``nbgrader autograde --force`` for that student only and reads the scores
    back from the gradebook. The assignment must have been released into
    ``course_dir`` first (see :func:`release`).
    """
    course_dir = Path(course_dir).resolve()
    if max_score is None:
        max_score = assignment_max_score(hw, course_dir)
    reason = preflight(hw, student_dir)
    if reason is not None:
        return GradeResult(student_id, 0.0, max_score, reason)

    dest = course_dir / "submitted" / student_id / hw
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copyfile(Path(student_dir) / f"{hw}.ipynb", dest / f"{hw}.ipynb")
    try:
        proc = run_nbgrader(["autograde", hw, f"--student={student_id}", "--force"], course_dir,
                            timeout=timeout, cell_timeout=cell_timeout)
    except subprocess.TimeoutExpired:
        return GradeResult(student_id, 0.0, max_score, f"autograde took longer than {timeout} s")
    if proc.returncode != 0:
        return GradeResult(student_id, 0.0, max_score, f"autograde failed: {_error_line(proc)[:300]}")
    try:
        score, max_score, tests = read_scores(hw, student_id, course_dir)
    except Exception as exc:  # noqa: BLE001 - e.g. nbgrader skipped the notebook
        return GradeResult(student_id, 0.0, max_score, f"no grade in the gradebook: {exc}")
    return GradeResult(student_id, score, max_score, None, tests)


def student_dirs(submissions: Path) -> list:
    """One ``(student_id, folder)`` per sub-folder of ``submissions``, sorted by id."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist")
    return sorted((p.name, p) for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))


def write_csv(results: Sequence[GradeResult], out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow([r.student_id, f"{r.score:g}", f"{r.max_score:g}"])
    return out


def grade(hw: str, submissions: Path, out: Path | None = None, course_dir: Path | None = None, *,
          cell_timeout: int | None = None, log=print) -> list:
    """Grade every student folder in ``submissions`` and (optionally) write the CSV.

    Releases ``hw`` into ``course_dir`` first, so the gradebook always holds
    the current source's tests. A student whose notebook cannot be graded gets
    score 0 and a one-line reason (logged); the run goes on.
    """
    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    students = student_dirs(submissions)
    release(hw, course_dir)
    max_score = assignment_max_score(hw, course_dir)
    results = []
    for student_id, folder in students:
        try:
            result = grade_one(hw, student_id, folder, course_dir, max_score=max_score,
                               cell_timeout=cell_timeout)
        except Exception as exc:  # noqa: BLE001 - one student's failure must not stop the others
            result = GradeResult(student_id, 0.0, max_score, f"grader error: {type(exc).__name__}: {exc}")
        if result.reason:
            log(f"{student_id}: score 0 ({result.reason})")
        else:
            log(f"{student_id}: {result.score:g} / {result.max_score:g}")
        results.append(result)
    if out is not None:
        write_csv(results, out)
    return results
