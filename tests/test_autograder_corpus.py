"""The hostile/broken corpus (tests/corpus/hw3_corpus.py) graded in ONE run, then again.

One ``grade --jobs 2`` run over every case: each student gets the expected
score and status, the batch completes, every roster student has a row in the
export, a second run changes nothing. The same run proves the limits (wall
clock per notebook, memory cap, output cap) and, where bubblewrap works, the
sandbox (no network, no solutions/, gradebook or other students, no writes
outside the kernel's own scratch) with notebooks that try each.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder.sandbox import TRUNCATED_MARK, bwrap_available

REPO = Path(__file__).resolve().parents[1]
HW = "hw3_conv"
SOURCE_NB = REPO / "solutions" / HW / f"{HW}.ipynb"
LIMITS = ["--cell-timeout", "5", "--timeout", "25", "--memory-mb", "1024", "--output-kb", "256"]

_spec = importlib.util.spec_from_file_location("hw3_corpus", REPO / "tests" / "corpus" / "hw3_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

pytestmark = pytest.mark.slow


def _cli(*args, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    course, subs = root / "course", root / "submissions"
    released = grading.release(HW, course)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    probe = {"PORT": listener.getsockname()[1], "SOLUTIONS": str(SOURCE_NB),
             "GRADEBOOK": str(course / "gradebook.db"), "COURSE_SOURCE": str(course / "source" / HW / f"{HW}.ipynb"),
             "OTHER": str(subs / "a_ok_solution" / f"{HW}.ipynb"), "COURSE": str(course),
             "REPO_FILE": str(REPO / "pwned-by-student.txt"), "COURSE_FILE": str(course / "pwned-by-student.txt")}
    cases = corpus.build(subs, nbformat.read(released, as_version=4), nbformat.read(SOURCE_NB, as_version=4), probe)
    roster = root / "roster.csv"
    roster.write_text("student_id,name\n" + "".join(f"{s},Student {s}\n" for s in sorted(cases)))
    first = _cli("grade", HW, "--submissions", subs, "--course-dir", course, "--roster", roster, "--jobs", "2",
                 "--no-progress", "--out", root / "short.csv", *LIMITS)
    _cli("export", HW, "--course-dir", course, "--to", root / "grades.csv", "--reasons")
    snapshot = {p.name: p.read_bytes() for p in (course / "results" / HW).glob("*.json")}
    gradebook_1 = {s: grading.read_scores(HW, s, course)[0] for s, (_, st, _) in cases.items() if st in ("ok", "tampered")}
    second = _cli("grade", HW, "--submissions", subs, "--course-dir", course, "--jobs", "2", "--no-progress",
                  *LIMITS)
    _cli("export", HW, "--course-dir", course, "--to", root / "grades2.csv", "--reasons")
    listener.close()
    rows = {r["student_id"]: r for r in csv.DictReader((root / "grades.csv").open())}
    return {"root": root, "course": course, "cases": cases, "rows": rows, "first": first, "second": second,
            "snapshot": snapshot, "gradebook_1": gradebook_1, "subs": subs}


def _executed(run, student):
    return nbformat.read(run["course"] / "autograded" / student / HW / f"{HW}.ipynb", as_version=4)


def _text(nb):
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or json.dumps(o.get("data", {})) + o.get("ename", "") + o.get("evalue", ""))
    return "\n".join(out)


def test_every_case_gets_its_score_status_and_reason(run):
    wrong = []
    for student, (score, status, reason) in sorted(run["cases"].items()):
        row = run["rows"].get(student)
        if row is None:
            wrong.append(f"{student}: no row")
            continue
        got = (float(row["score"]), row["status"])
        if got != (float(score), status) or (reason and reason not in row["reason"]):
            wrong.append(f"{student}: expected {score} {status} ({reason}), got {got} ({row['reason']})")
    assert not wrong, "\n".join(wrong)


def test_export_has_the_columns_and_one_row_per_roster_student(run):
    header = (run["root"] / "grades.csv").read_text().splitlines()[0]
    assert header == "student_id,assignment,score,max_score,status,reason"
    assert sorted(run["rows"]) == sorted(run["cases"])
    assert {r["assignment"] for r in run["rows"].values()} == {HW}
    assert {r["max_score"] for r in run["rows"].values()} == {"10"}
    assert {r["status"] for r in run["rows"].values()} == {"ok", "timeout", "crashed", "malformed", "missing",
                                                           "tampered"}
    short = list(csv.reader((run["root"] / "short.csv").open()))
    assert short[0] == ["student_id", "score", "max_score"] and len(short) == 1 + len(run["cases"])


def test_second_run_changes_nothing(run):
    assert "already graded" in run["second"].stdout
    assert (run["root"] / "grades.csv").read_bytes() == (run["root"] / "grades2.csv").read_bytes()
    after = {p.name: p.read_bytes() for p in (run["course"] / "results" / HW).glob("*.json")}
    assert after == run["snapshot"]
    for student, score in run["gradebook_1"].items():
        assert grading.read_scores(HW, student, run["course"])[0] == score == float(run["rows"][student]["score"])


def test_gradebook_holds_per_test_scores(run):
    tests = grading.read_scores(HW, "f_tampered_test_edit", run["course"])[2]
    assert tests["test_backward_dw"] == (0.0, 2.0) and tests["test_backward_dx"] == (2.0, 2.0)


def test_unreadable_submissions_are_quarantined_with_a_reason(run):
    for student in ("i_malformed_json", "j_malformed_other_notebook"):
        q = run["course"] / "quarantine" / HW / student
        assert "unreadable" in (q / "REASON.txt").read_text()
        assert (q / "files" / f"{HW}.ipynb").is_file()


def test_memory_cap_stops_an_allocation(run):
    text = _text(_executed(run, "r_ok_memory_hog"))
    assert "MemoryError" in text and "allocated 3 GiB" not in text


def test_output_cap_bounds_the_graded_notebook(run):
    path = run["course"] / "autograded" / "s_ok_output_flood" / HW / f"{HW}.ipynb"
    assert path.stat().st_size < 256 * 1024 + 200_000  # the notebook itself plus at most the cap of outputs
    assert TRUNCATED_MARK in _text(_executed(run, "s_ok_output_flood"))


def test_wall_clock_limit_per_notebook(run):
    record = json.loads((run["course"] / "results" / HW / "u_timeout_notebook_limit.json").read_text())
    assert record["status"] == "timeout" and "25 s limit" in record["reason"]


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot create a sandbox here (`bwrap --unshare-all "
                                                    "--ro-bind / / true` fails); install Debian's bubblewrap")
def test_sandbox_blocks_network_files_and_writes(run):
    text = _text(_executed(run, "t_ok_snoop"))
    line = next(ln for ln in text.splitlines() if ln.startswith("PROBE "))
    probe = json.loads(line[len("PROBE "):])
    assert probe.pop("write_tmp") == "ALLOWED"  # its own private scratch
    # /tmp in the sandbox is the kernel's private tmpfs: where the course or the repository
    # lives under /tmp, a write to its path succeeds there but never reaches the real folder
    # (checked below), so only there is "ALLOWED" not a leak.
    for key, folder in (("write_course", run["course"]), ("write_repo", REPO)):
        if str(folder).startswith("/tmp/"):
            probe.pop(key)
    leaks = {k: v for k, v in probe.items() if not v.startswith("blocked")}
    assert not leaks, leaks
    assert not (REPO / "pwned-by-student.txt").exists()
    assert not (run["course"] / "pwned-by-student.txt").exists()


def test_feedback_keeps_failure_messages_and_hides_hidden_tests(run):
    _cli("feedback", HW, "--course-dir", run["course"], "--student", "f_tampered_test_edit")
    page = (run["course"] / "feedback" / "f_tampered_test_edit" / HW / f"{HW}.html").read_text()
    assert "dw differs from the reference at index" in page
    for leak in ("BEGIN HIDDEN TESTS", "_ck", "conv2d_cases", "fresh_seed"):
        assert leak not in page, leak


def test_report_png_and_html(run):
    _cli("report", HW, "--course-dir", run["course"], "--out", run["root"] / "report")
    png = run["root"] / "report" / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (run["root"] / "report" / "report.html").read_text()
    assert "test_backward_dw" in page and "data:image/png;base64," in page
