"""Register, sign in and sign out over HTTP (SPEC sections 3 and 7)."""

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select

from shop.extensions import db
from shop.models import User
from tests.factories import (
    PASSWORD,
    fill_cart,
    last_sms_to,
    make_product,
    make_user,
    set_rules,
    sms_text,
)

CSRF = re.compile(r'name="csrf_token"[^>]*value="[^"]+"')


@pytest.fixture(autouse=True)
def password_only(app):
    """These tests are about the password step: the login rule asks no code here.

    The code step at sign-in is tested in test_login_codes.py at the configured rule.
    """
    set_rules(login_mode="never")


def register(client, **changes):
    data = {"email": "ada@example.com", "phone": "07700 900555", "password": "a long passphrase"}
    return client.post_form("/auth/register", {**data, **changes})


def login(client, email="ada@example.com", password=PASSWORD, url="/auth/login", **extra):
    return client.post_form(url, {"email": email, "password": password, **extra})


def signed_in(client) -> bool:
    return client.get("/orders").status_code == 200


def test_the_register_page_names_the_countries_whose_numbers_it_takes(client):
    page = client.get("/auth/register").get_data(as_text=True)
    assert "Your mobile, a number from United Kingdom (GB):" in page


def test_register_page_labels_every_input(client):
    page = client.get("/auth/register").get_data(as_text=True)
    for name in ("email", "phone", "password"):
        assert f'<label for="{name}">' in page
        assert f'name="{name}"' in page


def test_register_creates_an_account_and_the_first_sign_in_texts_a_code(client):
    response = register(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    assert user.phone == "+447700900555"
    assert user.phone_verified_at is None
    assert user.password_hash.startswith("scrypt:131072:8:1$")
    assert not signed_in(client)
    assert last_sms_to("+447700900555") is None  # nothing until the account is signed in

    signed = login(client, password="a long passphrase")
    assert signed.headers["Location"] == "/auth/verify-phone"
    assert last_sms_to("+447700900555").kind == "otp_phone"
    assert signed_in(client)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Invalid email address"),
        ({"phone": "+1 202 555 0100"}, "phone", "only send SMS to numbers in: United Kingdom (GB)"),
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"password": "seven77"}, "password", "Use 8 to 128 characters"),
        ({"password": "p" * 129}, "password", "Use 8 to 128 characters"),
        ({"email": ""}, "email", "This field is required"),
    ],
)
def test_register_refuses_bad_input_next_to_the_field(client, changes, field, message):
    response = register(client, **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in page
    assert message in page
    assert db.session.scalar(select(User)) is None


def test_any_password_of_8_to_128_characters_is_accepted(client):
    assert register(client, password="aaaaaaaa").status_code == 302
    other = client.application.test_client()
    assert register(other, email="b@example.com", password="é" * 128).status_code == 302


def test_register_with_a_taken_email_answers_as_with_a_new_one_and_tells_the_holder(client):
    holder = make_user("ada@example.com")
    response = register(client, email="ADA@example.com")
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/login")
    assert "already" not in client.get("/auth/login").get_data(as_text=True)
    alert = last_sms_to(holder.phone)
    assert alert.kind == "alert_registration_tried"
    assert "someone tried to register a new account with your e-mail" in sms_text(alert)
    assert last_sms_to("+447700900555") is None


def test_sign_in_with_the_right_password(client):
    make_user("ada@example.com")
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert signed_in(client)


def test_unknown_email_and_wrong_password_look_the_same(client):
    make_user("ada@example.com")
    unknown = login(client, email="nobody@example.com")
    wrong = login(client, password="not the password")
    assert unknown.status_code == wrong.status_code == 401
    unknown_page = CSRF.sub("", unknown.get_data(as_text=True)).replace("nobody@", "ada@")
    wrong_page = CSRF.sub("", wrong.get_data(as_text=True))
    assert unknown_page == wrong_page
    assert "The e-mail or password is not right." in wrong_page
    assert not signed_in(client)


def test_sign_in_without_csrf_token_is_refused(client):
    make_user("ada@example.com")
    response = client.post("/auth/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert not signed_in(client)


def test_sign_in_clears_and_renews_the_session(client):
    make_user("ada@example.com")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    before = client.csrf_token()
    login(client)
    with client.session_transaction() as session:
        assert "planted" not in session
    assert client.csrf_token() != before


def test_sign_in_merges_the_anonymous_cart(client):
    user = make_user("ada@example.com")
    mug, lamp = make_product(stock=50), make_product(stock=50)
    fill_cart(user, (mug, 2))
    client.post_form("/cart/add", {"product_id": mug.id, "quantity": 3})
    client.post_form("/cart/add", {"product_id": lamp.id, "quantity": 1})
    login(client)
    page = client.get("/cart").get_data(as_text=True)
    assert 'value="5"' in page and 'value="1"' in page


@pytest.mark.parametrize("target", ["/orders", "/products/1?x=1"])
def test_next_follows_same_site_paths(client, target):
    make_user("ada@example.com")
    response = login(client, url=f"/auth/login?next={target}")
    assert response.headers["Location"] == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "/\\evil.com",
        "https:evil.com",
        "javascript:alert(1)",
        "https://evil.com/",
        "/%09/evil.com".replace("%09", "\t"),
        "evil.com",
    ],
)
def test_next_refuses_other_sites(client, target):
    make_user("ada@example.com")
    response = client.post_form(
        "/auth/login",
        {"email": "ada@example.com", "password": PASSWORD},
        query_string={"next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_remember_me_lasts_at_most_30_days(client):
    make_user("ada@example.com")
    response = login(client, remember="y")
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(cookie for cookie in cookies if cookie.startswith("remember_token="))
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", remember).group(1))
    assert expires <= datetime.now(UTC) + timedelta(days=30, minutes=1)
    assert "HttpOnly" in remember


def test_sign_out_is_a_post_with_csrf(client):
    user = make_user()
    client.sign_in_as(user)
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400
    assert signed_in(client)
    response = client.post_form("/auth/logout")
    assert response.status_code == 302
    assert not signed_in(client)


def test_ending_all_sessions_signs_every_browser_out(client, app):
    user = make_user()
    client.sign_in_as(user)
    other = app.test_client()
    other.sign_in_as(user)
    assert signed_in(client) and signed_in(other)
    user.end_all_sessions()
    db.session.commit()
    assert not signed_in(client)
    assert not signed_in(other)


def test_the_remember_me_label_names_the_configured_duration(app):
    assert "(30 days)" in app.test_client().get("/auth/login").get_data(as_text=True)
    app.config["REMEMBER_COOKIE_DURATION"] = 14 * 24 * 3600
    assert "(14 days)" in app.test_client().get("/auth/login").get_data(as_text=True)
