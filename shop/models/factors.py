"""Step-up factors beyond SMS: passkeys, an authenticator app, recovery codes; and the step-up
itself, one row per thing to be proved (an order, a sign-in, a change to the account's
security), whatever factor answers it."""

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time, one_live_per_account_and_purpose


class Factor(StrEnum):
    """How a step-up was answered, strongest first (the order the code page offers them)."""

    PASSKEY = "passkey"
    TOTP = "totp"  # a code from an authenticator app
    SMS = "sms"
    RECOVERY = "recovery"  # one of the ten single-use recovery codes


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


class Passkey(db.Model):
    """A WebAuthn credential of an account: its public key and signature counter, never a
    secret. Several per account, each named by its holder."""

    __tablename__ = "passkeys"
    __table_args__ = (Index("ix_passkeys_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # base64url of the raw credential id, as browsers name it in an assertion.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The authenticator's signature counter as last seen; an assertion that does not move it
    # on (when it counts at all) comes from a clone and is refused.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(60))
    transports: Mapped[str] = mapped_column(String(200), default="")
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuthenticatorApp(db.Model):
    """An account's TOTP secret, sealed with a key from configuration. Until its first code
    is entered (`confirmed_at`) it is an enrolment in progress and answers no step-up."""

    __tablename__ = "authenticator_apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    sealed_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last 30-second step whose code was accepted: no code of it or before it is
    # accepted again (moved on by one conditional UPDATE).
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(db.Model):
    """One of an account's single-use recovery codes: only a keyed HMAC of it is kept."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hmac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StepUp(db.Model):
    """One thing to be proved by a factor: an order, a sign-in attempt, a security change.

    `binding` is what the proof is about (the same hash an SMS code of it is bound to); the
    passkey challenge is derived from it and `webauthn_nonce`, a fresh nonce per request,
    single use. Wrong app codes, recovery codes and failed passkeys count in
    `failed_attempts` (SMS codes count on their own row) and, like every wrong answer, in the
    account's 24-hour count (`otp_failures`).
    """

    __tablename__ = "step_ups"
    __table_args__ = (
        Index("ix_step_ups_user_purpose", "user_id", "purpose"),
        Index("ix_step_ups_order_id", "order_id"),
        # The owner's figures per factor count step-ups over a window of creation times.
        Index("ix_step_ups_created_at", "created_at"),
        one_live_per_account_and_purpose("uq_step_ups_one_live"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    binding: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    # The factors it may be answered with, comma-separated, strongest first.
    factors: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(default=0)
    webauthn_nonce: Mapped[str | None] = mapped_column(String(64))
    webauthn_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    factor: Mapped[str | None] = mapped_column(String(16))  # what answered it
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def factor_list(self) -> list[Factor]:
        return [Factor(name) for name in self.factors.split(",") if name]
