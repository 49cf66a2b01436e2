"""Reading and folding the hourly tallies that triggers keep (shop/models/tallies.py).

A figure "since <moment>" is the tallies of the whole hours from the hour boundary nearest
that moment, corrected by the rows created between the moment and that boundary counted
directly (at most half an hour of rows, on the counted table's created_at index: added when
the boundary is after the moment, taken away when it is before): exact, and the same cost
whatever the length of the history.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    cast,
    delete,
    extract,
    func,
    insert,
    select,
)

from shop.extensions import db
from shop.models import (
    CodeTally,
    Order,
    OrderTally,
    OtpChallenge,
    RefusalTally,
    SendRefusal,
    SmsMessage,
    SmsTally,
    SpendTally,
    StepUp,
    StepUpTally,
)

HOUR_SECONDS = 3600
# Each tally: the columns that say what is counted, then the counts.
KEYS = {
    OrderTally: ("hour", "status", "outcome", "needed_code", "verified"),
    SmsTally: ("hour", "status", "sent"),
    CodeTally: ("hour", "purpose", "consumed", "country"),
    RefusalTally: ("hour", "reason", "country"),
    SpendTally: ("hour",),
    StepUpTally: ("hour", "purpose", "factors", "factor"),
}
COUNTS = {
    OrderTally: ("orders", "value_minor"),
    SmsTally: ("messages",),
    CodeTally: ("codes",),
    RefusalTally: ("refusals",),
    SpendTally: ("messages", "price_units"),
    StepUpTally: ("step_ups",),
}
# Provider prices have eight decimals: tallied as whole units of 10⁻⁸.
PRICE_UNITS_PER_UNIT = 100_000_000


def hour_of(moment: datetime) -> int:
    return math.floor(moment.timestamp() / HOUR_SECONDS)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR_SECONDS, UTC)


HOURS_PER_DAY = 24
EPOCH = date(1970, 1, 1)


def day_number(hour: ColumnElement[int]) -> ColumnElement[int]:
    """The UTC day of a tally's hour, in SQL, as days since the epoch: a UTC day is 24 whole
    hours (a calendar day is spelled differently on every database)."""
    return (hour // HOURS_PER_DAY).label("day")


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


@dataclass(frozen=True)
class Window:
    """Everything created at or after `since`: the tallies of the hours from `first_hour` on,
    corrected by the rows created in the part-hour between `since` and that hour's start,
    counted directly (`edge`). `first_hour` starts at the hour boundary nearest `since`, so
    that part-hour is at most half an hour of rows: when the boundary is after `since` its
    rows are added (`sign` 1); when it is before, the first hour's tally holds rows from
    before `since`, and they are taken away (`sign` -1)."""

    since: datetime
    first_hour: int

    @classmethod
    def starting(cls, since: datetime) -> "Window":
        return cls(since, math.floor(since.timestamp() / HOUR_SECONDS + 0.5))

    @cached_property  # a window is frozen: worked out once, read for every figure
    def sign(self) -> int:
        return 1 if hour_start(self.first_hour) >= self.since else -1

    @cached_property
    def edge(self) -> tuple[datetime, datetime]:
        """[start, end) of the part-hour counted directly (empty on a boundary)."""
        boundary = hour_start(self.first_hour)
        return (self.since, boundary) if self.sign > 0 else (boundary, self.since)

    def corrected(self, tallied: tuple[int, ...], edge: tuple[int, ...]) -> tuple[int, ...]:
        """The tallied figures with the edge's figures added or taken away."""
        return tuple(whole + self.sign * part for whole, part in zip(tallied, edge, strict=True))


Tally = OrderTally | SmsTally | CodeTally | RefusalTally | SpendTally | StepUpTally


def compact(model: type[Tally]) -> None:
    """Fold every row of one tally into one row per hour and values (groups that count
    nothing go). Rows appended meanwhile are left for the next time. Safe from several
    processes at once: a row is folded by whoever deletes it, once."""
    table = model.__table__
    keys = [table.c[name] for name in KEYS[model]]
    counts = [table.c[name] for name in COUNTS[model]]
    newest = db.session.scalar(select(func.max(table.c.id)))
    if newest is None:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement: the rows deleted are the rows summed, whatever runs meanwhile.
        source = delete(table).where(table.c.id <= newest).returning(*keys, *counts).cte("gone")
        columns = [source.c[column.name] for column in keys]
        sums = [func.sum(source.c[column.name]) for column in counts]
        folded = select(*columns, *sums).group_by(*columns).having(sums[0] != 0)
        db.session.execute(insert(table).from_select([*keys, *counts], folded))
    else:
        # SQLite: one writer at a time, so the two statements see the same rows.
        sums = [func.sum(column) for column in counts]
        folded = (
            select(*keys, *sums).where(table.c.id <= newest).group_by(*keys).having(sums[0] != 0)
        )
        db.session.execute(insert(table).from_select([*keys, *counts], folded))
        db.session.execute(delete(table).where(table.c.id <= newest))
    db.session.commit()


