"""The catalog's first page for a returning visitor, answered in front of Flask
(shop/web/catalog_shortcut.py): the very response Flask gives, and only when it would.

The suite's apps read the catalog versions on every request (CATALOG_RECHECK_SECONDS=0),
which keeps the shortcut out of every other test; here they keep them for a minute, as a
busy process would for its recheck time.
"""

from collections.abc import Callable

import pytest
from flask import Flask, request
from flask_login.config import COOKIE_NAME
from werkzeug.test import EnvironBuilder, run_wsgi_app

from shop import catalog_cache
from shop.extensions import db
from tests.conftest import CSRF_FIELD, ShopClient
from tests.factories import forged, make_product, make_user


@pytest.fixture
def flask_calls(app) -> list[str]:
    """The requests that reach Flask, past the shortcut."""
    calls: list[str] = []
    flask_app = app.wsgi_app.wsgi_app

    def counted(environ, start_response):
        calls.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return flask_app(environ, start_response)

    app.wsgi_app.wsgi_app = counted
    return calls


@pytest.fixture
def shop(app) -> Flask:
    app.config["CATALOG_RECHECK_SECONDS"] = 60
    make_product("Enamel pin", stock=5)
    make_product("Merino socks", stock=3)
    return app


def returning(client: ShopClient) -> str:
    """Visit twice, as a browser does before coming back: the first visit gets the session
    cookie and its token signed, the second has the cookie verified. Returns the cookie."""
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200
    return client.get_cookie("session").value


def both_answers(app: Flask, method: str = "GET", **request) -> tuple:
    """The shortcut's answer and Flask's to the same request: status, headers, body."""
    answers = []
    for wsgi in (app.wsgi_app, app.wsgi_app.wsgi_app):
        environ = EnvironBuilder(method=method, **request).get_environ()
        body, status, headers = run_wsgi_app(wsgi, environ, buffered=True)
        answers.append((status, headers.to_wsgi_list(), b"".join(body)))
    return tuple(answers)


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_returning_visitor_gets_flasks_very_answer_without_flask(
    shop, client, flask_calls, method, debug
):
    shop.debug = debug
    cookie = returning(client)
    assert flask_calls == ["GET /", "GET /"]

    shortcut, by_flask = both_answers(
        shop, method, path="/", headers={"Cookie": f"session={cookie}"}
    )

    # Of the two answers, only the one asked of Flask itself reached it.
    assert flask_calls == ["GET /", "GET /", f"{method} /"]
    assert shortcut == by_flask
    status, headers, body = shortcut
    assert status == "200 OK"
    names = [name for name, _ in headers]
    assert "Content-Security-Policy" in names and ("Vary", "Cookie") in headers
    assert ("Strict-Transport-Security" in names) is not debug
    assert "Set-Cookie" not in names
    if method == "GET":
        assert b"Merino socks" in body and body.count(b'name="csrf_token"') == 2
    else:
        assert body == b""


def test_each_visitor_gets_their_own_token(shop, flask_calls):
    clients = [shop.test_client() for _ in range(2)]
    tokens = []
    for each in clients:
        returning(each)
        page = each.get("/").get_data(as_text=True)
        tokens.append(CSRF_FIELD.findall(page))
    assert len(flask_calls) == 4  # each visitor's third visit was the shortcut's
    assert len(set(tokens[0])) == 1 and len(set(tokens[1])) == 1
    assert tokens[0][0] != tokens[1][0]
    # The token the shortcut gave is the session's: adding to the cart with it works.
    product_id = db.session.execute(db.text("SELECT min(id) FROM products")).scalar()
    added = clients[1].post(
        "/cart/add", data={"csrf_token": tokens[1][0], "product_id": product_id, "quantity": 1}
    )
    assert added.status_code == 302


def signed_in(client: ShopClient) -> None:
    client.sign_in_as(make_user())


def with_flash(client: ShopClient) -> None:
    with client.session_transaction() as session:
        session["_flashes"] = [("message", "Added to your cart.")]


def permanent(client: ShopClient) -> None:
    with client.session_transaction() as session:
        session.permanent = True


def remember_me(client: ShopClient) -> None:
    with client.session_transaction() as session:
        session["_remember"] = "set"


