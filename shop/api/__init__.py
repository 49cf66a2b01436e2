"""The JSON API under /api/v1: thin adapters over the same use cases as the HTML pages.

Built with flask-smorest, whose marshmallow schemas both check the input and generate the
OpenAPI 3.1 document served at /api/v1/openapi.json (and shown at /api/v1/docs). Errors are
RFC 9457 problem details; rate-limit headers come from Flask-Limiter.
"""

import http
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint as FlaskBlueprint
from flask import Flask, Request, Response, abort, current_app, render_template
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.flaskparser import abort as abort_with

from shop.api.auth import check_cookie_csrf
from shop.api.problems import PROBLEM_JSON, ProblemSchema
from shop.extensions import csrf, limiter
from shop.web.input_guard import RepeatedKey, one_value_per_key

API_PREFIX = "/api/v1"
SWAGGER_UI = Path(flask_swagger_ui.__file__).parent / "dist"


class JsonParser(FlaskParser):
    """webargs' parser, stricter about the body: a key sent twice (`{"quantity": 1,
    "quantity": 7}`, which Python's decoder settles silently by keeping the last) is refused,
    as the HTML forms refuse a repeated field; and a body nested too deeply for Python's
    decoder (`[[[[...`, which raises RecursionError rather than a JSONDecodeError) is invalid
    JSON. Both a 400, never a 500."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return missing
        try:
            # A body that is not UTF-8 raises UnicodeDecodeError: webargs answers it.
            text = req.get_data(cache=True).decode("utf-8")
            return json.loads(text, object_pairs_hook=one_value_per_key)
        except RecursionError:
            error = json.JSONDecodeError("nested too deeply", "", 0)
            return self._handle_invalid_json_error(error, req)
        except RepeatedKey as error:
            abort_with(400, exc=error, messages={"json": [str(error)]})


class Blueprint(SmorestBlueprint):
    """A blueprint of the API: flask-smorest's, with the `JsonParser`."""

    ARGUMENTS_PARSER = JsonParser()


class ShopApi(Api):
    """flask-smorest's Api with problem+json errors, handled by the app's error pages."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        # shop.blueprints.errors answers every error: HTML pages, or problems under /api.
        pass

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": ProblemSchema}
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error", "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def errors(blp: SmorestBlueprint, *statuses: int) -> Callable:
    """Document the error answers (problem+json) of one of `blp`'s operations."""

    def decorate(view: Callable) -> Callable:
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate


def challenge_links(pointer: str, *, resend: bool = False) -> dict[str, dict]:
    """OpenAPI links from a response holding a challenge id at JSON `pointer` to the
    challenge's operations (Schemathesis follows them)."""
    operations = ["getChallenge", "verifyChallenge"] + (["resendChallenge"] if resend else [])
    return {
        f"{operation[0].upper()}{operation[1:]}": {
            "operationId": operation,
            "parameters": {"challenge_id": f"$response.body{pointer}"},
        }
        for operation in operations
    }


def api_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


docs = FlaskBlueprint("api_docs", __name__, url_prefix=API_PREFIX)


@docs.get("/docs")
def docs_page() -> str:
    """The OpenAPI document in Swagger UI, served from this shop (no CDN, works offline)."""
    return render_template("api/docs.html")


DOCS_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


@cache
def _asset(name: str) -> bytes:
    return (SWAGGER_UI / name).read_bytes()


@docs.get("/docs/assets/<name>")
def docs_asset(name: str) -> Response:
    """Swagger UI's own files, from the flask-swagger-ui package (read once per process)."""
    if name not in DOCS_ASSETS:
        abort(404)
    response = Response(_asset(name), mimetype=DOCS_ASSETS[name])
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


def init_api(app: Flask) -> None:
    from shop.api import cart, catalog, challenges, checkout, orders, passkeys, tokens

    settings: dict[str, Any] = {
        "API_TITLE": f"{app.config['SHOP_NAME']} API",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": (
                    "Browse, fill a cart and check out; a risky order answers 202 with a "
                    "challenge: verify it with the code from the SMS or an authenticator app, "
                    "a recovery code, or a passkey (its `factors` say which)."
                )
            },
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                }
            },
        },
    }
    for key, value in settings.items():
        app.config.setdefault(key, value)
    api = ShopApi(app)
    for module in (catalog, cart, checkout, challenges, passkeys, orders, tokens):
        csrf.exempt(module.blp)  # checked in shop.api.auth for cookie sessions only
        limiter.limit(api_limit)(module.blp)
        api.register_blueprint(module.blp)
    app.register_blueprint(docs)
    app.before_request(check_cookie_csrf)
    app.extensions["shop_api"] = api
