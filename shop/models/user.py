"""Accounts: shoppers and shop owners."""

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, delete, false, true
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class Role(StrEnum):
    SHOPPER = "shopper"
    OWNER = "owner"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('shopper', 'owner')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.SHOPPER)
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

    # The sign-in (a `UserSession`'s secret id) this object was loaded through or opened
    # with; not a column. Flask-Login keeps it in the session and the remember-me cookie.
    session_id = None

    # Flask-Login's mixin compares users by `get_id()`, the session id: an account is itself
    # (the session's identity map keeps one object per row) in whatever session it is.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def get_id(self) -> str:
        if self.session_id is None:
            raise RuntimeError("No session was opened for this user (shop.accounts.sessions).")
        return self.session_id

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def phone_verified(self) -> bool:
        return self.phone_verified_at is not None

    def end_all_sessions(self) -> None:
        """End every sign-in of the account: browsers and remember-me cookies alike (the
        caller's transaction; a browser that should stay signed in opens a new session)."""
        db.session.execute(delete(UserSession).where(UserSession.user_id == self.id))

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


class UserSession(db.Model):
    """One sign-in of one browser, checked on every request (shop.accounts.sessions).

    The cookie carries a random id; only its SHA-256 is kept, so a copy of the database
    cannot be replayed as a cookie. Signing out deletes the row, a step-up replaces it.
    """

    __tablename__ = "user_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    remember: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str] = mapped_column(String(45))
    browser: Mapped[str] = mapped_column(String(80))
