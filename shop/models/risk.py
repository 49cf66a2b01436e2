"""Versions of the owner's risk rules: each save is a new row, so history is never lost."""

from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class RiskRuleSet(db.Model):
    __tablename__ = "risk_rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[str] = mapped_column(Text)  # JSON of shop.risk.rules.RiskRules
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
