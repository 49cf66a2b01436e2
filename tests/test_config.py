"""Configuration defaults that are security requirements (SPEC section 7)."""

import shutil

import pytest

from shop import create_app
from shop.config import Config
from tests.conftest import config_for


def test_defaults_without_environment(monkeypatch, tmp_path):
    for name in (
        "FLASK_DEBUG",
        "SESSION_COOKIE_SECURE",
        "SHOP_NAME",
        "SHOP_CURRENCY",
        "SMS_ALLOWED_COUNTRIES",
        "SMS_BACKEND",
        "PUBLIC_BASE_URL",
        "PASSWORD_HASH_METHOD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    config = Config()
    assert config.PASSWORD_HASH_METHOD == "scrypt:131072:8:1"
    assert config.SESSION_COOKIE_SECURE is True
    assert config.SESSION_COOKIE_HTTPONLY is True
    assert config.SESSION_COOKIE_SAMESITE == "Lax"
    assert config.REMEMBER_COOKIE_SECURE is True
    assert config.REMEMBER_COOKIE_HTTPONLY is True
    assert config.REMEMBER_COOKIE_DURATION <= 30 * 24 * 3600
    assert config.SHOP_NAME == "Shop"
    assert config.SHOP_CURRENCY == "EUR"
    assert config.SMS_ALLOWED_COUNTRIES == ("GB",)
    assert config.SMS_BACKEND == "console"
    assert config.PUBLIC_BASE_URL == "http://127.0.0.1:5000"


def test_debug_turns_secure_cookies_off_for_plain_http(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    assert Config().SESSION_COOKIE_SECURE is False


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("SHOP_NAME", "Bakery")
    monkeypatch.setenv("SHOP_CURRENCY", "gbp")
    monkeypatch.setenv("SMS_ALLOWED_COUNTRIES", "gb, fr ,")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/elsewhere.sqlite3")
    config = Config()
    assert config.SHOP_NAME == "Bakery"
    assert config.SHOP_CURRENCY == "GBP"
    assert config.SMS_ALLOWED_COUNTRIES == ("GB", "FR")
    assert config.SQLALCHEMY_DATABASE_URI == "sqlite:////tmp/elsewhere.sqlite3"


def test_a_mapping_overrides_the_environment(tmp_path):
    app = create_app(
        {
            "SHOP_NAME": "Test shop",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
            "SMS_BACKEND": "vonage",
        }
    )
    assert app.config["SHOP_NAME"] == "Test shop"


@pytest.mark.parametrize("debug", [None, "0", "1"], ids=["unset", "off", "on"])
def test_session_cookie_is_httponly_samesite_and_secure_outside_debug(
    monkeypatch, tmp_path, migrated_template, debug
):
    # The flag as the real Config sets it from the environment: nothing here names it.
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    if debug is None:
        monkeypatch.delenv("FLASK_DEBUG", raising=False)
    else:
        monkeypatch.setenv("FLASK_DEBUG", debug)
    path = tmp_path / "shop.sqlite3"
    shutil.copy(migrated_template, path)
    app = create_app(config_for(path))
    assert "SESSION_COOKIE_SECURE" not in config_for(path)
    cookie = app.test_client().get("/auth/login").headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is (debug != "1")
