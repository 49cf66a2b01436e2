"""Versions of the owner's risk rules (each save is a new row, so history is never lost), and
what the rules saw at each decision."""

from datetime import datetime

from sqlalchemy import BigInteger, Double, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class RiskRuleSet(db.Model):
    __tablename__ = "risk_rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[str] = mapped_column(Text)  # JSON of shop.risk.rules.RiskRules
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DecisionInputs(db.Model):
    """What the risk rules saw when they decided an order, one narrow row per order: the
    owner's backtest replays rules over these in one SQL aggregate (`shop.risk.replay`)
    rather than reading every order's JSON into Python. Ages are seconds before the
    decision, so that the replay needs no date arithmetic (spelled differently by each
    database)."""

    __tablename__ = "decision_inputs"
    __table_args__ = (Index("ix_decision_inputs_decided_at", "decided_at", "order_id"),)

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    total_minor: Mapped[int] = mapped_column(BigInteger)
    account_age_seconds: Mapped[float] = mapped_column(Double)
    previous_orders: Mapped[int]
    orders_24h: Mapped[int]
    amount_24h_minor: Mapped[int] = mapped_column(BigInteger)
    device_known: Mapped[bool]
    address_known: Mapped[bool]
    phone_changed_seconds: Mapped[float | None] = mapped_column(Double)
    orders_since_otp: Mapped[int]
    amount_since_otp_minor: Mapped[int] = mapped_column(BigInteger)
    step_up_locked: Mapped[bool]
    has_passkey: Mapped[bool]  # a rule asking for a passkey holds an order without one
