"""Flask's signed-cookie session, verifying each distinct cookie once a minute at most.

Opening the session was a quarter of a cached catalog request: Flask builds a serializer,
derives the signing key, checks the HMAC and decodes the JSON on every request, although a
returning visitor sends the same cookie time after time. This interface keeps one serializer
and, for a minute, what each cookie it has verified holds (never past the cookie's own
expiry). A cookie it has not verified, or that fails verification, is treated exactly as
Flask treats it; each request gets its own copy of the data, so nothing one request changes
reaches another.
"""

import copy
import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
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
        now = time.time()
        kept = self._verified.get(cookie)
        if kept is not None and kept[0] > now:
            return self.session_class(copy.deepcopy(kept[1]))
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if len(self._verified) >= KEPT:
            self._verified.clear()  # rather than an LRU: the visitors of a minute come back
        until = min(now + REMEMBER_SECONDS, signed_at.timestamp() + max_age)
        self._verified[cookie] = (until, copy.deepcopy(data))
        return self.session_class(data)
