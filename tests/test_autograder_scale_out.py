"""Grading beyond one SQLite file and one machine: a PostgreSQL gradebook and a Dask cluster.

The slow tests start a throwaway PostgreSQL server on loopback
(:mod:`postgres_support`; they skip where no server binary exists) and a local
Dask cluster of two worker processes on 127.0.0.1, then drive the command line
as an instructor would: release into PostgreSQL, two graders at once on
overlapping students, then the whole class again on the Dask cluster.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import demo_support as demo
from autograder import dask_executor, gradebook, grading
from autograder.cli import main
from autograder.records import Job
from nbgrader.api import Gradebook, MissingEntry
from postgres_support import postgres_server

REPO = Path(__file__).resolve().parents[1]
HW = demo.HW
SOLUTIONS = ["--solutions", str(demo.SOLUTIONS)]


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


# ------------------------------------------------------------------ fast: errors


def test_unreachable_database_is_a_one_line_error_without_the_password(tmp_path):
    proc = _cli("release", HW, "--course-dir", str(tmp_path / "c"), *SOLUTIONS,
                "--db-url", "postgresql://grader:s3cret@127.0.0.1:1/ml101", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot open the gradebook postgresql://grader:***@127.0.0.1:1/ml101: ")
    assert "s3cret" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_dask_executor_needs_a_scheduler(tmp_path, capsys):
    assert main(["grade", HW, "--executor", "dask", "--course-dir", str(tmp_path), "--submissions",
                 str(tmp_path)]) == 1
    assert "--executor dask needs --scheduler ADDRESS" in capsys.readouterr().err


def test_unreachable_scheduler_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_S", 2)
    job = Job(HW, "s", None, str(tmp_path), 4.0)
    with pytest.raises(grading.GradingError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"):
        dask_executor.DaskExecutor("tcp://127.0.0.1:1").run([job], print, deadline_s=10)


def test_workers_never_see_the_database_url(monkeypatch):
    monkeypatch.setenv(grading.DB_URL_ENV, "postgresql://grader:s3cret@db/ml101")
    assert grading.DB_URL_ENV not in gradebook.worker_env()
    assert grading.gradebook_url("/c") == "postgresql://grader:s3cret@db/ml101"
    monkeypatch.delenv(grading.DB_URL_ENV)
    assert grading.gradebook_url("/c") == "sqlite:////c/gradebook.db"


def test_merge_retries_when_another_grader_wrote_the_student_first(tmp_path, monkeypatch):
    """Grader A looks the submission up, B adds it, A's insert then hits the unique key: A retries and updates."""
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with gradebook.open_gradebook(url) as gb:
        gb.add_assignment("hw")
        gb.add_notebook("hw", "hw")
        gb.add_grade_cell("t1", "hw", "hw", max_score=2, cell_type="code")
    record = {"assignment": "hw", "student_id": "s", "tests": {"t1": [2.0, 2.0]}}
    with gradebook.GradebookWriter(tmp_path, url) as a, gradebook.GradebookWriter(tmp_path, url) as b:
        real_find = a.gb.find_submission
        calls = []

        def find_while_b_writes(hw, student):
            calls.append(student)
            if len(calls) == 1:
                b.merge(record)  # B gets in between A's read and A's write
                raise MissingEntry()
            return real_find(hw, student)

        monkeypatch.setattr(a.gb, "find_submission", find_while_b_writes)
        a.merge(record)
        assert len(calls) == 2  # A's first try failed on the unique key and was retried
        monkeypatch.setattr(a, "ATTEMPTS", 1)
        calls.clear()
        with pytest.raises(grading.GradingError, match="could not write s's grade to the gradebook sqlite:///"):
            a.merge(record)
    with gradebook.open_gradebook(url) as gb:
        subs = gb.find_assignment("hw").submissions
        assert [(s.student.id, float(s.score)) for s in subs] == [("s", 2.0)]


# ------------------------------------------------------- slow: a real server and cluster


def _wrong_scale(nb):
    return demo.replace(nb, "scale", "def scale(x, a):\n    return x")


# student -> expected score; s3 and s4 are graded by both graders at once
EXPECTED = {"s1": 4.0, "s2": 3.0, "s3": 4.0, "s4": 3.0, "s5": 0.0, "s6": 0.0}
GRADER_A = ("s1", "s2", "s3", "s4")
GRADER_B = ("s3", "s4", "s5", "s6")


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as (_, create_database):
        yield create_database


