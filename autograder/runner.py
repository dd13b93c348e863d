"""The student's side of grading: run the notebook's code, then answer calls with plain data.

The grader starts this inside the sandbox as ``python -I -m autograder.runner`` (``-I``:
neither the working folder nor environment variables touch ``sys.path``). Nothing here is
trusted, and nothing here needs to be: the student's code runs in this process and can
change anything in it. All it can do is send answers, which the grader checks as data.

Protocol (frames of :mod:`autograder.wire`; requests on fd 0, replies on fd 1, both moved
to private descriptors before any student code runs; the student's ``print`` and errors go
to fd 2, which the grader reads as a capped log):

* ``{"op": "setup", "cells": [[index, source], ...], "forbidden": [module, ...]}`` -> for each
  cell ``{"op": "cell", "index": i}`` when it starts, ``{"op": "done", "index": i, "error": text}``
  when it ends; then ``{"op": "ready"}``.
* ``{"op": "call", "target": {"name": n} | {"handle": k} | {"lib": "pkg.mod.attr"}, "args", "kwargs"}``
  -> ``{"op": "return", "value", "writeback"}`` or ``{"op": "raise", "type", "message", "traceback"}``;
  while the call runs, the student's code may call the grader's functions that it received as
  arguments: ``{"op": "callback", "id", "args", "kwargs"}``, answered by ``callback_return`` or
  ``callback_raise``.
* ``{"op": "getattr", "handle": k, "name": s}`` -> ``return`` or ``raise``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import os
import sys
import traceback

import numpy as np
from IPython.core.interactiveshell import InteractiveShell

from autograder import wire

TRACEBACK_CHARS = 6000
_OWN_FILES = (os.path.dirname(os.path.abspath(__file__)), os.sep + "IPython" + os.sep)


class _Forbidden(importlib.abc.MetaPathFinder):
    """Refuses the homework's forbidden modules (the sandbox also hides their files)."""

    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == n or fullname.startswith(n + ".") for n in self.names):
            raise ImportError(f"{fullname} is not available in this homework (the assignment forbids it)")
        return None


