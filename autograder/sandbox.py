"""Where the student's code runs: bubblewrap, one cgroup per submission, rlimits.

What the student's process gets (``--sandbox bwrap``, the default)
--------------------------------------------------------------------
* **bubblewrap**: new user, pid, ipc, uts, cgroup and *network* namespaces (no network at
  all), all capabilities dropped, uid 65534. The filesystem holds only the system folders,
  the Python installation and virtual environment, and the ``coursekit/`` and
  ``autograder/`` sources, all read-only; the student's folder copy, read-only, as the
  working directory; a private ``/tmp`` of ``tmp_bytes`` (HOME and TMPDIR). ``solutions/``,
  the course folder, the gradebook and other students are not in its filesystem. The
  homework's *forbidden* modules (notebook metadata ``coursekit.forbidden``) are replaced by
  a stub that refuses to import, and their compiled caches are hidden.
* **a cgroup** (:mod:`autograder.cgroups`): ``memory_bytes`` for all its processes together,
  tmpfs pages included, and at most ``max_pids`` processes. When the job ends every process
  in it is killed.
* **rlimits**: largest file written, no core files.
* It talks to the grader through two pipes only; nothing it writes elsewhere survives.

Grading refuses to start when bubblewrap or the cgroup cannot be had, with a one-line
error naming the fix, unless the instructor passes ``--sandbox none``. Then the student's
code runs with the grader's rights (per-process ``RLIMIT_AS`` as the only memory cap) and
every record, the export and the report say that no sandbox was used.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .cgroups import CGroup, CGroupUnavailable, sweep_stale
from .cgroups import available as cgroup_problem

PACKAGE_DIR = Path(__file__).resolve().parent
SANDBOXES = ("bwrap", "none")
BWRAP_FIX = "install bubblewrap (apt-get install bubblewrap) where `bwrap --unshare-all --ro-bind / / true` works, " \
            "or pass --sandbox none to grade without a sandbox"
SYSTEM_RO = ("/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
             "/etc/alternatives", "/etc/ssl/certs", "/etc/fonts", "/etc/mime.types")
STUB = 'raise ImportError("{name} is not available in this homework: the assignment forbids it")\n'


class SandboxUnavailable(RuntimeError):
    """The protection asked for cannot be had here; the message names the fix."""


@dataclass(frozen=True)
class Limits:
    notebook_timeout: float = 300.0       # seconds for a whole submission (its cells and every test)
    cell_timeout: float = 60.0            # seconds for one notebook cell, and for one test's calls together
    memory_bytes: int = 2 * 1024 ** 3     # all the submission's processes together (cgroup)
    max_pids: int = 64                    # processes and threads of the submission at once (cgroup)
    file_size_bytes: int = 64 * 1024 ** 2  # RLIMIT_FSIZE: largest file the student's code may write
    output_bytes: int = 2 * 1024 ** 2     # what the student's code prints that is kept for feedback
    tmp_bytes: int = 64 * 1024 ** 2       # size of the private /tmp (HOME, TMPDIR)
    sandbox: str = "bwrap"                # "bwrap" (required) or "none" (explicitly no sandbox)

    def __post_init__(self):
        if self.sandbox not in SANDBOXES:
            raise ValueError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {self.sandbox!r}")

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ availability


@functools.lru_cache(maxsize=None)
def bwrap_available() -> bool:
    """Whether bubblewrap can make a sandbox here."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        proc = subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "true"],
                              capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def require_isolation(limits: Limits) -> None:
    """Raise :class:`SandboxUnavailable` (one line, with the fix) unless the asked-for protection works."""
    if limits.sandbox == "none":
        return
    if not bwrap_available():
        raise SandboxUnavailable(f"no sandbox: bubblewrap cannot run here; {BWRAP_FIX}")
    problem = cgroup_problem()
    if problem:
        raise SandboxUnavailable(f"no cgroup for the memory and process caps: {problem}")
    sweep_stale()  # what a killed grader left behind


def isolation_label(limits: Limits) -> str:
    """What a record, the export and the report say about the isolation used."""
    return "bwrap+cgroup" if limits.sandbox == "bwrap" else "NO SANDBOX"


