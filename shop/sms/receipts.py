"""Signed webhooks from Vonage: delivery receipts for our SMS, and inbound STOP/START replies.

Both arrive as a flat mapping of strings signed with the account's signature secret (HMAC
SHA-256, checked by the SDK) over a timestamp that must be within a few minutes of our clock.
Handling is idempotent, because Vonage retries until it gets a 2xx and a replayed request
must change nothing: a receipt that settled a message (delivered, failed, expired, rejected)
is never undone by a later one, and an inbound message is acted on once by its id, so a
replayed STOP after a START changes nothing.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from vonage_http_client.auth import Auth

from shop import audit, clock
from shop.extensions import db
from shop.models import InboundMessage, OrderEvent, OrderEventKind, SmsMessage, SmsStatus, User

log = logging.getLogger(__name__)

# A signed request whose timestamp is further than this from our clock, either way, is refused:
# a replay after that is stale, and a future timestamp would widen the window.
MAX_CLOCK_SKEW = timedelta(minutes=5)

FINAL_RECEIPTS = {
    "delivered": SmsStatus.DELIVERED,
    "expired": SmsStatus.EXPIRED,
    "failed": SmsStatus.FAILED,
    "rejected": SmsStatus.REJECTED,
}
INTERIM_RECEIPTS = frozenset({"accepted", "buffered", "unknown"})
# A final receipt settles only a message that no delivery process holds and that is not
# settled yet. One held by a process (`sending`) keeps the receipt, and the process, as it
# records its outcome, settles the message on it (shop.sms.claims.record).
SETTLEABLE = frozenset({SmsStatus.QUEUED, SmsStatus.SENT})

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE"})

_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{32,128}")
_UNIX_TIME = re.compile(r"[0-9]{1,12}")
_MSISDN = re.compile(r"[0-9]{6,15}")
_PROVIDER_ID = re.compile(r"[\x21-\x7e]{1,64}")
_ERROR_CODE = re.compile(r"[0-9]{1,8}")
_CLIENT_REF = re.compile(r"sms-([0-9]{1,18})")
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")


class BadSignature(Exception):
    """The request is not provably from Vonage, or is too old: answer 401, change nothing."""


class MalformedWebhook(ValueError):
    """A signed request we cannot make sense of: answer 400, change nothing."""


def check_signature(params: Mapping[str, str], *, secret: str, api_key: str = "") -> None:
    """Raise BadSignature unless `params` carry a valid, recent `sig` made with `secret`."""
    if not secret:
        raise BadSignature("Webhook signatures are not configured.")
    if not _HEX_SIGNATURE.fullmatch(params.get("sig", "")):
        raise BadSignature("Missing or malformed signature.")
    # Without a timestamp the SDK would sign with the current time: demand one instead.
    timestamp = params.get("timestamp", "")
    if not _UNIX_TIME.fullmatch(timestamp):
        raise BadSignature("Missing or malformed timestamp.")
    # The SDK insists on an API key beside a signature secret, though signing never uses it.
    signer = Auth(api_key=api_key or "unused", signature_secret=secret, signature_method="sha256")
    if not signer.check_signature(dict(params)):
        raise BadSignature("Invalid signature.")
    # Compared as seconds: a timestamp past the year 9999 is no datetime, only too far ahead.
    if abs(clock.now().timestamp() - int(timestamp)) > MAX_CLOCK_SKEW.total_seconds():
        raise BadSignature("Signature timestamp too old or too far ahead.")


def _optional(params: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if not pattern.fullmatch(value):
        raise MalformedWebhook(f"Malformed {name}.")
    return value


class ReceiptOutcome(StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # a repeat, or a receipt that cannot change a settled message
    UNKNOWN_MESSAGE = "unknown_message"


@dataclass(frozen=True)
class Receipt:
    """The parts of a Vonage SMS delivery receipt that we use."""

    status: str
    message_id: str | None
    message_ref: int | None  # our id, from client-ref "sms-<id>"
    msisdn: str | None
    error_code: str | None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "Receipt":
        status = params.get("status", "").strip().lower()
        if status not in FINAL_RECEIPTS and status not in INTERIM_RECEIPTS:
            raise MalformedWebhook("Missing or unknown status.")
        # Another client reference is not one of ours: the message is then simply unknown.
        ref = _CLIENT_REF.fullmatch(params.get("client-ref", "").strip())
        return cls(
            status=status,
            message_id=_optional(params, "messageId", _PROVIDER_ID),
            message_ref=int(ref.group(1)) if ref else None,
            msisdn=_optional(params, "msisdn", _MSISDN),
            error_code=_optional(params, "err-code", _ERROR_CODE),
        )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_RECEIPTS


def find_message(receipt: Receipt) -> SmsMessage | None:
    """The message by the provider's id, else by our client reference (later parts of a
    long text have ids of their own); never one sent to another number."""
    message = None
    if receipt.message_id:
        message = db.session.scalar(
            select(SmsMessage)
            .where(SmsMessage.provider_message_id == receipt.message_id)
            .order_by(SmsMessage.id)
            .limit(1)
        )
    if message is None and receipt.message_ref is not None:
        message = db.session.get(SmsMessage, receipt.message_ref)
    if message is not None and receipt.msisdn and message.to_number != f"+{receipt.msisdn}":
        return None
    return message


def receipt_changes(message: SmsMessage, receipt: Receipt) -> dict:
    """The column values `receipt` changes on `message`; empty when it changes nothing."""
    values: dict = {}
    settled_receipt = message.receipt_status in FINAL_RECEIPTS
    repeat = (message.receipt_status, message.receipt_error_code) == (
        receipt.status,
        receipt.error_code,
    )
    if not settled_receipt and not repeat:
        values |= {
            "receipt_status": receipt.status,
            "receipt_error_code": receipt.error_code,
            "receipt_at": clock.now(),
        }
    if receipt.is_final and message.status in SETTLEABLE:
        values["status"] = FINAL_RECEIPTS[receipt.status]
        # The provider has it and it will not be sent again: no copy keeps the code.
        if message.redacted_body is not None:
            values["body"] = message.redacted_body
    return values


def apply_receipt(params: Mapping[str, str]) -> ReceiptOutcome:
    """Record a (signature-checked) delivery receipt in the current transaction."""
    receipt = Receipt.from_params(params)
    message = find_message(receipt)
    if message is None:
        log.info("Delivery receipt for an unknown message: %s", receipt.message_id)
        return ReceiptOutcome.UNKNOWN_MESSAGE
    # Compare-and-set: a delivery process or another receipt may change the row meanwhile.
    for _ in range(3):
        values = receipt_changes(message, receipt)
        if not values:
            return ReceiptOutcome.UNCHANGED
        result = db.session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.id == message.id,
                SmsMessage.status == message.status,
                SmsMessage.receipt_status.is_not_distinct_from(message.receipt_status),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            if receipt.is_final and "receipt_status" in values and message.order_id is not None:
                _note_on_timeline(message, receipt)
            db.session.expire(message)
            return ReceiptOutcome.UPDATED
        db.session.refresh(message)
    log.warning("SMS %s: delivery receipt lost three races in a row; not applied", message.id)
    return ReceiptOutcome.UNCHANGED


def _note_on_timeline(message: SmsMessage, receipt: Receipt) -> None:
    """The first final receipt of a message about an order, on the order's timeline."""
    delivered = receipt.status == "delivered"
    db.session.add(
        OrderEvent.new(
            message.order_id,
            OrderEventKind.SMS_DELIVERED if delivered else OrderEventKind.SMS_FAILED,
            sms=message.kind,
            receipt=receipt.status,
            error_code=None if delivered else receipt.error_code,
        )
    )


