"""Rows written in bulk: `executemany` on SQLite, `COPY` on PostgreSQL, a chunk at a time.

The generator hands over plain tuples in the models' column order, timestamps as POSIX
seconds (UTC). They are turned into what each database stores: on SQLite the text that
SQLAlchemy writes for a `UTCDateTime` (naive UTC, microseconds always present, so that
comparisons with the app's bound values hold), on PostgreSQL an ISO text with its offset.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table

from shop.extensions import db
from shop.models.types import UTCDateTime

CHUNK = 20_000


EPOCH = datetime(1970, 1, 1)  # naive UTC: the quickest way from seconds to text


def _sqlite_time(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat(" ", "microseconds")


def _postgres_time(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat(" ", "microseconds") + "+00"


class BulkWriter:
    """Buffers rows per table and writes each buffer when it is full, and on `close()`.

    A table's buffer is written after those of the tables it refers to, so every row's
    parents are in the database before it (foreign keys are checked as rows arrive), and
    the writer commits every `COMMIT_EVERY` rows or so, at such a consistent point, so that
    SQLite's write-ahead log stays small. `connection` is a DBAPI connection (sqlite3 or
    psycopg).
    """

    COMMIT_EVERY = 500_000

    def __init__(self, connection, dialect: str, chunk: int = CHUNK) -> None:
        self.connection = connection
        self.dialect = dialect
        self.chunk = chunk
        self.counts: dict[str, int] = {}
        self._parents: dict[str, list[str]] = {}
        self._uncommitted = 0
        self._rows: dict[str, list[tuple]] = {}
        self._columns: dict[str, Sequence[str]] = {}
        self._times: dict[str, list[int]] = {}
        self._to_time = _sqlite_time if dialect == "sqlite" else _postgres_time

    def table(self, name: str, columns: Sequence[str]) -> None:
        """Declare the columns that rows of `name` will carry, in order."""
        table: Table = db.metadata.tables[name]
        self._columns[name] = tuple(columns)
        self._times[name] = [
            index
            for index, column in enumerate(columns)
            if isinstance(table.columns[column].type, UTCDateTime)
        ]
        self._rows[name] = []
        self.counts.setdefault(name, 0)
        self._parents[name] = [
            key.column.table.name
            for key in table.foreign_keys
            if key.column.table.name != name and key.column.table.name in self._rows
        ]

    def add(self, name: str, row: tuple) -> None:
        rows = self._rows[name]
        rows.append(row)
        if len(rows) >= self.chunk:
            self.flush(name)
            if self._uncommitted >= self.COMMIT_EVERY:
                self.close()

    def flush(self, name: str) -> None:
        for parent in self._parents[name]:
            self.flush(parent)
        rows = self._rows[name]
        if not rows:
            return
        times, to_time = self._times[name], self._to_time
        if times:
            converted = []
            for row in rows:
                values = list(row)
                for index in times:
                    if values[index] is not None:
                        values[index] = to_time(values[index])
                converted.append(values)
            rows = converted
        columns = self._columns[name]
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(columns))
            cursor = self.connection.cursor()
            cursor.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                rows,
            )
            cursor.close()
        else:
            with (
                self.connection.cursor() as cursor,
                cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        self.counts[name] += len(rows)
        self._uncommitted += len(rows)
        self._rows[name] = []

    def close(self) -> None:
        """Write every buffer and commit."""
        for name in self._rows:
            self.flush(name)
        self.connection.commit()
        self._uncommitted = 0
