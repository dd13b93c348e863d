"""The course folder, defined once: every path the autograder reads or writes in it.

::

    <course>/
      nbgrader_config.py             copied from autograder/nbgrader_config.py
      gradebook.db                   SQLite gradebook (unless $AUTOGRADER_DB_URL names another database)
      roster.csv                     the class list, when given
      source/<hw>/<hw>.ipynb         the instructor's notebook, copied from solutions/<hw>/
      release/<hw>/<hw>.ipynb        the student version (nbgrader generate_assignment)
      collected/<hw>/<student>/      what `collect` gathered
      work/<hw>/                     scratch folders of running jobs; released.sha256
      results/<hw>/<student>.json    one result record per student (written atomically)
      autograded/<student>/<hw>/     the graded notebook feedback is made from
      feedback/<student>/<hw>/<hw>.html
      quarantine/<hw>/<student>/     what pre-flight could not grade, with REASON.txt
      reports/<hw>/                  the class report
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
DEFAULT_COURSE_DIR = PACKAGE_DIR / "_course"
CONFIG_TEMPLATE = PACKAGE_DIR / "nbgrader_config.py"
DB_URL_ENV = "AUTOGRADER_DB_URL"
COURSE_ID = "coursekit"  # the gradebook's course row (nbgrader_config.py sets it for nbgrader too)


@dataclass(frozen=True)
class Course:
    """Paths inside one course folder."""

    root: Path

    @classmethod
    def at(cls, root: "Course | Path | str | None" = None) -> "Course":
        """The course at ``root`` (a folder, or a Course already); the default course without one."""
        if isinstance(root, Course):
            return root
        return cls(Path(root or DEFAULT_COURSE_DIR).resolve())

    @property
    def config(self) -> Path:
        return self.root / "nbgrader_config.py"

    @property
    def gradebook_db(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def roster(self) -> Path:
        return self.root / "roster.csv"

    def source(self, hw: str) -> Path:
        return self.root / "source" / hw

    def source_notebook(self, hw: str) -> Path:
        return self.source(hw) / f"{hw}.ipynb"

    def released(self, hw: str) -> Path:
        return self.root / "release" / hw / f"{hw}.ipynb"

    def collected(self, hw: str) -> Path:
        return self.root / "collected" / hw

    def work(self, hw: str) -> Path:
        return self.root / "work" / hw

    def release_stamp(self, hw: str) -> Path:
        return self.work(hw) / "released.sha256"

    def results(self, hw: str | None = None) -> Path:
        return self.root / "results" / hw if hw else self.root / "results"

    def record(self, hw: str, student: str) -> Path:
        return self.results(hw) / f"{student}.json"

    def autograded(self, student: str, hw: str) -> Path:
        return self.root / "autograded" / student / hw

    def feedback(self, student: str, hw: str) -> Path:
        return self.root / "feedback" / student / hw / f"{hw}.html"

    def quarantine(self, hw: str, student: str) -> Path:
        return self.root / "quarantine" / hw / student

    def reports(self, hw: str) -> Path:
        return self.root / "reports" / hw
