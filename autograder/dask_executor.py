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
from pathlib import Path

from .jobs import failure_record, grade_job_guarded, record_path

_ONE_JOB_AT_A_TIME = threading.Lock()
CONNECT_TIMEOUT_S = 30
WORKERS_TIMEOUT_S = 60


def grade_task(job: dict) -> dict:
    """The task a Dask worker runs for one student."""
    import warnings

    from .grading import nbgrader_env

    os.environ["PATH"] = nbgrader_env()["PATH"]  # the gradebook calls `alembic`
    warnings.filterwarnings("ignore", message=".*not in session.*")  # SQLAlchemy chatter inside nbgrader
    with _ONE_JOB_AT_A_TIME:
        return grade_job_guarded(job)


def worker_problem(course_dir: str, hw: str) -> str | None:
    """Run on each worker before grading: why it cannot grade ``hw`` here, or ``None``."""
    released = Path(course_dir) / "release" / hw / f"{hw}.ipynb"
    if not released.is_file():
        return f"does not see {released} (the course folder must be shared at the same path)"
    try:
        import nbgrader.apps  # noqa: F401
    except ImportError as exc:
        return f"cannot import nbgrader ({exc}): run the workers in the course's environment"
    probe = record_path(course_dir, hw, f".probe-{uuid.uuid4().hex}")
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"cannot write results into {probe.parent}: {exc}"
    return None


def run_jobs_on_cluster(jobs, scheduler: str, *, deadline_s: float, on_result, log=print) -> None:
    """Run ``jobs`` on the Dask cluster at ``scheduler``; call ``on_result(record)`` as each finishes."""
    from .grading import GradingError

    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is in requirements.txt
        raise GradingError(f"--executor dask needs the `distributed` package: {exc}") from exc
    jobs = list(jobs)
    if not jobs:
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise GradingError(f"cannot reach the Dask scheduler at {scheduler}: {type(exc).__name__}: {exc}") from exc
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            raise GradingError(f"no Dask worker joined the scheduler at {scheduler} within "
                               f"{WORKERS_TIMEOUT_S} s") from exc
        problems = client.run(worker_problem, jobs[0]["course_dir"], jobs[0]["hw"])
        bad = {addr: why for addr, why in problems.items() if why}
        if bad:
            raise GradingError("Dask workers that cannot grade: " +
                               "; ".join(f"{addr} {why}" for addr, why in sorted(bad.items())))
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        run_id = uuid.uuid4().hex[:8]
        futures = {client.submit(grade_task, job, key=f"grade-{job['hw']}-{job['student']}-{run_id}",
                                 pure=False): job for job in jobs}
        log(f"sent {len(jobs)} students to {len(problems)} Dask workers ({threads} threads) at {scheduler}")
        budget = deadline_s * (math.ceil(len(jobs) / max(1, min(threads, len(problems)))) + 1)
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
                on_result(failure_record(job, "crashed", f"the Dask task failed: {why}"))
        except TimeoutError:
            late = [f for f in futures if f not in done]
            client.cancel(late)
            for future in late:
                on_result(failure_record(futures[future], "timeout",
                                         f"no result from the Dask cluster within {budget:g} s"))
