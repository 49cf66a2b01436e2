"""Changing a password (current password, then a code) and resetting a forgotten one by a code
to the confirmed number: sessions end, the phone is told, "not me" works, nothing is given away."""

import re

import pytest
from sqlalchemy import func, select

from shop.accounts import authenticate
from shop.extensions import db
from shop.models import (
    ApiToken,
    AuditEvent,
    OtpChallenge,
    SendRefusal,
    SmsKind,
    SmsMessage,
    User,
)
from tests.factories import PASSWORD, last_code_sent_to, last_sms_to, make_user, sms_text, wrong

NEW = "a brand new pass phrase"
NOT_ME = re.compile(r"http://127\.0\.0\.1:5000(/account/not-me/\S+)$")


def reload(user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def password_is(user, password: str) -> bool:
    db.session.expire_all()
    return authenticate(user.email, password, hash_method="scrypt:131072:8:1") is not None


def signed_in(client) -> bool:
    return client.get("/orders").status_code == 200


def sms_count(phone: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(SmsMessage.id)).where(SmsMessage.to_number == phone))


# Changing it, signed in ----------------------------------------------------------------------


def test_a_change_needs_the_current_password(client):
    user = make_user()
    client.sign_in_as(user)
    response = client.post_form("/account/security/password", {"current_password": "not it!"})
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    assert sms_count(user.phone) == 0


def test_a_change_with_the_code_ends_other_sessions_and_alerts(client, app, frozen_clock):
    user = make_user()
    client.sign_in_as(user)
    elsewhere = app.test_client()
    elsewhere.sign_in_as(user)
    db.session.add(ApiToken(user_id=user.id, name="script", token_hash="h" * 64, client_ip="::1"))
    db.session.commit()
    page = client.get("/account/security").get_data(as_text=True)
    assert "Current password" in page and "Change password" in page

    response = client.post_form("/account/security/password", {"current_password": PASSWORD})
    assert response.headers["Location"] == "/account/security/password/verify"
    sms = last_sms_to(user.phone)
    assert sms.kind == SmsKind.OTP_PASSWORD and "is your code to change your password" in sms_text(
        sms
    )
    code = last_code_sent_to(user.phone)
    page = client.get("/account/security/password/verify").get_data(as_text=True)
    assert "New password" in page and 'autocomplete="one-time-code"' in page
    status = client.get("/account/security/password/status").json
    assert status["live"] and status["expires_in_seconds"] == 300

    short = {"code": code, "new_password": "short"}
    assert client.post_form("/account/security/password/verify", short).status_code == 422
    bad = {"code": wrong(code), "new_password": NEW}
    response = client.post_form("/account/security/password/verify", bad)
    assert response.status_code == 422 and "4 attempts left" in response.get_data(as_text=True)
    assert password_is(user, PASSWORD)

    good = {"code": code, "new_password": NEW}
    response = client.post_form("/account/security/password/verify", good)
    assert response.headers["Location"] == "/account/security"
    assert password_is(user, NEW) and not password_is(user, PASSWORD)
    assert signed_in(client) and not signed_in(elsewhere)
    assert db.session.scalar(select(ApiToken)).revoked_at is not None
    alert = last_sms_to(user.phone)
    assert alert.kind == SmsKind.ALERT_PASSWORD_CHANGED
    text = sms_text(alert)
    assert "password of your account was changed" in text and "Not you?" in text
    assert code not in text and NEW not in text
    events = db.session.scalars(select(AuditEvent.event).where(AuditEvent.user_id == user.id))
    assert "password_changed" in list(events)


def test_the_code_page_for_a_change_needs_the_first_step(client):
    client.sign_in_as(make_user())
    assert client.get("/account/security/password/verify").headers["Location"] == (
        "/account/security"
    )


# Resetting a forgotten one -------------------------------------------------------------------


def ask_reset(client, email: str):
    response = client.post_form("/auth/reset", {"email": email})
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/reset/verify"
    return client.get("/auth/reset/verify")


def test_a_reset_page_says_the_same_for_any_e_mail(client, app):
    user = make_user("known@example.com")
    known = ask_reset(client, "Known@Example.com ")
    unknown = ask_reset(app.test_client(), "nobody@example.com")
    unverified = make_user("unverified@example.com", verified=False)
    not_confirmed = ask_reset(app.test_client(), unverified.email)
    pages = [
        response.get_data(as_text=True).replace(email, "EMAIL")
        for response, email in (
            (known, "known@example.com"),
            (unknown, "nobody@example.com"),
            (not_confirmed, "unverified@example.com"),
        )
    ]
    pages = [re.sub(r'name="csrf_token"[^>]*>', "", page) for page in pages]
    assert known.status_code == unknown.status_code == not_confirmed.status_code == 200
    assert pages[0] == pages[1] == pages[2]
    assert "+44" not in pages[0]  # no masked number: it would say the account exists
    assert "reset your password" in sms_text(last_sms_to(user.phone))
    assert sms_count(unverified.phone) == 0


