"""How long SMS are kept: `flask --app wsgi sms prune` deletes what is past retention.

A message leaves with its console copy; the code it carried keeps its record
(`otp_challenges`, which the owner's figures and the order's history use) without the
message. Messages still in the outbox are never deleted, however old. Refused sends go after
the same number of days: they hold phone numbers and addresses too.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from shop.extensions import db
from shop.models import ConsoleMessage, OtpChallenge, SendRefusal, SmsMessage
from shop.models.sms import OUTBOX
from shop.retention import DEFAULT_BATCHES, Batches, delete_in_batches

# The owner's SMS figures look back this far (the dashboard's and /admin/sms's last 7 days).
MIN_DAYS = 7


@dataclass(frozen=True)
class Pruned:
    messages: int
    refusals: int


def prune_sms(before: datetime, batches: Batches = DEFAULT_BATCHES) -> Pruned:
    """Delete the finished messages created before `before`, and older refused sends."""
    finished_before = (SmsMessage.created_at < before, SmsMessage.status.not_in(OUTBOX))

    def delete_messages(ids: list[int]) -> None:
        db.session.execute(
            update(OtpChallenge)
            .where(OtpChallenge.sms_id.in_(ids))
            .values(sms_id=None)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            delete(ConsoleMessage)
            .where(ConsoleMessage.sms_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            delete(SmsMessage)
            .where(SmsMessage.id.in_(ids), *finished_before)
            .execution_options(synchronize_session=False)
        )

    def delete_refusals(ids: list[int]) -> None:
        db.session.execute(
            delete(SendRefusal)
            .where(SendRefusal.id.in_(ids))
            .execution_options(synchronize_session=False)
        )

    messages = delete_in_batches(
        select(SmsMessage.id).where(*finished_before).order_by(SmsMessage.created_at),
        delete_messages,
        batches,
    )
    refusals = delete_in_batches(
        select(SendRefusal.id).where(SendRefusal.at < before).order_by(SendRefusal.at),
        delete_refusals,
        batches,
    )
    return Pruned(messages, refusals)
