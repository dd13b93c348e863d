"""Regrade an assignment after a test was fixed, and show what changed before anyone sees it.

``regrade(hw)`` keeps a copy of the current result records in
``<course>/regrades/<hw>/<stamp>/before/``, releases the fixed source and grades
again (a record made with the old source is stale, so every student is graded
anew), then writes ``changes.csv``: per student the old and new score and the
tests whose points changed. Until ``publish(hw)`` the regrade is *pending* and
``export`` and ``feedback`` refuse to run, so no new grade leaves the course
folder unreviewed. Overrides live apart from the records and stay in force.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import grading
from . import overrides as ovr
from .finals import points
from .layout import Course as CourseFolder
from .preflight import find_notebook
from .files import write_text_atomic
from .term import TermError

PENDING = "PENDING"
_EDITED = re.compile(r"^edited locked cell (\S+) \(restored\)$")


@dataclass(frozen=True)
class Change:
    student_id: str
    old_score: float | None  # None: no record before
    new_score: float | None
    tests: tuple              # (grade_id, old points, new points) for every test whose points changed
    old_status: str = ""
    new_status: str = ""


def regrades_dir(course_dir: Path, hw: str) -> Path:
    return Path(course_dir) / "regrades" / hw


def pending(course_dir: Path, hw: str) -> Path | None:
    """The folder of ``hw``'s regrade waiting for review, if any."""
    marker = regrades_dir(course_dir, hw) / PENDING
    return regrades_dir(course_dir, hw) / marker.read_text().strip() if marker.is_file() else None


def check_published(course_dir: Path, hw: str | None) -> None:
    """Raise :class:`TermError` if a regrade of ``hw`` (or of any assignment) waits for review."""
    base = Path(course_dir) / "regrades"
    hws = [hw] if hw else sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    for h in hws:
        where = pending(course_dir, h)
        if where is not None:
            raise TermError(f"the regrade of {h} waits for review ({where / 'changes.csv'}): "
                            f"run `regrade {h} --publish` first")


def diff_records(old: dict, new: dict) -> list:
    """One :class:`Change` per student whose score, status or test points differ."""
    out = []
    for s in sorted(set(old) | set(new)):
        a, b = old.get(s), new.get(s)
        ta, tb = (a or {}).get("tests") or {}, (b or {}).get("tests") or {}
        tests = tuple((t, _pts(ta.get(t)), _pts(tb.get(t))) for t in sorted(set(ta) | set(tb))
                      if _pts(ta.get(t)) != _pts(tb.get(t)))
        sa = float(a["score"]) if a else None
        sb = float(b["score"]) if b else None
        st_a, st_b = (a or {}).get("status", ""), (b or {}).get("status", "")
        if sa != sb or tests or st_a != st_b:
            out.append(Change(s, sa, sb, tests, st_a, st_b))
    return out


def _pts(v):
    return None if v is None else float(v[0])


def regrade(hw: str, course_dir: Path, *, log=print, solutions_dir: Path = grading.SOLUTIONS_DIR,
            **grade_kwargs) -> list:
    """Release the fixed ``hw``, grade everyone again, write and return the changes (pending review).

    An interrupted regrade is resumed by running it again: the records from before
    it began stay in the pending folder, and students already regraded are skipped.
    """
    course_dir = Path(course_dir).resolve()
    folder = pending(course_dir, hw) or _start(course_dir, hw)
    before = {}
    for path in sorted((folder / "before").glob("*.json")) if (folder / "before").is_dir() else []:
        rec = json.loads(path.read_text())
        before[rec["student_id"]] = rec
    _keep_release(course_dir, hw)
    grading.release(hw, course_dir, solutions_dir=solutions_dir, force=False)
    grading.grade(hw, course_dir=course_dir, log=log, release_first=False, **grade_kwargs)
    forgive_earlier_releases(course_dir, hw)
    after = {r["student_id"]: r for r in grading.load_records(course_dir, hw)}
    changes = diff_records(before, after)
    write_changes(changes, folder / "changes.csv", ovr.active(course_dir, hw), hw)
    return changes


