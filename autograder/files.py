"""Copying what students hand in without ever following a link.

A submission folder may hold a symbolic link to ``solutions/`` or ``/proc/self/environ``,
or a hard link to a file the grader can read: copied naively, their targets would land in
the student's feedback folder. Here every link (symbolic, or a regular file with more than
one name), device, socket and FIFO is skipped and reported; only plain files and folders
are copied, with size limits.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

JUNK = (".ipynb_checkpoints", "__pycache__")


def _why_not(path: Path, st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1:
        return "a hard link"
    return None


def copy_tree_safely(src: Path, dest: Path, *, skip=(), max_total_bytes: int | None = None,
                     max_file_bytes: int | None = None) -> list:
    """Copy plain files and folders of ``src`` into ``dest``; return ``["path: why", ...]`` for what was skipped."""
    src, dest = Path(src), Path(dest)
    skip = {Path(p).resolve() for p in skip if p is not None}
    skipped, total = [], 0
    dest.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(src, followlinks=False):
        root = Path(root)
        for name in sorted(dirs):
            st = os.lstat(root / name)
            if name in JUNK or stat.S_ISLNK(st.st_mode):
                dirs.remove(name)
                if stat.S_ISLNK(st.st_mode):
                    skipped.append(f"{(root / name).relative_to(src)}: a symbolic link")
        for name in sorted(files):
            path = root / name
            st = os.lstat(path)
            why = _why_not(path, st)
            if why is None and path.resolve() in skip:
                continue
            if why is None and max_file_bytes is not None and st.st_size > max_file_bytes:
                why = f"larger than {max_file_bytes} bytes"
            if why is None and max_total_bytes is not None and total + st.st_size > max_total_bytes:
                why = f"past the {max_total_bytes}-byte limit for handed-in files"
            if why is not None:
                skipped.append(f"{path.relative_to(src)}: {why}")
                continue
            total += st.st_size
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_no_follow(path, target)
    return skipped


def _copy_no_follow(path: Path, target: Path) -> None:
    """Copy a regular file opened with O_NOFOLLOW (a link swapped in after the check is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)


def is_plain_file(path: Path) -> bool:
    """A regular file that is no link of any kind."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return _why_not(Path(path), st) is None and stat.S_ISREG(st.st_mode)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename: a crash leaves the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
