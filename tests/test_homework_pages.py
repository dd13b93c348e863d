"""coursekit.homework reads graded cells and points from nbgrader metadata; the released notebooks are current."""

import json
from pathlib import Path

import pytest

from book_support import tasks_module
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
    notebooks = sorted(Path(__file__).resolve().parents[1].glob("solutions/*/*.ipynb"))
    assert notebooks, "no homework notebooks found"
    for nb in notebooks:
        assert sum(c.points for c in graded_cells(nb)) > 0, nb


def test_released_notebooks_are_committed_and_up_to_date():
    # The homework pages' launch buttons open book/homework/notebooks/<hw>.ipynb from the
    # repository; `tasks.py book` releases it from solutions/ and stamps it with its source's hash.
    root, tasks = Path(__file__).resolve().parents[1], tasks_module()
    released = root / "book" / "homework" / "notebooks"
    for source in sorted(root.glob("solutions/*/*.ipynb")):
        hw = source.parent.name
        if source.stem != hw:
            continue
        notebook, stamp = released / f"{hw}.ipynb", released / f".{hw}.sha256"
        assert notebook.is_file(), f"{notebook.relative_to(root)} is missing: run `python3 tasks.py book` and commit it"
        assert json.loads(notebook.read_text())["cells"], f"{notebook.name} has no cells"
        assert stamp.is_file() and stamp.read_text() == tasks.release_digest(source), (
            f"{notebook.relative_to(root)} was released from an older {source.relative_to(root)}: "
            "run `python3 tasks.py book` and commit book/homework/notebooks")
        assert "# YOUR CODE HERE" in notebook.read_text() and "BEGIN SOLUTION" not in notebook.read_text(), (
            f"{notebook.name} is not a student version")
        install = json.loads(notebook.read_text())["cells"][1]
        assert f'"coursekit[torch] @ {tasks.install_source()}"' in "".join(install["source"]), (
            f"{notebook.name}: no Colab install cell from the repository of _config.yml")
