"""A real PostgreSQL server for the tests that need one, and a migrated Shop app on it.

PostgreSQL refuses to run as root (SPEC section 2). As root (CI), the session starts its own
server as the `postgres` user on a temporary data directory, listening on 127.0.0.1 only; as
anyone else, pytest-postgresql's `postgresql_proc` starts it. Each test gets a database of
its own, created empty and dropped afterwards. Without PostgreSQL installed the tests fail,
saying what to install: they are never skipped.

Use from a test module with `from tests.postgres import pg_app, pg_database, postgres_server`.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import flask_migrate
import psycopg
import pytest
from flask import Flask
from psycopg import sql

from shop import create_app
from shop.extensions import db
from tests.conftest import ShopClient, config_for

INSTALL_HINT = (
    "PostgreSQL is not installed: the PostgreSQL tests need a real server. "
    "Install it with `apt-get install postgresql` (Debian/Ubuntu; .ci/run does this)."
)
SERVER_USER = "postgres"
# A test may open up to 30 + 20 pooled connections and a worker thread or two more.
MAX_CONNECTIONS = 200
START_TIMEOUT = 60
_databases = count(1)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    # The server's files (heap, WAL), for tests that look at what is on disk.
    datadir: Path | None = None

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """An autocommit connection, for CREATE and DROP DATABASE."""
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True
        )


def postgres_bindir() -> Path:
    """Where initdb and pg_ctl live: `pg_config --bindir`, else Debian's newest version."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            found = subprocess.run(  # noqa: S603 (a fixed command)
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found:
            candidates.append(Path(found))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [
        Path(path) for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)[::-1]
    ]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    pytest.fail(INSTALL_HINT, pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("`runuser` (util-linux) is needed to start PostgreSQL as its own user.")
    return subprocess.run(  # noqa: S603 (our own binaries, paths and options)
        [runuser, "-u", SERVER_USER, "--", *map(str, command)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT + 30,
        check=False,
    )


def _server_as_postgres_user() -> Iterator[PostgresServer]:
    """Run as root: initdb and pg_ctl as `postgres`, in a directory that user owns."""
    bindir = postgres_bindir()
    try:
        account = pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(f"No `{SERVER_USER}` system user to run the server as. {INSTALL_HINT}")
    # Not under pytest's temporary directory: that one is private to root.
    base = Path(tempfile.mkdtemp(prefix="shop-postgres-"))
    try:
        os.chown(base, account.pw_uid, account.pw_gid)
        datadir = base / "data"
        initdb = _as_server_user(
            bindir / "initdb",
            "-D",
            datadir,
            "--auth=trust",
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            cwd=base,
        )
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}", pytrace=False)
        logfile = base / "server.log"
        for attempt in range(3):
            port = _free_port()
            options = (
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off "
                f"-c max_connections={MAX_CONNECTIONS}"
            )
            started = _as_server_user(
                bindir / "pg_ctl",
                "-D",
                datadir,
                "-l",
                logfile,
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT),
                "start",
                cwd=base,
            )
            if started.returncode == 0:
                break
            log = logfile.read_text(errors="replace") if logfile.exists() else ""
            if attempt == 2:
                pytest.fail(
                    f"PostgreSQL did not start:\n{started.stdout}\n{started.stderr}\n{log}",
                    pytrace=False,
                )
        try:
            yield PostgresServer("127.0.0.1", port, SERVER_USER, datadir)
        finally:
            _as_server_user(bindir / "pg_ctl", "-D", datadir, "-m", "fast", "-w", "stop", cwd=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A running PostgreSQL for the whole test session, reached over 127.0.0.1."""
    if os.geteuid() == 0:
        yield from _server_as_postgres_user()
        return
    postgres_bindir()  # fail with the install hint rather than pytest-postgresql's error
    process = request.getfixturevalue("postgresql_proc")
    yield PostgresServer(
        process.host, int(process.port), process.user, Path(getattr(process, "datadir", ""))
    )


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"shop_test_{os.getpid()}_{next(_databases)}"
    with postgres_server.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_server.url(name)
    with postgres_server.connect() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def pg_config_for(url: str, tmp_path: Path) -> dict:
    """The tests' usual settings, on PostgreSQL, with a pool big enough for 50 threads."""
    return {
        **config_for(tmp_path / "unused.sqlite3"),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 30, "max_overflow": 20},
    }


@pytest.fixture
def pg_app(pg_database: str, tmp_path: Path) -> Iterator[Flask]:
    """Like `app` in tests/conftest.py, on a database of its own built by the real migrations."""
    app = create_app(pg_config_for(pg_database, tmp_path))
    app.test_client_class = ShopClient
    with app.app_context():
        flask_migrate.upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()
