"""One student's grading job: preflight, autograde in a private scratch course, a result record.

A job never touches the course's gradebook. It grades in
``<course>/work/<hw>/<student>.XXXX/`` -- a fresh scratch nbgrader root with its own copy of
the assignment's template gradebook (no other students in it) and the repaired
notebook -- and finishes by writing one JSON *result record*
(``<course>/results/<hw>/<student>.json``) with ``os.replace``, so a record is
either complete or absent. The grading process (one writer) merges records into
the real gradebook. Workers therefore never contend for SQLite, and a run that
is killed loses at most the jobs in flight.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .sandbox import TRUNCATED_MARK, Limits, Watchdog, cleanup_runtime_dirs

PACKAGE_DIR = Path(__file__).resolve().parent
STATUSES = ("ok", "timeout", "crashed", "malformed", "missing", "tampered")
MAX_EXTRA_FILE_BYTES = 5 * 1024 ** 2


def results_dir(course_dir: Path, hw: str) -> Path:
    return Path(course_dir) / "results" / hw


def record_path(course_dir: Path, hw: str, student: str) -> Path:
    return results_dir(course_dir, hw) / f"{student}.json"


def template_gradebook(course_dir: Path, hw: str) -> Path:
    return Path(course_dir) / "work" / hw / "template.db"


def sqlite_url(folder: Path) -> str:
    """nbgrader's default gradebook: SQLite in ``folder``."""
    return f"sqlite:///{Path(folder).resolve() / 'gradebook.db'}"


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_record(course_dir: Path, hw: str, student: str):
    try:
        return json.loads(record_path(course_dir, hw, student).read_text())
    except (OSError, ValueError):
        return None


def make_record(job: dict, *, score=0.0, status="ok", reason=None, tests=None, notes=(), tampering=(),
                seconds=0.0) -> dict:
    return {
        "student_id": job["student"], "assignment": job["hw"], "score": float(score),
        "max_score": float(job["max_score"]), "status": status, "reason": reason,
        "tests": {k: list(v) for k, v in (tests or {}).items()}, "notes": list(notes),
        "tampering": list(tampering), "digest": job.get("digest"), "source_digest": job.get("source_digest"),
        "seconds": round(float(seconds), 2),
    }


_CONFIG_CACHE: dict = {}


def _config(cell_timeout):
    """nbgrader's configuration, from autograder/nbgrader_config.py, loaded once per worker."""
    from traitlets.config.loader import PyFileConfigLoader

    if "base" not in _CONFIG_CACHE:
        _CONFIG_CACHE["base"] = PyFileConfigLoader("nbgrader_config.py", path=str(PACKAGE_DIR)).load_config()
    cfg = _CONFIG_CACHE["base"].copy()
    if cell_timeout is not None:
        cfg.Execute.timeout = int(cell_timeout)
    return cfg


def _released(course_dir: Path, hw: str):
    import nbformat

    path = Path(course_dir) / "release" / hw / f"{hw}.ipynb"
    key = ("released", str(path), path.stat().st_mtime_ns)
    if key not in _CONFIG_CACHE:
        _CONFIG_CACHE[key] = nbformat.read(path, as_version=4)
    return _CONFIG_CACHE[key]


def quarantine(course_dir: Path, hw: str, student: str, folder: Path, reason: str) -> Path:
    dest = Path(course_dir) / "quarantine" / hw / student
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if folder is not None and Path(folder).is_dir():
        for path in Path(folder).rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= 25 * 1024 ** 2:
                target = dest / "files" / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    (dest / "REASON.txt").write_text(reason + "\n")
    return dest


