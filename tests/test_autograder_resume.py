"""Parallel grading is resumable: a killed run finishes on re-run without losing or duplicating grades."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nbgrader.api import Gradebook

import demo_support as demo

REPO = Path(__file__).resolve().parents[1]
HW = demo.HW
N = 4

pytestmark = pytest.mark.slow


def test_killed_run_resumes_and_force_regrades(tmp_path):
    course, subs = tmp_path / "course", tmp_path / "subs"
    good = demo.solved(demo.release(course))
    for k in range(N):
        (subs / f"s{k}").mkdir(parents=True)
        nbformat.write(copy.deepcopy(good), subs / f"s{k}" / f"{HW}.ipynb")
    cmd = [sys.executable, "-m", "autograder", "grade", HW, "--submissions", str(subs), "--course-dir", str(course),
           "--jobs", "1", "--no-progress", "--solutions", str(demo.SOLUTIONS)]
    results = course / "results" / HW
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(results.glob("*.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # a power cut: the grader and its workers die at once
    proc.wait()
    done = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert 0 < len(done) < N, "the kill should land mid-run"
    assert not list(results.glob(".*")) or all(p.name.startswith(".") for p in results.iterdir()
                                                if not p.name.endswith(".json"))

    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(done)} students already graded" in proc.stdout
    after = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert sorted(after) == [f"s{k}.json" for k in range(N)]
    assert all(after[name] == data for name, data in done.items())  # finished grades were not redone
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs_in_gb = [(s.student.id, s.score) for s in gb.find_assignment(HW).submissions]
    assert sorted(subs_in_gb) == [(f"s{k}", 4.0) for k in range(N)]  # one each, none duplicated

    proc = subprocess.run(cmd + ["--force", "--student", "s0"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    regraded = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert "s0: 4 / 4 [ok]" in proc.stdout
    assert json.loads(regraded["s0.json"])["score"] == 4.0
    assert all(regraded[f"s{k}.json"] == after[f"s{k}.json"] for k in range(1, N))
