"""The backtest as one SQL aggregate over what each decision saw (`decision_inputs`).

`engine.evaluate` decides one order in Python; replaying it over a month of orders at a
million orders a month would take half a minute and a gigabyte. Here the same rules are
spelled as SQL expressions over the narrow `decision_inputs` rows, one small function per
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
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.sql.elements import False_

from shop.extensions import db
from shop.models import DecisionInputs, Order
from shop.risk.engine import RULE_NAMES, SEVERITY, Outcome, RiskInputs
from shop.risk.rules import RiskRules

DAY = 86_400
HOUR = 3_600
# Severity numbers in SQL, outcomes back in Python.
OUTCOMES = {severity: outcome for outcome, severity in SEVERITY.items()}
# One bit per rule in the "fired" masks, in the engine's order.
BITS = {code: 1 << index for index, code in enumerate(RULE_NAMES)}

D = DecisionInputs


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
    )


def _at_least(threshold: int | None) -> ColumnElement[bool]:
    return false() if threshold is None else D.total_minor >= threshold


# The conditions each row is tested for, once; every rule is a combination of them.
CONDITIONS = (
    "block_amount",
    "hold_amount",
    "otp_amount",
    "new_account",
    "new_device_or_address",
    "velocity",
    "phone_changed",
    "small_since_code",
    "step_up_locked",
)


@dataclass(frozen=True)
class RuleExpressions:
    """Each rule of one rule set in SQL, as `engine.evaluate` applies it (same names, same
    order). First the conditions each recorded decision is tested for (`conditions()`, one
    bit each in `condition_bits()`); then the rules combined from those conditions, read
    from the bits of `bits`, a column holding `condition_bits()` of a group of rows."""

    rules: RiskRules
    bits: ColumnElement[int] | None = None

    def conditions(self) -> dict[str, ColumnElement[bool]]:
        rules = self.rules
        young = D.account_age_seconds < rules.new_account_days * DAY
        first = D.previous_orders == 0
        velocity = false()
        if rules.velocity_enabled:
            velocity = or_(
                D.orders_24h > rules.velocity_max_orders,
                D.amount_24h_minor > rules.velocity_max_amount_minor,
            )
        small = false()
        if rules.exemption_enabled:
            small = and_(
                D.total_minor < rules.exemption_under_minor,
                D.orders_since_otp < rules.exemption_max_orders,
                D.amount_since_otp_minor < rules.exemption_max_amount_minor,
            )
        return {
            "block_amount": _at_least(rules.block_threshold_minor),
            "hold_amount": _at_least(rules.hold_threshold_minor),
            "otp_amount": _at_least(rules.otp_threshold_minor),
            "new_account": and_(or_(first, young), _at_least(rules.new_account_threshold_minor)),
            "new_device_or_address": and_(
                or_(not_(D.device_known), not_(D.address_known)),
                _at_least(rules.new_device_or_address_threshold_minor),
            ),
            "velocity": velocity,
            "phone_changed": and_(
                D.phone_changed_seconds.is_not(None),
                D.phone_changed_seconds < rules.phone_change_hours * HOUR,
            ),
            "small_since_code": small,
            "step_up_locked": D.step_up_locked == true(),
        }

    def condition_bits(self) -> ColumnElement[int]:
        return _sum_of_bits(self.conditions(), CONDITIONS)

    def _is(self, name: str) -> ColumnElement[bool]:
        if self.bits is None:
            return self.conditions()[name]
        return self.bits.op("&")(1 << CONDITIONS.index(name)) != 0

    def block_threshold(self) -> ColumnElement[bool]:
        return self._is("block_amount")

    def hold_threshold(self) -> ColumnElement[bool]:
        return self._is("hold_amount")

    def otp_threshold(self) -> ColumnElement[bool]:
        return self._is("otp_amount")

    def new_account(self) -> ColumnElement[bool]:
        return self._is("new_account")

    def new_device_or_address(self) -> ColumnElement[bool]:
        return self._is("new_device_or_address")

    def velocity(self) -> ColumnElement[bool]:
        return self._is("velocity")

    def phone_changed(self) -> ColumnElement[bool]:
        return self._is("phone_changed")

    def phone_changed_otp(self) -> ColumnElement[bool]:
        return self.phone_changed() if self.rules.phone_change_action == "otp" else false()

    def wants_code(self) -> ColumnElement[bool]:
        """Some rule asks for a code (before the low-value exemption)."""
        return or_(
            self.otp_threshold(),
            self.new_account(),
            self.new_device_or_address(),
            self.velocity(),
            self.phone_changed_otp(),
        )

    def low_value_exemption(self) -> ColumnElement[bool]:
        return and_(self._is("small_since_code"), self.wants_code())

    def needs_code(self) -> ColumnElement[bool]:
        """A code is asked for once the exemption has had its say."""
        return and_(self.wants_code(), not_(self.low_value_exemption()))

    def phone_changed_hold(self) -> ColumnElement[bool]:
        if self.rules.phone_change_action != "hold":
            return false()
        return and_(self.phone_changed(), self.needs_code())

    def held(self) -> ColumnElement[bool]:
        """Hold before the step-up lock: by amount, or a code to a number that just changed."""
        return or_(self.hold_threshold(), self.phone_changed_hold())

    def step_up_locked(self) -> ColumnElement[bool]:
        return and_(
            not_(self.block_threshold()),
            not_(self.held()),
            self.needs_code(),
            self._is("step_up_locked"),
        )

    def outcome(self) -> ColumnElement[int]:
        """The decision's severity (engine.SEVERITY)."""
        return case(
            (self.block_threshold(), SEVERITY[Outcome.BLOCK]),
            (or_(self.held(), self.step_up_locked()), SEVERITY[Outcome.HOLD]),
            (self.needs_code(), SEVERITY[Outcome.OTP]),
            else_=SEVERITY[Outcome.ALLOW],
        )

    def fired(self) -> dict[str, ColumnElement[bool]]:
        """Each reason code of the engine: when it is among the decision's reasons."""
        kept = not_(self.low_value_exemption())
        return {
            "block_threshold": self.block_threshold(),
            "hold_threshold": self.hold_threshold(),
            "otp_threshold": and_(self.otp_threshold(), kept),
            "new_account": and_(self.new_account(), kept),
            "new_device_or_address": and_(self.new_device_or_address(), kept),
            "velocity": and_(self.velocity(), kept),
            "phone_changed": or_(and_(self.phone_changed_otp(), kept), self.phone_changed_hold()),
            "low_value_exemption": self.low_value_exemption(),
            "step_up_locked": self.step_up_locked(),
        }

    def fired_mask(self) -> ColumnElement[int]:
        fired = self.fired()
        if set(fired) != set(RULE_NAMES):
            raise RuntimeError("every rule of the engine needs its SQL spelling here")
        return _sum_of_bits(fired, tuple(RULE_NAMES))


def _sum_of_bits(conditions: dict[str, ColumnElement[bool]], names: tuple[str, ...]):
    # A condition that is a constant (a rule switched off) adds nothing: left out.
    terms = [
        cast(condition, Integer) * (1 << names.index(name))
        for name, condition in conditions.items()
        if not isinstance(condition, False_)
    ] or [literal(0)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


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
            row[4],
            row[5],
            (row[6], row[7]),
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
