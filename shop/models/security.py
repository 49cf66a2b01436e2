"""One-time-password challenges, their failures, "not me" links and the audit trail."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time


class OtpPurpose(StrEnum):
    LOGIN = "login"
    PHONE = "phone"
    ORDER = "order"


class OtpChallenge(db.Model):
    """One code sent by SMS. Only a keyed HMAC of the code is stored, never the code."""

    __tablename__ = "otp_challenges"
    __table_args__ = (
        Index("ix_otp_challenges_user_purpose", "user_id", "purpose"),
        Index("ix_otp_challenges_phone_created", "phone", "created_at"),
        Index("ix_otp_challenges_ip_created", "client_ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    # What the code is for: a hash of the order, amount, items and address, or of the new
    # number for a phone change. A code checked against anything else fails.
    binding: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(16))
    client_ip: Mapped[str] = mapped_column(String(45))
    code_hmac: Mapped[str] = mapped_column(String(64))
    sms_id: Mapped[int | None] = mapped_column(ForeignKey("sms_messages.id"))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once: by the one successful check, or when a resend or a change kills the code.
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))


class OtpFailure(db.Model):
    """One wrong code, counted per account over 24 h; a resend never removes these."""

    __tablename__ = "otp_failures"
    __table_args__ = (Index("ix_otp_failures_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("otp_challenges.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)


class NotMeLink(db.Model):
    """The single-use "not me" action carried, signed, by an alert SMS."""

    __tablename__ = "not_me_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(db.Model):
    """Who did what and when: sign-ins, codes, locks, phone and rule changes. No secrets."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[str] = mapped_column(Text, default="")
