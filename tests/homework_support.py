"""What the homework tests share: run nbgrader, build edited submissions, grade them all
in one autograder run, read each test's score from the gradebook."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

# A student cell appended to a wrong solution: it must not turn failed tests into passes.
GAMING = '''
import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)
np.testing.assert_allclose = lambda *a, **k: None
np.abs = lambda x: 0 * x
np.max = lambda *a, **k: 0.0
'''
PATCH_CHECKS = '''
import coursekit.checks as _mine
_mine.assert_close = lambda *a, **k: None
_mine.check_backward = lambda *a, **k: None
_mine.check_backward_numerically = lambda *a, **k: None
_mine.check_against_reference = lambda *a, **k: None
'''


def nbgrader(args, cwd):
    """Run ``python -m nbgrader ARGS`` with the venv's bin on PATH (the gradebook calls alembic)."""
    from autograder.grading import nbgrader_env
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=nbgrader_env(),
                          capture_output=True, text=True, check=False, timeout=300)


def assert_validates(source_nb: Path, cwd: Path) -> None:
    """``nbgrader validate`` exits 0 even when tests fail, so read what it says."""
    proc = nbgrader(["validate", str(source_nb)], cwd)
    out = proc.stdout + proc.stderr
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]
    assert "VALIDATION FAILED" not in out and "FAILED" not in out


def cells(nb):
    """The notebook's cells by nbgrader grade_id."""
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}


def replace(old, new):
    """An edit of a cell's source that must apply."""
    def edit(src):
        assert old in src, old
        return src.replace(old, new)
    return edit


def variant(source_nb: Path, *edits):
    """The source notebook with ``(grade_id, edit)`` pairs applied; each edit must change its cell."""
    nb = nbformat.read(source_nb, as_version=4)
    by_id = cells(nb)
    for grade_id, transform in edits:
        new = transform(by_id[grade_id].source)
        assert new != by_id[grade_id].source, grade_id
        by_id[grade_id].source = new
    return nb


def grade_all(hw: str, source_nb: Path, submissions: dict, root: Path) -> dict:
    """Release ``hw``, write the unchanged student version and each variant, grade them all in one CLI run."""
    from autograder import grading
    course, subs = root / "course", root / "submissions"
    released = grading.release(hw, course)
    (subs / "b_unchanged").mkdir(parents=True)
    (subs / "b_unchanged" / f"{hw}.ipynb").write_bytes(released.read_bytes())
    for student, (edits, _) in submissions.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(variant(source_nb, *edits), subs / student / f"{hw}.ipynb")
    out_csv = root / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", hw, "--submissions", str(subs), "--out", str(out_csv),
         "--course-dir", str(course)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"course": course, "rows": list(csv.DictReader(out_csv.open())), "stdout": proc.stdout,
            "released": nbformat.read(released, as_version=4)}


def scores_by_test(hw: str, graded: dict, student: str, full: dict) -> dict:
    """Each graded cell's score for ``student``, after checking the maximum points are ``full``."""
    from autograder import grading
    tests = grading.read_scores(hw, student, graded["course"])[2]
    assert {gid: mx for gid, (_, mx) in tests.items()} == full
    return {gid: score for gid, (score, _) in tests.items()}


def assert_hidden_tests_print_their_seed(hw: str, graded: dict, hidden: set) -> None:
    """Every hidden test printed the seed it drew, so a grade can be reproduced."""
    nb = nbformat.read(graded["course"] / "autograded" / "a_solution" / hw / f"{hw}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid in hidden:
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            assert "grading seed: " in text, (gid, text)
