"""SMS delivery figures for the owner: how many were sent, delivered, failed and pending."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select

from shop import tallies
from shop.extensions import db
from shop.models import SmsMessage, SmsStatus, SmsTally
from shop.tallies import Window

# Handed to the provider: its status says so, or it has a sent time (a receipt may later
# have turned it into "failed").
SENT = or_(
    SmsMessage.status.in_(
        [SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.EXPIRED, SmsStatus.REJECTED]
    ),
    SmsMessage.sent_at.is_not(None),
)
DELIVERED = SmsMessage.status == SmsStatus.DELIVERED
FAILED = SmsMessage.status.in_([SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.REJECTED])
PENDING = SmsMessage.status.in_([SmsStatus.QUEUED, SmsStatus.SENDING])
DROPPED = SmsMessage.status == SmsStatus.DROPPED


@dataclass(frozen=True)
class SmsFigures:
    """Counts over the messages created since `since`."""

    since: datetime
    total: int
    sent: int
    delivered: int
    failed: int
    pending: int
    dropped: int

    @property
    def delivery_rate(self) -> float | None:
        """Delivered out of sent, from 0 to 1; None when nothing was sent."""
        return self.delivered / self.sent if self.sent else None


SENT_STATUSES = {SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.EXPIRED, SmsStatus.REJECTED}
FAILED_STATUSES = {SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.REJECTED}
PENDING_STATUSES = {SmsStatus.QUEUED, SmsStatus.SENDING}


def sms_figures(since: datetime) -> SmsFigures:
    """The figures for messages created at or after `since`: the window's tallies, corrected
    by the messages of its edge."""
    window = Window.starting(since)
    total = sent = delivered = failed = pending = dropped = 0
    rows = tallies.window_sums(SmsTally, "messages", window, group_by=["status", "sent"])
    for status, was_sent, number in rows:
        total += number
        sent += number if status in SENT_STATUSES or was_sent else 0
        delivered += number if status == SmsStatus.DELIVERED else 0
        failed += number if status in FAILED_STATUSES else 0
        pending += number if status in PENDING_STATUSES else 0
        dropped += number if status == SmsStatus.DROPPED else 0
    tallied = (total, sent, delivered, failed, pending, dropped)
    return SmsFigures(since, *window.corrected(tallied, counted(*window.edge)))


def counted(since: datetime, until: datetime | None = None) -> tuple[int, ...]:
    """The same figures counted from the messages created in [since, until): a window's
    edge, and the recount the tallies must equal (tests)."""
    window = [SmsMessage.created_at >= since]
    if until is not None:
        window.append(SmsMessage.created_at < until)
    row = db.session.execute(
        select(
            func.count(SmsMessage.id),
            *(
                func.count(case((condition, 1)))
                for condition in (SENT, DELIVERED, FAILED, PENDING, DROPPED)
            ),
        ).where(*window)
    ).one()
    return tuple(row)
