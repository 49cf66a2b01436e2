"""A throwaway PostgreSQL server on a temporary data directory, for the tests and the benches.

PostgreSQL refuses to run as root (SPEC section 2). As root (CI), initdb and pg_ctl run as the
`postgres` user through `runuser`, in a directory that user owns; as anyone else they run as
that user. The server listens on 127.0.0.1 only, trusts local connections, and is stopped and
its directory removed when the `running_server()` block ends.

No pytest here: tests/postgres.py wraps it in fixtures, and `make bench-scale` uses it as is.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

INSTALL_HINT = (
    "PostgreSQL is not installed: the PostgreSQL tests need a real server. "
    "Install it with `apt-get install postgresql` (Debian/Ubuntu; .ci/run does this)."
)
SERVER_USER = "postgres"
START_TIMEOUT = 60
# Fast and unsafe: a server that lives for one run and holds nothing worth a crash-safe write.
THROWAWAY_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed, or its server could not be started."""


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
    raise PostgresUnavailable(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(*command: str | Path, as_server_user: bool, cwd: Path):
    prefix: list[str] = []
    if as_server_user:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable(
                "`runuser` (util-linux) is needed to start PostgreSQL as its own user."
            )
        prefix = [runuser, "-u", SERVER_USER, "--"]
    return subprocess.run(  # noqa: S603 (our own binaries, paths and options)
        [*prefix, *map(str, command)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT + 30,
        check=False,
    )


@contextmanager
def running_server(
    *, max_connections: int = 100, settings: Sequence[str] = ()
) -> Iterator[PostgresServer]:
    """A new server for the block, with `THROWAWAY_OPTIONS`, then each of `settings`
    (`name=value`), reached over 127.0.0.1 as the `postgres` superuser."""
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0
    if as_root:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"No `{SERVER_USER}` system user to run the server as. {INSTALL_HINT}"
            ) from None
    # Not under pytest's temporary directory: that one is private to root.
    base = Path(tempfile.mkdtemp(prefix="shop-postgres-"))
    try:
        if as_root:
            os.chown(base, account.pw_uid, account.pw_gid)
        datadir = base / "data"
        initdb = _run(
            bindir / "initdb",
            *("-D", datadir, "--auth=trust", "-U", SERVER_USER, "-E", "UTF8"),
            *("--no-locale", "--no-sync"),
            as_server_user=as_root,
            cwd=base,
        )
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        logfile = base / "server.log"
        options = [*THROWAWAY_OPTIONS, f"max_connections={max_connections}", *settings]
        for attempt in range(3):
            port = _free_port()
            server_options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 " + " ".join(
                f"-c {option}" for option in options
            )
            started = _run(
                bindir / "pg_ctl",
                *("-D", datadir, "-l", logfile, "-o", server_options),
                *("-w", "-t", str(START_TIMEOUT), "start"),
                as_server_user=as_root,
                cwd=base,
            )
            if started.returncode == 0:
                break
            if attempt == 2:  # the port may have been taken meanwhile: two retries
                log = logfile.read_text(errors="replace") if logfile.exists() else ""
                raise PostgresUnavailable(
                    f"PostgreSQL did not start:\n{started.stdout}\n{started.stderr}\n{log}"
                )
        try:
            yield PostgresServer("127.0.0.1", port, SERVER_USER, datadir)
        finally:
            _run(
                bindir / "pg_ctl",
                *("-D", datadir, "-m", "fast", "-w", "stop"),
                as_server_user=as_root,
                cwd=base,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
