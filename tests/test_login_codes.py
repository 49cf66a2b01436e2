"""The second step at sign-in: a code by SMS per the login rule, and after "not me"."""

import pytest
from sqlalchemy import func, select

from shop import cart as carts
from shop.extensions import db
from shop.models import SendRefusal, SmsKind
from shop.risk import current_rules
from tests.factories import (
    LOOK_ALIKES,
    PASSWORD,
    failures,
    last_code_sent_to,
    last_sms_to,
    make_product,
    make_user,
    quick_password,
    set_rules,
    sms_text,
)


def sign_in(client, user, **extra):
    return client.post_form("/auth/login", {"email": user.email, "password": PASSWORD, **extra})


def signed_in(client) -> bool:
    return client.get("/orders").status_code == 200


def enter_code(client, code):
    return client.post_form("/auth/login/verify", {"code": code})


def test_the_default_rule_is_new_device(app):
    assert current_rules().login_mode == "new_device"


def test_a_new_device_needs_a_code_and_is_then_remembered(client):
    user = make_user()
    response = sign_in(client, user)
    assert response.headers["Location"] == "/auth/login/verify"
    assert not signed_in(client)
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.OTP_LOGIN and "is your code to sign in" in sms_text(sms)
    page = client.get("/auth/login/verify").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    assert "+44 ••••••• " in page

    response = enter_code(client, last_code_sent_to(user.phone))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in(client)

    client.post_form("/auth/logout")
    assert sign_in(client, user).headers["Location"] == "/"


def test_a_wrong_code_says_how_many_tries_are_left(client):
    user = make_user()
    sign_in(client, user)
    code = last_code_sent_to(user.phone)
    response = enter_code(client, f"{(int(code) + 1) % 1_000_000:06d}")
    assert response.status_code == 422
    assert "4 attempts left" in response.get_data(as_text=True)
    assert not signed_in(client)
    for _ in range(3):
        response = enter_code(client, f"{(int(code) + 1) % 1_000_000:06d}")
    page = response.get_data(as_text=True)
    assert "That code is not right. 1 attempt left." in page
    assert "<span data-tries-left>1 attempt left</span>" in page
    assert "1 attempts" not in page


def test_always_asks_even_on_a_known_device(client, app):
    user = make_user()
    sign_in(client, user)
    enter_code(client, last_code_sent_to(user.phone))
    client.post_form("/auth/logout")
    set_rules(login_mode="always")
    assert sign_in(client, user).headers["Location"] == "/auth/login/verify"


def test_never_asks_no_code(client, app):
    set_rules(login_mode="never")
    assert sign_in(client, make_user()).headers["Location"] == "/"


def test_not_me_forces_a_code_once_whatever_the_rule(client, app):
    set_rules(login_mode="never")
    user = make_user()
    user.login_code_required = True
    db.session.commit()
    assert sign_in(client, user).headers["Location"] == "/auth/login/verify"
    enter_code(client, last_code_sent_to(user.phone))
    assert signed_in(client)
    db.session.refresh(user)
    assert user.login_code_required is False


def test_an_unverified_number_cannot_be_a_second_step_it_is_confirmed_next(client):
    user = make_user(verified=False)
    assert sign_in(client, user).headers["Location"] == "/auth/verify-phone"
    assert signed_in(client)
    assert last_sms_to(user.phone).kind == SmsKind.OTP_PHONE


def test_the_code_is_bound_to_its_sign_in_attempt(client, app, frozen_clock):
    user = make_user()
    sign_in(client, user)
    first = last_code_sent_to(user.phone)
    frozen_clock.advance(seconds=31)
    other = app.test_client()
    sign_in(other, user)
    response = enter_code(client, first)
    assert response.status_code == 422
    assert not signed_in(client)


def test_a_sign_in_inside_the_cool_down_is_queued_not_refused(client, app, frozen_clock):
    """SPEC 5: a second sign-in 10 s after a code to the same number is not refused; its code
    goes out when the 30 s cool-down ends, and the page says so."""
    user = make_user()
    sign_in(client, user)
    frozen_clock.advance(seconds=10)
    laptop = app.test_client()
    response = sign_in(laptop, user)
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login/verify"
    page = laptop.get("/auth/login/verify").get_data(as_text=True)
    assert "A code was sent to this number a moment ago" in page
    assert "in 20 seconds" in page
    frozen_clock.advance(seconds=20)
    assert enter_code(laptop, last_code_sent_to(user.phone)).status_code == 302
    assert signed_in(laptop)
    assert not db.session.scalar(select(func.count(SendRefusal.id)))


def test_the_verify_step_needs_a_password_first(client):
    response = client.get("/auth/login/verify")
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert enter_code(client, "123456").status_code == 302


@pytest.mark.parametrize("code", ["' OR 1=1 --", "1" * 10_000, "１２３４５６"])
def test_hostile_codes_are_a_clear_4xx(client, code):
    user = make_user()
    sign_in(client, user)
    response = enter_code(client, code)
    assert 400 <= response.status_code < 500
    assert not signed_in(client)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_input_made_from_the_code_is_a_wrong_code_and_the_code_still_signs_in(client, look_alike):
    user = quick_password(make_user())
    sign_in(client, user)
    code = last_code_sent_to(user.phone)
    response = enter_code(client, look_alike(code))
    assert response.status_code == 422
    assert "That code is not right. 4 attempts left." in response.get_data(as_text=True)
    assert failures(user) == 1
    assert not signed_in(client)
    response = enter_code(client, f"  {code} ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in(client)


def test_resend_replaces_the_code(client, frozen_clock):
    user = make_user()
    sign_in(client, user)
    old = last_code_sent_to(user.phone)
    assert client.post_form("/auth/login/verify/resend").status_code == 302
    assert "wait a few seconds" in client.get("/auth/login/verify").get_data(as_text=True)
    frozen_clock.advance(seconds=30)
    client.post_form("/auth/login/verify/resend")
    new = last_code_sent_to(user.phone)
    if new != old:
        assert enter_code(client, old).status_code == 422
    enter_code(client, new)
    assert signed_in(client)


def test_the_cart_filled_before_signing_in_survives_the_sign_in_code(client):
    # The session used to be cleared when the code was asked, before the cart was merged.
    user = make_user()
    product = make_product("Teapot", stock=5)
    client.post_form("/cart/add", {"product_id": product.id, "quantity": 2})
    assert sign_in(client, user).headers["Location"] == "/auth/login/verify"
    assert "Teapot" in client.get("/cart").get_data(as_text=True)  # still anonymous, still there

    enter_code(client, last_code_sent_to(user.phone))
    assert signed_in(client)
    assert carts.load_user_cart(user) == {product.id: 2}
    page = client.get("/cart").get_data(as_text=True)
    assert "Teapot" in page and "Your cart is empty" not in page