def _start(course_dir: Path, hw: str) -> Path:
    """Keep the current records in a new pending folder (copied first, then marked pending)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = regrades_dir(course_dir, hw) / stamp
    src = CourseFolder.at(course_dir).results(hw)
    tmp = regrades_dir(course_dir, hw) / f".{stamp}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if src.is_dir():
        shutil.copytree(src, tmp / "before")
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    write_text_atomic(regrades_dir(course_dir, hw) / PENDING, stamp + "\n")
    return folder


def _keep_release(course_dir: Path, hw: str) -> None:
    """Keep the notebook the students were given: their locked cells are this version's."""
    current = CourseFolder.at(course_dir).released(hw)
    if current.is_file():
        data = current.read_bytes()
        name = hashlib.sha256(data).hexdigest()[:16] + ".ipynb"
        target = regrades_dir(course_dir, hw) / "releases" / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)


def _locked_versions(course_dir: Path, hw: str) -> dict:
    """``{grade_id: {normalised source}}`` of the locked cells of every earlier release of ``hw``."""
    out: dict = {}
    for path in sorted((regrades_dir(course_dir, hw) / "releases").glob("*.ipynb")):
        for cell in json.loads(path.read_text()).get("cells", []):
            meta = (cell.get("metadata") or {}).get("nbgrader") or {}
            if meta.get("locked") and meta.get("grade_id"):
                out.setdefault(meta["grade_id"], set()).add(_norm(_src(cell)))
    return out


def _src(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def forgive_earlier_releases(course_dir: Path, hw: str) -> int:
    """Un-flag locked cells that are an earlier release's version, not the student's edit; return how many records.

    After a test is fixed, every student's notebook still holds the test as it was
    handed out. The grader restores the current version either way; this only
    moves the finding from ``tampering`` to ``notes`` (and the status back to ok).
    """
    versions = _locked_versions(course_dir, hw)
    changed = 0
    for rec in grading.load_records(course_dir, hw):
        if rec.get("status") != "tampered":
            continue
        kept, notes = [], list(rec.get("notes") or [])
        cells = _student_cells(course_dir, hw, rec["student_id"])
        for finding in rec.get("tampering") or []:
            m = _EDITED.match(finding)
            if m and m.group(1) in cells and cells[m.group(1)] in versions.get(m.group(1), set()):
                notes.append(f"cell {m.group(1)} is from an earlier release (replaced by the fixed one)")
            else:
                kept.append(finding)
        if len(kept) < len(rec.get("tampering") or []):
            rec.update(tampering=kept, notes=notes, status="tampered" if kept else "ok",
                       reason="; ".join(kept + notes) or None)
            write_text_atomic(CourseFolder.at(course_dir).record(hw, rec["student_id"]),
                              json.dumps(rec, indent=1, sort_keys=True))
            changed += 1
    return changed


def _student_cells(course_dir: Path, hw: str, student: str) -> dict:
    path, _ = find_notebook(hw, CourseFolder.at(course_dir).collected(hw) / student)
    try:
        cells = json.loads(Path(path).read_text()).get("cells", []) if path else []
    except (OSError, ValueError):
        return {}
    out = {}
    for cell in cells if isinstance(cells, list) else []:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {} if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and meta.get("grade_id"):
            out.setdefault(meta["grade_id"], _norm(_src(cell)))
    return out


def write_changes(changes: list, to: Path, in_force: dict, hw: str) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student_id", "old_score", "new_score", "old_status", "new_status", "tests_changed",
                "overrides_in_force"])
    for c in changes:
        tests = "; ".join(f"{t}: {_txt(a)} -> {_txt(b)}" for t, a, b in c.tests)
        kept = "; ".join(ovr.describe(e) for e in in_force.get((hw, c.student_id), {}).values())
        w.writerow([c.student_id, _txt(c.old_score), _txt(c.new_score), c.old_status, c.new_status, tests, kept])
    return write_text_atomic(to, buf.getvalue())


def _txt(x) -> str:
    return "-" if x is None else points(x)


def publish(hw: str, course_dir: Path) -> Path:
    """End the review of ``hw``'s regrade: export and feedback show the new grades from now on."""
    where = pending(course_dir, hw)
    if where is None:
        raise TermError(f"no regrade of {hw} waits for review")
    (regrades_dir(course_dir, hw) / PENDING).unlink()
    return where
