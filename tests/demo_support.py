"""The demo homework (tests/fixtures/solutions/hw_demo): a tiny assignment for testing the grader itself.

Four one-point tests that reach the student's code in every way the grader supports (a function, an
in-place update, an object's methods, a callback), so grading tests do not depend on the course's
real homework and run in seconds.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from autograder import bench, grading

SOLUTIONS = Path(__file__).resolve().parent / "fixtures" / "solutions"
HW = "hw_demo"
SOURCE_NB = SOLUTIONS / HW / f"{HW}.ipynb"
TESTS = ("test_scale", "test_sgd_step", "test_counter", "test_apply_twice")
FULL = dict.fromkeys(TESTS, 1.0)


def release(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(grading.release(HW, course, solutions_dir=SOLUTIONS), as_version=4)


def solved(released) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in."""
    return bench.solved(released, nbformat.read(SOURCE_NB, as_version=4))


def replace(nb, grade_id: str, source: str) -> nbformat.NotebookNode:
    """``nb`` with one cell's source replaced (a wrong implementation, say)."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = source
    return nb


def write(folder: Path, nb) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{HW}.ipynb")
    return folder
