"""Folding the tallies the triggers append to (the delivery process's minute job), and
counting them again from the rows after a bulk load."""

from datetime import timedelta

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

from shop import clock
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
from shop.tallies import (
    COUNTS,
    HOUR_SECONDS,
    KEYS,
    PRICE_UNITS_PER_UNIT,
    SLOT_DAYS,
    SLOT_SECONDS,
    SLOTS,
    Tally,
    slot_of,
)


def compact(model: type[Tally]) -> None:
    """Fold the rows the triggers appended to one tally into one row per hour (or slot) and
    values (groups that count nothing go); an hourly tally with slots also adds their counts
    by slot to its slot tally. Only the hours (and slots) that rows were appended to are
    folded again: the minute job costs what the last minute's traffic touched, not the
    history kept. Rows appended meanwhile are left for the next time. Safe from several
    processes at once: a row is folded by whoever deletes it, once."""
    table = model.__table__
    keys = [table.c[name] for name in KEYS[model]]
    counts = [table.c[name] for name in COUNTS[model]]
    detail = SLOTS[model].__table__ if model in SLOTS else None
    newest = db.session.scalar(select(func.max(table.c.id)))
    if newest is None:
        return
    # The rows to fold: of a tally with slots, every row of an hour that rows were appended
    # to (an appended row says its slot, a folded one does not); of one without, every row.
    folding = [table.c.id <= newest]
    if detail is not None:
        # A slot tally's columns after its slot: the hourly tally's values, then its counts.
        held = [detail.c[column.name] for column in (*keys[1:], *counts)]
        touched = select(table.c.hour).where(table.c.id <= newest, table.c.slot.is_not(None))
        folding.append(table.c.hour.in_(touched.distinct().scalar_subquery()))
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement: the rows deleted are the rows summed, whatever runs meanwhile.
        returned = [*keys, *counts, *([table.c.slot] if detail is not None else [])]
        source = delete(table).where(*folding).returning(*returned).cte("gone")
        statement = _folded(table, source, keys, counts)
        if detail is not None:
            # The slots the appended rows were of, folded with what the slot tally held.
            slots = select(source.c.slot).where(source.c.slot.is_not(None)).scalar_subquery()
            kept = (
                delete(detail)
                .where(detail.c.slot.in_(slots))
                .returning(detail.c.slot, *held)
                .cte("kept")
            )
            both = _slot_rows(source, keys, counts).union_all(select(*kept.c)).subquery()
            by_slot = _folded(detail, both, [both.c.slot, *keys[1:]], counts)
            statement = statement.add_cte(by_slot.returning(detail.c.id).cte("by_slot"))
        db.session.execute(statement)
    else:
        # SQLite: one writer at a time, so the statements see the same rows.
        folded = table.select().where(*folding).subquery()
        if detail is not None:
            slots = select(folded.c.slot).where(folded.c.slot.is_not(None)).distinct()
            newest_slot_row = db.session.scalar(select(func.max(detail.c.id))) or 0
            kept = [detail.c.id <= newest_slot_row, detail.c.slot.in_(slots)]
            rows = select(detail.c.slot, *held).where(*kept)
            both = _slot_rows(folded, keys, counts).union_all(rows).subquery()
            db.session.execute(_folded(detail, both, [both.c.slot, *keys[1:]], counts))
            db.session.execute(delete(detail).where(*kept))
        db.session.execute(_folded(table, folded, keys, counts))
        db.session.execute(delete(table).where(*folding))
    if detail is not None:
        oldest = slot_of(clock.now() - timedelta(days=SLOT_DAYS))
        db.session.execute(delete(detail).where(detail.c.slot < oldest))
    db.session.commit()


def _slot_rows(source, keys, counts):
    """The appended rows of `source` as rows of the slot tally: slot, values, counts."""
    return select(source.c.slot, *[source.c[column.name] for column in (*keys[1:], *counts)]).where(
        source.c.slot.is_not(None)
    )


def _folded(target, source, keys, counts):
    """INSERT into `target` of `source`'s rows summed per hour (or slot: whichever column
    leads `keys`) and values."""
    columns = [source.c[column.name] for column in keys]
    sums = [func.sum(source.c[column.name]) for column in counts]
    rows = select(*columns, *sums).group_by(*columns).having(sums[0] != 0)
    names = [column.name for column in keys] + [column.name for column in counts]
    return insert(target).from_select(names, rows)


def compact_all() -> None:
    """The delivery process's minute job: fold every hourly tally (and with it the slots
    its appended rows were of), and let go of slot tallies past `SLOT_DAYS`."""
    for model in KEYS:
        if model not in SLOTS.values():
            compact(model)


def _spans(column, seconds: int) -> ColumnElement[int]:
    """The hour or slot of a timestamp column, in SQL: whole spans of `seconds` since the
    epoch."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column) / seconds), BigInteger)
    return cast(func.strftime("%s", column), Integer) // seconds


def rebuild() -> None:
    """Count every tally again from the counted tables (committed): for rows written with
    the triggers off, such as a bulk load (bench/scale). Not for a live shop: changes made
    meanwhile would be lost or counted twice."""
    from shop.risk.figures import NEEDED_CODE  # the one definition of "needed a code"

    price_units = cast(
        func.round(cast(SmsMessage.provider_price, Numeric(16, 8)) * PRICE_UNITS_PER_UNIT),
        BigInteger,
    )
    # tally: (the time its hour and slot are of, key expressions, counts, which rows)
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
        spans = [(model, HOUR_SECONDS)] + ([(SLOTS[model], SLOT_SECONDS)] if model in SLOTS else [])
        for tally, seconds in spans:
            table = tally.__table__
            groups = [_spans(at, seconds), *keys]
            columns = [table.c[name] for name in (*KEYS[tally], *COUNTS[tally])]
            counted = select(*groups, *counts).where(*where).group_by(*groups)
            db.session.execute(delete(table))
            db.session.execute(insert(table).from_select(columns, counted))
    db.session.commit()
