"""The backtest as one SQL aggregate over what each decision saw (`decision_inputs`).

`engine.evaluate` decides one order in Python; replaying it over a month of orders at a
million orders a month would take half a minute and a gigabyte. Here the same rules are
spelled as SQL expressions over the narrow `decision_inputs` rows (`shop.risk.sql_rules`), one per
rule, and the database groups the orders by (outcome before, outcome after, rules fired
before, rules fired after): a few dozen groups, whatever the number of orders.

The two spellings must agree: tests/test_backtest_replay.py replays random inputs under
random rules through both, on SQLite and PostgreSQL. A new rule in the engine needs its
expression here (and its input as a column of `DecisionInputs`), or that test fails.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    cast,
    func,
    literal_column,
    select,
    tuple_,
)

from shop.extensions import db
from shop.models import DecisionInputs, Order
from shop.risk.engine import RULE_NAMES, SEVERITY, Outcome, RiskInputs
from shop.risk.rules import RiskRules
from shop.risk.sql_rules import FRICTION, RuleExpressions

D = DecisionInputs

# Severity numbers in SQL, outcomes back in Python.
OUTCOMES = {severity: outcome for outcome, severity in SEVERITY.items()}
# One bit per rule in the "fired" masks, in the engine's order.
BITS = {code: 1 << index for index, code in enumerate(RULE_NAMES)}


def record_inputs(order: Order, inputs: RiskInputs) -> DecisionInputs:
    """The narrow row of `inputs` for an order just flushed (its `created_at` is the moment
    the backtest replays the decision at, as `evaluate(inputs, rules, order.created_at)`)."""
    at = order.created_at
    changed = inputs.phone_changed_at
    return DecisionInputs(
        order_id=order.id,
        decided_at=at,
        total_minor=inputs.total_minor,
        account_age_seconds=(at - inputs.account_created_at).total_seconds(),
        previous_orders=inputs.previous_orders,
        orders_24h=inputs.orders_24h,
        amount_24h_minor=inputs.amount_24h_minor,
        device_known=inputs.device_known,
        address_known=inputs.address_known,
        phone_changed_seconds=None if changed is None else (at - changed).total_seconds(),
        orders_since_otp=inputs.orders_since_otp,
        amount_since_otp_minor=inputs.amount_since_otp_minor,
        step_up_locked=inputs.step_up_locked,
        has_passkey=inputs.has_passkey,
    )


@dataclass(frozen=True)
class ReplayGroup:
    """Orders decided alike under both rule sets: how many, and their value."""

    before: Outcome
    after: Outcome
    fired_before: tuple[str, ...]
    fired_after: tuple[str, ...]
    orders: int
    value_minor: int
    # The conditions these orders met under each rule set (RuleExpressions.condition_bits).
    bits: tuple[int, int] = (0, 0)
    # What each rule set asks of the shopper (FRICTION; None: no passkey, code or hold).
    friction: tuple[str | None, str | None] = (None, None)


def _codes(mask: int) -> tuple[str, ...]:
    return tuple(code for code, bit in BITS.items() if mask & bit)


def replay(current: RiskRules, proposed: RiskRules, since: datetime) -> list[ReplayGroup]:
    """The orders decided after `since`, grouped by how both rule sets decide them. Each row
    is tested once for each rule set's conditions and grouped by those bits (the scan);
    the rules are then combined over the few groups."""
    tested = (
        select(
            RuleExpressions(current).condition_bits().label("bits_before"),
            RuleExpressions(proposed).condition_bits().label("bits_after"),
            func.count().label("orders"),
            func.sum(D.total_minor).label("value_minor"),
        )
        .where(D.decided_at > since)
        .group_by(literal_column("bits_before"), literal_column("bits_after"))
        .subquery("tested")
    )
    before = RuleExpressions(current, tested.c.bits_before)
    after = RuleExpressions(proposed, tested.c.bits_after)
    columns = (
        before.outcome().label("outcome_before"),
        after.outcome().label("outcome_after"),
        before.fired_mask().label("mask_before"),
        after.fired_mask().label("mask_after"),
        before.friction().label("friction_before"),
        after.friction().label("friction_after"),
    )
    rows = db.session.execute(
        select(
            *columns,
            cast(tested.c.orders, BigInteger),
            cast(func.coalesce(tested.c.value_minor, 0), BigInteger),
            tested.c.bits_before,
            tested.c.bits_after,
        )
    )
    return [
        ReplayGroup(
            OUTCOMES[row[0]],
            OUTCOMES[row[1]],
            _codes(row[2]),
            _codes(row[3]),
            row[6],
            row[7],
            (row[8], row[9]),
            (FRICTION[row[4]], FRICTION[row[5]]),
        )
        for row in rows
    ]


def changed_orders(
    current: RiskRules,
    proposed: RiskRules,
    since: datetime,
    changing: dict[tuple[int, int], tuple[Outcome, Outcome]],
    limit: int,
) -> list[tuple[str, datetime, int, Outcome, Outcome]]:
    """The newest `limit` orders after `since` among those meeting one of the `changing`
    pairs of conditions (condition bits under each rule set, from `replay`'s groups, with the
    outcomes they lead to): (ref, decided at, total, outcome before, outcome after). Newest
    first on the decided_at index, stopping at `limit`."""
    if not changing:
        return []
    before, after = RuleExpressions(current), RuleExpressions(proposed)
    pair = tuple_(before.condition_bits(), after.condition_bits())
    rows = db.session.execute(
        select(
            Order.ref, D.decided_at, D.total_minor, before.condition_bits(), after.condition_bits()
        )
        .join(Order, Order.id == D.order_id)
        .where(D.decided_at > since, pair.in_(list(changing)))
        .order_by(D.decided_at.desc(), D.order_id.desc())
        .limit(limit)
    )
    return [(ref, at, total, *changing[(b, a)]) for ref, at, total, b, a in rows]
