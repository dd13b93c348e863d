"""What the homework tests share: each homework's contract (graded cells, points, solution
cells) and the checks every homework must pass; running nbgrader, building edited
submissions, grading them all in one autograder run, reading each test's score back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.testcases import inprocess

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
                          capture_output=True, text=True, check=False, timeout=900)


def assert_validates(source_nb: Path, cwd: Path) -> None:
    """``nbgrader validate`` exits 0 even when tests fail, so read what it says."""
    proc = nbgrader(["validate", str(source_nb), "--Execute.timeout=600"], cwd)  # a training cell takes minutes
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


def grade_all(hw: str, source_nb: Path, submissions: dict, root: Path, *, jobs: int = 1,
              timeout: float = 600) -> dict:
    """Release ``hw``, write the unchanged student version and each variant, grade them all in one CLI run
    (with ``jobs`` workers, within ``timeout`` seconds)."""
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
         "--course-dir", str(course), "--jobs", str(jobs)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"course": course, "rows": list(csv.DictReader(out_csv.open())), "stdout": proc.stdout,
            "released": nbformat.read(released, as_version=4)}


def assert_hidden_tests_print_their_seed(hw: str, graded: dict, hidden: set) -> None:
    """Every hidden test printed the seed it drew, so a grade can be reproduced."""
    nb = nbformat.read(graded["course"] / "autograded" / "a_solution" / hw / f"{hw}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid in hidden:
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            assert "grading seed: " in text, (gid, text)


# ------------------------------------------------------------------ one homework's contract


@dataclass(frozen=True)
class Homework:
    """What the tests know of one homework notebook in ``solutions/``."""

    name: str  # "hw1_classifiers": the folder and notebook name
    points: dict  # automatically graded test cell -> points
    total: int  # their sum, written out on its own so that a changed cell shows
    solution_cells: tuple  # the cells a student fills in
    public_only: tuple = ()  # graded cells without hidden tests
    manual: dict = field(default_factory=dict)  # manually graded cells -> points
    solution_must_not_mention: str = "coursekit"  # the solution is written out, not imported

    @property
    def source(self) -> Path:
        return REPO / "solutions" / self.name / f"{self.name}.ipynb"

    @property
    def hidden(self) -> set:
        return set(self.points) - set(self.public_only)

    @property
    def full(self) -> dict:
        """Scores of a perfect submission after autograding: manual cells wait for a person."""
        return {**{k: float(v) for k, v in self.points.items()}, **dict.fromkeys(self.manual, 0.0)}

    @property
    def zero(self) -> dict:
        return dict.fromkeys(self.full, 0.0)

    def lose(self, *tests) -> dict:
        """Full marks except ``tests``."""
        assert set(tests) <= set(self.points), set(tests) - set(self.points)
        return {**self.full, **dict.fromkeys(tests, 0.0)}

    def read(self):
        return nbformat.read(self.source, as_version=4)

    def run_solution(self, nb, namespace: dict) -> dict:
        """The solution cells executed in ``namespace``, in order, as the notebook would."""
        for cid in self.solution_cells:
            exec(compile(cells(nb)[cid].source, f"<{cid}>", "exec"), namespace)  # noqa: S102
        return namespace

    def variant(self, *edits):
        return variant(self.source, *edits)

    def grade_all(self, submissions: dict, root: Path, **options) -> dict:
        return grade_all(self.name, self.source, submissions, root, **options)

    def scores(self, graded: dict, student: str) -> dict:
        """Each graded cell's score for ``student``, after checking the maximum points."""
        from autograder import grading
        tests = grading.read_scores(self.name, student, graded["course"])[2]
        assert {gid: mx for gid, (_, mx) in tests.items()} == {**self.points, **self.manual}
        return {gid: score for gid, (score, _) in tests.items()}


