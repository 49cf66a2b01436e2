"""Fixtures: an app on a migrated SQLite file per test, a client that sends CSRF tokens."""

import contextvars
import re
import shutil
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop import clock, create_app
from shop.accounts import sessions
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Role, User
from tests import factories
from tests.factories import make_user

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class ShopClient(FlaskClient):
    """A browser stand-in: `post_form` sends the CSRF token a real form would carry."""

    def open(self, *args, **kwargs):
        # Each request in a context of its own, as under a real server: neither `g` nor the
        # database session leaks between requests, or between a request and the test.
        return contextvars.Context().run(super().open, *args, **kwargs)

    def csrf_token(self) -> str:
        page = self.get("/auth/login").get_data(as_text=True)
        match = CSRF_FIELD.search(page)
        assert match, "no CSRF token on the sign-in page"
        return match.group(1)

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        return self.post(url, data={"csrf_token": self.csrf_token(), **(data or {})}, **kwargs)

    def sign_in_as(self, user, *, remember: bool = False) -> str:
        """Start a signed-in session without the (deliberately slow) password hash; returns
        the new session's id."""
        session_id = sessions.open_session(user, Client("127.0.0.1"), remember=remember)
        with self.session_transaction() as session:
            session["_user_id"] = session_id
            session["_fresh"] = True
        return session_id


def config_for(database_path: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database_path}",
        "SHOP_NAME": "Shop",
        "SHOP_CURRENCY": "EUR",
        "SMS_ALLOWED_COUNTRIES": ("GB",),
        # Every page sees a change at once: tests change data and look at the next page.
        # (tests/test_catalog_cache.py checks the default of one second.)
        "CATALOG_RECHECK_SECONDS": 0,
        # Told explicitly: the console backend outside debug mode, and its demo phone.
        "ALLOW_CONSOLE_SMS": True,
        "DEV_PHONE": True,
    }


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """One database upgraded with the real migrations, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "shop.sqlite3"
    app = create_app(config_for(path))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return path


@pytest.fixture
def app(tmp_path, migrated_template) -> Flask:
    path = tmp_path / "shop.sqlite3"
    shutil.copy(migrated_template, path)
    app = create_app(config_for(path))
    app.test_client_class = ShopClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app) -> ShopClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def fresh_numbers(monkeypatch) -> None:
    """Each test numbers the users, products and orders it makes from the start."""
    monkeypatch.setattr(factories, "_numbers", count(factories.FIRST_NUMBER))


@pytest.fixture
def owner(client) -> User:
    """A shop owner, signed in on `client` (the admin pages' visitor)."""
    user = make_user("boss@example.com", role=Role.OWNER)
    client.sign_in_as(user)
    return user


class FrozenClock:
    """`shop.clock.now()` stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def frozen_clock(monkeypatch) -> FrozenClock:
    frozen = FrozenClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "now", frozen)
    return frozen
