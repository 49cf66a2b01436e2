"""Flask's signed-cookie session, verifying each distinct cookie once a minute at most.

Opening the session was a quarter of a cached catalog request: Flask builds a serializer,
derives the signing key, checks the HMAC and decodes the JSON on every request, although a
returning visitor sends the same cookie time after time. This interface keeps one serializer
and, for a minute, what each cookie it has verified holds (never past the cookie's own
expiry). A cookie it has not verified, or that fails verification, is treated exactly as
Flask treats it; each request gets its own copy of the data, so nothing one request changes
reaches another. Saving an unchanged session returns before Flask looks up the seven cookie
settings it would not use.
"""

import copy
import time

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer

REMEMBER_SECONDS = 60
KEPT = 4096


class RememberingSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None
        self._verified: dict[str, tuple[float, dict]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept = self._serializer
        if kept is None or kept[0] != keys:
            kept = self._serializer = (keys, super().get_signing_serializer(app))
        return kept[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self.session_class()
        if (kept := self.verified(cookie)) is not None:
            return self.session_class(_copy(kept))
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if len(self._verified) >= KEPT:
            self._verified.clear()  # rather than an LRU: the visitors of a minute come back
        until = min(time.time() + REMEMBER_SECONDS, signed_at.timestamp() + max_age)
        self._verified[cookie] = (until, copy.deepcopy(data))
        return self.session_class(data)

    def verified(self, cookie: str) -> dict | None:
        """What `cookie` holds if this process verified it within the minute, else None.
        Read only: it is the kept copy, not a session."""
        kept = self._verified.get(cookie)
        if kept is not None and kept[0] > time.time():
            return kept[1]
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        # Flask's own rule for when the cookie is (re)set, tested first.
        if not session.modified and not (
            session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]
        ):
            if session.accessed:
                _vary_on_cookie(response)
            return
        super().save_session(app, session, response)


def _vary_on_cookie(response: Response) -> None:
    """`Vary: Cookie`, without parsing the header into a set when there is none yet (the
    cached catalog's case, where parsing it was a tenth of the request)."""
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Cookie"
    elif "cookie" not in {value.strip().lower() for value in vary.split(",")}:
        response.vary.add("Cookie")


_PLAIN = (str, int, float, bool, type(None))


def _copy(data: dict) -> dict:
    """A copy no request can change the original through: shallow when every value is a
    plain scalar (a visitor's CSRF token, a signed-in user's id), deep otherwise."""
    if all(isinstance(value, _PLAIN) for value in data.values()):
        return dict(data)
    return copy.deepcopy(data)
