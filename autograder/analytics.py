"""Item analysis of an assignment: which tests are hard, which tell students apart, why they fail.

Per test, over the students with a graded notebook:

* difficulty: the share of students with full points on it (higher is easier);
* discrimination: the corrected item-total correlation, Pearson's r between a
  student's points on the test and their points on all the *other* tests (with a
  pass/fail test this is the point-biserial correlation). Near 0: passing says
  nothing about the rest of the work; negative: look at the test;
* the most common failure messages (the error each test cell raised in the
  autograded notebook, numbers blanked so the same failure groups together).

Per assignment: raw and final scores (after late penalties and overrides), the
statuses, and the grading time per notebook; ``analytics.html`` embeds the plots.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402

from .finals import final_rows  # noqa: E402
from .grading import load_records  # noqa: E402
from .layout import Course as CourseFolder
from .files import write_text_atomic


@dataclass(frozen=True)
class ItemStats:
    name: str
    max_points: float
    difficulty: float            # share with full points
    discrimination: float | None  # None when the test or the rest has no spread
    failures: tuple              # ((message, count), ...) most common first


def item_total(scores: np.ndarray) -> list:
    """Corrected item-total correlation of each column of ``scores (students, tests)``."""
    total = scores.sum(axis=1)
    out = []
    for j in range(scores.shape[1]):
        item, rest = scores[:, j], total - scores[:, j]
        if item.std() == 0 or rest.std() == 0:
            out.append(None)
        else:
            out.append(float(np.corrcoef(item, rest)[0, 1]))
    return out


def failure_messages(course_dir: Path, hw: str, student: str) -> dict:
    """``{grade_id: message}`` of the test cells that raised, from the autograded notebook."""
    path = CourseFolder.at(course_dir).autograded(student, hw) / f"{hw}.ipynb"
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for cell in nb.get("cells", []):
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        for o in cell.get("outputs", []) if gid else []:
            if o.get("output_type") == "error":
                first = (str(o.get("evalue", "")).strip().splitlines() or [""])[0]
                out[gid] = f"{o.get('ename', 'Error')}: {first}"[:200]
    return out


def _group(message: str) -> str:
    return re.sub(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", "#", message)


def item_stats(course_dir: Path, hw: str, records: list) -> list:
    graded = [r for r in records if r.get("tests")]
    if not graded:
        return []
    names = list(dict.fromkeys(t for r in graded for t in r["tests"]))
    scores = np.array([[float(r["tests"].get(t, [0, 0])[0]) for t in names] for r in graded])
    maxima = [max(float(r["tests"][t][1]) for r in graded if t in r["tests"]) for t in names]
    disc = item_total(scores)
    messages = {r["student_id"]: failure_messages(course_dir, hw, r["student_id"]) for r in graded}
    out = []
    for j, t in enumerate(names):
        failed = [r["student_id"] for i, r in enumerate(graded) if scores[i, j] < maxima[j]]
        groups = Counter(_group(messages[s].get(t, "no error shown (wrong value or a hidden check)"))
                         for s in failed)
        out.append(ItemStats(t, maxima[j], 1 - len(failed) / len(graded), disc[j], tuple(groups.most_common(3))))
    return out


def _plots(hw: str, records: list, finals: list) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    top = max([f.max_score for f in finals] + [1.0])
    bins = np.linspace(0, top, min(21, int(top) + 2))
    axes[0].hist([[f.raw for f in finals], [f.final for f in finals]], bins=bins, label=["raw", "final"],
                 color=["#9db4d6", "#4c72b0"])
    axes[0].set(xlabel="points", ylabel="students", title=f"{hw}: raw and final (late penalties, overrides)")
    axes[0].legend()
    statuses = Counter(r["status"] for r in finals_as_status(finals))
    axes[1].bar(list(statuses), list(statuses.values()), color="#55a868")
    axes[1].set(title="statuses", ylabel="students")
    secs = [float(r.get("seconds") or 0) for r in records if r.get("tests")]
    axes[2].hist(secs or [0], bins=15, color="#dd8452")
    axes[2].set(xlabel="seconds per notebook", title="grading time")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def finals_as_status(finals: list) -> list:
    """Statuses with lateness folded in: ``late`` for a penalised submission, ``cut-off`` past the cut-off."""
    out = []
    for f in finals:
        status = f.status
        if f.late.cutoff:
            status = "after cut-off"
        elif f.penalty > 0:
            status = f"{status}, late"
        out.append({"student_id": f.student_id, "status": status})
    return out


def analytics(hw: str, course_dir: Path, out: Path | None = None) -> Path:
    """Write ``analytics.html`` for ``hw`` and return its path."""
    course_dir = Path(course_dir)
    records = load_records(course_dir, hw)
    finals = final_rows(course_dir, hw)
    stats = item_stats(course_dir, hw, records)
    out = Path(out or CourseFolder.at(course_dir).reports(hw) / "analytics.html")
    write_text_atomic(out, _page(hw, stats, records, finals))
    return out


def _page(hw: str, stats: list, records: list, finals: list) -> str:
    img = _plots(hw, records, finals)
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.max_points:g}</td><td>{100 * s.difficulty:.0f}%</td>"
        f"<td>{'—' if s.discrimination is None else f'{s.discrimination:+.2f}'}</td><td>"
        + "<br>".join(f"{n}× {html.escape(m)}" for m, n in s.failures) + "</td></tr>" for s in stats)
    n = len(finals)
    mean_raw = sum(f.raw for f in finals) / n if n else 0.0
    mean_final = sum(f.final for f in finals) / n if n else 0.0
    late = sum(1 for f in finals if f.penalty > 0)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(hw)} analytics</title>"
            "<style>body{font-family:sans-serif} td,th{padding:2px 8px;text-align:left;vertical-align:top}"
            "</style></head>"
            f"<body><h1>{html.escape(hw)}</h1><p>{n} students; mean raw {mean_raw:.2f}, mean final "
            f"{mean_final:.2f}; {late} lost points for lateness.</p>"
            f"<img alt='score distribution, statuses and grading times' src='data:image/png;base64,{img}'>"
            "<h2>Tests</h2><p>Passing: share of graded students with full points. Discrimination: "
            "correlation of the test's points with the points of all other tests.</p>"
            "<table><tr><th>test</th><th>points</th><th>passing</th><th>discrimination</th>"
            f"<th>most common failures</th></tr>{rows}</table></body></html>")
