"""Reading the tallies that triggers keep (shop/models/tallies.py); folding them and counting
them again is `shop.tallies.folding`.

A figure "since <moment>" is the tallies of the whole hours from the hour boundary nearest
that moment, corrected by the slot tallies of the five-minute slots between that boundary and
the five-minute mark nearest the moment, and by the rows between the mark and the moment
counted directly (at most two and a half minutes of rows, on the counted table's time
index). Each part is added when it lies after the moment and taken away when before: exact,
and the same cost whatever the length of the history or the traffic of an hour.
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, cached_property

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    bindparam,
    cast,
    func,
    select,
    union_all,
)

from shop import clock
from shop.extensions import db
from shop.models import (
    CodeSlotTally,
    CodeTally,
    OrderSlotTally,
    OrderTally,
    RefusalSlotTally,
    RefusalTally,
    SmsSlotTally,
    SmsTally,
    SpendTally,
    StepUpSlotTally,
    StepUpTally,
)

HOUR_SECONDS = 3600
SLOT_SECONDS = 300
SLOTS_PER_HOUR = HOUR_SECONDS // SLOT_SECONDS
# Slot tallies are kept this long: the longest window the pages read is seven days.
SLOT_DAYS = 8
# Each tally: the columns that say what is counted, then the counts.
KEYS = {
    OrderTally: ("hour", "status", "outcome", "needed_code", "verified"),
    SmsTally: ("hour", "status", "sent"),
    CodeTally: ("hour", "purpose", "consumed", "country"),
    RefusalTally: ("hour", "reason", "country"),
    SpendTally: ("hour",),
    StepUpTally: ("hour", "purpose", "factors", "factor"),
}
# The hourly tallies that also count by slot, and their slot tallies.
SLOTS = {
    OrderTally: OrderSlotTally,
    SmsTally: SmsSlotTally,
    CodeTally: CodeSlotTally,
    RefusalTally: RefusalSlotTally,
    StepUpTally: StepUpSlotTally,
}
KEYS.update({slots: ("slot", *KEYS[hours][1:]) for hours, slots in SLOTS.items()})
COUNTS = {
    OrderTally: ("orders", "value_minor"),
    SmsTally: ("messages",),
    CodeTally: ("codes",),
    RefusalTally: ("refusals",),
    SpendTally: ("messages", "price_units"),
    StepUpTally: ("step_ups",),
}
COUNTS.update({slots: COUNTS[hours] for hours, slots in SLOTS.items()})
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


def slot_of(moment: datetime) -> int:
    return math.floor(moment.timestamp() / SLOT_SECONDS)


def _nearest(moment: datetime, seconds: int) -> int:
    """The boundary of `seconds`-long spans nearest `moment`, as a number of spans."""
    return math.floor(moment.timestamp() / seconds + 0.5)


@dataclass(frozen=True)
class Window:
    """Everything created at or after `since`, in three parts: the hourly tallies from
    `first_hour` on (its start is the hour boundary nearest `since`); the slot tallies of
    the five-minute slots between that boundary and `mark`, the five-minute boundary nearest
    `since` (`slots`: added when the boundary is after the mark, `slot_sign` 1, taken away
    when before, -1); and the rows between `since` and `mark` counted directly (`edge`, at
    most two and a half minutes of them: added when the mark is after `since`, `sign` 1,
    taken away when before). When the slot tallies of that time are no longer kept, `mark`
    is the hour boundary: no slots, and the edge is up to half an hour of rows."""

    since: datetime
    first_hour: int
    mark: int  # a slot number

    @classmethod
    def starting(cls, since: datetime) -> "Window":
        first_hour = _nearest(since, HOUR_SECONDS)
        # Slots within the last SLOT_DAYS are kept; an hour's margin for the edge and the fold.
        kept = since >= clock.now() - timedelta(days=SLOT_DAYS, hours=-1)
        mark = _nearest(since, SLOT_SECONDS) if kept else first_hour * SLOTS_PER_HOUR
        return cls(since, first_hour, mark)

    @cached_property  # a window is frozen: worked out once, read for every figure
    def slots(self) -> tuple[int, int]:
        """[first, end) of the slots read from the slot tallies (empty on a boundary)."""
        boundary = self.first_hour * SLOTS_PER_HOUR
        return (min(self.mark, boundary), max(self.mark, boundary))

    @cached_property
    def slot_sign(self) -> int:
        return 1 if self.mark <= self.first_hour * SLOTS_PER_HOUR else -1

    @cached_property
    def sign(self) -> int:
        return 1 if self.mark * SLOT_SECONDS >= self.since.timestamp() else -1

    @cached_property
    def edge(self) -> tuple[datetime, datetime]:
        """[start, end) of the rows counted directly (empty on a five-minute mark)."""
        mark = datetime.fromtimestamp(self.mark * SLOT_SECONDS, UTC)
        return (self.since, mark) if self.sign > 0 else (mark, self.since)

    def corrected(self, tallied: tuple[int, ...], edge: tuple[int, ...]) -> tuple[int, ...]:
        """The tallied figures with the edge's figures added or taken away."""
        return tuple(whole + self.sign * part for whole, part in zip(tallied, edge, strict=True))


