"""A throwaway PostgreSQL server for tests, and the pytest fixtures that use it.

Fixtures (import them into a conftest: ``from tests.pg import pg_url, fresh_pg_url``):
- ``pg_url`` (session): a server URL with superuser rights.  ``MIMI_TEST_PG_URL`` when set
  (``.ci/postgres.sh`` prints one), else a server started here (initdb in a temporary
  directory, 127.0.0.1 on a free port, ``fsync=on``) and stopped at the end of the session.
  Without PostgreSQL binaries the tests that need it are skipped, except under ``CI=true``,
  where they fail: CI must not pass by skipping.
- ``fresh_pg_url`` (function): a new empty database on that server, dropped afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, List, NoReturn, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "PostgresServer", "find_pg_bindir", "fresh_pg_url", "pg_url", "start_postgres", "with_dbname",
]

_START_TIMEOUT_S = 60


def find_pg_bindir() -> Optional[Path]:
    """The directory holding initdb and pg_ctl (newest Debian version first), or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
        reverse=True,
    )
    for directory in candidates:
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return Path(directory)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory; ``stop()`` removes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="mimi-pg-"))
        self.datadir = self.root / "data"
        self.port = 0
        self._run_as: List[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            self._run_as + [str(self.bindir / args[0]), *args[1:]],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=_START_TIMEOUT_S,
        )

    def start(self) -> None:
        # --no-sync only skips initdb's own final flush; the server itself runs with fsync=on.
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        for attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c fsync=on "
                f"-c unix_socket_directories={self.root} -c max_connections=100"
            )
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log"),
                          "-o", options, "-w", "-t", str(_START_TIMEOUT_S), "start")
                self._options = options
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    log = (self.root / "log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None

    def pause(self) -> None:
        """Stop the server, keeping its data (``resume`` starts it again on the same port)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log"),
                  "-o", self._options, "-w", "-t", str(_START_TIMEOUT_S), "start")

    def stop(self) -> None:
        if self.datadir.exists():
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
            except subprocess.CalledProcessError:
                pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a throwaway server (RuntimeError when PostgreSQL is not installed)."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
    server = PostgresServer(bindir)
    atexit.register(server.stop)  # also when the session ends abnormally
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def _unavailable(reason: str) -> NoReturn:
    message = (
        f"PostgreSQL unavailable: {reason}. Install it (apt-get install postgresql) or set "
        "MIMI_TEST_PG_URL (bash .ci/postgres.sh prints one)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " [CI=true: not skipping]", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("MIMI_TEST_PG_URL")
    if url:
        yield url
        return
    if find_pg_bindir() is None:
        _unavailable("initdb/pg_ctl not found")
    try:
        server = start_postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("MIMI_TEST_PG_URL must be a postgresql:// URL")
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """The URL of an empty database of its own, dropped after the test."""
    import psycopg

    dbname = f"mimi_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield with_dbname(pg_url, dbname)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