def _student_traceback(exc: BaseException) -> str:
    """The traceback lines of the student's own code, without the runner's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_FILES[0])
              and _OWN_FILES[1] not in f.filename]
    if not frames:
        return ""
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines)
    return text if len(text) <= TRACEBACK_CHARS else "...\n" + text[-TRACEBACK_CHARS:]


def _fingerprint(value, depth=0):
    """What a call may change in an argument: array bytes and container contents, recursively."""
    if depth > wire.MAX_DEPTH:
        return None
    if isinstance(value, np.ndarray):
        return ("A", value.shape, value.dtype.str, hashlib.blake2b(np.ascontiguousarray(value).tobytes()).digest())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_fingerprint(v, depth + 1) for v in value))
    if isinstance(value, dict):
        return ("D", tuple((repr(k), _fingerprint(v, depth + 1)) for k, v in value.items()))
    return ("O", id(value))


def _as_tensor(arr):
    return importlib.import_module("torch").from_numpy(np.array(arr))


class Server:
    def __init__(self, requests, replies):
        self.requests = requests
        self.replies = replies
        self.handles: dict = {}
        self.namespace: dict = {}

    # ----------------------------------------------------------------- the pipe

    def send(self, message: dict) -> None:
        wire.write_frame(self.replies, wire.dumps(message, opaque=self._keep))

    def receive(self) -> tuple:
        header, blobs = wire.read_frame(self.requests)
        decoder = wire.Decoder(blobs, handle=self._handle, callback=self._callback, tensor=_as_tensor, ref=self._target)
        return header, decoder

    def _keep(self, obj) -> dict:
        number = len(self.handles) + 1
        self.handles[number] = obj
        return {"H": number, "type": type(obj).__name__}

    def _handle(self, number, _type_name):
        if number not in self.handles:
            raise wire.WireError(f"no object #{number}")
        return self.handles[number]

    def _callback(self, number):
        def call_grader(*args, **kwargs):
            self.send({"op": "callback", "id": number, "args": list(args), "kwargs": kwargs})
            while True:  # the grader's function may itself call into this process
                header, decoder = self.receive()
                if header.get("op") == "callback_return":
                    return decoder.decode(header.get("value"))
                if header.get("op") == "callback_raise":
                    raise RuntimeError(str(header.get("message", "the grader's function failed"))[:2000])
                self.dispatch(header, decoder)

        return call_grader

    # ------------------------------------------------------------------ the work

    def run_cells(self, shell, cells) -> None:
        for index, source in cells:
            self.send({"op": "cell", "index": index})
            result = shell.run_cell(source, store_history=True)
            exc = result.error_before_exec or result.error_in_exec
            self.send({"op": "done", "index": index, "error": _student_traceback(exc) if exc is not None else None})
        self.namespace = shell.user_ns

    def _target(self, target: dict):
        if not isinstance(target, dict):
            raise wire.WireError("a call without a target")
        if "name" in target:
            try:
                return self.namespace[target["name"]]
            except KeyError:
                raise NameError(f"the notebook defines no {target['name']!r}") from None
        if "handle" in target:
            return self._handle(target["handle"], "")
        module, _, attr = str(target.get("lib", "")).rpartition(".")
        return getattr(importlib.import_module(module), attr)

    def call(self, header, decoder) -> None:
        try:
            fn = self._target(header.get("target"))
            args, kwargs = decoder.decode(header.get("args", {"L": []})), decoder.decode(header.get("kwargs", {"D": []}))
            before = [_fingerprint(a) for a in args], {k: _fingerprint(v) for k, v in kwargs.items()}
            value = fn(*args, **kwargs)
            changed = {"args": {i: a for i, a in enumerate(args) if _fingerprint(a) != before[0][i]},
                       "kwargs": {k: v for k, v in kwargs.items() if _fingerprint(v) != before[1][k]}}
            self.send({"op": "return", "value": value, "writeback": changed})
        except BaseException as exc:  # noqa: BLE001 - the student's exception is the answer
            self.send({"op": "raise", "type": type(exc).__name__, "message": str(exc)[:2000],
                       "traceback": _student_traceback(exc)})

    def getattr(self, header) -> None:
        try:
            value = getattr(self._handle(header.get("handle"), ""), str(header.get("name")))
            self.send({"op": "return", "value": value, "writeback": {}})
        except BaseException as exc:  # noqa: BLE001
            self.send({"op": "raise", "type": type(exc).__name__, "message": str(exc)[:2000],
                       "traceback": _student_traceback(exc)})

    def dispatch(self, header, decoder) -> None:
        if header.get("op") == "call":
            self.call(header, decoder)
        elif header.get("op") == "getattr":
            self.getattr(header)
        else:
            raise wire.WireError(f"an unexpected request {header.get('op')!r}")

    def serve(self) -> None:
        while True:
            header, decoder = self.receive()
            if header.get("op") == "bye":
                return
            self.dispatch(header, decoder)


def _private_pipes() -> tuple:
    """Move the protocol to private descriptors; the student's stdout and stdin become the log and nothing."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    return requests, replies


def main() -> None:
    requests, replies = _private_pipes()
    server = Server(requests, replies)
    header, _decoder = server.receive()
    if header.get("op") != "setup":
        raise SystemExit("runner: expected a setup message")
    sys.meta_path.insert(0, _Forbidden(header.get("forbidden") or ()))
    for name in list(sys.modules):
        if any(name == n or name.startswith(n + ".") for n in header.get("forbidden") or ()):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    shell = InteractiveShell.instance()
    server.run_cells(shell, [(int(i), str(s)) for i, s in header.get("cells", [])])
    server.send({"op": "ready"})
    server.serve()


if __name__ == "__main__":
    main()