def check_released(hw: Homework, released, leaks) -> dict:
    """The student version: no solution or hidden-test fences, none of ``leaks`` (bits of the
    solution's body and of the hidden tests' code), and stubs that raise; returns its cells."""
    text = nbformat.writes(released)
    for fence in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert fence not in text, fence
    code = "\n".join(c.source for c in released.cells if c.cell_type == "code")
    for leak in leaks:
        assert leak not in code, leak
    by_id = cells(released)
    for gid in hw.solution_cells:
        assert "raise NotImplementedError" in by_id[gid].source, gid
    return by_id


def check_grades_csv(hw: Homework, graded: dict, submissions: dict) -> None:
    """One row per student; the solution gets every automatic point, the untouched student version none."""
    rows = {r["student_id"]: r for r in graded["rows"]}
    assert sorted(rows) == sorted(["b_unchanged", *submissions])
    assert all(r["max_score"] == str(hw.total + sum(hw.manual.values())) for r in rows.values())
    assert rows["a_solution"]["score"] == str(hw.total)
    assert rows["b_unchanged"]["score"] == "0"
    assert hw.scores(graded, "b_unchanged") == hw.zero


def check_submission(hw: Homework, graded: dict, submissions: dict, student: str) -> None:
    """The student's per-test scores are the expected ones, and the grades file sums them.

    An expectation ``"at most <other student>"`` is a bound per test instead: for a
    submission that patches numpy, which breaks later tests' own arithmetic in ways
    that depend on each run's fresh seeds, what must hold is that patching gains nothing.
    """
    expected, got = submissions[student][1], hw.scores(graded, student)
    if isinstance(expected, str):
        bound = submissions[expected.removeprefix("at most ")][1]
        gained = {t: f"{got[t]} > {bound[t]}" for t in bound if got[t] > bound[t]}
        assert not gained, f"{student} scored more than {expected}: {gained}"
    else:
        assert got == expected
    row = next(r for r in graded["rows"] if r["student_id"] == student)
    assert float(row["score"]) == sum(got.values())


def public_verdicts_in_notebook(nb, released) -> dict:
    """What the student's own notebook shows for each public test: ``{grade_id: passed}``.

    Runs the submission's code cells in order in one namespace, as a kernel would, and each
    test cell of the *released* notebook (the public part, all a student has) with
    ``student`` bound to that namespace. For our own corpora only: it runs their code here.
    """
    from coursekit.homework import student_in

    test_ids = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released.cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
                and not c.metadata["nbgrader"].get("solution")}
    ns = {"__name__": "__main__"}
    out = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code":
            continue
        source = test_ids.get(gid, cell.source)
        if gid in test_ids:
            ns["student"] = student_in(ns)
        try:
            exec(compile(source, f"<cell {gid}>", "exec"), ns)  # noqa: S102 - our own corpus
            ok = True
        except Exception:  # noqa: BLE001 - a failing cell is what we record
            ok = False
        if gid in test_ids:
            out[gid] = ok
    return out


def check_public_agreement(hw: str, graded: dict, students) -> list:
    """Students whose notebook's public tests disagree with the grader's public verdicts (should be none)."""
    subs = graded["course"].parent / "submissions"
    bad = []
    for student in students:
        record = json.loads((graded["course"] / "results" / hw / f"{student}.json").read_text())
        nb = nbformat.read(subs / student / f"{hw}.ipynb", as_version=4)
        mine = public_verdicts_in_notebook(nb, graded["released"])
        if mine != record.get("public", {}):
            bad.append(f"{student}: notebook {mine} vs grader {record.get('public')}")
    return bad
# ------------------------------------------- notebooks on the student(name) contract (issue 12)

CONTRACT_FORBIDDEN_IN_TESTS = ("importlib", "reference_disabled", "import student", "from coursekit.homework",
                               "assert_not_from")


