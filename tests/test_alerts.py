"""Activity alerts: what they say, who turns them off, and the "not me" link."""

import re

import pytest
from sqlalchemy import select

from shop import alerts, orders
from shop.extensions import db
from shop.models import KnownDevice, Order, OrderStatus, Product, SmsKind, SmsMessage
from tests.factories import (
    PASSWORD,
    audit_rows,
    fill_cart,
    forged,
    last_sms_to,
    make_product,
    make_user,
    place_allowed,
    set_rules,
    sms_count,
    sms_text,
)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/150.0 Safari/537.36"
)
ADDRESS = orders.ShippingAddress("Ada Lovelace", "1 Secret Street", "London", "N1 1AA", "GB")
LINK = re.compile(r"http://127\.0\.0\.1:5000(/account/not-me/\S+)$")


@pytest.fixture(autouse=True)
def password_only(app):
    set_rules(login_mode="never")


def with_known_device(user):
    db.session.add(KnownDevice(user_id=user.id, device_id="old-phone", browser="Safari on iOS"))
    db.session.commit()
    return user


def sign_in(client, user):
    return client.post_form(
        "/auth/login",
        {"email": user.email, "password": PASSWORD},
        headers={"User-Agent": CHROME},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )


def place(user, product=None, key="alert-key-0000000000"):
    """Check out through the use case, under rules that simply place every order."""
    fill_cart(user, (product or make_product(price_minor=4999, stock=10), 1))
    return place_allowed(user, ADDRESS, key)


def not_me_path(body: str) -> str:
    match = LINK.search(body)
    assert match, body
    return match.group(1)


def test_sign_in_from_a_new_device_sends_an_alert(client, frozen_clock):
    user = with_known_device(make_user())
    sign_in(client, user)
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.ALERT_NEW_DEVICE
    text = sms_text(sms)
    assert text.startswith(
        "Shop: new sign-in on Chrome on Linux, IP 198.51.100.23, 02 Nov 12:00 UTC."
    )
    assert "Not you? http://127.0.0.1:5000/account/not-me/" in text
    # The link is kept as a code is: sealed at rest, and masked in the copy the owner reads.
    assert sms.expires_at is None and sms.body.startswith("sealed:v1:")
    assert sms.redacted_body == alerts.mask_not_me_links(text)
    assert sms.redacted_body.endswith("Not you? http://127.0.0.1:5000/account/not-me/••••••")


def test_the_first_device_and_known_devices_send_no_alert(client):
    user = make_user()
    sign_in(client, user)
    client.post_form("/auth/logout")
    sign_in(client, user)
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == 0


def test_new_device_alert_respects_opt_out_and_stop(client, app):
    user = with_known_device(make_user())
    user.alert_new_device = False
    db.session.commit()
    sign_in(client, user)
    stopped = with_known_device(make_user())
    stopped.sms_stopped = True
    db.session.commit()
    sign_in(app.test_client(), stopped)
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == 0


def test_new_device_alerts_stop_at_five_an_hour(client, app, frozen_clock):
    """A sign-in from a new device is free to repeat: the holder is told five times an
    hour, and every sign-in is still in the account's recent activity."""
    user = with_known_device(make_user())
    for _ in range(7):
        assert sign_in(app.test_client(), user).status_code == 302  # each a new device
        frozen_clock.advance(minutes=1)
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == alerts.NEW_DEVICE_ALERTS_PER_HOUR == 5
    assert len(audit_rows(user, "sign_in")) == 7
    frozen_clock.advance(minutes=53)  # the first alert is an hour old, less a second
    frozen_clock.advance(seconds=-1)
    sign_in(app.test_client(), user)
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == 5
    frozen_clock.advance(seconds=1)
    sign_in(app.test_client(), user)
    assert sms_count(SmsKind.ALERT_NEW_DEVICE) == 6


