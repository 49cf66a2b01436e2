"""The risk rules spelled in SQL over `decision_inputs`, as `engine.evaluate` applies them:
each rule one small method, the conditions each recorded decision is tested for as bits.
`shop.risk.replay` groups a month of decisions by these bits; tests/test_backtest_replay.py
checks that both spellings decide alike on SQLite and PostgreSQL."""

import functools
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    false,
    not_,
    or_,
    true,
)

from shop.models import DecisionInputs
from shop.risk.engine import PASSKEY, RULE_NAMES, SEVERITY, Outcome
from shop.risk.rules import RiskRules
from shop.risk.sql_bits import sum_of_bits

DAY = 86_400
HOUR = 3_600
D = DecisionInputs
# What a decision asks of the shopper (`RuleExpressions.friction`); index 0 is nothing of it.
FRICTION = (None, "passkey", "code", "held_for_passkey")


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


def _built_once(method):
    """Rules combine one another (every outcome asks "needs a code?" several times): each
    expression is built once per `RuleExpressions` and shared, not built again each time."""

    @functools.wraps(method)
    def built(self, *args):
        memo = self.__dict__.setdefault("_built", {})
        key = (method.__name__, *args)
        if key not in memo:
            memo[key] = method(self, *args)
        return memo[key]

    return built


@dataclass(frozen=True)
class RuleExpressions:
    """Each rule of one rule set in SQL, as `engine.evaluate` applies it (same names, same
    order). First the conditions each recorded decision is tested for (`conditions()`);
    then the rules combined from those conditions, read from `bits`, a column holding a bit
    per condition (bit `CONDITIONS.index(name)`) for a group of rows."""

    rules: RiskRules
    bits: ColumnElement[int] | None = None

    @_built_once
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

    @_built_once
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

    @_built_once
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

    @_built_once
    def wants_code(self) -> ColumnElement[bool]:
        """Some rule asks for a step-up (before the low-value exemption)."""
        return or_(*(fires for _, fires, _ in self.code_rules()))

    @_built_once
    def low_value_exemption(self) -> ColumnElement[bool]:
        return and_(self._is("small_since_code"), self.wants_code())

    def _kept(self, fires: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(fires, not_(self.low_value_exemption()))

    @_built_once
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

    @_built_once
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

    @_built_once
    def phone_changed_hold(self) -> ColumnElement[bool]:
        if self.rules.phone_change_action != "hold":
            return false()
        return and_(self.phone_changed(), self.needs_code())

    @_built_once
    def held(self) -> ColumnElement[bool]:
        """Hold before the step-up lock: by amount, for want of a passkey, or a code to a
        number that just changed."""
        return or_(self.hold_threshold_hold(), self.held_for_passkey(), self.phone_changed_hold())

    @_built_once
    def step_up_locked(self) -> ColumnElement[bool]:
        return and_(
            not_(self.block_threshold()),
            not_(self.held()),
            self.needs_code(),
            self._is("step_up_locked"),
        )

    @_built_once
    def outcome(self) -> ColumnElement[int]:
        """The decision's severity (engine.SEVERITY)."""
        return case(
            (self.block_threshold(), SEVERITY[Outcome.BLOCK]),
            (or_(self.held(), self.step_up_locked()), SEVERITY[Outcome.HOLD]),
            (self.needs_code(), SEVERITY[Outcome.OTP]),
            else_=SEVERITY[Outcome.ALLOW],
        )

    @_built_once
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

    @_built_once
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
        return sum_of_bits([fired[name] for name in RULE_NAMES])
