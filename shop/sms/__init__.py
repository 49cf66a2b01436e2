"""SMS: a transactional outbox, delivery processes and the provider seam (SPEC section 6).

Nothing here talks to a provider inside a web request: `queue_sms` adds a row to the
caller's transaction, and a delivery process (`flask --app wsgi sms worker`) sends it after
commit.
"""

from datetime import datetime

from shop import clock
from shop.extensions import db
from shop.models.order import OrderEvent, OrderEventKind
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
    order_id: int | None = None,
) -> SmsMessage:
    """Add an SMS to the current transaction; it is sent only if that transaction commits,
    and not before `send_at` if given. A message about an order (`order_id`) goes on the
    order's timeline, and so do its sending and its delivery receipt."""
    message = SmsMessage(
        to_number=to_number,
        body=body,
        kind=kind,
        user_id=user_id,
        order_id=order_id,
        redacted_body=redacted_body,
        expires_at=expires_at,
    )
    if send_at is not None:
        message.next_attempt_at = send_at
    db.session.add(message)
    if order_id is not None:
        later = send_at.isoformat() if send_at is not None and send_at > clock.now() else None
        db.session.add(
            OrderEvent.new(order_id, OrderEventKind.SMS_QUEUED, sms=str(kind), send_at=later)
        )
    return message