def test_wrong_codes_read_the_same_for_a_known_and_an_unknown_e_mail(client, app):
    user = make_user("known@example.com")
    ask_reset(client, user.email)
    stranger = app.test_client()
    ask_reset(stranger, "nobody@example.com")
    code = last_code_sent_to(user.phone)
    answers = [
        c.post_form("/auth/reset/verify", {"code": wrong(code), "new_password": NEW})
        for c in (client, stranger)
    ]
    assert answers[0].status_code == answers[1].status_code == 422
    texts = [
        re.sub(r'name="csrf_token"[^>]*>', "", answer.get_data(as_text=True))
        .replace("known@example.com", "EMAIL")
        .replace("nobody@example.com", "EMAIL")
        for answer in answers
    ]
    assert texts[0] == texts[1] and "That code is not right, or no longer works." in texts[0]


def test_a_reset_sets_the_password_ends_sessions_signs_in_and_not_me_undoes_it(client, app):
    user = make_user("known@example.com")
    elsewhere = app.test_client()
    elsewhere.sign_in_as(user)
    ask_reset(client, user.email)
    code = last_code_sent_to(user.phone)
    response = client.post_form("/auth/reset/verify", {"code": code, "new_password": NEW})
    assert response.headers["Location"] == "/"
    assert password_is(user, NEW)
    assert signed_in(client) and not signed_in(elsewhere)
    alert = last_sms_to(user.phone)
    assert alert.kind == SmsKind.ALERT_PASSWORD_CHANGED and "reset with a code" in sms_text(alert)
    # The same code does not work twice.
    again = client.post_form("/auth/reset/verify", {"code": code, "new_password": "x" * 9})
    assert again.status_code == 302 and password_is(user, NEW)

    # "Not me" from the alert: every session ends and the next sign-in needs a code.
    link = NOT_ME.search(sms_text(alert)).group(1)
    phone = app.test_client()
    assert "Lock my account" in phone.get(link).get_data(as_text=True)
    done = phone.post_form(link).get_data(as_text=True)
    assert "choose a new one" in done and "/auth/reset" in done
    assert not signed_in(client)
    assert reload(user).login_code_required


def test_a_reset_code_obeys_the_code_limits(client, frozen_clock):
    user = make_user("known@example.com")
    ask_reset(client, user.email)
    assert sms_count(user.phone) == 1
    client.post_form("/auth/reset/resend")  # inside the 30 s cool-down: nothing new
    assert sms_count(user.phone) == 1
    for _ in range(4):
        frozen_clock.advance(seconds=31)
        client.post_form("/auth/reset/resend")
    assert sms_count(user.phone) == 5
    frozen_clock.advance(seconds=31)
    page = client.post_form("/auth/reset/resend", follow_redirects=True).get_data(as_text=True)
    assert sms_count(user.phone) == 5  # 5 per 10 minutes per number
    assert "If a code can go to that account" in page
    # Each refusal is recorded for the owner (cool-down, then the 10-minute cap), not told.
    reasons = db.session.scalars(select(SendRefusal.reason).order_by(SendRefusal.id)).all()
    assert reasons == ["cooldown", "number_10_min"]
    assert db.session.scalar(select(func.count()).select_from(OtpChallenge)) == 5


def test_five_wrong_reset_codes_kill_the_code(client):
    user = make_user("known@example.com")
    ask_reset(client, user.email)
    code = last_code_sent_to(user.phone)
    for _ in range(5):
        client.post_form("/auth/reset/verify", {"code": wrong(code), "new_password": NEW})
    client.post_form("/auth/reset/verify", {"code": code, "new_password": NEW})
    assert password_is(user, PASSWORD)


@pytest.mark.parametrize("path", ["/auth/reset/verify", "/auth/reset/resend"])
def test_the_reset_code_steps_need_the_first_step(client, path):
    response = client.post_form(path, {"code": "123456", "new_password": NEW})
    assert response.headers["Location"] == "/auth/reset"


def test_the_sign_in_page_links_to_the_reset(client):
    assert 'href="/auth/reset"' in client.get("/auth/login").get_data(as_text=True)
