"""Grade on a Dask distributed cluster: the local pool's per-student jobs, on the cluster's workers.

``python -m autograder grade HW --executor dask --scheduler tcp://HOST:8786``
submits one task per student, each :func:`autograder.jobs.grade_job` on the
same job dict the local pool would run. What the cluster must provide:

* every worker sees the course folder at the same path (a shared file system)
  and runs this repository's environment (same coursekit, nbgrader, autograder);
* the gradebook is a database every grader can reach (PostgreSQL through
  ``--db-url``): only this process, the coordinator, writes it, merging each
  result as it comes back. The workers write result records into the shared
  course folder, as local workers do, so an interrupted run resumes the same way.

Start workers with one thread each (``dask worker ADDRESS --nthreads 1
--nworkers N``). A job's watchdog stops every kernel of its process, so a
worker runs one job at a time whatever its thread count (the lock below).

Before submitting, every worker is asked whether it can grade (sees the
released notebook, can write results); a worker that cannot is named in the
error. A task that raises, or whose worker dies (Dask retries it elsewhere,
then gives up with ``KilledWorker``), gives that student a ``crashed`` record.
A task cannot be stopped from outside, so the backstop here is one deadline for
the whole run, from the per-notebook limit and the number of worker threads;
students still unfinished then get a ``timeout`` record.
"""
from __future__ import annotations

import math
import os
import threading
import uuid

from distributed import Client, as_completed

from .gradebook import GradingError, nbgrader_env
from .jobs import failure_record, grade_job_guarded
from .layout import Course
from .records import Job, Status

_ONE_JOB_AT_A_TIME = threading.Lock()
CONNECT_TIMEOUT_S = 30
WORKERS_TIMEOUT_S = 60


def grade_task(job: Job):
    """The task a Dask worker runs for one student."""
    os.environ["PATH"] = nbgrader_env()["PATH"]
    with _ONE_JOB_AT_A_TIME:
        return grade_job_guarded(job)


def worker_problem(course_dir: str, hw: str) -> str | None:
    """Run on each worker before grading: why it cannot grade ``hw`` here, or ``None``."""
    course = Course.at(course_dir)
    released = course.released(hw)
    if not released.is_file():
        return f"does not see {released} (the course folder must be shared at the same path)"
    probe = course.record(hw, f".probe-{uuid.uuid4().hex}")
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"cannot write results into {probe.parent}: {exc}"
    return None


class DaskExecutor:
    """Jobs on the Dask cluster whose scheduler is at ``scheduler``."""

    def __init__(self, scheduler: str, log=print):
        self.scheduler, self.log = scheduler, log

    def run(self, jobs, on_result, *, deadline_s: float) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        try:
            client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise GradingError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                               f"{type(exc).__name__}: {exc}") from exc
        with client:
            workers = self._check_workers(client, jobs[0])
            threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
            run_id = uuid.uuid4().hex[:8]
            futures = {client.submit(grade_task, job, key=f"grade-{job.hw}-{job.student}-{run_id}", pure=False): job
                       for job in jobs}
            self.log(f"sent {len(jobs)} students to {workers} Dask workers ({threads} threads) at {self.scheduler}")
            budget = deadline_s * (math.ceil(len(jobs) / max(1, min(threads, workers))) + 1)
            _collect(client, futures, budget, on_result)

    def _check_workers(self, client, job: Job) -> int:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            raise GradingError(f"no Dask worker joined the scheduler at {self.scheduler} within "
                               f"{WORKERS_TIMEOUT_S} s") from exc
        problems = client.run(worker_problem, job.course_dir, job.hw)
        bad = {addr: why for addr, why in problems.items() if why}
        if bad:
            raise GradingError("Dask workers that cannot grade: " +
                               "; ".join(f"{addr} {why}" for addr, why in sorted(bad.items())))
        return len(problems)


def _collect(client, futures: dict, budget: float, on_result) -> None:
    done = set()
    try:
        for future in as_completed(futures, loop=client.loop, timeout=budget):
            job = futures[future]
            done.add(future)
            if future.status == "finished":
                on_result(future.result())
                continue
            exc = future.exception() if future.status == "error" else None
            why = f"{type(exc).__name__}: {str(exc)[:300]}" if exc is not None else future.status
            if type(exc).__name__ == "KilledWorker":
                why = "the Dask worker died while grading this notebook (" + why + ")"
            on_result(failure_record(job, Status.CRASHED, f"the Dask task failed: {why}"))
    except TimeoutError:
        late = [f for f in futures if f not in done]
        client.cancel(late)
        for future in late:
            on_result(failure_record(futures[future], Status.TIMEOUT,
                                     f"no result from the Dask cluster within {budget:g} s"))
