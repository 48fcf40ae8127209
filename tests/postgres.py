"""A real PostgreSQL server for the tests: its own data directory, its own port, stopped after.

``initdb`` into a temporary directory and ``postgres -p <free port>`` on
127.0.0.1, never the machine's server. PostgreSQL refuses to run as root, so
as root both run as the ``postgres`` user (``runuser -u postgres --``), in a
directory that user owns. Every test gets a database of its own
(:meth:`PostgresServer.new_database`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.mosquitto import free_port

INSTALL_HINT = (
    "the PostgreSQL tests start their own server; install its binaries with "
    "`sudo apt-get install postgresql` (make test does this when it can)"
)
START_TIMEOUT_S = 30.0


def server_binary(name: str) -> str:
    """``initdb`` or ``postgres``: on PATH, or in Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
        found = candidates[0] if candidates else None
    if found is None:
        raise AssertionError(f"{name} not found: {INSTALL_HINT}")
    return found


class PostgresServer:
    """One server process on a free port of 127.0.0.1: :meth:`start`, :meth:`stop`."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="strykr-pg-"))
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.sockets.mkdir()
        self.port = free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._databases: dict[str, str] = {}
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.directory, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_postgres, *command], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{command[0]} failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        if not self.data.exists():
            self._run(
                server_binary("initdb"), "-D", str(self.data), "-U", "postgres",
                "-A", "trust", "--no-sync", "-E", "UTF8",
            )  # fmt: skip
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                *self._as_postgres, server_binary("postgres"), "-D", str(self.data),
                "-p", str(self.port), "-k", str(self.sockets),
                "-c", f"listen_addresses={self.host}",
                # A test server: what a power cut would lose does not matter here.
                "-c", "fsync=off", "-c", "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
        log.close()  # the server holds its own copy
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    said = (self.directory / "server.log").read_text(errors="replace")
                    self.stop()
                    raise AssertionError(f"PostgreSQL did not start: {said[-2000:]}") from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        name = f"journal_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)

    def database_for(self, key: str) -> str:
        """The URL of the database of ``key`` (a test's directory): new the first time."""
        if key not in self._databases:
            self._databases[key] = self.new_database()
        return self._databases[key]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # a fast shutdown: clients are cut off
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
