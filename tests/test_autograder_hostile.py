"""The hostile corpus (tests/corpus/hostile.py) graded in ONE run through the command line, then again.

Every stub-level trick scores 0, every correct submission keeps full marks whatever sits
beside it, every case gets an allowed status, the batch completes with feedback for every
graded student, nothing outside the scratch course changes, no process or cgroup is left
behind, and a second run changes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import json
import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder.sandbox import bwrap_available
from autograder.cgroups import available as cgroup_problem

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "tests" / "fixtures" / "solutions"
HW = "hw_demo"
SECRET_NAME, SECRET_VALUE = "AUTOGRADER_TEST_SECRET", "postgres://grader:hunter2@db/course"
LIMITS = ["--cell-timeout", "5", "--timeout", "60", "--memory-mb", "768", "--max-processes", "48",
          "--output-kb", "64"]

_spec = importlib.util.spec_from_file_location("hostile", REPO / "tests" / "corpus" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
sys.modules["hostile"] = hostile  # dataclasses look their module up
_spec.loader.exec_module(hostile)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not bwrap_available() or cgroup_problem() is not None,
                                 reason="needs bubblewrap and a cgroup (apt-get install bubblewrap; run as root)")]


def _cli(*args, env=None, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.parts and ".venv" not in path.parts and "__pycache__" not in path.parts \
                and ".pytest_cache" not in path.parts and "_build" not in path.parts:
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


class _Listener:
    """A loopback port the sandbox must not reach; counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port, self.connections, self.stop = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def _runner_processes(course: Path) -> list:
    """The student processes still running in this course's scratch folders (other graders' are not ours)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(str(course)):
                cmdline = (proc / "cmdline").read_bytes().replace(bytes(1), b" ").decode()
                out.append(f"{proc.name}: {cmdline}")
        except OSError:
            continue
    return out


def _orphan_cgroups() -> list:
    """Autograder cgroups whose grader process is gone (named autograder-<pid>-...)."""
    out = []
    for parent in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        for d in parent.rglob("autograder-*") if parent.is_dir() else []:
            try:
                os.kill(int(d.name.split("-")[1]), 0)
            except ProcessLookupError:
                out.append(str(d))
            except (ValueError, IndexError, PermissionError):
                continue
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    course, subs = root / "course", root / "submissions"
    released = grading.release(HW, course, solutions_dir=SOLUTIONS)
    listener = _Listener()
    (course / "secret.txt").write_text("course file")
    probe = {"HW": HW, "PORT": listener.port, "SOLUTIONS": str(SOLUTIONS / HW / f"{HW}.ipynb"),
             "COURSE": str(course), "SECRET_NAME": SECRET_NAME, "SECRET_VALUE": SECRET_VALUE,
             "OUTSIDE": str(REPO / "pwned-by-student.txt"), "HARDLINK_SOURCE": str(course / "secret.txt")}
    cases = hostile.build(subs, nbformat.read(released, as_version=4),
                          nbformat.read(SOLUTIONS / HW / f"{HW}.ipynb", as_version=4), probe)
    roster = root / "roster.csv"
    roster.write_text("student_id\n" + "".join(f"{s}\n" for s in sorted(cases)))
    repo_before = _tree_digest(REPO / "autograder") + _tree_digest(REPO / "coursekit") + _tree_digest(SOLUTIONS)
    env = {**os.environ, SECRET_NAME: SECRET_VALUE}
    args = ["--submissions", subs, "--course-dir", course, "--solutions", SOLUTIONS, "--roster", roster, "--jobs", "2", "--no-progress", *LIMITS]
    first = _cli("grade", HW, *args, env=env)
    _cli("export", HW, "--course-dir", course, "--to", root / "grades.csv", "--reasons")
    feedback = _cli("feedback", HW, "--course-dir", course)
    records_1 = {p.name: p.read_bytes() for p in (course / "results" / HW).glob("*.json")}
    second = _cli("grade", HW, *args, env=env)
    records_2 = {p.name: p.read_bytes() for p in (course / "results" / HW).glob("*.json")}
    listener.close()
    rows = {r["student_id"]: r for r in csv.DictReader((root / "grades.csv").open())}
    return {"root": root, "course": course, "cases": cases, "rows": rows, "first": first, "second": second,
            "feedback": feedback, "records": (records_1, records_2), "listener": listener, "probe": probe,
            "repo": (repo_before, _tree_digest(REPO / "autograder") + _tree_digest(REPO / "coursekit")
                     + _tree_digest(SOLUTIONS))}


def test_corpus_is_big_and_covers_every_class(run):
    cases = run["cases"]
    assert len(cases) >= 40
    classes = {c.what for c in cases.values()}
    for needed in ("forging", "lying values", "tracing", "shadowing", "leaks", "resources", "kernel replacement",
                   "links", "malformed JSON", "feedback poisoning", "score forging"):
        assert needed in classes, needed


def test_every_case_gets_exactly_its_score_and_an_allowed_status(run):
    wrong = []
    for student, case in sorted(run["cases"].items()):
        row = run["rows"][student]
        want = 0.0 if case.score == hostile.ZERO else float(row["max_score"])
        if float(row["score"]) != want or row["status"] not in case.statuses:
            wrong.append(f"{student}: {row['score']}/{row['max_score']} [{row['status']}] ({row['reason']}), "
                         f"expected {want:g} with {case.statuses}")
    assert not wrong, "\n".join(wrong)


def test_gradebook_agrees_with_the_export(run):
    for student, row in run["rows"].items():
        if row["status"] in ("ok", "tampered", "timeout", "crashed") and float(row["score"]) > 0:
            assert grading.read_scores(HW, student, run["course"])[0] == float(row["score"])


def test_nothing_leaked_and_nothing_outside_changed(run):
    assert run["listener"].connections == 0
    assert not Path(run["probe"]["OUTSIDE"]).exists()
    record = json.loads((run["course"] / "results" / HW / "s_write_outside.json").read_text())
    assert record["score"] == 0 and record["student_id"] == "s_write_outside"
    assert run["repo"][0] == run["repo"][1]


def test_links_are_never_followed(run):
    course = run["course"]
    for student in ("link_to_solutions", "hard_link"):
        for folder in (course / "autograded" / student, course / "feedback" / student,
                       course / "quarantine" / HW / student):
            if folder.exists():
                for path in folder.rglob("*"):
                    assert not path.is_symlink()
                    if path.is_file():
                        assert b"BEGIN SOLUTION" not in path.read_bytes()
                        assert SECRET_VALUE.encode() not in path.read_bytes()


def test_feedback_for_every_graded_student_escapes_student_html(run):
    course = run["course"]
    for student, row in run["rows"].items():
        if row["status"] in ("missing", "malformed"):
            continue
        page = course / "feedback" / student / HW / f"{HW}.html"
        assert page.is_file(), student
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "rng.standard_normal((4, 5))" not in text
        assert "<script>alert(1)</script>" not in text and "<img src=x onerror" not in text


def test_no_process_or_cgroup_left_behind(run):
    assert _runner_processes(run["course"]) == []
    assert _orphan_cgroups() == []


def test_a_second_run_changes_nothing(run):
    first, second = run["records"]
    assert first == second
    assert "already graded" in run["second"].stdout + run["second"].stderr
