"""Building the book for the tests: the command of the README, into a folder of the test's choosing.

Shared by tests/test_book.py (the build and its files) and tests/test_book_browser.py
(the built pages in headless Chromium), which use one build through conftest's
session fixture ``built_book``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The build command, relative to the repository root. ``-W`` turns every Sphinx
#: warning (a broken reference, a failed cell, a missing image) into an error;
#: ``-n`` flags references to nothing; ``--keep-going`` reports all of them before failing, not
#: just the first.
BUILD_ARGS = ("build", ".", "-W", "-n", "--keep-going")


def jupyter_book_executable() -> str:
    """Path of the ``jupyter-book`` script of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("jupyter-book")
    if beside.exists():
        return str(beside)
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed in this environment (pip install -r requirements.txt)")
    return found


def tasks_module():
    """The repository's tasks.py, imported by path (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("course_tasks", REPO_ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_book(path_output: Path | str | None = None, *, extra_args: tuple[str, ...] = (),
               timeout: float = 900) -> subprocess.CompletedProcess:
    """Build the book as the README does and return the finished process.

    Parameters
    ----------
    path_output : path, optional
        Folder that receives ``_build/html`` (and ``_build/.jupyter_cache``).
        None builds into the repository's own ``_build``, reusing its cache.
    extra_args : tuple of str
        More ``jupyter-book build`` options, e.g. ``("--all",)``.
    timeout : float
        Seconds before the build is killed.

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` holding the build log (stderr merged into it).
    """
    # As `tasks.py book` does: the homework pages link to freshly released student notebooks.
    published = tasks_module().publish_homework(python=sys.executable)
    assert published == 0, "releasing the homework notebooks for the book failed"
    cmd = [jupyter_book_executable(), *BUILD_ARGS, *extra_args]
    if path_output is not None:
        cmd += ["--path-output", str(path_output)]
    env = dict(os.environ)
    # The kernel must be this environment's Python, which imports coursekit.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def toc_files() -> list[str]:
    """Every file named in ``_toc.yml`` (root first), without extension."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text(encoding="utf8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files
