"""The SMS-abuse console's figures: codes sent and refused, where to, from where, at what cost.

SMS pumping shows as many code sends to numbers (often in one country or range) that never
enter their code, from many addresses: refusals pile up by reason, a country's conversion
(codes entered ÷ codes sent) falls towards zero, and provider spend climbs.

Nothing here grows with the history, nor with the refusals of an attack: codes sent and
entered per destination country, and refusals per reason and country, come from the hourly
tallies the database keeps (exact, shop/tallies); the busiest numbers and addresses,
which no tally can keep (a busy day holds tens of thousands of numbers), are counted from the
latest `SAMPLE` codes and the latest `SAMPLE` refusals of the window (pumping shows in the
latest traffic), and the page says so when the window holds more. Spend reads the tallies
for whole days, and the alarm's hour of spend the messages handed over in that hour.
"""

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter, neg

from sqlalchemy import Numeric, Row, cast, func, select

from shop import tallies
from shop.extensions import db
from shop.models import CodeTally, OtpChallenge, RefusalTally, SendRefusal, SmsMessage, SpendTally
from shop.otp.limits import Refusal

TOP = 10
UNKNOWN_COUNTRY = "??"
# The latest codes (and, apart, refusals) that the busiest numbers and addresses are read from:
# pumping at a few sends a second fills it within minutes, and it costs about 1.5 ms on SQLite.
SAMPLE = 500


@dataclass
class CountryFigures:
    country: str
    sent: int = 0
    verified: int = 0
    refused: int = 0

    @property
    def conversion(self) -> float | None:
        """Codes entered ÷ codes sent; None when none was sent."""
        return self.verified / self.sent if self.sent else None


@dataclass(frozen=True)
class SendFigures:
    """Codes sent and refused since `since`: refusals by reason (every reason, 0 included),
    and per destination country, busiest first."""

    since: datetime
    sent: int
    verified: int
    refused_by_reason: dict[str, int]
    countries: list[CountryFigures]

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())


def send_figures(since: datetime) -> SendFigures:
    codes = tallies.grouped_since(
        CodeTally, "codes", since, group_by=["country", "consumed"], recount=codes_counted
    )
    refusals = refusals_by(since)
    by_reason = dict.fromkeys((reason.value for reason in Refusal), 0)
    countries: dict[str, CountryFigures] = {}

    def country(code: str) -> CountryFigures:
        code = code or UNKNOWN_COUNTRY
        return countries.setdefault(code, CountryFigures(code))

    for (code, entered), count in codes.items():
        figures = country(code)
        figures.sent += count
        figures.verified += count if entered else 0
    for (reason, code), count in refusals.items():
        by_reason[reason] = by_reason.get(reason, 0) + count
        country(code).refused += count
    busiest = sorted(countries.values(), key=lambda row: (-(row.sent + row.refused), row.country))
    return SendFigures(
        since,
        sent=sum(row.sent for row in busiest),
        verified=sum(row.verified for row in busiest),
        refused_by_reason=by_reason,
        countries=busiest,
    )


def codes_counted(since: datetime, until: datetime | None = None) -> Counter[tuple[str, bool]]:
    """Codes created in [since, until) by (country, "" when unreadable; entered), counted
    from their rows."""
    keys = [func.coalesce(OtpChallenge.country, ""), OtpChallenge.consumed_at.is_not(None)]
    return tallies.counted_rows(OtpChallenge.created_at, keys, since, until)


def refusals_by(since: datetime) -> Counter[tuple[str, str]]:
    """Sends refused at or after `since`, by (reason, country), from the refusal tallies."""
    return tallies.grouped_since(
        RefusalTally, "refusals", since, group_by=["reason", "country"], recount=refusals_counted
    )


def refusals_since(since: datetime) -> int:
    """Sends refused at or after `since` (the alarm's hour): the same cost during an attack."""
    return sum(refusals_by(since).values())


def refusals_counted(since: datetime, until: datetime | None = None) -> Counter[tuple[str, str]]:
    """Refusals in [since, until) by (reason, country), counted from their rows."""
    keys = [SendRefusal.reason, func.coalesce(SendRefusal.country, "")]
    return tallies.counted_rows(SendRefusal.at, keys, since, until)


@dataclass(frozen=True)
class Latest:
    """The latest `SAMPLE` codes sent since a moment and the latest `SAMPLE` refusals, each
    as (`phone`, `client_ip`): what the busiest numbers and addresses are counted from."""

    codes: Sequence[Row]
    refusals: Sequence[Row]


