"""Engine settings per database: SQLite gets WAL, foreign keys and a long busy timeout;
PostgreSQL no JIT."""

import sqlite3
from pathlib import Path

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url


def configure_engine(app: Flask) -> None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if url.get_backend_name() != "sqlite":
        options.setdefault("pool_pre_ping", True)
        if url.get_backend_name() == "postgresql":
            # No JIT compilation: the shop's statements are short, and compiling the
            # backtest's wide expressions took 2.5 s of its 3 s at a million orders
            # (docs/decisions.md).
            connect_args = options.setdefault("connect_args", {})
            connect_args["options"] = f"{connect_args.get('options', '')} -c jit=off".strip()
        return
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Writers queue on SQLite's single write lock; wait for it rather than fail.
    options.setdefault("connect_args", {}).setdefault("timeout", 30)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Deleted or overwritten data (a redacted code) is zeroed, not left in free pages.
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()
