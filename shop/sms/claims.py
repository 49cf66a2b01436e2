"""The outbox side of delivery: claiming due SMS rows under a lease, and recording what became
of each only while the claim still holds.

Any number of delivery processes may run at once, on any machines. A claim picks a batch of
due rows (on PostgreSQL with FOR UPDATE SKIP LOCKED, so workers never wait on each other) and
stamps them, in one UPDATE, with this round's claim id and a lease. What the worker then holds
are snapshots of the claimed rows, detached from the session: a later commit never reloads
them with another worker's claim. Each outcome is recorded only while the claim still holds,
and a message whose lease is short is renewed (again only if still held) just before it is
sent, so a slow batch never sends a message that another worker has taken over. A row whose
lease runs out, because its process died mid-send, is claimed again: at most one duplicate.

An idle worker only reads: sweep and claim write only when there is something to change, so
polling never takes SQLite's write lock away from the web requests.
"""

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, any_, case, func, insert, literal, or_, select, update

from shop import clock
from shop.extensions import db
from shop.models import (
    ConsoleMessage,
    OrderEvent,
    OrderEventKind,
    OtpChallenge,
    SmsMessage,
    SmsStatus,
)
from shop.models.sms import in_outbox, is_code_kind, queued
from shop.models.types import open_rows
from shop.sms.attempts import Outcome
from shop.sms.receipts import FINAL_RECEIPTS

log = logging.getLogger(__name__)