@pytest.fixture(scope="module")
def course(tmp_path_factory, pg):
    """A course released into a fresh PostgreSQL database, with six submissions."""
    url = pg()
    root = tmp_path_factory.mktemp("scale-out")
    course, subs = root / "course", root / "subs"
    proc = _cli("release", HW, "--course-dir", str(course), "--db-url", url, *SOLUTIONS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    released = nbformat.read(course / "release" / HW / f"{HW}.ipynb", as_version=4)
    good = demo.solved(released)
    notebooks = {"s1": good, "s2": _wrong_scale(good), "s3": good, "s4": _wrong_scale(good), "s5": released}
    for student, nb in notebooks.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / f"{HW}.ipynb")
    (subs / "s6").mkdir()
    (subs / "s6" / f"{HW}.ipynb").write_text('{"cells": [')  # malformed
    return {"course": course, "subs": subs, "url": url}


def _gradebook_scores(url):
    with Gradebook(url) as gb:
        return {s.student.id: float(s.score) for s in gb.find_assignment(HW).submissions}


def _records(course):
    return {r["student_id"]: r for r in grading.load_records(course, HW)}


@pytest.mark.slow
def test_release_writes_the_assignment_into_postgresql_only(course):
    with Gradebook(course["url"]) as gb:
        assert float(gb.find_assignment(HW).max_score) == 4.0
        assert [s.id for s in gb.students] == []
    assert not (course["course"] / "gradebook.db").exists()  # nothing went to the SQLite default


@pytest.mark.slow
def test_two_graders_at_once_share_one_gradebook(course):
    common = ["--submissions", str(course["subs"]), "--course-dir", str(course["course"]), "--db-url",
              course["url"], "--no-progress", "--jobs", "1", *SOLUTIONS]
    graders = [subprocess.Popen([sys.executable, "-m", "autograder", "grade", HW, *common,
                                 *[a for s in students for a in ("--student", s)]],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for students in (GRADER_A, GRADER_B)]
    outputs = [g.communicate(timeout=600) for g in graders]
    for g, (out, err) in zip(graders, outputs):
        assert g.returncode == 0, out + err[-3000:]
    records = _records(course["course"])
    assert {s: r["score"] for s, r in records.items()} == EXPECTED
    assert records["s6"]["status"] == "malformed"
    graded = {s: v for s, v in EXPECTED.items() if records[s]["tests"]}
    assert _gradebook_scores(course["url"]) == graded  # one submission each, none duplicated or lost


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as c:
        yield c


@pytest.mark.slow
def test_dask_cluster_grades_the_class_into_postgresql(course, cluster, tmp_path):
    out = tmp_path / "grades.csv"
    proc = _cli("grade", HW, "--executor", "dask", "--scheduler", cluster.scheduler_address, "--force",
                "--submissions", str(course["subs"]), "--course-dir", str(course["course"]),
                "--db-url", course["url"], "--no-progress", "--out", str(out), *SOLUTIONS)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"sent 6 students to 2 Dask workers (2 threads) at {cluster.scheduler_address}" in proc.stdout
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(out.open())}
    assert rows == EXPECTED
    after = _records(course["course"])
    assert {s: r["score"] for s, r in after.items()} == EXPECTED
    assert {s: r["status"] for s, r in after.items()} == {**dict.fromkeys(EXPECTED, "ok"), "s6": "malformed"}
    assert _gradebook_scores(course["url"]) == {s: v for s, v in EXPECTED.items() if after[s]["tests"]}

    # a second run sends nothing: every record matches its submission
    proc = _cli("grade", HW, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                "--submissions", str(course["subs"]), "--course-dir", str(course["course"]),
                "--db-url", course["url"], "--no-progress", *SOLUTIONS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 students already graded" in proc.stdout and "Dask workers" not in proc.stdout
    assert _records(course["course"]) == after

    # feedback reads its scores from the PostgreSQL gradebook
    proc = _cli("feedback", HW, "--course-dir", str(course["course"]), "--db-url", course["url"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = sorted(p.parts[-3] for p in (course["course"] / "feedback").glob(f"*/{HW}/{HW}.html"))
    assert pages == ["s1", "s2", "s3", "s4", "s5"]
    assert "Score: 3.0 / 4.0" in (course["course"] / "feedback" / "s2" / HW / f"{HW}.html").read_text()


@pytest.mark.slow
def test_a_worker_that_cannot_see_the_course_is_named(cluster, tmp_path):
    job = Job(HW, "s", None, str(tmp_path / "not-shared"), 4.0)
    with pytest.raises(grading.GradingError, match=r"Dask workers that cannot grade: tcp://127\.0\.0\.1:\d+ "
                                                   r"does not see .*not-shared"):
        dask_executor.DaskExecutor(cluster.scheduler_address).run([job], print, deadline_s=10)
