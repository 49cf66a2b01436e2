"""The SMS-abuse console's figures: codes sent and refused, where to, from where, at what cost.

SMS pumping shows as many code sends to numbers (often in one country or range) that never
enter their code, from many addresses: refusals pile up by reason, a country's conversion
(codes entered ÷ codes sent) falls towards zero, and provider spend climbs. Every figure is
an aggregate over a time window read through an index on its time column (`otp_challenges.
created_at`, `sms_refusals.at`, `sms_messages.sent_at`); nothing counts a whole table.

What would grow with a busy day is bounded: codes sent and entered come from the hourly
tallies (exact); destinations and sources are read from the latest `SAMPLE` codes and the
latest `SAMPLE` refusals of the window (pumping shows in the latest traffic, and a day of a
million-order shop holds some 30,000 codes), and the page says so when the window holds more.
"""

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Numeric, Row, cast, func, select

from shop import tallies
from shop.extensions import db
from shop.models import CodeTally, OtpChallenge, SendRefusal, SmsMessage, SpendTally
from shop.otp.limits import Refusal

TOP = 10
UNKNOWN_COUNTRY = "??"
# The latest codes (and, apart, refusals) that the per-country and busiest-source figures read.
SAMPLE = 2_000


@dataclass(frozen=True)
class SendFigures:
    """Codes sent and refused since `since`, refusals by reason (every reason, 0 included)."""

    since: datetime
    sent: int
    verified: int
    refused_by_reason: dict[str, int]

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())


def codes_sent(since: datetime) -> tuple[int, int]:
    """Codes sent since `since`, and how many of them were entered: the tallies of the whole
    hours, corrected by the rows of the part-hour at the window's edge (shop/tallies.py)."""
    window = tallies.Window.starting(since)
    sent = verified = 0
    for consumed, codes in tallies.summed(
        CodeTally, "codes", where=[CodeTally.hour >= window.first_hour], group_by=["consumed"]
    ):
        sent += codes
        verified += codes if consumed else 0
    start, end = window.edge
    edge = db.session.execute(
        select(func.count(OtpChallenge.id), func.count(OtpChallenge.consumed_at)).where(
            OtpChallenge.created_at >= start, OtpChallenge.created_at < end
        )
    ).one()
    return window.corrected((sent, verified), tuple(edge))


def send_figures(since: datetime) -> SendFigures:
    sent, verified = codes_sent(since)
    by_reason = dict.fromkeys((reason.value for reason in Refusal), 0)
    rows = db.session.execute(
        select(SendRefusal.reason, func.count(SendRefusal.id))
        .where(SendRefusal.at >= since)
        .group_by(SendRefusal.reason)
    )
    for reason, count in rows:
        by_reason[reason] = count
    return SendFigures(since, sent, verified, by_reason)


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
class Latest:
    """The latest `SAMPLE` codes sent since a moment (`country`, `phone`, `client_ip`,
    `entered`) and the latest `SAMPLE` refusals (`country`, `phone`, `client_ip`): what the
    per-country and busiest-source figures are counted from, read once for all three."""

    codes: Sequence[Row]
    refusals: Sequence[Row]


def latest(since: datetime) -> Latest:
    """Newest first on the time indexes, stopping at `SAMPLE` rows each."""
    codes = db.session.execute(
        select(
            OtpChallenge.country,
            OtpChallenge.phone,
            OtpChallenge.client_ip,
            OtpChallenge.consumed_at.is_not(None).label("entered"),
        )
        .where(OtpChallenge.created_at >= since)
        .order_by(OtpChallenge.created_at.desc())
        .limit(SAMPLE)
    ).all()
    refusals = db.session.execute(
        select(SendRefusal.country, SendRefusal.phone, SendRefusal.client_ip)
        .where(SendRefusal.at >= since)
        .order_by(SendRefusal.at.desc())
        .limit(SAMPLE)
    ).all()
    return Latest(codes, refusals)


def by_country(latest: Latest) -> list[CountryFigures]:
    """Codes sent, entered and refused per destination country, busiest first."""
    # Counted by unpacking the rows: a Row read by name costs more than the counting.
    sent = Counter(country for country, _, _, _ in latest.codes)
    verified = Counter(country for country, _, _, entered in latest.codes if entered)
    refused = Counter(country for country, _, _ in latest.refusals)
    countries: dict[str, CountryFigures] = {}
    for country in sent.keys() | refused.keys():
        code = country or UNKNOWN_COUNTRY
        figures = countries.setdefault(code, CountryFigures(code))
        figures.sent += sent[country]
        figures.verified += verified[country]
        figures.refused += refused[country]
    return sorted(countries.values(), key=lambda item: (-(item.sent + item.refused), item.country))


@dataclass
class SourceFigures:
    """One phone number or client address: codes sent to or from it, and refused."""

    key: str
    sent: int = 0
    refused: int = 0

    @property
    def attempts(self) -> int:
        return self.sent + self.refused


# Where each source is in the rows of `Latest`: (country, phone, client_ip[, entered]).
SOURCE_COLUMN = {"phone": 1, "client_ip": 2}


def _top(latest: Latest, field: str, limit: int) -> list[SourceFigures]:
    """The busiest values of one field ("phone" or "client_ip"), sends and refusals each
    counted exactly; ties by value."""
    column = SOURCE_COLUMN[field]
    sent = Counter(code[column] for code in latest.codes)
    refused = Counter(refusal[column] for refusal in latest.refusals)
    attempts = sent + refused
    attempts.pop(None, None)
    # Thousands of distinct values in a busy day's sample: only the busiest are ranked.
    busiest = heapq.nsmallest(limit, attempts.items(), key=lambda item: (-item[1], item[0]))
    return [SourceFigures(key, sent[key], refused[key]) for key, _ in busiest]


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
    days are whole hours, read from the hourly spend tallies (shop/tallies.py)."""
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


def refusals_before(before_id: int | None, limit: int) -> tuple[list[SendRefusal], bool]:
    """Up to `limit` refusals older than `before_id`, newest first, and whether more follow
    (keyset on the primary key: every page costs the same)."""
    query = select(SendRefusal)
    if before_id is not None:
        query = query.where(SendRefusal.id < before_id)
    rows = list(db.session.scalars(query.order_by(SendRefusal.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def refusals_in_hour(now: datetime) -> int:
    return db.session.scalar(
        select(func.count(SendRefusal.id)).where(SendRefusal.at > now - timedelta(hours=1))
    )
