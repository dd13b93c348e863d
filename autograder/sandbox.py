"""Run a student's kernel under limits, and (where it can run) inside bubblewrap.

What the kernel gets
--------------------
* **rlimits** (always, via ``prlimit``): ``RLIMIT_AS`` (memory cap),
  ``RLIMIT_FSIZE`` (largest file it may write), ``RLIMIT_CORE=0``.
* **A wall-clock limit per notebook**: :class:`Watchdog` SIGKILLs every kernel
  started during a job once the job's deadline passes (``Execute.timeout``
  still bounds each cell).
* **An output cap in bytes** per notebook (text, images, HTML, errors):
  :class:`LimitedExecute` drops outputs past the cap and says so in the cell.
* **bubblewrap** (``bwrap``) when ``bwrap --unshare-all --ro-bind / / true``
  works: new user, pid, ipc, uts, cgroup and *network* namespaces (no network
  at all, not even the grader's loopback), a root filesystem that holds only
  the system directories (``/usr``, ``/etc`` files needed by libc), the Python
  installation, the virtual environment and ``coursekit/`` -- all read-only --
  plus the student's own folder copy (read-only, the working directory) and a
  private size-capped tmpfs at ``/tmp`` (HOME and TMPDIR). The kernel talks to
  the grader over ZeroMQ *ipc* sockets in a per-kernel runtime folder that is
  bound in read-write (a TCP port would be unreachable from a new network
  namespace). ``solutions/``, the course directory (source notebooks, the
  gradebook, other students' submissions) and the rest of the repository are
  simply not in the kernel's filesystem. The environment is cleared.

Without bwrap the kernel still gets the rlimits, the limits above, a scrubbed
environment and a scratch HOME/TMPDIR, but it can see the network and every
file the grader's user can read; :func:`isolation_report` says which mode is in
use.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
LIMITS_ENV = "AUTOGRADER_LIMITS"  # JSON of Limits, read by kernels started from the nbgrader CLI


@dataclass(frozen=True)
class Limits:
    notebook_timeout: float = 300.0       # seconds for the whole notebook (kernel start to last cell)
    memory_bytes: int = 2 * 1024 ** 3     # RLIMIT_AS of the kernel
    file_size_bytes: int = 64 * 1024 ** 2  # RLIMIT_FSIZE: largest file the kernel may write
    output_bytes: int = 2 * 1024 ** 2     # all outputs of one notebook, after which they are dropped
    tmp_bytes: int = 64 * 1024 ** 2       # size of the kernel's private /tmp (bwrap only)
    sandbox: str = "auto"                 # "auto" (bwrap if it works), "bwrap" (required), "none"

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        raw = (environ if environ is not None else os.environ).get(LIMITS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


# ------------------------------------------------------------------ bubblewrap


@functools.lru_cache(maxsize=None)
def bwrap_available() -> bool:
    """Whether bubblewrap can make a sandbox here (the check the issue asks for)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        proc = subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "true"],
                              capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def use_bwrap(limits: Limits) -> bool:
    if limits.sandbox == "none":
        return False
    ok = bwrap_available()
    if limits.sandbox == "bwrap" and not ok:
        raise RuntimeError("sandbox=bwrap was asked for, but `bwrap --unshare-all --ro-bind / / true` fails here")
    return ok


def isolation_report(limits: Limits | None = None) -> str:
    limits = limits or Limits()
    common = (f"rlimits: address space {limits.memory_bytes} B, file size {limits.file_size_bytes} B, no core "
              f"files; wall clock {limits.notebook_timeout:g} s per notebook; outputs {limits.output_bytes} B "
              "per notebook")
    if use_bwrap(limits):
        return ("bubblewrap: no network, read-only system/venv/coursekit, read-only student folder copy, "
                f"private /tmp of {limits.tmp_bytes} B; no solutions/, gradebook or other students. " + common)
    return ("NO SANDBOX (bwrap unavailable or disabled): the kernel can use the network and read what the "
            "grader's user can read; only the environment is scrubbed and HOME/TMPDIR are a scratch folder. "
            + common)


