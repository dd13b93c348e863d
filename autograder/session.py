"""The grader's side of the pipe: start the student's process, call into it, get plain data back.

:class:`StudentProcess` starts :mod:`autograder.runner` in the sandbox, hands it the
notebook's cells and then serves as a function-call channel. :class:`Student` is what a
test cell sees as ``student``: ``student("conv2d_forward")`` is a :class:`Remote` whose
calls run in the student's process. Arguments travel as copies; what the student's code
changes in them in place is copied back after the call, so update rules that work in a
notebook work here. What comes back is plain data (arrays, numbers, strings, tuples, lists,
dicts, tensors); any other object stays in the student's process and comes back as a
:class:`Remote` handle that can be called, passed back, or asked for attributes. Functions
passed as arguments stay here, and the student's code calls them through the pipe.

Nothing the student's process says about itself is believed: a reply is data for one
call, checked as data. A call that raises, runs past its time or kills the process fails
the test that made it; :class:`StudentProcess` starts a fresh process for the next test.
"""
from __future__ import annotations

import importlib
import itertools
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import wire
from .sandbox import Limits, student_command

MAX_RESTARTS = 3


class StudentCodeError(Exception):
    """The student's function raised; ``type_name`` and ``student_traceback`` say what and where."""

    def __init__(self, what: str, type_name: str, message: str, student_traceback: str):
        super().__init__(f"{what} raised {type_name}: {message}")
        self.type_name = type_name
        self.student_traceback = student_traceback


class StudentGone(BaseException):
    """The student's process timed out, died or broke the protocol: the test ends here.

    A ``BaseException``, so that a test's ``except Exception`` cannot swallow it.
    """

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind  # "timeout", "crashed" or "protocol"


@dataclass
class CellRun:
    index: int
    error: str | None = None
    status: str = "ok"      # ok, error, timeout, crashed (the last two: skipped on restart)


@dataclass
class Budget:
    """The time left to the current test (or cell), and to the whole submission."""

    deadline: float = field(default_factory=lambda: float("inf"))

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _tensor(arr):
    return importlib.import_module("torch").from_numpy(np.array(arr))


class _LogReader(threading.Thread):
    """Drains the student's stdout/stderr, keeping the first ``cap`` bytes."""

    def __init__(self, stream, cap: int):
        super().__init__(daemon=True)
        self.stream, self.cap, self.kept, self.dropped = stream, cap, bytearray(), 0

    def run(self):
        for chunk in iter(lambda: self.stream.read(65536), b""):
            room = self.cap - len(self.kept)
            self.kept += chunk[:max(room, 0)]
            self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        note = f"\n[autograder: {self.dropped} more bytes of output were dropped]" if self.dropped else ""
        return self.kept.decode("utf-8", errors="replace") + note


class _FrameReader(threading.Thread):
    """Reads the replies into a queue, so waiting for one can time out."""

    def __init__(self, stream, max_bytes: int):
        super().__init__(daemon=True)
        self.stream, self.max_bytes, self.frames = stream, max_bytes, queue.Queue()

    def run(self):
        while True:
            try:
                self.frames.put(wire.read_frame(self.stream, max_bytes=self.max_bytes))
            except (EOFError, OSError):
                self.frames.put(("eof", None))
                return
            except (wire.WireError, ValueError) as exc:
                self.frames.put(("bad", str(exc)))
                return


