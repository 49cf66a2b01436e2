"""A real PostgreSQL server for the tests that need one, and a migrated Shop app on it.

PostgreSQL refuses to run as root (SPEC section 2). As root (CI), the session starts its own
server as the `postgres` user on a temporary data directory, listening on 127.0.0.1 only
(tests/postgres_server.py); as anyone else, pytest-postgresql's `postgresql_proc` starts it.
Each test gets a database of its own, created empty and dropped afterwards. Without
PostgreSQL installed the tests fail, saying what to install: they are never skipped.

Use from a test module with `from tests.postgres import pg_app, pg_database, postgres_server`.
"""

import os
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask
from psycopg import sql

from shop import create_app
from shop.extensions import db
from tests.conftest import ShopClient, config_for
from tests.postgres_server import (
    PostgresServer,
    PostgresUnavailable,
    postgres_bindir,
    running_server,
)

# A test may open up to 30 + 20 pooled connections and a worker thread or two more.
MAX_CONNECTIONS = 200
_databases = count(1)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A running PostgreSQL for the whole test session, reached over 127.0.0.1."""
    try:
        if os.geteuid() == 0:
            with running_server(max_connections=MAX_CONNECTIONS) as server:
                yield server
            return
        postgres_bindir()  # fail with the install hint rather than pytest-postgresql's error
    except PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)
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


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest) -> Flask:
    """The test runs twice: on `app` (SQLite) and on `pg_app`."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
