"""SMS delivery figures for the owner: how many were sent, delivered, failed and pending."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select

from shop.extensions import db
from shop.models import SmsMessage, SmsStatus

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


def sms_figures(since: datetime) -> SmsFigures:
    """The figures for messages created at or after `since`, in one query."""
    row = db.session.execute(
        select(
            func.count(SmsMessage.id),
            *(
                func.count(case((condition, 1)))
                for condition in (SENT, DELIVERED, FAILED, PENDING, DROPPED)
            ),
        ).where(SmsMessage.created_at >= since)
    ).one()
    total, sent, delivered, failed, pending, dropped = row
    return SmsFigures(since, total, sent, delivered, failed, pending, dropped)
