"""Feedback pages and the class report."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from .grading import DEFAULT_COURSE_DIR, GradingError, load_records, nbgrader_env


HIDING = ("ClearHiddenTracebacks", "ClearHiddenTests")


def feedback(hw: str, course_dir: Path | None = None, students=None, *, reveal_hidden: bool = False) -> list:
    """Per-student HTML feedback (``<course>/feedback/<student>/<hw>/<hw>.html``), hidden tests stripped.

    Uses nbgrader's ``generate_feedback`` through its Python API with the
    course config (``ClearHiddenTracebacks`` then ``ClearHiddenTests``): the
    failing tests keep their ``CheckFailure`` message, hidden test code is
    gone. Only students with a graded notebook get a page. ``reveal_hidden``
    keeps the hidden tests and their tracebacks (the caller checks that every
    deadline has passed: see :func:`autograder.term.check_reveal`).
    """
    import os

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    records = [r for r in load_records(course_dir, hw) if r.get("tests")]
    if students:
        records = [r for r in records if r["student_id"] in set(students)]
    os.environ.update({"PATH": nbgrader_env()["PATH"]})
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    cfg.CourseDirectory.root = str(course_dir)
    if reveal_hidden:
        cfg.GenerateFeedback.preprocessors = [p for p in cfg.GenerateFeedback.preprocessors
                                              if p.__name__ not in HIDING]
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    paths = []
    for rec in records:
        student = rec["student_id"]
        if not (course_dir / "autograded" / student / hw / f"{hw}.ipynb").is_file():
            continue
        result = api.generate_feedback(hw, student, force=True)
        page = course_dir / "feedback" / student / hw / f"{hw}.html"
        if not result.get("success") or not page.is_file():
            raise GradingError(f"generate_feedback failed for {student}:\n{(result.get('log') or '')[-2000:]}")
        paths.append(page)
    return paths


def report(hw: str, course_dir: Path | None = None, out: Path | None = None) -> tuple:
    """Write ``report.png`` (score histogram, failure rate per test) and ``report.html``; return both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    course_dir = Path(course_dir or DEFAULT_COURSE_DIR).resolve()
    out = Path(out or course_dir / "reports" / hw)
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
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(hw)} report</title></head>"
            f"<body><h1>{html.escape(hw)}</h1><p>{len(records)} students, mean score {mean:.2f} / {max_score:g}</p>"
            f"<img alt='score histogram and failure rates' src='data:image/png;base64,{img}'>"
            f"<h2>Failure rate per test</h2><table><tr><th>test</th><th>failing</th></tr>{rows}</table>"
            f"<h2>Statuses</h2><table><tr><th>status</th><th>students</th></tr>{srows}</table></body></html>")
    page_path = out / "report.html"
    page_path.write_text(page)
    return png, page_path
