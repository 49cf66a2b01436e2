"""The backtest as one SQL aggregate over what each decision saw (`decision_inputs`).

`engine.evaluate` decides one order in Python; replaying it over a month of orders at a
million orders a month would take half a minute and a gigabyte. Here the same rules are
spelled as SQL expressions over the narrow `decision_inputs` rows (`shop.risk.sql_rules`), one per
rule, and the database groups the orders by the conditions they meet under either rule set
(one integer per row; a condition both rule sets spell alike is tested once): a few dozen
groups, whatever the number of orders, read back with each rule set's outcome and reasons.

The two spellings must agree: tests/test_backtest_replay.py replays random inputs under
random rules through both, on SQLite and PostgreSQL. A new rule in the engine needs its
expression here (and its input as a column of `DecisionInputs`), or that test fails.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    cast,
    column,
    func,
    literal_column,
    select,
    values,
)
from sqlalchemy.sql.elements import False_

from shop.extensions import db
from shop.models import DecisionInputs, Order
from shop.risk.engine import RULE_NAMES, SEVERITY, Outcome, RiskInputs
from shop.risk.rules import RiskRules
from shop.risk.sql_bits import sum_of_bits
from shop.risk.sql_rules import CONDITIONS, FRICTION, RuleExpressions

D = DecisionInputs

# Severity numbers in SQL, outcomes back in Python.
OUTCOMES = {severity: outcome for outcome, severity in SEVERITY.items()}
LITERAL = {"literal_binds": True}
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
    # The conditions these orders meet (`Tested.seen`): the key of `changed_orders`.
    seen: int = 0
    # What each rule set asks of the shopper (FRICTION; None: no passkey, code or hold).
    friction: tuple[str | None, str | None] = (None, None)


def _codes(mask: int) -> tuple[str, ...]:
    return tuple(code for code, bit in BITS.items() if mask & bit)


@dataclass(frozen=True)
class Tested:
    """The conditions two rule sets test, each distinct one once, as one integer per row
    (`seen`, a bit per distinct condition): a proposal usually moves a threshold or two, so
    most conditions are common to both sets, and the scan computes and groups by one number.
    `bits(seen, which)` gives back one rule set's own condition bits (bit
    `CONDITIONS.index(name)` per condition, as `RuleExpressions` reads them)."""

    terms: tuple[ColumnElement[bool], ...]
    positions: tuple[dict[str, int], dict[str, int]]  # condition name -> bit in `seen`

    @classmethod
    def of(cls, current: RiskRules, proposed: RiskRules) -> "Tested":
        dialect = db.session.get_bind().dialect
        spelled: dict[str, int] = {}
        terms: list[ColumnElement[bool]] = []
        positions: tuple[dict[str, int], dict[str, int]] = ({}, {})
        for rules, position in zip((current, proposed), positions, strict=True):
            for name, condition in RuleExpressions(rules).conditions().items():
                if isinstance(condition, False_):
                    continue  # a rule switched off: never met
                sql = str(condition.compile(dialect=dialect, compile_kwargs=LITERAL))
                if sql not in spelled:
                    spelled[sql] = len(terms)
                    terms.append(condition)
                position[name] = spelled[sql]
        return cls(tuple(terms), positions)

    def seen(self) -> ColumnElement[int]:
        return sum_of_bits(self.terms)

    def bits(self, seen: int, which: int) -> int:
        """Of a `seen` value, the condition bits of the current (0) or proposed (1) rules."""
        return sum(
            1 << CONDITIONS.index(name)
            for name, position in self.positions[which].items()
            if seen >> position & 1
        )


def replay(current: RiskRules, proposed: RiskRules, since: datetime) -> list[ReplayGroup]:
    """The orders decided after `since`, grouped by how both rule sets decide them. Each row
    is tested once for the conditions of both rule sets and grouped by them (the scan); the
    rules are then combined over the few groups, given back to the database as a VALUES
    list of each rule set's condition bits (an expression over a grouped column would be
    spelled out again in every rule, and planning it cost more than a small scan)."""
    tested = Tested.of(current, proposed)
    groups = db.session.execute(
        select(
            tested.seen().label("seen"),
            func.count(),
            cast(func.coalesce(func.sum(D.total_minor), 0), BigInteger),
        )
        .where(D.decided_at > since)
        .group_by(literal_column("seen"))
    ).all()
    if not groups:
        return []
    decoded = (
        values(
            column("seen", BigInteger),
            column("bits_before", Integer),
            column("bits_after", Integer),
            name="decoded",
        )
        .data([(seen, tested.bits(seen, 0), tested.bits(seen, 1)) for seen, _, _ in groups])
        .cte()
    )
    before = RuleExpressions(current, decoded.c.bits_before)
    after = RuleExpressions(proposed, decoded.c.bits_after)
    decided = db.session.execute(
        select(
            decoded.c.seen,
            before.outcome(),
            after.outcome(),
            before.fired_mask(),
            after.fired_mask(),
            before.friction(),
            after.friction(),
        )
    )
    counted = {seen: (orders, value) for seen, orders, value in groups}
    return [
        ReplayGroup(
            OUTCOMES[outcome_before],
            OUTCOMES[outcome_after],
            _codes(mask_before),
            _codes(mask_after),
            *counted[seen],
            seen,
            (FRICTION[friction_before], FRICTION[friction_after]),
        )
        for (
            seen,
            outcome_before,
            outcome_after,
            mask_before,
            mask_after,
            friction_before,
            friction_after,
        ) in decided
    ]


def changed_orders(
    current: RiskRules,
    proposed: RiskRules,
    since: datetime,
    changing: dict[int, tuple[Outcome, Outcome]],
    limit: int,
) -> list[tuple[str, datetime, int, Outcome, Outcome]]:
    """The newest `limit` orders after `since` among those meeting one of the `changing`
    sets of conditions (`ReplayGroup.seen` of `replay`'s groups, with the outcomes they lead
    to): (ref, decided at, total, outcome before, outcome after). Newest first on the
    decided_at index, stopping at `limit`."""
    if not changing:
        return []
    seen = Tested.of(current, proposed).seen()
    rows = db.session.execute(
        select(Order.ref, D.decided_at, D.total_minor, seen)
        .join(Order, Order.id == D.order_id)
        .where(D.decided_at > since, seen.in_(list(changing)))
        .order_by(D.decided_at.desc(), D.order_id.desc())
        .limit(limit)
    )
    return [(ref, at, total, *changing[key]) for ref, at, total, key in rows]
