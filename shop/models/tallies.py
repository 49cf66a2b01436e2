"""Running counts kept by the database itself, so that the owner's figures cost the same
whatever the size of the history (SPEC section 8).

A tally row says: this many rows of a counted table, created in this hour (`hour`: whole
hours since the Unix epoch, UTC), share these values of a few columns. Triggers on the
counted tables append to them (migrations 540ec029f4ee, c2e8f6a1d3b7, d5b8e2f41a6c) in
the transaction of the change: an insert appends +1, a delete -1, and an update of a counted
column -1 under the old values and +1 under the new. No application code writes them, so no
path can forget to.

Each appended row also says its row's five-minute slot (`slot`: whole five minutes since the
epoch); folding keeps the hour (`slot` NULL) and adds the same counts by slot to a slot
tally (`OrderSlotTally`, ...), so that a figure's window is read to within five minutes
from tallies (`shop.tallies.Window`). Slot tallies are kept eight days.

Appending only, never updating a shared "current hour" row, means concurrent orders and
SMS never wait for each other's counters (nor deadlock over them). The delivery process
folds the appended rows into one row per hour and values every minute
(`shop.tallies.compact`); readers sum whatever rows there are.
"""

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db

# Ids keep growing as rows are folded together: 64 bits (SQLite's rowid is already).
ID = BigInteger().with_variant(Integer(), "sqlite")


class OrderTally(db.Model):
    """Orders by hour of creation, state, risk outcome ("" for none), whether they needed a
    code (outcome "otp", or an order code was sent for them) and whether one confirmed them."""

    __tablename__ = "order_tallies"
    __table_args__ = (Index("ix_order_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(8))
    needed_code: Mapped[bool] = mapped_column(Boolean)
    verified: Mapped[bool] = mapped_column(Boolean)
    orders: Mapped[int] = mapped_column(BigInteger)
    value_minor: Mapped[int] = mapped_column(BigInteger)


class SmsTally(db.Model):
    """Messages by hour of creation, status and whether they were handed to the provider."""

    __tablename__ = "sms_tallies"
    __table_args__ = (Index("ix_sms_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    sent: Mapped[bool] = mapped_column(Boolean)
    messages: Mapped[int] = mapped_column(BigInteger)


class CodeTally(db.Model):
    """One-time codes by hour of creation, purpose, whether they were entered and the
    destination's country ("" when the number could not be read)."""

    __tablename__ = "code_tallies"
    __table_args__ = (Index("ix_code_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    consumed: Mapped[bool] = mapped_column(Boolean)
    country: Mapped[str] = mapped_column(String(2), server_default="")
    codes: Mapped[int] = mapped_column(BigInteger)


class RefusalTally(db.Model):
    """Refused code sends by hour, reason and destination country ("" when unknown)."""

    __tablename__ = "refusal_tallies"
    __table_args__ = (Index("ix_refusal_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    refusals: Mapped[int] = mapped_column(BigInteger)


class StepUpTally(db.Model):
    """Step-ups by hour of creation, purpose, the factors offered (as `step_ups.factors`,
    strongest first) and the factor that answered ("" for none yet)."""

    __tablename__ = "step_up_tallies"
    __table_args__ = (Index("ix_step_up_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    factors: Mapped[str] = mapped_column(String(60))
    factor: Mapped[str] = mapped_column(String(16))
    step_ups: Mapped[int] = mapped_column(BigInteger)


class SpendTally(db.Model):
    """Messages handed to the provider with a price, by hour of sending, and the sum of
    their prices in units of 10⁻⁸ of the provider account's currency (prices have eight
    decimals: whole numbers add up exactly on every database)."""

    __tablename__ = "spend_tallies"
    __table_args__ = (Index("ix_spend_tallies_hour", "hour"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    messages: Mapped[int] = mapped_column(BigInteger)
    price_units: Mapped[int] = mapped_column(BigInteger)


# Slot tallies: the same counts by five-minute slot, written only by folding the hourly ones
# (`shop.tallies.compact`) and read only at a window's edge.


class OrderSlotTally(db.Model):
    __tablename__ = "order_slot_tallies"
    __table_args__ = (Index("ix_order_slot_tallies_slot", "slot"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(8))
    needed_code: Mapped[bool] = mapped_column(Boolean)
    verified: Mapped[bool] = mapped_column(Boolean)
    orders: Mapped[int] = mapped_column(BigInteger)
    value_minor: Mapped[int] = mapped_column(BigInteger)


class SmsSlotTally(db.Model):
    __tablename__ = "sms_slot_tallies"
    __table_args__ = (Index("ix_sms_slot_tallies_slot", "slot"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    sent: Mapped[bool] = mapped_column(Boolean)
    messages: Mapped[int] = mapped_column(BigInteger)


class CodeSlotTally(db.Model):
    __tablename__ = "code_slot_tallies"
    __table_args__ = (Index("ix_code_slot_tallies_slot", "slot"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    consumed: Mapped[bool] = mapped_column(Boolean)
    country: Mapped[str] = mapped_column(String(2))
    codes: Mapped[int] = mapped_column(BigInteger)


class RefusalSlotTally(db.Model):
    __tablename__ = "refusal_slot_tallies"
    __table_args__ = (Index("ix_refusal_slot_tallies_slot", "slot"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    refusals: Mapped[int] = mapped_column(BigInteger)


class StepUpSlotTally(db.Model):
    __tablename__ = "step_up_slot_tallies"
    __table_args__ = (Index("ix_step_up_slot_tallies_slot", "slot"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    factors: Mapped[str] = mapped_column(String(60))
    factor: Mapped[str] = mapped_column(String(16))
    step_ups: Mapped[int] = mapped_column(BigInteger)
