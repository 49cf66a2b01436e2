"""The CSRF token of a cached page: one signed token per session, reused for a minute.

Flask-WTF signs the session's token afresh (an HMAC and a timestamp) for every request that
shows a form; on a cached catalog page that signing was a sixth of the request. A token
signed a minute ago is as good as a new one (tokens last `WTF_CSRF_TIME_LIMIT`, 8 hours),
so each web process keeps the last one it signed for each session token, briefly.
"""

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, g
from flask.sessions import SessionMixin
from flask_wtf.csrf import generate_csrf

REUSE_SECONDS = 60
KEPT = 4096


class TokenMemo:
    """Signed tokens by session token, each reused for `REUSE_SECONDS` at most."""

    def __init__(self) -> None:
        self._signed: dict[str, tuple[float, str]] = {}

    @staticmethod
    def field_name(config: Mapping[str, Any]) -> str:
        """The session key (and form field) of the CSRF token, as Flask-WTF names it."""
        return config.get("WTF_CSRF_FIELD_NAME", "csrf_token")

    def token(self, app: Flask, session: SessionMixin) -> str:
        """This visitor's signed CSRF token, as `flask_wtf.csrf.generate_csrf` gives it
        (`app` and `session` are this request's)."""
        field = self.field_name(app.config)
        raw = session.get(field)
        if isinstance(raw, str) and (signed := self.signed(raw)) is not None:
            # The same token for every form of this request, as generate_csrf would give.
            setattr(g, field, signed)
            return signed
        token = generate_csrf()
        if len(self._signed) >= KEPT:
            self._signed.clear()  # rather than an LRU: a minute's worth comes back at once
        self._signed[session[field]] = (time.monotonic() + REUSE_SECONDS, token)
        return token

    def signed(self, raw: str) -> str | None:
        """The signed form of the session token `raw` if it was signed here within the
        minute, else None."""
        kept = self._signed.get(raw)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        return None
