"""The SMS-abuse console's figures: codes sent and refused, where to, from where, at what cost.

SMS pumping shows as many code sends to numbers (often in one country or range) that never
enter their code, from many addresses: refusals pile up by reason, a country's conversion
(codes entered ÷ codes sent) falls towards zero, and provider spend climbs. Every figure is
an aggregate over a time window read through an index on its time column (`otp_challenges.
created_at`, `sms_refusals.at`, `sms_messages.sent_at`); nothing counts a whole table.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Numeric, cast, func, select

from shop import tallies
from shop.extensions import db
from shop.models import OtpChallenge, SendRefusal, SmsMessage, SpendTally
from shop.otp.limits import Refusal

TOP = 10
UNKNOWN_COUNTRY = "??"


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


def send_figures(since: datetime) -> SendFigures:
    sent, verified = db.session.execute(
        select(func.count(OtpChallenge.id), func.count(OtpChallenge.consumed_at)).where(
            OtpChallenge.created_at >= since
        )
    ).one()
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


def by_country(since: datetime) -> list[CountryFigures]:
    """Codes sent, entered and refused per destination country, busiest first."""
    countries: dict[str, CountryFigures] = {}

    def row(country: str | None) -> CountryFigures:
        code = country or UNKNOWN_COUNTRY
        return countries.setdefault(code, CountryFigures(code))

    sends = db.session.execute(
        select(
            OtpChallenge.country,
            func.count(OtpChallenge.id),
            func.count(OtpChallenge.consumed_at),
        )
        .where(OtpChallenge.created_at >= since)
        .group_by(OtpChallenge.country)
    )
    for country, sent, verified in sends:
        figures = row(country)
        figures.sent, figures.verified = sent, verified
    refusals = db.session.execute(
        select(SendRefusal.country, func.count(SendRefusal.id))
        .where(SendRefusal.at >= since)
        .group_by(SendRefusal.country)
    )
    for country, refused in refusals:
        row(country).refused += refused
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


def _top(sent_column, refused_column, since: datetime, limit: int) -> list[SourceFigures]:
    """The busiest keys over sends and refusals: each side's busiest few are the candidates,
    then both are counted exactly for the candidates only."""
    sides = ((sent_column, OtpChallenge.created_at), (refused_column, SendRefusal.at))
    candidates: set[str] = set()
    for column, time_column in sides:
        count = func.count()
        candidates.update(
            db.session.scalars(
                select(column)
                .where(time_column >= since)
                .group_by(column)
                .order_by(count.desc(), column)
                .limit(limit)
            )
        )
    if not candidates:
        return []
    figures = {key: SourceFigures(key) for key in candidates}
    for (column, time_column), attribute in zip(sides, ("sent", "refused"), strict=True):
        rows = db.session.execute(
            select(column, func.count())
            .where(time_column >= since, column.in_(candidates))
            .group_by(column)
        )
        for key, number in rows:
            setattr(figures[key], attribute, number)
    ranked = sorted(figures.values(), key=lambda item: (-item.attempts, item.key))
    return ranked[:limit]


def top_numbers(since: datetime, limit: int = TOP) -> list[SourceFigures]:
    return _top(OtpChallenge.phone, SendRefusal.phone, since, limit)


def top_addresses(since: datetime, limit: int = TOP) -> list[SourceFigures]:
    return _top(OtpChallenge.client_ip, SendRefusal.client_ip, since, limit)


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
        group_by=["hour"],
    )
    for hour, messages, units in rows:
        day = spent.get(tallies.hour_start(hour).date())
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
