"""The account holder's own settings and what the security page shows them."""

from typing import Any

from sqlalchemy import select

from shop import audit
from shop.accounts import tokens
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import AuditEvent, KnownDevice, User

RECENT_EVENTS = 20


def set_alerts(user: User, *, new_device: bool, order_placed: bool, client: Client) -> None:
    """Turn the optional alerts on or off (security alerts cannot be); audited, committed."""
    old = {"new_device": user.alert_new_device, "order": user.alert_order_placed}
    user.alert_new_device = new_device
    user.alert_order_placed = order_placed
    new = {"new_device": user.alert_new_device, "order": user.alert_order_placed}
    audit.record(audit.Event.ALERTS_CHANGED, user_id=user.id, ip=client.ip, old=old, new=new)
    db.session.commit()


def set_owner_alerts(owner: User, *, order_held: bool, client: Client) -> None:
    """An owner's own alert: an SMS whenever an order is held for review; audited."""
    old = {"order_held": owner.alert_order_held}
    owner.alert_order_held = order_held
    audit.record(
        audit.Event.ALERTS_CHANGED,
        user_id=owner.id,
        ip=client.ip,
        old=old,
        new={"order_held": owner.alert_order_held},
    )
    db.session.commit()


def security_overview(user: User) -> dict[str, Any]:
    """Devices, API tokens and the latest security events of the account."""
    devices = db.session.scalars(
        select(KnownDevice)
        .where(KnownDevice.user_id == user.id)
        .order_by(KnownDevice.last_seen_at.desc())
    ).all()
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.user_id == user.id)
        .order_by(AuditEvent.id.desc())
        .limit(RECENT_EVENTS)
    ).all()
    return {"devices": devices, "events": events, "tokens": tokens.live_tokens(user)}