class StudentProcess:
    """One submission's student side: started, fed its cells, then called; restarted after a failure."""

    def __init__(self, workdir: Path, cells: list, limits: Limits, scratch: Path, *, forbidden=(),
                 max_reply_bytes: int = 256 * 1024 ** 2):
        self.workdir, self.cells, self.limits, self.scratch = Path(workdir), list(cells), limits, Path(scratch)
        self.forbidden = list(forbidden)
        self.max_reply_bytes = max_reply_bytes
        self.runs = {index: CellRun(index) for index, _ in self.cells}
        self.proc = self.group = self.replies = self.log = None
        self.starts = 0
        self.callbacks: dict = {}
        self._numbers = itertools.count(1)
        self.budget = Budget()
        self.memory_cap_hit = False
        self.logs: list = []

    # --------------------------------------------------------------- lifecycle

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, job_deadline: float) -> bool:
        """Start the process and run the cells not marked as killers; False if no more restarts are allowed."""
        if self.starts > MAX_RESTARTS:
            return False
        self.starts += 1
        argv, env, self.group = student_command(self.workdir, self.limits, self.forbidden, self.scratch)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=self.workdir, start_new_session=True)
        self.replies = _FrameReader(self.proc.stdout, self.max_reply_bytes)
        self.replies.start()
        self.log = _LogReader(self.proc.stderr, self.limits.output_bytes)
        self.log.start()
        todo = [(i, s) for i, s in self.cells if self.runs[i].status not in ("timeout", "crashed")]
        self._send({"op": "setup", "cells": todo, "forbidden": self.forbidden})
        return self._run_cells(todo, job_deadline)

    def _run_cells(self, todo, job_deadline: float) -> bool:
        current = None
        while True:
            cell_deadline = min(job_deadline, time.monotonic() + self.limits.cell_timeout)
            try:
                header, body = self._receive(Budget(cell_deadline))
            except StudentGone as gone:
                if current is None or time.monotonic() >= job_deadline:
                    self.stop()
                    return False
                self.runs[current].status = "timeout" if gone.kind == "timeout" else "crashed"
                self.runs[current].error = str(gone)
                self.stop()
                return self.start(job_deadline)
            op = header.get("op")
            if op == "cell" and header.get("index") in self.runs:
                current = header["index"]
            elif op == "done" and header.get("index") in self.runs:
                error = header.get("error")
                run = self.runs[header["index"]]
                run.status, run.error = ("error", str(error)[:6000]) if error else ("ok", None)
                current = None
            elif op == "ready":
                return True
            else:
                self.stop()
                return False

    def stop(self) -> None:
        """Kill the student's process and everything it started; keep its log."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.group is not None:
            self.memory_cap_hit = self.memory_cap_hit or self.group.memory_cap_hit()
            self.group.close()
            self.group = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
            if self.log is not None:
                self.log.join(timeout=2)
                self.logs.append(self.log.text())
            self.proc = None

    def close(self) -> None:
        if self.alive:
            try:
                self._send({"op": "bye"})
            except StudentGone:
                pass
        self.stop()

    # -------------------------------------------------------------------- pipe

    def _send(self, message: dict) -> None:
        try:
            frame = wire.dumps(message, opaque=self._opaque)
        except wire.WireError as exc:  # the grader's own argument: the test is wrong, not the student
            raise TypeError(f"the test passes something that cannot be sent to the student's code: {exc}") from None
        try:
            wire.write_frame(self.proc.stdin, frame)
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise StudentGone(f"the student's process is gone ({type(exc).__name__})", "crashed") from None

    def _receive(self, budget: Budget) -> tuple:
        left = min(budget.left(), self.limits.cell_timeout)
        try:
            header, body = self.replies.frames.get(timeout=max(left, 0.001))
        except queue.Empty:
            self.stop()
            raise StudentGone(f"no answer within {self.limits.cell_timeout:g} s: the time limit for a cell or test "
                              "was reached and the student's process was stopped", "timeout") from None
        if header == "eof":
            self.stop()
            cap = " (its memory cap was reached)" if self.memory_cap_hit else ""
            raise StudentGone(f"the student's process died{cap}", "crashed")
        if header == "bad":
            self.stop()
            raise StudentGone(f"the student's process broke the protocol: {body}", "protocol")
        return header, body

    def _opaque(self, value):
        if isinstance(value, Remote):  # the student's own object or function goes back as itself
            return {"H": value.target["handle"]} if "handle" in value.target else {"R": value.target}
        if callable(value):
            number = next(self._numbers)
            self.callbacks[number] = value
            return {"C": number}
        raise wire.WireError(f"a {type(value).__name__} cannot be sent to the student's code")

    def _decoder(self, blobs) -> wire.Decoder:
        return wire.Decoder(blobs, handle=lambda n, t: Remote(self, {"handle": n}, f"{t} object"), tensor=_tensor)

    # ------------------------------------------------------------------- calls

    def request(self, message: dict, what: str, args=(), kwargs=None):
        """Send a call or getattr; serve callbacks until the answer; return the value."""
        if not self.alive:
            raise StudentGone(f"{what} cannot be called: the student's process is not running", "crashed")
        self._send(message)
        while True:
            header, blobs = self._receive(self.budget)
            op = header.get("op")
            try:
                decoder = self._decoder(blobs)
                if op == "return":
                    value = decoder.decode(header.get("value"))
                    _write_back(args, kwargs or {}, decoder.decode(header.get("writeback", {"D": []})))
                    return value
                if op == "raise":
                    raise StudentCodeError(what, str(header.get("type", "Exception"))[:100],
                                           str(header.get("message", ""))[:2000],
                                           str(header.get("traceback", ""))[:6000])
                if op == "callback":
                    self._serve_callback(header, decoder)
                    continue
            except wire.WireError as exc:
                self.stop()
                raise StudentGone(f"{what} answered with data that cannot be accepted: {exc}", "protocol") from None
            self.stop()
            raise StudentGone(f"{what} answered with an unexpected message {op!r}", "protocol")

    def _serve_callback(self, header, decoder) -> None:
        fn = self.callbacks.get(header.get("id"))
        if fn is None:
            raise wire.WireError(f"a call to unknown grader function {header.get('id')!r}")
        args, kwargs = decoder.decode(header.get("args")), decoder.decode(header.get("kwargs"))
        try:
            value = fn(*args, **kwargs)
        except StudentGone:
            raise
        except Exception as exc:  # noqa: BLE001 - the grader's function failed on what the student passed
            self._send({"op": "callback_raise", "message": f"{type(exc).__name__}: {exc}"})
            return
        self._send({"op": "callback_return", "value": value})


def _write_back(args, kwargs, changed) -> None:
    """Apply in place what the student's code changed in its arguments."""
    if not isinstance(changed, dict):
        raise wire.WireError("a writeback that is not a dict")
    for i, new in (changed.get("args") or {}).items():
        if type(i) is int and 0 <= i < len(args):
            _apply(args[i], new)
    for key, new in (changed.get("kwargs") or {}).items():
        if key in kwargs:
            _apply(kwargs[key], new)


