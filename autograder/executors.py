"""The interface every way of running grading jobs implements.

An executor takes typed :class:`~autograder.records.Job` s and calls ``on_result`` with one
:class:`~autograder.records.Record` per job, in whatever order they finish; a job whose
worker dies or hangs still gets a record (``crashed`` or ``timeout``). The local process
pool (:mod:`autograder.pool`) and the Dask cluster (:mod:`autograder.dask_executor`) both
implement it; :mod:`autograder.grading` only sees this.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

from .records import Job, Record


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], on_result: Callable[[Record], None], *, deadline_s: float) -> None:
        """Grade ``jobs``; ``deadline_s`` bounds one job (the backstop past the sandbox's own limits)."""
