"""The backtest's friction per factor: of the replayed orders, how many each rule set would
send to a passkey, to a code (authenticator app or SMS), or hold because a rule asks for a
passkey the account lacks. Counted over the same replay groups as the figures per outcome
and per rule (`shop.risk.replay`, `RuleExpressions.friction`), so it costs no extra pass."""

from dataclasses import dataclass, field

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

    def add(self, friction: tuple[str | None, str | None], orders: int, value_minor: int) -> None:
        """A replay group's orders, under the kinds each rule set asks of them."""
        for kind, figures in zip(friction, (self.current, self.proposed), strict=True):
            if kind is not None:
                figures[kind].orders += orders
                figures[kind].value_minor += value_minor