def test_a_number_the_account_has_not_confirmed_is_sent_no_alert(client, app):
    """Anyone can register with someone else's number (or a premium-rate one) without
    confirming it: that number gets no alert, however often the account signs in or takes
    an API token, and whatever the client calls itself."""
    user = with_known_device(make_user(verified=False))
    sign_in(client, user)
    for number in range(3):
        api = app.test_client().post(
            "/api/v1/tokens",
            json={
                "email": user.email,
                "password": PASSWORD,
                "name": f"Call +44 20 7946 000{number}",
            },
        )
        assert api.status_code == 201
    alerts.code_locked(user)
    alerts.password_changed(user, reset=False)
    db.session.commit()
    sent = db.session.scalars(select(SmsMessage.kind).where(SmsMessage.to_number == user.phone))
    assert set(sent) <= {SmsKind.OTP_PHONE}  # the code that would confirm it, if asked for


def test_order_placed_alert_says_amount_and_ref_and_nothing_else(app):
    user = make_user()
    order = place(user)
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.ALERT_ORDER_PLACED
    assert sms_text(sms).startswith(f"Shop: order {order.ref} for €49.99 was placed. Not you? ")
    assert "Secret Street" not in sms_text(sms) and "N1 1AA" not in sms_text(sms)


def test_order_alert_opt_out(app):
    user = make_user()
    user.alert_order_placed = False
    db.session.commit()
    place(user)
    assert sms_count(SmsKind.ALERT_ORDER_PLACED) == 0


def test_security_alerts_go_out_even_after_stop(app):
    user = make_user()
    user.sms_stopped = True
    user.alert_new_device = user.alert_order_placed = False
    db.session.commit()
    alerts.code_locked(user)
    alerts.phone_changed(user, "+447700900999")
    db.session.commit()
    assert sms_count(SmsKind.ALERT_CODE_LOCKED) == 1
    changed = last_sms_to("+447700900999")
    assert changed.kind == SmsKind.ALERT_PHONE_CHANGED
    assert f"ending {user.phone[-3:]}" in sms_text(changed)


def test_not_me_locks_the_account_once(client, app):
    user = make_user()
    product = make_product(price_minor=4999, stock=10)
    order = place(user, product)
    path = not_me_path(sms_text(last_sms_to(user.phone)))
    victim_session = app.test_client()
    victim_session.sign_in_as(user)

    page = client.get(path)
    assert page.status_code == 200 and "Lock my account" in page.get_data(as_text=True)
    db.session.refresh(order)
    assert order.status == OrderStatus.PLACED

    done = client.post_form(path)
    assert done.status_code == 200
    assert order.ref in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == OrderStatus.CANCELLED
    assert db.session.get(Product, product.id).stock == 10
    assert victim_session.get("/orders").status_code == 302
    assert db.session.get(type(user), user.id).login_code_required is True
    assert "not_me" in [event.event for event in user_events(user)]

    assert client.post_form(path).status_code == 410
    assert client.get(path).status_code == 410


def user_events(user):
    from shop.models import AuditEvent

    return db.session.scalars(select(AuditEvent).where(AuditEvent.user_id == user.id)).all()


def test_not_me_link_expires_after_24_hours(client, frozen_clock):
    user = make_user()
    place(user)
    path = not_me_path(sms_text(last_sms_to(user.phone)))
    frozen_clock.advance(hours=23, minutes=59)
    assert client.get(path).status_code == 200
    frozen_clock.advance(minutes=2)
    response = client.get(path)
    assert response.status_code == 404
    assert "expired" in response.get_data(as_text=True)
    assert client.post_form(path).status_code == 404


def test_a_forged_not_me_token_is_404(client):
    user = make_user()
    place(user)
    path = not_me_path(sms_text(last_sms_to(user.phone)))
    assert client.get(forged(path)).status_code == 404
    assert client.get("/account/not-me/anything").status_code == 404


def test_not_me_leaves_shipped_states_alone(app):
    user = make_user()
    order = place(user)
    order.status = OrderStatus.EXPIRED
    db.session.commit()
    assert orders.cancel_open_orders(user) == []