Tally = (
    OrderTally
    | SmsTally
    | CodeTally
    | RefusalTally
    | SpendTally
    | StepUpTally
    | OrderSlotTally
    | SmsSlotTally
    | CodeSlotTally
    | RefusalSlotTally
    | StepUpSlotTally
)


def sum_of(column) -> ColumnElement[int]:
    """SUM of a count column, 0 over no rows. PostgreSQL sums bigints as numeric: cast back,
    so that Python sees ints."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def summed(model, *columns, where=(), group_by=()):
    """SELECT group columns and the sums of `columns` over the tally rows matching `where`."""
    table = model.__table__
    sums = [sum_of(table.c[name]) for name in columns]
    groups = [table.c[name] if isinstance(name, str) else name for name in group_by]
    return db.session.execute(select(*groups, *sums).where(*where).group_by(*groups)).all()


def window_sums(
    model: type[Tally],
    count: str,
    window: Window,
    group_by: Sequence[str] = (),
    only: Mapping[str, object] | None = None,
) -> list[tuple]:
    """(group values..., total) of `count` over the tallied part of `window`, in one
    statement: the hours from its first on, and its slots added or taken away (a slot's
    counts are in the slot tally once folded, in the hourly rows until then). `only`: column
    values the rows must have."""
    only = only or {}
    first, end = window.slots
    statement = _window_statement(model, count, tuple(group_by), tuple(only))
    values = {
        "first_hour": window.first_hour,
        "slot_hour": first // SLOTS_PER_HOUR,
        "first_slot": first,
        "end_slot": end,
        "slot_sign": window.slot_sign,
        **{f"only_{name}": value for name, value in only.items()},
    }
    rows = db.session.execute(statement, values).all()
    return [tuple(row) for row in rows if not group_by or row[-1]]


@cache
def _window_statement(
    model: type[Tally], count: str, group_by: tuple[str, ...], only: tuple[str, ...]
) -> Select:
    """`window_sums`'s statement, built once for each shape (a page reads a dozen windows,
    and building the statement cost more than running it)."""
    table, detail = model.__table__, SLOTS[model].__table__
    names = list(dict.fromkeys([*group_by, *only]))

    def part(source, signed: bool, *where):
        matching = [source.c[name] == bindparam(f"only_{name}") for name in only]
        counted = source.c[count] * bindparam("slot_sign") if signed else source.c[count]
        return select(*(source.c[name] for name in names), counted.label(count)).where(
            *where, *matching
        )

    parts = union_all(
        part(table, False, table.c.hour >= bindparam("first_hour")),
        part(
            table,
            True,
            table.c.hour == bindparam("slot_hour"),
            table.c.slot >= bindparam("first_slot"),
            table.c.slot < bindparam("end_slot"),
        ),
        part(
            detail,
            True,
            detail.c.slot >= bindparam("first_slot"),
            detail.c.slot < bindparam("end_slot"),
        ),
    ).subquery("window")
    groups = [parts.c[name] for name in group_by]
    return select(*groups, sum_of(parts.c[count])).group_by(*groups)


def grouped_since(
    model: type[Tally],
    count: str,
    since: datetime,
    group_by: Sequence[str],
    recount: Callable[[datetime, datetime], Counter],
    only: Mapping[str, object] | None = None,
) -> Counter:
    """`count` summed per value of the `group_by` columns (tuples of them) over everything
    created at or after `since`: the window's tallies (`window_sums`), corrected by
    `recount(start, end)`, the same groups counted from the rows of the window's edge.
    Groups that net to nothing are left out."""
    window = Window.starting(since)
    rows = window_sums(model, count, window, group_by, only)
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
    the rows themselves: a window's edge (`grouped_since`'s `recount`), and the recount a
    tally must equal (tests)."""
    query = select(*keys, func.count()).where(time_column >= since, *where)
    if until is not None:
        query = query.where(time_column < until)
    rows = db.session.execute(query.group_by(*keys))
    return Counter({tuple(values): total for *values, total in rows})


# Folding and counting again: shop/tallies/folding.py.
from shop.tallies.folding import compact, compact_all, rebuild  # noqa: E402

__all__ = ["compact", "compact_all", "rebuild"]
