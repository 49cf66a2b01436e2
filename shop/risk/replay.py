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
from shop.risk.engine import PASSKEY, RULE_NAMES, SEVERITY, Outcome, RiskInputs
from shop.risk.rules import RiskRules

DAY = 86_400
HOUR = 3_600
# Severity numbers in SQL, outcomes back in Python.
OUTCOMES = {severity: outcome for outcome, severity in SEVERITY.items()}
# One bit per rule in the "fired" masks, in the engine's order.
BITS = {code: 1 << index for index, code in enumerate(RULE_NAMES)}

D = DecisionInputs
# What a decision asks of the shopper (`RuleExpressions.friction`); index 0 is nothing of it.
FRICTION = (None, "passkey", "code", "held_for_passkey")


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
    "has_passkey",
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
            "has_passkey": D.has_passkey == true(),
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

    def hold_threshold_otp(self) -> ColumnElement[bool]:
        """The hold threshold when the owner lets a passkey confirm instead of a review."""
        return self.hold_threshold() if self.rules.hold_threshold_action == PASSKEY else false()

    def hold_threshold_hold(self) -> ColumnElement[bool]:
        return self.hold_threshold() if self.rules.hold_threshold_action != PASSKEY else false()

    def code_rules(self) -> list[tuple[str, ColumnElement[bool], str]]:
        """The rules that ask for a step-up: (code, when it fires, what may answer it)."""
        rules = self.rules
        return [
            ("hold_threshold", self.hold_threshold_otp(), PASSKEY),
            ("otp_threshold", self.otp_threshold(), rules.otp_threshold_factor),
            ("new_account", self.new_account(), rules.new_account_factor),
            (
                "new_device_or_address",
                self.new_device_or_address(),
                rules.new_device_or_address_factor,
            ),
            ("velocity", self.velocity(), rules.velocity_factor),
            ("phone_changed", self.phone_changed_otp(), rules.phone_changed_factor),
        ]

    def wants_code(self) -> ColumnElement[bool]:
        """Some rule asks for a step-up (before the low-value exemption)."""
        return or_(*(fires for _, fires, _ in self.code_rules()))

    def low_value_exemption(self) -> ColumnElement[bool]:
        return and_(self._is("small_since_code"), self.wants_code())

    def _kept(self, fires: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(fires, not_(self.low_value_exemption()))

    def needs_code(self) -> ColumnElement[bool]:
        """A step-up is asked for once the exemption has had its say and rules that want a
        passkey from an account without one have turned into holds."""
        has_passkey = self._is("has_passkey")
        return or_(
            *(
                self._kept(fires) if factor != PASSKEY else and_(self._kept(fires), has_passkey)
                for _, fires, factor in self.code_rules()
            )
        )

    def held_for_passkey(self) -> ColumnElement[bool]:
        return and_(
            not_(self._is("has_passkey")),
            or_(
                *(
                    self._kept(fires) if factor == PASSKEY else false()
                    for _, fires, factor in self.code_rules()
                )
            ),
        )

    def phone_changed_hold(self) -> ColumnElement[bool]:
        if self.rules.phone_change_action != "hold":
            return false()
        return and_(self.phone_changed(), self.needs_code())

    def held(self) -> ColumnElement[bool]:
        """Hold before the step-up lock: by amount, for want of a passkey, or a code to a
        number that just changed."""
        return or_(self.hold_threshold_hold(), self.held_for_passkey(), self.phone_changed_hold())

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

    def friction(self) -> ColumnElement[int]:
        """What the shopper is asked for (an index of FRICTION): nothing of the kind, a
        passkey (required, or offered first as the account has one), a code (app or SMS), or
        a hold because a rule asks for a passkey the account lacks."""
        return case(
            (self.block_threshold(), 0),
            (self.held_for_passkey(), FRICTION.index("held_for_passkey")),
            (or_(self.held(), self.step_up_locked()), 0),
            (
                self.needs_code(),
                case(
                    (self._is("has_passkey"), FRICTION.index("passkey")),
                    else_=FRICTION.index("code"),
                ),
            ),
            else_=0,
        )

    def fired(self) -> dict[str, ColumnElement[bool]]:
        """Each reason code of the engine: when it is among the decision's reasons."""
        fired = {code: self._kept(fires) for code, fires, _ in self.code_rules()}
        return {
            "block_threshold": self.block_threshold(),
            "hold_threshold": or_(self.hold_threshold_hold(), fired["hold_threshold"]),
            "otp_threshold": fired["otp_threshold"],
            "new_account": fired["new_account"],
            "new_device_or_address": fired["new_device_or_address"],
            "velocity": fired["velocity"],
            "phone_changed": or_(fired["phone_changed"], self.phone_changed_hold()),
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
