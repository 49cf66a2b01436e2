"""Step-up figures for the owner's dashboard: how often a code is asked, entered and abandoned.

Plain queries over orders and order codes, no request objects: the dashboard passes the
window's start, taken from `shop.clock.now()`.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, exists, func, or_, select

from shop.extensions import db
from shop.models import Order, OrderStatus, OtpChallenge, OtpPurpose
from shop.risk.engine import Outcome

# An order needed a code if its decision was "otp" or a code was sent for it: the second
# covers an order whose re-evaluation at confirmation turned it into "hold".
HAD_ORDER_CODE = exists().where(
    OtpChallenge.order_id == Order.id, OtpChallenge.purpose == OtpPurpose.ORDER
)
NEEDED_CODE = or_(Order.risk_outcome == Outcome.OTP, HAD_ORDER_CODE)
# Needed a code, never confirmed by one, and ended: the shopper gave up or changed the cart.
ABANDONED = and_(
    NEEDED_CODE,
    Order.status.in_([OrderStatus.EXPIRED, OrderStatus.CANCELLED]),
    Order.step_up_verified_at.is_(None),
)
# The bars of the daily chart: every outcome, then orders recorded before decisions existed.
UNDECIDED = "none"
CHART_OUTCOMES = (*(outcome.value for outcome in Outcome), UNDECIDED)


@dataclass(frozen=True)
class Rate:
    """`part` out of `whole`; `value` is None when there is nothing to divide by."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class StepUpFigures:
    """Counts over the orders, and the order codes, created at or after `since`."""

    since: datetime
    orders: int
    decided: int  # orders with a risk decision
    challenged: int  # orders that needed a code
    abandoned: int  # of those, expired or cancelled without being confirmed
    held: int  # orders now waiting for the owner's review
    blocked: int
    codes_sent: int  # order codes
    codes_verified: int

    @property
    def challenge_rate(self) -> Rate:
        return Rate(self.challenged, self.decided)

    @property
    def code_conversion(self) -> Rate:
        return Rate(self.codes_verified, self.codes_sent)

    @property
    def abandonment(self) -> Rate:
        return Rate(self.abandoned, self.challenged)


def step_up_figures(since: datetime) -> StepUpFigures:
    """The figures for orders and order codes created at or after `since`, in two queries."""
    orders, decided, challenged, abandoned, held, blocked = db.session.execute(
        select(
            func.count(Order.id),
            *(
                func.count(case((condition, 1)))
                for condition in (
                    Order.risk_outcome.is_not(None),
                    NEEDED_CODE,
                    ABANDONED,
                    Order.status == OrderStatus.HELD,
                    Order.status == OrderStatus.BLOCKED,
                )
            ),
        ).where(Order.created_at >= since)
    ).one()
    codes_sent, codes_verified = db.session.execute(
        select(
            func.count(OtpChallenge.id),
            func.count(OtpChallenge.consumed_at),
        ).where(OtpChallenge.purpose == OtpPurpose.ORDER, OtpChallenge.created_at >= since)
    ).one()
    return StepUpFigures(
        since, orders, decided, challenged, abandoned, held, blocked, codes_sent, codes_verified
    )


@dataclass
class DayFigures:
    """One UTC day's orders and their value, by risk outcome."""

    day: date
    orders: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHART_OUTCOMES, 0))
    value_minor: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHART_OUTCOMES, 0))

    @property
    def total_orders(self) -> int:
        return sum(self.orders.values())

    @property
    def total_value_minor(self) -> int:
        return sum(self.value_minor.values())


def orders_per_day(now: datetime, days: int = 14) -> list[DayFigures]:
    """Today (UTC) and the `days - 1` days before it, oldest first."""
    now = now.astimezone(UTC)
    first = now.date() - timedelta(days=days - 1)
    figures = {
        first + timedelta(days=offset): DayFigures(first + timedelta(days=offset))
        for offset in range(days)
    }
    since = datetime.combine(first, time.min, tzinfo=UTC)
    # Grouped here rather than in SQL: a UTC calendar day is spelled differently on every
    # database, and two weeks of three narrow columns is little to carry.
    rows = db.session.execute(
        select(Order.created_at, Order.risk_outcome, Order.total_minor).where(
            Order.created_at >= since, Order.created_at <= now
        )
    )
    for created_at, outcome, total_minor in rows:
        day = figures.get(created_at.date())
        if day is None:
            continue
        key = outcome if outcome in day.orders else UNDECIDED
        day.orders[key] += 1
        day.value_minor[key] += total_minor
    return list(figures.values())
