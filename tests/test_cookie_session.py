"""The session cookie, verified once a minute at most (shop.web.cookie_session): what a
cookie holds is remembered briefly, never past the cookie's own expiry, and never shared
between requests."""

import time
from datetime import timedelta

from flask import session

from shop import create_app
from shop.extensions import db
from shop.web.cookie_session import RememberingSessionInterface


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_cookie_past_its_age_is_refused_even_if_it_was_remembered(app, monkeypatch):
    app.permanent_session_lifetime = timedelta(seconds=120)
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)

    @app.get("/remember")
    def remember() -> str:
        session.setdefault("seen", clock.now)
        return str(session["seen"])

    client = app.test_client()
    first = client.get("/remember").get_data(as_text=True)
    assert client.get("/remember").get_data(as_text=True) == first  # verified, remembered
    clock.now += 100  # past the minute it is remembered, within the cookie's two minutes
    assert client.get("/remember").get_data(as_text=True) == first
    clock.now += 30  # past the cookie's age
    assert client.get("/remember").get_data(as_text=True) != first


def test_each_request_gets_its_own_copy_of_what_the_cookie_holds(app):
    interface = app.session_interface
    assert isinstance(interface, RememberingSessionInterface)
    with app.test_request_context():
        cookie = interface.get_signing_serializer(app).dumps({"cart": {"1": 2}})
    headers = {"Cookie": f"session={cookie}"}
    with app.test_request_context(headers=headers) as first:
        opened = interface.open_session(app, first.request)
        opened["cart"]["1"] = 99  # changed in place, as a careless view might
    with app.test_request_context(headers=headers) as second:
        assert interface.open_session(app, second.request)["cart"] == {"1": 2}
    with app.test_request_context(headers={"Cookie": f"session={cookie[:-2]}xx"}) as forged:
        assert dict(interface.open_session(app, forged.request)) == {}


def test_a_new_secret_key_is_a_new_serializer(app):
    other = create_app({**app.config, "SECRET_KEY": "another-key"})
    with app.test_request_context():
        cookie = app.session_interface.get_signing_serializer(app).dumps({"a": 1})
    with other.test_request_context(headers={"Cookie": f"session={cookie}"}) as context:
        assert dict(other.session_interface.open_session(other, context.request)) == {}
    with other.app_context():
        db.engine.dispose()


def test_a_page_that_read_the_session_varies_on_the_cookie_once(app):
    """A shared cache must not hand one visitor's page to another: `Vary: Cookie` when the
    session was read and left unchanged, added once to any Vary the view set."""

    @app.get("/reads")
    def reads() -> str:
        return str(session.get("seen"))

    @app.get("/reads-and-varies")
    def reads_and_varies():
        session.get("seen")
        return "x", 200, {"Vary": "Accept-Encoding"}

    @app.get("/reads-and-varies-on-cookie")
    def reads_and_varies_on_cookie():
        session.get("seen")
        return "x", 200, {"Vary": "accept-encoding, cookie"}

    client = app.test_client()
    client.get("/reads")  # a first visit sets no session; the second reads one unchanged
    assert client.get("/reads").headers.get_all("Vary") == ["Cookie"]
    assert client.get("/reads-and-varies").headers.get_all("Vary") == ["Accept-Encoding, Cookie"]
    assert client.get("/reads-and-varies-on-cookie").headers.get_all("Vary") == [
        "accept-encoding, cookie"
    ]
