"""Secrets stay where they belong (SPEC sections 5 and 7): a one-time code is never in a URL
(a Location header, or a link or form target of a page), and after signing in, confirming an
order by SMS code, app code and recovery code, and a "not me", no audit row holds a typed
password, a code, a "not me" token or a session id."""

import re

from sqlalchemy import select

from shop.extensions import db
from shop.models import AuditEvent, Factor, SmsMessage
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from tests.factories import (
    ADDRESS,
    PASSWORD,
    fill_cart,
    last_code_sent_to,
    make_product,
    make_user,
    quick_password,
    sms_text,
    wrong,
)
from tests.test_stepup_passkeys import CLIENT, checkout
from tests.test_stepup_totp import set_up_app

# Every attribute value of a page that is a URL: links, form targets, scripts, data-*-url.
URL_IN_PAGE = re.compile(r'="((?:/|https?:)[^"]*)"')
NOT_ME_LINK = re.compile(r"/account/not-me/(\S+)")


def holds(text: str, secret: str) -> bool:
    """Whether `text` holds `secret`; a code of digits only as a number of its own."""
    if secret.isdigit():
        return re.search(rf"(?<![0-9]){secret}(?![0-9])", text) is not None
    return secret in text


class Urls(list):
    """The Location and the URLs in the page of each response noted."""

    def note(self, response):
        self.append(response.headers.get("Location", ""))
        self.extend(URL_IN_PAGE.findall(response.get_data(as_text=True)))
        return response


def session_cookie_id(app, client) -> str:
    cookie = client.get_cookie("session")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)["_user_id"]


def sign_in_by_sms(client, user, urls: Urls) -> list[str]:
    """Password, a wrong sign-in code, the right one; the codes typed."""
    response = urls.note(
        client.post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    )
    assert response.headers["Location"] == "/auth/login/verify"
    urls.note(client.get("/auth/login/verify"))
    code = last_code_sent_to(user.phone)
    response = urls.note(client.post_form("/auth/login/verify", {"code": wrong(code)}))
    assert response.status_code == 422
    response = urls.note(client.post_form("/auth/login/verify", {"code": code}))
    assert response.status_code == 302
    urls.note(client.get(response.headers["Location"]))
    return [code, wrong(code)]


def confirm_by_sms(client, user, urls: Urls, key: str) -> list[str]:
    """A 300.00 checkout confirmed after a wrong code; the codes typed."""
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    response = urls.note(client.post_form("/checkout", {**ADDRESS, "idempotency_key": key}))
    verify_url = response.headers["Location"]
    assert verify_url.startswith("/checkout/verify/")
    urls.note(client.get(verify_url))
    code = last_code_sent_to(user.phone)
    assert urls.note(client.post_form(verify_url, {"code": wrong(code)})).status_code == 422
    response = urls.note(client.post_form(verify_url, {"code": code}))
    assert response.status_code == 302
    urls.note(client.get(response.headers["Location"]))
    return [code, wrong(code)]


def test_codes_never_reach_a_location_or_a_link(app, client, frozen_clock):
    user = quick_password(make_user())
    urls = Urls()
    codes = sign_in_by_sms(client, user, urls)
    frozen_clock.advance(seconds=30)
    codes += confirm_by_sms(client, user, urls, "secrets-order-00001")
    assert len(urls) > 20 and any(url.startswith("/checkout/verify/") for url in urls)
    leaked = [(code, url) for url in urls for code in codes if holds(url, code)]
    assert leaked == []


def test_the_audit_holds_no_password_code_token_or_session_id(app, client, frozen_clock):
    user = quick_password(make_user())
    typed_password = "not-the-password-8c1e"
    refused = client.post_form("/auth/login", {"email": user.email, "password": typed_password})
    assert refused.status_code == 401
    urls = Urls()
    secrets = [PASSWORD, typed_password]
    secrets += sign_in_by_sms(client, user, urls)
    secrets.append(session_cookie_id(app, client))
    frozen_clock.advance(seconds=30)
    secrets += confirm_by_sms(client, user, urls, "secrets-order-00001")
    secrets.append(session_cookie_id(app, client))  # renewed at the step-up

    # An authenticator app and its recovery codes, each confirming an order.
    authenticator, recovery_codes = set_up_app(user, frozen_clock)
    secrets += [user.session_id, authenticator.secret]
    secrets += recovery_codes + [code.replace("-", "") for code in recovery_codes]
    order, _ = checkout(user, key="secrets-order-00002")
    app_code = authenticator.at(frozen_clock.now)
    wrong_app_code = wrong(app_code)
    secrets += [app_code, wrong_app_code]
    assert confirm_order(user, order.ref, wrong_app_code, CLIENT, factor=Factor.TOTP).outcome == (
        ConfirmOutcome.WRONG_CODE
    )
    placed = confirm_order(user, order.ref, app_code, CLIENT, factor=Factor.TOTP)
    assert placed.outcome == ConfirmOutcome.PLACED
    order, _ = checkout(user, key="secrets-order-00003")
    typed_recovery = recovery_codes[0].lower().replace("-", " ")
    secrets.append(typed_recovery)
    placed = confirm_order(user, order.ref, typed_recovery, CLIENT, factor=Factor.RECOVERY)
    assert placed.outcome == ConfirmOutcome.PLACED

    # "Not me", from the link of the newest alert that has one.
    texts = [sms_text(message) for message in db.session.scalars(select(SmsMessage))]
    token = [match.group(1) for text in texts if (match := NOT_ME_LINK.search(text))][-1]
    secrets.append(token)
    stranger = app.test_client()
    assert stranger.get(f"/account/not-me/{token}").status_code == 200
    assert stranger.post_form(f"/account/not-me/{token}").status_code == 200

    rows = db.session.scalars(select(AuditEvent)).all()
    events = {row.event for row in rows}
    assert {
        "sign_in_failed",
        "sign_in",
        "code_failed",
        "code_verified",
        "recovery_code_used",
        "not_me",
    } <= events, events
    columns = [column.key for column in AuditEvent.__table__.columns]
    leaked = [
        (row.event, column)
        for row in rows
        for column in columns
        for secret in secrets
        if holds(str(getattr(row, column)), secret)
    ]
    assert leaked == []
