"""Column types shared by the models."""

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, DateTime, Index, and_, column, literal
from sqlalchemy.types import TypeDecorator

from shop import clock


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def current_time() -> datetime:
    """Column default: the shop's clock, looked up at each call so that tests can freeze it."""
    return clock.now()


def literal_in(column, values: Iterable[str]) -> ColumnElement[bool]:
    """`column = value` or `column IN (...)` with the values written into the SQL rather
    than bound: SQLite uses a partial index only for a query that repeats the index's own
    terms, literally, and PostgreSQL's generic plans (once a statement is prepared) can
    prove nothing from a bound value either."""
    literals = [literal(str(value), literal_execute=True) for value in values]
    return column == literals[0] if len(literals) == 1 else column.in_(literals)


def one_live_per_account_and_purpose(name: str) -> Index:
    """At most one live row (neither consumed nor ended) per account and purpose, whatever
    races the application loses: a partial unique index on both databases."""
    live = and_(column("consumed_at").is_(None), column("ended_at").is_(None))
    return Index(name, "user_id", "purpose", unique=True, sqlite_where=live, postgresql_where=live)


def open_rows(model) -> ColumnElement[bool]:
    """A code or a step-up neither consumed nor ended (its expiry aside)."""
    return and_(model.consumed_at.is_(None), model.ended_at.is_(None))


def live_of(model, user_id: int, purpose: str) -> ColumnElement[bool]:
    """The rows that index holds at most one of: this account's, for this purpose, neither
    consumed nor ended (a code, a step-up)."""
    return and_(model.user_id == user_id, model.purpose == purpose, open_rows(model))