def latest(since: datetime) -> Latest:
    """Newest first on the time indexes, stopping at `SAMPLE` rows each. Read as the tables'
    columns rather than the models' attributes: plain rows, without the ORM's work on each
    of a thousand."""
    codes, refusals = OtpChallenge.__table__.c, SendRefusal.__table__.c
    return Latest(
        db.session.execute(
            select(codes.phone, codes.client_ip)
            .where(codes.created_at >= since)
            .order_by(codes.created_at.desc())
            .limit(SAMPLE)
        ).all(),
        db.session.execute(
            select(refusals.phone, refusals.client_ip)
            .where(refusals.at >= since)
            .order_by(refusals.at.desc())
            .limit(SAMPLE)
        ).all(),
    )


@dataclass
class SourceFigures:
    """One phone number or client address: codes sent to or from it, and refused."""

    key: str
    sent: int = 0
    refused: int = 0

    @property
    def attempts(self) -> int:
        return self.sent + self.refused


# Where each source is in the rows of `Latest`: (phone, client_ip).
SOURCE_COLUMN = {"phone": 0, "client_ip": 1}


def _top(latest: Latest, field: str, limit: int) -> list[SourceFigures]:
    """The busiest values of one field ("phone" or "client_ip"), sends and refusals each
    counted exactly; ties by value."""
    # Counted and ranked without a Python call per row (itemgetter, tuples compared in C):
    # a busy day's sample holds a different number on nearly every row.
    value = itemgetter(SOURCE_COLUMN[field])
    sent = Counter(map(value, latest.codes))
    refused = Counter(map(value, latest.refusals))
    attempts = Counter(sent)
    attempts.update(refused)
    attempts.pop(None, None)
    busiest = heapq.nsmallest(limit, zip(map(neg, attempts.values()), attempts, strict=True))
    return [SourceFigures(key, sent[key], refused[key]) for _, key in busiest]


def top_numbers(latest: Latest, limit: int = TOP) -> list[SourceFigures]:
    return _top(latest, "phone", limit)


def top_addresses(latest: Latest, limit: int = TOP) -> list[SourceFigures]:
    return _top(latest, "client_ip", limit)


# Provider spend ----------------------------------------------------------------------------

# The delivery process stores only prices that read as decimal numbers (`shop.sms.attempts`).
PRICE = cast(SmsMessage.provider_price, Numeric(16, 8))


def spend_since(since: datetime) -> Decimal:
    """The sum of provider prices of the messages handed over since `since`."""
    total = db.session.scalar(
        select(func.sum(PRICE)).where(
            SmsMessage.sent_at >= since, SmsMessage.provider_price.is_not(None)
        )
    )
    return Decimal(total or 0)


@dataclass
class DaySpend:
    day: date
    messages: int = 0
    spend: Decimal = field(default_factory=Decimal)


def spend_per_day(now: datetime, days: int = 14) -> list[DaySpend]:
    """Provider spend per UTC day, today and the `days - 1` before, newest first: whole
    days are whole hours, read from the hourly spend tallies (shop/tallies)."""
    today = now.astimezone(UTC).date()
    spent = {
        today - timedelta(days=offset): DaySpend(today - timedelta(days=offset))
        for offset in range(days)
    }
    first = tallies.hour_of(
        datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    )
    last = tallies.hour_of(datetime.combine(today, time.min, tzinfo=UTC)) + 23
    rows = tallies.summed(
        SpendTally,
        "messages",
        "price_units",
        where=[SpendTally.hour >= first, SpendTally.hour <= last],
        group_by=[tallies.day_number(SpendTally.hour)],
    )
    for number, messages, units in rows:
        day = spent.get(tallies.day_of(number))
        if day is not None:
            day.messages += messages
            day.spend += Decimal(units) / tallies.PRICE_UNITS_PER_UNIT
    return list(spent.values())


# Refused sends, newest first ---------------------------------------------------------------


def refusals_before(before_id: int | None, limit: int) -> tuple[list[Row], bool]:
    """Up to `limit` refusals older than `before_id`, newest first, and whether more follow
    (keyset on the primary key: every page costs the same). Plain rows of the table's
    columns, as a list of them is shown."""
    query = select(SendRefusal.__table__)
    if before_id is not None:
        query = query.where(SendRefusal.id < before_id)
    rows = db.session.execute(query.order_by(SendRefusal.id.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit
