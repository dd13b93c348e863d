"""Homework 5 (CNNs in PyTorch): the source notebook, its student version, and its grading.

Fast tests check the notebook's structure and run its solution code against
coursekit.nn directly. Tests marked slow run nbgrader: ``nbgrader validate`` on
the source, the released student version, and ONE ``python -m autograder grade``
run over all the submissions built below, whose per-test scores are read back
from the gradebook. The written analysis is a manually graded markdown cell: the
autograder gives it no points (a person does), so "full marks" below means all
14 automatic points.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coursekit import checks  # noqa: E402
from coursekit.nn import augment, models, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HW = "hw5_torch_cnn"
SOURCE_NB = REPO / "solutions" / HW / f"{HW}.ipynb"

TEST_POINTS = {
    "test_device": 1,
    "test_lenet5": 2,
    "test_residual_block": 3,
    "test_random_shift": 2,
    "test_train_one_epoch": 2,
    "test_evaluate": 1,
    "test_mnist_training": 3,
}
MANUAL = {"analysis": 3}
TOTAL = 14  # automatic points; the analysis adds 3, graded by hand
HIDDEN = set(TEST_POINTS) - {"test_device", "test_mnist_training"}
SOLUTION_CELLS = ("get_device", "lenet5", "residual_block", "random_shift", "loops", "train_mnist")
FULL = {**{k: float(v) for k, v in TEST_POINTS.items()}, "analysis": 0.0}  # the manual cell waits for a person
ZERO = dict.fromkeys(FULL, 0.0)
MAX = {**{k: float(v) for k, v in TEST_POINTS.items()}, "analysis": 3.0}


def _lose(*tests):
    return {**FULL, **dict.fromkeys(tests, 0.0)}


def _cells(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}


@pytest.fixture(scope="module")
def source_nb():
    return nbformat.read(SOURCE_NB, as_version=4)


@pytest.fixture(scope="module")
def sol(source_nb):
    """The solution cells executed in a fresh namespace, as the notebook would."""
    import torch.nn.functional as F
    ns: dict = {"np": np, "torch": torch, "nn": torch.nn, "F": F, "__name__": "hw5_solution"}
    for cid in SOLUTION_CELLS:
        exec(compile(_cells(source_nb)[cid].source, f"<{cid}>", "exec"), ns)  # noqa: S102
    return ns


# ------------------------------------------------------------------ notebook shape


def test_graded_cells_points_and_locks(source_nb):
    nbformat.validate(source_nb)
    cells = _cells(source_nb)
    graded = {gid: c.metadata["nbgrader"]["points"] for gid, c in cells.items() if c.metadata["nbgrader"]["grade"]}
    assert graded == {**TEST_POINTS, **MANUAL}
    analysis = cells["analysis"]
    assert analysis.cell_type == "markdown"
    meta = analysis.metadata["nbgrader"]
    assert meta["solution"] and meta["grade"] and not meta["locked"]  # nbgrader's manually graded answer
    for gid in TEST_POINTS:
        meta = cells[gid].metadata["nbgrader"]
        assert meta["locked"] and not meta["solution"], gid
        src = cells[gid].source
        assert ("### BEGIN HIDDEN TESTS" in src) == (gid in HIDDEN), gid
        assert "importlib.reload" in src and "reference_disabled" in src, gid
        if gid in HIDDEN:
            assert "fresh_seed()" in src[src.index("### BEGIN HIDDEN TESTS"):], gid
    for gid in SOLUTION_CELLS:
        meta = cells[gid].metadata["nbgrader"]
        assert meta["solution"] and not meta["grade"] and not meta["locked"]
        assert "### BEGIN SOLUTION" in cells[gid].source and "coursekit" not in cells[gid].source
    for gid, c in cells.items():
        if gid not in (*SOLUTION_CELLS, "analysis"):
            assert c.metadata["nbgrader"]["locked"], gid
    assert "61706" in cells["test_lenet5"].source


# ------------------------------------------------- the solution against coursekit


def _copy(dst, src):
    for a, b in zip([*dst.parameters(), *dst.buffers()], [*src.parameters(), *src.buffers()], strict=True):
        with torch.no_grad():
            a.copy_(b)


def test_solution_models_match_coursekit(sol):
    torch.manual_seed(0)
    ref, mine = models.LeNet5().double(), sol["LeNet5"]().double()
    _copy(mine, ref)
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(mine(x), ref(x))
    for cin, cout, stride in ((4, 4, 1), (3, 6, 2), (3, 3, 2)):
        ref, mine = models.BasicBlock(cin, cout, stride).double(), sol["ResidualBlock"](cin, cout, stride).double()
        _copy(mine, ref)
        x = torch.randn(2, cin, 6, 6, dtype=torch.float64)
        for training in (True, False):
            ref.train(training), mine.train(training)
            torch.testing.assert_close(mine(x), ref(x))


def test_solution_shift_and_evaluate_match_coursekit(sol):
    x = torch.randn(5, 2, 7, 6)
    torch.testing.assert_close(sol["random_shift"](x, 2, torch.Generator().manual_seed(3)),
                               augment.RandomCrop(2)(x, torch.Generator().manual_seed(3)), rtol=0, atol=0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).double()
    batches = [(torch.randn(4, 3, dtype=torch.float64), torch.randint(0, 2, (4,))) for _ in range(3)]
    got = sol["evaluate"](model, batches, torch.device("cpu"))
    exp = train.evaluate(model, batches, "cpu")
    assert got[1] == exp[1] and abs(got[0] - exp[0]) < 1e-6


def test_solution_mnist_reaches_the_target(sol):
    from coursekit.data import mnist5k
    data = mnist5k()
    model = sol["train_mnist"](data._replace(X_test=None, y_test=None), torch.device("cpu")).eval()
    with torch.no_grad():
        acc = float((model(torch.as_tensor(data.X_test)).argmax(1).numpy() == data.y_test).mean())
    assert acc >= 0.945, acc  # the notebook asks for 0.93: a margin against other builds and threads


# ----------------------------------------------------------------- nbgrader (slow)


def _nbgrader(args, cwd):
    from autograder.grading import nbgrader_env
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=nbgrader_env(),
                          capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.slow
def test_source_notebook_passes_nbgrader_validate(tmp_path):
    # nbgrader validate exits 0 even when tests fail, so read what it says.
    proc = _nbgrader(["validate", str(SOURCE_NB)], tmp_path)
    out = proc.stdout + proc.stderr
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]
    assert "VALIDATION FAILED" not in out and "FAILED" not in out


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
_mine.check_against_reference = lambda *a, **k: None
'''


def _replace(old, new):
    def edit(src):
        assert old in src, old
        return src.replace(old, new)
    return edit


def _variant(*edits):
    nb = nbformat.read(SOURCE_NB, as_version=4)
    cells = _cells(nb)
    for grade_id, transform in edits:
        new = transform(cells[grade_id].source)
        assert new != cells[grade_id].source, grade_id
        cells[grade_id].source = new
    return nb


NO_SKIP = ("residual_block", _replace("        return F.relu(out + self.shortcut(x))\n",
                                     "        return F.relu(out)\n"))
EVAL_MODE_FORGOTTEN = ("loops", _replace("    model.eval()\n", ""))
TRAIN_MODE_FORGOTTEN = ("loops", _replace("    model.train()\n", ""))
ROLL = ("random_shift", lambda s: s[:s.index("    ### BEGIN SOLUTION")] + (
    "    ### BEGIN SOLUTION\n"
    "    offsets = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2), generator=generator)\n"
    "    return torch.stack([torch.roll(img, (int(dy), int(dx)), dims=(1, 2)) for img, (dy, dx) in zip(x, offsets)])\n"
    "    ### END SOLUTION\n"))

# student -> (edits, expected per-test scores)
SUBMISSIONS = {
    "a_solution": ((), FULL),
    # a residual block without the skip connection is two plain conv layers
    "c_residual_without_skip": ((NO_SKIP,), _lose("test_residual_block")),
    # evaluate in training mode: batch norm uses (and updates) batch statistics
    "d_evaluate_in_train_mode": ((EVAL_MODE_FORGOTTEN,), _lose("test_evaluate")),
    # the loop never calls model.train(): a model left in eval mode trains with running statistics
    # (LeNet-5 has no batch norm or dropout, so the MNIST run is unaffected)
    "e_train_mode_forgotten": ((TRAIN_MODE_FORGOTTEN,), _lose("test_train_one_epoch")),
    # torch.roll wraps pixels around instead of letting zeros in
    "f_shift_wraps_around": ((ROLL,), _lose("test_random_shift")),
    # the reference class under the student's name
    "g_imports_reference": ((("residual_block",
                              lambda s: "from coursekit.nn.models import BasicBlock as ResidualBlock\n"),),
                            _lose("test_residual_block")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release, build the submissions, grade them all with one CLI run."""
    from autograder import grading
    root = tmp_path_factory.mktemp("grading")
    course, subs = root / "course", root / "submissions"
    released = grading.release(HW, course)
    (subs / "b_unchanged").mkdir(parents=True)
    (subs / "b_unchanged" / f"{HW}.ipynb").write_bytes(released.read_bytes())
    for student, (edits, _) in SUBMISSIONS.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(_variant(*edits), subs / student / f"{HW}.ipynb")
    out_csv = root / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", HW, "--submissions", str(subs), "--out", str(out_csv),
         "--course-dir", str(course)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"course": course, "rows": list(csv.DictReader(out_csv.open())), "stdout": proc.stdout,
            "released": nbformat.read(released, as_version=4)}


