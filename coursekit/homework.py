"""What a homework notebook grades: its graded cells and their points, read from nbgrader's metadata.

The book's homework pages show this table, so the points a student sees are the
points the autograder awards, with no copy to drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

__all__ = ["GradedCell", "graded_cells", "points_markdown"]


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