def opt_out_command(keyword: str, text: str) -> bool | None:
    """True for STOP and its synonyms, False for START and its synonyms, None for anything
    else. The keyword Vonage extracted wins; else the first word of the text."""
    match = _FIRST_WORD.match(keyword) or _FIRST_WORD.match(text)
    word = match.group(1).upper() if match else ""
    if word in STOP_WORDS:
        return True
    if word in START_WORDS:
        return False
    return None


def first_sight(message_id: str) -> bool:
    """Record an inbound message id in the current transaction; False if it was already
    there (a replay, or Vonage retrying). One statement, so two copies racing agree."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    result = db.session.execute(
        insert(InboundMessage)
        .values(provider_message_id=message_id, received_at=clock.now())
        .on_conflict_do_nothing(index_elements=[InboundMessage.provider_message_id])
    )
    return result.rowcount == 1


def apply_inbound(params: Mapping[str, str]) -> int:
    """Act on a (signature-checked) inbound SMS in the current transaction: STOP turns off
    optional alerts for every account with the sender's number, START turns them back on.
    Returns how many accounts changed."""
    msisdn = _optional(params, "msisdn", _MSISDN)
    if msisdn is None:
        raise MalformedWebhook("Missing msisdn.")
    message_id = _optional(params, "messageId", _PROVIDER_ID)
    if message_id is None:
        raise MalformedWebhook("Missing messageId.")
    if not first_sight(message_id):
        log.info("Inbound message %s seen before: ignored", message_id)
        return 0
    # Only the first part of a long text can start with the keyword.
    if params.get("concat", "").lower() == "true" and params.get("concat-part", "1") != "1":
        return 0
    stop = opt_out_command(params.get("keyword", ""), params.get("text", ""))
    if stop is None:
        return 0
    users = db.session.scalars(
        select(User).where(User.phone == f"+{msisdn}", User.sms_stopped != stop)
    ).all()
    for user in users:
        user.sms_stopped = stop
        audit.record(
            audit.Event.SMS_STOP if stop else audit.Event.SMS_START,
            user_id=user.id,
            provider_message_id=message_id,
        )
    return len(users)
