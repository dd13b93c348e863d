"""Persistent grading workers: nbgrader is imported once per worker, not once per student.

Each worker is a ``spawn``-ed process that imports nbgrader, then loops:
receive a job over its pipe, run :func:`autograder.jobs.grade_job` in-process
(nbgrader's Python API), send the record back. The parent hands out one job at
a time per worker, shows a progress bar with an ETA, and keeps a backstop
deadline per job: a worker that neither answers nor dies within the
notebook's wall-clock limit plus a grace period is killed and replaced, and
its student gets a ``timeout`` record; a worker that dies gets ``crashed``.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import wait

from .jobs import failure_record

GRACE_SECONDS = 90.0


def _worker_main(conn, env):
    os.environ.update(env)
    import warnings

    warnings.filterwarnings("ignore", message=".*not in session.*")  # SQLAlchemy chatter inside nbgrader
    import nbgrader.apps  # noqa: F401 - the point: pay for the import once per worker
    from .jobs import grade_job_guarded

    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        record = grade_job_guarded(job)
        try:
            conn.send(("done", record))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx, env):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, env), daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.started = 0.0
        self.ready = False

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.join(5)
        self.conn.close()


def run_jobs(jobs, n_workers: int, env: dict, *, deadline_s: float, on_result):
    """Run ``jobs`` on ``n_workers`` processes; call ``on_result(record)`` as each finishes."""
    ctx = multiprocessing.get_context("spawn")
    pending = list(jobs)
    pending.reverse()
    n_workers = max(1, min(int(n_workers), len(pending) or 1))
    workers = [_Worker(ctx, env) for _ in range(n_workers)]

    def fail(worker, status, reason):
        return failure_record(worker.job, status, reason, seconds=time.monotonic() - worker.started)

    respawns = 0
    try:
        while pending or any(w.job is not None for w in workers):
            for w in workers:
                if w.ready and w.job is None and pending:
                    w.job = pending.pop()
                    w.started = time.monotonic()
                    w.conn.send(w.job)
            ready = wait([w.conn for w in workers], timeout=0.5)
            for i, w in enumerate(list(workers)):
                if w.conn in ready:
                    try:
                        kind, payload = w.conn.recv()
                    except (EOFError, OSError):
                        kind, payload = "dead", None
                    if kind == "ready":
                        w.ready = True
                        continue
                    if kind == "done":
                        w.job = None
                        on_result(payload)
                        continue
                    # the worker process died
                    if w.job is not None:
                        on_result(fail(w, "crashed", "the grading worker died while grading this notebook"))
                    w.kill()
                    respawns += 1
                    if respawns > 3 * n_workers + len(jobs):
                        raise RuntimeError("grading workers keep dying; see the records for the reasons")
                    workers[i] = _Worker(ctx, env)
                elif w.job is not None and time.monotonic() - w.started > deadline_s:
                    on_result(fail(w, "timeout", f"no result within {deadline_s:g} s: the grading worker was "
                                                 "stopped"))
                    w.kill()
                    workers[i] = _Worker(ctx, env)
    finally:
        for w in workers:
            try:
                if w.proc.is_alive() and w.job is None:
                    w.conn.send(None)
            except OSError:
                pass
        for w in workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()
