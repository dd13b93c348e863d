"""Grading on local worker processes (the default executor).

Each worker is a ``spawn``-ed process that loops: receive a :class:`~autograder.records.Job`
over its pipe, run :func:`autograder.jobs.grade_job_guarded` (which starts the student's
sandboxed process and decides the tests), send the record back. The parent hands out one
job at a time per worker and keeps a backstop deadline per job: a worker that neither
answers nor dies in time is killed and replaced, and its student gets a ``timeout``
record; a worker that dies gets ``crashed``.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import wait

from .jobs import failure_record, grade_job_guarded
from .records import Status

GRACE_SECONDS = 90.0


def _worker_main(conn, env):
    os.environ.update(env)
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

    def fail(self, status: Status, reason: str):
        return failure_record(self.job, status, reason, seconds=time.monotonic() - self.started)


class LocalPool:
    """``n_workers`` local processes with environment ``env``."""

    def __init__(self, n_workers: int, env: dict):
        self.n_workers, self.env = max(1, int(n_workers)), env

    def run(self, jobs, on_result, *, deadline_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        pending = list(reversed(list(jobs)))
        workers = [_Worker(ctx, self.env) for _ in range(min(self.n_workers, len(pending) or 1))]
        budget = 3 * len(workers) + len(pending)
        try:
            while pending or any(w.job is not None for w in workers):
                for w in workers:
                    if w.ready and w.job is None and pending:
                        w.job, w.started = pending.pop(), time.monotonic()
                        w.conn.send(w.job)
                ready = wait([w.conn for w in workers], timeout=0.5)
                for i, w in enumerate(list(workers)):
                    replaced = self._step(w, w.conn in ready, on_result, deadline_s)
                    if replaced:
                        budget -= 1
                        if budget < 0:
                            raise RuntimeError("grading workers keep dying; see the records for the reasons")
                        workers[i] = _Worker(ctx, self.env)
        finally:
            _shut_down(workers)

    @staticmethod
    def _step(w: _Worker, has_message: bool, on_result, deadline_s: float) -> bool:
        """Handle one worker's message or deadline; True if it must be replaced."""
        if has_message:
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                kind, payload = "dead", None
            if kind == "ready":
                w.ready = True
                return False
            if kind == "done":
                w.job = None
                on_result(payload)
                return False
            if w.job is not None:
                on_result(w.fail(Status.CRASHED, "the grading worker died while grading this notebook"))
            w.kill()
            return True
        if w.job is not None and time.monotonic() - w.started > deadline_s:
            on_result(w.fail(Status.TIMEOUT, f"no result within {deadline_s:g} s: the grading worker was stopped"))
            w.kill()
            return True
        return False


def _shut_down(workers) -> None:
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
