"""Pre-flight repairs and quarantine, the roster and export, and the command line (fast: no notebook runs)."""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder.cli import build_parser
from autograder.records import write_json_atomic
from autograder.preflight import find_notebook, inspect_submission, normalise_name
from autograder.sandbox import Limits, isolation_report, student_command

REPO = Path(__file__).resolve().parents[1]
HW = "hw3_conv"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return nbformat.read(grading.release(HW, tmp_path_factory.mktemp("course")), as_version=4)


def _gid(c):
    return c.metadata.get("nbgrader", {}).get("grade_id")


def _write(folder, nb, name=f"{HW}.ipynb"):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder


@pytest.mark.parametrize("name", ["hw3_conv (1)", "HW3_conv", "Copy of hw3_conv", "hw3_conv-Copy1", "hw3_conv-2",
                                  "hw3_conv_final", "hw3_conv (2) copy"])
def test_renamed_notebooks_are_recognised(name):
    assert normalise_name(name) == HW


@pytest.mark.parametrize("name", ["homework", "hw3", "hw4_conv", "notes_hw3_conv"])
def test_other_names_are_not(name):
    assert normalise_name(name) != HW


def test_find_notebook_prefers_exact_then_newest(tmp_path):
    (tmp_path / "hw3_conv (1).ipynb").write_text("{}")
    path, note = find_notebook(HW, tmp_path)
    assert path.name == "hw3_conv (1).ipynb" and "renamed" in note
    (tmp_path / f"{HW}.ipynb").write_text("{}")
    assert find_notebook(HW, tmp_path) == (tmp_path / f"{HW}.ipynb", None)


def test_unchanged_release_is_clean(released, tmp_path):
    pf = inspect_submission(HW, _write(tmp_path / "s", released), released)
    assert pf.status is None and pf.notes == [] and pf.tampering == []
    assert [_gid(c) for c in pf.notebook.cells] == [_gid(c) for c in released.cells]


def test_repairs_duplicates_deletions_and_keeps_student_cells(released, tmp_path):
    nb = copy.deepcopy(released)
    k = next(i for i, c in enumerate(nb.cells) if _gid(c) == "conv2d_forward")
    nb.cells[k].source = "def conv2d_forward(x, w, b, *, stride=1, padding=0):\n    return 1, 2\n"
    dup = copy.deepcopy(nb.cells[k])
    dup.source = "old attempt"
    dup["id"] = "dup"
    nb.cells.insert(k + 1, dup)
    nb.cells.insert(k + 1, nbformat.v4.new_code_cell("print('my scratch')"))
    nb.cells = [c for c in nb.cells if _gid(c) not in ("test_backward_db", "intro")]
    pf = inspect_submission(HW, _write(tmp_path / "s", nb), released)
    assert pf.status is None and pf.tampering == []
    assert any("duplicate of cell conv2d_forward" in n for n in pf.notes)
    assert any("restored deleted cell test_backward_db" in n for n in pf.notes)
    gids = [_gid(c) for c in pf.notebook.cells]
    assert [g for g in gids if g] == [_gid(c) for c in released.cells]
    forward = pf.notebook.cells[gids.index("conv2d_forward")]
    assert "return 1, 2" in forward.source
    assert pf.notebook.cells[gids.index("conv2d_forward") + 1].source == "print('my scratch')"
    nbformat.validate(pf.notebook)


def test_tampering_is_restored_and_flagged(released, tmp_path):
    nb = copy.deepcopy(released)
    test = next(c for c in nb.cells if _gid(c) == "test_forward_basic")
    test.metadata["nbgrader"]["points"] = 100
    test.source = "pass"
    sol = next(c for c in nb.cells if _gid(c) == "conv2d_backward")
    sol.cell_type = "markdown"
    del sol["outputs"], sol["execution_count"]
    nb.cells.append(nbformat.v4.new_code_cell("np.allclose = lambda *a, **k: True"))
    pf = inspect_submission(HW, _write(tmp_path / "s", nb), released)
    text = "; ".join(pf.tampering)
    assert "test_forward_basic (points" in text and "edited locked cell test_forward_basic" in text
    assert "assigns to a numpy attribute" in text
    fixed = {(_gid(c)): c for c in pf.notebook.cells if _gid(c)}
    assert fixed["test_forward_basic"].metadata["nbgrader"]["points"] == 2
    assert fixed["test_forward_basic"].source == next(c for c in released.cells
                                                     if _gid(c) == "test_forward_basic").source
    assert fixed["conv2d_backward"].cell_type == "code"


@pytest.mark.parametrize("content, status, reason", [
    ('{"cells": [', "malformed", "NotJSONError"),
    ("[1, 2]", "malformed", "not a notebook"),
    (json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), "malformed", "not a hw3_conv"),
])
def test_unrepairable_submissions(released, tmp_path, content, status, reason):
    (tmp_path / f"{HW}.ipynb").write_text(content)
    pf = inspect_submission(HW, tmp_path, released)
    assert pf.status == status and reason in pf.reason and pf.reason.startswith(f"unreadable {HW}.ipynb")


