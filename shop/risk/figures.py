"""Step-up figures for the owner's dashboard: how often a code is asked, entered and abandoned.

Read from the hourly tallies the database keeps (shop/tallies), so they cost the same at a
million orders as at ten; no request objects: the dashboard passes the window's start, taken
from `shop.clock.now()`.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, exists, func, or_, select, true

from shop import tallies
from shop.extensions import db
from shop.models import CodeTally, Order, OrderStatus, OrderTally, OtpChallenge, OtpPurpose
from shop.risk.engine import Outcome
from shop.tallies import Window

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
    """The figures for orders and order codes created at or after `since`: the window's
    tallies, corrected by the rows of its edge."""
    window = Window.starting(since)
    tallied = _tallied(window)
    return StepUpFigures(since, *window.corrected(tallied, counted(*window.edge)))


def _tallied(window: Window) -> tuple[int, ...]:
    """(orders, decided, challenged, abandoned, held, blocked, codes sent, codes verified)
    from the window's tallies."""
    orders = decided = challenged = abandoned = held = blocked = 0
    rows = tallies.window_sums(
        OrderTally, "orders", window, group_by=["status", "outcome", "needed_code", "verified"]
    )
    for status, outcome, needed_code, verified, number in rows:
        orders += number
        decided += number if outcome else 0
        challenged += number if needed_code else 0
        ended = status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED)
        abandoned += number if needed_code and ended and not verified else 0
        held += number if status == OrderStatus.HELD else 0
        blocked += number if status == OrderStatus.BLOCKED else 0
    codes = tallies.window_sums(
        CodeTally, "codes", window, group_by=["consumed"], only={"purpose": OtpPurpose.ORDER}
    )
    sent = sum(number for _, number in codes)
    verified_codes = sum(number for consumed, number in codes if consumed)
    return orders, decided, challenged, abandoned, held, blocked, sent, verified_codes


def counted(since: datetime, until: datetime | None = None) -> tuple[int, ...]:
    """The same figures counted from the orders and codes themselves, created in
    [since, until): a window's edge, and the recount the tallies must equal (tests)."""
    order_window = [Order.created_at >= since]
    code_window = [OtpChallenge.created_at >= since]
    if until is not None:
        order_window.append(Order.created_at < until)
        code_window.append(OtpChallenge.created_at < until)
    order_figures = (
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
        )
        .where(*order_window)
        .subquery("order_figures")
    )
    code_figures = (
        select(func.count(OtpChallenge.id), func.count(OtpChallenge.consumed_at))
        .where(OtpChallenge.purpose == OtpPurpose.ORDER, *code_window)
        .subquery("code_figures")
    )
    # One row of each, side by side: one statement.
    both = select(order_figures, code_figures).join_from(order_figures, code_figures, true())
    return tuple(db.session.execute(both).one())


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
    # Whole UTC days are whole hours: the tallies alone, summed by day.
    rows = tallies.summed(
        OrderTally,
        "orders",
        "value_minor",
        where=[OrderTally.hour >= tallies.hour_of(since), OrderTally.hour <= tallies.hour_of(now)],
        group_by=[tallies.day_number(OrderTally.hour), "outcome"],
    )
    for number, outcome, orders, value_minor in rows:
        day = figures.get(tallies.day_of(number))
        if day is None:
            continue
        key = outcome if outcome in day.orders else UNDECIDED
        day.orders[key] += orders
        day.value_minor[key] += value_minor
    return list(figures.values())
