"""The catalog's first page for a returning visitor, answered before Flask makes a request.

A returning visitor who is not signed in gets the same first page of the catalog as every
other such visitor but for the CSRF token in its forms, and this process keeps both: the
page (`CatalogCache`) and the visitor's signed token (`TokenMemo`). Flask would still build
a request, open the session, run the before- and after-request hooks, write the security
headers into a response object and tear it all down: once the page was cached, that was
nearly all of the request (SPEC section 8's throughput). This WSGI middleware answers such a
request itself, and only when Flask would give the very same response from what this process
already holds:

- GET or HEAD of `/`, with no query string and no body;
- a session cookie this process has verified within the minute (`RememberingSessionInterface`)
  that holds a CSRF token this process signed within the minute, and no signed-in user,
  waiting message, remember-me or permanent session (each of which changes the page or makes
  Flask set the cookie again); no remember-me cookie;
- the page rendered at the catalog versions read within `CATALOG_RECHECK_SECONDS`;
- no `SERVER_NAME` or `TRUSTED_HOSTS` for Flask to check the host against, and no
  `REMEMBER_COOKIE_REFRESH_EACH_REQUEST` for Flask-Login to act on.

Anything else goes to Flask untouched, which also refreshes what this answer reads: the
versions once a second, the verified cookie and the signed token once a minute. The answer
is Flask's byte for byte: the security headers of `shop.web.headers`, `Vary: Cookie`, and no
Set-Cookie since the session is unchanged (tests/test_catalog_shortcut.py compares them).
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.http import parse_cookie

from shop.catalog_cache import FIRST_PAGE, VISITORS, plain_visitor
from shop.web.cookie_session import RememberingSessionInterface
from shop.web.csrf_tokens import TokenMemo
from shop.web.headers import security_header_list

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

ENDPOINT = "catalog.index"
# Besides what makes the page a visitor's own (`plain_visitor`), session keys that make Flask
# set the cookie again: Flask-Login's remember-me state, and a permanent session (refreshed
# on every request).
COOKIE_SET_AGAIN = frozenset({"_remember", "_permanent"})


class CatalogShortcut:
    def __init__(self, app: "Flask", wsgi_app: "WSGIApplication") -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") == "/"
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and not environ.get("QUERY_STRING")
            and environ.get("CONTENT_LENGTH", "0") in ("", "0")
            and "HTTP_TRANSFER_ENCODING" not in environ
            and (body := self.page(environ)) is not None
        ):
            headers = [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *security_header_list(ENDPOINT, debug=self.app.debug),
                ("Vary", "Cookie"),
            ]
            start_response("200 OK", headers)
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self.wsgi_app(environ, start_response)

    def page(self, environ: "WSGIEnvironment") -> bytes | None:
        """The page with this visitor's token, if this process holds all of it."""
        app, config = self.app, self.app.config
        sessions = app.session_interface
        if (
            not isinstance(sessions, RememberingSessionInterface)
            or config["SERVER_NAME"]
            or config["TRUSTED_HOSTS"]
            or config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
            or "HTTP_COOKIE" not in environ
        ):
            return None
        cookies = parse_cookie(environ)
        cookie = cookies.get(config["SESSION_COOKIE_NAME"])
        data = sessions.verified(cookie) if cookie else None
        if (
            data is None
            or not plain_visitor(config, data, cookies)
            or not COOKIE_SET_AGAIN.isdisjoint(data)
        ):
            return None
        raw = data.get(TokenMemo.field_name(config))
        token = app.extensions["csrf_tokens"].signed(raw) if isinstance(raw, str) else None
        if token is None:
            return None
        page = app.extensions["catalog_cache"].ready(FIRST_PAGE, VISITORS)
        return None if page is None else page.with_token(token)


def register(app: "Flask") -> None:
    app.wsgi_app = CatalogShortcut(app, app.wsgi_app)  # type: ignore[method-assign]
