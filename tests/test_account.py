"""Account pages: alert preferences, changing the phone number, signing out everywhere."""

from sqlalchemy import select

from shop.extensions import db
from shop.models import Order, OrderStatus, OtpChallenge, SmsKind, SmsMessage, SmsStatus, User
from tests.factories import (
    ADDRESS,
    PASSWORD,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    make_product,
    make_user,
    set_rules,
    sms_count,
    sms_text,
)


def reload(user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def test_account_pages_need_sign_in(client):
    for path in ("/account/alerts", "/account/phone", "/account/security"):
        assert client.get(path).status_code == 302


def test_alert_preferences_are_saved_and_audited(client):
    user = make_user()
    client.sign_in_as(user)
    page = client.get("/account/alerts").get_data(as_text=True)
    assert "always on" in page
    response = client.post_form("/account/alerts", {"alert_order_placed": "y"})
    assert response.status_code == 302
    user = reload(user)
    assert user.alert_new_device is False and user.alert_order_placed is True
    assert "alerts_changed" in client.get("/account/security").get_data(as_text=True).replace(
        " ", "_"
    )


def test_alert_form_refuses_security_alert_fields(client):
    client.sign_in_as(make_user())
    response = client.post_form("/account/alerts", {"alert_code_locked": ""})
    assert response.status_code == 400


def test_phone_change_needs_the_password_and_a_new_valid_number(client):
    user = make_user(phone="+447700900111")
    client.sign_in_as(user)
    wrong = client.post_form("/account/phone", {"phone": "07700 900222", "password": "nope nope"})
    assert wrong.status_code == 422 and "not your password" in wrong.get_data(as_text=True)
    same = client.post_form("/account/phone", {"phone": "07700 900111", "password": PASSWORD})
    assert same.status_code == 422 and "already your number" in same.get_data(as_text=True)
    foreign = client.post_form("/account/phone", {"phone": "+1 202 555 0100", "password": PASSWORD})
    assert foreign.status_code == 422
    assert reload(user).phone == "+447700900111"


def test_phone_change_verifies_the_new_number_alerts_the_old_and_starts_a_cool_off(
    client, app, frozen_clock
):
    user = make_user(phone="+447700900111")
    client.sign_in_as(user)
    elsewhere = app.test_client()
    elsewhere.sign_in_as(user)
    response = client.post_form("/account/phone", {"phone": "07700 900222", "password": PASSWORD})
    assert response.headers["Location"] == "/auth/verify-phone"
    assert reload(user).phone == "+447700900111"
    page = client.get("/auth/verify-phone").get_data(as_text=True)
    assert "Confirm your new number" in page and "222" in page

    code = last_code_sent_to("+447700900222")
    response = client.post_form("/auth/verify-phone", {"code": code})
    assert response.status_code == 302

    user = reload(user)
    assert user.phone == "+447700900222"
    assert user.phone_changed_at == frozen_clock.now
    alert = last_sms_to("+447700900111")
    assert alert.kind == SmsKind.ALERT_PHONE_CHANGED and "ending 222" in sms_text(alert)
    assert client.get("/orders").status_code == 200
    assert elsewhere.get("/orders").status_code == 302


def test_a_phone_change_ends_the_codes_that_went_to_the_old_number(client, app, frozen_clock):
    """The old number may be the lost phone: a code it holds, or one still queued for it,
    does nothing once the new number is confirmed, and an unsent one is not sent."""
    user = make_user(phone="+447700900111")
    client.sign_in_as(user)
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "k" * 20})
    ref = response.headers["Location"].removeprefix("/checkout/verify/")
    order_code = last_code_sent_to("+447700900111")
    # Someone with the password and the old phone signs in from another device.
    thief = app.test_client()
    thief.post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    sign_in_sms = last_sms_to("+447700900111")
    assert sign_in_sms.kind == SmsKind.OTP_LOGIN and sign_in_sms.status == SmsStatus.QUEUED
    sign_in_code = last_code_sent_to("+447700900111")

    client.post_form("/account/phone", {"phone": "07700 900222", "password": PASSWORD})
    client.post_form("/auth/verify-phone", {"code": last_code_sent_to("+447700900222")})
    assert reload(user).phone == "+447700900222"

    db.session.expire_all()
    ended = db.session.scalars(
        select(OtpChallenge).where(OtpChallenge.phone == "+447700900111")
    ).all()
    assert [(c.purpose, c.end_reason) for c in ended] == [
        ("order", "phone_changed"),
        ("login", "phone_changed"),
    ]
    assert db.session.get(SmsMessage, sign_in_sms.id).status == SmsStatus.DROPPED
    refused = thief.post_form("/auth/login/verify", {"code": sign_in_code})
    assert refused.status_code == 422
    assert thief.get("/orders").status_code == 302
    client.post_form(f"/checkout/verify/{ref}", {"code": order_code})
    order = db.session.scalar(select(Order).where(Order.ref == ref))
    assert order.status != OrderStatus.PLACED


