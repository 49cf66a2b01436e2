"""The rule engine: an order draft and the account's history in, a decision with reasons out.

Pure Python, no database and no Flask: the same function decides at checkout, again at
confirmation, and in the owner's backtest over past orders' recorded inputs.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shop.risk.rules import RiskRules


class Outcome(StrEnum):
    ALLOW = "allow"
    OTP = "otp"
    HOLD = "hold"
    BLOCK = "block"


SEVERITY = {Outcome.ALLOW: 0, Outcome.OTP: 1, Outcome.HOLD: 2, Outcome.BLOCK: 3}
# Every reason code `evaluate` may fire, named for the owner, in the order it checks them.
RULE_NAMES = {
    "block_threshold": "Block at or above an amount",
    "hold_threshold": "Hold for review at or above an amount",
    "otp_threshold": "Code at or above an amount",
    "new_account": "First order or new account",
    "new_device_or_address": "New device or shipping address",
    "velocity": "Many orders in 24 hours",
    "phone_changed": "Phone number changed recently",
    "low_value_exemption": "Low-value exemption (no code)",
    "step_up_locked": "SMS confirmation locked on the account",
}
ANY, PASSKEY = "any", "passkey"
NO_PASSKEY = " It needs a passkey and your account has none, so the shop checks it first."


@dataclass(frozen=True)
class Reason:
    code: str
    outcome: Outcome
    text: str  # plain words, safe to show the shopper
    # What may answer its step-up: "any" factor, or a "passkey" only. A passkey-only reason
    # held for want of a passkey keeps "passkey" with the outcome "hold".
    factor: str = ANY


@dataclass(frozen=True)
class RiskInputs:
    """Everything the rules look at, recorded on the order so the backtest can replay it."""

    total_minor: int
    account_created_at: datetime
    previous_orders: int  # placed before this one, ever
    orders_24h: int  # placed in the 24 h before this one
    amount_24h_minor: int
    device_known: bool
    address_known: bool
    phone_changed_at: datetime | None
    orders_since_otp: int  # placed since the last order confirmed by a code
    amount_since_otp_minor: int
    step_up_locked: bool = False
    has_passkey: bool = False  # recorded from now on; orders before it replay as without

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("account_created_at", "phone_changed_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RiskInputs":
        values = dict(data)
        for key in ("account_created_at", "phone_changed_at"):
            values[key] = datetime.fromisoformat(values[key]) if values.get(key) else None
        return cls(**values)


@dataclass(frozen=True)
class RiskDecision:
    outcome: Outcome
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]

    @property
    def passkey_only(self) -> bool:
        """Its step-up may be answered by a passkey alone."""
        return self.outcome == Outcome.OTP and any(
            reason.outcome == Outcome.OTP and reason.factor == PASSKEY for reason in self.reasons
        )

    @property
    def held_for_passkey(self) -> bool:
        """Held because a rule asks for a passkey and the account has none."""
        return self.outcome == Outcome.HOLD and any(
            reason.outcome == Outcome.HOLD and reason.factor == PASSKEY for reason in self.reasons
        )

    def shopper_message(self) -> str:
        """The reasons for the outcome itself, in plain words."""
        texts = [reason.text for reason in self.reasons if reason.outcome == self.outcome]
        return " ".join(texts)


def _at_least(total: int, threshold: int | None) -> bool:
    return threshold is not None and total >= threshold


def _new_account_text(first: bool, young: bool, days: int) -> str:
    """Only what is true of this shopper: a returning one is never told "first order"."""
    if first and young:
        return f"This is your first order, on an account opened in the last {days} days."
    if first:
        return "This is your first order."
    return f"Your account was opened in the last {days} days."


def evaluate(inputs: RiskInputs, rules: RiskRules, now: datetime) -> RiskDecision:
    """Apply every rule; the most severe outcome wins and every rule that fired is kept."""
    total = inputs.total_minor
    fired: list[Reason] = []

    def fire(code: str, outcome: Outcome, text: str, factor: str = ANY) -> None:
        fired.append(Reason(code, outcome, text, factor))

    if _at_least(total, rules.block_threshold_minor):
        fire("block_threshold", Outcome.BLOCK, "Orders of this size cannot be placed online.")
    if _at_least(total, rules.hold_threshold_minor):
        if rules.hold_threshold_action == PASSKEY:
            fire(
                "hold_threshold", Outcome.OTP, "Large orders are confirmed with a passkey.", PASSKEY
            )
        else:
            fire("hold_threshold", Outcome.HOLD, "Large orders are reviewed by the shop first.")
    if _at_least(total, rules.otp_threshold_minor):
        fire(
            "otp_threshold",
            Outcome.OTP,
            "This order is above the amount we ask you to confirm.",
            rules.otp_threshold_factor,
        )
    first = inputs.previous_orders == 0
    young = now - inputs.account_created_at < timedelta(days=rules.new_account_days)
    if (first or young) and _at_least(total, rules.new_account_threshold_minor):
        fire(
            "new_account",
            Outcome.OTP,
            _new_account_text(first, young, rules.new_account_days),
            rules.new_account_factor,
        )
    if (not inputs.device_known or not inputs.address_known) and _at_least(
        total, rules.new_device_or_address_threshold_minor
    ):
        if not inputs.device_known and not inputs.address_known:
            text = "This device and this shipping address are new to your account."
        elif not inputs.device_known:
            text = "This device is new to your account."
        else:
            text = "This shipping address is new to your account."
        fire("new_device_or_address", Outcome.OTP, text, rules.new_device_or_address_factor)
    if rules.velocity_enabled and (
        inputs.orders_24h > rules.velocity_max_orders
        or inputs.amount_24h_minor > rules.velocity_max_amount_minor
    ):
        fire(
            "velocity",
            Outcome.OTP,
            "Your account placed several orders in the last 24 hours.",
            rules.velocity_factor,
        )
    phone_changed = inputs.phone_changed_at is not None and now - inputs.phone_changed_at < (
        timedelta(hours=rules.phone_change_hours)
    )
    if phone_changed and rules.phone_change_action == "otp":
        fire(
            "phone_changed",
            Outcome.OTP,
            "Your phone number changed recently.",
            rules.phone_changed_factor,
        )

    if rules.exemption_enabled and total < rules.exemption_under_minor:
        within = (
            inputs.orders_since_otp < rules.exemption_max_orders
            and inputs.amount_since_otp_minor < rules.exemption_max_amount_minor
        )
        if within and any(reason.outcome == Outcome.OTP for reason in fired):
            fired = [reason for reason in fired if reason.outcome != Outcome.OTP]
            fired.append(Reason("low_value_exemption", Outcome.ALLOW, "Small orders need no code."))

    # A rule that asks for a passkey, on an account without one: the shop checks it instead.
    if not inputs.has_passkey:
        fired = [
            Reason(reason.code, Outcome.HOLD, reason.text + NO_PASSKEY, PASSKEY)
            if reason.outcome == Outcome.OTP and reason.factor == PASSKEY
            else reason
            for reason in fired
        ]

    # A code to a number that just changed proves little: an order that needs one is held
    # instead. An order that needs no code goes through.
    if (
        phone_changed
        and rules.phone_change_action == "hold"
        and any(reason.outcome == Outcome.OTP for reason in fired)
    ):
        fire(
            "phone_changed",
            Outcome.HOLD,
            "Your phone number changed recently, so the shop checks this order first.",
        )

    outcome = max((reason.outcome for reason in fired), key=SEVERITY.get, default=Outcome.ALLOW)
    if outcome == Outcome.OTP and inputs.step_up_locked:
        fire("step_up_locked", Outcome.HOLD, "SMS confirmation is locked on your account today.")
        outcome = Outcome.HOLD
    return RiskDecision(outcome, tuple(fired))