def compact_all() -> None:
    """The delivery process's minute job: fold every tally."""
    for model in KEYS:
        compact(model)


def summed(model, *columns, where=(), group_by=()):
    """SELECT group columns and the sums of `columns` over the tally rows matching `where`."""
    table = model.__table__
    # PostgreSQL sums bigints as numeric: cast back, so that Python sees ints.
    sums = [cast(func.coalesce(func.sum(table.c[name]), 0), BigInteger) for name in columns]
    groups = [table.c[name] if isinstance(name, str) else name for name in group_by]
    return db.session.execute(select(*groups, *sums).where(*where).group_by(*groups)).all()


def grouped_since(
    model: type[Tally],
    count: str,
    since: datetime,
    group_by: Sequence[str],
    recount: Callable[[datetime, datetime], Counter],
    where: Sequence[ColumnElement[bool]] = (),
) -> Counter:
    """`count` summed per value of the `group_by` columns (tuples of them) over everything
    created at or after `since`: the tallies of the whole hours, corrected by `recount(start,
    end)`, the same groups counted from the rows of the part-hour at the window's edge.
    Groups that net to nothing are left out."""
    window = Window.starting(since)
    hour = model.__table__.c.hour
    rows = summed(model, count, where=[hour >= window.first_hour, *where], group_by=group_by)
    counts = Counter({tuple(keys): total for *keys, total in rows})
    counts.update({key: window.sign * total for key, total in recount(*window.edge).items()})
    return +counts


def counted_rows(
    time_column: ColumnElement[datetime],
    keys: Sequence[ColumnElement],
    since: datetime,
    until: datetime | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> Counter:
    """Rows with `time_column` in [since, until) counted per value of `keys` (tuples), from
    the rows themselves: the part-hour at a window's edge (`grouped_since`'s `recount`), and
    the recount a tally must equal (tests)."""
    query = select(*keys, func.count()).where(time_column >= since, *where)
    if until is not None:
        query = query.where(time_column < until)
    rows = db.session.execute(query.group_by(*keys))
    return Counter({tuple(values): total for *values, total in rows})


def _hour(column) -> ColumnElement[int]:
    """The hour of a timestamp column, in SQL: whole hours since the epoch."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column) / HOUR_SECONDS), BigInteger)
    return cast(func.strftime("%s", column), Integer) // HOUR_SECONDS


def rebuild() -> None:
    """Count every tally again from the counted tables (committed): for rows written with
    the triggers off, such as a bulk load (bench/scale). Not for a live shop: changes made
    meanwhile would be lost or counted twice."""
    from shop.risk.figures import NEEDED_CODE  # the one definition of "needed a code"

    price_units = cast(
        func.round(cast(SmsMessage.provider_price, Numeric(16, 8)) * PRICE_UNITS_PER_UNIT),
        BigInteger,
    )
    # tally: (the time its hour is of, key expressions, count expressions, which rows)
    sources = {
        OrderTally: (
            Order.created_at,
            [
                Order.status,
                func.coalesce(Order.risk_outcome, ""),
                NEEDED_CODE,
                Order.step_up_verified_at.is_not(None),
            ],
            [func.count(), func.sum(Order.total_minor)],
            [],
        ),
        SmsTally: (
            SmsMessage.created_at,
            [SmsMessage.status, SmsMessage.sent_at.is_not(None)],
            [func.count()],
            [],
        ),
        CodeTally: (
            OtpChallenge.created_at,
            [
                OtpChallenge.purpose,
                OtpChallenge.consumed_at.is_not(None),
                func.coalesce(OtpChallenge.country, ""),
            ],
            [func.count()],
            [],
        ),
        RefusalTally: (
            SendRefusal.at,
            [SendRefusal.reason, func.coalesce(SendRefusal.country, "")],
            [func.count()],
            [],
        ),
        SpendTally: (
            SmsMessage.sent_at,
            [],
            [func.count(), func.sum(price_units)],
            [SmsMessage.sent_at.is_not(None), SmsMessage.provider_price.is_not(None)],
        ),
        StepUpTally: (
            StepUp.created_at,
            [StepUp.purpose, StepUp.factors, func.coalesce(StepUp.factor, "")],
            [func.count()],
            [],
        ),
    }
    for model, (at, keys, counts, where) in sources.items():
        table = model.__table__
        groups = [_hour(at), *keys]
        columns = [table.c[name] for name in (*KEYS[model], *COUNTS[model])]
        counted = select(*groups, *counts).where(*where).group_by(*groups)
        db.session.execute(delete(table))
        db.session.execute(insert(table).from_select(columns, counted))
    db.session.commit()
