"""Who is calling the API: a bearer token, or the browser's session cookie with its CSRF
token in the `X-CSRFToken` header (for state-changing requests)."""

from flask import g, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from shop.accounts import tokens
from shop.api.problems import ApiProblem, is_api_request
from shop.extensions import csrf, db
from shop.models import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE_HEADER = {"WWW-Authenticate": 'Bearer realm="shop"'}


def api_user() -> User | None:
    """The account making this request, or None; a bad token or missing CSRF token is a 4xx."""
    if "api_user" in g:
        return g.api_user
    header = request.headers.get("Authorization", "")
    user = None
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise ApiProblem(
                401,
                "Send `Authorization: Bearer <token>`.",
                name="unauthorized",
                headers=CHALLENGE_HEADER,
            )
        token = tokens.live_token(raw.strip())
        user = db.session.get(User, token.user_id) if token is not None else None
        if user is None:
            raise ApiProblem(
                401,
                "The token is not valid, or it was revoked.",
                name="unauthorized",
                headers=CHALLENGE_HEADER,
            )
        g.api_token_id = token.id
    elif current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            try:
                csrf.protect()
            except CSRFError:
                raise ApiProblem(
                    403,
                    "With the session cookie, send the CSRF token in the X-CSRFToken header.",
                    name="csrf",
                ) from None
        user = current_user._get_current_object()
    g.api_user = user
    return user


def require_user() -> User:
    user = api_user()
    if user is None:
        raise ApiProblem(
            401,
            "Sign in first: see POST /api/v1/tokens.",
            name="unauthorized",
            headers=CHALLENGE_HEADER,
        )
    return user


def check_cookie_csrf() -> None:
    """Before any operation: a state-changing request made with the session cookie carries
    its CSRF token. Checked before the body is parsed, so a forged request is refused as
    such rather than answered with the body's validation errors."""
    if request.method in SAFE_METHODS or not is_api_request() or request.routing_exception:
        return  # (no such route: that 404 or 405 comes first)
    if not request.headers.get("Authorization") and current_user.is_authenticated:
        api_user()