def test_registration_phone_code_confirms_the_number(client):
    client.post_form(
        "/auth/register",
        {"email": "new@example.com", "phone": "07700 900333", "password": "long enough pw"},
    )
    client.post_form("/auth/login", {"email": "new@example.com", "password": "long enough pw"})
    wrong = client.post_form("/auth/verify-phone", {"code": "000000"})
    code = last_code_sent_to("+447700900333")
    if code != "000000":
        assert wrong.status_code == 422
    client.post_form("/auth/verify-phone", {"code": code})
    user = db.session.scalar(db.select(User).where(User.email == "new@example.com"))
    assert user.phone_verified


def test_sign_out_everywhere_keeps_only_this_session(client, app):
    user = make_user()
    client.sign_in_as(user)
    other = app.test_client()
    other.sign_in_as(user)
    response = client.post_form("/account/security")
    assert response.status_code == 302
    assert client.get("/orders").status_code == 200
    assert other.get("/orders").status_code == 302


def test_not_me_from_the_phone_changed_alert_says_the_old_number_is_back(client, app):
    """The alert to the old number: its "not me" page says the number will be, then was,
    put back, and the holder signs in again with a code to it."""
    user = make_user(phone="+447700900111")
    client.sign_in_as(user)
    client.post_form("/account/phone", {"phone": "07700 900222", "password": PASSWORD})
    client.post_form("/auth/verify-phone", {"code": last_code_sent_to("+447700900222")})
    alert = sms_text(last_sms_to("+447700900111"))
    path = alert[alert.index("/account/not-me/") :]

    holder = app.test_client()
    confirm = holder.get(path).get_data(as_text=True)
    assert "put your number ending 111 back" in confirm
    done = holder.post_form(path).get_data(as_text=True)
    assert "Your phone number is the one ending 111 again" in done
    assert "ending 222" in done  # the number that no longer gets anything
    assert reload(user).phone == "+447700900111"
    assert client.get("/orders").status_code == 302  # the session that changed it ended


def test_after_a_phone_change_only_orders_that_need_a_code_are_held(client, frozen_clock):
    # SPEC section 4: a 15.00 order needs no code, so the recent change does not hold it.
    user = make_user(phone="+447700900111")
    client.sign_in_as(user)
    client.post_form("/account/phone", {"phone": "07700 900222", "password": PASSWORD})
    client.post_form("/auth/verify-phone", {"code": last_code_sent_to("+447700900222")})
    assert reload(user).phone_changed_at == frozen_clock.now

    frozen_clock.advance(hours=1)
    fill_cart(user, (make_product(price_minor=1_500, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "k" * 20})
    small = db.session.scalar(select(Order).where(Order.ref == response.headers["Location"][8:]))
    assert small.status == OrderStatus.PLACED

    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "m" * 20})
    large = db.session.scalar(select(Order).where(Order.ref == response.headers["Location"][8:]))
    assert large.status == OrderStatus.HELD and "phone_changed" in large.risk_reasons
    # Held instead of a code: no order code went to the new number, or to the old one.
    assert sms_count(SmsKind.OTP_ORDER) == 0

    # 72 hours after the change the hold has ended: the same order asks for a code again.
    frozen_clock.advance(hours=71)
    client.sign_in_as(user)  # the morning's session has long ended
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "n" * 20})
    later = db.session.scalar(select(Order).where(Order.ref == response.headers["Location"][17:]))
    assert later.status == OrderStatus.PENDING_VERIFICATION
    assert "phone_changed" not in later.risk_reasons
    assert last_sms_to("+447700900222").kind == SmsKind.OTP_ORDER


def test_the_phone_page_states_the_owners_cool_off_not_a_fixed_72_hours(client):
    user = make_user()
    client.sign_in_as(user)
    page = client.get("/account/phone").get_data(as_text=True)
    assert "For 72 hours after a change, orders that would need a code are held" in page
    set_rules(phone_change_hours=48, phone_change_action="otp")
    page = client.get("/account/phone").get_data(as_text=True)
    assert (
        "For 48 hours after a change, orders are confirmed with a code or a passkey first. "
        "Orders under €30.00 may need none." in page
    )
    assert "72 hours" not in page
    set_rules(phone_change_action="otp", phone_changed_factor="passkey", exemption_enabled=False)
    page = client.get("/account/phone").get_data(as_text=True)
    assert (
        "orders are confirmed with your passkey first (without one, the shop checks them)." in page
    )
    assert "may need none" not in page
    set_rules(phone_change_action="off")
    assert "after a change" not in client.get("/account/phone").get_data(as_text=True)


def test_recent_activity_names_the_shop_not_its_address_for_what_the_owner_did(client):
    from shop.accounts.client import Client
    from shop.models import Role
    from shop.orders.review import approve
    from tests.factories import make_held_order

    shopper = make_user()
    order = make_held_order(shopper)
    owner = make_user("boss@example.com", role=Role.OWNER)
    assert approve(order.ref, owner, "A regular.", Client("192.0.2.77")).done
    client.sign_in_as(shopper)

    page = client.get("/account/security").get_data(as_text=True)
    activity = page.split("Recent activity", 1)[1]

    assert "order approved" in activity and "the shop" in activity
    assert "192.0.2.77" not in page
