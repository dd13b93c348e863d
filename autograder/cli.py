"""``python -m autograder release|collect|grade|feedback|export|report|bench``.

A thin layer over :mod:`autograder.grading`, :mod:`autograder.reports` and
:mod:`autograder.bench`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import grading
from .bench import bench
from .reports import feedback, report
from .sandbox import Limits, isolation_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def course_dir_arg(p):
        p.add_argument("--course-dir", type=Path, default=grading.DEFAULT_COURSE_DIR,
                       help="nbgrader's working root (default: %(default)s)")
        p.add_argument("--solutions", type=Path, default=grading.SOLUTIONS_DIR,
                       help="folder of the instructor's homework notebooks, one folder each (default: %(default)s)")
        p.add_argument("--db-url", default=None,
                       help="gradebook database, e.g. postgresql://grader@dbhost/ml101 for several graders "
                            f"(default: ${grading.DB_URL_ENV}, else SQLite in the course folder)")

    def limit_args(p):
        d = Limits()
        p.add_argument("--cell-timeout", type=float, default=d.cell_timeout,
                       help="seconds for one notebook cell, and for one test's calls (default: %(default)s)")
        p.add_argument("--timeout", type=float, default=d.notebook_timeout,
                       help="wall-clock seconds per submission (default: %(default)s)")
        p.add_argument("--memory-mb", type=int, default=d.memory_bytes // 2 ** 20,
                       help="memory cap of a submission, all its processes together, MiB (default: %(default)s)")
        p.add_argument("--max-processes", type=int, default=d.max_pids,
                       help="processes and threads a submission may run at once (default: %(default)s)")
        p.add_argument("--output-kb", type=int, default=d.output_bytes // 1024,
                       help="printed output kept per submission, KiB (default: %(default)s)")
        p.add_argument("--sandbox", choices=("bwrap", "none"), default="bwrap",
                       help="bwrap (default): bubblewrap and a cgroup, refused with the fix named where they "
                            "cannot be had; none: run student code with your own rights (says so in the export)")

    rel = sub.add_parser("release", help="generate the student version of a homework (and its gradebook entries)")
    rel.add_argument("hw", help="homework id, a folder under solutions/ (e.g. hw3_conv)")
    course_dir_arg(rel)

    col = sub.add_parser("collect", help="gather submissions from per-student folders or an LMS zip")
    col.add_argument("hw")
    col.add_argument("--from", dest="source", type=Path, required=True, help="a folder of student folders, or a zip")
    col.add_argument("--roster", type=Path, default=None, help="CSV with a student_id column")
    col.add_argument("--regex", default=None, help="file-name pattern of zip members (nbgrader zip_collect style, "
                                                   "with a (?P<student_id>...) group)")
    course_dir_arg(col)

    gr = sub.add_parser("grade", help="autograde every student in parallel worker processes")
    gr.add_argument("hw", help="homework id (e.g. hw3_conv)")
    gr.add_argument("--submissions", type=Path, default=None,
                    help="folder with one sub-folder per student (default: what `collect` gathered)")
    gr.add_argument("--out", type=Path, default=None, help="also write student_id,score,max_score here")
    gr.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default: %(default)s)")
    gr.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    gr.add_argument("--force", action="store_true", help="re-grade students that already have a result")
    gr.add_argument("--roster", type=Path, default=None, help="CSV with a student_id column")
    gr.add_argument("--no-progress", action="store_true", help="no progress bar")
    gr.add_argument("--executor", choices=("local", "dask"), default="local",
                    help="local worker processes (--jobs), or a Dask distributed cluster (--scheduler)")
    gr.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="the Dask scheduler, e.g. tcp://10.0.0.5:8786; its workers must share the course folder")
    limit_args(gr)
    course_dir_arg(gr)

    fb = sub.add_parser("feedback", help="per-student HTML feedback (hidden tests stripped)")
    fb.add_argument("hw")
    fb.add_argument("--student", action="append", default=None)
    course_dir_arg(fb)

    ex = sub.add_parser("export", help="CSV: student_id, assignment, score, max_score, status")
    ex.add_argument("hw", nargs="?", default=None, help="one homework (default: all)")
    ex.add_argument("--to", type=Path, default=Path("grades.csv"), help="CSV to write (default: %(default)s)")
    ex.add_argument("--roster", type=Path, default=None)
    ex.add_argument("--reasons", action="store_true", help="add a sixth column with the reason")
    course_dir_arg(ex)

    rp = sub.add_parser("report", help="PNG + HTML: score histogram and failure rate per test")
    rp.add_argument("hw")
    rp.add_argument("--out", type=Path, default=None, help="folder (default: <course>/reports/<hw>)")
    course_dir_arg(rp)

    be = sub.add_parser("bench", help="grade N copies of the solution (plus broken ones) at several worker counts")
    be.add_argument("--hw", default="hw3_conv")
    be.add_argument("--n", type=int, default=40)
    be.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    be.add_argument("--broken", type=float, default=0.1, help="fraction of broken submissions")
    be.add_argument("--workdir", type=Path, default=None)
    return parser


def _limits(args) -> Limits:
    return Limits(notebook_timeout=args.timeout, cell_timeout=args.cell_timeout, memory_bytes=args.memory_mb * 2 ** 20,
                  max_pids=args.max_processes, output_bytes=args.output_kb * 1024, sandbox=args.sandbox)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "db_url", None):
        os.environ[grading.DB_URL_ENV] = args.db_url  # nbgrader's subprocesses and config read it from here
    try:
        if args.command == "release":
            path = grading.release(args.hw, args.course_dir, solutions_dir=args.solutions)
            print(f"released {path}")
        elif args.command == "collect":
            n = grading.collect(args.hw, args.source, args.course_dir, roster=args.roster, regex=args.regex)
            print(f"collected {n} submissions into {args.course_dir / 'collected' / args.hw}")
        elif args.command == "grade":
            limits = _limits(args)
            print(f"isolation: {isolation_report(limits)}", file=sys.stderr)
            results = grading.grade(args.hw, args.submissions, args.out, args.course_dir, jobs=args.jobs, students=args.student,
                                    force=args.force, roster=args.roster, limits=limits,
                                    progress=False if args.no_progress else None, executor=args.executor,
                                    scheduler=args.scheduler, solutions_dir=args.solutions)
            counts = {}
            for r in results:
                counts[r.status] = counts.get(r.status, 0) + 1
            summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            where = f"wrote {args.out} " if args.out else ""
            print(f"{where}({len(results)} students: {summary})")
        elif args.command == "feedback":
            paths = feedback(args.hw, args.course_dir, students=args.student)
            print(f"wrote {len(paths)} feedback pages under {args.course_dir / 'feedback'}")
        elif args.command == "export":
            rows = grading.export(args.course_dir, args.hw, args.to, roster=args.roster, with_reason=args.reasons)
            print(f"wrote {args.to} ({len(rows)} rows)")
        elif args.command == "report":
            png, html = report(args.hw, args.course_dir, args.out)
            print(f"wrote {png} and {html}")
        elif args.command == "bench":
            bench(args.hw, args.n, args.jobs, broken=args.broken, workdir=args.workdir)
    except grading.GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished students keep their results; run the same command again to grade the rest",
              file=sys.stderr)
        return 130
    return 0
