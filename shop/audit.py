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
    PHONE_RESTORED = "phone_restored"  # by "not me" from the "phone number changed" alert
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
    SETTINGS_CHANGED = "settings_changed"
    ORDER_APPROVED = "order_approved"
    ORDER_CODE_REQUESTED = "order_code_requested"
    ORDER_CANCELLED = "order_cancelled"
    STEP_UP_UNLOCKED = "step_up_unlocked"
    SMS_ABUSE_ALERT = "sms_abuse_alert"
    REGISTERED = "registered"
    REGISTRATION_TRIED = "registration_tried"  # someone registered an e-mail that has an account
    FACTOR_ADDED = "factor_added"  # a passkey, an authenticator app or new recovery codes
    FACTOR_REMOVED = "factor_removed"
    RECOVERY_CODE_USED = "recovery_code_used"
    PASSKEY_CLONED = "passkey_cloned"  # a good signature with a counter that went backwards
    FACTOR_REFUSED = "factor_refused"  # a new passkey whose registration did not verify


# An owner's note kept with a decision (review, unlock): what the owner typed, tidied.
NOTE_MAX_LENGTH = 500


def clean_note(note: str | None) -> str:
    """Whitespace folded and cut to NOTE_MAX_LENGTH; empty means no note was given."""
    return " ".join((note or "").split())[:NOTE_MAX_LENGTH]


# Kept whatever their age: the history of the owner's risk rules (/admin/risk), which says
# under which rules each past order was decided. A few rows a year.
KEPT_FOREVER = (Event.RULES_CHANGED,)


def record(
    event: Event,
    *,
    user_id: int | None = None,
    actor_id: int | None = None,
    by_the_shop: bool = False,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit row to the current transaction. `detail` must hold no secret.

    The actor is the account itself unless `actor_id` names someone else; `by_the_shop`
    says nobody did it by hand (a chore of the delivery process)."""
    row = AuditEvent(
        event=event,
        user_id=user_id,
        actor_id=None if by_the_shop else actor_id if actor_id is not None else user_id,
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
