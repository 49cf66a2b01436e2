"""A shop started with the defaults: no demo phone, no fake SMS, no trusted proxy headers.

Defect 7: /dev/phone was public whenever the console backend was on, and an anonymous
visitor read the owner's live sign-in code. Defect 6: behind a reverse proxy every shopper
shared one address for the per-address limits, unless the operator names its proxies.
"""

import pytest
from sqlalchemy import select

from shop import CONSOLE_OUTSIDE_DEBUG, create_app
from shop.config import Config
from shop.extensions import db
from shop.models import AuditEvent, OtpChallenge
from tests.conftest import config_for
from tests.factories import make_user

# Sign-in is limited to 10 a minute per client address (SIGN_IN_RATE_LIMIT).
SIGN_IN_LIMIT = 10


def test_the_console_backend_refuses_to_start_outside_debug_mode(tmp_path):
    settings = config_for(tmp_path / "x.sqlite3") | {"ALLOW_CONSOLE_SMS": False, "DEBUG": False}
    with pytest.raises(RuntimeError) as refused:
        create_app(settings)
    assert str(refused.value) == CONSOLE_OUTSIDE_DEBUG
    assert "ALLOW_CONSOLE_SMS=1" in CONSOLE_OUTSIDE_DEBUG


def test_the_console_backend_starts_in_debug_mode_or_when_told(build_app):
    assert build_app(ALLOW_CONSOLE_SMS=False, DEBUG=True).debug
    assert build_app(ALLOW_CONSOLE_SMS=True, DEBUG=False).config["SMS_BACKEND"] == "console"


def test_a_real_provider_starts_without_being_told(build_app):
    app = build_app(SMS_BACKEND="vonage", ALLOW_CONSOLE_SMS=False, DEBUG=False)
    assert "dev.phone" not in app.view_functions


def test_the_defaults_allow_neither_the_console_backend_nor_the_demo_phone(monkeypatch):
    for name in ("FLASK_DEBUG", "ALLOW_CONSOLE_SMS", "DEV_PHONE", "TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    assert (config.ALLOW_CONSOLE_SMS, config.DEV_PHONE, config.TRUSTED_PROXIES) == (False, False, 0)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert Config().DEV_PHONE is True


def test_outside_debug_mode_there_is_no_demo_phone_even_with_the_console_backend(build_app):
    app = build_app(DEBUG=False, ALLOW_CONSOLE_SMS=True, DEV_PHONE=False)
    assert "dev.phone" not in app.view_functions
    with app.app_context():
        assert app.test_client().get("/dev/phone").status_code == 404


@pytest.mark.parametrize(
    "settings", [{"DEBUG": True, "DEV_PHONE": False}, {"DEBUG": False, "DEV_PHONE": True}]
)
def test_the_demo_phone_is_served_in_debug_mode_or_when_asked_for(build_app, settings):
    app = build_app(**settings)
    with app.app_context():
        assert app.test_client().get("/dev/phone").status_code == 200


# Trusted proxies -------------------------------------------------------------------------------


def sign_in_attempts(client, count: int, forwarded_for) -> list[int]:
    """`count` sign-in posts, each claiming a client address of its own in X-Forwarded-For
    (an incomplete form: the limit counts it, no password hash is spent)."""
    return [
        client.post_form(
            "/auth/login",
            {"email": "someone@example.com"},
            headers={"X-Forwarded-For": forwarded_for(number)},
        ).status_code
        for number in range(count)
    ]


def test_without_trusted_proxies_a_forwarded_address_is_ignored(build_app):
    app = build_app(TRUSTED_PROXIES=0)
    with app.app_context():
        client = app.test_client()
        statuses = sign_in_attempts(client, SIGN_IN_LIMIT + 1, lambda n: f"198.51.100.{n}")
        assert statuses == [422] * SIGN_IN_LIMIT + [429]


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limits(build_app):
    app = build_app(TRUSTED_PROXIES=1)
    with app.app_context():
        client = app.test_client()
        statuses = sign_in_attempts(client, SIGN_IN_LIMIT + 1, lambda n: f"198.51.100.{n}")
        assert statuses == [422] * (SIGN_IN_LIMIT + 1)
        # ...and one address behind the proxy is still limited.
        statuses = sign_in_attempts(client, SIGN_IN_LIMIT + 1, lambda n: "198.51.100.200")
        assert statuses == [422] * SIGN_IN_LIMIT + [429]


def test_only_as_many_forwarded_hops_as_there_are_proxies_are_believed(build_app):
    app = build_app(TRUSTED_PROXIES=1)
    with app.app_context():
        user = make_user(verified=False)
        client = app.test_client()
        client.sign_in_as(user)
        # The client made up the first address; the proxy appended the real one.
        client.post_form(
            "/auth/verify-phone/resend", headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.77"}
        )
        db.session.expire_all()
        assert db.session.scalar(select(OtpChallenge.client_ip)) == "203.0.113.77"


@pytest.mark.parametrize(("hops", "expected"), [(0, "127.0.0.1"), (1, "203.0.113.78")])
def test_the_code_limits_and_the_audit_see_the_address_trusted_proxies_say(
    build_app, hops, expected
):
    app = build_app(TRUSTED_PROXIES=hops)
    with app.app_context():
        user = make_user(verified=False)
        client = app.test_client()
        client.sign_in_as(user)
        forwarded = {"X-Forwarded-For": "203.0.113.78"}
        client.post_form("/auth/verify-phone/resend", headers=forwarded)
        client.post_form("/auth/logout", headers=forwarded)
        db.session.expire_all()
        assert db.session.scalar(select(OtpChallenge.client_ip)) == expected
        sign_out = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "sign_out"))
        assert sign_out.ip == expected