def remember_cookie(client: ShopClient) -> None:
    client.set_cookie(COOKIE_NAME, "1|not-checked-here")


def token_signed_elsewhere(client: ShopClient) -> None:
    with client.session_transaction() as session:
        session["csrf_token"] = "f" * 40


def verified_here(app: Flask, client: ShopClient) -> None:
    """Have this process verify the client's (changed) cookie, as Flask does on a visit to
    any page, so that only what the cookie holds can keep the shortcut out."""
    cookie = client.get_cookie("session").value
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        assert app.session_interface.open_session(app, request) is not None
    assert app.session_interface.verified(cookie) is not None


@pytest.mark.parametrize(
    "change",
    [signed_in, with_flash, permanent, remember_me, remember_cookie, token_signed_elsewhere],
)
def test_flask_answers_a_visit_whose_page_or_cookie_may_differ(
    shop, client, flask_calls, change: Callable
):
    returning(client)
    change(client)
    verified_here(shop, client)
    flask_calls.clear()
    response = client.get("/")
    assert response.status_code == 200
    assert flask_calls == ["GET /"]


def another_process(client: ShopClient) -> None:
    """A good cookie this process has not verified: another web process signed it."""
    with client.session_transaction() as session:
        session["cart"] = {"1": 1}


def tampered(client: ShopClient) -> None:
    client.set_cookie("session", forged(client.get_cookie("session").value))


@pytest.mark.parametrize("change", [another_process, tampered])
def test_flask_answers_a_cookie_this_process_has_not_verified(
    shop, client, flask_calls, change: Callable
):
    returning(client)
    change(client)
    flask_calls.clear()
    assert client.get("/").status_code == 200
    assert flask_calls == ["GET /"]


@pytest.mark.parametrize(
    "request_args",
    [
        {"path": "/?page=1"},
        {"path": "/?q=pin"},
        {"path": "/", "data": "a=b", "content_type": "application/x-www-form-urlencoded"},
        {"path": "/", "method": "POST"},
        {"path": "/", "method": "OPTIONS"},
        {"path": "/cart"},
    ],
)
def test_flask_answers_anything_but_a_plain_get_of_the_first_page(
    shop, client, flask_calls, request_args
):
    returning(client)
    flask_calls.clear()
    client.open(**request_args)
    assert len(flask_calls) == 1


def test_a_first_visit_goes_to_flask_and_gets_its_cookie(shop, client, flask_calls):
    response = client.get("/")
    assert flask_calls == ["GET /"] and "Set-Cookie" in response.headers


def test_the_shortcut_sees_a_change_when_flask_would(shop, client, flask_calls, monkeypatch):
    """Within the recheck time the shortcut shows what Flask would (the versions read then);
    after it, Flask reads them again and the next visits get the new page."""
    shop.config["CATALOG_RECHECK_SECONDS"] = 1
    now = [1000.0]
    monkeypatch.setattr(catalog_cache.time, "monotonic", lambda: now[0])
    returning(client)
    make_product("Linen apron", stock=2)
    flask_calls.clear()

    assert "Linen apron" not in client.get("/").get_data(as_text=True)
    assert flask_calls == []  # as Flask would: the versions it read under a second ago
    now[0] += 1.5
    assert "Linen apron" in client.get("/").get_data(as_text=True)
    assert flask_calls == ["GET /"]
    # Rendering the page loaded the (anonymous) user, and Flask-Login marked the session
    # not fresh: a new cookie, which Flask verifies once, and then the shortcut answers.
    returning(client)
    flask_calls.clear()
    assert "Linen apron" in client.get("/").get_data(as_text=True)
    assert flask_calls == []


@pytest.mark.parametrize(
    "setting",
    [
        {"SERVER_NAME": "localhost"},
        {"TRUSTED_HOSTS": ["localhost"]},
        {"REMEMBER_COOKIE_REFRESH_EACH_REQUEST": True},
    ],
)
def test_no_shortcut_under_settings_that_make_flask_do_more(shop, client, flask_calls, setting):
    returning(client)
    shop.config.update(setting)
    flask_calls.clear()
    assert client.get("/").status_code == 200
    assert flask_calls == ["GET /"]
