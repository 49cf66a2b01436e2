"""The SMS outbox, and the demo phone's inbox for the console backend."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time, literal_in


class SmsStatus(StrEnum):
    QUEUED = "queued"  # waiting for its first or next attempt
    SENDING = "sending"  # claimed by a delivery process
    SENT = "sent"  # handed to the provider, which accepted it
    DELIVERED = "delivered"  # delivery receipt: on the phone
    FAILED = "failed"  # given up after retries, refused by the provider, or receipt "failed"
    EXPIRED = "expired"  # delivery receipt: the network gave up
    REJECTED = "rejected"  # delivery receipt: the network refused it
    DROPPED = "dropped"  # a code that expired before it could be sent: never sent late


class SmsKind(StrEnum):
    OTP_LOGIN = "otp_login"
    OTP_PHONE = "otp_phone"
    OTP_ORDER = "otp_order"
    OTP_PASSWORD = "otp_password"
    OTP_RESET = "otp_reset"
    OTP_SECURITY = "otp_security"
    ALERT_NEW_DEVICE = "alert_new_device"
    ALERT_ORDER_PLACED = "alert_order_placed"
    ALERT_CODE_LOCKED = "alert_code_locked"
    ALERT_PHONE_CHANGED = "alert_phone_changed"
    ALERT_STEP_UP_UNLOCKED = "alert_step_up_unlocked"
    ORDER_APPROVED = "order_approved"
    ORDER_CODE_REQUESTED = "order_code_requested"
    ORDER_CANCELLED = "order_cancelled"
    OWNER_ORDER_HELD = "owner_order_held"
    OWNER_SMS_ABUSE = "owner_sms_abuse"
    ALERT_REGISTRATION_TRIED = "alert_registration_tried"
    ALERT_PASSWORD_CHANGED = "alert_password_changed"
    ALERT_FACTOR_ADDED = "alert_factor_added"
    ALERT_FACTOR_REMOVED = "alert_factor_removed"
    ALERT_RECOVERY_CODE_USED = "alert_recovery_code_used"


_STATUSES = ", ".join(f"'{status}'" for status in SmsStatus)
# Still to be sent, or being sent: the delivery workers' queue, a handful of rows however
# long the history. The partial indexes below hold only such rows, so a worker's every
# round costs the same at 2 million messages as at 200.
OUTBOX = (SmsStatus.QUEUED.value, SmsStatus.SENDING.value)


class SmsMessage(db.Model):
    """One SMS, written in the same transaction as the event that causes it."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        # The claim: due messages in the order they fell due (shop.sms.claims).
        Index(
            "ix_sms_messages_outbox",
            "next_attempt_at",
            "id",
            sqlite_where=db.column("status").in_(OUTBOX),
            postgresql_where=db.column("status").in_(OUTBOX),
        ),
        # The sweep: queued codes whose code has expired.
        Index(
            "ix_sms_messages_queued_expiry",
            "expires_at",
            sqlite_where=db.column("status") == SmsStatus.QUEUED.value,
            postgresql_where=db.column("status") == SmsStatus.QUEUED.value,
        ),
        # Provider spend per hour and per day is summed over a window of send times.
        Index("ix_sms_messages_sent_at", "sent_at"),
        # The SMS console filtered by status, newest first, a keyset page at a time.
        Index("ix_sms_messages_status_created_at", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The order the message is about (its code, its alerts): its timeline follows the message.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    to_number: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    # The body with any code masked; it replaces `body` once the code is no longer needed.
    redacted_body: Mapped[str | None] = mapped_column(Text)
    # For a code: when it stops working; the message must not be sent after that.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=SmsStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_price: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(500))
    receipt_status: Mapped[str | None] = mapped_column(String(16))
    receipt_error_code: Mapped[str | None] = mapped_column(String(8))
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=current_time, onupdate=current_time
    )

    @property
    def is_code(self) -> bool:
        return is_code_kind(self.kind)


def is_code_kind(kind: str) -> bool:
    """Whether a message of this kind carries a one-time code."""
    return kind.startswith("otp_")


def in_outbox() -> ColumnElement[bool]:
    """Queued or being sent, spelled as `ix_sms_messages_outbox` is."""
    return literal_in(SmsMessage.status, OUTBOX)


def queued() -> ColumnElement[bool]:
    """Queued, spelled as `ix_sms_messages_queued_expiry` is."""
    return literal_in(SmsMessage.status, [SmsStatus.QUEUED])


class ConsoleMessage(db.Model):
    """What the console backend "sent": the demo phone at /dev/phone shows these."""

    __tablename__ = "console_messages"
    __table_args__ = (
        # The sweep: copies whose code is still readable (a handful at any time).
        Index(
            "ix_console_messages_readable",
            "expires_at",
            sqlite_where=db.column("body") != db.column("redacted_body"),
            postgresql_where=db.column("body") != db.column("redacted_body"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sms_id: Mapped[int] = mapped_column(ForeignKey("sms_messages.id"), unique=True)
    to_number: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    redacted_body: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)


class InboundMessage(db.Model):
    """A signed inbound SMS already acted on, by the provider's message id: a replayed
    webhook (STOP again after a START) is recognised and ignored."""

    __tablename__ = "inbound_messages"

    provider_message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