def _python_roots() -> list:
    """Folders the kernel's interpreter needs: the venv and the base installation."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(sys.executable).resolve().parent.parent}
    return sorted(str(p) for p in roots)


def _importable_roots() -> list:
    """Source folders of editable installs the kernel imports (coursekit), never the whole repo."""
    import importlib.util

    roots = []
    for name in ("coursekit",):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                roots.append(str(Path(loc).resolve()))
    return roots


SYSTEM_RO = ("/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
             "/etc/alternatives", "/etc/ssl/certs", "/etc/fonts", "/etc/mime.types")


def kernel_env(limits: Limits, home: str) -> dict:
    """The scrubbed environment of a sandboxed kernel."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": home, "MPLCONFIGDIR": f"{home}/.mpl", "IPYTHONDIR": f"{home}/.ipython",
        "MPLBACKEND": "Agg", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for keep in ("COURSEKIT_SEED", "VIRTUAL_ENV"):  # a replayed seed; the venv's name only
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env


def wrap_command(cmd: list, *, workdir: str, runtime_dir: str, limits: Limits) -> tuple:
    """``(argv, env)`` that run kernel ``cmd`` under the limits (and bwrap where possible)."""
    prefix = ["prlimit", f"--as={limits.memory_bytes}", f"--fsize={limits.file_size_bytes}", "--core=0", "--"]
    if not shutil.which("prlimit"):
        prefix = []
    if not use_bwrap(limits):
        home = os.path.join(runtime_dir, "home")
        os.makedirs(home, exist_ok=True)
        return prefix + list(cmd), kernel_env(limits, home)
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--hostname", "grader",
            "--proc", "/proc", "--dev", "/dev",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            # The private /tmp first: bwrap mounts in order, so a venv or a course that lives
            # under /tmp is bound on top of it below, instead of being hidden by it.
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for path in SYSTEM_RO:
        args += ["--ro-bind-try", path, path]
    for path in _python_roots() + _importable_roots():
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", workdir, workdir,
             "--bind", runtime_dir, runtime_dir,
             "--remount-ro", "/",  # the skeleton bwrap made for the mount points is read-only too
             "--chdir", workdir, "--clearenv"]
    for key, value in kernel_env(limits, "/tmp").items():
        args += ["--setenv", key, value]
    return prefix + args + ["--"] + list(cmd), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


# ----------------------------------------------------------- the kernel manager

_LIVE_KERNELS: set = set()   # pids (process-group leaders) of kernels started in this process
_LIVE_LOCK = threading.Lock()
_RUNTIME_DIRS: set = set()  # per-kernel runtime folders (connection file, ipc sockets) not yet removed


def cleanup_runtime_dirs() -> None:
    """Remove the runtime folders of kernels that died without a clean shutdown."""
    with _LIVE_LOCK:
        dirs, _ = list(_RUNTIME_DIRS), _RUNTIME_DIRS.clear()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def kill_live_kernels() -> int:
    """SIGKILL every kernel process group started here; return how many."""
    with _LIVE_LOCK:
        pids = list(_LIVE_KERNELS)
    for pid in pids:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
            except (ProcessLookupError, PermissionError, OSError):
                pass
    return len(pids)


def _make_kernel_manager():
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):
        """An AsyncKernelManager whose kernel runs under :func:`wrap_command`."""

        limits = None  # set per instance from the environment

        async def _async_pre_start_kernel(self, **kw):
            self.limits = Limits.from_env()
            # Interrupt over the control channel: a signal to the process group would reach
            # bwrap, not the kernel (which runs in its own session inside the sandbox).
            self.kernel_spec.interrupt_mode = "message"
            self._ag_runtime = tempfile.mkdtemp(prefix="ag-k-")  # short: unix socket paths <= 107 bytes
            os.chmod(self._ag_runtime, 0o700)
            with _LIVE_LOCK:
                _RUNTIME_DIRS.add(self._ag_runtime)
            if use_bwrap(self.limits):
                self.transport = "ipc"
                self.ip = os.path.join(self._ag_runtime, "k")
            self.connection_file = os.path.join(self._ag_runtime, "kernel.json")
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            workdir = str(Path(kw.get("cwd") or os.getcwd()).resolve())
            argv, env = wrap_command(kernel_cmd, workdir=workdir, runtime_dir=self._ag_runtime, limits=self.limits)
            kw["env"] = env
            kw["cwd"] = workdir
            kw.setdefault("stdout", subprocess.DEVNULL)  # the kernel's own chatter; outputs go over ZeroMQ
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(argv, **kw)
            proc = getattr(self.provisioner, "process", None)
            if proc is not None:
                with _LIVE_LOCK:
                    _LIVE_KERNELS.add(proc.pid)
                self._ag_pid = proc.pid

        async def _async_cleanup_resources(self, restart=False):
            try:
                await super()._async_cleanup_resources(restart=restart)
            finally:
                pid = getattr(self, "_ag_pid", None)
                if pid is not None:
                    try:
                        os.killpg(pid, signal.SIGKILL)  # children the kernel left behind
                    except OSError:
                        pass
                    with _LIVE_LOCK:
                        _LIVE_KERNELS.discard(pid)
                shutil.rmtree(getattr(self, "_ag_runtime", ""), ignore_errors=True)

    return SandboxedKernelManager


