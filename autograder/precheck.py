"""A student's check before handing in: what will the grader repair, flag or fail?

Runs the grader's own pre-flight pass (:func:`autograder.preflight.inspect_submission`)
on the student's notebook against the notebook as handed out, then runs the repaired
notebook's code -- the student's cells and the public test cells -- in this Python, so
it works on a laptop or in Colab without nbgrader. From a notebook::

    from autograder.precheck import precheck
    print(precheck("hw1_classifiers.ipynb", released="hw1_classifiers_released.ipynb"))

The hidden tests are not in the released notebook, so passing here is necessary, not
sufficient.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import coursekit.homework as homework

from .grading import DEFAULT_COURSE_DIR
from .layout import Course as CourseFolder
from .preflight import inspect_submission, normalise_name


@dataclass
class Precheck:
    hw: str
    unreadable: str = ""                          # the grader cannot grade it at all
    repairs: list = field(default_factory=list)    # accidents the grader repairs silently
    flags: list = field(default_factory=list)      # changes the grader repairs and shows to a person
    passed: list = field(default_factory=list)     # public test cells that ran clean
    failed: list = field(default_factory=list)     # (test, plain-words message)
    errors: list = field(default_factory=list)     # (cell, message) of the student's cells that raised
    hidden_only: list = field(default_factory=list)  # test cells with no public check: they run at grading

    @property
    def ok(self) -> bool:
        return not (self.unreadable or self.flags or self.failed or self.errors)

    def __str__(self) -> str:
        if self.unreadable:
            return f"{self.hw}: the grader cannot grade this notebook: {self.unreadable}. It would score 0."
        lines = [f"{self.hw}: " + ("ready to hand in." if self.ok else "look at the points below before handing in.")]
        lines += [f"  the grader will repair: {r}" for r in self.repairs]
        lines += [f"  the grader will flag for a person (and grade the restored cell): {f}" for f in self.flags]
        lines += [f"  your cell {c} raised {m}" for c, m in self.errors]
        lines += [f"  public test {t} fails: {m}" for t, m in self.failed]
        if self.passed:
            lines.append(f"  public tests passing: {', '.join(self.passed)} (the hidden tests run at grading)")
        if self.hidden_only:
            lines.append(f"  tests checked only at grading (no public part): {', '.join(self.hidden_only)}")
        return "\n".join(lines)


def _released(hw: str, released) -> nbformat.NotebookNode:
    path = Path(released) if released else CourseFolder.at(DEFAULT_COURSE_DIR).released(hw)
    if not path.is_file():
        raise FileNotFoundError(f"no released notebook {path}: pass released= the notebook as it was handed out")
    return nbformat.read(path, as_version=4)


def precheck(notebook, released=None, *, hw: str | None = None, run: bool = True) -> Precheck:
    """Check ``notebook`` the way the grader will; ``run=False`` skips running the code."""
    notebook = Path(notebook)
    hw = hw or normalise_name(notebook.stem)
    ref = _released(hw, released)
    with tempfile.TemporaryDirectory(prefix="precheck.") as tmp:
        shutil.copyfile(notebook, Path(tmp) / notebook.name)  # the grader sees the file under its own name
        pre = inspect_submission(hw, Path(tmp), ref)
    result = Precheck(hw)
    if pre.notebook is None:
        result.unreadable = pre.reason or pre.status
        return result
    result.repairs, result.flags = list(pre.notes), list(pre.tampering)
    if run:
        run_cells(pre.notebook, result)
    return result


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def run_cells(nb, result: Precheck) -> None:
    """Run every code cell in one namespace, ``student`` bound to it; sort out what raised."""
    ns: dict = {"__name__": "__main__"}
    saved = homework.student
    homework.student = ns["student"] = homework.student_in(ns)
    try:
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = _meta(cell)
            label = meta.get("grade_id") or f"#{k + 1}"
            message = _exec(cell.source, ns, label)
            if meta.get("grade") and meta.get("locked") and not _has_code(cell.source):
                result.hidden_only.append(label)
            elif meta.get("grade") and meta.get("locked"):
                (result.failed.append((label, message)) if message else result.passed.append(label))
            elif message:
                result.errors.append((label, message))
    finally:
        homework.student = saved


def _has_code(source: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in source.splitlines())


def _exec(source: str, ns: dict, label: str) -> str:
    """Run one cell; ``""`` if it ran clean, else the error in plain words."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"<cell {label}>", "exec"), ns)  # noqa: S102 - the student's own code, their machine
    except NameError as exc:
        return f"NameError: {exc} (is a function missing, renamed, or its cell not run?)"
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__}: {first} (line {where.lineno} of {where.filename})"
    return ""
