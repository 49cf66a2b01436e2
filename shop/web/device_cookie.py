"""The device cookie: a long-lived signed random id that names this browser to the shop."""

import secrets

from flask import after_this_request, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug import Response

COOKIE = "shop_device"
MAX_AGE = 2 * 365 * 24 * 3600


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="shop.device")


def current_device_id() -> str | None:
    """This browser's device id, if it carries a valid cookie."""
    if "device_id" in g:
        return g.device_id
    raw = request.cookies.get(COOKIE)
    try:
        value = _serializer().loads(raw) if raw else None
    except BadSignature:
        value = None
    return value if isinstance(value, str) and len(value) <= 64 else None


def ensure_device_id() -> str:
    """This browser's device id, setting the cookie on the response if it had none."""
    device_id = current_device_id()
    if device_id is not None:
        return device_id
    device_id = g.device_id = secrets.token_urlsafe(24)
    token = _serializer().dumps(device_id)

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(
            COOKIE,
            token,
            max_age=MAX_AGE,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response

    return device_id
