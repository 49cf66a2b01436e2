"""Accounts: shoppers and shop owners."""

import secrets
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from shop import clock
from shop.extensions import db
from shop.models.types import UTCDateTime


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

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
