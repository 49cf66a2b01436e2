"""Errors of the JSON API as RFC 9457 problem details (`application/problem+json`).

Every error under /api answers with a problem: validation errors list their fields under
`errors`, domain refusals carry a `type` naming them (`urn:shop:problem:<name>`) and what
the client can act on (`tries_left`, `retry_after`, `reason`).
"""

import contextlib
from typing import Any

import marshmallow as ma
from flask import Response, json, request
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from shop.otp import SendRefused
from shop.web.ratelimits import retry_after_seconds

PROBLEM_JSON = "application/problem+json"


class ProblemSchema(ma.Schema):
    """The body of every API error (RFC 9457); extension members appear when they apply."""

    type = ma.fields.String(
        required=True, metadata={"description": "`about:blank` or `urn:shop:problem:<name>`"}
    )
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    instance = ma.fields.String(metadata={"description": "The path of the request"})
    errors = ma.fields.Dict(metadata={"description": "Validation errors by location and field"})
    tries_left = ma.fields.Integer(metadata={"description": "Wrong code: tries left on it"})
    retry_after = ma.fields.Integer(metadata={"description": "Seconds before trying again"})
    reason = ma.fields.String(metadata={"description": "Why a code was not sent, or an order not"})
    order_ref = ma.fields.String()


class ApiProblem(HTTPException):
    """Raise to answer with a problem: `name` becomes the type, extensions become members."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        name: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.problem_name = name
        self.problem_headers = headers or {}
        self.extensions = {key: value for key, value in extensions.items() if value is not None}


def code_not_sent(refused: SendRefused) -> ApiProblem:
    """No code could be sent: 429 with the wait when one is known (a cap, the cool-down)."""
    wait = refused.retry_after
    return ApiProblem(
        429 if wait else 409,
        refused.message,
        name="code_not_sent",
        reason=str(refused.reason),
        retry_after=wait,
        headers={"Retry-After": str(wait)} if wait else {},
    )


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def problem_response(error: HTTPException) -> Response:
    """The problem for any HTTP error raised while serving the API."""
    status = error.code or 500
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": error.name,
        "status": status,
        "detail": error.description or error.name,
        "instance": request.path,
    }
    headers: dict[str, str] = {}
    if isinstance(error, ApiProblem):
        if error.problem_name:
            body["type"] = f"urn:shop:problem:{error.problem_name}"
        body.update(error.extensions)
        headers.update(error.problem_headers)
    data = getattr(error, "data", None)  # webargs: the fields that failed validation
    if isinstance(data, dict):
        errors = data.get("errors") or data.get("messages")
        if errors:
            body["errors"] = errors
            body["detail"] = "The request is not valid: see `errors`."
        headers.update(data.get("headers") or {})
    # Werkzeug's own response carries headers such as Allow (405).
    own = error.get_response().headers
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in own and name not in headers:
            headers[name] = own[name]
    if isinstance(error, RateLimitExceeded) and "Retry-After" not in headers:
        headers["Retry-After"] = str(retry_after_seconds())
    if "Retry-After" in headers and "retry_after" not in body:
        with contextlib.suppress(ValueError):
            body["retry_after"] = int(headers["Retry-After"])
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers)
    return response
