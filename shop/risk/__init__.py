"""Risk decisions at checkout: the owner's rules, the account's history, and the backtest.

`engine.evaluate` is pure; this module feeds it from the database: the current rule set,
the inputs for one order draft, and past orders' recorded inputs for the backtest.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from shop import audit
from shop.extensions import db
from shop.models import Order, OrderStatus, RiskRuleSet, User
from shop.risk import replay
from shop.risk.engine import RULE_NAMES, Outcome, RiskDecision, RiskInputs, evaluate
from shop.risk.friction import FrictionReport
from shop.risk.rules import RiskRules

__all__ = [
    "RULE_NAMES",
    "Outcome",
    "RiskDecision",
    "RiskInputs",
    "RiskRules",
    "address_key",
    "backtest",
    "current_rules",
    "evaluate",
    "gather_inputs",
    "save_rules",
]

# Orders that count as placed for history: confirmed, or waiting for the owner.
COUNTED = (OrderStatus.PLACED, OrderStatus.HELD)


def current_rules() -> RiskRules:
    row = db.session.scalar(select(RiskRuleSet).order_by(RiskRuleSet.id.desc()).limit(1))
    return RiskRules.from_dict(json.loads(row.rules)) if row else RiskRules()


def save_rules(rules: RiskRules, *, actor: User, ip: str | None) -> dict:
    """Store `rules` as the new current set and audit every change; return the changes."""
    changes = rules.changes_from(current_rules())
    if changes:
        db.session.add(RiskRuleSet(rules=json.dumps(rules.as_dict()), created_by_id=actor.id))
        audit.record(
            audit.Event.RULES_CHANGED,
            actor_id=actor.id,
            ip=ip,
            changes={key: {"old": old, "new": new} for key, (old, new) in changes.items()},
        )
    return changes


def address_key(address_line1: str, city: str, postal_code: str, country: str) -> str:
    """The same address however it is typed: case and spacing do not matter."""
    parts = (address_line1, city, postal_code.replace(" ", ""), country)
    normalised = "|".join(" ".join(part.lower().split()) for part in parts)
    return hashlib.sha256(normalised.encode()).hexdigest()


def gather_inputs(
    user: User,
    *,
    total_minor: int,
    device_id: str | None,
    address: str,
    now: datetime,
    step_up_locked: bool,
    has_passkey: bool = False,
    exclude_order_id: int | None = None,
) -> RiskInputs:
    """What the rules need to know about this order and the account's past ones."""
    counted = select(Order).where(Order.user_id == user.id, Order.status.in_(COUNTED))
    if exclude_order_id is not None:
        counted = counted.where(Order.id != exclude_order_id)
    past = counted.subquery()

    def count_and_sum(*conditions) -> tuple[int, int]:
        row = db.session.execute(
            select(func.count(past.c.id), func.coalesce(func.sum(past.c.total_minor), 0)).where(
                *conditions
            )
        ).one()
        return int(row[0]), int(row[1])

    previous, _ = count_and_sum()
    orders_24h, amount_24h = count_and_sum(past.c.created_at > now - timedelta(hours=24))
    last_otp = db.session.scalar(
        select(func.max(Order.step_up_verified_at)).where(Order.user_id == user.id)
    )
    since_otp = (past.c.created_at > last_otp,) if last_otp else ()
    orders_since_otp, amount_since_otp = count_and_sum(*since_otp)
    device_known = bool(device_id) and count_and_sum(past.c.device_id == device_id)[0] > 0
    address_known = count_and_sum(past.c.address_key == address)[0] > 0
    return RiskInputs(
        total_minor=total_minor,
        account_created_at=user.created_at,
        previous_orders=previous,
        orders_24h=orders_24h,
        amount_24h_minor=amount_24h,
        device_known=device_known,
        address_known=address_known,
        phone_changed_at=user.phone_changed_at,
        orders_since_otp=orders_since_otp,
        amount_since_otp_minor=amount_since_otp,
        step_up_locked=step_up_locked,
        has_passkey=has_passkey,
    )


@dataclass
class OutcomeFigures:
    orders: int = 0
    value_minor: int = 0


@dataclass
class RuleFigures:
    """One rule over the replayed orders: how often it fired, on how much value, and how
    many of those orders the rules held for review."""

    fired: int = 0
    value_minor: int = 0
    held: int = 0


@dataclass(frozen=True)
class ChangedOrder:
    """A past order that the proposed rules would decide otherwise."""

    ref: str
    created_at: datetime
    total_minor: int
    before: str
    after: str


# The changed orders listed by name; the count covers them all.
CHANGED_LISTED = 200


def _rule_figures() -> dict[str, RuleFigures]:
    return {code: RuleFigures() for code in RULE_NAMES}


@dataclass
class BacktestReport:
    since: datetime
    orders: int = 0
    changed: int = 0
    current: dict[str, OutcomeFigures] = field(
        default_factory=lambda: {outcome.value: OutcomeFigures() for outcome in Outcome}
    )
    proposed: dict[str, OutcomeFigures] = field(
        default_factory=lambda: {outcome.value: OutcomeFigures() for outcome in Outcome}
    )
    current_rules: dict[str, RuleFigures] = field(default_factory=_rule_figures)
    proposed_rules: dict[str, RuleFigures] = field(default_factory=_rule_figures)
    changed_orders: list[ChangedOrder] = field(default_factory=list)  # newest first
    friction: FrictionReport = field(default_factory=FrictionReport)  # per factor


def _count(
    figures: dict[str, RuleFigures],
    codes: tuple[str, ...],
    outcome: Outcome,
    orders: int,
    value: int,
) -> None:
    for code in codes:
        rule = figures.setdefault(code, RuleFigures())
        rule.fired += orders
        rule.value_minor += value
        rule.held += orders if outcome == Outcome.HOLD else 0


def backtest(proposed: RiskRules, current: RiskRules, *, now: datetime, days: int = 30):
    """Replay what the rules saw at each decision of the last `days` days under both rule
    sets: figures per outcome and per rule, and the orders whose outcome would change.
    Aggregated by the database (`shop.risk.replay`), so a month of a million orders is one
    scan of a narrow table and a few dozen rows back."""
    since = now - timedelta(days=days)
    report = BacktestReport(since=since)
    changing = {}
    for group in replay.replay(current, proposed, since):
        orders, value = group.orders, group.value_minor
        for figures in (report.current[group.before], report.proposed[group.after]):
            figures.orders += orders
            figures.value_minor += value
        _count(report.current_rules, group.fired_before, group.before, orders, value)
        _count(report.proposed_rules, group.fired_after, group.after, orders, value)
        report.friction.add(group.friction, orders, value)
        report.orders += orders
        if group.before != group.after:
            report.changed += orders
            changing[group.seen] = (group.before, group.after)
    report.changed_orders = [
        ChangedOrder(ref, at, total, before, after)
        for ref, at, total, before, after in replay.changed_orders(
            current, proposed, since, changing, CHANGED_LISTED
        )
    ]
    return report
