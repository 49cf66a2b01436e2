"""Security headers on every response, in one place (SPEC section 7).

- Content-Security-Policy: scripts, styles, images and fonts from this shop only, no inline
  script or style, no framing (`frame-ancestors 'none'`), forms post only here.
- X-Content-Type-Options: nosniff; X-Frame-Options: DENY for browsers without CSP 3.
- Referrer-Policy: same-origin, and no-referrer on pages whose URL carries a secret (the
  "not me" link), so the token never leaves in a Referer header.
- Cache-Control: no-store on every page but the public catalog and static files: account,
  code, order and admin pages are never kept by a browser or a shared cache.
- Strict-Transport-Security outside debug mode (browsers ignore it over plain http).

Flask-Talisman was the alternative; it sets one Referrer-Policy for all views, no
Cache-Control, and wants to redirect to https itself, which a proxy does here.
"""

import functools

from flask import Flask, request
from werkzeug import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"
# The same for everyone and worth caching; anything else is no-store.
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "catalog.index",
        "catalog.product",
        "api_docs.docs_asset",
        "api_catalog.products",
        "api_catalog.product",
        "api-docs.openapi_json",
    }
)
# Pages whose URL carries a secret token.
TOKEN_ENDPOINTS = frozenset({"account.not_me"})


@functools.cache
def security_header_list(endpoint: str | None, *, debug: bool) -> tuple[tuple[str, str], ...]:
    """The security headers of a response of `endpoint`, in the order they are set (the same
    for every response of an endpoint: made once)."""
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer" if endpoint in TOKEN_ENDPOINTS else "same-origin"),
    ]
    if endpoint not in PUBLIC_ENDPOINTS:
        headers.append(("Cache-Control", "no-store"))
    if not debug:
        headers.append(("Strict-Transport-Security", HSTS))
    return tuple(headers)


def security_headers(response: Response, *, debug: bool) -> Response:
    endpoint = request.endpoint
    headers = response.headers
    for name, value in security_header_list(endpoint, debug=debug):
        headers[name] = value
    if endpoint not in PUBLIC_ENDPOINTS:
        headers.pop("Expires", None)
    return response


def register(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response: Response) -> Response:
        return security_headers(response, debug=app.debug)