def _apply(old, new) -> None:
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        if old.shape == new.shape and old.flags.writeable:
            np.copyto(old, new, casting="unsafe")
    elif isinstance(old, list) and isinstance(new, list):
        for k, (o, n) in enumerate(zip(old, new)):
            if _mutable(o) and type(o) is type(n):
                _apply(o, n)
            else:
                old[k] = n
        old[len(new):] = []
        old.extend(new[len(old):])
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, n in new.items():
            if key in old and _mutable(old[key]) and type(old[key]) is type(n):
                _apply(old[key], n)
            else:
                old[key] = n
    elif isinstance(old, tuple) and isinstance(new, tuple):
        for o, n in zip(old, new):
            _apply(o, n)


def _mutable(value) -> bool:
    return isinstance(value, (np.ndarray, list, dict, tuple))


class Remote:
    """A function or object in the student's process: call it, read its attributes, pass it back."""

    def __init__(self, process: StudentProcess, target: dict, label: str):
        self._process, self.target, self.__name__ = process, target, label

    def __call__(self, *args, **kwargs):
        args = list(args)
        return self._process.request({"op": "call", "target": self.target, "args": args, "kwargs": kwargs},
                                     self.__name__, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") or "handle" not in self.target:
            raise AttributeError(name)
        value = self._process.request({"op": "getattr", "handle": self.target["handle"], "name": name},
                                      f"{self.__name__}.{name}")
        if isinstance(value, Remote):
            value.__name__ = f"{self.__name__}.{name}"
        return value

    def __getitem__(self, key):
        return Remote(self._process, {"lib": "operator.getitem"}, f"{self.__name__}[...]")(self, key)

    def __len__(self):
        return Remote(self._process, {"lib": "builtins.len"}, f"len({self.__name__})")(self)

    def __iter__(self):
        items = Remote(self._process, {"lib": "builtins.list"}, f"list({self.__name__})")(self)
        return iter(items if isinstance(items, list) else [])

    def __repr__(self):
        return f"<student's {self.__name__}>"


class Student:
    """``student`` as test cells see it in the grader (``coursekit.homework.student`` in a notebook)."""

    def __init__(self, process: StudentProcess):
        self._process = process

    def __call__(self, name: str) -> Remote:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"student(name) takes the name of a notebook variable, not {name!r}")
        return Remote(self._process, {"name": name}, name)

    def lib(self, dotted: str) -> Remote:
        return Remote(self._process, {"lib": str(dotted)}, str(dotted))
