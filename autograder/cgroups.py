"""One cgroup per submission: a memory cap and a process cap on all its processes together.

``RLIMIT_AS`` caps one process; six forked children each under it hold six times as much.
A cgroup caps the submission as a whole (tmpfs pages it writes included) and its number of
processes, and lets the grader kill everything it started, forks and all, in one sweep.

Both cgroup versions are handled: v1 (``memory`` and ``pids`` hierarchies, as on many CI
machines) and v2 (the unified hierarchy, where this process's own cgroup must allow child
groups with both controllers). :func:`available` says why not when neither works.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
FIX = ("run the grader as root, or in a cgroup delegated to its user (systemd-run --user --scope -p Delegate=yes), "
       "or pass --sandbox none to grade without a sandbox")


class CGroupUnavailable(RuntimeError):
    """No cgroup with a memory and a process cap can be made here."""


def _own_paths() -> dict:
    """``{controller or "": path}`` of this process's cgroups, from /proc/self/cgroup."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _v1_dirs() -> dict | None:
    own = _own_paths()
    dirs = {c: CGROUP_ROOT / c / own.get(c, "/").lstrip("/") for c in ("memory", "pids")}
    if all((d / "cgroup.procs").is_file() for d in dirs.values()):
        return dirs
    return None


def _v2_dir() -> Path | None:
    if not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    base = CGROUP_ROOT / _own_paths().get("", "/").lstrip("/")
    try:
        enabled = (base / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return base if {"memory", "pids"} <= set(enabled) else None


class CGroup:
    """A fresh cgroup (v1: one in each of memory and pids) with the caps written."""

    def __init__(self, memory_bytes: int, max_pids: int):
        name = f"autograder-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dirs: list = []
        v1 = _v1_dirs()
        v2 = None if v1 else _v2_dir()
        if v1 is None and v2 is None:
            raise CGroupUnavailable(f"no cgroup v1 memory+pids hierarchy and no v2 cgroup with both controllers; {FIX}")
        try:
            if v1 is not None:
                self._make(v1["memory"] / name, {"memory.limit_in_bytes": memory_bytes,
                                                 "memory.memsw.limit_in_bytes": memory_bytes})
                self._make(v1["pids"] / name, {"pids.max": max_pids})
            else:
                self._make(v2 / name, {"memory.max": memory_bytes, "memory.swap.max": 0, "pids.max": max_pids})
        except OSError as exc:
            self.close()
            raise CGroupUnavailable(f"cannot create a cgroup ({exc.strerror}: {exc.filename}); {FIX}") from None

    def _make(self, path: Path, settings: dict) -> None:
        path.mkdir()
        self.dirs.append(path)
        for key, value in settings.items():
            target = path / key
            if key == "memory.memsw.limit_in_bytes" and not target.exists():
                continue  # swap accounting off: no swap to cap
            target.write_text(str(int(value)))

    def enter_command(self, argv: list) -> list:
        """``argv`` run by a shell that first moves itself into this cgroup (so every child starts inside)."""
        procs = " ".join(f"'{d / 'cgroup.procs'}'" for d in self.dirs)
        script = f'for f in {procs}; do echo $$ > "$f" || exit 97; done; exec "$@"'
        return ["/bin/sh", "-c", script, "autograder-cgroup", *argv]

    def pids(self) -> set:
        out = set()
        for d in self.dirs:
            try:
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return out

    def memory_cap_hit(self) -> bool:
        """Whether the memory cap was reached (a process was refused memory or killed for it)."""
        for d in self.dirs:
            for name in ("memory.failcnt", "memory.events"):
                try:
                    text = (d / name).read_text()
                except OSError:
                    continue
                if name == "memory.failcnt" and text.strip() not in ("", "0"):
                    return True
                if name == "memory.events" and any(line.split()[1] != "0" for line in text.splitlines()
                                                   if line.split()[0] in ("max", "oom_kill")):
                    return True
        return False

    def kill(self) -> None:
        """SIGKILL every process in the group, until none is left (forks during the sweep included)."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def close(self) -> None:
        self.kill()
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = []


def _parents() -> list:
    v1 = _v1_dirs()
    if v1 is not None:
        return list(v1.values())
    v2 = _v2_dir()
    return [v2] if v2 is not None else []


def sweep_stale() -> int:
    """Kill and remove the cgroups of graders that died without cleaning up; return how many."""
    removed = 0
    for parent in _parents():
        for d in parent.glob("autograder-*"):
            try:
                pid = int(d.name.split("-")[1])
                os.kill(pid, 0)
                continue  # its grader is alive
            except (ValueError, IndexError):
                continue
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            group = CGroup.__new__(CGroup)
            group.dirs = [d]
            group.close()
            removed += 1
    return removed


def available(memory_bytes: int = 64 * 1024 ** 2, max_pids: int = 8) -> str | None:
    """``None`` if a capped cgroup can be made here, else why not (one line, with the fix)."""
    try:
        CGroup(memory_bytes, max_pids).close()
    except CGroupUnavailable as exc:
        return str(exc)
    return None
