"""Fixtures of the term tests: what the grader writes (result records, collected folders with timestamps)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def write_record(course: Path, hw: str, student: str, tests: dict, *, status: str = "ok", reason=None,
                 seconds: float = 3.0) -> dict:
    """A result record as the grader writes it: ``tests`` is ``{grade_id: (points, max)}``."""
    rec = {"student_id": student, "assignment": hw, "score": float(sum(p for p, _ in tests.values())),
           "max_score": float(sum(m for _, m in tests.values())), "status": status, "reason": reason,
           "tests": {k: [float(p), float(m)] for k, (p, m) in tests.items()}, "notes": [], "tampering": [],
           "digest": f"d-{student}", "source_digest": "s", "seconds": seconds}
    path = Path(course) / "results" / hw / f"{student}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return rec


def write_missing(course: Path, hw: str, student: str, max_score: float) -> None:
    rec = {"student_id": student, "assignment": hw, "score": 0.0, "max_score": float(max_score),
           "status": "missing", "reason": f"missing {hw}.ipynb", "tests": {}, "digest": None,
           "source_digest": "s", "seconds": 0.0}
    path = Path(course) / "results" / hw / f"{student}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


def collected(course: Path, hw: str, student: str, stamp: str | None, nb=None) -> Path:
    folder = Path(course) / "collected" / hw / student
    folder.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        (folder / "timestamp.txt").write_text(stamp + "\n")
    if nb is not None:
        nbformat.write(nb, folder / f"{hw}.ipynb")
    return folder


def _meta(gid, *, locked=False, solution=False, grade=False, points=None):
    m = {"grade_id": gid, "locked": locked, "solution": solution, "grade": grade, "schema_version": 3,
         "task": False}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def released_notebook(functions: dict, tests: dict) -> nbformat.NotebookNode:
    """A released notebook: a setup cell, one stub solution cell per function, one public test cell each.

    ``functions`` maps a grade_id to the stub source; ``tests`` maps a test grade_id to its source.
    """
    cells = [new_markdown_cell("# Homework", metadata=_meta("intro", locked=True)),
             new_code_cell("import numpy as np", metadata=_meta("setup", locked=True))]
    for (gid, stub), (tid, test) in zip(functions.items(), tests.items()):
        cells.append(new_code_cell(stub, metadata=_meta(gid, solution=True)))
        cells.append(new_code_cell(test, metadata=_meta(tid, locked=True, grade=True, points=1)))
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def student_notebook(released, solutions: dict, extra_cells=()) -> nbformat.NotebookNode:
    """``released`` with each solution cell's source replaced from ``solutions`` (grade_id -> source)."""
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell.source = solutions[gid]
    nb.cells.extend(new_code_cell(src) for src in extra_cells)
    return nb
