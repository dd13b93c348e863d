"""A throwaway PostgreSQL server on loopback for the gradebook tests.

:func:`postgres_server` runs ``initdb`` into a fresh folder, starts ``postgres``
on 127.0.0.1 at a free port (trust authentication, no fsync: the data is thrown
away), yields ``(base_url, create_database)``, and stops and deletes everything
afterwards. PostgreSQL refuses to run as root, so under root the server runs as
the ``postgres`` user (Debian's package creates it), else as ``nobody``.

It skips the calling test, with the reason, where no server binary exists
(``.ci/run`` installs Debian's ``postgresql`` package).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def server_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binary (initdb) here: install Debian's `postgresql` package "
                    "(.ci/run does) to run the PostgreSQL gradebook tests")
    run_as = {}
    if os.geteuid() == 0:
        name = "postgres" if "postgres" in {p.pw_name for p in pwd.getpwall()} else "nobody"
        entry = pwd.getpwnam(name)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    base = Path(tempfile.mkdtemp(prefix="gradebook-pg-"))
    data = base / "data"
    data.mkdir()
    if run_as:
        for path in (base, data):
            os.chown(path, run_as["user"], run_as["group"])
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def pg(*args, check=True):
        return subprocess.run([str(bindir / args[0]), *args[1:]], env=env, capture_output=True, text=True,
                              check=check, timeout=120, cwd=base, **run_as)

    try:
        pg("initdb", "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data} -c fsync=off"
        started = pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "server.log"), "-w", "-t", "60",
                     "start", check=False)
        if started.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{started.stdout}{started.stderr}\n{log[-2000:]}")
        root_url = f"postgresql://grader@127.0.0.1:{port}"

        def create_database() -> str:
            """A new empty database on the server; its URL."""
            import psycopg

            name = f"gb_{uuid.uuid4().hex[:12]}"
            conn = psycopg.connect(f"{root_url}/postgres", autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"CREATE DATABASE {name}")
            finally:
                conn.close()
            return f"{root_url}/{name}"

        yield root_url, create_database
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)
