"""``python -m autograder bench``: submissions per minute at several worker counts."""
from __future__ import annotations

import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .grading import SOLUTIONS_DIR, grade, release


def solved(released, source):
    """The released notebook with the source's solution cells filled in, as a good student would hand it in."""
    nb = copy.deepcopy(released)
    answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = "\n".join(ln for ln in answers[gid].splitlines()
                                    if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln)
    return nb


def make_submissions(hw: str, released_path: Path, subs: Path, n: int, broken: float) -> None:
    """``n`` students: copies of the solution, and every ``1/broken``-th one broken in a rotating way."""
    import nbformat

    released = nbformat.read(released_path, as_version=4)
    good = solved(released, nbformat.read(SOLUTIONS_DIR / hw / f"{hw}.ipynb", as_version=4))
    kinds = ["malformed", "crash", "sys_exit", "released", "missing"]
    every = max(1, round(1 / broken)) if broken > 0 else n + 1
    for k in range(n):
        folder = subs / f"s{k:04d}"
        folder.mkdir(parents=True)
        kind = kinds[(k // every) % len(kinds)] if k % every == every - 1 else "good"
        nb = copy.deepcopy(good)
        if kind == "malformed":
            (folder / f"{hw}.ipynb").write_text('{"cells": [')
            continue
        if kind == "missing":
            continue
        if kind == "released":
            nb = released
        elif kind == "crash":
            nb.cells.insert(2, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
        elif kind == "sys_exit":
            nb.cells.insert(2, nbformat.v4.new_code_cell("import sys\nsys.exit(0)"))
        nbformat.write(nb, folder / f"{hw}.ipynb")


def bench(hw: str = "hw3_conv", n: int = 40, jobs=(1, 2), *, broken: float = 0.1, workdir: Path | None = None,
          out=sys.stdout) -> dict:
    """Grade ``n`` submissions once per worker count in ``jobs``; print and return submissions/minute."""
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="autograder-bench-"))
    course = base / "course"
    subs = base / "submissions"
    if subs.exists():
        shutil.rmtree(subs)
    released = release(hw, course)
    make_submissions(hw, released, subs, n, broken)
    rates = {}
    for j in jobs:
        t0 = time.perf_counter()
        results = grade(hw, subs, None, course, jobs=j, force=True, log=lambda *_: None, progress=False,
                        release_first=False)
        dt = time.perf_counter() - t0
        rates[j] = len(results) / dt * 60
        counts: dict = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        print(f"jobs={j}: {len(results)} submissions in {dt:.1f} s = {rates[j]:.1f} submissions/minute "
              f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})", file=out, flush=True)
    if len(jobs) > 1:
        lo, hi = min(jobs), max(jobs)
        print(f"speed-up {hi} vs {lo} workers: {rates[hi] / rates[lo]:.2f}x; "
              f"200 submissions at {hi} workers: {200 / rates[hi]:.1f} min", file=out, flush=True)
    if workdir is None:
        shutil.rmtree(base, ignore_errors=True)
    return rates
