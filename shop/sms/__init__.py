"""SMS: a transactional outbox, delivery processes and the provider seam (SPEC section 6).

Nothing here talks to a provider inside a web request: `queue_sms` adds a row to the
caller's transaction, and a delivery process (`flask --app wsgi sms worker`) sends it after
commit.
"""

from datetime import datetime

from shop.extensions import db
from shop.models.sms import SmsKind, SmsMessage


def queue_sms(
    to_number: str,
    body: str,
    kind: SmsKind,
    *,
    user_id: int | None = None,
    redacted_body: str | None = None,
    expires_at: datetime | None = None,
    send_at: datetime | None = None,
) -> SmsMessage:
    """Add an SMS to the current transaction; it is sent only if that transaction commits,
    and not before `send_at` if given."""
    message = SmsMessage(
        to_number=to_number,
        body=body,
        kind=kind,
        user_id=user_id,
        redacted_body=redacted_body,
        expires_at=expires_at,
    )
    if send_at is not None:
        message.next_attempt_at = send_at
    db.session.add(message)
    return message
