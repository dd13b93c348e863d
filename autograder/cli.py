"""``python -m autograder release|collect|grade|feedback|export|report|bench`` and the term's commands
``override|overrides|regrade|similarity|precheck``.

A thin layer over :mod:`autograder.grading`, :mod:`autograder.reports`,
:mod:`autograder.bench` and the term's modules (:mod:`autograder.term`,
:mod:`autograder.overrides`, :mod:`autograder.finals`, :mod:`autograder.lms`,
:mod:`autograder.regrade`, :mod:`autograder.similarity`, :mod:`autograder.analytics`,
:mod:`autograder.precheck`).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import analytics, finals, grading, lms, precheck, similarity, term
from . import overrides as ovr
from . import regrade as rg
from .bench import bench
from .layout import Course
from .reports import feedback, report
from .sandbox import Limits, isolation_report
from .term import TermError


def course_dir_arg(p) -> None:
    p.add_argument("--course-dir", type=Path, default=grading.DEFAULT_COURSE_DIR,
                   help="nbgrader's working root (default: %(default)s)")
    p.add_argument("--solutions", type=Path, default=grading.SOLUTIONS_DIR,
                   help="folder of the instructor's homework notebooks, one folder each (default: %(default)s)")
    p.add_argument("--db-url", default=None,
                   help="gradebook database, e.g. postgresql://grader@dbhost/ml101 for several graders "
                        f"(default: ${grading.DB_URL_ENV}, else SQLite in the course folder)")


def limit_args(p) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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

    _grade_parser(sub)

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

    _term_parsers(sub, course_dir_arg, limit_args)

    be = sub.add_parser("bench", help="grade N copies of the solution (plus broken ones) at several worker counts")
    be.add_argument("--hw", default="hw3_conv")
    be.add_argument("--n", type=int, default=40)
    be.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    be.add_argument("--broken", type=float, default=0.1, help="fraction of broken submissions")
    be.add_argument("--workdir", type=Path, default=None)
    return parser


def _grade_parser(sub) -> None:
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


def _term_parsers(sub, course_dir_arg, limit_args) -> None:
    """The term's options of ``export`` and ``feedback``, and the term's own commands."""
    ex, fb = sub.choices["export"], sub.choices["feedback"]
    ex.add_argument("--format", choices=("plain", "canvas", "moodle"), default="plain",
                    help="plain CSV (with lateness, penalty, final score when the course has course.yml or "
                         "overrides), Canvas's gradebook import, or Moodle's CSV grade import")
    ex.add_argument("--moodle-id", choices=sorted(lms.MOODLE_IDS), default="email",
                    help="the roster column Moodle matches users on (default: %(default)s)")
    fb.add_argument("--reveal-hidden", action="store_true",
                    help="show the hidden tests' code and tracebacks; refused before every deadline has passed "
                         "(extensions and cut-off included)")
    ov = sub.add_parser("override", help="set one test's points, or the final score, of one student (with a reason)")
    ov.add_argument("hw")
    ov.add_argument("student")
    ov.add_argument("--test", default=None, help="the test's grade_id (default: override the final score)")
    ov.add_argument("--points", type=float, required=True)
    ov.add_argument("--reason", required=True)
    ov.add_argument("--by", default=None, help="who (default: the login name)")
    course_dir_arg(ov)

    ol = sub.add_parser("overrides", help="list the overrides, or drop one by id")
    ol.add_argument("action", choices=("list", "drop"))
    ol.add_argument("id", nargs="?", type=int, default=None, help="the override to drop")
    ol.add_argument("--hw", default=None)
    ol.add_argument("--reason", default="", help="why it is dropped")
    ol.add_argument("--by", default=None)
    course_dir_arg(ol)

    rg_ = sub.add_parser("regrade", help="after fixing a test: release, grade everyone again, show the changes")
    rg_.add_argument("hw")
    rg_.add_argument("--publish", action="store_true", help="end the review: export and feedback show new grades")
    rg_.add_argument("--jobs", "-j", type=int, default=1)
    limit_args(rg_)
    course_dir_arg(rg_)

    si = sub.add_parser("similarity", help="rank pairs of submissions by shared solution code (HTML report)")
    si.add_argument("hw")
    si.add_argument("--top", type=int, default=20, help="pairs shown in the report (default: %(default)s)")
    si.add_argument("--out", type=Path, default=None, help="HTML file (default: <course>/reports/<hw>/similarity.html)")
    course_dir_arg(si)

    pc = sub.add_parser("precheck", help="(students) what the grader will repair, flag or fail in a notebook")
    pc.add_argument("notebook", type=Path)
    pc.add_argument("--released", type=Path, default=None, help="the notebook as handed out")
    pc.add_argument("--no-run", action="store_true", help="only the pre-flight pass, do not run the code")


def _cmd_override(args) -> None:
    e = ovr.add_override(args.course_dir, args.hw, args.student, args.points, args.reason, test=args.test,
                         by=args.by)
    print(f"override {e['id']}: {args.student} {args.hw} {ovr.describe(e)}")


def _cmd_overrides(args) -> None:
    if args.action == "drop":
        if args.id is None:
            raise TermError("overrides drop needs the id of the override (see `overrides list`)")
        e = ovr.drop_override(args.course_dir, args.id, args.reason, by=args.by)
        print(f"dropped override {e['id']} ({e['student_id']} {e['assignment']})")
        return
    for e in ovr.read_overrides(args.course_dir):
        if args.hw in (None, e["assignment"]):
            state = " [dropped]" if e.get("dropped") else ""
            print(f"{e['id']}: {e['student_id']} {e['assignment']} {ovr.describe(e)}{state}")


def _cmd_regrade(args) -> None:
    if args.publish:
        print(f"published the regrade in {rg.publish(args.hw, args.course_dir)}")
        return
    changes = rg.regrade(args.hw, args.course_dir, jobs=args.jobs, limits=_limits(args),
                         cell_timeout=args.cell_timeout, progress=False)
    for c in changes:
        tests = ", ".join(f"{t} {rg._txt(a)}->{rg._txt(b)}" for t, a, b in c.tests)
        print(f"{c.student_id}: {rg._txt(c.old_score)} -> {rg._txt(c.new_score)}  {tests}")
    where = rg.pending(args.course_dir, args.hw)
    print(f"{len(changes)} students changed ({where / 'changes.csv'}); nothing is exported until "
          f"`regrade {args.hw} --publish`")


def _cmd_similarity(args) -> None:
    pairs, path = similarity.similarity(args.hw, args.course_dir, args.out, top=args.top)
    for p in pairs[:10]:
        print(f"{100 * p.score:5.1f}%  {p.a}  {p.b}")
    print(f"wrote {path} ({len(pairs)} pairs share code)")


def _cmd_precheck(args) -> int:
    try:
        result = precheck.precheck(args.notebook, args.released, run=not args.no_run)
    except FileNotFoundError as exc:
        raise TermError(str(exc)) from None
    print(result)
    return 0 if result.ok else 1


def _warn_unknown_times(args) -> None:
    """Name the graded submissions that carry no readable time (no penalty was applied to them)."""
    if not finals.has_term_files(args.course_dir):
        return
    for r in finals.final_rows(args.course_dir, args.hw, roster=args.roster):
        if r.late.problem:
            print(f"warning: {r.student_id} {r.assignment}: {r.late.problem}; no late penalty applied",
                  file=sys.stderr)


def _cmd_export(args) -> None:
    rg.check_published(args.course_dir, args.hw)
    _warn_unknown_times(args)
    roster = args.roster or Course.at(args.course_dir).roster
    if args.format in ("canvas", "moodle"):
        if not Path(roster).is_file():
            raise TermError(f"--format {args.format} needs a roster (--roster) with the LMS's identifiers")
        if args.format == "canvas":
            extra = lms.write_canvas(args.course_dir, args.to, roster, args.hw)
        else:
            extra = lms.write_moodle(args.course_dir, args.to, roster, args.hw, id_field=args.moodle_id)
        for s in extra:
            print(f"warning: {s} has a result but is not on the roster: left out of {args.to}", file=sys.stderr)
        print(f"wrote {args.to} ({args.format})")
    elif finals.has_term_files(args.course_dir):
        rows = finals.final_rows(args.course_dir, args.hw, roster=args.roster)
        finals.write_plain(rows, args.to, with_reason=args.reasons)
        print(f"wrote {args.to} ({len(rows)} rows, with lateness, penalties and overrides)")
    else:
        rows = grading.export(args.course_dir, args.hw, args.to, roster=args.roster, with_reason=args.reasons)
        print(f"wrote {args.to} ({len(rows)} rows)")


def _check_reveal(args) -> None:
    course = term.read_course_file(args.course_dir)
    term.check_reveal(course, args.hw, term.known_students(args.course_dir) or ())


TERM_COMMANDS = {"override": _cmd_override, "overrides": _cmd_overrides, "regrade": _cmd_regrade,
                 "similarity": _cmd_similarity, "precheck": _cmd_precheck, "export": _cmd_export}


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
            rg.check_published(args.course_dir, args.hw)
            if args.reveal_hidden:
                _check_reveal(args)
            paths = feedback(args.hw, args.course_dir, students=args.student, reveal_hidden=args.reveal_hidden)
            ovr.annotate_feedback(args.course_dir, args.hw, paths)
            print(f"wrote {len(paths)} feedback pages under {args.course_dir / 'feedback'}")
        elif args.command in TERM_COMMANDS:
            return TERM_COMMANDS[args.command](args) or 0
        elif args.command == "report":
            png, html = report(args.hw, args.course_dir, args.out)
            page = analytics.analytics(args.hw, args.course_dir, (args.out / "analytics.html") if args.out else None)
            print(f"wrote {png}, {html} and {page}")
        elif args.command == "bench":
            bench(args.hw, args.n, args.jobs, broken=args.broken, workdir=args.workdir)
    except (grading.GradingError, TermError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished students keep their results; run the same command again to grade the rest",
              file=sys.stderr)
        return 130
    return 0
