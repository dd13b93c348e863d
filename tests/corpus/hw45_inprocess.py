"""Grade a homework 4 or 5 corpus case in-process: the verdict the grader reaches for honest code.

A case is the solution notebook with edits to its solution cells; each graded test cell runs with
``student`` bound to the namespace the edited notebook's code cells built (issue 12's contract:
``exec(test_cell, {"student": student_in(ns)})``). ``COURSEKIT_SEED`` fixes the hidden cases.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

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


def source(hw: str) -> list:
    """The solution notebook's cells as ``(grade_id, cell type, is a graded test, source)`` (plain JSON:
    no Jupyter package needed, so the escape-rate script runs wherever numpy and torch do)."""
    nb = json.loads((REPO / "solutions" / hw / f"{hw}.ipynb").read_text(encoding="utf-8"))
    cells = []
    for c in nb["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        text = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        cells.append([meta.get("grade_id", ""), c["cell_type"], bool(meta.get("grade")), text])
    return cells


def edited(nb: list, case: Case) -> list:
    """A copy of ``nb`` with the case's edits applied; every edit must match exactly once."""
    nb = copy.deepcopy(nb)
    by_id = {c[0]: c for c in nb}
    for gid, old, new in case.edits:
        assert by_id[gid][3].count(old) == 1, (case.name, gid, old)
        by_id[gid][3] = by_id[gid][3].replace(old, new)
    return nb


def test_cells(nb: list) -> dict:
    """The automatically graded test cells, by grade_id."""
    return {gid: text for gid, kind, graded, text in nb if kind == "code" and graded}


def namespace(nb: list) -> dict:
    """Run every code cell that is not a graded test, in order, as the student's kernel would."""
    ns: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for gid, kind, graded, text in nb:
            if kind == "code" and not graded:
                exec(compile(text, f"<{gid}>", "exec"), ns)  # noqa: S102
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
