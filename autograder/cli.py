"""``python -m autograder release|grade ...``: a thin layer over :mod:`autograder.grading`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import grading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def course_dir_arg(p):
        p.add_argument("--course-dir", type=Path, default=grading.DEFAULT_COURSE_DIR,
                       help="nbgrader's working root (default: %(default)s)")

    rel = sub.add_parser("release", help="generate the student version of a homework")
    rel.add_argument("hw", help="homework id, a folder under solutions/ (e.g. hw3_conv)")
    course_dir_arg(rel)

    gr = sub.add_parser("grade", help="autograde every student folder and write a CSV")
    gr.add_argument("hw", help="homework id (e.g. hw3_conv)")
    gr.add_argument("--submissions", type=Path, required=True,
                    help="folder with one sub-folder per student, each holding <hw>.ipynb")
    gr.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default: %(default)s)")
    gr.add_argument("--cell-timeout", type=int, default=None,
                    help="seconds per cell (default: Execute.timeout in autograder/nbgrader_config.py)")
    course_dir_arg(gr)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "release":
            path = grading.release(args.hw, args.course_dir)
            print(f"released {path}")
        elif args.command == "grade":
            results = grading.grade(args.hw, args.submissions, args.out, args.course_dir,
                                    cell_timeout=args.cell_timeout)
            print(f"wrote {args.out} ({len(results)} students)")
    except grading.GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
