"""The owner's account page: what it shows, unlocking SMS step-up (note required, holder
alerted), ending every session; and the 4xx answers when a request is wrong."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop import audit, otp
from shop.accounts.client import Client
from shop.accounts.support import SupportOutcome, unlock_step_up
from shop.blueprints.admin import PER_PAGE
from shop.extensions import db
from shop.models import (
    ApiToken,
    AuditEvent,
    KnownDevice,
    OtpChallenge,
    OtpFailure,
    SmsKind,
    SmsMessage,
    User,
)
from shop.otp import texts
from tests.factories import make_held_order, make_user, sms_text, text_of


@pytest.fixture
def shopper(app):
    user = make_user("ada@example.com")
    user.alert_order_placed = False
    user.sms_stopped = True
    db.session.add(KnownDevice(user_id=user.id, device_id="d1", browser="Firefox on Linux"))
    db.session.commit()
    return user


def lock(user: User, now) -> None:
    """Ten wrong codes today, as `Otp.verify` would record them."""
    challenge = OtpChallenge(
        user_id=user.id,
        purpose="login",
        binding="b",
        phone=user.phone,
        client_ip="203.0.113.1",
        code_hmac="0" * 64,
        expires_at=now,
        ended_at=now,
    )
    db.session.add(challenge)
    db.session.flush()
    for _ in range(10):
        db.session.add(OtpFailure(user_id=user.id, challenge_id=challenge.id, at=now))
    db.session.commit()


def test_the_page_shows_events_devices_orders_factors_and_alerts_off(client, owner, shopper):
    order = make_held_order(shopper)
    audit.record(audit.Event.SIGN_IN, user_id=shopper.id, ip="198.51.100.4")
    db.session.commit()
    page = text_of(client.get(f"/admin/accounts/{shopper.id}"))
    assert "Account ada@example.com" in page
    assert "Firefox on Linux" in page
    assert f'href="/admin/orders/{order.ref}"' in page
    assert "order placed (turned off)" in page and "answered STOP" in page
    assert "Open: 0 of 10 wrong codes counted" in page
    assert "198.51.100.4" in page and 'data-event="sign_in"' in page
    assert shopper.phone not in page  # masked
    assert "Unlock SMS verification" not in page  # nothing to unlock


def test_events_page_by_keyset(client, owner, shopper):
    total = PER_PAGE + 5
    for number in range(total):
        audit.record(audit.Event.SIGN_IN, user_id=shopper.id, ip=f"198.51.100.{number}")
    db.session.commit()
    first = text_of(client.get(f"/admin/accounts/{shopper.id}"))
    assert f"198.51.100.{total - 1}<" in first and "198.51.100.5<" in first
    assert "198.51.100.4<" not in first
    oldest_shown = min(
        db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(PER_PAGE))
    )
    assert f"/admin/accounts/{shopper.id}?before={oldest_shown}" in first
    second = text_of(client.get(f"/admin/accounts/{shopper.id}?before={oldest_shown}"))
    assert "198.51.100.4<" in second and "198.51.100.0<" in second
    assert f"198.51.100.{total - 1}<" not in second
    assert client.get(f"/admin/accounts/{shopper.id}?before=x").status_code == 400
    assert client.get("/admin/accounts/999999").status_code == 404


def test_unlocking_needs_a_note_alerts_the_holder_and_lets_codes_go_again(
    client, owner, shopper, frozen_clock
):
    shopper.sms_stopped = False
    db.session.commit()
    lock(shopper, frozen_clock.now)
    assert otp.service().lockout.is_locked(shopper)
    page = text_of(client.get(f"/admin/accounts/{shopper.id}"))
    assert "Locked" in page and "10 of 10 wrong codes counted" in page

    missing = client.post_form(f"/admin/accounts/{shopper.id}/unlock", {"note": " "})
    assert missing.status_code == 422
    db.session.expire_all()
    assert otp.service().lockout.is_locked(db.session.get(User, shopper.id))

    frozen_clock.advance(minutes=1)
    done = client.post_form(
        f"/admin/accounts/{shopper.id}/unlock", {"note": "Customer called from the known number."}
    )
    assert done.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, shopper.id)
    assert user.step_up_unlocked_at == frozen_clock.now
    assert not otp.service().lockout.is_locked(user)
    [alert] = db.session.scalars(
        select(SmsMessage).where(SmsMessage.kind == SmsKind.ALERT_STEP_UP_UNLOCKED)
    )
    assert alert.to_number == user.phone
    assert "the shop unlocked SMS verification on your account. Not you?" in sms_text(alert)
    [row] = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "step_up_unlocked"))
    assert (row.user_id, row.actor_id) == (user.id, owner.id)
    assert json.loads(row.detail) == {"note": "Customer called from the known number."}
    # Codes go out again; the wrong codes before the unlock no longer count.
    sent = otp.service().send(
        user, "login", "binding", client_ip="203.0.113.9", text=texts.login_code()
    )
    assert sent.outcome == "sent"

    again = client.post_form(f"/admin/accounts/{shopper.id}/unlock", {"note": "again"})
    assert again.status_code == 409
    assert "not locked" in text_of(again)


def test_ending_every_session(app, client, owner, shopper):
    db.session.add(
        ApiToken(user_id=shopper.id, token_hash="a" * 64, name="script", client_ip="203.0.113.1")
    )
    db.session.commit()
    shoppers_browser = app.test_client()
    shoppers_browser.sign_in_as(shopper)
    assert shoppers_browser.get("/orders").status_code == 200

    assert client.post_form(f"/admin/accounts/{shopper.id}/end-sessions", {}).status_code == 422
    response = client.post_form(
        f"/admin/accounts/{shopper.id}/end-sessions", {"note": "Phone reported stolen."}
    )
    assert response.status_code == 302

    assert shoppers_browser.get("/orders").status_code == 302  # signed out
    assert db.session.scalar(select(ApiToken.revoked_at)) is not None
    [row] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.event == "signed_out_everywhere")
    )
    assert row.actor_id == owner.id and "Phone reported stolen." in row.detail


def test_shoppers_cannot_use_account_actions(client, shopper, frozen_clock):
    lock(shopper, frozen_clock.now)
    other = make_user()
    client.sign_in_as(other)
    for url in (
        f"/admin/accounts/{shopper.id}/unlock",
        f"/admin/accounts/{shopper.id}/end-sessions",
    ):
        assert client.post_form(url, {"note": "me"}).status_code == 403
    assert client.get(f"/admin/accounts/{shopper.id}").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, shopper.id).step_up_unlocked_at is None
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 0


def test_unlocking_twice_alerts_once(app, owner, shopper, frozen_clock):
    lock(shopper, frozen_clock.now - timedelta(minutes=1))
    desk = Client("192.0.2.1")
    assert unlock_step_up(shopper.id, owner, "first", desk).outcome == SupportOutcome.UNLOCKED
    assert unlock_step_up(shopper.id, owner, "second", desk).outcome == SupportOutcome.NOT_LOCKED
    alerts = db.session.scalar(
        select(func.count(SmsMessage.id)).where(SmsMessage.kind == SmsKind.ALERT_STEP_UP_UNLOCKED)
    )
    assert alerts == 1