def sweep() -> None:
    """Codes that expired while waiting are dropped, and no copy keeps them readable."""
    now = clock.now()
    expired = and_(queued(), SmsMessage.expires_at <= now)
    if _any(SmsMessage.id, expired):
        _note_dropped_on_timelines(expired, now)
        db.session.execute(
            update(SmsMessage)
            .where(expired)
            # A code queued without a masked copy keeps its (dead) text rather than
            # failing the NOT NULL body, which would stop every delivery round.
            .values(
                status=SmsStatus.DROPPED,
                body=func.coalesce(SmsMessage.redacted_body, SmsMessage.body),
            )
            .execution_options(synchronize_session=False)
        )
    readable = and_(
        ConsoleMessage.expires_at <= now,
        ConsoleMessage.redacted_body.is_not(None),
        ConsoleMessage.body != ConsoleMessage.redacted_body,
    )
    if _any(ConsoleMessage.id, readable):
        db.session.execute(
            update(ConsoleMessage)
            .where(readable)
            .values(body=ConsoleMessage.redacted_body)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def claim(worker_name: str, batch_size: int, lease: timedelta) -> list[SmsMessage]:
    """Take up to `batch_size` due messages for `lease`; return detached snapshots of them."""
    now = clock.now()
    claim_id = f"{worker_name}:{secrets.token_hex(6)}"
    # Queued and due, or claimed by a worker whose lease ran out. A message being sent
    # fell due before it was claimed, so both kinds are found on one range of
    # `ix_sms_messages_outbox` (next_attempt_at <= now), in the order they fell due,
    # whatever the size of the history.
    due = and_(
        in_outbox(),
        SmsMessage.next_attempt_at <= now,
        or_(SmsMessage.status == SmsStatus.QUEUED, SmsMessage.lease_expires_at < now),
    )
    if not _any(SmsMessage.id, due):
        db.session.commit()
        return []
    # One statement: on SQLite it runs under the write lock, so two workers never take
    # the same row; on PostgreSQL the rows are picked with FOR UPDATE SKIP LOCKED, and
    # `due` is checked again on each row as it is updated.
    batch = (
        select(SmsMessage.id)
        .where(due)
        .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # PostgreSQL may run an IN (subquery) again for each row it updates, and each run
        # skips the rows just claimed and picks the next ones: the whole queue in one
        # claim. ARRAY(subquery) is run once.
        picked = SmsMessage.id == any_(func.array(batch))
    else:
        picked = SmsMessage.id.in_(batch)
    # RETURNING hands back the claimed rows: reading them again by claim id would scan
    # the whole table (claimed_by has no index, and needs none).
    claimed = db.session.scalars(
        update(SmsMessage)
        .where(picked, due)
        .values(
            status=SmsStatus.SENDING,
            claimed_by=claim_id,
            lease_expires_at=now + lease,
            attempts=SmsMessage.attempts + 1,
        )
        .returning(SmsMessage),
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).all()
    # Snapshots: a commit while sending one message must not reload the next one, which
    # by then may hold another worker's claim.
    for message in claimed:
        db.session.expunge(message)
    db.session.commit()
    return sorted(claimed, key=lambda message: message.id)


def still_held(message: SmsMessage, lease: timedelta) -> bool:
    """Whether this round still holds `message`, renewing a lease that is running short
    (a slow batch): the send that follows then ends before anyone else may claim it."""
    now = clock.now()
    held_until: datetime | None = message.lease_expires_at
    if held_until is not None and held_until - now >= lease / 2:
        return True  # nobody may claim it before then
    renewed = db.session.execute(
        update(SmsMessage)
        .where(
            SmsMessage.id == message.id,
            SmsMessage.claimed_by == message.claimed_by,
            SmsMessage.status == SmsStatus.SENDING,
        )
        .values(lease_expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if renewed.rowcount != 1:
        return False
    message.lease_expires_at = now + lease
    return True


def record(message: SmsMessage, outcome: Outcome) -> None:
    """Record the outcome, only if this round still holds the claim; a message about an
    order puts the outcome's event on its timeline in the same transaction.

    What happened while the message was being sent is read in the same UPDATE, and has the
    last word over what the send said: a final delivery receipt settles the message on the
    receipt's status whatever the outcome (the provider had it: it is never sent again), an
    interim one makes a failed try a sent message (the provider has it), and a code that
    stopped working (replaced, used, ended or expired) is dropped rather than queued for
    another attempt. Either way a code's text gives way to its masked copy."""
    now = clock.now()
    wanted = SmsStatus(outcome.values["status"])
    overrules = [(SmsMessage.receipt_status.in_(list(FINAL_RECEIPTS)), SmsMessage.receipt_status)]
    if wanted == SmsStatus.QUEUED:
        # Any receipt at all: the provider has the message, and another try would send it
        # twice. It is sent; its final receipt settles it later.
        overrules.append((SmsMessage.receipt_status.is_not(None), SmsStatus.SENT.value))
        overrules.append((_code_stopped_working(message.id, now), SmsStatus.DROPPED.value))
    body = func.coalesce(SmsMessage.redacted_body, SmsMessage.body)
    if not outcome.redact:  # to be sent again: the code stays readable, unless overruled
        body = case(*((when, body) for when, _ in overrules), else_=SmsMessage.body)
    values = outcome.values | {
        "status": case(*overrules, else_=wanted.value),
        "body": body,
        "claimed_by": None,
        "lease_expires_at": None,
    }
    recorded = db.session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == message.id, SmsMessage.claimed_by == message.claimed_by)
        .values(**values)
        .returning(SmsMessage.status, SmsMessage.receipt_status)
        .execution_options(synchronize_session=False)
    ).first()
    if recorded is not None and message.order_id is not None:
        _note_on_timeline(message, outcome, *recorded, now)
    db.session.commit()
    if recorded is None:
        log.warning(
            "SMS %s: outcome %s not recorded: its lease ran out and another worker holds it",
            message.id,
            wanted,
        )


def code_stopped_working(message: SmsMessage) -> bool:
    """Whether a claimed message is a code that no longer works (see below): dropped then,
    rather than sent. Once dead a code never works again, so the answer holds until the
    outcome is recorded."""
    if not is_code_kind(message.kind):
        return False
    dead = select(SmsMessage.id).where(
        SmsMessage.id == message.id, _code_stopped_working(message.id, clock.now())
    )
    return db.session.scalar(dead) is not None


def _code_stopped_working(message_id: int, now: datetime) -> ColumnElement[bool]:
    """Whether the message is a code that no longer works: past its expiry, or its challenge
    used, ended (a resend, a change of number, too many tries...) or expired. NULL for any
    other message.

    The challenge's row is read under a share lock (PostgreSQL): a code that a transaction
    not yet committed is ending is waited for and seen ended, so that neither side misses the
    other (ending a code drops its message only if it is queued). SQLite runs the whole
    UPDATE under its write lock, after or before the transaction that ends the code."""
    live = and_(open_rows(OtpChallenge), OtpChallenge.expires_at > now)
    challenge_dead = (
        select(case((live, 0), else_=1))
        .where(OtpChallenge.sms_id == message_id)
        .limit(1)
        .with_for_update(read=True)
        .scalar_subquery()
    )
    return or_(SmsMessage.expires_at <= now, challenge_dead == 1)


def _note_on_timeline(
    message: SmsMessage, outcome: Outcome, status: str, receipt: str | None, now: datetime
) -> None:
    """The recorded outcome on the order's timeline, as the row now has it."""
    asked, event, facts = outcome.values["status"], outcome.event, dict(outcome.facts)
    if asked != SmsStatus.SENT and receipt in FINAL_RECEIPTS:
        return  # the receipt's line is there; a failure the provider never had is not one
    if asked == SmsStatus.QUEUED and status == SmsStatus.SENT:
        event, facts = OrderEventKind.SMS_SENT, {}  # the receipt showed the provider had it
    if asked == SmsStatus.QUEUED and status == SmsStatus.DROPPED:
        event = OrderEventKind.SMS_DROPPED
        if message.expires_at is None or now < message.expires_at:
            facts["reason"] = "code_ended"  # not expired: replaced, used or ended
    if event is None:
        return
    error = outcome.values.get("last_error") if event != OrderEventKind.SMS_SENT else None
    db.session.add(OrderEvent.new(message.order_id, event, sms=message.kind, error=error, **facts))


def _note_dropped_on_timelines(expired, now: datetime) -> None:
    """The codes about to be dropped unsent, on their orders' timelines."""
    dropped = select(
        SmsMessage.order_id,
        literal(now, OrderEvent.at.type),
        literal(OrderEventKind.SMS_DROPPED.value),
        # The JSON of OrderEvent.new(..., sms=<kind>), built by the database.
        literal('{"sms": "') + SmsMessage.kind + literal('"}'),
    ).where(expired, SmsMessage.order_id.is_not(None))
    db.session.execute(
        insert(OrderEvent).from_select(["order_id", "at", "kind", "detail"], dropped)
    )


def _any(column, condition) -> bool:
    """Whether any row matches: a read, so that an idle worker never takes a write lock."""
    return db.session.scalar(select(column).where(condition).limit(1)) is not None
