"""The audit trail: one row per security-relevant event, never with a secret in it."""

import json
from enum import StrEnum
from typing import Any

from shop.extensions import db
from shop.models import AuditEvent


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
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET_ASKED = "password_reset_asked"
    PASSWORD_RESET = "password_reset"
    ALERTS_CHANGED = "alerts_changed"
    SMS_STOP = "sms_stop"
    SMS_START = "sms_start"
    NOT_ME = "not_me"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    RULES_CHANGED = "rules_changed"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"


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
