"""Grade a homework 4 or 5 corpus case in-process: the verdict the grader reaches for honest code.

A case is the solution notebook with edits to its solution cells; each graded test cell runs with
``student`` bound to the namespace the edited notebook's code cells built (issue 12's contract:
``exec(test_cell, {"student": student_in(ns)})``). ``COURSEKIT_SEED`` fixes the hidden cases.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursekit.homework import student_in

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    """One corpus submission: ``edits`` are ``(solution cell, old text, new text)``; ``lost`` the
    graded cells it must fail (empty for a correct variant)."""

    name: str
    edits: tuple
    lost: tuple = ()
    why: str = ""


def source(hw: str):
    return nbformat.read(REPO / "solutions" / hw / f"{hw}.ipynb", as_version=4)


def _gid(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def edited(nb, case: Case):
    """A copy of ``nb`` with the case's edits applied; every edit must match exactly once."""
    nb = nbformat.from_dict(nb)
    by_id = {_gid(c): c for c in nb.cells}
    for gid, old, new in case.edits:
        assert by_id[gid].source.count(old) == 1, (case.name, gid, old)
        by_id[gid].source = by_id[gid].source.replace(old, new)
    return nb


def test_cells(nb) -> dict:
    """The automatically graded test cells, by grade_id."""
    return {_gid(c): c.source for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def namespace(nb) -> dict:
    """Run every code cell that is not a graded test, in order, as the student's kernel would."""
    ns: dict = {"__name__": "__main__"}
    tests = test_cells(nb)
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in nb.cells:
            if cell.cell_type == "code" and _gid(cell) not in tests:
                exec(compile(cell.source, f"<{_gid(cell)}>", "exec"), ns)  # noqa: S102
    return ns


def failing(ns: dict, tests: dict, seed: int, only=None) -> dict:
    """``{grade_id: error message}`` of the test cells (or ``only`` those) that fail with this seed."""
    failed = {}
    os.environ["COURSEKIT_SEED"] = str(seed)
    try:
        for gid, src in tests.items():
            if only is not None and gid not in only:
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(compile(src, f"<{gid}>", "exec"), {"student": student_in(ns)})  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - any exception fails the cell, as in the grader
                failed[gid] = f"{type(exc).__name__}: {exc}"
    finally:
        os.environ.pop("COURSEKIT_SEED", None)
    return failed