def check_cell_contract(hw: Homework, nb, forbidden: list | None = None) -> dict:
    """What every source notebook must hold (the contract of the trusted grader); its cells by grade_id.

    Graded cells have their points and are locked; tests reach the student's code only through
    ``student(name)`` and never import it, reload the checks or disable the reference; hidden tests are
    where the contract says and draw a fresh seed; solution cells are editable and fenced; every other
    cell is locked; the setup cell imports ``student``; the notebook's metadata names the modules the
    student may not import (exactly ``forbidden`` when given).
    """
    nbformat.validate(nb)
    by_id = cells(nb)
    graded = {gid: c.metadata["nbgrader"]["points"] for gid, c in by_id.items() if c.metadata["nbgrader"].get("grade")}
    assert graded == {**hw.points, **hw.manual}, graded
    assert sum(hw.points.values()) == hw.total
    assert "from coursekit.homework import student" in by_id["setup"].source
    assert nb.metadata["coursekit"]["forbidden"], "no forbidden modules declared"
    if forbidden is not None:
        assert nb.metadata["coursekit"]["forbidden"] == forbidden
    for gid in hw.points:
        meta, src = by_id[gid].metadata["nbgrader"], by_id[gid].source
        assert meta["locked"] and not meta["solution"], gid
        assert ("### BEGIN HIDDEN TESTS" in src) == (gid in hw.hidden), gid
        assert "student(" in src, gid
        assert not [bad for bad in CONTRACT_FORBIDDEN_IN_TESTS if bad in src], gid
        if gid in hw.hidden:
            assert "fresh_seed()" in src[src.index("### BEGIN HIDDEN TESTS"):], gid
    for gid in hw.solution_cells:
        meta, src = by_id[gid].metadata["nbgrader"], by_id[gid].source
        assert meta["solution"] and not meta["grade"] and not meta["locked"], gid
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src, gid
        assert hw.solution_must_not_mention not in src, gid
    for gid, c in by_id.items():
        if gid not in (*hw.solution_cells, *hw.manual):
            assert c.metadata["nbgrader"]["locked"], gid
    return by_id


def corpus_submissions(hw: Homework, corpus) -> dict:
    """A corpus module's cases (tests/corpus/hwN_corpus.py) as :func:`grade_all` submissions:
    ``student -> ((grade_id, edit), ...), expected scores)``; wrong cases lose exactly their tests."""
    subs = {"a_solution": ((), hw.full)}
    for name, (edits, lost) in {**corpus.WRONG, **getattr(corpus, "TAMPERING", {})}.items():
        subs[f"w_{name}"] = (tuple((gid, replace(old, new)) for gid, old, new in edits), hw.lose(*lost))
    for name, edits in corpus.CORRECT.items():
        subs[f"c_{name}"] = (tuple((gid, replace(old, new)) for gid, old, new in edits), hw.full)
    return subs


def check_corpus_in_process(hw: Homework, corpus, name: str, seeds) -> None:
    """One corpus case graded in-process (coursekit.testcases.inprocess) on ``seeds``: a wrong case fails
    exactly its tests, a correct variant none. SLOW tests run once, and only for a case predicted to fail them."""
    code, tests = inprocess.read_cells(hw.source)
    edits, lost = corpus.WRONG[name] if name in corpus.WRONG else (corpus.CORRECT[name], ())
    namespace = inprocess.solution_namespace(inprocess.apply_edits(code, edits), corpus.SOLUTION_CELLS)
    slow = [t for t in tests if t.grade_id in corpus.SLOW and t.grade_id in lost]
    fast = [t for t in tests if t.grade_id not in corpus.SLOW]
    for t in slow:
        assert inprocess.run_test(namespace, t.source, 0), f"{name}: {t.grade_id} passed"
    for seed in seeds:
        failures = inprocess.grade(namespace, fast, seed)
        failed = {gid for gid, failure in failures.items() if failure}
        assert failed == set(lost) - set(corpus.SLOW), (name, seed, {g: failures[g] for g in failed})
