"""Feedback pages and the class report."""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import matplotlib.pyplot as plt
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

from .grading import GradingError, load_records, nbgrader_env
from .layout import Course


HIDING = ("ClearHiddenTracebacks", "ClearHiddenTests")


def _nbgrader_api(course: Course, reveal_hidden: bool = False) -> NbGraderAPI:
    os.environ["PATH"] = nbgrader_env()["PATH"]
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    cfg.CourseDirectory.root = str(course.root)
    if reveal_hidden:
        cfg.GenerateFeedback.preprocessors = [p for p in cfg.GenerateFeedback.preprocessors
                                              if p.__name__ not in HIDING]
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


def plain_feedback(record: dict) -> str:
    """A feedback page made from the record alone: score, and each test's points and message."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(t)}</td><td>{s:g} / {m:g}</td><td><pre>{esc(record.get('messages', {}).get(t) or '')}</pre></td></tr>"
        for t, (s, m) in record["tests"].items())
    notes = "".join(f"<li>{esc(n)}</li>" for n in record.get("notes", []))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(record['assignment'])} feedback</title>"
            f"</head><body><h1>{esc(record['assignment'])}: {esc(record['student_id'])}</h1>"
            f"<p>Score {float(record['score']):g} / {float(record['max_score']):g} ({esc(record['status'])})</p>"
            f"<table><tr><th>test</th><th>points</th><th>why it failed</th></tr>{rows}</table>"
            f"<ul>{notes}</ul></body></html>")


def feedback(hw: str, course_dir: Path | None = None, students=None, *, log=print,
             reveal_hidden: bool = False) -> list:
    """Per-student HTML feedback (``<course>/feedback/<student>/<hw>/<hw>.html``), hidden tests stripped.

    nbgrader's ``generate_feedback`` with the course config (``ClearHiddenTracebacks`` then
    ``ClearHiddenTests``) shows the graded notebook: each failing test with the grader's
    message, hidden test code gone. Where nbgrader cannot make a page for a student (whatever
    their notebook holds), that student gets a plain page made from their record, the problem
    is logged, and the batch goes on. Every graded student gets a page. ``reveal_hidden``
    keeps the hidden tests (the caller checks every deadline has passed: term.check_reveal).
    """
    course = Course.at(course_dir)
    records = [r for r in load_records(course.root, hw) if r.get("tests")]
    if students:
        records = [r for r in records if r["student_id"] in set(students)]
    api = _nbgrader_api(course, reveal_hidden)
    paths = []
    for rec in records:
        student, page = rec["student_id"], course.feedback(rec["student_id"], hw)
        try:
            result = api.generate_feedback(hw, student, force=True)
            ok = result.get("success") and page.is_file()
            problem = None if ok else (result.get("error") or result.get("log") or "no page").strip()[-300:]
        except Exception as exc:  # noqa: BLE001 - one student's page must not stop the others'
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if problem:
            log(f"warning: {student}: nbgrader could not make the feedback page ({problem.splitlines()[-1]}); "
                "wrote a plain page from the record")
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(plain_feedback(rec))
        paths.append(page)
    return paths


def report(hw: str, course_dir: Path | None = None, out: Path | None = None) -> tuple:
    """Write ``report.png`` (score histogram, failure rate per test) and ``report.html``; return both paths."""
    course = Course.at(course_dir)
    course_dir = course.root
    out = Path(out or course.reports(hw))
    out.mkdir(parents=True, exist_ok=True)
    records = load_records(course_dir, hw)
    if not records:
        raise GradingError(f"no results for {hw} in {course_dir}; run `grade {hw}` first")
    scores = [float(r["score"]) for r in records]
    max_score = max(float(r["max_score"]) for r in records)
    graded = [r for r in records if r.get("tests")]
    test_names = list(dict.fromkeys(name for r in graded for name in r["tests"]))
    fail_rate = {t: sum(1 for r in graded if r["tests"][t][0] < r["tests"][t][1]) / len(graded)
                 for t in test_names} if graded else {}
    statuses: dict = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = [x - 0.5 for x in range(int(max_score) + 2)]
    ax1.hist(scores, bins=bins, color="#4c72b0", edgecolor="white")
    ax1.set(xlabel="score", ylabel="students", title=f"{hw}: scores (n={len(records)})")
    ax2.barh(list(fail_rate), [100 * v for v in fail_rate.values()], color="#dd8452")
    ax2.set(xlabel="% of graded notebooks failing", title="failure rate per test", xlim=(0, 100))
    ax2.invert_yaxis()
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)

    buf = io.BytesIO(png.read_bytes())
    img = base64.b64encode(buf.getvalue()).decode()
    rows = "".join(f"<tr><td>{html.escape(t)}</td><td>{100 * v:.0f}%</td></tr>" for t, v in fail_rate.items())
    srows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in sorted(statuses.items()))
    mean = sum(scores) / len(scores)
    unsandboxed = sum(1 for r in records if r.get("isolation") == "NO SANDBOX")
    warning = (f"<p><strong>{unsandboxed} of these grades were made with no sandbox (--sandbox none): the "
               "students' code ran with the grader's rights.</strong></p>") if unsandboxed else ""
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(hw)} report</title></head>"
            f"<body><h1>{html.escape(hw)}</h1>{warning}<p>{len(records)} students, mean score {mean:.2f} / {max_score:g}</p>"
            f"<img alt='score histogram and failure rates' src='data:image/png;base64,{img}'>"
            f"<h2>Failure rate per test</h2><table><tr><th>test</th><th>failing</th></tr>{rows}</table>"
            f"<h2>Statuses</h2><table><tr><th>status</th><th>students</th></tr>{srows}</table></body></html>")
    page_path = out / "report.html"
    page_path.write_text(page)
    return png, page_path