def __getattr__(name):  # lazy: importing this module must not import jupyter_client
    if name == "SandboxedKernelManager":
        cls = _make_kernel_manager()
        globals()[name] = cls
        return cls
    if name == "LimitedExecute":
        cls = _make_limited_execute()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


# ------------------------------------------------------------ output cap


def _output_size(out) -> int:
    size = 0
    for key in ("text", "data", "traceback", "evalue"):
        value = out.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, dict):
            size += sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in value.values())
        else:
            size += len(json.dumps(value))
    return size


TRUNCATED_MARK = "[autograder: output dropped, this notebook's outputs passed"


def _make_limited_execute():
    from nbformat.v4 import new_output
    from nbgrader.preprocessors import Execute

    class LimitedExecute(Execute):
        """nbgrader's Execute with the sandboxed kernel and a cap on output bytes per notebook."""

        def __init__(self, *args, **kwargs):
            kwargs["kernel_manager_class"] = __getattr__("SandboxedKernelManager")
            super().__init__(*args, **kwargs)
            self._ag_bytes = 0
            self._ag_noted = set()
            self.output_truncated = False

        def preprocess(self, nb, resources=None, *args, **kwargs):
            self._ag_cap = Limits.from_env().output_bytes
            self._ag_bytes = 0
            self._ag_noted = set()
            return super().preprocess(nb, resources, *args, **kwargs)

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None:
                return out
            cap = getattr(self, "_ag_cap", None) or Limits.from_env().output_bytes
            if out.get("output_type") == "error":
                # never dropped (an error is what fails a test), only shortened
                out["evalue"] = str(out.get("evalue", ""))[:2000]
                out["traceback"] = [str(t)[:2000] for t in out.get("traceback", [])[-30:]]
                self._ag_bytes += _output_size(out)
                return out
            self._ag_bytes += _output_size(out)
            if self._ag_bytes <= cap:
                return out
            self.output_truncated = True
            # a dropped stderr stream leaves a stderr note: nbgrader fails a test cell with stderr output
            name = "stderr" if out.get("output_type") == "stream" and out.get("name") == "stderr" else "stdout"
            note = f"{TRUNCATED_MARK} {cap} bytes]\n" if (cell_index, name) not in self._ag_noted else ""
            self._ag_noted.add((cell_index, name))
            if display_id:  # nbclient may update this output in place later: keep the slot, empty it
                out["data"] = {"text/plain": note}
                out["metadata"] = {}
                return out
            if outs and outs[-1] is out:
                outs.pop()
            if note or name == "stderr":
                outs.append(new_output("stream", name=name, text=note))
            return None

    return LimitedExecute


# ------------------------------------------------------------------ watchdog


class Watchdog:
    """Kill this process's kernels when a job runs past its wall-clock limit."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self.started = time.monotonic()

    def _fire(self):
        self.fired = True
        kill_live_kernels()
        # a kernel started after the kill (nbclient retry) is killed too
        self._again = threading.Timer(2.0, self._fire_again)
        self._again.daemon = True
        self._again.start()

    def _fire_again(self):
        if kill_live_kernels():
            self._again = threading.Timer(2.0, self._fire_again)
            self._again.daemon = True
            self._again.start()

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        again = getattr(self, "_again", None)
        if again is not None:
            again.cancel()
        return False
