"""Orders and their lines; money is integer minor units with a currency code."""

import json
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.extensions import db
from shop.models.types import UTCDateTime, current_time, literal_in
from shop.models.user import User


class OrderStatus(StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    PLACED = "placed"
    HELD = "held"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_STATUSES = ", ".join(f"'{status}'" for status in OrderStatus)


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        # Orders waiting for their code, by when it lapses: the delivery process expires
        # them every round, and they are a handful among millions.
        Index(
            "ix_orders_pending_expiry",
            "expires_at",
            sqlite_where=db.column("status") == OrderStatus.PENDING_VERIFICATION.value,
            postgresql_where=db.column("status") == OrderStatus.PENDING_VERIFICATION.value,
        ),
        # The review queue (held orders, oldest first) and the sweep of held orders too old.
        Index("ix_orders_status_created_at", "status", "created_at"),
        # The owner's orders filtered by risk outcome, newest first.
        Index("ix_orders_risk_outcome_created_at", "risk_outcome", "created_at"),
        # An account's orders, and those of its last 24 hours (the checkout's risk inputs):
        # with the time in it, SQLite never prefers the shop-wide (status, created_at) index
        # for "this account's orders since ...", a scan of every shopper's day.
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    full_name: Mapped[str] = mapped_column(String(120))
    address_line1: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    # Hash of the items and the shipping address: a replayed key must match it.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The risk decision: its outcome, every reason that fired (JSON), and the inputs it saw
    # (JSON), kept so the owner sees why and the backtest can replay it under other rules.
    risk_outcome: Mapped[str | None] = mapped_column(String(8))
    risk_reasons: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    risk_inputs: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(64))
    # Hash of the normalised shipping address: "is this address new to the account?"
    address_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # A pending order lapses with its code; a confirmed one records when.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    step_up_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The factor that confirmed it: sms, totp, passkey or recovery.
    step_up_factor: Mapped[str | None] = mapped_column(String(16))
    # The owner's review of a held order: approved, sent back for a code, or cancelled.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=current_time, onupdate=current_time
    )

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @property
    def reasons(self) -> list[dict]:
        return reasons_of(self.risk_reasons)

    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )


def pending() -> ColumnElement[bool]:
    """Waiting for its code, spelled as `ix_orders_pending_expiry` is."""
    return literal_in(Order.status, [OrderStatus.PENDING_VERIFICATION])


def reasons_of(risk_reasons: str | None) -> list[dict]:
    """The reasons a decision stored (`Order.risk_reasons`, JSON), as a list."""
    return json.loads(risk_reasons or "[]")


class OrderItem(db.Model):
    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("quantity BETWEEN 1 AND 99", name="quantity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    # Name and price as sold, so later catalog edits never rewrite history.
    product_name: Mapped[str] = mapped_column(String(120))
    unit_price_minor: Mapped[int]
    quantity: Mapped[int]
    order: Mapped[Order] = relationship(back_populates="items")

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


class OrderEventKind(StrEnum):
    """What happened to an order; the timeline's words are in `shop.orders.timeline`."""

    SUBMITTED = "submitted"  # the shopper checked out
    DECISION = "decision"  # the risk rules decided, at checkout or again at confirmation
    HELD = "held"
    BLOCKED = "blocked"
    SMS_QUEUED = "sms_queued"  # a code or an alert about the order joined the outbox
    SMS_SENT = "sms_sent"  # handed to the provider
    SMS_DELIVERED = "sms_delivered"  # delivery receipt
    SMS_FAILED = "sms_failed"  # the provider refused it, gave up, or its receipt said so
    SMS_DROPPED = "sms_dropped"  # a code that expired, or stopped working, before it was sent
    WRONG_CODE = "wrong_code"
    CONFIRMED = "confirmed"  # the code was entered: placed
    CODE_REQUESTED = "code_requested"  # the owner sent a held order back for a code
    APPROVED = "approved"  # the owner placed a held order
    CANCELLED = "cancelled"  # by the owner, after too long held, "not me", a changed cart...
    EXPIRED = "expired"
    RELEASED = "released"  # its stock went back on the shelf


class OrderEvent(db.Model):
    """One line of an order's timeline, written in the transaction of what it records.

    `note` is the owner's own words (approve, cancel): shown to owners only. `detail` is JSON
    of plain facts (reasons, tries left, the kind of SMS), never a code.
    """

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_id_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=current_time)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")

    @classmethod
    def new(
        cls,
        order_id: int,
        kind: OrderEventKind,
        *,
        actor_id: int | None = None,
        note: str | None = None,
        **detail,
    ) -> "OrderEvent":
        facts = {key: value for key, value in detail.items() if value is not None}
        return cls(
            order_id=order_id,
            kind=kind,
            actor_id=actor_id,
            note=note,
            detail=json.dumps(facts, sort_keys=True, default=str) if facts else "",
        )

    @property
    def facts(self) -> dict:
        return json.loads(self.detail) if self.detail else {}