def _tests(graded, student):
    from autograder import grading
    tests = grading.read_scores(HW, student, graded["course"])[2]
    assert {gid: mx for gid, (_, mx) in tests.items()} == MAX
    return {gid: score for gid, (score, _) in tests.items()}


@pytest.mark.slow
def test_student_version_has_no_solution_and_no_hidden_tests(graded):
    nb = graded["released"]
    text = nbformat.writes(nb)
    for leak in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert leak not in text, leak
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for leak in ("nn.Conv2d(1, 6, 5, padding=2)", "out + self.shortcut(x)", "optimizer.zero_grad()", "_ck.",
                 "fresh_seed", "_copy_state", "StepLR"):
        assert leak not in code, leak  # the solution's body and the hidden tests' code
    cells = _cells(nb)
    for gid in SOLUTION_CELLS:
        assert "raise NotImplementedError" in cells[gid].source, gid
    assert "print(f\"computing on {device}\")" in cells["get_device"].source
    assert "61706" in cells["test_lenet5"].source  # public tests survive
    assert "fc1" not in cells["analysis"].source and "YOUR ANSWER HERE" in cells["analysis"].source


@pytest.mark.slow
def test_grades_csv_and_full_and_zero_marks(graded):
    rows = {r["student_id"]: r for r in graded["rows"]}
    assert sorted(rows) == sorted(["b_unchanged", *SUBMISSIONS])
    assert all(r["max_score"] == str(TOTAL + 3) for r in rows.values())  # with the analysis
    assert rows["a_solution"]["score"] == str(TOTAL)
    assert rows["b_unchanged"]["score"] == "0"
    assert _tests(graded, "b_unchanged") == ZERO


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_each_submission_loses_exactly_the_expected_tests(graded, student):
    expected = SUBMISSIONS[student][1]
    assert _tests(graded, student) == expected
    row = next(r for r in graded["rows"] if r["student_id"] == student)
    assert float(row["score"]) == sum(expected.values())


@pytest.mark.slow
def test_hidden_tests_print_their_seed(graded):
    nb = nbformat.read(graded["course"] / "autograded" / "a_solution" / HW / f"{HW}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid in HIDDEN:
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            assert "grading seed: " in text, (gid, text)
