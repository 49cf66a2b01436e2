"""The audit trail: one row per security-relevant event, never with a secret in it."""

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select

from shop.extensions import db
from shop.models import AuditEvent
from shop.retention import DEFAULT_BATCHES, Batches, delete_in_batches


class Event(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    CODE_SENT = "code_sent"
    CODE_VERIFIED = "code_verified"
    CODE_FAILED = "code_failed"
    CODE_INVALIDATED = "code_invalidated"
    STEP_UP_LOCKED = "step_up_locked"
    PHONE_VERIFIED = "phone_verified"
    PHONE_CHANGED = "phone_changed"
    ALERTS_CHANGED = "alerts_changed"
    SMS_STOP = "sms_stop"
    SMS_START = "sms_start"
    NOT_ME = "not_me"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    RULES_CHANGED = "rules_changed"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"


# Kept whatever their age: the history of the owner's risk rules (/admin/risk), which says
# under which rules each past order was decided. A few rows a year.
KEPT_FOREVER = (Event.RULES_CHANGED,)


def record(
    event: Event,
    *,
    user_id: int | None = None,
    actor_id: int | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit row to the current transaction. `detail` must hold no secret."""
    row = AuditEvent(
        event=event,
        user_id=user_id,
        actor_id=actor_id if actor_id is not None else user_id,
        ip=ip,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else "",
    )
    db.session.add(row)
    return row


def prune(before: datetime, batches: Batches = DEFAULT_BATCHES) -> int:
    """Delete the events recorded before `before`, except those `KEPT_FOREVER`."""
    old = (AuditEvent.at < before, AuditEvent.event.not_in(KEPT_FOREVER))

    def delete_events(ids: list[int]) -> None:
        db.session.execute(
            delete(AuditEvent)
            .where(AuditEvent.id.in_(ids), *old)
            .execution_options(synchronize_session=False)
        )

    return delete_in_batches(
        select(AuditEvent.id).where(*old).order_by(AuditEvent.at), delete_events, batches
    )