def isolation_report(limits: Limits | None = None) -> str:
    limits = limits or Limits()
    caps = (f"{limits.memory_bytes} B of memory and {limits.max_pids} processes for the whole submission, "
            f"files up to {limits.file_size_bytes} B, {limits.cell_timeout:g} s per cell or test, "
            f"{limits.notebook_timeout:g} s per submission")
    if limits.sandbox == "bwrap":
        return ("bubblewrap + cgroup: no network, read-only system/venv/coursekit, read-only student folder, "
                f"private /tmp of {limits.tmp_bytes} B, forbidden modules hidden; " + caps)
    return ("NO SANDBOX (--sandbox none): the student's code runs with the grader's rights, sees the network "
            "and every file the grader can read; only a per-process memory limit applies")


# ---------------------------------------------------------------------- command


def _python_roots() -> list:
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(sys.executable).resolve().parent.parent}
    return sorted(str(p) for p in roots)


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec and spec.submodule_search_locations:
        return str(Path(list(spec.submodule_search_locations)[0]).resolve())
    return None


def _source_roots() -> list:
    """coursekit's and autograder's folders (editable installs point into the repository)."""
    return sorted({d for d in (_package_dir("coursekit"), str(PACKAGE_DIR)) if d})


def forbidden_paths(forbidden) -> list:
    """``(path, is_package)`` of each forbidden module that exists here (its files get masked)."""
    out = []
    for name in forbidden:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            out.append((str(Path(list(spec.submodule_search_locations)[0]).resolve()), True, name))
        elif spec.origin and spec.origin not in ("built-in", "frozen"):
            out.append((str(Path(spec.origin).resolve()), False, name))
    return out


def _mask_args(forbidden, stub_dir: Path) -> list:
    args = []
    for k, (path, is_package, name) in enumerate(forbidden_paths(forbidden)):
        stub = stub_dir / f"stub{k}"
        if is_package:
            stub.mkdir(parents=True, exist_ok=True)
            (stub / "__init__.py").write_text(STUB.format(name=name))
            args += ["--ro-bind", str(stub), path]
        else:
            stub.write_text(STUB.format(name=name))
            args += ["--ro-bind", str(stub), path]
            cache = Path(path).parent / "__pycache__"
            if cache.is_dir():
                args += ["--tmpfs", str(cache)]
    return args


def student_env(home: str) -> dict:
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": home, "MPLCONFIGDIR": f"{home}/.mpl", "IPYTHONDIR": f"{home}/.ipython",
        "MPLBACKEND": "Agg", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def _bwrap_args(workdir: str, limits: Limits, forbidden, stub_dir: Path) -> list:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--hostname", "grader", "--proc", "/proc", "--dev", "/dev",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            # /tmp first: bwrap mounts in order, so a venv or course under /tmp is bound on top of it
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for path in SYSTEM_RO:
        args += ["--ro-bind-try", path, path]
    for path in _python_roots() + _source_roots():
        args += ["--ro-bind", path, path]
    args += _mask_args(forbidden, stub_dir)
    args += ["--ro-bind", workdir, workdir, "--remount-ro", "/", "--chdir", workdir, "--clearenv"]
    for key, value in student_env("/tmp").items():
        args += ["--setenv", key, value]
    return args + ["--"]


RUNNER = [sys.executable, "-I", "-m", "autograder.runner"]


def student_command(workdir: Path, limits: Limits, forbidden, scratch: Path) -> tuple:
    """``(argv, env, cgroup)`` that start the runner for one submission under the limits.

    ``scratch`` is a private folder of the grader's for this job (stubs, HOME without bwrap).
    The caller owns the returned :class:`~autograder.cgroups.CGroup` (``None`` without a
    sandbox) and must ``close()`` it.
    """
    rlimits = ["prlimit", f"--fsize={limits.file_size_bytes}", "--core=0"]
    if limits.sandbox == "none":
        home = scratch / "home"
        home.mkdir(parents=True, exist_ok=True)
        argv = rlimits + [f"--as={limits.memory_bytes}", "--"] + RUNNER
        return argv, student_env(str(home)), None
    try:
        group = CGroup(limits.memory_bytes, limits.max_pids)
    except CGroupUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from None
    argv = group.enter_command(rlimits + ["--"] + _bwrap_args(str(workdir), limits, forbidden, scratch) + RUNNER)
    return argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, group