def test_missing(released, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    assert inspect_submission(HW, tmp_path, released).status == "missing"


def test_roster_and_export_add_missing_rows(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Student_ID\nAda,ada\nBob,bob\n")
    assert grading.read_roster(roster) == ["ada", "bob"]
    rec = {"student_id": "ada", "assignment": HW, "score": 9.0, "max_score": 10.0, "status": "ok", "reason": None,
           "tests": {}}
    write_json_atomic(tmp_path / "course" / "results" / HW / "ada.json", rec)
    rows = grading.export(tmp_path / "course", HW, tmp_path / "g.csv", roster=roster)
    assert [(r["student_id"], r["status"]) for r in rows] == [("ada", "ok"), ("bob", "missing")]
    assert list(csv.reader((tmp_path / "g.csv").open())) == [
        ["student_id", "assignment", "score", "max_score", "status"],
        ["ada", HW, "9", "10", "ok"], ["bob", HW, "0", "10", "missing"]]


def test_cli_new_commands_parse():
    p = build_parser()
    a = p.parse_args(["grade", HW, "--jobs", "2", "--student", "x", "--force", "--timeout", "30"])
    assert (a.jobs, a.student, a.force, a.timeout, a.submissions) == (2, ["x"], True, 30.0, None)
    assert p.parse_args(["export", "--to", "g.csv"]).hw is None
    assert p.parse_args(["bench", "--n", "40", "--jobs", "1", "2"]).jobs == [1, 2]
    for cmd in (["feedback", HW], ["report", HW], ["collect", HW, "--from", "x.zip"]):
        assert p.parse_args(cmd).command == cmd[0]


def test_sandbox_command_hides_the_repository(tmp_path):
    argv, env, group = student_command(tmp_path, Limits(), ["coursekit.layers"], tmp_path)
    try:
        assert argv[:2] == ["/bin/sh", "-c"] and "prlimit" in argv and "bwrap" in argv and "--unshare-all" in argv
        assert "--share-net" not in argv and env.keys() == {"PATH"}
        binds = {argv[i + 2]: argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--ro-bind-try")}
        assert str(REPO) not in binds and str(REPO / "solutions") not in binds
        assert str(REPO / "coursekit") in binds and "--bind" not in argv  # nothing of the host is writable
        assert "not available" in (Path(binds[str(REPO / "coursekit" / "layers")]) / "__init__.py").read_text()
        assert "bubblewrap" in isolation_report()
    finally:
        group.close()
    argv, env, group = student_command(tmp_path, Limits(sandbox="none"), [], tmp_path)
    assert group is None and "bwrap" not in argv and any(a.startswith("--as=") for a in argv)
    assert "NO SANDBOX" in isolation_report(Limits(sandbox="none"))


def test_malformed_shapes_are_malformed_not_crashes(released, tmp_path):
    data = json.loads(nbformat.writes(released))
    data["cells"][1]["source"] = ["import numpy as np\n", 42]
    (tmp_path / f"{HW}.ipynb").write_text(json.dumps(data))
    pf = inspect_submission(HW, tmp_path, released)
    assert pf.status == "malformed" and "source" in pf.reason


def test_a_solution_that_lost_its_metadata_is_not_replaced_by_the_stub(released, tmp_path):
    nb = copy.deepcopy(released)
    k = next(i for i, c in enumerate(nb.cells) if _gid(c) == "conv2d_forward")
    nb.cells[k] = nbformat.v4.new_code_cell("def conv2d_forward(x, w, b, *, stride=1, padding=0):\n    return 'mine'\n")
    pf = inspect_submission(HW, _write(tmp_path / "s", nb), released)
    cells = pf.notebook.cells
    forward = next(c for c in cells if _gid(c) == "conv2d_forward")
    assert "NotImplementedError" not in forward.source and "student's own cells" in forward.source
    assert any("lost its nbgrader metadata" in n for n in pf.notes)
    mine = next(i for i, c in enumerate(cells) if "return 'mine'" in c.source)
    assert all("raise NotImplementedError" not in c.source for c in cells[mine + 1:] if "conv2d_forward(" in c.source)


def test_links_in_a_submission_are_never_followed(released, tmp_path):
    subs = tmp_path / "subs"
    folder = _write(subs / "s", released)
    (folder / "secret.ipynb").symlink_to(REPO / "solutions" / HW / f"{HW}.ipynb")
    (subs / "x").mkdir()
    (subs / "x" / f"{HW}.ipynb").symlink_to(REPO / "solutions" / HW / f"{HW}.ipynb")
    assert find_notebook(HW, subs / "x") == (None, None)
    said = []
    n = grading.collect(HW, subs, tmp_path / "course", log=said.append)
    copied = tmp_path / "course" / "collected" / HW
    assert n == 2 and (copied / "s" / f"{HW}.ipynb").is_file() and not (copied / "s" / "secret.ipynb").exists()
    assert not (copied / "x" / f"{HW}.ipynb").exists()
    assert any("secret.ipynb: a symbolic link" in line for line in said)


def test_collect_from_zip(tmp_path):
    import zipfile
    z = tmp_path / "lms.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hw3_ada_attempt_2024-01-01-10-00-00_hw3_conv.ipynb", "{}")
        zf.writestr("bob/hw3_conv (1).ipynb", "{}")
    n = grading.collect(HW, z, tmp_path / "course")
    assert n == 2
    assert (tmp_path / "course" / "collected" / HW / "ada" / "hw3_conv.ipynb").is_file()
    assert (tmp_path / "course" / "collected" / HW / "bob" / "hw3_conv (1).ipynb").is_file()
