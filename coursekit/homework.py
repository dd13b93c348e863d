"""What a homework notebook grades: its graded cells and their points, read from nbgrader's metadata.

The book's homework pages show this table, so the points a student sees are the
points the autograder awards, with no copy to drift.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

__all__ = ["GradedCell", "graded_cells", "points_markdown", "student", "student_in"]


class GradedCell(NamedTuple):
    grade_id: str
    points: float
    kind: str  # "autograded test" or "graded by hand"


def graded_cells(path) -> list[GradedCell]:
    """The graded cells of an nbgrader notebook (source or released), in notebook order."""
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"graded_cells: cannot read notebook {path}: {err}") from None
    cells = []
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") or meta.get("task"):
            kind = "autograded test" if cell.get("cell_type") == "code" and not meta.get("solution") else "graded by hand"
            cells.append(GradedCell(meta.get("grade_id", "?"), float(meta.get("points", 0)), kind))
    return cells


def points_markdown(path) -> str:
    """A Markdown table of the graded cells with a total row."""
    cells = graded_cells(path)
    rows = ["| graded cell | points | how |", "|---|---:|---|"]
    rows += [f"| `{c.grade_id}` | {c.points:g} | {c.kind} |" for c in cells]
    rows.append(f"| **total** | **{sum(c.points for c in cells):g}** | |")
    return "\n".join(rows)


# ------------------------------------------------------------ student(name)
#
# A homework test asks for the student's code by name: ``conv2d_forward = student("conv2d_forward")``.
# In the student's own notebook this returns the object the notebook defined. In the grader the
# same test runs in a trusted process that has never run student code, and ``student`` is the
# grader's: it returns a proxy that calls into the sandboxed kernel and brings back plain data
# (see autograder/session.py). A test is therefore written once and reads the same in both places.


class _Student:
    """``student(name)``: the object ``name`` of a namespace (the notebook's globals by default)."""

    def __init__(self, namespace: Mapping[str, Any] | None = None):
        self._namespace = namespace

    def _globals(self) -> Mapping[str, Any]:
        return self._namespace if self._namespace is not None else vars(sys.modules["__main__"])

    def __call__(self, name: str) -> Any:
        try:
            return self._globals()[name]
        except KeyError:
            raise NameError(f"the notebook defines no {name!r}: run the cell that defines it first") from None

    def lib(self, dotted: str) -> Callable:
        """An importable callable (``"torch.nn.Linear"``) as the student's code sees it.

        In the grader the call happens inside the student's kernel and returns a handle there,
        so tests can build objects (data loaders, optimisers) next to the student's code.
        """
        module, _, attr = dotted.rpartition(".")
        return getattr(importlib.import_module(module), attr)


student = _Student()


def student_in(namespace: Mapping[str, Any]) -> _Student:
    """``student`` for code run with ``exec`` in ``namespace`` (test harnesses, escape-rate runs)."""
    return _Student(namespace)
