"""The owner's shop settings (versioned, like the risk rules) and the alerts raised to owners."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class ShopSettingsVersion(db.Model):
    """The settings an owner changed from the environment's defaults; each save is a row."""

    __tablename__ = "shop_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    settings: Mapped[str] = mapped_column(Text)  # JSON: only the settings an owner has set
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class OwnerAlert(db.Model):
    """An alarm raised to the owners (by SMS and as a banner on their pages).

    `key` is the kind and the clock hour it was raised in: unique, so that two delivery
    processes that notice the same thing at once raise it once.
    """

    __tablename__ = "owner_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
    figure: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[str] = mapped_column(String(32))
