#!/usr/bin/env python3
"""The course's two commands, on a fresh clone with only Python 3.11 and pip:

    python3 tasks.py book    build the textbook (HTML in _build/html)
    python3 tasks.py test    run the whole test suite
    python3 tasks.py book-times    each chapter's execution time, from the last build's cache

Each creates .venv from requirements.txt and installs coursekit (pip install -e .)
when missing or when requirements.txt / pyproject.toml changed since the last install.
Extra arguments after ``test`` go to pytest, e.g. ``python3 tasks.py test -k conv``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".coursekit-installed"
HOMEWORK_NOTEBOOKS = ROOT / "book" / "homework" / "notebooks"  # generated from solutions/, committed for Colab
# Every kernel of the venv (the book's, the grader's) draws inline figures at twice
# the pixels, shown at their size in inches: sharp on any screen, at PNG's speed.
KERNEL_CONFIG = 'c.InlineBackend.figure_formats = {"retina"}\n'
#: The Colab install cell of a chapter: `%pip install ... "coursekit[torch] @ git+<url>@<branch>"`.
INSTALL_FROM_GIT = re.compile(r'("coursekit\[torch\] @ git\+)[^"\s]+(")')
#: The same cell, put into each released homework notebook (after its title) for Colab.
COLAB_CELL = (
    "# Colab has no coursekit: install it from the course's repository (elsewhere this does nothing).\n"
    "import sys\n\n"
    'if "google.colab" in sys.modules:\n'
    '    %pip install --quiet "coursekit[torch] @ {}"'
)


def _say(msg: str) -> None:
    print(f"[tasks] {msg}", flush=True)


def _run(cmd, **kwargs) -> int:
    _say(" ".join(str(c) for c in cmd))
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def _env() -> dict:
    """The venv's bin first on PATH: nbgrader's gradebook calls alembic as a subprocess."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def ensure_venv() -> None:
    """Create .venv and install what the project needs, once per change of the requirements."""
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in ("requirements.txt", "pyproject.toml"))).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PYTHON.exists():
        write_kernel_config()  # cheap; a venv made before the config existed gets it too
        return
    if not PYTHON.exists():
        if sys.version_info < (3, 10):
            sys.exit(f"[tasks] Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
        _say(f"creating {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if _run([*pip, "-r", "requirements.txt"], env=_env()) or _run([*pip, "-e", "."], env=_env()):
        sys.exit("[tasks] installing the requirements failed (see pip's message above)")
    # The Jupyter kernel the book and the grader run must be this venv's Python.
    _run([PYTHON, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (coursekit)"], env=_env())
    write_kernel_config()
    STAMP.write_text(digest)


def write_kernel_config() -> None:
    """IPython's per-environment kernel config (sys.prefix/etc/ipython): see KERNEL_CONFIG."""
    config = VENV / "etc" / "ipython" / "ipython_kernel_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(KERNEL_CONFIG)


def publish_homework(python=PYTHON) -> int:
    """Release each homework in solutions/ and put the student notebook where the book links it.

    ``nbgrader generate_assignment`` strips the solutions and hidden tests; a homework
    whose source notebook has not changed since the last release is skipped.
    """
    course = ROOT / "_build" / "homework-course"
    HOMEWORK_NOTEBOOKS.mkdir(parents=True, exist_ok=True)
    for source in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        hw = source.parent.name
        if source.stem != hw:
            continue
        target, stamp = HOMEWORK_NOTEBOOKS / f"{hw}.ipynb", HOMEWORK_NOTEBOOKS / f".{hw}.sha256"
        table = HOMEWORK_NOTEBOOKS / f"{hw}.points.md"  # the page's points table
        digest = release_digest(source)
        if target.exists() and table.exists() and stamp.exists() and stamp.read_text() == digest:
            continue
        code = _run([python, "-m", "autograder", "release", hw, "--course-dir", course], env=_env())
        if code:
            return code
        shutil.copyfile(course / "release" / hw / f"{hw}.ipynb", target)
        add_colab_cell(target)
        # Read from the released notebook's nbgrader metadata, so the page shows what is graded.
        with table.open("w") as out:
            code = _run([python, "-c", f"from coursekit.homework import points_markdown; print(points_markdown({str(target)!r}))"],
                        env=_env(), stdout=out)
        if code:
            return code
        stamp.write_text(digest)
    return 0


def release_digest(source: Path) -> str:
    """What a released notebook is stamped with: its source and the repository it installs from."""
    return hashlib.sha256(source.read_bytes() + install_source().encode()).hexdigest()


def add_colab_cell(notebook: Path) -> None:
    """Put the Colab install cell after the title of a released homework notebook."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cell = {"cell_type": "code", "execution_count": None, "id": "colab-install", "metadata": {}, "outputs": [],
            "source": COLAB_CELL.format(install_source()).splitlines(keepends=True)}
    nb["cells"].insert(1, cell)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def executable_pages() -> list[Path]:
    """The book's MyST notebook pages (those with code cells)."""
    pages = sorted((ROOT / "book").rglob("*.md"))
    return [p for p in pages if "{code-cell}" in p.read_text(encoding="utf-8")]


def repository() -> tuple[str, str]:
    """``repository.url`` and ``repository.branch`` of _config.yml, the one place that names them."""
    block = re.search(r"^repository:\n((?:[ \t]+.*\n|\s*\n)+)", (ROOT / "_config.yml").read_text(encoding="utf-8"), re.M)
    fields = dict(re.findall(r"^[ \t]+(url|branch):[ \t]*([^\s#]+)", block.group(1), re.M)) if block else {}
    if "url" not in fields:
        sys.exit("[tasks] _config.yml has no repository.url")
    return fields["url"], fields.get("branch", "main")


def install_source() -> str:
    """What a chapter's Colab cell pip-installs: the course repository at its branch."""
    url, branch = repository()
    return f"git+{url}@{branch}"


def sync_install_cells() -> None:
    """Point every chapter's Colab install cell at the repository of _config.yml."""
    for page in executable_pages():
        text = page.read_text(encoding="utf-8")
        synced = INSTALL_FROM_GIT.sub(lambda m: f'"coursekit[torch] @ {install_source()}"', text)
        if synced != text:
            _say(f"{page.relative_to(ROOT)}: Colab installs from {install_source()}")
            page.write_text(synced, encoding="utf-8")


def pair_notebooks(python=PYTHON) -> int:
    """Write book/<page>.ipynb beside each executable page, for Colab, which cannot open .md.

    The .md page is the source; the .ipynb (no outputs) is generated from it and
    committed so that Colab can open it from the repository. tests/test_book.py
    fails when a committed copy no longer matches its page.
    """
    # Cell ids numbered by position, not random, so an unchanged page writes identical bytes.
    convert = (
        "import sys, jupytext\n"
        "for page in sys.argv[1:]:\n"
        "    nb = jupytext.read(page)\n"
        "    for i, cell in enumerate(nb.cells):\n"
        "        cell.id = f'cell-{i:03d}'\n"
        "    jupytext.write(nb, page[: -len('.md')] + '.ipynb')\n"
    )
    stale = [p for p in executable_pages()
             if not p.with_suffix(".ipynb").exists() or p.stat().st_mtime > p.with_suffix(".ipynb").stat().st_mtime]
    return _run([python, "-c", convert, *stale], env=_env()) if stale else 0  # jupytext alone takes seconds to import


def book(args) -> int:
    ensure_venv()
    sync_install_cells()
    return publish_homework() or pair_notebooks() or _run([BIN / "jupyter-book", "build", ".", "-W", "-n", "--keep-going", *args], env=_env())


def book_times(args) -> int:
    """Print a Markdown table of each chapter's execution time, read from the book's execution cache."""
    ensure_venv()
    table = (
        "import sys\n"
        "from pathlib import Path\n"
        "from jupyter_cache import get_cache\n"
        "rows = sorted((Path(r.uri).stem, r.data.get('execution_seconds', 0.0)) for r in get_cache(sys.argv[1]).list_cache_records())\n"
        "print('| chapter | execution (s) |\\n|---|---:|')\n"
        "for name, seconds in rows:\n"
        "    print(f'| {name} | {seconds:.0f} |')\n"
        "print(f'| **total** | **{sum(s for _, s in rows):.0f}** |')\n"
    )
    return _run([PYTHON, "-c", table, *(args or [ROOT / "_build" / ".jupyter_cache"])], env=_env())


def test(args) -> int:
    ensure_venv()
    code = _run([PYTHON, "-m", "pytest", *args], env=_env())
    if code == 5:  # pytest: no tests were collected; that must not pass silently
        _say("pytest collected no tests: failing")
        return 1
    return code


def main(argv) -> int:
    commands = {"book": book, "book-times": book_times, "test": test}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
