"""API: tokens for API clients. The same sign-in as the site: the password, then a code
by SMS when the owner's rules ask for one (always, for a client with no device cookie, under
the default "new device" rule)."""

from flask import g, jsonify
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from shop.accounts import tokens
from shop.accounts.tokens import TokenOutcome
from shop.api import Blueprint, challenge_links, errors
from shop.api.auth import require_user
from shop.api.problems import ApiProblem, code_not_sent
from shop.api.representations import challenge_of
from shop.api.schemas import CodeNeededSchema, CsrfSchema, TokenRequestSchema, TokenSchema
from shop.web.client import current_client
from shop.web.ratelimits import limit_sign_in

blp = Blueprint("api_tokens", __name__, url_prefix="/api/v1", description="Signing in.")


@blp.post("/tokens")
@limit_sign_in
@blp.doc(
    operationId="createToken",
    security=[],
    responses={"202": {"links": challenge_links("#/challenge/id")}},
)
@blp.arguments(TokenRequestSchema)
@blp.response(201, TokenSchema, description="Signed in: the token, shown once")
@blp.alt_response(202, schema=CodeNeededSchema, description="A code was sent by SMS", success=True)
@errors(blp, 401, 429)
def create(body: dict):
    """Sign in with e-mail and password for a bearer token."""
    result = tokens.request_token(body["email"], body["password"], body["name"], current_client())
    if result.outcome == TokenOutcome.WRONG_CREDENTIALS:
        raise ApiProblem(401, result.message, name="wrong_credentials")
    if result.outcome == TokenOutcome.CODE_NEEDED:
        if result.challenge is None:
            raise code_not_sent(result.send.refused)
        # Another schema than the 201's: serialised here, so the decorator leaves it alone.
        body = CodeNeededSchema().dump(
            {"challenge": challenge_of(result.challenge), "message": "Enter the code from the SMS."}
        )
        return jsonify(body), 202
    return {"token": result.token, "token_type": "Bearer"}


@blp.delete("/tokens/current")
@blp.doc(operationId="revokeCurrentToken", security=[{"bearer": []}])
@blp.response(204)
@errors(blp, 401, 429)
def revoke_current():
    """Sign this token out (revoke it)."""
    user = require_user()
    token_id = g.get("api_token_id")
    if token_id is None:
        raise ApiProblem(401, "Only a bearer token can be revoked here.", name="unauthorized")
    tokens.revoke_token(user, token_id, current_client())
    return None


@blp.get("/csrf-token")
@blp.doc(operationId="getCsrfToken", security=[{"session": []}])
@blp.response(200, CsrfSchema)
@errors(blp, 401, 429)
def csrf_token():
    """For a page of this shop calling the API with its session cookie: the token to send in
    the X-CSRFToken header (other sites cannot read it). Bearer clients need none."""
    if not current_user.is_authenticated:
        raise ApiProblem(
            401, "Only a signed-in browser session has a CSRF token.", name="unauthorized"
        )
    return {"csrf_token": generate_csrf()}
