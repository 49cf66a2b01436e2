"""Sessions attacked through HTTP (SPEC section 7; defect 8): fixation, cookie flags,
remember-me, and a cookie copied before sign-out, "sign out everywhere", "not me" or a
step-up that must open nothing afterwards."""

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select

from shop import alerts
from shop.extensions import db
from shop.models import UserSession
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from tests.factories import (
    ADDRESS,
    PASSWORD,
    fill_cart,
    last_code_sent_to,
    live_sessions,
    make_product,
    make_user,
    quick_password,
    set_rules,
)

COOKIES = ("session", "remember_token", "shop_device")


@pytest.fixture(autouse=True)
def password_only(app):
    set_rules(login_mode="never")


def sign_in(client, user, **extra):
    quick_password(user)
    return client.post_form("/auth/login", {"email": user.email, "password": PASSWORD, **extra})


def copy_of(app, client):
    """Another browser holding the same cookies as `client` now (a stolen cookie jar)."""
    thief = app.test_client()
    for name in COOKIES:
        cookie = client.get_cookie(name)
        if cookie is not None:
            thief.set_cookie(name, cookie.value)
    return thief


def opens_orders(client) -> bool:
    return client.get("/orders").status_code == 200


def session_id(app, client) -> str | None:
    cookie = client.get_cookie("session")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value).get("_user_id")


def test_session_fixation_a_planted_cookie_is_not_signed_in_by_the_victims_sign_in(app, client):
    victim = make_user()
    client.get("/auth/login")  # the attacker's own anonymous session...
    planted = copy_of(app, client)  # ...which they get the victim's browser to use
    assert session_id(app, client) is None
    sign_in(client, victim)
    assert opens_orders(client)
    assert not opens_orders(planted)
    assert session_id(app, client) is not None


def test_the_session_id_changes_at_step_up_and_the_old_cookie_dies(app, client, frozen_clock):
    shopper = make_user()
    sign_in(client, shopper)
    before = session_id(app, client)
    stolen = copy_of(app, client)
    assert opens_orders(stolen)
    fill_cart(shopper, (make_product(price_minor=30_000, stock=3), 1))
    ref = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "fixation-key-000001"})
    ref = ref.headers["Location"].rsplit("/", 1)[-1]
    code = last_code_sent_to(shopper.phone)
    assert client.post_form(f"/checkout/verify/{ref}", {"code": code}).status_code == 302
    assert session_id(app, client) not in (None, before)
    assert opens_orders(client)
    assert not opens_orders(stolen)


@pytest.mark.parametrize("debug", [False, True])
def test_cookie_flags(build_app, monkeypatch, debug):
    # The flags as the real Config sets them from FLASK_DEBUG: the test names none of them.
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    if debug:
        monkeypatch.setenv("FLASK_DEBUG", "1")
    else:
        monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app = build_app()
    assert app.debug is debug
    with app.app_context():
        set_rules(login_mode="never")
        user = make_user()
        client = app.test_client()
        response = sign_in(client, user, remember="y")
        cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert set(COOKIES) <= set(cookies)
    for name in COOKIES:
        assert "HttpOnly" in cookies[name], name
        assert "SameSite=Lax" in cookies[name], name
        assert ("Secure" in cookies[name]) is (not debug), name


def test_remember_me_signs_in_for_30_days_and_not_a_second_longer(app, client, frozen_clock):
    user = make_user()
    response = sign_in(client, user, remember="y")
    remember = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")
    )
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", remember).group(1))
    assert expires <= datetime.now(UTC) + timedelta(days=30, minutes=1)
    only_remembered = app.test_client()
    only_remembered.set_cookie("remember_token", client.get_cookie("remember_token").value)
    frozen_clock.advance(days=29, hours=23)
    assert opens_orders(only_remembered)
    frozen_clock.advance(hours=1, seconds=1)
    fresh = app.test_client()
    fresh.set_cookie("remember_token", client.get_cookie("remember_token").value)
    assert not opens_orders(fresh)


def test_a_session_without_remember_me_ends_within_a_day(app, client, frozen_clock):
    sign_in(client, make_user())
    frozen_clock.advance(hours=12, seconds=1)
    assert not opens_orders(client)


def test_a_cookie_copied_before_sign_out_opens_nothing_after(app, client):
    user = make_user()
    sign_in(client, user, remember="y")
    stolen = copy_of(app, client)
    assert client.post_form("/auth/logout").status_code == 302
    assert not opens_orders(client)
    assert not opens_orders(stolen)
    remembered_only = app.test_client()
    remembered_only.set_cookie("remember_token", stolen.get_cookie("remember_token").value)
    assert not opens_orders(remembered_only)
    assert live_sessions(user) == 0


def test_sign_out_everywhere_kills_every_other_cookie_but_keeps_this_one(app, client):
    user = make_user()
    elsewhere = app.test_client()
    sign_in(elsewhere, user, remember="y")
    stolen = copy_of(app, elsewhere)
    sign_in(client, user)
    assert client.post_form("/account/security").status_code == 302
    assert opens_orders(client)
    assert not opens_orders(elsewhere)
    assert not opens_orders(stolen)
    assert live_sessions(user) == 1


def test_not_me_kills_every_cookie(app, client, frozen_clock):
    user = make_user()
    sign_in(client, user, remember="y")
    stolen = copy_of(app, client)
    product = make_product(price_minor=2_000, stock=5)
    fill_cart(user, (product, 1))
    set_rules(login_mode="never", otp_threshold_minor=None, new_account_threshold_minor=None)
    client.post_form("/checkout", {**ADDRESS, "idempotency_key": "not-me-key-00000001"})
    DeliveryWorker(ConsoleSender()).run_once()
    assert live_sessions(user) == 1
    path = alerts.not_me_url(user).removeprefix(app.config["PUBLIC_BASE_URL"])
    db.session.commit()
    stranger = app.test_client()  # the account holder, from the SMS, on another phone
    stranger.get(path)
    assert stranger.post_form(path).status_code == 200
    assert not opens_orders(client)
    assert not opens_orders(stolen)
    assert live_sessions(user) == 0


def test_only_a_hash_of_the_session_id_is_stored(app, client):
    sign_in(client, make_user())
    raw = session_id(app, client)
    stored = db.session.scalar(select(UserSession.id_hash))
    assert raw not in stored and len(stored) == 64


def test_a_session_id_from_a_copy_of_the_database_opens_nothing(app, client):
    sign_in(client, make_user())
    stored = db.session.scalar(select(UserSession.id_hash))
    forger = app.test_client()
    with forger.session_transaction() as session:
        session["_user_id"] = stored
    assert not opens_orders(forger)


def test_an_expired_session_row_is_swept_at_the_next_sign_in(app, client, frozen_clock):
    user = make_user()
    sign_in(client, user)
    frozen_clock.advance(hours=13)
    sign_in(app.test_client(), user)
    assert live_sessions(user) == 1
