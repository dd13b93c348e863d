"""coursekit.homework reads graded cells and points from nbgrader metadata."""

import json

import pytest

from coursekit.homework import graded_cells, points_markdown


def _cell(cell_type, **nbgrader):
    return {"cell_type": cell_type, "metadata": {"nbgrader": nbgrader} if nbgrader else {}, "source": ""}


def test_graded_cells_and_table(tmp_path):
    nb = {"cells": [
        _cell("markdown"),
        _cell("code", solution=True, grade=False, grade_id="impl"),
        _cell("code", grade=True, solution=False, grade_id="test_a", points=2),
        _cell("markdown", grade=True, solution=True, grade_id="analysis", points=3),
        _cell("code", grade=True, solution=False, grade_id="test_b", points=0.5),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    path = tmp_path / "hw.ipynb"
    path.write_text(json.dumps(nb))
    cells = graded_cells(path)
    assert [(c.grade_id, c.points, c.kind) for c in cells] == [
        ("test_a", 2.0, "autograded test"), ("analysis", 3.0, "graded by hand"), ("test_b", 0.5, "autograded test")]
    table = points_markdown(path)
    assert "| `test_b` | 0.5 | autograded test |" in table
    assert table.splitlines()[-1] == "| **total** | **5.5** | |"


def test_unreadable_notebook_is_named(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.ipynb"):
        graded_cells(bad)


def test_real_homework_totals_match_the_solutions():
    # Every homework in solutions/ has graded cells worth a positive total.
    from pathlib import Path

    notebooks = sorted(Path(__file__).resolve().parents[1].glob("solutions/*/*.ipynb"))
    assert notebooks, "no homework notebooks found"
    for nb in notebooks:
        assert sum(c.points for c in graded_cells(nb)) > 0, nb
