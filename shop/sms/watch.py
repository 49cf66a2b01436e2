"""The SMS-abuse alarm, a chore of the delivery process: when refused code sends or provider
spend in the last hour pass the owner's thresholds, every owner gets an SMS (through the
outbox) and their pages a banner.

One alarm per kind per hour: a second within the hour after the first is not raised, and the
alert's key (kind and clock hour) is unique, so that two delivery processes noticing the same
surge at once raise it once.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shop import alerts, audit, clock, settings
from shop.alerts import texts
from shop.extensions import db
from shop.models import OwnerAlert
from shop.sms.abuse import refusals_since, spend_since

HOUR = timedelta(hours=1)
SHOWN_FOR = timedelta(hours=24)


class AlarmKind(StrEnum):
    REFUSALS = "sms_refusals"
    SPEND = "sms_spend"


def spend_text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.0001'))}"


def watch_sms_abuse(now: datetime | None = None) -> list[OwnerAlert]:
    """Compare the last hour with the thresholds; raise what passed them; commit."""
    now = now or clock.now()
    limits = settings.current()
    console = f"{current_app.config['PUBLIC_BASE_URL']}/admin/sms"
    raised = []
    refused = refusals_since(now - HOUR)
    if refused > limits.refusals_alert_per_hour:
        threshold = str(limits.refusals_alert_per_hour)
        text = texts.owner_refusals(refused, limits.refusals_alert_per_hour, console)
        raised.append(_raise(AlarmKind.REFUSALS, str(refused), threshold, text, now))
    spend = spend_since(now - HOUR)
    if spend > limits.spend_alert_per_hour:
        figure, threshold = spend_text(spend), spend_text(limits.spend_alert_per_hour)
        text = texts.owner_spend(figure, threshold, console)
        raised.append(_raise(AlarmKind.SPEND, figure, threshold, text, now))
    db.session.commit()
    return [alert for alert in raised if alert is not None]


def _raise(
    kind: AlarmKind, figure: str, threshold: str, text: str, now: datetime
) -> OwnerAlert | None:
    recent = db.session.scalar(
        select(OwnerAlert.id)
        .where(OwnerAlert.kind == kind, OwnerAlert.raised_at > now - HOUR)
        .limit(1)
    )
    if recent is not None:
        return None
    alert = OwnerAlert(
        key=f"{kind}:{now.strftime('%Y-%m-%dT%H')}",
        kind=kind,
        raised_at=now,
        figure=figure,
        threshold=threshold,
    )
    db.session.add(alert)
    try:
        db.session.flush()
    except IntegrityError:  # another delivery process raised it a moment ago
        db.session.rollback()
        return None
    alerts.sms_abuse_to_owners(text)
    audit.record(audit.Event.SMS_ABUSE_ALERT, kind=str(kind), figure=figure, threshold=threshold)
    db.session.commit()
    return alert


def recent_alarms(now: datetime | None = None) -> list[OwnerAlert]:
    """The alarms of the last 24 hours, newest first: the banner on the owner's pages."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(OwnerAlert)
            .where(OwnerAlert.raised_at > now - SHOWN_FOR)
            .order_by(OwnerAlert.raised_at.desc(), OwnerAlert.id.desc())
            .limit(4)
        )
    )