def _outcome_notes(nb, limits: Limits, cell_timeout) -> tuple:
    """``(timed_out, notes)`` read from the executed notebook's outputs."""
    notes, timed_out = [], False
    for k, cell in enumerate(nb.cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {k}"
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename = out.get("ename", "")
                if ename == "CellTimeoutError":
                    timed_out = True
                    notes.append(f"{where} ran past the {cell_timeout} s cell limit")
                elif ename == "StdinNotImplementedError":
                    notes.append(f"{where} called input(), which is not available while grading")
                elif ename == "SystemExit":
                    notes.append(f"{where} called sys.exit()")
                elif ename == "MemoryError":
                    notes.append(f"{where} ran out of memory (cap {limits.memory_bytes} bytes)")
            elif out.get("output_type") == "stream" and TRUNCATED_MARK in out.get("text", ""):
                if not any("were dropped" in n for n in notes):
                    notes.append(f"outputs past {limits.output_bytes} bytes were dropped (from {where} on)")
    return timed_out, list(dict.fromkeys(notes))


def _copy_extra_files(src_folder: Path, nb_path: Path, dest: Path, hw: str) -> None:
    total = 0
    for path in sorted(Path(src_folder).rglob("*")):
        if path == nb_path or path.suffix == ".ipynb" or path.is_symlink() or not path.is_file():
            continue
        if ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        size = path.stat().st_size
        if total + size > MAX_EXTRA_FILE_BYTES:
            continue
        total += size
        target = dest / path.relative_to(src_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _publish(folder: Path, final: Path) -> None:
    """Copy ``folder`` to ``final`` (the executed notebook feedback reads), replacing it as a whole.

    A lock file serialises the swap between graders that publish the same
    student at once (two people grading overlapping lists, say).
    """
    import fcntl

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


def grade_job(job: dict) -> dict:
    """Grade one student; return (and write) the result record. Never raises for a bad submission.

    ``job``: hw, student, folder, course_dir, max_score, digest, source_digest,
    cell_timeout, limits (a dict of :class:`Limits`).
    """
    import nbformat

    started = time.monotonic()
    hw, student = job["hw"], job["student"]
    course = Path(job["course_dir"])
    limits = Limits(**(job.get("limits") or {}))
    os.environ["AUTOGRADER_LIMITS"] = limits.to_env()
    folder = Path(job["folder"]) if job.get("folder") else None

    def finish(**kw):
        rec = make_record(job, seconds=time.monotonic() - started, **kw)
        write_json_atomic(record_path(course, hw, student), rec)
        return rec

    if folder is None:
        return finish(status="missing", reason=f"missing {hw}.ipynb (no submission)")
    from .preflight import inspect_submission

    pf = inspect_submission(hw, folder, _released(course, hw))
    if pf.status is not None:
        quarantine(course, hw, student, folder, pf.reason)
        return finish(status=pf.status, reason=pf.reason, notes=pf.notes)

    # a private root per run: two graders (or a re-run) grading one student never share it
    (course / "work" / hw).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"{student}.", dir=course / "work" / hw))
    (root / "submitted" / student / hw).mkdir(parents=True)
    (root / "source").symlink_to(course / "source", target_is_directory=True)
    shutil.copyfile(template_gradebook(course, hw), root / "gradebook.db")
    sub_dir = root / "submitted" / student / hw
    nbformat.write(pf.notebook, sub_dir / f"{hw}.ipynb")
    _copy_extra_files(folder, pf.path, sub_dir, hw)

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = _config(job.get("cell_timeout"))
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.db_url = sqlite_url(root)  # never the course's gradebook, whatever the config says
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    with Watchdog(limits.notebook_timeout) as dog:
        result = api.autograde(hw, student, force=True, create=True)
    autograded = root / "autograded" / student / hw
    notes, tampering = list(pf.notes), list(pf.tampering)
    cell_timeout = job.get("cell_timeout") or cfg.Execute.timeout
    try:
        if dog.fired:
            return finish(status="timeout", reason=f"the notebook ran past the {limits.notebook_timeout:g} s "
                                                   "limit and was stopped", notes=notes, tampering=tampering)
        if not result.get("success") or not (autograded / f"{hw}.ipynb").is_file():
            log = (result.get("log") or "") + (result.get("error") or "")
            if "CellTimeoutError" in log:
                return finish(status="timeout", reason=f"a cell ran past the {cell_timeout} s cell limit and "
                                                       "could not be interrupted", notes=notes, tampering=tampering)
            if "unresponsive" in log or "DeadKernel" in log or "Kernel died" in log or "kernel died" in log:
                reason = "the kernel died (os._exit, a crash, or the memory cap)"
            else:
                lines = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln]
                reason = "autograde failed: " + (lines[-1].strip()[:300] if lines else "see the grader log")
            return finish(status="crashed", reason=reason, notes=notes, tampering=tampering)
        from .grading import read_scores

        score, _, tests = read_scores(hw, student, root, db_url=sqlite_url(root))
        executed = nbformat.read(autograded / f"{hw}.ipynb", as_version=4)
        timed_out, more = _outcome_notes(executed, limits, cell_timeout)
        notes += more
        _publish(autograded, course / "autograded" / student / hw)
        status = "tampered" if tampering else ("timeout" if timed_out else "ok")
        reason = "; ".join(tampering + notes) or None
        return finish(score=score, status=status, reason=reason, tests=tests, notes=notes, tampering=tampering)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        cleanup_runtime_dirs()


def failure_record(job: dict, status: str, reason: str, *, seconds: float = 0.0, **extra) -> dict:
    """Write and return the record of a job that left none itself (its worker raised, died or hung)."""
    record = {**make_record(job, status=status, reason=reason, seconds=seconds), **extra}
    try:
        write_json_atomic(record_path(job["course_dir"], job["hw"], job["student"]), record)
    except OSError:
        pass
    return record


def grade_job_guarded(job: dict) -> dict:
    """:func:`grade_job`, with a grader bug turned into a ``crashed`` record for this student alone."""
    import traceback

    try:
        return grade_job(job)
    except BaseException as exc:  # noqa: BLE001 - one student's failure must not stop the rest
        return failure_record(job, "crashed", f"grader error: {type(exc).__name__}: {str(exc)[:300]}",
                              traceback=traceback.format_exc()[-4000:])
