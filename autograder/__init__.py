"""Instructor tooling on top of nbgrader: release homework, grade submissions, feedback, export.

The command line (``python -m autograder``) is a thin layer over :mod:`autograder.grading`.
This package imports nothing on its own: the student's side of grading
(:mod:`autograder.runner`) imports :mod:`autograder.wire` from it and must not pay for
(or see) the grader.
"""
