"""Instructor tooling on top of nbgrader: release homework, grade submissions.

The command line (``python -m autograder``) is a thin layer over the functions
in :mod:`autograder.grading`.
"""
from .grading import (DEFAULT_COURSE_DIR, GradeResult, GradingError, grade, grade_one, preflight,
                      prepare_course, read_scores, release, write_csv)

__all__ = ["DEFAULT_COURSE_DIR", "GradeResult", "GradingError", "grade", "grade_one", "preflight",
           "prepare_course", "read_scores", "release", "write_csv"]
