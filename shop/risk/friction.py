"""The backtest's friction per factor: of the replayed orders, how many each rule set would
send to a passkey, to a code (authenticator app or SMS), or hold because a rule asks for a
passkey the account lacks. A pass of its own over the same window as `backtest`, so that the
figures per outcome and per rule stay as they are."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from shop.extensions import db
from shop.models import Order
from shop.risk.engine import Outcome, RiskDecision, RiskInputs, evaluate
from shop.risk.rules import RiskRules

FRICTION_KINDS = {
    "passkey": "Confirm with a passkey",
    "code": "Confirm with a code (authenticator app or SMS)",
    "held_for_passkey": "Held: a passkey is asked for and the account has none",
}


@dataclass
class FrictionFigures:
    orders: int = 0
    value_minor: int = 0


def _kinds() -> dict[str, FrictionFigures]:
    return {kind: FrictionFigures() for kind in FRICTION_KINDS}


@dataclass
class FrictionReport:
    current: dict[str, FrictionFigures] = field(default_factory=_kinds)
    proposed: dict[str, FrictionFigures] = field(default_factory=_kinds)


def friction_kind(decision: RiskDecision, inputs: RiskInputs) -> str | None:
    """What the shopper would be asked for: a passkey (required, or offered first because
    the account has one), a code, or nothing of the kind (None)."""
    if decision.held_for_passkey:
        return "held_for_passkey"
    if decision.outcome != Outcome.OTP:
        return None
    return "passkey" if decision.passkey_only or inputs.has_passkey else "code"


def factor_friction(
    proposed: RiskRules, current: RiskRules, *, now: datetime, days: int = 30
) -> FrictionReport:
    report = FrictionReport()
    rows = db.session.execute(
        select(Order.risk_inputs, Order.created_at).where(
            Order.created_at > now - timedelta(days=days), Order.risk_inputs.is_not(None)
        )
    )
    for raw, created_at in rows:
        inputs = RiskInputs.from_json(json.loads(raw))
        for rules, figures in ((current, report.current), (proposed, report.proposed)):
            kind = friction_kind(evaluate(inputs, rules, created_at), inputs)
            if kind is not None:
                figures[kind].orders += 1
                figures[kind].value_minor += inputs.total_minor
    return report
