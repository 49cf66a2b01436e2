"""One-time-password challenges, their failures, send locks and refusals, "not me" links,
API tokens and the audit trail."""

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time, one_live_per_account_and_purpose


class OtpPurpose(StrEnum):
    LOGIN = "login"
    PHONE = "phone"
    ORDER = "order"
    PASSWORD = "password"  # a signed-in change of password
    RESET = "reset"  # a forgotten password, reset with a code to the confirmed number
    SECURITY = "security"  # proving it is you before adding or removing a factor


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


class OtpChallenge(db.Model):
    """One code sent by SMS. Only a keyed HMAC of the code is stored, never the code."""

    __tablename__ = "otp_challenges"
    __table_args__ = (
        Index("ix_otp_challenges_user_purpose", "user_id", "purpose"),
        Index("ix_otp_challenges_phone_created", "phone", "created_at"),
        Index("ix_otp_challenges_ip_created", "client_ip", "created_at"),
        Index("ix_otp_challenges_order_id", "order_id"),
        # Pruning old SMS lets go of them here, and deleting a message checks this column.
        Index("ix_otp_challenges_sms_id", "sms_id"),
        # The SMS console counts sends per hour and day, by country.
        Index("ix_otp_challenges_created_at", "created_at"),
        # One live code per account and purpose, whatever races the application loses.
        one_live_per_account_and_purpose("uq_otp_challenges_one_live"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The name of the challenge outside the database (API, pages): random, not a count.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    # What the code is for: a hash of the order, amount, items and address, or of the new
    # number for a phone change. A code checked against anything else fails.
    binding: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(16))
    # ISO country of `phone`, for the owner's figures per destination country.
    country: Mapped[str | None] = mapped_column(String(2))
    client_ip: Mapped[str] = mapped_column(String(45))
    code_hmac: Mapped[str] = mapped_column(String(64))
    sms_id: Mapped[int | None] = mapped_column(ForeignKey("sms_messages.id"))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    # When its SMS may go out: at once, or when the number's cool-down ends (SPEC section 5).
    send_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once: by the one successful check, or when a resend or a change kills the code.
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))


class OtpFailure(db.Model):
    """One wrong answer to a step-up, counted per account over 24 h whatever the factor (an
    SMS code, an app code, a recovery code, a passkey); a resend never removes these."""

    __tablename__ = "otp_failures"
    __table_args__ = (Index("ix_otp_failures_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The SMS code it was a wrong try of; another factor's failure has none.
    challenge_id: Mapped[int | None] = mapped_column(
        ForeignKey("otp_challenges.id", ondelete="CASCADE")
    )
    factor: Mapped[str] = mapped_column(String(16), default="sms", server_default="sms")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)


class SendLock(db.Model):
    """A named lock (`shop.locks`): one row per account, phone number and client address.

    Upserting a row locks it until the transaction ends: the send limits, an account's
    lockout and its velocity are then counted and written with no other request for the
    same name in between (SQLite: the upsert takes the write lock).
    """

    __tablename__ = "send_locks"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)


class SendRefusal(db.Model):
    """A code that was not sent, and why: the trace of SMS pumping. Never holds a code."""

    __tablename__ = "sms_refusals"
    __table_args__ = (Index("ix_sms_refusals_at_reason", "at", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    reason: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))
    # E.164 when the number could be read, else what was typed (cut short).
    phone: Mapped[str] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2))
    client_ip: Mapped[str] = mapped_column(String(45))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ApiToken(db.Model):
    """A bearer token for an API client. Only its SHA-256 is stored; revoked, it stays.

    A token whose sign-in still waits for its code has no hash yet: it cannot be used, and
    its secret is made when the code is entered.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    client_ip: Mapped[str] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NotMeLink(db.Model):
    """The single-use "not me" action carried, signed, by an alert SMS."""

    __tablename__ = "not_me_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set only by a "phone number changed" alert: the number it was sent to, the account's
    # before the change, which "not me" puts back (`shop.accounts.lockdown`).
    restores_phone: Mapped[str | None] = mapped_column(String(16))


class AuditEvent(db.Model):
    """Who did what and when: sign-ins, codes, locks, phone and rule changes. No secrets."""

    __tablename__ = "audit_events"
    # An account's own events, newest first (the owner's account page, keyset by id).
    __table_args__ = (
        Index("ix_audit_events_user_id_id", "user_id", "id"),
        # The audit trail filtered by event, newest first (keyset pages).
        Index("ix_audit_events_event_at", "event", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[str] = mapped_column(Text, default="")
