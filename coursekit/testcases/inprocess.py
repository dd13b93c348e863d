"""Grade a homework notebook's test cells in this process, as the trusted grader would for honest code.

``exec`` the setup and solution cells (with edits: a corpus case's bug) into a
namespace, then run each graded test cell with ``student`` bound to that
namespace. A test passes iff its cell raises nothing; warnings and printing are
ignored, as in the grader. This is what escape-rate measurements and the fast
corpus tests use: hundreds of graded runs in seconds, without nbgrader.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

from coursekit.homework import student_in

__all__ = ["TestCell", "read_cells", "apply_edits", "solution_namespace", "run_test", "grade"]

SEED_ENV_VAR = "COURSEKIT_SEED"


class TestCell(NamedTuple):
    grade_id: str
    points: float
    source: str


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def read_cells(path) -> tuple:
    """``(code_cells, tests)``: every code cell's source by grade_id, and the graded test cells in order."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    code, tests = {}, []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or "grade_id" not in meta:
            continue
        code[meta["grade_id"]] = _source(cell)
        if meta.get("grade") and not meta.get("solution"):
            tests.append(TestCell(meta["grade_id"], float(meta.get("points", 0)), _source(cell)))
    return code, tests


def apply_edits(code: dict, edits: Sequence[tuple]) -> dict:
    """``(grade_id, old, new)`` string replacements; each must apply."""
    code = dict(code)
    for grade_id, old, new in edits:
        if old not in code[grade_id]:
            raise ValueError(f"edit of {grade_id} does not apply: {old[:60]!r} not found")
        code[grade_id] = code[grade_id].replace(old, new, 1)
    return code


def solution_namespace(code: dict, cell_ids: Sequence[str]) -> dict:
    """The cells ``cell_ids`` (setup, then the solution cells) executed in order in a fresh namespace."""
    namespace: dict = {"__name__": "__main__"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for gid in cell_ids:
            exec(compile(code[gid], f"<{gid}>", "exec"), namespace)  # noqa: S102
    return namespace


@contextlib.contextmanager
def _seed(seed: int | None):
    old = os.environ.get(SEED_ENV_VAR)
    if seed is not None:
        os.environ[SEED_ENV_VAR] = str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SEED_ENV_VAR, None)
        else:
            os.environ[SEED_ENV_VAR] = old


def run_test(namespace: dict, source: str, seed: int | None = None) -> str | None:
    """Run one test cell against the student's namespace; ``None`` if it passes, else the failure's text."""
    with _seed(seed), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            exec(compile(source, "<test>", "exec"), {"student": student_in(namespace)})  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - any exception fails the test, as in the grader
            return f"{type(exc).__name__}: {exc}"
    return None


def grade(namespace: dict, tests: Sequence[TestCell], seed: int | None = None) -> dict:
    """``{grade_id: failure text or None}`` for each test cell."""
    return {t.grade_id: run_test(namespace, t.source, seed) for t in tests}
