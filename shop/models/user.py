"""Accounts: shoppers and shop owners."""

import secrets
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class Role(StrEnum):
    SHOPPER = "shopper"
    OWNER = "owner"


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('shopper', 'owner')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.SHOPPER)
    # Part of the Flask-Login id: replacing it ends every session and remember cookie.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    # When the number last changed: risk rules hold orders for 72 h after a change.
    phone_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optional alerts; the security ones (code locked, phone changed) cannot be turned off.
    alert_new_device: Mapped[bool] = mapped_column(default=True, server_default=true())
    alert_order_placed: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The number answered STOP: no optional alerts until it answers START.
    sms_stopped: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set by "not me": the next sign-in needs a code whatever the owner's login rule says.
    login_code_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Wrong codes before this moment no longer lock SMS step-up: an owner unlocked it.
    step_up_unlocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An owner's choice: an SMS whenever an order is held for review.
    alert_order_held: Mapped[bool] = mapped_column(default=False, server_default=false())

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def phone_verified(self) -> bool:
        return self.phone_verified_at is not None

    def end_all_sessions(self) -> None:
        self.session_token = new_session_token()

    def wants_alert(self, preference: bool) -> bool:
        """An optional alert goes out only if its preference is on and the number did not STOP."""
        return preference and not self.sms_stopped


class KnownDevice(db.Model):
    """A browser that has signed in to the account, named by a long-lived signed cookie."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    browser: Mapped[str] = mapped_column(String(80))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
